#!/usr/bin/env bash
# One command for a fresh Debian machine: install the build dependencies and
# run the whole libbsvi check (this is what .ci/run executes):
#   1. README sketch == examples/consumers/readme_sketch.c
#   2. build/       Release, -Werror, ctest
#   3. build-asan/  AddressSanitizer + UndefinedBehaviorSanitizer, -Werror, ctest
#   4. reliability (docs/reliability.md):
#      a. every public header alone as C99/C11 (gcc, clang) and C++11/C++17 (g++,
#         clang++) with -Wall -Wextra -Wpedantic -Werror
#      b. build-tsan/  ThreadSanitizer: test_threads
#      c. valgrind memcheck of every test program of build/ (Release)
#      d. build-fuzz/  libFuzzer + ASan + UBSan: fuzz_api for BSVI_FUZZ_SECONDS (60) s
#         from the committed corpus fuzz/corpus, and fuzz_readers (the VAE example's
#         checkpoint and IDX readers, with a memory limit) for BSVI_FUZZ_READERS_SECONDS
#         (60) s from fuzz/corpus-readers
#      e. build-abi/   ABI check against abi/libbsvi.so.<SOVERSION>.abi (scripts/abi-check.sh;
#                      SOVERSION: MAJOR.MINOR while the major version is 0, else MAJOR)
#   5. docs target (Doxygen, warnings are errors)
#   6. install into a temporary prefix; build and run against it:
#      a C consumer via pkg-config, the README sketch, a C consumer via
#      find_package (shared and static), and a C++ consumer
#   7. Debian packages (scripts/test-deb.sh): cpack -G DEB in build-deb/, contents, apt-get
#      install, the consumers against /usr, apt-get purge, the uninstall target; only as
#      root with CI=true or BSVI_DEB_TEST=1 (it installs packages), skipped otherwise
#   8. LibTorch host (scripts/test-torch.sh): libtorch-dev, build-torch/, ctest -R torch_;
#      only with CI=true or BSVI_TORCH=1 (it installs packages), skipped otherwise
#   bash scripts/test.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
JOBS="$(nproc 2>/dev/null || echo 2)"
STEP="start"
START=$SECONDS
trap 'echo "test.sh: FAILED during: $STEP" >&2' ERR

step() {
    STEP="$1"
    echo
    echo "=== [$((SECONDS - START))s] $1 ==="
}

# ---- 1. the README's C sketch is the compiled file, verbatim -------------------
step "README sketch is identical to examples/consumers/readme_sketch.c"
SKETCH_FILE="$ROOT/examples/consumers/readme_sketch.c"
SKETCH_README="$(awk '
    /<!-- readme_sketch.c: begin -->/ { inside = 1; next }
    /<!-- readme_sketch.c: end -->/   { inside = 0 }
    inside && !/^```/ { print }
' "$ROOT/README.md")"
if [[ -z "$SKETCH_README" ]]; then
    echo "README.md has no <!-- readme_sketch.c: begin/end --> block" >&2
    false
fi
if ! diff -u "$SKETCH_FILE" <(printf '%s\n' "$SKETCH_README"); then
    echo "README.md sketch and $SKETCH_FILE differ (diff above)" >&2
    false
fi
echo "identical ($(wc -l <"$SKETCH_FILE") lines)"

# ---- dependencies -------------------------------------------------------------------
step "dependencies"
bash "$ROOT/scripts/deps.sh"

count_tests() { (cd "$1" && ctest -N | sed -n 's/^Total Tests: //p'); }

# ---- 2. main build ------------------------------------------------------------------
step "configure + build (Release, -Werror) in build/"
cmake -S "$ROOT" -B "$ROOT/build" \
    -DCMAKE_BUILD_TYPE=Release \
    -DBSVI_WERROR=ON \
    -DBSVI_SANITIZE=OFF \
    -DBSVI_BUILD_TESTS=ON \
    -DBSVI_BUILD_EXAMPLES=ON
cmake --build "$ROOT/build" --parallel "$JOBS"

step "ctest (build/)"
(cd "$ROOT/build" && ctest --output-on-failure --parallel "$JOBS")
N_MAIN="$(count_tests "$ROOT/build")"
if [[ -x "$ROOT/build/quickstart" ]]; then
    step "quickstart (the demo)"
    "$ROOT/build/quickstart" >/dev/null
fi

# ---- 3. sanitizer build ---------------------------------------------------------------
step "configure + build (ASan + UBSan, -Werror) in build-asan/"
cmake -S "$ROOT" -B "$ROOT/build-asan" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DBSVI_WERROR=ON \
    -DBSVI_SANITIZE=ON \
    -DBSVI_BUILD_TESTS=ON \
    -DBSVI_BUILD_EXAMPLES=ON
cmake --build "$ROOT/build-asan" --parallel "$JOBS"

step "ctest (build-asan/)"
(cd "$ROOT/build-asan" && ctest --output-on-failure --parallel "$JOBS")
N_ASAN="$(count_tests "$ROOT/build-asan")"
if [[ -x "$ROOT/build-asan/quickstart" ]]; then
    step "quickstart under ASan + UBSan"
    "$ROOT/build-asan/quickstart" >/dev/null
fi

# ---- 4. reliability ------------------------------------------------------------------------
step "public headers alone: C99/C11 (gcc, clang), C++11/C++17 (g++, clang++), -Werror"
HDR_FLAGS=(-Wall -Wextra -Wpedantic -Werror -fsyntax-only -I"$ROOT/include")
HDR_TMP="$(mktemp -d "${TMPDIR:-/tmp}/bsvi-hdr.XXXXXX")"
N_HDR=0
for h in "$ROOT"/include/bsvi/*.h; do
    hn="$(basename "$h")"
    printf '#include <bsvi/%s>\n#include <bsvi/%s>\nint bsvi_header_check_%s;\n' \
        "$hn" "$hn" "${hn%.h}" >"$HDR_TMP/h.c"
    cp "$HDR_TMP/h.c" "$HDR_TMP/h.cpp"
    for std in c99 c11; do
        gcc -std="$std" "${HDR_FLAGS[@]}" "$HDR_TMP/h.c"
        clang -std="$std" "${HDR_FLAGS[@]}" "$HDR_TMP/h.c"
    done
    for std in c++11 c++17; do
        g++ -std="$std" "${HDR_FLAGS[@]}" "$HDR_TMP/h.cpp"
        clang++ -std="$std" "${HDR_FLAGS[@]}" "$HDR_TMP/h.cpp"
    done
    N_HDR=$((N_HDR + 1))
done
# BSVI_DEPRECATED must make a use of the declaration warn (an error under -Werror).
printf '#include <bsvi/export.h>\nBSVI_DEPRECATED("use g") int f(void);\nint f(void) { return 0; }\nint main(void) { return f(); }\n' >"$HDR_TMP/dep.c"
for cc in gcc clang; do
    if "$cc" -std=c99 -Werror -I"$ROOT/include" -c "$HDR_TMP/dep.c" -o "$HDR_TMP/dep.o" 2>/dev/null; then
        echo "BSVI_DEPRECATED did not make $cc warn" >&2
        false
    fi
done
rm -rf "$HDR_TMP"
echo "$N_HDR headers x 8 compiler/standard pairs: OK; BSVI_DEPRECATED warns (gcc, clang)"

step "C++ wrapper bsvi.hpp: clang++ C++17 and C++20 (g++ builds run in ctest above), -Werror"
for std in c++17 c++20; do
    clang++ -std="$std" -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Werror \
        -I"$ROOT/include" "$ROOT/tests/cpp/test_bsvi_hpp.cpp" -L"$ROOT/build" \
        -Wl,-rpath,"$ROOT/build" -lbsvi -lm -pthread -o "$ROOT/build/test_bsvi_hpp_clang_$std"
    "$ROOT/build/test_bsvi_hpp_clang_$std" >/dev/null
done
echo "test_bsvi_hpp: OK with clang++ -std=c++17 and -std=c++20"

step "configure + build (ThreadSanitizer) in build-tsan/: test_threads"
cmake -S "$ROOT" -B "$ROOT/build-tsan" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DBSVI_WERROR=ON \
    -DBSVI_SANITIZE_THREAD=ON \
    -DBSVI_BUILD_TESTS=ON \
    -DBSVI_BUILD_EXAMPLES=OFF \
    -DBSVI_BUILD_BENCH=OFF >/dev/null
cmake --build "$ROOT/build-tsan" --target test_threads --parallel "$JOBS"
step "test_threads under ThreadSanitizer"
run_tsan() { TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" "$@" "$ROOT/build-tsan/test_threads"; }
if ! TSAN_LOG="$(run_tsan 2>&1)"; then
    if grep -q "unexpected memory mapping" <<<"$TSAN_LOG"; then
        # Kernels with high mmap randomisation confuse older TSan runtimes: no ASLR then.
        echo "TSan runtime refused the memory layout; rerunning with ASLR disabled"
        run_tsan setarch "$(uname -m)" -R
    else
        echo "$TSAN_LOG"
        false
    fi
else
    echo "$TSAN_LOG" | tail -n 3
fi

step "valgrind memcheck: every test program of build/ (Release)"
VG_START=$SECONDS
VG_LOGS="$(mktemp -d "${TMPDIR:-/tmp}/bsvi-vg.XXXXXX")"
export VG_LOGS
VG_LIST=()
for t in "$ROOT"/build/test_*; do
    if [[ -x "$t" ]]; then
        VG_LIST+=("$(basename "$t") $t")
    fi
done
VG_LIST+=("fuzz_replay $ROOT/build/fuzz_replay $ROOT/fuzz/corpus")
if [[ -x "$ROOT/build/examples/vae/fuzz_readers_replay" ]]; then
    VG_LIST+=("fuzz_readers_replay $ROOT/build/examples/vae/fuzz_readers_replay $ROOT/fuzz/corpus-readers")
fi
VG_FAIL=0
# One program per line: NAME COMMAND ARGS...; two at a time on two cores.
printf '%s\n' "${VG_LIST[@]}" | xargs -P "$JOBS" -L 1 bash -c '
    name="$1"; shift
    if valgrind -q --error-exitcode=99 --leak-check=full \
            --errors-for-leak-kinds=definite,indirect "$@" >"$VG_LOGS/$name.log" 2>&1; then
        echo "  $name: clean"
    else
        echo "  $name: FAILED (valgrind log below)"; cat "$VG_LOGS/$name.log"; exit 1
    fi' _ || VG_FAIL=1
rm -rf "$VG_LOGS"
if [[ "$VG_FAIL" != "0" ]]; then
    false
fi
echo "valgrind: ${#VG_LIST[@]} programs clean in $((SECONDS - VG_START))s"

step "configure + build (libFuzzer + ASan + UBSan, clang) in build-fuzz/"
cmake -S "$ROOT" -B "$ROOT/build-fuzz" \
    -DCMAKE_C_COMPILER=clang \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DBSVI_BUILD_FUZZ=ON \
    -DBSVI_BUILD_TESTS=OFF \
    -DBSVI_BUILD_EXAMPLES=ON \
    -DBSVI_BUILD_BENCH=OFF >/dev/null
cmake --build "$ROOT/build-fuzz" --target fuzz_api fuzz_readers --parallel "$JOBS"
# run_fuzz NAME BINARY CORPUS SECONDS FIXWHERE [libFuzzer options...]: runs the harness from
# its committed corpus for SECONDS; on a finding, prints the log, copies the input to
# build-fuzz/ and fails. Sets FZ_EXECS, FZ_RATE, FZ_COV from the run's final statistics.
run_fuzz() {
    local name=$1 bin=$2 corpus=$3 seconds=$4 fixwhere=$5
    shift 5
    step "$name for ${seconds}s from ${corpus#$ROOT/} ($(find "$corpus" -type f | wc -l) inputs)"
    local work
    work="$(mktemp -d "${TMPDIR:-/tmp}/bsvi-fuzz.XXXXXX")"
    mkdir -p "$work/new" "$work/artifacts"
    if ! (cd "$work" && FUZZ_STATS=1 OPENBLAS_NUM_THREADS=1 "$bin" -max_total_time="$seconds" \
            -timeout=20 -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$@" \
            "$work/new" "$corpus" >"$work/log" 2>&1); then
        tail -n 60 "$work/log"
        echo "$name found a failing input; reproduce with ${bin#$ROOT/} FILE:" >&2
        ls -l "$work/artifacts" >&2
        cp "$work"/artifacts/* "$ROOT/build-fuzz/" 2>/dev/null || true
        echo "(copied to build-fuzz/; fix $fixwhere, then add the input to ${corpus#$ROOT/}/)" >&2
        false
    fi
    FZ_EXECS="$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log")"
    FZ_RATE="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/log")"
    FZ_COV="$(grep -E '^#[0-9]+.*(DONE|pulse|NEW|REDUCE)' "$work/log" | tail -n 1 |
              sed -n 's/.*cov: \([0-9]*\) ft: \([0-9]*\) corp: \([0-9]*\).*/cov \1, ft \2, corpus \3/p')"
    grep '^fuzz_stats:' "$work/log" || true
    echo "$name: ${FZ_EXECS:-?} executions (${FZ_RATE:-?}/s), $FZ_COV, no invariant violated"
    rm -rf "$work"
}

run_fuzz fuzz_api "$ROOT/build-fuzz/fuzz_api" "$ROOT/fuzz/corpus" "${BSVI_FUZZ_SECONDS:-60}" lib/ \
    -max_len=512 -rss_limit_mb=2048
FUZZ_EXECS=$FZ_EXECS
# The VAE example's readers of untrusted files: checkpoints (the loader is given a 64 MiB
# limit, so an allocation of 128 MB or more from a hostile header is a finding) and IDX.
run_fuzz fuzz_readers "$ROOT/build-fuzz/examples/vae/fuzz_readers" "$ROOT/fuzz/corpus-readers" \
    "${BSVI_FUZZ_READERS_SECONDS:-60}" examples/vae/ -max_len=4096 -rss_limit_mb=1024 -malloc_limit_mb=128
FUZZ_R_EXECS=$FZ_EXECS

step "ABI check against abi/ (abidiff)"
BSVI_ABI_BUILD="$ROOT/build-abi" bash "$ROOT/scripts/abi-check.sh"

# ---- 5. documentation -------------------------------------------------------------------
step "docs (Doxygen, warnings are errors)"
cmake --build "$ROOT/build" --target docs
test -f "$ROOT/build/docs/html/index.html"

# ---- 6. install + consumers -----------------------------------------------------------------
step "install into a temporary prefix"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/bsvi-test.XXXXXX")"
if [[ "${BSVI_KEEP_TMP:-0}" != "1" ]]; then
    trap 'rm -rf "$TMP"' EXIT
fi
PREFIX="$TMP/prefix"
WORK="$TMP/work"
mkdir -p "$WORK"
cmake --install "$ROOT/build" --prefix "$PREFIX"
PC_FILE="$(find "$PREFIX" -name bsvi.pc -path '*/pkgconfig/*' | head -n 1)"
test -n "$PC_FILE"
LIBDIR="$(dirname "$(dirname "$PC_FILE")")"
PC_DIR="$(dirname "$PC_FILE")"
export PKG_CONFIG_PATH="$PC_DIR${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
export LD_LIBRARY_PATH="$LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
echo "pkg-config --cflags --libs bsvi: $(pkg-config --cflags --libs bsvi)"
HDR_VERSION="$(awk '/#define BSVI_VERSION_(MAJOR|MINOR|PATCH) / { v = v (v == "" ? "" : ".") $3 } END { print v }' \
    "$ROOT/include/bsvi/version.h")"
PC_VERSION="$(pkg-config --modversion bsvi)"
if [[ "$PC_VERSION" != "$HDR_VERSION" ]]; then
    echo "bsvi.pc says version $PC_VERSION, include/bsvi/version.h says $HDR_VERSION" >&2
    false
fi
CONS="$ROOT/examples/consumers"
CC="${CC:-cc}"
CXX="${CXX:-c++}"
CFLAGS_STRICT=(-std=c11 -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Werror)

step "consumer 1/3: C via pkg-config"
# shellcheck disable=SC2046
"$CC" "${CFLAGS_STRICT[@]}" "$CONS/consumer_pkgconfig.c" -o "$WORK/consumer_pkgconfig" \
    $(pkg-config --cflags --libs bsvi)
"$WORK/consumer_pkgconfig"

step "README sketch via pkg-config"
# shellcheck disable=SC2046
"$CC" "${CFLAGS_STRICT[@]}" "$CONS/readme_sketch.c" "$CONS/readme_sketch_main.c" \
    -o "$WORK/readme_sketch" $(pkg-config --cflags --libs bsvi) -lm
"$WORK/readme_sketch"

step "consumer 2/3: C via find_package(bsvi) (shared and static)"
cmake -S "$CONS/consumer_cmake" -B "$WORK/consumer_cmake" \
    -DCMAKE_PREFIX_PATH="$PREFIX" -DCMAKE_BUILD_TYPE=Release
cmake --build "$WORK/consumer_cmake" --parallel "$JOBS"
"$WORK/consumer_cmake/consumer_cmake"
"$WORK/consumer_cmake/consumer_cmake_static"

step "consumer 3/3: C++ via pkg-config"
# shellcheck disable=SC2046
"$CXX" -std=c++11 -Wall -Wextra -Wpedantic -Werror "$CONS/consumer_cpp.cpp" \
    -o "$WORK/consumer_cpp" $(pkg-config --cflags --libs bsvi)
"$WORK/consumer_cpp"

step "Debian packages: build, check, install, consumers, purge (scripts/test-deb.sh)"
DEB_RC=0
bash "$ROOT/scripts/test-deb.sh" || DEB_RC=$?
if [[ "$DEB_RC" == "77" ]]; then
    echo "Debian packages: SKIPPED (needs root and CI=true or BSVI_DEB_TEST=1; reason above)"
elif [[ "$DEB_RC" != "0" ]]; then
    false
fi

step "LibTorch host: install libtorch-dev, build examples/torch, agreement + smoke (scripts/test-torch.sh)"
# about 3 minutes on 2 cores (install 41 s, 510 MB; build 1-2 min; tests 10 s); it installs
# packages, so only with CI=true or BSVI_TORCH=1 (BSVI_TORCH=0 skips it on CI too)
if [[ "${BSVI_TORCH:-}" == "1" || ( "${CI:-}" == "true" && "${BSVI_TORCH:-}" != "0" ) ]]; then
    bash "$ROOT/scripts/test-torch.sh"
    TORCH_DONE="LibTorch host"
else
    echo "LibTorch host: SKIPPED (runs with CI=true or BSVI_TORCH=1)"
    TORCH_DONE="LibTorch host skipped"
fi

STEP="summary"
CBLAS="$(sed -n 's/^BSVI_CBLAS_VENDOR_FOUND:INTERNAL=//p' "$ROOT/build/CMakeCache.txt")"
echo
echo "test.sh: OK in $((SECONDS - START))s: ${N_MAIN} tests (Release, -Werror), ${N_ASAN} tests (ASan+UBSan), headers C99/C11/C++, TSan, valgrind, fuzz ${FUZZ_EXECS:-?} + ${FUZZ_R_EXECS:-?} (readers) execs, ABI, docs, install, 3 consumers + README sketch, ${TORCH_DONE}; CBLAS=${CBLAS:-?}"
