/* Philox4x32-10 (Salmon, Moraes, Dror and Shaw, SC'11) and the library's streams. */
#include <math.h>

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

static inline double u53_open0(uint32_t hi, uint32_t lo) {
    uint64_t a = (((uint64_t)hi << 32) | lo) >> 11;
    return ((double)a + 1.0) * 0x1.0p-53; /* (0, 1] */
}

static inline double u53(uint32_t hi, uint32_t lo) {
    uint64_t a = (((uint64_t)hi << 32) | lo) >> 11;
    return (double)a * 0x1.0p-53; /* [0, 1) */
}

/* Two normals per Philox block (Box-Muller). */
static inline void normal_pair(const uint32_t x[4], double *n0, double *n1) {
    double u1 = u53_open0(x[0], x[1]);
    double u2 = u53(x[2], x[3]);
    double r = sqrt(-2.0 * log(u1));
    double t = 6.283185307179586476925286766559 * u2;
    *n0 = r * cos(t);
    *n1 = r * sin(t);
}

void bsvi__normals(const bsvi__rng *r, uint64_t b, uint32_t step, uint32_t purpose, uint64_t pos,
                   size_t n, double *out) {
    size_t i = 0;
    uint32_t x[4];
    double n0, n1;
    if (n == 0) return;
    if (pos & 1u) {
        stream_block(r, b, step, purpose, pos >> 1, x);
        normal_pair(x, &n0, &n1);
        out[i++] = n1;
        ++pos;
    }
    while (i + 1 < n) {
        stream_block(r, b, step, purpose, pos >> 1, x);
        normal_pair(x, &out[i], &out[i + 1]);
        i += 2;
        pos += 2;
    }
    if (i < n) {
        stream_block(r, b, step, purpose, pos >> 1, x);
        normal_pair(x, &n0, &n1);
        out[i] = n0;
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
