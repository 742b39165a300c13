#!/usr/bin/env bash
# One command for a fresh Debian machine: install the build dependencies and
# run the whole libbsvi check (this is what .ci/run executes):
#   1. README sketch == examples/consumers/readme_sketch.c
#   2. build/       Release, -Werror, ctest
#   3. build-asan/  AddressSanitizer + UndefinedBehaviorSanitizer, -Werror, ctest
#   4. docs target (Doxygen, warnings are errors)
#   5. install into a temporary prefix; build and run against it:
#      a C consumer via pkg-config, the README sketch, a C consumer via
#      find_package (shared and static), and a C++ consumer
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

# ---- 4. documentation -------------------------------------------------------------------
step "docs (Doxygen, warnings are errors)"
cmake --build "$ROOT/build" --target docs
test -f "$ROOT/build/docs/html/index.html"

# ---- 5. install + consumers -----------------------------------------------------------------
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

STEP="summary"
CBLAS="$(sed -n 's/^BSVI_CBLAS_VENDOR_FOUND:INTERNAL=//p' "$ROOT/build/CMakeCache.txt")"
echo
echo "test.sh: OK in $((SECONDS - START))s: ${N_MAIN} tests (Release, -Werror), ${N_ASAN} tests (ASan+UBSan), docs, install, 3 consumers + README sketch; CBLAS=${CBLAS:-?}"
