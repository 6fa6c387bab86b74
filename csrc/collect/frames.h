/* frames: reading the interrupted thread's Python stack and context, and
 * hearing of code objects' deaths. The only users of CPython internals
 * (through compat.h).
 */
#ifndef CPROF_FRAMES_H
#define CPROF_FRAMES_H

#include <Python.h>
#include <stddef.h>
#include <stdint.h>

/* One captured frame: a code object that was alive at capture time (it must be
 * resolved before it dies: see cprof_frames_watch_code) and the instruction
 * offset in code units. With CPROF_FRAME_NATIVE, code holds a machine address
 * instead (native.c), with CPROF_FRAME_C_CALL a C callable; CPROF_FRAME_CALL_END marks, in a capture with marks,
 * where the frames of one call of the interpreter loop end. */
typedef struct {
    PyObject *code;
    int32_t lasti;
    uint32_t flags;
} cprof_frame_t;

#define CPROF_FRAME_NATIVE 1u
#define CPROF_FRAME_CALL_END 2u
/* code holds a C callable of the catalogue (leaf.h) the frame after it was
 * calling, named from the catalogue. */
#define CPROF_FRAME_C_CALL 4u
/* With CPROF_FRAME_C_CALL (3.11-3.13), where the code of the frame after the
 * run of candidates had no places yet (leaf.h): a catalogued callable found
 * in value stack slot lasti, which the drain keeps if the call there takes
 * its callable from that slot (cprof_frames_call_place), and drops
 * otherwise; BELOW_NULL: the slot below it held NULL. */
#define CPROF_FRAME_CANDIDATE 8u
#define CPROF_FRAME_BELOW_NULL 16u
/* On a code's frame (3.11-3.13): the code had no places yet. The drain
 * works them out, so that its later samples name the callable of a call
 * the catalogue knows by the callable's type or method definition alone
 * (leaf.h), which is never a candidate. */
#define CPROF_FRAME_NO_PLACES 32u

/* Check, once at import, that the collectors can read this interpreter's
 * frames: cprof knows its version, and (3.13+) every offset the frame walk
 * uses equals the one the interpreter publishes in _PyRuntime.debug_offsets.
 * Returns 0, or -1 after which cprof_frames_init and cprof_frames_watch_code
 * refuse with the reason (a RuntimeError). skew_field ("group.field", as in
 * _Py_DebugOffsets) and skew let the tests pretend that the interpreter
 * moved one field; pass NULL and 0 otherwise. GIL held. */
int cprof_frames_check_layout(const char *skew_field, long skew);

/* Why the collectors refuse this interpreter, or NULL when they do not. */
const char *cprof_frames_problem(void);

/* The address of _PyEval_EvalFrameDefault, or NULL where cprof does not know
 * the interpreter. */
void *cprof_frames_eval_loop(void);

/* Prepare what the _sigsafe functions need (HAMT node types). GIL held.
 * Returns 0 or -1 with a Python exception set. */
int cprof_frames_init(void);

/* What every stack walk needs (3.12: where a call's entry frame lies), from
 * the calling thread's running Python frames: call at import. GIL held. */
void cprof_frames_learn(void);

/* The calling thread's PyThreadState, or NULL. Signal-safe. */
PyThreadState *cprof_frames_tstate_sigsafe(void);

/* Whether the calling thread holds the GIL; tstate is its own state (from
 * cprof_frames_tstate_sigsafe). Allocates nothing, takes no lock. */
int cprof_frames_holds_gil(PyThreadState *tstate);

/* Store up to max frames of tstate's stack, leaf first, into out; *total is
 * the full depth (more than the return value when truncated) and *coroutine
 * the outermost running coroutine object (an identity only) or NULL.
 * Signal-safe when tstate is the calling thread's own state. */
size_t cprof_frames_capture_sigsafe(PyThreadState *tstate, cprof_frame_t *out, size_t max,
                                    size_t *total, void **coroutine);

/* The same without the C callables frames call (CPROF_FRAME_C_CALL): a
 * native profile's stacks of threads it does not unwind. */
size_t cprof_frames_capture_unnamed_sigsafe(PyThreadState *tstate, cprof_frame_t *out,
                                            size_t max, size_t *total, void **coroutine);

/* The same, with a CPROF_FRAME_CALL_END mark after the frames of each call
 * of the interpreter loop, innermost call first: what native.c needs to put
 * each call's Python frames in place of its C frame. A mark's code holds the
 * address of the call's entry frame where that frame is a local of the C
 * function running the call (3.12+), so that native.c finds the C frame by
 * its stack range; NULL on 3.11, whose entry frames live in the data stack.
 * Marks count in max, not in *total. */
size_t cprof_frames_capture_marked_sigsafe(PyThreadState *tstate, cprof_frame_t *out,
                                           size_t max, size_t *total, void **coroutine);

/* The value of context variable var (hash: its Py_hash_t) in tstate's
 * current context, or NULL. Borrowed, valid only while the handler runs.
 * Signal-safe when tstate is the calling thread's own state. */
PyObject *cprof_frames_contextvar_sigsafe(PyThreadState *tstate, PyObject *var,
                                          Py_hash_t hash);

/* The Py_hash_t of a ContextVar, for cprof_frames_contextvar_sigsafe. */
Py_hash_t cprof_frames_contextvar_hash(PyObject *var);

/* Call on_death(code), GIL held, just before any code object is destroyed,
 * until unwatched; several callbacks may watch at once. Returns 0 or -1 with a
 * Python exception set. */
int cprof_frames_watch_code(void (*on_death)(PyObject *code));
void cprof_frames_unwatch_code(void (*on_death)(PyObject *code));

/* _thread.lock's messages for a negative and a too large timeout, as each
 * version words them. */
#if PY_VERSION_HEX >= 0x030D0000
#define CPROF_LOCK_NEGATIVE_TIMEOUT "timeout value must be a non-negative number"
#else
#define CPROF_LOCK_NEGATIVE_TIMEOUT "timeout value must be positive"
#endif
#if PY_VERSION_HEX >= 0x030E0000
#define CPROF_LOCK_TIMEOUT_OVERFLOW "timestamp out of range for C PyTime_t"
#else
#define CPROF_LOCK_TIMEOUT_OVERFLOW "timestamp out of range for platform time_t"
#endif

/* _thread.RLock has locked() from 3.14 on (threading.Condition uses it), and
 * refuses arguments from 3.15 on (it ignored them before). */
#define CPROF_RLOCK_HAS_LOCKED (PY_VERSION_HEX >= 0x030E0000)
#define CPROF_RLOCK_TAKES_NO_ARGUMENTS (PY_VERSION_HEX >= 0x030F0000)

/* Where the call at unit lasti of code keeps its callable (leaf.h's
 * places), worked out from the code and kept the first time: 1 with *slot
 * and *other, 0 when that unit makes no call cprof names, or when the
 * places cannot be had (out of memory: the candidates are then dropped).
 * GIL held; runs no Python code, so a drain may call it. */
int cprof_frames_call_place(PyObject *code, int32_t lasti, unsigned *slot, unsigned *other);

/* The places of code as bytes (2 x units uint16: slot, other), for tests;
 * NULL with an exception set. */
PyObject *cprof_frames_call_places(PyObject *code);

/* The catalogue's key (leaf.h) of the C callable a live frame object's
 * frame is calling, as an int, or None: what a thread dump shows.
 * GIL held (the frame's thread is then stopped in C or waiting for it). */
PyObject *cprof_frames_callee(PyObject *frame);

/* Forget every code's places (the catalogue goes: cprof_leaf_clear). */
void cprof_frames_forget_places(void);

/* The program's exception in flight, set aside while cprof works where the
 * program may be raising (an allocator hook, a code object's death), and
 * put back as it was, whatever cprof's work left set. GIL held. */
typedef struct {
    PyObject *type, *value, *traceback;  /* before 3.12: PyErr_Fetch's three */
} cprof_raised_t;

static inline cprof_raised_t cprof_frames_set_aside(void)
{
    cprof_raised_t r = {NULL, NULL, NULL};
#if PY_VERSION_HEX >= 0x030C0000
    r.value = PyErr_GetRaisedException();
#else
    PyErr_Fetch(&r.type, &r.value, &r.traceback);
#endif
    return r;
}

static inline void cprof_frames_put_back(cprof_raised_t r)
{
    PyErr_Clear();
#if PY_VERSION_HEX >= 0x030C0000
    PyErr_SetRaisedException(r.value);
#else
    PyErr_Restore(r.type, r.value, r.traceback);
#endif
}

/* The source line of a captured frame. GIL held. */
int cprof_frames_line(PyObject *code, int32_t lasti);

#endif
