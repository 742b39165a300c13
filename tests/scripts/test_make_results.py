#!/usr/bin/env python3
"""Checks of scripts/make-results.py's paper-grid part on synthetic runs (ctest make_results).

The verdicts of docs/results.md are computed, not written by hand, so their rules are tested
here: which runs count as final, the best bound, paired differences, the 'holds' / 'reversed'
/ 'not resolved' and 'no appreciable difference' rules, early stopping and the tables.
No gnuplot needed (the figures are not drawn). Python 3 standard library only.
"""
import csv
import importlib.util
import math
import os
import shutil
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
spec = importlib.util.spec_from_file_location("make_results",
                                              os.path.join(ROOT, "scripts", "make-results.py"))
mr = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mr)

FAILS = []


def check(cond, what):
    if not cond:
        FAILS.append(what)
        print("FAIL:", what)


LOG_COLS = ["epoch", "step", "train_bound", "svi0", "svik", "bsvik", "mean_pos", "valid_bound",
            "valid_svi0", "valid_svik", "valid_bsvik", "epoch_seconds", "wall_seconds", "test_iwae"]
EVAL_COLS = ["data", "method", "seed", "epoch", "train_seconds", "n_test", "iwae_samples",
             "bsvi_weights", "iwae_ll", "bsvi_ll", "elbo_star", "kl_star", "recon_star",
             "eval_seconds", "checkpoint", "svi_rule", "svi_eta", "iwae_khat_mean",
             "iwae_khat_median", "iwae_khat_gt07", "iwae_ess_mean"]


def make_run(root, name, iwae, bsvi, epochs=10, best=None, done=True, n_test=10000,
             early=False, gap=1.0, repeat_epoch=None, gap_slope=0.0):
    d = os.path.join(root, name)
    os.makedirs(d)
    best = epochs if best is None else best
    with open(os.path.join(d, "log.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(LOG_COLS)
        eps = list(range(1, epochs + 1))
        if repeat_epoch:  # a resume after a cut writes an epoch twice; the last row counts
            eps.insert(repeat_epoch, repeat_epoch)
        for i, e in enumerate(eps):
            v = -100 + min(e, best) - (0.01 * (e - best) if e > best else 0)
            if repeat_epoch and e == repeat_epoch and i == repeat_epoch - 1:
                v = -1000.0  # the overwritten first copy
            w.writerow([e, e * 500, v + gap + gap_slope * (e - epochs), v - 3, v - 1, v, 0.5,
                        v, v - 3, v - 1, v, 1.0, float(e), v + 2])
    with open(os.path.join(d, "eval.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(EVAL_COLS)
        w.writerow(["mnist", "m", 1, best, 10.0, n_test, 5000, 500, iwae, bsvi, iwae - 3, 20.0,
                    0, 5.0, "x", "gradient", 0.002, 1.2, 1.1, 0.9, 12.5])
    with open(os.path.join(d, "train.out"), "w") as f:
        f.write("vae: early stop: no validation improvement for 20 epochs\n" if early else "ok\n")
    if done:
        open(os.path.join(d, "DONE"), "w").close()


def main():
    # ---- the rules on their own
    v, half = mr.judge_better([0.5, 0.6, 0.55])
    check(v.startswith("**holds**") and "provisional" not in v, f"3 positive, tight: {v}")
    check(abs(half - 4.303 * 0.05 / math.sqrt(3)) < 1e-12, f"t half-width {half}")
    v, _ = mr.judge_better([-0.5, -0.6, -0.55])
    check(v.startswith("**reversed**"), f"3 negative, tight: {v}")
    v, _ = mr.judge_better([0.5, -0.1, 0.6])
    check(v.startswith("not resolved"), f"mixed signs: {v}")
    v, _ = mr.judge_better([0.1, 2.0, 0.05])
    check(v.startswith("not resolved"), f"all positive but interval contains 0: {v}")
    v, _ = mr.judge_better([1.0, 1.01])
    check("holds" in v and "provisional" in v, f"2 seeds: {v}")
    v, half = mr.judge_better([0.3])
    check(half is None and "1 seed" in v, f"1 seed: {v}")
    check(mr.judge_same([0.05, -0.02], 0.1).startswith("**holds**"), "same: small")
    check(mr.judge_same([0.5, 0.4, 0.6], 0.1).startswith("**does not hold**"), "same: large")
    check("no seed-noise" in mr.judge_same([0.1], None), "same: no noise scale")
    check(mr.best_ll({"iwae_ll": -90.0, "bsvi_ll": -89.0}) == -89.0, "best bound = max")
    check(mr.best_ll({"iwae_ll": -90.0, "bsvi_ll": None}) == -90.0, "best bound, one missing")

    with tempfile.TemporaryDirectory() as tmp:
        # svi, bsvi-sir (better by ~0.5 on every seed), iwae (better than bsvi-sir on the
        # IWAE estimate only), bsvi-sir-pi (= bsvi-sir), bsvi and bsvi-ds on seed 1
        for s, (a, b) in enumerate([(0.0, 0.0), (0.1, -0.05), (-0.05, 0.02)], start=1):
            make_run(tmp, f"mnist-svi-s{s}-eta2e-3", -91 + a, -90 + a)
            make_run(tmp, f"mnist-bsvi-sir-s{s}-eta2e-3", -90.7 + a, -89.5 + a + b,
                     gap=1.0)
            make_run(tmp, f"mnist-bsvi-sir-pi-s{s}-eta2e-3", -90.7 + a, -89.5 + a + b + 0.01)
            make_run(tmp, f"mnist-iwae-s{s}-eta2e-3", -89.6 + a, -89.8 + a)
        make_run(tmp, "mnist-bsvi-s1-eta2e-3", -90.9, -89.9, gap=3.0, early=True, best=6)
        make_run(tmp, "mnist-bsvi-ds-s1-eta2e-3", -90.9, -89.85, repeat_epoch=4)
        # not final: no DONE, a test subset, another step, another data set's tag
        make_run(tmp, "mnist-vae-s1-eta2e-3", -95, -95, done=False)
        make_run(tmp, "mnist-vae-s2-eta2e-3", -95, -95, n_test=200)
        make_run(tmp, "mnist-vae-s3", -95, -95)
        make_run(tmp, "fashion-mnist-vae-s1-eta0.1", -250, -250)

        g = mr.grid_runs(tmp, "mnist")
        check(("mnist", "vae") not in g, "unfinished, subset and other-step rows are not final")
        check(len(g[("mnist", "svi")]) == 3, "3 svi seeds")
        check([r["seed"] for r in g[("mnist", "svi")]] == [1, 2, 3], "sorted by seed")
        check(mr.grid_runs(tmp, "fashion-mnist") == {}, "fashion-mnist: its own step only")
        ds = g[("mnist", "bsvi-ds")][0]
        check(len(ds["log"]) == 10 and min(r["valid_bound"] for r in ds["log"]) > -200,
              "a repeated epoch keeps its last row")
        check(g[("mnist", "bsvi")][0]["early_stop"], "early stop read from train.out")

        p = mr.paired(g, "mnist", "bsvi-sir", "svi", lambda r: mr.best_ll(r["eval"]))
        check([s for s, _ in p] == [1, 2, 3], "paired seeds")
        check(all(abs(d - x) < 1e-9 for (_, d), x in zip(p, [0.5, 0.45, 0.52])),
              f"paired values {p}")

        grid = {"mnist": g, "fashion-mnist": {}, "fashion-mnist-gray": {}}
        text = mr.paper_verdicts(grid)
        rows = {}
        for line in text.splitlines():
            cells = [c.strip() for c in line.split("|")[1:-1]]
            if len(cells) == 6 and cells[1] == "mnist":
                rows[cells[0]] = cells
        check(rows["BSVI-SIR > SVI"][5].startswith("**holds**"), "verdict BSVI-SIR > SVI")
        # best bound: bsvi-sir -89.5+.. vs iwae -89.6/-89.8 -> bsvi-sir ahead on the best
        # bound although IWAE-5000 puts IWAE ahead
        r = rows["BSVI-SIR > IWAE"]
        check(r[2].startswith("+") and r[3].startswith("-"),
              f"best bound and IWAE-5000 disagree as built: {r}")
        pi = [k for k in rows if k.startswith("pi optimisation")][0]
        check(rows[pi][5].startswith("**holds**"), f"pi verdict {rows[pi]}")
        dsk = [k for k in rows if k.startswith("double sampling")][0]
        check("provisional" in rows[dsk][5], f"1-seed DS verdict is provisional: {rows[dsk]}")
        ov = [k for k in rows if k.startswith("BSVI overfits")][0]
        check("holds on 1 seed" in rows[ov][5], f"overfitting verdict {rows[ov]}")
        check("SVI > VAE" in rows and rows["SVI > VAE"][5] == "waiting", "no vae: waiting")
        gray = [[c.strip() for c in line.split("|")[1:-1]] for line in text.splitlines()
                if "| fashion-mnist-gray |" in line]
        check(all(r[5] == ("not run" if "BSVI-DS" in r[0] or "overfits" in r[0] else "waiting")
                  for r in gray) and len(gray) == 7,
              f"gray: variant claims not run, the others waiting: {gray}")

        # Figure 4's rule: the mean gap of the last 10 epochs, larger only by more than twice
        # BSVI-SIR's seed sd (here 0.5). BSVI's last-epoch gap (2.3) exceeds BSVI-SIR's (1.0)
        # by 1.3, but its 10-epoch mean (1.4) only by 0.4: not larger
        with tempfile.TemporaryDirectory() as t2:
            for s, gp in enumerate([1.0, 1.5, 2.0], start=1):
                make_run(t2, f"mnist-bsvi-sir-s{s}-eta2e-3", -90.0, -89.0, gap=gp)
            make_run(t2, "mnist-bsvi-s1-eta2e-3", -90.5, -89.5, gap=2.3, gap_slope=0.2)
            v4 = [ln for ln in mr.paper_verdicts({"mnist": mr.grid_runs(t2, "mnist")}).splitlines()
                  if ln.startswith("| BSVI overfits") and "| mnist |" in ln]
            check(len(v4) == 1 and "BSVI +1.40" in v4[0] and "sd 0.50" in v4[0]
                  and "BSVI's gap is not larger" in v4[0], f"Figure 4 rule, mean gap: {v4}")
            shutil.rmtree(os.path.join(t2, "mnist-bsvi-sir-s2-eta2e-3"))
            shutil.rmtree(os.path.join(t2, "mnist-bsvi-sir-s3-eta2e-3"))
            v4 = [ln for ln in mr.paper_verdicts({"mnist": mr.grid_runs(t2, "mnist")}).splitlines()
                  if ln.startswith("| BSVI overfits") and "| mnist |" in ln]
            check(len(v4) == 1 and v4[0].endswith("| waiting |"),
                  f"Figure 4 with one BSVI-SIR seed waits: {v4}")

        t = mr.paper_tables("mnist", g)
        check("| mnist-bsvi-s1-eta2e-3 | 5000 | yes | 6 |" in t, "per-run row with early stop")
        check("no (0 epochs since best)" in t, "per-run row without early stop")
        check("| SVI-10 | 1,2,3 | 5000 |" in t, "main table row")
        check("99.0%" not in t and "90.0%" in t, "k-hat share printed as a percentage")
        a = mr.paper_appendix("mnist", g)
        check("Seed 1 " in a and "BSVI-9-DS" in a, "appendix on the shared seed")
        pub = mr.paper_published("mnist", g)
        check("-84.78" in pub, "published IWAE number beside ours")
    if FAILS:
        print(f"{len(FAILS)} check(s) failed")
        return 1
    print("make-results checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
