#!/usr/bin/python3
"""Writes docs/performance.md (and docs/img/perf-*.png) from the raw results of
scripts/bench.sh.  Usage: report.py RESULTS_DIR DOCS_DIR"""
import array
import glob
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys

RES, DOCS = sys.argv[1], sys.argv[2]
METHODS = ["vae", "iwae", "svi", "bsvi", "bsvi-sir"]
N_ENCODER = 784 * 200 + 200 + 200 * 200 + 200 + 100 * 200 + 100


def jsonl(name):
    p = os.path.join(RES, name)
    if not os.path.exists(p):
        return []
    out = []
    for line in open(p):
        line = line.strip()
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def machine():
    m = {}
    for line in open(os.path.join(RES, "machine.txt")):
        if "=" in line:
            k, v = line.rstrip("\n").split("=", 1)
            m[k] = v
    return m


def med(v):
    return statistics.median(v) if v else float("nan")


def fmt(x, nd=1):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return ("%." + str(nd) + "f") % x


def yes(ok):
    return "**met**" if ok else "**not met**"


M = machine()
out = []
w = out.append
quick = M.get("quick") == "1"

# ---------------------------------------------------------------------------------------------
overhead_md = open(os.path.join(RES, "overhead.md")).read() if os.path.exists(
    os.path.join(RES, "overhead.md")) else ""
slope_line = ""
for line in overhead_md.splitlines():
    if line.startswith("log-log slope"):
        slope_line = line
slopes = [float(x) for x in re.findall(r"(-?\d+\.\d+)", slope_line)] if slope_line else []

peak = jsonl("peak.jsonl")
peak1 = jsonl("peak1.jsonl")
peak_g = peak[0]["best_gflops"] if peak else float("nan")
peak1_g = peak1[0]["best_gflops"] if peak1 else float("nan")
speak_g = peak[0].get("sgemm_best_gflops", float("nan")) if peak else float("nan")
speak1_g = peak1[0].get("sgemm_best_gflops", float("nan")) if peak1 else float("nan")
peak_n = peak[0]["n"] if peak else 0

train_c = jsonl("train_c.jsonl")          # float32 C, OPENBLAS_NUM_THREADS = THREADS
train_c1 = jsonl("train_c_1t.jsonl")      # float32 C, OPENBLAS_NUM_THREADS = 1
train_c64 = jsonl("train_c64.jsonl")      # float64 C, 1 thread (one round)
train_tb = jsonl("train_torch_best.jsonl")  # the peer at its best float32 setting
train_t64 = jsonl("train_torch_f64.jsonl")  # the same setting in float64 (one round)
have_torch = bool(train_tb)


def by_method(rows):
    d = {}
    for r in rows:
        d.setdefault(r["method"], []).append(r)
    return d


def all_times(rows):
    v = []
    for r in rows:
        v += r["times_ms"]
    return v


tc, tc1, tc64, ttb, tt64 = (by_method(x) for x in (train_c, train_c1, train_c64, train_tb,
                                                    train_t64))
TH = M.get("threads", "2")

# ---- training table data: per method the faster C setting (1 or THREADS OpenBLAS threads)
train_rows = []
for m in METHODS:
    c2 = med(all_times(tc.get(m, [])))
    c1 = med(all_times(tc1.get(m, [])))
    tb = med(all_times(ttb.get(m, [])))
    cands = [(v, k) for v, k in ((c1, "1"), (c2, TH)) if v == v]
    best_c, best_th = min(cands) if cands else (float("nan"), "")
    rows_best = (tc1 if best_th == "1" else tc).get(m, [])
    rounds = [rt["median_ms"] / rc["median_ms"] for rc, rt in zip(rows_best, ttb.get(m, []))]
    floors = [r["gemm_floor_ms"] for r in rows_best if "gemm_floor_ms" in r]
    floor = med(floors)
    train_rows.append({"m": m, "c": c2, "c1": c1, "best_c": best_c, "best_th": best_th,
                       "t": tb, "fair": tb / best_c if best_c == best_c else float("nan"),
                       "rounds": rounds, "c64": med(all_times(tc64.get(m, []))),
                       "t64": med(all_times(tt64.get(m, []))), "floor": floor,
                       "floor_ratio": best_c / floor if floor == floor and floor > 0
                       else float("nan"), "rows": rows_best})


def split_of(rows):
    """Mean split over rounds (ms per step)."""
    keys = rows[0]["split_ms"].keys()
    s = {k: statistics.mean(r["split_ms"][k] for r in rows) for k in keys}
    s["gemm_gflop"] = statistics.mean(r["gemm_gflop"] for r in rows)
    s["gemm_calls"] = rows[0]["gemm_calls"]
    s["lib_per_step"] = rows[0].get("lib_per_step")  # the library's counters (bsvi_*_get_stats)
    return s


splits = {r["m"]: split_of(r["rows"]) for r in train_rows if r["rows"]}
sir = splits.get("bsvi-sir")
lib_share = 100.0 * sir["lib_own"] / sir["total"] if sir else float("nan")

eval_c = jsonl("eval_c.jsonl")
eval_c1 = jsonl("eval_c_1t.jsonl")
eval_tb = jsonl("eval_torch_best.jsonl")


def eval_by(rows):
    d = {}
    for r in rows:
        d.setdefault(r["what"], []).append(r)
    return d


ec, ec1, etb = eval_by(eval_c), eval_by(eval_c1), eval_by(eval_tb)


def eval_row(what):
    c2 = med([x for r in ec.get(what, []) for x in r["ms_per_image"]])
    c1 = med([x for r in ec1.get(what, []) for x in r["ms_per_image"]])
    t = med([x for r in etb.get(what, []) for x in r["ms_per_image"]])
    cands = [(v, k) for v, k in ((c1, "1"), (c2, TH)) if v == v]
    best_c, best_th = min(cands) if cands else (float("nan"), "")
    return {"c1": c1, "c2": c2, "t": t, "best_c": best_c, "best_th": best_th,
            "rows": (ec1 if best_th == "1" else ec).get(what, []),
            "fair": t / best_c if best_c == best_c and t == t else float("nan")}


eval_rows = {what: eval_row(what) for what in sorted(set(ec) | set(ec1))}

mem = jsonl("mem.jsonl")
repro_all = jsonl("repro.jsonl")
repro = [r for r in repro_all if r["kind"] == "repro"]
gemm_repro = [r for r in repro_all if r["kind"] == "gemm_repro"]
fp = jsonl("fingerprint.jsonl")
grads = jsonl("grad.jsonl")

# ---------------------------------------------------------------------------------------------
# plots
img = os.path.join(DOCS, "img")
os.makedirs(img, exist_ok=True)
have_gnuplot = shutil.which("gnuplot") is not None
plot_overhead = plot_train = False
csv = os.path.join(RES, "overhead.csv")
if have_gnuplot and os.path.exists(csv):
    dat = os.path.join(RES, "overhead_plot.dat")
    big = []
    with open(dat, "w") as f:
        f.write("# units svi_s bsvi_s iwae_s elbo_s B d k\n")
        for line in list(open(csv))[1:]:
            p = line.strip().split(",")
            B, d, k = int(p[0]), int(p[1]), int(p[2])
            units = B * d * (k + 1)
            ns = [float(x) for x in p[3:]]
            if units >= 100000:
                big.append(ns[0])
            # columns: svi, ELBO, IWAE, SVI-est, BSVI, BSVI-DS, SIR (ns per unit; ELBO per B*d)
            f.write("%d %.6g %.6g %.6g %.6g %d %d %d\n" % (
                units, ns[0] * units * 1e-9, ns[4] * units * 1e-9, ns[2] * units * 1e-9,
                ns[1] * B * d * 1e-9, B, d, k))
    gp = """
set terminal pngcairo size 900,620 font ",11"
set output '%s'
set logscale xy
set format x "10^{%%L}"
set format y "10^{%%L}"
set xlabel "work units  B x d x (k+1)   (data points x latent dimension x buffer slots)"
set ylabel "seconds per call"
set title "libbsvi overhead with a trivial model: time per call against B d (k+1)\\n(B in {1,100,1000}, d in {2,50,500}, k in {1,9,99,499}; slope 1 = linear)"
set key top left
set grid
f(x) = %g * x
plot '%s' using 1:2 with points pt 7 ps 1.2 title "bsvi\\\\_svi\\\\_run (SVI-k)", \\
     '' using 1:4 with points pt 5 ps 1.0 title "IWAE-(k+1) estimator (samples + callback)", \\
     f(x) with lines dt 2 lw 2 title "%.0f ns x units (slope 1)"
""" % (os.path.join(img, "perf-overhead.png"), med(big) * 1e-9 if big else 40e-9, dat,
       med(big) if big else 40.0)
    r = subprocess.run(["gnuplot"], input=gp, text=True, capture_output=True)
    plot_overhead = r.returncode == 0
    if not plot_overhead:
        sys.stderr.write("report.py: gnuplot failed: %s\n" % r.stderr)

if have_gnuplot and have_torch:
    dat = os.path.join(RES, "train_plot.dat")
    with open(dat, "w") as f:
        for r in train_rows:
            s = splits.get(r["m"], {})
            gemm = s.get("gemm", 0.0)
            lib = s.get("lib_own", 0.0)
            c = r["best_c"]
            f.write('"%s" %.4f %.4f %.4f %.4f %.4f\n' % (r["m"], gemm, c - gemm - lib if c == c else 0,
                                                        lib, r["floor"] if r["floor"] == r["floor"] else 0,
                                                        r["t"]))
    ymax = 1.6 * max([r["best_c"] for r in train_rows if r["best_c"] == r["best_c"]] +
                     [r["t"] for r in train_rows if r["t"] == r["t"]] + [1.0])
    gp = """
set terminal pngcairo size 900,600 font ",11"
set output '%s'
set style data histograms
set style histogram rowstacked
set style fill solid 0.85 border -1
set boxwidth 0.25
set ylabel "ms per training step (batch 100, median)"
set key below maxrows 3 width -2
set title "VAE training step, float32: C (libbsvi + CBLAS, its faster thread setting), split, beside its GEMM floor and the PyTorch peer at its best setting"
set grid ytics
set yrange [0:%g]
plot '%s' using ($0-0.27):2:(0.25) with boxes lc rgb "#4472c4" title "C: GEMMs", \\
     '' using ($0-0.27):($2+$3):(0.25) with boxes lc rgb "#a5a5a5" notitle, \\
     '' using ($0-0.27):2:(0.25) with boxes lc rgb "#4472c4" notitle, \\
     '' using ($0-0.27):($2+$3+$4):(0.25) with boxes lc rgb "#ed7d31" title "C: libbsvi's own time", \\
     '' using ($0-0.27):($2+$3):(0.25) with boxes lc rgb "#a5a5a5" title "C: other host work (tanh, likelihood, AMSGrad)", \\
     '' using ($0-0.27):2:(0.25) with boxes lc rgb "#4472c4" notitle, \\
     '' using ($0):5:(0.25):xtic(1) with boxes lc rgb "#bdd7ee" title "C: GEMM floor (its GEMM calls replayed alone)", \\
     '' using ($0+0.27):6:(0.25) with boxes lc rgb "#375623" title "PyTorch peer, float32, its best setting", \\
     '' using ($0+0.27):($6 > %g ? %g : $6):(sprintf("%%.0f", $6)) with labels offset 0,0.7 notitle
""" % (os.path.join(img, "perf-train.png"), ymax, dat, 0.9 * ymax, 0.9 * ymax)
    r = subprocess.run(["gnuplot"], input=gp, text=True, capture_output=True)
    plot_train = r.returncode == 0
    if not plot_train:
        sys.stderr.write("report.py: gnuplot failed: %s\n" % r.stderr)

# ---------------------------------------------------------------------------------------------
w("# Performance")
w("")
w("Generated by `bash scripts/bench.sh` (%s, %s); do not edit by hand: rerun the script. "
  "Raw results are in `build-bench/bench-results/`." % (M.get("date_utc", "?"),
                                                        "QUICK smoke run" if quick else "full run"))
w("")
w("## Summary of the targets")
w("")

# targets
rows_t = []
rows_t.append(("libbsvi's own share of a bsvi-9-sir step < 5%", "%s%%" % fmt(lib_share, 2),
               lib_share < 5.0))
worst = None
if have_torch:
    ratios = [(r["fair"], r["m"]) for r in train_rows if r["fair"] == r["fair"]]
    worst = min(ratios) if ratios else None
    rows_t.append(("C training step >= 2x faster than PyTorch float32, every method (best "
                   "setting of each side, alternating)",
                   "speed-up %s (worst: %s %.2fx)" % (
                       ", ".join("%s %.2fx" % (r["m"], r["fair"]) for r in train_rows),
                       worst[1], worst[0]) if worst else "n/a",
                   bool(worst) and worst[0] >= 2.0))
    ev_ratios = [(r["fair"], wh) for wh, r in eval_rows.items() if r["fair"] == r["fair"]]
    if ev_ratios:
        rows_t.append(("C evaluation >= 2x faster than PyTorch float32 (best setting of each side)",
                       ", ".join("%s %.2fx" % (wh, r) for r, wh in ev_ratios),
                       min(ev_ratios)[0] >= 2.0))
fl = [(r["floor_ratio"], r["m"]) for r in train_rows if r["floor_ratio"] == r["floor_ratio"]]
if fl:
    rows_t.append(("each training step within 1.6x of its GEMM floor (its own GEMM calls, "
                   "replayed alone, same run)",
                   ", ".join("%s %.2fx" % (m, v) for v, m in fl) + " (worst %s %.2fx)" % (
                       max(fl)[1], max(fl)[0]), max(fl)[0] <= 1.6))
core_ns = float("nan")
ocsv = os.path.join(RES, "overhead.csv")
if os.path.exists(ocsv):
    for line in list(open(ocsv))[1:]:
        p = line.strip().split(",")
        if p[:3] == ["100", "50", "9"]:
            core_ns = float(p[3])
if core_ns == core_ns:
    rows_t.append(("library core at most 8 ns per point x dim x slot (bsvi_svi_run, B=100, "
                   "d=50, k=9, callback excluded)", "%s ns" % fmt(core_ns, 2), core_ns <= 8.0))
gemm_eff = {}
for m, s in splits.items():
    if s["gemm"] > 0:
        gemm_eff[m] = s["gemm_gflop"] / (s["gemm"] * 1e-3)
# memory target
ev_mem = [r for r in mem if r["impl"] == "c" and r["mode"] == "eval"]
img_rows = sorted([r for r in ev_mem if r["what"] == "iwae" and r["samples"] == 100],
                  key=lambda r: r["images"])
mem_images_ok = len(img_rows) >= 2 and (img_rows[-1]["max_rss_kb"] - img_rows[0]["max_rss_kb"]) < 1024
k_rows = sorted([r for r in ev_mem if r["what"] == "bsvi"], key=lambda r: r["samples"])
s_rows = sorted([r for r in ev_mem if r["what"] == "iwae" and r["images"] == 10],
                key=lambda r: r["samples"])


def lin_ok(rows):
    """growth at most linear: (rss - base) / K never increases by more than noise."""
    if len(rows) < 2:
        return False
    d = rows[-1]["max_rss_kb"] - rows[0]["max_rss_kb"]
    return d <= 1024 or d / (rows[-1]["samples"] - rows[0]["samples"]) <= 1.1 * max(
        1e-9, (rows[1]["max_rss_kb"] - rows[0]["max_rss_kb"]) / (rows[1]["samples"] - rows[0]["samples"]) + 1)


if img_rows:
    rows_t.append(("evaluation memory does not grow with the number of test images",
                   "max RSS %s MiB for %s images" % (
                       " / ".join(fmt(r["max_rss_kb"] / 1024.0) for r in img_rows),
                       " / ".join(str(r["images"]) for r in img_rows)), mem_images_ok))
if k_rows and s_rows:
    growth_k = (k_rows[-1]["max_rss_kb"] - k_rows[0]["max_rss_kb"]) / 1024.0
    growth_s = (s_rows[-1]["max_rss_kb"] - s_rows[0]["max_rss_kb"]) / 1024.0
    rows_t.append(("evaluation memory at most linear in K",
                   "BSVI-K %d->%d: %+.1f MiB; IWAE-S %d->%d: %+.1f MiB (constant: streamed)" % (
                       k_rows[0]["samples"], k_rows[-1]["samples"], growth_k,
                       s_rows[0]["samples"], s_rows[-1]["samples"], growth_s),
                   growth_k < 4 and growth_s < 4))
if repro:
    fps = {}
    for r in repro:
        fps.setdefault(r["model"], set()).add(r["fingerprint"])
    same = all(len(v) == 1 for v in fps.values())
    split_ok = all(r["split_batch_identical"] for r in repro)
    vae_same = len(set(json.dumps({k: v for k, v in r.items() if k not in ("openblas_threads",)},
                                  sort_keys=True) for r in fp)) == 1 if fp else False
    rows_t.append(("bitwise reproducible whatever the number of threads: libbsvi",
                   "outputs %s across OPENBLAS_NUM_THREADS=1/2%s" % (
                       "identical" if same else "DIFFERENT",
                       ", a batch split in two identical to the whole" if split_ok
                       else ", batch split DIFFERS"), same and split_ok))
    rows_t.append(("... and the VAE example (its GEMMs in OpenBLAS)",
                   "parameters after %s steps %s for OPENBLAS_NUM_THREADS=1 and 2 (each "
                   "deterministic for a fixed thread count)" % (
                       fp[0]["steps"] if fp else "?", "identical" if vae_same else "differ"),
                   vae_same))

w("| target | measured | |")
w("|---|---|---|")
for name, val, ok in rows_t:
    w("| %s | %s | %s |" % (name, val, yes(ok)))
w("")
load_s, load_e = M.get("load_start", "?"), M.get("load_end", "?")
w("Load average at the start / end of the run: %s / %s (1, 5, 15 min). The start value is "
  "the machine's background (above ~0.5 on 2 cores, other processes competed and absolute "
  "times are inflated); the end value includes this run's own processes. The C/PyTorch ratios "
  "are measured alternating in the same run." % (load_s, load_e))
w("")

# ---------------------------------------------------------------------------------------------
w("## Machine")
w("")
w("| | |")
w("|---|---|")
for k, label in (("model", "CPU (lscpu)"), ("cpus", "cores (nproc)"),
                 ("threads_per_core", "threads per core"), ("hypervisor", "hypervisor"),
                 ("flags_avx", "vector ISA"), ("l2", "L2"), ("l3", "L3"), ("mem", "memory"),
                 ("os", "OS"), ("kernel", "kernel"), ("cc", "C compiler"),
                 ("blas", "CBLAS linked (CMake)"), ("openblas_pkg", "OpenBLAS package"),
                 ("libblas_alt", "libblas.so.3 (used by PyTorch)"), ("torch", "PyTorch"),
                 ("python", "Python"), ("threads", "threads used (OPENBLAS_NUM_THREADS, torch)")):
    if k in M:
        w("| %s | %s |" % (label, M[k].replace("|", "/")))
w("")
w("BLAS peak: the best of 5 calls on %d x %d x %d row-major matrices (`bench_train_step "
  "peak`), GFLOP/s = 2 n^3 / seconds: `cblas_sgemm` **%s GFLOP/s with %s threads**, %s with 1 "
  "thread; `cblas_dgemm` %s with %s threads, %s with 1 thread. OpenBLAS kernel set: %s." % (
      peak_n, peak_n, peak_n, fmt(speak_g), M.get("threads", "2"), fmt(speak1_g), fmt(peak_g),
      M.get("threads", "2"), fmt(peak1_g), M.get("openblas_core", "?")))
w("")

# ---------------------------------------------------------------------------------------------
w("## 1. Library overhead (trivial model)")
w("")
w("`bench_overhead`: log p(x|z) = -|z|^2/2 (and its gradient), so the time is libbsvi's own "
  "(the callback costs about 1 ns per coordinate). Nanoseconds per data point per latent "
  "dimension per buffer slot (k+1 slots; the ELBO has one), best of 3 runs of repeated calls. "
  "`SVI-k run` is `bsvi_svi_run` (k+1 callbacks, sampling, steps, buffer); ELBO and IWAE-(k+1) "
  "include drawing their samples and the callback; the trajectory estimators read a filled "
  "trajectory.")
w("")
for line in overhead_md.splitlines():
    if line.startswith("|"):
        w(line)
w("")
if slopes:
    w("Linearity: log-log slope of the total `bsvi_svi_run` time against B (100 to 1000, d = 50, "
      "k = 9) **%.3f**, against d (2 to 500, B = 100, k = 9) **%.3f**, against k+1 (2 to 500, "
      "B = 100, d = 50) **%.3f** (1 = linear). Cost is linear in B, d and k: per unit of "
      "B·d·(k+1) the SVI run costs a few tens of ns, dominated by the Gaussian draws "
      "(Philox4x32-10 and the normal transform, one per coordinate per slot) and the "
      "exp of the log-std; at B = 1 or d = 2 the fixed per-call and per-step costs show."
      % tuple(slopes[:3]))
    w("")
if plot_overhead:
    w("![overhead](img/perf-overhead.png)")
    w("")

# ---------------------------------------------------------------------------------------------
w("## 2. Training step: C beside the PyTorch peer")
w("")
nround = len(tc1.get("bsvi-sir", []))
w("One full step of the example's 784-200-200-50 tanh VAE (Bernoulli likelihood, batch 100, "
  "k = 9, SVI eta = 5e-3 plain gradient, AMSGrad), from the same parameters "
  "(`prep`: %s bsvi-sir steps on the shipped Fashion-MNIST subset) and the same binarised "
  "batches, **float32 on both sides**. Median over %d rounds x %s steps (after %s warm-up steps "
  "per method and round); each round runs C with OpenBLAS at 1 thread, C at %s threads, then "
  "the peer at its best float32 setting (section *PyTorch float32 settings* below), so the "
  "three alternate. **Speed-up** = the peer's median / the faster C setting's median (the "
  "figure the target is judged on); *per round*: the same ratio per round (the spread). "
  "*GEMM floor*: the step's own GEMM calls (shapes recorded in the first timed step) "
  "replayed alone on scratch matrices, best of 5, in the same run; */ floor* = C step / "
  "floor. Extra columns, one round each: *C float64* (`bench_train_step64`, 1 thread) and "
  "the peer in float64 at its best setting otherwise." % (
      jsonl("prep.jsonl")[0]["warm_steps"] if jsonl("prep.jsonl") else "?", nround,
      train_c1[0]["steps"] if train_c1 else "?", train_c1[0]["warmup"] if train_c1 else "?", TH))
w("")
w("| method | C 1 thread ms | C %s threads ms | PyTorch f32 best ms | **speed-up** | per round "
  "| GEMM floor ms | C / floor | C float64 ms | PyTorch float64 ms |" % TH)
w("|---|---:|---:|---:|---:|---|---:|---:|---:|---:|")
for r in train_rows:
    w("| %s | %s | %s | %s | **%s** | %s | %s | %s | %s | %s |" % (
        r["m"], fmt(r["c1"]), fmt(r["c"]), fmt(r["t"]), fmt(r["fair"], 2) + "x",
        " ".join("%.2f" % x for x in r["rounds"]), fmt(r["floor"], 2),
        fmt(r["floor_ratio"], 2) + "x", fmt(r["c64"]), fmt(r["t64"])))
w("")
if plot_train:
    w("![training step](img/perf-train.png)")
    w("")
w("Same step, same numbers: at the shared starting parameters the first-step bounds agree "
  "(C / PyTorch, float32, batch mean, nats): %s. The peer's gradients are checked below." % ", ".join(
      "%s %s / %s" % (m, fmt(statistics.mean(r["first_bound"] for r in tc1[m]), 2),
                      fmt(statistics.mean(r["first_bound"] for r in ttb[m]), 2))
      for m in METHODS if m in tc1 and m in ttb))
w("")

# ---- split
w("### Where a C step's time goes")
w("")
w("Measured inside the real `vae_trainer_step` (float32, each method's faster OpenBLAS "
  "thread setting) by wrapping (GNU ld `--wrap`) every call the "
  "example makes into libbsvi, into its network functions and into `cblas_sgemm`. "
  "*libbsvi own* = time inside libbsvi calls minus the time its likelihood callbacks spent in "
  "the decoder; *decoder in callbacks* = the decoder forward (+ backward to z) the library "
  "asked for; *decoder targets* = `vae_decoder_accumulate`; *GEMMs* = time inside "
  "`cblas_sgemm` wherever called; *% of peak*: GEMM GFLOP/s over the sgemm peak of the same thread count; *host non-GEMM* = step - GEMMs - libbsvi own: the example's "
  "element-wise work (tanh, the likelihood, bias copies, AMSGrad, clamping). Milliseconds per "
  "step, mean over the rounds.")
w("")
w("| method | step | libbsvi own | GEMMs | host non-GEMM | decoder in callbacks | decoder "
  "targets | encoder fwd+bwd | AMSGrad | GEMM GFLOP | GEMM GFLOP/s | % of peak |")
w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for m in METHODS:
    if m not in splits:
        continue
    s_ = splits[m]
    g = gemm_eff.get(m, float("nan"))
    tot = s_["total"]
    hng = tot - s_["gemm"] - s_["lib_own"]
    w("| %s | %s | %s (%s%%) | %s (%s%%) | %s (%s%%) | %s | %s | %s | %s | %s | %s | %s%% |" % (
        m, fmt(tot, 2), fmt(s_["lib_own"], 2), fmt(100 * s_["lib_own"] / tot, 2),
        fmt(s_["gemm"], 2), fmt(100 * s_["gemm"] / tot, 0), fmt(hng, 2), fmt(100 * hng / tot, 0),
        fmt(s_["callback"], 2), fmt(s_["dec_acc"], 2), fmt(s_["enc_fwd"] + s_["enc_bwd"], 2),
        fmt(s_["adam"] + s_["zero"], 2), fmt(s_["gemm_gflop"], 3), fmt(g),
        fmt(100 * g / (speak1_g if next(r for r in train_rows if r["m"] == m)["best_th"] == "1"
                       else speak_g), 0)))
w("")
lib_counts = [(m, splits[m]["lib_per_step"]) for m in METHODS
              if m in splits and splits[m].get("lib_per_step")]
if lib_counts:
    w("What libbsvi did per step, from its handles' counters (`bsvi_svi_get_stats`, "
      "`bsvi_estimator_get_stats`): "
      + "; ".join("%s %d calls, %d likelihood callbacks of %d latent rows, %d SVI steps"
                  % (m, round(c["calls"]), round(c["likelihood_calls"]),
                     round(c["likelihood_rows"]), round(c["svi_steps"]))
                  for m, c in lib_counts) + ".")
    w("")
if sir:
    w("libbsvi's own share of a bsvi-9-sir step: **%s%%** (%s ms of %s ms; target < 5%%: %s)."
      % (fmt(lib_share, 2), fmt(sir["lib_own"], 2), fmt(sir["total"], 2),
         "met" if lib_share < 5 else "not met"))
    w("")
perf_txt = os.path.join(RES, "perf.txt")
if os.path.exists(perf_txt) and os.path.getsize(perf_txt) > 0:
    dso_txt = os.path.join(RES, "perf_dso.txt")
    if os.path.exists(dso_txt):
        parts = []
        for line in open(dso_txt):
            mm = re.match(r"\s*([\d.]+)%\s+(\S+)", line)
            if mm:
                parts.append("%s %s%%" % (mm.group(2), mm.group(1)))
        if parts:
            w("`perf record` of the C bsvi-sir training step, self time by shared object: "
              + ", ".join(parts) + " (libopenblas = the GEMMs; bench_train_step = the example's "
              "own loops, linked in statically: the vectorised element-wise kernels of "
              "examples/vae/vmath.c (`vm_bernoulli_row`, `vm_tanh`), AMSGrad, bias copies; "
              "libm = the few scalar calls left (per-row constants, the encoder's clamp); "
              "libbsvi = the library; [kernel] = mostly `sched_yield`/`__schedule`: OpenBLAS's "
              "second thread spin-yielding between GEMMs while the main thread runs the "
              "element-wise work, so it costs a core, not time on the critical path).")
            w("")
    w("`perf record` of the C bsvi-sir step (self time by shared object and symbol, top entries):")
    w("")
    w("```")
    for line in open(perf_txt).read().splitlines()[:22]:
        w(re.sub(r"(\s+-)+\s*$", "", line.rstrip()))
    w("```")
    w("")

# ---------------------------------------------------------------------------------------------
def peer_settings_section():
    """Issue 9, item 1: the PyTorch peer's run settings (bench/peer/sweep_settings.sh) and the
    winner, "the peer"; also the winner's medians from the alternating C/PyTorch rounds."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "peer"))
    import sweep_summary
    rows = jsonl(sweep_summary.SWEEP_FILE)
    lines, winner = sweep_summary.markdown(rows)
    if not lines:
        return
    head = next((r for r in rows if r.get("kind") == "sweep" and r.get("when") == "start"), {})
    tail = next((r for r in rows if r.get("kind") == "sweep" and r.get("when") == "end"), {})
    w("### PyTorch float32 settings")
    w("")
    w("`bench/peer/sweep_settings.sh`: the peer (float32, its default) under each setting: "
      "`torch.set_num_threads` (t1/t2), OPENBLAS_NUM_THREADS (ob1/ob2), *skx* "
      "OPENBLAS_CORETYPE=SkylakeX (where OpenBLAS 0.3.21 does not recognise the CPU and falls "
      "back to its SSE3 Prescott kernels), *heap* GLIBC_TUNABLES=`%s` (glibc keeps PyTorch's "
      "freed activations in the heap); two float64 rows for comparison. %s rounds; within a "
      "round the settings alternate and the first one rotates. Training: ms per step, median "
      "over all %s timed steps x rounds; evaluation: ms per image (BSVI-500 on 100 images, "
      "IWAE-5000 on fewer), median over the rounds; ±: half the range of the per-round "
      "medians, in %% of the median. Bold: the fastest float32 setting per measure. *vs best*: "
      "the geometric mean over the measures of median / best median. Load average at start / "
      "end of the sweep: %s / %s." % (
          sweep_summary.MALLOC_HEAP_TUNABLES,
          head.get("rounds", "?"), head.get("steps", "?"), head.get("loadavg", "?"),
          tail.get("loadavg", "?")))
    w("")
    for line in lines:
        w(line)
    w("")
    if winner:
        w("The peer (lowest geometric mean, float32): **`%s`** (%s), i.e. `vae_step.py %s`."
          % (winner, sweep_summary.describe(winner),
             " ".join(sweep_summary.label_args(winner))))
        best = by_method(jsonl("train_torch_best.jsonl"))
        ebest = {}
        for r in jsonl("eval_torch_best.jsonl"):
            ebest.setdefault(r["what"], []).append(r["median_ms_per_image"])
        if best or ebest:
            parts = ["%s %s ms" % (m, fmt(med(all_times(best[m])))) for m in METHODS if m in best]
            parts += ["%s %s ms/image" % (k, fmt(med(v), 2)) for k, v in sorted(ebest.items())]
            w("")
            w("The same setting in the alternating C / PyTorch rounds above: " + ", ".join(parts)
              + ".")
        w("")


peer_settings_section()

# ---------------------------------------------------------------------------------------------
w("## 3. Evaluation: BSVI-500 and IWAE-5000 per test image")
w("")
w("The first %s binarised test images of the shipped subset (IWAE-5000: the first %s), in batches of 100, from the "
  "shared parameters. C: `vae_trainer_evaluate` (libbsvi's evaluator, chunks of 2000 latent "
  "rows per callback, running log-sum-exp). PyTorch: the same algorithm (IWAE samples of each "
  "image in chunks of 2000 rows, BSVI-500 as 499 batched SVI steps with a running log-sum-exp). "
  "float32 on both sides. Milliseconds per image, median over %d alternating rounds "
  "(C 1 thread, C %s threads, the peer at its best setting)." % (
      max(r["images"] for r in eval_c) if eval_c else "?",
      min(r["images"] for r in eval_c) if eval_c else "?", len(ec.get("iwae-5000", [])), TH))
w("")
w("| estimate | images | C 1 thread ms/image | C %s threads ms/image | PyTorch f32 best ms/image "
  "| **speed-up** | C mean log-lik | PyTorch mean log-lik | C libbsvi own share | C GEMM GFLOP/s |" % TH)
w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for what, r in eval_rows.items():
    if not r["rows"]:
        continue
    sp = split_of(r["rows"])
    gf = sp["gemm_gflop"] / (sp["gemm"] * 1e-3) if sp["gemm"] > 0 else float("nan")
    w("| %s | %d | %s | %s | %s | **%s** | %s | %s | %s%% | %s |" % (
        what, r["rows"][0]["images"], fmt(r["c1"], 2), fmt(r["c2"], 2), fmt(r["t"], 2),
        fmt(r["fair"], 2) + "x" if r["fair"] == r["fair"] else "n/a",
        fmt(statistics.mean(x["mean_ll"] for x in r["rows"]), 2),
        fmt(statistics.mean(x["mean_ll"] for x in etb[what]), 2) if what in etb else "n/a",
        fmt(100 * sp["lib_own"] / sp["total"], 2), fmt(gf)))
w("")

# ---------------------------------------------------------------------------------------------
w("## 4. Peak memory (max resident set)")
w("")
w("One process per configuration, `getrusage(RUSAGE_SELF).ru_maxrss` at the end (it includes "
  "the loaded data and, for PyTorch, the interpreter and libtorch). *before* is the max RSS "
  "after loading the data, before the trainer exists.")
w("")
w("| side | mode | configuration | before MiB | max RSS MiB |")
w("|---|---|---|---:|---:|")
for r in mem:
    if r["mode"] == "train":
        conf = "%s, k = %d (%s)" % (r["method"], r["k"],
                                    "%d weights" % (r["k"] + 1) if r["method"] != "iwae"
                                    else "K = %d samples" % (r["k"] + 1))
    else:
        conf = "%s-%d, %d images" % (r["what"].upper(), r["samples"], r["images"])
    w("| %s | %s | %s | %s | %s |" % ("C" if r["impl"] == "c" else "PyTorch", r["mode"], conf,
                                     fmt(r["rss_before_kb"] / 1024.0),
                                     fmt(r["max_rss_kb"] / 1024.0)))
w("")
ctr = [r for r in mem if r["impl"] == "c" and r["mode"] == "train"]


def growth(method):
    rr = sorted([r for r in ctr if r["method"] == method], key=lambda r: r["k"])
    if len(rr) < 2:
        return None
    return (rr[-1]["max_rss_kb"] - rr[0]["max_rss_kb"]) / (rr[-1]["k"] - rr[0]["k"])


gs, gi = growth("bsvi-sir"), growth("iwae")
if gs is not None and gi is not None:
    w("Growth in training: bsvi-sir %s KiB per extra SVI step. Expected: a trajectory slot "
      "holds B x d latents, means and log-stds plus three scalars per data point, "
      "100 x (3 x 50 + 3) x 8 B = 120 KiB, and the SVI handle double-buffers its trajectory "
      "(a staging copy, swapped in on success, so that a failed run leaves the output "
      "untouched): 239 KiB per slot. iwae: %s KiB per extra sample. Expected: the example's "
      "decoder workspace grows by B rows per sample, 100 x (2 x (2 x 200 + 784) + 1) x 8 B = "
      "1.85 MiB, plus the estimator's samples, noise, gradients and targets, about 0.2 MiB. "
      "Both linear in k and K. Evaluation streams: its memory is flat in the number of images, "
      "in S (IWAE) and in K (BSVI)." % (fmt(gs), fmt(gi)))
    w("")

# ---------------------------------------------------------------------------------------------
w("## 5. Reproducibility across thread counts")
w("")
if repro:
    w("| model | OPENBLAS_NUM_THREADS | fingerprint of every output | batch split in two = whole batch |")
    w("|---|---|---|---|")
    for r in repro:
        w("| %s | %s | `%s` | %s |" % (r["model"], r["openblas_threads"], r["fingerprint"],
                                     "yes" if r["split_batch_identical"] else "NO"))
    w("")
    w("`bench_repro` runs SVI-9, all six estimators and IWAE-5000 / BSVI-500 evaluation on the "
      "trivial model and on a linear-Gaussian model and hashes (FNV-1a 64) the bytes of every "
      "output. libbsvi is single-threaded and draws every random number from a counter-based "
      "stream keyed by (seed, call, data point id, step): its outputs cannot depend on the "
      "thread count, and a batch split in two with the id offset reproduces the whole batch "
      "bitwise.")
    w("")
if fp:
    w("The VAE example (its GEMMs run in OpenBLAS): FNV-1a 64 of all parameters after %s "
      "training steps from the shared parameters:" % fp[0]["steps"])
    w("")
    w("| OPENBLAS_NUM_THREADS | bsvi-sir | iwae |")
    w("|---|---|---|")
    for r in fp:
        w("| %s | `%s` | `%s` |" % (r["openblas_threads"], r.get("bsvi-sir"), r.get("iwae")))
    w("")
    same = len(set((r.get("bsvi-sir"), r.get("iwae")) for r in fp)) == 1
    if same:
        w("Identical here (%s); that is a property of this BLAS build and CPU, not a "
          "guarantee. Pin the BLAS, its version and its thread count where bitwise "
          "reproducibility of the host's networks matters." % M.get("openblas_pkg", "?"))
    else:
        w("Different: each thread count is deterministic run to run, but OpenBLAS (%s) does "
          "not give the same bits for 1 and 2 threads on the example's GEMM shapes (how it "
          "partitions and blocks a threaded dgemm depends on the thread count), and the "
          "difference, in the last bits of a gradient, then propagates through AMSGrad. This "
          "is the host's BLAS, not libbsvi: the library's outputs are identical given the "
          "same callback results. For bitwise-reproducible training fix "
          "OPENBLAS_NUM_THREADS (any value, but the same one), or have the host split its GEMMs "
          "by output columns over single-threaded BLAS calls." % M.get("openblas_pkg", "?"))
    w("")

if len(gemm_repro) >= 2:
    g1, g2 = gemm_repro[0]["shapes"], gemm_repro[-1]["shapes"]
    diff = [k for k in g1 if g1[k] != g2.get(k)]
    same = [k for k in g1 if g1[k] == g2.get(k)]
    w("Which of the example's dgemm shapes (M x N x K, transposes of A and B) give different "
      "bits with OPENBLAS_NUM_THREADS=%s and %s (`bench_repro`): **differ**: %s; **identical**: "
      "%s." % (gemm_repro[0]["openblas_threads"], gemm_repro[-1]["openblas_threads"],
               ", ".join(diff) or "none", ", ".join(same) or "none"))
    w("")

# ---------------------------------------------------------------------------------------------
w("## 6. Is the peer the same step? (mean gradients)")
w("")
if grads:
    w("At the shared parameters and the first batch, each side averages the step's parameter "
      "gradient d(bound)/dtheta over %s steps with fresh random draws (no update). Two C runs "
      "with different seeds give the noise floor; the PyTorch peer should agree with C as well "
      "as C agrees with itself." % grads[0]["reps"])
    w("")
    w("| method | cos(C seed 1, C seed 2) | cos(C seed 1, PyTorch) | cos(C seed 2, PyTorch) "
      "| decoder part: C-C / C-PyTorch | encoder part: C-C / C-PyTorch | norm C1 / C2 / PyTorch "
      "| mean bound C / PyTorch |")
    w("|---|---:|---:|---:|---|---|---|---|")

    def load(p):
        a = array.array("d")
        with open(p, "rb") as f:
            a.frombytes(f.read())
        return a

    def cos(a, b):
        return sum(x * y for x, y in zip(a, b)) / math.sqrt(
            sum(x * x for x in a) * sum(y * y for y in b))

    gb = {}
    for r in grads:
        gb.setdefault((r["method"], r["impl"]), []).append(r["mean_bound"])
    for m in METHODS:
        p1, p2, pt = (os.path.join(RES, "grad_%s_%s.bin" % (t, m)) for t in ("c1", "c2", "t"))
        if not all(os.path.exists(p) for p in (p1, p2, pt)):
            continue
        c1, c2, t = load(p1), load(p2), load(pt)
        E = N_ENCODER
        nrm = lambda a: math.sqrt(sum(x * x for x in a))
        w("| %s | %.4f | %.4f | %.4f | %.4f / %.4f | %.4f / %.4f | %.1f / %.1f / %.1f | %s / %s |" % (
            m, cos(c1, c2), cos(c1, t), cos(c2, t), cos(c1[E:], c2[E:]), cos(c1[E:], t[E:]),
            cos(c1[:E], c2[:E]), cos(c1[:E], t[:E]), nrm(c1), nrm(c2), nrm(t),
            fmt(statistics.mean(gb.get((m, "c"), [float("nan")])), 2),
            fmt(statistics.mean(gb.get((m, "torch"), [float("nan")])), 2)))
    w("")

# ---------------------------------------------------------------------------------------------
w("## 7. Gaps, where the time goes, and what would close them")
w("")
notes = []
if sir:
    notes.append(
        "**Library share.** libbsvi's own work in a bsvi-9-sir step is %s ms of %s ms (%s%%): "
        "drawing B·d·(k+1) = 50,000 Gaussians, forming z, the SVI updates and the buffer, "
        "linear in B, d and k (section 1: %s ns per point x dim x slot with a trivial model). "
        "The rest of the step is the host's: %s%% in GEMMs, %s%% in its element-wise loops. "
        "Once the example moved to float32 its step became about 3x shorter while the library's "
        "cost stayed, so its share rose; the library core's remaining cost is the normal draws "
        "(Philox4x32-10 and AS 241, with libm's log for the tails, about 7 ns per draw alone) "
        "and exp of the log-std. What would close it: an AVX-512 normals kernel (a third code "
        "path to keep bitwise equal), or fewer draws per unit (not possible without changing "
        "the streams)." % (
            fmt(sir["lib_own"], 2), fmt(sir["total"], 1), fmt(lib_share, 2), fmt(core_ns, 1),
            fmt(100 * sir["gemm"] / sir["total"], 0),
            fmt(100 * (sir["total"] - sir["gemm"] - sir["lib_own"]) / sir["total"], 0)))
if fl:
    parts = []
    for r in train_rows:
        if r["m"] in splits and r["floor"] == r["floor"]:
            sp_ = splits[r["m"]]
            parts.append("%s: step %s ms = GEMMs %s (floor %s) + libbsvi %s + other host %s" % (
                r["m"], fmt(sp_["total"], 1), fmt(sp_["gemm"], 1), fmt(r["floor"], 1),
                fmt(sp_["lib_own"], 1), fmt(sp_["total"] - sp_["gemm"] - sp_["lib_own"], 1)))
    notes.append(
        "**GEMM floor.** Per method (ms, the faster thread setting): " + "; ".join(parts) +
        ". A step's GEMMs inside the step take longer than the same calls replayed alone "
        "(the activations stream through the caches between them); the remainder is the "
        "example's element-wise work (tanh, the pixel likelihood with one exp and one log1p "
        "per pixel, AMSGrad over 0.42 M parameters and four state arrays) and libbsvi.")
if have_torch and worst:
    slow = [r for r in train_rows if r["fair"] < 2.0]
    if slow:
        notes.append(
            "**Speed-up below 2x** for %s. Both sides call the same OpenBLAS sgemm (with the "
            "same kernel set: the C programs and the peer's best setting both use "
            "OPENBLAS_CORETYPE=SkylakeX on this CPU); a GEMM-bound step can only be 2x faster "
            "than the peer if the peer's own overhead (operator dispatch, autograd, allocator) "
            "is as large as its GEMM time. The C side's margin is largest in the SVI methods' "
            "ten small steps, where PyTorch pays per operator." % ", ".join(
                "%s (%.2fx)" % (r["m"], r["fair"]) for r in slow))
    else:
        notes.append("**Speed-up.** The C step is at least 2x faster than the peer for every "
                     "method in this run.")
if M.get("openblas_core", "").startswith("Prescott ->"):
    notes.append(
        "**OpenBLAS kernels.** OpenBLAS 0.3.21 does not recognise this CPU and falls back to "
        "its SSE3 Prescott kernels (%s); `bench_train_step` and `vae` restart themselves with "
        "OPENBLAS_CORETYPE set (examples/vae/blas_env.c), the peer's sweep tries both. A user "
        "who does not set it loses about 3x on every GEMM, on both sides." % M["openblas_core"])
for what, r in eval_rows.items():
    if not r["rows"]:
        continue
    sp = split_of(r["rows"])
    if sp["total"] > 0:
        hng = sp["total"] - sp["gemm"] - sp["lib_own"]
        notes.append(
            "**Evaluation %s.** Per image: %s ms, of which libbsvi's own %s%%, GEMMs %s%%, the "
            "example's element-wise work (likelihood, tanh) %s%%; %s GFLOP of GEMMs per image." % (
                what, fmt(sp["total"], 1), fmt(100 * sp["lib_own"] / sp["total"], 1),
                fmt(100 * sp["gemm"] / sp["total"], 0), fmt(100 * hng / sp["total"], 0),
                fmt(sp["gemm_gflop"], 2)))
for n in notes:
    w("- " + n)
w("")

# ---------------------------------------------------------------------------------------------
w("## Performance knobs for a host")
w("")
w("- **Threads.** libbsvi itself is single-threaded (no threads, no OpenMP, no BLAS calls) and "
  "its results do not depend on any thread count. All parallelism is in the host's networks: "
  "`OPENBLAS_NUM_THREADS` sets OpenBLAS's threads (default: one per core). With batch 100 the "
  "example's GEMMs are small, so compare `OPENBLAS_NUM_THREADS=1` and `=2` (the 1-thread "
  "columns above) on your machine; on a shared or loaded machine use 1. Never run more BLAS "
  "threads than free cores: a thread that loses its core stalls every GEMM call. For the "
  "PyTorch peer, `torch.set_num_threads` (OpenMP) and OpenBLAS's threads add up: on 2 cores "
  "set one of them to 1 (`OMP_NUM_THREADS=1` or `OPENBLAS_NUM_THREADS=1`).")
w("- **Parallel data points.** Handles are per thread and a model can be shared (model.h), "
  "and draws depend only on (seed, call, data-point id, step): a host can split a batch "
  "across threads with `bsvi_*_set_stream(counter, id_offset)` and get bitwise the same "
  "result as one thread (section 5). libbsvi does not do this itself.")
w("- **Batch size.** libbsvi's cost is linear in B (section 1), so its share does not change "
  "with the batch; the host's GEMMs get more efficient with more rows per call. Each step "
  "hands the decoder B rows (B·K for IWAE, B·(k+1) decoder targets for BSVI), so larger "
  "batches raise the GEMM rate until the rows no longer fit in cache.")
w("- **Evaluation chunk.** `bsvi_evaluator_set_chunk_rows` bounds memory (the example uses "
  "2000 rows); larger chunks mean larger GEMMs, at chunk x (activations) memory.")
w("- **The host's element-wise work.** Once the GEMMs are batched, a VAE step's remaining "
  "cost is the activations and the pixel likelihood. Scalar libm calls (`tanh`, `exp`, "
  "`log1p`) took about two thirds of the example's step; examples/vae/vmath.c shows a "
  "portable way out: branch-free kernels the compiler vectorises (selects instead of "
  "branches, polynomial exp/log1p, `-fno-trapping-math -fno-math-errno` so that they "
  "if-convert, `-ffp-contract=off` and fixed-order sums so that results do not depend on "
  "the instruction set), compiled for AVX2 and SSE2 with GCC's `target_clones`.")
w("- **What libbsvi does not thread:** the Gaussian draws, the SVI updates, the estimators and "
  "the evaluator's streaming; they are linear in B·d·(k+1) and a few percent of a VAE step.")
w("")

# ---------------------------------------------------------------------------------------------
w("## Exact commands")
w("")
w("```")
w(("%s " % M["overrides"].strip() if M.get("overrides", "").strip() else "")
  + "bash scripts/bench.sh" + (" --quick" if quick else "")
  + "        # everything below, then bench/report.py writes this file")
for line in open(os.path.join(RES, "commands.txt")):
    w(line.rstrip())
w("/usr/bin/python3 bench/report.py build-bench/bench-results docs")
w("```")
w("")
w("Environment of the timed runs: `OPENBLAS_NUM_THREADS=%s` unless a command sets it, the "
  "peer with `--threads %s` (`torch.set_num_threads`). Run time of the whole suite: %s s." % (
      M.get("threads", "2"), M.get("threads", "2"), M.get("seconds", "?")))

w("")
w("The LibTorch host (examples/torch) is timed beside the C host and the peer by "
  "`bench/torch_step.sh`; its numbers and where its time goes are in docs/torch.md.")

with open(os.path.join(DOCS, "performance.md"), "w") as f:
    f.write("\n".join(out) + "\n")
