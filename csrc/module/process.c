/* process: what concerns every collector at once: whether they can read this
 * interpreter's frames (collect/frames.h), and os.fork's hooks. */
#include "module/module.h"

#include "collect/frames.h"
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

static PyMethodDef process_methods[] = {
    {"before_fork", (PyCFunction)core_before_fork, METH_NOARGS,
     "before_fork(): os.fork's before hook: the sampler's helper keeps off the GIL"},
    {"after_fork_parent", (PyCFunction)core_after_fork_parent, METH_NOARGS,
     "after_fork_parent(): os.fork's after hook in the parent: the helper may take the GIL"},
    {"after_fork_child", (PyCFunction)core_after_fork_child, METH_NOARGS,
     "after_fork_child(): in a forked child, forget the parent's running profiles"},
    {"layout_problem", (PyCFunction)core_layout_problem, METH_NOARGS,
     "layout_problem() -> None when the collectors can read this interpreter's frames, "
     "else why they refuse"},
    {"check_layout", (PyCFunction)core_check_layout, METH_VARARGS,
     "check_layout(field=None, skew=0) -> check the interpreter's frame layout again, as "
     "if its _Py_DebugOffsets field (\"group.field\") were off by skew (tests); returns "
     "layout_problem()"},
    {NULL, NULL, 0, NULL},
};

const cprof_binding_t cprof_process_binding = {process_methods, NULL};
