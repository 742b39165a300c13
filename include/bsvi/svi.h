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

/* ---- step-size search ---------------------------------------------------------------- */

/** @brief Most trials one bsvi_svi_search_step_size() call makes (and grid points it takes). */
#define BSVI_STEP_SEARCH_MAX_TRIALS 64

/** @brief bsvi_step_search_result::best when no step size tried is safe and improves SVI-k. */
#define BSVI_STEP_SEARCH_NONE ((size_t)-1)

/**
 * @brief Host callback presenting batch @p index of the data the search refines.
 *
 * Sets @p *model (its data bound to batch @p index, e.g. through the model's user data) and
 * @p *proposal (lambda_0 of that batch: the encoder's output, or the host's global
 * variational parameters), both of the SVI handle's dimension; batches may differ in size. The
 * search calls it once per batch and trial, in index order, and runs the refinement before
 * asking for the next batch, so one model and one proposal may be reused for every batch.
 * The same index must present the same data and the same lambda_0 every time (trials are
 * compared point by point).
 * @param user_data The pointer given to bsvi_svi_search_step_size().
 * @param index Batch 0..num_batches-1.
 * @param model Receives the model (not NULL on success).
 * @param proposal Receives the proposal (not NULL on success; it may be changed with
 *        bsvi_proposal_set_params() here: it is not held between batches).
 * @return 0 on success; any other value stops the search with ::BSVI_ERR_CALLBACK_FAILED.
 */
typedef int (*bsvi_batch_fn)(void *user_data, size_t index, const bsvi_model **model,
                             const bsvi_proposal **proposal);

/** @brief How bsvi_svi_search_step_size() chooses the step sizes it tries. */
typedef struct bsvi_step_search_options {
    /** Step sizes to try, or NULL to search in log space. Each finite and > 0, at most
     *  ::BSVI_STEP_SEARCH_MAX_TRIALS, any order (tried in increasing order, all of them).
     *  Not owned; read during the call only. Default NULL. */
    const double *grid;
    size_t grid_size;   /**< Entries of grid (ignored when grid is NULL). Default 0. */
    double min_step;    /**< Log search: smallest step tried, finite, > 0. Default 1e-4. */
    double max_step;    /**< Log search: largest step tried (the coarse grid ends with it),
                             finite, >= min_step. Default 1. */
    double factor;      /**< Log search: ratio of the coarse grid, > 1. Default sqrt(10). */
    size_t refinements; /**< Log search: rounds around the best, each halving the log
                             spacing, 0..8. Default 2. */
    double margin;      /**< The chosen step is at most (smallest diverging step) / margin;
                             finite, >= 1. Default 2. */
} bsvi_step_search_options;

/** @brief One step size tried by bsvi_svi_search_step_size(), summed over every batch. */
typedef struct bsvi_step_trial {
    double step_size;     /**< eta tried. */
    size_t points;        /**< Data points whose log w_0 and log w_k are both finite. */
    size_t zero_points;   /**< Data points left out: log w_0 or log w_k is -INFINITY. */
    size_t diverged;      /**< Data points whose refinement diverged (frozen: their weights
                               stay valid and are counted in the means). */
    double svi0;          /**< Mean log w_0 over the counted points (SVI-0). */
    double svik;          /**< Mean log w_k over the counted points (SVI-k). */
    double svik_gain;     /**< Mean of log w_k - log w_0 over the counted points. */
    double svik_gain_se;  /**< Standard error of svik_gain (0 for one point). */
    double bsvik_gain;    /**< Mean of LSE_i(log pi_i + log w_i) - log w_k (BSVI-k - SVI-k). */
} bsvi_step_trial;

/** @brief Outcome of bsvi_svi_search_step_size(). */
typedef struct bsvi_step_search_result {
    size_t num_trials;      /**< Trials written, sorted by increasing step size. */
    size_t best;            /**< Index of the chosen trial, or ::BSVI_STEP_SEARCH_NONE. */
    double step_size;       /**< The chosen step size, or NaN when best is NONE. */
    double first_diverging; /**< Smallest step tried at which a point diverged, or was refined
                                 from a finite SVI-0 to zero density (+INFINITY: none). */
    double safe_limit;      /**< first_diverging / margin: no larger step is chosen. */
} bsvi_step_search_result;

/**
 * @brief Default search options: log search from 1e-4 to 1, ratio sqrt(10), 2 refinements,
 *        margin 2. Infallible.
 * @return The defaults (grid NULL).
 * @since 0.2.0
 */
BSVI_API bsvi_step_search_options bsvi_step_search_options_default(void);

/**
 * @brief Choose the SVI step size by measurement: run the refinement at several step sizes
 *        on the host's batches and return, per step size, the SVI-k - SVI-0 gain, the
 *        BSVI-k - SVI-k gain and the number of diverged points, and the best safe step.
 *
 * Every trial refines with the options of @p svi (its rule, k, samples per step, gradient
 * form, clipping, double sampling) except the step size and the divergence policy: a
 * diverging data point is frozen (::BSVI_DIVERGENCE_FREEZE) and counted, never an error.
 * The random numbers are those of @p svi's seed with batch b at call counter c + b (c its
 * counter now) and its data-point id offset, the same for every step size, so trials differ
 * by the step size alone and their gains are compared point by point.
 *
 * Grid: every distinct given step size is tried (repeats once). Log search: the coarse grid
 * min_step * factor^j (j = 0, 1, ...) up to max_step, closed by max_step itself, tried upward
 * and stopped at the first step where a point diverges or is refined to zero density, or,
 * once the best gain exceeds twice its standard error, after two successive trials each
 * below the one before; then @c refinements rounds each try the geometric midpoints on both
 * sides of the best so far (halving the log spacing), within [min_step, max_step] and at
 * most safe_limit.
 *
 * Statistics: the means are over the points whose log w_0 and log w_k are finite; a
 * diverged point is frozen (see ::BSVI_DIVERGENCE_FREEZE), its weights stay valid and enter
 * the means. The best trial: among the trials with no diverged point, no point refined from
 * a finite log w_0 to log w_k = -INFINITY, and a step size at most safe_limit =
 * first_diverging / margin, the one with the largest svik_gain, if that gain is > 0 (ties:
 * the smaller step). A point whose log w_0 is -INFINITY is left out of every trial alike
 * (it is the same draw at every step size) and does not disqualify any. Otherwise
 * ::BSVI_STEP_SEARCH_NONE: no step size tried refines safely, so run smaller step sizes (or
 * fix the model) before training. A gain within about two standard errors of 0 is noise:
 * compare svik_gain with svik_gain_se. Apply the choice with
 * bsvi_svi_set_step_size(svi, result.step_size).
 *
 * Cost: one bsvi_svi_run() per batch and trial (trials * num_batches * (k+1) batched
 * callbacks). Allocates a scratch SVI handle and trajectory per call (released before it
 * returns). @p svi is held during the call (status.h) and is not changed: its options,
 * stream and counters are as before, and on error only its last error message is set. Its
 * progress callback is not called.
 * @param svi Configured SVI handle, k >= 1.
 * @param batches Host callback presenting each batch (not NULL).
 * @param user_data Passed to @p batches; not owned.
 * @param num_batches Batches 1..2^32 per trial.
 * @param pi Buffer weights with k+1 slots for bsvik_gain (read only), or NULL for uniform.
 * @param options Search options, or NULL for bsvi_step_search_options_default().
 * @param trials Output array of @p capacity trials (not NULL).
 * @param capacity Entries of @p trials: at least the grid size; for a log search at least
 *        the coarse points plus 2 per refinement (::BSVI_STEP_SEARCH_MAX_TRIALS always
 *        suffices).
 * @param result Output (not NULL).
 * @return ::BSVI_OK (also when best is ::BSVI_STEP_SEARCH_NONE), ::BSVI_ERR_NULL_ARGUMENT
 *         (svi, batches, trials or result NULL), ::BSVI_ERR_ZERO_SIZE (num_batches 0; a grid
 *         of size 0), ::BSVI_ERR_OUT_OF_RANGE (num_batches above 2^32; a grid of more than
 *         ::BSVI_STEP_SEARCH_MAX_TRIALS; a log search whose coarse points plus 2 per
 *         refinement exceed that; refinements above 8; samples per step * dim beyond the
 *         generator's range, as in bsvi_svi_run()), ::BSVI_ERR_BAD_VALUE (a grid entry,
 *         min_step, max_step, factor or margin outside its domain), ::BSVI_ERR_SIZE_MISMATCH
 *         (capacity too small; pi's size != k+1; a batch's model or proposal of another
 *         dimension), ::BSVI_ERR_BAD_STATE (k = 0; a model without a likelihood; the
 *         analytic-KL gradient with a host prior), ::BSVI_ERR_CALLBACK_FAILED (@p batches
 *         returned non-zero or a NULL pointer, or a model callback failed),
 *         ::BSVI_ERR_CALLBACK_NAN, ::BSVI_ERR_NUMERIC (a non-finite step direction at
 *         lambda_0, as in bsvi_svi_run()), ::BSVI_ERR_NO_MEMORY, ::BSVI_ERR_REENTRANT (@p svi
 *         is held by a running call). On error the outputs are unchanged.
 * @since 0.2.0
 */
BSVI_API bsvi_status bsvi_svi_search_step_size(bsvi_svi *svi, bsvi_batch_fn batches,
                                               void *user_data, size_t num_batches,
                                               const bsvi_buffer_weights *pi,
                                               const bsvi_step_search_options *options,
                                               bsvi_step_trial *trials, size_t capacity,
                                               bsvi_step_search_result *result);

BSVI_END_DECLS

#endif /* BSVI_SVI_H */
