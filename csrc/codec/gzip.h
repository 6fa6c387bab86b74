/* gzip: gzip in both directions for the pprof codec.
 *
 * Inflating is capped: a gzip bomb stops at max_out bytes. Deflating streams
 * protobuf-c's packed output through a small staging buffer straight into
 * zlib, so an encoded profile never exists uncompressed in full.
 * Nothing here is signal-safe; nothing here needs the GIL.
 */
#ifndef CPROF_GZIP_H
#define CPROF_GZIP_H

#include <stddef.h>
#include <stdint.h>
#include <zlib.h>
#include <protobuf-c/protobuf-c.h>

#include "common/errors.h"

/* True when data starts with the gzip magic bytes. */
int cprof_gzip_has_magic(const uint8_t *data, size_t n);

/* What decoding may cost, and how to stop it early.
 *
 * max_size bounds every stage: the input itself, the bytes it inflates to,
 * and the memory the decoded message takes (counted as protobuf-c allocates
 * it; an empty sample is 2 bytes on the wire but about 100 in memory).
 * Inflating 1 GiB takes seconds, so amplification is also recognised by its
 * ratio: real profiles inflate 1-10 fold and decode to 5-50 times their
 * protobuf size, deflate's ceiling is about 1032 fold, and past ratio_floor
 * bytes, inflated bytes or decoded memory above max_ratio times the input's
 * size is refused. max_ratio 0 turns the ratio check off.
 *
 * interrupted, when not NULL, is called every few MiB of work (with ctx); a
 * non-zero return stops decoding with CPROF_E_PYTHON (module/profile.c uses
 * it to run Python's signal handlers, so that Ctrl-C stops a long decode). */
typedef struct {
    size_t max_size;
    unsigned max_ratio;
    int (*interrupted)(void *ctx);
    void *ctx;
} cprof_limits_t;

#define CPROF_DEFAULT_MAX_SIZE ((size_t)1 << 30)
#define CPROF_DEFAULT_MAX_RATIO 256u
#define CPROF_RATIO_FLOOR ((size_t)16 << 20)

/* Inflate every gzip member of data into a malloc'd buffer (*out, *out_n;
 * free() it). Refuses with CPROF_E_LIMIT as soon as the output would exceed
 * limits->max_size bytes or its ratio limits->max_ratio. Returns 0 or a
 * negative cprof_code_t, err filled. */
int cprof_gzip_inflate(const uint8_t *data, size_t n, const cprof_limits_t *limits,
                       uint8_t **out, size_t *out_n, cprof_error_t *err);

#define CPROF_GZIP_STAGE 65536

/* A ProtobufCBuffer whose appends are deflated into a growing output buffer
 * (gzip framing). Use: init, pack into &sink->base, finish, free. */
typedef struct {
    ProtobufCBuffer base;
    z_stream zs;
    int started;           /* deflateInit2 succeeded: deflateEnd is owed */
    int failed;            /* a zlib or allocation error happened */
    uint8_t *out;          /* compressed bytes so far */
    size_t out_len, out_cap;
    size_t stage_len;
    uint8_t stage[CPROF_GZIP_STAGE];
} cprof_gzip_sink_t;

/* level 1..9. Returns 0 or a negative code. */
int cprof_gzip_sink_init(cprof_gzip_sink_t *sink, int level, cprof_error_t *err);
/* Flush and close the gzip stream; on success *out (malloc'd, caller frees)
 * owns the compressed bytes and the sink no longer does. */
int cprof_gzip_sink_finish(cprof_gzip_sink_t *sink, uint8_t **out, size_t *out_n,
                           cprof_error_t *err);
/* Release what the sink still owns; safe after finish or a failed init. */
void cprof_gzip_sink_free(cprof_gzip_sink_t *sink);

#endif
