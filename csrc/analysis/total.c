/* total: pprof's computeTotal over a decoded profile (see total.h). */
#include "analysis/total.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const cprof_msg_t *m;
    const int64_t *canon;
} order_t;

/* Samples a and b by their stacks, then their labels (strings by content). */
static int by_stack_and_labels(const void *ctx, uint32_t a, uint32_t b)
{
    const order_t *o = ctx;
    const Perftools__Profiles__Sample *x = o->m->sample[a], *y = o->m->sample[b];
    if (x->n_location_id != y->n_location_id)
        return x->n_location_id < y->n_location_id ? -1 : 1;
    for (size_t j = 0; j < x->n_location_id; j++)
        if (x->location_id[j] != y->location_id[j])
            return x->location_id[j] < y->location_id[j] ? -1 : 1;
    return cprof_labels_cmp(o->canon, x, y);
}

static void add_abs(cprof_sum_t *total, cprof_sum_t v)
{
    cprof_sum_add128(total, v.hi < 0 ? cprof_sum_negate(v) : v);
}

int cprof_report_total(const cprof_pprof_t *p, size_t t, cprof_sum_t *out, cprof_error_t *err)
{
    const cprof_msg_t *m = p->msg;
    int64_t *canon = NULL;
    uint32_t *order = NULL, *tmp = NULL;
    cprof_sum_t total = {0, 0}, base_total = {0, 0};
    int rc = CPROF_E_NOMEM;
    if (cprof_canonical_strings(m, &canon) < 0)
        goto done;
    int64_t key = cprof_find_string(m, canon, "pprof::base");
    int64_t value = cprof_find_string(m, canon, "true");
    int negative = 0;
    for (size_t i = 0; i < m->n_sample; i++)
        negative |= m->sample[i]->value[t] < 0;
    if (!negative) {
        for (size_t i = 0; i < m->n_sample; i++) {
            const Perftools__Profiles__Sample *s = m->sample[i];
            cprof_sum_add(&total, s->value[t]);
            if (cprof_is_base_sample(s, canon, key, value))
                cprof_sum_add(&base_total, s->value[t]);
        }
    } else {
        /* Merge equal samples first, as pprof does: sort them, sum each run. */
        size_t n = 0;
        order = malloc((m->n_sample + 1) * sizeof *order);
        tmp = malloc((m->n_sample + 1) * sizeof *tmp);
        if (order == NULL || tmp == NULL)
            goto done;
        for (size_t i = 0; i < m->n_sample; i++)
            if (m->sample[i]->value[t] != 0)
                order[n++] = (uint32_t)i;
        order_t o = {m, canon};
        cprof_sort_order(order, tmp, n, by_stack_and_labels, &o);
        for (size_t i = 0; i < n;) {
            cprof_sum_t sum = {0, 0};
            size_t end = i;
            for (; end < n && by_stack_and_labels(&o, order[i], order[end]) == 0; end++)
                cprof_sum_add(&sum, m->sample[order[end]]->value[t]);
            add_abs(&total, sum);
            if (cprof_is_base_sample(m->sample[order[i]], canon, key, value))
                add_abs(&base_total, sum);
            i = end;
        }
    }
    *out = cprof_sum_is_zero(base_total) ? total : base_total;
    rc = CPROF_OK;
done:
    free(canon);
    free(order);
    free(tmp);
    if (rc != CPROF_OK)
        return cprof_fail(err, rc, "out of memory summing the report total");
    return rc;
}
