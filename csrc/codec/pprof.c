/* pprof: decode, validate, index and encode profile.proto messages. */
#define _GNU_SOURCE  /* getrandom, clock_gettime, getpid under -std=c11 */
#include "codec/pprof.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "codec/gzip.h"
#include "codec/wire.h"

/* --- id indexes ----------------------------------------------------------- */

static uint64_t id_key;
static pthread_once_t id_key_once = PTHREAD_ONCE_INIT;

/* The per-process secret of the id hash: from the kernel, or when that fails
 * (no getrandom) from the clock, the process id and an address. */
static void draw_id_key(void)
{
    uint64_t key = 0;
    if (getrandom(&key, sizeof key, GRND_NONBLOCK) != (ssize_t)sizeof key) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        key = (uint64_t)now.tv_nsec * 0x9e3779b97f4a7c15ULL ^ (uint64_t)now.tv_sec ^
              (uint64_t)getpid() << 32 ^ (uint64_t)(uintptr_t)&key;
    }
    id_key = key;
}

uint64_t cprof_pprof_id_key(void)
{
    pthread_once(&id_key_once, draw_id_key);
    return id_key;
}

/* splitmix64's finalizer over the id xored with the key: a bijection whose
 * low bits an attacker who does not know the key cannot steer. */
uint64_t cprof_pprof_id_hash(uint64_t id)
{
    uint64_t x = id ^ id_key;
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static void idmap_free(cprof_idmap_t *map)
{
    free(map->keys);
    free(map->values);
    free(map->sorted);
    memset(map, 0, sizeof *map);
}

static int by_id_then_index(const void *a, const void *b)
{
    const cprof_idpair_t *x = a, *y = b;
    if (x->id != y->id)
        return x->id < y->id ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

static int duplicate(cprof_idmap_t *map, const char *what, size_t first, size_t second,
                     uint64_t id, cprof_error_t *err)
{
    idmap_free(map);
    return cprof_fail(err, CPROF_E_FORMAT,
                      "%s[%zu] and %s[%zu] share id %llu; %s ids must be unique", what, first,
                      what, second, (unsigned long long)id, what);
}

/* The hash table of ids: 1 when built, 0 when some probe ran past
 * CPROF_IDMAP_MAX_PROBE (the caller sorts instead), or a negative code. */
static int idmap_hash(cprof_idmap_t *map, const char *what, size_t n,
                      uint64_t (*id_of)(const cprof_msg_t *, size_t), const cprof_msg_t *msg,
                      cprof_error_t *err)
{
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
    cprof_pprof_id_key();
    for (size_t i = 0; i < n; i++) {
        uint64_t id = id_of(msg, i);
        size_t slot = cprof_pprof_id_hash(id) & (cap - 1);
        unsigned probe = 0;
        while (map->keys[slot] != 0) {
            if (map->keys[slot] == id)
                return duplicate(map, what, map->values[slot], i, id, err);
            if (++probe > CPROF_IDMAP_MAX_PROBE) {
                idmap_free(map);
                return 0;
            }
            slot = (slot + 1) & (cap - 1);
        }
        map->keys[slot] = id;
        map->values[slot] = (uint32_t)i;
        if (probe > map->max_probe)
            map->max_probe = probe;
    }
    return 1;
}

/* The sorted pairs, and the duplicate an entry-by-entry scan meets first:
 * the pair whose later entry comes earliest, with the first entry holding
 * that id. */
static int idmap_sort(cprof_idmap_t *map, const char *what, size_t n,
                      uint64_t (*id_of)(const cprof_msg_t *, size_t), const cprof_msg_t *msg,
                      cprof_error_t *err)
{
    map->sorted = malloc(n * sizeof *map->sorted);
    if (map->sorted == NULL)
        return cprof_fail(err, CPROF_E_NOMEM, "out of memory indexing %zu %ss", n, what);
    map->n = n;
    for (size_t i = 0; i < n; i++)
        map->sorted[i] = (cprof_idpair_t){id_of(msg, i), (uint32_t)i};
    qsort(map->sorted, n, sizeof *map->sorted, by_id_then_index);
    size_t first = 0, second = SIZE_MAX;
    for (size_t k = 1; k < n; k++)
        if (map->sorted[k].id == map->sorted[k - 1].id &&
            (k < 2 || map->sorted[k - 2].id != map->sorted[k].id) &&
            map->sorted[k].index < second) {
            first = map->sorted[k - 1].index;
            second = map->sorted[k].index;
        }
    if (second != SIZE_MAX)
        return duplicate(map, what, first, second, id_of(msg, second), err);
    return CPROF_OK;
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
    int rc = idmap_hash(map, what, n, id_of, msg, err);
    if (rc != 0)
        return rc < 0 ? rc : CPROF_OK;
    return idmap_sort(map, what, n, id_of, msg, err);
}

long cprof_pprof_find(const cprof_idmap_t *map, size_t n, uint64_t id)
{
    if (map->dense)
        return id >= 1 && id <= n ? (long)(id - 1) : -1;
    if (map->cap != 0) {
        size_t slot = cprof_pprof_id_hash(id) & (map->cap - 1);
        for (unsigned probe = 0; probe <= map->max_probe && map->keys[slot] != 0; probe++) {
            if (map->keys[slot] == id)
                return map->values[slot];
            slot = (slot + 1) & (map->cap - 1);
        }
        return -1;
    }
    size_t lo = 0, hi = map->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (map->sorted[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < map->n && map->sorted[lo].id == id ? (long)map->sorted[lo].index : -1;
}

static uint64_t mapping_id(const cprof_msg_t *m, size_t i) { return m->mapping[i]->id; }
static uint64_t location_id(const cprof_msg_t *m, size_t i) { return m->location[i]->id; }
static uint64_t function_id(const cprof_msg_t *m, size_t i) { return m->function[i]->id; }


/* --- validation ----------------------------------------------------------- */

typedef struct {
    size_t n_strings;
    const cprof_limits_t *limits;  /* may be NULL */
    cprof_error_t *err;
} checker_t;

/* Every this many entries, validation lets limits->interrupted stop it. */
#define CHECK_EVERY 65536

static int interrupted(const cprof_limits_t *limits, size_t i)
{
    return limits != NULL && limits->interrupted != NULL && i % CHECK_EVERY == CHECK_EVERY - 1 &&
           limits->interrupted(limits->ctx);
}

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

static int check_locations(const checker_t *c, const cprof_pprof_t *p)
{
    const cprof_msg_t *m = p->msg;
    cprof_error_t *err = c->err;
    for (size_t i = 0; i < m->n_location; i++) {
        const Perftools__Profiles__Location *loc = m->location[i];
        if (interrupted(c->limits, i))
            return CPROF_E_PYTHON;
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
        if (interrupted(c->limits, i))
            return CPROF_E_PYTHON;
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

int cprof_pprof_index(cprof_pprof_t *p, const cprof_limits_t *limits, cprof_error_t *err)
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
    checker_t c = {.n_strings = m->n_string_table, .limits = limits, .err = err};
    int rc = check_header(&c, m);
    if (rc == 0)
        rc = idmap_build(&p->mappings, "mapping", m->n_mapping, mapping_id, m, err);
    if (rc == 0)
        rc = idmap_build(&p->functions, "function", m->n_function, function_id, m, err);
    if (rc == 0)
        rc = idmap_build(&p->locations, "location", m->n_location, location_id, m, err);
    if (rc == 0)
        rc = check_locations(&c, p);
    if (rc == 0)
        rc = check_samples(&c, p);
    return rc;
}

/* --- decode / encode ------------------------------------------------------ */

/* What unpacking has allocated, against what the limits allow. */
typedef struct {
    cprof_arena_t *arena;
    const cprof_limits_t *limits;
    size_t input_n;      /* the bytes the caller passed (gzipped or not) */
    size_t used;         /* bytes protobuf-c asked for so far */
    size_t calls;
    enum { ALLOC_OK, ALLOC_OVER_SIZE, ALLOC_OVER_RATIO, ALLOC_INTERRUPTED } refused;
} alloc_budget_t;

/* Allocations between two calls of limits->interrupted while unpacking. */
#define ALLOC_CHECK_EVERY 65536

/* protobuf-c's allocator: from the arena, within max_size and max_ratio
 * times the input. A refusal makes protobuf-c give up (it then returns
 * NULL), and the reason stays in the budget for the message. */
static void *budget_alloc(void *data, size_t size)
{
    alloc_budget_t *b = data;
    const cprof_limits_t *limits = b->limits;
    if (b->refused != ALLOC_OK)
        return NULL;
    if (size > limits->max_size - b->used) {
        b->refused = ALLOC_OVER_SIZE;
        return NULL;
    }
    b->used += size;
    if (limits->max_ratio != 0 && b->used > CPROF_RATIO_FLOOR &&
        b->used / limits->max_ratio > b->input_n) {
        b->refused = ALLOC_OVER_RATIO;
        return NULL;
    }
    if (++b->calls % ALLOC_CHECK_EVERY == 0 && limits->interrupted != NULL &&
        limits->interrupted(limits->ctx)) {
        b->refused = ALLOC_INTERRUPTED;
        return NULL;
    }
    return cprof_arena_alloc(b->arena, size);
}

static void arena_free_nothing(void *arena, void *pointer)
{
    (void)arena;
    (void)pointer;  /* released with the whole arena */
}

static int budget_refusal(const alloc_budget_t *b, cprof_error_t *err)
{
    switch (b->refused) {
    case ALLOC_OVER_SIZE:
        return cprof_fail(err, CPROF_E_LIMIT,
                          "the decoded profile needs more than %zu bytes of memory (the "
                          "max_size limit); raise max_size if this input is trusted",
                          b->limits->max_size);
    case ALLOC_OVER_RATIO:
        return cprof_fail(err, CPROF_E_LIMIT,
                          "%zu input bytes decode to more than %zu bytes of memory, over "
                          "%u-fold (the max_ratio limit); real profiles take far less, so "
                          "this looks like a decompression bomb (raise max_ratio, or set it "
                          "to 0, if this input is trusted)",
                          b->input_n, b->used, b->limits->max_ratio);
    case ALLOC_INTERRUPTED:
        return CPROF_E_PYTHON;
    default:
        return CPROF_OK;
    }
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

/* --- what is not a profile ------------------------------------------------ */

/* Bytes looked at to tell text from protobuf, and the fewest that are
 * called text (a few printable bytes are as likely a cut protobuf). */
#define SNIFF_BYTES 4096
#define SNIFF_MIN 16

static int starts_with(const uint8_t *d, size_t n, const char *prefix, int fold)
{
    size_t k = strlen(prefix);
    if (n < k)
        return 0;
    for (size_t i = 0; i < k; i++) {
        uint8_t c = d[i];
        if (fold && c >= 'A' && c <= 'Z')
            c = (uint8_t)(c - 'A' + 'a');
        if (c != (uint8_t)prefix[i])
            return 0;
    }
    return 1;
}

/* What text data looks like ("JSON", "HTML", ...), or NULL when it is not
 * text. Every pprof profile holds a 0 byte (string_table[0] is "", encoded
 * 0x32 0x00), and text holds no control bytes but whitespace, so a profile
 * is never taken for text. */
static const char *text_kind(const uint8_t *d, size_t n)
{
    if (n < SNIFF_MIN)
        return NULL;
    size_t look = n < SNIFF_BYTES ? n : SNIFF_BYTES;
    for (size_t i = 0; i < look; i++) {
        uint8_t c = d[i];
        if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != '\v') ||
            c == 0x7f)
            return NULL;
    }
    if (starts_with(d, n, "\xef\xbb\xbf", 0)) {  /* a UTF-8 byte order mark */
        d += 3;
        n -= 3;
    }
    while (n > 0 && (*d == ' ' || *d == '\t' || *d == '\n' || *d == '\r')) {
        d++;
        n--;
    }
    static const struct {
        const char *prefix;
        const char *kind;
    } kinds[] = {
        {"{", "JSON"},
        {"[", "JSON"},
        {"<?xml", "XML"},
        {"<svg", "SVG"},
        {"<!doctype html", "HTML"},
        {"<html", "HTML"},
        {"<", "HTML or XML"},
        {"heap profile:", "Go's legacy heap profile text (cprof.load reads it)"},
        {"--- contention", "Go's legacy contention profile text"},
        {"--- mutex", "Go's legacy mutex profile text"},
        {"goroutine profile:", "Go's goroutine profile text (debug=1)"},
        {"threadcreate profile:", "Go's threadcreate profile text (debug=1)"},
        {"goroutine ", "a Go goroutine dump (debug=2)"},
        {"digraph", "a Graphviz graph"},
    };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (starts_with(d, n, kinds[i].prefix, 1))
            return kinds[i].kind;
    return "text";
}

/* True, with err filled, when raw (inflated from gzip when gzipped) is text
 * rather than a protobuf message: the message says what it looks like. */
static int not_a_profile(const uint8_t *raw, size_t n, int gzipped, cprof_error_t *err)
{
    const char *kind = text_kind(raw, n);
    if (kind == NULL)
        return 0;
    cprof_fail(err, CPROF_E_FORMAT,
               "not a pprof profile: it looks like %s%s; a pprof profile is a protobuf "
               "message, gzipped or not (a Go or cprof endpoint serves one with debug=0)",
               gzipped ? "gzipped " : "", kind);
    return 1;
}

/* Why raw is no profile: what text it looks like, or the first wire fault. */
static int explain(const uint8_t *raw, size_t n, int gzipped, cprof_error_t *err)
{
    if (not_a_profile(raw, n, gzipped, err))
        return CPROF_E_FORMAT;
    return cprof_wire_explain(&perftools__profiles__profile__descriptor, raw, n, err);
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
    if (cprof_gzip_has_magic(data, n)) {
        rc = cprof_gzip_inflate(data, n, limits, &inflated, &raw_n, err);
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
    alloc_budget_t budget = {.arena = &p->arena, .limits = limits, .input_n = n};
    ProtobufCAllocator allocator = {
        .alloc = budget_alloc, .free = arena_free_nothing, .allocator_data = &budget};
    p->msg = perftools__profiles__profile__unpack(&allocator, raw_n, raw);
    if (p->msg == NULL && budget.refused != ALLOC_OK) {
        rc = budget_refusal(&budget, err);
        goto done;
    }
    if (p->msg == NULL || has_field_zero(&p->msg->base)) {
        rc = explain(raw, raw_n, raw != data, err);
        goto done;
    }
    rc = cprof_pprof_index(p, limits, err);
    if (rc == CPROF_E_FORMAT && not_a_profile(raw, raw_n, raw != data, err))
        rc = CPROF_E_FORMAT;
done:
    free(inflated);
    if (rc != 0) {
        cprof_pprof_free(p);
        p = NULL;
    }
    *out = p;
    return rc;
}

void cprof_pprof_totals(const cprof_pprof_t *p, cprof_sum_t *totals)
{
    const cprof_msg_t *m = p->msg;
    memset(totals, 0, m->n_sample_type * sizeof *totals);
    for (size_t i = 0; i < m->n_sample; i++) {
        const int64_t *v = m->sample[i]->value;
        for (size_t j = 0; j < m->n_sample_type; j++)
            cprof_sum_add(&totals[j], v[j]);
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
    cprof_gzip_sink_t *sink = malloc(sizeof *sink);
    if (sink == NULL)
        return cprof_fail(err, CPROF_E_NOMEM, "out of memory");
    int rc = cprof_gzip_sink_init(sink, level, err);
    if (rc == 0) {
        protobuf_c_message_pack_to_buffer(msg, &sink->base);
        rc = cprof_gzip_sink_finish(sink, out, out_n, err);
    }
    cprof_gzip_sink_free(sink);
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
