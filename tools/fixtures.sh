#!/usr/bin/env bash
# Regenerates the tiny model set (testdata/models/tiny), the exporter's goldens (the files
# directly in testdata/goldens) and the sample image (testdata/images/sample.png) with the
# Python exporter, bit for bit. Goldens derived from these fixtures by other scripts
# (testdata/goldens/quality: tools/export/quality_ref.py; testdata/goldens/tiles:
# tools/export/tiles_ref.py) must be regenerated after a change here; they are left in place.
#
# The exporter runs twice into scratch directories; the sha256 of every file must agree
# between the two runs (determinism check) before anything in testdata/ is replaced. Then
# the exporter's own tests run against the new fixtures.
#
# Environment:
#   FIXTURES_GROUPS=clip,sdxl,pasd   which engine groups to export (default: all)
#   FIXTURES_ONCE=1                   skip the second run (no determinism check)
#   FIXTURES_CHECK=1                  do not replace testdata/: fail if it differs from a fresh
#                                     export (the staleness check, for CI with the venv)
#   PYTHON=...                        interpreter (default: .venv/bin/python, created if missing)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$GRF_ROOT"

PY=${PYTHON:-$GRF_ROOT/.venv/bin/python}
if [ ! -x "$PY" ]; then
  echo "fixtures: creating .venv (torch from PyPI pulls CUDA libraries: several GB)"
  python3 -m venv .venv
  .venv/bin/pip install --disable-pip-version-check -r tools/export/requirements.txt
  PY=$GRF_ROOT/.venv/bin/python
fi
"$PY" - <<'PYEOF'
import sys
from importlib.metadata import version, PackageNotFoundError
bad = []
for line in open("tools/export/requirements.txt"):
    line = line.split("#")[0].strip()
    if not line:
        continue
    name, want = line.split("==")
    try:
        got = version(name)
    except PackageNotFoundError:
        got = None
    if got != want:
        bad.append(f"{name} {got} (want {want})")
if bad:
    sys.exit("fixtures: the environment does not match tools/export/requirements.txt: " + ", ".join(bad)
             + "\nfixtures: run .venv/bin/pip install -r tools/export/requirements.txt")
PYEOF

# ATEN_CPU_CAPABILITY=avx2: PyTorch picks its CPU kernels by the instruction set; AVX-512
# kernels (Zen 4, recent Xeons) round differently from AVX2 ones by an ulp, which would make
# the goldens depend on the machine. Pinning AVX2 gives the same bytes on every x86-64 CPU
# with AVX2 (the committed goldens were made with AVX2 kernels).
export PYTHONHASHSEED=0 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 CUDA_VISIBLE_DEVICES="" ATEN_CPU_CAPABILITY=avx2
groups=${FIXTURES_GROUPS:-clip,sdxl,pasd}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/grefine-fixtures.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

run_export() {
  "$PY" tools/export/export.py --tiny --groups "$groups" \
    --out "$1/models/tiny" --goldens "$1/goldens" --images "$1/images"
}
hashes() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }

echo "fixtures: export run 1"
run_export "$tmp/a"
if [ "${FIXTURES_ONCE:-0}" != 1 ]; then
  echo "fixtures: export run 2 (determinism check)"
  run_export "$tmp/b" >/dev/null
  if ! diff <(hashes "$tmp/a") <(hashes "$tmp/b"); then
    echo "fixtures: FAIL: two runs of the exporter differ (see the sha256 lines above)" >&2
    exit 1
  fi
  echo "fixtures: two runs identical ($(hashes "$tmp/a" | wc -l) files)"
fi

if [ "${FIXTURES_CHECK:-0}" = 1 ]; then
  committed=$tmp/committed
  mkdir -p "$committed/models" "$committed/goldens" "$committed/images"
  cp -r testdata/models/tiny "$committed/models/tiny"
  find testdata/goldens -maxdepth 1 -type f -exec cp {} "$committed/goldens/" \;
  cp testdata/images/sample.png "$committed/images/"
  if ! diff <(hashes "$tmp/a") <(hashes "$committed"); then
    echo "fixtures: STALE: testdata/ differs from a fresh export (run: make fixtures)" >&2
    exit 1
  fi
  echo "fixtures: testdata/ is up to date"
  exit 0
fi

# Replace only what the exporter owns: testdata/models/tiny and the top-level files of
# testdata/goldens. Subdirectories of testdata/goldens (e.g. quality/, made by
# tools/export/quality_ref.py from these fixtures) belong to other generators and stay.
mkdir -p testdata/models testdata/images testdata/goldens
rm -rf testdata/models/tiny
cp -r "$tmp/a/models/tiny" testdata/models/tiny
find testdata/goldens -maxdepth 1 -type f -delete
cp "$tmp/a/goldens/"* testdata/goldens/
cp "$tmp/a/images/sample.png" testdata/images/sample.png
du -sh testdata/models/tiny testdata/goldens testdata/images/sample.png

echo "fixtures: exporter tests"
"$PY" -m unittest discover -s tools/export
