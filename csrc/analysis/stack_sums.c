/* stack_sums: the distinct location stacks of one sample type (see stack_sums.h). */
#include "analysis/stack_sums.h"

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
