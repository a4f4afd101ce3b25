/*
 * ort_exec.c: runs emulated plans with ONNX Runtime's C API on the CPU (see emu.h).
 *
 * ONNX Runtime is dlopen'd on first use, so the emulator links only libc: the library is
 * $GRF_TRT_EMU_ORT, else $ONNXRUNTIME_SHARED_LIBRARY_PATH (tools/env.sh sets it), else
 * ../.deps/ort/libonnxruntime.so.1 beside the emulator (the repository layout), else
 * libonnxruntime.so.1 on the loader's path. The header is onnxruntime_c_api.h as the Go
 * module github.com/yalue/onnxruntime_go ships it (found by tools/trt-emu.sh; not
 * committed). Intra-op threads: $GRF_TRT_EMU_THREADS (default 1).
 */
#define _GNU_SOURCE
#include "emu.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnxruntime_c_api.h"

struct emu_model {
  OrtSession *session;
};

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static const OrtApi *g_ort;
static OrtEnv *g_env;
static OrtMemoryInfo *g_mem;
static const char *g_version;
static char g_init_err[1024];

static int32_t put(char *err, size_t errlen, int32_t status, const char *fmt, const char *a, const char *b) {
  if (err != NULL && errlen > 0) snprintf(err, errlen, fmt, a, b);
  return status;
}

/* status converts an OrtStatus into a message and releases it. */
static int32_t status(OrtStatus *s, const char *op, char *err, size_t errlen) {
  int32_t st;
  if (s == NULL) return GRF_TRT_OK;
  st = put(err, errlen, GRF_TRT_ERR_TRT, "onnxruntime %s: %s", op, g_ort->GetErrorMessage(s));
  g_ort->ReleaseStatus(s);
  return st;
}

static void *open_ort(void) {
  const char *env[] = {getenv("GRF_TRT_EMU_ORT"), getenv("ONNXRUNTIME_SHARED_LIBRARY_PATH")};
  Dl_info self;
  char path[4096];
  void *h;
  for (size_t i = 0; i < sizeof env / sizeof env[0]; i++) {
    if (env[i] != NULL && *env[i] != '\0') {
      if ((h = dlopen(env[i], RTLD_NOW | RTLD_LOCAL)) != NULL) return h;
      snprintf(g_init_err, sizeof g_init_err, "cannot load onnxruntime %s: %s", env[i], dlerror());
      return NULL;
    }
  }
  if (dladdr((void *)open_ort, &self) != 0 && self.dli_fname != NULL) {
    const char *slash = strrchr(self.dli_fname, '/');
    int n = slash != NULL ? (int)(slash - self.dli_fname) : 1;
    snprintf(path, sizeof path, "%.*s/../.deps/ort/libonnxruntime.so.1", n, slash != NULL ? self.dli_fname : ".");
    if ((h = dlopen(path, RTLD_NOW | RTLD_LOCAL)) != NULL) return h;
  }
  if ((h = dlopen("libonnxruntime.so.1", RTLD_NOW | RTLD_LOCAL)) != NULL) return h;
  snprintf(g_init_err, sizeof g_init_err,
           "onnxruntime not found (set GRF_TRT_EMU_ORT or ONNXRUNTIME_SHARED_LIBRARY_PATH, or run `make setup`): %s",
           dlerror());
  return NULL;
}

static void init(void) {
  typedef const OrtApiBase *(*base_fn)(void);
  void *h = open_ort();
  base_fn base;
  OrtStatus *s;
  if (h == NULL) return;
  *(void **)(&base) = dlsym(h, "OrtGetApiBase");
  if (base == NULL) {
    snprintf(g_init_err, sizeof g_init_err, "onnxruntime library lacks OrtGetApiBase");
    return;
  }
  g_ort = base()->GetApi(ORT_API_VERSION);
  if (g_ort == NULL) {
    snprintf(g_init_err, sizeof g_init_err, "onnxruntime %s does not offer C API version %d", base()->GetVersionString(),
             ORT_API_VERSION);
    return;
  }
  g_version = base()->GetVersionString();
  s = g_ort->CreateEnv(ORT_LOGGING_LEVEL_ERROR, "grefine-trt-emu", &g_env);
  if (s == NULL) s = g_ort->CreateCpuMemoryInfo(OrtDeviceAllocator, OrtMemTypeDefault, &g_mem);
  if (s != NULL) {
    snprintf(g_init_err, sizeof g_init_err, "onnxruntime init: %s", g_ort->GetErrorMessage(s));
    g_ort->ReleaseStatus(s);
    g_ort = NULL;
  }
}

static int32_t ready(char *err, size_t errlen) {
  pthread_once(&g_once, init);
  if (g_ort == NULL) return put(err, errlen, GRF_TRT_ERR_UNSUPPORTED, "%s%s", g_init_err, "");
  return GRF_TRT_OK;
}

int32_t emu_ort_version(const char **version, char *err, size_t errlen) {
  int32_t st = ready(err, errlen);
  if (st == GRF_TRT_OK) *version = g_version;
  return st;
}

static int32_t abi_dtype(ONNXTensorElementDataType t) {
  switch (t) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT: return GRF_TRT_DTYPE_FLOAT32;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16: return GRF_TRT_DTYPE_FLOAT16;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32: return GRF_TRT_DTYPE_INT32;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64: return GRF_TRT_DTYPE_INT64;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8: return GRF_TRT_DTYPE_UINT8;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL: return GRF_TRT_DTYPE_BOOL;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16: return GRF_TRT_DTYPE_BFLOAT16;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8: return GRF_TRT_DTYPE_INT8;
    default: return GRF_TRT_DTYPE_OTHER;
  }
}

static ONNXTensorElementDataType ort_dtype(int32_t t) {
  switch (t) {
    case GRF_TRT_DTYPE_FLOAT32: return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
    case GRF_TRT_DTYPE_FLOAT16: return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16;
    case GRF_TRT_DTYPE_INT32: return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32;
    case GRF_TRT_DTYPE_INT64: return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64;
    case GRF_TRT_DTYPE_UINT8: return ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8;
    case GRF_TRT_DTYPE_BOOL: return ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL;
    case GRF_TRT_DTYPE_BFLOAT16: return ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16;
    case GRF_TRT_DTYPE_INT8: return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8;
    default: return ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
  }
}

static size_t dtype_bytes(int32_t t) {
  switch (t) {
    case GRF_TRT_DTYPE_FLOAT32: case GRF_TRT_DTYPE_INT32: return 4;
    case GRF_TRT_DTYPE_INT64: return 8;
    case GRF_TRT_DTYPE_FLOAT16: case GRF_TRT_DTYPE_BFLOAT16: return 2;
    default: return 1;
  }
}

/* list_io describes input or output i of the session into io. */
static int32_t list_io(OrtSession *s, int input, size_t i, emu_io *io, char *err, size_t errlen) {
  OrtAllocator *alloc = NULL;
  OrtTypeInfo *ti = NULL;
  const OrtTensorTypeAndShapeInfo *tensor = NULL;
  ONNXTensorElementDataType et;
  char *name = NULL;
  size_t nb = 0;
  int32_t st;
  memset(io, 0, sizeof *io);
  io->mode = input ? GRF_TRT_MODE_INPUT : GRF_TRT_MODE_OUTPUT;
  if ((st = status(g_ort->GetAllocatorWithDefaultOptions(&alloc), "allocator", err, errlen)) != GRF_TRT_OK) return st;
  st = status(input ? g_ort->SessionGetInputName(s, i, alloc, &name) : g_ort->SessionGetOutputName(s, i, alloc, &name),
              "tensor name", err, errlen);
  if (st != GRF_TRT_OK) return st;
  if (strlen(name) >= sizeof io->name) st = put(err, errlen, GRF_TRT_ERR_UNSUPPORTED, "tensor name too long: %s%s", name, "");
  snprintf(io->name, sizeof io->name, "%s", name);
  {
    OrtStatus *fs = g_ort->AllocatorFree(alloc, name);
    if (fs != NULL) g_ort->ReleaseStatus(fs);
  }
  if (st != GRF_TRT_OK) return st;
  st = status(input ? g_ort->SessionGetInputTypeInfo(s, i, &ti) : g_ort->SessionGetOutputTypeInfo(s, i, &ti),
              "type info", err, errlen);
  if (st != GRF_TRT_OK) return st;
  st = status(g_ort->CastTypeInfoToTensorInfo(ti, &tensor), "tensor info", err, errlen);
  if (st == GRF_TRT_OK && tensor == NULL) st = put(err, errlen, GRF_TRT_ERR_DTYPE, "i/o %s is not a tensor%s", io->name, "");
  if (st == GRF_TRT_OK) st = status(g_ort->GetTensorElementType(tensor, &et), "element type", err, errlen);
  if (st == GRF_TRT_OK) st = status(g_ort->GetDimensionsCount(tensor, &nb), "rank", err, errlen);
  if (st == GRF_TRT_OK && nb > GRF_TRT_MAX_DIMS) st = put(err, errlen, GRF_TRT_ERR_SHAPE, "i/o %s has rank above 8%s", io->name, "");
  if (st == GRF_TRT_OK) st = status(g_ort->GetDimensions(tensor, io->dims, nb), "dims", err, errlen);
  if (st == GRF_TRT_OK) {
    io->dtype = abi_dtype(et);
    io->nb_dims = (int32_t)nb;
    for (size_t k = 0; k < nb; k++) {
      if (io->dims[k] < 0) io->dims[k] = -1; /* symbolic or unknown: dynamic */
    }
  }
  g_ort->ReleaseTypeInfo(ti);
  return st;
}

int32_t emu_model_open(const char *onnx_path, emu_model **out, emu_io *io, int max, int *nio, char *err,
                       size_t errlen) {
  OrtSessionOptions *so = NULL;
  emu_model *m;
  size_t nin = 0, nout = 0;
  const char *th = getenv("GRF_TRT_EMU_THREADS");
  int32_t st = ready(err, errlen);
  if (st != GRF_TRT_OK) return st;
  m = calloc(1, sizeof *m);
  if (m == NULL) return put(err, errlen, GRF_TRT_ERR_NOMEM, "out of memory%s%s", "", "");
  st = status(g_ort->CreateSessionOptions(&so), "session options", err, errlen);
  if (st == GRF_TRT_OK) st = status(g_ort->SetIntraOpNumThreads(so, th != NULL && *th ? atoi(th) : 1), "threads", err, errlen);
  if (st == GRF_TRT_OK) st = status(g_ort->SetInterOpNumThreads(so, 1), "threads", err, errlen);
  if (st == GRF_TRT_OK) {
    OrtStatus *s = g_ort->CreateSession(g_env, onnx_path, so, &m->session);
    if (s != NULL) {
      st = put(err, errlen, GRF_TRT_ERR_BUILD, "onnx parse of %s failed: %s", onnx_path, g_ort->GetErrorMessage(s));
      g_ort->ReleaseStatus(s);
    }
  }
  if (so != NULL) g_ort->ReleaseSessionOptions(so);
  if (st == GRF_TRT_OK) st = status(g_ort->SessionGetInputCount(m->session, &nin), "input count", err, errlen);
  if (st == GRF_TRT_OK) st = status(g_ort->SessionGetOutputCount(m->session, &nout), "output count", err, errlen);
  if (st == GRF_TRT_OK && (int)(nin + nout) > max) st = put(err, errlen, GRF_TRT_ERR_UNSUPPORTED, "%s has too many i/o tensors%s", onnx_path, "");
  for (size_t i = 0; st == GRF_TRT_OK && i < nin + nout; i++) {
    st = list_io(m->session, i < nin, i < nin ? i : i - nin, &io[i], err, errlen);
  }
  if (st != GRF_TRT_OK) {
    emu_model_close(m);
    return st;
  }
  *nio = (int)(nin + nout);
  *out = m;
  return GRF_TRT_OK;
}

void emu_model_close(emu_model *m) {
  if (m == NULL) return;
  if (m->session != NULL) g_ort->ReleaseSession(m->session);
  free(m);
}

/* wrap makes an OrtValue over t's host memory (not copied). */
static int32_t wrap(const emu_tensor *t, OrtValue **v, char *err, size_t errlen) {
  static char empty[8];
  size_t n = 1;
  ONNXTensorElementDataType et = ort_dtype(t->dtype);
  if (et == ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED) return put(err, errlen, GRF_TRT_ERR_DTYPE, "tensor %s: unsupported dtype%s", t->name, "");
  for (int32_t i = 0; i < t->nb_dims; i++) n *= (size_t)t->dims[i];
  return status(g_ort->CreateTensorWithDataAsOrtValue(g_mem, t->data != NULL ? t->data : empty, n * dtype_bytes(t->dtype),
                                                      t->dims, (size_t)t->nb_dims, et, v),
                "tensor", err, errlen);
}

int32_t emu_run(emu_model *m, const emu_tensor *in, int nin, emu_tensor *out, int nout, char *err, size_t errlen) {
  const char *in_names[EMU_MAX_IO] = {0}, *out_names[EMU_MAX_IO] = {0};
  OrtValue *iv[EMU_MAX_IO] = {0}, *ov[EMU_MAX_IO] = {0};
  int32_t st = GRF_TRT_OK;
  if (nin > EMU_MAX_IO || nout > EMU_MAX_IO) return put(err, errlen, GRF_TRT_ERR_INVALID, "too many tensors%s%s", "", "");
  for (int i = 0; st == GRF_TRT_OK && i < nin; i++) {
    in_names[i] = in[i].name;
    st = wrap(&in[i], &iv[i], err, errlen);
  }
  for (int i = 0; st == GRF_TRT_OK && i < nout; i++) {
    out_names[i] = out[i].name;
    if (out[i].data != NULL) st = wrap(&out[i], &ov[i], err, errlen);
  }
  if (st == GRF_TRT_OK) {
    st = status(g_ort->Run(m->session, NULL, in_names, (const OrtValue *const *)iv, (size_t)nin, out_names, (size_t)nout, ov),
                "run", err, errlen);
  }
  for (int i = 0; st == GRF_TRT_OK && i < nout; i++) {
    OrtTensorTypeAndShapeInfo *info = NULL;
    size_t nb = 0;
    st = status(g_ort->GetTensorTypeAndShape(ov[i], &info), "output shape", err, errlen);
    if (st == GRF_TRT_OK) st = status(g_ort->GetDimensionsCount(info, &nb), "output rank", err, errlen);
    if (st == GRF_TRT_OK && nb > GRF_TRT_MAX_DIMS) st = put(err, errlen, GRF_TRT_ERR_SHAPE, "output %s has rank above 8%s", out[i].name, "");
    if (st == GRF_TRT_OK) st = status(g_ort->GetDimensions(info, out[i].dims, nb), "output dims", err, errlen);
    if (st == GRF_TRT_OK) out[i].nb_dims = (int32_t)nb;
    if (info != NULL) g_ort->ReleaseTensorTypeAndShapeInfo(info);
  }
  for (int i = 0; i < nin; i++) {
    if (iv[i] != NULL) g_ort->ReleaseValue(iv[i]);
  }
  for (int i = 0; i < nout; i++) {
    if (ov[i] != NULL) g_ort->ReleaseValue(ov[i]);
  }
  return st;
}
