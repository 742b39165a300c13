/**
 * @file weights.h
 * @brief Buffer weights pi: a distribution over buffer slots, its logits, its Adam optimiser.
 *
 * BSVI's bound log sum_i pi_i w_i holds for any distribution pi over the k+1 slots of a
 * trajectory (and GIWAE's over its n terms). A ::bsvi_buffer_weights handle holds pi as
 * logits a (pi = softmax(a)), created uniform over a fixed number of slots n.
 *
 * Optimising pi (the paper's BSVI-SIR-pi) is explicit: bsvi_buffer_weights_accumulate()
 * (or bsvi_buffer_weights_accumulate_terms()) adds, for every data point b of a batch,
 * d/da of that point's bound, r_b - pi with r_b = softmax(log pi + log w_b), to an
 * accumulated sum and adds the number of data points to a count;
 * bsvi_buffer_weights_step() takes one Adam ascent step on sum / count (the gradient of the
 * mean bound over every data point accumulated since the last step), then clears both.
 * Adam: learning rate 1e-2, betas 0.9 / 0.999, epsilon 1e-8 by default; after a step the
 * logits are re-centred so that the largest is 0. A logit of -INFINITY (pi_i = 0) never
 * moves. Computing a bound never changes a weights handle: the estimators only read it.
 *
 * Several processes (data-parallel training): each accumulates over its own data points,
 * the hosts sum the accumulated sums and counts across processes
 * (bsvi_buffer_weights_get_gradient(), an all-reduce of n+1 numbers,
 * bsvi_buffer_weights_set_gradient()), and every process steps: their logits and Adam
 * states stay identical. For one process this is the same step as without the exchange.
 *
 * Thread rules: one handle per thread. The const functions write nothing when their
 * arguments are valid, so a handle not being changed may be read (by estimators, health
 * metrics, getters) from several threads at once.
 */
#ifndef BSVI_WEIGHTS_H
#define BSVI_WEIGHTS_H

#include <stddef.h>
#include <stdint.h>

#include "bsvi/export.h"
#include "bsvi/status.h"
#include "bsvi/trajectory.h"

BSVI_BEGIN_DECLS

/* The opaque handle type bsvi_buffer_weights is declared in trajectory.h (included above),
 * whose health metrics read it. */

/**
 * @brief Create uniform buffer weights over @p n slots (k+1 for a k-step trajectory).
 * @param n Number of slots, 1..::BSVI_MAX_STEPS+1.
 * @param out Receives the handle (caller frees with bsvi_buffer_weights_destroy()); NULL on failure.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_ZERO_SIZE, ::BSVI_ERR_OUT_OF_RANGE,
 *         ::BSVI_ERR_NO_MEMORY.
 * @since 0.2.0
 */
BSVI_API bsvi_status bsvi_buffer_weights_create(size_t n, bsvi_buffer_weights **out);

/**
 * @brief Destroy a weights handle; NULL is ignored. Infallible.
 * @param w Handle to free.
 * @since 0.2.0
 */
BSVI_API void bsvi_buffer_weights_destroy(bsvi_buffer_weights *w);

/**
 * @brief Number of slots n. @param w Handle or NULL. @return n (0 for NULL). Infallible.
 * @since 0.2.0
 */
BSVI_API size_t bsvi_buffer_weights_size(const bsvi_buffer_weights *w);

/**
 * @brief Set pi from probabilities; resets the Adam state and the accumulated gradient.
 * @param w Handle. @param pi @p n non-negative finite entries summing to 1 within 1e-9
 *        (copied); a zero entry gives the logit -INFINITY (that slot stays at 0).
 * @param n Must equal bsvi_buffer_weights_size().
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_SIZE_MISMATCH,
 *         ::BSVI_ERR_BAD_VALUE (not a distribution). Nothing changes on error.
 * @since 0.2.0
 */
BSVI_API bsvi_status bsvi_buffer_weights_set_probs(bsvi_buffer_weights *w, const double *pi,
                                                   size_t n);

/**
 * @brief Copy out pi = softmax(a).
 * @param w Handle. @param pi Output, @p n entries. @param n Must equal bsvi_buffer_weights_size().
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_SIZE_MISMATCH.
 * @since 0.2.0
 */
BSVI_API bsvi_status bsvi_buffer_weights_get_probs(const bsvi_buffer_weights *w, double *pi,
                                                   size_t n);

/**
 * @brief Set the logits a (pi = softmax(a)); keeps the Adam state and the accumulated gradient
 *        (so that a checkpoint restores logits, then bsvi_buffer_weights_set_adam_state()).
 * @param w Handle. @param logits @p n entries, each finite or -INFINITY, at least one finite
 *        (copied as given: no re-centring).
 * @param n Must equal bsvi_buffer_weights_size().
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_SIZE_MISMATCH,
 *         ::BSVI_ERR_BAD_VALUE (NaN, +INFINITY, or every entry -INFINITY). Nothing changes on error.
 * @since 0.2.0
 */
BSVI_API bsvi_status bsvi_buffer_weights_set_logits(bsvi_buffer_weights *w,
                                                    const double *logits, size_t n);

/**
 * @brief Copy out the logits a.
 * @param w Handle. @param logits Output, @p n entries. @param n Must equal bsvi_buffer_weights_size().
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_SIZE_MISMATCH.
 * @since 0.2.0
 */
BSVI_API bsvi_status bsvi_buffer_weights_get_logits(const bsvi_buffer_weights *w,
                                                    double *logits, size_t n);

/**
 * @brief E_pi[i/(n-1)], the mean buffer position (0 = encoder, 1 = last SVI step).
 * @param w Handle. @param out Output (not NULL); 0 when n = 1.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT.
 * @since 0.2.0
 */
BSVI_API bsvi_status bsvi_buffer_weights_mean_position(const bsvi_buffer_weights *w,
                                                       double *out);

/**
 * @brief Set Adam's parameters for the logits (keeps its moments, step count and the
 *        accumulated gradient).
 * @param w Handle. @param learning_rate Finite, > 0. @param beta1 In [0,1). @param beta2 In [0,1).
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_BAD_VALUE.
 * @since 0.2.0
 */
BSVI_API bsvi_status bsvi_buffer_weights_set_adam(bsvi_buffer_weights *w, double learning_rate,
                                                  double beta1, double beta2);

/**
 * @brief Copy out Adam's state: first and second moments of each logit and the step count.
 * @param w Handle. @param m Output @p n entries, or NULL. @param v Output @p n entries, or NULL.
 * @param steps Output step count, or NULL. @param n Must equal bsvi_buffer_weights_size().
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT (w NULL), ::BSVI_ERR_SIZE_MISMATCH.
 * @since 0.2.0
 */
BSVI_API bsvi_status bsvi_buffer_weights_get_adam_state(const bsvi_buffer_weights *w, double *m,
                                                        double *v, uint64_t *steps, size_t n);

/**
 * @brief Restore Adam's state (for example from a checkpoint).
 * @param w Handle. @param m @p n finite first moments (not NULL).
 * @param v @p n finite, non-negative second moments (not NULL).
 * @param steps Steps taken so far, below 2^64 - 1.
 * @param n Must equal bsvi_buffer_weights_size().
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_SIZE_MISMATCH, ::BSVI_ERR_BAD_VALUE.
 *         Nothing changes on error.
 * @since 0.2.0
 */
BSVI_API bsvi_status bsvi_buffer_weights_set_adam_state(bsvi_buffer_weights *w, const double *m,
                                                        const double *v, uint64_t steps,
                                                        size_t n);

/**
 * @brief Add d/da of each data point's BSVI bound over a trajectory to the accumulated gradient.
 *
 * Adds sum_b (r_b - pi) to the accumulated sum and B to the count, with
 * r_b = softmax(log pi + log w_b) over the trajectory's k+1 slots. A data point whose
 * weights are all zero (its bound is -INFINITY) adds nothing to either.
 * @param w Handle with k+1 slots. @param t Non-empty trajectory (read only).
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_BAD_STATE (empty trajectory),
 *         ::BSVI_ERR_SIZE_MISMATCH (k+1 != n). Nothing changes on error.
 * @since 0.2.0
 */
BSVI_API bsvi_status bsvi_buffer_weights_accumulate(bsvi_buffer_weights *w,
                                                    const bsvi_trajectory *t);

/**
 * @brief As bsvi_buffer_weights_accumulate(), from host terms (the GIWAE bound's inputs).
 *
 * log w_bi = log_joint[b*n+i] - log_proposal[b*n+i], with the value checks of
 * bsvi_estimator_giwae().
 * @param w Handle with @p n slots. @param batch Data points, 1..::BSVI_MAX_BATCH.
 * @param n Terms per data point (the handle's size).
 * @param log_joint batch*n values (not NULL). @param log_proposal batch*n values (not NULL).
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_ZERO_SIZE, ::BSVI_ERR_OUT_OF_RANGE,
 *         ::BSVI_ERR_SIZE_MISMATCH, ::BSVI_ERR_BAD_VALUE (NaN, log_joint +INFINITY or
 *         log_proposal -INFINITY), ::BSVI_ERR_NUMERIC (a difference overflows to +INFINITY).
 *         Nothing changes on error.
 * @since 0.2.0
 */
BSVI_API bsvi_status bsvi_buffer_weights_accumulate_terms(bsvi_buffer_weights *w, size_t batch,
                                                          size_t n, const double *log_joint,
                                                          const double *log_proposal);

/**
 * @brief Copy out the accumulated gradient sum and its count of data points.
 * @param w Handle. @param sum Output @p n entries, or NULL. @param count Output, or NULL.
 * @param n Must equal bsvi_buffer_weights_size().
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT (w NULL), ::BSVI_ERR_SIZE_MISMATCH.
 * @since 0.2.0
 */
BSVI_API bsvi_status bsvi_buffer_weights_get_gradient(const bsvi_buffer_weights *w, double *sum,
                                                      uint64_t *count, size_t n);

/**
 * @brief Replace the accumulated gradient sum and count (for example by their sums over
 *        processes).
 * @param w Handle. @param sum @p n finite entries (not NULL); all 0 when @p count is 0.
 * @param count Data points summed.
 * @param n Must equal bsvi_buffer_weights_size().
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_SIZE_MISMATCH, ::BSVI_ERR_BAD_VALUE
 *         (a non-finite entry; a non-zero entry with count 0). Nothing changes on error.
 * @since 0.2.0
 */
BSVI_API bsvi_status bsvi_buffer_weights_set_gradient(bsvi_buffer_weights *w, const double *sum,
                                                      uint64_t count, size_t n);

/**
 * @brief Take one Adam ascent step on the logits with sum / count, then clear both.
 * @param w Handle.
 * @return ::BSVI_OK (also when the count is 0: no step is taken), ::BSVI_ERR_NULL_ARGUMENT,
 *         ::BSVI_ERR_NUMERIC (Adam's moment estimates overflow, or the step would make a
 *         finite logit non-finite, by overflow or by the re-centring; nothing changes).
 * @since 0.2.0
 */
BSVI_API bsvi_status bsvi_buffer_weights_step(bsvi_buffer_weights *w);

/**
 * @brief Message describing the last error on this handle ("" if none). Infallible.
 * @param w Handle or NULL. @return String owned by the handle (static for NULL).
 * @since 0.2.0
 */
BSVI_API const char *bsvi_buffer_weights_last_error(const bsvi_buffer_weights *w);

BSVI_END_DECLS

#endif /* BSVI_WEIGHTS_H */
