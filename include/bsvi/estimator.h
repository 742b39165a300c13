/**
 * @file estimator.h
 * @brief Bound estimators: ELBO, IWAE-K, SVI-k, BSVI, BSVI-DS, BSVI-SIR and generalised IWAE.
 *
 * An estimator computes, for a batch of B data points:
 * - the per-data-point bound value (a stochastic lower bound on log p(x_b));
 * - decoder gradient targets: T triples (data point b, latent z, coefficient c)
 *   per data point such that d/dtheta bound_b = sum c * d/dtheta log p(x_b, z) at fixed z.
 *   Coefficients of each data point sum to 1. Each target also names its
 *   slot (the sample or buffer index it came from);
 * - the encoder gradient d/dlambda_0 of the bound's encoder objective, per data point.
 *
 * | kind                 | input                        | bound                        | T   | coefficient |
 * |----------------------|------------------------------|------------------------------|-----|-------------|
 * | ::BSVI_BOUND_ELBO    | model + proposal             | log w(z_0; lambda_0)         | 1   | 1           |
 * | ::BSVI_BOUND_IWAE    | model + proposal             | LSE_s log w_s - log K        | K   | softmax(log w) |
 * | ::BSVI_BOUND_SVI     | trajectory                   | log w_k                      | 1   | 1           |
 * | ::BSVI_BOUND_BSVI    | trajectory                   | LSE_i(log pi_i + log w_i)    | k+1 | r = softmax(log pi + log w) |
 * | ::BSVI_BOUND_BSVI_DS | double-sampled trajectory    | as BSVI                      | k+1 | r           |
 * | ::BSVI_BOUND_BSVI_SIR| trajectory                   | as BSVI                      | M   | 1/M, slots drawn from r |
 * | ::BSVI_BOUND_GIWAE   | host log p and log q terms   | LSE_i(log pi_i + log p_i - log q_i) | n | r   |
 *
 * The bound values do not depend on the gradient form, which selects only the
 * estimator of the encoder gradient. Encoder gradient: ELBO uses the configured gradient form at z_0; IWAE uses
 * sum_s wbar_s d/dlambda log w_s (pathwise or STL form) or the doubly
 * reparameterised sum_s wbar_s^2 (STL gradient of log w_s) (::BSVI_GRAD_DREG);
 * trajectory-based kinds return the trajectory's encoder gradient
 * (bsvi_trajectory_get_encoder_grad()). GIWAE has no encoder gradient.
 *
 * Buffer weights pi (BSVI, BSVI-DS, BSVI-SIR, GIWAE) are a global softmax of
 * logits a. Uniform by default. When optimisation is enabled each compute
 * accumulates d/da of the batch-mean bound, mean_b (r_bj - pi_j), and
 * bsvi_estimator_pi_step() takes one Adam ascent step on the accumulated mean
 * (Adam's epsilon is 1e-8; the logits are re-centred so the largest is 0).
 *
 * Thread rules: one handle per thread.
 *
 * Callbacks: an ELBO or IWAE compute calls the model and holds the estimator, the model and
 * the proposal until it returns (see status.h). From the callback, the estimator's const
 * functions (its previous results, pi) work, its other functions return
 * ::BSVI_ERR_REENTRANT, and destroying it is deferred until the compute returns; other
 * estimators, SVI handles and evaluators may be used with the same model and proposal.
 *
 * pi steps: a step that would make a finite logit non-finite, either by overflow or when
 * the logits are re-centred, is ::BSVI_ERR_NUMERIC and changes nothing (a slot whose logit
 * reached -INFINITY could never come back).
 */
#ifndef BSVI_ESTIMATOR_H
#define BSVI_ESTIMATOR_H

#include <stddef.h>
#include <stdint.h>

#include "bsvi/export.h"
#include "bsvi/model.h"
#include "bsvi/proposal.h"
#include "bsvi/status.h"
#include "bsvi/svi.h"
#include "bsvi/trajectory.h"

BSVI_BEGIN_DECLS

/** @brief Which bound an estimator computes. Values are never renumbered. */
typedef enum bsvi_bound {
    BSVI_BOUND_ELBO = 0,     /**< Single-sample ELBO (VAE). */
    BSVI_BOUND_IWAE = 1,     /**< Importance-weighted bound with K samples. */
    BSVI_BOUND_SVI = 2,      /**< SVI-k: the last weight of the trajectory. */
    BSVI_BOUND_BSVI = 3,     /**< Buffered SVI. */
    BSVI_BOUND_BSVI_DS = 4,  /**< Buffered SVI over a double-sampled trajectory. */
    BSVI_BOUND_BSVI_SIR = 5, /**< Buffered SVI with M sampling-importance-resampling targets. */
    BSVI_BOUND_GIWAE = 6     /**< Generalised IWAE from host-supplied terms. */
} bsvi_bound;

/** @brief Opaque estimator handle. */
typedef struct bsvi_estimator bsvi_estimator;

/**
 * @brief Create an estimator of the given kind for latent dimension @p dim.
 *
 * Defaults: K = 10 (IWAE), M = 1 (SIR), pathwise encoder gradient, uniform
 * pi, pi optimisation off (Adam learning rate 1e-2, betas 0.9/0.999), seed 0.
 * @param kind A ::bsvi_bound value.
 * @param dim Latent dimension, 1..::BSVI_MAX_DIM.
 * @param out Receives the handle (caller frees with bsvi_estimator_destroy()); NULL on failure.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_BAD_VALUE (unknown kind),
 *         ::BSVI_ERR_ZERO_SIZE, ::BSVI_ERR_OUT_OF_RANGE, ::BSVI_ERR_NO_MEMORY.
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_estimator_create(bsvi_bound kind, size_t dim, bsvi_estimator **out);

/**
 * @brief Destroy an estimator; NULL is ignored. Infallible.
 *
 * Called from a callback of a running compute on it, the free is deferred until the
 * compute returns; the handle must not be used after this call.
 * @param est Handle to free.
 * @since 0.1.0
 */
BSVI_API void bsvi_estimator_destroy(bsvi_estimator *est);

/**
 * @brief Kind of an estimator. @param est Handle, or NULL.
 * @return Its ::bsvi_bound; ::BSVI_BOUND_ELBO for NULL. Infallible.
 * @since 0.1.0
 */
BSVI_API bsvi_bound bsvi_estimator_kind(const bsvi_estimator *est);

/**
 * @brief Set the number of importance samples K (IWAE only).
 * @param est Handle. @param K 1..::BSVI_MAX_SAMPLES.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_ZERO_SIZE, ::BSVI_ERR_OUT_OF_RANGE,
 *         ::BSVI_ERR_BAD_STATE (not an IWAE estimator).
 *         ::BSVI_ERR_REENTRANT (the handle is held by a running call; see status.h).
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_estimator_set_num_samples(bsvi_estimator *est, size_t K);

/**
 * @brief Set the number of resampled targets M (BSVI-SIR only).
 * @param est Handle. @param M 1..::BSVI_MAX_SAMPLES.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_ZERO_SIZE, ::BSVI_ERR_OUT_OF_RANGE,
 *         ::BSVI_ERR_BAD_STATE (not a BSVI-SIR estimator).
 *         ::BSVI_ERR_REENTRANT (the handle is held by a running call; see status.h).
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_estimator_set_num_resamples(bsvi_estimator *est, size_t M);

/**
 * @brief Set the encoder-gradient form (ELBO: pathwise, STL, analytic KL; IWAE: pathwise, STL, DREG).
 * @param est Handle. @param form A ::bsvi_grad_form value.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_BAD_VALUE (unknown form, or not
 *         valid for this kind), ::BSVI_ERR_BAD_STATE (trajectory-based or GIWAE kind: the
 *         form is set on the SVI handle).
 *         ::BSVI_ERR_REENTRANT (the handle is held by a running call; see status.h).
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_estimator_set_grad_form(bsvi_estimator *est, bsvi_grad_form form);

/**
 * @brief Set the seed and reset the call counter (see rng.h).
 * @param est Handle. @param seed Any value.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT.
 *         ::BSVI_ERR_REENTRANT (the handle is held by a running call; see status.h).
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_estimator_set_seed(bsvi_estimator *est, uint64_t seed);

/**
 * @brief Set the call counter and the id of the batch's first data point (see rng.h).
 * @param est Handle. @param counter Call counter. @param id_offset Data-point id offset.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT.
 *         ::BSVI_ERR_REENTRANT (the handle is held by a running call; see status.h).
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_estimator_set_stream(bsvi_estimator *est, uint64_t counter,
                                               uint64_t id_offset);

/**
 * @brief Set the buffer weights pi (BSVI, BSVI-DS, BSVI-SIR, GIWAE).
 *
 * The estimator stores logits a = log pi, resets the optimiser state and the
 * accumulated gradient. Zero entries are allowed (logit -INFINITY); such a
 * slot stays at zero under optimisation.
 * @param est Handle. @param pi @p n non-negative finite entries summing to 1 within 1e-9 (copied).
 * @param n Number of entries (k+1 for a k-step trajectory), 1..::BSVI_MAX_STEPS+1.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_ZERO_SIZE, ::BSVI_ERR_OUT_OF_RANGE,
 *         ::BSVI_ERR_BAD_VALUE (not a distribution), ::BSVI_ERR_BAD_STATE (kind without pi).
 *         ::BSVI_ERR_REENTRANT (the handle is held by a running call; see status.h).
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_estimator_set_buffer_weights(bsvi_estimator *est, const double *pi,
                                                       size_t n);

/**
 * @brief Reset pi to uniform over @p n slots (and the optimiser state).
 * @param est Handle. @param n Number of slots, 1..::BSVI_MAX_STEPS+1.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_ZERO_SIZE, ::BSVI_ERR_OUT_OF_RANGE,
 *         ::BSVI_ERR_BAD_STATE (kind without pi).
 *         ::BSVI_ERR_REENTRANT (the handle is held by a running call; see status.h).
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_estimator_set_uniform_buffer_weights(bsvi_estimator *est, size_t n);

/**
 * @brief Number of buffer weights currently held.
 * @param est Handle or NULL.
 * @return n, or 0 when pi has not been sized yet (it is sized to uniform on the
 *         first compute) or for NULL. Infallible.
 * @since 0.1.0
 */
BSVI_API size_t bsvi_estimator_num_buffer_weights(const bsvi_estimator *est);

/**
 * @brief Copy out pi = softmax(a).
 * @param est Handle. @param pi Output, @p n entries. @param n Must equal bsvi_estimator_num_buffer_weights().
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_SIZE_MISMATCH, ::BSVI_ERR_BAD_STATE (not sized).
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_estimator_get_buffer_weights(const bsvi_estimator *est, double *pi,
                                                       size_t n);

/**
 * @brief E_pi[i/k], the mean buffer position under pi (0 = encoder, 1 = last SVI step).
 * @param est Handle. @param out Output (not NULL); 0 when pi has a single slot.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_BAD_STATE (not sized or kind without pi).
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_estimator_get_mean_position(const bsvi_estimator *est, double *out);

/**
 * @brief Enable or disable accumulation of the pi gradient during compute.
 * @param est Handle. @param enabled 0 or 1.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_BAD_VALUE, ::BSVI_ERR_BAD_STATE (kind without pi).
 *         ::BSVI_ERR_REENTRANT (the handle is held by a running call; see status.h).
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_estimator_set_pi_optimisation(bsvi_estimator *est, int enabled);

/**
 * @brief Set Adam's parameters for the pi logits.
 * @param est Handle. @param learning_rate Finite, > 0. @param beta1 In [0,1). @param beta2 In [0,1).
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_BAD_VALUE, ::BSVI_ERR_BAD_STATE (kind without pi).
 *         ::BSVI_ERR_REENTRANT (the handle is held by a running call; see status.h).
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_estimator_set_pi_adam(bsvi_estimator *est, double learning_rate,
                                                double beta1, double beta2);

/**
 * @brief Take one Adam ascent step on the logits with the gradient accumulated
 *        since the last step (averaged over computes), then clear it.
 * @param est Handle with pi optimisation enabled.
 * @return ::BSVI_OK (also when nothing was accumulated: no step is taken),
 *         ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_BAD_STATE (optimisation disabled or kind without pi),
 *         ::BSVI_ERR_NUMERIC (the step would make a finite logit non-finite, by overflow or
 *         by the re-centring; nothing changes).
 *         ::BSVI_ERR_REENTRANT (the handle is held by a running call; see status.h).
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_estimator_pi_step(bsvi_estimator *est);

/**
 * @brief Copy out the accumulated (averaged) gradient d/da of the batch-mean bound.
 * @param est Handle. @param grad Output, @p n entries. @param n Must equal the number of buffer weights.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_SIZE_MISMATCH, ::BSVI_ERR_BAD_STATE.
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_estimator_get_pi_gradient(const bsvi_estimator *est, double *grad,
                                                    size_t n);

/**
 * @brief Compute the bound, targets and encoder gradient for a batch.
 *
 * ELBO and IWAE draw samples from @p q and call @p model (traj may be NULL).
 * SVI, BSVI, BSVI-DS and BSVI-SIR read @p traj (model and q may be NULL).
 * GIWAE is refused here: use bsvi_estimator_compute_terms().
 * Advances the call counter on success (for kinds that draw random numbers).
 * @param est Handle.
 * @param model Model of the estimator's dimension (ELBO, IWAE).
 * @param q Proposal holding lambda_0 (ELBO, IWAE).
 * @param traj Trajectory of the estimator's dimension (trajectory-based kinds).
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_OUT_OF_RANGE (K*dim beyond the
 *         generator's 2^33 normals per stream, see rng.h), ::BSVI_ERR_SIZE_MISMATCH (dimension, or pi
 *         length versus k+1), ::BSVI_ERR_BAD_STATE (empty trajectory; BSVI-DS without double
 *         sampling; GIWAE; analytic KL without the standard normal prior),
 *         ::BSVI_ERR_CALLBACK_FAILED, ::BSVI_ERR_CALLBACK_NAN, ::BSVI_ERR_NUMERIC (every
 *         weight of a data point is -INFINITY), ::BSVI_ERR_NO_MEMORY.
 *         On error the previous results, pi and its accumulated gradient are unchanged.
 *         ::BSVI_ERR_REENTRANT (the handle is held by a running call; see status.h).
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_estimator_compute(bsvi_estimator *est, const bsvi_model *model,
                                            const bsvi_proposal *q, const bsvi_trajectory *traj);

/**
 * @brief Generalised IWAE (GIWAE kind): bound from host-supplied terms of any joint proposal.
 *
 * bound_b = LSE_i(log pi_i + log_joint[b*n+i] - log_proposal[b*n+i]), where
 * log_proposal[b*n+i] is log q(z_i | z_v(i)) of the host's proposal. Targets
 * carry slot i and coefficient r_bi; they have no latent (see bsvi_estimator_get_targets()).
 * @param est GIWAE handle. @param batch Data points B (>= 1). @param n Terms per data point (>= 1).
 * @param log_joint B*n values of log p(x_b, z_i) (not NULL). -INFINITY legal; NaN refused.
 * @param log_proposal B*n values of log q (not NULL); NaN and -INFINITY are refused
 *        (a sample cannot have zero proposal density).
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_ZERO_SIZE, ::BSVI_ERR_OUT_OF_RANGE,
 *         ::BSVI_ERR_SIZE_MISMATCH (pi length != n), ::BSVI_ERR_BAD_VALUE (NaN or
 *         log_proposal = -INFINITY), ::BSVI_ERR_BAD_STATE (not GIWAE), ::BSVI_ERR_NUMERIC,
 *         ::BSVI_ERR_NO_MEMORY.
 *         ::BSVI_ERR_REENTRANT (the handle is held by a running call; see status.h).
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_estimator_compute_terms(bsvi_estimator *est, size_t batch, size_t n,
                                                  const double *log_joint,
                                                  const double *log_proposal);

/**
 * @brief Number of data points in the last successful compute (0 before any). Infallible.
 * @param est Handle or NULL. @return B.
 * @since 0.1.0
 */
BSVI_API size_t bsvi_estimator_batch(const bsvi_estimator *est);

/**
 * @brief Copy out the per-data-point bounds of the last compute.
 * @param est Handle. @param out Output, @p n entries. @param n Must equal bsvi_estimator_batch().
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_SIZE_MISMATCH, ::BSVI_ERR_BAD_STATE (no result).
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_estimator_get_bounds(const bsvi_estimator *est, double *out, size_t n);

/**
 * @brief Number of decoder targets in the last compute: B*T (see the table above). Infallible.
 * @param est Handle or NULL. @return B*T, 0 before any compute.
 * @since 0.1.0
 */
BSVI_API size_t bsvi_estimator_num_targets(const bsvi_estimator *est);

/**
 * @brief Copy out the decoder targets of the last compute, ordered by data point then slot.
 * @param est Handle.
 * @param n Must equal bsvi_estimator_num_targets().
 * @param data_index Output n data-point indices, or NULL.
 * @param slot Output n sample/buffer indices, or NULL.
 * @param z Output n*dim latents, or NULL (must be NULL for GIWAE, whose latents the host holds).
 * @param coef Output n coefficients (each data point's sum to 1), or NULL.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_SIZE_MISMATCH, ::BSVI_ERR_BAD_STATE
 *         (no result; z requested from GIWAE).
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_estimator_get_targets(const bsvi_estimator *est, size_t n,
                                                size_t *data_index, size_t *slot, double *z,
                                                double *coef);

/**
 * @brief Copy out the encoder gradient d/dlambda_0 of each data point's bound objective.
 * @param est Handle. @param batch Must equal bsvi_estimator_batch().
 * @param d_mean Output batch*dim, or NULL. @param d_log_std Output batch*dim, or NULL.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_SIZE_MISMATCH,
 *         ::BSVI_ERR_BAD_STATE (no result, or GIWAE).
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_estimator_get_encoder_grad(const bsvi_estimator *est, size_t batch,
                                                     double *d_mean, double *d_log_std);

/**
 * @brief Message describing the last error on this handle ("" if none). Infallible.
 * @param est Handle or NULL. @return String owned by the handle (static for NULL).
 * @since 0.1.0
 */
BSVI_API const char *bsvi_estimator_last_error(const bsvi_estimator *est);

BSVI_END_DECLS

#endif /* BSVI_ESTIMATOR_H */
