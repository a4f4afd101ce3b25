#!/usr/bin/env bash
# make bench: grefine's benchmarks on this machine (record results, with the machine and the
# command, in bench/RESULTS.md). Set GRF_BENCH_MODELS to a full-size model set to include the
# full-size assess benchmarks; tools/bench-full.sh makes one and runs the PyTorch comparison.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/env.sh
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $(free -g | awk '/Mem:/{print $2}') GiB"
go test ./bench ./bench/assesscpu ./engine/ort ./pipeline/tokenizer ./pipeline/syntax -run '^$' -bench . -benchtime "${GRF_BENCHTIME:-3x}" -timeout 60m
