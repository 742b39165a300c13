/* Status strings, version queries and small shared utilities. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

const char *bsvi_status_string(bsvi_status status) {
    switch (status) {
    case BSVI_OK: return "success";
    case BSVI_ERR_NULL_ARGUMENT: return "a required pointer argument was NULL";
    case BSVI_ERR_ZERO_SIZE: return "a dimension, batch size or count was zero";
    case BSVI_ERR_OUT_OF_RANGE: return "a count exceeds its limit";
    case BSVI_ERR_BAD_VALUE: return "a parameter is outside its domain";
    case BSVI_ERR_SIZE_MISMATCH: return "sizes of handles or buffers do not agree";
    case BSVI_ERR_CALLBACK_FAILED: return "a host callback reported failure";
    case BSVI_ERR_CALLBACK_NAN: return "a host callback produced NaN or a non-finite value";
    case BSVI_ERR_NO_MEMORY: return "out of memory";
    case BSVI_ERR_BAD_STATE: return "call not valid in the handle's current state";
    case BSVI_ERR_NUMERIC: return "a computation produced a non-finite result";
    case BSVI_ERR_CANCELLED: return "cancelled by the host's progress callback";
    case BSVI_ERR_REENTRANT:
        return "the handle is in use by a running call (re-entered from a callback)";
    }
    return "unknown status";
}

#define BSVI__STR2(x) #x
#define BSVI__STR(x) BSVI__STR2(x)

int bsvi_version_number(void) { return BSVI_VERSION_NUMBER; }

const char *bsvi_version_string(void) {
    return BSVI__STR(BSVI_VERSION_MAJOR) "." BSVI__STR(BSVI_VERSION_MINOR) "." BSVI__STR(
        BSVI_VERSION_PATCH);
}

bsvi_status bsvi__fail(char *buf, bsvi_status st, const char *fmt, ...) {
    if (buf) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, BSVI__ERRLEN, fmt, ap);
        va_end(ap);
    }
    return st;
}

bsvi_status bsvi__fail_shared(char *buf, atomic_int *lock, bsvi_status st, const char *fmt,
                              ...) {
    char tmp[BSVI__ERRLEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    int expected = 0;
    if (atomic_compare_exchange_strong(lock, &expected, 1)) {
        memcpy(buf, tmp, strlen(tmp) + 1);
        atomic_store(lock, 0);
    }
    return st;
}

int bsvi__mul_overflow(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return 1;
    *out = a * b;
    return 0;
}

int bsvi__grow(double **p, size_t *cap, size_t n) {
    if (n <= *cap && *p) return 0;
    if (n > SIZE_MAX / sizeof(double)) return 1;
    double *q = (double *)malloc((n ? n : 1) * sizeof(double));
    if (!q) return 1;
    free(*p);
    *p = q;
    *cap = n;
    return 0;
}

int bsvi__grow_size(size_t **p, size_t *cap, size_t n) {
    if (n <= *cap && *p) return 0;
    if (n > SIZE_MAX / sizeof(size_t)) return 1;
    size_t *q = (size_t *)malloc((n ? n : 1) * sizeof(size_t));
    if (!q) return 1;
    free(*p);
    *p = q;
    *cap = n;
    return 0;
}

void bsvi__stats_add(bsvi_stats *into, const bsvi_stats *a) {
    into->calls += a->calls;
    into->data_points += a->data_points;
    into->likelihood_calls += a->likelihood_calls;
    into->likelihood_rows += a->likelihood_rows;
    into->prior_calls += a->prior_calls;
    into->prior_rows += a->prior_rows;
    into->svi_steps += a->svi_steps;
    into->zero_points += a->zero_points;
}
