#!/usr/bin/env bash
# Full-size assess comparison (issue: quality indicators, speed): grefine vs a straightforward
# PyTorch implementation of the same maths, same CPU, same random-weight ViT-B/16.
#   1. a full-size CLIP ViT-B/16 with seeded random weights (.cache/random-full, ~600 MB)
#   2. its export as a grefine model set (.cache/models/full, ~600 MB; not committed)
#   3. Go: BenchmarkAssessFull (1024² image, 4-noun prompt, text cache defeated)
#   4. PyTorch: tools/export/quality_ref.py --bench on the same weights, 2 threads
# Needs the Python venv (make fixtures creates it). Takes ~10 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/env.sh
py=.venv/bin/python
[ -x "$py" ] || { echo "bench-full: no .venv (run make fixtures once)" >&2; exit 1; }
[ -f .cache/random-full/clip/config.json ] || $py tools/export/make_random_full.py --out .cache/random-full
[ -f .cache/models/full/models.json ] || $py tools/export/export.py --out .cache/models/full --goldens '' --images '' \
  --groups clip --name full-random --clip .cache/random-full/clip --pq-prompts .cache/random-full/pq
GRF_BENCH_MODELS=.cache/models/full go test ./bench -run '^$' -bench 'AssessFull' -benchtime "${GRF_BENCHTIME:-3x}" -timeout 60m
$py tools/export/quality_ref.py --bench --model-dir .cache/models/full --clip .cache/random-full/clip --runs "${GRF_PY_RUNS:-2}" --warmup 0 --threads 2
