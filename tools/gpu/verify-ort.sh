#!/usr/bin/env bash
# grefine's first ONNX Runtime CUDA run: one script for a GPU machine (prepared on a CPU-only
# machine; NOT YET RUN on a GPU). From the repository root of the copied working tree:
#
#   bash .gpu/verify-ort.sh [REPORT_DIR]        (default $OUT, else .gpu/report)
#
# Needs (made by `make gpu-bundle` on the development machine, see README "GPU setup"):
#   .gpu/ort/*.test, .gpu/libgrefine_cuda.so, .gpu/ort-gpu.sums (carried as .gpu)
#   .gpu-ort/part-00 ... part-NN                                (carried one part per call)
# and, on the GPU machine, the NVIDIA driver (R580+) and the CUDA 13 runtime libraries
# (cudart 13, cuBLAS 13, cuRAND 10, cuDNN 9 for CUDA 13): from $GRF_ORT_CUDA_LIBS, else a
# cu130 PyTorch's site-packages/nvidia/*/lib, else /usr/local/cuda*/lib64. They are not
# carried (cuBLASLt alone is 541 MB).
#
# Device calls (each call carries at most 64 MiB; a warm machine keeps ignored files between
# calls, a fresh one starts bare): 1. carry [".gpu"]; 2..N. carry [".gpu-ort/part-NN"], one
# part per call (names in .gpu/ort-gpu.sums); the last part's call can run the script:
# command "bash .gpu/verify-ort.sh $OUT". Steps a and b take a few minutes at most; set
# GRF_GPU_UNET=1 only with time to spare.
#
# Steps, each logged, each with its own time limit; a step that cannot run says why:
#   0. join the parts, check SHA-256 of the parts, the archive and the three libraries;
#   a. conformance: the tiny set's engines on ort/cuda, ort/cuda-tf32, ort/cuda-dev against
#      ort/cpu (internal/testkit/conformance), plus engine/ort's CUDA and parity tests;
#   b. per-stage latency and host<->device copies per run (TestStageLatency);
#   c. only with GRF_GPU_UNET=1 and torch + diffusers importable: a full-size random-weight
#      SDXL-Inpainting UNet fp16, one 1024² CFG step, grefine (ort/cuda) vs PyTorch.
# Writes REPORT_DIR/ort-gpu-report.md (commit it under bench/gpu/) plus the raw logs.
set -u
root=$(pwd)
here=$root/.gpu
parts=$root/.gpu-ort
out=${1:-${OUT:-$here/report}}
mkdir -p "$out"
report=$out/ort-gpu-report.md
say() { echo "$*" | tee -a "$report"; }
section() { printf '\n## %s\n\n' "$*" | tee -a "$report"; }
fence() { echo '```' >>"$report"; cat "$1" >>"$report"; echo '```' >>"$report"; }

{
  echo "# grefine ONNX Runtime CUDA report"
  echo
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit: $(cat "$here/COMMIT" 2>/dev/null || echo unknown)"
  echo '```'
  nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv 2>&1 || echo "nvidia-smi failed"
  echo '```'
} >"$report"

# --- 0. the ONNX Runtime GPU libraries ------------------------------------------------------
section "0. ONNX Runtime GPU libraries"
lib=$parts/lib/libonnxruntime.so.1
sums=$here/ort-gpu.sums
if [ ! -f "$sums" ]; then
  say "not reached: $sums missing (run make gpu-bundle with the GPU build installed: make setup-gpu)"; exit 2
fi
check_libs() { (cd "$parts/lib" 2>/dev/null && grep ' lib' "$sums" | sha256sum -c --status 2>/dev/null); }
if ! check_libs; then
  missing=""
  while read -r sum name; do
    case $name in part-*) [ -f "$parts/$name" ] || missing="$missing $name" ;; esac
  done <"$sums"
  if [ -n "$missing" ]; then say "not reached: parts missing:$missing (carry each .gpu-ort/part-NN in its own call)"; exit 2; fi
  (cd "$parts" && grep ' part-' "$sums" | sha256sum -c --quiet) >"$out/parts.log" 2>&1 || { say "parts fail their SHA-256:"; fence "$out/parts.log"; exit 2; }
  cat "$parts"/part-* >"$parts/ort-gpu.tar.xz"
  (cd "$parts" && grep ' ort-gpu.tar.xz' "$sums" | sha256sum -c --quiet) || { say "joined archive fails its SHA-256"; exit 2; }
  mkdir -p "$parts/lib"
  if command -v xz >/dev/null; then
    xz -dc "$parts/ort-gpu.tar.xz" | tar -C "$parts/lib" -xf -
  else
    python3 -c 'import lzma,sys,tarfile; tarfile.open(fileobj=lzma.open(sys.argv[1])).extractall(sys.argv[2])' "$parts/ort-gpu.tar.xz" "$parts/lib"
  fi
  rm -f "$parts/ort-gpu.tar.xz"
  check_libs || { say "extracted libraries fail their SHA-256"; exit 2; }
fi
say "ok: $(cd "$parts/lib" && ls | tr '\n' ' ') (SHA-256 checked)"

# --- CUDA 13 libraries of this machine ------------------------------------------------------
section "CUDA 13 runtime libraries"
dirs=${GRF_ORT_CUDA_LIBS:-}
if [ -z "$dirs" ]; then
  for py in python3 /usr/bin/python3 /opt/conda/bin/python3; do
    command -v "$py" >/dev/null 2>&1 || continue
    d=$("$py" - <<'PY' 2>/dev/null
import os
try:
    import nvidia
except ImportError:
    raise SystemExit
for p in nvidia.__path__:
    for sub in sorted(os.listdir(p)):
        lib = os.path.join(p, sub, "lib")
        if os.path.isdir(lib):
            print(lib)
PY
)
    [ -n "$d" ] && { dirs=$(echo "$d" | paste -sd:); break; }
  done
fi
for c in /usr/local/cuda-13*/lib64 /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
  [ -d "$c" ] && dirs=${dirs:+$dirs:}$c
done
export GRF_ORT_CUDA_LIBS=$dirs
found=""
IFS=: read -ra ds <<<"$dirs"
for so in libcudart.so.13 libcublasLt.so.13 libcublas.so.13 libcurand.so.10 libcudnn.so.9; do
  p=""
  for d in "${ds[@]}"; do [ -f "$d/$so" ] && { p=$d/$so; break; }; done
  [ -z "$p" ] && p=$(/sbin/ldconfig -p 2>/dev/null | awk -v s="$so" '$1==s{print $NF; exit}')
  say "- $so: ${p:-NOT FOUND}"
  [ -n "$p" ] && found="$found $so"
done
say "GRF_ORT_CUDA_LIBS=$dirs"

export ONNXRUNTIME_SHARED_LIBRARY_PATH=$lib GRF_ORT_GPU_LIB=$lib GRF_CUDA_LIB=$here/libgrefine_cuda.so GRF_REQUIRE_ORT=1
status=0
runstep() { # name timeout dir binary args...  (dir: the package directory, for tests using ../../testdata)
  local name=$1 limit=$2 dir=$3; shift 3
  local log=$out/$name.log
  ( cd "$root/$dir" && timeout "$limit" "$@" ) >"$log" 2>&1
  local rc=$?
  say "$name: rc=$rc$([ $rc = 124 ] && echo " (timed out after ${limit}s)")"
  echo '```' >>"$report"
  grep -E '^(--- (PASS|FAIL|SKIP)|PASS|FAIL|ok)|conformance: |skipping|CUDA exec|max abs|full-size|grefine \(|panic|Error' "$log" | head -120 >>"$report"
  echo '```' >>"$report"
  [ $rc = 0 ] || status=1
}

# --- a. conformance -------------------------------------------------------------------------
section "a. conformance on the tiny set (reference ort/cpu, same library)"
GRF_CONFORMANCE_REPORT=$out/conformance.md GRF_CONFORMANCE_PAIRS=ort/cpu-1t,ort/cuda,ort/cuda-tf32,ort/cuda-dev \
  runstep conformance 240 internal/testkit/conformance "$here/ort/internal_testkit_conformance.test" -test.run '^TestConformance$' -test.v -test.count=1
[ -f "$out/conformance.md" ] && cat "$out/conformance.md" >>"$report"
runstep engine_ort 180 engine/ort "$here/ort/engine_ort.test" -test.run 'CUDA|Parity|RunAdd|OutOfMemory' -test.v -test.count=1

# --- b. per-stage latency and copies --------------------------------------------------------
section "b. per-stage latency (host to host) and host<->device copies per run"
GRF_STAGE_LATENCY=${GRF_STAGE_RUNS:-20} GRF_STAGE_LATENCY_REPORT=$out/stage-latency.md \
  runstep stage_latency 180 internal/testkit/conformance "$here/ort/internal_testkit_conformance.test" -test.run '^TestStageLatency$' -test.v -test.count=1
[ -f "$out/stage-latency.md" ] && cat "$out/stage-latency.md" >>"$report"

# --- c. full-size SDXL-Inpainting UNet step vs PyTorch --------------------------------------
section "c. full-size SDXL-Inpainting UNet fp16 step vs diffusers (random weights)"
if [ "${GRF_GPU_UNET:-0}" != 1 ]; then
  say "not reached: GRF_GPU_UNET=1 not set (it needs ~6 GB of disk and a few minutes)"
elif ! python3 -c 'import torch, diffusers; assert torch.cuda.is_available()' >"$out/python.log" 2>&1; then
  say "not reached: python3 cannot import torch+diffusers with CUDA here:"; fence "$out/python.log"
else
  work=${GRF_UNET_WORK:-$root/.gpu-unet}
  runstep unet_pytorch 420 . python3 "$here/sdxl_unet_step.py" --out "$work" --runs 10
  [ -f "$work/pytorch.json" ] && fence "$work/pytorch.json"
  if [ -f "$work/unet.onnx" ]; then
    GRF_UNET_DIR=$work runstep unet_grefine 300 internal/testkit/conformance "$here/ort/internal_testkit_conformance.test" -test.run '^TestFullSizeUNetStep$' -test.v -test.count=1
    [ -f "$work/grefine.json" ] && fence "$work/grefine.json"
  fi
fi

echo
echo "report: $report (exit $status)"
exit $status
