/*
 * grefine_trt_loader.h: the Go side's view of libgrefine_trt.so (engine/trt/loader.c).
 *
 * engine/trt does not link the shim: engine/native dlopens it at run time, so the Go binary
 * builds and runs without TensorRT. grf_trtl_bind resolves every grf_trt_* symbol of
 * grefine_trt.h from that handle;
 * each grf_trtl_* function below forwards to its grf_trt_* namesake (same status codes
 * and error buffer), or returns GRF_TRT_ERR_UNSUPPORTED when no library is loaded.
 * Device addresses and streams are uintptr_t here so Go can hold them as integers.
 */
#ifndef GREFINE_TRT_LOADER_H
#define GREFINE_TRT_LOADER_H

#include "grefine_trt.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Resolves all symbols from handle (a dlopen handle of the shim at path, from
 * engine/native). One library per process: binding a second one fails (engine/native
 * refuses a second path before this is reached). */
int32_t grf_trtl_bind(void *handle, const char *path, char *err, size_t errlen);
/* Registers engine/trt's exported Go log function as the shim's log callback. */
int32_t grf_trtl_set_log_callback(int32_t max_severity, char *err, size_t errlen);

/* Forwarders, see grefine_trt.h. */
int32_t grf_trtl_get_version(grf_trt_version_info *out, char *err, size_t errlen);
int32_t grf_trtl_get_device_info(int32_t device, grf_trt_device_info *out, char *err, size_t errlen);
/* Optional (a shim may predate it): GRF_TRT_ERR_UNSUPPORTED when the library lacks it. */
int32_t grf_trtl_get_cuda_status(grf_trt_cuda_status *out, char *err, size_t errlen);
int32_t grf_trtl_stream_create(int32_t device, uintptr_t *stream, char *err, size_t errlen);
int32_t grf_trtl_stream_destroy(uintptr_t stream, char *err, size_t errlen);
int32_t grf_trtl_stream_synchronize(uintptr_t stream, char *err, size_t errlen);
int32_t grf_trtl_buffer_create(int32_t device, int64_t bytes, grf_trt_buffer **out, char *err, size_t errlen);
int32_t grf_trtl_buffer_destroy(grf_trt_buffer *buf, char *err, size_t errlen);
int32_t grf_trtl_buffer_info(grf_trt_buffer *buf, uintptr_t *ptr, int64_t *bytes, char *err, size_t errlen);
int32_t grf_trtl_buffer_upload(grf_trt_buffer *buf, int64_t offset, const void *src, int64_t bytes, uintptr_t stream,
                               char *err, size_t errlen);
int32_t grf_trtl_buffer_download(grf_trt_buffer *buf, int64_t offset, void *dst, int64_t bytes, uintptr_t stream,
                                 char *err, size_t errlen);
int32_t grf_trtl_runtime_create(int32_t device, grf_trt_runtime **out, char *err, size_t errlen);
int32_t grf_trtl_runtime_destroy(grf_trt_runtime *rt, char *err, size_t errlen);
int32_t grf_trtl_engine_deserialize(grf_trt_runtime *rt, const void *data, size_t size, grf_trt_engine **out,
                                    char *err, size_t errlen);
int32_t grf_trtl_engine_load_file(grf_trt_runtime *rt, const char *path, grf_trt_engine **out, char *err,
                                  size_t errlen);
int32_t grf_trtl_engine_destroy(grf_trt_engine *eng, char *err, size_t errlen);
int32_t grf_trtl_engine_num_io(grf_trt_engine *eng, int32_t *n, char *err, size_t errlen);
int32_t grf_trtl_engine_io_info(grf_trt_engine *eng, int32_t index, grf_trt_tensor_info *out, char *err,
                                size_t errlen);
int32_t grf_trtl_engine_num_profiles(grf_trt_engine *eng, int32_t *n, char *err, size_t errlen);
int32_t grf_trtl_engine_profile_shape(grf_trt_engine *eng, const char *name, int32_t profile,
                                      grf_trt_profile_shape *out, char *err, size_t errlen);
int32_t grf_trtl_engine_device_memory_size(grf_trt_engine *eng, int32_t profile, int64_t *bytes, char *err,
                                           size_t errlen);
int32_t grf_trtl_context_create(grf_trt_engine *eng, grf_trt_context **out, char *err, size_t errlen);
int32_t grf_trtl_context_destroy(grf_trt_context *ctx, char *err, size_t errlen);
int32_t grf_trtl_context_set_device_memory(grf_trt_context *ctx, uintptr_t ptr, int64_t bytes, char *err,
                                           size_t errlen);
int32_t grf_trtl_context_set_profile(grf_trt_context *ctx, int32_t profile, uintptr_t stream, char *err,
                                     size_t errlen);
int32_t grf_trtl_context_set_input_shape(grf_trt_context *ctx, const char *name, int32_t nb_dims,
                                         const int64_t *dims, char *err, size_t errlen);
int32_t grf_trtl_context_set_tensor_address(grf_trt_context *ctx, const char *name, uintptr_t ptr, char *err,
                                            size_t errlen);
int32_t grf_trtl_context_tensor_shape(grf_trt_context *ctx, const char *name, int32_t *nb_dims, int64_t *dims,
                                      char *err, size_t errlen);
int32_t grf_trtl_context_enqueue(grf_trt_context *ctx, uintptr_t stream, char *err, size_t errlen);
int32_t grf_trtl_context_enqueue_graph(grf_trt_context *ctx, uintptr_t stream, int32_t *replayed, char *err,
                                       size_t errlen);
int32_t grf_trtl_builder_create(int32_t device, grf_trt_builder **out, char *err, size_t errlen);
int32_t grf_trtl_builder_destroy(grf_trt_builder *b, char *err, size_t errlen);
int32_t grf_trtl_builder_add_profile(grf_trt_builder *b, int32_t *index, char *err, size_t errlen);
int32_t grf_trtl_builder_set_profile_shape(grf_trt_builder *b, int32_t profile, const char *name, int32_t nb_dims,
                                           const int64_t *min, const int64_t *opt, const int64_t *max, char *err,
                                           size_t errlen);
int32_t grf_trtl_builder_set_precision(grf_trt_builder *b, int32_t precision, char *err, size_t errlen);
int32_t grf_trtl_builder_set_strongly_typed(grf_trt_builder *b, int32_t on, char *err, size_t errlen);
int32_t grf_trtl_builder_set_workspace(grf_trt_builder *b, int64_t bytes, char *err, size_t errlen);
int32_t grf_trtl_builder_set_optimization_level(grf_trt_builder *b, int32_t level, char *err, size_t errlen);
int32_t grf_trtl_builder_set_timing_cache(grf_trt_builder *b, const char *path, char *err, size_t errlen);
int32_t grf_trtl_builder_build(grf_trt_builder *b, const char *onnx_path, grf_trt_blob **out, char *err,
                               size_t errlen);
int32_t grf_trtl_blob_data(grf_trt_blob *blob, const void **data, size_t *size, char *err, size_t errlen);
int32_t grf_trtl_blob_destroy(grf_trt_blob *blob, char *err, size_t errlen);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* GREFINE_TRT_LOADER_H */
