/* test_bad_input.c: host callbacks that fail, write NaN, or give zero density, seen through
 * every calling function (SVI, estimators, evaluator). Each failure gives its own status and a
 * message naming the problem; caller buffers and handle state stay as they were; the handle
 * still works afterwards and matches a fresh handle. (Argument checks: in each program.) */
#include "testutil.h"
#include "lingauss.h"

#include <stdlib.h>

typedef struct fx {
    lg_model lg;
    lg_faulty f;
    bsvi_model *good, *bad;
    bsvi_proposal *q;
    size_t B, d;
} fx;

static void fx_init(fx *s)
{
    memset(s, 0, sizeof *s);
    s->B = 3;
    s->d = 2;
    assert_int_equal(lg_init(&s->lg, s->d, 4, s->B, 0.9, 0, 5), 0);
    TU_OK(lg_make_model(&s->lg, &s->good));
    s->f.lg = &s->lg;
    s->f.code = 42;
    TU_OK(bsvi_model_create(s->d, &s->bad));
    TU_OK(bsvi_model_set_likelihood(s->bad, lg_faulty_likelihood, &s->f));
    const double mean[6] = {0.1, -0.2, 0.3, 0.0, -0.4, 0.2};
    const double ls[6] = {-0.1, 0.0, 0.1, -0.3, 0.2, 0.0};
    TU_OK(lg_make_proposal(s->B, s->d, mean, ls, &s->q));
}

static void fx_free(fx *s)
{
    bsvi_model_destroy(s->good);
    bsvi_model_destroy(s->bad);
    bsvi_proposal_destroy(s->q);
    lg_free(&s->lg);
}

typedef struct fault_case {
    int mode;
    unsigned long ok_calls;
    bsvi_status expected;
    const char *words; /* the message must mention one of these */
} fault_case;

/* Fail at the first call and at a later SVI step; code, NaN density, NaN gradient. */
static const fault_case cases[] = {
    {LG_FAULT_CODE, 0, BSVI_ERR_CALLBACK_FAILED, "likelihood"},
    {LG_FAULT_CODE, 2, BSVI_ERR_CALLBACK_FAILED, "likelihood"},
    {LG_FAULT_NAN, 0, BSVI_ERR_CALLBACK_NAN, "nan"},
    {LG_FAULT_NAN, 2, BSVI_ERR_CALLBACK_NAN, "nan"},
    {LG_FAULT_NAN_GRAD, 0, BSVI_ERR_CALLBACK_NAN, "gradient|non-finite|nan"},
    {LG_FAULT_NAN_GRAD, 3, BSVI_ERR_CALLBACK_NAN, "gradient|non-finite|nan"},
};
#define NCASES (sizeof cases / sizeof cases[0])

static void arm(fx *s, const fault_case *c)
{
    s->f.mode = c->mode;
    s->f.ok_calls = c->ok_calls;
    s->f.calls = 0;
}

static void test_svi_callback_faults(void **state)
{
    (void)state;
    fx s;
    fx_init(&s);
    bsvi_svi *svi = NULL, *fresh = NULL;
    bsvi_trajectory *t = NULL, *tf = NULL;
    TU_OK(bsvi_svi_create(s.d, &svi));
    TU_OK(bsvi_svi_create(s.d, &fresh));
    TU_OK(bsvi_trajectory_create(&t));
    TU_OK(bsvi_trajectory_create(&tf));
    TU_OK(bsvi_svi_set_steps(svi, 4));
    TU_OK(bsvi_svi_set_steps(fresh, 4));
    TU_OK(bsvi_svi_run(svi, s.good, s.q, t)); /* a previous good result */
    TU_OK(bsvi_svi_run(fresh, s.good, s.q, tf));
    tu_traj before;
    tu_traj_read(t, &before);
    for (size_t c = 0; c < NCASES; ++c) {
        arm(&s, &cases[c]);
        TU_STATUS(bsvi_svi_run(svi, s.bad, s.q, t), cases[c].expected);
        TU_MESSAGE_MENTIONS(bsvi_svi_last_error(svi), cases[c].words);
        if (cases[c].mode == LG_FAULT_CODE) {
            TU_MESSAGE_MENTIONS(bsvi_svi_last_error(svi), "42");
        }
        assert_true(s.f.calls > cases[c].ok_calls); /* the fault was reached */
        tu_traj after;
        tu_traj_read(t, &after);
        tu_traj_assert_equal(&before, &after);
        tu_traj_free(&after);
    }
    /* Still works; the failed runs did not advance the counter. */
    TU_OK(bsvi_svi_run(svi, s.good, s.q, t));
    TU_OK(bsvi_svi_run(fresh, s.good, s.q, tf));
    tu_traj a, b;
    tu_traj_read(t, &a);
    tu_traj_read(tf, &b);
    tu_traj_assert_equal(&a, &b);
    tu_traj_free(&a);
    tu_traj_free(&b);
    tu_traj_free(&before);
    bsvi_svi_destroy(svi);
    bsvi_svi_destroy(fresh);
    bsvi_trajectory_destroy(t);
    bsvi_trajectory_destroy(tf);
    fx_free(&s);
}

static void read_bounds(const bsvi_estimator *e, double *out, size_t B)
{
    TU_OK(bsvi_estimator_get_bounds(e, out, B));
}

static void test_estimator_callback_faults(void **state)
{
    (void)state;
    fx s;
    fx_init(&s);
    const bsvi_bound kinds[2] = {BSVI_BOUND_ELBO, BSVI_BOUND_IWAE};
    for (size_t kk = 0; kk < 2; ++kk) {
        bsvi_estimator *e = NULL, *fresh = NULL;
        TU_OK(bsvi_estimator_create(kinds[kk], s.d, &e));
        TU_OK(bsvi_estimator_create(kinds[kk], s.d, &fresh));
        TU_OK(bsvi_estimator_compute(e, s.good, s.q, NULL));
        TU_OK(bsvi_estimator_compute(fresh, s.good, s.q, NULL));
        const size_t n = bsvi_estimator_num_targets(e);
        double before[3], after[3];
        double *zb = tu_alloc(n * s.d), *za = tu_alloc(n * s.d);
        double gb[6], ga[6];
        read_bounds(e, before, s.B);
        TU_OK(bsvi_estimator_get_targets(e, n, NULL, NULL, zb, NULL));
        TU_OK(bsvi_estimator_get_encoder_grad(e, s.B, gb, NULL));
        for (size_t c = 0; c < NCASES; ++c) {
            if (cases[c].ok_calls > 0) {
                continue; /* one callback call per compute */
            }
            arm(&s, &cases[c]);
            TU_STATUS(bsvi_estimator_compute(e, s.bad, s.q, NULL), cases[c].expected);
            TU_MESSAGE_MENTIONS(bsvi_estimator_last_error(e), cases[c].words);
            if (cases[c].mode == LG_FAULT_CODE) {
                TU_MESSAGE_MENTIONS(bsvi_estimator_last_error(e), "42");
            }
            assert_int_equal(bsvi_estimator_num_targets(e), n);
            read_bounds(e, after, s.B);
            TU_BITWISE(after, before, s.B);
            TU_OK(bsvi_estimator_get_targets(e, n, NULL, NULL, za, NULL));
            TU_BITWISE(za, zb, n * s.d);
            TU_OK(bsvi_estimator_get_encoder_grad(e, s.B, ga, NULL));
            TU_BITWISE(ga, gb, s.B * s.d);
        }
        /* Zero density for every sample: NUMERIC. */
        s.f.mode = LG_FAULT_NEG_INF;
        s.f.ok_calls = 0;
        TU_STATUS(bsvi_estimator_compute(e, s.bad, s.q, NULL), BSVI_ERR_NUMERIC);
        TU_MESSAGE(bsvi_estimator_last_error(e));
        read_bounds(e, after, s.B);
        TU_BITWISE(after, before, s.B);
        /* Still works, matching a fresh handle (the failures drew nothing). */
        TU_OK(bsvi_estimator_compute(e, s.good, s.q, NULL));
        TU_OK(bsvi_estimator_compute(fresh, s.good, s.q, NULL));
        read_bounds(e, before, s.B);
        read_bounds(fresh, after, s.B);
        TU_BITWISE(after, before, s.B);
        free(zb);
        free(za);
        bsvi_estimator_destroy(e);
        bsvi_estimator_destroy(fresh);
    }
    fx_free(&s);
}

/* A trajectory whose every weight is -INFINITY (zero density is legal for SVI) makes the
 * trajectory-based estimators report NUMERIC, keeping their previous results. */
static void test_zero_density_trajectory(void **state)
{
    (void)state;
    fx s;
    fx_init(&s);
    bsvi_svi *svi = NULL;
    bsvi_trajectory *good = NULL, *zero = NULL;
    TU_OK(bsvi_svi_create(s.d, &svi));
    TU_OK(bsvi_svi_set_steps(svi, 3));
    TU_OK(bsvi_trajectory_create(&good));
    TU_OK(bsvi_trajectory_create(&zero));
    TU_OK(bsvi_svi_run(svi, s.good, s.q, good));
    s.f.mode = LG_FAULT_NEG_INF;
    s.f.ok_calls = 0;
    TU_OK(bsvi_svi_run(svi, s.bad, s.q, zero));
    double lw[12];
    TU_OK(bsvi_trajectory_get_log_weights(zero, lw));
    for (size_t i = 0; i < 12; ++i) {
        assert_true(isinf(lw[i]) && lw[i] < 0);
    }
    const bsvi_bound kinds[3] = {BSVI_BOUND_SVI, BSVI_BOUND_BSVI, BSVI_BOUND_BSVI_SIR};
    for (size_t kk = 0; kk < 3; ++kk) {
        bsvi_estimator *e = NULL;
        TU_OK(bsvi_estimator_create(kinds[kk], s.d, &e));
        TU_OK(bsvi_estimator_compute(e, NULL, NULL, good));
        double before[3], after[3];
        read_bounds(e, before, s.B);
        TU_STATUS(bsvi_estimator_compute(e, NULL, NULL, zero), BSVI_ERR_NUMERIC);
        TU_MESSAGE(bsvi_estimator_last_error(e));
        read_bounds(e, after, s.B);
        TU_BITWISE(after, before, s.B);
        TU_OK(bsvi_estimator_compute(e, NULL, NULL, good));
        bsvi_estimator_destroy(e);
    }
    bsvi_svi_destroy(svi);
    bsvi_trajectory_destroy(good);
    bsvi_trajectory_destroy(zero);
    fx_free(&s);
}

static void test_evaluator_callback_faults(void **state)
{
    (void)state;
    fx s;
    fx_init(&s);
    bsvi_evaluator *ev = NULL, *fresh = NULL;
    TU_OK(bsvi_evaluator_create(s.d, &ev));
    TU_OK(bsvi_evaluator_create(s.d, &fresh));
    TU_OK(bsvi_evaluator_set_chunk_rows(ev, 4)); /* several callback calls per evaluation */
    TU_OK(bsvi_evaluator_set_chunk_rows(fresh, 4));
    bsvi_svi *svi = NULL;
    TU_OK(bsvi_svi_create(s.d, &svi));
    TU_OK(bsvi_svi_set_step_size(svi, 0.01));
    bsvi_proposal *fq = NULL;
    TU_OK(bsvi_proposal_create(s.B, s.d, &fq));
    double o1[3], o2[3], o3[3], fm[6], fl[6];
    for (size_t c = 0; c < NCASES; ++c) {
        for (int fn = 0; fn < 3; ++fn) {
            if (fn != 1 && cases[c].mode == LG_FAULT_NAN_GRAD) {
                continue; /* IWAE-S and ELBO* need no gradient */
            }
            arm(&s, &cases[c]);
            tu_fill(o1, 3, TU_SENTINEL);
            tu_fill(o2, 3, TU_SENTINEL);
            tu_fill(o3, 3, TU_SENTINEL);
            bsvi_status st;
            if (fn == 0) {
                st = bsvi_evaluator_iwae(ev, s.bad, s.q, 20, o1);
            } else if (fn == 1) {
                st = bsvi_evaluator_bsvi(ev, s.bad, s.q, svi, 6, o1, fq);
            } else {
                st = bsvi_evaluator_elbo_star(ev, s.bad, s.q, 20, o1, o2, o3);
            }
            TU_STATUS(st, cases[c].expected);
            TU_MESSAGE_MENTIONS(bsvi_evaluator_last_error(ev), cases[c].words);
            if (cases[c].mode == LG_FAULT_CODE) {
                TU_MESSAGE_MENTIONS(bsvi_evaluator_last_error(ev), "42");
            }
            TU_UNTOUCHED(o1, 3);
            TU_UNTOUCHED(o2, 3);
            TU_UNTOUCHED(o3, 3);
            TU_OK(bsvi_proposal_get_params(fq, fm, fl));
            for (size_t i = 0; i < 6; ++i) {
                assert_true(fm[i] == 0.0 && fl[i] == 0.0); /* final_q untouched */
            }
        }
    }
    /* Still works and matches a fresh handle. */
    TU_OK(bsvi_evaluator_iwae(ev, s.good, s.q, 20, o1));
    TU_OK(bsvi_evaluator_iwae(fresh, s.good, s.q, 20, o2));
    TU_BITWISE(o1, o2, 3);
    TU_OK(bsvi_evaluator_bsvi(ev, s.good, s.q, svi, 6, o1, NULL));
    TU_OK(bsvi_evaluator_bsvi(fresh, s.good, s.q, svi, 6, o2, NULL));
    TU_BITWISE(o1, o2, 3);
    bsvi_proposal_destroy(fq);
    bsvi_svi_destroy(svi);
    bsvi_evaluator_destroy(ev);
    bsvi_evaluator_destroy(fresh);
    fx_free(&s);
}

/* A failing host prior is reported as the prior. */
static void test_prior_faults(void **state)
{
    (void)state;
    fx s;
    fx_init(&s);
    lg_faulty pf = {&s.lg, 1, 0, 9, LG_FAULT_CODE};
    bsvi_model *m = NULL;
    TU_OK(lg_make_model(&s.lg, &m));
    TU_OK(bsvi_model_set_prior(m, lg_faulty_likelihood, &pf)); /* fails from its 2nd call */
    bsvi_svi *svi = NULL;
    bsvi_trajectory *t = NULL;
    TU_OK(bsvi_svi_create(s.d, &svi));
    TU_OK(bsvi_trajectory_create(&t));
    TU_STATUS(bsvi_svi_run(svi, m, s.q, t), BSVI_ERR_CALLBACK_FAILED);
    TU_MESSAGE_MENTIONS(bsvi_svi_last_error(svi), "prior");
    assert_int_equal(bsvi_trajectory_batch(t), 0); /* still empty */
    bsvi_svi_destroy(svi);
    bsvi_trajectory_destroy(t);
    bsvi_model_destroy(m);
    fx_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_svi_callback_faults),
        cmocka_unit_test(test_estimator_callback_faults),
        cmocka_unit_test(test_zero_density_trajectory),
        cmocka_unit_test(test_evaluator_callback_faults),
        cmocka_unit_test(test_prior_faults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
