#!/usr/bin/env bash
# make gpu-bundle: everything a GPU machine needs for grefine's first real-TensorRT run
# (tools/gpu/verify-gpu.sh; the plan of device calls: tools/gpu/README.md), sized for the
# device tool's per-call limit: 64 MiB per call INCLUDING the checkout's tracked tree.
#
#   .gpu/        verify-gpu.sh, SHA256SUMS (every file of the bundle), BUNDLE (sizes and the
#                call plan), COMMIT, py/ (tools/gpu/*.py, tools/export/*.py); under 1 MiB
#   .gpu-bin/    part-NN: bin.tar.xz (bin/grefine, the Go test binaries of
#                engine/trt/gputest and internal/testkit/conformance, libgrefine_trt.so,
#                libgrefine_cuda.so, libonnxruntime.so.1 (CPU: the ort/cpu reference); CUDA
#                runtime static, so they need only the driver), split 1 MiB short of a call
#   .gpu-trt/    part-NN: libnvinfer.so.10 + libnvonnxparser.so.10 as one xz tar, split
#   .gpu-ptx/    part-NN: libnvinfer_builder_resource_ptx.so.10.15.1 (only with GRF_GPU_PTX=1)
#   .gpu-py/     the wheels of tools/gpu/wheels.txt (hash-pinned), for steps c and d
#
# Needs `make setup-trt` (.deps/trt/lib and build/libgrefine_trt.so). The part size is computed
# from the tree: 64 MiB - the tracked (and untracked, unignored) files - GRF_GPU_MARGIN_MIB
# (default 3); every folder and part is checked against it. xz settings: GRF_GPU_XZ (default
# -9, multi-threaded: GRF_JOBS; GRF_GPU_XZ_BIN for bin.tar.xz, default -6); compressed archives
# are cached outside the clone (GRF_GPU_CACHE, default ~/.cache/grefine/gpu-bundle) by content
# hash, so TensorRT is compressed once per machine (about 20 CPU-minutes).
# Variables: GRF_GPU_TRT_DIR (default .deps/trt/lib), GRF_GPU_SHIM (default
# build/libgrefine_trt.so), GRF_GPU_PKGS (test packages), GRF_GPU_WHEELS=0 (no .gpu-py),
# GRF_GPU_PTX=1, GRF_GPU_CALL_MIB (64), GRF_GPU_OUT (the repository root: where the
# folders go), GRF_GPU_ORT=1 (also the older ONNX Runtime CUDA bundle: .gpu/ort, .gpu-ort,
# verify-ort.sh; see the README's GPU setup).
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/env.sh

die() { echo "gpu-bundle: $*" >&2; exit 1; }
dest=${GRF_GPU_OUT:-.}
trtdir=${GRF_GPU_TRT_DIR:-.deps/trt/lib}
shim=${GRF_GPU_SHIM:-build/libgrefine_trt.so}
pkgs=${GRF_GPU_PKGS:-"engine/trt/gputest internal/testkit/conformance"}
call_mib=${GRF_GPU_CALL_MIB:-64}
margin=${GRF_GPU_MARGIN_MIB:-3}
xzopt=${GRF_GPU_XZ:--9}
cache=${GRF_GPU_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/grefine/gpu-bundle}

# ---- the budget per call -----------------------------------------------------------------------
tree=$( { git ls-files -z; git ls-files -z -o --exclude-standard; } | xargs -0 -r stat -c %s 2>/dev/null | awk '{s+=$1} END {print s+0}')
tree_mib=$(( (tree + 1048575) / 1048576 ))
part_mib=$(( call_mib - tree_mib - margin ))
[ "$part_mib" -ge 8 ] || die "the tree is $tree_mib MiB: only $part_mib MiB per call would be left (limit $call_mib MiB, margin $margin MiB)"
echo "gpu-bundle: tree $tree bytes ($tree_mib MiB), $call_mib MiB per call, margin $margin MiB: $part_mib MiB per carried part"

# ---- cheap checks ------------------------------------------------------------------------------
for l in libnvinfer.so.10 libnvonnxparser.so.10; do
  [ -f "$trtdir/$l" ] || die "$trtdir/$l missing: run 'make setup-trt' (or set GRF_GPU_TRT_DIR)"
done
[ -f "$shim" ] || die "$shim missing: run 'make setup-trt' (or set GRF_GPU_SHIM)"
if [ "${GRF_GPU_PTX:-0}" = 1 ]; then
  ptxlib=$(ls "$trtdir"/libnvinfer_builder_resource_ptx.so.* 2>/dev/null | head -1)
  [ -n "$ptxlib" ] || die "GRF_GPU_PTX=1 but no libnvinfer_builder_resource_ptx.so.* in $trtdir"
fi

# ---- binaries ----------------------------------------------------------------------------------
GRF_REQUIRE_CUDA=${GRF_REQUIRE_CUDA:-1} bash tools/native.sh >/dev/null
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin"
for pkg in $pkgs; do
  name=$(echo "$pkg" | tr '/' '_').test
  echo "gpu-bundle: go test -c ./$pkg -> bin/$name"
  CGO_ENABLED=1 go test -c -trimpath -ldflags='-s -w' -o "$stage/bin/$name" "./$pkg"
done
echo "gpu-bundle: go build ./cmd/grefine -> bin/grefine"
CGO_ENABLED=1 go build -trimpath -ldflags='-s -w' -o "$stage/bin/grefine" ./cmd/grefine
cp "$shim" "$stage/bin/libgrefine_trt.so"
[ -f build/libgrefine_cuda.so ] && cp build/libgrefine_cuda.so "$stage/bin/"
# ONNX Runtime's CPU library: the conformance reference (ort/cpu) and --backend ort there.
ortlib=${GRF_GPU_ORT_LIB:-$ONNXRUNTIME_SHARED_LIBRARY_PATH}
[ -f "$ortlib" ] || die "$ortlib missing (the ONNX Runtime CPU library of make setup; GRF_GPU_ORT_LIB)"
cp "$ortlib" "$stage/bin/libonnxruntime.so.1"
# Load-time dependencies: glibc, libstdc++/libgcc, and for the shim libnvinfer/libnvonnxparser.
for f in "$stage"/bin/*; do
  extra=$(objdump -p "$f" 2>/dev/null | awk '/NEEDED/{print $2}' |
    grep -Ev '^(libc\.so\.6|libdl\.so\.2|libpthread\.so\.0|libm\.so\.6|librt\.so\.1|ld-linux-x86-64\.so\.2|libstdc\+\+\.so\.6|libgcc_s\.so\.1|libnvinfer\.so\.10|libnvonnxparser\.so\.10)$' || true)
  [ -z "$extra" ] || die "$(basename "$f") needs more than glibc/libstdc++/TensorRT at load time: $extra"
done

# xzcache NAME LEVEL SRCDIR FILES...: a cached xz tar of FILES (keyed by their hashes and the
# level) -> its path.
xzcache() {
  local name=$1 level=$2 src=$3; shift 3
  local key
  key=$( (cd "$src" && sha256sum "$@"; echo "$level") | sha256sum | cut -c1-16)
  local c=$cache/$name-$key.tar.xz
  if [ ! -f "$c" ]; then
    mkdir -p "$cache"
    echo "gpu-bundle: xz $level $name ($(cd "$src" && du -chL "$@" | tail -1 | cut -f1); cached in $c)" >&2
    tar -C "$src" --owner=0 --group=0 --numeric-owner --dereference -cf - "$@" | xz "$level" -T"${GRF_JOBS:-2}" >"$c.tmp"
    mv "$c.tmp" "$c"
  fi
  echo "$c"
}

# ---- .gpu ----------------------------------------------------------------------------------------
g=$dest/.gpu
rm -rf "$g" "$dest/.gpu-bin" "$dest/.gpu-trt" "$dest/.gpu-ptx" "$dest/.gpu-py" "$dest/.gpu-run"
mkdir -p "$g/py/export"
binlist=$(cd "$stage/bin" && ls)
# shellcheck disable=SC2086
binxz=$(xzcache bin "${GRF_GPU_XZ_BIN:--6}" "$stage/bin" $binlist)
cp tools/gpu/verify-gpu.sh "$g/"
chmod +x "$g/verify-gpu.sh"
cp tools/gpu/*.py "$g/py/"
cp tools/export/*.py "$g/py/export/"
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
[ -z "$(git status --porcelain 2>/dev/null)" ] || commit="$commit-dirty"
echo "$commit" >"$g/COMMIT"

# ---- .gpu-trt, .gpu-ptx: split archives ------------------------------------------------------------
split_set() { # split_set DIR ARCHIVE_NAME CACHED_XZ [PART_MIB]
  mkdir -p "$dest/$1"
  split -b "${4:-$part_mib}M" -d -a 2 "$3" "$dest/$1/part-"
  ln -f "$3" "$stage/$2" 2>/dev/null || cp "$3" "$stage/$2"
}
# The binaries' parts are 1 MiB short of a call, so that the first call carries .gpu (the
# scripts, well under 1 MiB) beside the first of them.
split_set .gpu-bin bin.tar.xz "$binxz" $((part_mib - 1))
trtxz=$(xzcache trt "$xzopt" "$trtdir" libnvinfer.so.10 libnvonnxparser.so.10)
split_set .gpu-trt trt.tar.xz "$trtxz"
if [ "${GRF_GPU_PTX:-0}" = 1 ]; then
  ptxxz=$(xzcache ptx "$xzopt" "$trtdir" "$(basename "$ptxlib")")
  split_set .gpu-ptx ptx.tar.xz "$ptxxz"
fi

# ---- .gpu-py ------------------------------------------------------------------------------------------
if [ "${GRF_GPU_WHEELS:-1}" != 0 ]; then
  wc=.cache/gpu-wheels
  mkdir -p "$wc"
  pip=${PIP:-python3 -m pip}
  # shellcheck disable=SC2086
  $pip download --quiet --no-deps --require-hashes --only-binary=:all: --python-version 3.12 \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$wc" -r tools/gpu/wheels.txt || die "pip could not download the wheels of tools/gpu/wheels.txt (GRF_GPU_WHEELS=0 skips them)"
  mkdir -p "$dest/.gpu-py"
  while read -r req _; do
    n=${req%%==*} v=${req#*==}
    f=$(ls "$wc"/*.whl | grep -i "/$(echo "$n" | tr '-' '_')-$v-" | head -1)
    [ -n "$f" ] || die "no wheel for $req in $wc"
    cp "$f" "$dest/.gpu-py/"
  done < <(grep -v '^#' tools/gpu/wheels.txt | grep .)
fi

# ---- SHA256SUMS: every file, the joined archives, the libraries ------------------------------------------
{
  echo "# grefine GPU bundle, commit $commit: sha256sum -c from the repository root"
  dirs=(.gpu .gpu-bin .gpu-trt)
  [ -d "$dest/.gpu-ptx" ] && dirs+=(.gpu-ptx)
  [ -d "$dest/.gpu-py" ] && dirs+=(.gpu-py)
  (cd "$dest" && find "${dirs[@]}" -type f ! -name SHA256SUMS ! -name BUNDLE | sort | xargs -r sha256sum)
  # What the GPU machine unpacks into .gpu-run/ (never carried):
  (cd "$stage" && sha256sum bin.tar.xz) | sed 's#  #  .gpu-run/#'
  (cd "$stage/bin" && sha256sum $binlist) | sed 's#  #  .gpu-run/bin/#'
  (cd "$stage" && sha256sum trt.tar.xz) | sed 's#  #  .gpu-run/#'
  (cd "$trtdir" && sha256sum libnvinfer.so.10 libnvonnxparser.so.10) | sed 's#  #  .gpu-run/trt/#'
  if [ "${GRF_GPU_PTX:-0}" = 1 ]; then
    (cd "$stage" && sha256sum ptx.tar.xz) | sed 's#  #  .gpu-run/#'
    (cd "$trtdir" && sha256sum "$(basename "$ptxlib")") | sed 's#  #  .gpu-run/ptx/#'
  fi
} >"$g/SHA256SUMS"

# ---- sizes, the limit, the call plan ---------------------------------------------------------------------
mib() { awk -v b="$1" 'BEGIN{printf "%.1f", b/1048576}'; }
bytes() { du -sb "$1" | cut -f1; }
status=0
check_fits() { # check_fits PATH
  local b
  b=$(bytes "$1")
  if [ $(( b + tree )) -gt $(( (call_mib - margin) * 1048576 )) ]; then
    echo "gpu-bundle: $1 is $(mib "$b") MiB: with the tree it exceeds $call_mib MiB - ${margin} MiB margin" >&2
    status=1
  fi
}
check_fits "$g"
[ -d "$dest/.gpu-py" ] && check_fits "$dest/.gpu-py"
for p in "$dest"/.gpu-bin/part-* "$dest"/.gpu-trt/part-* "$dest"/.gpu-ptx/part-*; do [ -f "$p" ] && check_fits "$p"; done
[ "$(bytes "$g")" -lt 1048576 ] || { echo "gpu-bundle: .gpu is $(mib "$(bytes "$g")") MiB: it must stay under 1 MiB (it shares the first call with .gpu-bin/part-00)" >&2; status=1; }

# The plan: .gpu first (every call's command runs its verify-gpu.sh), then first fit: each
# part goes into the first call with room, each call at most 8 paths and part_mib MiB (the
# tree travels too), so the small last parts share a call.
carry=(.gpu)
for p in "$dest"/.gpu-bin/part-* "$dest"/.gpu-trt/part-*; do carry+=("${p#"$dest"/}"); done
calls=() sizes=() counts=()
budget=$(( part_mib * 1048576 ))
for c in "${carry[@]}"; do
  b=$(bytes "$dest/$c") k=0
  while [ $k -lt ${#calls[@]} ] && { [ $(( sizes[k] + b )) -gt $budget ] || [ "${counts[k]}" -ge 8 ]; }; do k=$((k + 1)); done
  if [ $k = ${#calls[@]} ]; then calls+=("\"$c\"") sizes+=("$b") counts+=(1); else
    calls[k]="${calls[k]}, \"$c\"" sizes[k]=$(( sizes[k] + b )) counts[k]=$(( counts[k] + 1 )); fi
done
plan=()
for k in "${!calls[@]}"; do plan+=("${calls[k]}|${sizes[k]}"); done
{
  echo "commit $commit, built $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "tree: $tree bytes; per call: $call_mib MiB - $tree_mib MiB tree - $margin MiB margin = $part_mib MiB carried"
  echo "TensorRT: $(cat "$(dirname "$trtdir")/INSTALLED" 2>/dev/null | head -1 | sed 's/^# //')"
  echo "xz $xzopt: trt.tar.xz $(stat -c %s "$trtxz") bytes from $(cat "$trtdir/libnvinfer.so.10" "$trtdir/libnvonnxparser.so.10" | wc -c) bytes"
  [ "${GRF_GPU_PTX:-0}" = 1 ] && echo "optional PTX builder resource: ptx.tar.xz $(stat -c %s "$ptxxz") bytes in $(ls "$dest/.gpu-ptx" | wc -l) parts (.gpu-ptx/part-NN, one per call)"
  # shellcheck disable=SC2086
  echo "xz ${GRF_GPU_XZ_BIN:--6}: bin.tar.xz $(stat -c %s "$binxz") bytes from $(cd "$stage/bin" && cat $binlist | wc -c) bytes ($(echo $binlist))"
  echo "sizes: .gpu $(mib "$(bytes "$g")") MiB$([ -d "$dest/.gpu-py" ] && echo ", .gpu-py $(mib "$(bytes "$dest/.gpu-py")") MiB"), .gpu-bin $(ls "$dest/.gpu-bin" | wc -l) parts of <= $((part_mib - 1)) MiB, .gpu-trt $(ls "$dest/.gpu-trt" | wc -l) parts of <= $part_mib MiB"
  echo "device calls (carry; command), back to back:"
  i=1
  for p in "${plan[@]}"; do
    names=$(echo "${p%|*}" | tr -d '"' | tr -d ' ')
    run=""
    [ "$i" = "${#plan[@]}" ] && run=" && bash .gpu/verify-gpu.sh --steps a,b,e --out \$OUT (timeout 600 s)"
    echo "  $i. carry [${p%|*}] ($(mib "${p#*|}") MiB + tree); command: bash .gpu/verify-gpu.sh --stamp 'call-$i $names'$run"
    i=$((i + 1))
  done
  if [ -d "$dest/.gpu-py" ]; then
    echo "  $i. carry [\".gpu-py\"] ($(mib "$(bytes "$dest/.gpu-py")") MiB + tree); command: bash .gpu/verify-gpu.sh --stamp 'call-$i .gpu-py' && bash .gpu/verify-gpu.sh --steps c,d --out \$OUT (what is left)"
  fi
  echo "  (tools/gpu/README.md has the budget; a ptx request from the builder probe needs .gpu-ptx: GRF_GPU_PTX=1)"
} >"$g/BUNDLE"
cat "$g/BUNDLE"

if [ "${GRF_GPU_ORT:-0}" = 1 ]; then # the ONNX Runtime CUDA bundle of the README's GPU setup
  mkdir -p "$g/ort"
  for pkg in engine/ort internal/testkit/conformance; do
    CGO_ENABLED=1 go test -c -trimpath -ldflags='-s -w' -o "$g/ort/$(echo "$pkg" | tr '/' '_').test" "./$pkg"
  done
  cp build/libgrefine_cuda.so "$g/"
  cp tools/gpu/verify-ort.sh "$g/"
  for v in "$GRF_ROOT/../shared/gpu/verify.sh" "$GRF_ROOT/shared/gpu/verify.sh"; do [ -f "$v" ] && cp "$v" "$g/verify.sh" && break; done
  bash tools/gpu/pack-ort.sh "${GRF_ORT_GPU_DIR:-.deps/ort-gpu}" "$dest/.gpu-ort" "$g/ort-gpu.sums" "$part_mib"
fi
exit $status
