/**
 * @file proposal.h
 * @brief Diagonal Gaussian proposals q(z; lambda) for a batch of data points.
 *
 * lambda = (mean, log-std) per data point; sigma = exp(log-std). Parameters are
 * stored as two row-major batch*dim arrays. The host typically sets them from
 * its encoder's output (lambda_0 = f(x)).
 *
 * Sample layout used throughout the library: with S samples per data point,
 * row b*S + s (b = data point, s = sample) of a (batch*S)*dim array holds
 * sample s of data point b.
 *
 * Thread rules: one handle per thread; const functions may run concurrently. Their error
 * paths are race-free: a message is stored whole, or not at all when another thread is
 * storing one at that moment, so on a proposal shared between threads the message may
 * describe another thread's failure; read it once the other threads are done with the
 * handle (the status is always this call's).
 *
 * Callbacks: a running call that reads a proposal (bsvi_svi_run(), bsvi_estimator_elbo(),
 * bsvi_estimator_iwae(), the evaluator's estimates, final_q of bsvi_evaluator_bsvi()) holds it (see status.h): its
 * const functions work from a callback, its other functions return ::BSVI_ERR_REENTRANT,
 * and its destroy is deferred until the call returns.
 */
#ifndef BSVI_PROPOSAL_H
#define BSVI_PROPOSAL_H

#include <stddef.h>
#include <stdint.h>

#include "bsvi/export.h"
#include "bsvi/status.h"

BSVI_BEGIN_DECLS

/** @brief Largest batch size any handle accepts. */
#define BSVI_MAX_BATCH ((size_t)1 << 24)
/** @brief Largest number of samples per data point in one call. */
#define BSVI_MAX_SAMPLES ((size_t)1 << 20)
/** @brief Smallest accepted log-std (sigma = exp(-30) is about 1e-13). */
#define BSVI_MIN_LOG_STD (-30.0)
/** @brief Largest accepted log-std. */
#define BSVI_MAX_LOG_STD (30.0)

/** @brief Opaque proposal handle. */
typedef struct bsvi_proposal bsvi_proposal;

/**
 * @brief Create a proposal for @p batch data points in dimension @p dim, initialised to N(0, I).
 * @param batch Number of data points, 1..::BSVI_MAX_BATCH.
 * @param dim Latent dimension, 1..::BSVI_MAX_DIM.
 * @param out Receives the handle (caller frees with bsvi_proposal_destroy()); NULL on failure.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_ZERO_SIZE,
 *         ::BSVI_ERR_OUT_OF_RANGE, ::BSVI_ERR_NO_MEMORY.
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_proposal_create(size_t batch, size_t dim, bsvi_proposal **out);

/**
 * @brief Destroy a proposal; NULL is ignored. Infallible.
 *
 * Called from a callback of a running call that holds the proposal, the free is deferred
 * until the last such call returns; the handle must not be used after this call.
 * @param q Handle to free.
 * @since 0.1.0
 */
BSVI_API void bsvi_proposal_destroy(bsvi_proposal *q);

/**
 * @brief Number of data points. @param q Handle or NULL. @return batch, 0 for NULL. Infallible.
 * @since 0.1.0
 */
BSVI_API size_t bsvi_proposal_batch(const bsvi_proposal *q);

/**
 * @brief Latent dimension. @param q Handle or NULL. @return dim, 0 for NULL. Infallible.
 * @since 0.1.0
 */
BSVI_API size_t bsvi_proposal_dim(const bsvi_proposal *q);

/**
 * @brief Copy in the parameters lambda = (mean, log-std).
 * @param q Proposal handle.
 * @param mean Row-major batch*dim means (not NULL), all finite. Copied.
 * @param log_std Row-major batch*dim log standard deviations (not NULL), each in
 *        [::BSVI_MIN_LOG_STD, ::BSVI_MAX_LOG_STD]. Copied.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_BAD_VALUE (non-finite or out-of-range
 *         entry; the handle keeps its previous parameters).
 *         ::BSVI_ERR_REENTRANT (the handle is held by a running call; see status.h).
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_proposal_set_params(bsvi_proposal *q, const double *mean,
                                              const double *log_std);

/**
 * @brief Copy out the parameters.
 * @param q Proposal handle.
 * @param mean Output batch*dim means, or NULL to skip.
 * @param log_std Output batch*dim log-stds, or NULL to skip.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT (q NULL).
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_proposal_get_params(const bsvi_proposal *q, double *mean,
                                              double *log_std);

/**
 * @brief Set the seed of the handle's generator and reset its call counter to 0.
 * @param q Proposal handle. @param seed Any 64-bit value.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT.
 *         ::BSVI_ERR_REENTRANT (the handle is held by a running call; see status.h).
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_proposal_set_seed(bsvi_proposal *q, uint64_t seed);

/**
 * @brief Set the call counter (see rng.h) and the id of this batch's first data point.
 *
 * Drawing for a batch split in two, with the second half given
 * id_offset = size of the first half and the same counter, reproduces the
 * whole-batch draws bitwise.
 * @param q Proposal handle. @param counter Call counter. @param id_offset Data-point id offset.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT.
 *         ::BSVI_ERR_REENTRANT (the handle is held by a running call; see status.h).
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_proposal_set_stream(bsvi_proposal *q, uint64_t counter,
                                              uint64_t id_offset);

/**
 * @brief Draw @p nsamples reparameterised samples per data point: z = mean + sigma * eps.
 * @param q Proposal handle.
 * @param nsamples Samples per data point (at least 1).
 * @param z Output (batch*nsamples)*dim, row b*nsamples + s (not NULL).
 * @param eps Output standard-normal noise of the same shape, or NULL.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_ZERO_SIZE,
 *         ::BSVI_ERR_OUT_OF_RANGE (nsamples above ::BSVI_MAX_SAMPLES).
 * Advances the call counter on success.
 *         ::BSVI_ERR_REENTRANT (the handle is held by a running call; see status.h).
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_proposal_sample(bsvi_proposal *q, size_t nsamples, double *z,
                                          double *eps);

/**
 * @brief Evaluate log q(z; lambda_b) for rows laid out as bsvi_proposal_sample() writes them.
 * @param q Proposal handle.
 * @param nsamples Rows per data point (at least 1).
 * @param z Input (batch*nsamples)*dim (not NULL).
 * @param log_q Output batch*nsamples (not NULL); -INFINITY for a row with an infinite entry.
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_ZERO_SIZE, ::BSVI_ERR_OUT_OF_RANGE,
 *         ::BSVI_ERR_BAD_VALUE (an entry of @p z is NaN; @p log_q is then untouched).
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_proposal_log_density(const bsvi_proposal *q, size_t nsamples,
                                               const double *z, double *log_q);

/**
 * @brief Entropy of each q_b: sum_j (0.5 log(2 pi e) + log-std_j).
 * @param q Proposal handle. @param out Output, batch entries (not NULL).
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT.
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_proposal_entropy(const bsvi_proposal *q, double *out);

/**
 * @brief Analytic KL(q_b || N(0, I)) = sum_j 0.5 (mean^2 + sigma^2 - 1 - 2 log-std).
 * @param q Proposal handle. @param out Output, batch entries (not NULL).
 * @return ::BSVI_OK, ::BSVI_ERR_NULL_ARGUMENT.
 * @since 0.1.0
 */
BSVI_API bsvi_status bsvi_proposal_kl_standard_normal(const bsvi_proposal *q, double *out);

/**
 * @brief Message describing the last error on this handle ("" if none). Infallible.
 * @param q Handle or NULL. @return String owned by the handle (static for NULL).
 * @since 0.1.0
 */
BSVI_API const char *bsvi_proposal_last_error(const bsvi_proposal *q);

BSVI_END_DECLS

#endif /* BSVI_PROPOSAL_H */
