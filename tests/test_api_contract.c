/* test_api_contract.c: every public entry point checks its arguments. One table row per
 * (function, bad argument): NULL handles and buffers, zero and out-of-range sizes, unknown
 * enum values, non-finite or out-of-domain reals, shape and state mismatches. For each row:
 * - the status is the specific one expected;
 * - when a handle exists, its message is written by this call (run twice, after two
 *   different earlier errors, the message is the same) and names the problem (words);
 * - caller buffers, filled with a sentinel, are untouched; out-pointers of create
 *   functions are set to NULL;
 * - every handle's observable state is bitwise as before (snapshot before, compare after),
 *   and at the end every handle still behaves exactly like a freshly configured one
 *   (so no hidden configuration or generator counter changed either).
 * Callback failures are in test_bad_input.c; numeric extremes in test_robustness.c. */
#include "testutil.h"
#include "lingauss.h"
#include "statusdoc.h"

#include <float.h>
#include <stdio.h>
#include <stdlib.h>

#define NB 3
#define ND 2
#define NK 2
#define NOUT 64

typedef struct cfx {
    lg_model lg;
    bsvi_model *model, *model3, *nolik, *hostprior;
    bsvi_proposal *q, *q3, *q22;
    bsvi_svi *svi, *svi3, *svi_kl;
    bsvi_trajectory *traj, *empty, *traj3, *traj4;
    bsvi_estimator *elbo, *iwae, *bsvi, *unsized, *sir, *giwae;
    bsvi_buffer_weights *w3, *w4h, *wopt; /* k+1 = 3 slots, 4 slots, 3 with optimiser state */
    bsvi_evaluator *ev, *ev_kl, *ev_fresh;
    bsvi_evaluator *ev_diag; /* diagnostics on, one IWAE-S with them (0.2.1) */
    /* caller buffers */
    double out[NOUT], out2[NOUT], out3[NOUT];
    size_t sz[NOUT];
    /* create out-pointers (preset to a dummy, must come back NULL) */
    bsvi_model *model_out;
    bsvi_proposal *prop_out;
    bsvi_svi *svi_out;
    bsvi_trajectory *traj_out;
    bsvi_estimator *est_out;
    bsvi_evaluator *ev_out;
    bsvi_buffer_weights *w_out;
    bsvi_svi_options opts, opts_bad[6];
    bsvi_bound bound_out;
    bsvi_step_rule rule_out;
    bsvi_grad_form form_out;
    bsvi_divergence_policy pol_out;
    bsvi_stats stats_out;
    uint64_t u64_out;
    int dummy;
    /* inputs */
    double mean[NB * ND], ls[NB * ND], z[NB * ND];
    size_t idx[NB];
    double pi3[3], w4[4], lj[NB * 4], lq[NB * 4];
} cfx;

static cfx F;

static void fx_setup(cfx *f)
{
    memset(f, 0, sizeof *f);
    assert_int_equal(lg_init(&f->lg, ND, 3, NB, 0.9, 0, 41), 0);
    TU_OK(lg_make_model(&f->lg, &f->model));
    TU_OK(bsvi_model_create(3, &f->model3));
    TU_OK(bsvi_model_set_likelihood(f->model3, lg_prior_std_normal, NULL));
    TU_OK(bsvi_model_create(ND, &f->nolik));
    TU_OK(lg_make_model(&f->lg, &f->hostprior));
    TU_OK(bsvi_model_set_prior(f->hostprior, lg_prior_std_normal, NULL));
    for (size_t i = 0; i < NB * ND; ++i) {
        f->mean[i] = 0.1 * (double)i - 0.2;
        f->ls[i] = -0.05 * (double)i;
        f->z[i] = 0.3 - 0.1 * (double)i;
    }
    for (size_t b = 0; b < NB; ++b) {
        f->idx[b] = b;
    }
    TU_OK(lg_make_proposal(NB, ND, f->mean, f->ls, &f->q));
    TU_OK(bsvi_proposal_create(NB, 3, &f->q3));
    TU_OK(bsvi_proposal_create(2, ND, &f->q22));
    TU_OK(bsvi_svi_create(ND, &f->svi));
    TU_OK(bsvi_svi_set_steps(f->svi, NK));
    TU_OK(bsvi_svi_create(3, &f->svi3));
    TU_OK(bsvi_svi_create(ND, &f->svi_kl));
    TU_OK(bsvi_svi_set_grad_form(f->svi_kl, BSVI_GRAD_ANALYTIC_KL));
    TU_OK(bsvi_trajectory_create(&f->traj));
    TU_OK(bsvi_trajectory_create(&f->empty));
    TU_OK(bsvi_trajectory_create(&f->traj3));
    TU_OK(bsvi_trajectory_create(&f->traj4));
    TU_OK(bsvi_svi_run(f->svi, f->model, f->q, f->traj));
    TU_OK(bsvi_svi_set_steps(f->svi3, 1));
    TU_OK(bsvi_svi_run(f->svi3, f->model3, f->q3, f->traj3));
    {
        bsvi_svi *s4 = NULL; /* 3 steps: 4 slots */
        TU_OK(bsvi_svi_create(ND, &s4));
        TU_OK(bsvi_svi_set_steps(s4, 3));
        TU_OK(bsvi_svi_run(s4, f->model, f->q, f->traj4));
        bsvi_svi_destroy(s4);
    }
    f->pi3[0] = 0.2, f->pi3[1] = 0.3, f->pi3[2] = 0.5;
    f->w4[0] = f->w4[1] = f->w4[2] = f->w4[3] = 0.25;
    TU_OK(bsvi_buffer_weights_create(NK + 1, &f->w3));
    TU_OK(bsvi_buffer_weights_set_probs(f->w3, f->pi3, NK + 1));
    TU_OK(bsvi_buffer_weights_create(4, &f->w4h));
    TU_OK(bsvi_buffer_weights_create(NK + 1, &f->wopt));
    TU_OK(bsvi_estimator_create(ND, &f->elbo));
    TU_OK(bsvi_estimator_create(ND, &f->iwae));
    TU_OK(bsvi_estimator_create(ND, &f->bsvi));
    TU_OK(bsvi_estimator_create(ND, &f->unsized));
    TU_OK(bsvi_estimator_create(ND, &f->sir));
    TU_OK(bsvi_estimator_create(ND, &f->giwae));
    TU_OK(bsvi_estimator_elbo(f->elbo, f->model, f->q, BSVI_GRAD_PATHWISE));
    TU_OK(bsvi_estimator_iwae(f->iwae, f->model, f->q, 4, BSVI_GRAD_PATHWISE));
    TU_OK(bsvi_estimator_bsvi(f->bsvi, f->traj, f->wopt));
    /* optimiser state: one step taken, a gradient pending */
    TU_OK(bsvi_buffer_weights_accumulate(f->wopt, f->traj));
    TU_OK(bsvi_buffer_weights_step(f->wopt));
    TU_OK(bsvi_buffer_weights_accumulate(f->wopt, f->traj));
    TU_OK(bsvi_estimator_bsvi_sir(f->sir, f->traj, NULL, 2));
    for (size_t i = 0; i < NB * 4; ++i) {
        f->lj[i] = -1.0 - 0.25 * (double)i;
        f->lq[i] = -0.5;
    }
    TU_OK(bsvi_estimator_giwae(f->giwae, NB, 4, f->lj, f->lq, NULL));
    TU_OK(bsvi_evaluator_create(ND, &f->ev));
    TU_OK(bsvi_evaluator_create(ND, &f->ev_kl));
    TU_OK(bsvi_evaluator_create(ND, &f->ev_fresh));
    f->opts = bsvi_svi_options_default();
    f->opts.grad_form = BSVI_GRAD_ANALYTIC_KL;
    TU_OK(bsvi_evaluator_set_svi_options(f->ev_kl, &f->opts));
    f->opts = bsvi_svi_options_default();
    for (size_t i = 0; i < 6; ++i) {
        f->opts_bad[i] = f->opts;
    }
    f->opts_bad[0].samples_per_step = 0;
    f->opts_bad[1].samples_per_step = BSVI_MAX_SAMPLES + 1;
    f->opts_bad[2].steps = BSVI_MAX_STEPS + 1;
    f->opts_bad[3].step_size = NAN;
    f->opts_bad[4].grad_form = BSVI_GRAD_DREG;
    f->opts_bad[5].momentum = 1.0;
    TU_OK(bsvi_evaluator_bsvi(f->ev, f->model, f->q, 3, f->out, NULL));
    TU_OK(bsvi_evaluator_create(ND, &f->ev_diag));
    TU_OK(bsvi_evaluator_set_diagnostics(f->ev_diag, 1));
    TU_OK(bsvi_evaluator_iwae(f->ev_diag, f->model, f->q, 30, f->out));
}

static void fx_teardown(cfx *f)
{
    bsvi_model_destroy(f->model);
    bsvi_model_destroy(f->model3);
    bsvi_model_destroy(f->nolik);
    bsvi_model_destroy(f->hostprior);
    bsvi_proposal_destroy(f->q);
    bsvi_proposal_destroy(f->q3);
    bsvi_proposal_destroy(f->q22);
    bsvi_svi_destroy(f->svi);
    bsvi_svi_destroy(f->svi3);
    bsvi_svi_destroy(f->svi_kl);
    bsvi_trajectory_destroy(f->traj);
    bsvi_trajectory_destroy(f->empty);
    bsvi_trajectory_destroy(f->traj3);
    bsvi_trajectory_destroy(f->traj4);
    bsvi_estimator *es[6] = {f->elbo, f->iwae, f->bsvi, f->unsized, f->sir, f->giwae};
    for (size_t i = 0; i < 6; ++i) {
        bsvi_estimator_destroy(es[i]);
    }
    bsvi_buffer_weights_destroy(f->w3);
    bsvi_buffer_weights_destroy(f->w4h);
    bsvi_buffer_weights_destroy(f->wopt);
    bsvi_evaluator_destroy(f->ev);
    bsvi_evaluator_destroy(f->ev_kl);
    bsvi_evaluator_destroy(f->ev_fresh);
    bsvi_evaluator_destroy(f->ev_diag);
    lg_free(&f->lg);
}

/* ---- observable state -------------------------------------------------------------- */

typedef struct blob {
    unsigned char *p;
    size_t n, cap;
} blob;

static void put(blob *b, const void *src, size_t bytes)
{
    if (b->n + bytes > b->cap) {
        b->cap = 2 * (b->n + bytes) + 1024;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->n, src, bytes);
    b->n += bytes;
}

static void put_size(blob *b, size_t v) { put(b, &v, sizeof v); }

static void snap_traj(blob *b, const bsvi_trajectory *t)
{
    const size_t B = bsvi_trajectory_batch(t);
    put_size(b, B);
    if (B == 0) {
        return;
    }
    const size_t k = bsvi_trajectory_steps(t), d = bsvi_trajectory_dim(t);
    put_size(b, k);
    put_size(b, d);
    put_size(b, (size_t)bsvi_trajectory_is_double_sampled(t));
    put_size(b, bsvi_trajectory_num_diverged(t));
    const size_t sc = B * (k + 1), vec = sc * d;
    double *buf = tu_alloc(3 * vec + 3 * sc + 2 * B * d);
    size_t *taken = tu_alloc_size(B);
    TU_OK(bsvi_trajectory_get_log_weights(t, buf));
    TU_OK(bsvi_trajectory_get_log_joint(t, buf + sc));
    TU_OK(bsvi_trajectory_get_log_proposal(t, buf + 2 * sc));
    TU_OK(bsvi_trajectory_get_latents(t, buf + 3 * sc));
    TU_OK(bsvi_trajectory_get_params(t, buf + 3 * sc + vec, buf + 3 * sc + 2 * vec));
    TU_OK(bsvi_trajectory_get_encoder_grad(t, buf + 3 * sc + 3 * vec,
                                           buf + 3 * sc + 3 * vec + B * d));
    TU_OK(bsvi_trajectory_get_steps_taken(t, taken));
    put(b, buf, (3 * vec + 3 * sc + 2 * B * d) * sizeof(double));
    put(b, taken, B * sizeof(size_t));
    free(buf);
    free(taken);
}

static void snap_est(blob *b, const bsvi_estimator *e)
{
    bsvi_bound kind = (bsvi_bound)-1;
    const bsvi_status ks = bsvi_estimator_result_kind(e, &kind);
    assert_true(ks == BSVI_OK || ks == BSVI_ERR_BAD_STATE);
    put_size(b, (size_t)kind);
    const size_t B = bsvi_estimator_batch(e), nt = bsvi_estimator_num_targets(e);
    put_size(b, bsvi_estimator_dim(e));
    put_size(b, B);
    put_size(b, nt);
    put_size(b, bsvi_estimator_num_zero_points(e));
    uint64_t st[3];
    TU_OK(bsvi_estimator_get_stream(e, &st[0], &st[1], &st[2]));
    put(b, st, sizeof st);
    bsvi_stats stats;
    TU_OK(bsvi_estimator_get_stats(e, &stats));
    put(b, &stats, sizeof stats);
    double buf[256];
    size_t ib[128];
    if (B == 0) {
        return;
    }
    assert_true(nt <= 32);
    TU_OK(bsvi_estimator_get_bounds(e, buf, B));
    put(b, buf, B * sizeof(double));
    const int has_z = kind != BSVI_BOUND_GIWAE;
    TU_OK(bsvi_estimator_get_targets(e, nt, ib, ib + nt, has_z ? buf : NULL, buf + 128));
    put(b, ib, 2 * nt * sizeof(size_t));
    put(b, buf + 128, nt * sizeof(double));
    TU_OK(bsvi_estimator_get_target_log_weights(e, nt, buf + 128));
    put(b, buf + 128, nt * sizeof(double));
    if (has_z) {
        put(b, buf, nt * ND * sizeof(double));
        TU_OK(bsvi_estimator_get_encoder_grad(e, B, buf, buf + B * ND));
        put(b, buf, 2 * B * ND * sizeof(double));
    }
    if (kind == BSVI_BOUND_ELBO || kind == BSVI_BOUND_IWAE) {
        TU_OK(bsvi_estimator_get_noise(e, nt, buf));
        put(b, buf, nt * ND * sizeof(double));
    }
}

static void snap_weights(blob *b, const bsvi_buffer_weights *w)
{
    const size_t n = bsvi_buffer_weights_size(w);
    put_size(b, n);
    double buf[5 * 8];
    uint64_t steps = 0, count = 0;
    assert_true(n <= 8);
    TU_OK(bsvi_buffer_weights_get_logits(w, buf, n));
    TU_OK(bsvi_buffer_weights_get_probs(w, buf + 8, n));
    TU_OK(bsvi_buffer_weights_get_adam_state(w, buf + 16, buf + 24, &steps, n));
    TU_OK(bsvi_buffer_weights_get_gradient(w, buf + 32, &count, n));
    for (size_t i = 0; i < 5; ++i) {
        put(b, buf + 8 * i, n * sizeof(double));
    }
    put(b, &steps, sizeof steps);
    put(b, &count, sizeof count);
    double pos;
    TU_OK(bsvi_buffer_weights_mean_position(w, &pos));
    put(b, &pos, sizeof pos);
}

static void snap_options(blob *b, const bsvi_svi_options *o)
{
    /* field by field: the struct may have padding */
    put_size(b, o->steps);
    put(b, &o->step_size, sizeof(double));
    put_size(b, o->samples_per_step);
    put_size(b, (size_t)o->rule);
    put(b, &o->momentum, sizeof(double));
    put(b, &o->adam_beta1, sizeof(double));
    put(b, &o->adam_beta2, sizeof(double));
    put(b, &o->adam_epsilon, sizeof(double));
    put(b, &o->clip_norm, sizeof(double));
    put_size(b, (size_t)o->grad_form);
    put_size(b, (size_t)o->double_sampling);
    put_size(b, (size_t)o->divergence);
}

static void snap_ev(blob *b, const bsvi_evaluator *ev)
{
    bsvi_svi_options o;
    TU_OK(bsvi_evaluator_get_svi_options(ev, &o));
    snap_options(b, &o);
    uint64_t st[3];
    TU_OK(bsvi_evaluator_get_stream(ev, &st[0], &st[1], &st[2]));
    put(b, st, sizeof st);
    bsvi_stats stats;
    TU_OK(bsvi_evaluator_get_stats(ev, &stats));
    put(b, &stats, sizeof stats);
    put_size(b, bsvi_evaluator_num_frozen(ev));
    put_size(b, bsvi_evaluator_num_zero_points(ev));
    size_t taken[NB];
    const bsvi_status ts = bsvi_evaluator_get_steps_taken(ev, taken, NB);
    assert_true(ts == BSVI_OK || ts == BSVI_ERR_BAD_STATE);
    put_size(b, (size_t)(-(int)ts));
    if (ts == BSVI_OK) {
        put(b, taken, sizeof taken);
    }
    double dg[2 * NB];
    const bsvi_status ds = bsvi_evaluator_get_diagnostics(ev, NB, dg, dg + NB);
    assert_true(ds == BSVI_OK || ds == BSVI_ERR_BAD_STATE);
    put_size(b, (size_t)(-(int)ds));
    if (ds == BSVI_OK) {
        put(b, dg, sizeof dg);
    }
}

static void snapshot(const cfx *f, blob *b)
{
    b->n = 0;
    const bsvi_model *ms[4] = {f->model, f->model3, f->nolik, f->hostprior};
    for (size_t i = 0; i < 4; ++i) {
        put_size(b, bsvi_model_dim(ms[i]));
        put_size(b, (size_t)bsvi_model_has_standard_normal_prior(ms[i]));
    }
    const bsvi_proposal *ps[3] = {f->q, f->q3, f->q22};
    for (size_t i = 0; i < 3; ++i) {
        double m[16], l[16];
        const size_t n = bsvi_proposal_batch(ps[i]) * bsvi_proposal_dim(ps[i]);
        TU_OK(bsvi_proposal_get_params(ps[i], m, l));
        put_size(b, n);
        put(b, m, n * sizeof(double));
        put(b, l, n * sizeof(double));
    }
    const bsvi_svi *ss[3] = {f->svi, f->svi3, f->svi_kl};
    for (size_t i = 0; i < 3; ++i) {
        put_size(b, bsvi_svi_steps(ss[i]));
        double eta = bsvi_svi_step_size(ss[i]);
        put(b, &eta, sizeof eta);
        bsvi_svi_options o;
        TU_OK(bsvi_svi_get_options(ss[i], &o));
        snap_options(b, &o);
        uint64_t st[3];
        TU_OK(bsvi_svi_get_stream(ss[i], &st[0], &st[1], &st[2]));
        put(b, st, sizeof st);
        bsvi_stats stats;
        TU_OK(bsvi_svi_get_stats(ss[i], &stats));
        put(b, &stats, sizeof stats);
    }
    snap_traj(b, f->traj);
    snap_traj(b, f->empty);
    snap_traj(b, f->traj3);
    snap_traj(b, f->traj4);
    const bsvi_estimator *es[6] = {f->elbo, f->iwae, f->bsvi, f->unsized, f->sir, f->giwae};
    for (size_t i = 0; i < 6; ++i) {
        snap_est(b, es[i]);
    }
    snap_weights(b, f->w3);
    snap_weights(b, f->w4h);
    snap_weights(b, f->wopt);
    snap_ev(b, f->ev);
    snap_ev(b, f->ev_kl);
    snap_ev(b, f->ev_fresh);
    snap_ev(b, f->ev_diag);
}

/* ---- the table ------------------------------------------------------------------------ */

enum hk { H_NONE, H_MODEL, H_PROP, H_SVI, H_TRAJ, H_EST, H_EV, H_W };

#define BIGS ((size_t)1 << 40)
#define O (f->out)
#define O2 (f->out2)
#define O3 (f->out3)
#define SZ (f->sz)
#define H ((bsvi_health *)(void *)f->out) /* a health output over the sentinel buffer */

/* X(name, expected status, handle kind, handle, words the message must mention, call) */
#define CASES(X)                                                                                   \
    /* model */                                                                                    \
    X(model_create_null, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "", bsvi_model_create(2, NULL))     \
    X(model_create_zero, BSVI_ERR_ZERO_SIZE, H_NONE, NULL, "", bsvi_model_create(0, &f->model_out)) \
    X(model_create_big, BSVI_ERR_OUT_OF_RANGE, H_NONE, NULL, "",                                   \
      bsvi_model_create(BSVI_MAX_DIM + 1, &f->model_out))                                          \
    X(model_lik_null_h, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                  \
      bsvi_model_set_likelihood(NULL, lg_likelihood, NULL))                                        \
    X(model_lik_null_fn, BSVI_ERR_NULL_ARGUMENT, H_MODEL, f->nolik, "callback",                    \
      bsvi_model_set_likelihood(f->nolik, NULL, NULL))                                             \
    X(model_prior_null_h, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                \
      bsvi_model_set_prior(NULL, lg_prior_std_normal, NULL))                                       \
    X(model_prior_null_fn, BSVI_ERR_NULL_ARGUMENT, H_MODEL, f->hostprior, "callback",              \
      bsvi_model_set_prior(f->hostprior, NULL, NULL))                                              \
    X(model_stdprior_null, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                               \
      bsvi_model_set_prior_standard_normal(NULL))                                                  \
    X(lj_null_h, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                         \
      bsvi_model_log_joint(NULL, 1, f->z, f->idx, O, NULL))                                        \
    X(lj_null_z, BSVI_ERR_NULL_ARGUMENT, H_MODEL, f->model, "z",                                   \
      bsvi_model_log_joint(f->model, 1, NULL, f->idx, O, O2))                                      \
    X(lj_null_idx, BSVI_ERR_NULL_ARGUMENT, H_MODEL, f->model, "data_index",                        \
      bsvi_model_log_joint(f->model, 1, f->z, NULL, O, O2))                                        \
    X(lj_null_out, BSVI_ERR_NULL_ARGUMENT, H_MODEL, f->model, "log_joint",                         \
      bsvi_model_log_joint(f->model, 1, f->z, f->idx, NULL, O2))                                   \
    X(lj_zero, BSVI_ERR_ZERO_SIZE, H_MODEL, f->model, "n is 0",                                    \
      bsvi_model_log_joint(f->model, 0, f->z, f->idx, O, O2))                                      \
    X(lj_nolik, BSVI_ERR_BAD_STATE, H_MODEL, f->nolik, "likelihood",                               \
      bsvi_model_log_joint(f->nolik, 1, f->z, f->idx, O, O2))                                      \
    X(lj_nan_z, BSVI_ERR_BAD_VALUE, H_MODEL, f->model, "not finite",                               \
      bsvi_model_log_joint(f->model, 1, (const double[]){0.0, NAN}, f->idx, O, O2))                \
    X(lj_inf_z, BSVI_ERR_BAD_VALUE, H_MODEL, f->model, "row 1",                                    \
      bsvi_model_log_joint(f->model, 2, (const double[]){0.0, 1.0, INFINITY, 0.0}, f->idx, O, O2)) \
    /* proposal */                                                                                 \
    X(prop_create_null, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "", bsvi_proposal_create(1, 1, NULL)) \
    X(prop_create_zero_b, BSVI_ERR_ZERO_SIZE, H_NONE, NULL, "",                                    \
      bsvi_proposal_create(0, 1, &f->prop_out))                                                    \
    X(prop_create_zero_d, BSVI_ERR_ZERO_SIZE, H_NONE, NULL, "",                                    \
      bsvi_proposal_create(1, 0, &f->prop_out))                                                    \
    X(prop_create_big_b, BSVI_ERR_OUT_OF_RANGE, H_NONE, NULL, "",                                  \
      bsvi_proposal_create(BSVI_MAX_BATCH + 1, 1, &f->prop_out))                                   \
    X(prop_create_big_d, BSVI_ERR_OUT_OF_RANGE, H_NONE, NULL, "",                                  \
      bsvi_proposal_create(1, BSVI_MAX_DIM + 1, &f->prop_out))                                     \
    X(prop_set_null_h, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                   \
      bsvi_proposal_set_params(NULL, f->mean, f->ls))                                              \
    X(prop_set_null_mean, BSVI_ERR_NULL_ARGUMENT, H_PROP, f->q, "mean",                            \
      bsvi_proposal_set_params(f->q, NULL, f->ls))                                                 \
    X(prop_set_null_ls, BSVI_ERR_NULL_ARGUMENT, H_PROP, f->q, "log_std",                           \
      bsvi_proposal_set_params(f->q, f->mean, NULL))                                               \
    X(prop_set_nan_mean, BSVI_ERR_BAD_VALUE, H_PROP, f->q, "data point 2",                         \
      bsvi_proposal_set_params(f->q, (const double[]){0, 0, 0, 0, NAN, 0}, f->ls))                 \
    X(prop_set_inf_mean, BSVI_ERR_BAD_VALUE, H_PROP, f->q, "mean",                                 \
      bsvi_proposal_set_params(f->q, (const double[]){0, INFINITY, 0, 0, 0, 0}, f->ls))            \
    X(prop_set_ls_low, BSVI_ERR_BAD_VALUE, H_PROP, f->q, "log_std",                                \
      bsvi_proposal_set_params(f->q, f->mean, (const double[]){0, 0, 0, -30.5, 0, 0}))             \
    X(prop_set_ls_high, BSVI_ERR_BAD_VALUE, H_PROP, f->q, "log_std",                               \
      bsvi_proposal_set_params(f->q, f->mean, (const double[]){0, 0, 0, 0, 0, 30.0000001}))        \
    X(prop_set_ls_nan, BSVI_ERR_BAD_VALUE, H_PROP, f->q, "log_std",                                \
      bsvi_proposal_set_params(f->q, f->mean, (const double[]){NAN, 0, 0, 0, 0, 0}))               \
    X(prop_get_null_h, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "", bsvi_proposal_get_params(NULL, O, O2)) \
    X(prop_seed_null, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "", bsvi_proposal_set_seed(NULL, 1))  \
    X(prop_stream_null, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                  \
      bsvi_proposal_set_stream(NULL, 1, 2))                                                        \
    X(prop_sample_null_h, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                \
      bsvi_proposal_sample(NULL, 1, O, O2))                                                        \
    X(prop_sample_null_z, BSVI_ERR_NULL_ARGUMENT, H_PROP, f->q, "z", bsvi_proposal_sample(f->q, 1, NULL, O2)) \
    X(prop_sample_zero, BSVI_ERR_ZERO_SIZE, H_PROP, f->q, "nsamples", bsvi_proposal_sample(f->q, 0, O, O2)) \
    X(prop_sample_big, BSVI_ERR_OUT_OF_RANGE, H_PROP, f->q, "exceeds",                             \
      bsvi_proposal_sample(f->q, BSVI_MAX_SAMPLES + 1, O, O2))                                     \
    X(prop_logq_null_h, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                  \
      bsvi_proposal_log_density(NULL, 1, f->z, O))                                                 \
    X(prop_logq_null_z, BSVI_ERR_NULL_ARGUMENT, H_PROP, f->q, "z",                                 \
      bsvi_proposal_log_density(f->q, 1, NULL, O))                                                 \
    X(prop_logq_null_out, BSVI_ERR_NULL_ARGUMENT, H_PROP, f->q, "log_q",                           \
      bsvi_proposal_log_density(f->q, 1, f->z, NULL))                                              \
    X(prop_logq_zero, BSVI_ERR_ZERO_SIZE, H_PROP, f->q, "nsamples",                                \
      bsvi_proposal_log_density(f->q, 0, f->z, O))                                                 \
    X(prop_logq_big, BSVI_ERR_OUT_OF_RANGE, H_PROP, f->q, "exceeds",                               \
      bsvi_proposal_log_density(f->q, BSVI_MAX_SAMPLES + 1, f->z, O))                              \
    X(prop_ent_null_h, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "", bsvi_proposal_entropy(NULL, O))  \
    X(prop_ent_null_out, BSVI_ERR_NULL_ARGUMENT, H_PROP, f->q, "out", bsvi_proposal_entropy(f->q, NULL)) \
    X(prop_kl_null_h, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                    \
      bsvi_proposal_kl_standard_normal(NULL, O))                                                   \
    X(prop_kl_null_out, BSVI_ERR_NULL_ARGUMENT, H_PROP, f->q, "out",                               \
      bsvi_proposal_kl_standard_normal(f->q, NULL))                                                \
    /* trajectory */                                                                               \
    X(traj_create_null, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "", bsvi_trajectory_create(NULL))    \
    X(traj_lw_null_h, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                    \
      bsvi_trajectory_get_log_weights(NULL, O))                                                    \
    X(traj_lw_null_out, BSVI_ERR_NULL_ARGUMENT, H_TRAJ, f->traj, "out",                            \
      bsvi_trajectory_get_log_weights(f->traj, NULL))                                              \
    X(traj_lw_empty, BSVI_ERR_BAD_STATE, H_TRAJ, f->empty, "empty",                                \
      bsvi_trajectory_get_log_weights(f->empty, O))                                                \
    X(traj_lp_null_out, BSVI_ERR_NULL_ARGUMENT, H_TRAJ, f->traj, "out",                            \
      bsvi_trajectory_get_log_joint(f->traj, NULL))                                                \
    X(traj_lp_empty, BSVI_ERR_BAD_STATE, H_TRAJ, f->empty, "empty",                                \
      bsvi_trajectory_get_log_joint(f->empty, O))                                                  \
    X(traj_lq_null_h, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                    \
      bsvi_trajectory_get_log_proposal(NULL, O))                                                   \
    X(traj_lq_empty, BSVI_ERR_BAD_STATE, H_TRAJ, f->empty, "empty",                                \
      bsvi_trajectory_get_log_proposal(f->empty, O))                                               \
    X(traj_z_null_h, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "", bsvi_trajectory_get_latents(NULL, O)) \
    X(traj_z_null_out, BSVI_ERR_NULL_ARGUMENT, H_TRAJ, f->traj, "z",                               \
      bsvi_trajectory_get_latents(f->traj, NULL))                                                  \
    X(traj_z_empty, BSVI_ERR_BAD_STATE, H_TRAJ, f->empty, "empty",                                 \
      bsvi_trajectory_get_latents(f->empty, O))                                                    \
    X(traj_par_null_h, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                   \
      bsvi_trajectory_get_params(NULL, O, O2))                                                     \
    X(traj_par_empty, BSVI_ERR_BAD_STATE, H_TRAJ, f->empty, "empty",                               \
      bsvi_trajectory_get_params(f->empty, O, O2))                                                 \
    X(traj_enc_null_h, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                   \
      bsvi_trajectory_get_encoder_grad(NULL, O, O2))                                               \
    X(traj_enc_empty, BSVI_ERR_BAD_STATE, H_TRAJ, f->empty, "empty",                               \
      bsvi_trajectory_get_encoder_grad(f->empty, O, O2))                                           \
    X(traj_taken_null_h, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                 \
      bsvi_trajectory_get_steps_taken(NULL, SZ))                                                   \
    X(traj_taken_null_out, BSVI_ERR_NULL_ARGUMENT, H_TRAJ, f->traj, "out",                         \
      bsvi_trajectory_get_steps_taken(f->traj, NULL))                                              \
    X(traj_taken_empty, BSVI_ERR_BAD_STATE, H_TRAJ, f->empty, "empty",                             \
      bsvi_trajectory_get_steps_taken(f->empty, SZ))                                               \
    X(health_null_h, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                     \
      bsvi_trajectory_health(NULL, NULL, H))                                                       \
    X(health_null_out, BSVI_ERR_NULL_ARGUMENT, H_TRAJ, f->traj, "out",                             \
      bsvi_trajectory_health(f->traj, NULL, NULL))                                                 \
    X(health_empty, BSVI_ERR_BAD_STATE, H_TRAJ, f->empty, "empty",                                 \
      bsvi_trajectory_health(f->empty, NULL, H))                                                   \
    X(health_npi, BSVI_ERR_SIZE_MISMATCH, H_TRAJ, f->traj, "slots|k+1",                            \
      bsvi_trajectory_health(f->traj, f->w4h, H))                                                  \
    X(health_npi_opt, BSVI_ERR_SIZE_MISMATCH, H_TRAJ, f->traj4, "slots|k+1",                       \
      bsvi_trajectory_health(f->traj4, f->wopt, H))                                                \
    /* svi */                                                                                      \
    X(svi_create_null, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "", bsvi_svi_create(1, NULL))         \
    X(svi_create_zero, BSVI_ERR_ZERO_SIZE, H_NONE, NULL, "", bsvi_svi_create(0, &f->svi_out))      \
    X(svi_create_big, BSVI_ERR_OUT_OF_RANGE, H_NONE, NULL, "",                                     \
      bsvi_svi_create(BSVI_MAX_DIM + 1, &f->svi_out))                                              \
    X(svi_steps_null, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "", bsvi_svi_set_steps(NULL, 1))       \
    X(svi_steps_big, BSVI_ERR_OUT_OF_RANGE, H_SVI, f->svi, "BSVI_MAX_STEPS",                       \
      bsvi_svi_set_steps(f->svi, BSVI_MAX_STEPS + 1))                                              \
    X(svi_eta_null, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "", bsvi_svi_set_step_size(NULL, 1.0))   \
    X(svi_eta_zero, BSVI_ERR_BAD_VALUE, H_SVI, f->svi, "eta", bsvi_svi_set_step_size(f->svi, 0.0)) \
    X(svi_eta_neg, BSVI_ERR_BAD_VALUE, H_SVI, f->svi, "eta", bsvi_svi_set_step_size(f->svi, -1e-3)) \
    X(svi_eta_nan, BSVI_ERR_BAD_VALUE, H_SVI, f->svi, "eta", bsvi_svi_set_step_size(f->svi, NAN))  \
    X(svi_eta_inf, BSVI_ERR_BAD_VALUE, H_SVI, f->svi, "eta",                                       \
      bsvi_svi_set_step_size(f->svi, INFINITY))                                                    \
    X(svi_m_null, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "", bsvi_svi_set_samples_per_step(NULL, 1)) \
    X(svi_m_zero, BSVI_ERR_ZERO_SIZE, H_SVI, f->svi, "m is 0", bsvi_svi_set_samples_per_step(f->svi, 0)) \
    X(svi_m_big, BSVI_ERR_OUT_OF_RANGE, H_SVI, f->svi, "exceeds",                                  \
      bsvi_svi_set_samples_per_step(f->svi, BSVI_MAX_SAMPLES + 1))                                 \
    X(svi_rule_null, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                     \
      bsvi_svi_set_step_rule(NULL, BSVI_STEP_ADAM))                                                \
    X(svi_rule_neg, BSVI_ERR_BAD_VALUE, H_SVI, f->svi, "rule",                                     \
      bsvi_svi_set_step_rule(f->svi, (bsvi_step_rule)-1))                                          \
    X(svi_rule_big, BSVI_ERR_BAD_VALUE, H_SVI, f->svi, "rule",                                     \
      bsvi_svi_set_step_rule(f->svi, (bsvi_step_rule)3))                                           \
    X(svi_mom_null, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "", bsvi_svi_set_momentum(NULL, 0.5))    \
    X(svi_mom_one, BSVI_ERR_BAD_VALUE, H_SVI, f->svi, "beta", bsvi_svi_set_momentum(f->svi, 1.0))  \
    X(svi_mom_neg, BSVI_ERR_BAD_VALUE, H_SVI, f->svi, "beta", bsvi_svi_set_momentum(f->svi, -0.1)) \
    X(svi_mom_nan, BSVI_ERR_BAD_VALUE, H_SVI, f->svi, "beta", bsvi_svi_set_momentum(f->svi, NAN))  \
    X(svi_adam_null, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                     \
      bsvi_svi_set_adam(NULL, 0.9, 0.999, 1e-8))                                                   \
    X(svi_adam_b1, BSVI_ERR_BAD_VALUE, H_SVI, f->svi, "beta1",                                     \
      bsvi_svi_set_adam(f->svi, 1.0, 0.999, 1e-8))                                                 \
    X(svi_adam_b2, BSVI_ERR_BAD_VALUE, H_SVI, f->svi, "beta2",                                     \
      bsvi_svi_set_adam(f->svi, 0.9, -0.5, 1e-8))                                                  \
    X(svi_adam_eps0, BSVI_ERR_BAD_VALUE, H_SVI, f->svi, "epsilon",                                 \
      bsvi_svi_set_adam(f->svi, 0.9, 0.999, 0.0))                                                  \
    X(svi_adam_epsnan, BSVI_ERR_BAD_VALUE, H_SVI, f->svi, "epsilon",                               \
      bsvi_svi_set_adam(f->svi, 0.9, 0.999, NAN))                                                  \
    X(svi_clip_null, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "", bsvi_svi_set_clip_norm(NULL, 1.0))  \
    X(svi_clip_neg, BSVI_ERR_BAD_VALUE, H_SVI, f->svi, "max_norm",                                 \
      bsvi_svi_set_clip_norm(f->svi, -1.0))                                                        \
    X(svi_clip_nan, BSVI_ERR_BAD_VALUE, H_SVI, f->svi, "max_norm",                                 \
      bsvi_svi_set_clip_norm(f->svi, NAN))                                                         \
    X(svi_clip_inf, BSVI_ERR_BAD_VALUE, H_SVI, f->svi, "max_norm",                                 \
      bsvi_svi_set_clip_norm(f->svi, INFINITY))                                                    \
    X(svi_form_null, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                     \
      bsvi_svi_set_grad_form(NULL, BSVI_GRAD_STL))                                                 \
    X(svi_form_dreg, BSVI_ERR_BAD_VALUE, H_SVI, f->svi, "form",                                    \
      bsvi_svi_set_grad_form(f->svi, BSVI_GRAD_DREG))                                              \
    X(svi_form_unknown, BSVI_ERR_BAD_VALUE, H_SVI, f->svi, "form",                                 \
      bsvi_svi_set_grad_form(f->svi, (bsvi_grad_form)9))                                           \
    X(svi_ds_null, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "", bsvi_svi_set_double_sampling(NULL, 1)) \
    X(svi_ds_two, BSVI_ERR_BAD_VALUE, H_SVI, f->svi, "enabled",                                    \
      bsvi_svi_set_double_sampling(f->svi, 2))                                                     \
    X(svi_ds_neg, BSVI_ERR_BAD_VALUE, H_SVI, f->svi, "enabled",                                    \
      bsvi_svi_set_double_sampling(f->svi, -1))                                                    \
    X(svi_div_null, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                      \
      bsvi_svi_set_divergence_policy(NULL, BSVI_DIVERGENCE_FREEZE))                                \
    X(svi_div_unknown, BSVI_ERR_BAD_VALUE, H_SVI, f->svi, "policy",                                \
      bsvi_svi_set_divergence_policy(f->svi, (bsvi_divergence_policy)2))                           \
    X(svi_prog_null, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "", bsvi_svi_set_progress(NULL, NULL, NULL)) \
    X(svi_seed_null, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "", bsvi_svi_set_seed(NULL, 1))         \
    X(svi_stream_null, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "", bsvi_svi_set_stream(NULL, 1, 1))  \
    X(svi_run_null_h, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                    \
      bsvi_svi_run(NULL, f->model, f->q, f->traj))                                                 \
    X(svi_run_null_model, BSVI_ERR_NULL_ARGUMENT, H_SVI, f->svi, "model",                          \
      bsvi_svi_run(f->svi, NULL, f->q, f->traj))                                                   \
    X(svi_run_null_q, BSVI_ERR_NULL_ARGUMENT, H_SVI, f->svi, "proposal",                           \
      bsvi_svi_run(f->svi, f->model, NULL, f->traj))                                               \
    X(svi_run_null_out, BSVI_ERR_NULL_ARGUMENT, H_SVI, f->svi, "trajectory",                       \
      bsvi_svi_run(f->svi, f->model, f->q, NULL))                                                  \
    X(svi_run_model_dim, BSVI_ERR_SIZE_MISMATCH, H_SVI, f->svi, "dimension",                       \
      bsvi_svi_run(f->svi, f->model3, f->q, f->traj))                                              \
    X(svi_run_q_dim, BSVI_ERR_SIZE_MISMATCH, H_SVI, f->svi, "proposal",                            \
      bsvi_svi_run(f->svi, f->model, f->q3, f->traj))                                              \
    X(svi_run_nolik, BSVI_ERR_BAD_STATE, H_SVI, f->svi, "likelihood",                              \
      bsvi_svi_run(f->svi, f->nolik, f->q, f->traj))                                               \
    X(svi_run_kl_prior, BSVI_ERR_BAD_STATE, H_SVI, f->svi_kl, "analytic",                          \
      bsvi_svi_run(f->svi_kl, f->hostprior, f->q, f->traj))                                        \
    X(svi_opts_null_h, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                   \
      bsvi_svi_set_options(NULL, &f->opts))                                                        \
    X(svi_opts_null, BSVI_ERR_NULL_ARGUMENT, H_SVI, f->svi, "options",                             \
      bsvi_svi_set_options(f->svi, NULL))                                                          \
    X(svi_opts_m0, BSVI_ERR_ZERO_SIZE, H_SVI, f->svi, "samples_per_step",                          \
      bsvi_svi_set_options(f->svi, &f->opts_bad[0]))                                               \
    X(svi_opts_mbig, BSVI_ERR_OUT_OF_RANGE, H_SVI, f->svi, "samples_per_step",                     \
      bsvi_svi_set_options(f->svi, &f->opts_bad[1]))                                               \
    X(svi_opts_steps, BSVI_ERR_OUT_OF_RANGE, H_SVI, f->svi, "steps",                               \
      bsvi_svi_set_options(f->svi, &f->opts_bad[2]))                                               \
    X(svi_opts_eta, BSVI_ERR_BAD_VALUE, H_SVI, f->svi, "step_size",                                \
      bsvi_svi_set_options(f->svi, &f->opts_bad[3]))                                               \
    X(svi_opts_dreg, BSVI_ERR_BAD_VALUE, H_SVI, f->svi, "form",                                    \
      bsvi_svi_set_options(f->svi, &f->opts_bad[4]))                                               \
    X(svi_opts_mom, BSVI_ERR_BAD_VALUE, H_SVI, f->svi, "momentum",                                 \
      bsvi_svi_set_options(f->svi, &f->opts_bad[5]))                                               \
    X(svi_getopts_null_h, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                \
      bsvi_svi_get_options(NULL, &f->opts))                                                        \
    X(svi_getopts_null, BSVI_ERR_NULL_ARGUMENT, H_SVI, f->svi, "out",                              \
      bsvi_svi_get_options(f->svi, NULL))                                                          \
    X(svi_getstream_null, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                \
      bsvi_svi_get_stream(NULL, &f->u64_out, &f->u64_out, &f->u64_out))                           \
    X(svi_stats_null_h, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                  \
      bsvi_svi_get_stats(NULL, &f->stats_out))                                                     \
    X(svi_stats_null, BSVI_ERR_NULL_ARGUMENT, H_SVI, f->svi, "out", bsvi_svi_get_stats(f->svi, NULL)) \
    X(svi_reset_null, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "", bsvi_svi_reset_stats(NULL))        \
    /* name helpers */                                                                             \
    X(bound_name_null, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                   \
      bsvi_bound_from_name(NULL, &f->bound_out))                                                   \
    X(bound_name_null_out, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                               \
      bsvi_bound_from_name("elbo", NULL))                                                          \
    X(bound_name_unknown, BSVI_ERR_BAD_VALUE, H_NONE, NULL, "",                                    \
      bsvi_bound_from_name("bsvi_ds", &f->bound_out))                                              \
    X(rule_name_null, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                    \
      bsvi_step_rule_from_name(NULL, &f->rule_out))                                                \
    X(rule_name_unknown, BSVI_ERR_BAD_VALUE, H_NONE, NULL, "",                                     \
      bsvi_step_rule_from_name("Adam", &f->rule_out))                                              \
    X(form_name_null, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                    \
      bsvi_grad_form_from_name("stl", NULL))                                                       \
    X(form_name_unknown, BSVI_ERR_BAD_VALUE, H_NONE, NULL, "",                                     \
      bsvi_grad_form_from_name("analytic_kl", &f->form_out))                                       \
    X(pol_name_null, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                     \
      bsvi_divergence_policy_from_name(NULL, &f->pol_out))                                         \
    X(pol_name_unknown, BSVI_ERR_BAD_VALUE, H_NONE, NULL, "",                                      \
      bsvi_divergence_policy_from_name("", &f->pol_out))                                           \
    /* estimator: create and configuration */                                                      \
    X(est_create_null, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "", bsvi_estimator_create(1, NULL))   \
    X(est_create_zero, BSVI_ERR_ZERO_SIZE, H_NONE, NULL, "", bsvi_estimator_create(0, &f->est_out)) \
    X(est_create_big, BSVI_ERR_OUT_OF_RANGE, H_NONE, NULL, "",                                     \
      bsvi_estimator_create(BSVI_MAX_DIM + 1, &f->est_out))                                        \
    X(est_seed_null, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "", bsvi_estimator_set_seed(NULL, 1))   \
    X(est_stream_null, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                   \
      bsvi_estimator_set_stream(NULL, 1, 1))                                                       \
    X(est_getstream_null, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                \
      bsvi_estimator_get_stream(NULL, &f->u64_out, &f->u64_out, &f->u64_out))                     \
    X(est_policy_null, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                   \
      bsvi_estimator_set_point_policy(NULL, BSVI_POINTS_FAIL))                                     \
    X(est_policy_bad, BSVI_ERR_BAD_VALUE, H_EST, f->iwae, "policy",                                \
      bsvi_estimator_set_point_policy(f->iwae, (bsvi_point_policy)2))                              \
    X(est_stats_null_h, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                  \
      bsvi_estimator_get_stats(NULL, &f->stats_out))                                               \
    X(est_stats_null, BSVI_ERR_NULL_ARGUMENT, H_EST, f->iwae, "out",                               \
      bsvi_estimator_get_stats(f->iwae, NULL))                                                     \
    X(est_reset_null, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "", bsvi_estimator_reset_stats(NULL))  \
    /* estimator: ELBO and IWAE */                                                                 \
    X(elbo_null_h, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                       \
      bsvi_estimator_elbo(NULL, f->model, f->q, BSVI_GRAD_PATHWISE))                               \
    X(elbo_null_q, BSVI_ERR_NULL_ARGUMENT, H_EST, f->elbo, "proposal",                             \
      bsvi_estimator_elbo(f->elbo, f->model, NULL, BSVI_GRAD_PATHWISE))                            \
    X(elbo_null_model, BSVI_ERR_NULL_ARGUMENT, H_EST, f->elbo, "model",                            \
      bsvi_estimator_elbo(f->elbo, NULL, f->q, BSVI_GRAD_PATHWISE))                                \
    X(elbo_dreg, BSVI_ERR_BAD_VALUE, H_EST, f->elbo, "form",                                       \
      bsvi_estimator_elbo(f->elbo, f->model, f->q, BSVI_GRAD_DREG))                                \
    X(elbo_form_unknown, BSVI_ERR_BAD_VALUE, H_EST, f->elbo, "form 9",                             \
      bsvi_estimator_elbo(f->elbo, f->model, f->q, (bsvi_grad_form)9))                             \
    X(elbo_model_dim, BSVI_ERR_SIZE_MISMATCH, H_EST, f->elbo, "dimension",                         \
      bsvi_estimator_elbo(f->elbo, f->model3, f->q, BSVI_GRAD_PATHWISE))                           \
    X(elbo_nolik, BSVI_ERR_BAD_STATE, H_EST, f->elbo, "likelihood",                                \
      bsvi_estimator_elbo(f->elbo, f->nolik, f->q, BSVI_GRAD_PATHWISE))                            \
    X(elbo_kl_prior, BSVI_ERR_BAD_STATE, H_EST, f->elbo, "analytic",                               \
      bsvi_estimator_elbo(f->elbo, f->hostprior, f->q, BSVI_GRAD_ANALYTIC_KL))                     \
    X(iwae_null_model, BSVI_ERR_NULL_ARGUMENT, H_EST, f->iwae, "model",                            \
      bsvi_estimator_iwae(f->iwae, NULL, f->q, 4, BSVI_GRAD_PATHWISE))                             \
    X(iwae_model_dim, BSVI_ERR_SIZE_MISMATCH, H_EST, f->iwae, "dimension",                         \
      bsvi_estimator_iwae(f->iwae, f->model3, f->q, 4, BSVI_GRAD_PATHWISE))                        \
    X(iwae_q_dim, BSVI_ERR_SIZE_MISMATCH, H_EST, f->iwae, "proposal",                              \
      bsvi_estimator_iwae(f->iwae, f->model, f->q3, 4, BSVI_GRAD_PATHWISE))                        \
    X(iwae_K_zero, BSVI_ERR_ZERO_SIZE, H_EST, f->iwae, "K is 0",                                   \
      bsvi_estimator_iwae(f->iwae, f->model, f->q, 0, BSVI_GRAD_PATHWISE))                         \
    X(iwae_K_big, BSVI_ERR_OUT_OF_RANGE, H_EST, f->iwae, "exceeds",                                \
      bsvi_estimator_iwae(f->iwae, f->model, f->q, BSVI_MAX_SAMPLES + 1, BSVI_GRAD_PATHWISE))      \
    X(iwae_stl, BSVI_ERR_BAD_VALUE, H_EST, f->iwae, "STL",                                         \
      bsvi_estimator_iwae(f->iwae, f->model, f->q, 4, BSVI_GRAD_STL))                              \
    X(iwae_kl, BSVI_ERR_BAD_VALUE, H_EST, f->iwae, "form",                                         \
      bsvi_estimator_iwae(f->iwae, f->model, f->q, 4, BSVI_GRAD_ANALYTIC_KL))                      \
    X(iwae_form_unknown, BSVI_ERR_BAD_VALUE, H_EST, f->iwae, "form 9",                             \
      bsvi_estimator_iwae(f->iwae, f->model, f->q, 4, (bsvi_grad_form)9))                          \
    /* estimator: trajectory bounds */                                                             \
    X(svik_null_h, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "", bsvi_estimator_svi(NULL, f->traj))    \
    X(svik_null_traj, BSVI_ERR_NULL_ARGUMENT, H_EST, f->sir, "trajectory",                         \
      bsvi_estimator_svi(f->sir, NULL))                                                            \
    X(svik_empty, BSVI_ERR_BAD_STATE, H_EST, f->sir, "empty", bsvi_estimator_svi(f->sir, f->empty)) \
    X(svik_dim, BSVI_ERR_SIZE_MISMATCH, H_EST, f->sir, "dimension",                                \
      bsvi_estimator_svi(f->sir, f->traj3))                                                        \
    X(bsvi_null_h, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                       \
      bsvi_estimator_bsvi(NULL, f->traj, NULL))                                                    \
    X(bsvi_null_traj, BSVI_ERR_NULL_ARGUMENT, H_EST, f->bsvi, "trajectory",                        \
      bsvi_estimator_bsvi(f->bsvi, NULL, f->w3))                                                   \
    X(bsvi_empty, BSVI_ERR_BAD_STATE, H_EST, f->bsvi, "empty",                                     \
      bsvi_estimator_bsvi(f->bsvi, f->empty, f->w3))                                               \
    X(bsvi_dim, BSVI_ERR_SIZE_MISMATCH, H_EST, f->bsvi, "dimension",                               \
      bsvi_estimator_bsvi(f->bsvi, f->traj3, NULL))                                                \
    X(bsvi_pi_len, BSVI_ERR_SIZE_MISMATCH, H_EST, f->bsvi, "k+1",                                  \
      bsvi_estimator_bsvi(f->bsvi, f->traj, f->w4h))                                               \
    X(bsvi_pi_len4, BSVI_ERR_SIZE_MISMATCH, H_EST, f->bsvi, "k+1",                                 \
      bsvi_estimator_bsvi(f->bsvi, f->traj4, f->w3))                                               \
    X(sir_null_h, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                        \
      bsvi_estimator_bsvi_sir(NULL, f->traj, NULL, 2))                                             \
    X(sir_M_zero, BSVI_ERR_ZERO_SIZE, H_EST, f->sir, "M is 0",                                     \
      bsvi_estimator_bsvi_sir(f->sir, f->traj, NULL, 0))                                           \
    X(sir_M_big, BSVI_ERR_OUT_OF_RANGE, H_EST, f->sir, "exceeds",                                  \
      bsvi_estimator_bsvi_sir(f->sir, f->traj, NULL, BSVI_MAX_SAMPLES + 1))                        \
    X(sir_empty, BSVI_ERR_BAD_STATE, H_EST, f->sir, "empty",                                       \
      bsvi_estimator_bsvi_sir(f->sir, f->empty, NULL, 2))                                          \
    X(sir_pi_len, BSVI_ERR_SIZE_MISMATCH, H_EST, f->sir, "k+1",                                    \
      bsvi_estimator_bsvi_sir(f->sir, f->traj, f->w4h, 2))                                         \
    /* estimator: generalised IWAE */                                                              \
    X(terms_null_h, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                      \
      bsvi_estimator_giwae(NULL, NB, 4, f->lj, f->lq, NULL))                                       \
    X(terms_null_lj, BSVI_ERR_NULL_ARGUMENT, H_EST, f->giwae, "log_joint",                         \
      bsvi_estimator_giwae(f->giwae, NB, 4, NULL, f->lq, NULL))                                    \
    X(terms_null_lq, BSVI_ERR_NULL_ARGUMENT, H_EST, f->giwae, "log_proposal",                      \
      bsvi_estimator_giwae(f->giwae, NB, 4, f->lj, NULL, NULL))                                    \
    X(terms_zero_b, BSVI_ERR_ZERO_SIZE, H_EST, f->giwae, "batch",                                  \
      bsvi_estimator_giwae(f->giwae, 0, 4, f->lj, f->lq, NULL))                                    \
    X(terms_zero_n, BSVI_ERR_ZERO_SIZE, H_EST, f->giwae, "n must",                                 \
      bsvi_estimator_giwae(f->giwae, NB, 0, f->lj, f->lq, NULL))                                   \
    X(terms_big_b, BSVI_ERR_OUT_OF_RANGE, H_EST, f->giwae, "exceeds",                              \
      bsvi_estimator_giwae(f->giwae, BIGS, 4, f->lj, f->lq, NULL))                                 \
    X(terms_big_n, BSVI_ERR_OUT_OF_RANGE, H_EST, f->giwae, "exceeds",                              \
      bsvi_estimator_giwae(f->giwae, 1, BIGS, f->lj, f->lq, NULL))                                 \
    X(terms_pi_len, BSVI_ERR_SIZE_MISMATCH, H_EST, f->giwae, "n = 3",                              \
      bsvi_estimator_giwae(f->giwae, 4, 3, f->lj, f->lq, f->w4h))                                  \
    X(terms_nan_lj, BSVI_ERR_BAD_VALUE, H_EST, f->giwae, "term 5",                                 \
      bsvi_estimator_giwae(f->giwae, 2, 4, (const double[]){0, 0, 0, 0, 0, NAN, 0, 0}, f->lq, NULL)) \
    X(terms_inf_lj, BSVI_ERR_BAD_VALUE, H_EST, f->giwae, "term 0",                                 \
      bsvi_estimator_giwae(f->giwae, 1, 4, (const double[]){INFINITY, 0, 0, 0}, f->lq, NULL))      \
    X(terms_nan_lq, BSVI_ERR_BAD_VALUE, H_EST, f->giwae, "term 3",                                 \
      bsvi_estimator_giwae(f->giwae, 1, 4, f->lj, (const double[]){0, 0, 0, NAN}, NULL))           \
    X(terms_ninf_lq, BSVI_ERR_BAD_VALUE, H_EST, f->giwae, "term 1",                                \
      bsvi_estimator_giwae(f->giwae, 1, 4, f->lj, (const double[]){0, -INFINITY, 0, 0}, NULL))     \
    X(terms_overflow, BSVI_ERR_NUMERIC, H_EST, f->giwae, "overflow",                               \
      bsvi_estimator_giwae(f->giwae, 1, 4, (const double[]){0, 1e308, 0, 0},                       \
                           (const double[]){0, -1e308, 0, 0}, NULL))                               \
    /* estimator: results */                                                                       \
    X(kind_null_h, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                       \
      bsvi_estimator_result_kind(NULL, &f->bound_out))                                             \
    X(kind_null_out, BSVI_ERR_NULL_ARGUMENT, H_EST, f->iwae, "out",                                \
      bsvi_estimator_result_kind(f->iwae, NULL))                                                   \
    X(kind_none, BSVI_ERR_BAD_STATE, H_EST, f->unsized, "no result",                               \
      bsvi_estimator_result_kind(f->unsized, &f->bound_out))                                       \
    X(bounds_null_h, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "", bsvi_estimator_get_bounds(NULL, O, NB)) \
    X(bounds_null_out, BSVI_ERR_NULL_ARGUMENT, H_EST, f->bsvi, "out is NULL",                      \
      bsvi_estimator_get_bounds(f->bsvi, NULL, NB))                                                \
    X(bounds_none, BSVI_ERR_BAD_STATE, H_EST, f->unsized, "no result",                             \
      bsvi_estimator_get_bounds(f->unsized, O, NB))                                                \
    X(bounds_mismatch, BSVI_ERR_SIZE_MISMATCH, H_EST, f->bsvi, "n = 2",                            \
      bsvi_estimator_get_bounds(f->bsvi, O, 2))                                                    \
    X(tg_null_h, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                         \
      bsvi_estimator_get_targets(NULL, 9, SZ, SZ, O, O2))                                          \
    X(tg_none, BSVI_ERR_BAD_STATE, H_EST, f->unsized, "no result",                                 \
      bsvi_estimator_get_targets(f->unsized, 9, SZ, SZ, O, O2))                                    \
    X(tg_mismatch, BSVI_ERR_SIZE_MISMATCH, H_EST, f->bsvi, "targets",                              \
      bsvi_estimator_get_targets(f->bsvi, 8, SZ, SZ, O, O2))                                       \
    X(tg_giwae_z, BSVI_ERR_BAD_STATE, H_EST, f->giwae, "latents",                                  \
      bsvi_estimator_get_targets(f->giwae, NB * 4, SZ, SZ, O, O2))                                 \
    X(tlw_null_h, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                        \
      bsvi_estimator_get_target_log_weights(NULL, 9, O))                                           \
    X(tlw_null_out, BSVI_ERR_NULL_ARGUMENT, H_EST, f->bsvi, "log_w",                               \
      bsvi_estimator_get_target_log_weights(f->bsvi, 9, NULL))                                     \
    X(tlw_none, BSVI_ERR_BAD_STATE, H_EST, f->unsized, "no result",                                \
      bsvi_estimator_get_target_log_weights(f->unsized, 9, O))                                     \
    X(tlw_mismatch, BSVI_ERR_SIZE_MISMATCH, H_EST, f->iwae, "targets",                             \
      bsvi_estimator_get_target_log_weights(f->iwae, 11, O))                                       \
    X(noise_null_h, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "", bsvi_estimator_get_noise(NULL, 3, O)) \
    X(noise_null_out, BSVI_ERR_NULL_ARGUMENT, H_EST, f->elbo, "eps",                               \
      bsvi_estimator_get_noise(f->elbo, 3, NULL))                                                  \
    X(noise_none, BSVI_ERR_BAD_STATE, H_EST, f->unsized, "no result",                              \
      bsvi_estimator_get_noise(f->unsized, 3, O))                                                  \
    X(noise_traj, BSVI_ERR_BAD_STATE, H_EST, f->bsvi, "ELBO and IWAE",                             \
      bsvi_estimator_get_noise(f->bsvi, NB * (NK + 1), O))                                         \
    X(noise_giwae, BSVI_ERR_BAD_STATE, H_EST, f->giwae, "ELBO and IWAE",                           \
      bsvi_estimator_get_noise(f->giwae, NB * 4, O))                                               \
    X(noise_mismatch, BSVI_ERR_SIZE_MISMATCH, H_EST, f->iwae, "targets",                           \
      bsvi_estimator_get_noise(f->iwae, 11, O))                                                    \
    X(enc_null_h, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                        \
      bsvi_estimator_get_encoder_grad(NULL, NB, O, O2))                                            \
    X(enc_none, BSVI_ERR_BAD_STATE, H_EST, f->unsized, "no result",                                \
      bsvi_estimator_get_encoder_grad(f->unsized, NB, O, O2))                                      \
    X(enc_giwae, BSVI_ERR_BAD_STATE, H_EST, f->giwae, "no encoder gradient",                       \
      bsvi_estimator_get_encoder_grad(f->giwae, NB, O, O2))                                        \
    X(enc_mismatch, BSVI_ERR_SIZE_MISMATCH, H_EST, f->iwae, "batch = 4",                           \
      bsvi_estimator_get_encoder_grad(f->iwae, 4, O, O2))                                          \
    /* buffer weights */                                                                           \
    X(w_create_null, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "", bsvi_buffer_weights_create(3, NULL)) \
    X(w_create_zero, BSVI_ERR_ZERO_SIZE, H_NONE, NULL, "", bsvi_buffer_weights_create(0, &f->w_out)) \
    X(w_create_big, BSVI_ERR_OUT_OF_RANGE, H_NONE, NULL, "",                                       \
      bsvi_buffer_weights_create(BSVI_MAX_STEPS + 2, &f->w_out))                                   \
    X(pi_set_null_h, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                     \
      bsvi_buffer_weights_set_probs(NULL, f->pi3, 3))                                              \
    X(pi_set_null_pi, BSVI_ERR_NULL_ARGUMENT, H_W, f->wopt, "pi is NULL",                          \
      bsvi_buffer_weights_set_probs(f->wopt, NULL, 3))                                             \
    X(pi_set_mismatch, BSVI_ERR_SIZE_MISMATCH, H_W, f->wopt, "n = 4",                              \
      bsvi_buffer_weights_set_probs(f->wopt, f->w4, 4))                                            \
    X(pi_set_neg, BSVI_ERR_BAD_VALUE, H_W, f->wopt, "pi[1]",                                       \
      bsvi_buffer_weights_set_probs(f->wopt, (const double[]){0.6, -0.1, 0.5}, 3))                 \
    X(pi_set_nan, BSVI_ERR_BAD_VALUE, H_W, f->wopt, "pi[2]",                                       \
      bsvi_buffer_weights_set_probs(f->wopt, (const double[]){0.5, 0.5, NAN}, 3))                  \
    X(pi_set_inf, BSVI_ERR_BAD_VALUE, H_W, f->wopt, "pi[0]",                                       \
      bsvi_buffer_weights_set_probs(f->wopt, (const double[]){INFINITY, 0.0, 0.0}, 3))             \
    X(pi_set_sum, BSVI_ERR_BAD_VALUE, H_W, f->wopt, "sums",                                        \
      bsvi_buffer_weights_set_probs(f->wopt, (const double[]){0.3, 0.3, 0.3}, 3))                  \
    X(pi_get_null_h, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                     \
      bsvi_buffer_weights_get_probs(NULL, O, 3))                                                   \
    X(pi_get_null_out, BSVI_ERR_NULL_ARGUMENT, H_W, f->wopt, "pi is NULL",                         \
      bsvi_buffer_weights_get_probs(f->wopt, NULL, 3))                                             \
    X(pi_get_mismatch, BSVI_ERR_SIZE_MISMATCH, H_W, f->wopt, "n = 4",                              \
      bsvi_buffer_weights_get_probs(f->wopt, O, 4))                                                \
    X(lg_set_null_h, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                     \
      bsvi_buffer_weights_set_logits(NULL, f->pi3, 3))                                             \
    X(lg_set_null, BSVI_ERR_NULL_ARGUMENT, H_W, f->wopt, "logits",                                 \
      bsvi_buffer_weights_set_logits(f->wopt, NULL, 3))                                            \
    X(lg_set_mismatch, BSVI_ERR_SIZE_MISMATCH, H_W, f->wopt, "n = 2",                              \
      bsvi_buffer_weights_set_logits(f->wopt, f->pi3, 2))                                          \
    X(lg_set_nan, BSVI_ERR_BAD_VALUE, H_W, f->wopt, "logit 1",                                     \
      bsvi_buffer_weights_set_logits(f->wopt, (const double[]){0.0, NAN, 0.0}, 3))                 \
    X(lg_set_inf, BSVI_ERR_BAD_VALUE, H_W, f->wopt, "logit 2",                                     \
      bsvi_buffer_weights_set_logits(f->wopt, (const double[]){0.0, 0.0, INFINITY}, 3))            \
    X(lg_set_allninf, BSVI_ERR_BAD_VALUE, H_W, f->wopt, "every logit",                             \
      bsvi_buffer_weights_set_logits(f->wopt, (const double[]){-INFINITY, -INFINITY, -INFINITY}, 3)) \
    X(lg_get_null_h, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                     \
      bsvi_buffer_weights_get_logits(NULL, O, 3))                                                  \
    X(lg_get_null, BSVI_ERR_NULL_ARGUMENT, H_W, f->wopt, "logits",                                 \
      bsvi_buffer_weights_get_logits(f->wopt, NULL, 3))                                            \
    X(lg_get_mismatch, BSVI_ERR_SIZE_MISMATCH, H_W, f->wopt, "n = 4",                              \
      bsvi_buffer_weights_get_logits(f->wopt, O, 4))                                               \
    X(pos_null_h, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                        \
      bsvi_buffer_weights_mean_position(NULL, O))                                                  \
    X(pos_null_out, BSVI_ERR_NULL_ARGUMENT, H_W, f->wopt, "out is NULL",                           \
      bsvi_buffer_weights_mean_position(f->wopt, NULL))                                            \
    X(adam_null_h, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                       \
      bsvi_buffer_weights_set_adam(NULL, 0.1, 0.9, 0.99))                                          \
    X(adam_lr0, BSVI_ERR_BAD_VALUE, H_W, f->wopt, "learning_rate",                                 \
      bsvi_buffer_weights_set_adam(f->wopt, 0.0, 0.9, 0.99))                                       \
    X(adam_lrnan, BSVI_ERR_BAD_VALUE, H_W, f->wopt, "learning_rate",                               \
      bsvi_buffer_weights_set_adam(f->wopt, NAN, 0.9, 0.99))                                       \
    X(adam_lrinf, BSVI_ERR_BAD_VALUE, H_W, f->wopt, "learning_rate",                               \
      bsvi_buffer_weights_set_adam(f->wopt, INFINITY, 0.9, 0.99))                                  \
    X(adam_b1, BSVI_ERR_BAD_VALUE, H_W, f->wopt, "betas",                                          \
      bsvi_buffer_weights_set_adam(f->wopt, 0.1, 1.0, 0.99))                                       \
    X(adam_b2, BSVI_ERR_BAD_VALUE, H_W, f->wopt, "betas",                                          \
      bsvi_buffer_weights_set_adam(f->wopt, 0.1, 0.9, -0.01))                                      \
    X(adst_get_null_h, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                   \
      bsvi_buffer_weights_get_adam_state(NULL, O, O2, &f->u64_out, 3))                             \
    X(adst_get_mismatch, BSVI_ERR_SIZE_MISMATCH, H_W, f->wopt, "n = 2",                            \
      bsvi_buffer_weights_get_adam_state(f->wopt, O, O2, &f->u64_out, 2))                          \
    X(adst_set_null_h, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                   \
      bsvi_buffer_weights_set_adam_state(NULL, f->pi3, f->pi3, 1, 3))                              \
    X(adst_set_null_m, BSVI_ERR_NULL_ARGUMENT, H_W, f->wopt, "m and v",                            \
      bsvi_buffer_weights_set_adam_state(f->wopt, NULL, f->pi3, 1, 3))                             \
    X(adst_set_null_v, BSVI_ERR_NULL_ARGUMENT, H_W, f->wopt, "m and v",                            \
      bsvi_buffer_weights_set_adam_state(f->wopt, f->pi3, NULL, 1, 3))                             \
    X(adst_set_mismatch, BSVI_ERR_SIZE_MISMATCH, H_W, f->wopt, "n = 4",                            \
      bsvi_buffer_weights_set_adam_state(f->wopt, f->w4, f->w4, 1, 4))                             \
    X(adst_set_m_nan, BSVI_ERR_BAD_VALUE, H_W, f->wopt, "moment 1",                                \
      bsvi_buffer_weights_set_adam_state(f->wopt, (const double[]){0, NAN, 0}, f->pi3, 1, 3))      \
    X(adst_set_v_neg, BSVI_ERR_BAD_VALUE, H_W, f->wopt, "moment 2",                                \
      bsvi_buffer_weights_set_adam_state(f->wopt, f->pi3, (const double[]){0, 0, -1e-9}, 1, 3))    \
    X(acc_null_h, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                        \
      bsvi_buffer_weights_accumulate(NULL, f->traj))                                               \
    X(acc_null_t, BSVI_ERR_NULL_ARGUMENT, H_W, f->wopt, "trajectory",                              \
      bsvi_buffer_weights_accumulate(f->wopt, NULL))                                               \
    X(acc_empty, BSVI_ERR_BAD_STATE, H_W, f->wopt, "empty",                                        \
      bsvi_buffer_weights_accumulate(f->wopt, f->empty))                                           \
    X(acc_mismatch, BSVI_ERR_SIZE_MISMATCH, H_W, f->wopt, "k+1 = 4",                               \
      bsvi_buffer_weights_accumulate(f->wopt, f->traj4))                                           \
    X(acct_null_h, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                       \
      bsvi_buffer_weights_accumulate_terms(NULL, NB, 3, f->lj, f->lq))                             \
    X(acct_null_lj, BSVI_ERR_NULL_ARGUMENT, H_W, f->wopt, "log_joint",                             \
      bsvi_buffer_weights_accumulate_terms(f->wopt, NB, 3, NULL, f->lq))                           \
    X(acct_zero, BSVI_ERR_ZERO_SIZE, H_W, f->wopt, "batch",                                        \
      bsvi_buffer_weights_accumulate_terms(f->wopt, 0, 3, f->lj, f->lq))                           \
    X(acct_big, BSVI_ERR_OUT_OF_RANGE, H_W, f->wopt, "exceeds",                                    \
      bsvi_buffer_weights_accumulate_terms(f->wopt, BIGS, 3, f->lj, f->lq))                        \
    X(acct_mismatch, BSVI_ERR_SIZE_MISMATCH, H_W, f->wopt, "n = 4",                                \
      bsvi_buffer_weights_accumulate_terms(f->wopt, NB, 4, f->lj, f->lq))                          \
    X(acct_nan, BSVI_ERR_BAD_VALUE, H_W, f->wopt, "term 4",                                        \
      bsvi_buffer_weights_accumulate_terms(f->wopt, 2, 3, (const double[]){0, 0, 0, 0, NAN, 0},    \
                                           f->lq))                                                 \
    X(acct_overflow, BSVI_ERR_NUMERIC, H_W, f->wopt, "overflow",                                   \
      bsvi_buffer_weights_accumulate_terms(f->wopt, 2, 3, (const double[]){0, 0, 0, 0, 1e308, 0},  \
                                           (const double[]){0, 0, 0, 0, -1e308, 0}))               \
    X(grad_get_null_h, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                   \
      bsvi_buffer_weights_get_gradient(NULL, O, &f->u64_out, 3))                                   \
    X(grad_get_mismatch, BSVI_ERR_SIZE_MISMATCH, H_W, f->wopt, "n = 4",                            \
      bsvi_buffer_weights_get_gradient(f->wopt, O, &f->u64_out, 4))                                \
    X(grad_set_null_h, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                   \
      bsvi_buffer_weights_set_gradient(NULL, f->pi3, 1, 3))                                        \
    X(grad_set_null, BSVI_ERR_NULL_ARGUMENT, H_W, f->wopt, "sum is NULL",                          \
      bsvi_buffer_weights_set_gradient(f->wopt, NULL, 1, 3))                                       \
    X(grad_set_mismatch, BSVI_ERR_SIZE_MISMATCH, H_W, f->wopt, "n = 2",                            \
      bsvi_buffer_weights_set_gradient(f->wopt, f->pi3, 1, 2))                                     \
    X(grad_set_inf, BSVI_ERR_BAD_VALUE, H_W, f->wopt, "sum[1]",                                    \
      bsvi_buffer_weights_set_gradient(f->wopt, (const double[]){0, INFINITY, 0}, 1, 3))           \
    X(wstep_null_h, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "", bsvi_buffer_weights_step(NULL))      \
    /* evaluator */                                                                                \
    X(ev_create_null, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "", bsvi_evaluator_create(1, NULL))    \
    X(ev_create_zero, BSVI_ERR_ZERO_SIZE, H_NONE, NULL, "", bsvi_evaluator_create(0, &f->ev_out))  \
    X(ev_create_big, BSVI_ERR_OUT_OF_RANGE, H_NONE, NULL, "",                                      \
      bsvi_evaluator_create(BSVI_MAX_DIM + 1, &f->ev_out))                                         \
    X(ev_seed_null, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "", bsvi_evaluator_set_seed(NULL, 1))    \
    X(ev_stream_null, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "", bsvi_evaluator_set_stream(NULL, 1, 1)) \
    X(ev_prog_null, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                      \
      bsvi_evaluator_set_progress(NULL, NULL, NULL))                                               \
    X(ev_chunk_null, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "", bsvi_evaluator_set_chunk_rows(NULL, 4)) \
    X(ev_chunk_zero, BSVI_ERR_ZERO_SIZE, H_EV, f->ev, "rows is 0", bsvi_evaluator_set_chunk_rows(f->ev, 0)) \
    X(ev_chunk_big, BSVI_ERR_OUT_OF_RANGE, H_EV, f->ev, "exceeds",                                 \
      bsvi_evaluator_set_chunk_rows(f->ev, BSVI_MAX_BATCH + 1))                                    \
    X(iw_null_h, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "", bsvi_evaluator_iwae(NULL, f->model, f->q, 4, O)) \
    X(iw_null_model, BSVI_ERR_NULL_ARGUMENT, H_EV, f->ev, "model",                                 \
      bsvi_evaluator_iwae(f->ev, NULL, f->q, 4, O))                                                \
    X(iw_null_q, BSVI_ERR_NULL_ARGUMENT, H_EV, f->ev, "proposal", bsvi_evaluator_iwae(f->ev, f->model, NULL, 4, O)) \
    X(iw_null_out, BSVI_ERR_NULL_ARGUMENT, H_EV, f->ev, "out is NULL",                             \
      bsvi_evaluator_iwae(f->ev, f->model, f->q, 4, NULL))                                         \
    X(iw_zero, BSVI_ERR_ZERO_SIZE, H_EV, f->ev, "S is 0", bsvi_evaluator_iwae(f->ev, f->model, f->q, 0, O)) \
    X(iw_big, BSVI_ERR_OUT_OF_RANGE, H_EV, f->ev, "2^32",                                          \
      bsvi_evaluator_iwae(f->ev, f->model, f->q, ((size_t)1 << 32) + 1, O))                        \
    X(iw_model_dim, BSVI_ERR_SIZE_MISMATCH, H_EV, f->ev, "dimension",                              \
      bsvi_evaluator_iwae(f->ev, f->model3, f->q, 4, O))                                           \
    X(iw_q_dim, BSVI_ERR_SIZE_MISMATCH, H_EV, f->ev, "proposal",                                   \
      bsvi_evaluator_iwae(f->ev, f->model, f->q3, 4, O))                                           \
    X(iw_nolik, BSVI_ERR_BAD_STATE, H_EV, f->ev, "likelihood",                                     \
      bsvi_evaluator_iwae(f->ev, f->nolik, f->q, 4, O))                                            \
    X(es_null_h, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                         \
      bsvi_evaluator_elbo_star(NULL, f->model, f->q, 4, O, O2, O3))                                \
    X(es_null_q, BSVI_ERR_NULL_ARGUMENT, H_EV, f->ev, "proposal",                                  \
      bsvi_evaluator_elbo_star(f->ev, f->model, NULL, 4, O, O2, O3))                               \
    X(es_zero, BSVI_ERR_ZERO_SIZE, H_EV, f->ev, "S is 0",                                          \
      bsvi_evaluator_elbo_star(f->ev, f->model, f->q, 0, O, O2, O3))                               \
    X(es_big, BSVI_ERR_OUT_OF_RANGE, H_EV, f->ev, "2^32",                                          \
      bsvi_evaluator_elbo_star(f->ev, f->model, f->q, ((size_t)1 << 32) + 1, O, O2, O3))           \
    X(es_model_dim, BSVI_ERR_SIZE_MISMATCH, H_EV, f->ev, "dimension",                              \
      bsvi_evaluator_elbo_star(f->ev, f->model3, f->q, 4, O, O2, O3))                              \
    X(ebs_null_h, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                        \
      bsvi_evaluator_bsvi(NULL, f->model, f->q, 3, O, NULL))                                       \
    X(ebs_null_out, BSVI_ERR_NULL_ARGUMENT, H_EV, f->ev, "out",                                    \
      bsvi_evaluator_bsvi(f->ev, f->model, f->q, 3, NULL, NULL))                                   \
    X(ebs_null_model, BSVI_ERR_NULL_ARGUMENT, H_EV, f->ev, "model",                                \
      bsvi_evaluator_bsvi(f->ev, NULL, f->q, 3, O, NULL))                                          \
    X(ebs_zero, BSVI_ERR_ZERO_SIZE, H_EV, f->ev, "K is 0",                                         \
      bsvi_evaluator_bsvi(f->ev, f->model, f->q, 0, O, NULL))                                      \
    X(ebs_big, BSVI_ERR_OUT_OF_RANGE, H_EV, f->ev, "exceeds",                                      \
      bsvi_evaluator_bsvi(f->ev, f->model, f->q, BSVI_MAX_STEPS + 2, O, NULL))                     \
    X(ebs_model_dim, BSVI_ERR_SIZE_MISMATCH, H_EV, f->ev, "dimension",                             \
      bsvi_evaluator_bsvi(f->ev, f->model3, f->q, 3, O, NULL))                                     \
    X(ebs_final_shape, BSVI_ERR_SIZE_MISMATCH, H_EV, f->ev, "final_q",                             \
      bsvi_evaluator_bsvi(f->ev, f->model, f->q, 3, O, f->q22))                                    \
    X(ebs_kl_prior, BSVI_ERR_BAD_STATE, H_EV, f->ev_kl, "analytic",                                \
      bsvi_evaluator_bsvi(f->ev_kl, f->hostprior, f->q, 3, O, NULL))                               \
    X(ev_opts_null_h, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                    \
      bsvi_evaluator_set_svi_options(NULL, &f->opts))                                              \
    X(ev_opts_null, BSVI_ERR_NULL_ARGUMENT, H_EV, f->ev, "options",                                \
      bsvi_evaluator_set_svi_options(f->ev, NULL))                                                 \
    X(ev_opts_m0, BSVI_ERR_ZERO_SIZE, H_EV, f->ev, "samples_per_step",                             \
      bsvi_evaluator_set_svi_options(f->ev, &f->opts_bad[0]))                                      \
    X(ev_opts_mbig, BSVI_ERR_OUT_OF_RANGE, H_EV, f->ev, "samples_per_step",                        \
      bsvi_evaluator_set_svi_options(f->ev, &f->opts_bad[1]))                                      \
    X(ev_opts_eta, BSVI_ERR_BAD_VALUE, H_EV, f->ev, "step_size",                                   \
      bsvi_evaluator_set_svi_options(f->ev, &f->opts_bad[3]))                                      \
    X(ev_opts_dreg, BSVI_ERR_BAD_VALUE, H_EV, f->ev, "form",                                       \
      bsvi_evaluator_set_svi_options(f->ev, &f->opts_bad[4]))                                      \
    X(ev_opts_mom, BSVI_ERR_BAD_VALUE, H_EV, f->ev, "momentum",                                    \
      bsvi_evaluator_set_svi_options(f->ev, &f->opts_bad[5]))                                      \
    X(ev_getopts_null_h, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                 \
      bsvi_evaluator_get_svi_options(NULL, &f->opts))                                              \
    X(ev_getopts_null, BSVI_ERR_NULL_ARGUMENT, H_EV, f->ev, "out",                                 \
      bsvi_evaluator_get_svi_options(f->ev, NULL))                                                 \
    X(ev_policy_null, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                    \
      bsvi_evaluator_set_point_policy(NULL, BSVI_POINTS_FAIL))                                     \
    X(ev_policy_bad, BSVI_ERR_BAD_VALUE, H_EV, f->ev, "policy",                                    \
      bsvi_evaluator_set_point_policy(f->ev, (bsvi_point_policy)-1))                               \
    X(ev_taken_null_h, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                   \
      bsvi_evaluator_get_steps_taken(NULL, SZ, NB))                                                \
    X(ev_taken_null, BSVI_ERR_NULL_ARGUMENT, H_EV, f->ev, "out",                                   \
      bsvi_evaluator_get_steps_taken(f->ev, NULL, NB))                                             \
    X(ev_taken_none, BSVI_ERR_BAD_STATE, H_EV, f->ev_fresh, "no BSVI-K",                           \
      bsvi_evaluator_get_steps_taken(f->ev_fresh, SZ, NB))                                         \
    X(ev_taken_mismatch, BSVI_ERR_SIZE_MISMATCH, H_EV, f->ev, "n = 2",                             \
      bsvi_evaluator_get_steps_taken(f->ev, SZ, 2))                                                \
    X(ev_getstream_null, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                 \
      bsvi_evaluator_get_stream(NULL, &f->u64_out, &f->u64_out, &f->u64_out))                     \
    X(ev_stats_null_h, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                   \
      bsvi_evaluator_get_stats(NULL, &f->stats_out))                                               \
    X(ev_stats_null, BSVI_ERR_NULL_ARGUMENT, H_EV, f->ev, "out",                                   \
      bsvi_evaluator_get_stats(f->ev, NULL))                                                       \
    X(ev_reset_null, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "", bsvi_evaluator_reset_stats(NULL)) \
    /* evaluator: IWAE-S weight diagnostics (0.2.1) */                                          \
    X(ev_diag_null, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "", bsvi_evaluator_set_diagnostics(NULL, 1)) \
    X(ev_diag_bad, BSVI_ERR_BAD_VALUE, H_EV, f->ev_diag, "enabled must be 0 or 1",              \
      bsvi_evaluator_set_diagnostics(f->ev_diag, 2))                                            \
    X(ev_gdiag_null, BSVI_ERR_NULL_ARGUMENT, H_NONE, NULL, "",                                  \
      bsvi_evaluator_get_diagnostics(NULL, NB, O, O2))                                          \
    X(ev_gdiag_none, BSVI_ERR_BAD_STATE, H_EV, f->ev, "no IWAE-S estimate with diagnostics",    \
      bsvi_evaluator_get_diagnostics(f->ev, NB, O, O2))                                         \
    X(ev_gdiag_fresh, BSVI_ERR_BAD_STATE, H_EV, f->ev_fresh, "set_diagnostics",                 \
      bsvi_evaluator_get_diagnostics(f->ev_fresh, NB, O, O2))                                   \
    X(ev_gdiag_batch, BSVI_ERR_SIZE_MISMATCH, H_EV, f->ev_diag, "batch = 2",                    \
      bsvi_evaluator_get_diagnostics(f->ev_diag, 2, O, O2))                                     \
    X(iw_diag_dim, BSVI_ERR_SIZE_MISMATCH, H_EV, f->ev_diag, "dimension",                       \
      bsvi_evaluator_iwae(f->ev_diag, f->model3, f->q, 30, O))                                  \
    X(iw_diag_nolik, BSVI_ERR_BAD_STATE, H_EV, f->ev_diag, "likelihood",                        \
      bsvi_evaluator_iwae(f->ev_diag, f->nolik, f->q, 30, O))

#define X(name, expected, hk, h, words, call)                                                      \
    static bsvi_status call_##name(cfx *f)                                                         \
    {                                                                                              \
        (void)f;                                                                                   \
        return (call);                                                                             \
    }                                                                                              \
    static const void *handle_##name(cfx *f)                                                       \
    {                                                                                              \
        (void)f;                                                                                   \
        return (const void *)(h);                                                                  \
    }
CASES(X)
#undef X

typedef struct ccase {
    const char *name;
    bsvi_status (*call)(cfx *);
    const void *(*handle)(cfx *);
    bsvi_status expected;
    enum hk kind;
    const char *words;
    const char *text; /* the call, as written */
} ccase;

#define X(name, expected, hk, h, words, call)                                                      \
    {#name, call_##name, handle_##name, expected, hk, words, #call},
static const ccase cases[] = {CASES(X)};
#undef X
#define NCASES (sizeof cases / sizeof cases[0])

static const char *message_of(enum hk kind, const void *h)
{
    switch (kind) {
    case H_MODEL: return bsvi_model_last_error((const bsvi_model *)h);
    case H_PROP: return bsvi_proposal_last_error((const bsvi_proposal *)h);
    case H_SVI: return bsvi_svi_last_error((const bsvi_svi *)h);
    case H_TRAJ: return bsvi_trajectory_last_error((const bsvi_trajectory *)h);
    case H_EST: return bsvi_estimator_last_error((const bsvi_estimator *)h);
    case H_EV: return bsvi_evaluator_last_error((const bsvi_evaluator *)h);
    case H_W: return bsvi_buffer_weights_last_error((const bsvi_buffer_weights *)h);
    case H_NONE: break;
    }
    return NULL;
}

/* Leave an unrelated error message on the handle (variant 0 or 1: two different texts). */
static void prime(enum hk kind, const void *h, int variant)
{
    double tmp[4];
    switch (kind) {
    case H_MODEL:
        (void)(variant ? bsvi_model_set_prior((bsvi_model *)h, NULL, NULL)
                       : bsvi_model_set_likelihood((bsvi_model *)h, NULL, NULL));
        break;
    case H_PROP:
        (void)(variant ? bsvi_proposal_entropy((const bsvi_proposal *)h, NULL)
                       : bsvi_proposal_kl_standard_normal((const bsvi_proposal *)h, NULL));
        break;
    case H_SVI:
        (void)(variant ? bsvi_svi_set_clip_norm((bsvi_svi *)h, -5.0)
                       : bsvi_svi_set_double_sampling((bsvi_svi *)h, 7));
        break;
    case H_TRAJ:
        (void)(variant ? bsvi_trajectory_health((const bsvi_trajectory *)h, NULL, NULL)
                       : bsvi_trajectory_get_steps_taken((const bsvi_trajectory *)h, NULL));
        break;
    case H_EST:
        (void)(variant ? bsvi_estimator_get_bounds((const bsvi_estimator *)h, NULL, 0)
                       : bsvi_estimator_get_targets((const bsvi_estimator *)h, 12345, NULL, NULL,
                                                    NULL, NULL));
        break;
    case H_EV:
        (void)(variant ? bsvi_evaluator_set_chunk_rows((bsvi_evaluator *)h, BSVI_MAX_BATCH + 7)
                       : bsvi_evaluator_iwae((bsvi_evaluator *)h, NULL, NULL, 1, tmp));
        break;
    case H_W:
        (void)(variant ? bsvi_buffer_weights_get_probs((const bsvi_buffer_weights *)h, NULL, 0)
                       : bsvi_buffer_weights_mean_position((const bsvi_buffer_weights *)h, NULL));
        break;
    case H_NONE: break;
    }
}

static void reset_buffers(cfx *f)
{
    tu_fill(f->out, NOUT, TU_SENTINEL);
    tu_fill(f->out2, NOUT, TU_SENTINEL);
    tu_fill(f->out3, NOUT, TU_SENTINEL);
    for (size_t i = 0; i < NOUT; ++i) {
        f->sz[i] = (size_t)0xA5A5A5A5u;
    }
    f->model_out = (bsvi_model *)(void *)&f->dummy;
    f->prop_out = (bsvi_proposal *)(void *)&f->dummy;
    f->svi_out = (bsvi_svi *)(void *)&f->dummy;
    f->traj_out = (bsvi_trajectory *)(void *)&f->dummy;
    f->est_out = (bsvi_estimator *)(void *)&f->dummy;
    f->ev_out = (bsvi_evaluator *)(void *)&f->dummy;
    f->w_out = (bsvi_buffer_weights *)(void *)&f->dummy;
    /* scalar outputs: a recognisable pattern that must survive a failed call */
    memset(&f->bound_out, 0xA5, sizeof f->bound_out);
    memset(&f->rule_out, 0xA5, sizeof f->rule_out);
    memset(&f->form_out, 0xA5, sizeof f->form_out);
    memset(&f->pol_out, 0xA5, sizeof f->pol_out);
    memset(&f->stats_out, 0xA5, sizeof f->stats_out);
    memset(&f->u64_out, 0xA5, sizeof f->u64_out);
}

/* 1 when every scalar output still holds reset_buffers' pattern. */
static int scalars_untouched(const cfx *f)
{
    const unsigned char *ps[6] = {(const unsigned char *)&f->bound_out,
                                  (const unsigned char *)&f->rule_out,
                                  (const unsigned char *)&f->form_out,
                                  (const unsigned char *)&f->pol_out,
                                  (const unsigned char *)&f->stats_out,
                                  (const unsigned char *)&f->u64_out};
    const size_t ns[6] = {sizeof f->bound_out, sizeof f->rule_out, sizeof f->form_out,
                          sizeof f->pol_out,   sizeof f->stats_out, sizeof f->u64_out};
    for (size_t i = 0; i < 6; ++i) {
        for (size_t j = 0; j < ns[i]; ++j) {
            if (ps[i][j] != 0xA5) {
                return 0;
            }
        }
    }
    return 1;
}

static int create_case(const char *name) { return strstr(name, "_create_") != NULL; }

static void test_contract_table(void **state)
{
    (void)state;
    cfx *f = &F;
    fx_setup(f);
    blob before = {0}, after = {0};
    char msg0[512], msg1[512];
    size_t per_status[16] = {0};
    for (size_t c = 0; c < NCASES; ++c) {
        const ccase *cs = &cases[c];
        const void *h = cs->handle(f);
        snapshot(f, &before);
        for (int variant = 0; variant < 2; ++variant) {
            if (cs->kind != H_NONE) {
                prime(cs->kind, h, variant);
            }
            reset_buffers(f);
            const bsvi_status st = cs->call(f);
            if (st != cs->expected) {
                fail_msg("case %s: returned %d (%s), expected %d (%s); message: %s", cs->name,
                         (int)st, bsvi_status_string(st), (int)cs->expected,
                         bsvi_status_string(cs->expected),
                         cs->kind != H_NONE ? message_of(cs->kind, h) : "-");
            }
            if (cs->kind != H_NONE) {
                const char *m = message_of(cs->kind, h);
                if (m == NULL || m[0] == '\0') {
                    fail_msg("case %s: empty message", cs->name);
                }
                snprintf(variant ? msg1 : msg0, sizeof msg0, "%s", m);
                if (!tu_mentions(m, cs->words)) {
                    fail_msg("case %s: message \"%s\" does not mention \"%s\"", cs->name, m,
                             cs->words);
                }
            }
            if (tu_first_not_sentinel(f->out, NOUT) != (size_t)-1 ||
                tu_first_not_sentinel(f->out2, NOUT) != (size_t)-1 ||
                tu_first_not_sentinel(f->out3, NOUT) != (size_t)-1) {
                fail_msg("case %s: a caller buffer was written", cs->name);
            }
            for (size_t i = 0; i < NOUT; ++i) {
                if (f->sz[i] != (size_t)0xA5A5A5A5u) {
                    fail_msg("case %s: a size_t caller buffer was written", cs->name);
                }
            }
            if (!scalars_untouched(f)) {
                fail_msg("case %s: a scalar output was written", cs->name);
            }
            if (create_case(cs->name) && cs->expected != BSVI_ERR_NULL_ARGUMENT) {
                if (f->model_out != NULL && f->prop_out != NULL && f->svi_out != NULL &&
                    f->est_out != NULL && f->ev_out != NULL && f->w_out != NULL) {
                    fail_msg("case %s: the out-pointer was not set to NULL", cs->name);
                }
            }
        }
        if (cs->kind != H_NONE && strcmp(msg0, msg1) != 0) {
            fail_msg("case %s: the message was not written by the call (\"%s\" vs \"%s\")",
                     cs->name, msg0, msg1);
        }
        snapshot(f, &after);
        if (before.n != after.n || memcmp(before.p, after.p, before.n) != 0) {
            fail_msg("case %s: handle state changed", cs->name);
        }
        /* Issue 12, item 7: the status is one the function's header lists. */
        char fn[64];
        sd_call_name(cs->text, fn, sizeof fn);
        if (sd_documented(fn, cs->expected) != 1) {
            fail_msg("case %s: %s returns %s, which its header does not list (%s)", cs->name,
                     fn, sd_status_name(cs->expected),
                     sd_documented(fn, cs->expected) < 0 ? "no such declaration" : "missing");
        }
        per_status[(size_t)(-(int)cs->expected)]++;
    }
    print_message("contract: %zu cases; by status:", NCASES);
    for (int s = 1; s <= 12; ++s) {
        if (per_status[s]) {
            print_message(" %s=%zu", bsvi_status_string((bsvi_status)-s), per_status[s]);
        }
    }
    print_message("\n");

    /* Nothing hidden changed either: each handle behaves exactly like a fresh one set up the
     * same way (configuration and generator counters included). */
    bsvi_svi *svi = NULL;
    bsvi_trajectory *t1 = NULL, *t2 = NULL;
    TU_OK(bsvi_svi_create(ND, &svi));
    TU_OK(bsvi_svi_set_steps(svi, NK));
    TU_OK(bsvi_trajectory_create(&t1));
    TU_OK(bsvi_trajectory_create(&t2));
    TU_OK(bsvi_svi_run(svi, f->model, f->q, t1)); /* counter 0, as the fixture's first run */
    TU_OK(bsvi_svi_run(svi, f->model, f->q, t1)); /* counter 1 */
    TU_OK(bsvi_svi_run(f->svi, f->model, f->q, t2));
    tu_traj a, b;
    tu_traj_read(t1, &a);
    tu_traj_read(t2, &b);
    tu_traj_assert_equal(&a, &b);
    tu_traj_free(&a);
    tu_traj_free(&b);
    bsvi_evaluator *ev = NULL;
    TU_OK(bsvi_evaluator_create(ND, &ev));
    double o1[NB], o2[NB];
    TU_OK(bsvi_evaluator_bsvi(ev, f->model, f->q, 3, o1, NULL)); /* as the fixture's */
    TU_OK(bsvi_evaluator_iwae(ev, f->model, f->q, 8, o1));
    TU_OK(bsvi_evaluator_iwae(f->ev, f->model, f->q, 8, o2));
    TU_BITWISE(o1, o2, NB);
    TU_OK(bsvi_evaluator_bsvi(ev, f->model, f->q, 3, o1, NULL));
    TU_OK(bsvi_evaluator_bsvi(f->ev, f->model, f->q, 3, o2, NULL));
    TU_BITWISE(o1, o2, NB);
    /* the evaluator's options and policy too: a zero-density point is still reported */
    {
        bsvi_svi_options o;
        TU_OK(bsvi_evaluator_get_svi_options(f->ev, &o));
        const bsvi_svi_options d = bsvi_svi_options_default();
        assert_true(o.steps == d.steps && o.step_size == d.step_size &&
                    o.samples_per_step == d.samples_per_step && o.rule == d.rule &&
                    o.grad_form == d.grad_form && o.double_sampling == d.double_sampling &&
                    o.divergence == d.divergence && o.momentum == d.momentum);
    }
    bsvi_estimator *iw = NULL;
    TU_OK(bsvi_estimator_create(ND, &iw));
    TU_OK(bsvi_estimator_iwae(iw, f->model, f->q, 4, BSVI_GRAD_PATHWISE));
    TU_OK(bsvi_estimator_iwae(iw, f->model, f->q, 4, BSVI_GRAD_PATHWISE));
    TU_OK(bsvi_estimator_iwae(f->iwae, f->model, f->q, 4, BSVI_GRAD_PATHWISE));
    TU_OK(bsvi_estimator_get_bounds(iw, o1, NB));
    TU_OK(bsvi_estimator_get_bounds(f->iwae, o2, NB));
    TU_BITWISE(o1, o2, NB);
    /* the point policy is still REPORT */
    {
        bsvi_estimator *g = NULL;
        TU_OK(bsvi_estimator_create(ND, &g));
        const double lj[2] = {-INFINITY, -INFINITY}, lq[2] = {0.0, 0.0};
        TU_OK(bsvi_estimator_giwae(f->iwae, 1, 2, lj, lq, NULL));
        TU_OK(bsvi_estimator_giwae(g, 1, 2, lj, lq, NULL));
        bsvi_estimator_destroy(g);
    }
    /* pi optimisation state intact: a weights handle set up the same way steps the same */
    {
        bsvi_buffer_weights *w = NULL;
        TU_OK(bsvi_buffer_weights_create(NK + 1, &w));
        TU_OK(bsvi_buffer_weights_accumulate(w, f->traj));
        TU_OK(bsvi_buffer_weights_step(w));
        TU_OK(bsvi_buffer_weights_accumulate(w, f->traj));
        TU_OK(bsvi_buffer_weights_step(w));
        TU_OK(bsvi_buffer_weights_step(f->wopt));
        double a1[3], a2[3], p[3];
        TU_OK(bsvi_buffer_weights_get_logits(w, a1, 3));
        TU_OK(bsvi_buffer_weights_get_logits(f->wopt, a2, 3));
        TU_BITWISE(a1, a2, 3);
        TU_OK(bsvi_buffer_weights_get_probs(f->wopt, p, 3));
        assert_true(p[0] > 0.0 && p[1] > 0.0 && p[2] > 0.0);
        bsvi_buffer_weights_destroy(w);
    }
    bsvi_estimator_destroy(iw);
    bsvi_evaluator_destroy(ev);
    bsvi_trajectory_destroy(t1);
    bsvi_trajectory_destroy(t2);
    bsvi_svi_destroy(svi);
    free(before.p);
    free(after.p);
    fx_teardown(f);
}

/* Infallible functions accept NULL and return their documented neutral values. */
static void test_infallible_null(void **state)
{
    (void)state;
    bsvi_model_destroy(NULL);
    bsvi_proposal_destroy(NULL);
    bsvi_svi_destroy(NULL);
    bsvi_trajectory_destroy(NULL);
    bsvi_estimator_destroy(NULL);
    bsvi_evaluator_destroy(NULL);
    assert_int_equal(bsvi_model_dim(NULL), 0);
    assert_int_equal(bsvi_model_has_standard_normal_prior(NULL), 0);
    assert_int_equal(bsvi_proposal_batch(NULL), 0);
    assert_int_equal(bsvi_proposal_dim(NULL), 0);
    assert_int_equal(bsvi_svi_steps(NULL), 0);
    assert_true(isnan(bsvi_svi_step_size(NULL)));
    assert_int_equal(bsvi_trajectory_batch(NULL), 0);
    assert_int_equal(bsvi_trajectory_steps(NULL), 0);
    assert_int_equal(bsvi_trajectory_dim(NULL), 0);
    assert_int_equal(bsvi_trajectory_is_double_sampled(NULL), 0);
    assert_int_equal(bsvi_trajectory_num_diverged(NULL), 0);
    bsvi_buffer_weights_destroy(NULL);
    assert_int_equal(bsvi_buffer_weights_size(NULL), 0);
    assert_int_equal(bsvi_estimator_dim(NULL), 0);
    assert_int_equal(bsvi_estimator_batch(NULL), 0);
    assert_int_equal(bsvi_estimator_num_targets(NULL), 0);
    assert_int_equal(bsvi_estimator_num_zero_points(NULL), 0);
    assert_int_equal(bsvi_evaluator_num_frozen(NULL), 0);
    assert_int_equal(bsvi_evaluator_num_zero_points(NULL), 0);
    assert_null(bsvi_bound_name((bsvi_bound)7));
    assert_null(bsvi_step_rule_name((bsvi_step_rule)3));
    assert_null(bsvi_grad_form_name((bsvi_grad_form)4));
    assert_null(bsvi_divergence_policy_name((bsvi_divergence_policy)2));
    TU_MESSAGE(bsvi_model_last_error(NULL));
    TU_MESSAGE(bsvi_proposal_last_error(NULL));
    TU_MESSAGE(bsvi_svi_last_error(NULL));
    TU_MESSAGE(bsvi_trajectory_last_error(NULL));
    TU_MESSAGE(bsvi_estimator_last_error(NULL));
    TU_MESSAGE(bsvi_evaluator_last_error(NULL));
    TU_MESSAGE(bsvi_buffer_weights_last_error(NULL));
    assert_true(bsvi_logsumexp(NULL, 0) == -INFINITY);
    uint32_t ctr[4] = {1, 2, 3, 4}, key[2] = {5, 6}, out[4] = {7, 7, 7, 7};
    bsvi_philox4x32_10(NULL, key, out);
    bsvi_philox4x32_10(ctr, NULL, out);
    bsvi_philox4x32_10(ctr, key, NULL);
    assert_true(out[0] == 7 && out[1] == 7 && out[2] == 7 && out[3] == 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_contract_table),
        cmocka_unit_test(test_infallible_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
