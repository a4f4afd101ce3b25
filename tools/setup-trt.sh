#!/usr/bin/env bash
# make setup-trt: install NVIDIA's TensorRT redistributable from Maven Central and build the
# TensorRT shim build/libgrefine_trt.so against it (not part of `make setup`: a 533 MB jar).
#
#   1. the jar org.bytedeco:tensorrt:10.15-1.5.13:jar:linux-x86_64-redist (TensorRT 10.15.1
#      for CUDA 13, pinned with every library's SHA-256 in tools/setuptrt/manifest.json) is
#      fetched with mvn into a Maven repository outside the clone (GRF_M2_REPO, default
#      ~/.cache/grefine/m2), so a second run downloads nothing;
#   2. its libraries are checked and extracted into .deps/trt/lib (GRF_TRT_DIR) by
#      tools/setuptrt (internal/wheel: hash-checked, nothing half-written);
#   3. the headers (never committed) come from TRT_INCLUDE (an include/ directory), else
#      from TRT_SRC (a NVIDIA/TensorRT checkout or git mirror holding tag v10.15), else
#      from a previous run's .deps/trt/include; their version must be the libraries';
#   4. CMake builds build/libgrefine_trt.so with TensorRT_ROOT=.deps/trt (tools/native.sh).
# A user with TensorRT installed sets TensorRT_ROOT to it instead: steps 1-3 are skipped.
# Every missing piece stops with one line saying what and what to do; cheap checks (CUDA
# toolkit, headers, mvn) run before the download. Idempotent: a second run re-hashes and
# rebuilds nothing that is up to date.
# Variables: TensorRT_ROOT, TRT_INCLUDE, TRT_SRC, GRF_TRT_DIR, GRF_M2_REPO, MVN (default mvn),
# GRF_NVCC (the CUDA compiler; default: found like tools/native.sh), GRF_TRT_MANIFEST (a
# manifest file instead of the embedded one) and GRF_TRT_SKIP_BUILD=1 (stop after step 3),
# both for tests.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/env.sh

die() { echo "setup-trt: $*" >&2; exit 1; }
mkdir -p build
go build -o build/setuptrt ./tools/setuptrt || die "cannot build tools/setuptrt (run 'make setup')"
tool=(build/setuptrt)
[ -n "${GRF_TRT_MANIFEST:-}" ] && tool+=(-manifest "$GRF_TRT_MANIFEST")

# --- cheap checks first ---------------------------------------------------------------------
if [ "${GRF_TRT_SKIP_BUILD:-0}" != 1 ]; then
  nvcc=${GRF_NVCC:-$(find_nvcc || true)}
  [ -n "$nvcc" ] && [ -x "$nvcc" ] ||
    die "no CUDA toolkit (nvcc${GRF_NVCC:+ at $GRF_NVCC}): the shim needs cuda_runtime_api.h and cudart_static; run 'make setup' (Debian's CUDA toolkit) or put a toolkit's bin/ on PATH"
  command -v cmake >/dev/null || die "cmake not found: apt-get install cmake"
fi

if [ -n "${TensorRT_ROOT:-}" ]; then
  root=$TensorRT_ROOT
  [ -f "$root/include/NvInfer.h" ] || die "TensorRT_ROOT=$root has no include/NvInfer.h (point it at a TensorRT installation with headers)"
  ls "$root"/lib*/libnvinfer.so* >/dev/null 2>&1 || die "TensorRT_ROOT=$root has no lib/libnvinfer.so"
  echo "setup-trt: using the TensorRT installation at $root (TensorRT_ROOT): nothing to fetch"
else
  root=${GRF_TRT_DIR:-.deps/trt}
  m2=${GRF_M2_REPO:-${XDG_CACHE_HOME:-$HOME/.cache}/grefine/m2}
  want=$("${tool[@]}" info tensorrt)
  tag=$("${tool[@]}" info tag)

  # Headers: where from, and the right version, before anything is downloaded.
  hdr_src="" hdr_kind=""
  if [ -n "${TRT_INCLUDE:-}" ]; then
    hdr_src=$TRT_INCLUDE hdr_kind=dir
  elif [ -n "${TRT_SRC:-}" ]; then
    if git -C "$TRT_SRC" rev-parse -q --verify "refs/tags/$tag" >/dev/null 2>&1; then
      hdr_src=$TRT_SRC hdr_kind=git
    elif [ -f "$TRT_SRC/include/NvInferVersion.h" ]; then
      hdr_src=$TRT_SRC/include hdr_kind=dir
    else
      die "TRT_SRC=$TRT_SRC is neither a git repository holding tag $tag nor a checkout with include/NvInferVersion.h"
    fi
  elif [ -f "$root/include/NvInferVersion.h" ]; then
    hdr_kind=kept
  else
    die "no TensorRT headers: set TRT_INCLUDE to the include/ of TensorRT $want, or TRT_SRC to a NVIDIA/TensorRT checkout with tag $tag (headers are never committed)"
  fi
  tmp=""
  trap '[ -n "$tmp" ] && rm -rf "$tmp"' EXIT
  if [ "$hdr_kind" != kept ]; then
    mkdir -p "$root"
    tmp=$(mktemp -d "$root/.include.tmp-XXXXXX")
    if [ "$hdr_kind" = git ]; then
      git -C "$hdr_src" archive "$tag" include | tar -x -C "$tmp" || die "git archive $tag include failed in $hdr_src"
      "${tool[@]}" headers "$tmp/include" >/dev/null || exit 1
    else
      "${tool[@]}" headers "$hdr_src" >/dev/null || exit 1
      cp -R "$hdr_src" "$tmp/include"
    fi
  else
    "${tool[@]}" headers "$root/include" >/dev/null || exit 1
  fi

  # The jar: only when some library is not installed with its pinned hash.
  need=$("${tool[@]}" -m2 "$m2" -out "$root" need)
  if [ -n "$need" ]; then
    mvn=${MVN:-mvn}
    command -v "$mvn" >/dev/null 2>&1 ||
      die "mvn not found${MVN:+ ($MVN)}: install Maven (apt-get install maven), or set TensorRT_ROOT to a TensorRT installation"
    echo "setup-trt: fetching $need with mvn into $m2 (533 MB)"
    mkdir -p "$m2"
    log=$(mktemp)
    if ! "$mvn" -B -q -Dmaven.repo.local="$m2" dependency:get -Dtransitive=false -Dartifact="$need" >"$log" 2>&1; then
      line=$(grep -m1 -E 'ERROR|Could not|Unknown host|Connection' "$log" | sed 's/^\[ERROR\] *//' | cut -c1-300 || true)
      rm -f "$log"
      die "mvn could not fetch $need (no network to Maven Central?): ${line:-mvn failed}"
    fi
    rm -f "$log"
  fi
  "${tool[@]}" -m2 "$m2" -out "$root" install

  if [ "$hdr_kind" != kept ]; then
    rm -rf "$root/include.old"
    [ -d "$root/include" ] && mv "$root/include" "$root/include.old"
    mv "$tmp/include" "$root/include"
    rm -rf "$root/include.old"
  fi
  echo "setup-trt: TensorRT $want libraries in $root/lib, headers ($hdr_kind${hdr_src:+: $hdr_src}) in $root/include"
fi

if [ "${GRF_TRT_SKIP_BUILD:-0}" = 1 ]; then
  echo "setup-trt: GRF_TRT_SKIP_BUILD=1: shim not built"
  exit 0
fi
root=$(cd "$root" && pwd)
TensorRT_ROOT=$root GRF_REQUIRE_CUDA=1 bash tools/native.sh
lib=build/libgrefine_trt.so
[ -f "$lib" ] || die "$lib was not built (see build/configure.log)"
echo "setup-trt: $lib ($(stat -c %s "$lib") bytes) built against $root; use it with --trt-lib $lib or GRF_TRT_LIB (grefine doctor shows what it finds)"
