# Sourced by tools/*.sh: project-local paths and helpers. No side effects beyond exports.
GRF_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export GRF_ROOT
export ONNXRUNTIME_SHARED_LIBRARY_PATH=${ONNXRUNTIME_SHARED_LIBRARY_PATH:-$GRF_ROOT/.deps/ort/libonnxruntime.so.1}
# The ONNX Runtime GPU build of `make setup-gpu` (engine/ort device=cuda; may not exist).
export GRF_ORT_GPU_LIB=${GRF_ORT_GPU_LIB:-$GRF_ROOT/.deps/ort-gpu/libonnxruntime.so.1}
export CGO_CFLAGS=${CGO_CFLAGS:-"-O2 -g -Wno-deprecated-declarations"}
# Native libraries built by `make native` (dlopen'd by engine/cuda and engine/trt).
export GRF_CUDA_LIB=${GRF_CUDA_LIB:-$GRF_ROOT/build/libgrefine_cuda.so}
export GRF_TRT_LIB=${GRF_TRT_LIB:-$GRF_ROOT/build/libgrefine_trt.so}
find_nvcc() {
  if command -v nvcc >/dev/null 2>&1; then command -v nvcc; return 0; fi
  for p in /usr/local/cuda/bin/nvcc /usr/lib/nvidia-cuda-toolkit/bin/nvcc; do
    [ -x "$p" ] && { echo "$p"; return 0; }
  done
  return 1
}
