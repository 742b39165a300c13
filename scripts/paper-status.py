#!/usr/bin/env python3
"""The status table of the paper-budget grid (issue 10) in docs/results.md.

    python3 scripts/paper-status.py [--doc docs/results.md] [--print]

Reads the queue (results/paper/queue.txt) and, per run, the newest of its logs: the live
runs/NAME/log.csv of a run in progress on this machine, the state committed by
`scripts/queue.sh save` (results/paper/ckpt/NAME/log.csv) or the finished run's raw files
(results/paper/runs/NAME/, with DONE and eval.csv). Writes the table between
`<!-- paper:status -->` and `<!-- /paper:status -->` in the document (or prints it), followed by
the results of the final rows in the paper's form per data set and SVI step (mean ± sd over
seeds, and the paired difference against SVI of the same seed).
A row is **final** only when the run finished (early stopping fired or its epoch budget was
reached) and its best-validation checkpoint was evaluated on the full test set.
Python 3 standard library only.
"""
import argparse
import csv
import math
import os
import re
import sys

STEPS_PER_EPOCH = 500  # 50,000 training images at batch 100


def fnum(s):
    try:
        v = float(s)
        return v if math.isfinite(v) else None
    except (TypeError, ValueError):
        return None


def read_log(path):
    rows = {}
    with open(path) as f:
        for r in csv.DictReader(f):
            e = int(r["epoch"])
            rows[e] = r  # a repeated epoch (a resume after a cut) keeps its last row
    return [rows[e] for e in sorted(rows)]


def queue(path):
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            p = line.split()
            out.append((p[0], p[1], int(p[2]), int(p[3]), int(p[4]), " ".join(p[5:])))
    return out


def run_name(data, m, s, extra):
    """As scripts/queue.sh: DATA-METHOD-sSEED, -etaX when the row sets --svi-step-size X."""
    opts = extra.split()
    name = f"{data}-{m}-s{s}"
    for a, b in zip(opts, opts[1:]):
        if a == "--svi-step-size":
            name += f"-eta{b}"
    return name


def fmt(v, d=2):
    return "" if v is None else f"{v:.{d}f}"


def status(root):
    lines = ["| run | state | epochs | steps | best valid (epoch) | early stop | test IWAE-100, last epoch "
             "| IWAE-5000 | BSVI-500 | test images |",
             "|---|---|---:|---:|---|---|---:|---:|---:|---:|"]
    counts = {}
    for data, m, s, epochs, patience, extra in queue(os.path.join(root, "results/paper/queue.txt")):
        name = run_name(data, m, s, extra)
        done = os.path.join(root, "results/paper/runs", name)
        live = os.path.join(root, "runs", name)
        saved = os.path.join(root, "results/paper/ckpt", name)
        log = None
        for d in (live, saved, done):
            if os.path.isfile(os.path.join(d, "log.csv")):
                log = os.path.join(d, "log.csv")
                break
        rows = read_log(log) if log else []
        ev = None
        if os.path.isfile(os.path.join(done, "DONE")) and os.path.isfile(os.path.join(done, "eval.csv")):
            with open(os.path.join(done, "eval.csv")) as f:
                ev = next(csv.DictReader(f), None)
        if ev is not None:
            state = "**final**"
        elif os.path.isdir(os.path.join(root, "runs", name + ".claim")):
            state = "running"
        elif rows:
            state = "resumable"
        else:
            state = "queued"
        counts[state] = counts.get(state, 0) + 1
        if not rows:
            lines.append(f"| {name} | {state} | 0/{epochs} | 0 | | | | | | |")
            continue
        last = rows[-1]
        best = max(rows, key=lambda r: fnum(r["valid_bound"]) if fnum(r["valid_bound"]) is not None else -1e300)
        ep = int(last["epoch"])
        bad = ep - int(best["epoch"])
        stopped = "yes" if patience > 0 and bad >= patience else "no"
        if stopped == "no" and ep < epochs and state != "**final**":
            stopped = f"no ({bad}/{patience})"
        lines.append(
            f"| {name} | {state} | {ep}/{epochs} | {int(last['step'])} | "
            f"{fmt(fnum(best['valid_bound']))} ({best['epoch']}) | {stopped} | "
            f"{fmt(fnum(last.get('test_iwae')))} | "
            f"{fmt(fnum(ev['iwae_ll'])) if ev else ''} | {fmt(fnum(ev['bsvi_ll'])) if ev else ''} | "
            f"{ev['n_test'] if ev else ''} |")
    summary = ", ".join(f"{v} {k.strip('*')}" for k, v in sorted(counts.items()))
    return summary, "\n".join(lines) + "\n"


METHOD_ORDER = ["vae", "iwae", "svi", "bsvi", "bsvi-ds", "bsvi-sir", "bsvi-sir-pi"]


def finals(root):
    """Final rows as {(data, step tag): {method: {seed: eval row}}} (step tag: '' or -etaX)."""
    out = {}
    for data, m, s, epochs, patience, extra in queue(os.path.join(root, "results/paper/queue.txt")):
        name = run_name(data, m, s, extra)
        d = os.path.join(root, "results/paper/runs", name)
        if not (os.path.isfile(os.path.join(d, "DONE")) and os.path.isfile(os.path.join(d, "eval.csv"))):
            continue
        with open(os.path.join(d, "eval.csv")) as f:
            ev = next(csv.DictReader(f), None)
        if ev is None or int(ev["n_test"]) < 10000:
            continue
        tag = name[len(f"{data}-{m}-s{s}"):]
        out.setdefault((data, tag), {}).setdefault(m, {})[s] = ev
    return out


def mean_sd(xs):
    if not xs:
        return ""
    mu = sum(xs) / len(xs)
    if len(xs) == 1:
        return f"{mu:.2f}"
    sd = math.sqrt(sum((x - mu) ** 2 for x in xs) / (len(xs) - 1))
    return f"{mu:.2f} ± {sd:.2f}"


def results_tables(root):
    """Per data set and SVI step: the paper's table (mean ± sd over the final seeds) and the
    paired difference against SVI of the same seed. Reconstruction* = -(ELBO* + KL*)."""
    blocks = []
    for (data, tag), by_m in sorted(finals(root).items()):
        step = tag[4:] if tag.startswith("-eta") else "of the rows' options (5e-3 unless set)"
        blocks.append(f"**{data}, SVI step {step}** (final rows only; full test set)\n")
        blocks.append("| method | seeds | IWAE-5000 | BSVI-500 | ELBO* | KL* | Reconstruction* "
                      "| IWAE-5000 − SVI (paired) | BSVI-500 − SVI (paired) |")
        blocks.append("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        svi = by_m.get("svi", {})
        for m in METHOD_ORDER:
            if m not in by_m:
                continue
            rows = by_m[m]
            seeds = sorted(rows)
            col = lambda k: [float(rows[s][k]) for s in seeds]
            rec = [-(float(rows[s]["elbo_star"]) + float(rows[s]["kl_star"])) for s in seeds]
            paired = [s for s in seeds if s in svi]
            d_iw = [float(rows[s]["iwae_ll"]) - float(svi[s]["iwae_ll"]) for s in paired]
            d_bs = [float(rows[s]["bsvi_ll"]) - float(svi[s]["bsvi_ll"]) for s in paired]
            blocks.append(f"| {m} | {','.join(map(str, seeds))} | {mean_sd(col('iwae_ll'))} | "
                          f"{mean_sd(col('bsvi_ll'))} | {mean_sd(col('elbo_star'))} | "
                          f"{mean_sd(col('kl_star'))} | {mean_sd(rec)} | "
                          f"{mean_sd(d_iw) if m != 'svi' else ''} | {mean_sd(d_bs) if m != 'svi' else ''} |")
        blocks.append("")
    return "\n".join(blocks) + "\n" if blocks else "No final rows yet.\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--doc", default="docs/results.md")
    ap.add_argument("--print", action="store_true", help="print the table instead of writing it")
    a = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    summary, table = status(root)
    body = f"Runs: {summary}.\n\n{table}\n{results_tables(root)}"
    if a.print:
        sys.stdout.write(body)
        return
    doc = os.path.join(root, a.doc)
    with open(doc) as f:
        text = f.read()
    pat = re.compile(r"(<!-- paper:status -->\n).*?(<!-- /paper:status -->)", re.S)
    if not pat.search(text):
        sys.exit(f"paper-status: no paper:status block in {a.doc}")
    text = pat.sub(lambda mo: mo.group(1) + body + mo.group(2), text)
    with open(doc, "w") as f:
        f.write(text)
    print(f"paper-status: {summary}")


if __name__ == "__main__":
    main()
