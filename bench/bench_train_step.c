/* The VAE example's training step and evaluation, timed and split between the
 * host's networks and the library (issue 4, parts 2-4).
 *
 * The step timed is the example's own vae_trainer_step() (examples/vae/train.c)
 * and the evaluation its vae_trainer_evaluate(): nothing is re-implemented
 * here. The time split comes from GNU ld's --wrap (bench/CMakeLists.txt):
 * every call the example makes into libbsvi, into its network functions and
 * into cblas_sgemm / cblas_dgemm goes through a __wrap_ function below that times it. The
 * library's own time is the time inside libbsvi calls minus the time the
 * library spent in the host's likelihood callback (vae_decoder_log_lik). What the
 * library did is not counted here: "lib_per_step" (train) and "lib_per_image" (eval)
 * come from the handles' own counters (bsvi_svi_get_stats, bsvi_estimator_get_stats,
 * bsvi_evaluator_get_stats): successful calls, likelihood callbacks and their latent
 * rows, SVI steps. They are reported with or without the wrap.
 *
 * Built twice: bench_train_step over the float32 example (vae_example) and
 * bench_train_step64 over the float64 one (vae_example64); "dtype" in the output
 * says which. The files of `prep` hold doubles whatever the build.
 *
 * GEMM floor (train mode, with the wrap): the shapes of every GEMM call of the
 * first timed step are recorded, and after the timed steps that same sequence of
 * calls is replayed alone on scratch matrices (best of 5); "gemm_floor_ms" is the
 * time a step would take if it were nothing but its GEMMs at the rate the BLAS
 * reaches at those shapes, on this machine, in this run.
 *
 * Usage (every mode prints one JSON object per line on stdout):
 *   bench_train_step prep DIR [--warm-steps N]
 *       trains the default bsvi-sir model for N steps (default 100) on the shipped
 *       Fashion-MNIST subset and writes DIR/params.bin (the flat parameter array,
 *       little-endian doubles), DIR/train_x.bin (NB batches of B binarised images)
 *       and DIR/test_x.bin (the binarised test images), DIR/meta.json;
 *       the PyTorch peer (bench/peer/vae_step.py) reads the same files.
 *   bench_train_step train DIR [--methods vae,iwae,svi,bsvi,bsvi-sir] [--steps N] [--warmup W]
 *       times N training steps per method, starting from DIR/params.bin.
 *   bench_train_step eval DIR [--images N] [--iwae-images N2] [--iwae-samples S]
 *                         [--bsvi-weights K] [--reps R]
 *       times BSVI-K evaluation of the first N test images and IWAE-S of the first N2
 *       (default N), in batches of 100.
 *   bench_train_step peak [--n N] [--reps R]
 *       GFLOP/s of an N x N x N cblas_dgemm and cblas_sgemm (default 2000), best of R.
 *   bench_train_step mem-train DIR --method M [--k K] [--steps N]
 *   bench_train_step mem-eval DIR --what iwae|bsvi --samples S [--images N]
 *       runs one configuration and reports the process's max RSS (getrusage):
 *       run one process per configuration.
 *   bench_train_step grad DIR --method M [--reps R] [--seed S] --out FILE
 *       mean over R steps (each from the same parameters, fresh random streams) of
 *       the step's parameter gradient, written as doubles (faithfulness check of the peer).
 *   bench_train_step fingerprint DIR [--steps N]
 *       FNV-1a 64 hash of the parameters after N bsvi-sir steps (thread-count check).
 */
#define _POSIX_C_SOURCE 199309L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <cblas.h>

#include "blas_env.h"
#include "data.h"
#include "nn.h"
#include "train.h"

#define NUM_TRAIN_BATCHES 18
#define BATCH 100
#define BINARIZE_SEED 12345u
#define TEST_BINARIZE_SEED 54321u

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void die(const char *msg, const char *detail) {
    fprintf(stderr, "bench_train_step: %s%s%s\n", msg, detail ? ": " : "", detail ? detail : "");
    exit(1);
}

/* ---- the time split: wrapped calls ------------------------------------------ */

typedef struct split {
    double lib;       /* inside libbsvi calls (callbacks included) */
    double cb;        /* inside the likelihood callback's decoder (within library calls) */
    double enc_fwd, enc_bwd, dec_acc, adam, zero;
    double gemm;      /* inside cblas_sgemm / cblas_dgemm, wherever called */
    double gemm_flops;
    double ncalls_gemm;
} split;

static split S;
static int in_lib; /* nesting guard: only top-level library calls count */

/* The GEMM calls of one step, for the floor (recorded while `recording`). */
#define MAX_GEMM_CALLS 1024
typedef struct gemm_call {
    int ta, tb; /* 1: transposed */
    int m, n, k, single;
} gemm_call;
static gemm_call G[MAX_GEMM_CALLS];
static size_t n_gemm_calls;
static int recording, gemm_overflow;
static void record_gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, blasint m, blasint n,
                        blasint k, int single) {
    if (!recording) return;
    if (n_gemm_calls == MAX_GEMM_CALLS) {
        gemm_overflow = 1;
        return;
    }
    G[n_gemm_calls++] = (gemm_call){ta == CblasTrans, tb == CblasTrans, (int)m, (int)n, (int)k,
                                    single};
}

#ifdef BENCH_WRAP
#define LIBWRAP(ret, name, params, args)                                                     \
    ret __real_##name params;                                                                \
    ret __wrap_##name params;                                                                \
    ret __wrap_##name params {                                                               \
        if (in_lib) return __real_##name args;                                               \
        in_lib = 1;                                                                          \
        const double t0_ = now();                                                            \
        ret r_ = __real_##name args;                                                         \
        S.lib += now() - t0_;                                                                \
        in_lib = 0;                                                                          \
        return r_;                                                                           \
    }

LIBWRAP(bsvi_status, bsvi_svi_run,
        (bsvi_svi * a, const bsvi_model *b, const bsvi_proposal *c, bsvi_trajectory *d),
        (a, b, c, d))
LIBWRAP(bsvi_status, bsvi_estimator_elbo,
        (bsvi_estimator * a, const bsvi_model *b, const bsvi_proposal *c, bsvi_grad_form d),
        (a, b, c, d))
LIBWRAP(bsvi_status, bsvi_estimator_iwae,
        (bsvi_estimator * a, const bsvi_model *b, const bsvi_proposal *c, size_t d,
         bsvi_grad_form e),
        (a, b, c, d, e))
LIBWRAP(bsvi_status, bsvi_estimator_svi, (bsvi_estimator * a, const bsvi_trajectory *b), (a, b))
LIBWRAP(bsvi_status, bsvi_estimator_bsvi,
        (bsvi_estimator * a, const bsvi_trajectory *b, const bsvi_buffer_weights *c), (a, b, c))
LIBWRAP(bsvi_status, bsvi_estimator_bsvi_sir,
        (bsvi_estimator * a, const bsvi_trajectory *b, const bsvi_buffer_weights *c, size_t d),
        (a, b, c, d))
LIBWRAP(bsvi_status, bsvi_trajectory_health,
        (const bsvi_trajectory *a, const struct bsvi_buffer_weights *b, bsvi_health *c), (a, b, c))
LIBWRAP(bsvi_status, bsvi_buffer_weights_mean_position,
        (const bsvi_buffer_weights *a, double *b), (a, b))
LIBWRAP(bsvi_status, bsvi_buffer_weights_accumulate,
        (bsvi_buffer_weights * a, const bsvi_trajectory *b), (a, b))
LIBWRAP(bsvi_status, bsvi_buffer_weights_step, (bsvi_buffer_weights * a), (a))
LIBWRAP(bsvi_status, bsvi_estimator_get_bounds, (const bsvi_estimator *a, double *b, size_t c),
        (a, b, c))
LIBWRAP(bsvi_status, bsvi_estimator_get_targets,
        (const bsvi_estimator *a, size_t b, size_t *c, size_t *d, double *e, double *f),
        (a, b, c, d, e, f))
LIBWRAP(bsvi_status, bsvi_estimator_get_encoder_grad,
        (const bsvi_estimator *a, size_t b, double *c, double *d), (a, b, c, d))
LIBWRAP(size_t, bsvi_estimator_num_targets, (const bsvi_estimator *a), (a))
LIBWRAP(bsvi_status, bsvi_proposal_set_params, (bsvi_proposal * a, const double *b, const double *c),
        (a, b, c))
LIBWRAP(bsvi_status, bsvi_svi_set_stream, (bsvi_svi * a, uint64_t b, uint64_t c), (a, b, c))
LIBWRAP(bsvi_status, bsvi_estimator_set_stream, (bsvi_estimator * a, uint64_t b, uint64_t c),
        (a, b, c))
LIBWRAP(bsvi_status, bsvi_evaluator_iwae,
        (bsvi_evaluator * a, const bsvi_model *b, const bsvi_proposal *c, size_t d, double *e),
        (a, b, c, d, e))
LIBWRAP(bsvi_status, bsvi_evaluator_bsvi,
        (bsvi_evaluator * a, const bsvi_model *b, const bsvi_proposal *c, size_t d, double *e,
         bsvi_proposal *f),
        (a, b, c, d, e, f))
LIBWRAP(bsvi_status, bsvi_evaluator_elbo_star,
        (bsvi_evaluator * a, const bsvi_model *b, const bsvi_proposal *c, size_t d, double *e,
         double *f, double *g),
        (a, b, c, d, e, f, g))
LIBWRAP(bsvi_status, bsvi_evaluator_set_chunk_rows, (bsvi_evaluator * a, size_t b), (a, b))
LIBWRAP(bsvi_status, bsvi_evaluator_set_svi_options,
        (bsvi_evaluator * a, const bsvi_svi_options *b), (a, b))
LIBWRAP(bsvi_svi_options, bsvi_svi_options_default, (void), ())

#define NETWRAP(field, name, params, args)                                                   \
    void __real_##name params;                                                               \
    void __wrap_##name params;                                                               \
    void __wrap_##name params {                                                              \
        const double t0_ = now();                                                            \
        __real_##name args;                                                                  \
        S.field += now() - t0_;                                                              \
    }

NETWRAP(cb, vae_decoder_log_lik,
        (const vae_net *a, vae_ws *b, size_t c, const double *d, const vae_real *e,
         const size_t *f, double *g, double *h),
        (a, b, c, d, e, f, g, h))
NETWRAP(dec_acc, vae_decoder_accumulate_reuse,
        (vae_net * a, vae_ws *b, size_t c, const double *d, const vae_real *e, const size_t *f,
         const double *g, double *h),
        (a, b, c, d, e, f, g, h))
NETWRAP(enc_fwd, vae_encoder_forward,
        (const vae_net *a, vae_ws *b, size_t c, const vae_real *d, double *e, double *f),
        (a, b, c, d, e, f))
NETWRAP(enc_bwd, vae_encoder_backward,
        (vae_net * a, vae_ws *b, size_t c, const vae_real *d, const double *e, const double *f,
         vae_real *g),
        (a, b, c, d, e, f, g))
NETWRAP(adam, vae_amsgrad_step, (vae_net * a, double b, double c, double d, double e),
        (a, b, c, d, e))
NETWRAP(zero, vae_net_zero_grads, (vae_net * a), (a))

/* The GEMM wraps: time, flops and (while recording) the call's shape. */
#define GEMMWRAP(name, T, single)                                                            \
    void __real_##name(CBLAS_ORDER o, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, blasint m,      \
                       blasint n, blasint k, T alpha, const T *a, blasint lda, const T *b,    \
                       blasint ldb, T beta, T *c, blasint ldc);                               \
    void __wrap_##name(CBLAS_ORDER o, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, blasint m,      \
                       blasint n, blasint k, T alpha, const T *a, blasint lda, const T *b,    \
                       blasint ldb, T beta, T *c, blasint ldc);                               \
    void __wrap_##name(CBLAS_ORDER o, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, blasint m,      \
                       blasint n, blasint k, T alpha, const T *a, blasint lda, const T *b,    \
                       blasint ldb, T beta, T *c, blasint ldc) {                              \
        const double t0 = now();                                                             \
        __real_##name(o, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);              \
        S.gemm += now() - t0;                                                                \
        S.gemm_flops += 2.0 * (double)m * (double)n * (double)k;                             \
        S.ncalls_gemm += 1.0;                                                                \
        record_gemm(ta, tb, m, n, k, single);                                                \
    }
GEMMWRAP(cblas_dgemm, double, 0)
GEMMWRAP(cblas_sgemm, float, 1)
#define CALL_SGEMM __real_cblas_sgemm
#define CALL_DGEMM __real_cblas_dgemm
#define HAVE_SPLIT 1
#else
#define HAVE_SPLIT 0
#define CALL_SGEMM cblas_sgemm
#define CALL_DGEMM cblas_dgemm
#endif

/* Replays the recorded GEMM calls alone, best of reps: seconds for one step's GEMMs. */
static double gemm_floor(size_t reps) {
    size_t big = 1;
    for (size_t i = 0; i < n_gemm_calls; ++i) {
        const size_t mk = (size_t)G[i].m * (size_t)G[i].k, kn = (size_t)G[i].k * (size_t)G[i].n,
                     mn = (size_t)G[i].m * (size_t)G[i].n;
        if (mk > big) big = mk;
        if (kn > big) big = kn;
        if (mn > big) big = mn;
    }
    double *da = calloc(3 * big, sizeof *da);
    float *fa = calloc(3 * big, sizeof *fa);
    if (!da || !fa) die("out of memory", NULL);
    for (size_t i = 0; i < 3 * big; ++i) da[i] = 0.01 * (double)(i % 13), fa[i] = (float)da[i];
    double best = INFINITY;
    for (size_t r = 0; r < reps; ++r) {
        const double t0 = now();
        for (size_t i = 0; i < n_gemm_calls; ++i) {
            const gemm_call *g = &G[i];
            const CBLAS_TRANSPOSE ta = g->ta ? CblasTrans : CblasNoTrans,
                                  tb = g->tb ? CblasTrans : CblasNoTrans;
            const int lda = g->ta ? g->m : g->k, ldb = g->tb ? g->k : g->n;
            if (g->single)
                CALL_SGEMM(CblasRowMajor, ta, tb, g->m, g->n, g->k, 1.0f, fa, lda, fa + big, ldb,
                           1.0f, fa + 2 * big, g->n);
            else
                CALL_DGEMM(CblasRowMajor, ta, tb, g->m, g->n, g->k, 1.0, da, lda, da + big, ldb,
                           1.0, da + 2 * big, g->n);
        }
        const double el = now() - t0;
        if (el < best) best = el;
    }
    free(da);
    free(fa);
    return best;
}

/* ---- data and model set-up ---------------------------------------------------- */

typedef struct bench_data {
    double *train_x; /* NUM_TRAIN_BATCHES * BATCH * 784 */
    double *test_x;  /* n_test * 784 */
    size_t n_test;
    double pixel_mean[VAE_IMAGE_PIXELS];
} bench_data;

static void load_data(bench_data *d) {
    char err[256];
    vae_dataset tr, te;
    if (vae_load_builtin("train", &tr, err, sizeof err)) die("loading the shipped subset", err);
    if (vae_load_builtin("test", &te, err, sizeof err)) die("loading the shipped subset", err);
    const size_t X = VAE_IMAGE_PIXELS, n = NUM_TRAIN_BATCHES * BATCH;
    if (tr.n < n) die("the shipped training subset is too small", NULL);
    d->train_x = malloc(n * X * sizeof(double));
    d->n_test = te.n;
    d->test_x = malloc(te.n * X * sizeof(double));
    if (!d->train_x || !d->test_x) die("out of memory", NULL);
    for (size_t b = 0; b < NUM_TRAIN_BATCHES; ++b) {
        size_t rows[BATCH];
        for (size_t i = 0; i < BATCH; ++i) rows[i] = b * BATCH + i;
        vae_binarize(&tr, rows, BATCH, BINARIZE_SEED, b, d->train_x + b * BATCH * X);
    }
    vae_binarize(&te, NULL, te.n, TEST_BINARIZE_SEED, 0, d->test_x);
    for (size_t j = 0; j < X; ++j) d->pixel_mean[j] = 0.0;
    for (size_t i = 0; i < tr.n; ++i)
        for (size_t j = 0; j < X; ++j) d->pixel_mean[j] += tr.pixels[i * X + j] / 255.0;
    for (size_t j = 0; j < X; ++j) d->pixel_mean[j] /= (double)tr.n;
    vae_dataset_free(&tr);
    vae_dataset_free(&te);
}

static void free_data(bench_data *d) {
    free(d->train_x);
    free(d->test_x);
}

static void write_file(const char *dir, const char *name, const void *p, size_t bytes) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, bytes, f) != bytes || fclose(f) != 0) die("cannot write", path);
}

static void write_path(const char *path, const void *p, size_t bytes) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, bytes, f) != bytes || fclose(f) != 0) die("cannot write", path);
}

static void read_params(const char *dir, vae_net *net) {
    char path[1024];
    snprintf(path, sizeof path, "%s/params.bin", dir);
    FILE *f = fopen(path, "rb");
    if (!f) die("cannot read (run `prep DIR` first)", path);
    for (size_t i = 0; i < net->nparams; ++i) {
        double v;
        if (fread(&v, sizeof v, 1, f) != 1) die("short parameter file", path);
        net->params[i] = (vae_real)v;
    }
    fclose(f);
}

static uint64_t g_seed = 1; /* --seed: the example's seed (streams; init is overwritten) */

static void trainer_for(vae_trainer *t, vae_method m, size_t k, const bench_data *d,
                        const char *dir) {
    vae_config cfg;
    vae_config_default(&cfg);
    cfg.seed = g_seed;
    cfg.method = m;
    cfg.k = k;
    cfg.batch = BATCH;
    if (vae_trainer_init(t, &cfg, d->pixel_mean)) die("vae_trainer_init", t->err);
    if (dir) read_params(dir, &t->net);
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, size_t n) {
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static uint64_t fnv1a(const void *p, size_t n, uint64_t h) {
    const unsigned char *c = (const unsigned char *)p;
    for (size_t i = 0; i < n; ++i) h = (h ^ c[i]) * 0x100000001b3ull;
    return h;
}

static long max_rss_kb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static const char *env_or(const char *name, const char *dflt) {
    const char *v = getenv(name);
    return v ? v : dflt;
}

/* What the library did, from its handles' counters (stats.h), summed over the handles
 * given (NULL: none). */
static bsvi_stats lib_stats(const bsvi_svi *svi, const bsvi_estimator *est,
                            const bsvi_evaluator *ev) {
    bsvi_stats sum, h[3];
    memset(&sum, 0, sizeof sum);
    memset(h, 0, sizeof h);
    if (svi) bsvi_svi_get_stats(svi, &h[0]);
    if (est) bsvi_estimator_get_stats(est, &h[1]);
    if (ev) bsvi_evaluator_get_stats(ev, &h[2]);
    for (int i = 0; i < 3; ++i) {
        sum.calls += h[i].calls;
        sum.likelihood_calls += h[i].likelihood_calls;
        sum.likelihood_rows += h[i].likelihood_rows;
        sum.svi_steps += h[i].svi_steps;
    }
    return sum;
}

/* ,"key":{...}: the counters per unit (n units). */
static void print_lib_stats(const char *key, const bsvi_stats *s, double n) {
    printf(",\"%s\":{\"calls\":%.4g,\"likelihood_calls\":%.4g,\"likelihood_rows\":%.6g,"
           "\"svi_steps\":%.4g}",
           key, (double)s->calls / n, (double)s->likelihood_calls / n,
           (double)s->likelihood_rows / n, (double)s->svi_steps / n);
}

/* ---- modes ---------------------------------------------------------------------- */

static void print_split(const split *s, double n, double total) {
    printf("\"split_ms\":{\"total\":%.4f,\"lib_total\":%.4f,\"callback\":%.4f,\"lib_own\":%.4f,"
           "\"enc_fwd\":%.4f,\"enc_bwd\":%.4f,\"dec_acc\":%.4f,\"adam\":%.4f,\"zero\":%.4f,"
           "\"gemm\":%.4f,\"other\":%.4f},\"gemm_gflop\":%.5f,\"gemm_calls\":%.1f,"
           "\"callbacks_timed\":%d",
           1e3 * total / n, 1e3 * s->lib / n, 1e3 * s->cb / n, 1e3 * (s->lib - s->cb) / n,
           1e3 * s->enc_fwd / n, 1e3 * s->enc_bwd / n, 1e3 * s->dec_acc / n, 1e3 * s->adam / n,
           1e3 * s->zero / n, 1e3 * s->gemm / n,
           1e3 * (total - s->lib - s->enc_fwd - s->enc_bwd - s->dec_acc - s->adam - s->zero) / n,
           1e-9 * s->gemm_flops / n, s->ncalls_gemm / n, HAVE_SPLIT);
}

static int cmd_prep(const char *dir, size_t warm_steps) {
    bench_data d;
    load_data(&d);
    vae_trainer t;
    trainer_for(&t, VAE_METHOD_BSVI_SIR, 9, &d, NULL);
    vae_stats st;
    const double t0 = now();
    for (size_t s = 0; s < warm_steps; ++s)
        if (vae_trainer_step(&t, d.train_x + (s % NUM_TRAIN_BATCHES) * BATCH * 784, &st))
            die("training step", t.err);
    const double el = now() - t0;
    double *p64 = malloc(t.net.nparams * sizeof *p64);
    if (!p64) die("out of memory", NULL);
    for (size_t i = 0; i < t.net.nparams; ++i) p64[i] = (double)t.net.params[i];
    write_file(dir, "params.bin", p64, t.net.nparams * sizeof *p64);
    free(p64);
    write_file(dir, "train_x.bin", d.train_x, NUM_TRAIN_BATCHES * BATCH * 784 * sizeof(double));
    write_file(dir, "test_x.bin", d.test_x, d.n_test * 784 * sizeof(double));
    char path[1024];
    snprintf(path, sizeof path, "%s/meta.json", dir);
    FILE *f = fopen(path, "w");
    if (!f) die("cannot write", path);
    fprintf(f,
            "{\"x_dim\":784,\"h_dim\":200,\"z_dim\":50,\"batch\":%d,\"train_batches\":%d,"
            "\"n_test\":%zu,\"nparams\":%zu,\"warm_steps\":%zu,\"warm_method\":\"bsvi-sir\","
            "\"last_bound\":%.6f}\n",
            BATCH, NUM_TRAIN_BATCHES, d.n_test, t.net.nparams, warm_steps, st.bound);
    fclose(f);
    printf("{\"kind\":\"prep\",\"warm_steps\":%zu,\"seconds\":%.3f,\"last_bound\":%.4f}\n",
           warm_steps, el, st.bound);
    vae_trainer_free(&t);
    free_data(&d);
    return 0;
}

static int parse_methods(const char *s, vae_method *out, int max) {
    int n = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *tok = strtok(buf, ","); tok && n < max; tok = strtok(NULL, ",")) {
        if (vae_method_parse(tok, &out[n])) die("unknown method", tok);
        ++n;
    }
    return n;
}

static int cmd_train(const char *dir, const char *methods, size_t steps, size_t warmup,
                     size_t k) {
    bench_data d;
    load_data(&d);
    vae_method ms[VAE_NUM_METHODS];
    const int nm = parse_methods(methods, ms, VAE_NUM_METHODS);
    double *times = malloc(steps * sizeof *times);
    if (!times) die("out of memory", NULL);
    for (int mi = 0; mi < nm; ++mi) {
        vae_trainer t;
        trainer_for(&t, ms[mi], k, &d, dir);
        vae_stats st;
        double first_bound = NAN;
        for (size_t s = 0; s < warmup; ++s) {
            if (vae_trainer_step(&t, d.train_x + (s % NUM_TRAIN_BATCHES) * BATCH * 784, &st))
                die("training step", t.err);
            if (s == 0) first_bound = st.bound;
        }
        memset(&S, 0, sizeof S);
        bsvi_svi_reset_stats(t.svi);
        bsvi_estimator_reset_stats(t.est);
        double total = 0.0;
        n_gemm_calls = 0;
        gemm_overflow = 0;
        for (size_t s = 0; s < steps; ++s) {
            const double *x = d.train_x + ((warmup + s) % NUM_TRAIN_BATCHES) * BATCH * 784;
            recording = s == 0;
            const double t0 = now();
            if (vae_trainer_step(&t, x, &st)) die("training step", t.err);
            times[s] = now() - t0;
            recording = 0;
            total += times[s];
            if (warmup == 0 && s == 0) first_bound = st.bound;
        }
        const double floor_s = HAVE_SPLIT && !gemm_overflow ? gemm_floor(5) : NAN;
        printf("{\"kind\":\"train\",\"impl\":\"c\",\"dtype\":\"%s\",\"method\":\"%s\","
               "\"batch\":%d,\"k\":%zu,\"steps\":%zu,\"warmup\":%zu,\"openblas_threads\":\"%s\","
               "\"first_bound\":%.6f,\"last_bound\":%.6f,",
               VAE_PRECISION_NAME, vae_method_name(ms[mi]), BATCH, k, steps, warmup,
               env_or("OPENBLAS_NUM_THREADS", "unset"), first_bound, st.bound);
        if (isfinite(floor_s)) /* JSON has no NaN: the floor is absent without the wrap */
            printf("\"gemm_floor_ms\":%.4f,\"gemm_floor_calls\":%zu,", 1e3 * floor_s,
                   n_gemm_calls);
        print_split(&S, (double)steps, total);
        const bsvi_stats ls = lib_stats(t.svi, t.est, NULL);
        print_lib_stats("lib_per_step", &ls, (double)steps);
        printf(",\"times_ms\":[");
        for (size_t s = 0; s < steps; ++s) printf("%s%.4f", s ? "," : "", 1e3 * times[s]);
        printf("],\"median_ms\":%.4f}\n", 1e3 * median(times, steps));
        fflush(stdout);
        vae_trainer_free(&t);
    }
    free(times);
    free_data(&d);
    return 0;
}

static int cmd_eval(const char *dir, size_t bsvi_images, size_t iwae_images, size_t iwae_S,
                    size_t bsvi_K, size_t reps, const char *what) {
    bench_data d;
    load_data(&d);
    if (bsvi_images > d.n_test) bsvi_images = d.n_test;
    if (iwae_images > d.n_test) iwae_images = d.n_test;
    const size_t max_images = bsvi_images > iwae_images ? bsvi_images : iwae_images;
    vae_trainer t;
    trainer_for(&t, VAE_METHOD_BSVI_SIR, 9, &d, dir);
    bsvi_evaluator *ev = NULL;
    if (bsvi_evaluator_create(t.cfg.z_dim, &ev) != BSVI_OK) die("bsvi_evaluator_create", NULL);
    bsvi_evaluator_set_seed(ev, 7);
    double *res = malloc(max_images * sizeof *res), *times = malloc(reps * sizeof *times);
    if (!res || !times) die("out of memory", NULL);
    for (int which = 0; which < 2; ++which) {
        if ((which == 0 && strcmp(what, "bsvi") == 0) || (which == 1 && strcmp(what, "iwae") == 0))
            continue;
        const size_t images = which == 0 ? iwae_images : bsvi_images;
        double sum_ll = 0.0;
        memset(&S, 0, sizeof S);
        bsvi_evaluator_reset_stats(ev);
        double total = 0.0;
        for (size_t r = 0; r < reps; ++r) {
            const double t0 = now();
            for (size_t first = 0; first < images; first += BATCH) {
                const size_t nb = images - first < BATCH ? images - first : BATCH;
                bsvi_evaluator_set_stream(ev, r, first);
                const double *x = d.test_x + first * 784;
                if (vae_trainer_evaluate(&t, ev, x, nb, which == 0 ? iwae_S : 0,
                                         which == 1 ? bsvi_K : 0, 0, res + first, res + first,
                                         NULL, NULL, NULL))
                    die("evaluation", t.err);
            }
            times[r] = now() - t0;
            total += times[r];
            if (r == 0)
                for (size_t i = 0; i < images; ++i) sum_ll += res[i];
        }
        printf("{\"kind\":\"eval\",\"impl\":\"c\",\"dtype\":\"%s\",\"what\":\"%s-%zu\","
               "\"images\":%zu,\"reps\":%zu,\"openblas_threads\":\"%s\",\"mean_ll\":%.6f,",
               VAE_PRECISION_NAME, which == 0 ? "iwae" : "bsvi", which == 0 ? iwae_S : bsvi_K, images, reps,
               env_or("OPENBLAS_NUM_THREADS", "unset"), sum_ll / (double)images);
        print_split(&S, (double)(reps * images), total);
        const bsvi_stats ls = lib_stats(NULL, NULL, ev);
        print_lib_stats("lib_per_image", &ls, (double)(reps * images));
        printf(",\"ms_per_image\":[");
        for (size_t r = 0; r < reps; ++r)
            printf("%s%.4f", r ? "," : "", 1e3 * times[r] / (double)images);
        for (size_t r = 0; r < reps; ++r) times[r] /= (double)images;
        printf("],\"median_ms_per_image\":%.4f}\n", 1e3 * median(times, reps));
        fflush(stdout);
    }
    free(res);
    free(times);
    bsvi_evaluator_destroy(ev);
    vae_trainer_free(&t);
    free_data(&d);
    return 0;
}

/* "gflops"/"best_gflops": cblas_dgemm (the field names of earlier runs);
 * "sgemm_gflops"/"sgemm_best_gflops": cblas_sgemm on the same shape. */
static int cmd_peak(size_t n, size_t reps) {
    double *a = malloc(n * n * sizeof *a), *b = malloc(n * n * sizeof *b),
           *c = malloc(n * n * sizeof *c);
    float *fa = malloc(n * n * sizeof *fa), *fb = malloc(n * n * sizeof *fb),
          *fc = malloc(n * n * sizeof *fc);
    if (!a || !b || !c || !fa || !fb || !fc) die("out of memory", NULL);
    for (size_t i = 0; i < n * n; ++i) {
        a[i] = (double)(i % 7) * 0.1 - 0.3;
        b[i] = (double)(i % 11) * 0.05 - 0.2;
        c[i] = 0.0;
        fa[i] = (float)a[i], fb[i] = (float)b[i], fc[i] = 0.0f;
    }
    const double flop = 2.0 * (double)n * (double)n * (double)n;
    printf("{\"kind\":\"peak\",\"n\":%zu,\"openblas_threads\":\"%s\"", n,
           env_or("OPENBLAS_NUM_THREADS", "unset"));
    for (int single = 0; single < 2; ++single) {
        double best = 0.0;
        printf(",\"%sgflops\":[", single ? "sgemm_" : "");
        for (size_t r = 0; r < reps; ++r) {
            const double t0 = now();
            if (single)
                CALL_SGEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)n, (int)n, 1.0f,
                           fa, (int)n, fb, (int)n, 0.0f, fc, (int)n);
            else
                CALL_DGEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)n, (int)n, 1.0, a,
                           (int)n, b, (int)n, 0.0, c, (int)n);
            const double g = flop / (now() - t0) * 1e-9;
            if (g > best) best = g;
            printf("%s%.3f", r ? "," : "", g);
        }
        printf("],\"%sbest_gflops\":%.3f", single ? "sgemm_" : "", best);
    }
    printf(",\"check\":%.6g}\n", c[n + 1] + (double)fc[n + 1]);
    free(a);
    free(b);
    free(c);
    free(fa);
    free(fb);
    free(fc);
    return 0;
}

static int cmd_mem_train(const char *dir, vae_method m, size_t k, size_t steps) {
    bench_data d;
    load_data(&d);
    const long rss0 = max_rss_kb();
    vae_trainer t;
    trainer_for(&t, m, k, &d, dir);
    vae_stats st;
    for (size_t s = 0; s < steps; ++s)
        if (vae_trainer_step(&t, d.train_x + (s % NUM_TRAIN_BATCHES) * BATCH * 784, &st))
            die("training step", t.err);
    printf("{\"kind\":\"mem\",\"impl\":\"c\",\"mode\":\"train\",\"method\":\"%s\",\"k\":%zu,"
           "\"steps\":%zu,\"rss_before_kb\":%ld,\"max_rss_kb\":%ld}\n",
           vae_method_name(m), k, steps, rss0, max_rss_kb());
    vae_trainer_free(&t);
    free_data(&d);
    return 0;
}

static int cmd_mem_eval(const char *dir, const char *what, size_t samples, size_t images) {
    bench_data d;
    load_data(&d);
    if (images > d.n_test) images = d.n_test;
    const long rss0 = max_rss_kb();
    vae_trainer t;
    trainer_for(&t, VAE_METHOD_BSVI_SIR, 9, &d, dir);
    bsvi_evaluator *ev = NULL;
    if (bsvi_evaluator_create(t.cfg.z_dim, &ev) != BSVI_OK) die("bsvi_evaluator_create", NULL);
    double res[BATCH];
    const int iwae = strcmp(what, "iwae") == 0;
    for (size_t first = 0; first < images; first += BATCH) {
        const size_t nb = images - first < BATCH ? images - first : BATCH;
        bsvi_evaluator_set_stream(ev, 0, first);
        if (vae_trainer_evaluate(&t, ev, d.test_x + first * 784, nb, iwae ? samples : 0,
                                 iwae ? 0 : samples, 0, res, res, NULL, NULL, NULL))
            die("evaluation", t.err);
    }
    printf("{\"kind\":\"mem\",\"impl\":\"c\",\"mode\":\"eval\",\"what\":\"%s\",\"samples\":%zu,"
           "\"images\":%zu,\"rss_before_kb\":%ld,\"max_rss_kb\":%ld}\n",
           what, samples, images, rss0, max_rss_kb());
    bsvi_evaluator_destroy(ev);
    vae_trainer_free(&t);
    free_data(&d);
    return 0;
}

static int cmd_grad(const char *dir, vae_method m, size_t reps, const char *out) {
    bench_data d;
    load_data(&d);
    vae_trainer t;
    trainer_for(&t, m, 9, &d, dir);
    const size_t P = t.net.nparams;
    vae_real *p0 = malloc(P * sizeof *p0);
    double *acc = calloc(P, sizeof *acc);
    if (!p0 || !acc) die("out of memory", NULL);
    memcpy(p0, t.net.params, P * sizeof *p0);
    vae_stats st;
    double bsum = 0.0;
    for (size_t r = 0; r < reps; ++r) {
        /* same parameters and batch every time; the step counter moves the streams on */
        memcpy(t.net.params, p0, P * sizeof *p0);
        if (vae_trainer_step(&t, d.train_x, &st)) die("training step", t.err);
        for (size_t i = 0; i < P; ++i) acc[i] += (double)t.net.grads[i] / (double)reps;
        bsum += st.bound;
    }
    write_path(out, acc, P * sizeof *acc);
    printf("{\"kind\":\"grad\",\"impl\":\"c\",\"method\":\"%s\",\"reps\":%zu,\"mean_bound\":%.6f}\n",
           vae_method_name(m), reps, bsum / (double)reps);
    free(p0);
    free(acc);
    vae_trainer_free(&t);
    free_data(&d);
    return 0;
}

static int cmd_fingerprint(const char *dir, size_t steps) {
    bench_data d;
    load_data(&d);
    printf("{\"kind\":\"fingerprint\",\"openblas_threads\":\"%s\"", env_or("OPENBLAS_NUM_THREADS", "unset"));
    const vae_method ms[2] = {VAE_METHOD_BSVI_SIR, VAE_METHOD_IWAE};
    for (int mi = 0; mi < 2; ++mi) {
        vae_trainer t;
        trainer_for(&t, ms[mi], 9, &d, dir);
        vae_stats st;
        for (size_t s = 0; s < steps; ++s)
            if (vae_trainer_step(&t, d.train_x + (s % NUM_TRAIN_BATCHES) * BATCH * 784, &st))
                die("training step", t.err);
        printf(",\"%s\":\"%016llx\"", vae_method_name(ms[mi]),
               (unsigned long long)fnv1a(t.net.params, t.net.nparams * sizeof(vae_real),
                                         0xcbf29ce484222325ull));
        vae_trainer_free(&t);
    }
    printf(",\"steps\":%zu}\n", steps);
    free_data(&d);
    return 0;
}

/* ---- main ------------------------------------------------------------------------ */

static size_t to_size(const char *s) {
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*s == '\0' || *end != '\0') die("not a number", s);
    return (size_t)v;
}

int main(int argc, char **argv) {
    vae_blas_check_coretype("bench_train_step", argv);
    if (argc < 2) {
        fprintf(stderr, "usage: bench_train_step {prep|train|eval|peak|mem-train|mem-eval|grad|"
                        "fingerprint} [DIR] [options] (see the file comment)\n");
        return 2;
    }
    const char *mode = argv[1];
    const char *dir = NULL;
    int i = 2;
    if (strcmp(mode, "peak") != 0) {
        if (argc < 3) die("this mode needs DIR", mode);
        dir = argv[2];
        i = 3;
    }
    const char *methods = "vae,iwae,svi,bsvi,bsvi-sir", *what = "both", *out = "grad.bin";
    size_t steps = 20, warmup = 3, k = 9, images = 100, iwae_images = 0, iwae_S = 5000, bsvi_K = 500, reps = 3,
           n = 2000, samples = 5000, warm_steps = 100;
    vae_method method = VAE_METHOD_BSVI_SIR;
    for (; i < argc; ++i) {
        const char *a = argv[i];
        if (i + 1 >= argc) die("missing value for", a);
        const char *v = argv[++i];
        if (!strcmp(a, "--methods")) methods = v;
        else if (!strcmp(a, "--method")) {
            if (vae_method_parse(v, &method)) die("unknown method", v);
        } else if (!strcmp(a, "--steps")) steps = to_size(v);
        else if (!strcmp(a, "--warmup")) warmup = to_size(v);
        else if (!strcmp(a, "--k")) k = to_size(v);
        else if (!strcmp(a, "--images")) images = to_size(v);
        else if (!strcmp(a, "--iwae-images")) iwae_images = to_size(v);
        else if (!strcmp(a, "--iwae-samples")) iwae_S = to_size(v);
        else if (!strcmp(a, "--bsvi-weights")) bsvi_K = to_size(v);
        else if (!strcmp(a, "--reps")) reps = to_size(v);
        else if (!strcmp(a, "--n")) n = to_size(v);
        else if (!strcmp(a, "--what")) what = v;
        else if (!strcmp(a, "--samples")) samples = to_size(v);
        else if (!strcmp(a, "--warm-steps")) warm_steps = to_size(v);
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--seed")) g_seed = to_size(v);
        else die("unknown option", a);
    }
    if (steps == 0 || reps == 0 || k == 0 || n == 0) die("counts must be positive", NULL);
    if (!strcmp(mode, "prep")) return cmd_prep(dir, warm_steps);
    if (!strcmp(mode, "train")) return cmd_train(dir, methods, steps, warmup, k);
    if (!strcmp(mode, "eval")) return cmd_eval(dir, images, iwae_images ? iwae_images : images, iwae_S, bsvi_K, reps, what);
    if (!strcmp(mode, "peak")) return cmd_peak(n, reps);
    if (!strcmp(mode, "mem-train")) return cmd_mem_train(dir, method, k, steps);
    if (!strcmp(mode, "mem-eval")) return cmd_mem_eval(dir, what, samples, images);
    if (!strcmp(mode, "grad")) return cmd_grad(dir, method, reps, out);
    if (!strcmp(mode, "fingerprint")) return cmd_fingerprint(dir, steps);
    die("unknown mode", mode);
    return 2;
}
