/* float32 networks against float64 networks of the same code (issue: speed).
 *
 * Reads what the CTest fixtures wrote before it runs (examples/vae/CMakeLists.txt):
 *  - grads32.bin / grads64.bin from vae_grad_dump and vae_grad_dump64: one training
 *    step's gradient per method from the same start and the same draws;
 *  - epoch32/log.csv / epoch64/log.csv from `vae train` and `vae64 train`, one epoch
 *    of bsvi-sir on the shipped subset with the same seed.
 * Checks:
 *  - per method, the batch-mean bound agrees within BOUND_TOL nats, and the
 *    relative L2 difference of the gradient, ||g32 - g64|| / ||g64||, separately
 *    over the encoder's and the decoder's parameters, is below GRAD_TOL
 *    (measured here: at most 4.9e-7, so the tolerance is 10x that; for the methods
 *    that resample, GRAD_TOL_SIR is the same: on another BLAS, a resampling draw
 *    falling on the other side of a cumulative weight between the two builds would
 *    pick another target row for that data point, and this test would say so);
 *  - after one epoch, training and validation bounds agree within EPOCH_TOL nats.
 * The measured figures are printed, so the log says how much margin there is. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "train.h"

#define BOUND_TOL 0.01
#define GRAD_TOL 5e-6
#define GRAD_TOL_SIR 5e-6
#define EPOCH_TOL 0.1
#define MAX_CASES 16

typedef struct grad_case {
    uint32_t method, lik;
    uint64_t n_encoder, nparams;
    double bound;
    double *g;
} grad_case;

static size_t read_cases(const char *path, grad_case *cs) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        print_error("cannot open %s\n", path);
        return 0;
    }
    size_t n = 0;
    while (n < MAX_CASES) {
        grad_case *c = &cs[n];
        uint32_t hdr[2];
        uint64_t sizes[2];
        if (fread(hdr, sizeof hdr, 1, f) != 1) break;
        if (fread(sizes, sizeof sizes, 1, f) != 1 || fread(&c->bound, sizeof c->bound, 1, f) != 1)
            break;
        c->method = hdr[0], c->lik = hdr[1], c->n_encoder = sizes[0], c->nparams = sizes[1];
        if (c->nparams == 0 || c->nparams > 100000000u || c->n_encoder > c->nparams) break;
        c->g = malloc(c->nparams * sizeof *c->g);
        if (!c->g || fread(c->g, sizeof *c->g, c->nparams, f) != c->nparams) {
            free(c->g);
            break;
        }
        ++n;
    }
    fclose(f);
    return n;
}

static double rel_l2(const double *a, const double *b, size_t lo, size_t hi) {
    double num = 0.0, den = 0.0;
    for (size_t i = lo; i < hi; ++i) {
        num += (a[i] - b[i]) * (a[i] - b[i]);
        den += b[i] * b[i];
    }
    return den > 0.0 ? sqrt(num / den) : sqrt(num);
}

static void test_gradients(void **state) {
    (void)state;
    static grad_case c32[MAX_CASES], c64[MAX_CASES];
    const size_t n32 = read_cases(VAE_TEST_TMPDIR "/grads32.bin", c32);
    const size_t n64 = read_cases(VAE_TEST_TMPDIR "/grads64.bin", c64);
    assert_true(n32 == VAE_NUM_METHODS + 1); /* every method, then bsvi-sir with the logistic */
    assert_int_equal(n32, n64);
    fprintf(stderr, "%-12s %-9s %12s %12s %10s %12s %12s\n", "method", "lik", "bound f32",
            "bound f64", "|diff|", "rel enc", "rel dec");
    for (size_t i = 0; i < n32; ++i) {
        const grad_case *a = &c32[i], *b = &c64[i];
        assert_int_equal(a->method, b->method);
        assert_int_equal(a->lik, b->lik);
        assert_int_equal(a->nparams, b->nparams);
        const double enc = rel_l2(a->g, b->g, 0, a->n_encoder);
        const double dec = rel_l2(a->g, b->g, a->n_encoder, a->nparams);
        const double db = fabs(a->bound - b->bound);
        fprintf(stderr, "%-12s %-9s %12.4f %12.4f %10.2e %12.2e %12.2e\n",
                vae_method_name((vae_method)a->method), a->lik ? "logistic" : "bernoulli",
                a->bound, b->bound, db, enc, dec);
        const int sir = a->method == VAE_METHOD_BSVI_SIR || a->method == VAE_METHOD_BSVI_SIR_PI;
        const double tol = sir ? GRAD_TOL_SIR : GRAD_TOL;
        assert_true(isfinite(a->bound) && db < BOUND_TOL);
        assert_true(enc < tol);
        assert_true(dec < tol);
    }
    for (size_t i = 0; i < n32; ++i) free(c32[i].g), free(c64[i].g);
}

/* Columns 3 (train_bound) and 8 (valid_bound) of the last line of a log.csv. */
static int last_bounds(const char *path, double *train, double *valid) {
    FILE *f = fopen(path, "r");
    if (!f) return 1;
    char line[2048], last[2048] = "";
    while (fgets(line, sizeof line, f)) memcpy(last, line, sizeof line);
    fclose(f);
    char *tok = strtok(last, ",");
    for (int col = 1; tok; ++col, tok = strtok(NULL, ",")) {
        if (col == 3) *train = strtod(tok, NULL);
        if (col == 8) {
            *valid = strtod(tok, NULL);
            return 0;
        }
    }
    return 1;
}

static void test_one_epoch(void **state) {
    (void)state;
    double t32 = NAN, v32 = NAN, t64 = NAN, v64 = NAN;
    assert_int_equal(last_bounds(VAE_TEST_TMPDIR "/epoch32/log.csv", &t32, &v32), 0);
    assert_int_equal(last_bounds(VAE_TEST_TMPDIR "/epoch64/log.csv", &t64, &v64), 0);
    fprintf(stderr, "one epoch of bsvi-sir: train %.4f / %.4f (diff %.2e), valid %.4f / %.4f "
                    "(diff %.2e) nats, float32 / float64\n",
            t32, t64, fabs(t32 - t64), v32, v64, fabs(v32 - v64));
    assert_true(isfinite(t32) && isfinite(v32));
    assert_true(fabs(t32 - t64) < EPOCH_TOL);
    assert_true(fabs(v32 - v64) < EPOCH_TOL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradients),
        cmocka_unit_test(test_one_epoch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
