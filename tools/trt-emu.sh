#!/usr/bin/env bash
# make trt-emu: build build/libgrefine_trt_emu.so, the TensorRT emulator: the shim's C ABI
# (cgo/include/grefine_trt.h) implemented on host memory by cgo/trt/fake/fake_trt.c
# (-DGRF_TRT_EMU), with plans that name an ONNX file run by ONNX Runtime on the CPU
# (cgo/trt/emu/ort_exec.c; ONNX Runtime is dlopen'd at run time). It needs only a C
# compiler and onnxruntime_c_api.h, taken from the Go module github.com/yalue/onnxruntime_go
# that `make setup` downloads (never committed). Idempotent: rebuilds only when a source
# is newer than the library.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/env.sh

out=build/libgrefine_trt_emu.so
srcs=(cgo/trt/fake/fake_trt.c cgo/trt/emu/ort_exec.c)
deps=("${srcs[@]}" cgo/trt/emu/emu.h cgo/include/grefine_trt.h cgo/trt/exports.map tools/trt-emu.sh)
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
mkdir -p build
${CC:-cc} -std=c11 -O2 -g -Wall -Wextra -Werror -shared -fPIC -fvisibility=hidden -DGRF_TRT_EMU \
  -I cgo/include -isystem "$ortgo" "${srcs[@]}" -o "$out.tmp" \
  -Wl,--no-undefined -Wl,--version-script=cgo/trt/exports.map -ldl -lpthread
mv "$out.tmp" "$out"
echo "trt-emu: $out ($(stat -c %s "$out") bytes; onnxruntime header from $ortgo)"
