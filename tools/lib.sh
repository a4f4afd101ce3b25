#!/usr/bin/env bash
# make lib: build libgrefine (cmd/libgrefine) and install it into a prefix.
#   build/libgrefine.so.1 (+ libgrefine.so)  -buildmode=c-shared, only grefine_* exported
#                                            (cmd/libgrefine/exports.map)
#   build/libgrefine.a                       -buildmode=c-archive
# then installs into PREFIX (first argument, default build/prefix): include/grefine.h,
# include/grefine.hpp, lib/libgrefine.so*, lib/libgrefine.a, lib/pkgconfig/grefine.pc and
# lib/cmake/grefine/ (find_package(grefine)). The cgo-generated header is not installed.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/env.sh
prefix=${1:-build/prefix}
mkdir -p build "$prefix"
prefix=$(cd "$prefix" && pwd)
abi=$(sed -n 's/^#define GREFINE_ABI_VERSION \([0-9]*\)$/\1/p' include/grefine.h)
[ -n "$abi" ] || { echo "lib: GREFINE_ABI_VERSION not found in include/grefine.h" >&2; exit 1; }
ver=$(git describe --always --dirty 2>/dev/null || echo dev)
pkgver="$abi.0"
ld="-X github.com/grefine/grefine/pipeline.Version=$ver"
map=$PWD/cmd/libgrefine/exports.map
go build -buildmode=c-shared -o build/libgrefine.so.$abi.tmp \
  -ldflags "$ld -extldflags '-Wl,--version-script=$map -Wl,-soname,libgrefine.so.$abi'" ./cmd/libgrefine
go build -buildmode=c-archive -o build/libgrefine.a.tmp -ldflags "$ld" ./cmd/libgrefine
rm -f build/libgrefine.so.$abi.h build/libgrefine.a.h build/libgrefine.so.$abi.tmp.h build/libgrefine.a.tmp.h
mv build/libgrefine.so.$abi.tmp build/libgrefine.so.$abi
ln -sf libgrefine.so.$abi build/libgrefine.so
mv build/libgrefine.a.tmp build/libgrefine.a

# Only grefine_* may be exported from the shared library.
stray=$(nm -D --defined-only build/libgrefine.so.$abi | awk '{print $3}' | grep -v '^grefine_' || true)
[ -z "$stray" ] || { echo "lib: libgrefine.so exports symbols outside grefine_*:"; echo "$stray"; exit 1; } >&2

mkdir -p "$prefix/include" "$prefix/lib/pkgconfig" "$prefix/lib/cmake/grefine"
install -m 644 include/grefine.h include/grefine.hpp "$prefix/include/"
install -m 755 build/libgrefine.so.$abi "$prefix/lib/"
ln -sf libgrefine.so.$abi "$prefix/lib/libgrefine.so"
install -m 644 build/libgrefine.a "$prefix/lib/"
subst() { sed -e "s|@PREFIX@|$prefix|g" -e "s|@VERSION@|$pkgver|g" -e "s|@ABI@|$abi|g" "$1" >"$2"; }
subst packaging/grefine.pc.in "$prefix/lib/pkgconfig/grefine.pc"
subst packaging/grefineConfig.cmake.in "$prefix/lib/cmake/grefine/grefineConfig.cmake"
subst packaging/grefineConfigVersion.cmake.in "$prefix/lib/cmake/grefine/grefineConfigVersion.cmake"
echo "lib: build/libgrefine.so.$abi ($(stat -c %s build/libgrefine.so.$abi) bytes), build/libgrefine.a; installed into $prefix (version $ver, ABI $abi)"
