#!/usr/bin/env bash
# The honest CPU assess comparison (issue 15), everything in one run, back to back on the
# same machine and the same full-size random-weight ViT-B/16:
#   1. Go: bench/assesscpu (assess with the feature cache off, stages timed apart; the
#      repeated-prompt case; the text stage three ways)
#   2. PyTorch, fair (same EOT cut, rows sorted by length): quality_ref.py --bench --fair
#   3. PyTorch, straightforward: tools/export/quality_ref.py --bench
# and prints both ratios. The model set is made as in tools/bench-full.sh when missing.
# Needs the Python venv (make fixtures creates it). About 6 minutes on 2 cores.
#   GRF_BENCHTIME (default 3x), GRF_PY_RUNS (default 2), GRF_THREADS (default 2),
#   GRF_BENCH (the Go -bench pattern, default .: e.g. Assess for the assess cases only)
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/env.sh
py=.venv/bin/python
[ -x "$py" ] || { echo "bench-assesscpu: no .venv (run make fixtures once)" >&2; exit 1; }
[ -f .cache/random-full/clip/config.json ] || $py tools/export/make_random_full.py --out .cache/random-full
[ -f .cache/models/full/models.json ] && grep -q clip_text_kv .cache/models/full/models.json || \
  $py tools/export/export.py --out .cache/models/full --goldens '' --images '' \
    --groups clip --name full-random --clip .cache/random-full/clip --pq-prompts .cache/random-full/pq
threads=${GRF_THREADS:-2}
out=$(mktemp -d "${TMPDIR:-/tmp}/grefine-bench.XXXXXX")
trap 'rm -rf "$out"' EXIT
echo "bench-assesscpu: $(date -u +%FT%TZ), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), load $(cut -d' ' -f1-3 /proc/loadavg)"
GRF_BENCH_MODELS=.cache/models/full GRF_BENCH_THREADS=$threads go test ./bench/assesscpu -run '^$' -bench "${GRF_BENCH:-.}" \
  -benchtime "${GRF_BENCHTIME:-3x}" -timeout 60m | tee "$out/go.txt"
$py tools/export/quality_ref.py --bench --fair --model-dir .cache/models/full --clip .cache/random-full/clip \
  --runs "${GRF_PY_RUNS:-2}" --warmup 1 --threads "$threads" | tee "$out/fair.txt"
$py tools/export/quality_ref.py --bench --model-dir .cache/models/full --clip .cache/random-full/clip \
  --runs "${GRF_PY_RUNS:-2}" --warmup 0 --threads "$threads" | tee "$out/py.txt"
go_ms=$(awk '/^BenchmarkAssess-/{for (i = 1; i < NF; i++) if ($(i+1) == "best_ms") print $i}' "$out/go.txt")
py_ms=$(awk '/assess best of/{print $(NF-4)}' "$out/py.txt")
fair_ms=$(awk '/assess best of/{print $(NF-4)}' "$out/fair.txt")
awk -v g="$go_ms" -v p="$py_ms" -v f="$fair_ms" 'BEGIN {
  printf "bench-assesscpu: assess, cache off, best runs: grefine %.0f ms, PyTorch straightforward %.0f ms, fair %.0f ms\n", g, p, f
  printf "bench-assesscpu: grefine is %.2fx faster than the straightforward PyTorch, %.2fx faster than the fair one\n", p / g, f / g }'
