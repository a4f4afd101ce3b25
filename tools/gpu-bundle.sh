#!/usr/bin/env bash
# make gpu-bundle: build everything a GPU machine needs to verify grefine into .gpu/:
#   <pkg>.test             Go test binaries (cgo; need only libc/libdl/libpthread to load)
#                          of every package in GRF_GPU_PKGS that has tests
#   libgrefine_*.so        the native libraries from build/ (CUDA runtime linked statically)
#   verify.sh              the runner (from ../shared/gpu/ beside the repository)
#   COMMIT                 git rev-parse HEAD, with "-dirty" for a modified tree
#   verify-ort.sh, sdxl_unet_step.py, ort-gpu.sums, ort/<pkg>.test   the ONNX Runtime CUDA
#                          run (tools/gpu/; packages GRF_GPU_ORT_PKGS, default engine/ort
#                          internal/conformance)
# and, when the ONNX Runtime GPU build is installed (make setup-gpu; GRF_ORT_GPU_DIR, default
# .deps/ort-gpu), .gpu-ort/part-NN: its three libraries (libonnxruntime, providers_shared,
# providers_cuda) as one xz-compressed tar split into parts of at most GRF_GPU_PART_MIB
# (default 56) MiB, to carry one per device call; ort-gpu.sums pins every part, the
# archive and the libraries. GRF_GPU_ORT=0 skips them.
# On the GPU machine (no Go needed): bash .gpu/verify.sh [REPORT_DIR] (kernels, NVML) and
# bash .gpu/verify-ort.sh [REPORT_DIR] (ONNX Runtime CUDA).
# Add packages with GRF_GPU_PKGS="engine/cuda monitor engine/trt" (paths from the root).
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/env.sh

pkgs=${GRF_GPU_PKGS:-"engine/cuda monitor"}
# The ONNX Runtime CUDA run's binaries go to .gpu/ort/, which verify.sh does not run.
ort_pkgs=${GRF_GPU_ORT_PKGS:-"engine/ort internal/conformance"}
max_mib=${GRF_GPU_BUNDLE_MAX_MIB:-60}

GRF_REQUIRE_CUDA=1 bash tools/native.sh

rm -rf .gpu
mkdir -p .gpu
mkdir -p .gpu/ort
for pkg in $pkgs $ort_pkgs; do
  if ! ls "$pkg"/*_test.go >/dev/null 2>&1; then
    echo "gpu-bundle: $pkg has no tests, skipped"
    continue
  fi
  name=$(echo "$pkg" | tr '/' '_').test
  case " $ort_pkgs " in *" $pkg "*) name=ort/$name ;; esac
  echo "gpu-bundle: go test -c $pkg -> .gpu/$name"
  CGO_ENABLED=1 go test -c -trimpath -ldflags='-s -w' -o ".gpu/$name" "./$pkg"
done
shopt -s nullglob
libs=()
for f in build/libgrefine_*.so; do
  case $f in *_emu.so) ;; *) libs+=("$f") ;; esac # the emulators stay home: the GPU machine has the real thing
done
[ ${#libs[@]} -gt 0 ] || { echo "gpu-bundle: no native library in build/" >&2; exit 1; }
cp "${libs[@]}" .gpu/

verify=""
for v in "$GRF_ROOT/../shared/gpu/verify.sh" "$GRF_ROOT/shared/gpu/verify.sh"; do
  [ -f "$v" ] && { verify=$v; break; }
done
[ -n "$verify" ] || { echo "gpu-bundle: verify.sh not found in ../shared/gpu or shared/gpu" >&2; exit 1; }
cp "$verify" .gpu/verify.sh
chmod +x .gpu/verify.sh

cp tools/gpu/verify-ort.sh tools/gpu/sdxl_unet_step.py .gpu/
chmod +x .gpu/verify-ort.sh
if [ "${GRF_GPU_ORT:-1}" != 0 ]; then
  bash tools/gpu/pack-ort.sh "${GRF_ORT_GPU_DIR:-.deps/ort-gpu}" .gpu-ort .gpu/ort-gpu.sums "${GRF_GPU_PART_MIB:-56}"
fi

commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain 2>/dev/null)" ]; then commit="$commit-dirty"; fi
echo "$commit" >.gpu/COMMIT

# Load-time dependencies: the binaries must run where only the NVIDIA driver is installed.
status=0
for f in .gpu/*.test .gpu/ort/*.test .gpu/libgrefine_*.so; do
  extra=$(ldd "$f" 2>/dev/null | awk '{print $1}' |
    grep -Ev '^(linux-vdso\.so\.1|/lib64/ld-linux-x86-64\.so\.2|ld-linux-x86-64\.so\.2|libc\.so\.6|libdl\.so\.2|libpthread\.so\.0|libm\.so\.6|librt\.so\.1)$' || true)
  if [ -n "$extra" ]; then
    echo "gpu-bundle: $f needs more than libc at load time: $extra" >&2
    status=1
  fi
  glibc=$(objdump -T "$f" 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)
  echo "gpu-bundle: $(basename "$f"): $(stat -c %s "$f") bytes, needs ${glibc:-no versioned glibc}"
done
size=$(du -sm .gpu | cut -f1)
echo "gpu-bundle: .gpu is ${size} MiB (limit ${max_mib}), commit $commit"
[ "$size" -lt "$max_mib" ] || { echo "gpu-bundle: bundle too large" >&2; status=1; }
exit $status
