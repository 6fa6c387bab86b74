/* paths: a decoded profile's distinct node stacks (see paths.h). */
#include "analysis/paths.h"

#include <stdlib.h>
#include <string.h>

/* ---- the intern table ---------------------------------------------------- */

uint64_t cprof_itab_hash(uint64_t x)
{
    /* Keyed with the decoder's per-process secret, so that names or stacks
     * chosen to collide in one process do not in another. */
    x ^= cprof_pprof_id_key();
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x | 1;
}

int cprof_itab_init(cprof_itab_t *t, size_t expected)
{
    t->cap = 64;
    while (t->cap < expected * 2)
        t->cap <<= 1;
    t->n = 0;
    t->hashes = calloc(t->cap, sizeof *t->hashes);
    t->values = malloc(t->cap * sizeof *t->values);
    return t->hashes && t->values ? 0 : -1;
}

void cprof_itab_free(cprof_itab_t *t)
{
    free(t->hashes);
    free(t->values);
    memset(t, 0, sizeof *t);
}

size_t cprof_itab_first(const cprof_itab_t *t, uint64_t h)
{
    return (size_t)h & (t->cap - 1);
}

int cprof_itab_put(cprof_itab_t *t, size_t slot, uint64_t h, uint32_t value)
{
    t->hashes[slot] = h;
    t->values[slot] = value;
    if (++t->n * 2 <= t->cap)
        return 0;
    cprof_itab_t bigger;
    if (cprof_itab_init(&bigger, t->cap) < 0) {
        cprof_itab_free(&bigger);
        return -1;
    }
    for (size_t q = 0; q < t->cap; q++) {
        if (t->hashes[q] == 0)
            continue;
        size_t s = cprof_itab_first(&bigger, t->hashes[q]);
        while (bigger.hashes[s] != 0)
            s = cprof_itab_next(&bigger, s);
        bigger.hashes[s] = t->hashes[q];
        bigger.values[s] = t->values[q];
    }
    bigger.n = t->n;
    cprof_itab_free(t);
    *t = bigger;
    return 0;
}

/* ---- strings ---------------------------------------------------------------- */

static uint64_t bytes_hash(const ProtobufCBinaryData *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t k = 0; k < s->len; k++)
        h = (h ^ s->data[k]) * 1099511628211ULL;
    return cprof_itab_hash(h);
}

int cprof_canonical_strings(const cprof_msg_t *m, int64_t **out)
{
    int64_t *canon = malloc((m->n_string_table + 1) * sizeof *canon);
    cprof_itab_t seen = {0};
    if (canon == NULL || cprof_itab_init(&seen, m->n_string_table) < 0) {
        free(canon);
        cprof_itab_free(&seen);
        return -1;
    }
    for (size_t i = 0; i < m->n_string_table; i++) {
        const ProtobufCBinaryData *s = &m->string_table[i];
        uint64_t h = bytes_hash(s);
        size_t slot = cprof_itab_first(&seen, h);
        canon[i] = (int64_t)i;
        for (; seen.hashes[slot] != 0; slot = cprof_itab_next(&seen, slot)) {
            const ProtobufCBinaryData *o = &m->string_table[seen.values[slot]];
            if (seen.hashes[slot] == h && o->len == s->len &&
                (s->len == 0 || memcmp(o->data, s->data, s->len) == 0)) {
                canon[i] = seen.values[slot];
                break;
            }
        }
        if (canon[i] == (int64_t)i && cprof_itab_put(&seen, slot, h, (uint32_t)i) < 0) {
            free(canon);
            cprof_itab_free(&seen);
            return -1;
        }
    }
    cprof_itab_free(&seen);
    *out = canon;
    return 0;
}

/* The canonical index of the string s, or -1 when the table lacks it. */
int64_t cprof_find_string(const cprof_msg_t *m, const int64_t *canon, const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < m->n_string_table; i++)
        if (m->string_table[i].len == n && memcmp(m->string_table[i].data, s, n) == 0)
            return canon[i];
    return -1;
}

static int cmp_i64(int64_t a, int64_t b)
{
    return (a > b) - (a < b);
}

int cprof_labels_cmp(const int64_t *canon, const Perftools__Profiles__Sample *a,
                     const Perftools__Profiles__Sample *b)
{
    if (a->n_label != b->n_label)
        return a->n_label < b->n_label ? -1 : 1;
    for (size_t j = 0; j < a->n_label; j++) {
        const Perftools__Profiles__Label *k = a->label[j], *l = b->label[j];
        int c = cmp_i64(canon[k->key], canon[l->key]);
        c = c ? c : cmp_i64(canon[k->str], canon[l->str]);
        c = c ? c : cmp_i64(k->num, l->num);
        c = c ? c : cmp_i64(canon[k->num_unit], canon[l->num_unit]);
        if (c)
            return c;
    }
    return 0;
}

/* ---- growth ------------------------------------------------------------------ */

/* Make room for need elements of size elem in *p (capacity *cap). */
int cprof_reserve(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t bigger = *cap ? *cap : 256;
    while (bigger < need)
        bigger *= 2;
    void *grown = realloc(*p, bigger * elem);
    if (grown == NULL)
        return -1;
    *p = grown;
    *cap = bigger;
    return 0;
}

void cprof_sort_order(uint32_t *order, uint32_t *tmp, size_t n, cprof_order_fn cmp,
                      const void *ctx)
{
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n;
            size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                tmp[k++] = cmp(ctx, order[j], order[i]) < 0 ? order[j++] : order[i++];
            while (i < mid)
                tmp[k++] = order[i++];
            while (j < hi)
                tmp[k++] = order[j++];
        }
        memcpy(order, tmp, n * sizeof *order);
    }
}

int cprof_frame_seq_compare(const void *ctx, uint32_t a, uint32_t b)
{
    const cprof_frame_seqs_t *s = ctx;
    const uint32_t *x = s->frames + s->start[a], *y = s->frames + s->start[b];
    uint32_t n = s->len[a] < s->len[b] ? s->len[a] : s->len[b];
    for (uint32_t i = 0; i < n; i++)
        if (x[i] != y[i])
            return x[i] < y[i] ? -1 : 1;
    return (s->len[a] > s->len[b]) - (s->len[a] < s->len[b]);
}

/* ---- nodes --------------------------------------------------------------------- */

typedef struct {
    cprof_node_t *nodes;
    int64_t *file, *start;
    size_t n, cap, file_cap, start_cap;
    cprof_itab_t index;
} nodes_t;

uint64_t cprof_node_hash(const cprof_node_t *k)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL;
    const int64_t f[5] = {k->name, k->file, k->start_line, k->line, k->objfile};
    for (int i = 0; i < 5; i++)
        h = (h ^ (uint64_t)f[i]) * 0x100000001b3ULL + (h >> 29);
    return cprof_itab_hash(h);
}

/* The id of node k, added when new (made by function fn, or NULL); -1 when
 * memory runs out. */
static long node_id(nodes_t *ns, const cprof_node_t *k, const Perftools__Profiles__Function *fn,
                    const int64_t *canon)
{
    uint64_t h = cprof_node_hash(k);
    size_t slot = cprof_itab_first(&ns->index, h);
    for (; ns->index.hashes[slot] != 0; slot = cprof_itab_next(&ns->index, slot))
        if (ns->index.hashes[slot] == h &&
            memcmp(&ns->nodes[ns->index.values[slot]], k, sizeof *k) == 0)
            return ns->index.values[slot];
    if (cprof_reserve((void **)&ns->nodes, &ns->cap, ns->n + 1, sizeof *ns->nodes) < 0 ||
        cprof_reserve((void **)&ns->file, &ns->file_cap, ns->n + 1, sizeof *ns->file) < 0 ||
        cprof_reserve((void **)&ns->start, &ns->start_cap, ns->n + 1, sizeof *ns->start) < 0 ||
        cprof_itab_put(&ns->index, slot, h, (uint32_t)ns->n) < 0)
        return -1;
    ns->nodes[ns->n] = *k;
    ns->file[ns->n] = fn != NULL ? canon[fn->filename] : 0;
    ns->start[ns->n] = fn != NULL ? fn->start_line : 0;
    return (long)ns->n++;
}

/* The node of one line of a location (fn: its function, or NULL). */
static cprof_node_t line_node(const Perftools__Profiles__Function *fn, int64_t line,
                              int64_t objfile, cprof_grain_t grain, const int64_t *canon)
{
    cprof_node_t k = {0, 0, 0, 0, 0};
    if (fn == NULL) {
        k.objfile = objfile;
        return k;
    }
    int64_t name = canon[fn->name], file = canon[fn->filename];
    switch (grain) {
    case CPROF_GRAIN_FILE:
        if (file != 0)
            k.name = file;
        else
            k.objfile = objfile;
        break;
    case CPROF_GRAIN_LINE:
        k.name = name;
        k.file = file;
        k.line = line;
        break;
    default:
        if (name != 0) {
            k.name = name;
        } else {
            k.start_line = fn->start_line;
            k.objfile = objfile;
        }
    }
    return k;
}

/* ---- chains: each location's nodes, caller first ---------------------------------- */

typedef struct {
    uint32_t *ids;
    uint8_t *inl;
    int64_t *lines;
    size_t *start;
    uint32_t *len;
} chains_t;

static int build_chains(const cprof_pprof_t *p, const int64_t *canon, cprof_grain_t grain,
                        nodes_t *ns, chains_t *ch, int *inlined)
{
    const cprof_msg_t *m = p->msg;
    size_t total = 0;
    for (size_t li = 0; li < m->n_location; li++)
        total += m->location[li]->n_line ? m->location[li]->n_line : 1;
    ch->ids = malloc((total + 1) * sizeof *ch->ids);
    ch->inl = malloc(total + 1);
    ch->lines = malloc((total + 1) * sizeof *ch->lines);
    ch->start = malloc((m->n_location + 1) * sizeof *ch->start);
    ch->len = malloc((m->n_location + 1) * sizeof *ch->len);
    if (!ch->ids || !ch->inl || !ch->lines || !ch->start || !ch->len)
        return -1;
    size_t at = 0;
    for (size_t li = 0; li < m->n_location; li++) {
        const Perftools__Profiles__Location *loc = m->location[li];
        int64_t objfile = 0;
        if (loc->mapping_id != 0) {
            long mi = cprof_pprof_find(&p->mappings, m->n_mapping, loc->mapping_id);
            if (mi >= 0)
                objfile = canon[m->mapping[mi]->filename];
        }
        ch->start[li] = at;
        size_t n = loc->n_line ? loc->n_line : 1;
        ch->len[li] = (uint32_t)n;
        if (n > 1)
            *inlined = 1;
        for (size_t j = 0; j < n; j++) {
            /* Lines are leaf first: the chain takes them in reverse. */
            const Perftools__Profiles__Line *ln = loc->n_line ? loc->line[n - 1 - j] : NULL;
            const Perftools__Profiles__Function *fn = NULL;
            if (ln != NULL && ln->function_id != 0) {
                long fi = cprof_pprof_find(&p->functions, m->n_function, ln->function_id);
                if (fi >= 0)
                    fn = m->function[fi];
            }
            cprof_node_t k = line_node(fn, ln ? ln->line : 0, objfile, grain, canon);
            long id = node_id(ns, &k, fn, canon);
            if (id < 0)
                return -1;
            ch->ids[at] = (uint32_t)id;
            ch->inl[at] = j > 0;
            ch->lines[at] = ln ? ln->line : 0;
            at++;
        }
    }
    return 0;
}

static void chains_free(chains_t *ch)
{
    free(ch->ids);
    free(ch->inl);
    free(ch->lines);
    free(ch->start);
    free(ch->len);
}

/* ---- paths ----------------------------------------------------------------------- */

int cprof_is_base_sample(const Perftools__Profiles__Sample *s, const int64_t *canon,
                         int64_t base_key, int64_t true_str)
{
    if (base_key < 0 || true_str < 0)
        return 0;
    for (size_t j = 0; j < s->n_label; j++)
        if (canon[s->label[j]->key] == base_key && s->label[j]->str != 0 &&
            canon[s->label[j]->str] == true_str)
            return 1;
    return 0;
}

int cprof_paths_build(const cprof_pprof_t *p, cprof_grain_t grain, cprof_paths_t *out,
                      cprof_error_t *err)
{
    const cprof_msg_t *m = p->msg;
    memset(out, 0, sizeof *out);
    out->n_types = m->n_sample_type;
    int64_t *canon = NULL;
    nodes_t ns = {0};
    chains_t ch = {0};
    cprof_itab_t index = {0};
    uint32_t *scratch = NULL;
    uint8_t *scratch_inl = NULL;
    int64_t *scratch_lines = NULL;
    size_t scratch_cap = 0, inl_cap = 0, lines_cap = 0, pool_len = 0;
    struct {
        size_t start, len, base, sums, abs, nonzero, pool, inl, lines;
    } cap = {0};
    int rc = CPROF_E_NOMEM;
    const size_t nt = m->n_sample_type;

    if (cprof_canonical_strings(m, &canon) < 0 || cprof_itab_init(&ns.index, 1024) < 0 ||
        cprof_itab_init(&index, 1024) < 0)
        goto done;
    if (build_chains(p, canon, grain, &ns, &ch, &out->inlined) < 0)
        goto done;
    /* Never NULL, even for the empty path (memcpy and memcmp need a pointer). */
    if (cprof_reserve((void **)&scratch, &scratch_cap, 1, sizeof *scratch) < 0 ||
        cprof_reserve((void **)&scratch_inl, &inl_cap, 1, 1) < 0 ||
        cprof_reserve((void **)&scratch_lines, &lines_cap, 1, sizeof *scratch_lines) < 0)
        goto done;
    int64_t base_key = cprof_find_string(m, canon, "pprof::base");
    int64_t true_str = cprof_find_string(m, canon, "true");

    for (size_t si = 0; si < m->n_sample; si++) {
        const Perftools__Profiles__Sample *s = m->sample[si];
        int any = 0;
        for (size_t t = 0; t < nt; t++)
            any |= s->value[t] != 0;
        if (!any)
            continue;
        /* The path, root first, into scratch. */
        size_t depth = 0;
        for (size_t j = s->n_location_id; j-- > 0;) {
            long li = cprof_pprof_find(&p->locations, m->n_location, s->location_id[j]);
            if (li < 0)
                continue;  /* validated at decode; never taken */
            size_t n = ch.len[li];
            if (cprof_reserve((void **)&scratch, &scratch_cap, depth + n, sizeof *scratch) < 0 ||
                cprof_reserve((void **)&scratch_inl, &inl_cap, depth + n, 1) < 0 ||
                cprof_reserve((void **)&scratch_lines, &lines_cap, depth + n, sizeof *scratch_lines) < 0)
                goto done;
            memcpy(scratch + depth, ch.ids + ch.start[li], n * sizeof *scratch);
            memcpy(scratch_inl + depth, ch.inl + ch.start[li], n);
            memcpy(scratch_lines + depth, ch.lines + ch.start[li], n * sizeof *scratch_lines);
            depth += n;
        }
        if (depth > UINT32_MAX) {
            rc = cprof_fail(err, CPROF_E_FORMAT, "sample %zu: a stack of %zu frames", si, depth);
            goto done;
        }
        uint8_t base = (uint8_t)cprof_is_base_sample(s, canon, base_key, true_str);
        uint64_t h = 0xcbf29ce484222325ULL ^ base;
        for (size_t k = 0; k < depth; k++)
            h = (h ^ ((uint64_t)scratch[k] << 1 | scratch_inl[k])) * 0x100000001b3ULL;
        h = cprof_itab_hash(h ^ depth);
        size_t slot = cprof_itab_first(&index, h);
        long found = -1;
        for (; index.hashes[slot] != 0; slot = cprof_itab_next(&index, slot)) {
            uint32_t k = index.values[slot];
            if (index.hashes[slot] == h && out->len[k] == depth && out->base[k] == base &&
                memcmp(out->pool + out->start[k], scratch, depth * sizeof *scratch) == 0 &&
                memcmp(out->inl + out->start[k], scratch_inl, depth) == 0) {
                found = k;
                break;
            }
        }
        if (found < 0) {
            size_t k = out->n;
            if (cprof_reserve((void **)&out->start, &cap.start, k + 1, sizeof *out->start) < 0 ||
                cprof_reserve((void **)&out->len, &cap.len, k + 1, sizeof *out->len) < 0 ||
                cprof_reserve((void **)&out->base, &cap.base, k + 1, 1) < 0 ||
                cprof_reserve((void **)&out->sums, &cap.sums, (k + 1) * nt + 1, sizeof *out->sums) < 0 ||
                cprof_reserve((void **)&out->abs, &cap.abs, (k + 1) * nt + 1, sizeof *out->abs) < 0 ||
                cprof_reserve((void **)&out->nonzero, &cap.nonzero, (k + 1) * nt + 1, 1) < 0 ||
                cprof_reserve((void **)&out->pool, &cap.pool, pool_len + depth + 1, sizeof *out->pool) < 0 ||
                cprof_reserve((void **)&out->inl, &cap.inl, pool_len + depth + 1, 1) < 0 ||
                cprof_reserve((void **)&out->lines, &cap.lines, pool_len + depth + 1, sizeof *out->lines) < 0)
                goto done;
            memcpy(out->pool + pool_len, scratch, depth * sizeof *scratch);
            memcpy(out->inl + pool_len, scratch_inl, depth);
            memcpy(out->lines + pool_len, scratch_lines, depth * sizeof *scratch_lines);
            out->start[k] = pool_len;
            out->len[k] = (uint32_t)depth;
            out->base[k] = base;
            memset(out->sums + k * nt, 0, nt * sizeof *out->sums);
            memset(out->abs + k * nt, 0, nt * sizeof *out->abs);
            memset(out->nonzero + k * nt, 0, nt);
            pool_len += depth;
            if (cprof_itab_put(&index, slot, h, (uint32_t)k) < 0)
                goto done;
            out->n++;
            found = (long)k;
        } else {
            int64_t *lines = out->lines + out->start[found];
            for (size_t k = 0; k < depth; k++)
                if (lines[k] != scratch_lines[k])
                    lines[k] = 0;
        }
        for (size_t t = 0; t < nt; t++) {
            int64_t v = s->value[t];
            if (v == 0)
                continue;
            cprof_sum_add(&out->sums[found * nt + t], v);
            /* |INT64_MIN| does not fit an int64: add it as two halves. */
            if (v == INT64_MIN) {
                cprof_sum_add(&out->abs[found * nt + t], INT64_MAX);
                cprof_sum_add(&out->abs[found * nt + t], 1);
            } else {
                cprof_sum_add(&out->abs[found * nt + t], v < 0 ? -v : v);
            }
            out->nonzero[found * nt + t] = 1;
        }
    }
    out->nodes = ns.nodes;
    out->n_nodes = ns.n;
    out->node_file = ns.file;
    out->node_start = ns.start;
    ns.nodes = NULL;
    ns.file = ns.start = NULL;
    rc = CPROF_OK;
done:
    free(canon);
    free(ns.nodes);
    free(ns.file);
    free(ns.start);
    cprof_itab_free(&ns.index);
    cprof_itab_free(&index);
    /* Each location's chain of nodes stays with the paths (tags.c reads it). */
    out->loc_nodes = ch.ids;
    out->loc_start = ch.start;
    out->loc_len = ch.len;
    ch.ids = NULL;
    ch.start = NULL;
    ch.len = NULL;
    chains_free(&ch);
    free(scratch);
    free(scratch_inl);
    free(scratch_lines);
    if (rc != CPROF_OK) {
        cprof_paths_free(out);
        if (rc == CPROF_E_NOMEM)
            return cprof_fail(err, CPROF_E_NOMEM, "out of memory summing the profile's stacks");
    }
    return rc;
}

void cprof_paths_free(cprof_paths_t *ps)
{
    free(ps->loc_nodes);
    free(ps->loc_start);
    free(ps->loc_len);
    free(ps->nodes);
    free(ps->node_file);
    free(ps->node_start);
    free(ps->pool);
    free(ps->inl);
    free(ps->lines);
    free(ps->start);
    free(ps->len);
    free(ps->base);
    free(ps->sums);
    free(ps->abs);
    free(ps->nonzero);
    memset(ps, 0, sizeof *ps);
}
