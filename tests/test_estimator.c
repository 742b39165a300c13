/* test_estimator.c: every bound estimator (ELBO, IWAE-K, SVI-k, BSVI, BSVI-DS, BSVI-SIR,
 * GIWAE): values and targets against recomputation through the public API, the exact
 * posterior case, the expected ordering of the bounds, buffer weights and their
 * optimisation, SIR frequencies (chi-square), reproducibility, and bad input. */
#include "testutil.h"
#include "lingauss.h"

#include <stdlib.h>

#define LOG_2PI 1.8378770664093454835606594728112

/* ---- helpers -------------------------------------------------------------------- */

typedef struct est_out {
    size_t B, n, d;
    double *bounds;
    size_t *idx, *slot;
    double *z, *coef;
    double *gm, *gs;
    int has_z, has_enc;
} est_out;

static void read_est(const bsvi_estimator *e, size_t d, est_out *o)
{
    memset(o, 0, sizeof *o);
    o->B = bsvi_estimator_batch(e);
    o->n = bsvi_estimator_num_targets(e);
    o->d = d;
    assert_true(o->B > 0 && o->n > 0);
    o->bounds = tu_alloc(o->B);
    o->idx = tu_alloc_size(o->n);
    o->slot = tu_alloc_size(o->n);
    o->z = tu_alloc(o->n * d);
    o->coef = tu_alloc(o->n);
    o->gm = tu_alloc(o->B * d);
    o->gs = tu_alloc(o->B * d);
    TU_OK(bsvi_estimator_get_bounds(e, o->bounds, o->B));
    o->has_z = bsvi_estimator_kind(e) != BSVI_BOUND_GIWAE;
    TU_OK(bsvi_estimator_get_targets(e, o->n, o->idx, o->slot, o->has_z ? o->z : NULL, o->coef));
    o->has_enc = bsvi_estimator_kind(e) != BSVI_BOUND_GIWAE;
    if (o->has_enc) {
        TU_OK(bsvi_estimator_get_encoder_grad(e, o->B, o->gm, o->gs));
    }
}

static void free_est(est_out *o)
{
    free(o->bounds);
    free(o->idx);
    free(o->slot);
    free(o->z);
    free(o->coef);
    free(o->gm);
    free(o->gs);
    memset(o, 0, sizeof *o);
}

/* Rows [first, first + b.B) of a equal b bitwise (targets per data point: a.n / a.B). */
static void est_rows_equal(const est_out *a, size_t first, const est_out *b)
{
    const size_t T = a->n / a->B, d = a->d;
    assert_int_equal(b->n / b->B, T);
    TU_BITWISE(a->bounds + first, b->bounds, b->B);
    TU_BITWISE(a->coef + first * T, b->coef, b->n);
    for (size_t i = 0; i < b->n; ++i) {
        assert_int_equal(a->slot[first * T + i], b->slot[i]);
        assert_int_equal(a->idx[first * T + i], b->idx[i] + first);
    }
    if (a->has_z) {
        TU_BITWISE(a->z + first * T * d, b->z, b->n * d);
    }
    if (a->has_enc) {
        TU_BITWISE(a->gm + first * d, b->gm, b->B * d);
        TU_BITWISE(a->gs + first * d, b->gs, b->B * d);
    }
}

/* Targets are ordered by data point then slot, and each data point's coefficients sum to 1. */
static void check_targets_layout(const est_out *o, size_t T)
{
    assert_int_equal(o->n, o->B * T);
    for (size_t b = 0; b < o->B; ++b) {
        double sum = 0.0;
        for (size_t t = 0; t < T; ++t) {
            assert_int_equal(o->idx[b * T + t], b);
            assert_true(o->coef[b * T + t] >= 0.0);
            sum += o->coef[b * T + t];
        }
        TU_NEAR(sum, 1.0, 1e-12);
    }
}

static void ref_direction(const lg_model *lg, size_t b, bsvi_grad_form form, const double *mean,
                          const double *ls, const double *z, double *dm, double *ds)
{
    const size_t d = lg->d;
    lg_model v = lg_view(lg, 0);
    double glik[16], ld;
    assert_int_equal(lg_likelihood(1, d, z, &b, &ld, glik, &v), 0);
    for (size_t j = 0; j < d; ++j) {
        const double sig = exp(ls[j]), eps = (z[j] - mean[j]) / sig, g = glik[j] - z[j];
        if (form == BSVI_GRAD_PATHWISE) {
            dm[j] = g;
            ds[j] = g * sig * eps + 1.0;
        } else if (form == BSVI_GRAD_ANALYTIC_KL) {
            dm[j] = glik[j] - mean[j];
            ds[j] = glik[j] * sig * eps - (sig * sig - 1.0);
        } else { /* STL */
            dm[j] = g + eps / sig;
            ds[j] = g * sig * eps + eps * eps;
        }
    }
}

static double lse(const double *a, size_t n)
{
    double mx = -INFINITY, s = 0.0;
    for (size_t i = 0; i < n; ++i) {
        mx = fmax(mx, a[i]);
    }
    for (size_t i = 0; i < n; ++i) {
        s += exp(a[i] - mx);
    }
    return mx + log(s);
}

static void poor_params(size_t B, size_t d, double *mean, double *ls)
{
    for (size_t b = 0; b < B; ++b) {
        for (size_t j = 0; j < d; ++j) {
            mean[b * d + j] = 0.3 * (double)((b + j) % 3) - 0.4;
            ls[b * d + j] = -0.2 + 0.15 * (double)((b * 7 + j) % 3);
        }
    }
}

static bsvi_estimator *make_est(bsvi_bound kind, size_t d, uint64_t seed)
{
    bsvi_estimator *e = NULL;
    TU_OK(bsvi_estimator_create(kind, d, &e));
    TU_OK(bsvi_estimator_set_seed(e, seed));
    return e;
}

static bsvi_trajectory *run_svi(const bsvi_model *m, const bsvi_proposal *q, size_t d, size_t k,
                                double eta, bsvi_grad_form form, int ds, uint64_t seed)
{
    bsvi_svi *svi = NULL;
    bsvi_trajectory *t = NULL;
    TU_OK(bsvi_svi_create(d, &svi));
    TU_OK(bsvi_trajectory_create(&t));
    TU_OK(bsvi_svi_set_steps(svi, k));
    TU_OK(bsvi_svi_set_step_size(svi, eta));
    TU_OK(bsvi_svi_set_grad_form(svi, form));
    TU_OK(bsvi_svi_set_double_sampling(svi, ds));
    TU_OK(bsvi_svi_set_seed(svi, seed));
    TU_OK(bsvi_svi_run(svi, m, q, t));
    bsvi_svi_destroy(svi);
    return t;
}

/* ---- configuration ------------------------------------------------------------ */

static void test_create_and_setters(void **state)
{
    (void)state;
    bsvi_estimator *e = (bsvi_estimator *)&e;
    TU_STATUS(bsvi_estimator_create((bsvi_bound)7, 2, &e), BSVI_ERR_BAD_VALUE);
    assert_null(e);
    TU_STATUS(bsvi_estimator_create((bsvi_bound)-1, 2, &e), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_estimator_create(BSVI_BOUND_ELBO, 0, &e), BSVI_ERR_ZERO_SIZE);
    TU_STATUS(bsvi_estimator_create(BSVI_BOUND_ELBO, BSVI_MAX_DIM + 1, &e),
              BSVI_ERR_OUT_OF_RANGE);
    TU_STATUS(bsvi_estimator_create(BSVI_BOUND_ELBO, 2, NULL), BSVI_ERR_NULL_ARGUMENT);
    for (int k = 0; k <= 6; ++k) {
        TU_OK(bsvi_estimator_create((bsvi_bound)k, 2, &e));
        assert_int_equal(bsvi_estimator_kind(e), k);
        assert_int_equal(bsvi_estimator_batch(e), 0);
        assert_int_equal(bsvi_estimator_num_targets(e), 0);
        assert_int_equal(bsvi_estimator_num_buffer_weights(e), 0);
        assert_string_equal(bsvi_estimator_last_error(e), "");
        double out[2] = {TU_SENTINEL, TU_SENTINEL};
        TU_STATUS(bsvi_estimator_get_bounds(e, out, 0), BSVI_ERR_BAD_STATE);
        TU_UNTOUCHED(out, 2);
        const int is_iwae = k == BSVI_BOUND_IWAE, is_sir = k == BSVI_BOUND_BSVI_SIR;
        const int has_pi = k >= BSVI_BOUND_BSVI;
        TU_STATUS(bsvi_estimator_set_num_samples(e, 5), is_iwae ? BSVI_OK : BSVI_ERR_BAD_STATE);
        TU_STATUS(bsvi_estimator_set_num_resamples(e, 5), is_sir ? BSVI_OK : BSVI_ERR_BAD_STATE);
        TU_STATUS(bsvi_estimator_set_uniform_buffer_weights(e, 3),
                  has_pi ? BSVI_OK : BSVI_ERR_BAD_STATE);
        if (!has_pi) {
            TU_MESSAGE(bsvi_estimator_last_error(e));
            double pos;
            TU_STATUS(bsvi_estimator_get_mean_position(e, &pos), BSVI_ERR_BAD_STATE);
            TU_STATUS(bsvi_estimator_set_pi_optimisation(e, 1), BSVI_ERR_BAD_STATE);
            TU_STATUS(bsvi_estimator_set_pi_adam(e, 0.1, 0.9, 0.999), BSVI_ERR_BAD_STATE);
            TU_STATUS(bsvi_estimator_pi_step(e), BSVI_ERR_BAD_STATE);
        }
        if (k >= BSVI_BOUND_SVI) {
            TU_STATUS(bsvi_estimator_set_grad_form(e, BSVI_GRAD_STL), BSVI_ERR_BAD_STATE);
        }
        bsvi_estimator_destroy(e);
    }
    bsvi_estimator_destroy(NULL);
    assert_int_equal(bsvi_estimator_kind(NULL), BSVI_BOUND_ELBO);
    assert_int_equal(bsvi_estimator_batch(NULL), 0);
    assert_int_equal(bsvi_estimator_num_targets(NULL), 0);
    assert_int_equal(bsvi_estimator_num_buffer_weights(NULL), 0);

    /* Gradient forms valid per kind. */
    TU_OK(bsvi_estimator_create(BSVI_BOUND_ELBO, 2, &e));
    TU_OK(bsvi_estimator_set_grad_form(e, BSVI_GRAD_STL));
    TU_OK(bsvi_estimator_set_grad_form(e, BSVI_GRAD_ANALYTIC_KL));
    TU_OK(bsvi_estimator_set_grad_form(e, BSVI_GRAD_PATHWISE));
    TU_STATUS(bsvi_estimator_set_grad_form(e, BSVI_GRAD_DREG), BSVI_ERR_BAD_VALUE);
    TU_MESSAGE(bsvi_estimator_last_error(e));
    TU_STATUS(bsvi_estimator_set_grad_form(e, (bsvi_grad_form)11), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_estimator_set_grad_form(NULL, BSVI_GRAD_STL), BSVI_ERR_NULL_ARGUMENT);
    bsvi_estimator_destroy(e);
    TU_OK(bsvi_estimator_create(BSVI_BOUND_IWAE, 2, &e));
    TU_OK(bsvi_estimator_set_grad_form(e, BSVI_GRAD_STL));
    TU_OK(bsvi_estimator_set_grad_form(e, BSVI_GRAD_DREG));
    TU_OK(bsvi_estimator_set_grad_form(e, BSVI_GRAD_PATHWISE));
    TU_STATUS(bsvi_estimator_set_grad_form(e, BSVI_GRAD_ANALYTIC_KL), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_estimator_set_num_samples(e, 0), BSVI_ERR_ZERO_SIZE);
    TU_STATUS(bsvi_estimator_set_num_samples(e, BSVI_MAX_SAMPLES + 1), BSVI_ERR_OUT_OF_RANGE);
    TU_STATUS(bsvi_estimator_set_num_samples(NULL, 3), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_estimator_set_seed(NULL, 3), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_estimator_set_stream(NULL, 3, 0), BSVI_ERR_NULL_ARGUMENT);
    bsvi_estimator_destroy(e);
    TU_OK(bsvi_estimator_create(BSVI_BOUND_BSVI_SIR, 2, &e));
    TU_STATUS(bsvi_estimator_set_num_resamples(e, 0), BSVI_ERR_ZERO_SIZE);
    TU_STATUS(bsvi_estimator_set_num_resamples(e, BSVI_MAX_SAMPLES + 1), BSVI_ERR_OUT_OF_RANGE);
    TU_STATUS(bsvi_estimator_set_num_resamples(NULL, 2), BSVI_ERR_NULL_ARGUMENT);
    bsvi_estimator_destroy(e);
}

static void test_buffer_weights_api(void **state)
{
    (void)state;
    bsvi_estimator *e = NULL;
    TU_OK(bsvi_estimator_create(BSVI_BOUND_BSVI, 2, &e));
    double pi[4], pos;
    /* Not sized yet. */
    tu_fill(pi, 4, TU_SENTINEL);
    TU_STATUS(bsvi_estimator_get_buffer_weights(e, pi, 4), BSVI_ERR_BAD_STATE);
    TU_STATUS(bsvi_estimator_get_mean_position(e, &pos), BSVI_ERR_BAD_STATE);
    TU_UNTOUCHED(pi, 4);

    const double p4[4] = {0.1, 0.2, 0.3, 0.4};
    TU_OK(bsvi_estimator_set_buffer_weights(e, p4, 4));
    assert_int_equal(bsvi_estimator_num_buffer_weights(e), 4);
    TU_OK(bsvi_estimator_get_buffer_weights(e, pi, 4));
    for (size_t i = 0; i < 4; ++i) {
        TU_NEAR(pi[i], p4[i], 1e-15);
    }
    TU_OK(bsvi_estimator_get_mean_position(e, &pos));
    TU_NEAR(pos, 0.2 / 3.0 + 0.6 / 3.0 + 0.4, 1e-14);
    TU_STATUS(bsvi_estimator_get_mean_position(e, NULL), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_estimator_get_buffer_weights(e, pi, 3), BSVI_ERR_SIZE_MISMATCH);
    TU_STATUS(bsvi_estimator_get_buffer_weights(e, NULL, 4), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_estimator_get_buffer_weights(NULL, pi, 4), BSVI_ERR_NULL_ARGUMENT);

    /* Refused distributions leave pi as it was. */
    const double bad1[4] = {0.1, 0.2, 0.3, 0.3};   /* sums to 0.9 */
    const double bad2[4] = {-0.1, 0.4, 0.3, 0.4};  /* negative */
    const double bad3[4] = {NAN, 0.4, 0.3, 0.3};   /* NaN */
    const double bad4[4] = {INFINITY, 0.4, 0.3, 0.3};
    TU_STATUS(bsvi_estimator_set_buffer_weights(e, bad1, 4), BSVI_ERR_BAD_VALUE);
    TU_MESSAGE(bsvi_estimator_last_error(e));
    TU_STATUS(bsvi_estimator_set_buffer_weights(e, bad2, 4), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_estimator_set_buffer_weights(e, bad3, 4), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_estimator_set_buffer_weights(e, bad4, 4), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_estimator_set_buffer_weights(e, p4, 0), BSVI_ERR_ZERO_SIZE);
    TU_STATUS(bsvi_estimator_set_buffer_weights(e, NULL, 4), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_estimator_set_buffer_weights(NULL, p4, 4), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_estimator_set_uniform_buffer_weights(e, 0), BSVI_ERR_ZERO_SIZE);
    TU_STATUS(bsvi_estimator_set_uniform_buffer_weights(e, BSVI_MAX_STEPS + 2),
              BSVI_ERR_OUT_OF_RANGE);
    TU_STATUS(bsvi_estimator_set_uniform_buffer_weights(NULL, 3), BSVI_ERR_NULL_ARGUMENT);
    assert_int_equal(bsvi_estimator_num_buffer_weights(e), 4);
    TU_OK(bsvi_estimator_get_buffer_weights(e, pi, 4));
    for (size_t i = 0; i < 4; ++i) {
        TU_NEAR(pi[i], p4[i], 1e-15);
    }
    /* Zero entries are allowed. */
    const double pz[3] = {0.0, 0.5, 0.5};
    TU_OK(bsvi_estimator_set_buffer_weights(e, pz, 3));
    TU_OK(bsvi_estimator_get_buffer_weights(e, pi, 3));
    assert_true(pi[0] == 0.0);
    TU_OK(bsvi_estimator_set_uniform_buffer_weights(e, 5));
    double p5[5];
    TU_OK(bsvi_estimator_get_buffer_weights(e, p5, 5));
    for (size_t i = 0; i < 5; ++i) {
        TU_NEAR(p5[i], 0.2, 1e-15);
    }
    TU_OK(bsvi_estimator_get_mean_position(e, &pos));
    TU_NEAR(pos, 0.5, 1e-15);
    TU_OK(bsvi_estimator_set_uniform_buffer_weights(e, 1));
    TU_OK(bsvi_estimator_get_mean_position(e, &pos));
    assert_true(pos == 0.0);

    /* Optimiser settings. */
    TU_STATUS(bsvi_estimator_set_pi_optimisation(e, 2), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_estimator_set_pi_optimisation(NULL, 1), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_estimator_pi_step(e), BSVI_ERR_BAD_STATE); /* optimisation disabled */
    TU_MESSAGE(bsvi_estimator_last_error(e));
    TU_STATUS(bsvi_estimator_set_pi_adam(e, 0.0, 0.9, 0.999), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_estimator_set_pi_adam(e, NAN, 0.9, 0.999), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_estimator_set_pi_adam(e, INFINITY, 0.9, 0.999), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_estimator_set_pi_adam(e, 0.1, 1.0, 0.999), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_estimator_set_pi_adam(e, 0.1, 0.9, -0.5), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_estimator_set_pi_adam(NULL, 0.1, 0.9, 0.9), BSVI_ERR_NULL_ARGUMENT);
    TU_OK(bsvi_estimator_set_pi_adam(e, 0.1, 0.0, 0.0));
    TU_OK(bsvi_estimator_set_pi_optimisation(e, 1));
    TU_OK(bsvi_estimator_pi_step(e)); /* nothing accumulated: no step */
    double one;
    TU_OK(bsvi_estimator_get_buffer_weights(e, &one, 1));
    assert_true(one == 1.0);
    TU_STATUS(bsvi_estimator_pi_step(NULL), BSVI_ERR_NULL_ARGUMENT);
    bsvi_estimator_destroy(e);
}

/* ---- values and targets ---------------------------------------------------------- */

typedef struct setup {
    lg_model lg;
    bsvi_model *model;
    bsvi_proposal *q;
    double *mean, *ls;
    size_t B, d;
} setup;

static void setup_init(setup *s, size_t B, size_t d, size_t D, int orth, int exact, uint64_t seed)
{
    memset(s, 0, sizeof *s);
    s->B = B;
    s->d = d;
    assert_int_equal(lg_init(&s->lg, d, D, B, 0.8, orth, seed), 0);
    TU_OK(lg_make_model(&s->lg, &s->model));
    s->mean = tu_alloc(B * d);
    s->ls = tu_alloc(B * d);
    if (exact) {
        for (size_t b = 0; b < B; ++b) {
            lg_posterior_diag(&s->lg, b, &s->mean[b * d], &s->ls[b * d]);
        }
    } else {
        poor_params(B, d, s->mean, s->ls);
    }
    TU_OK(lg_make_proposal(B, d, s->mean, s->ls, &s->q));
}

static void setup_free(setup *s)
{
    bsvi_proposal_destroy(s->q);
    bsvi_model_destroy(s->model);
    free(s->mean);
    free(s->ls);
    lg_free(&s->lg);
}

/* log w at each target's z, recomputed through the public API with q's lambda_0. */
static void target_log_weights(setup *s, const est_out *o, size_t T, double *lw)
{
    double *lp = tu_alloc(o->n), *lq = tu_alloc(o->n);
    TU_OK(bsvi_model_log_joint(s->model, o->n, o->z, o->idx, lp, NULL));
    TU_OK(bsvi_proposal_log_density(s->q, T, o->z, lq));
    for (size_t i = 0; i < o->n; ++i) {
        lw[i] = lp[i] - lq[i];
    }
    free(lp);
    free(lq);
}

static void test_elbo_values(void **state)
{
    (void)state;
    setup s;
    setup_init(&s, 4, 3, 5, 0, 0, 41);
    const bsvi_grad_form forms[3] = {BSVI_GRAD_PATHWISE, BSVI_GRAD_STL, BSVI_GRAD_ANALYTIC_KL};
    for (size_t f = 0; f < 3; ++f) {
        bsvi_estimator *e = make_est(BSVI_BOUND_ELBO, s.d, 3);
        TU_OK(bsvi_estimator_set_grad_form(e, forms[f]));
        TU_OK(bsvi_estimator_compute(e, s.model, s.q, NULL));
        est_out o;
        read_est(e, s.d, &o);
        assert_int_equal(o.B, s.B);
        check_targets_layout(&o, 1);
        double lw[4];
        target_log_weights(&s, &o, 1, lw);
        for (size_t b = 0; b < s.B; ++b) {
            assert_int_equal(o.slot[b], 0);
            assert_true(o.coef[b] == 1.0);
            /* The bound is log w(z_0; lambda_0) whatever the gradient form (estimator.h
             * table); the form only selects the encoder-gradient estimator. */
            if (!(fabs(o.bounds[b] - lw[b]) <= 1e-12 * (1.0 + fabs(lw[b])))) {
                print_error("ELBO with gradient form %d, b=%zu: bound %.17g but log w(z_0) = "
                            "%.17g\n",
                            (int)forms[f], b, o.bounds[b], lw[b]);
                fail();
            }
            double dm[3], ds[3];
            ref_direction(&s.lg, b, forms[f], &s.mean[b * s.d], &s.ls[b * s.d], &o.z[b * s.d],
                          dm, ds);
            for (size_t j = 0; j < s.d; ++j) {
                TU_NEAR(o.gm[b * s.d + j], dm[j], 1e-10 * (1.0 + fabs(dm[j])));
                TU_NEAR(o.gs[b * s.d + j], ds[j], 1e-10 * (1.0 + fabs(ds[j])));
            }
        }
        free_est(&o);
        bsvi_estimator_destroy(e);
    }
    setup_free(&s);
}

static void test_iwae_values(void **state)
{
    (void)state;
    setup s;
    setup_init(&s, 3, 3, 5, 0, 0, 43);
    const size_t K = 7, d = s.d;
    const bsvi_grad_form forms[3] = {BSVI_GRAD_PATHWISE, BSVI_GRAD_STL, BSVI_GRAD_DREG};
    for (size_t f = 0; f < 3; ++f) {
        bsvi_estimator *e = make_est(BSVI_BOUND_IWAE, d, 5);
        TU_OK(bsvi_estimator_set_num_samples(e, K));
        TU_OK(bsvi_estimator_set_grad_form(e, forms[f]));
        TU_OK(bsvi_estimator_compute(e, s.model, s.q, NULL));
        est_out o;
        read_est(e, d, &o);
        check_targets_layout(&o, K);
        double lw[21], wbar[7];
        target_log_weights(&s, &o, K, lw);
        for (size_t b = 0; b < s.B; ++b) {
            const double l = lse(&lw[b * K], K);
            TU_NEAR(o.bounds[b], l - log((double)K), 1e-12 * (1.0 + fabs(l)));
            double gm[3] = {0}, gs[3] = {0};
            for (size_t k = 0; k < K; ++k) {
                assert_int_equal(o.slot[b * K + k], k);
                wbar[k] = exp(lw[b * K + k] - l);
                TU_NEAR(o.coef[b * K + k], wbar[k], 1e-12);
                double dm[3], ds[3];
                ref_direction(&s.lg, b, forms[f] == BSVI_GRAD_PATHWISE ? BSVI_GRAD_PATHWISE
                                                                         : BSVI_GRAD_STL,
                              &s.mean[b * d], &s.ls[b * d], &o.z[(b * K + k) * d], dm, ds);
                const double c = forms[f] == BSVI_GRAD_DREG ? wbar[k] * wbar[k] : wbar[k];
                for (size_t j = 0; j < d; ++j) {
                    gm[j] += c * dm[j];
                    gs[j] += c * ds[j];
                }
            }
            for (size_t j = 0; j < d; ++j) {
                TU_NEAR(o.gm[b * d + j], gm[j], 1e-10 * (1.0 + fabs(gm[j])));
                TU_NEAR(o.gs[b * d + j], gs[j], 1e-10 * (1.0 + fabs(gs[j])));
            }
        }
        free_est(&o);
        bsvi_estimator_destroy(e);
    }
    setup_free(&s);
}

/* SVI, BSVI (non-uniform pi), BSVI-DS, BSVI-SIR against the trajectory they read. */
static void test_trajectory_kinds(void **state)
{
    (void)state;
    setup s;
    setup_init(&s, 4, 3, 5, 0, 0, 47);
    const size_t k = 4, K1 = k + 1, d = s.d, B = s.B, M = 6;
    for (int ds = 0; ds < 2; ++ds) {
        bsvi_trajectory *t = run_svi(s.model, s.q, d, k, 0.05, BSVI_GRAD_PATHWISE, ds, 9);
        tu_traj tr;
        tu_traj_read(t, &tr);
        const double pi[5] = {0.1, 0.15, 0.2, 0.25, 0.3};
        const bsvi_bound kinds[4] = {BSVI_BOUND_SVI, BSVI_BOUND_BSVI, BSVI_BOUND_BSVI_DS,
                                     BSVI_BOUND_BSVI_SIR};
        for (size_t kk = 0; kk < 4; ++kk) {
            bsvi_estimator *e = make_est(kinds[kk], d, 11);
            if (kinds[kk] != BSVI_BOUND_SVI) {
                TU_OK(bsvi_estimator_set_buffer_weights(e, pi, K1));
            }
            if (kinds[kk] == BSVI_BOUND_BSVI_SIR) {
                TU_OK(bsvi_estimator_set_num_resamples(e, M));
            }
            if (kinds[kk] == BSVI_BOUND_BSVI_DS && !ds) {
                TU_STATUS(bsvi_estimator_compute(e, NULL, NULL, t), BSVI_ERR_BAD_STATE);
                TU_MESSAGE(bsvi_estimator_last_error(e));
                bsvi_estimator_destroy(e);
                continue;
            }
            TU_OK(bsvi_estimator_compute(e, NULL, NULL, t));
            est_out o;
            read_est(e, d, &o);
            const size_t T = kinds[kk] == BSVI_BOUND_SVI ? 1
                             : kinds[kk] == BSVI_BOUND_BSVI_SIR ? M
                                                                : K1;
            check_targets_layout(&o, T);
            for (size_t b = 0; b < B; ++b) {
                const double *lw = &tr.lw[b * K1];
                double a[5], r[5];
                for (size_t i = 0; i < K1; ++i) {
                    a[i] = log(pi[i]) + lw[i];
                }
                const double bs = lse(a, K1);
                for (size_t i = 0; i < K1; ++i) {
                    r[i] = exp(a[i] - bs);
                }
                if (kinds[kk] == BSVI_BOUND_SVI) {
                    assert_true(o.bounds[b] == lw[k]);
                    assert_int_equal(o.slot[b], k);
                    assert_true(o.coef[b] == 1.0);
                    TU_BITWISE(&o.z[b * d], &tr.z[(b * K1 + k) * d], d);
                } else {
                    TU_NEAR(o.bounds[b], bs, 1e-12 * (1.0 + fabs(bs)));
                    for (size_t t2 = 0; t2 < T; ++t2) {
                        const size_t at = b * T + t2, sl = o.slot[at];
                        assert_true(sl <= k);
                        TU_BITWISE(&o.z[at * d], &tr.z[(b * K1 + sl) * d], d);
                        if (kinds[kk] == BSVI_BOUND_BSVI_SIR) {
                            TU_NEAR(o.coef[at], 1.0 / (double)M, 1e-15);
                        } else {
                            assert_int_equal(sl, t2);
                            TU_NEAR(o.coef[at], r[t2], 1e-12);
                        }
                    }
                }
            }
            /* Encoder gradient: the trajectory's. */
            TU_BITWISE(o.gm, tr.gm, B * d);
            TU_BITWISE(o.gs, tr.gs, B * d);
            free_est(&o);
            bsvi_estimator_destroy(e);
        }
        /* Default pi: sized to uniform on the first compute. */
        bsvi_estimator *e = make_est(BSVI_BOUND_BSVI, d, 1);
        TU_OK(bsvi_estimator_compute(e, NULL, NULL, t));
        assert_int_equal(bsvi_estimator_num_buffer_weights(e), K1);
        double bounds[4];
        TU_OK(bsvi_estimator_get_bounds(e, bounds, B));
        for (size_t b = 0; b < B; ++b) {
            const double u = lse(&tr.lw[b * K1], K1) - log((double)K1);
            TU_NEAR(bounds[b], u, 1e-12 * (1.0 + fabs(u)));
        }
        /* pi = (0, ..., 0, 1): BSVI equals SVI-k. */
        double last[5] = {0, 0, 0, 0, 1};
        TU_OK(bsvi_estimator_set_buffer_weights(e, last, K1));
        TU_OK(bsvi_estimator_compute(e, NULL, NULL, t));
        TU_OK(bsvi_estimator_get_bounds(e, bounds, B));
        for (size_t b = 0; b < B; ++b) {
            TU_NEAR(bounds[b], tr.lw[b * K1 + k], 1e-12 * (1.0 + fabs(bounds[b])));
        }
        bsvi_estimator_destroy(e);
        tu_traj_free(&tr);
        bsvi_trajectory_destroy(t);
    }
    setup_free(&s);
}

/* Generalised IWAE with independent proposals equals IWAE on the same samples. */
static void test_giwae_equals_iwae(void **state)
{
    (void)state;
    setup s;
    setup_init(&s, 5, 3, 5, 0, 0, 53);
    const size_t K = 6, d = s.d, B = s.B;
    bsvi_estimator *iw = make_est(BSVI_BOUND_IWAE, d, 77);
    TU_OK(bsvi_estimator_set_num_samples(iw, K));
    TU_OK(bsvi_estimator_compute(iw, s.model, s.q, NULL));
    est_out o;
    read_est(iw, d, &o);
    double *lp = tu_alloc(B * K), *lq = tu_alloc(B * K);
    /* Targets are ordered by data point then slot, i.e. rows b*K + s of q's sample layout. */
    for (size_t i = 0; i < B * K; ++i) {
        assert_int_equal(o.slot[i], i % K);
    }
    TU_OK(bsvi_model_log_joint(s.model, B * K, o.z, o.idx, lp, NULL));
    TU_OK(bsvi_proposal_log_density(s.q, K, o.z, lq));
    bsvi_estimator *g = make_est(BSVI_BOUND_GIWAE, d, 0);
    TU_OK(bsvi_estimator_compute_terms(g, B, K, lp, lq));
    assert_int_equal(bsvi_estimator_num_buffer_weights(g), K); /* uniform, sized on first use */
    est_out og;
    read_est(g, d, &og);
    check_targets_layout(&og, K);
    for (size_t b = 0; b < B; ++b) {
        TU_NEAR(og.bounds[b], o.bounds[b], 1e-12);
    }
    for (size_t i = 0; i < B * K; ++i) {
        assert_int_equal(og.slot[i], o.slot[i]);
        TU_NEAR(og.coef[i], o.coef[i], 1e-12);
    }
    /* GIWAE holds no latents and no encoder gradient. */
    double zz[3], gm[15];
    TU_STATUS(bsvi_estimator_get_targets(g, og.n, NULL, NULL, zz, NULL), BSVI_ERR_BAD_STATE);
    TU_STATUS(bsvi_estimator_get_encoder_grad(g, B, gm, NULL), BSVI_ERR_BAD_STATE);
    free_est(&og);
    free_est(&o);
    free(lp);
    free(lq);
    bsvi_estimator_destroy(iw);
    bsvi_estimator_destroy(g);
    setup_free(&s);
}

/* q equal to the exact diagonal posterior: every bound equals log p(x) to 1e-10 for every
 * sample (ELBO, IWAE; SVI-k, BSVI, BSVI-DS and BSVI-SIR over STL trajectories). */
static void test_exact_posterior_bounds(void **state)
{
    (void)state;
    setup s;
    setup_init(&s, 5, 3, 6, 1, 1, 59);
    const size_t d = s.d, B = s.B;
    double logpx[5];
    for (size_t b = 0; b < B; ++b) {
        logpx[b] = lg_log_marginal(&s.lg, b);
    }
    bsvi_trajectory *t = run_svi(s.model, s.q, d, 5, 0.05, BSVI_GRAD_STL, 0, 3);
    bsvi_trajectory *tds = run_svi(s.model, s.q, d, 5, 0.05, BSVI_GRAD_STL, 1, 4);
    for (int kind = 0; kind <= 5; ++kind) {
        for (uint64_t seed = 0; seed < 3; ++seed) {
            bsvi_estimator *e = make_est((bsvi_bound)kind, d, seed);
            if (kind == BSVI_BOUND_IWAE) {
                TU_OK(bsvi_estimator_set_num_samples(e, 20));
            }
            if (kind == BSVI_BOUND_BSVI_SIR) {
                TU_OK(bsvi_estimator_set_num_resamples(e, 3));
            }
            if (kind == BSVI_BOUND_BSVI && seed == 1) {
                const double pi[6] = {0.5, 0.1, 0.1, 0.1, 0.1, 0.1};
                TU_OK(bsvi_estimator_set_buffer_weights(e, pi, 6));
            }
            TU_OK(bsvi_estimator_compute(e, s.model, s.q, kind == BSVI_BOUND_BSVI_DS ? tds : t));
            double bounds[5];
            TU_OK(bsvi_estimator_get_bounds(e, bounds, B));
            for (size_t b = 0; b < B; ++b) {
                if (!(fabs(bounds[b] - logpx[b]) <= 1e-10)) {
                    print_error("kind %d seed %d b %zu: bound %.17g, log p(x) %.17g\n", kind,
                                (int)seed, b, bounds[b], logpx[b]);
                    fail();
                }
            }
            bsvi_estimator_destroy(e);
        }
    }
    bsvi_trajectory_destroy(t);
    bsvi_trajectory_destroy(tds);
    setup_free(&s);
}

/* ---- statistical properties --------------------------------------------------------- */

/* Expected ordering E[ELBO] <= E[IWAE-5] <= E[IWAE-50] <= log p(x) on the linear-Gaussian
 * model with a poor q (general W). B = 2000 replicates of one data point, so each data point
 * gives an independent draw of each bound. Tolerances: 5 standard errors from the samples
 * (independent estimators: SE of a difference = sqrt(se1^2 + se2^2)). The mean ELBO is also
 * checked against the closed-form ELBO within 5 SE, and IWAE-50 must beat the ELBO by more
 * than 5 SE (the true gap is over a nat, the SE a few hundredths). Seeds are fixed: the test
 * is deterministic; with a random seed a correct library fails a check with probability
 * below 1e-5. */
static void test_bound_ordering(void **state)
{
    (void)state;
    const size_t B = 2000, d = 3, D = 5;
    lg_model lg;
    assert_int_equal(lg_init(&lg, d, D, B, 0.8, 0, 61), 0);
    lg_replicate(&lg);
    bsvi_model *model = NULL;
    TU_OK(lg_make_model(&lg, &model));
    double pm[3], ps[3];
    lg_posterior_diag(&lg, 0, pm, ps);
    const double m0[3] = {pm[0] + 0.8, pm[1] - 0.6, pm[2] + 0.5};
    const double s0[3] = {ps[0] + 0.5, ps[1] - 0.3, ps[2] + 0.2};
    double *mean = tu_alloc(B * d), *ls = tu_alloc(B * d);
    for (size_t b = 0; b < B; ++b) {
        memcpy(&mean[b * d], m0, sizeof m0);
        memcpy(&ls[b * d], s0, sizeof s0);
    }
    bsvi_proposal *q = NULL;
    TU_OK(lg_make_proposal(B, d, mean, ls, &q));
    const double logpx = lg_log_marginal(&lg, 0);
    const double exact_elbo = lg_exact_elbo(&lg, 0, m0, s0, NULL, NULL);
    const size_t Ks[3] = {1, 5, 50}; /* K = 1: the ELBO through the ELBO estimator */
    double mn[3], se[3];
    double *bounds = tu_alloc(B);
    for (size_t i = 0; i < 3; ++i) {
        bsvi_estimator *e =
            make_est(Ks[i] == 1 ? BSVI_BOUND_ELBO : BSVI_BOUND_IWAE, d, 1000 + (uint64_t)i);
        if (Ks[i] > 1) {
            TU_OK(bsvi_estimator_set_num_samples(e, Ks[i]));
        }
        TU_OK(bsvi_estimator_compute(e, model, q, NULL));
        TU_OK(bsvi_estimator_get_bounds(e, bounds, B));
        tu_mean_se(bounds, B, &mn[i], &se[i]);
        bsvi_estimator_destroy(e);
    }
    TU_NEAR(mn[0], exact_elbo, 5.0 * se[0]);
    TU_LE(mn[0], mn[1], 5.0 * sqrt(se[0] * se[0] + se[1] * se[1]));
    TU_LE(mn[1], mn[2], 5.0 * sqrt(se[1] * se[1] + se[2] * se[2]));
    TU_LE(mn[2], logpx, 5.0 * se[2]);
    TU_LE(mn[0] + 5.0 * sqrt(se[0] * se[0] + se[2] * se[2]), mn[2], 0.0);
    /* IWAE-1 is the ELBO: same expectation (5 SE of the difference). */
    bsvi_estimator *e1 = make_est(BSVI_BOUND_IWAE, d, 5000);
    TU_OK(bsvi_estimator_set_num_samples(e1, 1));
    TU_OK(bsvi_estimator_compute(e1, model, q, NULL));
    TU_OK(bsvi_estimator_get_bounds(e1, bounds, B));
    double m1, s1;
    tu_mean_se(bounds, B, &m1, &s1);
    TU_NEAR(m1, exact_elbo, 5.0 * s1);
    bsvi_estimator_destroy(e1);
    free(bounds);
    free(mean);
    free(ls);
    bsvi_proposal_destroy(q);
    bsvi_model_destroy(model);
    lg_free(&lg);
}

/* BSVI with optimised pi >= SVI-k (and >= BSVI with uniform pi). pi is trained by 300 Adam
 * steps, each on a fresh SVI trajectory of 200 replicates (fixed seeds). Evaluation on a fresh
 * trajectory of B = 2000 replicates: paired differences per data point, mean >= -5 SE (SE from
 * the samples). The accumulated pi gradient is checked exactly against mean_b(r_bj - pi_j). */
static void test_optimised_pi(void **state)
{
    (void)state;
    const size_t d = 3, D = 5, k = 6, K1 = k + 1, Btrain = 200, Beval = 2000;
    lg_model lg;
    assert_int_equal(lg_init(&lg, d, D, Beval, 0.8, 0, 67), 0);
    lg_replicate(&lg);
    bsvi_model *model = NULL;
    TU_OK(lg_make_model(&lg, &model));
    double pm[3], ps[3];
    lg_posterior_diag(&lg, 0, pm, ps);
    double *mean = tu_alloc(Beval * d), *ls = tu_alloc(Beval * d);
    for (size_t b = 0; b < Beval; ++b) {
        for (size_t j = 0; j < d; ++j) {
            mean[b * d + j] = pm[j] + 1.2;
            ls[b * d + j] = ps[j] + 0.6;
        }
    }
    bsvi_proposal *qt = NULL, *qe = NULL;
    TU_OK(lg_make_proposal(Btrain, d, mean, ls, &qt));
    TU_OK(lg_make_proposal(Beval, d, mean, ls, &qe));
    bsvi_svi *svi = NULL;
    bsvi_trajectory *t = NULL;
    TU_OK(bsvi_svi_create(d, &svi));
    TU_OK(bsvi_trajectory_create(&t));
    TU_OK(bsvi_svi_set_steps(svi, k));
    TU_OK(bsvi_svi_set_step_size(svi, 0.03));
    TU_OK(bsvi_svi_set_seed(svi, 99));
    bsvi_estimator *e = make_est(BSVI_BOUND_BSVI, d, 0);
    TU_OK(bsvi_estimator_set_pi_optimisation(e, 1));
    TU_OK(bsvi_estimator_set_pi_adam(e, 0.05, 0.9, 0.999));

    /* The accumulated gradient is mean_b (r_bj - pi_j), averaged over computes. */
    TU_OK(bsvi_svi_run(svi, model, qt, t));
    TU_OK(bsvi_estimator_compute(e, NULL, NULL, t));
    double g1[7], g2[7], pi[7], expect1[7] = {0}, expect2[7] = {0};
    TU_OK(bsvi_estimator_get_pi_gradient(e, g1, K1));
    TU_STATUS(bsvi_estimator_get_pi_gradient(e, g1, K1 - 1), BSVI_ERR_SIZE_MISMATCH);
    double *lw = tu_alloc(Btrain * K1);
    for (int pass = 0; pass < 2; ++pass) {
        double *ex = pass == 0 ? expect1 : expect2;
        TU_OK(bsvi_trajectory_get_log_weights(t, lw));
        for (size_t b = 0; b < Btrain; ++b) {
            double a[7];
            for (size_t i = 0; i < K1; ++i) {
                a[i] = -log((double)K1) + lw[b * K1 + i];
            }
            const double l = lse(a, K1);
            for (size_t i = 0; i < K1; ++i) {
                ex[i] += (exp(a[i] - l) - 1.0 / (double)K1) / (double)Btrain;
            }
        }
        if (pass == 0) {
            TU_OK(bsvi_svi_run(svi, model, qt, t));
            TU_OK(bsvi_estimator_compute(e, NULL, NULL, t));
        }
    }
    TU_OK(bsvi_estimator_get_pi_gradient(e, g2, K1));
    double gsum = 0.0;
    for (size_t i = 0; i < K1; ++i) {
        TU_NEAR(g1[i], expect1[i], 1e-12);
        TU_NEAR(g2[i], 0.5 * (expect1[i] + expect2[i]), 1e-12);
        gsum += g2[i];
    }
    TU_NEAR(gsum, 0.0, 1e-12);
    /* First Adam step: bias-corrected m/sqrt(v) = sign(g), so each logit moves by lr. */
    TU_OK(bsvi_estimator_pi_step(e));
    TU_OK(bsvi_estimator_get_buffer_weights(e, pi, K1));
    {
        double a[7], z = 0.0;
        for (size_t i = 0; i < K1; ++i) {
            a[i] = 0.05 * (g2[i] > 0 ? 1.0 : -1.0);
            z += exp(a[i]);
        }
        for (size_t i = 0; i < K1; ++i) {
            TU_NEAR(pi[i], exp(a[i]) / z, 1e-6);
        }
    }
    /* The accumulator was cleared. */
    TU_OK(bsvi_estimator_get_pi_gradient(e, g1, K1));
    for (size_t i = 0; i < K1; ++i) {
        assert_true(g1[i] == 0.0);
    }
    for (int it = 0; it < 300; ++it) {
        TU_OK(bsvi_svi_run(svi, model, qt, t));
        TU_OK(bsvi_estimator_compute(e, NULL, NULL, t));
        TU_OK(bsvi_estimator_pi_step(e));
    }
    TU_OK(bsvi_estimator_get_buffer_weights(e, pi, K1));
    double psum = 0.0, pos;
    for (size_t i = 0; i < K1; ++i) {
        psum += pi[i];
    }
    TU_NEAR(psum, 1.0, 1e-12);
    TU_OK(bsvi_estimator_get_mean_position(e, &pos));
    double pos_ref = 0.0;
    for (size_t i = 0; i < K1; ++i) {
        pos_ref += pi[i] * (double)i / (double)k;
    }
    TU_NEAR(pos, pos_ref, 1e-12);
    /* SVI improves q here, so the optimised pi moves mass to later slots. */
    assert_true(pos > 0.5);

    /* Evaluate on a fresh trajectory. */
    bsvi_trajectory *te = NULL;
    TU_OK(bsvi_trajectory_create(&te));
    TU_OK(bsvi_svi_set_seed(svi, 123456));
    TU_OK(bsvi_svi_run(svi, model, qe, te));
    TU_OK(bsvi_estimator_set_pi_optimisation(e, 0));
    TU_OK(bsvi_estimator_compute(e, NULL, NULL, te));
    double *bopt = tu_alloc(Beval), *bsvik = tu_alloc(Beval), *buni = tu_alloc(Beval);
    TU_OK(bsvi_estimator_get_bounds(e, bopt, Beval));
    bsvi_estimator *es = make_est(BSVI_BOUND_SVI, d, 0);
    TU_OK(bsvi_estimator_compute(es, NULL, NULL, te));
    TU_OK(bsvi_estimator_get_bounds(es, bsvik, Beval));
    bsvi_estimator *eu = make_est(BSVI_BOUND_BSVI, d, 0);
    TU_OK(bsvi_estimator_compute(eu, NULL, NULL, te));
    TU_OK(bsvi_estimator_get_bounds(eu, buni, Beval));
    double mn, se;
    tu_diff_mean_se(bopt, bsvik, Beval, &mn, &se);
    if (!(mn >= -5.0 * se)) {
        print_error("BSVI(optimised pi) - SVI-k = %.4g (se %.3g)\n", mn, se);
        fail();
    }
    tu_diff_mean_se(bopt, buni, Beval, &mn, &se);
    if (!(mn >= -5.0 * se)) {
        print_error("BSVI(optimised pi) - BSVI(uniform) = %.4g (se %.3g)\n", mn, se);
        fail();
    }
    /* Health metrics agree with the estimators. */
    double h0, hk, hb, m_svik, s_svik, m_opt, s_opt;
    TU_OK(bsvi_trajectory_health(te, pi, K1, &h0, &hk, &hb));
    tu_mean_se(bsvik, Beval, &m_svik, &s_svik);
    tu_mean_se(bopt, Beval, &m_opt, &s_opt);
    TU_NEAR(hk, m_svik, 1e-9);
    TU_NEAR(hb, m_opt, 1e-9);
    free(bopt);
    free(bsvik);
    free(buni);
    free(lw);
    free(mean);
    free(ls);
    bsvi_estimator_destroy(e);
    bsvi_estimator_destroy(es);
    bsvi_estimator_destroy(eu);
    bsvi_trajectory_destroy(t);
    bsvi_trajectory_destroy(te);
    bsvi_svi_destroy(svi);
    bsvi_proposal_destroy(qt);
    bsvi_proposal_destroy(qe);
    bsvi_model_destroy(model);
    lg_free(&lg);
}

/* A zero pi slot stays zero under optimisation. */
static void test_zero_slot_stays_zero(void **state)
{
    (void)state;
    setup s;
    setup_init(&s, 8, 2, 4, 0, 0, 71);
    bsvi_trajectory *t = run_svi(s.model, s.q, s.d, 3, 0.05, BSVI_GRAD_PATHWISE, 0, 2);
    bsvi_estimator *e = make_est(BSVI_BOUND_BSVI, s.d, 0);
    const double pi0[4] = {0.0, 0.3, 0.3, 0.4};
    TU_OK(bsvi_estimator_set_buffer_weights(e, pi0, 4));
    TU_OK(bsvi_estimator_set_pi_optimisation(e, 1));
    for (int i = 0; i < 20; ++i) {
        TU_OK(bsvi_estimator_compute(e, NULL, NULL, t));
        TU_OK(bsvi_estimator_pi_step(e));
    }
    double pi[4];
    TU_OK(bsvi_estimator_get_buffer_weights(e, pi, 4));
    assert_true(pi[0] == 0.0);
    TU_NEAR(pi[1] + pi[2] + pi[3], 1.0, 1e-12);
    bsvi_estimator_destroy(e);
    bsvi_trajectory_destroy(t);
    setup_free(&s);
}

/* BSVI-SIR slot frequencies against r = softmax(log pi + log w). M = 4000 resamples for each
 * of 4 data points (k = 5). Bins with expected count < 5 are merged per data point. The summed
 * Pearson statistic is compared with the chi-square upper quantile at z = 4.75 (significance
 * about 1e-6, Wilson-Hilferty). Fixed seeds: deterministic. A correct sampler fails at a random
 * seed with probability ~1e-6; a sampler drawing from the wrong distribution (e.g. uniform or
 * softmax(log w) without pi) gives statistics in the thousands. */
static void test_sir_chi_square(void **state)
{
    (void)state;
    setup s;
    setup_init(&s, 4, 3, 5, 0, 0, 73);
    const size_t k = 5, K1 = k + 1, M = 4000, B = s.B;
    bsvi_trajectory *t = run_svi(s.model, s.q, s.d, k, 0.1, BSVI_GRAD_PATHWISE, 0, 5);
    double *lw = tu_alloc(B * K1);
    TU_OK(bsvi_trajectory_get_log_weights(t, lw));
    const double pi[6] = {0.3, 0.1, 0.1, 0.1, 0.1, 0.3};
    bsvi_estimator *e = make_est(BSVI_BOUND_BSVI_SIR, s.d, 2718);
    TU_OK(bsvi_estimator_set_num_resamples(e, M));
    TU_OK(bsvi_estimator_set_buffer_weights(e, pi, K1));
    TU_OK(bsvi_estimator_compute(e, NULL, NULL, t));
    size_t *slot = tu_alloc_size(B * M);
    TU_OK(bsvi_estimator_get_targets(e, B * M, NULL, slot, NULL, NULL));
    double stat = 0.0, dof = 0.0;
    for (size_t b = 0; b < B; ++b) {
        double a[6], r[6], cnt[6] = {0};
        for (size_t i = 0; i < K1; ++i) {
            a[i] = log(pi[i]) + lw[b * K1 + i];
        }
        const double l = lse(a, K1);
        for (size_t i = 0; i < K1; ++i) {
            r[i] = exp(a[i] - l);
        }
        for (size_t m = 0; m < M; ++m) {
            assert_true(slot[b * M + m] < K1);
            cnt[slot[b * M + m]] += 1.0;
        }
        double small_e = 0.0, small_o = 0.0;
        size_t bins = 0;
        for (size_t i = 0; i < K1; ++i) {
            const double ex = r[i] * (double)M;
            if (ex < 5.0) {
                small_e += ex;
                small_o += cnt[i];
                continue;
            }
            stat += (cnt[i] - ex) * (cnt[i] - ex) / ex;
            ++bins;
        }
        if (small_e >= 5.0) {
            stat += (small_o - small_e) * (small_o - small_e) / small_e;
            ++bins;
        } else if (small_e > 0.0) {
            /* Too little mass to test; it must still be rare. */
            assert_true(small_o <= 5.0 + 10.0 * small_e);
        }
        if (bins > 1) {
            dof += (double)(bins - 1);
        }
    }
    assert_true(dof >= 4.0); /* the test has power: several slots are populated */
    const double crit = tu_chi2_upper(dof, 4.75);
    if (!(stat <= crit)) {
        print_error("SIR chi-square %.3g > critical %.3g (dof %.0f)\n", stat, crit, dof);
        fail();
    }
    free(slot);
    free(lw);
    bsvi_estimator_destroy(e);
    bsvi_trajectory_destroy(t);
    setup_free(&s);
}

/* ---- reproducibility ------------------------------------------------------------- */

/* Same seed: bitwise-equal results; a batch split in two with set_stream(counter, id_offset)
 * reproduces the whole batch bitwise (ELBO, IWAE with DREG, SIR). */
static void test_reproducibility_and_split(void **state)
{
    (void)state;
    const size_t B = 6, B1 = 2, B2 = 4, d = 3, D = 5;
    lg_model lg;
    assert_int_equal(lg_init(&lg, d, D, B, 0.8, 0, 79), 0);
    lg_model second = lg_view(&lg, B1);
    bsvi_model *model = NULL, *model2 = NULL;
    TU_OK(lg_make_model(&lg, &model));
    TU_OK(lg_make_model(&second, &model2));
    double mean[18], ls[18];
    poor_params(B, d, mean, ls);
    bsvi_proposal *q = NULL, *q1 = NULL, *q2 = NULL;
    TU_OK(lg_make_proposal(B, d, mean, ls, &q));
    TU_OK(lg_make_proposal(B1, d, mean, ls, &q1));
    TU_OK(lg_make_proposal(B2, d, mean + B1 * d, ls + B1 * d, &q2));
    /* Trajectories for SIR: whole and halves (the SVI split is tested in test_svi.c). */
    bsvi_svi *svi = NULL;
    bsvi_trajectory *tw = NULL, *t1 = NULL, *t2 = NULL;
    TU_OK(bsvi_svi_create(d, &svi));
    TU_OK(bsvi_svi_set_steps(svi, 4));
    TU_OK(bsvi_svi_set_step_size(svi, 0.05));
    TU_OK(bsvi_trajectory_create(&tw));
    TU_OK(bsvi_trajectory_create(&t1));
    TU_OK(bsvi_trajectory_create(&t2));
    TU_OK(bsvi_svi_set_seed(svi, 5));
    TU_OK(bsvi_svi_run(svi, model, q, tw));
    TU_OK(bsvi_svi_set_stream(svi, 0, 0));
    TU_OK(bsvi_svi_run(svi, model, q1, t1));
    TU_OK(bsvi_svi_set_stream(svi, 0, B1));
    TU_OK(bsvi_svi_run(svi, model2, q2, t2));

    const bsvi_bound kinds[3] = {BSVI_BOUND_ELBO, BSVI_BOUND_IWAE, BSVI_BOUND_BSVI_SIR};
    for (size_t kk = 0; kk < 3; ++kk) {
        bsvi_estimator *a = make_est(kinds[kk], d, 4321), *b = make_est(kinds[kk], d, 4321);
        if (kinds[kk] == BSVI_BOUND_IWAE) {
            TU_OK(bsvi_estimator_set_num_samples(a, 9));
            TU_OK(bsvi_estimator_set_num_samples(b, 9));
            TU_OK(bsvi_estimator_set_grad_form(a, BSVI_GRAD_DREG));
            TU_OK(bsvi_estimator_set_grad_form(b, BSVI_GRAD_DREG));
        }
        if (kinds[kk] == BSVI_BOUND_BSVI_SIR) {
            TU_OK(bsvi_estimator_set_num_resamples(a, 7));
            TU_OK(bsvi_estimator_set_num_resamples(b, 7));
        }
        TU_OK(bsvi_estimator_compute(a, model, q, tw));
        TU_OK(bsvi_estimator_compute(b, model, q, tw));
        est_out oa, ob, o1, o2;
        read_est(a, d, &oa);
        read_est(b, d, &ob);
        est_rows_equal(&oa, 0, &ob);
        free_est(&ob);
        /* Counter advanced: a second compute draws differently. */
        TU_OK(bsvi_estimator_compute(b, model, q, tw));
        read_est(b, d, &ob);
        if (kinds[kk] == BSVI_BOUND_BSVI_SIR) {
            int differ = 0;
            for (size_t i = 0; i < oa.n; ++i) {
                differ |= oa.slot[i] != ob.slot[i];
            }
            assert_true(differ);
        } else {
            assert_true(tu_first_bit_difference(oa.z, ob.z, oa.n * d) != (size_t)-1);
        }
        free_est(&ob);
        /* Split: second half first. */
        TU_OK(bsvi_estimator_set_seed(b, 4321));
        TU_OK(bsvi_estimator_set_stream(b, 0, B1));
        TU_OK(bsvi_estimator_compute(b, model2, q2, t2));
        read_est(b, d, &o2);
        TU_OK(bsvi_estimator_set_stream(b, 0, 0));
        TU_OK(bsvi_estimator_compute(b, model, q1, t1));
        read_est(b, d, &o1);
        est_rows_equal(&oa, 0, &o1);
        est_rows_equal(&oa, B1, &o2);
        free_est(&oa);
        free_est(&o1);
        free_est(&o2);
        bsvi_estimator_destroy(a);
        bsvi_estimator_destroy(b);
    }
    bsvi_svi_destroy(svi);
    bsvi_trajectory_destroy(tw);
    bsvi_trajectory_destroy(t1);
    bsvi_trajectory_destroy(t2);
    bsvi_proposal_destroy(q);
    bsvi_proposal_destroy(q1);
    bsvi_proposal_destroy(q2);
    bsvi_model_destroy(model);
    bsvi_model_destroy(model2);
    lg_free(&lg);
}

/* ---- bad input ------------------------------------------------------------------- */

/* Snapshot of everything observable on an estimator. */
typedef struct est_state {
    est_out o;
    double pi[8], grad[8];
    size_t npi;
} est_state;

static void snap(const bsvi_estimator *e, size_t d, est_state *s)
{
    read_est(e, d, &s->o);
    s->npi = bsvi_estimator_num_buffer_weights(e);
    assert_true(s->npi <= 8);
    if (s->npi > 0) {
        TU_OK(bsvi_estimator_get_buffer_weights(e, s->pi, s->npi));
        TU_OK(bsvi_estimator_get_pi_gradient(e, s->grad, s->npi));
    }
}

static void snap_equal(const bsvi_estimator *e, size_t d, const est_state *before)
{
    est_state now;
    snap(e, d, &now);
    assert_int_equal(now.o.B, before->o.B);
    assert_int_equal(now.o.n, before->o.n);
    est_rows_equal(&before->o, 0, &now.o);
    assert_int_equal(now.npi, before->npi);
    TU_BITWISE(now.pi, before->pi, now.npi);
    TU_BITWISE(now.grad, before->grad, now.npi);
    free_est(&now.o);
}

static void test_compute_bad_input(void **state)
{
    (void)state;
    setup s;
    setup_init(&s, 3, 2, 4, 0, 0, 83);
    const size_t d = s.d, B = s.B;
    lg_model lg3;
    assert_int_equal(lg_init(&lg3, 3, 4, B, 0.8, 0, 84), 0);
    bsvi_model *m3 = NULL, *hostprior = NULL;
    TU_OK(lg_make_model(&lg3, &m3));
    TU_OK(lg_make_model(&s.lg, &hostprior));
    TU_OK(bsvi_model_set_prior(hostprior, lg_prior_std_normal, NULL));
    bsvi_proposal *q3 = NULL;
    TU_OK(bsvi_proposal_create(B, 3, &q3));
    bsvi_trajectory *t = run_svi(s.model, s.q, d, 3, 0.05, BSVI_GRAD_PATHWISE, 0, 1);
    bsvi_trajectory *t5 = run_svi(s.model, s.q, d, 5, 0.05, BSVI_GRAD_PATHWISE, 0, 1);
    bsvi_trajectory *empty = NULL;
    TU_OK(bsvi_trajectory_create(&empty));
    bsvi_trajectory *tq3 = run_svi(m3, q3, 3, 3, 0.05, BSVI_GRAD_PATHWISE, 0, 1);

    /* IWAE: a good result first, then bad calls. */
    bsvi_estimator *e = make_est(BSVI_BOUND_IWAE, d, 8), *fresh = make_est(BSVI_BOUND_IWAE, d, 8);
    TU_OK(bsvi_estimator_set_num_samples(e, 4));
    TU_OK(bsvi_estimator_set_num_samples(fresh, 4));
    TU_OK(bsvi_estimator_compute(e, s.model, s.q, NULL));
    TU_OK(bsvi_estimator_compute(fresh, s.model, s.q, NULL));
    est_state before;
    snap(e, d, &before);
    TU_STATUS(bsvi_estimator_compute(NULL, s.model, s.q, NULL), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_estimator_compute(e, NULL, s.q, NULL), BSVI_ERR_NULL_ARGUMENT);
    TU_MESSAGE(bsvi_estimator_last_error(e));
    TU_STATUS(bsvi_estimator_compute(e, s.model, NULL, NULL), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_estimator_compute(e, m3, s.q, NULL), BSVI_ERR_SIZE_MISMATCH);
    TU_MESSAGE_MENTIONS(bsvi_estimator_last_error(e), "dim|size|match");
    TU_STATUS(bsvi_estimator_compute(e, s.model, q3, NULL), BSVI_ERR_SIZE_MISMATCH);
    TU_MESSAGE_MENTIONS(bsvi_estimator_last_error(e), "dim|size|match");
    TU_STATUS(bsvi_estimator_compute_terms(e, 1, 1, before.o.bounds, before.o.bounds),
              BSVI_ERR_BAD_STATE);
    snap_equal(e, d, &before);
    /* Output getters with wrong sizes leave buffers alone. */
    double buf[64];
    tu_fill(buf, 64, TU_SENTINEL);
    TU_STATUS(bsvi_estimator_get_bounds(e, buf, B + 1), BSVI_ERR_SIZE_MISMATCH);
    TU_STATUS(bsvi_estimator_get_bounds(e, NULL, B), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_estimator_get_bounds(NULL, buf, B), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_estimator_get_targets(e, before.o.n - 1, NULL, NULL, buf, buf + 32),
              BSVI_ERR_SIZE_MISMATCH);
    TU_STATUS(bsvi_estimator_get_encoder_grad(e, B + 1, buf, buf + 32), BSVI_ERR_SIZE_MISMATCH);
    TU_UNTOUCHED(buf, 64);
    /* Still works; failed calls did not advance the counter. */
    TU_OK(bsvi_estimator_compute(e, s.model, s.q, NULL));
    TU_OK(bsvi_estimator_compute(fresh, s.model, s.q, NULL));
    {
        est_out a, b2;
        read_est(e, d, &a);
        read_est(fresh, d, &b2);
        est_rows_equal(&a, 0, &b2);
        free_est(&a);
        free_est(&b2);
    }
    free_est(&before.o);
    bsvi_estimator_destroy(e);
    bsvi_estimator_destroy(fresh);

    /* ELBO with the analytic-KL form needs the standard normal prior. */
    e = make_est(BSVI_BOUND_ELBO, d, 1);
    TU_OK(bsvi_estimator_set_grad_form(e, BSVI_GRAD_ANALYTIC_KL));
    TU_STATUS(bsvi_estimator_compute(e, hostprior, s.q, NULL), BSVI_ERR_BAD_STATE);
    TU_MESSAGE_MENTIONS(bsvi_estimator_last_error(e), "prior|normal|analytic");
    TU_OK(bsvi_estimator_compute(e, s.model, s.q, NULL));
    bsvi_estimator_destroy(e);

    /* BSVI: pi optimisation on, a good compute, then bad calls. */
    e = make_est(BSVI_BOUND_BSVI, d, 1);
    TU_OK(bsvi_estimator_set_pi_optimisation(e, 1));
    TU_OK(bsvi_estimator_compute(e, NULL, NULL, t));
    snap(e, d, &before);
    TU_STATUS(bsvi_estimator_compute(e, s.model, s.q, NULL), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_estimator_compute(e, NULL, NULL, empty), BSVI_ERR_BAD_STATE);
    TU_MESSAGE(bsvi_estimator_last_error(e));
    TU_STATUS(bsvi_estimator_compute(e, NULL, NULL, t5), BSVI_ERR_SIZE_MISMATCH); /* pi has 4 */
    TU_MESSAGE(bsvi_estimator_last_error(e));
    TU_STATUS(bsvi_estimator_compute(e, NULL, NULL, tq3), BSVI_ERR_SIZE_MISMATCH); /* dim */
    snap_equal(e, d, &before);
    TU_OK(bsvi_estimator_compute(e, NULL, NULL, t));
    free_est(&before.o);
    bsvi_estimator_destroy(e);

    /* GIWAE. */
    e = make_est(BSVI_BOUND_GIWAE, d, 1);
    double lj[6] = {-1, -2, -3, -4, -5, -6}, lq[6] = {-1.5, -1.5, -2, -2, -3, -3};
    TU_STATUS(bsvi_estimator_compute(e, s.model, s.q, t), BSVI_ERR_BAD_STATE);
    TU_MESSAGE(bsvi_estimator_last_error(e));
    TU_OK(bsvi_estimator_compute_terms(e, 3, 2, lj, lq));
    snap(e, d, &before);
    TU_STATUS(bsvi_estimator_compute_terms(NULL, 3, 2, lj, lq), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_estimator_compute_terms(e, 3, 2, NULL, lq), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_estimator_compute_terms(e, 3, 2, lj, NULL), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_estimator_compute_terms(e, 0, 2, lj, lq), BSVI_ERR_ZERO_SIZE);
    TU_STATUS(bsvi_estimator_compute_terms(e, 3, 0, lj, lq), BSVI_ERR_ZERO_SIZE);
    TU_MESSAGE(bsvi_estimator_last_error(e));
    TU_STATUS(bsvi_estimator_compute_terms(e, 2, 3, lj, lq), BSVI_ERR_SIZE_MISMATCH);
    double badj[6], badq[6];
    memcpy(badj, lj, sizeof badj);
    memcpy(badq, lq, sizeof badq);
    badj[4] = NAN;
    TU_STATUS(bsvi_estimator_compute_terms(e, 3, 2, badj, lq), BSVI_ERR_BAD_VALUE);
    TU_MESSAGE_MENTIONS(bsvi_estimator_last_error(e), "nan");
    badq[1] = NAN;
    TU_STATUS(bsvi_estimator_compute_terms(e, 3, 2, lj, badq), BSVI_ERR_BAD_VALUE);
    badq[1] = -INFINITY;
    TU_STATUS(bsvi_estimator_compute_terms(e, 3, 2, lj, badq), BSVI_ERR_BAD_VALUE);
    TU_MESSAGE(bsvi_estimator_last_error(e));
    badj[4] = -INFINITY;
    badj[5] = -INFINITY; /* every weight of data point 2 is -inf */
    TU_STATUS(bsvi_estimator_compute_terms(e, 3, 2, badj, lq), BSVI_ERR_NUMERIC);
    TU_MESSAGE(bsvi_estimator_last_error(e));
    snap_equal(e, d, &before);
    /* -INFINITY in one term is legal: that term gets coefficient 0. */
    badj[5] = -6;
    TU_OK(bsvi_estimator_compute_terms(e, 3, 2, badj, lq));
    double coef[6];
    TU_OK(bsvi_estimator_get_targets(e, 6, NULL, NULL, NULL, coef));
    assert_true(coef[4] == 0.0);
    TU_NEAR(coef[5], 1.0, 1e-15);
    free_est(&before.o);
    bsvi_estimator_destroy(e);

    bsvi_trajectory_destroy(t);
    bsvi_trajectory_destroy(t5);
    bsvi_trajectory_destroy(tq3);
    bsvi_trajectory_destroy(empty);
    bsvi_proposal_destroy(q3);
    bsvi_model_destroy(m3);
    bsvi_model_destroy(hostprior);
    lg_free(&lg3);
    setup_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_and_setters),
        cmocka_unit_test(test_buffer_weights_api),
        cmocka_unit_test(test_elbo_values),
        cmocka_unit_test(test_iwae_values),
        cmocka_unit_test(test_trajectory_kinds),
        cmocka_unit_test(test_giwae_equals_iwae),
        cmocka_unit_test(test_exact_posterior_bounds),
        cmocka_unit_test(test_bound_ordering),
        cmocka_unit_test(test_optimised_pi),
        cmocka_unit_test(test_zero_slot_stays_zero),
        cmocka_unit_test(test_sir_chi_square),
        cmocka_unit_test(test_reproducibility_and_split),
        cmocka_unit_test(test_compute_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
