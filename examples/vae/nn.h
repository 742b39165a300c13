/* The VAE's networks over CBLAS: an MLP encoder x -> (mean, log-std) and an
 * MLP decoder z -> pixel parameters, with hand-written backward passes, two
 * pixel likelihoods and the AMSGrad optimiser.
 *
 * Architecture (the IWAE paper's one-stochastic-layer model, Burda et al. 2016):
 *   encoder  x_dim -> h_dim -> h_dim -> 2*z_dim   (tanh, tanh, linear: mean | log-std)
 *   decoder  z_dim -> h_dim -> h_dim -> x_dim     (tanh, tanh, linear: logits or means)
 * with x_dim = 784, h_dim = 200, z_dim = 50 in the example; any sizes work (the
 * gradient-check test uses tiny ones).
 *
 * Every layer is one GEMM over all rows of the batch. Layers follow the
 * llm.c style: a pair of plain functions, shapes in the argument names. Weights
 * are stored (OC, C) row-major (out = inp @ weight^T + bias).
 *
 * Precision: the networks (parameters, activations, gradients, AMSGrad state)
 * are in vae_real, which is float (cblas_sgemm) by default and double
 * (cblas_dgemm) when the code is compiled with VAE_FLOAT64 defined. The build
 * makes both from the same sources: the `vae` program and the vae_example
 * library in float32, `vae64` and vae_example64 in float64 (the finite-difference
 * gradient checks of test_nn run on the float64 build). Everything that crosses
 * into libbsvi stays double: the encoder writes double means and log-stds, the
 * decoder reads double z rows and writes double log-likelihoods and gradients,
 * and the library's coefficients and encoder gradients are read as double; the
 * conversions happen here, at the boundary, on buffers sized once.
 *
 * Sign convention: the "gradient" arrays hold d(objective)/d(param) of an
 * objective that is MAXIMISED (a bound on log p(x)); the optimiser ascends.
 *
 * Likelihoods, per row r with its data point x (x_dim pixel values):
 *  - VAE_LIK_BERNOULLI: x in {0,1}, decoder output l = logits,
 *      log p(x|z) = sum_j x_j l_j - softplus(l_j)   (stable for any l).
 *  - VAE_LIK_LOGISTIC: x in {0..255} gray levels, decoder output = means mu_j
 *    on the [-1, 1] scale, one global learned log-scale s (a parameter).
 *    Discretised logistic (PixelCNN++): bins of width 2/255 centred on
 *    x' = x/127.5 - 1; the bin of 0 extends to -inf and the bin of 255 to +inf.
 *      interior: log(sigmoid(a) - sigmoid(b)), a = (x'-mu+1/255)/e^s, b = (x'-mu-1/255)/e^s,
 *                computed as logsig(a) + logsig(-b) + log(1 - exp(-(a-b))) (exact, stable)
 *      x = 0:    logsig(a)         x = 255: logsig(-b)
 */
#ifndef VAE_NN_H
#define VAE_NN_H

#include <stddef.h>
#include <stdint.h>

#ifdef VAE_FLOAT64
typedef double vae_real;
#define VAE_REAL_BITS 64
#else
typedef float vae_real;
#define VAE_REAL_BITS 32
#endif
/* "float32" or "float64": the precision of this build's networks. */
#define VAE_PRECISION_NAME (VAE_REAL_BITS == 32 ? "float32" : "float64")

typedef enum vae_likelihood {
    VAE_LIK_BERNOULLI = 0, /* binarised pixels, logits */
    VAE_LIK_LOGISTIC = 1   /* 8-bit gray levels, discretised logistic with a global log-scale */
} vae_likelihood;

/* Views into one flat parameter (or gradient, or optimiser-moment) array. */
typedef struct vae_params {
    vae_real *enc_w1, *enc_b1; /* (h, x), (h)       */
    vae_real *enc_w2, *enc_b2; /* (h, h), (h)       */
    vae_real *enc_w3, *enc_b3; /* (2z, h), (2z)     */
    vae_real *dec_w1, *dec_b1; /* (h, z), (h)       */
    vae_real *dec_w2, *dec_b2; /* (h, h), (h)       */
    vae_real *dec_w3, *dec_b3; /* (x, h), (x)       */
    vae_real *log_scale;       /* (1): used by VAE_LIK_LOGISTIC only */
} vae_params;

typedef struct vae_net {
    size_t x_dim, h_dim, z_dim;
    vae_likelihood lik;
    size_t nparams;     /* total number of scalars in one flat array */
    size_t n_encoder;   /* the encoder's scalars come first: [0, n_encoder) */
    vae_real *mem;      /* one allocation: params | grads | adam_m | adam_v | adam_vmax */
    vae_real *params, *grads, *adam_m, *adam_v, *adam_vmax;
    vae_params p, g;    /* views of params and grads */
    uint64_t adam_t;    /* optimiser steps taken */
} vae_net;

/* The decoder activations of one forward pass over n rows (row-major views). */
typedef struct vae_act {
    vae_real *z;   /* n*z: the input rows, in vae_real */
    vae_real *h1;  /* n*h */
    vae_real *h2;  /* n*h */
    vae_real *out; /* n*x: logits or means */
} vae_act;

/* Activations and backward buffers for up to max_rows rows (one allocation),
 * and an optional ring of the last decoder forwards (vae_ws_enable_cache).
 * Sized once; the forward/backward functions never allocate. */
typedef struct vae_ws {
    size_t max_rows;
    vae_real *mem;
    vae_real *enc_h1, *enc_h2, *enc_out;     /* rows*h, rows*h, rows*2z (post-activation) */
    vae_real *enc_gh1, *enc_gh2, *enc_gout;  /* gradients w.r.t. the same */
    vae_real *dec_h1, *dec_h2, *dec_out;     /* rows*h, rows*h, rows*x  */
    vae_real *dec_gh1, *dec_gh2, *dec_gout;  /* gradients w.r.t. the same */
    vae_real *row_scratch;                   /* rows: d/d log-scale per row */
    vae_real *dz;                            /* rows*z: d/dz before its conversion to double */
    vae_real *z_in;                          /* rows*z: z rows converted from double */
    vae_real *fwd_z;                         /* rows*z: the z rows of the main buffers' forward */
    vae_act main;                            /* fwd_z, dec_h1, dec_h2, dec_out */
    vae_act last;                            /* the last decoder forward (main or a cache slot) */
    size_t fwd_n;                            /* its rows (0: none kept) */
    uint64_t reused;                         /* forward passes skipped: the last forward's rows */
    uint64_t gathered;                       /* forward passes skipped: rows from the cache */
    /* forward cache: a ring of cache_slots forwards of up to cache_rows rows each */
    size_t cache_slots, cache_rows, cache_next, cache_live;
    vae_real *cache_mem;
    vae_act *cache_act;                      /* per slot */
    size_t *cache_n;                         /* per slot: rows of its forward */
    unsigned char *cache_ident;              /* per slot: row j is data point j */
} vae_ws;

/* ---- layers: each a (forward, backward) pair ----------------------------- */

/* out(N,OC) = inp(N,C) @ weight(OC,C)^T + bias(OC): one GEMM. */
void linear_forward(vae_real *out, const vae_real *inp, const vae_real *weight,
                    const vae_real *bias, size_t N, size_t C, size_t OC);
/* out(N,OC) = tanh(inp(N,C) @ weight(OC,C)^T + bias(OC)): one GEMM, then the bias
 * and tanh in one pass over out. */
void linear_tanh_forward(vae_real *out, const vae_real *inp, const vae_real *weight,
                         const vae_real *bias, size_t N, size_t C, size_t OC);
/* Given dout(N,OC): dinp(N,C) = dout @ weight (overwritten; NULL to skip),
 * dweight(OC,C) += dout^T @ inp and dbias(OC) += column sums of dout (NULL to skip). */
void linear_backward(vae_real *dinp, vae_real *dweight, vae_real *dbias, const vae_real *dout,
                     const vae_real *inp, const vae_real *weight, size_t N, size_t C,
                     size_t OC);
/* out(n) = tanh(inp(n)); may be in place. */
void tanh_forward(vae_real *out, const vae_real *inp, size_t n);
/* dinp(n) = dout(n) * (1 - out(n)^2), out = the forward's output; may be in place. */
void tanh_backward(vae_real *dinp, const vae_real *out, const vae_real *dout, size_t n);

/* ---- network ----------------------------------------------------------------- */

/* Allocates parameters, gradients and optimiser state; 0 on success. */
int vae_net_init(vae_net *net, size_t x_dim, size_t h_dim, size_t z_dim, vae_likelihood lik);
void vae_net_free(vae_net *net);
/* Glorot-uniform weights, zero biases, from a splitmix64 stream of seed. The
 * decoder output bias is set from pixel_mean (x_dim means in [0,1], or NULL
 * for 0.5): Bernoulli: logit(clip(mean, 1e-3, 1-1e-3)); logistic: 2*mean - 1.
 * The log-scale starts at log(0.1). Optimiser state is zeroed. */
void vae_net_randomize(vae_net *net, uint64_t seed, const double *pixel_mean);
void vae_net_zero_grads(vae_net *net);

int vae_ws_init(vae_ws *ws, const vae_net *net, size_t max_rows);
void vae_ws_free(vae_ws *ws);
/* Keeps the activations of the last `slots` decoder forwards of at most `rows`
 * rows (each likelihood call of that size computes straight into the next slot of
 * a ring), so that vae_decoder_accumulate_reuse can gather its targets' forward
 * rows from them instead of recomputing (the SVI-based methods: their targets are
 * rows of earlier SVI steps). 0 on success; 1 (out of memory or rows > max_rows)
 * leaves the workspace without a cache. */
int vae_ws_enable_cache(vae_ws *ws, const vae_net *net, size_t slots, size_t rows);
/* Forgets every kept forward (call when the decoder's parameters change). */
void vae_ws_forget(vae_ws *ws);

/* Encoder forward for N <= max_rows rows of inputs x_in(N, x_dim): writes
 * mean(N, z_dim) and log_std(N, z_dim) (double, for the library) and keeps
 * activations in ws. */
void vae_encoder_forward(const vae_net *net, vae_ws *ws, size_t N, const vae_real *x_in,
                         double *mean, double *log_std);
/* Encoder backward after vae_encoder_forward on the same inputs: given
 * d_mean, d_log_std (N, z_dim) of the objective, accumulates parameter
 * gradients into net->grads and, if d_x is not NULL, writes d/dx_in (N, x_dim). */
void vae_encoder_backward(vae_net *net, vae_ws *ws, size_t N, const vae_real *x_in,
                          const double *d_mean, const double *d_log_std, vae_real *d_x);

/* log p(x_{b(r)} | z_r) for N <= max_rows latent rows z(N, z_dim); row r uses
 * data row data_index[r] of x (x + data_index[r]*x_dim), or row r when
 * data_index is NULL. If dz is not NULL, writes d/dz log p(x|z) (N, z_dim).
 * Parameter gradients are not touched. */
void vae_decoder_log_lik(const vae_net *net, vae_ws *ws, size_t N, const double *z,
                         const vae_real *x, const size_t *data_index, double *log_lik,
                         double *dz);
/* Accumulates sum_r coef[r] * d/dtheta log p(x_{b(r)} | z_r) into net->grads
 * (decoder weights and the log-scale): one forward and one backward pass,
 * one GEMM per layer over all N rows. log_lik (N) receives the values if not NULL. */
void vae_decoder_accumulate(vae_net *net, vae_ws *ws, size_t N, const double *z,
                            const vae_real *x, const size_t *data_index, const double *coef,
                            double *log_lik);

/* vae_decoder_accumulate without its forward pass when the forward rows are
 * still in ws: (1) the last decoder forward through ws (by vae_decoder_log_lik
 * or an accumulate) was on exactly these N rows of z (compared bitwise after the
 * conversion to vae_real): its activations are used in place (ws->reused counts
 * these); or (2) with the cache enabled, every row r (data point b = data_index[r],
 * or r) is row b of a kept forward whose rows were data points 0, 1, ... and whose
 * z row is bitwise the same: the rows are gathered (ws->gathered counts these).
 * Otherwise the same as vae_decoder_accumulate. The result is bitwise that of
 * vae_decoder_accumulate when the BLAS computes each output row of a GEMM
 * independently of the number of rows (probed in test_vae: true of OpenBLAS 0.3.21's
 * SkylakeX sgemm, the float build's; not of its SkylakeX dgemm at the 50-200 and 200-200
 * layers, nor of its Haswell kernels, where the result differs in the last bits).
 * The caller promises that the decoder's parameters have not changed since those
 * forwards (true inside one training step, which calls vae_ws_forget first). Saves one third of the decoder's GEMM
 * work: the ELBO, IWAE and SVI-k targets are the last callback's rows, BSVI's
 * and BSVI-SIR's are rows of the k+1 SVI steps' callbacks. */
void vae_decoder_accumulate_reuse(vae_net *net, vae_ws *ws, size_t N, const double *z,
                                  const vae_real *x, const size_t *data_index,
                                  const double *coef, double *log_lik);

/* One AMSGrad ascent step on all parameters with net->grads (PyTorch's form:
 * running maximum of the second moment, both moments bias-corrected):
 *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  vmax = max(vmax, v);
 *   param += lr * (m / (1-b1^t)) / (sqrt(vmax / (1-b2^t)) + eps). */
void vae_amsgrad_step(vae_net *net, double lr, double beta1, double beta2, double eps);

#endif /* VAE_NN_H */
