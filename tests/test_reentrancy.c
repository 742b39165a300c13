/* test_reentrancy.c: host callbacks that call back into the library (issue 12, item 1).
 * Before the fix, a likelihood callback running bsvi_svi_run, an estimator compute
 * (bsvi_estimator_compute in 0.1; bsvi_estimator_elbo/iwae since 0.2) or a
 * bsvi_evaluator_* estimate on the handle that called it, or destroying the output
 * trajectory, was a heap-use-after-free under ASan (the workspace was regrown and freed
 * while the outer call read it), and a nested same-shape bsvi_svi_run segfaulted in a
 * Release build. Now:
 * - a call that would change a handle held by the running call returns BSVI_ERR_REENTRANT
 *   with a message, and the outer call's results are bitwise those of a run whose callback
 *   does nothing of the kind;
 * - reads of held handles and nested calls on other handles (same model and proposal) work;
 * - destroying a held handle from the callback is deferred to the end of the call (the
 *   outer results stay intact; ASan and LeakSanitizer check the memory). */
#include "testutil.h"
#include "statusdoc.h"

#include <stdio.h>
#include <stdlib.h>

#define B 2
#define D 2
#define K 3

typedef enum action {
    A_NONE,
    /* on the SVI handle / trajectory / proposal / model of a running bsvi_svi_run */
    A_SVI_RUN_SAME,
    A_SVI_RUN_OTHER,
    A_SVI_SET,
    A_SVI_RUN_INTO_OUT,
    A_SVI_READ,
    A_Q_SET,
    A_Q_SAMPLE,
    A_Q_READ,
    A_MODEL_SET,
    A_MODEL_READ,
    A_EST_ON_OUT,
    A_EV_FINAL_Q_HELD,
    A_DESTROY_OUT,
    A_DESTROY_SVI,
    A_DESTROY_MODEL,
    A_DESTROY_Q,
    /* on the estimator of a running bsvi_estimator_iwae */
    A_EST_COMPUTE_SAME,
    A_EST_SET,
    A_EST_READ,
    A_EST_COMPUTE_OTHER,
    A_DESTROY_EST,
    /* on the evaluator of a running evaluation */
    A_EV_IWAE_SAME,
    A_EV_BSVI_SAME,
    A_EV_ELBO_SAME,
    A_EV_SET,
    A_EV_OTHER,
    A_EV_SVI_SET,
    A_EV_SVI_OPTIONS_SET,
    A_EV_FINAL_Q_SET,
    A_DESTROY_EV
} action;

typedef struct ctx {
    action act;
    int fired;
    bsvi_status got;
    char msg[512];
    char fn[64];
    bsvi_model *model;
    bsvi_proposal *q, *q2;
    bsvi_svi *svi, *svi2;
    bsvi_trajectory *t, *t2;
    bsvi_estimator *est, *est2;
    bsvi_evaluator *ev, *ev2;
} ctx;

static void keep(ctx *c, bsvi_status st, const char *msg, const char *call)
{
    c->got = st;
    snprintf(c->msg, sizeof c->msg, "%s", msg ? msg : "");
    sd_call_name(call, c->fn, sizeof c->fn);
}
#define KEEP(c, call, msg) keep((c), (call), (msg), #call)

static int other_prior(size_t n, size_t dim, const double *z, const size_t *data_index,
                       double *log_density, double *grad, void *user_data)
{
    (void)z, (void)data_index, (void)user_data;
    for (size_t r = 0; r < n; ++r) {
        log_density[r] = 0.0;
        if (grad != NULL) {
            memset(grad + r * dim, 0, dim * sizeof *grad);
        }
    }
    return 0;
}

/* Runs the scenario's action once (the first time any callback fires). */
static void act(ctx *c)
{
    if (c->fired || c->act == A_NONE) {
        return;
    }
    c->fired = 1;
    double buf[64], z[B * D] = {0.1, 0.2, 0.3, 0.4};
    const size_t idx[B] = {0, 1};
    const double mean[B * D] = {0.5, 0.5, 0.5, 0.5}, ls[B * D] = {0.0, 0.0, 0.0, 0.0};
    switch (c->act) {
    case A_NONE: break;
    case A_SVI_RUN_SAME:
        KEEP(c, bsvi_svi_run(c->svi, c->model, c->q, c->t2), bsvi_svi_last_error(c->svi));
        break;
    case A_SVI_RUN_OTHER:
        KEEP(c, bsvi_svi_run(c->svi2, c->model, c->q, c->t2), bsvi_svi_last_error(c->svi2));
        break;
    case A_SVI_SET:
        KEEP(c, bsvi_svi_set_step_size(c->svi, 0.5), bsvi_svi_last_error(c->svi));
        break;
    case A_SVI_RUN_INTO_OUT:
        KEEP(c, bsvi_svi_run(c->svi2, c->model, c->q, c->t), bsvi_svi_last_error(c->svi2));
        break;
    case A_SVI_READ:
        KEEP(c, bsvi_svi_steps(c->svi) == K ? BSVI_OK : BSVI_ERR_BAD_STATE, "");
        break;
    case A_Q_SET:
        KEEP(c, bsvi_proposal_set_params(c->q, mean, ls), bsvi_proposal_last_error(c->q));
        break;
    case A_Q_SAMPLE:
        KEEP(c, bsvi_proposal_sample(c->q, 1, buf, NULL), bsvi_proposal_last_error(c->q));
        break;
    case A_Q_READ:
        KEEP(c, bsvi_proposal_log_density(c->q, 1, z, buf), bsvi_proposal_last_error(c->q));
        break;
    case A_MODEL_SET: /* a host prior mid-run would also need a scratch the run lacks */
        KEEP(c, bsvi_model_set_prior(c->model, other_prior, NULL), bsvi_model_last_error(c->model));
        break;
    case A_MODEL_READ:
        KEEP(c, bsvi_model_log_joint(c->model, B, z, idx, buf, buf + B),
             bsvi_model_last_error(c->model));
        break;
    case A_EST_ON_OUT: { /* the trajectory being filled holds the previous run: readable */
        bsvi_estimator *e = NULL;
        TU_OK(bsvi_estimator_create(D, &e));
        KEEP(c, bsvi_estimator_bsvi(e, c->t, NULL), bsvi_estimator_last_error(e));
        bsvi_estimator_destroy(e);
        break;
    }
    case A_EV_FINAL_Q_HELD:
        KEEP(c, bsvi_evaluator_bsvi(c->ev, c->model, c->q2, 3, buf, c->q),
             bsvi_evaluator_last_error(c->ev));
        break;
    case A_DESTROY_OUT:
        bsvi_trajectory_destroy(c->t);
        c->t = NULL;
        KEEP(c, BSVI_OK, "");
        break;
    case A_DESTROY_SVI:
        bsvi_svi_destroy(c->svi);
        c->svi = NULL;
        KEEP(c, BSVI_OK, "");
        break;
    case A_DESTROY_MODEL:
        bsvi_model_destroy(c->model);
        c->model = NULL;
        KEEP(c, BSVI_OK, "");
        break;
    case A_DESTROY_Q:
        bsvi_proposal_destroy(c->q);
        c->q = NULL;
        KEEP(c, BSVI_OK, "");
        break;
    case A_EST_COMPUTE_SAME:
        KEEP(c, bsvi_estimator_iwae(c->est, c->model, c->q, 4, BSVI_GRAD_PATHWISE),
             bsvi_estimator_last_error(c->est));
        break;
    case A_EST_SET:
        KEEP(c, bsvi_estimator_set_point_policy(c->est, BSVI_POINTS_FAIL),
             bsvi_estimator_last_error(c->est));
        break;
    case A_EST_READ:
        KEEP(c, bsvi_estimator_get_bounds(c->est, buf, B), bsvi_estimator_last_error(c->est));
        break;
    case A_EST_COMPUTE_OTHER:
        KEEP(c, bsvi_estimator_iwae(c->est2, c->model, c->q, 10, BSVI_GRAD_PATHWISE),
             bsvi_estimator_last_error(c->est2));
        break;
    case A_DESTROY_EST:
        bsvi_estimator_destroy(c->est);
        c->est = NULL;
        KEEP(c, BSVI_OK, "");
        break;
    case A_EV_IWAE_SAME:
        KEEP(c, bsvi_evaluator_iwae(c->ev, c->model, c->q, 5, buf),
             bsvi_evaluator_last_error(c->ev));
        break;
    case A_EV_BSVI_SAME:
        KEEP(c, bsvi_evaluator_bsvi(c->ev, c->model, c->q, 3, buf, NULL),
             bsvi_evaluator_last_error(c->ev));
        break;
    case A_EV_ELBO_SAME:
        KEEP(c, bsvi_evaluator_elbo_star(c->ev, c->model, c->q, 5, buf, NULL, NULL),
             bsvi_evaluator_last_error(c->ev));
        break;
    case A_EV_SET:
        KEEP(c, bsvi_evaluator_set_chunk_rows(c->ev, 3), bsvi_evaluator_last_error(c->ev));
        break;
    case A_EV_OTHER:
        KEEP(c, bsvi_evaluator_iwae(c->ev2, c->model, c->q, 5, buf),
             bsvi_evaluator_last_error(c->ev2));
        break;
    case A_EV_SVI_SET: /* the evaluator copied its options: the SVI handle is not held */
        KEEP(c, bsvi_svi_set_steps(c->svi, 1), bsvi_svi_last_error(c->svi));
        break;
    case A_EV_SVI_OPTIONS_SET: {
        const bsvi_svi_options o = bsvi_svi_options_default();
        KEEP(c, bsvi_evaluator_set_svi_options(c->ev, &o), bsvi_evaluator_last_error(c->ev));
        break;
    }
    case A_EV_FINAL_Q_SET:
        KEEP(c, bsvi_proposal_set_params(c->q2, mean, ls), bsvi_proposal_last_error(c->q2));
        break;
    case A_DESTROY_EV:
        bsvi_evaluator_destroy(c->ev);
        c->ev = NULL;
        KEEP(c, BSVI_OK, "");
        break;
    }
}

/* log N(0.5 | z, I) and its gradient; the scenario's action on the first call. */
static int lik(size_t n, size_t dim, const double *z, const size_t *data_index,
               double *log_density, double *grad, void *user_data)
{
    (void)data_index;
    act((ctx *)user_data);
    tu_half_gauss(n, dim, z, log_density, grad, 1.0);
    return 0;
}

static int progress(size_t done, size_t total, void *user_data)
{
    (void)done, (void)total;
    act((ctx *)user_data);
    return 0;
}

static void ctx_init(ctx *c, action a)
{
    memset(c, 0, sizeof *c);
    c->act = a;
    c->got = (bsvi_status)1; /* not a status: "the action never ran" */
    TU_OK(bsvi_model_create(D, &c->model));
    TU_OK(bsvi_model_set_likelihood(c->model, lik, c));
    const double mean[B * D] = {0.1, -0.2, 0.3, 0.05}, ls[B * D] = {-0.3, 0.1, -0.5, 0.0};
    TU_OK(bsvi_proposal_create(B, D, &c->q));
    TU_OK(bsvi_proposal_set_params(c->q, mean, ls));
    TU_OK(bsvi_proposal_create(B, D, &c->q2));
    TU_OK(bsvi_proposal_set_params(c->q2, mean, ls));
    TU_OK(bsvi_svi_create(D, &c->svi));
    TU_OK(bsvi_svi_set_steps(c->svi, K));
    TU_OK(bsvi_svi_set_step_size(c->svi, 0.05));
    TU_OK(bsvi_svi_set_step_rule(c->svi, BSVI_STEP_ADAM));
    TU_OK(bsvi_svi_create(D, &c->svi2));
    TU_OK(bsvi_svi_set_steps(c->svi2, K));
    TU_OK(bsvi_trajectory_create(&c->t));
    TU_OK(bsvi_trajectory_create(&c->t2));
    TU_OK(bsvi_estimator_create(D, &c->est));
    TU_OK(bsvi_estimator_create(D, &c->est2));
    TU_OK(bsvi_evaluator_create(D, &c->ev));
    TU_OK(bsvi_evaluator_set_chunk_rows(c->ev, 4));
    bsvi_svi_options o; /* BSVI-K refines as c->svi does (Adam, eta 0.05) */
    TU_OK(bsvi_svi_get_options(c->svi, &o));
    TU_OK(bsvi_evaluator_set_svi_options(c->ev, &o));
    TU_OK(bsvi_evaluator_create(D, &c->ev2));
}

static void ctx_free(ctx *c)
{
    bsvi_model_destroy(c->model);
    bsvi_proposal_destroy(c->q);
    bsvi_proposal_destroy(c->q2);
    bsvi_svi_destroy(c->svi);
    bsvi_svi_destroy(c->svi2);
    bsvi_trajectory_destroy(c->t);
    bsvi_trajectory_destroy(c->t2);
    bsvi_estimator_destroy(c->est);
    bsvi_estimator_destroy(c->est2);
    bsvi_evaluator_destroy(c->ev);
    bsvi_evaluator_destroy(c->ev2);
}

static void expect(const ctx *c, bsvi_status want, const char *scenario)
{
    if (c->got != want) {
        fail_msg("%s: the callback's call returned %d (%s), expected %d (%s); message: %s",
                 scenario, (int)c->got, bsvi_status_string(c->got), (int)want,
                 bsvi_status_string(want), c->msg);
    }
    if (want == BSVI_ERR_REENTRANT && !tu_mentions(c->msg, "in use")) {
        fail_msg("%s: message \"%s\" does not say the handle is in use", scenario, c->msg);
    }
    if (sd_documented(c->fn, c->got) == 0) { /* item 7: the header lists what was returned */
        fail_msg("%s: %s returned %s, which its header does not list", scenario, c->fn,
                 sd_status_name(c->got));
    }
}

/* ---- bsvi_svi_run ---------------------------------------------------------------- */

static void svi_scenario(action a, bsvi_status want, int from_progress)
{
    ctx ref, c;
    ctx_init(&ref, A_NONE);
    TU_OK(bsvi_svi_run(ref.svi, ref.model, ref.q, ref.t));
    TU_OK(bsvi_svi_run(ref.svi, ref.model, ref.q, ref.t)); /* counter 1 */
    tu_traj want_t;
    tu_traj_read(ref.t, &want_t);

    ctx_init(&c, A_NONE);
    TU_OK(bsvi_svi_run(c.svi, c.model, c.q, c.t)); /* a previous result in t (counter 0) */
    tu_traj before;
    tu_traj_read(c.t, &before);
    if (a == A_EV_FINAL_Q_HELD || a == A_EST_ON_OUT) {
        TU_OK(bsvi_svi_run(c.svi2, c.model, c.q2, c.t2));
    }
    c.act = a;
    if (from_progress) {
        TU_OK(bsvi_model_set_likelihood(c.model, lik, &ref)); /* a callback without actions */
        TU_OK(bsvi_svi_set_progress(c.svi, progress, &c));
    }
    TU_OK(bsvi_svi_run(c.svi, c.model, c.q, c.t));
    expect(&c, want, "bsvi_svi_run");
    if (a != A_DESTROY_OUT) {
        tu_traj got;
        tu_traj_read(c.t, &got);
        tu_traj_assert_equal(&want_t, &got); /* bitwise the undisturbed run */
        tu_traj_free(&got);
    }
    if (c.svi != NULL) {
        assert_true(bsvi_svi_step_size(c.svi) == 0.05);
    }
    if (c.q != NULL) {
        double m[B * D];
        TU_OK(bsvi_proposal_get_params(c.q, m, NULL));
        assert_true(m[0] == 0.1);
    }
    if (c.model != NULL) {
        assert_int_equal(bsvi_model_has_standard_normal_prior(c.model), 1);
    }
    if (a == A_SVI_RUN_OTHER) { /* the nested run on other handles equals a plain one */
        ctx r2;
        ctx_init(&r2, A_NONE);
        TU_OK(bsvi_svi_run(r2.svi2, r2.model, r2.q, r2.t2));
        tu_traj x, y;
        tu_traj_read(r2.t2, &x);
        tu_traj_read(c.t2, &y);
        tu_traj_assert_equal(&x, &y);
        tu_traj_free(&x);
        tu_traj_free(&y);
        ctx_free(&r2);
    }
    if (a == A_SVI_RUN_SAME) {
        assert_int_equal(bsvi_trajectory_batch(c.t2), 0); /* nothing written */
    }
    tu_traj_free(&before);
    tu_traj_free(&want_t);
    ctx_free(&c);
    ctx_free(&ref);
}

static void test_svi_run_reentry(void **state)
{
    (void)state;
    svi_scenario(A_SVI_RUN_SAME, BSVI_ERR_REENTRANT, 0);
    svi_scenario(A_SVI_RUN_SAME, BSVI_ERR_REENTRANT, 1); /* from the progress callback */
    svi_scenario(A_SVI_SET, BSVI_ERR_REENTRANT, 0);
    svi_scenario(A_SVI_RUN_INTO_OUT, BSVI_ERR_REENTRANT, 0);
    svi_scenario(A_Q_SET, BSVI_ERR_REENTRANT, 0);
    svi_scenario(A_Q_SAMPLE, BSVI_ERR_REENTRANT, 0);
    svi_scenario(A_MODEL_SET, BSVI_ERR_REENTRANT, 0);
    svi_scenario(A_EV_FINAL_Q_HELD, BSVI_ERR_REENTRANT, 0);
}

static void test_svi_run_nesting_and_reads(void **state)
{
    (void)state;
    svi_scenario(A_SVI_RUN_OTHER, BSVI_OK, 0);
    svi_scenario(A_SVI_RUN_OTHER, BSVI_OK, 1);
    svi_scenario(A_SVI_READ, BSVI_OK, 0);
    svi_scenario(A_Q_READ, BSVI_OK, 0);
    svi_scenario(A_MODEL_READ, BSVI_OK, 0);
    svi_scenario(A_EST_ON_OUT, BSVI_OK, 0);
}

static void test_svi_run_destroy_deferred(void **state)
{
    (void)state;
    svi_scenario(A_DESTROY_OUT, BSVI_OK, 0);
    svi_scenario(A_DESTROY_SVI, BSVI_OK, 0);
    svi_scenario(A_DESTROY_MODEL, BSVI_OK, 0);
    svi_scenario(A_DESTROY_Q, BSVI_OK, 0);
    svi_scenario(A_DESTROY_OUT, BSVI_OK, 1);
}

/* ---- bsvi_estimator_iwae (K = 4) ------------------------------------------------------ */

static void est_scenario(action a, bsvi_status want)
{
    ctx ref, c;
    ctx_init(&ref, A_NONE);
    TU_OK(bsvi_estimator_iwae(ref.est, ref.model, ref.q, 4, BSVI_GRAD_PATHWISE));
    TU_OK(bsvi_estimator_iwae(ref.est, ref.model, ref.q, 4, BSVI_GRAD_PATHWISE));
    double wb[B], gb[B];
    TU_OK(bsvi_estimator_get_bounds(ref.est, wb, B));
    ctx_init(&c, A_NONE);
    TU_OK(bsvi_estimator_iwae(c.est, c.model, c.q, 4, BSVI_GRAD_PATHWISE));
    c.act = a;
    TU_OK(bsvi_estimator_iwae(c.est, c.model, c.q, 4, BSVI_GRAD_PATHWISE));
    expect(&c, want, "bsvi_estimator_iwae");
    if (c.est != NULL) {
        TU_OK(bsvi_estimator_get_bounds(c.est, gb, B));
        TU_BITWISE(wb, gb, B);
        assert_int_equal(bsvi_estimator_num_targets(c.est), B * 4);
    }
    ctx_free(&c);
    ctx_free(&ref);
}

static void test_estimator_reentry(void **state)
{
    (void)state;
    est_scenario(A_EST_COMPUTE_SAME, BSVI_ERR_REENTRANT);
    est_scenario(A_EST_SET, BSVI_ERR_REENTRANT);
    est_scenario(A_EST_READ, BSVI_OK);
    est_scenario(A_EST_COMPUTE_OTHER, BSVI_OK);
    est_scenario(A_MODEL_SET, BSVI_ERR_REENTRANT);
    est_scenario(A_Q_SET, BSVI_ERR_REENTRANT);
    est_scenario(A_DESTROY_EST, BSVI_OK);
    est_scenario(A_DESTROY_Q, BSVI_OK);
}

/* ---- evaluator ----------------------------------------------------------------------- */

static void ev_scenario(action a, bsvi_status want, int kind)
{
    ctx ref, c;
    ctx_init(&ref, A_NONE);
    ctx_init(&c, A_NONE);
    double w[2 * B * D + B], g[2 * B * D + B];
    tu_fill(w, 2 * B * D + B, 0.0);
    tu_fill(g, 2 * B * D + B, 0.0);
    c.act = a;
    if (kind == 0) {
        TU_OK(bsvi_evaluator_iwae(ref.ev, ref.model, ref.q, 6, w));
        TU_OK(bsvi_evaluator_iwae(c.ev, c.model, c.q, 6, g));
    } else if (kind == 1) {
        TU_OK(bsvi_evaluator_bsvi(ref.ev, ref.model, ref.q, 4, w, ref.q2));
        TU_OK(bsvi_evaluator_bsvi(c.ev, c.model, c.q, 4, g, c.q2));
        if (a != A_DESTROY_Q) {
            TU_OK(bsvi_proposal_get_params(ref.q2, w + B, w + B + B * D));
            TU_OK(bsvi_proposal_get_params(c.q2, g + B, g + B + B * D));
        }
    } else {
        TU_OK(bsvi_evaluator_elbo_star(ref.ev, ref.model, ref.q, 6, w, w + B, NULL));
        TU_OK(bsvi_evaluator_elbo_star(c.ev, c.model, c.q, 6, g, g + B, NULL));
    }
    expect(&c, want, kind == 0 ? "bsvi_evaluator_iwae"
                     : kind == 1 ? "bsvi_evaluator_bsvi" : "bsvi_evaluator_elbo_star");
    TU_BITWISE(w, g, 2 * B * D + B);
    ctx_free(&c);
    ctx_free(&ref);
}

static void test_evaluator_reentry(void **state)
{
    (void)state;
    for (int kind = 0; kind < 3; ++kind) {
        ev_scenario(A_EV_IWAE_SAME, BSVI_ERR_REENTRANT, kind);
        ev_scenario(A_EV_BSVI_SAME, BSVI_ERR_REENTRANT, kind);
        ev_scenario(A_EV_ELBO_SAME, BSVI_ERR_REENTRANT, kind);
        ev_scenario(A_EV_SET, BSVI_ERR_REENTRANT, kind);
        ev_scenario(A_EV_SVI_OPTIONS_SET, BSVI_ERR_REENTRANT, kind);
        ev_scenario(A_Q_SET, BSVI_ERR_REENTRANT, kind);
        ev_scenario(A_MODEL_SET, BSVI_ERR_REENTRANT, kind);
        ev_scenario(A_EV_OTHER, BSVI_OK, kind);
        ev_scenario(A_Q_READ, BSVI_OK, kind);
        ev_scenario(A_DESTROY_EV, BSVI_OK, kind);
        ev_scenario(A_DESTROY_MODEL, BSVI_OK, kind);
    }
    /* Since 0.2 the evaluator holds no SVI handle (it copied the options): changing or
     * running one from BSVI-K's callback works and does not disturb the estimate; changing
     * the evaluator's own options is refused (above). */
    ev_scenario(A_EV_SVI_SET, BSVI_OK, 1);
    ev_scenario(A_SVI_RUN_SAME, BSVI_OK, 1);
    ev_scenario(A_EV_FINAL_Q_SET, BSVI_ERR_REENTRANT, 1);
    ev_scenario(A_DESTROY_Q, BSVI_OK, 1);
}

/* ---- bsvi_model_log_joint -------------------------------------------------------------- */

static void test_log_joint_reentry(void **state)
{
    (void)state;
    const double z[B * D] = {0.1, 0.2, 0.3, 0.4};
    const size_t idx[B] = {0, 1};
    double a[B], b[B];
    ctx ref, c;
    ctx_init(&ref, A_NONE);
    TU_OK(bsvi_model_log_joint(ref.model, B, z, idx, a, NULL));
    ctx_init(&c, A_MODEL_SET);
    TU_OK(bsvi_model_log_joint(c.model, B, z, idx, b, NULL));
    expect(&c, BSVI_ERR_REENTRANT, "bsvi_model_log_joint");
    TU_BITWISE(a, b, B);
    ctx_free(&c);
    ctx_init(&c, A_DESTROY_MODEL);
    TU_OK(bsvi_model_log_joint(c.model, B, z, idx, b, NULL));
    expect(&c, BSVI_OK, "bsvi_model_log_joint");
    TU_BITWISE(a, b, B);
    ctx_free(&c);
    ctx_free(&ref);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_svi_run_reentry),
        cmocka_unit_test(test_svi_run_nesting_and_reads),
        cmocka_unit_test(test_svi_run_destroy_deferred),
        cmocka_unit_test(test_estimator_reentry),
        cmocka_unit_test(test_evaluator_reentry),
        cmocka_unit_test(test_log_joint_reentry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
