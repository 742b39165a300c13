/* torch_agreement: the LibTorch host (torch_vae.hpp) against examples/vae (train.h).
 *
 * For every method (and the discretised-logistic likelihood, and IWAE's DReG gradient),
 * both trainers start from the same parameters (examples/vae's vae_trainer_init; the torch
 * host's own initialisation is checked to be the same bits first) and take a step on the same
 * batch with the same libbsvi seeds and streams. Then:
 *   - the per-data-point bounds agree (max abs and max rel difference),
 *   - the parameter gradients agree: relative L2 difference of the encoder's and of the
 *     decoder's gradient (as examples/vae's test_precision), and per parameter block the
 *     largest difference over the largest entry,
 *   - the batch means SVI-0, SVI-k, BSVI-k, E_pi[i/k], and pi after the step (bsvi-sir-pi).
 * A second step follows from examples/vae's parameters after the first (copied into the
 * torch host), so the streams of step 1 and the evolved pi are covered too.
 * Both networks are float32 (different GEMM kernels and summation orders), so the tolerance
 * is float32 rounding propagated through the k SVI steps. Prints a table; exit status 1 on
 * any disagreement. */
extern "C" {
#include "data.h"
#include "nn.h"
#include "train.h"
}

#include "torch_vae.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr std::uint64_t train_binarize_salt = 0x5452414E5345ull; /* examples/vae/vae.c */

/* tolerances (float32 networks on both sides) */
/* (measured: bounds 1e-7..2e-7 relative, gradients 2e-7..5e-6, stats below 4e-4 nats for the
 * logistic likelihood's bounds of about -5000 nats, 5e-6 otherwise: about 20 times below) */
constexpr double tol_bound_rel = 5e-6;  /* per data point, |diff| / max(1, |bound|) */
constexpr double tol_grad_l2 = 1e-4;    /* relative L2, encoder and decoder */
constexpr double tol_grad_block = 1e-4; /* max |diff| / max |g| per parameter block */
constexpr double tol_stat = 5e-3;       /* nats (batch means of about -5000), E_pi[i/k], pi */

struct case_t {
    vae_method m;
    vae_likelihood lik;
    int dreg;
};

struct block {
    const char *name;
    std::size_t n;
};

double rel_l2(const float *a, const float *b, std::size_t lo, std::size_t hi) {
    double d = 0, s = 0;
    for (std::size_t i = lo; i < hi; ++i) {
        const double e = static_cast<double>(a[i]) - static_cast<double>(b[i]);
        d += e * e;
        s += static_cast<double>(b[i]) * b[i];
    }
    return s > 0 ? std::sqrt(d / s) : std::sqrt(d);
}

double nan_diff(double a, double b) {
    if (std::isnan(a) && std::isnan(b)) return 0.0;
    return std::fabs(a - b);
}

tvae::config torch_config(const vae_config &c) {
    tvae::config t;
    t.meth = static_cast<tvae::method>(c.method);
    t.lik = c.lik == VAE_LIK_LOGISTIC ? tvae::likelihood::logistic : tvae::likelihood::bernoulli;
    t.x_dim = c.x_dim, t.h_dim = c.h_dim, t.z_dim = c.z_dim;
    t.batch = c.batch, t.k = c.k, t.sir_m = c.sir_m, t.iwae_dreg = c.iwae_dreg != 0;
    t.svi_eta = c.svi_eta, t.svi_rule = c.svi_rule, t.svi_clip = c.svi_clip;
    t.lr = c.lr, t.beta1 = c.beta1, t.beta2 = c.beta2, t.adam_eps = c.adam_eps;
    t.kl_anneal = c.kl_anneal, t.pi_lr = c.pi_lr, t.seed = c.seed;
    return t;
}

} // namespace

int main() {
    tvae::trainer::set_threads(1);
    vae_dataset ds;
    char err[512];
    if (vae_load_builtin("train", &ds, err, sizeof err)) {
        std::fprintf(stderr, "torch_agreement: %s\n", err);
        return 1;
    }
    const std::size_t n_train = ds.n - ds.n / 10, X = ds.dim;
    std::vector<double> pixel_mean(X, 0.0);
    for (std::size_t i = 0; i < n_train; ++i)
        for (std::size_t j = 0; j < X; ++j) pixel_mean[j] += ds.pixels[i * X + j] / 255.0;
    for (double &v : pixel_mean) v /= static_cast<double>(n_train);

    const case_t cases[] = {
        {VAE_METHOD_VAE, VAE_LIK_BERNOULLI, 0},      {VAE_METHOD_IWAE, VAE_LIK_BERNOULLI, 0},
        {VAE_METHOD_IWAE, VAE_LIK_BERNOULLI, 1},     {VAE_METHOD_SVI, VAE_LIK_BERNOULLI, 0},
        {VAE_METHOD_BSVI, VAE_LIK_BERNOULLI, 0},     {VAE_METHOD_BSVI_DS, VAE_LIK_BERNOULLI, 0},
        {VAE_METHOD_BSVI_SIR, VAE_LIK_BERNOULLI, 0}, {VAE_METHOD_BSVI_SIR_PI, VAE_LIK_BERNOULLI, 0},
        {VAE_METHOD_VAE, VAE_LIK_LOGISTIC, 0},       {VAE_METHOD_BSVI_SIR, VAE_LIK_LOGISTIC, 0},
    };
    int failures = 0;
    std::printf("| method | lik | step | init bits | bound max abs | bound max rel | "
                "grad rel L2 enc | grad rel L2 dec | grad worst block (max|d|/max|g|) | "
                "stats max abs |\n|---|---|---|---|---|---|---|---|---|---|\n");
    for (const case_t &cs : cases) {
        vae_config cfg;
        vae_config_default(&cfg);
        cfg.method = cs.m;
        cfg.lik = cs.lik;
        cfg.iwae_dreg = cs.dreg;
        vae_trainer t;
        if (vae_trainer_init(&t, &cfg, pixel_mean.data())) {
            std::fprintf(stderr, "torch_agreement: vae_trainer_init: %s\n", t.err);
            return 1;
        }
        const std::size_t B = cfg.batch, H = cfg.h_dim, Z = cfg.z_dim, P = t.net.nparams;
        const block blocks[] = {{"enc_w1", H * X}, {"enc_b1", H},     {"enc_w2", H * H},
                                {"enc_b2", H},     {"enc_w3", 2 * Z * H}, {"enc_b3", 2 * Z},
                                {"dec_w1", H * Z}, {"dec_b1", H},     {"dec_w2", H * H},
                                {"dec_b2", H},     {"dec_w3", X * H}, {"dec_b3", X},
                                {"log_scale", 1}};
        std::string label = vae_method_name(cs.m);
        if (cs.dreg) label += " (DReG)";
        const char *lik = cs.lik == VAE_LIK_LOGISTIC ? "logistic" : "bernoulli";
        try {
            tvae::trainer tt(torch_config(cfg), pixel_mean.data());
            if (tt.num_params() != P) {
                std::fprintf(stderr, "torch_agreement: %zu parameters, examples/vae has %zu\n",
                             tt.num_params(), P);
                return 1;
            }
            std::vector<float> p(P), g(P);
            tt.get_params(p.data());
            std::size_t init_diff = 0;
            for (std::size_t i = 0; i < P; ++i)
                init_diff += std::memcmp(&p[i], &t.net.params[i], sizeof(float)) != 0;
            if (init_diff) ++failures;
            std::vector<double> x(B * X);
            std::vector<std::size_t> rows(B);
            for (int s = 0; s < 2; ++s) {
                if (s > 0) tt.set_params(t.net.params); /* the same start again */
                for (std::size_t i = 0; i < B; ++i) rows[i] = static_cast<std::size_t>(s) * B + i;
                if (cs.lik == VAE_LIK_LOGISTIC)
                    vae_gray(&ds, rows.data(), B, x.data());
                else
                    vae_binarize(&ds, rows.data(), B, cfg.seed ^ train_binarize_salt, t.step,
                                 x.data());
                vae_stats sc;
                if (vae_trainer_step(&t, x.data(), &sc)) {
                    std::fprintf(stderr, "torch_agreement: vae_trainer_step: %s\n", t.err);
                    return 1;
                }
                tvae::stats st;
                tt.step(x.data(), &st);
                double b_abs = 0, b_rel = 0;
                const double *tb = tt.last_bounds();
                for (std::size_t i = 0; i < B; ++i) {
                    const double d = std::fabs(tb[i] - t.bounds[i]);
                    b_abs = std::max(b_abs, d);
                    b_rel = std::max(b_rel, d / std::max(1.0, std::fabs(t.bounds[i])));
                }
                tt.get_gradients(g.data());
                const double l2_enc = rel_l2(g.data(), t.net.grads, 0, t.net.n_encoder);
                const double l2_dec = rel_l2(g.data(), t.net.grads, t.net.n_encoder, P);
                double worst = 0;
                const char *worst_name = "-";
                std::size_t off = 0;
                for (const block &bl : blocks) {
                    double dmax = 0, gmax = 0;
                    for (std::size_t i = off; i < off + bl.n; ++i) {
                        dmax = std::max(dmax, std::fabs(static_cast<double>(g[i]) - t.net.grads[i]));
                        gmax = std::max(gmax, std::fabs(static_cast<double>(t.net.grads[i])));
                    }
                    const double r = gmax > 0 ? dmax / gmax : dmax;
                    if (r > worst) worst = r, worst_name = bl.name;
                    off += bl.n;
                }
                double s_abs = std::max({nan_diff(st.bound, sc.bound), nan_diff(st.svi0, sc.svi0),
                                         nan_diff(st.svik, sc.svik), nan_diff(st.bsvik, sc.bsvik),
                                         nan_diff(st.mean_pos, sc.mean_pos)});
                if (t.pi) {
                    const std::vector<double> pt = tt.pi_probs();
                    std::vector<double> pc(pt.size());
                    bsvi_buffer_weights_get_probs(t.pi, pc.data(), pc.size());
                    for (std::size_t i = 0; i < pc.size(); ++i)
                        s_abs = std::max(s_abs, std::fabs(pt[i] - pc[i]));
                }
                const bool ok = init_diff == 0 && b_rel <= tol_bound_rel &&
                                l2_enc <= tol_grad_l2 && l2_dec <= tol_grad_l2 &&
                                worst <= tol_grad_block && s_abs <= tol_stat;
                if (!ok) ++failures;
                std::printf("| %s | %s | %d | %zu differ | %.2e | %.2e | %.2e | %.2e | %.2e (%s) | "
                            "%.2e |%s\n",
                            label.c_str(), lik, s + 1, init_diff, b_abs, b_rel, l2_enc, l2_dec,
                            worst, worst_name, s_abs, ok ? "" : " FAIL");
            }
        } catch (const std::exception &e) {
            std::fprintf(stderr, "torch_agreement: %s (%s): %s\n", label.c_str(), lik, e.what());
            ++failures;
        }
        vae_trainer_free(&t);
    }
    vae_dataset_free(&ds);
    std::printf("tolerances: bound %.0e relative; gradient rel L2 %.0e, per block %.0e; stats %.0e\n",
                tol_bound_rel, tol_grad_l2, tol_grad_block, tol_stat);
    if (failures) std::printf("torch_agreement: %d failure(s)\n", failures);
    return failures ? 1 : 0;
}
