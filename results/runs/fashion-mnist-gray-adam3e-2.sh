#!/usr/bin/env bash
# Grayscale sensitivity check: SVI-10 and BSVI-9-SIR with Adam 3e-2 (second best in the sweeps), seed 1.
set -euo pipefail
cd /work/main
export OPENBLAS_NUM_THREADS=1
for m in svi bsvi-sir; do
  d=runs/gray-adam3e-2-$m-s1
  mkdir -p $d
  runs/bin/vae train --data fashion-mnist-gray --method $m --seed 1 --epochs 5 --batch 100 --k 9 \
      --svi-rule adam --svi-step-size 3e-2 --lr 1e-3 --test-curve 500 --test-curve-samples 100 --out $d > $d/train.out 2>&1
  runs/bin/vae eval --checkpoint $d/best.ckpt --test-subset 200 --iwae-samples 5000 --bsvi-weights 500 --elbo-samples 1000 > $d/eval.out 2> $d/eval.err
done
