#!/usr/bin/env bash
# The Debian packages, end to end, on the running system (scripts/test.sh runs it as one step):
#   1. build the library (Release, prefix /usr) and its Doxygen HTML in build-deb/, then
#      cpack -G DEB: libbsvi<SOVERSION> (runtime), libbsvi-dev, libbsvi-doc
#   2. check each package's files (dpkg-deb -c) and control fields (dpkg-deb -f: Depends,
#      Section, Architecture), the shlibs file, the SONAME and the packaged bsvi.pc
#   3. apt-get install the three packages; check ldconfig, pkg-config and the files
#   4. build and run the consumers of examples/consumers/ against the copy in /usr, with no
#      PKG_CONFIG_PATH, CMAKE_PREFIX_PATH or LD_LIBRARY_PATH: C via pkg-config, the README
#      sketch, C via find_package(bsvi) (shared and static), C++ via pkg-config
#   5. apt-get purge the packages; check that every file they installed is gone
#   6. the uninstall target: cmake --install build-deb into a temporary prefix, then
#      cmake --build build-deb --target uninstall leaves no file there
# It installs packages into this system, so it runs only as root and only when asked:
# BSVI_DEB_TEST=1 or CI=true (CI runs it on a disposable machine). Otherwise it explains why
# and exits 77 (skipped). Libbsvi packages already installed are purged first; on failure
# the packages it installed are purged again (BSVI_DEB_KEEP=1 leaves them for a look).
#   sudo BSVI_DEB_TEST=1 bash scripts/test-deb.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
JOBS="$(nproc 2>/dev/null || echo 2)"
BUILD="$ROOT/build-deb"
START=$SECONDS
STEP="start"

refuse() {
    echo "test-deb.sh: not run: $*" >&2
    exit 77
}
if [[ "$(id -u)" != "0" ]]; then
    refuse "it installs and purges Debian packages with apt-get and must run as root"
fi
if [[ "${BSVI_DEB_TEST:-0}" != "1" && "${CI:-}" != "true" ]]; then
    refuse "it installs libbsvi packages into this system (and purges them); set" \
           "BSVI_DEB_TEST=1 (or CI=true) to allow it"
fi
for tool in dpkg dpkg-deb dpkg-query apt-get; do
    command -v "$tool" >/dev/null 2>&1 || refuse "not a Debian-like system (no $tool)"
done

step() {
    STEP="$1"
    echo
    echo "--- [$((SECONDS - START))s] deb: $1"
}
fail() {
    echo "test-deb.sh: $*" >&2
    false
}

# The installed copy in /usr must be what the consumers find: nothing from the caller's
# environment (scripts/test.sh points these at its temporary prefix).
unset PKG_CONFIG_PATH CMAKE_PREFIX_PATH LD_LIBRARY_PATH LIBRARY_PATH CPATH C_INCLUDE_PATH \
      CPLUS_INCLUDE_PATH
export DEBIAN_FRONTEND=noninteractive
APT=(apt-get -o DPkg::Lock::Timeout=300 -q)

# Version and SONAME as CMakeLists.txt derives them from include/bsvi/version.h.
ver_part() { sed -n "s/^#define[ \t]*BSVI_VERSION_$1[ \t]*\([0-9]*\).*/\1/p" "$ROOT/include/bsvi/version.h"; }
V_MAJOR="$(ver_part MAJOR)"
V_MINOR="$(ver_part MINOR)"
V_PATCH="$(ver_part PATCH)"
VERSION="$V_MAJOR.$V_MINOR.$V_PATCH"
if [[ "$V_MAJOR" == "0" ]]; then SOVERSION="$V_MAJOR.$V_MINOR"; else SOVERSION="$V_MAJOR"; fi
RT="libbsvi$SOVERSION"
DEV="libbsvi-dev"
DOC="libbsvi-doc"
PKGS=("$RT" "$DEV" "$DOC")
echo "test-deb.sh: libbsvi $VERSION, SONAME libbsvi.so.$SOVERSION, packages ${PKGS[*]}"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/bsvi-deb.XXXXXX")"
INSTALLED=0
cleanup() {
    local rc=$?
    if [[ "$rc" != "0" ]]; then echo "test-deb.sh: FAILED during: $STEP" >&2; fi
    if [[ "$INSTALLED" == "1" && "${BSVI_DEB_KEEP:-0}" != "1" ]]; then
        echo "test-deb.sh: purging the packages it installed" >&2
        "${APT[@]}" purge -y "${PKGS[@]}" >/dev/null 2>&1 || true
    fi
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT

installed_pkgs() {   # libbsvi packages dpkg knows as installed (or half-installed)
    dpkg-query -W -f='${Package} ${Status}\n' 'libbsvi*' 2>/dev/null |
        awk '$NF != "not-installed" { print $1 }' || true
}

# ---- dependencies, and a system with no other copy in the way ---------------------------------
step "dependencies (scripts/deps.sh) and a clean system"
bash "$ROOT/scripts/deps.sh"
OLD="$(installed_pkgs | tr '\n' ' ')"
if [[ -n "${OLD// /}" ]]; then
    echo "libbsvi packages installed before the test: $OLD- purging them first"
    # shellcheck disable=SC2086
    "${APT[@]}" purge -y $OLD
fi
# A copy in /usr/local (cmake --install) comes first in pkg-config's and the compiler's
# search paths and would be tested instead of the packaged one.
SHADOW="$(ls -d /usr/local/include/bsvi /usr/local/lib/libbsvi* /usr/local/lib/*/libbsvi* \
          /usr/local/lib/pkgconfig/bsvi.pc /usr/local/lib/*/pkgconfig/bsvi.pc 2>/dev/null || true)"
if [[ -n "$SHADOW" ]]; then
    echo "$SHADOW" >&2
    fail "a libbsvi installed in /usr/local (above) would shadow the packages; remove it" \
         "(cmake --build BUILD --target uninstall) and rerun"
fi

# ---- 1. build the packages ---------------------------------------------------------------------
step "build (Release, prefix /usr) in build-deb/"
cmake -S "$ROOT" -B "$BUILD" \
    -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX=/usr \
    -DBSVI_BUILD_TESTS=OFF \
    -DBSVI_BUILD_EXAMPLES=OFF \
    -DBSVI_BUILD_BENCH=OFF >/dev/null
cmake --build "$BUILD" --parallel "$JOBS"
HTML=0
if grep -q '^DOXYGEN_EXECUTABLE:FILEPATH=/' "$BUILD/CMakeCache.txt"; then
    cmake --build "$BUILD" --target docs >/dev/null
    HTML=1
fi
LIBDIR_REL="$(sed -n 's/^CMAKE_INSTALL_LIBDIR:PATH=//p' "$BUILD/CMakeCache.txt")"
LIBDIR="/usr/$LIBDIR_REL"
echo "libdir $LIBDIR, Doxygen HTML: $([[ $HTML == 1 ]] && echo yes || echo no)"

step "cpack -G DEB"
rm -f "$BUILD"/*.deb
(cd "$BUILD" && cpack -G DEB >"$TMP/cpack.log" 2>&1) || { cat "$TMP/cpack.log"; false; }
ARCH="$(dpkg --print-architecture)"
deb_of() { # the one package file of $1
    local f
    f="$(ls "$BUILD"/"$1"_*.deb 2>/dev/null || true)"
    [[ -n "$f" && "$(wc -l <<<"$f")" == "1" ]] || fail "expected one $1_*.deb in build-deb/, found: ${f:-none}"
    echo "$f"
}
RT_DEB="$(deb_of "$RT")"
DEV_DEB="$(deb_of "$DEV")"
DOC_DEB="$(deb_of "$DOC")"
ls -l "$RT_DEB" "$DEV_DEB" "$DOC_DEB"

# ---- 2. contents and control fields -----------------------------------------------------------
step "package contents (dpkg-deb -c) and control fields (dpkg-deb -f)"
# one line per file or link ("PATH" or "PATH -> TARGET"), directories left out
list_files() {
    dpkg-deb -c "$1" | awk '$1 !~ /^d/ { $1 = $2 = $3 = $4 = $5 = ""; sub(/^ +/, ""); sub(/^\./, ""); print }' | sort
}
for p in RT DEV DOC; do
    deb_var="${p}_DEB"
    list_files "${!deb_var}" >"$TMP/$p.list"
done
expect_in() {   # LIST LINE...
    local list=$1 line
    shift
    for line in "$@"; do
        grep -qxF -- "$line" "$TMP/$list.list" || fail "$list package lacks: $line"
    done
}
expect_not() {  # LIST REGEX
    if grep -E -- "$2" "$TMP/$1.list"; then fail "$1 package must not contain the above"; fi
}
only_under() {  # LIST DIR...: every file lies under one of DIR
    local list=$1
    shift
    local re
    re="^($(printf '%s/|' "$@" | sed 's/|$//'))"
    if grep -vE -- "$re" "$TMP/$list.list"; then fail "$list package has files outside $*: above"; fi
}

# runtime: exactly the library, its SONAME link and the copyright file
printf '%s\n' "$LIBDIR/libbsvi.so.$SOVERSION -> libbsvi.so.$VERSION" "$LIBDIR/libbsvi.so.$VERSION" \
    "/usr/share/doc/$RT/copyright" | sort >"$TMP/RT.want"
if ! diff -u "$TMP/RT.want" "$TMP/RT.list"; then fail "$RT: unexpected file list (diff above)"; fi

# dev: every public header, the dev link, the static library, bsvi.pc, the CMake package
HDRS=()
for h in "$ROOT"/include/bsvi/*.h "$ROOT"/include/bsvi/bsvi.hpp; do
    HDRS+=("/usr/include/bsvi/$(basename "$h")")
done
expect_in DEV "${HDRS[@]}" \
    "$LIBDIR/libbsvi.so -> libbsvi.so.$SOVERSION" \
    "$LIBDIR/libbsvi.a" \
    "$LIBDIR/pkgconfig/bsvi.pc" \
    "$LIBDIR/cmake/bsvi/bsvi-config.cmake" \
    "$LIBDIR/cmake/bsvi/bsvi-config-version.cmake" \
    "$LIBDIR/cmake/bsvi/bsvi-targets.cmake" \
    "$LIBDIR/cmake/bsvi/bsvi-targets-release.cmake" \
    "/usr/share/doc/$DEV/copyright"
expect_not DEV "^[^ ]*/libbsvi\.so\.[0-9]"   # the runtime package's files
only_under DEV /usr/include/bsvi "$LIBDIR" "/usr/share/doc/$DEV"

# doc: README, CHANGELOG, LICENSE, copyright, docs/*.md and the HTML reference
DOCDIR="/usr/share/doc/$DOC"
DOCS=("$DOCDIR/README.md" "$DOCDIR/CHANGELOG.md" "$DOCDIR/LICENSE" "$DOCDIR/copyright")
for m in "$ROOT"/docs/*.md; do DOCS+=("$DOCDIR/docs/$(basename "$m")"); done
if [[ "$HTML" == "1" ]]; then DOCS+=("$DOCDIR/html/index.html"); fi
expect_in DOC "${DOCS[@]}"
only_under DOC "$DOCDIR"

field() { dpkg-deb -f "$1" "$2"; }
expect_field() {  # DEB FIELD VALUE
    local got
    got="$(field "$1" "$2")"
    [[ "$got" == "$3" ]] || fail "$(basename "$1"): $2 is '$got', want '$3'"
}
DEB_VERSION="$(field "$RT_DEB" Version)"
[[ "$DEB_VERSION" == "$VERSION"-* ]] || fail "$RT: Version $DEB_VERSION is not $VERSION-<revision>"
for deb in "$RT_DEB" "$DEV_DEB" "$DOC_DEB"; do
    expect_field "$deb" Version "$DEB_VERSION"
    [[ "$(field "$deb" Maintainer)" == *"<"*"@"*">" ]] || fail "$(basename "$deb"): no Maintainer"
    [[ -n "$(field "$deb" Description)" ]] || fail "$(basename "$deb"): no Description"
done
expect_field "$RT_DEB" Package "$RT"
expect_field "$RT_DEB" Section libs
expect_field "$RT_DEB" Architecture "$ARCH"
[[ "$(field "$RT_DEB" Depends)" == *"libc6"* ]] ||
    fail "$RT: Depends '$(field "$RT_DEB" Depends)' lacks libc6 (dpkg-shlibdeps)"
expect_field "$DEV_DEB" Package "$DEV"
expect_field "$DEV_DEB" Section libdevel
expect_field "$DEV_DEB" Architecture "$ARCH"
[[ ", $(field "$DEV_DEB" Depends), " == *", $RT (= $DEB_VERSION), "* ]] ||
    fail "$DEV: Depends '$(field "$DEV_DEB" Depends)' lacks '$RT (= $DEB_VERSION)'"
expect_field "$DOC_DEB" Package "$DOC"
expect_field "$DOC_DEB" Section doc
expect_field "$DOC_DEB" Architecture all
SHLIBS="$(dpkg-deb --ctrl-tarfile "$RT_DEB" | tar -xO ./shlibs)"
[[ "$SHLIBS" == "libbsvi $SOVERSION $RT (>= $VERSION)" ]] || fail "$RT: shlibs is '$SHLIBS'"
dpkg-deb --ctrl-tarfile "$RT_DEB" | tar -xO ./postinst | grep -q ldconfig ||
    fail "$RT: postinst does not run ldconfig"

# the library itself: SONAME, libm and libc only, stripped; the packaged bsvi.pc
mkdir -p "$TMP/x"
dpkg-deb -x "$RT_DEB" "$TMP/x"
dpkg-deb -x "$DEV_DEB" "$TMP/x"
SONAME="$(readelf -d "$TMP/x$LIBDIR/libbsvi.so.$VERSION" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')"
[[ "$SONAME" == "libbsvi.so.$SOVERSION" ]] || fail "SONAME is '$SONAME', want libbsvi.so.$SOVERSION"
NEEDED="$(readelf -d "$TMP/x$LIBDIR/libbsvi.so.$VERSION" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort | tr '\n' ' ')"
[[ "$NEEDED" == "libc.so.6 libm.so.6 " ]] || fail "libbsvi.so needs '$NEEDED', want libc and libm only"
file "$TMP/x$LIBDIR/libbsvi.so.$VERSION" | grep -q ', stripped' || fail "libbsvi.so.$VERSION is not stripped"
grep -qx 'prefix=/usr' "$TMP/x$LIBDIR/pkgconfig/bsvi.pc" || { cat "$TMP/x$LIBDIR/pkgconfig/bsvi.pc"; fail "packaged bsvi.pc: prefix is not /usr"; }
grep -qx "libdir=\${prefix}/$LIBDIR_REL" "$TMP/x$LIBDIR/pkgconfig/bsvi.pc" || fail "packaged bsvi.pc: libdir is not $LIBDIR"
grep -qx "Version: $VERSION" "$TMP/x$LIBDIR/pkgconfig/bsvi.pc" || fail "packaged bsvi.pc: Version is not $VERSION"
echo "$RT: $(wc -l <"$TMP/RT.list") files, Depends: $(field "$RT_DEB" Depends); SONAME $SONAME; shlibs: $SHLIBS"
echo "$DEV: $(wc -l <"$TMP/DEV.list") files, Depends: $(field "$DEV_DEB" Depends)"
echo "$DOC: $(wc -l <"$TMP/DOC.list") files"

# ---- 3. install -----------------------------------------------------------------------------
step "apt-get install ./${RT}_*.deb ./${DEV}_*.deb ./${DOC}_*.deb"
INSTALLED=1
"${APT[@]}" install -y --no-install-recommends "$RT_DEB" "$DEV_DEB" "$DOC_DEB"
for p in "${PKGS[@]}"; do
    st="$(dpkg-query -W -f='${Status} ${Version}' "$p")"
    [[ "$st" == "install ok installed $DEB_VERSION" ]] || fail "$p: dpkg says '$st'"
done
cat "$TMP/RT.list" "$TMP/DEV.list" "$TMP/DOC.list" | sed 's/ -> .*//' >"$TMP/all.files"
while read -r f; do
    [[ -e "$f" || -L "$f" ]] || fail "installed package file missing: $f"
done <"$TMP/all.files"
# same_file PATH: PATH is the packaged library (/lib is /usr/lib on a merged-/usr system)
same_file() { [[ -n "$1" && "$(readlink -f "$1")" == "$(readlink -f "$LIBDIR/libbsvi.so.$SOVERSION")" ]]; }
LDC="$(ldconfig -p | grep -F "libbsvi.so.$SOVERSION " || true)"
same_file "${LDC##*=> }" || fail "ldconfig cache: '${LDC:-no libbsvi.so.$SOVERSION}'"
[[ "$(pkg-config --modversion bsvi)" == "$VERSION" ]] || fail "pkg-config --modversion bsvi: $(pkg-config --modversion bsvi)"
[[ "$(pkg-config --variable=libdir bsvi)" == "$LIBDIR" ]] || fail "pkg-config libdir: $(pkg-config --variable=libdir bsvi)"
echo "installed: $(wc -l <"$TMP/all.files") files; ldconfig:$LDC; pkg-config --cflags --libs bsvi: '$(pkg-config --cflags --libs bsvi)'"

# ---- 4. consumers against /usr ---------------------------------------------------------------
CONS="$ROOT/examples/consumers"
WORK="$TMP/work"
mkdir -p "$WORK"
CC="${CC:-cc}"
CXX="${CXX:-c++}"
CFLAGS_STRICT=(-std=c11 -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Werror)
uses_usr_lib() {  # PROGRAM: loads libbsvi from $LIBDIR, carries no run path
    local l
    l="$(ldd "$1" | sed -n "s/^[[:space:]]*libbsvi\.so\.$SOVERSION => \([^ ]*\) .*/\1/p")"
    same_file "$l" || fail "$(basename "$1") loads libbsvi from '$l'"
    if readelf -d "$1" | grep -qE 'RPATH|RUNPATH'; then fail "$(basename "$1") has a run path"; fi
}

step "consumer: C via pkg-config"
# shellcheck disable=SC2046
"$CC" "${CFLAGS_STRICT[@]}" "$CONS/consumer_pkgconfig.c" -o "$WORK/consumer_pkgconfig" \
    $(pkg-config --cflags --libs bsvi)
uses_usr_lib "$WORK/consumer_pkgconfig"
"$WORK/consumer_pkgconfig"

step "README sketch via pkg-config"
# shellcheck disable=SC2046
"$CC" "${CFLAGS_STRICT[@]}" "$CONS/readme_sketch.c" "$CONS/readme_sketch_main.c" \
    -o "$WORK/readme_sketch" $(pkg-config --cflags --libs bsvi) -lm
"$WORK/readme_sketch"

step "consumer: C via find_package(bsvi) (shared and static), no CMAKE_PREFIX_PATH"
cmake -S "$CONS/consumer_cmake" -B "$WORK/consumer_cmake" -DCMAKE_BUILD_TYPE=Release \
    >"$WORK/consumer_cmake.log"
grep -F "found libbsvi $VERSION in $LIBDIR/cmake/bsvi" "$WORK/consumer_cmake.log" ||
    { cat "$WORK/consumer_cmake.log"; fail "find_package(bsvi) did not find $LIBDIR/cmake/bsvi"; }
cmake --build "$WORK/consumer_cmake" --parallel "$JOBS" >/dev/null
uses_usr_lib "$WORK/consumer_cmake/consumer_cmake"
"$WORK/consumer_cmake/consumer_cmake"
"$WORK/consumer_cmake/consumer_cmake_static"

step "consumer: C++ via pkg-config (and bsvi.hpp compiles as C++17)"
# shellcheck disable=SC2046
"$CXX" -std=c++11 -Wall -Wextra -Wpedantic -Werror "$CONS/consumer_cpp.cpp" \
    -o "$WORK/consumer_cpp" $(pkg-config --cflags --libs bsvi)
"$WORK/consumer_cpp"
printf '#include <bsvi/bsvi.hpp>\nint main() { return 0; }\n' |
    "$CXX" -std=c++17 -Wall -Wextra -Werror -fsyntax-only -x c++ -

# ---- 5. purge --------------------------------------------------------------------------------
step "apt-get purge -y ${PKGS[*]}"
"${APT[@]}" purge -y "${PKGS[@]}"
INSTALLED=0
LEFT="$(installed_pkgs)"
[[ -z "$LEFT" ]] || fail "still known to dpkg after purge: $LEFT"
while read -r f; do
    if [[ -e "$f" || -L "$f" ]]; then fail "left after purge: $f"; fi
done <"$TMP/all.files"
for d in /usr/include/bsvi "$LIBDIR/cmake/bsvi" /usr/share/doc/"$RT" /usr/share/doc/"$DEV" "$DOCDIR"; do
    if [[ -e "$d" ]]; then fail "directory left after purge: $d"; fi
done
if ldconfig -p | grep -q libbsvi; then fail "ldconfig still lists libbsvi after purge"; fi
if pkg-config --exists bsvi; then fail "pkg-config still finds bsvi after purge"; fi
echo "purged: none of the $(wc -l <"$TMP/all.files") files is left; ldconfig and pkg-config no longer see libbsvi"

# ---- 6. the uninstall target -------------------------------------------------------------------
step "uninstall target: cmake --install build-deb --prefix TMP, then --target uninstall"
cmake --install "$BUILD" --prefix "$TMP/prefix" >/dev/null
N_INST="$(find "$TMP/prefix" \( -type f -o -type l \) | wc -l)"
[[ "$N_INST" -gt 0 ]] || fail "cmake --install installed nothing"
cmake --build "$BUILD" --target uninstall >"$TMP/uninstall.log"
LEFT="$(find "$TMP/prefix" \( -type f -o -type l \) || true)"
[[ -z "$LEFT" ]] || { echo "$LEFT"; fail "files left after the uninstall target (above)"; }
for d in include/bsvi "$LIBDIR_REL/cmake/bsvi"; do
    if [[ -e "$TMP/prefix/$d" ]]; then fail "directory left after uninstall: PREFIX/$d"; fi
done
echo "uninstall: removed all $N_INST installed files and the bsvi directories"

STEP="summary"
echo
echo "test-deb.sh: OK in $((SECONDS - START))s: $(basename "$RT_DEB"), $(basename "$DEV_DEB"), $(basename "$DOC_DEB"); contents, Depends, SONAME; installed; 3 consumers + README sketch against /usr; purged clean; uninstall target"
