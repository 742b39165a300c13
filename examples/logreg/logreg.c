/*
 * logreg.c - a non-amortised model with libbsvi: Bayesian logistic regression of the
 * Challenger O-ring data (23 flights, challenger.csv; DATA.md gives source and licence).
 *
 * The model. Flight i had an O-ring incident (y_i = 1) or not, at launch temperature T_i:
 *
 *     t_i = (T_i - 70) / 10                       temperature in tens of degrees F from 70
 *     (alpha, beta) = 2.5 z,   z ~ N(0, I_2)      the prior: N(0, 2.5^2) on both coefficients
 *     y_i ~ Bernoulli(sigmoid(alpha + beta t_i))
 *
 * The prior's scale sits in the likelihood (a non-centred parametrisation), so the model
 * uses libbsvi's built-in standard normal prior. There is one data point: the whole data
 * set y. Its latent z is global, and its variational parameters lambda_0 = (mean, log-std)
 * of q(z) are two pairs of numbers this program owns and trains, where a VAE would have an
 * encoder. Reference: log p(y) = log of the integral of p(y | z) N(z; 0, I) over z, computed
 * here by quadrature on a grid (exact to about 1e-8 nats; the program prints the grid check).
 *
 * What it does, in the order of docs/tutorial.md:
 *   1. the likelihood callback: n rows of z at once, with the z-gradient when asked;
 *   2. replicas: a proposal of R copies of lambda_0 (R independent draws per call), so
 *      that every estimate and gradient averages R samples, and the SVI statistics of the
 *      step-size search are means over R trajectories;
 *   3. the step-size search (bsvi_svi_search_step_size) from the untrained lambda_0 (the
 *      prior), where SVI has much to gain;
 *   4. SVI-0, SVI-k and BSVI-k from the prior, with the buffer's effective sample size;
 *   5. training lambda_0: AMSGrad on the ELBO's (or IWAE's) gradient with respect to
 *      lambda_0 (bsvi_estimator_get_encoder_grad);
 *   6. evaluation against the exact log p(y): ELBO*, IWAE-S with PSIS k-hat and ESS
 *      (bsvi_evaluator_set_diagnostics), BSVI-K, before and after training;
 *   7. the posterior: q's mean and standard deviation beside the quadrature's.
 *
 * Run:
 *     ./logreg [--data FILE] [--objective elbo|iwae] [--iters N] [--k K] [--replicas R]
 *              [--seed S] [--check]
 * --check exits with status 2 if a result that a correct library must give is missing:
 * IWAE-5000 of the trained q within 0.05 nats of the exact log p(y) with an ESS above 30% of
 * its samples, no bound above log p(y) by more than 4 standard errors (0.05 nats for the
 * single BSVI-500 and ELBO* estimates), the searched step improving SVI-k over SVI-0 from
 * the prior by more than 2 standard errors, and BSVI-k above SVI-k. Status 1: usage or a
 * failed call.
 *
 * k-hat is printed, not checked: the weights of any Gaussian q narrower than 1/sqrt(2) of the
 * prior's scale have infinite variance here (the posterior's tails are the prior's times an
 * exponential, q's are Gaussian and thinner), so k-hat near or above 0.7 at the trained q is
 * the truth about these weights, not an error; see docs/tutorial.md.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bsvi/bsvi.h>

#ifndef LOGREG_DATA
#define LOGREG_DATA "challenger.csv"
#endif

#define DIM 2
#define PRIOR_SCALE 2.5
#define T_CENTRE 70.0
#define T_SCALE 10.0
#define LOG_2PI 1.8378770664093454835606594728112
#define MAX_ROWS 100000

typedef struct data {
    size_t n;
    double *t; /* standardised temperatures */
    double *y; /* 0 or 1 */
} data;

/* ---- 1. the model ----------------------------------------------------------------- */

static double softplus(double x) { return x > 0.0 ? x + log1p(exp(-x)) : log1p(exp(x)); }

/* log p(y | z) for n rows of z, and its z-gradient when grad is not NULL. Every row is the
 * whole data set (there is one data point), so data_index is not needed. */
static int likelihood(size_t n, size_t dim, const double *z, const size_t *data_index,
                      double *log_density, double *grad, void *user_data) {
    const data *d = (const data *)user_data;
    (void)data_index;
    if (dim != DIM) return 1;
    for (size_t r = 0; r < n; ++r) {
        const double a = PRIOR_SCALE * z[r * DIM], b = PRIOR_SCALE * z[r * DIM + 1];
        double lp = 0.0, ga = 0.0, gb = 0.0;
        for (size_t i = 0; i < d->n; ++i) {
            const double eta = a + b * d->t[i];
            lp += d->y[i] * eta - softplus(eta);
            const double res = d->y[i] - 1.0 / (1.0 + exp(-eta)); /* d/deta */
            ga += res;
            gb += res * d->t[i];
        }
        log_density[r] = lp;
        if (grad) {
            grad[r * DIM] = PRIOR_SCALE * ga;
            grad[r * DIM + 1] = PRIOR_SCALE * gb;
        }
    }
    return 0;
}

/* ---- helpers -------------------------------------------------------------------------- */

static void die(const char *what, bsvi_status st, const char *msg) {
    fprintf(stderr, "logreg: %s failed: %s: %s\n", what, bsvi_status_string(st), msg);
    exit(1);
}
#define CALL(expr, handle_msg)                                                             \
    do {                                                                                   \
        bsvi_status st_ = (expr);                                                          \
        if (st_ != BSVI_OK) die(#expr, st_, handle_msg);                                   \
    } while (0)

static int read_data(const char *path, data *d) {
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "logreg: cannot open %s: %s\n", path, strerror(errno));
        return 1;
    }
    char line[256];
    d->n = 0;
    d->t = malloc(MAX_ROWS * sizeof *d->t);
    d->y = malloc(MAX_ROWS * sizeof *d->y);
    if (!d->t || !d->y) {
        fclose(f);
        return 1;
    }
    int header = 1;
    while (fgets(line, sizeof line, f)) {
        if (header) { /* temperature_F,incident */
            header = 0;
            continue;
        }
        double T, y;
        if (sscanf(line, "%lf,%lf", &T, &y) != 2 || (y != 0.0 && y != 1.0) || !isfinite(T) ||
            d->n == MAX_ROWS) {
            fprintf(stderr, "logreg: %s: bad row %zu: %s", path, d->n + 1, line);
            fclose(f);
            return 1;
        }
        d->t[d->n] = (T - T_CENTRE) / T_SCALE;
        d->y[d->n] = y;
        ++d->n;
    }
    fclose(f);
    if (d->n == 0) {
        fprintf(stderr, "logreg: %s has no data rows\n", path);
        return 1;
    }
    return 0;
}

/* log p(y) and the posterior mean and sd of z by the trapezoid rule on [-8, 8]^2, step h.
 * The integrand is smooth and negligible at the edges (the prior alone is below e^-32), so
 * the rule converges faster than any power of h. */
static double quadrature(const data *d, double h, double *mean, double *sd) {
    const size_t m = (size_t)(16.0 / h + 0.5) + 1;
    double *row = malloc(m * sizeof *row), *lj = malloc(m * m * sizeof *lj);
    size_t *idx = calloc(m, sizeof *idx);
    double *z = malloc(m * DIM * sizeof *z);
    if (!row || !lj || !idx || !z) {
        fprintf(stderr, "logreg: out of memory\n");
        exit(1);
    }
    double mx = -INFINITY;
    for (size_t i = 0; i < m; ++i) {
        for (size_t j = 0; j < m; ++j) {
            z[j * DIM] = -8.0 + h * (double)i;
            z[j * DIM + 1] = -8.0 + h * (double)j;
        }
        likelihood(m, DIM, z, idx, row, NULL, (void *)d);
        for (size_t j = 0; j < m; ++j) {
            const double a = z[j * DIM], b = z[j * DIM + 1];
            lj[i * m + j] = row[j] - LOG_2PI - 0.5 * (a * a + b * b);
            if (lj[i * m + j] > mx) mx = lj[i * m + j];
        }
    }
    double s = 0.0, s1[DIM] = {0, 0}, s2[DIM] = {0, 0};
    for (size_t i = 0; i < m; ++i)
        for (size_t j = 0; j < m; ++j) {
            const double w = exp(lj[i * m + j] - mx);
            const double c[DIM] = {-8.0 + h * (double)i, -8.0 + h * (double)j};
            s += w;
            for (int q = 0; q < DIM; ++q) {
                s1[q] += w * c[q];
                s2[q] += w * c[q] * c[q];
            }
        }
    for (int q = 0; q < DIM; ++q) {
        mean[q] = s1[q] / s;
        sd[q] = sqrt(s2[q] / s - mean[q] * mean[q]);
    }
    free(row);
    free(lj);
    free(idx);
    free(z);
    return mx + log(s * h * h);
}

/* ---- 2. replicas of lambda_0 --------------------------------------------------------- */

typedef struct host {
    data d;
    bsvi_model *model;
    bsvi_proposal *q;  /* R replicas of lambda_0 */
    size_t R;
    double lam_mean[DIM], lam_ls[DIM];
    double *rep_mean, *rep_ls; /* R*DIM */
} host;

static void set_replicas(host *h) {
    for (size_t r = 0; r < h->R; ++r)
        for (int j = 0; j < DIM; ++j) {
            h->rep_mean[r * DIM + (size_t)j] = h->lam_mean[j];
            h->rep_ls[r * DIM + (size_t)j] = h->lam_ls[j];
        }
    CALL(bsvi_proposal_set_params(h->q, h->rep_mean, h->rep_ls), bsvi_proposal_last_error(h->q));
}

/* The step search's batch source: one batch, the R replicas of the current lambda_0. */
static int one_batch(void *user_data, size_t index, const bsvi_model **model,
                     const bsvi_proposal **proposal) {
    host *h = (host *)user_data;
    if (index != 0) return 1;
    *model = h->model;
    *proposal = h->q;
    return 0;
}

/* ---- 3. the step-size search ------------------------------------------------------- */

static double search_step(host *h, bsvi_svi *svi, const char *label, int verbose,
                          double *gain, double *gain_se) {
    bsvi_step_trial tr[BSVI_STEP_SEARCH_MAX_TRIALS];
    bsvi_step_search_result res;
    bsvi_step_search_options o = bsvi_step_search_options_default();
    CALL(bsvi_svi_search_step_size(svi, one_batch, h, 1, NULL, &o, tr,
                                   BSVI_STEP_SEARCH_MAX_TRIALS, &res),
         bsvi_svi_last_error(svi));
    printf("\nstep-size search %s (k = %zu, %zu trajectories, %zu step sizes tried):\n", label,
           bsvi_svi_steps(svi), h->R, res.num_trials);
    if (verbose) {
        printf("  %-10s %10s %12s %10s %9s\n", "eta", "SVI-k-SVI-0", "+- s.e.", "BSVI-SVI-k",
               "diverged");
        for (size_t i = 0; i < res.num_trials; ++i)
            printf("  %-10.4g %10.3f %12.3f %10.3f %9zu%s\n", tr[i].step_size, tr[i].svik_gain,
                   tr[i].svik_gain_se, tr[i].bsvik_gain, tr[i].diverged,
                   i == res.best ? "   <- best safe step" : "");
    }
    if (res.best == BSVI_STEP_SEARCH_NONE) {
        printf("  no step size improves SVI-k over SVI-0 safely (first diverging: %g)\n",
               res.first_diverging);
        *gain = 0.0;
        *gain_se = 0.0;
        return NAN;
    }
    printf("  chosen eta = %.4g: SVI-k - SVI-0 = %.3f +- %.3f nats (first diverging step: %g)\n",
           res.step_size, tr[res.best].svik_gain, tr[res.best].svik_gain_se,
           res.first_diverging);
    *gain = tr[res.best].svik_gain;
    *gain_se = tr[res.best].svik_gain_se;
    return res.step_size;
}

/* ---- 4. SVI-0, SVI-k and BSVI-k over the replicas ------------------------------------ */

typedef struct summary {
    double svi0, svik, bsvik, se0, sek, seb; /* means over replicas, standard errors */
    double ess;                               /* mean ESS of the buffer weights w_i */
} summary;

static void mean_se(const double *v, size_t n, double *mean, double *se) {
    double s = 0.0, s2 = 0.0;
    for (size_t i = 0; i < n; ++i) s += v[i];
    const double m = s / (double)n;
    for (size_t i = 0; i < n; ++i) s2 += (v[i] - m) * (v[i] - m);
    *mean = m;
    *se = n > 1 ? sqrt(s2 / (double)(n - 1) / (double)n) : 0.0;
}

static summary refine_summary(host *h, bsvi_svi *svi, bsvi_trajectory *t, bsvi_estimator *est,
                              bsvi_diagnostics *diag) {
    summary s;
    const size_t R = h->R;
    double *b0 = malloc(3 * R * sizeof *b0), *ess = malloc(R * sizeof *ess);
    if (!b0 || !ess) exit(1);
    double *bk = b0 + R, *bb = b0 + 2 * R;
    CALL(bsvi_svi_run(svi, h->model, h->q, t), bsvi_svi_last_error(svi));
    const size_t k = bsvi_trajectory_steps(t);
    double *lw = malloc(R * (k + 1) * sizeof *lw);
    if (!lw) exit(1);
    CALL(bsvi_trajectory_get_log_weights(t, lw), bsvi_trajectory_last_error(t));
    for (size_t r = 0; r < R; ++r) {
        b0[r] = lw[r * (k + 1)];
        bk[r] = lw[r * (k + 1) + k];
    }
    CALL(bsvi_estimator_bsvi(est, t, NULL), bsvi_estimator_last_error(est));
    CALL(bsvi_estimator_get_bounds(est, bb, R), bsvi_estimator_last_error(est));
    CALL(bsvi_diagnostics_trajectory(diag, t, NULL, ess, NULL), "bsvi_diagnostics_trajectory");
    mean_se(b0, R, &s.svi0, &s.se0);
    mean_se(bk, R, &s.svik, &s.sek);
    mean_se(bb, R, &s.bsvik, &s.seb);
    double e = 0.0;
    for (size_t r = 0; r < R; ++r) e += ess[r];
    s.ess = e / (double)R;
    free(b0);
    free(ess);
    free(lw);
    return s;
}

/* ---- 6. evaluation against the exact value ------------------------------------------ */

typedef struct evaluation {
    double elbo, iwae, bsvi, khat, ess;
} evaluation;

static evaluation evaluate(host *h, bsvi_evaluator *ev, double eta, size_t S, size_t K) {
    evaluation e;
    bsvi_proposal *q1;
    CALL(bsvi_proposal_create(1, DIM, &q1), "bsvi_proposal_create");
    CALL(bsvi_proposal_set_params(q1, h->lam_mean, h->lam_ls), bsvi_proposal_last_error(q1));
    CALL(bsvi_evaluator_set_diagnostics(ev, 1), bsvi_evaluator_last_error(ev));
    CALL(bsvi_evaluator_iwae(ev, h->model, q1, S, &e.iwae), bsvi_evaluator_last_error(ev));
    CALL(bsvi_evaluator_get_diagnostics(ev, 1, &e.ess, &e.khat), bsvi_evaluator_last_error(ev));
    CALL(bsvi_evaluator_elbo_star(ev, h->model, q1, S, &e.elbo, NULL, NULL),
         bsvi_evaluator_last_error(ev));
    e.bsvi = NAN;
    if (isfinite(eta)) {
        bsvi_svi_options o = bsvi_svi_options_default();
        o.step_size = eta;
        o.divergence = BSVI_DIVERGENCE_FREEZE;
        CALL(bsvi_evaluator_set_svi_options(ev, &o), bsvi_evaluator_last_error(ev));
        CALL(bsvi_evaluator_bsvi(ev, h->model, q1, K, &e.bsvi, NULL),
             bsvi_evaluator_last_error(ev));
    }
    bsvi_proposal_destroy(q1);
    return e;
}

static void print_eval(const char *label, const evaluation *e, double exact, size_t S,
                       size_t K) {
    printf("\n%s:\n", label);
    printf("  %-22s %11.4f   (%+.4f)\n", "ELBO* (5000 samples)", e->elbo, e->elbo - exact);
    printf("  IWAE-%-17zu %11.4f   (%+.4f)   PSIS k-hat %.2f%s, ESS %.0f of %zu\n", S, e->iwae,
           e->iwae - exact, e->khat,
           e->khat > 0.7 ? " > 0.7: UNRELIABLE" : e->khat > 0.5 ? " (usable)" : " (good)",
           e->ess, S);
    if (isfinite(e->bsvi))
        printf("  BSVI-%-17zu %11.4f   (%+.4f)\n", K, e->bsvi, e->bsvi - exact);
    printf("  %-22s %11.4f\n", "exact log p(y)", exact);
}

/* ---- 5. training lambda_0 --------------------------------------------------------- */

static void train(host *h, bsvi_estimator *est, int iwae, size_t K, size_t iters) {
    const double lr = 0.02, b1 = 0.9, b2 = 0.999, epsilon = 1e-8;
    double m[2 * DIM] = {0}, v[2 * DIM] = {0}, vmax[2 * DIM] = {0};
    double *dm = malloc(h->R * DIM * sizeof *dm), *dl = malloc(h->R * DIM * sizeof *dl);
    double *bounds = malloc(h->R * sizeof *bounds);
    if (!dm || !dl || !bounds) exit(1);
    printf("\ntraining lambda_0 by AMSGrad (lr %g) on the %s's gradient, %zu samples per "
           "step:\n",
           lr, iwae ? "IWAE bound" : "ELBO", iwae ? h->R * K : h->R);
    double run = 0.0;
    for (size_t it = 1; it <= iters; ++it) {
        set_replicas(h);
        if (iwae)
            CALL(bsvi_estimator_iwae(est, h->model, h->q, K, BSVI_GRAD_DREG),
                 bsvi_estimator_last_error(est));
        else
            CALL(bsvi_estimator_elbo(est, h->model, h->q, BSVI_GRAD_ANALYTIC_KL),
                 bsvi_estimator_last_error(est));
        CALL(bsvi_estimator_get_encoder_grad(est, h->R, dm, dl), bsvi_estimator_last_error(est));
        CALL(bsvi_estimator_get_bounds(est, bounds, h->R), bsvi_estimator_last_error(est));
        double g[2 * DIM] = {0}, bm = 0.0;
        for (size_t r = 0; r < h->R; ++r) {
            for (int j = 0; j < DIM; ++j) {
                g[j] += dm[r * DIM + (size_t)j] / (double)h->R;
                g[DIM + j] += dl[r * DIM + (size_t)j] / (double)h->R;
            }
            bm += bounds[r] / (double)h->R;
        }
        run = it == 1 ? bm : 0.95 * run + 0.05 * bm;
        for (int j = 0; j < 2 * DIM; ++j) { /* ascent */
            m[j] = b1 * m[j] + (1 - b1) * g[j];
            v[j] = b2 * v[j] + (1 - b2) * g[j] * g[j];
            if (v[j] > vmax[j]) vmax[j] = v[j];
            const double step = lr * m[j] / (sqrt(vmax[j]) + epsilon);
            if (j < DIM) h->lam_mean[j] += step;
            else h->lam_ls[j - DIM] += step;
        }
        if (it % (iters / 4 ? iters / 4 : 1) == 0)
            printf("  step %5zu: bound (running mean) %.4f, q = N((%.3f, %.3f), sd (%.3f, %.3f))\n",
                   it, run, h->lam_mean[0], h->lam_mean[1], exp(h->lam_ls[0]),
                   exp(h->lam_ls[1]));
    }
    set_replicas(h);
    free(dm);
    free(dl);
    free(bounds);
}

/* ---- main ----------------------------------------------------------------------------- */

static size_t parse_size(const char *opt, const char *v) {
    char *end;
    errno = 0;
    const unsigned long long x = strtoull(v, &end, 10);
    if (errno || *end || v[0] == '-' || x == 0) {
        fprintf(stderr, "logreg: %s needs a positive integer, got '%s'\n", opt, v);
        exit(1);
    }
    return (size_t)x;
}

int main(int argc, char **argv) {
    const char *path = LOGREG_DATA;
    size_t iters = 2000, k = 10, R = 256;
    uint64_t seed = 1;
    int iwae = 0, check = 0;
    for (int i = 1; i < argc; ++i) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--check")) check = 1;
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: logreg [--data FILE] [--objective elbo|iwae] [--iters N] [--k K]\n"
                   "              [--replicas R] [--seed S] [--check]\n");
            return 0;
        } else if (!v) {
            fprintf(stderr, "logreg: %s needs a value (or unknown option)\n", a);
            return 1;
        } else if (!strcmp(a, "--data")) path = v, ++i;
        else if (!strcmp(a, "--iters")) iters = parse_size(a, v), ++i;
        else if (!strcmp(a, "--k")) k = parse_size(a, v), ++i;
        else if (!strcmp(a, "--replicas")) R = parse_size(a, v), ++i;
        else if (!strcmp(a, "--seed")) seed = parse_size(a, v), ++i;
        else if (!strcmp(a, "--objective")) {
            if (strcmp(v, "elbo") && strcmp(v, "iwae")) {
                fprintf(stderr, "logreg: --objective elbo or iwae\n");
                return 1;
            }
            iwae = !strcmp(v, "iwae");
            ++i;
        } else {
            fprintf(stderr, "logreg: unknown option %s\n", a);
            return 1;
        }
    }
    host h;
    memset(&h, 0, sizeof h);
    if (read_data(path, &h.d)) return 1;
    size_t inc = 0;
    for (size_t i = 0; i < h.d.n; ++i) inc += h.d.y[i] != 0.0;
    printf("Bayesian logistic regression, %s: %zu flights, %zu with an O-ring incident\n", path,
           h.d.n, inc);

    /* the exact reference */
    double pm[DIM], psd[DIM], pm2[DIM], psd2[DIM];
    const double exact = quadrature(&h.d, 0.02, pm, psd);
    const double coarse = quadrature(&h.d, 0.04, pm2, psd2);
    printf("exact log p(y) = %.6f (quadrature, step 0.02; step 0.04 gives %+.1e)\n", exact,
           coarse - exact);

    /* handles */
    h.R = R;
    h.rep_mean = malloc(R * DIM * sizeof *h.rep_mean);
    h.rep_ls = malloc(R * DIM * sizeof *h.rep_ls);
    if (!h.rep_mean || !h.rep_ls) return 1;
    CALL(bsvi_model_create(DIM, &h.model), "bsvi_model_create");
    CALL(bsvi_model_set_likelihood(h.model, likelihood, &h.d), bsvi_model_last_error(h.model));
    CALL(bsvi_proposal_create(R, DIM, &h.q), "bsvi_proposal_create");
    bsvi_svi *svi;
    bsvi_trajectory *traj;
    bsvi_estimator *est;
    bsvi_evaluator *ev;
    bsvi_diagnostics *diag;
    CALL(bsvi_svi_create(DIM, &svi), "bsvi_svi_create");
    CALL(bsvi_svi_set_steps(svi, k), bsvi_svi_last_error(svi));
    CALL(bsvi_svi_set_seed(svi, seed * 4 + 0), bsvi_svi_last_error(svi));
    CALL(bsvi_trajectory_create(&traj), "bsvi_trajectory_create");
    CALL(bsvi_estimator_create(DIM, &est), "bsvi_estimator_create");
    CALL(bsvi_estimator_set_seed(est, seed * 4 + 1), bsvi_estimator_last_error(est));
    CALL(bsvi_evaluator_create(DIM, &ev), "bsvi_evaluator_create");
    CALL(bsvi_evaluator_set_seed(ev, seed * 4 + 2), bsvi_evaluator_last_error(ev));
    CALL(bsvi_diagnostics_create(k + 1, &diag), "bsvi_diagnostics_create");
    const size_t S = 5000, K = 500;
    int bad = 0;

    /* lambda_0 = the prior: what an untrained host starts from */
    for (int j = 0; j < DIM; ++j) h.lam_mean[j] = h.lam_ls[j] = 0.0;
    set_replicas(&h);
    double gain0, gain0_se;
    const double eta0 = search_step(&h, svi, "from q = the prior", 1, &gain0, &gain0_se);
    if (!isfinite(eta0) || !(gain0 > 2.0 * gain0_se)) {
        printf("CHECK: the step search found no step improving SVI-k from the prior\n");
        bad = 1;
    }
    if (isfinite(eta0)) {
        CALL(bsvi_svi_set_step_size(svi, eta0), bsvi_svi_last_error(svi));
        CALL(bsvi_svi_set_divergence_policy(svi, BSVI_DIVERGENCE_FREEZE),
             bsvi_svi_last_error(svi));
        const summary s = refine_summary(&h, svi, traj, est, diag);
        printf("\nSVI from the prior, eta %.4g, k = %zu, mean over %zu trajectories:\n", eta0, k,
               R);
        printf("  SVI-0 %.3f +- %.3f, SVI-k %.3f +- %.3f, BSVI-k %.3f +- %.3f (exact %.3f)\n",
               s.svi0, s.se0, s.svik, s.sek, s.bsvik, s.seb, exact);
        printf("  buffer ESS %.2f of %zu: BSVI draws on about that many of its k+1 weights\n",
               s.ess, k + 1);
        if (!(s.bsvik > s.svik)) {
            printf("CHECK: BSVI-k is not above SVI-k\n");
            bad = 1;
        }
        if (s.svik > exact + 4 * s.sek || s.bsvik > exact + 4 * s.seb) {
            printf("CHECK: a bound exceeds log p(y)\n");
            bad = 1;
        }
    }
    const evaluation e0 = evaluate(&h, ev, eta0, S, K);
    print_eval("estimates at q = the prior", &e0, exact, S, K);

    /* train lambda_0 */
    train(&h, est, iwae, k + 1, iters);
    double gain1, gain1_se;
    const double eta1 = search_step(&h, svi, "at the trained q", 1, &gain1, &gain1_se);
    if (isfinite(eta1) && !(gain1 > 2.0 * gain1_se))
        printf("  (not significant: q sits near the ELBO's optimum, the fixed point of SVI, so "
               "refinement has little left to gain)\n");
    else if (!isfinite(eta1))
        printf("  (q sits near the ELBO's optimum, the fixed point of SVI; BSVI-K below uses "
               "the step from the prior)\n");
    const evaluation e1 = evaluate(&h, ev, isfinite(eta1) ? eta1 : eta0, S, K);
    print_eval("estimates at the trained q", &e1, exact, S, K);
    if (!(fabs(e1.iwae - exact) < 0.05) || !(e1.ess > 0.3 * (double)S)) {
        printf("CHECK: IWAE-%zu of the trained q is not within 0.05 of log p(y) with an ESS "
               "above 30%% of its samples\n",
               S);
        bad = 1;
    }
    if (!(e1.elbo < exact) || e1.bsvi > exact + 0.05) {
        printf("CHECK: ELBO* or BSVI-K above log p(y)\n");
        bad = 1;
    }

    printf("\nposterior of (alpha, beta) = 2.5 z (beta per 10 degrees F):\n");
    printf("  %-12s alpha %7.3f sd %.3f   beta %7.3f sd %.3f\n", "quadrature",
           PRIOR_SCALE * pm[0], PRIOR_SCALE * psd[0], PRIOR_SCALE * pm[1],
           PRIOR_SCALE * psd[1]);
    printf("  %-12s alpha %7.3f sd %.3f   beta %7.3f sd %.3f\n", "trained q",
           PRIOR_SCALE * h.lam_mean[0], PRIOR_SCALE * exp(h.lam_ls[0]),
           PRIOR_SCALE * h.lam_mean[1], PRIOR_SCALE * exp(h.lam_ls[1]));
    const double t31 = (31.0 - T_CENTRE) / T_SCALE;
    printf("  incident probability at 31 F (the Challenger launch), at the posterior mean: "
           "%.4f\n",
           1.0 / (1.0 + exp(-PRIOR_SCALE * (pm[0] + pm[1] * t31))));

    bsvi_diagnostics_destroy(diag);
    bsvi_evaluator_destroy(ev);
    bsvi_estimator_destroy(est);
    bsvi_trajectory_destroy(traj);
    bsvi_svi_destroy(svi);
    bsvi_proposal_destroy(h.q);
    bsvi_model_destroy(h.model);
    free(h.rep_mean);
    free(h.rep_ls);
    free(h.d.t);
    free(h.d.y);
    if (check && bad) return 2;
    if (check) printf("\ncheck: OK\n");
    return 0;
}
