/*
 * fuzz_readers.c: libFuzzer harness over the VAE example's readers of untrusted files:
 * the checkpoint loader (vae_checkpoint_parse, examples/vae/checkpoint.h) and the IDX
 * reader (vae_load_idx, examples/vae/data.h).
 *
 *   cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DBSVI_BUILD_FUZZ=ON
 *   cmake --build build-fuzz --target fuzz_readers
 *   build-fuzz/examples/vae/fuzz_readers -malloc_limit_mb=128 -rss_limit_mb=1024 NEW fuzz/corpus-readers
 *
 * The same file linked with fuzz/replay_main.c replays fuzz/corpus-readers as the ctest
 * vae_fuzz_readers_corpus_replay (any compiler, ASan build, valgrind).
 *
 * Byte 0 of an input picks the target, the rest is the file:
 *   & 3 == 0  a checkpoint, as is (magic, version, size and checksum checks);
 *   & 3 == 1  a checkpoint whose size field and checksum the harness makes valid first,
 *             so that the field checks behind them are reached;
 *   & 3 == 2  an IDX3 image file; with bit 2 set the harness makes its image count agree
 *             with the length first;
 *   & 3 == 3  an IDX3 image file and an IDX1 label file, split at the little-endian u16
 *             in bytes 1-2 (bit 2: both counts made to agree with the image file's length).
 *
 * The checkpoint loader runs with a memory limit of 64 MiB (its max_bytes); run under
 * -malloc_limit_mb=128, any larger allocation a hostile header causes is a finding, as
 * is any ASan/UBSan report, a leak on a failing path, or a violated invariant (abort):
 * - a refused input leaves a non-empty message;
 * - a loaded checkpoint has a configuration vae_config_check accepts within the limit, the
 *   architecture's parameter count, finite parameters and moments, v and vmax >= 0,
 *   vmax >= v, pi of k+1 weights for the bsvi methods (a distribution; its Adam state
 *   finite with v >= 0 and at most as many steps as the step counter, and, from format
 *   versions 1-3, which store pi's probabilities only, zero), a progress record in range;
 *   and a small one trains a step without a crash (the step's own status may be an error);
 * - a loaded IDX file has n >= 1 images of 784 pixels and labels 0..9.
 */
#define _POSIX_C_SOURCE 200809L /* mkdtemp, access */

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"
#include "data.h"
#include "train.h"

#define FUZZ_MAX_BYTES ((uint64_t)64 << 20)

#define CHECK(cond)                                                                           \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "fuzz_readers: invariant violated: %s (%s:%d)\n", #cond, __FILE__, \
                    __LINE__);                                                                \
            abort();                                                                          \
        }                                                                                     \
    } while (0)

static void put_le64(unsigned char *b, uint64_t v) {
    for (int i = 0; i < 8; ++i) b[i] = (unsigned char)(v >> (8 * i));
}
static void put_be32(unsigned char *b, uint32_t v) {
    for (int i = 0; i < 4; ++i) b[i] = (unsigned char)(v >> (8 * (3 - i)));
}

static void check_trainer(const vae_trainer *t, const vae_progress *p) {
    const vae_config *c = &t->cfg;
    char err[512];
    CHECK(vae_config_check(c, FUZZ_MAX_BYTES, err, sizeof err) == 0);
    CHECK(p->version >= 1 && p->version <= VAE_CHECKPOINT_VERSION);
    CHECK(p->precision_bits == 32 || p->precision_bits == 64);
    CHECK(p->best_epoch <= p->epoch && p->bad_epochs <= p->epoch);
    CHECK(!isnan(p->best_valid) && p->best_valid != INFINITY);
    CHECK(isfinite(p->seconds) && p->seconds >= 0.0);
    CHECK(t->net.x_dim == c->x_dim && t->net.h_dim == c->h_dim && t->net.z_dim == c->z_dim);
    for (size_t i = 0; i < t->net.nparams; ++i) {
        CHECK(isfinite(t->net.params[i]) && isfinite(t->net.adam_m[i]));
        CHECK(isfinite(t->net.adam_v[i]) && t->net.adam_v[i] >= 0);
        CHECK(isfinite(t->net.adam_vmax[i]) && t->net.adam_vmax[i] >= t->net.adam_v[i]);
    }
    const size_t npi = bsvi_buffer_weights_size(t->pi);
    if (c->method == VAE_METHOD_BSVI || c->method == VAE_METHOD_BSVI_DS ||
        c->method == VAE_METHOD_BSVI_SIR || c->method == VAE_METHOD_BSVI_SIR_PI)
        CHECK(npi == c->k + 1);
    else
        CHECK(npi == 0);
    if (npi > 0) {
        CHECK(npi <= VAE_MAX_K + 1);
        double pi[VAE_MAX_K + 1], m[VAE_MAX_K + 1], v[VAE_MAX_K + 1], sum = 0.0;
        uint64_t steps = 0;
        CHECK(bsvi_buffer_weights_get_probs(t->pi, pi, npi) == BSVI_OK);
        CHECK(bsvi_buffer_weights_get_adam_state(t->pi, m, v, &steps, npi) == BSVI_OK);
        for (size_t i = 0; i < npi; ++i) {
            CHECK(isfinite(pi[i]) && pi[i] >= 0.0 && pi[i] <= 1.0);
            CHECK(isfinite(m[i]) && isfinite(v[i]) && v[i] >= 0.0);
            if (p->version <= 3) CHECK(m[i] == 0.0 && v[i] == 0.0);
            sum += pi[i];
        }
        CHECK(fabs(sum - 1.0) < 1e-6);
        CHECK(steps <= t->step);
        if (p->version <= 3) CHECK(steps == 0);
    }
}

/* One training step from the loaded state, when it is small enough to be quick. */
static void try_step(vae_trainer *t) {
    const vae_config *c = &t->cfg;
    if (t->net.nparams > 20000 || c->batch * c->x_dim > 4096 || c->batch * (c->k + 2) > 512 ||
        c->batch * c->sir_m > 512)
        return;
    double *x = (double *)calloc(c->batch * c->x_dim, sizeof *x);
    CHECK(x != NULL);
    for (size_t i = 0; i < c->batch * c->x_dim; ++i)
        x[i] = c->lik == VAE_LIK_LOGISTIC ? (double)(i * 37 % 256) : (double)(i % 3 == 0);
    vae_stats st;
    if (vae_trainer_step(t, x, &st) != 0) CHECK(t->err[0] != '\0');
    free(x);
}

static void fuzz_checkpoint(const unsigned char *data, size_t size, int fix) {
    unsigned char *b = (unsigned char *)malloc(size ? size : 1);
    CHECK(b != NULL);
    if (size) memcpy(b, data, size);
    if (fix && size >= 32) {
        put_le64(b + 16, size);
        put_le64(b + size - 8, vae_fnv1a64(b, size - 8));
    }
    vae_trainer t;
    vae_progress p;
    char err[512];
    err[0] = '\0';
    if (vae_checkpoint_parse(b, size, "fuzz", FUZZ_MAX_BYTES, &t, &p, err, sizeof err) == 0) {
        check_trainer(&t, &p);
        try_step(&t);
        vae_trainer_free(&t);
    } else {
        CHECK(err[0] != '\0');
    }
    free(b);
}

/* ---- IDX files: written to a private directory, read back by path ---------------------- */

static char g_dir[256], g_images[300], g_labels[300];

static void remove_files(void) {
    remove(g_images);
    remove(g_labels);
    rmdir(g_dir);
}

static int write_file(const char *path, const unsigned char *b, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return 1;
    const int bad = fwrite(b, 1, n, f) != n;
    return (fclose(f) != 0) | bad;
}

static void fuzz_idx(const unsigned char *data, size_t size, int with_labels, int fix) {
    if (!g_dir[0]) {
        const char *base = getenv("TMPDIR");
        struct stat st;
        if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0)
            base = "/dev/shm"; /* a RAM file system when there is one */
        else if (!base || !*base)
            base = "/tmp";
        snprintf(g_dir, sizeof g_dir, "%s/fuzz-readers.XXXXXX", base);
        CHECK(mkdtemp(g_dir) != NULL);
        snprintf(g_images, sizeof g_images, "%s/images", g_dir);
        snprintf(g_labels, sizeof g_labels, "%s/labels", g_dir);
        atexit(remove_files);
    }
    size_t split = size;
    if (with_labels) {
        if (size < 2) return;
        split = (size_t)data[0] | (size_t)data[1] << 8;
        data += 2, size -= 2;
        if (split > size) split = size;
    }
    unsigned char *b = (unsigned char *)malloc(size ? size : 1);
    CHECK(b != NULL);
    if (size) memcpy(b, data, size);
    const size_t nimg = split, nlab = size - split;
    uint32_t count = 0;
    if (fix && nimg >= 16) {
        count = (uint32_t)((nimg - 16) / VAE_IMAGE_PIXELS);
        put_be32(b, 0x00000803u);
        put_be32(b + 4, count);
        put_be32(b + 8, 28);
        put_be32(b + 12, 28);
    }
    if (fix && with_labels && nlab >= 8) {
        put_be32(b + split, 0x00000801u);
        put_be32(b + split + 4, count);
    }
    CHECK(write_file(g_images, b, nimg) == 0);
    if (with_labels) CHECK(write_file(g_labels, b + split, nlab) == 0);
    free(b);
    vae_dataset d;
    char err[512];
    err[0] = '\0';
    if (vae_load_idx(g_images, with_labels ? g_labels : NULL, &d, err, sizeof err) == 0) {
        CHECK(d.n >= 1 && d.dim == VAE_IMAGE_PIXELS && d.pixels != NULL);
        CHECK(16 + d.n * VAE_IMAGE_PIXELS == nimg);
        if (with_labels) {
            CHECK(d.labels != NULL && 8 + d.n == nlab);
            for (size_t i = 0; i < d.n; ++i) CHECK(d.labels[i] < 10);
        }
        volatile unsigned sum = 0; /* every pixel readable (ASan) */
        for (size_t i = 0; i < d.n * d.dim; ++i) sum += d.pixels[i];
        (void)sum;
        vae_dataset_free(&d);
    } else {
        CHECK(err[0] != '\0');
        CHECK(d.pixels == NULL && d.labels == NULL);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const unsigned mode = data[0];
    switch (mode & 3u) {
    case 0: fuzz_checkpoint(data + 1, size - 1, 0); break;
    case 1: fuzz_checkpoint(data + 1, size - 1, 1); break;
    case 2: fuzz_idx(data + 1, size - 1, 0, (mode & 4u) != 0); break;
    default: fuzz_idx(data + 1, size - 1, 1, (mode & 4u) != 0); break;
    }
    return 0;
}
