/*
 * emu_internal.h: helpers shared by cuda-emu's source files (memory.c and the kernel files;
 * see grefine_cuda_emu.h). Not a public header.
 *
 * A kernel file implements launchers of grefine_cuda.h: each validates its parameters
 * with the same messages as cgo/kernels, lists its device-memory arguments with their
 * extents (grf_emu_arg) and queues its reference loop with grf_emu_launch; the loop reads
 * and writes the resolved aliases only. A new kernel family goes in a new file of its
 * own (tools/cuda-emu.sh compiles every .c file of cgo/emu).
 */
#ifndef GREFINE_CUDA_EMU_INTERNAL_H
#define GREFINE_CUDA_EMU_INTERNAL_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>

#include "grefine_cuda_emu.h"

/* emu_fail writes a formatted message into err[errlen] and returns code. */
static inline int emu_fail(char* err, size_t errlen, int code, const char* fmt, ...)
    __attribute__((format(printf, 4, 5)));
static inline int emu_fail(char* err, size_t errlen, int code, const char* fmt, ...) {
  if (err != NULL && errlen > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return code;
}

/* go_minf and go_maxf are Go's built-in min and max on float32: NaN if either is NaN,
 * -0 below +0. The reference loops use them where the Go twins do. */
static inline float go_minf(float a, float b) {
  if (a != a) return a;
  if (b != b) return b;
  if (a == b) return signbit(a) ? a : b;
  return a < b ? a : b;
}

static inline float go_maxf(float a, float b) {
  if (a != a) return a;
  if (b != b) return b;
  if (a == b) return signbit(a) ? b : a;
  return a > b ? a : b;
}

/* resize_plane resizes one float32 plane of in_h x in_w to out_h x out_w with grf_resize's
 * reference loop for mode (GRF_RESIZE_*), in engine/cpu's arithmetic order (kernels.c). */
void resize_plane(int mode, const float* s, int in_h, int in_w, float* d, int out_h, int out_w);

#endif /* GREFINE_CUDA_EMU_INTERNAL_H */
