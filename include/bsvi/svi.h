/**
 * @file svi.h
 * @brief SVI-k refinement of the encoder's proposal (Algorithm 1 of the BSVI paper).
 *
 * Starting from lambda_0 (the proposal's parameters), for i = 0..k the
 * refinement draws z_i ~ q(.; lambda_i), records log w_i, and for i < k takes
 * a gradient-ASCENT step on log w with respect to lambda:
 * lambda_{i+1} = lambda_i + eta * direction_i. Nothing is differentiated
 * through the steps. All latent points of a step (every data point, every
 * sample) go to the host in one batched callback.
 *
 * Gradient forms (one sample, eps held fixed, g = d/dz log p(x, z)):
 * - ::BSVI_GRAD_PATHWISE: d/dmean = g, d/dlogstd = g*sigma*eps + 1 (the paper's eq. 6).
 * - ::BSVI_GRAD_STL (sticking the landing): d/dmean = g + eps/sigma, d/dlogstd = g*sigma*eps + eps^2.
 * - ::BSVI_GRAD_ANALYTIC_KL (standard normal prior only; g_lik = likelihood gradient):
 *   d/dmean = g_lik - mean, d/dlogstd = g_lik*sigma*eps - (sigma^2 - 1).
 *
 * Step rules: ::BSVI_STEP_GRADIENT (lambda += eta*d), ::BSVI_STEP_MOMENTUM
 * (m = beta*m + d; lambda += eta*m; beta = 0.5 by default), ::BSVI_STEP_ADAM
 * (per data point and coordinate, bias-corrected). Optional per-data-point
 * clipping rescales d (over all 2*dim coordinates) to norm at most the clip value.
 *
 * A step that would leave a log-std outside [::BSVI_MIN_LOG_STD, ::BSVI_MAX_LOG_STD]
 * or a mean non-finite is divergence. Under ::BSVI_DIVERGENCE_FAIL (the
 * default) the run stops with ::BSVI_ERR_NUMERIC naming the data point and
 * step; under ::BSVI_DIVERGENCE_FREEZE that data point alone stops refining:
 * the step is not taken, its remaining buffer slots are drawn from its last
 * finite proposal (still a valid sequential proposal, so every bound stays a
 * lower bound), the other data points are unaffected, and
 * bsvi_trajectory_get_steps_taken() / bsvi_trajectory_num_diverged() report it.
 *
 * A sample whose log p is -INFINITY (log w undefined) contributes nothing to
 * the step direction, entropy term included; the average still divides by the
 * number of samples per step.
 *
 * Memory: the handle grows its workspace on demand at the start of a run; a
 * handle used for batches of one shape allocates nothing after the first run,
 * and no step allocates.
 *
 * Thread rules: one handle per thread.
 *
 * Callbacks (the model's, the progress callback) may call back into the library. During
 * bsvi_svi_run() the SVI handle, the model, the proposal and the output trajectory are held
 * (see status.h): the callback may read them (the trajectory still holds the previous run's
 * buffer until the run succeeds) and may run other SVI handles, estimators and evaluators
 * on the same model and proposal, but calls that would change a held handle return
 * ::BSVI_ERR_REENTRANT and change nothing: every setter and bsvi_svi_run() of this SVI
 * handle, a run into the held trajectory, the proposal's and the model's setters. Destroying
 * a held handle is deferred until the run returns.
 *
 * Huge directions: clipping scales by the largest entry before squaring, so a finite
 * direction of any size is clipped to the clip norm, never to 0. A step whose optimiser
 * state overflows (an Adam moment estimate that is no longer finite) is divergence, like a
 * non-finite mean.
 */
#ifndef BSVI_SVI_H
#define BSVI_SVI_H

#include <stddef.h>
#include <stdint.h>

#include "bsvi/export.h"
#include "bsvi/model.h"
#include "bsvi/proposal.h"
#include "bsvi/stats.h"
#include "bsvi/status.h"
#include "bsvi/trajectory.h"

BSVI_BEGIN_DECLS

/** @brief Largest number of SVI steps k. */
#define BSVI_MAX_STEPS ((size_t)1 << 20)

/** @brief Update rule applied to the gradient direction. Values are never renumbered. */
typedef enum bsvi_step_rule {
    BSVI_STEP_GRADIENT = 0, /**< Plain gradient ascent, as in the paper. */
    BSVI_STEP_MOMENTUM = 1, /**< Heavy-ball momentum (as in semi-amortised VAEs). */
    BSVI_STEP_ADAM = 2      /**< Adam, per data point. */
} bsvi_step_rule;

/** @brief Estimator of d/dlambda log w. Values are never renumbered. */
typedef enum bsvi_grad_form {
    BSVI_GRAD_PATHWISE = 0,    /**< Total pathwise derivative. */
    BSVI_GRAD_STL = 1,         /**< Sticking the landing (score term dropped). */
    BSVI_GRAD_ANALYTIC_KL = 2, /**< Analytic KL to N(0, I); needs the standard normal prior. */
    BSVI_GRAD_DREG = 3         /**< Doubly reparameterised IWAE gradient (IWAE estimator only). */
} bsvi_grad_form;

/** @brief What a run does when a data point's step diverges. Values are never renumbered. */
typedef enum bsvi_divergence_policy {
    BSVI_DIVERGENCE_FAIL = 0,  /**< Fail the whole run with ::BSVI_ERR_NUMERIC (default). */
    BSVI_DIVERGENCE_FREEZE = 1 /**< Stop refining that data point; report it in the trajectory. */
} bsvi_divergence_policy;

/**
 * @brief Name of a step rule: "gradient", "momentum", "adam".
 * @param rule Any value. @return A static string; NULL for an unknown value. Infallible.
 * @since 0.2.0
 */
BSVI_API const char *bsvi_step_rule_name(bsvi_step_rule rule);

/**
 * @brief Parse a name written by bsvi_step_rule_name() (exact match).
 * @param name NUL-terminated string. @param out Receives the value.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_BAD_VALUE (unknown; @p out unchanged).
 * @since 0.2.0
 */
BSVI_API bsvi_status bsvi_step_rule_from_name(const char *name, bsvi_step_rule *out);

/**
 * @brief Name of a gradient form: "pathwise", "stl", "analytic-kl", "dreg".
 * @param form Any value. @return A static string; NULL for an unknown value. Infallible.
 * @since 0.2.0
 */
BSVI_API const char *bsvi_grad_form_name(bsvi_grad_form form);

/**
 * @brief Parse a name written by bsvi_grad_form_name() (exact match).
 * @param name NUL-terminated string. @param out Receives the value.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_BAD_VALUE (unknown; @p out unchanged).
 * @since 0.2.0
 */
BSVI_API bsvi_status bsvi_grad_form_from_name(const char *name, bsvi_grad_form *out);

/**
 * @brief Name of a divergence policy: "fail", "freeze".
 * @param policy Any value. @return A static string; NULL for an unknown value. Infallible.
 * @since 0.2.0
 */
BSVI_API const char *bsvi_divergence_policy_name(bsvi_divergence_policy policy);

/**
 * @brief Parse a name written by bsvi_divergence_policy_name() (exact match).
 * @param name NUL-terminated string. @param out Receives the value.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_BAD_VALUE (unknown; @p out unchanged).
 * @since 0.2.0
 */
BSVI_API bsvi_status bsvi_divergence_policy_from_name(const char *name,
                                                      bsvi_divergence_policy *out);

/**
 * @brief Every setting of an SVI refinement but its seed and progress callback.
 *
 * Used whole by bsvi_svi_set_options() and bsvi_evaluator_set_svi_options() (which ignores
 * the steps field: an evaluation is given its K). Start from bsvi_svi_options_default() and
 * change fields. Fields are only ever appended, and only in a new minor version.
 */
typedef struct bsvi_svi_options {
    size_t steps;                      /**< k, 0..::BSVI_MAX_STEPS (default 10). */
    double step_size;                  /**< eta, finite and > 0 (default 1e-3). */
    size_t samples_per_step;           /**< m, 1..::BSVI_MAX_SAMPLES (default 1). */
    bsvi_step_rule rule;               /**< Update rule (default ::BSVI_STEP_GRADIENT). */
    double momentum;                   /**< beta of ::BSVI_STEP_MOMENTUM, [0, 1) (default 0.5). */
    double adam_beta1;                 /**< [0, 1) (default 0.9). */
    double adam_beta2;                 /**< [0, 1) (default 0.999). */
    double adam_epsilon;               /**< Finite, > 0 (default 1e-8). */
    double clip_norm;                  /**< Per-point direction norm bound, 0 = none (default 0). */
    bsvi_grad_form grad_form;          /**< Pathwise, STL or analytic KL (default pathwise). */
    int double_sampling;               /**< 1: BSVI-DS recorded samples (default 0). */
    bsvi_divergence_policy divergence; /**< Default ::BSVI_DIVERGENCE_FAIL. */
} bsvi_svi_options;

/**
 * @brief The defaults listed in ::bsvi_svi_options. Infallible.
 * @return The options of a newly created SVI handle.
 * @since 0.2.0
 */
BSVI_API bsvi_svi_options bsvi_svi_options_default(void);

/** @brief Opaque SVI refinement handle. */
typedef struct bsvi_svi bsvi_svi;

/**
 * @brief Create an SVI refinement for latent dimension @p dim.
 *
 * Options: bsvi_svi_options_default(); seed 0. The setters below change one option each
 * (the same checks as bsvi_svi_set_options()).
 * @param dim Latent dimension, 1..::BSVI_MAX_DIM.
 * @param out Receives the handle (caller frees with bsvi_svi_destroy()); NULL on failure.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_ZERO_SIZE,
 *         ::BSVI_ERR_OUT_OF_RANGE, ::BSVI_ERR_NO_MEMORY.
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_svi_create(size_t dim, bsvi_svi **out);

/**
 * @brief Destroy an SVI handle; NULL is ignored. Infallible.
 *
 * Called from a callback of a running call that holds the handle, the free is deferred
 * until that call returns; the handle must not be used after this call.
 * @param svi Handle to free.
 * @since 0.1.0
 */
BSVI_API void bsvi_svi_destroy(bsvi_svi *svi);

/**
 * @brief Set the number of steps k (the buffer then has k+1 slots).
 * @param svi Handle. @param k 0..::BSVI_MAX_STEPS.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_OUT_OF_RANGE.
 *         ::BSVI_ERR_REENTRANT (the handle is held by a running call; see status.h).
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_svi_set_steps(bsvi_svi *svi, size_t k);

/**
 * @brief Set the step size eta. @param svi Handle. @param eta Finite and > 0.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_BAD_VALUE.
 *         ::BSVI_ERR_REENTRANT (the handle is held by a running call; see status.h).
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_svi_set_step_size(bsvi_svi *svi, double eta);

/**
 * @brief Set the number of samples whose gradients are averaged per step.
 * @param svi Handle. @param m 1..::BSVI_MAX_SAMPLES.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_ZERO_SIZE, ::BSVI_ERR_OUT_OF_RANGE.
 *         ::BSVI_ERR_REENTRANT (the handle is held by a running call; see status.h).
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_svi_set_samples_per_step(bsvi_svi *svi, size_t m);

/**
 * @brief Set the step rule. @param svi Handle. @param rule A ::bsvi_step_rule value.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_BAD_VALUE (unknown rule).
 *         ::BSVI_ERR_REENTRANT (the handle is held by a running call; see status.h).
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_svi_set_step_rule(bsvi_svi *svi, bsvi_step_rule rule);

/**
 * @brief Set the momentum coefficient beta used by ::BSVI_STEP_MOMENTUM.
 * @param svi Handle. @param beta In [0, 1).
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_BAD_VALUE.
 *         ::BSVI_ERR_REENTRANT (the handle is held by a running call; see status.h).
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_svi_set_momentum(bsvi_svi *svi, double beta);

/**
 * @brief Set Adam's parameters used by ::BSVI_STEP_ADAM.
 * @param svi Handle. @param beta1 In [0, 1). @param beta2 In [0, 1). @param epsilon Finite, > 0.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_BAD_VALUE.
 *         ::BSVI_ERR_REENTRANT (the handle is held by a running call; see status.h).
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_svi_set_adam(bsvi_svi *svi, double beta1, double beta2,
                                       double epsilon);

/**
 * @brief Clip each data point's step direction to Euclidean norm at most @p max_norm.
 * @param svi Handle. @param max_norm Finite and > 0, or 0 to disable clipping.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_BAD_VALUE.
 *         ::BSVI_ERR_REENTRANT (the handle is held by a running call; see status.h).
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_svi_set_clip_norm(bsvi_svi *svi, double max_norm);

/**
 * @brief Set the gradient form (pathwise, STL or analytic KL; DREG is refused).
 * @param svi Handle. @param form A ::bsvi_grad_form value.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_BAD_VALUE.
 *         ::BSVI_ERR_REENTRANT (the handle is held by a running call; see status.h).
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_svi_set_grad_form(bsvi_svi *svi, bsvi_grad_form form);

/**
 * @brief Enable double sampling (BSVI-DS): each step's recorded z_i is drawn
 *        independently of the samples used for the update.
 * @param svi Handle. @param enabled 0 or 1.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_BAD_VALUE (not 0 or 1).
 *         ::BSVI_ERR_REENTRANT (the handle is held by a running call; see status.h).
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_svi_set_double_sampling(bsvi_svi *svi, int enabled);

/**
 * @brief Choose what happens when a data point's step diverges (see the file comment).
 * @param svi Handle. @param policy A ::bsvi_divergence_policy value.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_BAD_VALUE (unknown policy).
 *         ::BSVI_ERR_REENTRANT (the handle is held by a running call; see status.h).
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_svi_set_divergence_policy(bsvi_svi *svi,
                                                    bsvi_divergence_policy policy);

/**
 * @brief Register a progress callback, called after every SVI step; it can cancel the run.
 * @param svi Handle. @param fn Callback, or NULL to remove it. @param user_data Passed back; not owned.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT (svi NULL).
 *         ::BSVI_ERR_REENTRANT (the handle is held by a running call; see status.h).
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_svi_set_progress(bsvi_svi *svi, bsvi_progress_fn fn, void *user_data);

/**
 * @brief Set the seed and reset the call counter to 0.
 * @param svi Handle. @param seed Any value.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT.
 *         ::BSVI_ERR_REENTRANT (the handle is held by a running call; see status.h).
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_svi_set_seed(bsvi_svi *svi, uint64_t seed);

/**
 * @brief Set the call counter and the id of the batch's first data point (see rng.h).
 * @param svi Handle. @param counter Call counter. @param id_offset Data-point id offset.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT.
 *         ::BSVI_ERR_REENTRANT (the handle is held by a running call; see status.h).
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_svi_set_stream(bsvi_svi *svi, uint64_t counter, uint64_t id_offset);

/**
 * @brief Set every option at once (validated whole: on error nothing changes and the
 *        message names the first bad field).
 * @param svi Handle. @param options Options (not NULL; copied).
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_ZERO_SIZE (samples_per_step),
 *         ::BSVI_ERR_OUT_OF_RANGE (steps, samples_per_step), ::BSVI_ERR_BAD_VALUE (any other
 *         field outside its domain; DREG), ::BSVI_ERR_REENTRANT (see status.h).
 * @since 0.2.0
 */
BSVI_API bsvi_status bsvi_svi_set_options(bsvi_svi *svi, const bsvi_svi_options *options);

/**
 * @brief Copy out the current options (what the setters above have set).
 * @param svi Handle. @param out Output (not NULL).
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT.
 * @since 0.2.0
 */
BSVI_API bsvi_status bsvi_svi_get_options(const bsvi_svi *svi, bsvi_svi_options *out);

/**
 * @brief Read the seed, call counter and data-point id offset (see rng.h).
 * @param svi Handle. @param seed Output, or NULL. @param counter Output, or NULL.
 * @param id_offset Output, or NULL.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT (svi NULL).
 * @since 0.2.0
 */
BSVI_API bsvi_status bsvi_svi_get_stream(const bsvi_svi *svi, uint64_t *seed, uint64_t *counter,
                                         uint64_t *id_offset);

/**
 * @brief Copy out the handle's counters (see stats.h).
 * @param svi Handle. @param out Output (not NULL).
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT.
 * @since 0.2.0
 */
BSVI_API bsvi_status bsvi_svi_get_stats(const bsvi_svi *svi, bsvi_stats *out);

/**
 * @brief Set the handle's counters to 0.
 * @param svi Handle. @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_REENTRANT.
 * @since 0.2.0
 */
BSVI_API bsvi_status bsvi_svi_reset_stats(bsvi_svi *svi);

/**
 * @brief Number of steps k. @param svi Handle or NULL. @return k (0 for NULL). Infallible.
 * @since 0.1.0
 */
BSVI_API size_t bsvi_svi_steps(const bsvi_svi *svi);

/**
 * @brief Step size. @param svi Handle or NULL. @return eta (NaN for NULL). Infallible.
 * @since 0.1.0
 */
BSVI_API double bsvi_svi_step_size(const bsvi_svi *svi);

/**
 * @brief Run k refinement steps from the proposal's current parameters.
 *
 * Reads lambda_0 from @p q (which is not modified), calls the model's
 * callbacks once per step for all data points and samples, and on success
 * replaces the contents of @p out. Advances the call counter on success.
 * @param svi Configured handle.
 * @param model Model of the same dimension, with a likelihood registered.
 * @param q Proposal of the same dimension holding lambda_0.
 * @param out Trajectory receiving the buffer.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_SIZE_MISMATCH,
 *         ::BSVI_ERR_OUT_OF_RANGE (samples per step * dim beyond 2^33, see rng.h),
 *         ::BSVI_ERR_BAD_STATE (no likelihood; analytic KL without the standard
 *         normal prior), ::BSVI_ERR_CALLBACK_FAILED, ::BSVI_ERR_CALLBACK_NAN,
 *         ::BSVI_ERR_NUMERIC (a step produced non-finite parameters),
 *         ::BSVI_ERR_CANCELLED (the progress callback asked to stop),
 *         ::BSVI_ERR_NO_MEMORY, ::BSVI_ERR_REENTRANT (this handle is in use by a running
 *         call, or @p out is being filled by one: see status.h). On error @p out and @p q
 *         are unchanged.
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_svi_run(bsvi_svi *svi, const bsvi_model *model,
                                  const bsvi_proposal *q, bsvi_trajectory *out);

/**
 * @brief Message describing the last error on this handle ("" if none). Infallible.
 * @param svi Handle or NULL. @return String owned by the handle (static for NULL).
 * @since 0.1.0
 */
BSVI_API const char *bsvi_svi_last_error(const bsvi_svi *svi);

BSVI_END_DECLS

#endif /* BSVI_SVI_H */
