/* Vectorisable element-wise maths (see vmath.h).
 *
 * Every kernel below is branch-free straight-line code over doubles (selects,
 * not branches; bit casts through memcpy), so GCC and Clang turn the loops into
 * SIMD code. On x86-64 with GCC the row functions are compiled twice (AVX2 and
 * baseline SSE2, target_clones) and the loader picks one; the build compiles this
 * file with -ffp-contract=off so that no fused multiply-add changes a bit between
 * the two. Sums over a row use four accumulators in a fixed order.
 *
 * exp/expm1: x = k ln2 + r with |r| <= ln2/2 (Cody-Waite, ln2 split in two),
 * expm1(r) by its Taylor polynomial to degree 13 (truncation < 2e-17 relative),
 * 2^k by writing the exponent field; expm1(x) = (2^k - 1) + 2^k expm1(r), which is
 * exact in the k = 0 case and so keeps tanh's relative accuracy near 0.
 * log1p on [0, 1]: log(1+e) = 2 atanh(f / (2 + f)) with f = e, or f = (e-1)/2 and
 * + ln 2 when e > sqrt(2)-1, so |s| <= 0.172 and the odd series needs 11 terms.
 */
#include "vmath.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && \
    !defined(__SANITIZE_ADDRESS__) && !defined(VAE_VMATH_NO_CLONES)
#define VM_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define VM_CLONES
#endif
#define VM_INLINE static inline __attribute__((always_inline))

enum { BLK = 128 }; /* elements per inner block (stack scratch of a few KiB) */

VM_INLINE uint64_t as_u64(double d) {
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}
VM_INLINE double as_f64(uint64_t u) {
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

/* x = k ln2 + r; returns expm1(r) and sets *scale = 2^k. x is clamped to
 * [-708, 709] (k in [-1021, 1023]); NaN passes through into the result. */
VM_INLINE double exp_parts(double x, double *scale) {
    const double LOG2E = 0x1.71547652b82fep0;
    const double SHIFT = 0x1.8p52; /* adding it rounds to an integer in the low bits */
    const double LN2_HI = 0x1.62e42fee00000p-1, LN2_LO = 0x1.a39ef35793c76p-33;
    double xc = x < -708.0 ? -708.0 : x;
    xc = xc > 709.0 ? 709.0 : xc;
    const double kd = xc * LOG2E + SHIFT;
    const double k = kd - SHIFT;
    const double r = (xc - k * LN2_HI) - k * LN2_LO;
    /* the low bits of kd hold k; (k + 1023) << 52 is the bit pattern of 2^k */
    *scale = as_f64((as_u64(kd) + 1023u) << 52);
    double p = 1.0 / 6227020800.0;      /* 1/13! */
    p = p * r + 1.0 / 479001600.0;      /* 1/12! */
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    return r + (r * r) * p;
}

/* exp(x) for x <= 0 (0 below -708). */
VM_INLINE double vexp_neg(double x) {
    double s;
    const double q = exp_parts(x, &s);
    return x < -708.0 ? 0.0 : s + s * q;
}

/* expm1(x) for x <= 0 (-1 below -708). */
VM_INLINE double vexpm1_neg(double x) {
    double s;
    const double q = exp_parts(x, &s);
    return (s - 1.0) + s * q;
}

/* log1p(e) for e in [0, 1]. */
VM_INLINE double vlog1p01(double e) {
    const double LN2 = 0x1.62e42fefa39efp-1;
    const int big = e > 0.41421356237309503;
    const double f = big ? (e - 1.0) * 0.5 : e; /* 1 + f = (1 + e) or (1 + e) / 2 */
    const double s = f / (2.0 + f);
    const double s2 = s * s;
    double p = 1.0 / 21.0;
    p = p * s2 + 1.0 / 19.0;
    p = p * s2 + 1.0 / 17.0;
    p = p * s2 + 1.0 / 15.0;
    p = p * s2 + 1.0 / 13.0;
    p = p * s2 + 1.0 / 11.0;
    p = p * s2 + 1.0 / 9.0;
    p = p * s2 + 1.0 / 7.0;
    p = p * s2 + 1.0 / 5.0;
    p = p * s2 + 1.0 / 3.0;
    const double v = 2.0 * s + (2.0 * s) * (s2 * p);
    return big ? LN2 + v : v;
}

VM_INLINE double vtanh(double x) {
    const double ax = fabs(x);
    const double em = vexpm1_neg(-2.0 * ax); /* in [-1, 0] */
    return copysign(-em / (2.0 + em), x);
}

/* Fixed-order sum into four accumulators (the same bits for any vector width). */
VM_INLINE void sum4(double acc[4], const double *t, size_t m) {
    size_t i = 0;
    for (; i + 4 <= m; i += 4) {
        acc[0] += t[i];
        acc[1] += t[i + 1];
        acc[2] += t[i + 2];
        acc[3] += t[i + 3];
    }
    for (; i < m; ++i) acc[i & 3] += t[i];
}

VM_CLONES
void vm_tanh(double *out, const double *in, size_t n) {
    for (size_t i = 0; i < n; ++i) out[i] = vtanh(in[i]);
}

VM_CLONES
double vm_bernoulli_row(const double *l, const double *x, size_t n, double c, double *g) {
    double acc[4] = {0.0, 0.0, 0.0, 0.0};
    double t[BLK];
    for (size_t j0 = 0; j0 < n; j0 += BLK) {
        const size_t m = n - j0 < BLK ? n - j0 : BLK;
        const double *lb = l + j0, *xb = x + j0;
        if (g) {
            double *gb = g + j0;
            for (size_t i = 0; i < m; ++i) {
                /* x l - softplus(l) = x l - max(l, 0) - log1p(exp(-|l|)); the same exp
                 * gives sigmoid(l) = 1/(1+e) (l >= 0) or e/(1+e) (l < 0) */
                const double li = lb[i];
                const double e = vexp_neg(-fabs(li));
                t[i] = xb[i] * li - (li > 0.0 ? li : 0.0) - vlog1p01(e);
                const double inv = 1.0 / (1.0 + e);
                gb[i] = c * (xb[i] - (li >= 0.0 ? inv : e * inv));
            }
        } else {
            for (size_t i = 0; i < m; ++i) {
                const double li = lb[i];
                const double e = vexp_neg(-fabs(li));
                t[i] = xb[i] * li - (li > 0.0 ? li : 0.0) - vlog1p01(e);
            }
        }
        sum4(acc, t, m);
    }
    return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

/* One pixel of the discretised logistic: returns log P(x); *gm = d/dmu (before the
 * coefficient), *gs = d/d log-scale. */
VM_INLINE double logistic_px(double xv, double mu, double inv, double h, double log1m,
                             double inv_em1, double *gm, double *gs) {
    const double cen = xv / 127.5 - 1.0 - mu;
    const double a = inv * (cen + h), b = inv * (cen - h);
    const double ea = vexp_neg(-fabs(a)), eb = vexp_neg(-fabs(b));
    /* log sigmoid(t) = min(t, 0) - log1p(exp(-|t|)) */
    const double lsa = (a < 0.0 ? a : 0.0) - vlog1p01(ea);
    const double lsnb = (b > 0.0 ? -b : 0.0) - vlog1p01(eb);
    const double ia = 1.0 / (1.0 + ea), ib = 1.0 / (1.0 + eb);
    const double sig_na = a >= 0.0 ? ea * ia : ia; /* sigmoid(-a) */
    const double sig_b = b >= 0.0 ? ib : eb * ib;  /* sigmoid(b)  */
    const int lo = xv < 0.5, hi = xv > 254.5;
    const double dfa = lo ? sig_na : (hi ? 0.0 : sig_na + inv_em1);
    const double dfb = lo ? 0.0 : (hi ? -sig_b : -sig_b - inv_em1);
    *gm = -inv * (dfa + dfb);       /* da/dmu = db/dmu = -inv */
    *gs = -(a * dfa + b * dfb);     /* da/ds = -a, db/ds = -b */
    /* interior: log(sigmoid(a) - sigmoid(b)) = logsig(a) + logsig(-b) + log1m */
    return lo ? lsa : (hi ? lsnb : lsa + lsnb + log1m);
}

VM_CLONES
double vm_logistic_row(const double *mu, const double *x, size_t n, double inv, double h,
                       double log1m, double inv_em1, double c, double *g, double *dls) {
    double acc[4] = {0.0, 0.0, 0.0, 0.0}, dacc[4] = {0.0, 0.0, 0.0, 0.0};
    double t[BLK], dt[BLK];
    for (size_t j0 = 0; j0 < n; j0 += BLK) {
        const size_t m = n - j0 < BLK ? n - j0 : BLK;
        const double *xb = x + j0, *mb = mu + j0;
        if (g) {
            double *gb = g + j0;
            for (size_t i = 0; i < m; ++i) {
                double gm, gs;
                t[i] = logistic_px(xb[i], mb[i], inv, h, log1m, inv_em1, &gm, &gs);
                gb[i] = c * gm;
                dt[i] = gs;
            }
            sum4(dacc, dt, m);
        } else {
            for (size_t i = 0; i < m; ++i) {
                double gm, gs;
                t[i] = logistic_px(xb[i], mb[i], inv, h, log1m, inv_em1, &gm, &gs);
            }
        }
        sum4(acc, t, m);
    }
    if (g && dls) *dls = c * ((dacc[0] + dacc[1]) + (dacc[2] + dacc[3]));
    return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

VM_CLONES
void vm_amsgrad(double *restrict p, const double *restrict g, double *restrict m,
                double *restrict v, double *restrict vmax, size_t n, double b1, double b2,
                double step, double root_bc2, double eps) {
    const double c1 = 1.0 - b1, c2 = 1.0 - b2;
    for (size_t i = 0; i < n; ++i) {
        const double gi = g[i];
        const double mi = b1 * m[i] + c1 * gi;
        const double vi = b2 * v[i] + c2 * gi * gi;
        const double vm = vi > vmax[i] ? vi : vmax[i];
        m[i] = mi;
        v[i] = vi;
        vmax[i] = vm;
        p[i] += step * mi / (sqrt(vm) / root_bc2 + eps);
    }
}
