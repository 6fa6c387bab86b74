/* native: C stacks through libunwind, interleaved with Python's. */
#include "collect/native.h"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>

#define UNW_LOCAL_ONLY
#include <libunwind.h>

/* Set once by cprof_native_init (GIL held), read by signal handlers. */
static uintptr_t eval_start, eval_end;

/* --- GIL-held section -------------------------------------------------------- */

int cprof_native_init(void)
{
    if (eval_end != 0)
        return 0;
    /* An exported function: dladdr1 gives its symbol, and the symbol its size. */
    void *addr = cprof_frames_eval_loop();
    Dl_info info;
    const ElfW(Sym) *sym = NULL;
    if (addr == NULL || dladdr1(addr, &info, (void **)&sym, RTLD_DL_SYMENT) == 0 || sym == NULL ||
        sym->st_size == 0) {
        PyErr_SetString(PyExc_RuntimeError,
                        "native stacks: cannot find the size of _PyEval_EvalFrameDefault "
                        "in this Python's symbol table");
        return -1;
    }
    if (unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD) != 0) {
        PyErr_SetString(PyExc_RuntimeError, "native stacks: libunwind refused its cache");
        return -1;
    }
    eval_start = (uintptr_t)info.dli_saddr;
    eval_end = eval_start + sym->st_size;
    return 0;
}

/* --- signal-safe section ---------------------------------------------------- */

size_t cprof_native_unwind_sigsafe(void *ucontext, cprof_cframe_t *frames, size_t max)
{
    unw_cursor_t cursor;
    if (ucontext == NULL ||
        unw_init_local2(&cursor, (unw_context_t *)ucontext, UNW_INIT_SIGNAL_FRAME) != 0)
        return 0;
    size_t n = 0;
    do {
        unw_word_t ip, sp;
        if (unw_get_reg(&cursor, UNW_REG_IP, &ip) != 0 || ip == 0 ||
            unw_get_reg(&cursor, UNW_REG_SP, &sp) != 0)
            break;
        /* A caller's address is where its call returns to: step back into
         * the call, so that the address belongs to the calling function. */
        frames[n].pc = n == 0 ? (uintptr_t)ip : (uintptr_t)ip - 1;
        frames[n].sp = (uintptr_t)sp;
        n++;
    } while (n < max && unw_step(&cursor) > 0);
    return n;
}

static int in_eval_loop_sigsafe(uintptr_t pc)
{
    return pc >= eval_start && pc < eval_end;
}

/* Whether C frame i runs the call whose mark is py[mark]. */
static int runs_call_sigsafe(const cprof_cframe_t *c, size_t n, size_t i, const cprof_frame_t *mark)
{
    uintptr_t entry = (uintptr_t)mark->code;
    if (entry == 0)
        return in_eval_loop_sigsafe(c[i].pc);
    /* Frame i's locals lie between its stack pointer and its caller's. */
    return entry >= c[i].sp && (i + 1 == n || entry < c[i + 1].sp);
}

size_t cprof_native_merge_sigsafe(const cprof_cframe_t *c, size_t n, const cprof_frame_t *py,
                                  size_t n_py, cprof_frame_t *out, size_t max, size_t *total)
{
    size_t stored = 0, seen = 0, next_py = 0, mark = 0;
    while (mark < n_py && !(py[mark].flags & CPROF_FRAME_CALL_END))
        mark++;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && (mark >= n_py || !runs_call_sigsafe(c, n, i, &py[mark]))) {
            if (stored < max)
                out[stored++] = (cprof_frame_t){(PyObject *)c[i].pc, 0, CPROF_FRAME_NATIVE};
            seen++;
            continue;
        }
        /* A call of the interpreter loop (or, past the C stack's end, every
         * call left): its Python frames, up to the call's end mark. */
        for (; next_py < n_py; next_py++) {
            if (py[next_py].flags & CPROF_FRAME_CALL_END) {
                if (i < n) {
                    next_py++;
                    break;
                }
                continue;
            }
            if (stored < max)
                out[stored++] = py[next_py];
            seen++;
        }
        mark = next_py;
        while (mark < n_py && !(py[mark].flags & CPROF_FRAME_CALL_END))
            mark++;
    }
    *total = seen;
    return stored;
}
