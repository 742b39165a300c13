/**
 * @file diagnostics.h
 * @brief Importance-weight diagnostics: effective sample size and the PSIS Pareto k-hat.
 *
 * A bound or estimate built from importance weights (IWAE-K, the evaluator's IWAE-S, BSVI's
 * buffer, GIWAE) is only as good as its weights are balanced. For every data point of a set
 * of log weights log w_1..log w_n a ::bsvi_diagnostics handle computes:
 *
 * - ESS = (sum_i w_i)^2 / sum_i w_i^2, the effective sample size of the normalised weights,
 *   in [1, n] (n for equal weights, 1 when one weight dominates). Computed in log space
 *   around the largest log weight, so any finite log weights give a finite ESS.
 * - k-hat, the shape estimate of the generalized Pareto distribution fitted to the upper
 *   tail of the weights: Pareto-smoothed importance sampling (PSIS; Vehtari, Simpson,
 *   Gelman, Yao and Gabry, "Pareto smoothed importance sampling", arXiv:1507.02646). The
 *   computation is that of the R package loo 2.5.1, psis(log_ratios, r_eff = 1)'s
 *   pareto_k (the algorithm ArviZ's psislw also implements): the
 *   M = ceil(min(0.2 n, 3 sqrt(n))) largest weights form the tail, the (M+1)-th largest is
 *   the threshold, and the Zhang and Stephens (2009) fit of the exceedances (a grid of
 *   30 + floor(sqrt(M)) points, prior 3) is pulled toward 0.5 by the weakly informative
 *   prior of 10 pseudo-observations, k = (M k + 10 * 0.5) / (M + 10). Only the M+1 largest weights enter; they are selected
 *   without sorting all n. Agreement with loo is tested to 1e-6 relative on fixed sets
 *   (tests/fixtures/psis/). ESS is of the raw weights: loo's n_eff is of the smoothed ones.
 *
 * Reading the numbers (Vehtari et al.):
 * - k-hat < 0.5: the weights have finite variance; the importance-sampling estimate (and so
 *   a bound's claim to be close to log p(x)) converges at the usual Monte Carlo rate.
 * - 0.5 <= k-hat <= 0.7: the variance is infinite but the estimate is still usable in
 *   practice; its error shrinks more slowly than 1/sqrt(n).
 * - k-hat > 0.7: the estimate is unreliable. The log-likelihood estimate, and the claim that
 *   a bound from these weights is tight, cannot be trusted, whatever n is; a better proposal
 *   (more SVI steps, a better encoder) is needed, not more samples. k-hat >= 1: the weights'
 *   mean does not exist under the fitted tail. (Later versions of the PSIS paper use the
 *   sample-size-dependent threshold min(1 - 1/log10(n), 0.7) instead of 0.7.)
 * - ESS small relative to n (1 at worst): a few weights carry the estimate, which is then
 *   no better than one built from ESS samples.
 *
 * Conventions (per data point):
 * - Zero weights (log w = -INFINITY) are legal. A data point whose weights are all zero gets
 *   ESS 0 and k-hat NaN.
 * - k-hat is +INFINITY, as in loo, when it cannot be estimated from the tail: n < 21 (the
 *   tail would have fewer than 5 weights; bsvi_diagnostics_tail_length()), the tail's log
 *   weights all equal (spread below DBL_EPSILON/100), the fit breaks down (loo's NaN), or a
 *   tail weight is zero (more than n - M weights are zero; loo refuses such input). +INFINITY
 *   rather than NaN so that the test khat > 0.7 flags the point as unreliable.
 * - Both numbers are invariant (up to rounding) to adding one constant to a data point's log
 *   weights: unnormalised log weights are fine.
 *
 * The evaluator's IWAE-S, whose B*S weights are never held, computes the same two numbers
 * while it streams them (bsvi_evaluator_set_diagnostics(), evaluate.h).
 *
 * Trajectory buffers: the k+1 weights of a trajectory come from k+1 different proposals, and
 * a buffer of fewer than 21 slots always has k-hat +INFINITY; the ESS of pi_i w_i is the
 * useful number there (how many slots BSVI's bound really draws on).
 *
 * Memory: the handle is created for at most a given number of weights per data point (its
 * capacity) and holds the scratch for that (O(sqrt(capacity)) doubles), so
 * bsvi_diagnostics_compute() never allocates. bsvi_diagnostics_trajectory() with pi not NULL
 * and bsvi_diagnostics_estimator() grow a workspace on first use (k+1, respectively the
 * estimator's number of targets, doubles) and reuse it: calls of the same shape allocate
 * nothing after the first.
 *
 * Thread rules: one handle per thread. Trajectories, buffer weights and estimators are only
 * read (nothing of theirs is written, not even their error messages), so they may be read
 * from several threads at once, and from a callback of a running call that holds them (see
 * status.h). The handle calls no host code and is never held.
 */
#ifndef BSVI_DIAGNOSTICS_H
#define BSVI_DIAGNOSTICS_H

#include <stddef.h>

#include "bsvi/export.h"
#include "bsvi/estimator.h"
#include "bsvi/status.h"
#include "bsvi/trajectory.h"
#include "bsvi/weights.h"

BSVI_BEGIN_DECLS

/** @brief Opaque diagnostics handle: scratch for the ESS and k-hat of up to capacity weights. */
typedef struct bsvi_diagnostics bsvi_diagnostics;

/**
 * @brief Create a diagnostics handle for up to @p capacity weights per data point.
 * @param capacity Largest number of weights per data point (n) the handle will be given,
 *        1..2^32. The scratch is O(sqrt(capacity)) doubles, allocated here.
 * @param out Receives the handle (caller frees with bsvi_diagnostics_destroy()); NULL on
 *        failure.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_ZERO_SIZE, ::BSVI_ERR_OUT_OF_RANGE
 *         (capacity above 2^32), ::BSVI_ERR_NO_MEMORY.
 * @since 0.2.0
 */
BSVI_API bsvi_status bsvi_diagnostics_create(size_t capacity, bsvi_diagnostics **out);

/**
 * @brief Destroy a diagnostics handle; NULL is ignored. Infallible.
 * @param d Handle to free.
 * @since 0.2.0
 */
BSVI_API void bsvi_diagnostics_destroy(bsvi_diagnostics *d);

/**
 * @brief Largest number of weights per data point the handle accepts.
 * @param d Handle or NULL. @return The capacity given at creation (0 for NULL). Infallible.
 * @since 0.2.0
 */
BSVI_API size_t bsvi_diagnostics_capacity(const bsvi_diagnostics *d);

/**
 * @brief Number M of largest weights k-hat's tail has for @p n weights:
 *        ceil(min(0.2 n, 3 sqrt(n))) (loo's rule with r_eff = 1).
 *
 * k-hat is estimated when M >= 5, that is for n >= 21; otherwise it is +INFINITY.
 * @param n Number of weights of one data point. @return M (0 for n = 0). Infallible.
 * @since 0.2.0
 */
BSVI_API size_t bsvi_diagnostics_tail_length(size_t n);

/**
 * @brief ESS and PSIS k-hat of each data point of a batch of log weights.
 *
 * Data point b's weights are w_bi = exp(log_w[b*n + i]), i < n (unnormalised; see the file
 * comment for the definitions and the conventions for zero weights and short tails).
 * Allocates nothing.
 * @param d Handle. @param batch Data points B, 1..::BSVI_MAX_BATCH.
 * @param n Weights per data point, 1..bsvi_diagnostics_capacity().
 * @param log_w B*n log weights, data point major (not NULL). -INFINITY is legal (a zero
 *        weight); NaN and +INFINITY are refused.
 * @param ess Output B effective sample sizes, in [1, n] (0 for a data point whose weights are
 *        all zero), or NULL to skip.
 * @param khat Output B k-hat values (+INFINITY when not estimable; NaN for a data point whose
 *        weights are all zero), or NULL to skip. With both outputs NULL the call only checks
 *        its input.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT (d or log_w NULL), ::BSVI_ERR_ZERO_SIZE (batch
 *         or n is 0), ::BSVI_ERR_OUT_OF_RANGE (batch above ::BSVI_MAX_BATCH),
 *         ::BSVI_ERR_SIZE_MISMATCH (n above the handle's capacity), ::BSVI_ERR_BAD_VALUE (a
 *         log weight is NaN or +INFINITY). The outputs are unchanged on error.
 * @since 0.2.0
 */
BSVI_API bsvi_status bsvi_diagnostics_compute(bsvi_diagnostics *d, size_t batch, size_t n,
                                              const double *log_w, double *ess, double *khat);

/**
 * @brief ESS and PSIS k-hat of the buffer weights pi_i w_i of each data point of a trajectory.
 *
 * The weights of data point b are pi_i w_bi over the k+1 slots, w_bi = exp(log w_bi) as
 * bsvi_trajectory_get_log_weights() returns them: the weights behind the BSVI bound
 * LSE_i(log pi_i + log w_bi) (bsvi_estimator_bsvi()). A slot with pi_i = 0 is a zero weight.
 * @param d Handle with capacity at least k+1.
 * @param t Non-empty trajectory (read only).
 * @param pi Buffer weights with k+1 slots (read only), or NULL for uniform (the weights are
 *        then the w_bi alone).
 * @param ess Output B effective sample sizes, in [1, k+1] (0 for a data point whose weights
 *        are all zero), or NULL to skip.
 * @param khat Output B k-hat values (+INFINITY for k+1 < 21 slots; NaN for a data point whose
 *        weights are all zero), or NULL to skip.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT (d or t NULL), ::BSVI_ERR_BAD_STATE (empty
 *         trajectory), ::BSVI_ERR_SIZE_MISMATCH (pi's size != k+1, or k+1 above the
 *         handle's capacity), ::BSVI_ERR_NO_MEMORY (a workspace of k+1 doubles for log pi,
 *         when pi is not NULL). The outputs are unchanged on error.
 * @since 0.2.0
 */
BSVI_API bsvi_status bsvi_diagnostics_trajectory(bsvi_diagnostics *d, const bsvi_trajectory *t,
                                                 const bsvi_buffer_weights *pi, double *ess,
                                                 double *khat);

/**
 * @brief ESS and PSIS k-hat of the weights behind an estimator's last bound, per data point.
 *
 * Reads the last result's decoder targets (T per data point, ordered by data point then
 * slot; see estimator.h), which must be one per importance sample:
 * - ::BSVI_BOUND_ELBO and ::BSVI_BOUND_IWAE (uniform weights): the weights are the targets'
 *   w_s (bsvi_estimator_get_target_log_weights()), T = 1 respectively K per data point. The
 *   K samples of bsvi_estimator_iwae() are its IWAE bound's weights.
 * - ::BSVI_BOUND_BSVI, ::BSVI_BOUND_BSVI_DS and ::BSVI_BOUND_GIWAE (weights pi_i w_i): the
 *   estimator does not keep pi, so the weights are read as the targets' coefficients
 *   r_bi = pi_i w_bi / sum_j pi_j w_bj (bsvi_estimator_get_targets()). ESS and k-hat do not
 *   depend on that normalisation, but a coefficient that underflows (a weight below about
 *   1e-308 of its data point's largest) reads as zero; bsvi_diagnostics_trajectory()
 *   (BSVI) or bsvi_diagnostics_compute() on the host's log_joint - log_proposal + log pi
 *   (GIWAE) work from the log weights instead.
 * - ::BSVI_BOUND_SVI (one target, the last of the k+1 slots) and ::BSVI_BOUND_BSVI_SIR (M
 *   targets resampled from the buffer, with repeats) are refused with ::BSVI_ERR_BAD_STATE.
 *
 * A data point of zero density (coefficients all 0, every log w -INFINITY) gets ESS 0 and
 * k-hat NaN.
 * @param d Handle with capacity at least T.
 * @param est Estimator with a result (read only).
 * @param batch Must equal bsvi_estimator_batch().
 * @param ess Output @p batch effective sample sizes, in [1, T] (0 for a zero-density point),
 *        or NULL to skip.
 * @param khat Output @p batch k-hat values (+INFINITY when not estimable, e.g. T < 21; NaN
 *        for a zero-density point), or NULL to skip.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT (d or est NULL), ::BSVI_ERR_BAD_STATE (no
 *         result yet; an SVI-k or BSVI-SIR result), ::BSVI_ERR_SIZE_MISMATCH (batch !=
 *         bsvi_estimator_batch(), or T above the handle's capacity), ::BSVI_ERR_NO_MEMORY (a
 *         workspace of B*T doubles). The outputs are unchanged on error.
 * @since 0.2.0
 */
BSVI_API bsvi_status bsvi_diagnostics_estimator(bsvi_diagnostics *d, const bsvi_estimator *est,
                                                size_t batch, double *ess, double *khat);

/**
 * @brief Message describing the last error on this handle ("" if none). Infallible.
 * @param d Handle or NULL. @return String owned by the handle (static for NULL).
 * @since 0.2.0
 */
BSVI_API const char *bsvi_diagnostics_last_error(const bsvi_diagnostics *d);

BSVI_END_DECLS

#endif /* BSVI_DIAGNOSTICS_H */
