/* native: the C stack of the interrupted thread, through libunwind, with each
 * call of the interpreter loop replaced by the Python frames it was running.
 */
#ifndef CPROF_NATIVE_H
#define CPROF_NATIVE_H

#include "collect/frames.h"  /* first: it includes Python.h */

#include <stddef.h>
#include <stdint.h>

/* Most C frames one sample unwinds (the rest are cut, as Python's are). */
#define CPROF_NATIVE_MAX_DEPTH 512

/* Learn where _PyEval_EvalFrameDefault's code lies and set libunwind's
 * per-thread cache. GIL held. Returns 0, or -1 with a Python exception set. */
int cprof_native_init(void);

/* One C frame: where it executes (the interrupted instruction for the leaf,
 * each caller's call instruction, return address - 1, for the others) and
 * its stack pointer, the low end of its stack frame. */
typedef struct {
    uintptr_t pc;
    uintptr_t sp;
} cprof_cframe_t;

/* The C stack interrupted at ucontext (a signal handler's third argument),
 * leaf first. Signal-safe as far as libunwind's local unwinding with a
 * per-thread cache is. */
size_t cprof_native_unwind_sigsafe(void *ucontext, cprof_cframe_t *frames, size_t max);

/* Merge C frames c[0..n) and a marked Python capture (frames.h:
 * cprof_frames_capture_marked_sigsafe) into out, leaf first: the C frame of
 * each call of the interpreter loop gives way to the Python frames of that
 * call; Python frames left over (the C stack was cut) go at the root.
 * Returns how many frames were stored (at most max); *total says how many
 * there were. Signal-safe.
 *
 * Which C frame runs a call: the one whose stack frame holds the call's entry
 * frame (3.12+: its address comes with the call's mark), whatever the C
 * function is called and however the compiler split it (Debian's 3.14 and
 * 3.15 run most of the loop outside _PyEval_EvalFrameDefault's symbol); on
 * 3.11, the C frame executing inside _PyEval_EvalFrameDefault's symbol. */
size_t cprof_native_merge_sigsafe(const cprof_cframe_t *c, size_t n, const cprof_frame_t *py,
                                  size_t n_py, cprof_frame_t *out, size_t max, size_t *total);

#endif
