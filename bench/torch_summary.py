#!/usr/bin/python3
"""Summary of bench/torch_step.sh's torch_step.jsonl: per method, the median over rounds of
each program's median ms/step, the spread (smallest..largest round median), the ratio to C
and the LibTorch host's time split; then the LibTorch host's thread settings.

    /usr/bin/python3 bench/torch_summary.py OUT/torch_step.jsonl
Prints markdown tables (the ones in docs/performance.md, "The LibTorch host")."""
import json
import statistics
import sys
from collections import defaultdict

NAMES = {"c": "C (examples/vae)", "libtorch": "LibTorch host", "torch": "PyTorch peer"}


def main(path):
    # torch_step.sh puts "round" and "setting" first; the peer's own (empty) "setting" later
    # in the line must not replace it: the first occurrence of a key wins
    def first_wins(pairs):
        d = {}
        for k, v in pairs:
            d.setdefault(k, v)
        return d
    rows = [json.loads(line, object_pairs_hook=first_wins) for line in open(path) if line.strip()]
    runs = defaultdict(list)  # (impl, setting, method) -> round medians
    split = defaultdict(list)  # (impl, setting, method) -> split dicts
    machine = {}
    for r in rows:
        if r.get("kind") == "machine":
            machine.update(r)
            continue
        if r.get("kind") != "train":
            continue
        key = (r["impl"], r.get("setting", ""), r["method"])
        runs[key].append(r["median_ms"])
        if "split_ms" in r:
            split[key].append(r["split_ms"])
    methods = []
    for (_, _, m) in runs:
        if m not in methods:
            methods.append(m)

    def med(impl, setting, m):
        v = runs.get((impl, setting, m))
        return (statistics.median(v), min(v), max(v), len(v)) if v else None

    print(f"machine: {machine.get('cpu', '?')}, {machine.get('nproc', '?')} cores; load average "
          f"{machine.get('load_start', '?')} at start, {machine.get('load_end', '?')} at end\n")
    print("| method | C ms/step | LibTorch ms/step | PyTorch ms/step | LibTorch / C | "
          "PyTorch / C | PyTorch / LibTorch | rounds |")
    print("|---|---|---|---|---|---|---|---|")
    for m in methods:
        c = med("c", "c-ob1", m)
        t = med("libtorch", "t1-ob1", m)
        p = med("torch", "t1-ob1", m)

        def cell(x):
            return f"{x[0]:.2f} ({x[1]:.2f}..{x[2]:.2f})" if x else "-"

        def ratio(a, b):
            return f"{a[0] / b[0]:.2f}" if a and b else "-"
        n = max(x[3] for x in (c, t, p) if x)
        print(f"| {m} | {cell(c)} | {cell(t)} | {cell(p)} | {ratio(t, c)} | {ratio(p, c)} | "
              f"{ratio(p, t)} | {n} |")

    print("\nLibTorch host, where a step's time goes (ms, median over rounds; torch threads 1):\n")
    keys = ["total", "enc_fwd", "lib_total", "callback", "lib_own", "dec_grad", "enc_bwd", "optim"]
    print("| method | " + " | ".join(keys) + " |")
    print("|---|" + "---|" * len(keys))
    for m in methods:
        s = split.get(("libtorch", "t1-ob1", m))
        if not s:
            continue
        print(f"| {m} | " + " | ".join(f"{statistics.median(x[k] for x in s):.2f}" for k in keys)
              + " |")
    print("\nC example, the same split (bench_train_step's --wrap timers; ms):\n")
    ckeys = ["total", "enc_fwd", "lib_total", "callback", "lib_own", "dec_acc", "enc_bwd", "adam",
             "gemm"]
    print("| method | " + " | ".join(ckeys) + " |")
    print("|---|" + "---|" * len(ckeys))
    for m in methods:
        s = split.get(("c", "c-ob1", m))
        if not s:
            continue
        print(f"| {m} | " + " | ".join(f"{statistics.median(x.get(k, float('nan')) for x in s):.2f}"
                                       for k in ckeys) + " |")

    settings = []
    for (impl, st, _) in runs:
        if impl == "libtorch-sweep" and st not in settings:
            settings.append(st)
    if settings:
        print("\nLibTorch host thread settings (t = torch::set_num_threads, ob = "
              "OPENBLAS_NUM_THREADS; median ms/step over rounds, spread):\n")
        print("| method | " + " | ".join(settings) + " |")
        print("|---|" + "---|" * len(settings))
        geo = defaultdict(list)
        for m in methods:
            cells = []
            for st in settings:
                x = med("libtorch-sweep", st, m)
                cells.append(f"{x[0]:.2f} ({x[1]:.2f}..{x[2]:.2f})" if x else "-")
                if x:
                    geo[st].append(x[0])
            print(f"| {m} | " + " | ".join(cells) + " |")
        gm = {st: statistics.geometric_mean(v) for st, v in geo.items() if v}
        if gm:
            best = min(gm, key=gm.get)
            print("\ngeometric mean over methods: " +
                  ", ".join(f"{st} {v:.2f} ms" for st, v in gm.items()) + f"; best: {best}")


if __name__ == "__main__":
    main(sys.argv[1])
