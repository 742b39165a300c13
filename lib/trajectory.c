/* The SVI buffer. Storage is reused across runs and swapped in on success. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int bsvi__trajdata_reserve(bsvi__trajdata *t, size_t B, size_t k, size_t d) {
    size_t nsc, nvec, nbd;
    if (k >= SIZE_MAX) return 1;
    if (bsvi__mul_overflow(B, k + 1, &nsc) || bsvi__mul_overflow(nsc, d, &nvec) ||
        bsvi__mul_overflow(B, d, &nbd))
        return 1;
    if (nsc > t->cap_sc || !t->logw) {
        if (nsc > SIZE_MAX / (3 * sizeof(double))) return 1;
        double *p = (double *)malloc(3 * nsc * sizeof(double));
        if (!p) return 1;
        free(t->logw);
        t->logw = p;
        t->cap_sc = nsc;
    }
    t->logp = t->logw + nsc;
    t->logq = t->logw + 2 * nsc;
    if (nvec > t->cap_vec || !t->z) {
        if (nvec > SIZE_MAX / (3 * sizeof(double))) return 1;
        double *p = (double *)malloc(3 * nvec * sizeof(double));
        if (!p) return 1;
        free(t->z);
        t->z = p;
        t->cap_vec = nvec;
    }
    t->mu = t->z + nvec;
    t->s = t->z + 2 * nvec;
    if (nbd > t->cap_bd || !t->enc_mu) {
        if (nbd > SIZE_MAX / (2 * sizeof(double))) return 1;
        double *p = (double *)malloc(2 * nbd * sizeof(double));
        if (!p) return 1;
        free(t->enc_mu);
        t->enc_mu = p;
        t->cap_bd = nbd;
    }
    t->enc_s = t->enc_mu + nbd;
    if (bsvi__grow_size(&t->taken, &t->cap_taken, B)) return 1;
    t->B = B;
    t->k = k;
    t->d = d;
    return 0;
}

void bsvi__trajdata_free(bsvi__trajdata *t) {
    free(t->logw);
    free(t->z);
    free(t->enc_mu);
    free(t->taken);
    memset(t, 0, sizeof *t);
}

bsvi_status bsvi_trajectory_create(bsvi_trajectory **out) {
    if (!out) return BSVI_ERR_NULL_ARGUMENT;
    *out = (bsvi_trajectory *)calloc(1, sizeof **out);
    return *out ? BSVI_OK : BSVI_ERR_NO_MEMORY;
}

static void traj_free(bsvi_trajectory *t) {
    bsvi__trajdata_free(&t->data);
    free(t);
}

void bsvi_trajectory_destroy(bsvi_trajectory *t) {
    if (!t) return;
    if (bsvi__busy(&t->use)) { /* the output of a running bsvi_svi_run: freed when it returns */
        t->doomed = 1;
        return;
    }
    traj_free(t);
}

void bsvi__traj_release(const bsvi_trajectory *t) {
    if (bsvi__drop(&t->use) && t->doomed) traj_free((bsvi_trajectory *)t);
}

size_t bsvi_trajectory_batch(const bsvi_trajectory *t) {
    return (t && t->data.valid) ? t->data.B : 0;
}
size_t bsvi_trajectory_steps(const bsvi_trajectory *t) {
    return (t && t->data.valid) ? t->data.k : 0;
}
size_t bsvi_trajectory_dim(const bsvi_trajectory *t) {
    return (t && t->data.valid) ? t->data.d : 0;
}
int bsvi_trajectory_is_double_sampled(const bsvi_trajectory *t) {
    return (t && t->data.valid && t->data.ds) ? 1 : 0;
}

const char *bsvi_trajectory_last_error(const bsvi_trajectory *t) {
    return t ? t->err : "NULL trajectory handle";
}

static bsvi_status check_valid(const bsvi_trajectory *t, const char *fn) {
    if (!t->data.valid)
        return bsvi__fail((char *)t->err, BSVI_ERR_BAD_STATE,
                          "%s: the trajectory is empty (no successful bsvi_svi_run yet)", fn);
    return BSVI_OK;
}

static bsvi_status copy_scalar(const bsvi_trajectory *t, const double *src, double *out,
                               const char *fn) {
    if (!t) return BSVI_ERR_NULL_ARGUMENT;
    if (!out) return bsvi__fail((char *)t->err, BSVI_ERR_NULL_ARGUMENT, "%s: out is NULL", fn);
    bsvi_status st = check_valid(t, fn);
    if (st != BSVI_OK) return st;
    memcpy(out, src, t->data.B * (t->data.k + 1) * sizeof *out);
    return BSVI_OK;
}

bsvi_status bsvi_trajectory_get_log_weights(const bsvi_trajectory *t, double *out) {
    return copy_scalar(t, t ? t->data.logw : NULL, out, "bsvi_trajectory_get_log_weights");
}
bsvi_status bsvi_trajectory_get_log_joint(const bsvi_trajectory *t, double *out) {
    return copy_scalar(t, t ? t->data.logp : NULL, out, "bsvi_trajectory_get_log_joint");
}
bsvi_status bsvi_trajectory_get_log_proposal(const bsvi_trajectory *t, double *out) {
    return copy_scalar(t, t ? t->data.logq : NULL, out, "bsvi_trajectory_get_log_proposal");
}

/* A slot-major buffer array (internal.h) in the API's order: data point b, slot i. */
static void data_point_major(const bsvi__trajdata *t, const double *a, double *out) {
    const size_t K = t->k + 1, d = t->d;
    for (size_t b = 0; b < t->B; ++b)
        for (size_t i = 0; i < K; ++i)
            memcpy(out + (b * K + i) * d, bsvi__traj_row(t, a, b, i), d * sizeof *out);
}

bsvi_status bsvi_trajectory_get_latents(const bsvi_trajectory *t, double *z) {
    if (!t) return BSVI_ERR_NULL_ARGUMENT;
    if (!z)
        return bsvi__fail((char *)t->err, BSVI_ERR_NULL_ARGUMENT,
                          "bsvi_trajectory_get_latents: z is NULL");
    bsvi_status st = check_valid(t, "bsvi_trajectory_get_latents");
    if (st != BSVI_OK) return st;
    data_point_major(&t->data, t->data.z, z);
    return BSVI_OK;
}

bsvi_status bsvi_trajectory_get_params(const bsvi_trajectory *t, double *mean, double *log_std) {
    if (!t) return BSVI_ERR_NULL_ARGUMENT;
    bsvi_status st = check_valid(t, "bsvi_trajectory_get_params");
    if (st != BSVI_OK) return st;
    if (mean) data_point_major(&t->data, t->data.mu, mean);
    if (log_std) data_point_major(&t->data, t->data.s, log_std);
    return BSVI_OK;
}

bsvi_status bsvi_trajectory_get_encoder_grad(const bsvi_trajectory *t, double *d_mean,
                                             double *d_log_std) {
    if (!t) return BSVI_ERR_NULL_ARGUMENT;
    bsvi_status st = check_valid(t, "bsvi_trajectory_get_encoder_grad");
    if (st != BSVI_OK) return st;
    const size_t n = t->data.B * t->data.d;
    if (d_mean) memcpy(d_mean, t->data.enc_mu, n * sizeof *d_mean);
    if (d_log_std) memcpy(d_log_std, t->data.enc_s, n * sizeof *d_log_std);
    return BSVI_OK;
}

/* BSVI-k bound of data point b: LSE_i(log pi_i + log w_i), pi uniform when NULL. */
static double health_bsvi(const bsvi_trajectory *t, const double *logpi, size_t b) {
    const size_t K = t->data.k + 1;
    const double *lw = t->data.logw + b * K;
    double mx = -INFINITY, sm = 0.0;
    for (size_t i = 0; i < K; ++i) bsvi__lse_push(&mx, &sm, logpi[i] + lw[i]);
    return bsvi__lse_value(mx, sm);
}

/* Data point b's value of log w_0 (which 0), log w_k (1) or the BSVI-k bound (2). */
static double health_value(const bsvi_trajectory *t, const double *logpi, int which, size_t b) {
    const size_t K = t->data.k + 1;
    return which == 0   ? t->data.logw[b * K]
           : which == 1 ? t->data.logw[b * K + K - 1]
                        : health_bsvi(t, logpi, b);
}

/* Mean over the data points where the value is finite (log w is never +inf or NaN), and
 * their number left out. The plain sum is used whenever it stays finite; otherwise the
 * mean is m * mean(x / m) with m = max |x|, whose magnitude is at most m (no overflow). */
static double health_mean(const bsvi_trajectory *t, const double *logpi, int which,
                          size_t *zero) {
    const size_t B = t->data.B;
    double s = 0.0;
    size_t n = 0;
    for (size_t b = 0; b < B; ++b) {
        const double x = health_value(t, logpi, which, b);
        if (x == -INFINITY) continue;
        s += x;
        ++n;
    }
    *zero = B - n;
    if (n == 0) return -INFINITY;
    if (isfinite(s)) return s / (double)n;
    double m = 0.0;
    for (size_t b = 0; b < B; ++b) {
        const double x = health_value(t, logpi, which, b);
        if (x != -INFINITY && fabs(x) > m) m = fabs(x);
    }
    s = 0.0;
    for (size_t b = 0; b < B; ++b) {
        const double x = health_value(t, logpi, which, b);
        if (x != -INFINITY) s += x / m;
    }
    return m * (s / (double)n);
}

bsvi_status bsvi_trajectory_health(const bsvi_trajectory *t, const bsvi_buffer_weights *pi,
                                   bsvi_health *out) {
    static const char fn[] = "bsvi_trajectory_health";
    if (!t) return BSVI_ERR_NULL_ARGUMENT;
    char *err = (char *)t->err;
    if (!out) return bsvi__fail(err, BSVI_ERR_NULL_ARGUMENT, "%s: out is NULL", fn);
    bsvi_status st = check_valid(t, fn);
    if (st != BSVI_OK) return st;
    const size_t K = t->data.k + 1;
    if (pi && pi->n != K)
        return bsvi__fail(err, BSVI_ERR_SIZE_MISMATCH, "%s: pi has %zu slots, the buffer %zu", fn,
                          pi->n, K);
    double stack[64];
    double *logpi = K <= 64 ? stack : (double *)malloc(K * sizeof(double));
    if (!logpi) return bsvi__fail(err, BSVI_ERR_NO_MEMORY, "%s: out of memory", fn);
    bsvi__log_pi(pi, K, logpi);
    bsvi_health h;
    h.svi0 = health_mean(t, logpi, 0, &h.zero_svi0);
    h.svik = health_mean(t, logpi, 1, &h.zero_svik);
    h.bsvik = health_mean(t, logpi, 2, &h.zero_bsvik);
    if (logpi != stack) free(logpi);
    *out = h;
    return BSVI_OK;
}

size_t bsvi_trajectory_num_diverged(const bsvi_trajectory *t) {
    if (!t || !t->data.valid) return 0;
    size_t n = 0;
    for (size_t b = 0; b < t->data.B; ++b) n += (t->data.taken[b] < t->data.k) ? 1u : 0u;
    return n;
}

bsvi_status bsvi_trajectory_get_steps_taken(const bsvi_trajectory *t, size_t *out) {
    if (!t) return BSVI_ERR_NULL_ARGUMENT;
    if (!out)
        return bsvi__fail((char *)t->err, BSVI_ERR_NULL_ARGUMENT,
                          "bsvi_trajectory_get_steps_taken: out is NULL");
    bsvi_status st = check_valid(t, "bsvi_trajectory_get_steps_taken");
    if (st != BSVI_OK) return st;
    memcpy(out, t->data.taken, t->data.B * sizeof *out);
    return BSVI_OK;
}
