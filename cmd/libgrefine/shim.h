/* Private to cmd/libgrefine: what the Go side and shim.c share. Never installed. */
#ifndef GRF_LIBGREFINE_SHIM_H
#define GRF_LIBGREFINE_SHIM_H

#include <stdint.h>
#include <stdlib.h>

#include "grefine.h"

/* grefine_pipeline is never defined: a grefine_pipeline* is an opaque handle value
 * (handles.go), converted to and from uintptr_t here and never dereferenced. */

/* Kinds of library-owned results, for grf_lib_release (handles.go). */
enum { GRF_KIND_ASSESSMENT = 1, GRF_KIND_REFINEMENT = 2, GRF_KIND_IMAGE = 3, GRF_KIND_BUFFER = 4 };

/* Calls a caller's progress callback (Go cannot call C function pointers). */
int grf_call_progress(grefine_progress_fn fn, void *user, const char *stage, int step, int total);

/* Calls a caller's log callback. */
void grf_call_log(grefine_log_fn fn, void *user, int level, const char *message);

#endif
