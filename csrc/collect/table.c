/* table: open addressing with linear probing and backward-shift removal. */
#include "collect/table.h"

#include <stdlib.h>
#include <string.h>

uint64_t cprof_table_mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x | 1;
}

int cprof_table_init(cprof_table_t *t)
{
    t->cap = 1024;
    t->used = 0;
    t->keys = calloc(t->cap, sizeof *t->keys);
    t->values = malloc(t->cap * sizeof *t->values);
    return t->keys != NULL && t->values != NULL ? 0 : -1;
}

void cprof_table_free(cprof_table_t *t)
{
    free(t->keys);
    free(t->values);
    memset(t, 0, sizeof *t);
}

void cprof_table_put_unchecked(cprof_table_t *t, uint64_t key, uint32_t value)
{
    size_t slot = cprof_table_slot(t, key);
    while (t->keys[slot] != 0)
        slot = cprof_table_next(t, slot);
    t->keys[slot] = key;
    t->values[slot] = value;
    t->used++;
}

int cprof_table_reserve(cprof_table_t *t)
{
    if ((t->used + 1) * 2 <= t->cap)
        return 0;
    cprof_table_t bigger = {.cap = t->cap * 2};
    bigger.keys = calloc(bigger.cap, sizeof *bigger.keys);
    bigger.values = malloc(bigger.cap * sizeof *bigger.values);
    if (bigger.keys == NULL || bigger.values == NULL) {
        cprof_table_free(&bigger);
        return -1;
    }
    for (size_t i = 0; i < t->cap; i++)
        if (t->keys[i] != 0)
            cprof_table_put_unchecked(&bigger, t->keys[i], t->values[i]);
    cprof_table_free(t);
    *t = bigger;
    return 0;
}

long cprof_table_find(const cprof_table_t *t, uint64_t key)
{
    if (t->keys == NULL)
        return -1;
    for (size_t slot = cprof_table_slot(t, key); t->keys[slot] != 0;
         slot = cprof_table_next(t, slot))
        if (t->keys[slot] == key)
            return (long)slot;
    return -1;
}

int cprof_table_remove(cprof_table_t *t, uint64_t key)
{
    long found = cprof_table_find(t, key);
    if (found < 0)
        return 0;
    size_t slot = (size_t)found;
    t->keys[slot] = 0;
    t->used--;
    for (size_t next = cprof_table_next(t, slot); t->keys[next] != 0;
         next = cprof_table_next(t, next)) {
        uint64_t k = t->keys[next];
        uint32_t v = t->values[next];
        t->keys[next] = 0;
        t->used--;
        cprof_table_put_unchecked(t, k, v);
    }
    return 1;
}

int cprof_grow(void **array, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return 0;
    size_t bigger = *cap ? *cap * 2 : 256;
    void *p = realloc(*array, bigger * elem);
    if (p == NULL)
        return -1;
    *array = p;
    *cap = bigger;
    return 0;
}
