/* statusdoc.h: the status lists of the public headers, parsed at run time (issue 12,
 * item 7). Every `BSVI_API bsvi_status bsvi_xxx(` declaration in include/bsvi/ has a doc
 * comment whose @return paragraph (up to @since) names the statuses the call can return,
 * possibly starting "As bsvi_other(), plus ..." (that function's list and the ones named);
 * tests check each status they observe against that list. */
#ifndef BSVI_STATUSDOC_H
#define BSVI_STATUSDOC_H

#include "bsvi/bsvi.h"

/* 1 when the header documents that function fn may return st, 0 when it does not, -1 when
 * no header declares fn (as a bsvi_status function). Parses the headers on first use. */
int sd_documented(const char *fn, bsvi_status st);

/* The function whose list fn's header refers to ("@return As bsvi_other(), plus ..."; the
 * lists of sd_documented() and sd_function() include the referred list), or NULL. */
const char *sd_reference(const char *fn);

/* Number of bsvi_status functions found in the headers (0 if they could not be read). */
size_t sd_num_functions(void);

/* Name and documented statuses of function i < sd_num_functions() (a bit mask over
 * -status, bit 0 = BSVI_OK). */
const char *sd_function(size_t i, unsigned *mask);

/* "BSVI_ERR_..." spelling of a status, NULL for unknown values. */
const char *sd_status_name(bsvi_status st);

/* The function name at the start of a call expression such as "bsvi_svi_run(svi, ...)",
 * copied into buf (size n). */
const char *sd_call_name(const char *call, char *buf, size_t n);

/* In a CMocka test (after testutil.h): fail unless expr returns `expected` and fn's header
 * lists that status. */
#define DOC_STATUS(fn, expr, expected)                                                        \
    do {                                                                                      \
        TU_STATUS(expr, expected);                                                            \
        if (sd_documented(fn, expected) != 1) {                                               \
            fail_msg("%s returns %s, which its header does not list", fn,                     \
                     sd_status_name(expected));                                               \
        }                                                                                     \
    } while (0)

#endif /* BSVI_STATUSDOC_H */
