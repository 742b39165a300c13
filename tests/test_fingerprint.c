/* Bitwise fingerprint of the library's numerical outputs for fixed seeds.
 *
 * Hashes (FNV-1a 64 over the bytes) everything bsvi_svi_run returns for a grid of
 * configurations (every step rule, clipping on and off, double sampling, every SVI gradient
 * form, both divergence policies including a failing call, several samples per step, the
 * built-in and a host prior, zero-density rows, odd and even dimensions), every estimator
 * computed from those runs, and the evaluator (IWAE-S, ELBO*, BSVI-K with its final
 * proposal, in small chunks). The hashes recorded below were taken before the hot loops
 * of lib/rng.c, lib/svi.c, lib/model.c and lib/evaluate.c were rewritten for speed (issue 9
 * item 4): the rewrite must give the same bits, in every build (Release with the AVX2
 * clones, the sanitizer build and -DBSVI_NO_CLONES, which use the SSE2 code only).
 *
 * The tail of the normal transform calls libm's log, and the evaluator libm's exp, whose
 * last bits may differ between C libraries (or glibc's FMA and SSE2 variants): the
 * comparison is made only where a key hashed from those libm functions matches the one
 * recorded with the fingerprint; elsewhere the test only checks that the fingerprint is
 * reproducible and is skipped otherwise. BSVI_FINGERPRINT_PRINT=1 prints the values.
 *
 * 0.2 API: the hashes are those recorded with 0.1. The calls are the 0.2 equivalents of the
 * 0.1 ones (one compute function per bound, BSVI_POINTS_FAIL where 0.1 failed a batch with
 * a zero-density point, the evaluator's SVI options for 0.1's SVI handle); the two 0.1
 * quantities that 0.2 no longer returns are rebuilt from what it returns: the health means
 * over every data point (-INFINITY when one point has zero density) and IWAE's STL encoder
 * gradient (iwae_stl_grad). */
#include <stdio.h>
#include <stdlib.h>

#include "testutil.h"

/* Recorded on x86-64 Debian 12 (glibc 2.36), before the issue 9 rewrite. */
#define FP_LIBM_KEY 0x01131ede7d6f098bull
#define FP_SVI 0xd510c193c9f75ac9ull
#define FP_EST 0x2ec90e1b3a94ca9dull
#define FP_EVAL 0x78677fd58221edf3ull

typedef struct { uint64_t h; } fnv;
static void fnv_init(fnv *f) { f->h = 0xcbf29ce484222325ull; }
static void fnv_bytes(fnv *f, const void *p, size_t n) {
    const unsigned char *c = (const unsigned char *)p;
    for (size_t i = 0; i < n; ++i) {
        f->h ^= c[i];
        f->h *= 0x100000001b3ull;
    }
}
static void fnv_u64(fnv *f, uint64_t x) { fnv_bytes(f, &x, sizeof x); }
static void fnv_doubles(fnv *f, const double *x, size_t n) { fnv_bytes(f, x, n * sizeof *x); }

/* Likelihood: a Gaussian centred per data point with a coordinate-dependent scale;
 * rows of data point 1 with z_0 > 1.2 have zero density when zero_rows is set. */
typedef struct { int zero_rows; double scale; } likdata;
static int lik(size_t n, size_t d, const double *z, const size_t *idx, double *lp, double *g,
               void *u) {
    const likdata *L = (const likdata *)u;
    for (size_t r = 0; r < n; ++r) {
        const double *zr = z + r * d;
        double a = 0.0;
        for (size_t j = 0; j < d; ++j) {
            const double c = 0.3 * (double)((idx[r] + j) % 5) - 0.6;
            const double w = L->scale * (1.0 + 0.25 * (double)(j % 3));
            a -= 0.5 * w * (zr[j] - c) * (zr[j] - c);
            if (g) g[r * d + j] = -w * (zr[j] - c);
        }
        lp[r] = a;
        if (L->zero_rows && idx[r] == 1 && zr[0] > 1.2) {
            lp[r] = -INFINITY;
            if (g)
                for (size_t j = 0; j < d; ++j) g[r * d + j] = 0.0;
        }
    }
    return 0;
}

/* Host prior: N(0, 4 I). */
static int prior4(size_t n, size_t d, const double *z, const size_t *idx, double *lp, double *g,
                  void *u) {
    (void)idx, (void)u;
    for (size_t r = 0; r < n; ++r) {
        double a = -0.5 * (double)d * log(8.0 * 3.14159265358979323846);
        for (size_t j = 0; j < d; ++j) {
            a -= z[r * d + j] * z[r * d + j] / 8.0;
            if (g) g[r * d + j] = -z[r * d + j] / 4.0;
        }
        lp[r] = a;
    }
    return 0;
}

typedef struct cfg {
    size_t B, d, k, m;
    bsvi_step_rule rule;
    double eta, clip;
    bsvi_grad_form form;
    int ds, host_prior, zero_rows;
    bsvi_divergence_policy div;
} cfg;

static bsvi_model *make_model(const cfg *c, likdata *L) {
    bsvi_model *m = NULL;
    assert_int_equal(bsvi_model_create(c->d, &m), BSVI_OK);
    assert_int_equal(bsvi_model_set_likelihood(m, lik, L), BSVI_OK);
    if (c->host_prior) assert_int_equal(bsvi_model_set_prior(m, prior4, NULL), BSVI_OK);
    return m;
}

static bsvi_proposal *make_q(size_t B, size_t d, uint64_t seed) {
    bsvi_proposal *q = NULL;
    assert_int_equal(bsvi_proposal_create(B, d, &q), BSVI_OK);
    double *mu = malloc(B * d * sizeof *mu), *ls = malloc(B * d * sizeof *ls);
    assert_non_null(mu);
    assert_non_null(ls);
    for (size_t i = 0; i < B * d; ++i) {
        mu[i] = 0.1 * (double)((i * 7 + seed) % 11) - 0.5;
        ls[i] = -0.05 * (double)((i * 3 + seed) % 13);
    }
    assert_int_equal(bsvi_proposal_set_params(q, mu, ls), BSVI_OK);
    free(mu);
    free(ls);
    return q;
}

static void hash_traj(fnv *f, const bsvi_trajectory *t) {
    const size_t B = bsvi_trajectory_batch(t), K = bsvi_trajectory_steps(t) + 1,
                 d = bsvi_trajectory_dim(t);
    fnv_u64(f, B), fnv_u64(f, K), fnv_u64(f, d);
    fnv_u64(f, (uint64_t)bsvi_trajectory_is_double_sampled(t));
    if (B == 0) return;
    double *a = malloc(B * K * d * 2 * sizeof *a);
    size_t *tk = malloc(B * sizeof *tk);
    assert_non_null(a);
    assert_non_null(tk);
    assert_int_equal(bsvi_trajectory_get_log_weights(t, a), BSVI_OK);
    fnv_doubles(f, a, B * K);
    assert_int_equal(bsvi_trajectory_get_log_joint(t, a), BSVI_OK);
    fnv_doubles(f, a, B * K);
    assert_int_equal(bsvi_trajectory_get_log_proposal(t, a), BSVI_OK);
    fnv_doubles(f, a, B * K);
    assert_int_equal(bsvi_trajectory_get_latents(t, a), BSVI_OK);
    fnv_doubles(f, a, B * K * d);
    assert_int_equal(bsvi_trajectory_get_params(t, a, a + B * K * d), BSVI_OK);
    fnv_doubles(f, a, 2 * B * K * d);
    assert_int_equal(bsvi_trajectory_get_encoder_grad(t, a, a + B * d), BSVI_OK);
    fnv_doubles(f, a, 2 * B * d);
    assert_int_equal(bsvi_trajectory_get_steps_taken(t, tk), BSVI_OK);
    for (size_t b = 0; b < B; ++b) fnv_u64(f, tk[b]);
    /* 0.2 averages over the data points where a value is finite and counts the others;
     * 0.1 averaged over every data point, which gave -INFINITY as soon as one value was
     * -INFINITY. The hash keeps the 0.1 quantity, rebuilt from the 0.2 one. */
    bsvi_health hl;
    assert_int_equal(bsvi_trajectory_health(t, NULL, &hl), BSVI_OK);
    const double h[3] = {hl.zero_svi0 ? -INFINITY : hl.svi0, hl.zero_svik ? -INFINITY : hl.svik,
                         hl.zero_bsvik ? -INFINITY : hl.bsvik};
    fnv_doubles(f, h, 3);
    free(a);
    free(tk);
}

/* Hash one result; enc, when not NULL, replaces the estimator's encoder gradient (2*B*d:
 * d_mean then d_log_std). */
static void hash_estimator(fnv *f, bsvi_estimator *e, size_t B, size_t d, const double *enc) {
    double *bnd = malloc(B * sizeof *bnd);
    assert_non_null(bnd);
    assert_int_equal(bsvi_estimator_get_bounds(e, bnd, B), BSVI_OK);
    fnv_doubles(f, bnd, B);
    const size_t n = bsvi_estimator_num_targets(e);
    size_t *di = malloc((n + 1) * sizeof *di), *sl = malloc((n + 1) * sizeof *sl);
    double *z = malloc((n * d + 1) * sizeof *z), *cf = malloc((n + 1) * sizeof *cf);
    double *g = malloc(2 * B * d * sizeof *g);
    assert_true(di && sl && z && cf && g);
    assert_int_equal(bsvi_estimator_get_targets(e, n, di, sl, z, cf), BSVI_OK);
    for (size_t i = 0; i < n; ++i) fnv_u64(f, di[i]), fnv_u64(f, sl[i]);
    fnv_doubles(f, z, n * d);
    fnv_doubles(f, cf, n);
    assert_int_equal(bsvi_estimator_get_encoder_grad(e, B, g, g + B * d), BSVI_OK);
    fnv_doubles(f, enc ? enc : g, 2 * B * d);
    free(bnd), free(di), free(sl), free(z), free(cf), free(g);
}

/* 0.1's IWAE encoder gradient with the STL form, sum_s wbar_s (STL gradient of log w_s),
 * rebuilt from a 0.2 IWAE result. 0.2 refuses STL for IWAE (biased; DReG is the unbiased
 * form), but the fingerprint was recorded with it: the bounds, targets and noise do not
 * depend on the form, so the 0.1 gradient is recomputed here from the result's latents,
 * noise and coefficients and the model's joint gradient (bsvi_model_log_joint, the
 * library's own evaluation), with 0.1's arithmetic (lib/svi.c bsvi__grad_row, the
 * samples of a data point in order, zero coefficients skipped, from +0.0). Any change in
 * the library's z, eps, coefficients, model gradient or exp changes these bits. */
static void iwae_stl_grad(bsvi_estimator *e, bsvi_model *m, const bsvi_proposal *q, size_t B,
                          size_t d, size_t S, double *enc) {
    const size_t n = B * S;
    assert_int_equal(bsvi_estimator_num_targets(e), n);
    size_t *di = malloc(n * sizeof *di);
    double *z = malloc(n * d * sizeof *z), *eps = malloc(n * d * sizeof *eps);
    double *cf = malloc(n * sizeof *cf), *lj = malloc(n * sizeof *lj);
    double *g = malloc(n * d * sizeof *g), *mu = malloc(B * d * sizeof *mu);
    double *ls = malloc(B * d * sizeof *ls), *sig = malloc(d * sizeof *sig);
    assert_true(di && z && eps && cf && lj && g && mu && ls && sig);
    assert_int_equal(bsvi_estimator_get_targets(e, n, di, NULL, z, cf), BSVI_OK);
    assert_int_equal(bsvi_estimator_get_noise(e, n, eps), BSVI_OK);
    assert_int_equal(bsvi_model_log_joint(m, n, z, di, lj, g), BSVI_OK);
    assert_int_equal(bsvi_proposal_get_params(q, mu, ls), BSVI_OK);
    double *dmu = enc, *dsg = enc + B * d;
    for (size_t b = 0; b < B; ++b) {
        for (size_t j = 0; j < d; ++j) {
            sig[j] = exp(ls[b * d + j]);
            dmu[b * d + j] = 0.0;
            dsg[b * d + j] = 0.0;
        }
        for (size_t s = 0; s < S; ++s) {
            const size_t row = b * S + s;
            const double w = cf[row];
            if (w == 0.0) continue;
            const double *gr = g + row * d, *ep = eps + row * d;
            for (size_t j = 0; j < d; ++j) {
                dmu[b * d + j] += w * (gr[j] + ep[j] / sig[j]);
                dsg[b * d + j] += w * (gr[j] * sig[j] * ep[j] + ep[j] * ep[j]);
            }
        }
    }
    free(di), free(z), free(eps), free(cf), free(lj), free(g), free(mu), free(ls), free(sig);
}

/* One configuration: two runs (the call counter advances), a failing run where the
 * configuration allows one (its trajectory must be unchanged), the estimators. */
static void run_cfg(const cfg *c, uint64_t seed, fnv *fs, fnv *fe) {
    likdata L = {c->zero_rows, 1.0};
    bsvi_model *m = make_model(c, &L);
    bsvi_proposal *q = make_q(c->B, c->d, seed);
    bsvi_svi *s = NULL;
    bsvi_trajectory *t = NULL;
    assert_int_equal(bsvi_svi_create(c->d, &s), BSVI_OK);
    assert_int_equal(bsvi_trajectory_create(&t), BSVI_OK);
    assert_int_equal(bsvi_svi_set_steps(s, c->k), BSVI_OK);
    assert_int_equal(bsvi_svi_set_step_size(s, c->eta), BSVI_OK);
    assert_int_equal(bsvi_svi_set_samples_per_step(s, c->m), BSVI_OK);
    assert_int_equal(bsvi_svi_set_step_rule(s, c->rule), BSVI_OK);
    if (c->rule == BSVI_STEP_MOMENTUM) assert_int_equal(bsvi_svi_set_momentum(s, 0.7), BSVI_OK);
    if (c->rule == BSVI_STEP_ADAM)
        assert_int_equal(bsvi_svi_set_adam(s, 0.8, 0.99, 1e-6), BSVI_OK);
    assert_int_equal(bsvi_svi_set_clip_norm(s, c->clip), BSVI_OK);
    assert_int_equal(bsvi_svi_set_grad_form(s, c->form), BSVI_OK);
    assert_int_equal(bsvi_svi_set_double_sampling(s, c->ds), BSVI_OK);
    assert_int_equal(bsvi_svi_set_divergence_policy(s, c->div), BSVI_OK);
    assert_int_equal(bsvi_svi_set_seed(s, seed * 0x9E3779B97F4A7C15ull), BSVI_OK);
    assert_int_equal(bsvi_svi_set_stream(s, seed % 7, seed % 3), BSVI_OK);
    bsvi_status st = bsvi_svi_run(s, m, q, t);
    fnv_u64(fs, (uint64_t)(int64_t)st);
    hash_traj(fs, t);
    st = bsvi_svi_run(s, m, q, t);
    fnv_u64(fs, (uint64_t)(int64_t)st);
    hash_traj(fs, t);
    if (getenv("BSVI_FINGERPRINT_VERBOSE"))
        printf("B %zu d %zu k %zu m %zu rule %d form %d ds %d hp %d zr %d clip %g div %d: %s, "
               "%zu diverged\n",
               c->B, c->d, c->k, c->m, (int)c->rule, (int)c->form, c->ds, c->host_prior,
               c->zero_rows, c->clip, (int)c->div, bsvi_status_string(st),
               bsvi_trajectory_num_diverged(t));
    if (st == BSVI_OK) {
        /* a failing call (a likelihood that becomes +inf-free NaN: scale NaN) leaves it */
        L.scale = NAN;
        fnv_u64(fs, (uint64_t)(int64_t)bsvi_svi_run(s, m, q, t));
        hash_traj(fs, t);
        L.scale = 1.0;
    }
    /* Estimators under BSVI_POINTS_FAIL: a zero-density data point fails the compute with
     * BSVI_ERR_NUMERIC, as every compute did in 0.1 (the 0.2 default reports it instead). */
    if (bsvi_trajectory_batch(t) > 0) {
        /* 0.1's kinds SVI, BSVI, BSVI-DS (BSVI for a trajectory without double sampling) and
         * BSVI-SIR with M = 3, each with its own seed. */
        for (int i = 0; i < 4; ++i) {
            bsvi_estimator *e = NULL;
            assert_int_equal(bsvi_estimator_create(c->d, &e), BSVI_OK);
            assert_int_equal(bsvi_estimator_set_seed(e, seed + (uint64_t)i), BSVI_OK);
            assert_int_equal(bsvi_estimator_set_point_policy(e, BSVI_POINTS_FAIL), BSVI_OK);
            st = i == 0   ? bsvi_estimator_svi(e, t)
                 : i == 3 ? bsvi_estimator_bsvi_sir(e, t, NULL, 3)
                          : bsvi_estimator_bsvi(e, t, NULL);
            fnv_u64(fe, (uint64_t)(int64_t)st);
            if (st == BSVI_OK) {
                bsvi_bound kind;
                assert_int_equal(bsvi_estimator_result_kind(e, &kind), BSVI_OK);
                assert_int_equal(kind, i == 0   ? BSVI_BOUND_SVI
                                       : i == 3 ? BSVI_BOUND_BSVI_SIR
                                       : c->ds  ? BSVI_BOUND_BSVI_DS
                                                : BSVI_BOUND_BSVI);
                hash_estimator(fe, e, c->B, c->d, NULL);
            }
            bsvi_estimator_destroy(e);
        }
    }
    /* ELBO and IWAE (K = k + 2) from the proposal, with the configuration's gradient form
     * where 0.1 accepted it: ELBO takes all three (analytic KL only with the standard
     * normal prior); 0.1's IWAE refused analytic KL (its set_grad_form failed and the
     * test went on with the pathwise form), took STL, which 0.2 refuses (see
     * iwae_stl_grad). */
    for (int i = 0; i < 2; ++i) {
        bsvi_estimator *e = NULL;
        assert_int_equal(bsvi_estimator_create(c->d, &e), BSVI_OK);
        assert_int_equal(bsvi_estimator_set_seed(e, seed + 11u), BSVI_OK);
        assert_int_equal(bsvi_estimator_set_point_policy(e, BSVI_POINTS_FAIL), BSVI_OK);
        double *enc = NULL;
        if (i == 0) {
            const bsvi_grad_form form =
                (c->form == BSVI_GRAD_ANALYTIC_KL && c->host_prior) ? BSVI_GRAD_PATHWISE : c->form;
            st = bsvi_estimator_elbo(e, m, q, form);
        } else if (c->form == BSVI_GRAD_STL) {
            assert_int_equal(bsvi_estimator_iwae(e, m, q, c->k + 2, BSVI_GRAD_STL),
                             BSVI_ERR_BAD_VALUE);
            assert_int_equal(bsvi_estimator_batch(e), 0); /* refused before any work */
            st = bsvi_estimator_iwae(e, m, q, c->k + 2, BSVI_GRAD_PATHWISE);
            if (st == BSVI_OK) {
                enc = malloc(2 * c->B * c->d * sizeof *enc);
                assert_non_null(enc);
                iwae_stl_grad(e, m, q, c->B, c->d, c->k + 2, enc);
            }
        } else {
            st = bsvi_estimator_iwae(e, m, q, c->k + 2, BSVI_GRAD_PATHWISE);
        }
        fnv_u64(fe, (uint64_t)(int64_t)st);
        if (st == BSVI_OK) hash_estimator(fe, e, c->B, c->d, enc);
        free(enc);
        bsvi_estimator_destroy(e);
    }
    bsvi_trajectory_destroy(t);
    bsvi_svi_destroy(s);
    bsvi_proposal_destroy(q);
    bsvi_model_destroy(m);
}

static void fingerprint_svi(uint64_t *hs, uint64_t *he) {
    fnv fs, fe;
    fnv_init(&fs);
    fnv_init(&fe);
    const size_t dims[] = {1, 2, 7, 50};
    const size_t Bs[] = {1, 3, 17};
    const bsvi_step_rule rules[] = {BSVI_STEP_GRADIENT, BSVI_STEP_MOMENTUM, BSVI_STEP_ADAM};
    const bsvi_grad_form forms[] = {BSVI_GRAD_PATHWISE, BSVI_GRAD_STL, BSVI_GRAD_ANALYTIC_KL};
    uint64_t seed = 1;
    for (size_t id = 0; id < 4; ++id)
        for (size_t ir = 0; ir < 3; ++ir)
            for (size_t ifm = 0; ifm < 3; ++ifm)
                for (int ds = 0; ds < 2; ++ds) {
                    cfg c;
                    memset(&c, 0, sizeof c);
                    c.d = dims[id];
                    c.B = Bs[(id + ir + (size_t)ds) % 3];
                    c.k = (size_t)((ir + ifm) % 3) * 2 + (ds ? 1u : 0u); /* 0..5 */
                    c.m = 1 + (size_t)((id + ifm) % 2) * 2;              /* 1 or 3 */
                    c.rule = rules[ir];
                    c.form = forms[ifm];
                    c.eta = c.rule == BSVI_STEP_ADAM ? 0.05 : 0.02;
                    c.clip = ((id + ir + ifm) % 2) ? 0.5 : 0.0;
                    c.ds = ds;
                    c.host_prior = (c.form != BSVI_GRAD_ANALYTIC_KL) && ((id + (ds ? 1u : 0u)) % 2);
                    c.zero_rows = (ir == 1);
                    c.div = BSVI_DIVERGENCE_FAIL;
                    run_cfg(&c, seed++, &fs, &fe);
                }
    /* Divergence: a step size that throws log-std out of range for some data points. */
    for (int pol = 0; pol < 2; ++pol)
        for (size_t id = 0; id < 4; ++id) {
            cfg c;
            memset(&c, 0, sizeof c);
            c.d = dims[id];
            c.B = 17;
            c.k = 6;
            c.m = 1 + (size_t)pol;
            c.rule = id % 2 ? BSVI_STEP_MOMENTUM : BSVI_STEP_GRADIENT;
            c.form = BSVI_GRAD_PATHWISE;
            c.eta = id == 0 ? 1.5 : id == 3 ? 0.6 : 1.0; /* some points diverge, not all */
            c.clip = id == 2 ? 40.0 : 0.0;
            c.ds = (int)(id % 2);
            c.div = pol ? BSVI_DIVERGENCE_FREEZE : BSVI_DIVERGENCE_FAIL;
            run_cfg(&c, seed++, &fs, &fe);
        }
    /* the benchmark's shape, once */
    {
        cfg c;
        memset(&c, 0, sizeof c);
        c.B = 100, c.d = 50, c.k = 9, c.m = 1, c.eta = 1e-3;
        c.rule = BSVI_STEP_GRADIENT, c.form = BSVI_GRAD_PATHWISE;
        run_cfg(&c, seed++, &fs, &fe);
    }
    *hs = fs.h;
    *he = fe.h;
}

static uint64_t fingerprint_eval(void) {
    fnv f;
    fnv_init(&f);
    const size_t dims[] = {1, 3, 50};
    for (size_t id = 0; id < 3; ++id)
        for (int hp = 0; hp < 2; ++hp) {
            cfg c;
            memset(&c, 0, sizeof c);
            c.d = dims[id];
            c.B = 5;
            c.host_prior = hp;
            c.zero_rows = (int)(id == 1);
            likdata L = {c.zero_rows, 1.0};
            bsvi_model *m = make_model(&c, &L);
            bsvi_proposal *q = make_q(c.B, c.d, 100 + id);
            bsvi_proposal *fq = make_q(c.B, c.d, 200 + id);
            bsvi_evaluator *ev = NULL;
            assert_int_equal(bsvi_evaluator_create(c.d, &ev), BSVI_OK);
            assert_int_equal(bsvi_evaluator_set_seed(ev, 77 + id), BSVI_OK);
            assert_int_equal(bsvi_evaluator_set_stream(ev, 3, 5 * id), BSVI_OK);
            /* a data point whose weights are all zero fails the estimate, as in 0.1 */
            assert_int_equal(bsvi_evaluator_set_point_policy(ev, BSVI_POINTS_FAIL), BSVI_OK);
            const size_t chunks[] = {7, 64, 10000};
            double out[5], e[5], kl[5], rc[5];
            for (size_t ic = 0; ic < 3; ++ic) {
                assert_int_equal(bsvi_evaluator_set_chunk_rows(ev, chunks[ic]), BSVI_OK);
                const size_t S = 1 + 37 * ic;
                bsvi_status st = bsvi_evaluator_iwae(ev, m, q, S, out);
                fnv_u64(&f, (uint64_t)(int64_t)st);
                if (st == BSVI_OK) fnv_doubles(&f, out, 5);
                st = bsvi_evaluator_elbo_star(ev, m, q, S + 1, e, kl, rc);
                fnv_u64(&f, (uint64_t)(int64_t)st);
                if (st == BSVI_OK) fnv_doubles(&f, e, 5), fnv_doubles(&f, kl, 5), fnv_doubles(&f, rc, 5);
                for (int ds = 0; ds < 2; ++ds) {
                    /* the refinement of 0.1's freshly created SVI handle with these changes */
                    bsvi_svi_options so = bsvi_svi_options_default();
                    so.step_size = 0.05;
                    so.double_sampling = ds;
                    so.samples_per_step = 1 + ic;
                    so.rule = (bsvi_step_rule)ic;
                    assert_int_equal(bsvi_evaluator_set_svi_options(ev, &so), BSVI_OK);
                    st = bsvi_evaluator_bsvi(ev, m, q, 1 + 4 * ic + (ds ? 1u : 0u), out, fq);
                    fnv_u64(&f, (uint64_t)(int64_t)st);
                    if (st == BSVI_OK) {
                        double p[2 * 5 * 50];
                        fnv_doubles(&f, out, 5);
                        assert_int_equal(bsvi_proposal_get_params(fq, p, p + 5 * c.d), BSVI_OK);
                        fnv_doubles(&f, p, 2 * 5 * c.d);
                    }
                }
            }
            bsvi_evaluator_destroy(ev);
            bsvi_proposal_destroy(fq);
            bsvi_proposal_destroy(q);
            bsvi_model_destroy(m);
        }
    /* the evaluation shapes, scaled down: IWAE-5000 over 2 points at d = 50 */
    {
        cfg c;
        memset(&c, 0, sizeof c);
        c.d = 50, c.B = 2;
        likdata L = {0, 1.0};
        bsvi_model *m = make_model(&c, &L);
        bsvi_proposal *q = make_q(2, 50, 9);
        bsvi_evaluator *ev = NULL;
        double out[2];
        assert_int_equal(bsvi_evaluator_create(50, &ev), BSVI_OK);
        assert_int_equal(bsvi_evaluator_iwae(ev, m, q, 5000, out), BSVI_OK);
        fnv_doubles(&f, out, 2);
        bsvi_svi_options so = bsvi_svi_options_default();
        so.step_size = 1e-3;
        assert_int_equal(bsvi_evaluator_set_svi_options(ev, &so), BSVI_OK);
        assert_int_equal(bsvi_evaluator_bsvi(ev, m, q, 500, out, NULL), BSVI_OK);
        fnv_doubles(&f, out, 2);
        bsvi_evaluator_destroy(ev);
        bsvi_proposal_destroy(q);
        bsvi_model_destroy(m);
    }
    return f.h;
}

/* Hash of the libm functions the library's results depend on (log in the normal
 * transform's tails, exp in the evaluator and estimators, sqrt is exact). */
static uint64_t libm_key(void) {
    fnv f;
    fnv_init(&f);
    volatile double x = 0x1.0p-54;
    for (int i = 0; i < 4000; ++i) {
        const double v = (double)x * (1.0 + (double)i * 0x1.3p-9);
        const double a = log(v), b = exp(-(double)i * 0x1.1p-7 + 3.0), c = sqrt(-log(v));
        fnv_doubles(&f, &a, 1), fnv_doubles(&f, &b, 1), fnv_doubles(&f, &c, 1);
        x = x * 1.0091;
        if (x > 0.075) x = 0x1.0p-54 * (1.0 + (double)i);
    }
    return f.h;
}

static void test_fingerprint(void **state) {
    (void)state;
    uint64_t hs, he, hs2, he2;
    fingerprint_svi(&hs, &he);
    const uint64_t hv = fingerprint_eval();
    const uint64_t key = libm_key();
    fingerprint_svi(&hs2, &he2);
    assert_true(hs == hs2 && he == he2); /* reproducible within a process */
    assert_true(hv == fingerprint_eval());
    const char *pr = getenv("BSVI_FINGERPRINT_PRINT");
    if (pr && *pr)
        printf("#define FP_LIBM_KEY 0x%016llxull\n#define FP_SVI 0x%016llxull\n"
               "#define FP_EST 0x%016llxull\n#define FP_EVAL 0x%016llxull\n",
               (unsigned long long)key, (unsigned long long)hs, (unsigned long long)he,
               (unsigned long long)hv);
    if (key != FP_LIBM_KEY) {
        printf("libm differs from the one the fingerprint was recorded with "
               "(key 0x%016llx): comparison skipped\n",
               (unsigned long long)key);
        skip();
    }
    if (hs != FP_SVI || he != FP_EST || hv != FP_EVAL)
        print_error("fingerprint changed: svi 0x%016llx (want 0x%016llx), estimators 0x%016llx "
                    "(want 0x%016llx), evaluator 0x%016llx (want 0x%016llx)\n",
                    (unsigned long long)hs, (unsigned long long)FP_SVI, (unsigned long long)he,
                    (unsigned long long)FP_EST, (unsigned long long)hv,
                    (unsigned long long)FP_EVAL);
    assert_true(hs == FP_SVI);
    assert_true(he == FP_EST);
    assert_true(hv == FP_EVAL);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_fingerprint)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
