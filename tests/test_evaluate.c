/* test_evaluate.c: IWAE-S and BSVI-K log-likelihood estimates, ELBO*, KL*, Reconstruction*,
 * independence of the chunk size, reproducibility (also split batches), and bad input; the
 * evaluator's SVI options, its report of the refinement (steps taken, frozen points),
 * zero-density points under BSVI_POINTS_REPORT and BSVI_POINTS_FAIL, its stream and its
 * counters. */
#include "testutil.h"
#include "lingauss.h"

#include <stdint.h>
#include <stdlib.h>

typedef struct ev_setup {
    lg_model lg;
    bsvi_model *model;
    bsvi_proposal *q;
    double *mean, *ls;
    size_t B, d;
} ev_setup;

/* mode 0: q = exact posterior (orthogonal W); 1: posterior mean, std x 1.2; 2: poor q. */
static void ev_init(ev_setup *s, size_t B, size_t d, int replicate, int mode, uint64_t seed)
{
    memset(s, 0, sizeof *s);
    s->B = B;
    s->d = d;
    assert_int_equal(lg_init(&s->lg, d, 5, B, 0.8, 1, seed), 0);
    if (replicate) {
        lg_replicate(&s->lg);
    }
    TU_OK(lg_make_model(&s->lg, &s->model));
    s->mean = tu_alloc(B * d);
    s->ls = tu_alloc(B * d);
    for (size_t b = 0; b < B; ++b) {
        lg_posterior_diag(&s->lg, b, &s->mean[b * d], &s->ls[b * d]);
        for (size_t j = 0; j < d; ++j) {
            if (mode == 1) {
                s->ls[b * d + j] += log(1.2);
            } else if (mode == 2) {
                s->mean[b * d + j] += 1.5;
                s->ls[b * d + j] += 0.7;
            }
        }
    }
    TU_OK(lg_make_proposal(B, d, s->mean, s->ls, &s->q));
}

static void ev_free(ev_setup *s)
{
    bsvi_proposal_destroy(s->q);
    bsvi_model_destroy(s->model);
    free(s->mean);
    free(s->ls);
    lg_free(&s->lg);
}

static bsvi_evaluator *make_ev(size_t d, uint64_t seed)
{
    bsvi_evaluator *ev = NULL;
    TU_OK(bsvi_evaluator_create(d, &ev));
    TU_OK(bsvi_evaluator_set_seed(ev, seed));
    return ev;
}

/* The refinement BSVI-K uses: the defaults with step size eta. */
static bsvi_svi_options svi_opts(double eta)
{
    bsvi_svi_options o = bsvi_svi_options_default();
    o.step_size = eta;
    return o;
}

static bsvi_evaluator *make_ev_opts(size_t d, uint64_t seed, const bsvi_svi_options *o)
{
    bsvi_evaluator *ev = make_ev(d, seed);
    TU_OK(bsvi_evaluator_set_svi_options(ev, o));
    return ev;
}

static void test_create(void **state)
{
    (void)state;
    bsvi_evaluator *ev = (bsvi_evaluator *)&ev;
    TU_STATUS(bsvi_evaluator_create(0, &ev), BSVI_ERR_ZERO_SIZE);
    assert_null(ev);
    TU_STATUS(bsvi_evaluator_create(BSVI_MAX_DIM + 1, &ev), BSVI_ERR_OUT_OF_RANGE);
    TU_STATUS(bsvi_evaluator_create(2, NULL), BSVI_ERR_NULL_ARGUMENT);
    TU_OK(bsvi_evaluator_create(2, &ev));
    assert_string_equal(bsvi_evaluator_last_error(ev), "");
    TU_STATUS(bsvi_evaluator_set_chunk_rows(ev, 0), BSVI_ERR_ZERO_SIZE);
    TU_MESSAGE(bsvi_evaluator_last_error(ev));
    TU_OK(bsvi_evaluator_set_chunk_rows(ev, 1));
    TU_STATUS(bsvi_evaluator_set_chunk_rows(NULL, 5), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_evaluator_set_seed(NULL, 5), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_evaluator_set_stream(NULL, 5, 0), BSVI_ERR_NULL_ARGUMENT);
    bsvi_evaluator_destroy(ev);
    bsvi_evaluator_destroy(NULL);
}

/* q = exact posterior: every log w equals log p(x), so IWAE-S, BSVI-K with STL steps and
 * ELBO* equal log p(x) to 1e-10 whatever the samples. */
static void test_exact_posterior(void **state)
{
    (void)state;
    ev_setup s;
    ev_init(&s, 4, 3, 0, 0, 7);
    bsvi_svi_options o = svi_opts(0.05);
    o.grad_form = BSVI_GRAD_STL;
    bsvi_evaluator *ev = make_ev_opts(s.d, 1, &o);
    double iw[4], bs[4], el[4], kl[4], rec[4], klq[4];
    TU_OK(bsvi_evaluator_iwae(ev, s.model, s.q, 50, iw));
    bsvi_proposal *fq = NULL;
    TU_OK(bsvi_proposal_create(s.B, s.d, &fq));
    TU_OK(bsvi_evaluator_bsvi(ev, s.model, s.q, 20, bs, fq));
    TU_OK(bsvi_evaluator_elbo_star(ev, s.model, fq, 50, el, kl, rec));
    TU_OK(bsvi_proposal_kl_standard_normal(fq, klq));
    for (size_t b = 0; b < s.B; ++b) {
        const double lp = lg_log_marginal(&s.lg, b);
        TU_NEAR(iw[b], lp, 1e-10);
        TU_NEAR(bs[b], lp, 1e-10);
        TU_NEAR(el[b], lp, 1e-10);
        TU_NEAR(kl[b], klq[b], 1e-12);
        TU_NEAR(rec[b], -(kl[b] + el[b]), 1e-12 * (1.0 + fabs(el[b])));
    }
    bsvi_proposal_destroy(fq);
    bsvi_evaluator_destroy(ev);
    ev_free(&s);
}

/* IWAE-S with S = 5000 approaches log p(x). q has the posterior mean and 1.2 times the
 * posterior std in each of d = 3 dimensions, so the normalised weight has variance
 * chi2 = (1.44 / sqrt(1.88))^3 - 1 = 0.158: the estimate's standard deviation is about
 * sqrt(chi2 / S) = 0.0056 and its bias about chi2 / (2 S) = 1.6e-5. Tolerance 0.04 per data
 * point (about 7 standard deviations; 10 data points). Fixed seed: deterministic. */
static void test_iwae_approaches_log_px(void **state)
{
    (void)state;
    ev_setup s;
    ev_init(&s, 10, 3, 0, 1, 11);
    bsvi_evaluator *ev = make_ev(s.d, 2);
    TU_OK(bsvi_evaluator_set_chunk_rows(ev, 4096));
    double iw[10];
    TU_OK(bsvi_evaluator_iwae(ev, s.model, s.q, 5000, iw));
    assert_true(s.lg.max_rows <= 4096);
    for (size_t b = 0; b < s.B; ++b) {
        TU_NEAR(iw[b], lg_log_marginal(&s.lg, b), 0.04);
    }
    bsvi_evaluator_destroy(ev);
    ev_free(&s);
}

/* BSVI-K from a poor lambda_0 (B = 200 replicates, K = 200, eta = 0.05, orthogonal W so SVI can
 * reach the exact posterior). Checks, each with 5 standard errors from the replicates (fixed
 * seed, deterministic):
 *  - mean BSVI-K <= log p(x) + 5 SE (a lower bound);
 *  - mean BSVI-K exceeds the exact ELBO of lambda_0 (SVI-0's expectation) by > 5 SE;
 *  - mean BSVI-K is within 0.5 nat of log p(x) (SVI converges within ~50 of the 200 steps,
 *    so the uniform-pi penalty is about log(200/150) = 0.3 nat at most);
 *  - ELBO* of the final proposal exceeds the ELBO of lambda_0, and KL* and Reconstruction*
 *    satisfy their identities exactly. */
static void test_bsvi_estimate_and_elbo_star(void **state)
{
    (void)state;
    ev_setup s;
    const size_t B = 200, K = 200, S = 500;
    ev_init(&s, B, 3, 1, 2, 13);
    const double lp = lg_log_marginal(&s.lg, 0);
    const double elbo0 = lg_exact_elbo(&s.lg, 0, s.mean, s.ls, NULL, NULL);
    const bsvi_svi_options o = svi_opts(0.05);
    bsvi_evaluator *ev = make_ev_opts(s.d, 3, &o);
    double *bs = tu_alloc(B), *el = tu_alloc(B), *kl = tu_alloc(B), *rec = tu_alloc(B),
           *klq = tu_alloc(B), *exact_fq = tu_alloc(B);
    bsvi_proposal *fq = NULL;
    TU_OK(bsvi_proposal_create(B, s.d, &fq));
    TU_OK(bsvi_evaluator_bsvi(ev, s.model, s.q, K, bs, fq));
    double mn, se;
    tu_mean_se(bs, B, &mn, &se);
    TU_LE(mn, lp, 5.0 * se);
    TU_LE(elbo0 + 5.0 * se, mn, 0.0);
    TU_NEAR(mn, lp, 0.5);
    /* q is not modified. */
    double m[600], l[600];
    TU_OK(bsvi_proposal_get_params(s.q, m, l));
    TU_BITWISE(m, s.mean, B * s.d);
    TU_BITWISE(l, s.ls, B * s.d);
    /* The final proposal moved towards the posterior. */
    TU_OK(bsvi_proposal_get_params(fq, m, l));
    for (size_t b = 0; b < B; ++b) {
        exact_fq[b] = lg_exact_elbo(&s.lg, b, &m[b * s.d], &l[b * s.d], NULL, NULL);
        assert_true(exact_fq[b] > elbo0);
    }
    TU_OK(bsvi_evaluator_elbo_star(ev, s.model, fq, S, el, kl, rec));
    TU_OK(bsvi_proposal_kl_standard_normal(fq, klq));
    for (size_t b = 0; b < B; ++b) {
        TU_NEAR(kl[b], klq[b], 1e-12 * (1.0 + fabs(klq[b])));
        TU_NEAR(rec[b], -(kl[b] + el[b]), 1e-12 * (1.0 + fabs(el[b]) + fabs(kl[b])));
    }
    /* ELBO* is an S-sample mean of log w under q_K: compare the batch mean with the mean of
     * the closed-form ELBOs (5 SE; SE from the replicates). */
    double *diff = tu_alloc(B);
    for (size_t b = 0; b < B; ++b) {
        diff[b] = el[b] - exact_fq[b];
    }
    tu_mean_se(diff, B, &mn, &se);
    TU_NEAR(mn, 0.0, 5.0 * se + 1e-12);
    tu_mean_se(el, B, &mn, &se);
    TU_LE(mn, lp, 5.0 * se);
    TU_LE(elbo0, mn, 0.0);
    /* Optional outputs may be NULL. */
    TU_OK(bsvi_evaluator_elbo_star(ev, s.model, fq, S, NULL, kl, NULL));
    TU_OK(bsvi_evaluator_bsvi(ev, s.model, s.q, K, bs, NULL));
    free(diff);
    free(bs);
    free(el);
    free(kl);
    free(rec);
    free(klq);
    free(exact_fq);
    bsvi_proposal_destroy(fq);
    bsvi_evaluator_destroy(ev);
    ev_free(&s);
}

/* Host prior: KL* is estimated by the same samples; the identity still holds. */
static void test_host_prior_kl(void **state)
{
    (void)state;
    ev_setup s;
    ev_init(&s, 3, 2, 0, 1, 17);
    TU_OK(bsvi_model_set_prior(s.model, lg_prior_std_normal, NULL));
    bsvi_evaluator *ev = make_ev(s.d, 3);
    double el[3], kl[3], rec[3], klq[3];
    TU_OK(bsvi_evaluator_elbo_star(ev, s.model, s.q, 20000, el, kl, rec));
    TU_OK(bsvi_proposal_kl_standard_normal(s.q, klq));
    for (size_t b = 0; b < s.B; ++b) {
        TU_NEAR(rec[b], -(kl[b] + el[b]), 1e-12 * (1.0 + fabs(el[b]) + fabs(kl[b])));
        /* Monte Carlo KL with 20000 samples: sd of log q - log p is below 2 here, so the
         * error is below 0.015; 0.1 is a generous margin (fixed seed). */
        TU_NEAR(kl[b], klq[b], 0.1);
    }
    bsvi_evaluator_destroy(ev);
    ev_free(&s);
}

/* Results do not depend on the chunk size: bitwise equal for 1, 7 and a large chunk; and no
 * callback ever receives more rows than the chunk size. */
static void test_chunk_independence(void **state)
{
    (void)state;
    ev_setup s;
    ev_init(&s, 4, 3, 0, 2, 19);
    const size_t chunks[3] = {1, 7, 100000};
    double iw[3][4], bs[3][4], el[3][4], kl[3][4], rec[3][4], fm[3][12], fl[3][12];
    bsvi_svi_options o = svi_opts(0.05);
    o.samples_per_step = 2;
    for (size_t c = 0; c < 3; ++c) {
        bsvi_evaluator *ev = make_ev_opts(s.d, 5, &o);
        TU_OK(bsvi_evaluator_set_chunk_rows(ev, chunks[c]));
        s.lg.max_rows = 0;
        TU_OK(bsvi_evaluator_iwae(ev, s.model, s.q, 30, iw[c]));
        bsvi_proposal *fq = NULL;
        TU_OK(bsvi_proposal_create(s.B, s.d, &fq));
        TU_OK(bsvi_evaluator_bsvi(ev, s.model, s.q, 12, bs[c], fq));
        TU_OK(bsvi_evaluator_elbo_star(ev, s.model, fq, 25, el[c], kl[c], rec[c]));
        TU_OK(bsvi_proposal_get_params(fq, fm[c], fl[c]));
        /* evaluate.h: one SVI step of one data point (m = 2 rows here) is never split */
        if (!(s.lg.max_rows <= (chunks[c] < 2 ? 2 : chunks[c]))) {
            print_error("chunk_rows %zu but a callback received %zu rows\n", chunks[c],
                        s.lg.max_rows);
            fail();
        }
        bsvi_proposal_destroy(fq);
        bsvi_evaluator_destroy(ev);
    }
    for (size_t c = 1; c < 3; ++c) {
        TU_BITWISE(iw[c], iw[0], 4);
        TU_BITWISE(bs[c], bs[0], 4);
        TU_BITWISE(fm[c], fm[0], 12);
        TU_BITWISE(fl[c], fl[0], 12);
        TU_BITWISE(el[c], el[0], 4);
        TU_BITWISE(kl[c], kl[0], 4);
        TU_BITWISE(rec[c], rec[0], 4);
    }
    ev_free(&s);
}

/* Same seed: bitwise-equal results; a batch split in two (set_stream(counter, id_offset))
 * reproduces the whole batch bitwise. */
static void test_reproducibility_and_split(void **state)
{
    (void)state;
    ev_setup s;
    const size_t B = 5, B1 = 2, B2 = 3, d = 3;
    ev_init(&s, B, d, 0, 2, 23);
    lg_model second = lg_view(&s.lg, B1);
    bsvi_model *model2 = NULL;
    TU_OK(lg_make_model(&second, &model2));
    bsvi_proposal *q1 = NULL, *q2 = NULL, *fq = NULL, *fq1 = NULL, *fq2 = NULL;
    TU_OK(lg_make_proposal(B1, d, s.mean, s.ls, &q1));
    TU_OK(lg_make_proposal(B2, d, s.mean + B1 * d, s.ls + B1 * d, &q2));
    TU_OK(bsvi_proposal_create(B, d, &fq));
    TU_OK(bsvi_proposal_create(B1, d, &fq1));
    TU_OK(bsvi_proposal_create(B2, d, &fq2));
    bsvi_svi_options o = svi_opts(0.05);
    o.rule = BSVI_STEP_ADAM;
    o.double_sampling = 1;

    double w_iw[5], w_bs[5], w_el[5], w_kl[5], w_rec[5], w_fm[15], w_fl[15];
    double h_iw[5], h_bs[5], h_el[5], h_kl[5], h_rec[5], h_fm[15], h_fl[15];
    double a_iw[5];
    bsvi_evaluator *ev = make_ev_opts(d, 77, &o), *ev2 = make_ev_opts(d, 77, &o);
    TU_OK(bsvi_evaluator_iwae(ev, s.model, s.q, 40, w_iw));
    TU_OK(bsvi_evaluator_bsvi(ev, s.model, s.q, 8, w_bs, fq));
    TU_OK(bsvi_evaluator_elbo_star(ev, s.model, fq, 40, w_el, w_kl, w_rec));
    TU_OK(bsvi_proposal_get_params(fq, w_fm, w_fl));
    /* Same seed, second handle. */
    TU_OK(bsvi_evaluator_iwae(ev2, s.model, s.q, 40, a_iw));
    TU_BITWISE(a_iw, w_iw, B);
    /* Split: each call with the whole batch's counter (0, 1, 2) and the half's offset. */
    TU_OK(bsvi_evaluator_set_seed(ev2, 77));
    TU_OK(bsvi_evaluator_set_stream(ev2, 0, B1));
    TU_OK(bsvi_evaluator_iwae(ev2, model2, q2, 40, h_iw + B1));
    TU_OK(bsvi_evaluator_set_stream(ev2, 0, 0));
    TU_OK(bsvi_evaluator_iwae(ev2, s.model, q1, 40, h_iw));
    TU_OK(bsvi_evaluator_set_stream(ev2, 1, 0));
    TU_OK(bsvi_evaluator_bsvi(ev2, s.model, q1, 8, h_bs, fq1));
    TU_OK(bsvi_evaluator_set_stream(ev2, 1, B1));
    TU_OK(bsvi_evaluator_bsvi(ev2, model2, q2, 8, h_bs + B1, fq2));
    TU_OK(bsvi_evaluator_set_stream(ev2, 2, 0));
    TU_OK(bsvi_evaluator_elbo_star(ev2, s.model, fq1, 40, h_el, h_kl, h_rec));
    TU_OK(bsvi_evaluator_set_stream(ev2, 2, B1));
    TU_OK(bsvi_evaluator_elbo_star(ev2, model2, fq2, 40, h_el + B1, h_kl + B1, h_rec + B1));
    TU_OK(bsvi_proposal_get_params(fq1, h_fm, h_fl));
    TU_OK(bsvi_proposal_get_params(fq2, h_fm + B1 * d, h_fl + B1 * d));
    TU_BITWISE(h_iw, w_iw, B);
    TU_BITWISE(h_bs, w_bs, B);
    TU_BITWISE(h_fm, w_fm, B * d);
    TU_BITWISE(h_fl, w_fl, B * d);
    TU_BITWISE(h_el, w_el, B);
    TU_BITWISE(h_kl, w_kl, B);
    TU_BITWISE(h_rec, w_rec, B);
    bsvi_evaluator_destroy(ev);
    bsvi_evaluator_destroy(ev2);
    bsvi_proposal_destroy(q1);
    bsvi_proposal_destroy(q2);
    bsvi_proposal_destroy(fq);
    bsvi_proposal_destroy(fq1);
    bsvi_proposal_destroy(fq2);
    bsvi_model_destroy(model2);
    ev_free(&s);
}

static void test_bad_input(void **state)
{
    (void)state;
    ev_setup s;
    ev_init(&s, 3, 2, 0, 2, 29);
    lg_model lg3;
    assert_int_equal(lg_init(&lg3, 3, 4, 3, 0.8, 0, 3), 0);
    bsvi_model *m3 = NULL, *nolik = NULL;
    TU_OK(lg_make_model(&lg3, &m3));
    TU_OK(bsvi_model_create(2, &nolik));
    bsvi_proposal *q3 = NULL, *fq = NULL, *fq_wrong = NULL, *fq_dim = NULL;
    TU_OK(bsvi_proposal_create(3, 3, &q3));
    TU_OK(bsvi_proposal_create(3, 2, &fq));
    TU_OK(bsvi_proposal_create(4, 2, &fq_wrong));
    TU_OK(bsvi_proposal_create(3, 3, &fq_dim));
    const bsvi_svi_options o = svi_opts(0.05);
    bsvi_evaluator *ev = make_ev_opts(2, 1, &o), *fresh = make_ev_opts(2, 1, &o);
    double o1[3], o2[3], o3[3];
    tu_fill(o1, 3, TU_SENTINEL);
    tu_fill(o2, 3, TU_SENTINEL);
    tu_fill(o3, 3, TU_SENTINEL);

    TU_STATUS(bsvi_evaluator_iwae(NULL, s.model, s.q, 10, o1), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_evaluator_iwae(ev, NULL, s.q, 10, o1), BSVI_ERR_NULL_ARGUMENT);
    TU_MESSAGE(bsvi_evaluator_last_error(ev));
    TU_STATUS(bsvi_evaluator_iwae(ev, s.model, NULL, 10, o1), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_evaluator_iwae(ev, s.model, s.q, 10, NULL), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_evaluator_iwae(ev, s.model, s.q, 0, o1), BSVI_ERR_ZERO_SIZE);
    TU_MESSAGE(bsvi_evaluator_last_error(ev));
#if SIZE_MAX > 0xffffffffu
    TU_STATUS(bsvi_evaluator_iwae(ev, s.model, s.q, ((size_t)1 << 32) + 1, o1),
              BSVI_ERR_OUT_OF_RANGE);
    TU_MESSAGE(bsvi_evaluator_last_error(ev));
#endif
    TU_STATUS(bsvi_evaluator_iwae(ev, m3, s.q, 10, o1), BSVI_ERR_SIZE_MISMATCH);
    TU_MESSAGE_MENTIONS(bsvi_evaluator_last_error(ev), "dim|size|match");
    TU_STATUS(bsvi_evaluator_iwae(ev, s.model, q3, 10, o1), BSVI_ERR_SIZE_MISMATCH);
    TU_STATUS(bsvi_evaluator_iwae(ev, nolik, s.q, 10, o1), BSVI_ERR_BAD_STATE);
    TU_MESSAGE_MENTIONS(bsvi_evaluator_last_error(ev), "likelihood");

    TU_STATUS(bsvi_evaluator_bsvi(NULL, s.model, s.q, 5, o1, fq), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_evaluator_bsvi(ev, NULL, s.q, 5, o1, fq), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_evaluator_bsvi(ev, s.model, NULL, 5, o1, fq), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_evaluator_bsvi(ev, s.model, s.q, 0, o1, fq), BSVI_ERR_ZERO_SIZE);
    TU_STATUS(bsvi_evaluator_bsvi(ev, s.model, s.q, BSVI_MAX_STEPS + 2, o1, fq),
              BSVI_ERR_OUT_OF_RANGE);
    TU_MESSAGE(bsvi_evaluator_last_error(ev));
    TU_STATUS(bsvi_evaluator_bsvi(ev, m3, s.q, 5, o1, fq), BSVI_ERR_SIZE_MISMATCH);
    TU_STATUS(bsvi_evaluator_bsvi(ev, s.model, q3, 5, o1, fq), BSVI_ERR_SIZE_MISMATCH);
    TU_STATUS(bsvi_evaluator_bsvi(ev, s.model, s.q, 5, o1, fq_wrong), BSVI_ERR_SIZE_MISMATCH);
    TU_MESSAGE(bsvi_evaluator_last_error(ev));
    TU_STATUS(bsvi_evaluator_bsvi(ev, s.model, s.q, 5, o1, fq_dim), BSVI_ERR_SIZE_MISMATCH);
    TU_STATUS(bsvi_evaluator_bsvi(ev, s.model, s.q, 5, NULL, fq), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_evaluator_bsvi(ev, nolik, s.q, 5, o1, fq), BSVI_ERR_BAD_STATE);
    TU_MESSAGE_MENTIONS(bsvi_evaluator_last_error(ev), "likelihood");
    /* analytic KL needs the standard normal prior */
    bsvi_svi_options akl = o;
    akl.grad_form = BSVI_GRAD_ANALYTIC_KL;
    bsvi_model *hostprior = NULL;
    TU_OK(lg_make_model(&s.lg, &hostprior));
    TU_OK(bsvi_model_set_prior(hostprior, lg_prior_std_normal, NULL));
    TU_OK(bsvi_evaluator_set_svi_options(ev, &akl));
    TU_STATUS(bsvi_evaluator_bsvi(ev, hostprior, s.q, 5, o1, fq), BSVI_ERR_BAD_STATE);
    TU_MESSAGE_MENTIONS(bsvi_evaluator_last_error(ev), "prior|normal|analytic");
    TU_OK(bsvi_evaluator_set_svi_options(ev, &o));
    bsvi_model_destroy(hostprior);
    /* the options themselves */
    TU_STATUS(bsvi_evaluator_set_svi_options(NULL, &o), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_evaluator_set_svi_options(ev, NULL), BSVI_ERR_NULL_ARGUMENT);
    bsvi_svi_options got;
    TU_STATUS(bsvi_evaluator_get_svi_options(NULL, &got), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_evaluator_get_svi_options(ev, NULL), BSVI_ERR_NULL_ARGUMENT);

    TU_STATUS(bsvi_evaluator_elbo_star(ev, s.model, NULL, 10, o1, o2, o3),
              BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_evaluator_elbo_star(ev, s.model, s.q, 0, o1, o2, o3), BSVI_ERR_ZERO_SIZE);
    TU_STATUS(bsvi_evaluator_elbo_star(ev, m3, s.q, 10, o1, o2, o3), BSVI_ERR_SIZE_MISMATCH);
    TU_UNTOUCHED(o1, 3);
    TU_UNTOUCHED(o2, 3);
    TU_UNTOUCHED(o3, 3);
    /* final_q untouched by the failures (still N(0, I)). */
    double fm[6], fl[6];
    TU_OK(bsvi_proposal_get_params(fq, fm, fl));
    for (size_t i = 0; i < 6; ++i) {
        assert_true(fm[i] == 0.0 && fl[i] == 0.0);
    }
    /* The handle still works, and matches a fresh handle (failures drew nothing). */
    TU_OK(bsvi_evaluator_iwae(ev, s.model, s.q, 10, o1));
    TU_OK(bsvi_evaluator_iwae(fresh, s.model, s.q, 10, o2));
    TU_BITWISE(o1, o2, 3);
    bsvi_evaluator_destroy(ev);
    bsvi_evaluator_destroy(fresh);
    bsvi_proposal_destroy(q3);
    bsvi_proposal_destroy(fq);
    bsvi_proposal_destroy(fq_wrong);
    bsvi_proposal_destroy(fq_dim);
    bsvi_model_destroy(m3);
    bsvi_model_destroy(nolik);
    lg_free(&lg3);
    ev_free(&s);
}

/* ---- the SVI options -------------------------------------------------------------------- */

static void assert_options_equal_but_steps(const bsvi_svi_options *a, const bsvi_svi_options *b)
{
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

static void assert_ev_options(const bsvi_evaluator *ev, const bsvi_svi_options *want)
{
    bsvi_svi_options got;
    memset(&got, 0xA5, sizeof got);
    TU_OK(bsvi_evaluator_get_svi_options(ev, &got));
    assert_options_equal_but_steps(&got, want);
}

/* Defaults, round trip, validation as bsvi_svi_set_options (nothing changes on error); the
 * steps field is ignored; BSVI-K is the uniform-pi BSVI bound of the trajectory that an SVI
 * handle with the same options, seed and stream records (K-1 steps), and final_q that
 * trajectory's last proposal. */
static void test_svi_options(void **state)
{
    (void)state;
    ev_setup s;
    ev_init(&s, 4, 3, 0, 2, 37);
    bsvi_evaluator *ev = make_ev(s.d, 9);
    const bsvi_svi_options dflt = bsvi_svi_options_default();
    assert_ev_options(ev, &dflt);
    bsvi_svi_options o = dflt;
    o.step_size = 0.04;
    o.samples_per_step = 2;
    o.rule = BSVI_STEP_ADAM;
    o.adam_beta1 = 0.8;
    o.adam_beta2 = 0.99;
    o.adam_epsilon = 1e-6;
    o.clip_norm = 3.0;
    o.grad_form = BSVI_GRAD_STL;
    o.double_sampling = 1;
    o.divergence = BSVI_DIVERGENCE_FREEZE;
    o.momentum = 0.3;
    TU_OK(bsvi_evaluator_set_svi_options(ev, &o));
    assert_ev_options(ev, &o);
    /* bad fields: the status of bsvi_svi_set_options, nothing changes */
    bsvi_svi *chk = NULL;
    TU_OK(bsvi_svi_create(s.d, &chk));
    for (int f = 0; f < 12; ++f) {
        bsvi_svi_options bad = dflt;
        bsvi_status want = BSVI_ERR_BAD_VALUE;
        switch (f) {
        case 0: bad.step_size = 0.0; break;
        case 1: bad.step_size = NAN; break;
        case 2: bad.samples_per_step = 0, want = BSVI_ERR_ZERO_SIZE; break;
        case 3: bad.samples_per_step = BSVI_MAX_SAMPLES + 1, want = BSVI_ERR_OUT_OF_RANGE; break;
        case 4: bad.rule = (bsvi_step_rule)3; break;
        case 5: bad.momentum = 1.0; break;
        case 6: bad.adam_beta1 = -0.1; break;
        case 7: bad.adam_epsilon = 0.0; break;
        case 8: bad.clip_norm = -2.0; break;
        case 9: bad.grad_form = BSVI_GRAD_DREG; break;
        case 10: bad.double_sampling = 3; break;
        default: bad.divergence = (bsvi_divergence_policy)5; break;
        }
        TU_STATUS(bsvi_evaluator_set_svi_options(ev, &bad), want);
        TU_MESSAGE(bsvi_evaluator_last_error(ev));
        TU_STATUS(bsvi_svi_set_options(chk, &bad), want);
        assert_ev_options(ev, &o);
    }
    bsvi_svi_destroy(chk);

    /* steps is ignored: K gives the refinement's length */
    const size_t K = 6;
    double a[4], b[4], fa[12], fb[12], la[12], lb[12];
    bsvi_proposal *fq = NULL;
    TU_OK(bsvi_proposal_create(s.B, s.d, &fq));
    bsvi_svi_options o0 = o, o50 = o;
    o0.steps = 0;
    o50.steps = 50;
    bsvi_evaluator *e0 = make_ev_opts(s.d, 21, &o0), *e50 = make_ev_opts(s.d, 21, &o50);
    TU_OK(bsvi_evaluator_bsvi(e0, s.model, s.q, K, a, fq));
    TU_OK(bsvi_proposal_get_params(fq, fa, la));
    TU_OK(bsvi_evaluator_bsvi(e50, s.model, s.q, K, b, fq));
    TU_OK(bsvi_proposal_get_params(fq, fb, lb));
    TU_BITWISE(a, b, s.B);
    TU_BITWISE(fa, fb, s.B * s.d);
    TU_BITWISE(la, lb, s.B * s.d);

    /* the same refinement as bsvi_svi_run with these options, seed 21 and counter 0 */
    bsvi_svi *svi = NULL;
    bsvi_trajectory *t = NULL;
    TU_OK(bsvi_svi_create(s.d, &svi));
    TU_OK(bsvi_trajectory_create(&t));
    bsvi_svi_options os = o;
    os.steps = K - 1;
    TU_OK(bsvi_svi_set_options(svi, &os));
    TU_OK(bsvi_svi_set_seed(svi, 21));
    TU_OK(bsvi_svi_run(svi, s.model, s.q, t));
    tu_traj tr;
    tu_traj_read(t, &tr);
    bsvi_estimator *est = NULL;
    TU_OK(bsvi_estimator_create(s.d, &est));
    TU_OK(bsvi_estimator_bsvi(est, t, NULL));
    double eb[4];
    TU_OK(bsvi_estimator_get_bounds(est, eb, s.B));
    size_t taken_t[4], taken_e[4];
    TU_OK(bsvi_trajectory_get_steps_taken(t, taken_t));
    TU_OK(bsvi_evaluator_get_steps_taken(e0, taken_e, s.B));
    for (size_t p = 0; p < s.B; ++p) {
        TU_NEAR(a[p], eb[p], 1e-12 * (1.0 + fabs(eb[p])));
        TU_BITWISE(&fa[p * s.d], &tr.mean[(p * K + K - 1) * s.d], s.d);
        TU_BITWISE(&la[p * s.d], &tr.ls[(p * K + K - 1) * s.d], s.d);
        assert_int_equal(taken_e[p], taken_t[p]);
    }
    assert_int_equal(bsvi_evaluator_num_frozen(e0), bsvi_trajectory_num_diverged(t));
    tu_traj_free(&tr);
    bsvi_estimator_destroy(est);
    bsvi_trajectory_destroy(t);
    bsvi_svi_destroy(svi);
    bsvi_evaluator_destroy(e0);
    bsvi_evaluator_destroy(e50);
    bsvi_proposal_destroy(fq);
    bsvi_evaluator_destroy(ev);
    ev_free(&s);
}

/* ---- the refinement's report: steps taken and frozen points ------------------------------ */

/* Point 1 starts at log-std 29.9: its first pathwise step leaves [-30, 30]. Under
 * BSVI_DIVERGENCE_FAIL the estimate fails; under FREEZE that point stops at step 0, is
 * reported, and the other points' estimates and final proposals are bitwise those of a
 * batch where nothing diverged. */
static void test_steps_taken_and_frozen(void **state)
{
    (void)state;
    const size_t B = 3, d = 2, K = 5;
    lg_model lg;
    assert_int_equal(lg_init(&lg, d, 4, B, 0.9, 0, 23), 0);
    bsvi_model *model = NULL;
    TU_OK(lg_make_model(&lg, &model));
    const double mean0[6] = {0.3, -0.2, 0.1, 0.4, -0.5, 0.2};
    const double ls_bad[6] = {0.0, -0.1, 29.9, 29.9, 0.1, 0.0};
    const double ls_good[6] = {0.0, -0.1, 0.0, 0.0, 0.1, 0.0};
    bsvi_proposal *qbad = NULL, *qgood = NULL, *fq = NULL;
    TU_OK(lg_make_proposal(B, d, mean0, ls_bad, &qbad));
    TU_OK(lg_make_proposal(B, d, mean0, ls_good, &qgood));
    TU_OK(bsvi_proposal_create(B, d, &fq));
    bsvi_svi_options o = svi_opts(1e-3);
    bsvi_evaluator *ev = make_ev_opts(d, 5, &o);
    size_t taken[3] = {77, 77, 77};
    /* before any BSVI-K estimate */
    assert_int_equal(bsvi_evaluator_num_frozen(ev), 0);
    assert_int_equal(bsvi_evaluator_num_frozen(NULL), 0);
    TU_STATUS(bsvi_evaluator_get_steps_taken(ev, taken, B), BSVI_ERR_BAD_STATE);
    TU_MESSAGE(bsvi_evaluator_last_error(ev));
    double iw[3];
    TU_OK(bsvi_evaluator_iwae(ev, model, qgood, 4, iw)); /* IWAE-S is not a BSVI-K estimate */
    TU_STATUS(bsvi_evaluator_get_steps_taken(ev, taken, B), BSVI_ERR_BAD_STATE);
    assert_true(taken[0] == 77 && taken[1] == 77 && taken[2] == 77);
    TU_OK(bsvi_evaluator_set_seed(ev, 5));

    /* FAIL (the default): NUMERIC naming the point; outputs untouched */
    double out[3], fm[6], fl[6];
    tu_fill(out, 3, TU_SENTINEL);
    TU_STATUS(bsvi_evaluator_bsvi(ev, model, qbad, K, out, fq), BSVI_ERR_NUMERIC);
    TU_MESSAGE_MENTIONS(bsvi_evaluator_last_error(ev), "data point 1");
    TU_UNTOUCHED(out, 3);
    TU_STATUS(bsvi_evaluator_get_steps_taken(ev, taken, B), BSVI_ERR_BAD_STATE);

    /* FREEZE */
    o.divergence = BSVI_DIVERGENCE_FREEZE;
    TU_OK(bsvi_evaluator_set_svi_options(ev, &o));
    TU_OK(bsvi_evaluator_bsvi(ev, model, qbad, K, out, fq));
    TU_OK(bsvi_proposal_get_params(fq, fm, fl));
    assert_int_equal(bsvi_evaluator_num_frozen(ev), 1);
    TU_OK(bsvi_evaluator_get_steps_taken(ev, taken, B));
    assert_int_equal(taken[0], K - 1);
    assert_int_equal(taken[1], 0);
    assert_int_equal(taken[2], K - 1);
    for (size_t p = 0; p < B; ++p) {
        assert_true(isfinite(out[p]));
    }
    /* the frozen point's last proposal is its lambda_0 */
    TU_BITWISE(&fm[d], &mean0[d], d);
    TU_BITWISE(&fl[d], &ls_bad[d], d);
    /* the others are as in the batch where nothing diverged (same seed and counter) */
    bsvi_evaluator *evg = make_ev_opts(d, 5, &o);
    double outg[3], gm[6], gl[6];
    bsvi_proposal *fqg = NULL;
    TU_OK(bsvi_proposal_create(B, d, &fqg));
    TU_OK(bsvi_evaluator_bsvi(evg, model, qgood, K, outg, fqg));
    TU_OK(bsvi_proposal_get_params(fqg, gm, gl));
    assert_int_equal(bsvi_evaluator_num_frozen(evg), 0);
    for (size_t p = 0; p < B; p += 2) {
        TU_BITWISE(&out[p], &outg[p], 1);
        TU_BITWISE(&fm[p * d], &gm[p * d], d);
        TU_BITWISE(&fl[p * d], &gl[p * d], d);
    }
    /* the evaluator's report equals the trajectory's of the same refinement */
    bsvi_svi *svi = NULL;
    bsvi_trajectory *t = NULL;
    TU_OK(bsvi_svi_create(d, &svi));
    TU_OK(bsvi_trajectory_create(&t));
    bsvi_svi_options os = o;
    os.steps = K - 1;
    TU_OK(bsvi_svi_set_options(svi, &os));
    TU_OK(bsvi_svi_set_seed(svi, 5));
    TU_OK(bsvi_svi_run(svi, model, qbad, t));
    size_t tt[3];
    TU_OK(bsvi_trajectory_get_steps_taken(t, tt));
    for (size_t p = 0; p < B; ++p) {
        assert_int_equal(tt[p], taken[p]);
    }
    bsvi_trajectory_destroy(t);
    bsvi_svi_destroy(svi);

    /* argument checks; a failed or other estimate keeps the last report */
    size_t small[2];
    TU_STATUS(bsvi_evaluator_get_steps_taken(ev, small, 2), BSVI_ERR_SIZE_MISMATCH);
    TU_STATUS(bsvi_evaluator_get_steps_taken(ev, NULL, B), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_evaluator_get_steps_taken(NULL, taken, B), BSVI_ERR_NULL_ARGUMENT);
    TU_OK(bsvi_evaluator_iwae(ev, model, qgood, 4, iw));
    TU_STATUS(bsvi_evaluator_bsvi(ev, model, qbad, 0, out, fq), BSVI_ERR_ZERO_SIZE);
    size_t again[3];
    TU_OK(bsvi_evaluator_get_steps_taken(ev, again, B));
    assert_true(again[0] == taken[0] && again[1] == taken[1] && again[2] == taken[2]);
    assert_int_equal(bsvi_evaluator_num_frozen(ev), 1);
    /* a refinement where nothing diverges: every point takes K - 1 steps */
    TU_OK(bsvi_evaluator_bsvi(ev, model, qgood, K, out, NULL));
    assert_int_equal(bsvi_evaluator_num_frozen(ev), 0);
    TU_OK(bsvi_evaluator_get_steps_taken(ev, again, B));
    for (size_t p = 0; p < B; ++p) {
        assert_int_equal(again[p], K - 1);
    }
    /* K = 1: no step */
    TU_OK(bsvi_evaluator_bsvi(ev, model, qbad, 1, out, NULL));
    TU_OK(bsvi_evaluator_get_steps_taken(ev, again, B));
    for (size_t p = 0; p < B; ++p) {
        assert_int_equal(again[p], 0);
    }
    assert_int_equal(bsvi_evaluator_num_frozen(ev), 0);
    bsvi_proposal_destroy(fqg);
    bsvi_evaluator_destroy(evg);
    bsvi_evaluator_destroy(ev);
    bsvi_proposal_destroy(fq);
    bsvi_proposal_destroy(qbad);
    bsvi_proposal_destroy(qgood);
    bsvi_model_destroy(model);
    lg_free(&lg);
}

/* ---- zero-density points ----------------------------------------------------------------- */

/* lg_likelihood, but zero (-INFINITY) for data point 1. */
static int zero_for_one(size_t n, size_t dim, const double *z, const size_t *data_index,
                        double *log_density, double *grad, void *user_data)
{
    const int rc = lg_likelihood(n, dim, z, data_index, log_density, grad, user_data);
    for (size_t r = 0; r < n; ++r) {
        if (data_index[r] == 1) {
            log_density[r] = -INFINITY;
        }
    }
    return rc;
}

static void assert_ev_stats(const bsvi_evaluator *ev, const bsvi_stats *want)
{
    bsvi_stats got;
    memset(&got, 0xA5, sizeof got);
    TU_OK(bsvi_evaluator_get_stats(ev, &got));
    assert_true(got.calls == want->calls);
    assert_true(got.data_points == want->data_points);
    assert_true(got.likelihood_calls == want->likelihood_calls);
    assert_true(got.likelihood_rows == want->likelihood_rows);
    assert_true(got.prior_calls == want->prior_calls);
    assert_true(got.prior_rows == want->prior_rows);
    assert_true(got.svi_steps == want->svi_steps);
    assert_true(got.zero_points == want->zero_points);
}

/* A point whose weights are all zero: under BSVI_POINTS_REPORT (the default) its IWAE-S and
 * BSVI-K estimates are -INFINITY and counted, and the other points' estimates (and final
 * proposals) are bitwise those of the model without the zero (per-point streams); under
 * BSVI_POINTS_FAIL the estimate fails with NUMERIC and changes nothing. */
static void test_zero_points_policy(void **state)
{
    (void)state;
    ev_setup s;
    ev_init(&s, 4, 2, 0, 2, 41);
    bsvi_model *bad = NULL;
    TU_OK(bsvi_model_create(s.d, &bad));
    TU_OK(bsvi_model_set_likelihood(bad, zero_for_one, &s.lg));
    const bsvi_svi_options o = svi_opts(0.05);
    bsvi_evaluator *ev = make_ev_opts(s.d, 13, &o), *evg = make_ev_opts(s.d, 13, &o);
    TU_OK(bsvi_evaluator_set_chunk_rows(ev, 3)); /* several groups of points per estimate */
    TU_OK(bsvi_evaluator_set_chunk_rows(evg, 3));
    assert_int_equal(bsvi_evaluator_num_zero_points(ev), 0);
    assert_int_equal(bsvi_evaluator_num_zero_points(NULL), 0);
    const size_t S = 9, K = 5;
    double iw[4], iwg[4], bs[4], bsg[4], fm[8], fl[8], gm[8], gl[8];
    bsvi_proposal *fq = NULL, *fqg = NULL;
    TU_OK(bsvi_proposal_create(s.B, s.d, &fq));
    TU_OK(bsvi_proposal_create(s.B, s.d, &fqg));

    /* IWAE-S */
    TU_OK(bsvi_evaluator_iwae(ev, bad, s.q, S, iw));
    TU_OK(bsvi_evaluator_iwae(evg, s.model, s.q, S, iwg));
    assert_true(iw[1] == -INFINITY);
    assert_int_equal(bsvi_evaluator_num_zero_points(ev), 1);
    assert_int_equal(bsvi_evaluator_num_zero_points(evg), 0);
    for (size_t p = 0; p < s.B; ++p) {
        if (p != 1) {
            TU_BITWISE(&iw[p], &iwg[p], 1);
        }
    }
    /* BSVI-K: the zero point's rows give no direction, so it keeps lambda_0 */
    TU_OK(bsvi_evaluator_bsvi(ev, bad, s.q, K, bs, fq));
    TU_OK(bsvi_evaluator_bsvi(evg, s.model, s.q, K, bsg, fqg));
    TU_OK(bsvi_proposal_get_params(fq, fm, fl));
    TU_OK(bsvi_proposal_get_params(fqg, gm, gl));
    assert_true(bs[1] == -INFINITY);
    assert_int_equal(bsvi_evaluator_num_zero_points(ev), 1);
    assert_int_equal(bsvi_evaluator_num_frozen(ev), 0);
    for (size_t p = 0; p < s.B; ++p) {
        if (p != 1) {
            TU_BITWISE(&bs[p], &bsg[p], 1);
            TU_BITWISE(&fm[p * s.d], &gm[p * s.d], s.d);
            TU_BITWISE(&fl[p * s.d], &gl[p * s.d], s.d);
        }
    }
    TU_BITWISE(&fm[s.d], &s.mean[s.d], s.d);
    TU_BITWISE(&fl[s.d], &s.ls[s.d], s.d);
    size_t taken[4];
    TU_OK(bsvi_evaluator_get_steps_taken(ev, taken, s.B));
    for (size_t p = 0; p < s.B; ++p) {
        assert_int_equal(taken[p], K - 1);
    }
    bsvi_stats st;
    TU_OK(bsvi_evaluator_get_stats(ev, &st));
    assert_true(st.calls == 2 && st.data_points == 2 * s.B && st.zero_points == 2);
    /* ELBO* of a zero-density sample is still an error */
    double el[4];
    tu_fill(el, 4, TU_SENTINEL);
    TU_STATUS(bsvi_evaluator_elbo_star(ev, bad, s.q, 4, el, NULL, NULL), BSVI_ERR_NUMERIC);
    TU_UNTOUCHED(el, 4);

    /* BSVI_POINTS_FAIL: NUMERIC, outputs, counters, counter and the last count untouched */
    TU_STATUS(bsvi_evaluator_set_point_policy(ev, (bsvi_point_policy)2), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_evaluator_set_point_policy(ev, (bsvi_point_policy)-1), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_evaluator_set_point_policy(NULL, BSVI_POINTS_FAIL), BSVI_ERR_NULL_ARGUMENT);
    TU_OK(bsvi_evaluator_set_point_policy(ev, BSVI_POINTS_FAIL));
    uint64_t c_before = 0, c_after = 0;
    TU_OK(bsvi_evaluator_get_stream(ev, NULL, &c_before, NULL));
    tu_fill(iw, 4, TU_SENTINEL);
    TU_STATUS(bsvi_evaluator_iwae(ev, bad, s.q, S, iw), BSVI_ERR_NUMERIC);
    TU_MESSAGE_MENTIONS(bsvi_evaluator_last_error(ev), "data point 1");
    TU_UNTOUCHED(iw, 4);
    double pm[8], pl[8];
    TU_OK(bsvi_proposal_get_params(fq, pm, pl));
    tu_fill(bs, 4, TU_SENTINEL);
    TU_STATUS(bsvi_evaluator_bsvi(ev, bad, s.q, K, bs, fq), BSVI_ERR_NUMERIC);
    TU_MESSAGE_MENTIONS(bsvi_evaluator_last_error(ev), "data point 1");
    TU_UNTOUCHED(bs, 4);
    TU_OK(bsvi_proposal_get_params(fq, fm, fl));
    TU_BITWISE(fm, pm, s.B * s.d);
    TU_BITWISE(fl, pl, s.B * s.d);
    bsvi_stats st2;
    TU_OK(bsvi_evaluator_get_stats(ev, &st2));
    assert_memory_equal(&st, &st2, sizeof st);
    TU_OK(bsvi_evaluator_get_stream(ev, NULL, &c_after, NULL));
    assert_true(c_after == c_before);
    assert_int_equal(bsvi_evaluator_num_zero_points(ev), 1);
    /* FAIL with no zero point: as REPORT */
    TU_OK(bsvi_evaluator_iwae(ev, s.model, s.q, S, iw));
    assert_int_equal(bsvi_evaluator_num_zero_points(ev), 0);
    /* back to REPORT: the next estimate of the bad model matches the good one again */
    TU_OK(bsvi_evaluator_set_point_policy(ev, BSVI_POINTS_REPORT));
    TU_OK(bsvi_evaluator_iwae(ev, bad, s.q, S, iw));
    TU_OK(bsvi_evaluator_set_stream(evg, c_after + 1, 0));
    TU_OK(bsvi_evaluator_iwae(evg, s.model, s.q, S, iwg));
    assert_true(iw[1] == -INFINITY);
    TU_BITWISE(&iw[0], &iwg[0], 1);
    TU_BITWISE(&iw[2], &iwg[2], 2);
    bsvi_proposal_destroy(fq);
    bsvi_proposal_destroy(fqg);
    bsvi_evaluator_destroy(ev);
    bsvi_evaluator_destroy(evg);
    bsvi_model_destroy(bad);
    ev_free(&s);
}

/* ---- stream and counters ------------------------------------------------------------------ */

static int cancel_at_second(size_t done, size_t total, void *user_data)
{
    (void)done, (void)total;
    return ++*(int *)user_data >= 2;
}

static void assert_ev_stream(const bsvi_evaluator *ev, uint64_t seed, uint64_t counter,
                             uint64_t id)
{
    uint64_t a = 1234, b = 1234, c = 1234;
    TU_OK(bsvi_evaluator_get_stream(ev, &a, &b, &c));
    assert_true(a == seed && b == counter && c == id);
}

static void test_stream_and_stats(void **state)
{
    (void)state;
    ev_setup s;
    ev_init(&s, 3, 2, 0, 2, 43);
    bsvi_evaluator *ev = NULL;
    TU_OK(bsvi_evaluator_create(s.d, &ev));
    bsvi_stats want;
    memset(&want, 0, sizeof want);
    assert_ev_stream(ev, 0, 0, 0);
    assert_ev_stats(ev, &want);
    TU_OK(bsvi_evaluator_get_stream(ev, NULL, NULL, NULL));
    TU_STATUS(bsvi_evaluator_get_stream(NULL, NULL, NULL, NULL), BSVI_ERR_NULL_ARGUMENT);
    bsvi_stats st;
    TU_STATUS(bsvi_evaluator_get_stats(NULL, &st), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_evaluator_get_stats(ev, NULL), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_evaluator_reset_stats(NULL), BSVI_ERR_NULL_ARGUMENT);
    TU_OK(bsvi_evaluator_set_seed(ev, 7));
    assert_ev_stream(ev, 7, 0, 0);
    TU_OK(bsvi_evaluator_set_stream(ev, 3, 2));
    assert_ev_stream(ev, 7, 3, 2);
    bsvi_svi_options o = svi_opts(0.05);
    o.samples_per_step = 2;
    TU_OK(bsvi_evaluator_set_svi_options(ev, &o));
    TU_OK(bsvi_evaluator_set_chunk_rows(ev, 4));

    const size_t S = 10, K = 4;
    double out[3], kl[3];
    unsigned long c0 = s.lg.calls, r0 = s.lg.rows;
    TU_OK(bsvi_evaluator_iwae(ev, s.model, s.q, S, out));
    assert_ev_stream(ev, 7, 4, 2);
    want.calls = 1;
    want.data_points = s.B;
    want.likelihood_calls = s.lg.calls - c0;
    want.likelihood_rows = s.lg.rows - r0;
    assert_true(want.likelihood_rows == s.B * S);
    assert_true(want.likelihood_calls >= (s.B * S + 3) / 4); /* chunks of 4 rows */
    assert_ev_stats(ev, &want);

    c0 = s.lg.calls, r0 = s.lg.rows;
    TU_OK(bsvi_evaluator_bsvi(ev, s.model, s.q, K, out, NULL));
    assert_ev_stream(ev, 7, 5, 2);
    want.calls = 2;
    want.data_points = 2 * s.B;
    want.likelihood_calls += s.lg.calls - c0;
    want.likelihood_rows += s.lg.rows - r0;
    want.svi_steps = K - 1; /* one per step of the batch */
    assert_ev_stats(ev, &want);

    c0 = s.lg.calls, r0 = s.lg.rows;
    TU_OK(bsvi_evaluator_elbo_star(ev, s.model, s.q, S, out, kl, NULL));
    assert_ev_stream(ev, 7, 6, 2);
    want.calls = 3;
    want.data_points = 3 * s.B;
    want.likelihood_calls += s.lg.calls - c0;
    want.likelihood_rows += s.lg.rows - r0;
    assert_true(s.lg.rows - r0 == s.B * S);
    assert_ev_stats(ev, &want);

    /* a host prior is counted too */
    bsvi_model *hp = NULL;
    TU_OK(lg_make_model(&s.lg, &hp));
    TU_OK(bsvi_model_set_prior(hp, lg_prior_std_normal, NULL));
    c0 = s.lg.calls, r0 = s.lg.rows;
    TU_OK(bsvi_evaluator_iwae(ev, hp, s.q, S, out));
    want.calls = 4;
    want.data_points = 4 * s.B;
    want.likelihood_calls += s.lg.calls - c0;
    want.likelihood_rows += s.lg.rows - r0;
    want.prior_calls = s.lg.calls - c0;
    want.prior_rows = s.lg.rows - r0;
    assert_ev_stats(ev, &want);
    assert_ev_stream(ev, 7, 7, 2);

    /* failed and cancelled estimates count nothing and keep the counter */
    TU_STATUS(bsvi_evaluator_iwae(ev, s.model, s.q, 0, out), BSVI_ERR_ZERO_SIZE);
    lg_faulty f = {&s.lg, 1, 0, 3, LG_FAULT_CODE};
    bsvi_model *faulty = NULL;
    TU_OK(bsvi_model_create(s.d, &faulty));
    TU_OK(bsvi_model_set_likelihood(faulty, lg_faulty_likelihood, &f));
    TU_STATUS(bsvi_evaluator_bsvi(ev, faulty, s.q, K, out, NULL), BSVI_ERR_CALLBACK_FAILED);
    f.calls = 0;
    TU_STATUS(bsvi_evaluator_iwae(ev, faulty, s.q, S, out), BSVI_ERR_CALLBACK_FAILED);
    int n = 0;
    TU_OK(bsvi_evaluator_set_progress(ev, cancel_at_second, &n));
    TU_STATUS(bsvi_evaluator_elbo_star(ev, s.model, s.q, S, out, NULL, NULL), BSVI_ERR_CANCELLED);
    n = 0;
    TU_STATUS(bsvi_evaluator_bsvi(ev, s.model, s.q, K, out, NULL), BSVI_ERR_CANCELLED);
    TU_OK(bsvi_evaluator_set_progress(ev, NULL, NULL));
    assert_ev_stats(ev, &want);
    assert_ev_stream(ev, 7, 7, 2);

    /* setters keep the counters; reset_stats clears them and keeps the stream */
    TU_OK(bsvi_evaluator_set_seed(ev, 8));
    TU_OK(bsvi_evaluator_set_chunk_rows(ev, 100));
    TU_OK(bsvi_evaluator_set_svi_options(ev, &o));
    TU_OK(bsvi_evaluator_set_point_policy(ev, BSVI_POINTS_FAIL));
    assert_ev_stats(ev, &want);
    assert_ev_stream(ev, 8, 0, 2);
    TU_OK(bsvi_evaluator_reset_stats(ev));
    memset(&want, 0, sizeof want);
    assert_ev_stats(ev, &want);
    assert_ev_stream(ev, 8, 0, 2);
    bsvi_model_destroy(faulty);
    bsvi_model_destroy(hp);
    bsvi_evaluator_destroy(ev);
    ev_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create),
        cmocka_unit_test(test_exact_posterior),
        cmocka_unit_test(test_iwae_approaches_log_px),
        cmocka_unit_test(test_bsvi_estimate_and_elbo_star),
        cmocka_unit_test(test_host_prior_kl),
        cmocka_unit_test(test_chunk_independence),
        cmocka_unit_test(test_reproducibility_and_split),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_svi_options),
        cmocka_unit_test(test_steps_taken_and_frozen),
        cmocka_unit_test(test_zero_points_policy),
        cmocka_unit_test(test_stream_and_stats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
