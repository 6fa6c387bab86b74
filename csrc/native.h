/* native: the C stack of the interrupted thread, through libunwind, with each
 * call of the interpreter loop replaced by the Python frames it was running.
 */
#ifndef CPROF_NATIVE_H
#define CPROF_NATIVE_H

#include "frames.h"  /* first: it includes Python.h */

#include <stddef.h>
#include <stdint.h>

/* Most C frames one sample unwinds (the rest are cut, as Python's are). */
#define CPROF_NATIVE_MAX_DEPTH 512

/* Learn where _PyEval_EvalFrameDefault's code lies and set libunwind's
 * per-thread cache. GIL held. Returns 0, or -1 with a Python exception set. */
int cprof_native_init(void);

/* The return addresses of the C stack interrupted at ucontext (a signal
 * handler's third argument), leaf first: the interrupted instruction, then
 * each caller's call instruction (return address - 1). Signal-safe as far as
 * libunwind's local unwinding with a per-thread cache is. */
size_t cprof_native_unwind_sigsafe(void *ucontext, uintptr_t *pcs, size_t max);

/* Merge C frames pcs[0..n) and a marked Python capture (frames.h:
 * cprof_frames_capture_marked_sigsafe) into out, leaf first: each C frame in
 * the interpreter loop gives way to the Python frames of its call; Python
 * frames left over (the C stack was cut) go at the root. Returns how many
 * frames were stored (at most max); *total says how many there were.
 * Signal-safe. */
size_t cprof_native_merge_sigsafe(const uintptr_t *pcs, size_t n, const cprof_frame_t *py,
                                  size_t n_py, cprof_frame_t *out, size_t max, size_t *total);

#endif
