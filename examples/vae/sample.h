/* Images drawn from a trained decoder (vae sample; the BSVI paper's Figure 5). */
#ifndef VAE_SAMPLE_H
#define VAE_SAMPLE_H

#include <stddef.h>
#include <stdint.h>

#include "train.h"

/* Writes a binary PGM of `rows` rows, each the decoder's mean image for one z ~ N(0, I)
 * followed by per_row draws x ~ p(x | z), 28x28 cells (sqrt(x_dim)) with 2-pixel borders.
 * The draws depend on seed only. Returns 0, or 1 with a message in err. */
int vae_sample_grid(const vae_trainer *t, size_t rows, size_t per_row, uint64_t seed,
                    const char *path, char *err, size_t errlen);

#endif
