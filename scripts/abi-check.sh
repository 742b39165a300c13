#!/usr/bin/env bash
# ABI check of libbsvi against the committed baseline abi/libbsvi.so.<SOVERSION>.abi
# (Debian: abigail-tools). Run by scripts/test.sh; see docs/reliability.md.
#
# SOVERSION is the shared library's SONAME suffix, by the rule of CMakeLists.txt:
# MAJOR.MINOR while BSVI_VERSION_MAJOR is 0 (a minor release may break the ABI), MAJOR
# from 1.0 on. Version 0.2.x: libbsvi.so.0.2, baseline abi/libbsvi.so.0.2.abi.
#
#   bash scripts/abi-check.sh            # build build-abi/, compare, fail on a break
#   bash scripts/abi-check.sh --update   # rewrite the baseline from the current sources
#
# The library is built as Release plus -g (abidw needs DWARF), with source paths made
# relative (-fdebug-prefix-map) and abidw told to drop paths and locations, so the
# baseline does not depend on the machine or the checkout directory. Only types reachable
# from include/bsvi/ count (--headers-dir).
#
# Verdict: removed or changed functions/variables (abidiff exit bit 8, or bit 4 with a
# non-zero Removed/Changed count) fail the check, unless the SOVERSION differs from the
# baseline's (a new SONAME: an intentional break; commit a new baseline with --update).
# Added functions are compatible: reported, and the check passes.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${BSVI_ABI_BUILD:-$ROOT/build-abi}"
JOBS="$(nproc 2>/dev/null || echo 2)"
MODE="check"
if [[ "${1:-}" == "--update" ]]; then
    MODE="update"
fi

for tool in abidw abidiff; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "abi-check: $tool not found (Debian: apt-get install abigail-tools)" >&2
        exit 1
    fi
done

version_part() {
    sed -n "s/^#define[ \t]*BSVI_VERSION_$1[ \t]*\([0-9][0-9]*\).*/\1/p" \
        "$ROOT/include/bsvi/version.h"
}
MAJOR="$(version_part MAJOR)"
MINOR="$(version_part MINOR)"
if [[ -z "$MAJOR" || -z "$MINOR" ]]; then
    echo "abi-check: cannot parse BSVI_VERSION_MAJOR/MINOR from include/bsvi/version.h" >&2
    exit 1
fi
if [[ "$MAJOR" == "0" ]]; then
    SOVERSION="$MAJOR.$MINOR"
else
    SOVERSION="$MAJOR"
fi

cmake -S "$ROOT" -B "$BUILD" \
    -DCMAKE_BUILD_TYPE=Release \
    "-DCMAKE_C_FLAGS=-g -fdebug-prefix-map=$ROOT/=" \
    -DBSVI_SANITIZE=OFF -DBSVI_SANITIZE_THREAD=OFF \
    -DBSVI_BUILD_TESTS=OFF -DBSVI_BUILD_EXAMPLES=OFF -DBSVI_BUILD_BENCH=OFF >/dev/null
cmake --build "$BUILD" --target bsvi --parallel "$JOBS" >/dev/null
if [[ ! -e "$BUILD/libbsvi.so.$SOVERSION" ]]; then
    echo "abi-check: the build has no libbsvi.so.$SOVERSION (the SOVERSION rule of" \
         "CMakeLists.txt and of this script differ?)" >&2
    exit 1
fi
LIB="$(readlink -f "$BUILD/libbsvi.so.$SOVERSION")"
BASE="$ROOT/abi/libbsvi.so.$SOVERSION.abi"
ABIDW=(abidw --no-corpus-path --no-comp-dir-path --no-show-locs
       --headers-dir "$ROOT/include/bsvi" --drop-private-types --drop-undefined-syms
       --type-id-style hash)

if [[ "$MODE" == "update" ]]; then
    mkdir -p "$ROOT/abi"
    "${ABIDW[@]}" --out-file "$BASE" "$LIB"
    echo "abi-check: wrote $BASE from $(basename "$LIB") ($(grep -c '<elf-symbol ' "$BASE") symbols)"
    exit 0
fi

if [[ ! -f "$BASE" ]]; then
    OTHERS="$(cd "$ROOT/abi" 2>/dev/null && ls libbsvi.so.*.abi 2>/dev/null || true)"
    if [[ -n "$OTHERS" ]]; then
        echo "abi-check: the SONAME is libbsvi.so.$SOVERSION but the committed baseline is" \
             "for another ($OTHERS): an intentional ABI break with a new SONAME."
        echo "abi-check: commit a baseline for it: bash scripts/abi-check.sh --update"
        exit 0
    fi
    echo "abi-check: no baseline abi/libbsvi.so.*.abi; create it with --update" >&2
    exit 1
fi

REPORT="$BUILD/abidiff.txt"
set +e
abidiff --headers-dir2 "$ROOT/include/bsvi" "$BASE" "$LIB" >"$REPORT" 2>&1
RC=$?
set -e
cat "$REPORT"
if (( RC & 3 )); then
    echo "abi-check: abidiff failed to run (exit $RC)" >&2
    exit 1
fi
# Removed or changed entities (functions and variables): the summary lines' counts.
BAD="$(sed -n 's/.*summary: \([0-9]*\) Removed[^,]*, \([0-9]*\) Changed.*/\1 \2/p' "$REPORT" |
       awk '{ s += $1 + $2 } END { print s + 0 }')"
if grep -qE '^(ELF SONAME changed|ELF architecture changed)' "$REPORT"; then
    BAD=$((BAD + 1))
fi
if (( RC & 8 )) || { (( RC & 4 )) && (( BAD > 0 )); }; then
    echo "abi-check: INCOMPATIBLE ABI change against $(basename "$BASE") (abidiff exit $RC)." >&2
    echo "abi-check: keep the ABI (add a new function instead of changing one), or bump" \
         "the version to a new SONAME (the minor while the major is 0, else the major) and" \
         "commit a new baseline (docs/reliability.md)." >&2
    exit 1
fi
if (( RC & 4 )); then
    echo "abi-check: compatible additions only; refresh the baseline when releasing" \
         "(bash scripts/abi-check.sh --update)."
fi
echo "abi-check: OK ($(basename "$LIB") against $(basename "$BASE"), abidiff exit $RC)"
