/* `vae sample`: images drawn from a trained decoder (the BSVI paper's Figure 5).
 *
 *   vae sample --checkpoint CKPT [--rows 8] [--per-row 6] [--seed 1] --out FILE.pgm
 *
 * Row i draws one z_i ~ N(0, I) from the prior and shows, left to right, the decoder's mean
 * image E[x | z_i] and per-row draws x ~ p(x | z_i): Bernoulli pixels for a binarised model,
 * discretised-logistic gray levels for a gray one. The grid is written as a binary PGM
 * (8-bit gray, 28x28 cells with a 2-pixel white border), so that scripts/make-results.py can
 * place several models side by side. The draws are a function of --seed alone (splitmix64
 * and Box-Muller here, not libbsvi's streams: nothing here is a bound). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "nn.h"
#include "sample.h"
#include "train.h"

#define GAP 2

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double uniform(uint64_t *s) { /* (0, 1) */
    return ((double)(splitmix(s) >> 11) + 0.5) / 9007199254740992.0;
}

static double normal(uint64_t *s) {
    const double u = uniform(s), v = uniform(s);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* The decoder's output rows (logits, or means on [-1, 1]) for n latent rows. */
static int decode(const vae_net *net, size_t n, const vae_real *z, vae_real *out) {
    const size_t h = net->h_dim;
    vae_real *h1 = malloc(n * h * sizeof *h1), *h2 = malloc(n * h * sizeof *h2);
    if (!h1 || !h2) {
        free(h1);
        free(h2);
        return 1;
    }
    linear_tanh_forward(h1, z, net->p.dec_w1, net->p.dec_b1, n, net->z_dim, h);
    linear_tanh_forward(h2, h1, net->p.dec_w2, net->p.dec_b2, n, h, h);
    linear_forward(out, h2, net->p.dec_w3, net->p.dec_b3, n, h, net->x_dim);
    free(h1);
    free(h2);
    return 0;
}

static unsigned char gray(double v) { /* [0, 1] -> 0..255 */
    if (!(v > 0.0)) return 0;
    if (v >= 1.0) return 255;
    return (unsigned char)lrint(v * 255.0);
}

int vae_sample_grid(const vae_trainer *t, size_t rows, size_t per_row, uint64_t seed,
                    const char *path, char *err, size_t errlen) {
    const vae_net *net = &t->net;
    const size_t X = net->x_dim, Z = net->z_dim, side = (size_t)lrint(sqrt((double)X));
    if (side * side != X) {
        snprintf(err, errlen, "sample: %zu pixels is not a square image", X);
        return 1;
    }
    const size_t cell = side + GAP, W = (per_row + 1) * cell + GAP, H = rows * cell + GAP;
    vae_real *z = malloc(rows * Z * sizeof *z), *out = malloc(rows * X * sizeof *out);
    unsigned char *img = malloc(W * H);
    if (!z || !out || !img) {
        free(z);
        free(out);
        free(img);
        snprintf(err, errlen, "sample: out of memory");
        return 1;
    }
    uint64_t s = seed * 0x2545F4914F6CDD1Dull + 17;
    for (size_t i = 0; i < rows * Z; ++i) z[i] = (vae_real)normal(&s);
    if (decode(net, rows, z, out)) {
        free(z);
        free(out);
        free(img);
        snprintf(err, errlen, "sample: out of memory");
        return 1;
    }
    memset(img, 255, W * H);
    const int logistic = net->lik == VAE_LIK_LOGISTIC;
    const double scale = logistic ? exp((double)net->p.log_scale[0]) : 0.0;
    for (size_t r = 0; r < rows; ++r)
        for (size_t c = 0; c <= per_row; ++c)
            for (size_t j = 0; j < X; ++j) {
                const double o = (double)out[r * X + j];
                double v;
                if (!logistic) {
                    const double p = 1.0 / (1.0 + exp(-o));
                    v = c == 0 ? p : (uniform(&s) < p ? 1.0 : 0.0);
                } else { /* mean mu on [-1, 1]; a draw mu + scale * logit(u), binned */
                    double x = o;
                    if (c > 0) {
                        const double u = uniform(&s);
                        x = o + scale * log(u / (1.0 - u));
                    }
                    v = (x + 1.0) / 2.0;
                    if (c > 0) v = round(v * 255.0) / 255.0;
                }
                const size_t y0 = GAP + r * cell + j / side, x0 = GAP + c * cell + j % side;
                img[y0 * W + x0] = gray(v);
            }
    FILE *f = fopen(path, "wb");
    int rc = 0;
    if (!f || fprintf(f, "P5\n# vae sample: %zu rows x (mean + %zu draws), seed %llu\n%zu %zu\n255\n",
                      rows, per_row, (unsigned long long)seed, W, H) < 0 ||
        fwrite(img, 1, W * H, f) != W * H) {
        snprintf(err, errlen, "sample: cannot write %s", path);
        rc = 1;
    }
    if (f && fclose(f) != 0 && !rc) {
        snprintf(err, errlen, "sample: cannot write %s", path);
        rc = 1;
    }
    free(z);
    free(out);
    free(img);
    return rc;
}
