/* The public C API of libgrefine (include/grefine.h): each function forwards to its Go
 * twin (grf_lib_*, exported by main.go), which marshals onto package pipeline. This file
 * holds no method: it exists so that the public prototypes are exactly the header's
 * (const-correct; cgo cannot express const), plus the frees and the callback trampolines
 * Go cannot write itself. A grefine_pipeline* crosses to Go as its uintptr_t value (an
 * opaque handle, never dereferenced); every free asks the Go side first whether the
 * pointer is a live result of its kind (grf_lib_release), so a double free or a foreign
 * pointer is refused, and the freed structs wait in a quarantine before free(). */
#include <pthread.h>
#include <stddef.h>
#include <string.h>

#include "shim.h"
#include "_cgo_export.h"

int grf_call_progress(grefine_progress_fn fn, void *user, const char *stage, int step, int total) {
  return fn(user, stage, step, total);
}

void grf_call_log(grefine_log_fn fn, void *user, int level, const char *message) { fn(user, level, message); }

const char *grefine_version(void) { return grf_lib_version(); }

int grefine_abi_version(void) { return GREFINE_ABI_VERSION; }

const char *grefine_status_string(grefine_status status) { return grf_lib_status_string((int)status); }

void grefine_options_init(grefine_options *opts) {
  if (opts == NULL) return;
  memset(opts, 0, sizeof *opts);
  opts->struct_size = sizeof *opts;
  opts->slots = 1;
  opts->log_level = GREFINE_LOG_WARN;
}

void grefine_params_init_sized(grefine_params *params, size_t size) {
  grefine_params full;
  if (params == NULL) return;
  if (size < offsetof(grefine_params, tile)) { /* older than the first release: refused at use */
    if (size >= sizeof params->struct_size) params->struct_size = size;
    return;
  }
  if (size > sizeof full) size = sizeof full;
  memset(&full, 0, sizeof full);
  grf_lib_params_init(&full);
  full.struct_size = size;
  memcpy(params, &full, size);
}

/* A program built against the first header passes its smaller struct here: write no more
 * of it than that header had (grefine.h maps the name to grefine_params_init_sized for
 * programs built against this one; the parentheses call the function, not the macro). */
void(grefine_params_init)(grefine_params *params) { grefine_params_init_sized(params, offsetof(grefine_params, tile)); }

grefine_status grefine_open(const grefine_options *opts, grefine_pipeline **pipeline, char *err, size_t errlen) {
  uintptr_t h = 0;
  grefine_status st = (grefine_status)grf_lib_open((grefine_options *)opts, pipeline != NULL ? &h : NULL, err, errlen);
  if (pipeline != NULL) *pipeline = st == GREFINE_OK ? (grefine_pipeline *)h : NULL;
  return st;
}

grefine_status grefine_close(grefine_pipeline *pipeline) { return (grefine_status)grf_lib_close((uintptr_t)pipeline); }

grefine_status grefine_info(grefine_pipeline *pipeline, char **json, char *err, size_t errlen) {
  return (grefine_status)grf_lib_info((uintptr_t)pipeline, json, err, errlen);
}

grefine_status grefine_assess(grefine_pipeline *pipeline, const grefine_image *image, const char *prompt,
                              const grefine_params *params, grefine_assessment **assessment, char *err,
                              size_t errlen) {
  return (grefine_status)grf_lib_assess((uintptr_t)pipeline, (grefine_image *)image, (char *)prompt, (grefine_params *)params,
                                        assessment, err, errlen);
}

grefine_status grefine_refine(grefine_pipeline *pipeline, const grefine_image *image, const char *prompt,
                              const grefine_params *params, grefine_refinement **refinement, char *err,
                              size_t errlen) {
  return (grefine_status)grf_lib_refine((uintptr_t)pipeline, (grefine_image *)image, (char *)prompt, (grefine_params *)params,
                                        refinement, err, errlen);
}

int grefine_cancel(grefine_pipeline *pipeline, const char *request_id) {
  return grf_lib_cancel((uintptr_t)pipeline, (char *)request_id);
}

grefine_status grefine_image_decode(grefine_pipeline *pipeline, const uint8_t *data, size_t len,
                                    grefine_image **image, char *err, size_t errlen) {
  return (grefine_status)grf_lib_image_decode((uintptr_t)pipeline, (uint8_t *)data, len, image, err, errlen);
}

grefine_status grefine_encode_png(const grefine_image *image, uint8_t **png, size_t *len, char *err,
                                  size_t errlen) {
  return (grefine_status)grf_lib_encode_png((grefine_image *)image, png, len, err, errlen);
}

/* The quarantine: freed result structs wait here, a ring of QUARANTINE, before free(),
 * so a just-freed address is not handed to a new result while a stale pointer to it may
 * be freed again (the registry would then take it for the new one). */
#define QUARANTINE 4096
static void *quarantine[QUARANTINE];
static size_t quarantine_next;
static pthread_mutex_t quarantine_mu = PTHREAD_MUTEX_INITIALIZER;

static void retire(void *p) {
  void *old;
  pthread_mutex_lock(&quarantine_mu);
  old = quarantine[quarantine_next];
  quarantine[quarantine_next] = p;
  quarantine_next = (quarantine_next + 1) % QUARANTINE;
  pthread_mutex_unlock(&quarantine_mu);
  free(old);
}

/* Frees an assessment's members (not the struct). */
static void free_members(grefine_assessment *a) {
  size_t i;
  for (i = 0; i < a->n_parts; i++) {
    free(a->parts[i].text);
    free(a->parts[i].noun);
  }
  free(a->parts);
  free(a->request_id);
  free(a->p_map);
  free(a->a_map);
  free(a->mask);
  free(a->perceptual_mask);
  free(a->align_mask);
  free(a->report_json);
}

grefine_status grefine_assessment_free(grefine_assessment *a) {
  grefine_status st;
  if (a == NULL) return GREFINE_OK;
  st = (grefine_status)grf_lib_release((uintptr_t)a, GRF_KIND_ASSESSMENT);
  if (st != GREFINE_OK) return st;
  free_members(a);
  retire(a);
  return GREFINE_OK;
}

grefine_status grefine_refinement_free(grefine_refinement *r) {
  grefine_status st;
  if (r == NULL) return GREFINE_OK;
  st = (grefine_status)grf_lib_release((uintptr_t)r, GRF_KIND_REFINEMENT);
  if (st != GREFINE_OK) return st;
  if (r->assessment != NULL) {
    free_members(r->assessment);
    free(r->assessment);
  }
  free(r->request_id);
  free((void *)r->image.rgb);
  free(r->report_json);
  retire(r);
  return GREFINE_OK;
}

grefine_status grefine_image_free(grefine_image *image) {
  grefine_status st;
  if (image == NULL) return GREFINE_OK;
  st = (grefine_status)grf_lib_release((uintptr_t)image, GRF_KIND_IMAGE);
  if (st != GREFINE_OK) return st;
  free((void *)image->rgb);
  retire(image);
  return GREFINE_OK;
}

grefine_status grefine_free(void *ptr) {
  grefine_status st;
  if (ptr == NULL) return GREFINE_OK;
  st = (grefine_status)grf_lib_release((uintptr_t)ptr, GRF_KIND_BUFFER);
  if (st != GREFINE_OK) return st;
  free(ptr);
  return GREFINE_OK;
}
