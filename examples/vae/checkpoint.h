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
 *            data-set name (32 bytes, NUL-terminated), and (versions 3, 4) the run's
 *            --max-train (u64, 0: every training image)
 *   progress epoch, step (= RNG call counter), AMSGrad t, best epoch, bad epochs,
 *            best validation bound, training seconds
 *   pi       u64 n (n = k+1 for the bsvi methods, else 0), then (version 4) n logits a
 *            (pi = softmax(a), bsvi_buffer_weights_get_logits), n Adam first moments m,
 *            n second moments v and the u64 Adam step count of pi (always present, 0
 *            without pi; bsvi_buffer_weights_get_adam_state), all binary64; (versions
 *            1-3) n probabilities pi, binary64
 *   params   u64 n, then 4 arrays of n network reals: parameters, AMSGrad m, v, vmax
 *   check    u64 FNV-1a 64 hash of every byte before it
 * A file with another magic, another version, a wrong size, a bad hash or
 * inconsistent sizes is refused with a one-line reason. Version 3 is version 4
 * with pi stored as probabilities only (read with bsvi_buffer_weights_set_probs: the
 * logits are log pi and pi's Adam state restarts at 0); version 2 is version 3
 * without the --max-train field (read as 0 = unknown, vae_progress.version says
 * which); version 1 (written before the float32 networks) is version 2 with the
 * precision field 0 and binary64 network arrays. All three are still read; the
 * writer writes version 4.
 *
 * Hostile files (issue 12): nothing is allocated from a header before it is
 * checked. The file may be at most max_bytes long; every configuration field is
 * checked against its range (vae_config_check, naming the field), the parameter
 * count against the architecture and the file's remaining length, and the
 * memory the trainer would take (vae_config_memory) against max_bytes, all
 * before vae_trainer_init. Then every stored value is checked: pi (n = k+1 or 0;
 * versions 1-3: each in [0, 1]; version 4: logits not NaN or +inf and at least one
 * finite, m finite, v finite and >= 0, the step count at most the step counter and
 * 0 without pi), parameters and AMSGrad m finite, v and vmax finite, >= 0 and
 * vmax >= v, the progress record (best epoch and bad epochs <= epoch, best bound
 * not NaN or +inf, seconds finite and >= 0).
 *
 * A build writes its own precision (VAE_REAL_BITS). Loading converts the stored
 * arrays to this build's vae_real (exactly from float32 to float64, rounded the
 * other way) and reports the stored precision in vae_progress.precision_bits, so
 * that a program can refuse to resume a run in another precision.
 *
 * Resuming restores parameters, optimiser state, epoch and the step counter,
 * which drives every random stream (dynamic binarisation, SVI, estimators) and
 * the epoch's shuffling, so a resumed run draws the same numbers as an
 * uninterrupted one: bit for bit, bsvi-sir-pi included (version 4 restores pi's
 * logits and Adam state; a version 3 file restores pi only, and its Adam moments
 * restart). */
#ifndef VAE_CHECKPOINT_H
#define VAE_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "train.h"

#define VAE_CHECKPOINT_VERSION 4u

/* Ranges of the configuration (vae_config_check): what `vae train` accepts and a
 * checkpoint may hold. */
#define VAE_MAX_DIM 100000u   /* x_dim, h_dim, z_dim */
#define VAE_MAX_BATCH 1000000u
#define VAE_MAX_K 1000u       /* k and sir_m */
/* Default limit on the memory a trainer may take (vae_config_memory): 4 GiB, about
 * 90 times the paper's configuration. */
#define VAE_MAX_TRAINER_BYTES ((uint64_t)4 << 30)

/* The header line of a run's log.csv (vae train; the columns are in README.md). */
#define VAE_LOG_HEADER                                                                  \
    "epoch,step,train_bound,svi0,svik,bsvik,mean_pos,valid_bound,valid_svi0,valid_svik," \
    "valid_bsvik,epoch_seconds,wall_seconds,test_iwae"
/* The columns a log begun by this build has after VAE_LOG_HEADER's: the mean ESS of the
 * training bound's importance weights (vae_stats.ess). A log begun by an earlier build keeps
 * VAE_LOG_HEADER's columns alone when its run is resumed (vae train detects the header). */
#define VAE_LOG_DIAG_COLUMNS ",train_ess"

typedef struct vae_progress {
    uint64_t epoch;      /* epochs completed */
    uint64_t best_epoch; /* epoch of the best validation bound (0: none yet) */
    uint64_t bad_epochs; /* epochs since the best one (early stopping) */
    double best_valid;   /* best validation bound so far (-inf: none) */
    double seconds;      /* training wall time so far, over all resumed runs */
    unsigned precision_bits; /* load: precision of the stored network arrays (32, 64) */
    uint64_t max_train;  /* the run's --max-train (0: all; versions 1 and 2: 0, unknown) */
    unsigned version;    /* load: the file's format version (1..VAE_CHECKPOINT_VERSION) */
} vae_progress;

/* Checks every field of a configuration against its range (method, likelihood,
 * dimensions, batch, k, M, flags, step rule; SVI step size, AMSGrad rate, betas,
 * epsilon and the pi rate finite and in range) and vae_config_memory(c) against
 * max_bytes. 0 when it is sane, else err names the field and its value. */
int vae_config_check(const vae_config *c, uint64_t max_bytes, char *err, size_t errlen);

/* An upper estimate, in bytes, of the memory a trainer of this configuration
 * takes (networks, workspace, forward cache, batch buffers, libbsvi handles and
 * the per-step trajectory), saturating at UINT64_MAX. */
uint64_t vae_config_memory(const vae_config *c);

/* Writes the trainer (config, parameters, optimiser, pi, step) and progress
 * to path (through path.tmp and a rename). 0 on success, else err says why. */
int vae_checkpoint_save(const char *path, const vae_trainer *t, const vae_progress *p,
                        char *err, size_t errlen);

/* Reads a checkpoint and builds a trainer from it (t is initialised by this
 * call; free it with vae_trainer_free). 0 on success, else err says why and t
 * holds nothing to free. Files and trainers over VAE_MAX_TRAINER_BYTES are refused. */
int vae_checkpoint_load(const char *path, vae_trainer *t, vae_progress *p, char *err,
                        size_t errlen);

/* vae_checkpoint_load from len bytes in memory (name is used in messages), with
 * max_bytes in place of VAE_MAX_TRAINER_BYTES (the fuzz harness uses a small one). */
int vae_checkpoint_parse(const unsigned char *buf, size_t len, const char *name,
                         uint64_t max_bytes, vae_trainer *t, vae_progress *p, char *err,
                         size_t errlen);

/* The bytes vae_checkpoint_save writes, in format `version` (1..VAE_CHECKPOINT_VERSION)
 * with network arrays of `bits` (32 or 64; version 1: 64 only), into a malloc'ed
 * *buf of *len bytes. Older versions are for tests and fuzz seeds. 0 on success. */
int vae_checkpoint_encode(const vae_trainer *t, const vae_progress *p, unsigned version,
                          unsigned bits, unsigned char **buf, size_t *len, char *err,
                          size_t errlen);

/* Makes the run log at path agree with a checkpoint at `epoch` (vae train --resume):
 * the header must be VAE_LOG_HEADER, alone or followed by VAE_LOG_DIAG_COLUMNS (the header
 * is kept as it is); rows are kept for epochs 1..epoch, in order,
 * and dropped past it, as is an unfinished last line (no newline) and an earlier
 * row that a later one of the same epoch repeats (a rerun after an interruption,
 * as builds before issue 12 wrote them). The file is rewritten through path.tmp
 * and a rename only when a row is dropped; *dropped (if not NULL) counts them.
 * Fails, changing nothing, when the log lacks a row of 1..epoch or has a row that
 * is not one. 0 on success. */
int vae_log_reconcile(const char *path, uint64_t epoch, size_t *dropped, char *err,
                      size_t errlen);

/* FNV-1a 64 of n bytes. */
uint64_t vae_fnv1a64(const unsigned char *data, size_t n);

#endif /* VAE_CHECKPOINT_H */
