/*
 * memory.c: cuda-emu's devices, memory, streams and queued work, and the memory and stream
 * calls of grefine_cuda.h (see grefine_cuda_emu.h for what is emulated and why).
 *
 * Memory: every allocation is two anonymous mappings of the same size, a PROT_NONE one
 * whose address is handed out (the "device address") and a read-write alias at which the
 * data lives. The allocation table, sorted by device address, translates any address
 * inside an allocation to the alias. Freed device ranges stay reserved (PROT_NONE) in a
 * quarantine, so the addresses are not reused at once and use after free is named.
 *
 * Work: each device keeps one list of queued work in enqueue order (one sequence number
 * per process). A synchronisation collects the work it depends on (its stream's, plus
 * what the legacy-stream rules add), then runs it in sequence order; work already running
 * on another thread is waited for, so every item runs once. One mutex guards the tables;
 * the work itself runs outside it, so streams of different slots run in parallel.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <link.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "emu_internal.h"

#define EMU_LIB_NAME "libgrefine_cuda_emu.so"
#define EMU_QUARANTINE 4096
#define EMU_MSG 512

enum { K_LEGACY = 0, K_BLOCKING = 1, K_NONBLOCKING = 2 };
enum { S_QUEUED = 0, S_RUNNING = 1, S_DONE = 2 };

typedef struct emu_stream emu_stream;

typedef struct emu_op {
  uint64_t seq;
  emu_stream* stream;
  int state;
  int refs; /* the device list holds one; each synchroniser collecting it holds one */
  const char* what;
  grf_emu_fn run;
  void (*release)(void*);
  struct emu_op *prev, *next;
  int nargs;
  grf_emu_arg* args;
  void* user;
} emu_op;

struct emu_stream {
  uint32_t magic;
  int dev;
  int kind;
  uint64_t id;
  int err_status; /* first asynchronous error not yet reported */
  char err_msg[EMU_MSG];
  emu_stream* next_live;
};

typedef struct {
  uintptr_t base; /* device address handed out */
  size_t bytes;   /* requested size */
  size_t map;     /* mapped size (pages) */
  char* alias;
  int dev;
  uint64_t id;
} emu_alloc;

typedef struct {
  uintptr_t base;
  size_t bytes, map;
  int dev;
  uint64_t id;
} emu_freed;

typedef struct {
  size_t in_use, peak;
  emu_stream legacy;
  emu_op *head, *tail;
} emu_device;

#define STREAM_MAGIC 0x67726673u /* "grfs" */

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static int g_ndev;
static size_t g_budget;
static int g_cc_major = 9, g_cc_minor = 0;
static char g_init_err[256];
static emu_device g_dev[GRF_EMU_MAX_DEVICES];
static __thread int t_dev;
static uint64_t g_seq, g_alloc_id, g_stream_id;
static emu_alloc* g_allocs;
static size_t g_nalloc, g_capalloc;
static emu_freed g_freed[EMU_QUARANTINE];
static size_t g_nfreed, g_freed_next;
static emu_stream* g_streams;
static size_t g_page;

/* ---- set-up ---------------------------------------------------------------------------- */

static int parse_size(const char* s, size_t* out) {
  char* end = NULL;
  unsigned long long v;
  if (s == NULL || *s == '\0') return 0;
  errno = 0;
  v = strtoull(s, &end, 10);
  if (errno != 0 || end == s) return 0;
  switch (*end) {
    case 'k': case 'K': v <<= 10; end++; break;
    case 'm': case 'M': v <<= 20; end++; break;
    case 'g': case 'G': v <<= 30; end++; break;
    default: break;
  }
  if (strcmp(end, "iB") == 0 || strcmp(end, "B") == 0) end += strlen(end); /* 4GiB, 4GB */
  if (*end != '\0' || v == 0) return 0;
  *out = (size_t)v;
  return 1;
}

static void init(void) {
  const char* nd = getenv("GRF_CUDA_EMU_DEVICES");
  const char* mem = getenv("GRF_CUDA_EMU_MEMORY");
  const char* cc = getenv("GRF_CUDA_EMU_CC");
  g_page = (size_t)sysconf(_SC_PAGESIZE);
  g_ndev = 1;
  g_budget = (size_t)4 << 30;
  if (nd != NULL && *nd != '\0') {
    char* end = NULL;
    long n = strtol(nd, &end, 10);
    if (end == nd || *end != '\0' || n < 0 || n > GRF_EMU_MAX_DEVICES) {
      snprintf(g_init_err, sizeof g_init_err, "cuda-emu: GRF_CUDA_EMU_DEVICES=%s: want 0..%d", nd,
               GRF_EMU_MAX_DEVICES);
      g_ndev = 0;
      return;
    }
    g_ndev = (int)n;
  }
  if (mem != NULL && *mem != '\0' && !parse_size(mem, &g_budget)) {
    snprintf(g_init_err, sizeof g_init_err, "cuda-emu: GRF_CUDA_EMU_MEMORY=%s: want a size such as 512M or 4G", mem);
    g_ndev = 0;
    return;
  }
  if (cc != NULL && *cc != '\0' && (sscanf(cc, "%d.%d", &g_cc_major, &g_cc_minor) != 2 || g_cc_major < 1)) {
    snprintf(g_init_err, sizeof g_init_err, "cuda-emu: GRF_CUDA_EMU_CC=%s: want major.minor such as 9.0", cc);
    g_ndev = 0;
    return;
  }
  for (int i = 0; i < GRF_EMU_MAX_DEVICES; i++) {
    g_dev[i].legacy.magic = STREAM_MAGIC;
    g_dev[i].legacy.dev = i;
    g_dev[i].legacy.kind = K_LEGACY;
  }
}

/* ---- one copy per process ------------------------------------------------------------ */

typedef struct {
  char paths[2][1024];
  int n;
} copies_t;

static int count_copies(struct dl_phdr_info* info, size_t size, void* data) {
  copies_t* c = data;
  const char* name = info->dlpi_name;
  const char* base;
  (void)size;
  if (name == NULL || *name == '\0') return 0;
  base = strrchr(name, '/');
  base = base != NULL ? base + 1 : name;
  if (strcmp(base, EMU_LIB_NAME) != 0) return 0;
  if (c->n < 2) snprintf(c->paths[c->n], sizeof c->paths[0], "%s", name);
  c->n++;
  return 0;
}

/* ready initialises once and fails when the emulator is unusable: a bad environment, or two
 * copies of the library in this process (two allocation tables). */
static int ready(char* err, size_t errlen) {
  copies_t c;
  pthread_once(&g_once, init);
  if (g_init_err[0] != '\0') return emu_fail(err, errlen, GRF_CUDA_ERR_NO_DEVICE, "%s", g_init_err);
  memset(&c, 0, sizeof c);
  dl_iterate_phdr(count_copies, &c);
  if (c.n > 1) {
    return emu_fail(err, errlen, GRF_CUDA_ERR_NO_DEVICE,
                    "cuda-emu: %d copies of %s are loaded in this process (%s and %s): one process needs one "
                    "allocation table; load the cuda and tensorrt emulators from the same directory",
                    c.n, EMU_LIB_NAME, c.paths[0], c.paths[1]);
  }
  return GRF_CUDA_OK;
}

/* ---- allocation table (callers hold g_mu) ----------------------------------------------- */

/* find_alloc returns the index of the allocation whose range holds p, or -1. */
static long find_alloc(uintptr_t p) {
  size_t lo = 0, hi = g_nalloc;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (g_allocs[mid].base <= p) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  if (lo == 0) return -1;
  lo--;
  if (p < g_allocs[lo].base + (g_allocs[lo].bytes > 0 ? g_allocs[lo].bytes : 1)) return (long)lo;
  return -1;
}

static const emu_freed* find_freed(uintptr_t p) {
  for (size_t i = 0; i < g_nfreed; i++) {
    const emu_freed* f = &g_freed[i];
    if (p >= f->base && p < f->base + (f->bytes > 0 ? f->bytes : 1)) return f;
  }
  return NULL;
}

/* resolve translates [p, p+bytes) on device dev to the alias, or fails naming what and name. */
static int resolve(int dev, const char* what, const char* name, const void* ptr, size_t bytes, void** alias, char* err,
                   size_t errlen) {
  uintptr_t p = (uintptr_t)ptr;
  long i;
  const emu_alloc* a;
  size_t off;
  *alias = NULL;
  if (ptr == NULL) {
    if (bytes == 0) return GRF_CUDA_OK;
    return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "%s: %s is a null pointer", what, name);
  }
  i = find_alloc(p);
  if (i < 0) {
    const emu_freed* f = find_freed(p);
    if (f != NULL) {
      return emu_fail(err, errlen, GRF_CUDA_ERR_CUDA,
                      "%s: %s %p lies in allocation #%" PRIu64 " (%zu bytes on device %d), which was freed: use after "
                      "free (cudaErrorIllegalAddress, emulated)",
                      what, name, ptr, f->id, f->bytes, f->dev);
    }
    return emu_fail(err, errlen, GRF_CUDA_ERR_CUDA,
                    "%s: %s %p is not device memory (a host pointer?): no live cuda-emu allocation holds it "
                    "(cudaErrorIllegalAddress, emulated)",
                    what, name, ptr);
  }
  a = &g_allocs[i];
  off = p - a->base;
  if (a->dev != dev) {
    return emu_fail(err, errlen, GRF_CUDA_ERR_CUDA,
                    "%s: %s %p is memory of device %d (allocation #%" PRIu64 "), used by work on device %d "
                    "(cudaErrorIllegalAddress, emulated)",
                    what, name, ptr, a->dev, a->id, dev);
  }
  if (bytes > a->bytes - off) {
    return emu_fail(err, errlen, GRF_CUDA_ERR_CUDA,
                    "%s: %s [%p, +%zu bytes) runs past the end of allocation #%" PRIu64 " (%zu bytes, offset %zu) "
                    "(cudaErrorIllegalAddress, emulated)",
                    what, name, ptr, bytes, a->id, a->bytes, off);
  }
  *alias = a->alias + off;
  return GRF_CUDA_OK;
}

static int insert_alloc(const emu_alloc* a) {
  size_t i;
  if (g_nalloc == g_capalloc) {
    size_t cap = g_capalloc ? 2 * g_capalloc : 256;
    emu_alloc* n = realloc(g_allocs, cap * sizeof *n);
    if (n == NULL) return 0;
    g_allocs = n;
    g_capalloc = cap;
  }
  for (i = g_nalloc; i > 0 && g_allocs[i - 1].base > a->base; i--) g_allocs[i] = g_allocs[i - 1];
  g_allocs[i] = *a;
  g_nalloc++;
  return 1;
}

static void quarantine(const emu_alloc* a) {
  emu_freed* slot;
  if (g_nfreed < EMU_QUARANTINE) {
    slot = &g_freed[g_nfreed++];
  } else {
    slot = &g_freed[g_freed_next];
    munmap((void*)slot->base, slot->map);
    g_freed_next = (g_freed_next + 1) % EMU_QUARANTINE;
  }
  slot->base = a->base;
  slot->bytes = a->bytes;
  slot->map = a->map;
  slot->dev = a->dev;
  slot->id = a->id;
}

/* ---- streams (callers hold g_mu) -------------------------------------------------------- */

static emu_stream* live_stream(grf_stream* h) {
  for (emu_stream* s = g_streams; s != NULL; s = s->next_live) {
    if ((grf_stream*)s == h) return s;
  }
  return NULL;
}

/* stream_of resolves a handle: NULL is the legacy stream of dev (dev < 0: the calling
 * thread's current device). */
static int stream_of(grf_stream* h, int dev, const char* what, emu_stream** out, char* err, size_t errlen) {
  emu_stream* s;
  if (h == NULL) {
    int d = dev >= 0 ? dev : t_dev;
    if (d >= g_ndev) {
      return emu_fail(err, errlen, GRF_CUDA_ERR_CUDA, "%s: device %d does not exist (%d emulated; cudaErrorInvalidDevice)",
                      what, d, g_ndev);
    }
    *out = &g_dev[d].legacy;
    return GRF_CUDA_OK;
  }
  s = live_stream(h);
  if (s == NULL) {
    return emu_fail(err, errlen, GRF_CUDA_ERR_CUDA,
                    "%s: stream %p is not a live cuda-emu stream (destroyed, or not from this library; "
                    "cudaErrorInvalidResourceHandle, emulated)",
                    what, (void*)h);
  }
  if (dev >= 0 && s->dev != dev) {
    return emu_fail(err, errlen, GRF_CUDA_ERR_CUDA, "%s: stream %p belongs to device %d, the work is for device %d", what,
                    (void*)h, s->dev, dev);
  }
  *out = s;
  return GRF_CUDA_OK;
}

/* ---- queued work ------------------------------------------------------------------------ */

static void op_unref_locked(emu_op* op) {
  if (--op->refs > 0) return;
  if (op->release != NULL) op->release(op->user);
  free(op);
}

static void record_error(emu_stream* s, const char* what, int status, const char* msg) {
  if (s->err_status != GRF_CUDA_OK) return;
  s->err_status = status;
  snprintf(s->err_msg, sizeof s->err_msg, "%s (asynchronous error of %s)", msg, what);
}

/* flush_locked runs the queued work of device d that a synchronisation of s needs (s NULL:
 * all of it). Called and returns with g_mu held; releases it while work runs. */
static int flush_locked(emu_device* d, emu_stream* s) {
  uint64_t last = 0, limit = 0;
  int has_last = 0, has_limit = 0;
  size_t n = 0, k = 0;
  emu_op** todo;
  if (s != NULL) {
    for (emu_op* op = d->head; op != NULL; op = op->next) {
      if (op->stream == s) {
        last = op->seq;
        has_last = 1;
      }
    }
    if (!has_last) return GRF_CUDA_OK;
    if (s->kind == K_LEGACY) {
      limit = last;
      has_limit = 1;
    } else if (s->kind == K_BLOCKING) {
      for (emu_op* op = d->head; op != NULL && op->seq < last; op = op->next) {
        if (op->stream->kind == K_LEGACY) {
          limit = op->seq;
          has_limit = 1;
        }
      }
    }
  }
#define NEEDED(op) \
  (s == NULL || (op)->stream == s || (has_limit && (op)->seq <= limit && (op)->stream->kind != K_NONBLOCKING))
  for (emu_op* op = d->head; op != NULL; op = op->next) {
    if (NEEDED(op)) n++;
  }
  if (n == 0) return GRF_CUDA_OK;
  todo = malloc(n * sizeof *todo);
  if (todo == NULL) return GRF_CUDA_ERR_INTERNAL;
  for (emu_op* op = d->head; op != NULL; op = op->next) {
    if (NEEDED(op)) {
      op->refs++;
      todo[k++] = op;
    }
  }
#undef NEEDED
  for (k = 0; k < n; k++) {
    emu_op* op = todo[k];
    while (op->state == S_RUNNING) pthread_cond_wait(&g_cv, &g_mu);
    if (op->state == S_QUEUED) {
      char msg[EMU_MSG] = "";
      int rc;
      op->state = S_RUNNING;
      pthread_mutex_unlock(&g_mu);
      rc = op->run(op->user, op->args, op->nargs, msg, sizeof msg);
      pthread_mutex_lock(&g_mu);
      if (rc != GRF_CUDA_OK) record_error(op->stream, op->what, rc, msg[0] ? msg : "failed");
      op->state = S_DONE;
      if (op->prev != NULL) {
        op->prev->next = op->next;
      } else {
        d->head = op->next;
      }
      if (op->next != NULL) {
        op->next->prev = op->prev;
      } else {
        d->tail = op->prev;
      }
      op_unref_locked(op); /* the list's reference */
      pthread_cond_broadcast(&g_cv);
    }
    op_unref_locked(op);
  }
  free(todo);
  return GRF_CUDA_OK;
}

/* sync_locked flushes s and reports (and clears) its asynchronous error. */
static int sync_locked(emu_stream* s, const char* what, char* err, size_t errlen) {
  int rc = flush_locked(&g_dev[s->dev], s);
  if (rc != GRF_CUDA_OK) return emu_fail(err, errlen, rc, "%s: out of host memory", what);
  if (s->err_status != GRF_CUDA_OK) {
    rc = s->err_status;
    emu_fail(err, errlen, rc, "%s: %s", what, s->err_msg);
    s->err_status = GRF_CUDA_OK;
    s->err_msg[0] = '\0';
    return rc;
  }
  return GRF_CUDA_OK;
}

static int enqueue_locked(emu_stream* s, const char* what, grf_emu_arg* args, int nargs, grf_emu_fn run,
                          const void* user, size_t user_bytes, void (*release)(void*), char* err, size_t errlen) {
  emu_device* d = &g_dev[s->dev];
  size_t args_bytes = (size_t)nargs * sizeof(grf_emu_arg);
  size_t head = (sizeof(emu_op) + 15) & ~(size_t)15;
  size_t abytes = (args_bytes + 15) & ~(size_t)15;
  emu_op* op;
  for (int i = 0; i < nargs; i++) {
    int rc = resolve(s->dev, what, args[i].name, args[i].ptr, args[i].bytes, &args[i].alias, err, errlen);
    if (rc != GRF_CUDA_OK) return rc;
  }
  op = calloc(1, head + abytes + user_bytes);
  if (op == NULL) return emu_fail(err, errlen, GRF_CUDA_ERR_INTERNAL, "%s: out of host memory", what);
  op->args = (grf_emu_arg*)((char*)op + head);
  op->user = (char*)op + head + abytes;
  if (nargs > 0) memcpy(op->args, args, args_bytes);
  if (user_bytes > 0) memcpy(op->user, user, user_bytes);
  op->nargs = nargs;
  op->seq = ++g_seq;
  op->stream = s;
  op->state = S_QUEUED;
  op->refs = 1;
  op->what = what;
  op->run = run;
  op->release = release;
  op->prev = d->tail;
  if (d->tail != NULL) {
    d->tail->next = op;
  } else {
    d->head = op;
  }
  d->tail = op;
  return GRF_CUDA_OK;
}

/* ---- grefine_cuda.h: devices ------------------------------------------------------------ */

int grf_cuda_abi_version(void) { return GRF_CUDA_ABI_VERSION; }

int grf_emu_version(void) { return GRF_EMU_VERSION; }

int grf_cuda_versions(int* runtime_version, int* driver_version, char* err, size_t errlen) {
  if (runtime_version == NULL || driver_version == NULL) {
    return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_cuda_versions: null output");
  }
  *runtime_version = 0; /* no CUDA runtime, no driver: cuda-emu */
  *driver_version = 0;
  return GRF_CUDA_OK;
}

int grf_cuda_device_count(int* count, int* cuda_error, char* err, size_t errlen) {
  int rc;
  if (count == NULL || cuda_error == NULL) {
    return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_cuda_device_count: null output");
  }
  *count = 0;
  *cuda_error = 0;
  if ((rc = ready(err, errlen)) != GRF_CUDA_OK) {
    *cuda_error = 100;
    return rc;
  }
  if (g_ndev == 0) {
    *cuda_error = 100;
    return emu_fail(err, errlen, GRF_CUDA_ERR_NO_DEVICE,
                    "cudaGetDeviceCount: 0 devices (cuda-emu with GRF_CUDA_EMU_DEVICES=0; cudaErrorNoDevice, 100)");
  }
  *count = g_ndev;
  return GRF_CUDA_OK;
}

static int check_dev(int dev, const char* what, char* err, size_t errlen) {
  int rc = ready(err, errlen);
  if (rc != GRF_CUDA_OK) return rc;
  if (dev < 0 || dev >= g_ndev) {
    return emu_fail(err, errlen, GRF_CUDA_ERR_CUDA, "%s: invalid device ordinal %d (%d emulated; cudaErrorInvalidDevice, 101)",
                    what, dev, g_ndev);
  }
  return GRF_CUDA_OK;
}

int grf_cuda_device_info(int dev, char* name, size_t namelen, int* major, int* minor, size_t* total_mem,
                         int* sm_count, char* err, size_t errlen) {
  int rc;
  if (major == NULL || minor == NULL || total_mem == NULL || sm_count == NULL) {
    return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_cuda_device_info: null output");
  }
  if ((rc = check_dev(dev, "cudaGetDeviceProperties", err, errlen)) != GRF_CUDA_OK) return rc;
  if (name != NULL && namelen > 0) snprintf(name, namelen, "cuda-emu %d (grefine gpu emulator, not a gpu)", dev);
  *major = g_cc_major;
  *minor = g_cc_minor;
  *total_mem = g_budget;
  *sm_count = 1;
  return GRF_CUDA_OK;
}

int grf_cuda_set_device(int dev, char* err, size_t errlen) {
  int rc = check_dev(dev, "cudaSetDevice", err, errlen);
  if (rc != GRF_CUDA_OK) return rc;
  t_dev = dev;
  return GRF_CUDA_OK;
}

/* ---- memory ------------------------------------------------------------------------------ */

int grf_emu_malloc(int dev, void** ptr, size_t bytes, char* err, size_t errlen) {
  emu_alloc a;
  void *view, *alias;
  int rc;
  if (ptr == NULL) return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_cuda_malloc: null output");
  *ptr = NULL;
  if ((rc = check_dev(dev, "cudaMalloc", err, errlen)) != GRF_CUDA_OK) return rc;
  if (bytes == 0) return GRF_CUDA_OK;
  memset(&a, 0, sizeof a);
  a.bytes = bytes;
  a.map = (bytes + g_page - 1) / g_page * g_page;
  if (a.map < bytes) return emu_fail(err, errlen, GRF_CUDA_ERR_CUDA, "cudaMalloc: %zu bytes: out of memory (cudaErrorMemoryAllocation, 2)", bytes);
  pthread_mutex_lock(&g_mu);
  if (bytes > g_budget || g_dev[dev].in_use > g_budget - bytes) {
    size_t used = g_dev[dev].in_use;
    pthread_mutex_unlock(&g_mu);
    return emu_fail(err, errlen, GRF_CUDA_ERR_CUDA,
                    "cudaMalloc: out of memory (cudaErrorMemoryAllocation, 2): cuda-emu device %d: %zu bytes requested, "
                    "%zu of %zu in use (GRF_CUDA_EMU_MEMORY)",
                    dev, bytes, used, g_budget);
  }
  g_dev[dev].in_use += bytes;
  pthread_mutex_unlock(&g_mu);
  view = mmap(NULL, a.map, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  alias = view == MAP_FAILED ? MAP_FAILED : mmap(NULL, a.map, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (view == MAP_FAILED || alias == MAP_FAILED) {
    int e = errno;
    if (view != MAP_FAILED) munmap(view, a.map);
    pthread_mutex_lock(&g_mu);
    g_dev[dev].in_use -= bytes;
    pthread_mutex_unlock(&g_mu);
    return emu_fail(err, errlen, GRF_CUDA_ERR_CUDA, "cudaMalloc: out of memory (cudaErrorMemoryAllocation, 2): mmap of %zu bytes: %s",
                    bytes, strerror(e));
  }
  memset(alias, 0xFF, bytes); /* poison: NaN as float32, -1 as int32 */
  a.base = (uintptr_t)view;
  a.alias = alias;
  a.dev = dev;
  pthread_mutex_lock(&g_mu);
  a.id = ++g_alloc_id;
  if (!insert_alloc(&a)) {
    g_dev[dev].in_use -= bytes;
    pthread_mutex_unlock(&g_mu);
    munmap(view, a.map);
    munmap(alias, a.map);
    return emu_fail(err, errlen, GRF_CUDA_ERR_INTERNAL, "cudaMalloc: out of host memory for the allocation table");
  }
  if (g_dev[dev].in_use > g_dev[dev].peak) g_dev[dev].peak = g_dev[dev].in_use;
  pthread_mutex_unlock(&g_mu);
  *ptr = view;
  return GRF_CUDA_OK;
}

int grf_cuda_malloc(void** ptr, size_t bytes, char* err, size_t errlen) {
  int rc = ready(err, errlen);
  if (rc != GRF_CUDA_OK) return rc;
  return grf_emu_malloc(t_dev, ptr, bytes, err, errlen);
}

int grf_cuda_free(void* ptr, char* err, size_t errlen) {
  uintptr_t p = (uintptr_t)ptr;
  long i;
  emu_alloc a;
  int rc;
  if (ptr == NULL) return GRF_CUDA_OK;
  if ((rc = ready(err, errlen)) != GRF_CUDA_OK) return rc;
  pthread_mutex_lock(&g_mu);
  i = find_alloc(p);
  if (i < 0 || g_allocs[i].base != p) {
    const emu_freed* f = i < 0 ? find_freed(p) : NULL;
    if (f != NULL && f->base == p) {
      rc = emu_fail(err, errlen, GRF_CUDA_ERR_CUDA,
                    "cudaFree: %p (allocation #%" PRIu64 ") was already freed: double free (cudaErrorInvalidValue, emulated)",
                    ptr, f->id);
    } else if (i >= 0) {
      rc = emu_fail(err, errlen, GRF_CUDA_ERR_CUDA,
                    "cudaFree: %p points inside allocation #%" PRIu64 " (offset %zu), not at its start "
                    "(cudaErrorInvalidValue, emulated)",
                    ptr, g_allocs[i].id, (size_t)(p - g_allocs[i].base));
    } else {
      rc = emu_fail(err, errlen, GRF_CUDA_ERR_CUDA,
                    "cudaFree: %p is not device memory from cudaMalloc (cudaErrorInvalidValue, emulated)", ptr);
    }
    pthread_mutex_unlock(&g_mu);
    return rc;
  }
  /* cudaFree synchronises the device: queued work that uses the memory runs first. */
  if (flush_locked(&g_dev[g_allocs[i].dev], NULL) != GRF_CUDA_OK) {
    pthread_mutex_unlock(&g_mu);
    return emu_fail(err, errlen, GRF_CUDA_ERR_INTERNAL, "cudaFree: out of host memory");
  }
  i = find_alloc(p); /* the table may have changed while the work ran */
  if (i < 0 || g_allocs[i].base != p) {
    pthread_mutex_unlock(&g_mu);
    return emu_fail(err, errlen, GRF_CUDA_ERR_CUDA, "cudaFree: %p was freed concurrently (double free)", ptr);
  }
  a = g_allocs[i];
  memmove(&g_allocs[i], &g_allocs[i + 1], (g_nalloc - (size_t)i - 1) * sizeof *g_allocs);
  g_nalloc--;
  g_dev[a.dev].in_use -= a.bytes;
  quarantine(&a);
  pthread_mutex_unlock(&g_mu);
  munmap(a.alias, a.map);
  return GRF_CUDA_OK;
}

/* ---- streams ----------------------------------------------------------------------------- */

int grf_emu_stream_create(int dev, int flags, grf_stream** stream, char* err, size_t errlen) {
  emu_stream* s;
  int rc;
  if (stream == NULL) return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_cuda_stream_create: null output");
  *stream = NULL;
  if ((rc = check_dev(dev, "cudaStreamCreateWithFlags", err, errlen)) != GRF_CUDA_OK) return rc;
  if (flags != GRF_EMU_STREAM_BLOCKING && flags != GRF_EMU_STREAM_NONBLOCKING) {
    return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "cudaStreamCreateWithFlags: unknown flags %d", flags);
  }
  s = calloc(1, sizeof *s);
  if (s == NULL) return emu_fail(err, errlen, GRF_CUDA_ERR_INTERNAL, "cudaStreamCreateWithFlags: out of host memory");
  s->magic = STREAM_MAGIC;
  s->dev = dev;
  s->kind = flags == GRF_EMU_STREAM_NONBLOCKING ? K_NONBLOCKING : K_BLOCKING;
  pthread_mutex_lock(&g_mu);
  s->id = ++g_stream_id;
  s->next_live = g_streams;
  g_streams = s;
  pthread_mutex_unlock(&g_mu);
  *stream = (grf_stream*)s;
  return GRF_CUDA_OK;
}

int grf_cuda_stream_create(grf_stream** stream, char* err, size_t errlen) {
  int rc = ready(err, errlen);
  if (rc != GRF_CUDA_OK) return rc;
  return grf_emu_stream_create(t_dev, GRF_EMU_STREAM_BLOCKING, stream, err, errlen);
}

int grf_cuda_stream_destroy(grf_stream* stream, char* err, size_t errlen) {
  emu_stream* s;
  int rc;
  if (stream == NULL) return GRF_CUDA_OK;
  if ((rc = ready(err, errlen)) != GRF_CUDA_OK) return rc;
  pthread_mutex_lock(&g_mu);
  rc = stream_of(stream, -1, "cudaStreamDestroy", &s, err, errlen);
  if (rc == GRF_CUDA_OK) rc = sync_locked(s, "cudaStreamSynchronize", err, errlen);
  if (live_stream(stream) != NULL) { /* destroyed even when its work failed */
    emu_stream** pp = &g_streams;
    while (*pp != s) pp = &(*pp)->next_live;
    *pp = s->next_live;
    s->magic = 0;
    free(s);
  }
  pthread_mutex_unlock(&g_mu);
  return rc;
}

int grf_cuda_stream_sync(grf_stream* stream, char* err, size_t errlen) {
  emu_stream* s;
  int rc = ready(err, errlen);
  if (rc != GRF_CUDA_OK) return rc;
  pthread_mutex_lock(&g_mu);
  rc = stream_of(stream, -1, "cudaStreamSynchronize", &s, err, errlen);
  if (rc == GRF_CUDA_OK) rc = sync_locked(s, "cudaStreamSynchronize", err, errlen);
  pthread_mutex_unlock(&g_mu);
  return rc;
}

int grf_emu_stream_device(grf_stream* stream, int* dev, char* err, size_t errlen) {
  emu_stream* s;
  int rc = ready(err, errlen);
  if (rc != GRF_CUDA_OK) return rc;
  if (dev == NULL) return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_emu_stream_device: null output");
  pthread_mutex_lock(&g_mu);
  rc = stream_of(stream, -1, "grf_emu_stream_device", &s, err, errlen);
  if (rc == GRF_CUDA_OK) *dev = s->dev;
  pthread_mutex_unlock(&g_mu);
  return rc;
}

int grf_emu_device_sync(int dev, char* err, size_t errlen) {
  int rc = check_dev(dev, "cudaDeviceSynchronize", err, errlen);
  if (rc != GRF_CUDA_OK) return rc;
  pthread_mutex_lock(&g_mu);
  rc = flush_locked(&g_dev[dev], NULL);
  pthread_mutex_unlock(&g_mu);
  if (rc != GRF_CUDA_OK) return emu_fail(err, errlen, rc, "cudaDeviceSynchronize: out of host memory");
  return GRF_CUDA_OK;
}

int grf_emu_launch(grf_stream* stream, int dev, const char* what, grf_emu_arg* args, int nargs, grf_emu_fn run,
                   const void* user, size_t user_bytes, void (*release)(void*), char* err, size_t errlen) {
  emu_stream* s;
  int rc = ready(err, errlen);
  if (rc != GRF_CUDA_OK) return rc;
  if (run == NULL || nargs < 0 || (nargs > 0 && args == NULL) || (user_bytes > 0 && user == NULL)) {
    return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "%s: bad launch arguments", what);
  }
  pthread_mutex_lock(&g_mu);
  rc = stream_of(stream, dev, what, &s, err, errlen);
  if (rc == GRF_CUDA_OK) rc = enqueue_locked(s, what, args, nargs, run, user, user_bytes, release, err, errlen);
  pthread_mutex_unlock(&g_mu);
  return rc;
}

int grf_emu_library_path(char* path, size_t pathlen, char* err, size_t errlen) {
  Dl_info info;
  if (path == NULL || pathlen == 0) return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_emu_library_path: null output");
  if (dladdr((void*)grf_emu_library_path, &info) == 0 || info.dli_fname == NULL) {
    return emu_fail(err, errlen, GRF_CUDA_ERR_INTERNAL, "grf_emu_library_path: dladdr failed");
  }
  snprintf(path, pathlen, "%s", info.dli_fname);
  return GRF_CUDA_OK;
}

/* ---- copies and memset ------------------------------------------------------------------- */

typedef struct {
  size_t bytes;
  void* host; /* htod: the snapshot (owned); dtoh: the caller's destination */
  int value;
} copy_user;

static int run_htod(void* user, const grf_emu_arg* a, int n, char* err, size_t errlen) {
  copy_user* u = user;
  (void)n, (void)err, (void)errlen;
  memcpy(a[0].alias, u->host, u->bytes);
  return GRF_CUDA_OK;
}

static void release_snapshot(void* user) { free(((copy_user*)user)->host); }

static int run_dtoh(void* user, const grf_emu_arg* a, int n, char* err, size_t errlen) {
  copy_user* u = user;
  (void)n, (void)err, (void)errlen;
  memcpy(u->host, a[0].alias, u->bytes);
  return GRF_CUDA_OK;
}

static int run_dtod(void* user, const grf_emu_arg* a, int n, char* err, size_t errlen) {
  copy_user* u = user;
  (void)n, (void)err, (void)errlen;
  memmove(a[0].alias, a[1].alias, u->bytes);
  return GRF_CUDA_OK;
}

static int run_memset(void* user, const grf_emu_arg* a, int n, char* err, size_t errlen) {
  copy_user* u = user;
  (void)n, (void)err, (void)errlen;
  memset(a[0].alias, u->value, u->bytes);
  return GRF_CUDA_OK;
}

/* copy_device is the device whose legacy stream a NULL-stream copy of ptr uses: the
 * pointer's own (with unified addressing a copy may name memory of any device). */
static int copy_device(grf_stream* stream, const void* ptr) {
  long i;
  int dev = -1;
  if (stream != NULL) return -1;
  pthread_mutex_lock(&g_mu);
  i = find_alloc((uintptr_t)ptr);
  if (i >= 0) dev = g_allocs[i].dev;
  pthread_mutex_unlock(&g_mu);
  return dev;
}

/* sync_after queues nothing: it waits for stream (NULL: dev's legacy stream). */
static int sync_after(grf_stream* stream, int dev, const char* what, char* err, size_t errlen) {
  emu_stream* s;
  int rc;
  pthread_mutex_lock(&g_mu);
  rc = stream_of(stream, dev, what, &s, err, errlen);
  if (rc == GRF_CUDA_OK) rc = sync_locked(s, "cudaStreamSynchronize", err, errlen);
  pthread_mutex_unlock(&g_mu);
  return rc;
}

int grf_cuda_memcpy_htod(void* dst, const void* src, size_t bytes, grf_stream* stream, char* err, size_t errlen) {
  copy_user u;
  grf_emu_arg a[1] = {{"dst", dst, bytes, NULL}};
  void* alias = NULL;
  emu_stream* s;
  int dev, rc = ready(err, errlen);
  if (rc != GRF_CUDA_OK) return rc;
  if (bytes == 0) return GRF_CUDA_OK;
  if (dst == NULL || src == NULL) return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_cuda_memcpy_htod: null pointer");
  dev = copy_device(stream, dst);
  pthread_mutex_lock(&g_mu); /* check dst before reading bytes of src */
  rc = stream_of(stream, dev, "cudaMemcpyAsync (host to device)", &s, err, errlen);
  if (rc == GRF_CUDA_OK) rc = resolve(s->dev, "cudaMemcpyAsync (host to device)", "dst", dst, bytes, &alias, err, errlen);
  pthread_mutex_unlock(&g_mu);
  if (rc != GRF_CUDA_OK) return rc;
  memset(&u, 0, sizeof u);
  u.bytes = bytes;
  u.host = malloc(bytes); /* the source is not read after this call returns */
  if (u.host == NULL) return emu_fail(err, errlen, GRF_CUDA_ERR_INTERNAL, "cudaMemcpyAsync: out of host memory");
  memcpy(u.host, src, bytes);
  rc = grf_emu_launch(stream, dev, "cudaMemcpyAsync (host to device)", a, 1, run_htod, &u, sizeof u, release_snapshot, err,
                      errlen);
  if (rc != GRF_CUDA_OK) free(u.host);
  return rc; /* ABI 2: queued like any stream work, not waited for (the source is snapshotted) */
}

int grf_cuda_memcpy_dtoh(void* dst, const void* src, size_t bytes, grf_stream* stream, char* err, size_t errlen) {
  copy_user u;
  grf_emu_arg a[1] = {{"src", src, bytes, NULL}};
  int dev, rc = ready(err, errlen);
  if (rc != GRF_CUDA_OK) return rc;
  if (bytes == 0) return GRF_CUDA_OK;
  if (dst == NULL || src == NULL) return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_cuda_memcpy_dtoh: null pointer");
  dev = copy_device(stream, src);
  memset(&u, 0, sizeof u);
  u.bytes = bytes;
  u.host = dst;
  rc = grf_emu_launch(stream, dev, "cudaMemcpyAsync (device to host)", a, 1, run_dtoh, &u, sizeof u, NULL, err, errlen);
  if (rc != GRF_CUDA_OK) return rc;
  return sync_after(stream, dev, "grf_cuda_memcpy_dtoh", err, errlen);
}

int grf_cuda_memcpy_dtod(void* dst, const void* src, size_t bytes, grf_stream* stream, char* err, size_t errlen) {
  copy_user u;
  grf_emu_arg a[2] = {{"dst", dst, bytes, NULL}, {"src", src, bytes, NULL}};
  int rc = ready(err, errlen);
  if (rc != GRF_CUDA_OK) return rc;
  if (bytes == 0) return GRF_CUDA_OK;
  if (dst == NULL || src == NULL) return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_cuda_memcpy_dtod: null pointer");
  memset(&u, 0, sizeof u);
  u.bytes = bytes;
  return grf_emu_launch(stream, copy_device(stream, dst), "cudaMemcpyAsync (device to device)", a, 2, run_dtod, &u,
                        sizeof u, NULL, err, errlen);
}

int grf_cuda_memset(void* ptr, int value, size_t bytes, grf_stream* stream, char* err, size_t errlen) {
  copy_user u;
  grf_emu_arg a[1] = {{"ptr", ptr, bytes, NULL}};
  int rc = ready(err, errlen);
  if (rc != GRF_CUDA_OK) return rc;
  if (bytes == 0) return GRF_CUDA_OK;
  if (ptr == NULL) return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_cuda_memset: null pointer");
  memset(&u, 0, sizeof u);
  u.bytes = bytes;
  u.value = value;
  return grf_emu_launch(stream, copy_device(stream, ptr), "cudaMemsetAsync", a, 1, run_memset, &u, sizeof u, NULL, err,
                        errlen);
}
