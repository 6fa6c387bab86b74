/* stacks: interning and aggregation of resolved samples (GIL held). */
#include "collect/stacks.h"

#include <stdlib.h>
#include <string.h>

/* Grow an array of elem-byte items to hold one more. */

/* --- functions and locations ------------------------------------------------------- */

static int add_func(cprof_stacks_t *st, PyObject *qualname, PyObject *name, PyObject *filename,
                    int firstlineno)
{
    if (cprof_grow((void **)&st->funcs, &st->cap_funcs, st->n_funcs, sizeof *st->funcs) < 0)
        return -1;
    cprof_func_t *f = &st->funcs[st->n_funcs];
    f->qualname = Py_NewRef(qualname);
    f->name = Py_NewRef(name);
    f->filename = Py_NewRef(filename);
    f->firstlineno = firstlineno;
    return (int)st->n_funcs++;
}

static int add_synthetic_func(cprof_stacks_t *st, const char *text)
{
    PyObject *s = PyUnicode_FromString(text);
    if (s == NULL)
        return -1;
    PyObject *empty = PyUnicode_FromString("");
    int rc = empty == NULL ? -1 : add_func(st, s, s, empty, 0);
    Py_XDECREF(empty);
    Py_DECREF(s);
    return rc;
}

/* The catalogue's names of the C callables (collect/leaf.py): a tuple of
 * its entries (name, short name, file, callable), which holds the callables
 * alive, so that an address keeps its name, and a table from each callable's
 * address to its entry. Set with the GIL held; read without allocating
 * anything, as a heap profiler's allocator hook interns stacks (an
 * allocation there could re-enter another hook, tracemalloc's, that holds
 * its lock). */
static PyObject *callable_entries;
static cprof_table_t callable_index;

int cprof_stacks_set_callables(PyObject *names)
{
    cprof_table_t index;
    if (cprof_table_init(&index) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    PyObject *entries = PyTuple_New(PyDict_Size(names));
    PyObject *key, *value;
    Py_ssize_t pos = 0, n = 0;
    while (entries != NULL && PyDict_Next(names, &pos, &key, &value)) {
        void *address = PyLong_AsVoidPtr(key);
        if (address == NULL || !PyTuple_Check(value) || PyTuple_GET_SIZE(value) != 4 ||
            cprof_table_reserve(&index) < 0) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "leaf_set: names must map addresses to "
                                "(name, short name, file, callable)");
            Py_CLEAR(entries);
            break;
        }
        PyTuple_SET_ITEM(entries, n, Py_NewRef(value));
        if (cprof_table_find(&index, (uint64_t)(uintptr_t)address) < 0)
            cprof_table_put_unchecked(&index, (uint64_t)(uintptr_t)address, (uint32_t)n);
        n++;
    }
    if (entries == NULL) {
        cprof_table_free(&index);
        return -1;
    }
    cprof_table_free(&callable_index);
    callable_index = index;
    Py_XSETREF(callable_entries, entries);
    return 0;
}

/* A C callable's function: a negative first line tells symbols.py that its
 * names are whole already. */
static int add_callable_func(cprof_stacks_t *st, PyObject *callable)
{
    long slot = callable_entries == NULL
                    ? -1
                    : cprof_table_find(&callable_index, (uint64_t)(uintptr_t)callable);
    if (slot < 0) {
        PyErr_SetString(PyExc_RuntimeError, "cprof: a C callable left the catalogue");
        return -1;
    }
    PyObject *entry = PyTuple_GET_ITEM(callable_entries, callable_index.values[slot]);
    PyObject *name = PyTuple_GET_ITEM(entry, 0), *short_name = PyTuple_GET_ITEM(entry, 1);
    PyObject *file = PyTuple_GET_ITEM(entry, 2);
    if (!PyUnicode_Check(name) || !PyUnicode_Check(short_name) || !PyUnicode_Check(file)) {
        PyErr_SetString(PyExc_TypeError, "cprof: a C callable's names must be strings");
        return -1;
    }
    return add_func(st, name, short_name, file, -1);
}

/* The function of a code object, or (callable) of a C callable of the
 * catalogue: both cached by address. */
static long func_of(cprof_stacks_t *st, PyObject *object, int callable)
{
    uint64_t key = (uint64_t)(uintptr_t)object;
    cprof_table_t *t = &st->code_index;
    long slot = cprof_table_find(t, key);
    if (slot >= 0)
        return t->values[slot];
    PyCodeObject *co = (PyCodeObject *)object;
    int f = callable ? add_callable_func(st, object)
                     : add_func(st, co->co_qualname, co->co_name, co->co_filename,
                                co->co_firstlineno);
    if (f < 0 || cprof_table_reserve(t) < 0)
        return -1;
    cprof_table_put_unchecked(t, key, (uint32_t)f);
    return f;
}

static long location_at(cprof_stacks_t *st, uint32_t func, int32_t line, uint64_t address)
{
    uint64_t key = cprof_table_mix((((uint64_t)func << 32) | (uint32_t)line) ^
                                   cprof_table_mix(address));
    cprof_table_t *t = &st->loc_index;
    for (size_t slot = cprof_table_slot(t, key); t->keys[slot] != 0;
         slot = cprof_table_next(t, slot)) {
        if (t->keys[slot] != key)
            continue;
        cprof_loc_t *l = &st->locs[t->values[slot]];
        if (l->func == func && l->line == line && l->address == address)
            return t->values[slot];
    }
    if (cprof_grow((void **)&st->locs, &st->cap_locs, st->n_locs, sizeof *st->locs) < 0 ||
        cprof_table_reserve(t) < 0)
        return -1;
    st->locs[st->n_locs] = (cprof_loc_t){func, line, address};
    cprof_table_put_unchecked(t, key, (uint32_t)st->n_locs);
    return (long)st->n_locs++;
}

static long location(cprof_stacks_t *st, uint32_t func, int32_t line)
{
    return location_at(st, func, line, 0);
}

/* The location of a captured frame: code NULL means already resolved; a
 * native frame's code is its address. */
static long frame_location(cprof_stacks_t *st, const cprof_frame_t *fr)
{
    if (fr->flags & CPROF_FRAME_NATIVE)
        return location_at(st, CPROF_FUNC_NATIVE, 0, (uint64_t)(uintptr_t)fr->code);
    if (fr->code == NULL)
        return fr->lasti;
    int callable = (fr->flags & CPROF_FRAME_C_CALL) != 0;
    long func = func_of(st, fr->code, callable);
    if (func < 0)
        return -1;
    return location(st, (uint32_t)func, callable ? 0 : cprof_frames_line(fr->code, fr->lasti));
}

/* --- stacks and aggregates -------------------------------------------------------- */

static long intern_stack(cprof_stacks_t *st, const uint32_t *locs, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ n;
    for (size_t i = 0; i < n; i++)
        h = (h ^ locs[i]) * 0x100000001b3ULL;
    uint64_t key = cprof_table_mix(h);
    cprof_table_t *t = &st->stack_index;
    for (size_t slot = cprof_table_slot(t, key); t->keys[slot] != 0;
         slot = cprof_table_next(t, slot)) {
        if (t->keys[slot] != key)
            continue;
        uint32_t s = t->values[slot];
        if (st->stack_len[s] == n &&
            memcmp(st->stack_pool + st->stack_start[s], locs, n * sizeof *locs) == 0)
            return s;
    }
    while (st->pool_len + n > st->pool_cap) {
        size_t bigger = st->pool_cap ? st->pool_cap * 2 : 4096;
        uint32_t *p = realloc(st->stack_pool, bigger * sizeof *p);
        if (p == NULL)
            return -1;
        st->stack_pool = p;
        st->pool_cap = bigger;
    }
    size_t cap = st->cap_stacks;
    if (cprof_grow((void **)&st->stack_start, &cap, st->n_stacks, sizeof *st->stack_start) < 0)
        return -1;
    if (cprof_grow((void **)&st->stack_len, &st->cap_stacks, st->n_stacks,
                   sizeof *st->stack_len) < 0 ||
        cprof_table_reserve(t) < 0)
        return -1;
    memcpy(st->stack_pool + st->pool_len, locs, n * sizeof *locs);
    st->stack_start[st->n_stacks] = (uint32_t)st->pool_len;
    st->stack_len[st->n_stacks] = (uint32_t)n;
    st->pool_len += n;
    cprof_table_put_unchecked(t, key, (uint32_t)st->n_stacks);
    return (long)st->n_stacks++;
}

/* The index of the aggregate the sample went to, or -1 (memory). */
static long aggregate(cprof_stacks_t *st, uint32_t stack, uint32_t tid, uint64_t label_set,
                      uintptr_t coroutine, int64_t count, int64_t weight)
{
    uint64_t key = cprof_table_mix(((uint64_t)stack << 32 | tid) ^ cprof_table_mix(label_set) ^
                                   cprof_table_mix(coroutine));
    cprof_table_t *t = &st->agg_index;
    for (size_t slot = cprof_table_slot(t, key); t->keys[slot] != 0;
         slot = cprof_table_next(t, slot)) {
        if (t->keys[slot] != key)
            continue;
        cprof_agg_t *a = &st->aggs[t->values[slot]];
        if (a->stack == stack && a->tid == tid && a->label_set == label_set &&
            a->coroutine == coroutine) {
            a->count += count;
            a->weight_ns += weight;
            return t->values[slot];
        }
    }
    if (cprof_grow((void **)&st->aggs, &st->cap_aggs, st->n_aggs, sizeof *st->aggs) < 0 ||
        cprof_table_reserve(t) < 0)
        return -1;
    st->aggs[st->n_aggs] = (cprof_agg_t){stack, tid, label_set, coroutine, count, weight};
    cprof_table_put_unchecked(t, key, (uint32_t)st->n_aggs);
    return (long)st->n_aggs++;
}

/* count samples whose stack is the one synthetic function func. */
static int add_synthetic(cprof_stacks_t *st, uint32_t func, uint32_t tid, int64_t count,
                         int64_t weight_ns)
{
    long loc = location(st, func, 0);
    if (loc < 0)
        return -1;
    uint32_t one = (uint32_t)loc;
    long stack = intern_stack(st, &one, 1);
    if (stack < 0)
        return -1;
    return aggregate(st, (uint32_t)stack, tid, 0, 0, count, weight_ns) < 0 ? -1 : 0;
}

static int add_tail(cprof_stacks_t *st, const cprof_record_t *rec)
{
    int64_t count = rec->flags & CPROF_RECORD_REPEAT ? rec->repeats : 0;
    if (rec->flags & CPROF_RECORD_STOPPED)
        return add_synthetic(st, CPROF_FUNC_STOPPED, rec->tid, count, rec->weight_ns);
    cprof_table_t *t = &st->last_agg;
    long slot = cprof_table_find(t, (uint64_t)rec->tid + 1);
    if (slot >= 0) {
        st->aggs[t->values[slot]].count += count;
        st->aggs[t->values[slot]].weight_ns += rec->weight_ns;
        return 0;
    }
    return add_synthetic(st, CPROF_FUNC_UNSAMPLED, rec->tid, count, rec->weight_ns);
}

/* Remember the aggregate a thread's latest sample went to. */
static int note_last(cprof_stacks_t *st, uint32_t tid, uint32_t agg)
{
    cprof_table_t *t = &st->last_agg;
    uint64_t key = (uint64_t)tid + 1;
    long slot = cprof_table_find(t, key);
    if (slot >= 0) {
        t->values[slot] = agg;
        return 0;
    }
    if (cprof_table_reserve(t) < 0)
        return -1;
    cprof_table_put_unchecked(t, key, agg);
    return 0;
}

/* The end of the run of candidates starting at frame i. */
static uint32_t candidates_end(const cprof_record_t *rec, uint32_t i)
{
    while (i < rec->depth && (rec->frames[i].flags & CPROF_FRAME_CANDIDATE))
        i++;
    return i;
}

/* Of the candidates [i, end), the one the call of the frame after them
 * takes its callable from (frames.h), or -1: none does, or that frame is
 * gone (truncated, or already resolved as its code died). */
static long chosen_candidate(const cprof_record_t *rec, uint32_t i, uint32_t end)
{
    if (end >= rec->depth)
        return -1;
    const cprof_frame_t *caller = &rec->frames[end];
    if (caller->code == NULL || (caller->flags & (CPROF_FRAME_NATIVE | CPROF_FRAME_C_CALL)))
        return -1;
    unsigned slot, other;
    if (cprof_frames_call_place(caller->code, caller->lasti, &slot, &other) != 1)
        return -1;
    for (uint32_t k = i; k < end; k++)
        if ((unsigned)rec->frames[k].lasti == slot)
            return k;
    for (uint32_t k = i; k < end; k++)
        if ((unsigned)rec->frames[k].lasti == other &&
            (rec->frames[k].flags & CPROF_FRAME_BELOW_NULL))
            return k;
    return -1;
}

long cprof_stacks_intern(cprof_stacks_t *st, const cprof_record_t *rec)
{
    size_t n = 0;
    if (rec->depth == 0) {
        uint32_t func = rec->flags & CPROF_RECORD_PROFILER ? CPROF_FUNC_PROFILER
                                                             : CPROF_FUNC_NO_PYTHON;
        long loc = location(st, func, 0);
        if (loc < 0)
            return -1;
        st->scratch[n++] = (uint32_t)loc;
    }
    for (uint32_t i = 0; i < rec->depth; i++) {
        const cprof_frame_t *fr = &rec->frames[i];
        if (fr->flags & CPROF_FRAME_CANDIDATE) {
            uint32_t end = candidates_end(rec, i);
            long k = chosen_candidate(rec, i, end);
            i = end - 1;
            if (k < 0)
                continue;
            fr = &rec->frames[k];
        }
        if ((fr->flags & CPROF_FRAME_NO_PLACES) && fr->code != NULL) {
            unsigned slot, other;  /* kept for the code's next samples */
            (void)cprof_frames_call_place(fr->code, fr->lasti, &slot, &other);
        }
        long loc = frame_location(st, fr);
        if (loc < 0)
            return -1;
        st->scratch[n++] = (uint32_t)loc;
    }
    if (rec->total_depth > rec->depth) {
        long loc = location(st, CPROF_FUNC_TRUNCATED, 0);
        if (loc < 0)
            return -1;
        st->scratch[n++] = (uint32_t)loc;
    }
    return intern_stack(st, st->scratch, n);
}

int cprof_stacks_add(cprof_stacks_t *st, const cprof_record_t *rec)
{
    if (rec->flags & CPROF_RECORD_TAIL)
        return rec->weight_ns > 0 ? add_tail(st, rec) : 0;
    long stack = cprof_stacks_intern(st, rec);
    if (stack < 0)
        return -1;
    int64_t count = rec->flags & CPROF_RECORD_STACK ? 0 : 1;
    long agg = aggregate(st, (uint32_t)stack, rec->tid, rec->label_set, rec->coroutine, count,
                         rec->weight_ns);
    return agg < 0 ? -1 : note_last(st, rec->tid, (uint32_t)agg);
}

int cprof_stacks_add_synthetic(cprof_stacks_t *st, uint32_t func, int64_t count,
                               int64_t weight_ns)
{
    return add_synthetic(st, func, 0, count, weight_ns);
}

int cprof_stacks_resolve_code_in(cprof_stacks_t *st, cprof_record_t *rec, PyObject *code)
{
    for (uint32_t i = 0; i < rec->depth; i++) {
        cprof_frame_t *fr = &rec->frames[i];
        if (fr->flags & CPROF_FRAME_CANDIDATE) {
            /* Chosen while the code they belong to can still be read: the
             * one kept becomes a plain C callable frame, the others
             * candidates of no slot. */
            uint32_t end = candidates_end(rec, i);
            if (end < rec->depth && rec->frames[end].code == code) {
                long k = chosen_candidate(rec, i, end);
                for (uint32_t j = i; j < end; j++) {
                    if ((long)j == k)
                        rec->frames[j].flags &= ~(CPROF_FRAME_CANDIDATE | CPROF_FRAME_BELOW_NULL);
                    else
                        rec->frames[j].lasti = -1;
                }
            }
            i = end - 1;
            continue;
        }
        if (fr->code != code || (fr->flags & (CPROF_FRAME_NATIVE | CPROF_FRAME_C_CALL)))
            continue;
        long loc = frame_location(st, fr);
        if (loc < 0)
            return -1;
        fr->code = NULL;
        fr->lasti = (int32_t)loc;
    }
    return 0;
}

void cprof_stacks_forget_code(cprof_stacks_t *st, PyObject *code)
{
    if (st->code_index.keys != NULL)
        cprof_table_remove(&st->code_index, (uint64_t)(uintptr_t)code);
}

int cprof_stacks_init(cprof_stacks_t *st, size_t max_depth)
{
    memset(st, 0, sizeof *st);
    st->scratch_cap = max_depth + 2;
    st->scratch = malloc(st->scratch_cap * sizeof *st->scratch);
    if (st->scratch == NULL || cprof_table_init(&st->code_index) < 0 ||
        cprof_table_init(&st->loc_index) < 0 || cprof_table_init(&st->stack_index) < 0 ||
        cprof_table_init(&st->agg_index) < 0 || cprof_table_init(&st->last_agg) < 0) {
        cprof_stacks_clear(st);
        PyErr_NoMemory();
        return -1;
    }
    if (add_synthetic_func(st, "<truncated>") != CPROF_FUNC_TRUNCATED ||
        add_synthetic_func(st, "<no Python frame>") != CPROF_FUNC_NO_PYTHON ||
        add_synthetic_func(st, "<lost>") != CPROF_FUNC_LOST ||
        add_synthetic_func(st, "<unsampled>") != CPROF_FUNC_UNSAMPLED ||
        add_synthetic_func(st, "<cprof>") != CPROF_FUNC_PROFILER ||
        add_synthetic_func(st, "<sampling stopped>") != CPROF_FUNC_STOPPED) {
        cprof_stacks_clear(st);
        if (!PyErr_Occurred())
            PyErr_NoMemory();
        return -1;
    }
    return 0;
}

void cprof_stacks_clear(cprof_stacks_t *st)
{
    for (size_t i = 0; i < st->n_funcs; i++) {
        Py_DECREF(st->funcs[i].qualname);
        Py_DECREF(st->funcs[i].name);
        Py_DECREF(st->funcs[i].filename);
    }
    free(st->funcs);
    free(st->locs);
    free(st->stack_pool);
    free(st->stack_start);
    free(st->stack_len);
    free(st->aggs);
    free(st->scratch);
    cprof_table_free(&st->code_index);
    cprof_table_free(&st->loc_index);
    cprof_table_free(&st->stack_index);
    cprof_table_free(&st->agg_index);
    cprof_table_free(&st->last_agg);
    memset(st, 0, sizeof *st);
}
