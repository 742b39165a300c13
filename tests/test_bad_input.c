/* test_bad_input.c: host callbacks that fail, write NaN, or give zero density, seen through
 * every calling function (SVI, estimators, evaluator). Each failure gives its own status and a
 * message naming the problem; caller buffers and handle state stay as they were; the handle
 * still works afterwards and matches a fresh handle. Zero density is not a failure by default
 * (BSVI_POINTS_REPORT: that data point's bound is -INFINITY, the others are as in a batch
 * without it); BSVI_POINTS_FAIL makes it one (BSVI_ERR_NUMERIC). (Argument checks: in each
 * program.) */
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

/* The likelihood of lg_likelihood, but zero (-INFINITY) for data point zero_index. */
typedef struct one_zero {
    lg_model *lg;
    size_t zero_index;
} one_zero;

static int one_zero_likelihood(size_t n, size_t dim, const double *z, const size_t *data_index,
                               double *log_density, double *grad, void *user_data)
{
    one_zero *o = user_data;
    const int rc = lg_likelihood(n, dim, z, data_index, log_density, grad, o->lg);
    for (size_t r = 0; r < n; ++r) {
        if (data_index[r] == o->zero_index) {
            log_density[r] = -INFINITY;
        }
    }
    return rc;
}

/* ELBO (kind 0) or IWAE with its 0.1 default K = 10 (kind 1). */
static bsvi_status compute(bsvi_estimator *e, int kind, const bsvi_model *m, const bsvi_proposal *q)
{
    return kind == 0 ? bsvi_estimator_elbo(e, m, q, BSVI_GRAD_PATHWISE)
                     : bsvi_estimator_iwae(e, m, q, 10, BSVI_GRAD_PATHWISE);
}

static void test_estimator_callback_faults(void **state)
{
    (void)state;
    fx s;
    fx_init(&s);
    for (int kind = 0; kind < 2; ++kind) {
        bsvi_estimator *e = NULL, *fresh = NULL;
        TU_OK(bsvi_estimator_create(s.d, &e));
        TU_OK(bsvi_estimator_create(s.d, &fresh));
        TU_OK(compute(e, kind, s.good, s.q));
        TU_OK(compute(fresh, kind, s.good, s.q));
        const size_t n = bsvi_estimator_num_targets(e);
        double before[3], after[3];
        double *zb = tu_alloc(n * s.d), *za = tu_alloc(n * s.d);
        double gb[6], ga[6];
        read_bounds(e, before, s.B);
        TU_OK(bsvi_estimator_get_targets(e, n, NULL, NULL, zb, NULL));
        TU_OK(bsvi_estimator_get_encoder_grad(e, s.B, gb, NULL));
        bsvi_stats st0, st1;
        TU_OK(bsvi_estimator_get_stats(e, &st0));
        for (size_t c = 0; c < NCASES; ++c) {
            if (cases[c].ok_calls > 0) {
                continue; /* one callback call per compute */
            }
            arm(&s, &cases[c]);
            TU_STATUS(compute(e, kind, s.bad, s.q), cases[c].expected);
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
        /* Zero density for every sample under BSVI_POINTS_FAIL: NUMERIC, results kept. */
        s.f.mode = LG_FAULT_NEG_INF;
        s.f.ok_calls = 0;
        TU_OK(bsvi_estimator_set_point_policy(e, BSVI_POINTS_FAIL));
        TU_STATUS(compute(e, kind, s.bad, s.q), BSVI_ERR_NUMERIC);
        TU_MESSAGE(bsvi_estimator_last_error(e));
        read_bounds(e, after, s.B);
        TU_BITWISE(after, before, s.B);
        TU_OK(bsvi_estimator_set_point_policy(e, BSVI_POINTS_REPORT));
        /* The failures counted nothing. */
        TU_OK(bsvi_estimator_get_stats(e, &st1));
        assert_memory_equal(&st0, &st1, sizeof st0);
        /* Still works, matching a fresh handle (the failures drew nothing). */
        TU_OK(compute(e, kind, s.good, s.q));
        TU_OK(compute(fresh, kind, s.good, s.q));
        read_bounds(e, before, s.B);
        read_bounds(fresh, after, s.B);
        TU_BITWISE(after, before, s.B);

        /* Zero density for every sample under BSVI_POINTS_REPORT (the default): every bound
         * -INFINITY, coefficients and encoder gradients 0, the latents still those drawn. */
        bsvi_estimator *rep = NULL;
        TU_OK(bsvi_estimator_create(s.d, &rep));
        TU_OK(compute(rep, kind, s.bad, s.q)); /* counter 0, as fresh's first compute */
        assert_int_equal(bsvi_estimator_num_zero_points(rep), s.B);
        assert_int_equal(bsvi_estimator_num_targets(rep), n);
        double *coef = tu_alloc(n);
        read_bounds(rep, after, s.B);
        TU_OK(bsvi_estimator_get_targets(rep, n, NULL, NULL, za, coef));
        TU_OK(bsvi_estimator_get_encoder_grad(rep, s.B, ga, NULL));
        for (size_t b = 0; b < s.B; ++b) {
            assert_true(after[b] == -INFINITY);
        }
        for (size_t i = 0; i < n; ++i) {
            assert_true(coef[i] == 0.0);
        }
        for (size_t i = 0; i < s.B * s.d; ++i) {
            assert_true(ga[i] == 0.0);
        }
        TU_BITWISE(za, zb, n * s.d);
        bsvi_stats st;
        TU_OK(bsvi_estimator_get_stats(rep, &st));
        assert_true(st.calls == 1 && st.data_points == s.B && st.zero_points == s.B);

        /* One data point (the last) of zero density: its bound is -INFINITY; the others'
         * results are bitwise those of the batch without it. */
        one_zero oz = {&s.lg, s.B - 1};
        bsvi_model *mz = NULL;
        TU_OK(bsvi_model_create(s.d, &mz));
        TU_OK(bsvi_model_set_likelihood(mz, one_zero_likelihood, &oz));
        double pm[6], pl[6];
        TU_OK(bsvi_proposal_get_params(s.q, pm, pl));
        bsvi_proposal *q2 = NULL;
        TU_OK(lg_make_proposal(s.B - 1, s.d, pm, pl, &q2));
        bsvi_estimator *e3 = NULL, *e2 = NULL;
        TU_OK(bsvi_estimator_create(s.d, &e3));
        TU_OK(bsvi_estimator_create(s.d, &e2));
        TU_OK(compute(e3, kind, mz, s.q));
        TU_OK(compute(e2, kind, s.good, q2));
        assert_int_equal(bsvi_estimator_num_zero_points(e3), 1);
        const size_t T = n / s.B, n2 = bsvi_estimator_num_targets(e2);
        assert_int_equal(n2, (s.B - 1) * T);
        double b3[3], b2[3], g3[6], g2[6];
        double *c3 = tu_alloc(n), *c2 = tu_alloc(n2), *z3 = tu_alloc(n * s.d),
               *z2 = tu_alloc(n2 * s.d);
        read_bounds(e3, b3, s.B);
        read_bounds(e2, b2, s.B - 1);
        TU_OK(bsvi_estimator_get_targets(e3, n, NULL, NULL, z3, c3));
        TU_OK(bsvi_estimator_get_targets(e2, n2, NULL, NULL, z2, c2));
        TU_OK(bsvi_estimator_get_encoder_grad(e3, s.B, g3, NULL));
        TU_OK(bsvi_estimator_get_encoder_grad(e2, s.B - 1, g2, NULL));
        assert_true(b3[s.B - 1] == -INFINITY);
        TU_BITWISE(b3, b2, s.B - 1);
        TU_BITWISE(c3, c2, n2);
        TU_BITWISE(z3, z2, n2 * s.d);
        TU_BITWISE(g3, g2, (s.B - 1) * s.d);
        for (size_t i = n2; i < n; ++i) {
            assert_true(c3[i] == 0.0);
        }
        for (size_t j = 0; j < s.d; ++j) {
            assert_true(g3[(s.B - 1) * s.d + j] == 0.0);
        }
        /* ... and under BSVI_POINTS_FAIL the batch fails, naming that point. */
        TU_OK(bsvi_estimator_set_point_policy(e3, BSVI_POINTS_FAIL));
        TU_STATUS(compute(e3, kind, mz, s.q), BSVI_ERR_NUMERIC);
        TU_MESSAGE_MENTIONS(bsvi_estimator_last_error(e3), "data point 2");
        read_bounds(e3, after, s.B);
        TU_BITWISE(after, b3, s.B);
        free(c3);
        free(c2);
        free(z3);
        free(z2);
        free(coef);
        bsvi_estimator_destroy(e2);
        bsvi_estimator_destroy(e3);
        bsvi_estimator_destroy(rep);
        bsvi_proposal_destroy(q2);
        bsvi_model_destroy(mz);
        free(zb);
        free(za);
        bsvi_estimator_destroy(e);
        bsvi_estimator_destroy(fresh);
    }
    fx_free(&s);
}

/* Trajectory bound kind 0: SVI-k, 1: BSVI (uniform pi), 2: BSVI-SIR with M = 3. */
static bsvi_status traj_compute(bsvi_estimator *e, int kind, const bsvi_trajectory *t)
{
    return kind == 0 ? bsvi_estimator_svi(e, t)
           : kind == 1 ? bsvi_estimator_bsvi(e, t, NULL)
                       : bsvi_estimator_bsvi_sir(e, t, NULL, 3);
}

/* A trajectory whose every weight is -INFINITY (zero density is legal for SVI): under
 * BSVI_POINTS_FAIL the trajectory-based estimators report NUMERIC, keeping their previous
 * results; under BSVI_POINTS_REPORT every bound is -INFINITY with coefficients 0. A
 * trajectory where only the last data point has zero density gives the other points
 * bitwise the results of the batch without it. */
static void test_zero_density_trajectory(void **state)
{
    (void)state;
    fx s;
    fx_init(&s);
    bsvi_svi *svi = NULL;
    bsvi_trajectory *good = NULL, *zero = NULL, *last = NULL, *two = NULL;
    TU_OK(bsvi_svi_create(s.d, &svi));
    TU_OK(bsvi_svi_set_steps(svi, 3));
    TU_OK(bsvi_trajectory_create(&good));
    TU_OK(bsvi_trajectory_create(&zero));
    TU_OK(bsvi_trajectory_create(&last));
    TU_OK(bsvi_trajectory_create(&two));
    TU_OK(bsvi_svi_run(svi, s.good, s.q, good));
    s.f.mode = LG_FAULT_NEG_INF;
    s.f.ok_calls = 0;
    TU_OK(bsvi_svi_run(svi, s.bad, s.q, zero));
    double lw[12];
    TU_OK(bsvi_trajectory_get_log_weights(zero, lw));
    for (size_t i = 0; i < 12; ++i) {
        assert_true(isinf(lw[i]) && lw[i] < 0);
    }
    /* the last data point of zero density, and the batch of the first two (same stream) */
    one_zero oz = {&s.lg, s.B - 1};
    bsvi_model *mz = NULL;
    TU_OK(bsvi_model_create(s.d, &mz));
    TU_OK(bsvi_model_set_likelihood(mz, one_zero_likelihood, &oz));
    double pm[6], pl[6];
    TU_OK(bsvi_proposal_get_params(s.q, pm, pl));
    bsvi_proposal *q2 = NULL;
    TU_OK(lg_make_proposal(s.B - 1, s.d, pm, pl, &q2));
    TU_OK(bsvi_svi_set_stream(svi, 5, 0));
    TU_OK(bsvi_svi_run(svi, mz, s.q, last));
    TU_OK(bsvi_svi_set_stream(svi, 5, 0));
    TU_OK(bsvi_svi_run(svi, s.good, q2, two));
    tu_traj tl, t2;
    tu_traj_read(last, &tl);
    tu_traj_read(two, &t2);
    tu_traj_assert_rows_equal(&tl, 0, &t2); /* SVI refines each point on its own */

    for (int kind = 0; kind < 3; ++kind) {
        bsvi_estimator *e = NULL;
        TU_OK(bsvi_estimator_create(s.d, &e));
        TU_OK(traj_compute(e, kind, good));
        double before[3], after[3];
        read_bounds(e, before, s.B);
        TU_OK(bsvi_estimator_set_point_policy(e, BSVI_POINTS_FAIL));
        TU_STATUS(traj_compute(e, kind, zero), BSVI_ERR_NUMERIC);
        TU_MESSAGE(bsvi_estimator_last_error(e));
        read_bounds(e, after, s.B);
        TU_BITWISE(after, before, s.B);
        TU_STATUS(traj_compute(e, kind, last), BSVI_ERR_NUMERIC);
        TU_MESSAGE_MENTIONS(bsvi_estimator_last_error(e), "data point 2");
        read_bounds(e, after, s.B);
        TU_BITWISE(after, before, s.B);
        TU_OK(traj_compute(e, kind, good));
        read_bounds(e, after, s.B);
        if (kind < 2) { /* SVI-k and BSVI draw nothing: the same bounds again */
            TU_BITWISE(after, before, s.B);
        }

        /* BSVI_POINTS_REPORT: every bound -inf, every coefficient 0, counted */
        bsvi_estimator *r = NULL;
        TU_OK(bsvi_estimator_create(s.d, &r));
        TU_OK(traj_compute(r, kind, zero));
        assert_int_equal(bsvi_estimator_num_zero_points(r), s.B);
        const size_t n = bsvi_estimator_num_targets(r), T = n / s.B;
        assert_int_equal(n, s.B * (kind == 0 ? 1 : kind == 1 ? 4 : 3));
        double coef[12], gm[6], tg[6];
        size_t slot[12];
        read_bounds(r, after, s.B);
        TU_OK(bsvi_estimator_get_targets(r, n, NULL, slot, NULL, coef));
        for (size_t b = 0; b < s.B; ++b) {
            assert_true(after[b] == -INFINITY);
        }
        for (size_t i = 0; i < n; ++i) {
            assert_true(coef[i] == 0.0);
            if (kind == 2) {
                assert_int_equal(slot[i], 0); /* SIR: M targets of slot 0 */
            }
        }
        /* trajectory bounds pass the trajectory's encoder gradient on */
        TU_OK(bsvi_estimator_get_encoder_grad(r, s.B, gm, NULL));
        TU_OK(bsvi_trajectory_get_encoder_grad(zero, tg, NULL));
        TU_BITWISE(gm, tg, s.B * s.d);

        /* one zero point: the others as in the batch without it */
        bsvi_estimator *e3 = NULL, *e2 = NULL;
        TU_OK(bsvi_estimator_create(s.d, &e3));
        TU_OK(bsvi_estimator_create(s.d, &e2));
        TU_OK(traj_compute(e3, kind, last));
        TU_OK(traj_compute(e2, kind, two));
        assert_int_equal(bsvi_estimator_num_zero_points(e3), 1);
        double b3[3], b2[3], c3[12], c2[12], z3[24], z2[24];
        size_t s3[12], s2[12];
        read_bounds(e3, b3, s.B);
        read_bounds(e2, b2, s.B - 1);
        TU_OK(bsvi_estimator_get_targets(e3, s.B * T, NULL, s3, z3, c3));
        TU_OK(bsvi_estimator_get_targets(e2, (s.B - 1) * T, NULL, s2, z2, c2));
        assert_true(b3[s.B - 1] == -INFINITY);
        TU_BITWISE(b3, b2, s.B - 1);
        TU_BITWISE(c3, c2, (s.B - 1) * T);
        TU_BITWISE(z3, z2, (s.B - 1) * T * s.d);
        for (size_t i = 0; i < (s.B - 1) * T; ++i) {
            assert_int_equal(s3[i], s2[i]);
        }
        for (size_t i = (s.B - 1) * T; i < s.B * T; ++i) {
            assert_true(c3[i] == 0.0);
        }
        bsvi_estimator_destroy(e2);
        bsvi_estimator_destroy(e3);
        bsvi_estimator_destroy(r);
        bsvi_estimator_destroy(e);
    }
    /* pi's gradient: zero points add nothing, to the sum or to the count */
    bsvi_buffer_weights *w = NULL, *w2 = NULL;
    TU_OK(bsvi_buffer_weights_create(4, &w));
    TU_OK(bsvi_buffer_weights_create(4, &w2));
    TU_OK(bsvi_buffer_weights_accumulate(w, zero));
    double g[4], g2[4];
    uint64_t c = 99, c2 = 99;
    TU_OK(bsvi_buffer_weights_get_gradient(w, g, &c, 4));
    assert_true(c == 0);
    for (size_t i = 0; i < 4; ++i) {
        assert_true(g[i] == 0.0);
    }
    TU_OK(bsvi_buffer_weights_accumulate(w, last));
    TU_OK(bsvi_buffer_weights_accumulate(w2, two));
    TU_OK(bsvi_buffer_weights_get_gradient(w, g, &c, 4));
    TU_OK(bsvi_buffer_weights_get_gradient(w2, g2, &c2, 4));
    assert_true(c == 2 && c2 == 2);
    TU_BITWISE(g, g2, 4);
    bsvi_buffer_weights_destroy(w);
    bsvi_buffer_weights_destroy(w2);
    tu_traj_free(&tl);
    tu_traj_free(&t2);
    bsvi_proposal_destroy(q2);
    bsvi_model_destroy(mz);
    bsvi_svi_destroy(svi);
    bsvi_trajectory_destroy(good);
    bsvi_trajectory_destroy(zero);
    bsvi_trajectory_destroy(last);
    bsvi_trajectory_destroy(two);
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
    bsvi_svi_options opts = bsvi_svi_options_default();
    opts.step_size = 0.01;
    TU_OK(bsvi_evaluator_set_svi_options(ev, &opts));
    TU_OK(bsvi_evaluator_set_svi_options(fresh, &opts));
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
                st = bsvi_evaluator_bsvi(ev, s.bad, s.q, 6, o1, fq);
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
    /* The failures counted nothing and did not advance the counter. */
    bsvi_stats st, zero_st;
    memset(&zero_st, 0, sizeof zero_st);
    TU_OK(bsvi_evaluator_get_stats(ev, &st));
    assert_memory_equal(&st, &zero_st, sizeof st);
    uint64_t counter = 99;
    TU_OK(bsvi_evaluator_get_stream(ev, NULL, &counter, NULL));
    assert_true(counter == 0);
    /* Still works and matches a fresh handle. */
    TU_OK(bsvi_evaluator_iwae(ev, s.good, s.q, 20, o1));
    TU_OK(bsvi_evaluator_iwae(fresh, s.good, s.q, 20, o2));
    TU_BITWISE(o1, o2, 3);
    TU_OK(bsvi_evaluator_bsvi(ev, s.good, s.q, 6, o1, NULL));
    TU_OK(bsvi_evaluator_bsvi(fresh, s.good, s.q, 6, o2, NULL));
    TU_BITWISE(o1, o2, 3);
    bsvi_proposal_destroy(fq);
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
