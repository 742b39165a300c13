/* Gradient check of the VAE's hand-written backward passes (nn.c) against
 * central finite differences, in double, on a tiny network built by the same
 * code (x_dim 7, h_dim 5, z_dim 3).
 *
 * Checked: encoder d/dparams and d/dx; decoder d/dparams (with per-row
 * coefficients and repeated data indices, as the library's targets give them)
 * and d/dz, for the Bernoulli and the discretised-logistic likelihoods
 * (including the learned log-scale and the edge bins 0 and 255). Also: the
 * discretised logistic sums to 1 over the 256 gray levels, and the Bernoulli
 * log-likelihood equals the naive formula. The vectorised kernels of vmath.c
 * against libm: tanh over 2e6 points from 1e-300 to 1e3 of both signs and the
 * special values (relative error <= 1e-15), the Bernoulli and discretised-
 * logistic row kernels against scalar libm references (relative 1e-14 per row,
 * gradients absolute 1e-15 * scale), and NaN propagation.
 *
 * Tolerance: step h = 1e-5; an analytic gradient a and a numerical one n agree
 * when |a - n| <= 1e-6 * max(1, |a|, |n|). Central differences have error
 * O(h^2 * f''') ~ 1e-10 here and rounding error ~ 1e-16 * |f| / h ~ 1e-10, so
 * 1e-6 leaves a wide margin while catching any wrong term (which gives errors
 * of order |a|).
 */
#include <float.h>
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
#include "vmath.h"

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

/* vae_decoder_accumulate_reuse: after a forward on the same z it skips the forward and
 * gives the same gradients, bit for bit, as the plain accumulate; on other z it does
 * not reuse. */
static void reuse_check(vae_likelihood lik) {
    fixture f;
    setup(&f, lik);
    const size_t n = f.net.nparams;
    double *plain = malloc(n * sizeof *plain);
    assert_non_null(plain);
    double ll[TN], ll2[TN], dz[TN * TZ];
    vae_net_zero_grads(&f.net);
    vae_decoder_accumulate(&f.net, &f.ws, TN, f.z, f.x, f.idx, f.coef, ll);
    memcpy(plain, f.net.grads, n * sizeof *plain);

    vae_net_zero_grads(&f.net);
    vae_decoder_log_lik(&f.net, &f.ws, TN, f.z, f.x, f.idx, NULL, dz); /* as the callback */
    const uint64_t before = f.ws.reused;
    vae_decoder_accumulate_reuse(&f.net, &f.ws, TN, f.z, f.x, f.idx, f.coef, ll2);
    assert_true(f.ws.reused == before + 1);
    assert_memory_equal(plain, f.net.grads, n * sizeof *plain);
    assert_memory_equal(ll, ll2, sizeof ll);

    /* other rows: no reuse, still the plain result for those rows */
    f.z[0] += 0.25;
    vae_net_zero_grads(&f.net);
    vae_decoder_accumulate(&f.net, &f.ws, TN, f.z, f.x, f.idx, f.coef, ll);
    memcpy(plain, f.net.grads, n * sizeof *plain);
    f.z[0] -= 0.25;
    vae_decoder_log_lik(&f.net, &f.ws, TN, f.z, f.x, f.idx, NULL, NULL);
    f.z[0] += 0.25;
    vae_net_zero_grads(&f.net);
    vae_decoder_accumulate_reuse(&f.net, &f.ws, TN, f.z, f.x, f.idx, f.coef, ll2);
    assert_true(f.ws.reused == before + 1);
    assert_memory_equal(plain, f.net.grads, n * sizeof *plain);
    /* fewer rows than the last forward: no reuse either */
    vae_decoder_accumulate_reuse(&f.net, &f.ws, TN - 1, f.z, f.x, f.idx, f.coef, ll2);
    assert_true(f.ws.reused == before + 1);
    free(plain);
    teardown(&f);
}

static void test_reuse_bernoulli(void **state) {
    (void)state;
    reuse_check(VAE_LIK_BERNOULLI);
}

static void test_reuse_logistic(void **state) {
    (void)state;
    reuse_check(VAE_LIK_LOGISTIC);
}

/* ---- vmath.c against libm ---- */

static void test_vmath_tanh(void **state) {
    (void)state;
    const size_t n = 2000001;
    double *in = malloc(2 * n * sizeof *in);
    assert_non_null(in);
    double *out = in + n;
    for (size_t i = 0; i < n; ++i) {
        const double v = pow(10.0, -300.0 + 303.0 * (double)i / (double)(n - 1));
        in[i] = (i & 1) ? v : -v;
    }
    vm_tanh(out, in, n);
    double worst = 0.0;
    for (size_t i = 0; i < n; ++i) {
        const double r = tanh(in[i]);
        const double e = fabs(out[i] - r) / fabs(r);
        if (e > worst) worst = e;
    }
    assert_true(worst <= 1e-15);
    /* in place, and the special values */
    double sp[] = {0.0, -0.0, INFINITY, -INFINITY, 800.0, -800.0, 1e-320, NAN};
    vm_tanh(sp, sp, 8);
    assert_true(sp[0] == 0.0 && !signbit(sp[0]));
    assert_true(sp[1] == 0.0 && signbit(sp[1]));
    assert_true(sp[2] == 1.0 && sp[3] == -1.0 && sp[4] == 1.0 && sp[5] == -1.0);
    assert_true(sp[6] == 1e-320);
    assert_true(isnan(sp[7]));
    free(in);
}

static void test_vmath_bernoulli(void **state) {
    (void)state;
    enum { N = 1000 }; /* not a multiple of the kernel's block or of 4 */
    double l[N], x[N], g[N];
    for (int rep = 0; rep < 50; ++rep) {
        const double scale = pow(10.0, -8.0 + 0.2 * rep); /* logits up to ~1e2 */
        double ref = 0.0;
        for (size_t j = 0; j < N; ++j) {
            l[j] = scale * sin(0.37 * (double)j + rep) * 7.0;
            x[j] = (double)((j * 7 + (size_t)rep) % 3 == 0);
            ref += x[j] * l[j] - (l[j] > 0 ? l[j] : 0.0) - log1p(exp(-fabs(l[j])));
        }
        const double c = 0.5 + rep;
        const double v = vm_bernoulli_row(l, x, N, c, g);
        assert_true(fabs(v - ref) <= 1e-14 * fabs(ref));
        assert_true(vm_bernoulli_row(l, x, N, c, NULL) == v);
        for (size_t j = 0; j < N; ++j) {
            const double rg = c * (x[j] - 1.0 / (1.0 + exp(-l[j])));
            assert_true(fabs(g[j] - rg) <= 1e-15 * c);
        }
    }
    l[3] = NAN;
    assert_true(isnan(vm_bernoulli_row(l, x, N, 1.0, g)));
    assert_true(isnan(g[3]));
}

/* The scalar reference: the formulas of nn.h with libm. */
static double ref_logsig(double t) { return t >= 0.0 ? -log1p(exp(-t)) : t - log1p(exp(t)); }
static double ref_sig(double t) { return 1.0 / (1.0 + exp(-t)); }

static void test_vmath_logistic(void **state) {
    (void)state;
    enum { N = 777 };
    double mu[N], x[N], g[N];
    const double h = 1.0 / 255.0;
    const double log_scales[] = {-7.0, -4.5, -2.0, 0.0, 1.5};
    for (size_t k = 0; k < sizeof log_scales / sizeof *log_scales; ++k) {
        const double inv = exp(-log_scales[k]);
        const double delta = 2.0 * h * inv;
        const double log1m = log(-expm1(-delta)), inv_em1 = 1.0 / expm1(delta);
        double ref = 0.0, dref = 0.0;
        for (size_t j = 0; j < N; ++j) {
            x[j] = (double)((j * 37) % 256);
            if (j % 11 == 0) x[j] = 0.0;
            if (j % 13 == 0) x[j] = 255.0;
            mu[j] = x[j] / 127.5 - 1.0 + 0.05 * sin((double)j);
            const double cen = x[j] / 127.5 - 1.0 - mu[j];
            const double a = inv * (cen + h), b = inv * (cen - h);
            double f, dfa, dfb;
            if (x[j] < 0.5) {
                f = ref_logsig(a), dfa = ref_sig(-a), dfb = 0.0;
            } else if (x[j] > 254.5) {
                f = ref_logsig(-b), dfa = 0.0, dfb = -ref_sig(b);
            } else {
                f = ref_logsig(a) + ref_logsig(-b) + log1m;
                dfa = ref_sig(-a) + inv_em1;
                dfb = -ref_sig(b) - inv_em1;
            }
            ref += f;
            dref += -(a * dfa + b * dfb);
            g[j] = -inv * (dfa + dfb); /* reference gradient, compared below */
        }
        double gv[N], dls = NAN;
        const double c = 1.75;
        const double v = vm_logistic_row(mu, x, N, inv, h, log1m, inv_em1, c, gv, &dls);
        assert_true(fabs(v - ref) <= 1e-13 * fabs(ref));
        assert_true(fabs(dls - c * dref) <= 1e-12 * (1.0 + fabs(c * dref)));
        for (size_t j = 0; j < N; ++j)
            /* dfa + dfb cancels inv_em1 (~1/delta): both sides round at that scale */
            assert_true(fabs(gv[j] - c * g[j]) <= 1e-14 * c * inv * (1.0 + inv_em1));
        assert_true(vm_logistic_row(mu, x, N, inv, h, log1m, inv_em1, c, NULL, NULL) == v);
    }
}

/* ---- the float32 kernels against libm in double ---- */

static void test_vmath_tanh_f32(void **state) {
    (void)state;
    const size_t n = 2000001;
    float *in = malloc(2 * n * sizeof *in);
    assert_non_null(in);
    float *out = in + n;
    for (size_t i = 0; i < n; ++i) { /* 1e-37 .. 1e3, both signs */
        const float v = (float)pow(10.0, -37.0 + 40.0 * (double)i / (double)(n - 1));
        in[i] = (i & 1) ? v : -v;
    }
    vm_tanh_f32(out, in, n);
    double worst = 0.0;
    for (size_t i = 0; i < n; ++i) {
        const double r = tanh((double)in[i]);
        const double e = fabs((double)out[i] - r) / fabs(r);
        if (e > worst) worst = e;
    }
    fprintf(stderr, "vm_tanh_f32: max relative error %.3g (float eps %.3g)\n", worst,
            (double)FLT_EPSILON);
    assert_true(worst <= 4.0 * FLT_EPSILON);
    float sp[] = {0.0f, -0.0f, INFINITY, -INFINITY, 100.0f, -100.0f, 1e-40f, NAN};
    vm_tanh_f32(sp, sp, 8);
    assert_true(sp[0] == 0.0f && !signbit(sp[0]));
    assert_true(sp[1] == 0.0f && signbit(sp[1]));
    assert_true(sp[2] == 1.0f && sp[3] == -1.0f && sp[4] == 1.0f && sp[5] == -1.0f);
    assert_true(sp[6] == 1e-40f);
    assert_true(isnan(sp[7]));
    free(in);
}

/* vm_bias_tanh = tanh(out + bias) per row, both precisions, against libm. */
static void test_vmath_bias_tanh(void **state) {
    (void)state;
    enum { R = 7, OC = 203 };
    double od[R * OC], bd[OC];
    float of[R * OC], bf[OC];
    for (size_t o = 0; o < OC; ++o) bd[o] = 0.3 * sin((double)o), bf[o] = (float)bd[o];
    for (size_t i = 0; i < R * OC; ++i) od[i] = 3.0 * cos(0.7 * (double)i), of[i] = (float)od[i];
    double ref[R * OC], ref32[R * OC], sum32[R * OC];
    for (size_t i = 0; i < R * OC; ++i) {
        ref[i] = tanh(od[i] + bd[i % OC]);
        sum32[i] = (double)(of[i] + bf[i % OC]); /* the float kernel's rounded argument */
        ref32[i] = tanh(sum32[i]);
    }
    vm_bias_tanh_f64(od, bd, R, OC);
    vm_bias_tanh_f32(of, bf, R, OC);
    for (size_t i = 0; i < R * OC; ++i) {
        assert_true(fabs(od[i] - ref[i]) <= 1e-15 * fabs(ref[i]) + 1e-300);
        /* float: tanh of the float-rounded sum within a few ulp */
        assert_true(fabs((double)of[i] - ref32[i]) <= 4.0 * FLT_EPSILON * fabs(ref32[i]));
    }
}

static void test_vmath_bernoulli_f32(void **state) {
    (void)state;
    enum { N = 1000 };
    float l[N], x[N], g[N];
    double worst_v = 0.0, worst_g = 0.0;
    for (int rep = 0; rep < 40; ++rep) {
        const double scale = pow(10.0, -6.0 + 0.2 * rep); /* logits up to ~1e2 */
        double ref = 0.0, mag = 0.0;
        for (size_t j = 0; j < N; ++j) {
            l[j] = (float)(scale * sin(0.37 * (double)j + rep) * 7.0);
            x[j] = (float)((j * 7 + (size_t)rep) % 3 == 0);
            const double lj = (double)l[j];
            const double t = (double)x[j] * lj - (lj > 0 ? lj : 0.0) - log1p(exp(-fabs(lj)));
            ref += t;
            mag += fabs(t);
        }
        const float c = 0.5f + (float)rep;
        const double v = vm_bernoulli_row_f32(l, x, N, c, g);
        const double ev = fabs(v - ref) / mag;
        if (ev > worst_v) worst_v = ev;
        assert_true(vm_bernoulli_row_f32(l, x, N, c, NULL) == v);
        for (size_t j = 0; j < N; ++j) {
            const double rg = (double)c * ((double)x[j] - 1.0 / (1.0 + exp(-(double)l[j])));
            const double eg = fabs((double)g[j] - rg) / (double)c;
            if (eg > worst_g) worst_g = eg;
        }
    }
    fprintf(stderr, "vm_bernoulli_row_f32: value error %.3g of sum |terms|, gradient error %.3g"
                    " of c\n", worst_v, worst_g);
    assert_true(worst_v <= 4.0 * FLT_EPSILON);
    assert_true(worst_g <= 4.0 * FLT_EPSILON);
    l[3] = NAN;
    assert_true(isnan(vm_bernoulli_row_f32(l, x, N, 1.0f, g)));
    assert_true(isnan(g[3]));
}

static void test_vmath_logistic_f32(void **state) {
    (void)state;
    enum { N = 777 };
    float mu[N], x[N], gv[N];
    const double h = 1.0 / 255.0;
    const double log_scales[] = {-5.0, -4.5, -2.0, 0.0, 1.5};
    double worst_v = 0.0, worst_g = 0.0, worst_s = 0.0;
    for (size_t k = 0; k < sizeof log_scales / sizeof *log_scales; ++k) {
        const double inv = exp(-log_scales[k]);
        const double delta = 2.0 * h * inv;
        const double log1m = log(-expm1(-delta)), inv_em1 = 1.0 / expm1(delta);
        const float invf = (float)inv, hf = (float)h;
        double ref = 0.0, mag = 0.0, dref = 0.0, dmag = 0.0, g[N];
        for (size_t j = 0; j < N; ++j) {
            double xj = (double)((j * 37) % 256);
            if (j % 11 == 0) xj = 0.0;
            if (j % 13 == 0) xj = 255.0;
            x[j] = (float)xj;
            mu[j] = (float)(xj / 127.5 - 1.0 + 0.05 * sin((double)j));
            /* the reference in double from the float inputs and constants */
            const double cen = xj / 127.5 - 1.0 - (double)mu[j];
            const double a = (double)invf * (cen + (double)hf), b = (double)invf * (cen - (double)hf);
            double f, dfa, dfb;
            if (xj < 0.5) {
                f = ref_logsig(a), dfa = ref_sig(-a), dfb = 0.0;
            } else if (xj > 254.5) {
                f = ref_logsig(-b), dfa = 0.0, dfb = -ref_sig(b);
            } else {
                f = ref_logsig(a) + ref_logsig(-b) + (double)(float)log1m;
                dfa = ref_sig(-a) + (double)(float)inv_em1;
                dfb = -ref_sig(b) - (double)(float)inv_em1;
            }
            ref += f, mag += fabs(f);
            dref += -(a * dfa + b * dfb), dmag += fabs(a * dfa) + fabs(b * dfb);
            g[j] = -(double)invf * (dfa + dfb);
        }
        float dls = NAN;
        const float c = 1.75f;
        const double v = vm_logistic_row_f32(mu, x, N, invf, hf, (float)log1m, (float)inv_em1, c,
                                             gv, &dls);
        if (fabs(v - ref) / mag > worst_v) worst_v = fabs(v - ref) / mag;
        const double es = fabs((double)dls - (double)c * dref) / ((double)c * dmag);
        if (es > worst_s) worst_s = es;
        for (size_t j = 0; j < N; ++j) {
            /* dfa + dfb cancels inv_em1 (~1/delta): both sides round at that scale */
            const double eg = fabs((double)gv[j] - (double)c * g[j]) /
                              ((double)c * inv * (1.0 + inv_em1));
            if (eg > worst_g) worst_g = eg;
        }
        assert_true(vm_logistic_row_f32(mu, x, N, invf, hf, (float)log1m, (float)inv_em1, c, NULL,
                                        NULL) == v);
    }
    fprintf(stderr, "vm_logistic_row_f32: value error %.3g of sum |terms|, d/dmu error %.3g, "
                    "d/dlog-scale error %.3g\n", worst_v, worst_g, worst_s);
    /* the pixel's centre x/127.5 - 1 - mu and a, b round in float: a few ulp of |a| (up to
     * ~150 at log-scale -5) reach the sigmoids, the inherent float error (measured 21 ulp) */
    assert_true(worst_v <= 64.0 * FLT_EPSILON);
    assert_true(worst_g <= 64.0 * FLT_EPSILON);
    assert_true(worst_s <= 64.0 * FLT_EPSILON);
}

/* float gradients are flushed to zero below VM_TINY_F32, never left subnormal (which
 * would slow every later GEMM by 100x); double gradients are not flushed. */
static void test_vmath_flush(void **state) {
    (void)state;
    enum { N = 300 };
    float l[N], x[N], g[N];
    for (size_t j = 0; j < N; ++j) l[j] = (float)(3.0 * sin(0.1 * (double)j)), x[j] = (float)(j % 2);
    vm_bernoulli_row_f32(l, x, N, 1e-35f, g); /* every |g| <= c < VM_TINY_F32 */
    for (size_t j = 0; j < N; ++j) assert_true(g[j] == 0.0f);
    vm_bernoulli_row_f32(l, x, N, 1e-20f, g); /* above the threshold: kept */
    size_t kept = 0;
    for (size_t j = 0; j < N; ++j) {
        assert_true(g[j] == 0.0f || fabsf(g[j]) >= VM_TINY_F32);
        kept += g[j] != 0.0f;
    }
    assert_true(kept > N / 2);
    float out[4] = {0.5f, 0.5f, 0.999f, 0.0f}, dout[4] = {1e-31f, 1e-29f, 1e-27f, NAN}, din[4];
    vm_tanh_backward_f32(din, out, dout, 4);
    assert_true(din[0] == 0.0f);
    assert_true(fabsf(din[1] - 0.75e-29f) <= 1e-6f * 0.75e-29f);
    const float e2 = 1e-27f * (1.0f - 0.999f * 0.999f); /* about 2e-30: above the threshold */
    assert_true(din[2] != 0.0f && fabsf(din[2] - e2) <= 1e-5f * e2);
    assert_true(isnan(din[3]));
    /* AMSGrad's moments of a parameter whose gradient stays 0 decay to 0, never to a
     * subnormal (where they would stick: 0.9 * 5.6e-45 rounds back to 5.6e-45) */
    float p[2] = {1.0f, 1.0f}, gz[2] = {0.0f, 0.0f}, m[2] = {1e-3f, 1e-3f},
          v[2] = {1e-28f, 1e-28f}, vx[2] = {1e-6f, 1e-6f};
    for (int it = 0; it < 6000; ++it) { /* m falls below 1e-30 after ~620 steps, v after ~4600 */
        vm_amsgrad_f32(p, gz, m, v, vx, 2, 0.9f, 0.999f, 1e-3f, 1.0f, 1e-8f);
        for (int i = 0; i < 2; ++i) {
            assert_true(m[i] == 0.0f || fabsf(m[i]) >= FLT_MIN);
            assert_true(v[i] == 0.0f || v[i] >= FLT_MIN);
        }
    }
    assert_true(m[0] == 0.0f && v[0] == 0.0f);
    double od[1] = {0.5}, dd[1] = {1e-300}, gd[1];
    vm_tanh_backward_f64(gd, od, dd, 1);
    assert_true(gd[0] == 1e-300 * 0.75); /* double: no flush */
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

/* vm_amsgrad gives bit for bit what the plain scalar loop gives. */
static void test_amsgrad_bits(void **state) {
    (void)state;
    enum { N = 1003 };
    static double p[2][N], g[N], m[2][N], v[2][N], vx[2][N];
    for (size_t i = 0; i < N; ++i) {
        p[0][i] = p[1][i] = sin((double)i);
        m[0][i] = m[1][i] = 0.01 * cos(3.0 * (double)i);
        v[0][i] = v[1][i] = 1e-4 * (1.0 + sin(5.0 * (double)i));
        vx[0][i] = vx[1][i] = 1e-4 * (1.0 + cos(7.0 * (double)i));
    }
    const double b1 = 0.9, b2 = 0.999, step = 1e-3 / 0.1, rb = sqrt(1.0 - 0.999), eps = 1e-8;
    for (int it = 0; it < 5; ++it) {
        for (size_t i = 0; i < N; ++i) g[i] = 0.1 * sin(0.3 * (double)(i * (size_t)(it + 2)));
        for (size_t i = 0; i < N; ++i) {
            m[0][i] = b1 * m[0][i] + (1.0 - b1) * g[i];
            v[0][i] = b2 * v[0][i] + (1.0 - b2) * g[i] * g[i];
            if (v[0][i] > vx[0][i]) vx[0][i] = v[0][i];
            p[0][i] += step * m[0][i] / (sqrt(vx[0][i]) / rb + eps);
        }
        vm_amsgrad(p[1], g, m[1], v[1], vx[1], N, b1, b2, step, rb, eps);
    }
    assert_memory_equal(p[0], p[1], sizeof p[0]);
    assert_memory_equal(m[0], m[1], sizeof m[0]);
    assert_memory_equal(v[0], v[1], sizeof v[0]);
    assert_memory_equal(vx[0], vx[1], sizeof vx[0]);
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
        cmocka_unit_test(test_amsgrad_bits),
        cmocka_unit_test(test_reuse_bernoulli),
        cmocka_unit_test(test_reuse_logistic),
        cmocka_unit_test(test_vmath_tanh),
        cmocka_unit_test(test_vmath_bernoulli),
        cmocka_unit_test(test_vmath_logistic),
        cmocka_unit_test(test_vmath_tanh_f32),
        cmocka_unit_test(test_vmath_bias_tanh),
        cmocka_unit_test(test_vmath_bernoulli_f32),
        cmocka_unit_test(test_vmath_logistic_f32),
        cmocka_unit_test(test_vmath_flush),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
