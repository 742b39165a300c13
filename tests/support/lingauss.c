#include "lingauss.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define LG_LOG_2PI 1.8378770664093454835606594728112

/* In-place lower Cholesky of the n x n row-major matrix a. Returns 0 on success. */
static int chol(double *a, size_t n)
{
    for (size_t j = 0; j < n; ++j) {
        double s = a[j * n + j];
        for (size_t k = 0; k < j; ++k) {
            s -= a[j * n + k] * a[j * n + k];
        }
        if (!(s > 0.0)) {
            return -1;
        }
        double l = sqrt(s);
        a[j * n + j] = l;
        for (size_t i = j + 1; i < n; ++i) {
            double t = a[i * n + j];
            for (size_t k = 0; k < j; ++k) {
                t -= a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = t / l;
        }
        for (size_t i = 0; i < j; ++i) {
            a[i * n + j] = 0.0;
        }
    }
    return 0;
}

/* Solve L L^T y = r in place (L lower Cholesky factor). */
static void chol_solve(const double *l, size_t n, double *y)
{
    for (size_t i = 0; i < n; ++i) {
        double t = y[i];
        for (size_t k = 0; k < i; ++k) {
            t -= l[i * n + k] * y[k];
        }
        y[i] = t / l[i * n + i];
    }
    for (size_t ii = n; ii-- > 0;) {
        double t = y[ii];
        for (size_t k = ii + 1; k < n; ++k) {
            t -= l[k * n + ii] * y[k];
        }
        y[ii] = t / l[ii * n + ii];
    }
}

int lg_init(lg_model *m, size_t d, size_t D, size_t B, double s, int orthogonal, uint64_t seed)
{
    memset(m, 0, sizeof *m);
    if (orthogonal && D < d) {
        return -1;
    }
    m->d = d;
    m->D = D;
    m->B = B;
    m->s = s;
    m->W = calloc(D * d, sizeof *m->W);
    m->bias = calloc(D, sizeof *m->bias);
    m->x = calloc(B * D, sizeof *m->x);
    m->owner = 1;
    if (m->W == NULL || m->bias == NULL || m->x == NULL) {
        lg_free(m);
        return -1;
    }
    tu_rng r;
    tu_rng_init(&r, seed);
    for (size_t i = 0; i < D * d; ++i) {
        m->W[i] = 0.7 * tu_rng_normal(&r);
    }
    if (orthogonal) {
        /* Gram-Schmidt on the columns, then distinct column norms 0.6, 1.1, 1.6, ... */
        for (size_t j = 0; j < d; ++j) {
            for (size_t k = 0; k < j; ++k) {
                double dot = 0.0;
                for (size_t i = 0; i < D; ++i) {
                    dot += m->W[i * d + j] * m->W[i * d + k];
                }
                for (size_t i = 0; i < D; ++i) {
                    m->W[i * d + j] -= dot * m->W[i * d + k];
                }
            }
            double nrm = 0.0;
            for (size_t i = 0; i < D; ++i) {
                nrm += m->W[i * d + j] * m->W[i * d + j];
            }
            nrm = sqrt(nrm);
            for (size_t i = 0; i < D; ++i) {
                m->W[i * d + j] /= nrm;
            }
        }
        for (size_t j = 0; j < d; ++j) {
            double c = 0.6 + 0.5 * (double)j;
            for (size_t i = 0; i < D; ++i) {
                m->W[i * d + j] *= c;
            }
        }
    }
    for (size_t i = 0; i < D; ++i) {
        m->bias[i] = 0.3 * tu_rng_normal(&r);
    }
    double *z = calloc(d, sizeof *z);
    if (z == NULL) {
        lg_free(m);
        return -1;
    }
    for (size_t b = 0; b < B; ++b) {
        for (size_t j = 0; j < d; ++j) {
            z[j] = tu_rng_normal(&r);
        }
        for (size_t i = 0; i < D; ++i) {
            double mu = m->bias[i];
            for (size_t j = 0; j < d; ++j) {
                mu += m->W[i * d + j] * z[j];
            }
            m->x[b * D + i] = mu + s * tu_rng_normal(&r);
        }
    }
    free(z);
    return 0;
}

void lg_free(lg_model *m)
{
    if (m->owner) {
        free(m->W);
        free(m->bias);
        free(m->x);
    }
    memset(m, 0, sizeof *m);
}

lg_model lg_view(const lg_model *m, size_t offset)
{
    lg_model v = *m;
    v.offset = offset;
    v.owner = 0;
    v.calls = 0;
    v.rows = 0;
    v.max_rows = 0;
    return v;
}

void lg_replicate(lg_model *m)
{
    for (size_t b = 1; b < m->B; ++b) {
        memcpy(&m->x[b * m->D], &m->x[0], m->D * sizeof *m->x);
    }
}

static double lg_eval_row(const lg_model *m, size_t b, const double *z, double *grad)
{
    const size_t d = m->d, D = m->D;
    const double *x = &m->x[b * D];
    const double inv_s2 = 1.0 / (m->s * m->s);
    double sq = 0.0;
    if (grad != NULL) {
        for (size_t j = 0; j < d; ++j) {
            grad[j] = 0.0;
        }
    }
    for (size_t i = 0; i < D; ++i) {
        double res = x[i] - m->bias[i];
        for (size_t j = 0; j < d; ++j) {
            res -= m->W[i * d + j] * z[j];
        }
        sq += res * res;
        if (grad != NULL) {
            for (size_t j = 0; j < d; ++j) {
                grad[j] += m->W[i * d + j] * res * inv_s2;
            }
        }
    }
    return -0.5 * (double)D * (LG_LOG_2PI + 2.0 * log(m->s)) - 0.5 * sq * inv_s2;
}

int lg_likelihood(size_t n, size_t dim, const double *z, const size_t *data_index,
                  double *log_density, double *grad, void *user_data)
{
    lg_model *m = user_data;
    if (m == NULL || dim != m->d) {
        return 99;
    }
    m->calls++;
    m->rows += n;
    if (n > m->max_rows) {
        m->max_rows = n;
    }
    for (size_t r = 0; r < n; ++r) {
        size_t b = m->offset + data_index[r];
        if (b >= m->B) {
            return 98;
        }
        log_density[r] = lg_eval_row(m, b, &z[r * dim], grad != NULL ? &grad[r * dim] : NULL);
    }
    return 0;
}

int lg_prior_std_normal(size_t n, size_t dim, const double *z, const size_t *data_index,
                        double *log_density, double *grad, void *user_data)
{
    (void)data_index;
    (void)user_data;
    for (size_t r = 0; r < n; ++r) {
        double sq = 0.0;
        for (size_t j = 0; j < dim; ++j) {
            sq += z[r * dim + j] * z[r * dim + j];
            if (grad != NULL) {
                grad[r * dim + j] = -z[r * dim + j];
            }
        }
        log_density[r] = -0.5 * (double)dim * LG_LOG_2PI - 0.5 * sq;
    }
    return 0;
}

bsvi_status lg_make_model(lg_model *m, bsvi_model **out)
{
    bsvi_status st = bsvi_model_create(m->d, out);
    if (st != BSVI_OK) {
        return st;
    }
    st = bsvi_model_set_likelihood(*out, lg_likelihood, m);
    if (st != BSVI_OK) {
        bsvi_model_destroy(*out);
        *out = NULL;
    }
    return st;
}

double lg_log_joint(const lg_model *m, size_t b, const double *z)
{
    double sq = 0.0;
    for (size_t j = 0; j < m->d; ++j) {
        sq += z[j] * z[j];
    }
    return -0.5 * (double)m->d * LG_LOG_2PI - 0.5 * sq + lg_eval_row(m, b, z, NULL);
}

double lg_log_marginal(const lg_model *m, size_t b)
{
    const size_t d = m->d, D = m->D;
    double *c = calloc(D * D, sizeof *c);
    double *y = calloc(D, sizeof *y);
    if (c == NULL || y == NULL) {
        free(c);
        free(y);
        return NAN;
    }
    for (size_t i = 0; i < D; ++i) {
        for (size_t k = 0; k < D; ++k) {
            double t = (i == k) ? m->s * m->s : 0.0;
            for (size_t j = 0; j < d; ++j) {
                t += m->W[i * d + j] * m->W[k * d + j];
            }
            c[i * D + k] = t;
        }
        y[i] = m->x[b * D + i] - m->bias[i];
    }
    double result = NAN;
    if (chol(c, D) == 0) {
        double logdet = 0.0;
        for (size_t i = 0; i < D; ++i) {
            logdet += 2.0 * log(c[i * D + i]);
        }
        double *r = calloc(D, sizeof *r);
        if (r != NULL) {
            memcpy(r, y, D * sizeof *r);
            chol_solve(c, D, y); /* y = C^-1 r */
            double quad = 0.0;
            for (size_t i = 0; i < D; ++i) {
                quad += r[i] * y[i];
            }
            result = -0.5 * ((double)D * LG_LOG_2PI + logdet + quad);
            free(r);
        }
    }
    free(c);
    free(y);
    return result;
}

/* Posterior precision A = I + W^T W / s^2 (d*d). */
static void lg_precision(const lg_model *m, double *a)
{
    const size_t d = m->d, D = m->D;
    const double inv_s2 = 1.0 / (m->s * m->s);
    for (size_t j = 0; j < d; ++j) {
        for (size_t k = 0; k < d; ++k) {
            double t = 0.0;
            for (size_t i = 0; i < D; ++i) {
                t += m->W[i * d + j] * m->W[i * d + k];
            }
            a[j * d + k] = (j == k ? 1.0 : 0.0) + t * inv_s2;
        }
    }
}

void lg_posterior(const lg_model *m, size_t b, double *mean, double *cov)
{
    const size_t d = m->d, D = m->D;
    const double inv_s2 = 1.0 / (m->s * m->s);
    double *a = calloc(d * d, sizeof *a);
    double *e = calloc(d, sizeof *e);
    if (a == NULL || e == NULL) {
        free(a);
        free(e);
        return;
    }
    lg_precision(m, a);
    if (chol(a, d) != 0) {
        free(a);
        free(e);
        return;
    }
    for (size_t j = 0; j < d; ++j) {
        double t = 0.0;
        for (size_t i = 0; i < D; ++i) {
            t += m->W[i * d + j] * (m->x[b * D + i] - m->bias[i]);
        }
        mean[j] = t * inv_s2;
    }
    chol_solve(a, d, mean);
    if (cov != NULL) {
        for (size_t k = 0; k < d; ++k) {
            for (size_t j = 0; j < d; ++j) {
                e[j] = (j == k) ? 1.0 : 0.0;
            }
            chol_solve(a, d, e);
            for (size_t j = 0; j < d; ++j) {
                cov[j * d + k] = e[j];
            }
        }
    }
    free(a);
    free(e);
}

void lg_posterior_diag(const lg_model *m, size_t b, double *mean, double *log_std)
{
    const size_t d = m->d;
    double *cov = calloc(d * d, sizeof *cov);
    if (cov == NULL) {
        return;
    }
    lg_posterior(m, b, mean, cov);
    for (size_t j = 0; j < d; ++j) {
        log_std[j] = 0.5 * log(cov[j * d + j]);
    }
    free(cov);
}

double lg_exact_elbo(const lg_model *m, size_t b, const double *mean, const double *log_std,
                     double *d_mean, double *d_log_std)
{
    const size_t d = m->d, D = m->D;
    const double inv_s2 = 1.0 / (m->s * m->s);
    double *a = calloc(d * d, sizeof *a);
    if (a == NULL) {
        return NAN;
    }
    lg_precision(m, a);
    /* E_q log p(x, z) = log p(x, mean) - 0.5 sum_j A_jj sigma_j^2 ; H(q) = sum 0.5 log(2 pi e) + s_j */
    double elbo = lg_log_joint(m, b, mean);
    for (size_t j = 0; j < d; ++j) {
        double var = exp(2.0 * log_std[j]);
        elbo += -0.5 * a[j * d + j] * var + 0.5 * (LG_LOG_2PI + 1.0) + log_std[j];
    }
    if (d_mean != NULL) {
        /* d/dmean = W^T (x - bias) / s^2 - A mean */
        for (size_t j = 0; j < d; ++j) {
            double t = 0.0;
            for (size_t i = 0; i < D; ++i) {
                t += m->W[i * d + j] * (m->x[b * D + i] - m->bias[i]);
            }
            t *= inv_s2;
            for (size_t k = 0; k < d; ++k) {
                t -= a[j * d + k] * mean[k];
            }
            d_mean[j] = t;
        }
    }
    if (d_log_std != NULL) {
        for (size_t j = 0; j < d; ++j) {
            d_log_std[j] = 1.0 - a[j * d + j] * exp(2.0 * log_std[j]);
        }
    }
    free(a);
    return elbo;
}

int lg_faulty_likelihood(size_t n, size_t dim, const double *z, const size_t *data_index,
                         double *log_density, double *grad, void *user_data)
{
    lg_faulty *f = user_data;
    f->calls++;
    int rc = lg_likelihood(n, dim, z, data_index, log_density, grad, f->lg);
    if (rc != 0 || f->calls <= f->ok_calls) {
        return rc;
    }
    switch (f->mode) {
    case LG_FAULT_CODE:
        return f->code;
    case LG_FAULT_NAN:
        log_density[0] = NAN;
        return 0;
    case LG_FAULT_NAN_GRAD:
        if (grad != NULL) {
            grad[0] = NAN;
        }
        return 0;
    case LG_FAULT_NEG_INF:
    default:
        for (size_t r = 0; r < n; ++r) {
            log_density[r] = -INFINITY;
        }
        return 0;
    }
}

bsvi_status lg_make_proposal(size_t batch, size_t dim, const double *mean,
                             const double *log_std, bsvi_proposal **out)
{
    bsvi_status st = bsvi_proposal_create(batch, dim, out);
    if (st != BSVI_OK) {
        return st;
    }
    st = bsvi_proposal_set_params(*out, mean, log_std);
    if (st != BSVI_OK) {
        bsvi_proposal_destroy(*out);
        *out = NULL;
    }
    return st;
}
