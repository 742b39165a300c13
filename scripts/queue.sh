#!/usr/bin/env bash
# The resumable run queue of the paper's experiment (docs/results.md, issue 10).
#
#   scripts/queue.sh run [JOBS]   # work through results/paper/queue.txt with JOBS workers (default 2)
#   scripts/queue.sh worker       # one more worker beside a running queue (claims are kept)
#   scripts/queue.sh save         # copy the unfinished runs' state into results/paper/ckpt/ and commit
#   scripts/queue.sh status       # one line per queued run: done / running / resumable / new
#
# results/paper/queue.txt holds one run per line, in priority order:
#   DATA METHOD SEED EPOCHS PATIENCE [TRAIN OPTIONS...]
# (comments start with #); the options, if any, follow TRAIN_OPTS on the command line, so
# they override it (e.g. the grayscale data set's own SVI rule and step size). A row that sets
# --svi-step-size X is named DATA-METHOD-sSEED-etaX. A run's name is DATA-METHOD-sSEED; its working directory is
# runs/NAME (ignored by git). A worker takes the first line that is neither done nor claimed by
# another worker (mkdir runs/NAME.claim is the lock), then:
#   1. trains: `vae train` to EPOCHS epochs with early stopping after PATIENCE epochs without a
#      better validation bound, continuing from runs/NAME/last.ckpt, or from the copy in
#      results/paper/ckpt/NAME/ that `save` committed in an earlier session;
#   2. evaluates runs/NAME/best.ckpt on the first TEST_SUBSET test images (default 10000, the
#      whole test set): IWAE-5000, BSVI-500, ELBO*, KL*, Reconstruction*;
#   3. copies the raw files (log.csv, train.out, eval.csv, eval.out) into results/paper/runs/NAME/,
#      writes results/paper/runs/NAME/DONE, removes results/paper/ckpt/NAME and commits those paths only.
# Every process is single-threaded (OPENBLAS_NUM_THREADS=1) and runs under nice -n 5. The
# program is runs/bin/vae, a copy made once per machine from a Release build of the float32
# example (build-exp/), so that rebuilding the tree never changes a binary in use.
# The queue file is read again for every pick, so lines can be appended while it runs (write a
# new file and rename it over the old one). Log of the pool: runs/queue.log (copied to
# results/paper/runs/queue.log on each commit).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
QUEUE=${QUEUE:-results/paper/queue.txt}
VAE=${VAE:-runs/bin/vae}
TEST_SUBSET=${TEST_SUBSET:-10000}
IWAE_SAMPLES=${IWAE_SAMPLES:-5000}
BSVI_WEIGHTS=${BSVI_WEIGHTS:-500}
ELBO_SAMPLES=${ELBO_SAMPLES:-1000}
CURVE_N=${CURVE_N:-500}
CURVE_SAMPLES=${CURVE_SAMPLES:-100}
# The example's defaults, written out (the same for every method of a data set): batch 100,
# k 9, SVI plain gradient steps with eta 5e-3 (chosen by `vae svi-sweep`), AMSGrad lr 1e-3.
TRAIN_OPTS=${TRAIN_OPTS:-"--batch 100 --k 9 --svi-rule gradient --svi-step-size 5e-3 --lr 1e-3"}
GIT_LOCK=${GIT_LOCK:-/tmp/bsvi-queue-git.lock}

mkdir -p runs
log() { echo "$(date -u +%FT%TZ) $*" >> runs/queue.log; }

build() {
    # the data sets (scripts/fetch-data.sh verifies and caches them in data-cache/)
    [ -d data-cache/mnist ] && [ -d data-cache/fashion-mnist ] || scripts/fetch-data.sh
    [ -x "$VAE" ] && return 0
    bash scripts/deps.sh >&2 # build dependencies (apt-get; skipped when present)
    cmake -S . -B build-exp -DCMAKE_BUILD_TYPE=Release -DBSVI_BUILD_TESTS=OFF \
        -DBSVI_BUILD_BENCH=OFF > /dev/null
    cmake --build build-exp -j2 --target vae > /dev/null
    mkdir -p runs/bin
    cp build-exp/examples/vae/vae "$VAE.tmp" && mv "$VAE.tmp" "$VAE"
}

# git commit of the given paths only (never what else is staged), serialised between workers
# and retried while another git command holds the index.
commit_paths() {
    local msg=$1; shift
    (
        flock 9
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            if git add -A -- "$@" 2>/dev/null && git commit -q -m "$msg" -- "$@" 2>/dev/null; then
                exit 0
            fi
            sleep 3
        done
        log "commit failed: $msg"
        exit 1
    ) 9> "$GIT_LOCK"
}

queue_lines() { grep -v '^[[:space:]]*\(#\|$\)' "$QUEUE" || true; }

# run_name DATA METHOD SEED [OPTIONS...]: DATA-METHOD-sSEED, with -etaX appended when the row's
# options set --svi-step-size X (a row that overrides the step is another run)
run_name() {
    local n="$1-$2-s$3" eta="" prev=""
    shift 3
    for a in "$@"; do
        [ "$prev" = "--svi-step-size" ] && eta=$a
        prev=$a
    done
    [ -n "$eta" ] && n="$n-eta$eta"
    echo "$n"
}

job() { # job DATA METHOD SEED EPOCHS PATIENCE [OPTIONS...]
    local data=$1 m=$2 s=$3 epochs=$4 patience=$5
    shift 5
    local extra=("$@")
    local name
    name=$(run_name "$data" "$m" "$s" "${extra[@]}")
    local dir="runs/$name" res="results/paper/runs/$name"
    local t0=$SECONDS
    mkdir -p "$dir"
    if [ ! -f "$dir/last.ckpt" ] && [ -f "results/paper/ckpt/$name/last.ckpt" ]; then
        cp results/paper/ckpt/"$name"/* "$dir"/
        log "restored $name from results/paper/ckpt (epoch $(($(wc -l < "$dir/log.csv") - 1)))"
    fi
    log "start $name"
    # every step is checked explicitly: job runs on the left of || in worker, where bash
    # ignores set -e, and a run must never be marked DONE after a failed step
    if [ -f "$dir/last.ckpt" ]; then
        nice -n 5 "$VAE" train --resume "$dir/last.ckpt" --epochs "$epochs" --patience "$patience" \
            --out "$dir" --test-curve "$CURVE_N" --test-curve-samples "$CURVE_SAMPLES" \
            >> "$dir/train.out" 2>&1 || { log "training failed: $name (see $dir/train.out)"; return 1; }
    else
        # no last.ckpt: nothing to continue; what an attempt cut short in its first epoch left
        # (a log header, a best.ckpt) would make `vae train` refuse the directory
        rm -f "$dir/log.csv" "$dir/best.ckpt"
        # shellcheck disable=SC2086
        nice -n 5 "$VAE" train --data "$data" --method "$m" --seed "$s" --epochs "$epochs" \
            --patience "$patience" $TRAIN_OPTS "${extra[@]}" --test-curve "$CURVE_N" \
            --test-curve-samples "$CURVE_SAMPLES" --out "$dir" > "$dir/train.out" 2>&1 ||
            { log "training failed: $name (see $dir/train.out)"; return 1; }
    fi
    [ -f "$dir/best.ckpt" ] || { log "no best.ckpt after training: $name"; return 1; }
    log "trained $name ($((SECONDS - t0)) s)"
    local t1=$SECONDS
    nice -n 5 "$VAE" eval --checkpoint "$dir/best.ckpt" --test-subset "$TEST_SUBSET" \
        --iwae-samples "$IWAE_SAMPLES" --bsvi-weights "$BSVI_WEIGHTS" \
        --elbo-samples "$ELBO_SAMPLES" > "$dir/eval.out" 2> "$dir/eval.err" ||
        { log "evaluation failed: $name (see $dir/eval.err)"; return 1; }
    head -n 2 "$dir/eval.out" > "$dir/eval.csv"
    [ "$(wc -l < "$dir/eval.csv")" -eq 2 ] || { log "evaluation wrote no result: $name"; return 1; }
    log "evaluated $name on $TEST_SUBSET test images ($((SECONDS - t1)) s)"
    mkdir -p "$res"
    cp "$dir/log.csv" "$dir/train.out" "$dir/eval.csv" "$dir/eval.out" "$res"/
    # Figure 5: images from the decoders of svi and bsvi-sir-pi, kept beside the run's results
    # (the checkpoint itself is not kept); a binary built before `vae sample` skips this
    case "$m" in
        svi | bsvi-sir-pi)
            "$VAE" sample --checkpoint "$dir/best.ckpt" --out "$res/samples.pgm" --rows 8 \
                --per-row 6 --seed 1 >> "$dir/eval.err" 2>&1 ||
                log "no decoder samples for $name (vae sample failed or is missing)" ;;
    esac
    echo "trained and evaluated $(date -u +%FT%TZ); $TEST_SUBSET test images" > "$res/DONE"
    cp runs/queue.log results/paper/runs/queue.log
    local paths=("$res" results/paper/runs/queue.log)
    # a restored run's saved state goes: deleting the directory and `git add -A` on its path
    # stages the deletion (an earlier `git rm --cached` made that path unknown to git, and the
    # commit of the run's files failed on it)
    [ -d "results/paper/ckpt/$name" ] && { rm -rf "results/paper/ckpt/$name"; paths+=("results/paper/ckpt/$name"); }
    commit_paths "results: $name finished (raw files of the run)" "${paths[@]}" || return 1
}

worker() {
    while :; do
        local picked=""
        while read -r data m s epochs patience extra; do
            # shellcheck disable=SC2086
            local name
            name=$(run_name "$data" "$m" "$s" $extra)
            [ -f "results/paper/runs/$name/DONE" ] && continue
            mkdir "runs/$name.claim" 2>/dev/null || continue
            picked="$data $m $s $epochs $patience $extra"
            break
        done < <(queue_lines)
        [ -z "$picked" ] && return 0
        # shellcheck disable=SC2086
        job $picked || log "job failed: $picked"
        set -- $picked
        local pname
        pname=$(run_name "$1" "$2" "$3" "${@:6}")
        rmdir "runs/$pname.claim" 2>/dev/null || true
        [ -f "results/paper/runs/$pname/DONE" ] || return 1 # a failing run stops this worker
    done
}

case "${1:-run}" in
run)
    # one pool per machine: run clears the claims, which a second pool would share
    exec 8> runs/.pool.lock
    flock -n 8 || { echo "queue: a pool is already running here (runs/.pool.lock); add workers with 'worker'" >&2; exit 1; }
    build
    jobs=${2:-2}
    rm -rf runs/*.claim
    log "queue: $jobs workers, $QUEUE, TEST_SUBSET=$TEST_SUBSET"
    for ((w = 0; w < jobs; ++w)); do worker & sleep 1; done
    wait
    log "queue: no runs left for these workers"
    ;;
worker)
    build
    log "queue: one more worker"
    worker
    ;;
save)
    saved=()
    while read -r data m s _ _ extra; do
        # shellcheck disable=SC2086
        name=$(run_name "$data" "$m" "$s" $extra)
        [ -f "results/paper/runs/$name/DONE" ] && continue
        [ -f "runs/$name/last.ckpt" ] || continue
        mkdir -p "results/paper/ckpt/$name"
        for f in last.ckpt best.ckpt log.csv train.out; do
            [ -f "runs/$name/$f" ] && cp "runs/$name/$f" "results/paper/ckpt/$name/$f.tmp" &&
                mv "results/paper/ckpt/$name/$f.tmp" "results/paper/ckpt/$name/$f"
        done
        saved+=("results/paper/ckpt/$name")
    done < <(queue_lines)
    cp runs/queue.log results/paper/runs/queue.log 2>/dev/null || true
    if [ ${#saved[@]} -gt 0 ]; then
        commit_paths "results: state of the unfinished runs for the next session (${#saved[@]} runs)" \
            "${saved[@]}" results/paper/runs/queue.log
        echo "saved: ${saved[*]}"
    fi
    ;;
status)
    while read -r data m s epochs _ extra; do
        # shellcheck disable=SC2086
        name=$(run_name "$data" "$m" "$s" $extra)
        if [ -f "results/paper/runs/$name/DONE" ]; then st=done
        elif [ -d "runs/$name.claim" ]; then st=running
        elif [ -f "runs/$name/last.ckpt" ] || [ -f "results/paper/ckpt/$name/last.ckpt" ]; then st=resumable
        else st=new; fi
        ep=0
        for l in "runs/$name/log.csv" "results/paper/ckpt/$name/log.csv" "results/paper/runs/$name/log.csv"; do
            [ -f "$l" ] && { ep=$(($(wc -l < "$l") - 1)); break; }
        done
        printf '%-32s %-9s %4s/%s epochs\n' "$name" "$st" "$ep" "$epochs"
    done < <(queue_lines)
    ;;
*) echo "usage: $0 run [JOBS] | worker | save | status" >&2; exit 2 ;;
esac
