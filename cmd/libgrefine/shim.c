/* The public C API of libgrefine (include/grefine.h): each function forwards to its Go
 * twin (grf_lib_*, exported by main.go), which marshals onto package pipeline. This file
 * holds no method: it exists so that the public prototypes are exactly the header's
 * (const-correct; cgo cannot express const), plus the frees and the callback trampolines
 * Go cannot write itself. */
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

void grefine_params_init(grefine_params *params) {
  if (params == NULL) return;
  memset(params, 0, sizeof *params);
  grf_lib_params_init(params);
  params->struct_size = sizeof *params;
}

grefine_status grefine_open(const grefine_options *opts, grefine_pipeline **pipeline, char *err, size_t errlen) {
  return (grefine_status)grf_lib_open((grefine_options *)opts, pipeline, err, errlen);
}

void grefine_close(grefine_pipeline *pipeline) {
  if (pipeline == NULL) return;
  grf_lib_close(pipeline);
  free(pipeline);
}

grefine_status grefine_info(grefine_pipeline *pipeline, char **json, char *err, size_t errlen) {
  return (grefine_status)grf_lib_info(pipeline, json, err, errlen);
}

grefine_status grefine_assess(grefine_pipeline *pipeline, const grefine_image *image, const char *prompt,
                              const grefine_params *params, grefine_assessment **assessment, char *err,
                              size_t errlen) {
  return (grefine_status)grf_lib_assess(pipeline, (grefine_image *)image, (char *)prompt, (grefine_params *)params,
                                        assessment, err, errlen);
}

grefine_status grefine_refine(grefine_pipeline *pipeline, const grefine_image *image, const char *prompt,
                              const grefine_params *params, grefine_refinement **refinement, char *err,
                              size_t errlen) {
  return (grefine_status)grf_lib_refine(pipeline, (grefine_image *)image, (char *)prompt, (grefine_params *)params,
                                        refinement, err, errlen);
}

int grefine_cancel(grefine_pipeline *pipeline, const char *request_id) {
  return grf_lib_cancel(pipeline, (char *)request_id);
}

grefine_status grefine_image_decode(grefine_pipeline *pipeline, const uint8_t *data, size_t len,
                                    grefine_image **image, char *err, size_t errlen) {
  return (grefine_status)grf_lib_image_decode(pipeline, (uint8_t *)data, len, image, err, errlen);
}

grefine_status grefine_encode_png(const grefine_image *image, uint8_t **png, size_t *len, char *err,
                                  size_t errlen) {
  return (grefine_status)grf_lib_encode_png((grefine_image *)image, png, len, err, errlen);
}

void grf_free_assessment(grefine_assessment *a) {
  size_t i;
  if (a == NULL) return;
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
  free(a);
}

void grefine_assessment_free(grefine_assessment *assessment) { grf_free_assessment(assessment); }

void grefine_refinement_free(grefine_refinement *r) {
  if (r == NULL) return;
  grf_free_assessment(r->assessment);
  free(r->request_id);
  free((void *)r->image.rgb);
  free(r->report_json);
  free(r);
}

void grefine_image_free(grefine_image *image) {
  if (image == NULL) return;
  free((void *)image->rgb);
  free(image);
}

void grefine_free(void *ptr) { free(ptr); }
