/* Row kernels shared by the SVI engine (svi.c) and the evaluator (evaluate.c).
 * Each source includes this file and gets its own copy: BSVI__CLONES (the AVX2 and
 * baseline builds chosen at load time) goes on static functions only (internal.h).
 * Library-internal; not installed. */
#ifndef BSVI_ROWS_H
#define BSVI_ROWS_H

#include <stddef.h>

#include "internal.h"

/* z = mu + sigma * eps for n rows sharing one mu and sigma. */
BSVI__CLONES static void z_rows(size_t n, size_t d, const double *mu, const double *sg,
                                const double *e, double *z) {
    for (size_t r = 0; r < n; ++r)
        for (size_t j = 0; j < d; ++j) z[r * d + j] = mu[j] + sg[j] * e[r * d + j];
}

/* log q of rows: -d/2 log 2 pi - sum_j (s_j + e_j^2 / 2), summed in order j = 0..d-1 for
 * each row. Row r uses e + r * estride and s + r * sstride; four rows at a time, so that
 * their sequential sums overlap. */
BSVI__CLONES static void log_q_rows(size_t n, size_t d, double half_log2pi_d, const double *s,
                                    size_t sstride, const double *e, size_t estride,
                                    double *lq) {
    size_t r = 0;
    for (; r + 4 <= n; r += 4) {
        const double *s0 = s + r * sstride, *s1 = s0 + sstride, *s2 = s1 + sstride,
                     *s3 = s2 + sstride;
        const double *e0 = e + r * estride, *e1 = e0 + estride, *e2 = e1 + estride,
                     *e3 = e2 + estride;
        double l0 = -half_log2pi_d, l1 = l0, l2 = l0, l3 = l0;
        for (size_t j = 0; j < d; ++j) {
            l0 -= s0[j] + 0.5 * e0[j] * e0[j];
            l1 -= s1[j] + 0.5 * e1[j] * e1[j];
            l2 -= s2[j] + 0.5 * e2[j] * e2[j];
            l3 -= s3[j] + 0.5 * e3[j] * e3[j];
        }
        lq[r] = l0, lq[r + 1] = l1, lq[r + 2] = l2, lq[r + 3] = l3;
    }
    for (; r < n; ++r) {
        const double *sr = s + r * sstride, *er = e + r * estride;
        double l0 = -half_log2pi_d;
        for (size_t j = 0; j < d; ++j) l0 -= sr[j] + 0.5 * er[j] * er[j];
        lq[r] = l0;
    }
}

#endif /* BSVI_ROWS_H */
