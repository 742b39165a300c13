/*
 * fuzz_api.c: libFuzzer harness driving libbsvi's public API from fuzzer bytes.
 *
 *   clang -fsanitize=fuzzer,address,undefined -Iinclude fuzz/fuzz_api.c lib/[a-z]*.c -lm
 *
 * (or the CMake target `fuzz_api` with -DBSVI_BUILD_FUZZ=ON and CC=clang). The same
 * file, linked with fuzz/replay_main.c instead of libFuzzer, replays the committed
 * corpus as an ordinary ctest (`fuzz_corpus_replay`) under any compiler.
 *
 * One input is a program: a few header bytes choose the latent dimension, batch size and
 * model (host prior or not), then a sequence of operations each picks a public entry
 * point and its arguments (sizes bounded small; real parameters drawn from a palette that
 * includes 0, -0, negative, NaN, +-INFINITY, +-DBL_MAX, 1e+-300, denormals and raw
 * 8-byte patterns). The likelihood and prior callbacks take their outputs from the same
 * byte stream: benign values, extreme ones, -INFINITY, NaN, error codes, partial writes.
 * When the bytes run out the callbacks turn benign (a standard normal likelihood).
 *
 * Invariants checked after every call (abort() on violation, which libFuzzer reports):
 * - the status is a known bsvi_status value; on error the handle's message is non-empty;
 * - on BSVI_OK no output holds NaN (bounds, log weights, coefficients, gradients, pi,
 *   evaluator outputs), target coefficients lie in [0, 1] and sum to 1 per data point,
 *   pi sums to 1;
 * - on error the caller's output buffers (filled with a sentinel) are unchanged and the
 *   handle's observable results (trajectory contents, estimator results, proposal
 *   parameters) are bitwise what they were before the call.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bsvi/bsvi.h"

#define MAX_D 3u
#define MAX_B 4u
#define MAX_K 8u   /* SVI steps */
#define MAX_N 10u  /* buffer slots / GIWAE terms */
#define MAX_S 16u  /* samples */
#define MAX_OPS 48u
#define SENTINEL (-7777.25)

#define CHECK(cond)                                                                       \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "fuzz_api: invariant violated: %s (%s:%d)\n", #cond, __FILE__, \
                    __LINE__);                                                            \
            abort();                                                                      \
        }                                                                                 \
    } while (0)

/* FUZZ_TRACE=1 in the environment prints each operation and status (for triage). */
static int g_trace = -1;
static void trace(const char *what, int st) {
    if (g_trace < 0) g_trace = getenv("FUZZ_TRACE") != NULL;
    if (g_trace) fprintf(stderr, "fuzz_api: %s -> %d\n", what, st);
}

/* FUZZ_STATS=1 prints, at exit, how many operations of each kind ran and the statuses seen. */
static const char *const g_op_names[13] = {
    "proposal_set_params", "proposal_sample/density/entropy/kl", "model_log_joint",
    "svi_config", "svi_config", "svi_run", "svi_run", "estimator_create", "estimator_config",
    "estimator_compute", "estimator_pi_step", "evaluator", "trajectory_health"};
static unsigned long g_ops[13], g_status[12], g_cb_calls, g_inputs;

static void count_status(bsvi_status st) {
    const int i = -(int)st;
    if (i >= 0 && i < 12) g_status[i]++;
}

__attribute__((destructor)) static void print_stats(void) {
    if (!getenv("FUZZ_STATS") || g_inputs == 0) return;
    fprintf(stderr, "fuzz_stats: inputs %lu, callback calls %lu\n", g_inputs, g_cb_calls);
    unsigned long merged[13] = {0};
    for (int i = 0; i < 13; ++i) merged[i] = g_ops[i];
    merged[3] += merged[4], merged[4] = 0, merged[5] += merged[6], merged[6] = 0;
    for (int i = 0; i < 13; ++i)
        if (merged[i]) fprintf(stderr, "fuzz_stats: op %-36s %lu\n", g_op_names[i], merged[i]);
    for (int i = 0; i < 12; ++i)
        if (g_status[i])
            fprintf(stderr, "fuzz_stats: status %-3d %-52s %lu\n", -i,
                    bsvi_status_string((bsvi_status)-i), g_status[i]);
}

/* ---- the byte stream ----------------------------------------------------------- */

typedef struct fz {
    const uint8_t *p;
    size_t n, i;
} fz;

static int fz_more(const fz *f) { return f->i < f->n; }

static uint8_t u8(fz *f) { return f->i < f->n ? f->p[f->i++] : 0u; }

static uint32_t u16(fz *f) {
    uint32_t a = u8(f);
    return a | ((uint32_t)u8(f) << 8);
}

static uint64_t u64(fz *f) {
    uint64_t v = 0;
    for (int s = 0; s < 64; s += 8) v |= (uint64_t)u8(f) << s;
    return v;
}

/* A real number from a palette of troublesome values. */
static double pick_double(fz *f) {
    const uint8_t m = u8(f);
    switch (m % 20u) {
    case 0: return 0.0;
    case 1: return -0.0;
    case 2: return (double)(int8_t)u8(f) / 16.0;
    case 3: return (double)(int16_t)u16(f) * 1e-3;
    case 4: return 1e300;
    case 5: return -1e300;
    case 6: return DBL_MAX;
    case 7: return -DBL_MAX;
    case 8: return INFINITY;
    case 9: return -INFINITY;
    case 10: return NAN;
    case 11: return 4.9406564584124654e-324; /* smallest denormal */
    case 12: return -2.2250738585072014e-308 / 3.0;
    case 13: return 1e-300;
    case 14: {
        uint64_t bits = u64(f);
        double d;
        memcpy(&d, &bits, sizeof d);
        return d;
    }
    case 15: return (double)(u8(f) % 61u) - 30.0; /* around the log-std range */
    case 16: return 30.0 + (double)(int8_t)u8(f) * 1e-3;
    case 17: return 1e-8 * (double)(u8(f) + 1u);
    default: return (double)(int8_t)u8(f) / 64.0;
    }
}

/* ---- callbacks -------------------------------------------------------------------- */

typedef struct cbstate {
    fz *f;
    int benign_only;
    unsigned long calls;
} cbstate;

static void benign_row(size_t dim, const double *z, double *ld, double *g) {
    double ss = 0.0;
    for (size_t j = 0; j < dim; ++j) {
        const double e = z[j] - 0.5;
        ss += e * e;
        if (g) g[j] = -e;
    }
    *ld = -0.5 * ss;
}

/* Likelihood and prior callback: behaviour per call and per row from the byte stream. */
static int fuzz_density(size_t n, size_t dim, const double *z, const size_t *data_index,
                        double *log_density, double *grad, void *user_data) {
    cbstate *c = (cbstate *)user_data;
    c->calls++;
    g_cb_calls++;
    CHECK(n >= 1 && dim >= 1 && dim <= MAX_D);
    for (size_t r = 0; r < n; ++r) CHECK(data_index[r] < MAX_B);
    if (c->benign_only || !fz_more(c->f)) {
        for (size_t r = 0; r < n; ++r)
            benign_row(dim, z + r * dim, &log_density[r], grad ? grad + r * dim : NULL);
        return 0;
    }
    const uint8_t mode = u8(c->f);
    size_t rows = n;
    switch (mode % 10u) {
    case 0: return 1 + (int)(u8(c->f) % 100u); /* failure code */
    case 1: rows = u8(c->f) % (n + 1u); break;   /* partial write: later rows untouched */
    default: break;
    }
    for (size_t r = 0; r < rows; ++r) {
        double *g = grad ? grad + r * dim : NULL;
        benign_row(dim, z + r * dim, &log_density[r], g);
        if (!fz_more(c->f)) continue;
        const uint8_t rm = u8(c->f);
        if (rm % 4u == 0) log_density[r] = pick_double(c->f);
        if (g && rm % 8u == 1) g[u8(c->f) % dim] = pick_double(c->f);
        if (rm % 16u == 2) log_density[r] += pick_double(c->f);
    }
    return 0;
}

static int fuzz_progress(size_t done, size_t total, void *user_data) {
    (void)total;
    uint8_t *budget = (uint8_t *)user_data;
    CHECK(done <= total);
    if (*budget == 0) return 0;
    return --*budget == 0; /* cancel after this many calls */
}

/* ---- invariant helpers ------------------------------------------------------------------ */

static void check_status(bsvi_status st) {
    count_status(st);
    CHECK(st <= BSVI_OK && st >= BSVI_ERR_CANCELLED);
    const char *s = bsvi_status_string(st);
    CHECK(s != NULL && strcmp(s, "unknown status") != 0);
}

static void check_err(bsvi_status st, const char *msg) {
    check_status(st);
    if (st != BSVI_OK) CHECK(msg != NULL && msg[0] != '\0');
}

static void check_no_nan(const double *a, size_t n) {
    for (size_t i = 0; i < n; ++i) CHECK(!isnan(a[i]));
}

static void fill(double *a, size_t n) {
    for (size_t i = 0; i < n; ++i) a[i] = SENTINEL;
}

static void check_sentinel(const double *a, size_t n) {
    const double s = SENTINEL;
    for (size_t i = 0; i < n; ++i) CHECK(memcmp(&a[i], &s, sizeof s) == 0);
}

static int same(const void *a, const void *b, size_t bytes) { return memcmp(a, b, bytes) == 0; }

/* Everything observable in a trajectory. */
typedef struct tsnap {
    size_t B, k, d, diverged;
    int ds;
    double lw[MAX_B * (MAX_K + 1)], lp[MAX_B * (MAX_K + 1)], lq[MAX_B * (MAX_K + 1)];
    double z[MAX_B * (MAX_K + 1) * MAX_D], mu[MAX_B * (MAX_K + 1) * MAX_D],
        ls[MAX_B * (MAX_K + 1) * MAX_D];
    double gm[MAX_B * MAX_D], gs[MAX_B * MAX_D];
    size_t taken[MAX_B];
} tsnap;

static void traj_snap(const bsvi_trajectory *t, tsnap *s) {
    memset(s, 0, sizeof *s);
    s->B = bsvi_trajectory_batch(t);
    if (s->B == 0) {
        double x;
        CHECK(bsvi_trajectory_get_log_weights(t, &x) == BSVI_ERR_BAD_STATE);
        return;
    }
    s->k = bsvi_trajectory_steps(t);
    s->d = bsvi_trajectory_dim(t);
    s->ds = bsvi_trajectory_is_double_sampled(t);
    s->diverged = bsvi_trajectory_num_diverged(t);
    CHECK(s->B <= MAX_B && s->k <= MAX_K && s->d <= MAX_D);
    CHECK(bsvi_trajectory_get_log_weights(t, s->lw) == BSVI_OK);
    CHECK(bsvi_trajectory_get_log_joint(t, s->lp) == BSVI_OK);
    CHECK(bsvi_trajectory_get_log_proposal(t, s->lq) == BSVI_OK);
    CHECK(bsvi_trajectory_get_latents(t, s->z) == BSVI_OK);
    CHECK(bsvi_trajectory_get_params(t, s->mu, s->ls) == BSVI_OK);
    CHECK(bsvi_trajectory_get_encoder_grad(t, s->gm, s->gs) == BSVI_OK);
    CHECK(bsvi_trajectory_get_steps_taken(t, s->taken) == BSVI_OK);
}

static void traj_check_ok(const tsnap *s) {
    const size_t sc = s->B * (s->k + 1), vec = sc * s->d;
    check_no_nan(s->lw, sc);
    check_no_nan(s->lp, sc);
    check_no_nan(s->lq, sc);
    for (size_t i = 0; i < sc; ++i) CHECK(s->lw[i] != INFINITY && s->lp[i] != INFINITY);
    for (size_t i = 0; i < vec; ++i) {
        CHECK(isfinite(s->z[i]) && isfinite(s->mu[i]));
        CHECK(s->ls[i] >= BSVI_MIN_LOG_STD && s->ls[i] <= BSVI_MAX_LOG_STD);
    }
    check_no_nan(s->gm, s->B * s->d);
    check_no_nan(s->gs, s->B * s->d);
    size_t div = 0;
    for (size_t b = 0; b < s->B; ++b) {
        CHECK(s->taken[b] <= s->k);
        div += s->taken[b] < s->k;
    }
    CHECK(div == s->diverged);
}

/* Everything observable in an estimator's result and buffer weights. */
typedef struct esnap {
    size_t B, nt, npi;
    double bounds[MAX_B];
    size_t tidx[MAX_B * MAX_S], tslot[MAX_B * MAX_S];
    double tz[MAX_B * MAX_S * MAX_D], coef[MAX_B * MAX_S];
    double gm[MAX_B * MAX_D], gs[MAX_B * MAX_D];
    int has_enc, has_z;
    double pi[MAX_N], pig[MAX_N];
} esnap;

static void est_snap(const bsvi_estimator *e, size_t d, esnap *s) {
    memset(s, 0, sizeof *s);
    s->B = bsvi_estimator_batch(e);
    s->nt = bsvi_estimator_num_targets(e);
    s->npi = bsvi_estimator_num_buffer_weights(e);
    CHECK(s->npi <= MAX_N);
    if (s->npi) {
        const bsvi_bound kind = bsvi_estimator_kind(e);
        const int pik = kind == BSVI_BOUND_BSVI || kind == BSVI_BOUND_BSVI_DS ||
                        kind == BSVI_BOUND_BSVI_SIR || kind == BSVI_BOUND_GIWAE;
        CHECK(pik);
        CHECK(bsvi_estimator_get_buffer_weights(e, s->pi, s->npi) == BSVI_OK);
        CHECK(bsvi_estimator_get_pi_gradient(e, s->pig, s->npi) == BSVI_OK);
    }
    if (s->B == 0) {
        CHECK(s->nt == 0);
        return;
    }
    CHECK(s->B <= MAX_B && s->nt <= MAX_B * MAX_S && s->nt % s->B == 0);
    CHECK(bsvi_estimator_get_bounds(e, s->bounds, s->B) == BSVI_OK);
    bsvi_status st = bsvi_estimator_get_targets(e, s->nt, s->tidx, s->tslot, s->tz, s->coef);
    s->has_z = st == BSVI_OK ? 1 : 0;
    if (!s->has_z) {
        CHECK(st == BSVI_ERR_BAD_STATE); /* GIWAE: no latents */
        CHECK(bsvi_estimator_get_targets(e, s->nt, s->tidx, s->tslot, NULL, s->coef) == BSVI_OK);
    }
    st = bsvi_estimator_get_encoder_grad(e, s->B, s->gm, s->gs);
    s->has_enc = st == BSVI_OK;
    if (!s->has_enc) CHECK(st == BSVI_ERR_BAD_STATE);
    (void)d;
}

static void est_check_ok(const esnap *s, size_t d) {
    if (s->npi) {
        double sum = 0.0;
        for (size_t i = 0; i < s->npi; ++i) {
            CHECK(s->pi[i] >= 0.0 && s->pi[i] <= 1.0);
            CHECK(isfinite(s->pig[i]));
            sum += s->pi[i];
        }
        CHECK(fabs(sum - 1.0) <= 1e-9);
    }
    if (s->B == 0) return;
    check_no_nan(s->bounds, s->B);
    for (size_t b = 0; b < s->B; ++b) CHECK(s->bounds[b] != INFINITY);
    const size_t T = s->nt / s->B;
    for (size_t b = 0; b < s->B; ++b) {
        double sum = 0.0;
        for (size_t t = 0; t < T; ++t) {
            const double c = s->coef[b * T + t];
            CHECK(c >= 0.0 && c <= 1.0);
            CHECK(s->tidx[b * T + t] == b);
            sum += c;
        }
        CHECK(fabs(sum - 1.0) <= 1e-9 * (double)(T + 1));
    }
    if (s->has_z) check_no_nan(s->tz, s->nt * d);
    if (s->has_enc) {
        check_no_nan(s->gm, s->B * d);
        check_no_nan(s->gs, s->B * d);
    }
}

/* ---- the program ------------------------------------------------------------------- */

typedef struct world {
    fz f;
    size_t d, B;
    cbstate lik, prior;
    bsvi_model *model;
    bsvi_proposal *q, *fq;
    bsvi_svi *svi;
    bsvi_trajectory *traj;
    bsvi_estimator *est;
    bsvi_evaluator *ev;
    uint8_t svi_cancel, ev_cancel;
} world;

static size_t small(fz *f, size_t mod) { return (size_t)(u8(f) % mod); }

static void op_proposal(world *w) {
    const size_t n = w->B * w->d;
    double mean[MAX_B * MAX_D], ls[MAX_B * MAX_D], m0[MAX_B * MAX_D], l0[MAX_B * MAX_D];
    CHECK(bsvi_proposal_get_params(w->q, m0, l0) == BSVI_OK);
    const uint8_t how = u8(&w->f);
    for (size_t i = 0; i < n; ++i) {
        mean[i] = (how & 1u) ? pick_double(&w->f) : (double)(int8_t)u8(&w->f) / 32.0;
        ls[i] = (how & 2u) ? pick_double(&w->f) : (double)(int8_t)u8(&w->f) / 64.0;
    }
    bsvi_status st = bsvi_proposal_set_params(w->q, mean, ls);
    check_err(st, bsvi_proposal_last_error(w->q));
    double m1[MAX_B * MAX_D], l1[MAX_B * MAX_D];
    CHECK(bsvi_proposal_get_params(w->q, m1, l1) == BSVI_OK);
    if (st == BSVI_OK) {
        CHECK(same(m1, mean, n * sizeof(double)) && same(l1, ls, n * sizeof(double)));
    } else {
        CHECK(st == BSVI_ERR_BAD_VALUE);
        CHECK(same(m1, m0, n * sizeof(double)) && same(l1, l0, n * sizeof(double)));
    }
}

static void op_proposal_misc(world *w) {
    const size_t S = 1 + small(&w->f, 4);
    double z[MAX_B * 4 * MAX_D], eps[MAX_B * 4 * MAX_D], lq[MAX_B * 4], out[MAX_B];
    fill(z, MAX_B * 4 * MAX_D);
    CHECK(bsvi_proposal_sample(w->q, S, z, (u8(&w->f) & 1u) ? eps : NULL) == BSVI_OK);
    for (size_t i = 0; i < w->B * S * w->d; ++i) CHECK(isfinite(z[i]));
    CHECK(bsvi_proposal_log_density(w->q, S, z, lq) == BSVI_OK);
    check_no_nan(lq, w->B * S);
    CHECK(bsvi_proposal_entropy(w->q, out) == BSVI_OK);
    check_no_nan(out, w->B);
    CHECK(bsvi_proposal_kl_standard_normal(w->q, out) == BSVI_OK);
    check_no_nan(out, w->B);
    if (u8(&w->f) & 1u) CHECK(bsvi_proposal_set_seed(w->q, u64(&w->f)) == BSVI_OK);
    if (u8(&w->f) & 1u)
        CHECK(bsvi_proposal_set_stream(w->q, u64(&w->f), u64(&w->f) % 4096u) == BSVI_OK);
}

static void op_log_joint(world *w) {
    const size_t n = 1 + small(&w->f, 4);
    double z[4 * MAX_D], lj[4], g[4 * MAX_D];
    size_t idx[4];
    for (size_t i = 0; i < n * w->d; ++i) z[i] = pick_double(&w->f);
    for (size_t r = 0; r < n; ++r) idx[r] = small(&w->f, w->B);
    fill(lj, 4);
    fill(g, 4 * MAX_D);
    const int want_g = u8(&w->f) & 1u;
    bsvi_status st = bsvi_model_log_joint(w->model, n, z, idx, lj, want_g ? g : NULL);
    check_err(st, bsvi_model_last_error(w->model));
    if (st == BSVI_OK) {
        check_no_nan(lj, n);
        for (size_t r = 0; r < n; ++r) CHECK(lj[r] != INFINITY);
    } else {
        check_sentinel(lj, 4);
        check_sentinel(g, 4 * MAX_D);
    }
}

static void op_svi_config(world *w) {
    bsvi_status st = BSVI_OK;
    switch (u8(&w->f) % 14u) {
    case 0: st = bsvi_svi_set_steps(w->svi, small(&w->f, MAX_K + 2)); break;
    case 1: st = bsvi_svi_set_step_size(w->svi, pick_double(&w->f)); break;
    case 2: st = bsvi_svi_set_samples_per_step(w->svi, small(&w->f, 4)); break;
    case 3: st = bsvi_svi_set_step_rule(w->svi, (bsvi_step_rule)((int)small(&w->f, 5) - 1)); break;
    case 4: st = bsvi_svi_set_momentum(w->svi, pick_double(&w->f)); break;
    case 5: {
        double b1 = pick_double(&w->f), b2 = pick_double(&w->f), e = pick_double(&w->f);
        st = bsvi_svi_set_adam(w->svi, b1, b2, e);
        break;
    }
    case 6: st = bsvi_svi_set_clip_norm(w->svi, pick_double(&w->f)); break;
    case 7: st = bsvi_svi_set_grad_form(w->svi, (bsvi_grad_form)((int)small(&w->f, 6) - 1)); break;
    case 8: st = bsvi_svi_set_double_sampling(w->svi, (int)small(&w->f, 3)); break;
    case 9:
        st = bsvi_svi_set_divergence_policy(w->svi,
                                            (bsvi_divergence_policy)((int)small(&w->f, 4) - 1));
        break;
    case 10: st = bsvi_svi_set_seed(w->svi, u64(&w->f)); break;
    case 11: st = bsvi_svi_set_stream(w->svi, u64(&w->f), u64(&w->f)); break;
    case 12:
        w->svi_cancel = (uint8_t)small(&w->f, 6);
        st = bsvi_svi_set_progress(w->svi, (u8(&w->f) & 1u) ? fuzz_progress : NULL,
                                   &w->svi_cancel);
        break;
    default: {
        /* A tiny step size: the run always survives. */
        st = bsvi_svi_set_step_size(w->svi, 1e-4);
        break;
    }
    }
    check_err(st, bsvi_svi_last_error(w->svi));
    CHECK(bsvi_svi_steps(w->svi) <= MAX_K + 1);
    const double eta = bsvi_svi_step_size(w->svi);
    CHECK(eta > 0.0 && isfinite(eta));
}

static tsnap g_t0, g_t1;

static void op_svi_run(world *w) {
    traj_snap(w->traj, &g_t0);
    const int use_final = bsvi_svi_steps(w->svi) <= MAX_K;
    if (!use_final) return; /* k = MAX_K + 1 would overflow the snapshot arrays */
    bsvi_status st = bsvi_svi_run(w->svi, w->model, w->q, w->traj);
    trace("svi_run", (int)st);
    check_err(st, bsvi_svi_last_error(w->svi));
    traj_snap(w->traj, &g_t1);
    if (st == BSVI_OK) {
        CHECK(g_t1.B == w->B && g_t1.d == w->d && g_t1.k == bsvi_svi_steps(w->svi));
        traj_check_ok(&g_t1);
    } else {
        CHECK(same(&g_t0, &g_t1, sizeof g_t0));
    }
}

static void op_est_create(world *w) {
    bsvi_estimator *e = NULL;
    const int kind = (int)small(&w->f, 9) - 1;
    bsvi_status st = bsvi_estimator_create((bsvi_bound)kind, w->d, &e);
    check_status(st);
    if (st != BSVI_OK) {
        CHECK(e == NULL && (kind < 0 || kind > 6) && st == BSVI_ERR_BAD_VALUE);
        return;
    }
    CHECK((int)bsvi_estimator_kind(e) == kind);
    bsvi_estimator_destroy(w->est);
    w->est = e;
}

static void op_est_config(world *w) {
    if (!w->est) return;
    bsvi_estimator *e = w->est;
    bsvi_status st = BSVI_OK;
    switch (u8(&w->f) % 10u) {
    case 0: st = bsvi_estimator_set_num_samples(e, small(&w->f, MAX_S / MAX_B * 2)); break;
    case 1: st = bsvi_estimator_set_num_resamples(e, small(&w->f, MAX_S / MAX_B * 2)); break;
    case 2: st = bsvi_estimator_set_grad_form(e, (bsvi_grad_form)((int)small(&w->f, 6) - 1)); break;
    case 3: {
        const size_t n = small(&w->f, MAX_N + 1);
        double pi[MAX_N];
        const uint8_t how = u8(&w->f);
        double sum = 0.0;
        for (size_t i = 0; i < n; ++i) {
            pi[i] = (how & 1u) ? pick_double(&w->f) : (double)(u8(&w->f) % 8u);
            sum += pi[i];
        }
        if ((how & 2u) && sum > 0.0 && isfinite(sum))
            for (size_t i = 0; i < n; ++i) pi[i] /= sum;
        st = bsvi_estimator_set_buffer_weights(e, n ? pi : NULL, n);
        break;
    }
    case 4: st = bsvi_estimator_set_uniform_buffer_weights(e, small(&w->f, MAX_N + 1)); break;
    case 5: st = bsvi_estimator_set_pi_optimisation(e, (int)small(&w->f, 3)); break;
    case 6: {
        double lr = pick_double(&w->f), b1 = pick_double(&w->f), b2 = pick_double(&w->f);
        st = bsvi_estimator_set_pi_adam(e, lr, b1, b2);
        break;
    }
    case 7: st = bsvi_estimator_set_seed(e, u64(&w->f)); break;
    case 8: st = bsvi_estimator_set_stream(e, u64(&w->f), u64(&w->f)); break;
    default: {
        double mp = SENTINEL;
        st = bsvi_estimator_get_mean_position(e, &mp);
        if (st == BSVI_OK)
            CHECK(mp >= 0.0 && mp <= 1.0);
        else
            CHECK(mp == SENTINEL);
        break;
    }
    }
    check_err(st, bsvi_estimator_last_error(e));
    CHECK(bsvi_estimator_num_buffer_weights(e) <= MAX_N);
}

static esnap g_e0, g_e1;

static void op_est_compute(world *w) {
    if (!w->est) return;
    bsvi_estimator *e = w->est;
    est_snap(e, w->d, &g_e0);
    bsvi_status st;
    const bsvi_bound kind = bsvi_estimator_kind(e);
    if (kind == BSVI_BOUND_GIWAE && (u8(&w->f) & 3u) != 0) {
        const size_t B = 1 + small(&w->f, MAX_B), n = 1 + small(&w->f, MAX_N);
        double lj[MAX_B * MAX_N], lq[MAX_B * MAX_N];
        const uint8_t how = u8(&w->f);
        for (size_t i = 0; i < B * n; ++i) {
            lj[i] = (how & 1u) ? pick_double(&w->f) : (double)(int8_t)u8(&w->f);
            lq[i] = (how & 2u) ? pick_double(&w->f) : (double)(int8_t)u8(&w->f) / 4.0;
        }
        st = bsvi_estimator_compute_terms(e, B, n, lj, lq);
    } else {
        /* the result arrays hold B * MAX_S targets: K must not exceed that */
        st = bsvi_estimator_compute(e, w->model, w->q, w->traj);
    }
    trace("estimator_compute", (int)kind * 100 + (int)st);
    check_err(st, bsvi_estimator_last_error(e));
    est_snap(e, w->d, &g_e1);
    if (st == BSVI_OK) {
        est_check_ok(&g_e1, w->d);
        CHECK(g_e1.B >= 1);
    } else {
        CHECK(same(&g_e0, &g_e1, sizeof g_e0));
    }
}

static void op_pi_step(world *w) {
    if (!w->est) return;
    est_snap(w->est, w->d, &g_e0);
    bsvi_status st = bsvi_estimator_pi_step(w->est);
    trace("pi_step", (int)st);
    check_err(st, bsvi_estimator_last_error(w->est));
    est_snap(w->est, w->d, &g_e1);
    if (st == BSVI_OK)
        est_check_ok(&g_e1, w->d);
    else
        CHECK(same(&g_e0, &g_e1, sizeof g_e0));
}

static void op_evaluate(world *w) {
    bsvi_evaluator *ev = w->ev;
    bsvi_status st;
    double o1[MAX_B], o2[MAX_B], o3[MAX_B];
    double fm0[MAX_B * MAX_D], fl0[MAX_B * MAX_D], fm1[MAX_B * MAX_D], fl1[MAX_B * MAX_D];
    fill(o1, MAX_B);
    fill(o2, MAX_B);
    fill(o3, MAX_B);
    CHECK(bsvi_proposal_get_params(w->fq, fm0, fl0) == BSVI_OK);
    const uint8_t which = u8(&w->f);
    switch (which % 6u) {
    case 0: st = bsvi_evaluator_set_chunk_rows(ev, small(&w->f, 9)); break;
    case 1: st = bsvi_evaluator_iwae(ev, w->model, w->q, small(&w->f, MAX_S + 1), o1); break;
    case 2:
        st = bsvi_evaluator_bsvi(ev, w->model, w->q, w->svi, small(&w->f, MAX_K + 2), o1,
                                 (which & 8u) ? w->fq : NULL);
        break;
    case 3:
        st = bsvi_evaluator_elbo_star(ev, w->model, (which & 8u) ? w->fq : w->q,
                                      small(&w->f, MAX_S + 1), o1, (which & 16u) ? o2 : NULL,
                                      o3);
        break;
    case 4:
        w->ev_cancel = (uint8_t)small(&w->f, 6);
        st = bsvi_evaluator_set_progress(ev, (which & 8u) ? fuzz_progress : NULL, &w->ev_cancel);
        break;
    default:
        st = bsvi_evaluator_set_stream(ev, u64(&w->f), u64(&w->f) % 1024u);
        break;
    }
    trace("evaluator", (int)(which % 6u) * 100 + (int)st);
    check_err(st, bsvi_evaluator_last_error(ev));
    CHECK(bsvi_proposal_get_params(w->fq, fm1, fl1) == BSVI_OK);
    const size_t nd = w->B * w->d;
    if (st == BSVI_OK) {
        if (which % 6u >= 1 && which % 6u <= 3) {
            check_no_nan(o1, w->B);
            for (size_t b = 0; b < w->B; ++b) CHECK(o1[b] != INFINITY);
            if (which % 6u == 3) {
                check_no_nan(o3, w->B);
                if (which & 16u) check_no_nan(o2, w->B);
            }
        }
        for (size_t i = 0; i < nd; ++i)
            CHECK(isfinite(fm1[i]) && fl1[i] >= BSVI_MIN_LOG_STD && fl1[i] <= BSVI_MAX_LOG_STD);
    } else {
        check_sentinel(o1, MAX_B);
        check_sentinel(o2, MAX_B);
        check_sentinel(o3, MAX_B);
        CHECK(same(fm0, fm1, nd * sizeof(double)) && same(fl0, fl1, nd * sizeof(double)));
    }
}

static void op_health(world *w) {
    if (bsvi_trajectory_batch(w->traj) == 0) return;
    const size_t K = bsvi_trajectory_steps(w->traj) + 1;
    double pi[MAX_N + 1];
    const size_t n = small(&w->f, MAX_N + 2);
    for (size_t i = 0; i < n; ++i) pi[i] = 1.0 / (double)n;
    if (n && (u8(&w->f) & 1u)) pi[small(&w->f, n)] = pick_double(&w->f);
    double a = SENTINEL, b = SENTINEL, c = SENTINEL;
    bsvi_status st = bsvi_trajectory_health(w->traj, (u8(&w->f) & 1u) ? NULL : pi, n, &a, &b, &c);
    check_err(st, bsvi_trajectory_last_error(w->traj));
    if (st == BSVI_OK) {
        (void)K;
        /* means over data points: -INFINITY is legal (zero density), NaN is not, unless a
         * weight itself is NaN, which the trajectory never holds */
        CHECK(!isnan(a) && !isnan(b) && !isnan(c));
    } else {
        CHECK(a == SENTINEL && b == SENTINEL && c == SENTINEL);
    }
}

static void world_free(world *w) {
    bsvi_estimator_destroy(w->est);
    bsvi_evaluator_destroy(w->ev);
    bsvi_trajectory_destroy(w->traj);
    bsvi_svi_destroy(w->svi);
    bsvi_proposal_destroy(w->q);
    bsvi_proposal_destroy(w->fq);
    bsvi_model_destroy(w->model);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    world w;
    memset(&w, 0, sizeof w);
    w.f.p = data;
    w.f.n = size;
    const uint8_t h = u8(&w.f);
    w.d = 1 + (size_t)(h % MAX_D);
    w.B = 1 + (size_t)((h >> 2) % MAX_B);
    w.lik.f = &w.f;
    w.prior.f = &w.f;
    w.lik.benign_only = (h & 0x10u) != 0;
    w.prior.benign_only = (h & 0x20u) != 0;

    CHECK(bsvi_model_create(w.d, &w.model) == BSVI_OK);
    CHECK(bsvi_model_set_likelihood(w.model, fuzz_density, &w.lik) == BSVI_OK);
    if (h & 0x40u) CHECK(bsvi_model_set_prior(w.model, fuzz_density, &w.prior) == BSVI_OK);
    CHECK(bsvi_proposal_create(w.B, w.d, &w.q) == BSVI_OK);
    CHECK(bsvi_proposal_create(w.B, w.d, &w.fq) == BSVI_OK);
    CHECK(bsvi_svi_create(w.d, &w.svi) == BSVI_OK);
    CHECK(bsvi_svi_set_steps(w.svi, 3) == BSVI_OK);
    CHECK(bsvi_trajectory_create(&w.traj) == BSVI_OK);
    CHECK(bsvi_evaluator_create(w.d, &w.ev) == BSVI_OK);
    CHECK(bsvi_evaluator_set_chunk_rows(w.ev, 8) == BSVI_OK);

    g_inputs++;
    for (unsigned ops = 0; ops < MAX_OPS && fz_more(&w.f); ++ops) {
        const unsigned op = u8(&w.f) % 13u;
        g_ops[op]++;
        switch (op) {
        case 0: op_proposal(&w); break;
        case 1: op_proposal_misc(&w); break;
        case 2: op_log_joint(&w); break;
        case 3:
        case 4: op_svi_config(&w); break;
        case 5:
        case 6: op_svi_run(&w); break;
        case 7: op_est_create(&w); break;
        case 8: op_est_config(&w); break;
        case 9: op_est_compute(&w); break;
        case 10: op_pi_step(&w); break;
        case 11: op_evaluate(&w); break;
        default: op_health(&w); break;
        }
    }
    world_free(&w);
    return 0;
}
