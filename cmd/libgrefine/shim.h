/* Private to cmd/libgrefine: what the Go side and shim.c share. Never installed. */
#ifndef GRF_LIBGREFINE_SHIM_H
#define GRF_LIBGREFINE_SHIM_H

#include <stdint.h>
#include <stdlib.h>

#include "grefine.h"

/* The opaque handle: a runtime/cgo.Handle of the Go-side pipeline, in C memory. */
struct grefine_pipeline {
  uintptr_t handle;
};

/* Calls a caller's progress callback (Go cannot call C function pointers). */
int grf_call_progress(grefine_progress_fn fn, void *user, const char *stage, int step, int total);

/* Calls a caller's log callback. */
void grf_call_log(grefine_log_fn fn, void *user, int level, const char *message);

/* Frees an assessment's members and the struct itself. */
void grf_free_assessment(grefine_assessment *a);

#endif
