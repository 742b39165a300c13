/**
 * @file evaluate.h
 * @brief Log-likelihood estimates and the paper's ELBO*, KL*, Reconstruction*, with bounded memory.
 *
 * Estimates for a batch (paper section 6.2):
 * - IWAE-S: LSE over S samples from q(.; lambda_0), minus log S.
 * - BSVI-K: K weights from K-1 SVI steps started at lambda_0 (uniform pi).
 * - ELBO*, KL*, Reconstruction*: for the final proposal q_K of SVI, ELBO* =
 *   E_qK log w (by S samples), KL* = KL(q_K || p(z)) (analytic for the
 *   standard normal prior, otherwise by the same samples), Reconstruction* =
 *   -(ELBO* + KL*), the distortion of the rate-distortion split ELBO* =
 *   -(KL* + Reconstruction*) used in the paper's tables (an estimate of
 *   -E_qK log p(x | z); exactly the sample mean of -log p(x | z) when KL* is
 *   estimated from the same samples).
 *
 * Memory: work is streamed in chunks of at most the configured number of
 * latent rows per callback (default 10000), with running log-sum-exps; nothing
 * of size K*B or S*B*dim is allocated. One SVI step of one data point is never
 * split, so BSVI-K passes at least m (+1 with double sampling) rows per call,
 * m being the samples per step of its SVI options, even when the chunk is smaller. The evaluator's workspace grows on
 * demand and is reused.
 *
 * Weight diagnostics: with bsvi_evaluator_set_diagnostics() on, IWAE-S also yields the
 * ESS and PSIS k-hat of each data point's S weights (diagnostics.h), the values
 * bsvi_diagnostics_compute() gives on the B*S log weights, without holding them: ESS from
 * running max-shifted sums of w and w^2, k-hat from a heap per data point of its M+1
 * largest log weights (M = bsvi_diagnostics_tail_length(S): 213 for S = 5000), B*(M+1)
 * doubles in all. Off by default (then nothing of it is allocated or computed).
 *
 * Thread rules: one handle per thread.
 *
 * Callbacks (the model's, the progress callback): while an evaluation runs it holds the
 * evaluator, the model, the proposal and final_q (see status.h). From a
 * callback these may be read, and other evaluators, SVI handles and estimators may be used
 * with them, but calls that would change a held handle (any call that changes the
 * evaluator or runs an estimate on it, setters of the proposals) return ::BSVI_ERR_REENTRANT; destroying one
 * is deferred until the evaluation returns.
 */
#ifndef BSVI_EVALUATE_H
#define BSVI_EVALUATE_H

#include <stddef.h>
#include <stdint.h>

#include "bsvi/export.h"
#include "bsvi/model.h"
#include "bsvi/proposal.h"
#include "bsvi/status.h"
#include "bsvi/estimator.h"
#include "bsvi/stats.h"
#include "bsvi/svi.h"

BSVI_BEGIN_DECLS

/** @brief Opaque evaluator handle. */
typedef struct bsvi_evaluator bsvi_evaluator;

/**
 * @brief Create an evaluator for latent dimension @p dim.
 * @param dim 1..::BSVI_MAX_DIM.
 * @param out Receives the handle (caller frees with bsvi_evaluator_destroy()); NULL on failure.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_ZERO_SIZE, ::BSVI_ERR_OUT_OF_RANGE,
 *         ::BSVI_ERR_NO_MEMORY.
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_evaluator_create(size_t dim, bsvi_evaluator **out);

/**
 * @brief Destroy an evaluator; NULL is ignored. Infallible.
 *
 * Called from a callback of a running evaluation on it, the free is deferred until that
 * evaluation returns; the handle must not be used after this call either way.
 * @param ev Handle to free.
 * @since 0.1.0
 */
BSVI_API void bsvi_evaluator_destroy(bsvi_evaluator *ev);

/**
 * @brief Set the seed and reset the call counter (see rng.h).
 * @param ev Handle. @param seed Any value.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT.
 *         ::BSVI_ERR_REENTRANT (the handle is held by a running call; see status.h).
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_evaluator_set_seed(bsvi_evaluator *ev, uint64_t seed);

/**
 * @brief Set the call counter and the id of the batch's first data point (see rng.h).
 * @param ev Handle. @param counter Call counter. @param id_offset Data-point id offset.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT.
 *         ::BSVI_ERR_REENTRANT (the handle is held by a running call; see status.h).
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_evaluator_set_stream(bsvi_evaluator *ev, uint64_t counter,
                                               uint64_t id_offset);

/**
 * @brief Register a progress callback, called after every callback chunk (IWAE-S, ELBO*) or
 *        SVI step (BSVI-K); it can cancel the evaluation (::BSVI_ERR_CANCELLED).
 * @param ev Handle. @param fn Callback, or NULL to remove it. @param user_data Passed back; not owned.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT (ev NULL).
 *         ::BSVI_ERR_REENTRANT (the handle is held by a running call; see status.h).
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_evaluator_set_progress(bsvi_evaluator *ev, bsvi_progress_fn fn,
                                                 void *user_data);

/**
 * @brief Set the largest number of latent rows passed to one callback call.
 * @param ev Handle. @param rows At least 1 (smaller than the batch is allowed: the batch is then
 *        processed in groups of data points; see the file comment for the BSVI-K minimum).
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_ZERO_SIZE, ::BSVI_ERR_OUT_OF_RANGE (rows
 *         above ::BSVI_MAX_BATCH).
 *         ::BSVI_ERR_REENTRANT (the handle is held by a running call; see status.h).
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_evaluator_set_chunk_rows(bsvi_evaluator *ev, size_t rows);

/**
 * @brief IWAE-S log-likelihood estimate per data point.
 *
 * With diagnostics on (bsvi_evaluator_set_diagnostics()), the same call computes each data
 * point's ESS and k-hat of its S weights, read afterwards with
 * bsvi_evaluator_get_diagnostics(); out is the same, bit for bit, either way.
 * @param ev Handle. @param model Model of the same dimension. @param q Proposal (lambda_0).
 * @param S Samples, 1..2^32. @param out Output, batch entries (not NULL).
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_ZERO_SIZE, ::BSVI_ERR_OUT_OF_RANGE,
 *         ::BSVI_ERR_SIZE_MISMATCH, ::BSVI_ERR_BAD_STATE, ::BSVI_ERR_CALLBACK_FAILED,
 *         ::BSVI_ERR_CALLBACK_NAN, ::BSVI_ERR_NUMERIC (every one of the S weights of a data
 *         point is zero, under ::BSVI_POINTS_FAIL), ::BSVI_ERR_NO_MEMORY, ::BSVI_ERR_CANCELLED. @p out is
 *         unchanged on error.
 *         ::BSVI_ERR_REENTRANT (the handle is held by a running call; see status.h).
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_evaluator_iwae(bsvi_evaluator *ev, const bsvi_model *model,
                                         const bsvi_proposal *q, size_t S, double *out);

/**
 * @brief Turn the importance-weight diagnostics of bsvi_evaluator_iwae() on or off.
 *
 * On, each later bsvi_evaluator_iwae() also computes per data point the ESS and the PSIS
 * k-hat of its S weights, exactly as bsvi_diagnostics_compute() defines them (and with its
 * conventions: ESS 0 and k-hat NaN for a data point whose weights are all zero, k-hat
 * +INFINITY when not estimable, e.g. S < 21), read with bsvi_evaluator_get_diagnostics().
 * The cost: B*(M+1) doubles of heaps (M = bsvi_diagnostics_tail_length(S)), 4B doubles of
 * results and O(sqrt(S)) of scratch, allocated by the first bsvi_evaluator_iwae() that needs
 * them (or more of them) and reused; per sample a fused update of the running sums and, for a
 * weight among its point's M+1 largest so far, a heap update; per data point one tail fit
 * after the last chunk. Off by default: the estimate then costs nothing more.
 * Changes no result already computed.
 * @param ev Handle. @param enabled 1: on, 0: off.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_BAD_VALUE (not 0 or 1),
 *         ::BSVI_ERR_REENTRANT (the handle is held by a running call; see status.h).
 * @since 0.2.0
 */
BSVI_API bsvi_status bsvi_evaluator_set_diagnostics(bsvi_evaluator *ev, int enabled);

/**
 * @brief ESS and PSIS k-hat of the S weights of each data point of the last successful
 *        bsvi_evaluator_iwae(), when diagnostics were on for it.
 *
 * The values bsvi_diagnostics_compute() returns for that call's B*S log weights: k-hat bit
 * for bit (the same tail, the same fit), ESS to rounding (its sums are accumulated while the
 * largest weight is still being found; 1e-14 relative in the tests). Only bsvi_evaluator_iwae() changes
 * them: a successful call with diagnostics on replaces them, one with diagnostics off removes
 * them (::BSVI_ERR_BAD_STATE afterwards), a failed one keeps them; BSVI-K and ELBO* leave them
 * alone. From a callback of a running estimate they are the previous call's.
 * @param ev Handle. @param batch Must equal that call's batch.
 * @param ess Output @p batch effective sample sizes, in [1, S] (0 for a data point whose
 *        weights are all zero), or NULL to skip.
 * @param khat Output @p batch k-hat values (+INFINITY when not estimable, e.g. S < 21; NaN
 *        for a data point whose weights are all zero), or NULL to skip.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT (ev NULL), ::BSVI_ERR_BAD_STATE (no successful
 *         bsvi_evaluator_iwae() yet, or diagnostics were off for the last one),
 *         ::BSVI_ERR_SIZE_MISMATCH (batch differs from that call's). The outputs are unchanged
 *         on error.
 * @since 0.2.0
 */
BSVI_API bsvi_status bsvi_evaluator_get_diagnostics(const bsvi_evaluator *ev, size_t batch,
                                                    double *ess, double *khat);

/**
 * @brief Set the refinement BSVI-K uses (every field of @p options but steps, which is K-1).
 *
 * Default: bsvi_svi_options_default(). The evaluator's own seed and stream drive it.
 * @param ev Handle. @param options Options (not NULL; copied), checked as by
 *        bsvi_svi_set_options() except the steps field, which is neither checked nor used
 *        (bsvi_evaluator_get_svi_options() returns it as set).
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_ZERO_SIZE, ::BSVI_ERR_OUT_OF_RANGE,
 *         ::BSVI_ERR_BAD_VALUE, ::BSVI_ERR_REENTRANT. Nothing changes on error.
 * @since 0.2.0
 */
BSVI_API bsvi_status bsvi_evaluator_set_svi_options(bsvi_evaluator *ev,
                                                    const bsvi_svi_options *options);

/**
 * @brief Copy out the refinement options BSVI-K uses.
 * @param ev Handle. @param out Output (not NULL).
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT.
 * @since 0.2.0
 */
BSVI_API bsvi_status bsvi_evaluator_get_svi_options(const bsvi_evaluator *ev,
                                                    bsvi_svi_options *out);

/**
 * @brief Choose what an estimate does with a data point whose weights are all zero.
 *
 * Under ::BSVI_POINTS_REPORT (the default) that point's estimate is -INFINITY, the others
 * are computed as usual, and bsvi_evaluator_num_zero_points() counts it; under
 * ::BSVI_POINTS_FAIL the estimate fails with ::BSVI_ERR_NUMERIC.
 * @param ev Handle. @param policy A ::bsvi_point_policy value.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_BAD_VALUE, ::BSVI_ERR_REENTRANT.
 * @since 0.2.0
 */
BSVI_API bsvi_status bsvi_evaluator_set_point_policy(bsvi_evaluator *ev,
                                                     bsvi_point_policy policy);

/**
 * @brief BSVI-K log-likelihood estimate per data point (K-1 SVI steps, uniform pi).
 *
 * Refines with the evaluator's SVI options (bsvi_evaluator_set_svi_options()) and its
 * generator. Afterwards bsvi_evaluator_get_steps_taken() and bsvi_evaluator_num_frozen()
 * say what the refinement did.
 * @param ev Handle. @param model Model. @param q Proposal holding lambda_0 (unchanged).
 * @param K Weights, 1..::BSVI_MAX_STEPS+1.
 * @param out Output, batch entries (not NULL).
 * @param final_q Receives lambda_{K-1}, the last proposal, or NULL; must have q's batch and dim.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_ZERO_SIZE, ::BSVI_ERR_OUT_OF_RANGE,
 *         ::BSVI_ERR_SIZE_MISMATCH (also for final_q's shape),
 *         ::BSVI_ERR_BAD_STATE (no likelihood; analytic KL without the standard normal prior),
 *         ::BSVI_ERR_CALLBACK_FAILED, ::BSVI_ERR_CALLBACK_NAN, ::BSVI_ERR_NUMERIC (a
 *         zero-density point under ::BSVI_POINTS_FAIL; or a step diverges under
 *         ::BSVI_DIVERGENCE_FAIL, as in bsvi_svi_run(); under ::BSVI_DIVERGENCE_FREEZE
 *         the point stops refining instead), ::BSVI_ERR_NO_MEMORY, ::BSVI_ERR_CANCELLED,
 *         ::BSVI_ERR_REENTRANT (the evaluator is in use by a running call, or final_q is held
 *         by one: see status.h). Outputs unchanged on error.
 * @since 0.2.0
 */
BSVI_API bsvi_status bsvi_evaluator_bsvi(bsvi_evaluator *ev, const bsvi_model *model,
                                         const bsvi_proposal *q, size_t K, double *out,
                                         bsvi_proposal *final_q);

/**
 * @brief SVI steps each data point took in the last successful bsvi_evaluator_bsvi()
 *        (K-1 unless it froze under ::BSVI_DIVERGENCE_FREEZE).
 * @param ev Handle. @param out Output, @p n entries. @param n Must equal that call's batch.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_SIZE_MISMATCH,
 *         ::BSVI_ERR_BAD_STATE (no BSVI-K estimate yet).
 * @since 0.2.0
 */
BSVI_API bsvi_status bsvi_evaluator_get_steps_taken(const bsvi_evaluator *ev, size_t *out,
                                                    size_t n);

/**
 * @brief Data points that stopped refining early in the last successful bsvi_evaluator_bsvi().
 * @param ev Handle or NULL. @return The count (0 before any, or for NULL). Infallible.
 * @since 0.2.0
 */
BSVI_API size_t bsvi_evaluator_num_frozen(const bsvi_evaluator *ev);

/**
 * @brief Data points whose estimate was -INFINITY in the last successful estimate. Infallible.
 * @param ev Handle or NULL. @return The count (0 before any, or for NULL).
 * @since 0.2.0
 */
BSVI_API size_t bsvi_evaluator_num_zero_points(const bsvi_evaluator *ev);

/**
 * @brief ELBO*, KL* and Reconstruction* of a (refined) proposal, per data point.
 * @param ev Handle. @param model Model. @param q_final The proposal to assess (e.g. final_q of
 *        bsvi_evaluator_bsvi()). @param S Samples for the expectations, 1..2^32.
 * @param elbo Output batch entries, or NULL. @param kl Output, or NULL.
 * @param reconstruction Output -(ELBO* + KL*), or NULL.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_ZERO_SIZE, ::BSVI_ERR_OUT_OF_RANGE,
 *         ::BSVI_ERR_SIZE_MISMATCH, ::BSVI_ERR_BAD_STATE, ::BSVI_ERR_CALLBACK_FAILED,
 *         ::BSVI_ERR_CALLBACK_NAN, ::BSVI_ERR_NUMERIC (a sample has zero density under the
 *         model; or an ELBO*, KL* or Reconstruction* is beyond the finite range, the means
 *         themselves being computed without overflow), ::BSVI_ERR_NO_MEMORY,
 *         ::BSVI_ERR_CANCELLED, ::BSVI_ERR_REENTRANT (the evaluator is in use by a running
 *         call: see status.h). Outputs unchanged on error.
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_evaluator_elbo_star(bsvi_evaluator *ev, const bsvi_model *model,
                                              const bsvi_proposal *q_final, size_t S,
                                              double *elbo, double *kl, double *reconstruction);

/**
 * @brief Read the seed, call counter and data-point id offset (see rng.h).
 * @param ev Handle. @param seed Output, or NULL. @param counter Output, or NULL.
 * @param id_offset Output, or NULL.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT (ev NULL).
 * @since 0.2.0
 */
BSVI_API bsvi_status bsvi_evaluator_get_stream(const bsvi_evaluator *ev, uint64_t *seed,
                                               uint64_t *counter, uint64_t *id_offset);

/**
 * @brief Copy out the handle's counters (see stats.h).
 * @param ev Handle. @param out Output (not NULL).
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT.
 * @since 0.2.0
 */
BSVI_API bsvi_status bsvi_evaluator_get_stats(const bsvi_evaluator *ev, bsvi_stats *out);

/**
 * @brief Set the handle's counters to 0.
 * @param ev Handle. @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_REENTRANT.
 * @since 0.2.0
 */
BSVI_API bsvi_status bsvi_evaluator_reset_stats(bsvi_evaluator *ev);

/**
 * @brief Message describing the last error on this handle ("" if none). Infallible.
 * @param ev Handle or NULL. @return String owned by the handle (static for NULL).
 * @since 0.1.0
 */
BSVI_API const char *bsvi_evaluator_last_error(const bsvi_evaluator *ev);

BSVI_END_DECLS

#endif /* BSVI_EVALUATE_H */
