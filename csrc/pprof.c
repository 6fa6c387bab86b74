/* pprof: decode, validate, index and encode profile.proto messages. */
#include "pprof.h"

#include <stdlib.h>
#include <string.h>

#include "gzsink.h"
#include "wire.h"

/* --- id indexes ----------------------------------------------------------- */

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

static void idmap_free(cprof_idmap_t *map)
{
    free(map->keys);
    free(map->values);
    memset(map, 0, sizeof *map);
}

/* what names the table in messages ("location"); id_of(msg, i) is entry i's id. */
static int idmap_build(cprof_idmap_t *map, const char *what, size_t n,
                       uint64_t (*id_of)(const cprof_msg_t *, size_t),
                       const cprof_msg_t *msg, cprof_error_t *err)
{
    memset(map, 0, sizeof *map);
    if (n > UINT32_MAX)
        return cprof_fail(err, CPROF_E_LIMIT, "profile has %zu %ss; at most %u are supported",
                          n, what, (unsigned)UINT32_MAX);
    map->dense = 1;
    for (size_t i = 0; i < n; i++) {
        uint64_t id = id_of(msg, i);
        if (id == 0)
            return cprof_fail(err, CPROF_E_FORMAT, "%s[%zu] has id 0; %s ids must be non-zero",
                              what, i, what);
        if (id != i + 1)
            map->dense = 0;
    }
    if (map->dense)
        return CPROF_OK;
    size_t cap = 16;
    while (cap < n * 2)
        cap <<= 1;
    map->keys = calloc(cap, sizeof *map->keys);
    map->values = malloc(cap * sizeof *map->values);
    if (map->keys == NULL || map->values == NULL) {
        idmap_free(map);
        return cprof_fail(err, CPROF_E_NOMEM, "out of memory indexing %zu %ss", n, what);
    }
    map->cap = cap;
    for (size_t i = 0; i < n; i++) {
        uint64_t id = id_of(msg, i);
        size_t slot = mix(id) & (cap - 1);
        while (map->keys[slot] != 0) {
            if (map->keys[slot] == id) {
                size_t first = map->values[slot];
                idmap_free(map);
                return cprof_fail(err, CPROF_E_FORMAT,
                                  "%s[%zu] and %s[%zu] share id %llu; %s ids must be unique",
                                  what, first, what, i, (unsigned long long)id, what);
            }
            slot = (slot + 1) & (cap - 1);
        }
        map->keys[slot] = id;
        map->values[slot] = (uint32_t)i;
    }
    return CPROF_OK;
}

long cprof_pprof_find(const cprof_idmap_t *map, size_t n, uint64_t id)
{
    if (map->dense)
        return id >= 1 && id <= n ? (long)(id - 1) : -1;
    if (id == 0 || map->cap == 0)
        return -1;
    size_t slot = mix(id) & (map->cap - 1);
    while (map->keys[slot] != 0) {
        if (map->keys[slot] == id)
            return map->values[slot];
        slot = (slot + 1) & (map->cap - 1);
    }
    return -1;
}

static uint64_t mapping_id(const cprof_msg_t *m, size_t i) { return m->mapping[i]->id; }
static uint64_t location_id(const cprof_msg_t *m, size_t i) { return m->location[i]->id; }
static uint64_t function_id(const cprof_msg_t *m, size_t i) { return m->function[i]->id; }


/* --- validation ----------------------------------------------------------- */

typedef struct {
    size_t n_strings;
    cprof_error_t *err;
} checker_t;

#define CHECK_STR(c, value, ...)                                                         \
    do {                                                                                 \
        if ((value) < 0 || (uint64_t)(value) >= (c)->n_strings) {                        \
            char where_[160];                                                            \
            snprintf(where_, sizeof where_, __VA_ARGS__);                                \
            return cprof_fail((c)->err, CPROF_E_FORMAT,                                  \
                              "%s = %lld is not a valid string index (the string table " \
                              "has %zu entries)",                                        \
                              where_, (long long)(value), (c)->n_strings);               \
        }                                                                                \
    } while (0)

static int check_header(const checker_t *c, const cprof_msg_t *m)
{
    for (size_t i = 0; i < m->n_sample_type; i++) {
        CHECK_STR(c, m->sample_type[i]->type, "sample_type[%zu].type", i);
        CHECK_STR(c, m->sample_type[i]->unit, "sample_type[%zu].unit", i);
    }
    if (m->period_type != NULL) {
        CHECK_STR(c, m->period_type->type, "period_type.type");
        CHECK_STR(c, m->period_type->unit, "period_type.unit");
    }
    for (size_t i = 0; i < m->n_comment; i++)
        CHECK_STR(c, m->comment[i], "comment[%zu]", i);
    CHECK_STR(c, m->drop_frames, "drop_frames");
    CHECK_STR(c, m->keep_frames, "keep_frames");
    CHECK_STR(c, m->default_sample_type, "default_sample_type");
    CHECK_STR(c, m->doc_url, "doc_url");
    for (size_t i = 0; i < m->n_mapping; i++) {
        CHECK_STR(c, m->mapping[i]->filename, "mapping[%zu].filename", i);
        CHECK_STR(c, m->mapping[i]->build_id, "mapping[%zu].build_id", i);
    }
    for (size_t i = 0; i < m->n_function; i++) {
        const Perftools__Profiles__Function *f = m->function[i];
        CHECK_STR(c, f->name, "function[%zu].name", i);
        CHECK_STR(c, f->system_name, "function[%zu].system_name", i);
        CHECK_STR(c, f->filename, "function[%zu].filename", i);
    }
    return CPROF_OK;
}

static int check_locations(const cprof_pprof_t *p, cprof_error_t *err)
{
    const cprof_msg_t *m = p->msg;
    for (size_t i = 0; i < m->n_location; i++) {
        const Perftools__Profiles__Location *loc = m->location[i];
        if (loc->mapping_id != 0 && cprof_pprof_find(&p->mappings, m->n_mapping, loc->mapping_id) < 0)
            return cprof_fail(err, CPROF_E_FORMAT,
                              "location[%zu] (id %llu) refers to mapping id %llu, which no "
                              "mapping has",
                              i, (unsigned long long)loc->id,
                              (unsigned long long)loc->mapping_id);
        for (size_t j = 0; j < loc->n_line; j++) {
            uint64_t fid = loc->line[j]->function_id;
            if (fid != 0 && cprof_pprof_find(&p->functions, m->n_function, fid) < 0)
                return cprof_fail(err, CPROF_E_FORMAT,
                                  "location[%zu] (id %llu) line[%zu] refers to function id "
                                  "%llu, which no function has",
                                  i, (unsigned long long)loc->id, j,
                                  (unsigned long long)fid);
        }
    }
    return CPROF_OK;
}

static int check_samples(const checker_t *c, const cprof_pprof_t *p)
{
    const cprof_msg_t *m = p->msg;
    for (size_t i = 0; i < m->n_sample; i++) {
        const Perftools__Profiles__Sample *s = m->sample[i];
        if (s->n_value != m->n_sample_type)
            return cprof_fail(c->err, CPROF_E_FORMAT,
                              "sample[%zu] has %zu values but the profile has %zu sample "
                              "types; each sample needs one value per sample type",
                              i, s->n_value, m->n_sample_type);
        for (size_t j = 0; j < s->n_location_id; j++) {
            if (cprof_pprof_find(&p->locations, m->n_location, s->location_id[j]) < 0)
                return cprof_fail(c->err, CPROF_E_FORMAT,
                                  "sample[%zu].location_id[%zu] = %llu, but no location has "
                                  "that id",
                                  i, j, (unsigned long long)s->location_id[j]);
        }
        for (size_t j = 0; j < s->n_label; j++) {
            const Perftools__Profiles__Label *l = s->label[j];
            CHECK_STR(c, l->key, "sample[%zu].label[%zu].key", i, j);
            CHECK_STR(c, l->str, "sample[%zu].label[%zu].str", i, j);
            CHECK_STR(c, l->num_unit, "sample[%zu].label[%zu].num_unit", i, j);
        }
    }
    return CPROF_OK;
}

int cprof_pprof_index(cprof_pprof_t *p, cprof_error_t *err)
{
    const cprof_msg_t *m = p->msg;
    if (m->n_string_table == 0)
        return cprof_fail(err, CPROF_E_FORMAT,
                          "string_table is empty; string_table[0] must be \"\" (is this a "
                          "pprof profile?)");
    if (m->string_table[0].len != 0) {
        /* protobuf-c's bytes are not NUL-terminated: print at most len bytes. */
        int shown = m->string_table[0].len < 40 ? (int)m->string_table[0].len : 40;
        return cprof_fail(err, CPROF_E_FORMAT,
                          "string_table[0] must be \"\" but holds %zu bytes (\"%.*s\")",
                          m->string_table[0].len, shown,
                          (const char *)m->string_table[0].data);
    }
    checker_t c = {.n_strings = m->n_string_table, .err = err};
    int rc = check_header(&c, m);
    if (rc == 0)
        rc = idmap_build(&p->mappings, "mapping", m->n_mapping, mapping_id, m, err);
    if (rc == 0)
        rc = idmap_build(&p->functions, "function", m->n_function, function_id, m, err);
    if (rc == 0)
        rc = idmap_build(&p->locations, "location", m->n_location, location_id, m, err);
    if (rc == 0)
        rc = check_locations(p, err);
    if (rc == 0)
        rc = check_samples(&c, p);
    return rc;
}

/* --- decode / encode ------------------------------------------------------ */

static void *arena_alloc(void *arena, size_t size)
{
    return cprof_arena_alloc(arena, size);
}

static void arena_free_nothing(void *arena, void *pointer)
{
    (void)arena;
    (void)pointer;  /* released with the whole arena */
}

/* protobuf-c refuses field number 0 only when a tag's first byte shows it, so
 * a padded tag (0x80 0x00) passes as an unknown field, to be written back as
 * the invalid one-byte tag 0x00. True when msg or a sub-message holds one. */
static int has_field_zero(const ProtobufCMessage *msg)
{
    for (unsigned i = 0; i < msg->n_unknown_fields; i++)
        if (msg->unknown_fields[i].tag == 0)
            return 1;
    const ProtobufCMessageDescriptor *desc = msg->descriptor;
    for (unsigned f = 0; f < desc->n_fields; f++) {
        const ProtobufCFieldDescriptor *field = &desc->fields[f];
        if (field->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        const char *member = (const char *)msg + field->offset;
        if (field->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)((const char *)msg + field->quantifier_offset);
            ProtobufCMessage *const *subs = *(ProtobufCMessage *const *const *)member;
            for (size_t k = 0; k < n; k++)
                if (has_field_zero(subs[k]))
                    return 1;
        } else {
            const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)member;
            if (sub != NULL && has_field_zero(sub))
                return 1;
        }
    }
    return 0;
}

int cprof_pprof_decode(const uint8_t *data, size_t n, const cprof_limits_t *limits,
                       cprof_pprof_t **out, cprof_error_t *err)
{
    uint8_t *inflated = NULL;
    size_t raw_n = n;
    const uint8_t *raw = data;
    cprof_pprof_t *p = NULL;
    int rc;
    if (n == 0)
        return cprof_fail(err, CPROF_E_FORMAT, "empty input: a profile is never 0 bytes");
    if (cprof_gz_is_gzip(data, n)) {
        rc = cprof_gz_inflate(data, n, limits, &inflated, &raw_n, err);
        if (rc != 0)
            goto done;
        raw = inflated;
    } else if (n > limits->max_size) {
        rc = cprof_fail(err, CPROF_E_LIMIT,
                        "the profile is %zu bytes, more than the max_size limit of %zu", n,
                        limits->max_size);
        goto done;
    }
    p = calloc(1, sizeof *p);
    if (p == NULL) {
        rc = cprof_fail(err, CPROF_E_NOMEM, "out of memory");
        goto done;
    }
    /* protobuf-c makes several small allocations per sample: taking them
     * from the arena makes unpacking faster and freeing a single walk. */
    ProtobufCAllocator allocator = {
        .alloc = arena_alloc, .free = arena_free_nothing, .allocator_data = &p->arena};
    p->msg = perftools__profiles__profile__unpack(&allocator, raw_n, raw);
    if (p->msg == NULL) {
        rc = cprof_wire_explain(&perftools__profiles__profile__descriptor, raw, raw_n, err);
        goto done;
    }
    if (has_field_zero(&p->msg->base)) {
        rc = cprof_wire_explain(&perftools__profiles__profile__descriptor, raw, raw_n, err);
        goto done;
    }
    rc = cprof_pprof_index(p, err);
done:
    free(inflated);
    if (rc != 0) {
        cprof_pprof_free(p);
        p = NULL;
    }
    *out = p;
    return rc;
}

void cprof_pprof_totals(const cprof_pprof_t *p, int64_t *totals)
{
    const cprof_msg_t *m = p->msg;
    memset(totals, 0, m->n_sample_type * sizeof *totals);
    for (size_t i = 0; i < m->n_sample; i++) {
        const int64_t *v = m->sample[i]->value;
        for (size_t j = 0; j < m->n_sample_type; j++)
            totals[j] = (int64_t)((uint64_t)totals[j] + (uint64_t)v[j]);
    }
}

int cprof_pprof_encode(const cprof_pprof_t *p, int level, uint8_t **out, size_t *out_n,
                       cprof_error_t *err)
{
    const ProtobufCMessage *msg = &p->msg->base;
    if (level == 0) {
        size_t size = protobuf_c_message_get_packed_size(msg);
        uint8_t *buf = malloc(size ? size : 1);
        if (buf == NULL)
            return cprof_fail(err, CPROF_E_NOMEM, "out of memory encoding %zu bytes", size);
        *out_n = protobuf_c_message_pack(msg, buf);
        *out = buf;
        return CPROF_OK;
    }
    cprof_gzsink_t *sink = malloc(sizeof *sink);
    if (sink == NULL)
        return cprof_fail(err, CPROF_E_NOMEM, "out of memory");
    int rc = cprof_gzsink_init(sink, level, err);
    if (rc == 0) {
        protobuf_c_message_pack_to_buffer(msg, &sink->base);
        rc = cprof_gzsink_finish(sink, out, out_n, err);
    }
    cprof_gzsink_free(sink);
    free(sink);
    return rc;
}

void cprof_pprof_free(cprof_pprof_t *p)
{
    if (p == NULL)
        return;
    cprof_arena_free(&p->arena);
    idmap_free(&p->mappings);
    idmap_free(&p->locations);
    idmap_free(&p->functions);
    free(p);
}
