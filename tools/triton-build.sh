#!/usr/bin/env bash
# Builds the Triton backend: build/triton/backends/grefine/libtriton_grefine.so
# (cmd/tritonbackend, -buildmode=c-shared). Point tritonserver's --backend-directory at
# build/triton/backends. Only the TRITONBACKEND_* entry points are exported
# (cmd/tritonbackend/exports.map); the library is marked NODELETE (-z nodelete) because a
# Go runtime cannot be unloaded and Triton dlcloses a backend when its last model unloads.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/env.sh
out=build/triton/backends/grefine
mkdir -p "$out"
ver=$(git describe --always --dirty 2>/dev/null || echo dev)
map=$PWD/cmd/tritonbackend/exports.map
go build -buildmode=c-shared -o "$out/libtriton_grefine.so.tmp" \
  -ldflags "-X github.com/grefine/grefine/pipeline.Version=$ver -extldflags '-Wl,--version-script=$map -Wl,-z,nodelete -Wl,-soname,libtriton_grefine.so'" \
  ./cmd/tritonbackend
rm -f "$out/libtriton_grefine.so.tmp.h" "$out/libtriton_grefine.h"
mv "$out/libtriton_grefine.so.tmp" "$out/libtriton_grefine.so"

# Checks: only the entry points are exported; NODELETE is set; the Triton API is left
# for the server to bind (undefined here).
so=$out/libtriton_grefine.so
stray=$(nm -D --defined-only "$so" | awk '{print $3}' | grep -v '^TRITONBACKEND_' || true)
[ -z "$stray" ] || { echo "triton-build: $so exports symbols outside TRITONBACKEND_*:"; echo "$stray"; exit 1; } >&2
readelf -d "$so" | grep -q 'NODELETE' || { echo "triton-build: $so is not marked NODELETE" >&2; exit 1; }
echo "triton-build: $so ($(stat -c %s "$so") bytes, version $ver)"
