/* stack_sums: the distinct location stacks of one sample type (see stack_sums.h). */
#include "analysis/stack_sums.h"

#include <stdlib.h>
#include <string.h>

int cprof_graph_stack_sums(const cprof_pprof_t *p, size_t sample_index, cprof_stack_sums_t *out,
                           cprof_error_t *err)
{
    const cprof_msg_t *m = p->msg;
    memset(out, 0, sizeof *out);
    cprof_itab_t index = {0};
    size_t pool_len = 0;
    struct {
        size_t scratch, pool, start, len, sums;
    } cap = {0};
    uint32_t *scratch = NULL;
    int rc = CPROF_E_NOMEM;
    if (cprof_itab_init(&index, 1024) < 0)
        goto done;
    for (size_t si = 0; si < m->n_sample; si++) {
        const Perftools__Profiles__Sample *s = m->sample[si];
        int64_t w = s->value[sample_index];
        size_t n = s->n_location_id;
        if (w == 0 || n == 0)
            continue;
        if (cprof_reserve((void **)&scratch, &cap.scratch, n, sizeof *scratch) < 0)
            goto done;
        uint64_t h = 0x9e3779b97f4a7c15ULL ^ n;
        for (size_t j = 0; j < n; j++) {
            scratch[j] = (uint32_t)cprof_pprof_find(&p->locations, m->n_location,
                                                   s->location_id[j]);
            h = (h ^ scratch[j]) * 0x100000001b3ULL;
        }
        h = cprof_itab_hash(h);
        size_t slot = cprof_itab_first(&index, h);
        long found = -1;
        for (; index.hashes[slot] != 0; slot = cprof_itab_next(&index, slot)) {
            uint32_t k = index.values[slot];
            if (index.hashes[slot] == h && out->len[k] == n &&
                memcmp(out->pool + out->start[k], scratch, n * sizeof *scratch) == 0) {
                found = k;
                break;
            }
        }
        if (found >= 0) {
            cprof_sum_add(&out->sums[found], w);
            continue;
        }
        size_t k = out->n;
        if (cprof_reserve((void **)&out->start, &cap.start, k + 1, sizeof *out->start) < 0 ||
            cprof_reserve((void **)&out->len, &cap.len, k + 1, sizeof *out->len) < 0 ||
            cprof_reserve((void **)&out->sums, &cap.sums, k + 1, sizeof *out->sums) < 0 ||
            cprof_reserve((void **)&out->pool, &cap.pool, pool_len + n, sizeof *out->pool) < 0 ||
            cprof_itab_put(&index, slot, h, (uint32_t)k) < 0)
            goto done;
        memcpy(out->pool + pool_len, scratch, n * sizeof *scratch);
        out->start[k] = pool_len;
        out->len[k] = n;
        out->sums[k] = (cprof_sum_t){0, 0};
        cprof_sum_add(&out->sums[k], w);
        pool_len += n;
        out->n++;
    }
    rc = CPROF_OK;
done:
    cprof_itab_free(&index);
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
