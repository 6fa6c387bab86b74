/* traces: pprof's merged samples and the stacks -traces prints (see traces.h). */
#include "analysis/traces.h"

#include <stdlib.h>
#include <string.h>

typedef Perftools__Profiles__Location location_t;

typedef struct {
    const cprof_pprof_t *p;
    const int64_t *canon;
} content_t;

static long mapping_of(const content_t *c, const location_t *loc)
{
    if (loc->mapping_id == 0)
        return -1;
    return cprof_pprof_find(&c->p->mappings, c->p->msg->n_mapping, loc->mapping_id);
}

static long function_of(const content_t *c, const Perftools__Profiles__Line *ln)
{
    if (ln->function_id == 0)
        return -1;
    return cprof_pprof_find(&c->p->functions, c->p->msg->n_function, ln->function_id);
}

/* pprof's locationKey of location li as words, through emit(ctx, word):
 * the same words for equal keys, different ones otherwise. */
static void location_key(const content_t *c, size_t li, void (*emit)(void *, uint64_t),
                         void *ctx)
{
    const cprof_msg_t *m = c->p->msg;
    const location_t *loc = m->location[li];
    long mi = mapping_of(c, loc);
    if (mi < 0) {
        emit(ctx, 0);
        emit(ctx, loc->address);
    } else {
        const Perftools__Profiles__Mapping *mp = m->mapping[mi];
        emit(ctx, 1);
        emit(ctx, loc->address - mp->memory_start);
        emit(ctx, (mp->memory_limit - mp->memory_start + 0xFFF) / 0x1000);
        emit(ctx, mp->file_offset);
        int64_t build_id = c->canon[mp->build_id];
        emit(ctx, (uint64_t)(build_id != 0 ? build_id : c->canon[mp->filename]));
    }
    emit(ctx, loc->is_folded);
    emit(ctx, loc->n_line);
    for (size_t j = 0; j < loc->n_line; j++) {
        const Perftools__Profiles__Line *ln = loc->line[j];
        long fi = function_of(c, ln);
        if (fi < 0) {
            emit(ctx, 0);
        } else {
            const Perftools__Profiles__Function *fn = m->function[fi];
            emit(ctx, 1);
            emit(ctx, (uint64_t)fn->start_line);
            emit(ctx, (uint64_t)c->canon[fn->name]);
            emit(ctx, (uint64_t)c->canon[fn->system_name]);
            emit(ctx, (uint64_t)c->canon[fn->filename]);
        }
        emit(ctx, (uint64_t)ln->line);
    }
}

static void hash_word(void *ctx, uint64_t w)
{
    uint64_t *h = ctx;
    *h = (*h ^ w) * 0x100000001b3ULL + (*h >> 29);
}

typedef struct {
    uint64_t *words;
    size_t n, cap;
    int failed;
} words_t;

static void keep_word(void *ctx, uint64_t w)
{
    words_t *ws = ctx;
    if (cprof_reserve((void **)&ws->words, &ws->cap, ws->n + 1, sizeof *ws->words) < 0) {
        ws->failed = 1;
        return;
    }
    ws->words[ws->n++] = w;
}

/* class_of[li]: the first location with li's key. Returns 0 or -1 (no memory). */
static int location_classes(const content_t *c, uint32_t *class_of)
{
    const cprof_msg_t *m = c->p->msg;
    cprof_itab_t index = {0};
    words_t a = {0}, b = {0};
    int rc = -1;
    if (cprof_itab_init(&index, m->n_location) < 0)
        goto done;
    for (size_t li = 0; li < m->n_location; li++) {
        uint64_t h = 0xcbf29ce484222325ULL;
        location_key(c, li, hash_word, &h);
        h = cprof_itab_hash(h);
        size_t slot = cprof_itab_first(&index, h);
        class_of[li] = (uint32_t)li;
        for (; index.hashes[slot] != 0; slot = cprof_itab_next(&index, slot)) {
            if (index.hashes[slot] != h)
                continue;
            a.n = b.n = 0;
            location_key(c, li, keep_word, &a);
            location_key(c, index.values[slot], keep_word, &b);
            if (a.failed || b.failed)
                goto done;
            if (a.n == b.n && memcmp(a.words, b.words, a.n * sizeof *a.words) == 0) {
                class_of[li] = index.values[slot];
                break;
            }
        }
        if (class_of[li] == li && cprof_itab_put(&index, slot, h, (uint32_t)li) < 0)
            goto done;
    }
    rc = 0;
done:
    cprof_itab_free(&index);
    free(a.words);
    free(b.words);
    return rc;
}

typedef struct {
    const cprof_pprof_t *p;
    const uint32_t *class_of;     /* per location */
    const uint32_t *label_class;  /* per sample */
} samples_t;

static uint32_t loc_class(const samples_t *s, uint64_t id)
{
    const cprof_pprof_t *p = s->p;
    return s->class_of[cprof_pprof_find(&p->locations, p->msg->n_location, id)];
}

static uint64_t sample_hash(const samples_t *s, size_t i)
{
    const Perftools__Profiles__Sample *x = s->p->msg->sample[i];
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ s->label_class[i];
    for (size_t j = 0; j < x->n_location_id; j++)
        hash_word(&h, loc_class(s, x->location_id[j]));
    return cprof_itab_hash(h ^ x->n_location_id);
}

static int same_sample(const samples_t *s, size_t a, size_t b)
{
    const Perftools__Profiles__Sample *x = s->p->msg->sample[a], *y = s->p->msg->sample[b];
    if (s->label_class[a] != s->label_class[b] || x->n_location_id != y->n_location_id)
        return 0;
    for (size_t j = 0; j < x->n_location_id; j++)
        if (loc_class(s, x->location_id[j]) != loc_class(s, y->location_id[j]))
            return 0;
    return 1;
}

int cprof_traces_merge(const cprof_pprof_t *p, const uint32_t *label_class, cprof_merged_t *out,
                       cprof_error_t *err)
{
    const cprof_msg_t *m = p->msg;
    const size_t nt = m->n_sample_type;
    memset(out, 0, sizeof *out);
    int64_t *canon = NULL;
    uint32_t *class_of = malloc((m->n_location + 1) * sizeof *class_of);
    cprof_itab_t index = {0};
    size_t cap_first = 0, cap_sums = 0;
    int rc = CPROF_E_NOMEM;
    if (class_of == NULL || cprof_canonical_strings(m, &canon) < 0 ||
        cprof_itab_init(&index, 1024) < 0)
        goto done;
    content_t c = {p, canon};
    if (location_classes(&c, class_of) < 0)
        goto done;
    samples_t ss = {p, class_of, label_class};
    for (size_t i = 0; i < m->n_sample; i++) {
        const Perftools__Profiles__Sample *s = m->sample[i];
        int any = 0;
        for (size_t t = 0; t < nt; t++)
            any |= s->value[t] != 0;
        if (!any)
            continue;
        uint64_t h = sample_hash(&ss, i);
        size_t slot = cprof_itab_first(&index, h);
        long found = -1;
        for (; index.hashes[slot] != 0; slot = cprof_itab_next(&index, slot))
            if (index.hashes[slot] == h && same_sample(&ss, out->first[index.values[slot]], i)) {
                found = index.values[slot];
                break;
            }
        if (found < 0) {
            size_t k = out->n;
            if (cprof_reserve((void **)&out->first, &cap_first, k + 1, sizeof *out->first) < 0 ||
                cprof_reserve((void **)&out->sums, &cap_sums, (k + 1) * nt + 1,
                              sizeof *out->sums) < 0 ||
                cprof_itab_put(&index, slot, h, (uint32_t)k) < 0)
                goto done;
            out->first[k] = (uint32_t)i;
            memset(out->sums + k * nt, 0, nt * sizeof *out->sums);
            found = (long)out->n++;
        }
        for (size_t t = 0; t < nt; t++)
            cprof_sum_add(&out->sums[found * nt + t], s->value[t]);
    }
    size_t kept = 0;
    for (size_t k = 0; k < out->n; k++) {
        int any = 0;
        for (size_t t = 0; t < nt; t++)
            any |= !cprof_sum_is_zero(out->sums[k * nt + t]);
        if (!any || m->sample[out->first[k]]->n_location_id == 0)
            continue;
        out->first[kept] = out->first[k];
        memmove(out->sums + kept * nt, out->sums + k * nt, nt * sizeof *out->sums);
        kept++;
    }
    out->n = kept;
    rc = CPROF_OK;
done:
    free(canon);
    free(class_of);
    cprof_itab_free(&index);
    if (rc != CPROF_OK) {
        cprof_merged_free(out);
        return cprof_fail(err, rc, "out of memory merging samples");
    }
    return rc;
}

void cprof_merged_free(cprof_merged_t *m)
{
    free(m->first);
    free(m->sums);
    memset(m, 0, sizeof *m);
}

static const char INLINE_MARK[] = " (inline)";
#define INDENT 13

int cprof_traces_text(const cprof_pprof_t *p, const cprof_paths_t *ps, const uint32_t *first,
                      size_t n, const cprof_frame_names_t *heads,
                      const cprof_frame_names_t *names, char **out, size_t *out_len,
                      cprof_error_t *err)
{
    const cprof_msg_t *m = p->msg;
    const size_t mark = sizeof INLINE_MARK - 1;
    char *text = NULL;
    size_t cap = 0, len = 0;
    *out = NULL;
    *out_len = 0;
    for (size_t k = 0; k < n; k++) {
        const Perftools__Profiles__Sample *s = m->sample[first[k]];
        size_t need = len + heads->len[k] + 1;
        for (size_t d = 0; d < s->n_location_id; d++) {
            long li = cprof_pprof_find(&p->locations, m->n_location, s->location_id[d]);
            const uint32_t *chain = ps->loc_nodes + ps->loc_start[li];
            for (uint32_t j = 0; j < ps->loc_len[li]; j++)
                need += INDENT + names->len[chain[j]] + mark + 1;
        }
        if (cprof_reserve((void **)&text, &cap, need, 1) < 0) {
            free(text);
            return cprof_fail(err, CPROF_E_NOMEM, "out of memory writing traces");
        }
        memcpy(text + len, heads->name[k], heads->len[k]);
        len += heads->len[k];
        int first_frame = 1;
        for (size_t d = 0; d < s->n_location_id; d++) {
            long li = cprof_pprof_find(&p->locations, m->n_location, s->location_id[d]);
            const uint32_t *chain = ps->loc_nodes + ps->loc_start[li];
            /* The chain is caller first; the frames print leaf first, and
             * all but the location's caller were inlined into it. */
            for (uint32_t j = ps->loc_len[li]; j-- > 0;) {
                if (!first_frame) {
                    memset(text + len, ' ', INDENT);
                    len += INDENT;
                }
                first_frame = 0;
                memcpy(text + len, names->name[chain[j]], names->len[chain[j]]);
                len += names->len[chain[j]];
                if (j > 0) {
                    memcpy(text + len, INLINE_MARK, mark);
                    len += mark;
                }
                text[len++] = '\n';
            }
        }
    }
    *out = text;
    *out_len = len;
    return CPROF_OK;
}
