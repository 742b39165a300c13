/* The vectorised normal generator of lib/rng.c, written once for two instruction sets:
 * rng.c includes this file twice, with KN(name) naming the functions, KATTR their target
 * attribute, VW the Philox blocks per vector (2: SSE2, 4: AVX2) and the V* wrappers around
 * the intrinsics. Not a public header; not compiled on its own.
 *
 * Lanes are Philox blocks: the counter's 32-bit words sit in the low halves of 64-bit
 * lanes, so that one unsigned 32x32->64 multiply (pmuludq) gives each round's product.
 * The upper halves of c1 and c3 carry junk between rounds (the full products), which only
 * ever meets the multiplier's ignored upper inputs or the final masks. Every lane then does
 * exactly the operations of the scalar reference (u53_open, AS 241 in rng.c) in the same
 * order, without contraction, so the bits are those of the scalar code. */

#if VW == 4
/* lane permutations that move the lanes of a 4-bit mask to the front (64-bit lanes as
 * pairs of 32-bit indices) */
static const int32_t KN(compact_lut)[16][8] KALIGN = {
    {0, 1, 0, 1, 0, 1, 0, 1}, {0, 1, 0, 1, 0, 1, 0, 1},
    {2, 3, 0, 1, 0, 1, 0, 1}, {0, 1, 2, 3, 0, 1, 0, 1},
    {4, 5, 0, 1, 0, 1, 0, 1}, {0, 1, 4, 5, 0, 1, 0, 1},
    {2, 3, 4, 5, 0, 1, 0, 1}, {0, 1, 2, 3, 4, 5, 0, 1},
    {6, 7, 0, 1, 0, 1, 0, 1}, {0, 1, 6, 7, 0, 1, 0, 1},
    {2, 3, 6, 7, 0, 1, 0, 1}, {0, 1, 2, 3, 6, 7, 0, 1},
    {4, 5, 6, 7, 0, 1, 0, 1}, {0, 1, 4, 5, 6, 7, 0, 1},
    {2, 3, 4, 5, 6, 7, 0, 1}, {0, 1, 2, 3, 4, 5, 6, 7}};
#endif

/* 2*nb normals into out: blocks block0, block0+1, ... of stream (key, C1, C2, C3), then,
 * every `per` blocks, the same blocks of the next stream (C2 + 1, ...). */
KATTR static void KN(normals_blocks)(uint32_t k0, uint32_t k1, uint32_t C1, uint32_t C2,
                                     uint32_t C3, uint64_t block0, size_t per, size_t nb,
                                     double *out) {
    const VI M0 = VI_SET1(PHILOX_M0), M1 = VI_SET1(PHILOX_M1), LO32 = VI_SET1(0xFFFFFFFFu);
    const VI EXP52 = VI_SET1(0x4330000000000000ull);
    const VD TWO52 = VD_SET1(0x1.0p52), TWO21 = VD_SET1(0x1.0p21), HALF = VD_SET1(0.5);
    const VD TWOM53 = VD_SET1(0x1.0p-53), CUT = VD_SET1(0.425), R0 = VD_SET1(0.180625);
    const VD ABSMASK = VI_AS_VD(VI_SET1(0x7FFFFFFFFFFFFFFFull));
    VI key0[10], key1[10];
    for (int rd = 0; rd < 10; ++rd) {
        key0[rd] = VI_SET1(k0);
        key1[rd] = VI_SET1(k1);
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    const VI c1i = VI_SET1(C1), c3i = VI_SET1(C3);
    uint64_t c0a[KCHUNK] KALIGN, c2a[KCHUNK] KALIGN; /* the chunk's lanes: block, stream */
    size_t inb = 0; /* position of the next lane within its stream's blocks */
    /* One chunk of blocks at a time, in passes without data-dependent branches (random
     * branches would cost a misprediction every other vector): Philox and the uniforms,
     * two vectors of blocks interleaved; the central rational function, four vectors
     * interleaved (its two Horner chains and the division are latency-bound otherwise);
     * then a scalar pass that lists the tail lanes. */
    double uu[2 * KCHUNK + 8 * VW] KALIGN; /* the chunk's uniforms, in output order */
    unsigned tm[2 * KCHUNK / VW + 8];      /* tail mask per vector of uu */
    size_t tpos[2 * KCHUNK + 2 * VW];
    double tu[2 * KCHUNK + 2 * VW] KALIGN, tl[2 * KCHUNK + 2 * VW] KALIGN;
    double part[4 * VW] KALIGN;
    for (size_t c0b = 0; c0b < nb; c0b += KCHUNK) {
        const size_t cn = nb - c0b < KCHUNK ? nb - c0b : KCHUNK;
        const size_t cv = (cn + 2 * VW - 1) / (2 * VW) * (2 * VW); /* lanes computed */
        for (size_t t = 0; t < cv; ++t) { /* (lanes past cn: harmless values) */
            c0a[t] = (uint32_t)(block0 + inb);
            c2a[t] = C2;
            if (++inb == per) {
                inb = 0;
                ++C2;
            }
        }
        for (size_t j = 0; j < cn; j += 2 * VW) {
            VI c0[2], c1[2], c2[2], c3[2];
            for (int g = 0; g < 2; ++g) {
                c0[g] = VI_LOADA((const VI *)(const void *)(c0a + j + (size_t)g * VW));
                c2[g] = VI_LOADA((const VI *)(const void *)(c2a + j + (size_t)g * VW));
                c1[g] = c1i;
                c3[g] = c3i;
            }
            for (int rd = 0; rd < 10; ++rd)
                for (int g = 0; g < 2; ++g) {
                    const VI p0 = VI_MUL32(c0[g], M0), p1 = VI_MUL32(c2[g], M1);
                    const VI n0 = VI_XOR(VI_XOR(VI_SRL32(p1), c1[g]), key0[rd]);
                    const VI n2 = VI_XOR(VI_XOR(VI_SRL32(p0), c3[g]), key1[rd]);
                    c1[g] = p1;
                    c3[g] = p0;
                    c0[g] = n0;
                    c2[g] = n2;
                }
            for (int g = 0; g < 2; ++g) {
                /* u53_open: ((double)a + 1/2) 2^-53, a = hi 2^21 + (lo >> 11), exactly */
                const VD hE = VD_SUB(VI_AS_VD(VI_OR(VI_AND(c0[g], LO32), EXP52)), TWO52);
                const VD lE =
                    VD_SUB(VI_AS_VD(VI_OR(VI_SRLI(VI_AND(c1[g], LO32), 11), EXP52)), TWO52);
                const VD hO = VD_SUB(VI_AS_VD(VI_OR(VI_AND(c2[g], LO32), EXP52)), TWO52);
                const VD lO =
                    VD_SUB(VI_AS_VD(VI_OR(VI_SRLI(VI_AND(c3[g], LO32), 11), EXP52)), TWO52);
                const VD uE = VD_MUL(VD_ADD(VD_ADD(VD_MUL(hE, TWO21), lE), HALF), TWOM53);
                const VD uO = VD_MUL(VD_ADD(VD_ADD(VD_MUL(hO, TWO21), lO), HALF), TWOM53);
                VD_STORE_PAIRS(uu + 2 * (j + (size_t)g * VW), uE, uO);
            }
        }
        const size_t nn = 2 * cn; /* normals in this chunk */
        for (size_t t = nn; t % (4 * VW); ++t) uu[t] = 0.5; /* padding lanes: no junk */
        for (size_t i = 0; i < nn; i += 4 * VW) { /* quantile_central, 4 vectors at once */
            VD q[4], r[4], a[4], b[4];
            for (int v = 0; v < 4; ++v) {
                q[v] = VD_SUB(VD_LOADA(uu + i + (size_t)v * VW), HALF);
                r[v] = VD_SUB(R0, VD_MUL(q[v], q[v]));
                a[v] = VD_SET1(2509.0809287301226727);
                b[v] = VD_SET1(5226.4952788528545610);
            }
#define KSTEP(ca, cb)                                                                      \
    for (int v = 0; v < 4; ++v) {                                                          \
        a[v] = VD_ADD(VD_MUL(a[v], r[v]), VD_SET1(ca));                                    \
        b[v] = VD_ADD(VD_MUL(b[v], r[v]), VD_SET1(cb));                                    \
    }
            KSTEP(33430.575583588128105, 28729.085735721942674)
            KSTEP(67265.770927008700853, 39307.895800092710610)
            KSTEP(45921.953931549871457, 21213.794301586595867)
            KSTEP(13731.693765509461125, 5394.1960214247511077)
            KSTEP(1971.5909503065514427, 687.18700749205790830)
            KSTEP(133.14166789178437745, 42.313330701600911252)
            KSTEP(3.3871328727963666080, 1.0)
#undef KSTEP
            double *dst = i + 4 * VW <= nn ? out + 2 * c0b + i : part;
            for (int v = 0; v < 4; ++v) {
                VD_STOREU(dst + (size_t)v * VW, VD_DIV(VD_MUL(q[v], a[v]), b[v]));
                tm[i / VW + (size_t)v] =
                    (unsigned)VD_MOVEMASK(VD_CMPGT(VD_AND(q[v], ABSMASK), CUT));
            }
            if (dst == part) memcpy(out + 2 * c0b + i, part, (nn - i) * sizeof *out);
        }
        size_t nt = 0;
#if VW == 4
        /* AVX2: each vector's tail lanes moved to the front by a permutation from a table,
         * stored at the end of the list (u and position), the count advanced */
        {
            const __m256i step4 = _mm256_set1_epi64x(4);
            __m256i pos = _mm256_add_epi64(_mm256_set1_epi64x((long long)(2 * c0b)),
                                           _mm256_set_epi64x(3, 2, 1, 0));
            for (size_t v = 0; v < nn / VW + (nn % VW != 0); ++v) {
                const unsigned mk = tm[v] & (v * VW + VW <= nn ? 15u : (1u << (nn % VW)) - 1u);
                const __m256i pm = _mm256_load_si256((const __m256i *)(const void *)KN(compact_lut)[mk]);
                const __m256i uv = _mm256_castpd_si256(_mm256_load_pd(uu + v * VW));
                _mm256_storeu_si256((__m256i *)(void *)(tu + nt), _mm256_permutevar8x32_epi32(uv, pm));
                _mm256_storeu_si256((__m256i *)(void *)(tpos + nt), _mm256_permutevar8x32_epi32(pos, pm));
                nt += (size_t)__builtin_popcount(mk);
                pos = _mm256_add_epi64(pos, step4);
            }
        }
#else
        for (size_t t = 0; t < nn; ++t) {
            tpos[nt] = 2 * c0b + t;
            tu[nt] = uu[t];
            nt += tm[t / VW] >> (t % VW) & 1u;
        }
#endif
        if (nt == 0) continue;
        /* The tails: r = min(p, 1 - p), sqrt(-log r) (libm's log, the only scalar step:
         * it is what the scalar reference calls), AS 241's middle rational function. */
        for (size_t t = 0; t < nt; ++t) {
            const double p = tu[t];
            tl[t] = log(p - 0.5 < 0.0 ? p : 1.0 - p);
        }
        for (size_t t = nt; t % VW; ++t) tl[t] = -1.0, tu[t] = 0.25; /* padding lanes */
        const VD FIVE = VD_SET1(5.0), ZERO = VD_SET1(0.0);
        for (size_t t = 0; t < nt; t += VW) {
            const VD r0 = VD_SQRT(VD_SUB(ZERO, VD_LOADA(tl + t)));
            const VD r = VD_SUB(r0, VD_SET1(1.6));
            VD a = VD_SET1(7.74545014278341407640e-4);
            a = VD_ADD(VD_MUL(a, r), VD_SET1(2.27238449892691845833e-2));
            a = VD_ADD(VD_MUL(a, r), VD_SET1(2.41780725177450611770e-1));
            a = VD_ADD(VD_MUL(a, r), VD_SET1(1.27045825245236838258));
            a = VD_ADD(VD_MUL(a, r), VD_SET1(3.64784832476320460504));
            a = VD_ADD(VD_MUL(a, r), VD_SET1(5.76949722146069140550));
            a = VD_ADD(VD_MUL(a, r), VD_SET1(4.63033784615654529590));
            a = VD_ADD(VD_MUL(a, r), VD_SET1(1.42343711074968357734));
            VD b = VD_SET1(1.05075007164441684324e-9);
            b = VD_ADD(VD_MUL(b, r), VD_SET1(5.47593808499534494600e-4));
            b = VD_ADD(VD_MUL(b, r), VD_SET1(1.51986665636164571966e-2));
            b = VD_ADD(VD_MUL(b, r), VD_SET1(1.48103976427480074590e-1));
            b = VD_ADD(VD_MUL(b, r), VD_SET1(6.89767334985100004550e-1));
            b = VD_ADD(VD_MUL(b, r), VD_SET1(1.67638483018380384940));
            b = VD_ADD(VD_MUL(b, r), VD_SET1(2.05319162663775882187));
            b = VD_ADD(VD_MUL(b, r), VD_SET1(1.0));
            const VD xv = VD_DIV(a, b);
            /* (q < 0) ? -x : x */
            const VD neg = VD_CMPLT(VD_SUB(VD_LOADA(tu + t), HALF), ZERO);
            const VD xs = VD_XOR(xv, VD_AND(neg, VD_SET1(-0.0)));
            double xo[VW] KALIGN;
            VD_STOREA(xo, xs);
            const unsigned far = (unsigned)VD_MOVEMASK(VD_CMPGT(r0, FIVE));
            const size_t lanes = nt - t < VW ? nt - t : VW;
            for (size_t l = 0; l < lanes; ++l)
                out[tpos[t + l]] = (far >> l & 1u) ? normal_quantile(tu[t + l]) : xo[l];
        }
    }
}
