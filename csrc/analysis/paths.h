/* paths: the analysis engine's first stage, a decoded profile reduced to its
 * distinct node stacks.
 *
 * A node is what pprof's NodeInfo names at one granularity (no address):
 *   function  a function name; for a line without a named function, the
 *             mapping's file and the function's start line (0 without one);
 *   file      the function's file name;
 *   line      the function's name, its file and the line number.
 * Each location becomes its chain of nodes, caller first (an inlined line is
 * a node of its own, marked inlined into the one before it); a sample's path
 * is its locations' chains from the root to the leaf. Samples with equal paths
 * and the same pprof::base mark are summed into one path, per sample type,
 * exactly (128-bit sums), with the sum of absolute values beside (a -diff_base
 * base is drawn by magnitude). Samples whose values are all 0 leave no path; samples
 * without locations make the empty path (the graph skips it, the tree's root
 * holds it). Every later stage (graph.h, tree.h) reads paths only:
 * its cost follows the distinct stacks, not the samples.
 *
 * Strings are compared by content (the table may repeat one). Nothing here
 * needs the GIL or is signal-safe; the bindings release the GIL around it.
 */
#ifndef CPROF_ANALYSIS_PATHS_H
#define CPROF_ANALYSIS_PATHS_H

#include <stddef.h>
#include <stdint.h>

#include "codec/pprof.h"

typedef enum {
    CPROF_GRAIN_FUNCTION = 0,
    CPROF_GRAIN_FILE = 1,
    CPROF_GRAIN_LINE = 2,
} cprof_grain_t;

#define CPROF_GRAINS 3

/* A node's identity; string fields are canonical string-table indices (0 is ""). */
typedef struct {
    int64_t name, file, start_line, line, objfile;
} cprof_node_t;

/* A node's hash for an intern table (cprof_itab_t), keyed per process. */
uint64_t cprof_node_hash(const cprof_node_t *k);

typedef struct {
    cprof_node_t *nodes;
    size_t n_nodes;
    /* per node: the file and start line of the first function that made it
     * (string index 0 and 0 without one), for what draws a frame's source */
    int64_t *node_file, *node_start;
    /* Path k is pool[start[k] .. start[k] + len[k]), node ids root first;
     * inl[j]: pool entry j was inlined into entry j - 1; lines[j]: its source
     * line, 0 where the samples summed into the path disagree. */
    uint32_t *pool;
    uint8_t *inl;
    int64_t *lines;
    size_t *start;
    uint32_t *len;
    uint8_t *base;      /* per path: its samples carry pprof::base=true */
    size_t n, n_types;
    cprof_sum_t *sums;  /* [k * n_types + t]: the values' sum */
    cprof_sum_t *abs;   /* [k * n_types + t]: the sum of their magnitudes */
    uint8_t *nonzero;   /* [k * n_types + t]: some sample's value is not 0 */
    int inlined;        /* some location has more than one line */
    /* Location i (in the message's order) as its nodes, caller first:
     * loc_nodes[loc_start[i] .. + loc_len[i]). */
    uint32_t *loc_nodes;
    size_t *loc_start;
    uint32_t *loc_len;
} cprof_paths_t;

/* The paths of p at grain, in the order of their first sample. Returns 0,
 * CPROF_E_NOMEM or CPROF_E_FORMAT (a stack deeper than 2^32 nodes) with err
 * filled. */
int cprof_paths_build(const cprof_pprof_t *p, cprof_grain_t grain, cprof_paths_t *out,
                      cprof_error_t *err);
void cprof_paths_free(cprof_paths_t *ps);

/* Canonical string indices of a message's table: canon[i] is the first index
 * holding string i's bytes. *out is malloc'd. Returns 0 or -1 (no memory). */
int cprof_canonical_strings(const cprof_msg_t *m, int64_t **out);

/* The canonical index of the string s in m's table, or -1 without it. */
int64_t cprof_find_string(const cprof_msg_t *m, const int64_t *canon, const char *s);

/* Samples a and b's labels, in their order, by content (keys, strings and
 * units by canonical index, then numbers): negative, 0 (equal) or positive,
 * fewer labels first. */
int cprof_labels_cmp(const int64_t *canon, const Perftools__Profiles__Sample *a,
                     const Perftools__Profiles__Sample *b);

/* Whether sample s carries pprof::base=true (-diff_base's mark), given the
 * canonical indices of "pprof::base" and "true" (-1 when the table lacks one). */
int cprof_is_base_sample(const Perftools__Profiles__Sample *s, const int64_t *canon,
                         int64_t base_key, int64_t true_str);

/* Open addressing from a 64-bit key hash to a 32-bit index; the caller
 * compares candidates (cprof_itab_next) and inserts (cprof_itab_put). Kept
 * at most half full, so probes stay short; hashes are keyed per process. */
typedef struct {
    uint64_t *hashes;  /* 0 marks an empty slot */
    uint32_t *values;
    size_t cap, n;
} cprof_itab_t;

int cprof_itab_init(cprof_itab_t *t, size_t expected);
void cprof_itab_free(cprof_itab_t *t);
uint64_t cprof_itab_hash(uint64_t h);
/* The first slot to look at for hash h, then the next one. */
size_t cprof_itab_first(const cprof_itab_t *t, uint64_t h);
static inline size_t cprof_itab_next(const cprof_itab_t *t, size_t slot)
{
    return (slot + 1) & (t->cap - 1);
}
/* Store value for h in the empty slot found by probing; grows the table.
 * Returns 0 or -1 (no memory). */
int cprof_itab_put(cprof_itab_t *t, size_t slot, uint64_t h, uint32_t value);

/* Make room for need elements of size elem in *p, whose capacity is *cap
 * (doubling). Returns 0 or -1 (no memory; *p unchanged). */
int cprof_reserve(void **p, size_t *cap, size_t need, size_t elem);

/* A stable bottom-up merge sort of order[0..n) by cmp (negative: a before b),
 * with tmp holding n more. */
typedef int (*cprof_order_fn)(const void *ctx, uint32_t a, uint32_t b);
void cprof_sort_order(uint32_t *order, uint32_t *tmp, size_t n, cprof_order_fn cmp,
                      const void *ctx);

/* Paths a and b of ps by their frames (frames[j]: pool entry j's frame),
 * lexicographically, a prefix first. ctx is a cprof_frame_seqs_t. */
typedef struct {
    const uint32_t *frames;
    const size_t *start;
    const uint32_t *len;
} cprof_frame_seqs_t;
int cprof_frame_seq_compare(const void *ctx, uint32_t a, uint32_t b);

#endif
