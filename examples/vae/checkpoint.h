/* Versioned binary checkpoints of a VAE trainer.
 *
 * Layout (all integers little-endian u32/u64, reals IEEE-754 binary64 stored as
 * their little-endian u64 bit pattern, network reals in the stored precision):
 *   magic    8 bytes "BSVIVAE\0"
 *   version  u32 (VAE_CHECKPOINT_VERSION), u32 precision of the network arrays:
 *            32 (binary32 as a u32 bit pattern) or 64 (binary64)
 *   size     u64 total file size in bytes (a truncated file is detected before parsing)
 *   config   method, likelihood, sizes, batch, k, M, DReG flag, SVI step size / rule /
 *            clip, AMSGrad lr / betas / eps, KL-anneal steps, pi learning rate, seed,
 *            data-set name (32 bytes)
 *   progress epoch, step (= RNG call counter), AMSGrad t, best epoch, bad epochs,
 *            best validation bound, training seconds
 *   pi       u64 n, n reals (the buffer weights; n = 0 for methods without pi)
 *   params   u64 n, then 4 arrays of n network reals: parameters, AMSGrad m, v, vmax
 *   check    u64 FNV-1a 64 hash of every byte before it
 * A file with another magic, another version, a wrong size, a bad hash or
 * inconsistent sizes is refused with a one-line reason. Version 1 (written
 * before the float32 networks) is the same layout with the precision field 0
 * and binary64 network arrays; it is still read.
 *
 * A build writes its own precision (VAE_REAL_BITS). Loading converts the stored
 * arrays to this build's vae_real (exactly from float32 to float64, rounded the
 * other way) and reports the stored precision in vae_progress.precision_bits, so
 * that a program can refuse to resume a run in another precision.
 *
 * Resuming restores parameters, optimiser state, epoch and the step counter,
 * which drives every random stream (dynamic binarisation, SVI, estimators) and
 * the epoch's shuffling, so a resumed run draws the same numbers as an
 * uninterrupted one. (Exception: the Adam moments of pi in bsvi-sir-pi are
 * not exposed by libbsvi; pi itself is restored and its moments restart.) */
#ifndef VAE_CHECKPOINT_H
#define VAE_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "train.h"

#define VAE_CHECKPOINT_VERSION 2u

typedef struct vae_progress {
    uint64_t epoch;      /* epochs completed */
    uint64_t best_epoch; /* epoch of the best validation bound (0: none yet) */
    uint64_t bad_epochs; /* epochs since the best one (early stopping) */
    double best_valid;   /* best validation bound so far (-inf: none) */
    double seconds;      /* training wall time so far, over all resumed runs */
    unsigned precision_bits; /* load: precision of the stored network arrays (32, 64) */
} vae_progress;

/* Writes the trainer (config, parameters, optimiser, pi, step) and progress
 * to path (through path.tmp and a rename). 0 on success, else err says why. */
int vae_checkpoint_save(const char *path, const vae_trainer *t, const vae_progress *p,
                        char *err, size_t errlen);

/* Reads a checkpoint and builds a trainer from it (t is initialised by this
 * call; free it with vae_trainer_free). 0 on success, else err says why and t
 * holds nothing to free. */
int vae_checkpoint_load(const char *path, vae_trainer *t, vae_progress *p, char *err,
                        size_t errlen);

/* FNV-1a 64 of n bytes. */
uint64_t vae_fnv1a64(const unsigned char *data, size_t n);

#endif /* VAE_CHECKPOINT_H */
