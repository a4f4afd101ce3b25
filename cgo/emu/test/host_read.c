/*
 * host_read.c: a C program that must die when it reads emulated device memory as host
 * memory (engine/cuda's TestEmuHostAccessKillsProcess builds and runs it).
 *
 *   host_read LIB read    allocates 64 floats on cuda-emu and reads the first through the
 *                         device pointer: must be killed by SIGSEGV
 *   host_read LIB write   the same with a write
 *   host_read LIB abi     copies them to the host through the ABI instead: exits 0 and
 *                         prints the NaN poison of fresh memory
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "grefine_cuda.h"

typedef int (*malloc_fn)(void**, size_t, char*, size_t);
typedef int (*dtoh_fn)(void*, const void*, size_t, grf_stream*, char*, size_t);

int main(int argc, char** argv) {
  char err[512] = "";
  void* lib;
  void* dev = NULL;
  malloc_fn mal;
  dtoh_fn dtoh;
  if (argc != 3) {
    fprintf(stderr, "usage: host_read LIB read|write|abi\n");
    return 2;
  }
  lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL) {
    fprintf(stderr, "dlopen: %s\n", dlerror());
    return 2;
  }
  *(void**)(&mal) = dlsym(lib, "grf_cuda_malloc");
  *(void**)(&dtoh) = dlsym(lib, "grf_cuda_memcpy_dtoh");
  if (mal == NULL || dtoh == NULL || mal(&dev, 64 * sizeof(float), err, sizeof err) != GRF_CUDA_OK) {
    fprintf(stderr, "malloc: %s\n", err);
    return 2;
  }
  if (strcmp(argv[2], "abi") == 0) {
    float host[64];
    uint32_t bits;
    if (dtoh(host, dev, sizeof host, NULL, err, sizeof err) != GRF_CUDA_OK) {
      fprintf(stderr, "dtoh: %s\n", err);
      return 2;
    }
    memcpy(&bits, &host[0], sizeof bits);
    printf("first value bits 0x%08x\n", bits);
    return 0;
  }
  printf("touching %p from the host\n", dev);
  fflush(stdout);
  if (strcmp(argv[2], "write") == 0) {
    *(volatile float*)dev = 1.0f;
  } else {
    volatile float v = *(volatile float*)dev;
    (void)v;
  }
  printf("survived: the host could touch device memory\n");
  return 1;
}
