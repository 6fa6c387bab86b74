/* filter: pprof's filters applied to a decoded profile (see filter.h). */
#include "analysis/filter.h"

#include <stdlib.h>
#include <string.h>

#define BY_NAME (CPROF_F_FOCUS | CPROF_F_IGNORE | CPROF_F_HIDE | CPROF_F_SHOW)

typedef Perftools__Profiles__Location location_t;
typedef Perftools__Profiles__Line line_t;

/* Per source location: what hide and show leave of its lines (indices into
 * its line array, in order, at keep[off .. off + cnt)), and its verdicts.
 * Its lines' function bits are at line_bits[first_line ..], one per line. */
typedef struct {
    uint32_t off, cnt, first_line;
    uint8_t bits;      /* the filters matching some line's function or the mapping */
    uint8_t map_bits;  /* those matching the mapping alone */
    uint8_t hidden;    /* hide or show left nothing */
} loc_info_t;

typedef struct {
    const cprof_pprof_t *src;
    const cprof_filter_t *f;
    loc_info_t *info;
    uint32_t *keep;        /* line indices */
    uint8_t *line_bits;    /* per source line: its function's bits, looked up once */
    /* made[4 * k + cuts]: the output location for source location k with
     * show_from's cut (1) and prune_from's (2) applied, + 1; 0: not made yet */
    uint32_t *made;
    location_t **out_loc;  /* the output locations */
    size_t n_out_loc, cap_out_loc;
    uint64_t next_id;      /* for locations that lost lines */
    uint64_t *used_ids;    /* sorted, when ids past the largest would wrap; else NULL */
    size_t n_used, at_used;
    cprof_arena_t *arena;
} filter_t;

/* An id no source location has: past the largest, or, when that could wrap
 * (ids near 2^64), the next gap among the sorted ids. */
static uint64_t new_id(filter_t *ft)
{
    if (ft->used_ids == NULL)
        return ft->next_id++;
    for (;;) {
        uint64_t id = ft->next_id++;
        while (ft->at_used < ft->n_used && ft->used_ids[ft->at_used] < id)
            ft->at_used++;
        if (ft->at_used == ft->n_used || ft->used_ids[ft->at_used] != id)
            return id;
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static uint8_t function_bits(const filter_t *ft, const line_t *ln)
{
    if (ln->function_id == 0)
        return 0;
    long i = cprof_pprof_find(&ft->src->functions, ft->src->msg->n_function, ln->function_id);
    return i < 0 ? 0 : ft->f->function_bits[i];
}

/* The function bits of line j of source location k. */
static uint8_t line_bits(const filter_t *ft, size_t k, uint32_t j)
{
    return ft->line_bits[ft->info[k].first_line + j];
}

static void classify(filter_t *ft, size_t k, uint32_t *pool_n, uint32_t *lines_n)
{
    const cprof_msg_t *m = ft->src->msg;
    const location_t *loc = m->location[k];
    const unsigned active = ft->f->active;
    loc_info_t *in = &ft->info[k];
    uint8_t mb = 0;
    if (loc->mapping_id != 0) {
        long i = cprof_pprof_find(&ft->src->mappings, m->n_mapping, loc->mapping_id);
        mb = i < 0 ? 0 : ft->f->mapping_bits[i];
    }
    in->map_bits = mb;
    in->bits = mb;
    in->first_line = *lines_n;
    for (size_t j = 0; j < loc->n_line; j++) {
        ft->line_bits[(*lines_n)++] = function_bits(ft, loc->line[j]);
        in->bits |= ft->line_bits[in->first_line + j];
    }
    in->off = *pool_n;
    int hide = (active & CPROF_F_HIDE) && (in->bits & CPROF_F_HIDE);
    int show = (active & CPROF_F_SHOW) != 0;
    for (size_t j = 0; j < loc->n_line; j++) {
        uint8_t fb = line_bits(ft, k, (uint32_t)j);
        int has_fn = loc->line[j]->function_id != 0;
        if (hide && ((mb & CPROF_F_HIDE) || (has_fn && (fb & CPROF_F_HIDE))))
            continue;
        if (show && !(mb & CPROF_F_SHOW) && has_fn && !(fb & CPROF_F_SHOW))
            continue;
        ft->keep[(*pool_n)++] = (uint32_t)j;
    }
    in->cnt = *pool_n - in->off;
    in->hidden = (hide || show) && in->cnt == 0;
}

/* The lines of source location k after hide and show, then show_from's
 * cut (a prefix up to the outermost match) when cuts & 1, then prune_from's
 * (a suffix from the innermost match) when cuts & 2: at *lines, *n. */
static void variant(const filter_t *ft, size_t k, unsigned cuts, const uint32_t **lines,
                    uint32_t *n)
{
    const loc_info_t *in = &ft->info[k];
    const uint32_t *l = ft->keep + in->off;
    uint32_t c = in->cnt;
    if ((cuts & 1) && !(in->map_bits & CPROF_F_SHOW_FROM)) {
        uint32_t last = c;
        for (uint32_t j = 0; j < c; j++)
            if (line_bits(ft, k, l[j]) & CPROF_F_SHOW_FROM)
                last = j;
        c = last + 1;  /* there is a match: cuts & 1 is only asked for then */
    }
    if (cuts & 2) {
        uint32_t first = 0;
        while (first < c && !(line_bits(ft, k, l[first]) & CPROF_F_PRUNE_FROM))
            first++;
        l += first;
        c -= first;
    }
    *lines = l;
    *n = c;
}

/* Whether show_from (or prune_from) matches source location k as it is after
 * the earlier stages (cuts: those applied before). */
static int show_from_matches(const filter_t *ft, size_t k)
{
    const loc_info_t *in = &ft->info[k];
    if (in->map_bits & CPROF_F_SHOW_FROM)
        return 1;
    for (uint32_t j = 0; j < in->cnt; j++)
        if (line_bits(ft, k, ft->keep[in->off + j]) & CPROF_F_SHOW_FROM)
            return 1;
    return 0;
}

static int prune_from_matches(const filter_t *ft, size_t k, unsigned cuts)
{
    const uint32_t *l;
    uint32_t c;
    variant(ft, k, cuts, &l, &c);
    for (uint32_t j = 0; j < c; j++)
        if (line_bits(ft, k, l[j]) & CPROF_F_PRUNE_FROM)
            return 1;
    return 0;
}

/* The output location id for source location k with cuts applied; 0 when
 * memory ran out. */
static uint64_t output_location(filter_t *ft, size_t k, unsigned cuts)
{
    uint32_t *slot = &ft->made[4 * k + cuts];
    if (*slot != 0)
        return ft->out_loc[*slot - 1]->id;
    location_t *loc = ft->src->msg->location[k];
    const uint32_t *l;
    uint32_t c;
    variant(ft, k, cuts, &l, &c);
    if (c == loc->n_line && cuts != 0) {
        /* Nothing cut: the location as it is, made once (cuts only remove
         * lines, so with none removed the uncut variant is whole too). */
        uint64_t id = output_location(ft, k, 0);
        *slot = ft->made[4 * k];
        return id;
    }
    location_t *made = loc;
    if (c != loc->n_line) {
        made = cprof_arena_alloc(ft->arena, sizeof *made);
        line_t **lines = cprof_arena_calloc(ft->arena, c + 1, sizeof *lines);
        if (made == NULL || lines == NULL)
            return 0;
        *made = *loc;
        for (uint32_t j = 0; j < c; j++)
            lines[j] = loc->line[l[j]];
        made->line = lines;
        made->n_line = c;
        made->id = new_id(ft);
    }
    if (cprof_reserve((void **)&ft->out_loc, &ft->cap_out_loc, ft->n_out_loc + 1,
                      sizeof *ft->out_loc) < 0)
        return 0;
    ft->out_loc[ft->n_out_loc++] = made;
    *slot = (uint32_t)ft->n_out_loc;
    return made->id;
}

int cprof_filter_apply(const cprof_pprof_t *src, const cprof_filter_t *f, cprof_pprof_t **out,
                       cprof_error_t *err)
{
    const cprof_msg_t *m = src->msg;
    *out = NULL;
    cprof_pprof_t *p = calloc(1, sizeof *p);
    filter_t ft = {.src = src, .f = f};
    size_t n_lines = 0;
    uint64_t max_id = 0;
    for (size_t k = 0; k < m->n_location; k++) {
        n_lines += m->location[k]->n_line;
        if (m->location[k]->id > max_id)
            max_id = m->location[k]->id;
    }
    ft.next_id = max_id + 1;
    if (max_id > UINT64_MAX - 4 * (uint64_t)m->n_location - 1) {
        /* Each source location makes at most 4 new ones: look for gaps. */
        ft.used_ids = malloc((m->n_location + 1) * sizeof *ft.used_ids);
        if (ft.used_ids == NULL) {
            free(p);
            return cprof_fail(err, CPROF_E_NOMEM, "out of memory filtering the profile");
        }
        for (size_t k = 0; k < m->n_location; k++)
            ft.used_ids[k] = m->location[k]->id;
        qsort(ft.used_ids, m->n_location, sizeof *ft.used_ids, cmp_u64);
        ft.n_used = m->n_location;
        ft.next_id = 1;
    }
    ft.info = calloc(m->n_location + 1, sizeof *ft.info);
    ft.keep = malloc((n_lines + 1) * sizeof *ft.keep);
    ft.line_bits = malloc(n_lines + 1);
    ft.made = calloc(4 * m->n_location + 1, sizeof *ft.made);
    size_t max_depth = 0;
    for (size_t i = 0; i < m->n_sample; i++)
        if (m->sample[i]->n_location_id > max_depth)
            max_depth = m->sample[i]->n_location_id;
    uint32_t *stack = malloc((max_depth + 1) * sizeof *stack);  /* source indices */
    uint8_t *cuts = malloc(max_depth + 1);
    uint8_t *used_fn = calloc(m->n_function + 1, 1);
    int rc = CPROF_E_NOMEM;
    if (p == NULL || !ft.info || !ft.keep || !ft.line_bits || !ft.made || !stack || !cuts || !used_fn)
        goto done;
    ft.arena = &p->arena;
    uint32_t pool_n = 0, lines_n = 0;
    for (size_t k = 0; k < m->n_location; k++)
        classify(&ft, k, &pool_n, &lines_n);

    cprof_msg_t *msg = cprof_arena_alloc(&p->arena, sizeof *msg);
    Perftools__Profiles__Sample **samples =
        cprof_arena_calloc(&p->arena, m->n_sample + 1, sizeof *samples);
    if (msg == NULL || samples == NULL)
        goto done;
    *msg = *m;
    size_t n_out = 0;
    const unsigned active = f->active;
    for (size_t i = 0; i < m->n_sample; i++) {
        const Perftools__Profiles__Sample *s = m->sample[i];
        size_t n = 0;
        int focused = 0, ignored = 0;
        for (size_t d = 0; d < s->n_location_id; d++) {
            long k = cprof_pprof_find(&src->locations, m->n_location, s->location_id[d]);
            if (k < 0)
                continue;  /* the index checked every id: not reached */
            const loc_info_t *in = &ft.info[k];
            if (active & BY_NAME) {
                int ign = (active & CPROF_F_IGNORE) && (in->bits & CPROF_F_IGNORE);
                ignored |= ign;
                focused |= !ign && (!(active & CPROF_F_FOCUS) || (in->bits & CPROF_F_FOCUS));
                if (in->hidden)
                    continue;
            }
            cuts[n] = 0;
            stack[n++] = (uint32_t)k;
        }
        if ((active & BY_NAME) && (!focused || ignored || n == 0))
            continue;
        size_t lo = 0, hi = n;  /* the part of the stack kept, leaf first */
        /* As pprof trims its shared locations, every matching location
         * left in the stack is cut, not only the one the stack is cut at. */
        if (active & CPROF_F_SHOW_FROM) {
            size_t at = n;
            for (size_t d = n; d-- > 0;)
                if (show_from_matches(&ft, stack[d])) {
                    cuts[d] |= 1;
                    if (at == n)
                        at = d;
                }
            if (at == n)
                continue;
            hi = at + 1;
        }
        if (f->sample_keep != NULL && !f->sample_keep[i])
            continue;
        if (active & CPROF_F_PRUNE_FROM) {
            size_t at = hi;
            for (size_t d = lo; d < hi; d++)
                if (prune_from_matches(&ft, stack[d], cuts[d])) {
                    cuts[d] |= 2;
                    if (at == hi)
                        at = d;
                }
            if (at != hi)
                lo = at;
        }
        Perftools__Profiles__Sample *made = cprof_arena_alloc(&p->arena, sizeof *made);
        uint64_t *ids = cprof_arena_calloc(&p->arena, hi - lo + 1, sizeof *ids);
        if (made == NULL || ids == NULL)
            goto done;
        *made = *s;
        for (size_t d = lo; d < hi; d++)
            if ((ids[d - lo] = output_location(&ft, stack[d], cuts[d])) == 0)
                goto done;
        made->location_id = ids;
        made->n_location_id = hi - lo;
        samples[n_out++] = made;
    }
    msg->sample = samples;
    msg->n_sample = n_out;

    /* The locations the samples use (in the order first used), and the
     * functions those use (in the source's order). */
    location_t **locs = cprof_arena_calloc(&p->arena, ft.n_out_loc + 1, sizeof *locs);
    if (locs == NULL)
        goto done;
    for (size_t j = 0; j < ft.n_out_loc; j++) {
        locs[j] = ft.out_loc[j];
        for (size_t l = 0; l < locs[j]->n_line; l++) {
            uint64_t id = locs[j]->line[l]->function_id;
            long fi = id ? cprof_pprof_find(&src->functions, m->n_function, id) : -1;
            if (fi >= 0)
                used_fn[fi] = 1;
        }
    }
    msg->location = locs;
    msg->n_location = ft.n_out_loc;
    size_t n_fn = 0;
    for (size_t j = 0; j < m->n_function; j++)
        n_fn += used_fn[j];
    Perftools__Profiles__Function **fns = cprof_arena_calloc(&p->arena, n_fn + 1, sizeof *fns);
    if (fns == NULL)
        goto done;
    n_fn = 0;
    for (size_t j = 0; j < m->n_function; j++)
        if (used_fn[j])
            fns[n_fn++] = m->function[j];
    msg->function = fns;
    msg->n_function = n_fn;
    p->msg = msg;
    rc = cprof_pprof_index(p, NULL, err);
    if (rc == 0) {
        *out = p;
        p = NULL;
    }
done:
    if (rc == CPROF_E_NOMEM)
        cprof_fail(err, CPROF_E_NOMEM, "out of memory filtering the profile");
    if (p != NULL)
        cprof_pprof_free(p);
    free(ft.info);
    free(ft.keep);
    free(ft.line_bits);
    free(ft.made);
    free(ft.out_loc);
    free(ft.used_ids);
    free(stack);
    free(cuts);
    free(used_fn);
    return rc;
}
