/* Bound estimators: values, decoder targets, encoder gradients and buffer weights. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct result {
    size_t B, T, d;
    int valid, has_z, has_enc;
    double *bounds;        /* B */
    size_t *tidx, *tslot;  /* B*T each (one allocation) */
    double *tz;            /* B*T*d */
    double *coef;          /* B*T */
    double *enc_mu, *enc_s;/* B*d each (one allocation) */
    double *pigrad;        /* npi: this compute's d/da of the batch-mean bound */
    size_t cap_b, cap_bt, cap_btd, cap_bd, cap_pi;
} result;

struct bsvi_estimator {
    bsvi_bound kind;
    size_t dim, K, M;
    bsvi_grad_form form;
    bsvi__rng rng;
    /* buffer weights: logits a, Adam moments, accumulated gradient (one allocation) */
    size_t npi, cap_pi, nacc;
    double *logits, *pm, *pv, *acc;
    uint64_t pt;
    int opt;
    double lr, b1, b2;
    /* workspace */
    double *eps, *z, *g, *gscratch; /* rows*d: eps|z one allocation; g; gscratch */
    double *sig;                    /* d: exp(log-std) of one data point */
    double *lik, *prior, *lw;       /* rows each (one allocation) */
    double *logpi, *r, *u;          /* slots, slots, M (one allocation) */
    size_t *idx;
    size_t cap_rowsd, cap_rows, cap_idx, cap_slots, cap_sig;
    result cur, stage;
    bsvi__use use; /* running computes holding the handle */
    int doomed;    /* destroyed while held: freed at the release */
    char err[BSVI__ERRLEN];
};

static void result_free(result *r) {
    free(r->bounds);
    free(r->tidx);
    free(r->tz);
    free(r->coef);
    free(r->enc_mu);
    free(r->pigrad);
    memset(r, 0, sizeof *r);
}

static int result_reserve(result *r, size_t B, size_t T, size_t d, size_t npi) {
    size_t bt, btd, bd;
    if (bsvi__mul_overflow(B, T, &bt) || bsvi__mul_overflow(bt, d, &btd) ||
        bsvi__mul_overflow(B, d, &bd) || bt > SIZE_MAX / 16 || bd > SIZE_MAX / 16)
        return 1;
    if (bsvi__grow(&r->bounds, &r->cap_b, B)) return 1;
    if (bt > r->cap_bt || !r->tidx) {
        size_t c0 = 0, c1 = 0;
        free(r->tidx), free(r->coef);
        r->tidx = NULL, r->coef = NULL;
        r->cap_bt = 0;
        if (bsvi__grow_size(&r->tidx, &c0, 2 * bt) || bsvi__grow(&r->coef, &c1, bt)) return 1;
        r->cap_bt = bt;
    }
    r->tslot = r->tidx + bt;
    if (bsvi__grow(&r->tz, &r->cap_btd, btd)) return 1;
    if (bd > r->cap_bd || !r->enc_mu) {
        size_t c0 = 0;
        free(r->enc_mu);
        r->enc_mu = NULL;
        r->cap_bd = 0;
        if (bsvi__grow(&r->enc_mu, &c0, 2 * bd)) return 1;
        r->cap_bd = bd;
    }
    r->enc_s = r->enc_mu + bd;
    if (bsvi__grow(&r->pigrad, &r->cap_pi, npi ? npi : 1)) return 1;
    r->B = B;
    r->T = T;
    r->d = d;
    return 0;
}

static int uses_pi(bsvi_bound k) {
    return k == BSVI_BOUND_BSVI || k == BSVI_BOUND_BSVI_DS || k == BSVI_BOUND_BSVI_SIR ||
           k == BSVI_BOUND_GIWAE;
}

static const char *kind_name(bsvi_bound k) {
    switch (k) {
    case BSVI_BOUND_ELBO: return "ELBO";
    case BSVI_BOUND_IWAE: return "IWAE";
    case BSVI_BOUND_SVI: return "SVI-k";
    case BSVI_BOUND_BSVI: return "BSVI";
    case BSVI_BOUND_BSVI_DS: return "BSVI-DS";
    case BSVI_BOUND_BSVI_SIR: return "BSVI-SIR";
    case BSVI_BOUND_GIWAE: return "generalised IWAE";
    }
    return "unknown";
}

bsvi_status bsvi_estimator_create(bsvi_bound kind, size_t dim, bsvi_estimator **out) {
    if (!out) return BSVI_ERR_NULL_ARGUMENT;
    *out = NULL;
    if (kind < BSVI_BOUND_ELBO || kind > BSVI_BOUND_GIWAE) return BSVI_ERR_BAD_VALUE;
    if (dim == 0) return BSVI_ERR_ZERO_SIZE;
    if (dim > BSVI_MAX_DIM) return BSVI_ERR_OUT_OF_RANGE;
    bsvi_estimator *e = (bsvi_estimator *)calloc(1, sizeof *e);
    if (!e) return BSVI_ERR_NO_MEMORY;
    e->kind = kind;
    e->dim = dim;
    e->K = 10;
    e->M = 1;
    e->form = BSVI_GRAD_PATHWISE;
    e->lr = 1e-2;
    e->b1 = 0.9;
    e->b2 = 0.999;
    *out = e;
    return BSVI_OK;
}

static void estimator_free(bsvi_estimator *est);

void bsvi_estimator_destroy(bsvi_estimator *est) {
    if (!est) return;
    if (bsvi__busy(&est->use)) { /* held by a running compute: freed when it returns */
        est->doomed = 1;
        return;
    }
    estimator_free(est);
}

static bsvi_status refuse_in_use(bsvi_estimator *est, const char *fn) {
    return bsvi__fail(est->err, BSVI_ERR_REENTRANT,
                      "%s: the estimator is in use by a running compute (re-entered from a "
                      "callback?); it can be read but not changed until that call returns",
                      fn);
}

static void estimator_free(bsvi_estimator *est) {
    free(est->logits);
    free(est->eps);
    free(est->g);
    free(est->gscratch);
    free(est->lik);
    free(est->logpi);
    free(est->idx);
    free(est->sig);
    result_free(&est->cur);
    result_free(&est->stage);
    free(est);
}

bsvi_bound bsvi_estimator_kind(const bsvi_estimator *est) {
    return est ? est->kind : BSVI_BOUND_ELBO;
}

const char *bsvi_estimator_last_error(const bsvi_estimator *est) {
    return est ? est->err : "NULL estimator handle";
}

bsvi_status bsvi_estimator_set_num_samples(bsvi_estimator *est, size_t K) {
    if (!est) return BSVI_ERR_NULL_ARGUMENT;
    if (bsvi__busy(&est->use)) return refuse_in_use(est, "bsvi_estimator_set_num_samples");
    if (est->kind != BSVI_BOUND_IWAE)
        return bsvi__fail(est->err, BSVI_ERR_BAD_STATE,
                          "bsvi_estimator_set_num_samples: only IWAE estimators take K (this is "
                          "%s)",
                          kind_name(est->kind));
    if (K == 0)
        return bsvi__fail(est->err, BSVI_ERR_ZERO_SIZE, "bsvi_estimator_set_num_samples: K is 0");
    if (K > BSVI_MAX_SAMPLES)
        return bsvi__fail(est->err, BSVI_ERR_OUT_OF_RANGE,
                          "bsvi_estimator_set_num_samples: K = %zu exceeds %zu", K,
                          (size_t)BSVI_MAX_SAMPLES);
    est->K = K;
    return BSVI_OK;
}

bsvi_status bsvi_estimator_set_num_resamples(bsvi_estimator *est, size_t M) {
    if (!est) return BSVI_ERR_NULL_ARGUMENT;
    if (bsvi__busy(&est->use)) return refuse_in_use(est, "bsvi_estimator_set_num_resamples");
    if (est->kind != BSVI_BOUND_BSVI_SIR)
        return bsvi__fail(est->err, BSVI_ERR_BAD_STATE,
                          "bsvi_estimator_set_num_resamples: only BSVI-SIR estimators take M "
                          "(this is %s)",
                          kind_name(est->kind));
    if (M == 0)
        return bsvi__fail(est->err, BSVI_ERR_ZERO_SIZE,
                          "bsvi_estimator_set_num_resamples: M is 0");
    if (M > BSVI_MAX_SAMPLES)
        return bsvi__fail(est->err, BSVI_ERR_OUT_OF_RANGE,
                          "bsvi_estimator_set_num_resamples: M = %zu exceeds %zu", M,
                          (size_t)BSVI_MAX_SAMPLES);
    est->M = M;
    return BSVI_OK;
}

bsvi_status bsvi_estimator_set_grad_form(bsvi_estimator *est, bsvi_grad_form form) {
    if (!est) return BSVI_ERR_NULL_ARGUMENT;
    if (bsvi__busy(&est->use)) return refuse_in_use(est, "bsvi_estimator_set_grad_form");
    if (est->kind != BSVI_BOUND_ELBO && est->kind != BSVI_BOUND_IWAE)
        return bsvi__fail(est->err, BSVI_ERR_BAD_STATE,
                          "bsvi_estimator_set_grad_form: %s takes its encoder gradient from the "
                          "trajectory; set the form on the SVI handle",
                          kind_name(est->kind));
    int ok = (form == BSVI_GRAD_PATHWISE || form == BSVI_GRAD_STL) ||
             (est->kind == BSVI_BOUND_ELBO && form == BSVI_GRAD_ANALYTIC_KL) ||
             (est->kind == BSVI_BOUND_IWAE && form == BSVI_GRAD_DREG);
    if (!ok)
        return bsvi__fail(est->err, BSVI_ERR_BAD_VALUE,
                          "bsvi_estimator_set_grad_form: form %d is not valid for %s", (int)form,
                          kind_name(est->kind));
    est->form = form;
    return BSVI_OK;
}

bsvi_status bsvi_estimator_set_seed(bsvi_estimator *est, uint64_t seed) {
    if (!est) return BSVI_ERR_NULL_ARGUMENT;
    if (bsvi__busy(&est->use)) return refuse_in_use(est, "bsvi_estimator_set_seed");
    est->rng.seed = seed;
    est->rng.counter = 0;
    return BSVI_OK;
}

bsvi_status bsvi_estimator_set_stream(bsvi_estimator *est, uint64_t counter, uint64_t id_offset) {
    if (!est) return BSVI_ERR_NULL_ARGUMENT;
    if (bsvi__busy(&est->use)) return refuse_in_use(est, "bsvi_estimator_set_stream");
    est->rng.counter = counter;
    est->rng.id_offset = id_offset;
    return BSVI_OK;
}

/* ---- buffer weights ----------------------------------------------------- */

static bsvi_status pi_kind_check(bsvi_estimator *est, const char *fn) {
    if (!uses_pi(est->kind))
        return bsvi__fail(est->err, BSVI_ERR_BAD_STATE, "%s: %s has no buffer weights", fn,
                          kind_name(est->kind));
    return BSVI_OK;
}

/* Ensures room for n logits (contents not preserved when it grows). */
static int pi_reserve(bsvi_estimator *est, size_t n) {
    if (n <= est->cap_pi && est->logits) return 0;
    if (n > SIZE_MAX / (4 * sizeof(double))) return 1;
    double *p = (double *)malloc(4 * n * sizeof(double));
    if (!p) return 1;
    if (est->logits && est->npi) {
        memcpy(p, est->logits, est->npi * sizeof(double));
        memcpy(p + n, est->pm, est->npi * sizeof(double));
        memcpy(p + 2 * n, est->pv, est->npi * sizeof(double));
        memcpy(p + 3 * n, est->acc, est->npi * sizeof(double));
    }
    free(est->logits);
    est->logits = p;
    est->pm = p + n;
    est->pv = p + 2 * n;
    est->acc = p + 3 * n;
    est->cap_pi = n;
    return 0;
}

static void pi_reset_optimiser(bsvi_estimator *est) {
    memset(est->pm, 0, est->npi * sizeof(double));
    memset(est->pv, 0, est->npi * sizeof(double));
    memset(est->acc, 0, est->npi * sizeof(double));
    est->nacc = 0;
    est->pt = 0;
}

static bsvi_status pi_size_check(bsvi_estimator *est, size_t n, const char *fn) {
    if (n == 0) return bsvi__fail(est->err, BSVI_ERR_ZERO_SIZE, "%s: n is 0", fn);
    if (n > BSVI_MAX_STEPS + 1)
        return bsvi__fail(est->err, BSVI_ERR_OUT_OF_RANGE, "%s: n = %zu exceeds %zu", fn, n,
                          (size_t)BSVI_MAX_STEPS + 1);
    return BSVI_OK;
}

bsvi_status bsvi_estimator_set_buffer_weights(bsvi_estimator *est, const double *pi, size_t n) {
    static const char fn[] = "bsvi_estimator_set_buffer_weights";
    if (!est) return BSVI_ERR_NULL_ARGUMENT;
    if (bsvi__busy(&est->use)) return refuse_in_use(est, "bsvi_estimator_set_buffer_weights");
    bsvi_status st = pi_kind_check(est, fn);
    if (st != BSVI_OK) return st;
    if (!pi) return bsvi__fail(est->err, BSVI_ERR_NULL_ARGUMENT, "%s: pi is NULL", fn);
    if ((st = pi_size_check(est, n, fn)) != BSVI_OK) return st;
    double sum = 0.0;
    for (size_t i = 0; i < n; ++i) {
        if (!(pi[i] >= 0.0) || !isfinite(pi[i]))
            return bsvi__fail(est->err, BSVI_ERR_BAD_VALUE,
                              "%s: pi[%zu] = %g is not a probability", fn, i, pi[i]);
        sum += pi[i];
    }
    if (!(fabs(sum - 1.0) <= 1e-9))
        return bsvi__fail(est->err, BSVI_ERR_BAD_VALUE, "%s: pi sums to %.17g, not 1", fn, sum);
    if (pi_reserve(est, n)) return bsvi__fail(est->err, BSVI_ERR_NO_MEMORY, "%s: out of memory", fn);
    est->npi = n;
    for (size_t i = 0; i < n; ++i) est->logits[i] = pi[i] > 0.0 ? log(pi[i]) : -INFINITY;
    pi_reset_optimiser(est);
    return BSVI_OK;
}

bsvi_status bsvi_estimator_set_uniform_buffer_weights(bsvi_estimator *est, size_t n) {
    static const char fn[] = "bsvi_estimator_set_uniform_buffer_weights";
    if (!est) return BSVI_ERR_NULL_ARGUMENT;
    if (bsvi__busy(&est->use)) return refuse_in_use(est, "bsvi_estimator_set_uniform_buffer_weights");
    bsvi_status st = pi_kind_check(est, fn);
    if (st != BSVI_OK) return st;
    if ((st = pi_size_check(est, n, fn)) != BSVI_OK) return st;
    if (pi_reserve(est, n)) return bsvi__fail(est->err, BSVI_ERR_NO_MEMORY, "%s: out of memory", fn);
    est->npi = n;
    for (size_t i = 0; i < n; ++i) est->logits[i] = 0.0;
    pi_reset_optimiser(est);
    return BSVI_OK;
}

size_t bsvi_estimator_num_buffer_weights(const bsvi_estimator *est) {
    return est ? est->npi : 0;
}

/* log pi from the logits (n entries). */
static void log_pi(const double *a, size_t n, double *out) {
    double l = bsvi_logsumexp(a, n);
    for (size_t i = 0; i < n; ++i) out[i] = a[i] - l;
}

bsvi_status bsvi_estimator_get_buffer_weights(const bsvi_estimator *est, double *pi, size_t n) {
    static const char fn[] = "bsvi_estimator_get_buffer_weights";
    if (!est) return BSVI_ERR_NULL_ARGUMENT;
    char *err = (char *)est->err;
    if (!pi) return bsvi__fail(err, BSVI_ERR_NULL_ARGUMENT, "%s: pi is NULL", fn);
    if (!uses_pi(est->kind))
        return bsvi__fail(err, BSVI_ERR_BAD_STATE, "%s: %s has no buffer weights", fn,
                          kind_name(est->kind));
    if (est->npi == 0)
        return bsvi__fail(err, BSVI_ERR_BAD_STATE,
                          "%s: pi is not sized yet (set it, or compute once)", fn);
    if (n != est->npi)
        return bsvi__fail(err, BSVI_ERR_SIZE_MISMATCH, "%s: n = %zu but pi has %zu entries", fn,
                          n, est->npi);
    double l = bsvi_logsumexp(est->logits, n);
    for (size_t i = 0; i < n; ++i) pi[i] = exp(est->logits[i] - l);
    return BSVI_OK;
}

bsvi_status bsvi_estimator_get_mean_position(const bsvi_estimator *est, double *out) {
    static const char fn[] = "bsvi_estimator_get_mean_position";
    if (!est) return BSVI_ERR_NULL_ARGUMENT;
    char *err = (char *)est->err;
    if (!out) return bsvi__fail(err, BSVI_ERR_NULL_ARGUMENT, "%s: out is NULL", fn);
    if (!uses_pi(est->kind))
        return bsvi__fail(err, BSVI_ERR_BAD_STATE, "%s: %s has no buffer weights", fn,
                          kind_name(est->kind));
    if (est->npi == 0)
        return bsvi__fail(err, BSVI_ERR_BAD_STATE, "%s: pi is not sized yet", fn);
    const size_t n = est->npi;
    if (n == 1) {
        *out = 0.0;
        return BSVI_OK;
    }
    double l = bsvi_logsumexp(est->logits, n), acc = 0.0;
    for (size_t i = 0; i < n; ++i) acc += exp(est->logits[i] - l) * (double)i / (double)(n - 1);
    *out = acc;
    return BSVI_OK;
}

bsvi_status bsvi_estimator_set_pi_optimisation(bsvi_estimator *est, int enabled) {
    static const char fn[] = "bsvi_estimator_set_pi_optimisation";
    if (!est) return BSVI_ERR_NULL_ARGUMENT;
    if (bsvi__busy(&est->use)) return refuse_in_use(est, "bsvi_estimator_set_pi_optimisation");
    bsvi_status st = pi_kind_check(est, fn);
    if (st != BSVI_OK) return st;
    if (enabled != 0 && enabled != 1)
        return bsvi__fail(est->err, BSVI_ERR_BAD_VALUE, "%s: enabled must be 0 or 1, got %d", fn,
                          enabled);
    est->opt = enabled;
    if (est->npi) {
        memset(est->acc, 0, est->npi * sizeof(double));
        est->nacc = 0;
    }
    return BSVI_OK;
}

bsvi_status bsvi_estimator_set_pi_adam(bsvi_estimator *est, double learning_rate, double beta1,
                                       double beta2) {
    static const char fn[] = "bsvi_estimator_set_pi_adam";
    if (!est) return BSVI_ERR_NULL_ARGUMENT;
    if (bsvi__busy(&est->use)) return refuse_in_use(est, "bsvi_estimator_set_pi_adam");
    bsvi_status st = pi_kind_check(est, fn);
    if (st != BSVI_OK) return st;
    if (!(learning_rate > 0.0) || !isfinite(learning_rate) || !(beta1 >= 0.0 && beta1 < 1.0) ||
        !(beta2 >= 0.0 && beta2 < 1.0))
        return bsvi__fail(est->err, BSVI_ERR_BAD_VALUE,
                          "%s: need learning_rate > 0 and betas in [0, 1) (got %g, %g, %g)", fn,
                          learning_rate, beta1, beta2);
    est->lr = learning_rate;
    est->b1 = beta1;
    est->b2 = beta2;
    return BSVI_OK;
}

bsvi_status bsvi_estimator_pi_step(bsvi_estimator *est) {
    static const char fn[] = "bsvi_estimator_pi_step";
    if (!est) return BSVI_ERR_NULL_ARGUMENT;
    if (bsvi__busy(&est->use)) return refuse_in_use(est, "bsvi_estimator_pi_step");
    bsvi_status st = pi_kind_check(est, fn);
    if (st != BSVI_OK) return st;
    if (!est->opt)
        return bsvi__fail(est->err, BSVI_ERR_BAD_STATE,
                          "%s: pi optimisation is disabled (bsvi_estimator_set_pi_optimisation)",
                          fn);
    if (est->nacc == 0 || est->npi == 0) return BSVI_OK;
    const size_t n = est->npi;
    const double c1 = 1.0 - pow(est->b1, (double)(est->pt + 1));
    const double c2 = 1.0 - pow(est->b2, (double)(est->pt + 1));
    /* Reliability fix (found by tests/test_robustness.c): with an extreme (finite)
     * learning rate an Adam step can overflow a logit to +-infinity, and the re-centring
     * below then made pi NaN. Dry-run the step first (same arithmetic) and refuse it,
     * leaving logits, moments and the accumulated gradient unchanged. */
    /* Reliability fix (issue 12): a step that stays finite can still send a logit to
     * -infinity when it is re-centred (a - max with a = -1e308, max = 1e308), and a
     * -infinity logit is frozen at pi = 0 for good. The dry run checks the re-centred
     * values too (second pass, same arithmetic as the step below). */
    double dry_mx = -INFINITY;
    for (int pass = 0; pass < 2; ++pass) {
        for (size_t i = 0; i < n; ++i) {
            if (est->logits[i] == -INFINITY) continue;
            const double g = est->acc[i] / (double)est->nacc;
            const double pm = est->b1 * est->pm[i] + (1.0 - est->b1) * g;
            const double pv = est->b2 * est->pv[i] + (1.0 - est->b2) * g * g;
            const double a = est->logits[i] + est->lr * (pm / c1) / (sqrt(pv / c2) + 1e-8);
            if (!isfinite(a))
                return bsvi__fail(est->err, BSVI_ERR_NUMERIC,
                                  "%s: the Adam step overflows logit %zu (learning rate %g): "
                                  "lower the learning rate",
                                  fn, i, est->lr);
            if (pass == 0 && a > dry_mx) dry_mx = a;
            if (pass == 1 && !isfinite(a - dry_mx))
                return bsvi__fail(est->err, BSVI_ERR_NUMERIC,
                                  "%s: the Adam step would send logit %zu to -infinity when the "
                                  "logits are re-centred (%g - %g; learning rate %g): lower the "
                                  "learning rate",
                                  fn, i, a, dry_mx, est->lr);
        }
    }
    est->pt++;
    double mx = -INFINITY;
    for (size_t i = 0; i < n; ++i) {
        if (est->logits[i] == -INFINITY) continue;
        const double g = est->acc[i] / (double)est->nacc;
        est->pm[i] = est->b1 * est->pm[i] + (1.0 - est->b1) * g;
        est->pv[i] = est->b2 * est->pv[i] + (1.0 - est->b2) * g * g;
        est->logits[i] += est->lr * (est->pm[i] / c1) / (sqrt(est->pv[i] / c2) + 1e-8);
        if (est->logits[i] > mx) mx = est->logits[i];
    }
    /* Softmax is shift-invariant: keep the largest logit at 0 so long runs stay bounded. */
    for (size_t i = 0; i < n; ++i)
        if (est->logits[i] != -INFINITY) est->logits[i] -= mx;
    memset(est->acc, 0, n * sizeof(double));
    est->nacc = 0;
    return BSVI_OK;
}

bsvi_status bsvi_estimator_get_pi_gradient(const bsvi_estimator *est, double *grad, size_t n) {
    static const char fn[] = "bsvi_estimator_get_pi_gradient";
    if (!est) return BSVI_ERR_NULL_ARGUMENT;
    char *err = (char *)est->err;
    if (!grad) return bsvi__fail(err, BSVI_ERR_NULL_ARGUMENT, "%s: grad is NULL", fn);
    if (!uses_pi(est->kind))
        return bsvi__fail(err, BSVI_ERR_BAD_STATE, "%s: %s has no buffer weights", fn,
                          kind_name(est->kind));
    if (est->npi == 0) return bsvi__fail(err, BSVI_ERR_BAD_STATE, "%s: pi is not sized yet", fn);
    if (n != est->npi)
        return bsvi__fail(err, BSVI_ERR_SIZE_MISMATCH, "%s: n = %zu but pi has %zu entries", fn,
                          n, est->npi);
    for (size_t i = 0; i < n; ++i)
        grad[i] = est->nacc ? est->acc[i] / (double)est->nacc : 0.0;
    return BSVI_OK;
}

/* ---- compute ------------------------------------------------------------ */

static int ws_reserve(bsvi_estimator *e, size_t rows, size_t d, int gscratch, size_t slots) {
    size_t rowsd;
    if (bsvi__mul_overflow(rows, d, &rowsd) || rowsd > SIZE_MAX / 64 || rows > SIZE_MAX / 64 ||
        slots > SIZE_MAX / 64)
        return 1;
    if (rowsd > e->cap_rowsd || !e->eps || (gscratch && !e->gscratch)) {
        size_t c0 = 0, c1 = 0, c2 = 0;
        free(e->eps), free(e->g), free(e->gscratch);
        e->eps = e->g = e->gscratch = NULL;
        e->cap_rowsd = 0;
        if (bsvi__grow(&e->eps, &c0, 2 * rowsd) || bsvi__grow(&e->g, &c1, rowsd) ||
            (gscratch && bsvi__grow(&e->gscratch, &c2, rowsd)))
            return 1;
        e->cap_rowsd = rowsd;
    }
    e->z = e->eps + rowsd;
    if (rows > e->cap_rows || !e->lik) {
        size_t c0 = 0;
        free(e->lik);
        e->lik = NULL;
        e->cap_rows = 0;
        if (bsvi__grow(&e->lik, &c0, 3 * rows)) return 1;
        e->cap_rows = rows;
    }
    e->prior = e->lik + rows;
    e->lw = e->lik + 2 * rows;
    if (bsvi__grow_size(&e->idx, &e->cap_idx, rows)) return 1;
    if (bsvi__grow(&e->sig, &e->cap_sig, d)) return 1;
    size_t ns = slots + (e->kind == BSVI_BOUND_BSVI_SIR ? e->M : 0);
    if (ns > e->cap_slots || !e->logpi) {
        size_t c0 = 0;
        free(e->logpi);
        e->logpi = NULL;
        e->cap_slots = 0;
        if (bsvi__grow(&e->logpi, &c0, 2 * ns + 1)) return 1;
        e->cap_slots = ns;
    }
    e->r = e->logpi + slots;
    e->u = e->r + slots;
    return 0;
}

/* Commits the staged result: swap buffers, accumulate the pi gradient, size pi. */
static void commit(bsvi_estimator *e, size_t npi_used, int pi_grad) {
    if (uses_pi(e->kind) && e->npi == 0 && npi_used) {
        e->npi = npi_used; /* pi_reserve already succeeded for npi_used */
        for (size_t i = 0; i < npi_used; ++i) e->logits[i] = 0.0;
        pi_reset_optimiser(e);
    }
    if (pi_grad && e->opt) {
        for (size_t i = 0; i < e->npi; ++i) e->acc[i] += e->stage.pigrad[i];
        e->nacc++;
    }
    e->stage.valid = 1;
    result tmp = e->cur;
    e->cur = e->stage;
    e->stage = tmp;
    e->stage.valid = 0;
}

/* r = softmax(logpi + lw) over n slots; returns the bound (LSE). */
static double buffer_softmax(const double *logpi, const double *lw, size_t n, double *r) {
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

static bsvi_status compute_sampled(bsvi_estimator *e, const bsvi_model *model,
                                   const bsvi_proposal *q) {
    const size_t d = e->dim, B = q->batch;
    const size_t S = (e->kind == BSVI_BOUND_IWAE) ? e->K : 1;
    size_t rows;
    if (bsvi__mul_overflow(B, S, &rows))
        return bsvi__fail(e->err, BSVI_ERR_OUT_OF_RANGE, "batch times K overflows");
    if (e->form == BSVI_GRAD_ANALYTIC_KL && model->prior != NULL)
        return bsvi__fail(e->err, BSVI_ERR_BAD_STATE,
                          "bsvi_estimator_compute: the analytic-KL form needs the standard "
                          "normal prior, but the model has a host prior");
    /* Reliability fix: K * dim above 2^33 would repeat normals within a data point's
     * stream (see rng.h); refuse before allocating. */
    if ((uint64_t)S * (uint64_t)d > BSVI__MAX_STREAM_NORMALS)
        return bsvi__fail(e->err, BSVI_ERR_OUT_OF_RANGE,
                          "bsvi_estimator_compute: K * dim = %zu * %zu exceeds the 2^33 normals "
                          "one data point's stream holds",
                          S, d);
    if (ws_reserve(e, rows, d, model->prior != NULL, 1) || result_reserve(&e->stage, B, S, d, 1))
        return bsvi__fail(e->err, BSVI_ERR_NO_MEMORY, "bsvi_estimator_compute: out of memory");
    result *res = &e->stage;
    for (size_t b = 0; b < B; ++b) {
        bsvi__normals(&e->rng, b, 0, BSVI__PURPOSE_SAMPLE, 0, S * d, e->eps + b * S * d);
        const double *mu = q->mean + b * d, *ls = q->log_std + b * d;
        for (size_t j = 0; j < d; ++j) e->sig[j] = exp(ls[j]);
        for (size_t s = 0; s < S; ++s) {
            const double *ep = e->eps + (b * S + s) * d;
            double *zr = e->z + (b * S + s) * d;
            for (size_t j = 0; j < d; ++j) zr[j] = mu[j] + e->sig[j] * ep[j];
            e->idx[b * S + s] = b;
        }
    }
    const int analytic = (e->form == BSVI_GRAD_ANALYTIC_KL);
    bsvi_status st = bsvi__model_eval(model, rows, e->z, e->idx, e->lik, e->prior,
                                      analytic ? BSVI__GRAD_LIK : BSVI__GRAD_JOINT, e->g,
                                      e->gscratch, e->err);
    if (st != BSVI_OK) return st;
    const double half = 0.5 * (double)d * BSVI__LOG_2PI;
    for (size_t b = 0; b < B; ++b) {
        const double *mu = q->mean + b * d, *ls = q->log_std + b * d;
        double sum_ls = 0.0;
        for (size_t j = 0; j < d; ++j) {
            e->sig[j] = exp(ls[j]);
            sum_ls += ls[j];
        }
        double *lw = e->lw + b * S;
        for (size_t s = 0; s < S; ++s) {
            const double *ep = e->eps + (b * S + s) * d;
            double lq = -half - sum_ls;
            for (size_t j = 0; j < d; ++j) lq -= 0.5 * ep[j] * ep[j];
            lw[s] = e->lik[b * S + s] + e->prior[b * S + s] - lq;
        }
        double *coef = res->coef + b * S;
        double bound;
        if (S == 1) {
            bound = lw[0]; /* the form only selects the encoder-gradient estimator */
            coef[0] = 1.0;
            if (lw[0] == -INFINITY)
                return bsvi__fail(e->err, BSVI_ERR_NUMERIC,
                                  "bsvi_estimator_compute: the sample of data point %zu has zero "
                                  "density under the model",
                                  b);
        } else {
            double mx = -INFINITY, sm = 0.0;
            for (size_t s = 0; s < S; ++s) bsvi__lse_push(&mx, &sm, lw[s]);
            if (mx == -INFINITY)
                return bsvi__fail(e->err, BSVI_ERR_NUMERIC,
                                  "bsvi_estimator_compute: every one of the %zu weights of data "
                                  "point %zu is zero",
                                  S, b);
            const double lse = bsvi__lse_value(mx, sm);
            bound = lse - log((double)S);
            /* Reliability fix (found by fuzz/fuzz_api.c): exp(lw - lse) lost the log(sum)
             * term when |lw| is huge (1e300 + log 2 == 1e300), so tied weights got
             * coefficients 1 each; normalising by the sum keeps them on the simplex. */
            for (size_t s = 0; s < S; ++s) coef[s] = exp(lw[s] - mx) / sm;
        }
        res->bounds[b] = bound;
        double *dmu = res->enc_mu + b * d, *dsg = res->enc_s + b * d;
        memset(dmu, 0, d * sizeof *dmu);
        memset(dsg, 0, d * sizeof *dsg);
        for (size_t s = 0; s < S; ++s) {
            const size_t row = b * S + s;
            double wgt = coef[s];
            bsvi_grad_form f = e->form;
            if (f == BSVI_GRAD_DREG) wgt = coef[s] * coef[s];
            if (wgt == 0.0) continue;
            bsvi__grad_row(f, d, e->g + row * d, e->eps + row * d, mu, e->sig, wgt, dmu, dsg);
        }
        /* Reliability fix: finite but huge host gradients times sigma (up to e^30) can
         * overflow, and opposite infinities across samples give NaN; such an encoder
         * gradient must not be returned with BSVI_OK. */
        for (size_t j = 0; j < d; ++j)
            if (!isfinite(dmu[j]) || !isfinite(dsg[j]))
                return bsvi__fail(e->err, BSVI_ERR_NUMERIC,
                                  "bsvi_estimator_compute: the encoder gradient of data point "
                                  "%zu is not finite (coordinate %zu): the host's gradient or "
                                  "the proposal's scale is too large",
                                  b, j);
        for (size_t s = 0; s < S; ++s) {
            res->tidx[b * S + s] = b;
            res->tslot[b * S + s] = s;
        }
    }
    memcpy(res->tz, e->z, rows * d * sizeof(double));
    res->has_z = 1;
    res->has_enc = 1;
    commit(e, 0, 0);
    e->rng.counter++;
    return BSVI_OK;
}

static bsvi_status compute_traj(bsvi_estimator *e, const bsvi_trajectory *traj) {
    const bsvi__trajdata *t = &traj->data;
    const size_t d = e->dim, B = t->B, K = t->k + 1;
    if (e->kind == BSVI_BOUND_BSVI_DS && !t->ds)
        return bsvi__fail(e->err, BSVI_ERR_BAD_STATE,
                          "bsvi_estimator_compute: BSVI-DS needs a double-sampled trajectory "
                          "(bsvi_svi_set_double_sampling)");
    const int pi_kind = uses_pi(e->kind);
    if (pi_kind && e->npi != 0 && e->npi != K)
        return bsvi__fail(e->err, BSVI_ERR_SIZE_MISMATCH,
                          "bsvi_estimator_compute: pi has %zu entries but the trajectory has "
                          "k+1 = %zu slots",
                          e->npi, K);
    size_t T = 1;
    if (e->kind == BSVI_BOUND_BSVI || e->kind == BSVI_BOUND_BSVI_DS) T = K;
    if (e->kind == BSVI_BOUND_BSVI_SIR) T = e->M;
    if ((pi_kind && pi_reserve(e, K)) || ws_reserve(e, 1, d, 0, K) ||
        result_reserve(&e->stage, B, T, d, K))
        return bsvi__fail(e->err, BSVI_ERR_NO_MEMORY, "bsvi_estimator_compute: out of memory");
    result *res = &e->stage;
    if (pi_kind) {
        if (e->npi == 0)
            for (size_t i = 0; i < K; ++i) e->logpi[i] = -log((double)K);
        else
            log_pi(e->logits, K, e->logpi);
        memset(res->pigrad, 0, K * sizeof(double));
    }
    for (size_t b = 0; b < B; ++b) {
        const double *lw = t->logw + b * K;
        size_t *ti = res->tidx + b * T, *ts = res->tslot + b * T;
        double *tc = res->coef + b * T, *tz = res->tz + b * T * d;
        if (e->kind == BSVI_BOUND_SVI) {
            if (lw[K - 1] == -INFINITY)
                return bsvi__fail(e->err, BSVI_ERR_NUMERIC,
                                  "bsvi_estimator_compute: the last weight of data point %zu is "
                                  "zero",
                                  b);
            res->bounds[b] = lw[K - 1];
            ti[0] = b;
            ts[0] = K - 1;
            tc[0] = 1.0;
            memcpy(tz, bsvi__traj_row(t, t->z, b, K - 1), d * sizeof(double));
            continue;
        }
        double bound = buffer_softmax(e->logpi, lw, K, e->r);
        if (bound == -INFINITY)
            return bsvi__fail(e->err, BSVI_ERR_NUMERIC,
                              "bsvi_estimator_compute: every buffer weight of data point %zu is "
                              "zero",
                              b);
        res->bounds[b] = bound;
        for (size_t i = 0; i < K; ++i) res->pigrad[i] += e->r[i] - exp(e->logpi[i]);
        if (e->kind == BSVI_BOUND_BSVI_SIR) {
            const size_t M = e->M;
            bsvi__uniforms(&e->rng, b, 0, BSVI__PURPOSE_SIR, 0, M, e->u);
            /* turn r into its cumulative sum, then invert it for each uniform */
            double c = 0.0;
            for (size_t i = 0; i < K; ++i) {
                c += e->r[i];
                e->r[i] = c;
            }
            for (size_t mm = 0; mm < M; ++mm) {
                const double x = e->u[mm] * c;
                size_t lo = 0, hi = K - 1;
                while (lo < hi) {
                    size_t mid = lo + (hi - lo) / 2;
                    if (e->r[mid] > x)
                        hi = mid;
                    else
                        lo = mid + 1;
                }
                /* the smallest slot with CDF > x has positive probability; if rounding
                 * put x at the total, take the last slot with positive probability */
                if (!(e->r[lo] > x))
                    while (lo > 0 && e->r[lo] == e->r[lo - 1]) --lo;
                ti[mm] = b;
                ts[mm] = lo;
                tc[mm] = 1.0 / (double)M;
                memcpy(tz + mm * d, bsvi__traj_row(t, t->z, b, lo), d * sizeof(double));
            }
        } else {
            for (size_t i = 0; i < K; ++i) {
                ti[i] = b;
                ts[i] = i;
                tc[i] = e->r[i];
            }
            for (size_t i = 0; i < K; ++i)
                memcpy(tz + i * d, bsvi__traj_row(t, t->z, b, i), d * sizeof(double));
        }
    }
    if (pi_kind)
        for (size_t i = 0; i < K; ++i) res->pigrad[i] /= (double)B;
    memcpy(res->enc_mu, t->enc_mu, B * d * sizeof(double));
    memcpy(res->enc_s, t->enc_s, B * d * sizeof(double));
    res->has_z = 1;
    res->has_enc = 1;
    commit(e, pi_kind ? K : 0, pi_kind);
    if (e->kind == BSVI_BOUND_BSVI_SIR) e->rng.counter++;
    return BSVI_OK;
}

/* ELBO and IWAE compute: the callbacks may re-enter the library, so the estimator, the
 * model and the proposal are held until it returns (issue 12: a callback computing on this
 * estimator again regrew and freed the workspace being read). */
static bsvi_status compute_sampled_held(bsvi_estimator *est, const bsvi_model *model,
                                        const bsvi_proposal *q) {
    bsvi__hold(&est->use);
    bsvi__hold(&model->use);
    bsvi__hold(&q->use);
    bsvi_status st = compute_sampled(est, model, q);
    bsvi__proposal_release(q);
    bsvi__model_release(model);
    if (bsvi__drop(&est->use) && est->doomed) estimator_free(est);
    return st;
}

bsvi_status bsvi_estimator_compute(bsvi_estimator *est, const bsvi_model *model,
                                   const bsvi_proposal *q, const bsvi_trajectory *traj) {
    if (!est) return BSVI_ERR_NULL_ARGUMENT;
    if (bsvi__busy(&est->use)) return refuse_in_use(est, "bsvi_estimator_compute");
    switch (est->kind) {
    case BSVI_BOUND_ELBO:
    case BSVI_BOUND_IWAE: {
        if (!model || !q)
            return bsvi__fail(est->err, BSVI_ERR_NULL_ARGUMENT,
                              "bsvi_estimator_compute: %s needs a model and a proposal",
                              kind_name(est->kind));
        bsvi_status st = bsvi__model_check(model, est->dim, est->err);
        if (st != BSVI_OK) return st;
        if (q->dim != est->dim)
            return bsvi__fail(est->err, BSVI_ERR_SIZE_MISMATCH,
                              "bsvi_estimator_compute: the proposal's dimension %zu differs from "
                              "the estimator's %zu",
                              q->dim, est->dim);
        return compute_sampled_held(est, model, q);
    }
    case BSVI_BOUND_SVI:
    case BSVI_BOUND_BSVI:
    case BSVI_BOUND_BSVI_DS:
    case BSVI_BOUND_BSVI_SIR:
        if (!traj)
            return bsvi__fail(est->err, BSVI_ERR_NULL_ARGUMENT,
                              "bsvi_estimator_compute: %s needs a trajectory",
                              kind_name(est->kind));
        if (!traj->data.valid)
            return bsvi__fail(est->err, BSVI_ERR_BAD_STATE,
                              "bsvi_estimator_compute: the trajectory is empty");
        if (traj->data.d != est->dim)
            return bsvi__fail(est->err, BSVI_ERR_SIZE_MISMATCH,
                              "bsvi_estimator_compute: the trajectory's dimension %zu differs "
                              "from the estimator's %zu",
                              traj->data.d, est->dim);
        return compute_traj(est, traj);
    case BSVI_BOUND_GIWAE:
        return bsvi__fail(est->err, BSVI_ERR_BAD_STATE,
                          "bsvi_estimator_compute: a generalised IWAE estimator takes "
                          "host-supplied terms: use bsvi_estimator_compute_terms");
    }
    return bsvi__fail(est->err, BSVI_ERR_BAD_STATE, "bsvi_estimator_compute: unknown kind");
}

bsvi_status bsvi_estimator_compute_terms(bsvi_estimator *est, size_t batch, size_t n,
                                         const double *log_joint, const double *log_proposal) {
    static const char fn[] = "bsvi_estimator_compute_terms";
    if (!est) return BSVI_ERR_NULL_ARGUMENT;
    if (bsvi__busy(&est->use)) return refuse_in_use(est, "bsvi_estimator_compute_terms");
    if (est->kind != BSVI_BOUND_GIWAE)
        return bsvi__fail(est->err, BSVI_ERR_BAD_STATE,
                          "%s: only generalised IWAE estimators take terms (this is %s)", fn,
                          kind_name(est->kind));
    if (!log_joint || !log_proposal)
        return bsvi__fail(est->err, BSVI_ERR_NULL_ARGUMENT,
                          "%s: log_joint and log_proposal must not be NULL", fn);
    if (batch == 0 || n == 0)
        return bsvi__fail(est->err, BSVI_ERR_ZERO_SIZE, "%s: batch and n must be >= 1", fn);
    if (batch > BSVI_MAX_BATCH || n > BSVI_MAX_STEPS + 1)
        return bsvi__fail(est->err, BSVI_ERR_OUT_OF_RANGE,
                          "%s: batch %zu or n %zu exceeds its limit", fn, batch, n);
    if (est->npi != 0 && est->npi != n)
        return bsvi__fail(est->err, BSVI_ERR_SIZE_MISMATCH,
                          "%s: pi has %zu entries but n = %zu", fn, est->npi, n);
    for (size_t i = 0; i < batch * n; ++i) {
        if (isnan(log_joint[i]) || log_joint[i] == INFINITY)
            return bsvi__fail(est->err, BSVI_ERR_BAD_VALUE,
                              "%s: log_joint[%zu] is %g (NaN and +infinity are refused)", fn, i,
                              log_joint[i]);
        if (isnan(log_proposal[i]) || log_proposal[i] == -INFINITY)
            return bsvi__fail(est->err, BSVI_ERR_BAD_VALUE,
                              "%s: log_proposal[%zu] is %g (NaN and -infinity are refused)", fn,
                              i, log_proposal[i]);
    }
    if (pi_reserve(est, n) || ws_reserve(est, n, 1, 0, n) ||
        result_reserve(&est->stage, batch, n, 0, n))
        return bsvi__fail(est->err, BSVI_ERR_NO_MEMORY, "%s: out of memory", fn);
    result *res = &est->stage;
    if (est->npi == 0)
        for (size_t i = 0; i < n; ++i) est->logpi[i] = -log((double)n);
    else
        log_pi(est->logits, n, est->logpi);
    memset(res->pigrad, 0, n * sizeof(double));
    for (size_t b = 0; b < batch; ++b) {
        for (size_t i = 0; i < n; ++i) {
            est->lw[i] = log_joint[b * n + i] - log_proposal[b * n + i];
            /* Reliability fix (found by fuzz/fuzz_api.c): finite terms such as
             * 1e308 - (-1e308) overflow to +infinity, and the softmax then made the
             * bound and every r NaN under BSVI_OK. */
            if (est->lw[i] == INFINITY)
                return bsvi__fail(est->err, BSVI_ERR_NUMERIC,
                                  "%s: log_joint - log_proposal overflows to +infinity at data "
                                  "point %zu, term %zu (%g - %g)",
                                  fn, b, i, log_joint[b * n + i], log_proposal[b * n + i]);
        }
        double bound = buffer_softmax(est->logpi, est->lw, n, est->r);
        if (bound == -INFINITY)
            return bsvi__fail(est->err, BSVI_ERR_NUMERIC,
                              "%s: every weight of data point %zu is zero", fn, b);
        res->bounds[b] = bound;
        for (size_t i = 0; i < n; ++i) {
            res->tidx[b * n + i] = b;
            res->tslot[b * n + i] = i;
            res->coef[b * n + i] = est->r[i];
            res->pigrad[i] += est->r[i] - exp(est->logpi[i]);
        }
    }
    for (size_t i = 0; i < n; ++i) res->pigrad[i] /= (double)batch;
    res->has_z = 0;
    res->has_enc = 0;
    commit(est, n, 1);
    return BSVI_OK;
}

/* ---- results ------------------------------------------------------------ */

size_t bsvi_estimator_batch(const bsvi_estimator *est) {
    return (est && est->cur.valid) ? est->cur.B : 0;
}

size_t bsvi_estimator_num_targets(const bsvi_estimator *est) {
    return (est && est->cur.valid) ? est->cur.B * est->cur.T : 0;
}

static bsvi_status need_result(const bsvi_estimator *est, const char *fn) {
    if (!est->cur.valid)
        return bsvi__fail((char *)est->err, BSVI_ERR_BAD_STATE,
                          "%s: no result yet (no successful compute)", fn);
    return BSVI_OK;
}

bsvi_status bsvi_estimator_get_bounds(const bsvi_estimator *est, double *out, size_t n) {
    static const char fn[] = "bsvi_estimator_get_bounds";
    if (!est) return BSVI_ERR_NULL_ARGUMENT;
    if (!out) return bsvi__fail((char *)est->err, BSVI_ERR_NULL_ARGUMENT, "%s: out is NULL", fn);
    bsvi_status st = need_result(est, fn);
    if (st != BSVI_OK) return st;
    if (n != est->cur.B)
        return bsvi__fail((char *)est->err, BSVI_ERR_SIZE_MISMATCH,
                          "%s: n = %zu but the batch has %zu data points", fn, n, est->cur.B);
    memcpy(out, est->cur.bounds, n * sizeof *out);
    return BSVI_OK;
}

bsvi_status bsvi_estimator_get_targets(const bsvi_estimator *est, size_t n, size_t *data_index,
                                       size_t *slot, double *z, double *coef) {
    static const char fn[] = "bsvi_estimator_get_targets";
    if (!est) return BSVI_ERR_NULL_ARGUMENT;
    bsvi_status st = need_result(est, fn);
    if (st != BSVI_OK) return st;
    const size_t nt = est->cur.B * est->cur.T;
    if (n != nt)
        return bsvi__fail((char *)est->err, BSVI_ERR_SIZE_MISMATCH,
                          "%s: n = %zu but there are %zu targets", fn, n, nt);
    if (z && !est->cur.has_z)
        return bsvi__fail((char *)est->err, BSVI_ERR_BAD_STATE,
                          "%s: generalised IWAE targets carry no latents (pass z = NULL)", fn);
    if (data_index) memcpy(data_index, est->cur.tidx, nt * sizeof *data_index);
    if (slot) memcpy(slot, est->cur.tslot, nt * sizeof *slot);
    if (z) memcpy(z, est->cur.tz, nt * est->cur.d * sizeof *z);
    if (coef) memcpy(coef, est->cur.coef, nt * sizeof *coef);
    return BSVI_OK;
}

bsvi_status bsvi_estimator_get_encoder_grad(const bsvi_estimator *est, size_t batch,
                                            double *d_mean, double *d_log_std) {
    static const char fn[] = "bsvi_estimator_get_encoder_grad";
    if (!est) return BSVI_ERR_NULL_ARGUMENT;
    bsvi_status st = need_result(est, fn);
    if (st != BSVI_OK) return st;
    if (!est->cur.has_enc)
        return bsvi__fail((char *)est->err, BSVI_ERR_BAD_STATE,
                          "%s: generalised IWAE has no encoder gradient", fn);
    if (batch != est->cur.B)
        return bsvi__fail((char *)est->err, BSVI_ERR_SIZE_MISMATCH,
                          "%s: batch = %zu but the result has %zu data points", fn, batch,
                          est->cur.B);
    const size_t n = batch * est->cur.d;
    if (d_mean) memcpy(d_mean, est->cur.enc_mu, n * sizeof *d_mean);
    if (d_log_std) memcpy(d_log_std, est->cur.enc_s, n * sizeof *d_log_std);
    return BSVI_OK;
}
