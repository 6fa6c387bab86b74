/* graph: pprof's call graph (google/pprof internal/graph newGraph) from the
 * paths of one sample type.
 *
 * Each path whose samples had a non-zero value adds its sum to the flat of
 * its leaf node and, once however often it recurses, to the cum of every node
 * on it and the weight of every caller -> callee edge (self-edges are not
 * kept). With a kept mask, the other nodes are left out as pprof's graph
 * rebuilt from a set of kept nodes leaves them: a path passes through only its
 * kept nodes, joined by edges around the others, and a path whose leaf was
 * left out adds no flat. An edge is inline when the profile has inlined
 * frames and every call through it was inlined (the flag of its first
 * occurrence from the root, per path). Nothing here needs the GIL.
 */
#ifndef CPROF_ANALYSIS_GRAPH_H
#define CPROF_ANALYSIS_GRAPH_H

#include "analysis/paths.h"

typedef struct {
    uint32_t caller, callee;
    cprof_sum_t weight;
    uint8_t inl;
    uint8_t residual;  /* some path reached the callee past left-out nodes (pprof's
                        * dotted edges) */
} cprof_edge_t;

typedef struct {
    cprof_sum_t *flat, *cum;  /* per node of the paths */
    cprof_edge_t *edges;      /* in the order first met */
    size_t n_edges;
} cprof_graph_t;

/* The graph of sample type t (< ps->n_types). kept: NULL, or one byte per
 * node (non-zero: kept). edges: 0 to skip the edge table. Returns 0 or
 * CPROF_E_NOMEM with err filled. */
int cprof_graph_build(const cprof_paths_t *ps, size_t t, const uint8_t *kept, int edges,
                      cprof_graph_t *out, cprof_error_t *err);
void cprof_graph_release(cprof_graph_t *g);

#endif
