// Package conformance runs the same cases on every backend/device pair this machine has
// and compares each with the reference pair, ort/cpu (ONNX Runtime on the CPU), within a
// stated tolerance. It follows gonum's blas/testblas: one table of cases, many
// implementations.
//
// # Pairs
//
// DefaultPairs lists, in order:
//
//   - ort/cpu: the reference (engine/ort, CPU execution provider);
//   - ort/cpu-1t: the same library with one intra-op thread (a different reduction order:
//     the comparison CI always runs);
//   - ort/cuda: ONNX Runtime's CUDA execution provider with TF32 off (float32 maths);
//   - ort/cuda-tf32: the CUDA provider with its defaults (TF32 on Ampere and newer), under
//     the looser TF32 tolerance;
//   - ort/cuda-dev: ort/cuda fed with engine/cuda device tensors (libgrefine_cuda.so)
//     through engine.OnDevice, so the explicit copy path at the engine boundary runs too
//     (its copies are counted on the pair's stream: Env.Stream, Timing.Copies);
//   - ort/cuda-emu: ort/cpu fed with cuda-emu device tensors the same way (every CI run);
//   - trt/cuda: TensorRT through libgrefine_trt.so, a plan built per case for its shapes;
//   - trt/cuda-typed: the same, strongly typed (the ONNX file's precisions: fp16 exports
//     run in fp16; tolerance 5e-2), builder level $GRF_TRT_OPT_LEVEL; TestFullSizeUNetStep
//     uses it on the GPU machine (tools/gpu/verify-gpu.sh, step d);
//   - trt/emu: the same backend over the TensorRT emulator, build/libgrefine_trt_emu.so
//     ($GRF_TRT_EMU_LIB). A process loads one TensorRT shim, so run trt/cuda and trt/emu in
//     separate processes (GRF_CONFORMANCE_PAIRS).
//
// A pair that is missing here is skipped with its reason (the backend's Available error),
// printed in the test log. GRF_CONFORMANCE_PAIRS="ort/cpu,ort/cuda" limits the pairs; the
// reference always runs.
//
// # Cases
//
// A Case is a function of an Env (the pair's backend, how it opens an ONNX file, how
// tensors reach and leave its device) returning named float32 outputs; EngineCases builds
// one per engine of a model set with fixed pseudo-random inputs. Pipeline-level cases
// (assess, refine) fit the same table: a Case may drive a whole pipeline through
// Env.Backend. Each case states its tolerance: |got-ref| <= Abs + Rel·|ref| elementwise.
// Engine cases use 1e-4 + 1e-4·|ref| (float32 maths in another order); a pair may widen
// it (TF32 pairs: 1e-2 + 1e-2·|ref|).
//
// # Report
//
// Run logs one line per pair and case, "conformance: PAIR CASE: max abs E, max rel R over
// N values (tol A + B·|ref|)", or the skip reason; Summary returns the same as a Markdown
// table for the GPU report.
package conformance
