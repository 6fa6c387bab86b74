/* locks: threading's locks with contention and blocking recorded, as Go's
 * mutex and block profiles.
 *
 * cprof.locks puts recording locks (the types Lock and RLock of
 * module/locks.c, each holding a cprof_lock_t) in place of threading.Lock,
 * RLock and the waiter locks of Condition while a mutex or block profile is
 * on. This is their engine: acquiring, waiting and releasing, and the tables
 * the waits are recorded in. An uncontended acquire is one try of the
 * underlying lock; only an acquire that has to wait reads the clock.
 *
 * A waiter's wait is a block event at its own stack. The delay waiters
 * suffer while a holder has the lock is a mutex event at the holder's stack
 * when it releases the lock (as Go records at Unlock): each release charges
 * the time every current waiter waited since it began or since the previous
 * release, whichever is later.
 *
 * Everything runs with the GIL held, which also protects the tables and
 * every cprof_lock_t.
 */
#ifndef CPROF_LOCKS_H
#define CPROF_LOCKS_H

#include <Python.h>
#include <stdint.h>

#include "collect/stacks.h"

/* Lock kinds: a mutex reports to both profiles; a Condition's waiter lock,
 * released by the notifying thread, is a wait only (block profile). */
enum { CPROF_LOCK_MUTEX = 0, CPROF_LOCK_WAITER = 1 };

/* One recording lock. */
typedef struct {
    PyObject *object;          /* the Python lock holding this state (borrowed) */
    PyThread_type_lock lock;
    int kind;
    char locked;
    unsigned long owner;       /* the holder's thread ident, 0 when unlocked */
    unsigned long count;       /* RLock recursion */
    /* Waiters: how many, and the sum of the times from which each one's wait
     * is still to be charged to a holder. */
    Py_ssize_t waiters;
    int64_t wait_from_sum;
    int64_t last_release_ns;
    uint64_t releases;
    PyObject *created_code;    /* where the program made it (strong), or NULL */
    int created_line;
} cprof_lock_t;

/* Set up a new lock of kind (CPROF_LOCK_*) inside object, noting where the
 * program made it. 0, or -1 when out of memory (no exception set); either
 * way cprof_locks_free_lock is owed. */
int cprof_locks_init_lock(cprof_lock_t *l, int kind, PyObject *object);
void cprof_locks_free_lock(cprof_lock_t *l);

/* Acquire l, waiting at most us microseconds (-1: for ever, 0: one try) with
 * the GIL released and signal handlers run meanwhile, as _thread.lock does.
 * On success l is locked by the calling thread (count is the caller's). A
 * wait is a block event. 1 acquired, 0 not, -1 a signal handler raised. */
int cprof_locks_acquire(cprof_lock_t *l, long long us);

/* Release l, held (the caller checked), charging its waiters' delay to the
 * calling thread's stack (a mutex event). */
void cprof_locks_release(cprof_lock_t *l);

/* In a child after fork: a fresh underlying lock, unlocked and unwaited (the
 * old one may be held by a thread that does not exist here: it is leaked, as
 * CPython does). 0, or -1 when out of memory. */
int cprof_locks_reinit_lock(cprof_lock_t *l);

/* The threads now waiting on a recording lock, as n pairs at *out; valid
 * until a recording lock is next acquired. */
typedef struct {
    unsigned long thread;
    cprof_lock_t *lock;        /* alive: the waiting thread's call holds it */
} cprof_lock_waiter_t;

size_t cprof_locks_waiters(const cprof_lock_waiter_t **out);

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

/* Frames in these files (a frozenset of file names, or NULL) are not where a
 * lock is said to be made: the lock is the program's frame's that called in. */
void cprof_locks_set_library_files(PyObject *files);

#endif
