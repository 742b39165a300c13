/* The row kernels of vmath.c, written once for both precisions.
 *
 * Included by vmath.c only, twice: with VM_R double and VM_SFX(n) n##_f64, then
 * with VM_R float and VM_SFX(n) n##_f32 (and VM_SQRT, VM_FABS the matching libm
 * names). The scalar building blocks VM_SFX(vexp_neg), VM_SFX(vlog1p01) and
 * VM_SFX(vtanh) must be defined before. Every constant is cast to VM_R so that
 * no float expression is promoted to double (which would halve the SIMD width).
 * Row sums go through four double accumulators in a fixed order: the same bits
 * for any vector width, and no float rounding in a 784-term sum. VM_FLUSH(v) is
 * applied to the gradients the kernels write (see vmath.h: float flushes values
 * below VM_TINY_F32 to zero, double leaves them).
 * No include guard: the file is meant to be included more than once. */
#if !defined(VM_R) || !defined(VM_SFX) || !defined(VM_SQRT) || !defined(VM_FABS) || \
    !defined(VM_FLUSH)
#error "vmath_rows.h is included by vmath.c with VM_R, VM_SFX, VM_SQRT, VM_FABS, VM_FLUSH defined"
#endif

#define VM_K(c) ((VM_R)(c))

/* Fixed-order sum into four accumulators (the same bits for any vector width). */
VM_INLINE void VM_SFX(sum4)(double acc[4], const VM_R *t, size_t m) {
    size_t i = 0;
    for (; i + 4 <= m; i += 4) {
        acc[0] += (double)t[i];
        acc[1] += (double)t[i + 1];
        acc[2] += (double)t[i + 2];
        acc[3] += (double)t[i + 3];
    }
    for (; i < m; ++i) acc[i & 3] += (double)t[i];
}

VM_CLONES
void VM_SFX(vm_tanh)(VM_R *out, const VM_R *in, size_t n) {
    for (size_t i = 0; i < n; ++i) out[i] = VM_SFX(vtanh)(in[i]);
}

VM_CLONES
void VM_SFX(vm_tanh_backward)(VM_R *dinp, const VM_R *out, const VM_R *dout, size_t n) {
    for (size_t i = 0; i < n; ++i) dinp[i] = VM_FLUSH(dout[i] * (VM_K(1) - out[i] * out[i]));
}

VM_CLONES
void VM_SFX(vm_bias_tanh)(VM_R *out, const VM_R *bias, size_t rows, size_t oc) {
    for (size_t r = 0; r < rows; ++r) {
        VM_R *o = out + r * oc;
        for (size_t j = 0; j < oc; ++j) o[j] = VM_SFX(vtanh)(o[j] + bias[j]);
    }
}

VM_CLONES
double VM_SFX(vm_bernoulli_row)(const VM_R *l, const VM_R *x, size_t n, VM_R c, VM_R *g) {
    double acc[4] = {0.0, 0.0, 0.0, 0.0};
    VM_R t[BLK];
    for (size_t j0 = 0; j0 < n; j0 += BLK) {
        const size_t m = n - j0 < BLK ? n - j0 : BLK;
        const VM_R *lb = l + j0, *xb = x + j0;
        if (g) {
            VM_R *gb = g + j0;
            for (size_t i = 0; i < m; ++i) {
                /* x l - softplus(l) = x l - max(l, 0) - log1p(exp(-|l|)); the same exp
                 * gives sigmoid(l) = 1/(1+e) (l >= 0) or e/(1+e) (l < 0) */
                const VM_R li = lb[i];
                const VM_R e = VM_SFX(vexp_neg)(-VM_FABS(li));
                t[i] = xb[i] * li - (li > VM_K(0) ? li : VM_K(0)) - VM_SFX(vlog1p01)(e);
                const VM_R inv = VM_K(1) / (VM_K(1) + e);
                gb[i] = VM_FLUSH(c * (xb[i] - (li >= VM_K(0) ? inv : e * inv)));
            }
        } else {
            for (size_t i = 0; i < m; ++i) {
                const VM_R li = lb[i];
                const VM_R e = VM_SFX(vexp_neg)(-VM_FABS(li));
                t[i] = xb[i] * li - (li > VM_K(0) ? li : VM_K(0)) - VM_SFX(vlog1p01)(e);
            }
        }
        VM_SFX(sum4)(acc, t, m);
    }
    return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

/* One pixel of the discretised logistic: returns log P(x); *gm = d/dmu (before the
 * coefficient), *gs = d/d log-scale. */
VM_INLINE VM_R VM_SFX(logistic_px)(VM_R xv, VM_R mu, VM_R inv, VM_R h, VM_R log1m,
                                   VM_R inv_em1, VM_R *gm, VM_R *gs) {
    const VM_R cen = xv / VM_K(127.5) - VM_K(1) - mu;
    const VM_R a = inv * (cen + h), b = inv * (cen - h);
    const VM_R ea = VM_SFX(vexp_neg)(-VM_FABS(a)), eb = VM_SFX(vexp_neg)(-VM_FABS(b));
    /* log sigmoid(t) = min(t, 0) - log1p(exp(-|t|)) */
    const VM_R lsa = (a < VM_K(0) ? a : VM_K(0)) - VM_SFX(vlog1p01)(ea);
    const VM_R lsnb = (b > VM_K(0) ? -b : VM_K(0)) - VM_SFX(vlog1p01)(eb);
    const VM_R ia = VM_K(1) / (VM_K(1) + ea), ib = VM_K(1) / (VM_K(1) + eb);
    const VM_R sig_na = a >= VM_K(0) ? ea * ia : ia; /* sigmoid(-a) */
    const VM_R sig_b = b >= VM_K(0) ? ib : eb * ib;  /* sigmoid(b)  */
    const int lo = xv < VM_K(0.5), hi = xv > VM_K(254.5);
    const VM_R dfa = lo ? sig_na : (hi ? VM_K(0) : sig_na + inv_em1);
    const VM_R dfb = lo ? VM_K(0) : (hi ? -sig_b : -sig_b - inv_em1);
    *gm = -inv * (dfa + dfb);   /* da/dmu = db/dmu = -inv */
    *gs = -(a * dfa + b * dfb); /* da/ds = -a, db/ds = -b */
    /* interior: log(sigmoid(a) - sigmoid(b)) = logsig(a) + logsig(-b) + log1m */
    return lo ? lsa : (hi ? lsnb : lsa + lsnb + log1m);
}

VM_CLONES
double VM_SFX(vm_logistic_row)(const VM_R *mu, const VM_R *x, size_t n, VM_R inv, VM_R h,
                               VM_R log1m, VM_R inv_em1, VM_R c, VM_R *g, VM_R *dls) {
    double acc[4] = {0.0, 0.0, 0.0, 0.0}, dacc[4] = {0.0, 0.0, 0.0, 0.0};
    VM_R t[BLK], dt[BLK];
    for (size_t j0 = 0; j0 < n; j0 += BLK) {
        const size_t m = n - j0 < BLK ? n - j0 : BLK;
        const VM_R *xb = x + j0, *mb = mu + j0;
        if (g) {
            VM_R *gb = g + j0;
            for (size_t i = 0; i < m; ++i) {
                VM_R gm, gs;
                t[i] = VM_SFX(logistic_px)(xb[i], mb[i], inv, h, log1m, inv_em1, &gm, &gs);
                gb[i] = VM_FLUSH(c * gm);
                dt[i] = gs;
            }
            VM_SFX(sum4)(dacc, dt, m);
        } else {
            for (size_t i = 0; i < m; ++i) {
                VM_R gm, gs;
                t[i] = VM_SFX(logistic_px)(xb[i], mb[i], inv, h, log1m, inv_em1, &gm, &gs);
            }
        }
        VM_SFX(sum4)(acc, t, m);
    }
    if (g && dls) *dls = (VM_R)((double)c * ((dacc[0] + dacc[1]) + (dacc[2] + dacc[3])));
    return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

VM_CLONES
void VM_SFX(vm_amsgrad)(VM_R *restrict p, const VM_R *restrict g, VM_R *restrict m,
                        VM_R *restrict v, VM_R *restrict vmax, size_t n, VM_R b1, VM_R b2,
                        VM_R step, VM_R root_bc2, VM_R eps) {
    const VM_R c1 = VM_K(1) - b1, c2 = VM_K(1) - b2;
    for (size_t i = 0; i < n; ++i) {
        const VM_R gi = g[i];
        const VM_R mi = VM_FLUSH(b1 * m[i] + c1 * gi);
        const VM_R vi = VM_FLUSH(b2 * v[i] + c2 * gi * gi);
        const VM_R vm = vi > vmax[i] ? vi : vmax[i];
        m[i] = mi;
        v[i] = vi;
        vmax[i] = vm;
        p[i] += step * mi / (VM_SQRT(vm) / root_bc2 + eps);
    }
}

#undef VM_K
#undef VM_FLUSH
#undef VM_R
#undef VM_SFX
#undef VM_SQRT
#undef VM_FABS
