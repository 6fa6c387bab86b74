/* total: what reports take percentages of, as pprof's computeTotal.
 *
 * The sum of the absolute values of one sample type, over the samples
 * labelled pprof::base=true alone when there are any (a -diff_base
 * profile's base). pprof merges the samples with equal stacks and labels as
 * it reads a profile, so a sample and its negation cancel before anything
 * is summed; with a negative value in the type, the samples are merged so
 * here too (by location ids and label contents). Exact: 128-bit sums.
 */
#ifndef CPROF_ANALYSIS_TOTAL_H
#define CPROF_ANALYSIS_TOTAL_H

#include "analysis/paths.h"

/* Returns 0 or CPROF_E_NOMEM (err filled); *out is the total. */
int cprof_report_total(const cprof_pprof_t *p, size_t sample_index, cprof_sum_t *out,
                       cprof_error_t *err);

#endif
