/**
 * @file estimator.h
 * @brief Bound estimators: ELBO, IWAE-K, SVI-k, BSVI, BSVI-DS, BSVI-SIR and generalised IWAE.
 *
 * An estimator handle holds the results of its last computation and the workspace to
 * compute them; which bound is computed is the function called, and each function takes
 * exactly its inputs:
 *
 * | function                     | input                               | bound                        | T   | coefficient |
 * |------------------------------|-------------------------------------|------------------------------|-----|-------------|
 * | bsvi_estimator_elbo()        | model + proposal, gradient form     | log w(z_0; lambda_0)         | 1   | 1           |
 * | bsvi_estimator_iwae()        | model + proposal, K, gradient form  | LSE_s log w_s - log K        | K   | softmax(log w) |
 * | bsvi_estimator_svi()         | trajectory                          | log w_k                      | 1   | 1           |
 * | bsvi_estimator_bsvi()        | trajectory, pi                      | LSE_i(log pi_i + log w_i)    | k+1 | r = softmax(log pi + log w) |
 * | bsvi_estimator_bsvi_sir()    | trajectory, pi, M                   | as BSVI                      | M   | 1/M, slots drawn from r |
 * | bsvi_estimator_giwae()       | host log p and log q terms, pi      | LSE_i(log pi_i + log p_i - log q_i) | n | r   |
 *
 * BSVI over a double-sampled trajectory (bsvi_svi_options::double_sampling) is BSVI-DS
 * (bsvi_estimator_result_kind() says which). For a batch of B data points a result holds:
 * - the per-data-point bound value (a stochastic lower bound on log p(x_b));
 * - decoder gradient targets: T triples (data point b, latent z, coefficient c) per data
 *   point such that d/dtheta bound_b = sum c * d/dtheta log p(x_b, z) at fixed z. Each
 *   target also names its slot (the sample or buffer index it came from) and its log w;
 * - the encoder gradient d/dlambda_0 of the bound's encoder objective, per data point
 *   (not for GIWAE, whose proposal the host owns).
 *
 * Encoder gradient: ELBO uses the given form at z_0 (pathwise, STL or analytic KL); IWAE
 * uses sum_s wbar_s d/dlambda log w_s (::BSVI_GRAD_PATHWISE) or the doubly reparameterised
 * sum_s wbar_s^2 (STL gradient of log w_s) (::BSVI_GRAD_DREG). STL is refused for IWAE:
 * its IWAE gradient is biased (Tucker et al. 2018); DReG is the unbiased form. Trajectory
 * bounds return the trajectory's encoder gradient (bsvi_trajectory_get_encoder_grad()).
 * The bound values do not depend on the gradient form.
 *
 * Buffer weights pi (BSVI, BSVI-SIR, GIWAE) are read from a ::bsvi_buffer_weights handle
 * (NULL: uniform) and never changed: optimising pi is bsvi_buffer_weights_accumulate() and
 * bsvi_buffer_weights_step(). Computing a bound changes nothing but this handle's results,
 * its call counter and its statistics.
 *
 * Data points with zero density: a data point whose weights are all zero (every sample's
 * log p is -INFINITY) has the bound -INFINITY, coefficients 0 (its targets' latents are
 * still given), a zero encoder gradient from ELBO and IWAE (trajectory bounds pass the
 * trajectory's on), and is counted by bsvi_estimator_num_zero_points();
 * the batch's other results are computed as usual. Under ::BSVI_POINTS_FAIL
 * (bsvi_estimator_set_point_policy()) such a batch fails with ::BSVI_ERR_NUMERIC instead.
 * SVI-k looks at the last slot only; ELBO at its one sample.
 *
 * Thread rules: one handle per thread.
 *
 * Callbacks: bsvi_estimator_elbo() and bsvi_estimator_iwae() call the model and hold the
 * estimator, the model and the proposal until they return (see status.h). From the
 * callback, the estimator's const functions (its previous results) work, its other
 * functions return ::BSVI_ERR_REENTRANT, and destroying it is deferred until the compute
 * returns; other estimators, SVI handles and evaluators may be used with the same model
 * and proposal. The other computes call no host code.
 */
#ifndef BSVI_ESTIMATOR_H
#define BSVI_ESTIMATOR_H

#include <stddef.h>
#include <stdint.h>

#include "bsvi/export.h"
#include "bsvi/model.h"
#include "bsvi/proposal.h"
#include "bsvi/stats.h"
#include "bsvi/status.h"
#include "bsvi/svi.h"
#include "bsvi/trajectory.h"
#include "bsvi/weights.h"

BSVI_BEGIN_DECLS

/** @brief Which bound a result holds. Values are never renumbered. */
typedef enum bsvi_bound {
    BSVI_BOUND_ELBO = 0,     /**< Single-sample ELBO (VAE). */
    BSVI_BOUND_IWAE = 1,     /**< Importance-weighted bound with K samples. */
    BSVI_BOUND_SVI = 2,      /**< SVI-k: the last weight of the trajectory. */
    BSVI_BOUND_BSVI = 3,     /**< Buffered SVI. */
    BSVI_BOUND_BSVI_DS = 4,  /**< Buffered SVI over a double-sampled trajectory. */
    BSVI_BOUND_BSVI_SIR = 5, /**< Buffered SVI with M sampling-importance-resampling targets. */
    BSVI_BOUND_GIWAE = 6     /**< Generalised IWAE from host-supplied terms. */
} bsvi_bound;

/**
 * @brief Name of a bound: "elbo", "iwae", "svi", "bsvi", "bsvi-ds", "bsvi-sir", "giwae".
 * @param kind Any value. @return A static string; NULL for a value not in ::bsvi_bound.
 *         Infallible.
 * @since 0.2.0
 */
BSVI_API const char *bsvi_bound_name(bsvi_bound kind);

/**
 * @brief Parse a name written by bsvi_bound_name() (exact match).
 * @param name NUL-terminated string. @param out Receives the value.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_BAD_VALUE (unknown name; @p out unchanged).
 * @since 0.2.0
 */
BSVI_API bsvi_status bsvi_bound_from_name(const char *name, bsvi_bound *out);

/** @brief What a batch computation does with a data point of zero density. Never renumbered. */
typedef enum bsvi_point_policy {
    BSVI_POINTS_REPORT = 0, /**< Bound -INFINITY for that point, the rest intact (default). */
    BSVI_POINTS_FAIL = 1    /**< Fail the whole call with ::BSVI_ERR_NUMERIC. */
} bsvi_point_policy;

/** @brief Opaque estimator handle. */
typedef struct bsvi_estimator bsvi_estimator;

/**
 * @brief Create an estimator for latent dimension @p dim (seed 0, ::BSVI_POINTS_REPORT).
 * @param dim Latent dimension, 1..::BSVI_MAX_DIM.
 * @param out Receives the handle (caller frees with bsvi_estimator_destroy()); NULL on failure.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_ZERO_SIZE, ::BSVI_ERR_OUT_OF_RANGE,
 *         ::BSVI_ERR_NO_MEMORY.
 * @since 0.2.0
 */
BSVI_API bsvi_status bsvi_estimator_create(size_t dim, bsvi_estimator **out);

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
 * @brief Latent dimension. @param est Handle or NULL. @return d (0 for NULL). Infallible.
 * @since 0.2.0
 */
BSVI_API size_t bsvi_estimator_dim(const bsvi_estimator *est);

/**
 * @brief Set the seed and reset the call counter (see rng.h).
 * @param est Handle. @param seed Any value.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT,
 *         ::BSVI_ERR_REENTRANT (the handle is held by a running call; see status.h).
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_estimator_set_seed(bsvi_estimator *est, uint64_t seed);

/**
 * @brief Set the call counter and the id of the batch's first data point (see rng.h).
 * @param est Handle. @param counter Call counter. @param id_offset Data-point id offset.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT,
 *         ::BSVI_ERR_REENTRANT (the handle is held by a running call; see status.h).
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_estimator_set_stream(bsvi_estimator *est, uint64_t counter,
                                               uint64_t id_offset);

/**
 * @brief Read the seed, call counter and data-point id offset (see rng.h).
 * @param est Handle. @param seed Output, or NULL. @param counter Output, or NULL.
 * @param id_offset Output, or NULL.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT (est NULL).
 * @since 0.2.0
 */
BSVI_API bsvi_status bsvi_estimator_get_stream(const bsvi_estimator *est, uint64_t *seed,
                                               uint64_t *counter, uint64_t *id_offset);

/**
 * @brief Choose what a compute does with a data point of zero density (see the file comment).
 * @param est Handle. @param policy A ::bsvi_point_policy value.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_BAD_VALUE,
 *         ::BSVI_ERR_REENTRANT (the handle is held by a running call; see status.h).
 * @since 0.2.0
 */
BSVI_API bsvi_status bsvi_estimator_set_point_policy(bsvi_estimator *est,
                                                     bsvi_point_policy policy);

/**
 * @brief Single-sample ELBO of the proposal's batch.
 *
 * Draws one z per data point from @p q with the estimator's stream and calls the model
 * once. Advances the call counter on success.
 * @param est Handle. @param model Model of the estimator's dimension, with a likelihood.
 * @param q Proposal of the estimator's dimension holding lambda_0 (read only).
 * @param form ::BSVI_GRAD_PATHWISE, ::BSVI_GRAD_STL or ::BSVI_GRAD_ANALYTIC_KL.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_BAD_VALUE (form),
 *         ::BSVI_ERR_SIZE_MISMATCH (dimension), ::BSVI_ERR_BAD_STATE (no likelihood;
 *         analytic KL without the standard normal prior), ::BSVI_ERR_CALLBACK_FAILED,
 *         ::BSVI_ERR_CALLBACK_NAN, ::BSVI_ERR_NUMERIC (a zero-density point under
 *         ::BSVI_POINTS_FAIL; a non-finite encoder gradient), ::BSVI_ERR_NO_MEMORY,
 *         ::BSVI_ERR_REENTRANT (see status.h). On error the previous results are unchanged.
 * @since 0.2.0
 */
BSVI_API bsvi_status bsvi_estimator_elbo(bsvi_estimator *est, const bsvi_model *model,
                                         const bsvi_proposal *q, bsvi_grad_form form);

/**
 * @brief IWAE bound with @p K samples per data point.
 *
 * Draws K samples per data point from @p q and calls the model once for all of them.
 * Advances the call counter on success.
 * @param est Handle. @param model Model. @param q Proposal holding lambda_0 (read only).
 * @param K Samples, 1..::BSVI_MAX_SAMPLES.
 * @param form ::BSVI_GRAD_PATHWISE or ::BSVI_GRAD_DREG (STL is refused: biased for IWAE).
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_ZERO_SIZE (K),
 *         ::BSVI_ERR_OUT_OF_RANGE (K, or K*dim beyond the generator's 2^33 normals per
 *         stream, see rng.h), ::BSVI_ERR_BAD_VALUE (form), ::BSVI_ERR_SIZE_MISMATCH
 *         (dimension), ::BSVI_ERR_BAD_STATE (no likelihood), ::BSVI_ERR_CALLBACK_FAILED,
 *         ::BSVI_ERR_CALLBACK_NAN, ::BSVI_ERR_NUMERIC (a zero-density point under
 *         ::BSVI_POINTS_FAIL; a non-finite encoder gradient), ::BSVI_ERR_NO_MEMORY,
 *         ::BSVI_ERR_REENTRANT (see status.h). On error the previous results are unchanged.
 * @since 0.2.0
 */
BSVI_API bsvi_status bsvi_estimator_iwae(bsvi_estimator *est, const bsvi_model *model,
                                         const bsvi_proposal *q, size_t K, bsvi_grad_form form);

/**
 * @brief SVI-k: the bound log w_k of the trajectory's last slot.
 * @param est Handle. @param traj Non-empty trajectory of the estimator's dimension.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_SIZE_MISMATCH,
 *         ::BSVI_ERR_BAD_STATE (empty trajectory), ::BSVI_ERR_NUMERIC (a zero last weight
 *         under ::BSVI_POINTS_FAIL), ::BSVI_ERR_NO_MEMORY, ::BSVI_ERR_REENTRANT.
 *         On error the previous results are unchanged.
 * @since 0.2.0
 */
BSVI_API bsvi_status bsvi_estimator_svi(bsvi_estimator *est, const bsvi_trajectory *traj);

/**
 * @brief BSVI (BSVI-DS over a double-sampled trajectory): k+1 targets with coefficients r.
 * @param est Handle. @param traj Non-empty trajectory of the estimator's dimension.
 * @param pi Buffer weights with k+1 slots (read only), or NULL for uniform.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_SIZE_MISMATCH (dimension, or pi's
 *         size versus k+1), ::BSVI_ERR_BAD_STATE (empty trajectory), ::BSVI_ERR_NUMERIC
 *         (a zero-density point under ::BSVI_POINTS_FAIL), ::BSVI_ERR_NO_MEMORY,
 *         ::BSVI_ERR_REENTRANT. On error the previous results are unchanged.
 * @since 0.2.0
 */
BSVI_API bsvi_status bsvi_estimator_bsvi(bsvi_estimator *est, const bsvi_trajectory *traj,
                                         const bsvi_buffer_weights *pi);

/**
 * @brief BSVI-SIR: the BSVI bound with M targets resampled from r (coefficient 1/M each).
 *
 * Draws M uniforms per data point with the estimator's stream; advances the call counter
 * on success. A zero-density point under ::BSVI_POINTS_REPORT gets M targets of slot 0
 * with coefficient 0.
 * @param est Handle. @param traj Non-empty trajectory. @param pi Buffer weights, or NULL
 *        for uniform. @param M Targets per data point, 1..::BSVI_MAX_SAMPLES.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_ZERO_SIZE (M),
 *         ::BSVI_ERR_OUT_OF_RANGE (M), ::BSVI_ERR_SIZE_MISMATCH (dimension, or pi's size
 *         versus k+1), ::BSVI_ERR_BAD_STATE (empty trajectory), ::BSVI_ERR_NUMERIC (a
 *         zero-density point under ::BSVI_POINTS_FAIL), ::BSVI_ERR_NO_MEMORY,
 *         ::BSVI_ERR_REENTRANT. On error the previous results are unchanged.
 * @since 0.2.0
 */
BSVI_API bsvi_status bsvi_estimator_bsvi_sir(bsvi_estimator *est, const bsvi_trajectory *traj,
                                             const bsvi_buffer_weights *pi, size_t M);

/**
 * @brief Generalised IWAE: bound from host-supplied terms of any joint proposal.
 *
 * bound_b = LSE_i(log pi_i + log_joint[b*n+i] - log_proposal[b*n+i]), where
 * log_proposal[b*n+i] is log q(z_i | z_v(i)) of the host's proposal. Targets carry slot i
 * and coefficient r_bi; they have no latent and the result has no encoder gradient.
 * @param est Handle. @param batch Data points B, 1..::BSVI_MAX_BATCH.
 * @param n Terms per data point, 1..::BSVI_MAX_STEPS+1.
 * @param log_joint B*n values of log p(x_b, z_i) (not NULL). -INFINITY legal; NaN and
 *        +INFINITY refused.
 * @param log_proposal B*n values of log q (not NULL); NaN and -INFINITY are refused
 *        (a sample cannot have zero proposal density).
 * @param pi Buffer weights with @p n slots (read only), or NULL for uniform.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_ZERO_SIZE, ::BSVI_ERR_OUT_OF_RANGE,
 *         ::BSVI_ERR_SIZE_MISMATCH (pi's size != n), ::BSVI_ERR_BAD_VALUE (NaN or an infinite
 *         term as above), ::BSVI_ERR_NUMERIC (a difference overflows to +INFINITY; a
 *         zero-density point under ::BSVI_POINTS_FAIL), ::BSVI_ERR_NO_MEMORY,
 *         ::BSVI_ERR_REENTRANT. On error the previous results are unchanged.
 * @since 0.2.0
 */
BSVI_API bsvi_status bsvi_estimator_giwae(bsvi_estimator *est, size_t batch, size_t n,
                                          const double *log_joint, const double *log_proposal,
                                          const bsvi_buffer_weights *pi);

/**
 * @brief Which bound the last successful compute produced.
 * @param est Handle. @param out Receives the kind.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_BAD_STATE (no result yet).
 * @since 0.2.0
 */
BSVI_API bsvi_status bsvi_estimator_result_kind(const bsvi_estimator *est, bsvi_bound *out);

/**
 * @brief Number of data points in the last successful compute (0 before any). Infallible.
 * @param est Handle or NULL. @return B.
 * @since 0.1.0
 */
BSVI_API size_t bsvi_estimator_batch(const bsvi_estimator *est);

/**
 * @brief Data points of the last result whose bound is -INFINITY (zero density). Infallible.
 * @param est Handle or NULL. @return The count (0 before any compute or for NULL).
 * @since 0.2.0
 */
BSVI_API size_t bsvi_estimator_num_zero_points(const bsvi_estimator *est);

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
 * @param coef Output n coefficients (each data point's sum to 1, or are all 0 for a
 *        zero-density point), or NULL.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_SIZE_MISMATCH, ::BSVI_ERR_BAD_STATE
 *         (no result; z requested from GIWAE).
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_estimator_get_targets(const bsvi_estimator *est, size_t n,
                                                size_t *data_index, size_t *slot, double *z,
                                                double *coef);

/**
 * @brief Copy out each target's log w (ELBO, IWAE: per sample; trajectory bounds: of the
 *        target's slot; GIWAE: log_joint - log_proposal), in the order of the targets.
 * @param est Handle. @param n Must equal bsvi_estimator_num_targets(). @param log_w Output n.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_SIZE_MISMATCH, ::BSVI_ERR_BAD_STATE (no result).
 * @since 0.2.0
 */
BSVI_API bsvi_status bsvi_estimator_get_target_log_weights(const bsvi_estimator *est, size_t n,
                                                           double *log_w);

/**
 * @brief Copy out the standard-normal noise eps of each target's sample z = mean + sigma*eps
 *        (ELBO and IWAE results only).
 * @param est Handle. @param n Must equal bsvi_estimator_num_targets(). @param eps Output n*dim.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_SIZE_MISMATCH,
 *         ::BSVI_ERR_BAD_STATE (no result, or a trajectory or GIWAE result).
 * @since 0.2.0
 */
BSVI_API bsvi_status bsvi_estimator_get_noise(const bsvi_estimator *est, size_t n, double *eps);

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
 * @brief Copy out the handle's counters (see stats.h).
 * @param est Handle. @param out Output (not NULL).
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT.
 * @since 0.2.0
 */
BSVI_API bsvi_status bsvi_estimator_get_stats(const bsvi_estimator *est, bsvi_stats *out);

/**
 * @brief Set the handle's counters to 0.
 * @param est Handle. @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_REENTRANT.
 * @since 0.2.0
 */
BSVI_API bsvi_status bsvi_estimator_reset_stats(bsvi_estimator *est);

/**
 * @brief Message describing the last error on this handle ("" if none). Infallible.
 * @param est Handle or NULL. @return String owned by the handle (static for NULL).
 * @since 0.1.0
 */
BSVI_API const char *bsvi_estimator_last_error(const bsvi_estimator *est);

BSVI_END_DECLS

#endif /* BSVI_ESTIMATOR_H */
