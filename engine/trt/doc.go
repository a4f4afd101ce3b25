// Package trt is grefine's TensorRT backend ("trt"): it runs TensorRT plans on the GPU
// through libgrefine_trt.so, a small C++ shim (cgo/trt) with a plain C ABI
// (cgo/include/grefine_trt.h, ABI version 2). The shim is loaded with dlopen, so the Go
// binary builds and runs without TensorRT or CUDA; without them Available reports why.
//
// # Making a backend
//
//	b := trt.New(trt.Options{Lib: "build/libgrefine_trt.so", Device: 1, CUDAGraphs: true})
//	b, err := engine.NewBackend("trt", map[string]string{"lib": "...", "device": "1", "cuda_graphs": "true"})
//
// The registry's options are lib (the shim's path), device (the CUDA device index) and
// cuda_graphs (a boolean). The shim is found by engine/native: Options.Lib (--trt-lib),
// else $GRF_TRT_LIB, else libgrefine_trt.so beside the executable (or in ../build/), else
// the system loader; the error lists every place tried. A process loads one shim (a later
// Lib naming another file is an error naming both); its ABI version must match this
// package's. Available also requires a visible CUDA device; errors wrap
// engine.ErrUnavailable.
//
// The emulator, build/libgrefine_trt_emu.so (`make trt-emu`), implements the same ABI
// without a GPU or TensorRT, and behaves like TensorRT on a GPU: make the backend with
// lib=build/libgrefine_trt_emu.so. It takes its memory, streams and devices from cuda-emu
// (libgrefine_cuda_emu.so, linked from its own directory: the copy engine/cuda opens with
// LibPath build/libgrefine_cuda_emu.so, so one allocation table serves both), and reports
// the emulated GPU: DeviceName "cuda", Emulated, cuda-emu's name and compute capability,
// and Target.TensorRT EmulatorVersion, so its plans never pass for a real TensorRT's and
// vice versa. Its buffers are device memory the host cannot read; an enqueue checks every
// bound address (a live allocation of the context's device, large enough) and is queued on
// the slot's stream: ONNX Runtime runs the plan when the stream is synchronised (found
// through $GRF_TRT_EMU_ORT, else $ONNXRUNTIME_SHARED_LIBRARY_PATH, else the repository's
// .deps/ort). Its outputs equal the ort backend's (package emutest: within 1e-5, exactly in
// practice).
//
// # Devices
//
// Options.Device selects the GPU. The runtime, engines, contexts, streams, scratch and
// Buffers are created for it, and every shim call makes it current for that call only:
// nothing depends on the calling thread's current device, so goroutines may move between
// OS threads and one process may drive a backend per GPU (the pipeline's Config.GPUs makes
// one per GPU). A backend stays on its GPU: a slot bound to an engine.Device of another
// GPU (SlotOptions.Device's Info().Ordinal) is refused with engine.ErrDevice, and so is a
// tensor of another GPU at Session.Run (GPUTensor: engine/cuda's tensors and Buffer say
// their device), before anything is enqueued; an address of one GPU means nothing on
// another (the emulator refuses it too, at the enqueue).
//
// # Engines, slots and sessions
//
// Backend.Open loads a plan file (OpenPlan: plan bytes) into an Engine: the deserialized
// plan, its I/O (-1 marks dynamic dims) and, in Plan, its optimisation profiles and
// scratch sizes. An Engine runs through Sessions, one TensorRT execution context each.
//
// A Slot is what one request owns: a CUDA stream (its own, or a borrowed one:
// SlotOptions.Stream, e.g. engine/cuda's Stream.Handle, so kernels and engines share it),
// the engine.Device whose tensors its sessions read and write (SlotOptions.Device: Run
// allocates its outputs there; without one, Buffers), one scratch buffer (kUSER_MANAGED)
// shared by its sessions, and one Session per engine (Slot.Session). The sessions of a
// slot run one at a time; slots run concurrently. Backend.Slot(id) returns the slot with
// that id, created on first use; id 0 is the default slot that Engine.Run uses.
// Backend.SlotWith(id, opts) binds a slot to a stream and device on first use (and refuses
// another later). engine.OpenOptions carries the id (Slot) and the pipeline slot's device
// stream (Stream) through plans.Repo, whose OpenEngine returns a Session of a slot bound
// to that stream and device: a pipeline request's kernels and engines are ordered on one
// stream and its engines' outputs are its device's tensors.
//
// Session.Run checks the inputs (engine.CheckInputs against the backend's device), picks
// the first profile whose min..max covers every input shape (ErrNoProfile names the shapes
// and the profiles otherwise), binds the slot's scratch, shapes and addresses, allocates
// outputs on the slot's device (Slot.Alloc) and enqueues on the slot's stream. It does not wait: the outputs hold the
// results once the slot's stream is synchronised (Slot.Synchronize, or a copy on that
// stream, such as Buffer.Download). Streams the slot creates are non-blocking, so the
// legacy default stream does not wait for them either. Session.RunInto writes into
// caller-owned outputs, so a denoising loop that binds its tensors once allocates nothing
// per step (BufferAllocations counts every shim allocation).
//
// Inputs and outputs must be DeviceTensors of the backend's device ("cuda": a device
// address); engine/cuda's tensors are, and so is Buffer, the shim-allocated device memory
// this package offers (Backend.Upload, Backend.Alloc, Buffer.CopyFrom, Buffer.Download). A
// host tensor (*engine.HostTensor) is refused with engine.ErrDevice naming both devices,
// on every shim, real or emulated: TensorRT reads and writes device memory only, and no
// copy is made behind the caller's back.
//
// # CUDA graphs
//
// With Options.CUDAGraphs each enqueue goes through a CUDA graph: the shim captures one
// enqueue per state (profile, shapes, addresses, scratch) inside a single ABI call and
// replays it while the state holds (Session.Replays counts replays). RunInto with the same
// tensors keeps the state, so the UNet step is captured once per shape and replayed at
// every step: the pipeline's denoising loops bind the UNet's outputs once per stage and
// copy each step's timestep into one bound tensor on the device, so a stage captures its
// first step and replays the others (engine.Replayer; the refine report counts them). The
// emulator records capture and replay and queues the run like an enqueue.
//
// # Building plans
//
// BuildPlan turns an ONNX file into a serialized plan (profiles, precision, workspace,
// timing cache); InspectPlan describes plan bytes; Target names the GPU and TensorRT
// version plans are tied to. Package plans builds repositories of plans on these and maps
// a model set's engines onto them (plans.Open).
//
// # Logs, errors, lifetimes
//
// TensorRT's log goes to Options.Logger: errors and warnings at their level, TensorRT info
// at debug and verbose at trace (filtered in C by the logger's level). Shim failures are
// *NativeError values that unwrap to engine sentinels (ErrModel for bad plans, ErrShape,
// ErrBinding for unknown tensors, ErrRun for CUDA/TensorRT failures). Close is idempotent
// and nil-safe everywhere, and the order TensorRT needs is enforced: Engine.Close refuses
// (ErrOrder, nothing closed) while sessions other than its default one are open;
// Slot.Close closes its sessions, then its scratch and stream; Backend.Close closes the
// slots, then the engines, then the runtime. Use after Close returns engine.ErrClosed. C
// never keeps Go memory beyond a call (host-to-device copies take their source during the
// call).
//
// # Tests
//
// Package trttest compiles the fake shim (cgo/trt/fake: plain C, host memory reported as a
// GPU's, elementwise text plans) for this package's tests of the Go side's paths and
// errors; package emutest compiles the emulator and cuda-emu (tools/trt-emu.sh) and
// checks it against the ort backend with device tensors, host tensors refused, a run
// invisible until its stream syncs, engine/cuda's tensors and streams shared with slots,
// concurrent slots and allocation counts; gputest runs against a real shim on a GPU.
package trt
