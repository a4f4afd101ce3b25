// loader.c: binds libgrefine_trt.so (dlopen'd by engine/native) and forwards grf_trtl_*
// calls to its grf_trt_* functions (see cgo/include/grefine_trt_loader.h). It holds no
// logic beyond that.
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "grefine_trt_loader.h"
#include "_cgo_export.h"

// Every symbol of the ABI, resolved together.
#define GRF_TRT_SYMBOLS(X) \
  X(get_version) X(set_log_callback) X(get_device_info) X(stream_create) X(stream_destroy) \
  X(stream_synchronize) X(buffer_create) X(buffer_destroy) X(buffer_info) X(buffer_upload) \
  X(buffer_download) X(runtime_create) X(runtime_destroy) X(engine_deserialize) X(engine_load_file) \
  X(engine_destroy) X(engine_num_io) X(engine_io_info) X(engine_num_profiles) X(engine_profile_shape) \
  X(engine_device_memory_size) X(context_create) X(context_destroy) X(context_set_device_memory) \
  X(context_set_profile) X(context_set_input_shape) X(context_set_tensor_address) X(context_tensor_shape) \
  X(context_enqueue) X(context_enqueue_graph) X(builder_create) X(builder_destroy) X(builder_add_profile) \
  X(builder_set_profile_shape) X(builder_set_precision) X(builder_set_strongly_typed) X(builder_set_workspace) \
  X(builder_set_optimization_level) X(builder_set_timing_cache) X(builder_build) X(blob_data) X(blob_destroy)

#define GRF_PTR(n) __typeof__(&grf_trt_##n) n;
static struct {
  GRF_TRT_SYMBOLS(GRF_PTR)
} api;
#undef GRF_PTR

// Optional symbols, added to the ABI after its version 2: a shim without them still loads.
static __typeof__(&grf_trt_get_cuda_status) opt_get_cuda_status;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static void *handle;
static char loaded_path[4096];
static int ready;  // api fully resolved (read after open under mu; written once)

static int32_t put(char *err, size_t errlen, int32_t status, const char *msg) {
  if (err != NULL && errlen > 0) snprintf(err, errlen, "%s", msg);
  return status;
}

int32_t grf_trtl_bind(void *h, const char *path, char *err, size_t errlen) {
  char msg[GRF_TRT_ERRLEN];
  int32_t st = GRF_TRT_OK;
  pthread_mutex_lock(&mu);
  if (__atomic_load_n(&ready, __ATOMIC_ACQUIRE)) {
    snprintf(msg, sizeof msg, "%s is already loaded; one process loads one shim, cannot also load %s", loaded_path,
             path);
    st = put(err, errlen, GRF_TRT_ERR_INVALID, msg);
    pthread_mutex_unlock(&mu);
    return st;
  }
#define GRF_RESOLVE(n) \
  if (st == GRF_TRT_OK) { \
    *(void **)(&api.n) = dlsym(h, "grf_trt_" #n); \
    if (api.n == NULL) { \
      snprintf(msg, sizeof msg, "%s lacks symbol grf_trt_%s (built from another grefine version?)", path, #n); \
      st = put(err, errlen, GRF_TRT_ERR_UNSUPPORTED, msg); \
    } \
  }
  GRF_TRT_SYMBOLS(GRF_RESOLVE)
#undef GRF_RESOLVE
  if (st != GRF_TRT_OK) {
    memset(&api, 0, sizeof api);
  } else {
    handle = h;
    *(void **)(&opt_get_cuda_status) = dlsym(h, "grf_trt_get_cuda_status");
    snprintf(loaded_path, sizeof loaded_path, "%s", path);
    __atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
  }
  pthread_mutex_unlock(&mu);
  return st;
}

#define CHECK_READY() \
  if (!__atomic_load_n(&ready, __ATOMIC_ACQUIRE)) \
  return put(err, errlen, GRF_TRT_ERR_UNSUPPORTED, "libgrefine_trt.so is not loaded")

static void go_log(int32_t severity, const char *msg) { grfTrtGoLog(severity, (char *)msg); }

int32_t grf_trtl_set_log_callback(int32_t max_severity, char *err, size_t errlen) {
  CHECK_READY();
  return api.set_log_callback(go_log, max_severity, err, errlen);
}

#define P(x) ((void *)(x))

int32_t grf_trtl_get_version(grf_trt_version_info *out, char *err, size_t errlen) {
  CHECK_READY();
  return api.get_version(out, err, errlen);
}
int32_t grf_trtl_get_device_info(int32_t device, grf_trt_device_info *out, char *err, size_t errlen) {
  CHECK_READY();
  return api.get_device_info(device, out, err, errlen);
}
int32_t grf_trtl_get_cuda_status(grf_trt_cuda_status *out, char *err, size_t errlen) {
  CHECK_READY();
  if (opt_get_cuda_status == NULL) {
    return put(err, errlen, GRF_TRT_ERR_UNSUPPORTED, "the shim predates grf_trt_get_cuda_status");
  }
  return opt_get_cuda_status(out, err, errlen);
}
int32_t grf_trtl_stream_create(int32_t device, uintptr_t *stream, char *err, size_t errlen) {
  CHECK_READY();
  void *s = NULL;
  int32_t st = api.stream_create(device, &s, err, errlen);
  *stream = (uintptr_t)s;
  return st;
}
int32_t grf_trtl_stream_destroy(uintptr_t stream, char *err, size_t errlen) {
  CHECK_READY();
  return api.stream_destroy(P(stream), err, errlen);
}
int32_t grf_trtl_stream_synchronize(uintptr_t stream, char *err, size_t errlen) {
  CHECK_READY();
  return api.stream_synchronize(P(stream), err, errlen);
}
int32_t grf_trtl_buffer_create(int32_t device, int64_t bytes, grf_trt_buffer **out, char *err, size_t errlen) {
  CHECK_READY();
  return api.buffer_create(device, bytes, out, err, errlen);
}
int32_t grf_trtl_buffer_destroy(grf_trt_buffer *buf, char *err, size_t errlen) {
  CHECK_READY();
  return api.buffer_destroy(buf, err, errlen);
}
int32_t grf_trtl_buffer_info(grf_trt_buffer *buf, uintptr_t *ptr, int64_t *bytes, char *err, size_t errlen) {
  CHECK_READY();
  void *p = NULL;
  int32_t st = api.buffer_info(buf, &p, bytes, err, errlen);
  *ptr = (uintptr_t)p;
  return st;
}
int32_t grf_trtl_buffer_upload(grf_trt_buffer *buf, int64_t offset, const void *src, int64_t bytes, uintptr_t stream,
                               char *err, size_t errlen) {
  CHECK_READY();
  return api.buffer_upload(buf, offset, src, bytes, P(stream), err, errlen);
}
int32_t grf_trtl_buffer_download(grf_trt_buffer *buf, int64_t offset, void *dst, int64_t bytes, uintptr_t stream,
                                 char *err, size_t errlen) {
  CHECK_READY();
  return api.buffer_download(buf, offset, dst, bytes, P(stream), err, errlen);
}
int32_t grf_trtl_runtime_create(int32_t device, grf_trt_runtime **out, char *err, size_t errlen) {
  CHECK_READY();
  return api.runtime_create(device, out, err, errlen);
}
int32_t grf_trtl_runtime_destroy(grf_trt_runtime *rt, char *err, size_t errlen) {
  CHECK_READY();
  return api.runtime_destroy(rt, err, errlen);
}
int32_t grf_trtl_engine_deserialize(grf_trt_runtime *rt, const void *data, size_t size, grf_trt_engine **out,
                                    char *err, size_t errlen) {
  CHECK_READY();
  return api.engine_deserialize(rt, data, size, out, err, errlen);
}
int32_t grf_trtl_engine_load_file(grf_trt_runtime *rt, const char *path, grf_trt_engine **out, char *err,
                                  size_t errlen) {
  CHECK_READY();
  return api.engine_load_file(rt, path, out, err, errlen);
}
int32_t grf_trtl_engine_destroy(grf_trt_engine *eng, char *err, size_t errlen) {
  CHECK_READY();
  return api.engine_destroy(eng, err, errlen);
}
int32_t grf_trtl_engine_num_io(grf_trt_engine *eng, int32_t *n, char *err, size_t errlen) {
  CHECK_READY();
  return api.engine_num_io(eng, n, err, errlen);
}
int32_t grf_trtl_engine_io_info(grf_trt_engine *eng, int32_t index, grf_trt_tensor_info *out, char *err,
                                size_t errlen) {
  CHECK_READY();
  return api.engine_io_info(eng, index, out, err, errlen);
}
int32_t grf_trtl_engine_num_profiles(grf_trt_engine *eng, int32_t *n, char *err, size_t errlen) {
  CHECK_READY();
  return api.engine_num_profiles(eng, n, err, errlen);
}
int32_t grf_trtl_engine_profile_shape(grf_trt_engine *eng, const char *name, int32_t profile,
                                      grf_trt_profile_shape *out, char *err, size_t errlen) {
  CHECK_READY();
  return api.engine_profile_shape(eng, name, profile, out, err, errlen);
}
int32_t grf_trtl_engine_device_memory_size(grf_trt_engine *eng, int32_t profile, int64_t *bytes, char *err,
                                           size_t errlen) {
  CHECK_READY();
  return api.engine_device_memory_size(eng, profile, bytes, err, errlen);
}
int32_t grf_trtl_context_create(grf_trt_engine *eng, grf_trt_context **out, char *err, size_t errlen) {
  CHECK_READY();
  return api.context_create(eng, out, err, errlen);
}
int32_t grf_trtl_context_destroy(grf_trt_context *ctx, char *err, size_t errlen) {
  CHECK_READY();
  return api.context_destroy(ctx, err, errlen);
}
int32_t grf_trtl_context_set_device_memory(grf_trt_context *ctx, uintptr_t ptr, int64_t bytes, char *err,
                                           size_t errlen) {
  CHECK_READY();
  return api.context_set_device_memory(ctx, P(ptr), bytes, err, errlen);
}
int32_t grf_trtl_context_set_profile(grf_trt_context *ctx, int32_t profile, uintptr_t stream, char *err,
                                     size_t errlen) {
  CHECK_READY();
  return api.context_set_profile(ctx, profile, P(stream), err, errlen);
}
int32_t grf_trtl_context_set_input_shape(grf_trt_context *ctx, const char *name, int32_t nb_dims,
                                         const int64_t *dims, char *err, size_t errlen) {
  CHECK_READY();
  return api.context_set_input_shape(ctx, name, nb_dims, dims, err, errlen);
}
int32_t grf_trtl_context_set_tensor_address(grf_trt_context *ctx, const char *name, uintptr_t ptr, char *err,
                                            size_t errlen) {
  CHECK_READY();
  return api.context_set_tensor_address(ctx, name, P(ptr), err, errlen);
}
int32_t grf_trtl_context_tensor_shape(grf_trt_context *ctx, const char *name, int32_t *nb_dims, int64_t *dims,
                                      char *err, size_t errlen) {
  CHECK_READY();
  return api.context_tensor_shape(ctx, name, nb_dims, dims, err, errlen);
}
int32_t grf_trtl_context_enqueue(grf_trt_context *ctx, uintptr_t stream, char *err, size_t errlen) {
  CHECK_READY();
  return api.context_enqueue(ctx, P(stream), err, errlen);
}
int32_t grf_trtl_context_enqueue_graph(grf_trt_context *ctx, uintptr_t stream, int32_t *replayed, char *err,
                                       size_t errlen) {
  CHECK_READY();
  return api.context_enqueue_graph(ctx, P(stream), replayed, err, errlen);
}
int32_t grf_trtl_builder_create(int32_t device, grf_trt_builder **out, char *err, size_t errlen) {
  CHECK_READY();
  return api.builder_create(device, out, err, errlen);
}
int32_t grf_trtl_builder_destroy(grf_trt_builder *b, char *err, size_t errlen) {
  CHECK_READY();
  return api.builder_destroy(b, err, errlen);
}
int32_t grf_trtl_builder_add_profile(grf_trt_builder *b, int32_t *index, char *err, size_t errlen) {
  CHECK_READY();
  return api.builder_add_profile(b, index, err, errlen);
}
int32_t grf_trtl_builder_set_profile_shape(grf_trt_builder *b, int32_t profile, const char *name, int32_t nb_dims,
                                           const int64_t *min, const int64_t *opt, const int64_t *max, char *err,
                                           size_t errlen) {
  CHECK_READY();
  return api.builder_set_profile_shape(b, profile, name, nb_dims, min, opt, max, err, errlen);
}
int32_t grf_trtl_builder_set_precision(grf_trt_builder *b, int32_t precision, char *err, size_t errlen) {
  CHECK_READY();
  return api.builder_set_precision(b, precision, err, errlen);
}
int32_t grf_trtl_builder_set_strongly_typed(grf_trt_builder *b, int32_t on, char *err, size_t errlen) {
  CHECK_READY();
  return api.builder_set_strongly_typed(b, on, err, errlen);
}
int32_t grf_trtl_builder_set_workspace(grf_trt_builder *b, int64_t bytes, char *err, size_t errlen) {
  CHECK_READY();
  return api.builder_set_workspace(b, bytes, err, errlen);
}
int32_t grf_trtl_builder_set_optimization_level(grf_trt_builder *b, int32_t level, char *err, size_t errlen) {
  CHECK_READY();
  return api.builder_set_optimization_level(b, level, err, errlen);
}
int32_t grf_trtl_builder_set_timing_cache(grf_trt_builder *b, const char *path, char *err, size_t errlen) {
  CHECK_READY();
  return api.builder_set_timing_cache(b, path, err, errlen);
}
int32_t grf_trtl_builder_build(grf_trt_builder *b, const char *onnx_path, grf_trt_blob **out, char *err,
                               size_t errlen) {
  CHECK_READY();
  return api.builder_build(b, onnx_path, out, err, errlen);
}
int32_t grf_trtl_blob_data(grf_trt_blob *blob, const void **data, size_t *size, char *err, size_t errlen) {
  CHECK_READY();
  return api.blob_data(blob, data, size, err, errlen);
}
int32_t grf_trtl_blob_destroy(grf_trt_blob *blob, char *err, size_t errlen) {
  CHECK_READY();
  return api.blob_destroy(blob, err, errlen);
}
