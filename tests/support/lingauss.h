/*
 * lingauss.h: the linear-Gaussian model of BSVI-SPEC.md for tests.
 *
 *   p(z) = N(0, I_d),  p(x_b | z) = N(W z + bias, s^2 I_D),  W is D x d (row-major).
 *
 * Exact quantities: p(x) = N(bias, W W^T + s^2 I); posterior precision
 * A = I + W^T W / s^2, posterior mean A^-1 W^T (x - bias) / s^2. With
 * orthogonal columns W^T W is diagonal and so is the posterior.
 *
 * lg_likelihood() is a bsvi_density_fn whose user_data is an lg_model*; row r
 * uses data point x[offset + data_index[r]], so a batch split in two can be
 * evaluated with a view (lg_view()) whose offset is the first half's size.
 */
#ifndef BSVI_TEST_LINGAUSS_H
#define BSVI_TEST_LINGAUSS_H

#include <stddef.h>
#include <stdint.h>

#include "bsvi/bsvi.h"

typedef struct lg_model {
    size_t d;       /* latent dimension */
    size_t D;       /* observed dimension */
    size_t B;       /* number of data points held in x */
    double s;       /* observation noise standard deviation */
    double *W;      /* D*d, row-major */
    double *bias;   /* D */
    double *x;      /* B*D */
    size_t offset;  /* added to data_index in callbacks */
    int owner;      /* 1 if this struct owns W, bias, x */
    unsigned long calls; /* likelihood callback calls so far */
    unsigned long rows;  /* rows evaluated so far */
    size_t max_rows;     /* largest n seen in one call */
} lg_model;

/* Random model: W with orthogonal columns of distinct norms when orthogonal != 0,
 * otherwise a general random W; data x drawn from the model. Returns 0 on success. */
int lg_init(lg_model *m, size_t d, size_t D, size_t B, double s, int orthogonal, uint64_t seed);
void lg_free(lg_model *m);
/* Shallow copy sharing W, bias, x, with its own offset and counters. */
lg_model lg_view(const lg_model *m, size_t offset);
/* Make every data point equal to data point 0 (replicates for Monte Carlo). */
void lg_replicate(lg_model *m);

/* The likelihood log p(x_b | z) and its z-gradient (bsvi_density_fn, user_data = lg_model*). */
int lg_likelihood(size_t n, size_t dim, const double *z, const size_t *data_index,
                  double *log_density, double *grad, void *user_data);
/* A host prior equal to N(0, I) (bsvi_density_fn, user_data ignored). */
int lg_prior_std_normal(size_t n, size_t dim, const double *z, const size_t *data_index,
                        double *log_density, double *grad, void *user_data);

/* Create a model handle with lg_likelihood (and the built-in standard normal prior). */
bsvi_status lg_make_model(lg_model *m, bsvi_model **out);

/* Direct (library-free) log p(x_b, z) for absolute data point index b. */
double lg_log_joint(const lg_model *m, size_t b, const double *z);
/* Exact log p(x_b) (Cholesky of W W^T + s^2 I). */
double lg_log_marginal(const lg_model *m, size_t b);
/* Exact posterior mean (d) and covariance (d*d, may be NULL) of data point b. */
void lg_posterior(const lg_model *m, size_t b, double *mean, double *cov);
/* Diagonal Gaussian with the posterior's mean and marginal log-stds (exact posterior
 * when W has orthogonal columns). */
void lg_posterior_diag(const lg_model *m, size_t b, double *mean, double *log_std);
/* Exact ELBO of q = N(mean, diag(exp(2 log_std))) for data point b, and its gradient
 * with respect to (mean, log_std) (either output may be NULL). */
double lg_exact_elbo(const lg_model *m, size_t b, const double *mean, const double *log_std,
                     double *d_mean, double *d_log_std);

/* Faulty likelihood wrapper: behaves like lg_likelihood for the first
 * ok_calls calls, then misbehaves according to mode on every later call. */
enum lg_fault_mode {
    LG_FAULT_CODE = 0,     /* return code */
    LG_FAULT_NAN = 1,      /* write NaN into log_density[0], return 0 */
    LG_FAULT_NAN_GRAD = 2, /* write NaN into grad[0] when grad requested, return 0 */
    LG_FAULT_NEG_INF = 3   /* write -INFINITY into every log density, return 0 */
};
typedef struct lg_faulty {
    lg_model *lg;
    unsigned long ok_calls;
    unsigned long calls;
    int code;
    int mode;
} lg_faulty;
int lg_faulty_likelihood(size_t n, size_t dim, const double *z, const size_t *data_index,
                         double *log_density, double *grad, void *user_data);

/* Build a batch*dim proposal from per-data-point (mean, log_std) rows. */
bsvi_status lg_make_proposal(size_t batch, size_t dim, const double *mean,
                             const double *log_std, bsvi_proposal **out);

#endif /* BSVI_TEST_LINGAUSS_H */
