/* filter: pprof's sample and frame filters (focus, ignore, hide, show,
 * show_from, prune_from, and the tag filters' verdicts) over a decoded
 * profile, giving a new decoded profile.
 *
 * The regular expressions are matched by the caller (Python's re, pprof's
 * search semantics), once per function and mapping: function_bits[i] holds
 * the CPROF_F_* bits of the filters whose expression matches function i's
 * name or file name (for prune_from: its simplified, non-empty name), and
 * mapping_bits[i] those matching mapping i's file name (never prune_from).
 * Here they are applied per location and per sample, in pprof's order:
 * focus, ignore, hide and show; show_from; the tag filters (sample_keep);
 * prune_from. A location that loses lines becomes a new location (a new
 * id); one that keeps them all is shared.
 *
 * The result shares the source's strings, functions, mappings, lines,
 * values and labels: the source must outlive it. Its samples and locations
 * are its own (those its samples use; the functions are those its locations
 * use). Nothing here needs the GIL.
 */
#ifndef CPROF_ANALYSIS_FILTER_H
#define CPROF_ANALYSIS_FILTER_H

#include <stdint.h>

#include "analysis/paths.h"
#include "codec/pprof.h"

enum {
    CPROF_F_FOCUS = 1,
    CPROF_F_IGNORE = 2,
    CPROF_F_HIDE = 4,
    CPROF_F_SHOW = 8,
    CPROF_F_SHOW_FROM = 16,
    CPROF_F_PRUNE_FROM = 32,
};

typedef struct {
    unsigned active;               /* the CPROF_F_* filters given */
    const uint8_t *function_bits;  /* per function, in the message's order */
    const uint8_t *mapping_bits;   /* per mapping */
    const uint8_t *sample_keep;    /* per sample: the tag filters keep it; NULL: all */
} cprof_filter_t;

/* The profile src filtered as f says (*out; release with cprof_pprof_free
 * before src). Returns 0, CPROF_E_NOMEM or CPROF_E_FORMAT (from indexing
 * the result), with err filled. */
int cprof_filter_apply(const cprof_pprof_t *src, const cprof_filter_t *f, cprof_pprof_t **out,
                       cprof_error_t *err);

#endif
