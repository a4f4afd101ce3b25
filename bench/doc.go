// Package bench holds grefine's end-to-end benchmarks (go test -bench) and their results
// (RESULTS.md; GPU reports under gpu/). Each benchmark states what it measures; results
// are recorded by hand with the machine and the command.
//
//	BenchmarkAssessTiny      assess of a 1024² image, 4-noun prompt, tiny model set
//	BenchmarkAssessFullCached  a repeated prompt on the full-size CLIP ViT-B/16 (random
//	                         weights): set GRF_BENCH_MODELS to a set exported without --tiny
//	                         (the honest cache-off benchmark is bench/assesscpu)
//	BenchmarkRefineTiny      the whole refiner (both stages) with the tiny set
//	BenchmarkRefineOverhead  a 1024² refine with engines that return zeros at once:
//	                         everything but the engine runs (the Go-side overhead)
//	BenchmarkParse           prompts per second of the syntax parser
//
// The straightforward PyTorch implementation of the same assess maths, for the speed
// comparison, is tools/export/quality_ref.py --bench.
package bench
