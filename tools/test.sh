#!/usr/bin/env bash
# make test: (after make setup) build the native libraries, lint, run every Go test, then
# the real Python clients (tritonclient, schemathesis) against `grefine serve`, and the
# Triton backend against a real tritonserver.
# ONNX Runtime is required here (GRF_REQUIRE_ORT=1): its tests fail instead of skipping.
# GPU-only tests skip with their reason on machines without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/env.sh
export GRF_REQUIRE_ORT=1
if [ -f tools/native.sh ]; then
  GRF_REQUIRE_CUDA=${GRF_REQUIRE_CUDA:-1} bash tools/native.sh
fi
bash tools/cuda-emu.sh
bash tools/trt-emu.sh
bash tools/lint.sh
go test -count=1 ./... 2>&1 | tee /tmp/grefine-test.log
# The pipeline's concurrency tests (two requests on two slots equal single calls) under the race detector.
go test -count=1 -race ./pipeline/ 2>&1 | tee -a /tmp/grefine-test.log
# TensorRT slots under the race detector (emulator: two slots at once equal serial runs).
go test -count=1 -race -run 'TestSlotsConcurrent|TestNoPerStepAllocation|TestConcurrentRuns' ./engine/trt/... 2>&1 | tee -a /tmp/grefine-test.log

bash tools/test-lib.sh  # libgrefine: C tests, examples vs the CLI

bash tools/pyclients.sh
bash tools/triton-test.sh  # the Triton backend against a real tritonserver (tests/triton)
echo "test: ok"
