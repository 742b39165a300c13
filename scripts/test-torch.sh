#!/usr/bin/env bash
# The LibTorch host (examples/torch): install LibTorch (Debian libtorch-dev 1.13, through
# scripts/deps.sh --torch), build examples/torch in build-torch/ and run its two ctest tests:
#   torch_agreement  one step per method (and the logistic likelihood, IWAE with DReG)
#                    against examples/vae from the same parameters and batch
#   torch_smoke      one epoch of `vae_torch train --data builtin --method bsvi-sir`
# Then prints the agreement table and the smoke run's log.
#
#   bash scripts/test-torch.sh
# Environment: BSVI_TORCH_BUILD (default build-torch) the build directory; JOBS (default 2:
# LibTorch's translation unit takes about 1 GB of memory and half a minute to compile);
# BSVI_SKIP_DEPS=1 skips the package check (as for scripts/test.sh).
# Measured on a 2-core Debian 12 machine: install 41 s (158 packages, 510 MB on disk, 124 MB
# to download; 91 MB of it were in apt's cache, the rest came at 58 MB/s), configure + build
# from scratch 129 s wall on cores shared with two other jobs (47 s of CPU), tests 9 s.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${BSVI_TORCH_BUILD:-$ROOT/build-torch}"
JOBS="${JOBS:-2}"
START=$SECONDS
STEP="start"
trap 'echo "test-torch.sh: FAILED during: $STEP" >&2' ERR
step() {
    STEP="$1"
    echo
    echo "=== [$((SECONDS - START))s] $1 ==="
}

step "dependencies (libtorch-dev)"
T0=$SECONDS
bash "$ROOT/scripts/deps.sh" --torch
T_DEPS=$((SECONDS - T0))

step "configure + build examples/torch (Release, -Werror) in ${BUILD#$ROOT/}/"
T0=$SECONDS
mkdir -p "$BUILD"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DBSVI_WERROR=ON \
    -DBSVI_BUILD_TESTS=ON -DBSVI_BUILD_EXAMPLES=ON -DBSVI_BUILD_TORCH=ON > "$BUILD/configure.log" 2>&1 ||
    { cat "$BUILD/configure.log" >&2; false; }
grep "examples/torch" "$BUILD/configure.log" || true
cmake --build "$BUILD" --parallel "$JOBS" --target vae_torch test_torch_agreement
T_BUILD=$((SECONDS - T0))

step "ctest -R torch_ (agreement with examples/vae, one-epoch smoke run)"
T0=$SECONDS
(cd "$BUILD" && ctest -R '^torch_' --output-on-failure)
T_TEST=$((SECONDS - T0))
"$BUILD/examples/torch/test_torch_agreement"
cat "$BUILD/examples/torch/smoke/log.csv"

echo
echo "test-torch.sh: OK in $((SECONDS - START))s (deps ${T_DEPS}s, build ${T_BUILD}s, tests ${T_TEST}s)"
