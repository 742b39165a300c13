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

/* u53_open(hi, lo), the open-interval uniform (0, 1) behind every normal: the midpoint of one
 * of 2^53 equal cells, (a + 0.5) 2^-53 with a = (hi 2^32 + lo) >> 11. It is computed by
 * u53_open_split below and inline in lib/normals_kernel.h. */

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
 * The same numbers as stream_block + u53_open + normal_quantile, computed many consecutive
 * Philox blocks at a time with every lane doing the scalar path's operations in the same
 * order (the tests compare the bits): the ten Philox rounds, the exact conversion to the
 * open-interval uniform and AS 241's central rational function for every lane, then the
 * lanes in the tails (|u - 1/2| > 0.425, 15% of draws) gathered and redone by the middle
 * rational function, also vectorised; libm's log of those lanes is the one scalar call.
 * On x86-64 it is written with SSE2 intrinsics (2 blocks per vector) and, where the CPU
 * has it, AVX2 (4 blocks), chosen per call; elsewhere a portable version whose loops the
 * compiler may vectorise. */

enum { KCHUNK = 64 }; /* Philox blocks whose tails are gathered together */

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#include <immintrin.h>
#define BSVI__X86_KERNELS 1
/* The AVX2 kernel is gated like the AVX2 clones (internal.h), so that -DBSVI_NO_CLONES
 * builds SSE2 code only; it is dispatched by hand (no ifunc), so it also runs under the
 * sanitizers. */
#if !defined(BSVI_NO_CLONES) && !defined(__SANITIZE_THREAD__)
#define BSVI__AVX2_KERNELS 1
#endif
#define KALIGN __attribute__((aligned(32)))

/* SSE2: 2 blocks per vector */
#define KN(name) name##_sse2
#define KATTR
#define VW 2
#define VI __m128i
#define VD __m128d
#define VI_SET1(x) _mm_set1_epi64x((long long)(x))
#define VI_LOADA _mm_load_si128
#define VI_ADD _mm_add_epi64
#define VI_AND _mm_and_si128
#define VI_OR _mm_or_si128
#define VI_XOR _mm_xor_si128
#define VI_MUL32 _mm_mul_epu32
#define VI_SRL32(x) _mm_srli_epi64((x), 32)
#define VI_SRLI(x, n) _mm_srli_epi64((x), (n))
#define VI_AS_VD _mm_castsi128_pd
#define VD_SET1 _mm_set1_pd
#define VD_ADD _mm_add_pd
#define VD_SUB _mm_sub_pd
#define VD_MUL _mm_mul_pd
#define VD_DIV _mm_div_pd
#define VD_AND _mm_and_pd
#define VD_XOR _mm_xor_pd
#define VD_SQRT _mm_sqrt_pd
#define VD_CMPGT _mm_cmpgt_pd
#define VD_CMPLT _mm_cmplt_pd
#define VD_MOVEMASK _mm_movemask_pd
#define VD_LOADA _mm_load_pd
#define VD_STOREA _mm_store_pd
#define VD_STOREU _mm_storeu_pd
#define VD_STORE_PAIRS(d, e, o)                                                            \
    do {                                                                                   \
        _mm_storeu_pd((d), _mm_unpacklo_pd((e), (o)));                                     \
        _mm_storeu_pd((d) + 2, _mm_unpackhi_pd((e), (o)));                                 \
    } while (0)
#include "normals_kernel.h"
#undef KN
#undef KATTR
#undef VW
#undef VI
#undef VD
#undef VI_SET1
#undef VI_LOADA
#undef VI_ADD
#undef VI_AND
#undef VI_OR
#undef VI_XOR
#undef VI_MUL32
#undef VI_SRL32
#undef VI_SRLI
#undef VI_AS_VD
#undef VD_SET1
#undef VD_ADD
#undef VD_SUB
#undef VD_MUL
#undef VD_DIV
#undef VD_AND
#undef VD_XOR
#undef VD_SQRT
#undef VD_CMPGT
#undef VD_CMPLT
#undef VD_MOVEMASK
#undef VD_LOADA
#undef VD_STOREA
#undef VD_STOREU
#undef VD_STORE_PAIRS

#if defined(BSVI__AVX2_KERNELS)
/* AVX2: 4 blocks per vector (no FMA: target avx2 does not imply it) */
#define KN(name) name##_avx2
#define KATTR __attribute__((target("avx2")))
#define VW 4
#define VI __m256i
#define VD __m256d
#define VI_SET1(x) _mm256_set1_epi64x((long long)(x))
#define VI_LOADA _mm256_load_si256
#define VI_ADD _mm256_add_epi64
#define VI_AND _mm256_and_si256
#define VI_OR _mm256_or_si256
#define VI_XOR _mm256_xor_si256
#define VI_MUL32 _mm256_mul_epu32
#define VI_SRL32(x) _mm256_srli_epi64((x), 32)
#define VI_SRLI(x, n) _mm256_srli_epi64((x), (n))
#define VI_AS_VD _mm256_castsi256_pd
#define VD_SET1 _mm256_set1_pd
#define VD_ADD _mm256_add_pd
#define VD_SUB _mm256_sub_pd
#define VD_MUL _mm256_mul_pd
#define VD_DIV _mm256_div_pd
#define VD_AND _mm256_and_pd
#define VD_XOR _mm256_xor_pd
#define VD_SQRT _mm256_sqrt_pd
#define VD_CMPGT(a, b) _mm256_cmp_pd((a), (b), _CMP_GT_OQ)
#define VD_CMPLT(a, b) _mm256_cmp_pd((a), (b), _CMP_LT_OQ)
#define VD_MOVEMASK _mm256_movemask_pd
#define VD_LOADA _mm256_load_pd
#define VD_STOREA _mm256_store_pd
#define VD_STOREU _mm256_storeu_pd
#define VD_STORE_PAIRS(d, e, o)                                                            \
    do {                                                                                   \
        const __m256d lo_ = _mm256_unpacklo_pd((e), (o)), hi_ = _mm256_unpackhi_pd((e), (o)); \
        _mm256_storeu_pd((d), _mm256_permute2f128_pd(lo_, hi_, 0x20));                    \
        _mm256_storeu_pd((d) + 4, _mm256_permute2f128_pd(lo_, hi_, 0x31));                \
    } while (0)
#include "normals_kernel.h"
#endif

#else /* portable */

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

/* Normals 2*block0 .. 2*(block0+nb)-1 of a stream into out (2*nb), nb <= KCHUNK. */
BSVI__CLONES static void normals_chunk(uint32_t k0, uint32_t k1, uint32_t C1, uint32_t C2,
                                       uint32_t C3, uint64_t block0, size_t nb, double *out) {
    uint32_t c0[KCHUNK], c1[KCHUNK], c2[KCHUNK], c3[KCHUNK];
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
    double u[2 * KCHUNK];
    for (size_t j = 0; j < nb; ++j) {
        u[2 * j] = u53_open_split(c0[j], c1[j]);
        u[2 * j + 1] = u53_open_split(c2[j], c3[j]);
    }
    for (size_t i = 0; i < 2 * nb; ++i) out[i] = quantile_central(u[i]);
    for (size_t i = 0; i < 2 * nb; ++i)
        if (fabs(u[i] - 0.5) > 0.425) out[i] = normal_quantile(u[i]);
}

static void normals_blocks_portable(uint32_t k0, uint32_t k1, uint32_t C1, uint32_t C2,
                                    uint32_t C3, uint64_t block0, size_t nb, double *out) {
    for (size_t j = 0; j < nb; j += KCHUNK)
        normals_chunk(k0, k1, C1, C2, C3, block0 + j, nb - j < KCHUNK ? nb - j : KCHUNK,
                      out + 2 * j);
}
#endif

/* Normals 2*block0 .. 2*(block0+per)-1 of streams (r, b, step, purpose), (r, b+1, ...),
 * ... into out, 2*per after 2*per: nb blocks in all. */
static void normals_blocks(const bsvi__rng *r, uint64_t b, uint32_t step, uint32_t purpose,
                           uint64_t block0, size_t per, size_t nb, double *out) {
    const uint32_t C1 = (purpose << 28) | (step & 0x0FFFFFFFu);
    const uint32_t C2 = (uint32_t)(r->id_offset + b), C3 = (uint32_t)r->counter;
    const uint32_t k0 = (uint32_t)r->seed, k1 = (uint32_t)(r->seed >> 32);
#if defined(BSVI__X86_KERNELS)
#if defined(BSVI__AVX2_KERNELS)
    if (__builtin_cpu_supports("avx2")) {
        normals_blocks_avx2(k0, k1, C1, C2, C3, block0, per, nb, out);
        return;
    }
#endif
    normals_blocks_sse2(k0, k1, C1, C2, C3, block0, per, nb, out);
#else
    for (size_t j = 0; j < nb; j += per)
        normals_blocks_portable(k0, k1, C1, C2++, C3, block0, nb - j < per ? nb - j : per,
                                out + 2 * j);
#endif
}

void bsvi__normals_streams(const bsvi__rng *r, uint64_t b, size_t nstreams, uint32_t step,
                           uint32_t purpose, size_t n, double *out) {
    if (n == 0 || nstreams == 0) return;
    normals_blocks(r, b, step, purpose, 0, n / 2, nstreams * (n / 2), out);
}

/* Normal number `pos` of a stream: block pos/2, half pos%2, by inversion. An odd start or
 * end takes its block from the same kernel and drops the other half. */
void bsvi__normals(const bsvi__rng *r, uint64_t b, uint32_t step, uint32_t purpose, uint64_t pos,
                   size_t n, double *out) {
    double two[2];
    if (n == 0) return;
    if (pos & 1u) {
        normals_blocks(r, b, step, purpose, pos >> 1, 1, 1, two);
        *out++ = two[1];
        ++pos;
        --n;
    }
    if (n >= 2) {
        normals_blocks(r, b, step, purpose, pos >> 1, n / 2, n / 2, out);
        out += n & ~(size_t)1;
        pos += n & ~(size_t)1;
    }
    if (n & 1u) {
        normals_blocks(r, b, step, purpose, pos >> 1, 1, 1, two);
        *out = two[0];
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
