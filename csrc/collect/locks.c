/* locks: the recording locks' engine and the tables of their events (GIL
 * held throughout). */
#include "collect/locks.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "collect/frames.h"
#include "collect/table.h"

/* --- recording ------------------------------------------------------------------- */

/* All protected by the GIL. */
static struct {
    int64_t mutex_fraction, block_rate;
    int tables;                 /* stacks and totals are set up */
    cprof_stacks_t stacks;
    cprof_lock_totals_t *mutex, *block;  /* per stack */
    size_t cap;
    uint64_t rng;
} R;

#define MAX_DEPTH 128

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static double uniform(void)
{
    if (R.rng == 0)
        R.rng = cprof_table_mix((uint64_t)now_ns());
    uint64_t x = R.rng;  /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    R.rng = x;
    return (double)((x * 0x2545f4914f6cdd1dULL) >> 11) * 0x1.0p-53;
}

static void on_code_death(PyObject *code)
{
    if (R.tables)
        cprof_stacks_forget_code(&R.stacks, code);
}

/* The calling thread's stack without its skip innermost frames, interned:
 * its index, or -1 (out of memory: the event is dropped). */
static long current_stack(int skip)
{
    _Alignas(cprof_record_t) unsigned char buf[sizeof(cprof_record_t) +
                                                MAX_DEPTH * sizeof(cprof_frame_t)];
    cprof_record_t *rec = (cprof_record_t *)buf;
    memset(rec, 0, sizeof *rec);
    PyThreadState *ts = PyThreadState_Get();
    size_t total = 0;
    void *coroutine;
    size_t depth = cprof_frames_capture_sigsafe(ts, rec->frames, MAX_DEPTH, &total, &coroutine);
    /* skip Python frames, with the C callables they call (frames.h); and
     * the C callable the innermost frame left calls, the wait's own lock
     * call (lock.acquire() and `with lock:` give the same stack). */
    size_t drop = 0;
    for (int python = 0; drop < depth && python < skip; drop++)
        python += !(rec->frames[drop].flags & CPROF_FRAME_C_CALL);
    while (drop < depth && (rec->frames[drop].flags & CPROF_FRAME_C_CALL))
        drop++;
    memmove(rec->frames, rec->frames + drop, (depth - drop) * sizeof rec->frames[0]);
    rec->depth = (uint32_t)(depth - drop);
    rec->total_depth = (uint32_t)(total - drop);
    long stack = cprof_stacks_intern(&R.stacks, rec);
    if (stack < 0 || (size_t)stack < R.cap)
        return stack;
    size_t cap = R.cap ? R.cap * 2 : 256;
    while (cap <= (size_t)stack)
        cap *= 2;
    cprof_lock_totals_t *m = realloc(R.mutex, cap * sizeof *m);
    if (m != NULL)
        R.mutex = m;
    cprof_lock_totals_t *b = m == NULL ? NULL : realloc(R.block, cap * sizeof *b);
    if (b == NULL)
        return -1;
    R.block = b;
    memset(R.mutex + R.cap, 0, (cap - R.cap) * sizeof *m);
    memset(R.block + R.cap, 0, (cap - R.cap) * sizeof *b);
    R.cap = cap;
    return stack;
}

static void record(cprof_lock_totals_t **totals, double contentions, double delay_ns, int skip)
{
    long stack = current_stack(skip);
    if (stack < 0)
        return;
    (*totals)[stack].contentions += contentions;
    (*totals)[stack].delay_ns += delay_ns;
}

/* A wait of delay_ns: kept whole when at least the rate, else with
 * probability delay / rate and then counted rate / delay times (Go's rule,
 * upscaled). */
static void block_event(int64_t delay_ns, int skip)
{
    int64_t rate = R.block_rate;
    if (rate <= 0 || !R.tables)
        return;
    if (delay_ns >= rate) {
        record(&R.block, 1, (double)delay_ns, skip);
    } else if (delay_ns > 0 && uniform() * (double)rate < (double)delay_ns) {
        record(&R.block, (double)rate / (double)delay_ns, (double)rate, skip);
    }
}

void cprof_locks_block_event(int64_t delay_ns, int skip)
{
    block_event(delay_ns, skip);
}

/* One in mutex_fraction contended releases, counted mutex_fraction times. */
static void mutex_event(int64_t delay_ns)
{
    int64_t n = R.mutex_fraction;
    if (n <= 0 || !R.tables || delay_ns <= 0)
        return;
    if (n == 1 || uniform() * (double)n < 1.0)
        record(&R.mutex, (double)n, (double)delay_ns * (double)n, 0);
}

int cprof_locks_configure(int64_t mutex_fraction, int64_t block_rate)
{
    if ((mutex_fraction > 0 || block_rate > 0) && !R.tables) {
        if (cprof_stacks_init(&R.stacks, MAX_DEPTH) < 0)
            return -1;
        if (cprof_frames_watch_code(on_code_death) < 0) {
            cprof_stacks_clear(&R.stacks);
            return -1;
        }
        R.tables = 1;
    }
    R.mutex_fraction = mutex_fraction;
    R.block_rate = block_rate;
    return 0;
}

int cprof_locks_visit(int (*visit)(const cprof_stacks_t *, const cprof_lock_totals_t *,
                                   const cprof_lock_totals_t *, size_t, void *),
                      void *arg)
{
    if (!R.tables)
        return 0;
    return visit(&R.stacks, R.mutex, R.block, R.stacks.n_stacks < R.cap ? R.stacks.n_stacks
                                                                          : R.cap, arg);
}

void cprof_locks_clear(void)
{
    if (!R.tables)
        return;
    cprof_frames_unwatch_code(on_code_death);
    cprof_stacks_clear(&R.stacks);
    free(R.mutex);
    free(R.block);
    int64_t fraction = R.mutex_fraction, rate = R.block_rate;
    memset(&R, 0, sizeof R);
    R.mutex_fraction = fraction;
    R.block_rate = rate;
}

/* --- who waits on what (for thread dumps) ------------------------------------------- */

static cprof_lock_waiter_t *waiting;
static size_t n_waiting, cap_waiting;

static void wait_begin(cprof_lock_t *l)
{
    if (cprof_grow((void **)&waiting, &cap_waiting, n_waiting, sizeof *waiting) == 0)
        waiting[n_waiting++] = (cprof_lock_waiter_t){PyThread_get_thread_ident(), l};
}

static void wait_end(cprof_lock_t *l)
{
    unsigned long me = PyThread_get_thread_ident();
    for (size_t i = 0; i < n_waiting; i++) {
        if (waiting[i].thread == me && waiting[i].lock == l) {
            waiting[i] = waiting[--n_waiting];
            return;
        }
    }
}

size_t cprof_locks_waiters(const cprof_lock_waiter_t **out)
{
    *out = waiting;
    return n_waiting;
}

/* --- the lock ----------------------------------------------------------------------- */

/* Files whose frames do not count as where a lock was made (threading.py,
 * queue.py): set by cprof_locks_set_library_files. */
static PyObject *library_files;

void cprof_locks_set_library_files(PyObject *files)
{
    Py_XSETREF(library_files, Py_XNewRef(files));
}

/* The innermost frame of the program (outside library_files) that is making
 * a lock: its code (new reference) and line, or NULL. */
static PyObject *creation_site(int *line)
{
    cprof_frame_t frames[8];
    size_t total;
    void *coroutine;
    PyThreadState *ts = PyThreadState_Get();
    size_t n = cprof_frames_capture_sigsafe(ts, frames, 8, &total, &coroutine);
    for (size_t i = 0; i < n; i++) {
        if (frames[i].flags & CPROF_FRAME_C_CALL)
            continue;  /* a C callable the frame after it calls */
        PyObject *file = ((PyCodeObject *)frames[i].code)->co_filename;
        int library = library_files != NULL && PySequence_Contains(library_files, file) == 1;
        if (!library || i + 1 == n) {
            *line = cprof_frames_line(frames[i].code, frames[i].lasti);
            return Py_NewRef(frames[i].code);
        }
    }
    return NULL;
}

int cprof_locks_init_lock(cprof_lock_t *l, int kind, PyObject *object)
{
    l->object = object;
    l->kind = kind;
    l->created_code = creation_site(&l->created_line);
    l->lock = PyThread_allocate_lock();
    return l->lock != NULL ? 0 : -1;
}

void cprof_locks_free_lock(cprof_lock_t *l)
{
    Py_CLEAR(l->created_code);
    if (l->lock != NULL) {
        if (l->locked)
            PyThread_release_lock(l->lock);
        PyThread_free_lock(l->lock);
        l->lock = NULL;
    }
}

/* Wait for the lock without the GIL, as _thread.lock does: signals interrupt
 * the wait, their handlers run, and the wait goes on (for what remains of
 * the timeout) unless one raised. PY_LOCK_INTR means an exception is set. */
static PyLockStatus wait_for(cprof_lock_t *l, long long us)
{
    int64_t deadline = us > 0 ? now_ns() + us * 1000 : 0;
    PyLockStatus r;
    for (;;) {
        Py_BEGIN_ALLOW_THREADS
        r = PyThread_acquire_lock_timed(l->lock, us, 1);
        Py_END_ALLOW_THREADS
        if (r != PY_LOCK_INTR)
            return r;
        if (Py_MakePendingCalls() < 0)
            return PY_LOCK_INTR;
        if (us > 0) {
            int64_t left = deadline - now_ns();
            if (left <= 0)
                return PY_LOCK_FAILURE;
            us = (left + 999) / 1000;
        }
    }
}

/* Acquire the underlying lock: 1 acquired, 0 not, -1 error. */
static int acquire(cprof_lock_t *l, long long us)
{
    if (PyThread_acquire_lock_timed(l->lock, 0, 0) == PY_LOCK_ACQUIRED)
        return 1;
    if (us == 0)
        return 0;
    int64_t start = now_ns();
    uint64_t releases = l->releases;
    l->waiters++;
    l->wait_from_sum += start;
    wait_begin(l);
    PyLockStatus r = wait_for(l, us);
    wait_end(l);
    int64_t end = now_ns();
    l->waiters--;
    l->wait_from_sum -= l->releases == releases ? start : l->last_release_ns;
    if (r == PY_LOCK_INTR)
        return -1;
    block_event(end - start, 0);
    return r == PY_LOCK_ACQUIRED;
}

int cprof_locks_acquire(cprof_lock_t *l, long long us)
{
    int r = acquire(l, us);
    if (r == 1) {
        l->locked = 1;
        l->owner = PyThread_get_thread_ident();
    }
    return r;
}

static void charge_waiters(cprof_lock_t *l)
{
    if (l->waiters == 0) {
        l->releases++;
        return;
    }
    int64_t now = now_ns();
    int64_t delay = (int64_t)l->waiters * now - l->wait_from_sum;
    l->wait_from_sum = (int64_t)l->waiters * now;
    l->last_release_ns = now;
    l->releases++;
    if (l->kind == CPROF_LOCK_MUTEX)
        mutex_event(delay);
}

void cprof_locks_release(cprof_lock_t *l)
{
    charge_waiters(l);
    l->locked = 0;
    l->owner = 0;
    l->count = 0;
    PyThread_release_lock(l->lock);
}

int cprof_locks_reinit_lock(cprof_lock_t *l)
{
    PyThread_type_lock fresh = PyThread_allocate_lock();
    if (fresh == NULL)
        return -1;
    l->lock = fresh;
    l->locked = 0;
    l->owner = 0;
    l->count = 0;
    l->waiters = 0;
    l->wait_from_sum = 0;
    return 0;
}
