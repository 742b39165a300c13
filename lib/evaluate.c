/* Log-likelihood estimates and ELBO*, KL*, Reconstruction*, streamed in bounded memory. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "rows.h"

struct bsvi_evaluator {
    size_t dim, chunk;
    bsvi_progress_fn progress;
    void *progress_data;
    bsvi__rng rng;
    bsvi__svi_cfg cfg;          /* BSVI-K's refinement (k unused: each call gives K) */
    bsvi_point_policy policy;
    bsvi_stats stats;
    size_t *taken, cap_taken;   /* steps taken per data point by the last BSVI-K */
    size_t taken_n, nfrozen, nzero;
    bsvi__svi_ws ws;
    double *eps, *z, *lik, *prior; /* chunk*d (eps|z), chunk (lik|prior; lq follows) */
    double *lq;                        /* chunk: log q */
    size_t *idx;
    double *acc;                       /* B*4 accumulators */
    double *fmu, *fs;                  /* B*d final proposal */
    size_t cap_rowsd, cap_rows, cap_idx, cap_acc, cap_bd;
    /* IWAE-S weight diagnostics (bsvi_evaluator_set_diagnostics) */
    int diag;                          /* on for the next bsvi_evaluator_iwae */
    bsvi_diagnostics *dfit;            /* the tail fit's scratch, capacity >= the S in use */
    double *heap;                      /* B*H: per data point the H = M+1 largest log w */
    double *dres, *dnew;               /* 2B each: ESS then k-hat, of the last successful
                                        * IWAE-S with diagnostics / of the one running */
    size_t cap_heap, cap_dres, cap_dnew;
    size_t diag_n;                     /* data points in dres (0: none) */
    bsvi__use use; /* running evaluations holding the handle */
    int doomed;    /* destroyed while held: freed at the release */
    char err[BSVI__ERRLEN];
};

#define BSVI__MAX_EVAL_SAMPLES ((size_t)1 << 32)

bsvi_status bsvi_evaluator_create(size_t dim, bsvi_evaluator **out) {
    if (!out) return BSVI_ERR_NULL_ARGUMENT;
    *out = NULL;
    if (dim == 0) return BSVI_ERR_ZERO_SIZE;
    if (dim > BSVI_MAX_DIM) return BSVI_ERR_OUT_OF_RANGE;
    bsvi_evaluator *ev = (bsvi_evaluator *)calloc(1, sizeof *ev);
    if (!ev) return BSVI_ERR_NO_MEMORY;
    ev->dim = dim;
    ev->chunk = 10000;
    const bsvi_svi_options o = bsvi_svi_options_default();
    bsvi__svi_cfg_set(&ev->cfg, &o);
    ev->policy = BSVI_POINTS_REPORT;
    *out = ev;
    return BSVI_OK;
}

static void evaluator_free(bsvi_evaluator *ev);

void bsvi_evaluator_destroy(bsvi_evaluator *ev) {
    if (!ev) return;
    if (bsvi__busy(&ev->use)) { /* held by a running evaluation: freed when it returns */
        ev->doomed = 1;
        return;
    }
    evaluator_free(ev);
}

static bsvi_status refuse_in_use(bsvi_evaluator *ev, const char *fn) {
    return bsvi__fail(ev->err, BSVI_ERR_REENTRANT,
                      "%s: the evaluator is in use by a running evaluation (re-entered from a "
                      "callback?); it cannot be used until that call returns",
                      fn);
}

/* The evaluations run host callbacks, which may re-enter the library: the evaluator and
 * every handle it reads or writes are held until the call returns. */
static void hold_all(bsvi_evaluator *ev, const bsvi_model *model, const bsvi_proposal *q,
                     const bsvi_proposal *final_q) {
    bsvi__hold(&ev->use);
    bsvi__hold(&model->use);
    bsvi__hold(&q->use);
    if (final_q) bsvi__hold(&final_q->use);
}

static bsvi_status release_all(bsvi_evaluator *ev, const bsvi_model *model,
                               const bsvi_proposal *q, const bsvi_proposal *final_q,
                               bsvi_status st) {
    if (final_q) bsvi__proposal_release(final_q);
    bsvi__proposal_release(q);
    bsvi__model_release(model);
    if (bsvi__drop(&ev->use) && ev->doomed) evaluator_free(ev);
    return st;
}

static void evaluator_free(bsvi_evaluator *ev) {
    bsvi__svi_ws_free(&ev->ws);
    free(ev->eps);
    free(ev->lik);
    free(ev->idx);
    free(ev->acc);
    free(ev->fmu);
    free(ev->taken);
    free(ev->heap);
    free(ev->dres);
    free(ev->dnew);
    bsvi_diagnostics_destroy(ev->dfit);
    free(ev);
}

bsvi_status bsvi_evaluator_set_seed(bsvi_evaluator *ev, uint64_t seed) {
    if (!ev) return BSVI_ERR_NULL_ARGUMENT;
    if (bsvi__busy(&ev->use)) return refuse_in_use(ev, "bsvi_evaluator_set_seed");
    ev->rng.seed = seed;
    ev->rng.counter = 0;
    return BSVI_OK;
}

bsvi_status bsvi_evaluator_set_stream(bsvi_evaluator *ev, uint64_t counter, uint64_t id_offset) {
    if (!ev) return BSVI_ERR_NULL_ARGUMENT;
    if (bsvi__busy(&ev->use)) return refuse_in_use(ev, "bsvi_evaluator_set_stream");
    ev->rng.counter = counter;
    ev->rng.id_offset = id_offset;
    return BSVI_OK;
}

bsvi_status bsvi_evaluator_set_progress(bsvi_evaluator *ev, bsvi_progress_fn fn, void *user_data) {
    if (!ev) return BSVI_ERR_NULL_ARGUMENT;
    if (bsvi__busy(&ev->use)) return refuse_in_use(ev, "bsvi_evaluator_set_progress");
    ev->progress = fn;
    ev->progress_data = user_data;
    return BSVI_OK;
}

bsvi_status bsvi_evaluator_set_chunk_rows(bsvi_evaluator *ev, size_t rows) {
    if (!ev) return BSVI_ERR_NULL_ARGUMENT;
    if (bsvi__busy(&ev->use)) return refuse_in_use(ev, "bsvi_evaluator_set_chunk_rows");
    if (rows == 0)
        return bsvi__fail(ev->err, BSVI_ERR_ZERO_SIZE, "bsvi_evaluator_set_chunk_rows: rows is 0");
    if (rows > BSVI_MAX_BATCH)
        return bsvi__fail(ev->err, BSVI_ERR_OUT_OF_RANGE,
                          "bsvi_evaluator_set_chunk_rows: rows = %zu exceeds %zu", rows,
                          (size_t)BSVI_MAX_BATCH);
    ev->chunk = rows;
    return BSVI_OK;
}

bsvi_status bsvi_evaluator_set_svi_options(bsvi_evaluator *ev, const bsvi_svi_options *options) {
    static const char fn[] = "bsvi_evaluator_set_svi_options";
    if (!ev) return BSVI_ERR_NULL_ARGUMENT;
    if (bsvi__busy(&ev->use)) return refuse_in_use(ev, fn);
    if (!options) return bsvi__fail(ev->err, BSVI_ERR_NULL_ARGUMENT, "%s: options is NULL", fn);
    bsvi_status st = bsvi__svi_options_check(options, 0, ev->err, fn);
    if (st != BSVI_OK) return st;
    bsvi__svi_cfg_set(&ev->cfg, options);
    return BSVI_OK;
}

bsvi_status bsvi_evaluator_get_svi_options(const bsvi_evaluator *ev, bsvi_svi_options *out) {
    if (!ev) return BSVI_ERR_NULL_ARGUMENT;
    if (!out)
        return bsvi__fail((char *)ev->err, BSVI_ERR_NULL_ARGUMENT,
                          "bsvi_evaluator_get_svi_options: out is NULL");
    bsvi__svi_cfg_get(&ev->cfg, out);
    return BSVI_OK;
}

bsvi_status bsvi_evaluator_set_point_policy(bsvi_evaluator *ev, bsvi_point_policy policy) {
    if (!ev) return BSVI_ERR_NULL_ARGUMENT;
    if (bsvi__busy(&ev->use)) return refuse_in_use(ev, "bsvi_evaluator_set_point_policy");
    if (policy != BSVI_POINTS_REPORT && policy != BSVI_POINTS_FAIL)
        return bsvi__fail(ev->err, BSVI_ERR_BAD_VALUE,
                          "bsvi_evaluator_set_point_policy: unknown policy %d", (int)policy);
    ev->policy = policy;
    return BSVI_OK;
}

bsvi_status bsvi_evaluator_set_diagnostics(bsvi_evaluator *ev, int enabled) {
    static const char fn[] = "bsvi_evaluator_set_diagnostics";
    if (!ev) return BSVI_ERR_NULL_ARGUMENT;
    if (bsvi__busy(&ev->use)) return refuse_in_use(ev, fn);
    if (enabled != 0 && enabled != 1)
        return bsvi__fail(ev->err, BSVI_ERR_BAD_VALUE, "%s: enabled must be 0 or 1, got %d", fn,
                          enabled);
    ev->diag = enabled;
    return BSVI_OK;
}

bsvi_status bsvi_evaluator_get_diagnostics(const bsvi_evaluator *ev, size_t batch, double *ess,
                                           double *khat) {
    static const char fn[] = "bsvi_evaluator_get_diagnostics";
    if (!ev) return BSVI_ERR_NULL_ARGUMENT;
    if (ev->diag_n == 0)
        return bsvi__fail((char *)ev->err, BSVI_ERR_BAD_STATE,
                          "%s: no IWAE-S estimate with diagnostics (the last successful "
                          "bsvi_evaluator_iwae had them off, or there was none; see "
                          "bsvi_evaluator_set_diagnostics)",
                          fn);
    if (batch != ev->diag_n)
        return bsvi__fail((char *)ev->err, BSVI_ERR_SIZE_MISMATCH,
                          "%s: batch = %zu but the last IWAE-S estimate had %zu data points", fn,
                          batch, ev->diag_n);
    if (ess) memcpy(ess, ev->dres, batch * sizeof *ess);
    if (khat) memcpy(khat, ev->dres + batch, batch * sizeof *khat);
    return BSVI_OK;
}

bsvi_status bsvi_evaluator_get_steps_taken(const bsvi_evaluator *ev, size_t *out, size_t n) {
    static const char fn[] = "bsvi_evaluator_get_steps_taken";
    if (!ev) return BSVI_ERR_NULL_ARGUMENT;
    if (!out) return bsvi__fail((char *)ev->err, BSVI_ERR_NULL_ARGUMENT, "%s: out is NULL", fn);
    if (ev->taken_n == 0)
        return bsvi__fail((char *)ev->err, BSVI_ERR_BAD_STATE, "%s: no BSVI-K estimate yet", fn);
    if (n != ev->taken_n)
        return bsvi__fail((char *)ev->err, BSVI_ERR_SIZE_MISMATCH,
                          "%s: n = %zu but the last BSVI-K estimate had %zu data points", fn, n,
                          ev->taken_n);
    memcpy(out, ev->taken, n * sizeof *out);
    return BSVI_OK;
}

size_t bsvi_evaluator_num_frozen(const bsvi_evaluator *ev) { return ev ? ev->nfrozen : 0; }

size_t bsvi_evaluator_num_zero_points(const bsvi_evaluator *ev) { return ev ? ev->nzero : 0; }

bsvi_status bsvi_evaluator_get_stream(const bsvi_evaluator *ev, uint64_t *seed,
                                      uint64_t *counter, uint64_t *id_offset) {
    if (!ev) return BSVI_ERR_NULL_ARGUMENT;
    if (seed) *seed = ev->rng.seed;
    if (counter) *counter = ev->rng.counter;
    if (id_offset) *id_offset = ev->rng.id_offset;
    return BSVI_OK;
}

bsvi_status bsvi_evaluator_get_stats(const bsvi_evaluator *ev, bsvi_stats *out) {
    if (!ev) return BSVI_ERR_NULL_ARGUMENT;
    if (!out)
        return bsvi__fail((char *)ev->err, BSVI_ERR_NULL_ARGUMENT,
                          "bsvi_evaluator_get_stats: out is NULL");
    *out = ev->stats;
    return BSVI_OK;
}

bsvi_status bsvi_evaluator_reset_stats(bsvi_evaluator *ev) {
    if (!ev) return BSVI_ERR_NULL_ARGUMENT;
    if (bsvi__busy(&ev->use)) return refuse_in_use(ev, "bsvi_evaluator_reset_stats");
    memset(&ev->stats, 0, sizeof ev->stats);
    return BSVI_OK;
}

/* Counts one successful evaluation of B data points. */
static void count_call(bsvi_evaluator *ev, bsvi_stats *calls, size_t B, size_t steps,
                       size_t nzero) {
    calls->calls = 1;
    calls->data_points = B;
    calls->svi_steps = steps;
    calls->zero_points = nzero;
    bsvi__stats_add(&ev->stats, calls);
}

/* Points of a batch whose running log-sum-exp (maxima mx) is -INFINITY: counted, or the
 * call fails under the FAIL policy. Returns the count through *nzero. */
static bsvi_status zero_points(bsvi_evaluator *ev, const double *mx, size_t stride, size_t B,
                               size_t S, const char *fn, size_t *nzero) {
    size_t n = 0;
    for (size_t b = 0; b < B; ++b)
        if (mx[b * stride] == -INFINITY) {
            if (ev->policy == BSVI_POINTS_FAIL)
                return bsvi__fail(ev->err, BSVI_ERR_NUMERIC,
                                  "%s: every one of the %zu weights of data point %zu is zero "
                                  "(the point policy is FAIL)",
                                  fn, S, b);
            ++n;
        }
    *nzero = n;
    return BSVI_OK;
}

const char *bsvi_evaluator_last_error(const bsvi_evaluator *ev) {
    return ev ? ev->err : "NULL evaluator handle";
}

static bsvi_status common_checks(bsvi_evaluator *ev, const bsvi_model *model,
                                 const bsvi_proposal *q, const char *fn) {
    if (!model || !q)
        return bsvi__fail(ev->err, BSVI_ERR_NULL_ARGUMENT, "%s: model and proposal must not be NULL",
                          fn);
    bsvi_status st = bsvi__model_check(model, ev->dim, ev->err);
    if (st != BSVI_OK) return st;
    if (q->dim != ev->dim)
        return bsvi__fail(ev->err, BSVI_ERR_SIZE_MISMATCH,
                          "%s: the proposal's dimension %zu differs from the evaluator's %zu", fn,
                          q->dim, ev->dim);
    return BSVI_OK;
}

static bsvi_status reserve(bsvi_evaluator *ev, size_t B, const char *fn) {
    const size_t d = ev->dim, rows = ev->chunk;
    size_t rowsd, bd;
    if (bsvi__mul_overflow(rows, d, &rowsd) || bsvi__mul_overflow(B, d, &bd) ||
        rowsd > SIZE_MAX / 64 || bd > SIZE_MAX / 64)
        return bsvi__fail(ev->err, BSVI_ERR_OUT_OF_RANGE, "%s: sizes overflow", fn);
    int fail = 0;
    if (rowsd > ev->cap_rowsd || !ev->eps) {
        size_t c0 = 0;
        free(ev->eps);
        ev->eps = NULL;
        ev->cap_rowsd = 0;
        fail |= bsvi__grow(&ev->eps, &c0, 2 * rowsd);
        if (!fail) ev->cap_rowsd = rowsd;
    }
    if (!fail && (rows > ev->cap_rows || !ev->lik)) {
        size_t c0 = 0;
        free(ev->lik);
        ev->lik = NULL;
        ev->cap_rows = 0;
        fail |= bsvi__grow(&ev->lik, &c0, 3 * rows);
        if (!fail) ev->cap_rows = rows;
    }
    if (!fail) fail |= bsvi__grow_size(&ev->idx, &ev->cap_idx, rows);
    if (!fail) fail |= bsvi__grow(&ev->acc, &ev->cap_acc, 4 * B);
    if (!fail && (bd > ev->cap_bd || !ev->fmu)) {
        size_t c0 = 0;
        free(ev->fmu);
        ev->fmu = NULL;
        ev->cap_bd = 0;
        fail |= bsvi__grow(&ev->fmu, &c0, 2 * bd);
        if (!fail) ev->cap_bd = bd;
    }
    if (fail) return bsvi__fail(ev->err, BSVI_ERR_NO_MEMORY, "%s: out of memory", fn);
    ev->z = ev->eps + rowsd;
    ev->prior = ev->lik + rows;
    ev->lq = ev->lik + 2 * rows;
    ev->fs = ev->fmu + bd;
    return BSVI_OK;
}

/* IWAE-S diagnostics' memory for B data points of S samples: the heaps (B*H, H the heap
 * size of S), the new results (2B) and the fit's scratch (capacity S). The last results
 * (dres) are not touched. */
static bsvi_status reserve_diag(bsvi_evaluator *ev, size_t B, size_t S, const char *fn) {
    const size_t H = bsvi__diag_heap_size(S);
    size_t bh;
    if (bsvi__mul_overflow(B, H, &bh) || bh > SIZE_MAX / 64)
        return bsvi__fail(ev->err, BSVI_ERR_OUT_OF_RANGE, "%s: sizes overflow", fn);
    int fail = bsvi__grow(&ev->dnew, &ev->cap_dnew, 2 * B);
    if (!fail && bh > 0) fail = bsvi__grow(&ev->heap, &ev->cap_heap, bh);
    if (!fail && H > 0 && bsvi_diagnostics_capacity(ev->dfit) < S) {
        bsvi_diagnostics *d = NULL;
        fail = bsvi_diagnostics_create(S, &d) != BSVI_OK;
        if (!fail) {
            bsvi_diagnostics_destroy(ev->dfit);
            ev->dfit = d;
        }
    }
    if (fail)
        return bsvi__fail(ev->err, BSVI_ERR_NO_MEMORY,
                          "%s: out of memory (weight diagnostics: %zu heaps of %zu)", fn, B, H);
    return BSVI_OK;
}

/* One weight x (sample s, 0-based) of a data point with diagnostics: the running log-sum-exp
 * (mx, s1) exactly as bsvi__lse_push computes it, the same max-shifted sum of w^2 (s2), and
 * the heap a of the H largest log weights (H = 0: none kept). */
static inline void diag_push(double *mx, double *s1, double *s2, double *a, size_t H, size_t s,
                             double x) {
    if (x != -INFINITY) {
        if (x > *mx) {
            if (*mx == -INFINITY) {
                *s1 = 1.0;
                *s2 = 1.0;
            } else {
                const double r = exp(*mx - x);
                *s1 = *s1 * r + 1.0;
                *s2 = *s2 * (r * r) + 1.0;
            }
            *mx = x;
        } else {
            const double e = exp(x - *mx);
            *s1 += e;
            *s2 += e * e;
        }
    }
    if (H > 0 && (s < H || x > a[0])) (void)bsvi__diag_heap_offer(a, s < H ? s : H, H, x);
}

/* The ESS and k-hat of B data points from the streamed sums and heaps, into dnew, then
 * made the last results (dres). mx, s1: acc[2b], acc[2b+1]; s2: acc[2B+b]. */
static void finish_diag(bsvi_evaluator *ev, size_t B, size_t S) {
    const size_t H = bsvi__diag_heap_size(S);
    double *ess = ev->dnew, *khat = ev->dnew + B;
    for (size_t b = 0; b < B; ++b) {
        const double mx = ev->acc[2 * b], s1 = ev->acc[2 * b + 1], s2 = ev->acc[2 * B + b];
        if (mx == -INFINITY) { /* every weight zero */
            ess[b] = 0.0;
            khat[b] = NAN;
            continue;
        }
        ess[b] = s1 * s1 / s2;
        if (H == 0) {
            khat[b] = INFINITY;
            continue;
        }
        /* shifted by the largest log weight, as bsvi_diagnostics_compute does before it
         * selects (a monotone shift: the same values, still a heap) */
        double *a = ev->heap + b * H;
        for (size_t i = 0; i < H; ++i) a[i] -= mx;
        khat[b] = bsvi__diag_tail_khat(ev->dfit, a, H - 1);
    }
    double *t = ev->dres;
    const size_t c = ev->cap_dres;
    ev->dres = ev->dnew;
    ev->cap_dres = ev->cap_dnew;
    ev->dnew = t;
    ev->cap_dnew = c;
    ev->diag_n = B;
}

/* Streams S samples per data point of q through the model, in chunks, in (b, s) order.
 * mode 0: IWAE (acc[2b..] = lse max, sum); mode 1: ELBO* (acc[4b..] = sum lw, scaled sum
 * lw, sum (log q - log prior), scaled sum of that; scaled = times 2^-scale_exp); mode 2:
 * IWAE with diagnostics (mode 0's acc, the sums of w^2 in acc[2B + b], the heaps). */
static bsvi_status stream(bsvi_evaluator *ev, const bsvi_model *model, const bsvi_proposal *q,
                          size_t S, int mode, int scale_exp, bsvi_stats *calls) {
    const size_t d = ev->dim, B = q->batch, C = ev->chunk;
    const double half = 0.5 * (double)d * BSVI__LOG_2PI;
    const size_t H = mode == 2 ? bsvi__diag_heap_size(S) : 0;
    for (size_t b = 0; b < B; ++b) {
        if (mode != 1) {
            ev->acc[2 * b] = -INFINITY;
            ev->acc[2 * b + 1] = 0.0;
            if (mode == 2) ev->acc[2 * B + b] = 0.0;
        } else {
            ev->acc[4 * b] = ev->acc[4 * b + 1] = ev->acc[4 * b + 2] = ev->acc[4 * b + 3] = 0.0;
        }
    }
    /* sigma once per data point and coordinate, not once per sample (fmu is free here:
     * it holds the final proposal only inside bsvi_evaluator_bsvi) */
    double *sig = ev->fmu;
    for (size_t i = 0; i < B * d; ++i) sig[i] = exp(q->log_std[i]);
    size_t b = 0, s = 0, done = 0;
    while (b < B) {
        /* fill a chunk with consecutive (b, s) pairs */
        size_t n = 0, b0 = b, s0 = s;
        while (n < C && b < B) {
            /* the run of this data point's samples in the chunk: consecutive in its stream */
            const size_t run = (S - s < C - n) ? S - s : C - n;
            const double *mu = q->mean + b * d, *sg = sig + b * d;
            double *e = ev->eps + n * d;
            bsvi__normals(&ev->rng, b, 0, BSVI__PURPOSE_SAMPLE, (uint64_t)s * d, run * d, e);
            z_rows(run, d, mu, sg, e, ev->z + n * d);
            for (size_t r = 0; r < run; ++r) ev->idx[n + r] = b;
            n += run;
            s += run;
            if (s == S) {
                s = 0;
                ++b;
            }
        }
        bsvi_status st = bsvi__model_eval(model, n, ev->z, ev->idx, ev->lik, ev->prior,
                                          BSVI__GRAD_NONE, NULL, NULL, calls, ev->err);
        if (st != BSVI_OK) return st;
        size_t bb = b0, ss = s0;
        done += n;
        /* log q of the chunk's rows, one data point's run at a time */
        for (size_t r = 0, rb = b0, rs = s0; r < n;) {
            const size_t run = (S - rs < n - r) ? S - rs : n - r;
            log_q_rows(run, d, half, q->log_std + rb * d, 0, ev->eps + r * d, d, ev->lq + r);
            r += run;
            rs = 0;
            ++rb;
        }
        for (size_t r = 0; r < n; ++r) {
            const double lq = ev->lq[r];
            const double lw = ev->lik[r] + ev->prior[r] - lq;
            if (mode == 0) {
                bsvi__lse_push(&ev->acc[2 * bb], &ev->acc[2 * bb + 1], lw);
            } else if (mode == 2) {
                diag_push(&ev->acc[2 * bb], &ev->acc[2 * bb + 1], &ev->acc[2 * B + bb],
                          ev->heap + bb * H, H, ss, lw);
            } else {
                /* Plain sums (the results whenever they stay finite) and the same sums
                 * scaled by 2^-scale_exp, which cannot overflow: a mean of huge finite
                 * terms then comes from the scaled sum (see bsvi_evaluator_elbo_star). */
                const double kt = lq - ev->prior[r];
                ev->acc[4 * bb] += lw;
                ev->acc[4 * bb + 1] += ldexp(lw, -scale_exp);
                ev->acc[4 * bb + 2] += kt;
                ev->acc[4 * bb + 3] += ldexp(kt, -scale_exp);
            }
            if (++ss == S) {
                ss = 0;
                ++bb;
            }
        }
        if (ev->progress && ev->progress(done, B * S, ev->progress_data) != 0)
            return bsvi__fail(ev->err, BSVI_ERR_CANCELLED,
                              "cancelled by the progress callback after %zu of %zu rows", done,
                              B * S);
    }
    return BSVI_OK;
}

/* Sample count of IWAE-S and ELBO*: 1..2^32, and S * dim within one data point's
 * generator stream (2^33 normals, see rng.h) so that no draw repeats. */
static bsvi_status check_samples(bsvi_evaluator *ev, size_t S, const char *fn) {
    if (S == 0) return bsvi__fail(ev->err, BSVI_ERR_ZERO_SIZE, "%s: S is 0", fn);
    if (S > BSVI__MAX_EVAL_SAMPLES)
        return bsvi__fail(ev->err, BSVI_ERR_OUT_OF_RANGE, "%s: S = %zu exceeds 2^32", fn, S);
    if ((uint64_t)S * (uint64_t)ev->dim > BSVI__MAX_STREAM_NORMALS)
        return bsvi__fail(ev->err, BSVI_ERR_OUT_OF_RANGE,
                          "%s: S * dim = %zu * %zu exceeds the 2^33 normals one data point's "
                          "stream holds",
                          fn, S, ev->dim);
    return BSVI_OK;
}

bsvi_status bsvi_evaluator_iwae(bsvi_evaluator *ev, const bsvi_model *model,
                                const bsvi_proposal *q, size_t S, double *out) {
    static const char fn[] = "bsvi_evaluator_iwae";
    if (!ev) return BSVI_ERR_NULL_ARGUMENT;
    if (bsvi__busy(&ev->use)) return refuse_in_use(ev, fn);
    bsvi_status st = common_checks(ev, model, q, fn);
    if (st != BSVI_OK) return st;
    if (!out) return bsvi__fail(ev->err, BSVI_ERR_NULL_ARGUMENT, "%s: out is NULL", fn);
    if ((st = check_samples(ev, S, fn)) != BSVI_OK) return st;
    if ((st = reserve(ev, q->batch, fn)) != BSVI_OK) return st;
    if (ev->diag && (st = reserve_diag(ev, q->batch, S, fn)) != BSVI_OK) return st;
    hold_all(ev, model, q, NULL);
    bsvi_stats calls = {0};
    st = stream(ev, model, q, S, ev->diag ? 2 : 0, 0, &calls);
    size_t nzero = 0;
    if (st == BSVI_OK) st = zero_points(ev, ev->acc, 2, q->batch, S, fn, &nzero);
    if (st != BSVI_OK) return release_all(ev, model, q, NULL, st);
    const double lS = log((double)S);
    for (size_t b = 0; b < q->batch; ++b)
        out[b] = bsvi__lse_value(ev->acc[2 * b], ev->acc[2 * b + 1]) - lS;
    if (ev->diag)
        finish_diag(ev, q->batch, S);
    else
        ev->diag_n = 0; /* the last IWAE-S has no diagnostics */
    ev->nzero = nzero;
    count_call(ev, &calls, q->batch, 0, nzero);
    ev->rng.counter++;
    return release_all(ev, model, q, NULL, BSVI_OK);
}

static bsvi_status elbo_star(bsvi_evaluator *ev, const bsvi_model *model,
                             const bsvi_proposal *q_final, size_t S, double *elbo, double *kl,
                             double *reconstruction) {
    static const char fn[] = "bsvi_evaluator_elbo_star";
    bsvi_status st = common_checks(ev, model, q_final, fn);
    if (st != BSVI_OK) return st;
    if ((st = check_samples(ev, S, fn)) != BSVI_OK) return st;
    const size_t B = q_final->batch, d = ev->dim;
    if ((st = reserve(ev, B, fn)) != BSVI_OK) return st;
    /* 2^scale_exp >= 2S: a sum of S terms scaled by 2^-scale_exp stays below DBL_MAX / 2. */
    int scale_exp = 1;
    while (scale_exp < 40 && ldexp(1.0, scale_exp) < 2.0 * (double)S) ++scale_exp;
    bsvi_stats calls = {0};
    if ((st = stream(ev, model, q_final, S, 1, scale_exp, &calls)) != BSVI_OK) return st;
    /* A plain sum is used while it is finite (huge finite terms, a host prior or a
     * likelihood near 1e308, would overflow it); past that the mean comes from the sum
     * scaled by 2^-scale_exp, which is -inf only when a term is (a zero-density sample). */
    for (size_t b = 0; b < B; ++b)
        if (!isfinite(ev->acc[4 * b]) && !isfinite(ev->acc[4 * b + 1]))
            return bsvi__fail(ev->err, BSVI_ERR_NUMERIC,
                              "%s: a sample of data point %zu has zero density under the model",
                              fn, b);
    /* Results computed into acc in place (3 entries per data point), then copied. */
    for (size_t b = 0; b < B; ++b) {
        double *a = ev->acc + 4 * b;
        const double e = isfinite(a[0]) ? a[0] / (double)S : ldexp(a[1] / (double)S, scale_exp);
        double k;
        if (model->prior == NULL) {
            k = 0.0;
            for (size_t j = 0; j < d; ++j) {
                const double m = q_final->mean[b * d + j], l = q_final->log_std[b * d + j];
                k += 0.5 * (m * m + exp(2.0 * l) - 1.0 - 2.0 * l);
            }
        } else {
            k = isfinite(a[2]) ? a[2] / (double)S : ldexp(a[3] / (double)S, scale_exp);
        }
        const double rc = -(e + k); /* distortion: ELBO* = -(KL* + Reconstruction*) */
        if (!isfinite(e) || !isfinite(k) || !isfinite(rc))
            return bsvi__fail(ev->err, BSVI_ERR_NUMERIC,
                              "%s: %s of data point %zu is not finite (ELBO* %g, KL* %g): the "
                              "model's log densities or the proposal's mean are too large",
                              fn, !isfinite(e) ? "ELBO*" : !isfinite(k) ? "KL*" : "Reconstruction*",
                              b, e, k);
        a[0] = e;
        a[1] = k;
        a[2] = rc;
    }
    for (size_t b = 0; b < B; ++b) {
        if (elbo) elbo[b] = ev->acc[4 * b];
        if (kl) kl[b] = ev->acc[4 * b + 1];
        if (reconstruction) reconstruction[b] = ev->acc[4 * b + 2];
    }
    ev->nzero = 0; /* ELBO* has no zero-density points: such a sample fails the call */
    count_call(ev, &calls, B, 0, 0);
    ev->rng.counter++;
    return BSVI_OK;
}

bsvi_status bsvi_evaluator_elbo_star(bsvi_evaluator *ev, const bsvi_model *model,
                                     const bsvi_proposal *q_final, size_t S, double *elbo,
                                     double *kl, double *reconstruction) {
    if (!ev) return BSVI_ERR_NULL_ARGUMENT;
    if (bsvi__busy(&ev->use)) return refuse_in_use(ev, "bsvi_evaluator_elbo_star");
    if (!model || !q_final) return elbo_star(ev, model, q_final, S, elbo, kl, reconstruction);
    hold_all(ev, model, q_final, NULL);
    bsvi_status st = elbo_star(ev, model, q_final, S, elbo, kl, reconstruction);
    return release_all(ev, model, q_final, NULL, st);
}

static bsvi_status bsvi_k(bsvi_evaluator *ev, const bsvi_model *model, const bsvi_proposal *q,
                          size_t K, double *out, bsvi_proposal *final_q) {
    static const char fn[] = "bsvi_evaluator_bsvi";
    bsvi_status st = common_checks(ev, model, q, fn);
    if (st != BSVI_OK) return st;
    if (!out) return bsvi__fail(ev->err, BSVI_ERR_NULL_ARGUMENT, "%s: out is NULL", fn);
    if (K == 0) return bsvi__fail(ev->err, BSVI_ERR_ZERO_SIZE, "%s: K is 0", fn);
    if (K > BSVI_MAX_STEPS + 1)
        return bsvi__fail(ev->err, BSVI_ERR_OUT_OF_RANGE, "%s: K = %zu exceeds %zu", fn, K,
                          (size_t)BSVI_MAX_STEPS + 1);
    if (final_q && (final_q->batch != q->batch || final_q->dim != q->dim))
        return bsvi__fail(ev->err, BSVI_ERR_SIZE_MISMATCH,
                          "%s: final_q is %zu x %zu but q is %zu x %zu", fn, final_q->batch,
                          final_q->dim, q->batch, q->dim);
    bsvi__svi_cfg cfg = ev->cfg;
    if (cfg.form == BSVI_GRAD_ANALYTIC_KL && model->prior != NULL)
        return bsvi__fail(ev->err, BSVI_ERR_BAD_STATE,
                          "%s: the analytic-KL gradient needs the standard normal prior", fn);
    cfg.k = K - 1;
    cfg.progress = ev->progress;
    cfg.progress_data = ev->progress_data;
    cfg.progress_total = q->batch * K;
    const size_t B = q->batch, d = ev->dim;
    if ((st = reserve(ev, B, fn)) != BSVI_OK) return st;
    if (bsvi__grow_size(&ev->taken, &ev->cap_taken, B))
        return bsvi__fail(ev->err, BSVI_ERR_NO_MEMORY, "%s: out of memory", fn);
    const size_t per = cfg.m + (cfg.ds ? 1u : 0u);
    size_t group = ev->chunk / per;
    if (group == 0) group = 1;
    /* Running log-sum-exp over the K slots: maxima in acc[0..B), sums in acc[B..2B). */
    double *mx = ev->acc, *sm = ev->acc + B;
    for (size_t b = 0; b < B; ++b) {
        mx[b] = -INFINITY;
        sm[b] = 0.0;
    }
    /* Steps taken are gathered in acc[2B..3B) (as doubles: exact, K <= 2^20 + 1) and copied
     * to taken only once the estimate succeeds, so a failed call keeps the last report. */
    bsvi_stats calls = {0};
    ev->ws.stats = &calls;
    size_t nfrozen = 0;
    for (size_t b0 = 0; b0 < B; b0 += group) {
        const size_t nb = (B - b0 < group) ? B - b0 : group;
        cfg.progress_base = b0 * K;
        st = bsvi__svi_refine(&cfg, &ev->ws, model, q->mean + b0 * d, q->log_std + b0 * d, nb, b0,
                              d, &ev->rng, NULL, mx + b0, sm + b0, ev->fmu + b0 * d,
                              ev->fs + b0 * d, ev->err);
        if (st != BSVI_OK) break;
        for (size_t b = 0; b < nb; ++b) {
            const size_t tk = ev->ws.taken[b];
            ev->acc[2 * B + b0 + b] = (tk == SIZE_MAX) ? (double)(K - 1) : (double)tk;
            nfrozen += (tk != SIZE_MAX);
        }
    }
    ev->ws.stats = NULL;
    if (st != BSVI_OK) return st;
    size_t nzero = 0;
    if ((st = zero_points(ev, mx, 1, B, K, fn, &nzero)) != BSVI_OK) return st;
    for (size_t b = 0; b < B; ++b) ev->taken[b] = (size_t)ev->acc[2 * B + b];
    ev->taken_n = B;
    ev->nfrozen = nfrozen;
    ev->nzero = nzero;
    count_call(ev, &calls, B, K - 1, nzero);
    const double lK = log((double)K);
    for (size_t b = 0; b < B; ++b) out[b] = bsvi__lse_value(mx[b], sm[b]) - lK;
    if (final_q) {
        memcpy(final_q->mean, ev->fmu, B * d * sizeof(double));
        memcpy(final_q->log_std, ev->fs, B * d * sizeof(double));
    }
    ev->rng.counter++;
    return BSVI_OK;
}

bsvi_status bsvi_evaluator_bsvi(bsvi_evaluator *ev, const bsvi_model *model,
                                const bsvi_proposal *q, size_t K, double *out,
                                bsvi_proposal *final_q) {
    static const char fn[] = "bsvi_evaluator_bsvi";
    if (!ev) return BSVI_ERR_NULL_ARGUMENT;
    if (bsvi__busy(&ev->use)) return refuse_in_use(ev, fn);
    if (!model || !q) return bsvi_k(ev, model, q, K, out, final_q);
    if (final_q && bsvi__busy(&final_q->use))
        return bsvi__fail(ev->err, BSVI_ERR_REENTRANT,
                          "%s: final_q is in use by a running call (re-entered from a "
                          "callback?) and cannot be written",
                          fn);
    hold_all(ev, model, q, final_q);
    bsvi_status st = bsvi_k(ev, model, q, K, out, final_q);
    return release_all(ev, model, q, final_q, st);
}
