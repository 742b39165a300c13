/* test_diagnostics.c: importance-weight diagnostics (include/bsvi/diagnostics.h).
 * - ESS exact cases: equal weights give n, one dominant weight 1, zero weights;
 * - k-hat on Pareto weights of known tail index xi (0.2, 0.5, 0.8, 1.0; S = 20000, mean over
 *   64 seeds within 0.04 of xi);
 * - invariance to a constant added to the log weights; the short-tail and zero-weight
 *   conventions; tail lengths;
 * - agreement with R's loo (loo::psis(log_w, r_eff = 1)$diagnostics$pareto_k) on the fixed
 *   sets of tests/fixtures/psis (made by scripts/make-psis-fixtures.R): 1e-6 relative;
 * - the trajectory and estimator conveniences against bsvi_diagnostics_compute() on the same
 *   log weights;
 * - bad input: every status, checked against the header's @return lists (read by
 *   tests/support/statusdoc.c),
 *   outputs untouched on error. */
#include "testutil.h"
#include "statusdoc.h"

#include <stdio.h>
#include <stdlib.h>

/* ---- the header's status lists ------------------------------------------------------ */

/* The repository root from this file's path (as tests/support/statusdoc.c finds it). */
static const char *repo_root(void)
{
    static char root[4096];
    if (root[0] == '\0') {
        snprintf(root, sizeof root, "%s", __FILE__);
        char *cut = strstr(root, "tests/test_diagnostics.c");
        if (cut == NULL) {
            fail_msg("cannot find the repository root from %s", __FILE__);
        }
        *cut = '\0';
    }
    return root;
}

/* ---- helpers ------------------------------------------------------------------------- */

static double rel_err(double a, double b)
{
    if (a == b) {
        return 0.0; /* also equal infinities */
    }
    return fabs(a - b) / fmax(fabs(b), 1e-3);
}

/* log weights of Pareto weights with tail index xi: w = U^-xi, P(w > t) = t^(-1/xi). */
static void pareto_log_weights(tu_rng *r, double xi, size_t n, double *lw)
{
    for (size_t i = 0; i < n; ++i) {
        lw[i] = -xi * log(tu_rng_uniform(r));
    }
}

static void normal_log_weights(tu_rng *r, double sd, size_t n, double *lw)
{
    for (size_t i = 0; i < n; ++i) {
        lw[i] = sd * tu_rng_normal(r);
    }
}

/* ---- ESS ------------------------------------------------------------------------------ */

static void test_ess_exact(void **state)
{
    (void)state;
    bsvi_diagnostics *d = NULL;
    TU_OK(bsvi_diagnostics_create(4096, &d));
    assert_int_equal(bsvi_diagnostics_capacity(d), 4096);
    assert_string_equal(bsvi_diagnostics_last_error(d), "");
    double *lw = tu_alloc(4096);
    const size_t ns[] = {1, 2, 3, 7, 20, 21, 100, 1000, 4096};
    const double offs[] = {0.0, -745.0, 800.0, -1e5, 3.25};
    for (size_t a = 0; a < sizeof ns / sizeof ns[0]; ++a) {
        for (size_t o = 0; o < sizeof offs / sizeof offs[0]; ++o) {
            const size_t n = ns[a];
            /* equal weights: ESS = n exactly */
            tu_fill(lw, n, offs[o]);
            double ess = 0.0, khat = 0.0;
            TU_OK(bsvi_diagnostics_compute(d, 1, n, lw, &ess, &khat));
            assert_true(ess == (double)n);
            /* equal weights: the tail is all equal (k-hat +INFINITY) or too short */
            assert_true(khat == INFINITY);
            if (n < 2) {
                continue;
            }
            /* one dominant weight: ESS 1 (the others 1e-300 of it: exactly 1 in double) */
            tu_fill(lw, n, offs[o] - 700.0);
            lw[n / 2] = offs[o];
            TU_OK(bsvi_diagnostics_compute(d, 1, n, lw, &ess, NULL));
            TU_NEAR(ess, 1.0, 1e-12);
            /* the others zero: exactly 1 */
            tu_fill(lw, n, -INFINITY);
            lw[n - 1] = offs[o];
            TU_OK(bsvi_diagnostics_compute(d, 1, n, lw, &ess, &khat));
            assert_true(ess == 1.0);
            assert_true(khat == INFINITY); /* too short, or zero weights in the tail */
            /* two equal nonzero weights, the rest zero: 2 */
            lw[0] = offs[o];
            TU_OK(bsvi_diagnostics_compute(d, 1, n, lw, &ess, NULL));
            assert_true(ess == 2.0);
        }
    }
    /* weights 1, 2, 3: (6)^2 / 14 */
    const double l3[3] = {0.0, log(2.0), log(3.0)};
    double ess = 0.0;
    TU_OK(bsvi_diagnostics_compute(d, 1, 3, l3, &ess, NULL));
    TU_NEAR(ess, 36.0 / 14.0, 1e-14);
    /* all zero: ESS 0, k-hat NaN, in a batch with ordinary points */
    double lwb[3 * 50];
    tu_rng r;
    tu_rng_init(&r, 7);
    normal_log_weights(&r, 1.0, 150, lwb);
    tu_fill(lwb + 50, 50, -INFINITY);
    double essb[3], khb[3];
    TU_OK(bsvi_diagnostics_compute(d, 3, 50, lwb, essb, khb));
    assert_true(essb[1] == 0.0 && isnan(khb[1]));
    assert_true(essb[0] > 1.0 && essb[0] < 50.0 && isfinite(khb[0]));
    assert_true(essb[2] > 1.0 && essb[2] < 50.0 && isfinite(khb[2]));
    /* the batch gives each point's single-point values, bitwise */
    for (size_t b = 0; b < 3; ++b) {
        double e1, k1;
        TU_OK(bsvi_diagnostics_compute(d, 1, 50, lwb + 50 * b, &e1, &k1));
        assert_memory_equal(&e1, &essb[b], sizeof e1);
        assert_memory_equal(&k1, &khb[b], sizeof k1);
    }
    free(lw);
    bsvi_diagnostics_destroy(d);
    bsvi_diagnostics_destroy(NULL);
}

/* ---- k-hat ------------------------------------------------------------------------------- */

static void test_tail_length(void **state)
{
    (void)state;
    /* ceil(min(0.2 n, 3 sqrt(n))) */
    const size_t n[] = {0, 1, 4, 5, 6, 20, 21, 25, 26, 100, 225, 226, 1000, 5000, 20000};
    const size_t m[] = {0, 1, 1, 1, 2, 4, 5, 5, 6, 20, 45, 46, 95, 213, 425};
    for (size_t i = 0; i < sizeof n / sizeof n[0]; ++i) {
        assert_int_equal(bsvi_diagnostics_tail_length(n[i]), m[i]);
    }
    /* k-hat from n = 21 on, +INFINITY below */
    bsvi_diagnostics *d = NULL;
    TU_OK(bsvi_diagnostics_create(21, &d));
    double lw[21], kh = 0.0;
    tu_rng r;
    tu_rng_init(&r, 11);
    normal_log_weights(&r, 1.0, 21, lw);
    TU_OK(bsvi_diagnostics_compute(d, 1, 20, lw, NULL, &kh));
    assert_true(kh == INFINITY);
    TU_OK(bsvi_diagnostics_compute(d, 1, 21, lw, NULL, &kh));
    assert_true(isfinite(kh));
    bsvi_diagnostics_destroy(d);
}

static void test_khat_known_tail_index(void **state)
{
    (void)state;
    enum { S = 20000, SEEDS = 64 };
    const double xis[] = {0.2, 0.5, 0.8, 1.0};
    const double tol = 0.04;
    bsvi_diagnostics *d = NULL;
    TU_OK(bsvi_diagnostics_create(S, &d));
    double *lw = tu_alloc((size_t)S * SEEDS);
    double kh[SEEDS], ess[SEEDS];
    for (size_t x = 0; x < sizeof xis / sizeof xis[0]; ++x) {
        tu_rng r;
        tu_rng_init(&r, 1000 + x);
        pareto_log_weights(&r, xis[x], (size_t)S * SEEDS, lw);
        TU_OK(bsvi_diagnostics_compute(d, SEEDS, S, lw, ess, kh));
        double mean, se;
        tu_mean_se(kh, SEEDS, &mean, &se);
        print_message("k-hat, Pareto xi = %.1f, S = %d (tail %zu): mean %.4f over %d seeds "
                      "(se %.4f, bias %+.4f); ESS of seed 0 %.1f\n",
                      xis[x], S, bsvi_diagnostics_tail_length(S), mean, SEEDS, se,
                      mean - xis[x], ess[0]);
        TU_NEAR(mean, xis[x], tol);
    }
    free(lw);
    bsvi_diagnostics_destroy(d);
}

static void test_shift_invariance(void **state)
{
    (void)state;
    enum { N = 2000 };
    bsvi_diagnostics *d = NULL;
    TU_OK(bsvi_diagnostics_create(N, &d));
    double *lw = tu_alloc(N), *sh = tu_alloc(N);
    const double c[] = {-1e4, -745.5, -1.0, 0.5, 700.0, 1e4};
    tu_rng r;
    tu_rng_init(&r, 3);
    for (int rep = 0; rep < 4; ++rep) {
        if (rep % 2 == 0) {
            normal_log_weights(&r, 0.5 + (double)rep, N, lw);
        } else {
            pareto_log_weights(&r, 0.3 * (double)rep, N, lw);
        }
        double e0, k0;
        TU_OK(bsvi_diagnostics_compute(d, 1, N, lw, &e0, &k0));
        assert_true(isfinite(k0));
        for (size_t j = 0; j < sizeof c / sizeof c[0]; ++j) {
            for (size_t i = 0; i < N; ++i) {
                sh[i] = lw[i] + c[j];
            }
            double e1, k1;
            TU_OK(bsvi_diagnostics_compute(d, 1, N, sh, &e1, &k1));
            /* the shifted log weights are rounded (|c| 1e4: about 1e-12 absolute) */
            TU_NEAR(e1, e0, 1e-9 * e0);
            TU_NEAR(k1, k0, 1e-8 * fmax(1.0, fabs(k0)));
        }
    }
    free(lw);
    free(sh);
    bsvi_diagnostics_destroy(d);
}

static void test_zero_weights(void **state)
{
    (void)state;
    enum { N = 500 };
    bsvi_diagnostics *d = NULL;
    TU_OK(bsvi_diagnostics_create(N, &d));
    double *lw = tu_alloc(N), *fin = tu_alloc(N);
    tu_rng r;
    tu_rng_init(&r, 5);
    normal_log_weights(&r, 1.5, N, lw);
    /* every 3rd weight zero: far below the tail (M = 68 of 500), so k-hat is that of the same
     * weights with the zeros replaced by any value below the threshold, and the ESS that of
     * the nonzero weights */
    double lo = INFINITY;
    for (size_t i = 0; i < N; ++i) {
        lo = fmin(lo, lw[i]);
    }
    size_t zeros = 0;
    for (size_t i = 0; i < N; ++i) {
        fin[i] = lw[i];
        if (i % 3 == 0) {
            lw[i] = -INFINITY;
            fin[i] = lo - 800.0;
            ++zeros;
        }
    }
    double ez, kz, ef, kf;
    TU_OK(bsvi_diagnostics_compute(d, 1, N, lw, &ez, &kz));
    TU_OK(bsvi_diagnostics_compute(d, 1, N, fin, &ef, &kf));
    assert_true(isfinite(kz));
    assert_memory_equal(&kz, &kf, sizeof kz);
    assert_true(ez == ef);
    /* more zero weights than n - M: a zero weight in the tail, k-hat +INFINITY */
    tu_fill(lw, N, -INFINITY);
    for (size_t i = 0; i < 67; ++i) {
        lw[i * 7] = (double)i * 0.01;
    }
    TU_OK(bsvi_diagnostics_compute(d, 1, N, lw, &ez, &kz));
    assert_true(kz == INFINITY && ez > 60.0 && ez < 67.0);
    /* exactly M nonzero: the threshold is a zero weight, the tail is fitted */
    lw[67 * 7] = 0.67;
    TU_OK(bsvi_diagnostics_compute(d, 1, N, lw, &ez, &kz));
    assert_true(isfinite(kz));
    free(lw);
    free(fin);
    bsvi_diagnostics_destroy(d);
}

/* ---- agreement with loo ------------------------------------------------------------------ */

typedef struct fixture_row {
    int set;
    char name[64];
    size_t S, tail_len;
    double khat, ess;
} fixture_row;

static void test_loo_fixtures(void **state)
{
    (void)state;
    char path[4200];
    snprintf(path, sizeof path, "%stests/fixtures/psis/expected.csv", repo_root());
    FILE *fe = fopen(path, "r");
    if (fe == NULL) {
        fail_msg("cannot open %s (made by scripts/make-psis-fixtures.R)", path);
    }
    snprintf(path, sizeof path, "%stests/fixtures/psis/log_weights.csv", repo_root());
    FILE *fw = fopen(path, "r");
    if (fw == NULL) {
        fclose(fe);
        fail_msg("cannot open %s", path);
    }
    char line[512];
    assert_non_null(fgets(line, sizeof line, fe)); /* header */
    assert_non_null(fgets(line, sizeof line, fw));
    fixture_row rows[64];
    size_t nrows = 0, maxS = 0;
    while (nrows < 64 && fgets(line, sizeof line, fe) != NULL) {
        fixture_row *f = &rows[nrows];
        char kbuf[64], ebuf[64], nbuf[64];
        if (sscanf(line, "%d,%63[^,],%zu,%zu,%63[^,],%63[^,],%63s", &f->set, f->name, &f->S,
                   &f->tail_len, kbuf, ebuf, nbuf) != 7) {
            fail_msg("bad line in expected.csv: %s", line);
        }
        f->khat = strtod(kbuf, NULL); /* "Inf" parses as +INFINITY */
        f->ess = strtod(ebuf, NULL);
        maxS = f->S > maxS ? f->S : maxS;
        ++nrows;
    }
    fclose(fe);
    assert_true(nrows >= 20);
    bsvi_diagnostics *d = NULL;
    TU_OK(bsvi_diagnostics_create(maxS, &d));
    double *lw = tu_alloc(maxS);
    double worst_k = 0.0, worst_e = 0.0;
    size_t n_inf = 0, n_fin = 0;
    for (size_t i = 0; i < nrows; ++i) {
        const fixture_row *f = &rows[i];
        for (size_t j = 0; j < f->S; ++j) {
            int set = 0;
            if (fgets(line, sizeof line, fw) == NULL || sscanf(line, "%d,", &set) != 1 ||
                set != f->set) {
                fail_msg("log_weights.csv: set %d is short or out of order", f->set);
            }
            lw[j] = strtod(strchr(line, ',') + 1, NULL);
        }
        assert_int_equal(bsvi_diagnostics_tail_length(f->S), f->tail_len);
        double ess = 0.0, kh = 0.0;
        TU_OK(bsvi_diagnostics_compute(d, 1, f->S, lw, &ess, &kh));
        const double ek = rel_err(kh, f->khat), ee = rel_err(ess, f->ess);
        print_message("loo %-18s S = %4zu: k-hat %+.12f (loo %+.12f, rel %.1e)  ESS %.6f "
                      "(rel %.1e)\n",
                      f->name, f->S, kh, f->khat, ek, ess, ee);
        if (isinf(f->khat)) {
            assert_true(kh == f->khat);
            ++n_inf;
        } else {
            if (!(ek <= 1e-6)) {
                fail_msg("set %s: k-hat %.17g, loo %.17g", f->name, kh, f->khat);
            }
            worst_k = fmax(worst_k, ek);
            ++n_fin;
        }
        if (!(ee <= 1e-9)) {
            fail_msg("set %s: ESS %.17g, R %.17g", f->name, ess, f->ess);
        }
        worst_e = fmax(worst_e, ee);
    }
    fclose(fw);
    print_message("loo 2.5.1: %zu sets with finite k-hat (largest relative difference %.2e), "
                  "%zu with Inf (all matched); ESS largest relative difference %.2e\n",
                  n_fin, worst_k, n_inf, worst_e);
    free(lw);
    bsvi_diagnostics_destroy(d);
}

/* ---- trajectories and estimators --------------------------------------------------------- */

/* log N(0.5 | z, I) with its gradient; data point 1 has zero density when user_data is set. */
static int lik(size_t n, size_t dim, const double *z, const size_t *data_index,
               double *log_density, double *grad, void *user_data)
{
    tu_half_gauss(n, dim, z, log_density, grad, 1.0);
    for (size_t r = 0; r < n; ++r) {
        if (user_data != NULL && data_index[r] == 1) {
            log_density[r] = -INFINITY;
            if (grad != NULL) {
                memset(grad + r * dim, 0, dim * sizeof *grad);
            }
        }
    }
    return 0;
}

static bsvi_proposal *make_q(size_t B, size_t dim)
{
    bsvi_proposal *q = NULL;
    TU_OK(bsvi_proposal_create(B, dim, &q));
    double *mean = tu_alloc(B * dim), *ls = tu_alloc(B * dim);
    for (size_t i = 0; i < B * dim; ++i) {
        mean[i] = -1.0 + 0.3 * (double)i;
        ls[i] = -0.7;
    }
    TU_OK(bsvi_proposal_set_params(q, mean, ls));
    free(mean);
    free(ls);
    return q;
}

static void test_trajectory(void **state)
{
    (void)state;
    const size_t B = 3, dim = 2, k = 40, K = k + 1;
    bsvi_model *m = NULL;
    TU_OK(bsvi_model_create(dim, &m));
    TU_OK(bsvi_model_set_likelihood(m, lik, NULL));
    bsvi_proposal *q = make_q(B, dim);
    bsvi_svi *svi = NULL;
    TU_OK(bsvi_svi_create(dim, &svi));
    TU_OK(bsvi_svi_set_steps(svi, k));
    TU_OK(bsvi_svi_set_step_size(svi, 0.02));
    bsvi_trajectory *t = NULL;
    TU_OK(bsvi_trajectory_create(&t));
    bsvi_diagnostics *d = NULL;
    TU_OK(bsvi_diagnostics_create(K, &d));
    double ess[3], kh[3];
    tu_fill(ess, 3, TU_SENTINEL);
    tu_fill(kh, 3, TU_SENTINEL);
    DOC_STATUS("bsvi_diagnostics_trajectory", bsvi_diagnostics_trajectory(d, t, NULL, ess, kh),
               BSVI_ERR_BAD_STATE);
    TU_MESSAGE_MENTIONS(bsvi_diagnostics_last_error(d), "empty");
    TU_OK(bsvi_svi_run(svi, m, q, t));
    double *lw = tu_alloc(B * K);
    TU_OK(bsvi_trajectory_get_log_weights(t, lw));

    /* uniform pi: the buffer's log weights as they are, bitwise */
    double e0[3], k0[3];
    DOC_STATUS("bsvi_diagnostics_trajectory", bsvi_diagnostics_trajectory(d, t, NULL, ess, kh),
               BSVI_OK);
    TU_OK(bsvi_diagnostics_compute(d, B, K, lw, e0, k0));
    TU_BITWISE(ess, e0, 3);
    TU_BITWISE(kh, k0, 3);
    for (size_t b = 0; b < B; ++b) {
        print_message("trajectory (k = %zu) point %zu: ESS %.3f of %zu, k-hat %.3f\n", k, b,
                      ess[b], K, kh[b]);
        assert_true(ess[b] >= 1.0 && ess[b] <= (double)K && isfinite(kh[b]));
    }

    /* pi: the weights pi_i w_i */
    bsvi_buffer_weights *pi = NULL;
    TU_OK(bsvi_buffer_weights_create(K, &pi));
    double *p = tu_alloc(K), *lpw = tu_alloc(B * K);
    double sum = 0.0;
    for (size_t i = 0; i < K; ++i) {
        p[i] = i == 3 ? 0.0 : 1.0 + (double)i;
        sum += p[i];
    }
    for (size_t i = 0; i < K; ++i) {
        p[i] /= sum;
    }
    TU_OK(bsvi_buffer_weights_set_probs(pi, p, K));
    TU_OK(bsvi_buffer_weights_get_probs(pi, p, K));
    for (size_t b = 0; b < B; ++b) {
        for (size_t i = 0; i < K; ++i) {
            lpw[b * K + i] = (p[i] > 0.0 ? log(p[i]) : -INFINITY) + lw[b * K + i];
        }
    }
    DOC_STATUS("bsvi_diagnostics_trajectory", bsvi_diagnostics_trajectory(d, t, pi, ess, kh),
               BSVI_OK);
    TU_OK(bsvi_diagnostics_compute(d, B, K, lpw, e0, k0));
    for (size_t b = 0; b < B; ++b) {
        TU_NEAR(ess[b], e0[b], 1e-12 * e0[b]);
        TU_NEAR(kh[b], k0[b], 1e-9);
    }
    /* outputs may be NULL */
    TU_OK(bsvi_diagnostics_trajectory(d, t, pi, NULL, NULL));

    /* bad input */
    tu_fill(ess, 3, TU_SENTINEL);
    tu_fill(kh, 3, TU_SENTINEL);
    DOC_STATUS("bsvi_diagnostics_trajectory", bsvi_diagnostics_trajectory(NULL, t, NULL, ess, kh),
               BSVI_ERR_NULL_ARGUMENT);
    DOC_STATUS("bsvi_diagnostics_trajectory", bsvi_diagnostics_trajectory(d, NULL, NULL, ess, kh),
               BSVI_ERR_NULL_ARGUMENT);
    bsvi_buffer_weights *pi_small = NULL;
    TU_OK(bsvi_buffer_weights_create(K - 1, &pi_small));
    DOC_STATUS("bsvi_diagnostics_trajectory",
               bsvi_diagnostics_trajectory(d, t, pi_small, ess, kh), BSVI_ERR_SIZE_MISMATCH);
    TU_MESSAGE_MENTIONS(bsvi_diagnostics_last_error(d), "pi");
    bsvi_diagnostics *small = NULL;
    TU_OK(bsvi_diagnostics_create(K - 1, &small));
    DOC_STATUS("bsvi_diagnostics_trajectory", bsvi_diagnostics_trajectory(small, t, NULL, ess, kh),
               BSVI_ERR_SIZE_MISMATCH);
    TU_MESSAGE_MENTIONS(bsvi_diagnostics_last_error(small), "capacity");
    TU_UNTOUCHED(ess, 3);
    TU_UNTOUCHED(kh, 3);
    /* NO_MEMORY is listed for the log-pi workspace; it cannot be provoked here */
    assert_int_equal(sd_documented("bsvi_diagnostics_trajectory", BSVI_ERR_NO_MEMORY), 1);

    bsvi_diagnostics_destroy(small);
    bsvi_buffer_weights_destroy(pi_small);
    bsvi_buffer_weights_destroy(pi);
    free(p);
    free(lpw);
    free(lw);
    bsvi_diagnostics_destroy(d);
    bsvi_trajectory_destroy(t);
    bsvi_svi_destroy(svi);
    bsvi_proposal_destroy(q);
    bsvi_model_destroy(m);
}

static void test_estimator(void **state)
{
    (void)state;
    const size_t B = 4, dim = 2, K = 256;
    int zero = 1;
    bsvi_model *m = NULL, *mz = NULL;
    TU_OK(bsvi_model_create(dim, &m));
    TU_OK(bsvi_model_set_likelihood(m, lik, NULL));
    TU_OK(bsvi_model_create(dim, &mz));
    TU_OK(bsvi_model_set_likelihood(mz, lik, &zero));
    bsvi_proposal *q = make_q(B, dim);
    bsvi_estimator *est = NULL;
    TU_OK(bsvi_estimator_create(dim, &est));
    bsvi_diagnostics *d = NULL;
    TU_OK(bsvi_diagnostics_create(K, &d));
    double ess[4], kh[4], e0[4], k0[4];
    tu_fill(ess, 4, TU_SENTINEL);
    tu_fill(kh, 4, TU_SENTINEL);

    /* no result yet */
    DOC_STATUS("bsvi_diagnostics_estimator", bsvi_diagnostics_estimator(d, est, B, ess, kh),
               BSVI_ERR_BAD_STATE);
    TU_MESSAGE_MENTIONS(bsvi_diagnostics_last_error(d), "no result");
    DOC_STATUS("bsvi_diagnostics_estimator", bsvi_diagnostics_estimator(NULL, est, B, ess, kh),
               BSVI_ERR_NULL_ARGUMENT);
    DOC_STATUS("bsvi_diagnostics_estimator", bsvi_diagnostics_estimator(d, NULL, B, ess, kh),
               BSVI_ERR_NULL_ARGUMENT);

    /* IWAE-K: the targets' log weights, bitwise */
    TU_OK(bsvi_estimator_iwae(est, m, q, K, BSVI_GRAD_PATHWISE));
    double *lw = tu_alloc(B * K);
    TU_OK(bsvi_estimator_get_target_log_weights(est, B * K, lw));
    DOC_STATUS("bsvi_diagnostics_estimator", bsvi_diagnostics_estimator(d, est, B, ess, kh),
               BSVI_OK);
    TU_OK(bsvi_diagnostics_compute(d, B, K, lw, e0, k0));
    TU_BITWISE(ess, e0, 4);
    TU_BITWISE(kh, k0, 4);
    for (size_t b = 0; b < B; ++b) {
        print_message("IWAE-%zu point %zu: ESS %.2f, k-hat %.3f\n", K, b, ess[b], kh[b]);
        assert_true(ess[b] >= 1.0 && ess[b] <= (double)K && isfinite(kh[b]));
    }
    /* batch mismatch, capacity */
    tu_fill(ess, 4, TU_SENTINEL);
    tu_fill(kh, 4, TU_SENTINEL);
    DOC_STATUS("bsvi_diagnostics_estimator", bsvi_diagnostics_estimator(d, est, B - 1, ess, kh),
               BSVI_ERR_SIZE_MISMATCH);
    bsvi_diagnostics *small = NULL;
    TU_OK(bsvi_diagnostics_create(K - 1, &small));
    DOC_STATUS("bsvi_diagnostics_estimator", bsvi_diagnostics_estimator(small, est, B, ess, kh),
               BSVI_ERR_SIZE_MISMATCH);
    TU_UNTOUCHED(ess, 4);
    TU_UNTOUCHED(kh, 4);
    assert_int_equal(sd_documented("bsvi_diagnostics_estimator", BSVI_ERR_NO_MEMORY), 1);

    /* a zero-density point: ESS 0, k-hat NaN; the others as usual */
    TU_OK(bsvi_estimator_iwae(est, mz, q, K, BSVI_GRAD_DREG));
    TU_OK(bsvi_diagnostics_estimator(d, est, B, ess, kh));
    assert_true(ess[1] == 0.0 && isnan(kh[1]));
    assert_true(ess[0] >= 1.0 && isfinite(kh[0]));

    /* ELBO: one sample per point */
    TU_OK(bsvi_estimator_elbo(est, m, q, BSVI_GRAD_PATHWISE));
    TU_OK(bsvi_diagnostics_estimator(d, est, B, ess, kh));
    for (size_t b = 0; b < B; ++b) {
        assert_true(ess[b] == 1.0 && kh[b] == INFINITY);
    }

    /* BSVI over a trajectory with pi: the coefficients' weights, as the trajectory call */
    const size_t k = 30, S = k + 1;
    bsvi_svi *svi = NULL;
    TU_OK(bsvi_svi_create(dim, &svi));
    TU_OK(bsvi_svi_set_steps(svi, k));
    TU_OK(bsvi_svi_set_step_size(svi, 0.02));
    bsvi_trajectory *t = NULL;
    TU_OK(bsvi_trajectory_create(&t));
    TU_OK(bsvi_svi_run(svi, m, q, t));
    bsvi_buffer_weights *pi = NULL;
    TU_OK(bsvi_buffer_weights_create(S, &pi));
    double *p = tu_alloc(S), *lg = tu_alloc(S);
    for (size_t i = 0; i < S; ++i) {
        lg[i] = -0.05 * (double)i;
    }
    TU_OK(bsvi_buffer_weights_set_logits(pi, lg, S));
    TU_OK(bsvi_estimator_bsvi(est, t, pi));
    TU_OK(bsvi_diagnostics_estimator(d, est, B, ess, kh));
    TU_OK(bsvi_diagnostics_trajectory(d, t, pi, e0, k0));
    for (size_t b = 0; b < B; ++b) {
        TU_NEAR(ess[b], e0[b], 1e-12 * e0[b]);
        TU_NEAR(kh[b], k0[b], 1e-9);
    }
    /* GIWAE: as the host's terms log_joint - log_proposal + log pi */
    double *lj = tu_alloc(B * S), *lq = tu_alloc(B * S), *lt = tu_alloc(B * S);
    TU_OK(bsvi_trajectory_get_log_joint(t, lj));
    TU_OK(bsvi_trajectory_get_log_proposal(t, lq));
    TU_OK(bsvi_buffer_weights_get_probs(pi, p, S));
    for (size_t i = 0; i < B * S; ++i) {
        lt[i] = lj[i] - lq[i] + log(p[i % S]);
    }
    TU_OK(bsvi_estimator_giwae(est, B, S, lj, lq, pi));
    TU_OK(bsvi_diagnostics_estimator(d, est, B, ess, kh));
    TU_OK(bsvi_diagnostics_compute(d, B, S, lt, e0, k0));
    for (size_t b = 0; b < B; ++b) {
        TU_NEAR(ess[b], e0[b], 1e-12 * e0[b]);
        TU_NEAR(kh[b], k0[b], 1e-9);
    }
    /* SVI-k and BSVI-SIR: targets are not one per sample */
    tu_fill(ess, 4, TU_SENTINEL);
    tu_fill(kh, 4, TU_SENTINEL);
    TU_OK(bsvi_estimator_svi(est, t));
    DOC_STATUS("bsvi_diagnostics_estimator", bsvi_diagnostics_estimator(d, est, B, ess, kh),
               BSVI_ERR_BAD_STATE);
    TU_MESSAGE_MENTIONS(bsvi_diagnostics_last_error(d), "svi");
    TU_OK(bsvi_estimator_bsvi_sir(est, t, pi, 8));
    DOC_STATUS("bsvi_diagnostics_estimator", bsvi_diagnostics_estimator(d, est, B, ess, kh),
               BSVI_ERR_BAD_STATE);
    TU_MESSAGE_MENTIONS(bsvi_diagnostics_last_error(d), "bsvi-sir");
    TU_UNTOUCHED(ess, 4);
    TU_UNTOUCHED(kh, 4);

    free(lj);
    free(lq);
    free(lt);
    free(p);
    free(lg);
    free(lw);
    bsvi_buffer_weights_destroy(pi);
    bsvi_trajectory_destroy(t);
    bsvi_svi_destroy(svi);
    bsvi_diagnostics_destroy(small);
    bsvi_diagnostics_destroy(d);
    bsvi_estimator_destroy(est);
    bsvi_proposal_destroy(q);
    bsvi_model_destroy(m);
    bsvi_model_destroy(mz);
}

/* ---- bad input ------------------------------------------------------------------------------ */

static void test_bad_input(void **state)
{
    (void)state;
    static const char cr[] = "bsvi_diagnostics_create";
    static const char co[] = "bsvi_diagnostics_compute";
    bsvi_diagnostics *d = (bsvi_diagnostics *)&d; /* not NULL: must be set to NULL on failure */
    DOC_STATUS(cr, bsvi_diagnostics_create(10, NULL), BSVI_ERR_NULL_ARGUMENT);
    DOC_STATUS(cr, bsvi_diagnostics_create(0, &d), BSVI_ERR_ZERO_SIZE);
    assert_null(d);
#if SIZE_MAX > 0xffffffffu
    d = (bsvi_diagnostics *)&d;
    DOC_STATUS(cr, bsvi_diagnostics_create(((size_t)1 << 32) + 1, &d), BSVI_ERR_OUT_OF_RANGE);
    assert_null(d);
    /* the largest capacity is accepted (its scratch is about 3 sqrt(2^32) doubles) */
    DOC_STATUS(cr, bsvi_diagnostics_create((size_t)1 << 32, &d), BSVI_OK);
    assert_int_equal(bsvi_diagnostics_capacity(d), (size_t)1 << 32);
    bsvi_diagnostics_destroy(d);
#endif
    assert_int_equal(sd_documented(cr, BSVI_ERR_NO_MEMORY), 1);
    DOC_STATUS(cr, bsvi_diagnostics_create(100, &d), BSVI_OK);
    assert_int_equal(bsvi_diagnostics_capacity(NULL), 0);
    TU_MESSAGE(bsvi_diagnostics_last_error(NULL));

    double lw[200], ess[2], kh[2];
    tu_rng r;
    tu_rng_init(&r, 9);
    normal_log_weights(&r, 1.0, 200, lw);
    tu_fill(ess, 2, TU_SENTINEL);
    tu_fill(kh, 2, TU_SENTINEL);
    DOC_STATUS(co, bsvi_diagnostics_compute(NULL, 2, 100, lw, ess, kh), BSVI_ERR_NULL_ARGUMENT);
    DOC_STATUS(co, bsvi_diagnostics_compute(d, 2, 100, NULL, ess, kh), BSVI_ERR_NULL_ARGUMENT);
    TU_MESSAGE_MENTIONS(bsvi_diagnostics_last_error(d), "log_w");
    DOC_STATUS(co, bsvi_diagnostics_compute(d, 0, 100, lw, ess, kh), BSVI_ERR_ZERO_SIZE);
    DOC_STATUS(co, bsvi_diagnostics_compute(d, 2, 0, lw, ess, kh), BSVI_ERR_ZERO_SIZE);
    DOC_STATUS(co, bsvi_diagnostics_compute(d, BSVI_MAX_BATCH + 1, 1, lw, ess, kh),
               BSVI_ERR_OUT_OF_RANGE);
    DOC_STATUS(co, bsvi_diagnostics_compute(d, 1, 101, lw, ess, kh), BSVI_ERR_SIZE_MISMATCH);
    TU_MESSAGE_MENTIONS(bsvi_diagnostics_last_error(d), "capacity");
    const double bad[] = {NAN, INFINITY};
    for (size_t j = 0; j < 2; ++j) {
        const double keep = lw[150];
        lw[150] = bad[j];
        DOC_STATUS(co, bsvi_diagnostics_compute(d, 2, 100, lw, ess, kh), BSVI_ERR_BAD_VALUE);
        TU_MESSAGE_MENTIONS(bsvi_diagnostics_last_error(d), "log_w[150]");
        lw[150] = keep;
    }
    TU_UNTOUCHED(ess, 2);
    TU_UNTOUCHED(kh, 2);
    /* -INFINITY is legal; both outputs NULL only checks */
    lw[150] = -INFINITY;
    DOC_STATUS(co, bsvi_diagnostics_compute(d, 2, 100, lw, NULL, NULL), BSVI_OK);
    DOC_STATUS(co, bsvi_diagnostics_compute(d, 2, 100, lw, ess, NULL), BSVI_OK);
    assert_true(ess[0] >= 1.0 && ess[1] >= 1.0);
    TU_UNTOUCHED(kh, 2);
    bsvi_diagnostics_destroy(d);

    /* every bsvi_status function of the header lists BSVI_OK and BSVI_ERR_NULL_ARGUMENT */
    static const char *const fns[] = {"bsvi_diagnostics_create", "bsvi_diagnostics_compute",
                                      "bsvi_diagnostics_trajectory",
                                      "bsvi_diagnostics_estimator"};
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; ++i) {
        assert_int_equal(sd_documented(fns[i], BSVI_OK), 1);
        assert_int_equal(sd_documented(fns[i], BSVI_ERR_NULL_ARGUMENT), 1);
        /* the handle is never held: no BSVI_ERR_REENTRANT */
        assert_int_equal(sd_documented(fns[i], BSVI_ERR_REENTRANT), 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ess_exact),
        cmocka_unit_test(test_tail_length),
        cmocka_unit_test(test_khat_known_tail_index),
        cmocka_unit_test(test_shift_invariance),
        cmocka_unit_test(test_zero_weights),
        cmocka_unit_test(test_loo_fixtures),
        cmocka_unit_test(test_trajectory),
        cmocka_unit_test(test_estimator),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
