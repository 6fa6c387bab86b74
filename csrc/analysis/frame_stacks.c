/* frame_stacks: frame stacks merged from the paths, and folded text (see stacks.h). */
#include "analysis/frame_stacks.h"

#include <stdlib.h>
#include <string.h>

int cprof_frame_stacks_build(const cprof_paths_t *ps, const uint32_t *frame_of_node, size_t type,
                       cprof_frame_stacks_t *out, cprof_error_t *err)
{
    memset(out, 0, sizeof *out);
    const size_t n = ps->n;
    size_t pool_n = n ? ps->start[n - 1] + ps->len[n - 1] : 0;
    uint32_t *order = malloc((n + 1) * sizeof *order), *tmp = malloc((n + 1) * sizeof *tmp);
    out->frames = malloc((pool_n + 1) * sizeof *out->frames);
    out->path = malloc((n + 1) * sizeof *out->path);
    out->sum = malloc((n + 1) * sizeof *out->sum);
    if (!order || !tmp || !out->frames || !out->path || !out->sum) {
        free(order);
        free(tmp);
        cprof_frame_stacks_free(out);
        return cprof_fail(err, CPROF_E_NOMEM, "out of memory merging stacks");
    }
    for (size_t i = 0; i < pool_n; i++)
        out->frames[i] = frame_of_node[ps->pool[i]];
    size_t m = 0;
    for (size_t k = 0; k < n; k++)
        if (ps->len[k] > 0 && ps->nonzero[k * ps->n_types + type])
            order[m++] = (uint32_t)k;
    cprof_frame_seqs_t seqs = {out->frames, ps->start, ps->len};
    cprof_sort_order(order, tmp, m, cprof_frame_seq_compare, &seqs);
    for (size_t i = 0; i < m;) {
        cprof_sum_t sum = {0, 0};
        size_t end = i;
        for (; end < m && cprof_frame_seq_compare(&seqs, order[i], order[end]) == 0; end++)
            cprof_sum_add128(&sum, ps->sums[order[end] * ps->n_types + type]);
        if (!cprof_sum_is_zero(sum)) {
            out->path[out->n] = order[i];
            out->sum[out->n] = sum;
            out->negative += sum.hi < 0;
            out->n++;
        }
        i = end;
    }
    free(order);
    free(tmp);
    return CPROF_OK;
}

int cprof_frame_totals(const cprof_paths_t *ps, const uint32_t *frame_of_node, size_t n_frames,
                       cprof_sum_t *flat, cprof_sum_t *cum, cprof_error_t *err)
{
    const size_t nt = ps->n_types;
    size_t *seen = malloc((n_frames + 1) * sizeof *seen);  /* the last path (+ 1) counted in */
    if (seen == NULL)
        return cprof_fail(err, CPROF_E_NOMEM, "out of memory summing frames");
    memset(seen, 0, (n_frames + 1) * sizeof *seen);
    memset(flat, 0, n_frames * nt * sizeof *flat);
    memset(cum, 0, n_frames * nt * sizeof *cum);
    for (size_t k = 0; k < ps->n; k++) {
        if (ps->len[k] == 0)
            continue;
        const uint32_t *pool = ps->pool + ps->start[k];
        const cprof_sum_t *v = ps->sums + k * nt;
        uint32_t leaf = frame_of_node[pool[ps->len[k] - 1]];
        for (size_t t = 0; t < nt; t++)
            cprof_sum_add128(&flat[leaf * nt + t], v[t]);
        for (uint32_t d = 0; d < ps->len[k]; d++) {
            uint32_t f = frame_of_node[pool[d]];
            if (seen[f] == k + 1)
                continue;
            seen[f] = k + 1;
            for (size_t t = 0; t < nt; t++)
                cprof_sum_add128(&cum[f * nt + t], v[t]);
        }
    }
    free(seen);
    return CPROF_OK;
}

void cprof_frame_stacks_free(cprof_frame_stacks_t *s)
{
    free(s->frames);
    free(s->path);
    free(s->sum);
    memset(s, 0, sizeof *s);
}

typedef struct {
    const cprof_frame_stacks_t *s;
    const cprof_paths_t *ps;
    const cprof_frame_names_t *names;
} text_order_t;

/* Stacks a and b by their folded lines' bytes. Frames are compared name by
 * name; where one name is a proper prefix of the other, the shorter line
 * continues with ';' (more frames) or ends (which sorts first). */
static int text_compare(const void *ctx, uint32_t a, uint32_t b)
{
    const text_order_t *t = ctx;
    uint32_t pa = t->s->path[a], pb = t->s->path[b];
    const uint32_t *x = t->s->frames + t->ps->start[pa], *y = t->s->frames + t->ps->start[pb];
    uint32_t nx = t->ps->len[pa], ny = t->ps->len[pb];
    for (uint32_t i = 0;; i++) {
        if (i == nx || i == ny)
            return (nx > ny) - (nx < ny);
        if (x[i] == y[i])
            continue;
        const unsigned char *u = (const unsigned char *)t->names->name[x[i]];
        const unsigned char *v = (const unsigned char *)t->names->name[y[i]];
        size_t lu = t->names->len[x[i]], lv = t->names->len[y[i]];
        size_t common = lu < lv ? lu : lv;
        int c = memcmp(u, v, common);
        if (c != 0)
            return c;
        /* One name is a prefix of the other (different frames have
         * different names, so not equal): what follows the shorter one. */
        if (lu < lv) {
            if (i + 1 == nx)
                return -1;
            return ';' < v[lu] ? -1 : 1;
        }
        if (i + 1 == ny)
            return 1;
        return u[lv] < ';' ? -1 : 1;
    }
}

size_t cprof_sum_format(cprof_sum_t s, char *buf)
{
    int negative = s.hi < 0;
    if (negative)
        s = cprof_sum_negate(s);
    /* The magnitude as four 32-bit limbs, most significant first; divided by
     * 10 until zero, the remainders are the digits from the last. */
    uint32_t limb[4] = {(uint32_t)((uint64_t)s.hi >> 32), (uint32_t)(uint64_t)s.hi,
                        (uint32_t)(s.lo >> 32), (uint32_t)s.lo};
    char digits[40];
    size_t n = 0;
    do {
        uint64_t rem = 0;
        for (int i = 0; i < 4; i++) {
            uint64_t cur = rem << 32 | limb[i];
            limb[i] = (uint32_t)(cur / 10);
            rem = cur % 10;
        }
        digits[n++] = (char)('0' + rem);
    } while (limb[0] | limb[1] | limb[2] | limb[3]);
    size_t len = 0;
    if (negative)
        buf[len++] = '-';
    while (n > 0)
        buf[len++] = digits[--n];
    buf[len] = '\0';
    return len;
}

int cprof_frame_stacks_folded(const cprof_frame_stacks_t *s, const cprof_paths_t *ps,
                        const cprof_frame_names_t *names, char **out, size_t *out_len,
                        cprof_error_t *err)
{
    *out = NULL;
    *out_len = 0;
    uint32_t *order = malloc((s->n + 1) * sizeof *order), *tmp = malloc((s->n + 1) * sizeof *tmp);
    char *text = NULL;
    size_t cap = 0, len = 0;
    int ok = order != NULL && tmp != NULL;
    if (ok) {
        for (size_t i = 0; i < s->n; i++)
            order[i] = (uint32_t)i;
        text_order_t ctx = {s, ps, names};
        cprof_sort_order(order, tmp, s->n, text_compare, &ctx);
    }
    for (size_t i = 0; ok && i < s->n; i++) {
        uint32_t k = s->path[order[i]];
        const uint32_t *f = s->frames + ps->start[k];
        size_t need = len + 44;  /* the space, up to 40 characters of value, the newline, NUL */
        for (uint32_t d = 0; d < ps->len[k]; d++)
            need += names->len[f[d]] + 1;
        if (cprof_reserve((void **)&text, &cap, need, 1) < 0) {
            ok = 0;
            break;
        }
        for (uint32_t d = 0; d < ps->len[k]; d++) {
            if (d > 0)
                text[len++] = ';';
            memcpy(text + len, names->name[f[d]], names->len[f[d]]);
            len += names->len[f[d]];
        }
        text[len++] = ' ';
        len += cprof_sum_format(s->sum[order[i]], text + len);
        text[len++] = '\n';
    }
    free(order);
    free(tmp);
    if (!ok) {
        free(text);
        return cprof_fail(err, CPROF_E_NOMEM, "out of memory writing folded stacks");
    }
    *out = text;
    *out_len = len;
    return CPROF_OK;
}
