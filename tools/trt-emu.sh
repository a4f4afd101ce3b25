#!/usr/bin/env bash
# make trt-emu: build libgrefine_trt_emu.so, the TensorRT emulator: the shim's C ABI
# (cgo/include/grefine_trt.h) implemented by cgo/trt/fake/fake_trt.c (-DGRF_TRT_EMU) on
# cuda-emu (libgrefine_cuda_emu.so, built first into the same directory and linked by
# soname with RUNPATH $ORIGIN): emulated device memory and streams, plans that name an ONNX
# file, run by ONNX Runtime (cgo/trt/emu/ort_exec.c; dlopen'd at run time) on the device
# memory's private aliases when the stream is synchronised. It needs only a C compiler and
# onnxruntime_c_api.h, taken from the Go module github.com/yalue/onnxruntime_go that
# `make setup` downloads (never committed).
# Usage: bash tools/trt-emu.sh [OUTDIR]   (default build/; tests build into a temp dir)
# Idempotent: rebuilds only when a source is newer than the library.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/env.sh

out_dir=${1:-build}
bash tools/cuda-emu.sh "$out_dir"
out=$out_dir/libgrefine_trt_emu.so
srcs=(cgo/trt/fake/fake_trt.c cgo/trt/emu/ort_exec.c)
deps=("${srcs[@]}" cgo/trt/emu/emu.h cgo/include/grefine_trt.h cgo/emu/grefine_cuda_emu.h cgo/trt/exports.map
  tools/trt-emu.sh "$out_dir/libgrefine_cuda_emu.so")
if [ -f "$out" ]; then
  stale=0
  for f in "${deps[@]}"; do [ "$f" -nt "$out" ] && stale=1; done
  [ "$stale" = 0 ] && { echo "trt-emu: $out is up to date"; exit 0; }
fi
ortgo=$(go list -m -f '{{.Dir}}' github.com/yalue/onnxruntime_go 2>/dev/null || true)
if [ -z "$ortgo" ] || [ ! -f "$ortgo/onnxruntime_c_api.h" ]; then
  echo "trt-emu: onnxruntime_c_api.h not found (the Go module github.com/yalue/onnxruntime_go; run 'make setup')" >&2
  exit 1
fi
${CC:-cc} -std=c11 -O2 -g -Wall -Wextra -Werror -shared -fPIC -fvisibility=hidden -DGRF_TRT_EMU \
  -I cgo/include -I cgo/emu -isystem "$ortgo" "${srcs[@]}" -o "$out.tmp" \
  -Wl,--no-undefined -Wl,--version-script=cgo/trt/exports.map \
  -L "$out_dir" -lgrefine_cuda_emu -Wl,-rpath,'$ORIGIN' -Wl,--enable-new-dtags -ldl -lpthread
mv "$out.tmp" "$out"
echo "trt-emu: $out ($(stat -c %s "$out") bytes; needs $(objdump -p "$out" | awk '/NEEDED/{printf "%s ", $2}'); onnxruntime header from $ortgo)"
