#!/usr/bin/env bash
# The PyTorch peer's run settings on this machine (issue 9): every combination of
# torch.set_num_threads 1|2, OPENBLAS_NUM_THREADS 1|2 and glibc's malloc defaults or the
# heap tunables (vae_step.py --malloc-heap), in float32, plus float64 at two of them for the
# extra column (and OPENBLAS_CORETYPE where OpenBLAS misdetects the CPU, below). Each setting runs the five training methods and the two evaluations; the
# settings alternate within each round (and the first setting rotates from round to round),
# because timings on a shared machine drift by tens of percent over minutes.
#
#   bash bench/peer/sweep_settings.sh DIR OUTDIR
#
# DIR: the files of `bench_train_step prep DIR`. Appends to OUTDIR/peer_sweep.jsonl (one JSON
# line per run, with "setting" and "round"; a "sweep" line with the load average at start
# and end), logs the commands to OUTDIR/commands.txt, and writes the winner to
# OUTDIR/peer_best.env (PEER_BEST_SETTING, PEER_BEST_ARGS=(vae_step.py options)), summarised
# by bench/peer/sweep_summary.py.
# Environment: SWEEP_ROUNDS (5), SWEEP_STEPS (20), SWEEP_WARMUP (3), SWEEP_EVAL_IMAGES (100,
# the BSVI-500 images, one batch), SWEEP_IWAE_IMAGES (10), SWEEP_SETTINGS (the labels, see
# below), SWEEP_EVAL (1; 0 skips the evaluations).
# Setting labels: t<torch threads>-ob<OpenBLAS threads>[-skx][-heap][-ftz][-f64]
# (-skx: OPENBLAS_CORETYPE=SkylakeX; -ftz: torch.set_flush_denormal(True)).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
DIR="$1"
OUT="$2"
PY=/usr/bin/python3
PEER="$HERE/vae_step.py"
ROUNDS="${SWEEP_ROUNDS:-5}"
STEPS="${SWEEP_STEPS:-20}"
WARMUP="${SWEEP_WARMUP:-3}"
EVAL_IMAGES="${SWEEP_EVAL_IMAGES:-100}"
IWAE_IMAGES="${SWEEP_IWAE_IMAGES:-10}"
DO_EVAL="${SWEEP_EVAL:-1}"
# OpenBLAS 0.3.21 does not know recent Intel CPUs (e.g. family 6 model 207) and falls back to
# its Prescott (SSE3) kernels; where the CPU has AVX-512 and that happens, every setting also
# gets OPENBLAS_CORETYPE=SkylakeX (-skx), and two without it show the out-of-the-box speed.
CT="" BASE=""
if grep -qw avx512f /proc/cpuinfo && env -u OPENBLAS_CORETYPE OPENBLAS_VERBOSE=2 \
        $PY -c "import torch" 2>&1 | grep -q "Core: Prescott"; then
    CT="-skx"; BASE="t1-ob1 t1-ob2-heap"
fi
DEFAULT=""
for h in "" -heap; do for t in 1 2; do for o in 1 2; do DEFAULT+="t$t-ob$o$CT$h "; done; done; done
# flush-to-zero: importance-weighted rows with tiny coefficients reach float's subnormal
# range, where every operation takes a microcode assist (the IWAE step 3x slower here)
DEFAULT+="t1-ob1$CT-heap-ftz t1-ob2$CT-heap-ftz t2-ob2$CT-heap-ftz "
DEFAULT+="$BASE t1-ob1$CT-heap-f64 t1-ob2$CT-heap-f64"
read -r -a SETTINGS <<< "${SWEEP_SETTINGS:-$DEFAULT}"
JS="$OUT/peer_sweep.jsonl"
mkdir -p "$OUT"

args_of() {  # label -> vae_step.py options
    local a=() p
    IFS=- read -r -a parts <<< "$1"
    for p in "${parts[@]}"; do
        case "$p" in
            ob*) a+=(--openblas-threads "${p#ob}") ;;
            t*) a+=(--threads "${p#t}") ;;
            skx) a+=(--openblas-coretype SkylakeX) ;;
            heap) a+=(--malloc-heap) ;;
            ftz) a+=(--flush-denormal) ;;
            f64) a+=(--dtype float64) ;;
            f32) a+=(--dtype float32) ;;
            *) echo "sweep: unknown part '$p' of setting '$1'" >&2; exit 2 ;;
        esac
    done
    echo "${a[@]}"
}

# one RUN: appends the peer's lines, each tagged with the round
one() {
    local r="$1" lab="$2"; shift 2
    echo "${*//$ROOT\//}" >> "$OUT/commands.txt"
    echo "[sweep r$r $lab] ${*//$ROOT\//}" >&2
    "$@" | sed "s/^{/{\"round\": $r, /" >> "$JS"
}

n=${#SETTINGS[@]}
printf '{"kind": "sweep", "when": "start", "loadavg": "%s", "rounds": %s, "steps": %s, "settings": "%s"}\n' \
    "$(cut -d' ' -f1-3 /proc/loadavg)" "$ROUNDS" "$STEPS" "${SETTINGS[*]}" >> "$JS"
for r in $(seq 1 "$ROUNDS"); do
    for j in $(seq 0 $((n - 1))); do
        lab="${SETTINGS[$(((j + r - 1) % n))]}"
        # shellcheck disable=SC2046
        set -- $(args_of "$lab") --setting "$lab"
        one "$r" "$lab" $PY "$PEER" train "$DIR" --steps "$STEPS" --warmup "$WARMUP" "$@"
        if [[ $DO_EVAL == 1 ]]; then
            one "$r" "$lab" $PY "$PEER" eval "$DIR" --images "$EVAL_IMAGES" \
                --iwae-images "$IWAE_IMAGES" --reps 1 "$@"
        fi
    done
done
printf '{"kind": "sweep", "when": "end", "loadavg": "%s"}\n' "$(cut -d' ' -f1-3 /proc/loadavg)" >> "$JS"
$PY "$HERE/sweep_summary.py" "$OUT" --env "$OUT/peer_best.env" >&2
