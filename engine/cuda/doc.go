// Package cuda is grefine's GPU compute device: the kernels of cgo/kernels, built by
// CMake into libgrefine_cuda.so and loaded here with dlopen, so every Go binary builds
// and runs without CUDA and reports why the device is unavailable.
//
// # Opening
//
// Open(Options{}) loads the library once per process (the load error is cached) from
// Options.LibPath, else $GRF_CUDA_LIB, else the executable's directory (and ../build
// beside it), else the current directory (and its build/). It returns an error wrapping engine.ErrUnavailable that names the cause:
// library not found, no device (cudaErrorNoDevice, 100) or insufficient driver
// (cudaErrorInsufficientDriver, 35), with CUDA's own message. The library links the CUDA
// runtime statically and needs only the NVIDIA driver.
//
// # Memory and streams
//
// Tensor is device memory from plain cudaMalloc, freed by its idempotent, nil-safe Close
// (no finalizers). Its DevicePtr is what TensorRT binds (engine/trt's DeviceTensor), and
// Device.Alloc has engine/trt's Allocator signature (AllocTensor returns the concrete
// type); Stream.Handle is the cudaStream_t a TensorRT slot can enqueue on
// (trt.SlotOptions.Stream). Every ABI call passes the device index of its handle and
// makes it current in the same C call, so no call depends on the thread's current device. Device implements engine.Device: Upload and Download copy on the legacy
// default stream, which waits for the package's streams. A Stream is one request's CUDA
// stream; the ops enqueue kernels on it and return at once; Stream.Download, Sync and
// Close wait. A Stream also owns the grow-only scratch memory of FuseMaps.
//
// # Ops
//
// Each op has a pure-Go twin of the same name in engine/cpu, which states the reference
// loop and is the oracle of this package's tests:
//
//   - Stream.Resize (nearest, bilinear, bicubic; PyTorch align_corners=False);
//   - Stream.FuseMaps (quality-map fusion: score p, map P, image and latent masks, all
//     float32; masks are 0/1), one ABI call running four kernels back to back;
//   - Stream.BlendStep (CFG + linear scheduler step + masked latent blending, with two
//     optional history terms and an optional x0 output; out may alias x), vectorised
//     with float4 when every pointer is 16-byte aligned and h*w is a multiple of 4;
//   - Stream.InpaintInput (the 9-channel UNet input duplicated for CFG).
//
// Argument errors wrap engine.ErrShape or engine.ErrDType, CUDA failures engine.ErrRun,
// each with the launcher's message.
//
// # Tests
//
// Without a GPU the tests skip with the reason. With one they compare every op with its
// cpu twin on ragged shapes (batch 0..3, sizes not multiple of the block, 1×1), behind
// guard bands of sentinel values (aligned and misaligned views), under the tolerances
// stated in cuda_test.go; the benchmarks report GB/s next to BenchmarkCopyDtoD.
package cuda
