/* test_evaluate_diag.c: the importance-weight diagnostics of the evaluator's IWAE-S
 * (bsvi_evaluator_set_diagnostics, bsvi_evaluator_get_diagnostics; 0.2.1).
 * - streamed ESS and k-hat equal bsvi_diagnostics_compute() on the same B*S log weights,
 *   regenerated from the same stream (bsvi_proposal_sample with the evaluator's seed and
 *   counter, log q and the standard normal prior in the library's order of operations):
 *   1e-12 relative (k-hat is in fact bit for bit), for S = 5000 and chunks of 1, 5, 100, 213,
 *   214 (M+1 = 214) and more rows; the chunking changes nothing, bit for bit;
 *   the IWAE-S estimate is the same bits with diagnostics on and off;
 * - S < 21 (k-hat +INFINITY), S = 21 (the shortest tail), S = 1;
 * - zero weights: a data point of zero density (ESS 0, k-hat NaN; under BSVI_POINTS_FAIL the
 *   call fails and the last values stay), a tail holding zero weights (+INFINITY);
 * - the default (off), the states of the getter (none yet; diagnostics off for the last
 *   estimate; other estimates and failed ones leave the values), every status checked against
 *   the header's @return lists (tests/support/statusdoc.c), outputs untouched on error;
 * - re-entrancy: from a progress callback the setter is refused (BSVI_ERR_REENTRANT) and the
 *   getter reads the previous call's values. */
#include "testutil.h"
#include "lingauss.h"
#include "statusdoc.h"

#include <stdio.h>
#include <stdlib.h>

/* ---- a model with varied weight tails ------------------------------------------------ */

/* The likelihood: the linear-Gaussian one, with zero densities by `zero`:
 * 0: none; 1: data point 1 has zero density everywhere; 2: data point 2 is zero unless
 * z_0 > its proposal mean + 2.5 std (about 0.6 % of the samples: fewer than M nonzero). */
typedef struct zlik_data {
    lg_model *lg;
    int zero;
    const double *mean, *ls; /* the proposal's, for zero = 2 */
    size_t d;
} zlik_data;

static int zlik(size_t n, size_t dim, const double *z, const size_t *data_index,
                double *log_density, double *grad, void *user_data)
{
    zlik_data *u = user_data;
    int rc = lg_likelihood(n, dim, z, data_index, log_density, grad, u->lg);
    if (rc != 0) {
        return rc;
    }
    for (size_t r = 0; r < n; ++r) {
        const size_t b = data_index[r];
        if (u->zero == 1 && b == 1) {
            log_density[r] = -INFINITY;
        }
        if (u->zero == 2 && b == 2 &&
            !(z[r * dim] > u->mean[b * u->d] + 2.5 * exp(u->ls[b * u->d]))) {
            log_density[r] = -INFINITY;
        }
    }
    return 0;
}

typedef struct dsetup {
    lg_model lg;
    zlik_data zd;
    bsvi_model *model;
    bsvi_proposal *q;
    double *mean, *ls;
    size_t B, d;
} dsetup;

/* B data points of d = 3 latents with proposals of different quality: b % 5 = 0 wide and
 * shifted (light-tailed weights), 1 narrow (heavy tails), 2 shifted, 3 the exact posterior
 * (equal weights up to rounding), 4 narrow and shifted (heavy). */
static void ds_init(dsetup *s, size_t B, int zero, uint64_t seed)
{
    memset(s, 0, sizeof *s);
    s->B = B;
    s->d = 3;
    const size_t d = s->d;
    assert_int_equal(lg_init(&s->lg, d, 5, B, 0.8, 1, seed), 0);
    s->mean = tu_alloc(B * d);
    s->ls = tu_alloc(B * d);
    for (size_t b = 0; b < B; ++b) {
        lg_posterior_diag(&s->lg, b, &s->mean[b * d], &s->ls[b * d]);
        for (size_t j = 0; j < d; ++j) {
            double *m = &s->mean[b * d + j], *l = &s->ls[b * d + j];
            switch (b % 5) {
            case 0: *m += 0.5, *l += 0.7; break;
            case 1: *l -= 0.4; break;
            case 2: *m += 1.5; break;
            case 3: break;
            default: *m += 0.8, *l -= 0.3; break;
            }
        }
    }
    s->zd.lg = &s->lg;
    s->zd.zero = zero;
    s->zd.mean = s->mean;
    s->zd.ls = s->ls;
    s->zd.d = d;
    TU_OK(bsvi_model_create(d, &s->model));
    TU_OK(bsvi_model_set_likelihood(s->model, zlik, &s->zd));
    TU_OK(lg_make_proposal(B, d, s->mean, s->ls, &s->q));
}

static void ds_free(dsetup *s)
{
    bsvi_proposal_destroy(s->q);
    bsvi_model_destroy(s->model);
    free(s->mean);
    free(s->ls);
    lg_free(&s->lg);
}

/* The B*S log weights an IWAE-S call with (seed, counter, id offset 0) draws, data point
 * major: the same normals (the proposal's stream with the evaluator's seed and counter),
 * log q = -d/2 log 2 pi - sum_j (log_std_j + eps_j^2 / 2) and the standard normal prior
 * -d/2 log 2 pi - |z|^2 / 2 in the library's order, log w = (lik + prior) - log q. */
static void regen_log_weights(dsetup *s, uint64_t seed, uint64_t counter, size_t S, double *lw)
{
    const size_t B = s->B, d = s->d, n = B * S;
    double *z = tu_alloc(n * d), *eps = tu_alloc(n * d), *lik = tu_alloc(n);
    size_t *idx = tu_alloc_size(n);
    TU_OK(bsvi_proposal_set_seed(s->q, seed));
    TU_OK(bsvi_proposal_set_stream(s->q, counter, 0));
    TU_OK(bsvi_proposal_sample(s->q, S, z, eps));
    for (size_t r = 0; r < n; ++r) {
        idx[r] = r / S;
    }
    assert_int_equal(zlik(n, d, z, idx, lik, NULL, &s->zd), 0);
    const double half = 0.5 * (double)d * 1.8378770664093454835606594728112;
    const double c = -0.5 * (double)d * 1.8378770664093454835606594728112;
    for (size_t r = 0; r < n; ++r) {
        const double *zr = z + r * d, *er = eps + r * d, *sr = s->ls + (r / S) * d;
        double ss = 0.0, lq = -half;
        for (size_t j = 0; j < d; ++j) {
            ss += zr[j] * zr[j];
            lq -= sr[j] + 0.5 * er[j] * er[j];
        }
        const double prior = c - 0.5 * ss;
        lw[r] = lik[r] + prior - lq;
    }
    free(z);
    free(eps);
    free(lik);
    free(idx);
}

/* Relative difference, 0 for equal values (infinities too) and for two NaNs. */
static double rdiff(double a, double b)
{
    if (a == b || (isnan(a) && isnan(b))) {
        return 0.0;
    }
    return fabs(a - b) / fmax(fabs(b), 1e-300);
}

/* One IWAE-S with diagnostics at (seed, counter) against bsvi_diagnostics_compute() on the
 * regenerated weights; returns the largest relative differences of ESS and k-hat. */
static void check_against_compute(dsetup *s, bsvi_evaluator *ev, uint64_t seed, uint64_t counter,
                                  size_t S, double *out, double *ess, double *khat,
                                  double *max_ess, double *max_khat)
{
    const size_t B = s->B;
    TU_OK(bsvi_evaluator_set_stream(ev, counter, 0));
    TU_OK(bsvi_evaluator_iwae(ev, s->model, s->q, S, out));
    TU_OK(bsvi_evaluator_get_diagnostics(ev, B, ess, khat));
    double *lw = tu_alloc(B * S), *er = tu_alloc(B), *kr = tu_alloc(B);
    regen_log_weights(s, seed, counter, S, lw);
    bsvi_diagnostics *dg = NULL;
    TU_OK(bsvi_diagnostics_create(S, &dg));
    TU_OK(bsvi_diagnostics_compute(dg, B, S, lw, er, kr));
    /* the estimate itself is the log-sum-exp of these weights */
    for (size_t b = 0; b < B; ++b) {
        const double ref = bsvi_logsumexp(lw + b * S, S) - log((double)S);
        if (isinf(ref)) {
            assert_true(out[b] == ref);
        } else {
            TU_NEAR(out[b], ref, 1e-12 * (1.0 + fabs(ref)));
        }
        const double de = rdiff(ess[b], er[b]), dk = rdiff(khat[b], kr[b]);
        if (!(de <= 1e-12) || !(dk <= 1e-12)) {
            fail_msg("S = %zu, data point %zu: ESS %.17g vs %.17g, k-hat %.17g vs %.17g", S, b,
                     ess[b], er[b], khat[b], kr[b]);
        }
        *max_ess = fmax(*max_ess, de);
        *max_khat = fmax(*max_khat, dk);
    }
    bsvi_diagnostics_destroy(dg);
    free(lw);
    free(er);
    free(kr);
}

/* ---- agreement with bsvi_diagnostics_compute ---------------------------------------- */

static void test_streamed_equals_compute(void **state)
{
    (void)state;
    dsetup s;
    const size_t B = 5, S = 5000;
    ds_init(&s, B, 0, 21);
    assert_int_equal(bsvi_diagnostics_tail_length(S), 213);
    bsvi_evaluator *ev = NULL, *plain = NULL;
    TU_OK(bsvi_evaluator_create(s.d, &ev));
    TU_OK(bsvi_evaluator_create(s.d, &plain));
    TU_OK(bsvi_evaluator_set_seed(ev, 77));
    TU_OK(bsvi_evaluator_set_seed(plain, 77));
    TU_OK(bsvi_evaluator_set_diagnostics(ev, 1));
    double out[5], ess[5], khat[5], out0[5], ess0[5], khat0[5], outp[5];
    double max_ess = 0.0, max_khat = 0.0;
    /* chunks below, at and above M+1 = 214, and the default (10000 rows: two data points) */
    static const size_t chunks[] = {1, 5, 100, 213, 214, 215, 1000, 4999, 5000, 5001, 10000};
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; ++c) {
        TU_OK(bsvi_evaluator_set_chunk_rows(ev, chunks[c]));
        check_against_compute(&s, ev, 77, 3, S, out, ess, khat, &max_ess, &max_khat);
        if (c == 0) {
            memcpy(out0, out, sizeof out);
            memcpy(ess0, ess, sizeof ess);
            memcpy(khat0, khat, sizeof khat);
            /* the weights of the narrow proposals are heavy-tailed, the wide one's light */
            assert_true(khat[1] > 0.5 && khat[4] > 0.5);
            assert_true(khat[0] < 0.5);
            assert_true(ess[0] > ess[2] && ess[3] > 0.99 * (double)S);
            assert_true(khat[3] == INFINITY); /* the exact posterior: a flat tail */
            print_message("S = %zu: ESS %.1f %.1f %.1f %.1f %.1f, k-hat %.3f %.3f %.3f %.3f %.3f\n",
                          S, ess[0], ess[1], ess[2], ess[3], ess[4], khat[0], khat[1], khat[2],
                          khat[3], khat[4]);
        } else { /* the chunking changes nothing: the same weights in the same order */
            TU_BITWISE(out, out0, B);
            TU_BITWISE(ess, ess0, B);
            TU_BITWISE(khat, khat0, B);
        }
    }
    /* IWAE-S is the same bits without diagnostics */
    TU_OK(bsvi_evaluator_set_stream(plain, 3, 0));
    TU_OK(bsvi_evaluator_iwae(plain, s.model, s.q, S, outp));
    TU_BITWISE(outp, out0, B);
    bsvi_stats a, b;
    TU_OK(bsvi_evaluator_get_stats(plain, &a));
    TU_OK(bsvi_evaluator_reset_stats(ev));
    TU_OK(bsvi_evaluator_iwae(ev, s.model, s.q, S, out));
    TU_OK(bsvi_evaluator_get_stats(ev, &b));
    assert_true(a.calls == b.calls && a.data_points == b.data_points &&
                a.likelihood_rows == b.likelihood_rows);
    /* other sample counts, one after the other on the same handle (heaps resized) */
    static const size_t Ss[] = {300, 21, 20, 7, 1, 2000};
    for (size_t i = 0; i < sizeof Ss / sizeof Ss[0]; ++i) {
        TU_OK(bsvi_evaluator_set_chunk_rows(ev, 64));
        check_against_compute(&s, ev, 77, 10 + i, Ss[i], out, ess, khat, &max_ess, &max_khat);
        for (size_t bb = 0; bb < B; ++bb) {
            if (Ss[i] < 21) {
                assert_true(khat[bb] == INFINITY);
            } else if (bb % 5 != 3) { /* 3: equal weights up to rounding, flat or not */
                assert_true(isfinite(khat[bb]));
            }
            if (Ss[i] == 1) {
                assert_true(ess[bb] == 1.0);
            }
            assert_true(ess[bb] >= 1.0 - 1e-12 && ess[bb] <= (double)Ss[i] * (1.0 + 1e-12));
        }
    }
    print_message("streamed vs bsvi_diagnostics_compute: max relative difference ESS %.3g, "
                  "k-hat %.3g\n",
                  max_ess, max_khat);
    bsvi_evaluator_destroy(ev);
    bsvi_evaluator_destroy(plain);
    ds_free(&s);
}

/* ---- zero weights ---------------------------------------------------------------------- */

static void test_zero_weights(void **state)
{
    (void)state;
    const size_t B = 5, S = 5000;
    double out[5], ess[5], khat[5], ess2[5], khat2[5], max_ess = 0.0, max_khat = 0.0;
    /* data point 1 of zero density */
    dsetup s;
    ds_init(&s, B, 1, 23);
    bsvi_evaluator *ev = NULL;
    TU_OK(bsvi_evaluator_create(s.d, &ev));
    TU_OK(bsvi_evaluator_set_seed(ev, 5));
    TU_OK(bsvi_evaluator_set_diagnostics(ev, 1));
    TU_OK(bsvi_evaluator_set_chunk_rows(ev, 150));
    check_against_compute(&s, ev, 5, 0, S, out, ess, khat, &max_ess, &max_khat);
    assert_true(out[1] == -INFINITY && ess[1] == 0.0 && isnan(khat[1]));
    assert_int_equal(bsvi_evaluator_num_zero_points(ev), 1);
    for (size_t b = 0; b < B; ++b) {
        if (b != 1) {
            assert_true(isfinite(out[b]) && ess[b] >= 1.0 && !isnan(khat[b]));
        }
    }
    /* under BSVI_POINTS_FAIL the call fails and the last values stay */
    TU_OK(bsvi_evaluator_set_point_policy(ev, BSVI_POINTS_FAIL));
    tu_fill(out, B, TU_SENTINEL);
    DOC_STATUS("bsvi_evaluator_iwae", bsvi_evaluator_iwae(ev, s.model, s.q, S, out),
               BSVI_ERR_NUMERIC);
    TU_UNTOUCHED(out, B);
    DOC_STATUS("bsvi_evaluator_get_diagnostics",
               bsvi_evaluator_get_diagnostics(ev, B, ess2, khat2), BSVI_OK);
    TU_BITWISE(ess2, ess, B);
    TU_BITWISE(khat2, khat, B);
    bsvi_evaluator_destroy(ev);
    ds_free(&s);

    /* data point 2: about 30 nonzero weights of 5000, fewer than M = 213: the tail holds
     * zero weights, k-hat +INFINITY (loo refuses such input); ESS from the nonzero ones */
    ds_init(&s, B, 2, 29);
    TU_OK(bsvi_evaluator_create(s.d, &ev));
    TU_OK(bsvi_evaluator_set_seed(ev, 6));
    TU_OK(bsvi_evaluator_set_diagnostics(ev, 1));
    check_against_compute(&s, ev, 6, 0, S, out, ess, khat, &max_ess, &max_khat);
    assert_true(isfinite(out[2]) && khat[2] == INFINITY);
    assert_true(ess[2] >= 1.0 && ess[2] < 213.0);
    assert_int_equal(bsvi_evaluator_num_zero_points(ev), 0);
    print_message("zero weights: max relative difference ESS %.3g, k-hat %.3g\n", max_ess,
                  max_khat);
    bsvi_evaluator_destroy(ev);
    ds_free(&s);
}

/* ---- the default, the getter's states, the statuses ---------------------------------- */

static int cancel_cb(size_t done, size_t total, void *user_data)
{
    (void)done;
    (void)total;
    (void)user_data;
    return 1;
}

static void test_states_and_statuses(void **state)
{
    (void)state;
    const size_t B = 5;
    dsetup s, s3;
    ds_init(&s, B, 0, 31);
    ds_init(&s3, 3, 0, 37);
    bsvi_evaluator *ev = NULL;
    TU_OK(bsvi_evaluator_create(s.d, &ev));
    double out[5], ess[5], khat[5], e2[5], k2[5];

    /* off by default: no diagnostics, and IWAE-S runs as before */
    tu_fill(ess, B, TU_SENTINEL);
    tu_fill(khat, B, TU_SENTINEL);
    DOC_STATUS("bsvi_evaluator_get_diagnostics", bsvi_evaluator_get_diagnostics(ev, B, ess, khat),
               BSVI_ERR_BAD_STATE);
    TU_MESSAGE_MENTIONS(bsvi_evaluator_last_error(ev), "diagnostics");
    TU_OK(bsvi_evaluator_iwae(ev, s.model, s.q, 50, out));
    DOC_STATUS("bsvi_evaluator_get_diagnostics", bsvi_evaluator_get_diagnostics(ev, B, ess, khat),
               BSVI_ERR_BAD_STATE);
    TU_UNTOUCHED(ess, B);
    TU_UNTOUCHED(khat, B);
    DOC_STATUS("bsvi_evaluator_get_diagnostics",
               bsvi_evaluator_get_diagnostics(NULL, B, ess, khat), BSVI_ERR_NULL_ARGUMENT);

    /* the setter */
    DOC_STATUS("bsvi_evaluator_set_diagnostics", bsvi_evaluator_set_diagnostics(NULL, 1),
               BSVI_ERR_NULL_ARGUMENT);
    DOC_STATUS("bsvi_evaluator_set_diagnostics", bsvi_evaluator_set_diagnostics(ev, 2),
               BSVI_ERR_BAD_VALUE);
    TU_MESSAGE_MENTIONS(bsvi_evaluator_last_error(ev), "enabled");
    DOC_STATUS("bsvi_evaluator_set_diagnostics", bsvi_evaluator_set_diagnostics(ev, -1),
               BSVI_ERR_BAD_VALUE);
    DOC_STATUS("bsvi_evaluator_set_diagnostics", bsvi_evaluator_set_diagnostics(ev, 1), BSVI_OK);
    DOC_STATUS("bsvi_evaluator_get_diagnostics", bsvi_evaluator_get_diagnostics(ev, B, ess, khat),
               BSVI_ERR_BAD_STATE); /* turning it on computes nothing */

    /* on: values after a successful IWAE-S */
    TU_OK(bsvi_evaluator_iwae(ev, s.model, s.q, 50, out));
    DOC_STATUS("bsvi_evaluator_get_diagnostics", bsvi_evaluator_get_diagnostics(ev, B, ess, khat),
               BSVI_OK);
    for (size_t b = 0; b < B; ++b) {
        assert_true(ess[b] >= 1.0 && ess[b] <= 50.0 * (1.0 + 1e-12) && !isnan(khat[b]));
    }
    DOC_STATUS("bsvi_evaluator_get_diagnostics",
               bsvi_evaluator_get_diagnostics(ev, B, NULL, NULL), BSVI_OK);
    tu_fill(e2, B, TU_SENTINEL);
    tu_fill(k2, B, TU_SENTINEL);
    TU_OK(bsvi_evaluator_get_diagnostics(ev, B, NULL, k2));
    TU_BITWISE(k2, khat, B);
    TU_UNTOUCHED(e2, B);
    TU_OK(bsvi_evaluator_get_diagnostics(ev, B, e2, NULL));
    TU_BITWISE(e2, ess, B);
    tu_fill(e2, B, TU_SENTINEL);
    tu_fill(k2, B, TU_SENTINEL);
    DOC_STATUS("bsvi_evaluator_get_diagnostics", bsvi_evaluator_get_diagnostics(ev, 4, e2, k2),
               BSVI_ERR_SIZE_MISMATCH);
    TU_MESSAGE_MENTIONS(bsvi_evaluator_last_error(ev), "batch");
    TU_UNTOUCHED(e2, B);
    TU_UNTOUCHED(k2, B);

    /* failed estimates keep the values: a wrong shape, a cancel, a failing callback */
    bsvi_model *m4 = NULL;
    TU_OK(bsvi_model_create(4, &m4));
    TU_OK(bsvi_model_set_likelihood(m4, lg_prior_std_normal, NULL));
    TU_STATUS(bsvi_evaluator_iwae(ev, m4, s.q, 50, out), BSVI_ERR_SIZE_MISMATCH);
    TU_OK(bsvi_evaluator_set_progress(ev, cancel_cb, NULL));
    TU_STATUS(bsvi_evaluator_iwae(ev, s3.model, s3.q, 50, out), BSVI_ERR_CANCELLED);
    TU_OK(bsvi_evaluator_set_progress(ev, NULL, NULL));
    lg_faulty fz = {&s3.lg, 0, 0, 7, LG_FAULT_CODE};
    bsvi_model *mf = NULL;
    TU_OK(bsvi_model_create(s.d, &mf));
    TU_OK(bsvi_model_set_likelihood(mf, lg_faulty_likelihood, &fz));
    TU_STATUS(bsvi_evaluator_iwae(ev, mf, s3.q, 50, out), BSVI_ERR_CALLBACK_FAILED);
    TU_OK(bsvi_evaluator_get_diagnostics(ev, B, e2, k2));
    TU_BITWISE(e2, ess, B);
    TU_BITWISE(k2, khat, B);
    /* other estimates leave them */
    TU_OK(bsvi_evaluator_bsvi(ev, s3.model, s3.q, 3, out, NULL));
    TU_OK(bsvi_evaluator_elbo_star(ev, s3.model, s3.q, 10, out, NULL, NULL));
    TU_OK(bsvi_evaluator_get_diagnostics(ev, B, e2, k2));
    TU_BITWISE(e2, ess, B);
    TU_BITWISE(k2, khat, B);
    /* another batch size replaces them */
    TU_OK(bsvi_evaluator_iwae(ev, s3.model, s3.q, 30, out));
    TU_STATUS(bsvi_evaluator_get_diagnostics(ev, B, e2, k2), BSVI_ERR_SIZE_MISMATCH);
    TU_OK(bsvi_evaluator_get_diagnostics(ev, 3, e2, k2));
    /* a successful IWAE-S with diagnostics off leaves none */
    DOC_STATUS("bsvi_evaluator_set_diagnostics", bsvi_evaluator_set_diagnostics(ev, 0), BSVI_OK);
    TU_OK(bsvi_evaluator_get_diagnostics(ev, 3, e2, k2)); /* turning it off removes nothing */
    TU_OK(bsvi_evaluator_iwae(ev, s3.model, s3.q, 30, out));
    TU_STATUS(bsvi_evaluator_get_diagnostics(ev, 3, e2, k2), BSVI_ERR_BAD_STATE);

    bsvi_model_destroy(m4);
    bsvi_model_destroy(mf);
    bsvi_evaluator_destroy(ev);
    ds_free(&s);
    ds_free(&s3);
}

/* ---- re-entrancy ------------------------------------------------------------------------ */

typedef struct reenter {
    bsvi_evaluator *ev;
    size_t B;
    int calls;
    bsvi_status set_st, get_st;
    double ess[5], khat[5];
} reenter;

static int reenter_cb(size_t done, size_t total, void *user_data)
{
    (void)done;
    (void)total;
    reenter *r = user_data;
    if (r->calls++ == 0) {
        r->set_st = bsvi_evaluator_set_diagnostics(r->ev, 0);
        r->get_st = bsvi_evaluator_get_diagnostics(r->ev, r->B, r->ess, r->khat);
    }
    return 0;
}

static void test_reentrancy(void **state)
{
    (void)state;
    const size_t B = 5;
    dsetup s;
    ds_init(&s, B, 0, 41);
    bsvi_evaluator *ev = NULL;
    TU_OK(bsvi_evaluator_create(s.d, &ev));
    TU_OK(bsvi_evaluator_set_diagnostics(ev, 1));
    TU_OK(bsvi_evaluator_set_chunk_rows(ev, 100));
    reenter r = {ev, B, 0, BSVI_OK, BSVI_OK, {0}, {0}};
    TU_OK(bsvi_evaluator_set_progress(ev, reenter_cb, &r));
    double out[5], ess[5], khat[5];
    /* the first call: nothing to read yet from its callback */
    TU_OK(bsvi_evaluator_iwae(ev, s.model, s.q, 400, out));
    assert_int_equal(r.set_st, BSVI_ERR_REENTRANT);
    assert_int_equal(sd_documented("bsvi_evaluator_set_diagnostics", BSVI_ERR_REENTRANT), 1);
    assert_int_equal(r.get_st, BSVI_ERR_BAD_STATE);
    TU_OK(bsvi_evaluator_get_diagnostics(ev, B, ess, khat)); /* still on: computed */
    /* the second: its callback reads the first call's values */
    r.calls = 0;
    TU_OK(bsvi_evaluator_iwae(ev, s.model, s.q, 400, out));
    assert_int_equal(r.set_st, BSVI_ERR_REENTRANT);
    assert_int_equal(r.get_st, BSVI_OK);
    TU_BITWISE(r.ess, ess, B);
    TU_BITWISE(r.khat, khat, B);
    TU_OK(bsvi_evaluator_get_diagnostics(ev, B, ess, khat));
    assert_true(memcmp(ess, r.ess, sizeof ess) != 0); /* the second call's draws */
    bsvi_evaluator_destroy(ev);
    ds_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_streamed_equals_compute),
        cmocka_unit_test(test_zero_weights),
        cmocka_unit_test(test_states_and_statuses),
        cmocka_unit_test(test_reentrancy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
