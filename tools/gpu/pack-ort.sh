#!/usr/bin/env bash
# pack-ort.sh SRC_DIR PARTS_DIR SUMS_FILE PART_MIB (called by tools/gpu-bundle.sh):
# packs the ONNX Runtime GPU build of SRC_DIR (libonnxruntime.so.1,
# libonnxruntime_providers_shared.so, libonnxruntime_providers_cuda.so) as ort-gpu.tar.xz,
# splits it into PARTS_DIR/part-NN of at most PART_MIB MiB and writes SUMS_FILE (SHA-256 of
# every part, the archive and each library, in sha256sum's format). The compression (xz -9,
# ~5 min on 2 cores) is cached in .cache/ort-gpu/, keyed by the libraries' hashes.
set -euo pipefail
src=$1 parts=$2 sums=$3 mib=$4
libs=(libonnxruntime.so.1 libonnxruntime_providers_shared.so libonnxruntime_providers_cuda.so)
for l in "${libs[@]}"; do
  [ -f "$src/$l" ] || { echo "pack-ort: $src/$l missing: no ONNX Runtime GPU build to bundle (make setup-gpu, or GRF_GPU_ORT=0)"; rm -rf "$parts"; rm -f "$sums"; exit 0; }
done
[ "$mib" -ge 1 ] && [ "$mib" -le 60 ] || { echo "pack-ort: part size $mib MiB must be 1..60" >&2; exit 1; }
libsums=$(cd "$src" && sha256sum "${libs[@]}")
key=$(echo "$libsums" | sha256sum | cut -c1-16)
cache=.cache/ort-gpu/$key.tar.xz
if [ ! -f "$cache" ]; then
  mkdir -p .cache/ort-gpu
  echo "pack-ort: compressing ${libs[*]} with xz -9 (a few minutes, cached in $cache)"
  tar -C "$src" --owner=0 --group=0 --numeric-owner -cf - "${libs[@]}" | xz -9 -T"${GRF_JOBS:-2}" >"$cache.tmp"
  mv "$cache.tmp" "$cache"
fi
rm -rf "$parts"
mkdir -p "$parts"
split -b "${mib}M" -d -a 2 "$cache" "$parts/part-"
{
  (cd "$parts" && sha256sum part-*)
  (cd "$(dirname "$cache")" && sha256sum "$(basename "$cache")") | sed "s/ $key.tar.xz\$/ ort-gpu.tar.xz/"
  echo "$libsums"
} >"$sums"
n=$(ls "$parts" | wc -l)
echo "pack-ort: $(stat -c %s "$cache") bytes of xz in $n parts of <= $mib MiB in $parts (libraries: $(du -sm "$src/${libs[2]}" | cut -f1) MiB provider + core)"
