/* Gradient check of the VAE's hand-written backward passes (nn.c) against
 * central finite differences, in double, on a tiny network built by the same
 * code (x_dim 7, h_dim 5, z_dim 3).
 *
 * Checked: encoder d/dparams and d/dx; decoder d/dparams (with per-row
 * coefficients and repeated data indices, as the library's targets give them)
 * and d/dz, for the Bernoulli and the discretised-logistic likelihoods
 * (including the learned log-scale and the edge bins 0 and 255). Also: the
 * discretised logistic sums to 1 over the 256 gray levels, and the Bernoulli
 * log-likelihood equals the naive formula.
 *
 * Tolerance: step h = 1e-5; an analytic gradient a and a numerical one n agree
 * when |a - n| <= 1e-6 * max(1, |a|, |n|). Central differences have error
 * O(h^2 * f''') ~ 1e-10 here and rounding error ~ 1e-16 * |f| / h ~ 1e-10, so
 * 1e-6 leaves a wide margin while catching any wrong term (which gives errors
 * of order |a|).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nn.h"

#define TX 7
#define TH 5
#define TZ 3
#define TN 6      /* latent rows */
#define TB 3      /* data points */
#define FD_STEP 1e-5
#define FD_TOL 1e-6

static uint64_t rng_state = 12345;

static double urand(void) { /* uniform (-1, 1) */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return ((double)(z >> 11) + 0.5) * 0x1.0p-52 - 1.0;
}

typedef struct fixture {
    vae_net net;
    vae_ws ws;
    double x[TB * TX];
    double z[TN * TZ];
    size_t idx[TN];
    double coef[TN];
    double enc_in[TN * TX];
    double wa[TN * TZ], wb[TN * TZ]; /* encoder objective weights */
} fixture;

static void setup(fixture *f, vae_likelihood lik) {
    assert_int_equal(vae_net_init(&f->net, TX, TH, TZ, lik), 0);
    assert_int_equal(vae_ws_init(&f->ws, &f->net, TN), 0);
    double mean[TX];
    for (size_t j = 0; j < TX; ++j) mean[j] = 0.1 + 0.1 * (double)j;
    vae_net_randomize(&f->net, 7, mean);
    /* perturb every parameter so that no bias is special */
    for (size_t i = 0; i < f->net.nparams; ++i) f->net.params[i] += 0.3 * urand();
    if (lik == VAE_LIK_LOGISTIC) f->net.p.log_scale[0] = log(0.05);
    for (size_t b = 0; b < TB; ++b)
        for (size_t j = 0; j < TX; ++j) {
            if (lik == VAE_LIK_BERNOULLI) {
                f->x[b * TX + j] = urand() > 0.0 ? 1.0 : 0.0;
            } else {
                /* include both edge bins and interior levels */
                double v = floor(128.0 + 127.9 * urand());
                if ((b * TX + j) % 5 == 0) v = 0.0;
                if ((b * TX + j) % 7 == 3) v = 255.0;
                f->x[b * TX + j] = v;
            }
        }
    for (size_t i = 0; i < TN * TZ; ++i) f->z[i] = 1.5 * urand();
    for (size_t r = 0; r < TN; ++r) {
        f->idx[r] = (r * 2) % TB; /* repeated indices, out of order */
        f->coef[r] = 0.2 + 0.5 * (urand() + 1.0);
    }
    for (size_t i = 0; i < TN * TX; ++i) f->enc_in[i] = urand() > 0.0 ? 1.0 : 0.3 * urand();
    for (size_t i = 0; i < TN * TZ; ++i) {
        f->wa[i] = urand();
        f->wb[i] = urand();
    }
}

static void teardown(fixture *f) {
    vae_ws_free(&f->ws);
    vae_net_free(&f->net);
}

static int close_enough(double a, double n) {
    double scale = fabs(a) > fabs(n) ? fabs(a) : fabs(n);
    if (scale < 1.0) scale = 1.0;
    return fabs(a - n) <= FD_TOL * scale;
}

/* sum_r coef[r] * log p(x_idx[r] | z_r) */
static double decoder_objective(fixture *f) {
    double ll[TN];
    vae_decoder_log_lik(&f->net, &f->ws, TN, f->z, f->x, f->idx, ll, NULL);
    double s = 0.0;
    for (size_t r = 0; r < TN; ++r) s += f->coef[r] * ll[r];
    return s;
}

/* sum_n wa . mean_n + wb . log_std_n */
static double encoder_objective(fixture *f) {
    double mean[TN * TZ], ls[TN * TZ];
    vae_encoder_forward(&f->net, &f->ws, TN, f->enc_in, mean, ls);
    double s = 0.0;
    for (size_t i = 0; i < TN * TZ; ++i) s += f->wa[i] * mean[i] + f->wb[i] * ls[i];
    return s;
}

static size_t check_params(fixture *f, size_t first, size_t last, double (*obj)(fixture *),
                           const double *analytic) {
    size_t bad = 0;
    for (size_t i = first; i < last; ++i) {
        const double keep = f->net.params[i];
        f->net.params[i] = keep + FD_STEP;
        const double up = obj(f);
        f->net.params[i] = keep - FD_STEP;
        const double dn = obj(f);
        f->net.params[i] = keep;
        const double num = (up - dn) / (2.0 * FD_STEP);
        if (!close_enough(analytic[i], num)) {
            if (bad < 5) print_error("param %zu: analytic %.12g numeric %.12g\n", i, analytic[i], num);
            ++bad;
        }
    }
    return bad;
}

static void decoder_param_check(vae_likelihood lik) {
    fixture f;
    setup(&f, lik);
    vae_net_zero_grads(&f.net);
    double ll[TN], ll2[TN];
    vae_decoder_accumulate(&f.net, &f.ws, TN, f.z, f.x, f.idx, f.coef, ll);
    vae_decoder_log_lik(&f.net, &f.ws, TN, f.z, f.x, f.idx, ll2, NULL);
    for (size_t r = 0; r < TN; ++r) {
        assert_true(isfinite(ll[r]));
        assert_true(ll[r] < 0.0);
        assert_true(fabs(ll[r] - ll2[r]) <= 1e-12 * fabs(ll[r]));
    }
    double *analytic = malloc(f.net.nparams * sizeof *analytic);
    assert_non_null(analytic);
    memcpy(analytic, f.net.grads, f.net.nparams * sizeof *analytic);
    /* encoder gradients untouched */
    for (size_t i = 0; i < f.net.n_encoder; ++i) assert_true(analytic[i] == 0.0);
    /* the log-scale is a parameter only for the logistic likelihood */
    const size_t last = f.net.nparams - (lik == VAE_LIK_LOGISTIC ? 0 : 1);
    if (lik == VAE_LIK_BERNOULLI) assert_true(analytic[f.net.nparams - 1] == 0.0);
    else assert_true(analytic[f.net.nparams - 1] != 0.0);
    assert_int_equal(check_params(&f, f.net.n_encoder, last, decoder_objective, analytic), 0);
    free(analytic);
    teardown(&f);
}

static void decoder_z_check(vae_likelihood lik) {
    fixture f;
    setup(&f, lik);
    double ll[TN], dz[TN * TZ];
    vae_net_zero_grads(&f.net);
    vae_decoder_log_lik(&f.net, &f.ws, TN, f.z, f.x, f.idx, ll, dz);
    for (size_t i = 0; i < f.net.nparams; ++i) assert_true(f.net.grads[i] == 0.0);
    size_t bad = 0;
    for (size_t r = 0; r < TN; ++r)
        for (size_t j = 0; j < TZ; ++j) {
            double *zz = &f.z[r * TZ + j];
            const double keep = *zz;
            double lu[TN], ld[TN];
            *zz = keep + FD_STEP;
            vae_decoder_log_lik(&f.net, &f.ws, TN, f.z, f.x, f.idx, lu, NULL);
            *zz = keep - FD_STEP;
            vae_decoder_log_lik(&f.net, &f.ws, TN, f.z, f.x, f.idx, ld, NULL);
            *zz = keep;
            for (size_t rr = 0; rr < TN; ++rr) {
                const double num = (lu[rr] - ld[rr]) / (2.0 * FD_STEP);
                const double ana = rr == r ? dz[r * TZ + j] : 0.0; /* rows are independent */
                if (!close_enough(ana, num)) {
                    if (bad < 5) print_error("z[%zu][%zu] row %zu: analytic %.12g numeric %.12g\n",
                                             r, j, rr, ana, num);
                    ++bad;
                }
            }
        }
    assert_int_equal(bad, 0);
    teardown(&f);
}

static void test_decoder_params_bernoulli(void **state) {
    (void)state;
    decoder_param_check(VAE_LIK_BERNOULLI);
}
static void test_decoder_params_logistic(void **state) {
    (void)state;
    decoder_param_check(VAE_LIK_LOGISTIC);
}
static void test_decoder_z_bernoulli(void **state) {
    (void)state;
    decoder_z_check(VAE_LIK_BERNOULLI);
}
static void test_decoder_z_logistic(void **state) {
    (void)state;
    decoder_z_check(VAE_LIK_LOGISTIC);
}

static void test_encoder(void **state) {
    (void)state;
    fixture f;
    setup(&f, VAE_LIK_BERNOULLI);
    double mean[TN * TZ], ls[TN * TZ], dx[TN * TX];
    vae_net_zero_grads(&f.net);
    vae_encoder_forward(&f.net, &f.ws, TN, f.enc_in, mean, ls);
    vae_encoder_backward(&f.net, &f.ws, TN, f.enc_in, f.wa, f.wb, dx);
    double *analytic = malloc(f.net.nparams * sizeof *analytic);
    assert_non_null(analytic);
    memcpy(analytic, f.net.grads, f.net.nparams * sizeof *analytic);
    for (size_t i = f.net.n_encoder; i < f.net.nparams; ++i) assert_true(analytic[i] == 0.0);
    assert_int_equal(check_params(&f, 0, f.net.n_encoder, encoder_objective, analytic), 0);
    free(analytic);
    size_t bad = 0;
    for (size_t i = 0; i < TN * TX; ++i) {
        const double keep = f.enc_in[i];
        f.enc_in[i] = keep + FD_STEP;
        const double up = encoder_objective(&f);
        f.enc_in[i] = keep - FD_STEP;
        const double dn = encoder_objective(&f);
        f.enc_in[i] = keep;
        if (!close_enough(dx[i], (up - dn) / (2.0 * FD_STEP))) ++bad;
    }
    assert_int_equal(bad, 0);
    teardown(&f);
}

/* One pixel: exp(log p) over the 256 gray levels sums to 1, for several means and scales. */
static void test_logistic_normalised(void **state) {
    (void)state;
    vae_net net;
    vae_ws ws;
    assert_int_equal(vae_net_init(&net, 1, 2, 1, VAE_LIK_LOGISTIC), 0);
    assert_int_equal(vae_ws_init(&ws, &net, 256), 0);
    vae_net_randomize(&net, 3, NULL);
    double x[256], z[256], ll[256];
    for (size_t v = 0; v < 256; ++v) {
        x[v] = (double)v;
        z[v] = 0.0;
    }
    const double means[] = {-1.3, -0.999, 0.0, 0.37, 1.0};
    const double scales[] = {-7.0, -4.0, -1.0, 1.0};
    for (size_t a = 0; a < sizeof means / sizeof *means; ++a)
        for (size_t c = 0; c < sizeof scales / sizeof *scales; ++c) {
            /* with z = 0 the output is tanh(b1)... -> set the output bias to hit the mean */
            memset(net.p.dec_w3, 0, net.h_dim * sizeof(double));
            net.p.dec_b3[0] = means[a];
            net.p.log_scale[0] = scales[c];
            vae_decoder_log_lik(&net, &ws, 256, z, x, NULL, ll, NULL);
            double total = 0.0;
            for (size_t v = 0; v < 256; ++v) {
                assert_true(isfinite(ll[v]));
                assert_true(ll[v] <= 0.0);
                total += exp(ll[v]);
            }
            assert_true(fabs(total - 1.0) < 1e-9);
        }
    vae_ws_free(&ws);
    vae_net_free(&net);
}

/* The stable Bernoulli formula equals x log s(l) + (1-x) log(1-s(l)) where both are representable. */
static void test_bernoulli_value(void **state) {
    (void)state;
    fixture f;
    setup(&f, VAE_LIK_BERNOULLI);
    double ll[TN];
    vae_decoder_log_lik(&f.net, &f.ws, TN, f.z, f.x, f.idx, ll, NULL);
    for (size_t r = 0; r < TN; ++r) {
        const double *l = f.ws.dec_out + r * TX, *xr = f.x + f.idx[r] * TX;
        double naive = 0.0;
        for (size_t j = 0; j < TX; ++j) {
            const double s = 1.0 / (1.0 + exp(-l[j]));
            naive += xr[j] * log(s) + (1.0 - xr[j]) * log(1.0 - s);
        }
        assert_true(fabs(naive - ll[r]) < 1e-10 * (1.0 + fabs(naive)));
    }
    teardown(&f);
}

/* AMSGrad: a quadratic objective -(p - 3)^2 per parameter is driven to its maximum. */
static void test_amsgrad(void **state) {
    (void)state;
    vae_net net;
    assert_int_equal(vae_net_init(&net, 2, 2, 1, VAE_LIK_BERNOULLI), 0);
    vae_net_randomize(&net, 1, NULL);
    for (int it = 0; it < 3000; ++it) {
        for (size_t i = 0; i < net.nparams; ++i) net.grads[i] = -2.0 * (net.params[i] - 3.0);
        vae_amsgrad_step(&net, 0.05, 0.9, 0.999, 1e-8);
    }
    for (size_t i = 0; i < net.nparams; ++i) assert_true(fabs(net.params[i] - 3.0) < 1e-2);
    vae_net_free(&net);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decoder_params_bernoulli),
        cmocka_unit_test(test_decoder_params_logistic),
        cmocka_unit_test(test_decoder_z_bernoulli),
        cmocka_unit_test(test_decoder_z_logistic),
        cmocka_unit_test(test_encoder),
        cmocka_unit_test(test_logistic_normalised),
        cmocka_unit_test(test_bernoulli_value),
        cmocka_unit_test(test_amsgrad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
