/**
 * @file trajectory.h
 * @brief The SVI buffer: every proposal, sample and weight of a refinement.
 *
 * A trajectory is filled by bsvi_svi_run(). For a batch of B data points,
 * k steps and dimension d it holds, for each data point b and buffer slot
 * i = 0..k: lambda_i = (mean_i, log-std_i), the recorded sample z_i ~ q(.; lambda_i),
 * log p(x_b, z_i), log q(z_i; lambda_i) and log w_i = log p - log q; plus the
 * encoder gradient d/dlambda_0 log w at lambda_0.
 *
 * Layouts (all row-major): per-slot scalars are B*(k+1), entry b*(k+1) + i;
 * per-slot vectors are B*(k+1)*d, row b*(k+1) + i.
 *
 * Storage grows on demand and is reused: a trajectory used for batches of the
 * same shape allocates nothing after the first run. On a failed run the
 * trajectory keeps its previous contents.
 *
 * While bsvi_svi_run() fills a trajectory it is held (see status.h): its callbacks can read
 * the previous contents, but another run into it returns ::BSVI_ERR_REENTRANT, and
 * destroying it is deferred until the run returns.
 *
 */
#ifndef BSVI_TRAJECTORY_H
#define BSVI_TRAJECTORY_H

#include <stddef.h>

#include "bsvi/export.h"
#include "bsvi/status.h"

BSVI_BEGIN_DECLS

/** @brief Opaque trajectory (buffer) handle. */
typedef struct bsvi_trajectory bsvi_trajectory;

/** @brief Buffer weights handle (declared again, identically, in weights.h, which creates it). */
typedef struct bsvi_buffer_weights bsvi_buffer_weights;

/**
 * @brief Create an empty trajectory.
 * @param out Receives the handle (caller frees with bsvi_trajectory_destroy()); NULL on failure.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_NO_MEMORY.
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_trajectory_create(bsvi_trajectory **out);

/**
 * @brief Destroy a trajectory; NULL is ignored. Infallible.
 *
 * Called from a callback of the bsvi_svi_run() filling it, the free is deferred until the
 * run returns; the handle must not be used after this call.
 * @param t Handle to free.
 * @since 0.1.0
 */
BSVI_API void bsvi_trajectory_destroy(bsvi_trajectory *t);

/**
 * @brief Number of data points held. @param t Handle or NULL.
 * @return B, or 0 when empty or NULL. Infallible.
 * @since 0.1.0
 */
BSVI_API size_t bsvi_trajectory_batch(const bsvi_trajectory *t);

/**
 * @brief Number of SVI steps k (the buffer has k+1 slots). @param t Handle or NULL.
 * @return k, or 0 when empty or NULL (check bsvi_trajectory_batch() to tell them apart). Infallible.
 * @since 0.1.0
 */
BSVI_API size_t bsvi_trajectory_steps(const bsvi_trajectory *t);

/**
 * @brief Latent dimension. @param t Handle or NULL. @return d, or 0 when empty or NULL. Infallible.
 * @since 0.1.0
 */
BSVI_API size_t bsvi_trajectory_dim(const bsvi_trajectory *t);

/**
 * @brief Whether the recorded samples were drawn independently of the update samples (BSVI-DS).
 * @param t Handle or NULL. @return 1 or 0 (0 for NULL or empty). Infallible.
 * @since 0.1.0
 */
BSVI_API int bsvi_trajectory_is_double_sampled(const bsvi_trajectory *t);

/**
 * @brief Copy out log w_i for every data point and slot.
 * @param t Non-empty trajectory. @param out Output B*(k+1) (not NULL).
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_BAD_STATE (empty).
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_trajectory_get_log_weights(const bsvi_trajectory *t, double *out);

/**
 * @brief Copy out log p(x_b, z_i). @param t Non-empty trajectory. @param out Output B*(k+1).
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_BAD_STATE (empty).
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_trajectory_get_log_joint(const bsvi_trajectory *t, double *out);

/**
 * @brief Copy out log q(z_i; lambda_i). @param t Non-empty trajectory. @param out Output B*(k+1).
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_BAD_STATE (empty).
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_trajectory_get_log_proposal(const bsvi_trajectory *t, double *out);

/**
 * @brief Copy out the recorded samples z_i. @param t Non-empty trajectory.
 * @param z Output B*(k+1)*d (not NULL).
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_BAD_STATE (empty).
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_trajectory_get_latents(const bsvi_trajectory *t, double *z);

/**
 * @brief Copy out the proposal parameters lambda_i.
 * @param t Non-empty trajectory.
 * @param mean Output B*(k+1)*d, or NULL to skip.
 * @param log_std Output B*(k+1)*d, or NULL to skip.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT (t NULL), ::BSVI_ERR_BAD_STATE (empty).
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_trajectory_get_params(const bsvi_trajectory *t, double *mean,
                                                double *log_std);

/**
 * @brief Copy out the encoder gradient d/dlambda_0 log w(z; lambda_0) per data point.
 *
 * This is the SVI update direction at step 0 (before step-size, momentum,
 * Adam or clipping), in the gradient form the SVI handle was configured with,
 * averaged over its samples per step. The host chains it through its encoder.
 * @param t Non-empty trajectory.
 * @param d_mean Output B*d, or NULL to skip.
 * @param d_log_std Output B*d, or NULL to skip.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT (t NULL), ::BSVI_ERR_BAD_STATE (empty).
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_trajectory_get_encoder_grad(const bsvi_trajectory *t, double *d_mean,
                                                      double *d_log_std);

/**
 * @brief SVI steps each data point actually took.
 *
 * k for every data point unless the SVI handle used ::BSVI_DIVERGENCE_FREEZE
 * and the point's step i diverged, in which case it is i (its slots i+1..k were
 * drawn from lambda_i).
 * @param t Non-empty trajectory. @param out Output, B entries (not NULL).
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_BAD_STATE (empty).
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_trajectory_get_steps_taken(const bsvi_trajectory *t, size_t *out);

/**
 * @brief Number of data points that stopped refining early (diverged under the freeze policy).
 * @param t Handle or NULL. @return The count; 0 for NULL or empty. Infallible.
 * @since 0.1.0
 */
BSVI_API size_t bsvi_trajectory_num_diverged(const bsvi_trajectory *t);

/** @brief Training-health metrics of a batch (the paper's Figure 6 quantities). */
typedef struct bsvi_health {
    double svi0;       /**< Mean of log w_0 over the data points where it is finite. */
    double svik;       /**< Mean of log w_k over the data points where it is finite. */
    double bsvik;      /**< Mean of LSE_i(log pi_i + log w_i) over the points where it is finite. */
    size_t zero_svi0;  /**< Data points left out of svi0 (log w_0 = -INFINITY). */
    size_t zero_svik;  /**< Data points left out of svik. */
    size_t zero_bsvik; /**< Data points left out of bsvik (every weight zero). */
} bsvi_health;

/**
 * @brief Training-health metrics of a batch: SVI-0, SVI-k and BSVI-k means.
 *
 * Means are over the data points whose value is finite (computed without overflow), with
 * the number left out beside each; a mean over no data point is -INFINITY.
 * @param t Non-empty trajectory.
 * @param pi Buffer weights with k+1 slots, or NULL for uniform (read only; see weights.h).
 * @param out Output (not NULL).
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_BAD_STATE (empty),
 *         ::BSVI_ERR_SIZE_MISMATCH (pi's size != k+1), ::BSVI_ERR_NO_MEMORY (k+1 above 64 needs a
 *         scratch of k+1 doubles).
 * @since 0.2.0
 */
BSVI_API bsvi_status bsvi_trajectory_health(const bsvi_trajectory *t,
                                            const bsvi_buffer_weights *pi,
                                            bsvi_health *out);

/**
 * @brief Message describing the last error on this handle ("" if none). Infallible.
 * @param t Handle or NULL. @return String owned by the handle (static for NULL).
 * @since 0.1.0
 */
BSVI_API const char *bsvi_trajectory_last_error(const bsvi_trajectory *t);

BSVI_END_DECLS

#endif /* BSVI_TRAJECTORY_H */
