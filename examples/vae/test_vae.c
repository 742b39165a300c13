/* Tests of the VAE example's training glue and checkpoints (train.c, checkpoint.c).
 *
 * - one training step per method (vae, iwae, iwae+DReG, svi, bsvi, bsvi-ds,
 *   bsvi-sir, bsvi-sir-pi, and bsvi-sir with the discretised logistic) on the
 *   shipped subset (random images when data.c is not built in): the step runs,
 *   the bound is finite, the encoder and the decoder parameters both change;
 * - validation bound, test-set evaluation and the SVI probe run and are finite;
 * - checkpoints: save/load round trip is bitwise; a resumed trainer takes the
 *   same next step as an uninterrupted one; truncated, corrupted, foreign and
 *   wrong-version files are refused with a message.
 * The real 784-200-200-50 architecture is used with a batch of 16. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

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

/* pi moves under bsvi-sir-pi and stays uniform under bsvi-sir. */
/* The SVI-based methods gather their decoder targets' forward rows from the kept
 * callback forwards (nn.h, the forward cache) instead of recomputing them: the
 * step is bitwise the one without the cache, and the gather happened. */
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
    assert_true(sa.bound == sb.bound);
    assert_memory_equal(a.net.params, b.net.params, a.net.nparams * sizeof(vae_real));
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
    assert_int_equal(bsvi_estimator_get_buffer_weights(t.est, pi, 10), BSVI_OK);
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
    vae_stats st;
    assert_int_equal(vae_trainer_svi_probe(&t, xbin, TB, BSVI_STEP_GRADIENT, 1e-3, 5, 0, &st), 0);
    assert_true(isfinite(st.svi0) && isfinite(st.svik));
    bsvi_evaluator_destroy(ev);
    vae_trainer_free(&t);
}

/* ---- checkpoints ----------------------------------------------------------------- */

static void tmp_path(char *buf, size_t n, const char *name) {
    snprintf(buf, n, "%s/%s", VAE_TEST_TMPDIR, name);
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

static void test_checkpoint_roundtrip_and_resume(void **state) {
    (void)state;
    vae_config c;
    config(&c, VAE_METHOD_BSVI_SIR_PI);
    snprintf(c.data, sizeof c.data, "builtin");
    vae_trainer a;
    assert_int_equal(vae_trainer_init(&a, &c, NULL), 0);
    vae_stats st;
    for (int s = 0; s < 2; ++s) assert_int_equal(vae_trainer_step(&a, xbin, &st), 0);
    vae_progress pa = {3, 2, 1, -90.5, 12.25, VAE_REAL_BITS};
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
    double pia[10], pib[10];
    assert_int_equal(bsvi_estimator_get_buffer_weights(a.est, pia, 10), BSVI_OK);
    assert_int_equal(bsvi_estimator_get_buffer_weights(b.est, pib, 10), BSVI_OK);
    for (int i = 0; i < 10; ++i) assert_true(fabs(pia[i] - pib[i]) < 1e-12);
    vae_trainer_free(&b);
    vae_trainer_free(&a);

    /* resume: for a method without pi state, the next step after a reload is bitwise the same */
    config(&c, VAE_METHOD_BSVI_SIR);
    assert_int_equal(vae_trainer_init(&a, &c, NULL), 0);
    for (int s = 0; s < 2; ++s) assert_int_equal(vae_trainer_step(&a, xbin, &st), 0);
    assert_int_equal(vae_checkpoint_save(path, &a, &pa, err, sizeof err), 0);
    assert_int_equal(vae_checkpoint_load(path, &b, &pb, err, sizeof err), 0);
    assert_int_equal(vae_trainer_step(&a, xbin, &st), 0);
    assert_int_equal(vae_trainer_step(&b, xbin, &st), 0);
    assert_memory_equal(a.net.params, b.net.params, a.net.nparams * sizeof(vae_real));
    vae_trainer_free(&b);
    vae_trainer_free(&a);
}

static void test_checkpoint_refusals(void **state) {
    (void)state;
    vae_config c;
    config(&c, VAE_METHOD_VAE);
    vae_trainer a;
    assert_int_equal(vae_trainer_init(&a, &c, NULL), 0);
    vae_progress pa = {1, 1, 0, -100.0, 1.0, VAE_REAL_BITS};
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
