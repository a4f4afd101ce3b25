// Package emutest builds the TensorRT emulator (libgrefine_trt_emu.so: the host-memory
// shim of cgo/trt/fake compiled with GRF_TRT_EMU, running ONNX plans with ONNX Runtime)
// for tests, so the whole TensorRT code path of the Go side (plan building and
// verification, profile selection, bindings by address, sessions per slot, graph-capture
// calls, errors) runs in CI without a GPU:
//
//	func TestMain(m *testing.M) { os.Exit(emutest.Main(m)) }
//	...
//	b := trt.New(trt.Options{Lib: emutest.Lib()})
//
// Main compiles the emulator into a temporary directory (the same command as `make
// trt-emu`, with onnxruntime_c_api.h from the Go module cache). A process loads one shim,
// so packages that use the emulator do not also use trttest's fake. The emulator finds
// ONNX Runtime through $GRF_TRT_EMU_ORT, $ONNXRUNTIME_SHARED_LIBRARY_PATH or the
// repository's .deps/ort; Main sets GRF_TRT_EMU_ORT to the library engine/ort uses, so
// both run the same ONNX Runtime.
//
// The package's own tests compare the emulator with the ort backend on the tiny model set
// (within 1e-5), run two slots concurrently against serial runs, count allocations, and
// exercise CUDA-graph capture and close order.
package emutest
