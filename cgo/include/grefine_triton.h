/*
 * grefine_triton.h: the part of Triton Inference Server's backend API that the grefine
 * backend (cmd/tritonbackend, libtriton_grefine.so) calls, declared here by us.
 *
 * Triton's own headers (triton-inference-server/core: tritonbackend.h, tritonserver.h)
 * are not shipped with the server we test against (the nvidia-pytriton wheel), and are
 * not vendored: these declarations were written from the documented C API. The
 * functions are defined by libtritonserver.so, which the tritonserver executable has
 * loaded before it loads a backend; libtriton_grefine.so leaves them undefined and the
 * dynamic loader binds them at dlopen time.
 *
 * ABI notes: every function returns a TRITONSERVER_Error* (NULL on success) that the
 * caller owns and frees with TRITONSERVER_ErrorDelete. Enumerations are C enums (int);
 * only the values grefine uses are named, with their documented numbers. Strings and
 * buffers returned through out-parameters belong to Triton (to the request, the input,
 * the output or the model) and live as long as that object.
 *
 * The entry points grefine implements (TRITONBACKEND_Initialize, _ModelInitialize,
 * _ModelInstanceExecute, ...) are not declared here: cgo declares them from their Go
 * definitions (//export).
 *
 * The grf_triton_* helpers at the end are grefine's own (cmd/tritonbackend/helpers.c).
 */
#ifndef GREFINE_TRITON_H
#define GREFINE_TRITON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Opaque objects owned by Triton. */
typedef struct TRITONSERVER_Error TRITONSERVER_Error;
typedef struct TRITONSERVER_Message TRITONSERVER_Message;
typedef struct TRITONBACKEND_Backend TRITONBACKEND_Backend;
typedef struct TRITONBACKEND_Model TRITONBACKEND_Model;
typedef struct TRITONBACKEND_ModelInstance TRITONBACKEND_ModelInstance;
typedef struct TRITONBACKEND_Request TRITONBACKEND_Request;
typedef struct TRITONBACKEND_Response TRITONBACKEND_Response;
typedef struct TRITONBACKEND_Input TRITONBACKEND_Input;
typedef struct TRITONBACKEND_Output TRITONBACKEND_Output;

/* The API version grefine needs: 1.18 added DOUBLE request parameters (strength2=0.5),
 * 1.17 the request timeout, 1.16 request cancellation. Triton 2.51 reports 1.19. */
#define GRF_TRITONBACKEND_API_MAJOR 1
#define GRF_TRITONBACKEND_API_MINOR 18

/* Error codes (TRITONSERVER_Error_Code). */
typedef enum TRITONSERVER_errorcode_enum {
  TRITONSERVER_ERROR_UNKNOWN = 0,
  TRITONSERVER_ERROR_INTERNAL = 1,
  TRITONSERVER_ERROR_NOT_FOUND = 2,
  TRITONSERVER_ERROR_INVALID_ARG = 3,
  TRITONSERVER_ERROR_UNAVAILABLE = 4,
  TRITONSERVER_ERROR_UNSUPPORTED = 5,
  TRITONSERVER_ERROR_ALREADY_EXISTS = 6,
  TRITONSERVER_ERROR_CANCELLED = 7
} TRITONSERVER_Error_Code;

/* Tensor data types (TRITONSERVER_DataType); BYTES is TYPE_STRING in config.pbtxt. */
typedef enum TRITONSERVER_datatype_enum {
  TRITONSERVER_TYPE_INVALID = 0,
  TRITONSERVER_TYPE_UINT8 = 2,
  TRITONSERVER_TYPE_FP32 = 11,
  TRITONSERVER_TYPE_BYTES = 13
} TRITONSERVER_DataType;

/* Where a buffer lives (TRITONSERVER_MemoryType). */
typedef enum TRITONSERVER_memorytype_enum {
  TRITONSERVER_MEMORY_CPU = 0,
  TRITONSERVER_MEMORY_CPU_PINNED = 1,
  TRITONSERVER_MEMORY_GPU = 2
} TRITONSERVER_MemoryType;

/* Request parameter types (TRITONSERVER_ParameterType). The value pointer of
 * TRITONBACKEND_RequestParameter points at: a NUL-terminated string, an int64_t, a bool,
 * a double; BYTES parameters are not used by grefine. */
typedef enum TRITONSERVER_parametertype_enum {
  TRITONSERVER_PARAMETER_STRING = 0,
  TRITONSERVER_PARAMETER_INT = 1,
  TRITONSERVER_PARAMETER_BOOL = 2,
  TRITONSERVER_PARAMETER_DOUBLE = 3,
  TRITONSERVER_PARAMETER_BYTES = 4
} TRITONSERVER_ParameterType;

/* Instance group kinds (TRITONSERVER_InstanceGroupKind). */
typedef enum TRITONSERVER_instancegroupkind_enum {
  TRITONSERVER_INSTANCEGROUPKIND_AUTO = 0,
  TRITONSERVER_INSTANCEGROUPKIND_CPU = 1,
  TRITONSERVER_INSTANCEGROUPKIND_GPU = 2,
  TRITONSERVER_INSTANCEGROUPKIND_MODEL = 3
} TRITONSERVER_InstanceGroupKind;

/* Log levels (TRITONSERVER_LogLevel). */
typedef enum TRITONSERVER_loglevel_enum {
  TRITONSERVER_LOG_INFO = 0,
  TRITONSERVER_LOG_WARN = 1,
  TRITONSERVER_LOG_ERROR = 2,
  TRITONSERVER_LOG_VERBOSE = 3
} TRITONSERVER_LogLevel;

/* How a backend's files reach it (TRITONBACKEND_ArtifactType). */
typedef enum TRITONBACKEND_artifacttype_enum {
  TRITONBACKEND_ARTIFACT_FILESYSTEM = 0
} TRITONBACKEND_ArtifactType;

/* TRITONBACKEND_RequestRelease flag: the request is done with. */
#define GRF_TRITONSERVER_REQUEST_RELEASE_ALL 1u
/* TRITONBACKEND_ResponseSend flag: the last (here: only) response of a request. */
#define GRF_TRITONSERVER_RESPONSE_COMPLETE_FINAL 1u

/* ---- errors, messages, logging (tritonserver.h) ---- */

/* A new error with a code and a copied message; the caller owns it. */
TRITONSERVER_Error *TRITONSERVER_ErrorNew(TRITONSERVER_Error_Code code, const char *msg);
/* Frees an error. */
void TRITONSERVER_ErrorDelete(TRITONSERVER_Error *error);
/* The code of an error. */
TRITONSERVER_Error_Code TRITONSERVER_ErrorCode(TRITONSERVER_Error *error);
/* The message of an error, owned by the error. */
const char *TRITONSERVER_ErrorMessage(TRITONSERVER_Error *error);
/* The JSON text of a message (base and size, owned by the message; not NUL-terminated). */
TRITONSERVER_Error *TRITONSERVER_MessageSerializeToJson(TRITONSERVER_Message *message, const char **base,
                                                        size_t *byte_size);
/* Frees a message. */
TRITONSERVER_Error *TRITONSERVER_MessageDelete(TRITONSERVER_Message *message);
/* Whether Triton logs this level. */
bool TRITONSERVER_LogIsEnabled(TRITONSERVER_LogLevel level);
/* Writes one line into Triton's log. */
TRITONSERVER_Error *TRITONSERVER_LogMessage(TRITONSERVER_LogLevel level, const char *filename, const int line,
                                            const char *msg);

/* ---- the backend API (tritonbackend.h) ---- */

/* The backend API version of the running server. */
TRITONSERVER_Error *TRITONBACKEND_ApiVersion(uint32_t *major, uint32_t *minor);

/* A model's name (owned by the model). */
TRITONSERVER_Error *TRITONBACKEND_ModelName(TRITONBACKEND_Model *model, const char **name);
/* A model's version. */
TRITONSERVER_Error *TRITONBACKEND_ModelVersion(TRITONBACKEND_Model *model, uint64_t *version);
/* The model's directory in the repository (owned by Triton). */
TRITONSERVER_Error *TRITONBACKEND_ModelRepository(TRITONBACKEND_Model *model, TRITONBACKEND_ArtifactType *artifact_type,
                                                  const char **location);
/* The model configuration (config_version 1) as a message the caller frees. */
TRITONSERVER_Error *TRITONBACKEND_ModelConfig(TRITONBACKEND_Model *model, const uint32_t config_version,
                                              TRITONSERVER_Message **model_config);
/* The backend's state pointer of a model. */
TRITONSERVER_Error *TRITONBACKEND_ModelState(TRITONBACKEND_Model *model, void **state);
/* Sets the backend's state pointer of a model. */
TRITONSERVER_Error *TRITONBACKEND_ModelSetState(TRITONBACKEND_Model *model, void *state);

/* An instance's name (owned by the instance). */
TRITONSERVER_Error *TRITONBACKEND_ModelInstanceName(TRITONBACKEND_ModelInstance *instance, const char **name);
/* An instance's kind (CPU, GPU, MODEL). */
TRITONSERVER_Error *TRITONBACKEND_ModelInstanceKind(TRITONBACKEND_ModelInstance *instance,
                                                    TRITONSERVER_InstanceGroupKind *kind);
/* An instance's device (the GPU index for KIND_GPU). */
TRITONSERVER_Error *TRITONBACKEND_ModelInstanceDeviceId(TRITONBACKEND_ModelInstance *instance, int32_t *device_id);
/* The model of an instance. */
TRITONSERVER_Error *TRITONBACKEND_ModelInstanceModel(TRITONBACKEND_ModelInstance *instance,
                                                     TRITONBACKEND_Model **model);
/* The backend's state pointer of an instance. */
TRITONSERVER_Error *TRITONBACKEND_ModelInstanceState(TRITONBACKEND_ModelInstance *instance, void **state);
/* Sets the backend's state pointer of an instance. */
TRITONSERVER_Error *TRITONBACKEND_ModelInstanceSetState(TRITONBACKEND_ModelInstance *instance, void *state);
/* Statistics of one request: success, and steady-clock timestamps in ns (execution start,
 * compute start, compute end, execution end). Must come before the request's release. */
TRITONSERVER_Error *TRITONBACKEND_ModelInstanceReportStatistics(TRITONBACKEND_ModelInstance *instance,
                                                                TRITONBACKEND_Request *request, const bool success,
                                                                const uint64_t exec_start_ns,
                                                                const uint64_t compute_start_ns,
                                                                const uint64_t compute_end_ns,
                                                                const uint64_t exec_end_ns);
/* Statistics of one execution of batch_size inferences (same timestamps). */
TRITONSERVER_Error *TRITONBACKEND_ModelInstanceReportBatchStatistics(TRITONBACKEND_ModelInstance *instance,
                                                                     const uint64_t batch_size,
                                                                     const uint64_t exec_start_ns,
                                                                     const uint64_t compute_start_ns,
                                                                     const uint64_t compute_end_ns,
                                                                     const uint64_t exec_end_ns);

/* A request's id ("" or NULL when the client gave none; owned by the request). */
TRITONSERVER_Error *TRITONBACKEND_RequestId(TRITONBACKEND_Request *request, const char **id);
/* Whether the client (or the server) cancelled the request. */
TRITONSERVER_Error *TRITONBACKEND_RequestIsCancelled(TRITONBACKEND_Request *request, bool *is_cancelled);
/* The request's timeout in microseconds (0: none). */
TRITONSERVER_Error *TRITONBACKEND_InferenceRequestTimeoutMicroseconds(TRITONBACKEND_Request *request,
                                                                     uint64_t *timeout);
/* The number of request parameters. */
TRITONSERVER_Error *TRITONBACKEND_RequestParameterCount(TRITONBACKEND_Request *request, uint32_t *count);
/* Parameter `index`: its key, type and a pointer to its value (owned by the request). */
TRITONSERVER_Error *TRITONBACKEND_RequestParameter(TRITONBACKEND_Request *request, const uint32_t index,
                                                   const char **key, TRITONSERVER_ParameterType *type,
                                                   const void **vvalue);
/* The number of inputs of a request. */
TRITONSERVER_Error *TRITONBACKEND_RequestInputCount(TRITONBACKEND_Request *request, uint32_t *count);
/* Input `index` of a request. */
TRITONSERVER_Error *TRITONBACKEND_RequestInputByIndex(TRITONBACKEND_Request *request, const uint32_t index,
                                                      TRITONBACKEND_Input **input);
/* The number of outputs the request asks for (all of the model's when the client named
 * none). */
TRITONSERVER_Error *TRITONBACKEND_RequestOutputCount(TRITONBACKEND_Request *request, uint32_t *count);
/* The name of requested output `index` (owned by the request). */
TRITONSERVER_Error *TRITONBACKEND_RequestOutputName(TRITONBACKEND_Request *request, const uint32_t index,
                                                    const char **output_name);
/* Hands the request back to Triton (flags: GRF_TRITONSERVER_REQUEST_RELEASE_ALL). */
TRITONSERVER_Error *TRITONBACKEND_RequestRelease(TRITONBACKEND_Request *request, uint32_t release_flags);

/* An input's name, data type, shape, total byte size and number of buffers (all owned
 * by the input). */
TRITONSERVER_Error *TRITONBACKEND_InputProperties(TRITONBACKEND_Input *input, const char **name,
                                                  TRITONSERVER_DataType *datatype, const int64_t **shape,
                                                  uint32_t *dims_count, uint64_t *byte_size,
                                                  uint32_t *buffer_count);
/* Buffer `index` of an input. memory_type and memory_type_id say where the caller wants
 * it and come back with where it is. */
TRITONSERVER_Error *TRITONBACKEND_InputBuffer(TRITONBACKEND_Input *input, const uint32_t index, const void **buffer,
                                              uint64_t *buffer_byte_size, TRITONSERVER_MemoryType *memory_type,
                                              int64_t *memory_type_id);

/* A new response to a request; sent with TRITONBACKEND_ResponseSend or freed with
 * TRITONBACKEND_ResponseDelete. */
TRITONSERVER_Error *TRITONBACKEND_ResponseNew(TRITONBACKEND_Response **response, TRITONBACKEND_Request *request);
/* Frees a response that was not sent. */
TRITONSERVER_Error *TRITONBACKEND_ResponseDelete(TRITONBACKEND_Response *response);
/* Adds an output tensor to a response. */
TRITONSERVER_Error *TRITONBACKEND_ResponseOutput(TRITONBACKEND_Response *response, TRITONBACKEND_Output **output,
                                                 const char *name, const TRITONSERVER_DataType datatype,
                                                 const int64_t *shape, const uint32_t dims_count);
/* The buffer of an output, of buffer_byte_size bytes (memory type in/out as for inputs). */
TRITONSERVER_Error *TRITONBACKEND_OutputBuffer(TRITONBACKEND_Output *output, void **buffer,
                                               const uint64_t buffer_byte_size,
                                               TRITONSERVER_MemoryType *memory_type, int64_t *memory_type_id);
/* Sends a response; error NULL for success, else the error (still the caller's to free).
 * The response belongs to Triton afterwards. */
TRITONSERVER_Error *TRITONBACKEND_ResponseSend(TRITONBACKEND_Response *response, const uint32_t send_flags,
                                               TRITONSERVER_Error *error);

/* ---- grefine's helpers (cmd/tritonbackend/helpers.c) ---- */

/* The steady clock in nanoseconds (CLOCK_MONOTONIC, the clock of
 * std::chrono::steady_clock on Linux), for the statistics' timestamps. */
uint64_t grf_triton_now_ns(void);

/* Re-installs the process's handlers of SIGINT, SIGTERM, SIGHUP and SIGQUIT with
 * SA_ONSTACK added, so that a signal arriving on a Go thread runs its (Triton's) handler
 * on the signal stack instead of a small goroutine stack. Handlers that are SIG_DFL,
 * SIG_IGN or already SA_ONSTACK are left alone. Returns how many of the four have a
 * handler (now with SA_ONSTACK), or -1 with a message in err on failure. */
int32_t grf_triton_signals_onstack(char *err, size_t errlen);

/* Triton's log, from Go: TRITONSERVER_LogMessage when the level is enabled. */
void grf_triton_log(TRITONSERVER_LogLevel level, const char *msg);

#ifdef __cplusplus
}
#endif

#endif /* GREFINE_TRITON_H */
