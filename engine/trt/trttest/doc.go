// Package trttest builds the fake TensorRT shim (cgo/trt/fake) for tests, so engine/trt
// and the packages above it run their TensorRT code paths on machines without a GPU.
//
//	func TestMain(m *testing.M) { os.Exit(trttest.Main(m)) }
//	...
//	b := trt.New(trt.Options{Lib: trttest.Lib()})
//
// The fake treats "device" memory as host memory and plans as small text files (see the
// comment at the top of cgo/trt/fake/fake_trt.c). CountingAllocator counts the outputs a
// session allocates (no per-step allocation tests, here and in emutest).
package trttest
