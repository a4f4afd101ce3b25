// Package assesscpu is the honest CPU benchmark of assess (issue 15): every iteration
// does the work of a first request, and the stages are timed apart.
//
// What it runs, on the model set named by $GRF_BENCH_MODELS (default: the tiny set, whose
// numbers only show that it works; the full-size random-weight ViT-B/16 of
// tools/bench-full.sh is what bench/RESULTS.md reports):
//
//   - BenchmarkAssess: assess of a 1024×1024 image with exactly the Python baseline's
//     prompt, the DESIGN example "Mr. Beans wearing sun glasses with blue doctor suit and
//     stripe tie" (4 nouns, 9 texts × 85 templates = 765 text rows), with the text-feature
//     cache off (Config.FeatureCache = 0), so no iteration is served from an earlier one.
//     Metrics: ms per stage (clip_image, clip_text, pq, aq, fuse, ...), from the report's
//     own timings, averaged over the iterations.
//   - BenchmarkAssessWarm: the same prompt again and again with the cache on (a repeated
//     prompt: the text stage is a cache hit).
//   - BenchmarkText/{longest,buckets,prefix}: the text stage alone (aq.TextEncoder over
//     the same 9 texts, cache off) three ways: all rows in one call cut after the longest
//     EOT (grefine before issue 15), rows sorted by length in length buckets (clip_text),
//     and buckets over clip_text_kv with the template prefixes cached. Metrics: positions
//     computed, engine calls, GFLOP (the matmul work of those positions) and GFLOP/s.
//
// $GRF_BENCH_THREADS sets the engines' intra-op threads (default: ONNX Runtime's, one per
// core); $GRF_BENCH_ORT="key=value,..." passes session settings to the text engines of
// BenchmarkText (engine/ort: graph_opt, mem_pattern, cpu_arena, session.*);
// $GRF_BENCH_CALLCOST sets aq.TextEncoder.CallCost for its buckets and prefix cases.
//
//	GRF_BENCH_MODELS=.cache/models/full go test ./bench/assesscpu -run '^$' -bench . -benchtime 3x
//
// tools/bench-assesscpu.sh runs this and both PyTorch baselines (tools/export/quality_ref.py
// --bench, straightforward and --fair) back to back and prints the ratios.
package assesscpu
