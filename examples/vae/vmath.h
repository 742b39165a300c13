/* Element-wise maths of the example's networks, written so that the compiler
 * vectorises it: branch-free polynomial exp/expm1 and log1p kernels and the
 * row kernels built from them (tanh, the Bernoulli and discretised-logistic
 * log-likelihoods with their gradients).
 *
 * Why: with libm's scalar tanh, exp and log1p these loops took about two thirds
 * of a training step (docs/performance.md); PyTorch uses vectorised kernels.
 *
 * Every kernel exists in two precisions, _f64 (double) and _f32 (float), with
 * the same loop structure; the unsuffixed names pick one by the type of their
 * first array argument (C11 _Generic), so nn.c calls vm_tanh(out, in, n) for
 * whichever vae_real it is compiled with. The float kernels have their own
 * polynomials (degree chosen for float's 24-bit significand) and 8-wide AVX2
 * lanes; the row sums of the likelihoods are accumulated in double in both.
 *
 * Accuracy (examples/vae/test_nn.c checks it against libm over wide grids):
 *   vm_tanh_f64        max |rel err| 1e-15 for every finite input
 *   vm_tanh_f32        max |rel err| 4e-7 (a few float ulp)
 *   log-likelihoods    relative error ~1e-15 (f64) / ~1e-7 (f32) of each pixel's term
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
void vm_tanh_f64(double *out, const double *in, size_t n);
void vm_tanh_f32(float *out, const float *in, size_t n);

/* Gradients in float are flushed to zero below this magnitude (the _f32 kernels
 * that write gradients: the likelihoods' g and vm_tanh_backward_f32; and AMSGrad's
 * moments m and v, which otherwise decay into subnormals, never to zero, where a
 * parameter's gradient stays 0: thousands of such entries were found in 100-epoch
 * checkpoints, each costing an assist per step). Why: an
 * importance-weighted target's coefficient can be 1e-30 or less (IWAE, BSVI), and
 * the products of such rows reach float's subnormal range (below 1.2e-38), where
 * every floating-point operation takes a microcode assist: measured here, a
 * 1000 x 784 x 200 sgemm with 90% subnormal rows took 413 ms instead of 2.1 ms.
 * A row whose gradient is below 1e-30 contributes less than 1e-22 of a typical
 * gradient (1e-8 and more), far below float's resolution. The _f64 kernels do
 * not flush (double's subnormals start at 2.2e-308). */
#define VM_TINY_F32 1e-30f

/* dinp[i] = dout[i] * (1 - out[i]^2) (tanh's backward from its output); may be in
 * place. The float version flushes below VM_TINY_F32. */
void vm_tanh_backward_f64(double *dinp, const double *out, const double *dout, size_t n);
void vm_tanh_backward_f32(float *dinp, const float *out, const float *dout, size_t n);

/* out[r*oc + o] = tanh(out[r*oc + o] + bias[o]) for r < rows, o < oc (a layer's
 * bias and activation in one pass after its GEMM). */
void vm_bias_tanh_f64(double *out, const double *bias, size_t rows, size_t oc);
void vm_bias_tanh_f32(float *out, const float *bias, size_t rows, size_t oc);

/* Bernoulli log-likelihood of one row: returns sum_j x_j l_j - softplus(l_j)
 * over n logits l and pixels x in {0,1} (summed in double). If g is not NULL,
 * also writes g_j = c * (x_j - sigmoid(l_j)) (the float version flushed below VM_TINY_F32). */
double vm_bernoulli_row_f64(const double *l, const double *x, size_t n, double c, double *g);
double vm_bernoulli_row_f32(const float *l, const float *x, size_t n, float c, float *g);

/* Discretised-logistic log-likelihood of one row (see nn.h for the model):
 * pixels x in 0..255, means mu on [-1,1], inv = exp(-log_scale), h = 1/255,
 * log1m = log(1 - exp(-2h inv)), inv_em1 = 1/expm1(2h inv). Returns the sum of
 * log-probabilities (in double). If g is not NULL, writes g_j = c * d/dmu_j and,
 * if dls is not NULL, stores in *dls c times the derivative of the row's sum
 * with respect to the log-scale. */
double vm_logistic_row_f64(const double *mu, const double *x, size_t n, double inv, double h,
                           double log1m, double inv_em1, double c, double *g, double *dls);
double vm_logistic_row_f32(const float *mu, const float *x, size_t n, float inv, float h,
                           float log1m, float inv_em1, float c, float *g, float *dls);

/* One AMSGrad ascent step over n parameters (see nn.h, vae_amsgrad_step):
 *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  vmax = max(vmax, v);
 *   p += step * m / (sqrt(vmax) / root_bc2 + eps)
 * The arrays must not overlap. Same operations in the same order as the scalar
 * loop, so the same bits (the float version flushes m and v below VM_TINY_F32). */
void vm_amsgrad_f64(double *restrict p, const double *restrict g, double *restrict m,
                    double *restrict v, double *restrict vmax, size_t n, double b1, double b2,
                    double step, double root_bc2, double eps);
void vm_amsgrad_f32(float *restrict p, const float *restrict g, float *restrict m,
                    float *restrict v, float *restrict vmax, size_t n, float b1, float b2,
                    float step, float root_bc2, float eps);

/* The precision-generic names (the first array argument picks the kernel). */
#define VM_PICK(a, name) _Generic((a), float *: name##_f32, const float *: name##_f32, \
                                  default: name##_f64)
#define vm_tanh(out, ...) VM_PICK(out, vm_tanh)(out, __VA_ARGS__)
#define vm_bias_tanh(out, ...) VM_PICK(out, vm_bias_tanh)(out, __VA_ARGS__)
#define vm_bernoulli_row(l, ...) VM_PICK(l, vm_bernoulli_row)(l, __VA_ARGS__)
#define vm_logistic_row(mu, ...) VM_PICK(mu, vm_logistic_row)(mu, __VA_ARGS__)
#define vm_amsgrad(p, ...) VM_PICK(p, vm_amsgrad)(p, __VA_ARGS__)
#define vm_tanh_backward(d, ...) VM_PICK(d, vm_tanh_backward)(d, __VA_ARGS__)

#endif /* VAE_VMATH_H */
