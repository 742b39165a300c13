/* test_weights.c: the buffer-weights handle (weights.h). Creation and its limits; pi and its
 * logits (round trips, zero slots, the mean position); what set_probs resets and set_logits
 * keeps; the accumulated gradient over a trajectory and over host terms against sum_b
 * (r_b - pi) recomputed here, its count, zero-density points; the gradient exchange of
 * data-parallel training (get, add, set) against one whole batch; Adam against a hand
 * computation; refused steps (NUMERIC) and every bad input leave the handle as it was; and
 * the estimators only read the handle. Every status observed is checked against the header's
 * list (tests/support/statusdoc.c). */
#include "testutil.h"
#include "lingauss.h"
#include "statusdoc.h"

#include <stdlib.h>

#define NMAX 8

/* ---- helpers ---------------------------------------------------------------------- */

/* Everything observable on a weights handle. */
typedef struct wsnap {
    size_t n;
    double logits[NMAX], probs[NMAX], m[NMAX], v[NMAX], sum[NMAX], pos;
    uint64_t steps, count;
} wsnap;

static void wsnap_take(const bsvi_buffer_weights *w, wsnap *s)
{
    memset(s, 0, sizeof *s);
    s->n = bsvi_buffer_weights_size(w);
    assert_true(s->n >= 1 && s->n <= NMAX);
    TU_OK(bsvi_buffer_weights_get_logits(w, s->logits, s->n));
    TU_OK(bsvi_buffer_weights_get_probs(w, s->probs, s->n));
    TU_OK(bsvi_buffer_weights_get_adam_state(w, s->m, s->v, &s->steps, s->n));
    TU_OK(bsvi_buffer_weights_get_gradient(w, s->sum, &s->count, s->n));
    TU_OK(bsvi_buffer_weights_mean_position(w, &s->pos));
}

/* Fail unless the handle is bitwise as in the snapshot. */
static void wsnap_equal(const bsvi_buffer_weights *w, const wsnap *before)
{
    wsnap now;
    wsnap_take(w, &now);
    assert_int_equal(now.n, before->n);
    TU_BITWISE(now.logits, before->logits, now.n);
    TU_BITWISE(now.probs, before->probs, now.n);
    TU_BITWISE(now.m, before->m, now.n);
    TU_BITWISE(now.v, before->v, now.n);
    TU_BITWISE(now.sum, before->sum, now.n);
    TU_BITWISE(&now.pos, &before->pos, 1);
    assert_true(now.steps == before->steps);
    assert_true(now.count == before->count);
}

static bsvi_buffer_weights *make_w(size_t n)
{
    bsvi_buffer_weights *w = NULL;
    TU_OK(bsvi_buffer_weights_create(n, &w));
    assert_non_null(w);
    return w;
}

/* sum_b (r_b - pi) and the number of data points with a finite bound, r_b = softmax(log pi +
 * log w_b), for B rows of n log weights. */
static void hand_gradient(const double *lw, size_t B, size_t n, const double *pi, double *sum,
                          uint64_t *count)
{
    for (size_t i = 0; i < n; ++i) {
        sum[i] = 0.0;
    }
    *count = 0;
    for (size_t b = 0; b < B; ++b) {
        double a[NMAX], mx = -INFINITY, s = 0.0;
        for (size_t i = 0; i < n; ++i) {
            a[i] = (pi[i] > 0.0 ? log(pi[i]) : -INFINITY) + lw[b * n + i];
            mx = fmax(mx, a[i]);
        }
        if (mx == -INFINITY) {
            continue;
        }
        for (size_t i = 0; i < n; ++i) {
            s += exp(a[i] - mx);
        }
        for (size_t i = 0; i < n; ++i) {
            sum[i] += exp(a[i] - mx) / s - pi[i];
        }
        ++*count;
    }
}

/* A likelihood equal to lg_likelihood except that data point zero_b (of the batch) has zero
 * density everywhere. */
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

/* A small linear-Gaussian problem and its SVI refinement. */
typedef struct prob {
    lg_model lg;
    zlik zl;
    bsvi_model *model;
    bsvi_proposal *q;
    bsvi_svi *svi;
    size_t B, d, k;
} prob;

static void prob_init(prob *p, size_t B, size_t k, uint64_t seed, int zero_point)
{
    memset(p, 0, sizeof *p);
    p->B = B;
    p->d = 2;
    p->k = k;
    assert_int_equal(lg_init(&p->lg, p->d, 3, B, 0.8, 0, seed), 0);
    if (zero_point) {
        p->zl.lg = &p->lg;
        p->zl.zero_b = 2;
        TU_OK(bsvi_model_create(p->d, &p->model));
        TU_OK(bsvi_model_set_likelihood(p->model, zero_point_likelihood, &p->zl));
    } else {
        TU_OK(lg_make_model(&p->lg, &p->model));
    }
    double mean[64], ls[64];
    assert_true(B * p->d <= 64);
    for (size_t i = 0; i < B * p->d; ++i) {
        mean[i] = 0.25 * (double)(i % 5) - 0.5;
        ls[i] = -0.1 * (double)(i % 4);
    }
    TU_OK(lg_make_proposal(B, p->d, mean, ls, &p->q));
    TU_OK(bsvi_svi_create(p->d, &p->svi));
    TU_OK(bsvi_svi_set_steps(p->svi, k));
    TU_OK(bsvi_svi_set_step_size(p->svi, 0.05));
    TU_OK(bsvi_svi_set_seed(p->svi, seed));
}

static bsvi_trajectory *prob_run(prob *p)
{
    bsvi_trajectory *t = NULL;
    TU_OK(bsvi_trajectory_create(&t));
    TU_OK(bsvi_svi_run(p->svi, p->model, p->q, t));
    return t;
}

static void prob_free(prob *p)
{
    bsvi_svi_destroy(p->svi);
    bsvi_proposal_destroy(p->q);
    bsvi_model_destroy(p->model);
    lg_free(&p->lg);
}

/* ---- creation, pi and logits --------------------------------------------------------- */

static void test_create_and_limits(void **state)
{
    (void)state;
    bsvi_buffer_weights *w = (bsvi_buffer_weights *)(void *)&w;
    DOC_STATUS("bsvi_buffer_weights_create", bsvi_buffer_weights_create(0, &w), BSVI_ERR_ZERO_SIZE);
    assert_null(w);
    w = (bsvi_buffer_weights *)(void *)&w;
    DOC_STATUS("bsvi_buffer_weights_create", bsvi_buffer_weights_create(BSVI_MAX_STEPS + 2, &w),
             BSVI_ERR_OUT_OF_RANGE);
    assert_null(w);
    DOC_STATUS("bsvi_buffer_weights_create", bsvi_buffer_weights_create(3, NULL),
             BSVI_ERR_NULL_ARGUMENT);
    /* The largest size is accepted. */
    DOC_STATUS("bsvi_buffer_weights_create", bsvi_buffer_weights_create(BSVI_MAX_STEPS + 1, &w),
             BSVI_OK);
    assert_int_equal(bsvi_buffer_weights_size(w), BSVI_MAX_STEPS + 1);
    double pos = -1.0;
    TU_OK(bsvi_buffer_weights_mean_position(w, &pos));
    TU_NEAR(pos, 0.5, 1e-12);
    bsvi_buffer_weights_destroy(w);

    /* A new handle: uniform, no gradient, no Adam state, no message. */
    for (size_t n = 1; n <= 6; ++n) {
        w = make_w(n);
        assert_int_equal(bsvi_buffer_weights_size(w), n);
        assert_string_equal(bsvi_buffer_weights_last_error(w), "");
        wsnap s;
        wsnap_take(w, &s);
        for (size_t i = 0; i < n; ++i) {
            TU_NEAR(s.probs[i], 1.0 / (double)n, 1e-15);
            assert_true(s.logits[i] == s.logits[0]);
            assert_true(s.m[i] == 0.0 && s.v[i] == 0.0 && s.sum[i] == 0.0);
        }
        assert_true(s.steps == 0 && s.count == 0);
        if (n == 1) {
            assert_true(s.pos == 0.0);
            assert_true(s.probs[0] == 1.0);
        } else {
            TU_NEAR(s.pos, 0.5, 1e-15);
        }
        bsvi_buffer_weights_destroy(w);
    }
    bsvi_buffer_weights_destroy(NULL);
    assert_int_equal(bsvi_buffer_weights_size(NULL), 0);
    TU_MESSAGE(bsvi_buffer_weights_last_error(NULL));
}

static void test_probs_logits_round_trip(void **state)
{
    (void)state;
    bsvi_buffer_weights *w = make_w(4);
    const double p4[4] = {0.1, 0.2, 0.3, 0.4};
    DOC_STATUS("bsvi_buffer_weights_set_probs", bsvi_buffer_weights_set_probs(w, p4, 4), BSVI_OK);
    double pi[4], a[4], pos;
    DOC_STATUS("bsvi_buffer_weights_get_probs", bsvi_buffer_weights_get_probs(w, pi, 4), BSVI_OK);
    for (size_t i = 0; i < 4; ++i) {
        TU_NEAR(pi[i], p4[i], 1e-15);
    }
    /* pi = softmax(logits) */
    DOC_STATUS("bsvi_buffer_weights_get_logits", bsvi_buffer_weights_get_logits(w, a, 4), BSVI_OK);
    {
        const double l = bsvi_logsumexp(a, 4);
        for (size_t i = 0; i < 4; ++i) {
            TU_NEAR(exp(a[i] - l), p4[i], 1e-15);
        }
    }
    DOC_STATUS("bsvi_buffer_weights_mean_position", bsvi_buffer_weights_mean_position(w, &pos),
             BSVI_OK);
    TU_NEAR(pos, (0.2 * 1.0 + 0.3 * 2.0 + 0.4 * 3.0) / 3.0, 1e-15);

    /* Logits are copied as given (no re-centring) and read back bitwise. */
    const double l4[4] = {2.5, -1.0, 0.125, -INFINITY};
    DOC_STATUS("bsvi_buffer_weights_set_logits", bsvi_buffer_weights_set_logits(w, l4, 4), BSVI_OK);
    TU_OK(bsvi_buffer_weights_get_logits(w, a, 4));
    TU_BITWISE(a, l4, 4);
    TU_OK(bsvi_buffer_weights_get_probs(w, pi, 4));
    {
        const double l = log(exp(2.5) + exp(-1.0) + exp(0.125));
        double ref_pos = 0.0;
        for (size_t i = 0; i < 3; ++i) {
            TU_NEAR(pi[i], exp(l4[i] - l), 1e-15);
            ref_pos += pi[i] * (double)i / 3.0;
        }
        assert_true(pi[3] == 0.0);
        TU_OK(bsvi_buffer_weights_mean_position(w, &pos));
        TU_NEAR(pos, ref_pos, 1e-15);
    }
    /* The probabilities of one handle set on another give the same pi. */
    bsvi_buffer_weights *w2 = make_w(4);
    TU_OK(bsvi_buffer_weights_set_probs(w2, pi, 4));
    double pi2[4];
    TU_OK(bsvi_buffer_weights_get_probs(w2, pi2, 4));
    for (size_t i = 0; i < 4; ++i) {
        TU_NEAR(pi2[i], pi[i], 1e-15);
    }
    assert_true(pi2[3] == 0.0);
    TU_OK(bsvi_buffer_weights_get_logits(w2, a, 4));
    assert_true(a[3] == -INFINITY); /* a zero probability is the logit -INFINITY */
    /* Huge logits: pi is still a distribution. */
    const double big[4] = {1e300, 1e300 - 1e290, -1e300, 0.0};
    TU_OK(bsvi_buffer_weights_set_logits(w2, big, 4));
    TU_OK(bsvi_buffer_weights_get_probs(w2, pi2, 4));
    assert_true(pi2[0] == 1.0 && pi2[1] == 0.0 && pi2[2] == 0.0 && pi2[3] == 0.0);
    /* A single slot: pi = 1 whatever the logit, position 0. */
    bsvi_buffer_weights *w1 = make_w(1);
    const double one = -123.0;
    TU_OK(bsvi_buffer_weights_set_logits(w1, &one, 1));
    TU_OK(bsvi_buffer_weights_get_probs(w1, pi, 1));
    assert_true(pi[0] == 1.0);
    TU_OK(bsvi_buffer_weights_mean_position(w1, &pos));
    assert_true(pos == 0.0);
    bsvi_buffer_weights_destroy(w1);
    bsvi_buffer_weights_destroy(w2);
    bsvi_buffer_weights_destroy(w);
}

/* set_probs resets the Adam state and the accumulated gradient; set_logits keeps both. */
static void test_set_probs_resets_set_logits_keeps(void **state)
{
    (void)state;
    bsvi_buffer_weights *w = make_w(3);
    const double m[3] = {0.1, -0.2, 0.3}, v[3] = {0.01, 0.04, 0.09}, g[3] = {0.5, -0.25, -0.25};
    DOC_STATUS("bsvi_buffer_weights_set_adam_state",
             bsvi_buffer_weights_set_adam_state(w, m, v, 7, 3), BSVI_OK);
    DOC_STATUS("bsvi_buffer_weights_set_gradient", bsvi_buffer_weights_set_gradient(w, g, 5, 3),
             BSVI_OK);
    const double l3[3] = {0.0, -1.0, -2.0};
    TU_OK(bsvi_buffer_weights_set_logits(w, l3, 3));
    double m2[3], v2[3], g2[3];
    uint64_t steps = 0, count = 0;
    DOC_STATUS("bsvi_buffer_weights_get_adam_state",
             bsvi_buffer_weights_get_adam_state(w, m2, v2, &steps, 3), BSVI_OK);
    TU_BITWISE(m2, m, 3);
    TU_BITWISE(v2, v, 3);
    assert_true(steps == 7);
    DOC_STATUS("bsvi_buffer_weights_get_gradient",
             bsvi_buffer_weights_get_gradient(w, g2, &count, 3), BSVI_OK);
    TU_BITWISE(g2, g, 3);
    assert_true(count == 5);
    /* NULL outputs are skipped. */
    TU_OK(bsvi_buffer_weights_get_adam_state(w, NULL, NULL, NULL, 3));
    TU_OK(bsvi_buffer_weights_get_adam_state(w, NULL, v2, NULL, 3));
    TU_OK(bsvi_buffer_weights_get_gradient(w, NULL, NULL, 3));
    count = 0;
    TU_OK(bsvi_buffer_weights_get_gradient(w, NULL, &count, 3));
    assert_true(count == 5);

    const double p3[3] = {0.5, 0.25, 0.25};
    TU_OK(bsvi_buffer_weights_set_probs(w, p3, 3));
    TU_OK(bsvi_buffer_weights_get_adam_state(w, m2, v2, &steps, 3));
    TU_OK(bsvi_buffer_weights_get_gradient(w, g2, &count, 3));
    for (size_t i = 0; i < 3; ++i) {
        assert_true(m2[i] == 0.0 && v2[i] == 0.0 && g2[i] == 0.0);
    }
    assert_true(steps == 0 && count == 0);
    /* ... so the next step is a first Adam step: each logit moves by about lr. */
    TU_OK(bsvi_buffer_weights_set_gradient(w, g, 1, 3));
    double a0[3], a1[3];
    TU_OK(bsvi_buffer_weights_get_logits(w, a0, 3));
    TU_OK(bsvi_buffer_weights_step(w));
    TU_OK(bsvi_buffer_weights_get_logits(w, a1, 3));
    const double mx = a0[0] + 1e-2; /* slot 0 has the positive gradient */
    for (size_t i = 0; i < 3; ++i) {
        TU_NEAR(a1[i], a0[i] + 1e-2 * (g[i] > 0.0 ? 1.0 : -1.0) - mx, 1e-9);
    }
    bsvi_buffer_weights_destroy(w);
}

/* ---- accumulation ------------------------------------------------------------------------ */

static void test_accumulate_trajectory(void **state)
{
    (void)state;
    prob p;
    prob_init(&p, 6, 4, 11, 0);
    const size_t B = p.B, K1 = p.k + 1;
    bsvi_trajectory *t = prob_run(&p);
    double lw[6 * 5];
    TU_OK(bsvi_trajectory_get_log_weights(t, lw));
    bsvi_buffer_weights *w = make_w(K1);
    const double p5[5] = {0.1, 0.15, 0.2, 0.25, 0.3};
    TU_OK(bsvi_buffer_weights_set_probs(w, p5, K1));
    double pi[5];
    TU_OK(bsvi_buffer_weights_get_probs(w, pi, K1));
    wsnap before;
    wsnap_take(w, &before);
    DOC_STATUS("bsvi_buffer_weights_accumulate", bsvi_buffer_weights_accumulate(w, t), BSVI_OK);
    double sum[5], ref[5], mean_abs = 0.0;
    uint64_t count = 0, rcount = 0;
    TU_OK(bsvi_buffer_weights_get_gradient(w, sum, &count, K1));
    hand_gradient(lw, B, K1, pi, ref, &rcount);
    assert_true(count == B && rcount == B);
    double total = 0.0;
    for (size_t i = 0; i < K1; ++i) {
        TU_NEAR(sum[i], ref[i], 1e-13);
        total += sum[i];
        mean_abs += fabs(sum[i]);
    }
    assert_true(mean_abs > 1e-3); /* the test has power: the gradient is not ~0 */
    TU_NEAR(total, 0.0, 1e-13);   /* each r_b - pi sums to 0 */
    /* Accumulating only: logits, pi and Adam untouched. */
    {
        wsnap now;
        wsnap_take(w, &now);
        TU_BITWISE(now.logits, before.logits, K1);
        TU_BITWISE(now.m, before.m, K1);
        TU_BITWISE(now.v, before.v, K1);
        assert_true(now.steps == before.steps);
    }
    /* The estimator's BSVI coefficients are the same r_b. */
    {
        bsvi_estimator *e = NULL;
        TU_OK(bsvi_estimator_create(p.d, &e));
        TU_OK(bsvi_estimator_bsvi(e, t, w));
        double coef[30];
        TU_OK(bsvi_estimator_get_targets(e, B * K1, NULL, NULL, NULL, coef));
        for (size_t i = 0; i < K1; ++i) {
            double s = 0.0;
            for (size_t b = 0; b < B; ++b) {
                s += coef[b * K1 + i] - pi[i];
            }
            TU_NEAR(sum[i], s, 1e-14);
        }
        bsvi_estimator_destroy(e);
    }
    /* A second accumulation adds: twice the sum, count 2B. */
    TU_OK(bsvi_buffer_weights_accumulate(w, t));
    double sum2[5];
    TU_OK(bsvi_buffer_weights_get_gradient(w, sum2, &count, K1));
    assert_true(count == 2 * B);
    for (size_t i = 0; i < K1; ++i) {
        TU_NEAR(sum2[i], 2.0 * sum[i], 1e-15 * (1.0 + fabs(sum[i])));
    }
    /* A step uses the mean sum / count and clears both. */
    TU_OK(bsvi_buffer_weights_step(w));
    TU_OK(bsvi_buffer_weights_get_gradient(w, sum2, &count, K1));
    assert_true(count == 0);
    for (size_t i = 0; i < K1; ++i) {
        assert_true(sum2[i] == 0.0);
    }
    uint64_t steps = 0;
    TU_OK(bsvi_buffer_weights_get_adam_state(w, NULL, NULL, &steps, K1));
    assert_true(steps == 1);
    bsvi_buffer_weights_destroy(w);

    /* A zero pi slot: its r is 0 and the slot's gradient is 0 - 0. */
    w = make_w(K1);
    const double pz[5] = {0.0, 0.25, 0.25, 0.25, 0.25};
    TU_OK(bsvi_buffer_weights_set_probs(w, pz, K1));
    TU_OK(bsvi_buffer_weights_accumulate(w, t));
    TU_OK(bsvi_buffer_weights_get_gradient(w, sum, &count, K1));
    hand_gradient(lw, B, K1, pz, ref, &rcount);
    assert_true(sum[0] == 0.0);
    for (size_t i = 0; i < K1; ++i) {
        TU_NEAR(sum[i], ref[i], 1e-13);
    }
    bsvi_buffer_weights_destroy(w);
    bsvi_trajectory_destroy(t);
    prob_free(&p);
}

/* A data point with zero density adds nothing to the sum nor to the count. */
static void test_accumulate_zero_point(void **state)
{
    (void)state;
    prob p;
    prob_init(&p, 5, 3, 13, 1); /* data point 2 has zero density */
    const size_t B = p.B, K1 = p.k + 1;
    bsvi_trajectory *t = prob_run(&p);
    double lw[5 * 4];
    TU_OK(bsvi_trajectory_get_log_weights(t, lw));
    for (size_t i = 0; i < K1; ++i) {
        assert_true(lw[2 * K1 + i] == -INFINITY);
    }
    bsvi_buffer_weights *w = make_w(K1);
    const double p4[4] = {0.4, 0.3, 0.2, 0.1};
    TU_OK(bsvi_buffer_weights_set_probs(w, p4, K1));
    double pi[4], sum[4], ref[4];
    TU_OK(bsvi_buffer_weights_get_probs(w, pi, K1));
    TU_OK(bsvi_buffer_weights_accumulate(w, t));
    uint64_t count = 0, rcount = 0;
    TU_OK(bsvi_buffer_weights_get_gradient(w, sum, &count, K1));
    hand_gradient(lw, B, K1, pi, ref, &rcount);
    assert_true(rcount == B - 1);
    assert_true(count == B - 1);
    for (size_t i = 0; i < K1; ++i) {
        assert_true(isfinite(sum[i]));
        TU_NEAR(sum[i], ref[i], 1e-13);
    }
    /* The same, point by point: the trajectory's other rows through accumulate_terms (log w as
     * log_joint with log_proposal 0) give the same sum and count. */
    bsvi_buffer_weights *w2 = make_w(K1);
    TU_OK(bsvi_buffer_weights_set_probs(w2, p4, K1));
    double zeros[4] = {0, 0, 0, 0};
    for (size_t b = 0; b < B; ++b) {
        TU_OK(bsvi_buffer_weights_accumulate_terms(w2, 1, K1, &lw[b * K1], zeros));
    }
    double sum2[4];
    uint64_t count2 = 0;
    TU_OK(bsvi_buffer_weights_get_gradient(w2, sum2, &count2, K1));
    assert_true(count2 == B - 1);
    for (size_t i = 0; i < K1; ++i) {
        TU_NEAR(sum2[i], sum[i], 1e-15);
    }
    /* A trajectory whose every point has zero density adds nothing: a step is a no-op. */
    bsvi_buffer_weights_destroy(w2);
    bsvi_buffer_weights_destroy(w);
    bsvi_trajectory_destroy(t);
    prob_free(&p);
}

static void test_accumulate_terms(void **state)
{
    (void)state;
    const size_t B = 4, n = 3;
    const double lj[12] = {-1.0, -2.0, -0.5, -3.0, -1.0, -1.5,
                           -INFINITY, -INFINITY, -INFINITY, /* data point 2: zero density */
                           -0.25, -INFINITY, -4.0};
    const double lq[12] = {-0.5, -1.5, -1.0, -2.0, -0.25, -1.0, -1.0, -1.0, -1.0, -0.5, -0.5, -2.0};
    bsvi_buffer_weights *w = make_w(n);
    const double p3[3] = {0.2, 0.5, 0.3};
    TU_OK(bsvi_buffer_weights_set_probs(w, p3, n));
    double pi[3], lw[12], sum[3], ref[3];
    TU_OK(bsvi_buffer_weights_get_probs(w, pi, n));
    for (size_t i = 0; i < B * n; ++i) {
        lw[i] = lj[i] - lq[i];
    }
    DOC_STATUS("bsvi_buffer_weights_accumulate_terms",
             bsvi_buffer_weights_accumulate_terms(w, B, n, lj, lq), BSVI_OK);
    uint64_t count = 0, rcount = 0;
    TU_OK(bsvi_buffer_weights_get_gradient(w, sum, &count, n));
    hand_gradient(lw, B, n, pi, ref, &rcount);
    assert_true(count == 3 && rcount == 3);
    for (size_t i = 0; i < n; ++i) {
        TU_NEAR(sum[i], ref[i], 1e-14);
    }
    /* The GIWAE estimator's coefficients are the same r_b (the zero-density point's are 0). */
    bsvi_estimator *e = NULL;
    TU_OK(bsvi_estimator_create(1, &e));
    TU_OK(bsvi_estimator_giwae(e, B, n, lj, lq, w));
    double coef[12];
    TU_OK(bsvi_estimator_get_targets(e, B * n, NULL, NULL, NULL, coef));
    for (size_t i = 0; i < n; ++i) {
        double s = 0.0;
        for (size_t b = 0; b < B; ++b) {
            if (b != 2) {
                s += coef[b * n + i] - pi[i];
            } else {
                assert_true(coef[b * n + i] == 0.0);
            }
        }
        TU_NEAR(sum[i], s, 1e-15);
    }
    assert_int_equal(bsvi_estimator_num_zero_points(e), 1);
    bsvi_estimator_destroy(e);
    /* Only zero-density rows: nothing added, and the step then is a no-op. */
    bsvi_buffer_weights *w2 = make_w(n);
    TU_OK(bsvi_buffer_weights_accumulate_terms(w2, 1, n, &lj[6], &lq[6]));
    wsnap s2;
    wsnap_take(w2, &s2);
    assert_true(s2.count == 0);
    for (size_t i = 0; i < n; ++i) {
        assert_true(s2.sum[i] == 0.0);
    }
    TU_OK(bsvi_buffer_weights_step(w2));
    wsnap_equal(w2, &s2);
    bsvi_buffer_weights_destroy(w2);
    bsvi_buffer_weights_destroy(w);
}

/* ---- the gradient exchange ----------------------------------------------------------------- */

static void test_gradient_exchange(void **state)
{
    (void)state;
    /* One batch of B = 8 and its two halves, refined with the same stream (id offsets). */
    const size_t B = 8, B1 = 3, d = 2, k = 4, K1 = k + 1;
    lg_model lg;
    assert_int_equal(lg_init(&lg, d, 3, B, 0.8, 0, 17), 0);
    lg_model second = lg_view(&lg, B1);
    bsvi_model *model = NULL, *model2 = NULL;
    TU_OK(lg_make_model(&lg, &model));
    TU_OK(lg_make_model(&second, &model2));
    double mean[16], ls[16];
    for (size_t i = 0; i < B * d; ++i) {
        mean[i] = 0.3 * (double)(i % 3) - 0.4;
        ls[i] = -0.2 + 0.1 * (double)(i % 4);
    }
    bsvi_proposal *q = NULL, *q1 = NULL, *q2 = NULL;
    TU_OK(lg_make_proposal(B, d, mean, ls, &q));
    TU_OK(lg_make_proposal(B1, d, mean, ls, &q1));
    TU_OK(lg_make_proposal(B - B1, d, mean + B1 * d, ls + B1 * d, &q2));
    bsvi_svi *svi = NULL;
    bsvi_trajectory *tw = NULL, *t1 = NULL, *t2 = NULL;
    TU_OK(bsvi_svi_create(d, &svi));
    TU_OK(bsvi_svi_set_steps(svi, k));
    TU_OK(bsvi_svi_set_step_size(svi, 0.05));
    TU_OK(bsvi_trajectory_create(&tw));
    TU_OK(bsvi_trajectory_create(&t1));
    TU_OK(bsvi_trajectory_create(&t2));
    TU_OK(bsvi_svi_set_seed(svi, 23));
    TU_OK(bsvi_svi_run(svi, model, q, tw));
    TU_OK(bsvi_svi_set_stream(svi, 0, 0));
    TU_OK(bsvi_svi_run(svi, model, q1, t1));
    TU_OK(bsvi_svi_set_stream(svi, 0, B1));
    TU_OK(bsvi_svi_run(svi, model2, q2, t2));

    const double p5[5] = {0.3, 0.1, 0.2, 0.1, 0.3};
    bsvi_buffer_weights *whole = make_w(K1), *wa = make_w(K1), *wb = make_w(K1);
    bsvi_buffer_weights *ws[3] = {whole, wa, wb};
    for (size_t i = 0; i < 3; ++i) {
        TU_OK(bsvi_buffer_weights_set_probs(ws[i], p5, K1));
        TU_OK(bsvi_buffer_weights_set_adam(ws[i], 0.05, 0.9, 0.999));
    }
    for (int step = 0; step < 3; ++step) {
        TU_OK(bsvi_buffer_weights_accumulate(whole, tw));
        TU_OK(bsvi_buffer_weights_accumulate(wa, t1));
        TU_OK(bsvi_buffer_weights_accumulate(wb, t2));
        double sw[5], sa[5], sb[5], s[5];
        uint64_t cw = 0, ca = 0, cb = 0;
        TU_OK(bsvi_buffer_weights_get_gradient(whole, sw, &cw, K1));
        TU_OK(bsvi_buffer_weights_get_gradient(wa, sa, &ca, K1));
        TU_OK(bsvi_buffer_weights_get_gradient(wb, sb, &cb, K1));
        assert_true(cw == B && ca == B1 && cb == B - B1);
        double scale = 0.0;
        for (size_t i = 0; i < K1; ++i) {
            s[i] = sa[i] + sb[i];
            scale = fmax(scale, fabs(sw[i]));
        }
        for (size_t i = 0; i < K1; ++i) {
            TU_NEAR(s[i], sw[i], 1e-15 * (double)B * (1.0 + scale));
        }
        /* the all-reduce: every process sets the sums and steps */
        DOC_STATUS("bsvi_buffer_weights_set_gradient",
                 bsvi_buffer_weights_set_gradient(wa, s, ca + cb, K1), BSVI_OK);
        TU_OK(bsvi_buffer_weights_set_gradient(wb, s, ca + cb, K1));
        {
            double r[5];
            uint64_t rc = 0;
            TU_OK(bsvi_buffer_weights_get_gradient(wa, r, &rc, K1));
            TU_BITWISE(r, s, K1);
            assert_true(rc == B);
        }
        TU_OK(bsvi_buffer_weights_step(whole));
        DOC_STATUS("bsvi_buffer_weights_step", bsvi_buffer_weights_step(wa), BSVI_OK);
        TU_OK(bsvi_buffer_weights_step(wb));
        wsnap a, b, c;
        wsnap_take(whole, &a);
        wsnap_take(wa, &b);
        wsnap_take(wb, &c);
        /* the two processes agree bitwise */
        TU_BITWISE(b.logits, c.logits, K1);
        TU_BITWISE(b.m, c.m, K1);
        TU_BITWISE(b.v, c.v, K1);
        assert_true(b.steps == c.steps && b.steps == a.steps);
        /* and agree with the whole batch: logits within 1e-15 relative (the moments, whose
         * sums of squares carry the rounding of the two summation orders, within 1e-14) */
        for (size_t i = 0; i < K1; ++i) {
            TU_NEAR(b.logits[i], a.logits[i], 1e-15 * fabs(a.logits[i]));
        }
        for (size_t i = 0; i < K1; ++i) {
            TU_NEAR(b.m[i], a.m[i], 1e-14 * fabs(a.m[i]));
            TU_NEAR(b.v[i], a.v[i], 1e-14 * fabs(a.v[i]));
        }
        assert_true(a.count == 0 && b.count == 0);
    }
    /* One process: get then set its own gradient changes nothing (bitwise). */
    TU_OK(bsvi_buffer_weights_accumulate(whole, tw));
    wsnap before;
    wsnap_take(whole, &before);
    TU_OK(bsvi_buffer_weights_set_gradient(whole, before.sum, before.count, K1));
    wsnap_equal(whole, &before);
    for (size_t i = 0; i < 3; ++i) {
        bsvi_buffer_weights_destroy(ws[i]);
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

/* ---- Adam ------------------------------------------------------------------------------------ */

static void test_step_count_zero_is_noop(void **state)
{
    (void)state;
    bsvi_buffer_weights *w = make_w(3);
    const double l3[3] = {0.5, -0.25, -INFINITY};
    const double m[3] = {0.01, 0.02, 0.0}, v[3] = {1e-4, 2e-4, 0.0};
    TU_OK(bsvi_buffer_weights_set_logits(w, l3, 3));
    TU_OK(bsvi_buffer_weights_set_adam_state(w, m, v, 4, 3));
    wsnap before;
    wsnap_take(w, &before);
    DOC_STATUS("bsvi_buffer_weights_step", bsvi_buffer_weights_step(w), BSVI_OK);
    wsnap_equal(w, &before);
    /* A non-zero sum with a count of 0 is refused (no data point has a gradient); a zero sum
     * with a count of 0 is no data point: still no step. */
    const double g[3] = {0.25, -0.25, 0.0}, g0[3] = {0.0, 0.0, 0.0};
    DOC_STATUS("bsvi_buffer_weights_set_gradient", bsvi_buffer_weights_set_gradient(w, g, 0, 3),
             BSVI_ERR_BAD_VALUE);
    wsnap_equal(w, &before);
    TU_OK(bsvi_buffer_weights_set_gradient(w, g0, 0, 3));
    wsnap_take(w, &before);
    TU_OK(bsvi_buffer_weights_step(w));
    wsnap_equal(w, &before);
    bsvi_buffer_weights_destroy(w);
}

/* One Adam ascent step by hand: m = b1 m + (1-b1) g, v = b2 v + (1-b2) g^2, t += 1,
 * a += lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + 1e-8), then a -= max a. A logit of
 * -INFINITY never moves. */
static void hand_adam(size_t n, double lr, double b1, double b2, uint64_t *t, const double *g,
                      double *a, double *m, double *v)
{
    const double d1 = 1.0 - pow(b1, (double)(*t + 1)), d2 = 1.0 - pow(b2, (double)(*t + 1));
    double mx = -INFINITY;
    for (size_t i = 0; i < n; ++i) {
        if (a[i] == -INFINITY) {
            continue;
        }
        m[i] = b1 * m[i] + (1.0 - b1) * g[i];
        v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
        a[i] += lr * (m[i] / d1) / (sqrt(v[i] / d2) + 1e-8);
        mx = fmax(mx, a[i]);
    }
    for (size_t i = 0; i < n; ++i) {
        if (a[i] != -INFINITY) {
            a[i] -= mx;
        }
    }
    ++*t;
}

static void test_adam_by_hand(void **state)
{
    (void)state;
    const size_t n = 4;
    const double lr = 0.05, b1 = 0.8, b2 = 0.95;
    bsvi_buffer_weights *w = make_w(n);
    DOC_STATUS("bsvi_buffer_weights_set_adam", bsvi_buffer_weights_set_adam(w, lr, b1, b2), BSVI_OK);
    double a[4] = {0.3, -0.2, 0.1, -INFINITY}, m[4] = {0}, v[4] = {0};
    uint64_t t = 0;
    TU_OK(bsvi_buffer_weights_set_logits(w, a, n));
    /* sums over count data points: the step uses sum / count */
    const double sums[3][4] = {
        {0.6, -0.9, 0.3, 0.0}, {-0.2, 0.05, 0.15, 0.0}, {1e-9, -2e-9, 1e-9, 0.0}};
    const uint64_t counts[3] = {3, 2, 5};
    for (int s = 0; s < 3; ++s) {
        double g[4];
        for (size_t i = 0; i < n; ++i) {
            g[i] = sums[s][i] / (double)counts[s];
        }
        TU_OK(bsvi_buffer_weights_set_gradient(w, sums[s], counts[s], n));
        TU_OK(bsvi_buffer_weights_step(w));
        hand_adam(n, lr, b1, b2, &t, g, a, m, v);
        wsnap now;
        wsnap_take(w, &now);
        assert_true(now.steps == t);
        for (size_t i = 0; i < 3; ++i) {
            TU_NEAR(now.logits[i], a[i], 1e-14);
            TU_NEAR(now.m[i], m[i], 1e-16 + 1e-14 * fabs(m[i]));
            TU_NEAR(now.v[i], v[i], 1e-18 + 1e-14 * fabs(v[i]));
        }
        assert_true(now.logits[3] == -INFINITY); /* pi_3 = 0 stays 0 */
        assert_true(now.probs[3] == 0.0);
        assert_true(now.m[3] == 0.0 && now.v[3] == 0.0);
        assert_true(now.count == 0);
        double mx = -INFINITY;
        for (size_t i = 0; i < n; ++i) {
            mx = fmax(mx, now.logits[i]);
        }
        assert_true(mx == 0.0); /* re-centred */
    }
    /* The default parameters (lr 1e-2, betas 0.9 / 0.999), from a restored state: the bias
     * correction uses the restored step count. */
    bsvi_buffer_weights *w2 = make_w(3);
    double a2[3] = {-0.5, 0.0, -1.0}, m2[3] = {0.02, -0.01, 0.03}, v2[3] = {4e-4, 1e-4, 9e-4};
    uint64_t t2 = 9;
    TU_OK(bsvi_buffer_weights_set_logits(w2, a2, 3));
    TU_OK(bsvi_buffer_weights_set_adam_state(w2, m2, v2, t2, 3));
    const double g2[3] = {0.125, -0.5, 0.375};
    TU_OK(bsvi_buffer_weights_set_gradient(w2, g2, 1, 3));
    TU_OK(bsvi_buffer_weights_step(w2));
    hand_adam(3, 1e-2, 0.9, 0.999, &t2, g2, a2, m2, v2);
    wsnap now;
    wsnap_take(w2, &now);
    assert_true(now.steps == 10);
    for (size_t i = 0; i < 3; ++i) {
        TU_NEAR(now.logits[i], a2[i], 1e-14);
        TU_NEAR(now.m[i], m2[i], 1e-14 * fabs(m2[i]));
        TU_NEAR(now.v[i], v2[i], 1e-14 * fabs(v2[i]));
    }
    /* set_adam keeps the moments. */
    TU_OK(bsvi_buffer_weights_set_adam(w2, 0.1, 0.5, 0.5));
    wsnap after;
    wsnap_take(w2, &after);
    TU_BITWISE(after.m, now.m, 3);
    TU_BITWISE(after.v, now.v, 3);
    assert_true(after.steps == now.steps);
    bsvi_buffer_weights_destroy(w2);
    bsvi_buffer_weights_destroy(w);
}

/* A step that would make a finite logit non-finite is refused; nothing changes. */
static void test_step_numeric_refusal(void **state)
{
    (void)state;
    bsvi_buffer_weights *w = make_w(2);
    /* the re-centring: -1.7e308 - 1.7e308 = -infinity */
    const double far[2] = {1.7e308, -1.7e308}, g[2] = {1.0, -1.0};
    TU_OK(bsvi_buffer_weights_set_logits(w, far, 2));
    TU_OK(bsvi_buffer_weights_set_gradient(w, g, 1, 2));
    wsnap before;
    wsnap_take(w, &before);
    DOC_STATUS("bsvi_buffer_weights_step", bsvi_buffer_weights_step(w), BSVI_ERR_NUMERIC);
    TU_MESSAGE(bsvi_buffer_weights_last_error(w));
    wsnap_equal(w, &before);
    /* overflow of a logit: lr 1e308 on a logit of 1e308 */
    const double big[2] = {1e308, 0.0};
    TU_OK(bsvi_buffer_weights_set_logits(w, big, 2));
    TU_OK(bsvi_buffer_weights_set_adam(w, 1e308, 0.9, 0.999));
    wsnap_take(w, &before);
    DOC_STATUS("bsvi_buffer_weights_step", bsvi_buffer_weights_step(w), BSVI_ERR_NUMERIC);
    TU_MESSAGE_MENTIONS(bsvi_buffer_weights_last_error(w), "overflow|learning rate");
    wsnap_equal(w, &before);
    /* after a refusal, a sane configuration steps */
    const double ok[2] = {0.0, 0.0};
    TU_OK(bsvi_buffer_weights_set_logits(w, ok, 2));
    TU_OK(bsvi_buffer_weights_set_adam(w, 1e-2, 0.9, 0.999));
    TU_OK(bsvi_buffer_weights_step(w));
    wsnap now;
    wsnap_take(w, &now);
    assert_true(now.steps == 1 && now.count == 0);
    TU_NEAR(now.logits[1], -2e-2, 1e-9);
    bsvi_buffer_weights_destroy(w);
}

/* ---- bad input ------------------------------------------------------------------------------ */

static void test_bad_input_changes_nothing(void **state)
{
    (void)state;
    prob p;
    prob_init(&p, 3, 2, 19, 0);
    bsvi_trajectory *t = prob_run(&p), *empty = NULL, *t4 = NULL;
    TU_OK(bsvi_trajectory_create(&empty));
    TU_OK(bsvi_svi_set_steps(p.svi, 3));
    t4 = prob_run(&p);
    const size_t n = 3;
    bsvi_buffer_weights *w = make_w(n);
    /* a state with every part non-trivial */
    const double p3[3] = {0.5, 0.3, 0.2};
    TU_OK(bsvi_buffer_weights_set_probs(w, p3, n));
    TU_OK(bsvi_buffer_weights_accumulate(w, t));
    TU_OK(bsvi_buffer_weights_step(w));
    TU_OK(bsvi_buffer_weights_accumulate(w, t));
    wsnap before;
    wsnap_take(w, &before);
    assert_true(before.steps == 1 && before.count == 3);
    double out[8];
    uint64_t cnt = 77, steps = 77;
    const double good_m[3] = {0, 0, 0}, good_v[3] = {0, 0, 0}, g3[3] = {0.1, 0.0, -0.1};
    const double lj[6] = {-1, -2, -3, -1, -2, -3}, lq[6] = {-1, -1, -1, -1, -1, -1};

    /* BAD: the status (listed in the header), caller buffers untouched, the handle as before;
     * BADW also the handle's message, mentioning one of words; BADM the function's name. */
#define BADW(fn, call, st, words)                                                                  \
    do {                                                                                           \
        tu_fill(out, 8, TU_SENTINEL);                                                              \
        DOC_STATUS(fn, call, st);                                                                    \
        if ((words) != NULL) {                                                                     \
            TU_MESSAGE_MENTIONS(bsvi_buffer_weights_last_error(w), (words));                       \
        }                                                                                          \
        TU_UNTOUCHED(out, 8);                                                                      \
        wsnap_equal(w, &before);                                                                   \
    } while (0)
#define BAD(fn, call, st) BADW(fn, call, st, (const char *)NULL)
#define BADM(fn, call, st) BADW(fn, call, st, fn)

    /* set_probs */
    BAD("bsvi_buffer_weights_set_probs", bsvi_buffer_weights_set_probs(NULL, p3, n),
        BSVI_ERR_NULL_ARGUMENT);
    BADM("bsvi_buffer_weights_set_probs", bsvi_buffer_weights_set_probs(w, NULL, n),
         BSVI_ERR_NULL_ARGUMENT);
    BADM("bsvi_buffer_weights_set_probs", bsvi_buffer_weights_set_probs(w, p3, 2),
         BSVI_ERR_SIZE_MISMATCH);
    BADM("bsvi_buffer_weights_set_probs", bsvi_buffer_weights_set_probs(w, p3, 4),
         BSVI_ERR_SIZE_MISMATCH);
    BADM("bsvi_buffer_weights_set_probs",
         bsvi_buffer_weights_set_probs(w, (const double[]){0.6, -0.1, 0.5}, n), BSVI_ERR_BAD_VALUE);
    BADM("bsvi_buffer_weights_set_probs",
         bsvi_buffer_weights_set_probs(w, (const double[]){0.5, NAN, 0.5}, n), BSVI_ERR_BAD_VALUE);
    BADM("bsvi_buffer_weights_set_probs",
         bsvi_buffer_weights_set_probs(w, (const double[]){INFINITY, 0.0, 0.0}, n),
         BSVI_ERR_BAD_VALUE);
    BADM("bsvi_buffer_weights_set_probs",
         bsvi_buffer_weights_set_probs(w, (const double[]){0.3, 0.3, 0.3}, n), BSVI_ERR_BAD_VALUE);
    BADM("bsvi_buffer_weights_set_probs",
         bsvi_buffer_weights_set_probs(w, (const double[]){0.0, 0.0, 0.0}, n), BSVI_ERR_BAD_VALUE);
    /* get_probs, get_logits */
    BAD("bsvi_buffer_weights_get_probs", bsvi_buffer_weights_get_probs(NULL, out, n),
        BSVI_ERR_NULL_ARGUMENT);
    BADM("bsvi_buffer_weights_get_probs", bsvi_buffer_weights_get_probs(w, NULL, n),
         BSVI_ERR_NULL_ARGUMENT);
    BADM("bsvi_buffer_weights_get_probs", bsvi_buffer_weights_get_probs(w, out, 4),
         BSVI_ERR_SIZE_MISMATCH);
    BAD("bsvi_buffer_weights_get_logits", bsvi_buffer_weights_get_logits(NULL, out, n),
        BSVI_ERR_NULL_ARGUMENT);
    BADM("bsvi_buffer_weights_get_logits", bsvi_buffer_weights_get_logits(w, NULL, n),
         BSVI_ERR_NULL_ARGUMENT);
    BADM("bsvi_buffer_weights_get_logits", bsvi_buffer_weights_get_logits(w, out, 2),
         BSVI_ERR_SIZE_MISMATCH);
    /* set_logits */
    BAD("bsvi_buffer_weights_set_logits", bsvi_buffer_weights_set_logits(NULL, g3, n),
        BSVI_ERR_NULL_ARGUMENT);
    BADM("bsvi_buffer_weights_set_logits", bsvi_buffer_weights_set_logits(w, NULL, n),
         BSVI_ERR_NULL_ARGUMENT);
    BADM("bsvi_buffer_weights_set_logits", bsvi_buffer_weights_set_logits(w, g3, 2),
         BSVI_ERR_SIZE_MISMATCH);
    BADM("bsvi_buffer_weights_set_logits",
         bsvi_buffer_weights_set_logits(w, (const double[]){0.0, NAN, 0.0}, n), BSVI_ERR_BAD_VALUE);
    BADM("bsvi_buffer_weights_set_logits",
         bsvi_buffer_weights_set_logits(w, (const double[]){0.0, 0.0, INFINITY}, n),
         BSVI_ERR_BAD_VALUE);
    BADM("bsvi_buffer_weights_set_logits",
         bsvi_buffer_weights_set_logits(w, (const double[]){-INFINITY, -INFINITY, -INFINITY}, n),
         BSVI_ERR_BAD_VALUE);
    /* mean_position */
    BAD("bsvi_buffer_weights_mean_position", bsvi_buffer_weights_mean_position(NULL, out),
        BSVI_ERR_NULL_ARGUMENT);
    BADM("bsvi_buffer_weights_mean_position", bsvi_buffer_weights_mean_position(w, NULL),
         BSVI_ERR_NULL_ARGUMENT);
    /* set_adam */
    BAD("bsvi_buffer_weights_set_adam", bsvi_buffer_weights_set_adam(NULL, 0.1, 0.9, 0.99),
        BSVI_ERR_NULL_ARGUMENT);
    const double bad_adam[][3] = {{0.0, 0.9, 0.99},      {-0.1, 0.9, 0.99}, {NAN, 0.9, 0.99},
                                  {INFINITY, 0.9, 0.99}, {0.1, 1.0, 0.99},  {0.1, -0.1, 0.99},
                                  {0.1, NAN, 0.99},      {0.1, 0.9, 1.0},   {0.1, 0.9, -1e-3},
                                  {0.1, 0.9, NAN}};
    for (size_t i = 0; i < sizeof bad_adam / sizeof bad_adam[0]; ++i) {
        BADM("bsvi_buffer_weights_set_adam",
             bsvi_buffer_weights_set_adam(w, bad_adam[i][0], bad_adam[i][1], bad_adam[i][2]),
             BSVI_ERR_BAD_VALUE);
    }
    /* get_adam_state / set_adam_state */
    BAD("bsvi_buffer_weights_get_adam_state",
        bsvi_buffer_weights_get_adam_state(NULL, out, out, &steps, n), BSVI_ERR_NULL_ARGUMENT);
    BADM("bsvi_buffer_weights_get_adam_state",
         bsvi_buffer_weights_get_adam_state(w, out, out + 4, &steps, 4), BSVI_ERR_SIZE_MISMATCH);
    assert_true(steps == 77);
    BAD("bsvi_buffer_weights_set_adam_state",
        bsvi_buffer_weights_set_adam_state(NULL, good_m, good_v, 1, n), BSVI_ERR_NULL_ARGUMENT);
    BADM("bsvi_buffer_weights_set_adam_state",
         bsvi_buffer_weights_set_adam_state(w, NULL, good_v, 1, n), BSVI_ERR_NULL_ARGUMENT);
    BADM("bsvi_buffer_weights_set_adam_state",
         bsvi_buffer_weights_set_adam_state(w, good_m, NULL, 1, n), BSVI_ERR_NULL_ARGUMENT);
    BADM("bsvi_buffer_weights_set_adam_state",
         bsvi_buffer_weights_set_adam_state(w, good_m, good_v, 1, 2), BSVI_ERR_SIZE_MISMATCH);
    BADM("bsvi_buffer_weights_set_adam_state",
         bsvi_buffer_weights_set_adam_state(w, (const double[]){0, NAN, 0}, good_v, 1, n),
         BSVI_ERR_BAD_VALUE);
    BADM("bsvi_buffer_weights_set_adam_state",
         bsvi_buffer_weights_set_adam_state(w, (const double[]){0, 0, INFINITY}, good_v, 1, n),
         BSVI_ERR_BAD_VALUE);
    BADM("bsvi_buffer_weights_set_adam_state",
         bsvi_buffer_weights_set_adam_state(w, good_m, (const double[]){0, -1e-3, 0}, 1, n),
         BSVI_ERR_BAD_VALUE);
    BADM("bsvi_buffer_weights_set_adam_state",
         bsvi_buffer_weights_set_adam_state(w, good_m, (const double[]){INFINITY, 0, 0}, 1, n),
         BSVI_ERR_BAD_VALUE);
    BADM("bsvi_buffer_weights_set_adam_state",
         bsvi_buffer_weights_set_adam_state(w, good_m, (const double[]){0, 0, NAN}, 1, n),
         BSVI_ERR_BAD_VALUE);
    BADM("bsvi_buffer_weights_set_adam_state",
         bsvi_buffer_weights_set_adam_state(w, good_m, good_v, UINT64_MAX, n),
         BSVI_ERR_BAD_VALUE);
    /* accumulate */
    BAD("bsvi_buffer_weights_accumulate", bsvi_buffer_weights_accumulate(NULL, t),
        BSVI_ERR_NULL_ARGUMENT);
    BADM("bsvi_buffer_weights_accumulate", bsvi_buffer_weights_accumulate(w, NULL),
         BSVI_ERR_NULL_ARGUMENT);
    BADW("bsvi_buffer_weights_accumulate", bsvi_buffer_weights_accumulate(w, empty),
         BSVI_ERR_BAD_STATE, "empty");
    BADM("bsvi_buffer_weights_accumulate", bsvi_buffer_weights_accumulate(w, t4),
         BSVI_ERR_SIZE_MISMATCH);
    /* accumulate_terms */
    BAD("bsvi_buffer_weights_accumulate_terms",
        bsvi_buffer_weights_accumulate_terms(NULL, 2, n, lj, lq), BSVI_ERR_NULL_ARGUMENT);
    BADM("bsvi_buffer_weights_accumulate_terms",
         bsvi_buffer_weights_accumulate_terms(w, 2, n, NULL, lq), BSVI_ERR_NULL_ARGUMENT);
    BADM("bsvi_buffer_weights_accumulate_terms",
         bsvi_buffer_weights_accumulate_terms(w, 2, n, lj, NULL), BSVI_ERR_NULL_ARGUMENT);
    BADM("bsvi_buffer_weights_accumulate_terms",
         bsvi_buffer_weights_accumulate_terms(w, 0, n, lj, lq), BSVI_ERR_ZERO_SIZE);
    BADM("bsvi_buffer_weights_accumulate_terms",
         bsvi_buffer_weights_accumulate_terms(w, 2, 0, lj, lq), BSVI_ERR_ZERO_SIZE);
    BADM("bsvi_buffer_weights_accumulate_terms",
         bsvi_buffer_weights_accumulate_terms(w, BSVI_MAX_BATCH + 1, n, lj, lq),
         BSVI_ERR_OUT_OF_RANGE);
    BADM("bsvi_buffer_weights_accumulate_terms",
         bsvi_buffer_weights_accumulate_terms(w, 1, BSVI_MAX_STEPS + 2, lj, lq),
         BSVI_ERR_OUT_OF_RANGE);
    BADM("bsvi_buffer_weights_accumulate_terms",
         bsvi_buffer_weights_accumulate_terms(w, 3, 2, lj, lq), BSVI_ERR_SIZE_MISMATCH);
    BADM("bsvi_buffer_weights_accumulate_terms",
         bsvi_buffer_weights_accumulate_terms(w, 2, n, (const double[]){-1, -1, -1, -1, NAN, -1},
                                              lq),
         BSVI_ERR_BAD_VALUE);
    BADM("bsvi_buffer_weights_accumulate_terms",
         bsvi_buffer_weights_accumulate_terms(
             w, 2, n, (const double[]){INFINITY, -1, -1, -1, -1, -1}, lq),
         BSVI_ERR_BAD_VALUE);
    BADM("bsvi_buffer_weights_accumulate_terms",
         bsvi_buffer_weights_accumulate_terms(
             w, 2, n, lj, (const double[]){-1, -1, -1, -1, -1, NAN}),
         BSVI_ERR_BAD_VALUE);
    BADM("bsvi_buffer_weights_accumulate_terms",
         bsvi_buffer_weights_accumulate_terms(w, 2, n, lj,
                                              (const double[]){-1, -INFINITY, -1, -1, -1, -1}),
         BSVI_ERR_BAD_VALUE);
    /* a valid first row does not slip in before a bad second one */
    BADW("bsvi_buffer_weights_accumulate_terms",
         bsvi_buffer_weights_accumulate_terms(w, 2, n, (const double[]){-1, -1, -1, -1, 1e308, -1},
                                              (const double[]){-1, -1, -1, -1, -1e308, -1}),
         BSVI_ERR_NUMERIC, "overflow|infinity");
    /* get_gradient / set_gradient */
    BAD("bsvi_buffer_weights_get_gradient", bsvi_buffer_weights_get_gradient(NULL, out, &cnt, n),
        BSVI_ERR_NULL_ARGUMENT);
    BADM("bsvi_buffer_weights_get_gradient", bsvi_buffer_weights_get_gradient(w, out, &cnt, 2),
         BSVI_ERR_SIZE_MISMATCH);
    assert_true(cnt == 77);
    BAD("bsvi_buffer_weights_set_gradient", bsvi_buffer_weights_set_gradient(NULL, g3, 1, n),
        BSVI_ERR_NULL_ARGUMENT);
    BADM("bsvi_buffer_weights_set_gradient", bsvi_buffer_weights_set_gradient(w, NULL, 1, n),
         BSVI_ERR_NULL_ARGUMENT);
    BADM("bsvi_buffer_weights_set_gradient", bsvi_buffer_weights_set_gradient(w, g3, 1, 4),
         BSVI_ERR_SIZE_MISMATCH);
    BADM("bsvi_buffer_weights_set_gradient",
         bsvi_buffer_weights_set_gradient(w, (const double[]){0.1, NAN, 0.0}, 1, n),
         BSVI_ERR_BAD_VALUE);
    BADM("bsvi_buffer_weights_set_gradient",
         bsvi_buffer_weights_set_gradient(w, (const double[]){0.1, 0.0, -INFINITY}, 1, n),
         BSVI_ERR_BAD_VALUE);
    /* step */
    BAD("bsvi_buffer_weights_step", bsvi_buffer_weights_step(NULL), BSVI_ERR_NULL_ARGUMENT);
#undef BADM
#undef BAD
#undef BADW

    /* After all that the handle steps exactly like a copy that saw none of it. */
    bsvi_buffer_weights *c = make_w(n);
    TU_OK(bsvi_buffer_weights_set_probs(c, p3, n));
    TU_OK(bsvi_buffer_weights_accumulate(c, t));
    TU_OK(bsvi_buffer_weights_step(c));
    TU_OK(bsvi_buffer_weights_accumulate(c, t));
    wsnap_equal(c, &before);
    TU_OK(bsvi_buffer_weights_step(c));
    TU_OK(bsvi_buffer_weights_step(w));
    wsnap cs;
    wsnap_take(c, &cs);
    wsnap_equal(w, &cs);
    bsvi_buffer_weights_destroy(c);
    bsvi_buffer_weights_destroy(w);
    bsvi_trajectory_destroy(t);
    bsvi_trajectory_destroy(t4);
    bsvi_trajectory_destroy(empty);
    prob_free(&p);
}

/* ---- the estimators only read the handle ----------------------------------------------------- */

static void test_bounds_leave_weights_unchanged(void **state)
{
    (void)state;
    prob p;
    prob_init(&p, 4, 3, 29, 0);
    const size_t B = p.B, K1 = p.k + 1;
    bsvi_trajectory *t = prob_run(&p);
    bsvi_buffer_weights *w = make_w(K1);
    const double p4[4] = {0.1, 0.2, 0.3, 0.4};
    TU_OK(bsvi_buffer_weights_set_probs(w, p4, K1));
    TU_OK(bsvi_buffer_weights_set_adam(w, 0.03, 0.85, 0.99));
    TU_OK(bsvi_buffer_weights_accumulate(w, t));
    TU_OK(bsvi_buffer_weights_step(w));
    TU_OK(bsvi_buffer_weights_accumulate(w, t)); /* a gradient pending */
    wsnap before;
    wsnap_take(w, &before);
    assert_true(before.steps == 1 && before.count == B);

    bsvi_estimator *e = NULL;
    TU_OK(bsvi_estimator_create(p.d, &e));
    for (int rep = 0; rep < 2; ++rep) {
        TU_OK(bsvi_estimator_bsvi(e, t, w));
        wsnap_equal(w, &before);
        TU_OK(bsvi_estimator_bsvi_sir(e, t, w, 5));
        wsnap_equal(w, &before);
        double lj[16], lq[16];
        TU_OK(bsvi_trajectory_get_log_joint(t, lj));
        TU_OK(bsvi_trajectory_get_log_proposal(t, lq));
        TU_OK(bsvi_estimator_giwae(e, B, K1, lj, lq, w));
        wsnap_equal(w, &before);
        bsvi_health h;
        TU_OK(bsvi_trajectory_health(t, w, &h));
        wsnap_equal(w, &before);
    }
    /* The bound is LSE(log pi + log w) with the handle's pi. */
    TU_OK(bsvi_estimator_bsvi(e, t, w));
    double bounds[4], lw[16];
    TU_OK(bsvi_estimator_get_bounds(e, bounds, B));
    TU_OK(bsvi_trajectory_get_log_weights(t, lw));
    for (size_t b = 0; b < B; ++b) {
        double a[4];
        for (size_t i = 0; i < K1; ++i) {
            a[i] = log(before.probs[i]) + lw[b * K1 + i];
        }
        TU_NEAR(bounds[b], bsvi_logsumexp(a, K1), 1e-12);
    }
    /* Refused computes: a handle of the wrong size, also nothing changed. */
    bsvi_buffer_weights *w5 = make_w(K1 + 1);
    wsnap b5;
    wsnap_take(w5, &b5);
    TU_STATUS(bsvi_estimator_bsvi(e, t, w5), BSVI_ERR_SIZE_MISMATCH);
    TU_STATUS(bsvi_estimator_bsvi_sir(e, t, w5, 3), BSVI_ERR_SIZE_MISMATCH);
    wsnap_equal(w5, &b5);
    wsnap_equal(w, &before);
    bsvi_buffer_weights_destroy(w5);
    bsvi_estimator_destroy(e);
    bsvi_buffer_weights_destroy(w);
    bsvi_trajectory_destroy(t);
    prob_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_and_limits),
        cmocka_unit_test(test_probs_logits_round_trip),
        cmocka_unit_test(test_set_probs_resets_set_logits_keeps),
        cmocka_unit_test(test_accumulate_trajectory),
        cmocka_unit_test(test_accumulate_zero_point),
        cmocka_unit_test(test_accumulate_terms),
        cmocka_unit_test(test_gradient_exchange),
        cmocka_unit_test(test_step_count_zero_is_noop),
        cmocka_unit_test(test_adam_by_hand),
        cmocka_unit_test(test_step_numeric_refusal),
        cmocka_unit_test(test_bad_input_changes_nothing),
        cmocka_unit_test(test_bounds_leave_weights_unchanged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
