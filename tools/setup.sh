#!/usr/bin/env bash
# make setup: install what the Go side needs, idempotently, into project-local folders.
#   - ONNX Runtime 1.30.0 C library (CPU) from the npm tarball, SHA-256 checked -> .deps/ort/
#   - Go modules (go mod download)
#   - cmake, gcc, g++, pkg-config, python3 when missing (libgrefine's C tests and examples)
#   - the Debian CUDA 11.8 toolkit (nvcc), unless GRF_NO_CUDA=1, so `make native`/`make test`
#     compile the kernels; it needs root and apt (contrib/non-free components are enabled).
# A second run only checks and takes a second or two.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/env.sh

ORT_VERSION=1.30.0
ORT_SHA256=ffb75a925ba05e47b235bb66e3e3911714a80b328a9c9425539feb204aa32a23
ort_lib=.deps/ort/libonnxruntime.so.1

have_ort() { [ -f "$ort_lib" ] && echo "$ORT_SHA256  $ort_lib" | sha256sum -c --status; }

if ! have_ort; then
  echo "setup: installing ONNX Runtime $ORT_VERSION (npm package onnxruntime-node) into .deps/ort"
  command -v npm >/dev/null || { echo "setup: npm is required to fetch ONNX Runtime" >&2; exit 1; }
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "onnxruntime-node@$ORT_VERSION" >/dev/null)
  mkdir -p .deps/ort
  tar xzf "$tmp/onnxruntime-node-$ORT_VERSION.tgz" -C "$tmp" package/bin/napi-v6/linux/x64/libonnxruntime.so.1
  mv "$tmp/package/bin/napi-v6/linux/x64/libonnxruntime.so.1" "$ort_lib.tmp"
  mv "$ort_lib.tmp" "$ort_lib"
  have_ort || { echo "setup: ONNX Runtime library hash mismatch" >&2; rm -f "$ort_lib"; exit 1; }
fi

go mod download

# libgrefine's tests and examples (tools/test-lib.sh) build C/C++ with CMake and run Python.
missing=()
for pair in cmake:cmake cc:gcc c++:g++ pkg-config:pkg-config python3:python3; do
  command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]} (libgrefine's C tests and examples)"
  if [ "$(id -u)" != 0 ]; then echo "setup: need root for apt-get to install ${missing[*]}" >&2; exit 1; fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "${GRF_NO_CUDA:-0}" != 1 ] && ! find_nvcc >/dev/null; then
  echo "setup: installing the CUDA 11.8 toolkit from Debian non-free (nvidia-cuda-toolkit, ~2-3 min)"
  if [ "$(id -u)" != 0 ]; then echo "setup: need root for apt-get (or set GRF_NO_CUDA=1)" >&2; exit 1; fi
  src=/etc/apt/sources.list.d/debian.sources
  if [ -f "$src" ] && ! grep -q '^Components:.*non-free' "$src"; then
    sed -i 's/^Components: main$/Components: main contrib non-free non-free-firmware/' "$src"
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nvidia-cuda-toolkit >/dev/null
  find_nvcc >/dev/null || { echo "setup: nvcc still missing after install" >&2; exit 1; }
fi
echo "setup: ok (onnxruntime $ORT_VERSION, $(go version | cut -d' ' -f3)$(n=$(find_nvcc 2>/dev/null) && echo ", nvcc $($n --version | sed -n 's/.*release \([0-9.]*\).*/\1/p')"))"
