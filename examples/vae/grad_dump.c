/* vae_grad_dump / vae_grad_dump64: one training step's gradient per method, written
 * to a file, for test_precision (float32 against float64 from the same start).
 *
 *   vae_grad_dump OUT      (built twice: with the float32 and the float64 networks)
 *
 * For each case below, from the same initial parameters (drawn in double, rounded
 * once to the build's precision) and the same batch (the first 100 images of the
 * shipped subset, binarised with seed 1, or their gray levels), one
 * vae_trainer_step; net.grads then holds the step's gradient (AMSGrad reads it and
 * leaves it). The library's random streams are the same in both builds, so the
 * draws are the same; only the networks' rounding differs. Record per case
 * (little-endian host order, read back by the same machine):
 *   u32 method, u32 likelihood, u64 n_encoder, u64 nparams, f64 batch-mean bound,
 *   nparams f64 gradients. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "data.h"
#include "train.h"

#define DUMP_BATCH 100

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUT\n", argv[0]);
        return 2;
    }
    vae_dataset d;
    char err[256];
    if (vae_load_builtin("train", &d, err, sizeof err) || d.n < DUMP_BATCH) {
        fprintf(stderr, "grad_dump: %s\n", err);
        return 1;
    }
    double *xbin = malloc(2 * DUMP_BATCH * d.dim * sizeof *xbin);
    if (!xbin) return 1;
    double *xgray = xbin + DUMP_BATCH * d.dim;
    size_t rows[DUMP_BATCH];
    for (size_t i = 0; i < DUMP_BATCH; ++i) rows[i] = i;
    vae_binarize(&d, rows, DUMP_BATCH, 1, 0, xbin);
    vae_gray(&d, rows, DUMP_BATCH, xgray);

    FILE *f = fopen(argv[1], "wb");
    if (!f) {
        fprintf(stderr, "grad_dump: cannot write %s\n", argv[1]);
        return 1;
    }
    int rc = 0;
    for (int m = 0; m <= VAE_NUM_METHODS && rc == 0; ++m) {
        /* every method with the Bernoulli likelihood, then bsvi-sir with the logistic */
        vae_config c;
        vae_config_default(&c);
        c.method = m < VAE_NUM_METHODS ? (vae_method)m : VAE_METHOD_BSVI_SIR;
        c.lik = m < VAE_NUM_METHODS ? VAE_LIK_BERNOULLI : VAE_LIK_LOGISTIC;
        c.batch = DUMP_BATCH;
        vae_trainer t;
        vae_stats st;
        if (vae_trainer_init(&t, &c, NULL) ||
            vae_trainer_step(&t, c.lik == VAE_LIK_BERNOULLI ? xbin : xgray, &st)) {
            fprintf(stderr, "grad_dump: %s: %s\n", vae_method_name(c.method), t.err);
            rc = 1;
        } else {
            const uint32_t hdr[2] = {(uint32_t)c.method, (uint32_t)c.lik};
            const uint64_t sizes[2] = {t.net.n_encoder, t.net.nparams};
            double *g = malloc(t.net.nparams * sizeof *g);
            if (!g) rc = 1;
            for (size_t i = 0; g && i < t.net.nparams; ++i) g[i] = (double)t.net.grads[i];
            if (g && (fwrite(hdr, sizeof hdr, 1, f) != 1 || fwrite(sizes, sizeof sizes, 1, f) != 1 ||
                      fwrite(&st.bound, sizeof st.bound, 1, f) != 1 ||
                      fwrite(g, sizeof *g, t.net.nparams, f) != t.net.nparams))
                rc = 1;
            free(g);
        }
        vae_trainer_free(&t);
    }
    if (fclose(f) != 0) rc = 1;
    free(xbin);
    vae_dataset_free(&d);
    if (rc) fprintf(stderr, "grad_dump: failed\n");
    return rc;
}
