// Package ort is grefine's embedded default backend: ONNX Runtime (CPU) through
// github.com/yalue/onnxruntime_go, registered with the engine registry as "ort".
//
// The ONNX Runtime C library is loaded at run time (dlopen), so the grefine binary builds
// and starts without it. Its path comes from the "lib" option, else the
// ONNXRUNTIME_SHARED_LIBRARY_PATH environment variable, else .deps/ort/libonnxruntime.so.1
// under the working directory or beside the executable (where `make setup` puts it).
// The library is initialised once per process; a failed initialisation is cached per path
// and reported as engine.ErrUnavailable with the reason (not found, too old: the library
// must offer C API version 24 or newer, i.e. ONNX Runtime 1.24+; `make setup` installs
// 1.30.0).
//
// Engines take host tensors (engine.HostTensor, device "cpu"): float32, int32 and int64.
// Every input is checked against the model's own I/O descriptors before ONNX Runtime sees
// it. Outputs are allocated by ONNX Runtime and returned as host tensors that own their
// memory. Run is safe for concurrent use; cancelling the context terminates a run in
// flight (ONNX Runtime's RunOptions terminate flag).
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
//	b, err := engine.NewBackend("ort", nil)
//	e, err := b.Open("clip_text.onnx", engine.OpenOptions{Name: "clip_text"})
//	defer e.Close()
//	out, err := e.Run(ctx, map[string]engine.Tensor{"input_ids": ids})
package ort
