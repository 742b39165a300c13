#!/usr/bin/env bash
# A training step of the LibTorch host (examples/torch, `vae_torch bench`) beside the C
# example (`bench_train_step train`) and the PyTorch peer (bench/peer/vae_step.py train),
# alternating C, LibTorch, PyTorch in every round from the same starting parameters and
# batches (`bench_train_step prep`), then the LibTorch host's thread settings, alternating
# too. Writes OUT/torch_step.jsonl (one JSON line per program run, with "round" and
# "setting") and prints the summary of bench/torch_summary.py (median ms/step, ratio to C,
# spread over rounds).
#
#   bash bench/torch_step.sh [BUILD_DIR] [OUT]
#   (defaults: build-torch, BUILD_DIR/bench-torch). BUILD_DIR: configured with
#   -DBSVI_BUILD_TORCH=ON; the script builds bench_train_step and vae_torch in it.
# Environment: ROUNDS (5), STEPS (20), WARMUP (3), METHODS (vae,iwae,svi,bsvi,bsvi-sir: the
# peer's five), THREAD_SETTINGS ("t1-ob1 t2-ob1 t1-ob2 t2-ob2": torch::set_num_threads and
# OPENBLAS_NUM_THREADS of the LibTorch host's sweep, -noftz: denormals not flushed, -noheap:
# glibc's malloc defaults (vae_torch keeps freed memory in the heap by default, as the peer's
# --malloc-heap); empty skips the sweep).
# The comparison runs every program at one thread (torch threads 1, OpenBLAS threads 1:
# the project's norm on the 2-core machine); the peer with its best settings of
# docs/performance.md (denormals flushed, glibc heap tunables), the LibTorch host with
# denormals flushed and freed memory kept in the heap (its defaults).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-$ROOT/build-torch}"
OUT="${2:-$BUILD/bench-torch}"
ROUNDS="${ROUNDS:-5}"
STEPS="${STEPS:-20}"
WARMUP="${WARMUP:-3}"
METHODS="${METHODS:-vae,iwae,svi,bsvi,bsvi-sir}"
THREAD_SETTINGS="${THREAD_SETTINGS-t1-ob1 t2-ob1 t1-ob2 t2-ob2 t1-ob1-noftz t1-ob1-noheap}"
PY=/usr/bin/python3
PEER="$ROOT/bench/peer/vae_step.py"

cmake --build "$BUILD" --parallel 2 --target bench_train_step vae_torch >&2
C="$BUILD/bench/bench_train_step"
T="$BUILD/examples/torch/vae_torch"
mkdir -p "$OUT"
J="$OUT/torch_step.jsonl"
: > "$J"
HAVE_PEER=0
if [[ -x $PY ]] && $PY -c "import torch" 2>/dev/null; then HAVE_PEER=1; else
    echo "torch_step: no torch for $PY (scripts/deps.sh --bench): the PyTorch peer is skipped" >&2
fi

# tag ROUND SETTING: stamps every JSON line of stdin with the round and the setting
tag() { sed "s/^{/{\"round\":$1,\"setting\":\"$2\",/"; }
echo "{\"kind\":\"machine\",\"load_start\":\"$(cut -d' ' -f1-3 /proc/loadavg)\",\"nproc\":$(nproc),\"cpu\":\"$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)\"}" >> "$J"

echo "torch_step: prep (bench_train_step prep $OUT)" >&2
OPENBLAS_NUM_THREADS=1 "$C" prep "$OUT" > /dev/null

for r in $(seq 1 "$ROUNDS"); do
    echo "torch_step: round $r/$ROUNDS: C, LibTorch, PyTorch" >&2
    OPENBLAS_NUM_THREADS=1 "$C" train "$OUT" --methods "$METHODS" --steps "$STEPS" \
        --warmup "$WARMUP" | tag "$r" c-ob1 >> "$J"
    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 "$T" bench "$OUT" --methods "$METHODS" \
        --steps "$STEPS" --warmup "$WARMUP" --threads 1 | tag "$r" t1-ob1 >> "$J"
    if [[ $HAVE_PEER == 1 ]]; then
        $PY "$PEER" train "$OUT" --methods "$METHODS" --steps "$STEPS" --warmup "$WARMUP" \
            --threads 1 --openblas-threads 1 --flush-denormal --malloc-heap |
            tag "$r" t1-ob1 >> "$J"
    fi
done

# the LibTorch host's thread settings, alternating within each round
for r in $(seq 1 "$ROUNDS"); do
    [[ -n "$THREAD_SETTINGS" ]] || break
    echo "torch_step: thread sweep round $r/$ROUNDS: $THREAD_SETTINGS" >&2
    for s in $THREAD_SETTINGS; do
        tt="${s%%-*}"; tt="${tt#t}"; ob="${s#*-ob}"; ob="${ob%%-*}"; ftz=()
        [[ "$s" != *-noftz ]] || ftz=(--no-flush-denormal)
        [[ "$s" != *-noheap ]] || ftz+=(--no-malloc-heap)
        OPENBLAS_NUM_THREADS="$ob" "$T" bench "$OUT" --methods "$METHODS" --steps "$STEPS" \
            --warmup "$WARMUP" --threads "$tt" "${ftz[@]}" | sed 's/"impl":"libtorch"/"impl":"libtorch-sweep"/' |
            tag "$r" "$s" >> "$J"
    done
done
echo "{\"kind\":\"machine\",\"load_end\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}" >> "$J"
$PY "$ROOT/bench/torch_summary.py" "$J"
