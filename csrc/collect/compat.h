/* compat: every difference between the CPython versions cprof knows (3.11
 * to 3.15) that the collectors depend on, as small inline functions over
 * CPython's internal structures. Include only from frames.c (it needs
 * Py_BUILD_CORE_MODULE).
 *
 * Functions marked _sigsafe only read memory: no allocation, no locks, no
 * reference counts, no Python API call. They may run in a signal handler on
 * the thread that owns the state they read.
 *
 * On an interpreter cprof does not know (a newer minor version, or a
 * free-threaded build, whose frames other threads may change under a reader
 * without the GIL), none of CPython's internal headers is included:
 * CPROF_COMPAT_UNSUPPORTED names the interpreter, frames.c compiles without
 * the frame walk, and the collectors refuse to start (cprof_frames_problem).
 * Profiles are still read, analysed and written. CPROF_PRETEND_UNKNOWN
 * builds that way on a known interpreter, for the tests.
 */
#ifndef CPROF_COMPAT_H
#define CPROF_COMPAT_H

#ifndef Py_BUILD_CORE_MODULE
#define Py_BUILD_CORE_MODULE
#endif
#include <Python.h>
#include <pthread.h>

#if defined(Py_GIL_DISABLED)
#define CPROF_COMPAT_UNSUPPORTED "the free-threaded build of CPython " PY_VERSION
#elif PY_VERSION_HEX < 0x030B0000 || PY_VERSION_HEX >= 0x03100000 || \
    defined(CPROF_PRETEND_UNKNOWN)
#define CPROF_COMPAT_UNSUPPORTED "CPython " PY_VERSION
#endif

#ifndef CPROF_COMPAT_UNSUPPORTED

/* CPython's internal headers are not written for -Wextra. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "internal/pycore_code.h"
#include "internal/pycore_context.h"
#include "internal/pycore_frame.h"
#include "internal/pycore_hamt.h"
#include "internal/pycore_runtime.h"
#if PY_VERSION_HEX >= 0x030C0000 && PY_VERSION_HEX < 0x030E0000
#include "opcode.h" /* INSTRUMENTED_LINE, INSTRUMENTED_INSTRUCTION */
#endif
#if PY_VERSION_HEX >= 0x030E0000
#include "internal/pycore_genobject.h"
#include "internal/pycore_interpframe.h"
#endif
#pragma GCC diagnostic pop

#include "collect/leaf.h"

/* The calling thread's own PyThreadState, whether or not it holds the GIL:
 * the slot CPython keeps in thread-specific storage (PyGILState's key).
 * pthread_getspecific is a plain array read in glibc. NULL for a thread
 * Python does not know. */
static inline PyThreadState *cprof_compat_tstate_sigsafe(void)
{
#if PY_VERSION_HEX >= 0x030F0000
    /* 3.15 keeps that slot in a C thread-local, read by this function alone:
     * one load from the thread pointer, no lock, no allocation. */
    return PyGILState_GetThisThreadState();
#else
#if PY_VERSION_HEX >= 0x030C0000
    Py_tss_t *key = &_PyRuntime.autoTSSkey;
#else
    Py_tss_t *key = &_PyRuntime.gilstate.autoTSSkey;
#endif
    if (!key->_is_initialized)
        return NULL;
    return (PyThreadState *)pthread_getspecific(key->_key);
#endif
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

/* --- which frames may be read ------------------------------------------------
 * A frame pointer taken from the thread's state is trusted only once it checks
 * out: the frame lies in the thread's live data stack, or in a live generator
 * (read with a syscall that cannot fault).
 *
 * 3.11 and 3.12 need it for every frame of the newest call of
 * _PyEval_EvalFrameDefault: it links its _PyCFrame, a C local, into
 * tstate->cframe *before* it sets that cframe's current_frame and previous
 * (Python/ceval.c: "tstate->cframe = &cframe; ... cframe.current_frame =
 * frame;"), so a signal in between reads whatever the stack held there. The
 * walk must check out down to the call's entry frame (a C local of that call),
 * whose previous frame must check out too; older calls' frames were complete
 * when the newest call began. A signal inside that window gets the caller's
 * frames (cprof_compat_walk_start_sigsafe), reached through the cframe's
 * previous link, which is copied with a syscall since it may not be written
 * yet either.
 *
 * 3.13 and later have no cframe: tstate->current_frame is the one pointer
 * published, once the frame it points to is ready, and every frame's previous
 * link is written before the frame becomes current. The check stays on that
 * pointer alone, against a release that changes the order: a generator or
 * coroutine at the leaf costs one syscall (about 1.5 us), the rest nothing.
 * That pointer may also be a call's entry frame (a C local of the running
 * _PyEval_EvalFrameDefault, as it leaves a call it was entered for from C);
 * it is read the same way, with one syscall. */

#include <sys/uio.h>
#include <unistd.h>

/* A chain of data-stack chunks longer than this is corrupt or cyclic. */
#define CPROF_COMPAT_MAX_CHUNKS 1000000

/* Whether [p, p + n) lies in the thread's live data stack, in chunk *from or
 * an older one; *from moves to the chunk that holds it. Walking one call's
 * frames rootward meets their chunks from newer to older, so a walk that
 * keeps *from costs O(frames + chunks) at any depth. */
static inline int cprof_compat_in_datastack_from_sigsafe(PyThreadState *tstate,
                                                         _PyStackChunk **from, const void *p,
                                                         size_t n)
{
    const char *a = p;
    int steps = 0;
    for (_PyStackChunk *c = *from; c != NULL && steps < CPROF_COMPAT_MAX_CHUNKS;
         c = c->previous, steps++) {
        const char *lo = (const char *)c->data;
        const char *hi = c == tstate->datastack_chunk ? (const char *)tstate->datastack_top
                                                      : (const char *)&c->data[c->top];
        if (a >= lo && a < hi && (size_t)(hi - a) >= n) {
            *from = c;
            return 1;
        }
    }
    return 0;
}

/* Whether [p, p + n) lies in the thread's live data stack. */
static inline int cprof_compat_in_datastack_sigsafe(PyThreadState *tstate, const void *p,
                                                    size_t n)
{
    _PyStackChunk *from = tstate->datastack_chunk;
    return cprof_compat_in_datastack_from_sigsafe(tstate, &from, p, n);
}

/* Copies n bytes from p, which may not be mapped: process_vm_readv reports
 * EFAULT where a read would crash. 1 when all of them were copied. */
static inline int cprof_compat_copy_sigsafe(void *dst, const void *p, size_t n)
{
    struct iovec local = {.iov_base = dst, .iov_len = n};
    struct iovec remote = {.iov_base = (void *)p, .iov_len = n};
    return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == (ssize_t)n;
}

static inline int cprof_compat_generator_live(int state)
{
#ifdef FRAME_STATE_SUSPENDED
    return state == FRAME_EXECUTING || FRAME_STATE_SUSPENDED(state);
#else
    return state == FRAME_EXECUTING || state == FRAME_SUSPENDED;
#endif
}

/* Whether f is the frame of a live generator or coroutine: its object is
 * copied with process_vm_readv, which reports EFAULT where a read would crash. */
static inline int cprof_compat_generator_frame_sigsafe(_PyInterpreterFrame *f)
{
    size_t head = offsetof(PyGenObject, gi_iframe);
    if ((uintptr_t)f < head + 4096 || (uintptr_t)f % sizeof(void *) != 0)
        return 0;
    union {
        PyGenObject gen;
        char bytes[offsetof(PyGenObject, gi_iframe) + sizeof(_PyInterpreterFrame)];
    } copy;
    if (!cprof_compat_copy_sigsafe(&copy, (char *)f - head, sizeof copy))
        return 0;
    PyTypeObject *type = copy.gen.ob_base.ob_type;
    _PyInterpreterFrame *frame = (_PyInterpreterFrame *)(copy.bytes + head);
    return (type == &PyGen_Type || type == &PyCoro_Type || type == &PyAsyncGen_Type) &&
           cprof_compat_generator_live(copy.gen.gi_frame_state) &&
           frame->owner == FRAME_OWNED_BY_GENERATOR;
}

/* Whether f (not NULL) may be read: a frame of this thread's data stack (in
 * chunk *from or an older one: see cprof_compat_in_datastack_from_sigsafe) or
 * of a live generator, or (3.15) the thread's base frame, under its first call. */
static inline int cprof_compat_readable_frame_from_sigsafe(PyThreadState *tstate,
                                                           _PyStackChunk **from,
                                                           _PyInterpreterFrame *f)
{
#if PY_VERSION_HEX >= 0x030F0000
    if (f == tstate->base_frame)
        return 1;
#endif
    return cprof_compat_in_datastack_from_sigsafe(tstate, from, f, sizeof *f) ||
           cprof_compat_generator_frame_sigsafe(f);
}

static inline int cprof_compat_readable_frame_sigsafe(PyThreadState *tstate,
                                                      _PyInterpreterFrame *f)
{
    _PyStackChunk *from = tstate->datastack_chunk;
    return cprof_compat_readable_frame_from_sigsafe(tstate, &from, f);
}

/* Whether f ends the frames of one call of _PyEval_EvalFrameDefault, walking
 * from the leaf: on 3.11 the call's first frame is marked is_entry; on 3.12
 * and 3.13 each call pushes an entry frame owned by the C stack below its
 * first frame; 3.14 and later give that frame FRAME_OWNED_BY_INTERPRETER (as
 * 3.15 also does the thread's base frame, below the first call). */
static inline int cprof_compat_call_entry_sigsafe(_PyInterpreterFrame *f)
{
#if PY_VERSION_HEX >= 0x030E0000
    return f->owner == FRAME_OWNED_BY_INTERPRETER;
#elif PY_VERSION_HEX >= 0x030C0000
    return f->owner == FRAME_OWNED_BY_CSTACK;
#else
    return f->is_entry;
#endif
}

/* Where an entry frame f (cprof_compat_call_entry_sigsafe) lies in the C
 * stack: 3.12+ make it a local of the C function running the call, so that
 * native.c can tell that function's C frame by its stack range; 3.11 marks a
 * frame of the data stack instead (NULL). */
static inline void *cprof_compat_entry_on_cstack(_PyInterpreterFrame *f)
{
#if PY_VERSION_HEX >= 0x030C0000
    return f;
#else
    (void)f;
    return NULL;
#endif
}

#if PY_VERSION_HEX >= 0x030C0000 && PY_VERSION_HEX < 0x030D0000
/* 3.12: the entry frame's offset from its cframe in _PyEval_EvalFrameDefault's
 * stack frame, learned once from a running call (cprof_compat_learn_entry). */
static ptrdiff_t cprof_compat_entry_offset;
static int cprof_compat_entry_known;
#endif

#if PY_VERSION_HEX >= 0x030D0000
/* Whether f is the entry frame of a running call of _PyEval_EvalFrameDefault,
 * on this thread's C stack. It is the thread's current frame while the
 * interpreter leaves a call it was entered for from C, between the return or
 * yield of that call's frame and the function's own return: with a generator
 * resumed from C (sum() over a generator expression) 3-7% of the samples
 * came there on 3.13-3.15, and were "<no Python frame>". Copied with
 * process_vm_readv, which reports EFAULT where a read would crash. */
static inline int cprof_compat_entry_frame_sigsafe(_PyInterpreterFrame *f)
{
    if ((uintptr_t)f % sizeof(void *) != 0)
        return 0;
    _PyInterpreterFrame copy;
    if (!cprof_compat_copy_sigsafe(&copy, f, sizeof copy))
        return 0;
    return cprof_compat_call_entry_sigsafe(&copy);
}
#endif

#if PY_VERSION_HEX < 0x030D0000
/* Whether the frames of the call of _PyEval_EvalFrameDefault whose _PyCFrame
 * is cframe check out, from f (its current frame) down to the call's entry
 * frame and the frame under it (see above). The newest call's cframe is
 * trusted: it is tstate->cframe, a local of a running C function. An older
 * one, reached through a link the newest call may not have written yet, is
 * not: its entry frame (3.12) is copied with process_vm_readv first. */
static inline int cprof_compat_call_ok_sigsafe(PyThreadState *tstate, _PyCFrame *cframe,
                                               _PyInterpreterFrame *f, int trusted)
{
#if PY_VERSION_HEX >= 0x030C0000
    if (!cprof_compat_entry_known)
        return 0;
    _PyInterpreterFrame *entry =
        (_PyInterpreterFrame *)((char *)cframe + cprof_compat_entry_offset);
    /* The trusted entry frame is read only once the walk reaches it, as a
     * frame of the call: a cframe that is not _PyEval_EvalFrameDefault's
     * (another evaluator's) has nothing at that offset to read. */
    _PyInterpreterFrame copy;
    if (!trusted && !cprof_compat_copy_sigsafe(&copy, entry, sizeof copy))
        return 0;
#else
    (void)cframe;
    (void)trusted;
#endif
    _PyStackChunk *from = tstate->datastack_chunk;
    for (int steps = 0; steps < 10000000; steps++) {
        if (f == NULL)
            return 0;  /* a complete call's frames lead to its entry frame */
#if PY_VERSION_HEX >= 0x030C0000
        if (f == entry) {
            if (trusted)
                copy = *entry;
            if (copy.owner != FRAME_OWNED_BY_CSTACK)
                return 0;
            f = copy.previous;
#else
        if (!cprof_compat_readable_frame_from_sigsafe(tstate, &from, f))
            return 0;
        if (f->is_entry) {
            f = f->previous;
#endif
            return f == NULL || cprof_compat_readable_frame_from_sigsafe(tstate, &from, f);
        }
#if PY_VERSION_HEX >= 0x030C0000
        if (!cprof_compat_readable_frame_from_sigsafe(tstate, &from, f))
            return 0;
#endif
        f = f->previous;
    }
    return 0;
}
#endif

/* Where a walk of the thread's frames starts: *start is set to the newest
 * frame whose call's frames are initialised (see above), or NULL when the
 * thread runs no Python code; 0 when no frame can be trusted. On 3.11 and
 * 3.12 a signal that catches the thread entering a call (its cframe linked,
 * its frames not yet) starts at the caller's frames, complete since the call
 * began: the thread is still in the C code that makes the call. A test run
 * at 1 kHz found 4 such samples in 1.5 s of a generator resumed from C. */
static inline int cprof_compat_walk_start_sigsafe(PyThreadState *tstate,
                                                  _PyInterpreterFrame **start)
{
#if PY_VERSION_HEX >= 0x030D0000
    _PyInterpreterFrame *f = tstate->current_frame;
    *start = f;
    return f == NULL || cprof_compat_readable_frame_sigsafe(tstate, f) ||
           cprof_compat_entry_frame_sigsafe(f);
#else
    _PyCFrame *cframe = tstate->cframe;
    *start = NULL;
    if (cframe == NULL || cframe == &tstate->root_cframe)
        return 1;  /* not inside _PyEval_EvalFrameDefault: no Python frame */
    *start = cframe->current_frame;
    if (cprof_compat_call_ok_sigsafe(tstate, cframe, *start, 1))
        return 1;
    _PyCFrame *caller = cframe->previous;
    *start = NULL;
    if (caller == &tstate->root_cframe)
        return 1;  /* entering the thread's first call */
    _PyCFrame copy;
    if (caller == NULL || !cprof_compat_copy_sigsafe(&copy, caller, sizeof copy))
        return 0;
    *start = copy.current_frame;
    return cprof_compat_call_ok_sigsafe(tstate, caller, *start, 0);
#endif
}

/* 3.12: learn where _PyEval_EvalFrameDefault keeps its entry frame relative to
 * its cframe, from the calling thread's running call. GIL held. */
static inline void cprof_compat_learn_entry(void)
{
#if PY_VERSION_HEX >= 0x030C0000 && PY_VERSION_HEX < 0x030D0000
    if (cprof_compat_entry_known)
        return;
    PyThreadState *tstate = PyThreadState_Get();
    _PyCFrame *cframe = tstate->cframe;
    if (cframe == NULL || cframe == &tstate->root_cframe)
        return;
    _PyInterpreterFrame *f = cframe->current_frame;
    while (f != NULL && f->owner != FRAME_OWNED_BY_CSTACK)
        f = f->previous;
    if (f == NULL)
        return;
    ptrdiff_t offset = (char *)f - (char *)cframe;
    if (offset < -65536 || offset > 65536)
        return;
    cprof_compat_entry_offset = offset;
    cprof_compat_entry_known = 1;
#endif
}

/* The frame's code object, or NULL when it runs something else. */
static inline PyCodeObject *cprof_compat_code_sigsafe(_PyInterpreterFrame *f)
{
#if PY_VERSION_HEX >= 0x030E0000
    /* A _PyStackRef: an object pointer whose low bit may tag a deferred
     * reference, or (both low bits set) a tagged integer, not an object. */
    uintptr_t bits = f->f_executable.bits;
    if ((bits & 3) == 3)
        return NULL;
    PyObject *code = (PyObject *)(bits & ~(uintptr_t)3);
#elif PY_VERSION_HEX >= 0x030D0000
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

/* The C callable frame f (executing code) is calling, if it is executing a
 * call instruction and the callable is one of leaf.h's set; else 0. An
 * address is only compared, never read through.
 * - 3.14+ keep the stack pointer in the frame during the call (saved before
 *   any call that can escape): the callable is found below it by the
 *   instruction's kind.
 * - 3.11-3.13 leave -1 there: the callable's slot comes from the code's
 *   places (leaf.h), and when the code has none yet, *unknown is set (the
 *   caller then keeps each catalogued callable of the stack as a candidate,
 *   cprof_compat_value_stack_sigsafe). */
/* The catalogue's key (leaf.h) for the object a call takes as its
 * callable: its address when the catalogue has it; else its type's address
 * + 1 when the catalogue names the calls of that C type's instances (json's
 * encoder, a functools.partial), or, for a builtin function or bound C
 * method, its method definition's address + 2 when the catalogue has that
 * (a bound list.append, dict.fromkeys through the type). Those two are read
 * with copies that cannot fault: the slot may hold a stale pointer. 0: no
 * name. */
static inline uintptr_t cprof_compat_callee_key_sigsafe(uintptr_t callable)
{
    if (callable == 0)
        return 0;
    if (cprof_leaf_known_sigsafe(callable))
        return callable;
    uintptr_t type, def;
    if (!cprof_compat_copy_sigsafe(&type, (const char *)callable + offsetof(PyObject, ob_type),
                                   sizeof type) || type == 0)
        return 0;
    if (type != (uintptr_t)&PyCFunction_Type && type != (uintptr_t)&PyCMethod_Type)
        return cprof_leaf_known_sigsafe(type + CPROF_LEAF_INSTANCE_CALL)
                   ? type + CPROF_LEAF_INSTANCE_CALL
                   : 0;
    if (!cprof_compat_copy_sigsafe(&def, (const char *)callable + offsetof(PyCFunctionObject, m_ml),
                                   sizeof def) || def == 0)
        return 0;
    return cprof_leaf_known_sigsafe(def + CPROF_LEAF_METHOD_DEF) ? def + CPROF_LEAF_METHOD_DEF : 0;
}

static inline uintptr_t cprof_compat_called_sigsafe(_PyInterpreterFrame *f, PyCodeObject *code,
                                                    int *unknown)
{
#if PY_VERSION_HEX >= 0x030E0000
    (void)unknown;
    _Py_CODEUNIT *first = _PyCode_CODE(code);
    _Py_CODEUNIT *instr = f->instr_ptr;
    if (instr < first || instr >= first + Py_SIZE(code))
        return 0;
    int kind = cprof_leaf_call_kind_sigsafe(instr->op.code);
    if (kind == CPROF_LEAF_NO_CALL || kind == CPROF_LEAF_EXTENDED)
        return 0;
    size_t oparg = instr->op.arg;
    for (int shift = 8; instr > first && shift <= 24; shift += 8) {
        instr--;
        if (cprof_leaf_call_kind_sigsafe(instr->op.code) != CPROF_LEAF_EXTENDED)
            break;
        oparg |= (size_t)instr->op.arg << shift;
    }
    size_t below = kind == CPROF_LEAF_CALL_EX ? 4 : oparg + (kind == CPROF_LEAF_CALL_KW ? 3 : 2);
    _PyStackRef *base = f->localsplus + code->co_nlocalsplus;
    _PyStackRef *sp = f->stackpointer;
    if (sp < base || sp > base + code->co_stacksize || (size_t)(sp - base) < below)
        return 0;
    uintptr_t bits = sp[-(ptrdiff_t)below].bits;
    if ((bits & 3) == 3)
        return 0;  /* a tagged integer */
    return cprof_compat_callee_key_sigsafe(bits & ~(uintptr_t)3);
#else
    unsigned slot, other;
    int found = cprof_leaf_place_sigsafe((uintptr_t)code, cprof_compat_lasti_sigsafe(f, code),
                                         &slot, &other);
    if (found < 0)
        *unknown = 1;
    if (found <= 0 || slot >= (unsigned)code->co_stacksize ||
        other >= (unsigned)code->co_stacksize)
        return 0;
    PyObject **base = f->localsplus + code->co_nlocalsplus;
    uintptr_t callable = (uintptr_t)base[slot];
    if (callable == 0)
        callable = (uintptr_t)base[other];
    return cprof_compat_callee_key_sigsafe(callable);
#endif
}

/* 3.11-3.13: frame f's value stack, whose first *n slots lie within the
 * frame (live or stale: only ever compared); NULL on 3.14+. */
static inline PyObject **cprof_compat_value_stack_sigsafe(_PyInterpreterFrame *f,
                                                          PyCodeObject *code, size_t *n)
{
#if PY_VERSION_HEX >= 0x030E0000
    (void)f, (void)code;
    *n = 0;
    return NULL;
#else
    *n = code->co_stacksize > 0 ? (size_t)code->co_stacksize : 0;
    return f->localsplus + code->co_nlocalsplus;
#endif
}

/* True for frames that must not be reported: the interpreter's own frames
 * (C-stack entry frames on 3.12+, FRAME_OWNED_BY_INTERPRETER and above on
 * 3.14+) and frames still being set up, whose instruction pointer precedes the
 * first traceable instruction (CPython's own _PyFrame_IsIncomplete). */
static inline int cprof_compat_skip_frame_sigsafe(_PyInterpreterFrame *f, PyCodeObject *code)
{
#if PY_VERSION_HEX >= 0x030E0000
    if (f->owner >= FRAME_OWNED_BY_INTERPRETER)
        return 1;
#elif PY_VERSION_HEX >= 0x030C0000
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

#endif /* !CPROF_COMPAT_UNSUPPORTED */

#endif
