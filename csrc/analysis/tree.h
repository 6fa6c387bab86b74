/* tree: the merged call tree that flame graphs, folded stacks and speedscope
 * draw, grown from the paths (paths.h) over several sample types at once.
 *
 * The caller names each node's frame (frame_of_node: ids in the order frames
 * are to be drawn, by name, so that nodes printed alike merge into one frame).
 * A path's value in a sample type is its sum, or minus the sum of its
 * magnitudes for a pprof::base path; the tree keeps the positive and the
 * negative parts apart (a frame is as wide as both). The tree is grown in
 * preorder, siblings by frame id; a child narrower than min_width_fraction of
 * the root in every selected type is not made: it is counted in hidden, and
 * each of its paths leaves on the parent a residue row keyed by the set of
 * frames on the pruned part of the path, so that a search still counts it.
 * Nothing here needs the GIL.
 */
#ifndef CPROF_ANALYSIS_TREE_H
#define CPROF_ANALYSIS_TREE_H

#include "analysis/paths.h"

#define CPROF_TREE_ROOT UINT32_MAX

typedef struct {
    size_t n, n_sel;
    uint32_t *frame;     /* per tree node: its frame, CPROF_TREE_ROOT for node 0 */
    int64_t *line;       /* its line when every path through it agrees, else 0 */
    uint32_t *depth;
    cprof_sum_t *pos, *neg, *flat;  /* [i * n_sel + j] */
    size_t hidden;       /* children pruned */
    int diff;            /* some value was negative, or some path is a base one */
    /* residue row r: tree node res_node[r], frame set res_set[r], sums
     * res_sums[r * 2 * n_sel ...]: positive parts per type, then negative. */
    size_t n_res;
    uint32_t *res_node, *res_set;
    cprof_sum_t *res_sums;
    /* frame set s: set_pool[set_start[s] .. + set_len[s]), sorted */
    size_t n_sets;
    uint32_t *set_pool;
    size_t *set_start;
    uint32_t *set_len;
} cprof_tree_t;

int cprof_tree_build(const cprof_paths_t *ps, const uint32_t *frame_of_node,
                     const size_t *types, size_t n_sel, double min_width_fraction,
                     cprof_tree_t *out, cprof_error_t *err);
void cprof_tree_free(cprof_tree_t *t);

#endif
