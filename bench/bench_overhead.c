/* Library overhead: SVI-k refinement and every estimator with a trivial model
 * (log p = -|z|^2/2), so that the time measured is libbsvi's own.
 *
 * Usage: bench_overhead [--quick] [--csv FILE] [--only B,d,k] [--reps N]
 * Prints a markdown table of nanoseconds per data point per latent dimension
 * per buffer slot (k+1; the ELBO has one slot), over a grid of batch size B, dimension d and steps k,
 * then the fitted log-log slopes of total time against B, d and k+1 (1 means
 * linear). The SVI-k run column excludes the time spent in the model callback (timed inside
 * it and subtracted); the estimator columns include it. --only runs one shape, best of
 * --reps runs (default 3), and also times the evaluator's IWAE-(k+1) and BSVI-(k+1) at it,
 * callback excluded. */
#define _POSIX_C_SOURCE 199309L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bsvi/bsvi.h"

static double now(void);
/* Seconds spent inside the callback since the last reset: subtracted from the timings, so
 * that what is reported is libbsvi's own cost (issue 9 item 4: "callback excluded"). */
static double cb_seconds;

static int trivial(size_t n, size_t d, const double *z, const size_t *idx, double *lp, double *g,
                   void *u) {
    (void)idx;
    (void)u;
    const double t0 = now();
    for (size_t r = 0; r < n; ++r) {
        const double *zr = z + r * d;
        double a = 0.0;
        for (size_t j = 0; j < d; ++j) a -= 0.5 * zr[j] * zr[j];
        lp[r] = a;
        if (g)
            for (size_t j = 0; j < d; ++j) g[r * d + j] = -zr[j];
    }
    cb_seconds += now() - t0;
    return 0;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

#define CHECK(call)                                                                    \
    do {                                                                               \
        bsvi_status st_ = (call);                                                      \
        if (st_ != BSVI_OK) {                                                          \
            fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #call,       \
                    bsvi_status_string(st_));                                          \
            exit(1);                                                                   \
        }                                                                              \
    } while (0)

typedef struct row {
    size_t B, d, k;
    double svi_ns, est_ns[6], eval_ns[2];
} row;

static const char *est_names[6] = {"ELBO", "IWAE-(k+1)", "SVI-k", "BSVI", "BSVI-DS", "BSVI-SIR"};

/* Median of reps timings of fn, each run repeated until min_time seconds. */
typedef struct ctx {
    bsvi_model *m;
    bsvi_proposal *q;
    bsvi_svi *svi, *svi_ds;
    bsvi_trajectory *t, *t_ds;
    bsvi_estimator *e[6];
    bsvi_evaluator *ev;
    size_t k;
    double *out;
} ctx;

/* Best of reps: seconds per call, the callback's own time excluded. */
static double time_it(int which, ctx *c, double min_time, int reps, int exclude_callback) {
    double best = INFINITY;
    for (int rep = 0; rep < reps; ++rep) {
        int n = 0;
        cb_seconds = 0.0;
        double t0 = now(), t1;
        do {
            switch (which) {
            case -1: CHECK(bsvi_svi_run(c->svi, c->m, c->q, c->t)); break;
            case -2: CHECK(bsvi_evaluator_iwae(c->ev, c->m, c->q, c->k + 1, c->out)); break;
            case -3: CHECK(bsvi_evaluator_bsvi(c->ev, c->m, c->q, c->k + 1, c->out, NULL)); break;
            case 0: CHECK(bsvi_estimator_elbo(c->e[0], c->m, c->q, BSVI_GRAD_PATHWISE)); break;
            case 1:
                CHECK(bsvi_estimator_iwae(c->e[1], c->m, c->q, c->k + 1, BSVI_GRAD_PATHWISE));
                break;
            case 2: CHECK(bsvi_estimator_svi(c->e[2], c->t)); break;
            case 3: CHECK(bsvi_estimator_bsvi(c->e[3], c->t, NULL)); break;
            case 4: CHECK(bsvi_estimator_bsvi(c->e[4], c->t_ds, NULL)); break; /* BSVI-DS */
            default: CHECK(bsvi_estimator_bsvi_sir(c->e[5], c->t, NULL, 1)); break;
            }
            ++n;
            t1 = now();
        } while (t1 - t0 < min_time);
        double per = (t1 - t0 - (exclude_callback ? cb_seconds : 0.0)) / n;
        if (per < best) best = per;
    }
    return best;
}

static double slope(const double *x, const double *y, int n) {
    double mx = 0, my = 0, sxx = 0, sxy = 0;
    for (int i = 0; i < n; ++i) mx += log(x[i]) / n, my += log(y[i]) / n;
    for (int i = 0; i < n; ++i) {
        sxx += (log(x[i]) - mx) * (log(x[i]) - mx);
        sxy += (log(x[i]) - mx) * (log(y[i]) - my);
    }
    return sxy / sxx;
}

int main(int argc, char **argv) {
    int quick = 0, only = 0, reps = 3;
    size_t oB = 0, od = 0, ok = 0;
    const char *csv = NULL;
    for (int i = 1; i < argc; ++i) {
        if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--csv") && i + 1 < argc) csv = argv[++i];
        else if (!strcmp(argv[i], "--only") && i + 1 < argc &&
                 sscanf(argv[i + 1], "%zu,%zu,%zu", &oB, &od, &ok) == 3 && oB && od) {
            only = 1;
            ++i;
        } else if (!strcmp(argv[i], "--reps") && i + 1 < argc && atoi(argv[i + 1]) > 0)
            reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--quick] [--csv FILE] [--only B,d,k] [--reps N]\n",
                    argv[0]);
            return 2;
        }
    }
    const size_t Bs[] = {1, 100, 1000}, ds[] = {2, 50, 500}, ks[] = {1, 9, 99, 499};
    const double min_time = quick ? 0.02 : 0.08;
    row rows[64];
    int nr = 0;
    FILE *f = csv ? fopen(csv, "w") : NULL;
    if (csv && !f) {
        perror(csv);
        return 1;
    }
    if (f) {
        fprintf(f, "B,d,k,svi_ns");
        for (int e = 0; e < 6; ++e) fprintf(f, ",%s_ns", est_names[e]);
        fprintf(f, "\n");
    }
    printf("| B | d | k | SVI-k run | ELBO | IWAE-(k+1) | SVI-k est. | BSVI | BSVI-DS | BSVI-SIR |\n");
    printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (size_t ib = 0; ib < 3; ++ib)
        for (size_t id = 0; id < 3; ++id)
            for (size_t ik = 0; ik < 4; ++ik) {
                const size_t B = only ? oB : Bs[ib], d = only ? od : ds[id],
                             k = only ? ok : ks[ik];
                if (only && (ib || id || ik)) continue;
                /* keep every configuration under ~0.3 G point-dim-slots */
                if (!only && (double)B * (double)d * (double)(k + 1) > (quick ? 2e6 : 3e7))
                    continue;
                ctx c;
                memset(&c, 0, sizeof c);
                CHECK(bsvi_model_create(d, &c.m));
                CHECK(bsvi_model_set_likelihood(c.m, trivial, NULL));
                CHECK(bsvi_proposal_create(B, d, &c.q));
                CHECK(bsvi_svi_create(d, &c.svi));
                CHECK(bsvi_svi_set_steps(c.svi, k));
                CHECK(bsvi_svi_set_step_size(c.svi, 1e-3));
                CHECK(bsvi_svi_create(d, &c.svi_ds));
                CHECK(bsvi_svi_set_steps(c.svi_ds, k));
                CHECK(bsvi_svi_set_double_sampling(c.svi_ds, 1));
                CHECK(bsvi_trajectory_create(&c.t));
                CHECK(bsvi_trajectory_create(&c.t_ds));
                CHECK(bsvi_svi_run(c.svi, c.m, c.q, c.t));
                CHECK(bsvi_svi_run(c.svi_ds, c.m, c.q, c.t_ds));
                c.k = k;
                for (int e = 0; e < 6; ++e) CHECK(bsvi_estimator_create(d, &c.e[e]));
                CHECK(bsvi_evaluator_create(d, &c.ev));
                bsvi_svi_options so; /* BSVI-(k+1) refines as c.svi does */
                CHECK(bsvi_svi_get_options(c.svi, &so));
                CHECK(bsvi_evaluator_set_svi_options(c.ev, &so));
                c.out = (double *)malloc(B * sizeof *c.out);
                if (!c.out) return 1;
                row *r = &rows[nr++];
                r->B = B, r->d = d, r->k = k;
                const double norm = 1e9 / ((double)B * (double)d * (double)(k + 1));
                r->svi_ns = time_it(-1, &c, min_time, reps, 1) * norm;
                for (int e = 0; e < 6; ++e)
                    r->est_ns[e] = time_it(e, &c, min_time, reps, 0) *
                                   (e == 0 ? norm * (double)(k + 1) : norm);
                if (only) {
                    /* the evaluator's inner loops at this shape: IWAE-(k+1) and BSVI-(k+1)
                     * (ns per data point x dimension x sample or slot, callback excluded) */
                    r->eval_ns[0] = time_it(-2, &c, min_time, reps, 1) * norm;
                    r->eval_ns[1] = time_it(-3, &c, min_time, reps, 1) * norm;
                }
                printf("| %zu | %zu | %zu | %.2f |", B, d, k, r->svi_ns);
                for (int e = 0; e < 6; ++e) printf(" %.3f |", r->est_ns[e]);
                printf("\n");
                fflush(stdout);
                if (f) {
                    fprintf(f, "%zu,%zu,%zu,%.4f", B, d, k, r->svi_ns);
                    for (int e = 0; e < 6; ++e) fprintf(f, ",%.5f", r->est_ns[e]);
                    fprintf(f, "\n");
                }
                if (only)
                    printf("\nevaluator, callback excluded (ns per data point x dim x sample "
                           "or slot): IWAE-%zu %.2f, BSVI-%zu %.2f\n",
                           k + 1, r->eval_ns[0], k + 1, r->eval_ns[1]);
                for (int e = 0; e < 6; ++e) bsvi_estimator_destroy(c.e[e]);
                bsvi_evaluator_destroy(c.ev);
                free(c.out);
                bsvi_trajectory_destroy(c.t);
                bsvi_trajectory_destroy(c.t_ds);
                bsvi_svi_destroy(c.svi);
                bsvi_svi_destroy(c.svi_ds);
                bsvi_proposal_destroy(c.q);
                bsvi_model_destroy(c.m);
            }
    if (f) fclose(f);
    /* Linearity: slope of log(total SVI time) against log(B), log(d), log(k+1),
     * each over the rows where the other two are held at B=100, d=50, k=9. */
    double x[8], y[8];
    int n;
    n = 0;
    for (int i = 0; i < nr; ++i)
        if (rows[i].d == 50 && rows[i].k == 9 && rows[i].B >= 100)
            x[n] = (double)rows[i].B, y[n++] = rows[i].svi_ns * (double)(rows[i].B * 50 * 10);
    double sB = n >= 2 ? slope(x, y, n) : NAN;
    n = 0;
    for (int i = 0; i < nr; ++i)
        if (rows[i].B == 100 && rows[i].k == 9)
            x[n] = (double)rows[i].d, y[n++] = rows[i].svi_ns * (double)(100 * rows[i].d * 10);
    double sd = n >= 2 ? slope(x, y, n) : NAN;
    n = 0;
    for (int i = 0; i < nr; ++i)
        if (rows[i].B == 100 && rows[i].d == 50)
            x[n] = (double)(rows[i].k + 1),
            y[n++] = rows[i].svi_ns * (double)(100 * 50 * (rows[i].k + 1));
    double sk = n >= 2 ? slope(x, y, n) : NAN;
    printf("\nlog-log slope of SVI-k run time: in B (100..1000) %.3f, in d %.3f, in k+1 %.3f "
           "(1 = linear)\n",
           sB, sd, sk);
    return 0;
}
