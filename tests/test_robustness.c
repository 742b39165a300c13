/* test_robustness.c: numeric extremes. Log weights spanning -1e300..1e300, every weight
 * -INFINITY for a data point, one finite weight among -INFINITY ones, ties and denormals,
 * fed through GIWAE terms and through a host callback (IWAE and the trajectory kinds):
 * bounds, r, SIR draws and pi gradients are right, or the status says why, and no NaN
 * reaches an output reported as BSVI_OK. A data point of zero density gives a bound of
 * -INFINITY with the others intact (BSVI_POINTS_REPORT) or fails the batch
 * (BSVI_POINTS_FAIL). Extreme log-stds and step sizes under the freeze policy; a million pi
 * steps (bsvi_buffer_weights) stay finite; the generator's counter ranges. */
#include "testutil.h"
#include "lingauss.h"

#include <float.h>
#include <stdlib.h>

#define DENORM 4.9406564584124654e-324

static void assert_no_nan(const double *a, size_t n)
{
    for (size_t i = 0; i < n; ++i) {
        if (isnan(a[i])) {
            print_error("NaN at [%zu]\n", i);
            fail();
        }
    }
}

/* Coefficients of each of the B data points (T each) lie in [0, 1] and sum to 1. */
static void assert_simplex_rows(const double *c, size_t B, size_t T)
{
    for (size_t b = 0; b < B; ++b) {
        double s = 0.0;
        for (size_t t = 0; t < T; ++t) {
            assert_true(c[b * T + t] >= 0.0 && c[b * T + t] <= 1.0);
            s += c[b * T + t];
        }
        TU_NEAR(s, 1.0, 1e-12);
    }
}

/* ---- GIWAE terms ------------------------------------------------------------------ */

static void test_giwae_extremes(void **state)
{
    (void)state;
    enum { B = 5, N = 4 };
    const double NI = -INFINITY;
    /* log_joint; log_proposal is 0 except where noted, so log w = log_joint. */
    const double lj[B * N] = {
        -1e300, 1e300, 0.0, -5.0,     /* span: the 1e300 term takes everything */
        NI, NI, 3.5, NI,              /* one finite weight among -inf */
        1e300, 1e300, 1e300, 1e300,   /* four-way tie at a huge value */
        DENORM, -DENORM, 0.0, DENORM, /* denormals: a tie at 0 in effect */
        -1e300, -1e300, -1e300, NI,   /* all tiny: three-way tie */
    };
    const double lq[B * N] = {0};
    bsvi_estimator *e = NULL;
    TU_OK(bsvi_estimator_create(1, &e));
    TU_OK(bsvi_estimator_giwae(e, B, N, lj, lq, NULL));
    bsvi_bound kind = BSVI_BOUND_ELBO;
    TU_OK(bsvi_estimator_result_kind(e, &kind));
    assert_int_equal(kind, BSVI_BOUND_GIWAE);
    bsvi_buffer_weights *w = NULL;
    TU_OK(bsvi_buffer_weights_create(N, &w));
    TU_OK(bsvi_buffer_weights_accumulate_terms(w, B, N, lj, lq));
    double bounds[B], coef[B * N], g[N];
    uint64_t count = 0;
    TU_OK(bsvi_estimator_get_bounds(e, bounds, B));
    TU_OK(bsvi_estimator_get_targets(e, B * N, NULL, NULL, NULL, coef));
    TU_OK(bsvi_buffer_weights_get_gradient(w, g, &count, N));
    assert_true(count == B);
    for (size_t i = 0; i < N; ++i) {
        g[i] /= (double)count; /* the mean over data points */
    }
    assert_no_nan(bounds, B);
    assert_simplex_rows(coef, B, N);
    const double lpi = -log((double)N);
    /* span */
    assert_true(bounds[0] == 1e300 + lpi); /* = 1e300 in floating point */
    assert_true(coef[1] == 1.0 && coef[0] == 0.0 && coef[2] == 0.0 && coef[3] == 0.0);
    /* single finite weight */
    TU_NEAR(bounds[1], 3.5 + lpi, 1e-12);
    assert_true(coef[4 + 2] == 1.0 && coef[4 + 0] == 0.0);
    /* ties: r uniform */
    for (size_t i = 0; i < N; ++i) {
        TU_NEAR(coef[2 * N + i], 0.25, 1e-15);
        TU_NEAR(coef[3 * N + i], 0.25, 1e-15);
    }
    TU_NEAR(bounds[3], 0.0, 1e-15);
    for (size_t i = 0; i < 3; ++i) {
        TU_NEAR(coef[4 * N + i], 1.0 / 3.0, 1e-15);
    }
    assert_true(coef[4 * N + 3] == 0.0);
    /* pi gradient: mean over data points of r - pi; finite, sums to 0 */
    double gs = 0.0;
    for (size_t i = 0; i < N; ++i) {
        assert_true(isfinite(g[i]));
        gs += g[i];
    }
    TU_NEAR(gs, 0.0, 1e-12);
    double expect1 = 0.0; /* slot 1 */
    for (size_t b = 0; b < B; ++b) {
        expect1 += coef[b * N + 1] - 0.25;
    }
    TU_NEAR(g[1], expect1 / B, 1e-15);

    /* every weight -inf for one data point, under BSVI_POINTS_FAIL: NUMERIC naming it;
     * previous result kept */
    double lj2[2 * N] = {0.0, 1.0, 2.0, 3.0, NI, NI, NI, NI};
    TU_OK(bsvi_estimator_set_point_policy(e, BSVI_POINTS_FAIL));
    TU_STATUS(bsvi_estimator_giwae(e, 2, N, lj2, lq, NULL), BSVI_ERR_NUMERIC);
    TU_MESSAGE_MENTIONS(bsvi_estimator_last_error(e), "data point 1");
    double after[B];
    TU_OK(bsvi_estimator_get_bounds(e, after, B));
    TU_BITWISE(after, bounds, B);
    assert_int_equal(bsvi_estimator_batch(e), B);
    TU_STATUS(bsvi_estimator_set_point_policy(e, (bsvi_point_policy)2), BSVI_ERR_BAD_VALUE);
    /* ... and under BSVI_POINTS_REPORT (the default): the point's bound is -inf, its
     * coefficients 0, it is counted, and point 0 is as in a batch of point 0 alone. */
    bsvi_estimator *r = NULL, *one = NULL;
    TU_OK(bsvi_estimator_create(1, &r));
    TU_OK(bsvi_estimator_create(1, &one));
    TU_OK(bsvi_estimator_giwae(r, 2, N, lj2, lq, NULL));
    TU_OK(bsvi_estimator_giwae(one, 1, N, lj2, lq, NULL));
    assert_int_equal(bsvi_estimator_num_zero_points(r), 1);
    assert_int_equal(bsvi_estimator_num_zero_points(one), 0);
    double rb[2], ob[1], rc[2 * N], oc[N];
    TU_OK(bsvi_estimator_get_bounds(r, rb, 2));
    TU_OK(bsvi_estimator_get_bounds(one, ob, 1));
    TU_OK(bsvi_estimator_get_targets(r, 2 * N, NULL, NULL, NULL, rc));
    TU_OK(bsvi_estimator_get_targets(one, N, NULL, NULL, NULL, oc));
    assert_true(rb[1] == -INFINITY);
    TU_BITWISE(rb, ob, 1);
    TU_BITWISE(rc, oc, N);
    for (size_t i = 0; i < N; ++i) {
        assert_true(rc[N + i] == 0.0);
    }
    bsvi_stats st;
    TU_OK(bsvi_estimator_get_stats(r, &st));
    assert_true(st.calls == 1 && st.data_points == 2 && st.zero_points == 1);
    /* the pi gradient: the zero point adds nothing, to the sum or to the count */
    bsvi_buffer_weights *w2 = NULL, *w1 = NULL;
    TU_OK(bsvi_buffer_weights_create(N, &w2));
    TU_OK(bsvi_buffer_weights_create(N, &w1));
    TU_OK(bsvi_buffer_weights_accumulate_terms(w2, 2, N, lj2, lq));
    TU_OK(bsvi_buffer_weights_accumulate_terms(w1, 1, N, lj2, lq));
    double g2[N], g1[N];
    uint64_t c2 = 0, c1 = 0;
    TU_OK(bsvi_buffer_weights_get_gradient(w2, g2, &c2, N));
    TU_OK(bsvi_buffer_weights_get_gradient(w1, g1, &c1, N));
    assert_true(c2 == 1 && c1 == 1);
    TU_BITWISE(g2, g1, N);

    /* finite terms whose difference overflows to +inf: NUMERIC, not NaN (either policy) */
    const double big[N] = {DBL_MAX, 0.0, 0.0, 0.0};
    const double neg[N] = {-DBL_MAX, 0.0, 0.0, 0.0};
    TU_STATUS(bsvi_estimator_giwae(e, 1, N, big, neg, NULL), BSVI_ERR_NUMERIC);
    TU_MESSAGE_MENTIONS(bsvi_estimator_last_error(e), "overflow");
    TU_OK(bsvi_estimator_get_bounds(e, after, B));
    TU_BITWISE(after, bounds, B);
    TU_STATUS(bsvi_estimator_giwae(r, 1, N, big, neg, NULL), BSVI_ERR_NUMERIC);
    TU_STATUS(bsvi_buffer_weights_accumulate_terms(w1, 1, N, big, neg), BSVI_ERR_NUMERIC);
    /* a zero pi slot with the only finite weight: every weight of the buffer is zero */
    const double pi[N] = {0.5, 0.5, 0.0, 0.0};
    TU_OK(bsvi_buffer_weights_set_probs(w, pi, N));
    const double only2[N] = {NI, NI, 1.0, NI};
    TU_STATUS(bsvi_estimator_giwae(e, 1, N, only2, lq, w), BSVI_ERR_NUMERIC);
    TU_OK(bsvi_estimator_giwae(r, 1, N, only2, lq, w));
    TU_OK(bsvi_estimator_get_bounds(r, rb, 1));
    assert_true(rb[0] == -INFINITY);
    assert_int_equal(bsvi_estimator_num_zero_points(r), 1);
    /* without the zero slot the same terms have a finite bound */
    TU_OK(bsvi_estimator_giwae(r, 1, N, only2, lq, NULL));
    TU_OK(bsvi_estimator_get_bounds(r, rb, 1));
    TU_NEAR(rb[0], 1.0 + lpi, 1e-12);
    assert_int_equal(bsvi_estimator_num_zero_points(r), 0);
    bsvi_buffer_weights_destroy(w);
    bsvi_buffer_weights_destroy(w1);
    bsvi_buffer_weights_destroy(w2);
    bsvi_estimator_destroy(one);
    bsvi_estimator_destroy(r);
    bsvi_estimator_destroy(e);
}

/* ---- a callback that returns prescribed log densities --------------------------------- */

typedef struct table_lik {
    const double *val; /* IWAE: val[row]; SVI: val[b * (k+1) + call] */
    size_t K1;         /* SVI: k+1 (0: IWAE layout) */
    double grad;       /* every gradient entry */
    unsigned long calls;
} table_lik;

static int table_likelihood(size_t n, size_t dim, const double *z, const size_t *data_index,
                            double *log_density, double *grad, void *user_data)
{
    table_lik *t = user_data;
    (void)z;
    for (size_t r = 0; r < n; ++r) {
        log_density[r] = t->K1 ? t->val[data_index[r] * t->K1 + t->calls] : t->val[r];
        if (grad != NULL) {
            for (size_t j = 0; j < dim; ++j) {
                grad[r * dim + j] = t->grad;
            }
        }
    }
    t->calls++;
    return 0;
}

static void test_iwae_callback_extremes(void **state)
{
    (void)state;
    enum { B = 4, K = 4, D = 1 };
    const double NI = -INFINITY;
    /* Log likelihoods; the standard-normal prior and log q add O(1), absorbed at 1e300. */
    const double val[B * K] = {
        -1e300, 1e300, 0.0, -5.0, /* span */
        NI, NI, 2.0, NI,          /* one finite */
        1e300, 1e300, 1e300, 1e300, /* ties at a huge value (a bug before 0.1.0: coefficients 1 each) */
        DENORM, DENORM, DENORM, DENORM,
    };
    table_lik t = {val, 0, 0.0, 0};
    bsvi_model *m = NULL;
    TU_OK(bsvi_model_create(D, &m));
    TU_OK(bsvi_model_set_likelihood(m, table_likelihood, &t));
    bsvi_proposal *q = NULL;
    TU_OK(bsvi_proposal_create(B, D, &q));
    bsvi_estimator *e = NULL;
    TU_OK(bsvi_estimator_create(D, &e));
    const bsvi_grad_form forms[2] = {BSVI_GRAD_PATHWISE, BSVI_GRAD_DREG};
    for (size_t f = 0; f < 2; ++f) {
        TU_OK(bsvi_estimator_iwae(e, m, q, K, forms[f]));
        double bounds[B], coef[B * K], gm[B * D], gs[B * D];
        TU_OK(bsvi_estimator_get_bounds(e, bounds, B));
        TU_OK(bsvi_estimator_get_targets(e, B * K, NULL, NULL, NULL, coef));
        TU_OK(bsvi_estimator_get_encoder_grad(e, B, gm, gs));
        assert_no_nan(bounds, B);
        assert_simplex_rows(coef, B, K);
        for (size_t i = 0; i < B * D; ++i) {
            assert_true(isfinite(gm[i]) && isfinite(gs[i]));
        }
        assert_true(bounds[0] == 1e300 && coef[1] == 1.0);
        assert_true(coef[K + 2] == 1.0);
        assert_true(isfinite(bounds[1]));
        for (size_t s = 0; s < K; ++s) {
            TU_NEAR(coef[2 * K + s], 0.25, 1e-15);
        }
        assert_true(bounds[2] == 1e300);
        assert_true(isfinite(bounds[3]));
    }
    /* STL is refused for IWAE (biased): BAD_VALUE, results kept */
    double before[B], after[B];
    TU_OK(bsvi_estimator_get_bounds(e, before, B));
    TU_STATUS(bsvi_estimator_iwae(e, m, q, K, BSVI_GRAD_STL), BSVI_ERR_BAD_VALUE);
    TU_MESSAGE(bsvi_estimator_last_error(e));
    TU_OK(bsvi_estimator_get_bounds(e, after, B));
    TU_BITWISE(after, before, B);
    /* every sample -inf for one data point: under BSVI_POINTS_FAIL NUMERIC, results kept */
    double val2[B * K];
    memcpy(val2, val, sizeof val2);
    val2[0] = val2[1] = val2[2] = val2[3] = NI;
    t.val = val2;
    TU_OK(bsvi_estimator_set_point_policy(e, BSVI_POINTS_FAIL));
    TU_STATUS(bsvi_estimator_iwae(e, m, q, K, BSVI_GRAD_PATHWISE), BSVI_ERR_NUMERIC);
    TU_MESSAGE_MENTIONS(bsvi_estimator_last_error(e), "data point 0");
    TU_OK(bsvi_estimator_get_bounds(e, after, B));
    TU_BITWISE(after, before, B);
    /* ... under BSVI_POINTS_REPORT: bound -inf, coefficients and encoder gradient 0 for that
     * point; the other three bitwise as in a batch without it (same stream, ids 1..3). The
     * failed compute did not advance the counter: this one runs at counter 2. */
    TU_OK(bsvi_estimator_set_point_policy(e, BSVI_POINTS_REPORT));
    TU_OK(bsvi_estimator_iwae(e, m, q, K, BSVI_GRAD_PATHWISE));
    assert_int_equal(bsvi_estimator_num_zero_points(e), 1);
    {
        double bd[B], cf[B * K], gm[B * D], gs[B * D], zz[B * K * D];
        TU_OK(bsvi_estimator_get_bounds(e, bd, B));
        TU_OK(bsvi_estimator_get_targets(e, B * K, NULL, NULL, zz, cf));
        TU_OK(bsvi_estimator_get_encoder_grad(e, B, gm, gs));
        assert_true(bd[0] == -INFINITY);
        for (size_t s = 0; s < K; ++s) {
            assert_true(cf[s] == 0.0);
            assert_true(isfinite(zz[s * D])); /* the latents are still given */
        }
        for (size_t j = 0; j < D; ++j) {
            assert_true(gm[j] == 0.0 && gs[j] == 0.0);
        }
        bsvi_estimator *e3 = NULL;
        bsvi_proposal *q3 = NULL;
        TU_OK(bsvi_estimator_create(D, &e3));
        TU_OK(bsvi_estimator_set_stream(e3, 2, 1));
        TU_OK(bsvi_proposal_create(B - 1, D, &q3));
        t.val = val2 + K; /* rows of data points 1..3 */
        TU_OK(bsvi_estimator_iwae(e3, m, q3, K, BSVI_GRAD_PATHWISE));
        assert_int_equal(bsvi_estimator_num_zero_points(e3), 0);
        double b3[B - 1], c3[(B - 1) * K], gm3[(B - 1) * D], gs3[(B - 1) * D],
            z3[(B - 1) * K * D];
        TU_OK(bsvi_estimator_get_bounds(e3, b3, B - 1));
        TU_OK(bsvi_estimator_get_targets(e3, (B - 1) * K, NULL, NULL, z3, c3));
        TU_OK(bsvi_estimator_get_encoder_grad(e3, B - 1, gm3, gs3));
        TU_BITWISE(bd + 1, b3, B - 1);
        TU_BITWISE(cf + K, c3, (B - 1) * K);
        TU_BITWISE(zz + K * D, z3, (B - 1) * K * D);
        TU_BITWISE(gm + D, gm3, (B - 1) * D);
        TU_BITWISE(gs + D, gs3, (B - 1) * D);
        bsvi_stats st;
        TU_OK(bsvi_estimator_get_stats(e, &st));
        assert_true(st.calls == 3 && st.data_points == 3 * B && st.zero_points == 1);
        assert_true(st.likelihood_calls == 3 && st.likelihood_rows == 3 * B * K);
        uint64_t counter = 0;
        TU_OK(bsvi_estimator_get_stream(e, NULL, &counter, NULL));
        assert_true(counter == 3);
        bsvi_proposal_destroy(q3);
        bsvi_estimator_destroy(e3);
    }
    TU_OK(bsvi_estimator_get_bounds(e, before, B));
    /* a huge gradient with a huge sigma overflows the encoder gradient: NUMERIC, not NaN */
    t.val = val;
    t.grad = 1e300;
    double mean[B * D] = {0}, ls[B * D] = {BSVI_MAX_LOG_STD, 0, 0, 0};
    TU_OK(bsvi_proposal_set_params(q, mean, ls));
    bsvi_status st = bsvi_estimator_iwae(e, m, q, K, BSVI_GRAD_PATHWISE);
    if (st == BSVI_OK) {
        double gm[B * D], gs[B * D];
        TU_OK(bsvi_estimator_get_encoder_grad(e, B, gm, gs));
        assert_no_nan(gm, B * D);
        assert_no_nan(gs, B * D);
    } else {
        TU_STATUS(st, BSVI_ERR_NUMERIC);
        TU_MESSAGE_MENTIONS(bsvi_estimator_last_error(e), "encoder gradient");
        TU_OK(bsvi_estimator_get_bounds(e, after, B));
        TU_BITWISE(after, before, B);
    }
    /* A host prior that overflows the joint (1e308 + 1e308): CALLBACK_NAN, not +inf. */
    const double huge[B * K] = {1e308, 1e308, 1e308, 1e308, 0, 0, 0, 0,
                                0,     0,     0,     0,     0, 0, 0, 0};
    table_lik tp = {huge, 0, 0.0, 0};
    t.val = huge;
    t.grad = 0.0;
    TU_OK(bsvi_model_set_prior(m, table_likelihood, &tp));
    ls[0] = 0.0;
    TU_OK(bsvi_proposal_set_params(q, mean, ls));
    TU_STATUS(bsvi_estimator_iwae(e, m, q, K, BSVI_GRAD_PATHWISE), BSVI_ERR_CALLBACK_NAN);
    TU_MESSAGE_MENTIONS(bsvi_estimator_last_error(e), "overflow");
    bsvi_evaluator *ev = NULL;
    TU_OK(bsvi_evaluator_create(D, &ev));
    double o[B];
    tu_fill(o, B, TU_SENTINEL);
    tp.calls = t.calls = 0;
    TU_STATUS(bsvi_evaluator_iwae(ev, m, q, K, o), BSVI_ERR_CALLBACK_NAN);
    TU_UNTOUCHED(o, B);
    bsvi_evaluator_destroy(ev);
    bsvi_estimator_destroy(e);
    bsvi_proposal_destroy(q);
    bsvi_model_destroy(m);
}

/* Trajectory kinds over a buffer whose log weights are prescribed per step. */
static void test_trajectory_extremes(void **state)
{
    (void)state;
    enum { B = 4, k = 3, K1 = k + 1, D = 2, M = 64 };
    const double NI = -INFINITY;
    const double val[B * K1] = {
        -1e300, 1e300, 0.0, -5.0, NI, NI, 2.0, NI, 1e300, 1e300, 1e300, 1e300,
        DENORM, -DENORM, DENORM, 0.0,
    };
    table_lik t = {val, K1, 0.0, 0};
    bsvi_model *m = NULL;
    TU_OK(bsvi_model_create(D, &m));
    TU_OK(bsvi_model_set_likelihood(m, table_likelihood, &t));
    bsvi_proposal *q = NULL;
    TU_OK(bsvi_proposal_create(B, D, &q));
    bsvi_svi *svi = NULL;
    TU_OK(bsvi_svi_create(D, &svi));
    TU_OK(bsvi_svi_set_steps(svi, k));
    bsvi_trajectory *tr = NULL;
    TU_OK(bsvi_trajectory_create(&tr));
    TU_OK(bsvi_svi_run(svi, m, q, tr));
    double lw[B * K1];
    TU_OK(bsvi_trajectory_get_log_weights(tr, lw));
    assert_no_nan(lw, B * K1);
    assert_true(lw[1] == 1e300 && lw[0] == -1e300 && lw[4] == NI);

    const bsvi_bound kinds[3] = {BSVI_BOUND_BSVI, BSVI_BOUND_BSVI_SIR, BSVI_BOUND_SVI};
    for (size_t kk = 0; kk < 3; ++kk) {
        bsvi_estimator *e = NULL;
        TU_OK(bsvi_estimator_create(D, &e));
        if (kinds[kk] == BSVI_BOUND_SVI) {
            /* data point 1's last weight is -inf: SVI-k has no bound for it. Under
             * BSVI_POINTS_FAIL that fails the batch ... */
            TU_OK(bsvi_estimator_set_point_policy(e, BSVI_POINTS_FAIL));
            TU_STATUS(bsvi_estimator_svi(e, tr), BSVI_ERR_NUMERIC);
            TU_MESSAGE_MENTIONS(bsvi_estimator_last_error(e), "data point 1");
            assert_int_equal(bsvi_estimator_batch(e), 0);
            /* ... under BSVI_POINTS_REPORT its bound is -inf, coefficient 0, and the others
             * are their last weights, bitwise */
            TU_OK(bsvi_estimator_set_point_policy(e, BSVI_POINTS_REPORT));
            TU_OK(bsvi_estimator_svi(e, tr));
            double bounds[B], coef[B];
            size_t slot[B];
            TU_OK(bsvi_estimator_get_bounds(e, bounds, B));
            TU_OK(bsvi_estimator_get_targets(e, B, NULL, slot, NULL, coef));
            assert_int_equal(bsvi_estimator_num_zero_points(e), 1);
            assert_true(bounds[1] == -INFINITY && coef[1] == 0.0);
            for (size_t b = 0; b < B; ++b) {
                assert_int_equal(slot[b], k);
                if (b != 1) {
                    TU_BITWISE(&bounds[b], &lw[b * K1 + k], 1);
                    assert_true(coef[b] == 1.0);
                }
            }
            bsvi_estimator_destroy(e);
            continue;
        }
        bsvi_buffer_weights *w = NULL;
        TU_OK(bsvi_buffer_weights_create(K1, &w));
        if (kinds[kk] == BSVI_BOUND_BSVI_SIR) {
            TU_OK(bsvi_estimator_bsvi_sir(e, tr, w, M));
        } else {
            TU_OK(bsvi_estimator_bsvi(e, tr, w));
        }
        TU_OK(bsvi_buffer_weights_accumulate(w, tr));
        const size_t T = bsvi_estimator_num_targets(e) / B;
        double bounds[B], coef[B * M], g[K1];
        size_t slot[B * M];
        uint64_t count = 0;
        TU_OK(bsvi_estimator_get_bounds(e, bounds, B));
        TU_OK(bsvi_estimator_get_targets(e, B * T, NULL, slot, NULL, coef));
        TU_OK(bsvi_buffer_weights_get_gradient(w, g, &count, K1));
        assert_true(count == B); /* every point has a non-zero weight */
        assert_int_equal(bsvi_estimator_num_zero_points(e), 0);
        assert_no_nan(bounds, B);
        assert_no_nan(g, K1);
        assert_simplex_rows(coef, B, T);
        assert_true(bounds[0] == 1e300 && bounds[2] == 1e300);
        TU_NEAR(bounds[1], lw[6] - log((double)K1), 1e-12);
        if (kinds[kk] == BSVI_BOUND_BSVI) {
            assert_true(coef[1] == 1.0 && coef[K1 + 2] == 1.0);
            for (size_t i = 0; i < K1; ++i) {
                TU_NEAR(coef[2 * K1 + i], 0.25, 1e-15);
            }
        } else {
            /* SIR draws: only slots with positive r; the tie spreads over every slot */
            size_t seen[K1] = {0};
            for (size_t j = 0; j < M; ++j) {
                assert_int_equal(slot[j], 1);
                assert_int_equal(slot[M + j], 2);
                assert_true(slot[2 * M + j] < K1);
                seen[slot[2 * M + j]]++;
            }
            for (size_t i = 0; i < K1; ++i) {
                assert_true(seen[i] > 0); /* 64 draws from a uniform over 4: all seen */
            }
        }
        double gs = 0.0;
        for (size_t i = 0; i < K1; ++i) {
            gs += g[i];
        }
        TU_NEAR(gs, 0.0, 1e-12);
        bsvi_buffer_weights_destroy(w);
        bsvi_estimator_destroy(e);
    }
    /* health means: no NaN; data point 1 (log w_0 = log w_k = -inf) is left out of SVI-0 and
     * SVI-k and counted; every point has a finite BSVI-k */
    bsvi_health h;
    TU_OK(bsvi_trajectory_health(tr, NULL, &h));
    assert_true(!(isnan(h.svi0) || isnan(h.svik) || isnan(h.bsvik)));
    assert_int_equal(h.zero_svi0, 1);
    assert_int_equal(h.zero_svik, 1);
    assert_int_equal(h.zero_bsvik, 0);
    bsvi_trajectory_destroy(tr);
    bsvi_svi_destroy(svi);
    bsvi_proposal_destroy(q);
    bsvi_model_destroy(m);
}

/* ---- extreme log-stds and step sizes ------------------------------------------------ */

static void test_extreme_log_std_and_steps(void **state)
{
    (void)state;
    enum { B = 4, D = 2, k = 5 };
    lg_model lg;
    assert_int_equal(lg_init(&lg, D, 3, B, 0.8, 0, 77), 0);
    bsvi_model *m = NULL;
    TU_OK(lg_make_model(&lg, &m));
    const double mean[B * D] = {0.1, -0.2, 0.3, 0.0, -0.1, 0.2, 0.0, 0.05};
    const double ls_ext[B * D] = {0.0, 0.1, BSVI_MAX_LOG_STD, BSVI_MAX_LOG_STD,
                                  BSVI_MIN_LOG_STD, BSVI_MIN_LOG_STD, -0.2, 0.0};
    const double ls_ok[B * D] = {0.0, 0.1, 0.0, 0.0, BSVI_MIN_LOG_STD, BSVI_MIN_LOG_STD, -0.2, 0.0};
    bsvi_proposal *qe = NULL, *qo = NULL;
    TU_OK(lg_make_proposal(B, D, mean, ls_ext, &qe));
    TU_OK(lg_make_proposal(B, D, mean, ls_ok, &qo));
    bsvi_svi *svi = NULL;
    TU_OK(bsvi_svi_create(D, &svi));
    TU_OK(bsvi_svi_set_steps(svi, k));
    TU_OK(bsvi_svi_set_step_size(svi, 1e-3));
    bsvi_trajectory *te = NULL, *to = NULL;
    TU_OK(bsvi_trajectory_create(&te));
    TU_OK(bsvi_trajectory_create(&to));

    /* FAIL policy: NUMERIC naming data point 1, the trajectory stays empty */
    TU_STATUS(bsvi_svi_run(svi, m, qe, te), BSVI_ERR_NUMERIC);
    TU_MESSAGE_MENTIONS(bsvi_svi_last_error(svi), "data point 1");
    assert_int_equal(bsvi_trajectory_batch(te), 0);

    /* FREEZE: point 1 stops at step 0, the others keep their results bitwise */
    TU_OK(bsvi_svi_set_divergence_policy(svi, BSVI_DIVERGENCE_FREEZE));
    TU_OK(bsvi_svi_set_seed(svi, 3));
    TU_OK(bsvi_svi_run(svi, m, qe, te));
    TU_OK(bsvi_svi_set_seed(svi, 3));
    TU_OK(bsvi_svi_run(svi, m, qo, to));
    size_t taken[B];
    TU_OK(bsvi_trajectory_get_steps_taken(te, taken));
    assert_int_equal(taken[1], 0);
    assert_int_equal(taken[0], k);
    assert_int_equal(taken[2], k);
    assert_int_equal(taken[3], k);
    assert_int_equal(bsvi_trajectory_num_diverged(te), 1);
    tu_traj a, b;
    tu_traj_read(te, &a);
    tu_traj_read(to, &b);
    assert_no_nan(a.lw, B * (k + 1));
    for (size_t i = 0; i < B * (k + 1) * D; ++i) {
        assert_true(isfinite(a.z[i]) && isfinite(a.mean[i]));
        assert_true(a.ls[i] >= BSVI_MIN_LOG_STD && a.ls[i] <= BSVI_MAX_LOG_STD);
    }
    const size_t sc = k + 1, vec = (k + 1) * D;
    for (size_t p = 0; p < B; ++p) {
        if (p == 1) {
            continue;
        }
        TU_BITWISE(a.lw + p * sc, b.lw + p * sc, sc);
        TU_BITWISE(a.z + p * vec, b.z + p * vec, vec);
        TU_BITWISE(a.mean + p * vec, b.mean + p * vec, vec);
        TU_BITWISE(a.ls + p * vec, b.ls + p * vec, vec);
    }
    tu_traj_free(&a);
    tu_traj_free(&b);

    /* Huge step sizes (finite, so accepted), every rule, clipping or not: each point either
     * refines or freezes; nothing non-finite is recorded. */
    const double etas[3] = {1e10, 1e300, DBL_MAX};
    const bsvi_step_rule rules[3] = {BSVI_STEP_GRADIENT, BSVI_STEP_MOMENTUM, BSVI_STEP_ADAM};
    for (size_t ei = 0; ei < 3; ++ei) {
        for (size_t ri = 0; ri < 3; ++ri) {
            for (int clip = 0; clip < 2; ++clip) {
                TU_OK(bsvi_svi_set_step_size(svi, etas[ei]));
                TU_OK(bsvi_svi_set_step_rule(svi, rules[ri]));
                TU_OK(bsvi_svi_set_clip_norm(svi, clip ? 1.0 : 0.0));
                TU_OK(bsvi_svi_run(svi, m, qe, te));
                tu_traj_read(te, &a);
                for (size_t i = 0; i < B * (k + 1); ++i) {
                    assert_true(!(isnan(a.lw[i])));
                    assert_true(a.lw[i] < INFINITY);
                }
                for (size_t i = 0; i < B * (k + 1) * D; ++i) {
                    assert_true(isfinite(a.mean[i]));
                    assert_true(a.ls[i] >= BSVI_MIN_LOG_STD && a.ls[i] <= BSVI_MAX_LOG_STD);
                }
                assert_no_nan(a.gm, B * D);
                assert_no_nan(a.gs, B * D);
                assert_true(bsvi_trajectory_num_diverged(te) >= 1);
                tu_traj_free(&a);
                /* the bounds over a frozen buffer are fine */
                bsvi_estimator *e = NULL;
                TU_OK(bsvi_estimator_create(D, &e));
                TU_OK(bsvi_estimator_bsvi(e, te, NULL));
                double bd[B];
                TU_OK(bsvi_estimator_get_bounds(e, bd, B));
                assert_no_nan(bd, B);
                bsvi_estimator_destroy(e);
            }
        }
    }
    /* Invalid step sizes are refused and leave the handle as it was. */
    const double bad[5] = {0.0, -0.0, -1.0, NAN, INFINITY};
    TU_OK(bsvi_svi_set_step_size(svi, 0.5));
    for (size_t i = 0; i < 5; ++i) {
        TU_STATUS(bsvi_svi_set_step_size(svi, bad[i]), BSVI_ERR_BAD_VALUE);
        TU_MESSAGE_MENTIONS(bsvi_svi_last_error(svi), "eta");
        assert_true(bsvi_svi_step_size(svi) == 0.5);
    }
    bsvi_trajectory_destroy(te);
    bsvi_trajectory_destroy(to);
    bsvi_svi_destroy(svi);
    bsvi_proposal_destroy(qe);
    bsvi_proposal_destroy(qo);
    bsvi_model_destroy(m);
    lg_free(&lg);
}

/* A huge host gradient times sigma = e^30 overflows SVI's step-0 direction, which is the
 * encoder gradient: the run reports NUMERIC (under either policy) rather than returning an
 * infinite or NaN encoder gradient with BSVI_OK. */
static void test_encoder_gradient_overflow(void **state)
{
    (void)state;
    enum { B = 2, D = 1, K1 = 3 };
    const double val[B * K1] = {0, 0, 0, 0, 0, 0};
    table_lik t = {val, K1, 1e300, 0};
    bsvi_model *m = NULL;
    TU_OK(bsvi_model_create(D, &m));
    TU_OK(bsvi_model_set_likelihood(m, table_likelihood, &t));
    const double mean[B] = {0, 0}, ls[B] = {0.0, BSVI_MAX_LOG_STD};
    bsvi_proposal *q = NULL;
    TU_OK(lg_make_proposal(B, D, mean, ls, &q));
    bsvi_svi *svi = NULL;
    TU_OK(bsvi_svi_create(D, &svi));
    TU_OK(bsvi_svi_set_steps(svi, K1 - 1));
    TU_OK(bsvi_svi_set_samples_per_step(svi, 2));
    bsvi_trajectory *tr = NULL;
    TU_OK(bsvi_trajectory_create(&tr));
    for (int pol = 0; pol < 2; ++pol) {
        TU_OK(bsvi_svi_set_divergence_policy(svi, (bsvi_divergence_policy)pol));
        t.calls = 0;
        TU_STATUS(bsvi_svi_run(svi, m, q, tr), BSVI_ERR_NUMERIC);
        TU_MESSAGE_MENTIONS(bsvi_svi_last_error(svi), "encoder gradient");
        TU_MESSAGE_MENTIONS(bsvi_svi_last_error(svi), "data point 1");
        assert_int_equal(bsvi_trajectory_batch(tr), 0);
    }
    bsvi_trajectory_destroy(tr);
    bsvi_svi_destroy(svi);
    bsvi_proposal_destroy(q);
    bsvi_model_destroy(m);
}

/* ---- a million pi steps ------------------------------------------------------------------ */

static void test_pi_long_run(void **state)
{
    (void)state;
    enum { N = 4 };
    bsvi_estimator *e = NULL;
    bsvi_buffer_weights *w = NULL;
    TU_OK(bsvi_estimator_create(1, &e));
    TU_OK(bsvi_buffer_weights_create(N, &w));
    TU_OK(bsvi_buffer_weights_set_adam(w, 0.05, 0.9, 0.999));
    /* Slot 3 dominates; slot 1 is -inf (r = 0): its logit only ever decreases. */
    const double lj[N] = {0.0, -INFINITY, 1.0, 3.0}, lq[N] = {0, 0, 0, 0};
    const size_t steps = 1000000;
    double pi[N];
    for (size_t s = 0; s < steps; ++s) {
        /* every step is a real Adam step on a freshly accumulated gradient */
        if (bsvi_buffer_weights_accumulate_terms(w, 1, N, lj, lq) != BSVI_OK) {
            fail_msg("accumulate_terms failed at step %zu", s);
        }
        if (bsvi_buffer_weights_step(w) != BSVI_OK) {
            fail_msg("step failed at step %zu: %s", s, bsvi_buffer_weights_last_error(w));
        }
    }
    uint64_t adam_steps = 0;
    TU_OK(bsvi_buffer_weights_get_adam_state(w, NULL, NULL, &adam_steps, N));
    assert_true(adam_steps == steps);
    TU_OK(bsvi_buffer_weights_get_probs(w, pi, N));
    double sum = 0.0;
    for (size_t i = 0; i < N; ++i) {
        assert_true(isfinite(pi[i]) && pi[i] >= 0.0);
        sum += pi[i];
    }
    TU_NEAR(sum, 1.0, 1e-12);
    assert_true(pi[3] > 0.99);
    double mp;
    TU_OK(bsvi_buffer_weights_mean_position(w, &mp));
    assert_true(isfinite(mp));
    /* still computes a finite bound with the extreme pi */
    TU_OK(bsvi_estimator_giwae(e, 1, N, lj, lq, w));
    double bd;
    TU_OK(bsvi_estimator_get_bounds(e, &bd, 1));
    assert_true(isfinite(bd));
    TU_NEAR(bd, 3.0 + log(pi[3] + pi[2] * exp(-2.0) + pi[0] * exp(-3.0)), 1e-9);

    /* An absurd (finite, so accepted) learning rate meeting a gradient far above Adam's
     * running scale would overflow a logit to +inf and make pi NaN: the step is refused
     * with NUMERIC and changes nothing; a sane rate then steps normally. */
    const double lj_b[N] = {100.0, -INFINITY, 0.0, 0.0};
    TU_OK(bsvi_buffer_weights_set_adam(w, DBL_MAX, 0.0, 0.999));
    TU_OK(bsvi_buffer_weights_accumulate_terms(w, 1, N, lj_b, lq));
    double before[N], after[N], gb[N], ga[N];
    uint64_t cb = 0, ca = 0;
    TU_OK(bsvi_buffer_weights_get_probs(w, before, N));
    TU_OK(bsvi_buffer_weights_get_gradient(w, gb, &cb, N));
    assert_true(cb == 1);
    TU_STATUS(bsvi_buffer_weights_step(w), BSVI_ERR_NUMERIC);
    TU_MESSAGE_MENTIONS(bsvi_buffer_weights_last_error(w), "learning rate");
    TU_OK(bsvi_buffer_weights_get_probs(w, after, N));
    TU_OK(bsvi_buffer_weights_get_gradient(w, ga, &ca, N));
    TU_BITWISE(after, before, N);
    TU_BITWISE(ga, gb, N);
    assert_true(ca == cb);
    TU_OK(bsvi_buffer_weights_set_adam(w, 0.05, 0.0, 0.999));
    TU_OK(bsvi_buffer_weights_step(w));
    TU_OK(bsvi_buffer_weights_get_probs(w, after, N));
    sum = 0.0;
    for (size_t i = 0; i < N; ++i) {
        assert_true(isfinite(after[i]));
        sum += after[i];
    }
    TU_NEAR(sum, 1.0, 1e-12);
    assert_true(after[0] > before[0]);
    bsvi_buffer_weights_destroy(w);
    bsvi_estimator_destroy(e);
}

/* ---- generator streams -------------------------------------------------------------------- */

/* Noise of a proposal draw: (z - 0) / 1 with the default N(0, I) proposal. */
static void draw(bsvi_proposal *q, uint64_t counter, uint64_t id, double *z)
{
    TU_OK(bsvi_proposal_set_stream(q, counter, id));
    TU_OK(bsvi_proposal_sample(q, 2, z, NULL));
}

static void test_rng_streams_distinct(void **state)
{
    (void)state;
    enum { B = 3, D = 4, NS = 2 };
    bsvi_proposal *q = NULL;
    TU_OK(bsvi_proposal_create(B, D, &q));
    TU_OK(bsvi_proposal_set_seed(q, 0x1234abcdULL));
    /* Every (counter, data-point id) pair in a grid gives a different stream. */
    const uint64_t counters[5] = {0, 1, 2, 0xFFFFFFFFull, 12345};
    const uint64_t ids[4] = {0, 1, 1000, 0xFFFFFFF0ull};
    enum { NC = 5, NI = 4, ROW = NS * D };
    double *all = tu_alloc((size_t)NC * NI * B * ROW);
    for (size_t c = 0; c < NC; ++c) {
        for (size_t i = 0; i < NI; ++i) {
            draw(q, counters[c], ids[i], all + (c * NI + i) * B * ROW);
        }
    }
    /* rows are (counter, id + b): equal only when the pair is equal */
    const size_t nrows = (size_t)NC * NI * B;
    for (size_t r1 = 0; r1 < nrows; ++r1) {
        for (size_t r2 = r1 + 1; r2 < nrows; ++r2) {
            const size_t c1 = r1 / (NI * B), c2 = r2 / (NI * B);
            const uint64_t id1 = ids[(r1 / B) % NI] + r1 % B, id2 = ids[(r2 / B) % NI] + r2 % B;
            const int same_pair = (c1 == c2) && (id1 == id2);
            const int same_rows = tu_first_bit_difference(all + r1 * ROW, all + r2 * ROW, ROW) ==
                                  (size_t)-1;
            assert_int_equal(same_rows, same_pair);
        }
    }
    free(all);

    /* Documented ranges: the call counter and the id use 32 bits each, so 2^32 aliases 0. */
    double z0[B * ROW], z1[B * ROW];
    draw(q, 7, 5, z0);
    draw(q, 7 + (1ull << 32), 5, z1);
    TU_BITWISE(z0, z1, B * ROW);
    draw(q, 7, 5 + (1ull << 32), z1);
    TU_BITWISE(z0, z1, B * ROW);
    bsvi_proposal_destroy(q);

    /* Steps: an SVI trajectory's noise eps_i = (z_i - mu_i) / sigma_i differs at every step,
     * data point and call counter. */
    enum { k = 6, SB = 2, SD = 3 };
    lg_model lg;
    assert_int_equal(lg_init(&lg, SD, 2, SB, 1.0, 0, 9), 0);
    bsvi_model *m = NULL;
    TU_OK(lg_make_model(&lg, &m));
    bsvi_proposal *p = NULL;
    TU_OK(bsvi_proposal_create(SB, SD, &p));
    bsvi_svi *svi = NULL;
    TU_OK(bsvi_svi_create(SD, &svi));
    TU_OK(bsvi_svi_set_steps(svi, k));
    TU_OK(bsvi_svi_set_step_size(svi, 1e-2));
    bsvi_trajectory *tr = NULL;
    TU_OK(bsvi_trajectory_create(&tr));
    enum { NROW = 2 * SB * (k + 1) };
    double eps[NROW * SD];
    for (int call = 0; call < 2; ++call) {
        TU_OK(bsvi_svi_run(svi, m, p, tr)); /* the counter advances: 0, then 1 */
        tu_traj s;
        tu_traj_read(tr, &s);
        for (size_t i = 0; i < SB * (k + 1) * SD; ++i) {
            eps[(size_t)call * SB * (k + 1) * SD + i] = (s.z[i] - s.mean[i]) / exp(s.ls[i]);
        }
        tu_traj_free(&s);
    }
    for (size_t r1 = 0; r1 < NROW; ++r1) {
        for (size_t r2 = r1 + 1; r2 < NROW; ++r2) {
            size_t same = 0;
            for (size_t j = 0; j < SD; ++j) {
                same += (fabs(eps[r1 * SD + j] - eps[r2 * SD + j]) < 1e-12) ? 1u : 0u;
            }
            assert_true(same < SD);
        }
    }
    bsvi_trajectory_destroy(tr);
    bsvi_svi_destroy(svi);
    bsvi_proposal_destroy(p);
    bsvi_model_destroy(m);
    lg_free(&lg);
}

/* Draws needing more than 2^33 normals per data point and step would wrap the 32-bit block
 * index and repeat values within one call: refused before any work. */
static void test_rng_position_range(void **state)
{
    (void)state;
    const size_t D = (size_t)1 << 14;
    bsvi_evaluator *ev = NULL;
    bsvi_model *m = NULL;
    bsvi_proposal *q = NULL;
    TU_OK(bsvi_evaluator_create(D, &ev));
    TU_OK(bsvi_model_create(D, &m));
    TU_OK(bsvi_model_set_likelihood(m, lg_prior_std_normal, NULL));
    TU_OK(bsvi_proposal_create(1, D, &q));
    double out = TU_SENTINEL;
    /* S * D = 2^33 + 2^14 > 2^33 */
    TU_STATUS(bsvi_evaluator_iwae(ev, m, q, ((size_t)1 << 19) + 1, &out), BSVI_ERR_OUT_OF_RANGE);
    TU_MESSAGE_MENTIONS(bsvi_evaluator_last_error(ev), "2^33");
    assert_true(out == TU_SENTINEL);
    TU_STATUS(bsvi_evaluator_elbo_star(ev, m, q, ((size_t)1 << 19) + 1, &out, NULL, NULL),
              BSVI_ERR_OUT_OF_RANGE);
    bsvi_estimator *e = NULL;
    TU_OK(bsvi_estimator_create(D, &e));
    /* K = 2^20: 2^20 * 2^14 = 2^34 normals */
    TU_STATUS(bsvi_estimator_iwae(e, m, q, BSVI_MAX_SAMPLES, BSVI_GRAD_PATHWISE),
              BSVI_ERR_OUT_OF_RANGE);
    TU_MESSAGE_MENTIONS(bsvi_estimator_last_error(e), "2^33");
    assert_int_equal(bsvi_estimator_batch(e), 0);
    bsvi_svi *svi = NULL;
    bsvi_trajectory *tr = NULL;
    TU_OK(bsvi_svi_create(D, &svi));
    TU_OK(bsvi_trajectory_create(&tr));
    TU_OK(bsvi_svi_set_samples_per_step(svi, BSVI_MAX_SAMPLES));
    TU_STATUS(bsvi_svi_run(svi, m, q, tr), BSVI_ERR_OUT_OF_RANGE);
    TU_MESSAGE_MENTIONS(bsvi_svi_last_error(svi), "2^33");
    TU_STATUS(bsvi_proposal_sample(q, BSVI_MAX_SAMPLES, &out, NULL), BSVI_ERR_OUT_OF_RANGE);
    assert_true(out == TU_SENTINEL);
    bsvi_trajectory_destroy(tr);
    bsvi_svi_destroy(svi);
    bsvi_estimator_destroy(e);
    bsvi_proposal_destroy(q);
    bsvi_model_destroy(m);
    bsvi_evaluator_destroy(ev);
}

/* A callback that writes only part of its output: the unwritten entries are reported as
 * CALLBACK_NAN (the library pre-fills them), never read as garbage. */
static int partial_likelihood(size_t n, size_t dim, const double *z, const size_t *data_index,
                              double *log_density, double *grad, void *user_data)
{
    const int *mode = user_data;
    (void)data_index;
    for (size_t r = 0; r + 1 < n; ++r) { /* the last row is never written */
        log_density[r] = -0.5 * z[r * dim] * z[r * dim];
    }
    if (grad != NULL) {
        for (size_t i = 0; i < n * dim; ++i) {
            grad[i] = 0.0;
        }
    }
    if (*mode == 1 && n > 1) { /* densities all written, one gradient entry not */
        log_density[n - 1] = 0.0;
        if (grad != NULL) {
            grad[n * dim - 1] = NAN; /* stands for "not written" */
        }
    }
    return 0;
}

static void test_partial_write(void **state)
{
    (void)state;
    int mode = 0;
    bsvi_model *m = NULL;
    TU_OK(bsvi_model_create(2, &m));
    TU_OK(bsvi_model_set_likelihood(m, partial_likelihood, &mode));
    bsvi_proposal *q = NULL;
    TU_OK(bsvi_proposal_create(3, 2, &q));
    bsvi_svi *svi = NULL;
    bsvi_trajectory *t = NULL;
    TU_OK(bsvi_svi_create(2, &svi));
    TU_OK(bsvi_trajectory_create(&t));
    TU_STATUS(bsvi_svi_run(svi, m, q, t), BSVI_ERR_CALLBACK_NAN);
    TU_MESSAGE_MENTIONS(bsvi_svi_last_error(svi), "did not write");
    assert_int_equal(bsvi_trajectory_batch(t), 0);
    mode = 1;
    TU_STATUS(bsvi_svi_run(svi, m, q, t), BSVI_ERR_CALLBACK_NAN);
    TU_MESSAGE_MENTIONS(bsvi_svi_last_error(svi), "unwritten");
    mode = 0;
    bsvi_evaluator *ev = NULL;
    TU_OK(bsvi_evaluator_create(2, &ev));
    double o[3];
    tu_fill(o, 3, TU_SENTINEL);
    TU_STATUS(bsvi_evaluator_iwae(ev, m, q, 4, o), BSVI_ERR_CALLBACK_NAN);
    TU_UNTOUCHED(o, 3);
    bsvi_evaluator_destroy(ev);
    bsvi_trajectory_destroy(t);
    bsvi_svi_destroy(svi);
    bsvi_proposal_destroy(q);
    bsvi_model_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_giwae_extremes),
        cmocka_unit_test(test_iwae_callback_extremes),
        cmocka_unit_test(test_trajectory_extremes),
        cmocka_unit_test(test_extreme_log_std_and_steps),
        cmocka_unit_test(test_encoder_gradient_overflow),
        cmocka_unit_test(test_pi_long_run),
        cmocka_unit_test(test_rng_streams_distinct),
        cmocka_unit_test(test_rng_position_range),
        cmocka_unit_test(test_partial_write),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
