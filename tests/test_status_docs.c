/* test_status_docs.c: every status a call returns is listed in its header (issue 12,
 * item 7). The headers' @return paragraphs are parsed at run time (tests/support/
 * statusdoc.c); test_api_contract checks its 250-odd rows against them and
 * test_reentrancy its BSVI_ERR_REENTRANT refusals. Here:
 * - the lists are well formed: every bsvi_status function of the headers names BSVI_OK and
 *   BSVI_ERR_NULL_ARGUMENT, and BSVI_ERR_REENTRANT is listed by every function that
 *   changes a handle a running call can hold;
 * - every status path of the 0.2 functions (buffer weights, the estimator's bound computes,
 *   the getters, the name helpers, the SVI and evaluator options) that the tests reach;
 * - the paths the issue found undocumented: bsvi_evaluator_iwae and
 *   bsvi_evaluator_elbo_star return BSVI_ERR_NUMERIC (every weight of a data point zero; a
 *   zero-density sample), bsvi_evaluator_bsvi follows the SVI handle's divergence policy
 *   (BSVI_ERR_NUMERIC under FAIL). Before the fix, the evaluator's headers did not list
 *   them (elbo_star and bsvi referred to the iwae list, which lacked BSVI_ERR_NUMERIC). */
#include "testutil.h"
#include "statusdoc.h"

#include <stdio.h>
#include <stdlib.h>

static void test_lists_well_formed(void **state)
{
    (void)state;
    const size_t n = sd_num_functions();
    print_message("status docs: %zu bsvi_status functions in the headers\n", n);
    assert_true(n >= 90);
    /* the 0.2 functions are parsed (weights.h among the headers read) */
    static const char *const added[] = {
        "bsvi_buffer_weights_create",       "bsvi_buffer_weights_set_probs",
        "bsvi_buffer_weights_get_probs",    "bsvi_buffer_weights_set_logits",
        "bsvi_buffer_weights_get_logits",   "bsvi_buffer_weights_mean_position",
        "bsvi_buffer_weights_set_adam",     "bsvi_buffer_weights_get_adam_state",
        "bsvi_buffer_weights_set_adam_state", "bsvi_buffer_weights_accumulate",
        "bsvi_buffer_weights_accumulate_terms", "bsvi_buffer_weights_get_gradient",
        "bsvi_buffer_weights_set_gradient", "bsvi_buffer_weights_step",
        "bsvi_estimator_elbo",              "bsvi_estimator_iwae",
        "bsvi_estimator_svi",               "bsvi_estimator_bsvi",
        "bsvi_estimator_bsvi_sir",          "bsvi_estimator_giwae",
        "bsvi_estimator_result_kind",       "bsvi_estimator_get_target_log_weights",
        "bsvi_estimator_get_noise",         "bsvi_estimator_get_stream",
        "bsvi_estimator_get_stats",         "bsvi_estimator_reset_stats",
        "bsvi_estimator_set_point_policy",  "bsvi_bound_from_name",
        "bsvi_step_rule_from_name",         "bsvi_grad_form_from_name",
        "bsvi_divergence_policy_from_name", "bsvi_svi_set_options",
        "bsvi_svi_get_options",             "bsvi_svi_get_stream",
        "bsvi_svi_get_stats",               "bsvi_svi_reset_stats",
        "bsvi_evaluator_set_svi_options",   "bsvi_evaluator_get_svi_options",
        "bsvi_evaluator_set_point_policy",  "bsvi_evaluator_get_steps_taken",
        "bsvi_evaluator_get_stream",        "bsvi_evaluator_get_stats",
        "bsvi_evaluator_reset_stats",       "bsvi_trajectory_health",
        /* 0.2.1 */
        "bsvi_evaluator_set_diagnostics",   "bsvi_evaluator_get_diagnostics"};
    for (size_t i = 0; i < sizeof added / sizeof added[0]; ++i) {
        if (sd_documented(added[i], BSVI_OK) != 1) {
            fail_msg("%s: no bsvi_status declaration with a status list found", added[i]);
        }
    }
    /* Lists are written out in full (a "@return As bsvi_other(), plus ..." reference would be
     * resolved by the reader, but explicit lists cannot hide a status behind another's). */
    assert_null(sd_reference("bsvi_estimator_iwae"));
    assert_null(sd_reference("bsvi_estimator_bsvi_sir"));
    assert_int_equal(sd_documented("bsvi_estimator_iwae", BSVI_ERR_CALLBACK_FAILED), 1);
    assert_int_equal(sd_documented("bsvi_estimator_iwae", BSVI_ERR_ZERO_SIZE), 1);
    assert_int_equal(sd_documented("bsvi_estimator_bsvi_sir", BSVI_ERR_SIZE_MISMATCH), 1);
    assert_int_equal(sd_documented("bsvi_estimator_bsvi_sir", BSVI_ERR_ZERO_SIZE), 1);
    assert_int_equal(sd_documented("bsvi_estimator_bsvi", BSVI_ERR_ZERO_SIZE), 0);
    assert_null(sd_reference("bsvi_estimator_elbo"));
    for (size_t i = 0; i < n; ++i) {
        unsigned mask = 0;
        const char *fn = sd_function(i, &mask);
        if (!(mask & 1u) || !(mask & 2u)) {
            fail_msg("%s: its @return list lacks BSVI_OK or BSVI_ERR_NULL_ARGUMENT", fn);
        }
        /* Functions that change a handle a running call can hold (a run, compute or
         * evaluation that calls host code holds its handles; see status.h). The estimator's
         * bound computes change the estimator (those without callbacks too: one rule for all).
         * Buffer weights are never held: the computes that read them call no host code. */
        static const char *const computes[] = {"bsvi_estimator_elbo", "bsvi_estimator_iwae",
                                               "bsvi_estimator_svi", "bsvi_estimator_bsvi",
                                               "bsvi_estimator_bsvi_sir", "bsvi_estimator_giwae"};
        int changes = strstr(fn, "_set_") != NULL || strstr(fn, "_run") != NULL ||
                      strstr(fn, "_reset_stats") != NULL ||
                      strcmp(fn, "bsvi_proposal_sample") == 0 ||
                      (strncmp(fn, "bsvi_evaluator_", 15) == 0 && strstr(fn, "_get_") == NULL);
        for (size_t c = 0; c < sizeof computes / sizeof computes[0]; ++c) {
            changes |= strcmp(fn, computes[c]) == 0;
        }
        if (strncmp(fn, "bsvi_buffer_weights_", 20) == 0) {
            changes = 0;
        }
        if (changes && strcmp(fn, "bsvi_evaluator_create") != 0 && !(mask >> 12 & 1u)) {
            fail_msg("%s changes a handle but does not list BSVI_ERR_REENTRANT", fn);
        }
        /* Getters change nothing that a callback could be refused: no BSVI_ERR_REENTRANT. */
        if ((strstr(fn, "_get_") != NULL || strstr(fn, "_from_name") != NULL) &&
            (mask >> 12 & 1u)) {
            fail_msg("%s only reads but lists BSVI_ERR_REENTRANT", fn);
        }
    }
    assert_int_equal(sd_documented("bsvi_no_such_function", BSVI_OK), -1);
}

/* log N(0.5 | z, I), or -inf for data point 1 when user_data is non-NULL. */
static int lik(size_t n, size_t dim, const double *z, const size_t *data_index,
               double *log_density, double *grad, void *user_data)
{
    tu_half_gauss(n, dim, z, log_density, grad, 1e3);
    for (size_t r = 0; r < n; ++r) {
        if (user_data != NULL && data_index[r] == 1) {
            log_density[r] = -INFINITY;
        }
    }
    return 0;
}

static void test_evaluator_numeric_documented(void **state)
{
    (void)state;
    int zero = 1;
    bsvi_model *m = NULL, *mz = NULL;
    TU_OK(bsvi_model_create(2, &m));
    TU_OK(bsvi_model_set_likelihood(m, lik, NULL));
    TU_OK(bsvi_model_create(2, &mz));
    TU_OK(bsvi_model_set_likelihood(mz, lik, &zero));
    bsvi_proposal *q = NULL;
    TU_OK(bsvi_proposal_create(2, 2, &q));
    bsvi_evaluator *ev = NULL;
    TU_OK(bsvi_evaluator_create(2, &ev));
    bsvi_svi *svi = NULL;
    TU_OK(bsvi_svi_create(2, &svi));
    double out[4];

    /* every weight of data point 1 is zero: reported as -INFINITY by default (0.2), the
     * estimate fails under BSVI_POINTS_FAIL */
    DOC_STATUS("bsvi_evaluator_iwae", bsvi_evaluator_iwae(ev, mz, q, 8, out), BSVI_OK);
    assert_true(isfinite(out[0]) && out[1] == -INFINITY);
    assert_int_equal(bsvi_evaluator_num_zero_points(ev), 1);
    DOC_STATUS("bsvi_evaluator_bsvi", bsvi_evaluator_bsvi(ev, mz, q, 3, out, NULL), BSVI_OK);
    assert_true(isfinite(out[0]) && out[1] == -INFINITY);
    /* ELBO* fails on a zero-density sample whatever the point policy */
    DOC_STATUS("bsvi_evaluator_elbo_star", bsvi_evaluator_elbo_star(ev, mz, q, 8, out, NULL, NULL),
               BSVI_ERR_NUMERIC);
    DOC_STATUS("bsvi_evaluator_set_point_policy",
               bsvi_evaluator_set_point_policy(ev, BSVI_POINTS_FAIL), BSVI_OK);
    DOC_STATUS("bsvi_evaluator_set_point_policy",
               bsvi_evaluator_set_point_policy(ev, (bsvi_point_policy)2), BSVI_ERR_BAD_VALUE);
    DOC_STATUS("bsvi_evaluator_iwae", bsvi_evaluator_iwae(ev, mz, q, 8, out), BSVI_ERR_NUMERIC);
    DOC_STATUS("bsvi_evaluator_elbo_star", bsvi_evaluator_elbo_star(ev, mz, q, 8, out, NULL, NULL),
               BSVI_ERR_NUMERIC);
    DOC_STATUS("bsvi_evaluator_bsvi", bsvi_evaluator_bsvi(ev, mz, q, 3, out, NULL),
               BSVI_ERR_NUMERIC);
    /* a step that diverges (gradient 1e3 x eta 1e3): the SVI options' policy decides */
    bsvi_svi_options so;
    TU_OK(bsvi_svi_get_options(svi, &so));
    so.step_size = 1e3;
    DOC_STATUS("bsvi_evaluator_set_svi_options", bsvi_evaluator_set_svi_options(ev, &so),
               BSVI_OK);
    DOC_STATUS("bsvi_evaluator_bsvi", bsvi_evaluator_bsvi(ev, m, q, 3, out, NULL),
               BSVI_ERR_NUMERIC);
    TU_MESSAGE_MENTIONS(bsvi_evaluator_last_error(ev), "diverged");
    so.divergence = BSVI_DIVERGENCE_FREEZE;
    TU_OK(bsvi_evaluator_set_svi_options(ev, &so));
    DOC_STATUS("bsvi_evaluator_bsvi", bsvi_evaluator_bsvi(ev, m, q, 3, out, NULL), BSVI_OK);
    assert_true(isfinite(out[0]) && isfinite(out[1]));
    assert_true(bsvi_evaluator_num_frozen(ev) >= 1);
    /* NaN latents in log q (item 2) */
    const double znan[4] = {0.0, NAN, 0.0, 0.0};
    DOC_STATUS("bsvi_proposal_log_density", bsvi_proposal_log_density(q, 1, znan, out),
               BSVI_ERR_BAD_VALUE);

    bsvi_svi_destroy(svi);
    bsvi_evaluator_destroy(ev);
    bsvi_proposal_destroy(q);
    bsvi_model_destroy(mz);
    bsvi_model_destroy(m);
}

/* Likelihood that fails (user_data points to 1: returns 3; to 2: writes NaN). */
static int bad_lik(size_t n, size_t dim, const double *z, const size_t *data_index,
                   double *log_density, double *grad, void *user_data)
{
    (void)data_index;
    tu_half_gauss(n, dim, z, log_density, grad, 1.0);
    if (*(const int *)user_data == 1) {
        return 3;
    }
    log_density[0] = NAN;
    return 0;
}

/* The 0.2 functions: every status path the tests can reach is one the header lists. */
static void test_new_functions_documented(void **state)
{
    (void)state;
    int zero = 1, fail_code = 1, fail_nan = 2;
    bsvi_model *m = NULL, *mz = NULL, *m3 = NULL, *nolik = NULL, *hp = NULL, *mfail = NULL,
               *mnan = NULL;
    TU_OK(bsvi_model_create(2, &m));
    TU_OK(bsvi_model_set_likelihood(m, lik, NULL));
    TU_OK(bsvi_model_create(2, &mz));
    TU_OK(bsvi_model_set_likelihood(mz, lik, &zero));
    TU_OK(bsvi_model_create(3, &m3));
    TU_OK(bsvi_model_set_likelihood(m3, lik, NULL));
    TU_OK(bsvi_model_create(2, &nolik));
    TU_OK(bsvi_model_create(2, &hp));
    TU_OK(bsvi_model_set_likelihood(hp, lik, NULL));
    TU_OK(bsvi_model_set_prior(hp, lik, NULL));
    TU_OK(bsvi_model_create(2, &mfail));
    TU_OK(bsvi_model_set_likelihood(mfail, bad_lik, &fail_code));
    TU_OK(bsvi_model_create(2, &mnan));
    TU_OK(bsvi_model_set_likelihood(mnan, bad_lik, &fail_nan));
    bsvi_proposal *q = NULL;
    TU_OK(bsvi_proposal_create(2, 2, &q));
    bsvi_svi *svi = NULL;
    TU_OK(bsvi_svi_create(2, &svi));
    TU_OK(bsvi_svi_set_steps(svi, 2));
    TU_OK(bsvi_svi_set_step_size(svi, 1e-6)); /* lik's gradient is 1e3 times its true one */
    bsvi_trajectory *t = NULL, *tz = NULL, *empty = NULL, *t3 = NULL;
    TU_OK(bsvi_trajectory_create(&t));
    TU_OK(bsvi_trajectory_create(&tz));
    TU_OK(bsvi_trajectory_create(&empty));
    TU_OK(bsvi_trajectory_create(&t3));
    TU_OK(bsvi_svi_run(svi, m, q, t));
    TU_OK(bsvi_svi_run(svi, mz, q, tz)); /* data point 1: every weight zero */
    {
        bsvi_svi *s3 = NULL;
        bsvi_proposal *q3 = NULL;
        TU_OK(bsvi_svi_create(3, &s3));
        TU_OK(bsvi_proposal_create(2, 3, &q3));
        TU_OK(bsvi_svi_run(s3, m3, q3, t3));
        bsvi_proposal_destroy(q3);
        bsvi_svi_destroy(s3);
    }
    bsvi_buffer_weights *w3 = NULL, *w4 = NULL;
    TU_OK(bsvi_buffer_weights_create(3, &w3));
    TU_OK(bsvi_buffer_weights_create(4, &w4));
    double out[64];
    size_t sz[8];
    uint64_t u64;
    bsvi_stats stats;
    bsvi_bound kind;

    /* estimator: before any result */
    bsvi_estimator *e = NULL;
    DOC_STATUS("bsvi_estimator_create", bsvi_estimator_create(2, &e), BSVI_OK);
    assert_int_equal(bsvi_estimator_dim(e), 2);
    assert_int_equal(bsvi_estimator_dim(NULL), 0);
    DOC_STATUS("bsvi_estimator_result_kind", bsvi_estimator_result_kind(e, &kind),
               BSVI_ERR_BAD_STATE);
    DOC_STATUS("bsvi_estimator_result_kind", bsvi_estimator_result_kind(e, NULL),
               BSVI_ERR_NULL_ARGUMENT);
    DOC_STATUS("bsvi_estimator_result_kind", bsvi_estimator_result_kind(NULL, &kind),
               BSVI_ERR_NULL_ARGUMENT);
    DOC_STATUS("bsvi_estimator_get_target_log_weights",
               bsvi_estimator_get_target_log_weights(e, 0, out), BSVI_ERR_BAD_STATE);
    DOC_STATUS("bsvi_estimator_get_noise", bsvi_estimator_get_noise(e, 0, out), BSVI_ERR_BAD_STATE);
    DOC_STATUS("bsvi_estimator_get_stream", bsvi_estimator_get_stream(e, &u64, NULL, NULL),
               BSVI_OK);
    DOC_STATUS("bsvi_estimator_get_stream", bsvi_estimator_get_stream(NULL, &u64, NULL, NULL),
               BSVI_ERR_NULL_ARGUMENT);
    DOC_STATUS("bsvi_estimator_get_stats", bsvi_estimator_get_stats(e, &stats), BSVI_OK);
    DOC_STATUS("bsvi_estimator_get_stats", bsvi_estimator_get_stats(e, NULL),
               BSVI_ERR_NULL_ARGUMENT);
    DOC_STATUS("bsvi_estimator_reset_stats", bsvi_estimator_reset_stats(e), BSVI_OK);
    DOC_STATUS("bsvi_estimator_reset_stats", bsvi_estimator_reset_stats(NULL),
               BSVI_ERR_NULL_ARGUMENT);
    DOC_STATUS("bsvi_estimator_set_point_policy",
               bsvi_estimator_set_point_policy(e, (bsvi_point_policy)2), BSVI_ERR_BAD_VALUE);
    DOC_STATUS("bsvi_estimator_set_point_policy",
               bsvi_estimator_set_point_policy(NULL, BSVI_POINTS_FAIL), BSVI_ERR_NULL_ARGUMENT);
    /* ELBO */
    DOC_STATUS("bsvi_estimator_elbo", bsvi_estimator_elbo(e, m, q, BSVI_GRAD_DREG),
               BSVI_ERR_BAD_VALUE);
    DOC_STATUS("bsvi_estimator_elbo", bsvi_estimator_elbo(e, m, q, (bsvi_grad_form)9),
               BSVI_ERR_BAD_VALUE);
    DOC_STATUS("bsvi_estimator_elbo", bsvi_estimator_elbo(e, NULL, q, BSVI_GRAD_PATHWISE),
               BSVI_ERR_NULL_ARGUMENT);
    DOC_STATUS("bsvi_estimator_elbo", bsvi_estimator_elbo(e, m3, q, BSVI_GRAD_PATHWISE),
               BSVI_ERR_SIZE_MISMATCH);
    DOC_STATUS("bsvi_estimator_elbo", bsvi_estimator_elbo(e, nolik, q, BSVI_GRAD_PATHWISE),
               BSVI_ERR_BAD_STATE);
    DOC_STATUS("bsvi_estimator_elbo", bsvi_estimator_elbo(e, hp, q, BSVI_GRAD_ANALYTIC_KL),
               BSVI_ERR_BAD_STATE);
    DOC_STATUS("bsvi_estimator_elbo", bsvi_estimator_elbo(e, mfail, q, BSVI_GRAD_PATHWISE),
               BSVI_ERR_CALLBACK_FAILED);
    DOC_STATUS("bsvi_estimator_elbo", bsvi_estimator_elbo(e, mnan, q, BSVI_GRAD_PATHWISE),
               BSVI_ERR_CALLBACK_NAN);
    DOC_STATUS("bsvi_estimator_elbo", bsvi_estimator_elbo(e, mz, q, BSVI_GRAD_STL), BSVI_OK);
    assert_int_equal(bsvi_estimator_num_zero_points(e), 1);
    DOC_STATUS("bsvi_estimator_result_kind", bsvi_estimator_result_kind(e, &kind), BSVI_OK);
    assert_int_equal(kind, BSVI_BOUND_ELBO);
    DOC_STATUS("bsvi_estimator_get_noise", bsvi_estimator_get_noise(e, 2, out), BSVI_OK);
    DOC_STATUS("bsvi_estimator_get_noise", bsvi_estimator_get_noise(e, 3, out),
               BSVI_ERR_SIZE_MISMATCH);
    DOC_STATUS("bsvi_estimator_get_noise", bsvi_estimator_get_noise(e, 2, NULL),
               BSVI_ERR_NULL_ARGUMENT);
    DOC_STATUS("bsvi_estimator_get_target_log_weights",
               bsvi_estimator_get_target_log_weights(e, 2, out), BSVI_OK);
    DOC_STATUS("bsvi_estimator_get_target_log_weights",
               bsvi_estimator_get_target_log_weights(e, 1, out), BSVI_ERR_SIZE_MISMATCH);
    DOC_STATUS("bsvi_estimator_get_target_log_weights",
               bsvi_estimator_get_target_log_weights(e, 2, NULL), BSVI_ERR_NULL_ARGUMENT);
    TU_OK(bsvi_estimator_set_point_policy(e, BSVI_POINTS_FAIL));
    DOC_STATUS("bsvi_estimator_elbo", bsvi_estimator_elbo(e, mz, q, BSVI_GRAD_PATHWISE),
               BSVI_ERR_NUMERIC);
    /* IWAE */
    DOC_STATUS("bsvi_estimator_iwae", bsvi_estimator_iwae(e, m, q, 0, BSVI_GRAD_PATHWISE),
               BSVI_ERR_ZERO_SIZE);
    DOC_STATUS("bsvi_estimator_iwae",
               bsvi_estimator_iwae(e, m, q, BSVI_MAX_SAMPLES + 1, BSVI_GRAD_PATHWISE),
               BSVI_ERR_OUT_OF_RANGE);
    DOC_STATUS("bsvi_estimator_iwae", bsvi_estimator_iwae(e, m, q, 4, BSVI_GRAD_STL),
               BSVI_ERR_BAD_VALUE);
    DOC_STATUS("bsvi_estimator_iwae", bsvi_estimator_iwae(e, m, q, 4, BSVI_GRAD_ANALYTIC_KL),
               BSVI_ERR_BAD_VALUE);
    DOC_STATUS("bsvi_estimator_iwae", bsvi_estimator_iwae(e, m, NULL, 4, BSVI_GRAD_DREG),
               BSVI_ERR_NULL_ARGUMENT);
    DOC_STATUS("bsvi_estimator_iwae", bsvi_estimator_iwae(e, mfail, q, 4, BSVI_GRAD_DREG),
               BSVI_ERR_CALLBACK_FAILED);
    DOC_STATUS("bsvi_estimator_iwae", bsvi_estimator_iwae(e, mz, q, 4, BSVI_GRAD_DREG),
               BSVI_ERR_NUMERIC);
    DOC_STATUS("bsvi_estimator_iwae", bsvi_estimator_iwae(e, m, q, 4, BSVI_GRAD_DREG), BSVI_OK);
    /* SVI-k, BSVI, BSVI-SIR */
    DOC_STATUS("bsvi_estimator_svi", bsvi_estimator_svi(e, NULL), BSVI_ERR_NULL_ARGUMENT);
    DOC_STATUS("bsvi_estimator_svi", bsvi_estimator_svi(e, empty), BSVI_ERR_BAD_STATE);
    DOC_STATUS("bsvi_estimator_svi", bsvi_estimator_svi(e, t3), BSVI_ERR_SIZE_MISMATCH);
    DOC_STATUS("bsvi_estimator_svi", bsvi_estimator_svi(e, tz), BSVI_ERR_NUMERIC);
    DOC_STATUS("bsvi_estimator_svi", bsvi_estimator_svi(e, t), BSVI_OK);
    DOC_STATUS("bsvi_estimator_get_noise", bsvi_estimator_get_noise(e, 2, out),
               BSVI_ERR_BAD_STATE);
    DOC_STATUS("bsvi_estimator_bsvi", bsvi_estimator_bsvi(e, NULL, NULL), BSVI_ERR_NULL_ARGUMENT);
    DOC_STATUS("bsvi_estimator_bsvi", bsvi_estimator_bsvi(e, empty, NULL), BSVI_ERR_BAD_STATE);
    DOC_STATUS("bsvi_estimator_bsvi", bsvi_estimator_bsvi(e, t3, NULL), BSVI_ERR_SIZE_MISMATCH);
    DOC_STATUS("bsvi_estimator_bsvi", bsvi_estimator_bsvi(e, t, w4), BSVI_ERR_SIZE_MISMATCH);
    DOC_STATUS("bsvi_estimator_bsvi", bsvi_estimator_bsvi(e, tz, w3), BSVI_ERR_NUMERIC);
    DOC_STATUS("bsvi_estimator_bsvi", bsvi_estimator_bsvi(e, t, w3), BSVI_OK);
    DOC_STATUS("bsvi_estimator_bsvi_sir", bsvi_estimator_bsvi_sir(e, t, w3, 0),
               BSVI_ERR_ZERO_SIZE);
    DOC_STATUS("bsvi_estimator_bsvi_sir", bsvi_estimator_bsvi_sir(e, t, w3, BSVI_MAX_SAMPLES + 1),
               BSVI_ERR_OUT_OF_RANGE);
    DOC_STATUS("bsvi_estimator_bsvi_sir", bsvi_estimator_bsvi_sir(e, t, w4, 2),
               BSVI_ERR_SIZE_MISMATCH);
    DOC_STATUS("bsvi_estimator_bsvi_sir", bsvi_estimator_bsvi_sir(e, empty, w3, 2),
               BSVI_ERR_BAD_STATE);
    DOC_STATUS("bsvi_estimator_bsvi_sir", bsvi_estimator_bsvi_sir(e, tz, NULL, 2),
               BSVI_ERR_NUMERIC);
    DOC_STATUS("bsvi_estimator_bsvi_sir", bsvi_estimator_bsvi_sir(e, t, NULL, 2), BSVI_OK);
    /* GIWAE */
    const double lj[6] = {-1, -2, -3, -1, -2, -3}, lq[6] = {-1, -1, -1, -1, -1, -1};
    DOC_STATUS("bsvi_estimator_giwae", bsvi_estimator_giwae(e, 2, 3, lj, lq, w3), BSVI_OK);
    DOC_STATUS("bsvi_estimator_get_encoder_grad", bsvi_estimator_get_encoder_grad(e, 2, out, NULL),
               BSVI_ERR_BAD_STATE);
    DOC_STATUS("bsvi_estimator_get_noise", bsvi_estimator_get_noise(e, 6, out),
               BSVI_ERR_BAD_STATE);
    DOC_STATUS("bsvi_estimator_get_target_log_weights",
               bsvi_estimator_get_target_log_weights(e, 6, out), BSVI_OK);
    DOC_STATUS("bsvi_estimator_giwae", bsvi_estimator_giwae(e, 2, 3, NULL, lq, w3),
               BSVI_ERR_NULL_ARGUMENT);
    DOC_STATUS("bsvi_estimator_giwae", bsvi_estimator_giwae(e, 0, 3, lj, lq, w3),
               BSVI_ERR_ZERO_SIZE);
    DOC_STATUS("bsvi_estimator_giwae", bsvi_estimator_giwae(e, BSVI_MAX_BATCH + 1, 3, lj, lq, w3),
               BSVI_ERR_OUT_OF_RANGE);
    DOC_STATUS("bsvi_estimator_giwae", bsvi_estimator_giwae(e, 2, 3, lj, lq, w4),
               BSVI_ERR_SIZE_MISMATCH);
    DOC_STATUS("bsvi_estimator_giwae",
               bsvi_estimator_giwae(e, 2, 3, (const double[]){-1, -2, NAN, -1, -2, -3}, lq, w3),
               BSVI_ERR_BAD_VALUE);
    DOC_STATUS("bsvi_estimator_giwae",
               bsvi_estimator_giwae(e, 2, 3, (const double[]){-1, -2, 1e308, -1, -2, -3},
                                    (const double[]){-1, -1, -1e308, -1, -1, -1}, w3),
               BSVI_ERR_NUMERIC);
    DOC_STATUS("bsvi_estimator_giwae",
               bsvi_estimator_giwae(e, 2, 3,
                                    (const double[]){-1, -2, -3, -INFINITY, -INFINITY, -INFINITY},
                                    lq, NULL),
               BSVI_ERR_NUMERIC);
    bsvi_estimator_destroy(e);
    e = (bsvi_estimator *)(void *)&e;
    DOC_STATUS("bsvi_estimator_create", bsvi_estimator_create(0, &e), BSVI_ERR_ZERO_SIZE);
    assert_null(e);
    DOC_STATUS("bsvi_estimator_create", bsvi_estimator_create(BSVI_MAX_DIM + 1, &e),
               BSVI_ERR_OUT_OF_RANGE);
    DOC_STATUS("bsvi_estimator_create", bsvi_estimator_create(2, NULL), BSVI_ERR_NULL_ARGUMENT);

    /* name helpers */
    bsvi_bound bo;
    bsvi_step_rule ru;
    bsvi_grad_form gf;
    bsvi_divergence_policy dp;
    DOC_STATUS("bsvi_bound_from_name", bsvi_bound_from_name("bsvi-sir", &bo), BSVI_OK);
    DOC_STATUS("bsvi_bound_from_name", bsvi_bound_from_name("BSVI", &bo), BSVI_ERR_BAD_VALUE);
    DOC_STATUS("bsvi_bound_from_name", bsvi_bound_from_name(NULL, &bo), BSVI_ERR_NULL_ARGUMENT);
    DOC_STATUS("bsvi_bound_from_name", bsvi_bound_from_name("elbo", NULL), BSVI_ERR_NULL_ARGUMENT);
    DOC_STATUS("bsvi_step_rule_from_name", bsvi_step_rule_from_name("adam", &ru), BSVI_OK);
    DOC_STATUS("bsvi_step_rule_from_name", bsvi_step_rule_from_name("sgd", &ru),
               BSVI_ERR_BAD_VALUE);
    DOC_STATUS("bsvi_step_rule_from_name", bsvi_step_rule_from_name(NULL, &ru),
               BSVI_ERR_NULL_ARGUMENT);
    DOC_STATUS("bsvi_grad_form_from_name", bsvi_grad_form_from_name("dreg", &gf), BSVI_OK);
    DOC_STATUS("bsvi_grad_form_from_name", bsvi_grad_form_from_name("", &gf), BSVI_ERR_BAD_VALUE);
    DOC_STATUS("bsvi_grad_form_from_name", bsvi_grad_form_from_name(NULL, &gf),
               BSVI_ERR_NULL_ARGUMENT);
    DOC_STATUS("bsvi_divergence_policy_from_name",
               bsvi_divergence_policy_from_name("freeze", &dp), BSVI_OK);
    DOC_STATUS("bsvi_divergence_policy_from_name",
               bsvi_divergence_policy_from_name("frozen", &dp), BSVI_ERR_BAD_VALUE);
    DOC_STATUS("bsvi_divergence_policy_from_name", bsvi_divergence_policy_from_name("fail", NULL),
               BSVI_ERR_NULL_ARGUMENT);

    /* SVI options and getters */
    bsvi_svi_options so = bsvi_svi_options_default(), bad;
    DOC_STATUS("bsvi_svi_set_options", bsvi_svi_set_options(svi, &so), BSVI_OK);
    DOC_STATUS("bsvi_svi_set_options", bsvi_svi_set_options(svi, NULL), BSVI_ERR_NULL_ARGUMENT);
    DOC_STATUS("bsvi_svi_set_options", bsvi_svi_set_options(NULL, &so), BSVI_ERR_NULL_ARGUMENT);
    bad = so, bad.samples_per_step = 0;
    DOC_STATUS("bsvi_svi_set_options", bsvi_svi_set_options(svi, &bad), BSVI_ERR_ZERO_SIZE);
    bad = so, bad.samples_per_step = BSVI_MAX_SAMPLES + 1;
    DOC_STATUS("bsvi_svi_set_options", bsvi_svi_set_options(svi, &bad), BSVI_ERR_OUT_OF_RANGE);
    bad = so, bad.steps = BSVI_MAX_STEPS + 1;
    DOC_STATUS("bsvi_svi_set_options", bsvi_svi_set_options(svi, &bad), BSVI_ERR_OUT_OF_RANGE);
    bad = so, bad.step_size = -1.0;
    DOC_STATUS("bsvi_svi_set_options", bsvi_svi_set_options(svi, &bad), BSVI_ERR_BAD_VALUE);
    bad = so, bad.grad_form = BSVI_GRAD_DREG;
    DOC_STATUS("bsvi_svi_set_options", bsvi_svi_set_options(svi, &bad), BSVI_ERR_BAD_VALUE);
    DOC_STATUS("bsvi_svi_get_options", bsvi_svi_get_options(svi, &bad), BSVI_OK);
    DOC_STATUS("bsvi_svi_get_options", bsvi_svi_get_options(svi, NULL), BSVI_ERR_NULL_ARGUMENT);
    DOC_STATUS("bsvi_svi_get_stream", bsvi_svi_get_stream(svi, NULL, &u64, NULL), BSVI_OK);
    DOC_STATUS("bsvi_svi_get_stream", bsvi_svi_get_stream(NULL, NULL, &u64, NULL),
               BSVI_ERR_NULL_ARGUMENT);
    DOC_STATUS("bsvi_svi_get_stats", bsvi_svi_get_stats(svi, &stats), BSVI_OK);
    DOC_STATUS("bsvi_svi_get_stats", bsvi_svi_get_stats(svi, NULL), BSVI_ERR_NULL_ARGUMENT);
    DOC_STATUS("bsvi_svi_reset_stats", bsvi_svi_reset_stats(svi), BSVI_OK);
    DOC_STATUS("bsvi_svi_reset_stats", bsvi_svi_reset_stats(NULL), BSVI_ERR_NULL_ARGUMENT);

    /* evaluator */
    bsvi_evaluator *ev = NULL;
    TU_OK(bsvi_evaluator_create(2, &ev));
    DOC_STATUS("bsvi_evaluator_get_steps_taken", bsvi_evaluator_get_steps_taken(ev, sz, 2),
               BSVI_ERR_BAD_STATE);
    DOC_STATUS("bsvi_evaluator_get_svi_options", bsvi_evaluator_get_svi_options(ev, &bad),
               BSVI_OK);
    DOC_STATUS("bsvi_evaluator_get_svi_options", bsvi_evaluator_get_svi_options(ev, NULL),
               BSVI_ERR_NULL_ARGUMENT);
    bad = so, bad.samples_per_step = 0;
    DOC_STATUS("bsvi_evaluator_set_svi_options", bsvi_evaluator_set_svi_options(ev, &bad),
               BSVI_ERR_ZERO_SIZE);
    bad = so, bad.samples_per_step = BSVI_MAX_SAMPLES + 1;
    DOC_STATUS("bsvi_evaluator_set_svi_options", bsvi_evaluator_set_svi_options(ev, &bad),
               BSVI_ERR_OUT_OF_RANGE);
    bad = so, bad.momentum = 1.0;
    DOC_STATUS("bsvi_evaluator_set_svi_options", bsvi_evaluator_set_svi_options(ev, &bad),
               BSVI_ERR_BAD_VALUE);
    DOC_STATUS("bsvi_evaluator_set_svi_options", bsvi_evaluator_set_svi_options(ev, NULL),
               BSVI_ERR_NULL_ARGUMENT);
    TU_OK(bsvi_evaluator_bsvi(ev, m, q, 3, out, NULL));
    DOC_STATUS("bsvi_evaluator_get_steps_taken", bsvi_evaluator_get_steps_taken(ev, sz, 2),
               BSVI_OK);
    assert_true(sz[0] == 2 && sz[1] == 2);
    DOC_STATUS("bsvi_evaluator_get_steps_taken", bsvi_evaluator_get_steps_taken(ev, sz, 3),
               BSVI_ERR_SIZE_MISMATCH);
    DOC_STATUS("bsvi_evaluator_get_steps_taken", bsvi_evaluator_get_steps_taken(ev, NULL, 2),
               BSVI_ERR_NULL_ARGUMENT);
    DOC_STATUS("bsvi_evaluator_get_stream", bsvi_evaluator_get_stream(ev, NULL, NULL, &u64),
               BSVI_OK);
    DOC_STATUS("bsvi_evaluator_get_stream", bsvi_evaluator_get_stream(NULL, NULL, NULL, &u64),
               BSVI_ERR_NULL_ARGUMENT);
    DOC_STATUS("bsvi_evaluator_get_stats", bsvi_evaluator_get_stats(ev, &stats), BSVI_OK);
    DOC_STATUS("bsvi_evaluator_get_stats", bsvi_evaluator_get_stats(ev, NULL),
               BSVI_ERR_NULL_ARGUMENT);
    DOC_STATUS("bsvi_evaluator_reset_stats", bsvi_evaluator_reset_stats(ev), BSVI_OK);
    DOC_STATUS("bsvi_evaluator_reset_stats", bsvi_evaluator_reset_stats(NULL),
               BSVI_ERR_NULL_ARGUMENT);

    /* health */
    bsvi_health h;
    DOC_STATUS("bsvi_trajectory_health", bsvi_trajectory_health(t, w3, &h), BSVI_OK);
    DOC_STATUS("bsvi_trajectory_health", bsvi_trajectory_health(t, NULL, &h), BSVI_OK);
    DOC_STATUS("bsvi_trajectory_health", bsvi_trajectory_health(t, w4, &h), BSVI_ERR_SIZE_MISMATCH);
    DOC_STATUS("bsvi_trajectory_health", bsvi_trajectory_health(empty, NULL, &h),
               BSVI_ERR_BAD_STATE);
    DOC_STATUS("bsvi_trajectory_health", bsvi_trajectory_health(t, NULL, NULL),
               BSVI_ERR_NULL_ARGUMENT);
    DOC_STATUS("bsvi_trajectory_health", bsvi_trajectory_health(NULL, NULL, &h),
               BSVI_ERR_NULL_ARGUMENT);
    DOC_STATUS("bsvi_trajectory_health", bsvi_trajectory_health(tz, NULL, &h), BSVI_OK);
    assert_int_equal(h.zero_svi0, 1);
    assert_int_equal(h.zero_svik, 1);
    assert_int_equal(h.zero_bsvik, 1);
    assert_true(isfinite(h.svi0) && isfinite(h.svik) && isfinite(h.bsvik));

    /* buffer weights (test_weights.c checks every path; one of each status here) */
    bsvi_buffer_weights *w = NULL;
    DOC_STATUS("bsvi_buffer_weights_create", bsvi_buffer_weights_create(0, &w),
               BSVI_ERR_ZERO_SIZE);
    DOC_STATUS("bsvi_buffer_weights_create", bsvi_buffer_weights_create(BSVI_MAX_STEPS + 2, &w),
               BSVI_ERR_OUT_OF_RANGE);
    DOC_STATUS("bsvi_buffer_weights_set_probs", bsvi_buffer_weights_set_probs(w3, out, 2),
               BSVI_ERR_SIZE_MISMATCH);
    DOC_STATUS("bsvi_buffer_weights_set_probs",
               bsvi_buffer_weights_set_probs(w3, (const double[]){0.5, 0.5, 0.5}, 3),
               BSVI_ERR_BAD_VALUE);
    DOC_STATUS("bsvi_buffer_weights_set_logits",
               bsvi_buffer_weights_set_logits(w3, (const double[]){0.0, NAN, 0.0}, 3),
               BSVI_ERR_BAD_VALUE);
    DOC_STATUS("bsvi_buffer_weights_accumulate", bsvi_buffer_weights_accumulate(w3, empty),
               BSVI_ERR_BAD_STATE);
    DOC_STATUS("bsvi_buffer_weights_accumulate", bsvi_buffer_weights_accumulate(w4, t),
               BSVI_ERR_SIZE_MISMATCH);
    DOC_STATUS("bsvi_buffer_weights_accumulate", bsvi_buffer_weights_accumulate(w3, tz), BSVI_OK);
    DOC_STATUS("bsvi_buffer_weights_accumulate_terms",
               bsvi_buffer_weights_accumulate_terms(w3, 1, 3, (const double[]){1e308, 0, 0},
                                                    (const double[]){-1e308, 0, 0}),
               BSVI_ERR_NUMERIC);
    DOC_STATUS("bsvi_buffer_weights_set_gradient",
               bsvi_buffer_weights_set_gradient(w3, (const double[]){0, INFINITY, 0}, 1, 3),
               BSVI_ERR_BAD_VALUE);
    DOC_STATUS("bsvi_buffer_weights_set_logits",
               bsvi_buffer_weights_set_logits(w3, (const double[]){1.7e308, -1.7e308, 0.0}, 3),
               BSVI_OK);
    DOC_STATUS("bsvi_buffer_weights_set_gradient",
               bsvi_buffer_weights_set_gradient(w3, (const double[]){1.0, -1.0, 0.0}, 1, 3),
               BSVI_OK);
    DOC_STATUS("bsvi_buffer_weights_step", bsvi_buffer_weights_step(w3), BSVI_ERR_NUMERIC);

    bsvi_buffer_weights_destroy(w3);
    bsvi_buffer_weights_destroy(w4);
    bsvi_evaluator_destroy(ev);
    bsvi_trajectory_destroy(t);
    bsvi_trajectory_destroy(tz);
    bsvi_trajectory_destroy(empty);
    bsvi_trajectory_destroy(t3);
    bsvi_svi_destroy(svi);
    bsvi_proposal_destroy(q);
    bsvi_model_destroy(m);
    bsvi_model_destroy(mz);
    bsvi_model_destroy(m3);
    bsvi_model_destroy(nolik);
    bsvi_model_destroy(hp);
    bsvi_model_destroy(mfail);
    bsvi_model_destroy(mnan);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lists_well_formed),
        cmocka_unit_test(test_evaluator_numeric_documented),
        cmocka_unit_test(test_new_functions_documented),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
