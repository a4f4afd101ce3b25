#!/usr/bin/env bash
# Compile-checks the TensorRT shim (cgo/trt/*.cpp) against TensorRT's public headers with
# warnings as errors, without a TensorRT installation (nothing is linked). Not part of
# `make test`: CI has no TensorRT headers.
#
#   tools/check-trt.sh                      # headers of TRT_REFS (default: HEAD=11.x, v10.16)
#                                           # exported from the NVIDIA/TensorRT git mirror
#   TRT_INCLUDE=/opt/tensorrt/include tools/check-trt.sh   # one given include dir
#
# Env: TRT_MIRROR (bare git dir of NVIDIA/TensorRT), TRT_REFS, CUDA_INCLUDE (dir holding
# cuda_runtime_api.h when it is not on the default path), CXX, CC.
# Exported headers go to .deps/tensorrt-headers/<ref>/include (ignored by git; never commit).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$GRF_ROOT"

CXX=${CXX:-g++}
CC=${CC:-cc}
MIRROR=${TRT_MIRROR:-/work/.mirror/NVIDIA+TensorRT/repo}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

incs=()
if [ -n "${TRT_INCLUDE:-}" ]; then
  incs+=("$TRT_INCLUDE")
else
  for ref in ${TRT_REFS:-HEAD v10.16}; do
    dir=.deps/tensorrt-headers/$ref
    if [ ! -f "$dir/include/NvInfer.h" ]; then
      [ -d "$MIRROR" ] || { echo "check-trt: no TRT_INCLUDE and no mirror at $MIRROR" >&2; exit 2; }
      mkdir -p "$dir"
      git -C "$MIRROR" archive "$ref" include | tar -x -C "$dir"
    fi
    incs+=("$dir/include")
  done
fi

cuda=()
if [ -n "${CUDA_INCLUDE:-}" ]; then
  cuda=(-isystem "$CUDA_INCLUDE")
elif [ ! -f /usr/include/cuda_runtime_api.h ] && [ -f /usr/local/cuda/include/cuda_runtime_api.h ]; then
  cuda=(-isystem /usr/local/cuda/include)
fi

run() { echo "+ $*"; "$@"; }
n=0
# The ABI headers are pure C and C++-safe.
for h in grefine_trt.h grefine_trt_loader.h; do
  echo "#include \"$h\"" > "$tmp/h.c"
  run "$CC" -std=c99 -Wall -Wextra -Werror -pedantic -I cgo/include -fsyntax-only "$tmp/h.c"
  run "$CXX" -x c++ -std=c++17 -Wall -Wextra -Werror -I cgo/include -fsyntax-only "$tmp/h.c"
  n=$((n + 2))
done
# The fake ABI used by the Go tests, and the emulator (the fake with ONNX Runtime plans),
# whose header comes from the Go module cache when present.
run "$CC" -std=c11 -Wall -Wextra -Werror -I cgo/include -c cgo/trt/fake/fake_trt.c -o "$tmp/fake.o"
n=$((n + 1))
ortgo=$(go list -m -f '{{.Dir}}' github.com/yalue/onnxruntime_go 2>/dev/null || true)
if [ -n "$ortgo" ] && [ -f "$ortgo/onnxruntime_c_api.h" ]; then
  for f in cgo/trt/fake/fake_trt.c cgo/trt/emu/ort_exec.c; do
    run "$CC" -std=c11 -Wall -Wextra -Werror -DGRF_TRT_EMU -I cgo/include -isystem "$ortgo" -c "$f" -o "$tmp/emu-$(basename "$f" .c).o"
    n=$((n + 1))
  done
else
  echo "check-trt: onnxruntime_c_api.h not found (run make setup): emulator not checked"
fi
for inc in "${incs[@]}"; do
  ver=$(sed -n 's/^#define \(TRT_MAJOR_ENTERPRISE\|NV_TENSORRT_MAJOR\) \([0-9]*\).*/\2/p' "$inc/NvInferVersion.h" | head -1)
  echo "== TensorRT headers $inc (major $ver)"
  for f in cgo/trt/*.cpp; do
    run "$CXX" -std=c++17 -Wall -Wextra -Werror -isystem "$inc" "${cuda[@]}" -I cgo/include -c "$f" -o "$tmp/$(basename "$f" .cpp).o"
    n=$((n + 1))
  done
done
# No .cu sources in cgo/trt (nothing for nvcc to check).
echo "check-trt: OK ($n compiles, no warnings)"
