// internal.h: helpers shared by the shim's translation units (not part of the C ABI and
// never included by Go). Everything here lives in namespace grf.
#pragma once

// The ABI functions are the only symbols the library exports (built with hidden visibility).
#pragma GCC visibility push(default)
#include "grefine_trt.h"
#pragma GCC visibility pop

#include <NvInfer.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <exception>
#include <string>
#include <vector>

namespace grf {

// Error is thrown inside the shim and turned into a status + message by guard().
struct Error : std::exception {
  int32_t status;
  std::string msg;
  Error(int32_t s, std::string m) : status(s), msg(std::move(m)) {}
  const char* what() const noexcept override { return msg.c_str(); }
};

// fail throws Error(status, msg).
[[noreturn]] void fail(int32_t status, const std::string& msg);
// trt_fail throws GRF_TRT_ERR_TRT (or `status`) for a TensorRT call that returned failure,
// adding the last error TensorRT logged on this thread during the current ABI call.
[[noreturn]] void trt_fail(const std::string& what, int32_t status = GRF_TRT_ERR_TRT);
// check_cuda throws GRF_TRT_ERR_CUDA (GRF_TRT_ERR_NOMEM for allocation failures) naming
// the call and the CUDA error.
void check_cuda(cudaError_t e, const char* what);
// require_arg throws GRF_TRT_ERR_INVALID with msg unless ok.
void require_arg(bool ok, const char* msg);

// DeviceScope makes `device` the calling thread's current CUDA device for its lifetime and
// restores the previous device afterwards, so no ABI call depends on or changes the
// thread's current device (goroutines move between OS threads).
class DeviceScope {
 public:
  explicit DeviceScope(int32_t device);
  ~DeviceScope();
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;

 private:
  int prev_ = -1;
  bool switched_ = false;
};

// write_err copies msg into err (truncating, always NUL-terminated when errlen > 0).
void write_err(char* err, size_t errlen, const char* msg);
// begin_call resets the per-thread record of TensorRT errors at the start of an ABI call.
void begin_call() noexcept;

// guard runs f and converts every exception into a status plus error text: nothing thrown
// inside the shim crosses the C boundary.
template <typename F>
int32_t guard(char* err, size_t errlen, F&& f) noexcept {
  begin_call();
  try {
    f();
    return GRF_TRT_OK;
  } catch (const Error& e) {
    write_err(err, errlen, e.msg.c_str());
    return e.status;
  } catch (const std::bad_alloc&) {
    write_err(err, errlen, "out of host memory");
    return GRF_TRT_ERR_NOMEM;
  } catch (const std::exception& e) {
    write_err(err, errlen, (std::string("internal error: ") + e.what()).c_str());
    return GRF_TRT_ERR_INTERNAL;
  } catch (...) {
    write_err(err, errlen, "internal error: unknown exception");
    return GRF_TRT_ERR_INTERNAL;
  }
}

// logger is the process-lifetime ILogger given to every runtime and builder; it forwards
// to the callback registered with grf_trt_set_log_callback.
nvinfer1::ILogger& logger();
// log_message sends a shim-originated message through the same callback.
void log_message(int32_t severity, const std::string& msg);

// abi_dtype maps a TensorRT DataType onto GRF_TRT_DTYPE_*.
int32_t abi_dtype(nvinfer1::DataType t);
// to_dims converts an ABI shape, rejecting ranks above Dims::MAX_DIMS.
nvinfer1::Dims to_dims(int32_t nb_dims, const int64_t* dims, const char* what);
// from_dims copies a TensorRT shape into ABI form (dims holds GRF_TRT_MAX_DIMS entries).
void from_dims(const nvinfer1::Dims& d, int32_t* nb_dims, int64_t* dims);
// dims_string formats a shape as [1,3,224,224].
std::string dims_string(const nvinfer1::Dims& d);
// quote formats a tensor name for messages.
std::string quote(const char* s);

// read_file returns the bytes of path (GRF_TRT_ERR_NOT_FOUND if it cannot be opened).
std::vector<char> read_file(const std::string& path);
// write_file_atomic writes data to path through a temporary file and a rename.
void write_file_atomic(const std::string& path, const void* data, size_t size);

}  // namespace grf
