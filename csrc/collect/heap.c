/* heap: sampled allocator hooks and the tables behind Go's heap profile. */
#include "collect/heap.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "collect/frames.h"
#include "collect/table.h"

/* NumPy's data allocator handler, version 1 (numpy/ndarraytypes.h, NEP 49):
 * its free takes the size too. */
typedef struct {
    void *ctx;
    void *(*malloc)(void *ctx, size_t size);
    void *(*calloc)(void *ctx, size_t nelem, size_t elsize);
    void *(*realloc)(void *ctx, void *ptr, size_t new_size);
    void (*free)(void *ctx, void *ptr, size_t size);
} numpy_allocator_t;

typedef struct {
    char name[127];
    uint8_t version;
    numpy_allocator_t allocator;
} numpy_handler_t;

/* Slots in NumPy's C API table: PyArray_GetNDArrayCFeatureVersion, and
 * PyDataMem_DefaultHandler, which exists from feature version 0xf (1.22). */
#define NUMPY_API_FEATURE_VERSION 211
#define NUMPY_API_DEFAULT_HANDLER 306
#define NUMPY_1_22_FEATURE_VERSION 0xfu

enum { RAW = 0, MEM = 1, OBJ = 2, N_DOMAINS = 3 };
static const PyMemAllocatorDomain domain_ids[N_DOMAINS] = {
    PYMEM_DOMAIN_RAW, PYMEM_DOMAIN_MEM, PYMEM_DOMAIN_OBJ};

typedef struct {
    PyMemAllocatorEx prev;   /* what cprof's hooks call */
    PyMemAllocatorEx ours;
    int installed;           /* ours is in the domain's chain */
} domain_t;

/* Written by start and stop (GIL held) while no hook of theirs runs. */
static domain_t domains[N_DOMAINS];
static struct {
    numpy_handler_t *handler;
    numpy_allocator_t prev;
    int wrapped;
} numpy_hook;

/* --- state the hooks read without a lock ------------------------------------- */

/* Odd while a profile runs; each start and stop moves it on, so a thread's
 * countdown from an older profile is drawn again. */
static _Atomic uint64_t epoch = 2;
static _Atomic int64_t sample_rate;
static _Atomic size_t sample_depth;

/* One bit per hash of an address, set while some sampled allocation with that
 * hash is live, so that a free whose bit is clear, nearly every free, needs
 * nothing more. Read by every free without a lock; written under lock, where
 * bloom_count says how many live entries share each bit. */
#define BLOOM_LOG2 17
#define BLOOM_BITS (1u << BLOOM_LOG2)
#define BLOOM_WORDS (BLOOM_BITS / 64)
static _Atomic uint64_t bloom[BLOOM_WORDS];
static uint32_t bloom_count[BLOOM_BITS];

struct thread_state {
    int busy;                /* in a hook or in cprof's own work: pass through */
    int probing, probe_reached;
    void *probe_seen;        /* the block the probed hook saw */
    int locked;              /* this thread holds lock */
    uint64_t epoch;          /* the profile countdown belongs to (odd), or 0 */
    int64_t countdown;       /* bytes until the next sampled allocation */
    uint64_t rng;
};
static __thread struct thread_state tls __attribute__((tls_model("initial-exec")));

/* --- tables: lock protects all of H ------------------------------------------ */

/* A bucket's stack is an index into H.stacks, or DEFERRED | an index into
 * H.deferred while its frames wait for the GIL. */
#define DEFERRED 0x80000000u

typedef struct {
    cprof_record_t *rec;     /* raw frames, NULL once resolved */
    uint32_t stack;          /* the resolved stack, or UINT32_MAX when lost */
} deferred_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    int running;
    cprof_stacks_t stacks;
    cprof_heap_bucket_t *buckets;
    size_t n_buckets, cap_buckets;
    cprof_table_t bucket_index;  /* hash of (stack, size) -> bucket */
    cprof_table_t live;          /* address -> bucket of a sampled live allocation */
    deferred_t *deferred;
    size_t n_deferred, cap_deferred, first_unresolved;
    cprof_heap_stats_t stats;
} H;

static void lock_tables(void)
{
    pthread_mutex_lock(&lock);
    tls.locked = 1;
}

static void unlock_tables(void)
{
    tls.locked = 0;
    pthread_mutex_unlock(&lock);
}


static uint64_t bloom_bit(const void *p)
{
    return ((uint64_t)(uintptr_t)p >> 4) * 0x9e3779b97f4a7c15ULL >> (64 - BLOOM_LOG2);
}

static inline int maybe_live(const void *p)
{
    uint64_t bit = bloom_bit(p);
    return (int)((atomic_load_explicit(&bloom[bit >> 6], memory_order_relaxed) >> (bit & 63)) & 1);
}

static void bloom_clear(void)
{
    for (size_t i = 0; i < BLOOM_WORDS; i++)
        atomic_store_explicit(&bloom[i], 0, memory_order_relaxed);
    memset(bloom_count, 0, sizeof bloom_count);
}

static void bloom_add_unlocked(const void *p)
{
    uint64_t bit = bloom_bit(p);
    if (bloom_count[bit]++ == 0)
        atomic_fetch_or_explicit(&bloom[bit >> 6], 1ULL << (bit & 63), memory_order_relaxed);
}

/* Allocators reuse a freed address at once (pymalloc's free lists are LIFO):
 * a bit left set after its allocation was freed would send every later free
 * of that address down the slow path. */
static void bloom_remove_unlocked(const void *p)
{
    uint64_t bit = bloom_bit(p);
    if (--bloom_count[bit] == 0)
        atomic_fetch_and_explicit(&bloom[bit >> 6], ~(1ULL << (bit & 63)),
                                  memory_order_relaxed);
}

static long bucket_unlocked(uint32_t stack, uint64_t size)
{
    uint64_t key = cprof_table_mix(((uint64_t)stack << 32) ^ cprof_table_mix(size));
    cprof_table_t *t = &H.bucket_index;
    for (size_t slot = cprof_table_slot(t, key); t->keys[slot] != 0;
         slot = cprof_table_next(t, slot)) {
        if (t->keys[slot] != key)
            continue;
        cprof_heap_bucket_t *b = &H.buckets[t->values[slot]];
        if (b->stack == stack && b->size == size)
            return t->values[slot];
    }
    if (cprof_grow((void **)&H.buckets, &H.cap_buckets, H.n_buckets, sizeof *H.buckets) < 0 ||
        cprof_table_reserve(t) < 0)
        return -1;
    H.buckets[H.n_buckets] = (cprof_heap_bucket_t){stack, size, 0, 0};
    cprof_table_put_unchecked(t, key, (uint32_t)H.n_buckets);
    return (long)H.n_buckets++;
}

/* Record address p as live in bucket b; an entry left for the same address
 * (its free went unseen) counts as freed. 0, or -1 when out of memory. */
static int live_put_unlocked(void *p, uint32_t b)
{
    uint64_t key = (uint64_t)(uintptr_t)p;
    long slot = cprof_table_find(&H.live, key);
    if (slot >= 0) {
        H.buckets[H.live.values[slot]].frees++;
        H.live.values[slot] = b;
        return 0;
    }
    if (cprof_table_reserve(&H.live) < 0)
        return -1;
    cprof_table_put_unchecked(&H.live, key, b);
    bloom_add_unlocked(p);
    return 0;
}

/* Take p out of the live table: its bucket, or -1 when p was not sampled. */
static long live_take_unlocked(void *p)
{
    uint64_t key = (uint64_t)(uintptr_t)p;
    long slot = cprof_table_find(&H.live, key);
    if (slot < 0)
        return -1;
    long b = H.live.values[slot];
    cprof_table_remove(&H.live, key);
    bloom_remove_unlocked(p);
    return b;
}

/* Keep a GIL-less sample's raw frames for later: its stack reference. */
static long defer_unlocked(const cprof_record_t *rec)
{
    size_t bytes = sizeof *rec + rec->depth * sizeof rec->frames[0];
    if (H.n_deferred >= DEFERRED ||
        cprof_grow((void **)&H.deferred, &H.cap_deferred, H.n_deferred, sizeof *H.deferred) < 0)
        return -1;
    cprof_record_t *copy = malloc(bytes);
    if (copy == NULL)
        return -1;
    memcpy(copy, rec, bytes);
    H.deferred[H.n_deferred] = (deferred_t){copy, UINT32_MAX};
    return (long)(DEFERRED | H.n_deferred++);
}

/* Intern the stacks waiting for the GIL. GIL held: their code objects are
 * alive (their threads' frames held them when captured, and any code death
 * since would have resolved them first). */
static void resolve_deferred_unlocked(void)
{
    for (size_t i = H.first_unresolved; i < H.n_deferred; i++) {
        deferred_t *d = &H.deferred[i];
        if (d->rec == NULL)
            continue;
        long stack = cprof_stacks_intern(&H.stacks, d->rec);
        if (stack < 0)
            H.stats.dropped++;
        else
            d->stack = (uint32_t)stack;
        free(d->rec);
        d->rec = NULL;
    }
    H.first_unresolved = H.n_deferred;
}

static void free_tables_unlocked(void)
{
    for (size_t i = 0; i < H.n_deferred; i++)
        free(H.deferred[i].rec);
    free(H.deferred);
    free(H.buckets);
    cprof_table_free(&H.bucket_index);
    cprof_table_free(&H.live);
    cprof_stacks_clear(&H.stacks);
    memset(&H, 0, sizeof H);
}

/* --- the sampled path ---------------------------------------------------------- */

static uint64_t next_random(struct thread_state *t)
{
    uint64_t x = t->rng;  /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    t->rng = x;
    return x * 0x2545f4914f6cdd1dULL;
}

/* Bytes until the next sample: exponential with mean rate, as Go draws it. */
static int64_t draw(struct thread_state *t, int64_t rate)
{
    if (rate <= 1)
        return 0;
    if (t->rng == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        t->rng = cprof_table_mix((uint64_t)syscall(SYS_gettid) << 32 ^
                                 (uint64_t)ts.tv_nsec ^ (uint64_t)(uintptr_t)t);
    }
    double u = (double)(next_random(t) >> 11) * 0x1.0p-53;  /* [0, 1) */
    double bytes = -log1p(-u) * (double)rate;
    return bytes >= 0x1.0p62 ? INT64_C(1) << 62 : (int64_t)bytes;
}

/* Record allocation p of size bytes: its stack, bucket and live entry. */
static void record(void *p, size_t size, int gil)
{
    _Alignas(cprof_record_t) unsigned char buf[sizeof(cprof_record_t) +
                                                CPROF_HEAP_MAX_DEPTH * sizeof(cprof_frame_t)];
    cprof_record_t *rec = (cprof_record_t *)buf;
    memset(rec, 0, sizeof *rec);
    PyThreadState *ts = cprof_frames_tstate_sigsafe();
    gil = gil || cprof_frames_holds_gil(ts);
    if (ts != NULL) {
        size_t total = 0;
        void *coroutine;
        size_t depth = atomic_load_explicit(&sample_depth, memory_order_relaxed);
        rec->depth = (uint32_t)cprof_frames_capture_sigsafe(ts, rec->frames, depth, &total,
                                                            &coroutine);
        rec->total_depth = (uint32_t)total;
    }
    lock_tables();
    if (H.running && atomic_load(&epoch) == tls.epoch) {
        long stack = -1, b = -1;
        if (gil) {
            /* An allocation may come while the program raises: interning,
             * which may fail with an exception of its own (memory), leaves
             * the one in flight as it was. */
            cprof_raised_t raised = cprof_frames_set_aside();
            resolve_deferred_unlocked();
            stack = cprof_stacks_intern(&H.stacks, rec);
            cprof_frames_put_back(raised);
        } else {
            stack = defer_unlocked(rec);
        }
        if (stack >= 0)
            b = bucket_unlocked((uint32_t)stack, size);
        if (b < 0 || live_put_unlocked(p, (uint32_t)b) < 0) {
            H.stats.dropped++;
        } else {
            H.buckets[b].allocs++;
            H.stats.sampled++;
            H.stats.deferred += !gil;
        }
    }
    unlock_tables();
}

/* Whether an allocation of size bytes goes unsampled: the thread's countdown
 * stays at or above zero, or no profile runs. False sends it to the slow path
 * (crossed), also when the countdown belongs to an earlier profile. */
static inline int unsampled(size_t size)
{
    struct thread_state *t = &tls;
    uint64_t e = atomic_load_explicit(&epoch, memory_order_relaxed);
    if (t->epoch == e) {
        t->countdown -= (int64_t)size;
        return t->countdown >= 0;
    }
    return (e & 1) == 0;
}

/* Allocation p of size bytes took the countdown below zero, or its countdown
 * belongs to another profile: draw anew, and record p if it is sampled. */
static void crossed(void *p, size_t size, int gil)
{
    struct thread_state *t = &tls;
    if (t->probing) {
        t->probe_reached = 1;
        t->probe_seen = p;
        return;
    }
    uint64_t e = atomic_load(&epoch);
    if ((e & 1) == 0)
        return;
    int64_t rate = atomic_load_explicit(&sample_rate, memory_order_relaxed);
    if (t->epoch != e) {
        t->epoch = e;
        t->countdown = draw(t, rate) - (int64_t)size;
        if (t->countdown >= 0)
            return;
    }
    t->countdown = draw(t, rate);
    if (t->busy || t->locked)
        return;  /* cprof's own allocation */
    t->busy = 1;
    record(p, size, gil);
    t->busy = 0;
}

/* A free that may be of a sampled allocation. Not while this thread is in
 * cprof's own work (it may hold lock). */
static void forget(void *p)
{
    if (tls.busy || tls.locked)
        return;
    lock_tables();
    long b = live_take_unlocked(p);
    if (b >= 0 && (size_t)b < H.n_buckets)
        H.buckets[b].frees++;
    unlock_tables();
}

/* realloc moves p: take its entry out first (nobody else can get the address
 * while it is still allocated), then settle once the outcome is known. */
static long take(void *p)
{
    if (tls.locked)
        return -1;
    lock_tables();
    long b = live_take_unlocked(p);
    unlock_tables();
    return b;
}

static void settle(void *old, long b, int moved)
{
    lock_tables();
    if (H.running && (size_t)b < H.n_buckets) {  /* else the profile stopped meanwhile */
        if (moved)
            H.buckets[b].frees++;
        else if (live_put_unlocked(old, (uint32_t)b) < 0)
            H.stats.dropped++;
    }
    unlock_tables();
}

/* --- the hooks -----------------------------------------------------------------
 * The common case is a tail call to the wrapped allocator after one countdown
 * step (malloc, calloc) or one bit test (free). Only the allocations that
 * cross the countdown, and reallocations of sampled blocks, do more.
 *
 * An object or memory domain allocation over pymalloc's small-object limit is
 * passed on to the raw domain: its hook counts those (below[d] says up to which
 * size domain d counts its own), so each allocation counts once. Over such an
 * allocator, when the raw block is the very block returned (raw_owned[d]),
 * a sampled small block is asked for at the limit plus one byte, so that it
 * too is the raw domain's: pymalloc hands the free of any block it does not
 * own to the raw domain, whose hook sees it, and the object and memory
 * domains need no free hook at all. */

static size_t below[N_DOMAINS] = {SIZE_MAX, SIZE_MAX, SIZE_MAX};
/* Domain d's sampled blocks are asked for over below[d], hence the raw
 * domain's, and its frees are not hooked. */
static int raw_owned[N_DOMAINS];

#define NOINLINE __attribute__((noinline))

/* The size to ask domain d's allocator for, for a sampled block of size. */
static size_t sampled_size(int d, size_t size)
{
    return raw_owned[d] && size <= below[d] ? below[d] + 1 : size;
}

static NOINLINE void *malloc_slow(int d, size_t size, int gil)
{
    const PyMemAllocatorEx *prev = &domains[d].prev;
    tls.busy++;
    void *p = prev->malloc(prev->ctx, sampled_size(d, size));
    tls.busy--;
    if (p != NULL)
        crossed(p, size, gil);
    return p;
}

static inline void *hook_malloc(int d, size_t size, int gil)
{
    const PyMemAllocatorEx *prev = &domains[d].prev;
    if (size > below[d] || unsampled(size))
        return prev->malloc(prev->ctx, size);
    return malloc_slow(d, size, gil);
}

static NOINLINE void *calloc_slow(int d, size_t nelem, size_t elsize, int gil)
{
    const PyMemAllocatorEx *prev = &domains[d].prev;
    size_t size = nelem * elsize, ask = sampled_size(d, size);
    tls.busy++;
    void *p = ask == size ? prev->calloc(prev->ctx, nelem, elsize) : prev->calloc(prev->ctx, 1, ask);
    tls.busy--;
    if (p != NULL)
        crossed(p, size, gil);
    return p;
}

static inline void *hook_calloc(int d, size_t nelem, size_t elsize, int gil)
{
    const PyMemAllocatorEx *prev = &domains[d].prev;
    size_t size;
    if (__builtin_mul_overflow(nelem, elsize, &size) || size > below[d] || unsampled(size))
        return prev->calloc(prev->ctx, nelem, elsize);
    return calloc_slow(d, nelem, elsize, gil);
}

/* realloc of a sampled block, or one that crosses the countdown (counted
 * tells whether the countdown already went below zero for it). */
static NOINLINE void *realloc_slow(int d, void *ptr, size_t size, int gil, int counted)
{
    const PyMemAllocatorEx *prev = &domains[d].prev;
    long b = ptr != NULL && maybe_live(ptr) ? take(ptr) : -1;
    tls.busy += counted;
    void *p = prev->realloc(prev->ctx, ptr, counted ? sampled_size(d, size) : size);
    tls.busy -= counted;
    if (b >= 0)
        settle(ptr, b, p != NULL);
    if (p != NULL && (counted || (size <= below[d] && !unsampled(size))))
        crossed(p, size, gil);
    return p;
}

static inline void *hook_realloc(int d, void *ptr, size_t size, int gil)
{
    const PyMemAllocatorEx *prev = &domains[d].prev;
    /* Over pymalloc, sampled blocks are the raw domain's: its hook moves them. */
    if (!raw_owned[d] && ptr != NULL && maybe_live(ptr))
        return realloc_slow(d, ptr, size, gil, 0);
    if (size > below[d] || unsampled(size))
        return prev->realloc(prev->ctx, ptr, size);
    return realloc_slow(d, ptr, size, gil, 1);
}

static inline void hook_free(int d, void *ptr)
{
    const PyMemAllocatorEx *prev = &domains[d].prev;
    if (ptr != NULL && maybe_live(ptr))
        forget(ptr);
    prev->free(prev->ctx, ptr);
}

/* The raw domain may be called without the GIL; the others never are. */
#define DOMAIN_HOOKS(name, d, gil)                                                       \
    static void *name##_malloc(void *ctx, size_t size)                                   \
    {                                                                                    \
        (void)ctx;                                                                       \
        return hook_malloc(d, size, gil);                                                \
    }                                                                                    \
    static void *name##_calloc(void *ctx, size_t nelem, size_t elsize)                   \
    {                                                                                    \
        (void)ctx;                                                                       \
        return hook_calloc(d, nelem, elsize, gil);                                       \
    }                                                                                    \
    static void *name##_realloc(void *ctx, void *ptr, size_t size)                       \
    {                                                                                    \
        (void)ctx;                                                                       \
        return hook_realloc(d, ptr, size, gil);                                          \
    }                                                                                    \
    static void name##_free(void *ctx, void *ptr)                                        \
    {                                                                                    \
        (void)ctx;                                                                       \
        hook_free(d, ptr);                                                               \
    }

DOMAIN_HOOKS(raw, RAW, 0)
DOMAIN_HOOKS(mem, MEM, 1)
DOMAIN_HOOKS(obj, OBJ, 1)

static const PyMemAllocatorEx hooks[N_DOMAINS] = {
    {NULL, raw_malloc, raw_calloc, raw_realloc, raw_free},
    {NULL, mem_malloc, mem_calloc, mem_realloc, mem_free},
    {NULL, obj_malloc, obj_calloc, obj_realloc, obj_free},
};

/* NumPy's data allocator: called with or without the GIL, never nested. */
static NOINLINE void *np_malloc_slow(size_t size)
{
    const numpy_allocator_t *prev = &numpy_hook.prev;
    void *p = prev->malloc(prev->ctx, size);
    if (p != NULL)
        crossed(p, size, 0);
    return p;
}

static void *np_malloc(void *ctx, size_t size)
{
    (void)ctx;
    const numpy_allocator_t *prev = &numpy_hook.prev;
    if (unsampled(size))
        return prev->malloc(prev->ctx, size);
    return np_malloc_slow(size);
}

static NOINLINE void *np_calloc_slow(size_t nelem, size_t elsize)
{
    const numpy_allocator_t *prev = &numpy_hook.prev;
    void *p = prev->calloc(prev->ctx, nelem, elsize);
    if (p != NULL)
        crossed(p, nelem * elsize, 0);
    return p;
}

static void *np_calloc(void *ctx, size_t nelem, size_t elsize)
{
    (void)ctx;
    const numpy_allocator_t *prev = &numpy_hook.prev;
    size_t size;
    if (__builtin_mul_overflow(nelem, elsize, &size) || unsampled(size))
        return prev->calloc(prev->ctx, nelem, elsize);
    return np_calloc_slow(nelem, elsize);
}

static void *np_realloc(void *ctx, void *ptr, size_t size)
{
    (void)ctx;
    const numpy_allocator_t *prev = &numpy_hook.prev;
    long b = ptr != NULL && maybe_live(ptr) ? take(ptr) : -1;
    void *p = prev->realloc(prev->ctx, ptr, size);
    if (b >= 0)
        settle(ptr, b, p != NULL);
    if (p != NULL && !unsampled(size))
        crossed(p, size, 0);
    return p;
}

static void np_free(void *ctx, void *ptr, size_t size)
{
    (void)ctx;
    const numpy_allocator_t *prev = &numpy_hook.prev;
    if (ptr != NULL && maybe_live(ptr))
        forget(ptr);
    prev->free(prev->ctx, ptr, size);
}

/* --- control (GIL held) ----------------------------------------------------------- */

static int is_ours(int d, const PyMemAllocatorEx *a)
{
    return a->malloc == hooks[d].malloc;
}

/* Whether an allocation in domain d reaches cprof's hook: the hook may sit
 * under another one (tracemalloc started later), or have been dropped from
 * the chain (tracemalloc, started earlier, stopped and restored its own). */
static struct thread_state probe_begin(void)
{
    struct thread_state saved = tls;
    tls.busy = 0;
    tls.probing = 1;
    tls.probe_reached = 0;
    tls.epoch = atomic_load(&epoch);
    tls.countdown = -1;  /* the next allocation takes the slow path, which notes it */
    return saved;
}

static int probe_end(struct thread_state saved)
{
    int reached = tls.probe_reached;
    tls = saved;
    return reached;
}

static int hooks_reached(int d)
{
    struct thread_state saved = probe_begin();
    if (d == RAW)
        PyMem_RawFree(PyMem_RawMalloc(1));
    else if (d == MEM)
        PyMem_Free(PyMem_Malloc(1));
    else
        PyObject_Free(PyObject_Malloc(1));
    return probe_end(saved);
}

/* Whether domain d's wrapped allocator passes an allocation of size bytes on
 * to the raw domain (pymalloc does so over its small-object limit). */
static int passes_to_raw(int d, size_t size, int *same_block)
{
    struct thread_state saved = probe_begin();
    const PyMemAllocatorEx *prev = &domains[d].prev;
    void *p = prev->malloc(prev->ctx, size);
    *same_block = tls.probe_seen == p;
    prev->free(prev->ctx, p);
    return probe_end(saved);
}

/* The largest allocation domain d counts itself: below the smallest size its
 * allocator hands to the raw domain (whose hook then counts it), found by
 * bisection. *direct says whether the raw domain's block is the very block
 * returned (not so under PYTHONMALLOC=debug, which adds a header). */
static size_t own_limit(int d, int *direct)
{
    size_t lo = 0, hi = (size_t)1 << 20;  /* passes_to_raw(hi) is tested below */
    int same = 0;
    *direct = 0;
    if (d == RAW || !domains[RAW].installed || !passes_to_raw(d, hi, direct))
        return SIZE_MAX;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (passes_to_raw(d, mid, &same))
            hi = mid;
        else
            lo = mid;
    }
    return lo;
}

/* Swapping a domain's allocator is one struct copy that a thread without the
 * GIL may read halfway: ours keeps the previous ctx, so any mix of old and new
 * fields still calls a function that ignores ctx or gets its own. */
static void install(int d)
{
    PyMemAllocatorEx current;
    PyMem_GetAllocator(domain_ids[d], &current);
    if (domains[d].installed && (is_ours(d, &current) || hooks_reached(d)))
        return;
    domains[d].prev = current;
    int direct;
    below[d] = own_limit(d, &direct);
    raw_owned[d] = direct;
    domains[d].ours = hooks[d];
    domains[d].ours.ctx = current.ctx;
    if (raw_owned[d])
        domains[d].ours.free = current.free;  /* see the hooks' comment */
    PyMem_SetAllocator(domain_ids[d], &domains[d].ours);
    domains[d].installed = 1;
}

static void uninstall(int d)
{
    PyMemAllocatorEx current;
    PyMem_GetAllocator(domain_ids[d], &current);
    if (!domains[d].installed || !is_ours(d, &current))
        return;  /* wrapped by someone since: stay, passing through */
    PyMem_SetAllocator(domain_ids[d], &domains[d].prev);
    domains[d].installed = 0;
}

static void unwrap_numpy(void)
{
    if (!numpy_hook.wrapped)
        return;
    numpy_allocator_t *a = &numpy_hook.handler->allocator;
    if (a->malloc == np_malloc) {
        a->malloc = numpy_hook.prev.malloc;
        a->calloc = numpy_hook.prev.calloc;
        a->realloc = numpy_hook.prev.realloc;
        a->free = numpy_hook.prev.free;
    }
    numpy_hook.wrapped = 0;
}

static void on_code_death(PyObject *code)
{
    int had_lock = tls.locked;
    if (!had_lock)
        lock_tables();
    if (H.running) {
        resolve_deferred_unlocked();
        cprof_stacks_forget_code(&H.stacks, code);
    }
    if (!had_lock)
        unlock_tables();
}

static void after_fork_in_child(void)
{
    pthread_mutex_init(&lock, NULL);
    tls.locked = 0;
    uint64_t e = atomic_load(&epoch);
    if (e & 1)
        atomic_store(&epoch, e + 1);
    bloom_clear();
}

int cprof_heap_start(const cprof_heap_config_t *cfg, cprof_error_t *err)
{
    static int atfork_registered;
    if (H.running)
        return cprof_fail(err, CPROF_E_BUSY, "heap profiling already in use: stop the "
                          "running heap profile first (one per process)");
    if (!atfork_registered) {
        if (pthread_atfork(NULL, NULL, after_fork_in_child) != 0)
            return cprof_fail(err, CPROF_E_OS, "pthread_atfork failed");
        atfork_registered = 1;
    }
    tls.busy++;
    lock_tables();
    int rc = CPROF_OK;
    if (cprof_stacks_init(&H.stacks, cfg->max_depth) < 0) {
        rc = CPROF_E_PYTHON;
    } else if (cprof_table_init(&H.bucket_index) < 0 || cprof_table_init(&H.live) < 0) {
        free_tables_unlocked();
        rc = cprof_fail(err, CPROF_E_NOMEM, "out of memory for the heap profile's tables");
    } else {
        H.running = 1;
    }
    unlock_tables();
    tls.busy--;
    if (rc != CPROF_OK)
        return rc;
    if (cprof_frames_watch_code(on_code_death) < 0) {
        lock_tables();
        free_tables_unlocked();
        unlock_tables();
        return CPROF_E_PYTHON;
    }
    bloom_clear();
    atomic_store(&sample_rate, cfg->rate);
    atomic_store(&sample_depth, cfg->max_depth);
    for (int d = 0; d < N_DOMAINS; d++)
        install(d);  /* the raw domain first: own_limit() needs its hook */
    atomic_fetch_add(&epoch, 1);  /* odd: running */
    return CPROF_OK;
}

int cprof_heap_wrap_numpy(void **api, cprof_error_t *err)
{
    if (!H.running)
        return cprof_fail(err, CPROF_E_BUSY, "no heap profile is running");
    if (numpy_hook.wrapped)
        return CPROF_OK;
    unsigned int feature = ((unsigned int (*)(void))api[NUMPY_API_FEATURE_VERSION])();
    if (feature < NUMPY_1_22_FEATURE_VERSION)
        return cprof_fail(err, CPROF_E_UNSUPPORTED, "numpy's C API version %#x has no memory "
                          "handlers (numpy 1.22 or newer has)", feature);
    PyObject *capsule = *(PyObject **)api[NUMPY_API_DEFAULT_HANDLER];
    numpy_handler_t *h = capsule != NULL ? PyCapsule_GetPointer(capsule, "mem_handler") : NULL;
    if (h == NULL) {
        PyErr_Clear();
        return cprof_fail(err, CPROF_E_UNSUPPORTED, "numpy's default memory handler was not found");
    }
    if (h->version != 1)
        return cprof_fail(err, CPROF_E_UNSUPPORTED, "numpy's memory handler has version %d, "
                          "cprof knows version 1", h->version);
    numpy_hook.handler = h;
    numpy_hook.prev = h->allocator;
    /* The handler's ctx stays: see install(). */
    h->allocator.malloc = np_malloc;
    h->allocator.calloc = np_calloc;
    h->allocator.realloc = np_realloc;
    h->allocator.free = np_free;
    numpy_hook.wrapped = 1;
    return CPROF_OK;
}

int cprof_heap_snapshot(int (*visit)(const cprof_stacks_t *, const cprof_heap_bucket_t *,
                                     size_t, const cprof_heap_stats_t *, void *),
                        void *arg, cprof_error_t *err)
{
    if (!H.running)
        return cprof_fail(err, CPROF_E_BUSY, "no heap profile is running");
    int lost = 0;
    for (int d = 0; d < N_DOMAINS; d++)
        lost |= domains[d].installed && !hooks_reached(d);
    tls.busy++;
    int gc_was_on = PyGC_Disable();
    lock_tables();
    H.stats.hooks_lost |= lost;
    H.stats.numpy = numpy_hook.wrapped;
    resolve_deferred_unlocked();
    int rc = CPROF_OK;
    cprof_heap_bucket_t *out = malloc((H.n_buckets + 1) * sizeof *out);
    if (out == NULL) {
        rc = cprof_fail(err, CPROF_E_NOMEM, "out of memory for the heap profile's snapshot");
    } else {
        size_t n = 0;
        for (size_t i = 0; i < H.n_buckets; i++) {
            cprof_heap_bucket_t b = H.buckets[i];
            if (b.stack & DEFERRED)
                b.stack = H.deferred[b.stack & ~DEFERRED].stack;
            if (b.stack != UINT32_MAX)
                out[n++] = b;
        }
        H.stats.live = H.live.used;
        rc = visit(&H.stacks, out, n, &H.stats, arg);
        free(out);
    }
    unlock_tables();
    if (gc_was_on)
        PyGC_Enable();
    tls.busy--;
    return rc;
}

static void unhook(void)
{
    uint64_t e = atomic_load(&epoch);
    if (e & 1)
        atomic_store(&epoch, e + 1);  /* even: stopped */
    bloom_clear();
    for (int d = 0; d < N_DOMAINS; d++)
        uninstall(d);
    unwrap_numpy();
    cprof_frames_unwatch_code(on_code_death);
}

int cprof_heap_stop(cprof_error_t *err)
{
    if (!H.running)
        return cprof_fail(err, CPROF_E_BUSY, "no heap profile is running");
    unhook();
    tls.busy++;
    lock_tables();
    free_tables_unlocked();
    unlock_tables();
    tls.busy--;
    return CPROF_OK;
}

int cprof_heap_running(void)
{
    return H.running;
}

void cprof_heap_after_fork_child(void)
{
    if (!H.running)
        return;
    unhook();
    /* Another thread of the parent may have been changing the tables: leave
     * the child's copy alone (its pages stay shared with the parent). */
    memset(&H, 0, sizeof H);
}
