/* exp over an array, vectorised (see internal.h, bsvi__exp_array).
 *
 * |x| <= 700: x = k ln2 + r, |r| <= ln2/2 (Cody-Waite with ln2 in two parts), exp(r) by
 * its Taylor polynomial to degree 13 (truncation below 2e-17 relative), 2^k written into
 * the exponent field; relative error within a few units in the last place of libm's exp.
 * Every other input (NaN, +-inf, overflow, underflow to subnormals or zero) goes to libm's
 * exp in a second, scalar pass, so IEEE behaviour at the edges is libm's exactly. Written
 * branch-free so that the compiler vectorises the first pass; with GCC on x86-64 it is
 * also built for AVX2 and chosen at load time. No FMA is used by either build (ISO C mode,
 * no contraction; AVX2 does not imply FMA), so both give the same bits. */
#include <math.h>
#include <string.h>

#include "internal.h"

/* static: a non-static target_clones function gets an exported ifunc symbol despite
 * hidden visibility (the exported_symbols test caught it) */
BSVI__CLONES static void exp_array(double *out, const double *in, size_t n) {
    const double LOG2E = 0x1.71547652b82fep0, SHIFT = 0x1.8p52;
    const double LN2_HI = 0x1.62e42fee00000p-1, LN2_LO = 0x1.a39ef35793c76p-33;
    uint64_t far = 0; /* bit 63 set when some |in[i]| > 700 (or NaN): integer ops only */
    for (size_t i = 0; i < n; ++i) {
        double x = in[i];
        uint64_t xb;
        memcpy(&xb, &x, sizeof xb);
        far |= 0x4085E00000000000ull - (xb & 0x7FFFFFFFFFFFFFFFull); /* 700.0 - |x| */
        /* clamp without branches: out-of-range lanes are redone below */
        x = x > 700.0 ? 700.0 : x;
        x = x < -700.0 ? -700.0 : x;
        const double kd = x * LOG2E + SHIFT; /* round(x / ln2) in the low bits */
        const double k = kd - SHIFT;
        const double r = (x - k * LN2_HI) - k * LN2_LO;
        uint64_t bits;
        memcpy(&bits, &kd, sizeof bits);
        bits = (bits + 1023u) << 52; /* 2^k */
        double scale;
        memcpy(&scale, &bits, sizeof scale);
        double p = 1.0 / 6227020800.0;
        p = p * r + 1.0 / 479001600.0;
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
        const double q = r + (r * r) * p; /* expm1(r) */
        out[i] = scale + scale * q;
    }
    if (far >> 63)
        for (size_t i = 0; i < n; ++i)
            if (!(fabs(in[i]) <= 700.0)) out[i] = exp(in[i]);
}

void bsvi__exp_array(double *out, const double *in, size_t n) { exp_array(out, in, n); }
