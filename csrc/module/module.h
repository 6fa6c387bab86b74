/* module: what the binding files of cprof._core share.
 *
 * Each concern's file (profile.c, build.c, sampler.c, heap.c, locks.c,
 * process.c) exports one cprof_binding_t: its functions and how to add its
 * types and constants to the module. init.c makes the module from them. All
 * of it runs with the GIL held unless a function says it releases it.
 */
#ifndef CPROF_MODULE_H
#define CPROF_MODULE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "codec/pprof.h"
#include "collect/stacks.h"
#include "common/errors.h"

typedef struct {
    PyMethodDef *methods;             /* NULL-terminated */
    int (*ready)(PyObject *module);   /* ready and add its types; 0 or -1; may be NULL */
} cprof_binding_t;

extern const cprof_binding_t cprof_profile_binding, cprof_build_binding,
    cprof_sampler_binding, cprof_heap_binding, cprof_locks_binding, cprof_process_binding;

/* cprof.ProfileError, made once by PyInit__core. */
extern PyObject *cprof_py_profile_error;

/* Raise the exception that fits a negative cprof_code_t, with err's message
 * (none for CPROF_E_PYTHON: one is set already). Returns NULL. */
PyObject *cprof_py_raise(int code, const cprof_error_t *err);

/* A ProfileData that owns p, or NULL with an exception set (p freed). */
PyObject *cprof_py_profile(cprof_pprof_t *p);

/* A collector's interned functions, locations and stacks as a dict of
 * Python lists (see cprof/collect/cpu.py), or NULL with an exception set. */
PyObject *cprof_py_tables(const cprof_stacks_t *st);

/* dict[key] = value, stealing value (which may be NULL: a failed build).
 * 0, or -1 with an exception set. */
int cprof_py_set_steal(PyObject *dict, const char *key, PyObject *value);

#endif
