/* Vectorisable element-wise maths (see vmath.h).
 *
 * Every kernel below is branch-free straight-line code (selects, not branches;
 * bit casts through memcpy), so GCC and Clang turn the loops into SIMD code.
 * The scalar building blocks (exp, expm1, log1p, tanh) are written once per
 * precision, because their constants and polynomial degrees differ; the row
 * kernels are written once, in vmath_rows.h, and instantiated here for double
 * (suffix _f64) and float (_f32). On x86-64 with GCC the row functions are compiled twice (AVX2 and
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
 * float: the same reductions with float constants (ln2 split so that k*LN2_HI is
 * exact for |k| < 2^9), 2^k through the 8-bit exponent field, x clamped to
 * [-87, 88], expm1(r) to degree 8 (truncation < 2e-9 relative) and log1p's series
 * to 5 terms (< 3e-9).
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
VM_INLINE double exp_parts_f64(double x, double *scale) {
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
VM_INLINE double vexp_neg_f64(double x) {
    double s;
    const double q = exp_parts_f64(x, &s);
    return x < -708.0 ? 0.0 : s + s * q;
}

/* expm1(x) for x <= 0 (-1 below -708). */
VM_INLINE double vexpm1_neg_f64(double x) {
    double s;
    const double q = exp_parts_f64(x, &s);
    return (s - 1.0) + s * q;
}

/* log1p(e) for e in [0, 1]. */
VM_INLINE double vlog1p01_f64(double e) {
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

VM_INLINE double vtanh_f64(double x) {
    const double ax = fabs(x);
    const double em = vexpm1_neg_f64(-2.0 * ax); /* in [-1, 0] */
    return copysign(-em / (2.0 + em), x);
}


/* ---- float building blocks ---------------------------------------------------- */

VM_INLINE uint32_t as_u32(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}
VM_INLINE float as_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* x = k ln2 + r; returns expm1(r) and sets *scale = 2^k. x is clamped to
 * [-87, 88] (k in [-126, 127]); NaN passes through into the result. */
VM_INLINE float exp_parts_f32(float x, float *scale) {
    const float LOG2E = 0x1.715476p0f;
    const float SHIFT = 0x1.8p23f;
    const float LN2_HI = 0x1.62e400p-1f, LN2_LO = 0x1.7f7d1cp-20f;
    float xc = x < -87.0f ? -87.0f : x;
    xc = xc > 88.0f ? 88.0f : xc;
    const float kd = xc * LOG2E + SHIFT;
    const float k = kd - SHIFT;
    const float r = (xc - k * LN2_HI) - k * LN2_LO;
    *scale = as_f32((as_u32(kd) + 127u) << 23);
    float p = 1.0f / 40320.0f; /* 1/8! */
    p = p * r + 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    return r + (r * r) * p;
}

/* exp(x) for x <= 0 (0 below -87). */
VM_INLINE float vexp_neg_f32(float x) {
    float s;
    const float q = exp_parts_f32(x, &s);
    return x < -87.0f ? 0.0f : s + s * q;
}

/* expm1(x) for x <= 0 (-1 below -87). */
VM_INLINE float vexpm1_neg_f32(float x) {
    float s;
    const float q = exp_parts_f32(x, &s);
    return (s - 1.0f) + s * q;
}

/* log1p(e) for e in [0, 1]. */
VM_INLINE float vlog1p01_f32(float e) {
    const float LN2 = 0x1.62e430p-1f;
    const int big = e > 0.41421356f;
    const float f = big ? (e - 1.0f) * 0.5f : e;
    const float s = f / (2.0f + f);
    const float s2 = s * s;
    float p = 1.0f / 9.0f;
    p = p * s2 + 1.0f / 7.0f;
    p = p * s2 + 1.0f / 5.0f;
    p = p * s2 + 1.0f / 3.0f;
    const float v = 2.0f * s + (2.0f * s) * (s2 * p);
    return big ? LN2 + v : v;
}

VM_INLINE float vtanh_f32(float x) {
    const float ax = fabsf(x);
    const float em = vexpm1_neg_f32(-2.0f * ax); /* in [-1, 0] */
    return copysignf(-em / (2.0f + em), x);
}

/* |v| < VM_TINY_F32 -> 0 (NaN passes). */
VM_INLINE float vm_flush_f32(float v) { return fabsf(v) < VM_TINY_F32 ? 0.0f : v; }

/* ---- the row kernels, once per precision ---------------------------------------- */

#define VM_R double
#define VM_SFX(name) name##_f64
#define VM_SQRT sqrt
#define VM_FABS fabs
#define VM_FLUSH(v) (v)
#include "vmath_rows.h"

#define VM_R float
#define VM_SFX(name) name##_f32
#define VM_SQRT sqrtf
#define VM_FABS fabsf
#define VM_FLUSH(v) vm_flush_f32(v)
#include "vmath_rows.h"
