#!/usr/bin/env bash
# The GPU acceptance run of grefine bench (issue 12): one single-stream and one offline
# assess run with the NVML timeline (20 Hz) and joules per image, written under
# bench/gpu/<date>-<gpu>/{single-stream,offline}/ (bench.json, bench.md, plots) for review
# and commit. Needs a GPU with its driver (NVML), `make build` done, and --device cuda
# (make native) unless GRF_BENCH_DEVICE=cpu.
#   GRF_BENCH_MODELS   model set (default testdata/models/tiny)
#   GRF_BENCH_DURATION single-stream length (default 60s)
#   GRF_BENCH_COUNT    offline query size (default 64)
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/env.sh
bin=bin/grefine
[ -x "$bin" ] || { echo "bench-gpu: no $bin (run make build)" >&2; exit 1; }
command -v nvidia-smi >/dev/null || { echo "bench-gpu: no nvidia-smi: this machine has no NVIDIA driver" >&2; exit 1; }
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1 | tr ' A-Z' '-a-z' | tr -cd 'a-z0-9-')
out=bench/gpu/$(date -u +%Y-%m-%d)-${gpu:-gpu}
models=${GRF_BENCH_MODELS:-testdata/models/tiny}
dev=${GRF_BENCH_DEVICE:-cuda}
mkdir -p "$out"
"$bin" --models "$models" --device "$dev" bench --workload assess --scenario single-stream \
  --duration "${GRF_BENCH_DURATION:-60s}" --warmup 8 --out "$out/single-stream"
"$bin" --models "$models" --device "$dev" bench --workload assess --scenario offline \
  --count "${GRF_BENCH_COUNT:-64}" --warmup 8 --slots 2 --out "$out/offline"
grep -q '"available": true' "$out/single-stream/bench.json" || { echo "bench-gpu: NVML was not available (see bench.md's GPU line)" >&2; exit 1; }
echo "bench-gpu: wrote $out (bench.md, bench.json, latency_cdf.png, throughput.png, gpu_timeline.png per run)"
