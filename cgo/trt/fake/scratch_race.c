/*
 * scratch_race.c: checks the fake's (and emulator's) scratch-sharing detector from C,
 * below the Go API (which never lets two running contexts share scratch).
 *
 *   scratch_race LIB shared|separate
 *
 * Two threads enqueue on two contexts of one engine (for up to 3 s, shared; 1 s, separate). "shared": both contexts
 * get the same scratch buffer, and the run must end with at least one enqueue reporting the
 * scratch written by another context; "separate": each has its own, and none may. Prints
 * "detected N" and exits 0 when the expectation holds, 1 otherwise, 2 on setup errors.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "grefine_trt.h"

#define SYM(name) __typeof__(&grf_trt_##name) name
static struct {
  SYM(runtime_create);
  SYM(engine_deserialize);
  SYM(context_create);
  SYM(context_set_device_memory);
  SYM(context_set_input_shape);
  SYM(context_set_tensor_address);
  SYM(context_enqueue);
  SYM(buffer_create);
  SYM(buffer_info);
} api;

static const char plan[] =
    "grefine-fake-plan 1\ninput x float32 262144\noutput y float32 x 2 1\nmemory 0 1048576\n";

typedef struct {
  grf_trt_context *ctx;
  int detected;
  int errors;
  double limit; /* seconds */
} worker;

static int g_stop; /* set once either worker detects sharing */

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *loop(void *arg) {
  worker *w = arg;
  char err[GRF_TRT_ERRLEN];
  double end = now() + (w->limit > 0 ? w->limit : 1.0);
  while (now() < end && !__atomic_load_n(&g_stop, __ATOMIC_ACQUIRE)) {
    int32_t st = api.context_enqueue(w->ctx, NULL, err, sizeof err);
    if (st != GRF_TRT_OK && strstr(err, "written by another context") != NULL) {
      w->detected++;
      __atomic_store_n(&g_stop, 1, __ATOMIC_RELEASE);
    } else if (st != GRF_TRT_OK) {
      w->errors++;
    }
  }
  return NULL;
}

int main(int argc, char **argv) {
  char err[GRF_TRT_ERRLEN];
  void *h;
  grf_trt_runtime *rt;
  grf_trt_engine *eng;
  worker w[2] = {{0}};
  pthread_t th[2];
  int shared;
  if (argc != 3) return 2;
  shared = strcmp(argv[2], "shared") == 0;
  if ((h = dlopen(argv[1], RTLD_NOW)) == NULL) {
    fprintf(stderr, "%s\n", dlerror());
    return 2;
  }
#define RESOLVE(name) *(void **)(&api.name) = dlsym(h, "grf_trt_" #name)
  RESOLVE(runtime_create);
  RESOLVE(engine_deserialize);
  RESOLVE(context_create);
  RESOLVE(context_set_device_memory);
  RESOLVE(context_set_input_shape);
  RESOLVE(context_set_tensor_address);
  RESOLVE(context_enqueue);
  RESOLVE(buffer_create);
  RESOLVE(buffer_info);
  if (api.runtime_create(0, &rt, err, sizeof err) || api.engine_deserialize(rt, plan, sizeof plan - 1, &eng, err, sizeof err)) {
    fprintf(stderr, "setup: %s\n", err);
    return 2;
  }
  for (int i = 0; i < 2; i++) {
    grf_trt_buffer *scratch = NULL, *x = NULL, *y = NULL;
    void *p = NULL;
    int64_t n = 0;
    if (api.context_create(eng, &w[i].ctx, err, sizeof err) ||
        api.buffer_create(0, 4 * 262144, &x, err, sizeof err) || api.buffer_create(0, 4 * 262144, &y, err, sizeof err)) {
      fprintf(stderr, "setup: %s\n", err);
      return 2;
    }
    api.buffer_info(x, &p, &n, err, sizeof err);
    api.context_set_tensor_address(w[i].ctx, "x", p, err, sizeof err);
    api.buffer_info(y, &p, &n, err, sizeof err);
    api.context_set_tensor_address(w[i].ctx, "y", p, err, sizeof err);
    static void *shared_mem;
    if (!shared || shared_mem == NULL) {
      api.buffer_create(0, 1 << 20, &scratch, err, sizeof err);
      api.buffer_info(scratch, &p, &n, err, sizeof err);
      shared_mem = p;
    }
    if (api.context_set_device_memory(w[i].ctx, shared_mem, 1 << 20, err, sizeof err)) {
      fprintf(stderr, "setup: %s\n", err);
      return 2;
    }
  }
  for (int i = 0; i < 2; i++) {
    w[i].limit = shared ? 3.0 : 1.0;
    pthread_create(&th[i], NULL, loop, &w[i]);
  }
  for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
  printf("detected %d errors %d\n", w[0].detected + w[1].detected, w[0].errors + w[1].errors);
  if (w[0].errors + w[1].errors != 0) return 1;
  return shared ? (w[0].detected + w[1].detected > 0 ? 0 : 1) : (w[0].detected + w[1].detected == 0 ? 0 : 1);
}
