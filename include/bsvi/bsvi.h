/**
 * @file bsvi.h
 * @brief Umbrella header: includes every public libbsvi header.
 *
 * libbsvi implements Buffered Stochastic Variational Inference (Shu, Bui,
 * Whang and Ermon, AISTATS 2019) and its relatives (ELBO, IWAE, SVI-k,
 * BSVI-DS, BSVI-SIR, generalised IWAE) behind a stable C API. The host owns
 * the model (batched log-density callbacks) and its networks; the library
 * owns proposals, refinement, buffering, the bound estimators and the
 * gradients the host needs.
 */
#ifndef BSVI_BSVI_H
#define BSVI_BSVI_H

#include "bsvi/export.h"
#include "bsvi/version.h"
#include "bsvi/status.h"
#include "bsvi/rng.h"
#include "bsvi/stats.h"
#include "bsvi/model.h"
#include "bsvi/proposal.h"
#include "bsvi/trajectory.h"
#include "bsvi/svi.h"
#include "bsvi/weights.h"
#include "bsvi/estimator.h"
#include "bsvi/evaluate.h"
#include "bsvi/diagnostics.h"

#endif /* BSVI_BSVI_H */
