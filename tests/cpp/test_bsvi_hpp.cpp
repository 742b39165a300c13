// test_bsvi_hpp.cpp: tests of the header-only C++17 wrapper include/bsvi/bsvi.hpp.
//
// Plain C++ (no framework): every CHECK that fails prints its line and the program exits
// non-zero. Built as C++17 and, where the compiler has it, as C++20 (tests/cpp/CMakeLists.txt);
// run under ASan/UBSan to check that the owners leak nothing.
#include <bsvi/bsvi.hpp>

#include <array>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#if __cplusplus >= 202002L && __has_include(<span>)
#include <span>
#endif

namespace {

int g_checks = 0;
int g_failures = 0;

#define CHECK(cond)                                                                          \
    do {                                                                                     \
        ++g_checks;                                                                          \
        if (!(cond)) {                                                                       \
            ++g_failures;                                                                    \
            std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);    \
        }                                                                                    \
    } while (0)

// CHECK_THROWS(stmt, Type, var, { checks on var }): stmt must throw exactly a Type (caught
// by reference); other exceptions and no exception are failures.
#define CHECK_THROWS(stmt, Type, var, body)                                                  \
    do {                                                                                     \
        ++g_checks;                                                                          \
        bool thrown_ = false;                                                                \
        try {                                                                                \
            stmt;                                                                            \
        } catch (Type & var) {                                                               \
            thrown_ = true;                                                                  \
            body                                                                             \
        } catch (const std::exception &other_) {                                             \
            thrown_ = true;                                                                  \
            ++g_failures;                                                                    \
            std::fprintf(stderr, "%s:%d: %s threw another exception: %s\n", __FILE__,        \
                         __LINE__, #stmt, other_.what());                                    \
        } catch (...) {                                                                      \
            thrown_ = true;                                                                  \
            ++g_failures;                                                                    \
            std::fprintf(stderr, "%s:%d: %s threw a non-std exception\n", __FILE__,          \
                         __LINE__, #stmt);                                                   \
        }                                                                                    \
        if (!thrown_) {                                                                      \
            ++g_failures;                                                                    \
            std::fprintf(stderr, "%s:%d: %s did not throw %s\n", __FILE__, __LINE__, #stmt,  \
                         #Type);                                                             \
        }                                                                                    \
    } while (0)

#define CHECK_NOTHROW(stmt)                                                                  \
    do {                                                                                     \
        ++g_checks;                                                                          \
        try {                                                                                \
            stmt;                                                                            \
        } catch (const std::exception &e_) {                                                 \
            ++g_failures;                                                                    \
            std::fprintf(stderr, "%s:%d: %s threw: %s\n", __FILE__, __LINE__, #stmt,         \
                         e_.what());                                                         \
        } catch (...) {                                                                      \
            ++g_failures;                                                                    \
            std::fprintf(stderr, "%s:%d: %s threw a non-std exception\n", __FILE__,          \
                         __LINE__, #stmt);                                                   \
        }                                                                                    \
    } while (0)

bool contains(const char *haystack, const char *needle) {
    return std::strstr(haystack, needle) != nullptr;
}

constexpr double kLog2Pi = 1.8378770664093454835606594728112;

// ---- the linear-Gaussian model: z ~ N(0, I_d), x | z ~ N(z, I_d) -------------------------
// log p(x_b | z) = -d/2 log(2 pi) - |x_b - z|^2 / 2, gradient x_b - z;
// exact log p(x_b) = log N(x_b; 0, 2 I) = -d/2 log(4 pi) - |x_b|^2 / 4.
struct lingauss {
    std::size_t d = 0;
    std::vector<double> x;  // B*d

    void operator()(std::size_t n, std::size_t dim, const double *z, const std::size_t *idx,
                    double *logp, double *grad) const {
        for (std::size_t r = 0; r < n; ++r) {
            const double *xb = x.data() + idx[r] * dim;
            double s = 0.0;
            for (std::size_t j = 0; j < dim; ++j) {
                const double diff = xb[j] - z[r * dim + j];
                s += diff * diff;
                if (grad) grad[r * dim + j] = diff;
            }
            logp[r] = -0.5 * static_cast<double>(dim) * kLog2Pi - 0.5 * s;
        }
    }

    double exact_log_marginal(std::size_t b) const {
        double s = 0.0;
        for (std::size_t j = 0; j < d; ++j) s += x[b * d + j] * x[b * d + j];
        return -0.5 * static_cast<double>(d) * (kLog2Pi + std::log(2.0)) - 0.25 * s;
    }
};

lingauss make_lingauss() {
    lingauss lg;
    lg.d = 2;
    lg.x = {0.5, -1.0, 1.5, 0.25, -0.75, 0.0, 0.1, 1.2};  // B = 4
    return lg;
}
constexpr std::size_t kB = 4;
constexpr std::size_t kD = 2;

// Counts live instances of itself, to see the owners destroy the callables they hold.
struct counted_density {
    static int live;
    std::shared_ptr<int> calls = std::make_shared<int>(0);
    counted_density() { ++live; }
    counted_density(const counted_density &o) : calls(o.calls) { ++live; }
    counted_density(counted_density &&o) noexcept : calls(std::move(o.calls)) { ++live; }
    counted_density &operator=(const counted_density &) = default;
    counted_density &operator=(counted_density &&) = default;
    ~counted_density() { --live; }
    int operator()(std::size_t n, std::size_t dim, const double *z, const std::size_t *,
                   double *logp, double *grad) {
        ++*calls;
        for (std::size_t r = 0; r < n; ++r) {
            double s = 0.0;
            for (std::size_t j = 0; j < dim; ++j) {
                s += z[r * dim + j] * z[r * dim + j];
                if (grad) grad[r * dim + j] = -z[r * dim + j];
            }
            logp[r] = -0.5 * s;
        }
        return 0;
    }
};
int counted_density::live = 0;

struct counted_progress {
    static int live;
    counted_progress() { ++live; }
    counted_progress(const counted_progress &) { ++live; }
    counted_progress(counted_progress &&) noexcept { ++live; }
    ~counted_progress() { --live; }
    void operator()(std::size_t, std::size_t) const {}
};
int counted_progress::live = 0;

double sum_of(bsvi::span<const double> s) {
    double t = 0.0;
    for (double v : s) t += v;
    return t;
}

// ---- span -----------------------------------------------------------------------------------

void test_span() {
    std::vector<double> v{1.0, 2.0, 3.0};
    bsvi::span<double> s1(v);
    CHECK(s1.data() == v.data() && s1.size() == 3 && !s1.empty());
    const std::vector<double> &cv = v;
    bsvi::span<const double> s2(cv);
    CHECK(s2.data() == v.data() && s2.size() == 3);
    bsvi::span<const double> s3 = s1;
    CHECK(s3.data() == v.data() && s3.size() == 3);
    double arr[4] = {1, 2, 3, 4};
    bsvi::span<double> s4(arr);
    CHECK(s4.size() == 4 && s4[3] == 4.0);
    std::array<std::size_t, 2> a{{7, 8}};
    bsvi::span<const std::size_t> s5(a);
    CHECK(s5.size() == 2 && s5[1] == 8);
    bsvi::span<double> s6(v.data() + 1, 2);
    CHECK(s6.size() == 2 && s6[0] == 2.0);
    bsvi::span<double> empty;
    CHECK(empty.empty() && empty.data() == nullptr);
    CHECK(sum_of(std::array<double, 3>{{1.0, 2.0, 0.5}}) == 3.5);
    CHECK(sum_of(std::vector<double>{1.0, 1.0}) == 2.0);
    double t = 0.0;
    for (double &x : s1) t += x;
    CHECK(t == 6.0);
#if __cplusplus >= 202002L && defined(__cpp_lib_span)
    std::span<double> ss(v);
    bsvi::span<double> s7(ss);
    CHECK(s7.data() == v.data() && s7.size() == 3);
#endif
    static_assert(!std::is_constructible<bsvi::span<double>, const std::vector<double> &>::value,
                  "no mutable view of const data");
    static_assert(!std::is_constructible<bsvi::span<double>, std::vector<double> &&>::value,
                  "no mutable view of a temporary");
    static_assert(std::is_constructible<bsvi::span<const double>, std::vector<double> &&>::value,
                  "const view of a temporary");
    static_assert(!std::is_constructible<bsvi::span<double>, std::vector<float> &>::value,
                  "element types must agree");
    static_assert(!std::is_constructible<bsvi::span<std::size_t>, std::vector<int> &>::value,
                  "element types must agree");

    CHECK(std::fabs(bsvi::logsumexp(std::vector<double>{0.0, std::log(2.0)}) - std::log(3.0)) < 1e-12);
    CHECK(bsvi::logsumexp({}) == -INFINITY);
    const std::array<std::uint32_t, 4> out = bsvi::philox4x32_10({{0, 0, 0, 0}}, {{0, 0}});
    std::uint32_t ref[4];
    const std::uint32_t c0[4] = {0, 0, 0, 0}, k0[2] = {0, 0};
    bsvi_philox4x32_10(c0, k0, ref);
    CHECK(out[0] == ref[0] && out[3] == ref[3]);
    CHECK(bsvi::version_number() == BSVI_VERSION_NUMBER);
    CHECK(std::string(bsvi::version_string()) == bsvi_version_string());
}

// ---- enum names -------------------------------------------------------------------------------

// `unnamed` is a value inside E's range that is no enumerator, or -1 when there is none (in
// C++ a value outside the range of an enum without fixed underlying type is undefined).
template <class E>
void round_trip(int first, int last, int unnamed) {
    for (int i = first; i <= last; ++i) {
        const E v = static_cast<E>(i);
        const std::string name = bsvi::to_string(v);
        CHECK(!name.empty());
        CHECK(bsvi::from_string<E>(name) == v);
        CHECK(bsvi::try_from_string<E>(name).value() == v);
    }
    CHECK(!bsvi::try_from_string<E>("no such name").has_value());
    CHECK_THROWS((void)bsvi::from_string<E>("no such name"), const bsvi::error, e,
                 { CHECK(e.status() == BSVI_ERR_BAD_VALUE); CHECK(contains(e.what(), "no such name")); });
    if (unnamed >= 0)
        CHECK_THROWS((void)bsvi::to_string(static_cast<E>(unnamed)), const bsvi::error, e,
                     { CHECK(e.status() == BSVI_ERR_BAD_VALUE); });
}

void test_enums() {
    round_trip<bsvi_bound>(BSVI_BOUND_ELBO, BSVI_BOUND_GIWAE, 7);
    round_trip<bsvi_step_rule>(BSVI_STEP_GRADIENT, BSVI_STEP_ADAM, 3);
    round_trip<bsvi_grad_form>(BSVI_GRAD_PATHWISE, BSVI_GRAD_DREG, -1);
    round_trip<bsvi_divergence_policy>(BSVI_DIVERGENCE_FAIL, BSVI_DIVERGENCE_FREEZE, -1);
    CHECK(bsvi::to_string(BSVI_BOUND_BSVI_DS) == "bsvi-ds");
    CHECK(bsvi::from_string<bsvi_grad_form>(std::string_view("analytic-kl")) ==
          BSVI_GRAD_ANALYTIC_KL);
    CHECK(bsvi::to_string(BSVI_ERR_SIZE_MISMATCH) == bsvi_status_string(BSVI_ERR_SIZE_MISMATCH));
    // A name is matched exactly, not as a prefix of a longer string_view's buffer.
    const std::string longer = "iwaeXYZ";
    CHECK(bsvi::from_string<bsvi_bound>(std::string_view(longer).substr(0, 4)) == BSVI_BOUND_IWAE);
}

// ---- RAII -------------------------------------------------------------------------------------

void test_raii() {
    static_assert(!std::is_copy_constructible<bsvi::model>::value, "move-only");
    static_assert(!std::is_copy_assignable<bsvi::model>::value, "move-only");
    static_assert(std::is_nothrow_move_constructible<bsvi::model>::value, "");
    static_assert(std::is_nothrow_move_assignable<bsvi::model>::value, "");
    static_assert(!std::is_copy_constructible<bsvi::proposal>::value, "move-only");
    static_assert(std::is_nothrow_move_constructible<bsvi::proposal>::value, "");
    static_assert(std::is_nothrow_move_assignable<bsvi::proposal>::value, "");
    static_assert(!std::is_copy_constructible<bsvi::svi>::value, "move-only");
    static_assert(std::is_nothrow_move_constructible<bsvi::svi>::value, "");
    static_assert(std::is_nothrow_move_assignable<bsvi::svi>::value, "");
    static_assert(!std::is_copy_constructible<bsvi::trajectory>::value, "move-only");
    static_assert(std::is_nothrow_move_constructible<bsvi::trajectory>::value, "");
    static_assert(!std::is_copy_constructible<bsvi::buffer_weights>::value, "move-only");
    static_assert(std::is_nothrow_move_constructible<bsvi::buffer_weights>::value, "");
    static_assert(!std::is_copy_constructible<bsvi::estimator>::value, "move-only");
    static_assert(std::is_nothrow_move_constructible<bsvi::estimator>::value, "");
    static_assert(!std::is_copy_constructible<bsvi::evaluator>::value, "move-only");
    static_assert(std::is_nothrow_move_constructible<bsvi::evaluator>::value, "");
    static_assert(std::is_nothrow_move_assignable<bsvi::evaluator>::value, "");
    static_assert(!std::is_copy_constructible<bsvi::diagnostics>::value, "move-only");
    static_assert(std::is_nothrow_move_constructible<bsvi::diagnostics>::value, "");
    static_assert(std::is_nothrow_move_assignable<bsvi::diagnostics>::value, "");

    // Many owners of every kind, created and destroyed (ASan's leak check sees the rest).
    for (int i = 0; i < 50; ++i) {
        bsvi::model m(kD);
        bsvi::proposal q(kB, kD);
        bsvi::svi s(kD);
        bsvi::trajectory t;
        bsvi::buffer_weights w(3);
        bsvi::estimator est(kD);
        bsvi::evaluator ev(kD);
        bsvi::diagnostics dg(100);
        CHECK(m.get() && q.get() && s.get() && t.get() && w.get() && est.get() && ev.get() &&
              dg.get());
        CHECK(m.dim() == kD && q.batch() == kB && q.dim() == kD && s.dim() == kD &&
              w.size() == 3 && est.dim() == kD && ev.dim() == kD && t.empty());
    }

    // The owners keep one copy of each callable and destroy it when replaced or destroyed.
    CHECK(counted_density::live == 0);
    {
        bsvi::model m(kD);
        m.set_likelihood(counted_density{});
        CHECK(counted_density::live == 1);
        m.set_likelihood(counted_density{});  // replaces: the first one is destroyed
        CHECK(counted_density::live == 1);
        m.set_prior(counted_density{});
        CHECK(counted_density::live == 2);
        CHECK(!m.has_standard_normal_prior());
        m.set_prior_standard_normal();
        CHECK(m.has_standard_normal_prior());
        CHECK(counted_density::live == 1);
        counted_density lvalue;
        m.set_likelihood(lvalue);  // copied
        CHECK(counted_density::live == 2);
    }
    CHECK(counted_density::live == 0);
    CHECK(counted_progress::live == 0);
    {
        bsvi::svi s(kD);
        bsvi::evaluator ev(kD);
        s.set_progress(counted_progress{});
        ev.set_progress(counted_progress{});
        CHECK(counted_progress::live == 2);
        s.clear_progress();
        CHECK(counted_progress::live == 1);
    }
    CHECK(counted_progress::live == 0);

    // Moved-from owners are empty; their members fail cleanly.
    bsvi::proposal q(kB, kD);
    bsvi::proposal q2(std::move(q));
    CHECK(!q && q2 && q.get() == nullptr && q.batch() == 0);
    CHECK_THROWS(q.set_seed(1), const bsvi::error, e,
                 { CHECK(e.status() == BSVI_ERR_NULL_ARGUMENT); });
    CHECK_THROWS((void)q.mean(), const bsvi::error, e,
                 { CHECK(e.status() == BSVI_ERR_NULL_ARGUMENT); });
    bsvi::model m(kD);
    bsvi::model m2(std::move(m));
    CHECK(!m && m2 && m.dim() == 0);
    CHECK_THROWS(m.set_likelihood(make_lingauss()), const bsvi::error, e,
                 { CHECK(e.status() == BSVI_ERR_NULL_ARGUMENT); CHECK(contains(e.what(), "empty")); });
    bsvi::svi s(kD);
    bsvi::svi s2(std::move(s));
    CHECK(!s && s.dim() == 0 && s2.dim() == kD);
    CHECK_THROWS(s.set_steps(3), const bsvi::error, e,
                 { CHECK(e.status() == BSVI_ERR_NULL_ARGUMENT); });
    bsvi::trajectory t;
    CHECK_THROWS(s.run(m2, q2, t), const bsvi::error, e,
                 { CHECK(e.status() == BSVI_ERR_NULL_ARGUMENT); });
    // Move assignment releases the target's handle.
    bsvi::estimator e1(kD), e2(3);
    e1 = std::move(e2);
    CHECK(e1.dim() == 3 && !e2);
}

// ---- a full small run ---------------------------------------------------------------------------

void test_full_run() {
    const lingauss lg = make_lingauss();
    bsvi::model m(kD);
    m.set_likelihood(lg);

    // log_joint: the standard normal prior plus the likelihood.
    {
        const std::vector<double> z{0.3, -0.2, 1.0, 0.5};
        const std::vector<std::size_t> idx{0, 2};
        std::vector<double> grad(4);
        std::vector<double> out(2);
        m.log_joint(z, idx, out, grad);
        for (std::size_t r = 0; r < 2; ++r) {
            double lik = 0.0;
            lg(1, kD, z.data() + r * kD, idx.data() + r, &lik, nullptr);
            const double prior =
                -kLog2Pi - 0.5 * (z[r * kD] * z[r * kD] + z[r * kD + 1] * z[r * kD + 1]);
            CHECK(std::fabs(out[r] - (lik + prior)) < 1e-12);
            for (std::size_t j = 0; j < kD; ++j) {
                const double g = lg.x[idx[r] * kD + j] - 2.0 * z[r * kD + j];
                CHECK(std::fabs(grad[r * kD + j] - g) < 1e-12);
            }
        }
        CHECK(m.log_joint(z, idx) == out);
    }

    bsvi::proposal q(kB, kD);  // the "encoder": N(0, I) for every data point
    q.set_params(std::vector<double>(kB * kD, 0.0), std::vector<double>(kB * kD, 0.0));
    bsvi::svi refine(kD);
    const std::size_t k = 30;
    refine.set_steps(k).set_step_size(0.1).set_samples_per_step(4).set_seed(7);
    CHECK(refine.steps() == k && refine.step_size() == 0.1);
    bsvi::svi_options o = refine.options();
    CHECK(o.steps == k && o.samples_per_step == 4 && o.rule == BSVI_STEP_GRADIENT);
    bsvi::trajectory traj;
    refine.run(m, q, traj);
    CHECK(traj.batch() == kB && traj.steps() == k && traj.slots() == k + 1 && traj.dim() == kD);
    CHECK(!traj.is_double_sampled() && traj.num_diverged() == 0);
    const std::vector<double> lw = traj.log_weights();
    CHECK(lw.size() == kB * (k + 1));
    for (double v : lw) CHECK(std::isfinite(v));
    const std::vector<double> lj = traj.log_joint(), lq = traj.log_proposal();
    CHECK(std::fabs(lw[5] - (lj[5] - lq[5])) < 1e-9);
    CHECK(traj.latents().size() == kB * (k + 1) * kD);
    CHECK(traj.steps_taken() == std::vector<std::size_t>(kB, k));
    const bsvi::encoder_gradient tg = traj.encoder_grad();
    CHECK(tg.d_mean.size() == kB * kD && tg.d_log_std.size() == kB * kD);
    CHECK(refine.stats().calls == 1 && refine.stats().likelihood_calls > 0);
    CHECK(refine.stream().counter == 1);

    // The last proposal of the buffer approaches the exact posterior N(x/2, I/2).
    const bsvi::proposal_params all = traj.params();
    CHECK(all.mean.size() == kB * (k + 1) * kD);
    std::vector<double> last_mean(kB * kD), last_log_std(kB * kD);
    for (std::size_t b = 0; b < kB; ++b)
        for (std::size_t j = 0; j < kD; ++j) {
            last_mean[b * kD + j] = all.mean[(b * (k + 1) + k) * kD + j];
            last_log_std[b * kD + j] = all.log_std[(b * (k + 1) + k) * kD + j];
        }
    bsvi::proposal refined(kB, kD);
    refined.set_params(last_mean, last_log_std);
    CHECK(refined.mean() == last_mean && refined.log_std() == last_log_std);

    // IWAE-1000 via the evaluator: within 0.05 of the exact log p(x).
    bsvi::evaluator ev(kD);
    ev.set_seed(11);
    const std::vector<double> iw = ev.iwae(m, refined, 1000);
    CHECK(iw.size() == kB);
    for (std::size_t b = 0; b < kB; ++b) {
        const double exact = lg.exact_log_marginal(b);
        if (!(std::fabs(iw[b] - exact) < 0.05))
            std::fprintf(stderr, "data point %zu: IWAE-1000 %.6f, exact %.6f\n", b, iw[b], exact);
        CHECK(std::fabs(iw[b] - exact) < 0.05);
    }
    // Also from the untrained encoder N(0, I) (a worse proposal, still close with S = 1000).
    const std::vector<double> iw0 = ev.iwae(m, q, 1000);
    for (std::size_t b = 0; b < kB; ++b) CHECK(std::fabs(iw0[b] - lg.exact_log_marginal(b)) < 0.1);
    CHECK(ev.stats().calls == 2 && ev.num_zero_points() == 0);

    // BSVI-K with the final proposal, then ELBO* of it.
    bsvi::proposal final_q(kB, kD);
    bsvi_svi_options eo = bsvi::default_svi_options();
    eo.step_size = 0.1;
    eo.samples_per_step = 4;
    ev.set_svi_options(eo);
    CHECK(ev.svi_options().samples_per_step == 4);
    const std::vector<double> bk = ev.bsvi(m, q, 20, &final_q);
    CHECK(bk.size() == kB);
    CHECK(ev.steps_taken() == std::vector<std::size_t>(kB, 19));
    CHECK(ev.num_frozen() == 0);
    for (std::size_t b = 0; b < kB; ++b) {
        CHECK(std::isfinite(bk[b]));
        CHECK(bk[b] < lg.exact_log_marginal(b) + 0.5);
    }
    const bsvi::elbo_star_result es = ev.elbo_star(m, final_q, 500);
    CHECK(es.elbo.size() == kB && es.kl.size() == kB && es.reconstruction.size() == kB);
    for (std::size_t b = 0; b < kB; ++b) {
        CHECK(es.elbo[b] < lg.exact_log_marginal(b) + 0.05);
        CHECK(es.elbo[b] > lg.exact_log_marginal(b) - 1.0);
        CHECK(es.kl[b] >= 0.0);
        CHECK(std::fabs(es.reconstruction[b] + es.elbo[b] + es.kl[b]) < 1e-9);
    }
    std::vector<double> only_kl(kB);
    ev.elbo_star(m, final_q, 10, {}, only_kl, {});
    for (double v : only_kl) CHECK(v >= 0.0);

    // Estimators over the same model and the trajectory.
    bsvi::estimator est(kD);
    est.set_seed(3);
    const std::vector<double> ib = est.iwae(m, refined, 1000).bounds();
    for (std::size_t b = 0; b < kB; ++b) CHECK(std::fabs(ib[b] - lg.exact_log_marginal(b)) < 0.05);
    CHECK(est.result_kind() == BSVI_BOUND_IWAE && est.num_targets() == kB * 1000);
    CHECK(est.noise().size() == kB * 1000 * kD);

    // Importance-weight diagnostics of that bound and of the buffer.
    bsvi::diagnostics dg(1000);
    CHECK(dg.capacity() == 1000 && bsvi::diagnostics::tail_length(21) == 5);
    const bsvi::weight_diagnostics wd = dg.for_estimator(est);
    CHECK(wd.ess.size() == kB && wd.khat.size() == kB);
    for (std::size_t b = 0; b < kB; ++b) {
        CHECK(wd.ess[b] > 500.0 && wd.ess[b] <= 1000.0);  // a near-exact posterior
        CHECK(wd.khat[b] < 0.7);
    }
    const bsvi::weight_diagnostics td = dg.for_trajectory(traj);
    for (std::size_t b = 0; b < kB; ++b) {
        CHECK(td.ess[b] >= 1.0 && td.ess[b] <= static_cast<double>(k + 1));
        CHECK(std::isfinite(td.khat[b]));  // k+1 = 31 >= 21 slots
    }
    const bsvi::weight_diagnostics eq =
        dg.compute(2, 3, std::vector<double>{0.0, 0.0, 0.0, 1.0, 1.0, 1.0});
    CHECK(std::fabs(eq.ess[0] - 3.0) < 1e-12 && std::fabs(eq.ess[1] - 3.0) < 1e-12);
    CHECK(eq.khat[0] == INFINITY);  // fewer than 21 weights
    std::vector<double> only_ess(2);
    dg.compute(2, 3, std::vector<double>{0.0, -INFINITY, -INFINITY, 0.0, 0.0, 0.0}, only_ess, {});
    CHECK(std::fabs(only_ess[0] - 1.0) < 1e-12);
    CHECK(est.elbo(m, q, BSVI_GRAD_ANALYTIC_KL).result_kind() == BSVI_BOUND_ELBO);
    const std::vector<double> bb = est.bsvi(traj).bounds();
    CHECK(bb.size() == kB && est.result_kind() == BSVI_BOUND_BSVI);
    const bsvi::estimator_targets tt = est.targets();
    CHECK(tt.data_index.size() == kB * (k + 1) && tt.slot.size() == kB * (k + 1));
    CHECK(tt.z.size() == kB * (k + 1) * kD && tt.coef.size() == kB * (k + 1));
    CHECK(tt.log_w.size() == kB * (k + 1));
    for (std::size_t b = 0; b < kB; ++b) {
        double c = 0.0;
        for (std::size_t i = 0; i < k + 1; ++i) {
            CHECK(tt.data_index[b * (k + 1) + i] == b);
            c += tt.coef[b * (k + 1) + i];
        }
        CHECK(std::fabs(c - 1.0) < 1e-9);
    }
    CHECK(est.encoder_grad().d_mean == tg.d_mean);
    CHECK(est.svi(traj).bounds().size() == kB);
    CHECK(est.bsvi_sir(traj, nullptr, 3).num_targets() == kB * 3);

    // Buffer weights: accumulate, step, use as pi.
    bsvi::buffer_weights w(k + 1);
    w.accumulate(traj);
    CHECK(w.gradient().count == kB);
    w.step();
    const std::vector<double> pi = w.probs();
    CHECK(pi.size() == k + 1);
    CHECK(std::fabs(sum_of(pi) - 1.0) < 1e-9);
    CHECK(w.adam_state().steps == 1);
    const double mp = w.mean_position();
    CHECK(mp >= 0.0 && mp <= 1.0);
    CHECK(est.bsvi(traj, &w).bounds().size() == kB);
    const bsvi_health h = traj.health(&w);
    CHECK(std::isfinite(h.svi0) && std::isfinite(h.svik) && std::isfinite(h.bsvik));
    CHECK(std::isfinite(traj.health().bsvik));

    // GIWAE from host terms.
    bsvi::buffer_weights w2(2);
    w2.set_probs(std::vector<double>{0.25, 0.75});
    const std::vector<double> glj{-1.0, -2.0, -1.5, -0.5}, glq{-1.0, -1.0, -1.0, -1.0};
    est.giwae(2, 2, glj, glq, &w2);
    CHECK(est.result_kind() == BSVI_BOUND_GIWAE);
    CHECK(est.targets().z.empty());
    const double g0 = std::log(0.25 * std::exp(0.0) + 0.75 * std::exp(-1.0));
    CHECK(std::fabs(est.bounds()[0] - g0) < 1e-12);
}

// ---- exceptions thrown by callables -------------------------------------------------------------

struct throwing_likelihood {
    lingauss lg;
    std::shared_ptr<bool> armed = std::make_shared<bool>(false);
    void operator()(std::size_t n, std::size_t dim, const double *z, const std::size_t *idx,
                    double *logp, double *grad) const {
        if (*armed) throw std::domain_error("boom");
        lg(n, dim, z, idx, logp, grad);
    }
};

template <class Call>
void expect_boom(bool &armed, Call &&call, const char *what) {
    armed = true;
    bool got = false;
    try {
        call();
    } catch (const std::domain_error &e) {
        got = std::string(e.what()) == "boom";
    } catch (const std::exception &e) {
        std::fprintf(stderr, "%s: wrong exception %s\n", what, e.what());
    }
    if (!got) std::fprintf(stderr, "%s: std::domain_error(\"boom\") not rethrown\n", what);
    CHECK(got);
    armed = false;
    bool ok = true;
    try {
        call();
    } catch (const std::exception &e) {
        ok = false;
        std::fprintf(stderr, "%s: second call threw %s\n", what, e.what());
    }
    CHECK(ok);
}

void test_exception_round_trip() {
    throwing_likelihood tl;
    tl.lg = make_lingauss();
    std::shared_ptr<bool> armed = tl.armed;
    bsvi::model m(kD);
    m.set_likelihood(tl);
    bsvi::proposal q(kB, kD);
    bsvi::svi s(kD);
    s.set_steps(3).set_step_size(0.05);
    bsvi::trajectory traj;

    // svi.run rethrows the original std::domain_error("boom"); the next run works.
    *armed = true;
    CHECK_THROWS(s.run(m, q, traj), const std::domain_error, e,
                 { CHECK(std::string(e.what()) == "boom"); });
    CHECK(traj.empty());  // unchanged on error
    *armed = false;
    CHECK_NOTHROW(s.run(m, q, traj));
    CHECK(traj.batch() == kB);

    // The same for every wrapper member that runs host code.
    bsvi::estimator est(kD);
    bsvi::evaluator ev(kD);
    bsvi::proposal fq(kB, kD);
    expect_boom(*armed, [&] { s.run(m, q, traj); }, "svi.run");
    expect_boom(*armed, [&] { est.elbo(m, q); }, "estimator.elbo");
    expect_boom(*armed, [&] { est.iwae(m, q, 8); }, "estimator.iwae");
    expect_boom(*armed, [&] { (void)ev.iwae(m, q, 16); }, "evaluator.iwae");
    expect_boom(*armed, [&] { (void)ev.bsvi(m, q, 4, &fq); }, "evaluator.bsvi");
    expect_boom(*armed, [&] { (void)ev.elbo_star(m, q, 16); }, "evaluator.elbo_star");
    const std::vector<double> z(2 * kD, 0.1);
    const std::vector<std::size_t> idx{0, 1};
    expect_boom(*armed, [&] { (void)m.log_joint(z, idx); }, "model.log_joint");

    // A throwing prior, and a non-std exception type.
    bsvi::model mp(kD);
    mp.set_likelihood(make_lingauss());
    mp.set_prior([](std::size_t, std::size_t, const double *, const std::size_t *, double *,
                    double *) -> int { throw 42; });
    CHECK_THROWS(s.run(mp, q, traj), const int, v, { CHECK(v == 42); });

    // A non-zero return code is a bsvi::error(CALLBACK_FAILED) naming the code.
    bsvi::model mc(kD);
    mc.set_likelihood([](std::size_t, std::size_t, const double *, const std::size_t *,
                         double *, double *) { return 7; });
    CHECK_THROWS(s.run(mc, q, traj), const bsvi::error, e, {
        CHECK(e.status() == BSVI_ERR_CALLBACK_FAILED);
        CHECK(contains(e.what(), "7"));
        CHECK(std::string(e.what()) == s.last_error());
    });

    // Only the call that triggered an exception rethrows it: an exception from a raw C call
    // (no wrapper to collect it) is reported as its status and never resurfaces later.
    *armed = true;
    std::vector<double> out(2);
    CHECK(bsvi_model_log_joint(m.get(), 2, z.data(), idx.data(), out.data(), nullptr) ==
          BSVI_ERR_CALLBACK_FAILED);
    CHECK(bsvi_svi_run(s.get(), m.get(), q.get(), traj.get()) == BSVI_ERR_CALLBACK_FAILED);
    *armed = false;
    // A later failure of another kind is a bsvi::error, not the stale exception.
    bsvi::proposal q3(kB, 3);
    CHECK_THROWS(s.run(m, q3, traj), const bsvi::error, e,
                 { CHECK(e.status() == BSVI_ERR_SIZE_MISMATCH); });
    const std::vector<double> znan{NAN, 0.0, 0.0, 0.0};
    CHECK_THROWS(m.log_joint(znan, idx, out), const bsvi::error, e,
                 { CHECK(e.status() == BSVI_ERR_BAD_VALUE); });
    CHECK_NOTHROW(m.log_joint(z, idx, out));
    CHECK_NOTHROW(s.run(m, q, traj));

    // Nested: model A's likelihood evaluates model B, whose likelihood throws; the inner
    // log_joint rethrows, the exception leaves A's callable, and A's run rethrows it.
    auto inner_armed = std::make_shared<bool>(false);
    bsvi::model mb(kD);
    mb.set_likelihood([inner_armed](std::size_t n, std::size_t dim, const double *, const std::size_t *,
                                    double *logp, double *grad) {
        if (*inner_armed) throw std::out_of_range("inner");
        for (std::size_t r = 0; r < n; ++r) logp[r] = 0.0;
        if (grad)
            for (std::size_t i = 0; i < n * dim; ++i) grad[i] = 0.0;
    });
    bsvi::model ma(kD);
    ma.set_likelihood([&mb](std::size_t n, std::size_t dim, const double *zz, const std::size_t *ii,
                            double *logp, double *grad) {
        mb.log_joint(bsvi::span<const double>(zz, n * dim), bsvi::span<const std::size_t>(ii, n),
                     bsvi::span<double>(logp, n),
                     grad ? bsvi::span<double>(grad, n * dim) : bsvi::span<double>());
    });
    *inner_armed = true;
    CHECK_THROWS(s.run(ma, q, traj), const std::out_of_range, e,
                 { CHECK(std::string(e.what()) == "inner"); });
    *inner_armed = false;
    CHECK_NOTHROW(mb.log_joint(z, idx, out));
    CHECK_NOTHROW(s.run(ma, q, traj));

    // A bsvi::error thrown inside a callable (here REENTRANT: the model is held by the run)
    // can be caught there; the run goes on with the callable it had.
    bsvi::model mr(kD);
    bool saw_reentrant = false;
    lingauss lg = make_lingauss();
    mr.set_likelihood([&](std::size_t n, std::size_t dim, const double *zz, const std::size_t *ii,
                          double *logp, double *grad) {
        try {
            mr.set_likelihood(make_lingauss());
        } catch (const bsvi::error &e) {
            saw_reentrant = e.status() == BSVI_ERR_REENTRANT;
        }
        lg(n, dim, zz, ii, logp, grad);
    });
    CHECK_NOTHROW(s.run(mr, q, traj));
    CHECK(saw_reentrant);
}

// ---- bsvi::error for bad input ---------------------------------------------------------------------

void test_bad_input() {
    static_assert(std::is_base_of<std::runtime_error, bsvi::error>::value, "");
    bsvi::svi s(kD);
    CHECK_THROWS(s.set_step_size(-1.0), const bsvi::error, e, {
        CHECK(e.status() == BSVI_ERR_BAD_VALUE);
        CHECK(std::strlen(e.what()) > 0);
        CHECK(std::string(e.what()) == s.last_error());
        CHECK(std::string(e.status_string()) == bsvi_status_string(BSVI_ERR_BAD_VALUE));
    });
    CHECK(s.step_size() == 1e-3);  // unchanged
    bsvi_svi_options bad = bsvi::default_svi_options();
    bad.momentum = 2.0;
    CHECK_THROWS(s.set_options(bad), const std::runtime_error, e,
                 { CHECK(contains(e.what(), "momentum")); });
    CHECK_THROWS(s.set_grad_form(BSVI_GRAD_DREG), const bsvi::error, e,
                 { CHECK(e.status() == BSVI_ERR_BAD_VALUE); });
    CHECK_THROWS(bsvi::model(0), const bsvi::error, e, {
        CHECK(e.status() == BSVI_ERR_ZERO_SIZE);
        CHECK(contains(e.what(), "bsvi_model_create"));
    });
    CHECK_THROWS(bsvi::proposal(kB, (std::size_t)1 << 40), const bsvi::error, e,
                 { CHECK(e.status() == BSVI_ERR_OUT_OF_RANGE); });

    // Sizes are checked before C is called, with a message naming the argument and shape.
    bsvi::proposal q(kB, kD);
    CHECK_THROWS(q.set_params(std::vector<double>(3), std::vector<double>(kB * kD)),
                 const bsvi::error, e, {
                     CHECK(e.status() == BSVI_ERR_SIZE_MISMATCH);
                     CHECK(contains(e.what(), "mean"));
                     CHECK(contains(e.what(), "has 3 entries"));
                     CHECK(contains(e.what(), "batch*dim = 8"));
                 });
    std::vector<double> mean(kB * kD, 0.0), ls(kB * kD, 0.0);
    ls[3] = 100.0;  // outside [BSVI_MIN_LOG_STD, BSVI_MAX_LOG_STD]: the C library refuses
    CHECK_THROWS(q.set_params(mean, ls), const bsvi::error, e, {
        CHECK(e.status() == BSVI_ERR_BAD_VALUE);
        CHECK(std::string(e.what()) == q.last_error());
    });
    CHECK(q.log_std() == std::vector<double>(kB * kD, 0.0));
    std::vector<double> z(5);
    CHECK_THROWS(q.sample(2, z), const bsvi::error, e,
                 { CHECK(e.status() == BSVI_ERR_SIZE_MISMATCH); });
    CHECK(q.sample(2).size() == kB * 2 * kD);
    CHECK(q.log_density(2, q.sample(2)).size() == kB * 2);
    CHECK(q.kl_standard_normal() == std::vector<double>(kB, 0.0));
    CHECK(q.entropy().size() == kB);

    bsvi::model m(kD);
    bsvi::trajectory t;
    CHECK_THROWS(s.run(m, q, t), const bsvi::error, e, {
        CHECK(e.status() == BSVI_ERR_BAD_STATE);  // no likelihood
        CHECK(std::string(e.what()) == s.last_error());
    });
    m.set_likelihood(make_lingauss());
    bsvi::model m3(3);
    m3.set_likelihood(make_lingauss());
    CHECK_THROWS(s.run(m3, q, t), const bsvi::error, e, {
        CHECK(e.status() == BSVI_ERR_SIZE_MISMATCH);
        CHECK(std::string(e.what()) == s.last_error());
    });
    const std::vector<double> zz(2 * kD, 0.0);
    const std::vector<std::size_t> idx{0, 1};
    std::vector<double> out3(3);
    CHECK_THROWS(m.log_joint(zz, idx, out3), const bsvi::error, e,
                 { CHECK(e.status() == BSVI_ERR_SIZE_MISMATCH); CHECK(contains(e.what(), "out")); });
    const std::vector<double> znan{NAN, 0.0, 0.0, 0.0};
    CHECK_THROWS((void)m.log_joint(znan, idx), const bsvi::error, e, {
        CHECK(e.status() == BSVI_ERR_BAD_VALUE);
        CHECK(std::string(e.what()) == m.last_error());
    });

    // A callable writing NaN.
    bsvi::model mn(kD);
    mn.set_likelihood([](std::size_t n, std::size_t, const double *, const std::size_t *,
                         double *logp, double *) {
        for (std::size_t r = 0; r < n; ++r) logp[r] = NAN;
    });
    CHECK_THROWS(s.run(mn, q, t), const bsvi::error, e,
                 { CHECK(e.status() == BSVI_ERR_CALLBACK_NAN); });
    std::function<void(std::size_t, std::size_t, const double *, const std::size_t *, double *,
                       double *)>
        empty_fn;
    CHECK_THROWS(mn.set_likelihood(empty_fn), const bsvi::error, e,
                 { CHECK(e.status() == BSVI_ERR_NULL_ARGUMENT); });
    void (*null_fp)(std::size_t, std::size_t, const double *, const std::size_t *, double *,
                    double *) = nullptr;
    CHECK_THROWS(mn.set_likelihood(null_fp), const bsvi::error, e,
                 { CHECK(e.status() == BSVI_ERR_NULL_ARGUMENT); });

    // Results before any compute, an empty trajectory.
    bsvi::estimator est(kD);
    CHECK_THROWS((void)est.bounds(), const bsvi::error, e,
                 { CHECK(e.status() == BSVI_ERR_BAD_STATE); });
    CHECK_THROWS((void)est.result_kind(), const bsvi::error, e, {
        CHECK(e.status() == BSVI_ERR_BAD_STATE);
        CHECK(std::string(e.what()) == est.last_error());
    });
    CHECK_THROWS((void)t.log_weights(), const bsvi::error, e,
                 { CHECK(e.status() == BSVI_ERR_BAD_STATE); });
    CHECK_THROWS(est.svi(t), const bsvi::error, e, { CHECK(e.status() == BSVI_ERR_BAD_STATE); });
    CHECK_THROWS(est.iwae(m, q, 4, BSVI_GRAD_STL), const bsvi::error, e,
                 { CHECK(e.status() == BSVI_ERR_BAD_VALUE); });
    bsvi::evaluator ev(kD);
    CHECK_THROWS((void)ev.steps_taken(), const bsvi::error, e,
                 { CHECK(e.status() == BSVI_ERR_BAD_STATE); });
    std::vector<double> two(2);
    CHECK_THROWS(ev.iwae(m, q, 10, two), const bsvi::error, e,
                 { CHECK(e.status() == BSVI_ERR_SIZE_MISMATCH); });

    // Buffer weights.
    bsvi::buffer_weights w(2);
    CHECK_THROWS(w.set_probs(std::vector<double>{0.7, 0.7}), const bsvi::error, e, {
        CHECK(e.status() == BSVI_ERR_BAD_VALUE);
        CHECK(std::string(e.what()) == w.last_error());
    });
    CHECK_THROWS(w.set_probs(std::vector<double>(1, 1.0)), const bsvi::error, e,
                 { CHECK(e.status() == BSVI_ERR_SIZE_MISMATCH); });
    w.set_logits(std::array<double, 2>{{0.0, -INFINITY}});
    CHECK(w.probs()[0] == 1.0 && w.probs()[1] == 0.0);
    CHECK_THROWS(w.accumulate(t), const bsvi::error, e,
                 { CHECK(e.status() == BSVI_ERR_BAD_STATE); });
    CHECK_THROWS(bsvi::buffer_weights(0), const bsvi::error, e,
                 { CHECK(e.status() == BSVI_ERR_ZERO_SIZE); });

    // Diagnostics.
    bsvi::diagnostics dg(4);
    CHECK_THROWS((void)dg.compute(1, 5, std::vector<double>(5, 0.0)), const bsvi::error, e, {
        CHECK(e.status() == BSVI_ERR_SIZE_MISMATCH);  // n above the capacity: the C check
        CHECK(std::string(e.what()) == dg.last_error());
    });
    CHECK_THROWS((void)dg.compute(2, 2, std::vector<double>(3, 0.0)), const bsvi::error, e, {
        CHECK(e.status() == BSVI_ERR_SIZE_MISMATCH);  // the wrapper's check
        CHECK(contains(e.what(), "log_w"));
    });
    CHECK_THROWS((void)dg.compute(1, 2, std::vector<double>{0.0, NAN}), const bsvi::error, e,
                 { CHECK(e.status() == BSVI_ERR_BAD_VALUE); });
    CHECK_THROWS((void)dg.for_trajectory(t), const bsvi::error, e,
                 { CHECK(e.status() == BSVI_ERR_BAD_STATE); });
    CHECK_THROWS((void)dg.for_estimator(est), const bsvi::error, e,
                 { CHECK(e.status() == BSVI_ERR_BAD_STATE); });
    CHECK_THROWS(bsvi::diagnostics(0), const bsvi::error, e,
                 { CHECK(e.status() == BSVI_ERR_ZERO_SIZE); });
}

// ---- every kind of callable ------------------------------------------------------------------------

int g_fp_calls = 0;
void std_normal_fp(std::size_t n, std::size_t dim, const double *z, const std::size_t *,
                   double *logp, double *grad) {
    ++g_fp_calls;
    for (std::size_t r = 0; r < n; ++r) {
        double s = 0.0;
        for (std::size_t j = 0; j < dim; ++j) {
            s += z[r * dim + j] * z[r * dim + j];
            if (grad) grad[r * dim + j] = -z[r * dim + j];
        }
        logp[r] = -0.5 * s;
    }
}
int progress_fp(std::size_t, std::size_t) { return 0; }

void test_callable_kinds() {
    bsvi::proposal q(kB, kD);
    bsvi::estimator est(kD);
    bsvi::svi s(kD);
    s.set_steps(2).set_step_size(0.05);
    bsvi::trajectory t;

    bsvi::model m(kD);
    m.set_likelihood(std_normal_fp);  // a function (decays to a pointer)
    est.elbo(m, q);
    CHECK(g_fp_calls == 1);
    m.set_likelihood(&std_normal_fp);  // a function pointer
    est.elbo(m, q);
    CHECK(g_fp_calls == 2);

    const lingauss lg = make_lingauss();
    std::function<void(std::size_t, std::size_t, const double *, const std::size_t *, double *,
                       double *)>
        fv = lg;
    m.set_likelihood(fv);  // std::function returning void, copied
    CHECK(static_cast<bool>(fv));
    CHECK(std::fabs(est.iwae(m, q, 1000).bounds()[0] - lg.exact_log_marginal(0)) < 0.2);
    std::function<int(std::size_t, std::size_t, const double *, const std::size_t *, double *,
                      double *)>
        fi = [lg](std::size_t n, std::size_t dim, const double *z, const std::size_t *idx,
                  double *logp, double *grad) {
            lg(n, dim, z, idx, logp, grad);
            return 0;
        };
    m.set_likelihood(std::move(fi));  // std::function returning int, moved
    CHECK_NOTHROW(s.run(m, q, t));
    fi = [](std::size_t, std::size_t, const double *, const std::size_t *, double *,
            double *) { return 3; };
    m.set_likelihood(fi);
    CHECK_THROWS(s.run(m, q, t), const bsvi::error, e,
                 { CHECK(e.status() == BSVI_ERR_CALLBACK_FAILED); });
    // A mutable lambda keeps its state between calls.
    int seen = 0;
    m.set_likelihood([lg, calls = 0, &seen](std::size_t n, std::size_t dim, const double *z,
                                            const std::size_t *idx, double *logp,
                                            double *grad) mutable {
        seen = ++calls;
        lg(n, dim, z, idx, logp, grad);
    });
    s.run(m, q, t);
    CHECK(seen == 3);  // k + 1 = 3 likelihood calls in one run
    // A host prior from a std::function; the progress callable from a function pointer.
    m.set_prior(std::function<void(std::size_t, std::size_t, const double *, const std::size_t *,
                                   double *, double *)>(std_normal_fp));
    s.set_progress(progress_fp);
    const int before = g_fp_calls;
    CHECK_NOTHROW(s.run(m, q, t));
    CHECK(g_fp_calls > before && !m.has_standard_normal_prior());
    std::function<int(std::size_t, std::size_t)> pf = [](std::size_t, std::size_t) { return 1; };
    s.set_progress(pf);
    CHECK_THROWS(s.run(m, q, t), const bsvi::error, e,
                 { CHECK(e.status() == BSVI_ERR_CANCELLED); });
    std::function<void(std::size_t, std::size_t)> empty_progress;
    CHECK_THROWS(s.set_progress(empty_progress), const bsvi::error, e,
                 { CHECK(e.status() == BSVI_ERR_NULL_ARGUMENT); });
}

// ---- move semantics of owners with live callables -----------------------------------------------

void test_moves() {
    const lingauss lg = make_lingauss();
    auto calls = std::make_shared<int>(0);
    // A move-only callable (owns a unique_ptr), moved into the model.
    auto owned = std::make_unique<lingauss>(lg);
    bsvi::model m1(kD);
    m1.set_likelihood([calls, p = std::move(owned)](std::size_t n, std::size_t dim,
                                                    const double *z, const std::size_t *idx,
                                                    double *logp, double *grad) {
        ++*calls;
        (*p)(n, dim, z, idx, logp, grad);
    });
    bsvi::proposal q(kB, kD);
    bsvi::svi s1(kD);
    auto progress_calls = std::make_shared<int>(0);
    s1.set_steps(4).set_step_size(0.05).set_progress(
        [progress_calls](std::size_t, std::size_t) { ++*progress_calls; });
    bsvi::trajectory traj;
    s1.run(m1, q, traj);
    const int c1 = *calls, p1 = *progress_calls;
    CHECK(c1 > 0 && p1 > 0);

    // Move-construct the model and the SVI handle: the callables follow and still work.
    bsvi::model m2(std::move(m1));
    bsvi::svi s2(std::move(s1));
    CHECK(!m1 && !s1 && m2.dim() == kD && s2.steps() == 4);
    s2.run(m2, q, traj);
    CHECK(*calls == 2 * c1 && *progress_calls == 2 * p1);

    // Move-assign over an owner that had its own callable: that one is destroyed.
    CHECK(counted_density::live == 0);
    bsvi::model m3(kD);
    m3.set_likelihood(counted_density{});
    CHECK(counted_density::live == 1);
    m3 = std::move(m2);
    CHECK(counted_density::live == 0);
    bsvi::svi s3(kD);
    s3.set_progress(counted_progress{});
    s3 = std::move(s2);
    CHECK(counted_progress::live == 0);
    s3.run(m3, q, traj);
    CHECK(*calls == 3 * c1 && *progress_calls == 3 * p1);

    // Exceptions still travel through a moved model.
    auto armed = std::make_shared<bool>(false);
    bsvi::model mt(kD);
    mt.set_likelihood([armed, lg](std::size_t n, std::size_t dim, const double *z,
                                  const std::size_t *idx, double *logp, double *grad) {
        if (*armed) throw std::domain_error("boom");
        lg(n, dim, z, idx, logp, grad);
    });
    bsvi::model mt2 = std::move(mt);
    *armed = true;
    CHECK_THROWS(s3.run(mt2, q, traj), const std::domain_error, e,
                 { CHECK(std::string(e.what()) == "boom"); });
    *armed = false;
    CHECK_NOTHROW(s3.run(mt2, q, traj));

    // Owners in a growing vector (reallocation moves them); each keeps its own callable.
    std::vector<bsvi::model> models;
    auto seen = std::make_shared<std::vector<int>>();
    for (int i = 0; i < 9; ++i) {
        models.emplace_back(kD).set_likelihood(
            [i, seen, lg](std::size_t n, std::size_t dim, const double *z, const std::size_t *idx,
                          double *logp, double *grad) {
                seen->push_back(i);
                lg(n, dim, z, idx, logp, grad);
            });
    }
    bsvi::estimator est(kD);
    for (int i = 0; i < 9; ++i) {
        seen->clear();
        est.elbo(models[static_cast<std::size_t>(i)], q);
        CHECK(!seen->empty() && (*seen)[0] == i);
    }

    // A moved evaluator keeps its progress callable.
    auto ev_calls = std::make_shared<int>(0);
    bsvi::evaluator ev1(kD);
    ev1.set_chunk_rows(16).set_progress([ev_calls](std::size_t, std::size_t) { ++*ev_calls; });
    bsvi::evaluator ev2(std::move(ev1));
    (void)ev2.iwae(m3, q, 32);
    CHECK(*ev_calls > 1);
    bsvi::evaluator ev3(kD);
    ev3 = std::move(ev2);
    const int before = *ev_calls;
    (void)ev3.iwae(m3, q, 32);
    CHECK(*ev_calls == 2 * before);

    // Other owners move too.
    bsvi::trajectory t2(std::move(traj));
    CHECK(t2.batch() == kB && !traj);
    bsvi::buffer_weights w1(5);
    bsvi::buffer_weights w2 = std::move(w1);
    CHECK(w2.size() == 5 && w1.size() == 0);
    bsvi::proposal q2(1, 1);
    q2 = std::move(q);
    CHECK(q2.batch() == kB && !q);
}

// ---- progress: cancelling, throwing ---------------------------------------------------------------

void test_progress() {
    bsvi::model m(kD);
    m.set_likelihood(make_lingauss());
    bsvi::proposal q(kB, kD);
    bsvi::svi s(kD);
    const std::size_t k = 6;
    s.set_steps(k).set_step_size(0.05);

    std::vector<std::pair<std::size_t, std::size_t>> seen;
    s.set_progress([&seen](std::size_t done, std::size_t total) -> int {
        seen.emplace_back(done, total);
        return done >= 3 * kB ? 1 : 0;  // cancel after the third step
    });
    bsvi::trajectory traj;
    CHECK_THROWS(s.run(m, q, traj), const bsvi::error, e, {
        CHECK(e.status() == BSVI_ERR_CANCELLED);
        CHECK(contains(e.what(), "cancel"));
    });
    CHECK(traj.empty());
    CHECK(!seen.empty());
    for (std::size_t i = 0; i < seen.size(); ++i) {
        CHECK(seen[i].second == kB * (k + 1));
        if (i > 0) CHECK(seen[i].first > seen[i - 1].first);
    }
    CHECK(seen.back().first == 3 * kB);
    CHECK(s.stats().calls == 0);  // a cancelled run is not counted

    // A void progress callable never cancels.
    int n = 0;
    s.set_progress([&n](std::size_t, std::size_t) { ++n; });
    CHECK_NOTHROW(s.run(m, q, traj));
    CHECK(n > 0 && traj.batch() == kB);

    // A throwing progress callable: its exception comes back from run().
    s.set_progress([](std::size_t done, std::size_t) {
        if (done > 0) throw std::length_error("progress stop");
    });
    CHECK_THROWS(s.run(m, q, traj), const std::length_error, e,
                 { CHECK(std::string(e.what()) == "progress stop"); });
    s.clear_progress();
    CHECK_NOTHROW(s.run(m, q, traj));

    // The evaluator's progress callable cancels IWAE-S and BSVI-K.
    bsvi::evaluator ev(kD);
    ev.set_chunk_rows(8);
    std::size_t calls = 0;
    ev.set_progress([&calls](std::size_t, std::size_t) -> int { return ++calls >= 2 ? 1 : 0; });
    CHECK_THROWS((void)ev.iwae(m, q, 100), const bsvi::error, e,
                 { CHECK(e.status() == BSVI_ERR_CANCELLED); });
    CHECK(calls == 2);
    calls = 0;
    CHECK_THROWS((void)ev.bsvi(m, q, 10), const bsvi::error, e,
                 { CHECK(e.status() == BSVI_ERR_CANCELLED); });
    ev.set_progress([](std::size_t, std::size_t) { throw std::length_error("ev stop"); });
    CHECK_THROWS((void)ev.elbo_star(m, q, 50), const std::length_error, e,
                 { CHECK(std::string(e.what()) == "ev stop"); });
    ev.clear_progress();
    CHECK(ev.iwae(m, q, 100).size() == kB);
}

// ---- a model shared by threads: each thread gets its own exceptions --------------------------------

thread_local bool t_throw = false;

void test_threads() {
    const lingauss lg = make_lingauss();
    bsvi::model m(kD);
    m.set_likelihood([lg](std::size_t n, std::size_t dim, const double *z, const std::size_t *idx,
                          double *logp, double *grad) {
        if (t_throw) throw std::domain_error("thread boom");
        lg(n, dim, z, idx, logp, grad);
    });
    std::atomic<int> wrong{0};
    auto worker = [&](bool throws) {
        t_throw = throws;
        bsvi::proposal q(kB, kD);
        bsvi::svi s(kD);
        s.set_steps(3).set_step_size(0.05);
        bsvi::trajectory t;
        for (int i = 0; i < 200; ++i) {
            try {
                s.run(m, q, t);
                if (throws) ++wrong;
            } catch (const std::domain_error &e) {
                if (!throws || std::string(e.what()) != "thread boom") ++wrong;
            } catch (...) {
                ++wrong;
            }
        }
    };
    std::thread a(worker, true), b(worker, false), c(worker, true), d(worker, false);
    a.join();
    b.join();
    c.join();
    d.join();
    CHECK(wrong.load() == 0);

    // Deterministic: two live threads each leave a pending exception in the model's state
    // (raw C calls, which nobody collects); a failure of another kind on this thread must
    // not pick up theirs.
    std::atomic<int> stored{0};
    std::atomic<bool> release{false};
    auto leave_pending = [&] {
        t_throw = true;
        const std::vector<double> z(kD, 0.0);
        const std::size_t idx = 0;
        double out = 0.0;
        if (bsvi_model_log_joint(m.get(), 1, z.data(), &idx, &out, nullptr) !=
            BSVI_ERR_CALLBACK_FAILED)
            ++wrong;
        ++stored;
        while (!release.load()) std::this_thread::yield();
    };
    std::thread p1(leave_pending), p2(leave_pending);
    while (stored.load() < 2) std::this_thread::yield();
    const std::vector<double> znan{NAN, 0.0};
    const std::vector<std::size_t> idx{0};
    CHECK_THROWS((void)m.log_joint(znan, idx), const bsvi::error, e,
                 { CHECK(e.status() == BSVI_ERR_BAD_VALUE); });
    t_throw = true;
    CHECK_THROWS((void)m.log_joint(std::vector<double>(kD, 0.0), idx), const std::domain_error,
                 e, { CHECK(std::string(e.what()) == "thread boom"); });
    t_throw = false;
    release = true;
    p1.join();
    p2.join();
    CHECK(wrong.load() == 0);
}

}  // namespace

// ---- the step-size search and the evaluator's diagnostics -------------------------------------

void test_step_search() {
    throwing_likelihood tl;
    tl.lg = make_lingauss();
    for (double &v : tl.lg.x) v *= 6.0; // posteriors far from the prior: refinement gains
    std::shared_ptr<bool> armed = tl.armed;
    bsvi::model m(kD);
    m.set_likelihood(tl);
    bsvi::proposal q(kB, kD);
    const std::vector<double> zeros(kB * kD, 0.0);
    q.set_params(zeros, zeros); // the prior: SVI has much to gain
    bsvi::svi s(kD);
    s.set_steps(5).set_seed(3);
    auto batches = [&](std::size_t, const bsvi::model *&mm, const bsvi::proposal *&qq) {
        mm = &m;
        qq = &q;
    };
    const bsvi::step_search r = s.search_step_size(batches, 2);
    if (std::getenv("BSVI_TEST_VERBOSE"))
        for (const bsvi_step_trial &t : r.trials)
            std::fprintf(stderr, "eta %g gain %g se %g diverged %zu\n", t.step_size, t.svik_gain,
                         t.svik_gain_se, t.diverged);
    CHECK(!r.trials.empty() && r.trials.size() == r.result.num_trials);
    CHECK(r.result.best != BSVI_STEP_SEARCH_NONE);
    if (r.result.best != BSVI_STEP_SEARCH_NONE) {
        CHECK(r.trials[r.result.best].svik_gain > 0.0);
        CHECK(r.trials[r.result.best].points == 2 * kB);
    }
    const bsvi::step_search r2 = s.search_step_size(batches, 2); // reproducible
    CHECK(r2.trials.size() == r.trials.size() &&
          std::memcmp(r2.trials.data(), r.trials.data(), r.trials.size() * sizeof r.trials[0]) == 0);
    bsvi_step_search_options o = bsvi_step_search_options_default();
    const double grid[2] = {1e-2, 1e-1};
    o.grid = grid;
    o.grid_size = 2;
    CHECK(s.search_step_size(batches, 1, nullptr, &o).trials.size() == 2);

    // exceptions of the batch callable and of the model's callable come back as they were
    bool throw_batch = false;
    auto bad = [&](std::size_t i, const bsvi::model *&mm, const bsvi::proposal *&qq) {
        if (throw_batch && i == 1) throw std::domain_error("boom");
        mm = &m;
        qq = &q;
    };
    expect_boom(throw_batch, [&] { (void)s.search_step_size(bad, 2, nullptr, &o); },
                "search_step_size: batch callable");
    expect_boom(*armed, [&] { (void)s.search_step_size(batches, 2, nullptr, &o); },
                "search_step_size: model callable");
    // a status error carries the handle's message
    bsvi::svi s0(kD);
    s0.set_steps(0);
    CHECK_THROWS((void)s0.search_step_size(batches, 1), const bsvi::error, e,
                 { CHECK(e.status() == BSVI_ERR_BAD_STATE); CHECK(contains(e.what(), "k = 0")); });
    auto none = [&](std::size_t, const bsvi::model *&, const bsvi::proposal *&) {};
    CHECK_THROWS((void)s.search_step_size(none, 1), const bsvi::error, e,
                 { CHECK(e.status() == BSVI_ERR_CALLBACK_FAILED); });

    // evaluator diagnostics of IWAE-S
    bsvi::evaluator ev(kD);
    ev.set_diagnostics(true);
    (void)ev.iwae(m, q, 500);
    const bsvi::weight_diagnostics d = ev.diagnostics(kB);
    CHECK(d.ess.size() == kB && d.khat.size() == kB);
    for (std::size_t b = 0; b < kB; ++b) CHECK(d.ess[b] >= 1.0 && d.ess[b] <= 500.0 && !std::isnan(d.khat[b]));
    ev.set_diagnostics(false);
    (void)ev.iwae(m, q, 100);
    CHECK_THROWS((void)ev.diagnostics(kB), const bsvi::error, e,
                 { CHECK(e.status() == BSVI_ERR_BAD_STATE); });
}

int main() {
    struct test {
        const char *name;
        void (*fn)();
    };
    const test tests[] = {
        {"span", test_span},
        {"enums", test_enums},
        {"raii", test_raii},
        {"full_run", test_full_run},
        {"exception_round_trip", test_exception_round_trip},
        {"bad_input", test_bad_input},
        {"callable_kinds", test_callable_kinds},
        {"moves", test_moves},
        {"progress", test_progress},
        {"threads", test_threads},
        {"step_search", test_step_search},
    };
    for (const test &t : tests) {
        const int before = g_failures;
        try {
            t.fn();
        } catch (const std::exception &e) {
            ++g_failures;
            std::fprintf(stderr, "test %s: unexpected exception: %s\n", t.name, e.what());
        } catch (...) {
            ++g_failures;
            std::fprintf(stderr, "test %s: unexpected non-std exception\n", t.name);
        }
        std::printf("%-22s %s\n", t.name, g_failures == before ? "ok" : "FAILED");
    }
    std::printf("test_bsvi_hpp (C++%ld): %d checks, %d failures\n",
                static_cast<long>(__cplusplus / 100 % 100), g_checks, g_failures);
    return g_failures == 0 ? 0 : 1;
}
