/* gzip: capped inflation, and a sink that deflates protobuf-c's output as it streams. */
#include "codec/gzip.h"

#include <stdlib.h>
#include <string.h>

int cprof_gzip_has_magic(const uint8_t *data, size_t n)
{
    return n >= 2 && data[0] == 0x1f && data[1] == 0x8b;
}

/* deflate never inflates more than about 1032-fold (258 bytes per 2 bits). */
#define DEFLATE_MAX_RATIO 1032u
/* The first buffer is at most this large: a bigger output grows into place. */
#define FIRST_CAPACITY_CAP ((size_t)64 << 20)

/* The gzip trailer's ISIZE is the last member's size mod 2^32: a forged one
 * is free, so it is only a hint, believed up to what the input can inflate
 * to and FIRST_CAPACITY_CAP, never for bounds. */
static size_t first_capacity(const uint8_t *data, size_t n, size_t max_out)
{
    size_t guess = n * 4;
    if (n >= 18) {
        const uint8_t *t = data + n - 4;
        size_t isize = (size_t)t[0] | (size_t)t[1] << 8 | (size_t)t[2] << 16 |
                       (size_t)t[3] << 24;
        size_t possible = n <= SIZE_MAX / DEFLATE_MAX_RATIO ? n * DEFLATE_MAX_RATIO : SIZE_MAX;
        if (isize > guess && isize < possible)
            guess = isize + 1;
    }
    if (guess < 65536)
        guess = 65536;
    if (guess > FIRST_CAPACITY_CAP)
        guess = FIRST_CAPACITY_CAP;
    return guess > max_out ? max_out + 1 : guess;
}

int cprof_gzip_inflate(const uint8_t *data, size_t n, const cprof_limits_t *limits,
                       uint8_t **out, size_t *out_n, cprof_error_t *err)
{
    size_t max_out = limits->max_size;
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    /* 16 + MAX_WBITS: gzip framing only, header and CRC checked by zlib. */
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
        return cprof_fail(err, CPROF_E_NOMEM, "zlib could not start inflating");

    int code = CPROF_OK;
    if (n > max_out) {
        code = cprof_fail(err, CPROF_E_LIMIT,
                          "the profile is %zu bytes (gzipped), more than the max_size limit "
                          "of %zu; raise max_size if this input is trusted", n, max_out);
        inflateEnd(&zs);
        return code;
    }
    size_t cap = first_capacity(data, n, max_out);
    uint8_t *buf = malloc(cap);
    if (buf == NULL) {
        code = cprof_fail(err, CPROF_E_NOMEM, "out of memory inflating %zu bytes", n);
        goto done;
    }
    size_t len = 0;
    const uint8_t *next = data;
    size_t left = n;
    for (;;) {
        if (len == cap) {
            if (cap > max_out) {
                code = cprof_fail(err, CPROF_E_LIMIT,
                                  "gzip: the profile inflates to more than %zu bytes (the "
                                  "max_size limit); raise max_size if this input is trusted",
                                  max_out);
                goto done;
            }
            size_t next_cap = cap * 2 > max_out ? max_out + 1 : cap * 2;
            uint8_t *grown = realloc(buf, next_cap);
            if (grown == NULL) {
                code = cprof_fail(err, CPROF_E_NOMEM, "out of memory inflating to %zu bytes",
                                  next_cap);
                goto done;
            }
            buf = grown;
            cap = next_cap;
        }
        /* zlib counts in uInt; output goes in 4 MiB steps so that the limits
         * are checked while a bomb is still small. */
        size_t in_chunk = left < (1u << 30) ? left : (1u << 30);
        size_t out_room = cap - len < (4u << 20) ? cap - len : (4u << 20);
        zs.next_in = (Bytef *)next;
        zs.avail_in = (uInt)in_chunk;
        zs.next_out = buf + len;
        zs.avail_out = (uInt)out_room;
        if (limits->interrupted != NULL && limits->interrupted(limits->ctx)) {
            code = CPROF_E_PYTHON;
            goto done;
        }
        int rc = inflate(&zs, Z_NO_FLUSH);
        size_t used = in_chunk - zs.avail_in;
        next += used;
        left -= used;
        len += out_room - zs.avail_out;
        if (limits->max_ratio != 0 && len > CPROF_RATIO_FLOOR &&
            len / limits->max_ratio > n - left) {
            code = cprof_fail(err, CPROF_E_LIMIT,
                              "gzip: %zu bytes inflated to more than %zu, over %u-fold; real "
                              "profiles inflate about 1-10 fold, so this looks like a gzip "
                              "bomb (raise max_ratio, or set it to 0, if this input is trusted)",
                              n - left, len, limits->max_ratio);
            goto done;
        }
        if (rc == Z_STREAM_END) {
            if (left == 0)
                break;
            if (!cprof_gzip_has_magic(next, left)) {
                code = cprof_fail(err, CPROF_E_FORMAT,
                                  "gzip: %zu bytes of trailing garbage after the gzip stream "
                                  "(offset %zu)", left, n - left);
                goto done;
            }
            inflateReset(&zs);  /* a further gzip member follows */
            continue;
        }
        if (rc == Z_OK)
            continue;
        if (rc == Z_BUF_ERROR && left == 0 && zs.avail_out != 0) {
            code = cprof_fail(err, CPROF_E_FORMAT,
                              "gzip: the stream is truncated after %zu of its bytes; the file "
                              "was probably cut short", n);
            goto done;
        }
        if (rc == Z_BUF_ERROR)
            continue;  /* no room: the loop grows the buffer */
        if (rc == Z_MEM_ERROR) {
            code = cprof_fail(err, CPROF_E_NOMEM, "zlib ran out of memory");
            goto done;
        }
        code = cprof_fail(err, CPROF_E_FORMAT, "gzip: corrupt data at input offset %zu: %s",
                          n - left, zs.msg != NULL ? zs.msg : "invalid stream");
        goto done;
    }
    if (len > max_out) {
        code = cprof_fail(err, CPROF_E_LIMIT,
                          "gzip: the profile inflates to more than %zu bytes (the max_size "
                          "limit); raise max_size if this input is trusted", max_out);
        goto done;
    }
    *out = buf;
    *out_n = len;
    buf = NULL;
done:
    inflateEnd(&zs);
    free(buf);
    return code;
}

/* --- deflate sink --------------------------------------------------------- */

static int deflate_stage(cprof_gzip_sink_t *sink, int flush)
{
    sink->zs.next_in = sink->stage;
    sink->zs.avail_in = (uInt)sink->stage_len;
    for (;;) {
        if (sink->out_cap - sink->out_len < 65536) {
            size_t cap = sink->out_cap * 2 + 65536;
            uint8_t *grown = realloc(sink->out, cap);
            if (grown == NULL)
                return CPROF_E_ZLIB;
            sink->out = grown;
            sink->out_cap = cap;
        }
        size_t room = sink->out_cap - sink->out_len;
        if (room > (1u << 30))
            room = 1u << 30;
        sink->zs.next_out = sink->out + sink->out_len;
        sink->zs.avail_out = (uInt)room;
        int rc = deflate(&sink->zs, flush);
        sink->out_len += room - sink->zs.avail_out;
        if (rc == Z_STREAM_END)
            break;
        if (rc != Z_OK && rc != Z_BUF_ERROR)
            return CPROF_E_ZLIB;
        if (sink->zs.avail_in == 0 && sink->zs.avail_out != 0)
            break;
    }
    sink->stage_len = 0;
    return CPROF_OK;
}

static void sink_append(ProtobufCBuffer *buffer, size_t len, const uint8_t *data)
{
    cprof_gzip_sink_t *sink = (cprof_gzip_sink_t *)buffer;
    while (len > 0 && !sink->failed) {
        size_t room = CPROF_GZIP_STAGE - sink->stage_len;
        size_t take = len < room ? len : room;
        memcpy(sink->stage + sink->stage_len, data, take);
        sink->stage_len += take;
        data += take;
        len -= take;
        if (sink->stage_len == CPROF_GZIP_STAGE && deflate_stage(sink, Z_NO_FLUSH) != 0)
            sink->failed = 1;
    }
}

int cprof_gzip_sink_init(cprof_gzip_sink_t *sink, int level, cprof_error_t *err)
{
    memset(sink, 0, offsetof(cprof_gzip_sink_t, stage));
    sink->base.append = sink_append;
    if (level < 1 || level > 9)
        return cprof_fail(err, CPROF_E_FORMAT, "compression level %d is not in 1..9", level);
    /* 16 + MAX_WBITS: write gzip framing, as pprof files are. */
    if (deflateInit2(&sink->zs, level, Z_DEFLATED, 16 + MAX_WBITS, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK)
        return cprof_fail(err, CPROF_E_NOMEM, "zlib could not start deflating");
    sink->started = 1;
    return CPROF_OK;
}

int cprof_gzip_sink_finish(cprof_gzip_sink_t *sink, uint8_t **out, size_t *out_n,
                           cprof_error_t *err)
{
    if (sink->failed || deflate_stage(sink, Z_FINISH) != 0)
        return cprof_fail(err, CPROF_E_ZLIB, "zlib failed (or memory ran out) compressing "
                          "the profile");
    *out = sink->out;
    *out_n = sink->out_len;
    sink->out = NULL;
    sink->out_len = sink->out_cap = 0;
    return CPROF_OK;
}

void cprof_gzip_sink_free(cprof_gzip_sink_t *sink)
{
    if (sink->started)
        deflateEnd(&sink->zs);
    sink->started = 0;
    free(sink->out);
    sink->out = NULL;
}
