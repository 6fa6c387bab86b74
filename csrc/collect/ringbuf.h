/* ringbuf: a bounded, lock-free queue of stack samples from signal handlers
 * on any thread to one reader holding the GIL (Vyukov's bounded queue: each
 * slot's sequence number says whether it is free, being written, or ready).
 * A full queue drops the sample and counts it: the profile shows the count.
 */
#ifndef CPROF_RINGBUF_H
#define CPROF_RINGBUF_H

#include "collect/frames.h"  /* first: it includes Python.h */

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define CPROF_RECORD_NO_THREAD_STATE 1u  /* the thread has no Python state */
/* Time a thread spent after its last sample (it ended, or the profile
 * stopped): no stack of its own, it belongs to the thread's latest sample. */
#define CPROF_RECORD_TAIL 2u
/* Taken while the thread ran cprof's own drain and hook: cprof's time. */
#define CPROF_RECORD_PROFILER 4u
/* With CPROF_RECORD_TAIL: the time went unsampled because SIGPROF was taken
 * over; it is <sampling stopped>'s, not the thread's latest sample's. */
#define CPROF_RECORD_STOPPED 8u
/* With CPROF_RECORD_TAIL (wall mode): samples (repeats of them) of a thread
 * that had not run since its stack was last seen: more samples of that stack. */
#define CPROF_RECORD_REPEAT 16u
/* A stack seen without a sample (wall mode's snapshot of threads not holding
 * the GIL): it becomes the thread's latest, which repeats then count. */
#define CPROF_RECORD_STACK 32u

typedef struct {
    uint32_t tid;           /* kernel thread id */
    uint32_t flags;
    uint32_t depth;         /* frames stored, leaf first */
    uint32_t total_depth;   /* frames on the stack: more than depth if truncated */
    int64_t weight_ns;      /* CPU or wall time this sample stands for */
    uint64_t label_set;     /* cprof labels in force (0: none) */
    uintptr_t coroutine;    /* outermost coroutine, an identity (0: none) */
    uint32_t repeats;       /* CPROF_RECORD_REPEAT: the samples it stands for */
    cprof_frame_t frames[]; /* max_depth of them */
} cprof_record_t;

typedef struct {
    size_t capacity;        /* slots, a power of two */
    size_t slot_bytes;
    size_t max_depth;
    _Atomic uint64_t head;  /* next position writers claim */
    uint64_t tail;          /* next position the reader takes (reader only) */
    _Atomic uint64_t *seq;  /* per slot */
    unsigned char *slots;
    _Atomic uint64_t lost;  /* samples dropped because the queue was full */
} cprof_ringbuf_t;

/* Allocate for at least capacity samples of max_depth frames. 0 or -1 (ENOMEM). */
int cprof_ringbuf_init(cprof_ringbuf_t *rb, size_t capacity, size_t max_depth);
void cprof_ringbuf_free(cprof_ringbuf_t *rb);

/* Claim a slot to fill, or NULL when full (the loss is counted). Signal-safe,
 * lock-free. Fill it, then commit it with the same position. */
cprof_record_t *cprof_ringbuf_claim_sigsafe(cprof_ringbuf_t *rb, uint64_t *position);
void cprof_ringbuf_commit_sigsafe(cprof_ringbuf_t *rb, uint64_t position);

/* The oldest committed record, or NULL when none is ready (the next one may
 * still be being written). Reader only; release it before taking the next. */
cprof_record_t *cprof_ringbuf_peek(cprof_ringbuf_t *rb);
void cprof_ringbuf_release(cprof_ringbuf_t *rb);

/* Visit committed records not yet taken, including those behind one still
 * being written. Reader only. */
void cprof_ringbuf_visit_ready(cprof_ringbuf_t *rb, void (*visit)(cprof_record_t *, void *),
                               void *arg);

#endif
