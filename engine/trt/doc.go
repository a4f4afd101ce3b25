// Package trt is grefine's TensorRT backend ("trt"): it runs TensorRT plans on the GPU
// through libgrefine_trt.so, a small C++ shim (cgo/trt) with a plain C ABI
// (cgo/include/grefine_trt.h). The shim is loaded with dlopen, so the Go binary builds
// and runs without TensorRT or CUDA; without them Available reports why.
//
// # Loading
//
// The shim is found from Options.Lib (backend option "lib"), then $GRF_TRT_LIB, then
// libgrefine_trt.so next to the executable. A process loads one shim; its ABI version must
// match this package's. Available also requires a visible CUDA device; errors wrap
// engine.ErrUnavailable. Version reports the runtime TensorRT version and the one the shim
// was compiled against ("tensorrt 10.16.0 (shim built against 11.1.0)").
//
// # Engines
//
// Backend.Open loads a plan file (OpenPlan: plan bytes) and creates one execution context
// with user-managed scratch memory. Inputs and Outputs come from the plan (-1 marks
// dynamic dims); Plan adds the optimisation profiles (min/opt/max per input) and scratch
// sizes. Run checks the inputs (engine.CheckInputs, device "cuda"), picks the first
// profile whose min..max covers every input shape (ErrNoProfile names the shapes and the
// profiles otherwise), sets shapes and addresses, allocates outputs with the engine's
// Allocator and enqueues on the stream of the context (WithStream) or the backend's
// stream. Run does not wait: the caller synchronises once per image.
//
// Inputs must implement DeviceTensor (a device address); engine/cuda's tensors do, and so
// does Buffer, the shim-allocated device memory this package offers for standalone use
// (Backend.Upload, Backend.Alloc, Buffer.Download).
//
// All engines of a Backend share one scratch buffer sized to the largest need of the
// engines open (they run serially on one stream): Backend.ReserveScratch sizes it once all
// engines are open.
//
// # CUDA graphs
//
// With Options.CUDAGraphs (option "cuda_graphs"), each enqueue goes through a CUDA graph:
// the shim captures one enqueue per state (profile, shapes, addresses, scratch) inside a
// single ABI call and replays it while the state holds. Use RunInto with the same input
// and output tensors (SDXL's static 1024² profile) to keep the state; Run allocates new
// outputs, so it recaptures.
//
// # Building plans
//
// BuildPlan turns an ONNX file into a serialized plan (profiles, precision, workspace,
// timing cache); InspectPlan describes plan bytes; Target names the GPU and TensorRT
// version plans are tied to. Package plans builds on these.
//
// # Logs, errors, lifetimes
//
// TensorRT's log goes to Options.Logger: errors and warnings at their level, TensorRT info
// at debug and verbose at trace (filtered in C by the logger's level). Shim failures are
// *NativeError values that unwrap to engine sentinels (ErrModel for bad plans, ErrShape,
// ErrBinding for unknown tensors, ErrRun for CUDA/TensorRT failures). Close is idempotent
// and nil-safe everywhere; Backend.Close closes remaining engines (context, then engine)
// before the runtime; use after Close returns engine.ErrClosed. C never keeps Go memory
// beyond a call.
//
// # Tests
//
// Package trttest compiles a fake shim (cgo/trt/fake, plain C, no GPU) that implements the
// same ABI over host memory, so these tests run in CI. gputest runs against a real shim.
package trt
