/* test_model.c: the model handle, its callbacks and bsvi_model_log_joint, plus
 * self-checks of the linear-Gaussian test model (tests/support/lingauss.c). */
#include "testutil.h"
#include "lingauss.h"

#include <stdio.h>
#include <stdlib.h>

#define LOG_2PI 1.8378770664093454835606594728112

static void test_create_destroy(void **state)
{
    (void)state;
    bsvi_model *m = (bsvi_model *)&m; /* non-NULL garbage: must become NULL on failure */
    TU_STATUS(bsvi_model_create(0, &m), BSVI_ERR_ZERO_SIZE);
    assert_null(m);
    m = (bsvi_model *)&m;
    TU_STATUS(bsvi_model_create(BSVI_MAX_DIM + 1, &m), BSVI_ERR_OUT_OF_RANGE);
    assert_null(m);
    TU_STATUS(bsvi_model_create(3, NULL), BSVI_ERR_NULL_ARGUMENT);
    TU_OK(bsvi_model_create(3, &m));
    assert_non_null(m);
    assert_int_equal(bsvi_model_dim(m), 3);
    assert_int_equal(bsvi_model_has_standard_normal_prior(m), 1);
    assert_string_equal(bsvi_model_last_error(m), "");
    TU_OK(bsvi_model_set_prior(m, lg_prior_std_normal, NULL));
    assert_int_equal(bsvi_model_has_standard_normal_prior(m), 0);
    TU_OK(bsvi_model_set_prior_standard_normal(m));
    assert_int_equal(bsvi_model_has_standard_normal_prior(m), 1);
    bsvi_model_destroy(m);
    bsvi_model_destroy(NULL);
    assert_int_equal(bsvi_model_dim(NULL), 0);
    assert_int_equal(bsvi_model_has_standard_normal_prior(NULL), 0);
}

static void test_setters_null(void **state)
{
    (void)state;
    bsvi_model *m = NULL;
    TU_OK(bsvi_model_create(2, &m));
    TU_STATUS(bsvi_model_set_likelihood(NULL, lg_likelihood, NULL), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_model_set_likelihood(m, NULL, NULL), BSVI_ERR_NULL_ARGUMENT);
    TU_MESSAGE(bsvi_model_last_error(m));
    TU_STATUS(bsvi_model_set_prior(NULL, lg_prior_std_normal, NULL), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_model_set_prior(m, NULL, NULL), BSVI_ERR_NULL_ARGUMENT);
    /* The refused NULL prior left the standard normal prior in place. */
    assert_int_equal(bsvi_model_has_standard_normal_prior(m), 1);
    TU_STATUS(bsvi_model_set_prior_standard_normal(NULL), BSVI_ERR_NULL_ARGUMENT);
    bsvi_model_destroy(m);
}

static void test_log_joint_matches_direct(void **state)
{
    (void)state;
    for (int orth = 0; orth <= 1; ++orth) {
        lg_model lg;
        assert_int_equal(lg_init(&lg, 3, 5, 4, 0.8, orth, 11u + (uint64_t)orth), 0);
        bsvi_model *m = NULL;
        TU_OK(lg_make_model(&lg, &m));
        const size_t n = 8;
        double z[8 * 3];
        size_t idx[8];
        tu_rng r;
        tu_rng_init(&r, 5);
        for (size_t i = 0; i < n; ++i) {
            idx[i] = (i * 3) % 4;
            for (size_t j = 0; j < 3; ++j) {
                z[i * 3 + j] = 1.5 * tu_rng_normal(&r);
            }
        }
        double lj[8], g[8 * 3];
        TU_OK(bsvi_model_log_joint(m, n, z, idx, lj, g));
        for (size_t i = 0; i < n; ++i) {
            double direct = lg_log_joint(&lg, idx[i], &z[i * 3]);
            TU_NEAR(lj[i], direct, 1e-12 * (1.0 + fabs(direct)));
            /* Gradient against central finite differences of the direct log joint. */
            for (size_t j = 0; j < 3; ++j) {
                double zp[3], zm[3];
                memcpy(zp, &z[i * 3], sizeof zp);
                memcpy(zm, &z[i * 3], sizeof zm);
                const double h = 1e-5;
                zp[j] += h;
                zm[j] -= h;
                double fd = (lg_log_joint(&lg, idx[i], zp) - lg_log_joint(&lg, idx[i], zm)) /
                            (2.0 * h);
                /* Quadratic function: central differences are exact up to rounding
                 * (~1e-16 * |log p| / h ~ 1e-10). */
                TU_NEAR(g[i * 3 + j], fd, 1e-7);
            }
        }
        /* Without the gradient: same log joint. */
        double lj2[8];
        TU_OK(bsvi_model_log_joint(m, n, z, idx, lj2, NULL));
        TU_BITWISE(lj, lj2, n);

        /* A host prior equal to N(0, I) gives the same values. */
        TU_OK(bsvi_model_set_prior(m, lg_prior_std_normal, NULL));
        double lj3[8], g3[8 * 3];
        TU_OK(bsvi_model_log_joint(m, n, z, idx, lj3, g3));
        for (size_t i = 0; i < n; ++i) {
            TU_NEAR(lj3[i], lj[i], 1e-12 * (1.0 + fabs(lj[i])));
            for (size_t j = 0; j < 3; ++j) {
                TU_NEAR(g3[i * 3 + j], g[i * 3 + j], 1e-12);
            }
        }
        bsvi_model_destroy(m);
        lg_free(&lg);
    }
}

/* Self-check of the exact helpers: for any z,
 * log p(x) = log p(x, z) - log N(z; posterior mean, posterior cov). */
static void test_lingauss_exact_helpers(void **state)
{
    (void)state;
    for (int orth = 0; orth <= 1; ++orth) {
        lg_model lg;
        const size_t d = 3, D = 5;
        assert_int_equal(lg_init(&lg, d, D, 3, 0.7, orth, 21u + (uint64_t)orth), 0);
        for (size_t b = 0; b < 3; ++b) {
            double mean[3], cov[9];
            lg_posterior(&lg, b, mean, cov);
            /* log N(z; mean, cov) via a 3x3 Cholesky. */
            double l[9];
            memcpy(l, cov, sizeof l);
            l[0] = sqrt(l[0]);
            l[3] = l[3] / l[0];
            l[6] = l[6] / l[0];
            l[4] = sqrt(l[4] - l[3] * l[3]);
            l[7] = (l[7] - l[6] * l[3]) / l[4];
            l[8] = sqrt(l[8] - l[6] * l[6] - l[7] * l[7]);
            const double z[3] = {0.3, -1.2, 0.7};
            double y[3];
            y[0] = (z[0] - mean[0]) / l[0];
            y[1] = (z[1] - mean[1] - l[3] * y[0]) / l[4];
            y[2] = (z[2] - mean[2] - l[6] * y[0] - l[7] * y[1]) / l[8];
            double logpost = -1.5 * LOG_2PI - log(l[0] * l[4] * l[8]) -
                             0.5 * (y[0] * y[0] + y[1] * y[1] + y[2] * y[2]);
            double logpx = lg_log_marginal(&lg, b);
            assert_true(isfinite(logpx));
            TU_NEAR(lg_log_joint(&lg, b, z) - logpost, logpx, 1e-10);
            if (orth) {
                /* Orthogonal columns: diagonal posterior, and the exact ELBO of q = posterior
                 * is log p(x). */
                TU_NEAR(cov[1], 0.0, 1e-13);
                TU_NEAR(cov[2], 0.0, 1e-13);
                TU_NEAR(cov[5], 0.0, 1e-13);
                double pm[3], pls[3];
                lg_posterior_diag(&lg, b, pm, pls);
                TU_NEAR(lg_exact_elbo(&lg, b, pm, pls, NULL, NULL), logpx, 1e-10);
            }
            /* Exact ELBO gradient against central differences. */
            const double mu[3] = {0.2, -0.4, 0.9};
            const double ls[3] = {-0.3, 0.1, -0.8};
            double dm[3], ds[3];
            double e0 = lg_exact_elbo(&lg, b, mu, ls, dm, ds);
            assert_true(e0 < logpx);
            for (size_t j = 0; j < d; ++j) {
                const double h = 1e-5;
                double mp[3], mm[3], sp[3], sm[3];
                memcpy(mp, mu, sizeof mp);
                memcpy(mm, mu, sizeof mm);
                memcpy(sp, ls, sizeof sp);
                memcpy(sm, ls, sizeof sm);
                mp[j] += h;
                mm[j] -= h;
                sp[j] += h;
                sm[j] -= h;
                TU_NEAR(dm[j],
                        (lg_exact_elbo(&lg, b, mp, ls, NULL, NULL) -
                         lg_exact_elbo(&lg, b, mm, ls, NULL, NULL)) / (2.0 * h),
                        1e-6);
                TU_NEAR(ds[j],
                        (lg_exact_elbo(&lg, b, mu, sp, NULL, NULL) -
                         lg_exact_elbo(&lg, b, mu, sm, NULL, NULL)) / (2.0 * h),
                        1e-6);
            }
        }
        lg_free(&lg);
    }
}

static void test_log_joint_bad_input(void **state)
{
    (void)state;
    lg_model lg;
    assert_int_equal(lg_init(&lg, 2, 3, 2, 1.0, 0, 3), 0);
    bsvi_model *m = NULL;
    TU_OK(bsvi_model_create(2, &m));
    const double z[4] = {0.1, 0.2, 0.3, 0.4};
    const size_t idx[2] = {0, 1};
    double out[2], grad[4];

    /* No likelihood yet. */
    tu_fill(out, 2, TU_SENTINEL);
    tu_fill(grad, 4, TU_SENTINEL);
    TU_STATUS(bsvi_model_log_joint(m, 2, z, idx, out, grad), BSVI_ERR_BAD_STATE);
    TU_MESSAGE_MENTIONS(bsvi_model_last_error(m), "likelihood");
    TU_UNTOUCHED(out, 2);
    TU_UNTOUCHED(grad, 4);

    TU_OK(bsvi_model_set_likelihood(m, lg_likelihood, &lg));
    TU_STATUS(bsvi_model_log_joint(NULL, 2, z, idx, out, grad), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_model_log_joint(m, 2, NULL, idx, out, grad), BSVI_ERR_NULL_ARGUMENT);
    TU_MESSAGE(bsvi_model_last_error(m));
    TU_STATUS(bsvi_model_log_joint(m, 2, z, NULL, out, grad), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_model_log_joint(m, 2, z, idx, NULL, grad), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_model_log_joint(m, 0, z, idx, out, grad), BSVI_ERR_ZERO_SIZE);
    TU_MESSAGE(bsvi_model_last_error(m));
    TU_UNTOUCHED(out, 2);
    TU_UNTOUCHED(grad, 4);
    TU_OK(bsvi_model_log_joint(m, 2, z, idx, out, grad));
    bsvi_model_destroy(m);
    lg_free(&lg);
}

static void test_log_joint_callback_faults(void **state)
{
    (void)state;
    lg_model lg;
    assert_int_equal(lg_init(&lg, 2, 3, 2, 1.0, 0, 3), 0);
    lg_faulty f = {&lg, 0, 0, 42, LG_FAULT_CODE};
    bsvi_model *m = NULL;
    TU_OK(bsvi_model_create(2, &m));
    TU_OK(bsvi_model_set_likelihood(m, lg_faulty_likelihood, &f));
    const double z[4] = {0.1, 0.2, 0.3, 0.4};
    const size_t idx[2] = {0, 1};
    double out[2], grad[4];
    tu_fill(out, 2, TU_SENTINEL);
    tu_fill(grad, 4, TU_SENTINEL);

    /* Non-zero return: CALLBACK_FAILED, message names the callback and the code. */
    TU_STATUS(bsvi_model_log_joint(m, 2, z, idx, out, grad), BSVI_ERR_CALLBACK_FAILED);
    TU_MESSAGE_MENTIONS(bsvi_model_last_error(m), "likelihood");
    TU_MESSAGE_MENTIONS(bsvi_model_last_error(m), "42");
    TU_UNTOUCHED(out, 2);
    TU_UNTOUCHED(grad, 4);

    /* NaN log density: CALLBACK_NAN. */
    f.mode = LG_FAULT_NAN;
    TU_STATUS(bsvi_model_log_joint(m, 2, z, idx, out, NULL), BSVI_ERR_CALLBACK_NAN);
    TU_MESSAGE_MENTIONS(bsvi_model_last_error(m), "nan");
    TU_UNTOUCHED(out, 2);

    /* NaN gradient: CALLBACK_NAN when the gradient is requested. */
    f.mode = LG_FAULT_NAN_GRAD;
    TU_STATUS(bsvi_model_log_joint(m, 2, z, idx, out, grad), BSVI_ERR_CALLBACK_NAN);
    TU_MESSAGE(bsvi_model_last_error(m));
    TU_UNTOUCHED(out, 2);
    TU_UNTOUCHED(grad, 4);

    /* -INFINITY is a legal log density. */
    f.mode = LG_FAULT_NEG_INF;
    TU_OK(bsvi_model_log_joint(m, 2, z, idx, out, grad));
    assert_true(isinf(out[0]) && out[0] < 0 && isinf(out[1]) && out[1] < 0);

    /* A failing host prior is named as the prior. */
    f.ok_calls = 1000000;
    TU_OK(bsvi_model_log_joint(m, 2, z, idx, out, grad));
    lg_faulty fp = {&lg, 0, 0, 7, LG_FAULT_CODE};
    TU_OK(bsvi_model_set_prior(m, lg_faulty_likelihood, &fp));
    double out2[2];
    tu_fill(out2, 2, TU_SENTINEL);
    TU_STATUS(bsvi_model_log_joint(m, 2, z, idx, out2, NULL), BSVI_ERR_CALLBACK_FAILED);
    TU_MESSAGE_MENTIONS(bsvi_model_last_error(m), "prior");
    TU_UNTOUCHED(out2, 2);

    /* The handle still works after the errors. */
    TU_OK(bsvi_model_set_prior_standard_normal(m));
    TU_OK(bsvi_model_log_joint(m, 2, z, idx, out2, NULL));
    TU_NEAR(out2[0], lg_log_joint(&lg, 0, z), 1e-12);
    TU_NEAR(out2[1], lg_log_joint(&lg, 1, z + 2), 1e-12);
    bsvi_model_destroy(m);
    lg_free(&lg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_destroy),
        cmocka_unit_test(test_setters_null),
        cmocka_unit_test(test_log_joint_matches_direct),
        cmocka_unit_test(test_lingauss_exact_helpers),
        cmocka_unit_test(test_log_joint_bad_input),
        cmocka_unit_test(test_log_joint_callback_faults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
