/* tags: what pprof's graphs draw beside each node as label boxes
 * ("nodelets"): per node and distinct set of sample labels, the values of
 * one sample type's samples whose stack ends at the node (flat) and passes
 * through it (cum, once per sample however often it recurs). With a kept
 * mask, as graph.h: only kept nodes gather cum, and a sample adds flat only
 * when its leaf was kept.
 *
 * Label sets are grouped by content (cprof_label_sets); the caller names the
 * boxes from a set's labels. Samples whose value is 0 add nothing. Nothing
 * here needs the GIL.
 */
#ifndef CPROF_ANALYSIS_TAGS_H
#define CPROF_ANALYSIS_TAGS_H

#include "analysis/paths.h"

/* The distinct label lists of p's samples: set_of[i] (n_sample entries) is
 * sample i's set, first[s] the first sample with set s, *n_sets how many.
 * Labels compare by their fields' values (string indices canonical). The
 * arrays are malloc'd. Returns 0 or CPROF_E_NOMEM. */
int cprof_label_sets(const cprof_pprof_t *p, uint32_t **set_of, uint32_t **first,
                     size_t *n_sets, cprof_error_t *err);

typedef struct {
    size_t n;
    uint32_t *node, *set;      /* per row: the node, the set (or group) */
    cprof_sum_t *flat, *cum;   /* per row */
} cprof_tags_t;

/* The rows (node, set) with their sums, in the order first met, for sample
 * type t, over p's paths ps at any granularity (their loc_nodes name each
 * location's nodes). set_of: each sample's set (cprof_label_sets), or the
 * caller's grouping of them (sets drawn alike share one); a sample whose set
 * is CPROF_TAGS_NONE adds nothing. kept: NULL or one byte per node.
 *
 * cutoff > 0 leaves out the rows whose flat and cum are both below it in
 * magnitude (pprof's TrimLowFrequencyTags, before the rows reach Python: a
 * big labelled profile has millions of rows, a drawn graph a few hundred).
 * That is exact when each row is one box, the caller's groups being the
 * boxes' names. A group whose samples' magnitudes sum below the cutoff can
 * give no row and is skipped at once. Returns 0 or CPROF_E_NOMEM. */
#define CPROF_TAGS_NONE UINT32_MAX
int cprof_tags_build(const cprof_pprof_t *p, const cprof_paths_t *ps, size_t t,
                     const uint8_t *kept, const uint32_t *set_of, int64_t cutoff,
                     cprof_tags_t *out, cprof_error_t *err);
void cprof_tags_free(cprof_tags_t *tags);

#endif
