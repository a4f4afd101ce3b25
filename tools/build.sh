#!/usr/bin/env bash
# make build: bin/grefine (pure Go + cgo for ONNX Runtime/NVML loaders; native libraries are dlopen'd).
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/env.sh
mkdir -p bin
ver=$(git describe --always --dirty 2>/dev/null || echo dev)
go build -ldflags "-X main.version=$ver" -o bin/grefine.tmp ./cmd/grefine
mv bin/grefine.tmp bin/grefine
echo "build: bin/grefine ($ver)"
