/* test_vexp.c: the library's vectorised exp (lib/vexp.c, internal) against libm.
 * Built from the source file itself (the function is hidden in the shipped library).
 * Checked: relative error over 4e6 points spread over [-700, 700] and over a fine grid
 * near 0, bitwise libm values outside [-700, 700] (overflow to inf, subnormals, zero),
 * NaN and +-inf, and block lengths that are not multiples of the vector width. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"

static void test_accuracy(void **state) {
    (void)state;
    const size_t n = 4000001;
    double *in = malloc(2 * n * sizeof *in);
    assert_non_null(in);
    double *out = in + n;
    for (size_t i = 0; i < n; ++i) in[i] = -700.0 + 1400.0 * (double)i / (double)(n - 1);
    bsvi__exp_array(out, in, n);
    double worst = 0.0;
    for (size_t i = 0; i < n; ++i) {
        const double r = exp(in[i]);
        const double e = fabs(out[i] - r) / r;
        if (e > worst) worst = e;
    }
    assert_true(worst <= 4e-16); /* about 2 ulp */
    for (size_t i = 0; i < n; ++i) in[i] = ((double)i - (double)(n / 2)) * 1e-9;
    bsvi__exp_array(out, in, n);
    worst = 0.0;
    for (size_t i = 0; i < n; ++i) {
        const double e = fabs(out[i] - exp(in[i])) / exp(in[i]);
        if (e > worst) worst = e;
    }
    assert_true(worst <= 4e-16);
    free(in);
}

static void test_edges(void **state) {
    (void)state;
    const double in[] = {700.0, 700.5, 709.0, 709.8, 710.0, 1e300, INFINITY, -700.0, -700.5,
                         -708.5, -720.0, -745.0, -746.0, -1e300, -INFINITY, 0.0, -0.0,
                         1e-300, NAN};
    enum { N = sizeof in / sizeof *in };
    double out[N];
    bsvi__exp_array(out, in, N);
    for (size_t i = 0; i < N; ++i) {
        if (isnan(in[i])) {
            assert_true(isnan(out[i]));
            continue;
        }
        const double r = exp(in[i]);
        if (fabs(in[i]) > 700.0) {
            assert_memory_equal(&r, &out[i], sizeof r); /* libm's value, bit for bit */
        } else {
            assert_true(fabs(out[i] - r) <= 4e-16 * r);
        }
    }
    /* lengths 0..9 (vector remainders) */
    double a[9], b[9];
    for (size_t len = 0; len <= 9; ++len) {
        for (size_t i = 0; i < len; ++i) a[i] = 0.37 * (double)i - 1.0;
        bsvi__exp_array(b, a, len);
        for (size_t i = 0; i < len; ++i) assert_true(fabs(b[i] - exp(a[i])) <= 4e-16 * exp(a[i]));
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accuracy),
        cmocka_unit_test(test_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
