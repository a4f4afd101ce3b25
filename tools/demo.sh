#!/usr/bin/env bash
# make demo: run G-Refine on the bundled sample with the tiny model set and write the result,
# the maps and the reports under demo-out/ (assess/ and refine/).
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/env.sh
out=${GRF_DEMO_OUT:-demo-out}
models=${GRF_MODELS:-testdata/models/tiny}
img=testdata/images/sample.png
prompt="Mr. Beans wearing sun glasses with blue doctor suit and stripe tie"
mkdir -p "$out"
echo "== grefine doctor"
bin/grefine --models "$models" doctor
echo
echo "== grefine assess (PQ-Map, AQ-Map, repair mask)"
bin/grefine --models "$models" --log-level warn assess --image "$img" --prompt "$prompt" --out "$out/assess"
echo
echo "== grefine refine (stage 1 SDXL-Inpainting under the mask, stage 2 PASD)"
bin/grefine --models "$models" --log-level warn refine --image "$img" --prompt "$prompt" --out "$out/refine" --save-maps --seed 1
echo
cat <<TXT
Outputs in $out/. NOTE: the bundled model set (testdata/models/tiny) has tiny random weights with
the real architectures: it exercises every code path but its scores, maps and refinements mean
nothing. For real results export the real models (tools/export/export.py without --tiny; see
README "Models") and pass --models DIR.
TXT
