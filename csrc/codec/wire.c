/* wire: a descriptor-driven walk that names the first protobuf wire fault. */
#include "codec/wire.h"

#include <string.h>

#define MAX_DEPTH 16
/* protobuf-c reads tags and length prefixes of at most 5 bytes (32 bits). */
#define MAX_PREFIX_BYTES 5

typedef struct {
    const uint8_t *base;   /* start of the whole buffer, for offsets */
    cprof_error_t *err;
    char path[256];
} walk_t;

/* Read a varint at *pos (< end). Returns 0, or -1 when truncated, -2 when
 * longer than ten bytes. */
static int read_varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *value)
{
    uint64_t v = 0;
    for (unsigned shift = 0, i = 0; i < 10; i++, shift += 7) {
        if (*pos >= len)
            return -1;
        uint8_t b = p[(*pos)++];
        v |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            *value = v;
            return 0;
        }
    }
    return -2;
}

static int is_length_delimited(ProtobufCType type)
{
    return type == PROTOBUF_C_TYPE_STRING || type == PROTOBUF_C_TYPE_BYTES ||
           type == PROTOBUF_C_TYPE_MESSAGE;
}

static const char *wire_name(unsigned wt)
{
    static const char *names[] = {"varint", "64-bit", "length-delimited", "start-group",
                                  "end-group", "32-bit", "invalid (6)", "invalid (7)"};
    return names[wt & 7];
}

static int walk(walk_t *w, const ProtobufCMessageDescriptor *desc, const uint8_t *p,
                size_t len, int depth)
{
    size_t counts[64] = {0};
    size_t pos = 0;
    size_t path_len = strlen(w->path);
    while (pos < len) {
        size_t at = (size_t)(p + pos - w->base);
        uint64_t tag;
        size_t tag_start = pos;
        int rc = read_varint(p, len, &pos, &tag);
        if (rc != 0)
            return cprof_fail(w->err, CPROF_E_FORMAT,
                              "protobuf: %s field tag at byte %zu of %s",
                              rc == -1 ? "truncated" : "over-long", at, w->path);
        if (pos - tag_start > MAX_PREFIX_BYTES)
            return cprof_fail(w->err, CPROF_E_FORMAT,
                              "protobuf: the field tag at byte %zu of %s is padded to %zu "
                              "bytes; tags are varints of at most %d bytes",
                              at, w->path, pos - tag_start, MAX_PREFIX_BYTES);
        unsigned wt = (unsigned)(tag & 7);
        uint64_t number = tag >> 3;
        if (number == 0 || number > 536870911u)
            return cprof_fail(w->err, CPROF_E_FORMAT,
                              "protobuf: invalid field number %llu at byte %zu of %s",
                              (unsigned long long)number, at, w->path);
        const ProtobufCFieldDescriptor *field =
            protobuf_c_message_descriptor_get_field(desc, (unsigned)number);
        const char *fname = field != NULL ? field->name : "unknown field";
        uint64_t length = 0;
        size_t payload = pos;
        switch (wt) {
        case 0:
            rc = read_varint(p, len, &pos, &length);
            if (rc != 0)
                return cprof_fail(w->err, CPROF_E_FORMAT,
                                  "protobuf: %s varint in %s.%s (field %llu) at byte %zu",
                                  rc == -1 ? "truncated" : "over-long", w->path, fname,
                                  (unsigned long long)number, at);
            break;
        case 1:
        case 5: {
            size_t width = wt == 1 ? 8 : 4;
            if (len - pos < width)
                return cprof_fail(w->err, CPROF_E_FORMAT,
                                  "protobuf: truncated %s value in %s.%s at byte %zu",
                                  wire_name(wt), w->path, fname, at);
            pos += width;
            break;
        }
        case 2:
            rc = read_varint(p, len, &pos, &length);
            if (rc != 0 || pos - payload > MAX_PREFIX_BYTES)
                return cprof_fail(w->err, CPROF_E_FORMAT,
                                  "protobuf: the length of %s.%s (field %llu) at byte %zu is %s; "
                                  "lengths are varints of at most %d bytes",
                                  w->path, fname, (unsigned long long)number, at,
                                  rc == -1 ? "truncated" : "over-long", MAX_PREFIX_BYTES);
            if (length > len - pos)
                return cprof_fail(w->err, CPROF_E_FORMAT,
                                  "protobuf: %s.%s (field %llu) at byte %zu declares %llu bytes "
                                  "but only %zu remain",
                                  w->path, fname, (unsigned long long)number, at,
                                  (unsigned long long)length, len - pos);
            payload = pos;
            pos += (size_t)length;
            break;
        case 3:
        case 4:
            return cprof_fail(w->err, CPROF_E_FORMAT,
                              "protobuf: %s wire type in %s.%s (field %llu) at byte %zu; "
                              "profile.proto uses no groups",
                              wire_name(wt), w->path, fname, (unsigned long long)number, at);
        default:
            return cprof_fail(w->err, CPROF_E_FORMAT,
                              "protobuf: %s wire type in %s.%s (field %llu) at byte %zu",
                              wire_name(wt), w->path, fname, (unsigned long long)number, at);
        }
        if (field == NULL)
            continue;  /* unknown fields are skipped, as the specification asks */
        int want_len = is_length_delimited(field->type);
        int packed_ok = field->label == PROTOBUF_C_LABEL_REPEATED && wt == 2;
        if ((want_len && wt != 2) || (!want_len && wt != 0 && !packed_ok))
            return cprof_fail(w->err, CPROF_E_FORMAT,
                              "protobuf: %s.%s (field %llu) at byte %zu has wire type %s, "
                              "which does not fit its declared type",
                              w->path, fname, (unsigned long long)number, at, wire_name(wt));
        size_t index = counts[number < 64 ? number : 0]++;
        if (packed_ok && !want_len) {
            size_t q = 0;
            uint64_t v;
            while (q < length) {
                rc = read_varint(p + payload, (size_t)length, &q, &v);
                if (rc != 0)
                    return cprof_fail(w->err, CPROF_E_FORMAT,
                                      "protobuf: packed %s.%s at byte %zu %s", w->path, fname, at,
                                      rc == -1 ? "ends inside a varint"
                                               : "holds an over-long varint (more than 10 bytes)");
            }
        }
        if (field->type == PROTOBUF_C_TYPE_MESSAGE) {
            if (depth >= MAX_DEPTH)
                return cprof_fail(w->err, CPROF_E_FORMAT, "protobuf: nesting too deep at %s",
                                  w->path);
            if (field->label == PROTOBUF_C_LABEL_REPEATED)
                snprintf(w->path + path_len, sizeof w->path - path_len, ".%s[%zu]", fname,
                         index);
            else
                snprintf(w->path + path_len, sizeof w->path - path_len, ".%s", fname);
            rc = walk(w, field->descriptor, p + payload, (size_t)length, depth + 1);
            w->path[path_len] = '\0';
            if (rc != 0)
                return rc;
        }
    }
    return CPROF_OK;
}

int cprof_wire_explain(const ProtobufCMessageDescriptor *desc, const uint8_t *data,
                       size_t n, cprof_error_t *err)
{
    walk_t w = {.base = data, .err = err};
    snprintf(w.path, sizeof w.path, "%s", desc->short_name);
    if (walk(&w, desc, data, n, 0) != 0)
        return CPROF_E_FORMAT;
    return cprof_fail(err, CPROF_E_FORMAT,
                      "protobuf: the %zu-byte message could not be decoded as %s (no wire "
                      "fault found: memory may have run out)", n, desc->short_name);
}
