#!/bin/sh
# A stand-in competitor for the --baseline tests (CI has no torch): it checks the
# protocol's environment, then reports GREFINE_BENCH_COUNT requests of FAKE_MS ms each
# (default 40), after GREFINE_BENCH_WARMUP warm-up lines, with a log line between.
set -e
test -f "$GREFINE_BENCH_INPUTS" || { echo "no inputs file" >&2; exit 3; }
n=$(grep -c '"image"' "$GREFINE_BENCH_INPUTS")
first=$(head -n 1 "$GREFINE_BENCH_INPUTS" | sed 's/.*"image":"\([^"]*\)".*/\1/')
test -f "$first" || { echo "no image $first" >&2; exit 4; }
echo "fake baseline: $n inputs, workload $GREFINE_BENCH_WORKLOAD, models $GREFINE_BENCH_MODELS"
echo '{"info": {"description": "fake competitor", "inputs": '"$n"'}}'
i=0
while [ $i -lt "$GREFINE_BENCH_WARMUP" ]; do echo '{"warmup": true, "ms": 9999}'; i=$((i+1)); done
i=0
while [ $i -lt "$GREFINE_BENCH_COUNT" ]; do
  echo '{"id": "x", "ms": '"${FAKE_MS:-40}"', "stages_ms": {"torch": 30}}'
  i=$((i+1))
done
