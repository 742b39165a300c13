#include "testutil.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>

void tu_half_gauss(size_t n, size_t dim, const double *z, double *log_density, double *grad,
                   double grad_scale)
{
    for (size_t r = 0; r < n; ++r) {
        double ss = 0.0;
        for (size_t j = 0; j < dim; ++j) {
            const double e = 0.5 - z[r * dim + j];
            ss += e * e;
            if (grad != NULL) {
                grad[r * dim + j] = grad_scale * e;
            }
        }
        log_density[r] = -0.5 * ss;
    }
}

void tu_fill(double *a, size_t n, double value)
{
    for (size_t i = 0; i < n; ++i) {
        a[i] = value;
    }
}

size_t tu_first_not_sentinel(const double *a, size_t n)
{
    const double s = TU_SENTINEL;
    for (size_t i = 0; i < n; ++i) {
        if (memcmp(&a[i], &s, sizeof s) != 0) {
            return i;
        }
    }
    return (size_t)-1;
}

size_t tu_first_bit_difference(const double *a, const double *b, size_t n)
{
    for (size_t i = 0; i < n; ++i) {
        if (memcmp(&a[i], &b[i], sizeof a[i]) != 0) {
            return i;
        }
    }
    return (size_t)-1;
}

static int ci_contains(const char *hay, const char *needle, size_t len)
{
    if (len == 0) {
        return 0;
    }
    for (const char *h = hay; *h != '\0'; ++h) {
        size_t j = 0;
        while (j < len && h[j] != '\0' &&
               tolower((unsigned char)h[j]) == tolower((unsigned char)needle[j])) {
            ++j;
        }
        if (j == len) {
            return 1;
        }
    }
    return 0;
}

int tu_mentions(const char *msg, const char *words)
{
    const char *w = words;
    while (*w != '\0') {
        const char *bar = strchr(w, '|');
        size_t len = bar != NULL ? (size_t)(bar - w) : strlen(w);
        if (ci_contains(msg, w, len)) {
            return 1;
        }
        if (bar == NULL) {
            break;
        }
        w = bar + 1;
    }
    return 0;
}

void tu_mean_se(const double *x, size_t n, double *mean, double *se)
{
    double m = 0.0;
    for (size_t i = 0; i < n; ++i) {
        m += x[i];
    }
    m /= (double)n;
    double v = 0.0;
    for (size_t i = 0; i < n; ++i) {
        v += (x[i] - m) * (x[i] - m);
    }
    v /= (double)(n - 1);
    *mean = m;
    *se = sqrt(v / (double)n);
}

void tu_diff_mean_se(const double *a, const double *b, size_t n, double *mean, double *se)
{
    double *d = tu_alloc(n);
    for (size_t i = 0; i < n; ++i) {
        d[i] = a[i] - b[i];
    }
    tu_mean_se(d, n, mean, se);
    free(d);
}

void tu_rng_init(tu_rng *r, uint64_t seed)
{
    r->state = seed ^ 0x5851f42d4c957f2dULL;
    r->have_spare = 0;
    r->spare = 0.0;
}

uint64_t tu_rng_u64(tu_rng *r)
{
    uint64_t z = (r->state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

double tu_rng_uniform(tu_rng *r)
{
    return ((double)(tu_rng_u64(r) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

double tu_rng_normal(tu_rng *r)
{
    if (r->have_spare) {
        r->have_spare = 0;
        return r->spare;
    }
    const double two_pi = 6.283185307179586476925286766559;
    double u1 = tu_rng_uniform(r);
    double u2 = tu_rng_uniform(r);
    double rad = sqrt(-2.0 * log(u1));
    r->spare = rad * sin(two_pi * u2);
    r->have_spare = 1;
    return rad * cos(two_pi * u2);
}

double tu_chi2_upper(double dof, double zq)
{
    double a = 2.0 / (9.0 * dof);
    double t = 1.0 - a + zq * sqrt(a);
    return dof * t * t * t;
}

double *tu_alloc(size_t n)
{
    double *p = malloc((n > 0 ? n : 1) * sizeof *p);
    assert_non_null(p);
    return p;
}

size_t *tu_alloc_size(size_t n)
{
    size_t *p = malloc((n > 0 ? n : 1) * sizeof *p);
    assert_non_null(p);
    return p;
}

void tu_traj_read(const bsvi_trajectory *t, tu_traj *s)
{
    memset(s, 0, sizeof *s);
    s->B = bsvi_trajectory_batch(t);
    s->k = bsvi_trajectory_steps(t);
    s->d = bsvi_trajectory_dim(t);
    s->ds = bsvi_trajectory_is_double_sampled(t);
    assert_true(s->B > 0 && s->d > 0);
    const size_t ns = s->B * (s->k + 1);
    s->lw = tu_alloc(ns);
    s->lp = tu_alloc(ns);
    s->lq = tu_alloc(ns);
    s->z = tu_alloc(ns * s->d);
    s->mean = tu_alloc(ns * s->d);
    s->ls = tu_alloc(ns * s->d);
    s->gm = tu_alloc(s->B * s->d);
    s->gs = tu_alloc(s->B * s->d);
    TU_OK(bsvi_trajectory_get_log_weights(t, s->lw));
    TU_OK(bsvi_trajectory_get_log_joint(t, s->lp));
    TU_OK(bsvi_trajectory_get_log_proposal(t, s->lq));
    TU_OK(bsvi_trajectory_get_latents(t, s->z));
    TU_OK(bsvi_trajectory_get_params(t, s->mean, s->ls));
    TU_OK(bsvi_trajectory_get_encoder_grad(t, s->gm, s->gs));
}

void tu_traj_free(tu_traj *s)
{
    free(s->lw);
    free(s->lp);
    free(s->lq);
    free(s->z);
    free(s->mean);
    free(s->ls);
    free(s->gm);
    free(s->gs);
    memset(s, 0, sizeof *s);
}

void tu_traj_assert_rows_equal(const tu_traj *a, size_t first, const tu_traj *b)
{
    assert_int_equal(a->k, b->k);
    assert_int_equal(a->d, b->d);
    assert_int_equal(a->ds, b->ds);
    assert_true(first + b->B <= a->B);
    const size_t k1 = a->k + 1, d = a->d;
    TU_BITWISE(a->lw + first * k1, b->lw, b->B * k1);
    TU_BITWISE(a->lp + first * k1, b->lp, b->B * k1);
    TU_BITWISE(a->lq + first * k1, b->lq, b->B * k1);
    TU_BITWISE(a->z + first * k1 * d, b->z, b->B * k1 * d);
    TU_BITWISE(a->mean + first * k1 * d, b->mean, b->B * k1 * d);
    TU_BITWISE(a->ls + first * k1 * d, b->ls, b->B * k1 * d);
    TU_BITWISE(a->gm + first * d, b->gm, b->B * d);
    TU_BITWISE(a->gs + first * d, b->gs, b->B * d);
}

void tu_traj_assert_equal(const tu_traj *a, const tu_traj *b)
{
    assert_int_equal(a->B, b->B);
    tu_traj_assert_rows_equal(a, 0, b);
}
