/**
 * @file stats.h
 * @brief What a handle did: the counters read by bsvi_svi_get_stats(),
 *        bsvi_estimator_get_stats() and bsvi_evaluator_get_stats().
 *
 * Counters start at 0 when the handle is created, count only calls that succeeded (a
 * failed or cancelled call leaves them as they were) and are never reset by setters;
 * `*_reset_stats` sets them back to 0.
 */
#ifndef BSVI_STATS_H
#define BSVI_STATS_H

#include <stdint.h>

#include "bsvi/export.h"

BSVI_BEGIN_DECLS

/** @brief Counters of a handle's successful calls. Fields are only ever appended. */
typedef struct bsvi_stats {
    uint64_t calls;            /**< Successful runs, computes or evaluations. */
    uint64_t data_points;      /**< Data points they covered (batch sizes summed). */
    uint64_t likelihood_calls; /**< Calls of the host's likelihood callback. */
    uint64_t likelihood_rows;  /**< Latent rows passed to it. */
    uint64_t prior_calls;      /**< Calls of the host's prior callback (0 with the built-in prior). */
    uint64_t prior_rows;       /**< Latent rows passed to it. */
    uint64_t svi_steps;        /**< SVI steps run: k per bsvi_svi_run(), K-1 per BSVI-K estimate,
                                    whatever the batch size and however many points froze. */
    uint64_t zero_points;      /**< Data points whose bound or estimate was -INFINITY (always 0
                                    for SVI runs, which compute no bound). */
} bsvi_stats;

BSVI_END_DECLS

#endif /* BSVI_STATS_H */
