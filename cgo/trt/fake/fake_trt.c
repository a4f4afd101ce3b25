/*
 * fake_trt.c: a CPU-only implementation of the grefine_trt.h ABI. It needs no GPU and no
 * TensorRT: "device" memory is host memory, streams are tokens, and a plan is a small text
 * file. Built two ways:
 *
 *   - the fake (engine/trt/trttest builds it for tests): elementwise plans, for the Go
 *     side's code paths and error paths;
 *   - the emulator, libgrefine_trt_emu.so (`make trt-emu`: -DGRF_TRT_EMU plus
 *     cgo/trt/emu/ort_exec.c, linked to cuda-emu, libgrefine_cuda_emu.so): the builder
 *     turns a real ONNX file into a plan that names it. Its memory, streams and devices are
 *     cuda-emu's (the copy engine/cuda uses: one allocation table per process): buffers and
 *     scratch are emulated device memory the host cannot read, streams are cuda-emu
 *     streams (non-blocking, like the real shim's), and enqueue checks every bound address
 *     (a live allocation of the context's device, large enough) and queues the run on the
 *     stream: ONNX Runtime runs the plan on the allocations' private aliases when the
 *     stream is synchronised. It reports the emulated GPU (cuda-emu's name, compute
 *     capability and memory, emulated = 1) and TensorRT runtime version 0 ("emulator"),
 *     so its plans never pass for a real TensorRT's and vice versa. Destroying an engine
 *     or a context synchronises the device first (TensorRT frees device memory there).
 *
 * Fake plan format:
 *
 *   grefine-fake-plan 1
 *   # comments and blank lines are ignored
 *   input  NAME DTYPE DIMS               e.g. input x float32 -1,3,4   (-1: dynamic)
 *   output NAME DTYPE SRC SCALE BIAS     NAME = SRC*SCALE + BIAS elementwise, SRC's shape
 *   profile INDEX NAME MIN OPT MAX       e.g. profile 0 x 1,3,4 2,3,4 8,3,4
 *   memory INDEX BYTES                   scratch bytes profile INDEX needs
 *   build KEY=VALUE ...                  written by the fake builder, ignored on load
 *
 * Outputs of dtype float32 and int32 apply SCALE and BIAS; other dtypes copy bytes. The
 * fake builder reads an "onnx" file in the same format (profile and memory lines are
 * replaced by the builder's profiles) and returns the resulting plan text. Emulator plans
 * start with "grefine-emu-plan 1", name their model with "onnx ABSOLUTE-PATH", list
 * outputs as "output NAME DTYPE DIMS" and are checked against the ONNX file when loaded.
 *
 * Both check what TensorRT checks (profiles, shapes, addresses, scratch size, destroy
 * order, device indices) and one thing it cannot: enqueue stamps the scratch memory it was
 * given and fails if another context wrote to it before the run ended, which catches two
 * concurrently running contexts that share scratch.
 *
 * Environment knobs of the fake (read on every call, so tests can change them):
 * GRF_FAKE_TRT_VERSION (runtime TensorRT version as major*10000+minor*100+patch, default
 * 101600), GRF_FAKE_TRT_DEVICES (device count, default 1), GRF_FAKE_TRT_CC ("8.9"). The
 * emulator takes its devices from cuda-emu (GRF_CUDA_EMU_DEVICES, ...).
 * Build: cc -std=c11 -shared -fPIC -I cgo/include cgo/trt/fake/fake_trt.c -o libfake.so
 */
#define _GNU_SOURCE
/* The ABI functions are the only exported symbols when built with hidden visibility. */
#pragma GCC visibility push(default)
#include "grefine_trt.h"
#pragma GCC visibility pop

#include <limits.h>
#include <pthread.h>
#ifdef GRF_TRT_EMU
#include "../emu/emu.h"
#include "grefine_cuda_emu.h"
#endif

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAKE_MAX_IO 32
#define FAKE_MAX_PROFILES 8
#define FAKE_COMPILED_TRT 110100
#define FAKE_SHAPE_CACHE 16

/* ---- errors and logging --------------------------------------------------------------- */

static grf_trt_log_fn g_log_fn = NULL;
static int32_t g_log_max = GRF_TRT_LOG_WARNING;

static void logf_(int32_t sev, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  grf_trt_log_fn fn = __atomic_load_n(&g_log_fn, __ATOMIC_ACQUIRE);
  if (fn == NULL || sev > __atomic_load_n(&g_log_max, __ATOMIC_ACQUIRE)) return;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fn(sev, msg);
}

static int32_t fail(char *err, size_t errlen, int32_t status, const char *fmt, ...) {
  va_list ap;
  if (err != NULL && errlen > 0) {
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return status;
}

#define NEED(cond, msg) \
  do { \
    if (!(cond)) return fail(err, errlen, GRF_TRT_ERR_INVALID, "%s", msg); \
  } while (0)

#ifndef GRF_TRT_EMU
static int env_int(const char *name, int def) {
  const char *v = getenv(name);
  return v != NULL && *v != '\0' ? atoi(v) : def;
}
#endif

/* ---- types ---------------------------------------------------------------------------- */

typedef struct {
  int32_t nb;
  int64_t d[GRF_TRT_MAX_DIMS];
} dims_t;

typedef struct {
  char name[GRF_TRT_MAX_NAME];
  int32_t mode;
  int32_t dtype;
  dims_t dims;      /* inputs: declared shape with -1 */
  int src;          /* outputs: index of the source input */
  double scale, bias;
  int has_profile[FAKE_MAX_PROFILES];
  dims_t pmin[FAKE_MAX_PROFILES], popt[FAKE_MAX_PROFILES], pmax[FAKE_MAX_PROFILES];
} io_t;

typedef struct {
  int nio;
  io_t io[FAKE_MAX_IO];
  int nprofiles;
  int64_t memory[FAKE_MAX_PROFILES];
  char onnx[PATH_MAX]; /* emulator plans: the model file */
} plan_t;

struct grf_trt_runtime {
  int32_t device;
  int engines; /* atomic */
};

/* One memoised output-shape inference of an emulated engine: input shapes -> outputs. */
typedef struct {
  int used;
  dims_t in[FAKE_MAX_IO], out[FAKE_MAX_IO];
} shape_memo_t;

struct grf_trt_engine {
  grf_trt_runtime *owner;
  int32_t device;
  int contexts; /* atomic */
  plan_t plan;
#ifdef GRF_TRT_EMU
  emu_model *model;
  pthread_mutex_t memo_mu;
  shape_memo_t memo[FAKE_SHAPE_CACHE];
  int memo_next;
#endif
};

struct grf_trt_context {
  grf_trt_engine *owner;
  int profile;
  void *memory;
  int64_t memory_bytes;
  dims_t shape[FAKE_MAX_IO];
  int shape_set[FAKE_MAX_IO];
  void *addr[FAKE_MAX_IO];
  dims_t out_shape[FAKE_MAX_IO]; /* emulator: inferred output shapes, valid if out_known */
  int out_known;
  int captured; /* a "graph" for the current state exists */
};

struct grf_trt_buffer {
  int32_t device;
  void *ptr;
  int64_t bytes;
};

typedef struct {
  char name[GRF_TRT_MAX_NAME];
  dims_t mom[3];
} bprof_t;

struct grf_trt_builder {
  int32_t device;
  int nprofiles;
  int nshapes[FAKE_MAX_PROFILES];
  bprof_t shapes[FAKE_MAX_PROFILES][FAKE_MAX_IO];
  int32_t precision;
  int32_t strongly_typed;
  int64_t workspace;
  int32_t opt_level;
  char timing_cache[1024];
};

struct grf_trt_blob {
  char *data;
  size_t size;
};

static const char *dtype_names[] = {"", "float32", "float16", "int32", "int64", "uint8", "bool", "bfloat16", "int8", "fp8"};

static int32_t parse_dtype(const char *s) {
  for (int32_t i = 1; i < (int32_t)(sizeof dtype_names / sizeof dtype_names[0]); i++) {
    if (strcmp(s, dtype_names[i]) == 0) return i;
  }
  return 0;
}

static size_t dtype_size(int32_t dt) {
  switch (dt) {
    case GRF_TRT_DTYPE_FLOAT32: case GRF_TRT_DTYPE_INT32: return 4;
    case GRF_TRT_DTYPE_INT64: return 8;
    case GRF_TRT_DTYPE_FLOAT16: case GRF_TRT_DTYPE_BFLOAT16: return 2;
    default: return 1;
  }
}

static int parse_dims(const char *s, dims_t *out) {
  char buf[256];
  char *save = NULL;
  snprintf(buf, sizeof buf, "%s", s);
  out->nb = 0;
  if (strcmp(buf, "scalar") == 0) return 1;
  for (char *tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
    char *end = NULL;
    if (out->nb == GRF_TRT_MAX_DIMS) return 0;
    out->d[out->nb++] = strtoll(tok, &end, 10);
    if (end == tok || *end != '\0') return 0;
  }
  return out->nb > 0;
}

static void format_dims(const dims_t *d, char *buf, size_t n) {
  size_t k = 0;
  k += (size_t)snprintf(buf + k, n - k, "[");
  for (int i = 0; i < d->nb && k < n; i++) k += (size_t)snprintf(buf + k, n - k, i ? ",%lld" : "%lld", (long long)d->d[i]);
  if (k < n) snprintf(buf + k, n - k, "]");
}

static void write_dims(FILE *f, const dims_t *d) {
  if (d->nb == 0) fputs("scalar", f);
  for (int i = 0; i < d->nb; i++) fprintf(f, i ? ",%lld" : "%lld", (long long)d->d[i]);
}

static int find_io(const plan_t *p, const char *name) {
  for (int i = 0; i < p->nio; i++) {
    if (strcmp(p->io[i].name, name) == 0) return i;
  }
  return -1;
}

static int64_t numel(const dims_t *d) {
  int64_t n = 1;
  for (int i = 0; i < d->nb; i++) {
    if (d->d[i] < 0) return -1;
    n *= d->d[i];
  }
  return n;
}

/* parse_plan reads plan text. allow_no_profiles: the builder's "onnx" input. */
static int32_t parse_plan(const char *text, size_t size, plan_t *p, int allow_no_profiles, char *err, size_t errlen) {
  char *buf = malloc(size + 1);
  char *save = NULL;
  int lineno = 0, header = 0, emu = 0;
  int32_t st = GRF_TRT_OK;
  if (buf == NULL) return fail(err, errlen, GRF_TRT_ERR_NOMEM, "out of memory");
  memcpy(buf, text, size);
  buf[size] = '\0';
  memset(p, 0, sizeof *p);
  for (char *line = strtok_r(buf, "\n", &save); line != NULL && st == GRF_TRT_OK; line = strtok_r(NULL, "\n", &save)) {
    char kw[32] = "", a[GRF_TRT_MAX_NAME] = "", b[256] = "", c[256] = "", d[256] = "", e[256] = "";
    int n;
    lineno++;
    while (*line == ' ' || *line == '\t') line++;
    if (*line == '\0' || *line == '#' || *line == '\r') continue;
    n = sscanf(line, "%31s %255s %255s %255s %255s %255s", kw, a, b, c, d, e);
    if (!header) {
      emu = strcmp(kw, "grefine-emu-plan") == 0 && strcmp(a, "1") == 0;
      if (!emu && (strcmp(kw, "grefine-fake-plan") != 0 || strcmp(a, "1") != 0)) {
        st = fail(err, errlen, GRF_TRT_ERR_PLAN, "not a fake plan (missing \"grefine-fake-plan 1\" header)");
        break;
      }
#ifndef GRF_TRT_EMU
      if (emu) {
        st = fail(err, errlen, GRF_TRT_ERR_PLAN, "an emulator plan: load it with libgrefine_trt_emu.so");
        break;
      }
#endif
      header = 1;
      continue;
    }
    if (strcmp(kw, "onnx") == 0) {
      const char *path = line + 4;
      while (*path == ' ' || *path == '\t') path++;
      if (!emu || *path == '\0' || strlen(path) >= sizeof p->onnx) {
        st = fail(err, errlen, GRF_TRT_ERR_PLAN, "line %d: malformed onnx line", lineno);
        break;
      }
      snprintf(p->onnx, sizeof p->onnx, "%s", path);
      p->onnx[strcspn(p->onnx, "\r")] = '\0';
    } else if (strcmp(kw, "input") == 0 || strcmp(kw, "output") == 0) {
      io_t *io;
      int is_in = kw[0] == 'i';
      if ((is_in || emu) ? n != 4 : n != 6) {
        st = fail(err, errlen, GRF_TRT_ERR_PLAN, "line %d: malformed %s", lineno, kw);
        break;
      }
      if (p->nio == FAKE_MAX_IO || find_io(p, a) >= 0) {
        st = fail(err, errlen, GRF_TRT_ERR_PLAN, "line %d: too many or duplicate tensors", lineno);
        break;
      }
      io = &p->io[p->nio];
      snprintf(io->name, sizeof io->name, "%s", a);
      io->mode = is_in ? GRF_TRT_MODE_INPUT : GRF_TRT_MODE_OUTPUT;
      io->dtype = parse_dtype(b);
      if (io->dtype == 0) {
        st = fail(err, errlen, GRF_TRT_ERR_PLAN, "line %d: unknown dtype %s", lineno, b);
        break;
      }
      if (is_in || emu) {
        io->src = -1;
        if (!parse_dims(c, &io->dims)) {
          st = fail(err, errlen, GRF_TRT_ERR_PLAN, "line %d: bad dims %s", lineno, c);
          break;
        }
      } else {
        io->src = find_io(p, c);
        if (io->src < 0 || p->io[io->src].mode != GRF_TRT_MODE_INPUT) {
          st = fail(err, errlen, GRF_TRT_ERR_PLAN, "line %d: output source %s is not a declared input", lineno, c);
          break;
        }
        if (p->io[io->src].dtype != io->dtype) {
          st = fail(err, errlen, GRF_TRT_ERR_PLAN, "line %d: output %s and its source differ in dtype", lineno, a);
          break;
        }
        io->dims = p->io[io->src].dims;
        io->scale = atof(d);
        io->bias = atof(e);
      }
      p->nio++;
    } else if (strcmp(kw, "profile") == 0) {
      int idx = atoi(a), t;
      if (n != 6 || idx < 0 || idx >= FAKE_MAX_PROFILES) {
        st = fail(err, errlen, GRF_TRT_ERR_PLAN, "line %d: malformed profile", lineno);
        break;
      }
      t = find_io(p, b);
      if (t < 0 || p->io[t].mode != GRF_TRT_MODE_INPUT || !parse_dims(c, &p->io[t].pmin[idx]) ||
          !parse_dims(d, &p->io[t].popt[idx]) || !parse_dims(e, &p->io[t].pmax[idx])) {
        st = fail(err, errlen, GRF_TRT_ERR_PLAN, "line %d: bad profile for %s", lineno, b);
        break;
      }
      p->io[t].has_profile[idx] = 1;
      if (idx + 1 > p->nprofiles) p->nprofiles = idx + 1;
    } else if (strcmp(kw, "memory") == 0) {
      int idx = atoi(a);
      if (n != 3 || idx < 0 || idx >= FAKE_MAX_PROFILES) {
        st = fail(err, errlen, GRF_TRT_ERR_PLAN, "line %d: malformed memory", lineno);
        break;
      }
      p->memory[idx] = strtoll(b, NULL, 10);
    } else if (strcmp(kw, "build") != 0) {
      st = fail(err, errlen, GRF_TRT_ERR_PLAN, "line %d: unknown keyword %s", lineno, kw);
    }
  }
  free(buf);
  if (st != GRF_TRT_OK) return st;
  if (!header) return fail(err, errlen, GRF_TRT_ERR_PLAN, "empty plan");
  if (emu && p->onnx[0] == '\0') return fail(err, errlen, GRF_TRT_ERR_PLAN, "emulator plan without an onnx line");
  if (p->nprofiles == 0 && !allow_no_profiles) p->nprofiles = 1; /* static plan: implicit profile */
  for (int i = 0; i < p->nio; i++) {
    io_t *io = &p->io[i];
    if (io->mode != GRF_TRT_MODE_INPUT) continue;
    for (int k = 0; k < p->nprofiles; k++) {
      if (!io->has_profile[k]) {
        for (int j = 0; j < io->dims.nb; j++) {
          if (io->dims.d[j] < 0) return fail(err, errlen, GRF_TRT_ERR_PLAN, "input %s is dynamic but profile %d has no shape for it", io->name, k);
        }
        io->pmin[k] = io->popt[k] = io->pmax[k] = io->dims;
        io->has_profile[k] = 1;
      } else if (io->pmin[k].nb != io->dims.nb || io->popt[k].nb != io->dims.nb || io->pmax[k].nb != io->dims.nb) {
        return fail(err, errlen, GRF_TRT_ERR_PLAN, "profile %d rank for %s differs from the tensor", k, io->name);
      }
    }
  }
  return GRF_TRT_OK;
}

/* ---- process-wide --------------------------------------------------------------------- */

int32_t grf_trt_get_version(grf_trt_version_info *out, char *err, size_t errlen) {
  NEED(out != NULL, "get_version: out is null");
  out->abi = GRF_TRT_ABI_VERSION;
  out->compiled_trt = FAKE_COMPILED_TRT;
#ifdef GRF_TRT_EMU
  out->runtime_trt = 0; /* no TensorRT runs here: engine/trt names the runtime "emulator" */
#else
  out->runtime_trt = env_int("GRF_FAKE_TRT_VERSION", 101600);
#endif
  out->cuda_runtime = 0;
  return GRF_TRT_OK;
}

int32_t grf_trt_set_log_callback(grf_trt_log_fn fn, int32_t max_severity, char *err, size_t errlen) {
  NEED(max_severity >= GRF_TRT_LOG_INTERNAL_ERROR && max_severity <= GRF_TRT_LOG_VERBOSE,
       "set_log_callback: max_severity is not a GRF_TRT_LOG_* value");
  __atomic_store_n(&g_log_max, max_severity, __ATOMIC_RELEASE);
  __atomic_store_n(&g_log_fn, fn, __ATOMIC_RELEASE);
  return GRF_TRT_OK;
}

/* check_device fails unless device is a valid index (GRF_FAKE_TRT_DEVICES of them). */
static int32_t check_device(int32_t device, const char *op, char *err, size_t errlen) {
#ifdef GRF_TRT_EMU
  int n = 0, ce = 0;
  char msg[512] = "";
  if (grf_cuda_device_count(&n, &ce, msg, sizeof msg) != GRF_CUDA_OK) {
    return fail(err, errlen, GRF_TRT_ERR_CUDA, "%s: %s", op, msg);
  }
#else
  int n = env_int("GRF_FAKE_TRT_DEVICES", 1);
#endif
  if (device < 0 || device >= n) {
    return fail(err, errlen, GRF_TRT_ERR_CUDA, "%s: cudaSetDevice(%d): cudaErrorInvalidDevice: %d device(s) visible", op,
                device, n);
  }
  return GRF_TRT_OK;
}

#define NEED_DEVICE(dev, op) \
  do { \
    int32_t st_ = check_device((dev), (op), err, errlen); \
    if (st_ != GRF_TRT_OK) return st_; \
  } while (0)

int32_t grf_trt_get_device_info(int32_t device, grf_trt_device_info *out, char *err, size_t errlen) {
#ifdef GRF_TRT_EMU
  const char *ver = NULL;
  char msg[512] = "", name[200] = "";
  int n = 0, ce = 0, maj = 0, min = 0, sms = 0;
  size_t mem = 0;
  int32_t st;
  NEED(out != NULL, "get_device_info: out is null");
  memset(out, 0, sizeof *out);
  if ((st = emu_ort_version(&ver, err, errlen)) != GRF_TRT_OK) return st;
  if (grf_cuda_device_count(&n, &ce, msg, sizeof msg) != GRF_CUDA_OK) {
    if (ce == 100 && strstr(msg, "0 devices") != NULL) return GRF_TRT_OK; /* no device: count 0 */
    return fail(err, errlen, GRF_TRT_ERR_CUDA, "get_device_info: %s", msg);
  }
  out->count = n;
  NEED(device >= 0 && device < n, "get_device_info: device index out of range");
  if (grf_cuda_device_info(device, name, sizeof name, &maj, &min, &mem, &sms, msg, sizeof msg) != GRF_CUDA_OK) {
    return fail(err, errlen, GRF_TRT_ERR_CUDA, "get_device_info: %s", msg);
  }
  out->cc_major = maj;
  out->cc_minor = min;
  out->total_mem = (int64_t)mem;
  out->emulated = 1;
  snprintf(out->name, sizeof out->name, "%s; tensorrt emulator on onnxruntime %s", name, ver);
  return GRF_TRT_OK;
#else
  const char *cc = getenv("GRF_FAKE_TRT_CC");
  int maj = 8, min = 9;
  NEED(out != NULL, "get_device_info: out is null");
  memset(out, 0, sizeof *out);
  out->count = env_int("GRF_FAKE_TRT_DEVICES", 1);
  if (out->count == 0) return GRF_TRT_OK;
  NEED(device >= 0 && device < out->count, "get_device_info: device index out of range");
  out->total_mem = (int64_t)24 << 30;
  if (cc != NULL && *cc != '\0' && sscanf(cc, "%d.%d", &maj, &min) != 2) {
    return fail(err, errlen, GRF_TRT_ERR_INVALID, "GRF_FAKE_TRT_CC must look like 8.9");
  }
  out->cc_major = maj;
  out->cc_minor = min;
  snprintf(out->name, sizeof out->name, "fake gpu %d", device);
  return GRF_TRT_OK;
#endif
}

/* ---- streams and buffers -------------------------------------------------------------- */

#ifdef GRF_TRT_EMU
/* cuda_status converts a cuda-emu status into the ABI's. */
static int32_t cuda_status(int rc, const char *msg, char *err, size_t errlen) {
  int32_t st = GRF_TRT_ERR_CUDA;
  if (rc == GRF_CUDA_OK) return GRF_TRT_OK;
  if (rc == GRF_CUDA_ERR_INVALID) st = GRF_TRT_ERR_INVALID;
  if (rc == GRF_CUDA_ERR_INTERNAL) st = GRF_TRT_ERR_INTERNAL;
  if (strstr(msg, "cudaErrorMemoryAllocation") != NULL) st = GRF_TRT_ERR_NOMEM;
  return fail(err, errlen, st, "%s", msg);
}
#define CUDA_CALL(call) \
  do { \
    char m_[512] = ""; \
    int rc_ = (call); \
    if (rc_ != GRF_CUDA_OK) return cuda_status(rc_, m_, err, errlen); \
  } while (0)
#define M_ m_, sizeof m_
#endif

int32_t grf_trt_stream_create(int32_t device, void **stream, char *err, size_t errlen) {
  NEED(stream != NULL, "stream_create: out is null");
  NEED_DEVICE(device, "stream_create");
#ifdef GRF_TRT_EMU
  CUDA_CALL(grf_emu_stream_create(device, GRF_EMU_STREAM_NONBLOCKING, (grf_stream **)stream, M_));
  return GRF_TRT_OK;
#else
  *stream = malloc(1);
  return *stream ? GRF_TRT_OK : fail(err, errlen, GRF_TRT_ERR_NOMEM, "out of memory");
#endif
}

int32_t grf_trt_stream_destroy(void *stream, char *err, size_t errlen) {
#ifdef GRF_TRT_EMU
  CUDA_CALL(grf_cuda_stream_destroy((grf_stream *)stream, M_));
#else
  (void)err;
  (void)errlen;
  free(stream);
#endif
  return GRF_TRT_OK;
}

int32_t grf_trt_stream_synchronize(void *stream, char *err, size_t errlen) {
#ifdef GRF_TRT_EMU
  CUDA_CALL(grf_cuda_stream_sync((grf_stream *)stream, M_));
#else
  (void)stream;
  (void)err;
  (void)errlen;
#endif
  return GRF_TRT_OK;
}

int32_t grf_trt_buffer_create(int32_t device, int64_t bytes, grf_trt_buffer **out, char *err, size_t errlen) {
  grf_trt_buffer *b;
  NEED(out != NULL, "buffer_create: out is null");
  NEED(bytes >= 0, "buffer_create: negative size");
  NEED_DEVICE(device, "buffer_create");
  b = calloc(1, sizeof *b);
  if (b == NULL) return fail(err, errlen, GRF_TRT_ERR_NOMEM, "out of memory");
#ifdef GRF_TRT_EMU
  {
    char m_[512] = "";
    int rc = grf_emu_malloc(device, &b->ptr, (size_t)bytes, M_);
    if (rc != GRF_CUDA_OK) {
      free(b);
      return cuda_status(rc, m_, err, errlen);
    }
  }
#else
  if (bytes > 0 && (b->ptr = calloc(1, (size_t)bytes)) == NULL) {
    free(b);
    return fail(err, errlen, GRF_TRT_ERR_NOMEM, "cudaMalloc(%lld bytes): out of memory", (long long)bytes);
  }
#endif
  b->bytes = bytes;
  b->device = device;
  *out = b;
  return GRF_TRT_OK;
}

int32_t grf_trt_buffer_destroy(grf_trt_buffer *buf, char *err, size_t errlen) {
  if (buf == NULL) return GRF_TRT_OK;
#ifdef GRF_TRT_EMU
  {
    char m_[512] = "";
    int rc = grf_cuda_free(buf->ptr, M_); /* cudaFree: synchronises the device */
    free(buf);
    return cuda_status(rc, m_, err, errlen);
  }
#else
  (void)err;
  (void)errlen;
  free(buf->ptr);
  free(buf);
  return GRF_TRT_OK;
#endif
}

int32_t grf_trt_buffer_info(grf_trt_buffer *buf, void **ptr, int64_t *bytes, char *err, size_t errlen) {
  NEED(buf != NULL && ptr != NULL && bytes != NULL, "buffer_info: null argument");
  *ptr = buf->ptr;
  *bytes = buf->bytes;
  return GRF_TRT_OK;
}

static int32_t check_range(grf_trt_buffer *buf, int64_t off, int64_t n, const void *host, const char *op, char *err,
                           size_t errlen) {
  NEED(buf != NULL, op);
  if (off < 0 || n < 0 || off > buf->bytes || n > buf->bytes - off) {
    return fail(err, errlen, GRF_TRT_ERR_INVALID, "%s: range [%lld, +%lld) outside a buffer of %lld bytes", op,
                (long long)off, (long long)n, (long long)buf->bytes);
  }
  NEED(n == 0 || host != NULL, op);
  return GRF_TRT_OK;
}

int32_t grf_trt_buffer_upload(grf_trt_buffer *buf, int64_t offset, const void *src, int64_t bytes, void *stream,
                              char *err, size_t errlen) {
  int32_t st = check_range(buf, offset, bytes, src, "buffer_upload", err, errlen);
  if (st != GRF_TRT_OK || bytes == 0) return st;
#ifdef GRF_TRT_EMU
  CUDA_CALL(grf_cuda_memcpy_htod((char *)buf->ptr + offset, src, (size_t)bytes, (grf_stream *)stream, M_));
  /* The shim's ABI waits for the upload (the real shim syncs the stream after
   * cudaMemcpyAsync); grf_cuda_memcpy_htod queues it since grefine_cuda.h ABI 2. */
  CUDA_CALL(grf_cuda_stream_sync((grf_stream *)stream, M_));
#else
  (void)stream;
  memcpy((char *)buf->ptr + offset, src, (size_t)bytes);
#endif
  return GRF_TRT_OK;
}

int32_t grf_trt_buffer_download(grf_trt_buffer *buf, int64_t offset, void *dst, int64_t bytes, void *stream,
                                char *err, size_t errlen) {
  int32_t st = check_range(buf, offset, bytes, dst, "buffer_download", err, errlen);
  if (st != GRF_TRT_OK || bytes == 0) return st;
#ifdef GRF_TRT_EMU
  CUDA_CALL(grf_cuda_memcpy_dtoh(dst, (char *)buf->ptr + offset, (size_t)bytes, (grf_stream *)stream, M_));
#else
  (void)stream;
  memcpy(dst, (char *)buf->ptr + offset, (size_t)bytes);
#endif
  return GRF_TRT_OK;
}

#ifdef GRF_TRT_EMU
/* ---- emulator: ONNX Runtime execution ------------------------------------------------- */

/* emu_list opens the model and copies its I/O into p (outputs have no source). */
static int32_t emu_list(const char *onnx, plan_t *p, emu_model **model, char *err, size_t errlen) {
  emu_io io[FAKE_MAX_IO];
  int n = 0;
  int32_t st = emu_model_open(onnx, model, io, FAKE_MAX_IO, &n, err, errlen);
  if (st != GRF_TRT_OK) return st;
  p->nio = n;
  for (int i = 0; i < n; i++) {
    io_t *t = &p->io[i];
    if (io[i].dtype == GRF_TRT_DTYPE_OTHER) {
      emu_model_close(*model);
      *model = NULL;
      return fail(err, errlen, GRF_TRT_ERR_DTYPE, "%s: i/o tensor \"%s\" has a type the abi does not name", onnx, io[i].name);
    }
    memcpy(t->name, io[i].name, sizeof t->name);
    t->name[sizeof t->name - 1] = '\0';
    t->mode = io[i].mode;
    t->dtype = io[i].dtype;
    t->src = -1;
    t->dims.nb = io[i].nb_dims;
    memcpy(t->dims.d, io[i].dims, sizeof t->dims.d);
  }
  return GRF_TRT_OK;
}

/* emu_attach opens an emulated plan's model and checks that its I/O is still the plan's. */
static int32_t emu_attach(grf_trt_engine *e, char *err, size_t errlen) {
  plan_t now;
  int32_t st;
  memset(&now, 0, sizeof now);
  st = emu_list(e->plan.onnx, &now, &e->model, err, errlen);
  if (st != GRF_TRT_OK) return st == GRF_TRT_ERR_BUILD ? GRF_TRT_ERR_PLAN : st;
  for (int i = 0; st == GRF_TRT_OK && i < now.nio; i++) {
    int j = find_io(&e->plan, now.io[i].name);
    if (j < 0 || e->plan.io[j].mode != now.io[i].mode || e->plan.io[j].dtype != now.io[i].dtype ||
        e->plan.io[j].dims.nb != now.io[i].dims.nb ||
        memcmp(e->plan.io[j].dims.d, now.io[i].dims.d, sizeof(int64_t) * (size_t)now.io[i].dims.nb) != 0) {
      st = fail(err, errlen, GRF_TRT_ERR_PLAN, "%s no longer matches the plan (i/o tensor \"%s\" differs); rebuild it",
                e->plan.onnx, now.io[i].name);
    }
  }
  if (st == GRF_TRT_OK && now.nio != e->plan.nio) {
    st = fail(err, errlen, GRF_TRT_ERR_PLAN, "%s no longer matches the plan (%d i/o tensors, the plan has %d); rebuild it",
              e->plan.onnx, now.nio, e->plan.nio);
  }
  if (st != GRF_TRT_OK) {
    emu_model_close(e->model);
    e->model = NULL;
    return st;
  }
  pthread_mutex_init(&e->memo_mu, NULL);
  return GRF_TRT_OK;
}

/* emu_tensors describes the context's bound tensors for ort_exec (data: the addresses). */
static void emu_tensors(grf_trt_context *c, emu_tensor *in, int *nin, emu_tensor *out, int *nout, int zero_outputs) {
  const plan_t *p = &c->owner->plan;
  *nin = *nout = 0;
  for (int i = 0; i < p->nio; i++) {
    const io_t *io = &p->io[i];
    int is_in = io->mode == GRF_TRT_MODE_INPUT;
    emu_tensor *t = is_in ? &in[(*nin)++] : &out[(*nout)++];
    const dims_t *d = is_in ? &c->shape[i] : &c->out_shape[i];
    t->name = io->name;
    t->dtype = io->dtype;
    t->nb_dims = d->nb;
    memcpy(t->dims, d->d, sizeof t->dims);
    t->data = zero_outputs && !is_in ? NULL : c->addr[i];
  }
}

/* emu_output_shapes infers the output shapes for the context's input shapes: memoised per
 * engine, otherwise by one run of the model on zero-filled inputs of those shapes. */
static int32_t emu_output_shapes(grf_trt_context *c, char *err, size_t errlen) {
  grf_trt_engine *e = c->owner;
  const plan_t *p = &e->plan;
  emu_tensor in[FAKE_MAX_IO], out[FAKE_MAX_IO];
  void *zeros[FAKE_MAX_IO] = {0};
  int nin = 0, nout = 0, k = 0, hit = -1;
  int32_t st = GRF_TRT_OK;
  if (c->out_known) return GRF_TRT_OK;
  for (int i = 0; i < p->nio; i++) {
    if (p->io[i].mode == GRF_TRT_MODE_INPUT && !c->shape_set[i]) {
      return fail(err, errlen, GRF_TRT_ERR_SHAPE, "output shapes need every input shape set first");
    }
  }
  pthread_mutex_lock(&e->memo_mu);
  for (int m = 0; m < FAKE_SHAPE_CACHE && hit < 0; m++) {
    int same = e->memo[m].used;
    for (int i = 0; same && i < p->nio; i++) {
      if (p->io[i].mode == GRF_TRT_MODE_INPUT) same = memcmp(&e->memo[m].in[i], &c->shape[i], sizeof(dims_t)) == 0;
    }
    if (same) hit = m;
  }
  if (hit >= 0) memcpy(c->out_shape, e->memo[hit].out, sizeof c->out_shape);
  pthread_mutex_unlock(&e->memo_mu);
  if (hit >= 0) {
    c->out_known = 1;
    return GRF_TRT_OK;
  }
  emu_tensors(c, in, &nin, out, &nout, 1);
  for (int i = 0; i < nin && st == GRF_TRT_OK; i++) {
    int64_t n = numel(&c->shape[find_io(p, in[i].name)]);
    zeros[i] = calloc((size_t)(n > 0 ? n : 1), dtype_size(in[i].dtype));
    if (zeros[i] == NULL) st = fail(err, errlen, GRF_TRT_ERR_NOMEM, "out of memory");
    in[i].data = zeros[i];
  }
  if (st == GRF_TRT_OK) st = emu_run(e->model, in, nin, out, nout, err, errlen);
  for (int i = 0; i < nin; i++) free(zeros[i]);
  if (st != GRF_TRT_OK) return st;
  for (int i = 0; i < p->nio; i++) {
    if (p->io[i].mode != GRF_TRT_MODE_OUTPUT) continue;
    c->out_shape[i].nb = out[k].nb_dims;
    memcpy(c->out_shape[i].d, out[k].dims, sizeof c->out_shape[i].d);
    k++;
  }
  c->out_known = 1;
  pthread_mutex_lock(&e->memo_mu);
  hit = e->memo_next;
  e->memo_next = (e->memo_next + 1) % FAKE_SHAPE_CACHE;
  e->memo[hit].used = 1;
  memcpy(e->memo[hit].in, c->shape, sizeof e->memo[hit].in);
  memcpy(e->memo[hit].out, c->out_shape, sizeof e->memo[hit].out);
  pthread_mutex_unlock(&e->memo_mu);
  return GRF_TRT_OK;
}

#endif

/* ---- runtime and engines -------------------------------------------------------------- */

int32_t grf_trt_runtime_create(int32_t device, grf_trt_runtime **out, char *err, size_t errlen) {
  NEED(out != NULL, "runtime_create: out is null");
  NEED_DEVICE(device, "runtime_create");
  *out = calloc(1, sizeof **out);
  if (*out == NULL) return fail(err, errlen, GRF_TRT_ERR_NOMEM, "out of memory");
  (*out)->device = device;
  logf_(GRF_TRT_LOG_VERBOSE, "fake runtime created");
  return GRF_TRT_OK;
}

int32_t grf_trt_runtime_destroy(grf_trt_runtime *rt, char *err, size_t errlen) {
  if (rt == NULL) return GRF_TRT_OK;
  if (__atomic_load_n(&rt->engines, __ATOMIC_ACQUIRE) != 0) {
    return fail(err, errlen, GRF_TRT_ERR_INVALID, "runtime_destroy: %d engine(s) still open",
                __atomic_load_n(&rt->engines, __ATOMIC_ACQUIRE));
  }
  free(rt);
  return GRF_TRT_OK;
}

int32_t grf_trt_engine_deserialize(grf_trt_runtime *rt, const void *data, size_t size, grf_trt_engine **out,
                                   char *err, size_t errlen) {
  grf_trt_engine *e;
  int32_t st;
  NEED(rt != NULL && out != NULL, "engine_deserialize: null argument");
  if (data == NULL || size == 0) return fail(err, errlen, GRF_TRT_ERR_PLAN, "empty plan");
  e = calloc(1, sizeof *e);
  if (e == NULL) return fail(err, errlen, GRF_TRT_ERR_NOMEM, "out of memory");
  st = parse_plan(data, size, &e->plan, 0, err, errlen);
#ifdef GRF_TRT_EMU
  if (st == GRF_TRT_OK && e->plan.onnx[0] != '\0') st = emu_attach(e, err, errlen);
#endif
  if (st != GRF_TRT_OK) {
    logf_(GRF_TRT_LOG_ERROR, "fake: deserialization failed: %s", err != NULL ? err : "");
    free(e);
    return st;
  }
  e->owner = rt;
  e->device = rt->device;
  __atomic_add_fetch(&rt->engines, 1, __ATOMIC_ACQ_REL);
  logf_(GRF_TRT_LOG_INFO, "fake: loaded engine with %d i/o tensors and %d profile(s)", e->plan.nio, e->plan.nprofiles);
  *out = e;
  return GRF_TRT_OK;
}

int32_t grf_trt_engine_load_file(grf_trt_runtime *rt, const char *path, grf_trt_engine **out, char *err,
                                 size_t errlen) {
  FILE *f;
  char *buf;
  long n;
  int32_t st;
  NEED(rt != NULL && out != NULL && path != NULL, "engine_load_file: null argument");
  f = fopen(path, "rb");
  if (f == NULL) return fail(err, errlen, GRF_TRT_ERR_NOT_FOUND, "cannot open %s", path);
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  buf = malloc(n > 0 ? (size_t)n : 1);
  if (buf == NULL || (n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n)) {
    fclose(f);
    free(buf);
    return fail(err, errlen, GRF_TRT_ERR_NOT_FOUND, "cannot read %s", path);
  }
  fclose(f);
  st = grf_trt_engine_deserialize(rt, buf, (size_t)n, out, err, errlen);
  free(buf);
  return st;
}

int32_t grf_trt_engine_destroy(grf_trt_engine *eng, char *err, size_t errlen) {
  if (eng == NULL) return GRF_TRT_OK;
  if (__atomic_load_n(&eng->contexts, __ATOMIC_ACQUIRE) != 0) {
    return fail(err, errlen, GRF_TRT_ERR_INVALID, "engine_destroy: %d context(s) still open",
                __atomic_load_n(&eng->contexts, __ATOMIC_ACQUIRE));
  }
#ifdef GRF_TRT_EMU
  { /* TensorRT frees the engine's device memory: cudaFree synchronises the device, and
       queued runs use the engine's model */
    char m_[512] = "";
    int rc = grf_emu_device_sync(eng->device, M_);
    if (rc != GRF_CUDA_OK) return cuda_status(rc, m_, err, errlen);
  }
#endif
  __atomic_sub_fetch(&eng->owner->engines, 1, __ATOMIC_ACQ_REL);
#ifdef GRF_TRT_EMU
  emu_model_close(eng->model);
  if (eng->model != NULL) pthread_mutex_destroy(&eng->memo_mu);
#endif
  free(eng);
  return GRF_TRT_OK;
}

int32_t grf_trt_engine_num_io(grf_trt_engine *eng, int32_t *n, char *err, size_t errlen) {
  NEED(eng != NULL && n != NULL, "engine_num_io: null argument");
  *n = eng->plan.nio;
  return GRF_TRT_OK;
}

int32_t grf_trt_engine_io_info(grf_trt_engine *eng, int32_t index, grf_trt_tensor_info *out, char *err,
                               size_t errlen) {
  const io_t *io;
  NEED(eng != NULL && out != NULL, "engine_io_info: null argument");
  NEED(index >= 0 && index < eng->plan.nio, "engine_io_info: index out of range");
  io = &eng->plan.io[index];
  memset(out, 0, sizeof *out);
  snprintf(out->name, sizeof out->name, "%s", io->name);
  out->mode = io->mode;
  out->dtype = io->dtype;
  out->nb_dims = io->dims.nb;
  memcpy(out->dims, io->dims.d, sizeof out->dims);
  return GRF_TRT_OK;
}

int32_t grf_trt_engine_num_profiles(grf_trt_engine *eng, int32_t *n, char *err, size_t errlen) {
  NEED(eng != NULL && n != NULL, "engine_num_profiles: null argument");
  *n = eng->plan.nprofiles;
  return GRF_TRT_OK;
}

int32_t grf_trt_engine_profile_shape(grf_trt_engine *eng, const char *name, int32_t profile, grf_trt_profile_shape *out,
                                     char *err, size_t errlen) {
  int i;
  const io_t *io;
  NEED(eng != NULL && name != NULL && out != NULL, "engine_profile_shape: null argument");
  i = find_io(&eng->plan, name);
  if (i < 0) return fail(err, errlen, GRF_TRT_ERR_NOT_FOUND, "no i/o tensor named \"%s\"", name);
  io = &eng->plan.io[i];
  if (io->mode != GRF_TRT_MODE_INPUT) return fail(err, errlen, GRF_TRT_ERR_NOT_FOUND, "\"%s\" is not an input", name);
  if (profile < 0 || profile >= eng->plan.nprofiles) {
    return fail(err, errlen, GRF_TRT_ERR_INVALID, "profile %d out of range", profile);
  }
  memset(out, 0, sizeof *out);
  out->nb_dims = io->pmin[profile].nb;
  memcpy(out->min, io->pmin[profile].d, sizeof out->min);
  memcpy(out->opt, io->popt[profile].d, sizeof out->opt);
  memcpy(out->max, io->pmax[profile].d, sizeof out->max);
  return GRF_TRT_OK;
}

int32_t grf_trt_engine_device_memory_size(grf_trt_engine *eng, int32_t profile, int64_t *bytes, char *err,
                                          size_t errlen) {
  NEED(eng != NULL && bytes != NULL, "engine_device_memory_size: null argument");
  if (profile < -1 || profile >= eng->plan.nprofiles) {
    return fail(err, errlen, GRF_TRT_ERR_INVALID, "profile %d out of range", profile);
  }
  if (profile >= 0) {
    *bytes = eng->plan.memory[profile];
    return GRF_TRT_OK;
  }
  *bytes = 0;
  for (int k = 0; k < eng->plan.nprofiles; k++) {
    if (eng->plan.memory[k] > *bytes) *bytes = eng->plan.memory[k];
  }
  return GRF_TRT_OK;
}

/* ---- contexts ------------------------------------------------------------------------- */

static void reset_shapes(grf_trt_context *c) {
  const plan_t *p = &c->owner->plan;
  c->out_known = 0;
  for (int i = 0; i < p->nio; i++) {
    c->shape_set[i] = 0;
    if (p->io[i].mode != GRF_TRT_MODE_INPUT) continue;
    if (numel(&p->io[i].dims) >= 0) { /* static inputs need no shape call */
      c->shape[i] = p->io[i].dims;
      c->shape_set[i] = 1;
    }
  }
}

int32_t grf_trt_context_create(grf_trt_engine *eng, grf_trt_context **out, char *err, size_t errlen) {
  grf_trt_context *c;
  NEED(eng != NULL && out != NULL, "context_create: null argument");
  c = calloc(1, sizeof *c);
  if (c == NULL) return fail(err, errlen, GRF_TRT_ERR_NOMEM, "out of memory");
  c->owner = eng;
  c->memory_bytes = -1;
  reset_shapes(c);
  __atomic_add_fetch(&eng->contexts, 1, __ATOMIC_ACQ_REL);
  *out = c;
  return GRF_TRT_OK;
}

int32_t grf_trt_context_destroy(grf_trt_context *ctx, char *err, size_t errlen) {
  if (ctx == NULL) return GRF_TRT_OK;
#ifdef GRF_TRT_EMU
  CUDA_CALL(grf_emu_device_sync(ctx->owner->device, M_)); /* it frees device memory: cudaFree syncs */
#else
  (void)err;
  (void)errlen;
#endif
  __atomic_sub_fetch(&ctx->owner->contexts, 1, __ATOMIC_ACQ_REL);
  free(ctx);
  return GRF_TRT_OK;
}

int32_t grf_trt_context_set_device_memory(grf_trt_context *ctx, void *ptr, int64_t bytes, char *err, size_t errlen) {
  NEED(ctx != NULL, "context handle is null");
  NEED(bytes >= 0, "context_set_device_memory: negative size");
  NEED(ptr != NULL || bytes == 0, "context_set_device_memory: null memory");
  if (ptr == ctx->memory && bytes == ctx->memory_bytes) return GRF_TRT_OK;
  ctx->memory = ptr;
  ctx->memory_bytes = bytes;
  ctx->captured = 0;
  return GRF_TRT_OK;
}

int32_t grf_trt_context_set_profile(grf_trt_context *ctx, int32_t profile, void *stream, char *err, size_t errlen) {
  (void)stream;
  NEED(ctx != NULL, "context handle is null");
  if (profile < 0 || profile >= ctx->owner->plan.nprofiles) {
    return fail(err, errlen, GRF_TRT_ERR_INVALID, "profile %d out of range (engine has %d)", profile,
                ctx->owner->plan.nprofiles);
  }
  if (profile == ctx->profile) return GRF_TRT_OK;
  ctx->profile = profile;
  reset_shapes(ctx);
  ctx->captured = 0;
  return GRF_TRT_OK;
}

int32_t grf_trt_context_set_input_shape(grf_trt_context *ctx, const char *name, int32_t nb_dims, const int64_t *dims,
                                        char *err, size_t errlen) {
  int i, inside;
  const io_t *io;
  dims_t d;
  char got[128], lo[128], hi[128];
  NEED(ctx != NULL && name != NULL, "context_set_input_shape: null argument");
  i = find_io(&ctx->owner->plan, name);
  if (i < 0) return fail(err, errlen, GRF_TRT_ERR_NOT_FOUND, "no i/o tensor named \"%s\"", name);
  io = &ctx->owner->plan.io[i];
  if (io->mode != GRF_TRT_MODE_INPUT) return fail(err, errlen, GRF_TRT_ERR_NOT_FOUND, "\"%s\" is not an input", name);
  if (nb_dims < 0 || nb_dims > GRF_TRT_MAX_DIMS || (nb_dims > 0 && dims == NULL)) {
    return fail(err, errlen, GRF_TRT_ERR_SHAPE, "%s: bad rank %d", name, nb_dims);
  }
  memset(&d, 0, sizeof d);
  d.nb = nb_dims;
  for (int j = 0; j < nb_dims; j++) d.d[j] = dims[j];
  inside = d.nb == io->pmin[ctx->profile].nb;
  for (int j = 0; inside && j < d.nb; j++) {
    inside = io->pmin[ctx->profile].d[j] <= d.d[j] && d.d[j] <= io->pmax[ctx->profile].d[j];
  }
  if (!inside) {
    format_dims(&d, got, sizeof got);
    format_dims(&io->pmin[ctx->profile], lo, sizeof lo);
    format_dims(&io->pmax[ctx->profile], hi, sizeof hi);
    return fail(err, errlen, GRF_TRT_ERR_SHAPE, "input \"%s\" shape %s is outside profile %d %s..%s", name, got,
                ctx->profile, lo, hi);
  }
  if (ctx->shape_set[i] && memcmp(&ctx->shape[i], &d, sizeof d) == 0) return GRF_TRT_OK;
  ctx->shape[i] = d;
  ctx->shape_set[i] = 1;
  ctx->out_known = 0;
  ctx->captured = 0;
  return GRF_TRT_OK;
}

int32_t grf_trt_context_set_tensor_address(grf_trt_context *ctx, const char *name, void *ptr, char *err, size_t errlen) {
  int i;
  NEED(ctx != NULL && name != NULL, "context_set_tensor_address: null argument");
  i = find_io(&ctx->owner->plan, name);
  if (i < 0) return fail(err, errlen, GRF_TRT_ERR_NOT_FOUND, "no i/o tensor named \"%s\"", name);
  if (ctx->addr[i] == ptr) return GRF_TRT_OK;
  ctx->addr[i] = ptr;
  ctx->captured = 0;
  return GRF_TRT_OK;
}

int32_t grf_trt_context_tensor_shape(grf_trt_context *ctx, const char *name, int32_t *nb_dims, int64_t *dims,
                                     char *err, size_t errlen) {
  int i, src;
  const dims_t *d;
  NEED(ctx != NULL && name != NULL && nb_dims != NULL && dims != NULL, "context_tensor_shape: null argument");
  i = find_io(&ctx->owner->plan, name);
  if (i < 0) return fail(err, errlen, GRF_TRT_ERR_NOT_FOUND, "no i/o tensor named \"%s\"", name);
  src = ctx->owner->plan.io[i].mode == GRF_TRT_MODE_INPUT ? i : ctx->owner->plan.io[i].src;
#ifdef GRF_TRT_EMU
  if (src < 0) { /* an emulated output: its shape comes from running the model */
    int32_t st = emu_output_shapes(ctx, err, errlen);
    if (st != GRF_TRT_OK) return st;
    d = &ctx->out_shape[i];
    *nb_dims = d->nb;
    for (int j = 0; j < GRF_TRT_MAX_DIMS; j++) dims[j] = j < d->nb ? d->d[j] : 0;
    return GRF_TRT_OK;
  }
#endif
  if (!ctx->shape_set[src]) {
    d = &ctx->owner->plan.io[src].dims; /* unknown yet: -1 where dynamic, like TensorRT */
  } else {
    d = &ctx->shape[src];
  }
  *nb_dims = d->nb;
  for (int j = 0; j < GRF_TRT_MAX_DIMS; j++) dims[j] = j < d->nb ? d->d[j] : 0;
  return GRF_TRT_OK;
}

/* stamp_scratch fills the scratch a run uses with a pattern unique to this run; the
 * pattern is checked when the run ends (scratch_intact). */
static uint64_t stamp_scratch(void *mem, int64_t need, uintptr_t ctx) {
  static uint64_t runs;
  uint64_t v = ((uint64_t)ctx << 16) ^ __atomic_add_fetch(&runs, 1, __ATOMIC_RELAXED) ^ 0x9E3779B97F4A7C15ull;
  uint64_t *w = mem;
  for (int64_t k = 0; k < need / 8; k++) w[k] = v;
  memset((char *)mem + need / 8 * 8, (int)(v & 0xFF), (size_t)(need % 8));
  return v;
}

static int scratch_intact(const void *mem, int64_t need, uint64_t v) {
  const uint64_t *w = mem;
  for (int64_t k = 0; k < need / 8; k++) {
    if (w[k] != v) return 0;
  }
  for (int64_t k = need / 8 * 8; k < need; k++) {
    if (((const unsigned char *)mem)[k] != (unsigned char)(v & 0xFF)) return 0;
  }
  return 1;
}

#define SCRATCH_RACE_MSG \
  "enqueue: scratch memory was written by another context while this one ran (contexts that run " \
  "concurrently need separate scratch)"

/* output_elems is the element count of output i under the context's shapes. */
static int64_t output_elems(const grf_trt_context *c, int i) {
  const io_t *io = &c->owner->plan.io[i];
  if (io->src >= 0) return numel(&c->shape[io->src]);
  return c->out_known ? numel(&c->out_shape[i]) : -1;
}

/* elementwise runs a fake plan: every output is SRC*SCALE + BIAS of its source input.
 * shapes are the inputs' shapes, ptrs the tensors' memory. */
static void elementwise(const plan_t *p, const dims_t *shapes, void *const *ptrs) {
  for (int i = 0; i < p->nio; i++) {
    const io_t *io = &p->io[i];
    int64_t n;
    if (io->mode != GRF_TRT_MODE_OUTPUT) continue;
    n = numel(&shapes[io->src]);
    if (io->dtype == GRF_TRT_DTYPE_FLOAT32) {
      const float *in = ptrs[io->src];
      float *out = ptrs[i];
      for (int64_t k = 0; k < n; k++) out[k] = (float)(in[k] * io->scale + io->bias);
    } else if (io->dtype == GRF_TRT_DTYPE_INT32) {
      const int32_t *in = ptrs[io->src];
      int32_t *out = ptrs[i];
      for (int64_t k = 0; k < n; k++) out[k] = (int32_t)(in[k] * io->scale + io->bias);
    } else if (n > 0) {
      memmove(ptrs[i], ptrs[io->src], (size_t)n * dtype_size(io->dtype));
    }
  }
}

#ifdef GRF_TRT_EMU
/* emu_job is one queued engine run: what it needs besides the bound memory (the engine,
 * and so its plan and model, outlives it: destroying an engine synchronises the device). */
typedef struct {
  const plan_t *plan;
  emu_model *model; /* NULL: a fake (elementwise) plan */
  dims_t shape[FAKE_MAX_IO]; /* inputs: the set shapes; outputs: the inferred ones */
  int64_t need;              /* scratch bytes, stamped and checked */
  uintptr_t ctx;
} emu_job;

/* emu_job_run runs a queued engine run on the allocations' aliases (args: the I/O tensors in
 * plan order, then the scratch). */
static int emu_job_run(void *user, const grf_emu_arg *a, int nargs, char *err, size_t errlen) {
  const emu_job *j = user;
  const plan_t *p = j->plan;
  void *ptrs[FAKE_MAX_IO];
  uint64_t stamp = 0;
  int32_t st = GRF_TRT_OK;
  (void)nargs;
  for (int i = 0; i < p->nio; i++) ptrs[i] = a[i].alias;
  if (j->need > 0) stamp = stamp_scratch(a[p->nio].alias, j->need, j->ctx);
  if (j->model != NULL) {
    emu_tensor in[FAKE_MAX_IO], out[FAKE_MAX_IO];
    int nin = 0, nout = 0;
    for (int i = 0; i < p->nio; i++) {
      int is_in = p->io[i].mode == GRF_TRT_MODE_INPUT;
      emu_tensor *t = is_in ? &in[nin++] : &out[nout++];
      t->name = p->io[i].name;
      t->dtype = p->io[i].dtype;
      t->nb_dims = j->shape[i].nb;
      memcpy(t->dims, j->shape[i].d, sizeof t->dims);
      t->data = ptrs[i];
    }
    st = emu_run(j->model, in, nin, out, nout, err, errlen);
  } else {
    elementwise(p, j->shape, ptrs);
  }
  if (st != GRF_TRT_OK) return GRF_CUDA_ERR_CUDA;
  if (j->need > 0 && !scratch_intact(a[p->nio].alias, j->need, stamp)) {
    logf_(GRF_TRT_LOG_ERROR, "emulator: scratch memory was written by another context during an enqueue");
    return fail(err, errlen, GRF_CUDA_ERR_CUDA, SCRATCH_RACE_MSG);
  }
  return GRF_CUDA_OK;
}

/* emu_launch queues context c's run on stream: every bound address must lie in a live
 * allocation of the context's device, large enough for its tensor. */
static int32_t emu_launch(grf_trt_context *c, void *stream, int64_t need, char *err, size_t errlen) {
  const plan_t *p = &c->owner->plan;
  grf_emu_arg args[FAKE_MAX_IO + 1];
  emu_job j;
  char msg[512] = "";
  int rc;
  memset(&j, 0, sizeof j);
  j.plan = p;
  j.model = c->owner->model;
  j.need = need;
  j.ctx = (uintptr_t)c;
  for (int i = 0; i < p->nio; i++) {
    int is_in = p->io[i].mode == GRF_TRT_MODE_INPUT;
    int64_t n = is_in ? numel(&c->shape[i]) : output_elems(c, i);
    size_t bytes = (size_t)(n > 0 ? n : 0) * dtype_size(p->io[i].dtype);
    j.shape[i] = is_in || p->io[i].src >= 0 ? c->shape[is_in ? i : p->io[i].src] : c->out_shape[i];
    args[i].name = p->io[i].name;
    args[i].ptr = bytes > 0 ? c->addr[i] : NULL; /* an empty tensor's address is never read */
    args[i].bytes = bytes;
  }
  args[p->nio].name = "scratch";
  args[p->nio].ptr = need > 0 ? c->memory : NULL;
  args[p->nio].bytes = (size_t)(need > 0 ? need : 0);
  rc = grf_emu_launch((grf_stream *)stream, c->owner->device, "tensorrt enqueueV3", args, p->nio + 1, emu_job_run, &j,
                      sizeof j, NULL, msg, sizeof msg);
  if (rc != GRF_CUDA_OK) {
    logf_(GRF_TRT_LOG_ERROR, "emulator: enqueueV3 failed: %s", msg);
    return cuda_status(rc, msg, err, errlen);
  }
  return GRF_TRT_OK;
}
#endif

static int32_t run(grf_trt_context *c, void *stream, char *err, size_t errlen) {
  const plan_t *p = &c->owner->plan;
  int64_t need = p->memory[c->profile];
  int32_t st = GRF_TRT_OK;
  if (need > 0 && c->memory_bytes < need) {
    return fail(err, errlen, GRF_TRT_ERR_INVALID, "scratch memory %lld bytes, profile %d needs %lld",
                (long long)(c->memory_bytes < 0 ? 0 : c->memory_bytes), c->profile, (long long)need);
  }
  for (int i = 0; i < p->nio; i++) {
    if (p->io[i].mode == GRF_TRT_MODE_INPUT && !c->shape_set[i]) {
      return fail(err, errlen, GRF_TRT_ERR_SHAPE, "not every input shape is set");
    }
  }
#ifdef GRF_TRT_EMU
  if (c->owner->model != NULL && (st = emu_output_shapes(c, err, errlen)) != GRF_TRT_OK) return st;
#endif
  for (int i = 0; i < p->nio; i++) {
    int64_t n = p->io[i].mode == GRF_TRT_MODE_INPUT ? numel(&c->shape[i]) : output_elems(c, i);
    if (c->addr[i] == NULL && n != 0) {
      logf_(GRF_TRT_LOG_ERROR, "fake: tensor \"%s\" has no address", p->io[i].name);
      return fail(err, errlen, GRF_TRT_ERR_TRT, "enqueueV3 failed: tensor \"%s\" has no address", p->io[i].name);
    }
  }
#ifdef GRF_TRT_EMU
  return emu_launch(c, stream, need, err, errlen);
#else
  {
    uint64_t stamp = 0;
    (void)stream; /* the fake runs at once: its "device" memory is host memory */
    if (need > 0) stamp = stamp_scratch(c->memory, need, (uintptr_t)c); /* exactly the scratch it asked for */
    elementwise(p, c->shape, c->addr);
    if (need > 0 && !scratch_intact(c->memory, need, stamp)) {
      logf_(GRF_TRT_LOG_ERROR, "fake: scratch memory %p was written by another context during this enqueue", c->memory);
      return fail(err, errlen, GRF_TRT_ERR_CUDA, SCRATCH_RACE_MSG);
    }
    return st;
  }
#endif
}

int32_t grf_trt_context_enqueue(grf_trt_context *ctx, void *stream, char *err, size_t errlen) {
  NEED(ctx != NULL, "context handle is null");
  return run(ctx, stream, err, errlen);
}

int32_t grf_trt_context_enqueue_graph(grf_trt_context *ctx, void *stream, int32_t *replayed, char *err, size_t errlen) {
  int32_t st;
  NEED(ctx != NULL && replayed != NULL, "context_enqueue_graph: null argument");
  NEED(stream != NULL, "context_enqueue_graph: cuda graphs need an explicit stream");
  *replayed = ctx->captured;
  st = run(ctx, stream, err, errlen);
  if (st == GRF_TRT_OK) ctx->captured = 1;
  return st;
}

/* ---- builder -------------------------------------------------------------------------- */

int32_t grf_trt_builder_create(int32_t device, grf_trt_builder **out, char *err, size_t errlen) {
  NEED(out != NULL, "builder_create: out is null");
  NEED_DEVICE(device, "builder_create");
  *out = calloc(1, sizeof **out);
  if (*out == NULL) return fail(err, errlen, GRF_TRT_ERR_NOMEM, "out of memory");
  (*out)->device = device;
  (*out)->precision = GRF_TRT_PRECISION_FP32;
  (*out)->opt_level = -1;
  return GRF_TRT_OK;
}

int32_t grf_trt_builder_destroy(grf_trt_builder *b, char *err, size_t errlen) {
  (void)err;
  (void)errlen;
  free(b);
  return GRF_TRT_OK;
}

int32_t grf_trt_builder_add_profile(grf_trt_builder *b, int32_t *index, char *err, size_t errlen) {
  NEED(b != NULL && index != NULL, "builder_add_profile: null argument");
  if (b->nprofiles == FAKE_MAX_PROFILES) return fail(err, errlen, GRF_TRT_ERR_UNSUPPORTED, "too many profiles");
  *index = b->nprofiles++;
  return GRF_TRT_OK;
}

int32_t grf_trt_builder_set_profile_shape(grf_trt_builder *b, int32_t profile, const char *name, int32_t nb_dims,
                                          const int64_t *min, const int64_t *opt, const int64_t *max, char *err,
                                          size_t errlen) {
  bprof_t *s;
  NEED(b != NULL && name != NULL && *name != '\0', "builder_set_profile_shape: null argument");
  if (profile < 0 || profile >= b->nprofiles) {
    return fail(err, errlen, GRF_TRT_ERR_INVALID, "builder_set_profile_shape: no profile %d", profile);
  }
  if (nb_dims < 0 || nb_dims > GRF_TRT_MAX_DIMS || (nb_dims > 0 && (!min || !opt || !max))) {
    return fail(err, errlen, GRF_TRT_ERR_SHAPE, "input \"%s\": bad rank %d", name, nb_dims);
  }
  if (b->nshapes[profile] == FAKE_MAX_IO) return fail(err, errlen, GRF_TRT_ERR_UNSUPPORTED, "too many inputs");
  s = &b->shapes[profile][b->nshapes[profile]++];
  memset(s, 0, sizeof *s);
  snprintf(s->name, sizeof s->name, "%s", name);
  for (int k = 0; k < 3; k++) s->mom[k].nb = nb_dims;
  for (int32_t i = 0; i < nb_dims; i++) {
    if (!(0 < min[i] && min[i] <= opt[i] && opt[i] <= max[i])) {
      b->nshapes[profile]--;
      return fail(err, errlen, GRF_TRT_ERR_SHAPE, "input \"%s\" dim %d: need 0 < min <= opt <= max", name, i);
    }
    s->mom[0].d[i] = min[i];
    s->mom[1].d[i] = opt[i];
    s->mom[2].d[i] = max[i];
  }
  return GRF_TRT_OK;
}

int32_t grf_trt_builder_set_precision(grf_trt_builder *b, int32_t precision, char *err, size_t errlen) {
  NEED(b != NULL, "builder handle is null");
  NEED(precision >= GRF_TRT_PRECISION_FP32 && precision <= GRF_TRT_PRECISION_BF16,
       "builder_set_precision: not a GRF_TRT_PRECISION_* value");
  b->precision = precision;
  return GRF_TRT_OK;
}

int32_t grf_trt_builder_set_strongly_typed(grf_trt_builder *b, int32_t on, char *err, size_t errlen) {
  NEED(b != NULL, "builder handle is null");
  b->strongly_typed = on != 0;
  return GRF_TRT_OK;
}

int32_t grf_trt_builder_set_workspace(grf_trt_builder *b, int64_t bytes, char *err, size_t errlen) {
  NEED(b != NULL && bytes >= 0, "builder_set_workspace: bad argument");
  b->workspace = bytes;
  return GRF_TRT_OK;
}

int32_t grf_trt_builder_set_optimization_level(grf_trt_builder *b, int32_t level, char *err, size_t errlen) {
  NEED(b != NULL && level >= -1 && level <= 5, "builder_set_optimization_level: level not in -1..5");
  b->opt_level = level;
  return GRF_TRT_OK;
}

int32_t grf_trt_builder_set_timing_cache(grf_trt_builder *b, const char *path, char *err, size_t errlen) {
  NEED(b != NULL, "builder handle is null");
  snprintf(b->timing_cache, sizeof b->timing_cache, "%s", path != NULL ? path : "");
  return GRF_TRT_OK;
}

static char *read_all(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  char *buf;
  long n;
  if (f == NULL) return NULL;
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  buf = malloc((size_t)(n > 0 ? n : 0) + 1);
  if (buf != NULL && n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  if (buf != NULL) {
    buf[n > 0 ? n : 0] = '\0';
    *size = (size_t)(n > 0 ? n : 0);
  }
  return buf;
}

/* timing cache: "fake-timing-cache N" where N counts the builds that used it. */
static int32_t touch_timing_cache(const char *path, char *err, size_t errlen) {
  size_t n = 0;
  long builds = 0;
  char tmp[1100];
  char *old = read_all(path, &n);
  FILE *f;
  if (old != NULL) {
    int ok = sscanf(old, "fake-timing-cache %ld", &builds) == 1;
    free(old);
    if (!ok) return fail(err, errlen, GRF_TRT_ERR_BUILD, "timing cache %s does not load", path);
  }
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  f = fopen(tmp, "wb");
  if (f == NULL) return fail(err, errlen, GRF_TRT_ERR_NOT_FOUND, "cannot create %s", tmp);
  fprintf(f, "fake-timing-cache %ld\n", builds + 1);
  fclose(f);
  if (rename(tmp, path) != 0) return fail(err, errlen, GRF_TRT_ERR_NOT_FOUND, "cannot rename %s", tmp);
  return GRF_TRT_OK;
}

int32_t grf_trt_builder_build(grf_trt_builder *b, const char *onnx_path, grf_trt_blob **out, char *err,
                              size_t errlen) {
  static const char *prec[] = {"", "fp32", "fp16", "bf16"};
  plan_t p;
  size_t n = 0;
  char *src, *text = NULL;
  size_t tlen = 0;
  FILE *f;
  int32_t st;
  int emu = 0;
  char real[PATH_MAX] = "";
  NEED(b != NULL && onnx_path != NULL && out != NULL, "builder_build: null argument");
  NEED_DEVICE(b->device, "builder_build");
  src = read_all(onnx_path, &n);
  if (src == NULL) return fail(err, errlen, GRF_TRT_ERR_NOT_FOUND, "cannot open onnx file %s", onnx_path);
#ifdef GRF_TRT_EMU
  emu = strncmp(src, "grefine-fake-plan", 17) != 0; /* a real onnx file */
#endif
  if (!emu) {
    st = parse_plan(src, n, &p, 1, err, errlen);
  } else {
#ifdef GRF_TRT_EMU
    emu_model *m = NULL;
    memset(&p, 0, sizeof p);
    st = realpath(onnx_path, real) != NULL ? GRF_TRT_OK : fail(err, errlen, GRF_TRT_ERR_NOT_FOUND, "cannot resolve %s", onnx_path);
    if (st == GRF_TRT_OK) st = emu_list(real, &p, &m, err, errlen);
    emu_model_close(m);
    if (st != GRF_TRT_OK) {
      free(src);
      return st;
    }
#endif
  }
  free(src);
  if (st != GRF_TRT_OK) {
    char msg[GRF_TRT_ERRLEN];
    snprintf(msg, sizeof msg, "%s", err != NULL ? err : "");
    return fail(err, errlen, GRF_TRT_ERR_BUILD, "onnx parse of %s failed: %s", onnx_path, msg);
  }
  if (b->nprofiles == 0) return fail(err, errlen, GRF_TRT_ERR_BUILD, "no optimisation profile");
  for (int k = 0; k < b->nprofiles; k++) {
    for (int s = 0; s < b->nshapes[k]; s++) {
      int i = find_io(&p, b->shapes[k][s].name);
      if (i < 0 || p.io[i].mode != GRF_TRT_MODE_INPUT) {
        return fail(err, errlen, GRF_TRT_ERR_NOT_FOUND, "profile %d names input \"%s\", which the onnx does not have",
                    k, b->shapes[k][s].name);
      }
      if (b->shapes[k][s].mom[0].nb != p.io[i].dims.nb) {
        return fail(err, errlen, GRF_TRT_ERR_SHAPE, "profile %d input \"%s\": rank %d, the onnx has %d", k,
                    b->shapes[k][s].name, b->shapes[k][s].mom[0].nb, p.io[i].dims.nb);
      }
      for (int j = 0; j < p.io[i].dims.nb; j++) {
        int64_t fixed = p.io[i].dims.d[j];
        if (fixed >= 0 && (b->shapes[k][s].mom[0].d[j] != fixed || b->shapes[k][s].mom[2].d[j] != fixed)) {
          return fail(err, errlen, GRF_TRT_ERR_SHAPE, "profile %d input \"%s\" dim %d: the onnx fixes it to %lld", k,
                      b->shapes[k][s].name, j, (long long)fixed);
        }
      }
    }
  }
  if (b->timing_cache[0] != '\0' && (st = touch_timing_cache(b->timing_cache, err, errlen)) != GRF_TRT_OK) return st;
  logf_(GRF_TRT_LOG_INFO, "fake: building %s with %d profile(s), precision %s", onnx_path, b->nprofiles,
        prec[b->precision]);

  f = open_memstream(&text, &tlen);
  if (f == NULL) return fail(err, errlen, GRF_TRT_ERR_NOMEM, "out of memory");
  fprintf(f, emu ? "grefine-emu-plan 1\nonnx %s\n" : "grefine-fake-plan 1\n%s", real);
  fprintf(f, "build precision=%s strongly_typed=%d workspace=%lld opt_level=%d\n", prec[b->precision],
          b->strongly_typed, (long long)b->workspace, b->opt_level);
  for (int i = 0; i < p.nio; i++) {
    const io_t *io = &p.io[i];
    if (io->mode == GRF_TRT_MODE_INPUT) {
      fprintf(f, "input %s %s ", io->name, dtype_names[io->dtype]);
      write_dims(f, &io->dims);
      fputc('\n', f);
    } else if (emu) {
      fprintf(f, "output %s %s ", io->name, dtype_names[io->dtype]);
      write_dims(f, &io->dims);
      fputc('\n', f);
    } else {
      fprintf(f, "output %s %s %s %.17g %.17g\n", io->name, dtype_names[io->dtype], p.io[io->src].name, io->scale,
              io->bias);
    }
  }
  for (int k = 0; k < b->nprofiles; k++) {
    int64_t mem = 0;
    for (int s = 0; s < b->nshapes[k]; s++) {
      const bprof_t *sh = &b->shapes[k][s];
      fprintf(f, "profile %d %s ", k, sh->name);
      write_dims(f, &sh->mom[0]);
      fputc(' ', f);
      write_dims(f, &sh->mom[1]);
      fputc(' ', f);
      write_dims(f, &sh->mom[2]);
      fputc('\n', f);
      mem += numel(&sh->mom[2]) * 4;
    }
    if (emu) mem = (int64_t)(k + 1) << 16; /* the emulator needs no scratch: a token amount to check binding */
    fprintf(f, "memory %d %lld\n", k, (long long)mem);
  }
  fclose(f);
  *out = calloc(1, sizeof **out);
  if (*out == NULL) {
    free(text);
    return fail(err, errlen, GRF_TRT_ERR_NOMEM, "out of memory");
  }
  (*out)->data = text;
  (*out)->size = tlen;
  return GRF_TRT_OK;
}

int32_t grf_trt_blob_data(grf_trt_blob *blob, const void **data, size_t *size, char *err, size_t errlen) {
  NEED(blob != NULL && data != NULL && size != NULL, "blob_data: null argument");
  *data = blob->data;
  *size = blob->size;
  return GRF_TRT_OK;
}

int32_t grf_trt_blob_destroy(grf_trt_blob *blob, char *err, size_t errlen) {
  (void)err;
  (void)errlen;
  if (blob != NULL) free(blob->data);
  free(blob);
  return GRF_TRT_OK;
}

/* ---- diagnostics (added to ABI 2) ------------------------------------------------------ */

/* The fake's CUDA view: the devices grf_trt_get_device_info reports, a driver for CUDA
 * GRF_FAKE_TRT_DRIVER (default 13000; the emulator on cuda-emu reports none), and
 * cudaErrorNoDevice when there are none. */
int32_t grf_trt_get_cuda_status(grf_trt_cuda_status *out, char *err, size_t errlen) {
  grf_trt_device_info d;
  int32_t st;
  NEED(out != NULL, "get_cuda_status: out is null");
  memset(out, 0, sizeof *out);
  st = grf_trt_get_device_info(0, &d, err, errlen);
  if (st != GRF_TRT_OK) return st;
  out->device_count = d.count;
#ifdef GRF_TRT_EMU
  out->driver_version = 0; /* cuda-emu: no driver behind it */
#else
  out->driver_version = env_int("GRF_FAKE_TRT_DRIVER", 13000);
#endif
  if (d.count == 0) {
    out->error = 100;
    snprintf(out->error_name, sizeof out->error_name, "cudaErrorNoDevice");
    snprintf(out->error_text, sizeof out->error_text, "no CUDA-capable device is detected");
  }
  return GRF_TRT_OK;
}
