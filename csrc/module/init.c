/* init.c: cprof._core, the Python face of the C core.
 *
 * The only file with the method table, argument parsing and exceptions. It
 * exposes ProfileData, a decoded and validated profile.proto message held in
 * C memory, which cprof.profile reads lazily, one object at a time.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec/graph.h"
#include "codec/pprof.h"
#include "collect/heap.h"
#include "collect/locks.h"
#include "collect/sampler.h"

static PyObject *ProfileError;  /* cprof.ProfileError; set once at import */

/* Raise the exception that fits a negative cprof_code_t. */
static PyObject *raise_code(int code, const cprof_error_t *err)
{
    switch (code) {
    case CPROF_E_NOMEM:
        return PyErr_Format(PyExc_MemoryError, "%s", err->msg);
    case CPROF_E_FORMAT:
    case CPROF_E_LIMIT:
        return PyErr_Format(ProfileError, "%s", err->msg);
    case CPROF_E_PYTHON:
        return NULL;
    default:
        return PyErr_Format(PyExc_RuntimeError, "%s", err->msg);
    }
}

/* --- ProfileData ----------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    cprof_pprof_t *p;
    PyObject *weakrefs;  /* so tests can watch a profile's C memory being freed */
} ProfileData;

static PyTypeObject ProfileData_Type;

static void ProfileData_dealloc(ProfileData *self)
{
    if (self->weakrefs != NULL)
        PyObject_ClearWeakRefs((PyObject *)self);
    cprof_pprof_free(self->p);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *wrap(cprof_pprof_t *p)
{
    ProfileData *self = PyObject_New(ProfileData, &ProfileData_Type);
    if (self == NULL) {
        cprof_pprof_free(p);
        return NULL;
    }
    self->p = p;
    self->weakrefs = NULL;
    return (PyObject *)self;
}

/* string_table[i] as str; invalid UTF-8 survives through surrogateescape.
 * Indices were validated at decode or build time. */
static PyObject *str_at(const cprof_msg_t *m, int64_t i)
{
    const ProtobufCBinaryData *s = &m->string_table[i];
    return PyUnicode_DecodeUTF8((const char *)s->data, (Py_ssize_t)s->len, "surrogateescape");
}

static int index_arg(PyObject *arg, size_t n, const char *what, Py_ssize_t *out)
{
    Py_ssize_t i = PyLong_AsSsize_t(arg);
    if (i == -1 && PyErr_Occurred())
        return -1;
    if (i < 0 || (size_t)i >= n) {
        PyErr_Format(PyExc_IndexError, "%s index %zd out of range (0..%zu)", what, i,
                     n ? n - 1 : 0);
        return -1;
    }
    *out = i;
    return 0;
}

static PyObject *value_type(const cprof_msg_t *m, const Perftools__Profiles__ValueType *vt)
{
    if (vt == NULL)
        Py_RETURN_NONE;
    PyObject *t = str_at(m, vt->type), *u = str_at(m, vt->unit);
    PyObject *r = (t && u) ? PyTuple_Pack(2, t, u) : NULL;
    Py_XDECREF(t);
    Py_XDECREF(u);
    return r;
}

static PyObject *ProfileData_header(ProfileData *self, PyObject *Py_UNUSED(ignored))
{
    const cprof_msg_t *m = self->p->msg;
    PyObject *types = PyList_New((Py_ssize_t)m->n_sample_type);
    PyObject *comments = PyList_New((Py_ssize_t)m->n_comment);
    PyObject *period_type = NULL, *r = NULL;
    if (types == NULL || comments == NULL)
        goto done;
    for (size_t i = 0; i < m->n_sample_type; i++) {
        PyObject *vt = value_type(m, m->sample_type[i]);
        if (vt == NULL)
            goto done;
        PyList_SET_ITEM(types, (Py_ssize_t)i, vt);
    }
    for (size_t i = 0; i < m->n_comment; i++) {
        PyObject *c = str_at(m, m->comment[i]);
        if (c == NULL)
            goto done;
        PyList_SET_ITEM(comments, (Py_ssize_t)i, c);
    }
    period_type = value_type(m, m->period_type);
    if (period_type == NULL)
        goto done;
    r = Py_BuildValue("{sOsOsLsLsLsOsNsNsNsN}",
                      "sample_types", types, "period_type", period_type,
                      "period", (long long)m->period, "time_nanos", (long long)m->time_nanos,
                      "duration_nanos", (long long)m->duration_nanos, "comments", comments,
                      "default_sample_type", str_at(m, m->default_sample_type),
                      "drop_frames", str_at(m, m->drop_frames),
                      "keep_frames", str_at(m, m->keep_frames),
                      "doc_url", str_at(m, m->doc_url));
done:
    Py_XDECREF(types);
    Py_XDECREF(comments);
    Py_XDECREF(period_type);
    return r;
}

static PyObject *ProfileData_counts(ProfileData *self, PyObject *Py_UNUSED(ignored))
{
    const cprof_msg_t *m = self->p->msg;
    return Py_BuildValue("(nnnnn)", (Py_ssize_t)m->n_sample, (Py_ssize_t)m->n_location,
                         (Py_ssize_t)m->n_function, (Py_ssize_t)m->n_mapping,
                         (Py_ssize_t)m->n_string_table);
}

static PyObject *ProfileData_string(ProfileData *self, PyObject *arg)
{
    Py_ssize_t i;
    if (index_arg(arg, self->p->msg->n_string_table, "string", &i) < 0)
        return NULL;
    return str_at(self->p->msg, i);
}

static PyObject *label_tuple(const cprof_msg_t *m, const Perftools__Profiles__Label *l)
{
    PyObject *key = str_at(m, l->key);
    PyObject *str = l->str != 0 ? str_at(m, l->str) : Py_NewRef(Py_None);
    PyObject *unit = l->num_unit != 0 ? str_at(m, l->num_unit) : Py_NewRef(Py_None);
    PyObject *r = NULL;
    if (key && str && unit)
        r = Py_BuildValue("(OOLO)", key, str, (long long)l->num, unit);
    Py_XDECREF(key);
    Py_XDECREF(str);
    Py_XDECREF(unit);
    return r;
}

/* sample(i) -> (location ids, values, ((key, str|None, num, unit|None), ...)) */
static PyObject *ProfileData_sample(ProfileData *self, PyObject *arg)
{
    const cprof_msg_t *m = self->p->msg;
    Py_ssize_t i;
    if (index_arg(arg, m->n_sample, "sample", &i) < 0)
        return NULL;
    const Perftools__Profiles__Sample *s = m->sample[i];
    PyObject *ids = PyTuple_New((Py_ssize_t)s->n_location_id);
    PyObject *values = PyTuple_New((Py_ssize_t)s->n_value);
    PyObject *labels = PyTuple_New((Py_ssize_t)s->n_label);
    PyObject *r = NULL;
    if (ids == NULL || values == NULL || labels == NULL)
        goto done;
    for (size_t j = 0; j < s->n_location_id; j++) {
        PyObject *v = PyLong_FromUnsignedLongLong(s->location_id[j]);
        if (v == NULL)
            goto done;
        PyTuple_SET_ITEM(ids, (Py_ssize_t)j, v);
    }
    for (size_t j = 0; j < s->n_value; j++) {
        PyObject *v = PyLong_FromLongLong(s->value[j]);
        if (v == NULL)
            goto done;
        PyTuple_SET_ITEM(values, (Py_ssize_t)j, v);
    }
    for (size_t j = 0; j < s->n_label; j++) {
        PyObject *v = label_tuple(m, s->label[j]);
        if (v == NULL)
            goto done;
        PyTuple_SET_ITEM(labels, (Py_ssize_t)j, v);
    }
    r = PyTuple_Pack(3, ids, values, labels);
done:
    Py_XDECREF(ids);
    Py_XDECREF(values);
    Py_XDECREF(labels);
    return r;
}

/* location(i) -> (id, mapping_id, address, ((function_id, line, column), ...), is_folded) */
static PyObject *ProfileData_location(ProfileData *self, PyObject *arg)
{
    const cprof_msg_t *m = self->p->msg;
    Py_ssize_t i;
    if (index_arg(arg, m->n_location, "location", &i) < 0)
        return NULL;
    const Perftools__Profiles__Location *loc = m->location[i];
    PyObject *lines = PyTuple_New((Py_ssize_t)loc->n_line);
    if (lines == NULL)
        return NULL;
    for (size_t j = 0; j < loc->n_line; j++) {
        const Perftools__Profiles__Line *ln = loc->line[j];
        PyObject *t = Py_BuildValue("(KLL)", (unsigned long long)ln->function_id,
                                    (long long)ln->line, (long long)ln->column);
        if (t == NULL) {
            Py_DECREF(lines);
            return NULL;
        }
        PyTuple_SET_ITEM(lines, (Py_ssize_t)j, t);
    }
    return Py_BuildValue("(KKKNO)", (unsigned long long)loc->id,
                         (unsigned long long)loc->mapping_id, (unsigned long long)loc->address,
                         lines, loc->is_folded ? Py_True : Py_False);
}

/* function(i) -> (id, name, system_name, filename, start_line) */
static PyObject *ProfileData_function(ProfileData *self, PyObject *arg)
{
    const cprof_msg_t *m = self->p->msg;
    Py_ssize_t i;
    if (index_arg(arg, m->n_function, "function", &i) < 0)
        return NULL;
    const Perftools__Profiles__Function *f = m->function[i];
    return Py_BuildValue("(KNNNL)", (unsigned long long)f->id, str_at(m, f->name),
                         str_at(m, f->system_name), str_at(m, f->filename),
                         (long long)f->start_line);
}

/* mapping(i) -> (id, start, limit, offset, filename, build_id,
 *                has_functions, has_filenames, has_line_numbers, has_inline_frames) */
static PyObject *ProfileData_mapping(ProfileData *self, PyObject *arg)
{
    const cprof_msg_t *m = self->p->msg;
    Py_ssize_t i;
    if (index_arg(arg, m->n_mapping, "mapping", &i) < 0)
        return NULL;
    const Perftools__Profiles__Mapping *mp = m->mapping[i];
    return Py_BuildValue("(KKKKNNOOOO)", (unsigned long long)mp->id,
                         (unsigned long long)mp->memory_start,
                         (unsigned long long)mp->memory_limit,
                         (unsigned long long)mp->file_offset, str_at(m, mp->filename),
                         str_at(m, mp->build_id), mp->has_functions ? Py_True : Py_False,
                         mp->has_filenames ? Py_True : Py_False,
                         mp->has_line_numbers ? Py_True : Py_False,
                         mp->has_inline_frames ? Py_True : Py_False);
}

static PyObject *find_index(const cprof_idmap_t *map, size_t n, PyObject *arg)
{
    unsigned long long id = PyLong_AsUnsignedLongLong(arg);
    if (id == (unsigned long long)-1 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError))
            return NULL;
        PyErr_Clear();
        return PyLong_FromLong(-1);
    }
    return PyLong_FromLong(cprof_pprof_find(map, n, id));
}

static PyObject *ProfileData_location_index(ProfileData *self, PyObject *arg)
{
    return find_index(&self->p->locations, self->p->msg->n_location, arg);
}

static PyObject *ProfileData_function_index(ProfileData *self, PyObject *arg)
{
    return find_index(&self->p->functions, self->p->msg->n_function, arg);
}

static PyObject *ProfileData_mapping_index(ProfileData *self, PyObject *arg)
{
    return find_index(&self->p->mappings, self->p->msg->n_mapping, arg);
}

/* A 128-bit sum as a Python int: hi * 2^64 + lo. */
static PyObject *sum_to_long(cprof_sum_t s)
{
    if ((s.hi == 0 && s.lo <= (uint64_t)INT64_MAX) || (s.hi == -1 && s.lo > (uint64_t)INT64_MAX))
        return PyLong_FromLongLong((long long)(int64_t)s.lo);
    PyObject *hi = PyLong_FromLongLong(s.hi);
    PyObject *shift = PyLong_FromLong(64);
    PyObject *lo = PyLong_FromUnsignedLongLong(s.lo);
    PyObject *shifted = hi && shift ? PyNumber_Lshift(hi, shift) : NULL;
    PyObject *r = shifted && lo ? PyNumber_Or(shifted, lo) : NULL;
    Py_XDECREF(hi);
    Py_XDECREF(shift);
    Py_XDECREF(lo);
    Py_XDECREF(shifted);
    return r;
}

static PyObject *ProfileData_totals(ProfileData *self, PyObject *Py_UNUSED(ignored))
{
    const cprof_msg_t *m = self->p->msg;
    cprof_sum_t *totals = PyMem_Calloc(m->n_sample_type + 1, sizeof *totals);
    if (totals == NULL)
        return PyErr_NoMemory();
    Py_BEGIN_ALLOW_THREADS
    cprof_pprof_totals(self->p, totals);
    Py_END_ALLOW_THREADS
    PyObject *r = PyTuple_New((Py_ssize_t)m->n_sample_type);
    for (size_t j = 0; r != NULL && j < m->n_sample_type; j++) {
        PyObject *v = sum_to_long(totals[j]);
        if (v == NULL)
            Py_CLEAR(r);
        else
            PyTuple_SET_ITEM(r, (Py_ssize_t)j, v);
    }
    PyMem_Free(totals);
    return r;
}

static int is_string(const cprof_msg_t *m, int64_t index, const char *text)
{
    size_t n = strlen(text);
    return m->string_table[index].len == n && memcmp(m->string_table[index].data, text, n) == 0;
}

/* The total reports use, as pprof's computeTotal: the sum of the absolute
 * values of one sample type, or, in a -diff_base profile, of the base
 * samples' (those labelled pprof::base=true) alone. */
static PyObject *ProfileData_abs_total(ProfileData *self, PyObject *arg)
{
    const cprof_msg_t *m = self->p->msg;
    Py_ssize_t index;
    if (index_arg(arg, m->n_sample_type, "sample type", &index) < 0)
        return NULL;
    /* Sums of absolute values, exact: |INT64_MIN| fits no int64, so each
     * value is added as two halves that do. */
    cprof_sum_t total = {0, 0}, base_total = {0, 0};
    for (size_t i = 0; i < m->n_sample; i++) {
        const Perftools__Profiles__Sample *s = m->sample[i];
        int64_t v = s->value[index];
        int64_t half = v < 0 ? -(v / 2) : v / 2, rest = v < 0 ? -(v + half) : v - half;
        cprof_sum_add(&total, half);
        cprof_sum_add(&total, rest);
        for (size_t j = 0; j < s->n_label; j++)
            if (is_string(m, s->label[j]->key, "pprof::base") &&
                is_string(m, s->label[j]->str, "true")) {
                cprof_sum_add(&base_total, half);
                cprof_sum_add(&base_total, rest);
                break;
            }
    }
    return sum_to_long(base_total.hi != 0 || base_total.lo != 0 ? base_total : total);
}

static PyObject *ProfileData_encode(ProfileData *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"level", NULL};
    int level = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|i:encode", kwlist, &level))
        return NULL;
    if (level < 0 || level > 9)
        return PyErr_Format(PyExc_ValueError,
                            "level must be 0 (raw protobuf) or 1..9 (gzip), not %d", level);
    uint8_t *out = NULL;
    size_t n = 0;
    cprof_error_t err;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = cprof_pprof_encode(self->p, level, &out, &n, &err);
    Py_END_ALLOW_THREADS
    if (rc != 0)
        return raise_code(rc, &err);
    PyObject *r = PyBytes_FromStringAndSize((const char *)out, (Py_ssize_t)n);
    free(out);
    return r;
}

/* function_graph(sample_index) -> (nodes, edges, any_inlined); see graph.h. */
static PyObject *ProfileData_function_graph(ProfileData *self, PyObject *arg)
{
    const cprof_msg_t *m = self->p->msg;
    Py_ssize_t index;
    if (index_arg(arg, m->n_sample_type, "sample type", &index) < 0)
        return NULL;
    cprof_graph_t g;
    cprof_error_t err;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = cprof_graph_functions(self->p, (size_t)index, &g, &err);
    Py_END_ALLOW_THREADS
    if (rc != 0)
        return raise_code(rc, &err);
    PyObject *nodes = PyList_New((Py_ssize_t)g.n_nodes);
    PyObject *edges = PyList_New((Py_ssize_t)g.n_edges);
    PyObject *r = NULL;
    if (nodes == NULL || edges == NULL)
        goto done;
    for (size_t i = 0; i < g.n_nodes; i++) {
        const cprof_graph_node_t *n = &g.nodes[i];
        PyObject *t = Py_BuildValue("(NNLNN)",
                                    n->name >= 0 ? str_at(m, n->name) : PyUnicode_FromString(""),
                                    n->name >= 0 ? PyUnicode_FromString("") : str_at(m, n->objfile),
                                    (long long)n->start_line, sum_to_long(n->flat),
                                    sum_to_long(n->cum));
        if (t == NULL)
            goto done;
        PyList_SET_ITEM(nodes, (Py_ssize_t)i, t);
    }
    for (size_t i = 0; i < g.n_edges; i++) {
        const cprof_graph_edge_t *e = &g.edges[i];
        PyObject *t = Py_BuildValue("(IINO)", e->node, e->caller, sum_to_long(e->weight),
                                    e->all_inline ? Py_True : Py_False);
        if (t == NULL)
            goto done;
        PyList_SET_ITEM(edges, (Py_ssize_t)i, t);
    }
    r = Py_BuildValue("(OOO)", nodes, edges, g.any_inlined ? Py_True : Py_False);
done:
    Py_XDECREF(nodes);
    Py_XDECREF(edges);
    cprof_graph_free(&g);
    return r;
}

/* stack_sums(sample_index) -> [(location indices leaf first, sum)]; see graph.h. */
static PyObject *ProfileData_stack_sums(ProfileData *self, PyObject *arg)
{
    const cprof_msg_t *m = self->p->msg;
    Py_ssize_t index;
    if (index_arg(arg, m->n_sample_type, "sample type", &index) < 0)
        return NULL;
    cprof_stack_sums_t sums;
    cprof_error_t err;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = cprof_graph_stack_sums(self->p, (size_t)index, &sums, &err);
    Py_END_ALLOW_THREADS
    if (rc != 0)
        return raise_code(rc, &err);
    PyObject *list = PyList_New((Py_ssize_t)sums.n);
    for (size_t k = 0; list != NULL && k < sums.n; k++) {
        PyObject *locs = PyTuple_New((Py_ssize_t)sums.len[k]);
        for (size_t j = 0; locs != NULL && j < sums.len[k]; j++) {
            PyObject *v = PyLong_FromUnsignedLong(sums.pool[sums.start[k] + j]);
            if (v == NULL)
                Py_CLEAR(locs);
            else
                PyTuple_SET_ITEM(locs, (Py_ssize_t)j, v);
        }
        PyObject *item = locs != NULL ? Py_BuildValue("(NN)", locs, sum_to_long(sums.sums[k]))
                                      : NULL;
        if (item == NULL)
            Py_CLEAR(list);
        else
            PyList_SET_ITEM(list, (Py_ssize_t)k, item);
    }
    cprof_stack_sums_free(&sums);
    return list;
}

static PyMethodDef ProfileData_methods[] = {
    {"header", (PyCFunction)ProfileData_header, METH_NOARGS,
     "header() -> dict of the profile's scalar fields and sample types"},
    {"counts", (PyCFunction)ProfileData_counts, METH_NOARGS,
     "counts() -> (samples, locations, functions, mappings, strings)"},
    {"string", (PyCFunction)ProfileData_string, METH_O, "string(i) -> string_table[i]"},
    {"sample", (PyCFunction)ProfileData_sample, METH_O,
     "sample(i) -> (location_ids, values, ((key, str|None, num, unit|None), ...))"},
    {"location", (PyCFunction)ProfileData_location, METH_O,
     "location(i) -> (id, mapping_id, address, ((function_id, line, column), ...), "
     "is_folded)"},
    {"function", (PyCFunction)ProfileData_function, METH_O,
     "function(i) -> (id, name, system_name, filename, start_line)"},
    {"mapping", (PyCFunction)ProfileData_mapping, METH_O,
     "mapping(i) -> (id, start, limit, offset, filename, build_id, has_functions, "
     "has_filenames, has_line_numbers, has_inline_frames)"},
    {"location_index", (PyCFunction)ProfileData_location_index, METH_O,
     "location_index(id) -> index of the location with that id, or -1"},
    {"function_index", (PyCFunction)ProfileData_function_index, METH_O,
     "function_index(id) -> index of the function with that id, or -1"},
    {"mapping_index", (PyCFunction)ProfileData_mapping_index, METH_O,
     "mapping_index(id) -> index of the mapping with that id, or -1"},
    {"totals", (PyCFunction)ProfileData_totals, METH_NOARGS,
     "totals() -> sum of each sample type over all samples"},
    {"abs_total", (PyCFunction)ProfileData_abs_total, METH_O,
     "abs_total(sample_index) -> the report total of that sample type (pprof's "
     "computeTotal: absolute values, the base samples' alone in a diff profile)"},
    {"stack_sums", (PyCFunction)ProfileData_stack_sums, METH_O,
     "stack_sums(sample_index) -> [(location indices leaf first, summed value)] of the "
     "distinct stacks with a non-zero value"},
    {"function_graph", (PyCFunction)ProfileData_function_graph, METH_O,
     "function_graph(sample_index) -> (nodes [(name, objfile, start_line, flat, cum)], "
     "edges into inlined nodes [(node, caller, weight, all_inline)], any_inlined)"},
    {"encode", (PyCFunction)(void (*)(void))ProfileData_encode, METH_VARARGS | METH_KEYWORDS,
     "encode(level=1) -> bytes: gzipped profile.proto (raw protobuf when level is 0)"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ProfileData_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "cprof._core.ProfileData",
    .tp_doc = "A decoded, validated profile.proto message held in C memory.",
    .tp_basicsize = sizeof(ProfileData),
    .tp_weaklistoffset = offsetof(ProfileData, weakrefs),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_dealloc = (destructor)ProfileData_dealloc,
    .tp_methods = ProfileData_methods,
};

/* --- build: a profile from Python tables ----------------------------------- */

typedef struct {
    cprof_arena_t *arena;
} builder_t;

static int as_i64(PyObject *o, int64_t *out)
{
    long long v = PyLong_AsLongLong(o);
    if (v == -1 && PyErr_Occurred())
        return -1;
    *out = v;
    return 0;
}

static int as_u64(PyObject *o, uint64_t *out)
{
    unsigned long long v = PyLong_AsUnsignedLongLong(o);
    if (v == (unsigned long long)-1 && PyErr_Occurred())
        return -1;
    *out = v;
    return 0;
}

/* A sequence of n items as a fast sequence (new reference), or NULL with a
 * TypeError naming what. want < 0 accepts any length. */
static PyObject *fast(PyObject *o, Py_ssize_t want, const char *what)
{
    PyObject *f = PySequence_Fast(o, what);
    if (f != NULL && want >= 0 && PySequence_Fast_GET_SIZE(f) != want) {
        PyErr_Format(PyExc_TypeError, "%s: expected %zd items, got %zd", what, want,
                     PySequence_Fast_GET_SIZE(f));
        Py_CLEAR(f);
    }
    return f;
}

/* Convert a sequence of ints into a new arena array (*out, *n). */
static int int_array(builder_t *b, PyObject *o, int is_unsigned, void **out, size_t *n,
                     const char *what)
{
    PyObject *f = fast(o, -1, what);
    if (f == NULL)
        return -1;
    Py_ssize_t len = PySequence_Fast_GET_SIZE(f);
    int64_t *arr = cprof_arena_calloc(b->arena, (size_t)len, sizeof *arr);
    int rc = arr == NULL && len > 0 ? (PyErr_NoMemory(), -1) : 0;
    for (Py_ssize_t i = 0; rc == 0 && i < len; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(f, i);
        rc = is_unsigned ? as_u64(item, (uint64_t *)&arr[i]) : as_i64(item, &arr[i]);
    }
    Py_DECREF(f);
    *out = arr;
    *n = (size_t)len;
    return rc;
}

/* Allocate count message pointers, each pointing at a zeroed message of
 * size bytes initialised by init. */
static void **messages(builder_t *b, size_t count, size_t size, void (*init)(void *))
{
    void **ptrs = cprof_arena_calloc(b->arena, count, sizeof *ptrs);
    unsigned char *block = cprof_arena_calloc(b->arena, count, size);
    if ((ptrs == NULL || block == NULL) && count > 0) {
        PyErr_NoMemory();
        return NULL;
    }
    for (size_t i = 0; i < count; i++) {
        ptrs[i] = block + i * size;
        init(ptrs[i]);
    }
    return ptrs;
}

#define MESSAGES(b, count, type, init) \
    ((type **)messages((b), (count), sizeof(type), (void (*)(void *))(init)))

static int build_strings(builder_t *b, cprof_msg_t *m, PyObject *strings)
{
    PyObject *f = fast(strings, -1, "strings must be a sequence of str");
    if (f == NULL)
        return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(f);
    m->n_string_table = (size_t)n;
    m->string_table = cprof_arena_calloc(b->arena, (size_t)n, sizeof *m->string_table);
    int rc = m->string_table == NULL && n > 0 ? (PyErr_NoMemory(), -1) : 0;
    for (Py_ssize_t i = 0; rc == 0 && i < n; i++) {
        PyObject *s = PySequence_Fast_GET_ITEM(f, i);
        PyObject *encoded = PyUnicode_AsEncodedString(s, "utf-8", "surrogateescape");
        if (encoded == NULL) {
            rc = -1;
            break;
        }
        size_t len = (size_t)PyBytes_GET_SIZE(encoded);
        uint8_t *copy = cprof_arena_calloc(b->arena, len + 1, 1);
        if (copy == NULL) {
            PyErr_NoMemory();
            rc = -1;
        } else {
            memcpy(copy, PyBytes_AS_STRING(encoded), len);
            m->string_table[i].data = copy;
            m->string_table[i].len = len;
        }
        Py_DECREF(encoded);
    }
    Py_DECREF(f);
    return rc;
}

static Perftools__Profiles__ValueType *build_value_type(builder_t *b, PyObject *o)
{
    PyObject *f = fast(o, 2, "a value type must be (type index, unit index)");
    if (f == NULL)
        return NULL;
    Perftools__Profiles__ValueType *vt = cprof_arena_calloc(b->arena, 1, sizeof *vt);
    if (vt == NULL) {
        PyErr_NoMemory();
    } else {
        perftools__profiles__value_type__init(vt);
        if (as_i64(PySequence_Fast_GET_ITEM(f, 0), &vt->type) < 0 ||
            as_i64(PySequence_Fast_GET_ITEM(f, 1), &vt->unit) < 0)
            vt = NULL;
    }
    Py_DECREF(f);
    return vt;
}

static int build_header(builder_t *b, cprof_msg_t *m, PyObject *header, PyObject *types)
{
    PyObject *h = fast(header, 9, "header must be (period_type, period, time_nanos, "
                                  "duration_nanos, comments, default_sample_type, "
                                  "drop_frames, keep_frames, doc_url)");
    if (h == NULL)
        return -1;
    PyObject **it = PySequence_Fast_ITEMS(h);
    int rc = -1;
    if (it[0] != Py_None && (m->period_type = build_value_type(b, it[0])) == NULL)
        goto done;
    if (as_i64(it[1], &m->period) < 0 || as_i64(it[2], &m->time_nanos) < 0 ||
        as_i64(it[3], &m->duration_nanos) < 0 ||
        int_array(b, it[4], 0, (void **)&m->comment, &m->n_comment, "comments") < 0 ||
        as_i64(it[5], &m->default_sample_type) < 0 || as_i64(it[6], &m->drop_frames) < 0 ||
        as_i64(it[7], &m->keep_frames) < 0 || as_i64(it[8], &m->doc_url) < 0)
        goto done;
    PyObject *t = fast(types, -1, "sample_types must be a sequence");
    if (t == NULL)
        goto done;
    m->n_sample_type = (size_t)PySequence_Fast_GET_SIZE(t);
    m->sample_type = cprof_arena_calloc(b->arena, m->n_sample_type, sizeof(void *));
    rc = 0;
    for (size_t i = 0; rc == 0 && i < m->n_sample_type; i++) {
        m->sample_type[i] = build_value_type(b, PySequence_Fast_GET_ITEM(t, (Py_ssize_t)i));
        rc = m->sample_type[i] == NULL ? -1 : 0;
    }
    Py_DECREF(t);
done:
    Py_DECREF(h);
    return rc;
}

static int build_label(builder_t *b, Perftools__Profiles__Label *l, PyObject *o)
{
    PyObject *f = fast(o, 4, "a label must be (key, str, num, num_unit) string indices/num");
    if (f == NULL)
        return -1;
    PyObject **it = PySequence_Fast_ITEMS(f);
    int rc = as_i64(it[0], &l->key) < 0 || as_i64(it[1], &l->str) < 0 ||
                     as_i64(it[2], &l->num) < 0 || as_i64(it[3], &l->num_unit) < 0
                 ? -1
                 : 0;
    (void)b;
    Py_DECREF(f);
    return rc;
}

static int build_samples(builder_t *b, cprof_msg_t *m, PyObject *samples)
{
    PyObject *f = fast(samples, -1, "samples must be a sequence");
    if (f == NULL)
        return -1;
    m->n_sample = (size_t)PySequence_Fast_GET_SIZE(f);
    m->sample = MESSAGES(b, m->n_sample, Perftools__Profiles__Sample,
                         perftools__profiles__sample__init);
    int rc = m->sample == NULL && m->n_sample > 0 ? -1 : 0;
    for (size_t i = 0; rc == 0 && i < m->n_sample; i++) {
        Perftools__Profiles__Sample *s = m->sample[i];
        PyObject *t = fast(PySequence_Fast_GET_ITEM(f, (Py_ssize_t)i), 3,
                           "a sample must be (location_ids, values, labels)");
        if (t == NULL) {
            rc = -1;
            break;
        }
        PyObject **it = PySequence_Fast_ITEMS(t);
        PyObject *labels = NULL;
        rc = -1;
        if (int_array(b, it[0], 1, (void **)&s->location_id, &s->n_location_id,
                      "location_ids") == 0 &&
            int_array(b, it[1], 0, (void **)&s->value, &s->n_value, "values") == 0 &&
            (labels = fast(it[2], -1, "labels must be a sequence")) != NULL) {
            s->n_label = (size_t)PySequence_Fast_GET_SIZE(labels);
            s->label = MESSAGES(b, s->n_label, Perftools__Profiles__Label,
                                perftools__profiles__label__init);
            rc = s->label == NULL && s->n_label > 0 ? -1 : 0;
            for (size_t j = 0; rc == 0 && j < s->n_label; j++)
                rc = build_label(b, s->label[j],
                                 PySequence_Fast_GET_ITEM(labels, (Py_ssize_t)j));
        }
        Py_XDECREF(labels);
        Py_DECREF(t);
    }
    Py_DECREF(f);
    return rc;
}

static int build_mappings(builder_t *b, cprof_msg_t *m, PyObject *mappings)
{
    PyObject *f = fast(mappings, -1, "mappings must be a sequence");
    if (f == NULL)
        return -1;
    m->n_mapping = (size_t)PySequence_Fast_GET_SIZE(f);
    m->mapping = MESSAGES(b, m->n_mapping, Perftools__Profiles__Mapping,
                          perftools__profiles__mapping__init);
    int rc = m->mapping == NULL && m->n_mapping > 0 ? -1 : 0;
    for (size_t i = 0; rc == 0 && i < m->n_mapping; i++) {
        Perftools__Profiles__Mapping *mp = m->mapping[i];
        PyObject *t = fast(PySequence_Fast_GET_ITEM(f, (Py_ssize_t)i), 10,
                           "a mapping must be (id, start, limit, offset, filename, build_id, "
                           "has_functions, has_filenames, has_line_numbers, "
                           "has_inline_frames)");
        if (t == NULL) {
            rc = -1;
            break;
        }
        PyObject **it = PySequence_Fast_ITEMS(t);
        rc = as_u64(it[0], &mp->id) < 0 || as_u64(it[1], &mp->memory_start) < 0 ||
                     as_u64(it[2], &mp->memory_limit) < 0 ||
                     as_u64(it[3], &mp->file_offset) < 0 || as_i64(it[4], &mp->filename) < 0 ||
                     as_i64(it[5], &mp->build_id) < 0
                 ? -1
                 : 0;
        int flags[4];
        for (int k = 0; rc == 0 && k < 4; k++) {
            flags[k] = PyObject_IsTrue(it[6 + k]);
            rc = flags[k] < 0 ? -1 : 0;
        }
        if (rc == 0) {
            mp->has_functions = flags[0];
            mp->has_filenames = flags[1];
            mp->has_line_numbers = flags[2];
            mp->has_inline_frames = flags[3];
        }
        Py_DECREF(t);
    }
    Py_DECREF(f);
    return rc;
}

static int build_line(builder_t *b, Perftools__Profiles__Line *ln, PyObject *o)
{
    PyObject *f = fast(o, 3, "a line must be (function_id, line, column)");
    if (f == NULL)
        return -1;
    PyObject **it = PySequence_Fast_ITEMS(f);
    int rc = as_u64(it[0], &ln->function_id) < 0 || as_i64(it[1], &ln->line) < 0 ||
                     as_i64(it[2], &ln->column) < 0
                 ? -1
                 : 0;
    (void)b;
    Py_DECREF(f);
    return rc;
}

static int build_locations(builder_t *b, cprof_msg_t *m, PyObject *locations)
{
    PyObject *f = fast(locations, -1, "locations must be a sequence");
    if (f == NULL)
        return -1;
    m->n_location = (size_t)PySequence_Fast_GET_SIZE(f);
    m->location = MESSAGES(b, m->n_location, Perftools__Profiles__Location,
                           perftools__profiles__location__init);
    int rc = m->location == NULL && m->n_location > 0 ? -1 : 0;
    for (size_t i = 0; rc == 0 && i < m->n_location; i++) {
        Perftools__Profiles__Location *loc = m->location[i];
        PyObject *t = fast(PySequence_Fast_GET_ITEM(f, (Py_ssize_t)i), 5,
                           "a location must be (id, mapping_id, address, lines, is_folded)");
        if (t == NULL) {
            rc = -1;
            break;
        }
        PyObject **it = PySequence_Fast_ITEMS(t);
        PyObject *lines = NULL;
        int folded = -1;
        rc = -1;
        if (as_u64(it[0], &loc->id) == 0 && as_u64(it[1], &loc->mapping_id) == 0 &&
            as_u64(it[2], &loc->address) == 0 && (folded = PyObject_IsTrue(it[4])) >= 0 &&
            (lines = fast(it[3], -1, "lines must be a sequence")) != NULL) {
            loc->is_folded = folded;
            loc->n_line = (size_t)PySequence_Fast_GET_SIZE(lines);
            loc->line = MESSAGES(b, loc->n_line, Perftools__Profiles__Line,
                                 perftools__profiles__line__init);
            rc = loc->line == NULL && loc->n_line > 0 ? -1 : 0;
            for (size_t j = 0; rc == 0 && j < loc->n_line; j++)
                rc = build_line(b, loc->line[j], PySequence_Fast_GET_ITEM(lines, (Py_ssize_t)j));
        }
        Py_XDECREF(lines);
        Py_DECREF(t);
    }
    Py_DECREF(f);
    return rc;
}

static int build_functions(builder_t *b, cprof_msg_t *m, PyObject *functions)
{
    PyObject *f = fast(functions, -1, "functions must be a sequence");
    if (f == NULL)
        return -1;
    m->n_function = (size_t)PySequence_Fast_GET_SIZE(f);
    m->function = MESSAGES(b, m->n_function, Perftools__Profiles__Function,
                           perftools__profiles__function__init);
    int rc = m->function == NULL && m->n_function > 0 ? -1 : 0;
    for (size_t i = 0; rc == 0 && i < m->n_function; i++) {
        Perftools__Profiles__Function *fn = m->function[i];
        PyObject *t = fast(PySequence_Fast_GET_ITEM(f, (Py_ssize_t)i), 5,
                           "a function must be (id, name, system_name, filename, start_line)");
        if (t == NULL) {
            rc = -1;
            break;
        }
        PyObject **it = PySequence_Fast_ITEMS(t);
        rc = as_u64(it[0], &fn->id) < 0 || as_i64(it[1], &fn->name) < 0 ||
                     as_i64(it[2], &fn->system_name) < 0 || as_i64(it[3], &fn->filename) < 0 ||
                     as_i64(it[4], &fn->start_line) < 0
                 ? -1
                 : 0;
        Py_DECREF(t);
    }
    Py_DECREF(f);
    return rc;
}

static PyObject *core_build(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *strings, *header, *types, *samples, *mappings, *locations, *functions;
    if (!PyArg_ParseTuple(args, "OOOOOOO:build", &strings, &header, &types, &samples,
                          &mappings, &locations, &functions))
        return NULL;
    cprof_pprof_t *p = calloc(1, sizeof *p);
    if (p == NULL)
        return PyErr_NoMemory();
    builder_t b = {.arena = &p->arena};
    p->msg = cprof_arena_calloc(&p->arena, 1, sizeof *p->msg);
    if (p->msg == NULL) {
        cprof_pprof_free(p);
        return PyErr_NoMemory();
    }
    perftools__profiles__profile__init(p->msg);
    if (build_strings(&b, p->msg, strings) < 0 || build_header(&b, p->msg, header, types) < 0 ||
        build_samples(&b, p->msg, samples) < 0 || build_mappings(&b, p->msg, mappings) < 0 ||
        build_locations(&b, p->msg, locations) < 0 ||
        build_functions(&b, p->msg, functions) < 0) {
        cprof_pprof_free(p);
        return NULL;
    }
    cprof_error_t err;
    int rc = cprof_pprof_index(p, NULL, &err);
    if (rc != 0) {
        cprof_pprof_free(p);
        return raise_code(rc, &err);
    }
    return wrap(p);
}

/* --- the CPU sampler --------------------------------------------------------- */

/* Coroutine identities are reported once per aggregate, in order (GIL). */
static size_t coroutine_cursor;

static PyObject *LabelSet_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"id", NULL};
    unsigned long long id;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "K:LabelSet", kwlist, &id))
        return NULL;
    cprof_labelset_object_t *self = (cprof_labelset_object_t *)type->tp_alloc(type, 0);
    if (self != NULL)
        self->id = id;
    return (PyObject *)self;
}

static PyObject *LabelSet_get_id(cprof_labelset_object_t *self, void *Py_UNUSED(closure))
{
    return PyLong_FromUnsignedLongLong(self->id);
}

static PyGetSetDef LabelSet_getset[] = {
    {"id", (getter)LabelSet_get_id, NULL, "the label set's number", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject LabelSet_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "cprof._core.LabelSet",
    .tp_doc = "The value cprof.labels() keeps in its ContextVar; signal handlers read its id.",
    .tp_basicsize = sizeof(cprof_labelset_object_t),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = LabelSet_new,
    .tp_getset = LabelSet_getset,
};

/* ValueError(text + repr(value)): PyErr_Format has no %g. */
static PyObject *value_error_double(const char *text, double value)
{
    PyObject *number = PyFloat_FromDouble(value);
    if (number != NULL) {
        PyErr_Format(PyExc_ValueError, "%s%R", text, number);
        Py_DECREF(number);
    }
    return NULL;
}

static PyObject *core_cpu_start(PyObject *Py_UNUSED(module), PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"hz", "mode", "max_depth", "buffer_samples", "label_var", "hook",
                             "poll_ms", "native", NULL};
    double hz = 100;
    const char *mode = "cpu";
    Py_ssize_t max_depth = 128, buffer = 2048;
    PyObject *label_var = Py_None, *hook = Py_None;
    double poll_ms = 50;
    int native = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|dsnnOOdp:cpu_start", kwlist, &hz, &mode,
                                     &max_depth, &buffer, &label_var, &hook, &poll_ms, &native))
        return NULL;
    if (!(hz >= 1 && hz <= 100000))
        return value_error_double("hz must be between 1 and 100000, not ", hz);
    if (strcmp(mode, "cpu") != 0 && strcmp(mode, "wall") != 0)
        return PyErr_Format(PyExc_ValueError, "mode must be 'cpu' or 'wall', not %R",
                            PyTuple_GET_ITEM(args, 1));
    if (max_depth < 1 || max_depth > 65536)
        return PyErr_Format(PyExc_ValueError, "max_depth must be 1..65536, not %zd", max_depth);
    if (buffer < 16 || buffer > (1 << 22))
        return PyErr_Format(PyExc_ValueError, "buffer_samples must be 16..4194304, not %zd",
                            buffer);
    if (!(poll_ms >= 1 && poll_ms <= 1000))
        return value_error_double("poll_ms must be 1..1000, not ", poll_ms);
    if (label_var != Py_None && !PyContextVar_CheckExact(label_var))
        return PyErr_Format(PyExc_TypeError, "label_var must be a ContextVar");
    if (hook != Py_None && !PyCallable_Check(hook))
        return PyErr_Format(PyExc_TypeError, "hook must be callable");
    cprof_sampler_config_t cfg = {
        .mode = mode[0] == 'w' ? CPROF_MODE_WALL : CPROF_MODE_CPU,
        .period_ns = (int64_t)(1e9 / hz),
        .max_depth = (size_t)max_depth,
        .native = native,
        .buffer_samples = (size_t)buffer,
        .poll_ns = (int64_t)(poll_ms * 1e6),
        .label_var = label_var != Py_None ? label_var : NULL,
        .labelset_type = &LabelSet_Type,
        .hook = hook != Py_None ? hook : NULL,
    };
    cprof_error_t err;
    int rc = cprof_sampler_start(&cfg, &err);
    if (rc != 0)
        return raise_code(rc, &err);
    coroutine_cursor = 0;
    Py_RETURN_NONE;
}

/* The interned functions, locations and stacks as a dict of Python lists
 * (see cprof/collect.py), or NULL with an exception set. */
static PyObject *export_tables(const cprof_stacks_t *st)
{
    PyObject *funcs = PyList_New((Py_ssize_t)st->n_funcs);
    PyObject *locs = PyList_New((Py_ssize_t)st->n_locs);
    PyObject *stacks = PyList_New((Py_ssize_t)st->n_stacks);
    PyObject *r = NULL;
    if (!funcs || !locs || !stacks)
        goto done;
    for (size_t i = 0; i < st->n_funcs; i++) {
        const cprof_func_t *f = &st->funcs[i];
        PyObject *t = Py_BuildValue("(OOOi)", f->qualname, f->name, f->filename, f->firstlineno);
        if (t == NULL)
            goto done;
        PyList_SET_ITEM(funcs, (Py_ssize_t)i, t);
    }
    for (size_t i = 0; i < st->n_locs; i++) {
        /* (function index or -1 for a native address, line, address) */
        const cprof_loc_t *l = &st->locs[i];
        PyObject *t = l->func == CPROF_FUNC_NATIVE
                          ? Py_BuildValue("(iiK)", -1, 0, (unsigned long long)l->address)
                          : Py_BuildValue("(IiK)", l->func, l->line, 0ULL);
        if (t == NULL)
            goto done;
        PyList_SET_ITEM(locs, (Py_ssize_t)i, t);
    }
    for (size_t i = 0; i < st->n_stacks; i++) {
        PyObject *t = PyTuple_New(st->stack_len[i]);
        if (t == NULL)
            goto done;
        for (uint32_t j = 0; j < st->stack_len[i]; j++) {
            PyObject *v = PyLong_FromUnsignedLong(st->stack_pool[st->stack_start[i] + j]);
            if (v == NULL) {
                Py_DECREF(t);
                goto done;
            }
            PyTuple_SET_ITEM(t, j, v);
        }
        PyList_SET_ITEM(stacks, (Py_ssize_t)i, t);
    }
    r = Py_BuildValue("{sOsOsO}", "functions", funcs, "locations", locs, "stacks", stacks);
done:
    Py_XDECREF(funcs);
    Py_XDECREF(locs);
    Py_XDECREF(stacks);
    return r;
}

/* Add key: value to dict d, stealing value; -1 (and d released) on failure. */
static int set_item_steal(PyObject *d, const char *key, PyObject *value)
{
    int rc = value == NULL ? -1 : PyDict_SetItemString(d, key, value);
    Py_XDECREF(value);
    return rc;
}

/* The CPU profile's tables: export_tables plus samples and stats. */
static PyObject *export_stacks(const cprof_stacks_t *st, const cprof_sampler_stats_t *stats)
{
    PyObject *r = export_tables(st);
    PyObject *samples = r == NULL ? NULL : PyList_New(0);
    if (samples == NULL)
        goto fail;
    for (size_t i = 0; i < st->n_aggs; i++) {
        const cprof_agg_t *a = &st->aggs[i];
        if (a->count == 0 && a->weight_ns == 0)
            continue;  /* a stack wall mode saw, which no sample came to */
        PyObject *t = Py_BuildValue("(IIKKLL)", a->stack, a->tid,
                                    (unsigned long long)a->label_set,
                                    (unsigned long long)a->coroutine, (long long)a->count,
                                    (long long)a->weight_ns);
        int appended = t == NULL ? -1 : PyList_Append(samples, t);
        Py_XDECREF(t);
        if (appended < 0) {
            Py_DECREF(samples);
            goto fail;
        }
    }
    if (set_item_steal(r, "samples", samples) < 0 ||
        set_item_steal(r, "stats", Py_BuildValue(
                           "{sKsKsKsKsKsLsi}", "samples", (unsigned long long)stats->samples,
                           "lost", (unsigned long long)stats->lost,
                           "threads", (unsigned long long)stats->threads_seen,
                           "timer_errors", (unsigned long long)stats->timer_errors,
                           "drains", (unsigned long long)stats->drains,
                           "taken_over_after_ns", (long long)stats->taken_over_after_ns,
                           "handlers_stuck", stats->handlers_stuck)) < 0)
        goto fail;
    return r;
fail:
    Py_XDECREF(r);
    return NULL;
}

static PyObject *core_cpu_stop(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    cprof_stacks_t st;
    cprof_sampler_stats_t stats;
    cprof_error_t err;
    int rc = cprof_sampler_stop(&st, &stats, &err);
    if (rc != 0 && !cprof_sampler_running() && st.funcs == NULL)
        return raise_code(rc, &err);
    PyObject *r = rc == 0 ? export_stacks(&st, &stats) : raise_code(rc, &err);
    cprof_stacks_clear(&st);
    return r;
}

static PyObject *core_cpu_drain(PyObject *Py_UNUSED(module), PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"refresh", NULL};
    int refresh = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|p:cpu_drain", kwlist, &refresh))
        return NULL;
    if (cprof_sampler_drain(refresh) < 0)
        return PyErr_NoMemory();
    Py_RETURN_NONE;
}

static int add_coroutine(uintptr_t coroutine, void *set)
{
    PyObject *id = PyLong_FromVoidPtr((void *)coroutine);
    int rc = id == NULL ? -1 : PySet_Add((PyObject *)set, id);
    Py_XDECREF(id);
    return rc;
}

static PyObject *core_cpu_new_coroutines(PyObject *Py_UNUSED(module),
                                         PyObject *Py_UNUSED(ignored))
{
    PyObject *set = PySet_New(NULL);
    if (set != NULL && cprof_sampler_new_coroutines(&coroutine_cursor, add_coroutine, set) != 0)
        Py_CLEAR(set);
    return set;
}

static PyObject *core_cpu_sample_count(PyObject *Py_UNUSED(module),
                                       PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromUnsignedLongLong(cprof_sampler_sample_count());
}

static PyObject *core_measure_record_ns(PyObject *Py_UNUSED(module), PyObject *args)
{
    Py_ssize_t n, max_depth = 128;
    PyObject *label_var = Py_None;
    int native = 0;
    if (!PyArg_ParseTuple(args, "n|nOp:measure_record_ns", &n, &max_depth, &label_var, &native))
        return NULL;
    if (n < 1 || max_depth < 1)
        return PyErr_Format(PyExc_ValueError, "n and max_depth must be positive");
    if (label_var != Py_None && !PyContextVar_CheckExact(label_var))
        return PyErr_Format(PyExc_TypeError, "label_var must be a ContextVar");
    double ns = cprof_sampler_measure_record_ns((size_t)n, (size_t)max_depth,
                                                label_var != Py_None ? label_var : NULL, native);
    if (ns < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_RuntimeError,
                            "measure_record_ns: stop the running CPU profile first");
        return NULL;
    }
    return PyFloat_FromDouble(ns);
}

static PyObject *core_thread_started(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    cprof_sampler_thread_started();
    Py_RETURN_NONE;
}

static PyObject *core_thread_exiting(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    cprof_sampler_thread_exiting();
    Py_RETURN_NONE;
}

static PyObject *core_cpu_running(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(cprof_sampler_running());
}

static PyObject *core_before_fork(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    cprof_sampler_before_fork();
    Py_RETURN_NONE;
}

static PyObject *core_after_fork_parent(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    cprof_sampler_after_fork_parent();
    Py_RETURN_NONE;
}

static PyObject *core_after_fork_child(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    cprof_sampler_after_fork_child();
    cprof_heap_after_fork_child();
    Py_RETURN_NONE;
}

/* --- heap profile -------------------------------------------------------------- */

static PyObject *core_heap_start(PyObject *Py_UNUSED(module), PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"rate", "max_depth", NULL};
    long long rate = 512 * 1024;
    Py_ssize_t max_depth = 128;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|Ln:heap_start", kwlist, &rate, &max_depth))
        return NULL;
    if (rate < 1)
        return PyErr_Format(PyExc_ValueError,
                            "rate must be at least 1 byte (1 records every allocation), not %lld",
                            rate);
    if (max_depth < 1 || max_depth > CPROF_HEAP_MAX_DEPTH)
        return PyErr_Format(PyExc_ValueError, "max_depth must be between 1 and %d, not %zd",
                            CPROF_HEAP_MAX_DEPTH, max_depth);
    cprof_heap_config_t cfg = {.rate = rate, .max_depth = (size_t)max_depth};
    cprof_error_t err;
    int rc = cprof_heap_start(&cfg, &err);
    if (rc != 0)
        return raise_code(rc, &err);
    Py_RETURN_NONE;
}

static PyObject *core_heap_wrap_numpy(PyObject *Py_UNUSED(module), PyObject *capsule)
{
    if (!PyCapsule_CheckExact(capsule))
        return PyErr_Format(PyExc_TypeError, "expected numpy's _ARRAY_API capsule, not %s",
                            Py_TYPE(capsule)->tp_name);
    void **api = PyCapsule_GetPointer(capsule, NULL);
    if (api == NULL)
        return NULL;
    cprof_error_t err;
    int rc = cprof_heap_wrap_numpy(api, &err);
    if (rc != 0)
        return raise_code(rc, &err);
    Py_RETURN_NONE;
}

static int export_heap(const cprof_stacks_t *st, const cprof_heap_bucket_t *buckets, size_t n,
                       const cprof_heap_stats_t *stats, void *out)
{
    PyObject *r = export_tables(st);
    PyObject *list = r == NULL ? NULL : PyList_New((Py_ssize_t)n);
    if (list == NULL)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        const cprof_heap_bucket_t *b = &buckets[i];
        PyObject *t = Py_BuildValue("(IKLL)", b->stack, (unsigned long long)b->size,
                                    (long long)b->allocs, (long long)b->frees);
        if (t == NULL) {
            Py_DECREF(list);
            goto fail;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, t);
    }
    if (set_item_steal(r, "buckets", list) < 0 ||
        set_item_steal(r, "stats", Py_BuildValue(
                           "{sKsKsKsKsOsO}", "sampled", (unsigned long long)stats->sampled,
                           "live", (unsigned long long)stats->live,
                           "dropped", (unsigned long long)stats->dropped,
                           "deferred", (unsigned long long)stats->deferred,
                           "hooks_lost", stats->hooks_lost ? Py_True : Py_False,
                           "numpy", stats->numpy ? Py_True : Py_False)) < 0)
        goto fail;
    *(PyObject **)out = r;
    return 0;
fail:
    Py_XDECREF(r);
    return CPROF_E_PYTHON;
}

static PyObject *core_heap_snapshot(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    PyObject *r = NULL;
    cprof_error_t err;
    int rc = cprof_heap_snapshot(export_heap, &r, &err);
    return rc != 0 ? raise_code(rc, &err) : r;
}

static PyObject *core_heap_stop(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    cprof_error_t err;
    int rc = cprof_heap_stop(&err);
    if (rc != 0)
        return raise_code(rc, &err);
    Py_RETURN_NONE;
}

static PyObject *core_heap_running(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(cprof_heap_running());
}

/* --- lock profiles ----------------------------------------------------------------- */

static PyObject *core_waiter_lock(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    return cprof_locks_new_lock(CPROF_LOCK_WAITER);
}

static PyObject *core_locks_configure(PyObject *Py_UNUSED(module), PyObject *args)
{
    long long fraction, rate;
    if (!PyArg_ParseTuple(args, "LL:locks_configure", &fraction, &rate))
        return NULL;
    if (cprof_locks_configure(fraction, rate) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *totals_list(const cprof_lock_totals_t *t, size_t n)
{
    PyObject *list = PyList_New(0);
    for (size_t i = 0; list != NULL && i < n; i++) {
        if (t[i].contentions == 0)
            continue;
        PyObject *row = Py_BuildValue("(kdd)", (unsigned long)i, t[i].contentions,
                                      t[i].delay_ns);
        if (row == NULL || PyList_Append(list, row) < 0)
            Py_CLEAR(list);
        Py_XDECREF(row);
    }
    return list;
}

static int export_locks(const cprof_stacks_t *st, const cprof_lock_totals_t *mutex,
                        const cprof_lock_totals_t *block, size_t n, void *out)
{
    PyObject *r = export_tables(st);
    if (r == NULL || set_item_steal(r, "mutex", totals_list(mutex, n)) < 0 ||
        set_item_steal(r, "block", totals_list(block, n)) < 0) {
        Py_XDECREF(r);
        return -1;
    }
    *(PyObject **)out = r;
    return 0;
}

static PyObject *core_locks_snapshot(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    PyObject *r = NULL;
    if (cprof_locks_visit(export_locks, &r) < 0)
        return NULL;
    return r != NULL ? r : Py_BuildValue("{s[]s[]s[]s[]s[]}", "functions", "locations",
                                         "stacks", "mutex", "block");
}

static PyObject *core_locks_clear(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    cprof_locks_clear();
    Py_RETURN_NONE;
}

static PyObject *core_locks_block_event(PyObject *Py_UNUSED(module), PyObject *args)
{
    long long delay;
    int skip = 0;
    if (!PyArg_ParseTuple(args, "L|i:locks_block_event", &delay, &skip))
        return NULL;
    cprof_locks_block_event(delay, skip);
    Py_RETURN_NONE;
}

static PyObject *core_locks_waiting(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    return cprof_locks_waiting();
}

static PyObject *core_locks_library_files(PyObject *Py_UNUSED(module), PyObject *files)
{
    if (!PyFrozenSet_Check(files))
        return PyErr_Format(PyExc_TypeError, "expected a frozenset of file names, not %s",
                            Py_TYPE(files)->tp_name);
    cprof_locks_set_library_files(files);
    Py_RETURN_NONE;
}

/* --- module ---------------------------------------------------------------- */

/* A limit argument of decode(): an int in 0..most, else ValueError naming it. */
static int limit_arg(PyObject *o, const char *name, unsigned long long most,
                     unsigned long long *out)
{
    if (!PyLong_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s must be an int, not %.100s", name,
                     Py_TYPE(o)->tp_name);
        return -1;
    }
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (overflow != 0 || v < 0 || (unsigned long long)v > most) {
        PyErr_Format(PyExc_ValueError, "%s must be between 0 and %llu, not %R", name, most, o);
        return -1;
    }
    *out = (unsigned long long)v;
    return 0;
}

/* How often a decode stops to run Python's signal handlers. */
#define DECODE_SIGNAL_CHECK_NS 50000000LL

typedef struct {
    PyThreadState *save;   /* the decoding thread's state while it runs without the GIL */
    struct timespec last;
} decode_signals_t;

/* limits.interrupted for decode(): at most every 50 ms, take the GIL and run
 * the signal handlers; a handler's exception (KeyboardInterrupt) stops the
 * decode and is what decode() raises. */
static int decode_interrupted(void *data)
{
    decode_signals_t *d = data;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long long ns = (now.tv_sec - d->last.tv_sec) * 1000000000LL + (now.tv_nsec - d->last.tv_nsec);
    if (ns < DECODE_SIGNAL_CHECK_NS)
        return 0;
    d->last = now;
    PyEval_RestoreThread(d->save);
    int failed = PyErr_CheckSignals() < 0;
    d->save = PyEval_SaveThread();
    return failed;
}

/* _id_hash_key() -> the per-process key of the id hash: tests use it to craft
 * ids that collide, as an attacker who learned it would. */
static PyObject *core_id_hash_key(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromUnsignedLongLong(cprof_pprof_id_key());
}

static PyObject *core_decode(PyObject *Py_UNUSED(module), PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"data", "max_size", "max_ratio", NULL};
    Py_buffer view;
    PyObject *size_arg = NULL, *ratio_arg = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "y*|OO:decode", kwlist, &view, &size_arg,
                                     &ratio_arg))
        return NULL;
    unsigned long long max_size = CPROF_DEFAULT_MAX_SIZE, max_ratio = CPROF_DEFAULT_MAX_RATIO;
    if ((size_arg != NULL && limit_arg(size_arg, "max_size", PY_SSIZE_T_MAX, &max_size) < 0) ||
        (ratio_arg != NULL && limit_arg(ratio_arg, "max_ratio", UINT32_MAX, &max_ratio) < 0)) {
        PyBuffer_Release(&view);
        return NULL;
    }
    decode_signals_t signals = {.save = NULL};
    clock_gettime(CLOCK_MONOTONIC, &signals.last);
    cprof_limits_t limits = {.max_size = (size_t)max_size, .max_ratio = (unsigned)max_ratio,
                             .interrupted = decode_interrupted, .ctx = &signals};
    cprof_pprof_t *p = NULL;
    cprof_error_t err;
    signals.save = PyEval_SaveThread();
    int rc = cprof_pprof_decode(view.buf, (size_t)view.len, &limits, &p, &err);
    PyEval_RestoreThread(signals.save);
    PyBuffer_Release(&view);
    if (rc != 0)
        return raise_code(rc, &err);
    return wrap(p);
}

/* The collectors' view of this interpreter (frames.c): None when they can
 * read its frames, else why not. */
static PyObject *core_layout_problem(PyObject *self, PyObject *noargs)
{
    (void)self, (void)noargs;
    const char *problem = cprof_frames_problem();
    if (problem == NULL)
        Py_RETURN_NONE;
    return PyUnicode_FromString(problem);
}

static PyObject *core_check_layout(PyObject *self, PyObject *args)
{
    (void)self;
    const char *field = NULL;
    long skew = 0;
    if (!PyArg_ParseTuple(args, "|zl:check_layout", &field, &skew))
        return NULL;
    cprof_frames_check_layout(field, skew);
    return core_layout_problem(NULL, NULL);
}

static PyMethodDef core_methods[] = {
    {"decode", (PyCFunction)(void (*)(void))core_decode, METH_VARARGS | METH_KEYWORDS,
     "decode(data, max_size=1 GiB, max_ratio=256) -> ProfileData: gzipped or raw "
     "profile.proto bytes, validated by pprof's rules; max_size bounds the input, its "
     "inflated bytes and the decoded memory, max_ratio (0: off) their ratio to the input "
     "past 16 MiB; signal handlers run during the decode; raises ProfileError"},
    {"_id_hash_key", (PyCFunction)core_id_hash_key, METH_NOARGS,
     "_id_hash_key() -> the per-process key of the decoder's id hash (for tests)"},
    {"build", (PyCFunction)core_build, METH_VARARGS,
     "build(strings, header, sample_types, samples, mappings, locations, functions) -> "
     "ProfileData: a validated profile from string-indexed tables; raises ProfileError"},
    {"cpu_start", (PyCFunction)(void (*)(void))core_cpu_start, METH_VARARGS | METH_KEYWORDS,
     "cpu_start(hz=100, mode='cpu', max_depth=128, buffer_samples=2048, label_var=None, "
     "hook=None, poll_ms=50, native=False): start sampling every thread (native: C frames "
     "too); RuntimeError if a CPU profile "
     "runs or SIGPROF has another handler"},
    {"cpu_stop", (PyCFunction)core_cpu_stop, METH_NOARGS,
     "cpu_stop() -> dict of functions, locations, stacks, samples and stats"},
    {"cpu_drain", (PyCFunction)(void (*)(void))core_cpu_drain, METH_VARARGS | METH_KEYWORDS,
     "cpu_drain(refresh=False): move buffered samples into the profile's tables now, then "
     "call the hook if refresh; the caller's samples meanwhile count as <cprof>"},
    {"cpu_new_coroutines", (PyCFunction)core_cpu_new_coroutines, METH_NOARGS,
     "cpu_new_coroutines() -> set of id()s of coroutines first seen in samples since the "
     "last call"},
    {"cpu_sample_count", (PyCFunction)core_cpu_sample_count, METH_NOARGS,
     "cpu_sample_count() -> samples taken so far by the running CPU profile"},
    {"measure_record_ns", (PyCFunction)core_measure_record_ns, METH_VARARGS,
     "measure_record_ns(n, max_depth=128, label_var=None, native=False) -> mean ns the "
     "signal handler spends recording one sample of the calling thread's stack, with its C "
     "frames if native (a benchmark)"},
    {"thread_started", (PyCFunction)core_thread_started, METH_NOARGS,
     "thread_started(): the calling thread just started; time it now"},
    {"thread_exiting", (PyCFunction)core_thread_exiting, METH_NOARGS,
     "thread_exiting(): the calling thread is ending; count its time since its last sample"},
    {"cpu_running", (PyCFunction)core_cpu_running, METH_NOARGS,
     "cpu_running() -> whether a CPU profile is running"},
    {"before_fork", (PyCFunction)core_before_fork, METH_NOARGS,
     "before_fork(): os.fork's before hook: the sampler's helper keeps off the GIL"},
    {"after_fork_parent", (PyCFunction)core_after_fork_parent, METH_NOARGS,
     "after_fork_parent(): os.fork's after hook in the parent: the helper may take the GIL"},
    {"after_fork_child", (PyCFunction)core_after_fork_child, METH_NOARGS,
     "after_fork_child(): in a forked child, forget the parent's running profiles"},
    {"heap_start", (PyCFunction)(void (*)(void))core_heap_start, METH_VARARGS | METH_KEYWORDS,
     "heap_start(rate=524288, max_depth=128): sample allocations, one per rate bytes on "
     "average; RuntimeError if a heap profile runs"},
    {"heap_wrap_numpy", (PyCFunction)core_heap_wrap_numpy, METH_O,
     "heap_wrap_numpy(api_capsule): sample NumPy's array data allocations too"},
    {"heap_snapshot", (PyCFunction)core_heap_snapshot, METH_NOARGS,
     "heap_snapshot() -> dict of functions, locations, stacks, buckets "
     "(stack, size, allocs, frees) and stats"},
    {"heap_stop", (PyCFunction)core_heap_stop, METH_NOARGS,
     "heap_stop(): stop sampling allocations and forget the tables"},
    {"heap_running", (PyCFunction)core_heap_running, METH_NOARGS,
     "heap_running() -> whether a heap profile is running"},
    {"waiter_lock", (PyCFunction)core_waiter_lock, METH_NOARGS,
     "waiter_lock() -> a Lock whose waits count in the block profile only (Condition's)"},
    {"locks_configure", (PyCFunction)core_locks_configure, METH_VARARGS,
     "locks_configure(mutex_fraction, block_rate_ns): what the recording locks sample"},
    {"locks_snapshot", (PyCFunction)core_locks_snapshot, METH_NOARGS,
     "locks_snapshot() -> dict of functions, locations, stacks, and mutex and block rows "
     "(stack, contentions, delay_ns), upscaled"},
    {"locks_clear", (PyCFunction)core_locks_clear, METH_NOARGS,
     "locks_clear(): forget the recorded contention and blocking"},
    {"locks_block_event", (PyCFunction)core_locks_block_event, METH_VARARGS,
     "locks_block_event(delay_ns, skip=0): a wait at the caller's stack (less skip frames), "
     "sampled by the block profile rate"},
    {"locks_waiting", (PyCFunction)core_locks_waiting, METH_NOARGS,
     "locks_waiting() -> [(thread ident, lock)] for threads waiting on recording locks"},
    {"locks_library_files", (PyCFunction)core_locks_library_files, METH_O,
     "locks_library_files(frozenset): files not reported as where locks are made"},
    {"layout_problem", (PyCFunction)core_layout_problem, METH_NOARGS,
     "layout_problem() -> None when the collectors can read this interpreter's frames, "
     "else why they refuse"},
    {"check_layout", (PyCFunction)core_check_layout, METH_VARARGS,
     "check_layout(field=None, skew=0) -> check the interpreter's frame layout again, as "
     "if its _Py_DebugOffsets field (\"group.field\") were off by skew (tests); returns "
     "layout_problem()"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "cprof._core",
    .m_doc = "cprof's C core: the pprof codec.",
    .m_size = -1,
    .m_methods = core_methods,
};

PyMODINIT_FUNC PyInit__core(void)
{
    /* Learned from this import's own Python frames: what the stack walks of
     * every collector need on 3.12 (compat.h). */
    cprof_frames_check_layout(NULL, 0);
    cprof_frames_learn();
    if (PyType_Ready(&ProfileData_Type) < 0 || PyType_Ready(&LabelSet_Type) < 0 ||
        cprof_locks_init() < 0)
        return NULL;
    PyObject *m = PyModule_Create(&core_module);
    if (m == NULL)
        return NULL;
    if (ProfileError == NULL) {
        ProfileError = PyErr_NewExceptionWithDoc(
            "cprof.ProfileError",
            "A profile is malformed or violates pprof's rules; the message names the field "
            "and the offending index or id.",
            PyExc_ValueError, NULL);
        if (ProfileError == NULL)
            goto fail;
    }
    if (PyModule_AddObjectRef(m, "ProfileError", ProfileError) < 0 ||
        PyModule_AddObjectRef(m, "ProfileData", (PyObject *)&ProfileData_Type) < 0 ||
        PyModule_AddObjectRef(m, "LabelSet", (PyObject *)&LabelSet_Type) < 0 ||
        PyModule_AddObjectRef(m, "Lock", (PyObject *)&cprof_lock_type) < 0 ||
        PyModule_AddObjectRef(m, "RLock", (PyObject *)&cprof_rlock_type) < 0 ||
        PyModule_AddIntConstant(m, "DEFAULT_MAX_SIZE", (long)CPROF_DEFAULT_MAX_SIZE) < 0 ||
        PyModule_AddIntConstant(m, "DEFAULT_MAX_RATIO", (long)CPROF_DEFAULT_MAX_RATIO) < 0)
        goto fail;
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
