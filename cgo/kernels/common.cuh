// common.cuh: error handling shared by the grefine CUDA launchers (private to
// cgo/kernels; the public ABI is cgo/include/grefine_cuda.h).
#pragma once

#include <cuda_runtime.h>

#include <cstdarg>
#include <cstdio>
#include <exception>

#include "grefine_cuda.h"

namespace grf {

// fail writes a formatted, NUL-terminated message into err[errlen] and returns code.
inline int fail(char* err, size_t errlen, int code, const char* fmt, ...) {
  if (err != nullptr && errlen > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return code;
}

// cuda_fail converts a CUDA error into a status and message naming the failed step.
inline int cuda_fail(char* err, size_t errlen, const char* what, cudaError_t e) {
  int code = (e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver) ? GRF_CUDA_ERR_NO_DEVICE
                                                                           : GRF_CUDA_ERR_CUDA;
  return fail(err, errlen, code, "%s: %s (%s, %d)", what, cudaGetErrorString(e),
              cudaGetErrorName(e), static_cast<int>(e));
}

// check_launch reports a launch error (bad configuration, no device) of the kernel
// just enqueued.
inline int check_launch(char* err, size_t errlen, const char* kernel) {
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return cuda_fail(err, errlen, kernel, e);
  return GRF_CUDA_OK;
}

inline cudaStream_t as_cuda(grf_stream* s) { return reinterpret_cast<cudaStream_t>(s); }

// Grid dimension limits used by the launchers.
constexpr int kMaxGridYZ = 65535;
constexpr long long kMaxBlocks1D = 1LL << 20;

inline unsigned int blocks_1d(long long n, int threads) {
  long long b = (n + threads - 1) / threads;
  if (b > kMaxBlocks1D) b = kMaxBlocks1D;
  if (b < 1) b = 1;
  return static_cast<unsigned int>(b);
}

// block_min_max reduces every thread's lo and hi over the block (blockDim.x a power of
// two; s_lo and s_hi shared arrays of blockDim.x floats): each thread gets the block's min
// and max. A caller that reuses s_lo/s_hi afterwards syncs the block first.
__device__ inline void block_min_max(float* s_lo, float* s_hi, float& lo, float& hi) {
  s_lo[threadIdx.x] = lo;
  s_hi[threadIdx.x] = hi;
  __syncthreads();
  for (int w = blockDim.x / 2; w > 0; w /= 2) {
    if (threadIdx.x < w) {
      s_lo[threadIdx.x] = fminf(s_lo[threadIdx.x], s_lo[threadIdx.x + w]);
      s_hi[threadIdx.x] = fmaxf(s_hi[threadIdx.x], s_hi[threadIdx.x + w]);
    }
    __syncthreads();
  }
  lo = s_lo[0];
  hi = s_hi[0];
}

}  // namespace grf

// GRF_GUARD wraps a launcher body: no C++ exception crosses the C ABI.
#define GRF_GUARD_BEGIN try {
#define GRF_GUARD_END(err, errlen)                                                     \
  }                                                                                    \
  catch (const std::exception& ex) {                                                   \
    return grf::fail(err, errlen, GRF_CUDA_ERR_INTERNAL, "internal error: %s", ex.what()); \
  }                                                                                    \
  catch (...) {                                                                        \
    return grf::fail(err, errlen, GRF_CUDA_ERR_INTERNAL, "internal error");             \
  }

// GRF_CHECK returns from the enclosing launcher if a CUDA call fails.
#define GRF_CHECK(call, what)                                      \
  do {                                                             \
    cudaError_t grf_e_ = (call);                                   \
    if (grf_e_ != cudaSuccess) return grf::cuda_fail(err, errlen, what, grf_e_); \
  } while (0)
