/* Step-size search: SVI refinement measured at several step sizes (bsvi_svi_search_step_size). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "svi_private.h"

bsvi_step_search_options bsvi_step_search_options_default(void) {
    bsvi_step_search_options o;
    memset(&o, 0, sizeof o);
    o.grid = NULL;
    o.grid_size = 0;
    o.min_step = 1e-4;
    o.max_step = 1.0;
    o.factor = sqrt(10.0);
    o.refinements = 2;
    o.margin = 2.0;
    return o;
}

#define MAX_REFINEMENTS 8

/* Scratch of one search: the SVI handle and trajectory it refines with, its buffers. */
typedef struct search {
    bsvi_svi *svi; /* scratch handle: the caller's options, FREEZE, the step size tried */
    bsvi_trajectory *traj;
    bsvi_batch_fn batches;
    void *user_data;
    size_t num_batches, k;
    uint64_t counter, id_offset;
    double *logpi; /* k+1 */
    double *lw;    /* B*(k+1), grown */
    size_t lw_cap;
    size_t *taken; /* B, grown */
    size_t taken_cap;
    char *err;
    size_t broken[BSVI_STEP_SEARCH_MAX_TRIALS]; /* per trial: points SVI took to zero density */
} search;

static const char FN[] = "bsvi_svi_search_step_size";

/* Coarse points of a log search: min * factor^j <= max (to a relative 1e-9 of the exponent),
 * then max itself when the last power falls short of it. */
static size_t coarse_points(const bsvi_step_search_options *o) {
    const double span = log(o->max_step / o->min_step) / log(o->factor);
    if (!(span < (double)BSVI_STEP_SEARCH_MAX_TRIALS)) return BSVI_STEP_SEARCH_MAX_TRIALS + 1;
    const size_t m = (size_t)floor(span + 1e-9) + 1;
    /* max_step itself closes the grid when the powers of factor miss it */
    return o->min_step * pow(o->factor, (double)(m - 1)) < o->max_step * (1.0 - 1e-9) ? m + 1 : m;
}

static bsvi_status check_options(const bsvi_step_search_options *o, size_t capacity, char *err) {
    if (!(o->margin >= 1.0) || !isfinite(o->margin))
        return bsvi__fail(err, BSVI_ERR_BAD_VALUE, "%s: margin = %g must be finite and >= 1", FN,
                          o->margin);
    if (o->grid) {
        if (o->grid_size == 0)
            return bsvi__fail(err, BSVI_ERR_ZERO_SIZE, "%s: the grid has no step size", FN);
        if (o->grid_size > BSVI_STEP_SEARCH_MAX_TRIALS)
            return bsvi__fail(err, BSVI_ERR_OUT_OF_RANGE,
                              "%s: a grid of %zu step sizes exceeds BSVI_STEP_SEARCH_MAX_TRIALS "
                              "= %d",
                              FN, o->grid_size, BSVI_STEP_SEARCH_MAX_TRIALS);
        for (size_t i = 0; i < o->grid_size; ++i)
            if (!(o->grid[i] > 0.0) || !isfinite(o->grid[i]))
                return bsvi__fail(err, BSVI_ERR_BAD_VALUE,
                                  "%s: grid[%zu] = %g must be finite and > 0", FN, i, o->grid[i]);
        if (capacity < o->grid_size)
            return bsvi__fail(err, BSVI_ERR_SIZE_MISMATCH,
                              "%s: capacity %zu is below the grid size %zu", FN, capacity,
                              o->grid_size);
        return BSVI_OK;
    }
    if (!(o->min_step > 0.0) || !isfinite(o->min_step))
        return bsvi__fail(err, BSVI_ERR_BAD_VALUE, "%s: min_step = %g must be finite and > 0",
                          FN, o->min_step);
    if (!(o->max_step >= o->min_step) || !isfinite(o->max_step))
        return bsvi__fail(err, BSVI_ERR_BAD_VALUE,
                          "%s: max_step = %g must be finite and >= min_step = %g", FN,
                          o->max_step, o->min_step);
    if (!(o->factor > 1.0) || !isfinite(o->factor))
        return bsvi__fail(err, BSVI_ERR_BAD_VALUE, "%s: factor = %g must be finite and > 1", FN,
                          o->factor);
    if (o->refinements > MAX_REFINEMENTS)
        return bsvi__fail(err, BSVI_ERR_OUT_OF_RANGE, "%s: refinements = %zu exceeds %d", FN,
                          o->refinements, MAX_REFINEMENTS);
    const size_t most = coarse_points(o) + 2 * o->refinements;
    if (most > BSVI_STEP_SEARCH_MAX_TRIALS)
        return bsvi__fail(err, BSVI_ERR_OUT_OF_RANGE,
                          "%s: from %g to %g by a factor %g with %zu refinements needs up to "
                          "%zu trials, more than BSVI_STEP_SEARCH_MAX_TRIALS = %d",
                          FN, o->min_step, o->max_step, o->factor, o->refinements, most,
                          BSVI_STEP_SEARCH_MAX_TRIALS);
    if (capacity < most)
        return bsvi__fail(err, BSVI_ERR_SIZE_MISMATCH,
                          "%s: capacity %zu is below the %zu trials this search may make", FN,
                          capacity, most);
    return BSVI_OK;
}

/* Refines every batch at step size eta and sums the trial's statistics. */
static bsvi_status run_trial(search *s, double eta, bsvi_step_trial *out, size_t *broken) {
    const size_t K1 = s->k + 1;
    size_t n = 0, zero = 0, diverged = 0, brk = 0;
    double s0 = 0.0, sk = 0.0, sb = 0.0, gmean = 0.0, gm2 = 0.0; /* Welford for the gain */
    bsvi_status st = bsvi_svi_set_step_size(s->svi, eta);
    if (st != BSVI_OK)
        return bsvi__fail(s->err, st, "%s: step size %g: %s", FN, eta,
                          bsvi_svi_last_error(s->svi));
    for (size_t b = 0; b < s->num_batches; ++b) {
        const bsvi_model *model = NULL;
        const bsvi_proposal *q = NULL;
        const int rc = s->batches(s->user_data, b, &model, &q);
        if (rc != 0)
            return bsvi__fail(s->err, BSVI_ERR_CALLBACK_FAILED,
                              "%s: the batch callback failed with code %d for batch %zu", FN,
                              rc, b);
        if (!model || !q)
            return bsvi__fail(s->err, BSVI_ERR_CALLBACK_FAILED,
                              "%s: the batch callback left the %s NULL for batch %zu", FN,
                              model ? "proposal" : "model", b);
        st = bsvi_svi_set_stream(s->svi, s->counter + (uint64_t)b, s->id_offset);
        if (st == BSVI_OK) st = bsvi_svi_run(s->svi, model, q, s->traj);
        if (st != BSVI_OK)
            return bsvi__fail(s->err, st, "%s: step size %g, batch %zu: %s", FN, eta, b,
                              bsvi_svi_last_error(s->svi));
        const size_t B = bsvi_trajectory_batch(s->traj);
        if (bsvi__grow(&s->lw, &s->lw_cap, B * K1) || bsvi__grow_size(&s->taken, &s->taken_cap, B))
            return bsvi__fail(s->err, BSVI_ERR_NO_MEMORY,
                              "%s: cannot allocate the log weights of a batch of %zu", FN, B);
        st = bsvi_trajectory_get_log_weights(s->traj, s->lw);
        if (st == BSVI_OK) st = bsvi_trajectory_get_steps_taken(s->traj, s->taken);
        if (st != BSVI_OK)
            return bsvi__fail(s->err, st, "%s: %s", FN, bsvi_trajectory_last_error(s->traj));
        for (size_t i = 0; i < B; ++i) {
            const double *w = s->lw + i * K1;
            if (s->taken[i] < s->k) ++diverged;
            const double d = w[s->k] - w[0];
            if (!isfinite(d)) {
                /* left out; a zero (or overflowing) weight the refinement produced from a
                 * point of finite SVI-0 also disqualifies the step size (a zero w_0 is the
                 * same draw for every step size: no step size is to blame for it) */
                ++zero;
                if (isfinite(w[0])) ++brk;
                continue;
            }
            double mx = -INFINITY, sum = 0.0;
            for (size_t j = 0; j < K1; ++j) bsvi__lse_push(&mx, &sum, s->logpi[j] + w[j]);
            ++n;
            s0 += w[0];
            sk += w[s->k];
            sb += bsvi__lse_value(mx, sum) - w[s->k];
            const double delta = d - gmean;
            gmean += delta / (double)n;
            gm2 += delta * (d - gmean);
        }
    }
    memset(out, 0, sizeof *out);
    out->step_size = eta;
    out->points = n;
    out->zero_points = zero;
    *broken = brk;
    out->diverged = diverged;
    const double dn = (double)n;
    out->svi0 = n ? s0 / dn : -INFINITY;
    out->svik = n ? sk / dn : -INFINITY;
    out->svik_gain = n ? gmean : NAN;
    out->svik_gain_se = n > 1 ? sqrt(gm2 / (dn - 1.0) / dn) : 0.0;
    out->bsvik_gain = n ? sb / dn : NAN;
    return BSVI_OK;
}

/* The smallest step at which a point diverged or was refined to zero density, and the best
 * safe trial (BSVI_STEP_SEARCH_NONE: none). */
static size_t choose(const bsvi_step_trial *t, const size_t *broken, size_t n, double margin,
                     double *first_div, double *safe) {
    double fd = INFINITY;
    for (size_t i = 0; i < n; ++i)
        if ((t[i].diverged > 0 || broken[i] > 0) && t[i].step_size < fd) fd = t[i].step_size;
    *first_div = fd;
    *safe = fd / margin;
    size_t best = BSVI_STEP_SEARCH_NONE;
    for (size_t i = 0; i < n; ++i) {
        if (t[i].diverged > 0 || broken[i] > 0 || t[i].points == 0) continue;
        if (t[i].step_size > *safe || !(t[i].svik_gain > 0.0)) continue;
        if (best == BSVI_STEP_SEARCH_NONE || t[i].svik_gain > t[best].svik_gain ||
            (t[i].svik_gain == t[best].svik_gain && t[i].step_size < t[best].step_size))
            best = i;
    }
    return best;
}

static int tried(const bsvi_step_trial *t, size_t n, double eta) {
    for (size_t i = 0; i < n; ++i)
        if (fabs(t[i].step_size - eta) <= 1e-9 * eta) return 1;
    return 0;
}

static void sort_trials(bsvi_step_trial *t, size_t *broken, size_t n) {
    for (size_t i = 1; i < n; ++i) {
        const bsvi_step_trial x = t[i];
        const size_t bx = broken[i];
        size_t j = i;
        for (; j > 0 && t[j - 1].step_size > x.step_size; --j) {
            t[j] = t[j - 1];
            broken[j] = broken[j - 1];
        }
        t[j] = x;
        broken[j] = bx;
    }
}

static bsvi_status grid_search(search *s, const bsvi_step_search_options *o, bsvi_step_trial *t,
                               size_t *n) {
    double g[BSVI_STEP_SEARCH_MAX_TRIALS];
    size_t ng = 0;
    for (size_t i = 0; i < o->grid_size; ++i) { /* increasing, without repeats */
        size_t j = ng;
        int dup = 0;
        for (size_t m = 0; m < ng; ++m) dup |= g[m] == o->grid[i];
        if (dup) continue;
        for (; j > 0 && g[j - 1] > o->grid[i]; --j) g[j] = g[j - 1];
        g[j] = o->grid[i];
        ++ng;
    }
    for (size_t i = 0; i < ng; ++i) {
        bsvi_status st = run_trial(s, g[i], &t[*n], &s->broken[*n]);
        if (st != BSVI_OK) return st;
        ++*n;
    }
    return BSVI_OK;
}

static bsvi_status log_search(search *s, const bsvi_step_search_options *o, bsvi_step_trial *t,
                              size_t *n) {
    const size_t coarse = coarse_points(o);
    double best_gain = -INFINITY, best_se = 0.0;
    int falls = 0;
    for (size_t j = 0; j < coarse; ++j) {
        double eta = o->min_step * pow(o->factor, (double)j);
        if (eta > o->max_step) eta = o->max_step;
        bsvi_status st = run_trial(s, eta, &t[*n], &s->broken[*n]);
        if (st != BSVI_OK) return st;
        const size_t ci = (*n)++;
        const bsvi_step_trial *c = &t[ci];
        if (c->diverged > 0 || s->broken[ci] > 0) break; /* larger steps only diverge more */
        if (c->svik_gain > best_gain) {
            best_gain = c->svik_gain;
            best_se = c->svik_gain_se;
            falls = 0;
        } else if (*n >= 2 && c->svik_gain < t[*n - 2].svik_gain &&
                   best_gain > 2.0 * best_se) {
            /* past a significant peak: two successive falls end the scan */
            if (++falls >= 2) break;
        } else {
            falls = 0;
        }
    }
    double ratio = o->factor, first_div, safe;
    for (size_t r = 0; r < o->refinements; ++r) {
        const size_t b = choose(t, s->broken, *n, o->margin, &first_div, &safe);
        if (b == BSVI_STEP_SEARCH_NONE) break;
        ratio = sqrt(ratio);
        const double centre = t[b].step_size;
        const double cand[2] = {centre / ratio, centre * ratio};
        for (int c = 0; c < 2; ++c) {
            const double eta = cand[c];
            if (eta < o->min_step * (1.0 - 1e-12) || eta > o->max_step * (1.0 + 1e-12)) continue;
            choose(t, s->broken, *n, o->margin, &first_div, &safe);
            if (eta > safe || tried(t, *n, eta)) continue;
            bsvi_status st = run_trial(s, eta, &t[*n], &s->broken[*n]);
            if (st != BSVI_OK) return st;
            ++*n;
        }
    }
    return BSVI_OK;
}

bsvi_status bsvi_svi_search_step_size(bsvi_svi *svi, bsvi_batch_fn batches, void *user_data,
                                      size_t num_batches, const bsvi_buffer_weights *pi,
                                      const bsvi_step_search_options *options,
                                      bsvi_step_trial *trials, size_t capacity,
                                      bsvi_step_search_result *result) {
    if (!svi) return BSVI_ERR_NULL_ARGUMENT;
    bsvi_status st = bsvi__svi_hold(svi, FN);
    if (st != BSVI_OK) return st;
    char *err = bsvi__svi_errbuf(svi);
    search s;
    memset(&s, 0, sizeof s);
    s.err = err;
    bsvi_step_trial t[BSVI_STEP_SEARCH_MAX_TRIALS];
    size_t n = 0;
    const bsvi_step_search_options o = options ? *options : bsvi_step_search_options_default();
    bsvi_svi_options so;
    bsvi_svi_get_options(svi, &so);
    uint64_t seed = 0;
    bsvi_svi_get_stream(svi, &seed, &s.counter, &s.id_offset);
    s.k = so.steps;
    s.batches = batches;
    s.user_data = user_data;
    s.num_batches = num_batches;
    if (!batches || !trials || !result) {
        st = bsvi__fail(err, BSVI_ERR_NULL_ARGUMENT, "%s: %s is NULL", FN,
                        !batches ? "batches" : !trials ? "trials" : "result");
        goto done;
    }
    if (num_batches == 0) {
        st = bsvi__fail(err, BSVI_ERR_ZERO_SIZE, "%s: num_batches is 0", FN);
        goto done;
    }
    if ((uint64_t)num_batches > ((uint64_t)1 << 32)) {
        st = bsvi__fail(err, BSVI_ERR_OUT_OF_RANGE, "%s: num_batches = %zu exceeds 2^32", FN,
                        num_batches);
        goto done;
    }
    if (s.k == 0) {
        st = bsvi__fail(err, BSVI_ERR_BAD_STATE,
                        "%s: the SVI handle takes k = 0 steps: there is nothing to search", FN);
        goto done;
    }
    if (pi && bsvi_buffer_weights_size(pi) != s.k + 1) {
        st = bsvi__fail(err, BSVI_ERR_SIZE_MISMATCH,
                        "%s: the buffer weights have %zu slots, the trajectory k+1 = %zu", FN,
                        bsvi_buffer_weights_size(pi), s.k + 1);
        goto done;
    }
    st = check_options(&o, capacity, err);
    if (st != BSVI_OK) goto done;

    s.logpi = (double *)malloc((s.k + 1) * sizeof *s.logpi);
    if (!s.logpi || bsvi_svi_create(bsvi__svi_dim(svi), &s.svi) != BSVI_OK ||
        bsvi_trajectory_create(&s.traj) != BSVI_OK) {
        st = bsvi__fail(err, BSVI_ERR_NO_MEMORY, "%s: cannot allocate the search's scratch", FN);
        goto done;
    }
    if (pi) { /* log softmax of the logits */
        bsvi_buffer_weights_get_logits(pi, s.logpi, s.k + 1);
        double mx = -INFINITY, sum = 0.0;
        for (size_t j = 0; j <= s.k; ++j) bsvi__lse_push(&mx, &sum, s.logpi[j]);
        const double lse = bsvi__lse_value(mx, sum);
        for (size_t j = 0; j <= s.k; ++j) s.logpi[j] -= lse;
    } else {
        for (size_t j = 0; j <= s.k; ++j) s.logpi[j] = -log((double)(s.k + 1));
    }
    so.divergence = BSVI_DIVERGENCE_FREEZE;
    st = bsvi_svi_set_options(s.svi, &so);
    if (st == BSVI_OK) st = bsvi_svi_set_seed(s.svi, seed);
    if (st != BSVI_OK) {
        bsvi__fail(err, st, "%s: %s", FN, bsvi_svi_last_error(s.svi));
        goto done;
    }
    st = o.grid ? grid_search(&s, &o, t, &n) : log_search(&s, &o, t, &n);
    if (st != BSVI_OK) goto done;

    sort_trials(t, s.broken, n);
    bsvi_step_search_result r;
    memset(&r, 0, sizeof r);
    r.num_trials = n;
    r.best = choose(t, s.broken, n, o.margin, &r.first_diverging, &r.safe_limit);
    r.step_size = r.best == BSVI_STEP_SEARCH_NONE ? NAN : t[r.best].step_size;
    memcpy(trials, t, n * sizeof *t);
    *result = r;
done:
    bsvi_trajectory_destroy(s.traj);
    bsvi_svi_destroy(s.svi);
    free(s.logpi);
    free(s.lw);
    free(s.taken);
    bsvi__svi_release(svi);
    return st;
}
