/* heap: the heap profiler's functions (collect/heap.h). */
#include "module/module.h"

#include "collect/heap.h"

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
        return cprof_py_raise(rc, &err);
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
        return cprof_py_raise(rc, &err);
    Py_RETURN_NONE;
}

static int export_heap(const cprof_stacks_t *st, const cprof_heap_bucket_t *buckets, size_t n,
                       const cprof_heap_stats_t *stats, void *out)
{
    PyObject *r = cprof_py_tables(st);
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
    if (cprof_py_set_steal(r, "buckets", list) < 0 ||
        cprof_py_set_steal(
            r, "stats",
            Py_BuildValue("{sKsKsKsKsOsO}", "sampled", (unsigned long long)stats->sampled,
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
    return rc != 0 ? cprof_py_raise(rc, &err) : r;
}

static PyObject *core_heap_stop(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    cprof_error_t err;
    int rc = cprof_heap_stop(&err);
    if (rc != 0)
        return cprof_py_raise(rc, &err);
    Py_RETURN_NONE;
}

static PyObject *core_heap_running(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(cprof_heap_running());
}

static PyMethodDef heap_methods[] = {
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
    {NULL, NULL, 0, NULL},
};

const cprof_binding_t cprof_heap_binding = {heap_methods, NULL};
