/* The host's model: batched likelihood and prior callbacks, checked on every call. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

bsvi_status bsvi_model_create(size_t dim, bsvi_model **out) {
    if (!out) return BSVI_ERR_NULL_ARGUMENT;
    *out = NULL;
    if (dim == 0) return BSVI_ERR_ZERO_SIZE;
    if (dim > BSVI_MAX_DIM) return BSVI_ERR_OUT_OF_RANGE;
    bsvi_model *m = (bsvi_model *)calloc(1, sizeof *m);
    if (!m) return BSVI_ERR_NO_MEMORY;
    m->dim = dim;
    *out = m;
    return BSVI_OK;
}

void bsvi_model_destroy(bsvi_model *model) {
    if (!model) return;
    if (bsvi__busy(&model->use)) { /* held by a running call: freed at its release */
        model->doomed = 1;
        return;
    }
    free(model);
}

void bsvi__model_release(const bsvi_model *m) {
    if (bsvi__drop(&m->use) && m->doomed) free((bsvi_model *)m);
}

/* Error messages of a model go through the shared variant: one model may be used by
 * several threads (bsvi_model_log_joint included). */
#define MFAIL(m, st, ...) bsvi__fail_shared((m)->err, &(m)->errlock, (st), __VA_ARGS__)

static bsvi_status refuse_in_use(bsvi_model *m, const char *fn) {
    return MFAIL(m, BSVI_ERR_REENTRANT,
                 "%s: the model is in use by a running call (re-entered from a callback?); it "
                 "can be read but not changed until that call returns",
                 fn);
}

bsvi_status bsvi_model_set_likelihood(bsvi_model *model, bsvi_density_fn fn, void *user_data) {
    if (!model) return BSVI_ERR_NULL_ARGUMENT;
    if (bsvi__busy(&model->use)) return refuse_in_use(model, "bsvi_model_set_likelihood");
    if (!fn)
        return MFAIL(model, BSVI_ERR_NULL_ARGUMENT,
                     "bsvi_model_set_likelihood: the callback is NULL");
    model->lik = fn;
    model->lik_data = user_data;
    return BSVI_OK;
}

bsvi_status bsvi_model_set_prior_standard_normal(bsvi_model *model) {
    if (!model) return BSVI_ERR_NULL_ARGUMENT;
    if (bsvi__busy(&model->use))
        return refuse_in_use(model, "bsvi_model_set_prior_standard_normal");
    model->prior = NULL;
    model->prior_data = NULL;
    return BSVI_OK;
}

bsvi_status bsvi_model_set_prior(bsvi_model *model, bsvi_density_fn fn, void *user_data) {
    if (!model) return BSVI_ERR_NULL_ARGUMENT;
    if (bsvi__busy(&model->use)) return refuse_in_use(model, "bsvi_model_set_prior");
    if (!fn)
        return MFAIL(model, BSVI_ERR_NULL_ARGUMENT, "bsvi_model_set_prior: the callback is NULL");
    model->prior = fn;
    model->prior_data = user_data;
    return BSVI_OK;
}

size_t bsvi_model_dim(const bsvi_model *model) { return model ? model->dim : 0; }

int bsvi_model_has_standard_normal_prior(const bsvi_model *model) {
    return (model && model->prior == NULL) ? 1 : 0;
}

const char *bsvi_model_last_error(const bsvi_model *model) {
    return model ? model->err : "NULL model handle";
}

bsvi_status bsvi__model_check(const bsvi_model *m, size_t dim, char *err) {
    if (!m->lik)
        return bsvi__fail(err, BSVI_ERR_BAD_STATE, "the model has no likelihood callback");
    if (m->dim != dim)
        return bsvi__fail(err, BSVI_ERR_SIZE_MISMATCH,
                          "the model's dimension %zu differs from the handle's %zu", m->dim, dim);
    return BSVI_OK;
}

/* Bit 63 of the result is set when some x[i] (i < n) is not finite: integer operations
 * that vectorise (exponent all ones, found without floating-point compares). */
BSVI__CLONES static uint64_t any_nonfinite(const double *x, size_t n) {
    uint64_t acc = 0;
    for (size_t i = 0; i < n; ++i) {
        uint64_t u;
        memcpy(&u, &x[i], sizeof u);
        acc |= (u & 0x7FF0000000000000ull) + 0x0010000000000000ull;
    }
    return acc >> 63;
}

/* Validates a callback's output; zeroes gradient rows of zero-density rows. */
static bsvi_status check_output_rows(const char *what, size_t n, size_t d, const size_t *idx,
                                const double *lp, double *g, char *err) {
    for (size_t r = 0; r < n; ++r) {
        double v = lp[r];
        if (isnan(v) || v == INFINITY)
            return bsvi__fail(err, BSVI_ERR_CALLBACK_NAN,
                              "the %s callback returned %s as log density at row %zu "
                              "(data point %zu)",
                              what, isnan(v) ? "NaN (or did not write it)" : "+infinity", r,
                              idx[r]);
        if (!g) continue;
        double *gr = g + r * d;
        if (v == -INFINITY) {
            memset(gr, 0, d * sizeof *gr);
            continue;
        }
        for (size_t j = 0; j < d; ++j)
            if (!isfinite(gr[j]))
                return bsvi__fail(err, BSVI_ERR_CALLBACK_NAN,
                                  "the %s callback returned a non-finite (or unwritten) gradient "
                                  "at row %zu (data point %zu), coordinate %zu",
                                  what, r, idx[r], j);
    }
    return BSVI_OK;
}

/* check_output_rows, answered at once when every value is finite (the usual case); any
 * other output is scanned row by row, so that the first bad row is the one reported. */
static bsvi_status check_output(const char *what, size_t n, size_t d, const size_t *idx,
                                const double *lp, double *g, char *err) {
    if (!any_nonfinite(lp, n) && (!g || !any_nonfinite(g, n * d))) return BSVI_OK;
    return check_output_rows(what, n, d, idx, lp, g, err);
}

/* Sum of squares of n rows of z (in order j = 0..d-1 for each row), four rows at a time so
 * that their sequential sums overlap. */
BSVI__CLONES static void row_sumsq(size_t n, size_t d, const double *z, double *ss) {
    size_t r = 0;
    for (; r + 4 <= n; r += 4) {
        const double *z0 = z + r * d, *z1 = z0 + d, *z2 = z1 + d, *z3 = z2 + d;
        double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
        for (size_t j = 0; j < d; ++j) {
            s0 += z0[j] * z0[j];
            s1 += z1[j] * z1[j];
            s2 += z2[j] * z2[j];
            s3 += z3[j] * z3[j];
        }
        ss[r] = s0, ss[r + 1] = s1, ss[r + 2] = s2, ss[r + 3] = s3;
    }
    for (; r < n; ++r) {
        const double *zr = z + r * d;
        double s0 = 0.0;
        for (size_t j = 0; j < d; ++j) s0 += zr[j] * zr[j];
        ss[r] = s0;
    }
}

BSVI__CLONES static void sub_rows(size_t d, double *restrict g, const double *restrict z) {
    for (size_t j = 0; j < d; ++j) g[j] -= z[j];
}

bsvi_status bsvi__model_eval(const bsvi_model *m, size_t n, const double *z, const size_t *idx,
                             double *lik, double *prior, int grad_mode, double *g,
                             double *gscratch, bsvi_stats *stats, char *err) {
    const size_t d = m->dim;
    double *gl = (grad_mode == BSVI__GRAD_NONE) ? NULL : g;
    /* The library never reads an output the callback did not write: every output it asks
     * for is pre-filled with NaN, so an entry left unwritten (a callback that fills only
     * some rows) fails check_output as BSVI_ERR_CALLBACK_NAN, deterministically, instead
     * of passing uninitialised memory on. */
    for (size_t r = 0; r < n; ++r) lik[r] = NAN;
    if (gl)
        for (size_t i = 0; i < n * d; ++i) gl[i] = NAN;
    int rc = m->lik(n, d, z, idx, lik, gl, m->lik_data);
    if (stats) {
        stats->likelihood_calls++;
        stats->likelihood_rows += n;
    }
    if (rc != 0)
        return bsvi__fail(err, BSVI_ERR_CALLBACK_FAILED,
                          "the likelihood callback failed with code %d", rc);
    bsvi_status st = check_output("likelihood", n, d, idx, lik, gl, err);
    if (st != BSVI_OK) return st;

    if (m->prior == NULL) {
        const double c = -0.5 * (double)d * BSVI__LOG_2PI;
        row_sumsq(n, d, z, prior);
        for (size_t r = 0; r < n; ++r) prior[r] = c - 0.5 * prior[r];
        if (grad_mode == BSVI__GRAD_JOINT) {
            for (size_t r = 0; r < n; ++r) {
                if (lik[r] == -INFINITY) continue;
                sub_rows(d, g + r * d, z + r * d);
            }
        }
        return BSVI_OK;
    }

    double *gp = (grad_mode == BSVI__GRAD_JOINT) ? gscratch : NULL;
    for (size_t r = 0; r < n; ++r) prior[r] = NAN; /* unwritten entries: see above */
    if (gp)
        for (size_t i = 0; i < n * d; ++i) gp[i] = NAN;
    rc = m->prior(n, d, z, idx, prior, gp, m->prior_data);
    if (stats) {
        stats->prior_calls++;
        stats->prior_rows += n;
    }
    if (rc != 0)
        return bsvi__fail(err, BSVI_ERR_CALLBACK_FAILED, "the prior callback failed with code %d",
                          rc);
    st = check_output("prior", n, d, idx, prior, gp, err);
    if (st != BSVI_OK) return st;
    /* A successful evaluation never has log p(x|z) + log p(z) = +infinity, which would
     * turn log w, every bound and the softmax weights r into +inf/NaN under BSVI_OK. Each
     * term is below +infinity (check_output), but two finite huge ones (1e308 + 1e308)
     * can still sum to it: the sum is refused here, once for every caller (SVI,
     * estimators, evaluator, bsvi_model_log_joint). The built-in prior is at most 0, so
     * that path above needs no such check. */
    for (size_t r = 0; r < n; ++r)
        if (lik[r] + prior[r] == INFINITY)
            return bsvi__fail(err, BSVI_ERR_CALLBACK_NAN,
                              "log p(x|z) + log p(z) overflows to +infinity at row %zu (data "
                              "point %zu): the likelihood returned %g and the prior %g",
                              r, idx[r], lik[r], prior[r]);
    if (gp) {
        for (size_t r = 0; r < n; ++r) {
            double *gr = g + r * d;
            const double *pr = gp + r * d;
            if (lik[r] == -INFINITY || prior[r] == -INFINITY) {
                memset(gr, 0, d * sizeof *gr);
                continue;
            }
            for (size_t j = 0; j < d; ++j) gr[j] += pr[j];
        }
    }
    return BSVI_OK;
}

bsvi_status bsvi_model_log_joint(bsvi_model *model, size_t n, const double *z,
                                 const size_t *data_index, double *log_joint, double *grad) {
    if (!model) return BSVI_ERR_NULL_ARGUMENT;
    if (!z || !data_index || !log_joint)
        return MFAIL(model, BSVI_ERR_NULL_ARGUMENT,
                          "bsvi_model_log_joint: z, data_index and log_joint must not be NULL");
    if (n == 0) return MFAIL(model, BSVI_ERR_ZERO_SIZE, "bsvi_model_log_joint: n is 0");
    if (!model->lik)
        return MFAIL(model, BSVI_ERR_BAD_STATE,
                          "bsvi_model_log_joint: no likelihood callback registered");
    const size_t d = model->dim;
    size_t nd;
    if (bsvi__mul_overflow(n, d, &nd) || nd > SIZE_MAX / 3 - 2 * n)
        return MFAIL(model, BSVI_ERR_OUT_OF_RANGE, "bsvi_model_log_joint: n too large");
    /* Only finite z are evaluated, as inside the library (whose own latents are always
     * finite): a non-finite z would make the built-in standard normal prior, and so
     * log_joint, NaN under BSVI_OK. A host passing one gets BSVI_ERR_BAD_VALUE before any
     * callback runs or any output is written. */
    for (size_t i = 0; i < nd; ++i)
        if (!isfinite(z[i]))
            return MFAIL(model, BSVI_ERR_BAD_VALUE,
                              "bsvi_model_log_joint: z of row %zu, coordinate %zu is not finite",
                              i / d, i % d);
    /* lik, prior, g, gscratch */
    double *buf = (double *)malloc((2 * n + 2 * nd) * sizeof(double));
    if (!buf)
        return MFAIL(model, BSVI_ERR_NO_MEMORY, "bsvi_model_log_joint: out of memory");
    double *lik = buf, *prior = buf + n, *g = buf + 2 * n, *gs = buf + 2 * n + nd;
    /* The callbacks may re-enter the library: hold the model (its changes are refused and
     * its destroy deferred until this call returns). The message is formatted aside and
     * stored through the shared variant (several threads may evaluate one model). */
    char msg[BSVI__ERRLEN];
    bsvi__hold(&model->use);
    bsvi_status st = bsvi__model_eval(model, n, z, data_index, lik, prior,
                                      grad ? BSVI__GRAD_JOINT : BSVI__GRAD_NONE, g, gs, NULL,
                                      msg);
    if (st == BSVI_OK) {
        for (size_t r = 0; r < n; ++r) log_joint[r] = lik[r] + prior[r];
        if (grad) memcpy(grad, g, nd * sizeof *g);
    } else {
        MFAIL(model, st, "%s", msg);
    }
    free(buf);
    bsvi__model_release(model);
    return st;
}
