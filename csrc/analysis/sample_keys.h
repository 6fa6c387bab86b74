/* sample_keys: which samples share a stack and which share labels, so that
 * Python makes each distinct stack of Location objects and each distinct
 * label list once (Profile.samples: a big profile has 300,000 samples over
 * 65,000 stacks and a few thousand label lists; making a tuple per sample
 * touched ten million references). Nothing here needs the GIL.
 */
#ifndef CPROF_SAMPLE_KEYS_H
#define CPROF_SAMPLE_KEYS_H

#include <stdint.h>

#include "analysis/paths.h"

/* Per sample i of p: stack_first[i], the first sample whose location ids are
 * i's (in order), and labels_first[i], the first whose labels are i's
 * (cprof_label_sets' rule). Both arrays are malloc'd, n_sample entries.
 * Returns 0, CPROF_E_NOMEM, or CPROF_E_LIMIT past 2^32 - 1 samples. */
int cprof_sample_keys(const cprof_pprof_t *p, uint32_t **stack_first, uint32_t **labels_first,
                      cprof_error_t *err);

#endif
