/* Element-wise maths of the example's networks, written so that the compiler
 * vectorises it: branch-free polynomial exp/expm1 and log1p kernels and the
 * row kernels built from them (tanh, the Bernoulli and discretised-logistic
 * log-likelihoods with their gradients).
 *
 * Why: with libm's scalar tanh, exp and log1p these loops took about two thirds
 * of a training step (docs/performance.md); PyTorch uses vectorised kernels.
 *
 * Accuracy (tests/test_nn.c checks it against libm over wide grids):
 *   vm_tanh            relative error <= 4 ulp-ish (max |rel err| 1e-15) for every finite input
 *   log-likelihoods    relative error ~1e-15 of each pixel's term
 * Results do not depend on the instruction set: vmath.c is compiled without
 * floating-point contraction and every sum has a fixed order, so the SSE2 and
 * AVX2 builds (chosen at run time on x86-64 GCC) give the same bits.
 * NaN inputs give NaN outputs (so a diverged network is reported by libbsvi,
 * never hidden); +-inf inputs give the limits.
 */
#ifndef VAE_VMATH_H
#define VAE_VMATH_H

#include <stddef.h>

/* out[i] = tanh(in[i]) for i < n; out may equal in. */
void vm_tanh(double *out, const double *in, size_t n);

/* Bernoulli log-likelihood of one row: returns sum_j x_j l_j - softplus(l_j)
 * over n logits l and pixels x in {0,1}. If g is not NULL, also writes
 * g_j = c * (x_j - sigmoid(l_j)). */
double vm_bernoulli_row(const double *l, const double *x, size_t n, double c, double *g);

/* Discretised-logistic log-likelihood of one row (see nn.h for the model):
 * pixels x in 0..255, means mu on [-1,1], inv = exp(-log_scale), h = 1/255,
 * log1m = log(1 - exp(-2h inv)), inv_em1 = 1/expm1(2h inv). Returns the sum of
 * log-probabilities. If g is not NULL, writes g_j = c * d/dmu_j and, if dls is
 * not NULL, stores in *dls c times the derivative of the row's sum with respect
 * to the log-scale. */
double vm_logistic_row(const double *mu, const double *x, size_t n, double inv, double h,
                       double log1m, double inv_em1, double c, double *g, double *dls);

/* One AMSGrad ascent step over n parameters (see nn.h, vae_amsgrad_step):
 *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  vmax = max(vmax, v);
 *   p += step * m / (sqrt(vmax) / root_bc2 + eps)
 * The arrays must not overlap. Same operations in the same order as the scalar
 * loop, so the same bits. */
void vm_amsgrad(double *restrict p, const double *restrict g, double *restrict m,
                double *restrict v, double *restrict vmax, size_t n, double b1, double b2,
                double step, double root_bc2, double eps);

#endif /* VAE_VMATH_H */
