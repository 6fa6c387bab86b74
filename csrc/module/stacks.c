/* stacks: the collectors' interned tables (collect/stacks.h) as Python lists,
 * which the CPU, heap and lock bindings each complete with their samples. */
#include "module/module.h"

PyObject *cprof_py_tables(const cprof_stacks_t *st)
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

int cprof_py_set_steal(PyObject *dict, const char *key, PyObject *value)
{
    int rc = value == NULL ? -1 : PyDict_SetItemString(dict, key, value);
    Py_XDECREF(value);
    return rc;
}
