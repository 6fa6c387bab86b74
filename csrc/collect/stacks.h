/* stacks: turns captured records into interned functions, locations, stacks
 * and aggregated samples. All functions need the GIL (they read code objects
 * and hold references to their name strings), none is signal-safe.
 */
#ifndef CPROF_STACKS_H
#define CPROF_STACKS_H

#include <Python.h>
#include <stdint.h>

#include "collect/ringbuf.h"
#include "collect/table.h"

/* Synthetic functions, always present at these indices. */
enum {
    CPROF_FUNC_TRUNCATED = 0,   /* "<truncated>": root of a stack cut at max_depth */
    CPROF_FUNC_NO_PYTHON = 1,   /* "<no Python frame>": thread without Python frames */
    CPROF_FUNC_LOST = 2,        /* "<lost>": samples dropped by a full buffer */
    CPROF_FUNC_UNSAMPLED = 3,   /* "<unsampled>": CPU of a thread that ended unsampled */
    CPROF_FUNC_PROFILER = 4,    /* "<cprof>": time in cprof's own drain and hook */
    CPROF_FUNC_STOPPED = 5,     /* "<sampling stopped>": after SIGPROF was taken over */
    CPROF_FUNC_FIRST_REAL = 6,
};

typedef struct {
    PyObject *qualname, *name, *filename;  /* strong references */
    int firstlineno;
} cprof_func_t;

/* A location: a function's line, or (func CPROF_FUNC_NATIVE) a machine
 * address, named later from the symbols of its file (cprof/elfsym.py). */
typedef struct {
    uint32_t func;
    int32_t line;
    uint64_t address;
} cprof_loc_t;

#define CPROF_FUNC_NATIVE UINT32_MAX

typedef struct {
    uint32_t stack;          /* index into stacks */
    uint32_t tid;
    uint64_t label_set;
    uintptr_t coroutine;
    int64_t count;
    int64_t weight_ns;
} cprof_agg_t;

typedef struct {
    cprof_func_t *funcs;
    size_t n_funcs, cap_funcs;
    cprof_loc_t *locs;
    size_t n_locs, cap_locs;
    uint32_t *stack_pool;    /* location indices of every stack, leaf first */
    size_t pool_len, pool_cap;
    uint32_t *stack_start, *stack_len;
    size_t n_stacks, cap_stacks;
    cprof_agg_t *aggs;
    size_t n_aggs, cap_aggs;
    cprof_table_t code_index, loc_index, stack_index, agg_index;
    cprof_table_t last_agg;  /* tid -> the aggregate of its latest sample */
    uint32_t *scratch;       /* one stack being resolved */
    size_t scratch_cap;
} cprof_stacks_t;

/* 0, or -1 with a Python exception set. */
int cprof_stacks_init(cprof_stacks_t *st, size_t max_depth);
void cprof_stacks_clear(cprof_stacks_t *st);

/* Resolve one record and add it to the aggregates; a tail record
 * (CPROF_RECORD_TAIL) adds its time to its thread's latest sample instead, or
 * to <unsampled> when the thread has none, or (CPROF_RECORD_STOPPED too) to
 * <sampling stopped>; with CPROF_RECORD_REPEAT it counts as its repeats samples too. A
 * CPROF_RECORD_STACK record becomes its thread's latest with no sample (an
 * aggregate may then hold no sample at all: exports skip those). 0, or -1 on memory error. */
int cprof_stacks_add(cprof_stacks_t *st, const cprof_record_t *rec);

/* Intern the stack of one record (depth 0 gives <no Python frame>, or
 * <cprof> for CPROF_RECORD_PROFILER; a truncated one ends in <truncated>)
 * without adding a sample: its index in stacks, or -1 on memory error. Its
 * code objects must be alive. */
long cprof_stacks_intern(cprof_stacks_t *st, const cprof_record_t *rec);

/* Add count samples of one synthetic function (e.g. CPROF_FUNC_LOST). */
int cprof_stacks_add_synthetic(cprof_stacks_t *st, uint32_t func, int64_t count,
                               int64_t weight_ns);

/* Resolve, in place, the frames of rec that run code: they then carry a
 * location index instead of the code pointer (see cprof_stacks_add). */
int cprof_stacks_resolve_code_in(cprof_stacks_t *st, cprof_record_t *rec, PyObject *code);

/* The names of the C callables frames may hold (CPROF_FRAME_C_CALL): a
 * dict {address: (name, short name, file, callable)}. GIL held. 0, or -1
 * with a Python exception set. */
int cprof_stacks_set_callables(PyObject *names);

/* Forget what is cached about a code object that is about to die. */
void cprof_stacks_forget_code(cprof_stacks_t *st, PyObject *code);

#endif
