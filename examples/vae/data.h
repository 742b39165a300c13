/* Image data sets for the VAE example: IDX readers, the shipped subset, binarisation.
 *
 * Images are 28x28 = 784 pixels, 8-bit grayscale (0..255), row-major, one
 * image after another. All functions return 0 on success and non-zero on
 * failure, writing a one-line reason into err (errlen bytes). */
#ifndef VAE_DATA_H
#define VAE_DATA_H

#include <stddef.h>
#include <stdint.h>

#define VAE_IMAGE_PIXELS 784

typedef struct vae_dataset {
    size_t n;               /* number of images */
    size_t dim;             /* pixels per image (784) */
    unsigned char *pixels;  /* n*dim gray levels 0..255, owned */
    unsigned char *labels;  /* n class labels 0..9, owned; NULL when not loaded */
} vae_dataset;

/* Reads an IDX3 ubyte image file (magic 0x00000803) and optionally an IDX1
 * label file (magic 0x00000801; NULL to skip). Checks magic numbers, sizes,
 * that the file length matches the header exactly, and that counts agree. */
int vae_load_idx(const char *images_path, const char *labels_path, vae_dataset *out, char *err,
                 size_t errlen);

/* Loads a named split from the data cache made by scripts/fetch-data.sh:
 * dataset "mnist" or "fashion-mnist", split "train" (the first 50,000 of the
 * official training images), "valid" (the last 10,000) or "test". cache_dir
 * NULL means $BSVI_DATA_DIR or "data-cache" under the current directory. */
int vae_load_split(const char *cache_dir, const char *dataset, const char *split,
                   vae_dataset *out, char *err, size_t errlen);

/* The small subset shipped inside the repository (no download needed):
 * split "train" or "test". */
int vae_load_builtin(const char *split, vae_dataset *out, char *err, size_t errlen);

/* Frees the arrays of a data set (the struct itself is the caller's). NULL-safe. */
void vae_dataset_free(vae_dataset *d);

/* Binarises the images listed in rows (count indices; NULL means images
 * 0..count-1) into out (count*dim doubles of 0/1), drawing pixel ~
 * Bernoulli(gray/255) from a counter-based stream keyed by (seed, batch
 * counter, image index), so a draw does not depend on batch composition. An
 * out-of-range row gives an all-zero image. Use distinct seeds per split. */
void vae_binarize(const vae_dataset *d, const size_t *rows, size_t count, uint64_t seed,
                  uint64_t counter, double *out);

/* Copies gray levels of the given rows as doubles in [0, 255] (for the
 * discretised logistic likelihood). */
void vae_gray(const vae_dataset *d, const size_t *rows, size_t count, double *out);

#endif /* VAE_DATA_H */
