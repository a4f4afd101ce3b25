#!/usr/bin/env bash
# Full-size assess comparison: grefine vs PyTorch on the same CPU and the same random-weight
# ViT-B/16. It used to run bench.BenchmarkAssessFull, whose prompt changed every iteration
# (a trailing counter word) and so served 6 of the 9 texts from the feature cache after
# the first run; the honest benchmark is bench/assesscpu, run with both PyTorch baselines
# by tools/bench-assesscpu.sh (bench/RESULTS.md).
exec bash "$(dirname "$0")/bench-assesscpu.sh" "$@"
