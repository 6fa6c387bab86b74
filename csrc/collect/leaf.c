/* leaf: see leaf.h. */
#include "collect/leaf.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* An open-addressed set of non-zero addresses, a power of two in size, at
 * most half full. */
typedef struct table {
    size_t mask;
    unsigned char kinds[256];
    struct table *retired;  /* the tables it replaced, freed by cprof_leaf_clear */
    uintptr_t slots[];
} table_t;

static _Atomic(table_t *) current;

static size_t slot_of(uintptr_t address, size_t mask)
{
    return (size_t)(((uint64_t)address >> 4) * 0x9e3779b97f4a7c15ULL >> 20) & mask;
}

/* --- signal-safe section ---------------------------------------------------- */

int cprof_leaf_active_sigsafe(void)
{
    return atomic_load_explicit(&current, memory_order_acquire) != NULL;
}

int cprof_leaf_known_sigsafe(uintptr_t address)
{
    table_t *t = atomic_load_explicit(&current, memory_order_acquire);
    if (t == NULL || address == 0)
        return 0;
    for (size_t i = slot_of(address, t->mask);; i = (i + 1) & t->mask) {
        if (t->slots[i] == address)
            return 1;
        if (t->slots[i] == 0)
            return 0;
    }
}

int cprof_leaf_call_kind_sigsafe(unsigned opcode)
{
    table_t *t = atomic_load_explicit(&current, memory_order_acquire);
    return t == NULL || opcode > 255 ? CPROF_LEAF_NO_CALL : t->kinds[opcode];
}

/* --- end of signal-safe section --------------------------------------------- */

int cprof_leaf_set(const uintptr_t *addresses, size_t n, const unsigned char kinds[256])
{
    size_t size = 64;
    while (size < 2 * n + 2)
        size *= 2;
    table_t *t = calloc(1, sizeof *t + size * sizeof t->slots[0]);
    if (t == NULL)
        return -1;
    t->mask = size - 1;
    memcpy(t->kinds, kinds, sizeof t->kinds);
    for (size_t k = 0; k < n; k++) {
        uintptr_t a = addresses[k];
        if (a == 0)
            continue;
        size_t i = slot_of(a, t->mask);
        while (t->slots[i] != 0 && t->slots[i] != a)
            i = (i + 1) & t->mask;
        t->slots[i] = a;
    }
    /* A handler may be reading the table this replaces: it is freed only
     * once none can be (cprof_leaf_clear). */
    t->retired = atomic_load(&current);
    atomic_store_explicit(&current, t, memory_order_release);
    return 0;
}

void cprof_leaf_clear(void)
{
    table_t *t = atomic_exchange(&current, NULL);
    while (t != NULL) {
        table_t *older = t->retired;
        free(t);
        t = older;
    }
}
