/* listing: the flat and cum of each source line of some functions, as
 * `go tool pprof -list` sums them (report/listing.py prints them).
 *
 * pprof's list reads the call graph at line granularity with binary names
 * kept: a node is a line's function name, its file, the function's start
 * line, the line number and the location's mapping file; a line without a
 * function is a node of the mapping file alone. The caller says which
 * functions are listed (their names match the expression) and gives each
 * listed function's file an id, after pprof's -trim_path and path cleaning,
 * so that files which print alike are one file. Each sample with a value adds
 * it to the flat of its leaf line (the first line of its first location)
 * and, once however often it recurses, to the cum of every node of its stack;
 * only the listed nodes are kept.
 *
 * Nodes come in the order the samples first reach them (samples in order,
 * each stack leaf first, each location's lines caller first), which decides
 * the range of lines pprof prints when one function's nodes disagree on the
 * start line. Nothing here needs the GIL or is signal-safe.
 */
#ifndef CPROF_ANALYSIS_LISTING_H
#define CPROF_ANALYSIS_LISTING_H

#include <stddef.h>
#include <stdint.h>

#include "analysis/paths.h"

/* fn_file[i] for function i: CPROF_LISTING_SKIP when it is not listed, else
 * its file's id (0: no file). */
#define CPROF_LISTING_SKIP (-1)

typedef struct {
    /* Row r: nodes[r] (name, start_line, line and objfile as canonical string
     * indices and numbers; file: the caller's file id), with the sums of the
     * sample type asked for. Only rows with a flat or cum not 0. */
    cprof_node_t *nodes;
    cprof_sum_t *flat, *cum;
    size_t n;
} cprof_listing_t;

/* The listed nodes of p for sample type t: fn_file has one entry per
 * function; unnamed says whether lines without a function are listed (an
 * empty name matches). Returns 0 or CPROF_E_NOMEM with err filled. */
int cprof_listing_build(const cprof_pprof_t *p, size_t t, const int32_t *fn_file, int unnamed,
                        cprof_listing_t *out, cprof_error_t *err);
void cprof_listing_free(cprof_listing_t *l);

#endif
