/* profile: ProfileData, a decoded and validated profile.proto message held
 * in C memory (codec/pprof.h), which cprof.pprof.profile reads lazily, one object
 * at a time; and decode(), which makes one from bytes. */
#include "module/module.h"

#include <stdlib.h>
#include <time.h>

#include "analysis/graph.h"
#include "analysis/total.h"
#include "analysis/tree.h"
#include "analysis/listing.h"
#include "analysis/sample_keys.h"
#include "analysis/stack_sums.h"
#include "analysis/tags.h"
#include "analysis/traces.h"
#include "analysis/filter.h"
#include "analysis/frame_stacks.h"

typedef struct {
    PyObject_HEAD
    cprof_pprof_t *p;
    cprof_paths_t *paths[CPROF_GRAINS];  /* per granularity, made on first use */
    PyObject *weakrefs;  /* so tests can watch a profile's C memory being freed */
    PyObject *source;    /* a filtered profile's source, whose memory p shares; or NULL */
} ProfileData;

static PyTypeObject ProfileData_Type;

static void ProfileData_dealloc(ProfileData *self)
{
    if (self->weakrefs != NULL)
        PyObject_ClearWeakRefs((PyObject *)self);
    for (int g = 0; g < CPROF_GRAINS; g++) {
        if (self->paths[g] != NULL)
            cprof_paths_free(self->paths[g]);
        PyMem_Free(self->paths[g]);
    }
    cprof_pprof_free(self->p);
    Py_XDECREF(self->source);  /* after p, which points into it */
    Py_TYPE(self)->tp_free((PyObject *)self);
}

PyObject *cprof_py_profile(cprof_pprof_t *p)
{
    ProfileData *self = PyObject_New(ProfileData, &ProfileData_Type);
    if (self == NULL) {
        cprof_pprof_free(p);
        return NULL;
    }
    self->p = p;
    for (int g = 0; g < CPROF_GRAINS; g++)
        self->paths[g] = NULL;
    self->weakrefs = NULL;
    self->source = NULL;
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

/* 0 when index names one of m's sample types, else -1 with an IndexError. */
static int check_type_index(const cprof_msg_t *m, Py_ssize_t index)
{
    if (index >= 0 && (size_t)index < m->n_sample_type)
        return 0;
    PyErr_Format(PyExc_IndexError, "sample type index %zd out of range", index);
    return -1;
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

static PyObject *labels_tuple(const cprof_msg_t *m, const Perftools__Profiles__Sample *s);

/* A sample's values as a tuple of ints. */
static PyObject *values_tuple(const Perftools__Profiles__Sample *s)
{
    PyObject *values = PyTuple_New((Py_ssize_t)s->n_value);
    for (size_t j = 0; values != NULL && j < s->n_value; j++) {
        PyObject *v = PyLong_FromLongLong(s->value[j]);
        if (v == NULL)
            Py_CLEAR(values);
        else
            PyTuple_SET_ITEM(values, (Py_ssize_t)j, v);
    }
    return values;
}

/* sample(i) -> (location indices, values, ((key, str|None, num, unit|None), ...)) */
static PyObject *ProfileData_sample(ProfileData *self, PyObject *arg)
{
    const cprof_msg_t *m = self->p->msg;
    Py_ssize_t i;
    if (index_arg(arg, m->n_sample, "sample", &i) < 0)
        return NULL;
    const Perftools__Profiles__Sample *s = m->sample[i];
    PyObject *ids = PyTuple_New((Py_ssize_t)s->n_location_id);
    PyObject *values = values_tuple(s);
    PyObject *labels = labels_tuple(m, s);
    PyObject *r = NULL;
    if (ids == NULL || values == NULL || labels == NULL)
        goto done;
    for (size_t j = 0; j < s->n_location_id; j++) {
        long k = cprof_pprof_find(&self->p->locations, m->n_location, s->location_id[j]);
        if (k < 0) {  /* cprof_pprof_index refuses such a profile: never taken */
            PyErr_Format(PyExc_ValueError, "sample %zd names location id %llu, which "
                         "the profile lacks", i, (unsigned long long)s->location_id[j]);
            goto done;
        }
        PyObject *v = PyLong_FromLong(k);
        if (v == NULL)
            goto done;
        PyTuple_SET_ITEM(ids, (Py_ssize_t)j, v);
    }
    r = PyTuple_Pack(3, ids, values, labels);
done:
    Py_XDECREF(ids);
    Py_XDECREF(values);
    Py_XDECREF(labels);
    return r;
}

/* sample_values(i) -> values: sample(i)'s values alone. */
static PyObject *ProfileData_sample_values(ProfileData *self, PyObject *arg)
{
    const cprof_msg_t *m = self->p->msg;
    Py_ssize_t i;
    if (index_arg(arg, m->n_sample, "sample", &i) < 0)
        return NULL;
    return values_tuple(m->sample[i]);
}

/* sample_keys() -> (stack_first, labels_first): per sample, as uint32 bytes,
 * the first sample with its stack and the first with its labels; see
 * analysis/sample_keys.h. */
static PyObject *ProfileData_sample_keys(ProfileData *self, PyObject *Py_UNUSED(ignored))
{
    uint32_t *stacks = NULL, *labels = NULL;
    cprof_error_t err;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = cprof_sample_keys(self->p, &stacks, &labels, &err);
    Py_END_ALLOW_THREADS
    if (rc != 0)
        return cprof_py_raise(rc, &err);
    Py_ssize_t size = (Py_ssize_t)(self->p->msg->n_sample * sizeof *stacks);
    PyObject *r = Py_BuildValue("(y#y#)", (const char *)stacks, size, (const char *)labels, size);
    free(stacks);
    free(labels);
    return r;
}

static PyObject *u32_list(const uint32_t *v, size_t n);
static const uint8_t *bytes_of(const Py_buffer *b, size_t n, const char *what);

/* A sample's labels as a tuple of label_tuple()s. */
static PyObject *labels_tuple(const cprof_msg_t *m, const Perftools__Profiles__Sample *s)
{
    PyObject *labels = PyTuple_New((Py_ssize_t)s->n_label);
    for (size_t j = 0; labels != NULL && j < s->n_label; j++) {
        PyObject *v = label_tuple(m, s->label[j]);
        if (v == NULL)
            Py_CLEAR(labels);
        else
            PyTuple_SET_ITEM(labels, (Py_ssize_t)j, v);
    }
    return labels;
}

/* The label lists of sets[0..n) (each the labels of its first sample). */
static PyObject *label_set_list(const cprof_msg_t *m, const uint32_t *first, size_t n)
{
    PyObject *sets = PyList_New((Py_ssize_t)n);
    for (size_t k = 0; sets != NULL && k < n; k++) {
        PyObject *labels = labels_tuple(m, m->sample[first[k]]);
        if (labels == NULL)
            Py_CLEAR(sets);
        else
            PyList_SET_ITEM(sets, (Py_ssize_t)k, labels);
    }
    return sets;
}

/* label_sets() -> (sets, set_of_sample): the distinct label lists of the
 * samples (as sample() gives them), and each sample's index into them; see
 * analysis/tags.h. */
static PyObject *ProfileData_label_sets(ProfileData *self, PyObject *Py_UNUSED(ignored))
{
    const cprof_msg_t *m = self->p->msg;
    uint32_t *set_of = NULL, *first = NULL;
    size_t n_sets = 0;
    cprof_error_t err;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = cprof_label_sets(self->p, &set_of, &first, &n_sets, &err);
    Py_END_ALLOW_THREADS
    if (rc != 0)
        return cprof_py_raise(rc, &err);
    PyObject *sets = label_set_list(m, first, n_sets);
    PyObject *of = sets != NULL ? u32_list(set_of, m->n_sample) : NULL;
    PyObject *r = of != NULL ? PyTuple_Pack(2, sets, of) : NULL;
    Py_XDECREF(sets);
    Py_XDECREF(of);
    free(set_of);
    free(first);
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

/* The total reports use (pprof's computeTotal; see analysis/total.h). */
static PyObject *ProfileData_abs_total(ProfileData *self, PyObject *arg)
{
    Py_ssize_t index;
    if (index_arg(arg, self->p->msg->n_sample_type, "sample type", &index) < 0)
        return NULL;
    cprof_sum_t total;
    cprof_error_t err;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = cprof_report_total(self->p, (size_t)index, &total, &err);
    Py_END_ALLOW_THREADS
    if (rc != 0)
        return cprof_py_raise(rc, &err);
    return sum_to_long(total);
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
        return cprof_py_raise(rc, &err);
    PyObject *r = PyBytes_FromStringAndSize((const char *)out, (Py_ssize_t)n);
    free(out);
    return r;
}

/* The paths of the profile at one granularity, made on first use and kept
 * (the profile never changes). NULL with an exception set on failure. */
static const cprof_paths_t *paths_of(ProfileData *self, int grain)
{
    if (self->paths[grain] != NULL)
        return self->paths[grain];
    cprof_paths_t *ps = PyMem_Calloc(1, sizeof *ps);
    if (ps == NULL)
        return (const cprof_paths_t *)PyErr_NoMemory();
    cprof_error_t err;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = cprof_paths_build(self->p, (cprof_grain_t)grain, ps, &err);
    Py_END_ALLOW_THREADS
    if (rc != 0) {
        PyMem_Free(ps);
        cprof_py_raise(rc, &err);
        return NULL;
    }
    if (self->paths[grain] != NULL) {
        /* Another thread made them while the GIL was released: keep theirs. */
        cprof_paths_free(ps);
        PyMem_Free(ps);
        return self->paths[grain];
    }
    self->paths[grain] = ps;
    return ps;
}

/* A node as (name, file, start_line, line, objfile). */
static PyObject *node_tuple(const cprof_msg_t *m, const cprof_node_t *n)
{
    return Py_BuildValue("(NNLLN)", str_at(m, n->name), str_at(m, n->file),
                         (long long)n->start_line, (long long)n->line, str_at(m, n->objfile));
}

/* call_graph(sample_index, granularity=0, kept=None, edges=True)
 *   -> (nodes, flat, cum, edges, inlined); see analysis/graph.h. */
static PyObject *ProfileData_call_graph(ProfileData *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"sample_index", "granularity", "kept", "edges", NULL};
    const cprof_msg_t *m = self->p->msg;
    Py_ssize_t index;
    int grain = 0, want_edges = 1;
    PyObject *kept_obj = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "n|iOp", kwlist, &index, &grain, &kept_obj,
                                     &want_edges))
        return NULL;
    if (check_type_index(m, index) < 0)
        return NULL;
    if (grain < 0 || grain >= CPROF_GRAINS)
        return PyErr_Format(PyExc_ValueError, "granularity must be 0, 1 or 2, not %d", grain);
    const cprof_paths_t *ps = paths_of(self, grain);
    if (ps == NULL)
        return NULL;
    Py_buffer kept = {0};
    if (kept_obj != Py_None) {
        if (PyObject_GetBuffer(kept_obj, &kept, PyBUF_SIMPLE) < 0)
            return NULL;
        if ((size_t)kept.len != ps->n_nodes) {
            PyBuffer_Release(&kept);
            return PyErr_Format(PyExc_ValueError, "kept has %zd bytes for %zu nodes", kept.len,
                                ps->n_nodes);
        }
    }
    cprof_graph_t g;
    cprof_error_t err;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = cprof_graph_build(ps, (size_t)index, kept_obj != Py_None ? kept.buf : NULL, want_edges,
                           &g, &err);
    Py_END_ALLOW_THREADS
    if (kept_obj != Py_None)
        PyBuffer_Release(&kept);
    if (rc != 0)
        return cprof_py_raise(rc, &err);
    PyObject *nodes = PyList_New((Py_ssize_t)ps->n_nodes);
    PyObject *flat = PyList_New((Py_ssize_t)ps->n_nodes);
    PyObject *cum = PyList_New((Py_ssize_t)ps->n_nodes);
    PyObject *edges = PyList_New((Py_ssize_t)g.n_edges);
    PyObject *r = NULL;
    if (nodes == NULL || flat == NULL || cum == NULL || edges == NULL)
        goto done;
    for (size_t i = 0; i < ps->n_nodes; i++) {
        PyObject *t = node_tuple(m, &ps->nodes[i]);
        PyObject *f = sum_to_long(g.flat[i]), *c = sum_to_long(g.cum[i]);
        if (t == NULL || f == NULL || c == NULL) {
            Py_XDECREF(t);
            Py_XDECREF(f);
            Py_XDECREF(c);
            goto done;
        }
        PyList_SET_ITEM(nodes, (Py_ssize_t)i, t);
        PyList_SET_ITEM(flat, (Py_ssize_t)i, f);
        PyList_SET_ITEM(cum, (Py_ssize_t)i, c);
    }
    for (size_t i = 0; i < g.n_edges; i++) {
        const cprof_edge_t *e = &g.edges[i];
        PyObject *t = Py_BuildValue("(IINOO)", e->caller, e->callee, sum_to_long(e->weight),
                                    e->inl ? Py_True : Py_False,
                                    e->residual ? Py_True : Py_False);
        if (t == NULL)
            goto done;
        PyList_SET_ITEM(edges, (Py_ssize_t)i, t);
    }
    r = Py_BuildValue("(OOOOO)", nodes, flat, cum, edges, ps->inlined ? Py_True : Py_False);
done:
    Py_XDECREF(nodes);
    Py_XDECREF(flat);
    Py_XDECREF(cum);
    Py_XDECREF(edges);
    cprof_graph_release(&g);
    return r;
}

/* nodes(granularity=0) -> [(name, file, start_line, line, objfile, source file,
 * source start line)]: the nodes of the profile's paths (analysis/paths.h). */
static PyObject *ProfileData_nodes(ProfileData *self, PyObject *args)
{
    int grain = 0;
    if (!PyArg_ParseTuple(args, "|i", &grain))
        return NULL;
    if (grain < 0 || grain >= CPROF_GRAINS)
        return PyErr_Format(PyExc_ValueError, "granularity must be 0, 1 or 2, not %d", grain);
    const cprof_paths_t *ps = paths_of(self, grain);
    if (ps == NULL)
        return NULL;
    const cprof_msg_t *m = self->p->msg;
    PyObject *list = PyList_New((Py_ssize_t)ps->n_nodes);
    for (size_t i = 0; list != NULL && i < ps->n_nodes; i++) {
        const cprof_node_t *n = &ps->nodes[i];
        PyObject *t = Py_BuildValue("(NNLLNNL)", str_at(m, n->name), str_at(m, n->file),
                                    (long long)n->start_line, (long long)n->line,
                                    str_at(m, n->objfile), str_at(m, ps->node_file[i]),
                                    (long long)ps->node_start[i]);
        if (t == NULL)
            Py_CLEAR(list);
        else
            PyList_SET_ITEM(list, (Py_ssize_t)i, t);
    }
    return list;
}

/* A list of n sums as Python ints, read with stride from base. */
static PyObject *sum_list(const cprof_sum_t *base, size_t n, size_t stride)
{
    PyObject *list = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; list != NULL && i < n; i++) {
        PyObject *v = sum_to_long(base[i * stride]);
        if (v == NULL)
            Py_CLEAR(list);
        else
            PyList_SET_ITEM(list, (Py_ssize_t)i, v);
    }
    return list;
}

static PyObject *u32_list(const uint32_t *v, size_t n)
{
    PyObject *list = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; list != NULL && i < n; i++) {
        PyObject *x = PyLong_FromUnsignedLong(v[i]);
        if (x == NULL)
            Py_CLEAR(list);
        else
            PyList_SET_ITEM(list, (Py_ssize_t)i, x);
    }
    return list;
}

/* call_tree(frames, types, min_width_fraction) -> dict; see analysis/tree.h.
 * frames: a uint32 array (array('I') or bytes) of a frame id per function
 * granularity node; types: the sample type indices. */
static PyObject *ProfileData_call_tree(ProfileData *self, PyObject *args)
{
    Py_buffer frames;
    PyObject *types_obj;
    double fraction;
    if (!PyArg_ParseTuple(args, "y*Od", &frames, &types_obj, &fraction))
        return NULL;
    const cprof_msg_t *m = self->p->msg;
    const cprof_paths_t *ps = paths_of(self, CPROF_GRAIN_FUNCTION);
    PyObject *seq = ps != NULL ? PySequence_Fast(types_obj, "types must be a sequence") : NULL;
    size_t *types = NULL;
    PyObject *r = NULL;
    cprof_tree_t t = {0};
    if (seq == NULL)
        goto release;
    if ((size_t)frames.len != ps->n_nodes * sizeof(uint32_t)) {
        PyErr_Format(PyExc_ValueError, "frames has %zd bytes for %zu nodes", frames.len,
                     ps->n_nodes);
        goto release;
    }
    Py_ssize_t n_sel = PySequence_Fast_GET_SIZE(seq);
    types = PyMem_Calloc((size_t)n_sel + 1, sizeof *types);
    if (types == NULL) {
        PyErr_NoMemory();
        goto release;
    }
    for (Py_ssize_t j = 0; j < n_sel; j++) {
        Py_ssize_t v = PyLong_AsSsize_t(PySequence_Fast_GET_ITEM(seq, j));
        if (v == -1 && PyErr_Occurred())
            goto release;
        if (check_type_index(m, v) < 0)
            goto release;
        types[j] = (size_t)v;
    }
    const uint32_t *fr = frames.buf;
    for (size_t i = 0; i < ps->n_nodes; i++)
        if (fr[i] == CPROF_TREE_ROOT) {
            PyErr_SetString(PyExc_ValueError, "frame ids must be below 2**32 - 1");
            goto release;
        }
    cprof_error_t err;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = cprof_tree_build(ps, fr, types, (size_t)n_sel, fraction, &t, &err);
    Py_END_ALLOW_THREADS
    if (rc != 0) {
        cprof_py_raise(rc, &err);
        goto release;
    }
    PyObject *pos = PyList_New(n_sel), *neg = PyList_New(n_sel), *flat = PyList_New(n_sel);
    PyObject *residue = PyList_New((Py_ssize_t)t.n_res), *sets = PyList_New((Py_ssize_t)t.n_sets);
    PyObject *frame = u32_list(t.frame, t.n), *depth = u32_list(t.depth, t.n);
    PyObject *line = PyList_New((Py_ssize_t)t.n);
    int ok = pos && neg && flat && residue && sets && frame && depth && line;
    for (Py_ssize_t j = 0; ok && j < n_sel; j++) {
        PyObject *a = sum_list(t.pos + j, t.n, (size_t)n_sel);
        PyObject *b = sum_list(t.neg + j, t.n, (size_t)n_sel);
        PyObject *c = sum_list(t.flat + j, t.n, (size_t)n_sel);
        ok = a && b && c;
        PyList_SET_ITEM(pos, j, a ? a : Py_NewRef(Py_None));
        PyList_SET_ITEM(neg, j, b ? b : Py_NewRef(Py_None));
        PyList_SET_ITEM(flat, j, c ? c : Py_NewRef(Py_None));
    }
    for (size_t i = 0; ok && i < t.n; i++) {
        PyObject *v = PyLong_FromLongLong(t.line[i]);
        ok = v != NULL;
        PyList_SET_ITEM(line, (Py_ssize_t)i, v ? v : Py_NewRef(Py_None));
    }
    for (size_t k = 0; ok && k < t.n_res; k++) {
        PyObject *sums = sum_list(t.res_sums + k * 2 * (size_t)n_sel, 2 * (size_t)n_sel, 1);
        PyObject *row = sums ? Py_BuildValue("(IIN)", t.res_node[k], t.res_set[k], sums) : NULL;
        ok = row != NULL;
        PyList_SET_ITEM(residue, (Py_ssize_t)k, row ? row : Py_NewRef(Py_None));
    }
    for (size_t k = 0; ok && k < t.n_sets; k++) {
        PyObject *set = u32_list(t.set_pool + t.set_start[k], t.set_len[k]);
        ok = set != NULL;
        PyList_SET_ITEM(sets, (Py_ssize_t)k, set ? set : Py_NewRef(Py_None));
    }
    if (ok)
        r = Py_BuildValue("{sOsOsOsOsOsOsOsOsnsO}", "frame", frame, "line", line, "depth", depth,
                          "pos", pos, "neg", neg, "flat", flat, "residue", residue, "sets", sets,
                          "hidden", (Py_ssize_t)t.hidden, "diff", t.diff ? Py_True : Py_False);
    Py_XDECREF(pos);
    Py_XDECREF(neg);
    Py_XDECREF(flat);
    Py_XDECREF(residue);
    Py_XDECREF(sets);
    Py_XDECREF(frame);
    Py_XDECREF(depth);
    Py_XDECREF(line);
release:
    cprof_tree_free(&t);
    PyMem_Free(types);
    Py_XDECREF(seq);
    PyBuffer_Release(&frames);
    return r;
}

/* The function-granularity paths and a frames buffer (uint32 per node, each
 * below n_frames) for stacks_of; NULL with an exception set. */
static const cprof_paths_t *frame_paths(ProfileData *self, const Py_buffer *frames,
                                        size_t n_frames)
{
    const cprof_paths_t *ps = paths_of(self, CPROF_GRAIN_FUNCTION);
    if (ps == NULL)
        return NULL;
    if ((size_t)frames->len != ps->n_nodes * sizeof(uint32_t)) {
        PyErr_Format(PyExc_ValueError, "frames has %zd bytes for %zu nodes", frames->len,
                     ps->n_nodes);
        return NULL;
    }
    const uint32_t *fr = frames->buf;
    for (size_t i = 0; i < ps->n_nodes; i++)
        if (fr[i] >= n_frames) {
            PyErr_Format(PyExc_ValueError, "frame id %u of node %zu is not below %zu",
                         (unsigned)fr[i], i, n_frames);
            return NULL;
        }
    return ps;
}

/* The merged frame stacks of one sample type (analysis/frame_stacks.h); 0, or -1
 * with an exception set. */
static int stacks_of(const cprof_paths_t *ps, const Py_buffer *frames, Py_ssize_t index,
                     cprof_frame_stacks_t *out)
{
    cprof_error_t err;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = cprof_frame_stacks_build(ps, frames->buf, (size_t)index, out, &err);
    Py_END_ALLOW_THREADS
    if (rc != 0) {
        cprof_py_raise(rc, &err);
        return -1;
    }
    return 0;
}

/* frame_stacks(sample_index, frames, n_frames) -> (stacks, values, negative):
 * the distinct frame stacks (lists of frame ids, root first) with a non-zero
 * sum, in frame order; see analysis/frame_stacks.h. */
static PyObject *ProfileData_frame_stacks(ProfileData *self, PyObject *args)
{
    Py_ssize_t index, n_frames;
    Py_buffer frames;
    if (!PyArg_ParseTuple(args, "ny*n", &index, &frames, &n_frames))
        return NULL;
    PyObject *r = NULL;
    cprof_frame_stacks_t s = {0};
    const cprof_paths_t *ps;
    if (check_type_index(self->p->msg, index) < 0)
        goto release;
    if (n_frames < 0 || (ps = frame_paths(self, &frames, (size_t)n_frames)) == NULL ||
        stacks_of(ps, &frames, index, &s) < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "n_frames must not be negative");
        goto release;
    }
    PyObject *stacks = PyList_New((Py_ssize_t)s.n), *values = PyList_New((Py_ssize_t)s.n);
    int ok = stacks != NULL && values != NULL;
    for (size_t i = 0; ok && i < s.n; i++) {
        uint32_t k = s.path[i];
        PyObject *stack = u32_list(s.frames + ps->start[k], ps->len[k]);
        PyObject *value = sum_to_long(s.sum[i]);
        ok = stack != NULL && value != NULL;
        PyList_SET_ITEM(stacks, (Py_ssize_t)i, stack ? stack : Py_NewRef(Py_None));
        PyList_SET_ITEM(values, (Py_ssize_t)i, value ? value : Py_NewRef(Py_None));
    }
    if (ok)
        r = Py_BuildValue("(OOn)", stacks, values, (Py_ssize_t)s.negative);
    Py_XDECREF(stacks);
    Py_XDECREF(values);
release:
    cprof_frame_stacks_free(&s);
    PyBuffer_Release(&frames);
    return r;
}

/* frame_totals(frames, n_frames) -> (flat, cum): per sample type, a list of
 * each frame's flat and cum sums; see analysis/frame_stacks.h. */
static PyObject *ProfileData_frame_totals(ProfileData *self, PyObject *args)
{
    Py_buffer frames;
    Py_ssize_t n_frames;
    if (!PyArg_ParseTuple(args, "y*n", &frames, &n_frames))
        return NULL;
    const size_t nt = self->p->msg->n_sample_type;
    PyObject *r = NULL;
    cprof_sum_t *flat = NULL, *cum = NULL;
    const cprof_paths_t *ps;
    if (n_frames < 0) {
        PyErr_SetString(PyExc_ValueError, "n_frames must not be negative");
        goto release;
    }
    if ((ps = frame_paths(self, &frames, (size_t)n_frames)) == NULL)
        goto release;
    flat = PyMem_Calloc((size_t)n_frames * nt + 1, sizeof *flat);
    cum = PyMem_Calloc((size_t)n_frames * nt + 1, sizeof *cum);
    if (flat == NULL || cum == NULL) {
        PyErr_NoMemory();
        goto release;
    }
    cprof_error_t err;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = cprof_frame_totals(ps, frames.buf, (size_t)n_frames, flat, cum, &err);
    Py_END_ALLOW_THREADS
    if (rc != 0) {
        cprof_py_raise(rc, &err);
        goto release;
    }
    PyObject *f = PyList_New((Py_ssize_t)nt), *c = PyList_New((Py_ssize_t)nt);
    int ok = f != NULL && c != NULL;
    for (size_t t = 0; ok && t < nt; t++) {
        PyObject *a = sum_list(flat + t, (size_t)n_frames, nt);
        PyObject *b = sum_list(cum + t, (size_t)n_frames, nt);
        ok = a != NULL && b != NULL;
        PyList_SET_ITEM(f, (Py_ssize_t)t, a ? a : Py_NewRef(Py_None));
        PyList_SET_ITEM(c, (Py_ssize_t)t, b ? b : Py_NewRef(Py_None));
    }
    if (ok)
        r = PyTuple_Pack(2, f, c);
    Py_XDECREF(f);
    Py_XDECREF(c);
release:
    PyMem_Free(flat);
    PyMem_Free(cum);
    PyBuffer_Release(&frames);
    return r;
}

/* node_tags(sample_index, kept=None, groups=None, cutoff=0) -> [(node, set,
 * flat, cum)]: the label boxes of the function-granularity nodes by label set
 * (the sets of label_sets()), or by the caller's groups of them: groups is a
 * uint32 array with a group per set, 2**32 - 1 for sets to leave out. Rows
 * whose flat and cum are both below cutoff in magnitude are left out. See
 * analysis/tags.h. */
static PyObject *ProfileData_node_tags(ProfileData *self, PyObject *args)
{
    Py_ssize_t index;
    PyObject *kept_obj = Py_None, *groups_obj = Py_None;
    long long cutoff = 0;
    if (!PyArg_ParseTuple(args, "n|OOL", &index, &kept_obj, &groups_obj, &cutoff))
        return NULL;
    if (cutoff < 0) {
        PyErr_SetString(PyExc_ValueError, "cutoff must not be negative");
        return NULL;
    }
    const cprof_msg_t *m = self->p->msg;
    if (check_type_index(m, index) < 0)
        return NULL;
    const cprof_paths_t *ps = paths_of(self, CPROF_GRAIN_FUNCTION);
    if (ps == NULL)
        return NULL;
    Py_buffer kept = {0}, groups = {0};
    uint32_t *set_of = NULL, *first = NULL;
    size_t n_sets = 0;
    cprof_tags_t tags = {0};
    PyObject *r = NULL;
    if (kept_obj != Py_None && (PyObject_GetBuffer(kept_obj, &kept, PyBUF_SIMPLE) < 0 ||
                                bytes_of(&kept, ps->n_nodes, "kept") == NULL))
        goto done;
    if (groups_obj != Py_None && PyObject_GetBuffer(groups_obj, &groups, PyBUF_SIMPLE) < 0)
        goto done;
    cprof_error_t err;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = cprof_label_sets(self->p, &set_of, &first, &n_sets, &err);
    Py_END_ALLOW_THREADS
    if (rc != 0) {
        cprof_py_raise(rc, &err);
        goto done;
    }
    if (groups.obj != NULL) {
        if ((size_t)groups.len != n_sets * sizeof(uint32_t)) {
            PyErr_Format(PyExc_ValueError, "groups has %zd bytes for %zu label sets",
                         groups.len, n_sets);
            goto done;
        }
        const uint32_t *g = groups.buf;
        for (size_t k = 0; k < n_sets; k++)
            if (g[k] >= n_sets && g[k] != CPROF_TAGS_NONE) {
                PyErr_Format(PyExc_ValueError, "groups[%zu] is %u: a group is a label set's "
                             "index (below %zu) or 2**32 - 1", k, g[k], n_sets);
                goto done;
            }
        for (size_t i = 0; i < m->n_sample; i++)
            set_of[i] = g[set_of[i]];
    }
    Py_BEGIN_ALLOW_THREADS
    rc = cprof_tags_build(self->p, ps, (size_t)index, kept.obj ? kept.buf : NULL, set_of,
                          (int64_t)cutoff, &tags, &err);
    Py_END_ALLOW_THREADS
    if (rc != 0) {
        cprof_py_raise(rc, &err);
        goto done;
    }
    r = PyList_New((Py_ssize_t)tags.n);
    for (size_t k = 0; r != NULL && k < tags.n; k++) {
        PyObject *row = Py_BuildValue("(IINN)", tags.node[k], tags.set[k],
                                      sum_to_long(tags.flat[k]), sum_to_long(tags.cum[k]));
        if (row == NULL)
            Py_CLEAR(r);
        else
            PyList_SET_ITEM(r, (Py_ssize_t)k, row);
    }
done:
    if (kept.obj != NULL)
        PyBuffer_Release(&kept);
    if (groups.obj != NULL)
        PyBuffer_Release(&groups);
    cprof_tags_free(&tags);
    free(set_of);
    free(first);
    return r;
}

/* A sequence of str (as UTF-8), or of bytes when as_bytes, for the C side
 * to print: *tuple holds them (a tuple of its own: the caller's list may
 * change while the GIL is released), (*text)[i] and (*len)[i] point into it.
 * An item holding one of the bytes of refused (or NULL), which refused_text
 * names, is a ValueError. Returns 0, or -1 with an exception set; the caller
 * releases *tuple, *text and *len either way. */
static int texts_of(PyObject *seq, int as_bytes, const char *what, const char *refused,
                    const char *refused_text, PyObject **tuple, const char ***text,
                    size_t **len)
{
    *tuple = PySequence_Tuple(seq);
    *text = NULL;
    *len = NULL;
    if (*tuple == NULL)
        return -1;
    Py_ssize_t n = PyTuple_GET_SIZE(*tuple);
    *text = PyMem_Calloc((size_t)n + 1, sizeof **text);
    *len = PyMem_Calloc((size_t)n + 1, sizeof **len);
    if (*text == NULL || *len == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t f = 0; f < n; f++) {
        PyObject *item = PyTuple_GET_ITEM(*tuple, f);
        Py_ssize_t size;
        char *bytes;
        if (as_bytes && PyBytes_Check(item)) {
            if (PyBytes_AsStringAndSize(item, &bytes, &size) < 0)
                return -1;
            (*text)[f] = bytes;
        } else if (!as_bytes && PyUnicode_Check(item)) {
            (*text)[f] = PyUnicode_AsUTF8AndSize(item, &size);
            if ((*text)[f] == NULL)
                return -1;
        } else {
            PyErr_Format(PyExc_TypeError, "%s %zd is not a %s", what, f,
                         as_bytes ? "bytes" : "str");
            return -1;
        }
        (*len)[f] = (size_t)size;
        for (const char *c = refused; c != NULL && *c != '\0'; c++)
            if (memchr((*text)[f], *c, (*len)[f]) != NULL) {
                PyErr_Format(PyExc_ValueError, "%s %R has %s", what, item, refused_text);
                return -1;
            }
    }
    return 0;
}

/* folded(sample_index, frames, names) -> (bytes, stacks, negative): folded
 * stacks of one sample type, frame f printed as names[f] (a str without ';'
 * or a line break); see analysis/frame_stacks.h. */
static PyObject *ProfileData_folded(ProfileData *self, PyObject *args)
{
    Py_ssize_t index;
    Py_buffer frames;
    PyObject *names_obj, *names = NULL;
    if (!PyArg_ParseTuple(args, "ny*O", &index, &frames, &names_obj))
        return NULL;
    PyObject *r = NULL;
    const char **text = NULL;
    size_t *len = NULL;
    cprof_frame_stacks_t s = {0};
    char *out = NULL;
    size_t out_len = 0;
    const cprof_paths_t *ps;
    if (texts_of(names_obj, 0, "frame name", ";\n", "a ';' or a line break", &names, &text,
                 &len) < 0)
        goto release;
    Py_ssize_t n = PyTuple_GET_SIZE(names);
    if (check_type_index(self->p->msg, index) < 0)
        goto release;
    if ((ps = frame_paths(self, &frames, (size_t)n)) == NULL || stacks_of(ps, &frames, index, &s) < 0)
        goto release;
    cprof_frame_names_t fn = {text, len};
    cprof_error_t err;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = cprof_frame_stacks_folded(&s, ps, &fn, &out, &out_len, &err);
    Py_END_ALLOW_THREADS
    if (rc != 0) {
        cprof_py_raise(rc, &err);
        goto release;
    }
    r = Py_BuildValue("(y#nn)", out != NULL ? out : "", (Py_ssize_t)out_len, (Py_ssize_t)s.n,
                      (Py_ssize_t)s.negative);
release:
    free(out);
    cprof_frame_stacks_free(&s);
    PyMem_Free(text);
    PyMem_Free(len);
    Py_XDECREF(names);
    PyBuffer_Release(&frames);
    return r;
}

/* A bytes-like argument of exactly n bytes, or NULL with a ValueError. */
static const uint8_t *bytes_of(const Py_buffer *b, size_t n, const char *what)
{
    if ((size_t)b->len != n) {
        PyErr_Format(PyExc_ValueError, "%s has %zd bytes for %zu entries", what, b->len, n);
        return NULL;
    }
    return b->buf;
}

/* filtered(active, function_bits, mapping_bits, sample_keep=None) -> ProfileData:
 * pprof's filters applied (analysis/filter.h); the result keeps this one alive. */
static PyObject *ProfileData_filtered(ProfileData *self, PyObject *args)
{
    unsigned int active;
    Py_buffer fbits, mbits, keep = {0};
    PyObject *keep_obj = Py_None;
    if (!PyArg_ParseTuple(args, "Iy*y*|O", &active, &fbits, &mbits, &keep_obj))
        return NULL;
    const cprof_msg_t *m = self->p->msg;
    PyObject *r = NULL;
    cprof_filter_t f = {.active = active};
    if (active >= 2 * CPROF_F_PRUNE_FROM) {
        PyErr_Format(PyExc_ValueError, "unknown filter bits in %u", active);
        goto release;
    }
    if (keep_obj != Py_None && PyObject_GetBuffer(keep_obj, &keep, PyBUF_SIMPLE) < 0)
        goto release;
    if ((f.function_bits = bytes_of(&fbits, m->n_function, "function_bits")) == NULL ||
        (f.mapping_bits = bytes_of(&mbits, m->n_mapping, "mapping_bits")) == NULL ||
        (keep.obj != NULL && (f.sample_keep = bytes_of(&keep, m->n_sample, "sample_keep")) == NULL))
        goto release;
    cprof_pprof_t *out;
    cprof_error_t err;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = cprof_filter_apply(self->p, &f, &out, &err);
    Py_END_ALLOW_THREADS
    if (rc != 0) {
        cprof_py_raise(rc, &err);
        goto release;
    }
    r = cprof_py_profile(out);
    if (r != NULL)
        ((ProfileData *)r)->source = Py_NewRef((PyObject *)self);
release:
    PyBuffer_Release(&fbits);
    PyBuffer_Release(&mbits);
    if (keep.obj != NULL)
        PyBuffer_Release(&keep);
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
        return cprof_py_raise(rc, &err);
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

/* listing(sample_index, fn_file, unnamed) -> [(name, file id, start_line,
 * line, objfile, flat, cum)]: the listed lines; see analysis/listing.h. */
static PyObject *ProfileData_listing(ProfileData *self, PyObject *args)
{
    const cprof_msg_t *m = self->p->msg;
    Py_ssize_t index;
    Py_buffer fn_file;
    int unnamed;
    if (!PyArg_ParseTuple(args, "ny*p", &index, &fn_file, &unnamed))
        return NULL;
    PyObject *list = NULL;
    if (check_type_index(m, index) < 0 ||
        bytes_of(&fn_file, m->n_function * sizeof(int32_t), "fn_file (int32 each)") == NULL)
        goto release;
    cprof_listing_t ls;
    cprof_error_t err;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = cprof_listing_build(self->p, (size_t)index, fn_file.buf, unnamed, &ls, &err);
    Py_END_ALLOW_THREADS
    if (rc != 0) {
        cprof_py_raise(rc, &err);
        goto release;
    }
    list = PyList_New((Py_ssize_t)ls.n);
    for (size_t r = 0; list != NULL && r < ls.n; r++) {
        const cprof_node_t *n = &ls.nodes[r];
        PyObject *row = Py_BuildValue("(NLLLNNN)", str_at(m, n->name), (long long)n->file,
                                      (long long)n->start_line, (long long)n->line,
                                      str_at(m, n->objfile), sum_to_long(ls.flat[r]),
                                      sum_to_long(ls.cum[r]));
        if (row == NULL)
            Py_CLEAR(list);
        else
            PyList_SET_ITEM(list, (Py_ssize_t)r, row);
    }
    cprof_listing_free(&ls);
release:
    PyBuffer_Release(&fn_file);
    return list;
}

/* merged_samples(sample_index, label_class) -> (first samples, values): the
 * samples as pprof merges them for -traces, label_class (uint32 per sample)
 * saying which labels are alike; see analysis/traces.h. */
static PyObject *ProfileData_merged_samples(ProfileData *self, PyObject *args)
{
    const cprof_msg_t *m = self->p->msg;
    Py_ssize_t index;
    Py_buffer classes;
    if (!PyArg_ParseTuple(args, "ny*", &index, &classes))
        return NULL;
    PyObject *r = NULL;
    if (check_type_index(m, index) < 0 ||
        bytes_of(&classes, m->n_sample * sizeof(uint32_t), "label_class (uint32 each)") == NULL)
        goto release;
    cprof_merged_t merged;
    cprof_error_t err;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = cprof_traces_merge(self->p, classes.buf, &merged, &err);
    Py_END_ALLOW_THREADS
    if (rc != 0) {
        cprof_py_raise(rc, &err);
        goto release;
    }
    PyObject *first = u32_list(merged.first, merged.n);
    PyObject *values = first != NULL ? sum_list(merged.sums + index, merged.n, m->n_sample_type)
                                     : NULL;
    r = values != NULL ? PyTuple_Pack(2, first, values) : NULL;
    Py_XDECREF(first);
    Py_XDECREF(values);
    cprof_merged_free(&merged);
release:
    PyBuffer_Release(&classes);
    return r;
}

/* traces_text(first, heads, names) -> bytes: the traces of the samples first
 * (uint32 each), under their heads, frames named by names (one per
 * function-granularity node), heads and names as bytes (UTF-8 with
 * surrogateescape: a profile's names need not be UTF-8); see
 * analysis/traces.h. */
static PyObject *ProfileData_traces_text(ProfileData *self, PyObject *args)
{
    const cprof_msg_t *m = self->p->msg;
    Py_buffer first;
    PyObject *heads_obj, *names_obj, *heads = NULL, *names = NULL, *r = NULL;
    const char **head_text = NULL, **name_text = NULL;
    size_t *head_len = NULL, *name_len = NULL;
    char *out = NULL;
    size_t out_len = 0;
    if (!PyArg_ParseTuple(args, "y*OO", &first, &heads_obj, &names_obj))
        return NULL;
    const cprof_paths_t *ps = paths_of(self, CPROF_GRAIN_FUNCTION);
    if (ps == NULL ||
        texts_of(heads_obj, 1, "head", NULL, NULL, &heads, &head_text, &head_len) < 0 ||
        texts_of(names_obj, 1, "frame name", NULL, NULL, &names, &name_text, &name_len) < 0)
        goto release;
    size_t n = (size_t)first.len / sizeof(uint32_t);
    if ((size_t)first.len % sizeof(uint32_t) != 0 || (size_t)PyTuple_GET_SIZE(heads) != n) {
        PyErr_Format(PyExc_ValueError, "first has %zd bytes for %zd heads (uint32 each)",
                     first.len, PyTuple_GET_SIZE(heads));
        goto release;
    }
    if ((size_t)PyTuple_GET_SIZE(names) != ps->n_nodes) {
        PyErr_Format(PyExc_ValueError, "%zd names for %zu nodes", PyTuple_GET_SIZE(names),
                     ps->n_nodes);
        goto release;
    }
    const uint32_t *samples = first.buf;
    for (size_t k = 0; k < n; k++)
        if (samples[k] >= m->n_sample) {
            PyErr_Format(PyExc_IndexError, "sample index %u out of range", samples[k]);
            goto release;
        }
    cprof_frame_names_t hn = {head_text, head_len}, nn = {name_text, name_len};
    cprof_error_t err;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = cprof_traces_text(self->p, ps, samples, n, &hn, &nn, &out, &out_len, &err);
    Py_END_ALLOW_THREADS
    if (rc != 0)
        cprof_py_raise(rc, &err);
    else
        r = PyBytes_FromStringAndSize(out != NULL ? out : "", (Py_ssize_t)out_len);
release:
    free(out);
    PyMem_Free(head_text);
    PyMem_Free(head_len);
    PyMem_Free(name_text);
    PyMem_Free(name_len);
    Py_XDECREF(heads);
    Py_XDECREF(names);
    PyBuffer_Release(&first);
    return r;
}

static PyMethodDef ProfileData_methods[] = {
    {"header", (PyCFunction)ProfileData_header, METH_NOARGS,
     "header() -> dict of the profile's scalar fields and sample types"},
    {"counts", (PyCFunction)ProfileData_counts, METH_NOARGS,
     "counts() -> (samples, locations, functions, mappings, strings)"},
    {"string", (PyCFunction)ProfileData_string, METH_O, "string(i) -> string_table[i]"},
    {"sample", (PyCFunction)ProfileData_sample, METH_O,
     "sample(i) -> (location indices, values, ((key, str|None, num, unit|None), ...))"},
    {"sample_values", (PyCFunction)ProfileData_sample_values, METH_O,
     "sample_values(i) -> the values of sample i"},
    {"sample_keys", (PyCFunction)ProfileData_sample_keys, METH_NOARGS,
     "sample_keys() -> (stack_first, labels_first): uint32 bytes, per sample the first "
     "sample with the same location ids and the first with the same labels"},
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
    {"listing", (PyCFunction)ProfileData_listing, METH_VARARGS,
     "listing(sample_index, fn_file, unnamed) -> [(name, file id, start_line, line, objfile, "
     "flat, cum)]; see csrc/analysis/listing.h"},
    {"merged_samples", (PyCFunction)ProfileData_merged_samples, METH_VARARGS,
     "merged_samples(sample_index, label_class) -> (first samples, values); see "
     "csrc/analysis/traces.h"},
    {"traces_text", (PyCFunction)ProfileData_traces_text, METH_VARARGS,
     "traces_text(first, heads, names) -> bytes; see csrc/analysis/traces.h"},
    {"nodes", (PyCFunction)ProfileData_nodes, METH_VARARGS,
     "nodes(granularity=0) -> [(name, file, start_line, line, objfile, source file, "
     "source start line)]; see csrc/analysis/paths.h"},
    {"call_tree", (PyCFunction)ProfileData_call_tree, METH_VARARGS,
     "call_tree(frames, types, min_width_fraction) -> dict; see csrc/analysis/tree.h"},
    {"label_sets", (PyCFunction)ProfileData_label_sets, METH_NOARGS,
     "label_sets() -> (the distinct label lists, as sample() gives them, [each sample's "
     "index into them])"},
    {"filtered", (PyCFunction)ProfileData_filtered, METH_VARARGS,
     "filtered(active, function_bits, mapping_bits, sample_keep=None) -> ProfileData; see "
     "csrc/analysis/filter.h"},
    {"frame_stacks", (PyCFunction)ProfileData_frame_stacks, METH_VARARGS,
     "frame_stacks(sample_index, frames, n_frames) -> (stacks, values, negative); see "
     "csrc/analysis/frame_stacks.h"},
    {"frame_totals", (PyCFunction)ProfileData_frame_totals, METH_VARARGS,
     "frame_totals(frames, n_frames) -> (flat, cum) per sample type; see "
     "csrc/analysis/frame_stacks.h"},
    {"node_tags", (PyCFunction)ProfileData_node_tags, METH_VARARGS,
     "node_tags(sample_index, kept=None, groups=None) -> [(node, set or group, flat, cum)]; "
     "see csrc/analysis/tags.h"},
    {"folded", (PyCFunction)ProfileData_folded, METH_VARARGS,
     "folded(sample_index, frames, names) -> (bytes, stacks, negative); see "
     "csrc/analysis/frame_stacks.h"},
    {"call_graph", (PyCFunction)(void (*)(void))ProfileData_call_graph,
     METH_VARARGS | METH_KEYWORDS,
     "call_graph(sample_index, granularity=0, kept=None, edges=True) -> (nodes [(name, file, "
     "start_line, line, objfile)], flat, cum, edges [(caller, callee, weight, inline, "
     "residual)], "
     "inlined); see csrc/analysis/graph.h"},
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
        return cprof_py_raise(rc, &err);
    return cprof_py_profile(p);
}

static PyMethodDef profile_methods[] = {
    {"decode", (PyCFunction)(void (*)(void))core_decode, METH_VARARGS | METH_KEYWORDS,
     "decode(data, max_size=1 GiB, max_ratio=256) -> ProfileData: gzipped or raw "
     "profile.proto bytes, validated by pprof's rules; max_size bounds the input, its "
     "inflated bytes and the decoded memory, max_ratio (0: off) their ratio to the input "
     "past 16 MiB; signal handlers run during the decode; raises ProfileError"},
    {"_id_hash_key", (PyCFunction)core_id_hash_key, METH_NOARGS,
     "_id_hash_key() -> the per-process key of the decoder's id hash (for tests)"},
    {NULL, NULL, 0, NULL},
};

static int profile_ready(PyObject *module)
{
    if (PyType_Ready(&ProfileData_Type) < 0 ||
        PyModule_AddObjectRef(module, "ProfileData", (PyObject *)&ProfileData_Type) < 0 ||
        PyModule_AddIntConstant(module, "DEFAULT_MAX_SIZE", (long)CPROF_DEFAULT_MAX_SIZE) < 0 ||
        PyModule_AddIntConstant(module, "DEFAULT_MAX_RATIO", (long)CPROF_DEFAULT_MAX_RATIO) < 0)
        return -1;
    return 0;
}

const cprof_binding_t cprof_profile_binding = {profile_methods, profile_ready};
