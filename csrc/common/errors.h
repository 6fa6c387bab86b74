/* errors: the codes and message buffer every C layer of cprof reports with.
 * Only the bindings (module/) turn them into Python exceptions. */
#ifndef CPROF_ERRORS_H
#define CPROF_ERRORS_H

#include <stdarg.h>
#include <stdio.h>

typedef enum {
    CPROF_OK = 0,
    CPROF_E_NOMEM = -1,   /* MemoryError */
    CPROF_E_FORMAT = -2,  /* malformed profile: cprof.ProfileError */
    CPROF_E_LIMIT = -3,   /* a configured limit refused the input: ProfileError */
    CPROF_E_ZLIB = -4,    /* zlib failed while compressing: RuntimeError */
    CPROF_E_BUSY = -5,    /* a profile of that kind is already running: RuntimeError */
    CPROF_E_SIGNAL = -6,  /* SIGPROF belongs to someone else: RuntimeError */
    CPROF_E_OS = -7,      /* a system call failed: OSError-like RuntimeError */
    CPROF_E_PYTHON = -8,  /* a Python exception is already set */
    CPROF_E_UNSUPPORTED = -9,  /* something cprof hooks into is not as it knows it */
} cprof_code_t;

typedef struct {
    char msg[512];
} cprof_error_t;

/* Fill err (if not NULL) with a printf-style message; returns code, so that
 * `return cprof_fail(err, CPROF_E_FORMAT, "...")` reads as one step. */
static inline int cprof_fail(cprof_error_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline int cprof_fail(cprof_error_t *err, int code, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

#endif
