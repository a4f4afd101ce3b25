#!/usr/bin/env bash
# Installs Triton Inference Server and perf_analyzer from two pinned PyPI wheels into
# .deps/triton/ (idempotent: a second run only checks a stamp and takes well under a second):
#   nvidia-pytriton 0.7.0   the real tritonserver 2.51.0 binary and its libraries
#                           -> .deps/triton/pytriton/tritonserver/bin/tritonserver
#                              .deps/triton/nvidia_pytriton.libs/ (found through its RUNPATH)
#   tritonclient 2.41.0     perf_analyzer, Triton's load generator (newer wheels lack it)
#                           -> .deps/triton/bin/perf_analyzer
# perf_analyzer needs libb64.so.0d and libcudart.so.12: the pytriton wheel holds both
# (renamed by auditwheel), so .deps/triton/lib/ links them under those names; run
# perf_analyzer with LD_LIBRARY_PATH=.deps/triton/lib. No apt package, no GPU needed.
# Each wheel is checked against its SHA-256 before anything is extracted; extraction goes
# to a staging folder that replaces .deps/triton only when complete.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/env.sh

dest=.deps/triton
pytriton_whl=nvidia_pytriton-0.7.0-py3-none-manylinux_2_35_x86_64.whl
pytriton_sha=21f063ff93bb426d0c06b7a55e7eb9efcfe62c0dddd9a908e9877e18710128df
client_whl=tritonclient-2.41.0-py3-none-manylinux1_x86_64.whl
client_sha=cf4ed5df836fa99937678a9fd852f86ba05c7b83656dd0a540e20afdb9ab4629
want="$pytriton_sha $client_sha"

if [ "$(cat "$dest/.installed" 2>/dev/null)" = "$want" ] && [ -x "$dest/pytriton/tritonserver/bin/tritonserver" ] &&
  [ -x "$dest/bin/perf_analyzer" ]; then
  exit 0
fi

mkdir -p .deps
tmp=$(mktemp -d "$PWD/.deps/.triton-staging.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
dl=${GRF_WHEEL_DIR:-$tmp/wheels}
mkdir -p "$dl"
for spec in "nvidia-pytriton==0.7.0 $pytriton_whl $pytriton_sha" "tritonclient==2.41.0 $client_whl $client_sha"; do
  read -r req file sha <<<"$spec"
  if [ ! -f "$dl/$file" ] || [ "$(sha256sum "$dl/$file" | cut -d' ' -f1)" != "$sha" ]; then
    echo "triton-setup: downloading $req from PyPI"
    python3 -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
      --platform manylinux_2_35_x86_64 --python-version 3.11 -d "$dl" "$req"
  fi
  got=$(sha256sum "$dl/$file" | cut -d' ' -f1)
  if [ "$got" != "$sha" ]; then
    echo "triton-setup: $file has SHA-256 $got, want $sha: refusing to install it" >&2
    exit 1
  fi
done

out=$tmp/triton
mkdir -p "$out/bin" "$out/lib"
python3 - "$dl/$pytriton_whl" "$dl/$client_whl" "$out" <<'EOF'
import os, stat, sys, zipfile
pytriton, client, out = sys.argv[1:]
with zipfile.ZipFile(pytriton) as z:
    for n in z.namelist():
        if n.startswith("pytriton/tritonserver/bin/") or n.startswith("nvidia_pytriton.libs/"):
            if not n.endswith("/"):
                z.extract(n, out)
with zipfile.ZipFile(client) as z:
    data = z.read("tritonclient-2.41.0.data/data/bin/perf_analyzer")
    with open(os.path.join(out, "bin", "perf_analyzer"), "wb") as f:
        f.write(data)
for p in [os.path.join(out, "pytriton/tritonserver/bin/tritonserver"), os.path.join(out, "bin/perf_analyzer")]:
    os.chmod(p, os.stat(p).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
EOF
link() {
  local f
  f=$(cd "$out/nvidia_pytriton.libs" && ls $1)
  [ "$(echo "$f" | wc -l)" = 1 ] || { echo "triton-setup: expected one $1 in the pytriton wheel, found: $f" >&2; exit 1; }
  ln -s "../nvidia_pytriton.libs/$f" "$out/lib/$2"
}
link 'libb64-*.so.0d' libb64.so.0d
link 'libcudart-*.so.12*' libcudart.so.12
missing=$(ldd "$out/pytriton/tritonserver/bin/tritonserver" | grep 'not found' || true)
[ -z "$missing" ] || { echo "triton-setup: tritonserver cannot find libraries here: $missing" >&2; exit 1; }
LD_LIBRARY_PATH="$out/lib" "$out/bin/perf_analyzer" --version >/dev/null 2>&1 ||
  { echo "triton-setup: the extracted perf_analyzer does not run here (LD_LIBRARY_PATH=$out/lib)" >&2; exit 1; }
echo "$want" >"$out/.installed"
rm -rf "$dest"
mv "$out" "$dest"
echo "triton-setup: tritonserver 2.51.0 and perf_analyzer (tritonclient 2.41.0) in $dest"
