/* Diagonal Gaussian proposals for a batch of data points. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

bsvi_status bsvi_proposal_create(size_t batch, size_t dim, bsvi_proposal **out) {
    if (!out) return BSVI_ERR_NULL_ARGUMENT;
    *out = NULL;
    if (batch == 0 || dim == 0) return BSVI_ERR_ZERO_SIZE;
    if (batch > BSVI_MAX_BATCH || dim > BSVI_MAX_DIM) return BSVI_ERR_OUT_OF_RANGE;
    size_t n;
    if (bsvi__mul_overflow(batch, dim, &n) || n > SIZE_MAX / (2 * sizeof(double)))
        return BSVI_ERR_OUT_OF_RANGE;
    bsvi_proposal *q = (bsvi_proposal *)calloc(1, sizeof *q);
    if (!q) return BSVI_ERR_NO_MEMORY;
    q->mean = (double *)calloc(2 * n, sizeof(double));
    if (!q->mean) {
        free(q);
        return BSVI_ERR_NO_MEMORY;
    }
    q->log_std = q->mean + n;
    q->batch = batch;
    q->dim = dim;
    *out = q;
    return BSVI_OK;
}

static void proposal_free(bsvi_proposal *q) {
    free(q->mean);
    free(q);
}

void bsvi_proposal_destroy(bsvi_proposal *q) {
    if (!q) return;
    if (bsvi__busy(&q->use)) { /* held by a running call: freed at its release */
        q->doomed = 1;
        return;
    }
    proposal_free(q);
}

void bsvi__proposal_release(const bsvi_proposal *q) {
    if (bsvi__drop(&q->use) && q->doomed) proposal_free((bsvi_proposal *)q);
}

/* Every message of a proposal goes through the shared variant: its const functions may
 * run (and fail) on several threads at once, and two failures must never write the
 * message buffer concurrently. */
#define QFAIL(q, st, ...) \
    bsvi__fail_shared((char *)(q)->err, (atomic_int *)&(q)->errlock, (st), __VA_ARGS__)

static bsvi_status refuse_in_use(const bsvi_proposal *q, const char *fn) {
    return QFAIL(q, BSVI_ERR_REENTRANT,
                 "%s: the proposal is in use by a running call (re-entered from a callback?); "
                 "it can be read but not changed until that call returns",
                 fn);
}

size_t bsvi_proposal_batch(const bsvi_proposal *q) { return q ? q->batch : 0; }
size_t bsvi_proposal_dim(const bsvi_proposal *q) { return q ? q->dim : 0; }

bsvi_status bsvi_proposal_set_params(bsvi_proposal *q, const double *mean,
                                     const double *log_std) {
    if (!q) return BSVI_ERR_NULL_ARGUMENT;
    if (bsvi__busy(&q->use)) return refuse_in_use(q, "bsvi_proposal_set_params");
    if (!mean || !log_std)
        return QFAIL(q, BSVI_ERR_NULL_ARGUMENT,
                          "bsvi_proposal_set_params: mean and log_std must not be NULL");
    const size_t n = q->batch * q->dim;
    for (size_t i = 0; i < n; ++i) {
        if (!isfinite(mean[i]))
            return QFAIL(q, BSVI_ERR_BAD_VALUE,
                              "bsvi_proposal_set_params: mean of data point %zu, coordinate %zu "
                              "is not finite",
                              i / q->dim, i % q->dim);
        if (!(log_std[i] >= BSVI_MIN_LOG_STD && log_std[i] <= BSVI_MAX_LOG_STD))
            return QFAIL(q, BSVI_ERR_BAD_VALUE,
                              "bsvi_proposal_set_params: log_std of data point %zu, coordinate "
                              "%zu is %g, outside [%g, %g]",
                              i / q->dim, i % q->dim, log_std[i], BSVI_MIN_LOG_STD,
                              BSVI_MAX_LOG_STD);
    }
    memcpy(q->mean, mean, n * sizeof *mean);
    memcpy(q->log_std, log_std, n * sizeof *log_std);
    return BSVI_OK;
}

bsvi_status bsvi_proposal_get_params(const bsvi_proposal *q, double *mean, double *log_std) {
    if (!q) return BSVI_ERR_NULL_ARGUMENT;
    const size_t n = q->batch * q->dim;
    if (mean) memcpy(mean, q->mean, n * sizeof *mean);
    if (log_std) memcpy(log_std, q->log_std, n * sizeof *log_std);
    return BSVI_OK;
}

bsvi_status bsvi_proposal_set_seed(bsvi_proposal *q, uint64_t seed) {
    if (!q) return BSVI_ERR_NULL_ARGUMENT;
    if (bsvi__busy(&q->use)) return refuse_in_use(q, "bsvi_proposal_set_seed");
    q->rng.seed = seed;
    q->rng.counter = 0;
    return BSVI_OK;
}

bsvi_status bsvi_proposal_set_stream(bsvi_proposal *q, uint64_t counter, uint64_t id_offset) {
    if (!q) return BSVI_ERR_NULL_ARGUMENT;
    if (bsvi__busy(&q->use)) return refuse_in_use(q, "bsvi_proposal_set_stream");
    q->rng.counter = counter;
    q->rng.id_offset = id_offset;
    return BSVI_OK;
}

static bsvi_status check_nsamples(const bsvi_proposal *q, size_t nsamples, const char *fn) {
    if (nsamples == 0) return QFAIL(q, BSVI_ERR_ZERO_SIZE, "%s: nsamples is 0", fn);
    if (nsamples > BSVI_MAX_SAMPLES)
        return QFAIL(q, BSVI_ERR_OUT_OF_RANGE, "%s: nsamples %zu exceeds %zu", fn, nsamples,
                          (size_t)BSVI_MAX_SAMPLES);
    return BSVI_OK;
}

bsvi_status bsvi_proposal_sample(bsvi_proposal *q, size_t nsamples, double *z, double *eps) {
    if (!q) return BSVI_ERR_NULL_ARGUMENT;
    if (bsvi__busy(&q->use)) return refuse_in_use(q, "bsvi_proposal_sample");
    if (!z)
        return QFAIL(q, BSVI_ERR_NULL_ARGUMENT, "bsvi_proposal_sample: z is NULL");
    bsvi_status st = check_nsamples(q, nsamples, "bsvi_proposal_sample");
    if (st != BSVI_OK) return st;
    const size_t d = q->dim;
    /* No draw repeats within a call: one data point's stream holds 2^33 normals before
     * the generator's block index wraps (see rng.h), so a larger request is refused up
     * front. */
    if ((uint64_t)nsamples * (uint64_t)d > BSVI__MAX_STREAM_NORMALS)
        return QFAIL(q, BSVI_ERR_OUT_OF_RANGE,
                          "bsvi_proposal_sample: nsamples * dim = %zu * %zu exceeds the 2^33 "
                          "normals one data point's stream holds",
                          nsamples, d);
    for (size_t b = 0; b < q->batch; ++b) {
        const double *mu = q->mean + b * d, *ls = q->log_std + b * d;
        double *zb = z + b * nsamples * d;
        bsvi__normals(&q->rng, b, 0, BSVI__PURPOSE_SAMPLE, 0, nsamples * d, zb);
        if (eps) memcpy(eps + b * nsamples * d, zb, nsamples * d * sizeof *zb);
        for (size_t j = 0; j < d; ++j) { /* sigma once per coordinate */
            const double sg = exp(ls[j]);
            for (size_t s = 0; s < nsamples; ++s) zb[s * d + j] = mu[j] + sg * zb[s * d + j];
        }
    }
    q->rng.counter++;
    return BSVI_OK;
}

bsvi_status bsvi_proposal_log_density(const bsvi_proposal *q, size_t nsamples, const double *z,
                                      double *log_q) {
    if (!q) return BSVI_ERR_NULL_ARGUMENT;
    if (!z || !log_q)
        return QFAIL(q, BSVI_ERR_NULL_ARGUMENT,
                          "bsvi_proposal_log_density: z and log_q must not be NULL");
    bsvi_status st = check_nsamples(q, nsamples, "bsvi_proposal_log_density");
    if (st != BSVI_OK) return st;
    const size_t d = q->dim;
    /* BSVI_OK never comes with a NaN log q: a NaN latent is refused, before any output
     * is written. An infinite z is legal (its density is zero: log q = -infinity). */
    const size_t nz = q->batch * nsamples * d;
    for (size_t i = 0; i < nz; ++i)
        if (isnan(z[i]))
            return QFAIL(q, BSVI_ERR_BAD_VALUE,
                              "bsvi_proposal_log_density: z of row %zu (data point %zu), "
                              "coordinate %zu is NaN",
                              i / d, i / d / nsamples, i % d);
    for (size_t b = 0; b < q->batch; ++b) {
        const double *mu = q->mean + b * d, *ls = q->log_std + b * d;
        for (size_t s = 0; s < nsamples; ++s) {
            const double *zr = z + (b * nsamples + s) * d;
            double acc = -0.5 * (double)d * BSVI__LOG_2PI;
            for (size_t j = 0; j < d; ++j) {
                double e = (zr[j] - mu[j]) * exp(-ls[j]);
                acc -= ls[j] + 0.5 * e * e;
            }
            log_q[b * nsamples + s] = acc;
        }
    }
    return BSVI_OK;
}

bsvi_status bsvi_proposal_entropy(const bsvi_proposal *q, double *out) {
    if (!q) return BSVI_ERR_NULL_ARGUMENT;
    if (!out)
        return QFAIL(q, BSVI_ERR_NULL_ARGUMENT,
                          "bsvi_proposal_entropy: out is NULL");
    const size_t d = q->dim;
    for (size_t b = 0; b < q->batch; ++b) {
        double acc = 0.5 * (double)d * (BSVI__LOG_2PI + 1.0);
        for (size_t j = 0; j < d; ++j) acc += q->log_std[b * d + j];
        out[b] = acc;
    }
    return BSVI_OK;
}

bsvi_status bsvi_proposal_kl_standard_normal(const bsvi_proposal *q, double *out) {
    if (!q) return BSVI_ERR_NULL_ARGUMENT;
    if (!out)
        return QFAIL(q, BSVI_ERR_NULL_ARGUMENT,
                          "bsvi_proposal_kl_standard_normal: out is NULL");
    const size_t d = q->dim;
    for (size_t b = 0; b < q->batch; ++b) {
        double acc = 0.0;
        for (size_t j = 0; j < d; ++j) {
            double m = q->mean[b * d + j], s = q->log_std[b * d + j];
            acc += 0.5 * (m * m + exp(2.0 * s) - 1.0 - 2.0 * s);
        }
        out[b] = acc;
    }
    return BSVI_OK;
}

const char *bsvi_proposal_last_error(const bsvi_proposal *q) {
    return q ? q->err : "NULL proposal handle";
}
