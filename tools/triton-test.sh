#!/usr/bin/env bash
# grefine as a Triton backend, against a real tritonserver (called by make test):
# installs tritonserver and perf_analyzer (tools/triton-setup.sh, pinned wheels), builds
# the backend (tools/triton-build.sh) and the CLI, then runs tests/triton/ with Triton's
# own clients from .venv-test/ (tools/pyclients.sh --venv-only): assess/refine equal to
# `grefine assess`/`refine` (and refine's PNG to `grefine serve`'s) over HTTP and gRPC,
# client errors, statistics, cancellation, unload/load, perf_analyzer against both
# servers, and the SIGTERM drain.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/env.sh
bash tools/triton-setup.sh
bash tools/pyclients.sh --venv-only
bash tools/triton-build.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/grefine" ./cmd/grefine
export GRF_GREFINE=$tmp/grefine GRF_MODELS=testdata/models/tiny GRF_SMALL_PNG=tools/pyclients/small.png \
  GRF_TRITONSERVER=$PWD/.deps/triton/pytriton/tritonserver/bin/tritonserver GRF_TRITON_BACKENDS=$PWD/build/triton/backends \
  GRF_PERF_ANALYZER=$PWD/.deps/triton/bin/perf_analyzer GRF_PERF_LIBS=$PWD/.deps/triton/lib
.venv-test/bin/python -m pytest -q -p no:cacheprovider --basetemp="$tmp/pytest" tests/triton/ "$@"
echo "triton: ok (tritonserver 2.51.0 with libtriton_grefine.so; tritonclient HTTP+gRPC; perf_analyzer)"
