// Package engine is grefine's runtime abstraction: the interfaces every inference backend
// and every compute device implements, plus the types they share.
//
// # Pieces
//
//   - A Backend opens an Engine from a model file (ONNX for the "ort" backend, a TensorRT
//     plan for "trt"). Backends are registered by name (Register, NewBackend, Backends) so one binary
//     carries all of them and each reports why it is unavailable instead of failing to link.
//   - An Engine is one network. It describes its inputs and outputs (TensorDesc: name, dtype,
//     shape with -1 for dynamic dims) and Run checks every bound tensor against those
//     descriptors before any native code sees it (CheckInputs).
//   - A Device owns tensor memory (Upload, Download). The non-network operations (the
//     quality-map fusion, the denoising loops' blending) are declared by the packages that
//     use them (pipeline/assess.Fuser, pipeline/refine.Ops) and implemented by engine/cpu,
//     the pure-Go reference (test oracle) of every CUDA kernel, and engine/cuda. Their
//     shared parameter types live here (FuseParams, BlendCoeffs, BlendTensors, CopyStats).
//   - A Tensor is a dtype, a shape and storage on one device. HostTensor is the host-memory
//     implementation used by the cpu device and the ort backend.
//
// # Pairings
//
// ort engines run on the cpu device (host tensors); trt engines run on the cuda device
// (device tensors). A pipeline is built from one Backend and its matching Device.
//
// # Errors
//
// Errors are wrapped sentinels (ErrShape, ErrDType, ErrUnavailable, ...) so callers can
// test them with errors.Is; messages are lowercase and prefixed with the package name.
package engine
