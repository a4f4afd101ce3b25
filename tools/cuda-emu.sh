#!/usr/bin/env bash
# make cuda-emu: build libgrefine_cuda_emu.so, cuda-emu, the GPU emulator: the C ABI of
# cgo/include/grefine_cuda.h implemented in plain C (cgo/emu/*.c, no CUDA) with device
# memory the host cannot read, NaN-poisoned allocations, per-stream queues that run at a
# synchronisation, and the kernels' reference loops (see cgo/emu/grefine_cuda_emu.h).
# Usage: bash tools/cuda-emu.sh [OUTDIR]   (default build/; tests build into a temp dir)
# Needs only a C compiler. Idempotent: rebuilds only when a source is newer than the library.
set -euo pipefail
cd "$(dirname "$0")/.."
out_dir=${1:-build}
out=$out_dir/libgrefine_cuda_emu.so
srcs=(cgo/emu/*.c)
deps=("${srcs[@]}" cgo/emu/*.h cgo/include/grefine_cuda.h cgo/emu/exports.map tools/cuda-emu.sh)
if [ -f "$out" ]; then
  stale=0
  for f in "${deps[@]}"; do [ "$f" -nt "$out" ] && stale=1; done
  [ "$stale" = 0 ] && { echo "cuda-emu: $out is up to date"; exit 0; }
fi
mkdir -p "$out_dir"
# -ffp-contract=off: every float32 operation rounds on its own, like engine/cpu's Go twins.
${CC:-cc} -std=c11 -O2 -g -Wall -Wextra -Werror -ffp-contract=off -shared -fPIC -fvisibility=hidden \
  -I cgo/include -I cgo/emu "${srcs[@]}" -o "$out.tmp" \
  -Wl,-soname,libgrefine_cuda_emu.so -Wl,--no-undefined -Wl,--version-script=cgo/emu/exports.map \
  -lm -ldl -lpthread
mv "$out.tmp" "$out"
echo "cuda-emu: $out ($(stat -c %s "$out") bytes)"
