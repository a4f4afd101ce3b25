#!/usr/bin/env bash
# libgrefine's tests (run by `make test`): build the library and install it into
# build/prefix (tools/lib.sh) and bin/grefine (tools/build.sh); build tests/c and examples/
# against the installed CMake package, and assess.c once more with the pkg-config line of
# the README; run the C tests (ctest: header as C99 and C++17, static archive, every error
# path, 4 threads, cancel, 200 open/assess cycles with RSS); then check that each example
# writes the same report and image bytes as the CLI for the same inputs and seed.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/env.sh
for tool in cmake cc c++ pkg-config python3; do
  command -v "$tool" >/dev/null || { echo "test-lib: $tool is required (make setup installs it)" >&2; exit 1; }
done
jobs=${GRF_JOBS:-2}
prefix=$PWD/build/prefix
bash tools/lib.sh "$prefix"
bash tools/build.sh

cmake -S tests/c -B build/tests-c -DCMAKE_PREFIX_PATH="$prefix" >build/tests-c.log 2>&1 || { cat build/tests-c.log; exit 1; }
cmake --build build/tests-c --parallel "$jobs"
cmake -S examples -B build/examples -DCMAKE_PREFIX_PATH="$prefix" >build/examples.log 2>&1 || { cat build/examples.log; exit 1; }
cmake --build build/examples --parallel "$jobs"
# The README's build line.
cc -std=c99 -Wall -Wextra -pedantic -Werror examples/c/assess.c -o build/examples/assess-pc \
  $(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --cflags --libs grefine)

log=build/tests-c/ctest.log
if ! ctest --test-dir build/tests-c --output-on-failure --verbose >"$log" 2>&1; then cat "$log"; exit 1; fi
grep -E '^[0-9]+: (cycle|rss|cancel|header|test_)|tests passed' "$log"

# Examples vs the CLI: same image, prompt and seed; tiny model set.
tiny=testdata/models/tiny
img=testdata/images/sample.png
prompt="a red cat on a blue mat"
seed=7
out=build/examples/out
rm -rf "$out"
mkdir -p "$out"/cli-assess "$out"/c-assess "$out"/pc-assess "$out"/cli-refine "$out"/cpp-refine "$out"/py-refine
bin/grefine --models "$tiny" assess --image "$img" --prompt "$prompt" --save-maps --quiet --out "$out/cli-assess" >/dev/null
build/examples/assess "$tiny" "$img" "$prompt" "$out/c-assess" >/dev/null
build/examples/assess-pc "$tiny" "$img" "$prompt" "$out/pc-assess" >/dev/null
bin/grefine --models "$tiny" refine --image "$img" --prompt "$prompt" --seed $seed --steps1 2 --steps2 2 --quiet \
  --out "$out/cli-refine" >/dev/null
build/examples/refine "$tiny" "$img" "$prompt" "$out/cpp-refine" $seed 2 2 2>/dev/null >/dev/null
python3 examples/python/refine.py "$tiny" "$img" "$prompt" "$out/py-refine" $seed 2 2 2>/dev/null >/dev/null
cmp=tests/c/compare.py
for d in c-assess pc-assess; do
  python3 $cmp report "$out/cli-assess/report.json" "$out/$d/report.json"
  python3 $cmp maps "$out/cli-assess" "$out/$d"
done
for d in cpp-refine py-refine; do
  python3 $cmp report "$out/cli-refine/report.json" "$out/$d/report.json"
  python3 $cmp bytes "$out/cli-refine/refined.png" "$out/$d/refined.png"
done
echo "test-lib: ok"
