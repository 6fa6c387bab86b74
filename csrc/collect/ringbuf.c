/* ringbuf: Vyukov's bounded queue, many signal-handler writers, one reader. */
#include "collect/ringbuf.h"

#include <stdlib.h>
#include <string.h>

static cprof_record_t *slot_at(const cprof_ringbuf_t *rb, uint64_t position)
{
    return (cprof_record_t *)(rb->slots + (position & (rb->capacity - 1)) * rb->slot_bytes);
}

int cprof_ringbuf_init(cprof_ringbuf_t *rb, size_t capacity, size_t max_depth)
{
    memset(rb, 0, sizeof *rb);
    size_t cap = 1;
    while (cap < capacity)
        cap <<= 1;
    rb->capacity = cap;
    rb->max_depth = max_depth;
    rb->slot_bytes = (sizeof(cprof_record_t) + max_depth * sizeof(cprof_frame_t) + 15) & ~(size_t)15;
    rb->seq = malloc(cap * sizeof *rb->seq);
    rb->slots = malloc(cap * rb->slot_bytes);
    if (rb->seq == NULL || rb->slots == NULL) {
        cprof_ringbuf_free(rb);
        return -1;
    }
    for (size_t i = 0; i < cap; i++)
        atomic_init(&rb->seq[i], i);
    atomic_init(&rb->head, 0);
    atomic_init(&rb->lost, 0);
    return 0;
}

void cprof_ringbuf_free(cprof_ringbuf_t *rb)
{
    free(rb->seq);
    free(rb->slots);
    rb->seq = NULL;
    rb->slots = NULL;
}

/* --- signal-safe section ---------------------------------------------------- */

cprof_record_t *cprof_ringbuf_claim_sigsafe(cprof_ringbuf_t *rb, uint64_t *position)
{
    uint64_t pos = atomic_load_explicit(&rb->head, memory_order_relaxed);
    for (;;) {
        _Atomic uint64_t *seq = &rb->seq[pos & (rb->capacity - 1)];
        uint64_t s = atomic_load_explicit(seq, memory_order_acquire);
        int64_t diff = (int64_t)(s - pos);
        if (diff == 0) {
            if (atomic_compare_exchange_weak_explicit(&rb->head, &pos, pos + 1,
                                                      memory_order_relaxed,
                                                      memory_order_relaxed)) {
                *position = pos;
                return slot_at(rb, pos);
            }
        } else if (diff < 0) {
            atomic_fetch_add_explicit(&rb->lost, 1, memory_order_relaxed);
            return NULL;
        } else {
            pos = atomic_load_explicit(&rb->head, memory_order_relaxed);
        }
    }
}

void cprof_ringbuf_commit_sigsafe(cprof_ringbuf_t *rb, uint64_t position)
{
    atomic_store_explicit(&rb->seq[position & (rb->capacity - 1)], position + 1,
                          memory_order_release);
}

/* --- reader section ------------------------------------------------------------ */

cprof_record_t *cprof_ringbuf_peek(cprof_ringbuf_t *rb)
{
    uint64_t s = atomic_load_explicit(&rb->seq[rb->tail & (rb->capacity - 1)],
                                      memory_order_acquire);
    return s == rb->tail + 1 ? slot_at(rb, rb->tail) : NULL;
}

void cprof_ringbuf_release(cprof_ringbuf_t *rb)
{
    atomic_store_explicit(&rb->seq[rb->tail & (rb->capacity - 1)], rb->tail + rb->capacity,
                          memory_order_release);
    rb->tail++;
}

void cprof_ringbuf_visit_ready(cprof_ringbuf_t *rb, void (*visit)(cprof_record_t *, void *),
                               void *arg)
{
    uint64_t head = atomic_load_explicit(&rb->head, memory_order_acquire);
    for (uint64_t pos = rb->tail; pos != head; pos++) {
        uint64_t s = atomic_load_explicit(&rb->seq[pos & (rb->capacity - 1)],
                                          memory_order_acquire);
        if (s == pos + 1)
            visit(slot_at(rb, pos), arg);
    }
}
