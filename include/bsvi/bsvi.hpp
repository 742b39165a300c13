/**
 * @file bsvi.hpp
 * @brief Header-only C++17 wrapper of the libbsvi C API (namespace ::bsvi).
 *
 * Everything here is inline and calls the C functions declared in bsvi/bsvi.h; nothing is
 * added to the library or its ABI, so a program using this header links against the same
 * libbsvi as a C program.
 *
 * What the wrapper adds to the C API:
 * - **Owners.** bsvi::model, bsvi::proposal, bsvi::svi, bsvi::trajectory,
 *   bsvi::buffer_weights, bsvi::estimator, bsvi::evaluator and bsvi::diagnostics each own
 *   one C handle (move-only; the destructor calls the matching `*_destroy`). `get()` returns the raw
 *   handle for calls this header does not wrap; the owner keeps it. A moved-from owner is
 *   empty (`get() == nullptr`): its infallible getters return what the C getters return
 *   for NULL, and every fallible member throws bsvi::error(::BSVI_ERR_NULL_ARGUMENT).
 * - **Exceptions.** Every ::bsvi_status other than ::BSVI_OK becomes a bsvi::error carrying
 *   the status and the failing handle's `*_last_error` message.
 * - **Callbacks from any callable.** bsvi::model::set_likelihood(), bsvi::model::set_prior(),
 *   bsvi::svi::set_progress() and bsvi::evaluator::set_progress() take lambdas, functors
 *   (also move-only ones), function pointers or std::function. The owner keeps the callable
 *   (on the heap, so moving the owner leaves the C library's user_data valid) and destroys
 *   it when it is replaced or the owner is destroyed. An exception thrown by a callable is
 *   caught before it reaches C (the callback then reports failure to the library), and the
 *   wrapper member that made the library call (bsvi::svi::run(), bsvi::estimator::elbo(),
 *   bsvi::estimator::iwae(), bsvi::evaluator::iwae(), bsvi::evaluator::bsvi(),
 *   bsvi::evaluator::elbo_star(), bsvi::model::log_joint()) rethrows that same exception
 *   object (same type, same message) instead of a bsvi::error. Only the call during which
 *   the exception was thrown rethrows it; pending exceptions are kept per thread, so a
 *   model shared by threads (see model.h) reports each thread's exception to that thread.
 * - **Views.** Arrays whose shape the handles know are passed as bsvi::span (a minimal
 *   std::span for C++17) and their sizes are checked before the C call
 *   (bsvi::error(::BSVI_ERR_SIZE_MISMATCH) naming the argument and the expected shape);
 *   getters also come as conveniences returning std::vector.
 * - **Enum names.** bsvi::to_string() and bsvi::from_string() over the C `*_name` and
 *   `*_from_name` functions.
 *
 * Thread rules are those of the C handles (one handle per thread, a configured model may
 * be shared); an owner is no more thread-safe than its handle. Callables are invoked as
 * non-const lvalues, from the thread that made the library call; a callable of a model
 * shared by threads must be safe to call concurrently.
 *
 * Lifetime rule: an owner must outlive every running call that uses its handle. In
 * particular, do not destroy or move-assign over an owner from inside a callback of a call
 * that uses it (the C library would defer the free, but the callable would be gone).
 * Raw C calls made with `get()` on handles whose callbacks were set through this header
 * work, but an exception thrown by a callable during such a call is only reported as the
 * C status (::BSVI_ERR_CALLBACK_FAILED or ::BSVI_ERR_CANCELLED) and is then discarded.
 *
 * @code
 * bsvi::model m(2);
 * m.set_likelihood([&](std::size_t n, std::size_t d, const double *z, const std::size_t *b,
 *                      double *logp, double *grad) { ... });
 * bsvi::proposal q(batch, 2);
 * q.set_params(mean, log_std);            // std::vector<double>, each batch*2
 * bsvi::svi refine(2);
 * refine.set_steps(10).set_step_size(0.1);
 * bsvi::trajectory traj;
 * refine.run(m, q, traj);                 // throws bsvi::error or the callable's exception
 * bsvi::estimator est(2);
 * std::vector<double> bounds = est.bsvi(traj).bounds();
 * @endcode
 */
#ifndef BSVI_BSVI_HPP
#define BSVI_BSVI_HPP

#if defined(_MSVC_LANG)
#if _MSVC_LANG < 201703L
#error "bsvi/bsvi.hpp needs C++17 or later"
#endif
#elif !defined(__cplusplus) || __cplusplus < 201703L
#error "bsvi/bsvi.hpp needs C++17 or later"
#endif

#include "bsvi/bsvi.h"

#include <algorithm>
#include <atomic>
#include <array>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

/** @brief The C++17 wrapper of libbsvi (header bsvi/bsvi.hpp). */
namespace bsvi {

/* =========================================================================================
 * Errors
 * ========================================================================================= */

/**
 * @brief A libbsvi call failed: the ::bsvi_status it returned and the handle's message.
 *
 * what() is the failing handle's `*_last_error` message at the time of the failure (the C
 * messages name the C function and the offending value), or, where the library gave none,
 * a message written by the wrapper (for the checks it makes before calling C: sizes,
 * empty owners, unknown enum names).
 */
class error : public std::runtime_error {
public:
    /**
     * @brief Make an error.
     * @param status The status (not ::BSVI_OK).
     * @param message The message; when empty, bsvi_status_string() of @p status is used.
     */
    error(bsvi_status status, const std::string &message)
        : std::runtime_error(message.empty() ? std::string(bsvi_status_string(status))
                                             : message),
          status_(status) {}

    /** @brief The C status code. @return The ::bsvi_status of the failed call. */
    bsvi_status status() const noexcept { return status_; }

    /** @brief Short English description of status() (bsvi_status_string()). @return A static string. */
    const char *status_string() const noexcept { return bsvi_status_string(status_); }

private:
    bsvi_status status_;
};

/* =========================================================================================
 * span
 * ========================================================================================= */

/**
 * @brief A non-owning view of @p size() contiguous elements of type @p T (std::span is C++20).
 *
 * Constructible from a pointer and a size, from a C array, and from any contiguous
 * container or view with `data()` and `size()` (std::vector, std::array, std::span, another
 * bsvi::span<U> whose pointer converts to `T*`); a span of const elements also binds to
 * const containers and temporaries (valid for the full expression only, as with std::span).
 * There is deliberately no constructor from a braced list (it would dangle); pass a
 * std::vector or std::array instead. The viewed memory must outlive the span. Used for every array argument of this header;
 * where a C argument may be NULL, an empty span means NULL.
 * @tparam T Element type (`double`, `const double`, `std::size_t`, ...).
 */
template <class T>
class span {
    template <class C>
    using data_t = decltype(std::data(std::declval<C &>()));
    template <class C, class = void>
    struct compatible : std::false_type {};
    template <class C>
    struct compatible<C, std::void_t<data_t<C>, decltype(std::size(std::declval<C &>()))>>
        : std::is_convertible<std::remove_pointer_t<data_t<C>> (*)[], T (*)[]> {};

public:
    /** @brief Element type. */
    using element_type = T;
    /** @brief Element type without const. */
    using value_type = std::remove_cv_t<T>;
    /** @brief Size type. */
    using size_type = std::size_t;
    /** @brief Pointer type. */
    using pointer = T *;
    /** @brief Iterator type (a pointer). */
    using iterator = T *;

    /** @brief An empty span (data() is nullptr). */
    constexpr span() noexcept = default;

    /**
     * @brief View @p size elements starting at @p data.
     * @param data First element (may be nullptr only when @p size is 0). @param size Elements.
     */
    constexpr span(T *data, std::size_t size) noexcept : data_(data), size_(size) {}

    /**
     * @brief View a contiguous container, C array or view (lvalue).
     * @param c Anything with `std::data(c)` convertible to `T*` and `std::size(c)`.
     */
    template <class C, std::enable_if_t<compatible<C>::value, int> = 0>
    constexpr span(C &c) noexcept(noexcept(std::data(c)) && noexcept(std::size(c)))
        : data_(std::data(c)), size_(static_cast<std::size_t>(std::size(c))) {}

    /**
     * @brief View a const container or a temporary (spans of const elements only).
     * @param c Anything with `std::data(c)` convertible to `T*` and `std::size(c)`.
     */
    template <class C, class U = T,
              std::enable_if_t<std::is_const<U>::value && compatible<const C>::value, int> = 0>
    constexpr span(const C &c) noexcept(noexcept(std::data(c)) && noexcept(std::size(c)))
        : data_(std::data(c)), size_(static_cast<std::size_t>(std::size(c))) {}

    /** @brief First element. @return The pointer given at construction. */
    constexpr T *data() const noexcept { return data_; }
    /** @brief Number of elements. @return The size. */
    constexpr std::size_t size() const noexcept { return size_; }
    /** @brief Whether size() is 0. @return size() == 0. */
    constexpr bool empty() const noexcept { return size_ == 0; }
    /** @brief Element @p i (unchecked). @param i Index < size(). @return A reference. */
    constexpr T &operator[](std::size_t i) const noexcept { return data_[i]; }
    /** @brief Begin iterator. @return data(). */
    constexpr T *begin() const noexcept { return data_; }
    /** @brief End iterator. @return data() + size(). */
    constexpr T *end() const noexcept { return data_ + size_; }

private:
    T *data_ = nullptr;
    std::size_t size_ = 0;
};

/* =========================================================================================
 * Small value types
 * ========================================================================================= */

/** @brief All settings of an SVI refinement (the C struct; start from default_svi_options()). */
using svi_options = bsvi_svi_options;

/** @brief The options of a new SVI handle (bsvi_svi_options_default()). @return The defaults. */
inline svi_options default_svi_options() noexcept { return bsvi_svi_options_default(); }

/** @brief A handle's generator position (see rng.h). */
struct stream_state {
    std::uint64_t seed = 0;      /**< The seed. */
    std::uint64_t counter = 0;   /**< The call counter. */
    std::uint64_t id_offset = 0; /**< The id of the batch's first data point. */
};

/** @brief Diagonal Gaussian parameters, row-major, as two arrays of equal size. */
struct proposal_params {
    std::vector<double> mean;    /**< Means. */
    std::vector<double> log_std; /**< Log standard deviations. */
};

/** @brief An encoder gradient d/dlambda_0 per data point: two batch*dim arrays. */
struct encoder_gradient {
    std::vector<double> d_mean;    /**< d/dmean, batch*dim. */
    std::vector<double> d_log_std; /**< d/dlog-std, batch*dim. */
};

/** @brief The decoder targets of an estimator result (see estimator.h), n = num_targets(). */
struct estimator_targets {
    std::vector<std::size_t> data_index; /**< n data-point indices. */
    std::vector<std::size_t> slot;       /**< n sample / buffer indices. */
    std::vector<double> z;               /**< n*dim latents; empty for GIWAE results. */
    std::vector<double> coef;            /**< n coefficients. */
    std::vector<double> log_w;           /**< n log weights. */
};

/** @brief Adam state of buffer weights: moments of each logit and the step count. */
struct weights_adam_state {
    std::vector<double> m;  /**< First moments, n. */
    std::vector<double> v;  /**< Second moments, n. */
    std::uint64_t steps = 0; /**< Steps taken. */
};

/** @brief The accumulated pi gradient of buffer weights: a sum over data points and its count. */
struct weights_gradient {
    std::vector<double> sum;  /**< n entries. */
    std::uint64_t count = 0;  /**< Data points summed. */
};

/** @brief Importance-weight diagnostics per data point (bsvi::diagnostics). */
struct weight_diagnostics {
    std::vector<double> ess;  /**< Effective sample sizes, batch entries. */
    std::vector<double> khat; /**< PSIS Pareto k-hat values, batch entries. */
};

/** @brief ELBO*, KL* and Reconstruction* per data point (bsvi::evaluator::elbo_star()). */
struct elbo_star_result {
    std::vector<double> elbo;           /**< ELBO*, batch entries. */
    std::vector<double> kl;             /**< KL*, batch entries. */
    std::vector<double> reconstruction; /**< Reconstruction* = -(ELBO* + KL*), batch entries. */
};

/** @brief Outcome of bsvi::svi::search_step_size() (bsvi_svi_search_step_size()). */
struct step_search {
    std::vector<bsvi_step_trial> trials; /**< The step sizes tried, in increasing order. */
    bsvi_step_search_result result;      /**< The choice; result.best indexes trials. */
};

/* =========================================================================================
 * Free functions
 * ========================================================================================= */

/** @brief Version number of the loaded library (bsvi_version_number()). @return major*10000+minor*100+patch. */
inline int version_number() noexcept { return bsvi_version_number(); }
/** @brief Version string of the loaded library (bsvi_version_string()). @return E.g. "0.2.0". */
inline const char *version_string() noexcept { return bsvi_version_string(); }

/**
 * @brief log sum_i exp(a[i]) (bsvi_logsumexp()).
 * @param a Values; -INFINITY entries are legal.
 * @return The log-sum-exp (-INFINITY for an empty span). Never throws.
 */
inline double logsumexp(span<const double> a) noexcept { return bsvi_logsumexp(a.data(), a.size()); }

/**
 * @brief One Philox4x32-10 block (bsvi_philox4x32_10()).
 * @param counter Four counter words. @param key Two key words.
 * @return The four output words. Never throws.
 */
inline std::array<std::uint32_t, 4> philox4x32_10(const std::array<std::uint32_t, 4> &counter,
                                                 const std::array<std::uint32_t, 2> &key) noexcept {
    std::array<std::uint32_t, 4> out{};
    bsvi_philox4x32_10(counter.data(), key.data(), out.data());
    return out;
}

/** @cond BSVI_DETAIL */
namespace detail {

/* ---- errors ---------------------------------------------------------------------------- */

[[noreturn]] inline void fail(bsvi_status s, const std::string &msg) { throw error(s, msg); }

/* Throws for a failed C call: the message is the handle's last error, else "where: <status>". */
template <class H>
inline void check(bsvi_status s, const H *h, const char *(*last_error)(const H *),
                  const char *where) {
    if (s == BSVI_OK) return;
    if (h == nullptr)
        fail(s, std::string(where) + ": the owner is empty (moved from)");
    const char *m = last_error(h);
    if (m != nullptr && *m != '\0') fail(s, m);
    fail(s, std::string(where) + ": " + bsvi_status_string(s));
}

inline void check_create(bsvi_status s, const std::string &where) {
    if (s != BSVI_OK) fail(s, where + ": " + bsvi_status_string(s));
}

template <class H>
inline void require(const H *h, const char *where) {
    if (h == nullptr)
        fail(BSVI_ERR_NULL_ARGUMENT, std::string(where) + ": the owner is empty (moved from)");
}

/* a*b, saturated at SIZE_MAX (no span of doubles can have that many elements). */
inline std::size_t mul(std::size_t a, std::size_t b) noexcept {
    if (a != 0 && b > static_cast<std::size_t>(-1) / a) return static_cast<std::size_t>(-1);
    return a * b;
}

inline void expect_size(const char *where, const char *what, std::size_t got,
                        std::size_t expected, const char *shape) {
    if (got == expected) return;
    fail(BSVI_ERR_SIZE_MISMATCH, std::string(where) + ": " + what + " has " +
                                     std::to_string(got) + " entries, expected " + shape +
                                     " = " + std::to_string(expected));
}

/* An optional output: empty (passed as NULL) or exactly `expected` entries. */
inline void expect_size_or_empty(const char *where, const char *what, std::size_t got,
                                 std::size_t expected, const char *shape) {
    if (got == 0) return;
    expect_size(where, what, got, expected, shape);
}

template <class T>
inline T *or_null(span<T> s) noexcept { return s.empty() ? nullptr : s.data(); }

/* ---- exceptions thrown by callables ---------------------------------------------------- */

/* Exceptions caught in trampolines, kept per thread until the wrapper call that made the
 * library call takes them. The first exception of a thread wins. */
class exception_slot {
public:
    void store(std::exception_ptr e) noexcept {
        try {
            std::lock_guard<std::mutex> lock(mu_);
            const std::thread::id me = std::this_thread::get_id();
            for (const auto &p : pending_)
                if (p.first == me) return;
            pending_.emplace_back(me, std::move(e));
            count_.store(pending_.size(), std::memory_order_release);
        } catch (...) {
            /* No memory to keep it: the call still fails, as a bsvi::error. */
        }
    }

    std::exception_ptr take() noexcept {
        if (count_.load(std::memory_order_acquire) == 0) return nullptr;
        try {
            std::lock_guard<std::mutex> lock(mu_);
            const std::thread::id me = std::this_thread::get_id();
            for (auto it = pending_.begin(); it != pending_.end(); ++it) {
                if (it->first == me) {
                    std::exception_ptr e = std::move(it->second);
                    pending_.erase(it);
                    count_.store(pending_.size(), std::memory_order_release);
                    return e;
                }
            }
        } catch (...) {
        }
        return nullptr;
    }

private:
    std::mutex mu_;
    std::vector<std::pair<std::thread::id, std::exception_ptr>> pending_;
    std::atomic<std::size_t> count_{0};
};

/* The code a trampoline returns to C when its callable threw. */
constexpr int callable_threw = -1000;

/* Runs a C call that may run callbacks whose exceptions land in a and b. Exceptions left
 * by earlier raw C calls on this thread are discarded first, so that only an exception
 * thrown during this call is rethrown; on failure the first one found is rethrown, else
 * a bsvi::error is thrown with last_message(). */
template <class Call, class Message>
inline void call_with_callbacks(exception_slot *a, exception_slot *b, Call &&call,
                                Message &&last_message) {
    if (a) (void)a->take();
    if (b) (void)b->take();
    const bsvi_status s = call();
    std::exception_ptr ea = a ? a->take() : nullptr;
    std::exception_ptr eb = b ? b->take() : nullptr;
    if (s == BSVI_OK) return;
    if (ea) std::rethrow_exception(ea);
    if (eb) std::rethrow_exception(eb);
    last_message(s);
}

template <class T>
struct is_std_function : std::false_type {};
template <class R, class... A>
struct is_std_function<std::function<R(A...)>> : std::true_type {};

template <class D>
inline bool is_null_callable(const D &f) noexcept {
    if constexpr (std::is_pointer<D>::value) {
        return f == nullptr;
    } else if constexpr (is_std_function<D>::value) {
        return !f;
    } else {
        (void)f;
        return false;
    }
}

/* ---- density callbacks ------------------------------------------------------------------- */

template <class F>
using density_result_t = std::invoke_result_t<F &, std::size_t, std::size_t, const double *,
                                              const std::size_t *, double *, double *>;

template <class F>
constexpr bool density_ok() {
    using D = std::decay_t<F>;
    static_assert(std::is_invocable<D &, std::size_t, std::size_t, const double *,
                                    const std::size_t *, double *, double *>::value,
                  "bsvi: a density callable must be callable as f(std::size_t n, std::size_t dim, "
                  "const double *z, const std::size_t *data_index, double *log_density, "
                  "double *grad_or_null)");
    if constexpr (std::is_invocable<D &, std::size_t, std::size_t, const double *,
                                    const std::size_t *, double *, double *>::value) {
        using R = density_result_t<D>;
        static_assert(!std::is_same<std::remove_cv_t<R>, bool>::value,
                      "bsvi: a density callable returns void or int (0 = success, non-zero = "
                      "failure); bool is refused as ambiguous");
        static_assert(std::is_void<R>::value || std::is_convertible<R, int>::value,
                      "bsvi: a density callable returns void or something convertible to int");
    }
    static_assert(std::is_constructible<D, F>::value,
                  "bsvi: the callable must be copy- or move-constructible into the owner");
    return true;
}

struct density_holder {
    explicit density_holder(exception_slot *s) noexcept : slot(s) {}
    density_holder(const density_holder &) = delete;
    density_holder &operator=(const density_holder &) = delete;
    virtual ~density_holder() = default;
    virtual int invoke(std::size_t n, std::size_t dim, const double *z,
                       const std::size_t *data_index, double *log_density, double *grad) = 0;

    /* The bsvi_density_fn given to C; user_data is the holder. */
    static int trampoline(std::size_t n, std::size_t dim, const double *z,
                          const std::size_t *data_index, double *log_density, double *grad,
                          void *user_data) noexcept {
        density_holder *self = static_cast<density_holder *>(user_data);
        try {
            return self->invoke(n, dim, z, data_index, log_density, grad);
        } catch (...) {
            self->slot->store(std::current_exception());
            return callable_threw;
        }
    }

    exception_slot *slot;
};

template <class D>
class density_impl final : public density_holder {
public:
    template <class G>
    density_impl(exception_slot *s, G &&g) : density_holder(s), f_(std::forward<G>(g)) {}

    int invoke(std::size_t n, std::size_t dim, const double *z, const std::size_t *data_index,
               double *log_density, double *grad) override {
        if constexpr (std::is_void<density_result_t<D>>::value) {
            std::invoke(f_, n, dim, z, data_index, log_density, grad);
            return 0;
        } else {
            return static_cast<int>(std::invoke(f_, n, dim, z, data_index, log_density, grad));
        }
    }

private:
    D f_;
};

/* ---- progress callbacks ------------------------------------------------------------------ */

template <class F>
constexpr bool progress_ok() {
    using D = std::decay_t<F>;
    static_assert(std::is_invocable<D &, std::size_t, std::size_t>::value,
                  "bsvi: a progress callable must be callable as f(std::size_t done, "
                  "std::size_t total)");
    if constexpr (std::is_invocable<D &, std::size_t, std::size_t>::value) {
        using R = std::invoke_result_t<D &, std::size_t, std::size_t>;
        static_assert(!std::is_same<std::remove_cv_t<R>, bool>::value,
                      "bsvi: a progress callable returns void (never cancels) or int (0 = "
                      "continue, non-zero = cancel); bool is refused as ambiguous");
        static_assert(std::is_void<R>::value || std::is_convertible<R, int>::value,
                      "bsvi: a progress callable returns void or something convertible to int");
    }
    static_assert(std::is_constructible<D, F>::value,
                  "bsvi: the callable must be copy- or move-constructible into the owner");
    return true;
}

struct progress_holder {
    explicit progress_holder(exception_slot *s) noexcept : slot(s) {}
    progress_holder(const progress_holder &) = delete;
    progress_holder &operator=(const progress_holder &) = delete;
    virtual ~progress_holder() = default;
    virtual int invoke(std::size_t done, std::size_t total) = 0;

    /* The bsvi_progress_fn given to C; user_data is the holder. */
    static int trampoline(std::size_t done, std::size_t total, void *user_data) noexcept {
        progress_holder *self = static_cast<progress_holder *>(user_data);
        try {
            return self->invoke(done, total);
        } catch (...) {
            self->slot->store(std::current_exception());
            return callable_threw;
        }
    }

    exception_slot *slot;
};

template <class D>
class progress_impl final : public progress_holder {
public:
    template <class G>
    progress_impl(exception_slot *s, G &&g) : progress_holder(s), f_(std::forward<G>(g)) {}

    int invoke(std::size_t done, std::size_t total) override {
        if constexpr (std::is_void<std::invoke_result_t<D &, std::size_t, std::size_t>>::value) {
            std::invoke(f_, done, total);
            return 0;
        } else {
            return static_cast<int>(std::invoke(f_, done, total));
        }
    }

private:
    D f_;
};

/* ---- per-owner callback state (heap-allocated: user_data survives moves of the owner) -- */

struct model_state {
    exception_slot exceptions;
    std::unique_ptr<density_holder> likelihood;
    std::unique_ptr<density_holder> prior;
};

struct progress_state {
    exception_slot exceptions;
    std::unique_ptr<progress_holder> progress;
    std::size_t dim = 0;
    std::size_t last_bsvi_batch = 0; /* evaluator: batch of the last successful BSVI-K */
};

/* ---- deleters ------------------------------------------------------------------------------ */

struct model_deleter {
    void operator()(bsvi_model *p) const noexcept { bsvi_model_destroy(p); }
};
struct proposal_deleter {
    void operator()(bsvi_proposal *p) const noexcept { bsvi_proposal_destroy(p); }
};
struct svi_deleter {
    void operator()(bsvi_svi *p) const noexcept { bsvi_svi_destroy(p); }
};
struct trajectory_deleter {
    void operator()(bsvi_trajectory *p) const noexcept { bsvi_trajectory_destroy(p); }
};
struct weights_deleter {
    void operator()(bsvi_buffer_weights *p) const noexcept { bsvi_buffer_weights_destroy(p); }
};
struct estimator_deleter {
    void operator()(bsvi_estimator *p) const noexcept { bsvi_estimator_destroy(p); }
};
struct evaluator_deleter {
    void operator()(bsvi_evaluator *p) const noexcept { bsvi_evaluator_destroy(p); }
};
struct diagnostics_deleter {
    void operator()(bsvi_diagnostics *p) const noexcept { bsvi_diagnostics_destroy(p); }
};

/* ---- enum names ------------------------------------------------------------------------------ */

template <class E>
inline std::string enum_to_string(E value, const char *name, const char *type) {
    if (name == nullptr)
        fail(BSVI_ERR_BAD_VALUE, std::string("bsvi::to_string: ") + std::to_string(
                                     static_cast<long long>(value)) + " is not a " + type);
    return name;
}

template <class E>
inline std::optional<E> enum_from_string(std::string_view name,
                                         bsvi_status (*parse)(const char *, E *)) {
    const std::string s(name); /* NUL-terminated copy */
    E out{};
    if (parse(s.c_str(), &out) != BSVI_OK) return std::nullopt;
    return out;
}

} /* namespace detail */
/** @endcond */

/* =========================================================================================
 * Enum names
 * ========================================================================================= */

/**
 * @brief Short English description of a status (bsvi_status_string()).
 * @param s Any value. @return The description ("unknown status" for unknown values).
 * @throws std::bad_alloc only.
 */
inline std::string to_string(bsvi_status s) { return bsvi_status_string(s); }

/**
 * @brief Name of a bound ("elbo", "iwae", "svi", "bsvi", "bsvi-ds", "bsvi-sir", "giwae").
 * @param v A ::bsvi_bound value. @return Its name (bsvi_bound_name()).
 * @throws bsvi::error ::BSVI_ERR_BAD_VALUE for a value not in ::bsvi_bound.
 */
inline std::string to_string(bsvi_bound v) {
    return detail::enum_to_string(v, bsvi_bound_name(v), "bsvi_bound");
}
/**
 * @brief Name of a step rule ("gradient", "momentum", "adam").
 * @param v A ::bsvi_step_rule value. @return Its name (bsvi_step_rule_name()).
 * @throws bsvi::error ::BSVI_ERR_BAD_VALUE for a value not in ::bsvi_step_rule.
 */
inline std::string to_string(bsvi_step_rule v) {
    return detail::enum_to_string(v, bsvi_step_rule_name(v), "bsvi_step_rule");
}
/**
 * @brief Name of a gradient form ("pathwise", "stl", "analytic-kl", "dreg").
 * @param v A ::bsvi_grad_form value. @return Its name (bsvi_grad_form_name()).
 * @throws bsvi::error ::BSVI_ERR_BAD_VALUE for a value not in ::bsvi_grad_form.
 */
inline std::string to_string(bsvi_grad_form v) {
    return detail::enum_to_string(v, bsvi_grad_form_name(v), "bsvi_grad_form");
}
/**
 * @brief Name of a divergence policy ("fail", "freeze").
 * @param v A ::bsvi_divergence_policy value. @return Its name (bsvi_divergence_policy_name()).
 * @throws bsvi::error ::BSVI_ERR_BAD_VALUE for a value not in ::bsvi_divergence_policy.
 */
inline std::string to_string(bsvi_divergence_policy v) {
    return detail::enum_to_string(v, bsvi_divergence_policy_name(v), "bsvi_divergence_policy");
}

/**
 * @brief Parse an enum name written by to_string(), returning nothing for an unknown name.
 *
 * Defined for ::bsvi_bound, ::bsvi_step_rule, ::bsvi_grad_form and ::bsvi_divergence_policy
 * (the C `*_from_name` functions; exact match).
 * @tparam E The enum type.
 * @param name The name. @return The value, or std::nullopt when @p name is not one of E's names.
 */
template <class E>
std::optional<E> try_from_string(std::string_view name);

/** @cond BSVI_DETAIL */
template <>
inline std::optional<bsvi_bound> try_from_string<bsvi_bound>(std::string_view name) {
    return detail::enum_from_string<bsvi_bound>(name, bsvi_bound_from_name);
}
template <>
inline std::optional<bsvi_step_rule> try_from_string<bsvi_step_rule>(std::string_view name) {
    return detail::enum_from_string<bsvi_step_rule>(name, bsvi_step_rule_from_name);
}
template <>
inline std::optional<bsvi_grad_form> try_from_string<bsvi_grad_form>(std::string_view name) {
    return detail::enum_from_string<bsvi_grad_form>(name, bsvi_grad_form_from_name);
}
template <>
inline std::optional<bsvi_divergence_policy>
try_from_string<bsvi_divergence_policy>(std::string_view name) {
    return detail::enum_from_string<bsvi_divergence_policy>(name,
                                                            bsvi_divergence_policy_from_name);
}
/** @endcond */

/**
 * @brief Parse an enum name written by to_string() (for example `from_string<bsvi_bound>("iwae")`).
 * @tparam E ::bsvi_bound, ::bsvi_step_rule, ::bsvi_grad_form or ::bsvi_divergence_policy.
 * @param name The name (exact match). @return The value.
 * @throws bsvi::error ::BSVI_ERR_BAD_VALUE when @p name is not one of E's names.
 */
template <class E>
E from_string(std::string_view name) {
    std::optional<E> v = try_from_string<E>(name);
    if (!v)
        detail::fail(BSVI_ERR_BAD_VALUE,
                     "bsvi::from_string: unknown name '" + std::string(name) + "'");
    return *v;
}

class svi;
class estimator;
class evaluator;
class buffer_weights;

/* =========================================================================================
 * model
 * ========================================================================================= */

/**
 * @brief Owner of a ::bsvi_model: the host's p(x, z) as batched callables (see model.h).
 *
 * A density callable is called as
 * `f(std::size_t n, std::size_t dim, const double *z, const std::size_t *data_index,
 *    double *log_density, double *grad_or_null)` and returns void or int:
 * - @p z: n*dim row-major latents, read-only, valid during the call;
 * - @p data_index: n entries, row r belongs to data point data_index[r] of the batch;
 * - @p log_density: write n log densities (-INFINITY legal, NaN an error);
 * - @p grad_or_null: write the n*dim z-gradient, or nullptr when not needed;
 * - return: nothing, or 0 for success and non-zero for failure (the library call then
 *   fails with ::BSVI_ERR_CALLBACK_FAILED); `bool` is refused at compile time.
 * A callable that throws makes the running library call fail, and the wrapper member that
 * made it rethrows the exception itself.
 *
 * Move-only; the callables live with the owner (on the heap) and are destroyed when
 * replaced or with the owner.
 */
class model {
public:
    /**
     * @brief Create a model with the standard normal prior and no likelihood (bsvi_model_create()).
     * @param dim Latent dimension, 1..::BSVI_MAX_DIM.
     * @throws bsvi::error ::BSVI_ERR_ZERO_SIZE, ::BSVI_ERR_OUT_OF_RANGE, ::BSVI_ERR_NO_MEMORY.
     * @throws std::bad_alloc.
     */
    explicit model(std::size_t dim) : state_(std::make_unique<detail::model_state>()) {
        bsvi_model *raw = nullptr;
        detail::check_create(bsvi_model_create(dim, &raw),
                             "bsvi_model_create(dim = " + std::to_string(dim) + ")");
        h_.reset(raw);
    }

    /** @brief Take over @p o's handle and callables; @p o becomes empty. @param o Source. */
    model(model &&o) noexcept = default;

    /**
     * @brief Destroy this model's handle and callables, then take over @p o's.
     * @param o Source (becomes empty). @return *this.
     */
    model &operator=(model &&o) noexcept {
        if (this != &o) {
            h_.reset(); /* the handle first: it points at the callables */
            state_ = std::move(o.state_);
            h_ = std::move(o.h_);
        }
        return *this;
    }

    /** @brief Destroys the handle (bsvi_model_destroy()), then the callables. */
    ~model() { h_.reset(); }

    model(const model &) = delete;
    model &operator=(const model &) = delete;

    /** @brief The raw handle, still owned by this object. @return The handle, or nullptr when empty. */
    bsvi_model *get() const noexcept { return h_.get(); }
    /** @brief Whether this owner holds a handle. @return get() != nullptr. */
    explicit operator bool() const noexcept { return h_ != nullptr; }

    /** @brief Latent dimension (bsvi_model_dim()). @return d, 0 when empty. */
    std::size_t dim() const noexcept { return bsvi_model_dim(h_.get()); }

    /** @brief Whether the built-in N(0, I) prior is used. @return true if so (false when empty). */
    bool has_standard_normal_prior() const noexcept {
        return bsvi_model_has_standard_normal_prior(h_.get()) != 0;
    }

    /**
     * @brief Register the log-likelihood log p(x_b | z) (bsvi_model_set_likelihood()).
     *
     * The callable (copied or moved into this owner) replaces the previous one, which is
     * destroyed; on error the previous one stays registered.
     * @param f Density callable (see the class comment).
     * @return *this.
     * @throws bsvi::error ::BSVI_ERR_NULL_ARGUMENT (empty owner, null function pointer or
     *         empty std::function), ::BSVI_ERR_REENTRANT (called from a callback of a call
     *         holding this model). @throws std::bad_alloc.
     */
    template <class F>
    model &set_likelihood(F &&f) {
        static_assert(detail::density_ok<F>(), "");
        install(std::forward<F>(f), true, "bsvi::model::set_likelihood");
        return *this;
    }

    /**
     * @brief Register a host prior log p(z) instead of N(0, I) (bsvi_model_set_prior()).
     * @param f Density callable (see the class comment); data_index may be ignored.
     * @return *this.
     * @throws bsvi::error as set_likelihood(). @throws std::bad_alloc.
     */
    template <class F>
    model &set_prior(F &&f) {
        static_assert(detail::density_ok<F>(), "");
        install(std::forward<F>(f), false, "bsvi::model::set_prior");
        return *this;
    }

    /**
     * @brief Use the built-in standard normal prior again (bsvi_model_set_prior_standard_normal());
     *        a registered prior callable is destroyed.
     * @return *this.
     * @throws bsvi::error ::BSVI_ERR_NULL_ARGUMENT (empty owner), ::BSVI_ERR_REENTRANT.
     */
    model &set_prior_standard_normal() {
        detail::require(h_.get(), "bsvi::model::set_prior_standard_normal");
        detail::check(bsvi_model_set_prior_standard_normal(h_.get()), h_.get(),
                      bsvi_model_last_error, "bsvi_model_set_prior_standard_normal");
        state_->prior.reset();
        return *this;
    }

    /**
     * @brief log p(x, z) = log p(z) + log p(x | z) and its gradient (bsvi_model_log_joint()).
     *
     * n = data_index.size() rows.
     * @param z n*dim row-major latents.
     * @param data_index n data-point indices.
     * @param out Output, n entries.
     * @param grad Output n*dim gradient, or empty when not wanted.
     * @throws bsvi::error ::BSVI_ERR_SIZE_MISMATCH (checked here: z, out, grad), and the
     *         statuses of bsvi_model_log_joint() (::BSVI_ERR_ZERO_SIZE for n = 0,
     *         ::BSVI_ERR_BAD_STATE without a likelihood, ::BSVI_ERR_CALLBACK_FAILED, ...).
     * @throws Whatever a callable threw during this call (rethrown as is).
     */
    void log_joint(span<const double> z, span<const std::size_t> data_index, span<double> out,
                   span<double> grad = {}) const {
        static const char where[] = "bsvi::model::log_joint";
        detail::require(h_.get(), where);
        const std::size_t n = data_index.size();
        const std::size_t nd = detail::mul(n, dim());
        detail::expect_size(where, "z", z.size(), nd, "n*dim");
        detail::expect_size(where, "out", out.size(), n, "n = data_index.size()");
        detail::expect_size_or_empty(where, "grad", grad.size(), nd, "n*dim");
        bsvi_model *h = h_.get();
        detail::call_with_callbacks(
            &state_->exceptions, nullptr,
            [&] {
                return bsvi_model_log_joint(h, n, z.data(), data_index.data(), out.data(),
                                            detail::or_null(grad));
            },
            [&](bsvi_status s) { detail::check(s, h, bsvi_model_last_error, "bsvi_model_log_joint"); });
    }

    /**
     * @brief As log_joint(z, data_index, out), returning the n log joints.
     * @param z n*dim latents. @param data_index n indices. @return n values.
     * @throws As the other overload.
     */
    [[nodiscard]] std::vector<double> log_joint(span<const double> z,
                                                span<const std::size_t> data_index) const {
        std::vector<double> out(data_index.size());
        log_joint(z, data_index, out);
        return out;
    }

    /** @brief Message of the last error on the handle (bsvi_model_last_error()). @return A C string owned by the handle. */
    const char *last_error() const noexcept { return bsvi_model_last_error(h_.get()); }

private:
    friend class svi;
    friend class estimator;
    friend class evaluator;

    detail::exception_slot *exceptions() const noexcept {
        return state_ ? &state_->exceptions : nullptr;
    }

    template <class F>
    void install(F &&f, bool likelihood, const char *where) {
        using D = std::decay_t<F>;
        detail::require(h_.get(), where);
        if (detail::is_null_callable(f))
            detail::fail(BSVI_ERR_NULL_ARGUMENT, std::string(where) + ": the callable is empty");
        std::unique_ptr<detail::density_holder> holder =
            std::make_unique<detail::density_impl<D>>(&state_->exceptions, std::forward<F>(f));
        if (likelihood) {
            detail::check(bsvi_model_set_likelihood(h_.get(), &detail::density_holder::trampoline,
                                                    holder.get()),
                          h_.get(), bsvi_model_last_error, "bsvi_model_set_likelihood");
            state_->likelihood = std::move(holder);
        } else {
            detail::check(bsvi_model_set_prior(h_.get(), &detail::density_holder::trampoline,
                                               holder.get()),
                          h_.get(), bsvi_model_last_error, "bsvi_model_set_prior");
            state_->prior = std::move(holder);
        }
    }

    /* Declared before h_ so that the handle is destroyed first. */
    std::unique_ptr<detail::model_state> state_;
    std::unique_ptr<bsvi_model, detail::model_deleter> h_;
};

/* =========================================================================================
 * proposal
 * ========================================================================================= */

/**
 * @brief Owner of a ::bsvi_proposal: diagonal Gaussians q(z; lambda_b) for a batch (see proposal.h).
 *
 * Parameter arrays are row-major batch*dim; sample arrays (batch*nsamples)*dim with row
 * b*nsamples + s. Move-only.
 */
class proposal {
public:
    /**
     * @brief Create a proposal initialised to N(0, I) (bsvi_proposal_create()).
     * @param batch Data points, 1..::BSVI_MAX_BATCH. @param dim Dimension, 1..::BSVI_MAX_DIM.
     * @throws bsvi::error ::BSVI_ERR_ZERO_SIZE, ::BSVI_ERR_OUT_OF_RANGE, ::BSVI_ERR_NO_MEMORY.
     */
    proposal(std::size_t batch, std::size_t dim) {
        bsvi_proposal *raw = nullptr;
        detail::check_create(bsvi_proposal_create(batch, dim, &raw),
                             "bsvi_proposal_create(batch = " + std::to_string(batch) +
                                 ", dim = " + std::to_string(dim) + ")");
        h_.reset(raw);
    }

    /** @brief The raw handle, still owned by this object. @return The handle, or nullptr when empty. */
    bsvi_proposal *get() const noexcept { return h_.get(); }
    /** @brief Whether this owner holds a handle. @return get() != nullptr. */
    explicit operator bool() const noexcept { return h_ != nullptr; }

    /** @brief Number of data points. @return batch (0 when empty). */
    std::size_t batch() const noexcept { return bsvi_proposal_batch(h_.get()); }
    /** @brief Latent dimension. @return dim (0 when empty). */
    std::size_t dim() const noexcept { return bsvi_proposal_dim(h_.get()); }
    /** @brief Entries of one parameter array. @return batch*dim. */
    std::size_t size() const noexcept { return batch() * dim(); }

    /**
     * @brief Copy in lambda = (mean, log-std) (bsvi_proposal_set_params()).
     * @param mean batch*dim finite means. @param log_std batch*dim log-stds in
     *        [::BSVI_MIN_LOG_STD, ::BSVI_MAX_LOG_STD].
     * @return *this.
     * @throws bsvi::error ::BSVI_ERR_SIZE_MISMATCH (checked here), ::BSVI_ERR_BAD_VALUE
     *         (the previous parameters are kept), ::BSVI_ERR_REENTRANT, ::BSVI_ERR_NULL_ARGUMENT.
     */
    proposal &set_params(span<const double> mean, span<const double> log_std) {
        static const char where[] = "bsvi::proposal::set_params";
        detail::require(h_.get(), where);
        detail::expect_size(where, "mean", mean.size(), size(), "batch*dim");
        detail::expect_size(where, "log_std", log_std.size(), size(), "batch*dim");
        detail::check(bsvi_proposal_set_params(h_.get(), mean.data(), log_std.data()), h_.get(),
                      bsvi_proposal_last_error, "bsvi_proposal_set_params");
        return *this;
    }

    /**
     * @brief Copy out the parameters (bsvi_proposal_get_params()).
     * @param mean Output batch*dim, or empty to skip. @param log_std Output batch*dim, or empty.
     * @throws bsvi::error ::BSVI_ERR_SIZE_MISMATCH, ::BSVI_ERR_NULL_ARGUMENT.
     */
    void params(span<double> mean, span<double> log_std) const {
        static const char where[] = "bsvi::proposal::params";
        detail::require(h_.get(), where);
        detail::expect_size_or_empty(where, "mean", mean.size(), size(), "batch*dim");
        detail::expect_size_or_empty(where, "log_std", log_std.size(), size(), "batch*dim");
        detail::check(bsvi_proposal_get_params(h_.get(), detail::or_null(mean),
                                               detail::or_null(log_std)),
                      h_.get(), bsvi_proposal_last_error, "bsvi_proposal_get_params");
    }
    /** @brief Both parameter arrays. @return mean and log-std, batch*dim each. @throws bsvi::error. */
    [[nodiscard]] proposal_params params() const {
        proposal_params p{std::vector<double>(size()), std::vector<double>(size())};
        params(p.mean, p.log_std);
        return p;
    }
    /** @brief The means. @return batch*dim values. @throws bsvi::error. */
    [[nodiscard]] std::vector<double> mean() const {
        std::vector<double> m(size());
        params(m, {});
        return m;
    }
    /** @brief The log-stds. @return batch*dim values. @throws bsvi::error. */
    [[nodiscard]] std::vector<double> log_std() const {
        std::vector<double> s(size());
        params({}, s);
        return s;
    }

    /**
     * @brief Set the seed and reset the call counter (bsvi_proposal_set_seed()).
     * @param seed Any value. @return *this.
     * @throws bsvi::error ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_REENTRANT.
     */
    proposal &set_seed(std::uint64_t seed) {
        detail::check(bsvi_proposal_set_seed(h_.get(), seed), h_.get(), bsvi_proposal_last_error,
                      "bsvi_proposal_set_seed");
        return *this;
    }
    /**
     * @brief Set the call counter and data-point id offset (bsvi_proposal_set_stream()).
     * @param counter Call counter. @param id_offset Id of the batch's first data point.
     * @return *this. @throws bsvi::error ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_REENTRANT.
     */
    proposal &set_stream(std::uint64_t counter, std::uint64_t id_offset) {
        detail::check(bsvi_proposal_set_stream(h_.get(), counter, id_offset), h_.get(),
                      bsvi_proposal_last_error, "bsvi_proposal_set_stream");
        return *this;
    }

    /**
     * @brief Draw reparameterised samples z = mean + sigma*eps (bsvi_proposal_sample()).
     * @param nsamples Samples per data point (1..::BSVI_MAX_SAMPLES).
     * @param z Output (batch*nsamples)*dim. @param eps Output of the same shape, or empty.
     * @throws bsvi::error ::BSVI_ERR_SIZE_MISMATCH (checked here), ::BSVI_ERR_ZERO_SIZE,
     *         ::BSVI_ERR_OUT_OF_RANGE, ::BSVI_ERR_REENTRANT, ::BSVI_ERR_NULL_ARGUMENT.
     */
    void sample(std::size_t nsamples, span<double> z, span<double> eps = {}) {
        static const char where[] = "bsvi::proposal::sample";
        detail::require(h_.get(), where);
        const std::size_t want = detail::mul(detail::mul(batch(), nsamples), dim());
        detail::expect_size(where, "z", z.size(), want, "batch*nsamples*dim");
        detail::expect_size_or_empty(where, "eps", eps.size(), want, "batch*nsamples*dim");
        detail::check(bsvi_proposal_sample(h_.get(), nsamples, detail::or_null(z),
                                           detail::or_null(eps)),
                      h_.get(), bsvi_proposal_last_error, "bsvi_proposal_sample");
    }
    /** @brief Draw samples. @param nsamples Per data point. @return (batch*nsamples)*dim latents. @throws bsvi::error. */
    [[nodiscard]] std::vector<double> sample(std::size_t nsamples) {
        std::vector<double> z(detail::mul(detail::mul(batch(), nsamples), dim()));
        sample(nsamples, z);
        return z;
    }

    /**
     * @brief log q(z; lambda_b) for rows laid out as sample() writes them (bsvi_proposal_log_density()).
     * @param nsamples Rows per data point. @param z Input (batch*nsamples)*dim.
     * @param out Output batch*nsamples.
     * @throws bsvi::error ::BSVI_ERR_SIZE_MISMATCH (checked here), ::BSVI_ERR_ZERO_SIZE,
     *         ::BSVI_ERR_OUT_OF_RANGE, ::BSVI_ERR_BAD_VALUE (NaN in z), ::BSVI_ERR_NULL_ARGUMENT.
     */
    void log_density(std::size_t nsamples, span<const double> z, span<double> out) const {
        static const char where[] = "bsvi::proposal::log_density";
        detail::require(h_.get(), where);
        const std::size_t rows = detail::mul(batch(), nsamples);
        detail::expect_size(where, "z", z.size(), detail::mul(rows, dim()), "batch*nsamples*dim");
        detail::expect_size(where, "out", out.size(), rows, "batch*nsamples");
        detail::check(bsvi_proposal_log_density(h_.get(), nsamples, detail::or_null(z),
                                                detail::or_null(out)),
                      h_.get(), bsvi_proposal_last_error, "bsvi_proposal_log_density");
    }
    /** @brief log q of each row. @param nsamples Rows per data point. @param z (batch*nsamples)*dim. @return batch*nsamples values. @throws bsvi::error. */
    [[nodiscard]] std::vector<double> log_density(std::size_t nsamples,
                                                  span<const double> z) const {
        std::vector<double> out(detail::mul(batch(), nsamples));
        log_density(nsamples, z, out);
        return out;
    }

    /**
     * @brief Entropy of each q_b (bsvi_proposal_entropy()). @param out Output, batch entries.
     * @throws bsvi::error ::BSVI_ERR_SIZE_MISMATCH, ::BSVI_ERR_NULL_ARGUMENT.
     */
    void entropy(span<double> out) const {
        detail::require(h_.get(), "bsvi::proposal::entropy");
        detail::expect_size("bsvi::proposal::entropy", "out", out.size(), batch(), "batch");
        detail::check(bsvi_proposal_entropy(h_.get(), out.data()), h_.get(),
                      bsvi_proposal_last_error, "bsvi_proposal_entropy");
    }
    /** @brief Entropy of each q_b. @return batch values. @throws bsvi::error. */
    [[nodiscard]] std::vector<double> entropy() const {
        std::vector<double> out(batch());
        entropy(out);
        return out;
    }

    /**
     * @brief KL(q_b || N(0, I)) (bsvi_proposal_kl_standard_normal()). @param out Output, batch entries.
     * @throws bsvi::error ::BSVI_ERR_SIZE_MISMATCH, ::BSVI_ERR_NULL_ARGUMENT.
     */
    void kl_standard_normal(span<double> out) const {
        detail::require(h_.get(), "bsvi::proposal::kl_standard_normal");
        detail::expect_size("bsvi::proposal::kl_standard_normal", "out", out.size(), batch(),
                            "batch");
        detail::check(bsvi_proposal_kl_standard_normal(h_.get(), out.data()), h_.get(),
                      bsvi_proposal_last_error, "bsvi_proposal_kl_standard_normal");
    }
    /** @brief KL(q_b || N(0, I)). @return batch values. @throws bsvi::error. */
    [[nodiscard]] std::vector<double> kl_standard_normal() const {
        std::vector<double> out(batch());
        kl_standard_normal(out);
        return out;
    }

    /** @brief Message of the last error (bsvi_proposal_last_error()). @return A C string owned by the handle. */
    const char *last_error() const noexcept { return bsvi_proposal_last_error(h_.get()); }

private:
    std::unique_ptr<bsvi_proposal, detail::proposal_deleter> h_;
};

/* =========================================================================================
 * trajectory
 * ========================================================================================= */

/**
 * @brief Owner of a ::bsvi_trajectory: the buffer of an SVI refinement (see trajectory.h).
 *
 * Per-slot scalars are B*(k+1) (entry b*(k+1) + i), per-slot vectors B*(k+1)*d. Getters of
 * an empty trajectory (no successful bsvi::svi::run() into it yet) throw
 * bsvi::error(::BSVI_ERR_BAD_STATE). Move-only.
 */
class trajectory {
public:
    /** @brief Create an empty trajectory (bsvi_trajectory_create()). @throws bsvi::error ::BSVI_ERR_NO_MEMORY. */
    trajectory() {
        bsvi_trajectory *raw = nullptr;
        detail::check_create(bsvi_trajectory_create(&raw), "bsvi_trajectory_create");
        h_.reset(raw);
    }

    /** @brief The raw handle, still owned by this object. @return The handle, or nullptr when empty. */
    bsvi_trajectory *get() const noexcept { return h_.get(); }
    /** @brief Whether this owner holds a handle. @return get() != nullptr. */
    explicit operator bool() const noexcept { return h_ != nullptr; }

    /** @brief Data points held. @return B (0 when empty). */
    std::size_t batch() const noexcept { return bsvi_trajectory_batch(h_.get()); }
    /** @brief SVI steps k. @return k (0 when empty). */
    std::size_t steps() const noexcept { return bsvi_trajectory_steps(h_.get()); }
    /** @brief Buffer slots per data point. @return k+1, or 0 when empty. */
    std::size_t slots() const noexcept { return empty() ? 0 : steps() + 1; }
    /** @brief Latent dimension. @return d (0 when empty). */
    std::size_t dim() const noexcept { return bsvi_trajectory_dim(h_.get()); }
    /** @brief Whether no run has filled it. @return batch() == 0. */
    bool empty() const noexcept { return batch() == 0; }
    /** @brief Whether it was filled with double sampling (BSVI-DS). @return true if so. */
    bool is_double_sampled() const noexcept { return bsvi_trajectory_is_double_sampled(h_.get()) != 0; }
    /** @brief Data points that stopped refining early (freeze policy). @return The count. */
    std::size_t num_diverged() const noexcept { return bsvi_trajectory_num_diverged(h_.get()); }

    /** @brief Copy out log w_i. @param out Output B*(k+1). @throws bsvi::error ::BSVI_ERR_BAD_STATE (empty), ::BSVI_ERR_SIZE_MISMATCH. */
    void log_weights(span<double> out) const {
        scalars(out, bsvi_trajectory_get_log_weights, "bsvi::trajectory::log_weights",
                "bsvi_trajectory_get_log_weights");
    }
    /** @brief log w_i for every data point and slot. @return B*(k+1) values. @throws bsvi::error. */
    [[nodiscard]] std::vector<double> log_weights() const {
        std::vector<double> v(batch() * slots());
        log_weights(v);
        return v;
    }
    /** @brief Copy out log p(x_b, z_i). @param out Output B*(k+1). @throws bsvi::error as log_weights(). */
    void log_joint(span<double> out) const {
        scalars(out, bsvi_trajectory_get_log_joint, "bsvi::trajectory::log_joint",
                "bsvi_trajectory_get_log_joint");
    }
    /** @brief log p(x_b, z_i). @return B*(k+1) values. @throws bsvi::error. */
    [[nodiscard]] std::vector<double> log_joint() const {
        std::vector<double> v(batch() * slots());
        log_joint(v);
        return v;
    }
    /** @brief Copy out log q(z_i; lambda_i). @param out Output B*(k+1). @throws bsvi::error as log_weights(). */
    void log_proposal(span<double> out) const {
        scalars(out, bsvi_trajectory_get_log_proposal, "bsvi::trajectory::log_proposal",
                "bsvi_trajectory_get_log_proposal");
    }
    /** @brief log q(z_i; lambda_i). @return B*(k+1) values. @throws bsvi::error. */
    [[nodiscard]] std::vector<double> log_proposal() const {
        std::vector<double> v(batch() * slots());
        log_proposal(v);
        return v;
    }

    /** @brief Copy out the recorded samples z_i. @param z Output B*(k+1)*d. @throws bsvi::error as log_weights(). */
    void latents(span<double> z) const {
        static const char where[] = "bsvi::trajectory::latents";
        need_data(where);
        detail::expect_size(where, "z", z.size(), batch() * slots() * dim(), "batch*(k+1)*dim");
        detail::check(bsvi_trajectory_get_latents(h_.get(), z.data()), h_.get(),
                      bsvi_trajectory_last_error, "bsvi_trajectory_get_latents");
    }
    /** @brief The recorded samples z_i. @return B*(k+1)*d values. @throws bsvi::error. */
    [[nodiscard]] std::vector<double> latents() const {
        std::vector<double> v(batch() * slots() * dim());
        latents(v);
        return v;
    }

    /**
     * @brief Copy out the proposal parameters lambda_i (bsvi_trajectory_get_params()).
     * @param mean Output B*(k+1)*d, or empty to skip. @param log_std Output B*(k+1)*d, or empty.
     * @throws bsvi::error as log_weights().
     */
    void params(span<double> mean, span<double> log_std) const {
        static const char where[] = "bsvi::trajectory::params";
        need_data(where);
        const std::size_t n = batch() * slots() * dim();
        detail::expect_size_or_empty(where, "mean", mean.size(), n, "batch*(k+1)*dim");
        detail::expect_size_or_empty(where, "log_std", log_std.size(), n, "batch*(k+1)*dim");
        detail::check(bsvi_trajectory_get_params(h_.get(), detail::or_null(mean),
                                                 detail::or_null(log_std)),
                      h_.get(), bsvi_trajectory_last_error, "bsvi_trajectory_get_params");
    }
    /** @brief Every lambda_i. @return mean and log-std, B*(k+1)*d each (row b*(k+1)+i). @throws bsvi::error. */
    [[nodiscard]] proposal_params params() const {
        const std::size_t n = batch() * slots() * dim();
        proposal_params p{std::vector<double>(n), std::vector<double>(n)};
        params(p.mean, p.log_std);
        return p;
    }

    /**
     * @brief Copy out the encoder gradient d/dlambda_0 log w (bsvi_trajectory_get_encoder_grad()).
     * @param d_mean Output B*d, or empty to skip. @param d_log_std Output B*d, or empty.
     * @throws bsvi::error as log_weights().
     */
    void encoder_grad(span<double> d_mean, span<double> d_log_std) const {
        static const char where[] = "bsvi::trajectory::encoder_grad";
        need_data(where);
        const std::size_t n = batch() * dim();
        detail::expect_size_or_empty(where, "d_mean", d_mean.size(), n, "batch*dim");
        detail::expect_size_or_empty(where, "d_log_std", d_log_std.size(), n, "batch*dim");
        detail::check(bsvi_trajectory_get_encoder_grad(h_.get(), detail::or_null(d_mean),
                                                       detail::or_null(d_log_std)),
                      h_.get(), bsvi_trajectory_last_error, "bsvi_trajectory_get_encoder_grad");
    }
    /** @brief The encoder gradient. @return d_mean and d_log_std, B*d each. @throws bsvi::error. */
    [[nodiscard]] encoder_gradient encoder_grad() const {
        const std::size_t n = batch() * dim();
        encoder_gradient g{std::vector<double>(n), std::vector<double>(n)};
        encoder_grad(g.d_mean, g.d_log_std);
        return g;
    }

    /** @brief Copy out the SVI steps each data point took. @param out Output, B entries. @throws bsvi::error as log_weights(). */
    void steps_taken(span<std::size_t> out) const {
        static const char where[] = "bsvi::trajectory::steps_taken";
        need_data(where);
        detail::expect_size(where, "out", out.size(), batch(), "batch");
        detail::check(bsvi_trajectory_get_steps_taken(h_.get(), out.data()), h_.get(),
                      bsvi_trajectory_last_error, "bsvi_trajectory_get_steps_taken");
    }
    /** @brief SVI steps each data point took. @return B values. @throws bsvi::error. */
    [[nodiscard]] std::vector<std::size_t> steps_taken() const {
        std::vector<std::size_t> v(batch());
        steps_taken(v);
        return v;
    }

    /**
     * @brief Training-health metrics SVI-0, SVI-k, BSVI-k (bsvi_trajectory_health()).
     * @param pi Buffer weights with k+1 slots, or nullptr for uniform.
     * @return The metrics.
     * @throws bsvi::error ::BSVI_ERR_BAD_STATE (empty), ::BSVI_ERR_SIZE_MISMATCH (pi's size),
     *         ::BSVI_ERR_NO_MEMORY, ::BSVI_ERR_NULL_ARGUMENT.
     */
    bsvi_health health(const buffer_weights *pi = nullptr) const;

    /** @brief Message of the last error (bsvi_trajectory_last_error()). @return A C string owned by the handle. */
    const char *last_error() const noexcept { return bsvi_trajectory_last_error(h_.get()); }

private:
    void need_data(const char *where) const {
        detail::require(h_.get(), where);
        if (empty())
            detail::fail(BSVI_ERR_BAD_STATE,
                         std::string(where) + ": the trajectory is empty (no successful run yet)");
    }
    void scalars(span<double> out, bsvi_status (*getter)(const bsvi_trajectory *, double *),
                 const char *where, const char *cfn) const {
        need_data(where);
        detail::expect_size(where, "out", out.size(), batch() * slots(), "batch*(k+1)");
        detail::check(getter(h_.get(), out.data()), h_.get(), bsvi_trajectory_last_error, cfn);
    }

    std::unique_ptr<bsvi_trajectory, detail::trajectory_deleter> h_;
};

/* =========================================================================================
 * buffer_weights
 * ========================================================================================= */

/**
 * @brief Owner of a ::bsvi_buffer_weights: pi over n buffer slots, its logits and Adam (see weights.h).
 *
 * Every array argument has n = size() entries. Move-only.
 */
class buffer_weights {
public:
    /**
     * @brief Uniform weights over @p n slots (bsvi_buffer_weights_create()).
     * @param n Slots, 1..::BSVI_MAX_STEPS+1 (k+1 for a k-step trajectory).
     * @throws bsvi::error ::BSVI_ERR_ZERO_SIZE, ::BSVI_ERR_OUT_OF_RANGE, ::BSVI_ERR_NO_MEMORY.
     */
    explicit buffer_weights(std::size_t n) {
        bsvi_buffer_weights *raw = nullptr;
        detail::check_create(bsvi_buffer_weights_create(n, &raw),
                             "bsvi_buffer_weights_create(n = " + std::to_string(n) + ")");
        h_.reset(raw);
    }

    /** @brief The raw handle, still owned by this object. @return The handle, or nullptr when empty. */
    bsvi_buffer_weights *get() const noexcept { return h_.get(); }
    /** @brief Whether this owner holds a handle. @return get() != nullptr. */
    explicit operator bool() const noexcept { return h_ != nullptr; }
    /** @brief Number of slots n. @return n (0 when empty). */
    std::size_t size() const noexcept { return bsvi_buffer_weights_size(h_.get()); }

    /**
     * @brief Set pi from probabilities; resets Adam and the accumulated gradient.
     * @param pi n non-negative entries summing to 1. @return *this.
     * @throws bsvi::error ::BSVI_ERR_SIZE_MISMATCH, ::BSVI_ERR_BAD_VALUE, ::BSVI_ERR_NULL_ARGUMENT.
     */
    buffer_weights &set_probs(span<const double> pi) {
        detail::require(h_.get(), "bsvi::buffer_weights::set_probs");
        detail::expect_size("bsvi::buffer_weights::set_probs", "pi", pi.size(), size(), "n");
        detail::check(bsvi_buffer_weights_set_probs(h_.get(), pi.data(), pi.size()), h_.get(),
                      bsvi_buffer_weights_last_error, "bsvi_buffer_weights_set_probs");
        return *this;
    }
    /** @brief Copy out pi. @param pi Output, n entries. @throws bsvi::error ::BSVI_ERR_SIZE_MISMATCH. */
    void probs(span<double> pi) const {
        detail::require(h_.get(), "bsvi::buffer_weights::probs");
        detail::expect_size("bsvi::buffer_weights::probs", "pi", pi.size(), size(), "n");
        detail::check(bsvi_buffer_weights_get_probs(h_.get(), pi.data(), pi.size()), h_.get(),
                      bsvi_buffer_weights_last_error, "bsvi_buffer_weights_get_probs");
    }
    /** @brief pi = softmax(logits). @return n probabilities. @throws bsvi::error. */
    [[nodiscard]] std::vector<double> probs() const {
        std::vector<double> v(size());
        probs(v);
        return v;
    }

    /**
     * @brief Set the logits (keeps Adam and the accumulated gradient).
     * @param logits n entries, finite or -INFINITY, one finite at least. @return *this.
     * @throws bsvi::error ::BSVI_ERR_SIZE_MISMATCH, ::BSVI_ERR_BAD_VALUE, ::BSVI_ERR_NULL_ARGUMENT.
     */
    buffer_weights &set_logits(span<const double> logits) {
        detail::require(h_.get(), "bsvi::buffer_weights::set_logits");
        detail::expect_size("bsvi::buffer_weights::set_logits", "logits", logits.size(), size(),
                            "n");
        detail::check(bsvi_buffer_weights_set_logits(h_.get(), logits.data(), logits.size()),
                      h_.get(), bsvi_buffer_weights_last_error, "bsvi_buffer_weights_set_logits");
        return *this;
    }
    /** @brief Copy out the logits. @param logits Output, n entries. @throws bsvi::error ::BSVI_ERR_SIZE_MISMATCH. */
    void logits(span<double> logits) const {
        detail::require(h_.get(), "bsvi::buffer_weights::logits");
        detail::expect_size("bsvi::buffer_weights::logits", "logits", logits.size(), size(), "n");
        detail::check(bsvi_buffer_weights_get_logits(h_.get(), logits.data(), logits.size()),
                      h_.get(), bsvi_buffer_weights_last_error, "bsvi_buffer_weights_get_logits");
    }
    /** @brief The logits. @return n values. @throws bsvi::error. */
    [[nodiscard]] std::vector<double> logits() const {
        std::vector<double> v(size());
        logits(span<double>(v));
        return v;
    }

    /** @brief E_pi[i/(n-1)] (bsvi_buffer_weights_mean_position()). @return The mean position in [0, 1]. @throws bsvi::error. */
    double mean_position() const {
        double out = 0.0;
        detail::check(bsvi_buffer_weights_mean_position(h_.get(), &out), h_.get(),
                      bsvi_buffer_weights_last_error, "bsvi_buffer_weights_mean_position");
        return out;
    }

    /**
     * @brief Set Adam's parameters (bsvi_buffer_weights_set_adam()).
     * @param learning_rate Finite, > 0. @param beta1 In [0,1). @param beta2 In [0,1). @return *this.
     * @throws bsvi::error ::BSVI_ERR_BAD_VALUE, ::BSVI_ERR_NULL_ARGUMENT.
     */
    buffer_weights &set_adam(double learning_rate, double beta1 = 0.9, double beta2 = 0.999) {
        detail::check(bsvi_buffer_weights_set_adam(h_.get(), learning_rate, beta1, beta2), h_.get(),
                      bsvi_buffer_weights_last_error, "bsvi_buffer_weights_set_adam");
        return *this;
    }
    /** @brief Adam's moments and step count (bsvi_buffer_weights_get_adam_state()). @return The state. @throws bsvi::error. */
    [[nodiscard]] weights_adam_state adam_state() const {
        detail::require(h_.get(), "bsvi::buffer_weights::adam_state");
        weights_adam_state s{std::vector<double>(size()), std::vector<double>(size()), 0};
        detail::check(bsvi_buffer_weights_get_adam_state(h_.get(), s.m.data(), s.v.data(),
                                                         &s.steps, size()),
                      h_.get(), bsvi_buffer_weights_last_error,
                      "bsvi_buffer_weights_get_adam_state");
        return s;
    }
    /**
     * @brief Restore Adam's state (bsvi_buffer_weights_set_adam_state()).
     * @param m n finite first moments. @param v n finite non-negative second moments.
     * @param steps Steps taken. @return *this.
     * @throws bsvi::error ::BSVI_ERR_SIZE_MISMATCH, ::BSVI_ERR_BAD_VALUE, ::BSVI_ERR_NULL_ARGUMENT.
     */
    buffer_weights &set_adam_state(span<const double> m, span<const double> v,
                                   std::uint64_t steps) {
        static const char where[] = "bsvi::buffer_weights::set_adam_state";
        detail::require(h_.get(), where);
        detail::expect_size(where, "m", m.size(), size(), "n");
        detail::expect_size(where, "v", v.size(), size(), "n");
        detail::check(bsvi_buffer_weights_set_adam_state(h_.get(), m.data(), v.data(), steps,
                                                         size()),
                      h_.get(), bsvi_buffer_weights_last_error,
                      "bsvi_buffer_weights_set_adam_state");
        return *this;
    }

    /**
     * @brief Add d/da of each data point's BSVI bound over @p t (bsvi_buffer_weights_accumulate()).
     * @param t Non-empty trajectory with k+1 = size(). @return *this.
     * @throws bsvi::error ::BSVI_ERR_BAD_STATE, ::BSVI_ERR_SIZE_MISMATCH, ::BSVI_ERR_NULL_ARGUMENT.
     */
    buffer_weights &accumulate(const trajectory &t) {
        detail::check(bsvi_buffer_weights_accumulate(h_.get(), t.get()), h_.get(),
                      bsvi_buffer_weights_last_error, "bsvi_buffer_weights_accumulate");
        return *this;
    }
    /**
     * @brief As accumulate(), from host terms (bsvi_buffer_weights_accumulate_terms()).
     * @param batch Data points. @param log_joint batch*n values. @param log_proposal batch*n values.
     * @return *this.
     * @throws bsvi::error ::BSVI_ERR_SIZE_MISMATCH (checked here), ::BSVI_ERR_ZERO_SIZE,
     *         ::BSVI_ERR_OUT_OF_RANGE, ::BSVI_ERR_BAD_VALUE, ::BSVI_ERR_NUMERIC.
     */
    buffer_weights &accumulate_terms(std::size_t batch, span<const double> log_joint,
                                     span<const double> log_proposal) {
        static const char where[] = "bsvi::buffer_weights::accumulate_terms";
        detail::require(h_.get(), where);
        const std::size_t want = detail::mul(batch, size());
        detail::expect_size(where, "log_joint", log_joint.size(), want, "batch*n");
        detail::expect_size(where, "log_proposal", log_proposal.size(), want, "batch*n");
        detail::check(bsvi_buffer_weights_accumulate_terms(h_.get(), batch, size(),
                                                           detail::or_null(log_joint),
                                                           detail::or_null(log_proposal)),
                      h_.get(), bsvi_buffer_weights_last_error,
                      "bsvi_buffer_weights_accumulate_terms");
        return *this;
    }
    /** @brief The accumulated gradient sum and count (bsvi_buffer_weights_get_gradient()). @return Both. @throws bsvi::error. */
    [[nodiscard]] weights_gradient gradient() const {
        detail::require(h_.get(), "bsvi::buffer_weights::gradient");
        weights_gradient g{std::vector<double>(size()), 0};
        detail::check(bsvi_buffer_weights_get_gradient(h_.get(), g.sum.data(), &g.count, size()),
                      h_.get(), bsvi_buffer_weights_last_error,
                      "bsvi_buffer_weights_get_gradient");
        return g;
    }
    /**
     * @brief Replace the accumulated gradient (bsvi_buffer_weights_set_gradient()).
     * @param sum n finite entries. @param count Data points summed. @return *this.
     * @throws bsvi::error ::BSVI_ERR_SIZE_MISMATCH, ::BSVI_ERR_BAD_VALUE, ::BSVI_ERR_NULL_ARGUMENT.
     */
    buffer_weights &set_gradient(span<const double> sum, std::uint64_t count) {
        detail::require(h_.get(), "bsvi::buffer_weights::set_gradient");
        detail::expect_size("bsvi::buffer_weights::set_gradient", "sum", sum.size(), size(), "n");
        detail::check(bsvi_buffer_weights_set_gradient(h_.get(), sum.data(), count, size()),
                      h_.get(), bsvi_buffer_weights_last_error,
                      "bsvi_buffer_weights_set_gradient");
        return *this;
    }
    /**
     * @brief One Adam step on sum/count, then clear both (bsvi_buffer_weights_step()).
     * @return *this. @throws bsvi::error ::BSVI_ERR_NUMERIC, ::BSVI_ERR_NULL_ARGUMENT.
     */
    buffer_weights &step() {
        detail::check(bsvi_buffer_weights_step(h_.get()), h_.get(),
                      bsvi_buffer_weights_last_error, "bsvi_buffer_weights_step");
        return *this;
    }

    /** @brief Message of the last error (bsvi_buffer_weights_last_error()). @return A C string owned by the handle. */
    const char *last_error() const noexcept { return bsvi_buffer_weights_last_error(h_.get()); }

private:
    std::unique_ptr<bsvi_buffer_weights, detail::weights_deleter> h_;
};

inline bsvi_health trajectory::health(const buffer_weights *pi) const {
    detail::require(h_.get(), "bsvi::trajectory::health");
    bsvi_health out{};
    detail::check(bsvi_trajectory_health(h_.get(), pi ? pi->get() : nullptr, &out), h_.get(),
                  bsvi_trajectory_last_error, "bsvi_trajectory_health");
    return out;
}

/* =========================================================================================
 * svi
 * ========================================================================================= */

/**
 * @brief Owner of a ::bsvi_svi: SVI-k refinement of a proposal (see svi.h).
 *
 * Setters return *this for chaining and throw bsvi::error with the C status
 * (::BSVI_ERR_BAD_VALUE, ::BSVI_ERR_OUT_OF_RANGE, ::BSVI_ERR_ZERO_SIZE,
 * ::BSVI_ERR_REENTRANT, ::BSVI_ERR_NULL_ARGUMENT for an empty owner). The progress callable
 * lives with the owner (on the heap). Move-only.
 */
class svi {
public:
    /**
     * @brief Create a refinement with bsvi_svi_options_default() and seed 0 (bsvi_svi_create()).
     * @param dim Latent dimension, 1..::BSVI_MAX_DIM.
     * @throws bsvi::error ::BSVI_ERR_ZERO_SIZE, ::BSVI_ERR_OUT_OF_RANGE, ::BSVI_ERR_NO_MEMORY.
     */
    explicit svi(std::size_t dim) : state_(std::make_unique<detail::progress_state>()) {
        bsvi_svi *raw = nullptr;
        detail::check_create(bsvi_svi_create(dim, &raw),
                             "bsvi_svi_create(dim = " + std::to_string(dim) + ")");
        h_.reset(raw);
        state_->dim = dim;
    }
    /** @brief Take over @p o's handle and progress callable. @param o Source (becomes empty). */
    svi(svi &&o) noexcept = default;
    /** @brief Destroy this handle and callable, then take over @p o's. @param o Source. @return *this. */
    svi &operator=(svi &&o) noexcept {
        if (this != &o) {
            h_.reset();
            state_ = std::move(o.state_);
            h_ = std::move(o.h_);
        }
        return *this;
    }
    /** @brief Destroys the handle (bsvi_svi_destroy()), then the progress callable. */
    ~svi() { h_.reset(); }
    svi(const svi &) = delete;
    svi &operator=(const svi &) = delete;

    /** @brief The raw handle, still owned by this object. @return The handle, or nullptr when empty. */
    bsvi_svi *get() const noexcept { return h_.get(); }
    /** @brief Whether this owner holds a handle. @return get() != nullptr. */
    explicit operator bool() const noexcept { return h_ != nullptr; }
    /** @brief Latent dimension given at creation. @return d (0 when empty). */
    std::size_t dim() const noexcept { return h_ ? state_->dim : 0; }

    /** @brief Number of steps k (bsvi_svi_set_steps()). @param k 0..::BSVI_MAX_STEPS. @return *this. @throws bsvi::error. */
    svi &set_steps(std::size_t k) { return check(bsvi_svi_set_steps(h_.get(), k), "bsvi_svi_set_steps"); }
    /** @brief Step size eta (bsvi_svi_set_step_size()). @param eta Finite, > 0. @return *this. @throws bsvi::error. */
    svi &set_step_size(double eta) { return check(bsvi_svi_set_step_size(h_.get(), eta), "bsvi_svi_set_step_size"); }
    /** @brief Samples per step m (bsvi_svi_set_samples_per_step()). @param m 1..::BSVI_MAX_SAMPLES. @return *this. @throws bsvi::error. */
    svi &set_samples_per_step(std::size_t m) {
        return check(bsvi_svi_set_samples_per_step(h_.get(), m), "bsvi_svi_set_samples_per_step");
    }
    /** @brief Step rule (bsvi_svi_set_step_rule()). @param rule A ::bsvi_step_rule. @return *this. @throws bsvi::error. */
    svi &set_step_rule(bsvi_step_rule rule) {
        return check(bsvi_svi_set_step_rule(h_.get(), rule), "bsvi_svi_set_step_rule");
    }
    /** @brief Momentum beta (bsvi_svi_set_momentum()). @param beta In [0, 1). @return *this. @throws bsvi::error. */
    svi &set_momentum(double beta) { return check(bsvi_svi_set_momentum(h_.get(), beta), "bsvi_svi_set_momentum"); }
    /**
     * @brief Adam's parameters (bsvi_svi_set_adam()).
     * @param beta1 In [0, 1). @param beta2 In [0, 1). @param epsilon Finite, > 0. @return *this. @throws bsvi::error.
     */
    svi &set_adam(double beta1, double beta2, double epsilon) {
        return check(bsvi_svi_set_adam(h_.get(), beta1, beta2, epsilon), "bsvi_svi_set_adam");
    }
    /** @brief Per-point direction clipping (bsvi_svi_set_clip_norm()). @param max_norm > 0, or 0 for none. @return *this. @throws bsvi::error. */
    svi &set_clip_norm(double max_norm) {
        return check(bsvi_svi_set_clip_norm(h_.get(), max_norm), "bsvi_svi_set_clip_norm");
    }
    /** @brief Gradient form (bsvi_svi_set_grad_form(); DREG is refused). @param form A ::bsvi_grad_form. @return *this. @throws bsvi::error. */
    svi &set_grad_form(bsvi_grad_form form) {
        return check(bsvi_svi_set_grad_form(h_.get(), form), "bsvi_svi_set_grad_form");
    }
    /** @brief Double sampling, BSVI-DS (bsvi_svi_set_double_sampling()). @param enabled On or off. @return *this. @throws bsvi::error. */
    svi &set_double_sampling(bool enabled) {
        return check(bsvi_svi_set_double_sampling(h_.get(), enabled ? 1 : 0),
                     "bsvi_svi_set_double_sampling");
    }
    /** @brief Divergence policy (bsvi_svi_set_divergence_policy()). @param policy A ::bsvi_divergence_policy. @return *this. @throws bsvi::error. */
    svi &set_divergence_policy(bsvi_divergence_policy policy) {
        return check(bsvi_svi_set_divergence_policy(h_.get(), policy),
                     "bsvi_svi_set_divergence_policy");
    }
    /** @brief Seed; resets the call counter (bsvi_svi_set_seed()). @param seed Any value. @return *this. @throws bsvi::error. */
    svi &set_seed(std::uint64_t seed) { return check(bsvi_svi_set_seed(h_.get(), seed), "bsvi_svi_set_seed"); }
    /**
     * @brief Call counter and data-point id offset (bsvi_svi_set_stream()).
     * @param counter Call counter. @param id_offset First data point's id. @return *this. @throws bsvi::error.
     */
    svi &set_stream(std::uint64_t counter, std::uint64_t id_offset) {
        return check(bsvi_svi_set_stream(h_.get(), counter, id_offset), "bsvi_svi_set_stream");
    }
    /**
     * @brief Every option at once, validated whole (bsvi_svi_set_options()).
     * @param options Start from default_svi_options() or options(). @return *this.
     * @throws bsvi::error (nothing changes; the message names the first bad field).
     */
    svi &set_options(const svi_options &options) {
        return check(bsvi_svi_set_options(h_.get(), &options), "bsvi_svi_set_options");
    }

    /**
     * @brief Register a progress callable, called after every SVI step (bsvi_svi_set_progress()).
     *
     * Called as `f(std::size_t done, std::size_t total)` with done/total in data-point slots
     * (batch*(k+1)); returns void (never cancels) or int (0 continue, non-zero cancel: run()
     * then throws bsvi::error(::BSVI_ERR_CANCELLED)); `bool` is refused at compile time. An
     * exception it throws stops the run and is rethrown by run(). Replaces (and destroys)
     * the previous callable; on error the previous one stays.
     * @param f The callable. @return *this.
     * @throws bsvi::error ::BSVI_ERR_NULL_ARGUMENT (empty owner or empty callable),
     *         ::BSVI_ERR_REENTRANT. @throws std::bad_alloc.
     */
    template <class F>
    svi &set_progress(F &&f) {
        static_assert(detail::progress_ok<F>(), "");
        using D = std::decay_t<F>;
        detail::require(h_.get(), "bsvi::svi::set_progress");
        if (detail::is_null_callable(f))
            detail::fail(BSVI_ERR_NULL_ARGUMENT, "bsvi::svi::set_progress: the callable is empty");
        std::unique_ptr<detail::progress_holder> holder =
            std::make_unique<detail::progress_impl<D>>(&state_->exceptions, std::forward<F>(f));
        check(bsvi_svi_set_progress(h_.get(), &detail::progress_holder::trampoline, holder.get()),
              "bsvi_svi_set_progress");
        state_->progress = std::move(holder);
        return *this;
    }
    /** @brief Remove the progress callable (bsvi_svi_set_progress() with NULL). @return *this. @throws bsvi::error ::BSVI_ERR_REENTRANT. */
    svi &clear_progress() {
        check(bsvi_svi_set_progress(h_.get(), nullptr, nullptr), "bsvi_svi_set_progress");
        state_->progress.reset();
        return *this;
    }

    /** @brief The current options (bsvi_svi_get_options()). @return A copy. @throws bsvi::error ::BSVI_ERR_NULL_ARGUMENT. */
    [[nodiscard]] svi_options options() const {
        svi_options o = default_svi_options();
        detail::check(bsvi_svi_get_options(h_.get(), &o), h_.get(), bsvi_svi_last_error,
                      "bsvi_svi_get_options");
        return o;
    }
    /** @brief Seed, call counter and id offset (bsvi_svi_get_stream()). @return The stream. @throws bsvi::error. */
    [[nodiscard]] stream_state stream() const {
        stream_state s;
        detail::check(bsvi_svi_get_stream(h_.get(), &s.seed, &s.counter, &s.id_offset), h_.get(),
                      bsvi_svi_last_error, "bsvi_svi_get_stream");
        return s;
    }
    /** @brief Counters (bsvi_svi_get_stats()). @return A copy. @throws bsvi::error. */
    [[nodiscard]] bsvi_stats stats() const {
        bsvi_stats s{};
        detail::check(bsvi_svi_get_stats(h_.get(), &s), h_.get(), bsvi_svi_last_error,
                      "bsvi_svi_get_stats");
        return s;
    }
    /** @brief Zero the counters (bsvi_svi_reset_stats()). @return *this. @throws bsvi::error. */
    svi &reset_stats() { return check(bsvi_svi_reset_stats(h_.get()), "bsvi_svi_reset_stats"); }
    /** @brief Steps k. @return k (0 when empty). */
    std::size_t steps() const noexcept { return bsvi_svi_steps(h_.get()); }
    /** @brief Step size eta. @return eta (NaN when empty). */
    double step_size() const noexcept { return bsvi_svi_step_size(h_.get()); }

    /**
     * @brief Run k refinement steps from @p q's parameters into @p out (bsvi_svi_run()).
     *
     * @p q is not modified; on success @p out holds the buffer, on error it keeps its
     * previous contents.
     * @param m Model of the same dimension with a likelihood. @param q Proposal holding lambda_0.
     * @param out Trajectory receiving the buffer.
     * @throws bsvi::error with the statuses of bsvi_svi_run() (::BSVI_ERR_SIZE_MISMATCH,
     *         ::BSVI_ERR_BAD_STATE, ::BSVI_ERR_CALLBACK_FAILED, ::BSVI_ERR_CALLBACK_NAN,
     *         ::BSVI_ERR_NUMERIC, ::BSVI_ERR_CANCELLED, ::BSVI_ERR_REENTRANT, ...).
     * @throws Whatever a callable of @p m or the progress callable threw during this call.
     */
    void run(const model &m, const proposal &q, trajectory &out) {
        bsvi_svi *h = h_.get();
        detail::call_with_callbacks(
            m.exceptions(), state_ ? &state_->exceptions : nullptr,
            [&] { return bsvi_svi_run(h, m.get(), q.get(), out.get()); },
            [&](bsvi_status s) { detail::check(s, h, bsvi_svi_last_error, "bsvi_svi_run"); });
    }

    /**
     * @brief Choose the step size by measurement (bsvi_svi_search_step_size()).
     *
     * @p batches is called as `f(std::size_t index, const bsvi::model *&m, const
     * bsvi::proposal *&q)` and sets @p m and @p q to batch @p index's model and proposal (see
     * ::bsvi_batch_fn: the same index must present the same data and lambda_0 every time).
     * An exception it throws, or one a callable of a presented model throws, stops the search
     * and is rethrown here with its type and message. This handle is not changed; apply the
     * choice with set_step_size(result.result.step_size) when result.result.best is not
     * ::BSVI_STEP_SEARCH_NONE.
     * @param batches The callable. @param num_batches Batches per trial, 1..2^32.
     * @param pi Buffer weights with k+1 slots for the BSVI-k gain, or nullptr for uniform.
     * @param options Search options, or nullptr for bsvi_step_search_options_default().
     * @return The trials and the choice.
     * @throws bsvi::error with the statuses of bsvi_svi_search_step_size().
     * @throws Whatever @p batches or a presented model's callable threw. @throws std::bad_alloc.
     */
    template <class F>
    [[nodiscard]] step_search search_step_size(F &&batches, std::size_t num_batches,
                                               const buffer_weights *pi = nullptr,
                                               const bsvi_step_search_options *options = nullptr) {
        detail::require(h_.get(), "bsvi::svi::search_step_size");
        struct ctx_t {
            std::remove_reference_t<F> *f;
            std::exception_ptr thrown;
            std::vector<const model *> seen;
        };
        ctx_t ctx{&batches, nullptr, {}};
        auto tramp = [](void *u, std::size_t index, const bsvi_model **m,
                        const bsvi_proposal **q) -> int {
            auto *c = static_cast<ctx_t *>(u);
            try {
                const model *mm = nullptr;
                const proposal *qq = nullptr;
                (*c->f)(index, mm, qq);
                if (mm && std::find(c->seen.begin(), c->seen.end(), mm) == c->seen.end()) {
                    if (mm->exceptions()) (void)mm->exceptions()->take(); /* stale ones */
                    c->seen.push_back(mm);
                }
                *m = mm ? mm->get() : nullptr;
                *q = qq ? qq->get() : nullptr;
                return 0;
            } catch (...) {
                c->thrown = std::current_exception();
                return detail::callable_threw;
            }
        };
        step_search out;
        out.trials.resize(BSVI_STEP_SEARCH_MAX_TRIALS);
        bsvi_svi *h = h_.get();
        const bsvi_status s = bsvi_svi_search_step_size(
            h, tramp, &ctx, num_batches, pi ? pi->get() : nullptr, options, out.trials.data(),
            out.trials.size(), &out.result);
        std::exception_ptr from_model;
        for (const model *mm : ctx.seen) {
            std::exception_ptr e = mm->exceptions() ? mm->exceptions()->take() : nullptr;
            if (e && !from_model) from_model = e;
        }
        if (s != BSVI_OK) {
            if (ctx.thrown) std::rethrow_exception(ctx.thrown);
            if (from_model) std::rethrow_exception(from_model);
            detail::check(s, h, bsvi_svi_last_error, "bsvi_svi_search_step_size");
        }
        out.trials.resize(out.result.num_trials);
        return out;
    }

    /** @brief Message of the last error (bsvi_svi_last_error()). @return A C string owned by the handle. */
    const char *last_error() const noexcept { return bsvi_svi_last_error(h_.get()); }

private:
    svi &check(bsvi_status s, const char *where) {
        detail::check(s, h_.get(), bsvi_svi_last_error, where);
        return *this;
    }

    std::unique_ptr<detail::progress_state> state_;
    std::unique_ptr<bsvi_svi, detail::svi_deleter> h_;
};

/* =========================================================================================
 * estimator
 * ========================================================================================= */

/**
 * @brief Owner of a ::bsvi_estimator: bound estimators and their gradient targets (see estimator.h).
 *
 * A compute (elbo(), iwae(), svi(), bsvi(), bsvi_sir(), giwae()) replaces the handle's
 * result and returns *this, so that `est.iwae(m, q, 5).bounds()` reads it. On error the
 * previous result is kept. Result getters throw bsvi::error(::BSVI_ERR_BAD_STATE) before
 * any successful compute. Move-only.
 */
class estimator {
public:
    /**
     * @brief Create an estimator (seed 0, ::BSVI_POINTS_REPORT) (bsvi_estimator_create()).
     * @param dim Latent dimension, 1..::BSVI_MAX_DIM.
     * @throws bsvi::error ::BSVI_ERR_ZERO_SIZE, ::BSVI_ERR_OUT_OF_RANGE, ::BSVI_ERR_NO_MEMORY.
     */
    explicit estimator(std::size_t dim) {
        bsvi_estimator *raw = nullptr;
        detail::check_create(bsvi_estimator_create(dim, &raw),
                             "bsvi_estimator_create(dim = " + std::to_string(dim) + ")");
        h_.reset(raw);
    }

    /** @brief The raw handle, still owned by this object. @return The handle, or nullptr when empty. */
    bsvi_estimator *get() const noexcept { return h_.get(); }
    /** @brief Whether this owner holds a handle. @return get() != nullptr. */
    explicit operator bool() const noexcept { return h_ != nullptr; }
    /** @brief Latent dimension. @return d (0 when empty). */
    std::size_t dim() const noexcept { return bsvi_estimator_dim(h_.get()); }

    /** @brief Seed; resets the call counter (bsvi_estimator_set_seed()). @param seed Any value. @return *this. @throws bsvi::error. */
    estimator &set_seed(std::uint64_t seed) {
        return check(bsvi_estimator_set_seed(h_.get(), seed), "bsvi_estimator_set_seed");
    }
    /**
     * @brief Call counter and id offset (bsvi_estimator_set_stream()).
     * @param counter Call counter. @param id_offset First data point's id. @return *this. @throws bsvi::error.
     */
    estimator &set_stream(std::uint64_t counter, std::uint64_t id_offset) {
        return check(bsvi_estimator_set_stream(h_.get(), counter, id_offset),
                     "bsvi_estimator_set_stream");
    }
    /** @brief Seed, call counter and id offset (bsvi_estimator_get_stream()). @return The stream. @throws bsvi::error. */
    [[nodiscard]] stream_state stream() const {
        stream_state s;
        detail::check(bsvi_estimator_get_stream(h_.get(), &s.seed, &s.counter, &s.id_offset),
                      h_.get(), bsvi_estimator_last_error, "bsvi_estimator_get_stream");
        return s;
    }
    /** @brief Zero-density policy (bsvi_estimator_set_point_policy()). @param policy A ::bsvi_point_policy. @return *this. @throws bsvi::error. */
    estimator &set_point_policy(bsvi_point_policy policy) {
        return check(bsvi_estimator_set_point_policy(h_.get(), policy),
                     "bsvi_estimator_set_point_policy");
    }

    /**
     * @brief Single-sample ELBO of @p q's batch (bsvi_estimator_elbo()).
     * @param m Model. @param q Proposal (read only).
     * @param form ::BSVI_GRAD_PATHWISE, ::BSVI_GRAD_STL or ::BSVI_GRAD_ANALYTIC_KL.
     * @return *this.
     * @throws bsvi::error with the statuses of bsvi_estimator_elbo().
     * @throws Whatever a callable of @p m threw during this call.
     */
    estimator &elbo(const model &m, const proposal &q, bsvi_grad_form form = BSVI_GRAD_PATHWISE) {
        bsvi_estimator *h = h_.get();
        detail::call_with_callbacks(
            m.exceptions(), nullptr, [&] { return bsvi_estimator_elbo(h, m.get(), q.get(), form); },
            [&](bsvi_status s) { detail::check(s, h, bsvi_estimator_last_error, "bsvi_estimator_elbo"); });
        return *this;
    }

    /**
     * @brief IWAE bound with @p K samples per data point (bsvi_estimator_iwae()).
     * @param m Model. @param q Proposal (read only). @param K 1..::BSVI_MAX_SAMPLES.
     * @param form ::BSVI_GRAD_PATHWISE or ::BSVI_GRAD_DREG.
     * @return *this.
     * @throws bsvi::error with the statuses of bsvi_estimator_iwae().
     * @throws Whatever a callable of @p m threw during this call.
     */
    estimator &iwae(const model &m, const proposal &q, std::size_t K,
                    bsvi_grad_form form = BSVI_GRAD_PATHWISE) {
        bsvi_estimator *h = h_.get();
        detail::call_with_callbacks(
            m.exceptions(), nullptr,
            [&] { return bsvi_estimator_iwae(h, m.get(), q.get(), K, form); },
            [&](bsvi_status s) { detail::check(s, h, bsvi_estimator_last_error, "bsvi_estimator_iwae"); });
        return *this;
    }

    /**
     * @brief SVI-k bound of the trajectory's last slot (bsvi_estimator_svi()).
     * @param traj Non-empty trajectory. @return *this. @throws bsvi::error.
     */
    estimator &svi(const trajectory &traj) {
        return check(bsvi_estimator_svi(h_.get(), traj.get()), "bsvi_estimator_svi");
    }
    /**
     * @brief BSVI (BSVI-DS over a double-sampled trajectory) (bsvi_estimator_bsvi()).
     * @param traj Non-empty trajectory. @param pi Weights with k+1 slots, or nullptr for uniform.
     * @return *this. @throws bsvi::error.
     */
    estimator &bsvi(const trajectory &traj, const buffer_weights *pi = nullptr) {
        return check(bsvi_estimator_bsvi(h_.get(), traj.get(), pi ? pi->get() : nullptr),
                     "bsvi_estimator_bsvi");
    }
    /**
     * @brief BSVI-SIR with @p M resampled targets (bsvi_estimator_bsvi_sir()).
     * @param traj Non-empty trajectory. @param pi Weights, or nullptr for uniform.
     * @param M Targets per data point. @return *this. @throws bsvi::error.
     */
    estimator &bsvi_sir(const trajectory &traj, const buffer_weights *pi, std::size_t M) {
        return check(bsvi_estimator_bsvi_sir(h_.get(), traj.get(), pi ? pi->get() : nullptr, M),
                     "bsvi_estimator_bsvi_sir");
    }
    /**
     * @brief Generalised IWAE from host terms (bsvi_estimator_giwae()).
     * @param batch Data points B. @param n Terms per data point.
     * @param log_joint B*n values. @param log_proposal B*n values.
     * @param pi Weights with @p n slots, or nullptr for uniform.
     * @return *this.
     * @throws bsvi::error ::BSVI_ERR_SIZE_MISMATCH (checked here) and the statuses of
     *         bsvi_estimator_giwae().
     */
    estimator &giwae(std::size_t batch, std::size_t n, span<const double> log_joint,
                     span<const double> log_proposal, const buffer_weights *pi = nullptr) {
        static const char where[] = "bsvi::estimator::giwae";
        detail::require(h_.get(), where);
        const std::size_t want = detail::mul(batch, n);
        detail::expect_size(where, "log_joint", log_joint.size(), want, "batch*n");
        detail::expect_size(where, "log_proposal", log_proposal.size(), want, "batch*n");
        return check(bsvi_estimator_giwae(h_.get(), batch, n, detail::or_null(log_joint),
                                          detail::or_null(log_proposal),
                                          pi ? pi->get() : nullptr),
                     "bsvi_estimator_giwae");
    }

    /** @brief Which bound the last result is (bsvi_estimator_result_kind()). @return The kind. @throws bsvi::error ::BSVI_ERR_BAD_STATE (no result). */
    [[nodiscard]] bsvi_bound result_kind() const {
        bsvi_bound k = BSVI_BOUND_ELBO;
        detail::check(bsvi_estimator_result_kind(h_.get(), &k), h_.get(),
                      bsvi_estimator_last_error, "bsvi_estimator_result_kind");
        return k;
    }
    /** @brief Data points of the last result. @return B (0 before any compute). */
    std::size_t batch() const noexcept { return bsvi_estimator_batch(h_.get()); }
    /** @brief Data points of the last result with bound -INFINITY. @return The count. */
    std::size_t num_zero_points() const noexcept { return bsvi_estimator_num_zero_points(h_.get()); }
    /** @brief Decoder targets of the last result. @return B*T (0 before any compute). */
    std::size_t num_targets() const noexcept { return bsvi_estimator_num_targets(h_.get()); }

    /** @brief Copy out the bounds. @param out Output, batch() entries. @throws bsvi::error ::BSVI_ERR_BAD_STATE, ::BSVI_ERR_SIZE_MISMATCH. */
    void bounds(span<double> out) const {
        static const char where[] = "bsvi::estimator::bounds";
        need_result(where);
        detail::expect_size(where, "out", out.size(), batch(), "batch()");
        detail::check(bsvi_estimator_get_bounds(h_.get(), out.data(), out.size()), h_.get(),
                      bsvi_estimator_last_error, "bsvi_estimator_get_bounds");
    }
    /** @brief Per-data-point bounds of the last result. @return batch() values. @throws bsvi::error. */
    [[nodiscard]] std::vector<double> bounds() const {
        std::vector<double> v(batch());
        bounds(v);
        return v;
    }

    /**
     * @brief Copy out the decoder targets (bsvi_estimator_get_targets()); n = num_targets().
     * @param data_index Output n, or empty to skip. @param slot Output n, or empty.
     * @param z Output n*dim, or empty (must be empty for GIWAE). @param coef Output n, or empty.
     * @throws bsvi::error ::BSVI_ERR_BAD_STATE, ::BSVI_ERR_SIZE_MISMATCH.
     */
    void targets(span<std::size_t> data_index, span<std::size_t> slot, span<double> z,
                 span<double> coef) const {
        static const char where[] = "bsvi::estimator::targets";
        need_result(where);
        const std::size_t n = num_targets();
        detail::expect_size_or_empty(where, "data_index", data_index.size(), n, "num_targets()");
        detail::expect_size_or_empty(where, "slot", slot.size(), n, "num_targets()");
        detail::expect_size_or_empty(where, "z", z.size(), n * dim(), "num_targets()*dim");
        detail::expect_size_or_empty(where, "coef", coef.size(), n, "num_targets()");
        detail::check(bsvi_estimator_get_targets(h_.get(), n, detail::or_null(data_index),
                                                 detail::or_null(slot), detail::or_null(z),
                                                 detail::or_null(coef)),
                      h_.get(), bsvi_estimator_last_error, "bsvi_estimator_get_targets");
    }
    /**
     * @brief Every target of the last result, with its log w (z empty for GIWAE results).
     * @return The targets. @throws bsvi::error ::BSVI_ERR_BAD_STATE.
     */
    [[nodiscard]] estimator_targets targets() const {
        need_result("bsvi::estimator::targets");
        const std::size_t n = num_targets();
        const bool has_z = result_kind() != BSVI_BOUND_GIWAE;
        estimator_targets t;
        t.data_index.resize(n);
        t.slot.resize(n);
        t.z.resize(has_z ? n * dim() : 0);
        t.coef.resize(n);
        targets(t.data_index, t.slot, t.z, t.coef);
        t.log_w = target_log_weights();
        return t;
    }
    /** @brief Each target's log w (bsvi_estimator_get_target_log_weights()). @return num_targets() values. @throws bsvi::error. */
    [[nodiscard]] std::vector<double> target_log_weights() const {
        need_result("bsvi::estimator::target_log_weights");
        std::vector<double> v(num_targets());
        detail::check(bsvi_estimator_get_target_log_weights(h_.get(), v.size(), v.data()),
                      h_.get(), bsvi_estimator_last_error,
                      "bsvi_estimator_get_target_log_weights");
        return v;
    }
    /** @brief Each target's noise eps, ELBO/IWAE results only (bsvi_estimator_get_noise()). @return num_targets()*dim values. @throws bsvi::error ::BSVI_ERR_BAD_STATE. */
    [[nodiscard]] std::vector<double> noise() const {
        need_result("bsvi::estimator::noise");
        std::vector<double> v(num_targets() * dim());
        detail::check(bsvi_estimator_get_noise(h_.get(), num_targets(), v.data()), h_.get(),
                      bsvi_estimator_last_error, "bsvi_estimator_get_noise");
        return v;
    }
    /**
     * @brief Copy out the encoder gradient (bsvi_estimator_get_encoder_grad()).
     * @param d_mean Output batch()*dim, or empty to skip. @param d_log_std Output, or empty.
     * @throws bsvi::error ::BSVI_ERR_BAD_STATE (no result, or GIWAE), ::BSVI_ERR_SIZE_MISMATCH.
     */
    void encoder_grad(span<double> d_mean, span<double> d_log_std) const {
        static const char where[] = "bsvi::estimator::encoder_grad";
        need_result(where);
        const std::size_t n = batch() * dim();
        detail::expect_size_or_empty(where, "d_mean", d_mean.size(), n, "batch()*dim");
        detail::expect_size_or_empty(where, "d_log_std", d_log_std.size(), n, "batch()*dim");
        detail::check(bsvi_estimator_get_encoder_grad(h_.get(), batch(), detail::or_null(d_mean),
                                                      detail::or_null(d_log_std)),
                      h_.get(), bsvi_estimator_last_error, "bsvi_estimator_get_encoder_grad");
    }
    /** @brief The encoder gradient of the last result. @return batch()*dim each. @throws bsvi::error. */
    [[nodiscard]] encoder_gradient encoder_grad() const {
        const std::size_t n = batch() * dim();
        encoder_gradient g{std::vector<double>(n), std::vector<double>(n)};
        encoder_grad(g.d_mean, g.d_log_std);
        return g;
    }

    /** @brief Counters (bsvi_estimator_get_stats()). @return A copy. @throws bsvi::error. */
    [[nodiscard]] bsvi_stats stats() const {
        bsvi_stats s{};
        detail::check(bsvi_estimator_get_stats(h_.get(), &s), h_.get(), bsvi_estimator_last_error,
                      "bsvi_estimator_get_stats");
        return s;
    }
    /** @brief Zero the counters (bsvi_estimator_reset_stats()). @return *this. @throws bsvi::error. */
    estimator &reset_stats() {
        return check(bsvi_estimator_reset_stats(h_.get()), "bsvi_estimator_reset_stats");
    }

    /** @brief Message of the last error (bsvi_estimator_last_error()). @return A C string owned by the handle. */
    const char *last_error() const noexcept { return bsvi_estimator_last_error(h_.get()); }

private:
    estimator &check(bsvi_status s, const char *where) {
        detail::check(s, h_.get(), bsvi_estimator_last_error, where);
        return *this;
    }
    void need_result(const char *where) const {
        detail::require(h_.get(), where);
        if (batch() == 0)
            detail::fail(BSVI_ERR_BAD_STATE,
                         std::string(where) + ": no result yet (no successful compute)");
    }

    std::unique_ptr<bsvi_estimator, detail::estimator_deleter> h_;
};

/* =========================================================================================
 * evaluator
 * ========================================================================================= */

/**
 * @brief Owner of a ::bsvi_evaluator: IWAE-S, BSVI-K and ELBO* estimates (see evaluate.h).
 *
 * Output arrays have one entry per data point of the proposal passed. The progress
 * callable lives with the owner (on the heap). Move-only.
 */
class evaluator {
public:
    /**
     * @brief Create an evaluator (bsvi_evaluator_create()).
     * @param dim Latent dimension, 1..::BSVI_MAX_DIM.
     * @throws bsvi::error ::BSVI_ERR_ZERO_SIZE, ::BSVI_ERR_OUT_OF_RANGE, ::BSVI_ERR_NO_MEMORY.
     */
    explicit evaluator(std::size_t dim) : state_(std::make_unique<detail::progress_state>()) {
        bsvi_evaluator *raw = nullptr;
        detail::check_create(bsvi_evaluator_create(dim, &raw),
                             "bsvi_evaluator_create(dim = " + std::to_string(dim) + ")");
        h_.reset(raw);
        state_->dim = dim;
    }
    /** @brief Take over @p o's handle and progress callable. @param o Source (becomes empty). */
    evaluator(evaluator &&o) noexcept = default;
    /** @brief Destroy this handle and callable, then take over @p o's. @param o Source. @return *this. */
    evaluator &operator=(evaluator &&o) noexcept {
        if (this != &o) {
            h_.reset();
            state_ = std::move(o.state_);
            h_ = std::move(o.h_);
        }
        return *this;
    }
    /** @brief Destroys the handle (bsvi_evaluator_destroy()), then the progress callable. */
    ~evaluator() { h_.reset(); }
    evaluator(const evaluator &) = delete;
    evaluator &operator=(const evaluator &) = delete;

    /** @brief The raw handle, still owned by this object. @return The handle, or nullptr when empty. */
    bsvi_evaluator *get() const noexcept { return h_.get(); }
    /** @brief Whether this owner holds a handle. @return get() != nullptr. */
    explicit operator bool() const noexcept { return h_ != nullptr; }
    /** @brief Latent dimension given at creation. @return d (0 when empty). */
    std::size_t dim() const noexcept { return h_ ? state_->dim : 0; }

    /** @brief Seed; resets the call counter (bsvi_evaluator_set_seed()). @param seed Any value. @return *this. @throws bsvi::error. */
    evaluator &set_seed(std::uint64_t seed) {
        return check(bsvi_evaluator_set_seed(h_.get(), seed), "bsvi_evaluator_set_seed");
    }
    /**
     * @brief Call counter and id offset (bsvi_evaluator_set_stream()).
     * @param counter Call counter. @param id_offset First data point's id. @return *this. @throws bsvi::error.
     */
    evaluator &set_stream(std::uint64_t counter, std::uint64_t id_offset) {
        return check(bsvi_evaluator_set_stream(h_.get(), counter, id_offset),
                     "bsvi_evaluator_set_stream");
    }
    /** @brief Seed, call counter and id offset (bsvi_evaluator_get_stream()). @return The stream. @throws bsvi::error. */
    [[nodiscard]] stream_state stream() const {
        stream_state s;
        detail::check(bsvi_evaluator_get_stream(h_.get(), &s.seed, &s.counter, &s.id_offset),
                      h_.get(), bsvi_evaluator_last_error, "bsvi_evaluator_get_stream");
        return s;
    }
    /** @brief Largest latent rows per callback call (bsvi_evaluator_set_chunk_rows()). @param rows At least 1. @return *this. @throws bsvi::error. */
    evaluator &set_chunk_rows(std::size_t rows) {
        return check(bsvi_evaluator_set_chunk_rows(h_.get(), rows), "bsvi_evaluator_set_chunk_rows");
    }
    /** @brief Refinement options of BSVI-K (steps ignored) (bsvi_evaluator_set_svi_options()). @param options Options. @return *this. @throws bsvi::error. */
    evaluator &set_svi_options(const bsvi_svi_options &options) {
        return check(bsvi_evaluator_set_svi_options(h_.get(), &options),
                     "bsvi_evaluator_set_svi_options");
    }
    /** @brief Refinement options of BSVI-K (bsvi_evaluator_get_svi_options()). @return A copy. @throws bsvi::error. */
    [[nodiscard]] bsvi_svi_options svi_options() const {
        bsvi_svi_options o = bsvi_svi_options_default();
        detail::check(bsvi_evaluator_get_svi_options(h_.get(), &o), h_.get(),
                      bsvi_evaluator_last_error, "bsvi_evaluator_get_svi_options");
        return o;
    }
    /** @brief Zero-density policy (bsvi_evaluator_set_point_policy()). @param policy A ::bsvi_point_policy. @return *this. @throws bsvi::error. */
    evaluator &set_point_policy(bsvi_point_policy policy) {
        return check(bsvi_evaluator_set_point_policy(h_.get(), policy),
                     "bsvi_evaluator_set_point_policy");
    }

    /**
     * @brief Register a progress callable (bsvi_evaluator_set_progress()).
     *
     * Called after every callback chunk (IWAE-S, ELBO*: done/total in latent rows) or SVI
     * step (BSVI-K: data-point slots), as `f(std::size_t done, std::size_t total)`, returning
     * void or int (0 continue, non-zero cancel: the estimate then throws
     * bsvi::error(::BSVI_ERR_CANCELLED)); `bool` is refused at compile time. An exception it
     * throws is rethrown by the estimate. Replaces (and destroys) the previous callable.
     * @param f The callable. @return *this.
     * @throws bsvi::error ::BSVI_ERR_NULL_ARGUMENT, ::BSVI_ERR_REENTRANT. @throws std::bad_alloc.
     */
    template <class F>
    evaluator &set_progress(F &&f) {
        static_assert(detail::progress_ok<F>(), "");
        using D = std::decay_t<F>;
        detail::require(h_.get(), "bsvi::evaluator::set_progress");
        if (detail::is_null_callable(f))
            detail::fail(BSVI_ERR_NULL_ARGUMENT,
                         "bsvi::evaluator::set_progress: the callable is empty");
        std::unique_ptr<detail::progress_holder> holder =
            std::make_unique<detail::progress_impl<D>>(&state_->exceptions, std::forward<F>(f));
        check(bsvi_evaluator_set_progress(h_.get(), &detail::progress_holder::trampoline,
                                          holder.get()),
              "bsvi_evaluator_set_progress");
        state_->progress = std::move(holder);
        return *this;
    }
    /** @brief Remove the progress callable. @return *this. @throws bsvi::error ::BSVI_ERR_REENTRANT. */
    evaluator &clear_progress() {
        check(bsvi_evaluator_set_progress(h_.get(), nullptr, nullptr), "bsvi_evaluator_set_progress");
        state_->progress.reset();
        return *this;
    }

    /**
     * @brief IWAE-S estimate of log p(x_b) per data point (bsvi_evaluator_iwae()).
     * @param m Model. @param q Proposal (lambda_0). @param S Samples, 1..2^32.
     * @param out Output, q.batch() entries (unchanged on error).
     * @throws bsvi::error ::BSVI_ERR_SIZE_MISMATCH (checked here) and the statuses of
     *         bsvi_evaluator_iwae() (::BSVI_ERR_CANCELLED, ::BSVI_ERR_CALLBACK_FAILED, ...).
     * @throws Whatever a callable of @p m or the progress callable threw during this call.
     */
    void iwae(const model &m, const proposal &q, std::size_t S, span<double> out) {
        detail::expect_size("bsvi::evaluator::iwae", "out", out.size(), q.batch(), "q.batch()");
        bsvi_evaluator *h = h_.get();
        run_with(m, [&] { return bsvi_evaluator_iwae(h, m.get(), q.get(), S, detail::or_null(out)); },
                 "bsvi_evaluator_iwae");
    }
    /** @brief IWAE-S estimate. @param m Model. @param q Proposal. @param S Samples. @return q.batch() values. @throws As the other overload. */
    [[nodiscard]] std::vector<double> iwae(const model &m, const proposal &q, std::size_t S) {
        std::vector<double> out(q.batch());
        iwae(m, q, S, out);
        return out;
    }

    /**
     * @brief BSVI-K estimate per data point: K-1 SVI steps, uniform pi (bsvi_evaluator_bsvi()).
     * @param m Model. @param q Proposal holding lambda_0 (unchanged). @param K 1..::BSVI_MAX_STEPS+1.
     * @param out Output, q.batch() entries.
     * @param final_q Receives lambda_{K-1} (same batch and dim as @p q), or nullptr.
     * @throws bsvi::error ::BSVI_ERR_SIZE_MISMATCH (checked here; also final_q's shape) and
     *         the statuses of bsvi_evaluator_bsvi().
     * @throws Whatever a callable of @p m or the progress callable threw during this call.
     */
    void bsvi(const model &m, const proposal &q, std::size_t K, span<double> out,
              proposal *final_q = nullptr) {
        detail::expect_size("bsvi::evaluator::bsvi", "out", out.size(), q.batch(), "q.batch()");
        bsvi_evaluator *h = h_.get();
        detail::progress_state *st = state_.get();
        const std::size_t batch = q.batch();
        run_with(m,
                 [&] {
                     return bsvi_evaluator_bsvi(h, m.get(), q.get(), K, detail::or_null(out),
                                                final_q ? final_q->get() : nullptr);
                 },
                 "bsvi_evaluator_bsvi");
        if (st) st->last_bsvi_batch = batch;
    }
    /**
     * @brief BSVI-K estimate. @param m Model. @param q Proposal. @param K Weights.
     * @param final_q Receives lambda_{K-1}, or nullptr. @return q.batch() values. @throws As the other overload.
     */
    [[nodiscard]] std::vector<double> bsvi(const model &m, const proposal &q, std::size_t K,
                                           proposal *final_q = nullptr) {
        std::vector<double> out(q.batch());
        bsvi(m, q, K, out, final_q);
        return out;
    }

    /**
     * @brief SVI steps each data point took in the last successful bsvi() (bsvi_evaluator_get_steps_taken()).
     * @param out Output, that call's batch entries.
     * @throws bsvi::error ::BSVI_ERR_SIZE_MISMATCH, ::BSVI_ERR_BAD_STATE (no BSVI-K estimate yet).
     */
    void steps_taken(span<std::size_t> out) const {
        detail::check(bsvi_evaluator_get_steps_taken(h_.get(), detail::or_null(out), out.size()),
                      h_.get(), bsvi_evaluator_last_error, "bsvi_evaluator_get_steps_taken");
    }
    /**
     * @brief SVI steps each data point took in the last successful bsvi() made through this owner.
     * @return That call's batch entries.
     * @throws bsvi::error ::BSVI_ERR_BAD_STATE (no BSVI-K estimate yet).
     */
    [[nodiscard]] std::vector<std::size_t> steps_taken() const {
        detail::require(h_.get(), "bsvi::evaluator::steps_taken");
        if (state_->last_bsvi_batch == 0)
            detail::fail(BSVI_ERR_BAD_STATE, "bsvi::evaluator::steps_taken: no BSVI-K estimate yet");
        std::vector<std::size_t> v(state_->last_bsvi_batch);
        steps_taken(v);
        return v;
    }
    /**
     * @brief Turn on or off the ESS and k-hat of every later iwae() (bsvi_evaluator_set_diagnostics()).
     * @param enabled On. @return *this. @throws bsvi::error ::BSVI_ERR_REENTRANT.
     */
    evaluator &set_diagnostics(bool enabled) {
        return check(bsvi_evaluator_set_diagnostics(h_.get(), enabled ? 1 : 0),
                     "bsvi_evaluator_set_diagnostics");
    }
    /**
     * @brief ESS and PSIS k-hat of the S weights of each data point of the last successful
     *        iwae() with diagnostics on (bsvi_evaluator_get_diagnostics()).
     * @param batch That call's batch. @return ess and khat, @p batch entries each.
     * @throws bsvi::error ::BSVI_ERR_BAD_STATE (no such estimate), ::BSVI_ERR_SIZE_MISMATCH.
     */
    [[nodiscard]] weight_diagnostics diagnostics(std::size_t batch) const {
        weight_diagnostics d;
        d.ess.resize(batch);
        d.khat.resize(batch);
        detail::check(bsvi_evaluator_get_diagnostics(h_.get(), batch, d.ess.data(), d.khat.data()),
                      h_.get(), bsvi_evaluator_last_error, "bsvi_evaluator_get_diagnostics");
        return d;
    }
    /** @brief Data points frozen in the last BSVI-K estimate. @return The count. */
    std::size_t num_frozen() const noexcept { return bsvi_evaluator_num_frozen(h_.get()); }
    /** @brief Data points with estimate -INFINITY in the last estimate. @return The count. */
    std::size_t num_zero_points() const noexcept { return bsvi_evaluator_num_zero_points(h_.get()); }

    /**
     * @brief ELBO*, KL* and Reconstruction* of @p q_final (bsvi_evaluator_elbo_star()).
     * @param m Model. @param q_final Proposal to assess. @param S Samples, 1..2^32.
     * @param elbo Output q_final.batch() entries, or empty to skip.
     * @param kl Output, or empty. @param reconstruction Output, or empty.
     * @throws bsvi::error ::BSVI_ERR_SIZE_MISMATCH (checked here) and the statuses of
     *         bsvi_evaluator_elbo_star().
     * @throws Whatever a callable of @p m or the progress callable threw during this call.
     */
    void elbo_star(const model &m, const proposal &q_final, std::size_t S, span<double> elbo,
                   span<double> kl, span<double> reconstruction) {
        static const char where[] = "bsvi::evaluator::elbo_star";
        const std::size_t b = q_final.batch();
        detail::expect_size_or_empty(where, "elbo", elbo.size(), b, "q_final.batch()");
        detail::expect_size_or_empty(where, "kl", kl.size(), b, "q_final.batch()");
        detail::expect_size_or_empty(where, "reconstruction", reconstruction.size(), b,
                                     "q_final.batch()");
        bsvi_evaluator *h = h_.get();
        run_with(m,
                 [&] {
                     return bsvi_evaluator_elbo_star(h, m.get(), q_final.get(), S,
                                                     detail::or_null(elbo), detail::or_null(kl),
                                                     detail::or_null(reconstruction));
                 },
                 "bsvi_evaluator_elbo_star");
    }
    /**
     * @brief ELBO*, KL* and Reconstruction*. @param m Model. @param q_final Proposal. @param S Samples.
     * @return The three arrays, q_final.batch() entries each. @throws As the other overload.
     */
    [[nodiscard]] elbo_star_result elbo_star(const model &m, const proposal &q_final,
                                             std::size_t S) {
        const std::size_t b = q_final.batch();
        elbo_star_result r{std::vector<double>(b), std::vector<double>(b), std::vector<double>(b)};
        elbo_star(m, q_final, S, r.elbo, r.kl, r.reconstruction);
        return r;
    }

    /** @brief Counters (bsvi_evaluator_get_stats()). @return A copy. @throws bsvi::error. */
    [[nodiscard]] bsvi_stats stats() const {
        bsvi_stats s{};
        detail::check(bsvi_evaluator_get_stats(h_.get(), &s), h_.get(), bsvi_evaluator_last_error,
                      "bsvi_evaluator_get_stats");
        return s;
    }
    /** @brief Zero the counters (bsvi_evaluator_reset_stats()). @return *this. @throws bsvi::error. */
    evaluator &reset_stats() {
        return check(bsvi_evaluator_reset_stats(h_.get()), "bsvi_evaluator_reset_stats");
    }

    /** @brief Message of the last error (bsvi_evaluator_last_error()). @return A C string owned by the handle. */
    const char *last_error() const noexcept { return bsvi_evaluator_last_error(h_.get()); }

private:
    evaluator &check(bsvi_status s, const char *where) {
        detail::check(s, h_.get(), bsvi_evaluator_last_error, where);
        return *this;
    }
    template <class Call>
    void run_with(const model &m, Call &&call, const char *cfn) {
        bsvi_evaluator *h = h_.get();
        detail::call_with_callbacks(
            m.exceptions(), state_ ? &state_->exceptions : nullptr, std::forward<Call>(call),
            [&](bsvi_status s) { detail::check(s, h, bsvi_evaluator_last_error, cfn); });
    }

    std::unique_ptr<detail::progress_state> state_;
    std::unique_ptr<bsvi_evaluator, detail::evaluator_deleter> h_;
};

/* =========================================================================================
 * diagnostics
 * ========================================================================================= */

/**
 * @brief Owner of a ::bsvi_diagnostics: ESS and PSIS k-hat of importance weights (see diagnostics.h).
 *
 * Each computation writes one ESS and one k-hat per data point (k-hat is +INFINITY when not
 * estimable, e.g. fewer than 21 weights; NaN and ESS 0 for a data point whose weights are
 * all zero). Calls no host code. Move-only.
 */
class diagnostics {
public:
    /**
     * @brief Create a handle for up to @p capacity weights per data point (bsvi_diagnostics_create()).
     * @param capacity 1..2^32.
     * @throws bsvi::error ::BSVI_ERR_ZERO_SIZE, ::BSVI_ERR_OUT_OF_RANGE, ::BSVI_ERR_NO_MEMORY.
     */
    explicit diagnostics(std::size_t capacity) {
        bsvi_diagnostics *raw = nullptr;
        detail::check_create(bsvi_diagnostics_create(capacity, &raw),
                             "bsvi_diagnostics_create(capacity = " + std::to_string(capacity) +
                                 ")");
        h_.reset(raw);
    }

    /** @brief The raw handle, still owned by this object. @return The handle, or nullptr when empty. */
    bsvi_diagnostics *get() const noexcept { return h_.get(); }
    /** @brief Whether this owner holds a handle. @return get() != nullptr. */
    explicit operator bool() const noexcept { return h_ != nullptr; }
    /** @brief Largest number of weights per data point. @return The capacity (0 when empty). */
    std::size_t capacity() const noexcept { return bsvi_diagnostics_capacity(h_.get()); }
    /**
     * @brief Tail length M of k-hat for @p n weights (bsvi_diagnostics_tail_length()).
     * @param n Weights per data point. @return ceil(min(0.2 n, 3 sqrt(n))).
     */
    static std::size_t tail_length(std::size_t n) noexcept { return bsvi_diagnostics_tail_length(n); }

    /**
     * @brief ESS and k-hat of each data point of a batch of log weights (bsvi_diagnostics_compute()).
     * @param batch Data points B. @param n Weights per data point (at most capacity()).
     * @param log_w B*n log weights, data point major (-INFINITY legal).
     * @param ess Output B values, or empty to skip. @param khat Output B values, or empty to skip.
     * @throws bsvi::error ::BSVI_ERR_SIZE_MISMATCH (checked here; n above the capacity),
     *         ::BSVI_ERR_ZERO_SIZE, ::BSVI_ERR_OUT_OF_RANGE, ::BSVI_ERR_BAD_VALUE (NaN or +INFINITY).
     */
    void compute(std::size_t batch, std::size_t n, span<const double> log_w, span<double> ess,
                 span<double> khat) {
        static const char where[] = "bsvi::diagnostics::compute";
        detail::require(h_.get(), where);
        detail::expect_size(where, "log_w", log_w.size(), detail::mul(batch, n), "batch*n");
        detail::expect_size_or_empty(where, "ess", ess.size(), batch, "batch");
        detail::expect_size_or_empty(where, "khat", khat.size(), batch, "batch");
        check(bsvi_diagnostics_compute(h_.get(), batch, n, detail::or_null(log_w),
                                       detail::or_null(ess), detail::or_null(khat)),
              "bsvi_diagnostics_compute");
    }
    /**
     * @brief ESS and k-hat of a batch of log weights.
     * @param batch Data points B. @param n Weights per data point. @param log_w B*n log weights.
     * @return B values of each. @throws As the other overload.
     */
    [[nodiscard]] weight_diagnostics compute(std::size_t batch, std::size_t n,
                                             span<const double> log_w) {
        weight_diagnostics r{std::vector<double>(batch), std::vector<double>(batch)};
        compute(batch, n, log_w, r.ess, r.khat);
        return r;
    }

    /**
     * @brief ESS and k-hat of the buffer weights pi_i w_i of a trajectory (bsvi_diagnostics_trajectory()).
     * @param t Non-empty trajectory. @param pi Weights with k+1 slots, or nullptr for uniform.
     * @param ess Output t.batch() values, or empty. @param khat Output t.batch() values, or empty.
     * @throws bsvi::error ::BSVI_ERR_SIZE_MISMATCH (checked here; pi's size; k+1 above the
     *         capacity), ::BSVI_ERR_BAD_STATE (empty trajectory), ::BSVI_ERR_NO_MEMORY.
     */
    void for_trajectory(const trajectory &t, const buffer_weights *pi, span<double> ess,
                        span<double> khat) {
        static const char where[] = "bsvi::diagnostics::for_trajectory";
        detail::require(h_.get(), where);
        detail::expect_size_or_empty(where, "ess", ess.size(), t.batch(), "t.batch()");
        detail::expect_size_or_empty(where, "khat", khat.size(), t.batch(), "t.batch()");
        check(bsvi_diagnostics_trajectory(h_.get(), t.get(), pi ? pi->get() : nullptr,
                                          detail::or_null(ess), detail::or_null(khat)),
              "bsvi_diagnostics_trajectory");
    }
    /**
     * @brief ESS and k-hat of a trajectory's buffer weights.
     * @param t Non-empty trajectory. @param pi Weights with k+1 slots, or nullptr for uniform.
     * @return t.batch() values of each. @throws As the other overload.
     */
    [[nodiscard]] weight_diagnostics for_trajectory(const trajectory &t,
                                                    const buffer_weights *pi = nullptr) {
        weight_diagnostics r{std::vector<double>(t.batch()), std::vector<double>(t.batch())};
        for_trajectory(t, pi, r.ess, r.khat);
        return r;
    }

    /**
     * @brief ESS and k-hat of the weights behind an estimator's last bound (bsvi_diagnostics_estimator()).
     * @param est Estimator with an ELBO, IWAE, BSVI, BSVI-DS or GIWAE result.
     * @param ess Output est.batch() values, or empty. @param khat Output est.batch() values, or empty.
     * @throws bsvi::error ::BSVI_ERR_BAD_STATE (no result; an SVI-k or BSVI-SIR result),
     *         ::BSVI_ERR_SIZE_MISMATCH (checked here; T above the capacity), ::BSVI_ERR_NO_MEMORY.
     */
    void for_estimator(const estimator &est, span<double> ess, span<double> khat) {
        static const char where[] = "bsvi::diagnostics::for_estimator";
        detail::require(h_.get(), where);
        detail::expect_size_or_empty(where, "ess", ess.size(), est.batch(), "est.batch()");
        detail::expect_size_or_empty(where, "khat", khat.size(), est.batch(), "est.batch()");
        check(bsvi_diagnostics_estimator(h_.get(), est.get(), est.batch(), detail::or_null(ess),
                                         detail::or_null(khat)),
              "bsvi_diagnostics_estimator");
    }
    /**
     * @brief ESS and k-hat of an estimator's last bound.
     * @param est Estimator with a result. @return est.batch() values of each. @throws As the other overload.
     */
    [[nodiscard]] weight_diagnostics for_estimator(const estimator &est) {
        weight_diagnostics r{std::vector<double>(est.batch()), std::vector<double>(est.batch())};
        for_estimator(est, r.ess, r.khat);
        return r;
    }

    /** @brief Message of the last error (bsvi_diagnostics_last_error()). @return A C string owned by the handle. */
    const char *last_error() const noexcept { return bsvi_diagnostics_last_error(h_.get()); }

private:
    void check(bsvi_status s, const char *where) {
        detail::check(s, h_.get(), bsvi_diagnostics_last_error, where);
    }

    std::unique_ptr<bsvi_diagnostics, detail::diagnostics_deleter> h_;
};

} /* namespace bsvi */

#endif /* BSVI_BSVI_HPP */
