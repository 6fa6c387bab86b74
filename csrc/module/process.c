/* process: what concerns every collector at once: whether they can read this
 * interpreter's frames (collect/frames.h), os.fork's hooks, and the echo of
 * termination signals a followed child needs (collect/echo.h). */
#include "module/module.h"

#include <signal.h>
#include <string.h>

#include "collect/echo.h"
#include "collect/frames.h"
#include "collect/leaf.h"
#include "collect/stacks.h"
#include "collect/heap.h"
#include "collect/sampler.h"

static PyObject *core_before_fork(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    cprof_sampler_before_fork();
    Py_RETURN_NONE;
}

static PyObject *core_after_fork_parent(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    cprof_sampler_after_fork_parent();
    Py_RETURN_NONE;
}

static PyObject *core_after_fork_child(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    cprof_sampler_after_fork_child();
    cprof_heap_after_fork_child();
    cprof_leaf_after_fork_child();
    Py_RETURN_NONE;
}

/* The collectors' view of this interpreter (collect/frames.c): None when they can
 * read its frames, else why not. */
static PyObject *core_layout_problem(PyObject *self, PyObject *noargs)
{
    (void)self, (void)noargs;
    const char *problem = cprof_frames_problem();
    if (problem == NULL)
        Py_RETURN_NONE;
    return PyUnicode_FromString(problem);
}

static PyObject *core_check_layout(PyObject *self, PyObject *args)
{
    (void)self;
    const char *field = NULL;
    long skew = 0;
    if (!PyArg_ParseTuple(args, "|zl:check_layout", &field, &skew))
        return NULL;
    cprof_frames_check_layout(field, skew);
    return core_layout_problem(NULL, NULL);
}

/* echo_signals(fd, signals): the signals of `signals` whose handler is a
 * function are echoed to fd (-1: to none); returns them. */
static PyObject *core_echo_signals(PyObject *self, PyObject *args)
{
    (void)self;
    int fd;
    PyObject *signals;
    if (!PyArg_ParseTuple(args, "iO:echo_signals", &fd, &signals))
        return NULL;
    if (fd < -1)
        return PyErr_Format(PyExc_ValueError, "echo_signals: fd must be -1 or a file "
                            "descriptor, not %d", fd);
    PyObject *numbers = PySequence_Fast(signals, "echo_signals: signals must be a sequence");
    if (numbers == NULL)
        return NULL;
    PyObject *echoed = PyList_New(0);
    for (Py_ssize_t i = 0; echoed != NULL && i < PySequence_Fast_GET_SIZE(numbers); i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(numbers, i);
        long signum = PyLong_Check(item) ? PyLong_AsLong(item) : -1;
        if (signum == -1 && PyErr_Occurred())
            Py_CLEAR(echoed);
        else if (signum <= 0 || signum >= NSIG) {
            PyErr_Format(PyExc_ValueError, "echo_signals: %R is not a signal number", item);
            Py_CLEAR(echoed);
        } else if (cprof_echo_signal((int)signum) == 0 && PyList_Append(echoed, item) < 0)
            Py_CLEAR(echoed);
    }
    Py_DECREF(numbers);
    if (echoed != NULL)
        cprof_echo_to(fd);
    return echoed;
}

/* leaf_set(names, kinds, flow): the catalogue of C callables
 * (collect/leaf.py), a dict {address: (name, short name, file, callable)}
 * that holds them, the kinds of the 256 opcodes, and their flow (256 flag
 * bytes and 256 inline cache counts: collect/leaf.h). */
static PyObject *core_leaf_set(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *names;
    Py_buffer kinds, flow;
    if (!PyArg_ParseTuple(args, "O!y*y*:leaf_set", &PyDict_Type, &names, &kinds, &flow))
        return NULL;
    if (kinds.len != 256 || flow.len != (Py_ssize_t)sizeof(cprof_leaf_flow_t)) {
        PyErr_Format(PyExc_ValueError,
                     "leaf_set: kinds must be 256 bytes and flow %zu, not %zd and %zd",
                     sizeof(cprof_leaf_flow_t), kinds.len, flow.len);
        PyBuffer_Release(&kinds);
        PyBuffer_Release(&flow);
        return NULL;
    }
    cprof_leaf_flow_t f;
    memcpy(&f, flow.buf, sizeof f);
    PyBuffer_Release(&flow);
    Py_ssize_t n = PyDict_Size(names), i = 0, k = 0;
    uintptr_t *addresses = PyMem_Calloc((size_t)n + 1, sizeof *addresses);
    PyObject *key, *value;
    while (addresses != NULL && PyDict_Next(names, &i, &key, &value)) {
        void *address = PyLong_AsVoidPtr(key);
        if (address == NULL && PyErr_Occurred())
            break;
        addresses[k++] = (uintptr_t)address;
    }
    /* The names first: a handler may find an address as soon as it is set. */
    int rc = addresses == NULL || PyErr_Occurred() || cprof_stacks_set_callables(names) < 0
                 ? -1
                 : cprof_leaf_set(addresses, (size_t)k, (const unsigned char *)kinds.buf, &f);
    PyMem_Free(addresses);
    PyBuffer_Release(&kinds);
    if (rc < 0)
        return PyErr_Occurred() ? NULL : PyErr_NoMemory();
    Py_RETURN_NONE;
}

/* leaf_clear(): stop naming C callables (the CPU sampler is stopped: no
 * handler can be reading the set). Their names stay, for what was taken. */
static PyObject *core_leaf_clear(PyObject *self, PyObject *noargs)
{
    (void)self, (void)noargs;
    cprof_frames_forget_places();
    cprof_leaf_clear();
    Py_RETURN_NONE;
}

/* leaf_active(): whether a catalogue is installed. */
static PyObject *core_leaf_active(PyObject *self, PyObject *noargs)
{
    (void)self, (void)noargs;
    return PyBool_FromLong(cprof_leaf_active_sigsafe());
}

/* leaf_held(): what the catalogue's tables hold (tests: a long-lived
 * program's tables stay bounded). */
static PyObject *core_leaf_held(PyObject *self, PyObject *noargs)
{
    (void)self, (void)noargs;
    cprof_leaf_held_t held = cprof_leaf_held();
    return Py_BuildValue("{sn sn sn sn sn}", "address_tables", (Py_ssize_t)held.address_tables,
                         "address_bytes", (Py_ssize_t)held.address_bytes, "place_tables",
                         (Py_ssize_t)held.place_tables, "place_bytes",
                         (Py_ssize_t)held.place_bytes, "places_bytes",
                         (Py_ssize_t)held.places_bytes);
}

/* leaf_call_places(code): where code's calls keep their callables, as the
 * sampler works it out (3.11-3.13; the tests compare it with
 * collect/leaf.py's callable_slots), kept for the handlers as a drain keeps
 * them (benchmarks/leaf_record.py). */
static PyObject *core_leaf_call_places(PyObject *self, PyObject *code)
{
    (void)self;
    PyObject *places = cprof_frames_call_places(code);
    unsigned slot, other;
    if (places != NULL)
        (void)cprof_frames_call_place(code, 0, &slot, &other);
    return places;
}

static PyObject *core_method_def(PyObject *self, PyObject *obj)
{
    (void)self;
    PyMethodDef *def = NULL;
    if (PyCFunction_Check(obj))
        def = ((PyCFunctionObject *)obj)->m_ml;
    else if (PyObject_TypeCheck(obj, &PyMethodDescr_Type) ||
             PyObject_TypeCheck(obj, &PyClassMethodDescr_Type))
        def = ((PyMethodDescrObject *)obj)->d_method;
    if (def == NULL)
        Py_RETURN_NONE;
    return PyLong_FromVoidPtr(def);
}

/* frame_callee(frame): the catalogue's key of the C callable a live frame is
 * calling, or None. */
static PyObject *core_frame_callee(PyObject *self, PyObject *frame)
{
    (void)self;
    return cprof_frames_callee(frame);
}

static PyMethodDef process_methods[] = {
    {"before_fork", (PyCFunction)core_before_fork, METH_NOARGS,
     "before_fork(): os.fork's before hook: the sampler's helper keeps off the GIL"},
    {"after_fork_parent", (PyCFunction)core_after_fork_parent, METH_NOARGS,
     "after_fork_parent(): os.fork's after hook in the parent: the helper may take the GIL"},
    {"after_fork_child", (PyCFunction)core_after_fork_child, METH_NOARGS,
     "after_fork_child(): in a forked child, forget the parent's running profiles"},
    {"echo_signals", (PyCFunction)core_echo_signals, METH_VARARGS,
     "echo_signals(fd, signals) -> the signals of signals (numbers) whose handler is a "
     "function, each now also written as one byte to fd (-1: to none) as it comes"},
    {"leaf_set", (PyCFunction)core_leaf_set, METH_VARARGS,
     "leaf_set(names, kinds, flow): name the C callables of names ({address: (name, short "
     "name, file, callable)}) when a frame calls one; kinds: the call kind of each opcode; "
     "flow: each opcode's flow flags, its inline cache units, then its base opcode"},
    {"leaf_active", (PyCFunction)core_leaf_active, METH_NOARGS,
     "leaf_active(): whether C callees are named (a catalogue is installed)"},
    {"leaf_held", (PyCFunction)core_leaf_held, METH_NOARGS,
     "leaf_held() -> {address_tables, address_bytes, place_tables, place_bytes, "
     "places_bytes}: what the catalogue's tables hold now (replaced ones not freed yet "
     "included)"},
    {"frame_callee", (PyCFunction)core_frame_callee, METH_O,
     "frame_callee(frame) -> the catalogue's key (leaf_set's names) of the C callable a "
     "live frame is calling, or None"},
    {"method_def", (PyCFunction)core_method_def, METH_O,
     "method_def(obj) -> the address of the method definition (PyMethodDef) of a builtin "
     "function or a method or class method descriptor, or None"},
    {"leaf_call_places", (PyCFunction)core_leaf_call_places, METH_O,
     "leaf_call_places(code): where each code unit's call keeps its callable (3.11-3.13), "
     "as native uint16 pairs (slot, other; 0xffff: no call), kept for the sampler"},
    {"leaf_clear", (PyCFunction)core_leaf_clear, METH_NOARGS,
     "leaf_clear(): stop naming them (no CPU profile running)"},
    {"layout_problem", (PyCFunction)core_layout_problem, METH_NOARGS,
     "layout_problem() -> None when the collectors can read this interpreter's frames, "
     "else why they refuse"},
    {"check_layout", (PyCFunction)core_check_layout, METH_VARARGS,
     "check_layout(field=None, skew=0) -> check the interpreter's frame layout again, as "
     "if its _Py_DebugOffsets field (\"group.field\") were off by skew (tests); returns "
     "layout_problem()"},
    {NULL, NULL, 0, NULL},
};

/* leaf.h's call kinds, flow flags and key offsets, which collect/leaf.py uses. */
static int process_ready(PyObject *module)
{
    static const struct {
        const char *name;
        long value;
    } constants[] = {
        {"LEAF_CALL", CPROF_LEAF_CALL},
        {"LEAF_CALL_KW", CPROF_LEAF_CALL_KW},
        {"LEAF_CALL_EX", CPROF_LEAF_CALL_EX},
        {"LEAF_EXTENDED", CPROF_LEAF_EXTENDED},
        {"LEAF_PRECALL", CPROF_LEAF_PRECALL},
        {"LEAF_JUMP_FORWARD", CPROF_LEAF_JUMP_FORWARD},
        {"LEAF_JUMP_BACKWARD", CPROF_LEAF_JUMP_BACKWARD},
        {"LEAF_NO_FALLTHROUGH", CPROF_LEAF_NO_FALLTHROUGH},
        {"LEAF_RETURN_GENERATOR", CPROF_LEAF_RETURN_GENERATOR},
        {"LEAF_INSTANCE_CALL", CPROF_LEAF_INSTANCE_CALL},
        {"LEAF_METHOD_DEF", CPROF_LEAF_METHOD_DEF},
    };
    for (size_t i = 0; i < sizeof constants / sizeof constants[0]; i++)
        if (PyModule_AddIntConstant(module, constants[i].name, constants[i].value) < 0)
            return -1;
    return 0;
}

const cprof_binding_t cprof_process_binding = {process_methods, process_ready};
