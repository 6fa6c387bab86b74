/* heap: Go's heap profile for Python, through the allocator hooks.
 *
 * cprof wraps the allocators of the three domains (RAW, MEM, OBJ) and, when
 * asked, NumPy's default data allocator. Each thread counts down the bytes it
 * allocates from an exponentially distributed start whose mean is the rate
 * (Go's MemProfileRate): the allocation that crosses zero is sampled, whole.
 * A sampled allocation's stack goes into a bucket per (stack, size) that
 * counts allocations and frees; its address goes into a live table so that
 * its free is seen. Everything else costs a thread-local countdown on
 * allocation and one bit test on free.
 *
 * Hooks follow the rules in docs/ARCHITECTURE.md: they wrap what was installed before (so
 * tracemalloc and others keep working, in either order), a thread-local flag
 * stops re-entry (an object allocation that falls through to the raw domain
 * counts once), tables live in libc memory the hooks do not see, and the
 * hooks stay callable for good once installed, so a thread inside one while
 * profiling stops is never left with a dangling pointer.
 *
 * Control functions need the GIL. Stacks of allocations made with the GIL
 * held are resolved at once; those made on the raw domain by a thread without
 * the GIL wait (raw frames) until a GIL holder resolves them, at the latest
 * before any code object dies.
 */
#ifndef CPROF_HEAP_H
#define CPROF_HEAP_H

#include <Python.h>
#include <stdint.h>

#include "common/errors.h"
#include "collect/stacks.h"

#define CPROF_HEAP_MAX_DEPTH 256

typedef struct {
    int64_t rate;            /* mean bytes between samples; 1 samples everything */
    size_t max_depth;        /* frames kept per stack, at most CPROF_HEAP_MAX_DEPTH */
} cprof_heap_config_t;

/* One (stack, size) bucket: what was sampled there, not yet scaled. */
typedef struct {
    uint32_t stack;          /* index into the snapshot's stacks */
    uint64_t size;           /* bytes of each allocation */
    int64_t allocs, frees;   /* sampled allocations, and of them those freed */
} cprof_heap_bucket_t;

typedef struct {
    uint64_t sampled;        /* allocations sampled */
    uint64_t live;           /* of them, still allocated */
    uint64_t dropped;        /* sampled, but not recorded: out of memory */
    uint64_t deferred;       /* stacks taken without the GIL, resolved later */
    int hooks_lost;          /* someone removed cprof's hooks from a chain */
    int numpy;               /* NumPy's data allocator is wrapped */
} cprof_heap_stats_t;

/* Start sampling allocations. CPROF_E_BUSY while a heap profile runs. GIL
 * held. 0, or a negative code with err filled. */
int cprof_heap_start(const cprof_heap_config_t *cfg, cprof_error_t *err);

/* Wrap the data allocator of NumPy's default handler too. api is NumPy's C
 * API table (the pointer in numpy's _ARRAY_API capsule). A profile must be
 * running; it is unwrapped when the profile stops. GIL held. 0, or a
 * negative code with err filled. */
int cprof_heap_wrap_numpy(void **api, cprof_error_t *err);

/* Call visit with the running profile's tables: its stacks (interned
 * functions, locations and stacks, see stacks.h), its buckets and its stats.
 * Nothing is sampled on this thread meanwhile, and the garbage collector is
 * paused. GIL held. Returns what visit returns, or CPROF_E_BUSY (with err)
 * when no heap profile runs. */
int cprof_heap_snapshot(int (*visit)(const cprof_stacks_t *, const cprof_heap_bucket_t *,
                                     size_t, const cprof_heap_stats_t *, void *),
                        void *arg, cprof_error_t *err);

/* Stop sampling and forget the tables. Hooks that are still the top of their
 * chain are removed; one that something else wrapped since stays, passing
 * calls through. GIL held. 0, or CPROF_E_BUSY when none runs. */
int cprof_heap_stop(cprof_error_t *err);

/* Whether a heap profile is running. */
int cprof_heap_running(void);

/* In a child after fork (GIL held): stop without touching what other threads
 * of the parent held, so that the child can start its own. */
void cprof_heap_after_fork_child(void);

#endif
