/**
 * @file status.h
 * @brief Status codes returned by every fallible libbsvi function.
 *
 * Values are explicit and never renumbered. ::BSVI_OK is zero; every error is
 * negative. On any error the function leaves the caller's output buffers and
 * the handle's observable state as they were, and (when a handle is
 * available) stores a human-readable message retrievable with the handle's
 * `*_last_error` function.
 *
 * Re-entrancy: a call that runs host callbacks (bsvi_svi_run(), bsvi_estimator_elbo(),
 * bsvi_estimator_iwae(), the bsvi_evaluator_* estimates, bsvi_model_log_joint()) holds
 * every handle passed to it
 * until it returns. From inside a callback, a held handle can be read (its const
 * functions, and calls that only read it, such as a nested run on other SVI, trajectory
 * and estimator handles with the same model and proposal), but any call that would change
 * it returns ::BSVI_ERR_REENTRANT, changing nothing: its setters, a run, compute or
 * evaluation on it, and a call that would write it as an output (the trajectory of
 * bsvi_svi_run(), final_q of bsvi_evaluator_bsvi()). Destroying a held handle is deferred:
 * it is freed when the last call holding it returns, and must not be used after the
 * destroy call. Nesting on different handles is unaffected.
 */
#ifndef BSVI_STATUS_H
#define BSVI_STATUS_H

#include "bsvi/export.h"

BSVI_BEGIN_DECLS

/** @brief Result of a libbsvi call. */
typedef enum bsvi_status {
    BSVI_OK = 0,                       /**< Success. */
    BSVI_ERR_NULL_ARGUMENT = -1,       /**< A required pointer (handle or buffer) was NULL. */
    BSVI_ERR_ZERO_SIZE = -2,           /**< A dimension, batch size or count was zero. */
    BSVI_ERR_OUT_OF_RANGE = -3,        /**< A count exceeds its documented limit (e.g. k > ::BSVI_MAX_STEPS). */
    BSVI_ERR_BAD_VALUE = -4,           /**< A real parameter is outside its domain (eta <= 0, NaN, ...). */
    BSVI_ERR_SIZE_MISMATCH = -5,       /**< Sizes of handles or buffers do not agree. */
    BSVI_ERR_CALLBACK_FAILED = -6,     /**< A host callback returned a non-zero code. */
    BSVI_ERR_CALLBACK_NAN = -7,        /**< A host callback wrote NaN (or a non-finite gradient). */
    BSVI_ERR_NO_MEMORY = -8,           /**< Memory allocation failed. */
    BSVI_ERR_BAD_STATE = -9,           /**< The call is not valid in the handle's current configuration. */
    BSVI_ERR_NUMERIC = -10,            /**< A computation produced a non-finite value the result cannot hold. */
    BSVI_ERR_CANCELLED = -11,          /**< The host's progress callback asked the call to stop. */
    BSVI_ERR_REENTRANT = -12           /**< The handle is in use by a running call (a callback
                                            re-entered it); nothing was changed. */
} bsvi_status;

/**
 * @brief Short English description of a status code.
 * @param status Any value, including ones not in ::bsvi_status.
 * @return A static NUL-terminated string; "unknown status" for unknown values.
 *         Never NULL. Infallible.
 * @since 0.1.0
 */
BSVI_API const char *bsvi_status_string(bsvi_status status);

BSVI_END_DECLS

#endif /* BSVI_STATUS_H */
