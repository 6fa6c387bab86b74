/* sampler: the CPU and wall-clock sampler.
 *
 * In cpu mode every thread of the process gets its own POSIX timer on its
 * CPU clock that sends SIGPROF to that thread, re-armed by the handler with a
 * jittered interval. In wall mode the helper thread ticks instead and signals
 * only the threads that ran since its last look; the others count repeats of
 * their latest stack (sampler.c, "wall mode"). The handler records the
 * interrupted thread's Python stack into a lock-free ring buffer. The helper
 * thread finds new and vanished threads in /proc/self/task and, holding the
 * GIL now and then, drains the buffer into cprof_stacks.
 *
 * Control functions need the GIL; the handler follows the rules in
 * docs/ARCHITECTURE.md.
 */
#ifndef CPROF_SAMPLER_H
#define CPROF_SAMPLER_H

#include <Python.h>
#include <stdint.h>

#include "common/errors.h"
#include "collect/stacks.h"

typedef enum { CPROF_MODE_CPU = 0, CPROF_MODE_WALL = 1 } cprof_mode_t;

/* The object cprof.labels() stores in its ContextVar; the handler reads id. */
typedef struct {
    PyObject_HEAD
    uint64_t id;
} cprof_labelset_object_t;

typedef struct {
    cprof_mode_t mode;
    int64_t period_ns;
    size_t max_depth;
    int native;                 /* C frames too, through libunwind (native.c) */
    size_t buffer_samples;      /* ring buffer capacity */
    int64_t poll_ns;            /* how often threads are looked for */
    PyObject *label_var;        /* the ContextVar of cprof.labels, or NULL */
    PyTypeObject *labelset_type;
    PyObject *hook;             /* called (GIL held) after each drain, or NULL */
    int resume;                 /* a cut: each thread's time counts from the previous
                                   profile's last reading of its clock, not from now */
} cprof_sampler_config_t;

typedef struct {
    uint64_t samples;           /* records taken by handlers */
    uint64_t lost;              /* dropped: the buffer was full */
    uint64_t threads_seen;      /* threads that got a timer */
    uint64_t timer_errors;      /* threads that could not get one */
    uint64_t drains;
    int64_t taken_over_after_ns; /* SIGPROF's handler was replaced this long after start, or -1 */
    int handlers_stuck;         /* a handler never finished: its memory was left allocated */
} cprof_sampler_stats_t;

/* Start sampling every thread. Refuses (CPROF_E_BUSY) while a profile runs and
 * (CPROF_E_SIGNAL) when SIGPROF already has a handler that is not cprof's.
 * GIL held. Returns 0 or a negative code with err filled. */
int cprof_sampler_start(const cprof_sampler_config_t *cfg, cprof_error_t *err);

/* Stop: disarm every timer, discard pending SIGPROFs, restore the previous
 * disposition, wait until no handler is inside (freeing nothing a handler
 * still uses), drain what is left into *out (which the caller then owns and
 * clears) and add the lost samples as <lost>. When SIGPROF's handler was
 * replaced by someone else's meanwhile (also checked by the helper thread and
 * every drain), sampling stopped then: the time after is <sampling stopped>,
 * stats say when, and the disposition stays theirs. GIL held. */
int cprof_sampler_stop(cprof_stacks_t *out, cprof_sampler_stats_t *stats,
                       cprof_error_t *err);

/* Drain the buffer into the running profile's tables now, then call the
 * hook if call_hook; samples of the calling thread meanwhile are <cprof>'s.
 * GIL held. */
int cprof_sampler_drain(int call_hook);

/* Call visit(coroutine, arg) for each coroutine identity in the samples
 * aggregated since *cursor, then advance *cursor. GIL held. Returns 0, or
 * what visit returned when it was not 0. */
int cprof_sampler_new_coroutines(size_t *cursor, int (*visit)(uintptr_t, void *), void *arg);

/* Called by a thread as it starts and as it ends (threading's bootstrap, GIL
 * held): its timer starts at once, and the time after its last sample is
 * counted, however short the thread. No-ops when no profile runs. */
void cprof_sampler_thread_started(void);
void cprof_sampler_thread_exiting(void);

/* Samples taken so far by the running profile (0 when none runs). */
uint64_t cprof_sampler_sample_count(void);

#ifdef CPROF_BENCH_HOOKS
/* Time, in nanoseconds, of what the handler does for one sample of the calling
 * thread (timer bookkeeping aside), averaged over n runs against a scratch
 * buffer: a benchmark of the signal path, built only with CPROF_BENCH=1
 * (setup.py). GIL held; no profile may run. */
double cprof_sampler_measure_record_ns(size_t n, size_t max_depth, PyObject *label_var,
                                       int native);
#endif

/* Whether a profile is running in this process. */
int cprof_sampler_running(void);

/* os.fork's before and after-in-parent hooks (GIL held): while a fork is on
 * its way the helper thread does not take the GIL, whose thread state it would
 * allocate (an allocator without fork handlers, ASan's, then hangs the child).
 * before_fork waits, GIL released, for a helper already taking it. */
void cprof_sampler_before_fork(void);
void cprof_sampler_after_fork_parent(void);

/* In a child after fork (GIL held): forget the parent's profile without
 * touching its threads, so that the child can start its own. */
void cprof_sampler_after_fork_child(void);

#endif
