/* vae_torch: examples/vae's training loop over the LibTorch host (torch_vae.hpp).
 *
 *   vae_torch train --data {builtin,mnist,fashion-mnist,fashion-mnist-gray}
 *                   --method {vae,iwae,svi,bsvi,bsvi-ds,bsvi-sir,bsvi-sir-pi} [options]
 *   vae_torch bench DIR [--methods LIST] [--steps N] [--warmup W] [--threads T]
 *                       [--no-flush-denormal] [--profile PREFIX]
 *
 * `train` reads the same data (examples/vae/data.h), shuffles, binarises, validates and
 * seeds exactly as `vae train` (examples/vae/vae.c), writes the same log.csv columns and
 * its own checkpoints (best.ckpt, last.ckpt: torch::save archives). Options: --epochs,
 * --batch, --k, --svi-step-size, --svi-rule, --svi-clip, --lr, --kl-anneal, --patience,
 * --seed, --out, --overwrite, --max-train, --sir-m, --dreg, --pi-lr, --data-dir, and
 * --threads T (torch::set_num_threads, default 1), --no-flush-denormal (default: denormals
 * flushed, torch::set_flush_denormal), --no-malloc-heap (default: glibc keeps freed memory
 * in the heap, mallopt; both commands). Not here: --resume, --test-curve
 * (its column is left empty), `eval` and `svi-sweep` (use examples/vae's `vae`).
 *
 * `bench DIR` times training steps from the files of `bench_train_step prep DIR` (the
 * starting parameters and binarised batches the C example and the PyTorch peer read) and
 * prints one JSON object per method, as `bench_train_step train` does. */
extern "C" {
#include "blas_env.h"
#include "checkpoint.h"
#include "data.h"
}

#include "torch_vae.hpp"

#include <sys/stat.h>
#include <unistd.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

/* examples/vae/vae.c's seeds */
constexpr std::uint64_t valid_binarize_seed = 0x56414C4944ull;
constexpr std::uint64_t train_binarize_salt = 0x5452414E5345ull;
constexpr std::size_t builtin_valid_fraction = 10;

[[noreturn]] void die(const std::string &msg) {
    std::fprintf(stderr, "vae_torch: %s\n", msg.c_str());
    std::exit(1);
}

double now_seconds() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

std::uint64_t splitmix64(std::uint64_t *s) {
    std::uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* vae.c's shuffle: perm = first + shuffled 0..n-1, a function of (seed, epoch) only */
void shuffle(std::size_t *perm, std::size_t n, std::size_t first, std::uint64_t seed,
             std::uint64_t epoch) {
    std::uint64_t s = seed * 0x2545F4914F6CDD1Dull + epoch;
    for (std::size_t i = 0; i < n; ++i) perm[i] = first + i;
    for (std::size_t i = n; i > 1; --i) {
        const std::size_t j = static_cast<std::size_t>(splitmix64(&s) % i);
        std::swap(perm[i - 1], perm[j]);
    }
}

void make_batch(const vae_dataset *d, tvae::likelihood lik, const std::size_t *rows,
                std::size_t n, std::uint64_t seed, std::uint64_t counter, double *out) {
    if (lik == tvae::likelihood::logistic)
        vae_gray(d, rows, n, out);
    else
        vae_binarize(d, rows, n, seed, counter, out);
}

std::size_t to_size(const char *opt, const char *s) {
    char *end;
    errno = 0;
    const unsigned long long v = std::strtoull(s, &end, 10);
    if (errno || *end || s[0] == '-' || s[0] == '\0') die(std::string(opt) + ": not a count: " + s);
    return static_cast<std::size_t>(v);
}
double to_double(const char *opt, const char *s) {
    char *end;
    errno = 0;
    const double v = std::strtod(s, &end);
    if (errno || *end || s[0] == '\0' || !std::isfinite(v))
        die(std::string(opt) + ": not a number: " + s);
    return v;
}

void print_num(std::FILE *f, double v) {
    if (std::isnan(v))
        std::fprintf(f, ",");
    else
        std::fprintf(f, ",%.4f", v);
}

void mkdir_p(const std::string &path) {
    for (std::size_t i = 1; i <= path.size(); ++i)
        if (i == path.size() || path[i] == '/') mkdir(path.substr(0, i).c_str(), 0755);
    struct stat sb;
    if (stat(path.c_str(), &sb) != 0 || !S_ISDIR(sb.st_mode)) die("cannot create " + path);
}

struct data_sets {
    vae_dataset train{}, valid{};
    std::size_t train_first = 0, train_count = 0, valid_first = 0, valid_count = 0;
    bool valid_aliases_train = false;
    tvae::likelihood lik = tvae::likelihood::bernoulli;
    const vae_dataset &valid_set() const { return valid_aliases_train ? train : valid; }
};

void load_data(const std::string &name, const char *dir, data_sets *ds) {
    char err[512];
    const char *dataset = nullptr;
    if (name == "builtin") {
    } else if (name == "mnist") {
        dataset = "mnist";
    } else if (name == "fashion-mnist") {
        dataset = "fashion-mnist";
    } else if (name == "fashion-mnist-gray") {
        dataset = "fashion-mnist";
        ds->lik = tvae::likelihood::logistic;
    } else {
        die("unknown --data " + name);
    }
    if (!dataset) {
        if (vae_load_builtin("train", &ds->train, err, sizeof err)) die(err);
        const std::size_t nv = ds->train.n / builtin_valid_fraction;
        ds->train_count = ds->train.n - nv;
        ds->valid_first = ds->train_count;
        ds->valid_count = nv;
        ds->valid_aliases_train = true;
    } else {
        if (vae_load_split(dir, dataset, "train", &ds->train, err, sizeof err)) die(err);
        if (vae_load_split(dir, dataset, "valid", &ds->valid, err, sizeof err)) die(err);
        ds->train_count = ds->train.n;
        ds->valid_count = ds->valid.n;
    }
}

/* vae.c's validate(): means over the validation window, batches of cfg.batch */
tvae::stats validate(tvae::trainer &t, const data_sets &ds, std::vector<std::size_t> &rows,
                     std::vector<double> &x) {
    const std::size_t B = t.cfg().batch;
    tvae::stats sum{0, 0, 0, 0, NAN};
    std::size_t done = 0;
    for (std::size_t first = 0; first < ds.valid_count; first += B) {
        const std::size_t n = std::min(B, ds.valid_count - first);
        for (std::size_t i = 0; i < n; ++i) rows[i] = ds.valid_first + first + i;
        make_batch(&ds.valid_set(), ds.lik, rows.data(), n, valid_binarize_seed, 0, x.data());
        tvae::stats st;
        t.bound(x.data(), n, first / B, &st, nullptr);
        sum.bound += st.bound * static_cast<double>(n);
        sum.svi0 += st.svi0 * static_cast<double>(n);
        sum.svik += st.svik * static_cast<double>(n);
        sum.bsvik += st.bsvik * static_cast<double>(n);
        done += n;
    }
    const double d = static_cast<double>(done);
    sum.bound /= d, sum.svi0 /= d, sum.svik /= d, sum.bsvik /= d;
    return sum;
}

int cmd_train(int argc, char **argv) {
    tvae::config cfg;
    std::string data, out_dir;
    const char *data_dir = nullptr;
    bool have_method = false, overwrite = false;
    std::size_t epochs = 10, patience = 0, max_train = 0;
    int threads = 1;
    bool flush = true;
    for (int i = 2; i < argc; ++i) {
        const std::string a = argv[i];
        auto val = [&]() -> const char * {
            if (i + 1 >= argc) die("option " + a + " needs a value");
            return argv[++i];
        };
        if (a == "--data") data = val();
        else if (a == "--method") {
            if (!tvae::parse_method(val(), &cfg.meth)) die(std::string("unknown --method ") + argv[i]);
            have_method = true;
        } else if (a == "--epochs") epochs = to_size(argv[i], val());
        else if (a == "--batch") cfg.batch = to_size(argv[i], val());
        else if (a == "--k") cfg.k = to_size(argv[i], val());
        else if (a == "--svi-step-size") cfg.svi_eta = to_double(argv[i], val());
        else if (a == "--svi-rule") {
            if (bsvi_step_rule_from_name(val(), &cfg.svi_rule) != BSVI_OK)
                die(std::string("unknown --svi-rule ") + argv[i]);
        } else if (a == "--svi-clip") cfg.svi_clip = to_double(argv[i], val());
        else if (a == "--lr") cfg.lr = to_double(argv[i], val());
        else if (a == "--kl-anneal") cfg.kl_anneal = to_size(argv[i], val());
        else if (a == "--patience") patience = to_size(argv[i], val());
        else if (a == "--seed") cfg.seed = to_size(argv[i], val());
        else if (a == "--out") out_dir = val();
        else if (a == "--overwrite") overwrite = true;
        else if (a == "--max-train") max_train = to_size(argv[i], val());
        else if (a == "--sir-m") cfg.sir_m = to_size(argv[i], val());
        else if (a == "--dreg") cfg.iwae_dreg = true;
        else if (a == "--pi-lr") cfg.pi_lr = to_double(argv[i], val());
        else if (a == "--data-dir") data_dir = val();
        else if (a == "--threads") threads = static_cast<int>(to_size(argv[i], val()));
        else if (a == "--no-flush-denormal") flush = false;
        else if (a == "--no-malloc-heap") continue; /* main() */
        else die("unknown option " + a + " for train");
    }
    if (data.empty() || !have_method) die("train needs --data and --method");
    if (epochs == 0) die("--epochs 0: nothing to train");
    if (!(cfg.lr > 0) || !(cfg.svi_eta > 0) || !(cfg.pi_lr > 0) || !(cfg.svi_clip >= 0))
        die("--lr, --svi-step-size, --pi-lr must be positive, --svi-clip non-negative");
    if (cfg.batch == 0 || cfg.k == 0 || cfg.sir_m == 0 || cfg.k > 1000 || cfg.sir_m > 1000)
        die("--batch, --k, --sir-m must be positive (k, M at most 1000)");
    if (threads < 1) die("--threads must be at least 1");
    tvae::trainer::set_threads(threads);
    tvae::trainer::set_flush_denormal(flush);

    data_sets ds;
    load_data(data, data_dir, &ds);
    cfg.lik = ds.lik;
    if (max_train > 0 && max_train < ds.train_count) ds.train_count = max_train;
    const std::size_t B = cfg.batch, X = cfg.x_dim;
    if (ds.train.dim != X) die("the data's images are not 784 pixels");
    if (ds.train_count < B) die("fewer training images than one batch");
    if (ds.valid_count == 0) die("no validation images");
    if (out_dir.empty())
        out_dir = "runs/torch-" + data + "-" + tvae::method_name(cfg.meth) + "-s" +
                  std::to_string(cfg.seed);
    const std::string log_path = out_dir + "/log.csv";
    if (!overwrite && access(log_path.c_str(), F_OK) == 0)
        die(out_dir + " already holds a run (log.csv): give --overwrite or another --out");

    std::vector<double> mean(X, 0.0);
    for (std::size_t i = 0; i < ds.train_count; ++i)
        for (std::size_t j = 0; j < X; ++j)
            mean[j] += ds.train.pixels[(ds.train_first + i) * ds.train.dim + j] / 255.0;
    for (double &m : mean) m /= static_cast<double>(ds.train_count);
    tvae::trainer t(cfg, mean.data());

    mkdir_p(out_dir);
    std::FILE *log = std::fopen(log_path.c_str(), "w");
    if (!log) die("cannot write " + log_path);
    std::fprintf(log, VAE_LOG_HEADER "\n");
    std::fflush(log);
    std::fprintf(stderr,
                 "vae_torch: %s on %s (%zu train, %zu valid), batch %zu, k %zu, SVI %s eta %g, "
                 "lr %g, %zu epochs, LibTorch %s, %d thread(s), out %s\n",
                 tvae::method_name(cfg.meth), data.c_str(), ds.train_count, ds.valid_count, B,
                 cfg.k, bsvi_step_rule_name(cfg.svi_rule), cfg.svi_eta, cfg.lr, epochs,
                 tvae::trainer::torch_version().c_str(), tvae::trainer::threads(),
                 out_dir.c_str());

    std::vector<std::size_t> perm(ds.train_count), rows(B);
    std::vector<double> x(B * X);
    const std::size_t nbatches = ds.train_count / B;
    const std::uint64_t bin_seed = cfg.seed ^ train_binarize_salt;
    double best = -INFINITY, wall = 0.0;
    std::size_t bad = 0, best_epoch = 0;
    for (std::size_t epoch = 1; epoch <= epochs; ++epoch) {
        const double t0 = now_seconds();
        shuffle(perm.data(), ds.train_count, ds.train_first, cfg.seed, epoch);
        tvae::stats sum{0, 0, 0, 0, 0};
        for (std::size_t bi = 0; bi < nbatches; ++bi) {
            make_batch(&ds.train, ds.lik, perm.data() + bi * B, B, bin_seed, t.steps(), x.data());
            tvae::stats st;
            try {
                t.step(x.data(), &st);
            } catch (const std::exception &e) {
                die("epoch " + std::to_string(epoch) + " batch " + std::to_string(bi) + ": " +
                    e.what());
            }
            sum.bound += st.bound, sum.svi0 += st.svi0, sum.svik += st.svik;
            sum.bsvik += st.bsvik, sum.mean_pos += st.mean_pos;
        }
        tvae::stats val = validate(t, ds, rows, x);
        const double secs = now_seconds() - t0;
        wall += secs;
        const double nb = static_cast<double>(nbatches);
        std::fprintf(log, "%zu,%llu", epoch, static_cast<unsigned long long>(t.steps()));
        print_num(log, sum.bound / nb);
        print_num(log, sum.svi0 / nb);
        print_num(log, sum.svik / nb);
        print_num(log, sum.bsvik / nb);
        print_num(log, sum.mean_pos / nb);
        print_num(log, val.bound);
        print_num(log, val.svi0);
        print_num(log, val.svik);
        print_num(log, val.bsvik);
        std::fprintf(log, ",%.2f,%.2f", secs, wall);
        print_num(log, NAN); /* test_iwae: no --test-curve here */
        std::fprintf(log, "\n");
        if (std::fflush(log) != 0 || std::ferror(log)) die("cannot append to " + log_path);
        std::fprintf(stderr,
                     "epoch %zu: train %.3f  valid %.3f  SVI-0 %.3f  SVI-k %.3f  BSVI-k %.3f  "
                     "E_pi[i/k] %.3f  %.1fs\n",
                     epoch, sum.bound / nb, val.bound, sum.svi0 / nb, sum.svik / nb,
                     sum.bsvik / nb, sum.mean_pos / nb, secs);
        bool stop = false;
        if (val.bound > best) {
            best = val.bound, best_epoch = epoch, bad = 0;
            t.save(out_dir + "/best.ckpt", epoch, best);
        } else if (patience > 0 && ++bad >= patience) {
            stop = true;
        }
        t.save(out_dir + "/last.ckpt", epoch, best);
        if (stop) break;
    }
    std::fclose(log);
    std::fprintf(stderr, "vae_torch: done; best validation bound %.3f at epoch %zu; %s/best.ckpt\n",
                 best, best_epoch, out_dir.c_str());
    return 0;
}

/* ---- bench -------------------------------------------------------------------------- */

std::vector<double> read_doubles(const std::string &path, std::size_t n) {
    std::vector<double> v(n);
    std::FILE *f = std::fopen(path.c_str(), "rb");
    if (!f || std::fread(v.data(), sizeof(double), n, f) != n)
        die("cannot read " + path + " (run `bench_train_step prep DIR` first)");
    std::fclose(f);
    return v;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int cmd_bench(int argc, char **argv) {
    if (argc < 3) die("bench needs DIR");
    const std::string dir = argv[2];
    std::string methods = "vae,iwae,svi,bsvi,bsvi-sir";
    std::size_t steps = 20, warmup = 3, k = 9;
    int threads = 1;
    bool flush = true;
    std::string profile; /* --profile PREFIX: PREFIX.METHOD.json, LibTorch's operator trace */
    for (int i = 3; i < argc; ++i) {
        const std::string a = argv[i];
        auto val = [&]() -> const char * {
            if (i + 1 >= argc) die("option " + a + " needs a value");
            return argv[++i];
        };
        if (a == "--methods") methods = val();
        else if (a == "--steps") steps = to_size(argv[i], val());
        else if (a == "--warmup") warmup = to_size(argv[i], val());
        else if (a == "--k") k = to_size(argv[i], val());
        else if (a == "--threads") threads = static_cast<int>(to_size(argv[i], val()));
        else if (a == "--no-flush-denormal") flush = false;
        else if (a == "--profile") profile = val();
        else if (a == "--no-malloc-heap") continue; /* main() */
        else die("unknown option " + a + " for bench");
    }
    if (steps == 0 || threads < 1) die("--steps and --threads must be positive");
    tvae::trainer::set_threads(threads);
    const bool ftz = tvae::trainer::set_flush_denormal(flush) && flush;
    constexpr std::size_t nb = 18, B = 100, X = 784; /* bench_train_step's prep */
    const std::vector<double> xs = read_doubles(dir + "/train_x.bin", nb * B * X);
    std::vector<double> params;
    std::size_t start = 0;
    while (start <= methods.size()) {
        std::size_t end = methods.find(',', start);
        if (end == std::string::npos) end = methods.size();
        const std::string name = methods.substr(start, end - start);
        start = end + 1;
        tvae::config cfg;
        if (!tvae::parse_method(name, &cfg.meth)) die("unknown method " + name);
        cfg.k = k;
        cfg.batch = B;
        tvae::trainer t(cfg, nullptr);
        if (params.empty()) params = read_doubles(dir + "/params.bin", t.num_params());
        std::vector<float> pf(params.begin(), params.end());
        t.set_params(pf.data());
        tvae::stats st{};
        double first = NAN;
        for (std::size_t s = 0; s < warmup; ++s) {
            t.step(xs.data() + (s % nb) * B * X, &st);
            if (s == 0) first = st.bound;
        }
        t.timers() = tvae::timing{};
        std::vector<double> times(steps);
        if (!profile.empty()) tvae::trainer::profile_begin(profile + "." + name + ".json");
        for (std::size_t s = 0; s < steps; ++s) {
            const double t0 = now_seconds();
            t.step(xs.data() + ((warmup + s) % nb) * B * X, &st);
            times[s] = now_seconds() - t0;
            if (warmup == 0 && s == 0) first = st.bound;
        }
        if (!profile.empty()) tvae::trainer::profile_end();
        const tvae::timing &tm = t.timers();
        const double n = static_cast<double>(steps);
        std::printf("{\"kind\":\"train\",\"impl\":\"libtorch\",\"dtype\":\"float32\","
                    "\"method\":\"%s\",\"batch\":%zu,\"k\":%zu,\"steps\":%zu,\"warmup\":%zu,"
                    "\"torch_threads\":%d,\"flush_denormal\":%s,\"torch\":\"%s\",\"first_bound\":%.6f,"
                    "\"last_bound\":%.6f,\"split_ms\":{\"total\":%.4f,\"enc_fwd\":%.4f,"
                    "\"lib_total\":%.4f,\"callback\":%.4f,\"lib_own\":%.4f,\"dec_grad\":%.4f,"
                    "\"enc_bwd\":%.4f,\"optim\":%.4f},\"callbacks_per_step\":%.2f,"
                    "\"callback_rows_per_step\":%.1f,\"targets_reused_per_step\":%.1f,"
                    "\"targets_recomputed_per_step\":%.1f,\"times_ms\":[",
                    name.c_str(), B, k, steps, warmup, tvae::trainer::threads(), ftz ? "true" : "false",
                    tvae::trainer::torch_version().c_str(), first, st.bound, 1e3 * tm.total / n,
                    1e3 * tm.enc_fwd / n, 1e3 * tm.lib / n, 1e3 * tm.callback / n,
                    1e3 * (tm.lib - tm.callback) / n, 1e3 * tm.dec_grad / n,
                    1e3 * tm.enc_bwd / n, 1e3 * tm.optim / n,
                    static_cast<double>(tm.callbacks) / n,
                    static_cast<double>(tm.callback_rows) / n,
                    static_cast<double>(tm.targets_reused) / n,
                    static_cast<double>(tm.targets_recomputed) / n);
        for (std::size_t s = 0; s < steps; ++s) std::printf("%s%.4f", s ? "," : "", 1e3 * times[s]);
        std::printf("],\"median_ms\":%.4f}\n", 1e3 * median(times));
        std::fflush(stdout);
    }
    return 0;
}

} // namespace

int main(int argc, char **argv) {
    vae_blas_check_coretype("vae_torch", argv); /* LibTorch's OpenBLAS, as examples/vae's */
#if defined(__GLIBC__)
    /* LibTorch allocates every operator's output; glibc serves blocks above 128 KiB (a
     * 100 x 784 float tensor is 313 KB) with mmap and returns them with munmap, so each step
     * page-faults its activations in again (a quarter of an IWAE step, measured). Keep freed
     * memory in the heap instead: the same as the PyTorch peer's --malloc-heap tunables. */
    bool heap = true;
    for (int i = 1; i < argc; ++i) heap = heap && std::strcmp(argv[i], "--no-malloc-heap") != 0;
    if (heap) {
        mallopt(M_MMAP_THRESHOLD, 1 << 30);
        mallopt(M_TRIM_THRESHOLD, 1 << 30);
        mallopt(M_TOP_PAD, 256 << 20);
    }
#endif
    if (argc < 2) {
        std::fprintf(stderr, "usage:\n  vae_torch train --data D --method M [options]\n"
                             "  vae_torch bench DIR [--methods LIST] [--steps N] [--warmup W] "
                             "[--threads T]\n");
        return 2;
    }
    try {
        if (!std::strcmp(argv[1], "train")) return cmd_train(argc, argv);
        if (!std::strcmp(argv[1], "bench")) return cmd_bench(argc, argv);
    } catch (const std::exception &e) {
        die(e.what());
    }
    die(std::string("unknown command ") + argv[1]);
}
