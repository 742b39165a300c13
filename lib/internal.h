/* Internal declarations shared by the library's translation units. Not installed. */
#ifndef BSVI_INTERNAL_H
#define BSVI_INTERNAL_H

#include <math.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "bsvi/bsvi.h"

#define BSVI__ERRLEN 256
#define BSVI__LOG_2PI 1.8378770664093454835606594728112

/* ---- errors ------------------------------------------------------------ */

/* Formats a message into buf (BSVI__ERRLEN bytes) and returns st. */
bsvi_status bsvi__fail(char *buf, bsvi_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Handles that may be shared between threads (a model; a proposal's const functions)
 * store error messages through this variant: the message is formatted aside and copied in
 * under the handle's lock word, or dropped when another thread is writing one at that
 * moment, so that concurrent failures never race on the buffer. */
bsvi_status bsvi__fail_shared(char *buf, atomic_int *lock, bsvi_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* ---- handles in use by a running call (re-entrancy) ---------------------- */

/* Number of running calls that hold a handle. Calls that run host callbacks hold every
 * handle they are given; a held handle refuses changes with BSVI_ERR_REENTRANT and its
 * destroy is deferred to the last release. Atomic, because a model (and a proposal read
 * through const pointers) may be held by calls on several threads at once. */
typedef atomic_uint bsvi__use;

static inline int bsvi__busy(const bsvi__use *u) { return atomic_load((bsvi__use *)u) != 0u; }
static inline void bsvi__hold(const bsvi__use *u) { atomic_fetch_add((bsvi__use *)u, 1u); }
/* Returns 1 when this was the last hold. */
static inline int bsvi__drop(const bsvi__use *u) {
    return atomic_fetch_sub((bsvi__use *)u, 1u) == 1u;
}

/* Release one hold; frees the handle when it was destroyed while held (model.c,
 * proposal.c, trajectory.c). */
void bsvi__model_release(const bsvi_model *m);
void bsvi__proposal_release(const bsvi_proposal *q);
void bsvi__traj_release(const bsvi_trajectory *t);

/* Returns 0 and sets *out = a*b, or returns 1 on overflow. */
int bsvi__mul_overflow(size_t a, size_t b, size_t *out);

/* Grows *p to hold at least n doubles (contents not preserved). */
int bsvi__grow(double **p, size_t *cap, size_t n);
int bsvi__grow_size(size_t **p, size_t *cap, size_t n);

/* ---- random numbers ----------------------------------------------------- */

enum {
    BSVI__PURPOSE_UPDATE = 1, /* SVI update samples (and recorded z when not double-sampled) */
    BSVI__PURPOSE_RECORD = 2, /* BSVI-DS recorded samples */
    BSVI__PURPOSE_SAMPLE = 3, /* proposal / IWAE / ELBO / evaluator samples */
    BSVI__PURPOSE_SIR = 4     /* resampling uniforms */
};

typedef struct bsvi__rng {
    uint64_t seed;
    uint64_t counter;
    uint64_t id_offset;
} bsvi__rng;

/* Normals one (data point, step, purpose) stream can hold before the 32-bit block index
 * (two normals per Philox block) wraps and values repeat: see rng.h. Calls that would
 * need more are refused with BSVI_ERR_OUT_OF_RANGE before any work. */
#define BSVI__MAX_STREAM_NORMALS ((uint64_t)1 << 33)

/* Writes n standard normals for (rng, data point b of the call, step, purpose)
 * starting at stream position pos. Position p is the same number whatever
 * pos/n split is used to reach it. */
void bsvi__normals(const bsvi__rng *r, uint64_t b, uint32_t step, uint32_t purpose, uint64_t pos,
                   size_t n, double *out);

/* The first n normals (n even) of each of the streams of data points b, b+1, ...,
 * b+nstreams-1 (same rng, step, purpose), one after the other into out (nstreams*n):
 * the values of nstreams calls of bsvi__normals(..., pos 0, n, ...), in one pass. */
void bsvi__normals_streams(const bsvi__rng *r, uint64_t b, size_t nstreams, uint32_t step,
                           uint32_t purpose, size_t n, double *out);

/* Marks a static hot-loop function to be compiled also for AVX2 (GCC, x86-64), the
 * loader picking the build once. Only on static functions: a non-static clone's ifunc
 * is exported despite hidden visibility. The library compiles without FP contraction
 * and AVX2 implies no FMA, so both builds give the same bits. -DBSVI_NO_CLONES (e.g. in
 * CMAKE_C_FLAGS) builds the default (SSE2) code only, to check that claim. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && \
    !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__) && !defined(BSVI_NO_CLONES)
#define BSVI__CLONES __attribute__((target_clones("avx2", "default")))
#else
#define BSVI__CLONES
#endif

/* out[i] = exp(in[i]) for i < n, vectorised (lib/vexp.c): within a few ulp of libm for
 * |x| <= 700, libm's own value (and IEEE edge behaviour) elsewhere. out must not overlap in. */
void bsvi__exp_array(double *out, const double *in, size_t n);

/* Writes n uniforms in [0, 1) with 53 random bits, same addressing. */
void bsvi__uniforms(const bsvi__rng *r, uint64_t b, uint32_t step, uint32_t purpose, uint64_t pos,
                    size_t n, double *out);

/* ---- model -------------------------------------------------------------- */

struct bsvi_model {
    size_t dim;
    bsvi_density_fn lik;
    void *lik_data;
    bsvi_density_fn prior; /* NULL: standard normal */
    void *prior_data;
    bsvi__use use;         /* running calls holding the model */
    int doomed;            /* destroyed while held: freed at the last release */
    atomic_int errlock;    /* see bsvi__fail_shared */
    char err[BSVI__ERRLEN];
};

enum { BSVI__GRAD_NONE = 0, BSVI__GRAD_JOINT = 1, BSVI__GRAD_LIK = 2 };

/* Evaluates the model at n rows z (n*dim). Counts the callback calls and rows into
 * *stats when stats is not NULL. Always writes lik[n] = log p(x|z)
 * and prior[n] = log p(z). grad_mode selects what goes to g (n*dim): nothing,
 * the joint gradient or the likelihood gradient. gscratch (n*dim) is needed
 * when grad_mode is JOINT and the prior is a host callback. Rows whose log
 * density is -inf get a zero gradient. */
bsvi_status bsvi__model_eval(const bsvi_model *m, size_t n, const double *z, const size_t *idx,
                             double *lik, double *prior, int grad_mode, double *g,
                             double *gscratch, bsvi_stats *stats, char *err);
/* Adds the counters of one successful call (a) to a handle's (into). */
void bsvi__stats_add(bsvi_stats *into, const bsvi_stats *a);

/* Checks that a model is usable by a run of dimension dim. */
bsvi_status bsvi__model_check(const bsvi_model *m, size_t dim, char *err);

/* ---- proposal ----------------------------------------------------------- */

struct bsvi_proposal {
    size_t batch, dim;
    double *mean, *log_std;
    bsvi__rng rng;
    bsvi__use use;
    int doomed;
    atomic_int errlock; /* const functions may fail concurrently: see bsvi__fail_shared */
    char err[BSVI__ERRLEN];
};

/* ---- trajectory --------------------------------------------------------- */

typedef struct bsvi__trajdata {
    size_t B, k, d;
    int ds;
    int valid;
    double *logw, *logp, *logq; /* B*(k+1) */
    double *z, *mu, *s;         /* (k+1)*B*d, slot-major: row (slot i, data point b) at
                                 * (i*B + b)*d, so that one SVI step's rows are contiguous
                                 * (the getters return them data point first) */
    double *enc_mu, *enc_s;     /* B*d */
    size_t *taken;              /* B: SVI steps taken (k unless the point diverged) */
    size_t cap_sc, cap_vec, cap_bd, cap_taken;
} bsvi__trajdata;

struct bsvi_trajectory {
    bsvi__trajdata data;
    bsvi__use use; /* held as the output of a running bsvi_svi_run */
    int doomed;
    char err[BSVI__ERRLEN];
};

int bsvi__trajdata_reserve(bsvi__trajdata *t, size_t B, size_t k, size_t d);

/* Row (slot i, data point b) of one of a buffer's z, mu, s arrays. */
static inline const double *bsvi__traj_row(const bsvi__trajdata *t, const double *a, size_t b,
                                           size_t i) {
    return a + (i * t->B + b) * t->d;
}
void bsvi__trajdata_free(bsvi__trajdata *t);

/* ---- Adam (the SVI step rule and the buffer weights' optimiser) ----------- */
/* One Adam update of n coordinates with gradient g (ascent: the caller adds delta):
 * m = b1 m + (1-b1) g, v = b2 v + (1-b2) g^2, delta = lr (m/d1) / (sqrt(v/d2) + eps) with
 * d1 = 1 - b1^t, d2 = 1 - b2^t for the t-th step. delta may be g (in place). Returns 1 when
 * a bias-corrected moment is not finite (the caller treats that as divergence), else 0. */
static inline int bsvi__adam_update(size_t n, double b1, double b2, double d1, double d2,
                                    double lr, double eps, const double *g, double *m,
                                    double *v, double *delta) {
    const double c1 = 1.0 - b1, c2 = 1.0 - b2;
    int bad = 0;
    for (size_t j = 0; j < n; ++j) {
        const double gj = g[j];
        m[j] = b1 * m[j] + c1 * gj;
        v[j] = b2 * v[j] + c2 * gj * gj;
        const double mhat = m[j] / d1, vhat = v[j] / d2;
        bad |= !isfinite(mhat) | !isfinite(vhat);
        delta[j] = lr * mhat / (sqrt(vhat) + eps);
    }
    return bad;
}

/* ---- buffer weights ------------------------------------------------------ */
struct bsvi_buffer_weights {
    size_t n;
    double *a, *m, *v, *acc; /* logits, Adam moments, accumulated gradient sum (n each) */
    uint64_t count, t;       /* data points accumulated, Adam steps taken */
    double lr, b1, b2;
    /* one allocation of 9n doubles: a, m, v, acc, then scratch (log pi, r, the next m and
     * v of a step, one row of log weights) */
    double *logpi, *r;
    char err[BSVI__ERRLEN];
};
/* log pi (n entries) of a weights handle, or of uniform weights when w is NULL. */
void bsvi__log_pi(const bsvi_buffer_weights *w, size_t n, double *out);
/* r = softmax(logpi + lw) over n slots; returns the bound LSE_i(logpi_i + lw_i), or
 * -INFINITY (r then holds no distribution) when every term is -INFINITY. */
double bsvi__buffer_softmax(const double *logpi, const double *lw, size_t n, double *r);
/* The "is a distribution" check: returns 0 when pi's n entries are non-negative, finite
 * and sum to 1 within 1e-9; otherwise 1 with *bad = the first bad entry's index, or n when
 * only the sum is off (*sum receives the sum). */
int bsvi__check_distribution(const double *pi, size_t n, size_t *bad, double *sum);
/* The value checks of host terms (GIWAE): BSVI_ERR_BAD_VALUE for NaN, log_joint +infinity
 * or log_proposal -infinity, then BSVI_ERR_NUMERIC for a difference that overflows to
 * +infinity; *at receives the first offending index. */
bsvi_status bsvi__check_terms(size_t n, const double *log_joint, const double *log_proposal,
                              size_t *at);

/* ---- SVI engine --------------------------------------------------------- */

typedef struct bsvi__svi_cfg {
    size_t k, m;
    double eta;
    bsvi_step_rule rule;
    double beta, beta1, beta2, adam_eps, clip;
    bsvi_grad_form form;
    int ds; /* double sampling (BSVI-DS) */
    bsvi_divergence_policy divergence;
    bsvi_progress_fn progress; /* may be NULL */
    void *progress_data;
    size_t progress_base, progress_total; /* units done before this call, units in all */
} bsvi__svi_cfg;

typedef struct bsvi__svi_ws {
    double *mu, *s;          /* B*d lambda (without a buffer: alternating with mu2, s2) */
    double *sig;             /* B*d exp(s) of the current step */
    double *mu2, *s2;        /* B*d the other copy of lambda */
    double *lq;              /* rows: log q scratch */
    double *v1, *v2;         /* B*2d optimiser state */
    double *eps, *z;         /* rows*d */
    double *lik, *prior;     /* rows */
    double *g, *gscratch;    /* rows*d */
    double *dir;             /* B*2d */
    size_t *idx;             /* rows */
    size_t *taken;           /* B: steps taken per data point (SIZE_MAX while active) */
    size_t cap_taken;
    size_t cap_bd, cap_rows, cap_rowsd, cap_idx;
    bsvi_stats *stats;       /* the running call's counters of model calls, or NULL */
} bsvi__svi_ws;

void bsvi__svi_ws_free(bsvi__svi_ws *w);

/* Refines nb data points (global batch indices b_first..b_first+nb-1) from
 * mu0/s0 (nb*d). Either rec (sized for nb, k, d) receives the buffer, or
 * lse_max/lse_sum (nb) receive a running log-sum-exp of log w over the slots.
 * final_mu/final_s (nb*d) receive lambda_k when non-NULL. Under the freeze
 * policy a data point whose step diverges keeps its last finite lambda for
 * the remaining slots; rec->taken records the steps each point took. */
bsvi_status bsvi__svi_refine(const bsvi__svi_cfg *cfg, bsvi__svi_ws *ws, const bsvi_model *model,
                             const double *mu0, const double *s0, size_t nb, size_t b_first,
                             size_t d, const bsvi__rng *rng, bsvi__trajdata *rec,
                             double *lse_max, double *lse_sum, double *final_mu,
                             double *final_s, char *err);

/* Grad of log w at one row for a given form. g is the joint gradient (or the
 * likelihood gradient for ANALYTIC_KL); sig = exp(log-std). Accumulates
 * weight*grad into dmu, dls (d/dmean, d/dlog-std). */
void bsvi__grad_row(bsvi_grad_form form, size_t d, const double *g, const double *eps,
                    const double *mu, const double *sig, double weight, double *dmu, double *dls);

/* Options <-> engine configuration (svi.c); the check is that of bsvi_svi_set_options
 * (check_steps 0: the evaluator ignores the steps field). */
bsvi_status bsvi__svi_options_check(const bsvi_svi_options *o, int check_steps, char *err,
                                    const char *fn);
void bsvi__svi_cfg_set(bsvi__svi_cfg *cfg, const bsvi_svi_options *o);
void bsvi__svi_cfg_get(const bsvi__svi_cfg *cfg, bsvi_svi_options *o);

/* ---- importance-weight diagnostics (diagnostics.c) ------------------------ */

/* Size of the heap k-hat needs for n weights: the M+1 largest, M =
 * bsvi_diagnostics_tail_length(n); 0 when M < 5 (k-hat is then +INFINITY, n < 21). */
size_t bsvi__diag_heap_size(size_t n);
/* Offers v to the min-heap a[0..h) of the H largest values seen so far (h <= H): added
 * while h < H, else it replaces the smallest, a[0], when larger. Returns the new count. */
size_t bsvi__diag_heap_offer(double *a, size_t h, size_t H, double v);
/* k-hat of one data point (loo's pareto_k) from its tail: a holds the M+1 largest log
 * weights as a full heap of bsvi__diag_heap_offer, shifted so that the largest is 0 (each
 * minus the largest log weight). Sorts a (descending) and fits the M exceedances
 * (Zhang-Stephens, the prior of 10 pseudo-observations); +INFINITY as the file comment of
 * diagnostics.h says (a zero weight in the tail, a flat tail, a failed fit). d's capacity
 * must give a tail of at least M (bsvi_diagnostics_create(n) for these n weights). The one
 * fit behind bsvi_diagnostics_compute() and the evaluator's streamed IWAE-S diagnostics. */
double bsvi__diag_tail_khat(bsvi_diagnostics *d, double *a, size_t M);

#include <math.h>

/* Online log-sum-exp accumulator: (mx, sum) represents mx + log(sum). */
static inline void bsvi__lse_push(double *mx, double *sum, double x) {
    if (x == -INFINITY) return;
    if (x > *mx) {
        *sum = (*mx == -INFINITY) ? 1.0 : *sum * exp(*mx - x) + 1.0;
        *mx = x;
    } else {
        *sum += exp(x - *mx);
    }
}

static inline double bsvi__lse_value(double mx, double sum) {
    return (mx == -INFINITY) ? -INFINITY : mx + log(sum);
}

#endif /* BSVI_INTERNAL_H */
