/* test_estimator.c: every bound estimator (ELBO, IWAE-K, SVI-k, BSVI, BSVI-DS, BSVI-SIR,
 * GIWAE): values and targets against recomputation through the public API, the exact
 * posterior case, the expected ordering of the bounds, buffer weights and their
 * optimisation, SIR frequencies (chi-square), reproducibility, and bad input; zero-density
 * data points under both point policies, the per-target log weights and noise, the result
 * kind, the stream and the counters, and the name helpers of the enums. */
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
    bsvi_bound kind;
    TU_OK(bsvi_estimator_result_kind(e, &kind));
    o->has_z = kind != BSVI_BOUND_GIWAE;
    TU_OK(bsvi_estimator_get_targets(e, o->n, o->idx, o->slot, o->has_z ? o->z : NULL, o->coef));
    o->has_enc = kind != BSVI_BOUND_GIWAE;
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

static bsvi_estimator *make_est(size_t d, uint64_t seed)
{
    bsvi_estimator *e = NULL;
    TU_OK(bsvi_estimator_create(d, &e));
    TU_OK(bsvi_estimator_set_seed(e, seed));
    return e;
}

/* Buffer weights with the given probabilities (NULL: uniform). */
static bsvi_buffer_weights *make_pi(size_t n, const double *pi)
{
    bsvi_buffer_weights *w = NULL;
    TU_OK(bsvi_buffer_weights_create(n, &w));
    if (pi != NULL) {
        TU_OK(bsvi_buffer_weights_set_probs(w, pi, n));
    }
    return w;
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
    TU_STATUS(bsvi_estimator_create(0, &e), BSVI_ERR_ZERO_SIZE);
    assert_null(e);
    e = (bsvi_estimator *)&e;
    TU_STATUS(bsvi_estimator_create(BSVI_MAX_DIM + 1, &e), BSVI_ERR_OUT_OF_RANGE);
    assert_null(e);
    TU_STATUS(bsvi_estimator_create(2, NULL), BSVI_ERR_NULL_ARGUMENT);
    TU_OK(bsvi_estimator_create(2, &e));
    assert_int_equal(bsvi_estimator_dim(e), 2);
    assert_int_equal(bsvi_estimator_batch(e), 0);
    assert_int_equal(bsvi_estimator_num_targets(e), 0);
    assert_int_equal(bsvi_estimator_num_zero_points(e), 0);
    assert_string_equal(bsvi_estimator_last_error(e), "");
    double out[2] = {TU_SENTINEL, TU_SENTINEL};
    TU_STATUS(bsvi_estimator_get_bounds(e, out, 0), BSVI_ERR_BAD_STATE);
    TU_UNTOUCHED(out, 2);
    bsvi_bound kind = (bsvi_bound)99;
    TU_STATUS(bsvi_estimator_result_kind(e, &kind), BSVI_ERR_BAD_STATE);
    assert_int_equal(kind, 99);
    TU_MESSAGE(bsvi_estimator_last_error(e));
    bsvi_estimator_destroy(e);
    bsvi_estimator_destroy(NULL);
    assert_int_equal(bsvi_estimator_dim(NULL), 0);
    assert_int_equal(bsvi_estimator_batch(NULL), 0);
    assert_int_equal(bsvi_estimator_num_targets(NULL), 0);
    assert_int_equal(bsvi_estimator_num_zero_points(NULL), 0);
    TU_STATUS(bsvi_estimator_set_seed(NULL, 3), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_estimator_set_stream(NULL, 3, 0), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_estimator_set_point_policy(NULL, BSVI_POINTS_FAIL), BSVI_ERR_NULL_ARGUMENT);

    /* Gradient forms valid per bound, and the sample counts: refused before any work. */
    lg_model lg;
    assert_int_equal(lg_init(&lg, 2, 3, 2, 0.8, 0, 5), 0);
    bsvi_model *m = NULL;
    TU_OK(lg_make_model(&lg, &m));
    bsvi_proposal *q = NULL;
    TU_OK(bsvi_proposal_create(2, 2, &q));
    TU_OK(bsvi_estimator_create(2, &e));
    TU_OK(bsvi_estimator_elbo(e, m, q, BSVI_GRAD_STL));
    TU_OK(bsvi_estimator_elbo(e, m, q, BSVI_GRAD_ANALYTIC_KL));
    TU_OK(bsvi_estimator_elbo(e, m, q, BSVI_GRAD_PATHWISE));
    TU_STATUS(bsvi_estimator_elbo(e, m, q, BSVI_GRAD_DREG), BSVI_ERR_BAD_VALUE);
    TU_MESSAGE(bsvi_estimator_last_error(e));
    TU_STATUS(bsvi_estimator_elbo(e, m, q, (bsvi_grad_form)11), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_estimator_elbo(NULL, m, q, BSVI_GRAD_STL), BSVI_ERR_NULL_ARGUMENT);
    TU_OK(bsvi_estimator_iwae(e, m, q, 3, BSVI_GRAD_DREG));
    TU_OK(bsvi_estimator_iwae(e, m, q, 3, BSVI_GRAD_PATHWISE));
    /* STL is biased for IWAE (DReG is the unbiased form): refused */
    TU_STATUS(bsvi_estimator_iwae(e, m, q, 3, BSVI_GRAD_STL), BSVI_ERR_BAD_VALUE);
    TU_MESSAGE_MENTIONS(bsvi_estimator_last_error(e), "stl|dreg|form");
    TU_STATUS(bsvi_estimator_iwae(e, m, q, 3, BSVI_GRAD_ANALYTIC_KL), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_estimator_iwae(e, m, q, 3, (bsvi_grad_form)11), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_estimator_iwae(e, m, q, 0, BSVI_GRAD_PATHWISE), BSVI_ERR_ZERO_SIZE);
    TU_STATUS(bsvi_estimator_iwae(e, m, q, BSVI_MAX_SAMPLES + 1, BSVI_GRAD_PATHWISE),
              BSVI_ERR_OUT_OF_RANGE);
    TU_STATUS(bsvi_estimator_iwae(NULL, m, q, 3, BSVI_GRAD_PATHWISE), BSVI_ERR_NULL_ARGUMENT);
    /* the failed calls left the last result: IWAE with K = 3 */
    TU_OK(bsvi_estimator_result_kind(e, &kind));
    assert_int_equal(kind, BSVI_BOUND_IWAE);
    assert_int_equal(bsvi_estimator_num_targets(e), 2 * 3);
    TU_STATUS(bsvi_estimator_set_point_policy(e, (bsvi_point_policy)2), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_estimator_set_point_policy(e, (bsvi_point_policy)-1), BSVI_ERR_BAD_VALUE);
    TU_OK(bsvi_estimator_set_point_policy(e, BSVI_POINTS_FAIL));
    TU_OK(bsvi_estimator_set_point_policy(e, BSVI_POINTS_REPORT));
    /* SIR's M */
    bsvi_svi *svi = NULL;
    bsvi_trajectory *t = NULL;
    TU_OK(bsvi_svi_create(2, &svi));
    TU_OK(bsvi_svi_set_steps(svi, 2));
    TU_OK(bsvi_trajectory_create(&t));
    TU_OK(bsvi_svi_run(svi, m, q, t));
    TU_STATUS(bsvi_estimator_bsvi_sir(e, t, NULL, 0), BSVI_ERR_ZERO_SIZE);
    TU_STATUS(bsvi_estimator_bsvi_sir(e, t, NULL, BSVI_MAX_SAMPLES + 1), BSVI_ERR_OUT_OF_RANGE);
    TU_STATUS(bsvi_estimator_bsvi_sir(NULL, t, NULL, 2), BSVI_ERR_NULL_ARGUMENT);
    TU_OK(bsvi_estimator_bsvi_sir(e, t, NULL, 2));
    assert_int_equal(bsvi_estimator_num_targets(e), 2 * 2);
    bsvi_trajectory_destroy(t);
    bsvi_svi_destroy(svi);
    bsvi_estimator_destroy(e);
    bsvi_proposal_destroy(q);
    bsvi_model_destroy(m);
    lg_free(&lg);
}

/* Buffer weights as the estimators read them (the handle itself: test_weights.c). */
static void test_buffer_weights_api(void **state)
{
    (void)state;
    double pi[4], pos;
    const double p4[4] = {0.1, 0.2, 0.3, 0.4};
    bsvi_buffer_weights *w = make_pi(4, p4);
    TU_OK(bsvi_buffer_weights_get_probs(w, pi, 4));
    for (size_t i = 0; i < 4; ++i) {
        TU_NEAR(pi[i], p4[i], 1e-15);
    }
    TU_OK(bsvi_buffer_weights_mean_position(w, &pos));
    TU_NEAR(pos, 0.2 / 3.0 + 0.6 / 3.0 + 0.4, 1e-14);
    TU_STATUS(bsvi_buffer_weights_mean_position(w, NULL), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_buffer_weights_get_probs(w, pi, 3), BSVI_ERR_SIZE_MISMATCH);
    TU_STATUS(bsvi_buffer_weights_get_probs(w, NULL, 4), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_buffer_weights_get_probs(NULL, pi, 4), BSVI_ERR_NULL_ARGUMENT);

    /* Refused distributions leave pi as it was. */
    const double bad1[4] = {0.1, 0.2, 0.3, 0.3};  /* sums to 0.9 */
    const double bad2[4] = {-0.1, 0.4, 0.3, 0.4}; /* negative */
    const double bad3[4] = {NAN, 0.4, 0.3, 0.3};  /* NaN */
    const double bad4[4] = {INFINITY, 0.4, 0.3, 0.3};
    TU_STATUS(bsvi_buffer_weights_set_probs(w, bad1, 4), BSVI_ERR_BAD_VALUE);
    TU_MESSAGE(bsvi_buffer_weights_last_error(w));
    TU_STATUS(bsvi_buffer_weights_set_probs(w, bad2, 4), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_buffer_weights_set_probs(w, bad3, 4), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_buffer_weights_set_probs(w, bad4, 4), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_buffer_weights_set_probs(w, p4, 3), BSVI_ERR_SIZE_MISMATCH);
    TU_STATUS(bsvi_buffer_weights_set_probs(w, NULL, 4), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_buffer_weights_set_probs(NULL, p4, 4), BSVI_ERR_NULL_ARGUMENT);
    bsvi_buffer_weights *w0 = (bsvi_buffer_weights *)(void *)&w0;
    TU_STATUS(bsvi_buffer_weights_create(0, &w0), BSVI_ERR_ZERO_SIZE);
    assert_null(w0);
    TU_STATUS(bsvi_buffer_weights_create(BSVI_MAX_STEPS + 2, &w0), BSVI_ERR_OUT_OF_RANGE);
    TU_STATUS(bsvi_buffer_weights_create(3, NULL), BSVI_ERR_NULL_ARGUMENT);
    assert_int_equal(bsvi_buffer_weights_size(w), 4);
    TU_OK(bsvi_buffer_weights_get_probs(w, pi, 4));
    for (size_t i = 0; i < 4; ++i) {
        TU_NEAR(pi[i], p4[i], 1e-15);
    }
    bsvi_buffer_weights_destroy(w);
    /* Zero entries are allowed. */
    const double pz[3] = {0.0, 0.5, 0.5};
    w = make_pi(3, pz);
    TU_OK(bsvi_buffer_weights_get_probs(w, pi, 3));
    assert_true(pi[0] == 0.0);
    bsvi_buffer_weights_destroy(w);
    w = make_pi(5, NULL);
    double p5[5];
    TU_OK(bsvi_buffer_weights_get_probs(w, p5, 5));
    for (size_t i = 0; i < 5; ++i) {
        TU_NEAR(p5[i], 0.2, 1e-15);
    }
    TU_OK(bsvi_buffer_weights_mean_position(w, &pos));
    TU_NEAR(pos, 0.5, 1e-15);
    bsvi_buffer_weights_destroy(w);
    w = make_pi(1, NULL);
    TU_OK(bsvi_buffer_weights_mean_position(w, &pos));
    assert_true(pos == 0.0);

    /* Optimiser settings. */
    TU_STATUS(bsvi_buffer_weights_set_adam(w, 0.0, 0.9, 0.999), BSVI_ERR_BAD_VALUE);
    TU_MESSAGE(bsvi_buffer_weights_last_error(w));
    TU_STATUS(bsvi_buffer_weights_set_adam(w, NAN, 0.9, 0.999), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_buffer_weights_set_adam(w, INFINITY, 0.9, 0.999), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_buffer_weights_set_adam(w, 0.1, 1.0, 0.999), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_buffer_weights_set_adam(w, 0.1, 0.9, -0.5), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_buffer_weights_set_adam(NULL, 0.1, 0.9, 0.9), BSVI_ERR_NULL_ARGUMENT);
    TU_OK(bsvi_buffer_weights_set_adam(w, 0.1, 0.0, 0.0));
    TU_OK(bsvi_buffer_weights_step(w)); /* nothing accumulated: no step */
    double one;
    TU_OK(bsvi_buffer_weights_get_probs(w, &one, 1));
    assert_true(one == 1.0);
    TU_STATUS(bsvi_buffer_weights_step(NULL), BSVI_ERR_NULL_ARGUMENT);
    bsvi_buffer_weights_destroy(w);
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

/* The result's per-target log w equals log p - log q recomputed at its latents (1e-12
 * relative), and its noise gives the latents: z = mean + sigma * eps of the data point. */
static void check_log_weights_and_noise(const bsvi_estimator *e, setup *s, const est_out *o,
                                        size_t T)
{
    const size_t d = s->d;
    double *lw = tu_alloc(o->n), *ref = tu_alloc(o->n), *eps = tu_alloc(o->n * d);
    TU_OK(bsvi_estimator_get_target_log_weights(e, o->n, lw));
    target_log_weights(s, o, T, ref);
    for (size_t i = 0; i < o->n; ++i) {
        if (!(fabs(lw[i] - ref[i]) <= 1e-12 * (1.0 + fabs(ref[i])))) {
            print_error("target %zu: log w %.17g, log p - log q %.17g\n", i, lw[i], ref[i]);
            fail();
        }
    }
    TU_OK(bsvi_estimator_get_noise(e, o->n, eps));
    for (size_t i = 0; i < o->n; ++i) {
        const size_t b = o->idx[i];
        for (size_t j = 0; j < d; ++j) {
            const double zr = s->mean[b * d + j] + exp(s->ls[b * d + j]) * eps[i * d + j];
            TU_NEAR(o->z[i * d + j], zr, 1e-15 * (1.0 + fabs(zr)));
        }
    }
    /* sizes */
    tu_fill(lw, o->n, TU_SENTINEL);
    TU_STATUS(bsvi_estimator_get_target_log_weights(e, o->n + 1, lw), BSVI_ERR_SIZE_MISMATCH);
    TU_STATUS(bsvi_estimator_get_noise(e, o->n - 1, lw), BSVI_ERR_SIZE_MISMATCH);
    TU_STATUS(bsvi_estimator_get_noise(e, o->n, NULL), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_estimator_get_target_log_weights(e, o->n, NULL), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_estimator_get_target_log_weights(NULL, o->n, lw), BSVI_ERR_NULL_ARGUMENT);
    TU_UNTOUCHED(lw, o->n);
    free(lw);
    free(ref);
    free(eps);
}

static void test_elbo_values(void **state)
{
    (void)state;
    setup s;
    setup_init(&s, 4, 3, 5, 0, 0, 41);
    const bsvi_grad_form forms[3] = {BSVI_GRAD_PATHWISE, BSVI_GRAD_STL, BSVI_GRAD_ANALYTIC_KL};
    for (size_t f = 0; f < 3; ++f) {
        bsvi_estimator *e = make_est(s.d, 3);
        TU_OK(bsvi_estimator_elbo(e, s.model, s.q, forms[f]));
        bsvi_bound kind;
        TU_OK(bsvi_estimator_result_kind(e, &kind));
        assert_int_equal(kind, BSVI_BOUND_ELBO);
        est_out o;
        read_est(e, s.d, &o);
        assert_int_equal(o.B, s.B);
        check_targets_layout(&o, 1);
        check_log_weights_and_noise(e, &s, &o, 1);
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
    /* STL is refused for IWAE (test_create_and_setters); its DReG form uses the STL
     * gradient of each log w_s, weighted by wbar_s^2. */
    const bsvi_grad_form forms[2] = {BSVI_GRAD_PATHWISE, BSVI_GRAD_DREG};
    for (size_t f = 0; f < 2; ++f) {
        bsvi_estimator *e = make_est(d, 5);
        TU_OK(bsvi_estimator_iwae(e, s.model, s.q, K, forms[f]));
        bsvi_bound kind;
        TU_OK(bsvi_estimator_result_kind(e, &kind));
        assert_int_equal(kind, BSVI_BOUND_IWAE);
        est_out o;
        read_est(e, d, &o);
        check_targets_layout(&o, K);
        check_log_weights_and_noise(e, &s, &o, K);
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

/* SVI, BSVI (non-uniform pi), BSVI-DS, BSVI-SIR against the trajectory they read. BSVI over
 * a double-sampled trajectory is BSVI-DS (its result kind says so). */
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
        bsvi_buffer_weights *w = make_pi(K1, pi);
        const bsvi_bound kinds[3] = {BSVI_BOUND_SVI, BSVI_BOUND_BSVI, BSVI_BOUND_BSVI_SIR};
        for (size_t kk = 0; kk < 3; ++kk) {
            bsvi_estimator *e = make_est(d, 11);
            if (kinds[kk] == BSVI_BOUND_SVI) {
                TU_OK(bsvi_estimator_svi(e, t));
            } else if (kinds[kk] == BSVI_BOUND_BSVI) {
                TU_OK(bsvi_estimator_bsvi(e, t, w));
            } else {
                TU_OK(bsvi_estimator_bsvi_sir(e, t, w, M));
            }
            bsvi_bound kind;
            TU_OK(bsvi_estimator_result_kind(e, &kind));
            assert_int_equal(kind, kinds[kk] == BSVI_BOUND_BSVI && ds ? BSVI_BOUND_BSVI_DS
                                                                      : kinds[kk]);
            est_out o;
            read_est(e, d, &o);
            const size_t T = kinds[kk] == BSVI_BOUND_SVI ? 1
                             : kinds[kk] == BSVI_BOUND_BSVI_SIR ? M
                                                                : K1;
            check_targets_layout(&o, T);
            /* each target's log w is its slot's (bitwise); trajectory results have no noise */
            double *tlw = tu_alloc(o.n);
            TU_OK(bsvi_estimator_get_target_log_weights(e, o.n, tlw));
            for (size_t i = 0; i < o.n; ++i) {
                TU_BITWISE(&tlw[i], &tr.lw[o.idx[i] * K1 + o.slot[i]], 1);
            }
            TU_STATUS(bsvi_estimator_get_noise(e, o.n, tlw), BSVI_ERR_BAD_STATE);
            free(tlw);
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
        /* Default pi (NULL): uniform. */
        bsvi_estimator *e = make_est(d, 1);
        TU_OK(bsvi_estimator_bsvi(e, t, NULL));
        double bounds[4];
        TU_OK(bsvi_estimator_get_bounds(e, bounds, B));
        for (size_t b = 0; b < B; ++b) {
            const double u = lse(&tr.lw[b * K1], K1) - log((double)K1);
            TU_NEAR(bounds[b], u, 1e-12 * (1.0 + fabs(u)));
        }
        /* ... the same as a new (uniform) weights handle */
        bsvi_buffer_weights *wu = make_pi(K1, NULL);
        double bu[4];
        TU_OK(bsvi_estimator_bsvi(e, t, wu));
        TU_OK(bsvi_estimator_get_bounds(e, bu, B));
        for (size_t b = 0; b < B; ++b) {
            TU_NEAR(bu[b], bounds[b], 1e-14 * (1.0 + fabs(bounds[b])));
        }
        bsvi_buffer_weights_destroy(wu);
        /* pi = (0, ..., 0, 1): BSVI equals SVI-k. */
        double last[5] = {0, 0, 0, 0, 1};
        TU_OK(bsvi_buffer_weights_set_probs(w, last, K1));
        TU_OK(bsvi_estimator_bsvi(e, t, w));
        TU_OK(bsvi_estimator_get_bounds(e, bounds, B));
        for (size_t b = 0; b < B; ++b) {
            TU_NEAR(bounds[b], tr.lw[b * K1 + k], 1e-12 * (1.0 + fabs(bounds[b])));
        }
        bsvi_estimator_destroy(e);
        bsvi_buffer_weights_destroy(w);
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
    bsvi_estimator *iw = make_est(d, 77);
    TU_OK(bsvi_estimator_iwae(iw, s.model, s.q, K, BSVI_GRAD_PATHWISE));
    est_out o;
    read_est(iw, d, &o);
    double *lp = tu_alloc(B * K), *lq = tu_alloc(B * K);
    /* Targets are ordered by data point then slot, i.e. rows b*K + s of q's sample layout. */
    for (size_t i = 0; i < B * K; ++i) {
        assert_int_equal(o.slot[i], i % K);
    }
    TU_OK(bsvi_model_log_joint(s.model, B * K, o.z, o.idx, lp, NULL));
    TU_OK(bsvi_proposal_log_density(s.q, K, o.z, lq));
    bsvi_estimator *g = make_est(d, 0);
    TU_OK(bsvi_estimator_giwae(g, B, K, lp, lq, NULL)); /* uniform pi */
    bsvi_bound kind;
    TU_OK(bsvi_estimator_result_kind(g, &kind));
    assert_int_equal(kind, BSVI_BOUND_GIWAE);
    est_out og;
    read_est(g, d, &og);
    check_targets_layout(&og, K);
    /* each target's log w is log_joint - log_proposal (bitwise) */
    {
        double *tlw = tu_alloc(B * K);
        TU_OK(bsvi_estimator_get_target_log_weights(g, B * K, tlw));
        for (size_t i = 0; i < B * K; ++i) {
            const double x = lp[i] - lq[i];
            TU_BITWISE(&tlw[i], &x, 1);
        }
        TU_STATUS(bsvi_estimator_get_noise(g, B * K, tlw), BSVI_ERR_BAD_STATE);
        free(tlw);
    }
    /* a uniform weights handle gives the same bounds */
    {
        bsvi_estimator *g2 = make_est(d, 0);
        bsvi_buffer_weights *wu = make_pi(K, NULL);
        double b2[5];
        TU_OK(bsvi_estimator_giwae(g2, B, K, lp, lq, wu));
        TU_OK(bsvi_estimator_get_bounds(g2, b2, B));
        for (size_t b = 0; b < B; ++b) {
            TU_NEAR(b2[b], og.bounds[b], 1e-14 * (1.0 + fabs(og.bounds[b])));
        }
        bsvi_buffer_weights_destroy(wu);
        bsvi_estimator_destroy(g2);
    }
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
    const double pi6[6] = {0.5, 0.1, 0.1, 0.1, 0.1, 0.1};
    bsvi_buffer_weights *w6 = make_pi(6, pi6);
    for (int kind = 0; kind <= 5; ++kind) {
        for (uint64_t seed = 0; seed < 3; ++seed) {
            bsvi_estimator *e = make_est(d, seed);
            switch ((bsvi_bound)kind) {
            case BSVI_BOUND_ELBO:
                TU_OK(bsvi_estimator_elbo(e, s.model, s.q, BSVI_GRAD_PATHWISE));
                break;
            case BSVI_BOUND_IWAE:
                TU_OK(bsvi_estimator_iwae(e, s.model, s.q, 20, BSVI_GRAD_PATHWISE));
                break;
            case BSVI_BOUND_SVI: TU_OK(bsvi_estimator_svi(e, t)); break;
            case BSVI_BOUND_BSVI: TU_OK(bsvi_estimator_bsvi(e, t, seed == 1 ? w6 : NULL)); break;
            case BSVI_BOUND_BSVI_DS: TU_OK(bsvi_estimator_bsvi(e, tds, NULL)); break;
            default: TU_OK(bsvi_estimator_bsvi_sir(e, t, NULL, 3)); break;
            }
            bsvi_bound got;
            TU_OK(bsvi_estimator_result_kind(e, &got));
            assert_int_equal(got, kind);
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
    bsvi_buffer_weights_destroy(w6);
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
        bsvi_estimator *e = make_est(d, 1000 + (uint64_t)i);
        if (Ks[i] > 1) {
            TU_OK(bsvi_estimator_iwae(e, model, q, Ks[i], BSVI_GRAD_PATHWISE));
        } else {
            TU_OK(bsvi_estimator_elbo(e, model, q, BSVI_GRAD_PATHWISE));
        }
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
    bsvi_estimator *e1 = make_est(d, 5000);
    TU_OK(bsvi_estimator_iwae(e1, model, q, 1, BSVI_GRAD_PATHWISE));
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
 * the samples). The accumulated pi gradient is checked exactly against sum_b(r_bj - pi_j) and
 * its count. Each step: the bound compute, then bsvi_buffer_weights_accumulate and _step (0.2;
 * in 0.1 the compute accumulated). */
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
    bsvi_estimator *e = make_est(d, 0);
    bsvi_buffer_weights *w = make_pi(K1, NULL);
    TU_OK(bsvi_buffer_weights_set_adam(w, 0.05, 0.9, 0.999));

    /* The accumulated gradient is sum_b (r_bj - pi_j) over count = B data points; its mean
     * sum / count is mean_b (r_bj - pi_j), over both computes after the second. */
    TU_OK(bsvi_svi_run(svi, model, qt, t));
    TU_OK(bsvi_estimator_bsvi(e, t, w));
    TU_OK(bsvi_buffer_weights_accumulate(w, t));
    double g1[7], g2[7], pi[7], expect1[7] = {0}, expect2[7] = {0};
    uint64_t count = 0;
    TU_OK(bsvi_buffer_weights_get_gradient(w, g1, &count, K1));
    assert_true(count == Btrain);
    for (size_t i = 0; i < K1; ++i) {
        g1[i] /= (double)count;
    }
    TU_STATUS(bsvi_buffer_weights_get_gradient(w, g1, &count, K1 - 1), BSVI_ERR_SIZE_MISMATCH);
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
            TU_OK(bsvi_estimator_bsvi(e, t, w));
            TU_OK(bsvi_buffer_weights_accumulate(w, t));
        }
    }
    TU_OK(bsvi_buffer_weights_get_gradient(w, g2, &count, K1));
    assert_true(count == 2 * Btrain);
    for (size_t i = 0; i < K1; ++i) {
        g2[i] /= (double)count;
    }
    double gsum = 0.0;
    for (size_t i = 0; i < K1; ++i) {
        TU_NEAR(g1[i], expect1[i], 1e-12);
        TU_NEAR(g2[i], 0.5 * (expect1[i] + expect2[i]), 1e-12);
        gsum += g2[i];
    }
    TU_NEAR(gsum, 0.0, 1e-12);
    /* First Adam step: bias-corrected m/sqrt(v) = sign(g), so each logit moves by lr. */
    TU_OK(bsvi_buffer_weights_step(w));
    TU_OK(bsvi_buffer_weights_get_probs(w, pi, K1));
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
    TU_OK(bsvi_buffer_weights_get_gradient(w, g1, &count, K1));
    assert_true(count == 0);
    for (size_t i = 0; i < K1; ++i) {
        assert_true(g1[i] == 0.0);
    }
    for (int it = 0; it < 300; ++it) {
        TU_OK(bsvi_svi_run(svi, model, qt, t));
        TU_OK(bsvi_estimator_bsvi(e, t, w));
        TU_OK(bsvi_buffer_weights_accumulate(w, t));
        TU_OK(bsvi_buffer_weights_step(w));
    }
    TU_OK(bsvi_buffer_weights_get_probs(w, pi, K1));
    double psum = 0.0, pos;
    for (size_t i = 0; i < K1; ++i) {
        psum += pi[i];
    }
    TU_NEAR(psum, 1.0, 1e-12);
    TU_OK(bsvi_buffer_weights_mean_position(w, &pos));
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
    TU_OK(bsvi_estimator_bsvi(e, te, w)); /* no accumulate: evaluation only */
    double *bopt = tu_alloc(Beval), *bsvik = tu_alloc(Beval), *buni = tu_alloc(Beval);
    TU_OK(bsvi_estimator_get_bounds(e, bopt, Beval));
    bsvi_estimator *es = make_est(d, 0);
    TU_OK(bsvi_estimator_svi(es, te));
    TU_OK(bsvi_estimator_get_bounds(es, bsvik, Beval));
    bsvi_estimator *eu = make_est(d, 0);
    TU_OK(bsvi_estimator_bsvi(eu, te, NULL));
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
    bsvi_health h;
    double m_svik, s_svik, m_opt, s_opt;
    TU_OK(bsvi_trajectory_health(te, w, &h));
    assert_true(h.zero_svi0 == 0 && h.zero_svik == 0 && h.zero_bsvik == 0);
    tu_mean_se(bsvik, Beval, &m_svik, &s_svik);
    tu_mean_se(bopt, Beval, &m_opt, &s_opt);
    TU_NEAR(h.svik, m_svik, 1e-9);
    TU_NEAR(h.bsvik, m_opt, 1e-9);
    free(bopt);
    free(bsvik);
    free(buni);
    free(lw);
    free(mean);
    free(ls);
    bsvi_buffer_weights_destroy(w);
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
    bsvi_estimator *e = make_est(s.d, 0);
    const double pi0[4] = {0.0, 0.3, 0.3, 0.4};
    bsvi_buffer_weights *w = make_pi(4, pi0);
    for (int i = 0; i < 20; ++i) {
        TU_OK(bsvi_estimator_bsvi(e, t, w));
        TU_OK(bsvi_buffer_weights_accumulate(w, t));
        TU_OK(bsvi_buffer_weights_step(w));
    }
    double pi[4];
    TU_OK(bsvi_buffer_weights_get_probs(w, pi, 4));
    assert_true(pi[0] == 0.0);
    TU_NEAR(pi[1] + pi[2] + pi[3], 1.0, 1e-12);
    double a[4];
    TU_OK(bsvi_buffer_weights_get_logits(w, a, 4));
    assert_true(a[0] == -INFINITY);
    bsvi_buffer_weights_destroy(w);
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
    bsvi_estimator *e = make_est(s.d, 2718);
    bsvi_buffer_weights *w = make_pi(K1, pi);
    TU_OK(bsvi_estimator_bsvi_sir(e, t, w, M));
    bsvi_buffer_weights_destroy(w);
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

/* The three drawing computes of the reproducibility test: ELBO, IWAE-9 with DReG, SIR-7. */
static bsvi_status compute_kind(bsvi_estimator *e, bsvi_bound kind, const bsvi_model *m,
                                const bsvi_proposal *q, const bsvi_trajectory *t)
{
    switch (kind) {
    case BSVI_BOUND_ELBO: return bsvi_estimator_elbo(e, m, q, BSVI_GRAD_PATHWISE);
    case BSVI_BOUND_IWAE: return bsvi_estimator_iwae(e, m, q, 9, BSVI_GRAD_DREG);
    default: return bsvi_estimator_bsvi_sir(e, t, NULL, 7);
    }
}

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
        bsvi_estimator *a = make_est(d, 4321), *b = make_est(d, 4321);
        TU_OK(compute_kind(a, kinds[kk], model, q, tw));
        TU_OK(compute_kind(b, kinds[kk], model, q, tw));
        est_out oa, ob, o1, o2;
        read_est(a, d, &oa);
        read_est(b, d, &ob);
        est_rows_equal(&oa, 0, &ob);
        free_est(&ob);
        /* Counter advanced: a second compute draws differently. */
        TU_OK(compute_kind(b, kinds[kk], model, q, tw));
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
        TU_OK(compute_kind(b, kinds[kk], model2, q2, t2));
        read_est(b, d, &o2);
        TU_OK(bsvi_estimator_set_stream(b, 0, 0));
        TU_OK(compute_kind(b, kinds[kk], model, q1, t1));
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
    bsvi_bound kind;
    double *lw;
    size_t zero;
    uint64_t seed, counter, id;
    bsvi_stats stats;
} est_state;

static void snap(const bsvi_estimator *e, size_t d, est_state *s)
{
    read_est(e, d, &s->o);
    TU_OK(bsvi_estimator_result_kind(e, &s->kind));
    s->lw = tu_alloc(s->o.n);
    TU_OK(bsvi_estimator_get_target_log_weights(e, s->o.n, s->lw));
    s->zero = bsvi_estimator_num_zero_points(e);
    TU_OK(bsvi_estimator_get_stream(e, &s->seed, &s->counter, &s->id));
    TU_OK(bsvi_estimator_get_stats(e, &s->stats));
}

static void snap_free(est_state *s)
{
    free_est(&s->o);
    free(s->lw);
}

static void snap_equal(const bsvi_estimator *e, size_t d, const est_state *before)
{
    est_state now;
    snap(e, d, &now);
    assert_int_equal(now.o.B, before->o.B);
    assert_int_equal(now.o.n, before->o.n);
    assert_int_equal(now.kind, before->kind);
    est_rows_equal(&before->o, 0, &now.o);
    TU_BITWISE(now.lw, before->lw, now.o.n);
    assert_int_equal(now.zero, before->zero);
    assert_true(now.seed == before->seed && now.counter == before->counter &&
                now.id == before->id);
    assert_memory_equal(&now.stats, &before->stats, sizeof now.stats);
    snap_free(&now);
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
    bsvi_estimator *e = make_est(d, 8), *fresh = make_est(d, 8);
    TU_OK(bsvi_estimator_iwae(e, s.model, s.q, 4, BSVI_GRAD_PATHWISE));
    TU_OK(bsvi_estimator_iwae(fresh, s.model, s.q, 4, BSVI_GRAD_PATHWISE));
    est_state before;
    snap(e, d, &before);
    TU_STATUS(bsvi_estimator_iwae(NULL, s.model, s.q, 4, BSVI_GRAD_PATHWISE),
              BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_estimator_iwae(e, NULL, s.q, 4, BSVI_GRAD_PATHWISE), BSVI_ERR_NULL_ARGUMENT);
    TU_MESSAGE(bsvi_estimator_last_error(e));
    TU_STATUS(bsvi_estimator_iwae(e, s.model, NULL, 4, BSVI_GRAD_PATHWISE), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_estimator_iwae(e, m3, s.q, 4, BSVI_GRAD_PATHWISE), BSVI_ERR_SIZE_MISMATCH);
    TU_MESSAGE_MENTIONS(bsvi_estimator_last_error(e), "dim|size|match");
    TU_STATUS(bsvi_estimator_iwae(e, s.model, q3, 4, BSVI_GRAD_PATHWISE), BSVI_ERR_SIZE_MISMATCH);
    TU_MESSAGE_MENTIONS(bsvi_estimator_last_error(e), "dim|size|match");
    TU_STATUS(bsvi_estimator_iwae(e, s.model, s.q, 4, BSVI_GRAD_STL), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_estimator_iwae(e, s.model, s.q, 0, BSVI_GRAD_PATHWISE), BSVI_ERR_ZERO_SIZE);
    TU_STATUS(bsvi_estimator_elbo(e, s.model, s.q, BSVI_GRAD_DREG), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_estimator_elbo(e, m3, s.q, BSVI_GRAD_PATHWISE), BSVI_ERR_SIZE_MISMATCH);
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
    TU_STATUS(bsvi_estimator_get_target_log_weights(e, before.o.n - 1, buf),
              BSVI_ERR_SIZE_MISMATCH);
    TU_STATUS(bsvi_estimator_get_noise(e, before.o.n + 1, buf), BSVI_ERR_SIZE_MISMATCH);
    TU_UNTOUCHED(buf, 64);
    /* Still works; failed calls did not advance the counter. */
    TU_OK(bsvi_estimator_iwae(e, s.model, s.q, 4, BSVI_GRAD_PATHWISE));
    TU_OK(bsvi_estimator_iwae(fresh, s.model, s.q, 4, BSVI_GRAD_PATHWISE));
    {
        est_out a, b2;
        read_est(e, d, &a);
        read_est(fresh, d, &b2);
        est_rows_equal(&a, 0, &b2);
        free_est(&a);
        free_est(&b2);
    }
    snap_free(&before);
    bsvi_estimator_destroy(e);
    bsvi_estimator_destroy(fresh);

    /* ELBO with the analytic-KL form needs the standard normal prior. */
    e = make_est(d, 1);
    TU_STATUS(bsvi_estimator_elbo(e, hostprior, s.q, BSVI_GRAD_ANALYTIC_KL), BSVI_ERR_BAD_STATE);
    TU_MESSAGE_MENTIONS(bsvi_estimator_last_error(e), "prior|normal|analytic");
    assert_int_equal(bsvi_estimator_batch(e), 0);
    TU_OK(bsvi_estimator_elbo(e, s.model, s.q, BSVI_GRAD_ANALYTIC_KL));
    TU_OK(bsvi_estimator_elbo(e, hostprior, s.q, BSVI_GRAD_STL));
    bsvi_estimator_destroy(e);

    /* BSVI: a good compute with buffer weights, then bad calls. */
    bsvi_buffer_weights *w4 = make_pi(4, NULL), *w6 = make_pi(6, NULL);
    e = make_est(d, 1);
    TU_OK(bsvi_estimator_bsvi(e, t, w4));
    snap(e, d, &before);
    TU_STATUS(bsvi_estimator_bsvi(e, NULL, w4), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_estimator_bsvi(NULL, t, w4), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_estimator_bsvi(e, empty, w4), BSVI_ERR_BAD_STATE);
    TU_MESSAGE(bsvi_estimator_last_error(e));
    TU_STATUS(bsvi_estimator_bsvi(e, t5, w4), BSVI_ERR_SIZE_MISMATCH); /* pi has 4 */
    TU_MESSAGE(bsvi_estimator_last_error(e));
    TU_STATUS(bsvi_estimator_bsvi(e, t, w6), BSVI_ERR_SIZE_MISMATCH);
    TU_STATUS(bsvi_estimator_bsvi(e, tq3, NULL), BSVI_ERR_SIZE_MISMATCH); /* dim */
    TU_STATUS(bsvi_estimator_svi(e, empty), BSVI_ERR_BAD_STATE);
    TU_STATUS(bsvi_estimator_svi(e, tq3), BSVI_ERR_SIZE_MISMATCH);
    TU_STATUS(bsvi_estimator_svi(e, NULL), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_estimator_bsvi_sir(e, t5, w4, 2), BSVI_ERR_SIZE_MISMATCH);
    TU_STATUS(bsvi_estimator_bsvi_sir(e, empty, NULL, 2), BSVI_ERR_BAD_STATE);
    TU_STATUS(bsvi_estimator_bsvi_sir(e, t, NULL, 0), BSVI_ERR_ZERO_SIZE);
    snap_equal(e, d, &before);
    TU_OK(bsvi_estimator_bsvi(e, t, w4));
    TU_OK(bsvi_estimator_bsvi(e, t5, w6));
    TU_OK(bsvi_estimator_bsvi(e, t5, NULL));
    snap_free(&before);
    bsvi_estimator_destroy(e);

    /* GIWAE. */
    e = make_est(d, 1);
    double lj[6] = {-1, -2, -3, -4, -5, -6}, lq[6] = {-1.5, -1.5, -2, -2, -3, -3};
    bsvi_buffer_weights *w2 = make_pi(2, NULL);
    TU_OK(bsvi_estimator_giwae(e, 3, 2, lj, lq, w2));
    snap(e, d, &before);
    TU_STATUS(bsvi_estimator_giwae(NULL, 3, 2, lj, lq, w2), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_estimator_giwae(e, 3, 2, NULL, lq, w2), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_estimator_giwae(e, 3, 2, lj, NULL, w2), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_estimator_giwae(e, 0, 2, lj, lq, w2), BSVI_ERR_ZERO_SIZE);
    TU_STATUS(bsvi_estimator_giwae(e, 3, 0, lj, lq, w2), BSVI_ERR_ZERO_SIZE);
    TU_MESSAGE(bsvi_estimator_last_error(e));
    TU_STATUS(bsvi_estimator_giwae(e, 2, 3, lj, lq, w2), BSVI_ERR_SIZE_MISMATCH);
    double badj[6], badq[6];
    memcpy(badj, lj, sizeof badj);
    memcpy(badq, lq, sizeof badq);
    badj[4] = NAN;
    TU_STATUS(bsvi_estimator_giwae(e, 3, 2, badj, lq, w2), BSVI_ERR_BAD_VALUE);
    TU_MESSAGE_MENTIONS(bsvi_estimator_last_error(e), "nan");
    badq[1] = NAN;
    TU_STATUS(bsvi_estimator_giwae(e, 3, 2, lj, badq, w2), BSVI_ERR_BAD_VALUE);
    badq[1] = -INFINITY;
    TU_STATUS(bsvi_estimator_giwae(e, 3, 2, lj, badq, w2), BSVI_ERR_BAD_VALUE);
    TU_MESSAGE(bsvi_estimator_last_error(e));
    badj[4] = INFINITY;
    TU_STATUS(bsvi_estimator_giwae(e, 3, 2, badj, lq, w2), BSVI_ERR_BAD_VALUE);
    snap_equal(e, d, &before);
    /* every weight of data point 2 is -inf: under BSVI_POINTS_FAIL the batch fails ... */
    badj[4] = -INFINITY;
    badj[5] = -INFINITY;
    TU_OK(bsvi_estimator_set_point_policy(e, BSVI_POINTS_FAIL));
    TU_STATUS(bsvi_estimator_giwae(e, 3, 2, badj, lq, w2), BSVI_ERR_NUMERIC);
    TU_MESSAGE(bsvi_estimator_last_error(e));
    snap_equal(e, d, &before);
    /* ... and under BSVI_POINTS_REPORT (the default) that point's bound is -INFINITY, its
     * coefficients 0, and the others are those of the batch without it. */
    TU_OK(bsvi_estimator_set_point_policy(e, BSVI_POINTS_REPORT));
    TU_OK(bsvi_estimator_giwae(e, 3, 2, badj, lq, w2));
    assert_int_equal(bsvi_estimator_num_zero_points(e), 1);
    {
        est_out o, o2;
        read_est(e, d, &o);
        assert_true(o.bounds[2] == -INFINITY);
        assert_true(o.coef[4] == 0.0 && o.coef[5] == 0.0);
        bsvi_estimator *e2 = make_est(d, 1);
        TU_OK(bsvi_estimator_giwae(e2, 2, 2, lj, lq, w2));
        read_est(e2, d, &o2);
        TU_BITWISE(o.bounds, o2.bounds, 2);
        TU_BITWISE(o.coef, o2.coef, 4);
        free_est(&o);
        free_est(&o2);
        bsvi_estimator_destroy(e2);
    }
    /* -INFINITY in one term is legal: that term gets coefficient 0. */
    badj[5] = -6;
    TU_OK(bsvi_estimator_giwae(e, 3, 2, badj, lq, w2));
    assert_int_equal(bsvi_estimator_num_zero_points(e), 0);
    double coef[6];
    TU_OK(bsvi_estimator_get_targets(e, 6, NULL, NULL, NULL, coef));
    assert_true(coef[4] == 0.0);
    TU_NEAR(coef[5], 1.0, 1e-15);
    /* a difference that overflows */
    badj[0] = 1e308;
    badq[0] = -1e308;
    badq[1] = -1.5;
    TU_STATUS(bsvi_estimator_giwae(e, 3, 2, badj, badq, w2), BSVI_ERR_NUMERIC);
    snap_free(&before);
    bsvi_estimator_destroy(e);
    bsvi_buffer_weights_destroy(w2);
    bsvi_buffer_weights_destroy(w4);
    bsvi_buffer_weights_destroy(w6);

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

/* ---- zero-density data points ------------------------------------------------------ */

/* lg_likelihood, except that data point zero_b of the batch has zero density everywhere. */
typedef struct zlik {
    lg_model *lg;
    size_t zero_b;
} zlik;

static int zero_point_likelihood(size_t n, size_t dim, const double *z, const size_t *data_index,
                                 double *log_density, double *grad, void *user_data)
{
    const zlik *zl = (const zlik *)user_data;
    const int rc = lg_likelihood(n, dim, z, data_index, log_density, grad, zl->lg);
    for (size_t r = 0; r < n; ++r) {
        if (data_index[r] == zl->zero_b) {
            log_density[r] = -INFINITY;
            if (grad != NULL) {
                for (size_t j = 0; j < dim; ++j) {
                    grad[r * dim + j] = 0.0;
                }
            }
        }
    }
    return rc;
}

/* Zero-density fixture: B = 4 data points, point 2 of zero density; the good points as two
 * batches {0, 1} and {3} whose streams (id offsets 0 and 3) are those of the whole batch. */
typedef struct zfix {
    lg_model lg, v3;
    zlik zl;
    bsvi_model *mz, *m01, *m3;
    bsvi_proposal *q, *q01, *q3;
    double mean[12], ls[12];
    size_t B, d;
} zfix;

static void zfix_init(zfix *f)
{
    memset(f, 0, sizeof *f);
    f->B = 4;
    f->d = 3;
    assert_int_equal(lg_init(&f->lg, f->d, 5, f->B, 0.8, 0, 97), 0);
    f->v3 = lg_view(&f->lg, 3);
    f->zl.lg = &f->lg;
    f->zl.zero_b = 2;
    TU_OK(bsvi_model_create(f->d, &f->mz));
    TU_OK(bsvi_model_set_likelihood(f->mz, zero_point_likelihood, &f->zl));
    TU_OK(lg_make_model(&f->lg, &f->m01));
    TU_OK(lg_make_model(&f->v3, &f->m3));
    poor_params(f->B, f->d, f->mean, f->ls);
    TU_OK(lg_make_proposal(f->B, f->d, f->mean, f->ls, &f->q));
    TU_OK(lg_make_proposal(2, f->d, f->mean, f->ls, &f->q01));
    TU_OK(lg_make_proposal(1, f->d, f->mean + 3 * f->d, f->ls + 3 * f->d, &f->q3));
}

static void zfix_free(zfix *f)
{
    bsvi_proposal_destroy(f->q);
    bsvi_proposal_destroy(f->q01);
    bsvi_proposal_destroy(f->q3);
    bsvi_model_destroy(f->mz);
    bsvi_model_destroy(f->m01);
    bsvi_model_destroy(f->m3);
    lg_free(&f->lg);
}

/* The bounds a zero-density test runs: ELBO (STL), IWAE-5 (DReG), SVI-k, BSVI, BSVI-SIR-4. */
enum { ZK_ELBO, ZK_IWAE, ZK_SVI, ZK_BSVI, ZK_SIR, ZK_N };

static bsvi_status zcompute(bsvi_estimator *e, int which, const bsvi_model *m,
                            const bsvi_proposal *q, const bsvi_trajectory *t,
                            const bsvi_buffer_weights *w)
{
    switch (which) {
    case ZK_ELBO: return bsvi_estimator_elbo(e, m, q, BSVI_GRAD_STL);
    case ZK_IWAE: return bsvi_estimator_iwae(e, m, q, 5, BSVI_GRAD_DREG);
    case ZK_SVI: return bsvi_estimator_svi(e, t);
    case ZK_BSVI: return bsvi_estimator_bsvi(e, t, w);
    default: return bsvi_estimator_bsvi_sir(e, t, w, 4);
    }
}

/* Under BSVI_POINTS_REPORT a zero-density data point gets the bound -INFINITY, coefficients 0,
 * target log weights -INFINITY, a zero encoder gradient (ELBO, IWAE; trajectory bounds pass
 * the trajectory's on), and is counted; every other data point's results are bitwise those of
 * batches without it (same streams). Under BSVI_POINTS_FAIL the compute fails with
 * BSVI_ERR_NUMERIC and changes nothing. */
static void test_zero_density_points(void **state)
{
    (void)state;
    zfix f;
    zfix_init(&f);
    const size_t d = f.d, B = f.B, k = 3, K1 = k + 1;
    /* trajectories: the whole batch with the zero point, and the good points' batches */
    bsvi_svi *svi = NULL;
    bsvi_trajectory *tz = NULL, *t01 = NULL, *t3 = NULL;
    TU_OK(bsvi_svi_create(d, &svi));
    TU_OK(bsvi_svi_set_steps(svi, k));
    TU_OK(bsvi_svi_set_step_size(svi, 0.05));
    TU_OK(bsvi_trajectory_create(&tz));
    TU_OK(bsvi_trajectory_create(&t01));
    TU_OK(bsvi_trajectory_create(&t3));
    TU_OK(bsvi_svi_set_seed(svi, 31));
    TU_OK(bsvi_svi_run(svi, f.mz, f.q, tz));
    TU_OK(bsvi_svi_set_stream(svi, 0, 0));
    TU_OK(bsvi_svi_run(svi, f.m01, f.q01, t01));
    TU_OK(bsvi_svi_set_stream(svi, 0, 3));
    TU_OK(bsvi_svi_run(svi, f.m3, f.q3, t3));
    tu_traj trz, tr01, tr3;
    tu_traj_read(tz, &trz);
    tu_traj_read(t01, &tr01);
    tu_traj_read(t3, &tr3);
    /* the refinement of the other points does not see the zero point */
    tu_traj_assert_rows_equal(&trz, 0, &tr01);
    tu_traj_assert_rows_equal(&trz, 3, &tr3);
    for (size_t i = 0; i < K1; ++i) {
        assert_true(trz.lw[2 * K1 + i] == -INFINITY);
    }
    const double pi[4] = {0.1, 0.2, 0.3, 0.4};
    bsvi_buffer_weights *w = make_pi(K1, pi);

    for (int which = 0; which < ZK_N; ++which) {
        const int sampled = which == ZK_ELBO || which == ZK_IWAE;
        bsvi_estimator *e = make_est(d, 555), *e01 = make_est(d, 555), *e3 = make_est(d, 555);
        TU_OK(bsvi_estimator_set_stream(e3, 0, 3));
        TU_OK(zcompute(e, which, f.mz, f.q, tz, w));
        TU_OK(zcompute(e01, which, f.m01, f.q01, t01, w));
        TU_OK(zcompute(e3, which, f.m3, f.q3, t3, w));
        assert_int_equal(bsvi_estimator_num_zero_points(e), 1);
        assert_int_equal(bsvi_estimator_num_zero_points(e01), 0);
        bsvi_stats st;
        TU_OK(bsvi_estimator_get_stats(e, &st));
        assert_true(st.zero_points == 1);
        est_out o, o01, o3;
        read_est(e, d, &o);
        read_est(e01, d, &o01);
        read_est(e3, d, &o3);
        const size_t T = o.n / B;
        est_rows_equal(&o, 0, &o01);
        est_rows_equal(&o, 3, &o3);
        /* per-target log weights and noise of the good points: those of the batches too */
        double *lw = tu_alloc(o.n), *lw01 = tu_alloc(o01.n), *lw3 = tu_alloc(o3.n);
        TU_OK(bsvi_estimator_get_target_log_weights(e, o.n, lw));
        TU_OK(bsvi_estimator_get_target_log_weights(e01, o01.n, lw01));
        TU_OK(bsvi_estimator_get_target_log_weights(e3, o3.n, lw3));
        TU_BITWISE(lw, lw01, 2 * T);
        TU_BITWISE(lw + 3 * T, lw3, T);
        if (sampled) {
            double *ep = tu_alloc(o.n * d), *ep01 = tu_alloc(o01.n * d), *ep3 = tu_alloc(o3.n * d);
            TU_OK(bsvi_estimator_get_noise(e, o.n, ep));
            TU_OK(bsvi_estimator_get_noise(e01, o01.n, ep01));
            TU_OK(bsvi_estimator_get_noise(e3, o3.n, ep3));
            TU_BITWISE(ep, ep01, 2 * T * d);
            TU_BITWISE(ep + 3 * T * d, ep3, T * d);
            free(ep);
            free(ep01);
            free(ep3);
        }
        /* the zero point */
        assert_true(o.bounds[2] == -INFINITY);
        for (size_t t = 0; t < T; ++t) {
            const size_t at = 2 * T + t;
            assert_int_equal(o.idx[at], 2);
            assert_true(o.coef[at] == 0.0);
            assert_true(lw[at] == -INFINITY);
            for (size_t j = 0; j < d; ++j) {
                assert_true(isfinite(o.z[at * d + j])); /* its latents are still given */
            }
            if (which == ZK_SIR) {
                assert_int_equal(o.slot[at], 0);
            }
            if (!sampled) {
                TU_BITWISE(&o.z[at * d], &trz.z[(2 * K1 + o.slot[at]) * d], d);
            }
        }
        for (size_t j = 0; j < d; ++j) {
            if (sampled) {
                assert_true(o.gm[2 * d + j] == 0.0 && o.gs[2 * d + j] == 0.0);
            } else {
                TU_BITWISE(&o.gm[2 * d + j], &trz.gm[2 * d + j], 1);
                TU_BITWISE(&o.gs[2 * d + j], &trz.gs[2 * d + j], 1);
            }
        }
        /* the good points' bounds are finite, their coefficients sum to 1 */
        for (size_t b = 0; b < B; ++b) {
            if (b == 2) {
                continue;
            }
            assert_true(isfinite(o.bounds[b]));
            double sum = 0.0;
            for (size_t t = 0; t < T; ++t) {
                sum += o.coef[b * T + t];
            }
            TU_NEAR(sum, 1.0, 1e-12);
        }
        /* BSVI_POINTS_FAIL: refused, nothing changes (results, counter, counters) */
        est_state before;
        snap(e, d, &before);
        TU_OK(bsvi_estimator_set_point_policy(e, BSVI_POINTS_FAIL));
        TU_STATUS(zcompute(e, which, f.mz, f.q, tz, w), BSVI_ERR_NUMERIC);
        TU_MESSAGE_MENTIONS(bsvi_estimator_last_error(e), "data point 2|zero");
        snap_equal(e, d, &before);
        /* ... and the good batch still computes under it */
        TU_OK(bsvi_estimator_set_point_policy(e01, BSVI_POINTS_FAIL));
        TU_OK(bsvi_estimator_set_stream(e01, 0, 0));
        TU_OK(zcompute(e01, which, f.m01, f.q01, t01, w));
        {
            est_out again;
            read_est(e01, d, &again);
            est_rows_equal(&o01, 0, &again);
            free_est(&again);
        }
        snap_free(&before);
        free(lw);
        free(lw01);
        free(lw3);
        free_est(&o);
        free_est(&o01);
        free_est(&o3);
        bsvi_estimator_destroy(e);
        bsvi_estimator_destroy(e01);
        bsvi_estimator_destroy(e3);
    }
    /* SVI-k looks at the last slot only: a trajectory whose last weights alone are zero (the
     * likelihood has zero density from its (k+1)-th call, the one recording slot k, on). */
    {
        lg_faulty fl = {&f.lg, (unsigned long)k, 0, 0, LG_FAULT_NEG_INF};
        bsvi_model *mf = NULL;
        TU_OK(bsvi_model_create(d, &mf));
        TU_OK(bsvi_model_set_likelihood(mf, lg_faulty_likelihood, &fl));
        bsvi_trajectory *t = run_svi(mf, f.q01, d, k, 0.05, BSVI_GRAD_PATHWISE, 0, 3);
        double lw[2 * 4];
        TU_OK(bsvi_trajectory_get_log_weights(t, lw));
        for (size_t b = 0; b < 2; ++b) {
            assert_true(isfinite(lw[b * K1]) && lw[b * K1 + k] == -INFINITY);
        }
        bsvi_estimator *e = make_est(d, 0);
        TU_OK(bsvi_estimator_svi(e, t));
        assert_int_equal(bsvi_estimator_num_zero_points(e), 2);
        double bnd[2];
        TU_OK(bsvi_estimator_get_bounds(e, bnd, 2));
        assert_true(bnd[0] == -INFINITY && bnd[1] == -INFINITY);
        TU_OK(bsvi_estimator_bsvi(e, t, NULL)); /* BSVI: the other slots count */
        assert_int_equal(bsvi_estimator_num_zero_points(e), 0);
        TU_OK(bsvi_estimator_get_bounds(e, bnd, 2));
        assert_true(isfinite(bnd[0]) && isfinite(bnd[1]));
        TU_OK(bsvi_estimator_set_point_policy(e, BSVI_POINTS_FAIL));
        TU_STATUS(bsvi_estimator_svi(e, t), BSVI_ERR_NUMERIC);
        TU_OK(bsvi_estimator_bsvi(e, t, NULL));
        bsvi_estimator_destroy(e);
        bsvi_trajectory_destroy(t);
        bsvi_model_destroy(mf);
    }
    /* ELBO and IWAE also when every point has zero density: all -INFINITY, all counted */
    {
        zlik all = {&f.lg, 0};
        bsvi_model *m1 = NULL;
        bsvi_proposal *q1 = NULL;
        TU_OK(bsvi_model_create(d, &m1));
        TU_OK(bsvi_model_set_likelihood(m1, zero_point_likelihood, &all));
        TU_OK(lg_make_proposal(1, d, f.mean, f.ls, &q1));
        bsvi_estimator *e = make_est(d, 0);
        double bound;
        TU_OK(bsvi_estimator_iwae(e, m1, q1, 3, BSVI_GRAD_PATHWISE));
        TU_OK(bsvi_estimator_get_bounds(e, &bound, 1));
        assert_true(bound == -INFINITY);
        assert_int_equal(bsvi_estimator_num_zero_points(e), 1);
        TU_OK(bsvi_estimator_elbo(e, m1, q1, BSVI_GRAD_ANALYTIC_KL));
        TU_OK(bsvi_estimator_get_bounds(e, &bound, 1));
        assert_true(bound == -INFINITY);
        bsvi_estimator_destroy(e);
        bsvi_proposal_destroy(q1);
        bsvi_model_destroy(m1);
    }
    bsvi_buffer_weights_destroy(w);
    tu_traj_free(&trz);
    tu_traj_free(&tr01);
    tu_traj_free(&tr3);
    bsvi_trajectory_destroy(tz);
    bsvi_trajectory_destroy(t01);
    bsvi_trajectory_destroy(t3);
    bsvi_svi_destroy(svi);
    zfix_free(&f);
}

/* ---- result kind, stream, counters ------------------------------------------------------ */

static void test_result_kind(void **state)
{
    (void)state;
    setup s;
    setup_init(&s, 2, 2, 3, 0, 0, 101);
    bsvi_trajectory *t = run_svi(s.model, s.q, s.d, 2, 0.05, BSVI_GRAD_PATHWISE, 0, 1);
    bsvi_trajectory *tds = run_svi(s.model, s.q, s.d, 2, 0.05, BSVI_GRAD_PATHWISE, 1, 1);
    bsvi_estimator *e = make_est(s.d, 0);
    bsvi_bound kind = (bsvi_bound)42;
    TU_STATUS(bsvi_estimator_result_kind(e, &kind), BSVI_ERR_BAD_STATE);
    assert_int_equal(kind, 42);
    TU_STATUS(bsvi_estimator_result_kind(e, NULL), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_estimator_result_kind(NULL, &kind), BSVI_ERR_NULL_ARGUMENT);
    const double lj[4] = {-1, -2, -3, -4}, lq[4] = {-1, -1, -1, -1};
    for (int i = 0; i < 7; ++i) {
        bsvi_bound want = (bsvi_bound)i;
        switch (want) {
        case BSVI_BOUND_ELBO:
            TU_OK(bsvi_estimator_elbo(e, s.model, s.q, BSVI_GRAD_PATHWISE));
            break;
        case BSVI_BOUND_IWAE:
            TU_OK(bsvi_estimator_iwae(e, s.model, s.q, 2, BSVI_GRAD_PATHWISE));
            break;
        case BSVI_BOUND_SVI: TU_OK(bsvi_estimator_svi(e, t)); break;
        case BSVI_BOUND_BSVI: TU_OK(bsvi_estimator_bsvi(e, t, NULL)); break;
        case BSVI_BOUND_BSVI_DS: TU_OK(bsvi_estimator_bsvi(e, tds, NULL)); break;
        case BSVI_BOUND_BSVI_SIR: TU_OK(bsvi_estimator_bsvi_sir(e, tds, NULL, 2)); break;
        case BSVI_BOUND_GIWAE: TU_OK(bsvi_estimator_giwae(e, 2, 2, lj, lq, NULL)); break;
        }
        TU_OK(bsvi_estimator_result_kind(e, &kind));
        assert_int_equal(kind, want);
        /* a failed compute leaves the kind of the last result */
        TU_STATUS(bsvi_estimator_iwae(e, s.model, s.q, 0, BSVI_GRAD_PATHWISE), BSVI_ERR_ZERO_SIZE);
        TU_OK(bsvi_estimator_result_kind(e, &kind));
        assert_int_equal(kind, want);
    }
    bsvi_estimator_destroy(e);
    bsvi_trajectory_destroy(t);
    bsvi_trajectory_destroy(tds);
    setup_free(&s);
}

static void expect_stream(const bsvi_estimator *e, uint64_t seed, uint64_t counter, uint64_t id)
{
    uint64_t s = 1234, c = 1234, i = 1234;
    TU_OK(bsvi_estimator_get_stream(e, &s, &c, &i));
    if (s != seed || c != counter || i != id) {
        print_error("stream (%llu, %llu, %llu), expected (%llu, %llu, %llu)\n",
                    (unsigned long long)s, (unsigned long long)c, (unsigned long long)i,
                    (unsigned long long)seed, (unsigned long long)counter,
                    (unsigned long long)id);
        fail();
    }
}

/* The stream: seed, call counter, id offset; the counter advances on a successful compute
 * that draws (ELBO, IWAE, BSVI-SIR) and on nothing else (rng.h). */
static void test_stream(void **state)
{
    (void)state;
    setup s;
    setup_init(&s, 2, 2, 3, 0, 0, 103);
    bsvi_trajectory *t = run_svi(s.model, s.q, s.d, 2, 0.05, BSVI_GRAD_PATHWISE, 0, 1);
    bsvi_estimator *e = NULL;
    TU_OK(bsvi_estimator_create(s.d, &e));
    expect_stream(e, 0, 0, 0);
    TU_OK(bsvi_estimator_get_stream(e, NULL, NULL, NULL));
    uint64_t x = 9;
    TU_STATUS(bsvi_estimator_get_stream(NULL, &x, NULL, NULL), BSVI_ERR_NULL_ARGUMENT);
    assert_true(x == 9);
    TU_OK(bsvi_estimator_set_seed(e, 42));
    expect_stream(e, 42, 0, 0);
    TU_OK(bsvi_estimator_set_stream(e, 5, 7));
    expect_stream(e, 42, 5, 7);
    TU_OK(bsvi_estimator_elbo(e, s.model, s.q, BSVI_GRAD_PATHWISE));
    expect_stream(e, 42, 6, 7);
    TU_OK(bsvi_estimator_iwae(e, s.model, s.q, 3, BSVI_GRAD_PATHWISE));
    expect_stream(e, 42, 7, 7);
    TU_OK(bsvi_estimator_bsvi_sir(e, t, NULL, 3));
    expect_stream(e, 42, 8, 7);
    TU_OK(bsvi_estimator_svi(e, t));
    TU_OK(bsvi_estimator_bsvi(e, t, NULL));
    const double lj[4] = {-1, -2, -3, -4}, lq[4] = {-1, -1, -1, -1};
    TU_OK(bsvi_estimator_giwae(e, 2, 2, lj, lq, NULL));
    expect_stream(e, 42, 8, 7);
    TU_STATUS(bsvi_estimator_iwae(e, s.model, s.q, 3, BSVI_GRAD_STL), BSVI_ERR_BAD_VALUE);
    expect_stream(e, 42, 8, 7);
    /* set_seed resets the counter */
    TU_OK(bsvi_estimator_set_seed(e, 43));
    uint64_t c = 99;
    TU_OK(bsvi_estimator_get_stream(e, NULL, &c, NULL));
    assert_true(c == 0);
    /* the stream read back and set again reproduces a compute bitwise */
    uint64_t sd, ct, id;
    TU_OK(bsvi_estimator_get_stream(e, &sd, &ct, &id));
    TU_OK(bsvi_estimator_iwae(e, s.model, s.q, 3, BSVI_GRAD_PATHWISE));
    est_out a, b;
    read_est(e, s.d, &a);
    TU_OK(bsvi_estimator_set_seed(e, sd));
    TU_OK(bsvi_estimator_set_stream(e, ct, id));
    TU_OK(bsvi_estimator_iwae(e, s.model, s.q, 3, BSVI_GRAD_PATHWISE));
    read_est(e, s.d, &b);
    est_rows_equal(&a, 0, &b);
    free_est(&a);
    free_est(&b);
    bsvi_estimator_destroy(e);
    bsvi_trajectory_destroy(t);
    setup_free(&s);
}

/* The counters: calls, data points, likelihood and prior calls and rows (against the model's
 * own count of its callback calls), zero points; failed computes count nothing. */
static void test_stats(void **state)
{
    (void)state;
    setup s;
    setup_init(&s, 3, 2, 3, 0, 0, 107);
    const size_t B = s.B;
    bsvi_model *hp = NULL;
    TU_OK(lg_make_model(&s.lg, &hp));
    TU_OK(bsvi_model_set_prior(hp, lg_prior_std_normal, NULL));
    bsvi_trajectory *t = run_svi(s.model, s.q, s.d, 2, 0.05, BSVI_GRAD_PATHWISE, 0, 1);
    bsvi_estimator *e = make_est(s.d, 0);
    bsvi_stats st, zero;
    memset(&zero, 0, sizeof zero);
    TU_OK(bsvi_estimator_get_stats(e, &st));
    assert_memory_equal(&st, &zero, sizeof st);
    TU_STATUS(bsvi_estimator_get_stats(e, NULL), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_estimator_get_stats(NULL, &st), BSVI_ERR_NULL_ARGUMENT);

    unsigned long calls0 = s.lg.calls, rows0 = s.lg.rows;
    TU_OK(bsvi_estimator_elbo(e, s.model, s.q, BSVI_GRAD_PATHWISE));
    TU_OK(bsvi_estimator_get_stats(e, &st));
    assert_true(st.calls == 1 && st.data_points == B);
    assert_true(st.likelihood_calls == 1 && st.likelihood_rows == B);
    assert_true(st.likelihood_calls == s.lg.calls - calls0);
    assert_true(st.likelihood_rows == s.lg.rows - rows0);
    assert_true(st.prior_calls == 0 && st.prior_rows == 0); /* built-in prior */
    assert_true(st.svi_steps == 0 && st.zero_points == 0);
    TU_OK(bsvi_estimator_iwae(e, s.model, s.q, 5, BSVI_GRAD_DREG)); /* one call, B*5 rows */
    TU_OK(bsvi_estimator_get_stats(e, &st));
    assert_true(st.calls == 2 && st.data_points == 2 * B);
    assert_true(st.likelihood_calls == 2 && st.likelihood_rows == B + 5 * B);
    assert_true(st.likelihood_calls == s.lg.calls - calls0);
    assert_true(st.likelihood_rows == s.lg.rows - rows0);
    TU_OK(bsvi_estimator_iwae(e, hp, s.q, 4, BSVI_GRAD_PATHWISE)); /* host prior */
    TU_OK(bsvi_estimator_get_stats(e, &st));
    assert_true(st.likelihood_calls == 3 && st.likelihood_rows == 6 * B + 4 * B);
    assert_true(st.prior_calls == 1 && st.prior_rows == 4 * B);
    assert_true(st.likelihood_rows == s.lg.rows - rows0);
    /* trajectory and GIWAE bounds call no host code */
    TU_OK(bsvi_estimator_svi(e, t));
    TU_OK(bsvi_estimator_bsvi(e, t, NULL));
    TU_OK(bsvi_estimator_bsvi_sir(e, t, NULL, 2));
    const double lj[4] = {-1, -2, -3, -4}, lq[4] = {-1, -1, -1, -1};
    TU_OK(bsvi_estimator_giwae(e, 2, 2, lj, lq, NULL));
    TU_OK(bsvi_estimator_get_stats(e, &st));
    assert_true(st.calls == 7 && st.data_points == 6 * B + 2);
    assert_true(st.likelihood_calls == 3 && st.prior_calls == 1);
    /* failures count nothing */
    bsvi_stats before = st;
    const unsigned long calls1 = s.lg.calls;
    TU_STATUS(bsvi_estimator_iwae(e, s.model, s.q, 0, BSVI_GRAD_PATHWISE), BSVI_ERR_ZERO_SIZE);
    TU_STATUS(bsvi_estimator_elbo(e, hp, s.q, BSVI_GRAD_ANALYTIC_KL), BSVI_ERR_BAD_STATE);
    TU_STATUS(bsvi_estimator_giwae(e, 2, 2, lj, (const double[]){NAN, 0, 0, 0}, NULL),
              BSVI_ERR_BAD_VALUE);
    TU_OK(bsvi_estimator_get_stats(e, &st));
    assert_memory_equal(&st, &before, sizeof st);
    assert_true(s.lg.calls == calls1);
    /* zero points: a GIWAE point whose terms are all -INFINITY */
    TU_OK(bsvi_estimator_giwae(e, 2, 2, (const double[]){-1, -2, -INFINITY, -INFINITY}, lq, NULL));
    TU_OK(bsvi_estimator_get_stats(e, &st));
    assert_true(st.zero_points == 1 && st.calls == 8);
    /* reset: counters to 0, results kept */
    double bounds[2];
    TU_OK(bsvi_estimator_reset_stats(e));
    TU_OK(bsvi_estimator_get_stats(e, &st));
    assert_memory_equal(&st, &zero, sizeof st);
    TU_OK(bsvi_estimator_get_bounds(e, bounds, 2));
    assert_true(bounds[1] == -INFINITY);
    TU_STATUS(bsvi_estimator_reset_stats(NULL), BSVI_ERR_NULL_ARGUMENT);
    /* setters do not reset them */
    TU_OK(bsvi_estimator_elbo(e, s.model, s.q, BSVI_GRAD_PATHWISE));
    TU_OK(bsvi_estimator_set_seed(e, 3));
    TU_OK(bsvi_estimator_set_stream(e, 1, 1));
    TU_OK(bsvi_estimator_set_point_policy(e, BSVI_POINTS_FAIL));
    TU_OK(bsvi_estimator_get_stats(e, &st));
    assert_true(st.calls == 1 && st.likelihood_calls == 1);
    bsvi_estimator_destroy(e);
    bsvi_trajectory_destroy(t);
    bsvi_model_destroy(hp);
    setup_free(&s);
}

/* ---- names of the enums -------------------------------------------------------------------- */

static void test_names(void **state)
{
    (void)state;
    static const char *const bounds[7] = {"elbo",     "iwae",     "svi",  "bsvi",
                                          "bsvi-ds", "bsvi-sir", "giwae"};
    for (int i = 0; i < 7; ++i) {
        const char *nm = bsvi_bound_name((bsvi_bound)i);
        assert_non_null(nm);
        assert_string_equal(nm, bounds[i]);
        assert_ptr_equal(nm, bsvi_bound_name((bsvi_bound)i)); /* static */
        bsvi_bound out = (bsvi_bound)99;
        TU_OK(bsvi_bound_from_name(nm, &out));
        assert_int_equal(out, i);
    }
    assert_null(bsvi_bound_name((bsvi_bound)7));
    assert_null(bsvi_bound_name((bsvi_bound)-1));
    static const char *const rules[3] = {"gradient", "momentum", "adam"};
    for (int i = 0; i < 3; ++i) {
        const char *nm = bsvi_step_rule_name((bsvi_step_rule)i);
        assert_non_null(nm);
        assert_string_equal(nm, rules[i]);
        bsvi_step_rule out = (bsvi_step_rule)99;
        TU_OK(bsvi_step_rule_from_name(nm, &out));
        assert_int_equal(out, i);
    }
    assert_null(bsvi_step_rule_name((bsvi_step_rule)3));
    assert_null(bsvi_step_rule_name((bsvi_step_rule)-1));
    static const char *const forms[4] = {"pathwise", "stl", "analytic-kl", "dreg"};
    for (int i = 0; i < 4; ++i) {
        const char *nm = bsvi_grad_form_name((bsvi_grad_form)i);
        assert_non_null(nm);
        assert_string_equal(nm, forms[i]);
        bsvi_grad_form out = (bsvi_grad_form)99;
        TU_OK(bsvi_grad_form_from_name(nm, &out));
        assert_int_equal(out, i);
    }
    assert_null(bsvi_grad_form_name((bsvi_grad_form)4));
    assert_null(bsvi_grad_form_name((bsvi_grad_form)-1));
    static const char *const pols[2] = {"fail", "freeze"};
    for (int i = 0; i < 2; ++i) {
        const char *nm = bsvi_divergence_policy_name((bsvi_divergence_policy)i);
        assert_non_null(nm);
        assert_string_equal(nm, pols[i]);
        bsvi_divergence_policy out = (bsvi_divergence_policy)99;
        TU_OK(bsvi_divergence_policy_from_name(nm, &out));
        assert_int_equal(out, i);
    }
    assert_null(bsvi_divergence_policy_name((bsvi_divergence_policy)2));
    assert_null(bsvi_divergence_policy_name((bsvi_divergence_policy)-1));

    /* Unknown names (exact match only): BAD_VALUE, the output unchanged. */
    static const char *const unknown[] = {"", "ELBO", "elbo ", " elbo", "bsvi_ds", "bsvids",
                                          "iwae-k", "Adam", "sgd", "STL", "analytic_kl",
                                          "analytic", "Freeze", "pathwise\n", "giwae2"};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; ++i) {
        bsvi_bound b = (bsvi_bound)99;
        bsvi_step_rule r = (bsvi_step_rule)99;
        bsvi_grad_form g = (bsvi_grad_form)99;
        bsvi_divergence_policy p = (bsvi_divergence_policy)99;
        TU_STATUS(bsvi_bound_from_name(unknown[i], &b), BSVI_ERR_BAD_VALUE);
        TU_STATUS(bsvi_step_rule_from_name(unknown[i], &r), BSVI_ERR_BAD_VALUE);
        TU_STATUS(bsvi_grad_form_from_name(unknown[i], &g), BSVI_ERR_BAD_VALUE);
        TU_STATUS(bsvi_divergence_policy_from_name(unknown[i], &p), BSVI_ERR_BAD_VALUE);
        assert_int_equal(b, 99);
        assert_int_equal(r, 99);
        assert_int_equal(g, 99);
        assert_int_equal(p, 99);
    }
    /* names of one enum are not names of another */
    bsvi_bound b = (bsvi_bound)99;
    TU_STATUS(bsvi_bound_from_name("adam", &b), BSVI_ERR_BAD_VALUE);
    bsvi_grad_form g = (bsvi_grad_form)99;
    TU_STATUS(bsvi_grad_form_from_name("fail", &g), BSVI_ERR_BAD_VALUE);
    /* NULL */
    TU_STATUS(bsvi_bound_from_name(NULL, &b), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_bound_from_name("elbo", NULL), BSVI_ERR_NULL_ARGUMENT);
    bsvi_step_rule r;
    TU_STATUS(bsvi_step_rule_from_name(NULL, &r), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_step_rule_from_name("adam", NULL), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_grad_form_from_name(NULL, &g), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_grad_form_from_name("stl", NULL), BSVI_ERR_NULL_ARGUMENT);
    bsvi_divergence_policy p;
    TU_STATUS(bsvi_divergence_policy_from_name(NULL, &p), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_divergence_policy_from_name("fail", NULL), BSVI_ERR_NULL_ARGUMENT);
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
        cmocka_unit_test(test_zero_density_points),
        cmocka_unit_test(test_result_kind),
        cmocka_unit_test(test_stream),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
