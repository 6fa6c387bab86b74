/* arena: a chunked bump allocator. */
#include "codec/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_BYTES (1u << 20)

struct cprof_arena_chunk {
    cprof_arena_chunk_t *next;
    size_t used, size;
    _Alignas(16) unsigned char data[];
};

void *cprof_arena_alloc(cprof_arena_t *arena, size_t size)
{
    size_t bytes = (size + 15) & ~(size_t)15;
    if (bytes < size)
        return NULL;
    cprof_arena_chunk_t *c = arena->head;
    if (c == NULL || c->size - c->used < bytes) {
        size_t want = bytes > CHUNK_BYTES ? bytes : CHUNK_BYTES;
        if (want > SIZE_MAX - sizeof *c)
            return NULL;
        c = malloc(sizeof *c + want);
        if (c == NULL)
            return NULL;
        c->used = 0;
        c->size = want;
        if (bytes > CHUNK_BYTES / 4 && arena->head != NULL) {
            /* A big block gets a chunk of its own behind the current one,
             * which keeps its free space. */
            c->next = arena->head->next;
            arena->head->next = c;
        } else {
            c->next = arena->head;
            arena->head = c;
        }
    }
    void *p = c->data + c->used;
    c->used += bytes;
    return p;
}

void *cprof_arena_calloc(cprof_arena_t *arena, size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    void *p = cprof_arena_alloc(arena, n * size);
    if (p != NULL)
        memset(p, 0, n * size);
    return p;
}

void cprof_arena_free(cprof_arena_t *arena)
{
    cprof_arena_chunk_t *c = arena->head;
    while (c != NULL) {
        cprof_arena_chunk_t *next = c->next;
        free(c);
        c = next;
    }
    arena->head = NULL;
}
