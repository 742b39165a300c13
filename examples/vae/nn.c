/* The VAE's networks: layers, encoder, decoder, likelihoods, AMSGrad (see nn.h). */
#include "nn.h"
#include "vmath.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The GEMM of this build's precision. */
#ifdef VAE_FLOAT64
#define GEMM cblas_dgemm
#else
#define GEMM cblas_sgemm
#endif
#define ONE ((vae_real)1)
#define ZERO ((vae_real)0)

/* ---- layers ---------------------------------------------------------------- */

void linear_forward(vae_real *out, const vae_real *inp, const vae_real *weight,
                    const vae_real *bias, size_t N, size_t C, size_t OC) {
    for (size_t n = 0; n < N; ++n) memcpy(out + n * OC, bias, OC * sizeof *out);
    GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, (int)OC, (int)C, ONE, inp, (int)C,
         weight, (int)C, ONE, out, (int)OC);
}

void linear_tanh_forward(vae_real *out, const vae_real *inp, const vae_real *weight,
                         const vae_real *bias, size_t N, size_t C, size_t OC) {
    GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, (int)OC, (int)C, ONE, inp, (int)C,
         weight, (int)C, ZERO, out, (int)OC);
    vm_bias_tanh(out, bias, N, OC);
}

void linear_backward(vae_real *dinp, vae_real *dweight, vae_real *dbias, const vae_real *dout,
                     const vae_real *inp, const vae_real *weight, size_t N, size_t C,
                     size_t OC) {
    if (dinp)
        GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)N, (int)C, (int)OC, ONE, dout,
             (int)OC, weight, (int)C, ZERO, dinp, (int)C);
    if (dweight)
        GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, (int)OC, (int)C, (int)N, ONE, dout,
             (int)OC, inp, (int)C, ONE, dweight, (int)C);
    if (dbias)
        for (size_t n = 0; n < N; ++n) {
            const vae_real *row = dout + n * OC;
            for (size_t o = 0; o < OC; ++o) dbias[o] += row[o];
        }
}

void tanh_forward(vae_real *out, const vae_real *inp, size_t n) { vm_tanh(out, inp, n); }

void tanh_backward(vae_real *dinp, const vae_real *out, const vae_real *dout, size_t n) {
    vm_tanh_backward(dinp, out, dout, n);
}

/* ---- parameters ----------------------------------------------------------- */

static size_t carve(vae_real *base, const vae_net *net, vae_params *p) {
    const size_t X = net->x_dim, H = net->h_dim, Z = net->z_dim;
    vae_real *c = base;
#define TAKE(field, count) \
    do {                   \
        p->field = c;      \
        c += (count);      \
    } while (0)
    TAKE(enc_w1, H * X);
    TAKE(enc_b1, H);
    TAKE(enc_w2, H * H);
    TAKE(enc_b2, H);
    TAKE(enc_w3, 2 * Z * H);
    TAKE(enc_b3, 2 * Z);
    TAKE(dec_w1, H * Z);
    TAKE(dec_b1, H);
    TAKE(dec_w2, H * H);
    TAKE(dec_b2, H);
    TAKE(dec_w3, X * H);
    TAKE(dec_b3, X);
    TAKE(log_scale, 1);
#undef TAKE
    return (size_t)(c - base);
}

int vae_net_init(vae_net *net, size_t x_dim, size_t h_dim, size_t z_dim, vae_likelihood lik) {
    memset(net, 0, sizeof *net);
    if (x_dim == 0 || h_dim == 0 || z_dim == 0) return 1;
    net->x_dim = x_dim;
    net->h_dim = h_dim;
    net->z_dim = z_dim;
    net->lik = lik;
    const size_t X = x_dim, H = h_dim, Z = z_dim;
    net->n_encoder = H * X + H + H * H + H + 2 * Z * H + 2 * Z;
    net->nparams = net->n_encoder + H * Z + H + H * H + H + X * H + X + 1;
    net->mem = (vae_real *)calloc(5 * net->nparams, sizeof(vae_real));
    if (!net->mem) return 1;
    net->params = net->mem;
    net->grads = net->mem + net->nparams;
    net->adam_m = net->mem + 2 * net->nparams;
    net->adam_v = net->mem + 3 * net->nparams;
    net->adam_vmax = net->mem + 4 * net->nparams;
    if (carve(net->params, net, &net->p) != net->nparams) {
        vae_net_free(net);
        return 1;
    }
    carve(net->grads, net, &net->g);
    return 0;
}

void vae_net_free(vae_net *net) {
    if (!net) return;
    free(net->mem);
    memset(net, 0, sizeof *net);
}

static uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double uniform_pm1(uint64_t *state) {
    return ((double)(splitmix64(state) >> 11) + 0.5) * 0x1.0p-52 - 1.0;
}

/* The initial values are drawn in double and rounded once to vae_real, so the
 * float32 and float64 builds start from the same weights up to that rounding. */
static void glorot(vae_real *w, size_t fan_out, size_t fan_in, uint64_t *state) {
    const double a = sqrt(6.0 / (double)(fan_in + fan_out));
    for (size_t i = 0; i < fan_out * fan_in; ++i) w[i] = (vae_real)(a * uniform_pm1(state));
}

void vae_net_randomize(vae_net *net, uint64_t seed, const double *pixel_mean) {
    const size_t X = net->x_dim, H = net->h_dim, Z = net->z_dim;
    uint64_t st = seed ^ 0x5EEDC0DE5EEDC0DEull;
    memset(net->mem, 0, 5 * net->nparams * sizeof(vae_real));
    net->adam_t = 0;
    glorot(net->p.enc_w1, H, X, &st);
    glorot(net->p.enc_w2, H, H, &st);
    glorot(net->p.enc_w3, 2 * Z, H, &st);
    glorot(net->p.dec_w1, H, Z, &st);
    glorot(net->p.dec_w2, H, H, &st);
    glorot(net->p.dec_w3, X, H, &st);
    for (size_t j = 0; j < X; ++j) {
        double m = pixel_mean ? pixel_mean[j] : 0.5;
        if (net->lik == VAE_LIK_BERNOULLI) {
            if (m < 1e-3) m = 1e-3;
            if (m > 1.0 - 1e-3) m = 1.0 - 1e-3;
            net->p.dec_b3[j] = (vae_real)log(m / (1.0 - m));
        } else {
            net->p.dec_b3[j] = (vae_real)(2.0 * m - 1.0);
        }
    }
    net->p.log_scale[0] = (vae_real)log(0.1);
}

void vae_net_zero_grads(vae_net *net) { memset(net->grads, 0, net->nparams * sizeof(vae_real)); }

int vae_ws_init(vae_ws *ws, const vae_net *net, size_t max_rows) {
    memset(ws, 0, sizeof *ws);
    const size_t X = net->x_dim, H = net->h_dim, Z = net->z_dim, R = max_rows;
    if (R == 0) return 1;
    const size_t per_row = 2 * (2 * H + 2 * Z) + 2 * (2 * H + X) + 1 + 3 * Z;
    ws->mem = (vae_real *)calloc(R * per_row, sizeof(vae_real));
    if (!ws->mem) return 1;
    ws->max_rows = R;
    vae_real *c = ws->mem;
    ws->enc_h1 = c, c += R * H;
    ws->enc_h2 = c, c += R * H;
    ws->enc_out = c, c += R * 2 * Z;
    ws->enc_gh1 = c, c += R * H;
    ws->enc_gh2 = c, c += R * H;
    ws->enc_gout = c, c += R * 2 * Z;
    ws->dec_h1 = c, c += R * H;
    ws->dec_h2 = c, c += R * H;
    ws->dec_out = c, c += R * X;
    ws->dec_gh1 = c, c += R * H;
    ws->dec_gh2 = c, c += R * H;
    ws->dec_gout = c, c += R * X;
    ws->row_scratch = c, c += R;
    ws->dz = c, c += R * Z;
    ws->z_in = c, c += R * Z;
    ws->fwd_z = c;
    ws->main = (vae_act){ws->fwd_z, ws->dec_h1, ws->dec_h2, ws->dec_out};
    ws->last = ws->main;
    ws->fwd_n = 0;
    ws->reused = 0;
    return 0;
}

void vae_ws_free(vae_ws *ws) {
    if (!ws) return;
    free(ws->mem);
    free(ws->cache_mem);
    free(ws->cache_act);
    free(ws->cache_n);
    free(ws->cache_ident);
    memset(ws, 0, sizeof *ws);
}

int vae_ws_enable_cache(vae_ws *ws, const vae_net *net, size_t slots, size_t rows) {
    const size_t X = net->x_dim, H = net->h_dim, Z = net->z_dim;
    if (slots == 0 || rows == 0 || rows > ws->max_rows) return 1;
    const size_t per_slot = rows * (Z + 2 * H + X);
    vae_real *mem = (vae_real *)calloc(slots * per_slot, sizeof(vae_real));
    vae_act *act = (vae_act *)calloc(slots, sizeof *act);
    size_t *n = (size_t *)calloc(slots, sizeof *n);
    unsigned char *ident = (unsigned char *)calloc(slots, 1);
    if (!mem || !act || !n || !ident) {
        free(mem), free(act), free(n), free(ident);
        return 1;
    }
    free(ws->cache_mem), free(ws->cache_act), free(ws->cache_n), free(ws->cache_ident);
    for (size_t s = 0; s < slots; ++s) {
        vae_real *c = mem + s * per_slot;
        act[s].z = c, c += rows * Z;
        act[s].h1 = c, c += rows * H;
        act[s].h2 = c, c += rows * H;
        act[s].out = c;
    }
    ws->cache_mem = mem, ws->cache_act = act, ws->cache_n = n, ws->cache_ident = ident;
    ws->cache_slots = slots, ws->cache_rows = rows;
    vae_ws_forget(ws);
    return 0;
}

void vae_ws_forget(vae_ws *ws) {
    ws->fwd_n = 0;
    ws->last = ws->main;
    ws->cache_live = 0;
    ws->cache_next = 0;
}

/* ---- encoder ---------------------------------------------------------------- */

/* dst[i] = src[i] across the precision boundary (a copy in the float64 build). */
static void to_double(double *dst, const vae_real *src, size_t n) {
    for (size_t i = 0; i < n; ++i) dst[i] = (double)src[i];
}
static void to_real(vae_real *dst, const double *src, size_t n) {
    for (size_t i = 0; i < n; ++i) dst[i] = (vae_real)src[i];
}
/* to_real for gradients: in float flushed below VM_TINY_F32 like the kernels' (vmath.h) */
static void grad_to_real(vae_real *dst, const double *src, size_t n) {
#if VAE_REAL_BITS == 32
    for (size_t i = 0; i < n; ++i) dst[i] = fabs(src[i]) < (double)VM_TINY_F32 ? 0.0f : (float)src[i];
#else
    for (size_t i = 0; i < n; ++i) dst[i] = src[i];
#endif
}

void vae_encoder_forward(const vae_net *net, vae_ws *ws, size_t N, const vae_real *x_in,
                         double *mean, double *log_std) {
    const size_t X = net->x_dim, H = net->h_dim, Z = net->z_dim;
    const vae_params *p = &net->p;
    linear_tanh_forward(ws->enc_h1, x_in, p->enc_w1, p->enc_b1, N, X, H);
    linear_tanh_forward(ws->enc_h2, ws->enc_h1, p->enc_w2, p->enc_b2, N, H, H);
    linear_forward(ws->enc_out, ws->enc_h2, p->enc_w3, p->enc_b3, N, H, 2 * Z);
    for (size_t n = 0; n < N; ++n) {
        to_double(mean + n * Z, ws->enc_out + n * 2 * Z, Z);
        to_double(log_std + n * Z, ws->enc_out + n * 2 * Z + Z, Z);
    }
}

void vae_encoder_backward(vae_net *net, vae_ws *ws, size_t N, const vae_real *x_in,
                          const double *d_mean, const double *d_log_std, vae_real *d_x) {
    const size_t X = net->x_dim, H = net->h_dim, Z = net->z_dim;
    const vae_params *p = &net->p;
    vae_params *g = &net->g;
    for (size_t n = 0; n < N; ++n) {
        grad_to_real(ws->enc_gout + n * 2 * Z, d_mean + n * Z, Z);
        grad_to_real(ws->enc_gout + n * 2 * Z + Z, d_log_std + n * Z, Z);
    }
    linear_backward(ws->enc_gh2, g->enc_w3, g->enc_b3, ws->enc_gout, ws->enc_h2, p->enc_w3, N,
                    H, 2 * Z);
    tanh_backward(ws->enc_gh2, ws->enc_h2, ws->enc_gh2, N * H);
    linear_backward(ws->enc_gh1, g->enc_w2, g->enc_b2, ws->enc_gh2, ws->enc_h1, p->enc_w2, N, H,
                    H);
    tanh_backward(ws->enc_gh1, ws->enc_h1, ws->enc_gh1, N * H);
    linear_backward(d_x, g->enc_w1, g->enc_b1, ws->enc_gh1, x_in, p->enc_w1, N, X, H);
}

/* ---- likelihoods -------------------------------------------------------------- */

/* A row's coefficient in vae_real; in float, below VM_TINY_F32 it is 0 (vmath.h): a
 * subnormal coefficient would make every pixel's gradient product take an assist. */
static vae_real row_coef(double c) {
#if VAE_REAL_BITS == 32
    return fabs(c) < (double)VM_TINY_F32 ? 0.0f : (float)c;
#else
    return c;
#endif
}

/* For N rows of decoder outputs `out` (N, X): log_lik[r] and, if gout is not
 * NULL, gout = coef[r] * d log_lik[r] / d out (coef NULL means 1) and
 * dls[r] = coef[r] * d log_lik[r] / d log_scale (logistic only). The per-pixel
 * work is in vmath.c (vectorised). */
static void likelihood(const vae_net *net, size_t N, const vae_real *out, const vae_real *x,
                       const size_t *data_index, const double *coef, double *log_lik,
                       vae_real *gout, vae_real *dls) {
    const size_t X = net->x_dim;
    if (net->lik == VAE_LIK_BERNOULLI) {
        for (size_t r = 0; r < N; ++r) {
            const vae_real *xr = x + (data_index ? data_index[r] : r) * X;
            const double v = vm_bernoulli_row(out + r * X, xr, X, coef ? row_coef(coef[r]) : ONE,
                                              gout ? gout + r * X : NULL);
            if (log_lik) log_lik[r] = v;
        }
        return;
    }
    /* Discretised logistic: the per-row constants in double, rounded once. */
    const double s = (double)net->p.log_scale[0];
    const double inv = exp(-s);
    const double h = 1.0 / 255.0;
    const double delta = 2.0 * h * inv; /* a - b > 0 */
    const double log1m_exp_delta = log(-expm1(-delta));
    const double inv_expm1_delta = 1.0 / expm1(delta);
    for (size_t r = 0; r < N; ++r) {
        const vae_real *xr = x + (data_index ? data_index[r] : r) * X;
        const double v = vm_logistic_row(out + r * X, xr, X, (vae_real)inv, (vae_real)h,
                                         (vae_real)log1m_exp_delta, (vae_real)inv_expm1_delta,
                                         coef ? row_coef(coef[r]) : ONE,
                                         gout ? gout + r * X : NULL, dls ? dls + r : NULL);
        if (log_lik) log_lik[r] = v;
    }
}

/* ---- decoder ------------------------------------------------------------------- */

/* Forward on the N rows of a->z into a's buffers; a becomes ws->last. */
static void decoder_forward(const vae_net *net, vae_ws *ws, const vae_act *a, size_t N) {
    const size_t X = net->x_dim, H = net->h_dim, Z = net->z_dim;
    const vae_params *p = &net->p;
    linear_tanh_forward(a->h1, a->z, p->dec_w1, p->dec_b1, N, Z, H);
    linear_tanh_forward(a->h2, a->h1, p->dec_w2, p->dec_b2, N, H, H);
    linear_forward(a->out, a->h2, p->dec_w3, p->dec_b3, N, H, X);
    ws->last = *a;
    ws->fwd_n = N;
}

/* Backward from ws->dec_gout through the activations a. g NULL: no parameter
 * gradients. dz NULL: no input gradient. */
static void decoder_backward(const vae_net *net, vae_ws *ws, const vae_act *a, size_t N,
                             vae_params *g, vae_real *dz) {
    const size_t X = net->x_dim, H = net->h_dim, Z = net->z_dim;
    const vae_params *p = &net->p;
    linear_backward(ws->dec_gh2, g ? g->dec_w3 : NULL, g ? g->dec_b3 : NULL, ws->dec_gout,
                    a->h2, p->dec_w3, N, H, X);
    tanh_backward(ws->dec_gh2, a->h2, ws->dec_gh2, N * H);
    linear_backward(ws->dec_gh1, g ? g->dec_w2 : NULL, g ? g->dec_b2 : NULL, ws->dec_gh2,
                    a->h1, p->dec_w2, N, H, H);
    tanh_backward(ws->dec_gh1, a->h1, ws->dec_gh1, N * H);
    linear_backward(dz, g ? g->dec_w1 : NULL, g ? g->dec_b1 : NULL, ws->dec_gh1, a->z, p->dec_w1,
                    N, Z, H);
}

static int is_identity(const size_t *data_index, size_t N) {
    if (!data_index) return 1;
    for (size_t r = 0; r < N; ++r)
        if (data_index[r] != r) return 0;
    return 1;
}

void vae_decoder_log_lik(const vae_net *net, vae_ws *ws, size_t N, const double *z,
                         const vae_real *x, const size_t *data_index, double *log_lik,
                         double *dz) {
    vae_act a = ws->main;
    if (ws->cache_slots > 0 && N <= ws->cache_rows) { /* straight into the ring's next slot */
        const size_t s = ws->cache_next;
        a = ws->cache_act[s];
        ws->cache_n[s] = N;
        ws->cache_ident[s] = (unsigned char)is_identity(data_index, N);
        ws->cache_next = (s + 1) % ws->cache_slots;
        if (ws->cache_live < ws->cache_slots) ws->cache_live++;
    }
    to_real(a.z, z, N * net->z_dim);
    decoder_forward(net, ws, &a, N);
    likelihood(net, N, a.out, x, data_index, NULL, log_lik, dz ? ws->dec_gout : NULL, NULL);
    if (dz) {
        decoder_backward(net, ws, &a, N, NULL, ws->dz);
        to_double(dz, ws->dz, N * net->z_dim);
    }
}

/* Gathers the forward rows of the N target rows in ws->z_in from the cache into the
 * main buffers (see vae_decoder_accumulate_reuse); 0 when a row is not kept. */
static int gather(const vae_net *net, vae_ws *ws, size_t N, const size_t *data_index) {
    const size_t X = net->x_dim, H = net->h_dim, Z = net->z_dim;
    if (ws->cache_live == 0) return 0;
    ws->fwd_n = 0; /* the main buffers are rewritten below */
    ws->last = ws->main;
    for (size_t r = 0; r < N; ++r) {
        const size_t b = data_index ? data_index[r] : r;
        const vae_real *zr = ws->z_in + r * Z;
        const vae_act *hit = NULL;
        for (size_t i = 1; i <= ws->cache_live && !hit; ++i) { /* newest first */
            const size_t s = (ws->cache_next + ws->cache_slots - i) % ws->cache_slots;
            if (ws->cache_ident[s] && b < ws->cache_n[s] &&
                memcmp(ws->cache_act[s].z + b * Z, zr, Z * sizeof *zr) == 0)
                hit = &ws->cache_act[s];
        }
        if (!hit) return 0;
        memcpy(ws->main.z + r * Z, zr, Z * sizeof *zr);
        memcpy(ws->main.h1 + r * H, hit->h1 + b * H, H * sizeof *zr);
        memcpy(ws->main.h2 + r * H, hit->h2 + b * H, H * sizeof *zr);
        memcpy(ws->main.out + r * X, hit->out + b * X, X * sizeof *zr);
    }
    ws->fwd_n = N;
    return 1;
}

static void accumulate(vae_net *net, vae_ws *ws, size_t N, const double *z, const vae_real *x,
                       const size_t *data_index, const double *coef, double *log_lik,
                       int reuse) {
    to_real(ws->z_in, z, N * net->z_dim);
    vae_act a = ws->main;
    if (reuse && ws->fwd_n == N &&
        memcmp(ws->last.z, ws->z_in, N * net->z_dim * sizeof(vae_real)) == 0) {
        a = ws->last;
        ws->reused++;
    } else if (reuse && gather(net, ws, N, data_index)) {
        ws->gathered++;
    } else {
        memcpy(a.z, ws->z_in, N * net->z_dim * sizeof(vae_real));
        decoder_forward(net, ws, &a, N);
    }
    const int logistic = net->lik == VAE_LIK_LOGISTIC;
    likelihood(net, N, a.out, x, data_index, coef, log_lik, ws->dec_gout,
               logistic ? ws->row_scratch : NULL);
    if (logistic)
        for (size_t r = 0; r < N; ++r) net->g.log_scale[0] += ws->row_scratch[r];
    decoder_backward(net, ws, &a, N, &net->g, NULL);
}

void vae_decoder_accumulate(vae_net *net, vae_ws *ws, size_t N, const double *z,
                            const vae_real *x, const size_t *data_index, const double *coef,
                            double *log_lik) {
    accumulate(net, ws, N, z, x, data_index, coef, log_lik, 0);
}

void vae_decoder_accumulate_reuse(vae_net *net, vae_ws *ws, size_t N, const double *z,
                                  const vae_real *x, const size_t *data_index,
                                  const double *coef, double *log_lik) {
    accumulate(net, ws, N, z, x, data_index, coef, log_lik, 1);
}

/* ---- optimiser ------------------------------------------------------------------ */

void vae_amsgrad_step(vae_net *net, double lr, double beta1, double beta2, double eps) {
    net->adam_t++;
    const double bc1 = 1.0 - pow(beta1, (double)net->adam_t);
    const double bc2 = 1.0 - pow(beta2, (double)net->adam_t);
    const double step = lr / bc1, root_bc2 = sqrt(bc2);
    vm_amsgrad(net->params, net->grads, net->adam_m, net->adam_v, net->adam_vmax, net->nparams,
               (vae_real)beta1, (vae_real)beta2, (vae_real)step, (vae_real)root_bc2,
               (vae_real)eps);
}
