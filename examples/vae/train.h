/* One VAE training step per method, validation bounds and test-set
 * evaluation, on top of libbsvi (the glue between nn.h and the library).
 *
 * A step, top to bottom:
 *   1. encoder forward: lambda_0 = (mean, log-std) = f(x), set on the proposal;
 *   2. the method's libbsvi calls (the decoder is the model's likelihood callback):
 *        vae          bsvi_estimator_elbo (one sample)
 *        iwae         bsvi_estimator_iwae, K = k+1 samples (pathwise or DReG encoder gradient)
 *        svi          bsvi_svi_run with k+1 steps, then bsvi_estimator_svi
 *        bsvi         bsvi_svi_run with k steps, bsvi_estimator_bsvi (all k+1 weights as targets)
 *        bsvi-ds      as bsvi with double sampling (bsvi_estimator_bsvi is then BSVI-DS)
 *        bsvi-sir     as bsvi, bsvi_estimator_bsvi_sir (M resampled targets, default 1)
 *        bsvi-sir-pi  as bsvi-sir, then bsvi_buffer_weights_accumulate and _step: one Adam
 *                     step on the buffer weights pi per step;
 *      and, for iwae and bsvi*, the ESS of the bound's k+1 weights per data point
 *      (bsvi_diagnostics_estimator, bsvi_diagnostics_trajectory: vae_stats.ess);
 *   3. decoder gradient: sum over the estimator's targets of coef/B * d/dtheta log p(x_b | z)
 *      (one batched forward/backward over all targets);
 *   4. encoder gradient: the library's d/dlambda_0 (divided by B) chained through the encoder
 *      (with KL annealing, beta * KL: (1-beta) dKL/dlambda_0 is added);
 *   5. one AMSGrad ascent step on all parameters.
 * Nothing is allocated inside a step: all buffers are sized at init for the batch (over MPI,
 * mpi.h, also the proposal of this process's piece of it: vae_trainer_step_part), but for
 * the diagnostics handle's workspace (k+1 doubles for bsvi*, B*(k+1) for iwae), allocated
 * by the first step and reused. */
#ifndef VAE_TRAIN_H
#define VAE_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include <bsvi/bsvi.h>

#include "nn.h"

typedef enum vae_method {
    VAE_METHOD_VAE = 0,
    VAE_METHOD_IWAE = 1,
    VAE_METHOD_SVI = 2,
    VAE_METHOD_BSVI = 3,
    VAE_METHOD_BSVI_DS = 4,
    VAE_METHOD_BSVI_SIR = 5,
    VAE_METHOD_BSVI_SIR_PI = 6
} vae_method;
#define VAE_NUM_METHODS 7

/* The CLI's names: bsvi_bound_name() of the method's bound, except "vae" (the library's
 * "elbo") and "bsvi-sir-pi" (BSVI-SIR with optimised pi). SVI step rules are named by
 * bsvi_step_rule_name() / bsvi_step_rule_from_name(). */
const char *vae_method_name(vae_method m);
/* 0 on success. */
int vae_method_parse(const char *s, vae_method *out);
/* 1 for the methods that run SVI (svi, bsvi*). */
int vae_method_uses_svi(vae_method m);

typedef struct vae_config {
    vae_method method;
    vae_likelihood lik;
    size_t x_dim, h_dim, z_dim; /* 784, 200, 50 */
    size_t batch;               /* data points per step */
    size_t k;                   /* BSVI steps (k+1 weights); svi takes k+1 steps, iwae k+1 samples */
    size_t sir_m;               /* BSVI-SIR resampled targets M */
    int iwae_dreg;              /* 1: DReG encoder gradient for iwae; 0: pathwise */
    double svi_eta;             /* SVI step size */
    bsvi_step_rule svi_rule;    /* SVI step rule */
    double svi_clip;            /* SVI per-data-point direction clipping (0: off) */
    double lr, beta1, beta2, adam_eps; /* AMSGrad */
    uint64_t kl_anneal;         /* KL multiplier rises linearly 0 -> 1 over this many steps (0: off) */
    double pi_lr;               /* Adam learning rate of the buffer-weight logits (bsvi-sir-pi) */
    uint64_t seed;
    char data[32];              /* data set name, for the record */
} vae_config;

/* Defaults of the paper's setting: 784-200-200-50, batch 100, k = 9, AMSGrad 1e-3. */
void vae_config_default(vae_config *c);

/* Per-batch statistics (means over the batch's data points; NAN when not applicable). */
typedef struct vae_stats {
    double bound;    /* the method's bound (what training maximises; KL multiplier 1) */
    double svi0;     /* SVI-0 = log w_0, from the trajectory (SVI-based methods) */
    double svik;     /* SVI-k = log w_k */
    double bsvik;    /* BSVI-k = LSE(log pi + log w) with the current pi (uniform for svi) */
    double mean_pos; /* E_pi[i/k]: 1 for svi, from pi for bsvi* */
    double ess;      /* ESS of the training bound's importance weights (training steps only):
                      * bsvi*: of pi_i w_i over the k+1 buffer slots (bsvi_diagnostics_trajectory),
                      * iwae: of its k+1 samples (bsvi_diagnostics_estimator); NAN for vae, svi */
} vae_stats;

typedef struct vae_trainer {
    vae_config cfg;
    vae_net net;
    vae_ws ws;
    bsvi_model *model;
    bsvi_proposal *q;          /* batch-sized proposal */
    bsvi_proposal *q_aux;      /* another size (last partial batch in evaluation), lazily */
    bsvi_proposal *q_final;    /* evaluation: final proposal of BSVI-K, lazily */
    bsvi_proposal *q_part;     /* data-parallel training: this rank's piece of a batch, lazily */
    bsvi_svi *svi;             /* training refinement */
    bsvi_svi *svi_probe;       /* plain SVI (no double sampling) for the step search */
    bsvi_trajectory *traj;
    bsvi_estimator *est;
    bsvi_buffer_weights *pi;   /* buffer weights of the bsvi methods (k+1 slots; NULL otherwise):
                                * uniform, optimised by bsvi-sir-pi */
    bsvi_diagnostics *diag;    /* the ESS of vae_stats (k+1 weights; NULL for vae, svi) */
    double *ess;               /* B: per data point ESS of a step */
    size_t max_targets;
    double *buf;               /* one allocation: the batch buffers below */
    double *mean, *log_std, *d_mean, *d_log_std, *bounds, *tz, *tcoef;
    vae_real *rbuf;            /* one allocation: the network-precision batch buffers below */
    vae_real *x_real;          /* the batch's data converted to vae_real (B*x_dim) */
    vae_real *enc_in;          /* x/255, the encoder's input for gray levels (binary: x_real) */
    size_t *tidx;
    const vae_real *cur_x;     /* the current batch's data, read by the likelihood callback */
    uint64_t step;             /* optimiser steps taken */
    char err[512];
} vae_trainer;

/* Creates networks, workspace and libbsvi handles. pixel_mean (x_dim values in
 * [0,1], or NULL) initialises the decoder's output bias. 0 on success; on
 * failure t->err says why. */
int vae_trainer_init(vae_trainer *t, const vae_config *cfg, const double *pixel_mean);
void vae_trainer_free(vae_trainer *t);

/* One training step on x (cfg.batch rows of x_dim values: 0/1 for Bernoulli,
 * gray levels 0..255 for the logistic likelihood; converted to vae_real, exact
 * for these values). Fills *st. 0 on success. */
int vae_trainer_step(vae_trainer *t, const double *x, vae_stats *st);

/* One data-parallel training step (mpi.h): x holds this process's n rows of the global
 * batch of cfg.batch points, the first of which is the batch's point `first` (its random
 * draws use id offset `first`, so the pieces of all processes draw what one process draws
 * for the whole batch). Gradients are scaled by 1/cfg.batch and summed over the processes,
 * the pi gradient (bsvi-sir-pi) too, and every process takes the same steps; *st holds the
 * global batch's means on every process. With one process and first = 0, n = cfg.batch this
 * is vae_trainer_step(), bit for bit. Every process must call it with the same step. */
int vae_trainer_step_part(vae_trainer *t, const double *x, size_t first, size_t n,
                          vae_stats *st);

/* The method's bound on B <= cfg.batch rows without any update (validation):
 * vae/iwae: the estimator's bound; svi: SVI-k; bsvi*: BSVI-k with the current pi.
 * Also SVI-0/SVI-k/BSVI-k for the SVI-based methods. stream separates the random
 * draws of different calls. Per-data-point bounds go to out (B) if not NULL. */
int vae_trainer_bound(vae_trainer *t, const double *x, size_t B, uint64_t stream,
                      vae_stats *st, double *out);
/* As vae_trainer_bound() for rows id_offset.. of a call (a piece of a validation batch:
 * each row's bound is what the whole batch's call gives it). No collective. */
int vae_trainer_bound_part(vae_trainer *t, const double *x, size_t B, uint64_t stream,
                           uint64_t id_offset, vae_stats *st, double *out);

/* A 64-bit hash (FNV-1a) of everything the processes of a data-parallel run must hold
 * alike: parameters, AMSGrad moments and step count, the step counter and pi with its
 * Adam state. */
uint64_t vae_trainer_checksum(const vae_trainer *t);

/* Test-set estimates for B <= cfg.batch rows (paper section 6.2): IWAE-S and
 * BSVI-K log-likelihoods and ELBO*, KL*, Reconstruction* of BSVI-K's final
 * proposal (elbo_S samples). Outputs are B entries each. BSVI-K refines with
 * vae_trainer_svi_options() (set on ev by this call), so changing cfg.svi_eta or
 * cfg.svi_rule changes the refinement. The latent rows per callback are bounded by
 * the likelihood's workspace (memory is bounded by it). */
int vae_trainer_evaluate(vae_trainer *t, bsvi_evaluator *ev, const double *x, size_t B,
                         size_t iwae_S, size_t bsvi_K, size_t elbo_S, double *iwae,
                         double *bsvi, double *elbo, double *kl, double *rec);

/* The plain refinement of evaluation and probes: library defaults with the training's
 * step size, step rule and clipping (no double sampling, divergence fails), k steps. */
bsvi_svi_options vae_trainer_svi_options(const vae_trainer *t, size_t k);

/* The step-size search of the library (bsvi_svi_search_step_size) over the n rows of x
 * (n * x_dim values, in batches of cfg.batch rows): the refinement of
 * vae_trainer_svi_options() with k steps and the given rule, from the encoder's proposals,
 * uniform pi, the probe handle's stream (the same draws for every step size and every
 * call). Returns 0, or 1 with t->err set. */
int vae_trainer_step_search(vae_trainer *t, const double *x, size_t n, bsvi_step_rule rule,
                            size_t k, const bsvi_step_search_options *o,
                            bsvi_step_trial *trials, size_t capacity,
                            bsvi_step_search_result *res);

/* Largest number of latent rows the likelihood callback accepts. */
size_t vae_trainer_max_rows(const vae_trainer *t);

#endif /* VAE_TRAIN_H */
