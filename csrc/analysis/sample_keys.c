/* sample_keys: the samples sharing a stack or labels (see sample_keys.h). */
#include "analysis/sample_keys.h"

#include <stdlib.h>
#include <string.h>

#include "analysis/tags.h"

/* stack_first[i] for every sample: an intern table of the location id lists,
 * keyed by their hash, whose values are the first sample with each list. */
static int first_stacks(const cprof_msg_t *m, uint32_t *stack_first)
{
    cprof_itab_t index = {0};
    if (cprof_itab_init(&index, 1024) < 0)
        return -1;
    for (size_t i = 0; i < m->n_sample; i++) {
        const Perftools__Profiles__Sample *s = m->sample[i];
        uint64_t h = 0x9e3779b97f4a7c15ULL ^ s->n_location_id;
        for (size_t j = 0; j < s->n_location_id; j++)
            h = (h ^ s->location_id[j]) * 0x100000001b3ULL;
        h = cprof_itab_hash(h);
        size_t slot = cprof_itab_first(&index, h);
        long found = -1;
        for (; index.hashes[slot] != 0; slot = cprof_itab_next(&index, slot)) {
            const Perftools__Profiles__Sample *f = m->sample[index.values[slot]];
            if (index.hashes[slot] == h && f->n_location_id == s->n_location_id &&
                (s->n_location_id == 0 ||
                 memcmp(f->location_id, s->location_id,
                        s->n_location_id * sizeof *s->location_id) == 0)) {
                found = index.values[slot];
                break;
            }
        }
        if (found < 0) {
            if (cprof_itab_put(&index, slot, h, (uint32_t)i) < 0) {
                cprof_itab_free(&index);
                return -1;
            }
            found = (long)i;
        }
        stack_first[i] = (uint32_t)found;
    }
    cprof_itab_free(&index);
    return 0;
}

int cprof_sample_keys(const cprof_pprof_t *p, uint32_t **stack_first, uint32_t **labels_first,
                      cprof_error_t *err)
{
    const cprof_msg_t *m = p->msg;
    *stack_first = *labels_first = NULL;
    if (m->n_sample >= UINT32_MAX)
        return cprof_fail(err, CPROF_E_LIMIT, "%zu samples: sample keys count to 2^32 - 1",
                          m->n_sample);
    uint32_t *set_of = NULL, *first = NULL;
    size_t n_sets;
    int rc = cprof_label_sets(p, &set_of, &first, &n_sets, err);
    if (rc != CPROF_OK)
        return rc;
    uint32_t *stacks = malloc((m->n_sample + 1) * sizeof *stacks);
    if (stacks == NULL || first_stacks(m, stacks) < 0) {
        free(stacks);
        free(set_of);
        free(first);
        return cprof_fail(err, CPROF_E_NOMEM, "out of memory keying the samples' stacks");
    }
    for (size_t i = 0; i < m->n_sample; i++)
        set_of[i] = first[set_of[i]];  /* the set's first sample, in place */
    free(first);
    *stack_first = stacks;
    *labels_first = set_of;
    return CPROF_OK;
}
