/* vae: train and evaluate variational autoencoders with libbsvi.
 *
 *   vae train --data {builtin,mnist,fashion-mnist,fashion-mnist-gray}
 *             --method {vae,iwae,svi,bsvi,bsvi-ds,bsvi-sir,bsvi-sir-pi} [options]
 *   vae eval --checkpoint CKPT [--iwae-samples 5000] [--bsvi-weights 500] [--test-subset N]
 *   vae svi-sweep [--checkpoint CKPT | --data D] [--rules LIST] [--etas LIST]
 *   vae sample --checkpoint CKPT --out FILE.pgm [--rows 8] [--per-row 6]
 *
 * See README.md in this directory. The training loop reads top to bottom in
 * cmd_train(): load data, then per epoch: shuffle, per batch binarise and
 * train_step (train.c), validate, log, checkpoint, early-stop. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <bsvi/bsvi.h>

#include "blas_env.h"
#include "checkpoint.h"
#include "data.h"
#include "mpi.h"
#include "sample.h"
#include "train.h"

/* Fixed binarisation seeds of the held-out sets (the training set is
 * binarised afresh per minibatch from the run's seed and the step counter). */
#define VALID_BINARIZE_SEED 0x56414C4944ull /* "VALID" */
#define TEST_BINARIZE_SEED 0x54455354ull    /* "TEST"  */
#define TEST_CURVE_SEED 0x4355525645ull      /* "CURVE" */
#define TRAIN_BINARIZE_SALT 0x5452414E5345ull
#define BUILTIN_VALID_FRACTION 10 /* builtin: the last 1/10 of its training images validate */

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "vae: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    vae_mpi_abort(1); /* over MPI: every rank stops (one process: returns) */
    exit(1);
}

#define USAGE_TRAIN                                                                          \
    "  vae train --data {builtin,mnist,fashion-mnist,fashion-mnist-gray}\n"                  \
    "            --method {vae,iwae,svi,bsvi,bsvi-ds,bsvi-sir,bsvi-sir-pi}\n"                \
    "            [--epochs N] [--batch 100] [--k 9] [--svi-step-size ETA]\n"                 \
    "            [--svi-rule gradient|momentum|adam] [--svi-clip C] [--lr 1e-3]\n"           \
    "            [--kl-anneal STEPS] [--patience N] [--seed S] [--out DIR]\n"                \
    "            [--resume CKPT | --overwrite] [--max-train N] [--sir-m M] [--dreg]\n"       \
    "            [--pi-lr LR] [--data-dir DIR] [--test-curve N] [--test-curve-samples 100]\n"
#define USAGE_EVAL                                                                           \
    "  vae eval --checkpoint CKPT [--iwae-samples 5000] [--bsvi-weights 500]\n"              \
    "           [--elbo-samples 1000] [--test-subset N] [--seed S] [--svi-rule R]\n"       \
    "           [--svi-step-size ETA] [--data-dir DIR]\n"
#define USAGE_SWEEP                                                                          \
    "  vae svi-sweep [--checkpoint CKPT | --data D [--seed S]] [--rules LIST]\n"             \
    "           [--etas LIST | --min-step ETA --max-step ETA] [--margin 2] [--k 10]\n"       \
    "           [--n 500] [--data-dir DIR]\n"
#define USAGE_SAMPLE                                                                         \
    "  vae sample --checkpoint CKPT --out FILE.pgm [--rows 8] [--per-row 6] [--seed 1]\n"

/* Without a command: the usage on stderr, exit code 2. */
static void usage(void) {
    fprintf(stderr, "usage:\n" USAGE_TRAIN USAGE_EVAL USAGE_SWEEP USAGE_SAMPLE
                    "  vae COMMAND --help   (a command's options)\n");
    exit(2);
}

/* `vae --help`, `vae COMMAND --help`: on stdout, exit code 0. */
static void help(const char *cmd) {
    if (!cmd) {
        printf("usage:\n" USAGE_TRAIN USAGE_EVAL USAGE_SWEEP USAGE_SAMPLE
               "  vae COMMAND --help   (a command's options)\n");
    } else if (!strcmp(cmd, "train")) {
        printf("usage:\n" USAGE_TRAIN
               "Trains a VAE; per epoch a row of DIR/log.csv, DIR/best.ckpt, DIR/last.ckpt.\n"
               "  --data D            data set (required for a new run)\n"
               "  --method M          method (required for a new run)\n"
               "  --epochs N          stop after epoch N, counted over resumed runs (10; >= 1)\n"
               "  --batch B           data points per step (100; 1..%u)\n"
               "  --k K               BSVI steps, K+1 weights (9; 1..%u)\n"
               "  --svi-step-size ETA SVI step size (5e-3; > 0)\n"
               "  --svi-rule R        gradient, momentum or adam (gradient)\n"
               "  --svi-clip C        per-data-point SVI direction clipping (0: off; >= 0)\n"
               "  --lr LR             AMSGrad learning rate (1e-3; > 0)\n"
               "  --kl-anneal STEPS   KL multiplier rises 0 -> 1 over STEPS steps (0: off)\n"
               "  --patience N        early stop after N epochs without improvement (0: off)\n"
               "  --seed S            seed of everything random (1)\n"
               "  --out DIR           run directory (runs/DATA-METHOD-sSEED; with --resume, the\n"
               "                      checkpoint's directory)\n"
               "  --resume CKPT       continue a run (its configuration; options that differ\n"
               "                      from it are refused; log.csv is cut back to its epoch)\n"
               "  --overwrite         replace the run in DIR (without it, a DIR holding a\n"
               "                      log.csv with rows or a checkpoint is refused)\n"
               "  --max-train N       use only the first N training images (0: all); kept in\n"
               "                      the checkpoint\n"
               "  --sir-m M           resampled targets of BSVI-SIR (1; 1..%u)\n"
               "  --dreg              DReG encoder gradient for iwae\n"
               "  --pi-lr LR          Adam learning rate of pi for bsvi-sir-pi (1e-2; > 0)\n"
               "  --data-dir DIR      the data cache ($BSVI_DATA_DIR or data-cache)\n"
               "  --test-curve N      IWAE-S on the first N test images after every epoch (0: off)\n"
               "  --test-curve-samples S  S of that IWAE-S (100; >= 1)\n"
               "A repeated option: the last one wins.\n",
               VAE_MAX_BATCH, VAE_MAX_K, VAE_MAX_K);
    } else if (!strcmp(cmd, "eval")) {
        printf("usage:\n" USAGE_EVAL
               "Evaluates a checkpoint on the test set; a CSV header, a CSV line, a table row.\n"
               "  --checkpoint CKPT   the checkpoint (required)\n"
               "  --iwae-samples S    S of IWAE-S (5000; >= 1)\n"
               "  --bsvi-weights K    K of BSVI-K (500; >= 1)\n"
               "  --elbo-samples S    samples of ELBO*, KL*, Reconstruction* (1000; >= 1)\n"
               "  --test-subset N     the first N test images (0: all)\n"
               "  --seed S            the evaluator's seed (1)\n"
               "  --svi-rule R        BSVI-K's refinement step rule (the checkpoint's)\n"
               "  --svi-step-size ETA BSVI-K's refinement step size (the checkpoint's; > 0)\n"
               "  --data-dir DIR      the data cache ($BSVI_DATA_DIR or data-cache)\n"
               "The CSV's columns svi_rule and svi_eta name the refinement BSVI-K used; its\n"
               "iwae_khat_* and iwae_ess_mean columns (and the last line) are the diagnostics\n"
               "of IWAE-S's importance weights: mean and median PSIS k-hat, the fraction of\n"
               "test images with k-hat > 0.7 (an unreliable estimate) and the mean ESS.\n");
    } else if (!strcmp(cmd, "sample")) {
        printf("usage:\n" USAGE_SAMPLE
               "Images from the decoder: per row one z ~ N(0, I), its mean image and draws\n"
               "x ~ p(x | z), as one binary PGM (the BSVI paper's Figure 5).\n"
               "  --checkpoint CKPT   a trained model\n"
               "  --out FILE          the PGM to write\n"
               "  --rows N            rows, one z each (8)\n"
               "  --per-row N         draws per row beside the mean (6)\n"
               "  --seed S            the draws' seed (1)\n");
    } else {
        printf("usage:\n" USAGE_SWEEP
               "SVI-0, SVI-k and BSVI-k on validation images per step rule and step size, and\n"
               "the best safe step (libbsvi's bsvi_svi_search_step_size).\n"
               "  --checkpoint CKPT   a trained model (else a fresh one of --data, --seed)\n"
               "  --data D            data set of a fresh model (builtin)\n"
               "  --rules LIST        comma-separated step rules (gradient,momentum,adam)\n"
               "  --etas LIST         comma-separated positive step sizes (at most 64);\n"
               "                      without it, a search in log space\n"
               "  --min-step ETA      the log search's smallest step (1e-4)\n"
               "  --max-step ETA      the log search's largest step (1)\n"
               "  --margin M          the best step is at most the first diverging / M (2)\n"
               "  --k K               SVI steps (10; >= 1)\n"
               "  --n N               validation images (500; >= 1)\n"
               "  --seed S            seed of a fresh model (1)\n"
               "  --data-dir DIR      the data cache ($BSVI_DATA_DIR or data-cache)\n");
    }
    exit(0);
}

static int is_help(const char *a) { return !strcmp(a, "--help") || !strcmp(a, "-h"); }

/* ---- option parsing helpers -------------------------------------------------- */

static const char *need_value(int argc, char **argv, int *i) {
    if (*i + 1 >= argc) die("option %s needs a value", argv[*i]);
    return argv[++*i];
}
static size_t parse_size(const char *opt, const char *s) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || s[0] == '-' || s[0] == '\0') die("%s: not a non-negative integer: %s", opt, s);
    return (size_t)v;
}
static double parse_double(const char *opt, const char *s) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || s[0] == '\0' || !isfinite(v)) die("%s: not a number: %s", opt, s);
    return v;
}

/* ---- data ------------------------------------------------------------------------ */

typedef struct data_sets {
    vae_dataset train, valid, test;
    size_t train_first, train_count; /* a window of `train` (builtin: the first 9/10) */
    size_t valid_first, valid_count; /* a window of `valid` (builtin: it aliases `train`) */
    int valid_aliases_train;
    vae_likelihood lik;
} data_sets;

static int data_name_ok(const char *name, vae_likelihood *lik, const char **dataset) {
    *lik = VAE_LIK_BERNOULLI;
    if (strcmp(name, "builtin") == 0) *dataset = NULL;
    else if (strcmp(name, "mnist") == 0) *dataset = "mnist";
    else if (strcmp(name, "fashion-mnist") == 0) *dataset = "fashion-mnist";
    else if (strcmp(name, "fashion-mnist-gray") == 0) {
        *dataset = "fashion-mnist";
        *lik = VAE_LIK_LOGISTIC;
    } else
        return 1;
    return 0;
}

/* Loads the splits a command needs (want_train, want_test). */
static void load_data(const char *name, const char *dir, int want_train, int want_test,
                      data_sets *ds) {
    memset(ds, 0, sizeof *ds);
    const char *dataset;
    char err[512];
    if (data_name_ok(name, &ds->lik, &dataset)) die("unknown --data %s", name);
    if (want_train) {
        if (!dataset) {
            if (vae_load_builtin("train", &ds->train, err, sizeof err)) die("%s", err);
            const size_t nv = ds->train.n / BUILTIN_VALID_FRACTION;
            ds->train_count = ds->train.n - nv;
            ds->valid_first = ds->train_count;
            ds->valid_count = nv;
            ds->valid_aliases_train = 1;
        } else {
            if (vae_load_split(dir, dataset, "train", &ds->train, err, sizeof err)) die("%s", err);
            if (vae_load_split(dir, dataset, "valid", &ds->valid, err, sizeof err)) die("%s", err);
            ds->train_count = ds->train.n;
            ds->valid_count = ds->valid.n;
        }
    }
    if (want_test) {
        if (!dataset) {
            if (vae_load_builtin("test", &ds->test, err, sizeof err)) die("%s", err);
        } else if (vae_load_split(dir, dataset, "test", &ds->test, err, sizeof err)) {
            die("%s", err);
        }
    }
}

static void free_data(data_sets *ds) {
    vae_dataset_free(&ds->train);
    if (!ds->valid_aliases_train) vae_dataset_free(&ds->valid);
    vae_dataset_free(&ds->test);
}

static const vae_dataset *valid_set(const data_sets *ds) {
    return ds->valid_aliases_train ? &ds->train : &ds->valid;
}

/* Model-space rows: binarised (0/1) with (seed, counter) or gray levels 0..255. */
static void make_batch(const vae_dataset *d, vae_likelihood lik, const size_t *rows, size_t n,
                       uint64_t seed, uint64_t counter, double *out) {
    if (lik == VAE_LIK_LOGISTIC)
        vae_gray(d, rows, n, out);
    else
        vae_binarize(d, rows, n, seed, counter, out);
}

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* perm = first + shuffled 0..n-1, a function of (seed, epoch) only. */
static void shuffle(size_t *perm, size_t n, size_t first, uint64_t seed, uint64_t epoch) {
    uint64_t s = seed * 0x2545F4914F6CDD1Dull + epoch;
    for (size_t i = 0; i < n; ++i) perm[i] = first + i;
    for (size_t i = n; i > 1; --i) {
        const size_t j = (size_t)(splitmix64(&s) % i);
        const size_t tmp = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = tmp;
    }
}

static void mkdir_p(const char *path) {
    char buf[4096];
    if (strlen(path) >= sizeof buf) die("path too long: %s", path);
    strcpy(buf, path);
    for (char *p = buf + 1; *p; ++p)
        if (*p == '/') {
            *p = '\0';
            mkdir(buf, 0755);
            *p = '/';
        }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) die("cannot create directory %s", path);
}

/* ---- validation -------------------------------------------------------------- */

/* Means over the validation window of the method's bound and the SVI health values.
 * Over MPI each batch is split across the ranks as a training batch is (each row's bound
 * is the one a single process computes for it) and the sums are summed over the ranks. */
static vae_stats validate(vae_trainer *t, const data_sets *ds, size_t *rows, double *x) {
    const vae_dataset *v = valid_set(ds);
    const size_t B = t->cfg.batch;
    vae_stats sum = {0, 0, 0, 0, NAN, NAN};
    size_t done = 0;
    for (size_t first = 0; first < ds->valid_count; first += B) {
        const size_t nb = ds->valid_count - first < B ? ds->valid_count - first : B;
        size_t lo, hi;
        vae_mpi_share(nb, &lo, &hi);
        const size_t n = hi - lo;
        if (n == 0) continue;
        for (size_t i = 0; i < n; ++i) rows[i] = ds->valid_first + first + lo + i;
        make_batch(v, t->cfg.lik, rows, n, VALID_BINARIZE_SEED, 0, x);
        vae_stats st;
        if (vae_trainer_bound_part(t, x, n, first / B, lo, &st, NULL))
            die("validation: %s", t->err);
        sum.bound += st.bound * (double)n;
        sum.svi0 += st.svi0 * (double)n;
        sum.svik += st.svik * (double)n;
        sum.bsvik += st.bsvik * (double)n;
        done += n;
    }
    if (vae_mpi_size() > 1) {
        double s[5] = {sum.bound, sum.svi0, sum.svik, sum.bsvik, (double)done};
        vae_mpi_sum_double(s, 5);
        sum.bound = s[0], sum.svi0 = s[1], sum.svik = s[2], sum.bsvik = s[3];
        done = (size_t)s[4];
    }
    sum.bound /= (double)done;
    sum.svi0 /= (double)done;
    sum.svik /= (double)done;
    sum.bsvik /= (double)done;
    return sum;
}

/* qsort order of doubles (no NaN): ascending, +inf last. */
static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Means over the first n test images of IWAE-S, BSVI-K, ELBO*, KL*, Reconstruction*
 * (sum[0..4]; K = 0 skips the last four) with evaluator ev, in batches of cfg.batch.
 * The test set is binarised once with a fixed seed and each batch draws from its own
 * part of the evaluator's streams, so the result depends on the model only. rows (B),
 * x (B * x_dim) and res (7 * B) are scratch. progress: a line on stderr per batch.
 * diag (4 values, or NULL): the diagnostics of IWAE-S's weights (ev's diagnostics must be on):
 * the mean of the finite k-hat values, the median k-hat (+inf counted, NaN not), the fraction
 * of the n images with k-hat > 0.7 and the mean ESS.
 * Over MPI the batches are shared out in contiguous runs (rank r: batches
 * [r*C/N, (r+1)*C/N) of C), their per-image results gathered on rank 0 in image order and
 * summed there in that order, so that the means are those of one process bit for bit;
 * every rank gets them. *comm (if not NULL) receives the seconds spent in the gather. */
static void evaluate_test(vae_trainer *t, bsvi_evaluator *ev, const data_sets *ds, size_t n,
                          size_t S, size_t K, size_t elbo_S, size_t *rows, double *x,
                          double *res, double sum[5], double *diag, int progress,
                          double *comm) {
    enum { R = 7 }; /* per image: IWAE-S, BSVI-K, ELBO*, KL*, Reconstruction*, ESS, k-hat */
    const size_t B = t->cfg.batch;
    const size_t nchunks = (n + B - 1) / B;
    const int N = vae_mpi_size(), rank = vae_mpi_rank();
    size_t c_lo, c_hi;
    vae_mpi_share(nchunks, &c_lo, &c_hi);
    const size_t i_lo = c_lo * B < n ? c_lo * B : n, i_hi = c_hi * B < n ? c_hi * B : n;
    /* this rank's images' results, image-major (R per image), then all of them on rank 0 */
    double *mine = malloc((i_hi - i_lo) * R * sizeof *mine + 1);
    double *all = rank == 0 ? malloc(n * R * sizeof *all + 1) : NULL;
    size_t *counts = malloc((size_t)N * sizeof *counts);
    if (!mine || (rank == 0 && !all) || !counts) die("out of memory");
    const double t0 = now_seconds();
    double run[2] = {0.0, 0.0}; /* progress only */
    for (size_t first = i_lo; first < i_hi; first += B) {
        const size_t nb = n - first < B ? n - first : B;
        for (size_t i = 0; i < nb; ++i) rows[i] = first + i;
        make_batch(&ds->test, t->cfg.lik, rows, nb, TEST_BINARIZE_SEED, 0, x);
        bsvi_evaluator_set_stream(ev, 0, first);
        if (vae_trainer_evaluate(t, ev, x, nb, S, K, elbo_S, res, res + B, res + 2 * B,
                                 res + 3 * B, res + 4 * B))
            die("evaluation: %s", t->err);
        for (size_t i = 0; i < 2 * nb; ++i) res[5 * B + i] = NAN;
        if (diag && bsvi_evaluator_get_diagnostics(ev, nb, res + 5 * B, res + 5 * B + nb) != BSVI_OK)
            die("evaluation: %s", bsvi_evaluator_last_error(ev));
        for (size_t i = 0; i < nb; ++i) {
            for (int m = 0; m < 5; ++m)
                mine[(first - i_lo + i) * R + (size_t)m] = res[(size_t)m * B + i];
            mine[(first - i_lo + i) * R + 5] = res[5 * B + i];
            mine[(first - i_lo + i) * R + 6] = res[5 * B + nb + i];
        }
        for (size_t i = 0; i < nb; ++i) run[0] += res[i], run[1] += res[B + i];
        if (progress && rank == 0) {
            const size_t done = first + nb - i_lo, todo = i_hi - i_lo;
            const double el = now_seconds() - t0;
            fprintf(stderr, "\reval %zu/%zu%s  IWAE-%zu %.3f  BSVI-%zu %.3f  %.0fs  ETA %.0fs   ",
                    done, todo, N > 1 ? " (rank 0's)" : "", S, run[0] / (double)done, K,
                    run[1] / (double)done, el, el / (double)done * (double)(todo - done));
        }
    }
    for (int r = 0; r < N; ++r) {
        const size_t lo = (size_t)r * nchunks / (size_t)N * B;
        const size_t hi = ((size_t)r + 1) * nchunks / (size_t)N * B;
        counts[r] = ((hi < n ? hi : n) - (lo < n ? lo : n)) * R;
    }
    const double c0 = vae_mpi_comm_seconds();
    vae_mpi_gather_double(mine, all, counts);
    for (int m = 0; m < 5; ++m) sum[m] = 0.0;
    if (rank == 0) /* in image order, as one process adds them */
        for (int m = 0; m < 5; ++m)
            for (size_t i = 0; i < n; ++i) sum[m] += all[i * R + (size_t)m];
    for (int m = 0; m < 5; ++m) sum[m] /= (double)n;
    vae_mpi_bcast(sum, 5 * sizeof *sum, 0);
    if (diag) {
        diag[0] = diag[1] = diag[2] = diag[3] = NAN;
        if (rank == 0) { /* image order again; the k-hat values sorted for the median */
            double ks = 0.0, ess = 0.0;
            size_t nk = 0, nm = 0, above = 0;
            for (size_t i = 0; i < n; ++i) {
                const double k = all[i * R + 6];
                ess += all[i * R + 5];
                if (isfinite(k)) ks += k, ++nk;
                if (k > 0.7) ++above;
                if (!isnan(k)) all[nm++] = k; /* all[i * R + 6] was read: compacting is safe */
            }
            qsort(all, nm, sizeof *all, cmp_double);
            if (nk > 0) diag[0] = ks / (double)nk;
            if (nm > 0) diag[1] = nm % 2 ? all[nm / 2] : 0.5 * (all[nm / 2 - 1] + all[nm / 2]);
            diag[2] = (double)above / (double)n;
            diag[3] = ess / (double)n;
        }
        vae_mpi_bcast(diag, 4 * sizeof *diag, 0);
    }
    if (comm) *comm = vae_mpi_comm_seconds() - c0;
    free(mine);
    free(all);
    free(counts);
}

/* IWAE-S on the first n test images (the learning curve's test point), with a fixed
 * evaluator seed: every epoch sees the same binarisation and streams. */
static double test_curve(vae_trainer *t, const data_sets *ds, size_t n, size_t S, size_t *rows,
                         double *x) {
    bsvi_evaluator *ev = NULL;
    if (bsvi_evaluator_create(t->cfg.z_dim, &ev) != BSVI_OK) die("cannot create the evaluator");
    bsvi_evaluator_set_seed(ev, TEST_CURVE_SEED);
    double *res = malloc(7 * t->cfg.batch * sizeof *res);
    if (!res) die("out of memory");
    double sum[5];
    evaluate_test(t, ev, ds, n, S, 0, 0, rows, x, res, sum, NULL, 0, NULL);
    free(res);
    bsvi_evaluator_destroy(ev);
    return sum[0];
}

/* ---- train ---------------------------------------------------------------------- */

static void print_num(FILE *f, double v) {
    if (isnan(v)) fprintf(f, ",");
    else fprintf(f, ",%.4f", v);
}

/* 1 when the run log at path has the header of this build (VAE_LOG_HEADER and
 * VAE_LOG_DIAG_COLUMNS), 0 otherwise (VAE_LOG_HEADER alone: a log begun by an earlier build). */
static int log_has_diag_columns(const char *path) {
    char line[1024];
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    const int got = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    return got && strcmp(line, VAE_LOG_HEADER VAE_LOG_DIAG_COLUMNS "\n") == 0;
}

/* A file of a run in dir that a new run would replace: log.csv with a row (a header
 * alone, as a run stopped in its first epoch leaves it, holds no result), best.ckpt or
 * last.ckpt. NULL when there is none. */
static const char *run_file_in(const char *dir) {
    static const char *const names[3] = {"log.csv", "best.ckpt", "last.ckpt"};
    char path[1100];
    for (int i = 0; i < 3; ++i) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        FILE *f = fopen(path, "rb");
        if (!f) continue;
        int found = 1;
        if (i == 0) { /* any byte after the first line */
            int ch, nl = 0;
            found = 0;
            while ((ch = fgetc(f)) != EOF)
                if (nl) {
                    found = 1;
                    break;
                } else if (ch == '\n') {
                    nl = 1;
                }
        }
        fclose(f);
        if (found) return names[i];
    }
    return NULL;
}

/* The options of `train` that set the configuration; with --resume each one given must
 * agree with the checkpoint (a resumed run keeps its configuration). */
enum {
    OPT_DATA, OPT_METHOD, OPT_BATCH, OPT_K, OPT_ETA, OPT_RULE, OPT_CLIP, OPT_LR, OPT_ANNEAL,
    OPT_SEED, OPT_SIR_M, OPT_DREG, OPT_PI_LR, OPT_MAX_TRAIN, OPT_COUNT
};

static void check_resume_option(const int *given, int opt, const char *name, int same,
                                const char *resume) {
    if (given[opt] && !same)
        die("%s differs from the configuration of %s (a resumed run keeps its configuration; "
            "drop the option, or start a new run with another --out)", name, resume);
}

static int cmd_train(int argc, char **argv) {
    vae_config cfg;
    vae_config_default(&cfg);
    const char *data = NULL, *out_dir = NULL, *resume = NULL, *data_dir = NULL;
    int given[OPT_COUNT] = {0}, overwrite = 0;
    size_t epochs = 10, patience = 0, max_train = 0, curve_n = 0, curve_S = 100;
    for (int i = 2; i < argc; ++i) {
        const char *a = argv[i];
        if (is_help(a)) help("train");
        else if (!strcmp(a, "--data")) data = need_value(argc, argv, &i), given[OPT_DATA] = 1;
        else if (!strcmp(a, "--method")) {
            if (vae_method_parse(need_value(argc, argv, &i), &cfg.method))
                die("unknown --method %s", argv[i]);
            given[OPT_METHOD] = 1;
        } else if (!strcmp(a, "--epochs")) epochs = parse_size(a, need_value(argc, argv, &i));
        else if (!strcmp(a, "--batch"))
            cfg.batch = parse_size(a, need_value(argc, argv, &i)), given[OPT_BATCH] = 1;
        else if (!strcmp(a, "--k")) cfg.k = parse_size(a, need_value(argc, argv, &i)), given[OPT_K] = 1;
        else if (!strcmp(a, "--svi-step-size"))
            cfg.svi_eta = parse_double(a, need_value(argc, argv, &i)), given[OPT_ETA] = 1;
        else if (!strcmp(a, "--svi-rule")) {
            if (bsvi_step_rule_from_name(need_value(argc, argv, &i), &cfg.svi_rule) != BSVI_OK)
                die("unknown --svi-rule %s (gradient, momentum, adam)", argv[i]);
            given[OPT_RULE] = 1;
        } else if (!strcmp(a, "--svi-clip"))
            cfg.svi_clip = parse_double(a, need_value(argc, argv, &i)), given[OPT_CLIP] = 1;
        else if (!strcmp(a, "--lr")) cfg.lr = parse_double(a, need_value(argc, argv, &i)), given[OPT_LR] = 1;
        else if (!strcmp(a, "--kl-anneal"))
            cfg.kl_anneal = parse_size(a, need_value(argc, argv, &i)), given[OPT_ANNEAL] = 1;
        else if (!strcmp(a, "--patience")) patience = parse_size(a, need_value(argc, argv, &i));
        else if (!strcmp(a, "--seed")) cfg.seed = parse_size(a, need_value(argc, argv, &i)), given[OPT_SEED] = 1;
        else if (!strcmp(a, "--out")) out_dir = need_value(argc, argv, &i);
        else if (!strcmp(a, "--resume")) resume = need_value(argc, argv, &i);
        else if (!strcmp(a, "--overwrite")) overwrite = 1;
        else if (!strcmp(a, "--max-train"))
            max_train = parse_size(a, need_value(argc, argv, &i)), given[OPT_MAX_TRAIN] = 1;
        else if (!strcmp(a, "--sir-m"))
            cfg.sir_m = parse_size(a, need_value(argc, argv, &i)), given[OPT_SIR_M] = 1;
        else if (!strcmp(a, "--dreg")) cfg.iwae_dreg = 1, given[OPT_DREG] = 1;
        else if (!strcmp(a, "--pi-lr")) cfg.pi_lr = parse_double(a, need_value(argc, argv, &i)), given[OPT_PI_LR] = 1;
        else if (!strcmp(a, "--data-dir")) data_dir = need_value(argc, argv, &i);
        else if (!strcmp(a, "--test-curve")) curve_n = parse_size(a, need_value(argc, argv, &i));
        else if (!strcmp(a, "--test-curve-samples"))
            curve_S = parse_size(a, need_value(argc, argv, &i));
        else die("unknown option %s for train (vae train --help lists them)", a);
    }
    /* options that make no sense are refused before anything is read or written
     * (a repeated option: the last one counts) */
    if (epochs == 0) die("--epochs 0: nothing to train (at least 1)");
    if (curve_S == 0) die("--test-curve-samples 0: the learning curve needs at least 1 sample");
    if (resume && overwrite)
        die("--overwrite and --resume contradict each other (a resumed run continues its log)");
    char err[512];
    if (!resume) {
        if (!data || !given[OPT_METHOD]) die("train needs --data and --method");
        if (!(cfg.lr > 0.0)) die("--lr %g: the learning rate must be positive", cfg.lr);
        if (!(cfg.svi_eta > 0.0)) die("--svi-step-size %g: must be positive", cfg.svi_eta);
        if (!(cfg.svi_clip >= 0.0)) die("--svi-clip %g: must be 0 (off) or positive", cfg.svi_clip);
        if (!(cfg.pi_lr > 0.0)) die("--pi-lr %g: must be positive", cfg.pi_lr);
        if (cfg.batch == 0 || cfg.batch > VAE_MAX_BATCH)
            die("--batch %zu: must be 1..%u", cfg.batch, VAE_MAX_BATCH);
        if (cfg.k == 0 || cfg.k > VAE_MAX_K) die("--k %zu: must be 1..%u", cfg.k, VAE_MAX_K);
        if (cfg.sir_m == 0 || cfg.sir_m > VAE_MAX_K)
            die("--sir-m %zu: must be 1..%u", cfg.sir_m, VAE_MAX_K);
        if (vae_config_check(&cfg, VAE_MAX_TRAINER_BYTES, err, sizeof err)) die("%s", err);
    }

    vae_trainer t;
    vae_progress prog = {0, 0, 0, -INFINITY, 0.0, VAE_REAL_BITS, 0, VAE_CHECKPOINT_VERSION};
    if (resume) {
        if (vae_checkpoint_load(resume, &t, &prog, err, sizeof err)) die("%s", err);
        if (prog.precision_bits != VAE_REAL_BITS)
            die("%s holds float%u networks and this program trains in %s: resume it with "
                "the float%u build (%s)", resume, prog.precision_bits, VAE_PRECISION_NAME,
                prog.precision_bits, prog.precision_bits == 64 ? "vae64" : "vae");
        if (data && strcmp(data, t.cfg.data) != 0)
            die("--data %s differs from the checkpoint's %s", data, t.cfg.data);
        if (given[OPT_METHOD] && cfg.method != t.cfg.method)
            die("--method %s differs from the checkpoint's %s", vae_method_name(cfg.method),
                vae_method_name(t.cfg.method));
        const vae_config *k = &t.cfg;
        check_resume_option(given, OPT_BATCH, "--batch", cfg.batch == k->batch, resume);
        check_resume_option(given, OPT_K, "--k", cfg.k == k->k, resume);
        check_resume_option(given, OPT_ETA, "--svi-step-size", cfg.svi_eta == k->svi_eta, resume);
        check_resume_option(given, OPT_RULE, "--svi-rule", cfg.svi_rule == k->svi_rule, resume);
        check_resume_option(given, OPT_CLIP, "--svi-clip", cfg.svi_clip == k->svi_clip, resume);
        check_resume_option(given, OPT_LR, "--lr", cfg.lr == k->lr, resume);
        check_resume_option(given, OPT_ANNEAL, "--kl-anneal", cfg.kl_anneal == k->kl_anneal, resume);
        check_resume_option(given, OPT_SEED, "--seed", cfg.seed == k->seed, resume);
        check_resume_option(given, OPT_SIR_M, "--sir-m", cfg.sir_m == k->sir_m, resume);
        check_resume_option(given, OPT_DREG, "--dreg", cfg.iwae_dreg == k->iwae_dreg, resume);
        check_resume_option(given, OPT_PI_LR, "--pi-lr", cfg.pi_lr == k->pi_lr, resume);
        if (prog.version >= 3) { /* the run's --max-train is recorded: keep it */
            if (given[OPT_MAX_TRAIN] && max_train != prog.max_train)
                die("--max-train %zu differs from the run's %llu (recorded in %s)", max_train,
                    (unsigned long long)prog.max_train, resume);
            max_train = (size_t)prog.max_train;
        } else { /* written before --max-train was recorded: as given, recorded from now on */
            prog.max_train = max_train;
        }
        data = t.cfg.data;
    } else {
        prog.max_train = max_train;
    }

    char dir[1024], path[1100];
    if (out_dir) {
        snprintf(dir, sizeof dir, "%s", out_dir);
    } else if (resume) { /* continue in the checkpoint's directory */
        snprintf(dir, sizeof dir, "%s", resume);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = '\0';
        else snprintf(dir, sizeof dir, ".");
    } else {
        snprintf(dir, sizeof dir, "runs/%s-%s-s%llu", data, vae_method_name(cfg.method),
                 (unsigned long long)cfg.seed);
    }
    /* over MPI rank 0 alone reads and writes the run's files (the others only read the
     * checkpoint and the data) */
    const int root = vae_mpi_rank() == 0, nproc = vae_mpi_size();
    if (!resume && !overwrite && root) {
        const char *found = run_file_in(dir);
        if (found)
            die("%s already holds a run (%s/%s): continue it with --resume %s/last.ckpt, "
                "replace it with --overwrite, or choose another --out", dir, dir, found, dir);
    }
    if (resume && root)
        fprintf(stderr, "vae: resumed %s at epoch %llu, step %llu\n", resume,
                (unsigned long long)prog.epoch, (unsigned long long)t.step);

    data_sets ds;
    load_data(data, data_dir, 1, curve_n > 0, &ds);
    if (resume && (t.cfg.x_dim != ds.train.dim || t.cfg.lik != ds.lik))
        die("%s: x_dim %zu and likelihood %u do not fit --data %s (%zu pixels, likelihood %u)",
            resume, t.cfg.x_dim, (unsigned)t.cfg.lik, data, ds.train.dim, (unsigned)ds.lik);
    if (curve_n > ds.test.n) curve_n = ds.test.n;
    if (max_train > 0 && max_train < ds.train_count) ds.train_count = max_train;
    const size_t B = resume ? t.cfg.batch : cfg.batch;
    if (ds.train_count < B) die("%zu training images, fewer than one batch of %zu", ds.train_count, B);
    if (ds.valid_count == 0) die("no validation images");
    if (B < (size_t)nproc) die("batch %zu is smaller than the %d processes", B, nproc);

    if (!resume) {
        snprintf(cfg.data, sizeof cfg.data, "%s", data);
        cfg.lik = ds.lik;
        double *mean = calloc(cfg.x_dim, sizeof *mean);
        if (!mean) die("out of memory");
        for (size_t i = 0; i < ds.train_count; ++i)
            for (size_t j = 0; j < cfg.x_dim; ++j)
                mean[j] += ds.train.pixels[(ds.train_first + i) * ds.train.dim + j] / 255.0;
        for (size_t j = 0; j < cfg.x_dim; ++j) mean[j] /= (double)ds.train_count;
        if (vae_trainer_init(&t, &cfg, mean)) die("%s", t.err);
        free(mean);
    }
    const vae_config *c = &t.cfg;

    /* The log and the checkpoints agree after any interruption: an epoch's row is
     * appended (and flushed; a failed write stops the run) before its checkpoints are
     * written, and --resume cuts the log back to the checkpoint's epoch, so a row
     * written for an epoch whose checkpoint was not (a kill, a full disk) is replaced
     * by the rerun's row instead of repeated. */
    if (root) mkdir_p(dir);
    snprintf(path, sizeof path, "%s/log.csv", dir);
    FILE *log = NULL;
    int log_diag = 1; /* the log has VAE_LOG_DIAG_COLUMNS (one begun by this build) */
    if (!root) {
        /* rank 0 writes the log */
    } else if (resume && access(path, F_OK) == 0) {
        size_t dropped = 0;
        if (vae_log_reconcile(path, prog.epoch, &dropped, err, sizeof err))
            die("%s (resuming %s)", err, resume);
        if (dropped > 0)
            fprintf(stderr, "vae: %s: dropped %zu row%s past epoch %llu, the checkpoint's "
                    "(an interrupted epoch, trained again now)\n", path, dropped,
                    dropped == 1 ? "" : "s", (unsigned long long)prog.epoch);
        /* a log begun by an earlier build keeps its columns: no train_ess for this run */
        log_diag = log_has_diag_columns(path);
        if (!log_diag)
            fprintf(stderr, "vae: %s has the columns of an earlier build: they are kept "
                    "(train_ess is printed, not logged)\n", path);
        log = fopen(path, "a");
    } else {
        if (resume)
            fprintf(stderr, "vae: no %s: a new log, its rows start at epoch %llu\n", path,
                    (unsigned long long)prog.epoch + 1);
        if (overwrite) {
            static const char *const names[6] = {"log.csv", "best.ckpt", "last.ckpt",
                                                 "log.csv.tmp", "best.ckpt.tmp", "last.ckpt.tmp"};
            char old[1100];
            for (int i = 0; i < 6; ++i) {
                snprintf(old, sizeof old, "%s/%s", dir, names[i]);
                remove(old);
            }
        }
        log = fopen(path, "w");
        if (log) fprintf(log, VAE_LOG_HEADER VAE_LOG_DIAG_COLUMNS "\n");
    }
    if (root && (!log || fflush(log) != 0 || ferror(log))) die("cannot write %s", path);

    if (root) fprintf(stderr,
            "vae: %s on %s (%zu train, %zu valid), batch %zu, k %zu, SVI %s eta %g, lr %g, "
            "%zu epochs, out %s\n",
            vae_method_name(c->method), c->data, ds.train_count, ds.valid_count, B, c->k,
            bsvi_step_rule_name(c->svi_rule), c->svi_eta, c->lr, epochs, dir);
    size_t part_lo, part_hi; /* this rank's points of every batch */
    vae_mpi_share(B, &part_lo, &part_hi);
    if (root && nproc > 1)
        fprintf(stderr, "vae: over MPI: %d processes, %zu..%zu points of each batch each\n",
                nproc, B / (size_t)nproc, (B + (size_t)nproc - 1) / (size_t)nproc);

    size_t *perm = malloc(ds.train_count * sizeof *perm);
    double *x = malloc(B * c->x_dim * sizeof *x);
    size_t *rows = malloc(B * sizeof *rows);
    if (!perm || !x || !rows) die("out of memory");
    const size_t nbatches = ds.train_count / B;
    const int tty = isatty(2);
    const uint64_t bin_seed = c->seed ^ TRAIN_BINARIZE_SALT;

    while (prog.epoch < epochs) {
        const uint64_t epoch = prog.epoch + 1;
        const double t0 = now_seconds();
        double last_print = t0;
        shuffle(perm, ds.train_count, ds.train_first, c->seed, epoch);
        vae_stats sum = {0, 0, 0, 0, 0, 0};
        const double comm0 = vae_mpi_comm_seconds();
        for (size_t bi = 0; bi < nbatches; ++bi) {
            /* fresh Bernoulli draw per minibatch, keyed by the step counter (and the image:
             * a rank binarises its points as one process does) */
            make_batch(&ds.train, c->lik, perm + bi * B + part_lo, part_hi - part_lo, bin_seed,
                       t.step, x);
            vae_stats st;
            if (vae_trainer_step_part(&t, x, part_lo, part_hi - part_lo, &st))
                die("epoch %llu batch %zu: %s", (unsigned long long)epoch, bi, t.err);
            sum.bound += st.bound;
            sum.svi0 += st.svi0;
            sum.svik += st.svik;
            sum.bsvik += st.bsvik;
            sum.mean_pos += st.mean_pos;
            sum.ess += st.ess;
            const double tn = now_seconds();
            if (root && (tn - last_print >= (tty ? 1.0 : 30.0) || bi + 1 == nbatches)) {
                last_print = tn;
                const double rate = (double)((bi + 1) * B) / (tn - t0);
                const double eta_s = (double)((nbatches - bi - 1) * B) / rate;
                fprintf(stderr, "%sepoch %llu/%zu  %6zu/%zu images  %7.0f img/s  ETA %5.0fs  bound %.3f%s",
                        tty ? "\r" : "", (unsigned long long)epoch, epochs, (bi + 1) * B,
                        nbatches * B, rate, eta_s, sum.bound / (double)(bi + 1),
                        tty ? "   " : "\n");
                fflush(stderr);
            }
        }
        if (tty && root) fprintf(stderr, "\n");
        const double train_secs = now_seconds() - t0, train_comm = vae_mpi_comm_seconds() - comm0;
        if (nproc > 1) { /* every rank must hold the same state */
            uint64_t lo_h, hi_h;
            vae_mpi_minmax_u64(vae_trainer_checksum(&t), &lo_h, &hi_h);
            if (lo_h != hi_h)
                die("after epoch %llu the %d processes' parameters differ (checksums %016llx.."
                    "%016llx): the data-parallel steps were not identical",
                    (unsigned long long)epoch, nproc, (unsigned long long)lo_h,
                    (unsigned long long)hi_h);
        }
        const double nb = (double)nbatches;
        const double val0 = now_seconds(), val_comm0 = vae_mpi_comm_seconds();
        vae_stats val = validate(&t, &ds, rows, x);
        vae_mpi_bcast(&val, sizeof val, 0); /* one decision for best.ckpt and early stops */
        const double val_secs = now_seconds() - val0, val_comm = vae_mpi_comm_seconds() - val_comm0;
        const double secs = now_seconds() - t0;
        if (root && nproc > 1)
            fprintf(stderr, "mpi: epoch %llu on %d processes: training %.3fs (compute %.3fs, "
                    "allreduce %.3fs), validation %.3fs (compute %.3fs, allreduce %.3fs)\n",
                    (unsigned long long)epoch, nproc, train_secs, train_secs - train_comm,
                    train_comm, val_secs, val_secs - val_comm, val_comm);
        /* the learning curve's test point is not training time */
        const double test_iwae = curve_n > 0 ? test_curve(&t, &ds, curve_n, curve_S, rows, x) : NAN;
        prog.epoch = epoch;
        prog.seconds += secs;
        vae_mpi_bcast(&prog.seconds, sizeof prog.seconds, 0); /* rank 0's clock */

        if (root) {
            fprintf(log, "%llu,%llu", (unsigned long long)epoch, (unsigned long long)t.step);
            print_num(log, sum.bound / nb);
            print_num(log, sum.svi0 / nb);
            print_num(log, sum.svik / nb);
            print_num(log, sum.bsvik / nb);
            print_num(log, sum.mean_pos / nb);
            print_num(log, val.bound);
            print_num(log, val.svi0);
            print_num(log, val.svik);
            print_num(log, val.bsvik);
            fprintf(log, ",%.2f,%.2f", secs, prog.seconds);
            print_num(log, test_iwae);
            if (log_diag) print_num(log, sum.ess / nb);
            fprintf(log, "\n");
            if (fflush(log) != 0 || ferror(log))
                die("cannot append epoch %llu to %s (disk full?); last.ckpt is at epoch %llu, "
                    "--resume continues from it", (unsigned long long)epoch, path,
                    (unsigned long long)epoch - 1);
            fprintf(stderr,
                    "epoch %llu: train %.3f  valid %.3f  SVI-0 %.3f  SVI-k %.3f  BSVI-k %.3f  "
                    "E_pi[i/k] %.3f  %.1fs  test IWAE %.3f",
                    (unsigned long long)epoch, sum.bound / nb, val.bound, sum.svi0 / nb,
                    sum.svik / nb, sum.bsvik / nb, sum.mean_pos / nb, secs, test_iwae);
            if (!isnan(sum.ess)) fprintf(stderr, "  ESS %.2f of %zu", sum.ess / nb, c->k + 1);
            fprintf(stderr, "\n");
        }

        int stop = 0;
        if (val.bound > prog.best_valid) {
            prog.best_valid = val.bound;
            prog.best_epoch = epoch;
            prog.bad_epochs = 0;
            snprintf(path, sizeof path, "%s/best.ckpt", dir);
            if (root && vae_checkpoint_save(path, &t, &prog, err, sizeof err)) die("%s", err);
        } else {
            prog.bad_epochs++;
            if (patience > 0 && prog.bad_epochs >= patience) stop = 1;
        }
        snprintf(path, sizeof path, "%s/last.ckpt", dir);
        if (root && vae_checkpoint_save(path, &t, &prog, err, sizeof err)) die("%s", err);
        snprintf(path, sizeof path, "%s/log.csv", dir);
        if (stop) {
            if (root)
                fprintf(stderr, "vae: early stop: no validation improvement for %llu epochs "
                        "(best %.3f at epoch %llu)\n", (unsigned long long)prog.bad_epochs,
                        prog.best_valid, (unsigned long long)prog.best_epoch);
            break;
        }
    }
    if (root)
        fprintf(stderr, "vae: done; best validation bound %.3f at epoch %llu; %s/best.ckpt\n",
                prog.best_valid, (unsigned long long)prog.best_epoch, dir);
    if (log) fclose(log);
    free(perm);
    free(x);
    free(rows);
    free_data(&ds);
    vae_trainer_free(&t);
    return 0;
}

/* ---- eval ------------------------------------------------------------------------ */

static int cmd_eval(int argc, char **argv) {
    const char *ckpt = NULL, *data_dir = NULL;
    size_t S = 5000, K = 500, elbo_S = 1000, subset = 0;
    uint64_t seed = 1;
    double eta = 0.0; /* 0: the checkpoint's */
    int have_rule = 0;
    bsvi_step_rule rule = BSVI_STEP_GRADIENT;
    for (int i = 2; i < argc; ++i) {
        const char *a = argv[i];
        if (is_help(a)) help("eval");
        else if (!strcmp(a, "--svi-step-size")) {
            eta = parse_double(a, need_value(argc, argv, &i));
            if (!(eta > 0.0) || !isfinite(eta)) die("--svi-step-size must be positive and finite");
        } else if (!strcmp(a, "--svi-rule")) {
            if (bsvi_step_rule_from_name(need_value(argc, argv, &i), &rule) != BSVI_OK)
                die("unknown --svi-rule %s (gradient, momentum, adam)", argv[i]);
            have_rule = 1;
        }
        else if (!strcmp(a, "--checkpoint")) ckpt = need_value(argc, argv, &i);
        else if (!strcmp(a, "--iwae-samples")) S = parse_size(a, need_value(argc, argv, &i));
        else if (!strcmp(a, "--bsvi-weights")) K = parse_size(a, need_value(argc, argv, &i));
        else if (!strcmp(a, "--elbo-samples")) elbo_S = parse_size(a, need_value(argc, argv, &i));
        else if (!strcmp(a, "--test-subset")) subset = parse_size(a, need_value(argc, argv, &i));
        else if (!strcmp(a, "--seed")) seed = parse_size(a, need_value(argc, argv, &i));
        else if (!strcmp(a, "--data-dir")) data_dir = need_value(argc, argv, &i);
        else die("unknown option %s for eval (vae eval --help lists them)", a);
    }
    if (!ckpt) die("eval needs --checkpoint");
    if (S == 0) die("--iwae-samples 0: IWAE-S needs at least 1 sample");
    if (K == 0) die("--bsvi-weights 0: BSVI-K needs at least 1 weight");
    if (elbo_S == 0) die("--elbo-samples 0: ELBO* needs at least 1 sample");
    vae_trainer t;
    vae_progress prog;
    char err[512];
    if (vae_checkpoint_load(ckpt, &t, &prog, err, sizeof err)) die("%s", err);
    /* BSVI-K's refinement: the checkpoint's, or the one asked for (e.g. a data set's
     * step re-measured on a trained model, for a method whose training has no SVI);
     * vae_trainer_evaluate refines with the configuration's */
    if (eta > 0.0) t.cfg.svi_eta = eta;
    if (have_rule) t.cfg.svi_rule = rule;
    data_sets ds;
    load_data(t.cfg.data, data_dir, 0, 1, &ds);
    if (t.cfg.x_dim != ds.test.dim || t.cfg.lik != ds.lik)
        die("%s: x_dim %zu and likelihood %u do not fit its data %s (%zu pixels, likelihood %u)",
            ckpt, t.cfg.x_dim, (unsigned)t.cfg.lik, t.cfg.data, ds.test.dim, (unsigned)ds.lik);
    const size_t n = (subset > 0 && subset < ds.test.n) ? subset : ds.test.n;
    const size_t B = t.cfg.batch;
    bsvi_evaluator *ev = NULL;
    if (bsvi_evaluator_create(t.cfg.z_dim, &ev) != BSVI_OK) die("cannot create the evaluator");
    bsvi_evaluator_set_seed(ev, seed);
    bsvi_evaluator_set_diagnostics(ev, 1); /* ESS and k-hat of IWAE-S's weights */
    double *x = malloc(B * t.cfg.x_dim * sizeof *x);
    double *res = malloc(7 * B * sizeof *res);
    size_t *rows = malloc(B * sizeof *rows);
    if (!x || !res || !rows) die("out of memory");
    double sum[5], diag[4], gather_secs = 0.0;
    const double t0 = now_seconds();
    evaluate_test(&t, ev, &ds, n, S, K, elbo_S, rows, x, res, sum, diag, 1, &gather_secs);
    const double secs = now_seconds() - t0;
    if (vae_mpi_rank() == 0) {
        fprintf(stderr, "\n");
        if (vae_mpi_size() > 1)
            fprintf(stderr, "mpi: eval on %d processes: %.3fs (compute and waiting %.3fs, "
                    "gather %.3fs)\n", vae_mpi_size(), secs, secs - gather_secs, gather_secs);
        printf("data,method,seed,epoch,train_seconds,n_test,iwae_samples,bsvi_weights,"
               "iwae_ll,bsvi_ll,elbo_star,kl_star,recon_star,eval_seconds,checkpoint,svi_rule,"
               "svi_eta,iwae_khat_mean,iwae_khat_median,iwae_khat_gt07,iwae_ess_mean\n");
        printf("%s,%s,%llu,%llu,%.1f,%zu,%zu,%zu,%.4f,%.4f,%.4f,%.4f,%.4f,%.1f,%s,%s,%g",
               t.cfg.data, vae_method_name(t.cfg.method), (unsigned long long)t.cfg.seed,
               (unsigned long long)prog.epoch, prog.seconds, n, S, K, sum[0], sum[1], sum[2], sum[3],
               sum[4], secs, ckpt, bsvi_step_rule_name(t.cfg.svi_rule), t.cfg.svi_eta);
        for (int i = 0; i < 4; ++i) print_num(stdout, diag[i]);
        printf("\n");
        printf("| %s | %s | %llu | %llu | %.2f | %.2f | %.2f | %.2f | %.2f |\n", t.cfg.data,
               vae_method_name(t.cfg.method), (unsigned long long)t.cfg.seed,
               (unsigned long long)prog.epoch, sum[0], sum[1], sum[2], sum[3], sum[4]);
        char km[32] = "none (S < 21)";
        if (!isnan(diag[0])) snprintf(km, sizeof km, "%.3f", diag[0]);
        printf("IWAE-%zu importance weights (PSIS): k-hat mean %s, median %.3f, > 0.7 for "
               "%.1f%% of the %zu test images; mean ESS %.1f of %zu\n",
               S, km, diag[1], 100.0 * diag[2], n, diag[3], S);
    }
    free(x);
    free(res);
    free(rows);
    bsvi_evaluator_destroy(ev);
    free_data(&ds);
    vae_trainer_free(&t);
    return 0;
}

/* ---- svi-sweep ---------------------------------------------------------------------- */

static size_t split_list(char *s, char **items, size_t max) {
    size_t n = 0;
    for (char *tok = strtok(s, ","); tok && n < max; tok = strtok(NULL, ",")) items[n++] = tok;
    return n;
}

static int cmd_svi_sweep(int argc, char **argv) {
    const char *ckpt = NULL, *data = "builtin", *data_dir = NULL;
    char rules_buf[256] = "gradient,momentum,adam";
    char etas_buf[1024] = "";
    size_t k = 10, n = 500;
    uint64_t seed = 1;
    bsvi_step_search_options so = bsvi_step_search_options_default();
    for (int i = 2; i < argc; ++i) {
        const char *a = argv[i];
        if (is_help(a)) help("svi-sweep");
        else if (!strcmp(a, "--checkpoint")) ckpt = need_value(argc, argv, &i);
        else if (!strcmp(a, "--data")) data = need_value(argc, argv, &i);
        else if (!strcmp(a, "--rules")) snprintf(rules_buf, sizeof rules_buf, "%s", need_value(argc, argv, &i));
        else if (!strcmp(a, "--etas")) snprintf(etas_buf, sizeof etas_buf, "%s", need_value(argc, argv, &i));
        else if (!strcmp(a, "--min-step")) so.min_step = parse_double(a, need_value(argc, argv, &i));
        else if (!strcmp(a, "--max-step")) so.max_step = parse_double(a, need_value(argc, argv, &i));
        else if (!strcmp(a, "--margin")) so.margin = parse_double(a, need_value(argc, argv, &i));
        else if (!strcmp(a, "--k")) k = parse_size(a, need_value(argc, argv, &i));
        else if (!strcmp(a, "--n")) n = parse_size(a, need_value(argc, argv, &i));
        else if (!strcmp(a, "--seed")) seed = parse_size(a, need_value(argc, argv, &i));
        else if (!strcmp(a, "--data-dir")) data_dir = need_value(argc, argv, &i);
        else die("unknown option %s for svi-sweep (vae svi-sweep --help lists them)", a);
    }
    if (vae_mpi_size() > 1)
        die("svi-sweep runs in one process (here %d): run it without mpirun", vae_mpi_size());
    if (k == 0) die("--k 0: the sweep needs at least 1 SVI step");
    if (n == 0) die("--n 0: the sweep needs at least 1 validation image");
    char *rules[8], *etas[BSVI_STEP_SEARCH_MAX_TRIALS + 1];
    const size_t nr = split_list(rules_buf, rules, 8);
    const size_t ne = split_list(etas_buf, etas, BSVI_STEP_SEARCH_MAX_TRIALS + 1);
    if (nr == 0) die("--rules needs at least one entry");
    if (ne > BSVI_STEP_SEARCH_MAX_TRIALS)
        die("--etas: at most %d step sizes", BSVI_STEP_SEARCH_MAX_TRIALS);
    bsvi_step_rule rule_of[8];
    for (size_t r = 0; r < nr; ++r)
        if (bsvi_step_rule_from_name(rules[r], &rule_of[r]) != BSVI_OK)
            die("unknown rule %s", rules[r]);
    double grid[BSVI_STEP_SEARCH_MAX_TRIALS];
    for (size_t e = 0; e < ne; ++e)
        if (!((grid[e] = parse_double("--etas", etas[e])) > 0.0))
            die("--etas: step size %s is not positive", etas[e]);
    if (ne) {
        so.grid = grid;
        so.grid_size = ne;
    }
    vae_trainer t;
    char err[512];
    if (ckpt) {
        vae_progress prog;
        if (vae_checkpoint_load(ckpt, &t, &prog, err, sizeof err)) die("%s", err);
        data = t.cfg.data;
    }
    data_sets ds;
    load_data(data, data_dir, 1, 0, &ds);
    if (ckpt && (t.cfg.x_dim != ds.train.dim || t.cfg.lik != ds.lik))
        die("%s: x_dim %zu and likelihood %u do not fit its data %s (%zu pixels, likelihood %u)",
            ckpt, t.cfg.x_dim, (unsigned)t.cfg.lik, data, ds.train.dim, (unsigned)ds.lik);
    if (!ckpt) {
        vae_config cfg;
        vae_config_default(&cfg);
        cfg.seed = seed;
        cfg.lik = ds.lik;
        snprintf(cfg.data, sizeof cfg.data, "%s", data);
        if (vae_trainer_init(&t, &cfg, NULL)) die("%s", t.err);
    }
    if (n > ds.valid_count) n = ds.valid_count;
    const size_t X = t.cfg.x_dim, B = t.cfg.batch;
    double *x = malloc(n * X * sizeof *x);
    size_t *rows = malloc(B * sizeof *rows);
    if (!x || !rows) die("out of memory");
    for (size_t first = 0; first < n; first += B) { /* the validation images, binarised once */
        const size_t nb = n - first < B ? n - first : B;
        for (size_t i = 0; i < nb; ++i) rows[i] = ds.valid_first + first + i;
        make_batch(valid_set(&ds), t.cfg.lik, rows, nb, VALID_BINARIZE_SEED, 0, x + first * X);
    }
    printf("# svi-sweep: %s, %s model, %zu validation images, k = %zu steps, ", data,
           ckpt ? ckpt : "freshly initialised", n, k);
    if (ne)
        printf("grid of %zu step sizes\n", ne);
    else
        printf("log search %g..%g\n", so.min_step, so.max_step);
    printf("# bsvi_svi_search_step_size: diverged = data points frozen; the best step has the "
           "largest svik_minus_svi0 with none diverged, at most (first diverging)/%g\n",
           so.margin);
    printf("rule,eta,svi0,svik,svik_minus_svi0,bsvik_minus_svik,diverged,svik_minus_svi0_se\n");
    bsvi_step_trial tr[BSVI_STEP_SEARCH_MAX_TRIALS];
    for (size_t r = 0; r < nr; ++r) {
        bsvi_step_search_result res;
        if (vae_trainer_step_search(&t, x, n, rule_of[r], k, &so, tr, BSVI_STEP_SEARCH_MAX_TRIALS,
                                    &res))
            die("%s", t.err);
        for (size_t i = 0; i < res.num_trials; ++i)
            printf("%s,%g,%.4f,%.4f,%.4f,%.4f,%zu,%.4f\n", rules[r], tr[i].step_size, tr[i].svi0,
                   tr[i].svik, tr[i].svik_gain, tr[i].bsvik_gain, tr[i].diverged,
                   tr[i].svik_gain_se);
        if (res.best == BSVI_STEP_SEARCH_NONE)
            printf("# %s: no safe step size improves SVI-k over SVI-0 (first diverging %g)\n",
                   rules[r], res.first_diverging);
        else
            printf("# %s: best safe step %g (gain %.4f +- %.4f nats), first diverging %g\n",
                   rules[r], res.step_size, tr[res.best].svik_gain, tr[res.best].svik_gain_se,
                   res.first_diverging);
        fflush(stdout);
    }
    free(x);
    free(rows);
    free_data(&ds);
    vae_trainer_free(&t);
    return 0;
}

/* ---- sample ----------------------------------------------------------------------- */

static int cmd_sample(int argc, char **argv) {
    const char *ckpt = NULL, *out = NULL;
    size_t rows = 8, per_row = 6;
    uint64_t seed = 1;
    for (int i = 2; i < argc; ++i) {
        const char *a = argv[i];
        if (is_help(a)) help("sample");
        else if (!strcmp(a, "--checkpoint")) ckpt = need_value(argc, argv, &i);
        else if (!strcmp(a, "--out")) out = need_value(argc, argv, &i);
        else if (!strcmp(a, "--rows")) rows = parse_size(a, need_value(argc, argv, &i));
        else if (!strcmp(a, "--per-row")) per_row = parse_size(a, need_value(argc, argv, &i));
        else if (!strcmp(a, "--seed")) seed = parse_size(a, need_value(argc, argv, &i));
        else die("unknown option %s for sample (vae sample --help lists them)", a);
    }
    if (!ckpt || !out) die("sample needs --checkpoint CKPT and --out FILE");
    if (rows == 0 || rows > 64 || per_row > 64) die("sample: --rows 1..64, --per-row 0..64");
    vae_trainer t;
    vae_progress prog;
    char err[512];
    if (vae_checkpoint_load(ckpt, &t, &prog, err, sizeof err)) die("%s", err);
    if (vae_sample_grid(&t, rows, per_row, seed, out, err, sizeof err)) die("%s", err);
    fprintf(stderr, "vae sample: %s (epoch %llu) -> %s\n", ckpt, (unsigned long long)prog.epoch,
            out);
    vae_trainer_free(&t);
    return 0;
}

int main(int argc, char **argv) {
    vae_blas_check_coretype("vae", argv);
    vae_mpi_init(&argc, &argv); /* over MPI (vae_mpi): MPI_Init; else nothing */
    if (argc < 2) usage();
    if (!strcmp(argv[1], "train")) return cmd_train(argc, argv);
    if (!strcmp(argv[1], "eval")) return cmd_eval(argc, argv);
    if (!strcmp(argv[1], "svi-sweep")) return cmd_svi_sweep(argc, argv);
    if (!strcmp(argv[1], "sample")) return cmd_sample(argc, argv);
    if (is_help(argv[1])) help(NULL);
    die("unknown command %s (train, eval, svi-sweep, sample)", argv[1]);
    return 1;
}
