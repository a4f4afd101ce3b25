#!/usr/bin/env bash
# make native: configure and build grefine's native libraries with CMake into build/
# (Release):
#   build/libgrefine_cuda.so  CUDA kernels (cgo/kernels), sm_80 + sm_90 SASS + sm_90 PTX by
#                             default (override with CMAKE_CUDA_ARCHITECTURES=...)
#   build/libgrefine_trt.so   TensorRT shim (cgo/trt), only when TensorRT_ROOT is set
# Without nvcc it prints why and exits 0 (the Go side builds and runs without the
# libraries), unless GRF_REQUIRE_CUDA=1.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/env.sh

if ! nvcc=$(find_nvcc); then
  msg="native: no CUDA compiler (nvcc) found; libgrefine_cuda.so not built (run 'make setup' or install a CUDA toolkit)"
  if [ "${GRF_REQUIRE_CUDA:-0}" = 1 ]; then echo "$msg" >&2; exit 1; fi
  echo "$msg"
  exit 0
fi
command -v cmake >/dev/null || { echo "native: cmake is required (apt-get install cmake)" >&2; exit 1; }

args=(-S . -B build -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_COMPILER="$nvcc")
if [ -n "${CMAKE_CUDA_ARCHITECTURES:-}" ]; then
  args+=(-DCMAKE_CUDA_ARCHITECTURES="$CMAKE_CUDA_ARCHITECTURES")
fi
if [ -n "${TensorRT_ROOT:-}" ]; then
  args+=(-DTensorRT_ROOT="$TensorRT_ROOT")
fi
mkdir -p build
cmake "${args[@]}" >build/configure.log 2>&1 || { cat build/configure.log >&2; exit 1; }
cmake --build build --parallel "${GRF_JOBS:-2}"
lib=build/libgrefine_cuda.so
[ -f "$lib" ] || { echo "native: $lib was not produced" >&2; exit 1; }
echo "native: $lib ($(stat -c %s "$lib") bytes; needs: $(objdump -p "$lib" | awk '/NEEDED/{printf "%s ", $2}'))"
