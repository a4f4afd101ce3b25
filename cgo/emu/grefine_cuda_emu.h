/*
 * grefine_cuda_emu.h: cuda-emu, the GPU emulator behind libgrefine_cuda_emu.so, and its
 * emulator-only entry points (prefix grf_emu_). Private to cgo/: the TensorRT emulator
 * (cgo/trt/fake with GRF_TRT_EMU) includes it; Go never does (Go sees the emulator through
 * the public ABI of cgo/include/grefine_cuda.h, like the real libgrefine_cuda.so).
 *
 * libgrefine_cuda_emu.so implements grefine_cuda.h (ABI 1) with plain C, no CUDA: CI has
 * no GPU, so the emulator must make every GPU-only mistake fail there. What a real GPU (or
 * TensorRT on it) refuses or does that a host-memory stand-in would hide, and what cuda-emu
 * does about each:
 *
 *   1. Device memory is not host memory: the host dereferencing a device pointer reads
 *      garbage or faults. cuda-emu hands out addresses of PROT_NONE pages, so a host read
 *      or write through them faults (SIGSEGV; Go's debug.SetPanicOnFault makes it a
 *      panic). The data lives at a private read-write alias that only the emulator
 *      touches, at the same offset (interior pointers translate).
 *   2. A host pointer handed to a kernel, a copy or TensorRT as device memory is an illegal
 *      address. Every argument must lie inside one live allocation: a host pointer, a
 *      range running past its allocation, a freed allocation (use after free), or memory
 *      of another device is an error naming the argument (synchronous, at the call; a GPU
 *      would fail later, at a sync, with cudaErrorIllegalAddress).
 *   3. cudaMalloc does not zero memory. Fresh allocations are filled with 0xFF bytes: NaN
 *      as float32, -1 as int32, so reading never-written memory shows.
 *   4. Kernels, device-to-device copies, memsets and TensorRT enqueues are asynchronous:
 *      their results exist only after the stream is synchronised. cuda-emu queues them per
 *      stream and runs them at grf_cuda_stream_sync of that stream, or when a call that
 *      the ABI says waits for the stream (the copies to and from host memory, stream
 *      destruction) runs on it. Work on another stream is not run, so a missing
 *      cross-stream sync reads stale (NaN-poisoned) data.
 *   5. The legacy default stream (NULL) synchronises with blocking streams (those of
 *      grf_cuda_stream_create): work on NULL waits for earlier work on every blocking
 *      stream of its device, and work on a blocking stream waits for earlier NULL work.
 *      Non-blocking streams (TensorRT's, grf_emu_stream_create with
 *      GRF_EMU_STREAM_NONBLOCKING) wait for neither. cuda-emu follows these rules exactly.
 *   6. cudaFree synchronises the device: grf_cuda_free first runs all queued work of the
 *      pointer's device. Freed address ranges are not handed out again soon (a quarantine
 *      of 4096 ranges), so use after free is reported as such.
 *   7. A copy from host memory may read its source only until the call returns: the
 *      host-to-device copy snapshots the source at call time.
 *   8. Memory is finite: each device has a budget (GRF_CUDA_EMU_MEMORY, default 4 GiB of
 *      address space, committed only as it is written); an allocation beyond it fails
 *      like cudaErrorMemoryAllocation ("out of memory").
 *   9. Pointers belong to a device: a pointer of device 0 used by work on device 1 is an
 *      error. GRF_CUDA_EMU_DEVICES (default 1, at most 8; 0 = no device) sets the number of
 *      emulated devices, each with its own memory, legacy stream and budget.
 *  10. Errors of asynchronous work surface at the next synchronisation of its stream.
 *  11. TensorRT (the emulator of cgo/trt) binds device addresses only: host tensors are
 *      refused by engine/trt before any call, and a host address that reaches the shim
 *      fails as in (2). Engine runs are queued on the context's stream like kernels and run
 *      with ONNX Runtime on the alias memory; destroying an engine or context synchronises
 *      the device first (it frees device memory).
 *
 * Where it is stricter than CUDA (fine: a test that passes here passes on a GPU for every
 * reason that does not depend on CUDA's numerics): kernel and copy arguments are checked
 * at the call; work on an explicit stream must use that stream's device; documented
 * no-overlap rules are checked; stream synchronisation of the legacy stream runs only the
 * work it depends on.
 *
 * Determinism: queued work runs in the order it was enqueued (one sequence per process),
 * each item once, by the thread whose synchronisation needs it first; the kernels are the
 * reference loops of grefine_cuda.h in float32 without contraction (-ffp-contract=off),
 * which equal engine/cpu's Go twins bit for bit.
 *
 * Environment (read once, at the first call): GRF_CUDA_EMU_DEVICES (0..8, default 1),
 * GRF_CUDA_EMU_MEMORY (bytes per device, suffixes K, M, G; default 4G),
 * GRF_CUDA_EMU_CC (compute capability reported, default "9.0").
 *
 * One process must load one copy of the library (one allocation table): the TensorRT
 * emulator links it by soname, so it shares the copy engine/cuda loaded. Two copies loaded
 * from different files make device_count fail, naming both.
 *
 * Conventions are grefine_cuda.h's: every call returns a GRF_CUDA_* status and writes a
 * lowercase message into err[errlen].
 */
#ifndef GREFINE_CUDA_EMU_H
#define GREFINE_CUDA_EMU_H

#include <stddef.h>
#include <stdint.h>

#include "grefine_cuda.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Version of the grf_emu_ entry points below. */
#define GRF_EMU_VERSION 1

/* Most devices cuda-emu emulates. */
#define GRF_EMU_MAX_DEVICES 8

/* grf_emu_stream_create flags. */
#define GRF_EMU_STREAM_BLOCKING 0    /* synchronises with the legacy stream (cudaStreamDefault) */
#define GRF_EMU_STREAM_NONBLOCKING 1 /* cudaStreamNonBlocking (TensorRT's streams) */

/* grf_emu_version returns GRF_EMU_VERSION. Its presence marks the library as the
 * emulator (engine/cuda's Info.Emulated). */
GRF_CUDA_API int grf_emu_version(void);

/* grf_emu_malloc allocates bytes on device dev (the calling thread's current device is
 * neither used nor changed). bytes 0 gives NULL. */
GRF_CUDA_API int grf_emu_malloc(int dev, void** ptr, size_t bytes, char* err, size_t errlen);

/* grf_emu_stream_create creates a stream on device dev with GRF_EMU_STREAM_* flags. */
GRF_CUDA_API int grf_emu_stream_create(int dev, int flags, grf_stream** stream, char* err, size_t errlen);

/* grf_emu_stream_device writes the device of a stream (NULL: the calling thread's current
 * device, whose legacy stream NULL means). */
GRF_CUDA_API int grf_emu_stream_device(grf_stream* stream, int* dev, char* err, size_t errlen);

/* grf_emu_device_sync runs all queued work of device dev (cudaDeviceSynchronize). It does
 * not report the streams' asynchronous errors (their next sync does). */
GRF_CUDA_API int grf_emu_device_sync(int dev, char* err, size_t errlen);

/* One device-memory argument of queued work. name, ptr and bytes are the caller's; alias
 * is filled by grf_emu_launch: the emulator's read-write view of [ptr, ptr+bytes) (NULL
 * when ptr is NULL and bytes is 0). */
typedef struct grf_emu_arg {
  const char* name;
  const void* ptr;
  size_t bytes;
  void* alias;
} grf_emu_arg;

/* The body of queued work: runs once, on some thread, when a synchronisation needs it.
 * user is the launch's copy of the caller's bytes; args hold the resolved aliases. A
 * non-zero status (a GRF_CUDA_* code) with a message in err becomes the stream's
 * asynchronous error. */
typedef int (*grf_emu_fn)(void* user, const grf_emu_arg* args, int nargs, char* err, size_t errlen);

/* grf_emu_launch queues work on stream (NULL: the legacy stream of dev, or of the calling
 * thread's current device when dev < 0). dev >= 0 must be the stream's device. Every arg
 * must lie inside one live allocation of that device (else the call fails, naming the
 * arg: not device memory, out of range, freed, or another device's); args with ptr NULL and
 * bytes 0 are allowed. user_bytes of user are copied with the work; release (may be NULL)
 * is called with that copy once the work has run (or was dropped). On failure nothing is
 * queued and release is not called. */
GRF_CUDA_API int grf_emu_launch(grf_stream* stream, int dev, const char* what, grf_emu_arg* args, int nargs,
                                grf_emu_fn run, const void* user, size_t user_bytes, void (*release)(void* user),
                                char* err, size_t errlen);

/* grf_emu_library_path writes the path this copy of the library was loaded from. */
GRF_CUDA_API int grf_emu_library_path(char* path, size_t pathlen, char* err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif /* GREFINE_CUDA_EMU_H */
