/* frames: stacks, context variables and code deaths, over compat.h. */
#include "collect/compat.h"

#include "collect/frames.h"

#include <stdio.h>
#include <string.h>

/* Why the collectors cannot read this interpreter's frames, or "" when they
 * can: set at import (cprof_frames_check_layout), GIL held. */
static char problem[512];

const char *cprof_frames_problem(void)
{
    return problem[0] != '\0' ? problem : NULL;
}

#ifdef CPROF_COMPAT_UNSUPPORTED

/* --- an interpreter cprof does not know: no frame walk ------------------------ */

int cprof_frames_check_layout(const char *skew_field, long skew)
{
    (void)skew_field;
    (void)skew;
    snprintf(problem, sizeof problem,
             "cprof does not support %s yet: its collectors need the interpreter's "
             "internal frame layout, which cprof knows for CPython 3.11 to 3.15 with the "
             "GIL. Loading, analysing and writing profiles work on any Python.",
             CPROF_COMPAT_UNSUPPORTED);
    return -1;
}

PyThreadState *cprof_frames_tstate_sigsafe(void)
{
    return NULL;
}

int cprof_frames_holds_gil(PyThreadState *tstate)
{
    (void)tstate;
    return 0;
}

size_t cprof_frames_capture_sigsafe(PyThreadState *tstate, cprof_frame_t *out, size_t max,
                                    size_t *total, void **coroutine)
{
    (void)tstate, (void)out, (void)max;
    *total = 0;
    *coroutine = NULL;
    return 0;
}

size_t cprof_frames_capture_marked_sigsafe(PyThreadState *tstate, cprof_frame_t *out,
                                           size_t max, size_t *total, void **coroutine)
{
    return cprof_frames_capture_sigsafe(tstate, out, max, total, coroutine);
}

size_t cprof_frames_capture_unnamed_sigsafe(PyThreadState *tstate, cprof_frame_t *out,
                                            size_t max, size_t *total, void **coroutine)
{
    return cprof_frames_capture_sigsafe(tstate, out, max, total, coroutine);
}

PyObject *cprof_frames_contextvar_sigsafe(PyThreadState *tstate, PyObject *var, Py_hash_t hash)
{
    (void)tstate, (void)var, (void)hash;
    return NULL;
}

Py_hash_t cprof_frames_contextvar_hash(PyObject *var)
{
    (void)var;
    return 0;
}

void cprof_frames_learn(void)
{
}

int cprof_frames_init(void)
{
    PyErr_SetString(PyExc_RuntimeError, problem);
    return -1;
}

void *cprof_frames_eval_loop(void)
{
    return NULL;
}

int cprof_frames_watch_code(void (*on_death)(PyObject *code))
{
    (void)on_death;
    PyErr_SetString(PyExc_RuntimeError, problem);
    return -1;
}

void cprof_frames_unwatch_code(void (*on_death)(PyObject *code))
{
    (void)on_death;
}

int cprof_frames_line(PyObject *code, int32_t lasti)
{
    (void)lasti;
    return PyCode_Check(code) ? ((PyCodeObject *)code)->co_firstlineno : 0;
}

int cprof_frames_call_place(PyObject *code, int32_t lasti, unsigned *slot, unsigned *other)
{
    (void)code, (void)lasti, (void)slot, (void)other;
    return 0;
}

PyObject *cprof_frames_call_places(PyObject *code)
{
    (void)code;
    PyErr_SetString(PyExc_RuntimeError, problem);
    return NULL;
}

void cprof_frames_forget_places(void)
{
}

PyObject *cprof_frames_callee(PyObject *frame)
{
    (void)frame;
    Py_RETURN_NONE;
}

#else

/* --- the interpreter's own account of its layout ------------------------------ */

#if PY_VERSION_HEX >= 0x030D0000
/* Every offset and size the frame walk depends on, as CPython publishes them
 * in _PyRuntime.debug_offsets (for debuggers and remote profilers) and as the
 * headers cprof was compiled with give them. A patch release that moves one
 * of these fields differs here. */
typedef struct {
    const char *name;
    size_t at;       /* offset of the value in _Py_DebugOffsets */
    uint64_t value;  /* what cprof was compiled with */
} layout_field_t;

#define LAYOUT(group, field, expected) \
    {#group "." #field, offsetof(_Py_DebugOffsets, group.field), (uint64_t)(expected)}

static const layout_field_t layout_fields[] = {
    LAYOUT(thread_state, size, sizeof(PyThreadState)),
    LAYOUT(thread_state, current_frame, offsetof(PyThreadState, current_frame)),
    LAYOUT(thread_state, datastack_chunk, offsetof(PyThreadState, datastack_chunk)),
    LAYOUT(interpreter_frame, size, sizeof(_PyInterpreterFrame)),
    LAYOUT(interpreter_frame, previous, offsetof(_PyInterpreterFrame, previous)),
    LAYOUT(interpreter_frame, executable, offsetof(_PyInterpreterFrame, f_executable)),
    LAYOUT(interpreter_frame, instr_ptr, offsetof(_PyInterpreterFrame, instr_ptr)),
    LAYOUT(interpreter_frame, owner, offsetof(_PyInterpreterFrame, owner)),
    LAYOUT(interpreter_frame, localsplus, offsetof(_PyInterpreterFrame, localsplus)),
    LAYOUT(code_object, size, sizeof(PyCodeObject)),
    LAYOUT(code_object, firstlineno, offsetof(PyCodeObject, co_firstlineno)),
    LAYOUT(code_object, co_code_adaptive, offsetof(PyCodeObject, co_code_adaptive)),
    LAYOUT(pyobject, ob_type, offsetof(PyObject, ob_type)),
#if PY_VERSION_HEX >= 0x030E0000
    LAYOUT(gen_object, size, sizeof(PyGenObject)),
    LAYOUT(gen_object, gi_iframe, offsetof(PyGenObject, gi_iframe)),
    LAYOUT(gen_object, gi_frame_state, offsetof(PyGenObject, gi_frame_state)),
#endif
};
#endif

int cprof_frames_check_layout(const char *skew_field, long skew)
{
    problem[0] = '\0';
    unsigned long running = (unsigned long)Py_Version;
    if ((running >> 16) != ((unsigned long)PY_VERSION_HEX >> 16)) {
        snprintf(problem, sizeof problem,
                 "cprof was built for CPython %d.%d and runs on %lu.%lu: reinstall cprof "
                 "for this interpreter",
                 PY_MAJOR_VERSION, PY_MINOR_VERSION, running >> 24, (running >> 16) & 0xff);
        return -1;
    }
#if PY_VERSION_HEX >= 0x030D0000
    _Py_DebugOffsets offsets;
    memcpy(&offsets, &_PyRuntime.debug_offsets, sizeof offsets);
    const char *bad = NULL;
    uint64_t want = 0, have = 0;
    if (offsets.free_threaded)
        bad = "free_threaded";
    for (size_t i = 0; bad == NULL && i < sizeof layout_fields / sizeof *layout_fields; i++) {
        const layout_field_t *f = &layout_fields[i];
        memcpy(&have, (const char *)&offsets + f->at, sizeof have);
        if (skew_field != NULL && strcmp(skew_field, f->name) == 0)
            have += (uint64_t)skew;
        if (have != f->value) {
            bad = f->name;
            want = f->value;
        }
    }
    if (bad != NULL) {
        snprintf(problem, sizeof problem,
                 "cprof does not support this CPython build yet (%s): the interpreter says "
                 "%s is %llu where cprof was built for %llu, so its collectors cannot read "
                 "the frames safely. Loading, analysing and writing profiles still work.",
                 Py_GetVersion(), bad, (unsigned long long)have, (unsigned long long)want);
        return -1;
    }
#else
    (void)skew_field;
    (void)skew;
#endif
    return 0;
}

void *cprof_frames_eval_loop(void)
{
    return (void *)&_PyEval_EvalFrameDefault;
}

/* Set once by cprof_frames_init (GIL held), read by signal handlers. */
static PyTypeObject *hamt_bitmap_type;
static PyTypeObject *hamt_array_type;

/* A chain longer than this is corrupt or cyclic: stop walking. */
#define MAX_WALK 1000000

/* --- signal-safe section ---------------------------------------------------- */

PyThreadState *cprof_frames_tstate_sigsafe(void)
{
    return cprof_compat_tstate_sigsafe();
}

int cprof_frames_holds_gil(PyThreadState *tstate)
{
    return cprof_compat_holds_gil(tstate);
}

/* At most this many candidates a frame (CPROF_FRAME_CANDIDATE). */
#define MAX_CANDIDATES 8

/* The catalogued callables in frame f's value stack, as candidates into out
 * (room for max): how many. */
static size_t candidates_sigsafe(_PyInterpreterFrame *f, PyCodeObject *code,
                                 cprof_frame_t *out, size_t max)
{
    size_t n, found = 0;
    PyObject **stack = cprof_compat_value_stack_sigsafe(f, code, &n);
    for (size_t i = 0; stack != NULL && i < n && found < max && found < MAX_CANDIDATES; i++) {
        if (!cprof_leaf_known_sigsafe((uintptr_t)stack[i]))
            continue;
        uint32_t flags = CPROF_FRAME_C_CALL | CPROF_FRAME_CANDIDATE;
        if (i > 0 && stack[i - 1] == NULL)
            flags |= CPROF_FRAME_BELOW_NULL;
        out[found++] = (cprof_frame_t){stack[i], (int32_t)i, flags};
    }
    return found;
}

static size_t capture_sigsafe(PyThreadState *tstate, cprof_frame_t *out, size_t max,
                              size_t *total, void **coroutine, int marks, int unnamed)
{
    size_t stored = 0, seen = 0;
    *coroutine = NULL;
    _PyInterpreterFrame *f;
    if (!cprof_compat_walk_start_sigsafe(tstate, &f)) {
        *total = 0;  /* no frame to trust */
        return 0;
    }
    /* Whether the next frame may be calling a C function: the innermost one,
     * and each one whose callee entered the interpreter anew (a C function
     * calling back into Python: sorted's key, a generator resumed by sum).
     * Not in native mode, where libunwind names the C frames, nor while no
     * catalogue is installed (collect/leaf.h): the walk then does no more
     * than it did without it. */
    int naming = !marks && !unnamed && cprof_leaf_active_sigsafe();
    int calling = naming;
    for (size_t steps = 0; f != NULL && steps < MAX_WALK; f = f->previous, steps++) {
        PyCodeObject *code = cprof_compat_code_sigsafe(f);
        int call_entry = (marks || naming) && cprof_compat_call_entry_sigsafe(f);
        int call_end = marks && call_entry;
        if (code != NULL && !cprof_compat_skip_frame_sigsafe(f, code)) {
            void *coro = cprof_compat_coroutine_sigsafe(f, code);
            if (coro != NULL)
                *coroutine = coro;  /* the last one seen is the outermost */
            int unknown = 0;
            uintptr_t called = calling ? cprof_compat_called_sigsafe(f, code, &unknown) : 0;
            calling = 0;
            if (called != 0) {
                if (stored < max)
                    out[stored++] = (cprof_frame_t){(PyObject *)called, 0, CPROF_FRAME_C_CALL};
                seen++;
            } else if (unknown) {
                size_t found = candidates_sigsafe(f, code, out + stored,
                                                  stored < max ? max - stored : 0);
                stored += found;
                seen += found;
            }
            if (stored < max)
                out[stored++] = (cprof_frame_t){(PyObject *)code,
                                                cprof_compat_lasti_sigsafe(f, code),
                                                unknown ? CPROF_FRAME_NO_PLACES : 0u};
            seen++;
        }
        if (call_entry && naming)
            calling = 1;
        if (call_end && stored < max)
            out[stored++] = (cprof_frame_t){
                (PyObject *)cprof_compat_entry_on_cstack(f), 0, CPROF_FRAME_CALL_END};
    }
    *total = seen;
    return stored;
}

size_t cprof_frames_capture_sigsafe(PyThreadState *tstate, cprof_frame_t *out, size_t max,
                                    size_t *total, void **coroutine)
{
    if (!cprof_leaf_active_sigsafe())
        return capture_sigsafe(tstate, out, max, total, coroutine, 0, 1);
    /* The walk reads the catalogue's tables: none is freed under it. */
    cprof_leaf_enter_sigsafe();
    size_t stored = capture_sigsafe(tstate, out, max, total, coroutine, 0, 0);
    cprof_leaf_leave_sigsafe();
    return stored;
}

size_t cprof_frames_capture_unnamed_sigsafe(PyThreadState *tstate, cprof_frame_t *out,
                                            size_t max, size_t *total, void **coroutine)
{
    return capture_sigsafe(tstate, out, max, total, coroutine, 0, 1);
}

size_t cprof_frames_capture_marked_sigsafe(PyThreadState *tstate, cprof_frame_t *out,
                                           size_t max, size_t *total, void **coroutine)
{
    return capture_sigsafe(tstate, out, max, total, coroutine, 1, 0);
}

PyObject *cprof_frames_contextvar_sigsafe(PyThreadState *tstate, PyObject *var,
                                          Py_hash_t hash)
{
    PyObject *node = cprof_compat_context_vars_root_sigsafe(tstate);
    uint32_t h = (uint32_t)cprof_compat_hamt_hash(hash);
    for (unsigned shift = 0; node != NULL && shift <= 30; shift += 5) {
        uint32_t index = (h >> shift) & 0x1f;
        if (Py_TYPE(node) == hamt_array_type) {
            node = ((cprof_hamt_array_t *)node)->a_array[index];
            continue;
        }
        if (Py_TYPE(node) != hamt_bitmap_type) {
            cprof_hamt_collision_t *c = (cprof_hamt_collision_t *)node;
            for (Py_ssize_t i = 0; i + 1 < Py_SIZE(c); i += 2)
                if (c->c_array[i] == var)
                    return c->c_array[i + 1];
            return NULL;
        }
        cprof_hamt_bitmap_t *b = (cprof_hamt_bitmap_t *)node;
        uint32_t bit = 1u << index;
        if ((b->b_bitmap & bit) == 0)
            return NULL;
        unsigned slot = (unsigned)__builtin_popcount(b->b_bitmap & (bit - 1)) * 2;
        PyObject *key = b->b_array[slot];
        if (key == NULL) {
            node = b->b_array[slot + 1];  /* a sub-tree */
            continue;
        }
        /* ContextVars compare by identity. */
        return key == var ? b->b_array[slot + 1] : NULL;
    }
    return NULL;
}

/* --- GIL-held section -------------------------------------------------------- */

Py_hash_t cprof_frames_contextvar_hash(PyObject *var)
{
    return cprof_compat_contextvar_hash(var);
}

/* The HAMT node types are not exported: take them from real HAMTs, a
 * one-entry map (a bitmap node) and a 200-entry one (an array node at the root:
 * a bitmap node holds at most 16 keys, and 200 keys fill more than 16 of the
 * root's 32 slots but with vanishing probability). */
void cprof_frames_learn(void)
{
    cprof_compat_learn_entry();
}

int cprof_frames_init(void)
{
    if (problem[0] != '\0') {
        PyErr_SetString(PyExc_RuntimeError, problem);
        return -1;
    }
    cprof_compat_learn_entry();
    if (hamt_bitmap_type != NULL)
        return 0;
    int rc = -1;
    PyObject *ran = NULL;
    PyObject *globals = PyDict_New();
    if (globals == NULL || PyDict_SetItemString(globals, "__builtins__", PyEval_GetBuiltins()) < 0)
        goto done;
    ran = PyRun_String(
        "import contextvars\n"
        "def fill(n):\n"
        "    vs = [contextvars.ContextVar(f'v{i}') for i in range(n)]\n"
        "    for v in vs:\n"
        "        v.set(0)\n"
        "    return contextvars.copy_context(), vs\n"
        "small = contextvars.Context().run(fill, 1)\n"
        "large = contextvars.Context().run(fill, 200)\n",
        Py_file_input, globals, globals);
    if (ran == NULL)
        goto done;
    PyObject *small = PyDict_GetItemString(globals, "small");
    PyObject *large = PyDict_GetItemString(globals, "large");
    if (small == NULL || large == NULL || !PyTuple_Check(small) || !PyTuple_Check(large)) {
        PyErr_SetString(PyExc_RuntimeError, "cprof: probing contextvars failed");
        goto done;
    }
    PyContext *s = (PyContext *)PyTuple_GET_ITEM(small, 0);
    PyContext *l = (PyContext *)PyTuple_GET_ITEM(large, 0);
    PyTypeObject *bitmap = Py_TYPE(s->ctx_vars->h_root);
    PyTypeObject *array = Py_TYPE(l->ctx_vars->h_root);
    if (bitmap == array) {
        PyErr_SetString(PyExc_RuntimeError,
                        "cprof: could not tell the contextvars HAMT node types apart");
        goto done;
    }
    hamt_bitmap_type = bitmap;
    hamt_array_type = array;
    rc = 0;
done:
    Py_XDECREF(ran);
    Py_XDECREF(globals);
    return rc;
}

/* Who hears of code deaths: the sampler and the heap profiler, each while it
 * runs. GIL held for every access. */
#define MAX_WATCHERS 4
static void (*code_death_callbacks[MAX_WATCHERS])(PyObject *code);

/* A code object may die while the program raises (its frames unwinding):
 * the callbacks, which drain and may fail with an exception of their own
 * (memory), leave the one in flight as it was. */
static void code_died(PyObject *code)
{
    cprof_raised_t raised = cprof_frames_set_aside();
    for (int i = 0; i < MAX_WATCHERS; i++)
        if (code_death_callbacks[i] != NULL)
            code_death_callbacks[i](code);
    cprof_frames_put_back(raised);
}

static int add_callback(void (*on_death)(PyObject *code))
{
    int free_slot = -1;
    for (int i = 0; i < MAX_WATCHERS; i++) {
        if (code_death_callbacks[i] == on_death)
            return 0;
        if (code_death_callbacks[i] == NULL && free_slot < 0)
            free_slot = i;
    }
    if (free_slot < 0) {
        PyErr_SetString(PyExc_RuntimeError, "cprof: too many code watchers");
        return -1;
    }
    code_death_callbacks[free_slot] = on_death;
    return 0;
}

/* 1 when nobody listens any more. */
static int remove_callback(void (*on_death)(PyObject *code))
{
    int left = 0;
    for (int i = 0; i < MAX_WATCHERS; i++) {
        if (code_death_callbacks[i] == on_death)
            code_death_callbacks[i] = NULL;
        left += code_death_callbacks[i] != NULL;
    }
    return left == 0;
}

#if PY_VERSION_HEX >= 0x030C0000
static int code_watcher_id = -1;

static int on_code_event(PyCodeEvent event, PyCodeObject *co)
{
    if (event == PY_CODE_EVENT_DESTROY)
        code_died((PyObject *)co);
    return 0;
}

int cprof_frames_watch_code(void (*on_death)(PyObject *code))
{
    if (problem[0] != '\0') {
        PyErr_SetString(PyExc_RuntimeError, problem);
        return -1;
    }
    if (add_callback(on_death) < 0)
        return -1;
    if (code_watcher_id < 0)
        code_watcher_id = PyCode_AddWatcher(on_code_event);
    if (code_watcher_id < 0) {
        remove_callback(on_death);
        return -1;
    }
    return 0;
}

void cprof_frames_unwatch_code(void (*on_death)(PyObject *code))
{
    if (remove_callback(on_death) && code_watcher_id >= 0 &&
        PyCode_ClearWatcher(code_watcher_id) == 0)
        code_watcher_id = -1;
}
#else
/* 3.11 has no code watchers: wrap the code type's deallocator. The wrapper
 * stays installed once set (GIL held), and calls back only while watching. */
static destructor original_code_dealloc;

static void code_dealloc_hook(PyObject *co)
{
    code_died(co);
    original_code_dealloc(co);
}

int cprof_frames_watch_code(void (*on_death)(PyObject *code))
{
    if (problem[0] != '\0') {
        PyErr_SetString(PyExc_RuntimeError, problem);
        return -1;
    }
    if (add_callback(on_death) < 0)
        return -1;
    if (original_code_dealloc == NULL) {
        original_code_dealloc = PyCode_Type.tp_dealloc;
        PyCode_Type.tp_dealloc = code_dealloc_hook;
    }
    return 0;
}

void cprof_frames_unwatch_code(void (*on_death)(PyObject *code))
{
    remove_callback(on_death);
}
#endif

/* --- where calls keep their callables (3.11-3.13) ---------------------------- */

static void places_died(PyObject *code)
{
    cprof_leaf_place_forget((uintptr_t)code);
}

static int watching_places;

#if PY_VERSION_HEX < 0x030E0000
/* co's instructions as co_code has them (base opcodes, opargs; caches
 * zeroed), in memory from libc: not PyCode_GetCode, whose bytes object an
 * allocator hook would see from inside itself (the heap profiler interns
 * stacks there, holding its lock, under tracemalloc's). NULL when memory
 * runs out. */
static unsigned char *base_code(PyCodeObject *co)
{
    size_t n = (size_t)Py_SIZE(co);
    unsigned char *code = calloc(2 * n + 2, 1);
    if (code == NULL)
        return NULL;
    const _Py_CODEUNIT *units = _PyCode_CODE(co);
    for (size_t i = 0; i < n;) {
#if PY_VERSION_HEX >= 0x030C0000
        unsigned op = units[i].op.code, arg = units[i].op.arg;
#else
        unsigned op = _Py_OPCODE(units[i]), arg = _Py_OPARG(units[i]);
#endif
#if PY_VERSION_HEX >= 0x030C0000
        _PyCoMonitoringData *monitoring = co->_co_monitoring;
        if (op == INSTRUMENTED_LINE && monitoring != NULL && monitoring->lines != NULL)
            op = monitoring->lines[i].original_opcode;
        if (op == INSTRUMENTED_INSTRUCTION && monitoring != NULL &&
            monitoring->per_instruction_opcodes != NULL)
            op = monitoring->per_instruction_opcodes[i];
#endif
        op = (unsigned)cprof_leaf_deopt(op);
        code[2 * i] = (unsigned char)op;
        code[2 * i + 1] = (unsigned char)arg;
        i += 1 + (size_t)cprof_leaf_caches(op);
    }
    return code;
}
#endif

/* code's places into a new array of 2 x units (freed by the caller), all
 * CPROF_LEAF_NO_SLOT where its code cannot be read. NULL when memory runs
 * out. No Python exception is left set. */
static uint16_t *compute_places(PyCodeObject *co, size_t *units)
{
    *units = 0;
#if PY_VERSION_HEX >= 0x030E0000
    (void)co;
    return calloc(1, 2 * sizeof(uint16_t));
#else
    size_t n = (size_t)Py_SIZE(co);
    unsigned char *code = base_code(co);
    uint16_t *pairs = malloc((2 * n + 2) * sizeof *pairs);
    int32_t *depths = malloc((n + 1) * sizeof *depths);
    if (code == NULL || pairs == NULL || depths == NULL) {
        free(code);
        free(pairs);
        free(depths);
        return NULL;
    }
    for (size_t i = 0; i < 2 * n + 2; i++)
        pairs[i] = CPROF_LEAF_NO_SLOT;
    PyObject *table = co->co_exceptiontable;
    int rc = cprof_leaf_depths(code, n, (const unsigned char *)PyBytes_AS_STRING(table),
                               (size_t)PyBytes_GET_SIZE(table),
                               PyCompile_OpcodeStackEffectWithJump, depths);
    if (rc == -2) {
        free(pairs);
        pairs = NULL;
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        unsigned oparg;
        int kind = cprof_leaf_call_kind_sigsafe((unsigned)cprof_leaf_instruction(code, n, i, &oparg));
        long depth = depths[i], slot = -1, other = -1;
        if (depth < 0)
            continue;
        switch (kind) {
        case CPROF_LEAF_PRECALL: /* 3.11: [method or NULL, callable or self, args] */
            slot = depth - (long)oparg - 2;
            other = slot + 1;
            break;
        case CPROF_LEAF_CALL:
#if PY_VERSION_HEX >= 0x030D0000
            slot = other = depth - (long)oparg - 2;  /* [callable, self or NULL, args] */
#elif PY_VERSION_HEX >= 0x030C0000
            slot = depth - (long)oparg - 2;
            other = slot + 1;
#else
            slot = depth - 2;  /* PRECALL counted the arguments off already */
            other = slot + 1;
#endif
            break;
        case CPROF_LEAF_CALL_KW:
            slot = other = depth - (long)oparg - 3;
            break;
        case CPROF_LEAF_CALL_EX: /* [callable, NULL, ...] from 3.13, [NULL, callable, ...] before */
#if PY_VERSION_HEX >= 0x030D0000
            slot = other = depth - 3 - (long)(oparg & 1);
#else
            slot = other = depth - 2 - (long)(oparg & 1);
#endif
            break;
        default:
            continue;
        }
        if (slot >= 0 && other < co->co_stacksize && other < (long)CPROF_LEAF_NO_SLOT) {
            pairs[2 * i] = (uint16_t)slot;
            pairs[2 * i + 1] = (uint16_t)other;
        }
    }
    free(depths);
    free(code);
    *units = n;
    return pairs;
#endif
}

int cprof_frames_call_place(PyObject *code, int32_t lasti, unsigned *slot, unsigned *other)
{
    int found = cprof_leaf_place_sigsafe((uintptr_t)code, lasti, slot, other);
    if (found >= 0)
        return found;
    size_t units;
    uint16_t *pairs = compute_places((PyCodeObject *)code, &units);
    if (pairs == NULL)
        return 0;
    found = lasti >= 0 && (size_t)lasti < units && pairs[2 * (size_t)lasti] != CPROF_LEAF_NO_SLOT;
    if (found) {
        *slot = pairs[2 * (size_t)lasti];
        *other = pairs[2 * (size_t)lasti + 1];
    }
    /* Kept while the code lives, forgotten as it dies; not for a code
     * dying now (a drain at its death), which no frame will run again.
     * An allocator hook may be naming a stack while the program raises: the
     * exception in flight stays as it is (clearing it crashed the program).
     * 3.14+ have none to keep (no units). */
    if (Py_REFCNT(code) > 0 && units > 0) {
        if (!watching_places) {
            cprof_raised_t raised = cprof_frames_set_aside();
            watching_places = cprof_frames_watch_code(places_died) == 0;
            cprof_frames_put_back(raised);
        }
        if (watching_places)
            (void)cprof_leaf_place_put((uintptr_t)code, pairs, units);
    }
    free(pairs);
    return found;
}

PyObject *cprof_frames_call_places(PyObject *code)
{
    if (!PyCode_Check(code)) {
        PyErr_SetString(PyExc_TypeError, "call_places: a code object is needed");
        return NULL;
    }
    size_t units;
    uint16_t *pairs = compute_places((PyCodeObject *)code, &units);
    if (pairs == NULL)
        return PyErr_NoMemory();
    PyObject *r = PyBytes_FromStringAndSize((const char *)pairs,
                                            (Py_ssize_t)(2 * units * sizeof *pairs));
    free(pairs);
    return r;
}

PyObject *cprof_frames_callee(PyObject *frame)
{
    if (!PyFrame_Check(frame)) {
        PyErr_SetString(PyExc_TypeError, "frame_callee: a frame object is needed");
        return NULL;
    }
    _PyInterpreterFrame *f = ((PyFrameObject *)frame)->f_frame;
    /* A frame object that owns its frame holds a finished call's copy. */
    if (f == NULL || f->owner == FRAME_OWNED_BY_FRAME_OBJECT || !cprof_leaf_active_sigsafe())
        Py_RETURN_NONE;
    PyCodeObject *code = cprof_compat_code_sigsafe(f);
    if (code == NULL)
        Py_RETURN_NONE;
#if PY_VERSION_HEX < 0x030E0000
    unsigned slot, other;  /* the places, kept for the read below */
    (void)cprof_frames_call_place((PyObject *)code, cprof_compat_lasti_sigsafe(f, code), &slot,
                                  &other);
#endif
    int unknown = 0;
    uintptr_t called = cprof_compat_called_sigsafe(f, code, &unknown);
    if (called == 0)
        Py_RETURN_NONE;
    return PyLong_FromVoidPtr((void *)called);
}

void cprof_frames_forget_places(void)
{
    if (watching_places)
        cprof_frames_unwatch_code(places_died);
    watching_places = 0;
}

/* The line of the instruction at code unit lasti. The compiler gives some
 * instructions no line (exception handlers' PUSH_EXC_INFO, their cleanup's
 * COPY/POP_EXCEPT/RERAISE, a with's exit, 3.12+'s inlined comprehensions'
 * restore), where PyCode_Addr2Line answers -1, and a module's first RESUME
 * line 0: those take the line of the
 * nearest instruction before them that has one (the statement that raised or
 * just ran), else of the nearest after, else the function's first line. An
 * offset outside the code (a frame not started yet) is its nearest end. */
int cprof_frames_line(PyObject *code, int32_t lasti)
{
    PyCodeObject *co = (PyCodeObject *)code;
    int units = (int)Py_SIZE(co);
    if (units <= 0)
        return co->co_firstlineno;
    int at = lasti < 0 ? 0 : lasti >= units ? units - 1 : (int)lasti;
    for (int i = at; i >= 0; i--) {
        int line = PyCode_Addr2Line(co, i * (int)sizeof(_Py_CODEUNIT));
        if (line > 0)
            return line;
    }
    for (int i = at + 1; i < units; i++) {
        int line = PyCode_Addr2Line(co, i * (int)sizeof(_Py_CODEUNIT));
        if (line > 0)
            return line;
    }
    return co->co_firstlineno;
}

#endif /* CPROF_COMPAT_UNSUPPORTED */
