/* The VAE's networks: layers, encoder, decoder, likelihoods, AMSGrad (see nn.h). */
#include "nn.h"
#include "vmath.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- layers ---------------------------------------------------------------- */

void linear_forward(double *out, const double *inp, const double *weight, const double *bias,
                    size_t N, size_t C, size_t OC) {
    for (size_t n = 0; n < N; ++n) memcpy(out + n * OC, bias, OC * sizeof *out);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, (int)OC, (int)C, 1.0, inp,
                (int)C, weight, (int)C, 1.0, out, (int)OC);
}

void linear_backward(double *dinp, double *dweight, double *dbias, const double *dout,
                     const double *inp, const double *weight, size_t N, size_t C, size_t OC) {
    if (dinp)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)N, (int)C, (int)OC, 1.0,
                    dout, (int)OC, weight, (int)C, 0.0, dinp, (int)C);
    if (dweight)
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)OC, (int)C, (int)N, 1.0, dout,
                    (int)OC, inp, (int)C, 1.0, dweight, (int)C);
    if (dbias)
        for (size_t n = 0; n < N; ++n) {
            const double *row = dout + n * OC;
            for (size_t o = 0; o < OC; ++o) dbias[o] += row[o];
        }
}

void tanh_forward(double *out, const double *inp, size_t n) { vm_tanh(out, inp, n); }

void tanh_backward(double *dinp, const double *out, const double *dout, size_t n) {
    for (size_t i = 0; i < n; ++i) dinp[i] = dout[i] * (1.0 - out[i] * out[i]);
}

/* ---- parameters ----------------------------------------------------------- */

static size_t carve(double *base, const vae_net *net, vae_params *p) {
    const size_t X = net->x_dim, H = net->h_dim, Z = net->z_dim;
    double *c = base;
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
    net->mem = (double *)calloc(5 * net->nparams, sizeof(double));
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

static void glorot(double *w, size_t fan_out, size_t fan_in, uint64_t *state) {
    const double a = sqrt(6.0 / (double)(fan_in + fan_out));
    for (size_t i = 0; i < fan_out * fan_in; ++i) w[i] = a * uniform_pm1(state);
}

void vae_net_randomize(vae_net *net, uint64_t seed, const double *pixel_mean) {
    const size_t X = net->x_dim, H = net->h_dim, Z = net->z_dim;
    uint64_t st = seed ^ 0x5EEDC0DE5EEDC0DEull;
    memset(net->mem, 0, 5 * net->nparams * sizeof(double));
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
            net->p.dec_b3[j] = log(m / (1.0 - m));
        } else {
            net->p.dec_b3[j] = 2.0 * m - 1.0;
        }
    }
    net->p.log_scale[0] = log(0.1);
}

void vae_net_zero_grads(vae_net *net) { memset(net->grads, 0, net->nparams * sizeof(double)); }

int vae_ws_init(vae_ws *ws, const vae_net *net, size_t max_rows) {
    memset(ws, 0, sizeof *ws);
    const size_t X = net->x_dim, H = net->h_dim, Z = net->z_dim, R = max_rows;
    if (R == 0) return 1;
    const size_t per_row = 2 * (2 * H + 2 * Z) + 2 * (2 * H + X) + 1 + Z;
    ws->mem = (double *)calloc(R * per_row, sizeof(double));
    if (!ws->mem) return 1;
    ws->max_rows = R;
    double *c = ws->mem;
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
    ws->fwd_z = c;
    ws->fwd_n = 0;
    ws->reused = 0;
    return 0;
}

void vae_ws_free(vae_ws *ws) {
    if (!ws) return;
    free(ws->mem);
    memset(ws, 0, sizeof *ws);
}

/* ---- encoder ---------------------------------------------------------------- */

void vae_encoder_forward(const vae_net *net, vae_ws *ws, size_t N, const double *x_in,
                         double *mean, double *log_std) {
    const size_t X = net->x_dim, H = net->h_dim, Z = net->z_dim;
    const vae_params *p = &net->p;
    linear_forward(ws->enc_h1, x_in, p->enc_w1, p->enc_b1, N, X, H);
    tanh_forward(ws->enc_h1, ws->enc_h1, N * H);
    linear_forward(ws->enc_h2, ws->enc_h1, p->enc_w2, p->enc_b2, N, H, H);
    tanh_forward(ws->enc_h2, ws->enc_h2, N * H);
    linear_forward(ws->enc_out, ws->enc_h2, p->enc_w3, p->enc_b3, N, H, 2 * Z);
    for (size_t n = 0; n < N; ++n) {
        memcpy(mean + n * Z, ws->enc_out + n * 2 * Z, Z * sizeof(double));
        memcpy(log_std + n * Z, ws->enc_out + n * 2 * Z + Z, Z * sizeof(double));
    }
}

void vae_encoder_backward(vae_net *net, vae_ws *ws, size_t N, const double *x_in,
                          const double *d_mean, const double *d_log_std, double *d_x) {
    const size_t X = net->x_dim, H = net->h_dim, Z = net->z_dim;
    const vae_params *p = &net->p;
    vae_params *g = &net->g;
    for (size_t n = 0; n < N; ++n) {
        memcpy(ws->enc_gout + n * 2 * Z, d_mean + n * Z, Z * sizeof(double));
        memcpy(ws->enc_gout + n * 2 * Z + Z, d_log_std + n * Z, Z * sizeof(double));
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

/* For N rows of decoder outputs `out` (N, X): log_lik[r] and, if gout is not
 * NULL, gout = coef[r] * d log_lik[r] / d out (coef NULL means 1) and
 * dls[r] = coef[r] * d log_lik[r] / d log_scale (logistic only). The per-pixel
 * work is in vmath.c (vectorised). */
static void likelihood(const vae_net *net, size_t N, const double *out, const double *x,
                       const size_t *data_index, const double *coef, double *log_lik,
                       double *gout, double *dls) {
    const size_t X = net->x_dim;
    if (net->lik == VAE_LIK_BERNOULLI) {
        for (size_t r = 0; r < N; ++r) {
            const double *xr = x + (data_index ? data_index[r] : r) * X;
            const double v = vm_bernoulli_row(out + r * X, xr, X, coef ? coef[r] : 1.0,
                                              gout ? gout + r * X : NULL);
            if (log_lik) log_lik[r] = v;
        }
        return;
    }
    /* Discretised logistic. */
    const double s = net->p.log_scale[0];
    const double inv = exp(-s);
    const double h = 1.0 / 255.0;
    const double delta = 2.0 * h * inv; /* a - b > 0 */
    const double log1m_exp_delta = log(-expm1(-delta));
    const double inv_expm1_delta = 1.0 / expm1(delta);
    for (size_t r = 0; r < N; ++r) {
        const double *xr = x + (data_index ? data_index[r] : r) * X;
        const double v = vm_logistic_row(out + r * X, xr, X, inv, h, log1m_exp_delta,
                                         inv_expm1_delta, coef ? coef[r] : 1.0,
                                         gout ? gout + r * X : NULL, dls ? dls + r : NULL);
        if (log_lik) log_lik[r] = v;
    }
}

/* ---- decoder ------------------------------------------------------------------- */

static void decoder_forward(const vae_net *net, vae_ws *ws, size_t N, const double *z) {
    const size_t X = net->x_dim, H = net->h_dim, Z = net->z_dim;
    const vae_params *p = &net->p;
    linear_forward(ws->dec_h1, z, p->dec_w1, p->dec_b1, N, Z, H);
    tanh_forward(ws->dec_h1, ws->dec_h1, N * H);
    linear_forward(ws->dec_h2, ws->dec_h1, p->dec_w2, p->dec_b2, N, H, H);
    tanh_forward(ws->dec_h2, ws->dec_h2, N * H);
    linear_forward(ws->dec_out, ws->dec_h2, p->dec_w3, p->dec_b3, N, H, X);
    memcpy(ws->fwd_z, z, N * Z * sizeof(double));
    ws->fwd_n = N;
}

/* Backward from ws->dec_gout. g NULL: no parameter gradients. dz NULL: no input gradient. */
static void decoder_backward(const vae_net *net, vae_ws *ws, size_t N, const double *z,
                             vae_params *g, double *dz) {
    const size_t X = net->x_dim, H = net->h_dim, Z = net->z_dim;
    const vae_params *p = &net->p;
    linear_backward(ws->dec_gh2, g ? g->dec_w3 : NULL, g ? g->dec_b3 : NULL, ws->dec_gout,
                    ws->dec_h2, p->dec_w3, N, H, X);
    tanh_backward(ws->dec_gh2, ws->dec_h2, ws->dec_gh2, N * H);
    linear_backward(ws->dec_gh1, g ? g->dec_w2 : NULL, g ? g->dec_b2 : NULL, ws->dec_gh2,
                    ws->dec_h1, p->dec_w2, N, H, H);
    tanh_backward(ws->dec_gh1, ws->dec_h1, ws->dec_gh1, N * H);
    linear_backward(dz, g ? g->dec_w1 : NULL, g ? g->dec_b1 : NULL, ws->dec_gh1, z, p->dec_w1, N,
                    Z, H);
}

void vae_decoder_log_lik(const vae_net *net, vae_ws *ws, size_t N, const double *z,
                         const double *x, const size_t *data_index, double *log_lik,
                         double *dz) {
    decoder_forward(net, ws, N, z);
    likelihood(net, N, ws->dec_out, x, data_index, NULL, log_lik, dz ? ws->dec_gout : NULL,
               NULL);
    if (dz) decoder_backward(net, ws, N, z, NULL, dz);
}

static void accumulate(vae_net *net, vae_ws *ws, size_t N, const double *z, const double *x,
                       const size_t *data_index, const double *coef, double *log_lik,
                       int reuse) {
    if (reuse && ws->fwd_n == N && memcmp(ws->fwd_z, z, N * net->z_dim * sizeof(double)) == 0)
        ws->reused++;
    else
        decoder_forward(net, ws, N, z);
    const int logistic = net->lik == VAE_LIK_LOGISTIC;
    likelihood(net, N, ws->dec_out, x, data_index, coef, log_lik, ws->dec_gout,
               logistic ? ws->row_scratch : NULL);
    if (logistic)
        for (size_t r = 0; r < N; ++r) net->g.log_scale[0] += ws->row_scratch[r];
    decoder_backward(net, ws, N, z, &net->g, NULL);
}

void vae_decoder_accumulate(vae_net *net, vae_ws *ws, size_t N, const double *z,
                            const double *x, const size_t *data_index, const double *coef,
                            double *log_lik) {
    accumulate(net, ws, N, z, x, data_index, coef, log_lik, 0);
}

void vae_decoder_accumulate_reuse(vae_net *net, vae_ws *ws, size_t N, const double *z,
                                  const double *x, const size_t *data_index,
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
               beta1, beta2, step, root_bc2, eps);
}
