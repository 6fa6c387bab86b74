/* stack_sums: the distinct location stacks of the samples of one sample
 * type, summed, for the line listing (listing.h), which names locations its
 * own way. Nothing here needs the GIL or is signal-safe.
 */
#ifndef CPROF_STACK_SUMS_H
#define CPROF_STACK_SUMS_H

#include <stddef.h>
#include <stdint.h>

#include "analysis/paths.h"

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
