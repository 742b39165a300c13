/* Bound estimators: values, decoder targets and encoder gradients of one batch. */
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
    double *tlw;           /* B*T: each target's log w */
    double *teps;          /* B*T*d: each target's noise (ELBO, IWAE) */
    bsvi_bound kind;
    size_t nzero;          /* data points whose bound is -INFINITY */
    int has_eps;
    size_t cap_b, cap_bt, cap_btd, cap_bd, cap_tlw, cap_teps;
} result;

struct bsvi_estimator {
    size_t dim;
    bsvi__rng rng;
    bsvi_point_policy policy;
    bsvi_stats stats;
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
    free(r->tlw);
    free(r->teps);
    memset(r, 0, sizeof *r);
}

static int result_reserve(result *r, size_t B, size_t T, size_t d, int eps) {
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
    if (bsvi__grow(&r->tlw, &r->cap_tlw, bt ? bt : 1)) return 1;
    if (eps && bsvi__grow(&r->teps, &r->cap_teps, btd ? btd : 1)) return 1;
    r->has_eps = eps;
    r->nzero = 0;
    r->B = B;
    r->T = T;
    r->d = d;
    return 0;
}

static const char *const bound_names[] = {"elbo", "iwae", "svi", "bsvi",
                                           "bsvi-ds", "bsvi-sir", "giwae"};

const char *bsvi_bound_name(bsvi_bound kind) {
    const int k = (int)kind;
    return (k >= 0 && k < (int)(sizeof bound_names / sizeof *bound_names)) ? bound_names[k]
                                                                            : NULL;
}

bsvi_status bsvi_bound_from_name(const char *name, bsvi_bound *out) {
    if (!name || !out) return BSVI_ERR_NULL_ARGUMENT;
    for (size_t i = 0; i < sizeof bound_names / sizeof *bound_names; ++i)
        if (strcmp(name, bound_names[i]) == 0) {
            *out = (bsvi_bound)i;
            return BSVI_OK;
        }
    return BSVI_ERR_BAD_VALUE;
}

bsvi_status bsvi_estimator_create(size_t dim, bsvi_estimator **out) {
    if (!out) return BSVI_ERR_NULL_ARGUMENT;
    *out = NULL;
    if (dim == 0) return BSVI_ERR_ZERO_SIZE;
    if (dim > BSVI_MAX_DIM) return BSVI_ERR_OUT_OF_RANGE;
    bsvi_estimator *e = (bsvi_estimator *)calloc(1, sizeof *e);
    if (!e) return BSVI_ERR_NO_MEMORY;
    e->dim = dim;
    e->policy = BSVI_POINTS_REPORT;
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

size_t bsvi_estimator_dim(const bsvi_estimator *est) { return est ? est->dim : 0; }

const char *bsvi_estimator_last_error(const bsvi_estimator *est) {
    return est ? est->err : "NULL estimator handle";
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

bsvi_status bsvi_estimator_get_stream(const bsvi_estimator *est, uint64_t *seed,
                                      uint64_t *counter, uint64_t *id_offset) {
    if (!est) return BSVI_ERR_NULL_ARGUMENT;
    if (seed) *seed = est->rng.seed;
    if (counter) *counter = est->rng.counter;
    if (id_offset) *id_offset = est->rng.id_offset;
    return BSVI_OK;
}

bsvi_status bsvi_estimator_set_point_policy(bsvi_estimator *est, bsvi_point_policy policy) {
    if (!est) return BSVI_ERR_NULL_ARGUMENT;
    if (bsvi__busy(&est->use)) return refuse_in_use(est, "bsvi_estimator_set_point_policy");
    if (policy != BSVI_POINTS_REPORT && policy != BSVI_POINTS_FAIL)
        return bsvi__fail(est->err, BSVI_ERR_BAD_VALUE,
                          "bsvi_estimator_set_point_policy: unknown policy %d", (int)policy);
    est->policy = policy;
    return BSVI_OK;
}

bsvi_status bsvi_estimator_get_stats(const bsvi_estimator *est, bsvi_stats *out) {
    if (!est) return BSVI_ERR_NULL_ARGUMENT;
    if (!out)
        return bsvi__fail((char *)est->err, BSVI_ERR_NULL_ARGUMENT,
                          "bsvi_estimator_get_stats: out is NULL");
    *out = est->stats;
    return BSVI_OK;
}

bsvi_status bsvi_estimator_reset_stats(bsvi_estimator *est) {
    if (!est) return BSVI_ERR_NULL_ARGUMENT;
    if (bsvi__busy(&est->use)) return refuse_in_use(est, "bsvi_estimator_reset_stats");
    memset(&est->stats, 0, sizeof est->stats);
    return BSVI_OK;
}

/* ---- compute ------------------------------------------------------------ */

static int ws_reserve(bsvi_estimator *e, size_t rows, size_t d, int gscratch, size_t slots,
                      size_t M) {
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
    size_t ns = slots + M;
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

/* Commits the staged result (swaps buffers) and counts it. */
static void commit(bsvi_estimator *e, bsvi_bound kind, const bsvi_stats *calls) {
    result *res = &e->stage;
    res->kind = kind;
    res->valid = 1;
    bsvi_stats s = *calls;
    s.calls = 1;
    s.data_points = res->B;
    s.zero_points = res->nzero;
    bsvi__stats_add(&e->stats, &s);
    result tmp = e->cur;
    e->cur = e->stage;
    e->stage = tmp;
    e->stage.valid = 0;
}

/* A data point of zero density: counted, or the whole compute fails under the FAIL policy. */
static bsvi_status zero_point(bsvi_estimator *e, const char *fn, const char *what, size_t b) {
    if (e->policy == BSVI_POINTS_FAIL)
        return bsvi__fail(e->err, BSVI_ERR_NUMERIC,
                          "%s: %s of data point %zu is zero (the point policy is FAIL)", fn,
                          what, b);
    e->stage.nzero++;
    return BSVI_OK;
}

static bsvi_status compute_sampled(bsvi_estimator *e, const bsvi_model *model,
                                   const bsvi_proposal *q, bsvi_bound kind, size_t S,
                                   bsvi_grad_form form, const char *fn) {
    const size_t d = e->dim, B = q->batch;
    size_t rows;
    if (bsvi__mul_overflow(B, S, &rows))
        return bsvi__fail(e->err, BSVI_ERR_OUT_OF_RANGE, "%s: batch times K overflows", fn);
    if (form == BSVI_GRAD_ANALYTIC_KL && model->prior != NULL)
        return bsvi__fail(e->err, BSVI_ERR_BAD_STATE,
                          "%s: the analytic-KL form needs the standard normal prior, but the "
                          "model has a host prior",
                          fn);
    /* K * dim above 2^33 would repeat normals within a data point's stream (see rng.h):
     * refused before allocating. */
    if ((uint64_t)S * (uint64_t)d > BSVI__MAX_STREAM_NORMALS)
        return bsvi__fail(e->err, BSVI_ERR_OUT_OF_RANGE,
                          "%s: K * dim = %zu * %zu exceeds the 2^33 normals one data point's "
                          "stream holds",
                          fn, S, d);
    if (ws_reserve(e, rows, d, model->prior != NULL, 1, 0) ||
        result_reserve(&e->stage, B, S, d, 1))
        return bsvi__fail(e->err, BSVI_ERR_NO_MEMORY, "%s: out of memory", fn);
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
    const int analytic = (form == BSVI_GRAD_ANALYTIC_KL);
    bsvi_stats calls = {0};
    bsvi_status st = bsvi__model_eval(model, rows, e->z, e->idx, e->lik, e->prior,
                                      analytic ? BSVI__GRAD_LIK : BSVI__GRAD_JOINT, e->g,
                                      e->gscratch, &calls, e->err);
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
            res->tlw[b * S + s] = lw[s];
        }
        double *coef = res->coef + b * S;
        double bound;
        if (S == 1) {
            bound = lw[0]; /* the form only selects the encoder-gradient estimator */
            coef[0] = 1.0;
            if (lw[0] == -INFINITY) {
                if ((st = zero_point(e, fn, "the sample", b)) != BSVI_OK) return st;
                coef[0] = 0.0;
            }
        } else {
            double mx = -INFINITY, sm = 0.0;
            for (size_t s = 0; s < S; ++s) bsvi__lse_push(&mx, &sm, lw[s]);
            if (mx == -INFINITY) {
                if ((st = zero_point(e, fn, "every weight", b)) != BSVI_OK) return st;
                bound = -INFINITY;
                for (size_t s = 0; s < S; ++s) coef[s] = 0.0;
            } else {
                bound = bsvi__lse_value(mx, sm) - log((double)S);
                /* Normalised by the sum, not by exp(lw - lse): with |lw| huge
                 * (1e300 + log 2 == 1e300) tied weights would get coefficient 1 each. */
                for (size_t s = 0; s < S; ++s) coef[s] = exp(lw[s] - mx) / sm;
            }
        }
        res->bounds[b] = bound;
        double *dmu = res->enc_mu + b * d, *dsg = res->enc_s + b * d;
        memset(dmu, 0, d * sizeof *dmu);
        memset(dsg, 0, d * sizeof *dsg);
        for (size_t s = 0; s < S; ++s) {
            const size_t row = b * S + s;
            double wgt = coef[s];
            bsvi_grad_form f = form;
            if (f == BSVI_GRAD_DREG) wgt = coef[s] * coef[s];
            if (wgt == 0.0) continue;
            bsvi__grad_row(f, d, e->g + row * d, e->eps + row * d, mu, e->sig, wgt, dmu, dsg);
        }
        /* Finite but huge host gradients times sigma (up to e^30) can overflow, and
         * opposite infinities across samples give NaN: never returned with BSVI_OK. */
        for (size_t j = 0; j < d; ++j)
            if (!isfinite(dmu[j]) || !isfinite(dsg[j]))
                return bsvi__fail(e->err, BSVI_ERR_NUMERIC,
                                  "%s: the encoder gradient of data point %zu is not finite "
                                  "(coordinate %zu): the host's gradient or the proposal's "
                                  "scale is too large",
                                  fn, b, j);
        for (size_t s = 0; s < S; ++s) {
            res->tidx[b * S + s] = b;
            res->tslot[b * S + s] = s;
        }
    }
    memcpy(res->tz, e->z, rows * d * sizeof(double));
    memcpy(res->teps, e->eps, rows * d * sizeof(double));
    res->has_z = 1;
    res->has_enc = 1;
    commit(e, kind, &calls);
    e->rng.counter++;
    return BSVI_OK;
}

/* SVI-k, BSVI (BSVI-DS) and BSVI-SIR from a trajectory. kind is SVI, BSVI or BSVI_SIR
 * (BSVI over a double-sampled trajectory is recorded as BSVI-DS); M is SIR's. */
static bsvi_status compute_traj(bsvi_estimator *e, const bsvi_trajectory *traj,
                                const bsvi_buffer_weights *pi, bsvi_bound kind, size_t M,
                                const char *fn) {
    if (!traj) return bsvi__fail(e->err, BSVI_ERR_NULL_ARGUMENT, "%s: the trajectory is NULL", fn);
    const bsvi__trajdata *t = &traj->data;
    if (!t->valid) return bsvi__fail(e->err, BSVI_ERR_BAD_STATE, "%s: the trajectory is empty", fn);
    if (t->d != e->dim)
        return bsvi__fail(e->err, BSVI_ERR_SIZE_MISMATCH,
                          "%s: the trajectory's dimension %zu differs from the estimator's %zu",
                          fn, t->d, e->dim);
    const size_t d = e->dim, B = t->B, K = t->k + 1;
    if (pi && kind != BSVI_BOUND_SVI && pi->n != K)
        return bsvi__fail(e->err, BSVI_ERR_SIZE_MISMATCH,
                          "%s: pi has %zu slots but the trajectory has k+1 = %zu", fn, pi->n, K);
    const size_t T = kind == BSVI_BOUND_SVI ? 1 : kind == BSVI_BOUND_BSVI_SIR ? M : K;
    if (ws_reserve(e, 1, d, 0, K, kind == BSVI_BOUND_BSVI_SIR ? M : 0) ||
        result_reserve(&e->stage, B, T, d, 0))
        return bsvi__fail(e->err, BSVI_ERR_NO_MEMORY, "%s: out of memory", fn);
    result *res = &e->stage;
    if (kind != BSVI_BOUND_SVI) bsvi__log_pi(pi, K, e->logpi);
    bsvi_status st;
    for (size_t b = 0; b < B; ++b) {
        const double *lw = t->logw + b * K;
        size_t *ti = res->tidx + b * T, *ts = res->tslot + b * T;
        double *tc = res->coef + b * T, *tz = res->tz + b * T * d, *tl = res->tlw + b * T;
        if (kind == BSVI_BOUND_SVI) {
            res->bounds[b] = lw[K - 1];
            ti[0] = b;
            ts[0] = K - 1;
            tc[0] = 1.0;
            tl[0] = lw[K - 1];
            memcpy(tz, bsvi__traj_row(t, t->z, b, K - 1), d * sizeof(double));
            if (lw[K - 1] == -INFINITY) {
                if ((st = zero_point(e, fn, "the last weight", b)) != BSVI_OK) return st;
                tc[0] = 0.0;
            }
            continue;
        }
        const double bound = bsvi__buffer_softmax(e->logpi, lw, K, e->r);
        res->bounds[b] = bound;
        if (bound == -INFINITY) {
            if ((st = zero_point(e, fn, "every buffer weight", b)) != BSVI_OK) return st;
            for (size_t i = 0; i < T; ++i) {
                const size_t slot = kind == BSVI_BOUND_BSVI_SIR ? 0 : i;
                ti[i] = b;
                ts[i] = slot;
                tc[i] = 0.0;
                tl[i] = lw[slot];
                memcpy(tz + i * d, bsvi__traj_row(t, t->z, b, slot), d * sizeof(double));
            }
            continue;
        }
        if (kind == BSVI_BOUND_BSVI_SIR) {
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
                tl[mm] = lw[lo];
                memcpy(tz + mm * d, bsvi__traj_row(t, t->z, b, lo), d * sizeof(double));
            }
        } else {
            for (size_t i = 0; i < K; ++i) {
                ti[i] = b;
                ts[i] = i;
                tc[i] = e->r[i];
                tl[i] = lw[i];
            }
            for (size_t i = 0; i < K; ++i)
                memcpy(tz + i * d, bsvi__traj_row(t, t->z, b, i), d * sizeof(double));
        }
    }
    memcpy(res->enc_mu, t->enc_mu, B * d * sizeof(double));
    memcpy(res->enc_s, t->enc_s, B * d * sizeof(double));
    res->has_z = 1;
    res->has_enc = 1;
    const bsvi_stats none = {0};
    commit(e, (kind == BSVI_BOUND_BSVI && t->ds) ? BSVI_BOUND_BSVI_DS : kind, &none);
    if (kind == BSVI_BOUND_BSVI_SIR) e->rng.counter++;
    return BSVI_OK;
}

/* ELBO and IWAE: the callbacks may re-enter the library, so the estimator, the model and
 * the proposal are held until the compute returns. */
static bsvi_status compute_sampled_held(bsvi_estimator *est, const bsvi_model *model,
                                        const bsvi_proposal *q, bsvi_bound kind, size_t S,
                                        bsvi_grad_form form, const char *fn) {
    if (!model || !q)
        return bsvi__fail(est->err, BSVI_ERR_NULL_ARGUMENT,
                          "%s: the model and the proposal must not be NULL", fn);
    bsvi_status st = bsvi__model_check(model, est->dim, est->err);
    if (st != BSVI_OK) return st;
    if (q->dim != est->dim)
        return bsvi__fail(est->err, BSVI_ERR_SIZE_MISMATCH,
                          "%s: the proposal's dimension %zu differs from the estimator's %zu",
                          fn, q->dim, est->dim);
    bsvi__hold(&est->use);
    bsvi__hold(&model->use);
    bsvi__hold(&q->use);
    st = compute_sampled(est, model, q, kind, S, form, fn);
    bsvi__proposal_release(q);
    bsvi__model_release(model);
    if (bsvi__drop(&est->use) && est->doomed) estimator_free(est);
    return st;
}

bsvi_status bsvi_estimator_elbo(bsvi_estimator *est, const bsvi_model *model,
                                const bsvi_proposal *q, bsvi_grad_form form) {
    static const char fn[] = "bsvi_estimator_elbo";
    if (!est) return BSVI_ERR_NULL_ARGUMENT;
    if (bsvi__busy(&est->use)) return refuse_in_use(est, fn);
    if (form != BSVI_GRAD_PATHWISE && form != BSVI_GRAD_STL && form != BSVI_GRAD_ANALYTIC_KL)
        return bsvi__fail(est->err, BSVI_ERR_BAD_VALUE,
                          "%s: gradient form %d is not one of pathwise, STL, analytic KL", fn,
                          (int)form);
    return compute_sampled_held(est, model, q, BSVI_BOUND_ELBO, 1, form, fn);
}

bsvi_status bsvi_estimator_iwae(bsvi_estimator *est, const bsvi_model *model,
                                const bsvi_proposal *q, size_t K, bsvi_grad_form form) {
    static const char fn[] = "bsvi_estimator_iwae";
    if (!est) return BSVI_ERR_NULL_ARGUMENT;
    if (bsvi__busy(&est->use)) return refuse_in_use(est, fn);
    if (K == 0) return bsvi__fail(est->err, BSVI_ERR_ZERO_SIZE, "%s: K is 0", fn);
    if (K > BSVI_MAX_SAMPLES)
        return bsvi__fail(est->err, BSVI_ERR_OUT_OF_RANGE, "%s: K = %zu exceeds %zu", fn, K,
                          (size_t)BSVI_MAX_SAMPLES);
    if (form == BSVI_GRAD_STL)
        return bsvi__fail(est->err, BSVI_ERR_BAD_VALUE,
                          "%s: the STL form is biased for IWAE (Tucker et al. 2018); use "
                          "BSVI_GRAD_DREG, its unbiased doubly reparameterised form",
                          fn);
    if (form != BSVI_GRAD_PATHWISE && form != BSVI_GRAD_DREG)
        return bsvi__fail(est->err, BSVI_ERR_BAD_VALUE,
                          "%s: gradient form %d is not one of pathwise, DReG", fn, (int)form);
    return compute_sampled_held(est, model, q, BSVI_BOUND_IWAE, K, form, fn);
}

bsvi_status bsvi_estimator_svi(bsvi_estimator *est, const bsvi_trajectory *traj) {
    if (!est) return BSVI_ERR_NULL_ARGUMENT;
    if (bsvi__busy(&est->use)) return refuse_in_use(est, "bsvi_estimator_svi");
    return compute_traj(est, traj, NULL, BSVI_BOUND_SVI, 0, "bsvi_estimator_svi");
}

bsvi_status bsvi_estimator_bsvi(bsvi_estimator *est, const bsvi_trajectory *traj,
                                const bsvi_buffer_weights *pi) {
    if (!est) return BSVI_ERR_NULL_ARGUMENT;
    if (bsvi__busy(&est->use)) return refuse_in_use(est, "bsvi_estimator_bsvi");
    return compute_traj(est, traj, pi, BSVI_BOUND_BSVI, 0, "bsvi_estimator_bsvi");
}

bsvi_status bsvi_estimator_bsvi_sir(bsvi_estimator *est, const bsvi_trajectory *traj,
                                    const bsvi_buffer_weights *pi, size_t M) {
    static const char fn[] = "bsvi_estimator_bsvi_sir";
    if (!est) return BSVI_ERR_NULL_ARGUMENT;
    if (bsvi__busy(&est->use)) return refuse_in_use(est, fn);
    if (M == 0) return bsvi__fail(est->err, BSVI_ERR_ZERO_SIZE, "%s: M is 0", fn);
    if (M > BSVI_MAX_SAMPLES)
        return bsvi__fail(est->err, BSVI_ERR_OUT_OF_RANGE, "%s: M = %zu exceeds %zu", fn, M,
                          (size_t)BSVI_MAX_SAMPLES);
    return compute_traj(est, traj, pi, BSVI_BOUND_BSVI_SIR, M, fn);
}

bsvi_status bsvi_estimator_giwae(bsvi_estimator *est, size_t batch, size_t n,
                                 const double *log_joint, const double *log_proposal,
                                 const bsvi_buffer_weights *pi) {
    static const char fn[] = "bsvi_estimator_giwae";
    if (!est) return BSVI_ERR_NULL_ARGUMENT;
    if (bsvi__busy(&est->use)) return refuse_in_use(est, fn);
    if (!log_joint || !log_proposal)
        return bsvi__fail(est->err, BSVI_ERR_NULL_ARGUMENT,
                          "%s: log_joint and log_proposal must not be NULL", fn);
    if (batch == 0 || n == 0)
        return bsvi__fail(est->err, BSVI_ERR_ZERO_SIZE, "%s: batch and n must be >= 1", fn);
    if (batch > BSVI_MAX_BATCH || n > BSVI_MAX_STEPS + 1)
        return bsvi__fail(est->err, BSVI_ERR_OUT_OF_RANGE,
                          "%s: batch %zu or n %zu exceeds its limit", fn, batch, n);
    if (pi && pi->n != n)
        return bsvi__fail(est->err, BSVI_ERR_SIZE_MISMATCH, "%s: pi has %zu slots but n = %zu",
                          fn, pi->n, n);
    size_t at;
    bsvi_status st = bsvi__check_terms(batch * n, log_joint, log_proposal, &at);
    if (st == BSVI_ERR_BAD_VALUE)
        return bsvi__fail(est->err, st,
                          "%s: term %zu is log_joint %g, log_proposal %g (NaN, log_joint "
                          "+infinity and log_proposal -infinity are refused)",
                          fn, at, log_joint[at], log_proposal[at]);
    if (st != BSVI_OK)
        return bsvi__fail(est->err, st,
                          "%s: log_joint - log_proposal overflows to +infinity at data point "
                          "%zu, term %zu (%g - %g)",
                          fn, at / n, at % n, log_joint[at], log_proposal[at]);
    if (ws_reserve(est, n, 1, 0, n, 0) || result_reserve(&est->stage, batch, n, 0, 0))
        return bsvi__fail(est->err, BSVI_ERR_NO_MEMORY, "%s: out of memory", fn);
    result *res = &est->stage;
    bsvi__log_pi(pi, n, est->logpi);
    for (size_t b = 0; b < batch; ++b) {
        for (size_t i = 0; i < n; ++i) {
            est->lw[i] = log_joint[b * n + i] - log_proposal[b * n + i];
            res->tidx[b * n + i] = b;
            res->tslot[b * n + i] = i;
            res->tlw[b * n + i] = est->lw[i];
        }
        const double bound = bsvi__buffer_softmax(est->logpi, est->lw, n, est->r);
        res->bounds[b] = bound;
        if (bound == -INFINITY) {
            if ((st = zero_point(est, fn, "every weight", b)) != BSVI_OK) return st;
            for (size_t i = 0; i < n; ++i) res->coef[b * n + i] = 0.0;
            continue;
        }
        for (size_t i = 0; i < n; ++i) res->coef[b * n + i] = est->r[i];
    }
    res->has_z = 0;
    res->has_enc = 0;
    const bsvi_stats none = {0};
    commit(est, BSVI_BOUND_GIWAE, &none);
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

size_t bsvi_estimator_num_zero_points(const bsvi_estimator *est) {
    return (est && est->cur.valid) ? est->cur.nzero : 0;
}

bsvi_status bsvi_estimator_result_kind(const bsvi_estimator *est, bsvi_bound *out) {
    if (!est) return BSVI_ERR_NULL_ARGUMENT;
    if (!out)
        return bsvi__fail((char *)est->err, BSVI_ERR_NULL_ARGUMENT,
                          "bsvi_estimator_result_kind: out is NULL");
    if (!est->cur.valid)
        return bsvi__fail((char *)est->err, BSVI_ERR_BAD_STATE,
                          "bsvi_estimator_result_kind: no result yet (no successful compute)");
    *out = est->cur.kind;
    return BSVI_OK;
}

bsvi_status bsvi_estimator_get_target_log_weights(const bsvi_estimator *est, size_t n,
                                                  double *log_w) {
    static const char fn[] = "bsvi_estimator_get_target_log_weights";
    if (!est) return BSVI_ERR_NULL_ARGUMENT;
    if (!log_w)
        return bsvi__fail((char *)est->err, BSVI_ERR_NULL_ARGUMENT, "%s: log_w is NULL", fn);
    bsvi_status st = need_result(est, fn);
    if (st != BSVI_OK) return st;
    const size_t nt = est->cur.B * est->cur.T;
    if (n != nt)
        return bsvi__fail((char *)est->err, BSVI_ERR_SIZE_MISMATCH,
                          "%s: n = %zu but there are %zu targets", fn, n, nt);
    memcpy(log_w, est->cur.tlw, nt * sizeof *log_w);
    return BSVI_OK;
}

bsvi_status bsvi_estimator_get_noise(const bsvi_estimator *est, size_t n, double *eps) {
    static const char fn[] = "bsvi_estimator_get_noise";
    if (!est) return BSVI_ERR_NULL_ARGUMENT;
    if (!eps) return bsvi__fail((char *)est->err, BSVI_ERR_NULL_ARGUMENT, "%s: eps is NULL", fn);
    bsvi_status st = need_result(est, fn);
    if (st != BSVI_OK) return st;
    if (!est->cur.has_eps)
        return bsvi__fail((char *)est->err, BSVI_ERR_BAD_STATE,
                          "%s: only ELBO and IWAE results draw their own noise (this is %s)", fn,
                          bsvi_bound_name(est->cur.kind));
    const size_t nt = est->cur.B * est->cur.T;
    if (n != nt)
        return bsvi__fail((char *)est->err, BSVI_ERR_SIZE_MISMATCH,
                          "%s: n = %zu but there are %zu targets", fn, n, nt);
    memcpy(eps, est->cur.teps, nt * est->cur.d * sizeof *eps);
    return BSVI_OK;
}
