/* table: an open-addressing hash table from non-zero 64-bit keys to uint32
 * values (linear probing, load kept under one half), and growable arrays. Plain C, no locking:
 * each owner says what protects its tables. Memory comes from libc, never
 * from Python's allocators (the heap hooks must not see it).
 */
#ifndef CPROF_TABLE_H
#define CPROF_TABLE_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t *keys;          /* 0 = empty */
    uint32_t *values;
    size_t cap, used;
} cprof_table_t;

/* A well-mixed 64-bit hash of x, never 0 (the empty mark). */
uint64_t cprof_table_mix(uint64_t x);

/* 0, or -1 when out of memory. */
int cprof_table_init(cprof_table_t *t);
void cprof_table_free(cprof_table_t *t);

/* Make room for one more key. 0, or -1 when out of memory. */
int cprof_table_reserve(cprof_table_t *t);

/* Where probing for key starts; keys may be raw pointers, so they are mixed. */
static inline size_t cprof_table_slot(const cprof_table_t *t, uint64_t key)
{
    return cprof_table_mix(key) & (t->cap - 1);
}

static inline size_t cprof_table_next(const cprof_table_t *t, size_t slot)
{
    return (slot + 1) & (t->cap - 1);
}

/* The slot holding key, or -1. */
long cprof_table_find(const cprof_table_t *t, uint64_t key);

/* Insert a key known to be absent; room must have been reserved. */
void cprof_table_put_unchecked(cprof_table_t *t, uint64_t key, uint32_t value);

/* Remove key if present (later entries shift back). 1 if it was there. */
int cprof_table_remove(cprof_table_t *t, uint64_t key);

/* Make room in *array (elem-byte items, *cap of them) for item n, doubling
 * it when full. 0, or -1 when out of memory. */
int cprof_grow(void **array, size_t *cap, size_t n, size_t elem);

#endif
