/* test_svi.c: SVI-k refinement (Algorithm 1): configuration (the setters, the options
 * struct, the name helpers), the recorded buffer, the update rules and gradient forms
 * against hand computations, finite differences, the exact-posterior fixed point, ELBO
 * improvement, bitwise reproducibility, the stream and the statistics counters. */
#include "testutil.h"
#include "lingauss.h"

#include <float.h>
#include <stdlib.h>

#define LOG_2PI 1.8378770664093454835606594728112

/* ---- reference computations ------------------------------------------------------ */

/* Reference direction d/dlambda log w at z for data point b (lg offset 0), standard normal prior. */
static void ref_direction(const lg_model *lg, size_t b, bsvi_grad_form form, const double *mean,
                          const double *ls, const double *z, double *dm, double *ds)
{
    const size_t d = lg->d;
    lg_model v = lg_view(lg, 0);
    double glik[64], ld;
    assert_true(d <= 64);
    assert_int_equal(lg_likelihood(1, d, z, &b, &ld, glik, &v), 0);
    for (size_t j = 0; j < d; ++j) {
        const double sig = exp(ls[j]);
        const double eps = (z[j] - mean[j]) / sig;
        const double g = glik[j] - z[j];
        switch (form) {
        case BSVI_GRAD_PATHWISE:
            dm[j] = g;
            ds[j] = g * sig * eps + 1.0;
            break;
        case BSVI_GRAD_STL:
            dm[j] = g + eps / sig;
            ds[j] = g * sig * eps + eps * eps;
            break;
        default:
            dm[j] = glik[j] - mean[j];
            ds[j] = glik[j] * sig * eps - (sig * sig - 1.0);
            break;
        }
    }
}

static double ref_log_q(size_t d, const double *mean, const double *ls, const double *z)
{
    double r = 0.0;
    for (size_t j = 0; j < d; ++j) {
        const double e = (z[j] - mean[j]) / exp(ls[j]);
        r += -0.5 * LOG_2PI - ls[j] - 0.5 * e * e;
    }
    return r;
}

/* Poor-but-sane lambda_0 for every data point. */
static void poor_params(size_t B, size_t d, double *mean, double *ls)
{
    for (size_t b = 0; b < B; ++b) {
        for (size_t j = 0; j < d; ++j) {
            mean[b * d + j] = 0.3 * (double)((b + j) % 3) - 0.4;
            ls[b * d + j] = -0.2 + 0.15 * (double)((b * 7 + j) % 3);
        }
    }
}

/* ---- configuration ------------------------------------------------------------ */

static void test_defaults_and_setters(void **state)
{
    (void)state;
    bsvi_svi *svi = (bsvi_svi *)&svi;
    TU_STATUS(bsvi_svi_create(0, &svi), BSVI_ERR_ZERO_SIZE);
    assert_null(svi);
    TU_STATUS(bsvi_svi_create(BSVI_MAX_DIM + 1, &svi), BSVI_ERR_OUT_OF_RANGE);
    TU_STATUS(bsvi_svi_create(2, NULL), BSVI_ERR_NULL_ARGUMENT);
    TU_OK(bsvi_svi_create(2, &svi));
    assert_int_equal(bsvi_svi_steps(svi), 10);
    assert_true(bsvi_svi_step_size(svi) == 1e-3);
    assert_int_equal(bsvi_svi_steps(NULL), 0);
    assert_true(isnan(bsvi_svi_step_size(NULL)));
    assert_string_equal(bsvi_svi_last_error(svi), "");

    TU_OK(bsvi_svi_set_steps(svi, 0));
    TU_OK(bsvi_svi_set_steps(svi, BSVI_MAX_STEPS));
    TU_OK(bsvi_svi_set_steps(svi, 4));
    TU_STATUS(bsvi_svi_set_steps(svi, BSVI_MAX_STEPS + 1), BSVI_ERR_OUT_OF_RANGE);
    TU_MESSAGE(bsvi_svi_last_error(svi));
    assert_int_equal(bsvi_svi_steps(svi), 4);
    TU_STATUS(bsvi_svi_set_steps(NULL, 3), BSVI_ERR_NULL_ARGUMENT);

    TU_OK(bsvi_svi_set_step_size(svi, 0.25));
    const double bad_eta[] = {0.0, -1e-3, NAN, INFINITY, -INFINITY};
    for (size_t i = 0; i < sizeof bad_eta / sizeof bad_eta[0]; ++i) {
        TU_STATUS(bsvi_svi_set_step_size(svi, bad_eta[i]), BSVI_ERR_BAD_VALUE);
        TU_MESSAGE(bsvi_svi_last_error(svi));
        assert_true(bsvi_svi_step_size(svi) == 0.25);
    }
    TU_STATUS(bsvi_svi_set_step_size(NULL, 0.1), BSVI_ERR_NULL_ARGUMENT);

    TU_OK(bsvi_svi_set_samples_per_step(svi, 3));
    TU_STATUS(bsvi_svi_set_samples_per_step(svi, 0), BSVI_ERR_ZERO_SIZE);
    TU_STATUS(bsvi_svi_set_samples_per_step(svi, BSVI_MAX_SAMPLES + 1), BSVI_ERR_OUT_OF_RANGE);
    TU_STATUS(bsvi_svi_set_samples_per_step(NULL, 1), BSVI_ERR_NULL_ARGUMENT);

    TU_OK(bsvi_svi_set_step_rule(svi, BSVI_STEP_ADAM));
    TU_STATUS(bsvi_svi_set_step_rule(svi, (bsvi_step_rule)3), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_svi_set_step_rule(svi, (bsvi_step_rule)-1), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_svi_set_step_rule(NULL, BSVI_STEP_ADAM), BSVI_ERR_NULL_ARGUMENT);

    TU_OK(bsvi_svi_set_momentum(svi, 0.0));
    TU_OK(bsvi_svi_set_momentum(svi, 0.9));
    TU_STATUS(bsvi_svi_set_momentum(svi, 1.0), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_svi_set_momentum(svi, -0.1), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_svi_set_momentum(svi, NAN), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_svi_set_momentum(NULL, 0.5), BSVI_ERR_NULL_ARGUMENT);

    TU_OK(bsvi_svi_set_adam(svi, 0.0, 0.0, 1e-8));
    TU_STATUS(bsvi_svi_set_adam(svi, 1.0, 0.999, 1e-8), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_svi_set_adam(svi, 0.9, 1.0, 1e-8), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_svi_set_adam(svi, -0.1, 0.999, 1e-8), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_svi_set_adam(svi, 0.9, 0.999, 0.0), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_svi_set_adam(svi, 0.9, 0.999, NAN), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_svi_set_adam(svi, NAN, 0.999, 1e-8), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_svi_set_adam(NULL, 0.9, 0.999, 1e-8), BSVI_ERR_NULL_ARGUMENT);

    TU_OK(bsvi_svi_set_clip_norm(svi, 0.0));
    TU_OK(bsvi_svi_set_clip_norm(svi, 5.0));
    TU_STATUS(bsvi_svi_set_clip_norm(svi, -1.0), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_svi_set_clip_norm(svi, NAN), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_svi_set_clip_norm(svi, INFINITY), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_svi_set_clip_norm(NULL, 1.0), BSVI_ERR_NULL_ARGUMENT);

    TU_OK(bsvi_svi_set_grad_form(svi, BSVI_GRAD_STL));
    TU_OK(bsvi_svi_set_grad_form(svi, BSVI_GRAD_ANALYTIC_KL));
    TU_OK(bsvi_svi_set_grad_form(svi, BSVI_GRAD_PATHWISE));
    TU_STATUS(bsvi_svi_set_grad_form(svi, BSVI_GRAD_DREG), BSVI_ERR_BAD_VALUE);
    TU_MESSAGE(bsvi_svi_last_error(svi));
    TU_STATUS(bsvi_svi_set_grad_form(svi, (bsvi_grad_form)9), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_svi_set_grad_form(NULL, BSVI_GRAD_STL), BSVI_ERR_NULL_ARGUMENT);

    TU_OK(bsvi_svi_set_double_sampling(svi, 1));
    TU_OK(bsvi_svi_set_double_sampling(svi, 0));
    TU_STATUS(bsvi_svi_set_double_sampling(svi, 2), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_svi_set_double_sampling(svi, -1), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_svi_set_double_sampling(NULL, 1), BSVI_ERR_NULL_ARGUMENT);

    TU_STATUS(bsvi_svi_set_seed(NULL, 1), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_svi_set_stream(NULL, 1, 2), BSVI_ERR_NULL_ARGUMENT);
    bsvi_svi_destroy(svi);
    bsvi_svi_destroy(NULL);
}

/* ---- the recorded buffer and the update rules ------------------------------------ */

typedef struct rule_case {
    bsvi_step_rule rule;
    bsvi_grad_form form;
    double clip;
} rule_case;

static void check_steps(const lg_model *lg, const tu_traj *t, const double *mean0,
                        const double *ls0, rule_case rc, double eta, double beta,
                        double b1, double b2, double aeps)
{
    const size_t B = t->B, k = t->k, d = t->d, k1 = k + 1;
    for (size_t b = 0; b < B; ++b) {
        /* lambda_0 is the proposal's parameters, bitwise. */
        TU_BITWISE(&t->mean[b * k1 * d], &mean0[b * d], d);
        TU_BITWISE(&t->ls[b * k1 * d], &ls0[b * d], d);
        double mom[32] = {0}, m1[32] = {0}, v2[32] = {0};
        assert_true(2 * d <= 32);
        for (size_t i = 0; i <= k; ++i) {
            const size_t row = b * k1 + i;
            const double *mu = &t->mean[row * d], *ls = &t->ls[row * d], *z = &t->z[row * d];
            const double lp = lg_log_joint(lg, b, z);
            TU_NEAR(t->lp[row], lp, 1e-12 * (1.0 + fabs(lp)));
            const double lq = ref_log_q(d, mu, ls, z);
            TU_NEAR(t->lq[row], lq, 1e-11 * (1.0 + fabs(lq)));
            TU_NEAR(t->lw[row], t->lp[row] - t->lq[row], 1e-12 * (1.0 + fabs(t->lw[row])));
            if (i == k) {
                break;
            }
            double dir[32];
            ref_direction(lg, b, rc.form, mu, ls, z, dir, dir + d);
            if (i == 0) {
                for (size_t j = 0; j < d; ++j) {
                    TU_NEAR(t->gm[b * d + j], dir[j], 1e-10 * (1.0 + fabs(dir[j])));
                    TU_NEAR(t->gs[b * d + j], dir[d + j], 1e-10 * (1.0 + fabs(dir[d + j])));
                }
            }
            if (rc.clip > 0.0) {
                double nrm = 0.0;
                for (size_t j = 0; j < 2 * d; ++j) {
                    nrm += dir[j] * dir[j];
                }
                nrm = sqrt(nrm);
                if (nrm > rc.clip) {
                    for (size_t j = 0; j < 2 * d; ++j) {
                        dir[j] *= rc.clip / nrm;
                    }
                }
            }
            const double tstep = (double)(i + 1);
            for (size_t j = 0; j < 2 * d; ++j) {
                double step;
                if (rc.rule == BSVI_STEP_GRADIENT) {
                    step = eta * dir[j];
                } else if (rc.rule == BSVI_STEP_MOMENTUM) {
                    mom[j] = beta * mom[j] + dir[j];
                    step = eta * mom[j];
                } else {
                    m1[j] = b1 * m1[j] + (1.0 - b1) * dir[j];
                    v2[j] = b2 * v2[j] + (1.0 - b2) * dir[j] * dir[j];
                    const double mh = m1[j] / (1.0 - pow(b1, tstep));
                    const double vh = v2[j] / (1.0 - pow(b2, tstep));
                    step = eta * mh / (sqrt(vh) + aeps);
                }
                const double before = j < d ? mu[j] : ls[j - d];
                const double after = j < d ? t->mean[(row + 1) * d + j]
                                           : t->ls[(row + 1) * d + (j - d)];
                /* Adam's epsilon placement (sqrt(vhat) + eps) may differ by ~eps/|d| relative
                 * in the step: allow 1e-7 * eta there, 1e-10 for the exact rules. */
                const double tol = rc.rule == BSVI_STEP_ADAM ? 1e-7 * eta + 1e-10 : 1e-10;
                TU_NEAR(after, before + step, tol * (1.0 + fabs(before)));
            }
        }
    }
}

static void test_buffer_and_rules(void **state)
{
    (void)state;
    const size_t B = 4, d = 3, D = 5, k = 4;
    lg_model lg;
    assert_int_equal(lg_init(&lg, d, D, B, 0.8, 0, 101), 0);
    bsvi_model *model = NULL;
    TU_OK(lg_make_model(&lg, &model));
    double mean0[12], ls0[12];
    poor_params(B, d, mean0, ls0);
    bsvi_proposal *q = NULL;
    TU_OK(lg_make_proposal(B, d, mean0, ls0, &q));
    const rule_case cases[] = {
        {BSVI_STEP_GRADIENT, BSVI_GRAD_PATHWISE, 0.0},
        {BSVI_STEP_GRADIENT, BSVI_GRAD_STL, 0.0},
        {BSVI_STEP_GRADIENT, BSVI_GRAD_ANALYTIC_KL, 0.0},
        {BSVI_STEP_MOMENTUM, BSVI_GRAD_PATHWISE, 0.0},
        {BSVI_STEP_ADAM, BSVI_GRAD_PATHWISE, 0.0},
        {BSVI_STEP_GRADIENT, BSVI_GRAD_PATHWISE, 0.5},
        {BSVI_STEP_MOMENTUM, BSVI_GRAD_STL, 0.7},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; ++c) {
        bsvi_svi *svi = NULL;
        bsvi_trajectory *t = NULL;
        TU_OK(bsvi_svi_create(d, &svi));
        TU_OK(bsvi_trajectory_create(&t));
        TU_OK(bsvi_svi_set_steps(svi, k));
        const double eta = 0.05;
        TU_OK(bsvi_svi_set_step_size(svi, eta));
        TU_OK(bsvi_svi_set_step_rule(svi, cases[c].rule));
        TU_OK(bsvi_svi_set_grad_form(svi, cases[c].form));
        TU_OK(bsvi_svi_set_clip_norm(svi, cases[c].clip));
        TU_OK(bsvi_svi_set_seed(svi, 1000 + c));
        double beta = 0.5, b1 = 0.9, b2 = 0.999, aeps = 1e-8; /* documented defaults */
        if (c == 6) {
            beta = 0.8;
            TU_OK(bsvi_svi_set_momentum(svi, beta));
        }
        TU_OK(bsvi_svi_run(svi, model, q, t));
        assert_int_equal(bsvi_trajectory_batch(t), B);
        assert_int_equal(bsvi_trajectory_steps(t), k);
        assert_int_equal(bsvi_trajectory_dim(t), d);
        assert_int_equal(bsvi_trajectory_is_double_sampled(t), 0);
        tu_traj s;
        tu_traj_read(t, &s);
        check_steps(&lg, &s, mean0, ls0, cases[c], eta, beta, b1, b2, aeps);
        /* The proposal is not modified by the run. */
        double m[12], l[12];
        TU_OK(bsvi_proposal_get_params(q, m, l));
        TU_BITWISE(m, mean0, B * d);
        TU_BITWISE(l, ls0, B * d);
        tu_traj_free(&s);
        bsvi_svi_destroy(svi);
        bsvi_trajectory_destroy(t);
    }
    /* Adam with non-default parameters. */
    {
        bsvi_svi *svi = NULL;
        bsvi_trajectory *t = NULL;
        TU_OK(bsvi_svi_create(d, &svi));
        TU_OK(bsvi_trajectory_create(&t));
        TU_OK(bsvi_svi_set_steps(svi, 3));
        TU_OK(bsvi_svi_set_step_size(svi, 0.02));
        TU_OK(bsvi_svi_set_step_rule(svi, BSVI_STEP_ADAM));
        TU_OK(bsvi_svi_set_adam(svi, 0.5, 0.9, 1e-6));
        TU_OK(bsvi_svi_run(svi, model, q, t));
        tu_traj s;
        tu_traj_read(t, &s);
        const rule_case rc = {BSVI_STEP_ADAM, BSVI_GRAD_PATHWISE, 0.0};
        check_steps(&lg, &s, mean0, ls0, rc, 0.02, 0.5, 0.5, 0.9, 1e-6);
        tu_traj_free(&s);
        bsvi_svi_destroy(svi);
        bsvi_trajectory_destroy(t);
    }
    bsvi_proposal_destroy(q);
    bsvi_model_destroy(model);
    lg_free(&lg);
}

/* k = 0: the buffer holds only the encoder's sample; the encoder gradient is still there. */
static void test_zero_steps(void **state)
{
    (void)state;
    const size_t B = 3, d = 2;
    lg_model lg;
    assert_int_equal(lg_init(&lg, d, 4, B, 0.9, 0, 7), 0);
    bsvi_model *model = NULL;
    TU_OK(lg_make_model(&lg, &model));
    double mean0[6], ls0[6];
    poor_params(B, d, mean0, ls0);
    bsvi_proposal *q = NULL;
    TU_OK(lg_make_proposal(B, d, mean0, ls0, &q));
    bsvi_svi *svi = NULL;
    bsvi_trajectory *t = NULL;
    TU_OK(bsvi_svi_create(d, &svi));
    TU_OK(bsvi_trajectory_create(&t));
    TU_OK(bsvi_svi_set_steps(svi, 0));
    TU_OK(bsvi_svi_run(svi, model, q, t));
    assert_int_equal(bsvi_trajectory_batch(t), B);
    assert_int_equal(bsvi_trajectory_steps(t), 0);
    tu_traj s;
    tu_traj_read(t, &s);
    const rule_case rc = {BSVI_STEP_GRADIENT, BSVI_GRAD_PATHWISE, 0.0};
    check_steps(&lg, &s, mean0, ls0, rc, 1e-3, 0.5, 0.9, 0.999, 1e-8);
    /* One callback call per step: k = 0 means exactly one likelihood call. */
    assert_int_equal(lg.calls, 1);
    tu_traj_free(&s);
    bsvi_svi_destroy(svi);
    bsvi_trajectory_destroy(t);
    bsvi_proposal_destroy(q);
    bsvi_model_destroy(model);
    lg_free(&lg);
}

/* d/dlambda log w (pathwise) against central finite differences of log w at fixed eps,
 * where log w is evaluated only through the public API (bsvi_model_log_joint and
 * bsvi_proposal_log_density); eps is recovered from the trajectory's z_0 and lambda_0. */
static void test_gradient_finite_differences(void **state)
{
    (void)state;
    const size_t B = 3, d = 3, D = 6;
    lg_model lg;
    assert_int_equal(lg_init(&lg, d, D, B, 0.7, 0, 55), 0);
    bsvi_model *model = NULL;
    TU_OK(lg_make_model(&lg, &model));
    double mean0[9], ls0[9];
    poor_params(B, d, mean0, ls0);
    bsvi_proposal *q = NULL, *one = NULL;
    TU_OK(lg_make_proposal(B, d, mean0, ls0, &q));
    TU_OK(bsvi_proposal_create(1, d, &one));
    bsvi_svi *svi = NULL;
    bsvi_trajectory *t = NULL;
    TU_OK(bsvi_svi_create(d, &svi));
    TU_OK(bsvi_trajectory_create(&t));
    const size_t ks[2] = {0, 2};
    for (size_t kk = 0; kk < 2; ++kk) {
        TU_OK(bsvi_svi_set_steps(svi, ks[kk]));
        TU_OK(bsvi_svi_set_samples_per_step(svi, 1));
        TU_OK(bsvi_svi_set_grad_form(svi, BSVI_GRAD_PATHWISE));
        TU_OK(bsvi_svi_run(svi, model, q, t));
        tu_traj s;
        tu_traj_read(t, &s);
        const size_t k1 = ks[kk] + 1;
        for (size_t b = 0; b < B; ++b) {
            const double *mu = &s.mean[b * k1 * d], *ls = &s.ls[b * k1 * d];
            const double *z0 = &s.z[b * k1 * d];
            double eps[3];
            for (size_t j = 0; j < d; ++j) {
                eps[j] = (z0[j] - mu[j]) / exp(ls[j]);
            }
            for (size_t p = 0; p < 2 * d; ++p) {
                double f[2];
                for (int sgn = 0; sgn < 2; ++sgn) {
                    const double h = 1e-5;
                    double m2[3], l2[3], z2[3], lj, lqv;
                    memcpy(m2, mu, sizeof m2);
                    memcpy(l2, ls, sizeof l2);
                    if (p < d) {
                        m2[p] += sgn ? -h : h;
                    } else {
                        l2[p - d] += sgn ? -h : h;
                    }
                    for (size_t j = 0; j < d; ++j) {
                        z2[j] = m2[j] + exp(l2[j]) * eps[j];
                    }
                    TU_OK(bsvi_proposal_set_params(one, m2, l2));
                    TU_OK(bsvi_proposal_log_density(one, 1, z2, &lqv));
                    TU_OK(bsvi_model_log_joint(model, 1, z2, &b, &lj, NULL));
                    f[sgn] = lj - lqv;
                }
                const double fd = (f[0] - f[1]) / 2e-5;
                const double an = p < d ? s.gm[b * d + p] : s.gs[b * d + p - d];
                /* Central differences with h = 1e-5: truncation O(h^2 * |f'''|) ~ 1e-9 and
                 * rounding ~1e-16 * |log w| / h ~ 1e-10; 1e-6 leaves a wide margin. */
                TU_NEAR(an, fd, 1e-6 * (1.0 + fabs(fd)));
            }
        }
        tu_traj_free(&s);
    }
    bsvi_svi_destroy(svi);
    bsvi_trajectory_destroy(t);
    bsvi_proposal_destroy(q);
    bsvi_proposal_destroy(one);
    bsvi_model_destroy(model);
    lg_free(&lg);
}

/* The three gradient forms agree in expectation, with the exact ELBO gradient.
 * B = 4000 replicates of one data point (independent noise per data point), k = 0, so each
 * data point's encoder gradient is an independent draw of the estimator; also m = 4 samples
 * per step with B = 1000. Tolerance: 5 standard errors estimated from the replicates, per
 * coordinate (6 coordinates x 3 forms x 2 settings = 36 checks). Seeds are fixed, so the test
 * is deterministic; for a correct implementation and a random seed the chance that any check
 * fails is about 36 * 5.7e-7 = 2e-5. */
static void test_gradient_forms_expectation(void **state)
{
    (void)state;
    const size_t d = 3, D = 5;
    const size_t Bs[2] = {4000, 1000}, ms[2] = {1, 4};
    for (size_t setting = 0; setting < 2; ++setting) {
        const size_t B = Bs[setting];
        lg_model lg;
        assert_int_equal(lg_init(&lg, d, D, B, 0.8, 0, 77), 0);
        lg_replicate(&lg);
        bsvi_model *model = NULL;
        TU_OK(lg_make_model(&lg, &model));
        double *mean0 = tu_alloc(B * d), *ls0 = tu_alloc(B * d);
        const double m_init[3] = {0.4, -0.3, 0.2}, l_init[3] = {-0.5, 0.1, -0.2};
        for (size_t b = 0; b < B; ++b) {
            memcpy(&mean0[b * d], m_init, sizeof m_init);
            memcpy(&ls0[b * d], l_init, sizeof l_init);
        }
        double exact_m[3], exact_s[3];
        (void)lg_exact_elbo(&lg, 0, m_init, l_init, exact_m, exact_s);
        bsvi_proposal *q = NULL;
        TU_OK(lg_make_proposal(B, d, mean0, ls0, &q));
        const bsvi_grad_form forms[3] = {BSVI_GRAD_PATHWISE, BSVI_GRAD_STL,
                                         BSVI_GRAD_ANALYTIC_KL};
        double *gm = tu_alloc(B * d), *gs = tu_alloc(B * d), *col = tu_alloc(B);
        for (size_t f = 0; f < 3; ++f) {
            bsvi_svi *svi = NULL;
            bsvi_trajectory *t = NULL;
            TU_OK(bsvi_svi_create(d, &svi));
            TU_OK(bsvi_trajectory_create(&t));
            TU_OK(bsvi_svi_set_steps(svi, 0));
            TU_OK(bsvi_svi_set_samples_per_step(svi, ms[setting]));
            TU_OK(bsvi_svi_set_grad_form(svi, forms[f]));
            TU_OK(bsvi_svi_set_seed(svi, 4242 + 17 * f + setting));
            TU_OK(bsvi_svi_run(svi, model, q, t));
            TU_OK(bsvi_trajectory_get_encoder_grad(t, gm, gs));
            for (size_t p = 0; p < 2 * d; ++p) {
                for (size_t b = 0; b < B; ++b) {
                    col[b] = p < d ? gm[b * d + p] : gs[b * d + p - d];
                }
                double mn, se;
                tu_mean_se(col, B, &mn, &se);
                const double exact = p < d ? exact_m[p] : exact_s[p - d];
                if (!(fabs(mn - exact) <= 5.0 * se + 1e-12)) {
                    print_error("form %d m=%zu coord %zu: mean %.6g exact %.6g se %.3g\n",
                                (int)forms[f], ms[setting], p, mn, exact, se);
                    fail();
                }
            }
            bsvi_svi_destroy(svi);
            bsvi_trajectory_destroy(t);
        }
        free(gm);
        free(gs);
        free(col);
        free(mean0);
        free(ls0);
        bsvi_proposal_destroy(q);
        bsvi_model_destroy(model);
        lg_free(&lg);
    }
}

/* q equal to the exact (diagonal) posterior: with STL every recorded log w equals log p(x)
 * to 1e-10 and q stays put; with the total pathwise gradient q moves off the posterior. */
static void test_exact_posterior_fixed_point(void **state)
{
    (void)state;
    const size_t B = 6, d = 3, D = 5, k = 6;
    lg_model lg;
    assert_int_equal(lg_init(&lg, d, D, B, 0.8, 1, 31), 0);
    bsvi_model *model = NULL;
    TU_OK(lg_make_model(&lg, &model));
    double mean0[18], ls0[18], logpx[6];
    for (size_t b = 0; b < B; ++b) {
        lg_posterior_diag(&lg, b, &mean0[b * d], &ls0[b * d]);
        logpx[b] = lg_log_marginal(&lg, b);
    }
    bsvi_proposal *q = NULL;
    TU_OK(lg_make_proposal(B, d, mean0, ls0, &q));
    for (int form = 0; form < 2; ++form) {
        bsvi_svi *svi = NULL;
        bsvi_trajectory *t = NULL;
        TU_OK(bsvi_svi_create(d, &svi));
        TU_OK(bsvi_trajectory_create(&t));
        TU_OK(bsvi_svi_set_steps(svi, k));
        TU_OK(bsvi_svi_set_step_size(svi, 0.05));
        TU_OK(bsvi_svi_set_grad_form(svi, form == 0 ? BSVI_GRAD_STL : BSVI_GRAD_PATHWISE));
        TU_OK(bsvi_svi_set_seed(svi, 8));
        TU_OK(bsvi_svi_run(svi, model, q, t));
        tu_traj s;
        tu_traj_read(t, &s);
        for (size_t b = 0; b < B; ++b) {
            const size_t base = b * (k + 1);
            /* The first weight is exact for both forms. */
            TU_NEAR(s.lw[base], logpx[b], 1e-10);
            if (form == 0) {
                for (size_t i = 0; i <= k; ++i) {
                    TU_NEAR(s.lw[base + i], logpx[b], 1e-10);
                    for (size_t j = 0; j < d; ++j) {
                        TU_NEAR(s.mean[(base + i) * d + j], mean0[b * d + j], 1e-12);
                        TU_NEAR(s.ls[(base + i) * d + j], ls0[b * d + j], 1e-12);
                    }
                }
                for (size_t j = 0; j < d; ++j) {
                    TU_NEAR(s.gm[b * d + j], 0.0, 1e-12);
                    TU_NEAR(s.gs[b * d + j], 0.0, 1e-12);
                }
            } else {
                double moved = 0.0, off = 0.0;
                for (size_t j = 0; j < d; ++j) {
                    moved = fmax(moved, fabs(s.mean[(base + k) * d + j] - mean0[b * d + j]));
                    moved = fmax(moved, fabs(s.ls[(base + k) * d + j] - ls0[b * d + j]));
                }
                for (size_t i = 1; i <= k; ++i) {
                    off = fmax(off, fabs(s.lw[base + i] - logpx[b]));
                }
                /* Pathwise direction at the posterior: -eps/sigma and 1 - eps^2, O(1) noise,
                 * so eta = 0.05 moves lambda by O(0.05): far above 1e-6. */
                if (!(moved > 1e-6 && off > 1e-8)) {
                    print_error("pathwise SVI did not move q off the posterior (b=%zu: moved "
                                "%.3g, log w off by %.3g)\n",
                                b, moved, off);
                    fail();
                }
            }
        }
        tu_traj_free(&s);
        bsvi_svi_destroy(svi);
        bsvi_trajectory_destroy(t);
    }
    bsvi_proposal_destroy(q);
    bsvi_model_destroy(model);
    lg_free(&lg);
}

/* Small-step SVI from a poor lambda_0 raises the ELBO. Deterministic part: the exact ELBO of
 * lambda_k (closed form for the linear-Gaussian model) exceeds that of lambda_0 for every data
 * point. Monte Carlo part: over B = 500 replicates, mean(log w_k - log w_0) > 5 standard
 * errors of the paired difference (fixed seed, so deterministic; the true improvement is
 * several nats and the SE about 0.1, so the margin is large). */
static void test_svi_raises_elbo(void **state)
{
    (void)state;
    const size_t B = 500, d = 3, D = 5, k = 20;
    lg_model lg;
    assert_int_equal(lg_init(&lg, d, D, B, 0.8, 0, 13), 0);
    lg_replicate(&lg);
    bsvi_model *model = NULL;
    TU_OK(lg_make_model(&lg, &model));
    double *mean0 = tu_alloc(B * d), *ls0 = tu_alloc(B * d);
    double post_m[3], post_s[3];
    lg_posterior_diag(&lg, 0, post_m, post_s);
    for (size_t b = 0; b < B; ++b) {
        for (size_t j = 0; j < d; ++j) {
            mean0[b * d + j] = post_m[j] + 1.5; /* poor: shifted and too wide */
            ls0[b * d + j] = post_s[j] + 0.7;
        }
    }
    bsvi_proposal *q = NULL;
    TU_OK(lg_make_proposal(B, d, mean0, ls0, &q));
    bsvi_svi *svi = NULL;
    bsvi_trajectory *t = NULL;
    TU_OK(bsvi_svi_create(d, &svi));
    TU_OK(bsvi_trajectory_create(&t));
    TU_OK(bsvi_svi_set_steps(svi, k));
    TU_OK(bsvi_svi_set_step_size(svi, 0.02));
    TU_OK(bsvi_svi_set_seed(svi, 2019));
    TU_OK(bsvi_svi_run(svi, model, q, t));
    tu_traj s;
    tu_traj_read(t, &s);
    double *w0 = tu_alloc(B), *wk = tu_alloc(B);
    for (size_t b = 0; b < B; ++b) {
        const size_t base = b * (k + 1);
        w0[b] = s.lw[base];
        wk[b] = s.lw[base + k];
        const double e0 = lg_exact_elbo(&lg, b, &s.mean[base * d], &s.ls[base * d], NULL, NULL);
        const double ek =
            lg_exact_elbo(&lg, b, &s.mean[(base + k) * d], &s.ls[(base + k) * d], NULL, NULL);
        if (!(ek > e0)) {
            print_error("b=%zu: exact ELBO did not rise: %.6g -> %.6g\n", b, e0, ek);
            fail();
        }
    }
    double mn, se;
    tu_diff_mean_se(wk, w0, B, &mn, &se);
    if (!(mn > 5.0 * se)) {
        print_error("mean log w_k - log w_0 = %.4g, se %.3g\n", mn, se);
        fail();
    }
    free(w0);
    free(wk);
    free(mean0);
    free(ls0);
    tu_traj_free(&s);
    bsvi_svi_destroy(svi);
    bsvi_trajectory_destroy(t);
    bsvi_proposal_destroy(q);
    bsvi_model_destroy(model);
    lg_free(&lg);
}

/* Double sampling: the recorded z_i are drawn independently of the update samples. */
static void test_double_sampling(void **state)
{
    (void)state;
    const size_t B = 3, d = 2, k = 3;
    lg_model lg;
    assert_int_equal(lg_init(&lg, d, 4, B, 0.9, 0, 17), 0);
    bsvi_model *model = NULL;
    TU_OK(lg_make_model(&lg, &model));
    double mean0[6], ls0[6];
    poor_params(B, d, mean0, ls0);
    bsvi_proposal *q = NULL;
    TU_OK(lg_make_proposal(B, d, mean0, ls0, &q));
    bsvi_svi *svi = NULL;
    bsvi_trajectory *t = NULL;
    TU_OK(bsvi_svi_create(d, &svi));
    TU_OK(bsvi_trajectory_create(&t));
    TU_OK(bsvi_svi_set_steps(svi, k));
    TU_OK(bsvi_svi_set_step_size(svi, 0.05));
    TU_OK(bsvi_svi_set_double_sampling(svi, 1));
    TU_OK(bsvi_svi_run(svi, model, q, t));
    assert_int_equal(bsvi_trajectory_is_double_sampled(t), 1);
    tu_traj s;
    tu_traj_read(t, &s);
    for (size_t b = 0; b < B; ++b) {
        for (size_t i = 0; i <= k; ++i) {
            const size_t row = b * (k + 1) + i;
            const double *z = &s.z[row * d];
            TU_NEAR(s.lp[row], lg_log_joint(&lg, b, z), 1e-12 * (1.0 + fabs(s.lp[row])));
            TU_NEAR(s.lq[row], ref_log_q(d, &s.mean[row * d], &s.ls[row * d], z), 1e-11);
            TU_NEAR(s.lw[row], s.lp[row] - s.lq[row], 1e-12 * (1.0 + fabs(s.lw[row])));
        }
        /* Plain rule: lambda_1 - lambda_0 = eta * encoder gradient (the update direction) ... */
        const size_t r0 = b * (k + 1);
        for (size_t j = 0; j < d; ++j) {
            TU_NEAR(s.mean[(r0 + 1) * d + j], s.mean[r0 * d + j] + 0.05 * s.gm[b * d + j],
                    1e-12);
            TU_NEAR(s.ls[(r0 + 1) * d + j], s.ls[r0 * d + j] + 0.05 * s.gs[b * d + j], 1e-12);
        }
        /* ... which is not the gradient at the recorded z_0 (an independent draw). */
        double dm[2], ds[2];
        ref_direction(&lg, b, BSVI_GRAD_PATHWISE, &s.mean[r0 * d], &s.ls[r0 * d],
                      &s.z[r0 * d], dm, ds);
        double diff = 0.0;
        for (size_t j = 0; j < d; ++j) {
            diff = fmax(diff, fabs(dm[j] - s.gm[b * d + j]));
        }
        assert_true(diff > 1e-6);
    }
    tu_traj_free(&s);
    bsvi_svi_destroy(svi);
    bsvi_trajectory_destroy(t);
    bsvi_proposal_destroy(q);
    bsvi_model_destroy(model);
    lg_free(&lg);
}

/* Rows with log p = -INFINITY contribute a zero gradient: that data point's lambda stays. */
static int neg_inf_for_first(size_t n, size_t dim, const double *z, const size_t *data_index,
                             double *log_density, double *grad, void *user_data)
{
    int rc = lg_likelihood(n, dim, z, data_index, log_density, grad, user_data);
    for (size_t r = 0; r < n; ++r) {
        if (data_index[r] == 0) {
            log_density[r] = -INFINITY;
            if (grad != NULL) {
                for (size_t j = 0; j < dim; ++j) {
                    grad[r * dim + j] = NAN; /* ignored for -INFINITY rows */
                }
            }
        }
    }
    return rc;
}

static void test_neg_inf_rows(void **state)
{
    (void)state;
    const size_t B = 3, d = 2, k = 3;
    lg_model lg;
    assert_int_equal(lg_init(&lg, d, 4, B, 0.9, 0, 19), 0);
    bsvi_model *model = NULL;
    TU_OK(bsvi_model_create(d, &model));
    TU_OK(bsvi_model_set_likelihood(model, neg_inf_for_first, &lg));
    double mean0[6], ls0[6];
    poor_params(B, d, mean0, ls0);
    bsvi_proposal *q = NULL;
    TU_OK(lg_make_proposal(B, d, mean0, ls0, &q));
    bsvi_svi *svi = NULL;
    bsvi_trajectory *t = NULL;
    TU_OK(bsvi_svi_create(d, &svi));
    TU_OK(bsvi_trajectory_create(&t));
    TU_OK(bsvi_svi_set_steps(svi, k));
    TU_OK(bsvi_svi_set_step_size(svi, 0.05));
    TU_OK(bsvi_svi_run(svi, model, q, t));
    tu_traj s;
    tu_traj_read(t, &s);
    for (size_t i = 0; i <= k; ++i) {
        assert_true(isinf(s.lw[i]) && s.lw[i] < 0);
        TU_BITWISE(&s.mean[i * d], mean0, d);
        TU_BITWISE(&s.ls[i * d], ls0, d);
    }
    assert_true(s.gm[0] == 0.0 && s.gm[1] == 0.0 && s.gs[0] == 0.0 && s.gs[1] == 0.0);
    for (size_t b = 1; b < B; ++b) {
        for (size_t i = 0; i <= k; ++i) {
            assert_true(isfinite(s.lw[b * (k + 1) + i]));
        }
    }
    tu_traj_free(&s);
    bsvi_svi_destroy(svi);
    bsvi_trajectory_destroy(t);
    bsvi_proposal_destroy(q);
    bsvi_model_destroy(model);
    lg_free(&lg);
}

/* Same seed: bitwise-identical trajectories; a batch split in two with set_stream(counter,
 * id_offset) reproduces the whole batch bitwise (plain, and Adam + double sampling + m = 3). */
static void test_reproducibility_and_split(void **state)
{
    (void)state;
    const size_t B = 6, B1 = 2, d = 3, D = 5;
    lg_model lg;
    assert_int_equal(lg_init(&lg, d, D, B, 0.8, 0, 23), 0);
    lg_model second = lg_view(&lg, B1);
    bsvi_model *model = NULL, *model2 = NULL;
    TU_OK(lg_make_model(&lg, &model));
    TU_OK(lg_make_model(&second, &model2));
    double mean0[18], ls0[18];
    poor_params(B, d, mean0, ls0);
    bsvi_proposal *q = NULL, *q1 = NULL, *q2 = NULL;
    TU_OK(lg_make_proposal(B, d, mean0, ls0, &q));
    TU_OK(lg_make_proposal(B1, d, mean0, ls0, &q1));
    TU_OK(lg_make_proposal(B - B1, d, mean0 + B1 * d, ls0 + B1 * d, &q2));
    for (int variant = 0; variant < 2; ++variant) {
        bsvi_svi *a = NULL, *b = NULL;
        bsvi_trajectory *ta = NULL, *tb = NULL, *t1 = NULL, *t2 = NULL;
        TU_OK(bsvi_svi_create(d, &a));
        TU_OK(bsvi_svi_create(d, &b));
        TU_OK(bsvi_trajectory_create(&ta));
        TU_OK(bsvi_trajectory_create(&tb));
        TU_OK(bsvi_trajectory_create(&t1));
        TU_OK(bsvi_trajectory_create(&t2));
        bsvi_svi *both[2] = {a, b};
        for (int h = 0; h < 2; ++h) {
            TU_OK(bsvi_svi_set_steps(both[h], 5));
            TU_OK(bsvi_svi_set_step_size(both[h], 0.03));
            if (variant == 1) {
                TU_OK(bsvi_svi_set_step_rule(both[h], BSVI_STEP_ADAM));
                TU_OK(bsvi_svi_set_double_sampling(both[h], 1));
                TU_OK(bsvi_svi_set_samples_per_step(both[h], 3));
                TU_OK(bsvi_svi_set_clip_norm(both[h], 2.0));
            }
            TU_OK(bsvi_svi_set_seed(both[h], 31337));
        }
        TU_OK(bsvi_svi_run(a, model, q, ta));
        TU_OK(bsvi_svi_run(b, model, q, tb));
        tu_traj sa, sb, s1, s2;
        tu_traj_read(ta, &sa);
        tu_traj_read(tb, &sb);
        tu_traj_assert_equal(&sa, &sb);
        tu_traj_free(&sb);
        /* The counter advanced: a second run differs. */
        TU_OK(bsvi_svi_run(b, model, q, tb));
        tu_traj_read(tb, &sb);
        assert_true(tu_first_bit_difference(sa.z, sb.z, B * 6 * d) != (size_t)-1);
        tu_traj_free(&sb);
        /* Split batch: second half first, with the same counter (0). */
        TU_OK(bsvi_svi_set_seed(b, 31337));
        TU_OK(bsvi_svi_set_stream(b, 0, B1));
        TU_OK(bsvi_svi_run(b, model2, q2, t2));
        TU_OK(bsvi_svi_set_stream(b, 0, 0));
        TU_OK(bsvi_svi_run(b, model, q1, t1));
        tu_traj_read(t1, &s1);
        tu_traj_read(t2, &s2);
        tu_traj_assert_rows_equal(&sa, 0, &s1);
        tu_traj_assert_rows_equal(&sa, B1, &s2);
        /* set_stream(1, 0) reproduces the whole batch's second run. */
        TU_OK(bsvi_svi_run(a, model, q, ta));
        tu_traj_free(&sa);
        tu_traj_read(ta, &sa);
        TU_OK(bsvi_svi_set_stream(b, 1, 0));
        TU_OK(bsvi_svi_run(b, model, q, tb));
        tu_traj_read(tb, &sb);
        tu_traj_assert_equal(&sa, &sb);
        tu_traj_free(&sa);
        tu_traj_free(&sb);
        tu_traj_free(&s1);
        tu_traj_free(&s2);
        bsvi_svi_destroy(a);
        bsvi_svi_destroy(b);
        bsvi_trajectory_destroy(ta);
        bsvi_trajectory_destroy(tb);
        bsvi_trajectory_destroy(t1);
        bsvi_trajectory_destroy(t2);
    }
    bsvi_proposal_destroy(q);
    bsvi_proposal_destroy(q1);
    bsvi_proposal_destroy(q2);
    bsvi_model_destroy(model);
    bsvi_model_destroy(model2);
    lg_free(&lg);
}

/* Bad input to bsvi_svi_run: exact status, message, trajectory and proposal untouched,
 * handle still works and matches a fresh handle. (Callback failures: test_bad_input.c.) */
static void test_run_bad_input(void **state)
{
    (void)state;
    const size_t B = 3, d = 2;
    lg_model lg;
    assert_int_equal(lg_init(&lg, d, 4, B, 0.9, 0, 29), 0);
    bsvi_model *model = NULL, *model3 = NULL, *nolik = NULL, *hostprior = NULL;
    TU_OK(lg_make_model(&lg, &model));
    TU_OK(bsvi_model_create(3, &model3));
    TU_OK(bsvi_model_set_likelihood(model3, lg_likelihood, &lg));
    TU_OK(bsvi_model_create(d, &nolik));
    TU_OK(lg_make_model(&lg, &hostprior));
    TU_OK(bsvi_model_set_prior(hostprior, lg_prior_std_normal, NULL));
    double mean0[6], ls0[6];
    poor_params(B, d, mean0, ls0);
    bsvi_proposal *q = NULL, *q3 = NULL;
    TU_OK(lg_make_proposal(B, d, mean0, ls0, &q));
    TU_OK(bsvi_proposal_create(B, 3, &q3));
    bsvi_svi *svi = NULL, *fresh = NULL;
    bsvi_trajectory *t = NULL, *tf = NULL;
    TU_OK(bsvi_svi_create(d, &svi));
    TU_OK(bsvi_svi_create(d, &fresh));
    TU_OK(bsvi_trajectory_create(&t));
    TU_OK(bsvi_trajectory_create(&tf));
    TU_OK(bsvi_svi_set_steps(svi, 2));
    TU_OK(bsvi_svi_set_steps(fresh, 2));
    /* A previous good result to protect (counter then 1). */
    TU_OK(bsvi_svi_run(svi, model, q, t));
    TU_OK(bsvi_svi_run(fresh, model, q, tf));
    tu_traj before;
    tu_traj_read(t, &before);

    TU_STATUS(bsvi_svi_run(NULL, model, q, t), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_svi_run(svi, NULL, q, t), BSVI_ERR_NULL_ARGUMENT);
    TU_MESSAGE(bsvi_svi_last_error(svi));
    TU_STATUS(bsvi_svi_run(svi, model, NULL, t), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_svi_run(svi, model, q, NULL), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_svi_run(svi, model3, q, t), BSVI_ERR_SIZE_MISMATCH);
    TU_MESSAGE_MENTIONS(bsvi_svi_last_error(svi), "dim|size|match");
    TU_STATUS(bsvi_svi_run(svi, model, q3, t), BSVI_ERR_SIZE_MISMATCH);
    TU_MESSAGE_MENTIONS(bsvi_svi_last_error(svi), "dim|size|match");
    TU_STATUS(bsvi_svi_run(svi, nolik, q, t), BSVI_ERR_BAD_STATE);
    TU_MESSAGE_MENTIONS(bsvi_svi_last_error(svi), "likelihood");
    TU_OK(bsvi_svi_set_grad_form(svi, BSVI_GRAD_ANALYTIC_KL));
    TU_STATUS(bsvi_svi_run(svi, hostprior, q, t), BSVI_ERR_BAD_STATE);
    TU_MESSAGE_MENTIONS(bsvi_svi_last_error(svi), "prior|normal|analytic");
    TU_OK(bsvi_svi_set_grad_form(svi, BSVI_GRAD_PATHWISE));
    /* A step that overflows the parameters: NUMERIC (k = 1, eta = DBL_MAX, poor q). */
    double far_m[6] = {10, -10, 10, -10, 10, -10};
    bsvi_proposal *qfar = NULL;
    TU_OK(lg_make_proposal(B, d, far_m, ls0, &qfar));
    TU_OK(bsvi_svi_set_step_size(svi, DBL_MAX));
    TU_OK(bsvi_svi_set_steps(svi, 1));
    TU_STATUS(bsvi_svi_run(svi, model, qfar, t), BSVI_ERR_NUMERIC);
    TU_MESSAGE(bsvi_svi_last_error(svi));
    TU_OK(bsvi_svi_set_step_size(svi, 1e-3));
    TU_OK(bsvi_svi_set_steps(svi, 2));

    /* Nothing changed: trajectory and proposal as before. */
    tu_traj after;
    tu_traj_read(t, &after);
    tu_traj_assert_equal(&before, &after);
    tu_traj_free(&after);
    double m[6], l[6];
    TU_OK(bsvi_proposal_get_params(q, m, l));
    TU_BITWISE(m, mean0, 6);
    TU_BITWISE(l, ls0, 6);
    /* The handle still works, and the failed runs did not advance its counter. */
    TU_OK(bsvi_svi_run(svi, model, q, t));
    TU_OK(bsvi_svi_run(fresh, model, q, tf));
    tu_traj_read(t, &after);
    tu_traj sf;
    tu_traj_read(tf, &sf);
    tu_traj_assert_equal(&sf, &after);
    tu_traj_free(&after);
    tu_traj_free(&sf);
    tu_traj_free(&before);
    bsvi_proposal_destroy(qfar);
    bsvi_svi_destroy(svi);
    bsvi_svi_destroy(fresh);
    bsvi_trajectory_destroy(t);
    bsvi_trajectory_destroy(tf);
    bsvi_proposal_destroy(q);
    bsvi_proposal_destroy(q3);
    bsvi_model_destroy(model);
    bsvi_model_destroy(model3);
    bsvi_model_destroy(nolik);
    bsvi_model_destroy(hostprior);
    lg_free(&lg);
}

/* Divergence of one data point: FAIL stops the run; FREEZE stops only that point, keeps its
 * last finite lambda for the remaining slots, reports it, and leaves the others bitwise as
 * in a run where nothing diverged. */
static void test_divergence_freeze(void **state)
{
    (void)state;
    const size_t B = 3, d = 2, k = 4;
    lg_model lg;
    assert_int_equal(lg_init(&lg, d, 4, B, 0.9, 0, 23), 0);
    bsvi_model *model = NULL;
    TU_OK(bsvi_model_create(d, &model));
    TU_OK(bsvi_model_set_likelihood(model, lg_likelihood, &lg));
    /* Point 1 starts at log-std 29.9: its first pathwise step throws the log-std far outside
     * [-30, 30]. Points 0 and 2 are ordinary. */
    double mean0[6] = {0.3, -0.2, 0.1, 0.4, -0.5, 0.2};
    double ls_bad[6] = {0.0, -0.1, 29.9, 29.9, 0.1, 0.0};
    double ls_good[6] = {0.0, -0.1, 0.0, 0.0, 0.1, 0.0};
    bsvi_proposal *qbad = NULL, *qgood = NULL;
    TU_OK(lg_make_proposal(B, d, mean0, ls_bad, &qbad));
    TU_OK(lg_make_proposal(B, d, mean0, ls_good, &qgood));
    bsvi_svi *svi = NULL;
    bsvi_trajectory *t = NULL, *tg = NULL;
    TU_OK(bsvi_svi_create(d, &svi));
    TU_OK(bsvi_trajectory_create(&t));
    TU_OK(bsvi_trajectory_create(&tg));
    TU_OK(bsvi_svi_set_steps(svi, k));
    TU_OK(bsvi_svi_set_step_size(svi, 1e-3));
    TU_OK(bsvi_svi_set_seed(svi, 5));

    TU_STATUS(bsvi_svi_run(svi, model, qbad, t), BSVI_ERR_NUMERIC);
    TU_MESSAGE_MENTIONS(bsvi_svi_last_error(svi), "data point 1");
    TU_STATUS(bsvi_svi_set_divergence_policy(svi, (bsvi_divergence_policy)7), BSVI_ERR_BAD_VALUE);

    TU_OK(bsvi_svi_set_divergence_policy(svi, BSVI_DIVERGENCE_FREEZE));
    TU_OK(bsvi_svi_set_seed(svi, 5));
    TU_OK(bsvi_svi_run(svi, model, qbad, t));
    TU_OK(bsvi_svi_set_seed(svi, 5));
    TU_OK(bsvi_svi_run(svi, model, qgood, tg));
    assert_int_equal(bsvi_trajectory_num_diverged(t), 1);
    assert_int_equal(bsvi_trajectory_num_diverged(tg), 0);
    size_t taken[3];
    TU_OK(bsvi_trajectory_get_steps_taken(t, taken));
    assert_int_equal(taken[0], k);
    assert_int_equal(taken[1], 0);
    assert_int_equal(taken[2], k);

    tu_traj a, g;
    tu_traj_read(t, &a);
    tu_traj_read(tg, &g);
    for (size_t i = 0; i <= k; ++i) {
        /* the frozen point keeps lambda_0 and records finite weights from it */
        TU_BITWISE(&a.mean[(1 * (k + 1) + i) * d], &mean0[1 * d], d);
        TU_BITWISE(&a.ls[(1 * (k + 1) + i) * d], &ls_bad[1 * d], d);
        assert_true(isfinite(a.lw[1 * (k + 1) + i]));
        /* the other points are exactly as in the run where nothing diverged */
        for (size_t b = 0; b < B; b += 2) {
            TU_BITWISE(&a.mean[(b * (k + 1) + i) * d], &g.mean[(b * (k + 1) + i) * d], d);
            TU_BITWISE(&a.ls[(b * (k + 1) + i) * d], &g.ls[(b * (k + 1) + i) * d], d);
            TU_BITWISE(&a.lw[b * (k + 1) + i], &g.lw[b * (k + 1) + i], 1);
        }
    }
    tu_traj_free(&a);
    tu_traj_free(&g);
    TU_STATUS(bsvi_trajectory_get_steps_taken(t, NULL), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_trajectory_get_steps_taken(NULL, taken), BSVI_ERR_NULL_ARGUMENT);
    assert_int_equal(bsvi_trajectory_num_diverged(NULL), 0);
    bsvi_trajectory_destroy(t);
    bsvi_trajectory_destroy(tg);
    bsvi_svi_destroy(svi);
    bsvi_proposal_destroy(qbad);
    bsvi_proposal_destroy(qgood);
    bsvi_model_destroy(model);
    lg_free(&lg);
}

/* Cancellation: a progress callback that returns non-zero stops the run with its own status;
 * the trajectory keeps its previous contents and the handle still works. */
typedef struct cancel_ctx {
    size_t calls, stop_after, last_done, last_total;
} cancel_ctx;

static int cancel_after(size_t done, size_t total, void *user_data)
{
    cancel_ctx *c = (cancel_ctx *)user_data;
    c->calls++;
    c->last_done = done;
    c->last_total = total;
    return c->calls >= c->stop_after ? 1 : 0;
}

static void test_cancel(void **state)
{
    (void)state;
    const size_t B = 3, d = 2, k = 5;
    lg_model lg;
    assert_int_equal(lg_init(&lg, d, 4, B, 0.9, 0, 29), 0);
    bsvi_model *model = NULL;
    TU_OK(bsvi_model_create(d, &model));
    TU_OK(bsvi_model_set_likelihood(model, lg_likelihood, &lg));
    double mean0[6], ls0[6];
    poor_params(B, d, mean0, ls0);
    bsvi_proposal *q = NULL;
    TU_OK(lg_make_proposal(B, d, mean0, ls0, &q));
    bsvi_svi *svi = NULL, *fresh = NULL;
    bsvi_trajectory *t = NULL, *tf = NULL;
    TU_OK(bsvi_svi_create(d, &svi));
    TU_OK(bsvi_svi_create(d, &fresh));
    TU_OK(bsvi_trajectory_create(&t));
    TU_OK(bsvi_trajectory_create(&tf));
    TU_OK(bsvi_svi_set_steps(svi, k));
    TU_OK(bsvi_svi_set_steps(fresh, k));
    TU_OK(bsvi_svi_set_step_size(svi, 0.01));
    TU_OK(bsvi_svi_set_step_size(fresh, 0.01));
    cancel_ctx c = {0, 1000, 0, 0};
    TU_OK(bsvi_svi_set_progress(svi, cancel_after, &c));
    TU_OK(bsvi_svi_run(svi, model, q, t)); /* completes: one call per slot */
    assert_int_equal(c.calls, k + 1);
    assert_int_equal(c.last_done, B * (k + 1));
    assert_int_equal(c.last_total, B * (k + 1));
    tu_traj before;
    tu_traj_read(t, &before);
    c.calls = 0;
    c.stop_after = 3;
    TU_STATUS(bsvi_svi_run(svi, model, q, t), BSVI_ERR_CANCELLED);
    TU_MESSAGE_MENTIONS(bsvi_svi_last_error(svi), "cancel");
    assert_int_equal(c.calls, 3);
    tu_traj after;
    tu_traj_read(t, &after);
    tu_traj_assert_equal(&before, &after);
    tu_traj_free(&after);
    /* still usable, and the cancelled run did not advance the counter: the next run equals the
     * second run of a handle that never cancelled */
    TU_OK(bsvi_svi_set_progress(svi, NULL, NULL));
    TU_OK(bsvi_svi_run(svi, model, q, t));
    TU_OK(bsvi_svi_run(fresh, model, q, tf));
    TU_OK(bsvi_svi_run(fresh, model, q, tf));
    tu_traj a, f;
    tu_traj_read(t, &a);
    tu_traj_read(tf, &f);
    tu_traj_assert_equal(&a, &f);
    tu_traj_free(&a);
    tu_traj_free(&f);
    tu_traj_free(&before);

    /* the evaluator cancels the same way */
    bsvi_evaluator *ev = NULL;
    TU_OK(bsvi_evaluator_create(d, &ev));
    TU_OK(bsvi_evaluator_set_chunk_rows(ev, 4));
    c.calls = 0;
    c.stop_after = 2;
    TU_OK(bsvi_evaluator_set_progress(ev, cancel_after, &c));
    double out[3] = {7, 7, 7};
    TU_STATUS(bsvi_evaluator_iwae(ev, model, q, 50, out), BSVI_ERR_CANCELLED);
    c.calls = 0;
    bsvi_svi_options opts;
    TU_OK(bsvi_svi_get_options(svi, &opts));
    TU_OK(bsvi_evaluator_set_svi_options(ev, &opts));
    TU_STATUS(bsvi_evaluator_bsvi(ev, model, q, 10, out, NULL), BSVI_ERR_CANCELLED);
    assert_true(out[0] == 7 && out[1] == 7 && out[2] == 7);
    TU_OK(bsvi_evaluator_set_progress(ev, NULL, NULL));
    TU_OK(bsvi_evaluator_iwae(ev, model, q, 50, out));
    bsvi_evaluator_destroy(ev);

    bsvi_trajectory_destroy(t);
    bsvi_trajectory_destroy(tf);
    bsvi_svi_destroy(svi);
    bsvi_svi_destroy(fresh);
    bsvi_proposal_destroy(q);
    bsvi_model_destroy(model);
    lg_free(&lg);
}

/* ---- the options struct -------------------------------------------------------------- */

/* Fail unless every field agrees (doubles bitwise). */
static void assert_options_equal(const bsvi_svi_options *a, const bsvi_svi_options *b)
{
    assert_int_equal(a->steps, b->steps);
    TU_BITWISE(&a->step_size, &b->step_size, 1);
    assert_int_equal(a->samples_per_step, b->samples_per_step);
    assert_int_equal(a->rule, b->rule);
    TU_BITWISE(&a->momentum, &b->momentum, 1);
    TU_BITWISE(&a->adam_beta1, &b->adam_beta1, 1);
    TU_BITWISE(&a->adam_beta2, &b->adam_beta2, 1);
    TU_BITWISE(&a->adam_epsilon, &b->adam_epsilon, 1);
    TU_BITWISE(&a->clip_norm, &b->clip_norm, 1);
    assert_int_equal(a->grad_form, b->grad_form);
    assert_int_equal(a->double_sampling, b->double_sampling);
    assert_int_equal(a->divergence, b->divergence);
}

static void assert_handle_options(const bsvi_svi *svi, const bsvi_svi_options *want)
{
    bsvi_svi_options got;
    memset(&got, 0xA5, sizeof got);
    TU_OK(bsvi_svi_get_options(svi, &got));
    assert_options_equal(&got, want);
    assert_int_equal(bsvi_svi_steps(svi), want->steps);
    assert_true(bsvi_svi_step_size(svi) == want->step_size);
}

/* Options differing from the defaults in every field. */
static bsvi_svi_options options_all_changed(void)
{
    bsvi_svi_options o = bsvi_svi_options_default();
    o.steps = 4;
    o.step_size = 0.03;
    o.samples_per_step = 2;
    o.rule = BSVI_STEP_ADAM;
    o.momentum = 0.7;
    o.adam_beta1 = 0.8;
    o.adam_beta2 = 0.99;
    o.adam_epsilon = 1e-6;
    o.clip_norm = 2.0;
    o.grad_form = BSVI_GRAD_STL;
    o.double_sampling = 1;
    o.divergence = BSVI_DIVERGENCE_FREEZE;
    return o;
}

/* The defaults are the documented ones and what a fresh handle reports; each setter changes
 * its field(s) of bsvi_svi_get_options and nothing else; a refused setter changes nothing. */
static void test_options_defaults(void **state)
{
    (void)state;
    const bsvi_svi_options d = bsvi_svi_options_default();
    assert_int_equal(d.steps, 10);
    assert_true(d.step_size == 1e-3);
    assert_int_equal(d.samples_per_step, 1);
    assert_int_equal(d.rule, BSVI_STEP_GRADIENT);
    assert_true(d.momentum == 0.5);
    assert_true(d.adam_beta1 == 0.9);
    assert_true(d.adam_beta2 == 0.999);
    assert_true(d.adam_epsilon == 1e-8);
    assert_true(d.clip_norm == 0.0);
    assert_int_equal(d.grad_form, BSVI_GRAD_PATHWISE);
    assert_int_equal(d.double_sampling, 0);
    assert_int_equal(d.divergence, BSVI_DIVERGENCE_FAIL);
    const bsvi_svi_options d2 = bsvi_svi_options_default();
    assert_options_equal(&d, &d2);

    bsvi_svi *svi = NULL;
    TU_OK(bsvi_svi_create(3, &svi));
    assert_handle_options(svi, &d);
    bsvi_svi_options o;
    TU_STATUS(bsvi_svi_get_options(NULL, &o), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_svi_get_options(svi, NULL), BSVI_ERR_NULL_ARGUMENT);
    TU_MESSAGE(bsvi_svi_last_error(svi));

    bsvi_svi_options want = d;
    TU_OK(bsvi_svi_set_steps(svi, 4));
    want.steps = 4;
    assert_handle_options(svi, &want);
    TU_OK(bsvi_svi_set_step_size(svi, 0.03));
    want.step_size = 0.03;
    assert_handle_options(svi, &want);
    TU_OK(bsvi_svi_set_samples_per_step(svi, 2));
    want.samples_per_step = 2;
    assert_handle_options(svi, &want);
    TU_OK(bsvi_svi_set_step_rule(svi, BSVI_STEP_ADAM));
    want.rule = BSVI_STEP_ADAM;
    assert_handle_options(svi, &want);
    TU_OK(bsvi_svi_set_momentum(svi, 0.7));
    want.momentum = 0.7;
    assert_handle_options(svi, &want);
    TU_OK(bsvi_svi_set_adam(svi, 0.8, 0.99, 1e-6));
    want.adam_beta1 = 0.8;
    want.adam_beta2 = 0.99;
    want.adam_epsilon = 1e-6;
    assert_handle_options(svi, &want);
    TU_OK(bsvi_svi_set_clip_norm(svi, 2.0));
    want.clip_norm = 2.0;
    assert_handle_options(svi, &want);
    TU_OK(bsvi_svi_set_grad_form(svi, BSVI_GRAD_STL));
    want.grad_form = BSVI_GRAD_STL;
    assert_handle_options(svi, &want);
    TU_OK(bsvi_svi_set_double_sampling(svi, 1));
    want.double_sampling = 1;
    assert_handle_options(svi, &want);
    TU_OK(bsvi_svi_set_divergence_policy(svi, BSVI_DIVERGENCE_FREEZE));
    want.divergence = BSVI_DIVERGENCE_FREEZE;
    assert_handle_options(svi, &want);
    const bsvi_svi_options all = options_all_changed();
    assert_options_equal(&want, &all);
    /* refused setters change nothing */
    TU_STATUS(bsvi_svi_set_steps(svi, BSVI_MAX_STEPS + 1), BSVI_ERR_OUT_OF_RANGE);
    TU_STATUS(bsvi_svi_set_step_size(svi, NAN), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_svi_set_samples_per_step(svi, 0), BSVI_ERR_ZERO_SIZE);
    TU_STATUS(bsvi_svi_set_step_rule(svi, (bsvi_step_rule)7), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_svi_set_momentum(svi, 1.0), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_svi_set_adam(svi, 0.5, 0.5, 0.0), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_svi_set_clip_norm(svi, -1.0), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_svi_set_grad_form(svi, BSVI_GRAD_DREG), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_svi_set_double_sampling(svi, 2), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_svi_set_divergence_policy(svi, (bsvi_divergence_policy)2),
              BSVI_ERR_BAD_VALUE);
    assert_handle_options(svi, &want);
    /* the seed and the progress callback are not options */
    TU_OK(bsvi_svi_set_seed(svi, 99));
    TU_OK(bsvi_svi_set_stream(svi, 3, 4));
    assert_handle_options(svi, &want);
    bsvi_svi_destroy(svi);
}

/* Options that differ from options_all_changed() in every field, with field f made invalid
 * (f < 0: none); *expected receives the status and *words what the message names. */
static bsvi_svi_options options_bad(int f, bsvi_status *expected, const char **words)
{
    bsvi_svi_options o = bsvi_svi_options_default();
    o.steps = 7;
    o.step_size = 0.2;
    o.samples_per_step = 3;
    o.rule = BSVI_STEP_MOMENTUM;
    o.momentum = 0.25;
    o.adam_beta1 = 0.5;
    o.adam_beta2 = 0.9;
    o.adam_epsilon = 1e-4;
    o.clip_norm = 0.5;
    o.grad_form = BSVI_GRAD_ANALYTIC_KL;
    o.double_sampling = 0;
    o.divergence = BSVI_DIVERGENCE_FAIL;
    *expected = BSVI_ERR_BAD_VALUE;
    *words = "";
    switch (f) {
    case 0:
        o.steps = BSVI_MAX_STEPS + 1, *expected = BSVI_ERR_OUT_OF_RANGE, *words = "steps";
        break;
    case 1: o.step_size = 0.0, *words = "step_size|eta"; break;
    case 2: o.step_size = -1e-3, *words = "step_size|eta"; break;
    case 3: o.step_size = NAN, *words = "step_size|eta"; break;
    case 4: o.step_size = INFINITY, *words = "step_size|eta"; break;
    case 5: o.samples_per_step = 0, *expected = BSVI_ERR_ZERO_SIZE, *words = "samples"; break;
    case 6:
        o.samples_per_step = BSVI_MAX_SAMPLES + 1, *expected = BSVI_ERR_OUT_OF_RANGE;
        *words = "samples";
        break;
    case 7: o.rule = (bsvi_step_rule)3, *words = "rule"; break;
    case 8: o.rule = (bsvi_step_rule)-1, *words = "rule"; break;
    case 9: o.momentum = 1.0, *words = "momentum|beta"; break;
    case 10: o.momentum = -0.1, *words = "momentum|beta"; break;
    case 11: o.momentum = NAN, *words = "momentum|beta"; break;
    case 12: o.adam_beta1 = 1.0, *words = "beta1"; break;
    case 13: o.adam_beta1 = -0.5, *words = "beta1"; break;
    case 14: o.adam_beta1 = NAN, *words = "beta1"; break;
    case 15: o.adam_beta2 = 1.0, *words = "beta2"; break;
    case 16: o.adam_beta2 = NAN, *words = "beta2"; break;
    case 17: o.adam_epsilon = 0.0, *words = "epsilon"; break;
    case 18: o.adam_epsilon = -1e-8, *words = "epsilon"; break;
    case 19: o.adam_epsilon = INFINITY, *words = "epsilon"; break;
    case 20: o.adam_epsilon = NAN, *words = "epsilon"; break;
    case 21: o.clip_norm = -1.0, *words = "clip"; break;
    case 22: o.clip_norm = NAN, *words = "clip"; break;
    case 23: o.clip_norm = INFINITY, *words = "clip"; break;
    case 24: o.grad_form = BSVI_GRAD_DREG, *words = "grad_form|form|dreg"; break;
    case 25: o.grad_form = (bsvi_grad_form)9, *words = "grad_form|form"; break;
    case 26: o.double_sampling = 2, *words = "double"; break;
    case 27: o.double_sampling = -1, *words = "double"; break;
    case 28: o.divergence = (bsvi_divergence_policy)2, *words = "divergence"; break;
    case 29: o.divergence = (bsvi_divergence_policy)-1, *words = "divergence"; break;
    default: *expected = BSVI_OK; break;
    }
    return o;
}
#define NBAD_OPTIONS 30

/* bsvi_svi_set_options validates every field with the setter's status, names the bad field,
 * and on error changes nothing. */
static void test_set_options_validation(void **state)
{
    (void)state;
    bsvi_svi *svi = NULL;
    TU_OK(bsvi_svi_create(2, &svi));
    const bsvi_svi_options good = options_all_changed();
    TU_OK(bsvi_svi_set_options(svi, &good));
    assert_handle_options(svi, &good);
    assert_string_equal(bsvi_svi_last_error(svi), "");
    for (int f = 0; f < NBAD_OPTIONS; ++f) {
        bsvi_status expected;
        const char *words;
        const bsvi_svi_options bad = options_bad(f, &expected, &words);
        const bsvi_status st = bsvi_svi_set_options(svi, &bad);
        if (st != expected) {
            fail_msg("bad field case %d: returned %d (%s), expected %d (%s)", f, (int)st,
                     bsvi_status_string(st), (int)expected, bsvi_status_string(expected));
        }
        TU_MESSAGE_MENTIONS(bsvi_svi_last_error(svi), words);
        assert_handle_options(svi, &good);
        /* the per-field setter agrees on the status */
        bsvi_svi *one = NULL;
        TU_OK(bsvi_svi_create(2, &one));
        bsvi_status st1 = BSVI_OK;
        switch (f) {
        case 0: st1 = bsvi_svi_set_steps(one, bad.steps); break;
        case 1: case 2: case 3: case 4: st1 = bsvi_svi_set_step_size(one, bad.step_size); break;
        case 5: case 6: st1 = bsvi_svi_set_samples_per_step(one, bad.samples_per_step); break;
        case 7: case 8: st1 = bsvi_svi_set_step_rule(one, bad.rule); break;
        case 9: case 10: case 11: st1 = bsvi_svi_set_momentum(one, bad.momentum); break;
        case 12: case 13: case 14: case 15: case 16: case 17: case 18: case 19: case 20:
            st1 = bsvi_svi_set_adam(one, bad.adam_beta1, bad.adam_beta2, bad.adam_epsilon);
            break;
        case 21: case 22: case 23: st1 = bsvi_svi_set_clip_norm(one, bad.clip_norm); break;
        case 24: case 25: st1 = bsvi_svi_set_grad_form(one, bad.grad_form); break;
        case 26: case 27: st1 = bsvi_svi_set_double_sampling(one, bad.double_sampling); break;
        default: st1 = bsvi_svi_set_divergence_policy(one, bad.divergence); break;
        }
        if (st1 != expected) {
            fail_msg("bad field case %d: the setter returned %d, set_options %d", f, (int)st1,
                     (int)expected);
        }
        bsvi_svi_destroy(one);
    }
    /* Two bad fields: the message names the first (in the struct's order). */
    bsvi_status ex;
    const char *w;
    bsvi_svi_options two = options_bad(1, &ex, &w); /* step_size = 0 */
    two.clip_norm = -1.0;
    TU_STATUS(bsvi_svi_set_options(svi, &two), BSVI_ERR_BAD_VALUE);
    TU_MESSAGE_MENTIONS(bsvi_svi_last_error(svi), "step_size|eta");
    assert_false(tu_mentions(bsvi_svi_last_error(svi), "clip"));
    assert_handle_options(svi, &good);
    /* The limits themselves are valid; a valid struct replaces every field. */
    bsvi_svi_options edge = options_bad(-1, &ex, &w);
    edge.steps = BSVI_MAX_STEPS;
    edge.samples_per_step = BSVI_MAX_SAMPLES;
    edge.momentum = 0.0;
    edge.adam_beta1 = 0.0;
    edge.adam_beta2 = 0.0;
    edge.clip_norm = 0.0;
    edge.step_size = DBL_MAX;
    TU_OK(bsvi_svi_set_options(svi, &edge));
    assert_handle_options(svi, &edge);
    edge.steps = 0;
    edge.step_size = DBL_MIN;
    TU_OK(bsvi_svi_set_options(svi, &edge));
    assert_handle_options(svi, &edge);
    /* NULL arguments */
    TU_STATUS(bsvi_svi_set_options(NULL, &good), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_svi_set_options(svi, NULL), BSVI_ERR_NULL_ARGUMENT);
    TU_MESSAGE(bsvi_svi_last_error(svi));
    assert_handle_options(svi, &edge);
    bsvi_svi_destroy(svi);
}

/* Setting the options struct, then running, is bitwise the run of a handle configured by the
 * individual setters; setting the defaults makes a used handle run as a fresh one. */
static void test_options_equal_setters(void **state)
{
    (void)state;
    const size_t B = 4, d = 3, D = 5;
    lg_model lg;
    assert_int_equal(lg_init(&lg, d, D, B, 0.8, 0, 41), 0);
    bsvi_model *model = NULL;
    TU_OK(lg_make_model(&lg, &model));
    double mean0[12], ls0[12];
    poor_params(B, d, mean0, ls0);
    bsvi_proposal *q = NULL;
    TU_OK(lg_make_proposal(B, d, mean0, ls0, &q));
    bsvi_svi_options cfg[3];
    cfg[0] = options_all_changed();
    cfg[1] = cfg[0];
    cfg[1].rule = BSVI_STEP_MOMENTUM;
    cfg[1].grad_form = BSVI_GRAD_ANALYTIC_KL;
    cfg[1].double_sampling = 0;
    cfg[1].clip_norm = 0.0;
    cfg[1].samples_per_step = 3;
    cfg[1].steps = 6;
    cfg[2] = bsvi_svi_options_default();
    cfg[2].steps = 3;
    cfg[2].step_size = 0.05;
    for (size_t c = 0; c < 3; ++c) {
        const bsvi_svi_options *o = &cfg[c];
        bsvi_svi *a = NULL, *b = NULL;
        bsvi_trajectory *ta = NULL, *tb = NULL;
        TU_OK(bsvi_svi_create(d, &a));
        TU_OK(bsvi_svi_create(d, &b));
        TU_OK(bsvi_trajectory_create(&ta));
        TU_OK(bsvi_trajectory_create(&tb));
        TU_OK(bsvi_svi_set_options(a, o));
        TU_OK(bsvi_svi_set_steps(b, o->steps));
        TU_OK(bsvi_svi_set_step_size(b, o->step_size));
        TU_OK(bsvi_svi_set_samples_per_step(b, o->samples_per_step));
        TU_OK(bsvi_svi_set_step_rule(b, o->rule));
        TU_OK(bsvi_svi_set_momentum(b, o->momentum));
        TU_OK(bsvi_svi_set_adam(b, o->adam_beta1, o->adam_beta2, o->adam_epsilon));
        TU_OK(bsvi_svi_set_clip_norm(b, o->clip_norm));
        TU_OK(bsvi_svi_set_grad_form(b, o->grad_form));
        TU_OK(bsvi_svi_set_double_sampling(b, o->double_sampling));
        TU_OK(bsvi_svi_set_divergence_policy(b, o->divergence));
        assert_handle_options(a, o);
        assert_handle_options(b, o);
        TU_OK(bsvi_svi_set_seed(a, 700 + c));
        TU_OK(bsvi_svi_set_seed(b, 700 + c));
        for (int rep = 0; rep < 2; ++rep) {
            TU_OK(bsvi_svi_run(a, model, q, ta));
            TU_OK(bsvi_svi_run(b, model, q, tb));
            assert_int_equal(bsvi_trajectory_steps(ta), o->steps);
            assert_int_equal(bsvi_trajectory_is_double_sampled(ta), o->double_sampling);
            tu_traj sa, sb;
            tu_traj_read(ta, &sa);
            tu_traj_read(tb, &sb);
            tu_traj_assert_equal(&sa, &sb);
            tu_traj_free(&sa);
            tu_traj_free(&sb);
        }
        /* set_options does not touch the seed or the counter */
        uint64_t seed = 0, counter = 0;
        TU_OK(bsvi_svi_set_options(a, o));
        TU_OK(bsvi_svi_get_stream(a, &seed, &counter, NULL));
        assert_true(seed == 700 + c && counter == 2);
        /* the defaults on a used handle: as a fresh handle (same seed) */
        const bsvi_svi_options dflt = bsvi_svi_options_default();
        bsvi_svi *f = NULL;
        TU_OK(bsvi_svi_create(d, &f));
        TU_OK(bsvi_svi_set_options(a, &dflt));
        assert_handle_options(a, &dflt);
        TU_OK(bsvi_svi_set_seed(a, 5));
        TU_OK(bsvi_svi_set_seed(f, 5));
        TU_OK(bsvi_svi_run(a, model, q, ta));
        TU_OK(bsvi_svi_run(f, model, q, tb));
        tu_traj sa, sf;
        tu_traj_read(ta, &sa);
        tu_traj_read(tb, &sf);
        tu_traj_assert_equal(&sa, &sf);
        tu_traj_free(&sa);
        tu_traj_free(&sf);
        bsvi_svi_destroy(f);
        bsvi_svi_destroy(a);
        bsvi_svi_destroy(b);
        bsvi_trajectory_destroy(ta);
        bsvi_trajectory_destroy(tb);
    }
    bsvi_proposal_destroy(q);
    bsvi_model_destroy(model);
    lg_free(&lg);
}

/* Name helpers: every value round-trips; unknown values give NULL, unknown names BAD_VALUE
 * with the output unchanged. */
static void test_names(void **state)
{
    (void)state;
    const char *rules[3] = {"gradient", "momentum", "adam"};
    for (int i = 0; i < 3; ++i) {
        assert_string_equal(bsvi_step_rule_name((bsvi_step_rule)i), rules[i]);
        bsvi_step_rule r = (bsvi_step_rule)-5;
        TU_OK(bsvi_step_rule_from_name(rules[i], &r));
        assert_int_equal(r, i);
    }
    assert_null(bsvi_step_rule_name((bsvi_step_rule)3));
    assert_null(bsvi_step_rule_name((bsvi_step_rule)-1));
    const char *forms[4] = {"pathwise", "stl", "analytic-kl", "dreg"};
    for (int i = 0; i < 4; ++i) {
        assert_string_equal(bsvi_grad_form_name((bsvi_grad_form)i), forms[i]);
        bsvi_grad_form g = (bsvi_grad_form)-5;
        TU_OK(bsvi_grad_form_from_name(forms[i], &g));
        assert_int_equal(g, i);
    }
    assert_null(bsvi_grad_form_name((bsvi_grad_form)4));
    const char *pols[2] = {"fail", "freeze"};
    for (int i = 0; i < 2; ++i) {
        assert_string_equal(bsvi_divergence_policy_name((bsvi_divergence_policy)i), pols[i]);
        bsvi_divergence_policy p = (bsvi_divergence_policy)-5;
        TU_OK(bsvi_divergence_policy_from_name(pols[i], &p));
        assert_int_equal(p, i);
    }
    assert_null(bsvi_divergence_policy_name((bsvi_divergence_policy)2));
    const char *bounds[7] = {"elbo", "iwae", "svi", "bsvi", "bsvi-ds", "bsvi-sir", "giwae"};
    for (int i = 0; i < 7; ++i) {
        assert_string_equal(bsvi_bound_name((bsvi_bound)i), bounds[i]);
        bsvi_bound k = (bsvi_bound)-5;
        TU_OK(bsvi_bound_from_name(bounds[i], &k));
        assert_int_equal(k, i);
    }
    assert_null(bsvi_bound_name((bsvi_bound)7));
    /* exact match only; output unchanged on error */
    const char *bad[4] = {"", "Adam", "adam ", "grad"};
    for (int i = 0; i < 4; ++i) {
        bsvi_step_rule r = BSVI_STEP_MOMENTUM;
        TU_STATUS(bsvi_step_rule_from_name(bad[i], &r), BSVI_ERR_BAD_VALUE);
        assert_int_equal(r, BSVI_STEP_MOMENTUM);
    }
    bsvi_grad_form g = BSVI_GRAD_STL;
    TU_STATUS(bsvi_grad_form_from_name("STL", &g), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_grad_form_from_name("analytic_kl", &g), BSVI_ERR_BAD_VALUE);
    assert_int_equal(g, BSVI_GRAD_STL);
    bsvi_divergence_policy p = BSVI_DIVERGENCE_FREEZE;
    TU_STATUS(bsvi_divergence_policy_from_name("frozen", &p), BSVI_ERR_BAD_VALUE);
    assert_int_equal(p, BSVI_DIVERGENCE_FREEZE);
    bsvi_bound k = BSVI_BOUND_GIWAE;
    TU_STATUS(bsvi_bound_from_name("bsvi_ds", &k), BSVI_ERR_BAD_VALUE);
    assert_int_equal(k, BSVI_BOUND_GIWAE);
    TU_STATUS(bsvi_step_rule_from_name(NULL, &(bsvi_step_rule){0}), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_step_rule_from_name("adam", NULL), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_grad_form_from_name(NULL, &g), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_grad_form_from_name("stl", NULL), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_divergence_policy_from_name(NULL, &p), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_divergence_policy_from_name("fail", NULL), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_bound_from_name(NULL, &k), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_bound_from_name("elbo", NULL), BSVI_ERR_NULL_ARGUMENT);
}

/* ---- the stream and the statistics ---------------------------------------------------- */

/* A standard-normal host prior that counts its calls and rows. */
typedef struct prior_count {
    unsigned long calls, rows;
} prior_count;

static int counting_prior(size_t n, size_t dim, const double *z, const size_t *data_index,
                          double *log_density, double *grad, void *user_data)
{
    prior_count *pc = user_data;
    pc->calls++;
    pc->rows += n;
    return lg_prior_std_normal(n, dim, z, data_index, log_density, grad, NULL);
}

static void assert_stats(const bsvi_svi *svi, const bsvi_stats *want)
{
    bsvi_stats got;
    memset(&got, 0xA5, sizeof got);
    TU_OK(bsvi_svi_get_stats(svi, &got));
    assert_true(got.calls == want->calls);
    assert_true(got.data_points == want->data_points);
    assert_true(got.likelihood_calls == want->likelihood_calls);
    assert_true(got.likelihood_rows == want->likelihood_rows);
    assert_true(got.prior_calls == want->prior_calls);
    assert_true(got.prior_rows == want->prior_rows);
    assert_true(got.svi_steps == want->svi_steps);
    assert_true(got.zero_points == want->zero_points);
}

static void assert_stream(const bsvi_svi *svi, uint64_t seed, uint64_t counter, uint64_t id)
{
    uint64_t s = 1234, c = 1234, i = 1234;
    TU_OK(bsvi_svi_get_stream(svi, &s, &c, &i));
    assert_true(s == seed);
    assert_true(c == counter);
    assert_true(i == id);
}

static int cancel_second(size_t done, size_t total, void *user_data)
{
    (void)done, (void)total;
    return ++*(int *)user_data >= 2;
}

/* get_stream reports what set_seed / set_stream set and the counter advanced by successful
 * runs; get_stats counts successful runs, their data points, callback calls and rows and SVI
 * steps; failed and cancelled runs change neither. */
static void test_stream_and_stats(void **state)
{
    (void)state;
    const size_t B = 3, d = 2, k = 4;
    lg_model lg;
    assert_int_equal(lg_init(&lg, d, 4, B, 0.9, 0, 61), 0);
    lg_model lg3;
    assert_int_equal(lg_init(&lg3, 3, 4, B, 0.9, 0, 62), 0);
    bsvi_model *model = NULL, *model3 = NULL, *hostprior = NULL, *nolik = NULL;
    TU_OK(lg_make_model(&lg, &model));
    TU_OK(lg_make_model(&lg3, &model3));
    TU_OK(lg_make_model(&lg, &hostprior));
    prior_count pc = {0, 0};
    TU_OK(bsvi_model_set_prior(hostprior, counting_prior, &pc));
    TU_OK(bsvi_model_create(d, &nolik));
    double mean0[6], ls0[6];
    poor_params(B, d, mean0, ls0);
    bsvi_proposal *q = NULL;
    TU_OK(lg_make_proposal(B, d, mean0, ls0, &q));
    bsvi_svi *svi = NULL;
    bsvi_trajectory *t = NULL;
    TU_OK(bsvi_svi_create(d, &svi));
    TU_OK(bsvi_trajectory_create(&t));

    bsvi_stats want;
    memset(&want, 0, sizeof want);
    assert_stream(svi, 0, 0, 0);
    assert_stats(svi, &want);
    TU_OK(bsvi_svi_get_stream(svi, NULL, NULL, NULL));
    TU_STATUS(bsvi_svi_get_stream(NULL, NULL, NULL, NULL), BSVI_ERR_NULL_ARGUMENT);
    bsvi_stats st;
    TU_STATUS(bsvi_svi_get_stats(NULL, &st), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_svi_get_stats(svi, NULL), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_svi_reset_stats(NULL), BSVI_ERR_NULL_ARGUMENT);

    TU_OK(bsvi_svi_set_seed(svi, 9));
    assert_stream(svi, 9, 0, 0);
    TU_OK(bsvi_svi_set_stream(svi, 4, 6));
    assert_stream(svi, 9, 4, 6);
    TU_OK(bsvi_svi_set_steps(svi, k));
    TU_OK(bsvi_svi_set_samples_per_step(svi, 2));
    TU_OK(bsvi_svi_set_step_size(svi, 0.02));

    /* a run: one likelihood call per slot, whatever the batch size */
    unsigned long c0 = lg.calls, r0 = lg.rows;
    TU_OK(bsvi_svi_run(svi, model, q, t));
    assert_stream(svi, 9, 5, 6);
    assert_true(lg.calls - c0 == k + 1);
    want.calls = 1;
    want.data_points = B;
    want.likelihood_calls = lg.calls - c0;
    want.likelihood_rows = lg.rows - r0;
    want.svi_steps = k;
    assert_stats(svi, &want);
    assert_true(want.likelihood_rows >= (k + 1) * B);

    /* double sampling: more rows, counted as passed */
    TU_OK(bsvi_svi_set_double_sampling(svi, 1));
    c0 = lg.calls, r0 = lg.rows;
    TU_OK(bsvi_svi_run(svi, model, q, t));
    assert_stream(svi, 9, 6, 6);
    want.calls = 2;
    want.data_points = 2 * B;
    want.likelihood_calls += lg.calls - c0;
    want.likelihood_rows += lg.rows - r0;
    want.svi_steps = 2 * k;
    assert_true(lg.calls - c0 == k + 1);
    assert_stats(svi, &want);

    /* a host prior: its calls and rows too */
    c0 = lg.calls, r0 = lg.rows;
    TU_OK(bsvi_svi_run(svi, hostprior, q, t));
    want.calls = 3;
    want.data_points = 3 * B;
    want.likelihood_calls += lg.calls - c0;
    want.likelihood_rows += lg.rows - r0;
    want.prior_calls = pc.calls;
    want.prior_rows = pc.rows;
    want.svi_steps = 3 * k;
    assert_true(pc.calls == k + 1 && pc.rows == lg.rows - r0);
    assert_stats(svi, &want);
    assert_stream(svi, 9, 7, 6);

    /* failed runs: nothing counted, the counter stays */
    TU_STATUS(bsvi_svi_run(svi, model3, q, t), BSVI_ERR_SIZE_MISMATCH);
    TU_STATUS(bsvi_svi_run(svi, nolik, q, t), BSVI_ERR_BAD_STATE);
    lg_faulty fl = {&lg, 2, 0, 5, LG_FAULT_CODE};
    bsvi_model *faulty = NULL;
    TU_OK(bsvi_model_create(d, &faulty));
    TU_OK(bsvi_model_set_likelihood(faulty, lg_faulty_likelihood, &fl));
    TU_STATUS(bsvi_svi_run(svi, faulty, q, t), BSVI_ERR_CALLBACK_FAILED);
    assert_true(fl.calls == 3); /* two good callback calls before the failure: not counted */
    int ncancel = 0;
    TU_OK(bsvi_svi_set_progress(svi, cancel_second, &ncancel));
    c0 = lg.calls;
    TU_STATUS(bsvi_svi_run(svi, model, q, t), BSVI_ERR_CANCELLED);
    assert_true(lg.calls - c0 == 2);
    TU_OK(bsvi_svi_set_progress(svi, NULL, NULL));
    assert_stats(svi, &want);
    assert_stream(svi, 9, 7, 6);

    /* setters do not reset the counters; set_seed resets the call counter only */
    TU_OK(bsvi_svi_set_seed(svi, 10));
    TU_OK(bsvi_svi_set_steps(svi, 0));
    const bsvi_svi_options dflt = bsvi_svi_options_default();
    TU_OK(bsvi_svi_set_options(svi, &dflt));
    assert_stats(svi, &want);
    assert_stream(svi, 10, 0, 6);
    /* k = 0: one call, no step */
    TU_OK(bsvi_svi_set_steps(svi, 0));
    c0 = lg.calls, r0 = lg.rows;
    TU_OK(bsvi_svi_run(svi, model, q, t));
    want.calls = 4;
    want.data_points = 4 * B;
    want.likelihood_calls += 1;
    want.likelihood_rows += lg.rows - r0;
    assert_true(lg.calls - c0 == 1 && lg.rows - r0 == B);
    assert_stats(svi, &want);

    /* reset_stats: zeros; the stream is kept */
    TU_OK(bsvi_svi_reset_stats(svi));
    memset(&want, 0, sizeof want);
    assert_stats(svi, &want);
    assert_stream(svi, 10, 1, 6);
    /* each handle counts only its own runs */
    bsvi_svi *other = NULL;
    TU_OK(bsvi_svi_create(d, &other));
    TU_OK(bsvi_svi_run(other, model, q, t));
    assert_stats(svi, &want);
    TU_OK(bsvi_svi_get_stats(other, &st));
    assert_true(st.calls == 1 && st.svi_steps == 10 && st.likelihood_calls == 11);

    bsvi_svi_destroy(other);
    bsvi_model_destroy(faulty);
    bsvi_svi_destroy(svi);
    bsvi_trajectory_destroy(t);
    bsvi_proposal_destroy(q);
    bsvi_model_destroy(model);
    bsvi_model_destroy(model3);
    bsvi_model_destroy(hostprior);
    bsvi_model_destroy(nolik);
    lg_free(&lg);
    lg_free(&lg3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_setters),
        cmocka_unit_test(test_options_defaults),
        cmocka_unit_test(test_set_options_validation),
        cmocka_unit_test(test_options_equal_setters),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_buffer_and_rules),
        cmocka_unit_test(test_zero_steps),
        cmocka_unit_test(test_gradient_finite_differences),
        cmocka_unit_test(test_gradient_forms_expectation),
        cmocka_unit_test(test_exact_posterior_fixed_point),
        cmocka_unit_test(test_svi_raises_elbo),
        cmocka_unit_test(test_double_sampling),
        cmocka_unit_test(test_neg_inf_rows),
        cmocka_unit_test(test_reproducibility_and_split),
        cmocka_unit_test(test_run_bad_input),
        cmocka_unit_test(test_divergence_freeze),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_stream_and_stats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
