/* traces: the samples as `go tool pprof -traces` prints them (report/traces.py
 * formats the labels and values).
 *
 * pprof merges the profile first (google/pprof's Merge): samples with equal
 * stacks, locations compared by content (pprof's locationKey: the address
 * within its mapping, the mapping's rounded size, offset and build id or
 * file, the lines with their functions' contents, is_folded), and labels of
 * one class (the caller's: pprof's sampleKey compares labels by key, each
 * key's values in order) become one, their values summed in the order of
 * their first sample. Samples whose values are all 0 are left out, and so
 * are merged samples summing to all 0 and those without locations (pprof
 * prints nothing for them). Nothing here needs the GIL or is signal-safe.
 */
#ifndef CPROF_ANALYSIS_TRACES_H
#define CPROF_ANALYSIS_TRACES_H

#include <stddef.h>
#include <stdint.h>

#include "analysis/frame_stacks.h"
#include "analysis/paths.h"

typedef struct {
    uint32_t *first;    /* per merged sample: the index of its first sample */
    cprof_sum_t *sums;  /* [k * n_types + t]: its values */
    size_t n;
} cprof_merged_t;

/* The merged samples of p; label_class[i] is sample i's labels' class.
 * Returns 0 or CPROF_E_NOMEM with err filled. */
int cprof_traces_merge(const cprof_pprof_t *p, const uint32_t *label_class, cprof_merged_t *out,
                       cprof_error_t *err);
void cprof_merged_free(cprof_merged_t *m);

/* The text of the traces of the samples first[0 .. n): for trace k,
 * heads[k] (its separator, labels and value column), then its stack's
 * frames leaf first as ps (function granularity) names them, names[node],
 * an inlined frame marked " (inline)", one a line, each after the first
 * indented to the value column (13 spaces). *out is malloc'd, *out_len
 * bytes. Returns 0 or CPROF_E_NOMEM. */
int cprof_traces_text(const cprof_pprof_t *p, const cprof_paths_t *ps, const uint32_t *first,
                      size_t n, const cprof_frame_names_t *heads,
                      const cprof_frame_names_t *names, char **out, size_t *out_len,
                      cprof_error_t *err);

#endif
