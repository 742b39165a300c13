/* Bitwise reproducibility of the library's outputs (issue 4, "whatever the
 * number of threads"): runs SVI-k, every estimator and both evaluations on two
 * small models with a fixed seed and prints an FNV-1a 64 fingerprint of every
 * output. scripts/bench.sh runs it under OPENBLAS_NUM_THREADS=1 and 2 and
 * compares the lines; it also checks that splitting a batch in two (with the
 * id offset of rng.h) reproduces the whole batch's draws.
 *
 * Models: "trivial" log p(x_b | z) = -|z|^2/2, and "linear" a linear-Gaussian
 * likelihood N(x_b; W z, I) with a fixed pseudo-random W (D = 20, d = 8).
 *
 * It also hashes cblas_dgemm on the VAE example's GEMM shapes, to show which of
 * the host's GEMMs change bits with the BLAS's thread count.
 *
 * Usage: bench_repro   (one JSON object per line) */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "bsvi/bsvi.h"

#define B 64
#define D 20
#define DIM 8
#define K 9

static double W[D * DIM], XD[B * D];

static int trivial(size_t n, size_t d, const double *z, const size_t *idx, double *lp,
                   double *g, void *u) {
    (void)idx;
    (void)u;
    for (size_t r = 0; r < n; ++r) {
        double a = 0.0;
        for (size_t j = 0; j < d; ++j) a -= 0.5 * z[r * d + j] * z[r * d + j];
        lp[r] = a;
        if (g)
            for (size_t j = 0; j < d; ++j) g[r * d + j] = -z[r * d + j];
    }
    return 0;
}

/* log N(x_b; W z, I) and its gradient W^T (x_b - W z); x_b offset by the id base in *u. */
static int linear(size_t n, size_t d, const double *z, const size_t *idx, double *lp, double *g,
                  void *u) {
    const size_t base = u ? *(const size_t *)u : 0;
    for (size_t r = 0; r < n; ++r) {
        const double *x = XD + (base + idx[r]) * D;
        double res[D], a = 0.0;
        for (size_t i = 0; i < D; ++i) {
            double m = 0.0;
            for (size_t j = 0; j < d; ++j) m += W[i * d + j] * z[r * d + j];
            res[i] = x[i] - m;
            a -= 0.5 * res[i] * res[i];
        }
        lp[r] = a - 0.5 * (double)D * log(2.0 * 3.14159265358979323846);
        if (g)
            for (size_t j = 0; j < d; ++j) {
                double s = 0.0;
                for (size_t i = 0; i < D; ++i) s += W[i * d + j] * res[i];
                g[r * d + j] = s;
            }
    }
    return 0;
}

#define CHECK(call)                                                                      \
    do {                                                                                 \
        bsvi_status st_ = (call);                                                        \
        if (st_ != BSVI_OK) {                                                            \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call,                 \
                    bsvi_status_string(st_));                                            \
            exit(1);                                                                     \
        }                                                                                \
    } while (0)

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *c = (const unsigned char *)p;
    for (size_t i = 0; i < n; ++i) h = (h ^ c[i]) * 0x100000001b3ull;
    return h;
}

/* SVI run + trajectory outputs for `nb` points starting at id `first`. */
static void svi_outputs(bsvi_model *m, size_t nb, size_t first, double *logw, double *z) {
    bsvi_proposal *q;
    bsvi_svi *svi;
    bsvi_trajectory *t;
    CHECK(bsvi_proposal_create(nb, DIM, &q));
    CHECK(bsvi_svi_create(DIM, &svi));
    CHECK(bsvi_svi_set_steps(svi, K));
    CHECK(bsvi_svi_set_step_size(svi, 0.02));
    CHECK(bsvi_svi_set_seed(svi, 42));
    CHECK(bsvi_svi_set_stream(svi, 3, first));
    CHECK(bsvi_trajectory_create(&t));
    CHECK(bsvi_svi_run(svi, m, q, t));
    CHECK(bsvi_trajectory_get_log_weights(t, logw));
    CHECK(bsvi_trajectory_get_latents(t, z));
    bsvi_trajectory_destroy(t);
    bsvi_svi_destroy(svi);
    bsvi_proposal_destroy(q);
}

/* The example's dgemm calls (examples/vae/nn.c), batch 100 and 1000 rows:
 * forward NT (rows, out, in), input gradient NN (rows, in, out), weight gradient TN (out, in, rows). */
static void gemm_shapes(void) {
    static const int shapes[][5] = {
        {100, 200, 784, 0, 1},  {100, 200, 200, 0, 1},  {100, 100, 200, 0, 1},
        {100, 200, 50, 0, 1},   {100, 784, 200, 0, 1},  {1000, 200, 50, 0, 1},
        {1000, 200, 200, 0, 1}, {1000, 784, 200, 0, 1}, {100, 200, 784, 0, 0},
        {100, 50, 200, 0, 0},   {1000, 200, 784, 0, 0}, {1000, 50, 200, 0, 0},
        {200, 784, 100, 1, 0},  {200, 200, 100, 1, 0},  {100, 200, 100, 1, 0},
        {200, 50, 100, 1, 0},   {784, 200, 1000, 1, 0}, {200, 200, 1000, 1, 0}};
    const size_t ns = sizeof shapes / sizeof shapes[0];
    printf("{\"kind\":\"gemm_repro\",\"openblas_threads\":\"%s\",\"shapes\":{",
           getenv("OPENBLAS_NUM_THREADS") ? getenv("OPENBLAS_NUM_THREADS") : "unset");
    uint64_t s = 99;
    for (size_t i = 0; i < ns; ++i) {
        const int M = shapes[i][0], N = shapes[i][1], Kd = shapes[i][2];
        const int ta = shapes[i][3], tb = shapes[i][4];
        const size_t na = (size_t)M * (size_t)Kd, nb = (size_t)Kd * (size_t)N;
        double *a = malloc(na * sizeof *a), *b = malloc(nb * sizeof *b),
               *c = calloc((size_t)M * (size_t)N, sizeof *c);
        if (!a || !b || !c) exit(1);
        for (size_t j = 0; j < na; ++j) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            a[j] = (double)(s >> 11) * 0x1.0p-53 - 0.5;
        }
        for (size_t j = 0; j < nb; ++j) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            b[j] = (double)(s >> 11) * 0x1.0p-53 - 0.5;
        }
        cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                    M, N, Kd, 1.0, a, ta ? M : Kd, b, tb ? Kd : N, 0.0, c, N);
        printf("%s\"%dx%dx%d %s%s\":\"%016llx\"", i ? "," : "", M, N, Kd, ta ? "T" : "N",
               tb ? "T" : "N",
               (unsigned long long)fnv(0xcbf29ce484222325ull, c,
                                       (size_t)M * (size_t)N * sizeof *c));
        free(a);
        free(b);
        free(c);
    }
    printf("}}\n");
}

int main(void) {
    uint64_t s = 0x12345678u;
    for (size_t i = 0; i < D * DIM; ++i) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        W[i] = ((double)(s >> 11) * 0x1.0p-53 - 0.5) * 0.8;
    }
    for (size_t i = 0; i < B * D; ++i) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        XD[i] = (double)(s >> 11) * 0x1.0p-53 * 4.0 - 2.0;
    }
    const char *names[2] = {"trivial", "linear"};
    for (int mi = 0; mi < 2; ++mi) {
        size_t base = 0;
        bsvi_model *m;
        CHECK(bsvi_model_create(DIM, &m));
        CHECK(bsvi_model_set_likelihood(m, mi == 0 ? trivial : linear, &base));
        uint64_t h = 0xcbf29ce484222325ull;
        bsvi_proposal *q;
        CHECK(bsvi_proposal_create(B, DIM, &q));
        bsvi_svi *svi, *svids;
        CHECK(bsvi_svi_create(DIM, &svi));
        CHECK(bsvi_svi_set_steps(svi, K));
        CHECK(bsvi_svi_set_step_size(svi, 0.02));
        CHECK(bsvi_svi_set_seed(svi, 42));
        CHECK(bsvi_svi_create(DIM, &svids));
        CHECK(bsvi_svi_set_steps(svids, K));
        CHECK(bsvi_svi_set_step_size(svids, 0.02));
        CHECK(bsvi_svi_set_double_sampling(svids, 1));
        CHECK(bsvi_svi_set_seed(svids, 43));
        bsvi_trajectory *t, *tds;
        CHECK(bsvi_trajectory_create(&t));
        CHECK(bsvi_trajectory_create(&tds));
        CHECK(bsvi_svi_run(svi, m, q, t));
        CHECK(bsvi_svi_run(svids, m, q, tds));
        static double buf[B * (K + 1) * DIM * 2];
        CHECK(bsvi_trajectory_get_log_weights(t, buf));
        h = fnv(h, buf, B * (K + 1) * sizeof(double));
        CHECK(bsvi_trajectory_get_latents(t, buf));
        h = fnv(h, buf, B * (K + 1) * DIM * sizeof(double));
        /* ELBO, IWAE-(K+1), SVI-K, BSVI, BSVI-DS (BSVI over the double-sampled buffer),
         * BSVI-SIR with M = 3; uniform pi */
        for (int e = 0; e < 6; ++e) {
            bsvi_estimator *est;
            CHECK(bsvi_estimator_create(DIM, &est));
            CHECK(bsvi_estimator_set_seed(est, 7 + (uint64_t)e));
            switch (e) {
            case 0: CHECK(bsvi_estimator_elbo(est, m, q, BSVI_GRAD_PATHWISE)); break;
            case 1: CHECK(bsvi_estimator_iwae(est, m, q, K + 1, BSVI_GRAD_PATHWISE)); break;
            case 2: CHECK(bsvi_estimator_svi(est, t)); break;
            case 3: CHECK(bsvi_estimator_bsvi(est, t, NULL)); break;
            case 4: CHECK(bsvi_estimator_bsvi(est, tds, NULL)); break;
            default: CHECK(bsvi_estimator_bsvi_sir(est, t, NULL, 3)); break;
            }
            const size_t nt = bsvi_estimator_num_targets(est);
            CHECK(bsvi_estimator_get_bounds(est, buf, B));
            h = fnv(h, buf, B * sizeof(double));
            CHECK(bsvi_estimator_get_targets(est, nt, NULL, NULL, buf, buf + nt * DIM));
            h = fnv(h, buf, nt * (DIM + 1) * sizeof(double));
            CHECK(bsvi_estimator_get_encoder_grad(est, B, buf, buf + B * DIM));
            h = fnv(h, buf, 2 * B * DIM * sizeof(double));
            bsvi_estimator_destroy(est);
        }
        bsvi_evaluator *ev;
        CHECK(bsvi_evaluator_create(DIM, &ev));
        CHECK(bsvi_evaluator_set_seed(ev, 11));
        CHECK(bsvi_evaluator_set_chunk_rows(ev, 1000));
        CHECK(bsvi_evaluator_iwae(ev, m, q, 5000, buf));
        h = fnv(h, buf, B * sizeof(double));
        bsvi_svi_options so;
        CHECK(bsvi_svi_get_options(svi, &so)); /* BSVI-500 refines as svi does */
        CHECK(bsvi_evaluator_set_svi_options(ev, &so));
        CHECK(bsvi_evaluator_bsvi(ev, m, q, 500, buf, NULL));
        h = fnv(h, buf, B * sizeof(double));
        /* Split batch: the first and second halves with id offsets reproduce the whole. */
        static double lw_all[B * (K + 1)], z_all[B * (K + 1) * DIM];
        static double lw_part[B * (K + 1)], z_part[B * (K + 1) * DIM];
        svi_outputs(m, B, 0, lw_all, z_all);
        base = 0;
        svi_outputs(m, B / 2, 0, lw_part, z_part);
        base = B / 2;
        svi_outputs(m, B / 2, B / 2, lw_part + (B / 2) * (K + 1), z_part + (B / 2) * (K + 1) * DIM);
        base = 0;
        const int split_ok = memcmp(lw_all, lw_part, sizeof lw_all) == 0 &&
                             memcmp(z_all, z_part, sizeof z_all) == 0;
        printf("{\"kind\":\"repro\",\"model\":\"%s\",\"openblas_threads\":\"%s\","
               "\"fingerprint\":\"%016llx\",\"split_batch_identical\":%s}\n",
               names[mi], getenv("OPENBLAS_NUM_THREADS") ? getenv("OPENBLAS_NUM_THREADS") : "unset",
               (unsigned long long)h, split_ok ? "true" : "false");
        bsvi_evaluator_destroy(ev);
        bsvi_trajectory_destroy(t);
        bsvi_trajectory_destroy(tds);
        bsvi_svi_destroy(svi);
        bsvi_svi_destroy(svids);
        bsvi_proposal_destroy(q);
        bsvi_model_destroy(m);
    }
    gemm_shapes();
    return 0;
}
