/* arena: bump allocation for messages built in one go and freed in one go
 * (a profile assembled from Python before encoding). Not signal-safe; no GIL
 * needed; not thread-safe (one owner). */
#ifndef CPROF_ARENA_H
#define CPROF_ARENA_H

#include <stddef.h>

typedef struct cprof_arena_chunk cprof_arena_chunk_t;

typedef struct {
    cprof_arena_chunk_t *head;  /* newest chunk first */
} cprof_arena_t;

/* 16-byte aligned memory that lives until cprof_arena_free; NULL when memory
 * runs out or n * size overflows. The calloc form zeroes it. */
void *cprof_arena_alloc(cprof_arena_t *arena, size_t bytes);
void *cprof_arena_calloc(cprof_arena_t *arena, size_t n, size_t size);
void cprof_arena_free(cprof_arena_t *arena);

#endif
