/* fuzz_decode: a libFuzzer harness for cprof_pprof_decode and its round trip.
 *
 * Every input must either be refused with an error message or decode; a
 * decoded profile must go through the analysis engine (paths and graphs at
 * every granularity) and survive encode -> decode at gzip level 1 and raw
 * (level 0) with the same table sizes and totals, and re-encoding what was
 * decoded from our own raw output must give the same bytes. Any other
 * outcome aborts, so libFuzzer records the input as a crash. Build and run
 * with csrc/fuzz/run.sh.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/filter.h"
#include "analysis/frame_stacks.h"
#include "analysis/graph.h"
#include "analysis/listing.h"
#include "analysis/sample_keys.h"
#include "analysis/tags.h"
#include "analysis/total.h"
#include "analysis/traces.h"
#include "analysis/tree.h"
#include "codec/pprof.h"

/* For some inputs (see LLVMFuzzerTestOneInput) the decode is interrupted
 * at its first interruption point, as Ctrl-C would, to check that every
 * stage stops cleanly (no leak, no profile, CPROF_E_PYTHON). */
static int interrupt_now;
static size_t interrupt_calls;

static int interrupt_check(void *ctx)
{
    (void)ctx;
    interrupt_calls++;
    return interrupt_now;
}

/* A max_size small enough that a gzip bomb (or a message that decodes to
 * far more memory than its size) costs milliseconds even with the ratio
 * check off, large enough for every real seed; the ratio limit is the
 * default one users get. */
static cprof_limits_t input_limits = {
    .max_size = (size_t)64 << 20,
    .max_ratio = CPROF_DEFAULT_MAX_RATIO,
    .interrupted = interrupt_check,
};

/* Our own encoder's output is already in memory and may be a byte or two
 * larger than the input (a lone unpacked repeated value is re-encoded
 * packed), so its re-decode is not limited: the limits under test are the
 * input's. */
static const cprof_limits_t no_limits = {.max_size = SIZE_MAX, .max_ratio = 0};

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_decode: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

static void check_codes(int rc, const cprof_error_t *err)
{
    /* The decoder may only refuse (format, limit) or run out of memory;
     * a refusal must say why. */
    if (rc != CPROF_E_FORMAT && rc != CPROF_E_LIMIT && rc != CPROF_E_NOMEM) {
        char code[32];
        snprintf(code, sizeof code, "%d", rc);
        die("decode returned an unexpected code", code);
    }
    if (err->msg[0] == '\0')
        die("decode failed with an empty message", NULL);
}

static void check_same(const cprof_pprof_t *a, const cprof_pprof_t *b, const char *how)
{
    const cprof_msg_t *x = a->msg, *y = b->msg;
    if (x->n_sample != y->n_sample || x->n_location != y->n_location ||
        x->n_function != y->n_function || x->n_mapping != y->n_mapping ||
        x->n_sample_type != y->n_sample_type || x->n_string_table != y->n_string_table)
        die("table sizes changed in the round trip", how);
    size_t n = x->n_sample_type ? x->n_sample_type : 1;
    cprof_sum_t *ta = calloc(n, sizeof *ta), *tb = calloc(n, sizeof *tb);
    if (ta == NULL || tb == NULL)
        die("out of memory", how);
    cprof_pprof_totals(a, ta);
    cprof_pprof_totals(b, tb);
    if (memcmp(ta, tb, x->n_sample_type * sizeof *ta) != 0)
        die("totals changed in the round trip", how);
    free(ta);
    free(tb);
}

/* Encode p at level, decode the result, compare; the re-decoded profile is
 * returned for the caller to inspect, then free. */
static cprof_pprof_t *round_trip(const cprof_pprof_t *p, int level, uint8_t **bytes,
                                 size_t *n_bytes)
{
    cprof_error_t err = {{0}};
    cprof_pprof_t *back = NULL;
    const char *how = level ? "gzip level 1" : "raw";
    if (cprof_pprof_encode(p, level, bytes, n_bytes, &err) != 0)
        die("encoding a decoded profile failed", err.msg);
    if (cprof_pprof_decode(*bytes, *n_bytes, &no_limits, &back, &err) != 0)
        die("our own encoding does not decode", err.msg);
    check_same(p, back, how);
    return back;
}

/* The listing of sample type t: with every function listed (in a few
 * files), its flat total is want (the paths' with locations); with every
 * other function left out, a part of it that is in range. */
static void check_listing(const cprof_pprof_t *p, size_t t, cprof_sum_t want)
{
    cprof_error_t err = {{0}};
    int32_t *fn_file = malloc((p->msg->n_function + 1) * sizeof *fn_file);
    for (int some = 0; some < 2; some++) {
        for (size_t i = 0; i < p->msg->n_function; i++)
            fn_file[i] = some && i % 2 ? CPROF_LISTING_SKIP : (int32_t)(i % 3);
        cprof_listing_t ls;
        if (cprof_listing_build(p, t, fn_file, !some, &ls, &err) != 0)
            die("listing failed on a valid profile", err.msg);
        cprof_sum_t flat = {0, 0};
        for (size_t r = 0; r < ls.n; r++) {
            cprof_sum_add128(&flat, ls.flat[r]);
            if (ls.nodes[r].file < 0 || ls.nodes[r].file > 2)
                die("a listed line has a file id out of range", NULL);
        }
        if (!some && (flat.hi != want.hi || flat.lo != want.lo))
            die("the listing's flat total is not the paths' sum", NULL);
        cprof_listing_free(&ls);
    }
    free(fn_file);
}

/* The merged samples (labels alike when their sets are) in the order of
 * their first sample, each with locations; their traces print a head line
 * and a line per frame. */
static void check_traces(const cprof_pprof_t *p, const cprof_paths_t *ps, const uint32_t *set_of)
{
    cprof_error_t err = {{0}};
    cprof_merged_t mg;
    if (cprof_traces_merge(p, set_of, &mg, &err) != 0)
        die("merging samples failed on a valid profile", err.msg);
    size_t frames = 0;
    for (size_t k = 0; k < mg.n; k++) {
        const Perftools__Profiles__Sample *s = p->msg->sample[mg.first[k]];
        if (s->n_location_id == 0 || (k > 0 && mg.first[k] <= mg.first[k - 1]))
            die("a merged sample is out of order or without locations", NULL);
        for (size_t d = 0; d < s->n_location_id; d++) {
            long li = cprof_pprof_find(&p->locations, p->msg->n_location, s->location_id[d]);
            frames += ps->loc_len[li];
        }
    }
    const char **text = malloc((ps->n_nodes + mg.n + 1) * sizeof *text);
    size_t *len = malloc((ps->n_nodes + mg.n + 1) * sizeof *len);
    for (size_t i = 0; i < ps->n_nodes + mg.n; i++) {
        text[i] = i < mg.n ? "head\n" : "a b";
        len[i] = i < mg.n ? 5 : 3;
    }
    cprof_frame_names_t heads = {text, len}, names = {text + mg.n, len + mg.n};
    char *out;
    size_t out_len, lines = 0;
    if (cprof_traces_text(p, ps, mg.first, mg.n, &heads, &names, &out, &out_len, &err) != 0)
        die("traces failed on a valid profile", err.msg);
    for (size_t i = 0; i < out_len; i++)
        lines += out[i] == '\n';
    if (lines != mg.n + frames)
        die("traces have not one line per head and frame", NULL);
    free(out);
    free(text);
    free(len);
    cprof_merged_free(&mg);
}

/* The analysis engine over a decoded profile: every granularity's paths and
 * the graph of each sample type, with every other node kept; each path's
 * nodes must be in range, and the flat total of the whole graph must be the
 * sum of the type's non-empty paths; the function-granularity tree must be in
 * preorder under its root, and its frame stacks must sum to the same total
 * and print one folded line each; the listing of every function must have
 * the same flat total, and the traces one line per frame and head. */
static void analyse(const cprof_pprof_t *p)
{
    cprof_error_t err = {{0}};
    for (size_t t = 0; t < p->msg->n_sample_type; t++) {
        cprof_sum_t total;
        if (cprof_report_total(p, t, &total, &err) != 0)
            die("the report total failed on a valid profile", err.msg);
        if (total.hi < 0)
            die("the report total is negative", NULL);
    }
    for (int grain = 0; grain < CPROF_GRAINS; grain++) {
        cprof_paths_t ps;
        if (cprof_paths_build(p, (cprof_grain_t)grain, &ps, &err) != 0)
            die("paths failed on a valid profile", err.msg);
        uint8_t *kept = malloc(ps.n_nodes + 1);
        for (size_t i = 0; i < ps.n_nodes; i++)
            kept[i] = i % 2 == 0;
        for (size_t k = 0; k < ps.n; k++)
            for (uint32_t j = 0; j < ps.len[k]; j++)
                if (ps.pool[ps.start[k] + j] >= ps.n_nodes)
                    die("a path names a node out of range", NULL);
        for (size_t t = 0; t < ps.n_types; t++) {
            for (int masked = 0; masked < 2; masked++) {
                cprof_graph_t g;
                if (cprof_graph_build(&ps, t, masked ? kept : NULL, 1, &g, &err) != 0)
                    die("graph failed on a valid profile", err.msg);
                cprof_sum_t flat = {0, 0}, want = {0, 0};
                for (size_t i = 0; i < ps.n_nodes; i++)
                    cprof_sum_add128(&flat, g.flat[i]);
                for (size_t k = 0; k < ps.n; k++)
                    if (ps.len[k] > 0)  /* the empty path is no node's */
                        cprof_sum_add128(&want, ps.sums[k * ps.n_types + t]);
                if (!masked && (flat.hi != want.hi || flat.lo != want.lo))
                    die("the graph's flat total is not the paths' sum", NULL);
                cprof_graph_release(&g);
            }
        }
        if (grain == CPROF_GRAIN_FUNCTION) {
            /* The tree over every type, frames as nodes: its root holds every path. */
            uint32_t *frames = malloc((ps.n_nodes + 1) * sizeof *frames);
            size_t *types = malloc((ps.n_types + 1) * sizeof *types);
            for (size_t i = 0; i < ps.n_nodes; i++)
                frames[i] = (uint32_t)(i % 5);
            for (size_t t = 0; t < ps.n_types; t++)
                types[t] = t;
            cprof_tree_t tree;
            if (cprof_tree_build(&ps, frames, types, ps.n_types, 0.01, &tree, &err) != 0)
                die("tree failed on a valid profile", err.msg);
            if (tree.n == 0 || tree.frame[0] != CPROF_TREE_ROOT)
                die("the tree has no root", NULL);
            for (size_t i = 1; i < tree.n; i++)
                if (tree.depth[i] == 0 || tree.depth[i] > tree.depth[i - 1] + 1)
                    die("the tree is not in preorder", NULL);
            cprof_tree_free(&tree);
            static const char *const five[5] = {"a", "a-b", "ab", "\xc3\xa9", "a b"};
            static const size_t five_len[5] = {1, 3, 2, 2, 3};
            cprof_frame_names_t names = {five, five_len};
            uint32_t *set_of, *first;
            size_t n_sets;
            if (cprof_label_sets(p, &set_of, &first, &n_sets, &err) != 0)
                die("label sets failed on a valid profile", err.msg);
            for (size_t i = 0; i < p->msg->n_sample; i++)
                if (set_of[i] >= n_sets || first[set_of[i]] > i)
                    die("a sample's label set is out of range", NULL);
            for (size_t t = 0; t < ps.n_types; t++) {
                cprof_tags_t tags, trimmed;
                const uint8_t *mask = t % 2 ? kept : NULL;
                if (cprof_tags_build(p, &ps, t, mask, set_of, 0, &tags, &err) != 0)
                    die("tags failed on a valid profile", err.msg);
                for (size_t k = 0; k < tags.n; k++)
                    if (tags.node[k] >= ps.n_nodes || tags.set[k] >= n_sets)
                        die("a tag row is out of range", NULL);
                /* A cutoff leaves exactly the rows at or above it, in order:
                 * the middle row's cum magnitude splits the rows. */
                int64_t cutoff = 1;
                if (tags.n > 0) {
                    cprof_sum_t mid = tags.cum[tags.n / 2];
                    if (mid.hi < 0)
                        mid = cprof_sum_negate(mid);
                    cutoff = mid.hi != 0 || mid.lo > INT64_MAX ? INT64_MAX
                             : mid.lo == 0 ? 1 : (int64_t)mid.lo;
                }
                if (cprof_tags_build(p, &ps, t, mask, set_of, cutoff, &trimmed, &err) != 0)
                    die("tags with a cutoff failed on a valid profile", err.msg);
                size_t k = 0;
                for (size_t r = 0; r < tags.n; r++) {
                    if (cprof_sum_below(tags.flat[r], cutoff) &&
                        cprof_sum_below(tags.cum[r], cutoff))
                        continue;
                    if (k >= trimmed.n || trimmed.node[k] != tags.node[r] ||
                        trimmed.set[k] != tags.set[r] ||
                        memcmp(&trimmed.flat[k], &tags.flat[r], sizeof tags.flat[r]) != 0 ||
                        memcmp(&trimmed.cum[k], &tags.cum[r], sizeof tags.cum[r]) != 0)
                        die("tags with a cutoff are not the rows at or above it", NULL);
                    k++;
                }
                if (k != trimmed.n)
                    die("tags with a cutoff kept a row below it", NULL);
                cprof_tags_free(&trimmed);
                cprof_tags_free(&tags);
            }
            check_traces(p, &ps, set_of);
            uint32_t *stack_first, *labels_first;
            if (cprof_sample_keys(p, &stack_first, &labels_first, &err) != 0)
                die("sample keys failed on a valid profile", err.msg);
            for (size_t i = 0; i < p->msg->n_sample; i++) {
                const Perftools__Profiles__Sample *s = p->msg->sample[i];
                const Perftools__Profiles__Sample *f = p->msg->sample[stack_first[i]];
                if (stack_first[i] > i || stack_first[stack_first[i]] != stack_first[i] ||
                    f->n_location_id != s->n_location_id ||
                    (s->n_location_id > 0 &&
                     memcmp(f->location_id, s->location_id,
                            s->n_location_id * sizeof *s->location_id) != 0))
                    die("a sample's stack key is not the first sample with its stack", NULL);
                if (labels_first[i] != first[set_of[i]])
                    die("a sample's labels key is not the first sample with its labels", NULL);
            }
            free(stack_first);
            free(labels_first);
            free(set_of);
            free(first);
            for (size_t t = 0; t < ps.n_types; t++) {
                cprof_frame_stacks_t st;
                if (cprof_frame_stacks_build(&ps, frames, t, &st, &err) != 0)
                    die("frame stacks failed on a valid profile", err.msg);
                cprof_sum_t sum = {0, 0}, want = {0, 0};
                for (size_t i = 0; i < st.n; i++)
                    cprof_sum_add128(&sum, st.sum[i]);
                for (size_t k = 0; k < ps.n; k++)
                    if (ps.len[k] > 0)
                        cprof_sum_add128(&want, ps.sums[k * ps.n_types + t]);
                if (sum.hi != want.hi || sum.lo != want.lo)
                    die("the frame stacks' sum is not the paths' sum", NULL);
                check_listing(p, t, want);
                char *text;
                size_t len, lines = 0;
                if (cprof_frame_stacks_folded(&st, &ps, &names, &text, &len, &err) != 0)
                    die("folded failed on a valid profile", err.msg);
                for (size_t i = 0; i < len; i++)
                    lines += text[i] == '\n';
                if (lines != st.n)
                    die("folded text has not one line per stack", NULL);
                free(text);
                cprof_frame_stacks_free(&st);
            }
            free(frames);
            free(types);
        }
        free(kept);
        cprof_paths_free(&ps);
    }
}

/* The filters over a decoded profile, with match bits spread over its
 * functions and mappings in a few patterns: the result must index (every
 * id it names exists, checked by cprof_pprof_index inside), keep at most
 * the source's samples, and be analysable in turn. */
static void filter_all(const cprof_pprof_t *p)
{
    const cprof_msg_t *m = p->msg;
    uint8_t *fbits = malloc(m->n_function + 1), *mbits = malloc(m->n_mapping + 1);
    uint8_t *keep = malloc(m->n_sample + 1);
    for (unsigned round = 0; round < 4; round++) {
        for (size_t i = 0; i < m->n_function; i++)
            fbits[i] = (uint8_t)((i * 37 + round * 11) & 63);
        for (size_t i = 0; i < m->n_mapping; i++)
            mbits[i] = (uint8_t)((i * 13 + round) & 31);
        for (size_t i = 0; i < m->n_sample; i++)
            keep[i] = (uint8_t)((i + round) % 3 != 0);
        cprof_filter_t f = {.active = round == 0 ? 63u : (round * 21u) & 63u,
                            .function_bits = fbits, .mapping_bits = mbits,
                            .sample_keep = round % 2 ? keep : NULL};
        cprof_error_t err = {{0}};
        cprof_pprof_t *out;
        if (cprof_filter_apply(p, &f, &out, &err) != 0)
            die("filter failed on a valid profile", err.msg);
        if (out->msg->n_sample > m->n_sample)
            die("the filter made samples", NULL);
        cprof_paths_t ps;
        if (cprof_paths_build(out, CPROF_GRAIN_FUNCTION, &ps, &err) != 0)
            die("paths failed on a filtered profile", err.msg);
        cprof_paths_free(&ps);
        cprof_pprof_free(out);
    }
    free(fbits);
    free(mbits);
    free(keep);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cprof_error_t err = {{0}};
    cprof_pprof_t *p = NULL;
    interrupt_now = size % 7 == 3;
    interrupt_calls = 0;
    int rc = cprof_pprof_decode(data, size, &input_limits, &p, &err);
    if (rc == CPROF_E_PYTHON) {
        if (!interrupt_now || interrupt_calls == 0 || p != NULL)
            die("decode reported an interruption nobody asked for", NULL);
        return 0;
    }
    if (interrupt_now && interrupt_calls > 0)
        die("decode went on after it was interrupted", err.msg);
    if (rc != 0) {
        if (p != NULL)
            die("decode failed but returned a profile", err.msg);
        check_codes(rc, &err);
        return 0;
    }

    analyse(p);
    filter_all(p);
    uint8_t *gz = NULL, *raw = NULL, *again = NULL;
    size_t gz_n = 0, raw_n = 0, again_n = 0;
    cprof_pprof_free(round_trip(p, 1, &gz, &gz_n));
    cprof_pprof_t *back = round_trip(p, 0, &raw, &raw_n);
    /* Encoding is canonical after one pass: field order, packing and varint
     * lengths are the encoder's own, so the raw bytes must be a fixed point. */
    if (cprof_pprof_encode(back, 0, &again, &again_n, &err) != 0)
        die("re-encoding failed", err.msg);
    if (again_n != raw_n || memcmp(again, raw, raw_n) != 0)
        die("raw encoding is not a fixed point of decode -> encode", NULL);

    free(gz);
    free(raw);
    free(again);
    cprof_pprof_free(back);
    cprof_pprof_free(p);
    return 0;
}
