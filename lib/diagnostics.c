/* Importance-weight diagnostics: ESS and the PSIS k-hat of loo 2.5.1 (see diagnostics.h).
 *
 * k-hat follows loo's do_psis_i() and gpdfit() operation for operation (the shift by the
 * largest log weight, the exceedances exp(lw) - exp(cutoff), the grid, the profile
 * likelihood, the log-sum-exp of matrixStats, R's two-pass mean), so that the values agree
 * with loo's to rounding. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define DIAG_MAX_CAPACITY ((uint64_t)1 << 32)
#define DIAG_MIN_TAIL 5        /* loo's enough_tail_samples(): tail_len >= 5 */
#define DIAG_GRID_MIN 30       /* gpdfit's min_grid_pts */
#define DIAG_GRID_PRIOR 3.0    /* gpdfit's prior on the theta grid */
#define DIAG_WIP_PSEUDO 10.0   /* adjust_k_wip(): 10 pseudo-observations ... */
#define DIAG_WIP_TARGET 0.5    /* ... toward k = 0.5 */

struct bsvi_diagnostics {
    size_t capacity;
    size_t tail_max; /* tail length of capacity weights (the tail length grows with n) */
    size_t grid_max; /* grid points of that tail */
    double *heap;    /* tail_max + 1: the largest log weights (one allocation with x..ltheta) */
    double *x;       /* tail_max: exceedances */
    double *y;       /* tail_max: log1p terms of a mean */
    double *theta;   /* grid_max */
    double *ltheta;  /* grid_max */
    double *work;    /* grown on demand: log pi of a trajectory, an estimator's targets */
    size_t cap_work;
    char err[BSVI__ERRLEN];
};

size_t bsvi_diagnostics_tail_length(size_t n) {
    if (n == 0) return 0;
    /* loo: ceiling(pmin(0.2 * S, 3 * sqrt(S / r_eff))) with r_eff = 1, in the same operations */
    const double S = (double)n;
    const double m = ceil(fmin(0.2 * S, 3.0 * sqrt(S / 1.0)));
    return (size_t)m;
}

static size_t grid_points(size_t tail) {
    return DIAG_GRID_MIN + (size_t)floor(sqrt((double)tail));
}

bsvi_status bsvi_diagnostics_create(size_t capacity, bsvi_diagnostics **out) {
    if (!out) return BSVI_ERR_NULL_ARGUMENT;
    *out = NULL;
    if (capacity == 0) return BSVI_ERR_ZERO_SIZE;
    if ((uint64_t)capacity > DIAG_MAX_CAPACITY) return BSVI_ERR_OUT_OF_RANGE;
    bsvi_diagnostics *d = (bsvi_diagnostics *)calloc(1, sizeof *d);
    if (!d) return BSVI_ERR_NO_MEMORY;
    d->capacity = capacity;
    d->tail_max = bsvi_diagnostics_tail_length(capacity);
    d->grid_max = grid_points(d->tail_max);
    const size_t total = (d->tail_max + 1) + 2 * d->tail_max + 2 * d->grid_max;
    d->heap = (double *)malloc(total * sizeof(double));
    if (!d->heap) {
        free(d);
        return BSVI_ERR_NO_MEMORY;
    }
    d->x = d->heap + d->tail_max + 1;
    d->y = d->x + d->tail_max;
    d->theta = d->y + d->tail_max;
    d->ltheta = d->theta + d->grid_max;
    *out = d;
    return BSVI_OK;
}

void bsvi_diagnostics_destroy(bsvi_diagnostics *d) {
    if (!d) return;
    free(d->heap);
    free(d->work);
    free(d);
}

size_t bsvi_diagnostics_capacity(const bsvi_diagnostics *d) { return d ? d->capacity : 0; }

const char *bsvi_diagnostics_last_error(const bsvi_diagnostics *d) {
    return d ? d->err : "NULL diagnostics handle";
}

/* ---- one data point ---------------------------------------------------------------- */

/* Weight i's log value: lw[i] (+ lp[i] when lp is not NULL, log pi of a buffer slot). */
static inline double value(const double *lw, const double *lp, size_t i) {
    return lp ? lw[i] + lp[i] : lw[i];
}

/* R's mean.default of doubles: the sum over n, then one correction pass. */
static double r_mean(const double *x, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; ++i) s += x[i];
    s /= (double)n;
    if (isfinite(s)) {
        double t = 0.0;
        for (size_t i = 0; i < n; ++i) t += x[i] - s;
        s += t / (double)n;
    }
    return s;
}

/* mean(log1p(c * x)) over n exceedances, as r_mean() (y: n scratch for the terms). */
static double mean_log1p(double c, const double *x, size_t n, double *y) {
    for (size_t i = 0; i < n; ++i) y[i] = log1p(c * x[i]);
    return r_mean(y, n);
}

/* loo's gpdfit(x, wip = TRUE, min_grid_pts = 30, sort_x = FALSE) for N ascending exceedances
 * (Zhang and Stephens 2009, section 4), returning k (NaN is returned as +INFINITY, as loo). */
static double gpd_khat(bsvi_diagnostics *d, const double *x, size_t N) {
    const size_t G = grid_points(N);
    const double Nd = (double)N;
    const double xstar = x[(size_t)floor(Nd / 4.0 + 0.5) - 1]; /* first quartile */
    const double inv_max = 1.0 / x[N - 1];
    double *theta = d->theta, *l = d->ltheta;
    for (size_t j = 1; j <= G; ++j)
        theta[j - 1] = inv_max + (1.0 - sqrt((double)G / ((double)j - 0.5))) / DIAG_GRID_PRIOR /
                                     xstar;
    /* profile log-likelihood l_j = N * lx(theta_j, x), lx(a, x) = log(a/k) - k - 1 with
     * a = -theta and k = mean(log1p(a x)); then matrixStats::logSumExp(l) */
    double lmax = -INFINITY;
    size_t imax = 0;
    for (size_t j = 0; j < G; ++j) {
        const double a = -theta[j];
        const double k = mean_log1p(a, x, N, d->y);
        l[j] = Nd * (log(a / k) - k - 1.0);
        if (isnan(l[j])) return INFINITY; /* logSumExp gives NA, k ends NaN: loo's Inf */
        if (j == 0 || l[j] > lmax) {
            lmax = l[j];
            imax = j;
        }
    }
    double lse;
    if (G == 1 || lmax == INFINITY || lmax == -INFINITY) {
        lse = lmax;
    } else {
        double s = 0.0;
        for (size_t j = 0; j < G; ++j)
            if (j != imax) s += exp(l[j] - lmax);
        lse = log1p(s) + lmax;
    }
    double theta_hat = 0.0;
    for (size_t j = 0; j < G; ++j) theta_hat += theta[j] * exp(l[j] - lse);
    double k = mean_log1p(-theta_hat, x, N, d->y);
    /* adjust_k_wip(k, n = N): k * n / (n + a) + a * 0.5 / (n + a), a = 10 */
    const double npa = Nd + DIAG_WIP_PSEUDO;
    k = k * Nd / npa + DIAG_WIP_PSEUDO * DIAG_WIP_TARGET / npa;
    return isnan(k) ? INFINITY : k;
}

/* Min-heap of the h largest values seen: restore the heap property below slot i. */
static void sift_down(double *a, size_t h, size_t i) {
    const double v = a[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h) break;
        if (c + 1 < h && a[c + 1] < a[c]) ++c;
        if (!(a[c] < v)) break;
        a[i] = a[c];
        i = c;
    }
    a[i] = v;
}

static void sift_up(double *a, size_t i) {
    const double v = a[i];
    while (i > 0) {
        const size_t p = (i - 1) / 2;
        if (!(v < a[p])) break;
        a[i] = a[p];
        i = p;
    }
    a[i] = v;
}

size_t bsvi__diag_heap_size(size_t n) {
    const size_t M = bsvi_diagnostics_tail_length(n);
    return M < DIAG_MIN_TAIL ? 0 : M + 1; /* M < n for n >= 2, so M + 1 <= n */
}

size_t bsvi__diag_heap_offer(double *a, size_t h, size_t H, double v) {
    if (h < H) {
        a[h] = v;
        sift_up(a, h);
        return h + 1;
    }
    if (v > a[0]) {
        a[0] = v;
        sift_down(a, H, 0);
    }
    return H;
}

/* loo's do_psis_i() pareto_k from the tail: the M+1 largest shifted log weights as a heap. */
double bsvi__diag_tail_khat(bsvi_diagnostics *d, double *a, size_t M) {
    const size_t H = M + 1;
    /* Heap sort: a[] descending, a[0] the largest (0), a[M] the cutoff. */
    for (size_t e = H - 1; e > 0; --e) {
        const double t = a[0];
        a[0] = a[e];
        a[e] = t;
        sift_down(a, e, 0);
    }
    if (a[M - 1] == -INFINITY) return INFINITY; /* a zero weight in the tail */
    if (fabs(a[0] - a[M - 1]) < DBL_EPSILON / 100.0) return INFINITY; /* tail all equal */
    const double ec = exp(a[M]);
    double *x = d->x;
    for (size_t j = 0; j < M; ++j) x[j] = exp(a[M - 1 - j]) - ec; /* ascending */
    return gpd_khat(d, x, M);
}

/* loo's do_psis_i() pareto_k for n weights with largest log value mx (finite): the heap of
 * the M+1 largest shifted log weights lw - max, then the tail's fit. */
static double psis_khat(bsvi_diagnostics *d, size_t n, const double *lw, const double *lp,
                        double mx) {
    const size_t H = bsvi__diag_heap_size(n);
    if (H == 0) return INFINITY;
    double *a = d->heap;
    size_t h = 0;
    for (size_t i = 0; i < n; ++i) h = bsvi__diag_heap_offer(a, h, H, value(lw, lp, i) - mx);
    return bsvi__diag_tail_khat(d, a, H - 1);
}

/* ESS and k-hat of one data point's n weights (either output may be NULL). */
static void point(bsvi_diagnostics *d, size_t n, const double *lw, const double *lp,
                  double *ess, double *khat) {
    double mx = -INFINITY;
    for (size_t i = 0; i < n; ++i) {
        const double v = value(lw, lp, i);
        if (v > mx) mx = v;
    }
    if (mx == -INFINITY) { /* every weight zero */
        if (ess) *ess = 0.0;
        if (khat) *khat = NAN;
        return;
    }
    if (ess) {
        /* (sum w)^2 / sum w^2 = exp(2 LSE(lw) - LSE(2 lw)), both sums shifted by max */
        double s1 = 0.0, s2 = 0.0;
        for (size_t i = 0; i < n; ++i) {
            const double e = exp(value(lw, lp, i) - mx);
            s1 += e;
            s2 += e * e;
        }
        *ess = s1 * s1 / s2;
    }
    if (khat) *khat = psis_khat(d, n, lw, lp, mx);
}

/* ---- entry points ------------------------------------------------------------------- */

static bsvi_status check_n(bsvi_diagnostics *d, size_t n, const char *fn, const char *what) {
    if (n > d->capacity)
        return bsvi__fail(d->err, BSVI_ERR_SIZE_MISMATCH,
                          "%s: %zu %s per data point but the handle's capacity is %zu", fn, n,
                          what, d->capacity);
    return BSVI_OK;
}

bsvi_status bsvi_diagnostics_compute(bsvi_diagnostics *d, size_t batch, size_t n,
                                     const double *log_w, double *ess, double *khat) {
    static const char fn[] = "bsvi_diagnostics_compute";
    if (!d) return BSVI_ERR_NULL_ARGUMENT;
    if (!log_w) return bsvi__fail(d->err, BSVI_ERR_NULL_ARGUMENT, "%s: log_w is NULL", fn);
    if (batch == 0 || n == 0)
        return bsvi__fail(d->err, BSVI_ERR_ZERO_SIZE, "%s: batch = %zu, n = %zu", fn, batch, n);
    if (batch > BSVI_MAX_BATCH)
        return bsvi__fail(d->err, BSVI_ERR_OUT_OF_RANGE, "%s: batch = %zu exceeds %zu", fn,
                          batch, (size_t)BSVI_MAX_BATCH);
    bsvi_status st = check_n(d, n, fn, "weights");
    if (st != BSVI_OK) return st;
    size_t total;
    if (bsvi__mul_overflow(batch, n, &total))
        return bsvi__fail(d->err, BSVI_ERR_OUT_OF_RANGE, "%s: batch * n overflows", fn);
    for (size_t i = 0; i < total; ++i)
        if (isnan(log_w[i]) || log_w[i] == INFINITY)
            return bsvi__fail(d->err, BSVI_ERR_BAD_VALUE,
                              "%s: log_w[%zu] = %g (data point %zu) is not a log weight "
                              "(NaN and +INFINITY are refused)",
                              fn, i, log_w[i], i / n);
    for (size_t b = 0; b < batch; ++b)
        point(d, n, log_w + b * n, NULL, ess ? ess + b : NULL, khat ? khat + b : NULL);
    return BSVI_OK;
}

bsvi_status bsvi_diagnostics_trajectory(bsvi_diagnostics *d, const bsvi_trajectory *t,
                                        const bsvi_buffer_weights *pi, double *ess,
                                        double *khat) {
    static const char fn[] = "bsvi_diagnostics_trajectory";
    if (!d) return BSVI_ERR_NULL_ARGUMENT;
    if (!t) return bsvi__fail(d->err, BSVI_ERR_NULL_ARGUMENT, "%s: t is NULL", fn);
    if (!t->data.valid)
        return bsvi__fail(d->err, BSVI_ERR_BAD_STATE,
                          "%s: the trajectory is empty (no successful bsvi_svi_run yet)", fn);
    const size_t K = t->data.k + 1, B = t->data.B;
    if (pi && pi->n != K)
        return bsvi__fail(d->err, BSVI_ERR_SIZE_MISMATCH, "%s: pi has %zu slots, the buffer %zu",
                          fn, pi->n, K);
    bsvi_status st = check_n(d, K, fn, "buffer slots");
    if (st != BSVI_OK) return st;
    const double *lp = NULL;
    if (pi) {
        if (bsvi__grow(&d->work, &d->cap_work, K))
            return bsvi__fail(d->err, BSVI_ERR_NO_MEMORY, "%s: out of memory (%zu doubles)", fn,
                              K);
        bsvi__log_pi(pi, K, d->work);
        lp = d->work;
    }
    for (size_t b = 0; b < B; ++b)
        point(d, K, t->data.logw + b * K, lp, ess ? ess + b : NULL, khat ? khat + b : NULL);
    return BSVI_OK;
}

bsvi_status bsvi_diagnostics_estimator(bsvi_diagnostics *d, const bsvi_estimator *est,
                                       size_t batch, double *ess, double *khat) {
    static const char fn[] = "bsvi_diagnostics_estimator";
    if (!d) return BSVI_ERR_NULL_ARGUMENT;
    if (!est) return bsvi__fail(d->err, BSVI_ERR_NULL_ARGUMENT, "%s: est is NULL", fn);
    const size_t B = bsvi_estimator_batch(est), nt = bsvi_estimator_num_targets(est);
    bsvi_bound kind = BSVI_BOUND_ELBO;
    if (B == 0 || bsvi_estimator_result_kind(est, &kind) != BSVI_OK)
        return bsvi__fail(d->err, BSVI_ERR_BAD_STATE,
                          "%s: the estimator has no result yet (no successful compute)", fn);
    if (kind == BSVI_BOUND_SVI || kind == BSVI_BOUND_BSVI_SIR)
        return bsvi__fail(d->err, BSVI_ERR_BAD_STATE,
                          "%s: the last result is %s, whose targets are not one per importance "
                          "sample (use bsvi_diagnostics_trajectory on its trajectory)",
                          fn, bsvi_bound_name(kind));
    if (batch != B)
        return bsvi__fail(d->err, BSVI_ERR_SIZE_MISMATCH,
                          "%s: batch = %zu but the result has %zu data points", fn, batch, B);
    const size_t T = nt / B;
    bsvi_status st = check_n(d, T, fn, "targets");
    if (st != BSVI_OK) return st;
    if (bsvi__grow(&d->work, &d->cap_work, nt))
        return bsvi__fail(d->err, BSVI_ERR_NO_MEMORY, "%s: out of memory (%zu doubles)", fn, nt);
    double *lw = d->work;
    if (kind == BSVI_BOUND_ELBO || kind == BSVI_BOUND_IWAE) {
        st = bsvi_estimator_get_target_log_weights(est, nt, lw);
    } else { /* BSVI, BSVI-DS, GIWAE: log r = log(pi_i w_i) - bound */
        st = bsvi_estimator_get_targets(est, nt, NULL, NULL, NULL, lw);
        if (st == BSVI_OK)
            for (size_t i = 0; i < nt; ++i) lw[i] = lw[i] > 0.0 ? log(lw[i]) : -INFINITY;
    }
    if (st != BSVI_OK) /* not reached: the result was checked above */
        return bsvi__fail(d->err, st, "%s: reading the estimator's targets failed: %s", fn,
                          bsvi_estimator_last_error(est));
    for (size_t b = 0; b < B; ++b)
        point(d, T, lw + b * T, NULL, ess ? ess + b : NULL, khat ? khat + b : NULL);
    return BSVI_OK;
}
