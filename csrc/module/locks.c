/* locks: Lock and RLock, the recording stand-ins for _thread.lock and
 * _thread.RLock over the engine of collect/locks.h, and the lock profiles'
 * functions.
 *
 * They keep _thread.lock's and _thread.RLock's behaviour (acquire with
 * blocking and timeout, interruptible by signals; release; locked;
 * _at_fork_reinit; the RLock methods Condition uses; repr; no pickling).
 */
#include "module/module.h"

#include <limits.h>
#include <math.h>

#include "collect/frames.h"
#include "collect/locks.h"

typedef struct {
    PyObject_HEAD
    cprof_lock_t l;
    PyObject *weakreflist;
} lock_t;

static PyTypeObject Lock_Type, RLock_Type;

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
    if (cprof_locks_init_lock(&self->l, kind, (PyObject *)self) < 0) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    return (PyObject *)self;
}

static void Lock_dealloc(lock_t *self)
{
    cprof_locks_free_lock(&self->l);
    if (self->weakreflist != NULL)
        PyObject_ClearWeakRefs((PyObject *)self);
    Py_TYPE(self)->tp_free(self);
}

static PyObject *Lock_at_fork_reinit(lock_t *self, PyObject *Py_UNUSED(ignored))
{
    if (cprof_locks_reinit_lock(&self->l) < 0)
        return PyErr_NoMemory();
    Py_RETURN_NONE;
}

/* (holder's thread ident or 0, (file, line, code qualname) where the
 * program made it or None, whether it is a Condition's waiter lock): what a
 * thread dump says of a lock. */
static PyObject *Lock_cprof_info(lock_t *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *waiter = self->l.kind == CPROF_LOCK_WAITER ? Py_True : Py_False;
    if (self->l.created_code == NULL)
        return Py_BuildValue("(kOO)", self->l.owner, Py_None, waiter);
    PyCodeObject *co = (PyCodeObject *)self->l.created_code;
    return Py_BuildValue("(k(OiO)O)", self->l.owner, co->co_filename, self->l.created_line,
                         co->co_qualname, waiter);
}

/* --- the lock ----------------------------------------------------------------------- */

static PyObject *Lock_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    if ((kwargs != NULL && PyDict_GET_SIZE(kwargs) > 0) || PyTuple_GET_SIZE(args) > 0) {
        PyErr_Format(PyExc_TypeError, "%s() takes no arguments", type->tp_name);
        return NULL;
    }
    return new_lock(type, CPROF_LOCK_MUTEX);
}

static PyObject *Lock_acquire(lock_t *self, PyObject *args, PyObject *kwargs)
{
    long long us;
    if (parse_acquire(args, kwargs, &us) < 0)
        return NULL;
    int r = cprof_locks_acquire(&self->l, us);
    return r < 0 ? NULL : PyBool_FromLong(r);
}

static PyObject *Lock_enter(lock_t *self, PyObject *Py_UNUSED(ignored))
{
    return cprof_locks_acquire(&self->l, -1) < 0 ? NULL : Py_NewRef(Py_True);
}

static PyObject *Lock_release(lock_t *self, PyObject *Py_UNUSED(ignored))
{
    if (!self->l.locked) {
        PyErr_SetString(PyExc_RuntimeError, "release unlocked lock");
        return NULL;
    }
    cprof_locks_release(&self->l);
    Py_RETURN_NONE;
}

static PyObject *Lock_exit(lock_t *self, PyObject *Py_UNUSED(args))
{
    return Lock_release(self, NULL);
}

static PyObject *Lock_locked(lock_t *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(self->l.locked);
}

static PyObject *Lock_repr(lock_t *self)
{
    return PyUnicode_FromFormat("<%s %s object at %p>", self->l.locked ? "locked" : "unlocked",
                                Py_TYPE(self)->tp_name, self);
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

static PyTypeObject Lock_Type = {
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
    if (self->l.count > 0 && self->l.owner == PyThread_get_thread_ident()) {
        if (self->l.count == ULONG_MAX) {
            PyErr_SetString(PyExc_OverflowError, "Internal lock count overflowed");
            return -1;
        }
        self->l.count++;
        return 1;
    }
    int r = cprof_locks_acquire(&self->l, us);
    if (r == 1)
        self->l.count = 1;
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

static PyObject *RLock_release(lock_t *self, PyObject *Py_UNUSED(ignored))
{
    if (self->l.count == 0 || self->l.owner != PyThread_get_thread_ident()) {
        PyErr_SetString(PyExc_RuntimeError, "cannot release un-acquired lock");
        return NULL;
    }
    if (self->l.count > 1)
        self->l.count--;
    else
        cprof_locks_release(&self->l);
    Py_RETURN_NONE;
}

static PyObject *RLock_exit(lock_t *self, PyObject *Py_UNUSED(args))
{
    return RLock_release(self, NULL);
}

static PyObject *RLock_is_owned(lock_t *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(self->l.count > 0 && self->l.owner == PyThread_get_thread_ident());
}

#if CPROF_RLOCK_HAS_LOCKED
static PyObject *RLock_locked(lock_t *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(self->l.count > 0);
}
#endif

static PyObject *RLock_recursion_count(lock_t *self, PyObject *Py_UNUSED(ignored))
{
    unsigned long me = PyThread_get_thread_ident();
    return PyLong_FromUnsignedLong(self->l.owner == me ? self->l.count : 0);
}

/* Condition.wait: give the lock up entirely, remembering the state. */
static PyObject *RLock_release_save(lock_t *self, PyObject *Py_UNUSED(ignored))
{
    if (self->l.count == 0) {
        PyErr_SetString(PyExc_RuntimeError, "cannot release un-acquired lock");
        return NULL;
    }
    PyObject *state = Py_BuildValue("(kk)", self->l.count, self->l.owner);
    if (state != NULL)
        cprof_locks_release(&self->l);
    return state;
}

static PyObject *RLock_acquire_restore(lock_t *self, PyObject *state)
{
    unsigned long count, owner;
    if (!PyArg_ParseTuple(state, "kk:_acquire_restore", &count, &owner))
        return NULL;
    if (cprof_locks_acquire(&self->l, -1) < 0)
        return NULL;
    self->l.owner = owner;
    self->l.count = count;
    Py_RETURN_NONE;
}

static PyObject *RLock_repr(lock_t *self)
{
    return PyUnicode_FromFormat("<%s %s object owner=%lu count=%lu at %p>",
                                self->l.count ? "locked" : "unlocked", Py_TYPE(self)->tp_name,
                                self->l.owner, self->l.count, self);
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

static PyTypeObject RLock_Type = {
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

/* --- the lock profiles --------------------------------------------------------------- */

static PyObject *core_waiter_lock(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    return new_lock(&Lock_Type, CPROF_LOCK_WAITER);
}

static PyObject *core_locks_configure(PyObject *Py_UNUSED(module), PyObject *args)
{
    long long fraction, rate;
    if (!PyArg_ParseTuple(args, "LL:locks_configure", &fraction, &rate))
        return NULL;
    if (cprof_locks_configure(fraction, rate) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *totals_list(const cprof_lock_totals_t *t, size_t n)
{
    PyObject *list = PyList_New(0);
    for (size_t i = 0; list != NULL && i < n; i++) {
        if (t[i].contentions == 0)
            continue;
        PyObject *row = Py_BuildValue("(kdd)", (unsigned long)i, t[i].contentions,
                                      t[i].delay_ns);
        if (row == NULL || PyList_Append(list, row) < 0)
            Py_CLEAR(list);
        Py_XDECREF(row);
    }
    return list;
}

static int export_locks(const cprof_stacks_t *st, const cprof_lock_totals_t *mutex,
                        const cprof_lock_totals_t *block, size_t n, void *out)
{
    PyObject *r = cprof_py_tables(st);
    if (r == NULL || cprof_py_set_steal(r, "mutex", totals_list(mutex, n)) < 0 ||
        cprof_py_set_steal(r, "block", totals_list(block, n)) < 0) {
        Py_XDECREF(r);
        return -1;
    }
    *(PyObject **)out = r;
    return 0;
}

static PyObject *core_locks_snapshot(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    PyObject *r = NULL;
    if (cprof_locks_visit(export_locks, &r) < 0)
        return NULL;
    return r != NULL ? r : Py_BuildValue("{s[]s[]s[]s[]s[]}", "functions", "locations",
                                         "stacks", "mutex", "block");
}

static PyObject *core_locks_clear(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    cprof_locks_clear();
    Py_RETURN_NONE;
}

static PyObject *core_locks_block_event(PyObject *Py_UNUSED(module), PyObject *args)
{
    long long delay;
    int skip = 0;
    if (!PyArg_ParseTuple(args, "L|i:locks_block_event", &delay, &skip))
        return NULL;
    cprof_locks_block_event(delay, skip);
    Py_RETURN_NONE;
}

static PyObject *core_locks_waiting(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    const cprof_lock_waiter_t *waiters;
    size_t n = cprof_locks_waiters(&waiters);
    PyObject *list = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; list != NULL && i < n; i++) {
        PyObject *row = Py_BuildValue("(kO)", waiters[i].thread, waiters[i].lock->object);
        if (row == NULL)
            Py_CLEAR(list);
        else
            PyList_SET_ITEM(list, (Py_ssize_t)i, row);
    }
    return list;
}

static PyObject *core_locks_library_files(PyObject *Py_UNUSED(module), PyObject *files)
{
    if (!PyFrozenSet_Check(files))
        return PyErr_Format(PyExc_TypeError, "expected a frozenset of file names, not %s",
                            Py_TYPE(files)->tp_name);
    cprof_locks_set_library_files(files);
    Py_RETURN_NONE;
}

static PyMethodDef locks_methods[] = {
    {"waiter_lock", (PyCFunction)core_waiter_lock, METH_NOARGS,
     "waiter_lock() -> a Lock whose waits count in the block profile only (Condition's)"},
    {"locks_configure", (PyCFunction)core_locks_configure, METH_VARARGS,
     "locks_configure(mutex_fraction, block_rate_ns): what the recording locks sample"},
    {"locks_snapshot", (PyCFunction)core_locks_snapshot, METH_NOARGS,
     "locks_snapshot() -> dict of functions, locations, stacks, and mutex and block rows "
     "(stack, contentions, delay_ns), upscaled"},
    {"locks_clear", (PyCFunction)core_locks_clear, METH_NOARGS,
     "locks_clear(): forget the recorded contention and blocking"},
    {"locks_block_event", (PyCFunction)core_locks_block_event, METH_VARARGS,
     "locks_block_event(delay_ns, skip=0): a wait at the caller's stack (less skip frames), "
     "sampled by the block profile rate"},
    {"locks_waiting", (PyCFunction)core_locks_waiting, METH_NOARGS,
     "locks_waiting() -> [(thread ident, lock)] for threads waiting on recording locks"},
    {"locks_library_files", (PyCFunction)core_locks_library_files, METH_O,
     "locks_library_files(frozenset): files not reported as where locks are made"},
    {NULL, NULL, 0, NULL},
};

static int locks_ready(PyObject *module)
{
    if (PyType_Ready(&Lock_Type) < 0 || PyType_Ready(&RLock_Type) < 0 ||
        PyModule_AddObjectRef(module, "Lock", (PyObject *)&Lock_Type) < 0 ||
        PyModule_AddObjectRef(module, "RLock", (PyObject *)&RLock_Type) < 0)
        return -1;
    return 0;
}

const cprof_binding_t cprof_locks_binding = {locks_methods, locks_ready};
