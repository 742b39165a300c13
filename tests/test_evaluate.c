/* test_evaluate.c: IWAE-S and BSVI-K log-likelihood estimates, ELBO*, KL*, Reconstruction*,
 * independence of the chunk size, reproducibility (also split batches), and bad input. */
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

static bsvi_svi *make_svi(size_t d, double eta)
{
    bsvi_svi *svi = NULL;
    TU_OK(bsvi_svi_create(d, &svi));
    TU_OK(bsvi_svi_set_step_size(svi, eta));
    return svi;
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
    bsvi_evaluator *ev = make_ev(s.d, 1);
    bsvi_svi *svi = make_svi(s.d, 0.05);
    TU_OK(bsvi_svi_set_grad_form(svi, BSVI_GRAD_STL));
    double iw[4], bs[4], el[4], kl[4], rec[4], klq[4];
    TU_OK(bsvi_evaluator_iwae(ev, s.model, s.q, 50, iw));
    bsvi_proposal *fq = NULL;
    TU_OK(bsvi_proposal_create(s.B, s.d, &fq));
    TU_OK(bsvi_evaluator_bsvi(ev, s.model, s.q, svi, 20, bs, fq));
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
    bsvi_svi_destroy(svi);
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
    bsvi_evaluator *ev = make_ev(s.d, 3);
    bsvi_svi *svi = make_svi(s.d, 0.05);
    double *bs = tu_alloc(B), *el = tu_alloc(B), *kl = tu_alloc(B), *rec = tu_alloc(B),
           *klq = tu_alloc(B), *exact_fq = tu_alloc(B);
    bsvi_proposal *fq = NULL;
    TU_OK(bsvi_proposal_create(B, s.d, &fq));
    TU_OK(bsvi_evaluator_bsvi(ev, s.model, s.q, svi, K, bs, fq));
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
    TU_OK(bsvi_evaluator_bsvi(ev, s.model, s.q, svi, K, bs, NULL));
    free(diff);
    free(bs);
    free(el);
    free(kl);
    free(rec);
    free(klq);
    free(exact_fq);
    bsvi_proposal_destroy(fq);
    bsvi_svi_destroy(svi);
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
    bsvi_svi *svi = make_svi(s.d, 0.05);
    TU_OK(bsvi_svi_set_samples_per_step(svi, 2));
    for (size_t c = 0; c < 3; ++c) {
        bsvi_evaluator *ev = make_ev(s.d, 5);
        TU_OK(bsvi_evaluator_set_chunk_rows(ev, chunks[c]));
        s.lg.max_rows = 0;
        TU_OK(bsvi_evaluator_iwae(ev, s.model, s.q, 30, iw[c]));
        bsvi_proposal *fq = NULL;
        TU_OK(bsvi_proposal_create(s.B, s.d, &fq));
        TU_OK(bsvi_evaluator_bsvi(ev, s.model, s.q, svi, 12, bs[c], fq));
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
    bsvi_svi_destroy(svi);
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
    bsvi_svi *svi = make_svi(d, 0.05);
    TU_OK(bsvi_svi_set_step_rule(svi, BSVI_STEP_ADAM));
    TU_OK(bsvi_svi_set_double_sampling(svi, 1));

    double w_iw[5], w_bs[5], w_el[5], w_kl[5], w_rec[5], w_fm[15], w_fl[15];
    double h_iw[5], h_bs[5], h_el[5], h_kl[5], h_rec[5], h_fm[15], h_fl[15];
    double a_iw[5];
    bsvi_evaluator *ev = make_ev(d, 77), *ev2 = make_ev(d, 77);
    TU_OK(bsvi_evaluator_iwae(ev, s.model, s.q, 40, w_iw));
    TU_OK(bsvi_evaluator_bsvi(ev, s.model, s.q, svi, 8, w_bs, fq));
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
    TU_OK(bsvi_evaluator_bsvi(ev2, s.model, q1, svi, 8, h_bs, fq1));
    TU_OK(bsvi_evaluator_set_stream(ev2, 1, B1));
    TU_OK(bsvi_evaluator_bsvi(ev2, model2, q2, svi, 8, h_bs + B1, fq2));
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
    bsvi_svi_destroy(svi);
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
    bsvi_svi *svi = make_svi(2, 0.05), *svi3 = make_svi(3, 0.05);
    bsvi_evaluator *ev = make_ev(2, 1), *fresh = make_ev(2, 1);
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

    TU_STATUS(bsvi_evaluator_bsvi(ev, s.model, s.q, NULL, 5, o1, fq), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_evaluator_bsvi(ev, s.model, s.q, svi, 0, o1, fq), BSVI_ERR_ZERO_SIZE);
    TU_STATUS(bsvi_evaluator_bsvi(ev, s.model, s.q, svi, BSVI_MAX_STEPS + 2, o1, fq),
              BSVI_ERR_OUT_OF_RANGE);
    TU_MESSAGE(bsvi_evaluator_last_error(ev));
    TU_STATUS(bsvi_evaluator_bsvi(ev, s.model, s.q, svi3, 5, o1, fq), BSVI_ERR_SIZE_MISMATCH);
    TU_STATUS(bsvi_evaluator_bsvi(ev, s.model, s.q, svi, 5, o1, fq_wrong),
              BSVI_ERR_SIZE_MISMATCH);
    TU_MESSAGE(bsvi_evaluator_last_error(ev));
    TU_STATUS(bsvi_evaluator_bsvi(ev, s.model, s.q, svi, 5, o1, fq_dim), BSVI_ERR_SIZE_MISMATCH);
    TU_STATUS(bsvi_evaluator_bsvi(ev, s.model, s.q, svi, 5, NULL, fq), BSVI_ERR_NULL_ARGUMENT);

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
    bsvi_svi_destroy(svi);
    bsvi_svi_destroy(svi3);
    bsvi_proposal_destroy(q3);
    bsvi_proposal_destroy(fq);
    bsvi_proposal_destroy(fq_wrong);
    bsvi_proposal_destroy(fq_dim);
    bsvi_model_destroy(m3);
    bsvi_model_destroy(nolik);
    lg_free(&lg3);
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
