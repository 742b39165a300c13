#!/usr/bin/env bash
# One command for the benchmark suite of issue 4: builds (Release) into
# build-bench/, runs the library-overhead grid, the VAE training step and
# evaluation side by side with the PyTorch peer (alternating C, PyTorch, C,
# PyTorch, ...), peak memory, reproducibility and the peer's faithfulness
# checks, then writes docs/performance.md and docs/img/perf-*.png.
#
#   bash scripts/bench.sh            # full run (about 10 minutes on 2 idle cores, plus about
#                                    # 20 for the PyTorch peer's settings sweep)
#   bash scripts/bench.sh --quick    # a smoke run of every part (about 2 minutes)
#
# Needs: cmake, a C compiler, OpenBLAS (or any CBLAS), Debian's python3-torch
# for /usr/bin/python3 (the PyTorch peer; skipped with a note if absent),
# gnuplot (the plots; skipped if absent), perf (the profile; skipped if absent).
# On Debian `scripts/deps.sh --bench` (run first by this script) installs all but perf.
# Environment: BENCH_THREADS (default 2) sets OPENBLAS_NUM_THREADS and the
# peer's torch.set_num_threads; BENCH_BUILD (default build-bench) the build dir;
# BENCH_ROUNDS (default 3) the alternating rounds; BENCH_SWEEP_ROUNDS (default 4) the rounds of
# the peer's settings sweep (bench/peer/sweep_settings.sh); BENCH_STEPS (default 20) the timed steps
# per method and round; BENCH_EVAL_ROUNDS (default 2); BENCH_GRAD_REPS (default 16).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${BENCH_BUILD:-$ROOT/build-bench}"
QUICK=0
[[ "${1:-}" == "--quick" ]] && QUICK=1
THREADS="${BENCH_THREADS:-2}"
ROUNDS="${BENCH_ROUNDS:-3}"
PY=/usr/bin/python3
RES="$BUILD/bench-results"
START=$SECONDS

if [[ $QUICK == 1 ]]; then
    ROUNDS=1; STEPS=5; WARMUP=1; EVAL_IMAGES=20; IWAE_IMAGES=4; EVAL_ROUNDS=1; EVAL_REPS=1
    GRAD_REPS=4; WARM_STEPS=20; OVERHEAD_ARGS=(--quick); PEAK_N=1000; FP_STEPS=3
    MEM_STEPS=2
else
    STEPS=20; WARMUP=3; EVAL_IMAGES=100; IWAE_IMAGES=30; EVAL_ROUNDS=2; EVAL_REPS=1
    GRAD_REPS=16; WARM_STEPS=100; OVERHEAD_ARGS=(); PEAK_N=2000; FP_STEPS=10
    MEM_STEPS=3
fi

# optional overrides (e.g. a shorter run on a busy machine)
STEPS="${BENCH_STEPS:-$STEPS}"
EVAL_ROUNDS="${BENCH_EVAL_ROUNDS:-$EVAL_ROUNDS}"
GRAD_REPS="${BENCH_GRAD_REPS:-$GRAD_REPS}"

bash "$ROOT/scripts/deps.sh" --bench >&2 || echo "bench: scripts/deps.sh --bench failed; parts may be skipped" >&2

rm -rf "$RES"
mkdir -p "$RES" "$ROOT/docs/img"
CMDS="$RES/commands.txt"
: > "$CMDS"

# run OUTFILE CMD...: logs the command (relative to the repository) and appends its stdout.
run() {
    local out="$1"; shift
    local shown="OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-unset} $*"
    echo "${shown//$ROOT\//}" >> "$CMDS"
    echo "[$((SECONDS - START))s] ${shown//$ROOT\//}" >&2
    "$@" >> "$out"
}

echo "== build (Release) in ${BUILD#$ROOT/}" >&2
echo "cmake -S . -B ${BUILD#$ROOT/} -DCMAKE_BUILD_TYPE=Release -DBSVI_BUILD_TESTS=OFF -DBSVI_BUILD_EXAMPLES=ON -DBSVI_BUILD_BENCH=ON" >> "$CMDS"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DBSVI_BUILD_TESTS=OFF \
      -DBSVI_BUILD_EXAMPLES=ON -DBSVI_BUILD_BENCH=ON > "$RES/cmake.log"
echo "cmake --build ${BUILD#$ROOT/} -j" >> "$CMDS"
cmake --build "$BUILD" -j "$(nproc 2>/dev/null || echo 2)" > "$RES/build.log"
B="$BUILD/bench"
[[ -x "$B/bench_train_step" ]] || { echo "bench.sh: bench_train_step was not built (examples off?)" >&2; exit 1; }

HAVE_TORCH=0
if [[ -x $PY ]] && $PY -c "import torch" 2>/dev/null; then HAVE_TORCH=1; fi
PEER="$ROOT/bench/peer/vae_step.py"

# ---- machine -----------------------------------------------------------------------
{
    echo "date_utc=$(date -u '+%Y-%m-%d %H:%M:%S')"
    echo "model=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)"
    echo "cpus=$(nproc)"
    echo "threads_per_core=$(lscpu | sed -n 's/^Thread(s) per core:[[:space:]]*//p' | head -1)"
    echo "hypervisor=$(lscpu | sed -n 's/^Hypervisor vendor:[[:space:]]*//p' | head -1)"
    echo "flags_avx=$(grep -o -w -E 'avx2|avx512f|fma' /proc/cpuinfo | sort -u | tr '\n' ' ')"
    echo "l2=$(lscpu | sed -n 's/^L2 cache:[[:space:]]*//p' | head -1)"
    echo "l3=$(lscpu | sed -n 's/^L3 cache:[[:space:]]*//p' | head -1)"
    echo "mem=$(free -g | awk '/^Mem:/ {print $2 " GiB"}')"
    echo "kernel=$(uname -sr)"
    echo "os=$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
    echo "cc=$(cc --version | head -1)"
    echo "blas=$(grep -m1 'CBLAS =' "$RES/cmake.log" | sed 's/.*CBLAS = //')"
    echo "openblas_pkg=$(dpkg-query -W -f='${Package} ${Version}' libopenblas0-pthread 2>/dev/null || echo unknown)"
    echo "libblas_alt=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || echo unknown)"
    # the kernel set OpenBLAS ends up with (bench_train_step restarts itself with
    # OPENBLAS_CORETYPE when OpenBLAS falls back to Prescott kernels on a CPU it does not know)
    echo "openblas_core=$(OPENBLAS_VERBOSE=2 "$B/bench_train_step" peak --n 8 --reps 1 2>&1 >/dev/null | sed -n 's/^Core: //p' | tr '\n' ' ' | sed 's/ $//; s/ / -> /g')"
    if [[ $HAVE_TORCH == 1 ]]; then
        echo "torch=$($PY -c 'import torch; print(torch.__version__)')"
        echo "python=$($PY -c 'import sys; print(sys.version.split()[0])')"
    else
        echo "torch=absent"
    fi
    echo "threads=$THREADS"
    echo "load_start=$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "quick=$QUICK"
    echo "overrides=$(env | grep -E '^BENCH_(THREADS|ROUNDS|STEPS|EVAL_ROUNDS|GRAD_REPS)=' | sort | tr '\n' ' ')"
} > "$RES/machine.txt"

export OPENBLAS_NUM_THREADS="$THREADS"
T="--threads $THREADS"

# ---- 1. library overhead -------------------------------------------------------------
echo "== library overhead" >&2
run "$RES/overhead.md" "$B/bench_overhead" "${OVERHEAD_ARGS[@]}" --csv "$RES/overhead.csv"

# ---- BLAS peak -----------------------------------------------------------------------------
echo "== BLAS peak (square dgemm and sgemm)" >&2
run "$RES/peak.jsonl" "$B/bench_train_step" peak --n "$PEAK_N" --reps 5
OPENBLAS_NUM_THREADS=1 run "$RES/peak1.jsonl" "$B/bench_train_step" peak --n "$PEAK_N" --reps 3

# ---- model and data shared by both sides ------------------------------------------------
DIR="$RES/model"
mkdir -p "$DIR"
run "$RES/prep.jsonl" "$B/bench_train_step" prep "$DIR" --warm-steps "$WARM_STEPS"

# ---- the PyTorch peer's run settings (issue 9): alternating sweep; the fastest float32 ----
# setting is "the peer" (PEER_BEST_ARGS), run beside C below
PEER_BEST=() PEER_BEST_SETTING=""
if [[ $HAVE_TORCH == 1 ]]; then
    echo "== PyTorch peer: settings sweep (bench/peer/sweep_settings.sh)" >&2
    if [[ $QUICK == 1 ]]; then
        SW=(SWEEP_ROUNDS=1 SWEEP_STEPS=3 SWEEP_WARMUP=1 SWEEP_IWAE_IMAGES=2)
    else
        SW=(SWEEP_ROUNDS="${BENCH_SWEEP_ROUNDS:-4}" SWEEP_STEPS=15 SWEEP_WARMUP=3 SWEEP_IWAE_IMAGES=10)
    fi
    env "${SW[@]}" bash "$ROOT/bench/peer/sweep_settings.sh" "$DIR" "$RES" \
        || echo "bench: the peer's settings sweep failed" >&2
    if [[ -f "$RES/peer_best.env" ]]; then
        . "$RES/peer_best.env"
        PEER_BEST=("${PEER_BEST_ARGS[@]}" --setting "$PEER_BEST_SETTING")
    fi
fi

# ---- 2. training step, alternating ---------------------------------------------------------
# Each round: the float32 C example with OpenBLAS at 1 and at THREADS threads, then the peer at
# its best float32 setting (the sweep's winner). Best vs best per method is the headline.
# Once, after the rounds: the float64 C build (1 thread) and the peer in float64 at its best
# setting otherwise, as extra columns.
echo "== training step: C (float32, 1 and $THREADS OpenBLAS threads) and PyTorch, $ROUNDS alternating rounds" >&2
for r in $(seq 1 "$ROUNDS"); do
    OPENBLAS_NUM_THREADS=1 run "$RES/train_c_1t.jsonl" "$B/bench_train_step" train "$DIR" --steps "$STEPS" --warmup "$WARMUP"
    run "$RES/train_c.jsonl" "$B/bench_train_step" train "$DIR" --steps "$STEPS" --warmup "$WARMUP"
    if [[ ${#PEER_BEST[@]} -gt 0 ]]; then
        run "$RES/train_torch_best.jsonl" $PY "$PEER" train "$DIR" --steps "$STEPS" --warmup "$WARMUP" "${PEER_BEST[@]}"
    elif [[ $HAVE_TORCH == 1 ]]; then
        run "$RES/train_torch_best.jsonl" $PY "$PEER" train "$DIR" --steps "$STEPS" --warmup "$WARMUP" --threads 1
    fi
done
[[ -x "$B/bench_train_step64" ]] && OPENBLAS_NUM_THREADS=1 run "$RES/train_c64.jsonl" "$B/bench_train_step64" train "$DIR" --steps "$STEPS" --warmup "$WARMUP"
if [[ ${#PEER_BEST[@]} -gt 0 ]]; then
    run "$RES/train_torch_f64.jsonl" $PY "$PEER" train "$DIR" --steps "$STEPS" --warmup "$WARMUP" "${PEER_BEST[@]}" --dtype float64
fi

# ---- 3. evaluation, alternating -------------------------------------------------------------
echo "== evaluation: IWAE-5000 and BSVI-500" >&2
EV=(--images "$EVAL_IMAGES" --iwae-images "$IWAE_IMAGES" --reps "$EVAL_REPS")
for r in $(seq 1 "$EVAL_ROUNDS"); do
    OPENBLAS_NUM_THREADS=1 run "$RES/eval_c_1t.jsonl" "$B/bench_train_step" eval "$DIR" "${EV[@]}"
    run "$RES/eval_c.jsonl" "$B/bench_train_step" eval "$DIR" "${EV[@]}"
    if [[ ${#PEER_BEST[@]} -gt 0 ]]; then
        run "$RES/eval_torch_best.jsonl" $PY "$PEER" eval "$DIR" "${EV[@]}" "${PEER_BEST[@]}"
    elif [[ $HAVE_TORCH == 1 ]]; then
        run "$RES/eval_torch_best.jsonl" $PY "$PEER" eval "$DIR" "${EV[@]}" --threads 1
    fi
done

# ---- 4. peak memory, one process per configuration ----------------------------------------
# (single-threaded on both sides: memory is a property of the algorithm, and it saves time)
echo "== peak memory" >&2
export OPENBLAS_NUM_THREADS=1
for k in 9 49 99; do
    run "$RES/mem.jsonl" "$B/bench_train_step" mem-train "$DIR" --method bsvi-sir --k $k --steps "$MEM_STEPS"
    run "$RES/mem.jsonl" "$B/bench_train_step" mem-train "$DIR" --method iwae --k $k --steps "$MEM_STEPS"
done
# growth in S and K on 10 images (one batch of 10); growth in images with IWAE-100 (batches of 100)
if [[ $QUICK == 1 ]]; then SS="1000 5000"; KS="100 500"; NS="100 200"; else SS="1000 5000 20000"; KS="100 500 2000"; NS="100 200 500"; fi
for s in $SS; do run "$RES/mem.jsonl" "$B/bench_train_step" mem-eval "$DIR" --what iwae --samples $s --images 10; done
for k in $KS; do run "$RES/mem.jsonl" "$B/bench_train_step" mem-eval "$DIR" --what bsvi --samples $k --images 10; done
for n in $NS; do run "$RES/mem.jsonl" "$B/bench_train_step" mem-eval "$DIR" --what iwae --samples 100 --images $n; done
if [[ $HAVE_TORCH == 1 ]]; then
    for k in 9 99; do
        run "$RES/mem.jsonl" $PY "$PEER" mem-train "$DIR" --method bsvi-sir --k $k --steps "$MEM_STEPS" --threads 1 --dtype float64
        run "$RES/mem.jsonl" $PY "$PEER" mem-train "$DIR" --method iwae --k $k --steps "$MEM_STEPS" --threads 1 --dtype float64
    done
    run "$RES/mem.jsonl" $PY "$PEER" mem-eval "$DIR" --what iwae --samples 5000 --images 10 --threads 1 --dtype float64
    run "$RES/mem.jsonl" $PY "$PEER" mem-eval "$DIR" --what bsvi --samples 500 --images 10 --threads 1 --dtype float64
fi

export OPENBLAS_NUM_THREADS="$THREADS"

# ---- reproducibility across thread counts ---------------------------------------------------
echo "== reproducibility" >&2
for t in 1 2; do
    OPENBLAS_NUM_THREADS=$t run "$RES/repro.jsonl" "$B/bench_repro"
    OPENBLAS_NUM_THREADS=$t run "$RES/fingerprint.jsonl" "$B/bench_train_step" fingerprint "$DIR" --steps "$FP_STEPS"
done

# ---- faithfulness of the peer: mean gradients at the same parameters -----------------------
if [[ $HAVE_TORCH == 1 ]]; then
    echo "== peer faithfulness (mean gradients)" >&2
    # gradients do not depend on speed: single-threaded to save time
    export OPENBLAS_NUM_THREADS=1
    for m in vae iwae svi bsvi bsvi-sir; do
        run "$RES/grad.jsonl" "$B/bench_train_step" grad "$DIR" --method $m --reps "$GRAD_REPS" --seed 1 --out "$RES/grad_c1_$m.bin"
        run "$RES/grad.jsonl" "$B/bench_train_step" grad "$DIR" --method $m --reps "$GRAD_REPS" --seed 2 --out "$RES/grad_c2_$m.bin"
        run "$RES/grad.jsonl" $PY "$PEER" grad "$DIR" --method $m --reps "$GRAD_REPS" --threads 1 --dtype float64 --out "$RES/grad_t_$m.bin"
    done
    export OPENBLAS_NUM_THREADS="$THREADS"
fi

# ---- profile of the C bsvi-sir step -----------------------------------------------------------
if command -v perf > /dev/null 2>&1; then
    echo "== perf profile (bsvi-sir)" >&2
    echo "perf record -o perf.data ${B#$ROOT/}/bench_train_step train ${DIR#$ROOT/} --methods bsvi-sir --steps $STEPS --warmup 1; perf report --stdio --no-children --sort dso,symbol" >> "$CMDS"
    if perf record -q -o "$RES/perf.data" "$B/bench_train_step" train "$DIR" --methods bsvi-sir \
            --steps "$STEPS" --warmup 1 > /dev/null 2> "$RES/perf.log"; then
        perf report -i "$RES/perf.data" --stdio --no-children --sort dso,symbol 2> /dev/null \
            | grep -v '^#' | grep -v '^$' | head -30 > "$RES/perf.txt" || true
        perf report -i "$RES/perf.data" --stdio --no-children --sort dso 2> /dev/null \
            | grep -v '^#' | grep -v '^$' | head -12 > "$RES/perf_dso.txt" || true
    fi
fi

echo "load_end=$(cut -d' ' -f1-3 /proc/loadavg)" >> "$RES/machine.txt"
echo "seconds=$((SECONDS - START))" >> "$RES/machine.txt"

# ---- report -----------------------------------------------------------------------------------
echo "== report" >&2
$PY "$ROOT/bench/report.py" "$RES" "$ROOT/docs"
echo "bench.sh: wrote docs/performance.md ($((SECONDS - START))s)" >&2
