// Package ort is grefine's embedded default backend: ONNX Runtime through
// github.com/yalue/onnxruntime_go, registered with the engine registry as "ort". It runs
// the networks on the CPU, or on an NVIDIA GPU through ONNX Runtime's CUDA execution
// provider (no TensorRT needed).
//
// # Library
//
// The ONNX Runtime C library is loaded at run time (dlopen), so the grefine binary builds
// and starts without it. The CPU backend's library is found by engine/native, in its one
// order: the "lib" option (--ort-lib), else the ONNXRUNTIME_SHARED_LIBRARY_PATH
// environment variable (tools/env.sh sets it to .deps/ort/, where `make setup` puts it),
// else beside the executable (libonnxruntime.so.1, .deps/ort/ and ../.deps/ort/ of its
// directory: bin/grefine in the repository), else the system loader. The library is
// initialised once per process; a failed request is cached with its error and reported as
// engine.ErrUnavailable with the reason (not found, with every place tried; too old: the
// library must offer C API version 24 or newer, i.e. ONNX Runtime 1.24+; `make setup`
// installs 1.30.0), and a later request for another library is an error naming both.
//
// # CUDA
//
// Options.Device "cuda" (registry option device=cuda) runs sessions on the CUDA execution
// provider. Its library is the GPU build from "lib", else $GRF_ORT_GPU_LIB (tools/env.sh
// sets it), else .deps/ort-gpu/libonnxruntime.so.1 beside the executable or its parent
// (`make setup-gpu`: onnxruntime-gpu 1.31.1, built for CUDA 13). If the process already runs a GPU build (ONNXRUNTIME_SHARED_LIBRARY_PATH
// pointing at it), cpu and cuda backends share it; a process that loaded the CPU-only
// build cannot add CUDA (one library per process) and says so. Before ONNX Runtime sees the
// provider, the CUDA 13 libraries it needs (cudart, cuBLAS/cuBLASLt, cuRAND, cuDNN 9; cuFFT
// and NVRTC if present) are loaded RTLD_GLOBAL from $GRF_ORT_CUDA_LIBS (colon-separated
// directories, e.g. a cu130 PyTorch's site-packages/nvidia/*/lib), then cuda/ beside the GPU
// library, then the system loader, and the driver and runtime are asked for a device.
// Available then names the first thing missing: the GPU library, the provider beside it,
// a CUDA library, the driver (libcuda.so.1), a driver too old for CUDA 13 (error 35), no
// device (error 100), or ONNX Runtime's own refusal; all wrap engine.ErrUnavailable.
//
// CUDAOptions maps onto the provider's options: device_id, user_compute_stream (a request
// slot's cudaStream_t; Backend.OpenOnStream sets it per engine), cudnn_conv_algo_search,
// arena_extend_strategy, gpu_mem_limit and use_tf32. An out-of-memory failure of ONNX Runtime's
// allocator or a CUDA library (IsOutOfMemory) is returned as engine.ErrOutOfMemory: that
// request fails, the engine stays usable.
//
// # Tensors and copies
//
// Engines take host tensors (engine.HostTensor, device "cpu"): float32, int32, int64 and
// uint8. Every input is checked against the model's own I/O descriptors before ONNX Runtime
// sees it. Outputs are allocated by ONNX Runtime and returned as host tensors that own
// their memory. With Options.Tensors set (for example an engine/cuda Device), inputs may
// also be that device's tensors and outputs are returned there.
//
// I/O binding onto device memory is not possible through onnxruntime_go v1.27, so device
// tensors are copied: its tensors are always created over Go memory with one process-wide
// CPU OrtMemoryInfo (no CreateTensorWithDataAsOrtValue over a CUDA pointer with a "Cuda"
// OrtMemoryInfo), IoBinding.BindInput/BindOutput accept only those values (the Value
// interface cannot be implemented outside that package), there is no BindOutputToDevice or
// SynchronizeBoundInputs/Outputs, GetBoundOutputValues copies outputs with a host memcpy
// (which would read a device pointer from the host), and the OrtEnv/OrtSession handles are
// unexported, so a C wrapper of our own cannot bind onto an onnxruntime_go session. Per run
// of a cuda engine with device I/O that costs, for each device input, a device-to-host
// copy here and ONNX Runtime's host-to-device copy, and for each output ONNX Runtime's
// device-to-host copy, a host copy inside onnxruntime_go and an upload here. Engine.Copies
// counts them (CopyStats). Removing them needs a small C wrapper that creates its own
// session (CreateEnv returns the process's ref-counted environment) and binds our
// pointers.
//
// Run is safe for concurrent use; cancelling the context terminates a run in flight
// (ONNX Runtime's RunOptions terminate flag).
//
// Session settings (engine.OpenOptions): Threads sets ONNX Runtime's intra-op threads
// (0: one per core). Session takes graph_opt (disable, basic, extended, all), mem_pattern
// and cpu_arena (0 or 1) and passes any "session.*" key to ONNX Runtime's session config
// (e.g. session.intra_op.allow_spinning); other keys are refused. Without settings ONNX
// Runtime's defaults apply (optimisation all, memory pattern and arena on); no other
// setting measured faster on the CLIP text encoder (bench/RESULTS.md, "Engine settings").
//
// Usage:
//
//	b, err := engine.NewBackend("ort", nil) // or {"device": "cuda", "gpu_mem_limit": "8589934592"}
//	e, err := b.Open("clip_text.onnx", engine.OpenOptions{Name: "clip_text"})
//	defer e.Close()
//	out, err := e.Run(ctx, map[string]engine.Tensor{"input_ids": ids})
package ort
