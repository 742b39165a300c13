/* test_rng.c: Philox4x32-10 known-answer vectors and the log-sum-exp helper. */
#include "testutil.h"

#include <float.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_philox_kat),
        cmocka_unit_test(test_philox_alias_and_null),
        cmocka_unit_test(test_philox_matches_reference),
        cmocka_unit_test(test_logsumexp_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
