#!/usr/bin/env bash
# One command for a fresh Debian machine: install the build dependencies,
# build libbsvi (Release) into build/ and run the quickstart demo.
#   bash scripts/demo.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
JOBS="$(nproc 2>/dev/null || echo 2)"

bash "$ROOT/scripts/deps.sh"

cmake -S "$ROOT" -B "$ROOT/build" \
    -DCMAKE_BUILD_TYPE=Release \
    -DBSVI_WERROR=OFF \
    -DBSVI_SANITIZE=OFF \
    -DBSVI_BUILD_TESTS=OFF \
    -DBSVI_BUILD_EXAMPLES=ON
cmake --build "$ROOT/build" --parallel "$JOBS" --target quickstart

echo
echo "== build/quickstart =="
"$ROOT/build/quickstart"
