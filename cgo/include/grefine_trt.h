/*
 * grefine_trt.h: the C ABI of libgrefine_trt.so, grefine's TensorRT shim.
 *
 * The shim (the C++ sources of cgo/trt) wraps TensorRT 10.x and 11.x behind plain C so that Go can
 * dlopen it (engine/trt). Two implementations of the same ABI stand in for it on machines
 * without a GPU: the fake (cgo/trt/fake, host memory, elementwise text plans, for the Go
 * side's error paths) and the emulator (the fake built with GRF_TRT_EMU on cuda-emu,
 * cgo/emu: emulated device memory and streams, ONNX plans run by ONNX Runtime on the CPU;
 * `make trt-emu`).
 *
 * Conventions, for every function below:
 *   - The return value is a status (GRF_TRT_OK or a GRF_TRT_ERR_* code). On failure a
 *     NUL-terminated, lowercase message is written into the caller's buffer err[0..errlen)
 *     (truncated to fit; err may be NULL when errlen is 0). There is no "last error" state.
 *   - No C++ exception, CUDA error or TensorRT enum value crosses this boundary: dtypes,
 *     modes, severities and precisions are the GRF_TRT_* constants defined here.
 *   - Handles are opaque. Each has exactly one destroy function, which accepts NULL.
 *     Destroy order is enforced: a runtime refuses to die while engines built from it live,
 *     an engine while its contexts live (GRF_TRT_ERR_INVALID, nothing destroyed).
 *   - The shim never keeps a caller pointer after the call returns, except the device
 *     addresses given to grf_trt_context_set_tensor_address and
 *     grf_trt_context_set_device_memory, which are device memory the caller keeps alive
 *     while the context may use them.
 *   - Device pointers and CUDA streams travel as void* (a cudaStream_t; NULL is the legacy
 *     default stream). Shapes are int64 arrays of at most GRF_TRT_MAX_DIMS entries; -1
 *     marks a dimension that is dynamic.
 *   - Multi-GPU: runtimes, buffers, streams and builders are created for an explicit CUDA
 *     device index; engines and contexts inherit their runtime's device. Every call that
 *     touches the GPU makes the handle's device current for the duration of the call and
 *     restores the thread's previous device, so no call depends on (or changes) the
 *     calling thread's current device.
 *   - A handle may be used by one thread at a time. Different contexts of one engine may
 *     be used concurrently, each with its own scratch memory and stream.
 */
#ifndef GREFINE_TRT_H
#define GREFINE_TRT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Version of this ABI. Bumped on any incompatible change; engine/trt refuses a library
 * whose ABI version differs from the one it was compiled against. */
#define GRF_TRT_ABI_VERSION 2

/* Largest tensor rank the ABI carries. */
#define GRF_TRT_MAX_DIMS 8
/* Longest tensor name (including the NUL) returned in grf_trt_tensor_info. */
#define GRF_TRT_MAX_NAME 256
/* A comfortable size for error buffers. */
#define GRF_TRT_ERRLEN 1024

/* Status codes. */
#define GRF_TRT_OK 0
#define GRF_TRT_ERR_INVALID 1     /* bad argument or call order (programming error) */
#define GRF_TRT_ERR_NOT_FOUND 2   /* unknown tensor name, missing file */
#define GRF_TRT_ERR_SHAPE 3       /* shape outside the profile, rank mismatch */
#define GRF_TRT_ERR_DTYPE 4       /* unsupported or mismatched element type */
#define GRF_TRT_ERR_PLAN 5        /* plan bytes that do not deserialize */
#define GRF_TRT_ERR_CUDA 6        /* a CUDA runtime call failed */
#define GRF_TRT_ERR_TRT 7         /* a TensorRT call failed (see the log for details) */
#define GRF_TRT_ERR_NOMEM 8       /* host or device allocation failed */
#define GRF_TRT_ERR_BUILD 9       /* ONNX parsing or engine building failed */
#define GRF_TRT_ERR_UNSUPPORTED 10 /* not available with this TensorRT version / build */
#define GRF_TRT_ERR_INTERNAL 11   /* an exception caught at the boundary */

/* Element types (never TensorRT's own enum values). 1..6 equal engine.DType's values. */
#define GRF_TRT_DTYPE_FLOAT32 1
#define GRF_TRT_DTYPE_FLOAT16 2
#define GRF_TRT_DTYPE_INT32 3
#define GRF_TRT_DTYPE_INT64 4
#define GRF_TRT_DTYPE_UINT8 5
#define GRF_TRT_DTYPE_BOOL 6
#define GRF_TRT_DTYPE_BFLOAT16 7
#define GRF_TRT_DTYPE_INT8 8
#define GRF_TRT_DTYPE_FP8 9
#define GRF_TRT_DTYPE_OTHER 100 /* a type this ABI does not name (int4, fp4, ...) */

/* I/O tensor modes. */
#define GRF_TRT_MODE_INPUT 1
#define GRF_TRT_MODE_OUTPUT 2

/* Log severities, most severe first. */
#define GRF_TRT_LOG_INTERNAL_ERROR 0
#define GRF_TRT_LOG_ERROR 1
#define GRF_TRT_LOG_WARNING 2
#define GRF_TRT_LOG_INFO 3
#define GRF_TRT_LOG_VERBOSE 4

/* Builder precisions. On TensorRT 11 networks are always strongly typed: precision comes
 * from the ONNX file and FP16/BF16 here only produce a warning. On 10.x they set the
 * (weak-typing) builder flags unless the builder is strongly typed. */
#define GRF_TRT_PRECISION_FP32 1
#define GRF_TRT_PRECISION_FP16 2
#define GRF_TRT_PRECISION_BF16 3

typedef struct grf_trt_runtime grf_trt_runtime;
typedef struct grf_trt_engine grf_trt_engine;
typedef struct grf_trt_context grf_trt_context;
typedef struct grf_trt_buffer grf_trt_buffer;
typedef struct grf_trt_builder grf_trt_builder;
typedef struct grf_trt_blob grf_trt_blob;

/* Versions: TensorRT versions are encoded as major*10000 + minor*100 + patch. */
typedef struct grf_trt_version_info {
  int32_t abi;          /* GRF_TRT_ABI_VERSION the library was built with */
  int32_t compiled_trt; /* TensorRT headers the shim was compiled against */
  int32_t runtime_trt;  /* libnvinfer actually loaded (getInferLibVersion) */
  int32_t cuda_runtime; /* cudaRuntimeGetVersion, e.g. 12040; 0 if unknown */
} grf_trt_version_info;

/* One engine I/O tensor. */
typedef struct grf_trt_tensor_info {
  char name[GRF_TRT_MAX_NAME];
  int32_t mode;   /* GRF_TRT_MODE_* */
  int32_t dtype;  /* GRF_TRT_DTYPE_* */
  int32_t nb_dims;
  int64_t dims[GRF_TRT_MAX_DIMS]; /* -1: dynamic */
} grf_trt_tensor_info;

/* The min/opt/max shapes of one input in one optimisation profile. */
typedef struct grf_trt_profile_shape {
  int32_t nb_dims;
  int64_t min[GRF_TRT_MAX_DIMS];
  int64_t opt[GRF_TRT_MAX_DIMS];
  int64_t max[GRF_TRT_MAX_DIMS];
} grf_trt_profile_shape;

/* GPU description used in plan cache keys. */
typedef struct grf_trt_device_info {
  int32_t count;     /* number of CUDA devices visible */
  int32_t cc_major;  /* compute capability of the queried device */
  int32_t cc_minor;
  int64_t total_mem; /* bytes */
  int32_t emulated;  /* 1: the device is cuda-emu, the GPU emulator (libgrefine_trt_emu.so:
                        emulated device memory, engines run by ONNX Runtime on the CPU);
                        0: a CUDA device */
  char name[256];
} grf_trt_device_info;

/* Log callback: severity is GRF_TRT_LOG_*, msg is valid only during the call. It may be
 * called from any thread, including TensorRT's own. */
typedef void (*grf_trt_log_fn)(int32_t severity, const char *msg);

/* ---- process-wide ------------------------------------------------------------------- */

/* Fills *out with the ABI, compiled and runtime versions. */
int32_t grf_trt_get_version(grf_trt_version_info *out, char *err, size_t errlen);

/* Registers the one log callback (NULL: drop messages) and the least severe level that is
 * forwarded (messages with severity > max_severity are filtered in C). Applies to all
 * runtimes and builders, created before or after. */
int32_t grf_trt_set_log_callback(grf_trt_log_fn fn, int32_t max_severity, char *err, size_t errlen);

/* Describes CUDA device `device` (and the device count). Count 0 is not an error: the
 * other fields are then zero. */
int32_t grf_trt_get_device_info(int32_t device, grf_trt_device_info *out, char *err, size_t errlen);

/* What the shim's CUDA runtime says about this machine's GPUs, for diagnostics (grefine
 * doctor): why none is visible, and which CUDA version the driver supports. */
typedef struct grf_trt_cuda_status {
  int32_t device_count;    /* cudaGetDeviceCount's count; 0 when it failed */
  int32_t error;           /* its cudaError_t (0: cudaSuccess) */
  int32_t driver_version;  /* cudaDriverGetVersion, e.g. 13000; 0: no driver */
  int32_t runtime_version; /* cudaRuntimeGetVersion of the shim's own CUDA runtime; 0 if none */
  char error_name[64];     /* "cudaErrorNoDevice"; "" on success */
  char error_text[256];    /* cudaGetErrorString; "" on success */
} grf_trt_cuda_status;

/* Fills *out. Added to ABI 2 without a version bump: engine/trt loads a shim that lacks it
 * and then cannot say why no GPU is visible. */
int32_t grf_trt_get_cuda_status(grf_trt_cuda_status *out, char *err, size_t errlen);

/* ---- streams and device buffers ----------------------------------------------------- */

/* Creates a CUDA stream (cudaStreamNonBlocking) on device `device` into *stream. */
int32_t grf_trt_stream_create(int32_t device, void **stream, char *err, size_t errlen);
/* Destroys a stream made by grf_trt_stream_create (NULL is fine). Stream calls need no
 * device argument: a CUDA stream belongs to the device it was created on. */
int32_t grf_trt_stream_destroy(void *stream, char *err, size_t errlen);
/* Waits until all work queued on stream has finished. */
int32_t grf_trt_stream_synchronize(void *stream, char *err, size_t errlen);

/* Allocates `bytes` of memory on device `device` (cudaMalloc; bytes may be 0). The buffer
 * remembers its device for its copies and its destruction. */
int32_t grf_trt_buffer_create(int32_t device, int64_t bytes, grf_trt_buffer **out, char *err, size_t errlen);
/* Frees the buffer (NULL is fine). The caller ensures no queued work still uses it. */
int32_t grf_trt_buffer_destroy(grf_trt_buffer *buf, char *err, size_t errlen);
/* Returns the device address and size of a buffer. */
int32_t grf_trt_buffer_info(grf_trt_buffer *buf, void **ptr, int64_t *bytes, char *err, size_t errlen);
/* Copies bytes of host memory src to the buffer at offset, on stream, and waits for it. */
int32_t grf_trt_buffer_upload(grf_trt_buffer *buf, int64_t offset, const void *src, int64_t bytes,
                              void *stream, char *err, size_t errlen);
/* Copies bytes at offset of the buffer into host memory dst, on stream (so it follows the
 * work queued there), and waits for it. */
int32_t grf_trt_buffer_download(grf_trt_buffer *buf, int64_t offset, void *dst, int64_t bytes,
                                void *stream, char *err, size_t errlen);

/* ---- runtime and engines ------------------------------------------------------------ */

/* Creates a TensorRT runtime (IRuntime) for CUDA device `device`; its engines and their
 * contexts live on that device. */
int32_t grf_trt_runtime_create(int32_t device, grf_trt_runtime **out, char *err, size_t errlen);
/* Destroys a runtime with no live engines (NULL is fine). */
int32_t grf_trt_runtime_destroy(grf_trt_runtime *rt, char *err, size_t errlen);

/* Deserializes a plan from memory (copied during the call; the caller keeps data). */
int32_t grf_trt_engine_deserialize(grf_trt_runtime *rt, const void *data, size_t size,
                                   grf_trt_engine **out, char *err, size_t errlen);
/* Reads and deserializes a plan file. */
int32_t grf_trt_engine_load_file(grf_trt_runtime *rt, const char *path, grf_trt_engine **out,
                                 char *err, size_t errlen);
/* Destroys an engine with no live contexts (NULL is fine). */
int32_t grf_trt_engine_destroy(grf_trt_engine *eng, char *err, size_t errlen);

/* Number of I/O tensors. */
int32_t grf_trt_engine_num_io(grf_trt_engine *eng, int32_t *n, char *err, size_t errlen);
/* Describes I/O tensor `index` (0 <= index < num_io), in the engine's order. */
int32_t grf_trt_engine_io_info(grf_trt_engine *eng, int32_t index, grf_trt_tensor_info *out,
                               char *err, size_t errlen);
/* Number of optimisation profiles (at least 1). */
int32_t grf_trt_engine_num_profiles(grf_trt_engine *eng, int32_t *n, char *err, size_t errlen);
/* min/opt/max shapes of input `name` in `profile`. */
int32_t grf_trt_engine_profile_shape(grf_trt_engine *eng, const char *name, int32_t profile,
                                     grf_trt_profile_shape *out, char *err, size_t errlen);
/* Scratch (activation) memory a context needs for `profile`, or the maximum over all
 * profiles when profile is -1. Share one buffer of the maximum across engines that run
 * serially on one stream. */
int32_t grf_trt_engine_device_memory_size(grf_trt_engine *eng, int32_t profile, int64_t *bytes,
                                          char *err, size_t errlen);

/* ---- execution contexts ------------------------------------------------------------- */

/* Creates an execution context with user-managed scratch memory (kUSER_MANAGED): call
 * grf_trt_context_set_device_memory before the first enqueue. An engine may have many
 * contexts (one per execution slot); contexts that may run at the same time need
 * separate scratch memory. */
int32_t grf_trt_context_create(grf_trt_engine *eng, grf_trt_context **out, char *err, size_t errlen);
/* Destroys a context (NULL is fine) and its captured CUDA graph. */
int32_t grf_trt_context_destroy(grf_trt_context *ctx, char *err, size_t errlen);
/* Binds scratch memory (device address and size in bytes, at least
 * grf_trt_engine_device_memory_size for the active profile). */
int32_t grf_trt_context_set_device_memory(grf_trt_context *ctx, void *ptr, int64_t bytes, char *err,
                                          size_t errlen);
/* Selects optimisation profile `profile`, asynchronously on stream. */
int32_t grf_trt_context_set_profile(grf_trt_context *ctx, int32_t profile, void *stream, char *err,
                                    size_t errlen);
/* Sets the shape of input `name`; it must lie within the active profile. */
int32_t grf_trt_context_set_input_shape(grf_trt_context *ctx, const char *name, int32_t nb_dims,
                                        const int64_t *dims, char *err, size_t errlen);
/* Binds the device address of I/O tensor `name`. */
int32_t grf_trt_context_set_tensor_address(grf_trt_context *ctx, const char *name, void *ptr, char *err,
                                           size_t errlen);
/* Shape of I/O tensor `name` under the shapes set so far (outputs: after every input
 * shape is set). dims must hold GRF_TRT_MAX_DIMS entries. */
int32_t grf_trt_context_tensor_shape(grf_trt_context *ctx, const char *name, int32_t *nb_dims, int64_t *dims,
                                     char *err, size_t errlen);
/* Queues one inference on stream (enqueueV3). */
int32_t grf_trt_context_enqueue(grf_trt_context *ctx, void *stream, char *err, size_t errlen);
/* Like grf_trt_context_enqueue, through a CUDA graph: while the profile, shapes, addresses
 * and scratch memory are unchanged since the last capture, the captured graph is replayed
 * (*replayed = 1). Otherwise this call enqueues normally (which also runs the inference),
 * then captures a second enqueue into a graph for later calls (*replayed = 0). The whole
 * capture happens inside this call, so the calling thread does not matter. */
int32_t grf_trt_context_enqueue_graph(grf_trt_context *ctx, void *stream, int32_t *replayed, char *err,
                                      size_t errlen);

/* ---- building plans from ONNX ------------------------------------------------------- */

/* Creates a builder description for device `device` (the TensorRT builder itself lives
 * only inside build, which builds for that device). */
int32_t grf_trt_builder_create(int32_t device, grf_trt_builder **out, char *err, size_t errlen);
/* Destroys a builder description (NULL is fine). */
int32_t grf_trt_builder_destroy(grf_trt_builder *b, char *err, size_t errlen);
/* Appends an optimisation profile; its index goes to *index. */
int32_t grf_trt_builder_add_profile(grf_trt_builder *b, int32_t *index, char *err, size_t errlen);
/* Sets min/opt/max of input `name` in `profile`. */
int32_t grf_trt_builder_set_profile_shape(grf_trt_builder *b, int32_t profile, const char *name,
                                          int32_t nb_dims, const int64_t *min, const int64_t *opt,
                                          const int64_t *max, char *err, size_t errlen);
/* Sets the precision (GRF_TRT_PRECISION_*; default FP32). */
int32_t grf_trt_builder_set_precision(grf_trt_builder *b, int32_t precision, char *err, size_t errlen);
/* Requests a strongly-typed network (always on with TensorRT 11; on 10.x it makes the
 * precision flags moot). */
int32_t grf_trt_builder_set_strongly_typed(grf_trt_builder *b, int32_t on, char *err, size_t errlen);
/* Limits the builder workspace memory pool (bytes; 0: TensorRT's default). */
int32_t grf_trt_builder_set_workspace(grf_trt_builder *b, int64_t bytes, char *err, size_t errlen);
/* Builder optimisation level 0..5 (-1: TensorRT's default). */
int32_t grf_trt_builder_set_optimization_level(grf_trt_builder *b, int32_t level, char *err, size_t errlen);
/* Timing cache file: loaded before the build if it exists, saved (atomically) after a
 * successful build. NULL or "" disables it. The path is copied. */
int32_t grf_trt_builder_set_timing_cache(grf_trt_builder *b, const char *path, char *err, size_t errlen);
/* Parses the ONNX file (external data next to it is found by path) and builds a
 * serialized plan into *out. */
int32_t grf_trt_builder_build(grf_trt_builder *b, const char *onnx_path, grf_trt_blob **out, char *err,
                              size_t errlen);

/* Borrowed view of a blob's bytes, valid until grf_trt_blob_destroy. */
int32_t grf_trt_blob_data(grf_trt_blob *blob, const void **data, size_t *size, char *err, size_t errlen);
/* Frees a blob (NULL is fine). */
int32_t grf_trt_blob_destroy(grf_trt_blob *blob, char *err, size_t errlen);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* GREFINE_TRT_H */
