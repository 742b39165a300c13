/* Tests of the VAE example's training glue and checkpoints (train.c, checkpoint.c).
 *
 * - one training step per method (vae, iwae, iwae+DReG, svi, bsvi, bsvi-ds,
 *   bsvi-sir, bsvi-sir-pi, and bsvi-sir with the discretised logistic) on the
 *   shipped subset (random images when data.c is not built in): the step runs,
 *   the bound is finite, the encoder and the decoder parameters both change;
 * - validation bound, test-set evaluation and the SVI probe run and are finite;
 * - checkpoints: save/load round trip is bitwise (pi's logits and Adam state
 *   included); a resumed trainer takes the same next step as an uninterrupted one,
 *   bsvi-sir-pi included; truncated, corrupted, foreign and wrong-version files are
 *   refused with a message; versions 1, 2 and 3 still load (3: pi from its
 *   probabilities, Adam restarted), among them a committed version 3 file;
 * - hostile checkpoints (issue 12): sizes that would allocate gigabytes and
 *   inconsistent or non-finite fields are refused before any allocation, naming
 *   the field; the run log is cut back to the checkpoint's epoch;
 * - the program (VAE_BIN, when built): refusals of nonsensical options and of a
 *   second run into a run's directory, --help, --max-train kept across --resume,
 *   a run interrupted by a full disk or kill -9 during its saves, then resumed,
 *   ends with the log of an uninterrupted run, and a bsvi-sir-pi run of 4 epochs
 *   equals one of 2 epochs resumed for 2 more bit for bit (log, parameters, pi).
 * The real 784-200-200-50 architecture is used with a batch of 16. */
#define _POSIX_C_SOURCE 200809L /* fork, kill, setrlimit, nanosleep */

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checkpoint.h"
#include "data.h"
#include "train.h"

#define TB 16

static double xbin[TB * 784];  /* binarised batch */
static double xgray[TB * 784]; /* gray-level batch */
static const char *data_source = "random";

static void make_data(void) {
#ifdef VAE_HAVE_DATA
    vae_dataset d;
    char err[256];
    if (vae_load_builtin("train", &d, err, sizeof err) == 0 && d.n >= TB && d.dim == 784) {
        size_t rows[TB];
        for (size_t i = 0; i < TB; ++i) rows[i] = i;
        vae_binarize(&d, rows, TB, 1, 0, xbin);
        vae_gray(&d, rows, TB, xgray);
        vae_dataset_free(&d);
        data_source = "builtin subset";
        return;
    }
#endif
    uint64_t s = 99;
    for (size_t i = 0; i < TB * 784; ++i) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        const unsigned v = (unsigned)(s >> 56); /* 0..255 */
        xgray[i] = (double)v;
        xbin[i] = v > 128 ? 1.0 : 0.0;
    }
}

static void config(vae_config *c, vae_method m) {
    vae_config_default(c);
    c->method = m;
    c->batch = TB;
    c->svi_eta = 1e-3;
    c->seed = 7;
}

static void mean_pixels(double *mean, const double *x) {
    for (size_t j = 0; j < 784; ++j) {
        mean[j] = 0.0;
        for (size_t b = 0; b < TB; ++b) mean[j] += x[b * 784 + j];
        mean[j] /= (double)TB;
    }
}

static void one_step(vae_method m, vae_likelihood lik, int dreg) {
    vae_config c;
    config(&c, m);
    c.lik = lik;
    c.iwae_dreg = dreg;
    c.kl_anneal = 100; /* exercise the annealed encoder gradient */
    const double *x = lik == VAE_LIK_LOGISTIC ? xgray : xbin;
    double mean[784];
    mean_pixels(mean, xbin);
    vae_trainer t;
    int rc = vae_trainer_init(&t, &c, mean);
    if (rc) print_error("init: %s\n", t.err);
    assert_int_equal(rc, 0);
    vae_real *before = malloc(t.net.nparams * sizeof *before);
    assert_non_null(before);
    memcpy(before, t.net.params, t.net.nparams * sizeof *before);
    vae_stats st;
    for (int s = 0; s < 2; ++s) {
        rc = vae_trainer_step(&t, x, &st);
        if (rc) print_error("%s step: %s\n", vae_method_name(m), t.err);
        assert_int_equal(rc, 0);
        assert_true(isfinite(st.bound));
        assert_true(st.bound < 0.0);
    }
    assert_int_equal(t.step, 2);
    /* the ESS of the bound's k+1 = 10 weights: iwae and bsvi*; none for vae and svi */
    if (m == VAE_METHOD_IWAE || (vae_method_uses_svi(m) && m != VAE_METHOD_SVI)) {
        assert_true(st.ess >= 1.0 && st.ess <= 10.0 * (1.0 + 1e-12));
        double e[TB];
        if (m == VAE_METHOD_IWAE) /* the last step's, from the library's convenience */
            assert_int_equal(bsvi_diagnostics_estimator(t.diag, t.est, TB, e, NULL), BSVI_OK);
        else
            assert_int_equal(bsvi_diagnostics_trajectory(t.diag, t.traj, t.pi, e, NULL), BSVI_OK);
        double se = 0.0;
        for (size_t b = 0; b < TB; ++b) se += e[b];
        if (m != VAE_METHOD_BSVI_SIR_PI) /* (its pi moved after the step's bound) */
            assert_true(fabs(se / (double)TB - st.ess) <= 1e-12 * st.ess);
    } else {
        assert_true(isnan(st.ess));
        assert_null(t.diag);
    }
    if (vae_method_uses_svi(m)) {
        assert_true(isfinite(st.svi0) && isfinite(st.svik) && isfinite(st.bsvik));
        assert_true(st.mean_pos >= 0.0 && st.mean_pos <= 1.0);
    } else {
        assert_true(isnan(st.svi0));
    }
    size_t enc_changed = 0, dec_changed = 0;
    for (size_t i = 0; i < t.net.nparams; ++i) {
        assert_true(isfinite(t.net.params[i]));
        if (t.net.params[i] != before[i]) {
            if (i < t.net.n_encoder) ++enc_changed;
            else ++dec_changed;
        }
    }
    assert_true(enc_changed > t.net.n_encoder / 2);
    assert_true(dec_changed > (t.net.nparams - t.net.n_encoder) / 2);
    if (lik == VAE_LIK_LOGISTIC) assert_true(t.net.p.log_scale[0] != log(0.1));
    /* the validation bound runs without touching the parameters */
    memcpy(before, t.net.params, t.net.nparams * sizeof *before);
    double per[TB];
    rc = vae_trainer_bound(&t, x, TB - 3, 0, &st, per);
    if (rc) print_error("bound: %s\n", t.err);
    assert_int_equal(rc, 0);
    assert_true(isfinite(st.bound));
    double s = 0.0;
    for (size_t b = 0; b < TB - 3; ++b) s += per[b];
    assert_true(fabs(s / (double)(TB - 3) - st.bound) < 1e-9 * fabs(st.bound));
    assert_memory_equal(before, t.net.params, t.net.nparams * sizeof *before);
    free(before);
    vae_trainer_free(&t);
}

static void test_step_vae(void **s) { (void)s; one_step(VAE_METHOD_VAE, VAE_LIK_BERNOULLI, 0); }
static void test_step_iwae(void **s) { (void)s; one_step(VAE_METHOD_IWAE, VAE_LIK_BERNOULLI, 0); }
static void test_step_iwae_dreg(void **s) { (void)s; one_step(VAE_METHOD_IWAE, VAE_LIK_BERNOULLI, 1); }
static void test_step_svi(void **s) { (void)s; one_step(VAE_METHOD_SVI, VAE_LIK_BERNOULLI, 0); }
static void test_step_bsvi(void **s) { (void)s; one_step(VAE_METHOD_BSVI, VAE_LIK_BERNOULLI, 0); }
static void test_step_bsvi_ds(void **s) { (void)s; one_step(VAE_METHOD_BSVI_DS, VAE_LIK_BERNOULLI, 0); }
static void test_step_bsvi_sir(void **s) { (void)s; one_step(VAE_METHOD_BSVI_SIR, VAE_LIK_BERNOULLI, 0); }
static void test_step_bsvi_sir_pi(void **s) { (void)s; one_step(VAE_METHOD_BSVI_SIR_PI, VAE_LIK_BERNOULLI, 0); }
static void test_step_logistic(void **s) { (void)s; one_step(VAE_METHOD_BSVI_SIR, VAE_LIK_LOGISTIC, 0); }

/* Whether this BLAS computes each output row of one linear layer (C inputs, OC outputs)
 * independently of the others: the same rows, multiplied as part of GEMMs of different row
 * counts, give the same bits. The row counts are the cache test's: a callback's forward of
 * TB rows against the recomputing forward of (k + 1) TB rows, at a row offset that is a
 * multiple of TB (the gathered rows) and at one that is not. */
static double probe_uniform(uint64_t *st) { /* in [0, 1), every bit of a double's mantissa */
    *st = *st * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(*st >> 11) / 9007199254740992.0;
}

static int layer_rows_independent(size_t C, size_t OC, int with_tanh) {
    const size_t n = TB, N = 10 * TB;
    vae_real *w = malloc(OC * C * sizeof *w), *bias = malloc(OC * sizeof *bias);
    vae_real *in = malloc(N * C * sizeof *in), *big = malloc(N * OC * sizeof *big);
    vae_real *small = malloc(n * OC * sizeof *small);
    assert_true(w && bias && in && big && small);
    uint64_t st = 12345;
    for (size_t i = 0; i < OC * C; ++i) w[i] = (vae_real)(probe_uniform(&st) - 0.5);
    for (size_t i = 0; i < OC; ++i) bias[i] = (vae_real)(0.01 * (double)(i % 7));
    for (size_t i = 0; i < N * C; ++i) in[i] = (vae_real)(probe_uniform(&st) - 0.5);
    (with_tanh ? linear_tanh_forward : linear_forward)(big, in, w, bias, N, C, OC);
    int same = 1;
    const size_t offsets[] = {0, 3 * TB, 37};
    for (size_t o = 0; o < sizeof offsets / sizeof *offsets; ++o) {
        (with_tanh ? linear_tanh_forward : linear_forward)(small, in + offsets[o] * C, w, bias, n, C, OC);
        same = same && memcmp(small, big + offsets[o] * OC, n * OC * sizeof *small) == 0;
    }
    free(w);
    free(bias);
    free(in);
    free(big);
    free(small);
    return same;
}

/* Whether every decoder layer of the 784-200-200-50 network is row-independent in that
 * sense. Measured with OpenBLAS 0.3.21 on an AVX-512 machine: its SkylakeX sgemm is at all
 * three shapes; its SkylakeX dgemm (test_vae64) is at 200-784 but not at 50-200 and 200-200
 * (about 1% of the outputs differ in the last bit); its Haswell kernels
 * (OPENBLAS_CORETYPE=Haswell) are at none. The probe's values use every mantissa bit: with
 * 24-bit values, as it once had, double products are exact and sums nearly so, which hides
 * the row dependence. */
static int blas_rows_independent(void) {
    return layer_rows_independent(50, 200, 1) && layer_rows_independent(200, 200, 1) &&
           layer_rows_independent(200, 784, 0);
}

/* pi moves under bsvi-sir-pi and stays uniform under bsvi-sir. */
/* The SVI-based methods gather their decoder targets' forward rows from the kept
 * callback forwards (nn.h, the forward cache) instead of recomputing them: the
 * step is bitwise the one without the cache (when the BLAS computes rows independently;
 * otherwise equal to float rounding), and the gather happened. */
static void cache_check(vae_method m) {
    vae_config c;
    config(&c, m);
    vae_trainer a, b;
    assert_int_equal(vae_trainer_init(&a, &c, NULL), 0);
    assert_int_equal(vae_trainer_init(&b, &c, NULL), 0);
    b.ws.cache_slots = 0; /* b: no forward kept, every accumulate recomputes */
    vae_stats sa, sb;
    for (int s = 0; s < 2; ++s) {
        assert_int_equal(vae_trainer_step(&a, xbin, &sa), 0);
        assert_int_equal(vae_trainer_step(&b, xbin, &sb), 0);
    }
    fprintf(stderr, "%s: gathered %llu, reused %llu of 2 steps\n", vae_method_name(m),
            (unsigned long long)a.ws.gathered, (unsigned long long)a.ws.reused);
    assert_true(a.ws.gathered + a.ws.reused == 2);
    assert_true(b.ws.gathered == 0);
    if (blas_rows_independent()) {
        assert_true(sa.bound == sb.bound);
        assert_memory_equal(a.net.params, b.net.params, a.net.nparams * sizeof(vae_real));
    } else {
        fprintf(stderr, "%s: this BLAS's GEMM rows depend on the row count (OPENBLAS_CORETYPE="
                        "%s): the cached step is compared to rounding, not bit for bit\n",
                vae_method_name(m), getenv("OPENBLAS_CORETYPE") ? getenv("OPENBLAS_CORETYPE") : "");
        /* the bound to float rounding; the gradients (not the parameters: AMSGrad's first
         * steps move a parameter by about lr whatever its gradient's size, so a rounding-level
         * gradient near 0 can move it either way) as a whole to 1e-3 */
        const double tol = VAE_REAL_BITS == 32 ? 1e-5 : 1e-12;
        assert_true(fabs(sa.bound - sb.bound) <= tol * fabs(sb.bound));
        double d2 = 0.0, g2 = 0.0;
        for (size_t i = 0; i < a.net.nparams; ++i) {
            const double d = (double)a.net.grads[i] - (double)b.net.grads[i];
            d2 += d * d;
            g2 += (double)b.net.grads[i] * (double)b.net.grads[i];
        }
        fprintf(stderr, "%s: |bound difference| %.3g, gradient difference %.3g of its norm\n",
                vae_method_name(m), fabs(sa.bound - sb.bound), sqrt(d2 / g2));
        assert_true(g2 > 0.0 && sqrt(d2) <= 1e-3 * sqrt(g2));
    }
    vae_trainer_free(&a);
    vae_trainer_free(&b);
}

static void test_cache_bsvi(void **s) { (void)s; cache_check(VAE_METHOD_BSVI); }
static void test_cache_bsvi_sir(void **s) { (void)s; cache_check(VAE_METHOD_BSVI_SIR); }
static void test_cache_svi(void **s) { (void)s; cache_check(VAE_METHOD_SVI); }

static void test_pi_moves(void **state) {
    (void)state;
    vae_config c;
    config(&c, VAE_METHOD_BSVI_SIR_PI);
    c.pi_lr = 0.1;
    vae_trainer t;
    assert_int_equal(vae_trainer_init(&t, &c, NULL), 0);
    vae_stats st;
    for (int s = 0; s < 3; ++s) assert_int_equal(vae_trainer_step(&t, xbin, &st), 0);
    double pi[10];
    assert_int_equal(bsvi_buffer_weights_get_probs(t.pi, pi, 10), BSVI_OK);
    double dev = 0.0;
    for (int i = 0; i < 10; ++i) dev += fabs(pi[i] - 0.1);
    assert_true(dev > 1e-3);
    vae_trainer_free(&t);
}

static void test_evaluate_and_probe(void **state) {
    (void)state;
    vae_config c;
    config(&c, VAE_METHOD_SVI);
    vae_trainer t;
    assert_int_equal(vae_trainer_init(&t, &c, NULL), 0);
    bsvi_evaluator *ev = NULL;
    assert_int_equal(bsvi_evaluator_create(c.z_dim, &ev), BSVI_OK);
    const size_t n = 5;
    double iw[5], bs[5], el[5], kl[5], rec[5];
    int rc = vae_trainer_evaluate(&t, ev, xbin, n, 50, 8, 20, iw, bs, el, kl, rec);
    if (rc) print_error("evaluate: %s\n", t.err);
    assert_int_equal(rc, 0);
    for (size_t b = 0; b < n; ++b) {
        assert_true(isfinite(iw[b]) && isfinite(bs[b]) && isfinite(el[b]));
        assert_true(kl[b] >= 0.0);
        assert_true(fabs(rec[b] + (kl[b] + el[b])) < 1e-9 * (1.0 + fabs(rec[b]))); /* ELBO* = -(KL* + Recon*) */
    }
    /* the library's step search through the trainer: 2*TB - 3 rows (the batch's rows twice,
     * less 3), so a full batch and a partial one; a grid; SVI-0 the same at every step */
    const double grid[2] = {3e-3, 1e-3};
    bsvi_step_search_options so = bsvi_step_search_options_default();
    so.grid = grid;
    so.grid_size = 2;
    bsvi_step_trial tr[2];
    bsvi_step_search_result res;
    double *x2 = malloc(2 * TB * 784 * sizeof *x2);
    assert_non_null(x2);
    memcpy(x2, xbin, TB * 784 * sizeof *x2);
    memcpy(x2 + TB * 784, xbin, TB * 784 * sizeof *x2);
    rc = vae_trainer_step_search(&t, x2, 2 * TB - 3, BSVI_STEP_GRADIENT, 5, &so, tr, 2, &res);
    if (rc) print_error("step search: %s\n", t.err);
    assert_int_equal(rc, 0);
    assert_int_equal(res.num_trials, 2);
    for (size_t i = 0; i < 2; ++i) {
        assert_int_equal(tr[i].points + tr[i].zero_points, 2 * TB - 3);
        assert_true(isfinite(tr[i].svi0) && isfinite(tr[i].svik));
    }
    assert_true(tr[0].svi0 == tr[1].svi0);
    free(x2);
    assert_true(tr[0].step_size == 1e-3 && tr[1].step_size == 3e-3);
    bsvi_evaluator_destroy(ev);
    vae_trainer_free(&t);
}

/* ---- checkpoints ----------------------------------------------------------------- */

/* test_vae and test_vae64 share the directory and may run at once: names carry the precision. */
static void tmp_path(char *buf, size_t n, const char *name) {
    snprintf(buf, n, "%s/f%d-%s", VAE_TEST_TMPDIR, VAE_REAL_BITS, name);
}

static unsigned char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    rewind(f);
    unsigned char *b = malloc(*len);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, *len, f), *len);
    fclose(f);
    return b;
}

static void write_all(const char *path, const unsigned char *b, size_t len) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, len, f), len);
    fclose(f);
}

static void expect_refused(const char *path, const char *needle) {
    vae_trainer t;
    vae_progress p;
    char err[512] = "";
    assert_int_not_equal(vae_checkpoint_load(path, &t, &p, err, sizeof err), 0);
    if (!strstr(err, needle)) print_error("message '%s' lacks '%s'\n", err, needle);
    assert_non_null(strstr(err, needle));
}

/* pi of two trainers: the same logits and Adam state, bit for bit. */
static void expect_same_pi(const vae_trainer *a, const vae_trainer *b) {
    const size_t n = bsvi_buffer_weights_size(a->pi);
    assert_int_equal(bsvi_buffer_weights_size(b->pi), n);
    if (n == 0) return;
    double la[3][VAE_MAX_K + 1], lb[3][VAE_MAX_K + 1];
    uint64_t sa = 0, sb = 0;
    assert_int_equal(bsvi_buffer_weights_get_logits(a->pi, la[0], n), BSVI_OK);
    assert_int_equal(bsvi_buffer_weights_get_logits(b->pi, lb[0], n), BSVI_OK);
    assert_int_equal(bsvi_buffer_weights_get_adam_state(a->pi, la[1], la[2], &sa, n), BSVI_OK);
    assert_int_equal(bsvi_buffer_weights_get_adam_state(b->pi, lb[1], lb[2], &sb, n), BSVI_OK);
    for (int i = 0; i < 3; ++i) assert_memory_equal(la[i], lb[i], n * sizeof(double));
    assert_int_equal(sa, sb);
}

static void test_checkpoint_roundtrip_and_resume(void **state) {
    (void)state;
    vae_config c;
    config(&c, VAE_METHOD_BSVI_SIR_PI);
    snprintf(c.data, sizeof c.data, "builtin");
    vae_trainer a;
    assert_int_equal(vae_trainer_init(&a, &c, NULL), 0);
    vae_stats st;
    for (int s = 0; s < 2; ++s) assert_int_equal(vae_trainer_step(&a, xbin, &st), 0);
    vae_progress pa = {3, 2, 1, -90.5, 12.25, VAE_REAL_BITS, 0, 0};
    char path[1024], err[512];
    tmp_path(path, sizeof path, "roundtrip.ckpt");
    int rc = vae_checkpoint_save(path, &a, &pa, err, sizeof err);
    if (rc) print_error("%s\n", err);
    assert_int_equal(rc, 0);

    vae_trainer b;
    vae_progress pb;
    rc = vae_checkpoint_load(path, &b, &pb, err, sizeof err);
    if (rc) print_error("%s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(b.net.nparams, a.net.nparams);
    const size_t bytes = a.net.nparams * sizeof(vae_real);
    assert_memory_equal(a.net.params, b.net.params, bytes);
    assert_memory_equal(a.net.adam_m, b.net.adam_m, bytes);
    assert_memory_equal(a.net.adam_v, b.net.adam_v, bytes);
    assert_memory_equal(a.net.adam_vmax, b.net.adam_vmax, bytes);
    assert_int_equal(b.net.adam_t, a.net.adam_t);
    assert_int_equal(b.step, a.step);
    assert_int_equal(b.cfg.method, a.cfg.method);
    assert_int_equal(b.cfg.batch, a.cfg.batch);
    assert_true(b.cfg.svi_eta == a.cfg.svi_eta);
    assert_string_equal(b.cfg.data, "builtin");
    assert_int_equal(pb.epoch, 3);
    assert_int_equal(pb.best_epoch, 2);
    assert_int_equal(pb.bad_epochs, 1);
    assert_true(pb.best_valid == -90.5 && pb.seconds == 12.25);
    assert_int_equal(pb.version, VAE_CHECKPOINT_VERSION);
    expect_same_pi(&a, &b); /* logits and Adam state, bit for bit (format version 4) */
    uint64_t steps = 0;
    assert_int_equal(bsvi_buffer_weights_get_adam_state(b.pi, NULL, NULL, &steps, 10), BSVI_OK);
    assert_int_equal(steps, 2);
    assert_int_equal(vae_trainer_checksum(&b), vae_trainer_checksum(&a));
    vae_trainer_free(&b);
    vae_trainer_free(&a);

    /* resume: the next steps after a reload are bitwise the same, pi's included */
    const vae_method ms[2] = {VAE_METHOD_BSVI_SIR, VAE_METHOD_BSVI_SIR_PI};
    for (int m = 0; m < 2; ++m) {
        config(&c, ms[m]);
        assert_int_equal(vae_trainer_init(&a, &c, NULL), 0);
        for (int s = 0; s < 2; ++s) assert_int_equal(vae_trainer_step(&a, xbin, &st), 0);
        assert_int_equal(vae_checkpoint_save(path, &a, &pa, err, sizeof err), 0);
        assert_int_equal(vae_checkpoint_load(path, &b, &pb, err, sizeof err), 0);
        for (int s = 0; s < 2; ++s) {
            assert_int_equal(vae_trainer_step(&a, xbin, &st), 0);
            assert_int_equal(vae_trainer_step(&b, xbin, &st), 0);
        }
        assert_memory_equal(a.net.params, b.net.params, a.net.nparams * sizeof(vae_real));
        expect_same_pi(&a, &b);
        assert_int_equal(vae_trainer_checksum(&b), vae_trainer_checksum(&a));
        vae_trainer_free(&b);
        vae_trainer_free(&a);
    }
    remove(path);
}

static void test_checkpoint_refusals(void **state) {
    (void)state;
    vae_config c;
    config(&c, VAE_METHOD_VAE);
    vae_trainer a;
    assert_int_equal(vae_trainer_init(&a, &c, NULL), 0);
    vae_progress pa = {1, 1, 0, -100.0, 1.0, VAE_REAL_BITS, 0, 0};
    char path[1024], bad[1024], err[512];
    tmp_path(path, sizeof path, "good.ckpt");
    tmp_path(bad, sizeof bad, "bad.ckpt");
    assert_int_equal(vae_checkpoint_save(path, &a, &pa, err, sizeof err), 0);
    vae_trainer_free(&a);
    size_t len;
    unsigned char *b = read_all(path, &len);

    expect_refused("/nonexistent/dir/x.ckpt", "cannot open");

    write_all(bad, b, len / 2); /* truncated */
    expect_refused(bad, "truncated");
    write_all(bad, b, 10); /* truncated inside the header */
    expect_refused(bad, "truncated");

    b[len / 3] ^= 0x40; /* one flipped bit in the parameters */
    write_all(bad, b, len);
    expect_refused(bad, "checksum");
    b[len / 3] ^= 0x40;

    b[len - 1] ^= 0x01; /* the checksum itself */
    write_all(bad, b, len);
    expect_refused(bad, "checksum");
    b[len - 1] ^= 0x01;

    b[8] = 99; /* another format version */
    write_all(bad, b, len);
    expect_refused(bad, "version 99");
    b[8] = (unsigned char)VAE_CHECKPOINT_VERSION;

    b[12] = 16; /* a network precision that does not exist */
    write_all(bad, b, len);
    expect_refused(bad, "precision");
    b[12] = (unsigned char)VAE_REAL_BITS;

    const char foreign[] = "P5\n28 28\n255\n this is an image, not a checkpoint";
    write_all(bad, (const unsigned char *)foreign, sizeof foreign);
    expect_refused(bad, "not a libbsvi VAE checkpoint");
    write_all(bad, b, 0); /* empty */
    expect_refused(bad, "not a libbsvi VAE checkpoint");

    /* the untouched bytes still load */
    write_all(bad, b, len);
    vae_trainer t;
    vae_progress p;
    assert_int_equal(vae_checkpoint_load(bad, &t, &p, err, sizeof err), 0);
    vae_trainer_free(&t);
    free(b);
    remove(bad);
    remove(path);
}

/* ---- hostile checkpoints (issue 12, items 8 and 9) ---------------------------------- */

/* Byte offsets of the version 3 and 4 layouts (checkpoint.h; they differ after OFF_NPI). */
#define OFF_SIZE 16
#define OFF_METHOD 24
#define OFF_X 32
#define OFF_H 40
#define OFF_BATCH 56
#define OFF_K 64
#define OFF_LR 104
#define OFF_BETA1 112
#define OFF_EPS 128
#define OFF_NAME 160
#define OFF_MAX_TRAIN 192
#define OFF_EPOCH 200
#define OFF_BEST_EPOCH 224
#define OFF_SECONDS 248
#define OFF_NPI 256

static void put64(unsigned char *b, size_t off, uint64_t v) {
    for (int i = 0; i < 8; ++i) b[off + (size_t)i] = (unsigned char)(v >> (8 * i));
}
static uint64_t get64(const unsigned char *b, size_t off) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | b[off + (size_t)i];
    return v;
}
static void putf64(unsigned char *b, size_t off, double d) {
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    put64(b, off, u);
}
/* A valid size field and checksum for the first len bytes: the file passes the
 * integrity checks, so only the field checks can refuse it. */
static void refix(unsigned char *b, size_t len) {
    put64(b, OFF_SIZE, len);
    put64(b, len - 8, vae_fnv1a64(b, len - 8));
}
/* The offset of the first network real (after pi and the parameter count): version 4
 * stores n logits, n m, n v and pi's step count, versions 1-3 n probabilities. */
static size_t arrays_offset(const unsigned char *b) {
    const uint64_t npi = get64(b, OFF_NPI);
    return (get64(b, 8) & 0xffffffffu) >= 4 ? OFF_NPI + 8 + 24 * npi + 8 + 8
                                             : OFF_NPI + 8 + 8 * npi + 8;
}

static unsigned char *make_ckpt_version(vae_method m, unsigned version, size_t *len) {
    vae_config c;
    config(&c, m);
    vae_trainer a;
    assert_int_equal(vae_trainer_init(&a, &c, NULL), 0);
    vae_stats st;
    assert_int_equal(vae_trainer_step(&a, xbin, &st), 0); /* non-zero AMSGrad moments */
    vae_progress pa = {1, 1, 0, -100.0, 1.0, VAE_REAL_BITS, 0, 0};
    unsigned char *b;
    char err[512];
    assert_int_equal(vae_checkpoint_encode(&a, &pa, version, VAE_REAL_BITS, &b, len, err,
                                           sizeof err), 0);
    vae_trainer_free(&a);
    return b;
}
static unsigned char *make_ckpt(vae_method m, size_t *len) {
    return make_ckpt_version(m, VAE_CHECKPOINT_VERSION, len);
}

static void expect_parse_refused(const unsigned char *b, size_t len, const char *needle) {
    vae_trainer t;
    vae_progress p;
    char err[512] = "";
    const clock_t c0 = clock();
    const int rc = vae_checkpoint_parse(b, len, "hostile", VAE_MAX_TRAINER_BYTES, &t, &p, err,
                                        sizeof err);
    const double secs = (double)(clock() - c0) / CLOCKS_PER_SEC;
    if (rc == 0) vae_trainer_free(&t);
    if (rc == 0 || !strstr(err, needle))
        print_error("expected a refusal naming '%s', got rc %d '%s'\n", needle, rc, err);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(err, needle));
    assert_true(secs < 1.0); /* refused before anything large is allocated */
}

/* Item 8: a header that decides gigabytes of allocations is refused from the file's
 * length and the size limits, in well under a second. */
static void test_checkpoint_hostile_sizes(void **state) {
    (void)state;
    size_t len;
    unsigned char *good = make_ckpt(VAE_METHOD_VAE, &len);
    unsigned char *b = malloc(len);
    assert_non_null(b);

    memcpy(b, good, len); /* a real checkpoint patched to h_dim 6000 (3.2 GB before) */
    put64(b, OFF_H, 6000);
    refix(b, len);
    expect_parse_refused(b, len, "field parameters");

    /* the 337-byte file: a header with h_dim 16171 and no arrays (20 GB before) */
    const size_t short_len = arrays_offset(good) + 8;
    memcpy(b, good, short_len - 8);
    put64(b, OFF_H, 16171);
    refix(b, short_len);
    expect_parse_refused(b, short_len, "field parameters");

    memcpy(b, good, len); /* dimensions past the ranges */
    put64(b, OFF_X, 1000000);
    refix(b, len);
    expect_parse_refused(b, len, "x_dim");
    memcpy(b, good, len);
    put64(b, OFF_BATCH, 0);
    refix(b, len);
    expect_parse_refused(b, len, "batch");

    memcpy(b, good, len); /* a workspace of batch 10^6 x (k+2) rows: the memory limit */
    put64(b, OFF_BATCH, 1000000);
    put64(b, OFF_K, 1000);
    refix(b, len);
    expect_parse_refused(b, len, "more than the limit");

    /* the same limit, smaller: the paper's configuration needs tens of MB */
    vae_trainer t;
    vae_progress p;
    char err[512];
    assert_int_not_equal(vae_checkpoint_parse(good, len, "small", 1u << 20, &t, &p, err, sizeof err), 0);
    assert_non_null(strstr(err, "limit"));
    assert_int_equal(vae_checkpoint_parse(good, len, "good", VAE_MAX_TRAINER_BYTES, &t, &p, err,
                                          sizeof err), 0);
    vae_trainer_free(&t);
    vae_config c;
    config(&c, VAE_METHOD_BSVI_SIR);
    c.batch = 100;
    fprintf(stderr, "trainer memory estimate, paper configuration: %.1f MiB\n",
            (double)vae_config_memory(&c) / 1048576.0);
    assert_true(vae_config_memory(&c) < ((uint64_t)256 << 20));
    free(b);
    free(good);
}

/* Item 9: inconsistent or non-finite stored values are refused at load, naming the field. */
static void test_checkpoint_inconsistent(void **state) {
    (void)state;
    size_t len;
    unsigned char *good = make_ckpt(VAE_METHOD_BSVI_SIR, &len); /* pi of k+1 = 10 weights */
    unsigned char *b = malloc(len);
    assert_non_null(b);
    const size_t arr = arrays_offset(good);
    assert_int_equal(get64(good, OFF_NPI), 10);
    const size_t n = (len - 8 - arr) / 4 / sizeof(vae_real);
    struct {
        size_t off;
        int kind; /* 0: u64, 1: f64, 2: network real */
        double v;
        const char *needle;
    } cases[] = {
        {OFF_K, 0, 5, "field pi"},            /* k disagrees with the stored pi length */
        {OFF_METHOD, 0, 0, "field pi"},       /* vae stores no pi */
        {OFF_LR, 1, NAN, "learning rate"},
        {OFF_LR, 1, -1e-3, "learning rate"},
        {OFF_BETA1, 1, 2.0, "beta1"},
        {OFF_EPS, 1, -1.0, "epsilon"},
        {OFF_METHOD, 0, 99, "field method"},
        {OFF_BEST_EPOCH, 0, 7, "best epoch"},
        {OFF_SECONDS, 1, NAN, "training seconds"},
        {OFF_NPI + 8, 1, NAN, "field pi"},            /* a logit */
        {OFF_NPI + 8 + 3 * 8, 1, INFINITY, "field pi"},
        {OFF_NPI + 8 + 12 * 8, 1, NAN, "field pi Adam m"},
        {OFF_NPI + 8 + 13 * 8, 1, INFINITY, "field pi Adam m"},
        {OFF_NPI + 8 + 25 * 8, 1, -1.0, "field pi Adam v"},
        {OFF_NPI + 8 + 26 * 8, 1, INFINITY, "field pi Adam v"},
        {OFF_NPI + 8 + 30 * 8, 0, 2, "field pi Adam steps"}, /* more than the 1 step taken */
        {arr + 5 * sizeof(vae_real), 2, NAN, "field parameters"},
        {arr + (n + 3) * sizeof(vae_real), 2, INFINITY, "AMSGrad m"},
        {arr + (2 * n + 3) * sizeof(vae_real), 2, -1.0, "AMSGrad v"},
        {arr + (3 * n + 3) * sizeof(vae_real), 2, -1.0, "AMSGrad vmax"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; ++i) {
        memcpy(b, good, len);
        if (cases[i].kind == 0) put64(b, cases[i].off, (uint64_t)cases[i].v);
        else if (cases[i].kind == 1) putf64(b, cases[i].off, cases[i].v);
        else {
            const vae_real r = (vae_real)cases[i].v;
            memcpy(b + cases[i].off, &r, sizeof r); /* little-endian hosts */
        }
        refix(b, len);
        expect_parse_refused(b, len, cases[i].needle);
    }
    memcpy(b, good, len); /* a data name without its NUL */
    memset(b + OFF_NAME, 'a', 32);
    refix(b, len);
    expect_parse_refused(b, len, "data name");
    memcpy(b, good, len); /* every logit -inf: no distribution */
    for (int i = 0; i < 10; ++i) putf64(b, OFF_NPI + 8 + 8 * (size_t)i, -INFINITY);
    refix(b, len);
    expect_parse_refused(b, len, "every logit");
    memcpy(b, good, len); /* one logit -inf is a slot of probability 0: accepted */
    putf64(b, OFF_NPI + 8 + 8 * 4, -INFINITY);
    refix(b, len);
    vae_trainer t;
    vae_progress p;
    char err[512];
    assert_int_equal(vae_checkpoint_parse(b, len, "ok", VAE_MAX_TRAINER_BYTES, &t, &p, err,
                                          sizeof err), 0);
    double a[10];
    assert_int_equal(bsvi_buffer_weights_get_logits(t.pi, a, 10), BSVI_OK);
    assert_true(a[4] == -INFINITY);
    vae_trainer_free(&t);
    free(b);
    free(good);

    /* no pi (vae) in version 4: its step count must be 0 */
    good = make_ckpt(VAE_METHOD_VAE, &len);
    assert_int_equal(get64(good, OFF_NPI), 0);
    put64(good, OFF_NPI + 8, 1);
    refix(good, len);
    expect_parse_refused(good, len, "field pi Adam steps");
    free(good);

    /* version 3 stores probabilities: one outside [0, 1] is refused */
    good = make_ckpt_version(VAE_METHOD_BSVI_SIR, 3, &len);
    assert_int_equal(arrays_offset(good), OFF_NPI + 8 + 80 + 8);
    const double bad_pi[3] = {NAN, -0.5, 1.5};
    for (int i = 0; i < 3; ++i) {
        putf64(good, OFF_NPI + 8 + 16, bad_pi[i]);
        refix(good, len);
        expect_parse_refused(good, len, "not in [0, 1]");
    }
    free(good);
}

/* Versions 1 (float64 arrays, no precision field), 2 (no --max-train) and 3 (pi as
 * probabilities) still load, with the same parameters (float32 <-> float64 exact in that
 * direction); versions 1-3 set pi from its probabilities (logits log pi, Adam restarted),
 * version 4 restores pi's logits and Adam state bit for bit. */
static void test_checkpoint_versions(void **state) {
    (void)state;
    vae_config c;
    config(&c, VAE_METHOD_BSVI_SIR_PI);
    vae_trainer a;
    assert_int_equal(vae_trainer_init(&a, &c, NULL), 0);
    vae_stats st;
    assert_int_equal(vae_trainer_step(&a, xbin, &st), 0);
    vae_progress pa = {4, 3, 1, -95.0, 2.0, VAE_REAL_BITS, 1234, 0};
    const unsigned versions[6] = {1, 2, 2, 3, 3, 4};
    const unsigned bits[6] = {64, 32, 64, 32, 64, VAE_REAL_BITS};
    double probs[10];
    assert_int_equal(bsvi_buffer_weights_get_probs(a.pi, probs, 10), BSVI_OK);
    for (int i = 0; i < 6; ++i) {
        unsigned char *b;
        size_t len;
        char err[512];
        assert_int_equal(vae_checkpoint_encode(&a, &pa, versions[i], bits[i], &b, &len, err,
                                               sizeof err), 0);
        assert_int_equal(get64(b, 8) & 0xffffffffu, versions[i]);
        vae_trainer t;
        vae_progress p;
        int rc = vae_checkpoint_parse(b, len, "old", VAE_MAX_TRAINER_BYTES, &t, &p, err, sizeof err);
        if (rc) print_error("version %u: %s\n", versions[i], err);
        assert_int_equal(rc, 0);
        assert_int_equal(p.version, versions[i]);
        assert_int_equal(p.precision_bits, bits[i]);
        assert_int_equal(p.max_train, versions[i] >= 3 ? 1234 : 0);
        assert_int_equal(p.epoch, 4);
        if (bits[i] >= VAE_REAL_BITS)
            assert_memory_equal(t.net.params, a.net.params, a.net.nparams * sizeof(vae_real));
        assert_int_equal(t.step, a.step);
        if (versions[i] >= 4) {
            expect_same_pi(&t, &a);
        } else { /* pi = the stored probabilities: logits log pi, Adam state 0 */
            double l[10], m[10], v[10];
            uint64_t steps = 99;
            assert_int_equal(bsvi_buffer_weights_get_logits(t.pi, l, 10), BSVI_OK);
            assert_int_equal(bsvi_buffer_weights_get_adam_state(t.pi, m, v, &steps, 10), BSVI_OK);
            for (int j = 0; j < 10; ++j)
                assert_true(l[j] == log(probs[j]) && m[j] == 0.0 && v[j] == 0.0);
            assert_int_equal(steps, 0);
        }
        vae_trainer_free(&t);
        free(b);
    }
    vae_trainer_free(&a);
}

/* A version 3 file written by an earlier build (testdata/ckpt-v3-bsvi-sir-pi.bin: the
 * fuzz seed of a 4-3-2 bsvi-sir-pi network with the logistic likelihood, k 2, one step,
 * float32 arrays) is read as that build wrote it: pi from the stored probabilities,
 * every other field as stored; written again as version 3 it gives the same bytes but
 * for pi's (the probabilities are recomputed from the logits) and the checksum. */
static void test_checkpoint_v3_file(void **state) {
    (void)state;
    size_t len;
    unsigned char *f = read_all(VAE_SOURCE_DIR "/testdata/ckpt-v3-bsvi-sir-pi.bin", &len);
    vae_trainer t;
    vae_progress p;
    char err[512];
    int rc = vae_checkpoint_parse(f, len, "v3 file", VAE_MAX_TRAINER_BYTES, &t, &p, err,
                                  sizeof err);
    if (rc) print_error("%s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(p.version, 3);
    assert_int_equal(p.precision_bits, 32);
    assert_int_equal(p.max_train, 100);
    assert_int_equal(p.epoch, 1);
    assert_int_equal(t.cfg.method, VAE_METHOD_BSVI_SIR_PI);
    assert_int_equal(t.cfg.lik, VAE_LIK_LOGISTIC);
    assert_int_equal(t.cfg.x_dim, 4);
    assert_int_equal(t.cfg.k, 2);
    assert_int_equal(t.step, 1);
    assert_string_equal(t.cfg.data, "builtin");
    assert_int_equal(get64(f, OFF_NPI), 3);
    double l[3], m[3], v[3], stored[3];
    uint64_t steps = 99;
    assert_int_equal(bsvi_buffer_weights_get_logits(t.pi, l, 3), BSVI_OK);
    assert_int_equal(bsvi_buffer_weights_get_adam_state(t.pi, m, v, &steps, 3), BSVI_OK);
    for (int j = 0; j < 3; ++j) {
        const uint64_t u = get64(f, OFF_NPI + 8 + 8 * (size_t)j);
        memcpy(&stored[j], &u, sizeof u);
        assert_true(l[j] == log(stored[j]) && m[j] == 0.0 && v[j] == 0.0);
    }
    assert_int_equal(steps, 0);
    for (size_t i = 0; i < t.net.nparams; ++i) { /* the parameters, as stored */
        const size_t off = arrays_offset(f) + 4 * i;
        const uint32_t u = (uint32_t)f[off] | (uint32_t)f[off + 1] << 8 |
                           (uint32_t)f[off + 2] << 16 | (uint32_t)f[off + 3] << 24;
        float x;
        memcpy(&x, &u, sizeof x);
        assert_true(t.net.params[i] == (vae_real)x);
    }
    unsigned char *b;
    size_t blen;
    assert_int_equal(vae_checkpoint_encode(&t, &p, 3, 32, &b, &blen, err, sizeof err), 0);
    assert_int_equal(blen, len);
    const size_t pi0 = OFF_NPI + 8, pi1 = OFF_NPI + 8 + 3 * 8;
    assert_memory_equal(b, f, pi0);
    assert_memory_equal(b + pi1, f + pi1, len - 8 - pi1);
    for (int j = 0; j < 3; ++j) {
        const uint64_t u = get64(b, pi0 + 8 * (size_t)j);
        double x;
        memcpy(&x, &u, sizeof x);
        assert_true(fabs(x - stored[j]) <= 1e-15);
    }
    free(b);
    vae_trainer_free(&t);
    free(f);
}

/* ---- the run log (item 10) ------------------------------------------------------------ */

static void write_text(const char *path, const char *text) {
    write_all(path, (const unsigned char *)text, strlen(text));
}
static char *read_text(const char *path) {
    size_t len;
    unsigned char *b = read_all(path, &len);
    char *s = malloc(len + 1);
    assert_non_null(s);
    memcpy(s, b, len);
    s[len] = '\0';
    free(b);
    return s;
}

static void test_log_reconcile(void **state) {
    (void)state;
    char path[1024], err[512];
    tmp_path(path, sizeof path, "reconcile.csv");
    const char *H = VAE_LOG_HEADER "\n";
    char text[2048], want[2048];
    size_t dropped = 99;

    /* rows past the checkpoint's epoch and an unfinished line are dropped */
    snprintf(text, sizeof text, "%s1,10,a\n2,20,b\n3,30,c\n4,40,d\n5,5", H);
    write_text(path, text);
    assert_int_equal(vae_log_reconcile(path, 3, &dropped, err, sizeof err), 0);
    assert_int_equal(dropped, 2);
    snprintf(want, sizeof want, "%s1,10,a\n2,20,b\n3,30,c\n", H);
    char *got = read_text(path);
    assert_string_equal(got, want);
    free(got);

    /* agreeing: nothing rewritten */
    assert_int_equal(vae_log_reconcile(path, 3, &dropped, err, sizeof err), 0);
    assert_int_equal(dropped, 0);

    /* a repeated epoch (written by builds before the fix): the later row is the rerun's */
    snprintf(text, sizeof text, "%s1,10,a\n2,20,b\n3,30,old\n3,30,c\n4,40,d\n", H);
    write_text(path, text);
    assert_int_equal(vae_log_reconcile(path, 4, &dropped, err, sizeof err), 0);
    assert_int_equal(dropped, 1);
    snprintf(want, sizeof want, "%s1,10,a\n2,20,b\n3,30,c\n4,40,d\n", H);
    got = read_text(path);
    assert_string_equal(got, want);
    free(got);

    /* a log begun with the diagnostics column: the same, its header kept */
    const char *HD = VAE_LOG_HEADER VAE_LOG_DIAG_COLUMNS "\n";
    snprintf(text, sizeof text, "%s1,10,a,1\n2,20,b,2\n3,30,c,3\n4,4", HD);
    write_text(path, text);
    assert_int_equal(vae_log_reconcile(path, 2, &dropped, err, sizeof err), 0);
    assert_int_equal(dropped, 2);
    snprintf(want, sizeof want, "%s1,10,a,1\n2,20,b,2\n", HD);
    got = read_text(path);
    assert_string_equal(got, want);
    free(got);
    /* a header with the column's name but something after it: refused */
    snprintf(text, sizeof text, "%s" VAE_LOG_DIAG_COLUMNS ",x\n1,10,a\n", VAE_LOG_HEADER);
    write_text(path, text);
    assert_int_not_equal(vae_log_reconcile(path, 1, &dropped, err, sizeof err), 0);
    assert_non_null(strstr(err, "header"));

    /* a log that lacks a checkpointed epoch, a gap, another header: refused, unchanged */
    const char *bad[3] = {"%s1,10,a\n2,20,b\n", "%s1,10,a\n3,30,c\n4,40,d\n", "x,y\n1,10,a\n"};
    const char *needle[3] = {"disagree", "line 3", "header"};
    for (int i = 0; i < 3; ++i) {
        snprintf(text, sizeof text, bad[i], H);
        write_text(path, text);
        assert_int_not_equal(vae_log_reconcile(path, 3, &dropped, err, sizeof err), 0);
        if (!strstr(err, needle[i])) print_error("'%s' lacks '%s'\n", err, needle[i]);
        assert_non_null(strstr(err, needle[i]));
        got = read_text(path);
        assert_string_equal(got, text);
        free(got);
    }
    remove(path);
}

/* ---- the program (items 10 and 11) ------------------------------------------------------ */

#ifdef VAE_BIN
/* Runs VAE_BIN with args (NULL-terminated, without argv[0]), stdout and stderr into
 * files of the test directory; fsize > 0 limits the size of every file it writes
 * (a full disk: writes past it fail with EFBIG). Returns the exit code, or 128 + the
 * signal. kill_after_ms > 0: SIGKILL after that long (if still running). */
static int run_vae_ex(const char *const *args, long fsize, long kill_after_ms) {
    const char *argv[64];
    size_t n = 0;
    argv[n++] = VAE_BIN;
    for (; args[n - 1] && n < 63; ++n) argv[n] = args[n - 1];
    argv[n] = NULL;
    char out[1024], errp[1024];
    tmp_path(out, sizeof out, "cli.out");
    tmp_path(errp, sizeof errp, "cli.err");
    fflush(NULL);
    const pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        const int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        const int fe = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fo < 0 || fe < 0) _exit(120);
        dup2(fo, 1);
        dup2(fe, 2);
        setenv("OPENBLAS_NUM_THREADS", "1", 1);
        if (!getenv("OPENBLAS_CORETYPE")) setenv("OPENBLAS_CORETYPE", "Haswell", 1);
        setenv("ASAN_OPTIONS", "detect_leaks=0", 1);
        if (fsize > 0) {
            signal(SIGXFSZ, SIG_IGN);
            struct rlimit rl = {(rlim_t)fsize, (rlim_t)fsize};
            setrlimit(RLIMIT_FSIZE, &rl);
        }
        execv(VAE_BIN, (char *const *)argv);
        _exit(121);
    }
    if (kill_after_ms > 0) {
        struct timespec ts = {kill_after_ms / 1000, (kill_after_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}
static int run_vae(const char *const *args) { return run_vae_ex(args, 0, 0); }

static char *cli_text(const char *name) {
    char p[1024];
    tmp_path(p, sizeof p, name);
    return read_text(p);
}
static void expect_cli_refused(const char *const *args, const char *needle) {
    const int rc = run_vae(args);
    char *e = cli_text("cli.err");
    if (rc == 0 || !strstr(e, needle)) print_error("expected exit != 0 and '%s', got %d: %s\n", needle, rc, e);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(e, needle));
    free(e);
}

static void rm_run(const char *dir) {
    static const char *const names[9] = {"log.csv",       "best.ckpt",     "last.ckpt",
                                         "train.out",     "log.csv.tmp",   "best.ckpt.tmp",
                                         "last.ckpt.tmp", "x.ckpt",        "samples.pgm"};
    char p[1100];
    for (int i = 0; i < 9; ++i) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        remove(p);
    }
    rmdir(dir);
}

/* A short run: 2 batches of 100 per epoch, method vae. */
#define RUN_ARGS(dir) "--data", "builtin", "--method", "vae", "--max-train", "200", "--out", dir

/* Item 11: nonsensical options, a second run into a run's directory, --help. */
static void test_cli_refusals(void **state) {
    (void)state;
    char dir[1024], ck[1100], logp[1100];
    tmp_path(dir, sizeof dir, "cli-run");
    rm_run(dir);
    snprintf(ck, sizeof ck, "%s/last.ckpt", dir);
    snprintf(logp, sizeof logp, "%s/log.csv", dir);

    const char *const lr0[] = {"train", RUN_ARGS(dir), "--lr", "0", NULL};
    expect_cli_refused(lr0, "--lr");
    const char *const lrneg[] = {"train", RUN_ARGS(dir), "--lr", "-1e-3", NULL};
    expect_cli_refused(lrneg, "--lr");
    const char *const lrnan[] = {"train", RUN_ARGS(dir), "--lr", "nan", NULL};
    expect_cli_refused(lrnan, "--lr");
    const char *const ep0[] = {"train", RUN_ARGS(dir), "--epochs", "0", NULL};
    expect_cli_refused(ep0, "--epochs");
    const char *const k0[] = {"train", RUN_ARGS(dir), "--k", "0", NULL};
    expect_cli_refused(k0, "--k");
    const char *const cs0[] = {"train", RUN_ARGS(dir), "--test-curve", "10", "--test-curve-samples", "0", NULL};
    expect_cli_refused(cs0, "--test-curve-samples");
    struct stat sb;
    assert_int_not_equal(stat(logp, &sb), 0); /* nothing was written */

    /* queue.sh's new run: the directory exists and holds train.out only; a repeated
     * option: the last one wins */
    mkdir(dir, 0755);
    char tout[1100];
    snprintf(tout, sizeof tout, "%s/train.out", dir);
    write_text(tout, "");
    const char *const first[] = {"train", RUN_ARGS(dir), "--epochs", "1", "--svi-rule", "adam",
                                 "--svi-step-size", "0.1", "--svi-rule", "gradient", NULL};
    assert_int_equal(run_vae(first), 0);
    vae_trainer t;
    vae_progress p;
    char err[512];
    assert_int_equal(vae_checkpoint_load(ck, &t, &p, err, sizeof err), 0);
    assert_int_equal(t.cfg.svi_rule, BSVI_STEP_GRADIENT);
    assert_true(t.cfg.svi_eta == 0.1);
    assert_int_equal(p.max_train, 200);
    assert_int_equal(p.version, VAE_CHECKPOINT_VERSION);
    vae_trainer_free(&t);
    char *log1 = read_text(logp);

    /* the same command again (or another method with the same --out): refused, untouched */
    expect_cli_refused(first, "already holds a run");
    const char *const other[] = {"train", "--data", "builtin", "--method", "iwae", "--out", dir, NULL};
    expect_cli_refused(other, "--overwrite");
    char *log2 = read_text(logp);
    assert_string_equal(log1, log2);
    free(log2);
    const char *const both[] = {"train", "--resume", ck, "--overwrite", NULL};
    expect_cli_refused(both, "contradict");

    /* --resume cannot change the configuration, nor --max-train (kept in the checkpoint) */
    const char *const mt[] = {"train", "--resume", ck, "--epochs", "2", "--max-train", "300", NULL};
    expect_cli_refused(mt, "--max-train");
    const char *const lr[] = {"train", "--resume", ck, "--epochs", "2", "--lr", "2e-3", NULL};
    expect_cli_refused(lr, "--lr");
    log2 = read_text(logp);
    assert_string_equal(log1, log2);
    free(log2);
    /* without it, the run keeps its 200 images; the same value is accepted */
    const char *const res[] = {"train", "--resume", ck, "--epochs", "2", "--max-train", "200",
                               "--out", dir, "--svi-rule", "gradient", NULL};
    assert_int_equal(run_vae(res), 0);
    char *e = cli_text("cli.err");
    assert_non_null(strstr(e, "(200 train"));
    free(e);

    /* --overwrite replaces the run */
    const char *const ow[] = {"train", RUN_ARGS(dir), "--epochs", "1", "--overwrite", NULL};
    assert_int_equal(run_vae(ow), 0);
    log2 = read_text(logp);
    assert_int_equal(strncmp(log1, log2, strlen(VAE_LOG_HEADER) + 3), 0); /* epoch 1 again */
    assert_null(strstr(log2, "\n2,"));
    free(log2);
    free(log1);

    /* a new run's log has the diagnostics column (empty for vae); a log begun by an earlier
     * build (VAE_LOG_HEADER alone) keeps exactly its columns when the run is resumed */
    {
        const char *hd = VAE_LOG_HEADER VAE_LOG_DIAG_COLUMNS "\n";
        char *cur = read_text(logp);
        assert_int_equal(strncmp(cur, hd, strlen(hd)), 0);
        char *row = cur + strlen(hd), *last = strrchr(row, ',');
        assert_non_null(last);
        assert_string_equal(last, ",\n"); /* train_ess: none for vae */
        char old[4096];
        snprintf(old, sizeof old, "%s\n%.*s\n", VAE_LOG_HEADER, (int)(last - row), row);
        free(cur);
        write_text(logp, old);
        const char *const res2[] = {"train", "--resume", ck, "--epochs", "2", NULL};
        assert_int_equal(run_vae(res2), 0);
        e = cli_text("cli.err");
        assert_non_null(strstr(e, "columns of an earlier build"));
        free(e);
        cur = read_text(logp);
        assert_int_equal(strncmp(cur, old, strlen(old)), 0); /* header and row 1 kept */
        size_t commas = 0, lines = 0;
        for (const char *c = cur + strlen(old); *c; ++c) {
            commas += *c == ',';
            lines += *c == '\n';
        }
        assert_int_equal(lines, 1);
        assert_int_equal(commas, 13); /* 14 columns, as VAE_LOG_HEADER */
        free(cur);
    }

    /* eval: zero sample counts were accepted and printed log-likelihoods of 0.0000 */
    const char *const ev[3][6] = {{"eval", "--checkpoint", ck, "--iwae-samples", "0", NULL},
                                  {"eval", "--checkpoint", ck, "--bsvi-weights", "0", NULL},
                                  {"eval", "--checkpoint", ck, "--elbo-samples", "0", NULL}};
    expect_cli_refused(ev[0], "--iwae-samples");
    expect_cli_refused(ev[1], "--bsvi-weights");
    expect_cli_refused(ev[2], "--elbo-samples");

    /* sample: a PGM of 2 rows x (mean + 1 draw), 28x28 cells with 2-pixel borders */
    char pgm[1100];
    snprintf(pgm, sizeof pgm, "%s/samples.pgm", dir);
    const char *const smp[] = {"sample", "--checkpoint", ck, "--out", pgm, "--rows", "2",
                               "--per-row", "1", NULL};
    assert_int_equal(run_vae(smp), 0);
    size_t plen = 0;
    unsigned char *pd = read_all(pgm, &plen);
    assert_true(plen > 62 * 62 && memcmp(pd, "P5\n", 3) == 0);
    assert_non_null(strstr((const char *)pd, "\n62 62\n255\n"));
    free(pd);
    const char *const smp0[] = {"sample", "--checkpoint", ck, NULL};
    expect_cli_refused(smp0, "--out");

    /* eval's BSVI-K refinement: the checkpoint's unless asked for, and named in the CSV */
    const char *const evs0[] = {"eval", "--checkpoint", ck, "--svi-step-size", "0", NULL};
    expect_cli_refused(evs0, "--svi-step-size");
    const char *const evs[2][14] = {
        {"eval", "--checkpoint", ck, "--test-subset", "3", "--iwae-samples", "4",
         "--bsvi-weights", "3", "--elbo-samples", "2", NULL},
        {"eval", "--checkpoint", ck, "--test-subset", "3", "--iwae-samples", "4",
         "--bsvi-weights", "3", "--elbo-samples", "2", "--svi-step-size", "2e-3", NULL}};
    const char *const want[2] = {",gradient,0.005,", ",gradient,0.002,"};
    for (int i = 0; i < 2; ++i) {
        assert_int_equal(run_vae(evs[i]), 0);
        char *o = cli_text("cli.out");
        if (!strstr(o, want[i])) print_error("eval output lacks '%s': %s\n", want[i], o);
        assert_non_null(strstr(o, want[i]));
        /* IWAE-4's weights: no k-hat (+inf, fewer than 21 weights: all above 0.7) */
        assert_non_null(strstr(o, "svi_eta,iwae_khat_mean,iwae_khat_median,iwae_khat_gt07,"
                                  "iwae_ess_mean\n"));
        const char *d = strstr(o, want[i]) + strlen(want[i]);
        assert_int_equal(strncmp(d, ",inf,1.0000,", 12), 0);
        const double ess = atof(d + 12);
        assert_true(ess >= 1.0 && ess <= 4.0);
        assert_non_null(strstr(o, "importance weights (PSIS)"));
        free(o);
    }
    /* IWAE-30: k-hat estimated (a tail of 6) */
    const char *const ev30[] = {"eval", "--checkpoint", ck, "--test-subset", "3", "--iwae-samples",
                                "30", "--bsvi-weights", "2", "--elbo-samples", "2", NULL};
    assert_int_equal(run_vae(ev30), 0);
    {
        char *o = cli_text("cli.out");
        const char *d = strstr(o, want[0]);
        assert_non_null(d);
        double km, kmed, frac, ess;
        assert_int_equal(sscanf(d + strlen(want[0]), "%lf,%lf,%lf,%lf", &km, &kmed, &frac, &ess),
                         4);
        assert_true(isfinite(km) && isfinite(kmed) && frac >= 0.0 && frac <= 1.0);
        assert_true(ess >= 1.0 && ess <= 30.0);
        free(o);
    }

    /* a checkpoint whose x_dim does not fit its data (eval overflowed its batch buffer) */
    vae_config c;
    config(&c, VAE_METHOD_VAE);
    c.x_dim = 2;
    assert_int_equal(vae_trainer_init(&t, &c, NULL), 0);
    vae_progress pz = {1, 1, 0, -10.0, 1.0, VAE_REAL_BITS, 0, 0};
    char small[1100];
    snprintf(small, sizeof small, "%s/x.ckpt", dir);
    assert_int_equal(vae_checkpoint_save(small, &t, &pz, err, sizeof err), 0);
    vae_trainer_free(&t);
    const char *const evx[] = {"eval", "--checkpoint", small, "--test-subset", "5", NULL};
    expect_cli_refused(evx, "x_dim");

    /* --help: the command's options on stdout, exit code 0 */
    const char *const cmds[5] = {"train", "eval", "svi-sweep", "sample", NULL};
    const char *const opts[5] = {"--overwrite", "--bsvi-weights", "--etas", "--per-row", "train"};
    for (int i = 0; i < 5; ++i) {
        const char *const h[] = {cmds[i] ? cmds[i] : "--help", cmds[i] ? "--help" : NULL, NULL};
        assert_int_equal(run_vae(h), 0);
        char *o = cli_text("cli.out");
        assert_non_null(strstr(o, "usage"));
        assert_non_null(strstr(o, opts[i]));
        free(o);
    }
    rm_run(dir);
}

/* The log rows without their timing columns (epoch_seconds, wall_seconds). */
static char *log_values(const char *path) {
    char *s = read_text(path);
    char *o = malloc(strlen(s) + 1);
    assert_non_null(o);
    size_t j = 0;
    int col = 0;
    for (size_t i = 0; s[i]; ++i) {
        if (s[i] == '\n') col = -1;
        if (s[i] == ',') ++col;
        if (col != 11 && col != 12) o[j++] = s[i];
        if (col == -1) col = 0;
    }
    o[j] = '\0';
    free(s);
    return o;
}

/* Item 10: a full disk during a checkpoint write, then --resume: the log has each epoch
 * once, with the values of an uninterrupted run (before the fix the interrupted epoch's
 * row was repeated). Then kill -9 at many points of a resumed run: the same. */
static void test_cli_interrupted(void **state) {
    (void)state;
    char ref[1024], dir[1024], ck[1100], logp[1100], rlog[1100];
    tmp_path(ref, sizeof ref, "cli-ref");
    tmp_path(dir, sizeof dir, "cli-cut");
    rm_run(ref);
    rm_run(dir);
    snprintf(ck, sizeof ck, "%s/last.ckpt", dir);
    snprintf(logp, sizeof logp, "%s/log.csv", dir);
    snprintf(rlog, sizeof rlog, "%s/log.csv", ref);
    const char *const full[] = {"train", RUN_ARGS(ref), "--epochs", "8", NULL};
    assert_int_equal(run_vae(full), 0);
    char *want = log_values(rlog);

    const char *const one[] = {"train", RUN_ARGS(dir), "--epochs", "1", NULL};
    assert_int_equal(run_vae(one), 0);
    /* epoch 2's row fits in 1 MB, its checkpoints (MBs) do not */
    const char *const two[] = {"train", "--resume", ck, "--epochs", "2", NULL};
    assert_int_not_equal(run_vae_ex(two, 1 << 20, 0), 0);
    char *e = cli_text("cli.err");
    assert_non_null(strstr(e, "disk full"));
    free(e);
    assert_int_equal(run_vae(two), 0);

    /* kill -9 at spread-out times of resumed runs, until epoch 8 is done */
    const char *const six[] = {"train", "--resume", ck, "--epochs", "8", NULL};
    const long delays[] = {20, 45, 70, 95, 120, 145, 170, 195, 220, 245, 270, 295, 320, 345};
    int killed = 0;
    for (size_t i = 0; i < sizeof delays / sizeof *delays; ++i)
        if (run_vae_ex(six, 0, delays[i]) == 128 + SIGKILL) ++killed;
    assert_int_equal(run_vae(six), 0);
    fprintf(stderr, "interrupted run: %d of %zu resumed runs killed\n", killed,
            sizeof delays / sizeof *delays);
    char *got = log_values(logp);
    if (strcmp(got, want) != 0) print_error("log after interruptions:\n%s\nwant:\n%s\n", got, want);
    assert_string_equal(got, want);
    free(got);
    free(want);
    rm_run(ref);
    rm_run(dir);
}

/* A trainer from a checkpoint the program wrote. */
static void load_ok(const char *path, vae_trainer *t, vae_progress *p) {
    char err[512];
    const int rc = vae_checkpoint_load(path, t, p, err, sizeof err);
    if (rc) print_error("%s\n", err);
    assert_int_equal(rc, 0);
}

/* bsvi-sir-pi trained 4 epochs straight and 2 epochs then --resume for 2 more: the same
 * log (but for its timing columns), parameters, AMSGrad state, step counter, and pi's
 * logits and Adam state, bit for bit (format version 4 stores pi's optimiser). The same
 * resume from a version 3 copy of the epoch-2 checkpoint (pi as probabilities) runs, with
 * pi's Adam restarted: not the uninterrupted run. */
#define PI_ARGS(dir)                                                                           \
    "--data", "builtin", "--method", "bsvi-sir-pi", "--max-train", "200", "--seed", "3",     \
        "--pi-lr", "0.05", "--out", dir
static void test_cli_resume_pi(void **state) {
    (void)state;
    char ref[1024], dir[1024], dir3[1024], ck[1100], ck3[1100], refck[1100], logp[1100],
        log3[1100], rlog[1100];
    tmp_path(ref, sizeof ref, "cli-pi-ref");
    tmp_path(dir, sizeof dir, "cli-pi-cut");
    tmp_path(dir3, sizeof dir3, "cli-pi-v3");
    rm_run(ref);
    rm_run(dir);
    rm_run(dir3);
    snprintf(ck, sizeof ck, "%s/last.ckpt", dir);
    snprintf(ck3, sizeof ck3, "%s/last.ckpt", dir3);
    snprintf(refck, sizeof refck, "%s/last.ckpt", ref);
    snprintf(logp, sizeof logp, "%s/log.csv", dir);
    snprintf(log3, sizeof log3, "%s/log.csv", dir3);
    snprintf(rlog, sizeof rlog, "%s/log.csv", ref);
    const char *const full[] = {"train", PI_ARGS(ref), "--epochs", "4", NULL};
    assert_int_equal(run_vae(full), 0);
    const char *const half[] = {"train", PI_ARGS(dir), "--epochs", "2", NULL};
    assert_int_equal(run_vae(half), 0);

    /* a version 3 copy of the run at epoch 2 (the writer of earlier builds) */
    vae_trainer t, u;
    vae_progress p, q;
    load_ok(ck, &t, &p);
    assert_int_equal(p.version, VAE_CHECKPOINT_VERSION);
    unsigned char *b;
    size_t len;
    char err[512];
    assert_int_equal(vae_checkpoint_encode(&t, &p, 3, VAE_REAL_BITS, &b, &len, err, sizeof err), 0);
    vae_trainer_free(&t);
    assert_int_equal(mkdir(dir3, 0755), 0);
    write_all(ck3, b, len);
    free(b);
    char *l2 = read_text(logp);
    write_text(log3, l2);
    free(l2);

    const char *const rest[] = {"train", "--resume", ck, "--epochs", "4", NULL};
    assert_int_equal(run_vae(rest), 0);
    char *want = log_values(rlog), *got = log_values(logp);
    if (strcmp(got, want) != 0) print_error("resumed log:\n%s\nwant:\n%s\n", got, want);
    assert_string_equal(got, want);
    free(got);
    load_ok(refck, &t, &p);
    load_ok(ck, &u, &q);
    assert_int_equal(q.epoch, 4);
    assert_int_equal(u.step, t.step);
    assert_int_equal(u.net.adam_t, t.net.adam_t);
    const size_t bytes = t.net.nparams * sizeof(vae_real);
    assert_memory_equal(u.net.params, t.net.params, bytes);
    assert_memory_equal(u.net.adam_m, t.net.adam_m, bytes);
    assert_memory_equal(u.net.adam_v, t.net.adam_v, bytes);
    assert_memory_equal(u.net.adam_vmax, t.net.adam_vmax, bytes);
    expect_same_pi(&u, &t);
    assert_int_equal(vae_trainer_checksum(&u), vae_trainer_checksum(&t));
    assert_true(q.best_epoch == p.best_epoch && q.bad_epochs == p.bad_epochs &&
                q.best_valid == p.best_valid);
    uint64_t steps = 0;
    assert_int_equal(bsvi_buffer_weights_get_adam_state(t.pi, NULL, NULL, &steps, 10), BSVI_OK);
    assert_int_equal(steps, t.step); /* pi stepped on every step, through the resume */
    vae_trainer_free(&u);

    /* the version 3 copy resumes too; pi's Adam restarted at epoch 2 */
    const char *const rest3[] = {"train", "--resume", ck3, "--epochs", "4", NULL};
    assert_int_equal(run_vae(rest3), 0);
    load_ok(ck3, &u, &q);
    assert_int_equal(q.epoch, 4);
    assert_int_equal(u.step, t.step);
    uint64_t steps3 = 0;
    assert_int_equal(bsvi_buffer_weights_get_adam_state(u.pi, NULL, NULL, &steps3, 10), BSVI_OK);
    assert_int_equal(steps3, t.step / 2);
    assert_true(vae_trainer_checksum(&u) != vae_trainer_checksum(&t));
    got = log_values(log3); /* epochs 1, 2 as copied, then 3, 4 */
    size_t rows = 0;
    for (const char *c = got; *c; ++c) rows += *c == '\n';
    assert_int_equal(rows, 5);
    const char *row3 = strstr(want, "\n3,");
    assert_non_null(row3);
    assert_int_equal(strncmp(got, want, (size_t)(row3 - want) + 1), 0);
    free(got);
    vae_trainer_free(&u);
    vae_trainer_free(&t);
    free(want);
    rm_run(ref);
    rm_run(dir);
    rm_run(dir3);
}
#endif

int main(void) {
    make_data();
    fprintf(stderr, "test_vae: data = %s\n", data_source);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_step_vae),
        cmocka_unit_test(test_step_iwae),
        cmocka_unit_test(test_step_iwae_dreg),
        cmocka_unit_test(test_step_svi),
        cmocka_unit_test(test_step_bsvi),
        cmocka_unit_test(test_step_bsvi_ds),
        cmocka_unit_test(test_step_bsvi_sir),
        cmocka_unit_test(test_step_bsvi_sir_pi),
        cmocka_unit_test(test_step_logistic),
        cmocka_unit_test(test_pi_moves),
        cmocka_unit_test(test_cache_bsvi),
        cmocka_unit_test(test_cache_bsvi_sir),
        cmocka_unit_test(test_cache_svi),
        cmocka_unit_test(test_evaluate_and_probe),
        cmocka_unit_test(test_checkpoint_roundtrip_and_resume),
        cmocka_unit_test(test_checkpoint_refusals),
        cmocka_unit_test(test_checkpoint_hostile_sizes),
        cmocka_unit_test(test_checkpoint_inconsistent),
        cmocka_unit_test(test_checkpoint_versions),
        cmocka_unit_test(test_checkpoint_v3_file),
        cmocka_unit_test(test_log_reconcile),
#ifdef VAE_BIN
        cmocka_unit_test(test_cli_refusals),
        cmocka_unit_test(test_cli_interrupted),
        cmocka_unit_test(test_cli_resume_pi),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
