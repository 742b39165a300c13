/* One VAE training step per method on top of libbsvi (see train.h). */
#include "train.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpi.h"

/* The encoder's log-std is clamped to this range before it reaches the
 * proposal (the library accepts [-30, 30]); clamped entries get no gradient. */
#define LOG_STD_MIN (-12.0)
#define LOG_STD_MAX (8.0)
/* Rows of the likelihood callback beyond the training needs (evaluation chunks). */
#define EVAL_CHUNK_ROWS 2000
/* Random streams: the call counter of the validation / evaluation draws. */
#define STREAM_OFFSET ((uint64_t)1 << 31)

/* The bound each method trains; its library name (bsvi_bound_name) is the method's CLI
 * name, but for the two CLI aliases below. */
static const bsvi_bound method_bound[VAE_NUM_METHODS] = {
    BSVI_BOUND_ELBO, BSVI_BOUND_IWAE,     BSVI_BOUND_SVI,     BSVI_BOUND_BSVI,
    BSVI_BOUND_BSVI_DS, BSVI_BOUND_BSVI_SIR, BSVI_BOUND_BSVI_SIR};
static const struct {
    vae_method method;
    const char *name;
} cli_alias[2] = {{VAE_METHOD_VAE, "vae"}, {VAE_METHOD_BSVI_SIR_PI, "bsvi-sir-pi"}};

const char *vae_method_name(vae_method m) {
    if ((unsigned)m >= VAE_NUM_METHODS) return "unknown";
    for (int i = 0; i < 2; ++i)
        if (cli_alias[i].method == m) return cli_alias[i].name;
    return bsvi_bound_name(method_bound[m]);
}

int vae_method_parse(const char *s, vae_method *out) {
    for (int i = 0; i < 2; ++i)
        if (strcmp(s, cli_alias[i].name) == 0) {
            *out = cli_alias[i].method;
            return 0;
        }
    bsvi_bound b;
    if (bsvi_bound_from_name(s, &b) != BSVI_OK) return 1;
    for (int m = VAE_METHOD_IWAE; m <= VAE_METHOD_BSVI_SIR; ++m) /* the methods not aliased */
        if (method_bound[m] == b) {
            *out = (vae_method)m;
            return 0;
        }
    return 1; /* "elbo", "giwae": not CLI spellings */
}

int vae_method_uses_svi(vae_method m) { return m >= VAE_METHOD_SVI; }

void vae_config_default(vae_config *c) {
    memset(c, 0, sizeof *c);
    c->method = VAE_METHOD_BSVI_SIR;
    c->lik = VAE_LIK_BERNOULLI;
    c->x_dim = 784;
    c->h_dim = 200;
    c->z_dim = 50;
    c->batch = 100;
    c->k = 9;
    c->sir_m = 1;
    c->iwae_dreg = 0;
    c->svi_eta = 5e-3; /* chosen by `vae svi-sweep`, see README.md */
    c->svi_rule = BSVI_STEP_GRADIENT;
    c->svi_clip = 0.0;
    c->lr = 1e-3;
    c->beta1 = 0.9;
    c->beta2 = 0.999;
    c->adam_eps = 1e-8;
    c->kl_anneal = 0;
    c->pi_lr = 1e-2;
    c->seed = 1;
    snprintf(c->data, sizeof c->data, "builtin");
}

static int fail(vae_trainer *t, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->err, sizeof t->err, fmt, ap);
    va_end(ap);
    return 1;
}

/* Checks a libbsvi status; on error records the call, the status and the handle's message. */
#define CHECK(call, handle_msg)                                                              \
    do {                                                                                     \
        bsvi_status st_ = (call);                                                            \
        if (st_ != BSVI_OK)                                                                  \
            return fail(t, "%s: %s (%s)", #call, bsvi_status_string(st_), (handle_msg));     \
    } while (0)

/* The likelihood callback: log p(x_b | z) for all n rows with one GEMM per decoder layer. */
static int likelihood_cb(size_t n, size_t dim, const double *z, const size_t *data_index,
                         double *log_density, double *grad, void *user_data) {
    vae_trainer *t = (vae_trainer *)user_data;
    if (n > t->ws.max_rows || dim != t->net.z_dim || !t->cur_x) return 1;
    vae_decoder_log_lik(&t->net, &t->ws, n, z, t->cur_x, data_index, log_density, grad);
    return 0;
}

size_t vae_trainer_max_rows(const vae_trainer *t) { return t->ws.max_rows; }

int vae_trainer_init(vae_trainer *t, const vae_config *cfg, const double *pixel_mean) {
    memset(t, 0, sizeof *t);
    t->cfg = *cfg;
    const vae_config *c = &t->cfg;
    if (c->batch == 0 || c->k == 0 || c->sir_m == 0)
        return fail(t, "batch, k and M must be positive");
    const size_t B = c->batch, Z = c->z_dim, X = c->x_dim, K1 = c->k + 1;
    /* targets: iwae K1 per point, bsvi K1, sir M; callback rows: svi B (2B with DS), iwae B*K1 */
    size_t per = K1 + 1;
    if (c->sir_m > per) per = c->sir_m;
    t->max_targets = B * per;
    size_t rows = t->max_targets > EVAL_CHUNK_ROWS ? t->max_targets : EVAL_CHUNK_ROWS;
    if (vae_net_init(&t->net, X, c->h_dim, Z, c->lik)) return fail(t, "out of memory (network)");
    vae_net_randomize(&t->net, c->seed, pixel_mean);
    if (vae_ws_init(&t->ws, &t->net, rows)) return fail(t, "out of memory (workspace)");
    /* the SVI-based methods' decoder targets are rows of the k+1 (svi: k+2) SVI steps'
     * callbacks: keep those forwards for the decoder gradient */
    if (vae_method_uses_svi(c->method) && vae_ws_enable_cache(&t->ws, &t->net, c->k + 2, B))
        return fail(t, "out of memory (forward cache)");
    const size_t nbuf = 4 * B * Z + B + t->max_targets * (Z + 1);
    t->buf = (double *)calloc(nbuf, sizeof(double));
    t->rbuf = (vae_real *)calloc(2 * B * X, sizeof(vae_real));
    t->tidx = (size_t *)calloc(t->max_targets, sizeof(size_t));
    if (!t->buf || !t->rbuf || !t->tidx) return fail(t, "out of memory (batch buffers)");
    t->x_real = t->rbuf;
    t->enc_in = t->rbuf + B * X;
    double *p = t->buf;
    t->mean = p, p += B * Z;
    t->log_std = p, p += B * Z;
    t->d_mean = p, p += B * Z;
    t->d_log_std = p, p += B * Z;
    t->bounds = p, p += B;
    t->tz = p, p += t->max_targets * Z;
    t->tcoef = p;

    CHECK(bsvi_model_create(Z, &t->model), "bsvi_model_create");
    CHECK(bsvi_model_set_likelihood(t->model, likelihood_cb, t), bsvi_model_last_error(t->model));
    CHECK(bsvi_proposal_create(B, Z, &t->q), "bsvi_proposal_create");
    if (vae_mpi_size() > 1) { /* this rank's piece of every batch (vae_trainer_step_part) */
        size_t lo, hi;
        vae_mpi_share(B, &lo, &hi);
        if (hi > lo && hi - lo != B)
            CHECK(bsvi_proposal_create(hi - lo, Z, &t->q_part), "bsvi_proposal_create");
    }
    CHECK(bsvi_trajectory_create(&t->traj), "bsvi_trajectory_create");

    /* Training refinement: the plain one (below) with the method's steps and double
     * sampling, and a data point whose SVI step diverges stops refining at its last finite
     * proposal (its buffer stays a valid bound) instead of failing the whole step. The probe
     * handle keeps the default (fail), so svi-sweep still reports divergence. */
    bsvi_svi_options o = vae_trainer_svi_options(t, c->method == VAE_METHOD_SVI ? c->k + 1 : c->k);
    o.double_sampling = c->method == VAE_METHOD_BSVI_DS;
    o.divergence = BSVI_DIVERGENCE_FREEZE;
    CHECK(bsvi_svi_create(Z, &t->svi), "bsvi_svi_create");
    CHECK(bsvi_svi_set_options(t->svi, &o), bsvi_svi_last_error(t->svi));
    CHECK(bsvi_svi_set_seed(t->svi, c->seed * 8 + 1), bsvi_svi_last_error(t->svi));
    CHECK(bsvi_svi_create(Z, &t->svi_probe), "bsvi_svi_create");
    CHECK(bsvi_svi_set_seed(t->svi_probe, c->seed * 8 + 2), bsvi_svi_last_error(t->svi_probe));

    CHECK(bsvi_estimator_create(Z, &t->est), "bsvi_estimator_create");
    CHECK(bsvi_estimator_set_seed(t->est, c->seed * 8 + 3), bsvi_estimator_last_error(t->est));
    /* a data point of zero density stops training with its message (as a NaN would), instead
     * of entering the batch's mean bound as -infinity */
    CHECK(bsvi_estimator_set_point_policy(t->est, BSVI_POINTS_FAIL),
          bsvi_estimator_last_error(t->est));
    if (vae_method_uses_svi(c->method) && c->method != VAE_METHOD_SVI) {
        CHECK(bsvi_buffer_weights_create(K1, &t->pi), "bsvi_buffer_weights_create");
        CHECK(bsvi_buffer_weights_set_adam(t->pi, c->pi_lr, 0.9, 0.999),
              bsvi_buffer_weights_last_error(t->pi));
    }
    /* the ESS of the training bound's k+1 weights (vae_stats.ess): the bsvi methods' buffer
     * and iwae's samples; vae (one sample) and svi (the last slot alone) have none */
    if (c->method == VAE_METHOD_IWAE || t->pi) {
        CHECK(bsvi_diagnostics_create(K1, &t->diag), "bsvi_diagnostics_create");
        t->ess = (double *)calloc(B, sizeof(double));
        if (!t->ess) return fail(t, "out of memory (batch buffers)");
    }
    return 0;
}

bsvi_svi_options vae_trainer_svi_options(const vae_trainer *t, size_t k) {
    bsvi_svi_options o = bsvi_svi_options_default();
    o.steps = k;
    o.step_size = t->cfg.svi_eta;
    o.rule = t->cfg.svi_rule;
    o.clip_norm = t->cfg.svi_clip;
    return o;
}

void vae_trainer_free(vae_trainer *t) {
    if (!t) return;
    bsvi_estimator_destroy(t->est);
    bsvi_diagnostics_destroy(t->diag);
    free(t->ess);
    bsvi_buffer_weights_destroy(t->pi);
    bsvi_svi_destroy(t->svi);
    bsvi_svi_destroy(t->svi_probe);
    bsvi_trajectory_destroy(t->traj);
    bsvi_proposal_destroy(t->q);
    bsvi_proposal_destroy(t->q_aux);
    bsvi_proposal_destroy(t->q_final);
    bsvi_proposal_destroy(t->q_part);
    bsvi_model_destroy(t->model);
    free(t->buf);
    free(t->rbuf);
    free(t->tidx);
    vae_ws_free(&t->ws);
    vae_net_free(&t->net);
    memset(t, 0, sizeof *t);
}

/* A proposal of B data points: the batch one, else q_aux (re)created for this size.
 * (Allocates only when B differs from the last partial size: never inside training.) */
static bsvi_proposal *proposal_for(vae_trainer *t, size_t B, bsvi_proposal **aux) {
    if (B == t->cfg.batch && aux == &t->q_aux) return t->q;
    if (*aux && bsvi_proposal_batch(*aux) == B) return *aux;
    bsvi_proposal_destroy(*aux);
    *aux = NULL;
    if (bsvi_proposal_create(B, t->cfg.z_dim, aux) != BSVI_OK) return NULL;
    return *aux;
}

/* The encoder's input: x itself for binary pixels, x/255 (t->enc_in) for gray levels. */
static const vae_real *encoder_input(const vae_trainer *t) {
    return t->cfg.lik == VAE_LIK_LOGISTIC ? t->enc_in : t->x_real;
}

/* Converts B rows of x into t->x_real (the likelihood's data: t->cur_x), runs the
 * encoder on them, writes t->mean, t->log_std (clamped) and sets q. */
static int encode(vae_trainer *t, const double *x, size_t B, bsvi_proposal *q) {
    const size_t X = t->cfg.x_dim, Z = t->cfg.z_dim;
    for (size_t i = 0; i < B * X; ++i) t->x_real[i] = (vae_real)x[i];
    t->cur_x = t->x_real;
    if (t->cfg.lik == VAE_LIK_LOGISTIC)
        for (size_t i = 0; i < B * X; ++i) t->enc_in[i] = (vae_real)(x[i] / 255.0);
    vae_encoder_forward(&t->net, &t->ws, B, encoder_input(t), t->mean, t->log_std);
    for (size_t i = 0; i < B * Z; ++i) {
        if (!isfinite(t->mean[i]) || !isfinite(t->log_std[i]))
            return fail(t, "the encoder produced a non-finite output (training diverged)");
        if (t->log_std[i] < LOG_STD_MIN) t->log_std[i] = LOG_STD_MIN;
        if (t->log_std[i] > LOG_STD_MAX) t->log_std[i] = LOG_STD_MAX;
    }
    CHECK(bsvi_proposal_set_params(q, t->mean, t->log_std), bsvi_proposal_last_error(q));
    return 0;
}

static double batch_mean(const double *v, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; ++i) s += v[i];
    return s / (double)n;
}

static void stats_nan(vae_stats *st) {
    st->bound = st->svi0 = st->svik = st->bsvik = st->mean_pos = st->ess = NAN;
}

/* SVI-0, SVI-k and BSVI-k of the trajectory, with buffer weights pi (NULL: uniform). */
static int health(vae_trainer *t, const bsvi_buffer_weights *pi, vae_stats *st) {
    bsvi_health h;
    CHECK(bsvi_trajectory_health(t->traj, pi, &h), bsvi_trajectory_last_error(t->traj));
    st->svi0 = h.svi0, st->svik = h.svik, st->bsvik = h.bsvik;
    return 0;
}

/* The method's bound from the trajectory: SVI-k, BSVI (BSVI-DS over a double-sampled
 * trajectory) or, with resample_m > 0, BSVI-SIR with that many targets. */
static int trajectory_bound(vae_trainer *t, size_t resample_m) {
    if (t->cfg.method == VAE_METHOD_SVI)
        CHECK(bsvi_estimator_svi(t->est, t->traj), bsvi_estimator_last_error(t->est));
    else if (resample_m > 0)
        CHECK(bsvi_estimator_bsvi_sir(t->est, t->traj, t->pi, resample_m),
              bsvi_estimator_last_error(t->est));
    else
        CHECK(bsvi_estimator_bsvi(t->est, t->traj, t->pi), bsvi_estimator_last_error(t->est));
    return 0;
}

/* The ELBO (vae) or IWAE-(k+1) bound from the proposal. */
static int proposal_bound(vae_trainer *t, const bsvi_proposal *q) {
    if (t->cfg.method == VAE_METHOD_IWAE)
        CHECK(bsvi_estimator_iwae(t->est, t->model, q, t->cfg.k + 1,
                                  t->cfg.iwae_dreg ? BSVI_GRAD_DREG : BSVI_GRAD_PATHWISE),
              bsvi_estimator_last_error(t->est));
    else
        CHECK(bsvi_estimator_elbo(t->est, t->model, q, BSVI_GRAD_PATHWISE),
              bsvi_estimator_last_error(t->est));
    return 0;
}

/* The sum over this step's n points of the ESS of the training bound's weights (0 without
 * diagnostics): bsvi*: pi_i w_i over the buffer (pi as the bound used it), iwae: the K
 * samples. The handle's workspace (k+1, respectively n*(k+1) doubles) is allocated by the
 * first step and reused. */
static int bound_ess_sum(vae_trainer *t, size_t n, double *sum) {
    *sum = 0.0;
    if (!t->diag) return 0;
    if (t->cfg.method == VAE_METHOD_IWAE)
        CHECK(bsvi_diagnostics_estimator(t->diag, t->est, n, t->ess, NULL),
              bsvi_diagnostics_last_error(t->diag));
    else
        CHECK(bsvi_diagnostics_trajectory(t->diag, t->traj, t->pi, t->ess, NULL),
              bsvi_diagnostics_last_error(t->diag));
    for (size_t i = 0; i < n; ++i) *sum += t->ess[i];
    return 0;
}

/* Sums over the processes (mpi.h) of n network-precision values. */
static void sum_real(vae_real *buf, size_t n) {
#ifdef VAE_FLOAT64
    vae_mpi_sum_double(buf, n);
#else
    vae_mpi_sum_float(buf, n);
#endif
}

/* The largest pi exchanged over processes (k + 1; the CLI's k is at most 1000). */
#define PI_MAX_SLOTS 1024

/* bsvi-sir-pi's pi gradient: the sum and count over every process's points, then the step. */
static int pi_step(vae_trainer *t) {
    if (vae_mpi_size() > 1) {
        double g[PI_MAX_SLOTS + 1];
        uint64_t count = 0;
        const size_t n = bsvi_buffer_weights_size(t->pi);
        if (n > PI_MAX_SLOTS) return fail(t, "pi of %zu slots: at most %d over MPI", n, PI_MAX_SLOTS);
        CHECK(bsvi_buffer_weights_get_gradient(t->pi, g, &count, n),
              bsvi_buffer_weights_last_error(t->pi));
        g[n] = (double)count; /* exact: counts are far below 2^53 */
        vae_mpi_sum_double(g, n + 1);
        CHECK(bsvi_buffer_weights_set_gradient(t->pi, g, (uint64_t)g[n], n),
              bsvi_buffer_weights_last_error(t->pi));
    }
    CHECK(bsvi_buffer_weights_step(t->pi), bsvi_buffer_weights_last_error(t->pi));
    return 0;
}

int vae_trainer_step(vae_trainer *t, const double *x, vae_stats *st) {
    return vae_trainer_step_part(t, x, 0, t->cfg.batch, st);
}

int vae_trainer_step_part(vae_trainer *t, const double *x, size_t first, size_t n,
                          vae_stats *st) {
    const vae_config *c = &t->cfg;
    const size_t B = c->batch, Z = c->z_dim;
    const int parts = vae_mpi_size() > 1;
    stats_nan(st);
    if (n == 0 || first + n > B)
        return fail(t, "step: rows %zu..%zu of a batch of %zu", first, first + n, B);
    bsvi_proposal *q = t->q;
    if (n != B) { /* created at init for this rank's share; another size is created here */
        q = proposal_for(t, n, &t->q_part);
        if (!q) return fail(t, "out of memory (proposal)");
    }

    /* 1. encoder: lambda_0 = f(x); the decoder's kept forwards are of older parameters */
    vae_ws_forget(&t->ws);
    if (encode(t, x, n, q)) return 1;

    /* 2. the method's bound (this piece's points draw as points first.. of the batch) */
    double ess_sum = 0.0;
    CHECK(bsvi_svi_set_stream(t->svi, t->step, first), bsvi_svi_last_error(t->svi));
    CHECK(bsvi_estimator_set_stream(t->est, t->step, first), bsvi_estimator_last_error(t->est));
    if (vae_method_uses_svi(c->method)) {
        CHECK(bsvi_svi_run(t->svi, t->model, q, t->traj), bsvi_svi_last_error(t->svi));
        if (health(t, t->pi, st)) return 1;
        const int sir = c->method == VAE_METHOD_BSVI_SIR || c->method == VAE_METHOD_BSVI_SIR_PI;
        if (trajectory_bound(t, sir ? c->sir_m : 0)) return 1;
        if (bound_ess_sum(t, n, &ess_sum)) return 1; /* before pi's step */
        st->mean_pos = 1.0; /* svi */
        if (t->pi)
            CHECK(bsvi_buffer_weights_mean_position(t->pi, &st->mean_pos),
                  bsvi_buffer_weights_last_error(t->pi));
        if (c->method == VAE_METHOD_BSVI_SIR_PI) { /* one Adam step on pi for this batch */
            CHECK(bsvi_buffer_weights_accumulate(t->pi, t->traj),
                  bsvi_buffer_weights_last_error(t->pi));
            if (pi_step(t)) return 1;
        }
    } else if (proposal_bound(t, q) || bound_ess_sum(t, n, &ess_sum)) {
        return 1;
    }
    CHECK(bsvi_estimator_get_bounds(t->est, t->bounds, n), bsvi_estimator_last_error(t->est));
    if (!parts) {
        st->bound = batch_mean(t->bounds, B);
        if (t->diag) st->ess = ess_sum / (double)B;
    } else { /* the global batch's means: sums of the pieces' */
        double s[5] = {0.0, st->svi0 * (double)n, st->svik * (double)n, st->bsvik * (double)n,
                       ess_sum};
        for (size_t i = 0; i < n; ++i) s[0] += t->bounds[i];
        vae_mpi_sum_double(s, 5);
        st->bound = s[0] / (double)B;
        if (t->diag) st->ess = s[4] / (double)B;
        if (vae_method_uses_svi(c->method)) {
            st->svi0 = s[1] / (double)B;
            st->svik = s[2] / (double)B;
            st->bsvik = s[3] / (double)B;
        }
    }

    /* 3. decoder gradient: sum over targets of coef/B * d/dtheta log p(x_b | z) */
    vae_net_zero_grads(&t->net);
    const size_t nt = bsvi_estimator_num_targets(t->est);
    if (nt == 0 || nt > t->max_targets)
        return fail(t, "unexpected number of decoder targets %zu (at most %zu)", nt,
                    t->max_targets);
    CHECK(bsvi_estimator_get_targets(t->est, nt, t->tidx, NULL, t->tz, t->tcoef),
          bsvi_estimator_last_error(t->est));
    for (size_t i = 0; i < nt; ++i) t->tcoef[i] /= (double)B;
    /* the parameters are those of the library's callbacks in this step: the targets'
     * forward rows are the last callback's (ELBO, IWAE, SVI-k) or the SVI steps' (BSVI,
     * BSVI-SIR), reused or gathered instead of recomputed */
    vae_decoder_accumulate_reuse(&t->net, &t->ws, nt, t->tz, t->x_real, t->tidx, t->tcoef,
                                 NULL);

    /* 4. encoder gradient: d/dlambda_0 from the library, chained through the encoder */
    CHECK(bsvi_estimator_get_encoder_grad(t->est, n, t->d_mean, t->d_log_std),
          bsvi_estimator_last_error(t->est));
    double beta = 1.0;
    if (c->kl_anneal > 0 && t->step < c->kl_anneal)
        beta = (double)t->step / (double)c->kl_anneal;
    for (size_t i = 0; i < n * Z; ++i) {
        double dm = t->d_mean[i], ds = t->d_log_std[i];
        if (beta < 1.0) { /* E log p(x|z) - beta KL = ELBO + (1 - beta) KL */
            dm += (1.0 - beta) * t->mean[i];
            ds += (1.0 - beta) * (exp(2.0 * t->log_std[i]) - 1.0);
        }
        const double raw_ls = (double)t->ws.enc_out[(i / Z) * 2 * Z + Z + i % Z];
        if (raw_ls != t->log_std[i]) ds = 0.0; /* clamped */
        t->d_mean[i] = dm / (double)B;
        t->d_log_std[i] = ds / (double)B;
    }
    vae_encoder_backward(&t->net, &t->ws, n, encoder_input(t), t->d_mean, t->d_log_std, NULL);

    /* 5. optimiser: the batch gradient is the sum of the pieces' (each scaled by 1/B) */
    if (parts) sum_real(t->net.grads, t->net.nparams);
    for (size_t i = 0; i < t->net.nparams; ++i)
        if (!isfinite(t->net.grads[i]))
            return fail(t, "non-finite gradient at step %llu (parameter %zu)",
                        (unsigned long long)t->step, i);
    vae_amsgrad_step(&t->net, c->lr, c->beta1, c->beta2, c->adam_eps);
    t->step++;
    t->cur_x = NULL;
    return 0;
}

static uint64_t fnv1a(uint64_t h, const void *p, size_t bytes) {
    const unsigned char *b = (const unsigned char *)p;
    for (size_t i = 0; i < bytes; ++i) {
        h ^= b[i];
        h *= 0x100000001B3ull;
    }
    return h;
}

uint64_t vae_trainer_checksum(const vae_trainer *t) {
    uint64_t h = 0xCBF29CE484222325ull;
    const vae_net *net = &t->net;
    const size_t bytes = net->nparams * sizeof(vae_real);
    h = fnv1a(h, net->params, bytes);
    h = fnv1a(h, net->adam_m, bytes);
    h = fnv1a(h, net->adam_v, bytes);
    h = fnv1a(h, net->adam_vmax, bytes);
    h = fnv1a(h, &net->adam_t, sizeof net->adam_t);
    h = fnv1a(h, &t->step, sizeof t->step);
    if (t->pi) {
        const size_t n = bsvi_buffer_weights_size(t->pi);
        double *a = (double *)malloc(3 * n * sizeof *a);
        uint64_t steps = 0;
        if (!a) return 0; /* never a valid FNV-1a state here: the ranks' comparison fails */
        if (bsvi_buffer_weights_get_logits(t->pi, a, n) == BSVI_OK &&
            bsvi_buffer_weights_get_adam_state(t->pi, a + n, a + 2 * n, &steps, n) == BSVI_OK) {
            h = fnv1a(h, a, 3 * n * sizeof *a);
            h = fnv1a(h, &steps, sizeof steps);
        }
        free(a);
    }
    return h;
}

int vae_trainer_bound(vae_trainer *t, const double *x, size_t B, uint64_t stream,
                      vae_stats *st, double *out) {
    return vae_trainer_bound_part(t, x, B, stream, 0, st, out);
}

int vae_trainer_bound_part(vae_trainer *t, const double *x, size_t B, uint64_t stream,
                           uint64_t id_offset, vae_stats *st, double *out) {
    const vae_config *c = &t->cfg;
    stats_nan(st);
    if (B == 0 || B > c->batch) return fail(t, "bound: batch of %zu rows (1..%zu)", B, c->batch);
    bsvi_proposal *q = proposal_for(t, B, &t->q_aux);
    if (!q) return fail(t, "out of memory (proposal)");
    if (encode(t, x, B, q)) return 1;
    CHECK(bsvi_estimator_set_stream(t->est, STREAM_OFFSET + stream, id_offset),
          bsvi_estimator_last_error(t->est));
    if (vae_method_uses_svi(c->method)) {
        /* svi: SVI-k; bsvi*: BSVI-k with the current pi (BSVI-SIR's bound is BSVI's);
         * pi is only read */
        CHECK(bsvi_svi_set_stream(t->svi, STREAM_OFFSET + stream, id_offset),
              bsvi_svi_last_error(t->svi));
        CHECK(bsvi_svi_run(t->svi, t->model, q, t->traj), bsvi_svi_last_error(t->svi));
        if (health(t, t->pi, st) || trajectory_bound(t, 0)) return 1;
    } else if (proposal_bound(t, q)) {
        return 1;
    }
    CHECK(bsvi_estimator_get_bounds(t->est, t->bounds, B), bsvi_estimator_last_error(t->est));
    st->bound = batch_mean(t->bounds, B);
    if (out) memcpy(out, t->bounds, B * sizeof *out);
    t->cur_x = NULL;
    return 0;
}

int vae_trainer_evaluate(vae_trainer *t, bsvi_evaluator *ev, const double *x, size_t B,
                         size_t iwae_S, size_t bsvi_K, size_t elbo_S, double *iwae,
                         double *bsvi, double *elbo, double *kl, double *rec) {
    if (B == 0 || B > t->cfg.batch) return fail(t, "evaluate: batch of %zu rows", B);
    bsvi_proposal *q = proposal_for(t, B, &t->q_aux);
    bsvi_proposal *qf = proposal_for(t, B, &t->q_final);
    if (!q || !qf) return fail(t, "out of memory (proposal)");
    if (encode(t, x, B, q)) return 1;
    CHECK(bsvi_evaluator_set_chunk_rows(ev, t->ws.max_rows), bsvi_evaluator_last_error(ev));
    if (iwae_S > 0)
        CHECK(bsvi_evaluator_iwae(ev, t->model, q, iwae_S, iwae), bsvi_evaluator_last_error(ev));
    if (bsvi_K > 0) {
        const bsvi_svi_options o = vae_trainer_svi_options(t, bsvi_K - 1);
        CHECK(bsvi_evaluator_set_svi_options(ev, &o), bsvi_evaluator_last_error(ev));
        CHECK(bsvi_evaluator_bsvi(ev, t->model, q, bsvi_K, bsvi, qf),
              bsvi_evaluator_last_error(ev));
        if (elbo_S > 0)
            CHECK(bsvi_evaluator_elbo_star(ev, t->model, qf, elbo_S, elbo, kl, rec),
                  bsvi_evaluator_last_error(ev));
    }
    t->cur_x = NULL;
    return 0;
}

/* The batch source of vae_trainer_step_search: rows [index*B, index*B + B) of x, encoded. */
typedef struct search_ctx {
    vae_trainer *t;
    const double *x;
    size_t n;
} search_ctx;

static int search_batch(void *user_data, size_t index, const bsvi_model **model,
                        const bsvi_proposal **proposal) {
    search_ctx *c = (search_ctx *)user_data;
    vae_trainer *t = c->t;
    const size_t B = t->cfg.batch, first = index * B;
    const size_t nb = c->n - first < B ? c->n - first : B;
    bsvi_proposal *q = proposal_for(t, nb, &t->q_aux);
    if (!q) return fail(t, "out of memory (proposal)");
    if (encode(t, c->x + first * t->cfg.x_dim, nb, q)) return 1;
    *model = t->model;
    *proposal = q;
    return 0;
}

int vae_trainer_step_search(vae_trainer *t, const double *x, size_t n, bsvi_step_rule rule,
                            size_t k, const bsvi_step_search_options *o,
                            bsvi_step_trial *trials, size_t capacity,
                            bsvi_step_search_result *res) {
    if (n == 0) return fail(t, "step search: no rows");
    bsvi_svi_options so = vae_trainer_svi_options(t, k);
    so.rule = rule;
    CHECK(bsvi_svi_set_options(t->svi_probe, &so), bsvi_svi_last_error(t->svi_probe));
    CHECK(bsvi_svi_set_stream(t->svi_probe, STREAM_OFFSET, 0), bsvi_svi_last_error(t->svi_probe));
    search_ctx c = {t, x, n};
    t->err[0] = '\0';
    const bsvi_status s =
        bsvi_svi_search_step_size(t->svi_probe, search_batch, &c, (n + t->cfg.batch - 1) / t->cfg.batch,
                                  NULL, o, trials, capacity, res);
    t->cur_x = NULL;
    if (s != BSVI_OK) {
        if (t->err[0]) { /* the batch source failed: its message first */
            char inner[sizeof t->err];
            snprintf(inner, sizeof inner, "%s", t->err);
            return fail(t, "%s (%s)", inner, bsvi_svi_last_error(t->svi_probe));
        }
        return fail(t, "%s", bsvi_svi_last_error(t->svi_probe));
    }
    return 0;
}
