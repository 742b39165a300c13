/*
 * make_readers_seeds.c: writes the seed inputs of fuzz_readers (fuzz/fuzz_readers.c) into
 * a directory: checkpoints of a tiny network (x 4, h 3, z 2, batch 2, k 2: about 1 KB)
 * for several methods and all four format versions (1 and 2: bsvi-ds only; 3 and 4: vae,
 * iwae, bsvi-ds, bsvi-sir-pi, whose version 4 files hold pi's logits and Adam state after
 * a step), and small IDX files, each with fuzz_readers' leading mode byte.
 *
 *   build/examples/vae/fuzz_readers_seeds fuzz/corpus-readers
 *
 * (The committed corpus is these seeds plus the units a libFuzzer merge kept.)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "data.h"
#include "train.h"

/* a new format version needs its seeds here */
_Static_assert(VAE_CHECKPOINT_VERSION == 4, "make_readers_seeds: seeds of versions 1..4");

static int write_seed(const char *dir, const char *name, unsigned char mode,
                      const unsigned char *b, size_t n) {
    char path[1024];
    snprintf(path, sizeof path, "%s/seed-%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return 1;
    int bad = fputc(mode, f) == EOF;
    bad |= fwrite(b, 1, n, f) != n;
    bad |= fclose(f) != 0;
    if (bad) fprintf(stderr, "cannot write %s\n", path);
    return bad;
}

static void be32(unsigned char *b, unsigned v) {
    for (int i = 0; i < 4; ++i) b[i] = (unsigned char)(v >> (8 * (3 - i)));
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_readers_seeds DIR\n");
        return 2;
    }
    const char *dir = argv[1];
    int bad = 0;
    const vae_method methods[4] = {VAE_METHOD_VAE, VAE_METHOD_IWAE, VAE_METHOD_BSVI_DS,
                                   VAE_METHOD_BSVI_SIR_PI};
    for (int m = 0; m < 4; ++m) {
        vae_config c;
        vae_config_default(&c);
        c.method = methods[m];
        c.x_dim = 4, c.h_dim = 3, c.z_dim = 2, c.batch = 2, c.k = 2;
        if (m == 3) c.lik = VAE_LIK_LOGISTIC;
        vae_trainer t;
        if (vae_trainer_init(&t, &c, NULL)) {
            fprintf(stderr, "%s\n", t.err);
            return 1;
        }
        double x[8] = {0, 1, 1, 0, 1, 0, 0, 1};
        if (m == 3)
            for (int i = 0; i < 8; ++i) x[i] = 30.0 * i;
        vae_stats st;
        if (vae_trainer_step(&t, x, &st)) {
            fprintf(stderr, "%s\n", t.err);
            return 1;
        }
        vae_progress p = {1, 1, 0, st.bound, 0.5, VAE_REAL_BITS, 100, 0};
        const unsigned versions[4] = {1, 2, 3, 4};
        for (int v = 0; v < 4; ++v) {
            if (m != 2 && versions[v] < 3) continue; /* versions 1 and 2: one method */
            unsigned char *b;
            size_t n;
            char err[512], name[64];
            if (vae_checkpoint_encode(&t, &p, versions[v], versions[v] == 1 ? 64u : 32u, &b, &n,
                                      err, sizeof err)) {
                fprintf(stderr, "%s\n", err);
                return 1;
            }
            snprintf(name, sizeof name, "ckpt-%s-v%u", vae_method_name(c.method), versions[v]);
            bad |= write_seed(dir, name, 0, b, n);
            snprintf(name, sizeof name, "ckpt-%s-v%u-fixed", vae_method_name(c.method),
                     versions[v]);
            bad |= write_seed(dir, name, 1, b, n);
            free(b);
        }
        vae_trainer_free(&t);
    }
    /* IDX: one image; one image with its label; two images, fixed up by the harness */
    unsigned char idx[16 + 2 * VAE_IMAGE_PIXELS + 8 + 2 + 2];
    memset(idx, 0, sizeof idx);
    be32(idx, 0x803), be32(idx + 4, 1), be32(idx + 8, 28), be32(idx + 12, 28);
    for (size_t i = 0; i < VAE_IMAGE_PIXELS; ++i) idx[16 + i] = (unsigned char)(i * 7);
    bad |= write_seed(dir, "idx-images", 2, idx, 16 + VAE_IMAGE_PIXELS);
    bad |= write_seed(dir, "idx-images-fixed", 6, idx, 16 + 2 * VAE_IMAGE_PIXELS);
    /* mode 3: u16 split, images, labels */
    unsigned char both[2 + 16 + VAE_IMAGE_PIXELS + 9];
    const size_t split = 16 + VAE_IMAGE_PIXELS;
    both[0] = (unsigned char)(split & 0xff), both[1] = (unsigned char)(split >> 8);
    memcpy(both + 2, idx, split);
    unsigned char *lab = both + 2 + split;
    be32(lab, 0x801), be32(lab + 4, 1);
    lab[8] = 7;
    bad |= write_seed(dir, "idx-labels", 3, both, sizeof both);
    bad |= write_seed(dir, "idx-labels-fixed", 7, both, sizeof both);
    return bad;
}
