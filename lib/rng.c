/* Philox4x32-10 (Salmon, Moraes, Dror and Shaw, SC'11) and the library's streams. */
#include <math.h>
#include <string.h>

#include "internal.h"

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static inline void philox_round(uint32_t c[4], const uint32_t k[2]) {
    uint64_t p0 = (uint64_t)PHILOX_M0 * c[0];
    uint64_t p1 = (uint64_t)PHILOX_M1 * c[2];
    uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
    uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
    uint32_t n0 = hi1 ^ c[1] ^ k[0];
    uint32_t n2 = hi0 ^ c[3] ^ k[1];
    c[0] = n0;
    c[1] = lo1;
    c[2] = n2;
    c[3] = lo0;
}

static inline void philox(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t c[4] = {ctr[0], ctr[1], ctr[2], ctr[3]};
    uint32_t k[2] = {key[0], key[1]};
    for (int r = 0; r < 10; ++r) {
        if (r > 0) {
            k[0] += PHILOX_W0;
            k[1] += PHILOX_W1;
        }
        philox_round(c, k);
    }
    out[0] = c[0];
    out[1] = c[1];
    out[2] = c[2];
    out[3] = c[3];
}

void bsvi_philox4x32_10(const uint32_t counter[4], const uint32_t key[2], uint32_t out[4]) {
    if (!counter || !key || !out) return;
    philox(counter, key, out);
}

double bsvi_logsumexp(const double *a, size_t n) {
    if (n == 0 || !a) return -INFINITY;
    double mx = -INFINITY;
    for (size_t i = 0; i < n; ++i) {
        if (isnan(a[i])) return NAN;
        if (a[i] > mx) mx = a[i];
    }
    if (mx == -INFINITY || mx == INFINITY) return mx;
    double s = 0.0;
    for (size_t i = 0; i < n; ++i) s += exp(a[i] - mx);
    return mx + log(s);
}

/* Counter layout: c0 = block index within the stream, c1 = purpose<<28 | step,
 * c2 = data-point id, c3 = call counter. Key = seed. */
static inline void stream_block(const bsvi__rng *r, uint64_t b, uint32_t step, uint32_t purpose,
                                uint64_t block, uint32_t out[4]) {
    uint64_t id = r->id_offset + b;
    uint32_t ctr[4] = {(uint32_t)block, (purpose << 28) | (step & 0x0FFFFFFFu), (uint32_t)id,
                       (uint32_t)r->counter};
    uint32_t key[2] = {(uint32_t)r->seed, (uint32_t)(r->seed >> 32)};
    philox(ctr, key, out);
}

static inline double u53(uint32_t hi, uint32_t lo) {
    uint64_t a = (((uint64_t)hi << 32) | lo) >> 11;
    return (double)a * 0x1.0p-53; /* [0, 1) */
}

/* Open-interval uniform (0, 1): the midpoint of one of 2^53 equal cells. */
static inline double u53_open(uint32_t hi, uint32_t lo) {
    uint64_t a = (((uint64_t)hi << 32) | lo) >> 11;
    return ((double)a + 0.5) * 0x1.0p-53;
}

/* AS 241's central region (|p - 1/2| <= 0.425): one rational function. Used by both
 * the scalar path and the batched one, so their bits agree. */
static inline double quantile_central(double p) {
    const double q = p - 0.5;
    const double r = 0.180625 - q * q;
    return q *
           (((((((2509.0809287301226727 * r + 33430.575583588128105) * r +
                 67265.770927008700853) * r + 45921.953931549871457) * r +
               13731.693765509461125) * r + 1971.5909503065514427) * r +
             133.14166789178437745) * r + 3.3871328727963666080) /
           (((((((5226.4952788528545610 * r + 28729.085735721942674) * r +
                 39307.895800092710610) * r + 21213.794301586595867) * r +
               5394.1960214247511077) * r + 687.18700749205790830) * r +
             42.313330701600911252) * r + 1.0);
}

/* Standard normal quantile, Wichura's algorithm AS 241 (PPND16, Applied
 * Statistics 37(3), 1988), relative accuracy about 1e-16. The central
 * region (85% of draws) is one rational function, no transcendental call. */
static double normal_quantile(double p) {
    const double q = p - 0.5;
    if (fabs(q) <= 0.425) return quantile_central(p);
    double r = (q < 0.0) ? p : 1.0 - p;
    r = sqrt(-log(r));
    double x;
    if (r <= 5.0) {
        r -= 1.6;
        x = (((((((7.74545014278341407640e-4 * r + 2.27238449892691845833e-2) * r +
                  2.41780725177450611770e-1) * r + 1.27045825245236838258) * r +
                3.64784832476320460504) * r + 5.76949722146069140550) * r +
              4.63033784615654529590) * r + 1.42343711074968357734) /
            (((((((1.05075007164441684324e-9 * r + 5.47593808499534494600e-4) * r +
                  1.51986665636164571966e-2) * r + 1.48103976427480074590e-1) * r +
                6.89767334985100004550e-1) * r + 1.67638483018380384940) * r +
              2.05319162663775882187) * r + 1.0);
    } else {
        r -= 5.0;
        x = (((((((2.01033439929228813265e-7 * r + 2.71155556874348757815e-5) * r +
                  1.24266094738807843860e-3) * r + 2.65321895265761230930e-2) * r +
                2.96560571828504891230e-1) * r + 1.78482653991729133580) * r +
              5.46378491116411436990) * r + 6.65790464350110377720) /
            (((((((2.04426310338993978564e-15 * r + 1.42151175831644588870e-7) * r +
                  1.84631831751005468180e-5) * r + 7.86869131145613259100e-4) * r +
                1.48753612908506148525e-2) * r + 1.36929880922735805310e-1) * r +
              5.99832206555887937690e-1) * r + 1.0);
    }
    return (q < 0.0) ? -x : x;
}

/* ---- batched normals -------------------------------------------------------------
 * The same numbers as stream_block + u53_open + normal_quantile, computed a batch of
 * consecutive Philox blocks at a time in loops the compiler vectorises (lanes = blocks):
 * the ten Philox rounds, the exact conversion to the open-interval uniform, and AS 241's
 * central rational function for every lane; the lanes in the tails (|u - 1/2| > 0.425,
 * 15% of draws) are then recomputed by normal_quantile. Every lane does the same
 * operations in the same order as the scalar path, so the bits are the same (the tests
 * compare them), whatever the instruction set. */

enum { NORMAL_BATCH = 32 }; /* Philox blocks per batch: 64 normals */

/* (double)x for x < 2^52, exactly, in a form that vectorises without 64-bit conversions. */
static inline double exact_u32(uint32_t x) {
    const uint64_t bits = 0x4330000000000000ull | (uint64_t)x;
    double d;
    memcpy(&d, &bits, sizeof d);
    return d - 0x1.0p52;
}

/* u53_open(hi, lo): (double)a with a = hi 2^21 + (lo >> 11) < 2^53 is the exact sum of
 * the two exact parts. */
static inline double u53_open_split(uint32_t hi, uint32_t lo) {
    const double a = exact_u32(hi) * 0x1.0p21 + exact_u32(lo >> 11);
    return (a + 0.5) * 0x1.0p-53;
}


/* Normals 2*block0 .. 2*(block0+nb)-1 of a stream into out (2*nb), nb <= NORMAL_BATCH.
 * Also built for AVX2 (BSVI__CLONES): 4 lanes instead of SSE2's 2, same bits. */
BSVI__CLONES static void normals_batch(const bsvi__rng *r, uint64_t b, uint32_t step, uint32_t purpose,
                          uint64_t block0, size_t nb, double *out) {
    uint32_t c0[NORMAL_BATCH], c1[NORMAL_BATCH], c2[NORMAL_BATCH], c3[NORMAL_BATCH];
    const uint32_t C1 = (purpose << 28) | (step & 0x0FFFFFFFu);
    const uint32_t C2 = (uint32_t)(r->id_offset + b), C3 = (uint32_t)r->counter;
    uint32_t k0 = (uint32_t)r->seed, k1 = (uint32_t)(r->seed >> 32);
    for (size_t j = 0; j < nb; ++j) {
        c0[j] = (uint32_t)(block0 + j);
        c1[j] = C1;
        c2[j] = C2;
        c3[j] = C3;
    }
    for (int rd = 0; rd < 10; ++rd) {
        if (rd > 0) {
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        for (size_t j = 0; j < nb; ++j) { /* philox_round, lane j */
            const uint64_t p0 = (uint64_t)PHILOX_M0 * c0[j];
            const uint64_t p1 = (uint64_t)PHILOX_M1 * c2[j];
            const uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1[j] ^ k0;
            const uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3[j] ^ k1;
            c1[j] = (uint32_t)p1;
            c3[j] = (uint32_t)p0;
            c0[j] = n0;
            c2[j] = n2;
        }
    }
    double u[2 * NORMAL_BATCH];
    for (size_t j = 0; j < nb; ++j) {
        u[2 * j] = u53_open_split(c0[j], c1[j]);
        u[2 * j + 1] = u53_open_split(c2[j], c3[j]);
    }
    for (size_t i = 0; i < 2 * nb; ++i) out[i] = quantile_central(u[i]);
    for (size_t i = 0; i < 2 * nb; ++i)
        if (fabs(u[i] - 0.5) > 0.425) out[i] = normal_quantile(u[i]);
}

/* Normal number `pos` of a stream: block pos/2, half pos%2, by inversion. */
void bsvi__normals(const bsvi__rng *r, uint64_t b, uint32_t step, uint32_t purpose, uint64_t pos,
                   size_t n, double *out) {
    size_t i = 0;
    uint32_t x[4];
    if (n == 0) return;
    if (pos & 1u) {
        stream_block(r, b, step, purpose, pos >> 1, x);
        out[i++] = normal_quantile(u53_open(x[2], x[3]));
        ++pos;
    }
    while (i + 1 < n) {
        size_t nb = (n - i) / 2;
        if (nb > NORMAL_BATCH) nb = NORMAL_BATCH;
        normals_batch(r, b, step, purpose, pos >> 1, nb, out + i);
        i += 2 * nb;
        pos += 2 * nb;
    }
    if (i < n) {
        stream_block(r, b, step, purpose, pos >> 1, x);
        out[i] = normal_quantile(u53_open(x[0], x[1]));
    }
}

void bsvi__uniforms(const bsvi__rng *r, uint64_t b, uint32_t step, uint32_t purpose, uint64_t pos,
                    size_t n, double *out) {
    uint32_t x[4];
    for (size_t i = 0; i < n; ++i, ++pos) {
        stream_block(r, b, step, purpose, pos >> 1, x);
        out[i] = (pos & 1u) ? u53(x[2], x[3]) : u53(x[0], x[1]);
    }
}
