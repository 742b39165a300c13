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


def read_runs(runs_dir):
    runs = {}  # (data, method) -> list of run dicts
    if not os.path.isdir(runs_dir):
        return runs
    for name in sorted(os.listdir(runs_dir)):
        m = NAME_RE.match(name)
        if not m:
            continue
        data, method, seed = m.group(1), m.group(2), int(m.group(3))
        d = os.path.join(runs_dir, name)
        logp = os.path.join(d, "log.csv")
        if not os.path.isfile(logp):
            continue
        with open(logp, newline="") as f:
            rows = [{k: fnum(v) for k, v in r.items()} for r in csv.DictReader(f)]
        if not rows:
            continue
        ev = None
        evp = os.path.join(d, "eval.csv")
        if os.path.isfile(evp):
            with open(evp, newline="") as f:
                er = list(csv.DictReader(f))
            if er:
                ev = er[0]
                for k in ("iwae_ll", "bsvi_ll", "elbo_star", "kl_star", "recon_star",
                          "eval_seconds", "train_seconds", "n_test", "iwae_samples",
                          "bsvi_weights", "epoch"):
                    ev[k] = fnum(ev.get(k))
                if ev["elbo_star"] is not None and ev["kl_star"] is not None:
                    ev["recon_fixed"] = -(ev["elbo_star"] + ev["kl_star"])
                else:
                    ev["recon_fixed"] = None
        runs.setdefault((data, method), []).append(
            {"name": name, "seed": seed, "log": rows, "eval": ev})
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
        if not m or not os.path.isfile(pgm):
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
    for data, (png, names) in figure5("results/paper/runs", os.path.abspath(a.img),
                                      os.path.abspath(tmp)).items():
        print("make-results: wrote", os.path.relpath(png, root))
        blocks[f"{data}-fig5"] = (f"![{data}: decoder samples](img/{os.path.basename(png)})\n\n"
                                  f"Runs: {'; '.join(names)} (best-validation checkpoints).\n")
    if os.path.isfile(a.doc):
        replace_blocks(a.doc, blocks)
        print("make-results: updated", a.doc)
    else:
        sys.exit(f"make-results: {a.doc} missing (the prose lives there)")


if __name__ == "__main__":
    main()
