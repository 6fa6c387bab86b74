/* tags: label boxes per node (see tags.h). */
#include "analysis/tags.h"

#include <stdlib.h>
#include <string.h>

int cprof_label_sets(const cprof_pprof_t *p, uint32_t **set_of, uint32_t **first,
                     size_t *n_sets, cprof_error_t *err)
{
    const cprof_msg_t *m = p->msg;
    int64_t *canon = NULL;
    cprof_itab_t index = {0};
    uint32_t *of = malloc((m->n_sample + 1) * sizeof *of);
    uint32_t *fst = malloc((m->n_sample + 1) * sizeof *fst);
    size_t n = 0;
    if (of == NULL || fst == NULL || cprof_canonical_strings(m, &canon) < 0 ||
        cprof_itab_init(&index, 64) < 0)
        goto fail;
    for (size_t i = 0; i < m->n_sample; i++) {
        const Perftools__Profiles__Sample *s = m->sample[i];
        uint64_t h = 0x9e3779b97f4a7c15ULL ^ s->n_label;
        for (size_t j = 0; j < s->n_label; j++) {
            const Perftools__Profiles__Label *l = s->label[j];
            h = (h ^ (uint64_t)canon[l->key]) * 0x100000001b3ULL;
            h = (h ^ (uint64_t)canon[l->str]) * 0x100000001b3ULL;
            h = (h ^ (uint64_t)l->num) * 0x100000001b3ULL;
            h = (h ^ (uint64_t)canon[l->num_unit]) * 0x100000001b3ULL;
        }
        h = cprof_itab_hash(h);
        size_t slot = cprof_itab_first(&index, h);
        long found = -1;
        for (; index.hashes[slot] != 0; slot = cprof_itab_next(&index, slot))
            if (index.hashes[slot] == h &&
                cprof_labels_cmp(canon, m->sample[fst[index.values[slot]]], s) == 0) {
                found = index.values[slot];
                break;
            }
        if (found < 0) {
            if (cprof_itab_put(&index, slot, h, (uint32_t)n) < 0)
                goto fail;
            fst[n] = (uint32_t)i;
            found = (long)n++;
        }
        of[i] = (uint32_t)found;
    }
    free(canon);
    cprof_itab_free(&index);
    *set_of = of;
    *first = fst;
    *n_sets = n;
    return CPROF_OK;
fail:
    free(canon);
    cprof_itab_free(&index);
    free(of);
    free(fst);
    return cprof_fail(err, CPROF_E_NOMEM, "out of memory grouping labels");
}

/* Keep the rows at or above cutoff in flat or cum, in order. */
static void trim(cprof_tags_t *tags, int64_t cutoff)
{
    size_t n = 0;
    for (size_t r = 0; r < tags->n; r++) {
        if (cprof_sum_below(tags->flat[r], cutoff) && cprof_sum_below(tags->cum[r], cutoff))
            continue;
        tags->node[n] = tags->node[r];
        tags->set[n] = tags->set[r];
        tags->flat[n] = tags->flat[r];
        tags->cum[n] = tags->cum[r];
        n++;
    }
    tags->n = n;
}

/* Adds |v| to s. */
static void add_magnitude(cprof_sum_t *s, int64_t v)
{
    if (v >= 0)
        cprof_sum_add(s, v);
    else
        cprof_sum_add128(s, cprof_sum_negate((cprof_sum_t){-1, (uint64_t)v}));
}

/* The groups (of set_of) whose samples' magnitudes of type t sum to cutoff
 * or more: one byte per group up to the largest; NULL when out of memory. */
static uint8_t *groups_reaching(const cprof_msg_t *m, size_t t, const uint32_t *set_of,
                                int64_t cutoff)
{
    size_t n = 0;
    for (size_t i = 0; i < m->n_sample; i++)
        if (set_of[i] != CPROF_TAGS_NONE && set_of[i] >= n)
            n = (size_t)set_of[i] + 1;
    cprof_sum_t *mass = calloc(n + 1, sizeof *mass);
    uint8_t *reach = calloc(n + 1, 1);
    if (mass == NULL || reach == NULL) {
        free(mass);
        free(reach);
        return NULL;
    }
    for (size_t i = 0; i < m->n_sample; i++)
        if (set_of[i] != CPROF_TAGS_NONE)
            add_magnitude(&mass[set_of[i]], m->sample[i]->value[t]);
    for (size_t g = 0; g < n; g++)
        reach[g] = !cprof_sum_below(mass[g], cutoff);
    free(mass);
    return reach;
}

int cprof_tags_build(const cprof_pprof_t *p, const cprof_paths_t *ps, size_t t,
                     const uint8_t *kept, const uint32_t *set_of, int64_t cutoff,
                     cprof_tags_t *out, cprof_error_t *err)
{
    const cprof_msg_t *m = p->msg;
    memset(out, 0, sizeof *out);
    cprof_itab_t rows = {0};
    size_t *stamp = calloc(ps->n_nodes + 1, sizeof *stamp);  /* 1 + the last sample */
    uint8_t *reach = NULL;  /* cutoff > 0: the groups that may give a row */
    struct {
        size_t node, set, flat, cum;
    } cap = {0};
    if (stamp == NULL || cprof_itab_init(&rows, 256) < 0 ||
        (cutoff > 0 && (reach = groups_reaching(m, t, set_of, cutoff)) == NULL))
        goto fail;
    for (size_t i = 0; i < m->n_sample; i++) {
        const Perftools__Profiles__Sample *s = m->sample[i];
        int64_t v = s->value[t];
        if (v == 0 || s->n_location_id == 0 || set_of[i] == CPROF_TAGS_NONE ||
            (reach != NULL && !reach[set_of[i]]))
            continue;
        for (size_t d = 0; d < s->n_location_id; d++) {
            long li = cprof_pprof_find(&p->locations, m->n_location, s->location_id[d]);
            if (li < 0)
                continue;  /* validated at decode; never taken */
            const uint32_t *chain = ps->loc_nodes + ps->loc_start[li];
            for (uint32_t j = ps->loc_len[li]; j-- > 0;) {
                uint32_t nd = chain[j];
                /* The sample's leaf: the innermost node of its first location. */
                int leaf = d == 0 && j + 1 == ps->loc_len[li];
                int cum = (kept == NULL || kept[nd]) && stamp[nd] != i + 1;
                int flat = leaf && (kept == NULL || kept[nd]);
                if (!cum && !flat)
                    continue;
                if (cum)
                    stamp[nd] = i + 1;
                uint64_t key = (uint64_t)nd << 32 | set_of[i];
                uint64_t h = cprof_itab_hash(key);
                size_t slot = cprof_itab_first(&rows, h);
                long row = -1;
                for (; rows.hashes[slot] != 0; slot = cprof_itab_next(&rows, slot)) {
                    uint32_t r = rows.values[slot];
                    if (rows.hashes[slot] == h && out->node[r] == nd && out->set[r] == set_of[i]) {
                        row = r;
                        break;
                    }
                }
                if (row < 0) {
                    size_t r = out->n;
                    if (cprof_reserve((void **)&out->node, &cap.node, r + 1, sizeof *out->node) < 0 ||
                        cprof_reserve((void **)&out->set, &cap.set, r + 1, sizeof *out->set) < 0 ||
                        cprof_reserve((void **)&out->flat, &cap.flat, r + 1, sizeof *out->flat) < 0 ||
                        cprof_reserve((void **)&out->cum, &cap.cum, r + 1, sizeof *out->cum) < 0 ||
                        cprof_itab_put(&rows, slot, h, (uint32_t)r) < 0)
                        goto fail;
                    out->node[r] = nd;
                    out->set[r] = set_of[i];
                    out->flat[r] = (cprof_sum_t){0, 0};
                    out->cum[r] = (cprof_sum_t){0, 0};
                    out->n++;
                    row = (long)r;
                }
                if (cum)
                    cprof_sum_add(&out->cum[row], v);
                if (flat)
                    cprof_sum_add(&out->flat[row], v);
            }
        }
    }
    if (cutoff > 0)
        trim(out, cutoff);
    free(stamp);
    free(reach);
    cprof_itab_free(&rows);
    return CPROF_OK;
fail:
    free(stamp);
    free(reach);
    cprof_itab_free(&rows);
    cprof_tags_free(out);
    return cprof_fail(err, CPROF_E_NOMEM, "out of memory summing label boxes");
}

void cprof_tags_free(cprof_tags_t *tags)
{
    free(tags->node);
    free(tags->set);
    free(tags->flat);
    free(tags->cum);
    memset(tags, 0, sizeof *tags);
}
