// Package emutest builds the TensorRT emulator (libgrefine_trt_emu.so: the shim of
// cgo/trt/fake compiled with GRF_TRT_EMU on cuda-emu, running ONNX plans with ONNX
// Runtime) for tests, so the whole TensorRT code path of the Go side (plan building and
// verification, profile selection, bindings by device address, sessions per slot, work
// queued on streams, graph-capture calls, errors) runs in CI without a GPU, on emulated
// device memory the host cannot read:
//
//	func TestMain(m *testing.M) { os.Exit(emutest.Main(m)) }
//	...
//	b := trt.New(trt.Options{Lib: emutest.Lib()})
//	dev, err := cuda.Open(cuda.Options{LibPath: emutest.CUDALib()}) // the same cuda-emu
//
// Main builds the emulator and cuda-emu into a temporary directory with tools/trt-emu.sh
// (the command of `make trt-emu`; onnxruntime_c_api.h from the Go module cache). A process
// loads one shim, so packages that use the emulator do not also use trttest's fake, and
// one cuda-emu: tests that open engine/cuda pass CUDALib. The emulator finds ONNX Runtime
// through $GRF_TRT_EMU_ORT, $ONNXRUNTIME_SHARED_LIBRARY_PATH or the repository's
// .deps/ort; Main sets GRF_TRT_EMU_ORT to the library engine/ort uses, so both run the
// same ONNX Runtime.
//
// The package's own tests compare the emulator with the ort backend on the tiny model set
// (within 1e-5) with device tensors, refuse host tensors, show a run's output stale until
// its slot syncs, share engine/cuda's tensors and streams with slots, run two slots
// concurrently against serial runs, count allocations, and exercise CUDA-graph capture and
// close order.
package emutest
