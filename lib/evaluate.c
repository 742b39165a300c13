/* Log-likelihood estimates and ELBO*, KL*, Reconstruction*, streamed in bounded memory. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct bsvi_evaluator {
    size_t dim, chunk;
    bsvi_progress_fn progress;
    void *progress_data;
    bsvi__rng rng;
    bsvi__svi_ws ws;
    double *eps, *z, *g, *lik, *prior; /* chunk*d (eps|z), chunk*d (g: host-prior scratch), chunk (lik|prior) */
    size_t *idx;
    double *acc;                       /* B*4 accumulators */
    double *fmu, *fs;                  /* B*d final proposal */
    size_t cap_rowsd, cap_rows, cap_idx, cap_acc, cap_bd;
    char err[BSVI__ERRLEN];
};

#define BSVI__MAX_EVAL_SAMPLES ((size_t)1 << 32)

bsvi_status bsvi_evaluator_create(size_t dim, bsvi_evaluator **out) {
    if (!out) return BSVI_ERR_NULL_ARGUMENT;
    *out = NULL;
    if (dim == 0) return BSVI_ERR_ZERO_SIZE;
    if (dim > BSVI_MAX_DIM) return BSVI_ERR_OUT_OF_RANGE;
    bsvi_evaluator *ev = (bsvi_evaluator *)calloc(1, sizeof *ev);
    if (!ev) return BSVI_ERR_NO_MEMORY;
    ev->dim = dim;
    ev->chunk = 10000;
    *out = ev;
    return BSVI_OK;
}

void bsvi_evaluator_destroy(bsvi_evaluator *ev) {
    if (!ev) return;
    bsvi__svi_ws_free(&ev->ws);
    free(ev->eps);
    free(ev->g);
    free(ev->lik);
    free(ev->idx);
    free(ev->acc);
    free(ev->fmu);
    free(ev);
}

bsvi_status bsvi_evaluator_set_seed(bsvi_evaluator *ev, uint64_t seed) {
    if (!ev) return BSVI_ERR_NULL_ARGUMENT;
    ev->rng.seed = seed;
    ev->rng.counter = 0;
    return BSVI_OK;
}

bsvi_status bsvi_evaluator_set_stream(bsvi_evaluator *ev, uint64_t counter, uint64_t id_offset) {
    if (!ev) return BSVI_ERR_NULL_ARGUMENT;
    ev->rng.counter = counter;
    ev->rng.id_offset = id_offset;
    return BSVI_OK;
}

bsvi_status bsvi_evaluator_set_progress(bsvi_evaluator *ev, bsvi_progress_fn fn, void *user_data) {
    if (!ev) return BSVI_ERR_NULL_ARGUMENT;
    ev->progress = fn;
    ev->progress_data = user_data;
    return BSVI_OK;
}

bsvi_status bsvi_evaluator_set_chunk_rows(bsvi_evaluator *ev, size_t rows) {
    if (!ev) return BSVI_ERR_NULL_ARGUMENT;
    if (rows == 0)
        return bsvi__fail(ev->err, BSVI_ERR_ZERO_SIZE, "bsvi_evaluator_set_chunk_rows: rows is 0");
    if (rows > BSVI_MAX_BATCH)
        return bsvi__fail(ev->err, BSVI_ERR_OUT_OF_RANGE,
                          "bsvi_evaluator_set_chunk_rows: rows = %zu exceeds %zu", rows,
                          (size_t)BSVI_MAX_BATCH);
    ev->chunk = rows;
    return BSVI_OK;
}

const char *bsvi_evaluator_last_error(const bsvi_evaluator *ev) {
    return ev ? ev->err : "NULL evaluator handle";
}

static bsvi_status common_checks(bsvi_evaluator *ev, const bsvi_model *model,
                                 const bsvi_proposal *q, const char *fn) {
    if (!model || !q)
        return bsvi__fail(ev->err, BSVI_ERR_NULL_ARGUMENT, "%s: model and proposal must not be NULL",
                          fn);
    bsvi_status st = bsvi__model_check(model, ev->dim, ev->err);
    if (st != BSVI_OK) return st;
    if (q->dim != ev->dim)
        return bsvi__fail(ev->err, BSVI_ERR_SIZE_MISMATCH,
                          "%s: the proposal's dimension %zu differs from the evaluator's %zu", fn,
                          q->dim, ev->dim);
    return BSVI_OK;
}

static bsvi_status reserve(bsvi_evaluator *ev, size_t B, int host_prior, const char *fn) {
    const size_t d = ev->dim, rows = ev->chunk;
    size_t rowsd, bd;
    if (bsvi__mul_overflow(rows, d, &rowsd) || bsvi__mul_overflow(B, d, &bd) ||
        rowsd > SIZE_MAX / 64 || bd > SIZE_MAX / 64)
        return bsvi__fail(ev->err, BSVI_ERR_OUT_OF_RANGE, "%s: sizes overflow", fn);
    int fail = 0;
    if (rowsd > ev->cap_rowsd || !ev->eps || (host_prior && !ev->g)) {
        size_t c0 = 0, c1 = 0;
        free(ev->eps), free(ev->g);
        ev->eps = ev->g = NULL;
        ev->cap_rowsd = 0;
        fail |= bsvi__grow(&ev->eps, &c0, 2 * rowsd) || bsvi__grow(&ev->g, &c1, rowsd);
        if (!fail) ev->cap_rowsd = rowsd;
    }
    if (!fail && (rows > ev->cap_rows || !ev->lik)) {
        size_t c0 = 0;
        free(ev->lik);
        ev->lik = NULL;
        ev->cap_rows = 0;
        fail |= bsvi__grow(&ev->lik, &c0, 2 * rows);
        if (!fail) ev->cap_rows = rows;
    }
    if (!fail) fail |= bsvi__grow_size(&ev->idx, &ev->cap_idx, rows);
    if (!fail) fail |= bsvi__grow(&ev->acc, &ev->cap_acc, 4 * B);
    if (!fail && (bd > ev->cap_bd || !ev->fmu)) {
        size_t c0 = 0;
        free(ev->fmu);
        ev->fmu = NULL;
        ev->cap_bd = 0;
        fail |= bsvi__grow(&ev->fmu, &c0, 2 * bd);
        if (!fail) ev->cap_bd = bd;
    }
    if (fail) return bsvi__fail(ev->err, BSVI_ERR_NO_MEMORY, "%s: out of memory", fn);
    ev->z = ev->eps + rowsd;
    ev->prior = ev->lik + rows;
    ev->fs = ev->fmu + bd;
    return BSVI_OK;
}

/* Streams S samples per data point of q through the model, in chunks, calling
 * visit(row values) in (b, s) order. mode 0: IWAE (acc = lse max, sum);
 * mode 1: ELBO* (acc = sum lw, sum lik, sum (log q - log prior)). */
static bsvi_status stream(bsvi_evaluator *ev, const bsvi_model *model, const bsvi_proposal *q,
                          size_t S, int mode) {
    const size_t d = ev->dim, B = q->batch, C = ev->chunk;
    const double half = 0.5 * (double)d * BSVI__LOG_2PI;
    for (size_t b = 0; b < B; ++b) {
        if (mode == 0) {
            ev->acc[2 * b] = -INFINITY;
            ev->acc[2 * b + 1] = 0.0;
        } else {
            ev->acc[3 * b] = ev->acc[3 * b + 1] = ev->acc[3 * b + 2] = 0.0;
        }
    }
    /* sigma once per data point and coordinate, not once per sample (fmu is free here:
     * it holds the final proposal only inside bsvi_evaluator_bsvi) */
    double *sig = ev->fmu;
    for (size_t i = 0; i < B * d; ++i) sig[i] = exp(q->log_std[i]);
    size_t b = 0, s = 0, done = 0;
    while (b < B) {
        /* fill a chunk with consecutive (b, s) pairs */
        size_t n = 0, b0 = b, s0 = s;
        while (n < C && b < B) {
            const double *mu = q->mean + b * d, *sg = sig + b * d;
            double *e = ev->eps + n * d, *zr = ev->z + n * d;
            bsvi__normals(&ev->rng, b, 0, BSVI__PURPOSE_SAMPLE, (uint64_t)s * d, d, e);
            for (size_t j = 0; j < d; ++j) zr[j] = mu[j] + sg[j] * e[j];
            ev->idx[n] = b;
            ++n;
            if (++s == S) {
                s = 0;
                ++b;
            }
        }
        bsvi_status st = bsvi__model_eval(model, n, ev->z, ev->idx, ev->lik, ev->prior,
                                          BSVI__GRAD_NONE, NULL, NULL, ev->err);
        if (st != BSVI_OK) return st;
        size_t bb = b0, ss = s0;
        done += n;
        for (size_t r = 0; r < n; ++r) {
            const double *ls = q->log_std + bb * d, *e = ev->eps + r * d;
            double lq = -half;
            for (size_t j = 0; j < d; ++j) lq -= ls[j] + 0.5 * e[j] * e[j];
            const double lw = ev->lik[r] + ev->prior[r] - lq;
            if (mode == 0) {
                bsvi__lse_push(&ev->acc[2 * bb], &ev->acc[2 * bb + 1], lw);
            } else {
                ev->acc[3 * bb] += lw;
                ev->acc[3 * bb + 1] += ev->lik[r];
                ev->acc[3 * bb + 2] += lq - ev->prior[r];
            }
            if (++ss == S) {
                ss = 0;
                ++bb;
            }
        }
        if (ev->progress && ev->progress(done, B * S, ev->progress_data) != 0)
            return bsvi__fail(ev->err, BSVI_ERR_CANCELLED,
                              "cancelled by the progress callback after %zu of %zu rows", done,
                              B * S);
    }
    return BSVI_OK;
}

/* Sample count of IWAE-S and ELBO*: 1..2^32, and S * dim within one data point's
 * generator stream (2^33 normals, see rng.h) so that no draw repeats. */
static bsvi_status check_samples(bsvi_evaluator *ev, size_t S, const char *fn) {
    if (S == 0) return bsvi__fail(ev->err, BSVI_ERR_ZERO_SIZE, "%s: S is 0", fn);
    if (S > BSVI__MAX_EVAL_SAMPLES)
        return bsvi__fail(ev->err, BSVI_ERR_OUT_OF_RANGE, "%s: S = %zu exceeds 2^32", fn, S);
    if ((uint64_t)S * (uint64_t)ev->dim > BSVI__MAX_STREAM_NORMALS)
        return bsvi__fail(ev->err, BSVI_ERR_OUT_OF_RANGE,
                          "%s: S * dim = %zu * %zu exceeds the 2^33 normals one data point's "
                          "stream holds",
                          fn, S, ev->dim);
    return BSVI_OK;
}

bsvi_status bsvi_evaluator_iwae(bsvi_evaluator *ev, const bsvi_model *model,
                                const bsvi_proposal *q, size_t S, double *out) {
    static const char fn[] = "bsvi_evaluator_iwae";
    if (!ev) return BSVI_ERR_NULL_ARGUMENT;
    bsvi_status st = common_checks(ev, model, q, fn);
    if (st != BSVI_OK) return st;
    if (!out) return bsvi__fail(ev->err, BSVI_ERR_NULL_ARGUMENT, "%s: out is NULL", fn);
    if ((st = check_samples(ev, S, fn)) != BSVI_OK) return st;
    if ((st = reserve(ev, q->batch, model->prior != NULL, fn)) != BSVI_OK) return st;
    if ((st = stream(ev, model, q, S, 0)) != BSVI_OK) return st;
    for (size_t b = 0; b < q->batch; ++b)
        if (ev->acc[2 * b] == -INFINITY)
            return bsvi__fail(ev->err, BSVI_ERR_NUMERIC,
                              "%s: every one of the %zu weights of data point %zu is zero", fn, S,
                              b);
    const double lS = log((double)S);
    for (size_t b = 0; b < q->batch; ++b)
        out[b] = bsvi__lse_value(ev->acc[2 * b], ev->acc[2 * b + 1]) - lS;
    ev->rng.counter++;
    return BSVI_OK;
}

bsvi_status bsvi_evaluator_elbo_star(bsvi_evaluator *ev, const bsvi_model *model,
                                     const bsvi_proposal *q_final, size_t S, double *elbo,
                                     double *kl, double *reconstruction) {
    static const char fn[] = "bsvi_evaluator_elbo_star";
    if (!ev) return BSVI_ERR_NULL_ARGUMENT;
    bsvi_status st = common_checks(ev, model, q_final, fn);
    if (st != BSVI_OK) return st;
    if ((st = check_samples(ev, S, fn)) != BSVI_OK) return st;
    const size_t B = q_final->batch, d = ev->dim;
    if ((st = reserve(ev, B, model->prior != NULL, fn)) != BSVI_OK) return st;
    if ((st = stream(ev, model, q_final, S, 1)) != BSVI_OK) return st;
    for (size_t b = 0; b < B; ++b)
        if (!isfinite(ev->acc[3 * b]))
            return bsvi__fail(ev->err, BSVI_ERR_NUMERIC,
                              "%s: a sample of data point %zu has zero density under the model",
                              fn, b);
    /* Results computed into acc in place (3 entries per data point), then copied. */
    for (size_t b = 0; b < B; ++b) {
        const double e = ev->acc[3 * b] / (double)S;
        double k;
        if (model->prior == NULL) {
            k = 0.0;
            for (size_t j = 0; j < d; ++j) {
                const double m = q_final->mean[b * d + j], l = q_final->log_std[b * d + j];
                k += 0.5 * (m * m + exp(2.0 * l) - 1.0 - 2.0 * l);
            }
        } else {
            k = ev->acc[3 * b + 2] / (double)S;
        }
        ev->acc[3 * b] = e;
        ev->acc[3 * b + 1] = k;
        ev->acc[3 * b + 2] = -(e + k); /* distortion: ELBO* = -(KL* + Reconstruction*) */
    }
    for (size_t b = 0; b < B; ++b) {
        if (elbo) elbo[b] = ev->acc[3 * b];
        if (kl) kl[b] = ev->acc[3 * b + 1];
        if (reconstruction) reconstruction[b] = ev->acc[3 * b + 2];
    }
    ev->rng.counter++;
    return BSVI_OK;
}

bsvi_status bsvi_evaluator_bsvi(bsvi_evaluator *ev, const bsvi_model *model,
                                const bsvi_proposal *q, const bsvi_svi *svi, size_t K,
                                double *out, bsvi_proposal *final_q) {
    static const char fn[] = "bsvi_evaluator_bsvi";
    if (!ev) return BSVI_ERR_NULL_ARGUMENT;
    bsvi_status st = common_checks(ev, model, q, fn);
    if (st != BSVI_OK) return st;
    if (!svi || !out)
        return bsvi__fail(ev->err, BSVI_ERR_NULL_ARGUMENT, "%s: svi and out must not be NULL", fn);
    if (K == 0) return bsvi__fail(ev->err, BSVI_ERR_ZERO_SIZE, "%s: K is 0", fn);
    if (K > BSVI_MAX_STEPS + 1)
        return bsvi__fail(ev->err, BSVI_ERR_OUT_OF_RANGE, "%s: K = %zu exceeds %zu", fn, K,
                          (size_t)BSVI_MAX_STEPS + 1);
    if (bsvi__svi_dim(svi) != ev->dim)
        return bsvi__fail(ev->err, BSVI_ERR_SIZE_MISMATCH,
                          "%s: the SVI handle's dimension %zu differs from the evaluator's %zu", fn,
                          bsvi__svi_dim(svi), ev->dim);
    if (final_q && (final_q->batch != q->batch || final_q->dim != q->dim))
        return bsvi__fail(ev->err, BSVI_ERR_SIZE_MISMATCH,
                          "%s: final_q is %zu x %zu but q is %zu x %zu", fn, final_q->batch,
                          final_q->dim, q->batch, q->dim);
    bsvi__svi_cfg cfg;
    bsvi__svi_config(svi, &cfg);
    if (cfg.form == BSVI_GRAD_ANALYTIC_KL && model->prior != NULL)
        return bsvi__fail(ev->err, BSVI_ERR_BAD_STATE,
                          "%s: the analytic-KL gradient needs the standard normal prior", fn);
    cfg.k = K - 1;
    cfg.progress = ev->progress;
    cfg.progress_data = ev->progress_data;
    cfg.progress_total = q->batch * K;
    const size_t B = q->batch, d = ev->dim;
    if ((st = reserve(ev, B, 0, fn)) != BSVI_OK) return st;
    const size_t per = cfg.m + (cfg.ds ? 1u : 0u);
    size_t group = ev->chunk / per;
    if (group == 0) group = 1;
    /* Running log-sum-exp over the K slots: maxima in acc[0..B), sums in acc[B..2B). */
    double *mx = ev->acc, *sm = ev->acc + B;
    for (size_t b = 0; b < B; ++b) {
        mx[b] = -INFINITY;
        sm[b] = 0.0;
    }
    for (size_t b0 = 0; b0 < B; b0 += group) {
        const size_t nb = (B - b0 < group) ? B - b0 : group;
        cfg.progress_base = b0 * K;
        st = bsvi__svi_refine(&cfg, &ev->ws, model, q->mean + b0 * d, q->log_std + b0 * d, nb, b0,
                              d, &ev->rng, NULL, mx + b0, sm + b0, ev->fmu + b0 * d,
                              ev->fs + b0 * d, ev->err);
        if (st != BSVI_OK) return st;
    }
    for (size_t b = 0; b < B; ++b)
        if (mx[b] == -INFINITY)
            return bsvi__fail(ev->err, BSVI_ERR_NUMERIC,
                              "%s: every one of the %zu weights of data point %zu is zero", fn, K,
                              b);
    const double lK = log((double)K);
    for (size_t b = 0; b < B; ++b) out[b] = bsvi__lse_value(mx[b], sm[b]) - lK;
    if (final_q) {
        memcpy(final_q->mean, ev->fmu, B * d * sizeof(double));
        memcpy(final_q->log_std, ev->fs, B * d * sizeof(double));
    }
    ev->rng.counter++;
    return BSVI_OK;
}
