#!/usr/bin/env bash
# The tests of vae_mpi (registered by CMakeLists.txt when CMake finds MPI), on the builtin data:
#
#   test_mpi.sh eval  MPIEXEC VAE_MPI VAE CKPT_COMPARE DIR
#       a checkpoint of one epoch (vae), then `vae eval` and `mpirun -np N vae_mpi eval` for
#       N = 1, 2, 3: the outputs are byte-identical but for the eval_seconds column
#   test_mpi.sh train MPIEXEC VAE_MPI VAE CKPT_COMPARE DIR [METHOD]
#       100 steps (10 epochs of the first 1000 training images) with vae and with vae_mpi on
#       N = 1, 2, 3 processes (each run stops with an error if its ranks' parameter checksums
#       differ after an epoch): N = 1 equals vae bit for bit (log and parameters); N = 2, 3
#       agree with it within TRAIN_TOL (relative L2 distance and largest difference over the
#       largest parameter), the validation bound of epoch 1 within VALID_TOL nats; and a run
#       of 5 epochs on 2 processes resumed for 5 more on 3 agrees with vae's uninterrupted
#       run of 10 epochs within TRAIN_TOL (the checkpoint holds pi's Adam state too), and
#       one of 5 epochs on 1 process resumed for 5 more on 1 equals it bit for bit (log and
#       parameters).
#
# mpirun gets --oversubscribe (more ranks than cores) and, as root, --allow-run-as-root.
set -euo pipefail

mode=$1 mpiexec=$2 vae_mpi=$3 vae=$4 compare=$5 dir=$6 method=${7:-bsvi-sir-pi}
# float32, 100 steps: measured 3e-7 (relative L2) and 3e-6 (largest difference / largest
# parameter) for N = 2, 3 on bsvi-sir; the bounds are the tolerances' 30x or more.
TRAIN_TOL=1e-4
VALID_TOL=0.01

flags=(--oversubscribe)
if [[ "$(id -u)" == "0" ]]; then flags+=(--allow-run-as-root); fi
export OPENBLAS_NUM_THREADS=1
# Under AddressSanitizer (build-asan/) LeakSanitizer would report the MPI runtime's own
# allocations, which it keeps until exit: no leak check for the MPI runs (vae's are checked).
mpi() {
    local np=$1
    shift
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
        "$mpiexec" "${flags[@]}" -np "$np" "$vae_mpi" "$@"
}
fail() {
    echo "test_mpi: FAILED: $*" >&2
    exit 1
}
rm -rf "$dir"
mkdir -p "$dir"

case "$mode" in
eval)
    "$vae" train --data builtin --method "$method" --epochs 1 --seed 1 --out "$dir/run" \
        2>"$dir/train.err" || fail "training the checkpoint (see $dir/train.err)"
    ck="$dir/run/last.ckpt"
    args=(eval --checkpoint "$ck" --iwae-samples 50 --bsvi-weights 10 --elbo-samples 20
          --test-subset 250)
    # the CSV line's 14th column is eval_seconds
    strip() { awk -F, 'BEGIN { OFS = "," } NR == 2 { $14 = "T" } { print }'; }
    "$vae" "${args[@]}" 2>"$dir/eval.err" | strip >"$dir/eval.plain" \
        || fail "vae eval (see $dir/eval.err)"
    [[ -s "$dir/eval.plain" ]] || fail "vae eval wrote nothing"
    for np in 1 2 3; do
        mpi "$np" "${args[@]}" 2>"$dir/eval.np$np.err" | strip >"$dir/eval.np$np" \
            || fail "mpirun -np $np vae_mpi eval (see $dir/eval.np$np.err)"
        cmp "$dir/eval.plain" "$dir/eval.np$np" \
            || fail "eval over $np processes differs from vae eval: $(diff "$dir/eval.plain" "$dir/eval.np$np")"
        echo "eval over $np process(es): identical to vae eval"
    done
    cat "$dir/eval.plain"
    ;;
train)
    targs=(train --data builtin --method "$method" --max-train 1000 --seed 1)
    "$vae" "${targs[@]}" --epochs 10 --out "$dir/plain" 2>"$dir/plain.err" \
        || fail "vae train (see $dir/plain.err)"
    cols() { cut -d, -f1-11 "$1/log.csv"; } # all but the timing columns (and test_iwae)
    for np in 1 2 3; do
        mpi "$np" "${targs[@]}" --epochs 10 --out "$dir/np$np" 2>"$dir/np$np.err" \
            || fail "mpirun -np $np vae_mpi train (see $dir/np$np.err)"
        if [[ $np == 1 ]]; then
            cmp <(cols "$dir/plain") <(cols "$dir/np1") || fail "one process: log differs from vae's"
            "$compare" "$dir/np1/last.ckpt" "$dir/plain/last.ckpt" 0 \
                || fail "one process: parameters differ from vae's"
        else
            "$compare" "$dir/np$np/last.ckpt" "$dir/plain/last.ckpt" "$TRAIN_TOL" \
                || fail "$np processes: parameters beyond $TRAIN_TOL of vae's"
        fi
        awk -F, -v tol="$VALID_TOL" -v np="$np" '
            NR == FNR && FNR == 2 { v = $8 }
            NR != FNR && FNR == 2 { d = $8 - v; if (d < 0) d = -d
                printf "N = %s: validation bound of epoch 1 %s (vae %s, |difference| %.4f)\n", np, $8, v, d
                if (d > tol) exit 1 }' "$dir/plain/log.csv" "$dir/np$np/log.csv" \
            || fail "$np processes: validation bound beyond $VALID_TOL of vae's"
    done
    # resumed on another number of processes: the checkpoint holds no rank's state, and
    # (format version 4) pi with its Adam state, so the resumed run continues the
    # uninterrupted one: compared with vae's 10 epochs straight.
    mpi 2 "${targs[@]}" --epochs 5 --out "$dir/resume" 2>"$dir/resume2.err" \
        || fail "mpirun -np 2 vae_mpi train (5 epochs; see $dir/resume2.err)"
    mpi 3 train --resume "$dir/resume/last.ckpt" --epochs 10 2>"$dir/resume3.err" \
        || fail "mpirun -np 3 vae_mpi train --resume (see $dir/resume3.err)"
    [[ $(wc -l <"$dir/resume/log.csv") == 11 ]] || fail "resumed log: not 10 rows"
    mpi 1 "${targs[@]}" --epochs 5 --out "$dir/resume1" 2>"$dir/resume1.err" \
        || fail "mpirun -np 1 vae_mpi train (5 epochs; see $dir/resume1.err)"
    mpi 1 train --resume "$dir/resume1/last.ckpt" --epochs 10 2>>"$dir/resume1.err" \
        || fail "mpirun -np 1 vae_mpi train --resume (see $dir/resume1.err)"
    cmp <(cols "$dir/plain") <(cols "$dir/resume1") \
        || fail "one process, resumed: log differs from vae's uninterrupted run"
    "$compare" "$dir/resume1/last.ckpt" "$dir/plain/last.ckpt" 0 \
        || fail "one process, resumed: parameters differ from vae's uninterrupted run"
    "$compare" "$dir/resume/last.ckpt" "$dir/plain/last.ckpt" "$TRAIN_TOL" \
        || fail "2 then 3 processes (resumed): parameters beyond $TRAIN_TOL of vae's uninterrupted run"
    ;;
*)
    fail "unknown mode $mode (eval, train)"
    ;;
esac
echo "test_mpi $mode: passed"
