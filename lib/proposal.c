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

void bsvi_proposal_destroy(bsvi_proposal *q) {
    if (!q) return;
    free(q->mean);
    free(q);
}

size_t bsvi_proposal_batch(const bsvi_proposal *q) { return q ? q->batch : 0; }
size_t bsvi_proposal_dim(const bsvi_proposal *q) { return q ? q->dim : 0; }

bsvi_status bsvi_proposal_set_params(bsvi_proposal *q, const double *mean,
                                     const double *log_std) {
    if (!q) return BSVI_ERR_NULL_ARGUMENT;
    if (!mean || !log_std)
        return bsvi__fail(q->err, BSVI_ERR_NULL_ARGUMENT,
                          "bsvi_proposal_set_params: mean and log_std must not be NULL");
    const size_t n = q->batch * q->dim;
    for (size_t i = 0; i < n; ++i) {
        if (!isfinite(mean[i]))
            return bsvi__fail(q->err, BSVI_ERR_BAD_VALUE,
                              "bsvi_proposal_set_params: mean of data point %zu, coordinate %zu "
                              "is not finite",
                              i / q->dim, i % q->dim);
        if (!(log_std[i] >= BSVI_MIN_LOG_STD && log_std[i] <= BSVI_MAX_LOG_STD))
            return bsvi__fail(q->err, BSVI_ERR_BAD_VALUE,
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
    q->rng.seed = seed;
    q->rng.counter = 0;
    return BSVI_OK;
}

bsvi_status bsvi_proposal_set_stream(bsvi_proposal *q, uint64_t counter, uint64_t id_offset) {
    if (!q) return BSVI_ERR_NULL_ARGUMENT;
    q->rng.counter = counter;
    q->rng.id_offset = id_offset;
    return BSVI_OK;
}

static bsvi_status check_nsamples(const bsvi_proposal *q, size_t nsamples, const char *fn) {
    char *err = (char *)q->err; /* error text is mutable state even on const handles */
    if (nsamples == 0) return bsvi__fail(err, BSVI_ERR_ZERO_SIZE, "%s: nsamples is 0", fn);
    if (nsamples > BSVI_MAX_SAMPLES)
        return bsvi__fail(err, BSVI_ERR_OUT_OF_RANGE, "%s: nsamples %zu exceeds %zu", fn, nsamples,
                          (size_t)BSVI_MAX_SAMPLES);
    return BSVI_OK;
}

bsvi_status bsvi_proposal_sample(bsvi_proposal *q, size_t nsamples, double *z, double *eps) {
    if (!q) return BSVI_ERR_NULL_ARGUMENT;
    if (!z)
        return bsvi__fail(q->err, BSVI_ERR_NULL_ARGUMENT, "bsvi_proposal_sample: z is NULL");
    bsvi_status st = check_nsamples(q, nsamples, "bsvi_proposal_sample");
    if (st != BSVI_OK) return st;
    const size_t d = q->dim;
    /* Reliability fix: more than 2^33 normals per data point would wrap the generator's
     * block index and repeat draws within the call (see rng.h); refuse up front. */
    if ((uint64_t)nsamples * (uint64_t)d > BSVI__MAX_STREAM_NORMALS)
        return bsvi__fail(q->err, BSVI_ERR_OUT_OF_RANGE,
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
        return bsvi__fail((char *)q->err, BSVI_ERR_NULL_ARGUMENT,
                          "bsvi_proposal_log_density: z and log_q must not be NULL");
    bsvi_status st = check_nsamples(q, nsamples, "bsvi_proposal_log_density");
    if (st != BSVI_OK) return st;
    const size_t d = q->dim;
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
        return bsvi__fail((char *)q->err, BSVI_ERR_NULL_ARGUMENT,
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
        return bsvi__fail((char *)q->err, BSVI_ERR_NULL_ARGUMENT,
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
