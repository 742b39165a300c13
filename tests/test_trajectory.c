/* test_trajectory.c: the trajectory (buffer) handle: empty state, getters, storage reuse
 * across batch shapes, and the training-health metrics. */
#include "testutil.h"
#include "lingauss.h"

#include <stdlib.h>

static void test_empty(void **state)
{
    (void)state;
    TU_STATUS(bsvi_trajectory_create(NULL), BSVI_ERR_NULL_ARGUMENT);
    bsvi_trajectory *t = NULL;
    TU_OK(bsvi_trajectory_create(&t));
    assert_int_equal(bsvi_trajectory_batch(t), 0);
    assert_int_equal(bsvi_trajectory_steps(t), 0);
    assert_int_equal(bsvi_trajectory_dim(t), 0);
    assert_int_equal(bsvi_trajectory_is_double_sampled(t), 0);
    assert_string_equal(bsvi_trajectory_last_error(t), "");
    double buf[4];
    tu_fill(buf, 4, TU_SENTINEL);
    TU_STATUS(bsvi_trajectory_get_log_weights(t, buf), BSVI_ERR_BAD_STATE);
    TU_MESSAGE(bsvi_trajectory_last_error(t));
    TU_STATUS(bsvi_trajectory_get_log_joint(t, buf), BSVI_ERR_BAD_STATE);
    TU_STATUS(bsvi_trajectory_get_log_proposal(t, buf), BSVI_ERR_BAD_STATE);
    TU_STATUS(bsvi_trajectory_get_latents(t, buf), BSVI_ERR_BAD_STATE);
    TU_STATUS(bsvi_trajectory_get_params(t, buf, buf), BSVI_ERR_BAD_STATE);
    TU_STATUS(bsvi_trajectory_get_encoder_grad(t, buf, buf), BSVI_ERR_BAD_STATE);
    double a, b, c;
    TU_STATUS(bsvi_trajectory_health(t, NULL, 0, &a, &b, &c), BSVI_ERR_BAD_STATE);
    TU_UNTOUCHED(buf, 4);
    TU_STATUS(bsvi_trajectory_get_log_weights(NULL, buf), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_trajectory_get_params(NULL, buf, buf), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_trajectory_get_encoder_grad(NULL, buf, buf), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_trajectory_health(NULL, NULL, 0, &a, &b, &c), BSVI_ERR_NULL_ARGUMENT);
    bsvi_trajectory_destroy(t);
    bsvi_trajectory_destroy(NULL);
    assert_int_equal(bsvi_trajectory_batch(NULL), 0);
    assert_int_equal(bsvi_trajectory_steps(NULL), 0);
    assert_int_equal(bsvi_trajectory_dim(NULL), 0);
    assert_int_equal(bsvi_trajectory_is_double_sampled(NULL), 0);
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

static void test_reuse_and_health(void **state)
{
    (void)state;
    const size_t d = 2, Bbig = 6, Bsmall = 2;
    lg_model lg;
    assert_int_equal(lg_init(&lg, d, 4, Bbig, 0.9, 0, 3), 0);
    bsvi_model *model = NULL;
    TU_OK(lg_make_model(&lg, &model));
    double mean[12] = {0}, ls[12] = {0};
    for (size_t i = 0; i < 12; ++i) {
        mean[i] = 0.1 * (double)i - 0.5;
        ls[i] = -0.05 * (double)i;
    }
    bsvi_proposal *qb = NULL, *qs = NULL;
    TU_OK(lg_make_proposal(Bbig, d, mean, ls, &qb));
    TU_OK(lg_make_proposal(Bsmall, d, mean, ls, &qs));
    bsvi_svi *svi = NULL;
    TU_OK(bsvi_svi_create(d, &svi));
    TU_OK(bsvi_svi_set_step_size(svi, 0.05));
    bsvi_trajectory *t = NULL, *t2 = NULL;
    TU_OK(bsvi_trajectory_create(&t));
    TU_OK(bsvi_trajectory_create(&t2));
    /* Big batch with k = 5, then a small batch with k = 2 in the same trajectory: the second
     * result must equal a fresh trajectory's. */
    TU_OK(bsvi_svi_set_steps(svi, 5));
    TU_OK(bsvi_svi_run(svi, model, qb, t));
    TU_OK(bsvi_svi_set_steps(svi, 2));
    TU_OK(bsvi_svi_set_stream(svi, 7, 0));
    TU_OK(bsvi_svi_run(svi, model, qs, t));
    TU_OK(bsvi_svi_set_stream(svi, 7, 0));
    TU_OK(bsvi_svi_run(svi, model, qs, t2));
    assert_int_equal(bsvi_trajectory_batch(t), Bsmall);
    assert_int_equal(bsvi_trajectory_steps(t), 2);
    assert_int_equal(bsvi_trajectory_dim(t), d);
    tu_traj a, b;
    tu_traj_read(t, &a);
    tu_traj_read(t2, &b);
    tu_traj_assert_equal(&a, &b);
    /* Optional outputs of get_params / get_encoder_grad. */
    double m6[12], g4[4];
    TU_OK(bsvi_trajectory_get_params(t, m6, NULL));
    TU_BITWISE(m6, a.mean, Bsmall * 3 * d);
    TU_OK(bsvi_trajectory_get_params(t, NULL, m6));
    TU_BITWISE(m6, a.ls, Bsmall * 3 * d);
    TU_OK(bsvi_trajectory_get_encoder_grad(t, NULL, g4));
    TU_BITWISE(g4, a.gs, Bsmall * d);
    TU_OK(bsvi_trajectory_get_encoder_grad(t, NULL, NULL));

    /* Health metrics: means of log w_0, log w_k and LSE(log pi + log w). */
    const size_t K1 = 3;
    double s0 = 0, sk = 0, su = 0, sp = 0;
    const double pi[3] = {0.2, 0.3, 0.5};
    for (size_t bb = 0; bb < Bsmall; ++bb) {
        const double *lw = &a.lw[bb * K1];
        double x[3], y[3];
        for (size_t i = 0; i < K1; ++i) {
            x[i] = lw[i] - log(3.0);
            y[i] = lw[i] + log(pi[i]);
        }
        s0 += lw[0] / (double)Bsmall;
        sk += lw[2] / (double)Bsmall;
        su += lse(x, K1) / (double)Bsmall;
        sp += lse(y, K1) / (double)Bsmall;
    }
    double h0, hk, hb;
    TU_OK(bsvi_trajectory_health(t, NULL, 0, &h0, &hk, &hb));
    TU_NEAR(h0, s0, 1e-12);
    TU_NEAR(hk, sk, 1e-12);
    TU_NEAR(hb, su, 1e-12);
    TU_OK(bsvi_trajectory_health(t, pi, 3, &h0, &hk, &hb));
    TU_NEAR(hb, sp, 1e-12);
    /* Bad input: outputs untouched. */
    double o[3];
    tu_fill(o, 3, TU_SENTINEL);
    TU_STATUS(bsvi_trajectory_health(t, pi, 2, &o[0], &o[1], &o[2]), BSVI_ERR_SIZE_MISMATCH);
    TU_MESSAGE(bsvi_trajectory_last_error(t));
    const double bad1[3] = {0.2, 0.3, 0.4}, bad2[3] = {-0.2, 0.7, 0.5}, bad3[3] = {NAN, 0.5, 0.5};
    TU_STATUS(bsvi_trajectory_health(t, bad1, 3, &o[0], &o[1], &o[2]), BSVI_ERR_BAD_VALUE);
    TU_MESSAGE(bsvi_trajectory_last_error(t));
    TU_STATUS(bsvi_trajectory_health(t, bad2, 3, &o[0], &o[1], &o[2]), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_trajectory_health(t, bad3, 3, &o[0], &o[1], &o[2]), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_trajectory_health(t, NULL, 0, NULL, &o[1], &o[2]), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_trajectory_health(t, NULL, 0, &o[0], NULL, &o[2]), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_trajectory_health(t, NULL, 0, &o[0], &o[1], NULL), BSVI_ERR_NULL_ARGUMENT);
    TU_UNTOUCHED(o, 3);
    TU_STATUS(bsvi_trajectory_get_log_weights(t, NULL), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_trajectory_get_latents(t, NULL), BSVI_ERR_NULL_ARGUMENT);
    tu_traj_free(&a);
    tu_traj_free(&b);
    bsvi_trajectory_destroy(t);
    bsvi_trajectory_destroy(t2);
    bsvi_svi_destroy(svi);
    bsvi_proposal_destroy(qb);
    bsvi_proposal_destroy(qs);
    bsvi_model_destroy(model);
    lg_free(&lg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_reuse_and_health),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
