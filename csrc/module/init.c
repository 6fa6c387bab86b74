/* init: cprof._core, the Python face of the C core, made from one binding per
 * concern (module.h); and the exceptions every binding raises. */
#include "module/module.h"

#include "collect/frames.h"

PyObject *cprof_py_profile_error;

PyObject *cprof_py_raise(int code, const cprof_error_t *err)
{
    switch (code) {
    case CPROF_E_NOMEM:
        return PyErr_Format(PyExc_MemoryError, "%s", err->msg);
    case CPROF_E_FORMAT:
    case CPROF_E_LIMIT:
        return PyErr_Format(cprof_py_profile_error, "%s", err->msg);
    case CPROF_E_PYTHON:
        return NULL;
    default:
        return PyErr_Format(PyExc_RuntimeError, "%s", err->msg);
    }
}

static const cprof_binding_t *const bindings[] = {
    &cprof_profile_binding, &cprof_build_binding, &cprof_sampler_binding,
    &cprof_heap_binding,    &cprof_locks_binding, &cprof_process_binding,
};

static struct PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "cprof._core",
    .m_doc = "cprof's C core: the pprof codec.",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__core(void)
{
    /* Learned from this import's own Python frames: what the stack walks of
     * every collector need on 3.12 (collect/compat.h). */
    cprof_frames_check_layout(NULL, 0);
    cprof_frames_learn();
    PyObject *m = PyModule_Create(&core_module);
    if (m == NULL)
        return NULL;
    if (cprof_py_profile_error == NULL) {
        cprof_py_profile_error = PyErr_NewExceptionWithDoc(
            "cprof.ProfileError",
            "A profile is malformed or violates pprof's rules; the message names the field "
            "and the offending index or id.",
            PyExc_ValueError, NULL);
        if (cprof_py_profile_error == NULL)
            goto fail;
    }
    if (PyModule_AddObjectRef(m, "ProfileError", cprof_py_profile_error) < 0)
        goto fail;
    for (size_t i = 0; i < sizeof bindings / sizeof bindings[0]; i++) {
        if (PyModule_AddFunctions(m, bindings[i]->methods) < 0 ||
            (bindings[i]->ready != NULL && bindings[i]->ready(m) < 0))
            goto fail;
    }
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
