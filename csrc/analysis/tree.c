/* tree: the merged call tree grown from the paths (see tree.h). */
#include "analysis/tree.h"

#include <stdlib.h>
#include <string.h>

static cprof_sum_t minus(cprof_sum_t a, cprof_sum_t b)
{
    cprof_sum_add128(&a, cprof_sum_negate(b));
    return a;
}

static double as_double(cprof_sum_t s)
{
    return (double)s.hi * 18446744073709551616.0 + (double)s.lo;
}

typedef struct {
    uint32_t frame;
    int64_t line;
    uint32_t depth;
    size_t lo, hi;
} todo_t;

int cprof_tree_build(const cprof_paths_t *ps, const uint32_t *frame_of_node,
                     const size_t *types, size_t n_sel, double min_width_fraction,
                     cprof_tree_t *out, cprof_error_t *err)
{
    memset(out, 0, sizeof *out);
    out->n_sel = n_sel;
    const size_t n = ps->n, w2 = 2 * n_sel;
    size_t pool_n = n ? ps->start[n - 1] + ps->len[n - 1] : 0;
    uint32_t *frames = malloc((pool_n + 1) * sizeof *frames);
    uint32_t *order = malloc((n + 1) * sizeof *order), *tmp = malloc((n + 1) * sizeof *tmp);
    cprof_sum_t *split = calloc(n * w2 + 1, sizeof *split);   /* per path, unsorted */
    cprof_sum_t *prefix = calloc((n + 1) * w2 + 1, sizeof *prefix);  /* over sorted paths */
    double *threshold = malloc((n_sel + 1) * sizeof *threshold);
    todo_t *todo = NULL;
    size_t todo_n = 0, todo_cap = 0;
    struct {
        size_t frame, line, depth, pos, neg, flat, res_node, res_set, res_sums, set_pool,
            set_start, set_len;
    } cap = {0};
    cprof_itab_t rows = {0}, sets = {0};
    uint32_t *scratch = NULL;
    size_t scratch_cap = 0, set_pool_n = 0;
    int rc = CPROF_E_NOMEM;
    if (!frames || !order || !tmp || !split || !prefix || !threshold ||
        cprof_itab_init(&rows, 256) < 0 || cprof_itab_init(&sets, 256) < 0)
        goto done;

    for (size_t i = 0; i < pool_n; i++)
        frames[i] = frame_of_node[ps->pool[i]];
    for (size_t k = 0; k < n; k++) {
        order[k] = (uint32_t)k;
        out->diff |= ps->base[k];
        for (size_t j = 0; j < n_sel; j++) {
            size_t t = types[j];
            cprof_sum_t v = ps->base[k] ? cprof_sum_negate(ps->abs[k * ps->n_types + t])
                                        : ps->sums[k * ps->n_types + t];
            if (v.hi < 0) {
                split[k * w2 + n_sel + j] = cprof_sum_negate(v);
                out->diff = 1;
            } else {
                split[k * w2 + j] = v;
            }
        }
    }
    cprof_frame_seqs_t seqs = {frames, ps->start, ps->len};
    cprof_sort_order(order, tmp, n, cprof_frame_seq_compare, &seqs);
    for (size_t i = 0; i < n; i++)
        for (size_t c = 0; c < w2; c++) {
            prefix[(i + 1) * w2 + c] = prefix[i * w2 + c];
            cprof_sum_add128(&prefix[(i + 1) * w2 + c], split[order[i] * w2 + c]);
        }
    for (size_t j = 0; j < n_sel; j++) {
        cprof_sum_t width = prefix[n * w2 + j];
        cprof_sum_add128(&width, prefix[n * w2 + n_sel + j]);
        threshold[j] = as_double(width) * min_width_fraction;
    }

#define PATH_LEN(i) (ps->len[order[i]])
#define FRAME_AT(i, d) (frames[ps->start[order[i]] + (d)])
#define LINE_AT(i, d) (ps->lines[ps->start[order[i]] + (d)])
#define SUM(lo, hi, c) minus(prefix[(hi) * w2 + (c)], prefix[(lo) * w2 + (c)])

    if (cprof_reserve((void **)&todo, &todo_cap, 1, sizeof *todo) < 0)
        goto done;
    todo[todo_n++] = (todo_t){CPROF_TREE_ROOT, 0, 0, 0, n};
    while (todo_n > 0) {
        todo_t nd = todo[--todo_n];
        size_t index = out->n;
        if (cprof_reserve((void **)&out->frame, &cap.frame, index + 1, sizeof *out->frame) < 0 ||
            cprof_reserve((void **)&out->line, &cap.line, index + 1, sizeof *out->line) < 0 ||
            cprof_reserve((void **)&out->depth, &cap.depth, index + 1, sizeof *out->depth) < 0 ||
            cprof_reserve((void **)&out->pos, &cap.pos, (index + 1) * n_sel + 1,
                          sizeof *out->pos) < 0 ||
            cprof_reserve((void **)&out->neg, &cap.neg, (index + 1) * n_sel + 1,
                          sizeof *out->neg) < 0 ||
            cprof_reserve((void **)&out->flat, &cap.flat, (index + 1) * n_sel + 1,
                          sizeof *out->flat) < 0)
            goto done;
        out->frame[index] = nd.frame;
        out->line[index] = nd.line;
        out->depth[index] = nd.depth;
        size_t at = nd.lo;
        while (at < nd.hi && PATH_LEN(at) == nd.depth)
            at++;
        for (size_t j = 0; j < n_sel; j++) {
            out->pos[index * n_sel + j] = SUM(nd.lo, nd.hi, j);
            out->neg[index * n_sel + j] = SUM(nd.lo, nd.hi, n_sel + j);
            out->flat[index * n_sel + j] = minus(SUM(nd.lo, at, j), SUM(nd.lo, at, n_sel + j));
        }
        out->n++;
        size_t first_child = todo_n;
        while (at < nd.hi) {
            uint32_t f = FRAME_AT(at, nd.depth);
            size_t end = at + 1;
            while (end < nd.hi && FRAME_AT(end, nd.depth) == f)
                end++;
            int kept = 0, any = 0;
            for (size_t j = 0; j < n_sel; j++) {
                cprof_sum_t width = SUM(at, end, j);
                cprof_sum_add128(&width, SUM(at, end, n_sel + j));
                double wd = as_double(width);
                kept |= wd > 0 && wd >= threshold[j];
                any |= !cprof_sum_is_zero(width);
            }
            if (kept) {
                int64_t line = LINE_AT(at, nd.depth);
                for (size_t m = at + 1; m < end && line != 0; m++)
                    if (LINE_AT(m, nd.depth) != line)
                        line = 0;
                if (cprof_reserve((void **)&todo, &todo_cap, todo_n + 1, sizeof *todo) < 0)
                    goto done;
                todo[todo_n++] = (todo_t){f, line, nd.depth + 1, at, end};
            } else if (any) {
                out->hidden++;
                for (size_t m = at; m < end; m++) {
                    /* The pruned part's frames as a sorted set. */
                    uint32_t len = PATH_LEN(m) - nd.depth;
                    if (cprof_reserve((void **)&scratch, &scratch_cap, len, sizeof *scratch) < 0)
                        goto done;
                    memcpy(scratch, &FRAME_AT(m, nd.depth), len * sizeof *scratch);
                    /* insertion sort: pruned suffixes are short */
                    for (uint32_t a = 1; a < len; a++) {
                        uint32_t v = scratch[a], b = a;
                        for (; b > 0 && scratch[b - 1] > v; b--)
                            scratch[b] = scratch[b - 1];
                        scratch[b] = v;
                    }
                    uint32_t u = 0;
                    for (uint32_t a = 0; a < len; a++)
                        if (u == 0 || scratch[u - 1] != scratch[a])
                            scratch[u++] = scratch[a];
                    uint64_t h = 0x84222325cbf29ce4ULL ^ u;
                    for (uint32_t a = 0; a < u; a++)
                        h = (h ^ scratch[a]) * 0x100000001b3ULL;
                    h = cprof_itab_hash(h);
                    size_t slot = cprof_itab_first(&sets, h);
                    long set = -1;
                    for (; sets.hashes[slot] != 0; slot = cprof_itab_next(&sets, slot)) {
                        uint32_t s = sets.values[slot];
                        if (sets.hashes[slot] == h && out->set_len[s] == u &&
                            memcmp(out->set_pool + out->set_start[s], scratch,
                                   u * sizeof *scratch) == 0) {
                            set = s;
                            break;
                        }
                    }
                    if (set < 0) {
                        size_t s = out->n_sets;
                        if (cprof_reserve((void **)&out->set_pool, &cap.set_pool, set_pool_n + u + 1,
                                          sizeof *out->set_pool) < 0 ||
                            cprof_reserve((void **)&out->set_start, &cap.set_start, s + 1,
                                          sizeof *out->set_start) < 0 ||
                            cprof_reserve((void **)&out->set_len, &cap.set_len, s + 1,
                                          sizeof *out->set_len) < 0 ||
                            cprof_itab_put(&sets, slot, h, (uint32_t)s) < 0)
                            goto done;
                        memcpy(out->set_pool + set_pool_n, scratch, u * sizeof *scratch);
                        out->set_start[s] = set_pool_n;
                        out->set_len[s] = u;
                        set_pool_n += u;
                        out->n_sets++;
                        set = (long)s;
                    }
                    uint64_t rh = cprof_itab_hash((uint64_t)index << 32 ^ (uint64_t)set);
                    slot = cprof_itab_first(&rows, rh);
                    long row = -1;
                    for (; rows.hashes[slot] != 0; slot = cprof_itab_next(&rows, slot)) {
                        uint32_t r = rows.values[slot];
                        if (rows.hashes[slot] == rh && out->res_node[r] == index &&
                            out->res_set[r] == (uint32_t)set) {
                            row = r;
                            break;
                        }
                    }
                    if (row < 0) {
                        size_t r = out->n_res;
                        if (cprof_reserve((void **)&out->res_node, &cap.res_node, r + 1,
                                          sizeof *out->res_node) < 0 ||
                            cprof_reserve((void **)&out->res_set, &cap.res_set, r + 1,
                                          sizeof *out->res_set) < 0 ||
                            cprof_reserve((void **)&out->res_sums, &cap.res_sums, (r + 1) * w2 + 1,
                                          sizeof *out->res_sums) < 0 ||
                            cprof_itab_put(&rows, slot, rh, (uint32_t)r) < 0)
                            goto done;
                        out->res_node[r] = (uint32_t)index;
                        out->res_set[r] = (uint32_t)set;
                        memset(out->res_sums + r * w2, 0, w2 * sizeof *out->res_sums);
                        out->n_res++;
                        row = (long)r;
                    }
                    for (size_t c = 0; c < w2; c++)
                        cprof_sum_add128(&out->res_sums[row * w2 + c], split[order[m] * w2 + c]);
                }
            }
            at = end;
        }
        /* Children were pushed in frame order: reverse them so the first pops first. */
        for (size_t a = first_child, b = todo_n; a + 1 < b; a++, b--) {
            todo_t swap = todo[a];
            todo[a] = todo[b - 1];
            todo[b - 1] = swap;
        }
    }
#undef PATH_LEN
#undef FRAME_AT
#undef LINE_AT
#undef SUM
    rc = CPROF_OK;
done:
    free(frames);
    free(order);
    free(tmp);
    free(split);
    free(prefix);
    free(threshold);
    free(todo);
    free(scratch);
    cprof_itab_free(&rows);
    cprof_itab_free(&sets);
    if (rc != CPROF_OK) {
        cprof_tree_free(out);
        return cprof_fail(err, CPROF_E_NOMEM, "out of memory growing the call tree");
    }
    return rc;
}

void cprof_tree_free(cprof_tree_t *t)
{
    free(t->frame);
    free(t->line);
    free(t->depth);
    free(t->pos);
    free(t->neg);
    free(t->flat);
    free(t->res_node);
    free(t->res_set);
    free(t->res_sums);
    free(t->set_pool);
    free(t->set_start);
    free(t->set_len);
    memset(t, 0, sizeof *t);
}
