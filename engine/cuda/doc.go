// Package cuda is grefine's GPU compute device: the kernels of cgo/kernels, built by
// CMake into libgrefine_cuda.so and loaded here with dlopen, so every Go binary builds
// and runs without CUDA and reports why the device is unavailable. The same package drives
// cuda-emu, the GPU emulator (libgrefine_cuda_emu.so, cgo/emu), which implements the same
// ABI in plain C for machines without a GPU.
//
// # Opening
//
// Open(Options{}) loads the library once per process through engine/native: from
// Options.LibPath, else $GRF_CUDA_LIB, else beside the executable (libgrefine_cuda.so, then
// ../build/libgrefine_cuda.so), else the system loader. The result is cached with its
// error, and a later LibPath naming another file is an error naming both (one process
// drives one kernel library). Open returns an error wrapping engine.ErrUnavailable that
// names the cause: the library not found (every place tried, with its reason), no device
// (cudaErrorNoDevice, 100) or insufficient driver (cudaErrorInsufficientDriver, 35), with
// CUDA's own message. The library links the CUDA runtime statically and needs only the
// NVIDIA driver.
//
// # The emulator
//
// cuda-emu is opened like the real library, by path (LibPath or $GRF_CUDA_LIB naming
// build/libgrefine_cuda_emu.so, `make cuda-emu`), or with Options.Emulator (which finds it
// through $GRF_CUDA_EMU_LIB or beside the executable). GPU().Emulated and its String say
// when the device is the emulator, and doctor prints it. It behaves like a GPU where a
// host-memory stand-in would hide a bug (the list is in cgo/emu/grefine_cuda_emu.h):
// device memory faults when the host touches it, fresh allocations are NaN, work queued
// on a stream is visible only after that stream's synchronisation (the legacy stream's
// rules included, and a free synchronises the device), every kernel and copy argument must
// lie inside one live allocation of the stream's device (host pointers, ranges past the
// end, freed memory and another device's memory are errors naming the argument), and
// memory is finite (GRF_CUDA_EMU_MEMORY; an allocation beyond it is
// engine.ErrOutOfMemory). GRF_CUDA_EMU_DEVICES sets the number of emulated devices. Its
// kernels are the reference loops of grefine_cuda.h and equal engine/cpu's Go twins bit
// for bit.
//
// # The device
//
// Device implements engine.Device and is registered twice (engine.NewDevice): "cuda" (the
// library the search order finds: the GPU's, or the emulator where $GRF_CUDA_LIB names
// it, as in CI) and "cuda-emu" (the emulator only: option lib, else $GRF_CUDA_LIB, else
// Options.Emulator's search). Options of both: lib, ordinal. Name is "cuda" for both (an
// emulated GPU's tensors take the path a GPU's take); Info says which (Kind, Emulated);
// GPU describes the device. Count says how many devices the library sees (the indices
// Options.Ordinal and the pipeline's --gpus take); an ordinal past them is an error
// ("device 2 requested, 2 present"). One Device per GPU: its tensors and streams belong
// to it, and using them with another Device (another GPU, or another Device value for the
// same GPU) is engine.ErrDevice naming both ordinals; a Tensor's Device method gives its
// GPU (trt.GPUTensor).
//
// # Memory and streams
//
// Tensor is device memory from plain cudaMalloc, freed by its idempotent, nil-safe Close
// (no finalizers); Device.View makes views that own nothing. Its DevicePtr is what
// TensorRT binds (engine/trt's DeviceTensor), and a trt slot with SlotOptions.Device set
// to this device allocates its sessions' outputs here. Every ABI call passes the device
// index of its handle and makes it current in the same C call, so no call depends on the
// thread's current device.
//
// A Stream (engine.Stream) is one slot's CUDA stream; Stream.Handle is the cudaStream_t a
// TensorRT slot enqueues on (trt.SlotOptions.Stream), so kernels and engines of a request
// are ordered on one stream. Uploads (ABI 2: queued, the host source read before the call
// returns), device copies, memsets and the ops enqueue and return at once; Download and
// Sync wait, and are the stream's only host syncs. Counters count them. A Stream owns one
// grow-only scratch buffer the kernels share (their work is ordered on the stream; an
// outgrown buffer is freed at Close, since a free would synchronise the device). Tensors
// of another device, another GPU or the host are refused naming both devices.
//
// # Ops
//
// Stream implements engine.Ops: each op checks its tensors like its cpu twin of the same
// name (engine/cpu, which states the reference loop and is the oracle of this package's
// tests), fills the launcher's parameter struct and enqueues it:
//
//   - ResizeImage (grf_resize_rgb8, Pillow-exact), ToPlanar and FromPlanar (grf_to_planar,
//     grf_from_planar), Paste (grf_paste_rgb8);
//   - Resize (nearest, bilinear, bicubic; PyTorch align_corners=False), Dilate,
//     Pointwise, CountAtLeast;
//   - FuseMaps (quality-map fusion: score p, map P, image and latent masks, all float32;
//     masks are 0/1), one ABI call running four kernels back to back;
//   - GoodProbs (the PQ softmax), ScatterRows and Ensemble (text features), TextMaps (the
//     alignment map);
//   - Emphasis (its weights are read during the call), InpaintInput (the 9-channel UNet
//     input duplicated for CFG), BlendStep (CFG + linear scheduler step + masked latent
//     blending, with two optional history terms and an optional x0 output; out may alias
//     x; vectorised with float4 when every pointer is 16-byte aligned and h*w is a
//     multiple of 4), ColorFix (PASD's wavelet colour fix).
//
// Argument errors wrap engine.ErrShape or engine.ErrDType, CUDA failures engine.ErrRun
// (cudaErrorMemoryAllocation: engine.ErrOutOfMemory), each with the launcher's message.
//
// # Tests
//
// The tests run on the library $GRF_CUDA_TEST_LIB names; else, with a GPU visible, on the
// real libgrefine_cuda.so (the GPU machine's run, .gpu/verify.sh); else on cuda-emu, which
// TestMain builds into a temporary directory (package cudaemu) with two emulated devices.
// They compare every op with its cpu twin on ragged shapes (batch 0..3, sizes not multiple
// of the block, 1×1, empty), behind guard bands of sentinel values (aligned and misaligned
// views; every dtype): on a GPU under the tolerances stated in cuda_test.go and
// ops2_test.go, on cuda-emu bit for bit (GoodProbs within 1e-6: libm's exp and Go's).
// The emulator's own tests (emu_test.go) show each GPU behaviour above failing where a
// host-memory stand-in would pass: a host read of device memory faults (a Go panic with
// debug.SetPanicOnFault, and a C program killed by SIGSEGV), a missing stream sync reads
// the stale NaN poison, pointer errors are named. The benchmarks report GB/s next to
// BenchmarkCopyDtoD.
package cuda
