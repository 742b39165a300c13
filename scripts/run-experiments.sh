#!/usr/bin/env bash
# Reproduces the experiment grid of docs/results.md (issue 3, "Results").
#
#   scripts/run-experiments.sh            # build, train every run, evaluate every best.ckpt
#   python3 scripts/make-results.py       # then regenerate docs/results.md and docs/img/*.png
#
# Every (data, method, seed) run is one job: `vae train` to EPOCHS epochs (continuing from
# runs/NAME/last.ckpt when the run exists, which the checkpoint format makes equivalent to an
# uninterrupted run), then `vae eval` of runs/NAME/best.ckpt on the first TEST_SUBSET test
# images. A simple job pool keeps JOBS processes busy, each single-threaded. Logs: runs/NAME/
# train.out, eval.out, eval.csv, log.csv; the pool's log is runs/queue.log.
#
# Re-running is idempotent: finished training is a no-op and an evaluation already in
# runs/NAME/eval.csv for the same test subset and best epoch is kept.
#
# Wall time of the MNIST grid below on the 2-core machine of docs/results.md (AMD EPYC, JOBS=2,
# one BLAS thread per process, machine shared with other build/test work, load 4 to 7):
# 1 h 23 min (summed process times: training 2 h 11 min, evaluation 21 min); idle single-core
# epoch times: vae ~20 s, bsvi-sir 46 s, svi 60 s, iwae 90 s; evaluation ~33 s per 100 test
# images. Fashion-MNIST: DATA=fashion-mnist (or fashion-mnist-gray) METHODS="svi bsvi-sir".
set -euo pipefail

# ---- settings -------------------------------------------------------------------------------
EPOCHS=${EPOCHS:-8}                 # the same for every method
SEEDS=${SEEDS:-"1 2 3"}
METHODS=${METHODS:-"iwae svi bsvi-sir vae"}   # longest first
DATA=${DATA:-mnist}                 # mnist | fashion-mnist | fashion-mnist-gray
TEST_SUBSET=${TEST_SUBSET:-200}     # first N test images (10000 = the full test set)
IWAE_SAMPLES=${IWAE_SAMPLES:-5000}
BSVI_WEIGHTS=${BSVI_WEIGHTS:-500}
ELBO_SAMPLES=${ELBO_SAMPLES:-1000}
JOBS=${JOBS:-2}                     # processes at once
# Training options shared by every method (the example's defaults, written out): batch 100,
# k 9 (svi: 10 steps, iwae: 10 samples, bsvi-sir: 10 weights), SVI plain gradient steps with
# eta 5e-3 (chosen by `vae svi-sweep`, examples/vae/README.md), AMSGrad lr 1e-3, no KL annealing,
# no early stopping (best.ckpt = best validation bound).
TRAIN_OPTS=${TRAIN_OPTS:-"--batch 100 --k 9 --svi-rule gradient --svi-step-size 5e-3 --lr 1e-3"}
# Learning curves: after every epoch, IWAE-CURVE_SAMPLES on the first CURVE_N test images
# (log.csv column test_iwae; 0 turns it off). Not counted in the epoch's training time.
CURVE_N=${CURVE_N:-500}
CURVE_SAMPLES=${CURVE_SAMPLES:-100}
# After the grid: SVI-k - SVI-0 of the gradient rule at several step sizes on the final SVI
# model of the first seed (500 validation images), to check the step size on the trained model.
SWEEP_ETAS=${SWEEP_ETAS-"1e-3,2e-3,5e-3,1e-2,2e-2,5e-2"}   # empty: no sweep
SWEEP_RULES=${SWEEP_RULES:-gradient}
# ----------------------------------------------------------------------------------------------

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
VAE=${VAE:-runs/bin/vae}
if [ ! -x "$VAE" ]; then
    cmake -S . -B build-exp -DCMAKE_BUILD_TYPE=Release -DBSVI_BUILD_TESTS=OFF
    cmake --build build-exp -j"$JOBS" --target vae
    mkdir -p runs/bin && cp build-exp/examples/vae/vae runs/bin/vae
fi
[ -d data-cache/mnist ] || scripts/fetch-data.sh
mkdir -p runs

log() { echo "$(date -u +%FT%TZ) $*" >> runs/queue.log; }
best_epoch() { # the epoch of DIR/best.ckpt: the first epoch with the best validation bound
    awk -F, 'NR > 1 && (b == "" || $8 > b) { b = $8; e = $1 } END { print e }' "$1/log.csv"
}

job() { # job METHOD SEED
    local m=$1 s=$2 name="$DATA-$1-s$2" dir="runs/$DATA-$1-s$2"
    local t0=$SECONDS
    log "start $name"
    if [ -f "$dir/last.ckpt" ]; then
        "$VAE" train --resume "$dir/last.ckpt" --epochs "$EPOCHS" --out "$dir" \
            --test-curve "$CURVE_N" --test-curve-samples "$CURVE_SAMPLES" >> "$dir/train.out" 2>&1
    else
        mkdir -p "$dir"
        # shellcheck disable=SC2086
        "$VAE" train --data "$DATA" --method "$m" --seed "$s" --epochs "$EPOCHS" $TRAIN_OPTS \
            --test-curve "$CURVE_N" --test-curve-samples "$CURVE_SAMPLES" \
            --out "$dir" > "$dir/train.out" 2>&1
    fi
    log "trained $name ($((SECONDS - t0)) s)"
    local t1=$SECONDS
    # an evaluation of this checkpoint's epoch on the same test subset is kept
    if [ -f "$dir/eval.csv" ] && [ "$(tail -n 1 "$dir/eval.csv" | cut -d, -f6)" = "$TEST_SUBSET" ] \
        && [ "$(tail -n 1 "$dir/eval.csv" | cut -d, -f4)" = "$(best_epoch "$dir")" ]; then
        log "evaluated $name (kept)"
        return 0
    fi
    "$VAE" eval --checkpoint "$dir/best.ckpt" --test-subset "$TEST_SUBSET" \
        --iwae-samples "$IWAE_SAMPLES" --bsvi-weights "$BSVI_WEIGHTS" \
        --elbo-samples "$ELBO_SAMPLES" > "$dir/eval.out" 2> "$dir/eval.err"
    head -n 2 "$dir/eval.out" > "$dir/eval.csv"
    log "evaluated $name ($((SECONDS - t1)) s)"
}

T0=$SECONDS
log "grid: DATA=$DATA EPOCHS=$EPOCHS SEEDS='$SEEDS' METHODS='$METHODS' TEST_SUBSET=$TEST_SUBSET JOBS=$JOBS"
# Seed-major order: every method of seed 1, then seed 2, ... so a cut-short grid stays balanced.
for s in $SEEDS; do
    for m in $METHODS; do
        while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
        job "$m" "$s" &
    done
done
wait
log "grid done: $((SECONDS - T0)) s wall"
s1=${SEEDS%% *}
if [ -n "$SWEEP_ETAS" ] && [ -f "runs/$DATA-svi-s$s1/best.ckpt" ] && [ ! -s "runs/$DATA-svi-sweep.txt" ]; then
    "$VAE" svi-sweep --checkpoint "runs/$DATA-svi-s$s1/best.ckpt" --rules "$SWEEP_RULES" \
        --etas "$SWEEP_ETAS" --k 10 --n 500 > "runs/$DATA-svi-sweep.txt" 2>&1
    log "svi-sweep done: runs/$DATA-svi-sweep.txt"
fi
