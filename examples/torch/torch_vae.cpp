/* The LibTorch host (see torch_vae.hpp): the only translation unit with LibTorch's headers. */
#include "torch_vae.hpp"

#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <cmath>
#include <cstdio>
#include <optional>
#include <stdexcept>

namespace tvae {

namespace {

/* examples/vae/train.c: the log-std clamp, the validation streams */
constexpr double log_std_min = -12.0;
constexpr double log_std_max = 8.0;
constexpr std::uint64_t stream_offset = std::uint64_t(1) << 31;

const char *const names[num_methods] = {"vae",  "iwae",     "svi",        "bsvi",
                                        "bsvi-ds", "bsvi-sir", "bsvi-sir-pi"};

double now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

/* Adds the seconds since construction to *acc. */
struct scoped_timer {
    double *acc;
    double t0;
    explicit scoped_timer(double *a) : acc(a), t0(now()) {}
    ~scoped_timer() { *acc += now() - t0; }
};

/* examples/vae/nn.c's initialisation, bit for bit: splitmix64, Glorot uniform in double
 * rounded once to float. */
std::uint64_t splitmix64(std::uint64_t *state) {
    std::uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
double uniform_pm1(std::uint64_t *state) {
    return (static_cast<double>(splitmix64(state) >> 11) + 0.5) * 0x1.0p-52 - 1.0;
}
void glorot(float *w, std::size_t fan_out, std::size_t fan_in, std::uint64_t *state) {
    const double a = std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
    for (std::size_t i = 0; i < fan_out * fan_in; ++i)
        w[i] = static_cast<float>(a * uniform_pm1(state));
}

/* x -> tanh -> tanh -> linear */
struct MLPImpl : torch::nn::Module {
    torch::nn::Linear l1{nullptr}, l2{nullptr}, l3{nullptr};
    MLPImpl(std::int64_t in, std::int64_t hidden, std::int64_t out) {
        l1 = register_module("l1", torch::nn::Linear(in, hidden));
        l2 = register_module("l2", torch::nn::Linear(hidden, hidden));
        l3 = register_module("l3", torch::nn::Linear(hidden, out));
    }
    torch::Tensor forward(const torch::Tensor &x) {
        return l3(torch::tanh(l2(torch::tanh(l1(x)))));
    }
};
TORCH_MODULE(MLP);

/* The decoder: the MLP and the discretised logistic's global log-scale. */
struct DecoderImpl : torch::nn::Module {
    MLP net{nullptr};
    torch::Tensor log_scale;
    DecoderImpl(std::int64_t z, std::int64_t hidden, std::int64_t x) {
        net = register_module("net", MLP(z, hidden, x));
        log_scale = register_parameter("log_scale", torch::full({1}, std::log(0.1)));
    }
    torch::Tensor forward(const torch::Tensor &z) { return net(z); }
};
TORCH_MODULE(Decoder);

} // namespace

const char *method_name(method m) {
    const int i = static_cast<int>(m);
    return i >= 0 && i < num_methods ? names[i] : "unknown";
}

bool parse_method(const std::string &s, method *out) {
    for (int i = 0; i < num_methods; ++i)
        if (s == names[i]) {
            *out = static_cast<method>(i);
            return true;
        }
    return false;
}

struct trainer::impl {
    config c;
    std::int64_t B, X, H, Z;
    MLP enc{nullptr};
    Decoder dec{nullptr};
    std::vector<torch::Tensor> flat; /* parameters in nn.h's order */
    std::unique_ptr<torch::optim::Adam> opt;

    bsvi::model model;
    bsvi::proposal q;
    std::optional<bsvi::proposal> q_aux;
    bsvi::svi svi;
    bsvi::trajectory traj;
    bsvi::estimator est;
    std::optional<bsvi::buffer_weights> pi;

    /* preallocated buffers (the library reads and writes them through spans) */
    std::int64_t max_targets, max_rows;
    torch::Tensor x_f;       /* B x X float: the batch (0/1 or gray levels) */
    torch::Tensor enc_in;    /* B x X float: x/255 for gray levels */
    torch::Tensor mean_d, logstd_d, raw_logstd_d; /* B x Z double */
    torch::Tensor dmean_d, dlogstd_d;             /* B x Z double */
    torch::Tensor enc_grad;  /* B x 2Z float */
    torch::Tensor bounds_d;  /* B double */
    torch::Tensor t_idx;     /* max_targets int64 (the library's size_t) */
    torch::Tensor t_z;       /* max_targets x Z double */
    torch::Tensor t_coef;    /* max_targets double */
    torch::Tensor z_f;       /* max_rows x Z float: the callback's z rows */
    torch::Tensor x_rows;    /* max_rows x X float: the callback's data rows */
    torch::Tensor cur_x;     /* the current rows' data (a view of x_f), undefined outside */
    std::uint64_t step = 0;

    /* The graphs of this step's z-gradient callbacks (recording: training steps only), so
     * that decoder targets that are rows of them (ELBO, IWAE: the last callback's rows; BSVI:
     * rows of the SVI steps) get their parameter gradient by a backward through the graph
     * already built instead of a second forward (examples/vae's vae_decoder_accumulate_reuse
     * does the same with its kept activations). */
    struct record {
        torch::Tensor z;                /* n x Z float, the rows as the decoder saw them */
        std::vector<std::int64_t> idx;  /* n data-point indices */
        bool ident;                     /* row r is data point r */
        torch::Tensor ll;               /* n log-likelihoods, with the parameters' graph */
    };
    std::vector<record> recs;
    bool recording = false;
    timing tm;

    impl(const config &cfg)
        : c(cfg), B(static_cast<std::int64_t>(cfg.batch)),
          X(static_cast<std::int64_t>(cfg.x_dim)), H(static_cast<std::int64_t>(cfg.h_dim)),
          Z(static_cast<std::int64_t>(cfg.z_dim)), model(cfg.z_dim), q(cfg.batch, cfg.z_dim),
          svi(cfg.z_dim), est(cfg.z_dim) {
        if (c.batch == 0 || c.k == 0 || c.sir_m == 0)
            throw std::runtime_error("batch, k and M must be positive");
        enc = MLP(X, H, 2 * Z);
        dec = Decoder(Z, H, X);
        for (auto *l : {&enc->l1, &enc->l2, &enc->l3}) {
            flat.push_back((*l)->weight);
            flat.push_back((*l)->bias);
        }
        for (auto *l : {&dec->net->l1, &dec->net->l2, &dec->net->l3}) {
            flat.push_back((*l)->weight);
            flat.push_back((*l)->bias);
        }
        flat.push_back(dec->log_scale);
        opt = std::make_unique<torch::optim::Adam>(
            flat, torch::optim::AdamOptions(c.lr)
                      .betas(std::make_tuple(c.beta1, c.beta2))
                      .eps(c.adam_eps)
                      .amsgrad(true));

        const std::int64_t K1 = static_cast<std::int64_t>(c.k) + 1;
        std::int64_t per = K1 + 1;
        if (static_cast<std::int64_t>(c.sir_m) > per) per = static_cast<std::int64_t>(c.sir_m);
        max_targets = B * per;
        max_rows = max_targets > 2 * B ? max_targets : 2 * B;
        const auto f32 = torch::TensorOptions().dtype(torch::kFloat);
        const auto f64 = torch::TensorOptions().dtype(torch::kDouble);
        x_f = torch::zeros({B, X}, f32);
        enc_in = torch::zeros({B, X}, f32);
        mean_d = torch::zeros({B, Z}, f64);
        logstd_d = torch::zeros({B, Z}, f64);
        raw_logstd_d = torch::zeros({B, Z}, f64);
        dmean_d = torch::zeros({B, Z}, f64);
        dlogstd_d = torch::zeros({B, Z}, f64);
        enc_grad = torch::zeros({B, 2 * Z}, f32);
        bounds_d = torch::zeros({B}, f64);
        static_assert(sizeof(std::size_t) == sizeof(std::int64_t), "size_t is 64 bits");
        t_idx = torch::zeros({max_targets}, torch::TensorOptions().dtype(torch::kLong));
        t_z = torch::zeros({max_targets, Z}, f64);
        t_coef = torch::zeros({max_targets}, f64);
        z_f = torch::zeros({max_rows, Z}, f32);
        x_rows = torch::zeros({max_rows, X}, f32);

        model.set_likelihood([this](std::size_t n, std::size_t dim, const double *z,
                                    const std::size_t *data_index, double *logp, double *grad) {
            likelihood_cb(n, dim, z, data_index, logp, grad);
        });

        bsvi_svi_options o = bsvi::default_svi_options();
        o.steps = c.meth == method::svi ? c.k + 1 : c.k;
        o.step_size = c.svi_eta;
        o.rule = c.svi_rule;
        o.clip_norm = c.svi_clip;
        o.double_sampling = c.meth == method::bsvi_ds;
        o.divergence = BSVI_DIVERGENCE_FREEZE;
        svi.set_options(o).set_seed(c.seed * 8 + 1);
        est.set_seed(c.seed * 8 + 3).set_point_policy(BSVI_POINTS_FAIL);
        if (uses_svi(c.meth) && c.meth != method::svi) {
            pi.emplace(c.k + 1);
            pi->set_adam(c.pi_lr, 0.9, 0.999);
        }
    }

    /* log p(x | decoder output) per row (n), float; x: n x X data rows */
    torch::Tensor log_lik(const torch::Tensor &out, const torch::Tensor &x) {
        if (c.lik == likelihood::bernoulli)
            return (x * out - torch::softplus(out)).sum(1);
        /* discretised logistic on [-1, 1], bins of width 2/255 (nn.h) */
        const double h = 1.0 / 255.0;
        torch::Tensor inv = torch::exp(-dec->log_scale);
        torch::Tensor xs = x / 127.5 - 1.0;
        torch::Tensor centred = xs - out;
        torch::Tensor a = (centred + h) * inv;
        torch::Tensor b = (centred - h) * inv;
        torch::Tensor log1m = torch::log(-torch::expm1(-2.0 * h * inv));
        torch::Tensor la = torch::log_sigmoid(a), lnb = torch::log_sigmoid(-b);
        torch::Tensor v = torch::where(x < 0.5, la,
                                       torch::where(x > 254.5, lnb, la + lnb + log1m));
        return v.sum(1);
    }

    bool ident_rows(std::int64_t n, const std::int64_t *idx) const {
        bool ident = n <= cur_x.size(0);
        for (std::int64_t r = 0; ident && r < n; ++r) ident = idx[r] == r;
        return ident;
    }

    /* The data rows of data_index (n) of cur_x: a view when they are rows 0..n-1. */
    torch::Tensor rows_of(std::int64_t n, const std::int64_t *idx, const torch::Tensor &idx_t) {
        if (ident_rows(n, idx)) return cur_x.narrow(0, 0, n);
        torch::Tensor out = x_rows.narrow(0, 0, n);
        torch::index_select_out(out, cur_x, 0, idx_t);
        return out;
    }

    void likelihood_cb(std::size_t n_, std::size_t dim, const double *z,
                       const std::size_t *data_index, double *logp, double *grad) {
        scoped_timer t(&tm.callback);
        const auto n = static_cast<std::int64_t>(n_);
        if (dim != c.z_dim || !cur_x.defined())
            throw std::runtime_error("likelihood callback outside a step");
        if (n > max_rows)
            throw std::runtime_error("likelihood callback: too many rows");
        tm.callbacks++;
        tm.callback_rows += n_;
        const auto *idx = reinterpret_cast<const std::int64_t *>(data_index);
        torch::Tensor idx_t = torch::from_blob(const_cast<std::int64_t *>(idx), {n}, torch::kLong);
        torch::Tensor zd = torch::from_blob(const_cast<double *>(z), {n, Z}, torch::kDouble);
        torch::Tensor zf = z_f.narrow(0, 0, n);
        torch::Tensor out_lp = torch::from_blob(logp, {n}, torch::kDouble);
        if (grad) { /* autograd on z only: no parameter gradient is accumulated */
            torch::AutoGradMode on(true);
            /* a kept graph saves its inputs: fresh tensors then, not the reused buffers */
            torch::Tensor zl = recording ? zd.to(torch::kFloat) : zf.copy_(zd).detach();
            zl.requires_grad_(true);
            torch::Tensor xr = recording ? (ident_rows(n, idx) ? cur_x.narrow(0, 0, n)
                                                               : cur_x.index_select(0, idx_t))
                                         : rows_of(n, idx, idx_t);
            torch::Tensor ll = log_lik(dec->forward(zl), xr);
            torch::Tensor g = torch::autograd::grad({ll.sum()}, {zl}, {}, recording)[0];
            torch::from_blob(grad, {n, Z}, torch::kDouble).copy_(g);
            out_lp.copy_(ll.detach());
            if (recording)
                recs.push_back({zl.detach(), std::vector<std::int64_t>(idx, idx + n),
                                ident_rows(n, idx), ll});
        } else {
            zf.copy_(zd);
            torch::Tensor xr = rows_of(n, idx, idx_t);
            torch::NoGradGuard off;
            out_lp.copy_(log_lik(dec->forward(zf), xr));
        }
    }

    /* x -> x_f (and enc_in); encoder forward; lambda_0 into the double tensors and q.
     * Returns the encoder's output (with its graph when grad mode is on). */
    torch::Tensor encode(const double *x, std::int64_t n, bsvi::proposal &qq) {
        torch::Tensor xd = torch::from_blob(const_cast<double *>(x), {n, X}, torch::kDouble);
        torch::Tensor xf = x_f.narrow(0, 0, n);
        xf.copy_(xd);
        torch::Tensor in = xf;
        if (c.lik == likelihood::logistic) {
            in = enc_in.narrow(0, 0, n);
            torch::div_out(in, xf, 255.0);
        }
        cur_x = xf;
        torch::Tensor out = enc->forward(in);
        torch::Tensor m = mean_d.narrow(0, 0, n), ls = logstd_d.narrow(0, 0, n);
        torch::Tensor raw = raw_logstd_d.narrow(0, 0, n);
        {
            torch::NoGradGuard off;
            m.copy_(out.narrow(1, 0, Z));
            raw.copy_(out.narrow(1, Z, Z));
            if (!torch::isfinite(m).all().item<bool>() || !torch::isfinite(raw).all().item<bool>())
                throw std::runtime_error(
                    "the encoder produced a non-finite output (training diverged)");
            torch::clamp_out(ls, raw, log_std_min, log_std_max);
        }
        const std::size_t nz = static_cast<std::size_t>(n * Z);
        qq.set_params(bsvi::span<const double>(m.data_ptr<double>(), nz),
                      bsvi::span<const double>(ls.data_ptr<double>(), nz));
        return out;
    }

    void health(stats *st) {
        const bsvi_health h = traj.health(pi ? &*pi : nullptr);
        st->svi0 = h.svi0;
        st->svik = h.svik;
        st->bsvik = h.bsvik;
    }

    void trajectory_bound(std::size_t resample_m) {
        if (c.meth == method::svi)
            est.svi(traj);
        else if (resample_m > 0)
            est.bsvi_sir(traj, pi ? &*pi : nullptr, resample_m);
        else
            est.bsvi(traj, pi ? &*pi : nullptr);
    }

    void proposal_bound(const bsvi::proposal &qq) {
        if (c.meth == method::iwae)
            est.iwae(model, qq, c.k + 1, c.iwae_dreg ? BSVI_GRAD_DREG : BSVI_GRAD_PATHWISE);
        else
            est.elbo(model, qq, BSVI_GRAD_PATHWISE);
    }

    /* sum_t coef_t log p(x_b(t) | z_t) over the n targets (zt float, coef float), with the
     * decoder's graph: the kept graphs of this step's callbacks where the targets are their
     * rows, a forward on the rest. */
    torch::Tensor targets_objective(std::int64_t n, const torch::Tensor &zt,
                                    const torch::Tensor &coef) {
        const std::int64_t *ti = t_idx.data_ptr<std::int64_t>();
        const float *zp = zt.data_ptr<float>();
        const std::size_t zb = static_cast<std::size_t>(Z) * sizeof(float);
        /* (1) the targets are exactly the rows of one kept callback, in order */
        for (auto it = recs.rbegin(); it != recs.rend(); ++it)
            if (it->z.size(0) == n &&
                std::equal(it->idx.begin(), it->idx.end(), ti) &&
                std::memcmp(it->z.data_ptr<float>(), zp, zb * static_cast<std::size_t>(n)) == 0)
            {
                tm.targets_reused += static_cast<std::uint64_t>(n);
                return (it->ll * coef).sum();
            }
        /* (2) each target row b is row b of a kept callback whose rows are the batch in order
         * (newest first); a callback is used when at least half of its rows are targets
         * (else one small forward is cheaper than a backward through all of its rows) */
        std::vector<int> where(static_cast<std::size_t>(n), -1);
        std::vector<std::int64_t> used(recs.size(), 0);
        for (std::int64_t j = 0; j < n; ++j)
            for (std::size_t r = recs.size(); r-- > 0;) {
                const record &rc = recs[r];
                const std::int64_t b = ti[j];
                if (rc.ident && b < rc.z.size(0) &&
                    std::memcmp(rc.z.data_ptr<float>() + b * Z, zp + j * Z, zb) == 0) {
                    where[static_cast<std::size_t>(j)] = static_cast<int>(r);
                    used[r]++;
                    break;
                }
            }
        for (std::size_t r = 0; r < recs.size(); ++r)
            if (used[r] * 2 < recs[r].z.size(0)) used[r] = 0;
        std::vector<torch::Tensor> cw(recs.size());
        std::vector<std::int64_t> rest;
        const float *cp = coef.data_ptr<float>();
        for (std::int64_t j = 0; j < n; ++j) {
            const int r = where[static_cast<std::size_t>(j)];
            if (r < 0 || used[static_cast<std::size_t>(r)] == 0) {
                rest.push_back(j);
                continue;
            }
            torch::Tensor &cr = cw[static_cast<std::size_t>(r)];
            if (!cr.defined()) cr = torch::zeros({recs[static_cast<std::size_t>(r)].z.size(0)});
            cr.data_ptr<float>()[ti[j]] += cp[j];
        }
        tm.targets_recomputed += rest.size();
        tm.targets_reused += static_cast<std::uint64_t>(n) - rest.size();
        torch::Tensor objective = torch::zeros({}, torch::kFloat);
        for (std::size_t r = 0; r < recs.size(); ++r)
            if (cw[r].defined()) objective = objective + (recs[r].ll * cw[r]).sum();
        if (!rest.empty()) {
            const auto m = static_cast<std::int64_t>(rest.size());
            torch::Tensor sel = torch::from_blob(rest.data(), {m}, torch::kLong);
            torch::Tensor idx = t_idx.narrow(0, 0, n).index_select(0, sel);
            torch::Tensor xr = rows_of(m, idx.data_ptr<std::int64_t>(), idx);
            objective = objective + (log_lik(dec->forward(zt.index_select(0, sel)), xr) *
                                     coef.index_select(0, sel)).sum();
        }
        return objective;
    }

    static double mean_of(const double *v, std::int64_t n) {
        double s = 0.0;
        for (std::int64_t i = 0; i < n; ++i) s += v[i];
        return s / static_cast<double>(n);
    }

    void do_step(const double *x, stats *st) {
        const double t_start = now();
        st->bound = st->svi0 = st->svik = st->bsvik = st->mean_pos = NAN;
        opt->zero_grad();
        recs.clear();
        recording = true;

        /* 1. encoder */
        torch::Tensor out;
        {
            scoped_timer t(&tm.enc_fwd);
            out = encode(x, B, q);
        }

        /* 2. the method's bound */
        {
            scoped_timer t(&tm.lib);
            svi.set_stream(step, 0);
            est.set_stream(step, 0);
            if (uses_svi(c.meth)) {
                svi.run(model, q, traj);
                health(st);
                const bool sir = c.meth == method::bsvi_sir || c.meth == method::bsvi_sir_pi;
                trajectory_bound(sir ? c.sir_m : 0);
                st->mean_pos = pi ? pi->mean_position() : 1.0;
                if (c.meth == method::bsvi_sir_pi) pi->accumulate(traj).step();
            } else {
                proposal_bound(q);
            }
            est.bounds(bsvi::span<double>(bounds_d.data_ptr<double>(), c.batch));
        }
        recording = false;
        st->bound = mean_of(bounds_d.data_ptr<double>(), B);

        /* 3. decoder gradient: backward of -sum coef/B * log p(x_b | z) */
        {
            scoped_timer t(&tm.dec_grad);
            const std::size_t nt = est.num_targets();
            if (nt == 0 || nt > static_cast<std::size_t>(max_targets))
                throw std::runtime_error("unexpected number of decoder targets " +
                                         std::to_string(nt));
            const auto n = static_cast<std::int64_t>(nt);
            est.targets(bsvi::span<std::size_t>(
                            reinterpret_cast<std::size_t *>(t_idx.data_ptr<std::int64_t>()), nt),
                        {}, bsvi::span<double>(t_z.data_ptr<double>(), nt * c.z_dim),
                        bsvi::span<double>(t_coef.data_ptr<double>(), nt));
            torch::Tensor zt = t_z.narrow(0, 0, n).to(torch::kFloat);
            torch::Tensor coef = t_coef.narrow(0, 0, n).to(torch::kFloat) / static_cast<float>(B);
            torch::Tensor objective = targets_objective(n, zt, coef);
            (-objective).backward();
            recs.clear();
        }

        /* 4. encoder gradient: the library's d/dlambda_0 / B into the encoder's output */
        {
            scoped_timer t(&tm.enc_bwd);
            const std::size_t nz = c.batch * c.z_dim;
            est.encoder_grad(bsvi::span<double>(dmean_d.data_ptr<double>(), nz),
                             bsvi::span<double>(dlogstd_d.data_ptr<double>(), nz));
            torch::NoGradGuard off;
            torch::Tensor dm = dmean_d, ds = dlogstd_d;
            if (c.kl_anneal > 0 && step < c.kl_anneal) { /* ELBO + (1 - beta) KL */
                const double beta = static_cast<double>(step) / static_cast<double>(c.kl_anneal);
                dm = dm + (1.0 - beta) * mean_d;
                ds = ds + (1.0 - beta) * (torch::exp(2.0 * logstd_d) - 1.0);
            }
            ds = ds.masked_fill(raw_logstd_d.ne(logstd_d), 0.0); /* clamped: no gradient */
            const double scale = -1.0 / static_cast<double>(B);  /* minimise -bound */
            enc_grad.narrow(1, 0, Z).copy_(dm * scale);
            enc_grad.narrow(1, Z, Z).copy_(ds * scale);
        }
        {
            scoped_timer t(&tm.enc_bwd);
            out.backward(enc_grad);
        }

        /* 5. AMSGrad */
        {
            scoped_timer t(&tm.optim);
            torch::NoGradGuard off;
            for (std::size_t i = 0; i < flat.size(); ++i) {
                const torch::Tensor &g = flat[i].grad();
                if (g.defined() && !std::isfinite(g.sum().item<float>())) /* NaN, inf propagate */
                    throw std::runtime_error("non-finite gradient at step " +
                                             std::to_string(step) + " (parameter tensor " +
                                             std::to_string(i) + ")");
            }
            opt->step();
        }
        step++;
        cur_x = torch::Tensor();
        tm.steps++;
        tm.total += now() - t_start;
    }

    void do_bound(const double *x, std::size_t Bn, std::uint64_t stream, stats *st, double *o) {
        st->bound = st->svi0 = st->svik = st->bsvik = st->mean_pos = NAN;
        if (Bn == 0 || Bn > c.batch)
            throw std::runtime_error("bound: batch of " + std::to_string(Bn) + " rows");
        bsvi::proposal *qq = &q;
        if (Bn != c.batch) {
            if (!q_aux || q_aux->batch() != Bn) {
                q_aux.reset();
                q_aux.emplace(Bn, c.z_dim);
            }
            qq = &*q_aux;
        }
        torch::NoGradGuard off;
        encode(x, static_cast<std::int64_t>(Bn), *qq);
        est.set_stream(stream_offset + stream, 0);
        if (uses_svi(c.meth)) {
            svi.set_stream(stream_offset + stream, 0);
            svi.run(model, *qq, traj);
            health(st);
            trajectory_bound(0);
        } else {
            proposal_bound(*qq);
        }
        est.bounds(bsvi::span<double>(bounds_d.data_ptr<double>(), Bn));
        st->bound = mean_of(bounds_d.data_ptr<double>(), static_cast<std::int64_t>(Bn));
        if (o) std::copy(bounds_d.data_ptr<double>(), bounds_d.data_ptr<double>() + Bn, o);
        cur_x = torch::Tensor();
    }
};

trainer::trainer(const config &cfg, const double *pixel_mean) : p_(std::make_unique<impl>(cfg)) {
    /* examples/vae/nn.c vae_net_randomize, in its flat layout */
    const std::size_t X = cfg.x_dim, H = cfg.h_dim, Z = cfg.z_dim;
    std::vector<float> v(num_params(), 0.0f);
    std::uint64_t st = cfg.seed ^ 0x5EEDC0DE5EEDC0DEull;
    float *enc_w1 = v.data(), *enc_w2 = enc_w1 + H * X + H, *enc_w3 = enc_w2 + H * H + H;
    float *dec_w1 = enc_w3 + 2 * Z * H + 2 * Z, *dec_w2 = dec_w1 + H * Z + H;
    float *dec_w3 = dec_w2 + H * H + H, *dec_b3 = dec_w3 + X * H;
    glorot(enc_w1, H, X, &st);
    glorot(enc_w2, H, H, &st);
    glorot(enc_w3, 2 * Z, H, &st);
    glorot(dec_w1, H, Z, &st);
    glorot(dec_w2, H, H, &st);
    glorot(dec_w3, X, H, &st);
    for (std::size_t j = 0; j < X; ++j) {
        double m = pixel_mean ? pixel_mean[j] : 0.5;
        if (cfg.lik == likelihood::bernoulli) {
            if (m < 1e-3) m = 1e-3;
            if (m > 1.0 - 1e-3) m = 1.0 - 1e-3;
            dec_b3[j] = static_cast<float>(std::log(m / (1.0 - m)));
        } else {
            dec_b3[j] = static_cast<float>(2.0 * m - 1.0);
        }
    }
    v.back() = static_cast<float>(std::log(0.1));
    set_params(v.data());
}

trainer::~trainer() = default;

const config &trainer::cfg() const { return p_->c; }
void trainer::step(const double *x, stats *st) {
    try {
        p_->do_step(x, st);
    } catch (...) {
        p_->cur_x = torch::Tensor();
        p_->recording = false;
        p_->recs.clear();
        throw;
    }
}
void trainer::bound(const double *x, std::size_t B, std::uint64_t stream, stats *st,
                    double *out) {
    try {
        p_->do_bound(x, B, stream, st, out);
    } catch (...) {
        p_->cur_x = torch::Tensor();
        p_->recording = false;
        p_->recs.clear();
        throw;
    }
}
const double *trainer::last_bounds() const { return p_->bounds_d.data_ptr<double>(); }
std::uint64_t trainer::steps() const { return p_->step; }

std::size_t trainer::num_params() const {
    std::size_t n = 0;
    for (const auto &t : p_->flat) n += static_cast<std::size_t>(t.numel());
    return n;
}
void trainer::get_params(float *out) const {
    for (const auto &t : p_->flat) {
        std::memcpy(out, t.data_ptr<float>(), static_cast<std::size_t>(t.numel()) * sizeof(float));
        out += t.numel();
    }
}
void trainer::set_params(const float *in) {
    torch::NoGradGuard off;
    for (auto &t : p_->flat) {
        t.copy_(torch::from_blob(const_cast<float *>(in), t.sizes(), torch::kFloat));
        in += t.numel();
    }
}
void trainer::get_gradients(float *out) const {
    for (const auto &t : p_->flat) {
        const auto n = static_cast<std::size_t>(t.numel());
        const torch::Tensor &g = t.grad();
        if (!g.defined()) {
            std::fill(out, out + n, 0.0f);
        } else {
            const float *s = g.data_ptr<float>();
            for (std::size_t i = 0; i < n; ++i) out[i] = -s[i]; /* torch holds d(-bound) */
        }
        out += n;
    }
}
std::vector<double> trainer::pi_probs() const {
    if (!p_->pi) return {};
    return p_->pi->probs();
}

void trainer::save(const std::string &path, std::uint64_t epoch, double best_valid) const {
    torch::serialize::OutputArchive ar, ae, ad, ao;
    p_->enc->save(ae);
    p_->dec->save(ad);
    p_->opt->save(ao);
    ar.write("encoder", ae);
    ar.write("decoder", ad);
    ar.write("optimizer", ao);
    ar.write("epoch", torch::tensor(static_cast<std::int64_t>(epoch)));
    ar.write("step", torch::tensor(static_cast<std::int64_t>(p_->step)));
    ar.write("best_valid", torch::tensor(best_valid, torch::kDouble));
    ar.write("method", torch::tensor(static_cast<std::int64_t>(p_->c.meth)));
    ar.write("seed", torch::tensor(static_cast<std::int64_t>(p_->c.seed)));
    if (p_->pi) {
        std::vector<double> l = p_->pi->logits();
        bsvi::weights_adam_state s = p_->pi->adam_state();
        ar.write("pi_logits", torch::tensor(l, torch::kDouble));
        ar.write("pi_adam_m", torch::tensor(s.m, torch::kDouble));
        ar.write("pi_adam_v", torch::tensor(s.v, torch::kDouble));
        ar.write("pi_adam_steps", torch::tensor(static_cast<std::int64_t>(s.steps)));
    }
    const std::string tmp = path + ".tmp";
    ar.save_to(tmp);
    if (std::rename(tmp.c_str(), path.c_str()) != 0)
        throw std::runtime_error("cannot rename " + tmp + " to " + path);
}

timing &trainer::timers() { return p_->tm; }

void trainer::set_threads(int n) { torch::set_num_threads(n); }
bool trainer::set_flush_denormal(bool on) { return at::globalContext().setFlushDenormal(on); }
int trainer::threads() { return torch::get_num_threads(); }
namespace {
std::unique_ptr<torch::autograd::profiler::RecordProfile> g_profile;
}
void trainer::profile_begin(const std::string &path) {
    g_profile = std::make_unique<torch::autograd::profiler::RecordProfile>(path);
}
void trainer::profile_end() { g_profile.reset(); }
std::string trainer::torch_version() {
    return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
           std::to_string(TORCH_VERSION_PATCH);
}

} // namespace tvae
