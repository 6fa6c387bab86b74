/* locks: threading's locks with contention and blocking recorded, as Go's
 * mutex and block profiles.
 *
 * cprof.locks puts these types in place of threading.Lock, RLock and the
 * waiter locks of Condition while a mutex or block profile is on. They keep
 * _thread.lock's and _thread.RLock's behaviour (acquire with blocking and
 * timeout, interruptible by signals; release; locked; _at_fork_reinit; the
 * RLock methods Condition uses; repr; no pickling). An uncontended acquire
 * is one try of the underlying lock; only an acquire that has to wait reads
 * the clock.
 *
 * A waiter's wait is a block event at its own stack. The delay waiters
 * suffer while a holder has the lock is a mutex event at the holder's stack
 * when it releases the lock (as Go records at Unlock): each release charges
 * the time every current waiter waited since it began or since the previous
 * release, whichever is later.
 *
 * Everything runs with the GIL held, which also protects the tables.
 */
#ifndef CPROF_LOCKS_H
#define CPROF_LOCKS_H

#include <Python.h>
#include <stdint.h>

#include "collect/stacks.h"

/* Lock kinds: a mutex reports to both profiles; a Condition's waiter lock,
 * released by the notifying thread, is a wait only (block profile). */
enum { CPROF_LOCK_MUTEX = 0, CPROF_LOCK_WAITER = 1 };

/* The types, ready after cprof_locks_init. */
extern PyTypeObject cprof_lock_type;
extern PyTypeObject cprof_rlock_type;

/* Ready the types. 0, or -1 with a Python exception set. */
int cprof_locks_init(void);

/* A new lock of kind (CPROF_LOCK_*), or NULL with an exception set. */
PyObject *cprof_locks_new_lock(int kind);

/* Set the sampling: record 1 in mutex_fraction contended releases (0: none),
 * and block events of at least block_rate ns, shorter ones with probability
 * duration / rate (0: none). Tables start when either turns on and are kept
 * until cprof_locks_clear. 0, or -1 with an exception set. */
int cprof_locks_configure(int64_t mutex_fraction, int64_t block_rate);

/* A wait of delay_ns that happened elsewhere (asyncio), for the block
 * profile at the calling thread's stack less its skip innermost frames. */
void cprof_locks_block_event(int64_t delay_ns, int skip);

typedef struct {
    double contentions, delay_ns;  /* upscaled for the sampling */
} cprof_lock_totals_t;

/* The recorded events, per interned stack: visit(stacks, mutex[], block[],
 * n_stacks, arg). Returns what visit returns, or 0 with no tables. */
int cprof_locks_visit(int (*visit)(const cprof_stacks_t *, const cprof_lock_totals_t *,
                                   const cprof_lock_totals_t *, size_t, void *),
                      void *arg);

/* Forget every recorded event. */
void cprof_locks_clear(void);

/* [(thread ident, lock)] for every thread now waiting on a recording lock
 * (new list), or NULL with an exception set. */
PyObject *cprof_locks_waiting(void);

/* Frames in these files (a frozenset of file names, or NULL) are not where a
 * lock is said to be made: the lock is the program's frame's that called in. */
void cprof_locks_set_library_files(PyObject *files);

#endif
