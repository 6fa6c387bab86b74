/* locks: recording Lock and RLock types (GIL held throughout). */
#include "collect/locks.h"

#include <limits.h>
#include <math.h>
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
    size_t drop = (size_t)skip < depth ? (size_t)skip : depth;
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

/* --- the lock ----------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    PyThread_type_lock lock;
    int kind;
    char locked;
    unsigned long owner;       /* the holder's thread ident, 0 when unlocked */
    unsigned long count;       /* RLock recursion */
    /* Waiters: how many, and the sum of the times from which each one's wait
     * is still to be charged to a holder (see locks.h). */
    Py_ssize_t waiters;
    int64_t wait_from_sum;
    int64_t last_release_ns;
    uint64_t releases;
    PyObject *created_code;    /* where the program made it (strong), or NULL */
    int created_line;
    PyObject *weakreflist;
} lock_t;

/* --- who waits on what (for thread dumps), GIL held ------------------------------------ */

typedef struct {
    unsigned long thread;
    lock_t *lock;              /* alive: the waiting thread's call holds it */
} waiting_t;

static waiting_t *waiting;
static size_t n_waiting, cap_waiting;

static void wait_begin(lock_t *self)
{
    if (cprof_grow((void **)&waiting, &cap_waiting, n_waiting, sizeof *waiting) == 0)
        waiting[n_waiting++] = (waiting_t){PyThread_get_thread_ident(), self};
}

static void wait_end(lock_t *self)
{
    unsigned long me = PyThread_get_thread_ident();
    for (size_t i = 0; i < n_waiting; i++) {
        if (waiting[i].thread == me && waiting[i].lock == self) {
            waiting[i] = waiting[--n_waiting];
            return;
        }
    }
}

/* Files whose frames do not count as where a lock was made (threading.py,
 * queue.py): set by cprof_locks_set_library_files, GIL held. */
static PyObject *library_files;

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
        PyObject *file = ((PyCodeObject *)frames[i].code)->co_filename;
        int library = library_files != NULL && PySequence_Contains(library_files, file) == 1;
        if (!library || i + 1 == n) {
            *line = cprof_frames_line(frames[i].code, frames[i].lasti);
            return Py_NewRef(frames[i].code);
        }
    }
    return NULL;
}

/* timeout in seconds (-1: forever) as microseconds for PyThread; -2 on error. */
static long long timeout_us(int blocking, double timeout)
{
    if (isnan(timeout)) {
        PyErr_SetString(PyExc_ValueError, "Invalid value NaN (not a number)");
        return -2;
    }
    if (!blocking && timeout != -1) {
        PyErr_SetString(PyExc_ValueError, "can't specify a timeout for a non-blocking call");
        return -2;
    }
    if (timeout < 0 && timeout != -1) {
        PyErr_SetString(PyExc_ValueError, CPROF_LOCK_NEGATIVE_TIMEOUT);
        return -2;
    }
    if (!blocking)
        return 0;
    if (timeout == -1)
        return -1;
    double us = ceil(timeout * 1e6);
    if (!(us < (double)PY_TIMEOUT_MAX)) {
        PyErr_SetString(PyExc_OverflowError, CPROF_LOCK_TIMEOUT_OVERFLOW);
        return -2;
    }
    return (long long)us;
}

/* Wait for the lock without the GIL, as _thread.lock does: signals interrupt
 * the wait, their handlers run, and the wait goes on (for what remains of
 * the timeout) unless one raised. PY_LOCK_INTR means an exception is set. */
static PyLockStatus wait_for(lock_t *self, long long us)
{
    int64_t deadline = us > 0 ? now_ns() + us * 1000 : 0;
    PyLockStatus r;
    for (;;) {
        Py_BEGIN_ALLOW_THREADS
        r = PyThread_acquire_lock_timed(self->lock, us, 1);
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

/* Acquire with the given timeout: 1 acquired, 0 not, -1 error. */
static int acquire(lock_t *self, long long us)
{
    if (PyThread_acquire_lock_timed(self->lock, 0, 0) == PY_LOCK_ACQUIRED)
        return 1;
    if (us == 0)
        return 0;
    int64_t start = now_ns();
    uint64_t releases = self->releases;
    self->waiters++;
    self->wait_from_sum += start;
    wait_begin(self);
    PyLockStatus r = wait_for(self, us);
    wait_end(self);
    int64_t end = now_ns();
    self->waiters--;
    self->wait_from_sum -= self->releases == releases ? start : self->last_release_ns;
    if (r == PY_LOCK_INTR)
        return -1;
    block_event(end - start, 0);
    return r == PY_LOCK_ACQUIRED;
}

static void charge_waiters(lock_t *self)
{
    if (self->waiters == 0) {
        self->releases++;
        return;
    }
    int64_t now = now_ns();
    int64_t delay = (int64_t)self->waiters * now - self->wait_from_sum;
    self->wait_from_sum = (int64_t)self->waiters * now;
    self->last_release_ns = now;
    self->releases++;
    if (self->kind == CPROF_LOCK_MUTEX)
        mutex_event(delay);
}

static int parse_acquire(PyObject *args, PyObject *kwargs, long long *us)
{
    static char *kwlist[] = {"blocking", "timeout", NULL};
    int blocking = 1;
    double timeout = -1;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|pd:acquire", kwlist, &blocking, &timeout))
        return -1;
    *us = timeout_us(blocking, timeout);
    return *us == -2 ? -1 : 0;
}

static PyObject *new_lock(PyTypeObject *type, int kind)
{
    lock_t *self = (lock_t *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->kind = kind;
    self->created_code = creation_site(&self->created_line);
    self->lock = PyThread_allocate_lock();
    if (self->lock == NULL) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    return (PyObject *)self;
}

static PyObject *Lock_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    if ((kwargs != NULL && PyDict_GET_SIZE(kwargs) > 0) || PyTuple_GET_SIZE(args) > 0) {
        PyErr_Format(PyExc_TypeError, "%s() takes no arguments", type->tp_name);
        return NULL;
    }
    return new_lock(type, CPROF_LOCK_MUTEX);
}

PyObject *cprof_locks_new_lock(int kind)
{
    return new_lock(&cprof_lock_type, kind);
}

static void Lock_dealloc(lock_t *self)
{
    Py_CLEAR(self->created_code);
    if (self->weakreflist != NULL)
        PyObject_ClearWeakRefs((PyObject *)self);
    if (self->lock != NULL) {
        if (self->locked)
            PyThread_release_lock(self->lock);
        PyThread_free_lock(self->lock);
    }
    Py_TYPE(self)->tp_free(self);
}

static PyObject *Lock_acquire(lock_t *self, PyObject *args, PyObject *kwargs)
{
    long long us;
    if (parse_acquire(args, kwargs, &us) < 0)
        return NULL;
    int r = acquire(self, us);
    if (r < 0)
        return NULL;
    if (r) {
        self->locked = 1;
        self->owner = PyThread_get_thread_ident();
    }
    return PyBool_FromLong(r);
}

static PyObject *Lock_enter(lock_t *self, PyObject *Py_UNUSED(ignored))
{
    if (acquire(self, -1) < 0)
        return NULL;
    self->locked = 1;
    self->owner = PyThread_get_thread_ident();
    Py_RETURN_TRUE;
}

static PyObject *Lock_release(lock_t *self, PyObject *Py_UNUSED(ignored))
{
    if (!self->locked) {
        PyErr_SetString(PyExc_RuntimeError, "release unlocked lock");
        return NULL;
    }
    charge_waiters(self);
    self->locked = 0;
    self->owner = 0;
    PyThread_release_lock(self->lock);
    Py_RETURN_NONE;
}

static PyObject *Lock_exit(lock_t *self, PyObject *Py_UNUSED(args))
{
    return Lock_release(self, NULL);
}

static PyObject *Lock_locked(lock_t *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(self->locked);
}

static PyObject *Lock_at_fork_reinit(lock_t *self, PyObject *Py_UNUSED(ignored))
{
    PyThread_type_lock fresh = PyThread_allocate_lock();
    if (fresh == NULL)
        return PyErr_NoMemory();
    /* The old lock may be held by a thread that does not exist in the child:
     * leak it, as CPython does (_PyThread_at_fork_reinit). */
    self->lock = fresh;
    self->locked = 0;
    self->owner = 0;
    self->count = 0;
    self->waiters = 0;
    self->wait_from_sum = 0;
    Py_RETURN_NONE;
}

static PyObject *Lock_repr(lock_t *self)
{
    return PyUnicode_FromFormat("<%s %s object at %p>", self->locked ? "locked" : "unlocked",
                                Py_TYPE(self)->tp_name, self);
}

/* (holder's thread ident or 0, (file, line, code qualname) where the
 * program made it or None, whether it is a Condition's waiter lock): what a
 * thread dump says of a lock. */
static PyObject *Lock_cprof_info(lock_t *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *waiter = self->kind == CPROF_LOCK_WAITER ? Py_True : Py_False;
    if (self->created_code == NULL)
        return Py_BuildValue("(kOO)", self->owner, Py_None, waiter);
    PyCodeObject *co = (PyCodeObject *)self->created_code;
    return Py_BuildValue("(k(OiO)O)", self->owner, co->co_filename, self->created_line,
                         co->co_qualname, waiter);
}

static PyMethodDef Lock_methods[] = {
    {"acquire", (PyCFunction)(void (*)(void))Lock_acquire, METH_VARARGS | METH_KEYWORDS,
     "acquire(blocking=True, timeout=-1) -> bool"},
    {"acquire_lock", (PyCFunction)(void (*)(void))Lock_acquire, METH_VARARGS | METH_KEYWORDS,
     "An obsolete synonym of acquire()."},
    {"release", (PyCFunction)Lock_release, METH_NOARGS, "Release the lock."},
    {"release_lock", (PyCFunction)Lock_release, METH_NOARGS,
     "An obsolete synonym of release()."},
    {"locked", (PyCFunction)Lock_locked, METH_NOARGS, "Whether the lock is held."},
    {"locked_lock", (PyCFunction)Lock_locked, METH_NOARGS, "An obsolete synonym of locked()."},
    {"_at_fork_reinit", (PyCFunction)Lock_at_fork_reinit, METH_NOARGS, NULL},
    {"_cprof_info", (PyCFunction)Lock_cprof_info, METH_NOARGS, NULL},
    {"__enter__", (PyCFunction)Lock_enter, METH_NOARGS, "Acquire the lock."},
    {"__exit__", (PyCFunction)Lock_exit, METH_VARARGS, "Release the lock."},
    {NULL, NULL, 0, NULL},
};

PyTypeObject cprof_lock_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    /* _thread.lock's name: repr and the pickling error read as before. */
    .tp_name = "_thread.lock",
    .tp_basicsize = sizeof(lock_t),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "A lock whose contention cprof records (it stands in for _thread.lock).",
    .tp_new = Lock_new,
    .tp_dealloc = (destructor)Lock_dealloc,
    .tp_repr = (reprfunc)Lock_repr,
    .tp_methods = Lock_methods,
    .tp_weaklistoffset = offsetof(lock_t, weakreflist),
};

/* --- the reentrant lock --------------------------------------------------------------- */

static PyObject *RLock_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
#if CPROF_RLOCK_TAKES_NO_ARGUMENTS
    if (PyTuple_GET_SIZE(args) != 0) {
        PyErr_SetString(PyExc_TypeError, "RLock() takes no positional arguments");
        return NULL;
    }
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0) {
        PyErr_SetString(PyExc_TypeError, "RLock() takes no keyword arguments");
        return NULL;
    }
#else
    (void)args, (void)kwargs;
#endif
    return new_lock(type, CPROF_LOCK_MUTEX);
}

/* 1 acquired, 0 not, -1 error. */
static int racquire(lock_t *self, long long us)
{
    unsigned long me = PyThread_get_thread_ident();
    if (self->count > 0 && self->owner == me) {
        if (self->count == ULONG_MAX) {
            PyErr_SetString(PyExc_OverflowError, "Internal lock count overflowed");
            return -1;
        }
        self->count++;
        return 1;
    }
    int r = acquire(self, us);
    if (r == 1) {
        self->owner = me;
        self->count = 1;
        self->locked = 1;
    }
    return r;
}

static PyObject *RLock_acquire(lock_t *self, PyObject *args, PyObject *kwargs)
{
    long long us;
    if (parse_acquire(args, kwargs, &us) < 0)
        return NULL;
    int r = racquire(self, us);
    return r < 0 ? NULL : PyBool_FromLong(r);
}

static PyObject *RLock_enter(lock_t *self, PyObject *Py_UNUSED(ignored))
{
    return racquire(self, -1) < 0 ? NULL : Py_NewRef(Py_True);
}

static void runlock(lock_t *self)
{
    charge_waiters(self);
    self->owner = 0;
    self->count = 0;
    self->locked = 0;
    PyThread_release_lock(self->lock);
}

static PyObject *RLock_release(lock_t *self, PyObject *Py_UNUSED(ignored))
{
    if (self->count == 0 || self->owner != PyThread_get_thread_ident()) {
        PyErr_SetString(PyExc_RuntimeError, "cannot release un-acquired lock");
        return NULL;
    }
    if (self->count > 1)
        self->count--;
    else
        runlock(self);
    Py_RETURN_NONE;
}

static PyObject *RLock_exit(lock_t *self, PyObject *Py_UNUSED(args))
{
    return RLock_release(self, NULL);
}

static PyObject *RLock_is_owned(lock_t *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(self->count > 0 && self->owner == PyThread_get_thread_ident());
}

#if CPROF_RLOCK_HAS_LOCKED
static PyObject *RLock_locked(lock_t *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(self->count > 0);
}
#endif

static PyObject *RLock_recursion_count(lock_t *self, PyObject *Py_UNUSED(ignored))
{
    unsigned long me = PyThread_get_thread_ident();
    return PyLong_FromUnsignedLong(self->owner == me ? self->count : 0);
}

/* Condition.wait: give the lock up entirely, remembering the state. */
static PyObject *RLock_release_save(lock_t *self, PyObject *Py_UNUSED(ignored))
{
    if (self->count == 0) {
        PyErr_SetString(PyExc_RuntimeError, "cannot release un-acquired lock");
        return NULL;
    }
    PyObject *state = Py_BuildValue("(kk)", self->count, self->owner);
    if (state != NULL)
        runlock(self);
    return state;
}

static PyObject *RLock_acquire_restore(lock_t *self, PyObject *state)
{
    unsigned long count, owner;
    if (!PyArg_ParseTuple(state, "kk:_acquire_restore", &count, &owner))
        return NULL;
    if (acquire(self, -1) < 0)
        return NULL;
    self->owner = owner;
    self->count = count;
    self->locked = 1;
    Py_RETURN_NONE;
}

static PyObject *RLock_repr(lock_t *self)
{
    return PyUnicode_FromFormat("<%s %s object owner=%lu count=%lu at %p>",
                                self->count ? "locked" : "unlocked", Py_TYPE(self)->tp_name,
                                self->owner, self->count, self);
}

static PyMethodDef RLock_methods[] = {
    {"acquire", (PyCFunction)(void (*)(void))RLock_acquire, METH_VARARGS | METH_KEYWORDS,
     "acquire(blocking=True, timeout=-1) -> bool"},
    {"release", (PyCFunction)RLock_release, METH_NOARGS, "Release the lock once."},
#if CPROF_RLOCK_HAS_LOCKED
    {"locked", (PyCFunction)RLock_locked, METH_NOARGS, "Whether the lock is held."},
#endif
    {"_is_owned", (PyCFunction)RLock_is_owned, METH_NOARGS, NULL},
    {"_recursion_count", (PyCFunction)RLock_recursion_count, METH_NOARGS, NULL},
    {"_release_save", (PyCFunction)RLock_release_save, METH_NOARGS, NULL},
    {"_acquire_restore", (PyCFunction)RLock_acquire_restore, METH_O, NULL},
    {"_at_fork_reinit", (PyCFunction)Lock_at_fork_reinit, METH_NOARGS, NULL},
    {"_cprof_info", (PyCFunction)Lock_cprof_info, METH_NOARGS, NULL},
    {"__enter__", (PyCFunction)RLock_enter, METH_NOARGS, "Acquire the lock."},
    {"__exit__", (PyCFunction)RLock_exit, METH_VARARGS, "Release the lock."},
    {NULL, NULL, 0, NULL},
};

PyTypeObject cprof_rlock_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_thread.RLock",
    .tp_basicsize = sizeof(lock_t),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "A reentrant lock whose contention cprof records (it stands in for "
              "_thread.RLock).",
    .tp_new = RLock_new,
    .tp_dealloc = (destructor)Lock_dealloc,
    .tp_repr = (reprfunc)RLock_repr,
    .tp_methods = RLock_methods,
    .tp_weaklistoffset = offsetof(lock_t, weakreflist),
};

PyObject *cprof_locks_waiting(void)
{
    PyObject *list = PyList_New((Py_ssize_t)n_waiting);
    for (size_t i = 0; list != NULL && i < n_waiting; i++) {
        PyObject *row = Py_BuildValue("(kO)", waiting[i].thread, (PyObject *)waiting[i].lock);
        if (row == NULL)
            Py_CLEAR(list);
        else
            PyList_SET_ITEM(list, (Py_ssize_t)i, row);
    }
    return list;
}

void cprof_locks_set_library_files(PyObject *files)
{
    Py_XSETREF(library_files, Py_XNewRef(files));
}

int cprof_locks_init(void)
{
    if (PyType_Ready(&cprof_lock_type) < 0 || PyType_Ready(&cprof_rlock_type) < 0)
        return -1;
    return 0;
}
