/* test_trajectory.c: the trajectory (buffer) handle: empty state, getters, storage reuse
 * across batch shapes, and the training-health metrics (bsvi_health: means over the data
 * points where each value is finite, the points left out counted; pi as a
 * bsvi_buffer_weights handle or NULL). */
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
    bsvi_health h;
    TU_STATUS(bsvi_trajectory_health(t, NULL, &h), BSVI_ERR_BAD_STATE);
    TU_UNTOUCHED(buf, 4);
    TU_STATUS(bsvi_trajectory_get_log_weights(NULL, buf), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_trajectory_get_params(NULL, buf, buf), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_trajectory_get_encoder_grad(NULL, buf, buf), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_trajectory_health(NULL, NULL, &h), BSVI_ERR_NULL_ARGUMENT);
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
    bsvi_health h;
    TU_OK(bsvi_trajectory_health(t, NULL, &h));
    TU_NEAR(h.svi0, s0, 1e-12);
    TU_NEAR(h.svik, sk, 1e-12);
    TU_NEAR(h.bsvik, su, 1e-12);
    assert_int_equal(h.zero_svi0, 0);
    assert_int_equal(h.zero_svik, 0);
    assert_int_equal(h.zero_bsvik, 0);
    bsvi_buffer_weights *w = NULL, *w2 = NULL;
    TU_OK(bsvi_buffer_weights_create(3, &w));
    TU_OK(bsvi_buffer_weights_set_probs(w, pi, 3));
    bsvi_health hp;
    TU_OK(bsvi_trajectory_health(t, w, &hp));
    TU_NEAR(hp.bsvik, sp, 1e-12);
    /* pi does not enter SVI-0 and SVI-k */
    TU_BITWISE(&hp.svi0, &h.svi0, 1);
    TU_BITWISE(&hp.svik, &h.svik, 1);
    /* Bad input: output untouched. */
    bsvi_health o, o_init;
    o_init.svi0 = o_init.svik = o_init.bsvik = TU_SENTINEL;
    o_init.zero_svi0 = o_init.zero_svik = o_init.zero_bsvik = 12345;
    o = o_init;
    TU_OK(bsvi_buffer_weights_create(2, &w2));
    TU_STATUS(bsvi_trajectory_health(t, w2, &o), BSVI_ERR_SIZE_MISMATCH);
    TU_MESSAGE(bsvi_trajectory_last_error(t));
    assert_memory_equal(&o, &o_init, sizeof o);
    TU_STATUS(bsvi_trajectory_health(t, NULL, NULL), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_trajectory_health(t, w, NULL), BSVI_ERR_NULL_ARGUMENT);
    /* pi that is not a distribution is now refused where it is set, and changes nothing. */
    const double bad1[3] = {0.2, 0.3, 0.4}, bad2[3] = {-0.2, 0.7, 0.5}, bad3[3] = {NAN, 0.5, 0.5};
    TU_STATUS(bsvi_buffer_weights_set_probs(w, bad1, 3), BSVI_ERR_BAD_VALUE);
    TU_MESSAGE(bsvi_buffer_weights_last_error(w));
    TU_STATUS(bsvi_buffer_weights_set_probs(w, bad2, 3), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_buffer_weights_set_probs(w, bad3, 3), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_buffer_weights_set_probs(w, pi, 2), BSVI_ERR_SIZE_MISMATCH);
    TU_OK(bsvi_trajectory_health(t, w, &o));
    TU_BITWISE(&o.bsvik, &hp.bsvik, 1);
    bsvi_buffer_weights_destroy(w);
    bsvi_buffer_weights_destroy(w2);
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

/* ---- health with zero-density slots ------------------------------------------------- */

/* A likelihood read from a table: row r of call c gets val[data_index[r] * K1 + c] (one call
 * per SVI step, so c is the buffer slot), with a zero gradient. */
typedef struct slot_lik {
    const double *val;
    size_t K1;
    size_t calls;
} slot_lik;

static int slot_likelihood(size_t n, size_t dim, const double *z, const size_t *data_index,
                           double *log_density, double *grad, void *user_data)
{
    slot_lik *s = user_data;
    (void)z;
    for (size_t r = 0; r < n; ++r) {
        log_density[r] = s->val[data_index[r] * s->K1 + s->calls];
        if (grad != NULL) {
            for (size_t j = 0; j < dim; ++j) {
                grad[r * dim + j] = 0.0;
            }
        }
    }
    s->calls++;
    return 0;
}

/* Run k = K1 - 1 steps over the first B rows of the table (seed 11, counter 0). */
static void run_table(const double *val, size_t B, size_t K1, size_t d, bsvi_trajectory *t)
{
    slot_lik sl = {val, K1, 0};
    bsvi_model *m = NULL;
    TU_OK(bsvi_model_create(d, &m));
    TU_OK(bsvi_model_set_likelihood(m, slot_likelihood, &sl));
    bsvi_proposal *q = NULL;
    TU_OK(bsvi_proposal_create(B, d, &q));
    bsvi_svi *svi = NULL;
    TU_OK(bsvi_svi_create(d, &svi));
    TU_OK(bsvi_svi_set_steps(svi, K1 - 1));
    TU_OK(bsvi_svi_set_step_size(svi, 0.05));
    TU_OK(bsvi_svi_set_seed(svi, 11));
    TU_OK(bsvi_svi_run(svi, m, q, t));
    assert_int_equal(sl.calls, K1);
    bsvi_svi_destroy(svi);
    bsvi_proposal_destroy(q);
    bsvi_model_destroy(m);
}

static double lse_pi(const double *lw, const double *logpi, size_t n)
{
    double x[8];
    assert_true(n <= 8);
    for (size_t i = 0; i < n; ++i) {
        x[i] = lw[i] + logpi[i];
    }
    return lse(x, n);
}

/* A data point with a -INFINITY slot is left out of the mean it affects (SVI-0: slot 0;
 * SVI-k: slot k; BSVI-k: every weight zero under pi) and counted; the other means keep it. */
static void test_health_zero_points(void **state)
{
    (void)state;
    enum { B = 5, K1 = 3, d = 2 };
    const double NI = -INFINITY;
    const double val[B * K1] = {
        -1.0, -0.5, -0.25, /* ordinary */
        NI,   -0.7, -0.3,  /* zero at slot 0: out of SVI-0 only */
        -0.9, -0.4, NI,    /* zero at slot k: out of SVI-k only */
        NI,   NI,   NI,    /* zero everywhere: out of all three */
        -1.2, NI,   NI,    /* only slot 0 finite: out of SVI-k; out of BSVI-k when pi_0 = 0 */
    };
    bsvi_trajectory *t = NULL;
    TU_OK(bsvi_trajectory_create(&t));
    run_table(val, B, K1, d, t);
    double lw[B * K1];
    TU_OK(bsvi_trajectory_get_log_weights(t, lw));
    for (size_t i = 0; i < B * K1; ++i) {
        assert_true((isinf(val[i]) != 0) == (lw[i] == -INFINITY)); /* -inf where the table is */
    }
    const double lu[K1] = {-log(3.0), -log(3.0), -log(3.0)};
    bsvi_health h;
    TU_OK(bsvi_trajectory_health(t, NULL, &h));
    assert_int_equal(h.zero_svi0, 2);
    assert_int_equal(h.zero_svik, 3);
    assert_int_equal(h.zero_bsvik, 1);
    TU_NEAR(h.svi0, (lw[0] + lw[2 * K1] + lw[4 * K1]) / 3.0, 1e-12);
    TU_NEAR(h.svik, (lw[K1 - 1] + lw[2 * K1 - 1]) / 2.0, 1e-12);
    double eb = 0.0;
    const size_t kept[4] = {0, 1, 2, 4};
    for (size_t i = 0; i < 4; ++i) {
        eb += lse_pi(&lw[kept[i] * K1], lu, K1) / 4.0;
    }
    TU_NEAR(h.bsvik, eb, 1e-12);

    /* pi as a handle: a fresh handle is uniform, as NULL is. */
    bsvi_buffer_weights *w = NULL;
    TU_OK(bsvi_buffer_weights_create(K1, &w));
    bsvi_health hw;
    TU_OK(bsvi_trajectory_health(t, w, &hw));
    TU_BITWISE(&hw.svi0, &h.svi0, 1);
    TU_BITWISE(&hw.svik, &h.svik, 1);
    TU_NEAR(hw.bsvik, h.bsvik, 1e-14);
    assert_int_equal(hw.zero_bsvik, 1);
    /* pi_0 = 0: point 4's only finite weight gets no mass, so it joins point 3. */
    const double pi[K1] = {0.0, 0.25, 0.75};
    const double lp[K1] = {-INFINITY, log(0.25), log(0.75)};
    TU_OK(bsvi_buffer_weights_set_probs(w, pi, K1));
    TU_OK(bsvi_trajectory_health(t, w, &hw));
    assert_int_equal(hw.zero_svi0, 2);
    assert_int_equal(hw.zero_svik, 3);
    assert_int_equal(hw.zero_bsvik, 2);
    TU_BITWISE(&hw.svi0, &h.svi0, 1);
    TU_BITWISE(&hw.svik, &h.svik, 1);
    eb = 0.0;
    for (size_t i = 0; i < 3; ++i) {
        eb += lse_pi(&lw[kept[i] * K1], lp, K1) / 3.0;
    }
    TU_NEAR(hw.bsvik, eb, 1e-12);
    assert_true(isfinite(h.svi0) && isfinite(h.svik) && isfinite(h.bsvik) &&
                isfinite(hw.bsvik));

    /* Bitwise: with the zero point last, each mean it is left out of equals the mean over the
     * batch without it (the same data points in the same order, the same streams). */
    const double good[2 * K1] = {-1.0, -0.5, -0.25, -0.8, -0.6, -0.2};
    const double bad[3][K1] = {{NI, -0.7, -0.3}, {-0.9, -0.4, NI}, {NI, NI, NI}};
    bsvi_trajectory *t2 = NULL, *t3 = NULL;
    TU_OK(bsvi_trajectory_create(&t2));
    TU_OK(bsvi_trajectory_create(&t3));
    run_table(good, 2, K1, d, t2);
    tu_traj s2;
    tu_traj_read(t2, &s2);
    bsvi_health h2, h2w;
    TU_OK(bsvi_trajectory_health(t2, NULL, &h2));
    TU_OK(bsvi_trajectory_health(t2, w, &h2w));
    for (size_t c = 0; c < 3; ++c) {
        double v3[3 * K1];
        memcpy(v3, good, sizeof good);
        memcpy(v3 + 2 * K1, bad[c], sizeof bad[c]);
        run_table(v3, 3, K1, d, t3);
        tu_traj s3;
        tu_traj_read(t3, &s3);
        tu_traj_assert_rows_equal(&s3, 0, &s2); /* the premise: points 0 and 1 unchanged */
        bsvi_health h3, h3w;
        TU_OK(bsvi_trajectory_health(t3, NULL, &h3));
        TU_OK(bsvi_trajectory_health(t3, w, &h3w));
        const int out0 = c != 1, outk = c != 0, outb = c == 2;
        assert_int_equal(h3.zero_svi0, (size_t)out0);
        assert_int_equal(h3.zero_svik, (size_t)outk);
        assert_int_equal(h3.zero_bsvik, (size_t)outb);
        assert_int_equal(h3w.zero_bsvik, (size_t)outb);
        if (out0) {
            TU_BITWISE(&h3.svi0, &h2.svi0, 1);
        } else {
            TU_NEAR(h3.svi0, (s3.lw[0] + s3.lw[K1] + s3.lw[2 * K1]) / 3.0, 1e-12);
        }
        if (outk) {
            TU_BITWISE(&h3.svik, &h2.svik, 1);
        } else {
            TU_NEAR(h3.svik, (s3.lw[K1 - 1] + s3.lw[2 * K1 - 1] + s3.lw[3 * K1 - 1]) / 3.0,
                    1e-12);
        }
        if (outb) {
            TU_BITWISE(&h3.bsvik, &h2.bsvik, 1);
            TU_BITWISE(&h3w.bsvik, &h2w.bsvik, 1);
        } else {
            assert_true(isfinite(h3.bsvik) && isfinite(h3w.bsvik));
        }
        tu_traj_free(&s3);
    }
    tu_traj_free(&s2);

    /* A mean over no data point is -INFINITY (never NaN), with every point counted. */
    const double none[2 * K1] = {NI, NI, NI, NI, NI, NI};
    run_table(none, 2, K1, d, t3);
    TU_OK(bsvi_trajectory_health(t3, NULL, &h));
    assert_true(h.svi0 == -INFINITY && h.svik == -INFINITY && h.bsvik == -INFINITY);
    assert_int_equal(h.zero_svi0, 2);
    assert_int_equal(h.zero_svik, 2);
    assert_int_equal(h.zero_bsvik, 2);

    /* A handle of the wrong size: SIZE_MISMATCH, output untouched. */
    bsvi_buffer_weights *w4 = NULL;
    TU_OK(bsvi_buffer_weights_create(K1 + 1, &w4));
    bsvi_health o, o_init;
    o_init.svi0 = o_init.svik = o_init.bsvik = TU_SENTINEL;
    o_init.zero_svi0 = o_init.zero_svik = o_init.zero_bsvik = 777;
    o = o_init;
    TU_STATUS(bsvi_trajectory_health(t, w4, &o), BSVI_ERR_SIZE_MISMATCH);
    TU_MESSAGE(bsvi_trajectory_last_error(t));
    assert_memory_equal(&o, &o_init, sizeof o);
    bsvi_buffer_weights_destroy(w4);
    bsvi_buffer_weights_destroy(w);
    bsvi_trajectory_destroy(t);
    bsvi_trajectory_destroy(t2);
    bsvi_trajectory_destroy(t3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_reuse_and_health),
        cmocka_unit_test(test_health_zero_points),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
