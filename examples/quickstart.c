/*
 * quickstart.c - the first libbsvi demo.
 *
 * What it shows
 * -------------
 * A linear-Gaussian latent-variable model, the one model where log p(x) is
 * known exactly, so every variational bound can be compared with the truth:
 *
 *     p(z)     = N(0, I_d)                       d = 4 latent dimensions
 *     p(x | z) = N(W z + b, s^2 I_D)             D = 20 observed dimensions
 *     p(x)     = N(b, W W^T + s^2 I_D)           (exact, by a Cholesky factor)
 *
 * W is a fixed pseudo-random matrix (not orthogonal columns), so the exact
 * posterior p(z | x) is a correlated Gaussian and no diagonal Gaussian q can
 * match it: every bound keeps a gap.
 *
 * The "encoder" is deliberately poor: it proposes q(z; lambda_0) = N(0, I),
 * the prior, for every data point (an untrained network would do about as
 * badly). libbsvi then refines that proposal with k steps of stochastic
 * variational inference (SVI) and turns the buffer of k+1 importance weights
 * into the BSVI bound. The program prints, averaged over a batch of data
 * points and several independent draws:
 *
 *     ELBO, IWAE-10, SVI-k, BSVI-k (uniform pi), BSVI-k (optimised pi),
 *     BSVI-SIR, and the exact log p(x).
 *
 * Build: the CMake build makes it (see README.md); against an installed
 * libbsvi, compile it with the flags of `pkg-config --cflags --libs bsvi`.
 * Run:
 *     ./quickstart [--seed N] [--batch N] [--steps K] [--eta X] [--reps R]
 *
 * Step size. Plain gradient ascent on log w is stable only for eta well below
 * 2 / (largest curvature of log p(x, z) in z), and that curvature, the largest
 * eigenvalue of I + W^T W / s^2, is about 10 here. The default eta = 0.04 was
 * chosen by measurement (seed 1, k = 9): the SVI-9 gap to log p(x) is -4.8 at
 * eta 0.01, -1.9 at 0.03, -1.65 at 0.04 and 0.05, -2.3 at 0.08; from about
 * 0.1 many trajectories diverge. A rare trajectory can diverge even at 0.04
 * (a large draw far in the tail), so the demo uses BSVI_DIVERGENCE_FREEZE: such
 * a data point stops refining at its last finite proposal, its bounds stay
 * valid, and the count is printed. Larger models need smaller steps (see the
 * spec).
 *
 * Exit status: 0 on success; 1 on a usage error or a failed libbsvi call (the
 * status and the handle's last-error message are printed); 2 if some bound's
 * mean exceeds the exact log p(x) by more than 4 standard errors, which a
 * correct library does not do.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bsvi/bsvi.h>

/* ------------------------------------------------------------------------- */
/* Problem size and fixed settings (change them to experiment).              */
/* ------------------------------------------------------------------------- */

#define LATENT_DIM 4  /* d: latent dimension                                   */
#define OBS_DIM 20    /* D: observed dimension                                 */
#define NOISE_STD 1.0 /* s: observation noise standard deviation               */
#define W_SCALE 0.5   /* W has i.i.d. N(0, W_SCALE^2) entries                  */
#define IWAE_K 10     /* samples of the IWAE row                               */
#define SIR_M 1       /* resampled decoder targets of the BSVI-SIR row         */
#define PI_ITERS 300  /* Adam steps on the buffer weights pi                   */
#define PI_LR 0.05    /* Adam learning rate for the pi logits                  */

static const double LOG_2PI = 1.8378770664093454835606594728112;

/* Command-line options with their defaults. */
typedef struct options {
    uint64_t seed; /* --seed: seeds the data and every libbsvi handle         */
    size_t batch;  /* --batch: data points B                                  */
    size_t steps;  /* --steps: SVI steps k (the buffer has k+1 slots)         */
    double eta;    /* --eta: SVI step size (plain gradient ascent)            */
    size_t reps;   /* --reps: independent draws of every bound per data point */
} options;

/* ------------------------------------------------------------------------- */
/* A small local random generator for the data (splitmix64 + Box-Muller).    */
/* libbsvi's own handles use their own counter-based generators.             */
/* ------------------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in (0, 1): 53 random bits, shifted off zero. */
static double uniform01(uint64_t *state)
{
    return ((double)(splitmix64(state) >> 11) + 0.5) * 0x1.0p-53;
}

/* Standard normal by the Box-Muller transform (one of the pair is used). */
static double std_normal(uint64_t *state)
{
    const double u1 = uniform01(state);
    const double u2 = uniform01(state);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586476925286766559 * u2);
}

/* ------------------------------------------------------------------------- */
/* Dense linear algebra for the exact answers (n is at most OBS_DIM).        */
/* ------------------------------------------------------------------------- */

/* In-place Cholesky factor A = L L^T of a symmetric positive definite n*n
 * row-major matrix; L is left in the lower triangle. Returns 0 on success. */
static int cholesky(double *a, size_t n)
{
    for (size_t j = 0; j < n; ++j) {
        double diag = a[j * n + j];
        for (size_t k = 0; k < j; ++k)
            diag -= a[j * n + k] * a[j * n + k];
        if (!(diag > 0.0))
            return 1;
        const double ljj = sqrt(diag);
        a[j * n + j] = ljj;
        for (size_t i = j + 1; i < n; ++i) {
            double v = a[i * n + j];
            for (size_t k = 0; k < j; ++k)
                v -= a[i * n + k] * a[j * n + k];
            a[i * n + j] = v / ljj;
        }
    }
    return 0;
}

/* Solve L y = r in place (L lower triangular from cholesky()). */
static void forward_solve(const double *l, size_t n, double *r)
{
    for (size_t i = 0; i < n; ++i) {
        double v = r[i];
        for (size_t k = 0; k < i; ++k)
            v -= l[i * n + k] * r[k];
        r[i] = v / l[i * n + i];
    }
}

/* ------------------------------------------------------------------------- */
/* The model, as libbsvi sees it: one batched likelihood callback.           */
/* The prior p(z) = N(0, I) is libbsvi's built-in standard normal.           */
/* ------------------------------------------------------------------------- */

typedef struct linear_gaussian {
    double W[OBS_DIM * LATENT_DIM]; /* row-major D x d loading matrix       */
    double bias[OBS_DIM];           /* b                                    */
    double noise_var;               /* s^2                                  */
    size_t batch;                   /* number of data points B              */
    const double *x;                /* B x D data, row-major                */
} linear_gaussian;

/*
 * log p(x_b | z) = -D/2 log(2 pi s^2) - |x_b - W z - b|^2 / (2 s^2)
 * d/dz          =  W^T (x_b - W z - b) / s^2
 * for n latent rows z[r*d .. r*d+d-1], row r belonging to data point data_index[r].
 */
static int linear_gaussian_loglik(size_t n, size_t dim, const double *z,
                                  const size_t *data_index, double *log_density, double *grad,
                                  void *user_data)
{
    const linear_gaussian *m = (const linear_gaussian *)user_data;
    if (dim != LATENT_DIM)
        return 1; /* not our model: libbsvi reports BSVI_ERR_CALLBACK_FAILED */
    const double log_norm = -0.5 * (double)OBS_DIM * (LOG_2PI + log(m->noise_var));

    for (size_t r = 0; r < n; ++r) {
        const size_t b = data_index[r];
        if (b >= m->batch)
            return 2;
        const double *x = m->x + b * OBS_DIM;
        const double *zr = z + r * LATENT_DIM;
        double resid[OBS_DIM];
        double sq = 0.0;
        for (size_t i = 0; i < OBS_DIM; ++i) {
            double mean = m->bias[i];
            for (size_t j = 0; j < LATENT_DIM; ++j)
                mean += m->W[i * LATENT_DIM + j] * zr[j];
            resid[i] = x[i] - mean;
            sq += resid[i] * resid[i];
        }
        log_density[r] = log_norm - 0.5 * sq / m->noise_var;
        if (grad != NULL) {
            for (size_t j = 0; j < LATENT_DIM; ++j) {
                double g = 0.0;
                for (size_t i = 0; i < OBS_DIM; ++i)
                    g += m->W[i * LATENT_DIM + j] * resid[i];
                grad[r * LATENT_DIM + j] = g / m->noise_var;
            }
        }
    }
    return 0;
}

/* Exact log p(x_b) = log N(x_b; b, W W^T + s^2 I) for every data point. */
static int exact_log_marginal(const linear_gaussian *m, double *log_px)
{
    double c[OBS_DIM * OBS_DIM];
    for (size_t i = 0; i < OBS_DIM; ++i)
        for (size_t k = 0; k < OBS_DIM; ++k) {
            double v = (i == k) ? m->noise_var : 0.0;
            for (size_t j = 0; j < LATENT_DIM; ++j)
                v += m->W[i * LATENT_DIM + j] * m->W[k * LATENT_DIM + j];
            c[i * OBS_DIM + k] = v;
        }
    if (cholesky(c, OBS_DIM) != 0)
        return 1;
    double log_det = 0.0;
    for (size_t i = 0; i < OBS_DIM; ++i)
        log_det += 2.0 * log(c[i * OBS_DIM + i]);

    for (size_t b = 0; b < m->batch; ++b) {
        double r[OBS_DIM];
        for (size_t i = 0; i < OBS_DIM; ++i)
            r[i] = m->x[b * OBS_DIM + i] - m->bias[i];
        forward_solve(c, OBS_DIM, r); /* r = L^{-1} (x - b) */
        double maha = 0.0;
        for (size_t i = 0; i < OBS_DIM; ++i)
            maha += r[i] * r[i];
        log_px[b] = -0.5 * ((double)OBS_DIM * LOG_2PI + log_det + maha);
    }
    return 0;
}

/* Largest |correlation| of the exact posterior covariance (I + W^T W / s^2)^-1:
 * non-zero means the posterior is not diagonal. */
static double posterior_max_correlation(const linear_gaussian *m)
{
    double p[LATENT_DIM * LATENT_DIM], cov[LATENT_DIM * LATENT_DIM];
    for (size_t j = 0; j < LATENT_DIM; ++j)
        for (size_t l = 0; l < LATENT_DIM; ++l) {
            double v = (j == l) ? 1.0 : 0.0;
            for (size_t i = 0; i < OBS_DIM; ++i)
                v += m->W[i * LATENT_DIM + j] * m->W[i * LATENT_DIM + l] / m->noise_var;
            p[j * LATENT_DIM + l] = v;
        }
    if (cholesky(p, LATENT_DIM) != 0)
        return NAN;
    /* Column l of cov = P^{-1} e_l, i.e. cov = L^-T L^-1; compute L^-1 e_l first. */
    double linv[LATENT_DIM * LATENT_DIM]; /* row-major, column l holds L^-1 e_l */
    for (size_t l = 0; l < LATENT_DIM; ++l) {
        double e[LATENT_DIM] = {0};
        e[l] = 1.0;
        forward_solve(p, LATENT_DIM, e);
        for (size_t j = 0; j < LATENT_DIM; ++j)
            linv[j * LATENT_DIM + l] = e[j];
    }
    for (size_t j = 0; j < LATENT_DIM; ++j) /* cov = (L^-1)^T (L^-1) */
        for (size_t l = 0; l < LATENT_DIM; ++l) {
            double v = 0.0;
            for (size_t i = 0; i < LATENT_DIM; ++i)
                v += linv[i * LATENT_DIM + j] * linv[i * LATENT_DIM + l];
            cov[j * LATENT_DIM + l] = v;
        }
    double worst = 0.0;
    for (size_t j = 0; j < LATENT_DIM; ++j)
        for (size_t l = j + 1; l < LATENT_DIM; ++l) {
            const double rho = cov[j * LATENT_DIM + l] /
                               sqrt(cov[j * LATENT_DIM + j] * cov[l * LATENT_DIM + l]);
            if (fabs(rho) > worst)
                worst = fabs(rho);
        }
    return worst;
}

/* ------------------------------------------------------------------------- */
/* Statistics: per data point running mean and variance over repeated draws  */
/* (Welford), so the standard error counts only Monte Carlo noise: the data  */
/* are held fixed and every row is compared with the same log p(x).          */
/* ------------------------------------------------------------------------- */

typedef struct accumulator {
    size_t batch, count; /* data points; draws seen per data point */
    double *mean, *m2;   /* per data point running mean and sum of squared deviations */
} accumulator;

static int accumulator_init(accumulator *a, size_t batch)
{
    a->batch = batch;
    a->count = 0;
    a->mean = calloc(batch, sizeof *a->mean);
    a->m2 = calloc(batch, sizeof *a->m2);
    return (a->mean == NULL || a->m2 == NULL) ? 1 : 0;
}

static void accumulator_free(accumulator *a)
{
    free(a->mean);
    free(a->m2);
    a->mean = a->m2 = NULL;
}

/* Add one draw of the bound for every data point. */
static void accumulator_add(accumulator *a, const double *bounds)
{
    a->count += 1;
    const double n = (double)a->count;
    for (size_t b = 0; b < a->batch; ++b) {
        const double delta = bounds[b] - a->mean[b];
        a->mean[b] += delta / n;
        a->m2[b] += delta * (bounds[b] - a->mean[b]);
    }
}

/* Mean over data points, and its Monte Carlo standard error
 * sqrt(sum_b var_b / R) / B with var_b the sample variance of R draws. */
static void accumulator_summary(const accumulator *a, double *mean, double *std_err)
{
    double sum = 0.0, var_sum = 0.0;
    for (size_t b = 0; b < a->batch; ++b) {
        sum += a->mean[b];
        if (a->count > 1)
            var_sum += a->m2[b] / (double)(a->count - 1);
    }
    *mean = sum / (double)a->batch;
    *std_err = sqrt(var_sum / (double)a->count) / (double)a->batch;
}

/* ------------------------------------------------------------------------- */
/* Error handling: every libbsvi status is checked.                          */
/* ------------------------------------------------------------------------- */

/* Evaluate CALL; on failure print the status and HANDLE's last error (read
 * after the call has returned) and return 1 from the enclosing function. */
#define CHECK(CALL, LAST_ERROR, HANDLE)                                                     \
    do {                                                                                    \
        const bsvi_status check_status_ = (CALL);                                           \
        if (check_status_ != BSVI_OK) {                                                     \
            fflush(stdout);                                                                 \
            fprintf(stderr, "quickstart: %s failed at line %d: %s: %s\n", #CALL, __LINE__,  \
                    bsvi_status_string(check_status_), LAST_ERROR(HANDLE));                 \
            return 1;                                                                       \
        }                                                                                   \
    } while (0)

/* ------------------------------------------------------------------------- */
/* Command line.                                                             */
/* ------------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: quickstart [--seed N] [--batch N] [--steps K] [--eta X] [--reps R]\n"
            "  --seed N   seed for the data and every libbsvi handle (default 1)\n"
            "  --batch N  data points, 1..100000 (default 200)\n"
            "  --steps K  SVI steps k, 1..1000 (default 9; the buffer has k+1 weights)\n"
            "  --eta X    SVI step size, plain gradient ascent (default 0.04)\n"
            "  --reps R   independent draws of each bound per data point, 2..10000 (default 20)\n");
}

static int parse_size(const char *s, size_t lo, size_t hi, size_t *out)
{
    char *end = NULL;
    errno = 0;
    const unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < lo || v > hi)
        return 1;
    *out = (size_t)v;
    return 0;
}

static int parse_options(int argc, char **argv, options *o)
{
    o->seed = 1;
    o->batch = 200;
    o->steps = 9;
    o->eta = 0.04;
    o->reps = 20;
    for (int i = 1; i < argc; ++i) {
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            usage(stdout);
            exit(0);
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "quickstart: unknown option or missing value: %s\n", arg);
            return 1;
        }
        const char *val = argv[++i];
        int bad = 0;
        if (strcmp(arg, "--seed") == 0) {
            char *end = NULL;
            errno = 0;
            o->seed = (uint64_t)strtoull(val, &end, 10);
            bad = (errno != 0 || end == val || *end != '\0' || val[0] == '-');
        } else if (strcmp(arg, "--batch") == 0) {
            bad = parse_size(val, 1, 100000, &o->batch);
        } else if (strcmp(arg, "--steps") == 0) {
            bad = parse_size(val, 1, 1000, &o->steps);
        } else if (strcmp(arg, "--reps") == 0) {
            bad = parse_size(val, 2, 10000, &o->reps);
        } else if (strcmp(arg, "--eta") == 0) {
            char *end = NULL;
            o->eta = strtod(val, &end);
            bad = (end == val || *end != '\0' || !(o->eta > 0.0) || !isfinite(o->eta));
        } else {
            fprintf(stderr, "quickstart: unknown option: %s\n", arg);
            return 1;
        }
        if (bad) {
            fprintf(stderr, "quickstart: bad value for %s: %s\n", arg, val);
            return 1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------- */
/* The demo.                                                                 */
/* ------------------------------------------------------------------------- */

/* Table rows, in print order. */
enum { ROW_ELBO, ROW_IWAE, ROW_SVI, ROW_BSVI_UNIFORM, ROW_BSVI_OPT, ROW_SIR, NUM_ROWS };

/* Every handle and buffer of the demo, so that main() can free them in one place. */
typedef struct demo {
    options opt;
    linear_gaussian lg;
    double *x;      /* B x D data                              */
    double *log_px; /* B exact log marginals                   */
    double *mean0;  /* B x d encoder means     (lambda_0)      */
    double *lstd0;  /* B x d encoder log-stds  (lambda_0)      */
    double *bounds; /* B per-data-point bounds of one compute  */
    double *pi;     /* k+1 optimised buffer weights, for print */
    size_t *slots;  /* B*M slots of the SIR targets            */
    accumulator acc[NUM_ROWS];

    bsvi_model *model;
    bsvi_proposal *q;              /* the encoder's proposal lambda_0            */
    bsvi_svi *svi;                 /* SVI used for the reported draws            */
    bsvi_svi *svi_train;           /* SVI used while optimising pi (other seed)  */
    bsvi_trajectory *traj;         /* the buffer of one SVI run                  */
    size_t diverged;               /* data points frozen after divergence, summed */
    bsvi_estimator *est[NUM_ROWS]; /* one estimator per table row                */
    bsvi_buffer_weights *pi_opt;   /* the optimised buffer weights (k+1 slots)   */
    double mean_position;          /* E_pi[i/k] of the optimised pi              */
    double sir_position;           /* mean i/k of the slots BSVI-SIR resampled   */
} demo;

/* Distinct, well-mixed seeds for the handles, all derived from --seed. */
static uint64_t derive_seed(uint64_t seed, uint64_t purpose)
{
    uint64_t state = seed ^ (purpose * 0xD1B54A32D192ED03ull);
    return splitmix64(&state);
}

/* Draw W, b and the data x_b = W z_b + b + s * noise from the model itself. */
static void make_data(demo *s)
{
    uint64_t rng = derive_seed(s->opt.seed, 0);
    linear_gaussian *m = &s->lg;
    m->noise_var = NOISE_STD * NOISE_STD;
    m->batch = s->opt.batch;
    m->x = s->x;
    /* W has i.i.d. Gaussian entries: its columns are far from orthogonal. */
    for (size_t i = 0; i < OBS_DIM * LATENT_DIM; ++i)
        m->W[i] = W_SCALE * std_normal(&rng);
    for (size_t i = 0; i < OBS_DIM; ++i)
        m->bias[i] = 0.5 * std_normal(&rng);
    for (size_t b = 0; b < s->opt.batch; ++b) {
        double z[LATENT_DIM];
        for (size_t j = 0; j < LATENT_DIM; ++j)
            z[j] = std_normal(&rng);
        for (size_t i = 0; i < OBS_DIM; ++i) {
            double v = m->bias[i] + NOISE_STD * std_normal(&rng);
            for (size_t j = 0; j < LATENT_DIM; ++j)
                v += m->W[i * LATENT_DIM + j] * z[j];
            s->x[b * OBS_DIM + i] = v;
        }
    }
}

/* Create the model, the encoder proposal, SVI, a trajectory and the estimators. */
static int setup(demo *s)
{
    const size_t B = s->opt.batch, k = s->opt.steps;

    CHECK(bsvi_model_create(LATENT_DIM, &s->model), bsvi_model_last_error, NULL);
    CHECK(bsvi_model_set_likelihood(s->model, linear_gaussian_loglik, &s->lg),
          bsvi_model_last_error, s->model);
    /* The prior stays libbsvi's built-in N(0, I) (the default). */

    /* The poor "encoder": lambda_0 = (mean 0, log-std 0), i.e. q = prior, for every x. */
    for (size_t i = 0; i < B * LATENT_DIM; ++i) {
        s->mean0[i] = 0.0;
        s->lstd0[i] = 0.0;
    }
    CHECK(bsvi_proposal_create(B, LATENT_DIM, &s->q), bsvi_proposal_last_error, NULL);
    CHECK(bsvi_proposal_set_params(s->q, s->mean0, s->lstd0), bsvi_proposal_last_error, s->q);
    CHECK(bsvi_proposal_set_seed(s->q, derive_seed(s->opt.seed, 1)), bsvi_proposal_last_error,
          s->q);

    /* SVI-k: k plain gradient-ascent steps of size eta, total pathwise gradient
     * (the paper's Algorithm 1), one sample per step. */
    bsvi_svi **svis[2] = {&s->svi, &s->svi_train};
    for (size_t i = 0; i < 2; ++i) {
        CHECK(bsvi_svi_create(LATENT_DIM, svis[i]), bsvi_svi_last_error, NULL);
        bsvi_svi *svi = *svis[i];
        CHECK(bsvi_svi_set_steps(svi, k), bsvi_svi_last_error, svi);
        CHECK(bsvi_svi_set_step_size(svi, s->opt.eta), bsvi_svi_last_error, svi);
        CHECK(bsvi_svi_set_step_rule(svi, BSVI_STEP_GRADIENT), bsvi_svi_last_error, svi);
        CHECK(bsvi_svi_set_grad_form(svi, BSVI_GRAD_PATHWISE), bsvi_svi_last_error, svi);
        CHECK(bsvi_svi_set_divergence_policy(svi, BSVI_DIVERGENCE_FREEZE), bsvi_svi_last_error,
              svi);
        CHECK(bsvi_svi_set_seed(svi, derive_seed(s->opt.seed, 2 + i)), bsvi_svi_last_error, svi);
    }
    CHECK(bsvi_trajectory_create(&s->traj), bsvi_trajectory_last_error, NULL);

    /* One estimator per row of the table (each holds its row's results; the bound is the
     * function called in evaluate()), and the buffer weights to optimise, uniform at first. */
    for (size_t r = 0; r < NUM_ROWS; ++r) {
        CHECK(bsvi_estimator_create(LATENT_DIM, &s->est[r]), bsvi_estimator_last_error, NULL);
        CHECK(bsvi_estimator_set_seed(s->est[r], derive_seed(s->opt.seed, 10 + r)),
              bsvi_estimator_last_error, s->est[r]);
    }
    CHECK(bsvi_buffer_weights_create(k + 1, &s->pi_opt), bsvi_buffer_weights_last_error, NULL);
    CHECK(bsvi_buffer_weights_set_adam(s->pi_opt, PI_LR, 0.9, 0.999),
          bsvi_buffer_weights_last_error, s->pi_opt);
    return 0;
}

/*
 * Learn the buffer weights pi = softmax(a): each iteration runs SVI afresh
 * (its own seed, so these draws are independent of the reported ones), adds
 * d/da of every data point's BSVI bound to pi's accumulated gradient, and takes
 * one Adam ascent step on the batch mean. The learned pi is then only read: by
 * the BSVI row and the BSVI-SIR row alike.
 */
static int optimise_pi(demo *s)
{
    bsvi_buffer_weights *pi = s->pi_opt;
    for (size_t it = 0; it < PI_ITERS; ++it) {
        CHECK(bsvi_svi_run(s->svi_train, s->model, s->q, s->traj), bsvi_svi_last_error,
              s->svi_train);
        s->diverged += bsvi_trajectory_num_diverged(s->traj);
        CHECK(bsvi_buffer_weights_accumulate(pi, s->traj), bsvi_buffer_weights_last_error, pi);
        CHECK(bsvi_buffer_weights_step(pi), bsvi_buffer_weights_last_error, pi);
    }
    CHECK(bsvi_buffer_weights_get_probs(pi, s->pi, s->opt.steps + 1),
          bsvi_buffer_weights_last_error, pi);
    CHECK(bsvi_buffer_weights_mean_position(pi, &s->mean_position),
          bsvi_buffer_weights_last_error, pi);
    return 0;
}

/* Copy the per-data-point bounds of estimator ROW and add them, as gaps to the
 * exact log p(x), to that row's accumulator. */
static int record(demo *s, size_t row)
{
    const size_t B = s->opt.batch;
    bsvi_estimator *est = s->est[row];
    CHECK(bsvi_estimator_get_bounds(est, s->bounds, B), bsvi_estimator_last_error, est);
    for (size_t b = 0; b < B; ++b)
        s->bounds[b] -= s->log_px[b];
    accumulator_add(&s->acc[row], s->bounds);
    return 0;
}

/* The reported draws: reps rounds of every estimator on the same data. */
static int evaluate(demo *s)
{
    const size_t B = s->opt.batch, k = s->opt.steps;
    double slot_sum = 0.0;
    size_t slot_count = 0;

    for (size_t rep = 0; rep < s->opt.reps; ++rep) {
        /* ELBO and IWAE-10 sample the encoder's proposal directly. */
        bsvi_estimator **e = s->est;
        CHECK(bsvi_estimator_elbo(e[ROW_ELBO], s->model, s->q, BSVI_GRAD_PATHWISE),
              bsvi_estimator_last_error, e[ROW_ELBO]);
        CHECK(bsvi_estimator_iwae(e[ROW_IWAE], s->model, s->q, IWAE_K, BSVI_GRAD_PATHWISE),
              bsvi_estimator_last_error, e[ROW_IWAE]);

        /* One SVI-k run fills the buffer; every trajectory-based row reads the
         * same buffer, so their differences are not blurred by separate draws. */
        CHECK(bsvi_svi_run(s->svi, s->model, s->q, s->traj), bsvi_svi_last_error, s->svi);
        s->diverged += bsvi_trajectory_num_diverged(s->traj);
        CHECK(bsvi_estimator_svi(e[ROW_SVI], s->traj), bsvi_estimator_last_error, e[ROW_SVI]);
        CHECK(bsvi_estimator_bsvi(e[ROW_BSVI_UNIFORM], s->traj, NULL), bsvi_estimator_last_error,
              e[ROW_BSVI_UNIFORM]);
        CHECK(bsvi_estimator_bsvi(e[ROW_BSVI_OPT], s->traj, s->pi_opt), bsvi_estimator_last_error,
              e[ROW_BSVI_OPT]);
        CHECK(bsvi_estimator_bsvi_sir(e[ROW_SIR], s->traj, s->pi_opt, SIR_M),
              bsvi_estimator_last_error, e[ROW_SIR]);

        for (size_t row = 0; row < NUM_ROWS; ++row)
            if (record(s, row) != 0)
                return 1;

        /* Which buffer slots did BSVI-SIR hand to the decoder? */
        const size_t nt = bsvi_estimator_num_targets(s->est[ROW_SIR]);
        if (nt != B * SIR_M) {
            fprintf(stderr, "quickstart: BSVI-SIR returned %zu targets, expected %zu\n", nt,
                    (size_t)(B * SIR_M));
            return 1;
        }
        CHECK(bsvi_estimator_get_targets(s->est[ROW_SIR], nt, NULL, s->slots, NULL, NULL),
              bsvi_estimator_last_error, s->est[ROW_SIR]);
        for (size_t t = 0; t < nt; ++t)
            slot_sum += (double)s->slots[t] / (double)k;
        slot_count += nt;
    }
    s->sir_position = slot_sum / (double)slot_count;
    return 0;
}

/* Print the table and one line of interpretation computed from it. */
static int report(demo *s)
{
    const size_t B = s->opt.batch, k = s->opt.steps;
    double gap[NUM_ROWS], se[NUM_ROWS], log_px_mean = 0.0;
    for (size_t b = 0; b < B; ++b)
        log_px_mean += s->log_px[b];
    log_px_mean /= (double)B;
    for (size_t r = 0; r < NUM_ROWS; ++r)
        accumulator_summary(&s->acc[r], &gap[r], &se[r]);

    char names[NUM_ROWS][48];
    snprintf(names[ROW_ELBO], sizeof names[0], "ELBO");
    snprintf(names[ROW_IWAE], sizeof names[0], "IWAE-%d", IWAE_K);
    snprintf(names[ROW_SVI], sizeof names[0], "SVI-%zu", k);
    snprintf(names[ROW_BSVI_UNIFORM], sizeof names[0], "BSVI-%zu, uniform pi", k);
    snprintf(names[ROW_BSVI_OPT], sizeof names[0], "BSVI-%zu, optimised pi", k);
    snprintf(names[ROW_SIR], sizeof names[0], "BSVI-SIR-%zu (M=%d, opt. pi)", k, SIR_M);

    printf("\n%-30s %12s %16s %12s\n", "estimator", "mean bound", "gap to log p(x)",
           "std. error");
    for (size_t r = 0; r < NUM_ROWS; ++r)
        printf("%-30s %12.4f %16.4f %12.4f\n", names[r], log_px_mean + gap[r], gap[r], se[r]);
    printf("%-30s %12.4f %16.4f %12s\n", "exact log p(x)", log_px_mean, 0.0, "-");

    printf("\nmean bound: average over %zu data points x %zu draws; gap = bound - log p(x);\n"
           "std. error: Monte Carlo standard error of the mean gap (data held fixed).\n",
           B, s->opt.reps);
    /* every data point of every SVI run is one trajectory: the handles' counters */
    bsvi_stats run, train;
    CHECK(bsvi_svi_get_stats(s->svi, &run), bsvi_svi_last_error, s->svi);
    CHECK(bsvi_svi_get_stats(s->svi_train, &train), bsvi_svi_last_error, s->svi_train);
    printf("SVI divergence: %zu of %llu trajectories stopped early (frozen at their last finite "
           "proposal)\n", s->diverged, (unsigned long long)(run.data_points + train.data_points));
    printf("optimised pi (%d Adam steps, rate %g): E_pi[i/k] = %.3f; pi =", PI_ITERS, PI_LR,
           s->mean_position);
    for (size_t i = 0; i <= k; ++i)
        printf(" %.3f", s->pi[i]);
    /* BSVI-SIR's bound is BSVI's on the same buffer; only its decoder targets differ. */
    double sir_diff = 0.0;
    for (size_t b = 0; b < B; ++b) {
        const double diff = fabs(s->acc[ROW_SIR].mean[b] - s->acc[ROW_BSVI_OPT].mean[b]);
        if (diff > sir_diff)
            sir_diff = diff;
    }
    printf("\nBSVI-SIR: %d decoder target(s) per data point instead of %zu, mean resampled "
           "position i/k = %.3f;\n          its bound equals BSVI with the same pi "
           "(largest difference %.2g)\n",
           SIR_M, k + 1, s->sir_position, sir_diff);

    /* Interpretation, from the numbers above. A bound "exceeds" log p(x) only if
     * its mean gap is positive by more than 4 standard errors. */
    int above = 0;
    for (size_t r = 0; r < NUM_ROWS; ++r)
        if (gap[r] > 4.0 * se[r]) {
            printf("WARNING: %s is above log p(x) by %.4f (%.1f standard errors)\n", names[r],
                   gap[r], gap[r] / se[r]);
            above = 1;
        }
    const int svi_beats_elbo = gap[ROW_SVI] > gap[ROW_ELBO];
    const int bsvi_beats_svi = gap[ROW_BSVI_OPT] >= gap[ROW_SVI];
    const int uniform_beats_svi = gap[ROW_BSVI_UNIFORM] >= gap[ROW_SVI];
    printf("\nInterpretation: BSVI-%zu (optimised pi) >= SVI-%zu >= ELBO %s "
           "(%.3f %s %.3f %s %.3f); uniform pi %s SVI-%zu; %s.\n",
           k, k, (svi_beats_elbo && bsvi_beats_svi) ? "held" : "did NOT hold",
           gap[ROW_BSVI_OPT], bsvi_beats_svi ? ">=" : "<", gap[ROW_SVI],
           svi_beats_elbo ? ">=" : "<", gap[ROW_ELBO],
           uniform_beats_svi ? "also beat" : "fell below", k,
           above ? "SOME BOUND EXCEEDED log p(x): see the warning above"
                 : "every bound stayed below log p(x)");
    return above ? 2 : 0;
}

static void teardown(demo *s)
{
    for (size_t r = 0; r < NUM_ROWS; ++r) {
        bsvi_estimator_destroy(s->est[r]);
        accumulator_free(&s->acc[r]);
    }
    bsvi_buffer_weights_destroy(s->pi_opt);
    bsvi_trajectory_destroy(s->traj);
    bsvi_svi_destroy(s->svi_train);
    bsvi_svi_destroy(s->svi);
    bsvi_proposal_destroy(s->q);
    bsvi_model_destroy(s->model);
    free(s->slots);
    free(s->pi);
    free(s->bounds);
    free(s->lstd0);
    free(s->mean0);
    free(s->log_px);
    free(s->x);
}

int main(int argc, char **argv)
{
    static demo s; /* zero-initialised: every handle starts NULL */
    if (parse_options(argc, argv, &s.opt) != 0) {
        usage(stderr);
        return 1;
    }
    const size_t B = s.opt.batch, k = s.opt.steps;

    s.x = malloc(B * OBS_DIM * sizeof *s.x);
    s.log_px = malloc(B * sizeof *s.log_px);
    s.mean0 = malloc(B * LATENT_DIM * sizeof *s.mean0);
    s.lstd0 = malloc(B * LATENT_DIM * sizeof *s.lstd0);
    s.bounds = malloc(B * sizeof *s.bounds);
    s.pi = malloc((k + 1) * sizeof *s.pi);
    s.slots = malloc(B * SIR_M * sizeof *s.slots);
    int failed = (s.x == NULL || s.log_px == NULL || s.mean0 == NULL || s.lstd0 == NULL ||
                  s.bounds == NULL || s.pi == NULL || s.slots == NULL);
    for (size_t r = 0; r < NUM_ROWS && !failed; ++r)
        failed = accumulator_init(&s.acc[r], B);
    if (failed) {
        fprintf(stderr, "quickstart: out of memory\n");
        teardown(&s);
        return 1;
    }

    make_data(&s);
    if (exact_log_marginal(&s.lg, s.log_px) != 0) {
        fprintf(stderr, "quickstart: W W^T + s^2 I is not positive definite\n");
        teardown(&s);
        return 1;
    }

    printf("libbsvi %s quickstart: linear-Gaussian model, d = %d latent, D = %d observed, "
           "noise s = %.2f\n",
           bsvi_version_string(), LATENT_DIM, OBS_DIM, NOISE_STD);
    printf("exact posterior is not diagonal: largest |correlation| = %.3f\n",
           posterior_max_correlation(&s.lg));
    printf("batch %zu data points, %zu draws each, seed %llu; encoder lambda_0 = (mean 0, "
           "log-std 0), i.e. q = prior\n",
           B, s.opt.reps, (unsigned long long)s.opt.seed);
    printf("SVI: k = %zu plain gradient-ascent steps, step size eta = %g, pathwise gradient, "
           "1 sample per step\n",
           k, s.opt.eta);

    int rc = setup(&s);
    if (rc == 0)
        rc = optimise_pi(&s);
    if (rc == 0)
        rc = evaluate(&s);
    if (rc == 0)
        rc = report(&s);
    teardown(&s);
    return rc;
}
