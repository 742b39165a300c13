/**
 * @file model.h
 * @brief The host's latent-variable model p(x, z) = p(z) p(x | z), as batched callbacks.
 *
 * libbsvi never sees the data x or the host's networks. It asks the host to
 * evaluate log p(x_b | z) (and optionally a prior log p(z)) for a batch of
 * latent points, each tagged with the index b of the data point (within the
 * current batch) it belongs to.
 *
 * Thread rules: a model is read-only while other handles evaluate it, so one
 * model may be shared by handles running on different threads provided the
 * host's callbacks are themselves thread-safe. Configure it before sharing.
 * bsvi_model_log_joint() may run concurrently on a shared model: the model's message is
 * stored whole, or not at all when another thread is storing one at that moment (so it may
 * describe another thread's failure; read it once the others are done; the status is
 * always the call's own). Errors of the library's own evaluations go to the calling
 * handle (SVI, estimator, evaluator), never to the model.
 *
 * Callbacks may call back into the library. A running call holds every handle it was given
 * (see status.h): from a callback, the model can be read and evaluated again (by nested
 * runs, estimates and bsvi_model_log_joint() on other handles), but its setters return
 * ::BSVI_ERR_REENTRANT and its destroy is deferred until the calls holding it return. The
 * handle that runs the call (an SVI handle, an estimator or an evaluator), and the output
 * trajectory or final_q it writes, cannot be changed from its callbacks either; other
 * handles can be used freely.
 */
#ifndef BSVI_MODEL_H
#define BSVI_MODEL_H

#include <stddef.h>

#include "bsvi/export.h"
#include "bsvi/status.h"

BSVI_BEGIN_DECLS

/** @brief Largest latent dimension any handle accepts. */
#define BSVI_MAX_DIM ((size_t)1 << 24)

/**
 * @brief Batched log-density callback supplied by the host.
 *
 * Evaluates a log density at @p n latent points.
 *
 * @param n Number of latent points (rows), at least 1.
 * @param dim Latent dimension d (the model's dimension).
 * @param z Row-major n*dim latent points, read-only, valid only during the call.
 * @param data_index n entries: row r belongs to data point data_index[r] of
 *        the current batch (0 <= data_index[r] < batch size). For a prior
 *        callback the index may be ignored.
 * @param log_density Output, n entries. -INFINITY is legal (zero density);
 *        NaN is an error and is reported as ::BSVI_ERR_CALLBACK_NAN.
 * @param grad Output, row-major n*dim gradient d/dz of the log density, or
 *        NULL when the library does not need it. Rows whose log density is
 *        -INFINITY are ignored; other rows must be finite.
 * @param user_data The pointer registered with the callback.
 * @return 0 on success; any non-zero value is a failure, reported by the
 *         calling function as ::BSVI_ERR_CALLBACK_FAILED with the code and the
 *         callback's name in the message. The library does not retry.
 */
typedef int (*bsvi_density_fn)(size_t n, size_t dim, const double *z,
                               const size_t *data_index, double *log_density,
                               double *grad, void *user_data);

/**
 * @brief Progress callback of long-running calls (SVI runs, evaluations), also used to cancel.
 *
 * Called between units of work with the number of units done so far and the
 * total: data-point slots for SVI (batch*(k+1)) and BSVI-K evaluation
 * (batch*K), latent rows for IWAE-S and ELBO* evaluation (batch*S). To
 * cancel from another thread, let the callback read a flag that thread sets
 * (for example a C11 atomic_int).
 * @param done Units finished. @param total Units in the call.
 * @param user_data The pointer registered with the callback.
 * @return 0 to continue; non-zero to stop: the call then returns
 *         ::BSVI_ERR_CANCELLED, leaving its outputs and the handle as they were.
 */
typedef int (*bsvi_progress_fn)(size_t done, size_t total, void *user_data);

/** @brief Opaque model handle. */
typedef struct bsvi_model bsvi_model;

/**
 * @brief Create a model of latent dimension @p dim with a standard normal prior and no likelihood yet.
 * @param dim Latent dimension, 1..::BSVI_MAX_DIM.
 * @param out Receives the new handle (owned by the caller; free with bsvi_model_destroy()).
 *        Set to NULL on failure.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT (out NULL), ::BSVI_ERR_ZERO_SIZE,
 *         ::BSVI_ERR_OUT_OF_RANGE, ::BSVI_ERR_NO_MEMORY.
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_model_create(size_t dim, bsvi_model **out);

/**
 * @brief Destroy a model. NULL is accepted and ignored. Infallible.
 *
 * Called from a callback while running calls hold the model, the free is deferred until
 * the last of them returns. The handle must not be used after this call, and must not be
 * destroyed while calls on other threads use it.
 * @param model Handle to free.
 * @since 0.1.0
 */
BSVI_API void bsvi_model_destroy(bsvi_model *model);

/**
 * @brief Register the host's log-likelihood log p(x_b | z) and its z-gradient.
 * @param model Model handle.
 * @param fn Callback (not NULL); called with grad == NULL when no gradient is needed.
 * @param user_data Passed back to @p fn unchanged; may be NULL; not owned.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT.
 *         ::BSVI_ERR_REENTRANT (the handle is held by a running call; see status.h).
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_model_set_likelihood(bsvi_model *model, bsvi_density_fn fn,
                                               void *user_data);

/**
 * @brief Use the built-in standard normal prior p(z) = N(0, I) (the default).
 *
 * Required for the analytic-KL gradient form and for analytic KL* in evaluation.
 * @param model Model handle.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT.
 *         ::BSVI_ERR_REENTRANT (the handle is held by a running call; see status.h).
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_model_set_prior_standard_normal(bsvi_model *model);

/**
 * @brief Register a host prior log p(z) and its gradient instead of the standard normal.
 * @param model Model handle.
 * @param fn Prior callback (not NULL), same contract as the likelihood.
 * @param user_data Passed back to @p fn; may be NULL; not owned.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT.
 *         ::BSVI_ERR_REENTRANT (the handle is held by a running call; see status.h).
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_model_set_prior(bsvi_model *model, bsvi_density_fn fn,
                                          void *user_data);

/**
 * @brief Latent dimension of a model.
 * @param model Model handle, or NULL.
 * @return The dimension, or 0 for NULL. Infallible.
 * @since 0.1.0
 */
BSVI_API size_t bsvi_model_dim(const bsvi_model *model);

/**
 * @brief Whether the model uses the built-in standard normal prior.
 * @param model Model handle, or NULL.
 * @return 1 if so, 0 otherwise (also for NULL). Infallible.
 * @since 0.1.0
 */
BSVI_API int bsvi_model_has_standard_normal_prior(const bsvi_model *model);

/**
 * @brief Evaluate log p(x, z) = log p(z) + log p(x | z) (and its gradient) through the model.
 *
 * A convenience for hosts and tests; it applies the same checks as the
 * library's internal evaluations. Every call allocates (and frees) a scratch
 * buffer of 2*n + 2*n*dim doubles, whatever the prior and whether or not grad is
 * wanted; it is not meant for hot loops.
 * @param model Model handle with a likelihood registered.
 * @param n Number of rows (at least 1).
 * @param z Row-major n*dim latent points (not NULL).
 * @param data_index n data-point indices (not NULL).
 * @param log_joint Output, n entries (not NULL); untouched on error.
 * @param grad Output n*dim gradient, or NULL if not wanted; untouched on error.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_ZERO_SIZE,
 *         ::BSVI_ERR_BAD_VALUE (a non-finite z), ::BSVI_ERR_OUT_OF_RANGE (n*dim overflows),
 *         ::BSVI_ERR_BAD_STATE (no likelihood), ::BSVI_ERR_CALLBACK_FAILED,
 *         ::BSVI_ERR_CALLBACK_NAN, ::BSVI_ERR_NO_MEMORY.
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_model_log_joint(bsvi_model *model, size_t n, const double *z,
                                          const size_t *data_index, double *log_joint,
                                          double *grad);

/**
 * @brief Message describing the last error on this handle.
 * @param model Model handle, or NULL.
 * @return A NUL-terminated string owned by the handle, valid until the next
 *         call on it; "" if no error occurred; a static string for NULL. Infallible.
 * @since 0.1.0
 */
BSVI_API const char *bsvi_model_last_error(const bsvi_model *model);

BSVI_END_DECLS

#endif /* BSVI_MODEL_H */
