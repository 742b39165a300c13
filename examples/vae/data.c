/* Image data sets for the VAE example: strict IDX readers, the shipped subset,
 * and counter-based binarisation. See data.h and docs/data.md. */
#include "data.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bsvi/rng.h"

#define IDX_IMAGES_MAGIC 0x00000803u /* unsigned byte, 3 dimensions */
#define IDX_LABELS_MAGIC 0x00000801u /* unsigned byte, 1 dimension */
#define IDX_IMAGES_HEADER 16u
#define IDX_LABELS_HEADER 8u
#define IDX_SIDE 28u
#define N_CLASSES 10u
#define PATH_MAX_LEN 4096

/* Official MNIST sizes; the Fashion-MNIST files made by scripts/fetch-data.sh
 * use the same counts. */
#define SPLIT_TRAIN_FILE_N 60000u
#define SPLIT_TRAIN_N 50000u
#define SPLIT_TEST_N 10000u
#define BUILTIN_TRAIN_N 2000u
#define BUILTIN_TEST_N 500u

/* Philox counter word 1 tag: the library puts purpose << 28 | step in this word
 * with purposes 1..5, so purpose 15 keeps these streams apart from every stream
 * the library draws, even under the same seed. */
#define BINARIZE_PURPOSE 0xFu

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void set_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static uint32_t be32(const unsigned char *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

/* Opens an IDX file and reads its header after checking the file is at least
 * that long. Sets *file_len. Returns NULL (with err set) on failure. */
static FILE *open_idx(const char *path, const char *what, const char *hint, unsigned char *hdr,
                      size_t hdr_len, long *file_len, char *err, size_t errlen) {
    errno = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        set_err(err, errlen, "cannot open %s file '%s': %s%s", what, path,
                errno ? strerror(errno) : "unknown error", hint ? hint : "");
        return NULL;
    }
    long len = -1;
    if (fseek(f, 0, SEEK_END) == 0) len = ftell(f);
    if (len < 0 || fseek(f, 0, SEEK_SET) != 0) {
        set_err(err, errlen, "'%s': cannot determine the file size", path);
        fclose(f);
        return NULL;
    }
    if (len == 0) {
        set_err(err, errlen, "'%s': empty file (0 bytes), expected an IDX %s file", path, what);
        fclose(f);
        return NULL;
    }
    if ((unsigned long)len < hdr_len) {
        set_err(err, errlen, "'%s': truncated header (%ld of %zu bytes)", path, len, hdr_len);
        fclose(f);
        return NULL;
    }
    if (fread(hdr, 1, hdr_len, f) != hdr_len) {
        set_err(err, errlen, "'%s': read error in the header", path);
        fclose(f);
        return NULL;
    }
    *file_len = len;
    return f;
}

static int check_magic(const char *path, const unsigned char *hdr, uint32_t want, const char *desc,
                       char *err, size_t errlen) {
    uint32_t magic = be32(hdr);
    if (magic == want) return 0;
    if (hdr[0] == 0x1f && hdr[1] == 0x8b)
        set_err(err, errlen,
                "'%s': wrong magic 0x%08lX: the file is gzip-compressed (decompress it first)",
                path, (unsigned long)magic);
    else
        set_err(err, errlen, "'%s': wrong magic 0x%08lX, expected 0x%08lX (%s)", path,
                (unsigned long)magic, (unsigned long)want, desc);
    return -1;
}

static int check_length(const char *path, long len, uint64_t expect, uint32_t n, const char *unit,
                        char *err, size_t errlen) {
    if ((uint64_t)len == expect) return 0;
    if ((uint64_t)len < expect)
        set_err(err, errlen,
                "'%s': truncated: the header says %lu %s (%llu bytes) but the file has %ld bytes",
                path, (unsigned long)n, unit, (unsigned long long)expect, len);
    else
        set_err(err, errlen,
                "'%s': size mismatch: the header says %lu %s (%llu bytes) but the file has %ld "
                "bytes (trailing data)",
                path, (unsigned long)n, unit, (unsigned long long)expect, len);
    return -1;
}

/* Loads images [first, first+count) (count SIZE_MAX: to the end) of an IDX3
 * file, and the matching labels when labels_path is not NULL. The whole files
 * are validated (header, exact length, label count); labels are range-checked
 * over the rows loaded. expect_n, when not 0, is the number of images the file
 * must hold. hint is appended to "cannot open" messages. */
static int load_range(const char *images_path, const char *labels_path, size_t first, size_t count,
                      uint32_t expect_n, const char *hint, vae_dataset *out, char *err,
                      size_t errlen) {
    if (!out) {
        set_err(err, errlen, "vae data: NULL output data set");
        return -1;
    }
    memset(out, 0, sizeof *out);
    if (!images_path) {
        set_err(err, errlen, "vae data: NULL image file path");
        return -1;
    }

    unsigned char hdr[IDX_IMAGES_HEADER];
    long len = 0;
    FILE *f = open_idx(images_path, "image", hint, hdr, sizeof hdr, &len, err, errlen);
    if (!f) return -1;
    if (check_magic(images_path, hdr, IDX_IMAGES_MAGIC, "IDX3 unsigned-byte images", err,
                    errlen) != 0)
        goto fail_f;
    uint32_t n = be32(hdr + 4), rows = be32(hdr + 8), cols = be32(hdr + 12);
    if (rows != IDX_SIDE || cols != IDX_SIDE) {
        set_err(err, errlen, "'%s': images are %lux%lu, expected 28x28", images_path,
                (unsigned long)rows, (unsigned long)cols);
        goto fail_f;
    }
    if (n == 0) {
        set_err(err, errlen, "'%s': the header says 0 images", images_path);
        goto fail_f;
    }
    if (check_length(images_path, len, IDX_IMAGES_HEADER + (uint64_t)n * VAE_IMAGE_PIXELS, n,
                     "images", err, errlen) != 0)
        goto fail_f;
    if (expect_n != 0 && n != expect_n) {
        set_err(err, errlen, "'%s': %lu images, expected %lu", images_path, (unsigned long)n,
                (unsigned long)expect_n);
        goto fail_f;
    }
    if (count == SIZE_MAX) count = first < n ? n - first : 0;
    if (first > n || count > n - first || count == 0) {
        set_err(err, errlen, "'%s': rows [%zu, %zu) are outside its %lu images", images_path, first,
                first + count, (unsigned long)n);
        goto fail_f;
    }

    size_t bytes = count * VAE_IMAGE_PIXELS;
    out->pixels = malloc(bytes);
    if (!out->pixels) {
        set_err(err, errlen, "out of memory (%zu bytes for '%s')", bytes, images_path);
        goto fail_f;
    }
    if (fseek(f, (long)(IDX_IMAGES_HEADER + first * VAE_IMAGE_PIXELS), SEEK_SET) != 0 ||
        fread(out->pixels, 1, bytes, f) != bytes) {
        set_err(err, errlen, "'%s': read error (file changed while reading?)", images_path);
        goto fail_f;
    }
    fclose(f);
    f = NULL;

    if (labels_path) {
        unsigned char lh[IDX_LABELS_HEADER];
        f = open_idx(labels_path, "label", hint, lh, sizeof lh, &len, err, errlen);
        if (!f) goto fail;
        if (check_magic(labels_path, lh, IDX_LABELS_MAGIC, "IDX1 unsigned-byte labels", err,
                        errlen) != 0)
            goto fail_f;
        uint32_t nl = be32(lh + 4);
        if (check_length(labels_path, len, IDX_LABELS_HEADER + (uint64_t)nl, nl, "labels", err,
                         errlen) != 0)
            goto fail_f;
        if (nl != n) {
            set_err(err, errlen, "label count mismatch: '%s' has %lu labels but '%s' has %lu images",
                    labels_path, (unsigned long)nl, images_path, (unsigned long)n);
            goto fail_f;
        }
        out->labels = malloc(count);
        if (!out->labels) {
            set_err(err, errlen, "out of memory (%zu bytes for '%s')", count, labels_path);
            goto fail_f;
        }
        if (fseek(f, (long)(IDX_LABELS_HEADER + first), SEEK_SET) != 0 ||
            fread(out->labels, 1, count, f) != count) {
            set_err(err, errlen, "'%s': read error (file changed while reading?)", labels_path);
            goto fail_f;
        }
        fclose(f);
        f = NULL;
        for (size_t i = 0; i < count; ++i) {
            if (out->labels[i] >= N_CLASSES) {
                set_err(err, errlen, "'%s': label %u at index %zu is out of range 0..9",
                        labels_path, (unsigned)out->labels[i], first + i);
                goto fail;
            }
        }
    }
    out->n = count;
    out->dim = VAE_IMAGE_PIXELS;
    return 0;

fail_f:
    if (f) fclose(f);
fail:
    vae_dataset_free(out);
    return -1;
}

int vae_load_idx(const char *images_path, const char *labels_path, vae_dataset *out, char *err,
                 size_t errlen) {
    return load_range(images_path, labels_path, 0, SIZE_MAX, 0, NULL, out, err, errlen);
}

static int join(char *buf, size_t len, const char *dir, const char *sub, const char *name,
                char *err, size_t errlen) {
    int w = sub ? snprintf(buf, len, "%s/%s/%s", dir, sub, name)
                : snprintf(buf, len, "%s/%s", dir, name);
    if (w < 0 || (size_t)w >= len) {
        set_err(err, errlen, "path too long: '%s/%s'", dir, name);
        return -1;
    }
    return 0;
}

int vae_load_split(const char *cache_dir, const char *dataset, const char *split,
                   vae_dataset *out, char *err, size_t errlen) {
    if (out) memset(out, 0, sizeof *out);
    if (!dataset || (strcmp(dataset, "mnist") != 0 && strcmp(dataset, "fashion-mnist") != 0)) {
        set_err(err, errlen, "unknown data set '%s' (expected mnist or fashion-mnist)",
                dataset ? dataset : "(null)");
        return -1;
    }
    const char *prefix;
    size_t first, count;
    uint32_t expect_n;
    if (split && strcmp(split, "train") == 0) {
        prefix = "train", first = 0, count = SPLIT_TRAIN_N, expect_n = SPLIT_TRAIN_FILE_N;
    } else if (split && strcmp(split, "valid") == 0) {
        prefix = "train", first = SPLIT_TRAIN_N, count = SPLIT_TRAIN_FILE_N - SPLIT_TRAIN_N;
        expect_n = SPLIT_TRAIN_FILE_N;
    } else if (split && strcmp(split, "test") == 0) {
        prefix = "t10k", first = 0, count = SPLIT_TEST_N, expect_n = SPLIT_TEST_N;
    } else {
        set_err(err, errlen, "unknown split '%s' (expected train, valid or test)",
                split ? split : "(null)");
        return -1;
    }
    if (!cache_dir) {
        const char *env = getenv("BSVI_DATA_DIR");
        cache_dir = (env && *env) ? env : "data-cache";
    }
    char images[PATH_MAX_LEN], labels[PATH_MAX_LEN], name[64];
    snprintf(name, sizeof name, "%s-images-idx3-ubyte", prefix);
    if (join(images, sizeof images, cache_dir, dataset, name, err, errlen) != 0) return -1;
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte", prefix);
    if (join(labels, sizeof labels, cache_dir, dataset, name, err, errlen) != 0) return -1;
    return load_range(images, labels, first, count, expect_n,
                      " (run scripts/fetch-data.sh, or set BSVI_DATA_DIR to its cache folder)", out,
                      err, errlen);
}

static int file_exists(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    fclose(f);
    return 1;
}

int vae_load_builtin(const char *split, vae_dataset *out, char *err, size_t errlen) {
    if (out) memset(out, 0, sizeof *out);
    uint32_t expect_n;
    if (split && strcmp(split, "train") == 0) {
        expect_n = BUILTIN_TRAIN_N;
    } else if (split && strcmp(split, "test") == 0) {
        expect_n = BUILTIN_TEST_N;
    } else {
        set_err(err, errlen, "unknown built-in split '%s' (expected train or test)",
                split ? split : "(null)");
        return -1;
    }
    /* $BSVI_BUILTIN_DATA_DIR alone when set; otherwise the compiled-in source
     * folder, then "data" under the working directory, whichever has the file. */
    const char *dirs[2];
    size_t ndirs = 0;
    const char *env = getenv("BSVI_BUILTIN_DATA_DIR");
    if (env && *env) {
        dirs[ndirs++] = env;
    } else {
#ifdef VAE_DATA_DIR
        dirs[ndirs++] = VAE_DATA_DIR;
#endif
        dirs[ndirs++] = "data";
    }
    char images[PATH_MAX_LEN], labels[PATH_MAX_LEN], name[64];
    size_t pick = 0;
    for (size_t i = 0; i < ndirs; ++i) {
        snprintf(name, sizeof name, "fashion-%s-images-idx3-ubyte", split);
        if (join(images, sizeof images, dirs[i], NULL, name, err, errlen) != 0) return -1;
        if (file_exists(images)) {
            pick = i;
            break;
        }
    }
    snprintf(name, sizeof name, "fashion-%s-images-idx3-ubyte", split);
    if (join(images, sizeof images, dirs[pick], NULL, name, err, errlen) != 0) return -1;
    snprintf(name, sizeof name, "fashion-%s-labels-idx1-ubyte", split);
    if (join(labels, sizeof labels, dirs[pick], NULL, name, err, errlen) != 0) return -1;
    return load_range(images, labels, 0, SIZE_MAX, expect_n,
                      " (the subset ships in the repository's data/ folder; set "
                      "BSVI_BUILTIN_DATA_DIR to it)",
                      out, err, errlen);
}

void vae_dataset_free(vae_dataset *d) {
    if (!d) return;
    free(d->pixels);
    free(d->labels);
    d->pixels = NULL;
    d->labels = NULL;
    d->n = 0;
}

/* Pixel j of image idx is on when u < gray/255 for the 32-bit word w of
 * Philox(ctr, key) with key = seed, ctr = {j / 4, 15 << 28 | counter bits 32..59,
 * idx, counter bits 0..31}, word j % 4; the test w*255 < gray*2^32 is exact in
 * integers and gives P(on) = gray/255 up to 2^-32. A row index at or beyond d->n
 * gives an all-zero image. */
void vae_binarize(const vae_dataset *d, const size_t *rows, size_t count, uint64_t seed,
                  uint64_t counter, double *out) {
    if (!d || !out) return;
    const size_t dim = d->dim;
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    const uint32_t tag = (BINARIZE_PURPOSE << 28) | ((uint32_t)(counter >> 32) & 0x0FFFFFFFu);
    for (size_t i = 0; i < count; ++i) {
        size_t idx = rows ? rows[i] : i;
        double *o = out + i * dim;
        if (!d->pixels || idx >= d->n) {
            for (size_t j = 0; j < dim; ++j) o[j] = 0.0;
            continue;
        }
        const unsigned char *g = d->pixels + idx * dim;
        for (size_t j = 0; j < dim; j += 4) {
            uint32_t ctr[4] = {(uint32_t)(j / 4), tag, (uint32_t)idx, (uint32_t)counter};
            uint32_t w[4];
            bsvi_philox4x32_10(ctr, key, w);
            for (size_t k = 0; k < 4 && j + k < dim; ++k)
                o[j + k] = ((uint64_t)w[k] * 255u < ((uint64_t)g[j + k] << 32)) ? 1.0 : 0.0;
        }
    }
}

void vae_gray(const vae_dataset *d, const size_t *rows, size_t count, double *out) {
    if (!d || !out) return;
    const size_t dim = d->dim;
    for (size_t i = 0; i < count; ++i) {
        size_t idx = rows ? rows[i] : i;
        double *o = out + i * dim;
        if (!d->pixels || idx >= d->n) {
            for (size_t j = 0; j < dim; ++j) o[j] = 0.0;
            continue;
        }
        const unsigned char *g = d->pixels + idx * dim;
        for (size_t j = 0; j < dim; ++j) o[j] = (double)g[j];
    }
}
