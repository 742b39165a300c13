#!/usr/bin/python3
"""Where a LibTorch-host step's time goes, from LibTorch's operator trace
(`vae_torch bench DIR --profile PREFIX` writes PREFIX.METHOD.json, chrome-trace events of
every aten operator, its dispatch layers and the autograd nodes).

    /usr/bin/python3 bench/torch_profile.py STEPS STEP_MS PREFIX.METHOD.json ...
STEPS: timed steps in the trace; STEP_MS: the profiled run's ms/step (total, for the
"outside LibTorch" remainder; pass 0 to leave it out). Self time of each event (its duration
minus its children's), per step, summed into:
  gemm          aten::mm / aten::addmm / aten::bmm self time (the OpenBLAS sgemm calls)
  kernels       every other aten:: operator's self time (element-wise, reductions, copies,
                index_select, allocation and fill)
  autograd      autograd nodes (*Backward*, engine) self time
  dispatch      the other frames (the VariableType / ADInplaceOrView layers: names without
                the aten:: prefix) self time
  outside       STEP_MS minus all of the above: libbsvi, the host's C++ loop, conversions
                through raw pointers (the profiler's own overhead inflates the small ops)
Prints a markdown table, then the ten largest self times of each trace."""
import json
import sys
from collections import defaultdict

GEMM = {"aten::mm", "aten::addmm", "aten::bmm"}


def self_times(path):
    ev = [e for e in json.load(open(path)) if e.get("ph") == "X"]
    ev.sort(key=lambda e: (e["tid"], e["ts"], -e["dur"]))
    out = defaultdict(float)
    stack = []  # (end, name, index into child sums)
    child = []
    names = []
    for e in ev:
        ts, end = e["ts"], e["ts"] + e["dur"]
        while stack and stack[-1][0] <= ts + 1e-9:
            _, i = stack.pop()
            out[names[i][0]] += names[i][1] - child[i]
        names.append((e["name"], e["dur"]))
        child.append(0.0)
        i = len(names) - 1
        if stack:
            child[stack[-1][1]] += e["dur"]
        stack.append((end, i))
    while stack:
        _, i = stack.pop()
        out[names[i][0]] += names[i][1] - child[i]
    return out


def main():
    steps = float(sys.argv[1])
    step_ms = float(sys.argv[2])
    rows, tops = [], []
    for path in sys.argv[3:]:
        st = self_times(path)
        cat = defaultdict(float)
        for name, us in st.items():
            if name in GEMM:
                cat["gemm"] += us
            elif "Backward" in name or name.startswith("autograd::"):
                cat["autograd"] += us
            elif name.startswith("aten::"):
                cat["kernels"] += us
            else:
                cat["dispatch"] += us
        per = {k: v / 1e3 / steps for k, v in cat.items()}
        inside = sum(per.values())
        label = path.rsplit(".", 2)[-2] if path.count(".") >= 2 else path
        rows.append((label, per, inside))
        tops.append((label, sorted(st.items(), key=lambda kv: -kv[1])[:10]))
    print("| method | gemm ms | other aten kernels ms | autograd nodes ms | dispatch layers ms |"
          " inside LibTorch ms |" + (" outside (libbsvi, host) ms |" if step_ms > 0 else ""))
    print("|---|---|---|---|---|---|" + ("---|" if step_ms > 0 else ""))
    for label, per, inside in rows:
        line = (f"| {label} | {per.get('gemm', 0):.2f} | {per.get('kernels', 0):.2f} | "
                f"{per.get('autograd', 0):.2f} | {per.get('dispatch', 0):.2f} | {inside:.2f} |")
        if step_ms > 0:
            line += f" {step_ms - inside:.2f} |"
        print(line)
    for label, top in tops:
        print(f"\n{label}: largest self times (ms/step): " +
              ", ".join(f"{n} {us / 1e3 / steps:.2f}" for n, us in top))


if __name__ == "__main__":
    main()
