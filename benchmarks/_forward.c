/* The heap benchmark's floor: allocator hooks on the RAW, MEM and OBJ domains
 * that only forward to the allocator they replaced. Any hook costs the
 * interpreter its inlined pymalloc (PyObject_Malloc/Free call pymalloc
 * directly only while the domain's function is pymalloc's own), so this is
 * what any PyMem_SetAllocator profiler pays before doing anything; cprof's
 * heap profile is judged above it as well as above no hook at all.
 *
 * Built by benchmarks/heap_overhead.py for each interpreter it measures
 * (gcc -shared -fPIC -O2); not part of cprof.
 *
 * As cprof's hooks (csrc/collect/heap.c) do, each domain's hooks keep the previous
 * allocator's ctx and call its functions from static storage, so the cost
 * compared is the same indirection. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyMemAllocatorEx prev[3];
static PyMemAllocatorEx ours[3];
static const PyMemAllocatorDomain domain_ids[3] = {
    PYMEM_DOMAIN_RAW, PYMEM_DOMAIN_MEM, PYMEM_DOMAIN_OBJ};
static int active;

#define FORWARD(d)                                                            \
    static void *malloc_##d(void *ctx, size_t size)                           \
    {                                                                         \
        return prev[d].malloc(ctx, size);                                     \
    }                                                                         \
    static void *calloc_##d(void *ctx, size_t nelem, size_t elsize)           \
    {                                                                         \
        return prev[d].calloc(ctx, nelem, elsize);                            \
    }                                                                         \
    static void *realloc_##d(void *ctx, void *ptr, size_t size)               \
    {                                                                         \
        return prev[d].realloc(ctx, ptr, size);                               \
    }                                                                         \
    static void free_##d(void *ctx, void *ptr)                                \
    {                                                                         \
        prev[d].free(ctx, ptr);                                               \
    }

FORWARD(0)
FORWARD(1)
FORWARD(2)

static const PyMemAllocatorEx hooks[3] = {
    {NULL, malloc_0, calloc_0, realloc_0, free_0},
    {NULL, malloc_1, calloc_1, realloc_1, free_1},
    {NULL, malloc_2, calloc_2, realloc_2, free_2},
};

static PyObject *start(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    if (active) {
        PyErr_SetString(PyExc_RuntimeError, "the forwarding hooks are already installed");
        return NULL;
    }
    for (int d = 0; d < 3; d++) {
        PyMem_GetAllocator(domain_ids[d], &prev[d]);
        ours[d] = hooks[d];
        ours[d].ctx = prev[d].ctx;
        PyMem_SetAllocator(domain_ids[d], &ours[d]);
    }
    active = 1;
    Py_RETURN_NONE;
}

static PyObject *stop(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    if (!active) {
        PyErr_SetString(PyExc_RuntimeError, "the forwarding hooks are not installed");
        return NULL;
    }
    /* Another hook installed on top since start() would call ours after the
     * restore: refuse rather than unwind it. */
    for (int d = 0; d < 3; d++) {
        PyMemAllocatorEx current;
        PyMem_GetAllocator(domain_ids[d], &current);
        if (current.malloc != hooks[d].malloc || current.free != hooks[d].free) {
            PyErr_SetString(PyExc_RuntimeError,
                            "another allocator was installed over the forwarding hooks");
            return NULL;
        }
    }
    for (int d = 0; d < 3; d++)
        PyMem_SetAllocator(domain_ids[d], &prev[d]);
    active = 0;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"start", start, METH_NOARGS,
     "Install hooks on the RAW, MEM and OBJ domains that only forward."},
    {"stop", stop, METH_NOARGS, "Restore the allocators start() replaced."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_forward",
    "Allocator hooks that only forward: the heap benchmark's floor.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__forward(void)
{
    return PyModule_Create(&module_def);
}
