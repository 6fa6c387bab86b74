/* sampler: the CPU and wall-clock sampler's functions (collect/sampler.h),
 * and LabelSet, the value of cprof.labels()'s ContextVar that its signal
 * handler reads. */
#include "module/module.h"

#include <string.h>

#include "collect/sampler.h"

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
                             "poll_ms", "native", "resume", NULL};
    double hz = 100;
    const char *mode = "cpu";
    Py_ssize_t max_depth = 128, buffer = 2048;
    PyObject *label_var = Py_None, *hook = Py_None;
    double poll_ms = 50;
    int native = 0, resume = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|dsnnOOdpp:cpu_start", kwlist, &hz, &mode,
                                     &max_depth, &buffer, &label_var, &hook, &poll_ms, &native,
                                     &resume))
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
        .resume = resume,
    };
    cprof_error_t err;
    int rc = cprof_sampler_start(&cfg, &err);
    if (rc != 0)
        return cprof_py_raise(rc, &err);
    coroutine_cursor = 0;
    Py_RETURN_NONE;
}

/* The CPU profile's tables: cprof_py_tables plus samples and stats. */
static PyObject *export_stacks(const cprof_stacks_t *st, const cprof_sampler_stats_t *stats)
{
    PyObject *r = cprof_py_tables(st);
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
    if (cprof_py_set_steal(r, "samples", samples) < 0 ||
        cprof_py_set_steal(
            r, "stats",
            Py_BuildValue("{sKsKsKsKsKsLsi}", "samples", (unsigned long long)stats->samples,
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
        return cprof_py_raise(rc, &err);
    PyObject *r = rc == 0 ? export_stacks(&st, &stats) : cprof_py_raise(rc, &err);
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

#ifdef CPROF_BENCH_HOOKS
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
#endif

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

static PyMethodDef sampler_methods[] = {
    {"cpu_start", (PyCFunction)(void (*)(void))core_cpu_start, METH_VARARGS | METH_KEYWORDS,
     "cpu_start(hz=100, mode='cpu', max_depth=128, buffer_samples=2048, label_var=None, "
     "hook=None, poll_ms=50, native=False, resume=False): start sampling every thread "
     "(native: C frames too; resume: each thread's time counts from the previous profile's "
     "last reading, for a cut); RuntimeError if a CPU profile "
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
#ifdef CPROF_BENCH_HOOKS
    {"measure_record_ns", (PyCFunction)core_measure_record_ns, METH_VARARGS,
     "measure_record_ns(n, max_depth=128, label_var=None, native=False) -> mean ns the "
     "signal handler spends recording one sample of the calling thread's stack, with its C "
     "frames if native (a benchmark)"},
#endif
    {"thread_started", (PyCFunction)core_thread_started, METH_NOARGS,
     "thread_started(): the calling thread just started; time it now"},
    {"thread_exiting", (PyCFunction)core_thread_exiting, METH_NOARGS,
     "thread_exiting(): the calling thread is ending; read its CPU clock while it still can"},
    {"cpu_running", (PyCFunction)core_cpu_running, METH_NOARGS,
     "cpu_running() -> whether a CPU profile is running"},
    {NULL, NULL, 0, NULL},
};

static int sampler_ready(PyObject *module)
{
    if (PyType_Ready(&LabelSet_Type) < 0 ||
        PyModule_AddObjectRef(module, "LabelSet", (PyObject *)&LabelSet_Type) < 0)
        return -1;
    return 0;
}

const cprof_binding_t cprof_sampler_binding = {sampler_methods, sampler_ready};
