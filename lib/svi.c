/* SVI-k refinement: the engine shared by bsvi_svi_run and the evaluator. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "rows.h"
#include "svi_private.h"

struct bsvi_svi {
    size_t dim;
    bsvi__svi_cfg cfg; /* options and the progress callback (its base and total per run) */
    bsvi__rng rng;
    bsvi__svi_ws ws;
    bsvi__trajdata stage;
    bsvi_stats stats;
    bsvi__use use; /* running calls holding the handle (its run) */
    int doomed;    /* destroyed while held: freed at the last release */
    char err[BSVI__ERRLEN];
};

/* ---- engine ------------------------------------------------------------- */

void bsvi__svi_ws_free(bsvi__svi_ws *w) {
    free(w->mu);
    free(w->v1);
    free(w->eps);
    free(w->lik);
    free(w->g);
    free(w->gscratch);
    free(w->dir);
    free(w->idx);
    free(w->taken);
    memset(w, 0, sizeof *w);
}

/* Sizes the workspace for nb data points and `rows` latent rows per step.
 * Capacities are tracked in units of nb*d, rows*d and rows. */
static int ws_reserve(bsvi__svi_ws *w, size_t nb, size_t rows, size_t d, int need_gscratch) {
    size_t nbd, rowsd;
    if (bsvi__mul_overflow(nb, d, &nbd) || bsvi__mul_overflow(rows, d, &rowsd)) return 1;
    if (nbd > SIZE_MAX / 64 || rowsd > SIZE_MAX / 64 || rows > SIZE_MAX / 64) return 1;
    if (nbd > w->cap_bd || !w->mu) {
        size_t c0 = 0, c1 = 0, c2 = 0;
        free(w->mu), free(w->v1), free(w->dir);
        w->mu = w->v1 = w->dir = NULL;
        w->cap_bd = 0;
        if (bsvi__grow(&w->mu, &c0, 5 * nbd) || bsvi__grow(&w->v1, &c1, 4 * nbd) ||
            bsvi__grow(&w->dir, &c2, 2 * nbd))
            return 1;
        w->cap_bd = nbd;
    }
    if (rowsd > w->cap_rowsd || !w->eps || (need_gscratch && !w->gscratch)) {
        size_t c0 = 0, c1 = 0, c2 = 0;
        free(w->eps), free(w->g), free(w->gscratch);
        w->eps = w->g = w->gscratch = NULL;
        w->cap_rowsd = 0;
        if (bsvi__grow(&w->eps, &c0, 2 * rowsd) || bsvi__grow(&w->g, &c1, rowsd) ||
            (need_gscratch && bsvi__grow(&w->gscratch, &c2, rowsd)))
            return 1;
        w->cap_rowsd = rowsd;
    }
    if (rows > w->cap_rows || !w->lik) {
        size_t c0 = 0;
        free(w->lik);
        w->lik = NULL;
        w->cap_rows = 0;
        if (bsvi__grow(&w->lik, &c0, 3 * rows)) return 1;
        w->cap_rows = rows;
    }
    if (bsvi__grow_size(&w->idx, &w->cap_idx, rows)) return 1;
    if (bsvi__grow_size(&w->taken, &w->cap_taken, nb)) return 1;
    /* Carve views for the current shape (arrays hold at least these sizes). */
    w->s = w->mu + nbd;
    w->sig = w->mu + 2 * nbd;
    w->mu2 = w->mu + 3 * nbd;
    w->s2 = w->mu + 4 * nbd;
    w->v2 = w->v1 + 2 * nbd;
    w->z = w->eps + rowsd;
    w->prior = w->lik + rows;
    w->lq = w->lik + 2 * rows;
    return 0;
}

void bsvi__grad_row(bsvi_grad_form form, size_t d, const double *g, const double *eps,
                    const double *mu, const double *sig, double weight, double *dmu, double *dls) {
    switch (form) {
    case BSVI_GRAD_PATHWISE:
        for (size_t j = 0; j < d; ++j) {
            dmu[j] += weight * g[j];
            dls[j] += weight * (g[j] * sig[j] * eps[j] + 1.0);
        }
        break;
    case BSVI_GRAD_STL:
    case BSVI_GRAD_DREG:
        for (size_t j = 0; j < d; ++j) {
            dmu[j] += weight * (g[j] + eps[j] / sig[j]);
            dls[j] += weight * (g[j] * sig[j] * eps[j] + eps[j] * eps[j]);
        }
        break;
    case BSVI_GRAD_ANALYTIC_KL:
        for (size_t j = 0; j < d; ++j) {
            dmu[j] += weight * (g[j] - mu[j]);
            dls[j] += weight * (g[j] * sig[j] * eps[j] - (sig[j] * sig[j] - 1.0));
        }
        break;
    }
}

/* ---- hot loops ---------------------------------------------------------------------
 * Element-wise loops the compiler vectorises (also built for AVX2: BSVI__CLONES); every
 * element goes through the operations of the reference expressions in the same order, so
 * the results are bitwise those of the straightforward loops. Sums whose order matters
 * (log q, norms) stay sequential per data point. */

/* The first contributing row's share of the direction (the direction starts at +0.0, as
 * if zeroed and accumulated: 0.0 + x keeps the sign of zero of the accumulated form). */
BSVI__CLONES static void grad_first(bsvi_grad_form form, size_t d, const double *g,
                                    const double *eps, const double *mu, const double *sig,
                                    double weight, double *dmu, double *dls) {
    switch (form) {
    case BSVI_GRAD_PATHWISE:
        for (size_t j = 0; j < d; ++j) {
            dmu[j] = 0.0 + weight * g[j];
            dls[j] = 0.0 + weight * (g[j] * sig[j] * eps[j] + 1.0);
        }
        break;
    case BSVI_GRAD_STL:
    case BSVI_GRAD_DREG:
        for (size_t j = 0; j < d; ++j) {
            dmu[j] = 0.0 + weight * (g[j] + eps[j] / sig[j]);
            dls[j] = 0.0 + weight * (g[j] * sig[j] * eps[j] + eps[j] * eps[j]);
        }
        break;
    case BSVI_GRAD_ANALYTIC_KL:
        for (size_t j = 0; j < d; ++j) {
            dmu[j] = 0.0 + weight * (g[j] - mu[j]);
            dls[j] = 0.0 + weight * (g[j] * sig[j] * eps[j] - (sig[j] * sig[j] - 1.0));
        }
        break;
    }
}

BSVI__CLONES static void grad_more(bsvi_grad_form form, size_t d, const double *g,
                                   const double *eps, const double *mu, const double *sig,
                                   double weight, double *dmu, double *dls) {
    bsvi__grad_row(form, d, g, eps, mu, sig, weight, dmu, dls);
}

/* Bit 63 set when x is not finite (exponent all ones), as integer operations that
 * vectorise (no floating-point compare). */
static inline uint64_t nonfinite_bit(double x) {
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    return (u & 0x7FF0000000000000ull) + 0x0010000000000000ull;
}
/* Bit 63 set unless |x| <= lim (lim >= 0 finite; NaN fails). */
static inline uint64_t outside_bit(double x, uint64_t lim_bits) {
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    return lim_bits - (u & 0x7FFFFFFFFFFFFFFFull);
}


/* Candidate lambda' = lambda + delta (mean and log-std halves of delta): written to
 * (nm, ns); returns nonzero when a mean is not finite or a log-std leaves its range. With
 * eta > 0, delta = eta * dir (the gradient rule, fused). */
BSVI__CLONES static uint64_t candidate(size_t d, const double *mb, const double *sb,
                                       const double *delta, double eta, int scaled, double *nm,
                                       double *ns) {
    double lim = BSVI_MAX_LOG_STD;
    uint64_t lb, bad = 0;
    memcpy(&lb, &lim, sizeof lb);
    if (scaled) {
        for (size_t j = 0; j < d; ++j) {
            const double a = mb[j] + eta * delta[j], c = sb[j] + eta * delta[d + j];
            nm[j] = a;
            ns[j] = c;
            bad |= nonfinite_bit(a) | outside_bit(c, lb);
        }
    } else {
        for (size_t j = 0; j < d; ++j) {
            const double a = mb[j] + delta[j], c = sb[j] + delta[d + j];
            nm[j] = a;
            ns[j] = c;
            bad |= nonfinite_bit(a) | outside_bit(c, lb);
        }
    }
    /* "ns in [MIN, MAX]" is |ns| <= MAX for the symmetric bounds of proposal.h; were they
     * not, every step would be rescanned by the exact test. */
    return (bad >> 63) | (BSVI_MIN_LOG_STD != -BSVI_MAX_LOG_STD);
}

/* The step of one data point, delta written over dir (2d): momentum and Adam. Returns the
 * first coordinate whose Adam moment estimate overflows, or 2d. */
BSVI__CLONES static size_t step_delta(const bsvi__svi_cfg *cfg, size_t n2, double b1t,
                                      double b2t, double *dir, double *v1, double *v2) {
    if (cfg->rule == BSVI_STEP_MOMENTUM) {
        const double beta = cfg->beta, eta = cfg->eta;
        for (size_t j = 0; j < n2; ++j) {
            v1[j] = beta * v1[j] + dir[j];
            dir[j] = eta * v1[j];
        }
        return n2;
    }
    /* Adam (the update shared with the buffer weights' optimiser) */
    const double d1 = 1.0 - b1t, d2 = 1.0 - b2t;
    if (!bsvi__adam_update(n2, cfg->beta1, cfg->beta2, d1, d2, cfg->eta, cfg->adam_eps, dir, v1,
                           v2, dir))
        return n2;
    for (size_t j = 0; j < n2; ++j)
        if (!isfinite(v1[j] / d1) || !isfinite(v2[j] / d2)) return j;
    return n2;
}

/* Scales one data point's direction (2d) to norm at most clip, also when its squared norm
 * overflows (below). */
static void clip_dir(double clip, size_t n2, double *dir) {
    double nrm = 0.0;
    for (size_t j = 0; j < n2; ++j) nrm += dir[j] * dir[j];
    nrm = sqrt(nrm);
    if (nrm > clip && isfinite(nrm)) {
        const double sc = clip / nrm;
        for (size_t j = 0; j < n2; ++j) dir[j] *= sc;
    } else if (nrm == INFINITY) {
        /* A finite direction is clipped to norm clip even when its squared norm
         * overflows (entries of about 1e155 or more), rather than scaled by
         * clip / inf = 0 into a zero step: the norm is taken relative to the largest
         * entry, |dir| = a * r with r in [1, sqrt(2d)]. (A non-finite entry stays
         * non-finite and the caller treats it as divergence.) */
        double a = 0.0;
        for (size_t j = 0; j < n2; ++j)
            if (fabs(dir[j]) > a) a = fabs(dir[j]);
        if (isfinite(a)) {
            double r = 0.0;
            for (size_t j = 0; j < n2; ++j) r += (dir[j] / a) * (dir[j] / a);
            const double sc = clip / sqrt(r);
            for (size_t j = 0; j < n2; ++j) dir[j] = (dir[j] / a) * sc;
        }
    }
}

bsvi_status bsvi__svi_refine(const bsvi__svi_cfg *cfg, bsvi__svi_ws *ws, const bsvi_model *model,
                             const double *mu0, const double *s0, size_t nb, size_t b_first,
                             size_t d, const bsvi__rng *rng, bsvi__trajdata *rec,
                             double *lse_max, double *lse_sum, double *final_mu,
                             double *final_s, char *err) {
    const size_t k = cfg->k, m = cfg->m, K = k + 1;
    const int ds = cfg->ds ? 1 : 0;
    const size_t rows_max = nb * (m + (size_t)ds);
    /* No draw repeats within a step: one data point's stream holds 2^33 normals per step
     * (see rng.h), so m * dim above that is refused, before anything is allocated. */
    if ((uint64_t)m * (uint64_t)d > BSVI__MAX_STREAM_NORMALS)
        return bsvi__fail(err, BSVI_ERR_OUT_OF_RANGE,
                          "samples per step * dim = %zu * %zu exceeds the 2^33 normals one data "
                          "point's stream holds per step",
                          m, d);
    if (ws_reserve(ws, nb, rows_max, d, model->prior != NULL))
        return bsvi__fail(err, BSVI_ERR_NO_MEMORY, "out of memory sizing the SVI workspace");

    /* lambda of the current step. With a buffer, lambda_i lives in its slot i (the buffer
     * is slot-major: row (i, b) at (i nb + b) d) and each step writes slot i+1: nothing is
     * copied into the buffer afterwards. Without one, two workspace copies alternate. With
     * one sample per step and no double sampling, z is also formed in its slot and the
     * model reads it there. */
    const size_t nbd = nb * d;
    double *mu, *s, *mu_nx, *s_nx;
    if (rec) {
        mu = rec->mu;
        s = rec->s;
    } else {
        mu = ws->mu;
        s = ws->s;
    }
    memcpy(mu, mu0, nbd * sizeof *mu);
    memcpy(s, s0, nbd * sizeof *s);
    const int direct = rec && m == 1 && !ds;
    if (cfg->rule != BSVI_STEP_GRADIENT) memset(ws->v1, 0, 4 * nbd * sizeof *ws->v1);
    for (size_t b = 0; b < nb; ++b) ws->taken[b] = SIZE_MAX; /* active */
    const double half_log2pi_d = 0.5 * (double)d * BSVI__LOG_2PI;
    const int grad_mode_on =
        (cfg->form == BSVI_GRAD_ANALYTIC_KL) ? BSVI__GRAD_LIK : BSVI__GRAD_JOINT;
    double b1t = 1.0, b2t = 1.0;

    for (size_t i = 0; i <= k; ++i) {
        const int need_grad = (i < k) || (i == 0);
        const size_t n_u = need_grad ? m : (ds ? 0 : 1);
        const size_t rows = nb * (n_u + (size_t)ds);
        const uint32_t step = (uint32_t)i;
        double *zs = direct ? rec->z + i * nbd : ws->z; /* the rows the model reads */

        /* Draw eps for every row and form z = mu + sigma * eps. */
        bsvi__exp_array(ws->sig, s, nbd);
        /* every data point's normals in one pass when the counts are even */
        const int upd_all = ((n_u * d) % 2 == 0), rec_all = ds && (d % 2 == 0);
        if (upd_all)
            bsvi__normals_streams(rng, b_first, nb, step, BSVI__PURPOSE_UPDATE, n_u * d,
                                  ws->eps);
        if (rec_all)
            bsvi__normals_streams(rng, b_first, nb, step, BSVI__PURPOSE_RECORD, d,
                                  ws->eps + nb * n_u * d);
        for (size_t b = 0; b < nb; ++b) {
            const uint64_t id = (uint64_t)(b_first + b);
            const double *mb = mu + b * d, *sg = ws->sig + b * d;
            double *e = ws->eps + b * n_u * d;
            if (!upd_all) bsvi__normals(rng, id, step, BSVI__PURPOSE_UPDATE, 0, n_u * d, e);
            z_rows(n_u, d, mb, sg, e, zs + b * n_u * d);
            for (size_t r = 0; r < n_u; ++r) ws->idx[b * n_u + r] = b_first + b;
            if (ds) {
                const size_t row = nb * n_u + b;
                if (!rec_all)
                    bsvi__normals(rng, id, step, BSVI__PURPOSE_RECORD, 0, d, ws->eps + row * d);
                z_rows(1, d, mb, sg, ws->eps + row * d, zs + row * d);
                ws->idx[row] = b_first + b;
            }
        }

        bsvi_status st = bsvi__model_eval(model, rows, zs, ws->idx, ws->lik, ws->prior,
                                          need_grad ? grad_mode_on : BSVI__GRAD_NONE, ws->g,
                                          ws->gscratch, ws->stats, err);
        if (st != BSVI_OK) {
            size_t len = strlen(err);
            if (len + 32 < BSVI__ERRLEN)
                snprintf(err + len, BSVI__ERRLEN - len, " (SVI step %zu)", i);
            return st;
        }

        /* Record slot i (lambda_i is already in it when there is a buffer). */
        log_q_rows(nb, d, half_log2pi_d, s, d, ws->eps + (ds ? nb * n_u * d : 0),
                   ds ? d : n_u * d, ws->lq);
        for (size_t b = 0; b < nb; ++b) {
            const size_t row = ds ? nb * n_u + b : b * n_u;
            const double lq = ws->lq[b];
            const double lp = ws->lik[row] + ws->prior[row];
            const double lw = lp - lq;
            if (rec) {
                const size_t at = b * K + i;
                rec->logw[at] = lw;
                rec->logp[at] = lp;
                rec->logq[at] = lq;
                if (!direct)
                    memcpy(rec->z + (i * nb + b) * d, ws->z + row * d, d * sizeof(double));
            } else {
                bsvi__lse_push(&lse_max[b], &lse_sum[b], lw);
            }
        }
        if (!need_grad) {
            if (cfg->progress &&
                cfg->progress(cfg->progress_base + (i + 1) * nb, cfg->progress_total,
                              cfg->progress_data) != 0)
                return bsvi__fail(err, BSVI_ERR_CANCELLED,
                                  "cancelled by the progress callback after SVI step %zu", i);
            break;
        }

        /* Gradient direction per data point, averaged over the n_u update samples. */
        const double wgt = 1.0 / (double)n_u;
        for (size_t b = 0; b < nb; ++b) {
            double *dmu = ws->dir + 2 * b * d, *dsg = dmu + d;
            int first = 1;
            for (size_t r = 0; r < n_u; ++r) {
                const size_t row = b * n_u + r;
                if (ws->lik[row] == -INFINITY || ws->prior[row] == -INFINITY)
                    continue; /* log w undefined: the sample contributes nothing */
                (first ? grad_first : grad_more)(cfg->form, d, ws->g + row * d,
                                                 ws->eps + row * d, mu + b * d,
                                                 ws->sig + b * d, wgt, dmu, dsg);
                first = 0;
            }
            if (first) memset(dmu, 0, 2 * d * sizeof *dmu);
            if (i == 0 && rec) {
                /* The step-0 direction is the encoder gradient returned to the host, so it
                 * is never recorded non-finite under BSVI_OK: when huge host gradients
                 * times sigma overflow it (inf, or NaN from opposite infinities), the run
                 * fails under either divergence policy (tests/test_robustness.c). */
                for (size_t j = 0; j < 2 * d; ++j)
                    if (!isfinite(dmu[j]))
                        return bsvi__fail(err, BSVI_ERR_NUMERIC,
                                          "the encoder gradient (SVI step-0 direction) of data "
                                          "point %zu is not finite (%s coordinate %zu): the "
                                          "host's gradient or the proposal's scale is too large",
                                          b_first + b, j < d ? "mean" : "log-std", j % d);
                memcpy(rec->enc_mu + b * d, dmu, d * sizeof(double));
                memcpy(rec->enc_s + b * d, dsg, d * sizeof(double));
            }
        }
        if (cfg->progress &&
            cfg->progress(cfg->progress_base + (i + 1) * nb, cfg->progress_total,
                          cfg->progress_data) != 0)
            return bsvi__fail(err, BSVI_ERR_CANCELLED, "cancelled by the progress callback "
                              "after SVI step %zu", i);
        if (i == k) break;

        /* Step: lambda_{i+1} into the next slot (or the other workspace copy). */
        if (rec) {
            mu_nx = rec->mu + (i + 1) * nbd;
            s_nx = rec->s + (i + 1) * nbd;
        } else {
            mu_nx = (mu == ws->mu) ? ws->mu2 : ws->mu;
            s_nx = (s == ws->s) ? ws->s2 : ws->s;
        }
        if (cfg->rule == BSVI_STEP_ADAM) {
            b1t *= cfg->beta1;
            b2t *= cfg->beta2;
        }
        for (size_t b = 0; b < nb; ++b) {
            double *mb = mu + b * d, *sb = s + b * d, *nm = mu_nx + b * d, *ns = s_nx + b * d;
            if (ws->taken[b] != SIZE_MAX) { /* frozen after divergence */
                memcpy(nm, mb, d * sizeof *nm);
                memcpy(ns, sb, d * sizeof *ns);
                continue;
            }
            double *dir = ws->dir + 2 * b * d;
            if (cfg->clip > 0.0) clip_dir(cfg->clip, 2 * d, dir);
            /* A step whose optimiser state overflows is divergence, like a non-finite
             * candidate: Adam's second moment of a 1e200 direction is +inf, which would
             * otherwise give a step of exactly 0 for ever to a point never counted as
             * diverged. step_delta reports the first overflowing coordinate. */
            size_t overflow = 2 * d;
            uint64_t any_bad;
            if (cfg->rule == BSVI_STEP_GRADIENT) {
                any_bad = candidate(d, mb, sb, dir, cfg->eta, 1, nm, ns);
                if (any_bad) /* the message reports the step: delta = eta * dir */
                    for (size_t j = 0; j < 2 * d; ++j) dir[j] = cfg->eta * dir[j];
            } else {
                overflow = step_delta(cfg, 2 * d, b1t, b2t, dir, ws->v1 + 2 * b * d,
                                      ws->v2 + 2 * b * d);
                any_bad = candidate(d, mb, sb, dir, 0.0, 0, nm, ns);
            }
            if (!any_bad && overflow == 2 * d) continue;
            /* The whole candidate is checked before it counts, so that a frozen data point
             * keeps its last finite lambda. */
            size_t bad = overflow < 2 * d ? overflow % d : d;
            for (size_t j = 0; j < d && bad == d; ++j) {
                const double cm = mb[j] + dir[j], cs = sb[j] + dir[d + j];
                if (!isfinite(cm) || !(cs >= BSVI_MIN_LOG_STD && cs <= BSVI_MAX_LOG_STD)) bad = j;
            }
            if (bad < d) {
                if (cfg->divergence == BSVI_DIVERGENCE_FREEZE) {
                    ws->taken[b] = i;
                    memcpy(nm, mb, d * sizeof *nm);
                    memcpy(ns, sb, d * sizeof *ns);
                    continue;
                }
                if (overflow < 2 * d)
                    return bsvi__fail(err, BSVI_ERR_NUMERIC,
                                      "SVI step %zu diverged at data point %zu: Adam's moment "
                                      "estimates overflow (%s coordinate %zu, direction too "
                                      "large); lower the step size, clip, or use "
                                      "BSVI_DIVERGENCE_FREEZE",
                                      i, b_first + b, overflow < d ? "mean" : "log-std",
                                      overflow % d);
                return bsvi__fail(err, BSVI_ERR_NUMERIC,
                                  "SVI step %zu diverged at data point %zu (coordinate %zu: mean "
                                  "%g, log-std %g after the step); lower the step size, clip, or "
                                  "use BSVI_DIVERGENCE_FREEZE",
                                  i, b_first + b, bad, mb[bad] + dir[bad], sb[bad] + dir[d + bad]);
            }
        }
        mu = mu_nx;
        s = s_nx;
    }
    if (rec)
        for (size_t b = 0; b < nb; ++b) rec->taken[b] = (ws->taken[b] == SIZE_MAX) ? k : ws->taken[b];
    if (final_mu) memcpy(final_mu, mu, nbd * sizeof *mu);
    if (final_s) memcpy(final_s, s, nbd * sizeof *s);
    return BSVI_OK;
}

/* ---- options and names -------------------------------------------------- */

static int unit_interval(double x) { return x >= 0.0 && x < 1.0; }

bsvi_svi_options bsvi_svi_options_default(void) {
    bsvi_svi_options o;
    memset(&o, 0, sizeof o);
    o.steps = 10;
    o.step_size = 1e-3;
    o.samples_per_step = 1;
    o.rule = BSVI_STEP_GRADIENT;
    o.momentum = 0.5;
    o.adam_beta1 = 0.9;
    o.adam_beta2 = 0.999;
    o.adam_epsilon = 1e-8;
    o.clip_norm = 0.0;
    o.grad_form = BSVI_GRAD_PATHWISE;
    o.double_sampling = 0;
    o.divergence = BSVI_DIVERGENCE_FAIL;
    return o;
}

bsvi_status bsvi__svi_options_check(const bsvi_svi_options *o, int check_steps, char *err,
                                    const char *fn) {
    if (check_steps && o->steps > BSVI_MAX_STEPS)
        return bsvi__fail(err, BSVI_ERR_OUT_OF_RANGE, "%s: steps = %zu exceeds %zu", fn,
                          o->steps, (size_t)BSVI_MAX_STEPS);
    if (!(o->step_size > 0.0) || !isfinite(o->step_size))
        return bsvi__fail(err, BSVI_ERR_BAD_VALUE, "%s: step_size = %g must be finite and > 0",
                          fn, o->step_size);
    if (o->samples_per_step == 0)
        return bsvi__fail(err, BSVI_ERR_ZERO_SIZE, "%s: samples_per_step is 0", fn);
    if (o->samples_per_step > BSVI_MAX_SAMPLES)
        return bsvi__fail(err, BSVI_ERR_OUT_OF_RANGE, "%s: samples_per_step = %zu exceeds %zu",
                          fn, o->samples_per_step, (size_t)BSVI_MAX_SAMPLES);
    if (!bsvi_step_rule_name(o->rule))
        return bsvi__fail(err, BSVI_ERR_BAD_VALUE, "%s: unknown step rule %d", fn, (int)o->rule);
    if (!unit_interval(o->momentum))
        return bsvi__fail(err, BSVI_ERR_BAD_VALUE, "%s: momentum = %g must be in [0, 1)", fn,
                          o->momentum);
    if (!unit_interval(o->adam_beta1) || !unit_interval(o->adam_beta2) ||
        !(o->adam_epsilon > 0.0) || !isfinite(o->adam_epsilon))
        return bsvi__fail(err, BSVI_ERR_BAD_VALUE,
                          "%s: need adam_beta1, adam_beta2 in [0, 1) and adam_epsilon > 0 (got "
                          "%g, %g, %g)",
                          fn, o->adam_beta1, o->adam_beta2, o->adam_epsilon);
    if (!(o->clip_norm >= 0.0) || !isfinite(o->clip_norm))
        return bsvi__fail(err, BSVI_ERR_BAD_VALUE, "%s: clip_norm = %g must be finite and >= 0",
                          fn, o->clip_norm);
    if (o->grad_form != BSVI_GRAD_PATHWISE && o->grad_form != BSVI_GRAD_STL &&
        o->grad_form != BSVI_GRAD_ANALYTIC_KL)
        return bsvi__fail(err, BSVI_ERR_BAD_VALUE,
                          "%s: grad_form %d is not valid for SVI (pathwise, STL or analytic KL)",
                          fn, (int)o->grad_form);
    if (o->double_sampling != 0 && o->double_sampling != 1)
        return bsvi__fail(err, BSVI_ERR_BAD_VALUE, "%s: double_sampling must be 0 or 1, got %d",
                          fn, o->double_sampling);
    if (!bsvi_divergence_policy_name(o->divergence))
        return bsvi__fail(err, BSVI_ERR_BAD_VALUE, "%s: unknown divergence policy %d", fn,
                          (int)o->divergence);
    return BSVI_OK;
}

void bsvi__svi_cfg_set(bsvi__svi_cfg *cfg, const bsvi_svi_options *o) {
    cfg->k = o->steps;
    cfg->m = o->samples_per_step;
    cfg->eta = o->step_size;
    cfg->rule = o->rule;
    cfg->beta = o->momentum;
    cfg->beta1 = o->adam_beta1;
    cfg->beta2 = o->adam_beta2;
    cfg->adam_eps = o->adam_epsilon;
    cfg->clip = o->clip_norm;
    cfg->form = o->grad_form;
    cfg->ds = o->double_sampling;
    cfg->divergence = o->divergence;
}

void bsvi__svi_cfg_get(const bsvi__svi_cfg *cfg, bsvi_svi_options *o) {
    *o = bsvi_svi_options_default();
    o->steps = cfg->k;
    o->samples_per_step = cfg->m;
    o->step_size = cfg->eta;
    o->rule = cfg->rule;
    o->momentum = cfg->beta;
    o->adam_beta1 = cfg->beta1;
    o->adam_beta2 = cfg->beta2;
    o->adam_epsilon = cfg->adam_eps;
    o->clip_norm = cfg->clip;
    o->grad_form = cfg->form;
    o->double_sampling = cfg->ds;
    o->divergence = cfg->divergence;
}

static const char *const rule_names[] = {"gradient", "momentum", "adam"};
static const char *const form_names[] = {"pathwise", "stl", "analytic-kl", "dreg"};
static const char *const policy_names[] = {"fail", "freeze"};

static const char *name_of(const char *const *names, size_t n, int v) {
    return (v >= 0 && (size_t)v < n) ? names[v] : NULL;
}

static int index_of(const char *const *names, size_t n, const char *name) {
    for (size_t i = 0; i < n; ++i)
        if (strcmp(names[i], name) == 0) return (int)i;
    return -1;
}

#define BSVI__NAMES(arr) arr, sizeof arr / sizeof *arr

const char *bsvi_step_rule_name(bsvi_step_rule rule) {
    return name_of(BSVI__NAMES(rule_names), (int)rule);
}
const char *bsvi_grad_form_name(bsvi_grad_form form) {
    return name_of(BSVI__NAMES(form_names), (int)form);
}
const char *bsvi_divergence_policy_name(bsvi_divergence_policy policy) {
    return name_of(BSVI__NAMES(policy_names), (int)policy);
}

bsvi_status bsvi_step_rule_from_name(const char *name, bsvi_step_rule *out) {
    if (!name || !out) return BSVI_ERR_NULL_ARGUMENT;
    const int i = index_of(BSVI__NAMES(rule_names), name);
    if (i < 0) return BSVI_ERR_BAD_VALUE;
    *out = (bsvi_step_rule)i;
    return BSVI_OK;
}
bsvi_status bsvi_grad_form_from_name(const char *name, bsvi_grad_form *out) {
    if (!name || !out) return BSVI_ERR_NULL_ARGUMENT;
    const int i = index_of(BSVI__NAMES(form_names), name);
    if (i < 0) return BSVI_ERR_BAD_VALUE;
    *out = (bsvi_grad_form)i;
    return BSVI_OK;
}
bsvi_status bsvi_divergence_policy_from_name(const char *name, bsvi_divergence_policy *out) {
    if (!name || !out) return BSVI_ERR_NULL_ARGUMENT;
    const int i = index_of(BSVI__NAMES(policy_names), name);
    if (i < 0) return BSVI_ERR_BAD_VALUE;
    *out = (bsvi_divergence_policy)i;
    return BSVI_OK;
}

/* ---- public handle ------------------------------------------------------ */

bsvi_status bsvi_svi_create(size_t dim, bsvi_svi **out) {
    if (!out) return BSVI_ERR_NULL_ARGUMENT;
    *out = NULL;
    if (dim == 0) return BSVI_ERR_ZERO_SIZE;
    if (dim > BSVI_MAX_DIM) return BSVI_ERR_OUT_OF_RANGE;
    bsvi_svi *v = (bsvi_svi *)calloc(1, sizeof *v);
    if (!v) return BSVI_ERR_NO_MEMORY;
    v->dim = dim;
    const bsvi_svi_options o = bsvi_svi_options_default();
    bsvi__svi_cfg_set(&v->cfg, &o);
    *out = v;
    return BSVI_OK;
}

static void svi_free(bsvi_svi *svi) {
    bsvi__svi_ws_free(&svi->ws);
    bsvi__trajdata_free(&svi->stage);
    free(svi);
}

void bsvi_svi_destroy(bsvi_svi *svi) {
    if (!svi) return;
    if (bsvi__busy(&svi->use)) { /* held by a running call: freed at its release */
        svi->doomed = 1;
        return;
    }
    svi_free(svi);
}

static void svi_release(const bsvi_svi *svi) {
    if (bsvi__drop(&svi->use) && svi->doomed) svi_free((bsvi_svi *)svi);
}

static bsvi_status refuse_in_use(bsvi_svi *svi, const char *fn) {
    return bsvi__fail(svi->err, BSVI_ERR_REENTRANT,
                      "%s: the SVI handle is in use by a running call (re-entered from a "
                      "callback?); it can be read but not changed until that call returns",
                      fn);
}

bsvi_status bsvi_svi_set_options(bsvi_svi *svi, const bsvi_svi_options *options) {
    static const char fn[] = "bsvi_svi_set_options";
    if (!svi) return BSVI_ERR_NULL_ARGUMENT;
    if (bsvi__busy(&svi->use)) return refuse_in_use(svi, fn);
    if (!options) return bsvi__fail(svi->err, BSVI_ERR_NULL_ARGUMENT, "%s: options is NULL", fn);
    bsvi_status st = bsvi__svi_options_check(options, 1, svi->err, fn);
    if (st != BSVI_OK) return st;
    bsvi__svi_cfg_set(&svi->cfg, options);
    return BSVI_OK;
}

bsvi_status bsvi_svi_get_options(const bsvi_svi *svi, bsvi_svi_options *out) {
    if (!svi) return BSVI_ERR_NULL_ARGUMENT;
    if (!out)
        return bsvi__fail((char *)svi->err, BSVI_ERR_NULL_ARGUMENT,
                          "bsvi_svi_get_options: out is NULL");
    bsvi__svi_cfg_get(&svi->cfg, out);
    return BSVI_OK;
}

bsvi_status bsvi_svi_get_stream(const bsvi_svi *svi, uint64_t *seed, uint64_t *counter,
                                uint64_t *id_offset) {
    if (!svi) return BSVI_ERR_NULL_ARGUMENT;
    if (seed) *seed = svi->rng.seed;
    if (counter) *counter = svi->rng.counter;
    if (id_offset) *id_offset = svi->rng.id_offset;
    return BSVI_OK;
}

bsvi_status bsvi_svi_get_stats(const bsvi_svi *svi, bsvi_stats *out) {
    if (!svi) return BSVI_ERR_NULL_ARGUMENT;
    if (!out)
        return bsvi__fail((char *)svi->err, BSVI_ERR_NULL_ARGUMENT,
                          "bsvi_svi_get_stats: out is NULL");
    *out = svi->stats;
    return BSVI_OK;
}

bsvi_status bsvi_svi_reset_stats(bsvi_svi *svi) {
    if (!svi) return BSVI_ERR_NULL_ARGUMENT;
    if (bsvi__busy(&svi->use)) return refuse_in_use(svi, "bsvi_svi_reset_stats");
    memset(&svi->stats, 0, sizeof svi->stats);
    return BSVI_OK;
}

bsvi_status bsvi_svi_set_steps(bsvi_svi *svi, size_t k) {
    if (!svi) return BSVI_ERR_NULL_ARGUMENT;
    if (bsvi__busy(&svi->use)) return refuse_in_use(svi, "bsvi_svi_set_steps");
    if (k > BSVI_MAX_STEPS)
        return bsvi__fail(svi->err, BSVI_ERR_OUT_OF_RANGE,
                          "bsvi_svi_set_steps: k = %zu exceeds BSVI_MAX_STEPS = %zu", k,
                          (size_t)BSVI_MAX_STEPS);
    svi->cfg.k = k;
    return BSVI_OK;
}

bsvi_status bsvi_svi_set_step_size(bsvi_svi *svi, double eta) {
    if (!svi) return BSVI_ERR_NULL_ARGUMENT;
    if (bsvi__busy(&svi->use)) return refuse_in_use(svi, "bsvi_svi_set_step_size");
    if (!(eta > 0.0) || !isfinite(eta))
        return bsvi__fail(svi->err, BSVI_ERR_BAD_VALUE,
                          "bsvi_svi_set_step_size: eta = %g must be finite and > 0", eta);
    svi->cfg.eta = eta;
    return BSVI_OK;
}

bsvi_status bsvi_svi_set_samples_per_step(bsvi_svi *svi, size_t m) {
    if (!svi) return BSVI_ERR_NULL_ARGUMENT;
    if (bsvi__busy(&svi->use)) return refuse_in_use(svi, "bsvi_svi_set_samples_per_step");
    if (m == 0)
        return bsvi__fail(svi->err, BSVI_ERR_ZERO_SIZE,
                          "bsvi_svi_set_samples_per_step: m is 0");
    if (m > BSVI_MAX_SAMPLES)
        return bsvi__fail(svi->err, BSVI_ERR_OUT_OF_RANGE,
                          "bsvi_svi_set_samples_per_step: m = %zu exceeds %zu", m,
                          (size_t)BSVI_MAX_SAMPLES);
    svi->cfg.m = m;
    return BSVI_OK;
}

bsvi_status bsvi_svi_set_step_rule(bsvi_svi *svi, bsvi_step_rule rule) {
    if (!svi) return BSVI_ERR_NULL_ARGUMENT;
    if (bsvi__busy(&svi->use)) return refuse_in_use(svi, "bsvi_svi_set_step_rule");
    if (rule != BSVI_STEP_GRADIENT && rule != BSVI_STEP_MOMENTUM && rule != BSVI_STEP_ADAM)
        return bsvi__fail(svi->err, BSVI_ERR_BAD_VALUE,
                          "bsvi_svi_set_step_rule: unknown step rule %d", (int)rule);
    svi->cfg.rule = rule;
    return BSVI_OK;
}

bsvi_status bsvi_svi_set_momentum(bsvi_svi *svi, double beta) {
    if (!svi) return BSVI_ERR_NULL_ARGUMENT;
    if (bsvi__busy(&svi->use)) return refuse_in_use(svi, "bsvi_svi_set_momentum");
    if (!unit_interval(beta))
        return bsvi__fail(svi->err, BSVI_ERR_BAD_VALUE,
                          "bsvi_svi_set_momentum: beta = %g must be in [0, 1)", beta);
    svi->cfg.beta = beta;
    return BSVI_OK;
}

bsvi_status bsvi_svi_set_adam(bsvi_svi *svi, double beta1, double beta2, double epsilon) {
    if (!svi) return BSVI_ERR_NULL_ARGUMENT;
    if (bsvi__busy(&svi->use)) return refuse_in_use(svi, "bsvi_svi_set_adam");
    if (!unit_interval(beta1) || !unit_interval(beta2) || !(epsilon > 0.0) || !isfinite(epsilon))
        return bsvi__fail(svi->err, BSVI_ERR_BAD_VALUE,
                          "bsvi_svi_set_adam: need beta1, beta2 in [0, 1) and epsilon > 0 "
                          "(got %g, %g, %g)",
                          beta1, beta2, epsilon);
    svi->cfg.beta1 = beta1;
    svi->cfg.beta2 = beta2;
    svi->cfg.adam_eps = epsilon;
    return BSVI_OK;
}

bsvi_status bsvi_svi_set_clip_norm(bsvi_svi *svi, double max_norm) {
    if (!svi) return BSVI_ERR_NULL_ARGUMENT;
    if (bsvi__busy(&svi->use)) return refuse_in_use(svi, "bsvi_svi_set_clip_norm");
    if (!(max_norm >= 0.0) || !isfinite(max_norm))
        return bsvi__fail(svi->err, BSVI_ERR_BAD_VALUE,
                          "bsvi_svi_set_clip_norm: max_norm = %g must be finite and >= 0",
                          max_norm);
    svi->cfg.clip = max_norm;
    return BSVI_OK;
}

bsvi_status bsvi_svi_set_grad_form(bsvi_svi *svi, bsvi_grad_form form) {
    if (!svi) return BSVI_ERR_NULL_ARGUMENT;
    if (bsvi__busy(&svi->use)) return refuse_in_use(svi, "bsvi_svi_set_grad_form");
    if (form != BSVI_GRAD_PATHWISE && form != BSVI_GRAD_STL && form != BSVI_GRAD_ANALYTIC_KL)
        return bsvi__fail(svi->err, BSVI_ERR_BAD_VALUE,
                          "bsvi_svi_set_grad_form: form %d is not valid for SVI (pathwise, STL "
                          "or analytic KL)",
                          (int)form);
    svi->cfg.form = form;
    return BSVI_OK;
}

bsvi_status bsvi_svi_set_double_sampling(bsvi_svi *svi, int enabled) {
    if (!svi) return BSVI_ERR_NULL_ARGUMENT;
    if (bsvi__busy(&svi->use)) return refuse_in_use(svi, "bsvi_svi_set_double_sampling");
    if (enabled != 0 && enabled != 1)
        return bsvi__fail(svi->err, BSVI_ERR_BAD_VALUE,
                          "bsvi_svi_set_double_sampling: enabled must be 0 or 1, got %d",
                          enabled);
    svi->cfg.ds = enabled;
    return BSVI_OK;
}

bsvi_status bsvi_svi_set_divergence_policy(bsvi_svi *svi, bsvi_divergence_policy policy) {
    if (!svi) return BSVI_ERR_NULL_ARGUMENT;
    if (bsvi__busy(&svi->use)) return refuse_in_use(svi, "bsvi_svi_set_divergence_policy");
    if (policy != BSVI_DIVERGENCE_FAIL && policy != BSVI_DIVERGENCE_FREEZE)
        return bsvi__fail(svi->err, BSVI_ERR_BAD_VALUE,
                          "bsvi_svi_set_divergence_policy: unknown policy %d", (int)policy);
    svi->cfg.divergence = policy;
    return BSVI_OK;
}

bsvi_status bsvi_svi_set_progress(bsvi_svi *svi, bsvi_progress_fn fn, void *user_data) {
    if (!svi) return BSVI_ERR_NULL_ARGUMENT;
    if (bsvi__busy(&svi->use)) return refuse_in_use(svi, "bsvi_svi_set_progress");
    svi->cfg.progress = fn;
    svi->cfg.progress_data = user_data;
    return BSVI_OK;
}

bsvi_status bsvi_svi_set_seed(bsvi_svi *svi, uint64_t seed) {
    if (!svi) return BSVI_ERR_NULL_ARGUMENT;
    if (bsvi__busy(&svi->use)) return refuse_in_use(svi, "bsvi_svi_set_seed");
    svi->rng.seed = seed;
    svi->rng.counter = 0;
    return BSVI_OK;
}

bsvi_status bsvi_svi_set_stream(bsvi_svi *svi, uint64_t counter, uint64_t id_offset) {
    if (!svi) return BSVI_ERR_NULL_ARGUMENT;
    if (bsvi__busy(&svi->use)) return refuse_in_use(svi, "bsvi_svi_set_stream");
    svi->rng.counter = counter;
    svi->rng.id_offset = id_offset;
    return BSVI_OK;
}

size_t bsvi_svi_steps(const bsvi_svi *svi) { return svi ? svi->cfg.k : 0; }
double bsvi_svi_step_size(const bsvi_svi *svi) { return svi ? svi->cfg.eta : NAN; }

const char *bsvi_svi_last_error(const bsvi_svi *svi) {
    return svi ? svi->err : "NULL SVI handle";
}

/* bsvi_svi_run once its handles are checked and held. */
static bsvi_status run(bsvi_svi *svi, const bsvi_model *model, const bsvi_proposal *q,
                       bsvi_trajectory *out) {
    bsvi_status st = bsvi__model_check(model, svi->dim, svi->err);
    if (st != BSVI_OK) return st;
    if (q->dim != svi->dim)
        return bsvi__fail(svi->err, BSVI_ERR_SIZE_MISMATCH,
                          "bsvi_svi_run: the proposal's dimension %zu differs from the SVI "
                          "handle's %zu",
                          q->dim, svi->dim);
    if (svi->cfg.form == BSVI_GRAD_ANALYTIC_KL && model->prior != NULL)
        return bsvi__fail(svi->err, BSVI_ERR_BAD_STATE,
                          "bsvi_svi_run: the analytic-KL gradient needs the standard normal "
                          "prior, but the model has a host prior");
    if (bsvi__trajdata_reserve(&svi->stage, q->batch, svi->cfg.k, svi->dim)) {
        svi->stage.valid = 0;
        return bsvi__fail(svi->err, BSVI_ERR_NO_MEMORY,
                          "bsvi_svi_run: cannot allocate a buffer of %zu x %zu x %zu", q->batch,
                          svi->cfg.k + 1, svi->dim);
    }
    bsvi__svi_cfg cfg = svi->cfg;
    cfg.progress_base = 0;
    cfg.progress_total = q->batch * (svi->cfg.k + 1);
    bsvi_stats calls = {0};
    svi->ws.stats = &calls;
    st = bsvi__svi_refine(&cfg, &svi->ws, model, q->mean, q->log_std, q->batch, 0, svi->dim,
                          &svi->rng, &svi->stage, NULL, NULL, NULL, NULL, svi->err);
    svi->ws.stats = NULL;
    if (st != BSVI_OK) return st;
    calls.calls = 1;
    calls.data_points = q->batch;
    calls.svi_steps = svi->cfg.k;
    bsvi__stats_add(&svi->stats, &calls);
    svi->stage.valid = 1;
    svi->stage.ds = svi->cfg.ds;
    bsvi__trajdata tmp = out->data;
    out->data = svi->stage;
    svi->stage = tmp;
    svi->stage.valid = 0;
    out->err[0] = '\0';
    svi->rng.counter++;
    return BSVI_OK;
}

bsvi_status bsvi_svi_run(bsvi_svi *svi, const bsvi_model *model, const bsvi_proposal *q,
                         bsvi_trajectory *out) {
    if (!svi) return BSVI_ERR_NULL_ARGUMENT;
    /* A callback running this handle again (or writing the trajectory being filled) would
     * regrow and free the workspace the outer run is reading. */
    if (bsvi__busy(&svi->use)) return refuse_in_use(svi, "bsvi_svi_run");
    if (!model || !q || !out)
        return bsvi__fail(svi->err, BSVI_ERR_NULL_ARGUMENT,
                          "bsvi_svi_run: model, proposal and trajectory must not be NULL");
    if (bsvi__busy(&out->use))
        return bsvi__fail(svi->err, BSVI_ERR_REENTRANT,
                          "bsvi_svi_run: the output trajectory is in use: being filled by a "
                          "running bsvi_svi_run (re-entered from a callback?)");
    bsvi__hold(&svi->use);
    bsvi__hold(&model->use);
    bsvi__hold(&q->use);
    bsvi__hold(&out->use);
    bsvi_status st = run(svi, model, q, out);
    bsvi__traj_release(out);
    bsvi__proposal_release(q);
    bsvi__model_release(model);
    svi_release(svi);
    return st;
}

/* ---- private access (svi_private.h) ----------------------------------------------- */

char *bsvi__svi_errbuf(bsvi_svi *svi) { return svi->err; }
size_t bsvi__svi_dim(const bsvi_svi *svi) { return svi->dim; }

bsvi_status bsvi__svi_hold(bsvi_svi *svi, const char *fn) {
    if (bsvi__busy(&svi->use)) return refuse_in_use(svi, fn);
    bsvi__hold(&svi->use);
    return BSVI_OK;
}

void bsvi__svi_release(bsvi_svi *svi) { svi_release(svi); }
