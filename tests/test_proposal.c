/* test_proposal.c: diagonal Gaussian proposals: parameters, sampling moments,
 * log density, entropy, KL, and bitwise reproducibility (seed, counter, split batch). */
#include "testutil.h"
#include "lingauss.h"

#include <stdlib.h>

#define LOG_2PI 1.8378770664093454835606594728112

static void make_params(size_t batch, size_t dim, double *mean, double *log_std)
{
    for (size_t b = 0; b < batch; ++b) {
        for (size_t j = 0; j < dim; ++j) {
            mean[b * dim + j] = 0.5 * (double)b - 0.7 * (double)j + 0.1;
            log_std[b * dim + j] = -0.6 + 0.35 * (double)((b + 2 * j) % 4);
        }
    }
}

static void test_create_and_params(void **state)
{
    (void)state;
    bsvi_proposal *q = (bsvi_proposal *)&q;
    TU_STATUS(bsvi_proposal_create(0, 2, &q), BSVI_ERR_ZERO_SIZE);
    assert_null(q);
    q = (bsvi_proposal *)&q;
    TU_STATUS(bsvi_proposal_create(2, 0, &q), BSVI_ERR_ZERO_SIZE);
    assert_null(q);
    TU_STATUS(bsvi_proposal_create(BSVI_MAX_BATCH + 1, 2, &q), BSVI_ERR_OUT_OF_RANGE);
    assert_null(q);
    TU_STATUS(bsvi_proposal_create(2, BSVI_MAX_DIM + 1, &q), BSVI_ERR_OUT_OF_RANGE);
    TU_STATUS(bsvi_proposal_create(2, 2, NULL), BSVI_ERR_NULL_ARGUMENT);

    TU_OK(bsvi_proposal_create(3, 2, &q));
    assert_int_equal(bsvi_proposal_batch(q), 3);
    assert_int_equal(bsvi_proposal_dim(q), 2);
    assert_int_equal(bsvi_proposal_batch(NULL), 0);
    assert_int_equal(bsvi_proposal_dim(NULL), 0);
    assert_string_equal(bsvi_proposal_last_error(q), "");
    /* Initialised to N(0, I). */
    double m[6], s[6];
    tu_fill(m, 6, TU_SENTINEL);
    tu_fill(s, 6, TU_SENTINEL);
    TU_OK(bsvi_proposal_get_params(q, m, s));
    for (size_t i = 0; i < 6; ++i) {
        assert_true(m[i] == 0.0 && s[i] == 0.0);
    }
    double kl[3];
    TU_OK(bsvi_proposal_kl_standard_normal(q, kl));
    for (size_t i = 0; i < 3; ++i) {
        assert_true(kl[i] == 0.0);
    }

    double mean[6], ls[6];
    make_params(3, 2, mean, ls);
    TU_OK(bsvi_proposal_set_params(q, mean, ls));
    /* Copied: later changes by the caller have no effect. */
    mean[0] = 99.0;
    TU_OK(bsvi_proposal_get_params(q, m, NULL));
    TU_OK(bsvi_proposal_get_params(q, NULL, s));
    make_params(3, 2, mean, ls);
    TU_BITWISE(m, mean, 6);
    TU_BITWISE(s, ls, 6);
    /* The boundaries of the log-std range are accepted. */
    double lsb[6] = {BSVI_MIN_LOG_STD, BSVI_MAX_LOG_STD, 0, 0, 0, 0};
    TU_OK(bsvi_proposal_set_params(q, mean, lsb));
    TU_OK(bsvi_proposal_set_params(q, mean, ls));

    /* Bad parameters: BAD_VALUE, previous parameters kept. */
    double bad[6];
    memcpy(bad, mean, sizeof bad);
    bad[3] = NAN;
    TU_STATUS(bsvi_proposal_set_params(q, bad, ls), BSVI_ERR_BAD_VALUE);
    TU_MESSAGE(bsvi_proposal_last_error(q));
    bad[3] = INFINITY;
    TU_STATUS(bsvi_proposal_set_params(q, bad, ls), BSVI_ERR_BAD_VALUE);
    memcpy(bad, ls, sizeof bad);
    bad[5] = BSVI_MIN_LOG_STD - 0.5;
    TU_STATUS(bsvi_proposal_set_params(q, mean, bad), BSVI_ERR_BAD_VALUE);
    bad[5] = BSVI_MAX_LOG_STD + 0.5;
    TU_STATUS(bsvi_proposal_set_params(q, mean, bad), BSVI_ERR_BAD_VALUE);
    bad[5] = NAN;
    TU_STATUS(bsvi_proposal_set_params(q, mean, bad), BSVI_ERR_BAD_VALUE);
    bad[5] = -INFINITY;
    TU_STATUS(bsvi_proposal_set_params(q, mean, bad), BSVI_ERR_BAD_VALUE);
    TU_STATUS(bsvi_proposal_set_params(q, NULL, ls), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_proposal_set_params(q, mean, NULL), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_proposal_set_params(NULL, mean, ls), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_proposal_get_params(NULL, m, s), BSVI_ERR_NULL_ARGUMENT);
    TU_OK(bsvi_proposal_get_params(q, m, s));
    TU_BITWISE(m, mean, 6);
    TU_BITWISE(s, ls, 6);
    bsvi_proposal_destroy(q);
    bsvi_proposal_destroy(NULL);
}

/* Sampling moments. N = 20000 samples per data point; every comparison uses a margin of
 * 5 standard errors computed from the known distribution (mean: sigma/sqrt(N); variance:
 * sigma^2 sqrt(2/N); fourth moment of eps: sqrt(96/N); correlation: 1/sqrt(N)). The seed is
 * fixed, so the outcome is deterministic; a correct implementation would fail one of these
 * 30 two-sided 5-sigma checks for a random seed with probability < 2e-5. */
static void test_sampling_moments(void **state)
{
    (void)state;
    const size_t B = 3, d = 2, N = 20000;
    double mean[6], ls[6];
    make_params(B, d, mean, ls);
    bsvi_proposal *q = NULL;
    TU_OK(lg_make_proposal(B, d, mean, ls, &q));
    TU_OK(bsvi_proposal_set_seed(q, 12345));
    double *z = tu_alloc(B * N * d), *eps = tu_alloc(B * N * d), *lq = tu_alloc(B * N);
    TU_OK(bsvi_proposal_sample(q, N, z, eps));
    TU_OK(bsvi_proposal_log_density(q, N, z, lq));
    double ent[3], kl[3];
    TU_OK(bsvi_proposal_entropy(q, ent));
    TU_OK(bsvi_proposal_kl_standard_normal(q, kl));
    const double sN = sqrt((double)N);
    for (size_t b = 0; b < B; ++b) {
        double closed_ent = 0.0, closed_kl = 0.0;
        for (size_t j = 0; j < d; ++j) {
            const double mu = mean[b * d + j], sig = exp(ls[b * d + j]);
            closed_ent += 0.5 * (LOG_2PI + 1.0) + ls[b * d + j];
            closed_kl += 0.5 * (mu * mu + sig * sig - 1.0 - 2.0 * ls[b * d + j]);
            double s1 = 0.0, s2 = 0.0, e4 = 0.0;
            for (size_t s = 0; s < N; ++s) {
                const size_t row = b * N + s;
                const double zz = z[row * d + j], e = eps[row * d + j];
                /* z = mean + sigma * eps exactly as documented. */
                TU_NEAR(zz, mu + sig * e, 1e-13 * (1.0 + fabs(zz)));
                s1 += zz;
                e4 += e * e * e * e;
            }
            const double m1 = s1 / (double)N;
            for (size_t s = 0; s < N; ++s) {
                const double dz = z[(b * N + s) * d + j] - m1;
                s2 += dz * dz;
            }
            const double var = s2 / (double)(N - 1);
            TU_NEAR(m1, mu, 5.0 * sig / sN);
            TU_NEAR(var, sig * sig, 5.0 * sig * sig * sqrt(2.0 / (double)N));
            TU_NEAR(e4 / (double)N, 3.0, 5.0 * sqrt(96.0 / (double)N));
        }
        /* Independence of coordinates: sample correlation of eps_0, eps_1. */
        double c = 0.0;
        for (size_t s = 0; s < N; ++s) {
            c += eps[(b * N + s) * d] * eps[(b * N + s) * d + 1];
        }
        TU_NEAR(c / (double)N, 0.0, 5.0 / sN);
        TU_NEAR(ent[b], closed_ent, 1e-12);
        TU_NEAR(kl[b], closed_kl, 1e-12);
        /* log q against the closed form at every sample; entropy = -E log q (MC, 5 SE). */
        double *neg = tu_alloc(N);
        for (size_t s = 0; s < N; ++s) {
            const size_t row = b * N + s;
            double closed = 0.0;
            for (size_t j = 0; j < d; ++j) {
                const double e = (z[row * d + j] - mean[b * d + j]) / exp(ls[b * d + j]);
                closed += -0.5 * LOG_2PI - ls[b * d + j] - 0.5 * e * e;
            }
            TU_NEAR(lq[row], closed, 1e-12);
            neg[s] = -lq[row];
        }
        double mn, se;
        tu_mean_se(neg, N, &mn, &se);
        TU_NEAR(mn, closed_ent, 5.0 * se);
        free(neg);
    }
    free(z);
    free(eps);
    free(lq);
    bsvi_proposal_destroy(q);
}

static void test_seed_reproducibility(void **state)
{
    (void)state;
    const size_t B = 4, d = 3, S = 5, n = B * S * d;
    double mean[12], ls[12];
    make_params(B, d, mean, ls);
    bsvi_proposal *q1 = NULL, *q2 = NULL;
    TU_OK(lg_make_proposal(B, d, mean, ls, &q1));
    TU_OK(lg_make_proposal(B, d, mean, ls, &q2));
    TU_OK(bsvi_proposal_set_seed(q1, 777));
    TU_OK(bsvi_proposal_set_seed(q2, 777));
    double *a = tu_alloc(n), *b = tu_alloc(n), *c = tu_alloc(n), *ea = tu_alloc(n),
           *eb = tu_alloc(n);
    TU_OK(bsvi_proposal_sample(q1, S, a, ea));
    TU_OK(bsvi_proposal_sample(q2, S, b, NULL));
    TU_BITWISE(a, b, n); /* same seed, same draws; eps output optional */
    /* The counter advanced: the second call differs. */
    TU_OK(bsvi_proposal_sample(q1, S, c, NULL));
    assert_true(tu_first_bit_difference(a, c, n) != (size_t)-1);
    /* set_seed resets the counter: the first draws repeat. */
    TU_OK(bsvi_proposal_set_seed(q1, 777));
    TU_OK(bsvi_proposal_sample(q1, S, b, eb));
    TU_BITWISE(a, b, n);
    TU_BITWISE(ea, eb, n);
    /* set_stream(1, 0) reproduces the second call. */
    TU_OK(bsvi_proposal_set_stream(q2, 1, 0));
    TU_OK(bsvi_proposal_sample(q2, S, b, NULL));
    TU_BITWISE(c, b, n);
    /* A different seed gives different draws. */
    TU_OK(bsvi_proposal_set_seed(q2, 778));
    TU_OK(bsvi_proposal_sample(q2, S, b, NULL));
    assert_true(tu_first_bit_difference(a, b, n) != (size_t)-1);
    /* Different data points get different noise even with equal parameters. */
    double same_m[12] = {0}, same_s[12] = {0};
    TU_OK(bsvi_proposal_set_params(q2, same_m, same_s));
    TU_OK(bsvi_proposal_sample(q2, S, b, NULL));
    assert_true(tu_first_bit_difference(b, b + S * d, S * d) != (size_t)-1);
    /* Different samples of one data point differ. */
    assert_true(tu_first_bit_difference(b, b + d, d) != (size_t)-1);
    free(a);
    free(b);
    free(c);
    free(ea);
    free(eb);
    bsvi_proposal_destroy(q1);
    bsvi_proposal_destroy(q2);
}

/* A batch split in two (second half with id_offset = first half's size and the same
 * counter) reproduces the whole-batch draws bitwise, for counter 0 and a later counter. */
static void test_split_batch(void **state)
{
    (void)state;
    const size_t B = 5, B1 = 2, B2 = 3, d = 3, S = 4;
    double mean[15], ls[15];
    make_params(B, d, mean, ls);
    bsvi_proposal *whole = NULL, *h1 = NULL, *h2 = NULL;
    TU_OK(lg_make_proposal(B, d, mean, ls, &whole));
    TU_OK(lg_make_proposal(B1, d, mean, ls, &h1));
    TU_OK(lg_make_proposal(B2, d, mean + B1 * d, ls + B1 * d, &h2));
    double zw[5 * 4 * 3], ew[5 * 4 * 3], z1[2 * 4 * 3], e1[2 * 4 * 3], z2[3 * 4 * 3],
        e2[3 * 4 * 3];
    for (uint64_t counter = 0; counter < 3; counter += 2) {
        TU_OK(bsvi_proposal_set_seed(whole, 99));
        TU_OK(bsvi_proposal_set_seed(h1, 99));
        TU_OK(bsvi_proposal_set_seed(h2, 99));
        TU_OK(bsvi_proposal_set_stream(whole, counter, 0));
        TU_OK(bsvi_proposal_set_stream(h1, counter, 0));
        TU_OK(bsvi_proposal_set_stream(h2, counter, B1));
        TU_OK(bsvi_proposal_sample(whole, S, zw, ew));
        TU_OK(bsvi_proposal_sample(h2, S, z2, e2)); /* order of the halves does not matter */
        TU_OK(bsvi_proposal_sample(h1, S, z1, e1));
        TU_BITWISE(zw, z1, B1 * S * d);
        TU_BITWISE(zw + B1 * S * d, z2, B2 * S * d);
        TU_BITWISE(ew, e1, B1 * S * d);
        TU_BITWISE(ew + B1 * S * d, e2, B2 * S * d);
    }
    bsvi_proposal_destroy(whole);
    bsvi_proposal_destroy(h1);
    bsvi_proposal_destroy(h2);
}

static void test_bad_input(void **state)
{
    (void)state;
    const size_t B = 2, d = 2;
    double mean[4] = {0.1, 0.2, 0.3, 0.4}, ls[4] = {0, -0.1, 0.2, 0.1};
    bsvi_proposal *q = NULL, *fresh = NULL;
    TU_OK(lg_make_proposal(B, d, mean, ls, &q));
    TU_OK(lg_make_proposal(B, d, mean, ls, &fresh));
    TU_OK(bsvi_proposal_set_seed(q, 5));
    TU_OK(bsvi_proposal_set_seed(fresh, 5));
    double z[2 * 3 * 2], eps[2 * 3 * 2], lq[6], out[2];
    tu_fill(z, 12, TU_SENTINEL);
    tu_fill(eps, 12, TU_SENTINEL);
    tu_fill(lq, 6, TU_SENTINEL);
    tu_fill(out, 2, TU_SENTINEL);
    TU_STATUS(bsvi_proposal_sample(NULL, 3, z, eps), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_proposal_sample(q, 3, NULL, eps), BSVI_ERR_NULL_ARGUMENT);
    TU_MESSAGE(bsvi_proposal_last_error(q));
    TU_STATUS(bsvi_proposal_sample(q, 0, z, eps), BSVI_ERR_ZERO_SIZE);
    TU_MESSAGE(bsvi_proposal_last_error(q));
    TU_STATUS(bsvi_proposal_sample(q, BSVI_MAX_SAMPLES + 1, z, eps), BSVI_ERR_OUT_OF_RANGE);
    TU_MESSAGE(bsvi_proposal_last_error(q));
    TU_UNTOUCHED(z, 12);
    TU_UNTOUCHED(eps, 12);
    TU_STATUS(bsvi_proposal_log_density(NULL, 3, z, lq), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_proposal_log_density(q, 3, NULL, lq), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_proposal_log_density(q, 3, z, NULL), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_proposal_log_density(q, 0, z, lq), BSVI_ERR_ZERO_SIZE);
    TU_STATUS(bsvi_proposal_log_density(q, BSVI_MAX_SAMPLES + 1, z, lq), BSVI_ERR_OUT_OF_RANGE);
    TU_UNTOUCHED(lq, 6);
    TU_STATUS(bsvi_proposal_entropy(NULL, out), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_proposal_entropy(q, NULL), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_proposal_kl_standard_normal(NULL, out), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_proposal_kl_standard_normal(q, NULL), BSVI_ERR_NULL_ARGUMENT);
    TU_UNTOUCHED(out, 2);
    TU_STATUS(bsvi_proposal_set_seed(NULL, 1), BSVI_ERR_NULL_ARGUMENT);
    TU_STATUS(bsvi_proposal_set_stream(NULL, 1, 1), BSVI_ERR_NULL_ARGUMENT);
    /* The failed calls did not advance the counter: the next draw equals a fresh handle's. */
    double zf[12];
    TU_OK(bsvi_proposal_sample(q, 3, z, NULL));
    TU_OK(bsvi_proposal_sample(fresh, 3, zf, NULL));
    TU_BITWISE(z, zf, 12);
    bsvi_proposal_destroy(q);
    bsvi_proposal_destroy(fresh);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_and_params),
        cmocka_unit_test(test_sampling_moments),
        cmocka_unit_test(test_seed_reproducibility),
        cmocka_unit_test(test_split_batch),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
