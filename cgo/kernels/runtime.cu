// runtime.cu: device, memory and stream management of libgrefine_cuda.so.
#include <cstring>

#include "common.cuh"

extern "C" int grf_cuda_abi_version(void) { return GRF_CUDA_ABI_VERSION; }

extern "C" int grf_cuda_versions(int* runtime_version, int* driver_version, char* err,
                                 size_t errlen) {
  GRF_GUARD_BEGIN
  if (runtime_version == nullptr || driver_version == nullptr)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_cuda_versions: null output");
  *runtime_version = 0;
  *driver_version = 0;
  GRF_CHECK(cudaRuntimeGetVersion(runtime_version), "cudaRuntimeGetVersion");
  GRF_CHECK(cudaDriverGetVersion(driver_version), "cudaDriverGetVersion");
  return GRF_CUDA_OK;
  GRF_GUARD_END(err, errlen)
}

extern "C" int grf_cuda_device_count(int* count, int* cuda_error, char* err, size_t errlen) {
  GRF_GUARD_BEGIN
  if (count == nullptr || cuda_error == nullptr)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_cuda_device_count: null output");
  *count = 0;
  *cuda_error = 0;
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    *cuda_error = static_cast<int>(e);
    cudaGetLastError();  // reset the runtime's last-error state
    return grf::cuda_fail(err, errlen, "cudaGetDeviceCount", e);
  }
  *count = n;
  if (n == 0) {
    *cuda_error = static_cast<int>(cudaErrorNoDevice);
    return grf::fail(err, errlen, GRF_CUDA_ERR_NO_DEVICE, "cudaGetDeviceCount: 0 devices");
  }
  return GRF_CUDA_OK;
  GRF_GUARD_END(err, errlen)
}

extern "C" int grf_cuda_device_info(int dev, char* name, size_t namelen, int* major, int* minor,
                                    size_t* total_mem, int* sm_count, char* err, size_t errlen) {
  GRF_GUARD_BEGIN
  if (major == nullptr || minor == nullptr || total_mem == nullptr || sm_count == nullptr)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_cuda_device_info: null output");
  cudaDeviceProp prop;
  std::memset(&prop, 0, sizeof(prop));
  GRF_CHECK(cudaGetDeviceProperties(&prop, dev), "cudaGetDeviceProperties");
  if (name != nullptr && namelen > 0) {
    std::strncpy(name, prop.name, namelen - 1);
    name[namelen - 1] = '\0';
  }
  *major = prop.major;
  *minor = prop.minor;
  *total_mem = prop.totalGlobalMem;
  *sm_count = prop.multiProcessorCount;
  return GRF_CUDA_OK;
  GRF_GUARD_END(err, errlen)
}

extern "C" int grf_cuda_set_device(int dev, char* err, size_t errlen) {
  GRF_GUARD_BEGIN
  GRF_CHECK(cudaSetDevice(dev), "cudaSetDevice");
  return GRF_CUDA_OK;
  GRF_GUARD_END(err, errlen)
}

extern "C" int grf_cuda_malloc(void** ptr, size_t bytes, char* err, size_t errlen) {
  GRF_GUARD_BEGIN
  if (ptr == nullptr) return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_cuda_malloc: null output");
  *ptr = nullptr;
  if (bytes == 0) return GRF_CUDA_OK;
  GRF_CHECK(cudaMalloc(ptr, bytes), "cudaMalloc");
  return GRF_CUDA_OK;
  GRF_GUARD_END(err, errlen)
}

extern "C" int grf_cuda_free(void* ptr, char* err, size_t errlen) {
  GRF_GUARD_BEGIN
  if (ptr == nullptr) return GRF_CUDA_OK;
  GRF_CHECK(cudaFree(ptr), "cudaFree");
  return GRF_CUDA_OK;
  GRF_GUARD_END(err, errlen)
}

extern "C" int grf_cuda_stream_create(grf_stream** stream, char* err, size_t errlen) {
  GRF_GUARD_BEGIN
  if (stream == nullptr)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_cuda_stream_create: null output");
  *stream = nullptr;
  cudaStream_t s = nullptr;
  GRF_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamDefault), "cudaStreamCreateWithFlags");
  *stream = reinterpret_cast<grf_stream*>(s);
  return GRF_CUDA_OK;
  GRF_GUARD_END(err, errlen)
}

extern "C" int grf_cuda_stream_destroy(grf_stream* stream, char* err, size_t errlen) {
  GRF_GUARD_BEGIN
  if (stream == nullptr) return GRF_CUDA_OK;
  cudaError_t se = cudaStreamSynchronize(grf::as_cuda(stream));
  cudaError_t de = cudaStreamDestroy(grf::as_cuda(stream));
  if (se != cudaSuccess) return grf::cuda_fail(err, errlen, "cudaStreamSynchronize", se);
  if (de != cudaSuccess) return grf::cuda_fail(err, errlen, "cudaStreamDestroy", de);
  return GRF_CUDA_OK;
  GRF_GUARD_END(err, errlen)
}

extern "C" int grf_cuda_stream_sync(grf_stream* stream, char* err, size_t errlen) {
  GRF_GUARD_BEGIN
  GRF_CHECK(cudaStreamSynchronize(grf::as_cuda(stream)), "cudaStreamSynchronize");
  return GRF_CUDA_OK;
  GRF_GUARD_END(err, errlen)
}

static int copy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, grf_stream* stream,
                bool wait, const char* what, char* err, size_t errlen) {
  if (bytes == 0) return GRF_CUDA_OK;
  if (dst == nullptr || src == nullptr)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "%s: null pointer", what);
  GRF_CHECK(cudaMemcpyAsync(dst, src, bytes, kind, grf::as_cuda(stream)), "cudaMemcpyAsync");
  if (wait) GRF_CHECK(cudaStreamSynchronize(grf::as_cuda(stream)), "cudaStreamSynchronize");
  return GRF_CUDA_OK;
}

extern "C" int grf_cuda_memcpy_htod(void* dst, const void* src, size_t bytes, grf_stream* stream,
                                    char* err, size_t errlen) {
  GRF_GUARD_BEGIN
  // Pageable host memory is staged before cudaMemcpyAsync returns: src may be reused then,
  // and the host does not wait for the stream.
  return copy(dst, src, bytes, cudaMemcpyHostToDevice, stream, false, "grf_cuda_memcpy_htod", err,
              errlen);
  GRF_GUARD_END(err, errlen)
}

extern "C" int grf_cuda_memcpy_dtoh(void* dst, const void* src, size_t bytes, grf_stream* stream,
                                    char* err, size_t errlen) {
  GRF_GUARD_BEGIN
  return copy(dst, src, bytes, cudaMemcpyDeviceToHost, stream, true, "grf_cuda_memcpy_dtoh", err,
              errlen);
  GRF_GUARD_END(err, errlen)
}

extern "C" int grf_cuda_memcpy_dtod(void* dst, const void* src, size_t bytes, grf_stream* stream,
                                    char* err, size_t errlen) {
  GRF_GUARD_BEGIN
  return copy(dst, src, bytes, cudaMemcpyDeviceToDevice, stream, false, "grf_cuda_memcpy_dtod",
              err, errlen);
  GRF_GUARD_END(err, errlen)
}

extern "C" int grf_cuda_memcpy2d_dtod(void* dst, size_t dpitch, const void* src, size_t spitch,
                                      size_t width, size_t rows, grf_stream* stream, char* err,
                                      size_t errlen) {
  GRF_GUARD_BEGIN
  if (width == 0 || rows == 0) return GRF_CUDA_OK;
  if (dst == nullptr || src == nullptr)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_cuda_memcpy2d_dtod: null pointer");
  if (dpitch < width || spitch < width)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_cuda_memcpy2d_dtod: pitch below width");
  GRF_CHECK(cudaMemcpy2DAsync(dst, dpitch, src, spitch, width, rows, cudaMemcpyDeviceToDevice,
                              grf::as_cuda(stream)),
            "cudaMemcpy2DAsync");
  return GRF_CUDA_OK;
  GRF_GUARD_END(err, errlen)
}

extern "C" int grf_cuda_memset(void* ptr, int value, size_t bytes, grf_stream* stream, char* err,
                               size_t errlen) {
  GRF_GUARD_BEGIN
  if (bytes == 0) return GRF_CUDA_OK;
  if (ptr == nullptr) return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_cuda_memset: null pointer");
  GRF_CHECK(cudaMemsetAsync(ptr, value, bytes, grf::as_cuda(stream)), "cudaMemsetAsync");
  return GRF_CUDA_OK;
  GRF_GUARD_END(err, errlen)
}
