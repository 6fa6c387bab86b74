/* build: a profile.proto message from string-indexed Python tables (what
 * cprof's profile builder hands over), validated by the codec as a decoded
 * one is, as a ProfileData. */
#include "module/module.h"

#include <stdlib.h>
#include <string.h>

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
        return cprof_py_raise(rc, &err);
    }
    return cprof_py_profile(p);
}

static PyMethodDef build_methods[] = {
    {"build", (PyCFunction)core_build, METH_VARARGS,
     "build(strings, header, sample_types, samples, mappings, locations, functions) -> "
     "ProfileData: a validated profile from string-indexed tables; raises ProfileError"},
    {NULL, NULL, 0, NULL},
};

const cprof_binding_t cprof_build_binding = {build_methods, NULL};
