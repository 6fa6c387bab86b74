/* listing: the lines of pprof's -list, summed (see listing.h). */
#include "analysis/listing.h"

#include <stdlib.h>
#include <string.h>

#include "analysis/stack_sums.h"

#define UNLISTED UINT32_MAX
#define NOT_MADE SIZE_MAX

typedef struct {
    const cprof_pprof_t *p;
    const int64_t *canon;
    const int32_t *fn_file;
    int unnamed;
    cprof_listing_t *out;
    size_t cap_nodes, cap_flat, cap_cum, cap_stamp;
    size_t *stamp;         /* per node: 1 + the last stack that added to its cum */
    cprof_itab_t index;    /* node -> row */
    /* Location i's nodes, caller first: chain[start[i] .. + n_line), UNLISTED
     * for a line not listed; start[i] is NOT_MADE until a stack reaches it. */
    uint32_t *chain;
    size_t *start;
    size_t n_chain, cap_chain;
} listing_t;

/* The row of the node k, added when new; -1 when memory runs out. */
static long row_of(listing_t *ls, const cprof_node_t *k)
{
    cprof_listing_t *out = ls->out;
    uint64_t h = cprof_node_hash(k);
    size_t slot = cprof_itab_first(&ls->index, h);
    for (; ls->index.hashes[slot] != 0; slot = cprof_itab_next(&ls->index, slot))
        if (ls->index.hashes[slot] == h &&
            memcmp(&out->nodes[ls->index.values[slot]], k, sizeof *k) == 0)
            return ls->index.values[slot];
    size_t r = out->n;
    if (cprof_reserve((void **)&out->nodes, &ls->cap_nodes, r + 1, sizeof *out->nodes) < 0 ||
        cprof_reserve((void **)&out->flat, &ls->cap_flat, r + 1, sizeof *out->flat) < 0 ||
        cprof_reserve((void **)&out->cum, &ls->cap_cum, r + 1, sizeof *out->cum) < 0 ||
        cprof_reserve((void **)&ls->stamp, &ls->cap_stamp, r + 1, sizeof *ls->stamp) < 0 ||
        cprof_itab_put(&ls->index, slot, h, (uint32_t)r) < 0)
        return -1;
    out->nodes[r] = *k;
    out->flat[r] = (cprof_sum_t){0, 0};
    out->cum[r] = (cprof_sum_t){0, 0};
    ls->stamp[r] = 0;
    return (long)out->n++;
}

/* The node of one line of a location (NULL: a location without lines), or
 * UNLISTED; -1 when memory runs out. */
static long line_row(listing_t *ls, const Perftools__Profiles__Line *ln, int64_t objfile)
{
    const cprof_msg_t *m = ls->p->msg;
    const Perftools__Profiles__Function *fn = NULL;
    long fi = -1;
    if (ln != NULL && ln->function_id != 0)
        fi = cprof_pprof_find(&ls->p->functions, m->n_function, ln->function_id);
    if (fi >= 0)
        fn = m->function[fi];
    cprof_node_t k = {0, 0, 0, 0, objfile};
    if (fn == NULL) {
        if (!ls->unnamed)
            return UNLISTED;
    } else {
        if (ls->fn_file[fi] == CPROF_LISTING_SKIP)
            return UNLISTED;
        k.name = ls->canon[fn->name];
        k.file = ls->fn_file[fi];
        k.start_line = fn->start_line;
        k.line = ln->line;
    }
    return row_of(ls, &k);
}

/* Location li's chain, made on first use. Returns 0 or -1 (no memory). */
static int make_chain(listing_t *ls, size_t li)
{
    if (ls->start[li] != NOT_MADE)
        return 0;
    const cprof_msg_t *m = ls->p->msg;
    const Perftools__Profiles__Location *loc = m->location[li];
    int64_t objfile = 0;
    if (loc->mapping_id != 0) {
        long mi = cprof_pprof_find(&ls->p->mappings, m->n_mapping, loc->mapping_id);
        if (mi >= 0)
            objfile = ls->canon[m->mapping[mi]->filename];
    }
    size_t n = loc->n_line ? loc->n_line : 1;
    if (cprof_reserve((void **)&ls->chain, &ls->cap_chain, ls->n_chain + n, sizeof *ls->chain) < 0)
        return -1;
    ls->start[li] = ls->n_chain;
    for (size_t j = 0; j < n; j++) {
        /* Lines are leaf first: the chain takes them in reverse. */
        long r = line_row(ls, loc->n_line ? loc->line[n - 1 - j] : NULL, objfile);
        if (r < 0)
            return -1;
        ls->chain[ls->n_chain++] = (uint32_t)r;
    }
    return 0;
}

int cprof_listing_build(const cprof_pprof_t *p, size_t t, const int32_t *fn_file, int unnamed,
                        cprof_listing_t *out, cprof_error_t *err)
{
    const cprof_msg_t *m = p->msg;
    memset(out, 0, sizeof *out);
    int64_t *canon = NULL;
    cprof_stack_sums_t st = {0};
    listing_t ls = {.p = p, .fn_file = fn_file, .unnamed = unnamed, .out = out};
    int rc = cprof_graph_stack_sums(p, t, &st, err);
    if (rc != CPROF_OK)
        return rc;
    rc = CPROF_E_NOMEM;
    ls.start = malloc((m->n_location + 1) * sizeof *ls.start);
    if (ls.start == NULL || cprof_canonical_strings(m, &canon) < 0 ||
        cprof_itab_init(&ls.index, 256) < 0)
        goto done;
    ls.canon = canon;
    for (size_t li = 0; li < m->n_location; li++)
        ls.start[li] = NOT_MADE;
    for (size_t k = 0; k < st.n; k++) {
        const uint32_t *locs = st.pool + st.start[k];
        for (size_t d = 0; d < st.len[k]; d++)
            if (make_chain(&ls, locs[d]) < 0)
                goto done;
        for (size_t d = 0; d < st.len[k]; d++) {
            const Perftools__Profiles__Location *loc = m->location[locs[d]];
            const uint32_t *chain = ls.chain + ls.start[locs[d]];
            size_t n = loc->n_line ? loc->n_line : 1;
            for (size_t j = 0; j < n; j++) {
                uint32_t r = chain[j];
                if (r == UNLISTED || ls.stamp[r] == k + 1)
                    continue;
                ls.stamp[r] = k + 1;
                cprof_sum_add128(&out->cum[r], st.sums[k]);
            }
            /* The sample's leaf: the innermost line of its first location. */
            if (d == 0 && chain[n - 1] != UNLISTED)
                cprof_sum_add128(&out->flat[chain[n - 1]], st.sums[k]);
        }
    }
    size_t kept = 0;
    for (size_t r = 0; r < out->n; r++) {
        if (cprof_sum_is_zero(out->flat[r]) && cprof_sum_is_zero(out->cum[r]))
            continue;
        out->nodes[kept] = out->nodes[r];
        out->flat[kept] = out->flat[r];
        out->cum[kept] = out->cum[r];
        kept++;
    }
    out->n = kept;
    rc = CPROF_OK;
done:
    free(canon);
    free(ls.start);
    free(ls.chain);
    free(ls.stamp);
    cprof_itab_free(&ls.index);
    cprof_stack_sums_free(&st);
    if (rc != CPROF_OK) {
        cprof_listing_free(out);
        return cprof_fail(err, CPROF_E_NOMEM, "out of memory summing the listed lines");
    }
    return rc;
}

void cprof_listing_free(cprof_listing_t *l)
{
    free(l->nodes);
    free(l->flat);
    free(l->cum);
    memset(l, 0, sizeof *l);
}
