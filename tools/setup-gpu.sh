#!/usr/bin/env bash
# make setup-gpu: install ONNX Runtime's GPU build and the CUDA 13 runtime libraries it needs,
# from PyPI wheels, into .deps/ort-gpu/ (not part of `make setup`; about 1.5 GB download,
# 2.3 GB on disk). Every wheel and every extracted library is checked against the SHA-256
# pinned in tools/setupgpu/manifest.json; a mismatch stops with nothing half-written.
#   .deps/ort-gpu/libonnxruntime.so.1 (+ providers_shared, providers_cuda)  onnxruntime-gpu 1.31.1
#   .deps/ort-gpu/cuda/   libcudart.so.13, libcublas(Lt).so.13, libcurand.so.10, libcufft.so.12,
#                         libnvrtc.so.13, libcudnn*.so.9 (CUDA 13.0 / cuDNN 9 wheels)
# The NVIDIA driver (libcuda.so.1, R580+ for CUDA 13) is not on PyPI: it comes with the GPU.
# Idempotent: a second run only re-hashes the installed files.
# Variables: GRF_ORT_GPU_DIR (install dir), GRF_WHEEL_DIR (wheel cache, default .cache/wheels;
# the default cache is emptied after a good install unless GRF_KEEP_WHEELS=1), PIP.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/env.sh

out=${GRF_ORT_GPU_DIR:-.deps/ort-gpu}
wheels=${GRF_WHEEL_DIR:-.cache/wheels}
pip=${PIP:-python3 -m pip}
tool=(go run ./tools/setupgpu -wheels "$wheels" -out "$out")

need=$("${tool[@]}" need)
if [ -n "$need" ]; then
  echo "setup-gpu: downloading $(echo $need | wc -w) wheels with pip into $wheels: $(echo $need)"
  mkdir -p "$wheels"
  # The pins are manylinux x86_64 wheels; the tags make pip pick exactly those files
  # whatever Python runs pip (the libraries do not depend on the Python version).
  # shellcheck disable=SC2086
  $pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux_2_12_x86_64 --platform manylinux2010_x86_64 \
    -d "$wheels" $need
fi
"${tool[@]}" install
if [ -z "${GRF_WHEEL_DIR:-}" ] && [ "${GRF_KEEP_WHEELS:-0}" != 1 ] && [ -n "$need" ]; then
  rm -rf "$wheels"
fi
echo "setup-gpu: ok; use it with ONNXRUNTIME_SHARED_LIBRARY_PATH=$out/libonnxruntime.so.1 (grefine --backend ort --device cuda; grefine doctor shows what was found)"
