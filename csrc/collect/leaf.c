/* leaf: see leaf.h. */
#include "collect/leaf.h"

#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* An open-addressed set of non-zero addresses, a power of two in size, at
 * most half full. */
typedef struct table {
    size_t mask;
    unsigned char kinds[256];
    cprof_leaf_flow_t flow;
    struct table *retired;  /* the tables it replaced, freed once no handler reads them */
    size_t used;            /* addresses in it (the writer's, GIL held) */
    _Atomic uintptr_t slots[];
} table_t;

static _Atomic(table_t *) current;

/* Places: an open-addressed table from code addresses to their places,
 * at most half full, tombstones included. A handler finds an entry by its
 * code (acquire), whose places were stored before it (release). */
typedef struct {
    size_t units;
    uint16_t pairs[];
} places_t;

typedef struct {
    _Atomic uintptr_t code;  /* 0: empty; TOMBSTONE: forgotten */
    _Atomic(places_t *) places;
} place_entry_t;

typedef struct place_table {
    size_t mask, used;                /* used: entries and tombstones */
    struct place_table *retired;      /* the tables it replaced */
    place_entry_t entries[];
} place_table_t;

#define TOMBSTONE ((uintptr_t)1)

static _Atomic(place_table_t *) places_now;

/* Handlers reading the tables now (cprof_leaf_enter_sigsafe): a table
 * replaced is freed once none is, so that one a handler took before the
 * swap is not freed under it. The pointer swaps and this count are
 * sequentially consistent: a handler that enters after a writer saw none
 * loads the new table. */
static atomic_uint readers;
static size_t places_bytes;  /* the places' own allocations (the writer's, GIL held) */

static size_t slot_of(uintptr_t address, size_t mask)
{
    return (size_t)(((uint64_t)address >> 4) * 0x9e3779b97f4a7c15ULL >> 20) & mask;
}

/* --- signal-safe section ---------------------------------------------------- */

void cprof_leaf_enter_sigsafe(void)
{
    atomic_fetch_add(&readers, 1);
}

void cprof_leaf_leave_sigsafe(void)
{
    atomic_fetch_sub(&readers, 1);
}

int cprof_leaf_active_sigsafe(void)
{
    return atomic_load_explicit(&current, memory_order_acquire) != NULL;
}

int cprof_leaf_known_sigsafe(uintptr_t address)
{
    table_t *t = atomic_load(&current);
    if (t == NULL || address == 0)
        return 0;
    for (size_t i = slot_of(address, t->mask);; i = (i + 1) & t->mask) {
        uintptr_t here = atomic_load_explicit(&t->slots[i], memory_order_relaxed);
        if (here == address)
            return 1;
        if (here == 0)
            return 0;
    }
}

int cprof_leaf_call_kind_sigsafe(unsigned opcode)
{
    table_t *t = atomic_load(&current);
    return t == NULL || opcode > 255 ? CPROF_LEAF_NO_CALL : t->kinds[opcode];
}

int cprof_leaf_place_sigsafe(uintptr_t code, int32_t lasti, unsigned *slot, unsigned *other)
{
    place_table_t *t = atomic_load(&places_now);
    if (t == NULL)
        return -1;
    for (size_t i = slot_of(code, t->mask), n = 0; n <= t->mask; i = (i + 1) & t->mask, n++) {
        uintptr_t key = atomic_load_explicit(&t->entries[i].code, memory_order_acquire);
        if (key == 0)
            return -1;
        if (key != code)
            continue;
        places_t *p = atomic_load_explicit(&t->entries[i].places, memory_order_acquire);
        if (p == NULL)
            return -1;
        if (lasti < 0 || (size_t)lasti >= p->units)
            return 0;
        *slot = p->pairs[2 * (size_t)lasti];
        *other = p->pairs[2 * (size_t)lasti + 1];
        return *slot != CPROF_LEAF_NO_SLOT;
    }
    return -1;
}

/* --- end of signal-safe section --------------------------------------------- */

void cprof_leaf_after_fork_child(void)
{
    atomic_store(&readers, 0);
}

/* Free the tables replaced so far, unless a handler is reading one now
 * (then the next writer tries again). GIL held. */
static void reclaim(void)
{
    table_t *t = atomic_load_explicit(&current, memory_order_relaxed);
    place_table_t *p = atomic_load_explicit(&places_now, memory_order_relaxed);
    if ((t == NULL || t->retired == NULL) && (p == NULL || p->retired == NULL))
        return;
    if (atomic_load(&readers) != 0)
        return;
    for (table_t *old = t != NULL ? t->retired : NULL; old != NULL;) {
        table_t *older = old->retired;
        free(old);
        old = older;
    }
    if (t != NULL)
        t->retired = NULL;
    for (place_table_t *old = p != NULL ? p->retired : NULL; old != NULL;) {
        place_table_t *older = old->retired;
        free(old);
        old = older;
    }
    if (p != NULL)
        p->retired = NULL;
}

/* Where code's entry is in t, or where it would go (the first empty entry). */
static size_t place_probe(place_table_t *t, uintptr_t code)
{
    size_t i = slot_of(code, t->mask);
    for (;;) {
        uintptr_t key = atomic_load_explicit(&t->entries[i].code, memory_order_relaxed);
        if (key == code || key == 0)
            return i;
        i = (i + 1) & t->mask;
    }
}

/* A table with room for more entries, holding t's live ones; t is retired
 * (a handler may still be reading it). NULL when memory runs out. */
static place_table_t *place_table_grown(place_table_t *t)
{
    size_t live = 0;
    for (size_t i = 0; t != NULL && i <= t->mask; i++) {
        uintptr_t key = atomic_load_explicit(&t->entries[i].code, memory_order_relaxed);
        live += key != 0 && key != TOMBSTONE;
    }
    size_t size = 64;
    while (size < 4 * (live + 1))
        size *= 2;
    place_table_t *g = calloc(1, sizeof *g + size * sizeof g->entries[0]);
    if (g == NULL)
        return NULL;
    g->mask = size - 1;
    for (size_t i = 0; t != NULL && i <= t->mask; i++) {
        uintptr_t key = atomic_load_explicit(&t->entries[i].code, memory_order_relaxed);
        if (key == 0 || key == TOMBSTONE)
            continue;
        size_t j = place_probe(g, key);
        atomic_store_explicit(&g->entries[j].places,
                              atomic_load_explicit(&t->entries[i].places, memory_order_relaxed),
                              memory_order_relaxed);
        atomic_store_explicit(&g->entries[j].code, key, memory_order_relaxed);
        g->used++;
    }
    g->retired = t;
    atomic_store(&places_now, g);
    return g;
}

int cprof_leaf_place_put(uintptr_t code, const uint16_t *pairs, size_t units)
{
    place_table_t *t = atomic_load_explicit(&places_now, memory_order_relaxed);
    if (t != NULL && atomic_load_explicit(&t->entries[place_probe(t, code)].code,
                                          memory_order_relaxed) == code)
        return 0;  /* kept already: a handler may be reading it */
    if (t == NULL || 2 * (t->used + 1) > t->mask + 1) {
        t = place_table_grown(t);
        if (t == NULL)
            return -1;
    }
    reclaim();
    places_t *p = malloc(sizeof *p + 2 * units * sizeof p->pairs[0]);
    if (p == NULL)
        return -1;
    places_bytes += sizeof *p + 2 * units * sizeof p->pairs[0];
    p->units = units;
    memcpy(p->pairs, pairs, 2 * units * sizeof p->pairs[0]);
    size_t i = place_probe(t, code);
    atomic_store_explicit(&t->entries[i].places, p, memory_order_relaxed);
    atomic_store_explicit(&t->entries[i].code, code, memory_order_release);
    t->used++;
    return 0;
}

void cprof_leaf_place_forget(uintptr_t code)
{
    place_table_t *t = atomic_load_explicit(&places_now, memory_order_relaxed);
    if (t == NULL)
        return;
    size_t i = place_probe(t, code);
    if (atomic_load_explicit(&t->entries[i].code, memory_order_relaxed) != code)
        return;
    /* No frame runs code any more, so no handler looks for it: its places
     * go at once; the entry stays a tombstone, so that probes go past it. */
    atomic_store_explicit(&t->entries[i].code, TOMBSTONE, memory_order_release);
    places_t *p = atomic_exchange_explicit(&t->entries[i].places, NULL, memory_order_relaxed);
    if (p != NULL)
        places_bytes -= sizeof *p + 2 * p->units * sizeof p->pairs[0];
    free(p);
}

static void places_clear(void)
{
    place_table_t *t = atomic_exchange(&places_now, NULL);
    for (size_t i = 0; t != NULL && i <= t->mask; i++)
        free(atomic_load_explicit(&t->entries[i].places, memory_order_relaxed));
    while (t != NULL) {  /* retired tables share the current one's places */
        place_table_t *older = t->retired;
        free(t);
        t = older;
    }
    places_bytes = 0;
}

cprof_leaf_held_t cprof_leaf_held(void)
{
    cprof_leaf_held_t held = {0, 0, 0, 0, places_bytes};
    for (table_t *t = atomic_load_explicit(&current, memory_order_relaxed); t != NULL;
         t = t->retired) {
        held.address_tables++;
        held.address_bytes += sizeof *t + (t->mask + 1) * sizeof t->slots[0];
    }
    for (place_table_t *t = atomic_load_explicit(&places_now, memory_order_relaxed); t != NULL;
         t = t->retired) {
        held.place_tables++;
        held.place_bytes += sizeof *t + (t->mask + 1) * sizeof t->entries[0];
    }
    return held;
}

int cprof_leaf_deopt(unsigned op)
{
    table_t *t = atomic_load_explicit(&current, memory_order_relaxed);
    return t == NULL || op > 255 ? (int)op : t->flow.deopt[op];
}

int cprof_leaf_caches(unsigned op)
{
    table_t *t = atomic_load_explicit(&current, memory_order_relaxed);
    return t == NULL || op > 255 ? 0 : t->flow.caches[op];
}

int cprof_leaf_instruction(const unsigned char *code, size_t n, size_t i, unsigned *oparg)
{
    table_t *t = atomic_load_explicit(&current, memory_order_relaxed);
    if (i >= n) {  /* past the code: no instruction (opcode 0, CACHE) */
        *oparg = 0;
        return 0;
    }
    unsigned arg = code[2 * i + 1];
    for (size_t j = i, shift = 8; t != NULL && j > 0 && shift <= 24; shift += 8) {
        j--;
        if (t->kinds[code[2 * j]] != CPROF_LEAF_EXTENDED)
            break;
        arg |= (unsigned)code[2 * j + 1] << shift;
    }
    *oparg = arg;
    return code[2 * i];
}

/* One varint of the exception table: 6 bits a byte, high bits first, 0x40
 * saying that more follow. -1 past its end. */
static long read_varint(const unsigned char *p, size_t len, size_t *at)
{
    long value = 0;
    for (int bytes = 0; *at < len && bytes < 6; bytes++) {
        unsigned char b = p[(*at)++];
        value = (value << 6) | (b & 63);
        if (!(b & 64))
            return value;
    }
    return -1;
}

typedef struct {
    size_t unit;
    int32_t depth;
} work_t;

int cprof_leaf_depths(const unsigned char *code, size_t n, const unsigned char *exceptions,
                      size_t exceptions_len, int (*effect)(int opcode, int oparg, int jump),
                      int32_t *depths)
{
    table_t *t = atomic_load_explicit(&current, memory_order_relaxed);
    if (t == NULL)
        return -1;
    const cprof_leaf_flow_t *flow = &t->flow;
    for (size_t i = 0; i < n; i++)
        depths[i] = -1;
    /* Each unit is given a depth once, and passes on at most two. */
    size_t cap = 2 * n + 16, top = 0;
    work_t *work = malloc(cap * sizeof *work);
    if (work == NULL)
        return -2;
    int rc = 0;
    if (n > 0)
        work[top++] = (work_t){0, 0};
    for (size_t at = 0; at < exceptions_len && rc == 0;) {
        long start = read_varint(exceptions, exceptions_len, &at);
        long length = read_varint(exceptions, exceptions_len, &at);
        long target = read_varint(exceptions, exceptions_len, &at);
        long depth_lasti = read_varint(exceptions, exceptions_len, &at);
        if (start < 0 || length < 0 || target < 0 || depth_lasti < 0 || (size_t)target >= n)
            rc = -1;
        else if (top == cap)
            rc = -1;  /* more handlers than units: not what a compiler makes */
        else
            work[top++] = (work_t){(size_t)target,
                                          (int32_t)((depth_lasti >> 1) + (depth_lasti & 1) + 1)};
    }
    while (top > 0 && rc == 0) {
        size_t i = work[top - 1].unit;
        int32_t depth = work[top - 1].depth;
        top--;
        if (depths[i] >= 0) {
            if (depths[i] != depth)
                rc = -1;
            continue;
        }
        depths[i] = depth;
        unsigned oparg;
        int op = cprof_leaf_instruction(code, n, i, &oparg);
        size_t next = i + 1 + (t->kinds[op] == CPROF_LEAF_EXTENDED ? 0 : flow->caches[op]);
        unsigned char f = flow->flags[op];
        if (top + 2 > cap) {
            rc = -1;
            break;
        }
        if (f & CPROF_LEAF_RETURN_GENERATOR) {
            if (next < n)
                work[top++] = (work_t){next, depth + 1};
            continue;
        }
        if (f & (CPROF_LEAF_JUMP_FORWARD | CPROF_LEAF_JUMP_BACKWARD)) {
            int e = effect(op, (int)oparg, 1);
            int back = (f & CPROF_LEAF_JUMP_BACKWARD) != 0;
            size_t target = back ? next - oparg : next + oparg;
            if (e == INT_MAX || (back && oparg > next) || target >= n || depth + e < 0) {
                rc = -1;
                break;
            }
            work[top++] = (work_t){target, depth + e};
        }
        if (!(f & CPROF_LEAF_NO_FALLTHROUGH) && next < n) {
            int e = effect(op, (int)oparg, 0);
            if (e == INT_MAX || depth + e < 0) {
                rc = -1;
                break;
            }
            work[top++] = (work_t){next, depth + e};
        }
    }
    free(work);
    return rc;
}

/* Put address into t unless it is there: 1 if added. A handler probing
 * meanwhile finds it or not, and never a torn value. */
static int table_add(table_t *t, uintptr_t address)
{
    size_t i = slot_of(address, t->mask);
    for (;;) {
        uintptr_t here = atomic_load_explicit(&t->slots[i], memory_order_relaxed);
        if (here == address)
            return 0;
        if (here == 0)
            break;
        i = (i + 1) & t->mask;
    }
    atomic_store_explicit(&t->slots[i], address, memory_order_relaxed);
    t->used++;
    return 1;
}

int cprof_leaf_set(const uintptr_t *addresses, size_t n, const unsigned char kinds[256],
                   const cprof_leaf_flow_t *flow)
{
    /* The catalogue only grows: its new addresses go into the table in use
     * while it stays at most half full, so that a program importing modules
     * all along replaces tables of doubling sizes, not one a drain. */
    table_t *t = atomic_load_explicit(&current, memory_order_relaxed);
    if (t != NULL && 2 * (n + 1) <= t->mask + 1 && memcmp(t->kinds, kinds, 256) == 0 &&
        memcmp(&t->flow, flow, sizeof *flow) == 0) {
        for (size_t k = 0; k < n; k++)
            if (addresses[k] != 0)
                table_add(t, addresses[k]);
        return 0;
    }
    size_t size = 64;
    while (size < 4 * n + 4)
        size *= 2;
    table_t *g = calloc(1, sizeof *g + size * sizeof g->slots[0]);
    if (g == NULL)
        return -1;
    g->mask = size - 1;
    memcpy(g->kinds, kinds, sizeof g->kinds);
    g->flow = *flow;
    for (size_t k = 0; k < n; k++)
        if (addresses[k] != 0)
            table_add(g, addresses[k]);
    g->retired = t;
    atomic_store(&current, g);
    reclaim();
    return 0;
}

void cprof_leaf_clear(void)
{
    places_clear();
    table_t *t = atomic_exchange(&current, NULL);
    while (t != NULL) {
        table_t *older = t->retired;
        free(t);
        t = older;
    }
}
