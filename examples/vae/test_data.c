/* Tests of the VAE example's data layer (data.h): the shipped subset, strict
 * IDX parsing of corrupt and missing files, binarisation, and (when the cache
 * made by scripts/fetch-data.sh exists) the full MNIST / Fashion-MNIST splits. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp, rmdir */

#include <setjmp.h> /* cmocka needs these four first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data.h"

#define ERRLEN 512

/* ---- helpers ------------------------------------------------------------------ */

static char tmp_dir[256];
static char paths[32][300];
static size_t n_paths;

static int make_tmp_dir(void **state) {
    (void)state;
    const char *base = getenv("TMPDIR");
    snprintf(tmp_dir, sizeof tmp_dir, "%s/vae-data-test.XXXXXX", (base && *base) ? base : "/tmp");
    return mkdtemp(tmp_dir) ? 0 : -1;
}

static int remove_tmp_dir(void **state) {
    (void)state;
    for (size_t i = 0; i < n_paths; ++i) remove(paths[i]);
    n_paths = 0;
    /* the fake cache of test_split_wrong_count */
    char p[400];
    snprintf(p, sizeof p, "%s/mnist", tmp_dir);
    rmdir(p);
    return rmdir(tmp_dir) == 0 ? 0 : -1;
}

static const char *tmp_path(const char *name) {
    assert_true(n_paths < sizeof paths / sizeof paths[0]);
    char *p = paths[n_paths++];
    snprintf(p, sizeof paths[0], "%s/%s", tmp_dir, name);
    return p;
}

static void put_be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static void write_bytes(const char *path, const unsigned char *b, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (n) assert_int_equal(fwrite(b, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* Writes an IDX3 image file: header (magic, n, rows, cols) then payload_n
 * images of pixel value (i + j) % 256, then `extra` trailing bytes; the
 * written length can be cut to `cut` bytes (0: no cut). */
static void write_images(const char *path, uint32_t magic, uint32_t n, uint32_t rows, uint32_t cols,
                         size_t payload_n, size_t extra, size_t cut) {
    size_t px = (size_t)rows * cols;
    size_t len = 16 + payload_n * px + extra;
    unsigned char *b = calloc(len, 1);
    assert_non_null(b);
    put_be32(b, magic);
    put_be32(b + 4, n);
    put_be32(b + 8, rows);
    put_be32(b + 12, cols);
    for (size_t i = 0; i < payload_n; ++i)
        for (size_t j = 0; j < px; ++j) b[16 + i * px + j] = (unsigned char)((i + j) % 256);
    write_bytes(path, b, cut ? cut : len);
    free(b);
}

/* Writes an IDX1 label file with n header entries and payload_n labels i % 10
 * (or `bad` at position 1 when bad >= 0). */
static void write_labels(const char *path, uint32_t magic, uint32_t n, size_t payload_n, int bad) {
    size_t len = 8 + payload_n;
    unsigned char *b = calloc(len, 1);
    assert_non_null(b);
    put_be32(b, magic);
    put_be32(b + 4, n);
    for (size_t i = 0; i < payload_n; ++i) b[8 + i] = (unsigned char)(i % 10);
    if (bad >= 0 && payload_n > 1) b[9] = (unsigned char)bad;
    write_bytes(path, b, len);
    free(b);
}

/* The load fails, the data set is left empty, and the message names the
 * problem (`what`) and the file (`file`, or NULL). */
static void expect_refused(const char *images, const char *labels, const char *what,
                           const char *file) {
    vae_dataset d;
    char err[ERRLEN] = "";
    int rc = vae_load_idx(images, labels, &d, err, sizeof err);
    print_message("    refused: %s\n", err);
    assert_int_not_equal(rc, 0);
    assert_null(d.pixels);
    assert_null(d.labels);
    assert_int_equal(d.n, 0);
    assert_non_null(strstr(err, what));
    if (file) assert_non_null(strstr(err, file));
}

static void count_labels(const vae_dataset *d, size_t counts[10]) {
    for (int c = 0; c < 10; ++c) counts[c] = 0;
    for (size_t i = 0; i < d->n; ++i) {
        assert_true(d->labels[i] < 10);
        counts[d->labels[i]]++;
    }
}

/* ---- the shipped subset ------------------------------------------------------- */

static void check_builtin(const char *split, size_t n) {
    vae_dataset d;
    char err[ERRLEN] = "";
    int rc = vae_load_builtin(split, &d, err, sizeof err);
    if (rc != 0) print_message("%s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(d.n, n);
    assert_int_equal(d.dim, VAE_IMAGE_PIXELS);
    assert_non_null(d.pixels);
    assert_non_null(d.labels);
    size_t counts[10];
    count_labels(&d, counts);
    for (int c = 0; c < 10; ++c) assert_int_equal(counts[c], n / 10);
    /* the files interleave the classes 0..9 */
    for (size_t i = 0; i < d.n; ++i) assert_int_equal(d.labels[i], i % 10);
    unsigned lo = 255, hi = 0;
    double sum = 0;
    for (size_t i = 0; i < d.n * d.dim; ++i) {
        lo = d.pixels[i] < lo ? d.pixels[i] : lo;
        hi = d.pixels[i] > hi ? d.pixels[i] : hi;
        sum += d.pixels[i];
    }
    double mean = sum / (double)(d.n * d.dim) / 255.0;
    print_message("    builtin %s: %zu images, gray %u..%u, mean %.4f\n", split, d.n, lo, hi, mean);
    assert_int_equal(lo, 0);
    assert_int_equal(hi, 255);
    assert_true(mean > 0.2 && mean < 0.4); /* Fashion-MNIST's mean intensity is about 0.286 */
    vae_dataset_free(&d);
    assert_null(d.pixels);
    vae_dataset_free(NULL);
}

static void test_builtin_train(void **state) {
    (void)state;
    check_builtin("train", 2000);
}

static void test_builtin_test(void **state) {
    (void)state;
    check_builtin("test", 500);
}

static void test_builtin_bad_split(void **state) {
    (void)state;
    vae_dataset d;
    char err[ERRLEN] = "";
    assert_int_not_equal(vae_load_builtin("valid", &d, err, sizeof err), 0);
    assert_non_null(strstr(err, "unknown built-in split 'valid'"));
    assert_null(d.pixels);
}

/* ---- strict IDX parsing --------------------------------------------------------- */

static void test_idx_valid_small(void **state) {
    (void)state;
    const char *img = tmp_path("ok-images"), *lab = tmp_path("ok-labels");
    write_images(img, 0x803, 3, 28, 28, 3, 0, 0);
    write_labels(lab, 0x801, 3, 3, -1);
    vae_dataset d;
    char err[ERRLEN] = "";
    assert_int_equal(vae_load_idx(img, lab, &d, err, sizeof err), 0);
    assert_int_equal(d.n, 3);
    assert_int_equal(d.dim, 784);
    assert_int_equal(d.pixels[784 + 5], 6);
    assert_int_equal(d.labels[2], 2);
    vae_dataset_free(&d);
    /* labels are optional */
    assert_int_equal(vae_load_idx(img, NULL, &d, err, sizeof err), 0);
    assert_int_equal(d.n, 3);
    assert_null(d.labels);
    vae_dataset_free(&d);
}

static void test_idx_corrupt(void **state) {
    (void)state;
    const char *lab = tmp_path("labels-3");
    write_labels(lab, 0x801, 3, 3, -1);
    const size_t full = 16 + 3 * 784;

    const char *p = tmp_path("truncated-images");
    write_images(p, 0x803, 3, 28, 28, 3, 0, full - 1);
    expect_refused(p, lab, "truncated", "truncated-images");

    p = tmp_path("short-header-images");
    write_images(p, 0x803, 3, 28, 28, 3, 0, 10);
    expect_refused(p, lab, "truncated header", "short-header-images");

    p = tmp_path("trailing-images");
    write_images(p, 0x803, 3, 28, 28, 3, 7, 0);
    expect_refused(p, lab, "size mismatch", "trailing-images");

    p = tmp_path("magic-images");
    write_images(p, 0x801, 3, 28, 28, 3, 0, 0);
    expect_refused(p, lab, "wrong magic", "magic-images");

    p = tmp_path("gzip-images");
    write_images(p, 0x1f8b0800, 3, 28, 28, 3, 0, 0);
    expect_refused(p, lab, "gzip", "gzip-images");

    p = tmp_path("dims-images"); /* consistent length, but 27x28 */
    write_images(p, 0x803, 3, 27, 28, 3, 0, 0);
    expect_refused(p, lab, "27x28, expected 28x28", "dims-images");

    p = tmp_path("zero-images");
    write_images(p, 0x803, 0, 28, 28, 0, 0, 0);
    expect_refused(p, NULL, "0 images", "zero-images");

    p = tmp_path("empty-images");
    write_bytes(p, NULL, 0);
    expect_refused(p, lab, "empty file", "empty-images");

    expect_refused(tmp_path("missing-images"), lab, "cannot open image file", "missing-images");
}

static void test_idx_corrupt_labels(void **state) {
    (void)state;
    const char *img = tmp_path("images-3");
    write_images(img, 0x803, 3, 28, 28, 3, 0, 0);

    const char *p = tmp_path("count-labels"); /* 4 labels for 3 images */
    write_labels(p, 0x801, 4, 4, -1);
    expect_refused(img, p, "label count mismatch", "count-labels");

    p = tmp_path("range-labels");
    write_labels(p, 0x801, 3, 3, 10);
    expect_refused(img, p, "label 10 at index 1 is out of range", "range-labels");

    p = tmp_path("magic-labels");
    write_labels(p, 0x803, 3, 3, -1);
    expect_refused(img, p, "wrong magic", "magic-labels");

    p = tmp_path("truncated-labels"); /* header says 3, 2 present */
    write_labels(p, 0x801, 3, 2, -1);
    expect_refused(img, p, "truncated", "truncated-labels");

    p = tmp_path("empty-labels");
    write_bytes(p, NULL, 0);
    expect_refused(img, p, "empty file", "empty-labels");

    expect_refused(img, tmp_path("missing-labels"), "cannot open label file", "missing-labels");
}

static void test_split_errors(void **state) {
    (void)state;
    vae_dataset d;
    char err[ERRLEN] = "";
    /* a cache folder without the files: the message says how to get them */
    assert_int_not_equal(vae_load_split(tmp_dir, "mnist", "train", &d, err, sizeof err), 0);
    print_message("    refused: %s\n", err);
    assert_non_null(strstr(err, "cannot open"));
    assert_non_null(strstr(err, "mnist/train-images-idx3-ubyte"));
    assert_non_null(strstr(err, "fetch-data.sh"));
    assert_null(d.pixels);

    assert_int_not_equal(vae_load_split(tmp_dir, "cifar", "train", &d, err, sizeof err), 0);
    assert_non_null(strstr(err, "unknown data set 'cifar'"));
    assert_int_not_equal(vae_load_split(tmp_dir, "mnist", "validation", &d, err, sizeof err), 0);
    assert_non_null(strstr(err, "unknown split 'validation'"));
}

static void test_split_wrong_count(void **state) {
    (void)state;
    /* a well-formed but too small training file is not accepted as MNIST */
    char dir[400];
    snprintf(dir, sizeof dir, "%s/mnist", tmp_dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    const char *img = tmp_path("mnist/train-images-idx3-ubyte");
    const char *lab = tmp_path("mnist/train-labels-idx1-ubyte");
    write_images(img, 0x803, 3, 28, 28, 3, 0, 0);
    write_labels(lab, 0x801, 3, 3, -1);
    vae_dataset d;
    char err[ERRLEN] = "";
    assert_int_not_equal(vae_load_split(tmp_dir, "mnist", "valid", &d, err, sizeof err), 0);
    print_message("    refused: %s\n", err);
    assert_non_null(strstr(err, "3 images, expected 60000"));
    assert_null(d.pixels);
}

/* ---- binarisation ----------------------------------------------------------------- */

/* n images; image i pixel j has gray level (j + 37 i) % 256, so every level
 * 0..255 occurs about three times per image. */
static vae_dataset synthetic(size_t n) {
    vae_dataset d = {n, VAE_IMAGE_PIXELS, malloc(n * VAE_IMAGE_PIXELS), NULL};
    assert_non_null(d.pixels);
    for (size_t i = 0; i < n; ++i)
        for (size_t j = 0; j < VAE_IMAGE_PIXELS; ++j)
            d.pixels[i * VAE_IMAGE_PIXELS + j] = (unsigned char)((j + 37 * i) % 256);
    return d;
}

static void test_binarize_reproducible(void **state) {
    (void)state;
    vae_dataset d = synthetic(20);
    const size_t P = VAE_IMAGE_PIXELS;
    const size_t batch[3] = {5, 17, 3};
    double *a = malloc(3 * P * sizeof *a), *b = malloc(P * sizeof *b), *c = malloc(P * sizeof *c);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    vae_binarize(&d, batch, 3, 42, 7, a);
    for (size_t r = 0; r < 3; ++r) {
        /* the same image alone, or in another batch at another position */
        vae_binarize(&d, &batch[r], 1, 42, 7, b);
        assert_memory_equal(a + r * P, b, P * sizeof *b);
        const size_t other[2] = {11, batch[r]};
        double two[2 * VAE_IMAGE_PIXELS];
        vae_binarize(&d, other, 2, 42, 7, two);
        assert_memory_equal(a + r * P, two + P, P * sizeof *b);
    }
    for (size_t j = 0; j < 3 * P; ++j) assert_true(a[j] == 0.0 || a[j] == 1.0);
    /* gray 0 is always 0, gray 255 always 1 */
    for (size_t r = 0; r < 3; ++r)
        for (size_t j = 0; j < P; ++j) {
            unsigned char g = d.pixels[batch[r] * P + j];
            if (g == 0) assert_true(a[r * P + j] == 0.0);
            if (g == 255) assert_true(a[r * P + j] == 1.0);
        }
    /* another counter, seed or image index gives another draw */
    vae_binarize(&d, &batch[0], 1, 42, 8, b);
    vae_binarize(&d, &batch[0], 1, 43, 7, c);
    assert_memory_not_equal(a, b, P * sizeof *b);
    assert_memory_not_equal(a, c, P * sizeof *c);
    /* counters differing only above bit 32 differ too */
    vae_binarize(&d, &batch[0], 1, 42, 7 + ((uint64_t)1 << 32), b);
    assert_memory_not_equal(a, b, P * sizeof *b);
    /* rows == NULL means images 0..count-1 */
    const size_t first[2] = {0, 1};
    double x[2 * VAE_IMAGE_PIXELS], y[2 * VAE_IMAGE_PIXELS];
    vae_binarize(&d, first, 2, 9, 0, x);
    vae_binarize(&d, NULL, 2, 9, 0, y);
    assert_memory_equal(x, y, sizeof x);
    free(a);
    free(b);
    free(c);
    vae_dataset_free(&d);
}

/* Over N = 16 images x 2,000 counters = 32,000 draws per (image position), the
 * frequency of 1 for each gray level g (pooled over its ~3 positions per image,
 * so about 96,000 draws) must be within 5 standard errors
 * 5 sqrt(p (1 - p) / draws) (plus 1e-12) of p = g / 255; the sum of squared
 * z-scores over the 254 levels 1..254 (chi-square, 254 degrees of freedom, sd
 * 22.5) must be below 254 + 5 x 22.5; the overall mean of all draws must be
 * within 0.002 of the mean gray level / 255. (Deterministic for the fixed seed:
 * worst level 4.0 standard errors, chi-square 284.) */
static void test_binarize_mean(void **state) {
    (void)state;
    const size_t n = 16, P = VAE_IMAGE_PIXELS;
    const uint64_t counters = 2000;
    vae_dataset d = synthetic(n);
    double *out = malloc(n * P * sizeof *out);
    assert_non_null(out);
    static double ones[256], draws[256];
    memset(ones, 0, sizeof ones);
    memset(draws, 0, sizeof draws);
    for (uint64_t c = 0; c < counters; ++c) {
        vae_binarize(&d, NULL, n, 2024, c, out);
        for (size_t k = 0; k < n * P; ++k) {
            ones[d.pixels[k]] += out[k];
            draws[d.pixels[k]] += 1.0;
        }
    }
    double all_ones = 0, all_draws = 0, gray_sum = 0, worst = 0, chi2 = 0;
    for (int g = 0; g < 256; ++g) {
        double p = g / 255.0, f = ones[g] / draws[g];
        double tol = 5.0 * sqrt(p * (1.0 - p) / draws[g]) + 1e-12;
        double z = fabs(f - p) / (sqrt(p * (1.0 - p) / draws[g]) + 1e-300);
        if (p > 0 && p < 1) {
            worst = z > worst ? z : worst;
            chi2 += z * z;
        }
        if (fabs(f - p) > tol) print_message("gray %d: frequency %.5f, expected %.5f\n", g, f, p);
        assert_true(fabs(f - p) <= tol);
        all_ones += ones[g];
        all_draws += draws[g];
        gray_sum += p * draws[g];
    }
    print_message("    binarize: worst |freq - g/255| = %.2f standard errors, chi-square %.1f "
                  "(254 df); overall %.5f vs %.5f\n",
                  worst, chi2, all_ones / all_draws, gray_sum / all_draws);
    assert_true(chi2 < 254.0 + 5.0 * sqrt(2.0 * 254.0));
    assert_true(fabs(all_ones / all_draws - gray_sum / all_draws) < 0.002);
    free(out);
    vae_dataset_free(&d);
}

static void test_gray(void **state) {
    (void)state;
    vae_dataset d = synthetic(4);
    const size_t rows[2] = {3, 1};
    double out[2 * VAE_IMAGE_PIXELS];
    vae_gray(&d, rows, 2, out);
    for (size_t r = 0; r < 2; ++r)
        for (size_t j = 0; j < VAE_IMAGE_PIXELS; ++j)
            assert_true(out[r * VAE_IMAGE_PIXELS + j] ==
                        (double)d.pixels[rows[r] * VAE_IMAGE_PIXELS + j]);
    vae_dataset_free(&d);
}

/* ---- the full data sets, when the cache exists --------------------------------- */

/* $BSVI_DATA_DIR, else data-cache/ next to the source tree's data/ folder,
 * else data-cache/ under the working directory; NULL when none holds `dataset`. */
static const char *find_cache(const char *dataset) {
    static char found[1024];
    const char *env = getenv("BSVI_DATA_DIR");
    const char *candidates[3];
    size_t n = 0;
    if (env && *env) {
        candidates[n++] = env;
    } else {
#ifdef VAE_DATA_DIR
        candidates[n++] = VAE_DATA_DIR "/../data-cache";
#endif
        candidates[n++] = "data-cache";
    }
    for (size_t i = 0; i < n; ++i) {
        char p[1200];
        snprintf(p, sizeof p, "%s/%s/t10k-labels-idx1-ubyte", candidates[i], dataset);
        FILE *f = fopen(p, "rb");
        if (f) {
            fclose(f);
            snprintf(found, sizeof found, "%s", candidates[i]);
            return found;
        }
    }
    return NULL;
}

static vae_dataset load_split_ok(const char *cache, const char *dataset, const char *split,
                                 size_t n) {
    vae_dataset d;
    char err[ERRLEN] = "";
    int rc = vae_load_split(cache, dataset, split, &d, err, sizeof err);
    if (rc != 0) print_message("%s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(d.n, n);
    assert_int_equal(d.dim, VAE_IMAGE_PIXELS);
    assert_non_null(d.labels);
    return d;
}

static void test_full_mnist(void **state) {
    (void)state;
    const char *cache = find_cache("mnist");
    if (!cache) {
        print_message("    no MNIST cache (run scripts/fetch-data.sh): skipped\n");
        skip();
    }
    vae_dataset tr = load_split_ok(cache, "mnist", "train", 50000);
    vae_dataset va = load_split_ok(cache, "mnist", "valid", 10000);
    vae_dataset te = load_split_ok(cache, "mnist", "test", 10000);
    assert_int_equal(tr.labels[0], 5); /* the famous first training digit */
    /* the official test-set class counts */
    const size_t test_counts[10] = {980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009};
    size_t counts[10];
    count_labels(&te, counts);
    for (int c = 0; c < 10; ++c) assert_int_equal(counts[c], test_counts[c]);
    /* train + valid is the whole official training file, in order */
    char p[1200], q[1200], err[ERRLEN] = "";
    snprintf(p, sizeof p, "%s/mnist/train-images-idx3-ubyte", cache);
    snprintf(q, sizeof q, "%s/mnist/train-labels-idx1-ubyte", cache);
    vae_dataset all;
    assert_int_equal(vae_load_idx(p, q, &all, err, sizeof err), 0);
    assert_int_equal(all.n, 60000);
    assert_memory_equal(all.pixels, tr.pixels, tr.n * VAE_IMAGE_PIXELS);
    assert_memory_equal(all.pixels + tr.n * VAE_IMAGE_PIXELS, va.pixels, va.n * VAE_IMAGE_PIXELS);
    assert_memory_equal(all.labels + tr.n, va.labels, va.n);
    vae_dataset_free(&all);
    vae_dataset_free(&tr);
    vae_dataset_free(&va);
    vae_dataset_free(&te);
}

static void test_full_fashion(void **state) {
    (void)state;
    const char *cache = find_cache("fashion-mnist");
    if (!cache) {
        print_message("    no Fashion-MNIST cache (run scripts/fetch-data.sh): skipped\n");
        skip();
    }
    const char *splits[3] = {"train", "valid", "test"};
    const size_t sizes[3] = {50000, 10000, 10000};
    vae_dataset d[3];
    for (int s = 0; s < 3; ++s) {
        d[s] = load_split_ok(cache, "fashion-mnist", splits[s], sizes[s]);
        size_t counts[10];
        count_labels(&d[s], counts);
        for (int c = 0; c < 10; ++c) assert_int_equal(counts[c], sizes[s] / 10);
    }
    /* the shipped subset is the head of the train and test files */
    vae_dataset sub;
    char err[ERRLEN] = "";
    assert_int_equal(vae_load_builtin("train", &sub, err, sizeof err), 0);
    assert_memory_equal(sub.pixels, d[0].pixels, sub.n * VAE_IMAGE_PIXELS);
    assert_memory_equal(sub.labels, d[0].labels, sub.n);
    vae_dataset_free(&sub);
    assert_int_equal(vae_load_builtin("test", &sub, err, sizeof err), 0);
    assert_memory_equal(sub.pixels, d[2].pixels, sub.n * VAE_IMAGE_PIXELS);
    assert_memory_equal(sub.labels, d[2].labels, sub.n);
    vae_dataset_free(&sub);
    for (int s = 0; s < 3; ++s) vae_dataset_free(&d[s]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtin_train),
        cmocka_unit_test(test_builtin_test),
        cmocka_unit_test(test_builtin_bad_split),
        cmocka_unit_test(test_idx_valid_small),
        cmocka_unit_test(test_idx_corrupt),
        cmocka_unit_test(test_idx_corrupt_labels),
        cmocka_unit_test(test_split_errors),
        cmocka_unit_test(test_split_wrong_count),
        cmocka_unit_test(test_binarize_reproducible),
        cmocka_unit_test(test_binarize_mean),
        cmocka_unit_test(test_gray),
        cmocka_unit_test(test_full_mnist),
        cmocka_unit_test(test_full_fashion),
    };
    return cmocka_run_group_tests_name("vae data", tests, make_tmp_dir, remove_tmp_dir);
}
