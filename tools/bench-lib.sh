#!/usr/bin/env bash
# The C call's overhead over the Go API on the tiny set (bench/RESULTS.md, Embedding):
# tests/c/bench_assess times grefine_assess from C against the time spent inside
# Pipeline.Assess in the same calls; BenchmarkPipelineAssess runs Pipeline.Assess from Go
# on the same image and prompt. Needs `make lib` and the tests/c build (tools/test-lib.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/env.sh
n=${1:-50}
[ -x build/tests-c/bench_assess ] || { echo "bench-lib: build/tests-c/bench_assess missing (run tools/test-lib.sh first)" >&2; exit 1; }
build/tests-c/bench_assess testdata/models/tiny testdata/images/sample.png "a red cat on a blue mat" "$n"
go test -count=1 -run '^$' -bench BenchmarkPipelineAssess -benchtime "${n}x" ./cmd/libgrefine/
