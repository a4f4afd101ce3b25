// Package trttest builds the fake TensorRT shim (cgo/trt/fake) for tests, so engine/trt
// and the packages above it run their TensorRT code paths on machines without a GPU.
//
//	func TestMain(m *testing.M) { os.Exit(trttest.Main(m)) }
//	...
//	b := trt.New(trt.Options{Lib: trttest.Lib()})
//
// The fake keeps "device" memory in host memory (reported as a GPU's: DeviceName "cuda")
// and plans as small text files, runs enqueues at once, and exists for the Go side's
// paths and error paths (see the comment at the top of cgo/trt/fake/fake_trt.c); the
// emulator (package emutest, on cuda-emu) is the one that behaves like a GPU. CountingAllocator counts the outputs a
// session allocates (no per-step allocation tests, here and in emutest).
package trttest
