/* compat: every difference between CPython 3.11, 3.12 and 3.13 that the
 * sampler depends on, as small inline functions over CPython's internal
 * structures. Include only from frames.c (it needs Py_BUILD_CORE_MODULE).
 *
 * Functions marked _sigsafe only read memory: no allocation, no locks, no
 * reference counts, no Python API call. They may run in a signal handler on
 * the thread that owns the state they read.
 */
#ifndef CPROF_COMPAT_H
#define CPROF_COMPAT_H

#ifndef Py_BUILD_CORE_MODULE
#define Py_BUILD_CORE_MODULE
#endif
#include <Python.h>
#include <pthread.h>

#include "internal/pycore_code.h"
#include "internal/pycore_context.h"
#include "internal/pycore_frame.h"
#include "internal/pycore_hamt.h"
#include "internal/pycore_runtime.h"

#if PY_VERSION_HEX < 0x030B0000 || PY_VERSION_HEX >= 0x030E0000
#error "cprof's sampler supports CPython 3.11, 3.12 and 3.13"
#endif

/* The calling thread's own PyThreadState, whether or not it holds the GIL:
 * the slot CPython keeps in thread-specific storage (PyGILState's key).
 * pthread_getspecific is a plain array read in glibc. NULL for a thread
 * Python does not know. */
static inline PyThreadState *cprof_compat_tstate_sigsafe(void)
{
#if PY_VERSION_HEX >= 0x030C0000
    Py_tss_t *key = &_PyRuntime.autoTSSkey;
#else
    Py_tss_t *key = &_PyRuntime.gilstate.autoTSSkey;
#endif
    if (!key->_is_initialized)
        return NULL;
    return (PyThreadState *)pthread_getspecific(key->_key);
}

/* Whether the calling thread, whose own state is own, holds the GIL now: the
 * state attached to this thread (3.12+), or the GIL holder's (3.11), is own.
 * No allocation, no lock. */
static inline int cprof_compat_holds_gil(PyThreadState *own)
{
#if PY_VERSION_HEX >= 0x030D0000
    PyThreadState *current = PyThreadState_GetUnchecked();
#else
    PyThreadState *current = _PyThreadState_UncheckedGet();
#endif
    return own != NULL && current == own;
}

/* The innermost frame the thread is executing, or NULL. */
static inline _PyInterpreterFrame *cprof_compat_frame_sigsafe(PyThreadState *tstate)
{
#if PY_VERSION_HEX >= 0x030D0000
    return tstate->current_frame;
#else
    return tstate->cframe != NULL ? tstate->cframe->current_frame : NULL;
#endif
}

/* The frame's code object, or NULL when it runs something else. */
static inline PyCodeObject *cprof_compat_code_sigsafe(_PyInterpreterFrame *f)
{
#if PY_VERSION_HEX >= 0x030D0000
    PyObject *code = f->f_executable;
#else
    PyObject *code = (PyObject *)f->f_code;
#endif
    return code != NULL && Py_TYPE(code) == &PyCode_Type ? (PyCodeObject *)code : NULL;
}

/* The instruction being executed, in code units from the start of code. */
static inline int cprof_compat_lasti_sigsafe(_PyInterpreterFrame *f, PyCodeObject *code)
{
#if PY_VERSION_HEX >= 0x030D0000
    return (int)(f->instr_ptr - _PyCode_CODE(code));
#else
    return (int)(f->prev_instr - _PyCode_CODE(code));
#endif
}

/* True for frames that must not be reported: C-stack shims (3.12+) and frames
 * still being set up, whose instruction pointer precedes the first traceable
 * instruction (CPython's own _PyFrame_IsIncomplete). */
static inline int cprof_compat_skip_frame_sigsafe(_PyInterpreterFrame *f, PyCodeObject *code)
{
#if PY_VERSION_HEX >= 0x030C0000
    if (f->owner == FRAME_OWNED_BY_CSTACK)
        return 1;
#endif
    if (f->owner == FRAME_OWNED_BY_GENERATOR)
        return 0;
    int lasti = cprof_compat_lasti_sigsafe(f, code);
    return lasti < code->_co_firsttraceable;
}

/* The coroutine object that owns a generator-owned frame running a
 * coroutine, else NULL. Used as an identity only, never dereferenced later. */
static inline void *cprof_compat_coroutine_sigsafe(_PyInterpreterFrame *f, PyCodeObject *code)
{
    if (f->owner != FRAME_OWNED_BY_GENERATOR || !(code->co_flags & CO_COROUTINE))
        return NULL;
    return (char *)f - offsetof(PyGenObject, gi_iframe);
}

/* --- contextvars: read one variable's value without the Python API --------
 * A context's variables live in an immutable HAMT, kept alive by the context
 * the thread is running in. Its node layout (Python/hamt.c) has not changed
 * since 3.7; the array node is not declared in any header, so it is mirrored
 * here. Node kinds are told apart by type objects captured at start-up
 * (cprof_frames_init), as CPython does not export them. */

typedef struct {
    PyObject_VAR_HEAD
    uint32_t b_bitmap;
    PyObject *b_array[1];
} cprof_hamt_bitmap_t;

typedef struct {
    PyObject_HEAD
    PyObject *a_array[32];
    Py_ssize_t a_count;
} cprof_hamt_array_t;

typedef struct {
    PyObject_VAR_HEAD
    int32_t c_hash;
    PyObject *c_array[1];
} cprof_hamt_collision_t;

/* The 32-bit hash the HAMT files a key under (Python/hamt.c, hamt_hash). */
static inline int32_t cprof_compat_hamt_hash(Py_hash_t hash)
{
    if (sizeof(Py_hash_t) <= 4)
        return (int32_t)hash;
    int64_t xored = (int64_t)((hash & 0xffffffffl) ^ (hash >> 32));
    return xored == -1 ? -2 : (int32_t)xored;
}

static inline PyObject *cprof_compat_context_vars_root_sigsafe(PyThreadState *tstate)
{
    PyContext *ctx = (PyContext *)tstate->context;
    if (ctx == NULL || ctx->ctx_vars == NULL)
        return NULL;
    return (PyObject *)ctx->ctx_vars->h_root;
}

static inline Py_hash_t cprof_compat_contextvar_hash(PyObject *var)
{
    return ((PyContextVar *)var)->var_hash;
}

#endif
