#!/usr/bin/env python3
"""Regenerate the tables of docs/results.md and the plots docs/img/*.png from the runs.

    python3 scripts/make-results.py [--runs runs] [--results results/runs] [--doc docs/results.md]
                                    [--img docs/img]

First copies the small per-run files of runs/ (git-ignored: it also holds the checkpoints)
into results/runs/ (tracked), so that the numbers behind docs/results.md stay in the
repository: runs/DATA-METHOD-sSEED/log.csv (the per-epoch log of `vae train`), eval.csv (the
CSV of `vae eval`, written by scripts/run-experiments.sh), train.out, and runs/*-svi-sweep.txt,
runs/queue.log, and any runs/NAME/eval-N.out (evaluations on other test subsets, quoted by
hand). Then reads results/runs/ only. A data set with no runs keeps its blocks.
In docs/results.md, the text between `<!-- results:KEY -->` and `<!-- /results:KEY -->` is
replaced (KEY: DATA for each data set's tables, `DATA-fig6` / `DATA-curves` for figure
captions are left to the prose); everything else in the file is hand-written and kept.
Plots are drawn with gnuplot (pngcairo, or png when cairo is missing). Python 3 stdlib only.

Reconstruction*: the table reports -E_q*[log p(x|z)] = -(ELBO* + KL*) in nats, so that
ELBO* = -(KL* + Reconstruction*). The `recon_star` column that `vae eval` prints is
KL* - ELBO* (see docs/results.md, "Known problems") and is not used.
"""
import argparse
import csv
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

DATASETS = ["mnist", "fashion-mnist", "fashion-mnist-gray"]
METHODS = ["vae", "iwae", "svi", "bsvi", "bsvi-ds", "bsvi-sir", "bsvi-sir-pi"]
SVI_METHODS = ["svi", "bsvi", "bsvi-ds", "bsvi-sir", "bsvi-sir-pi"]
LABEL = {"vae": "VAE", "iwae": "IWAE-10", "svi": "SVI-10", "bsvi": "BSVI-9",
         "bsvi-ds": "BSVI-9-DS", "bsvi-sir": "BSVI-9-SIR", "bsvi-sir-pi": "BSVI-9-SIR-pi"}
BOUND = {"vae": "ELBO", "iwae": "IWAE-10", "svi": "SVI-10", "bsvi": "BSVI-9",
         "bsvi-ds": "BSVI-9", "bsvi-sir": "BSVI-9", "bsvi-sir-pi": "BSVI-9"}
COLOR = {"vae": "#7f7f7f", "iwae": "#1f77b4", "svi": "#d62728", "bsvi": "#9467bd",
         "bsvi-ds": "#8c564b", "bsvi-sir": "#2ca02c", "bsvi-sir-pi": "#ff7f0e"}
NAME_RE = re.compile(r"^(%s)-(%s)-s(\d+)$" % (
    "|".join(sorted(DATASETS, key=len, reverse=True)),
    "|".join(sorted(METHODS, key=len, reverse=True))))


def fnum(s):
    try:
        v = float(s)
        return v if math.isfinite(v) else None
    except (TypeError, ValueError):
        return None


def read_runs_dir(d, name):
    """One run directory (NAME = DATA-METHOD-sSEED): {'name', 'seed', 'log', 'eval'}, or None
    when it has no log. eval keeps every column of eval.csv; the numeric ones as floats."""
    m = NAME_RE.match(name)
    logp = os.path.join(d, "log.csv")
    if not m or not os.path.isfile(logp):
        return None
    with open(logp, newline="") as f:
        byep = {}
        for r in csv.DictReader(f):
            row = {k: fnum(v) for k, v in r.items()}
            if row.get("epoch") is not None:
                byep[int(row["epoch"])] = row  # a repeated epoch (resume after a cut): the last
        rows = [byep[e] for e in sorted(byep)]
    if not rows:
        return None
    ev = None
    evp = os.path.join(d, "eval.csv")
    if os.path.isfile(evp):
        with open(evp, newline="") as f:
            er = list(csv.DictReader(f))
        if er:
            ev = dict(er[0])
            for k in ("iwae_ll", "bsvi_ll", "elbo_star", "kl_star", "recon_star",
                      "eval_seconds", "train_seconds", "n_test", "iwae_samples",
                      "bsvi_weights", "epoch"):
                ev[k] = fnum(ev.get(k))
            if ev["elbo_star"] is not None and ev["kl_star"] is not None:
                ev["recon_fixed"] = -(ev["elbo_star"] + ev["kl_star"])
            else:
                ev["recon_fixed"] = None
    return {"name": name, "seed": int(m.group(3)), "log": rows, "eval": ev}


def read_runs(runs_dir):
    runs = {}  # (data, method) -> list of run dicts
    if not os.path.isdir(runs_dir):
        return runs
    for name in sorted(os.listdir(runs_dir)):
        m = NAME_RE.match(name)
        if not m:
            continue
        one = read_runs_dir(os.path.join(runs_dir, name), name)
        if one is not None:
            runs.setdefault((m.group(1), m.group(2)), []).append(one)
    for v in runs.values():
        v.sort(key=lambda r: r["seed"])
    return runs


def collect(runs_dir, results_dir):
    """Copy the small per-run files of runs_dir into results_dir (newer files win)."""
    if not os.path.isdir(runs_dir):
        return 0
    n = 0
    for name in sorted(os.listdir(runs_dir)):
        src = os.path.join(runs_dir, name)
        files = []
        if NAME_RE.match(name) and os.path.isdir(src):
            extra = sorted(f for f in os.listdir(src)
                           if re.match(r"^eval-\d+\.(out|csv)$", f))  # other test subsets
            files = [(os.path.join(src, f), os.path.join(results_dir, name, f))
                     for f in ["log.csv", "eval.csv", "train.out"] + extra]
        elif name.endswith("-svi-sweep.txt") or name == "queue.log":
            files = [(src, os.path.join(results_dir, name))]
        for a, b in files:
            if not os.path.isfile(a):
                continue
            if os.path.isfile(b) and os.path.getmtime(b) >= os.path.getmtime(a):
                continue
            os.makedirs(os.path.dirname(b), exist_ok=True)
            shutil.copy2(a, b)
            n += 1
    return n


def mean_sd(xs, digits=2):
    xs = [x for x in xs if x is not None]
    if not xs:
        return "—"
    m = statistics.fmean(xs)
    if len(xs) == 1:
        return f"{m:.{digits}f}"
    return f"{m:.{digits}f} ± {statistics.stdev(xs):.{digits}f}"


def fmt(x, digits=2):
    return "—" if x is None else f"{x:.{digits}f}"


def hms(sec):
    sec = int(round(sec))
    return f"{sec // 3600}:{sec % 3600 // 60:02d}:{sec % 60:02d}"


def tables(data, runs):
    methods = [m for m in METHODS if (data, m) in runs]
    out = []
    if not methods:
        return "(not run)\n"
    # ---- main table
    n_test = sorted({int(r["eval"]["n_test"]) for m in methods for r in runs[(data, m)]
                     if r["eval"] and r["eval"]["n_test"]})
    samples = sorted({(int(r["eval"]["iwae_samples"]), int(r["eval"]["bsvi_weights"]))
                      for m in methods for r in runs[(data, m)] if r["eval"]})
    iw, bw = samples[0] if len(samples) == 1 else ("S", "K")
    out.append(f"Test set: first {', '.join(map(str, n_test)) or '—'} test images. "
               f"Mean ± standard deviation over the seeds (nats; higher is better for the "
               f"log-likelihoods and ELBO*, lower for KL* and Reconstruction*).\n")
    out.append(f"| method | seeds | epochs | log p(x), IWAE-{iw} | log p(x), BSVI-{bw} | "
               f"ELBO* | KL* | Reconstruction* |")
    out.append("|---|---|---|---|---|---|---|---|")
    for m in methods:
        rs = [r for r in runs[(data, m)] if r["eval"]]
        if not rs:
            continue
        eps = sorted({int(r["eval"]["epoch"]) for r in rs})
        last = sorted({int(r["log"][-1]["epoch"]) for r in rs})
        ep = "best of " + "/".join(map(str, last)) if eps != last else "/".join(map(str, last))
        out.append(f"| {LABEL[m]} | {','.join(str(r['seed']) for r in rs)} | {ep} | "
                   f"{mean_sd([r['eval']['iwae_ll'] for r in rs])} | "
                   f"{mean_sd([r['eval']['bsvi_ll'] for r in rs])} | "
                   f"{mean_sd([r['eval']['elbo_star'] for r in rs])} | "
                   f"{mean_sd([r['eval']['kl_star'] for r in rs])} | "
                   f"{mean_sd([r['eval']['recon_fixed'] for r in rs])} |")
    out.append("")
    # ---- per seed
    out.append("Per run (best.ckpt = the epoch with the best validation bound):\n")
    out.append("| run | best epoch | IWAE | BSVI | ELBO* | KL* | Recon* | train s | eval s |")
    out.append("|---|---|---|---|---|---|---|---|---|")
    for m in methods:
        for r in runs[(data, m)]:
            e = r["eval"]
            if not e:
                out.append(f"| {r['name']} | (not evaluated) | | | | | | "
                           f"{fmt(r['log'][-1]['wall_seconds'], 0)} | |")
                continue
            out.append(f"| {r['name']} | {int(e['epoch'])} | {fmt(e['iwae_ll'])} | "
                       f"{fmt(e['bsvi_ll'])} | {fmt(e['elbo_star'])} | {fmt(e['kl_star'])} | "
                       f"{fmt(e['recon_fixed'])} | {fmt(r['log'][-1]['wall_seconds'], 0)} | "
                       f"{fmt(e['eval_seconds'], 0)} |")
    out.append("")
    # ---- paired differences against svi
    if (data, "svi") in runs:
        base = {r["seed"]: r for r in runs[(data, "svi")] if r["eval"]}
        lines = []
        for m in methods:
            if m == "svi":
                continue
            diffs = {"iwae_ll": [], "bsvi_ll": [], "elbo_star": []}
            seeds = []
            for r in runs[(data, m)]:
                b = base.get(r["seed"])
                if not (r["eval"] and b):
                    continue
                seeds.append(r["seed"])
                for k in diffs:
                    diffs[k].append(r["eval"][k] - b["eval"][k])
            if seeds:
                per = ", ".join(f"{d:+.2f}" for d in diffs["iwae_ll"])
                lines.append(f"| {LABEL[m]} − SVI-10 | {','.join(map(str, seeds))} | "
                             f"{mean_sd(diffs['iwae_ll'])} ({per}) | {mean_sd(diffs['bsvi_ll'])} | "
                             f"{mean_sd(diffs['elbo_star'])} |")
        if lines:
            out.append("Paired differences against SVI-10 with the same seed (the seed fixes "
                       "the initialisation, the shuffling and the binarisation; positive = better "
                       "than SVI-10):\n")
            out.append("| difference | seeds | IWAE log p(x) (per seed) | BSVI log p(x) | ELBO* |")
            out.append("|---|---|---|---|---|")
            out.extend(lines)
            out.append("")
    # ---- training summary (finished, i.e. evaluated, runs only)
    runs = {k: [r for r in v if r["eval"]] for k, v in runs.items()}
    methods = [m for m in methods if runs.get((data, m))]
    out.append("Training (per method, mean ± sd over the evaluated seeds; the validation bound is each "
               "method's own training bound on the 10,000 validation images, so the columns "
               "compare epochs, not methods):\n")
    out.append("| method | epochs | s / epoch | train wall | final train bound | "
               "best validation bound (bound) | SVI-k − SVI-0 | BSVI-k − SVI-k | E_pi[i/k] |")
    out.append("|---|---|---|---|---|---|---|---|---|")
    for m in methods:
        rs = runs[(data, m)]
        eps = [r["log"][-1]["epoch"] for r in rs]
        per_ep = [r["log"][-1]["wall_seconds"] / r["log"][-1]["epoch"] for r in rs]
        walls = [r["log"][-1]["wall_seconds"] for r in rs]
        trb = [r["log"][-1]["train_bound"] for r in rs]
        vb = [max(x["valid_bound"] for x in r["log"] if x["valid_bound"] is not None) for r in rs]
        if m in SVI_METHODS:
            g1 = mean_sd([r["log"][-1]["svik"] - r["log"][-1]["svi0"] for r in rs])
            g2 = mean_sd([r["log"][-1]["bsvik"] - r["log"][-1]["svik"] for r in rs])
            mp = mean_sd([r["log"][-1]["mean_pos"] for r in rs])
        else:
            g1 = g2 = mp = "—"
        out.append(f"| {LABEL[m]} | {'/'.join(str(int(e)) for e in sorted(set(eps)))} | "
                   f"{statistics.fmean(per_ep):.0f} | {hms(statistics.fmean(walls))} | "
                   f"{mean_sd(trb)} | {mean_sd(vb)} ({BOUND[m]}) | {g1} | {g2} | {mp} |")
    tr = sum(r["log"][-1]["wall_seconds"] for m in methods for r in runs[(data, m)])
    ev = sum(r["eval"]["eval_seconds"] or 0 for m in methods for r in runs[(data, m)])
    nr = sum(len(runs[(data, m)]) for m in methods)
    out.append("")
    out.append(f"Process time of the {nr} evaluated runs, summed (each process single-threaded; "
               f"the machine and how many ran at once are under 'What was run'): training "
               f"{hms(tr)}, evaluation {hms(ev)}.\n")
    out.append("(SVI-k − SVI-0, BSVI-k − SVI-k and E_pi[i/k] at the last epoch, means over "
               "that epoch's training minibatches; for SVI-10, BSVI-k is the uniform-pi "
               "mixture over its own trajectory, a diagnostic it does not train.)\n")
    return "\n".join(out)


PUBLISHED = {  # Burda, Grosse, Salakhutdinov, "Importance Weighted Autoencoders" (ICLR 2016),
    # Table 1, one stochastic layer (784-200-200-50), MNIST, 3,280 epochs, full 10,000-image
    # test set, log p(x) estimated with IWAE-5000
    "vae": ("VAE, k = 1", -86.76),
    "iwae": ("IWAE, k = 50", -84.78),
}


PUBLISHED_GRAY = {  # Shu, Bui, Whang, Ermon, "Buffered Stochastic Variational Inference"
    # (AISTATS 2019), Table 3, Fashion-MNIST gray levels, discretised logistic likelihood with a
    # PixelCNN decoder (not our MLP), up to 200k steps with early stopping, 4 replicates,
    # log-likelihood by BSVI-500
    "vae": ("VAE", -1733.86, 0.84),
    "iwae": ("IWAE-k'", -1705.28, 0.66),
    "svi": ("SVI-k'", -1710.15, 2.51),
    "bsvi-sir": ("BSVI-k-SIR", -1699.44, 0.45),
}


def published_gray(runs):
    data = "fashion-mnist-gray"
    out = ["| method (ours) | ours: BSVI-500 | epochs | test images | BSVI paper (PixelCNN "
           "decoder) | ours − paper |", "|---|---|---|---|---|---|"]
    for m in METHODS:
        rs = [r for r in runs.get((data, m), []) if r["eval"]]
        if not rs:
            continue
        ll = [r["eval"]["bsvi_ll"] for r in rs]
        eps = "/".join(sorted({str(int(r["log"][-1]["epoch"])) for r in rs}))
        nt = "/".join(sorted({str(int(r["eval"]["n_test"])) for r in rs}))
        if m in PUBLISHED_GRAY:
            name, v, sd = PUBLISHED_GRAY[m]
            out.append(f"| {LABEL[m]} | {mean_sd(ll)} | {eps} | {nt} | {v:.2f} ± {sd:.2f} "
                       f"({name}) | {statistics.fmean(ll) - v:+.2f} |")
        else:
            out.append(f"| {LABEL[m]} | {mean_sd(ll)} | {eps} | {nt} | — | |")
    return "\n".join(out) + "\n"


def published(data, runs):
    if data == "fashion-mnist-gray":
        return published_gray(runs)
    if data != "mnist":
        return ""
    out = ["| method (ours) | ours: IWAE-5000 | epochs | test images | IWAE paper | "
           "its epochs | its test images | ours − paper |", "|---|---|---|---|---|---|---|---|"]
    for m in METHODS:
        rs = [r for r in runs.get((data, m), []) if r["eval"]]
        if not rs:
            continue
        ll = [r["eval"]["iwae_ll"] for r in rs]
        eps = "/".join(sorted({str(int(r["log"][-1]["epoch"])) for r in rs}))
        nt = "/".join(sorted({str(int(r["eval"]["n_test"])) for r in rs}))
        if m in PUBLISHED:
            name, v = PUBLISHED[m]
            out.append(f"| {LABEL[m]} | {mean_sd(ll)} | {eps} | {nt} | {v:.2f} ({name}) | "
                       f"3,280 | 10,000 | {statistics.fmean(ll) - v:+.2f} |")
        else:
            out.append(f"| {LABEL[m]} | {mean_sd(ll)} | {eps} | {nt} | — | | | |")
    return "\n".join(out) + "\n"


def write_series(path, rows):
    with open(path, "w") as f:
        for r in rows:
            f.write(" ".join("NaN" if v is None else repr(v) for v in r) + "\n")


def seed_stats(rs, fn):
    """Per-epoch mean and sd over the seeds of fn(logrow)."""
    by_ep = {}
    for r in rs:
        for row in r["log"]:
            v = fn(row)
            if v is not None:
                by_ep.setdefault(int(row["epoch"]), []).append(v)
    out = []
    for e in sorted(by_ep):
        xs = by_ep[e]
        out.append((e, statistics.fmean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0))
    return out


def diff(a, b):
    return lambda r: (r[a] - r[b]) if r[a] is not None and r[b] is not None else None


def gnuplot(script, cwd):
    exe = shutil.which("gnuplot")
    if not exe:
        sys.exit("gnuplot not found (apt-get install -y gnuplot-nox)")
    p = subprocess.run([exe], input=script, text=True, cwd=cwd, capture_output=True)
    if p.returncode != 0:
        sys.exit("gnuplot failed:\n" + p.stderr)


def terminal():
    exe = shutil.which("gnuplot")
    if not exe:
        sys.exit("gnuplot not found (scripts/deps.sh --plots)")
    p = subprocess.run([exe, "-e", "set terminal"], text=True, capture_output=True)
    return "pngcairo" if "pngcairo" in (p.stdout + p.stderr) else "png"


def plots(data, runs, img_dir, tmp_dir):
    runs = {k: [r for r in v if r["eval"]] for k, v in runs.items() if any(r["eval"] for r in v)}
    methods = [m for m in METHODS if (data, m) in runs]
    svim = [m for m in methods if m in SVI_METHODS]
    term = terminal()
    font = "font 'DejaVu Sans,11'" if term == "pngcairo" else ""
    made = []
    if not methods:
        return made

    def panel(title, ylabel, series):
        cmds = []
        for m, fname in series:
            cmds.append(f"'{fname}' using 1:2:3 with yerrorlines lw 2 pt 7 ps 0.8 "
                        f"lc rgb '{COLOR[m]}' title '{LABEL[m]}'")
        return (f"set title \"{title}\"\nset ylabel \"{ylabel}\"\nset xlabel 'epoch' offset 0,0.3\n"
                f"plot {', '.join(cmds)}\n")

    def series(m, key, fn):
        fname = os.path.join(tmp_dir, f"{data}-{m}-{key}.dat")
        write_series(fname, seed_stats(runs[(data, m)], fn))
        return (m, fname)

    def nseeds(ms):
        ns = {len(runs[(data, m)]) for m in ms}
        if len(ns) == 1:
            n = ns.pop()
            return f"{n} seed" + ("s" if n != 1 else "")
        return "seeds: " + ", ".join(f"{LABEL[m]} {len(runs[(data, m)])}" for m in ms)
    # ---- Figure 6
    if svim:
        out = os.path.join(img_dir, f"{data}-fig6.png")
        s = [f"set terminal {term} size 1500,480 {font}", f"set output '{out}'",
             "set grid", "set key bmargin center horizontal", "set bmargin 5.5", "set xtics 1",
             f"set multiplot layout 1,3 title \"{data}: the paper's Figure 6 quantities over "
             f"training (means over each epoch's minibatches; mean ± sd over {nseeds(svim)})\""]
        s.append(panel("SVI-k − SVI-0 (gain of the SVI steps)", "nats",
                       [series(m, "g1", diff("svik", "svi0")) for m in svim]))
        s.append(panel("BSVI-k − SVI-k (gain of the buffer)", "nats",
                       [series(m, "g2", diff("bsvik", "svik")) for m in svim]))
        s.append("set yrange [0:1.05]")
        s.append(panel("E_{/Symbol p}[i/k]", "mean buffer position",
                       [series(m, "mp", lambda r: r["mean_pos"]) for m in svim]))
        s.append("unset multiplot")
        gnuplot("\n".join(s) + "\n", tmp_dir)
        made.append(out)
    # ---- learning curves
    out = os.path.join(img_dir, f"{data}-curves.png")
    have_test = any(row.get("test_iwae") is not None for m in methods
                    for r in runs[(data, m)] for row in r["log"])
    s = [f"set terminal {term} size 1400,1000 {font}", f"set output '{out}'", "set grid",
         "set key bmargin center horizontal", "set bmargin 5.5", "set xtics 1",
         f"set multiplot layout 2,2 title \"{data}: learning curves (mean ± sd over {nseeds(methods)})\""]
    if have_test:
        s.append(panel("test: IWAE-100 on the first 500 test images (log p(x) estimate)",
                       "nats / image",
                       [series(m, "ti", lambda r: r.get("test_iwae")) for m in methods]))
    else:
        s.append("set multiplot next\n")
    s.append(panel("validation: each method's own bound", "nats / image",
                   [series(m, "vb", lambda r: r["valid_bound"]) for m in methods]))
    s.append(panel("validation: ELBO at the encoder (SVI-0)", "nats / image",
                   [series(m, "v0", lambda r: r["valid_svi0"]) for m in svim]) if svim else
             "set multiplot next\n")
    s.append(panel("training bound (epoch mean)", "nats / image",
                   [series(m, "tb", lambda r: r["train_bound"]) for m in methods]))
    s.append("unset multiplot")
    gnuplot("\n".join(s) + "\n", tmp_dir)
    made.append(out)
    return made


PAPER_RE = re.compile(r"^(%s)-(svi|bsvi-sir-pi)-s(\d+)(-.*)?$" % "|".join(
    sorted(DATASETS, key=len, reverse=True)))


def read_pgm(path):
    """A binary 8-bit PGM (vae sample): (width, height, bytes)."""
    with open(path, "rb") as f:
        data = f.read()
    fields, pos = [], 0
    while len(fields) < 4:  # magic, width, height, maxval; '#' comments between
        while data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos) + 1
            continue
        end = pos
        while not data[end:end + 1].isspace():
            end += 1
        fields.append(data[pos:end])
        pos = end
    if fields[0] != b"P5" or fields[3] != b"255":
        raise ValueError(f"{path}: not an 8-bit binary PGM")
    w, h = int(fields[1]), int(fields[2])
    return w, h, data[pos + 1:pos + 1 + w * h]


def figure5(paper_runs, img_dir, tmp_dir):
    """Figure 5: decoder samples of svi beside bsvi-sir-pi (lowest seed with samples.pgm of
    each) per data set, from results/paper/runs/NAME/samples.pgm. Returns {data: caption}."""
    found = {}
    if not os.path.isdir(paper_runs):
        return {}
    for name in sorted(os.listdir(paper_runs)):
        m = PAPER_RE.match(name)
        pgm = os.path.join(paper_runs, name, "samples.pgm")
        if not m or not os.path.isfile(pgm) or m.group(4) != PAPER_STEP.get(m.group(1)):
            continue
        key = (m.group(1), m.group(2))
        seed = int(m.group(3))
        if key not in found or seed < found[key][0]:
            found[key] = (seed, name, pgm)
    term = terminal()
    font = "font 'DejaVu Sans,12'" if term == "pngcairo" else ""
    captions = {}
    for data in DATASETS:
        panels = [(meth, found[(data, meth)]) for meth in ("svi", "bsvi-sir-pi")
                  if (data, meth) in found]
        if not panels:
            continue
        out = os.path.join(img_dir, f"{data}-fig5.png")
        w0, h0, _ = read_pgm(panels[0][1][2])
        s = [f"set terminal {term} noenhanced size {max(len(panels) * 2 * w0 + 40, 640)},"
             f"{2 * h0 + 70} {font}",
             f"set output '{out}'", "unset key", "unset tics", "unset colorbox",
             "set palette gray", "set size ratio -1",
             f"set multiplot layout 1,{len(panels)} title \"{data}: per row one z from the "
             f"prior, its mean image, 6 draws\""]
        names = []
        for meth, (seed, name, pgm) in panels:
            w, h, px = read_pgm(pgm)
            dat = os.path.join(tmp_dir, f"{name}.dat")
            with open(dat, "w") as f:
                for y in range(h - 1, -1, -1):
                    f.write(" ".join(str(px[y * w + x]) for x in range(w)) + "\n")
            s.append(f"set title '{LABEL[meth]} ({name})'")
            s.append(f"plot '{dat}' matrix with image")
            names.append(f"{LABEL[meth]}: {name}")
        s.append("unset multiplot")
        gnuplot("\n".join(s) + "\n", tmp_dir)
        captions[data] = out, names
    return captions


# ---------------------------------------------------------------------------------------------
# The paper-budget grid (issue 10): results/paper/runs/NAME, NAME = DATA-METHOD-sSEED[-etaX],
# final when DONE and eval.csv on the full test set exist. Each data set's tables use the rows
# at its grid step (PAPER_STEP); rows at other steps are listed by the status table only.

PAPER_STEP = {"mnist": "-eta2e-3", "fashion-mnist": "-eta2e-3", "fashion-mnist-gray": "-eta0.1"}
MAIN_METHODS = ["vae", "iwae", "svi", "bsvi-sir", "bsvi-sir-pi"]
APPENDIX_METHODS = ["svi", "bsvi", "bsvi-ds", "bsvi-sir", "bsvi-sir-pi"]
# The data sets whose grid has the appendix variants bsvi and bsvi-ds (issue 10: binarised only)
VARIANT_DATASETS = ("mnist", "fashion-mnist")
NOT_IN_GRID = "the grid runs bsvi and bsvi-ds on binarised data only"
# Figure 4's generalisation gap: train − valid bound averaged over the last epochs (one epoch's
# gap moves by 0.2-0.3 nats from epoch to epoch)
GAP_EPOCHS = 10
PAPER_PATIENCE = 20
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
        9: 2.262}  # two-sided 95% Student t quantiles by degrees of freedom


def grid_runs(paper_dir, data):
    """Final runs of the grid for one data set at its step, {(data, method): [run]} as
    read_runs gives, each run also with 'early_stop' (True when train.out says so)."""
    tag = PAPER_STEP[data]
    out = {}
    if not os.path.isdir(paper_dir):
        return out
    for name in sorted(os.listdir(paper_dir)):
        if not name.endswith(tag):
            continue
        base = name[:-len(tag)]
        m = NAME_RE.match(base)
        d = os.path.join(paper_dir, name)
        if not m or m.group(1) != data or not os.path.isfile(os.path.join(d, "DONE")):
            continue
        one = read_runs_dir(d, base)
        if one is None or one["eval"] is None or (one["eval"]["n_test"] or 0) < 10000:
            continue
        one["name"] = name
        tr = os.path.join(d, "train.out")
        one["early_stop"] = os.path.isfile(tr) and "early stop" in open(tr).read()
        out.setdefault((data, m.group(2)), []).append(one)
    for v in out.values():
        v.sort(key=lambda r: r["seed"])
    return out


def best_ll(ev):
    """The tighter of the two log-likelihood lower bounds (IWAE-5000, BSVI-500) of a run."""
    xs = [x for x in (ev["iwae_ll"], ev["bsvi_ll"]) if x is not None]
    return max(xs) if xs else None


def paired(runs, data, a, b, key):
    """Per seed: key(run of a) - key(run of b), for the seeds both have."""
    rb = {r["seed"]: r for r in runs.get((data, b), [])}
    return [(r["seed"], key(r) - key(rb[r["seed"]])) for r in runs.get((data, a), [])
            if r["seed"] in rb and key(r) is not None and key(rb[r["seed"]]) is not None]


def paper_tables(data, runs):
    methods = [m for m in METHODS if (data, m) in runs]
    if not methods:
        return "No final rows yet.\n"
    out = []
    main = [m for m in MAIN_METHODS if (data, m) in runs]
    out.append("Full test set (10,000 images), best-validation checkpoint of each run; mean ± sd "
               "over the seeds (nats). *Best bound* is the larger of the run's two lower bounds "
               "(IWAE-5000 and BSVI-500); Reconstruction* = −(ELBO* + KL*).\n")
    out.append("| method | seeds | steps | log p(x), IWAE-5000 | log p(x), BSVI-500 | best bound | "
               "ELBO* | KL* | Reconstruction* |")
    out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for m in main:
        rs = runs[(data, m)]
        steps = "/".join(sorted({str(int(r["log"][-1]["step"])) for r in rs}))
        out.append(f"| {LABEL[m]} | {','.join(str(r['seed']) for r in rs)} | {steps} | "
                   f"{mean_sd([r['eval']['iwae_ll'] for r in rs])} | "
                   f"{mean_sd([r['eval']['bsvi_ll'] for r in rs])} | "
                   f"{mean_sd([best_ll(r['eval']) for r in rs])} | "
                   f"{mean_sd([r['eval']['elbo_star'] for r in rs])} | "
                   f"{mean_sd([r['eval']['kl_star'] for r in rs])} | "
                   f"{mean_sd([r['eval']['recon_fixed'] for r in rs])} |")
    out.append("")
    if (data, "svi") in runs:
        lines = []
        for m in methods:
            if m == "svi":
                continue
            d_iw = paired(runs, data, m, "svi", lambda r: r["eval"]["iwae_ll"])
            if not d_iw:
                continue
            d_bs = paired(runs, data, m, "svi", lambda r: r["eval"]["bsvi_ll"])
            d_be = paired(runs, data, m, "svi", lambda r: best_ll(r["eval"]))
            d_el = paired(runs, data, m, "svi", lambda r: r["eval"]["elbo_star"])
            per = ", ".join(f"{d:+.2f}" for _, d in d_iw)
            lines.append(f"| {LABEL[m]} − SVI-10 | {','.join(str(s) for s, _ in d_iw)} | "
                         f"{mean_sd([d for _, d in d_iw])} ({per}) | "
                         f"{mean_sd([d for _, d in d_bs])} | {mean_sd([d for _, d in d_be])} | "
                         f"{mean_sd([d for _, d in d_el])} |")
        if lines:
            out.append("Paired differences against SVI-10 of the same seed (positive = better "
                       "than SVI-10):\n")
            out.append("| difference | seeds | IWAE-5000 (per seed) | BSVI-500 | best bound | ELBO* |")
            out.append("|---|---|---:|---:|---:|---:|")
            out.extend(lines)
            out.append("")
    out.append("Per run: steps trained, whether early stopping (patience "
               f"{PAPER_PATIENCE} epochs) fired, the best-validation epoch, the IWAE-5000 "
               "importance-sampling diagnostics of the encoder proposal (mean Pareto k-hat, "
               "share of test images with k-hat > 0.7, mean ESS of 5,000) and the process times:\n")
    out.append("| run | steps | early stop | best epoch | IWAE-5000 | BSVI-500 | ELBO* | KL* | "
               "k-hat mean | k-hat > 0.7 | ESS | train | eval |")
    out.append("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for m in methods:
        for r in runs[(data, m)]:
            e = r["eval"]
            last = r["log"][-1]
            bad = int(last["epoch"]) - int(e["epoch"])
            es = "yes" if r["early_stop"] else f"no ({bad} epoch{'s' if bad != 1 else ''} since best)"
            kh = fnum(e.get("iwae_khat_mean"))
            out.append(f"| {r['name']} | {int(last['step'])} | {es} | {int(e['epoch'])} | "
                       f"{fmt(e['iwae_ll'])} | {fmt(e['bsvi_ll'])} | {fmt(e['elbo_star'])} | "
                       f"{fmt(e['kl_star'])} | {fmt(kh)} | "
                       f"{fmt(fnum(e.get('iwae_khat_gt07')) * 100, 1) + '%' if fnum(e.get('iwae_khat_gt07')) is not None else '—'} | "
                       f"{fmt(fnum(e.get('iwae_ess_mean')), 1)} | "
                       f"{hms(last['wall_seconds'])} | {hms(e['eval_seconds'] or 0)} |")
    out.append("")
    tr = sum(r["log"][-1]["wall_seconds"] for m in methods for r in runs[(data, m)])
    ev = sum(r["eval"]["eval_seconds"] or 0 for m in methods for r in runs[(data, m)])
    nr = sum(len(runs[(data, m)]) for m in methods)
    out.append(f"Process time of these {nr} final runs, summed (single-threaded processes, two at "
               f"a time): training {hms(tr)}, evaluation {hms(ev)}. The train column is the "
               f"run's `wall_seconds` (resumed runs: the sum of their pieces).\n")
    return "\n".join(out)


def paper_appendix(data, runs):
    """The appendix table: every BSVI variant beside SVI-10, on the seeds the variants share."""
    if not any((data, m) in runs for m in ("bsvi", "bsvi-ds")):
        return ("The variants bsvi and bsvi-ds have no final row yet on this data set; the "
                "table appears when one has.\n")
    seeds = None
    for m in APPENDIX_METHODS:
        if (data, m) in runs:
            s = {r["seed"] for r in runs[(data, m)]}
            seeds = s if seeds is None else seeds & s
    seeds = sorted(seeds or [])
    out = [f"Seed{'s' if len(seeds) != 1 else ''} {', '.join(map(str, seeds)) or '—'} (the "
           "seeds every variant has); paired differences against SVI-10 of the same seed.\n",
           "| method | decoder targets per point | IWAE-5000 | BSVI-500 | ELBO* | KL* | "
           "Reconstruction* | best bound − SVI-10 |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    targets = {"svi": "1 (last point)", "bsvi": "10 (all buffer points, weighted)",
               "bsvi-ds": "10, second sample per step", "bsvi-sir": "1 (resampled)",
               "bsvi-sir-pi": "1 (resampled, optimised pi)"}
    for m in APPENDIX_METHODS:
        rs = [r for r in runs.get((data, m), []) if r["seed"] in seeds]
        if not rs:
            continue
        d = [x for s, x in paired(runs, data, m, "svi", lambda r: best_ll(r["eval"])) if s in seeds]
        out.append(f"| {LABEL[m]} | {targets[m]} | {mean_sd([r['eval']['iwae_ll'] for r in rs])} | "
                   f"{mean_sd([r['eval']['bsvi_ll'] for r in rs])} | "
                   f"{mean_sd([r['eval']['elbo_star'] for r in rs])} | "
                   f"{mean_sd([r['eval']['kl_star'] for r in rs])} | "
                   f"{mean_sd([r['eval']['recon_fixed'] for r in rs])} | "
                   f"{mean_sd(d) if m != 'svi' else ''} |")
    return "\n".join(out) + "\n"


def paper_published(data, runs):
    """Our final rows beside the published numbers of the same architecture (MNIST) or the
    seed paper's table (grayscale Fashion-MNIST, PixelCNN decoder)."""
    if data == "mnist":
        out = ["| method (ours) | ours: IWAE-5000 | ours: epochs (steps) | IWAE paper | its epochs | "
               "ours − paper |", "|---|---:|---:|---|---:|---:|"]
        for m in MAIN_METHODS:
            rs = runs.get((data, m), [])
            if not rs:
                continue
            ll = [r["eval"]["iwae_ll"] for r in rs]
            st = "/".join(sorted({f"{int(r['log'][-1]['epoch'])} ({int(r['log'][-1]['step'])})"
                                  for r in rs}))
            if m in PUBLISHED:
                name, v = PUBLISHED[m]
                out.append(f"| {LABEL[m]} | {mean_sd(ll)} | {st} | {v:.2f} ({name}) | "
                           f"3,280 | {statistics.fmean(ll) - v:+.2f} |")
            else:
                out.append(f"| {LABEL[m]} | {mean_sd(ll)} | {st} | — | | |")
        return "\n".join(out) + "\n"
    if data == "fashion-mnist-gray":
        out = ["| method (ours) | ours: BSVI-500 | ours: steps | BSVI paper, Table 3 (PixelCNN "
               "decoder, up to 200,000 steps) | ours − paper |", "|---|---:|---:|---|---:|"]
        for m in MAIN_METHODS:
            rs = runs.get((data, m), [])
            if not rs:
                continue
            ll = [r["eval"]["bsvi_ll"] for r in rs]
            st = "/".join(sorted({str(int(r["log"][-1]["step"])) for r in rs}))
            if m in PUBLISHED_GRAY:
                name, v, sd = PUBLISHED_GRAY[m]
                out.append(f"| {LABEL[m]} | {mean_sd(ll)} | {st} | {v:.2f} ± {sd:.2f} ({name}) | "
                           f"{statistics.fmean(ll) - v:+.2f} |")
            else:
                out.append(f"| {LABEL[m]} | {mean_sd(ll)} | {st} | — | |")
        return "\n".join(out) + "\n"
    return ""


def band_panel(title, ylabel, series, yrange=None):
    """A gnuplot panel of mean lines with a ± sd band per series (many epochs)."""
    cmds = []
    for m, fname, label in series:
        cmds.append(f"'{fname}' using 1:($2-$3):($2+$3) with filledcurves fs transparent solid "
                    f"0.2 noborder lc rgb '{COLOR[m]}' notitle")
        cmds.append(f"'{fname}' using 1:2 with lines lw 2 lc rgb '{COLOR[m]}' title '{label}'")
    yr = f"set yrange [{yrange[0]}:{yrange[1]}]\n" if yrange else "set autoscale y\n"
    return (f"set title \"{title}\"\nset ylabel \"{ylabel}\"\nset xlabel 'epoch'\n"
            f"{yr}plot {', '.join(cmds)}\n")


def late_range(stats_list, frac=0.1, pad=0.05):
    """A y range that leaves out the first epochs (frac of the run), so the later curves are
    readable; None when there is nothing."""
    vals = []
    for st in stats_list:
        if not st:
            continue
        emax = max(e for e, _, _ in st)
        vals += [v + s for e, v, s in st if e >= frac * emax] + \
                [v - s for e, v, s in st if e >= frac * emax]
    if not vals:
        return None
    lo, hi = min(vals), max(vals)
    p = (hi - lo) * pad or 0.5
    return (lo - p, hi + p)


def paper_plots(data, runs, img_dir, tmp_dir):
    """Figure 4 (bsvi against bsvi-sir), Figure 6 and the learning curves of the final grid
    runs. Returns {block suffix: png path}."""
    term = terminal()
    font = "font 'DejaVu Sans,11'" if term == "pngcairo" else ""
    made = {}

    def stats(m, key, fn):
        st = seed_stats(runs[(data, m)], fn)
        fname = os.path.join(tmp_dir, f"paper-{data}-{m}-{key}.dat")
        write_series(fname, st)
        return st, (m, fname, f"{LABEL[m]} ({len(runs[(data, m)])} seed"
                    f"{'s' if len(runs[(data, m)]) != 1 else ''})")

    def figure(name, title, layout, size, panels):
        out = os.path.join(img_dir, f"paper-{data}-{name}.png")
        s = [f"set terminal {term} size {size} {font}", f"set output '{out}'", "set grid",
             "set key below horizontal",  # automatic bottom margin: the key goes under the label
             f"set multiplot layout {layout} title \"{title}\""]
        for ptitle, ylabel, ser, yr in panels:
            if not ser:
                s.append("set multiplot next")
                continue
            s.append(band_panel(ptitle, ylabel, [x[1] for x in ser],
                                yr if yr is not None else late_range([x[0] for x in ser])))
        s.append("unset multiplot")
        gnuplot("\n".join(s) + "\n", tmp_dir)
        made[name] = out

    methods = [m for m in METHODS if (data, m) in runs]
    svim = [m for m in methods if m in SVI_METHODS]
    if not methods:
        return made
    # Figure 4: the paper's overfitting argument, training and validation bound over training
    f4 = [m for m in ("bsvi", "bsvi-sir") if (data, m) in runs]
    if len(f4) == 2:
        tr = [stats(m, "f4t", lambda r: r["train_bound"]) for m in f4]
        va = [stats(m, "f4v", lambda r: r["valid_bound"]) for m in f4]
        gap = [stats(m, "f4g", diff("train_bound", "valid_bound")) for m in f4]
        figure("fig4", f"{data}: BSVI-9 against BSVI-9-SIR (the BSVI-9 bound, nats per image)",
               "1,3", "1500,480",
               [("training (epoch mean over the minibatches)", "nats / image", tr, None),
                ("validation (10,000 images, end of epoch)", "nats / image", va, None),
                ("training − validation", "nats / image", gap, None)])
    if svim:
        figure("fig6", f"{data}: the paper's Figure 6 quantities over training (means over each "
               "epoch's minibatches; mean ± sd over the seeds)", "1,3", "1500,480",
               [("SVI-k − SVI-0 (gain of the SVI steps)", "nats",
                 [stats(m, "g1", diff("svik", "svi0")) for m in svim], None),
                ("BSVI-k − SVI-k (gain of the buffer)", "nats",
                 [stats(m, "g2", diff("bsvik", "svik")) for m in svim], None),
                ("E_{/Symbol p}[i/k] (mean buffer position)", "", [stats(m, "mp", lambda r: r["mean_pos"])
                                                for m in svim], (0, 1.05))])
    figure("curves", f"{data}: learning curves over the whole training (mean ± sd over the seeds)",
           "2,2", "1400,1000",
           [("test: IWAE-100 on the first 500 test images", "nats / image",
             [stats(m, "ti", lambda r: r.get("test_iwae")) for m in methods], None),
            ("validation: each method's own bound", "nats / image",
             [stats(m, "vb", lambda r: r["valid_bound"]) for m in methods], None),
            ("validation: ELBO at the encoder (SVI-0)", "nats / image",
             [stats(m, "v0", lambda r: r["valid_svi0"]) for m in svim], None),
            ("training bound (epoch mean)", "nats / image",
             [stats(m, "tb", lambda r: r["train_bound"]) for m in methods], None)])
    return made


def seed_noise(data, runs):
    """Pooled seed-to-seed sd of the best bound over the methods with two or more seeds."""
    ss, df = 0.0, 0
    for m in METHODS:
        xs = [best_ll(r["eval"]) for r in runs.get((data, m), [])]
        xs = [x for x in xs if x is not None]
        if len(xs) >= 2:
            mu = statistics.fmean(xs)
            ss += sum((x - mu) ** 2 for x in xs)
            df += len(xs) - 1
    return math.sqrt(ss / df) if df else None


def judge_better(ds):
    """Verdict on 'a > b' from paired differences ds: 'holds' / 'reversed' when every seed has
    the same sign and the 95% t-interval excludes 0 (two or more seeds), otherwise not
    resolved. One seed: provisional."""
    n = len(ds)
    mu = statistics.fmean(ds)
    if n == 1:
        return ("holds on 1 seed (provisional)" if mu > 0 else "reversed on 1 seed (provisional)"), None
    half = T975[n - 1] * statistics.stdev(ds) / math.sqrt(n)
    if all(d > 0 for d in ds) and mu - half > 0:
        v = "**holds**"
    elif all(d < 0 for d in ds) and mu + half < 0:
        v = "**reversed**"
    else:
        v = "not resolved (the interval contains 0)"
    if n < 3:
        v += f", {n} seeds (provisional)"
    return v, half


def judge_same(ds, noise):
    """Verdict on 'makes no appreciable difference': holds when |mean| < 2 x the seed noise."""
    mu = statistics.fmean(ds)
    if noise is None:
        return "no seed-noise scale yet"
    if abs(mu) < 2 * noise:
        v = "**holds**"
    else:
        v = "**does not hold**"
    if len(ds) < 3:
        v += f" ({len(ds)} seed{'s' if len(ds) != 1 else ''}, provisional)"
    return v


def evidence(ds, half):
    per = ", ".join(f"s{s} {d:+.2f}" for s, d in ds)
    mu = statistics.fmean([d for _, d in ds])
    ci = f" (95% interval ±{half:.2f})" if half is not None else ""
    return f"{mu:+.2f}{ci}; {per}"


def paper_verdicts(grid):
    """One row per claim of the paper and data set, from the paired final rows."""
    claims = [("BSVI-SIR > SVI", "bsvi-sir", "svi", "better"),
              ("BSVI-SIR > IWAE", "bsvi-sir", "iwae", "better"),
              ("SVI > VAE", "svi", "vae", "better"),
              ("BSVI-SIR > VAE", "bsvi-sir", "vae", "better"),
              ("pi optimisation makes no appreciable difference (BSVI-SIR-pi − BSVI-SIR)",
               "bsvi-sir-pi", "bsvi-sir", "same"),
              ("double sampling makes no appreciable difference (BSVI-DS − BSVI)",
               "bsvi-ds", "bsvi", "same")]
    out = ["| claim | data | best bound: paired difference (95% interval; per seed) | "
           "IWAE-5000 | BSVI-500 | verdict |", "|---|---|---|---|---|---|"]
    for claim, a, b, kind in claims:
        for data in DATASETS:
            runs = grid.get(data, {})
            ds = paired(runs, data, a, b, lambda r: best_ll(r["eval"]))
            if not ds and data not in VARIANT_DATASETS and {a, b} & {"bsvi", "bsvi-ds"}:
                out.append(f"| {claim} | {data} | {NOT_IN_GRID} | | | not run |")
                continue
            if not ds:
                out.append(f"| {claim} | {data} | no paired final rows yet | | | waiting |")
                continue
            iw = paired(runs, data, a, b, lambda r: r["eval"]["iwae_ll"])
            bs = paired(runs, data, a, b, lambda r: r["eval"]["bsvi_ll"])
            if kind == "better":
                v, half = judge_better([d for _, d in ds])
            else:
                noise = seed_noise(data, runs)
                n = len(ds)
                half = (T975[n - 1] * statistics.stdev([d for _, d in ds]) / math.sqrt(n)
                        if n >= 2 else None)
                v = judge_same([d for _, d in ds], noise)
                if noise is not None:
                    v += f"; seed noise sd {noise:.2f}"
            out.append(f"| {claim} | {data} | {evidence(ds, half)} | "
                       f"{statistics.fmean([d for _, d in iw]):+.2f} | "
                       f"{statistics.fmean([d for _, d in bs]):+.2f} | {v} |")
    # BSVI overfits where BSVI-SIR does not (Figure 4): the generalisation gap (train − valid,
    # the mean of the last GAP_EPOCHS epochs) against BSVI-SIR's seed spread, and the test set
    def gap(r):
        tail = [x for x in r["log"]
                if x["valid_bound"] is not None and x["train_bound"] is not None][-GAP_EPOCHS:]
        return (statistics.fmean(x["train_bound"] - x["valid_bound"] for x in tail)
                if tail else None)

    for data in DATASETS:
        runs = grid.get(data, {})
        gaps = {(m, r["seed"]): gap(r)
                for m in ("bsvi", "bsvi-sir") for r in runs.get((data, m), [])}
        pairs = {}
        for m in ("bsvi", "bsvi-sir"):
            for r in runs.get((data, m), []):
                if gaps[(m, r["seed"])] is not None and best_ll(r["eval"]) is not None:
                    pairs.setdefault(r["seed"], {})[m] = r
        seeds = [s for s, p in sorted(pairs.items()) if len(p) == 2]
        claim = "BSVI overfits where BSVI-SIR does not (Figure 4)"
        if not seeds and data not in VARIANT_DATASETS:
            out.append(f"| {claim} | {data} | {NOT_IN_GRID} | | | not run |")
            continue
        if not seeds:
            out.append(f"| {claim} | {data} | no paired final rows yet | | | waiting |")
            continue
        sir_gaps = [v for (m, _), v in gaps.items() if m == "bsvi-sir" and v is not None]
        if len(sir_gaps) < 2:
            out.append(f"| {claim} | {data} | BSVI-SIR has fewer than 2 seeds: no seed spread of "
                       f"its gap to compare against | | | waiting |")
            continue
        gap_sd = statistics.stdev(sir_gaps)
        parts, bigger, better = [], 0, 0
        for s in seeds:
            g = {m: gaps[(m, s)] for m in ("bsvi", "bsvi-sir")}
            dtest = best_ll(pairs[s]["bsvi-sir"]["eval"]) - best_ll(pairs[s]["bsvi"]["eval"])
            bigger += g["bsvi"] - g["bsvi-sir"] > 2.0 * gap_sd
            better += dtest > 0
            parts.append(f"s{s}: train − valid gap, mean of the last {GAP_EPOCHS} epochs, "
                         f"BSVI {g['bsvi']:+.2f}, "
                         f"BSVI-SIR {g['bsvi-sir']:+.2f}; test best bound BSVI-SIR − BSVI "
                         f"{dtest:+.2f}")
        n = len(seeds)
        if bigger == n and better == n:
            v = "**holds**" if n >= 3 else f"holds on {n} seed{'s' if n > 1 else ''} (provisional)"
        elif bigger == n:
            v = "partly: BSVI's gap is larger, but BSVI-SIR is not better on the test set"
        elif better == n:
            v = "partly: BSVI-SIR is better on the test set, but BSVI's gap is not larger"
        else:
            v = "**does not hold**" + (" (provisional)" if n < 3 else "")
        sd_note = f"; BSVI-SIR's gap over {len(sir_gaps)} seeds: sd {gap_sd:.2f}"
        out.append(f"| {claim} | {data} | {'; '.join(parts)}{sd_note} | | | {v} |")
    out.append("")
    out.append("Rules (fixed before the rows were in, except Figure 4's, see its last sentence): "
               "a claim 'A > B' **holds** when every seed's "
               "paired difference A − B of the best bound is positive and its 95% Student-t "
               "interval excludes 0, is **reversed** when the same holds with the signs "
               "swapped, and is otherwise not resolved; a claim of 'no appreciable difference' "
               "holds when the mean paired difference is under twice the seed noise (the pooled "
               "seed-to-seed sd of the best bound over the data set's methods with two or more "
               "seeds). Fewer than 3 seeds: provisional. The best bound is the larger of "
               "IWAE-5000 and BSVI-500 for each run, the tighter of two lower bounds; both are "
               "shown, as they can disagree. Figure 4's claim: BSVI's generalisation gap (train "
               f"− validation bound, the mean of the last {GAP_EPOCHS} epochs) is larger when it exceeds "
               "BSVI-SIR's of the same seed by more than twice the seed-to-seed sd of BSVI-SIR's "
               "gap, and BSVI-SIR is better when its test best bound is higher; the claim holds "
               "when both are true on every seed (this rule replaced, after the first bsvi rows, "
               "a comparison of the last epoch's gaps alone, which moves by 0.2-0.3 nats from "
               "one epoch to the next); with fewer than 2 BSVI-SIR seeds it waits.")
    return "\n".join(out) + "\n"


def paper_status_module(root):
    """scripts/paper-status.py as a module (its status table is a block of the page too)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "paper_status", os.path.join(root, "scripts", "paper-status.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def replace_blocks(doc, blocks):
    with open(doc) as f:
        text = f.read()
    for key, body in blocks.items():
        pat = re.compile(r"(<!-- results:%s -->\n).*?(<!-- /results:%s -->)" %
                         (re.escape(key), re.escape(key)), re.S)
        if not pat.search(text):
            print(f"make-results: no block '{key}' in {doc}, skipped", file=sys.stderr)
            continue
        text = pat.sub(lambda mo: mo.group(1) + body.rstrip("\n") + "\n" + mo.group(2), text)
    with open(doc, "w") as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", default="runs")
    ap.add_argument("--results", default="results/runs")
    ap.add_argument("--doc", default="docs/results.md")
    ap.add_argument("--img", default="docs/img")
    ap.add_argument("--paper", default="results/paper/runs",
                    help="finished runs of the paper-budget grid (scripts/queue.sh)")
    a = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    os.chdir(root)
    print(f"make-results: copied {collect(a.runs, a.results)} files from {a.runs}/ to {a.results}/")
    runs = read_runs(a.results)
    if not runs:
        sys.exit(f"make-results: no runs under {a.results}/")
    os.makedirs(a.img, exist_ok=True)
    tmp_holder = tempfile.TemporaryDirectory(prefix="make-results-")
    tmp = tmp_holder.name
    blocks = {}
    for data in DATASETS:
        if any(d == data for d, _ in runs):
            blocks[data] = tables(data, runs)
            if data in ("mnist", "fashion-mnist-gray"):
                blocks[f"{data}-published"] = published(data, runs)
            sw = os.path.join(a.results, f"{data}-svi-sweep.txt")
            if os.path.isfile(sw):
                with open(sw) as f:
                    blocks[f"{data}-sweep"] = "```\n" + f.read().rstrip("\n") + "\n```\n"
            for p in plots(data, runs, os.path.abspath(a.img), os.path.abspath(tmp)):
                print("make-results: wrote", os.path.relpath(p, root))
    grid = {}
    for data in DATASETS:
        g = grid_runs(a.paper, data)
        grid[data] = g
        if not g:
            continue
        blocks[f"paper-{data}"] = paper_tables(data, g)
        if data in VARIANT_DATASETS:
            blocks[f"paper-{data}-appendix"] = paper_appendix(data, g)
        if data in ("mnist", "fashion-mnist-gray"):
            blocks[f"paper-{data}-published"] = paper_published(data, g)
        for key, png in paper_plots(data, g, os.path.abspath(a.img), os.path.abspath(tmp)).items():
            print("make-results: wrote", os.path.relpath(png, root))
            blocks[f"paper-{data}-{key}"] = f"![{data}: {key}](img/{os.path.basename(png)})\n"
    blocks["paper-verdicts"] = paper_verdicts(grid)
    for data, (png, names) in figure5(a.paper, os.path.abspath(a.img),
                                      os.path.abspath(tmp)).items():
        print("make-results: wrote", os.path.relpath(png, root))
        blocks[f"{data}-fig5"] = (f"![{data}: decoder samples](img/{os.path.basename(png)})\n\n"
                                  f"Runs: {'; '.join(names)} (best-validation checkpoints).\n")
    if os.path.isfile(a.doc):
        replace_blocks(a.doc, blocks)
        status = paper_status_module(root)
        summary, table = status.status(root)
        body = f"Runs: {summary}.\n\n{table}\n{status.results_tables(root)}"
        with open(a.doc) as f:
            text = f.read()
        pat = re.compile(r"(<!-- paper:status -->\n).*?(<!-- /paper:status -->)", re.S)
        if pat.search(text):
            with open(a.doc, "w") as f:
                f.write(pat.sub(lambda mo: mo.group(1) + body + mo.group(2), text))
        print("make-results: updated", a.doc)
    else:
        sys.exit(f"make-results: {a.doc} missing (the prose lives there)")


if __name__ == "__main__":
    main()
