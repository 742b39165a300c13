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
 *   evaluator outputs), target coefficients lie in [0, 1] and sum to 1 per data point, or
 *   are all 0 for a data point whose bound is -INFINITY (zero density; counted by
 *   num_zero_points, and never under BSVI_POINTS_FAIL), pi sums to 1, the handles'
 *   counters (get_stats) moved by what the call did, the options and streams read back
 *   are the ones set;
 * - on error the caller's output buffers (filled with a sentinel) are unchanged and the
 *   handle's observable results (trajectory contents, estimator results and counters,
 *   buffer weights with their optimiser state, proposal parameters, options) are bitwise
 *   what they were before the call;
 * - a bound compute never changes the buffer weights it reads.
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
    "svi_config", "svi_config", "svi_run", "svi_run", "estimator/weights_create",
    "estimator/weights_config", "estimator_compute", "weights_accumulate/step", "evaluator",
    "trajectory_health"};
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

/* Everything observable in an estimator's result, stream and counters. */
typedef struct esnap {
    size_t B, nt, nzero;
    int has_kind, has_enc, has_z, has_eps;
    bsvi_bound kind;
    double bounds[MAX_B];
    size_t tidx[MAX_B * MAX_S], tslot[MAX_B * MAX_S];
    double tz[MAX_B * MAX_S * MAX_D], coef[MAX_B * MAX_S], tlw[MAX_B * MAX_S];
    double eps[MAX_B * MAX_S * MAX_D];
    double gm[MAX_B * MAX_D], gs[MAX_B * MAX_D];
    uint64_t seed, counter, offset;
    bsvi_stats stats;
} esnap;

static void est_snap(const bsvi_estimator *e, esnap *s) {
    memset(s, 0, sizeof *s);
    CHECK(bsvi_estimator_get_stream(e, &s->seed, &s->counter, &s->offset) == BSVI_OK);
    CHECK(bsvi_estimator_get_stats(e, &s->stats) == BSVI_OK);
    s->B = bsvi_estimator_batch(e);
    s->nt = bsvi_estimator_num_targets(e);
    s->nzero = bsvi_estimator_num_zero_points(e);
    bsvi_status st = bsvi_estimator_result_kind(e, &s->kind);
    s->has_kind = st == BSVI_OK;
    if (s->B == 0) {
        CHECK(st == BSVI_ERR_BAD_STATE && s->nt == 0 && s->nzero == 0);
        double x;
        CHECK(bsvi_estimator_get_bounds(e, &x, 0) != BSVI_OK);
        return;
    }
    CHECK(s->has_kind && (int)s->kind >= 0 && (int)s->kind <= 6);
    CHECK(s->B <= MAX_B && s->nt <= MAX_B * MAX_S && s->nt % s->B == 0 && s->nzero <= s->B);
    CHECK(bsvi_estimator_get_bounds(e, s->bounds, s->B) == BSVI_OK);
    st = bsvi_estimator_get_targets(e, s->nt, s->tidx, s->tslot, s->tz, s->coef);
    s->has_z = st == BSVI_OK;
    if (!s->has_z) {
        CHECK(st == BSVI_ERR_BAD_STATE && s->kind == BSVI_BOUND_GIWAE); /* no latents */
        CHECK(bsvi_estimator_get_targets(e, s->nt, s->tidx, s->tslot, NULL, s->coef) == BSVI_OK);
    }
    CHECK(bsvi_estimator_get_target_log_weights(e, s->nt, s->tlw) == BSVI_OK);
    st = bsvi_estimator_get_noise(e, s->nt, s->eps);
    s->has_eps = st == BSVI_OK;
    CHECK(s->has_eps == (s->kind == BSVI_BOUND_ELBO || s->kind == BSVI_BOUND_IWAE));
    if (!s->has_eps) CHECK(st == BSVI_ERR_BAD_STATE);
    st = bsvi_estimator_get_encoder_grad(e, s->B, s->gm, s->gs);
    s->has_enc = st == BSVI_OK;
    CHECK(s->has_enc == (s->kind != BSVI_BOUND_GIWAE));
    if (!s->has_enc) CHECK(st == BSVI_ERR_BAD_STATE);
}

/* The results of a successful compute; fail_policy: BSVI_POINTS_FAIL was in force. */
static void est_check_ok(const esnap *s, size_t d, int fail_policy) {
    check_no_nan(s->bounds, s->B);
    check_no_nan(s->tlw, s->nt);
    const size_t T = s->nt / s->B;
    size_t zero = 0;
    for (size_t b = 0; b < s->B; ++b) {
        CHECK(s->bounds[b] != INFINITY);
        const int z = s->bounds[b] == -INFINITY;
        zero += (size_t)z;
        double sum = 0.0;
        for (size_t t = 0; t < T; ++t) {
            const double c = s->coef[b * T + t];
            CHECK(c >= 0.0 && c <= 1.0);
            CHECK(s->tidx[b * T + t] == b);
            CHECK(s->tlw[b * T + t] != INFINITY);
            sum += c;
        }
        if (z)
            CHECK(sum == 0.0);
        else
            CHECK(fabs(sum - 1.0) <= 1e-9 * (double)(T + 1));
        /* ELBO and IWAE give a zero-density point a zero encoder gradient */
        if (z && (s->kind == BSVI_BOUND_ELBO || s->kind == BSVI_BOUND_IWAE))
            for (size_t j = 0; j < d; ++j) CHECK(s->gm[b * d + j] == 0.0 && s->gs[b * d + j] == 0.0);
    }
    CHECK(zero == s->nzero);
    if (fail_policy) CHECK(zero == 0);
    if (s->has_z) check_no_nan(s->tz, s->nt * d);
    if (s->has_eps) check_no_nan(s->eps, s->nt * d);
    if (s->has_enc) {
        check_no_nan(s->gm, s->B * d);
        check_no_nan(s->gs, s->B * d);
    }
}

/* Everything observable in a buffer-weights handle (NULL: n = 0). */
#define MAX_W (MAX_N + 1u)
typedef struct wsnap {
    size_t n;
    double a[MAX_W], p[MAX_W], m[MAX_W], v[MAX_W], g[MAX_W], mp;
    uint64_t steps, count;
} wsnap;

static void w_snap(const bsvi_buffer_weights *pw, wsnap *s) {
    memset(s, 0, sizeof *s);
    s->n = bsvi_buffer_weights_size(pw);
    if (!pw) return;
    CHECK(s->n >= 1 && s->n <= MAX_W);
    CHECK(bsvi_buffer_weights_get_logits(pw, s->a, s->n) == BSVI_OK);
    CHECK(bsvi_buffer_weights_get_probs(pw, s->p, s->n) == BSVI_OK);
    CHECK(bsvi_buffer_weights_get_adam_state(pw, s->m, s->v, &s->steps, s->n) == BSVI_OK);
    CHECK(bsvi_buffer_weights_get_gradient(pw, s->g, &s->count, s->n) == BSVI_OK);
    CHECK(bsvi_buffer_weights_mean_position(pw, &s->mp) == BSVI_OK);
    double x;
    CHECK(bsvi_buffer_weights_get_probs(pw, &x, s->n + 1) == BSVI_ERR_SIZE_MISMATCH);
}

static void w_check(const wsnap *s) {
    if (s->n == 0) return;
    double sum = 0.0, mx = -INFINITY;
    for (size_t i = 0; i < s->n; ++i) {
        CHECK(s->p[i] >= 0.0 && s->p[i] <= 1.0);
        CHECK(!isnan(s->a[i]) && s->a[i] != INFINITY);
        CHECK(isfinite(s->m[i]) && isfinite(s->v[i]) && s->v[i] >= 0.0 && isfinite(s->g[i]));
        if (s->a[i] > mx) mx = s->a[i];
        sum += s->p[i];
    }
    CHECK(isfinite(mx));
    CHECK(fabs(sum - 1.0) <= 1e-9);
    CHECK(s->mp >= 0.0 && s->mp <= 1.0 + 1e-12); /* E_pi[i/(n-1)], rounding allowed */
}

static int same_options(const bsvi_svi_options *a, const bsvi_svi_options *b) {
    return a->steps == b->steps && same(&a->step_size, &b->step_size, sizeof(double)) &&
           a->samples_per_step == b->samples_per_step && a->rule == b->rule &&
           same(&a->momentum, &b->momentum, sizeof(double)) &&
           same(&a->adam_beta1, &b->adam_beta1, sizeof(double)) &&
           same(&a->adam_beta2, &b->adam_beta2, sizeof(double)) &&
           same(&a->adam_epsilon, &b->adam_epsilon, sizeof(double)) &&
           same(&a->clip_norm, &b->clip_norm, sizeof(double)) && a->grad_form == b->grad_form &&
           a->double_sampling == b->double_sampling && a->divergence == b->divergence;
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
    bsvi_buffer_weights *pi; /* NULL: uniform */
    bsvi_evaluator *ev;
    int est_fail, ev_fail;   /* BSVI_POINTS_FAIL in force */
    uint8_t svi_cancel, ev_cancel;
} world;

static size_t small(fz *f, size_t mod) { return (size_t)(u8(f) % mod); }

/* Options from o with one field replaced by a fuzzed value (possibly outside its domain). */
static void fuzz_options(fz *f, bsvi_svi_options *o) {
    switch (u8(f) % 12u) {
    case 0: o->steps = small(f, MAX_K + 2); break;
    case 1: o->step_size = pick_double(f); break;
    case 2: o->samples_per_step = small(f, 4); break;
    case 3: o->rule = (bsvi_step_rule)((int)small(f, 5) - 1); break;
    case 4: o->momentum = pick_double(f); break;
    case 5: o->adam_beta1 = pick_double(f); break;
    case 6: o->adam_beta2 = pick_double(f); break;
    case 7: o->adam_epsilon = pick_double(f); break;
    case 8: o->clip_norm = pick_double(f); break;
    case 9: o->grad_form = (bsvi_grad_form)((int)small(f, 6) - 1); break;
    case 10: o->double_sampling = (int)small(f, 3); break;
    default: o->divergence = (bsvi_divergence_policy)((int)small(f, 4) - 1); break;
    }
}

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
    bsvi_svi_options o0, o1, o;
    CHECK(bsvi_svi_get_options(w->svi, &o0) == BSVI_OK);
    o = o0;
    switch (u8(&w->f) % 16u) {
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
    case 10: {
        const uint64_t seed = u64(&w->f);
        uint64_t s1, c1;
        st = bsvi_svi_set_seed(w->svi, seed);
        CHECK(bsvi_svi_get_stream(w->svi, &s1, &c1, NULL) == BSVI_OK);
        CHECK(st != BSVI_OK || (s1 == seed && c1 == 0));
        break;
    }
    case 11: {
        const uint64_t c = u64(&w->f), off = u64(&w->f);
        uint64_t c1, o1v;
        st = bsvi_svi_set_stream(w->svi, c, off);
        CHECK(bsvi_svi_get_stream(w->svi, NULL, &c1, &o1v) == BSVI_OK);
        CHECK(st != BSVI_OK || (c1 == c && o1v == off));
        break;
    }
    case 12:
        w->svi_cancel = (uint8_t)small(&w->f, 6);
        st = bsvi_svi_set_progress(w->svi, (u8(&w->f) & 1u) ? fuzz_progress : NULL,
                                   &w->svi_cancel);
        break;
    case 13: /* every option at once, one of them fuzzed */
        fuzz_options(&w->f, &o);
        st = bsvi_svi_set_options(w->svi, &o);
        check_err(st, bsvi_svi_last_error(w->svi));
        CHECK(bsvi_svi_get_options(w->svi, &o1) == BSVI_OK);
        CHECK(same_options(&o1, st == BSVI_OK ? &o : &o0));
        break;
    case 14: {
        uint64_t seed, counter, offset;
        CHECK(bsvi_svi_get_stream(w->svi, &seed, &counter, &offset) == BSVI_OK);
        bsvi_stats a, b;
        CHECK(bsvi_svi_get_stats(w->svi, &a) == BSVI_OK);
        if (u8(&w->f) & 1u) {
            CHECK(bsvi_svi_reset_stats(w->svi) == BSVI_OK);
            CHECK(bsvi_svi_get_stats(w->svi, &b) == BSVI_OK);
            CHECK(b.calls == 0 && b.data_points == 0 && b.likelihood_calls == 0 &&
                  b.svi_steps == 0);
        }
        break;
    }
    default: {
        /* A tiny step size: the run always survives. */
        st = bsvi_svi_set_step_size(w->svi, 1e-4);
        break;
    }
    }
    check_err(st, bsvi_svi_last_error(w->svi));
    if (st != BSVI_OK) { /* a refused setter changes nothing */
        CHECK(bsvi_svi_get_options(w->svi, &o1) == BSVI_OK);
        CHECK(same_options(&o1, &o0));
    }
    CHECK(bsvi_svi_steps(w->svi) <= MAX_K + 1);
    const double eta = bsvi_svi_step_size(w->svi);
    CHECK(eta > 0.0 && isfinite(eta));
}

static tsnap g_t0, g_t1;

static void op_svi_run(world *w) {
    traj_snap(w->traj, &g_t0);
    const int use_final = bsvi_svi_steps(w->svi) <= MAX_K;
    if (!use_final) return; /* k = MAX_K + 1 would overflow the snapshot arrays */
    bsvi_stats s0, s1;
    uint64_t c0, c1;
    CHECK(bsvi_svi_get_stats(w->svi, &s0) == BSVI_OK);
    CHECK(bsvi_svi_get_stream(w->svi, NULL, &c0, NULL) == BSVI_OK);
    bsvi_status st = bsvi_svi_run(w->svi, w->model, w->q, w->traj);
    trace("svi_run", (int)st);
    check_err(st, bsvi_svi_last_error(w->svi));
    traj_snap(w->traj, &g_t1);
    CHECK(bsvi_svi_get_stats(w->svi, &s1) == BSVI_OK);
    CHECK(bsvi_svi_get_stream(w->svi, NULL, &c1, NULL) == BSVI_OK);
    if (st == BSVI_OK) {
        const size_t k = bsvi_svi_steps(w->svi);
        CHECK(g_t1.B == w->B && g_t1.d == w->d && g_t1.k == k);
        traj_check_ok(&g_t1);
        CHECK(s1.calls == s0.calls + 1 && s1.data_points == s0.data_points + w->B);
        CHECK(s1.svi_steps == s0.svi_steps + k && s1.likelihood_calls > s0.likelihood_calls);
        CHECK(s1.zero_points == s0.zero_points && c1 == c0 + 1);
    } else {
        CHECK(same(&g_t0, &g_t1, sizeof g_t0));
        CHECK(same(&s0, &s1, sizeof s0) && c1 == c0);
    }
}


/* A new estimator (dimension usually the world's) or new buffer weights (n slots). */
static void op_create(world *w) {
    const uint8_t what = u8(&w->f);
    if (what & 1u) {
        bsvi_buffer_weights *pw = (bsvi_buffer_weights *)&w->f; /* create must reset it */
        const size_t n = small(&w->f, MAX_W + 1);
        bsvi_status st = bsvi_buffer_weights_create(n, &pw);
        check_status(st);
        if (st != BSVI_OK) {
            CHECK(pw == NULL && n == 0 && st == BSVI_ERR_ZERO_SIZE);
            return;
        }
        wsnap s;
        w_snap(pw, &s);
        w_check(&s);
        CHECK(s.n == n && s.count == 0 && s.steps == 0);
        for (size_t i = 0; i < n; ++i) CHECK(s.a[i] == s.a[0] && s.g[i] == 0.0);
        bsvi_buffer_weights_destroy(w->pi);
        w->pi = (what & 2u) ? pw : NULL; /* sometimes back to uniform */
        if (!w->pi) bsvi_buffer_weights_destroy(pw);
        return;
    }
    bsvi_estimator *e = NULL;
    const size_t d = (what & 6u) == 6u ? small(&w->f, MAX_D + 2) : w->d;
    bsvi_status st = bsvi_estimator_create(d, &e);
    check_status(st);
    if (st != BSVI_OK) {
        CHECK(e == NULL && d == 0 && st == BSVI_ERR_ZERO_SIZE);
        return;
    }
    CHECK(bsvi_estimator_dim(e) == d && bsvi_estimator_batch(e) == 0);
    bsvi_bound k;
    CHECK(bsvi_estimator_result_kind(e, &k) == BSVI_ERR_BAD_STATE);
    bsvi_estimator_destroy(w->est);
    w->est = e;
    w->est_fail = 0;
}

static esnap g_e0, g_e1;
static wsnap g_w0, g_w1;

/* The estimator's settings, and the buffer weights' setters. */
static void op_config(world *w) {
    bsvi_estimator *e = w->est;
    bsvi_buffer_weights *pw = w->pi;
    bsvi_status st = BSVI_OK;
    const uint8_t which = u8(&w->f) % 12u;
    if (which <= 3) { /* estimator */
        est_snap(e, &g_e0);
        switch (which) {
        case 0: {
            const uint64_t seed = u64(&w->f);
            st = bsvi_estimator_set_seed(e, seed);
            CHECK(st == BSVI_OK);
            est_snap(e, &g_e1);
            CHECK(g_e1.seed == seed && g_e1.counter == 0);
            break;
        }
        case 1: {
            const uint64_t c = u64(&w->f), off = u64(&w->f);
            st = bsvi_estimator_set_stream(e, c, off);
            CHECK(st == BSVI_OK);
            est_snap(e, &g_e1);
            CHECK(g_e1.seed == g_e0.seed && g_e1.counter == c && g_e1.offset == off);
            break;
        }
        case 2: {
            const int policy = (int)small(&w->f, 4) - 1;
            st = bsvi_estimator_set_point_policy(e, (bsvi_point_policy)policy);
            check_err(st, bsvi_estimator_last_error(e));
            CHECK((st == BSVI_OK) == (policy == 0 || policy == 1));
            if (st == BSVI_OK) w->est_fail = policy == 1;
            est_snap(e, &g_e1);
            CHECK(same(&g_e0, &g_e1, sizeof g_e0)); /* a policy changes no result */
            break;
        }
        default:
            st = bsvi_estimator_reset_stats(e);
            CHECK(st == BSVI_OK);
            est_snap(e, &g_e1);
            CHECK(g_e1.stats.calls == 0 && g_e1.stats.data_points == 0 &&
                  g_e1.stats.zero_points == 0 && g_e1.B == g_e0.B);
            break;
        }
        return;
    }
    if (!pw) return;
    w_snap(pw, &g_w0);
    const size_t n0 = g_w0.n;
    /* mostly the handle's size, sometimes another (refused) */
    const size_t n = (u8(&w->f) % 8u) ? n0 : small(&w->f, MAX_W + 1);
    double a[MAX_W], b[MAX_W];
    for (size_t i = 0; i < MAX_W; ++i) a[i] = b[i] = 0.0;
    switch (which) {
    case 4: {
        const uint8_t how = u8(&w->f);
        double sum = 0.0;
        for (size_t i = 0; i < n; ++i) {
            a[i] = (how & 1u) ? pick_double(&w->f) : (double)(u8(&w->f) % 8u);
            sum += a[i];
        }
        if ((how & 2u) && sum > 0.0 && isfinite(sum))
            for (size_t i = 0; i < n; ++i) a[i] /= sum;
        st = bsvi_buffer_weights_set_probs(pw, n ? a : NULL, n);
        break;
    }
    case 5: {
        const uint8_t how = u8(&w->f);
        for (size_t i = 0; i < n; ++i)
            a[i] = (how & 1u) ? pick_double(&w->f) : (double)(int8_t)u8(&w->f) / 16.0;
        st = bsvi_buffer_weights_set_logits(pw, n ? a : NULL, n);
        break;
    }
    case 6: {
        double lr = pick_double(&w->f), b1 = pick_double(&w->f), b2 = pick_double(&w->f);
        if (u8(&w->f) & 1u) lr = 1e-2 * (double)(1 + small(&w->f, 50)), b1 = 0.9, b2 = 0.999;
        st = bsvi_buffer_weights_set_adam(pw, lr, b1, b2);
        break;
    }
    case 7: {
        const uint8_t how = u8(&w->f);
        for (size_t i = 0; i < n; ++i) {
            a[i] = (how & 1u) ? pick_double(&w->f) : (double)(int8_t)u8(&w->f) / 64.0;
            b[i] = (how & 2u) ? pick_double(&w->f) : (double)u8(&w->f) / 256.0;
        }
        st = bsvi_buffer_weights_set_adam_state(pw, a, b, u64(&w->f) % 1000u, n);
        break;
    }
    case 8: {
        const uint8_t how = u8(&w->f);
        for (size_t i = 0; i < n; ++i)
            a[i] = (how & 1u) ? pick_double(&w->f) : (double)(int8_t)u8(&w->f) / 8.0;
        st = bsvi_buffer_weights_set_gradient(pw, a, u8(&w->f) % 16u, n);
        break;
    }
    default: { /* the getters' size checks */
        double x[MAX_W + 1];
        uint64_t c;
        st = bsvi_buffer_weights_get_gradient(pw, x, &c, n);
        CHECK((st == BSVI_OK) == (n == n0));
        if (st == BSVI_OK) CHECK(c == g_w0.count && same(x, g_w0.g, n * sizeof(double)));
        break;
    }
    }
    trace("weights_config", (int)which * 100 + (int)st);
    check_err(st, bsvi_buffer_weights_last_error(pw));
    if (n != n0 && which != 6) CHECK(st != BSVI_OK);
    w_snap(pw, &g_w1);
    if (st != BSVI_OK) {
        CHECK(same(&g_w0, &g_w1, sizeof g_w0));
        return;
    }
    w_check(&g_w1);
    switch (which) {
    case 4: /* probabilities in, optimiser state out */
        for (size_t i = 0; i < n; ++i) CHECK(fabs(g_w1.p[i] - a[i]) <= 1e-9);
        CHECK(g_w1.steps == 0 && g_w1.count == 0);
        break;
    case 5: /* logits as given; the optimiser state kept */
        CHECK(same(g_w1.a, a, n * sizeof(double)) && g_w1.count == g_w0.count &&
              g_w1.steps == g_w0.steps);
        break;
    case 7:
        CHECK(same(g_w1.m, a, n * sizeof(double)) && same(g_w1.v, b, n * sizeof(double)));
        CHECK(same(g_w1.a, g_w0.a, sizeof g_w0.a));
        break;
    case 8:
        CHECK(same(g_w1.g, a, n * sizeof(double)) && same(g_w1.a, g_w0.a, sizeof g_w0.a));
        break;
    default: /* set_adam and the getters change no state */
        CHECK(same(&g_w0, &g_w1, sizeof g_w0));
        break;
    }
}

static void op_est_compute(world *w) {
    bsvi_estimator *e = w->est;
    const bsvi_buffer_weights *pw = (u8(&w->f) & 1u) ? w->pi : NULL;
    est_snap(e, &g_e0);
    w_snap(w->pi, &g_w0);
    bsvi_status st;
    const uint8_t which = u8(&w->f) % 6u;
    bsvi_bound want = BSVI_BOUND_ELBO;
    size_t B = w->B;
    switch (which) {
    case 0:
        st = bsvi_estimator_elbo(e, w->model, w->q, (bsvi_grad_form)((int)small(&w->f, 6) - 1));
        break;
    case 1:
        want = BSVI_BOUND_IWAE; /* K * B <= MAX_S * MAX_B: the snapshot holds the targets */
        st = bsvi_estimator_iwae(e, w->model, w->q, small(&w->f, MAX_S + 1),
                                 (bsvi_grad_form)((int)small(&w->f, 6) - 1));
        break;
    case 2:
        want = BSVI_BOUND_SVI;
        st = bsvi_estimator_svi(e, w->traj);
        B = bsvi_trajectory_batch(w->traj);
        break;
    case 3:
        want = bsvi_trajectory_is_double_sampled(w->traj) ? BSVI_BOUND_BSVI_DS : BSVI_BOUND_BSVI;
        st = bsvi_estimator_bsvi(e, w->traj, pw);
        B = bsvi_trajectory_batch(w->traj);
        break;
    case 4:
        want = BSVI_BOUND_BSVI_SIR;
        st = bsvi_estimator_bsvi_sir(e, w->traj, pw, small(&w->f, MAX_S + 1));
        B = bsvi_trajectory_batch(w->traj);
        break;
    default: {
        want = BSVI_BOUND_GIWAE;
        B = 1 + small(&w->f, MAX_B);
        const size_t n = 1 + small(&w->f, MAX_N);
        double lj[MAX_B * MAX_N], lq[MAX_B * MAX_N];
        const uint8_t how = u8(&w->f);
        for (size_t i = 0; i < B * n; ++i) {
            lj[i] = (how & 1u) ? pick_double(&w->f) : (double)(int8_t)u8(&w->f);
            lq[i] = (how & 2u) ? pick_double(&w->f) : (double)(int8_t)u8(&w->f) / 4.0;
        }
        st = bsvi_estimator_giwae(e, B, n, lj, lq, pw);
        break;
    }
    }
    trace("estimator_compute", (int)which * 100 + (int)st);
    check_err(st, bsvi_estimator_last_error(e));
    est_snap(e, &g_e1);
    w_snap(w->pi, &g_w1);
    CHECK(same(&g_w0, &g_w1, sizeof g_w0)); /* computes only read pi */
    if (st == BSVI_OK) {
        CHECK(g_e1.B == B && g_e1.B >= 1 && g_e1.has_kind && g_e1.kind == want);
        est_check_ok(&g_e1, w->d, w->est_fail);
        CHECK(g_e1.stats.calls == g_e0.stats.calls + 1);
        CHECK(g_e1.stats.data_points == g_e0.stats.data_points + B);
        CHECK(g_e1.stats.zero_points == g_e0.stats.zero_points + g_e1.nzero);
        if (want == BSVI_BOUND_SVI || want == BSVI_BOUND_BSVI || want == BSVI_BOUND_BSVI_DS ||
            want == BSVI_BOUND_BSVI_SIR) {
            const size_t k = bsvi_trajectory_steps(w->traj), T = g_e1.nt / B;
            CHECK(T == (want == BSVI_BOUND_SVI ? 1 : want == BSVI_BOUND_BSVI_SIR ? T : k + 1));
            for (size_t t = 0; t < g_e1.nt; ++t) CHECK(g_e1.tslot[t] <= k);
        }
    } else {
        CHECK(same(&g_e0, &g_e1, sizeof g_e0));
    }
}

/* The pi optimiser: accumulate (from the trajectory or host terms), step, or both. */
static void op_weights(world *w) {
    bsvi_buffer_weights *pw = w->pi;
    if (!pw) return;
    w_snap(pw, &g_w0);
    bsvi_status st;
    const uint8_t which = u8(&w->f) % 4u;
    size_t B = 0;
    switch (which) {
    case 0:
    case 1:
        st = bsvi_buffer_weights_accumulate(pw, w->traj);
        B = bsvi_trajectory_batch(w->traj);
        break;
    case 2: {
        B = 1 + small(&w->f, MAX_B);
        const size_t n = (u8(&w->f) & 7u) ? g_w0.n : 1 + small(&w->f, MAX_N);
        double lj[MAX_B * MAX_W], lq[MAX_B * MAX_W];
        const uint8_t how = u8(&w->f);
        for (size_t i = 0; i < B * n; ++i) {
            lj[i] = (how & 1u) ? pick_double(&w->f) : (double)(int8_t)u8(&w->f);
            lq[i] = (how & 2u) ? pick_double(&w->f) : (double)(int8_t)u8(&w->f) / 4.0;
        }
        st = bsvi_buffer_weights_accumulate_terms(pw, B, n, lj, lq);
        break;
    }
    default: st = bsvi_buffer_weights_step(pw); break;
    }
    trace("weights", (int)which * 100 + (int)st);
    check_err(st, bsvi_buffer_weights_last_error(pw));
    w_snap(pw, &g_w1);
    if (st != BSVI_OK) {
        CHECK(same(&g_w0, &g_w1, sizeof g_w0));
        return;
    }
    w_check(&g_w1);
    if (which <= 2) { /* the logits wait for the step; zero-density points add nothing */
        CHECK(same(g_w1.a, g_w0.a, sizeof g_w0.a) && g_w1.steps == g_w0.steps);
        CHECK(g_w1.count >= g_w0.count && g_w1.count <= g_w0.count + B);
    } else if (g_w0.count == 0) { /* nothing accumulated: no step (a sum set with count 0
                                    * may be kept or cleared) */
        CHECK(same(g_w1.a, g_w0.a, sizeof g_w0.a) && g_w1.steps == g_w0.steps);
        CHECK(same(g_w1.m, g_w0.m, sizeof g_w0.m) && same(g_w1.v, g_w0.v, sizeof g_w0.v));
        CHECK(g_w1.count == 0);
    } else {
        CHECK(g_w1.count == 0 && g_w1.steps == g_w0.steps + 1);
        for (size_t i = 0; i < g_w1.n; ++i) CHECK(g_w1.g[i] == 0.0);
        for (size_t i = 0; i < g_w1.n; ++i) /* pi = 0 stays 0 */
            if (g_w0.a[i] == -INFINITY) CHECK(g_w1.a[i] == -INFINITY);
    }
}

static void op_evaluate(world *w) {
    bsvi_evaluator *ev = w->ev;
    bsvi_status st;
    double o1[MAX_B], o2[MAX_B], o3[MAX_B];
    double fm0[MAX_B * MAX_D], fl0[MAX_B * MAX_D], fm1[MAX_B * MAX_D], fl1[MAX_B * MAX_D];
    bsvi_svi_options so0, so1, so;
    fill(o1, MAX_B);
    fill(o2, MAX_B);
    fill(o3, MAX_B);
    CHECK(bsvi_proposal_get_params(w->fq, fm0, fl0) == BSVI_OK);
    CHECK(bsvi_evaluator_get_svi_options(ev, &so0) == BSVI_OK);
    const uint8_t which = u8(&w->f);
    const unsigned op = which % 8u;
    size_t K = 0;
    switch (op) {
    case 0: st = bsvi_evaluator_set_chunk_rows(ev, small(&w->f, 9)); break;
    case 1: st = bsvi_evaluator_iwae(ev, w->model, w->q, small(&w->f, MAX_S + 1), o1); break;
    case 2:
        K = small(&w->f, MAX_K + 2);
        st = bsvi_evaluator_bsvi(ev, w->model, w->q, K, o1, (which & 8u) ? w->fq : NULL);
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
    case 5: /* the refinement BSVI-K uses: the SVI handle's, with one field fuzzed */
        CHECK(bsvi_svi_get_options(w->svi, &so) == BSVI_OK);
        if (which & 8u) fuzz_options(&w->f, &so);
        st = bsvi_evaluator_set_svi_options(ev, &so);
        CHECK(bsvi_evaluator_get_svi_options(ev, &so1) == BSVI_OK);
        CHECK(same_options(&so1, st == BSVI_OK ? &so : &so0));
        break;
    case 6: {
        const int policy = (int)small(&w->f, 4) - 1;
        st = bsvi_evaluator_set_point_policy(ev, (bsvi_point_policy)policy);
        CHECK((st == BSVI_OK) == (policy == 0 || policy == 1));
        if (st == BSVI_OK) w->ev_fail = policy == 1;
        break;
    }
    default:
        st = bsvi_evaluator_set_stream(ev, u64(&w->f), u64(&w->f) % 1024u);
        break;
    }
    trace("evaluator", (int)op * 100 + (int)st);
    check_err(st, bsvi_evaluator_last_error(ev));
    CHECK(bsvi_proposal_get_params(w->fq, fm1, fl1) == BSVI_OK);
    const size_t nd = w->B * w->d;
    if (st == BSVI_OK) {
        if (op >= 1 && op <= 3) {
            check_no_nan(o1, w->B);
            size_t zero = 0;
            for (size_t b = 0; b < w->B; ++b) {
                CHECK(o1[b] != INFINITY);
                zero += o1[b] == -INFINITY;
            }
            if (op <= 2) { /* IWAE-S, BSVI-K: -INFINITY is a zero-density point, reported */
                CHECK(zero == bsvi_evaluator_num_zero_points(ev));
                if (w->ev_fail) CHECK(zero == 0);
            }
            if (op == 3) {
                check_no_nan(o3, w->B);
                if (which & 16u) check_no_nan(o2, w->B);
            }
        }
        if (op == 2) { /* what the refinement did */
            size_t taken[MAX_B], frozen = 0;
            CHECK(bsvi_evaluator_get_steps_taken(ev, taken, w->B) == BSVI_OK);
            for (size_t b = 0; b < w->B; ++b) {
                CHECK(taken[b] <= K - 1);
                frozen += taken[b] < K - 1;
            }
            CHECK(frozen == bsvi_evaluator_num_frozen(ev));
        }
        for (size_t i = 0; i < nd; ++i)
            CHECK(isfinite(fm1[i]) && fl1[i] >= BSVI_MIN_LOG_STD && fl1[i] <= BSVI_MAX_LOG_STD);
    } else {
        check_sentinel(o1, MAX_B);
        check_sentinel(o2, MAX_B);
        check_sentinel(o3, MAX_B);
        CHECK(same(fm0, fm1, nd * sizeof(double)) && same(fl0, fl1, nd * sizeof(double)));
        CHECK(bsvi_evaluator_get_svi_options(ev, &so1) == BSVI_OK);
        CHECK(same_options(&so1, &so0));
    }
}

static void op_health(world *w) {
    if (bsvi_trajectory_batch(w->traj) == 0) return;
    const bsvi_buffer_weights *pw = (u8(&w->f) & 1u) ? NULL : w->pi;
    bsvi_health h, sentinel;
    memset(&sentinel, 0x5a, sizeof sentinel);
    h = sentinel;
    w_snap(w->pi, &g_w0);
    bsvi_status st = bsvi_trajectory_health(w->traj, pw, &h);
    check_err(st, bsvi_trajectory_last_error(w->traj));
    w_snap(w->pi, &g_w1);
    CHECK(same(&g_w0, &g_w1, sizeof g_w0));
    if (st == BSVI_OK) {
        /* means over the finite points: never NaN, never +INFINITY; -INFINITY only when
         * every point is left out */
        const size_t B = bsvi_trajectory_batch(w->traj);
        CHECK(!isnan(h.svi0) && !isnan(h.svik) && !isnan(h.bsvik));
        CHECK(h.svi0 != INFINITY && h.svik != INFINITY && h.bsvik != INFINITY);
        CHECK(h.zero_svi0 <= B && h.zero_svik <= B && h.zero_bsvik <= B);
        CHECK((h.svi0 == -INFINITY) == (h.zero_svi0 == B));
        CHECK((h.svik == -INFINITY) == (h.zero_svik == B));
        CHECK((h.bsvik == -INFINITY) == (h.zero_bsvik == B));
        if (!pw) /* uniform pi: a point is left out of BSVI-k only if every weight is zero */
            CHECK(h.zero_bsvik <= h.zero_svi0 && h.zero_bsvik <= h.zero_svik);
    } else {
        CHECK(st == BSVI_ERR_SIZE_MISMATCH && pw != NULL);
        CHECK(same(&h, &sentinel, sizeof h));
    }
}

static void world_free(world *w) {
    bsvi_estimator_destroy(w->est);
    bsvi_buffer_weights_destroy(w->pi);
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
    CHECK(bsvi_estimator_create(w.d, &w.est) == BSVI_OK);
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
        case 7: op_create(&w); break;
        case 8: op_config(&w); break;
        case 9: op_est_compute(&w); break;
        case 10: op_weights(&w); break;
        case 11: op_evaluate(&w); break;
        default: op_health(&w); break;
        }
    }
    world_free(&w);
    return 0;
}
