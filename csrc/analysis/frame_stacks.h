/* frame_stacks: the paths (paths.h) renamed to frames and merged, one sample type
 * at a time, for the exports that list whole stacks: folded stacks and
 * speedscope's sampled profiles.
 *
 * The caller names each node's frame (frame_of_node), as for the tree
 * (tree.h): nodes printed alike share a frame, so their paths merge. A
 * stack's value is the plain sum of its paths' values, pprof::base paths
 * included (a -diff_base profile's base values are already negative).
 * Stacks summing to 0 and the empty path (samples without locations) are
 * left out. Nothing here needs the GIL.
 */
#ifndef CPROF_ANALYSIS_FRAME_STACKS_H
#define CPROF_ANALYSIS_FRAME_STACKS_H

#include "analysis/paths.h"

typedef struct {
    uint32_t *frames;  /* every path's frames, at the paths' pool offsets */
    size_t n;
    uint32_t *path;    /* per stack: a path with its frames (start/len in paths) */
    cprof_sum_t *sum;  /* per stack: its value */
    size_t negative;   /* stacks whose value is below 0 */
} cprof_frame_stacks_t;

/* The distinct frame stacks of sample type `type`, in frame order (by frame
 * ids, root first, a prefix first). Returns 0 or CPROF_E_NOMEM. */
int cprof_frame_stacks_build(const cprof_paths_t *ps, const uint32_t *frame_of_node, size_t type,
                       cprof_frame_stacks_t *out, cprof_error_t *err);
void cprof_frame_stacks_free(cprof_frame_stacks_t *s);

/* A frame's printed name: name[f], len[f] bytes, none of them ';' or '\n'. */
typedef struct {
    const char *const *name;
    const size_t *len;
} cprof_frame_names_t;

/* Folded stacks (flamegraph.pl's input): a line "root;...;leaf value\n" per
 * stack, sorted by the line's bytes (UTF-8 names sort as their code points).
 * *out is malloc'd, *out_len bytes. Returns 0 or CPROF_E_NOMEM. */
int cprof_frame_stacks_folded(const cprof_frame_stacks_t *s, const cprof_paths_t *ps,
                        const cprof_frame_names_t *names, char **out, size_t *out_len,
                        cprof_error_t *err);

/* Per frame and sample type, the flat (paths ending at it) and cum (paths
 * through it, once per path however often it recurs) sums, into
 * flat[f * n_types + t] and cum[f * n_types + t] (n_frames * n_types each,
 * zeroed here). Returns 0 or CPROF_E_NOMEM. */
int cprof_frame_totals(const cprof_paths_t *ps, const uint32_t *frame_of_node, size_t n_frames,
                       cprof_sum_t *flat, cprof_sum_t *cum, cprof_error_t *err);

/* s's decimal digits, a '-' first when negative, into buf (at least 41
 * bytes, NUL-terminated); returns the length. */
size_t cprof_sum_format(cprof_sum_t s, char *buf);

#endif
