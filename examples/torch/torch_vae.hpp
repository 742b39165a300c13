/* The VAE of examples/vae with LibTorch networks, trained through bsvi.hpp.
 *
 * Model: the IWAE paper's one-stochastic-layer VAE, 784-200-200-50 tanh MLP encoder
 * (x -> mean | log-std) and decoder (z -> Bernoulli logits, or discretised-logistic means
 * with one learned global log-scale), as torch::nn::Linear modules in float32, optimised
 * by torch::optim::Adam with amsgrad(true) (the same update as examples/vae's AMSGrad).
 *
 * One step, as examples/vae/train.c (same libbsvi calls, same seeds and streams):
 *   1. encoder forward with autograd; lambda_0 = (mean, log-std clamped to [-12, 8]) is
 *      converted into the trainer's double tensors and handed to the proposal (spans over
 *      the tensors' memory: no copy inside the library's API);
 *   2. the method's libbsvi calls; the likelihood callback wraps the library's double
 *      buffers with torch::from_blob, runs the decoder under torch::NoGradGuard when the
 *      library asks for log-densities only, and with autograd on z alone
 *      (torch::autograd::grad w.r.t. z, no parameter gradient) when it asks for d/dz;
 *   3. decoder gradient: the estimator's targets (data point, z, coefficient) become the
 *      weighted log-likelihood sum_t coef_t/B * log p(x_b(t) | z_t), whose backward() gives
 *      the decoder's parameter gradients (targets written into preallocated tensors). Where
 *      the targets are rows of this step's z-gradient callbacks (ELBO, IWAE: the last call's
 *      rows; BSVI: the SVI steps' rows) the callbacks' graphs are kept (retain_graph) and the
 *      weighted sum is taken over their log-likelihoods, so those rows get no second
 *      forward; the other targets (BSVI-SIR's few, the last slot's) get a forward of their own;
 *   4. encoder gradient: the library's (d mean, d log-std) / B (zero where the log-std was
 *      clamped; KL annealing as train.c) is pushed into the encoder's output with
 *      backward(gradient);
 *   5. one AMSGrad step (torch minimises: the gradients held are of minus the bound).
 *
 * The interface has no LibTorch type in it (everything torch is in torch_vae.cpp), so that
 * the programs and the test that include it compile without LibTorch's headers.
 */
#ifndef VAE_TORCH_HPP
#define VAE_TORCH_HPP

#include <bsvi/bsvi.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace tvae {

/** Training methods, in examples/vae's order (vae_method) and with its CLI names. */
enum class method { vae = 0, iwae, svi, bsvi, bsvi_ds, bsvi_sir, bsvi_sir_pi };
constexpr int num_methods = 7;
/** The CLI name ("vae", "iwae", "svi", "bsvi", "bsvi-ds", "bsvi-sir", "bsvi-sir-pi"). */
const char *method_name(method m);
/** Parses a CLI name; false when unknown. */
bool parse_method(const std::string &s, method *out);
/** true for the methods that run SVI (svi, bsvi*). */
inline bool uses_svi(method m) { return static_cast<int>(m) >= static_cast<int>(method::svi); }

/** Pixel likelihoods (examples/vae/nn.h vae_likelihood). */
enum class likelihood { bernoulli = 0, logistic = 1 };

/** The configuration; defaults are examples/vae's (vae_config_default). */
struct config {
    method meth = method::bsvi_sir;
    likelihood lik = likelihood::bernoulli;
    std::size_t x_dim = 784, h_dim = 200, z_dim = 50;
    std::size_t batch = 100;
    std::size_t k = 9;       /* BSVI steps; svi takes k+1, iwae draws k+1 samples */
    std::size_t sir_m = 1;
    bool iwae_dreg = false;
    double svi_eta = 5e-3;
    bsvi_step_rule svi_rule = BSVI_STEP_GRADIENT;
    double svi_clip = 0.0;
    double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, adam_eps = 1e-8;
    std::uint64_t kl_anneal = 0;
    double pi_lr = 1e-2;
    std::uint64_t seed = 1;
};

/** Per-batch means (NaN when not applicable), as examples/vae's vae_stats. */
struct stats {
    double bound, svi0, svik, bsvik, mean_pos;
};

/** Seconds spent in the parts of the steps since the last reset (bench). */
struct timing {
    double total = 0;     /* whole steps */
    double enc_fwd = 0;   /* encoder forward, conversion to double, set_params */
    double lib = 0;       /* inside libbsvi calls, callbacks included */
    double callback = 0;  /* inside the likelihood callback (within lib) */
    double dec_grad = 0;  /* targets out, weighted log-likelihood forward + backward */
    double enc_bwd = 0;   /* encoder gradient out, backward(gradient) */
    double optim = 0;     /* zero_grad, finiteness check, Adam step */
    std::uint64_t steps = 0;
    std::uint64_t callbacks = 0;
    std::uint64_t callback_rows = 0;
    std::uint64_t targets_reused = 0;     /* decoder targets whose forward was a callback's */
    std::uint64_t targets_recomputed = 0; /* decoder targets given a forward of their own */
};

class trainer {
public:
    /** Networks initialised as examples/vae's vae_net_randomize(seed, pixel_mean): the same
     *  Glorot-uniform draws (splitmix64 stream), zero biases, output bias from the pixel
     *  means (x_dim values in [0,1], or nullptr for 0.5), log-scale log(0.1). Throws on error. */
    trainer(const config &cfg, const double *pixel_mean);
    ~trainer();
    trainer(const trainer &) = delete;
    trainer &operator=(const trainer &) = delete;

    const config &cfg() const;

    /** One training step on cfg().batch rows of x (0/1 pixels, or gray levels 0..255 for the
     *  logistic likelihood). Throws std::runtime_error (or bsvi::error) on failure. */
    void step(const double *x, stats *st);

    /** The method's bound on B <= batch rows without an update (validation, as
     *  vae_trainer_bound): streams 2^31 + stream; per-point bounds to out (B) if not null. */
    void bound(const double *x, std::size_t B, std::uint64_t stream, stats *st, double *out);

    /** Per-point bounds of the last step (batch values). */
    const double *last_bounds() const;
    /** Optimiser steps taken. */
    std::uint64_t steps() const;

    /** Scalars in examples/vae's flat layout (nn.h: enc_w1, enc_b1, ..., dec_b3, log_scale). */
    std::size_t num_params() const;
    void get_params(float *out) const;
    void set_params(const float *in);
    /** The last step's gradient of the bound (ascent sign, as nn.h's net->grads), flat. */
    void get_gradients(float *out) const;
    /** The buffer weights' probabilities (k+1; empty for methods without pi). */
    std::vector<double> pi_probs() const;

    /** torch::save of the networks, the optimiser and the progress (epoch, step, pi). */
    void save(const std::string &path, std::uint64_t epoch, double best_valid) const;

    timing &timers();

    /** torch::set_num_threads / torch::get_num_threads. */
    static void set_threads(int n);
    /** torch::set_flush_denormal (FTZ/DAZ for this thread's float math): examples/vae flushes
     *  tiny coefficients and gradients itself; without it, denormals in the decoder's
     *  backward can cost several times a step (docs/performance.md). true if supported. */
    static bool set_flush_denormal(bool on);
    static int threads();
    /** LibTorch's operator profiler (legacy, chrome-trace JSON written to path when
     *  profile_end() is called): every aten operator and autograd node of the steps between. */
    static void profile_begin(const std::string &path);
    static void profile_end();
    /** LibTorch's version string. */
    static std::string torch_version();

private:
    struct impl;
    std::unique_ptr<impl> p_;
};

} // namespace tvae

#endif /* VAE_TORCH_HPP */
