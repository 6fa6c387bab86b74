/* graph: flat, cum and inline edges per function, over a decoded profile. */
#include "codec/graph.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    uint64_t *keys;   /* 0 = empty */
    uint32_t *values;
    size_t cap;
} map_t;

/* Keyed with the decoder's per-process secret (pprof.c), so that names or
 * stacks chosen to collide in one process do not in another: probing stays
 * short whatever the input. */
static uint64_t mix(uint64_t x)
{
    x ^= cprof_pprof_id_key();
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x | 1;
}

static int map_init(map_t *m, size_t expected)
{
    m->cap = 64;
    while (m->cap < expected * 2)
        m->cap <<= 1;
    m->keys = calloc(m->cap, sizeof *m->keys);
    m->values = malloc(m->cap * sizeof *m->values);
    return m->keys && m->values ? 0 : -1;
}

static void map_free(map_t *m)
{
    free(m->keys);
    free(m->values);
}

/* The slot of key (found, or empty where it goes). Never full: sized 2x. */
static size_t map_slot(const map_t *m, uint64_t key)
{
    size_t slot = mix(key) & (m->cap - 1);
    while (m->keys[slot] != 0 && m->keys[slot] != key)
        slot = (slot + 1) & (m->cap - 1);
    return slot;
}

/* Strings by content: the first index holding each distinct string, so that
 * a profile repeating a string in its table still gets one node per name. */
static int canonical_strings(const cprof_msg_t *m, int64_t **out)
{
    int64_t *canon = malloc(m->n_string_table * sizeof *canon);
    map_t seen = {0};
    if (canon == NULL || map_init(&seen, m->n_string_table) < 0) {
        free(canon);
        map_free(&seen);
        return -1;
    }
    for (size_t i = 0; i < m->n_string_table; i++) {
        const ProtobufCBinaryData *s = &m->string_table[i];
        uint64_t h = 1469598103934665603ULL ^ cprof_pprof_id_key();
        for (size_t k = 0; k < s->len; k++)
            h = (h ^ s->data[k]) * 1099511628211ULL;
        size_t slot = mix(h) & (seen.cap - 1);
        canon[i] = (int64_t)i;
        for (; seen.keys[slot] != 0; slot = (slot + 1) & (seen.cap - 1)) {
            const ProtobufCBinaryData *o = &m->string_table[seen.values[slot]];
            if (seen.keys[slot] == (h | 1) && o->len == s->len &&
                memcmp(o->data, s->data, s->len) == 0) {
                canon[i] = seen.values[slot];
                break;
            }
        }
        if (seen.keys[slot] == 0) {
            seen.keys[slot] = h | 1;
            seen.values[slot] = (uint32_t)i;
        }
    }
    map_free(&seen);
    *out = canon;
    return 0;
}

/* The index of edge (node, caller), added when new; -1 when memory runs out.
 * The map is kept at most half full. */
static long edge_of(map_t *ids, cprof_graph_t *g, size_t *cap, uint32_t **stamps, uint32_t node,
                    uint32_t caller)
{
    if ((g->n_edges + 1) * 2 > ids->cap) {
        map_t bigger;
        if (map_init(&bigger, ids->cap) < 0) {
            map_free(&bigger);
            return -1;
        }
        for (size_t q = 0; q < ids->cap; q++)
            if (ids->keys[q] != 0) {
                size_t slot = map_slot(&bigger, ids->keys[q]);
                bigger.keys[slot] = ids->keys[q];
                bigger.values[slot] = ids->values[q];
            }
        map_free(ids);
        *ids = bigger;
    }
    uint64_t key = ((uint64_t)node << 32 | caller) + 1;
    size_t slot = map_slot(ids, key);
    if (ids->keys[slot] != 0)
        return ids->values[slot];
    if (g->n_edges == *cap) {
        size_t bigger = *cap ? *cap * 2 : 256;
        cprof_graph_edge_t *grown = realloc(g->edges, bigger * sizeof *grown);
        uint32_t *grown_stamps = realloc(*stamps, bigger * sizeof *grown_stamps);
        if (grown != NULL)
            g->edges = grown;
        if (grown_stamps != NULL)
            *stamps = grown_stamps;
        if (grown == NULL || grown_stamps == NULL)
            return -1;
        *cap = bigger;
    }
    ids->keys[slot] = key;
    ids->values[slot] = (uint32_t)g->n_edges;
    g->edges[g->n_edges] = (cprof_graph_edge_t){node, caller, {0, 0}, 1};
    (*stamps)[g->n_edges] = 0;
    return (long)g->n_edges++;
}

typedef struct {
    uint32_t *nodes;   /* every location's node ids, caller first */
    uint8_t *inlined;  /* per entry: the line is inlined into the next one out */
    size_t *start, *len;
} chains_t;

int cprof_graph_functions(const cprof_pprof_t *p, size_t sample_index, cprof_graph_t *out,
                          cprof_error_t *err)
{
    const cprof_msg_t *m = p->msg;
    memset(out, 0, sizeof *out);
    int64_t *canon = NULL;
    chains_t ch = {0};
    map_t node_ids = {0}, edge_ids = {0};
    uint32_t *stamp = NULL, *stack = NULL;
    uint8_t *stack_inl = NULL, *is_inlined_node = NULL;
    uint32_t *edge_stamp = NULL;  /* per edge: the last sample that added to it */
    size_t stack_cap = 0, node_cap = 0, edge_cap = 0;
    int rc = CPROF_E_NOMEM;

    size_t n_lines = 0;
    for (size_t i = 0; i < m->n_location; i++)
        n_lines += m->location[i]->n_line ? m->location[i]->n_line : 1;
    if (canonical_strings(m, &canon) < 0 || map_init(&node_ids, n_lines + 1) < 0)
        goto done;
    ch.nodes = malloc((n_lines + 1) * sizeof *ch.nodes);
    ch.inlined = malloc(n_lines + 1);
    ch.start = malloc((m->n_location + 1) * sizeof *ch.start);
    ch.len = malloc((m->n_location + 1) * sizeof *ch.len);
    if (!ch.nodes || !ch.inlined || !ch.start || !ch.len)
        goto done;

    /* Nodes of every location, caller first. */
    size_t used = 0;
    for (size_t i = 0; i < m->n_location; i++) {
        const Perftools__Profiles__Location *loc = m->location[i];
        long mi = loc->mapping_id ? cprof_pprof_find(&p->mappings, m->n_mapping, loc->mapping_id)
                                  : -1;
        int64_t objfile = mi >= 0 ? canon[m->mapping[mi]->filename] : 0;
        size_t n = loc->n_line ? loc->n_line : 1;
        ch.start[i] = used;
        ch.len[i] = n;
        for (size_t k = 0; k < n; k++) {
            /* lines are innermost first: the chain is caller first */
            size_t line = n - 1 - k;
            const Perftools__Profiles__Function *fn = NULL;
            if (loc->n_line) {
                long fi = cprof_pprof_find(&p->functions, m->n_function,
                                           loc->line[line]->function_id);
                fn = fi >= 0 ? m->function[fi] : NULL;
            }
            cprof_graph_node_t key = {.name = -1, .objfile = objfile};
            if (fn != NULL && m->string_table[fn->name].len > 0)
                key.name = canon[fn->name];
            else
                key.start_line = fn != NULL ? fn->start_line : 0;
            /* Names set the top bit; (file, start line) pairs never reach it. */
            uint64_t k64 = key.name >= 0
                               ? (1ULL << 63) | (uint64_t)key.name
                               : (((uint64_t)key.objfile << 32) | (uint32_t)key.start_line) + 1;
            size_t slot = map_slot(&node_ids, k64);
            uint32_t id;
            if (node_ids.keys[slot] != 0) {
                id = node_ids.values[slot];
            } else {
                if (out->n_nodes == node_cap) {
                    node_cap = node_cap ? node_cap * 2 : 256;
                    cprof_graph_node_t *grown = realloc(out->nodes, node_cap * sizeof *grown);
                    if (grown == NULL)
                        goto done;
                    out->nodes = grown;
                }
                id = (uint32_t)out->n_nodes++;
                out->nodes[id] = key;
                node_ids.keys[slot] = k64;
                node_ids.values[slot] = id;
            }
            ch.nodes[used] = id;
            ch.inlined[used] = k > 0;
            used++;
        }
    }
    is_inlined_node = calloc(out->n_nodes + 1, 1);
    stamp = calloc(out->n_nodes + 1, sizeof *stamp);
    if (is_inlined_node == NULL || stamp == NULL)
        goto done;
    for (size_t e = 0; e < used; e++)
        if (ch.inlined[e]) {
            is_inlined_node[ch.nodes[e]] = 1;
            out->any_inlined = 1;
        }
    if (out->any_inlined && map_init(&edge_ids, 512) < 0)
        goto done;

    for (size_t si = 0; si < m->n_sample; si++) {
        const Perftools__Profiles__Sample *s = m->sample[si];
        int64_t w = s->value[sample_index];
        if (w == 0 || s->n_location_id == 0)
            continue;
        size_t depth = 0;
        for (size_t j = s->n_location_id; j-- > 0;) {
            long li = cprof_pprof_find(&p->locations, m->n_location, s->location_id[j]);
            depth += ch.len[li];
            if (depth > stack_cap) {
                stack_cap = depth * 2;
                uint32_t *g1 = realloc(stack, stack_cap * sizeof *stack);
                if (g1 == NULL)
                    goto done;
                stack = g1;
                uint8_t *g2 = realloc(stack_inl, stack_cap);
                if (g2 == NULL)
                    goto done;
                stack_inl = g2;
            }
            memcpy(stack + depth - ch.len[li], ch.nodes + ch.start[li], ch.len[li] * sizeof *stack);
            memcpy(stack_inl + depth - ch.len[li], ch.inlined + ch.start[li], ch.len[li]);
        }
        uint32_t mark = (uint32_t)si + 1;
        cprof_sum_add(&out->nodes[stack[depth - 1]].flat, w);
        int has_inlined = 0;
        for (size_t k = 0; k < depth; k++) {
            uint32_t nd = stack[k];
            has_inlined |= is_inlined_node[nd];
            if (stamp[nd] != mark) {
                stamp[nd] = mark;
                cprof_sum_add(&out->nodes[nd].cum, w);
            }
        }
        if (!has_inlined)
            continue;
        /* Edges into inlined nodes, each (node, caller) pair once per sample. */
        int64_t parent = -1;
        for (size_t k = 0; k < depth; k++) {
            uint32_t nd = stack[k];
            if (parent >= 0 && nd != (uint32_t)parent && is_inlined_node[nd]) {
                long e = edge_of(&edge_ids, out, &edge_cap, &edge_stamp, nd, (uint32_t)parent);
                if (e < 0)
                    goto done;
                cprof_graph_edge_t *edge = &out->edges[e];
                if (edge_stamp[e] != mark) {
                    edge_stamp[e] = mark;
                    cprof_sum_add(&edge->weight, w);
                    edge->all_inline = edge->all_inline && stack_inl[k];
                }
            }
            parent = nd;
        }
    }
    rc = CPROF_OK;
done:
    free(canon);
    free(ch.nodes);
    free(ch.inlined);
    free(ch.start);
    free(ch.len);
    map_free(&node_ids);
    map_free(&edge_ids);
    free(stamp);
    free(stack);
    free(stack_inl);
    free(is_inlined_node);
    free(edge_stamp);
    if (rc != CPROF_OK) {
        cprof_graph_free(out);
        return cprof_fail(err, CPROF_E_NOMEM, "out of memory building the call graph");
    }
    return rc;
}

void cprof_graph_free(cprof_graph_t *g)
{
    free(g->nodes);
    free(g->edges);
    memset(g, 0, sizeof *g);
}

int cprof_graph_stack_sums(const cprof_pprof_t *p, size_t sample_index, cprof_stack_sums_t *out,
                           cprof_error_t *err)
{
    const cprof_msg_t *m = p->msg;
    memset(out, 0, sizeof *out);
    map_t index = {0};
    size_t pool_len = 0, pool_cap = 0, cap = 0;
    uint32_t *scratch = NULL;
    size_t scratch_cap = 0;
    int rc = CPROF_E_NOMEM;
    if (map_init(&index, m->n_sample + 1) < 0)
        goto done;
    for (size_t si = 0; si < m->n_sample; si++) {
        const Perftools__Profiles__Sample *s = m->sample[si];
        int64_t w = s->value[sample_index];
        size_t n = s->n_location_id;
        if (w == 0 || n == 0)
            continue;
        if (n > scratch_cap) {
            scratch_cap = n * 2;
            uint32_t *grown = realloc(scratch, scratch_cap * sizeof *grown);
            if (grown == NULL)
                goto done;
            scratch = grown;
        }
        uint64_t h = 0x9e3779b97f4a7c15ULL ^ n ^ cprof_pprof_id_key();
        for (size_t j = 0; j < n; j++) {
            scratch[j] = (uint32_t)cprof_pprof_find(&p->locations, m->n_location,
                                                   s->location_id[j]);
            h = (h ^ scratch[j]) * 0x100000001b3ULL;
        }
        h |= 1;
        size_t slot = mix(h) & (index.cap - 1);
        for (; index.keys[slot] != 0; slot = (slot + 1) & (index.cap - 1)) {
            size_t k = index.values[slot];
            if (index.keys[slot] == h && out->len[k] == n &&
                memcmp(out->pool + out->start[k], scratch, n * sizeof *scratch) == 0)
                break;
        }
        if (index.keys[slot] != 0) {
            cprof_sum_add(&out->sums[index.values[slot]], w);
            continue;
        }
        if (out->n == cap) {
            cap = cap ? cap * 2 : 1024;
            size_t *g1 = realloc(out->start, cap * sizeof *g1);
            if (g1 != NULL)
                out->start = g1;
            size_t *g2 = realloc(out->len, cap * sizeof *g2);
            if (g2 != NULL)
                out->len = g2;
            cprof_sum_t *g3 = realloc(out->sums, cap * sizeof *g3);
            if (g3 != NULL)
                out->sums = g3;
            if (g1 == NULL || g2 == NULL || g3 == NULL)
                goto done;
        }
        while (pool_len + n > pool_cap) {
            pool_cap = pool_cap ? pool_cap * 2 : 4096;
            uint32_t *grown = realloc(out->pool, pool_cap * sizeof *grown);
            if (grown == NULL)
                goto done;
            out->pool = grown;
        }
        memcpy(out->pool + pool_len, scratch, n * sizeof *scratch);
        out->start[out->n] = pool_len;
        out->len[out->n] = n;
        out->sums[out->n] = (cprof_sum_t){0, 0};
        cprof_sum_add(&out->sums[out->n], w);
        pool_len += n;
        index.keys[slot] = h;
        index.values[slot] = (uint32_t)out->n++;
    }
    rc = CPROF_OK;
done:
    map_free(&index);
    free(scratch);
    if (rc != CPROF_OK) {
        cprof_stack_sums_free(out);
        return cprof_fail(err, CPROF_E_NOMEM, "out of memory summing stacks");
    }
    return rc;
}

void cprof_stack_sums_free(cprof_stack_sums_t *s)
{
    free(s->pool);
    free(s->start);
    free(s->len);
    free(s->sums);
    memset(s, 0, sizeof *s);
}
