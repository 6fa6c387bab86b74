/* graph: flat, cum and edges from the paths (see graph.h). */
#include "analysis/graph.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    cprof_itab_t index;  /* (caller, callee) -> edge */
    uint32_t *stamp;     /* per edge: 1 + the last path that added to it */
    uint8_t *not_inline; /* per edge: some call through it was not inlined */
    struct {
        size_t edges, stamp, not_inline;
    } cap;
} edges_t;

/* The index of edge caller -> callee, added when new; -1 without memory. */
static long edge_of(edges_t *es, cprof_graph_t *g, uint32_t caller, uint32_t callee)
{
    uint64_t key = (uint64_t)caller << 32 | callee;
    uint64_t h = cprof_itab_hash(key);
    size_t slot = cprof_itab_first(&es->index, h);
    for (; es->index.hashes[slot] != 0; slot = cprof_itab_next(&es->index, slot)) {
        const cprof_edge_t *e = &g->edges[es->index.values[slot]];
        if (es->index.hashes[slot] == h && e->caller == caller && e->callee == callee)
            return es->index.values[slot];
    }
    size_t k = g->n_edges;
    if (cprof_reserve((void **)&g->edges, &es->cap.edges, k + 1, sizeof *g->edges) < 0 ||
        cprof_reserve((void **)&es->stamp, &es->cap.stamp, k + 1, sizeof *es->stamp) < 0 ||
        cprof_reserve((void **)&es->not_inline, &es->cap.not_inline, k + 1, 1) < 0)
        return -1;
    if (cprof_itab_put(&es->index, slot, h, (uint32_t)k) < 0)
        return -1;
    g->edges[k] = (cprof_edge_t){caller, callee, {0, 0}, 0, 0};
    es->stamp[k] = 0;
    es->not_inline[k] = 0;
    g->n_edges++;
    return (long)k;
}

int cprof_graph_build(const cprof_paths_t *ps, size_t t, const uint8_t *kept, int edges,
                      cprof_graph_t *out, cprof_error_t *err)
{
    memset(out, 0, sizeof *out);
    edges_t es = {0};
    uint32_t *node_stamp = calloc(ps->n_nodes + 1, sizeof *node_stamp);
    out->flat = calloc(ps->n_nodes + 1, sizeof *out->flat);
    out->cum = calloc(ps->n_nodes + 1, sizeof *out->cum);
    int rc = CPROF_E_NOMEM;
    if (node_stamp == NULL || out->flat == NULL || out->cum == NULL ||
        cprof_itab_init(&es.index, 1024) < 0)
        goto done;
    for (size_t k = 0; k < ps->n; k++) {
        if (!ps->nonzero[k * ps->n_types + t] || ps->len[k] == 0)
            continue;
        cprof_sum_t w = ps->sums[k * ps->n_types + t];
        const uint32_t *path = ps->pool + ps->start[k];
        const uint8_t *inl = ps->inl + ps->start[k];
        uint32_t n = ps->len[k];
        uint32_t mark = (uint32_t)k + 1;
        if (kept == NULL || kept[path[n - 1]])
            cprof_sum_add128(&out->flat[path[n - 1]], w);
        int64_t caller = -1;
        int jumped = 0;  /* left-out nodes since the caller */
        for (uint32_t j = 0; j < n; j++) {
            uint32_t nd = path[j];
            if (kept != NULL && !kept[nd]) {
                jumped = 1;
                continue;
            }
            if (node_stamp[nd] != mark) {
                node_stamp[nd] = mark;
                cprof_sum_add128(&out->cum[nd], w);
            }
            if (edges && caller >= 0 && (uint32_t)caller != nd) {
                long e = edge_of(&es, out, (uint32_t)caller, nd);
                if (e < 0)
                    goto done;
                if (es.stamp[e] != mark) {
                    es.stamp[e] = mark;
                    cprof_sum_add128(&out->edges[e].weight, w);
                    if (!inl[j])
                        es.not_inline[e] = 1;
                    if (jumped)
                        out->edges[e].residual = 1;
                }
            }
            caller = nd;
            jumped = 0;
        }
    }
    for (size_t e = 0; e < out->n_edges; e++)
        out->edges[e].inl = (uint8_t)(ps->inlined && !es.not_inline[e]);
    rc = CPROF_OK;
done:
    free(node_stamp);
    free(es.stamp);
    free(es.not_inline);
    cprof_itab_free(&es.index);
    if (rc != CPROF_OK) {
        cprof_graph_release(out);
        return cprof_fail(err, CPROF_E_NOMEM, "out of memory building the call graph");
    }
    return rc;
}

void cprof_graph_release(cprof_graph_t *g)
{
    free(g->flat);
    free(g->cum);
    free(g->edges);
    memset(g, 0, sizeof *g);
}
