/* test_hostile.c: inputs an attacker would choose (issue 12, library items 2-5). Each test
 * failed before its fix:
 * - a NaN latent in bsvi_proposal_log_density returned BSVI_OK and a NaN log q;
 * - bsvi_trajectory_health summed huge log weights to +inf (and to NaN beside a -inf point;
 *   since 0.2 such a point is left out of the mean and counted);
 * - bsvi_evaluator_elbo_star summed huge finite terms to +-inf (KL* = -inf with a host prior
 *   of 1e308; "zero density" for a likelihood of 1e308 with S = 2 where S = 1 succeeded);
 * - the pi step (bsvi_estimator_pi_step in 0.1, bsvi_buffer_weights_step since 0.2) with a
 *   learning rate of 1e308 re-centred a logit to -inf, freezing that slot at pi = 0 for good,
 *   under BSVI_OK;
 * - a step-0 direction of 1e200 under clipping gave a step of exactly 0 (squared norm
 *   overflow), and under Adam a point whose moments overflowed never moved again without
 *   being counted as diverged. */
#include "testutil.h"

#include <float.h>
#include <stdlib.h>

/* A host likelihood with a constant value and a constant gradient per data point. */
typedef struct konst {
    double value[4];
    double grad[4];
} konst;

static int konst_lik(size_t n, size_t dim, const double *z, const size_t *data_index,
                     double *log_density, double *grad, void *user_data)
{
    (void)z;
    const konst *k = user_data;
    for (size_t r = 0; r < n; ++r) {
        log_density[r] = k->value[data_index[r]];
        if (grad != NULL) {
            for (size_t j = 0; j < dim; ++j) {
                grad[r * dim + j] = k->grad[data_index[r]];
            }
        }
    }
    return 0;
}

/* A host prior of +1e308 everywhere (finite, so legal) with a zero gradient. */
static int huge_prior(size_t n, size_t dim, const double *z, const size_t *data_index,
                      double *log_density, double *grad, void *user_data)
{
    (void)z, (void)data_index, (void)user_data;
    for (size_t r = 0; r < n; ++r) {
        log_density[r] = 1e308;
        if (grad != NULL) {
            memset(grad + r * dim, 0, dim * sizeof *grad);
        }
    }
    return 0;
}

static bsvi_model *make_model(size_t dim, konst *k)
{
    bsvi_model *m = NULL;
    TU_OK(bsvi_model_create(dim, &m));
    TU_OK(bsvi_model_set_likelihood(m, konst_lik, k));
    return m;
}

static bsvi_proposal *make_proposal(size_t B, size_t dim, double mean, double log_std)
{
    bsvi_proposal *q = NULL;
    TU_OK(bsvi_proposal_create(B, dim, &q));
    double mu[8], ls[8];
    for (size_t i = 0; i < B * dim; ++i) {
        mu[i] = mean + 0.1 * (double)i;
        ls[i] = log_std;
    }
    TU_OK(bsvi_proposal_set_params(q, mu, ls));
    return q;
}

/* ---- item 2: NaN latents in log q ---------------------------------------------------- */

static void test_log_density_nan_z(void **state)
{
    (void)state;
    bsvi_proposal *q = make_proposal(2, 2, 0.0, -0.5);
    double z[8] = {0.1, 0.2, 0.3, 0.4, -0.1, -0.2, NAN, 0.5}; /* 2 samples per point */
    double lq[4];
    tu_fill(lq, 4, TU_SENTINEL);
    TU_STATUS(bsvi_proposal_log_density(q, 2, z, lq), BSVI_ERR_BAD_VALUE);
    TU_UNTOUCHED(lq, 4);
    TU_MESSAGE_MENTIONS(bsvi_proposal_last_error(q), "NaN");
    TU_MESSAGE_MENTIONS(bsvi_proposal_last_error(q), "row 3");
    /* An infinite latent is legal: zero density. */
    z[6] = INFINITY;
    TU_OK(bsvi_proposal_log_density(q, 2, z, lq));
    assert_true(lq[3] == -INFINITY);
    for (int i = 0; i < 3; ++i) {
        assert_true(isfinite(lq[i]));
    }
    bsvi_proposal_destroy(q);
}

/* ---- item 3: means of huge values -------------------------------------------------- */

static void test_health_overflow(void **state)
{
    (void)state;
    konst k = {{1e308, 1e308, -INFINITY}, {0.0, 0.0, 0.0}};
    bsvi_model *m = make_model(1, &k);
    bsvi_svi *svi = NULL;
    bsvi_trajectory *t = NULL;
    TU_OK(bsvi_svi_create(1, &svi));
    TU_OK(bsvi_svi_set_steps(svi, 2));
    TU_OK(bsvi_trajectory_create(&t));

    /* Two points at log w of about 1e308: the mean is about 1e308, not +inf. */
    bsvi_proposal *q2 = make_proposal(2, 1, 0.0, 0.0);
    TU_OK(bsvi_svi_run(svi, m, q2, t));
    double lw[6];
    TU_OK(bsvi_trajectory_get_log_weights(t, lw));
    bsvi_health h, hp;
    TU_OK(bsvi_trajectory_health(t, NULL, &h));
    TU_NEAR(h.svi0, lw[0] / 2 + lw[3] / 2, 1e293);
    TU_NEAR(h.svik, lw[2] / 2 + lw[5] / 2, 1e293);
    assert_true(isfinite(h.bsvik) && h.bsvik > 1e307);
    assert_true(h.zero_svi0 == 0 && h.zero_svik == 0 && h.zero_bsvik == 0);
    const double pi[3] = {0.25, 0.25, 0.5};
    bsvi_buffer_weights *w = NULL;
    TU_OK(bsvi_buffer_weights_create(3, &w));
    TU_OK(bsvi_buffer_weights_set_probs(w, pi, 3));
    TU_OK(bsvi_trajectory_health(t, w, &hp));
    assert_true(isfinite(hp.bsvik) && hp.bsvik > 1e307);

    /* A third point at -inf everywhere: never NaN; it is left out of every mean and counted,
     * and the means are bitwise those of the two points alone (same stream: counter 0). */
    bsvi_proposal *q3 = make_proposal(3, 1, 0.0, 0.0);
    TU_OK(bsvi_svi_set_stream(svi, 0, 0));
    TU_OK(bsvi_svi_run(svi, m, q2, t));
    TU_OK(bsvi_trajectory_health(t, NULL, &h));
    TU_OK(bsvi_trajectory_health(t, w, &hp));
    TU_OK(bsvi_svi_set_stream(svi, 0, 0));
    TU_OK(bsvi_svi_run(svi, m, q3, t));
    bsvi_health h3, h3p;
    TU_OK(bsvi_trajectory_health(t, NULL, &h3));
    TU_OK(bsvi_trajectory_health(t, w, &h3p));
    assert_true(h3.zero_svi0 == 1 && h3.zero_svik == 1 && h3.zero_bsvik == 1);
    assert_true(h3p.zero_svi0 == 1 && h3p.zero_svik == 1 && h3p.zero_bsvik == 1);
    TU_BITWISE(&h3.svi0, &h.svi0, 1);
    TU_BITWISE(&h3.svik, &h.svik, 1);
    TU_BITWISE(&h3.bsvik, &h.bsvik, 1);
    TU_BITWISE(&h3p.bsvik, &hp.bsvik, 1);
    assert_true(isfinite(h3.svi0) && isfinite(h3.svik) && isfinite(h3.bsvik));
    /* Every point at -inf: means over no point are -inf, never NaN. */
    konst kz = {{-INFINITY, -INFINITY, -INFINITY}, {0.0, 0.0, 0.0}};
    TU_OK(bsvi_model_set_likelihood(m, konst_lik, &kz));
    TU_OK(bsvi_svi_run(svi, m, q3, t));
    TU_OK(bsvi_trajectory_health(t, w, &h3));
    assert_true(h3.svi0 == -INFINITY && h3.svik == -INFINITY && h3.bsvik == -INFINITY);
    assert_true(h3.zero_svi0 == 3 && h3.zero_svik == 3 && h3.zero_bsvik == 3);

    /* Ordinary values: the plain mean, bitwise. */
    konst k2 = {{-3.0, -1.5, -2.25}, {0.0, 0.0, 0.0}};
    TU_OK(bsvi_model_set_likelihood(m, konst_lik, &k2));
    TU_OK(bsvi_svi_run(svi, m, q3, t));
    double lw3[9];
    TU_OK(bsvi_trajectory_get_log_weights(t, lw3));
    TU_OK(bsvi_trajectory_health(t, NULL, &h));
    const double e0 = (lw3[0] + lw3[3] + lw3[6]) / 3.0, ek = (lw3[2] + lw3[5] + lw3[8]) / 3.0;
    TU_BITWISE(&h.svi0, &e0, 1);
    TU_BITWISE(&h.svik, &ek, 1);

    bsvi_buffer_weights_destroy(w);
    bsvi_proposal_destroy(q2);
    bsvi_proposal_destroy(q3);
    bsvi_trajectory_destroy(t);
    bsvi_svi_destroy(svi);
    bsvi_model_destroy(m);
}

static void test_elbo_star_overflow(void **state)
{
    (void)state;
    bsvi_evaluator *ev = NULL;
    TU_OK(bsvi_evaluator_create(1, &ev));
    bsvi_proposal *q = make_proposal(2, 1, 0.0, -1.0);
    double e1[2], e2[2], kl[2], rc[2];

    /* A likelihood of 1e308: S = 2 works as S = 1 does (it used to report zero density). */
    konst k = {{1e308, 1e308}, {0.0, 0.0}};
    bsvi_model *m = make_model(1, &k);
    TU_OK(bsvi_evaluator_elbo_star(ev, m, q, 1, e1, NULL, NULL));
    TU_OK(bsvi_evaluator_elbo_star(ev, m, q, 2, e2, kl, rc));
    for (int b = 0; b < 2; ++b) {
        TU_NEAR(e1[b], 1e308, 1e296);
        TU_NEAR(e2[b], 1e308, 1e296);
        assert_true(isfinite(kl[b]) && isfinite(rc[b]));
    }
    TU_OK(bsvi_evaluator_elbo_star(ev, m, q, 1000, e2, kl, rc));
    for (int b = 0; b < 2; ++b) {
        TU_NEAR(e2[b], 1e308, 1e296);
        TU_NEAR(rc[b], -1e308, 1e296); /* Reconstruction* = -E log p(x|z) */
    }

    /* A host prior of +1e308: KL* = E(log q - log p(z)) is about -1e308, not -inf, and
     * Reconstruction* is finite. */
    konst k0 = {{0.0, 0.0}, {0.0, 0.0}};
    bsvi_model *mp = make_model(1, &k0);
    TU_OK(bsvi_model_set_prior(mp, huge_prior, NULL));
    for (size_t S = 1; S <= 64; S *= 4) {
        TU_OK(bsvi_evaluator_elbo_star(ev, mp, q, S, e2, kl, rc));
        for (int b = 0; b < 2; ++b) {
            TU_NEAR(e2[b], 1e308, 1e296);
            TU_NEAR(kl[b], -1e308, 1e296);
            assert_true(isfinite(rc[b]));
        }
    }

    /* A zero-density sample is still reported as such, outputs untouched. */
    konst kz = {{0.0, -INFINITY}, {0.0, 0.0}};
    bsvi_model *mz = make_model(1, &kz);
    tu_fill(e2, 2, TU_SENTINEL);
    TU_STATUS(bsvi_evaluator_elbo_star(ev, mz, q, 2, e2, NULL, NULL), BSVI_ERR_NUMERIC);
    TU_UNTOUCHED(e2, 2);
    TU_MESSAGE_MENTIONS(bsvi_evaluator_last_error(ev), "zero density");

    bsvi_model_destroy(mz);
    bsvi_model_destroy(mp);
    bsvi_model_destroy(m);
    bsvi_proposal_destroy(q);
    bsvi_evaluator_destroy(ev);
}

/* ---- item 4: a pi step that freezes a slot ------------------------------------------- */

static void test_pi_step_recentre_overflow(void **state)
{
    (void)state;
    bsvi_buffer_weights *w = NULL;
    TU_OK(bsvi_buffer_weights_create(2, &w));
    const double lj[4] = {0.0, -1.0, 0.5, -2.0}, lq[4] = {0.0, 0.0, 0.0, 0.0};
    TU_OK(bsvi_buffer_weights_accumulate_terms(w, 2, 2, lj, lq));
    TU_OK(bsvi_buffer_weights_set_adam(w, 1e308, 0.9, 0.999));
    double pi0[2], g0[2], pi1[2], g1[2], a0[2], a1[2];
    uint64_t c0 = 0, c1 = 0;
    TU_OK(bsvi_buffer_weights_get_probs(w, pi0, 2));
    TU_OK(bsvi_buffer_weights_get_logits(w, a0, 2));
    TU_OK(bsvi_buffer_weights_get_gradient(w, g0, &c0, 2));
    assert_true(c0 == 2);
    assert_true(g0[0] > 0.0 && g0[1] < 0.0); /* steps of about +1e308 and -1e308 */
    TU_STATUS(bsvi_buffer_weights_step(w), BSVI_ERR_NUMERIC);
    TU_MESSAGE_MENTIONS(bsvi_buffer_weights_last_error(w), "infinity");
    TU_OK(bsvi_buffer_weights_get_probs(w, pi1, 2));
    TU_OK(bsvi_buffer_weights_get_logits(w, a1, 2));
    TU_OK(bsvi_buffer_weights_get_gradient(w, g1, &c1, 2));
    TU_BITWISE(pi0, pi1, 2);
    TU_BITWISE(a0, a1, 2);
    TU_BITWISE(g0, g1, 2);
    assert_true(c1 == c0);
    uint64_t steps = 99;
    TU_OK(bsvi_buffer_weights_get_adam_state(w, NULL, NULL, &steps, 2));
    assert_true(steps == 0); /* the refused step left Adam's state as it was */
    /* A sane rate then steps, and the slot that lost weight can still move. */
    TU_OK(bsvi_buffer_weights_set_adam(w, 0.5, 0.9, 0.999));
    TU_OK(bsvi_buffer_weights_step(w));
    TU_OK(bsvi_buffer_weights_get_probs(w, pi1, 2));
    assert_true(pi1[0] > 0.5 && pi1[1] > 0.0 && pi1[1] < 0.5);
    bsvi_buffer_weights_destroy(w);
}

/* ---- item 5: huge finite directions ------------------------------------------------- */

/* One SVI step of a single point in dimension 2 with likelihood gradient G everywhere;
 * returns the step lambda_1 - lambda_0 (4 entries: mean, log-std). */
static bsvi_status one_step(double G, bsvi_step_rule rule, double clip,
                            bsvi_divergence_policy pol, double step[4], size_t *taken,
                            size_t *diverged)
{
    konst k = {{0.0}, {G}};
    bsvi_model *m = make_model(2, &k);
    bsvi_proposal *q = make_proposal(1, 2, 0.0, 0.0);
    bsvi_svi *svi = NULL;
    bsvi_trajectory *t = NULL;
    TU_OK(bsvi_svi_create(2, &svi));
    TU_OK(bsvi_svi_set_steps(svi, 3));
    TU_OK(bsvi_svi_set_step_size(svi, 0.1));
    TU_OK(bsvi_svi_set_step_rule(svi, rule));
    TU_OK(bsvi_svi_set_clip_norm(svi, clip));
    TU_OK(bsvi_svi_set_divergence_policy(svi, pol));
    TU_OK(bsvi_trajectory_create(&t));
    bsvi_status st = bsvi_svi_run(svi, m, q, t);
    if (st == BSVI_OK) {
        double mu[8], ls[8];
        TU_OK(bsvi_trajectory_get_params(t, mu, ls));
        step[0] = mu[2] - mu[0], step[1] = mu[3] - mu[1];
        step[2] = ls[2] - ls[0], step[3] = ls[3] - ls[1];
        TU_OK(bsvi_trajectory_get_steps_taken(t, taken));
        *diverged = bsvi_trajectory_num_diverged(t);
    } else {
        TU_MESSAGE_MENTIONS(bsvi_svi_last_error(svi), "diverged");
    }
    bsvi_trajectory_destroy(t);
    bsvi_svi_destroy(svi);
    bsvi_proposal_destroy(q);
    bsvi_model_destroy(m);
    return st;
}

static void test_clip_huge_direction(void **state)
{
    (void)state;
    double s150[4], s200[4], s300[4];
    size_t taken, nd;
    TU_OK(one_step(1e150, BSVI_STEP_GRADIENT, 1.0, BSVI_DIVERGENCE_FREEZE, s150, &taken, &nd));
    TU_OK(one_step(1e200, BSVI_STEP_GRADIENT, 1.0, BSVI_DIVERGENCE_FREEZE, s200, &taken, &nd));
    TU_OK(one_step(1e300, BSVI_STEP_GRADIENT, 1.0, BSVI_DIVERGENCE_FREEZE, s300, &taken, &nd));
    const double *steps[3] = {s150, s200, s300};
    for (int c = 0; c < 3; ++c) {
        const double *s = steps[c];
        const double nrm = sqrt(s[0] * s[0] + s[1] * s[1] + s[2] * s[2] + s[3] * s[3]);
        TU_NEAR(nrm, 0.1, 1e-12); /* eta * clip: the clipped step, never 0 */
        for (int j = 0; j < 4; ++j) {
            TU_NEAR(s[j], s150[j], 1e-12); /* the same direction at every scale */
        }
    }
    assert_int_equal(taken, 3);
    assert_int_equal(nd, 0);
}

static void test_adam_moment_overflow(void **state)
{
    (void)state;
    double s[4];
    size_t taken = 99, nd = 99;
    /* Adam's second moment of a 1e200 direction is +inf: divergence, not a frozen point
     * reported as healthy. */
    TU_OK(one_step(1e200, BSVI_STEP_ADAM, 0.0, BSVI_DIVERGENCE_FREEZE, s, &taken, &nd));
    assert_int_equal(taken, 0);
    assert_int_equal(nd, 1);
    TU_STATUS(one_step(1e200, BSVI_STEP_ADAM, 0.0, BSVI_DIVERGENCE_FAIL, s, &taken, &nd),
              BSVI_ERR_NUMERIC);
    /* The moderate case still moves (Adam's first step is about eta per coordinate). */
    TU_OK(one_step(1e100, BSVI_STEP_ADAM, 0.0, BSVI_DIVERGENCE_FREEZE, s, &taken, &nd));
    assert_int_equal(taken, 3);
    assert_int_equal(nd, 0);
    TU_NEAR(s[0], 0.1, 1e-6);
    /* Clipping keeps Adam's moments finite: the point moves. */
    TU_OK(one_step(1e200, BSVI_STEP_ADAM, 1.0, BSVI_DIVERGENCE_FREEZE, s, &taken, &nd));
    assert_int_equal(taken, 3);
    assert_int_equal(nd, 0);
    assert_true(s[0] > 0.05);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_density_nan_z),
        cmocka_unit_test(test_health_overflow),
        cmocka_unit_test(test_elbo_star_overflow),
        cmocka_unit_test(test_pi_step_recentre_overflow),
        cmocka_unit_test(test_clip_huge_direction),
        cmocka_unit_test(test_adam_moment_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
