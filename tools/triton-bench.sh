#!/usr/bin/env bash
# perf_analyzer against Triton with the grefine backend and against `grefine serve`, and
# `grefine bench` (the pipeline in process), on the same input (tools/pyclients/small.png,
# 96x64, with the demo prompt), tiny model set, default parameters, at concurrency 1, 2
# and 4. Both servers run the pipeline with 2 slots (Triton: one instance with slots 2;
# serve: --slots 2); perf_analyzer speaks HTTP (KServe v2, binary tensors). One run; the
# table (throughput, p50, p99 and the ratios to the in-process figures) goes to stdout and
# OUT/summary.md. Not part of make test. Usage: bash tools/triton-bench.sh [OUT] [WORKLOADS]
# (WORKLOADS: "assess refine", the default).
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/env.sh
out=${1:-/tmp/grefine-triton-bench}
workloads=${2:-assess refine}
mkdir -p "$out"
out=$(cd "$out" && pwd)
bash tools/triton-setup.sh
bash tools/triton-build.sh >/dev/null
go build -o "$out/grefine" ./cmd/grefine
models=testdata/models/tiny
prompt="Mr. Beans wearing sun glasses with blue doctor suit and stripe tie"
png=tools/pyclients/small.png

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
ready() { # URL PID LOG
  for _ in $(seq 1 600); do
    curl -sf "http://$1/v2/health/ready" >/dev/null 2>&1 && return 0
    kill -0 "$2" 2>/dev/null || { tail -20 "$3"; echo "triton-bench: server died" >&2; exit 1; }
    sleep 0.2
  done
  echo "triton-bench: $1 not ready" >&2; exit 1
}

rm -rf "$out/repo"
"$out/grefine" --models "$models" --hash-cache "" triton-repo --out "$out/repo" --slots 2 >/dev/null
th=127.0.0.1:$(port) tg=$(port) tm=$(port)
.deps/triton/pytriton/tritonserver/bin/tritonserver --model-repository="$out/repo" --backend-directory=build/triton/backends \
  --http-port "${th#*:}" --grpc-port "$tg" --metrics-port "$tm" --allow-gpu-metrics false >"$out/tritonserver.log" 2>&1 &
pids+=($!)
ready "$th" "${pids[-1]}" "$out/tritonserver.log"
sv=127.0.0.1:$(port)
"$out/grefine" --models "$models" --hash-cache "" --log-level warn serve --addr "$sv" --slots 2 --queue 64 >"$out/serve.log" 2>&1 &
pids+=($!)
ready "$sv" "${pids[-1]}" "$out/serve.log"

python3 - "$png" "$prompt" "$out" <<'EOF'
import base64, json, os, struct, sys
png, prompt, out = sys.argv[1], sys.argv[2], sys.argv[3]
data = open(png, "rb").read()
b64 = base64.b64encode(struct.pack("<I", len(data)) + data).decode()
json.dump({"data": [{"image": {"b64": b64}, "prompt": [prompt]}]}, open(os.path.join(out, "pa-input.json"), "w"))
with open(os.path.join(out, "inputs.jsonl"), "w") as f:
    f.write(json.dumps({"image": os.path.abspath(png), "prompt": prompt, "id": "small"}) + "\n")
EOF

export LD_LIBRARY_PATH=$PWD/.deps/triton/lib
pa() { # WORKLOAD MODEL URL CONCURRENCY CSV
  local count=200
  [ "$1" = refine ] && count=6
  .deps/triton/bin/perf_analyzer -m "$2" -u "$3" -i http --input-data "$out/pa-input.json" --concurrency-range "$4" \
    --measurement-mode count_windows --measurement-request-count "$count" --stability-percentage 1000 --max-trials 3 \
    -f "$5" >"${5%.csv}.log" 2>&1 || { tail -20 "${5%.csv}.log"; echo "triton-bench: perf_analyzer failed" >&2; exit 1; }
}
for w in $workloads; do
  n=300
  [ "$w" = refine ] && n=18
  for c in 1 2 4; do # the three measurements of a level back to back: the machine's load drifts
    echo "triton-bench: $w, concurrency $c: in process (grefine bench, 2 slots), Triton, grefine serve"
    "$out/grefine" --models "$models" --hash-cache "" --log-level error bench --workload "$w" --scenario sweep --concurrency "$c" \
      --slots 2 --count "$n" --warmup 4 --inputs "$out/inputs.jsonl" --no-gpu --quiet --out "$out/inproc-$w-c$c" >/dev/null
    pa "$w" "grefine_$w" "$th" "$c" "$out/triton-$w-c$c.csv"
    pa "$w" "$w" "$sv" "$c" "$out/serve-$w-c$c.csv"
  done
done

python3 - "$out" "$workloads" <<'EOF'
import csv, json, os, sys
out, workloads = sys.argv[1], sys.argv[2].split()
rows = ["| workload | c | in process: img/s, p50, p99 (ms) | Triton + grefine: img/s, p50, p99 | grefine serve: img/s, p50, p99 | Triton / in process (img/s) | serve / in process (img/s) | Triton / serve (img/s) |",
        "|---|---|---|---|---|---|---|---|"]
for w in workloads:
    for c in (1, 2, 4):
        ip = json.load(open(os.path.join(out, f"inproc-{w}-c{c}", "bench.json")))["runs"][0]
        def pa(kind):
            r = next(csv.DictReader(open(os.path.join(out, f"{kind}-{w}-c{c}.csv"))))
            return float(r["Inferences/Second"]), float(r["p50 latency"]) / 1000, float(r["p99 latency"]) / 1000
        t, s = pa("triton"), pa("serve")
        i = (ip["throughput_per_s"], ip["latency_ms"]["p50"], ip["latency_ms"]["p99"])
        f = lambda x: f"{x[0]:.2f}, {x[1]:.1f}, {x[2]:.1f}"
        rows.append(f"| {w} | {c} | {f(i)} | {f(t)} | {f(s)} | {t[0] / i[0]:.2f} | {s[0] / i[0]:.2f} | {t[0] / s[0]:.2f} |")
table = "\n".join(rows)
print(table)
open(os.path.join(out, "summary.md"), "w").write(table + "\n")
EOF
