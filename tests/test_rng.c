/* test_rng.c: Philox4x32-10 known-answer vectors and the log-sum-exp helper. */
#include "testutil.h"

#include <float.h>
#include <stdlib.h>

/* Independent reference Philox4x32-10 (Salmon et al. 2011), used to cross-check
 * the library on counters and keys beyond the published vectors. */
static void ref_philox(const uint32_t c[4], const uint32_t k[2], uint32_t o[4])
{
    uint32_t x0 = c[0], x1 = c[1], x2 = c[2], x3 = c[3], k0 = k[0], k1 = k[1];
    for (int r = 0; r < 10; ++r) {
        if (r > 0) {
            k0 += 0x9E3779B9u;
            k1 += 0xBB67AE85u;
        }
        uint64_t p0 = (uint64_t)0xD2511F53u * x0;
        uint64_t p1 = (uint64_t)0xCD9E8D57u * x2;
        uint32_t y0 = (uint32_t)(p1 >> 32) ^ x1 ^ k0;
        uint32_t y1 = (uint32_t)p1;
        uint32_t y2 = (uint32_t)(p0 >> 32) ^ x3 ^ k1;
        uint32_t y3 = (uint32_t)p0;
        x0 = y0;
        x1 = y1;
        x2 = y2;
        x3 = y3;
    }
    o[0] = x0;
    o[1] = x1;
    o[2] = x2;
    o[3] = x3;
}

/* Random123 kat_vectors, philox4x32 with 10 rounds. */
static const struct {
    uint32_t ctr[4];
    uint32_t key[2];
    uint32_t expected[4];
} kat[] = {
    {{0x00000000u, 0x00000000u, 0x00000000u, 0x00000000u},
     {0x00000000u, 0x00000000u},
     {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}},
    {{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
     {0xffffffffu, 0xffffffffu},
     {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}},
    {{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
     {0xa4093822u, 0x299f31d0u},
     {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}},
};

static void test_philox_kat(void **state)
{
    (void)state;
    for (size_t v = 0; v < sizeof kat / sizeof kat[0]; ++v) {
        uint32_t out[4] = {0, 0, 0, 0};
        bsvi_philox4x32_10(kat[v].ctr, kat[v].key, out);
        for (int i = 0; i < 4; ++i) {
            if (out[i] != kat[v].expected[i]) {
                print_error("vector %zu word %d: got %08x expected %08x\n", v, i,
                            (unsigned)out[i], (unsigned)kat[v].expected[i]);
                fail();
            }
        }
        /* The reference implementation agrees with the published vectors too. */
        uint32_t ref[4];
        ref_philox(kat[v].ctr, kat[v].key, ref);
        assert_memory_equal(ref, kat[v].expected, sizeof ref);
    }
}

static void test_philox_alias_and_null(void **state)
{
    (void)state;
    /* out may alias counter. */
    uint32_t c[4] = {0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u};
    const uint32_t key[2] = {0xa4093822u, 0x299f31d0u};
    bsvi_philox4x32_10(c, key, c);
    assert_memory_equal(c, kat[2].expected, sizeof c);
    /* NULL pointers: nothing happens, output untouched. */
    uint32_t out[4] = {1, 2, 3, 4};
    const uint32_t ref_out[4] = {1, 2, 3, 4};
    bsvi_philox4x32_10(NULL, key, out);
    bsvi_philox4x32_10(c, NULL, out);
    assert_memory_equal(out, ref_out, sizeof out);
    bsvi_philox4x32_10(c, key, NULL);
}

static void test_philox_matches_reference(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, 2024);
    for (int t = 0; t < 2000; ++t) {
        uint32_t c[4], k[2], a[4], b[4];
        for (int i = 0; i < 4; ++i) {
            c[i] = (uint32_t)(tu_rng_u64(&r) >> 32);
        }
        k[0] = (uint32_t)(tu_rng_u64(&r) >> 32);
        k[1] = (uint32_t)(tu_rng_u64(&r) >> 32);
        bsvi_philox4x32_10(c, k, a);
        ref_philox(c, k, b);
        assert_memory_equal(a, b, sizeof a);
    }
}

static void test_logsumexp_edges(void **state)
{
    (void)state;
    /* Empty: -inf, also with a NULL pointer. */
    double r = bsvi_logsumexp(NULL, 0);
    assert_true(isinf(r) && r < 0);
    const double one_val[1] = {1.5};
    r = bsvi_logsumexp(one_val, 0);
    assert_true(isinf(r) && r < 0);

    /* All -inf. */
    const double minf[3] = {-INFINITY, -INFINITY, -INFINITY};
    r = bsvi_logsumexp(minf, 3);
    assert_true(isinf(r) && r < 0);

    /* One finite among -inf: exactly that value. */
    const double onefin[4] = {-INFINITY, -3.25, -INFINITY, -INFINITY};
    assert_true(bsvi_logsumexp(onefin, 4) == -3.25);
    assert_true(bsvi_logsumexp(one_val, 1) == 1.5);

    /* Huge values: max-shifted, no overflow. */
    const double huge[2] = {1e300, 1e300};
    r = bsvi_logsumexp(huge, 2);
    assert_true(isfinite(r));
    TU_NEAR(r, 1e300, 1e285); /* log 2 is far below one ulp of 1e300 */
    const double huge2[3] = {1e300, -1e300, 0.0};
    TU_NEAR(bsvi_logsumexp(huge2, 3), 1e300, 1e285);
    const double big[2] = {1000.0, 1000.0};
    TU_NEAR(bsvi_logsumexp(big, 2), 1000.0 + log(2.0), 1e-12);
    const double tiny[2] = {-1000.0, -1000.0};
    TU_NEAR(bsvi_logsumexp(tiny, 2), -1000.0 + log(2.0), 1e-12);

    /* Ordinary values against direct evaluation. */
    const double v[5] = {0.1, -2.0, 3.0, 1.0, -0.5};
    double direct = 0.0;
    for (int i = 0; i < 5; ++i) {
        direct += exp(v[i]);
    }
    TU_NEAR(bsvi_logsumexp(v, 5), log(direct), 1e-14);

    /* NaN anywhere gives NaN. */
    const double withnan[3] = {1.0, NAN, 2.0};
    assert_true(isnan(bsvi_logsumexp(withnan, 3)));
    const double nanfirst[2] = {NAN, -INFINITY};
    assert_true(isnan(bsvi_logsumexp(nanfirst, 2)));
    const double nanlast[3] = {-INFINITY, -INFINITY, NAN};
    assert_true(isnan(bsvi_logsumexp(nanlast, 3)));

    /* +inf gives +inf (not NaN from inf - inf). */
    const double pinf[3] = {1.0, INFINITY, 2.0};
    r = bsvi_logsumexp(pinf, 3);
    assert_true(isinf(r) && r > 0);
    const double pinf2[2] = {INFINITY, INFINITY};
    r = bsvi_logsumexp(pinf2, 2);
    assert_true(isinf(r) && r > 0);
    const double pinf3[2] = {-INFINITY, INFINITY};
    r = bsvi_logsumexp(pinf3, 2);
    assert_true(isinf(r) && r > 0);
    /* Denormal-range values stay accurate. */
    const double lowv[2] = {-745.0, -745.0};
    TU_NEAR(bsvi_logsumexp(lowv, 2), -745.0 + log(2.0), 1e-12);
}

/* The normals behind every draw: block pos/2 of the Philox stream with counter
 * (block, purpose << 28 | step, data-point id, call counter) and key = seed, the two
 * 64-bit halves as open-interval uniforms ((a + 1/2) 2^-53, a = top 53 bits), each
 * mapped by AS 241 (lib/rng.c). The library computes them in vectorised batches; this
 * scalar reference must give the same bits (checked through bsvi_proposal_sample's eps,
 * purpose 3, step 0). */
static double ref_quantile(double p)
{
    const double q = p - 0.5;
    if (fabs(q) <= 0.425) {
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

static double ref_normal(uint64_t seed, uint64_t counter, uint64_t id, uint32_t purpose,
                         uint64_t pos)
{
    const uint32_t c[4] = {(uint32_t)(pos >> 1), purpose << 28, (uint32_t)id,
                           (uint32_t)counter};
    const uint32_t k[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    uint32_t o[4];
    ref_philox(c, k, o);
    const uint32_t hi = (pos & 1u) ? o[2] : o[0], lo = (pos & 1u) ? o[3] : o[1];
    const uint64_t a = (((uint64_t)hi << 32) | lo) >> 11;
    return ref_quantile(((double)a + 0.5) * 0x1.0p-53);
}

static void test_normals_construction(void **state)
{
    (void)state;
    const size_t dims[] = {1, 2, 7, 50, 129};
    const size_t samples[] = {1, 3, 13};
    for (size_t a = 0; a < sizeof dims / sizeof *dims; ++a) {
        for (size_t c = 0; c < sizeof samples / sizeof *samples; ++c) {
            const size_t d = dims[a], S = samples[c], B = 3, n = B * S * d;
            bsvi_proposal *q = NULL;
            assert_int_equal(bsvi_proposal_create(B, d, &q), BSVI_OK);
            const uint64_t seed = 0x0123456789ABCDEFull + a * 977u + c;
            assert_int_equal(bsvi_proposal_set_seed(q, seed), BSVI_OK);
            assert_int_equal(bsvi_proposal_set_stream(q, 40 + c, 1000 + a), BSVI_OK);
            double *z = malloc(2 * n * sizeof *z);
            assert_non_null(z);
            assert_int_equal(bsvi_proposal_sample(q, S, z, z + n), BSVI_OK);
            size_t tails = 0;
            for (size_t b = 0; b < B; ++b)
                for (size_t i = 0; i < S * d; ++i) {
                    const double want = ref_normal(seed, 40 + c, 1000 + a + b, 3, i);
                    const double got = z[n + b * S * d + i];
                    assert_memory_equal(&want, &got, sizeof want);
                    tails += fabs(want) > 1.0364; /* |u - 1/2| > 0.425 */
                }
            if (n > 1000) assert_true(tails > 0); /* the scalar tail path was taken */
            free(z);
            bsvi_proposal_destroy(q);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_philox_kat),
        cmocka_unit_test(test_philox_alias_and_null),
        cmocka_unit_test(test_philox_matches_reference),
        cmocka_unit_test(test_logsumexp_edges),
        cmocka_unit_test(test_normals_construction),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
