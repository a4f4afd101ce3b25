// Package engine is grefine's runtime abstraction: the interfaces every inference backend
// and every compute device implements, plus the types they share.
//
// # Pieces
//
//   - A Backend opens an Engine from a model file (ONNX for the "ort" backend, a TensorRT
//     plan for "trt"). Backends are registered by name (Register, NewBackend, Backends) so
//     one binary carries all of them and each reports why it is unavailable instead of
//     failing to link.
//   - An Engine is one network. It describes its inputs and outputs (TensorDesc: name,
//     dtype, shape with -1 for dynamic dims) and Run checks every bound tensor against
//     those descriptors before any native code sees it (CheckInputs). RunInto writes into
//     caller-owned outputs (engines that have it: IntoRunner; others: Run and a device
//     copy), so a denoising loop binds its tensors once.
//   - A Device is where tensors live: it allocates them (Alloc; fresh memory is undefined,
//     NaN on the cpu device and the emulator), makes views (View) and Streams. Devices are
//     registered by name like backends (RegisterDevice, NewDevice, Devices): "cpu"
//     (engine/cpu: Go memory, the pure-Go reference of every kernel and the oracle of every
//     test), "cuda" (engine/cuda: libgrefine_cuda.so's kernels) and "cuda-emu" (the same Go
//     code over libgrefine_cuda_emu.so, a GPU whose memory the host cannot read). A
//     program links a device by importing its package; package pipeline imports none.
//   - A Stream is one slot's ordered queue on a device: copies between host and device
//     (Upload, Download), device copies (Copy, Copy2D: strided 2-D blocks), memsets (Zero),
//     Sync, and the non-network operations (Ops): the Pillow-exact image resize and the
//     planar conversions, resizes, pointwise maths, dilation, counting, the quality-map
//     fusion, the PQ softmax, the text-feature ensemble, the alignment map, prompt
//     emphasis, the inpainting input, CFG + scheduler step + blending, and the colour fix.
//     Each op's reference loop is stated by its cpu twin (engine/cpu) and by
//     cgo/include/grefine_cuda.h. Work may run asynchronously: only Download and Sync wait.
//     Counters count every host↔device copy (count and bytes, each way), device copy, host
//     sync and op launch, so a request can state what crossed.
//   - A Tensor is a dtype, a shape and storage on one device. HostTensor is the
//     host-memory implementation (the cpu device's, and what ort engines read and write).
//
// # Pairings
//
// Engines are opened on a device and read and write that device's tensors only
// (OpenOptions.Stream carries a slot's stream; trt engines enqueue on it). A tensor of
// another device is an ErrDevice error naming both devices (CheckDevice), never a silent
// copy. ort engines read host tensors: with a GPU device they are wrapped by OnDevice,
// which downloads their inputs and uploads their outputs on the slot's stream,
// explicitly and counted. trt engines read "cuda" tensors (a GPU's or the emulator's).
//
// # Errors
//
// Errors are wrapped sentinels (ErrShape, ErrDType, ErrDevice, ErrUnavailable, ...) so
// callers can test them with errors.Is; messages are lowercase and prefixed with the
// package name.
package engine
