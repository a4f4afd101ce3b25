// common.cpp: errors, the forwarding logger, type conversions, versions, device queries,
// streams and device buffers.
#include "internal.h"

#include <NvInferVersion.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <new>

namespace grf {
namespace {

// The last error TensorRT logged on this thread since the current ABI call began.
thread_local std::string t_last_error;

int32_t abi_severity(nvinfer1::ILogger::Severity s) {
  switch (s) {
    case nvinfer1::ILogger::Severity::kINTERNAL_ERROR: return GRF_TRT_LOG_INTERNAL_ERROR;
    case nvinfer1::ILogger::Severity::kERROR: return GRF_TRT_LOG_ERROR;
    case nvinfer1::ILogger::Severity::kWARNING: return GRF_TRT_LOG_WARNING;
    case nvinfer1::ILogger::Severity::kINFO: return GRF_TRT_LOG_INFO;
    default: return GRF_TRT_LOG_VERBOSE;
  }
}

// ForwardLogger is the one ILogger of the process. TensorRT keeps the first logger it is
// given for global use, so it is allocated once and never destroyed.
class ForwardLogger final : public nvinfer1::ILogger {
 public:
  void log(Severity severity, nvinfer1::AsciiChar const* msg) noexcept override {
    int32_t sev = abi_severity(severity);
    if (sev <= GRF_TRT_LOG_ERROR && msg != nullptr) {
      try {
        t_last_error = msg;
      } catch (...) {
      }
    }
    forward(sev, msg);
  }

  void forward(int32_t sev, const char* msg) noexcept {
    grf_trt_log_fn fn = fn_.load();
    if (fn == nullptr || sev > max_.load()) return;
    fn(sev, msg != nullptr ? msg : "");
  }

  std::atomic<grf_trt_log_fn> fn_{nullptr};
  std::atomic<int32_t> max_{GRF_TRT_LOG_WARNING};
};

ForwardLogger& the_logger() {
  static ForwardLogger* l = new ForwardLogger();  // intentionally immortal
  return *l;
}

}  // namespace

void fail(int32_t status, const std::string& msg) { throw Error(status, msg); }

void trt_fail(const std::string& what, int32_t status) {
  if (t_last_error.empty()) throw Error(status, what + " (see the tensorrt log)");
  throw Error(status, what + ": " + t_last_error);
}

void check_cuda(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return;
  (void)cudaGetLastError();  // clear a non-sticky error so later calls start clean
  int32_t status = e == cudaErrorMemoryAllocation ? GRF_TRT_ERR_NOMEM : GRF_TRT_ERR_CUDA;
  fail(status, std::string(what) + ": " + cudaGetErrorName(e) + ": " + cudaGetErrorString(e));
}

DeviceScope::DeviceScope(int32_t device) {
  require_arg(device >= 0, "negative cuda device index");
  check_cuda(cudaGetDevice(&prev_), "cudaGetDevice");
  if (prev_ != device) {
    check_cuda(cudaSetDevice(device), ("cudaSetDevice(" + std::to_string(device) + ")").c_str());
    switched_ = true;
  }
}

DeviceScope::~DeviceScope() {
  if (switched_) (void)cudaSetDevice(prev_);
}

void require_arg(bool ok, const char* msg) {
  if (!ok) fail(GRF_TRT_ERR_INVALID, msg);
}

void write_err(char* err, size_t errlen, const char* msg) {
  if (err == nullptr || errlen == 0) return;
  std::snprintf(err, errlen, "%s", msg);
}

void begin_call() noexcept { t_last_error.clear(); }

nvinfer1::ILogger& logger() { return the_logger(); }

void log_message(int32_t severity, const std::string& msg) { the_logger().forward(severity, msg.c_str()); }

int32_t abi_dtype(nvinfer1::DataType t) {
  switch (t) {
    case nvinfer1::DataType::kFLOAT: return GRF_TRT_DTYPE_FLOAT32;
    case nvinfer1::DataType::kHALF: return GRF_TRT_DTYPE_FLOAT16;
    case nvinfer1::DataType::kINT32: return GRF_TRT_DTYPE_INT32;
    case nvinfer1::DataType::kINT64: return GRF_TRT_DTYPE_INT64;
    case nvinfer1::DataType::kUINT8: return GRF_TRT_DTYPE_UINT8;
    case nvinfer1::DataType::kBOOL: return GRF_TRT_DTYPE_BOOL;
    case nvinfer1::DataType::kBF16: return GRF_TRT_DTYPE_BFLOAT16;
    case nvinfer1::DataType::kINT8: return GRF_TRT_DTYPE_INT8;
    case nvinfer1::DataType::kFP8: return GRF_TRT_DTYPE_FP8;
    default: return GRF_TRT_DTYPE_OTHER;
  }
}

nvinfer1::Dims to_dims(int32_t nb_dims, const int64_t* dims, const char* what) {
  if (nb_dims < 0 || nb_dims > nvinfer1::Dims::MAX_DIMS || (nb_dims > 0 && dims == nullptr)) {
    fail(GRF_TRT_ERR_SHAPE, std::string(what) + ": rank " + std::to_string(nb_dims) + " is not in 0.." +
                                std::to_string(nvinfer1::Dims::MAX_DIMS));
  }
  nvinfer1::Dims d{};
  d.nbDims = nb_dims;
  for (int32_t i = 0; i < nb_dims; ++i) d.d[i] = dims[i];
  return d;
}

void from_dims(const nvinfer1::Dims& d, int32_t* nb_dims, int64_t* dims) {
  if (d.nbDims < 0 || d.nbDims > GRF_TRT_MAX_DIMS) fail(GRF_TRT_ERR_SHAPE, "tensorrt returned an invalid shape");
  *nb_dims = d.nbDims;
  for (int32_t i = 0; i < GRF_TRT_MAX_DIMS; ++i) dims[i] = i < d.nbDims ? d.d[i] : 0;
}

std::string dims_string(const nvinfer1::Dims& d) {
  std::string s = "[";
  for (int32_t i = 0; i < d.nbDims; ++i) {
    if (i > 0) s += ",";
    s += std::to_string(d.d[i]);
  }
  return s + "]";
}

std::string quote(const char* s) { return std::string("\"") + (s != nullptr ? s : "") + "\""; }

std::vector<char> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) fail(GRF_TRT_ERR_NOT_FOUND, "cannot open " + path + ": " + std::strerror(errno));
  std::streamsize n = in.tellg();
  if (n < 0) fail(GRF_TRT_ERR_NOT_FOUND, "cannot size " + path);
  std::vector<char> buf(static_cast<size_t>(n));
  in.seekg(0);
  if (n > 0 && !in.read(buf.data(), n)) fail(GRF_TRT_ERR_NOT_FOUND, "cannot read " + path);
  return buf;
}

void write_file_atomic(const std::string& path, const void* data, size_t size) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) fail(GRF_TRT_ERR_NOT_FOUND, "cannot create " + tmp + ": " + std::strerror(errno));
    out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
    out.flush();
    if (!out) fail(GRF_TRT_ERR_NOT_FOUND, "cannot write " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    std::remove(tmp.c_str());
    fail(GRF_TRT_ERR_NOT_FOUND, "cannot rename " + tmp + " to " + path + ": " + std::strerror(e));
  }
}

}  // namespace grf

struct grf_trt_buffer {
  int32_t device = 0;
  void* ptr = nullptr;
  int64_t bytes = 0;
};

using grf::guard;

extern "C" {

int32_t grf_trt_get_version(grf_trt_version_info* out, char* err, size_t errlen) {
  return guard(err, errlen, [&] {
    grf::require_arg(out != nullptr, "get_version: out is null");
    out->abi = GRF_TRT_ABI_VERSION;
    out->compiled_trt = NV_TENSORRT_MAJOR * 10000 + NV_TENSORRT_MINOR * 100 + NV_TENSORRT_PATCH;
    out->runtime_trt = getInferLibVersion();
    int v = 0;
    out->cuda_runtime = cudaRuntimeGetVersion(&v) == cudaSuccess ? v : 0;
  });
}

int32_t grf_trt_set_log_callback(grf_trt_log_fn fn, int32_t max_severity, char* err, size_t errlen) {
  return guard(err, errlen, [&] {
    grf::require_arg(max_severity >= GRF_TRT_LOG_INTERNAL_ERROR && max_severity <= GRF_TRT_LOG_VERBOSE,
                     "set_log_callback: max_severity is not a GRF_TRT_LOG_* value");
    auto& l = grf::the_logger();
    l.max_.store(max_severity);
    l.fn_.store(fn);
  });
}

int32_t grf_trt_get_device_info(int32_t device, grf_trt_device_info* out, char* err, size_t errlen) {
  return guard(err, errlen, [&] {
    grf::require_arg(out != nullptr, "get_device_info: out is null");
    *out = grf_trt_device_info{};
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver) {
      (void)cudaGetLastError();
      return;  // no usable GPU: count 0
    }
    grf::check_cuda(e, "cudaGetDeviceCount");
    out->count = count;
    if (count == 0) return;
    grf::require_arg(device >= 0 && device < count, "get_device_info: device index out of range");
    cudaDeviceProp prop{};
    grf::check_cuda(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
    out->cc_major = prop.major;
    out->cc_minor = prop.minor;
    out->total_mem = static_cast<int64_t>(prop.totalGlobalMem);
    out->emulated = 0;
    std::snprintf(out->name, sizeof out->name, "%s", prop.name);
  });
}

int32_t grf_trt_get_cuda_status(grf_trt_cuda_status* out, char* err, size_t errlen) {
  return guard(err, errlen, [&] {
    grf::require_arg(out != nullptr, "get_cuda_status: out is null");
    *out = grf_trt_cuda_status{};
    int v = 0;
    if (cudaDriverGetVersion(&v) == cudaSuccess) out->driver_version = v;
    v = 0;
    if (cudaRuntimeGetVersion(&v) == cudaSuccess) out->runtime_version = v;
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    (void)cudaGetLastError();
    out->error = static_cast<int32_t>(e);
    if (e == cudaSuccess) {
      out->device_count = count;
      return;
    }
    std::snprintf(out->error_name, sizeof out->error_name, "%s", cudaGetErrorName(e));
    std::snprintf(out->error_text, sizeof out->error_text, "%s", cudaGetErrorString(e));
  });
}

int32_t grf_trt_stream_create(int32_t device, void** stream, char* err, size_t errlen) {
  return guard(err, errlen, [&] {
    grf::require_arg(stream != nullptr, "stream_create: out is null");
    grf::DeviceScope on(device);
    cudaStream_t s = nullptr;
    grf::check_cuda(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
    *stream = s;
  });
}

int32_t grf_trt_stream_destroy(void* stream, char* err, size_t errlen) {
  return guard(err, errlen, [&] {
    if (stream == nullptr) return;
    grf::check_cuda(cudaStreamDestroy(static_cast<cudaStream_t>(stream)), "cudaStreamDestroy");
  });
}

int32_t grf_trt_stream_synchronize(void* stream, char* err, size_t errlen) {
  return guard(err, errlen, [&] {
    grf::check_cuda(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)), "cudaStreamSynchronize");
  });
}

int32_t grf_trt_buffer_create(int32_t device, int64_t bytes, grf_trt_buffer** out, char* err, size_t errlen) {
  return guard(err, errlen, [&] {
    grf::require_arg(out != nullptr, "buffer_create: out is null");
    grf::require_arg(bytes >= 0, "buffer_create: negative size");
    grf::DeviceScope on(device);
    auto* b = new grf_trt_buffer();
    b->device = device;
    if (bytes > 0) {
      cudaError_t e = cudaMalloc(&b->ptr, static_cast<size_t>(bytes));
      if (e != cudaSuccess) {
        delete b;
        grf::check_cuda(e, ("cudaMalloc(" + std::to_string(bytes) + " bytes)").c_str());
      }
    }
    b->bytes = bytes;
    *out = b;
  });
}

int32_t grf_trt_buffer_destroy(grf_trt_buffer* buf, char* err, size_t errlen) {
  return guard(err, errlen, [&] {
    if (buf == nullptr) return;
    grf::DeviceScope on(buf->device);
    void* p = buf->ptr;
    delete buf;
    if (p != nullptr) grf::check_cuda(cudaFree(p), "cudaFree");
  });
}

int32_t grf_trt_buffer_info(grf_trt_buffer* buf, void** ptr, int64_t* bytes, char* err, size_t errlen) {
  return guard(err, errlen, [&] {
    grf::require_arg(buf != nullptr && ptr != nullptr && bytes != nullptr, "buffer_info: null argument");
    *ptr = buf->ptr;
    *bytes = buf->bytes;
  });
}

namespace {
void check_range(const grf_trt_buffer* buf, int64_t offset, int64_t bytes, const void* host, const char* op) {
  grf::require_arg(buf != nullptr, op);
  if (offset < 0 || bytes < 0 || offset > buf->bytes || bytes > buf->bytes - offset) {
    grf::fail(GRF_TRT_ERR_INVALID, std::string(op) + ": range [" + std::to_string(offset) + ", +" +
                                       std::to_string(bytes) + ") outside a buffer of " +
                                       std::to_string(buf->bytes) + " bytes");
  }
  grf::require_arg(bytes == 0 || host != nullptr, op);
}
}  // namespace

int32_t grf_trt_buffer_upload(grf_trt_buffer* buf, int64_t offset, const void* src, int64_t bytes, void* stream,
                              char* err, size_t errlen) {
  return guard(err, errlen, [&] {
    check_range(buf, offset, bytes, src, "buffer_upload");
    if (bytes == 0) return;
    grf::DeviceScope on(buf->device);
    auto s = static_cast<cudaStream_t>(stream);
    grf::check_cuda(cudaMemcpyAsync(static_cast<char*>(buf->ptr) + offset, src, static_cast<size_t>(bytes),
                                    cudaMemcpyHostToDevice, s),
                    "cudaMemcpyAsync(host to device)");
    grf::check_cuda(cudaStreamSynchronize(s), "cudaStreamSynchronize");
  });
}

int32_t grf_trt_buffer_download(grf_trt_buffer* buf, int64_t offset, void* dst, int64_t bytes, void* stream,
                                char* err, size_t errlen) {
  return guard(err, errlen, [&] {
    check_range(buf, offset, bytes, dst, "buffer_download");
    if (bytes == 0) return;
    grf::DeviceScope on(buf->device);
    auto s = static_cast<cudaStream_t>(stream);
    grf::check_cuda(cudaMemcpyAsync(dst, static_cast<const char*>(buf->ptr) + offset, static_cast<size_t>(bytes),
                                    cudaMemcpyDeviceToHost, s),
                    "cudaMemcpyAsync(device to host)");
    grf::check_cuda(cudaStreamSynchronize(s), "cudaStreamSynchronize");
  });
}

}  // extern "C"
