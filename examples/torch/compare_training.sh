#!/usr/bin/env bash
# Short training runs of examples/torch's vae_torch beside examples/vae's vae on the shipped
# subset: same data, batches, initialisation and libbsvi streams, so the two differ only by
# float32 rounding (which the SVI steps and 100s of AMSGrad steps amplify into run-to-run
# noise). Prints a table of the last epoch's validation bound per method and seed.
#
#   bash examples/torch/compare_training.sh BUILD_DIR [EPOCHS] [METHODS] [SEEDS]
#   (defaults: 10 epochs; all seven methods; seeds "1 2 3")
# BUILD_DIR holds examples/vae/vae and examples/torch/vae_torch (-DBSVI_BUILD_TORCH=ON).
set -euo pipefail
BUILD="${1:?usage: compare_training.sh BUILD_DIR [EPOCHS] [METHODS] [SEEDS]}"
EPOCHS="${2:-10}"
METHODS="${3:-vae iwae svi bsvi bsvi-ds bsvi-sir bsvi-sir-pi}"
SEEDS="${4:-1 2 3}"
OUT="${COMPARE_OUT:-$BUILD/compare-training}"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
mkdir -p "$OUT"
last_valid() { tail -1 "$1/log.csv" | cut -d, -f8; }
secs() { awk -F, 'NR > 1 { s += $12 } END { printf "%.1f", s }' "$1/log.csv"; }
echo "| method | seed | vae valid | vae_torch valid | diff | vae s | vae_torch s |"
echo "|---|---|---|---|---|---|---|"
for m in $METHODS; do
    for s in $SEEDS; do
        "$BUILD/examples/vae/vae" train --data builtin --method "$m" --epochs "$EPOCHS" \
            --seed "$s" --overwrite --out "$OUT/c-$m-s$s" 2>/dev/null
        "$BUILD/examples/torch/vae_torch" train --data builtin --method "$m" --epochs "$EPOCHS" \
            --seed "$s" --overwrite --out "$OUT/torch-$m-s$s" 2>/dev/null
        c=$(last_valid "$OUT/c-$m-s$s"); t=$(last_valid "$OUT/torch-$m-s$s")
        echo "| $m | $s | $c | $t | $(awk -v a="$t" -v b="$c" 'BEGIN { printf "%+.3f", a - b }') |" \
             "$(secs "$OUT/c-$m-s$s") | $(secs "$OUT/torch-$m-s$s") |"
    done
done
