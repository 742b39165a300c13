/* test_stepsearch.c: bsvi_svi_search_step_size on the linear-Gaussian model: the trials'
 * gains against a direct recomputation with the same random stream, the choice rule (safe,
 * below the first diverging step by the margin, positive gain), grid and log searches, the
 * caller's handle left unchanged, reproducibility, and every error status. */
#include "testutil.h"
#include "lingauss.h"

#include <stdio.h>
#include <stdlib.h>

#define NB 3
static const size_t SIZES[NB] = {12, 10, 8}; /* batches of different sizes */

typedef struct fixture {
    lg_model lg;
    lg_model views[NB];
    bsvi_model *models[NB];
    bsvi_proposal *qs[NB];
    bsvi_svi *svi;
    /* batch callback behaviour */
    unsigned long calls;
    int fail_at;        /* call number that fails (0: none) */
    int null_model;     /* 1: leave *model NULL */
    int reenter;        /* 1: call the search on the held handle from the callback */
    bsvi_status reenter_status;
} fixture;

static int batch_cb(void *user_data, size_t index, const bsvi_model **model,
                    const bsvi_proposal **proposal) {
    fixture *f = (fixture *)user_data;
    ++f->calls;
    if (f->fail_at && f->calls == (unsigned long)f->fail_at) return 7;
    if (f->reenter) {
        bsvi_step_trial t[BSVI_STEP_SEARCH_MAX_TRIALS];
        bsvi_step_search_result r;
        f->reenter_status = bsvi_svi_search_step_size(f->svi, batch_cb, f, NB, NULL, NULL, t,
                                                      BSVI_STEP_SEARCH_MAX_TRIALS, &r);
        f->reenter = 0;
    }
    *model = f->null_model ? NULL : f->models[index];
    *proposal = f->qs[index];
    return 0;
}

static int setup(void **state) {
    fixture *f = (fixture *)calloc(1, sizeof *f);
    assert_non_null(f);
    size_t B = 0;
    for (size_t b = 0; b < NB; ++b) B += SIZES[b];
    assert_int_equal(lg_init(&f->lg, 2, 5, B, 0.5, 1, 11), 0);
    size_t off = 0;
    for (size_t b = 0; b < NB; ++b) {
        f->views[b] = lg_view(&f->lg, off);
        TU_OK(lg_make_model(&f->views[b], &f->models[b]));
        double mean[64], ls[64];
        for (size_t i = 0; i < SIZES[b] * 2; ++i) {
            mean[i] = 0.0; /* the prior: a poor start, SVI has much to gain */
            ls[i] = 0.0;
        }
        TU_OK(lg_make_proposal(SIZES[b], 2, mean, ls, &f->qs[b]));
        off += SIZES[b];
    }
    TU_OK(bsvi_svi_create(2, &f->svi));
    TU_OK(bsvi_svi_set_steps(f->svi, 10));
    TU_OK(bsvi_svi_set_seed(f->svi, 5));
    TU_OK(bsvi_svi_set_stream(f->svi, 40, 3));
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = (fixture *)*state;
    for (size_t b = 0; b < NB; ++b) {
        bsvi_model_destroy(f->models[b]);
        bsvi_proposal_destroy(f->qs[b]);
    }
    bsvi_svi_destroy(f->svi);
    lg_free(&f->lg);
    free(f);
    return 0;
}

/* The trial at eta recomputed with plain bsvi_svi_run: the same options (FREEZE), seed 5,
 * batch b at counter 40 + b and id offset 3. */
static void recompute(fixture *f, double eta, const bsvi_buffer_weights *pi,
                      bsvi_step_trial *out) {
    bsvi_svi *s;
    bsvi_trajectory *t;
    bsvi_svi_options o;
    TU_OK(bsvi_svi_get_options(f->svi, &o));
    o.step_size = eta;
    o.divergence = BSVI_DIVERGENCE_FREEZE;
    TU_OK(bsvi_svi_create(2, &s));
    TU_OK(bsvi_svi_set_options(s, &o));
    TU_OK(bsvi_svi_set_seed(s, 5));
    TU_OK(bsvi_trajectory_create(&t));
    const size_t K1 = o.steps + 1;
    double lpi[64];
    assert_true(K1 <= 64);
    if (pi) {
        double p[64];
        TU_OK(bsvi_buffer_weights_get_probs(pi, p, K1));
        for (size_t j = 0; j < K1; ++j) lpi[j] = log(p[j]);
    } else {
        for (size_t j = 0; j < K1; ++j) lpi[j] = -log((double)K1);
    }
    size_t n = 0, div = 0;
    double s0 = 0, sk = 0, g = 0, g2 = 0, bg = 0;
    for (size_t b = 0; b < NB; ++b) {
        TU_OK(bsvi_svi_set_stream(s, 40 + b, 3));
        TU_OK(bsvi_svi_run(s, f->models[b], f->qs[b], t));
        double lw[64 * 11];
        size_t taken[64];
        TU_OK(bsvi_trajectory_get_log_weights(t, lw));
        TU_OK(bsvi_trajectory_get_steps_taken(t, taken));
        for (size_t i = 0; i < SIZES[b]; ++i) {
            const double *w = lw + i * K1;
            div += taken[i] < o.steps;
            assert_true(isfinite(w[0]) && isfinite(w[o.steps]));
            double mx = -INFINITY;
            for (size_t j = 0; j < K1; ++j) mx = fmax(mx, lpi[j] + w[j]);
            double sum = 0;
            for (size_t j = 0; j < K1; ++j) sum += exp(lpi[j] + w[j] - mx);
            const double d = w[o.steps] - w[0];
            ++n;
            s0 += w[0];
            sk += w[o.steps];
            g += d;
            g2 += d * d;
            bg += mx + log(sum) - w[o.steps];
        }
    }
    memset(out, 0, sizeof *out);
    out->step_size = eta;
    out->points = n;
    out->diverged = div;
    out->svi0 = s0 / (double)n;
    out->svik = sk / (double)n;
    out->svik_gain = g / (double)n;
    out->svik_gain_se = sqrt((g2 - g * g / (double)n) / ((double)n - 1.0) / (double)n);
    out->bsvik_gain = bg / (double)n;
    bsvi_trajectory_destroy(t);
    bsvi_svi_destroy(s);
}

static void assert_trial_equal(const bsvi_step_trial *a, const bsvi_step_trial *b) {
    TU_NEAR(a->step_size, b->step_size, 0.0);
    assert_int_equal(a->points, b->points);
    assert_int_equal(a->zero_points, 0);
    assert_int_equal(a->diverged, b->diverged);
    /* relative: a frozen diverged point's log w_k can be of order -1e12 */
    TU_NEAR(a->svi0, b->svi0, 1e-10 * (1.0 + fabs(b->svi0)));
    TU_NEAR(a->svik, b->svik, 1e-10 * (1.0 + fabs(b->svik)));
    TU_NEAR(a->svik_gain, b->svik_gain, 1e-10 * (1.0 + fabs(b->svik_gain)));
    TU_NEAR(a->svik_gain_se, b->svik_gain_se, 1e-7 * (1.0 + fabs(b->svik_gain_se)));
    TU_NEAR(a->bsvik_gain, b->bsvik_gain, 1e-10 * (1.0 + fabs(b->bsvik_gain)));
}

static void test_grid_matches_direct_runs(void **state) {
    fixture *f = (fixture *)*state;
    const double grid[] = {0.3, 1e-3, 1e-2, 3e-2, 1e-2, 0.1, 3.0}; /* unsorted, a repeat */
    bsvi_step_search_options o = bsvi_step_search_options_default();
    o.grid = grid;
    o.grid_size = sizeof grid / sizeof grid[0];
    bsvi_step_trial t[8];
    bsvi_step_search_result r;
    TU_OK(bsvi_svi_search_step_size(f->svi, batch_cb, f, NB, NULL, &o, t, 8, &r));
    assert_int_equal(r.num_trials, 6); /* the repeat is tried once */
    for (size_t i = 1; i < r.num_trials; ++i) assert_true(t[i - 1].step_size < t[i].step_size);
    for (size_t i = 0; i < r.num_trials; ++i) {
        bsvi_step_trial ref;
        recompute(f, t[i].step_size, NULL, &ref);
        assert_trial_equal(&t[i], &ref);
        if (getenv("BSVI_TEST_VERBOSE"))
            printf("eta %g: points %zu diverged %zu svi0 %.4f svik %.4f gain %.4f (se %.4f) "
                   "bsvi gain %.4f\n",
                   t[i].step_size, t[i].points, t[i].diverged, t[i].svi0, t[i].svik,
                   t[i].svik_gain, t[i].svik_gain_se, t[i].bsvik_gain);
        /* SVI-0 does not depend on the step size: the same draws for every trial */
        TU_NEAR(t[i].svi0, t[0].svi0, 0.0);
    }
    /* 3.0 diverges on this model (curvature up to 16): the rule then caps the choice */
    assert_true(t[5].diverged > 0);
    assert_true(isfinite(r.first_diverging) && r.first_diverging <= 3.0);
    TU_NEAR(r.safe_limit, r.first_diverging / 2.0, 0.0);
    assert_true(r.best != BSVI_STEP_SEARCH_NONE);
    assert_true(r.step_size <= r.safe_limit);
    assert_true(t[r.best].diverged == 0 && t[r.best].svik_gain > 0.0);
    for (size_t i = 0; i < r.num_trials; ++i)
        if (t[i].diverged == 0 && t[i].step_size <= r.safe_limit)
            assert_true(t[i].svik_gain <= t[r.best].svik_gain);
    /* refinement from the prior toward the posterior gains nats, well above the noise */
    assert_true(t[r.best].svik_gain > 2.0 * t[r.best].svik_gain_se);
}

static void test_log_search(void **state) {
    fixture *f = (fixture *)*state;
    bsvi_step_search_options o = bsvi_step_search_options_default();
    o.max_step = 10.0;
    bsvi_step_trial t[BSVI_STEP_SEARCH_MAX_TRIALS], t2[BSVI_STEP_SEARCH_MAX_TRIALS];
    bsvi_step_search_result r, r2;
    bsvi_svi_options before, after;
    uint64_t seed, counter, id;
    TU_OK(bsvi_svi_get_options(f->svi, &before));
    TU_OK(bsvi_svi_search_step_size(f->svi, batch_cb, f, NB, NULL, &o, t,
                                    BSVI_STEP_SEARCH_MAX_TRIALS, &r));
    assert_true(r.num_trials >= 3 && r.num_trials <= BSVI_STEP_SEARCH_MAX_TRIALS);
    for (size_t i = 1; i < r.num_trials; ++i) assert_true(t[i - 1].step_size < t[i].step_size);
    assert_true(r.best != BSVI_STEP_SEARCH_NONE);
    assert_true(r.step_size <= r.safe_limit && t[r.best].svik_gain > 0.0);
    /* the refinement tried points between the coarse ones (ratio sqrt(10) -> 10^(1/4)) */
    int off_grid = 0;
    for (size_t i = 0; i < r.num_trials; ++i) {
        const double e = log10(t[i].step_size / 1e-4) * 2.0;
        off_grid |= fabs(e - floor(e + 0.5)) > 1e-6;
    }
    assert_true(off_grid);
    /* the caller's handle is unchanged */
    TU_OK(bsvi_svi_get_options(f->svi, &after));
    assert_memory_equal(&before, &after, sizeof before);
    TU_OK(bsvi_svi_get_stream(f->svi, &seed, &counter, &id));
    assert_int_equal(seed, 5);
    assert_int_equal(counter, 40);
    assert_int_equal(id, 3);
    /* reproducible */
    TU_OK(bsvi_svi_search_step_size(f->svi, batch_cb, f, NB, NULL, &o, t2,
                                    BSVI_STEP_SEARCH_MAX_TRIALS, &r2));
    assert_memory_equal(&r, &r2, sizeof r);
    assert_memory_equal(t, t2, r.num_trials * sizeof t[0]);
    /* the chosen step refines: SVI-k above SVI-0 by the reported gain */
    bsvi_step_trial ref;
    recompute(f, r.step_size, NULL, &ref);
    assert_trial_equal(&t[r.best], &ref);
}

static void test_buffer_weights(void **state) {
    fixture *f = (fixture *)*state;
    bsvi_buffer_weights *pi;
    TU_OK(bsvi_buffer_weights_create(11, &pi));
    double p[11];
    for (size_t j = 0; j < 11; ++j) p[j] = (double)(j + 1);
    double s = 0;
    for (size_t j = 0; j < 11; ++j) s += p[j];
    for (size_t j = 0; j < 11; ++j) p[j] /= s;
    TU_OK(bsvi_buffer_weights_set_probs(pi, p, 11));
    const double grid[] = {3e-2};
    bsvi_step_search_options o = bsvi_step_search_options_default();
    o.grid = grid;
    o.grid_size = 1;
    bsvi_step_trial t[1], ref;
    bsvi_step_search_result r;
    TU_OK(bsvi_svi_search_step_size(f->svi, batch_cb, f, NB, pi, &o, t, 1, &r));
    recompute(f, 3e-2, pi, &ref);
    assert_trial_equal(&t[0], &ref);
    /* BSVI-k >= max_i log(pi_i w_i) > log pi_k + log w_k */
    assert_true(t[0].bsvik_gain > log(p[10]));
    bsvi_buffer_weights *bad;
    TU_OK(bsvi_buffer_weights_create(5, &bad));
    TU_STATUS(bsvi_svi_search_step_size(f->svi, batch_cb, f, NB, bad, &o, t, 1, &r),
              BSVI_ERR_SIZE_MISMATCH);
    bsvi_buffer_weights_destroy(bad);
    bsvi_buffer_weights_destroy(pi);
}

static void test_no_safe_step(void **state) {
    fixture *f = (fixture *)*state;
    const double grid[] = {5.0, 8.0}; /* every step diverges */
    bsvi_step_search_options o = bsvi_step_search_options_default();
    o.grid = grid;
    o.grid_size = 2;
    bsvi_step_trial t[2];
    bsvi_step_search_result r;
    TU_OK(bsvi_svi_search_step_size(f->svi, batch_cb, f, NB, NULL, &o, t, 2, &r));
    assert_int_equal(r.best, BSVI_STEP_SEARCH_NONE);
    assert_true(isnan(r.step_size));
    TU_NEAR(r.first_diverging, 5.0, 0.0);
    assert_true(t[0].diverged > 0 && t[1].diverged > 0);
}

static void test_errors(void **state) {
    fixture *f = (fixture *)*state;
    bsvi_step_trial t[BSVI_STEP_SEARCH_MAX_TRIALS];
    bsvi_step_search_result r;
    const size_t CAP = BSVI_STEP_SEARCH_MAX_TRIALS;
    memset(&r, 0x5a, sizeof r);
    const bsvi_step_search_result untouched = r;
    TU_STATUS(bsvi_svi_search_step_size(NULL, batch_cb, f, NB, NULL, NULL, t, CAP, &r),
              BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_svi_search_step_size(f->svi, NULL, f, NB, NULL, NULL, t, CAP, &r),
              BSVI_ERR_NULL_ARGUMENT);
    assert_non_null(strstr(bsvi_svi_last_error(f->svi), "batches"));
    TU_STATUS(bsvi_svi_search_step_size(f->svi, batch_cb, f, NB, NULL, NULL, NULL, CAP, &r),
              BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_svi_search_step_size(f->svi, batch_cb, f, NB, NULL, NULL, t, CAP, NULL),
              BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_svi_search_step_size(f->svi, batch_cb, f, 0, NULL, NULL, t, CAP, &r),
              BSVI_ERR_ZERO_SIZE);
    if (sizeof(size_t) > 4)
        TU_STATUS(bsvi_svi_search_step_size(f->svi, batch_cb, f,
                                            (size_t)(((uint64_t)1 << 32) + 1), NULL, NULL, t,
                                            CAP, &r),
                  BSVI_ERR_OUT_OF_RANGE);
    TU_STATUS(bsvi_svi_search_step_size(f->svi, batch_cb, f, NB, NULL, NULL, t, 3, &r),
              BSVI_ERR_SIZE_MISMATCH);
    assert_non_null(strstr(bsvi_svi_last_error(f->svi), "capacity"));

    bsvi_step_search_options o = bsvi_step_search_options_default();
    const double bad_grid[] = {1e-2, -1.0};
    o.grid = bad_grid;
    o.grid_size = 2;
    TU_STATUS(bsvi_svi_search_step_size(f->svi, batch_cb, f, NB, NULL, &o, t, CAP, &r),
              BSVI_ERR_BAD_VALUE);
    assert_non_null(strstr(bsvi_svi_last_error(f->svi), "grid[1]"));
    o.grid_size = 0;
    TU_STATUS(bsvi_svi_search_step_size(f->svi, batch_cb, f, NB, NULL, &o, t, CAP, &r),
              BSVI_ERR_ZERO_SIZE);
    o.grid_size = BSVI_STEP_SEARCH_MAX_TRIALS + 1;
    TU_STATUS(bsvi_svi_search_step_size(f->svi, batch_cb, f, NB, NULL, &o, t, CAP, &r),
              BSVI_ERR_OUT_OF_RANGE);
    o = bsvi_step_search_options_default();
    o.margin = 0.5;
    TU_STATUS(bsvi_svi_search_step_size(f->svi, batch_cb, f, NB, NULL, &o, t, CAP, &r),
              BSVI_ERR_BAD_VALUE);
    o.margin = NAN;
    TU_STATUS(bsvi_svi_search_step_size(f->svi, batch_cb, f, NB, NULL, &o, t, CAP, &r),
              BSVI_ERR_BAD_VALUE);
    o = bsvi_step_search_options_default();
    o.max_step = INFINITY;
    TU_STATUS(bsvi_svi_search_step_size(f->svi, batch_cb, f, NB, NULL, &o, t, CAP, &r),
              BSVI_ERR_BAD_VALUE);
    o = bsvi_step_search_options_default();
    o.factor = 1.0;
    TU_STATUS(bsvi_svi_search_step_size(f->svi, batch_cb, f, NB, NULL, &o, t, CAP, &r),
              BSVI_ERR_BAD_VALUE);
    o = bsvi_step_search_options_default();
    o.min_step = NAN;
    TU_STATUS(bsvi_svi_search_step_size(f->svi, batch_cb, f, NB, NULL, &o, t, CAP, &r),
              BSVI_ERR_BAD_VALUE);
    o = bsvi_step_search_options_default();
    o.max_step = 1e-5;
    TU_STATUS(bsvi_svi_search_step_size(f->svi, batch_cb, f, NB, NULL, &o, t, CAP, &r),
              BSVI_ERR_BAD_VALUE);
    o = bsvi_step_search_options_default();
    o.refinements = 9;
    TU_STATUS(bsvi_svi_search_step_size(f->svi, batch_cb, f, NB, NULL, &o, t, CAP, &r),
              BSVI_ERR_OUT_OF_RANGE);
    o = bsvi_step_search_options_default();
    o.factor = 1.01; /* ~926 coarse points */
    TU_STATUS(bsvi_svi_search_step_size(f->svi, batch_cb, f, NB, NULL, &o, t, CAP, &r),
              BSVI_ERR_OUT_OF_RANGE);

    /* callback failures, at the first and at a later batch */
    f->calls = 0;
    f->fail_at = 1;
    TU_STATUS(bsvi_svi_search_step_size(f->svi, batch_cb, f, NB, NULL, NULL, t, CAP, &r),
              BSVI_ERR_CALLBACK_FAILED);
    assert_non_null(strstr(bsvi_svi_last_error(f->svi), "code 7"));
    f->calls = 0;
    f->fail_at = 5;
    TU_STATUS(bsvi_svi_search_step_size(f->svi, batch_cb, f, NB, NULL, NULL, t, CAP, &r),
              BSVI_ERR_CALLBACK_FAILED);
    f->fail_at = 0;
    f->null_model = 1;
    TU_STATUS(bsvi_svi_search_step_size(f->svi, batch_cb, f, NB, NULL, NULL, t, CAP, &r),
              BSVI_ERR_CALLBACK_FAILED);
    assert_non_null(strstr(bsvi_svi_last_error(f->svi), "model NULL"));
    f->null_model = 0;
    /* the model's own callback failing is reported with the batch and step size */
    lg_faulty fl = {&f->views[1], 2, 0, 3, LG_FAULT_CODE};
    TU_OK(bsvi_model_set_likelihood(f->models[1], lg_faulty_likelihood, &fl));
    TU_STATUS(bsvi_svi_search_step_size(f->svi, batch_cb, f, NB, NULL, NULL, t, CAP, &r),
              BSVI_ERR_CALLBACK_FAILED);
    assert_non_null(strstr(bsvi_svi_last_error(f->svi), "batch 1"));
    fl.mode = LG_FAULT_NAN;
    fl.calls = 0;
    TU_STATUS(bsvi_svi_search_step_size(f->svi, batch_cb, f, NB, NULL, NULL, t, CAP, &r),
              BSVI_ERR_CALLBACK_NAN);
    TU_OK(bsvi_model_set_likelihood(f->models[1], lg_likelihood, &f->views[1]));
    /* a proposal of another dimension */
    bsvi_proposal *q3;
    TU_OK(bsvi_proposal_create(SIZES[0], 3, &q3));
    bsvi_proposal *keep = f->qs[0];
    f->qs[0] = q3;
    TU_STATUS(bsvi_svi_search_step_size(f->svi, batch_cb, f, NB, NULL, NULL, t, CAP, &r),
              BSVI_ERR_SIZE_MISMATCH);
    f->qs[0] = keep;
    bsvi_proposal_destroy(q3);
    /* the handle is held during the search */
    f->reenter = 1;
    f->reenter_status = BSVI_OK;
    const double grid[] = {1e-2};
    o = bsvi_step_search_options_default();
    o.grid = grid;
    o.grid_size = 1;
    TU_OK(bsvi_svi_search_step_size(f->svi, batch_cb, f, NB, NULL, &o, t, CAP, &r));
    assert_int_equal(f->reenter_status, BSVI_ERR_REENTRANT);
    /* k = 0 */
    bsvi_svi *s0;
    TU_OK(bsvi_svi_create(2, &s0));
    TU_OK(bsvi_svi_set_steps(s0, 0));
    bsvi_step_search_result r0 = untouched;
    TU_STATUS(bsvi_svi_search_step_size(s0, batch_cb, f, NB, NULL, NULL, t, CAP, &r0),
              BSVI_ERR_BAD_STATE);
    assert_memory_equal(&r0, &untouched, sizeof r0);
    bsvi_svi_destroy(s0);
}

/* A likelihood of zero at data point 0 of its view (every z): log w_0 = log w_k = -INFINITY
 * there at every step size. */
static int zero_first(size_t n, size_t dim, const double *z, const size_t *data_index,
                      double *log_density, double *grad, void *user_data) {
    const int rc = lg_likelihood(n, dim, z, data_index, log_density, grad, user_data);
    for (size_t r = 0; r < n; ++r)
        if (data_index[r] == 0) log_density[r] = -INFINITY;
    return rc;
}

static void test_zero_point_and_closing_step(void **state) {
    fixture *f = (fixture *)*state;
    TU_OK(bsvi_model_set_likelihood(f->models[0], zero_first, &f->views[0]));
    /* a log search whose powers of sqrt(10) miss max_step: 1e-3, 3.16e-3, 1e-2, 3.16e-2, then
     * 0.05 */
    bsvi_step_search_options o = bsvi_step_search_options_default();
    o.min_step = 1e-3;
    o.max_step = 0.05;
    o.refinements = 0;
    bsvi_step_trial t[5];
    bsvi_step_search_result r;
    TU_STATUS(bsvi_svi_search_step_size(f->svi, batch_cb, f, NB, NULL, &o, t, 4, &r),
              BSVI_ERR_SIZE_MISMATCH); /* 5 coarse points */
    TU_OK(bsvi_svi_search_step_size(f->svi, batch_cb, f, NB, NULL, &o, t, 5, &r));
    assert_int_equal(r.num_trials, 5);
    TU_NEAR(t[4].step_size, 0.05, 0.0);
    for (size_t i = 0; i < r.num_trials; ++i) {
        assert_int_equal(t[i].zero_points, 1); /* the zero point is left out alike */
        assert_int_equal(t[i].points, 29);
        assert_int_equal(t[i].diverged, 0);
    }
    assert_true(isinf(r.first_diverging) && isinf(r.safe_limit));
    assert_true(r.best != BSVI_STEP_SEARCH_NONE); /* and does not block the choice */
    for (size_t i = 0; i < r.num_trials; ++i) assert_true(t[i].svik_gain <= t[r.best].svik_gain);
}

static void test_failure_keeps_outputs(void **state) {
    fixture *f = (fixture *)*state;
    bsvi_step_trial t[BSVI_STEP_SEARCH_MAX_TRIALS];
    bsvi_step_search_result r;
    for (size_t i = 0; i < BSVI_STEP_SEARCH_MAX_TRIALS; ++i) t[i].step_size = TU_SENTINEL;
    memset(&r, 0x5a, sizeof r);
    const bsvi_step_search_result before = r;
    bsvi_svi_options ob, oa;
    TU_OK(bsvi_svi_get_options(f->svi, &ob));
    f->calls = 0;
    f->fail_at = 8; /* the third trial's second batch */
    TU_STATUS(bsvi_svi_search_step_size(f->svi, batch_cb, f, NB, NULL, NULL, t,
                                        BSVI_STEP_SEARCH_MAX_TRIALS, &r),
              BSVI_ERR_CALLBACK_FAILED);
    f->fail_at = 0;
    assert_memory_equal(&r, &before, sizeof r);
    for (size_t i = 0; i < BSVI_STEP_SEARCH_MAX_TRIALS; ++i)
        TU_NEAR(t[i].step_size, TU_SENTINEL, 0.0);
    TU_OK(bsvi_svi_get_options(f->svi, &oa));
    assert_memory_equal(&ob, &oa, sizeof ob);
    uint64_t seed, counter, id;
    TU_OK(bsvi_svi_get_stream(f->svi, &seed, &counter, &id));
    assert_int_equal(counter, 40);
    /* the message stays until the next failure: a success does not clear it */
    TU_OK(bsvi_svi_search_step_size(f->svi, batch_cb, f, NB, NULL, NULL, t,
                                    BSVI_STEP_SEARCH_MAX_TRIALS, &r));
    assert_true(r.best != BSVI_STEP_SEARCH_NONE);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_grid_matches_direct_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_search, setup, teardown),
        cmocka_unit_test_setup_teardown(test_buffer_weights, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_safe_step, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zero_point_and_closing_step, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failure_keeps_outputs, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
