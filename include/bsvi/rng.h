/**
 * @file rng.h
 * @brief The counter-based generator behind every random draw, and log-space helpers.
 *
 * Every handle that draws random numbers (proposal, SVI, estimator, evaluator)
 * owns a 64-bit seed, a 64-bit call counter and a data-point id offset. A draw
 * for data point b of a call is a pure function of
 * (seed, call counter, id offset + b, step, purpose, position) through
 * Philox4x32-10 (Salmon et al., SC'11), so results do not depend on batch
 * size, call order within a batch or thread count. The call counter advances
 * by one after each successful call that draws numbers.
 *
 * Counter ranges: the call counter and the data-point id each use 32 bits of
 * the Philox counter (so at most 2^32 calls per seed and 2^32 data points per
 * call sequence before values repeat); the step uses 28 bits and the
 * position within one draw 32 bits (2^33 normal variates per data point, step
 * and purpose). A call that would need more normals from one stream than that
 * is refused with ::BSVI_ERR_OUT_OF_RANGE before any work, so no value repeats
 * within a call.
 */
#ifndef BSVI_RNG_H
#define BSVI_RNG_H

#include <stddef.h>
#include <stdint.h>

#include "bsvi/export.h"

BSVI_BEGIN_DECLS

/**
 * @brief One Philox4x32-10 block: out = Philox(counter, key).
 *
 * Exposed so that hosts can reproduce the library's streams and so that the
 * published known-answer vectors can be checked.
 * @param counter Four 32-bit counter words (not NULL).
 * @param key Two 32-bit key words (not NULL).
 * @param out Four 32-bit output words (not NULL; may alias @p counter).
 * Infallible for non-NULL arguments; does nothing if any pointer is NULL.
 * @since 0.1.0
 */
BSVI_API void bsvi_philox4x32_10(const uint32_t counter[4], const uint32_t key[2],
                                 uint32_t out[4]);

/**
 * @brief Max-shifted log-sum-exp: log sum_i exp(a[i]).
 * @param a @p n values (may be NULL only when @p n is 0). -INFINITY entries are legal.
 * @param n Number of values.
 * @return The log-sum-exp; -INFINITY when n is 0 or every entry is -INFINITY;
 *         +INFINITY if an entry is +INFINITY; NaN if an entry is NaN. Infallible.
 * @since 0.1.0
 */
BSVI_API double bsvi_logsumexp(const double *a, size_t n);

BSVI_END_DECLS

#endif /* BSVI_RNG_H */
