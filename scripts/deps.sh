#!/usr/bin/env bash
# Installs libbsvi's build dependencies on Debian/Ubuntu with apt-get.
# Quick on reruns: apt-get is skipped when every package is already installed.
# Runs as root, or through sudo when available. BSVI_SKIP_DEPS=1 skips it all.
#   scripts/deps.sh            build and test dependencies (scripts/demo.sh, scripts/test.sh)
#   scripts/deps.sh --bench    also the benchmark peer and plots (scripts/bench.sh:
#                              python3-torch for /usr/bin/python3, gnuplot)
#   scripts/deps.sh --plots    also gnuplot (scripts/make-results.py)
#   scripts/deps.sh --mpi      also Open MPI, even with BSVI_MPI=0
#   scripts/deps.sh --torch    also LibTorch (libtorch-dev 1.13: examples/torch,
#                              scripts/test-torch.sh); so does BSVI_TORCH=1 with any option
# Open MPI (libopenmpi-dev, openmpi-bin: the VAE example's vae_mpi and its ctest tests
# vae_mpi_eval, vae_mpi_train) is installed by default, so CI runs the MPI tests;
# BSVI_MPI=0 leaves it out (CMake then finds no MPI and builds and registers neither).
set -euo pipefail

PACKAGES=(build-essential cmake pkg-config libcmocka-dev libopenblas-dev doxygen
          clang libclang-rt-14-dev abigail-tools valgrind
          dpkg-dev file)   # dpkg-dev, file: cpack -G DEB (dpkg-shlibdeps; scripts/test-deb.sh)
MPI_PACKAGES=(libopenmpi-dev openmpi-bin)
[[ "${BSVI_MPI:-1}" == "0" ]] || PACKAGES+=("${MPI_PACKAGES[@]}")
[[ "${BSVI_TORCH:-0}" != "1" && "${1:-}" != "--torch" ]] || PACKAGES+=(libtorch-dev)
case "${1:-}" in
    --bench) PACKAGES+=(python3-torch python3-numpy gnuplot-nox) ;;
    --plots) PACKAGES+=(gnuplot-nox) ;;
    --mpi) [[ "${BSVI_MPI:-1}" != "0" ]] || PACKAGES+=("${MPI_PACKAGES[@]}") ;;
    --torch) ;; # libtorch-dev, added above
    "") ;;
    *) echo "deps: unknown option $1 (--bench, --plots, --mpi, --torch)" >&2; exit 2 ;;
esac

if [[ "${BSVI_SKIP_DEPS:-0}" == "1" ]]; then
    echo "deps: BSVI_SKIP_DEPS=1, not checking packages"
    exit 0
fi

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    echo "deps: not a Debian-like system (no dpkg-query/apt-get)." >&2
    echo "deps: install by hand: a C11 compiler and C++ compiler, cmake >= 3.16, pkg-config," >&2
    echo "deps: CMocka, OpenBLAS (or a reference CBLAS) and Doxygen; for the reliability checks" >&2
    echo "deps: clang with its sanitizer/libFuzzer runtime, abigail-tools (abidw, abidiff) and" >&2
    echo "deps: valgrind; optionally an MPI (Open MPI: mpicc, mpirun) for vae_mpi and its tests;" >&2
    echo "deps: then rerun with BSVI_SKIP_DEPS=1." >&2
    exit 1
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    if [[ "$status" != "install ok installed" ]]; then
        missing+=("$pkg")
    fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "deps: all present (${PACKAGES[*]})"
    exit 0
fi

echo "deps: missing: ${missing[*]}"
SUDO=()
if [[ "$(id -u)" != "0" ]]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        echo "deps: not root and sudo is not available; install as root: ${missing[*]}" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update
"${SUDO[@]}" apt-get install -y --no-install-recommends "${PACKAGES[@]}"
echo "deps: installed ${missing[*]}"
