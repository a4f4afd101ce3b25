#!/usr/bin/env bash
# grefine's first run on a real TensorRT: one script for a GPU machine, prepared on a CPU-only
# machine (NOT YET RUN on a GPU). From the root of any grefine checkout that holds the bundle:
#
#   bash .gpu/verify-gpu.sh [--out DIR] [--steps a,b,c,d,e] [--dry-run]
#   bash .gpu/verify-gpu.sh --stamp NAME      # after a transfer: check what arrived, note the time
#
# The bundle (`make gpu-bundle`, tools/gpu-bundle.sh; the plan of device calls is in
# tools/gpu/README.md):
#   .gpu/                verify-gpu.sh, SHA256SUMS (every file below), BUNDLE (what and how:
#                        the calls), py/ (the full-size scripts), COMMIT
#   .gpu-bin/part-NN     grefine, the Go test binaries, libgrefine_trt.so, libgrefine_cuda.so,
#                        libonnxruntime.so.1 (xz, split)
#   .gpu-trt/part-NN     libnvinfer.so.10 + libnvonnxparser.so.10 (TensorRT 10.15.1, xz, split)
#   .gpu-ptx/part-NN     optional: libnvinfer_builder_resource_ptx.so.10.15.1 (xz, split)
#   .gpu-py/             wheels for steps c and d (diffusers, transformers and what they import
#                        that the machine may lack)
# The machine needs: the NVIDIA driver (R580+: TensorRT 10.15 is built for CUDA 13), python3
# with torch (CUDA) for steps c and d, xz or python3's lzma. No Go, no TensorRT, no compiler.
#
# Steps, in this order, each with its own time limit (GRF_LIMIT_A ... GRF_LIMIT_E, seconds:
# 240, 300, 480, 540, 180),
# each saying why when it cannot run:
#   a. join and verify the parts (SHA-256 of every part, archive and library), unpack the
#      binaries, `grefine doctor --gpus 0,1` (each GPU as serve --gpus opens it, and its NVML
#      UUID; a missing GPU 1 named), and a builder probe (a tiny plan build + run with CUDA
#      graphs) that names any library the TensorRT builder fails to load;
#   b. tiny set on real TensorRT: engine/trt's GPU tests (buffers, plan errors, build and run,
#      graph replays, engine/cuda pairing); the conformance suite on trt/cuda against
#      ort/cpu; `plans build` (TensorRT's log), assess and refine through the pipeline on
#      trt/cuda with their copy and sync counts, against --backend ort;
#   c. full size, random weights: CLIP-Surgery image encoder and text encoder, PyTorch
#      (fp32, TF32, fp16) and TensorRT (the committed plan specs) on this GPU; assess
#      latency at 1024²;
#   d. full size: one SDXL-Inpainting UNet step at 1024² (latent 128², CFG batch 2), fp16,
#      PyTorch eager and torch.compile, exported to ONNX here, TensorRT strongly typed fp16
#      (builder level GRF_TRT_OPT_LEVEL, default 3; build time reported);
#   e. `grefine bench` single-stream on the tiny set (assess, refine) with NVML power and
#      energy.
# Everything unpacked, installed or made goes to .gpu-run/ (never carried): the carried folders
# stay as they came, so a dry run in the development checkout leaves the bundle carriable.
# --dry-run checks everything that needs no GPU (parts, binaries, shim, python, wheels) and
# stops each step at its GPU point, saying so. Writes DIR/trt-gpu-report.md (default $OUT,
# else .gpu/report) and DIR/logs/; commit the report under bench/gpu/.
set -u
root=$(pwd)
here=$root/.gpu
out=${OUT:-$here/report}
steps=a,b,c,d,e
dry=0
stamp=""
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --dry-run) dry=1; shift ;;
    --stamp) stamp=$2; shift 2 ;;
    -h|--help) sed -n '2,40p' "$0"; exit 0 ;;
    *) echo "verify-gpu: unknown argument $1 (--out DIR, --steps a,b,c,d,e, --dry-run, --stamp NAME)" >&2; exit 2 ;;
  esac
done
[ -d "$here" ] || { echo "verify-gpu: no .gpu/ in $root: run from the checkout's root with the bundle carried (make gpu-bundle)" >&2; exit 2; }
sums=$here/SHA256SUMS
[ -f "$sums" ] || { echo "verify-gpu: $sums missing: the .gpu folder is incomplete" >&2; exit 2; }

# ---- --stamp: one transfer call arrived -------------------------------------------------------
# Checks the SHA-256 of every bundle file present now, lists the missing ones, and appends the
# time to .gpu-stamps (ignored, kept on a warm machine): the report turns the stamps into the
# time each call took.
if [ -n "$stamp" ]; then
  present=0 missing=0 bad=""
  while read -r sum name; do
    if [ -f "$root/$name" ]; then
      present=$((present + 1))
      [ "$(sha256sum "$root/$name" | cut -c1-64)" = "$sum" ] || bad="$bad $name"
    else
      case $name in .gpu-run/*) ;; *) missing=$((missing + 1)) ;; esac
    fi
  done < <(grep -v '^#' "$sums")
  line="$(date -u +%Y-%m-%dT%H:%M:%S.%NZ | cut -c1-23)Z $stamp: $present files present, $missing bundle files still to come${bad:+, BAD:$bad}"
  echo "$line" | tee -a "$root/.gpu-stamps"
  [ -z "$bad" ] || exit 1
  exit 0
fi

mkdir -p "$out/logs"
report=$out/trt-gpu-report.md
logs=$out/logs
say() { echo "$*" | tee -a "$report"; }
section() { printf '\n## %s\n\n' "$*" | tee -a "$report"; }
fence() { { echo '```'; cat "$@"; echo '```'; } >>"$report"; }
want() { case ",$steps," in *",$1,"*) return 0 ;; esac; return 1; }
declare -A result=()
t_start=$(date +%s)

{
  echo "# grefine on a real TensorRT: GPU report"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ)$([ $dry = 1 ] && echo ' (DRY RUN: no GPU work)')"
  echo "- bundle commit: $(cat "$here/COMMIT" 2>/dev/null || echo unknown); checkout: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo 'not a git checkout')"
  echo "- steps: $steps"
  echo '```'
  if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap,power.limit --format=csv 2>&1
  else
    echo "nvidia-smi: not on PATH"
  fi
  echo '```'
  if [ -f "$here/BUNDLE" ]; then echo; echo "Bundle:"; echo '```'; cat "$here/BUNDLE"; echo '```'; fi
  if [ -f "$root/.gpu-stamps" ]; then
    echo; echo "Transfers (each line: when a call's command ran after its copy arrived):"; echo '```'
    prev=""
    while read -r ts rest; do
      s=$(date -d "${ts%Z}" +%s.%N 2>/dev/null || echo "")
      if [ -n "$prev" ] && [ -n "$s" ]; then echo "$ts $rest (+$(awk -v a="$s" -v b="$prev" 'BEGIN{printf "%.1f", a-b}') s)"; else echo "$ts $rest"; fi
      prev=$s
    done <"$root/.gpu-stamps"
    echo '```'
  fi
} >"$report"

# runstep NAME LIMIT DIR CMD...: runs CMD in DIR (relative to the root) under a time limit,
# logs to logs/NAME.log, prints rc and duration; returns CMD's status.
runstep() {
  local name=$1 limit=$2 dir=$3; shift 3
  local log=$logs/$name.log t0 t1 rc
  t0=$(date +%s.%N)
  ( cd "$root/$dir" && timeout --kill-after=10 "$limit" "$@" ) >"$log" 2>&1
  rc=$?
  t1=$(date +%s.%N)
  say "- $name: rc=$rc in $(awk -v a="$t1" -v b="$t0" 'BEGIN{printf "%.1f", a-b}') s$([ $rc = 124 ] || [ $rc = 137 ] && echo " (TIMED OUT after ${limit} s)") (log: logs/$name.log)"
  return $rc
}
# grepfence FILE PATTERN [N]: the matching lines of a log, fenced, at most N (120).
grepfence() {
  { echo '```'; grep -E "$2" "$1" | head -"${3:-120}"; echo '```'; } >>"$report"
}

# ---- a. parts, binaries, shim, doctor, builder probe ---------------------------------------------
lim_a=${GRF_LIMIT_A:-240}
a_deadline=$(( $(date +%s) + lim_a ))
gpu=0 gpu_reason="" builder=0 builder_reason="not probed"
run=$root/.gpu-run  # everything unpacked or made here: the carried folders stay as they came
trtlib=$run/trt
section "a. parts, binaries, TensorRT shim, builder probe (limit ${lim_a} s)"

check_list() { # check_list DIR PATTERN: sha256 -c of the SHA256SUMS lines whose name matches
  (cd "$root" && grep -E "  $1" "$sums" | sha256sum -c --quiet --status 2>/dev/null)
}
unxz_to() { # unxz_to ARCHIVE DIR
  mkdir -p "$2"
  if command -v xz >/dev/null 2>&1; then
    xz -dc "$1" | tar -C "$2" -xf -
  else
    python3 -c 'import lzma,sys,tarfile; tarfile.open(fileobj=lzma.open(sys.argv[1])).extractall(sys.argv[2])' "$1" "$2"
  fi
}
# join_set KIND DIR: verify the parts of DIR, join them, verify the archive, extract it into
# .gpu-run/KIND, verify the files.
join_set() {
  local kind=$1 dir=$2 missing="" name
  if check_list "\.gpu-run/$kind/"; then say "- $kind: already in place, SHA-256 checked"; return 0; fi
  while read -r _ name; do
    [ -f "$root/$name" ] || missing="$missing ${name#*/}"
  done < <(grep -E "  $dir/part-" "$sums")
  if [ -n "$missing" ]; then say "- $kind: parts missing:$missing (carry $dir/part-NN as .gpu/BUNDLE's calls say)"; return 2; fi
  if ! check_list "$dir/part-"; then
    (cd "$root" && grep -E "  $dir/part-" "$sums" | sha256sum -c 2>&1 | grep -v ': OK$') >"$logs/$kind-parts.log"
    say "- $kind: parts fail their SHA-256:"; fence "$logs/$kind-parts.log"; return 1
  fi
  local arch
  arch=.gpu-run/$kind.tar.xz
  mkdir -p "$run"
  cat "$root/$dir"/part-* >"$root/$arch"
  check_list "$arch\$" || { say "- $kind: the joined archive fails its SHA-256"; rm -f "$root/$arch"; return 1; }
  rm -rf "$run/$kind"
  unxz_to "$root/$arch" "$run/$kind" || { say "- $kind: cannot decompress $arch"; return 1; }
  rm -f "$root/$arch"
  check_list "\.gpu-run/$kind/" || { say "- $kind: extracted files fail their SHA-256"; return 1; }
  say "- $kind: $(grep -cE "  $dir/part-" "$sums") parts joined, $(cd "$run/$kind" && ls | tr '\n' ' ')(SHA-256 checked)"
}

a_ok=1
# The binaries.
bin=$run/bin
join_set bin .gpu-bin || a_ok=0
chmod +x "$bin"/* 2>/dev/null
join_set trt .gpu-trt; rc_trt=$?
[ $rc_trt = 0 ] || a_ok=0
if grep -qE "  \.gpu-ptx/part-" "$sums"; then
  if ls "$root"/.gpu-ptx/part-* >/dev/null 2>&1 || check_list "\.gpu-run/ptx/"; then
    join_set ptx .gpu-ptx && cp -f "$run"/ptx/* "$trtlib/" 2>/dev/null
  else
    say "- ptx: the optional PTX builder resource was not carried (.gpu-ptx/part-NN); the builder probe says whether this GPU wants it"
  fi
fi
grefine=$bin/grefine
shim=$trtlib/libgrefine_trt.so
if [ $rc_trt = 0 ] && [ -f "$bin/libgrefine_trt.so" ]; then
  cp -f "$bin/libgrefine_trt.so" "$shim" # RUNPATH $ORIGIN: beside libnvinfer.so.10
fi

# ONNX Runtime (CPU) for the ort/cpu reference: the bundle's (1.30.0), else the machine's Python
# package (onnxruntime_go needs C API 24+, ONNX Runtime 1.24+), else the checkout's .deps.
ortlib=${ONNXRUNTIME_SHARED_LIBRARY_PATH:-}
[ -z "$ortlib" ] && [ -f "$bin/libonnxruntime.so.1" ] && ortlib=$bin/libonnxruntime.so.1
if [ -z "$ortlib" ]; then
  d=$(python3 -c 'import onnxruntime, os; print(os.path.join(os.path.dirname(onnxruntime.__file__), "capi"))' 2>/dev/null)
  [ -n "$d" ] && ortlib=$(ls "$d"/libonnxruntime.so* 2>/dev/null | head -1)
  [ -z "$ortlib" ] && [ -f "$root/.deps/ort/libonnxruntime.so.1" ] && ortlib=$root/.deps/ort/libonnxruntime.so.1
fi
if [ -n "$ortlib" ]; then
  export ONNXRUNTIME_SHARED_LIBRARY_PATH=$ortlib GRF_TRT_EMU_ORT=$ortlib
  say "- onnxruntime (CPU reference): $ortlib"
else
  say "- onnxruntime (CPU reference): NOT FOUND (python3 -c 'import onnxruntime' fails, no .deps/ort): ort/cpu comparisons cannot run"
fi
export GRF_TRT_LIB=$shim GRF_CUDA_LIB=$bin/libgrefine_cuda.so
tiny=$root/testdata/models/tiny
[ -f "$tiny/models.json" ] || { say "- the tiny model set is missing at $tiny (run from a grefine checkout)"; a_ok=0; }

if [ -x "$grefine" ] && [ -f "$shim" ]; then
  # --gpus 0,1: each GPU as `serve --gpus` opens it, with its NVML UUID (CUDA index -> NVML);
  # on a one-GPU machine "gpu 1" must be missing with "device 1 requested, 1 present".
  runstep doctor 60 . "$grefine" --models "$tiny" --hash-cache "" --trt-lib "$shim" doctor --gpus 0,1
  fence "$logs/doctor.log"
  line=$(grep -E '^trt gpu ' "$logs/doctor.log" | head -1)
  if echo "$line" | grep -qE '^trt gpu +ok '; then gpu=1; else gpu_reason=$(echo "$line" | sed -E 's/^trt gpu +missing +//'); fi
  [ -n "$line" ] || gpu_reason="doctor printed no 'trt gpu' line (the shim did not load: see the doctor output above)"
  grep -qE '^trt library +ok ' "$logs/doctor.log" || a_ok=0
else
  gpu_reason="no grefine binary or TensorRT shim (see above)"
fi

if [ $dry = 1 ]; then
  builder_reason="dry run"
  say "- builder probe: not reached (dry run: no GPU work)"
elif [ $gpu = 0 ]; then
  builder_reason="no GPU: $gpu_reason"
  say "- builder probe: not reached: no GPU: $gpu_reason"
else
  left=$(( a_deadline - $(date +%s) )); [ $left -lt 30 ] && left=30
  runstep builder_probe "$left" engine/trt/gputest "$bin/engine_trt_gputest.test" -test.run '^(TestDeviceAndVersions|TestBuildAndRun)$' -test.v -test.count=1
  rc=$?
  grepfence "$logs/builder_probe.log" '^(--- |PASS|FAIL|ok)|versions:|device:|graph replays|plan:|Unable to load|Error|error'
  wanted=$(grep -oE 'Unable to load library: [^ :,)]+' "$logs/builder_probe.log" | sed 's/Unable to load library: //' | sort -u | tr '\n' ' ')
  if [ $rc = 0 ]; then
    builder=1 builder_reason=""
    say "- builder probe: the TensorRT builder builds and runs a plan on this GPU (CUDA graph replays counted above)"
  else
    builder_reason="the builder probe failed (rc=$rc)"
    if [ -n "$wanted" ]; then
      builder_reason="the TensorRT builder wants $wanted"
      for w in $wanted; do
        case $w in
          *builder_resource_ptx*) say "- builder probe: the builder wants $w: carry the optional .gpu-ptx/part-NN (see .gpu/BUNDLE) and run again" ;;
          *) say "- builder probe: the builder wants $w, which the Maven jar (org.bytedeco:tensorrt:10.15-1.5.13 linux-x86_64-redist) does not contain: plans cannot be built on this GPU with this TensorRT; steps b-e need plans" ;;
        esac
      done
    fi
  fi
fi
result[a]=$([ $a_ok = 1 ] && echo ok || echo failed)

# Later steps: ready STEP -> 0 when the GPU work of STEP may run; otherwise says why.
ready() { # ready STEP NEEDS_BUILDER
  if [ $dry = 1 ]; then say "- not reached: dry run (no GPU work)"; result[$1]="dry run: reached the GPU point"; return 1; fi
  if [ $gpu = 0 ]; then say "- not reached: no GPU: $gpu_reason"; result[$1]="not reached: no GPU"; return 1; fi
  if [ "$2" = 1 ] && [ $builder = 0 ]; then say "- not reached: $builder_reason"; result[$1]="not reached: no TensorRT builder"; return 1; fi
  return 0
}
# py: python3 with the carried wheels (installed once into .gpu-run/py).
pysite=$run/py
pyready() {
  if ! python3 -c 'import torch' >/dev/null 2>&1; then say "- python3 cannot import torch: $(python3 -c 'import torch' 2>&1 | tail -1)"; return 1; fi
  if [ ! -d "$pysite" ]; then
    if ! ls "$root"/.gpu-py/*.whl >/dev/null 2>&1; then say "- wheels missing: carry .gpu-py"; return 1; fi
    if ! check_list ".gpu-py/"; then say "- .gpu-py wheels fail their SHA-256"; return 1; fi
    if python3 -m pip --version >/dev/null 2>&1; then
      python3 -m pip install --quiet --no-index --no-deps --target "$pysite.tmp" "$root"/.gpu-py/*.whl >"$logs/pip.log" 2>&1 ||
        { say "- pip could not install the wheels:"; fence "$logs/pip.log"; rm -rf "$pysite.tmp"; return 1; }
    else
      for w in "$root"/.gpu-py/*.whl; do python3 -m zipfile -e "$w" "$pysite.tmp" || return 1; done
    fi
    mv "$pysite.tmp" "$pysite"
  fi
  export PYTHONPATH=$pysite${PYTHONPATH:+:$PYTHONPATH}
  if ! python3 -c 'import diffusers, transformers' >"$logs/pyimport.log" 2>&1; then
    say "- python3 cannot import diffusers/transformers with the carried wheels:"; fence "$logs/pyimport.log"; return 1
  fi
  say "- python: $(python3 -c 'import sys, torch, diffusers, transformers; print(sys.version.split()[0], "torch", torch.__version__, "cuda", torch.cuda.is_available(), "diffusers", diffusers.__version__, "transformers", transformers.__version__)' 2>&1 | tail -1)"
}
# drywheels: in a dry run, say whether the wheels of steps c and d arrived intact.
drywheels() {
  [ $dry = 1 ] || return 0
  if ls "$root"/.gpu-py/*.whl >/dev/null 2>&1; then
    check_list ".gpu-py/" && say "- wheels: $(ls "$root"/.gpu-py/*.whl | wc -l) in .gpu-py (SHA-256 checked; installed at the first real run)" ||
      say "- wheels: .gpu-py fails its SHA-256"
  else
    say "- wheels: .gpu-py not carried (steps c and d need it)"
  fi
}
work=${GRF_GPU_WORK:-$run/work}
mkdir -p "$work"
img=$root/testdata/images/sample.png

# ---- b. tiny set on real TensorRT --------------------------------------------------------------
if want b; then
  lim=${GRF_LIMIT_B:-300}
  section "b. tiny set on real TensorRT (limit ${lim} s)"
  for f in engine_trt_gputest.test internal_testkit_conformance.test grefine; do [ -x "$bin/$f" ] || say "- missing binary $f"; done
  if ready b 1; then
    deadline=$(( $(date +%s) + lim ))
    left() { local l=$(( deadline - $(date +%s) )); [ $l -lt 10 ] && l=10; echo $l; }
    ok=1
    runstep gputest "$(left)" engine/trt/gputest "$bin/engine_trt_gputest.test" -test.v -test.count=1 || ok=0
    grepfence "$logs/gputest.log" '^(--- |PASS|FAIL|ok)|graph replays|versions:|device:'
    GRF_CONFORMANCE_PAIRS=ort/cpu-1t,trt/cuda GRF_CONFORMANCE_REPORT=$out/conformance.md \
      runstep conformance "$(left)" internal/testkit/conformance "$bin/internal_testkit_conformance.test" -test.run '^TestConformance$' -test.v -test.count=1 || ok=0
    [ -f "$out/conformance.md" ] && cat "$out/conformance.md" >>"$report"
    plans=$work/plans-tiny
    runstep plans_build_tiny "$(left)" . "$grefine" --models "$tiny" --hash-cache "" --log-level debug --trt-lib "$shim" plans build --out "$plans" || ok=0
    say "TensorRT's log (plans build, tiny set; the full log is logs/plans_build_tiny.log):"
    grepfence "$logs/plans_build_tiny.log" 'TRT|tensorrt|TensorRT|plan|error|warn' 80
    for cmd in assess refine; do
      extra=(); [ $cmd = refine ] && extra=(--seed 1)
      runstep "${cmd}_ort_cpu" "$(left)" . "$grefine" --models "$tiny" --hash-cache "" $cmd --image "$img" --prompt "a red cat on a sofa" --out "$work/$cmd-ort" "${extra[@]}" || ok=0
      runstep "${cmd}_trt_cuda" "$(left)" . "$grefine" --models "$tiny" --hash-cache "" --log-level debug --trt-lib "$shim" --backend trt --device cuda --plans "$plans" \
        $cmd --image "$img" --prompt "a red cat on a sofa" --out "$work/$cmd-trt" "${extra[@]}" || ok=0
      grepfence "$logs/${cmd}_trt_cuda.log" 'error|Error|refus|ERR' 20
      if [ -f "$work/$cmd-trt/report.json" ] && [ -f "$work/$cmd-ort/report.json" ]; then
        python3 - "$work/$cmd-ort/report.json" "$work/$cmd-trt/report.json" >"$logs/${cmd}_compare.log" 2>&1 <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
def walk(x, pre=""):
    if isinstance(x, dict):
        for k, v in x.items():
            yield from walk(v, f"{pre}.{k}" if pre else k)
    elif isinstance(x, (int, float)) and not isinstance(x, bool):
        yield pre, x
fa, fb = dict(walk(a)), dict(walk(b))
keys = [k for k in fa if k in fb and any(s in k for s in ("score", ".q", ".p", ".a", "quality", "strength"))]
print("numeric fields (ort/cpu vs trt/cuda):")
for k in keys[:40]:
    print(f"  {k}: {fa[k]} vs {fb[k]} (diff {abs(fa[k]-fb[k]):.3g})")
print("copies, syncs, graphs on trt/cuda:")
for k, v in fb.items():
    if any(s in k.lower() for s in ("cop", "sync", "replay", "graph", "alloc")):
        print(f"  {k}: {v}")
PY
        fence "$logs/${cmd}_compare.log"
        [ -f "$work/$cmd-trt/refined.png" ] && cmp -s "$work/$cmd-trt/refined.png" "$work/$cmd-ort/refined.png" && say "- refine: trt/cuda's refined.png has the bytes of ort/cpu's"
      fi
    done
    result[b]=$([ $ok = 1 ] && echo ok || echo failed)
  fi
fi

# ---- c. full-size CLIP encoders ----------------------------------------------------------------
if want c; then
  lim=${GRF_LIMIT_C:-480}
  section "c. full-size CLIP-Surgery image and text encoders, random weights (limit ${lim} s)"
  [ -f "$here/py/clip_step.py" ] && [ -f "$here/py/export/make_random_full.py" ] || say "- missing .gpu/py scripts"
  drywheels
  if ready c 1 && pyready; then
    deadline=$(( $(date +%s) + lim ))
    left() { local l=$(( deadline - $(date +%s) )); [ $l -lt 10 ] && l=10; echo $l; }
    ok=1 cw=$work/clip-full
    runstep clip_random "$(left)" . python3 "$here/py/export/make_random_full.py" --out "$cw" || ok=0
    runstep clip_export "$(left)" . python3 "$here/py/export/export.py" --groups clip --clip "$cw/clip" --pq-prompts "$cw/pq" --out "$cw/set" --name random-full || ok=0
    runstep clip_pytorch "$(left)" . python3 "$here/py/clip_step.py" --clip "$cw/clip" --out "$cw/pytorch-clip.json" || ok=0
    [ -f "$cw/pytorch-clip.json" ] && fence "$cw/pytorch-clip.json"
    runstep clip_plans "$(left)" . "$grefine" --models "$cw/set" --hash-cache "" --log-level debug --trt-lib "$shim" plans build \
      --only clip_surgery --only clip_text --out "$cw/plans" || ok=0
    grepfence "$logs/clip_plans.log" 'built|plan|level|error|Error' 40
    for e in "clip_surgery 1" "clip_text 85"; do
      set -- $e
      runstep "bench_$1" "$(left)" . "$grefine" --models "$cw/set" --hash-cache "" --trt-lib "$shim" --backend trt --device cuda --plans "$cw/plans" \
        bench --workload "engine:$1" --batch "$2" --count 50 --out "$cw/bench-$1" || ok=0
      [ -f "$cw/bench-$1/bench.md" ] && fence "$cw/bench-$1/bench.md"
    done
    runstep bench_assess_1024 "$(left)" . "$grefine" --models "$cw/set" --hash-cache "" --trt-lib "$shim" --backend trt --device cuda --plans "$cw/plans" \
      bench --workload assess --scenario single-stream --size 1024 --count 10 --out "$cw/bench-assess" || ok=0
    [ -f "$cw/bench-assess/bench.md" ] && fence "$cw/bench-assess/bench.md"
    result[c]=$([ $ok = 1 ] && echo ok || echo failed)
  else
    [ -n "${result[c]:-}" ] || result[c]="not reached: python"
  fi
fi

# ---- d. full-size SDXL-Inpainting UNet step ----------------------------------------------------
if want d; then
  lim=${GRF_LIMIT_D:-540}
  section "d. full-size SDXL-Inpainting UNet step, 1024², CFG batch 2, fp16 (limit ${lim} s)"
  [ -f "$here/py/sdxl_unet_step.py" ] || say "- missing .gpu/py/sdxl_unet_step.py"
  drywheels
  if ready d 0 && pyready; then
    deadline=$(( $(date +%s) + lim ))
    left() { local l=$(( deadline - $(date +%s) )); [ $l -lt 10 ] && l=10; echo $l; }
    ok=1 uw=$work/unet-full
    compile=(); [ "${GRF_GPU_COMPILE:-1}" = 1 ] && compile=(--compile)
    runstep unet_pytorch "$(left)" . python3 "$here/py/sdxl_unet_step.py" --out "$uw" --runs 10 "${compile[@]}" || ok=0
    [ -f "$uw/pytorch.json" ] && fence "$uw/pytorch.json"
    if [ $builder = 0 ]; then
      say "- TensorRT side not reached: $builder_reason"
    elif [ -f "$uw/unet.onnx" ]; then
      GRF_UNET_DIR=$uw GRF_UNET_PAIR=trt/cuda-typed GRF_TRT_OPT_LEVEL=${GRF_TRT_OPT_LEVEL:-3} \
        runstep unet_tensorrt "$(left)" internal/testkit/conformance "$bin/internal_testkit_conformance.test" -test.run '^TestFullSizeUNetStep$' -test.v -test.count=1 || ok=0
      say "- builder optimisation level ${GRF_TRT_OPT_LEVEL:-3}; open_s below is the plan build plus deserialisation"
      [ -f "$uw/grefine.json" ] && fence "$uw/grefine.json"
      grepfence "$logs/unet_tensorrt.log" 'TRT|PyTorch/grefine|--- |FAIL|Error' 40
    fi
    result[d]=$([ $ok = 1 ] && echo ok || echo failed)
  else
    [ -n "${result[d]:-}" ] || result[d]="not reached: python"
  fi
fi

# ---- e. bench single-stream, tiny set, NVML energy ---------------------------------------------
if want e; then
  lim=${GRF_LIMIT_E:-180}
  section "e. grefine bench single-stream, tiny set, NVML power and energy (limit ${lim} s)"
  if ready e 1; then
    deadline=$(( $(date +%s) + lim ))
    left() { local l=$(( deadline - $(date +%s) )); [ $l -lt 10 ] && l=10; echo $l; }
    ok=1 plans=$work/plans-tiny
    [ -d "$plans" ] || runstep plans_build_tiny_e "$(left)" . "$grefine" --models "$tiny" --hash-cache "" --trt-lib "$shim" plans build --out "$plans" || ok=0
    for wl in assess refine; do
      n=20; [ $wl = refine ] && n=5
      runstep "bench_$wl" "$(left)" . "$grefine" --models "$tiny" --hash-cache "" --trt-lib "$shim" --backend trt --device cuda --plans "$plans" \
        bench --workload $wl --scenario single-stream --count $n --out "$work/bench-$wl" || ok=0
      [ -f "$work/bench-$wl/bench.md" ] && fence "$work/bench-$wl/bench.md"
    done
    result[e]=$([ $ok = 1 ] && echo ok || echo failed)
  fi
fi

section "Summary"
status=0
for s in a b c d e; do
  want $s || continue
  r=${result[$s]:-not run}
  say "- $s: $r"
  case $r in failed*) status=1 ;; esac
  if [ $dry = 1 ] && [ $s != a ]; then case $r in "dry run"*) ;; *) status=1 ;; esac; fi
done
say "- total: $(( $(date +%s) - t_start )) s; logs in $logs"
if [ $dry = 0 ] && [ $status = 0 ] && [ $gpu = 0 ]; then
  say "- nothing was verified on a GPU: $gpu_reason"
  status=3
fi
echo
echo "report: $report (exit $status)"
exit $status
