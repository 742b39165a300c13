/* Buffer weights pi: logits, accumulated gradient, Adam. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void bsvi__log_pi(const bsvi_buffer_weights *w, size_t n, double *out) {
    if (!w) {
        const double u = -log((double)n);
        for (size_t i = 0; i < n; ++i) out[i] = u;
        return;
    }
    /* (a - max) - log sum exp(a - max): with huge logits, max + log(sum) would round back to
     * max and every log pi to 0 (pi would not sum to 1). The stepped logits have max 0, where
     * this is a - log(sum) as before. */
    double mx = -INFINITY;
    for (size_t i = 0; i < n; ++i)
        if (w->a[i] > mx) mx = w->a[i];
    double s = 0.0;
    for (size_t i = 0; i < n; ++i) s += exp(w->a[i] - mx);
    const double l = log(s);
    for (size_t i = 0; i < n; ++i) out[i] = (w->a[i] - mx) - l;
}

double bsvi__buffer_softmax(const double *logpi, const double *lw, size_t n, double *r) {
    double mx = -INFINITY;
    for (size_t i = 0; i < n; ++i) {
        r[i] = logpi[i] + lw[i];
        if (r[i] > mx) mx = r[i];
    }
    if (mx == -INFINITY) return -INFINITY;
    double s = 0.0;
    for (size_t i = 0; i < n; ++i) {
        r[i] = exp(r[i] - mx);
        s += r[i];
    }
    for (size_t i = 0; i < n; ++i) r[i] /= s;
    return mx + log(s);
}

int bsvi__check_distribution(const double *pi, size_t n, size_t *bad, double *sum) {
    double s = 0.0;
    for (size_t i = 0; i < n; ++i) {
        if (!(pi[i] >= 0.0) || !isfinite(pi[i])) {
            *bad = i;
            return 1;
        }
        s += pi[i];
    }
    *sum = s;
    if (!(fabs(s - 1.0) <= 1e-9)) {
        *bad = n;
        return 1;
    }
    return 0;
}

bsvi_status bsvi_buffer_weights_create(size_t n, bsvi_buffer_weights **out) {
    if (!out) return BSVI_ERR_NULL_ARGUMENT;
    *out = NULL;
    if (n == 0) return BSVI_ERR_ZERO_SIZE;
    if (n > BSVI_MAX_STEPS + 1) return BSVI_ERR_OUT_OF_RANGE;
    bsvi_buffer_weights *w = (bsvi_buffer_weights *)calloc(1, sizeof *w);
    if (!w) return BSVI_ERR_NO_MEMORY;
    /* logits, m, v, acc; scratch: logpi, r, the next m and v, one row of log weights */
    w->a = (double *)calloc(9 * n, sizeof(double));
    if (!w->a) {
        free(w);
        return BSVI_ERR_NO_MEMORY;
    }
    w->m = w->a + n;
    w->v = w->a + 2 * n;
    w->acc = w->a + 3 * n;
    w->logpi = w->a + 4 * n;
    w->r = w->a + 5 * n;
    w->n = n;
    w->lr = 1e-2;
    w->b1 = 0.9;
    w->b2 = 0.999;
    *out = w;
    return BSVI_OK;
}

void bsvi_buffer_weights_destroy(bsvi_buffer_weights *w) {
    if (!w) return;
    free(w->a);
    free(w);
}

size_t bsvi_buffer_weights_size(const bsvi_buffer_weights *w) { return w ? w->n : 0; }

const char *bsvi_buffer_weights_last_error(const bsvi_buffer_weights *w) {
    return w ? w->err : "NULL buffer-weights handle";
}

static bsvi_status size_check(const bsvi_buffer_weights *w, size_t n, const char *fn) {
    if (n != w->n)
        return bsvi__fail((char *)w->err, BSVI_ERR_SIZE_MISMATCH,
                          "%s: n = %zu but the weights have %zu slots", fn, n, w->n);
    return BSVI_OK;
}

static void reset_optimiser(bsvi_buffer_weights *w) {
    memset(w->m, 0, w->n * sizeof(double));
    memset(w->v, 0, w->n * sizeof(double));
    memset(w->acc, 0, w->n * sizeof(double));
    w->count = 0;
    w->t = 0;
}

bsvi_status bsvi_buffer_weights_set_probs(bsvi_buffer_weights *w, const double *pi, size_t n) {
    static const char fn[] = "bsvi_buffer_weights_set_probs";
    if (!w) return BSVI_ERR_NULL_ARGUMENT;
    if (!pi) return bsvi__fail(w->err, BSVI_ERR_NULL_ARGUMENT, "%s: pi is NULL", fn);
    bsvi_status st = size_check(w, n, fn);
    if (st != BSVI_OK) return st;
    size_t bad;
    double sum = 0.0;
    if (bsvi__check_distribution(pi, n, &bad, &sum)) {
        if (bad < n)
            return bsvi__fail(w->err, BSVI_ERR_BAD_VALUE, "%s: pi[%zu] = %g is not a probability",
                              fn, bad, pi[bad]);
        return bsvi__fail(w->err, BSVI_ERR_BAD_VALUE, "%s: pi sums to %.17g, not 1", fn, sum);
    }
    for (size_t i = 0; i < n; ++i) w->a[i] = pi[i] > 0.0 ? log(pi[i]) : -INFINITY;
    reset_optimiser(w);
    return BSVI_OK;
}

bsvi_status bsvi_buffer_weights_get_probs(const bsvi_buffer_weights *w, double *pi, size_t n) {
    static const char fn[] = "bsvi_buffer_weights_get_probs";
    if (!w) return BSVI_ERR_NULL_ARGUMENT;
    if (!pi) return bsvi__fail((char *)w->err, BSVI_ERR_NULL_ARGUMENT, "%s: pi is NULL", fn);
    bsvi_status st = size_check(w, n, fn);
    if (st != BSVI_OK) return st;
    bsvi__log_pi(w, n, pi); /* log pi into the output, then exp in place: writes nothing of w */
    for (size_t i = 0; i < n; ++i) pi[i] = exp(pi[i]);
    return BSVI_OK;
}

bsvi_status bsvi_buffer_weights_set_logits(bsvi_buffer_weights *w, const double *logits,
                                           size_t n) {
    static const char fn[] = "bsvi_buffer_weights_set_logits";
    if (!w) return BSVI_ERR_NULL_ARGUMENT;
    if (!logits) return bsvi__fail(w->err, BSVI_ERR_NULL_ARGUMENT, "%s: logits is NULL", fn);
    bsvi_status st = size_check(w, n, fn);
    if (st != BSVI_OK) return st;
    int finite = 0;
    for (size_t i = 0; i < n; ++i) {
        if (isnan(logits[i]) || logits[i] == INFINITY)
            return bsvi__fail(w->err, BSVI_ERR_BAD_VALUE,
                              "%s: logit %zu is %g (NaN and +infinity are refused)", fn, i,
                              logits[i]);
        finite |= isfinite(logits[i]) != 0;
    }
    if (!finite)
        return bsvi__fail(w->err, BSVI_ERR_BAD_VALUE,
                          "%s: every logit is -infinity (pi would not be a distribution)", fn);
    memcpy(w->a, logits, n * sizeof(double));
    return BSVI_OK;
}

bsvi_status bsvi_buffer_weights_get_logits(const bsvi_buffer_weights *w, double *logits,
                                           size_t n) {
    static const char fn[] = "bsvi_buffer_weights_get_logits";
    if (!w) return BSVI_ERR_NULL_ARGUMENT;
    if (!logits)
        return bsvi__fail((char *)w->err, BSVI_ERR_NULL_ARGUMENT, "%s: logits is NULL", fn);
    bsvi_status st = size_check(w, n, fn);
    if (st != BSVI_OK) return st;
    memcpy(logits, w->a, n * sizeof(double));
    return BSVI_OK;
}

bsvi_status bsvi_buffer_weights_mean_position(const bsvi_buffer_weights *w, double *out) {
    if (!w) return BSVI_ERR_NULL_ARGUMENT;
    if (!out)
        return bsvi__fail((char *)w->err, BSVI_ERR_NULL_ARGUMENT,
                          "bsvi_buffer_weights_mean_position: out is NULL");
    const size_t n = w->n;
    if (n == 1) {
        *out = 0.0;
        return BSVI_OK;
    }
    double mx = -INFINITY, s = 0.0, acc = 0.0;
    for (size_t i = 0; i < n; ++i)
        if (w->a[i] > mx) mx = w->a[i];
    for (size_t i = 0; i < n; ++i) s += exp(w->a[i] - mx);
    const double l = log(s);
    for (size_t i = 0; i < n; ++i) acc += exp((w->a[i] - mx) - l) * (double)i / (double)(n - 1);
    *out = acc < 1.0 ? acc : 1.0; /* rounding can give 1 + 2^-52 */
    return BSVI_OK;
}

bsvi_status bsvi_buffer_weights_set_adam(bsvi_buffer_weights *w, double learning_rate,
                                         double beta1, double beta2) {
    if (!w) return BSVI_ERR_NULL_ARGUMENT;
    if (!(learning_rate > 0.0) || !isfinite(learning_rate) || !(beta1 >= 0.0 && beta1 < 1.0) ||
        !(beta2 >= 0.0 && beta2 < 1.0))
        return bsvi__fail(w->err, BSVI_ERR_BAD_VALUE,
                          "bsvi_buffer_weights_set_adam: need learning_rate > 0 and betas in "
                          "[0, 1) (got %g, %g, %g)",
                          learning_rate, beta1, beta2);
    w->lr = learning_rate;
    w->b1 = beta1;
    w->b2 = beta2;
    return BSVI_OK;
}

bsvi_status bsvi_buffer_weights_get_adam_state(const bsvi_buffer_weights *w, double *m,
                                               double *v, uint64_t *steps, size_t n) {
    if (!w) return BSVI_ERR_NULL_ARGUMENT;
    bsvi_status st = size_check(w, n, "bsvi_buffer_weights_get_adam_state");
    if (st != BSVI_OK) return st;
    if (m) memcpy(m, w->m, n * sizeof(double));
    if (v) memcpy(v, w->v, n * sizeof(double));
    if (steps) *steps = w->t;
    return BSVI_OK;
}

bsvi_status bsvi_buffer_weights_set_adam_state(bsvi_buffer_weights *w, const double *m,
                                               const double *v, uint64_t steps, size_t n) {
    static const char fn[] = "bsvi_buffer_weights_set_adam_state";
    if (!w) return BSVI_ERR_NULL_ARGUMENT;
    if (!m || !v) return bsvi__fail(w->err, BSVI_ERR_NULL_ARGUMENT, "%s: m and v must not be NULL", fn);
    bsvi_status st = size_check(w, n, fn);
    if (st != BSVI_OK) return st;
    if (steps == UINT64_MAX)
        return bsvi__fail(w->err, BSVI_ERR_BAD_VALUE,
                          "%s: steps = 2^64 - 1 leaves no next step to take", fn);
    for (size_t i = 0; i < n; ++i)
        if (!isfinite(m[i]) || !isfinite(v[i]) || v[i] < 0.0)
            return bsvi__fail(w->err, BSVI_ERR_BAD_VALUE,
                              "%s: moment %zu is (%g, %g): need finite m and finite v >= 0", fn,
                              i, m[i], v[i]);
    memcpy(w->m, m, n * sizeof(double));
    memcpy(w->v, v, n * sizeof(double));
    w->t = steps;
    return BSVI_OK;
}

/* Adds, with w->logpi = log pi, sum_b (r_b - pi) over B rows of n log weights (row stride n) to sum, and the number
 * of rows with a finite bound to count; a row whose weights are all zero adds nothing.
 * Summed straight into the accumulator: one batch per step gives the mean bit for bit. */
static void accumulate_rows(bsvi_buffer_weights *w, size_t B, const double *lw, size_t stride,
                            double *sum, uint64_t *count) {
    const size_t n = w->n;
    for (size_t b = 0; b < B; ++b) {
        if (bsvi__buffer_softmax(w->logpi, lw + b * stride, n, w->r) == -INFINITY) continue;
        for (size_t i = 0; i < n; ++i) sum[i] += w->r[i] - exp(w->logpi[i]);
        ++*count;
    }
}

bsvi_status bsvi_buffer_weights_accumulate(bsvi_buffer_weights *w, const bsvi_trajectory *t) {
    static const char fn[] = "bsvi_buffer_weights_accumulate";
    if (!w) return BSVI_ERR_NULL_ARGUMENT;
    if (!t) return bsvi__fail(w->err, BSVI_ERR_NULL_ARGUMENT, "%s: the trajectory is NULL", fn);
    const bsvi__trajdata *td = &t->data;
    if (!td->valid)
        return bsvi__fail(w->err, BSVI_ERR_BAD_STATE, "%s: the trajectory is empty", fn);
    if (td->k + 1 != w->n)
        return bsvi__fail(w->err, BSVI_ERR_SIZE_MISMATCH,
                          "%s: the trajectory has k+1 = %zu slots but the weights %zu", fn,
                          td->k + 1, w->n);
    bsvi__log_pi(w, w->n, w->logpi);
    accumulate_rows(w, td->B, td->logw, w->n, w->acc, &w->count);
    return BSVI_OK;
}

bsvi_status bsvi_buffer_weights_accumulate_terms(bsvi_buffer_weights *w, size_t batch, size_t n,
                                                 const double *log_joint,
                                                 const double *log_proposal) {
    static const char fn[] = "bsvi_buffer_weights_accumulate_terms";
    if (!w) return BSVI_ERR_NULL_ARGUMENT;
    if (!log_joint || !log_proposal)
        return bsvi__fail(w->err, BSVI_ERR_NULL_ARGUMENT,
                          "%s: log_joint and log_proposal must not be NULL", fn);
    if (batch == 0 || n == 0)
        return bsvi__fail(w->err, BSVI_ERR_ZERO_SIZE, "%s: batch and n must be >= 1", fn);
    if (batch > BSVI_MAX_BATCH || n > BSVI_MAX_STEPS + 1)
        return bsvi__fail(w->err, BSVI_ERR_OUT_OF_RANGE,
                          "%s: batch %zu or n %zu exceeds its limit", fn, batch, n);
    bsvi_status st = size_check(w, n, fn);
    if (st != BSVI_OK) return st;
    size_t at;
    st = bsvi__check_terms(batch * n, log_joint, log_proposal, &at);
    if (st == BSVI_ERR_BAD_VALUE)
        return bsvi__fail(w->err, st,
                          "%s: term %zu is log_joint %g, log_proposal %g (NaN, log_joint "
                          "+infinity and log_proposal -infinity are refused)",
                          fn, at, log_joint[at], log_proposal[at]);
    if (st != BSVI_OK)
        return bsvi__fail(w->err, st,
                          "%s: log_joint - log_proposal overflows to +infinity at term %zu "
                          "(%g - %g)",
                          fn, at, log_joint[at], log_proposal[at]);
    double *lw = w->a + 8 * n;
    bsvi__log_pi(w, n, w->logpi);
    for (size_t b = 0; b < batch; ++b) {
        for (size_t i = 0; i < n; ++i) lw[i] = log_joint[b * n + i] - log_proposal[b * n + i];
        accumulate_rows(w, 1, lw, n, w->acc, &w->count);
    }
    return BSVI_OK;
}

bsvi_status bsvi_buffer_weights_get_gradient(const bsvi_buffer_weights *w, double *sum,
                                             uint64_t *count, size_t n) {
    if (!w) return BSVI_ERR_NULL_ARGUMENT;
    bsvi_status st = size_check(w, n, "bsvi_buffer_weights_get_gradient");
    if (st != BSVI_OK) return st;
    if (sum) memcpy(sum, w->acc, n * sizeof(double));
    if (count) *count = w->count;
    return BSVI_OK;
}

bsvi_status bsvi_buffer_weights_set_gradient(bsvi_buffer_weights *w, const double *sum,
                                             uint64_t count, size_t n) {
    static const char fn[] = "bsvi_buffer_weights_set_gradient";
    if (!w) return BSVI_ERR_NULL_ARGUMENT;
    if (!sum) return bsvi__fail(w->err, BSVI_ERR_NULL_ARGUMENT, "%s: sum is NULL", fn);
    bsvi_status st = size_check(w, n, fn);
    if (st != BSVI_OK) return st;
    for (size_t i = 0; i < n; ++i) {
        if (!isfinite(sum[i]))
            return bsvi__fail(w->err, BSVI_ERR_BAD_VALUE, "%s: sum[%zu] = %g is not finite", fn,
                              i, sum[i]);
        if (count == 0 && sum[i] != 0.0)
            return bsvi__fail(w->err, BSVI_ERR_BAD_VALUE,
                              "%s: sum[%zu] = %g is not 0 but the count is 0", fn, i, sum[i]);
    }
    memcpy(w->acc, sum, n * sizeof(double));
    w->count = count;
    return BSVI_OK;
}

bsvi_status bsvi_buffer_weights_step(bsvi_buffer_weights *w) {
    static const char fn[] = "bsvi_buffer_weights_step";
    if (!w) return BSVI_ERR_NULL_ARGUMENT;
    if (w->count == 0) return BSVI_OK;
    const size_t n = w->n;
    const double d1 = 1.0 - pow(w->b1, (double)(w->t + 1));
    const double d2 = 1.0 - pow(w->b2, (double)(w->t + 1));
    /* The step is computed aside (logpi holds the gradient, r the moments' new values are
     * written over copies), checked, and only then committed, so that a refused step changes
     * nothing: a logit that overflows, or that the re-centring would send to -infinity
     * (a - max with a = -1e308, max = 1e308: a -infinity logit could never come back). */
    double *g = w->logpi, *delta = w->r;
    for (size_t i = 0; i < n; ++i) g[i] = w->acc[i] / (double)w->count;
    double *m = w->a + 6 * n, *v = w->a + 7 * n;
    memcpy(m, w->m, n * sizeof(double));
    memcpy(v, w->v, n * sizeof(double));
    if (bsvi__adam_update(n, w->b1, w->b2, d1, d2, w->lr, 1e-8, g, m, v, delta))
        return bsvi__fail(w->err, BSVI_ERR_NUMERIC,
                          "%s: Adam's moment estimates overflow (a gradient of %g or more): the "
                          "accumulated gradient is not a mean of pi gradients",
                          fn, sqrt(DBL_MAX));
    double mx = -INFINITY;
    for (size_t i = 0; i < n; ++i) {
        if (w->a[i] == -INFINITY) continue;
        const double a = w->a[i] + delta[i];
        if (!isfinite(a))
            return bsvi__fail(w->err, BSVI_ERR_NUMERIC,
                              "%s: the Adam step overflows logit %zu (learning rate %g): lower "
                              "the learning rate",
                              fn, i, w->lr);
        if (a > mx) mx = a;
    }
    for (size_t i = 0; i < n; ++i) {
        if (w->a[i] == -INFINITY) continue;
        const double a = w->a[i] + delta[i];
        if (!isfinite(a - mx))
            return bsvi__fail(w->err, BSVI_ERR_NUMERIC,
                              "%s: the Adam step would send logit %zu to -infinity when the "
                              "logits are re-centred (%g - %g; learning rate %g): lower the "
                              "learning rate",
                              fn, i, a, mx, w->lr);
    }
    /* commit; softmax is shift-invariant: keep the largest logit at 0 */
    for (size_t i = 0; i < n; ++i) {
        if (w->a[i] == -INFINITY) continue;
        w->m[i] = m[i];
        w->v[i] = v[i];
        w->a[i] = (w->a[i] + delta[i]) - mx;
    }
    w->t++;
    memset(w->acc, 0, n * sizeof(double));
    w->count = 0;
    return BSVI_OK;
}

bsvi_status bsvi__check_terms(size_t n, const double *log_joint, const double *log_proposal,
                              size_t *at) {
    for (size_t i = 0; i < n; ++i) {
        if (isnan(log_joint[i]) || log_joint[i] == INFINITY || isnan(log_proposal[i]) ||
            log_proposal[i] == -INFINITY) {
            *at = i;
            return BSVI_ERR_BAD_VALUE;
        }
    }
    for (size_t i = 0; i < n; ++i)
        if (log_joint[i] - log_proposal[i] == INFINITY) {
            *at = i;
            return BSVI_ERR_NUMERIC;
        }
    return BSVI_OK;
}
