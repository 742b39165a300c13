#!/usr/bin/python3
"""Summary of bench/peer/sweep_settings.sh (issue 9): per setting and measure the median
time and its spread over the alternating rounds, and the winner ("the peer").

  sweep_summary.py RESULTS_DIR [--env FILE]   prints a Markdown table; --env writes the
                                              winner as shell assignments for bench.sh

Measures: the training steps (ms per step; median over all timed steps of all rounds) and
the evaluations (ms per image; median over the rounds). Spread: the range of the per-round
medians, as +-half of it in % of the median. Winner: among the float32 settings, the one
with the lowest geometric mean over the measures of (its median / the best median of that
measure), i.e. the setting a user would pick without knowing which method they run.
Also imported by bench/report.py (no torch needed)."""
import json
import math
import os
import statistics
import sys

TRAIN = ["vae", "iwae", "svi", "bsvi", "bsvi-sir"]
EVAL = ["iwae-5000", "bsvi-500"]
SWEEP_FILE = "peer_sweep.jsonl"
# vae_step.py --malloc-heap (the same string as its MALLOC_HEAP_TUNABLES)
MALLOC_HEAP_TUNABLES = ("glibc.malloc.mmap_threshold=1073741824:"
                        "glibc.malloc.trim_threshold=1073741824:"
                        "glibc.malloc.top_pad=268435456")


def load(res):
    p = os.path.join(res, SWEEP_FILE)
    rows = []
    if os.path.exists(p):
        for line in open(p):
            line = line.strip()
            if line.startswith("{"):
                rows.append(json.loads(line))
    return rows


def label_args(label):
    """t1-ob2-skx-heap-f64 -> the vae_step.py options of that setting."""
    a = []
    for part in label.split("-"):
        if part.startswith("ob"):
            a += ["--openblas-threads", part[2:]]
        elif part.startswith("t"):
            a += ["--threads", part[1:]]
        elif part == "skx":
            a += ["--openblas-coretype", "SkylakeX"]
        elif part == "heap":
            a += ["--malloc-heap"]
        elif part == "ftz":
            a += ["--flush-denormal"]
        elif part == "f64":
            a += ["--dtype", "float64"]
        elif part == "f32":
            a += ["--dtype", "float32"]
        else:
            raise ValueError("unknown part %r of setting %r" % (part, label))
    return a


def describe(label):
    p = label.split("-")
    t = next(x[1:] for x in p if x.startswith("t") and not x.startswith("ob"))
    ob = next(x[2:] for x in p if x.startswith("ob"))
    return "torch %s / OpenBLAS %s%s / %s / %s%s" % (
        t, ob, " SkylakeX" if "skx" in p else "", "heap tunables" if "heap" in p else "malloc",
        "float64" if "f64" in p else "float32", " / flush denormals" if "ftz" in p else "")


def summarise(rows):
    """{label: {measure: (median, spread_pct, [round medians])}}, settings in first-seen order,
    the winner's label (None without float32 data), its geometric-mean score per label."""
    order, data = [], {}
    for r in rows:
        if r.get("kind") not in ("train", "eval"):
            continue
        lab = r.get("setting") or "?"
        if lab not in data:
            order.append(lab)
            data[lab] = {}
        meas = r["method"] if r["kind"] == "train" else r["what"]
        d = data[lab].setdefault(meas, {"all": [], "rounds": []})
        if r["kind"] == "train":
            d["all"] += r["times_ms"]
            d["rounds"].append(r["median_ms"])
        else:
            d["all"].append(r["median_ms_per_image"])
            d["rounds"].append(r["median_ms_per_image"])
    table = {}
    for lab in order:
        table[lab] = {}
        for meas, d in data[lab].items():
            m = statistics.median(d["all"])
            sp = 50.0 * (max(d["rounds"]) - min(d["rounds"])) / m if m > 0 else float("nan")
            table[lab][meas] = (m, sp, d["rounds"])
    f32 = [lab for lab in order if "f64" not in lab.split("-")]
    measures = [x for x in TRAIN + EVAL if all(x in table[lab] for lab in f32)] if f32 else []
    score = {}
    if f32 and measures:
        best = {x: min(table[lab][x][0] for lab in f32) for x in measures}
        for lab in f32:
            score[lab] = math.exp(statistics.mean(
                math.log(table[lab][x][0] / best[x]) for x in measures))
    winner = min(score, key=score.get) if score else None
    return order, table, winner, score


def markdown(rows):
    order, table, winner, score = summarise(rows)
    if not order:
        return [], None
    cols = [x for x in TRAIN + EVAL if any(x in table[lab] for lab in order)]
    out = ["| setting | " + " | ".join(
        ("%s ms" if x in TRAIN else "%s ms/image") % x for x in cols) + " | vs best (geomean) |",
        "|---|" + "---:|" * (len(cols) + 1)]
    f32 = [lab for lab in order if lab in score]
    best = {x: min((table[lab][x][0] for lab in f32 if x in table[lab]), default=None)
            for x in cols}
    for lab in order:
        cells = []
        for x in cols:
            if x not in table[lab]:
                cells.append("n/a")
                continue
            m, sp, _ = table[lab][x]
            c = "%.1f ±%.0f%%" % (m, sp)
            cells.append("**%s**" % c if best[x] is not None and m == best[x] else c)
        sc = "%.3f" % score[lab] if lab in score else "(float64)"
        name = "`%s` (%s)" % (lab, describe(lab))
        if lab == winner:
            name, sc = "**" + name + "**", "**" + sc + "**"
        out.append("| %s | %s | %s |" % (name, " | ".join(cells), sc))
    return out, winner


def main():
    res = sys.argv[1]
    rows = load(res)
    lines, winner = markdown(rows)
    print("\n".join(lines))
    print("winner: %s" % (winner and "%s (%s)" % (winner, describe(winner))))
    if "--env" in sys.argv and winner:
        with open(sys.argv[sys.argv.index("--env") + 1], "w") as f:
            f.write("PEER_BEST_SETTING=%s\n" % winner)
            f.write("PEER_BEST_ARGS=(%s)\n" % " ".join(label_args(winner)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
