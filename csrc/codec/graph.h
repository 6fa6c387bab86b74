/* graph: the function-granularity call graph of a decoded profile, computed in
 * C so that reports on large profiles need no Python object per sample.
 *
 * It mirrors build() of cprof/report/graph.py with function_infos, itself
 * google/pprof's graph.newGraph at function granularity: a node is a function
 * name, or for a line without a named function the mapping's file and the
 * function's start line; a sample adds its value to the flat of its leaf node
 * and, once per sample, to the cum of every node on its stack; edges are kept
 * only into nodes that were inlined somewhere (the only ones report marks),
 * with whether every call through the edge was inlined. Nothing here needs the
 * GIL or is signal-safe.
 */
#ifndef CPROF_GRAPH_H
#define CPROF_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "codec/pprof.h"

typedef struct {
    int64_t name;        /* string index of the name, or -1 */
    int64_t objfile;     /* string index of the mapping file when name is -1 */
    int64_t start_line;
    cprof_sum_t flat, cum;  /* exact: sums of int64 values do not wrap */
} cprof_graph_node_t;

typedef struct {
    uint32_t node, caller;
    cprof_sum_t weight;
    int all_inline;
} cprof_graph_edge_t;

typedef struct {
    cprof_graph_node_t *nodes;
    size_t n_nodes;
    cprof_graph_edge_t *edges;
    size_t n_edges;
    int any_inlined;
} cprof_graph_t;

/* Build the graph of one sample type. Returns 0 or CPROF_E_NOMEM. */
int cprof_graph_functions(const cprof_pprof_t *p, size_t sample_index, cprof_graph_t *out,
                          cprof_error_t *err);
void cprof_graph_free(cprof_graph_t *g);



/* The distinct stacks of the samples whose value of sample_index is not 0 and
 * that have locations, with the sum of their values: stack k is locations
 * pool[start[k] .. start[k]+len[k]) (indices into the location table, leaf
 * first), summing sums[k]. Order: first appearance. */
typedef struct {
    uint32_t *pool;
    size_t *start, *len;
    cprof_sum_t *sums;
    size_t n;
} cprof_stack_sums_t;

int cprof_graph_stack_sums(const cprof_pprof_t *p, size_t sample_index, cprof_stack_sums_t *out,
                           cprof_error_t *err);
void cprof_stack_sums_free(cprof_stack_sums_t *s);
#endif
