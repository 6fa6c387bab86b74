/* pprof: the profile.proto codec.
 *
 * Decoding takes gzipped or raw bytes, caps what they inflate to, unpacks
 * them with protobuf-c, then validates by pprof's rules (string indices in
 * range, non-zero unique ids, every referenced id present, one value per
 * sample type) and indexes ids for lookup. Encoding packs a message and
 * streams it through zlib. A message built elsewhere (module/build.c builds
 * one from Python objects) is validated the same way before it is encoded.
 * Nothing here is signal-safe; nothing here needs the GIL.
 */
#ifndef CPROF_PPROF_H
#define CPROF_PPROF_H

#include <stddef.h>
#include <stdint.h>

#include "codec/arena.h"
#include "codec/gzip.h"
#include "common/errors.h"
#include "proto/profile.pb-c.h"

typedef Perftools__Profiles__Profile cprof_msg_t;

/* One id and the index of its entry in the message's array. */
typedef struct {
    uint64_t id;
    uint32_t index;
} cprof_idpair_t;

/* id -> index into the message's array. Dense when ids are 1..n in order
 * (Go's and cprof's). Else a hash table whose hash is keyed with a secret
 * drawn once per process, so ids cannot be chosen to collide, and whose
 * probes are bounded: should one ever run past CPROF_IDMAP_MAX_PROBE, the
 * (id, index) pairs are sorted instead and searched by bisection, O(n log n)
 * and O(log n) whatever the ids. */
typedef struct {
    int dense;
    size_t cap;             /* hash mode: a power of two; 0 otherwise */
    uint64_t *keys;         /* 0 marks an empty slot (ids are never 0) */
    uint32_t *values;
    unsigned max_probe;     /* the longest probe any key took */
    size_t n;               /* sorted mode: entries in sorted; 0 otherwise */
    cprof_idpair_t *sorted;
} cprof_idmap_t;

#define CPROF_IDMAP_MAX_PROBE 64

/* The keyed id hash (exposed for tests, which craft collisions with it). */
uint64_t cprof_pprof_id_hash(uint64_t id);
uint64_t cprof_pprof_id_key(void);

typedef struct {
    cprof_msg_t *msg;
    cprof_arena_t arena;   /* owns msg and everything it points to */
    cprof_idmap_t mappings, locations, functions;
} cprof_pprof_t;

/* Decode data (gzip detected by its magic bytes) into a new, validated and
 * indexed profile (*out; release with cprof_pprof_free). limits cap the
 * input, decompressed and decoded sizes and their ratios to the input, and
 * may interrupt (see gzip.h). Returns 0 or a negative cprof_code_t with
 * err filled (CPROF_E_PYTHON when limits->interrupted stopped it). */
int cprof_pprof_decode(const uint8_t *data, size_t n, const cprof_limits_t *limits,
                       cprof_pprof_t **out, cprof_error_t *err);

/* Validate p->msg and build its id indexes. Returns 0 or CPROF_E_FORMAT
 * (naming the field and the offending index or id) or CPROF_E_NOMEM, or
 * CPROF_E_PYTHON when limits (may be NULL) interrupted it. */
int cprof_pprof_index(cprof_pprof_t *p, const cprof_limits_t *limits, cprof_error_t *err);

/* Index of the entry with this id in a table of n entries, or -1. */
long cprof_pprof_find(const cprof_idmap_t *map, size_t n, uint64_t id);

/* A 128-bit two's complement integer: sums of int64 values that cannot
 * wrap (2^64 samples of INT64_MAX would be needed). value = hi * 2^64 + lo. */
typedef struct {
    int64_t hi;
    uint64_t lo;
} cprof_sum_t;

static inline void cprof_sum_add(cprof_sum_t *s, int64_t v)
{
    uint64_t lo = s->lo + (uint64_t)v;
    s->hi += (lo < s->lo) - (v < 0);
    s->lo = lo;
}

static inline void cprof_sum_add128(cprof_sum_t *s, cprof_sum_t v)
{
    uint64_t lo = s->lo + v.lo;
    s->hi += v.hi + (lo < s->lo);
    s->lo = lo;
}

static inline int cprof_sum_is_zero(cprof_sum_t s)
{
    return s.hi == 0 && s.lo == 0;
}

static inline cprof_sum_t cprof_sum_negate(cprof_sum_t s)
{
    cprof_sum_t r = {~s.hi, ~s.lo};
    cprof_sum_add(&r, 1);
    return r;
}

/* Whether |s| < bound (bound >= 0). */
static inline int cprof_sum_below(cprof_sum_t s, int64_t bound)
{
    if (s.hi < 0)
        s = cprof_sum_negate(s);
    return s.hi == 0 && s.lo < (uint64_t)bound;
}

/* Sum of each sample type's values over all samples into totals[n_sample_type],
 * exactly (no wrapping). */
void cprof_pprof_totals(const cprof_pprof_t *p, cprof_sum_t *totals);


/* Encode p->msg: gzip at level 1..9, or raw protobuf when level is 0. *out is
 * malloc'd (caller frees). Returns 0 or a negative code. */
int cprof_pprof_encode(const cprof_pprof_t *p, int level, uint8_t **out, size_t *out_n,
                       cprof_error_t *err);

void cprof_pprof_free(cprof_pprof_t *p);

#endif
