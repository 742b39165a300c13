/* test_status_version.c: status strings and the version query. */
#include "testutil.h"

#include <stdio.h>
#include <string.h>

static const bsvi_status all_codes[] = {
    BSVI_OK,           BSVI_ERR_NULL_ARGUMENT,   BSVI_ERR_ZERO_SIZE,    BSVI_ERR_OUT_OF_RANGE,
    BSVI_ERR_BAD_VALUE, BSVI_ERR_SIZE_MISMATCH,  BSVI_ERR_CALLBACK_FAILED,
    BSVI_ERR_CALLBACK_NAN, BSVI_ERR_NO_MEMORY,   BSVI_ERR_BAD_STATE,    BSVI_ERR_NUMERIC,
    BSVI_ERR_CANCELLED, BSVI_ERR_REENTRANT,
};
#define NCODES (sizeof all_codes / sizeof all_codes[0])

static void test_explicit_values(void **state)
{
    (void)state;
    /* The enum values are ABI: never renumbered. */
    assert_int_equal(BSVI_OK, 0);
    assert_int_equal(BSVI_ERR_NULL_ARGUMENT, -1);
    assert_int_equal(BSVI_ERR_ZERO_SIZE, -2);
    assert_int_equal(BSVI_ERR_OUT_OF_RANGE, -3);
    assert_int_equal(BSVI_ERR_BAD_VALUE, -4);
    assert_int_equal(BSVI_ERR_SIZE_MISMATCH, -5);
    assert_int_equal(BSVI_ERR_CALLBACK_FAILED, -6);
    assert_int_equal(BSVI_ERR_CALLBACK_NAN, -7);
    assert_int_equal(BSVI_ERR_NO_MEMORY, -8);
    assert_int_equal(BSVI_ERR_BAD_STATE, -9);
    assert_int_equal(BSVI_ERR_NUMERIC, -10);
    assert_int_equal(BSVI_ERR_CANCELLED, -11);
    assert_int_equal(BSVI_ERR_REENTRANT, -12);
    assert_int_equal(BSVI_BOUND_ELBO, 0);
    assert_int_equal(BSVI_BOUND_IWAE, 1);
    assert_int_equal(BSVI_BOUND_SVI, 2);
    assert_int_equal(BSVI_BOUND_BSVI, 3);
    assert_int_equal(BSVI_BOUND_BSVI_DS, 4);
    assert_int_equal(BSVI_BOUND_BSVI_SIR, 5);
    assert_int_equal(BSVI_BOUND_GIWAE, 6);
    assert_int_equal(BSVI_STEP_GRADIENT, 0);
    assert_int_equal(BSVI_STEP_MOMENTUM, 1);
    assert_int_equal(BSVI_STEP_ADAM, 2);
    assert_int_equal(BSVI_GRAD_PATHWISE, 0);
    assert_int_equal(BSVI_GRAD_STL, 1);
    assert_int_equal(BSVI_GRAD_ANALYTIC_KL, 2);
    assert_int_equal(BSVI_GRAD_DREG, 3);
    assert_int_equal(BSVI_DIVERGENCE_FAIL, 0);
    assert_int_equal(BSVI_DIVERGENCE_FREEZE, 1);
    assert_int_equal(BSVI_POINTS_REPORT, 0);
    assert_int_equal(BSVI_POINTS_FAIL, 1);
}

static void test_status_strings_distinct(void **state)
{
    (void)state;
    const char *unknown = bsvi_status_string((bsvi_status)12345);
    assert_non_null(unknown);
    assert_string_equal(unknown, "unknown status");
    for (size_t i = 0; i < NCODES; ++i) {
        const char *s = bsvi_status_string(all_codes[i]);
        assert_non_null(s);
        if (s[0] == '\0') {
            print_error("status %d has an empty string\n", (int)all_codes[i]);
            fail();
        }
        /* Known codes must not fall back to the unknown text. */
        if (strcmp(s, unknown) == 0) {
            print_error("status %d reads \"%s\"\n", (int)all_codes[i], s);
            fail();
        }
        for (size_t j = 0; j < i; ++j) {
            const char *t = bsvi_status_string(all_codes[j]);
            if (strcmp(s, t) == 0 || s == t) {
                print_error("statuses %d and %d share the string \"%s\"\n", (int)all_codes[i],
                            (int)all_codes[j], s);
                fail();
            }
        }
    }
}

static void test_status_unknown_codes(void **state)
{
    (void)state;
    const int odd[] = {1, 2, -13, -100, 1000, -2147483647 - 1, 2147483647};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; ++i) {
        const char *s = bsvi_status_string((bsvi_status)odd[i]);
        assert_non_null(s);
        assert_string_equal(s, "unknown status");
    }
}

static void test_version(void **state)
{
    (void)state;
    assert_int_equal(BSVI_VERSION_NUMBER,
                     BSVI_VERSION_MAJOR * 10000 + BSVI_VERSION_MINOR * 100 + BSVI_VERSION_PATCH);
    assert_int_equal(bsvi_version_number(), BSVI_VERSION_NUMBER);
    char buf[64];
    snprintf(buf, sizeof buf, "%d.%d.%d", BSVI_VERSION_MAJOR, BSVI_VERSION_MINOR,
             BSVI_VERSION_PATCH);
    const char *v = bsvi_version_string();
    assert_non_null(v);
    assert_string_equal(v, buf);
    /* Static string: same pointer on every call. */
    assert_ptr_equal(v, bsvi_version_string());
}

static void test_last_error_null_handles(void **state)
{
    (void)state;
    /* Every last_error accepts NULL and returns a static string. */
    assert_non_null(bsvi_model_last_error(NULL));
    assert_non_null(bsvi_proposal_last_error(NULL));
    assert_non_null(bsvi_svi_last_error(NULL));
    assert_non_null(bsvi_trajectory_last_error(NULL));
    assert_non_null(bsvi_estimator_last_error(NULL));
    assert_non_null(bsvi_evaluator_last_error(NULL));
    assert_non_null(bsvi_buffer_weights_last_error(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_explicit_values),
        cmocka_unit_test(test_status_strings_distinct),
        cmocka_unit_test(test_status_unknown_codes),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_last_error_null_handles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
