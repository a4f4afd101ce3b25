/* Every error path of the C API: NULL arguments, wrong struct_size, width/height 0,
 * stride < 3*width, bad params, missing models, the error buffer, a forged handle ->
 * GREFINE_ERR_INPUT, BUSY when timeout_ms passes in the queue; and the success path's
 * invariants (stride honoured, ownership, struct sizes, request ids, logging). Misuse
 * (double close, double free, use after close) is test_misuse.c. */
#include "check.h"

#include <math.h>
#include <pthread.h>
#include <stddef.h>

static int log_warnings = 0, log_tiny = 0;

static void on_log(void *user, int level, const char *message) {
  (void)user;
  if (level == GREFINE_LOG_WARN) log_warnings++;
  if (strstr(message, "tiny") != NULL && message[0] == '{') log_tiny++;
}

static void test_status_table(void) {
  static const char *names[] = {"ok", "input", "busy", "unavailable", "canceled", "internal"};
  int i;
  CHECK(GREFINE_OK == 0 && GREFINE_ERR_INPUT == 1 && GREFINE_ERR_BUSY == 2 && GREFINE_ERR_UNAVAILABLE == 3 &&
            GREFINE_ERR_CANCELED == 4 && GREFINE_ERR_INTERNAL == 5,
        "enum values");
  for (i = 0; i <= GREFINE_ERR_INTERNAL; i++)
    CHECK(strcmp(grefine_status_string((grefine_status)i), names[i]) == 0, "status %d is %s", i,
          grefine_status_string((grefine_status)i));
  CHECK(strcmp(grefine_status_string((grefine_status)99), "internal") == 0, "unknown status");
  CHECK(grefine_abi_version() == GREFINE_ABI_VERSION, "abi %d", grefine_abi_version());
  CHECK(grefine_version() != NULL && grefine_version()[0] != '\0', "version");
}

static void test_open_errors(const char *models) {
  char err[512];
  grefine_options o;
  grefine_pipeline *p = (grefine_pipeline *)&o; /* must be reset to NULL on failure */

  CHECK_STATUS(grefine_open(NULL, &p, err, sizeof err), GREFINE_ERR_INPUT, err);
  CHECK(p == NULL, "out not reset");
  grefine_options_init(&o);
  o.models = models;
  CHECK_STATUS(grefine_open(&o, NULL, err, sizeof err), GREFINE_ERR_INPUT, err);

  o.struct_size = sizeof o - 8;
  CHECK_STATUS(grefine_open(&o, &p, err, sizeof err), GREFINE_ERR_INPUT, err);
  CHECK(strstr(err, "struct_size") != NULL, "message names struct_size: %s", err);
  o.struct_size = 0;
  CHECK_STATUS(grefine_open(&o, &p, err, sizeof err), GREFINE_ERR_INPUT, err);
  o.struct_size = sizeof o + 64;
  CHECK_STATUS(grefine_open(&o, &p, err, sizeof err), GREFINE_ERR_INPUT, err);

  grefine_options_init(&o);
  CHECK_STATUS(grefine_open(&o, &p, err, sizeof err), GREFINE_ERR_INPUT, err); /* models NULL */
  o.models = "/nonexistent/grefine-models";
  CHECK_STATUS(grefine_open(&o, &p, err, sizeof err), GREFINE_ERR_UNAVAILABLE, err);
  CHECK(p == NULL, "out not NULL");
  o.models = models;
  o.device = "tpu";
  CHECK_STATUS(grefine_open(&o, &p, err, sizeof err), GREFINE_ERR_INPUT, err);
  o.device = NULL;
  o.slots = 1000;
  CHECK_STATUS(grefine_open(&o, &p, err, sizeof err), GREFINE_ERR_INPUT, err);
  o.slots = 1;
  o.log = on_log;
  o.log_level = 9;
  CHECK_STATUS(grefine_open(&o, &p, err, sizeof err), GREFINE_ERR_INPUT, err);
  o.log = NULL;
  o.backend = "nope";
  CHECK_STATUS(grefine_open(&o, &p, err, sizeof err), GREFINE_ERR_UNAVAILABLE, err);
  o.backend = NULL;
  o.backend_lib = "/nonexistent/libonnxruntime.so.1";
  /* ONNX Runtime is initialised once per process: the process already uses another one or
   * this path is missing; either way the pipeline is unavailable. */
  CHECK_STATUS(grefine_open(&o, &p, err, sizeof err), GREFINE_ERR_UNAVAILABLE, err);
  CHECK(p == NULL, "out not NULL");
}

static void test_err_buffer(void) {
  char small[8], big[256];
  grefine_pipeline *p = NULL;
  memset(small, 'x', sizeof small);
  CHECK_STATUS(grefine_open(NULL, &p, small, sizeof small), GREFINE_ERR_INPUT, small);
  CHECK(strlen(small) == sizeof small - 1, "truncated to %zu: %s", strlen(small), small);
  CHECK(grefine_open(NULL, &p, NULL, 0) == GREFINE_ERR_INPUT, "NULL err buffer");
  memset(small, 'x', sizeof small);
  CHECK(grefine_open(NULL, &p, small, 0) == GREFINE_ERR_INPUT && small[0] == 'x', "errlen 0 writes nothing");
  CHECK_STATUS(grefine_open(NULL, &p, big, sizeof big), GREFINE_ERR_INPUT, big);
  CHECK(strstr(big, "grefine_open") != NULL, "message names the call: %s", big);
}

static void test_request_errors(grefine_pipeline *p) {
  char err[512];
  grefine_image img = test_image(96, 64, 0), bad;
  grefine_params pr;
  grefine_assessment *a = (grefine_assessment *)&img;
  grefine_refinement *r = (grefine_refinement *)&img;
  static const uint8_t invalid_utf8[] = {'a', ' ', 0xff, 0xfe, 0};

  CHECK_STATUS(grefine_assess(NULL, &img, "a cat", NULL, &a, err, sizeof err), GREFINE_ERR_INPUT, err);
  CHECK(a == NULL, "out not reset");
  CHECK_STATUS(grefine_assess(p, NULL, "a cat", NULL, &a, err, sizeof err), GREFINE_ERR_INPUT, err);
  CHECK_STATUS(grefine_assess(p, &img, "a cat", NULL, NULL, err, sizeof err), GREFINE_ERR_INPUT, err);
  bad = img;
  bad.width = 0;
  CHECK_STATUS(grefine_assess(p, &bad, "a cat", NULL, &a, err, sizeof err), GREFINE_ERR_INPUT, err);
  bad = img;
  bad.height = 0;
  CHECK_STATUS(grefine_assess(p, &bad, "a cat", NULL, &a, err, sizeof err), GREFINE_ERR_INPUT, err);
  bad = img;
  bad.width = -5;
  CHECK_STATUS(grefine_assess(p, &bad, "a cat", NULL, &a, err, sizeof err), GREFINE_ERR_INPUT, err);
  bad = img;
  bad.stride = 3 * img.width - 1;
  CHECK_STATUS(grefine_assess(p, &bad, "a cat", NULL, &a, err, sizeof err), GREFINE_ERR_INPUT, err);
  CHECK(strstr(err, "stride") != NULL, "names the stride: %s", err);
  bad = img;
  bad.rgb = NULL;
  CHECK_STATUS(grefine_assess(p, &bad, "a cat", NULL, &a, err, sizeof err), GREFINE_ERR_INPUT, err);
  bad = img;
  bad.width = bad.height = 32; /* below the pipeline's 64 px minimum */
  CHECK_STATUS(grefine_assess(p, &bad, "a cat", NULL, &a, err, sizeof err), GREFINE_ERR_INPUT, err);
  bad = img;
  bad.width = 100000; /* over the side limit: refused before reading the pixels */
  bad.stride = 3 * bad.width;
  CHECK_STATUS(grefine_assess(p, &bad, "a cat", NULL, &a, err, sizeof err), GREFINE_ERR_INPUT, err);
  CHECK_STATUS(grefine_assess(p, &img, (const char *)invalid_utf8, NULL, &a, err, sizeof err), GREFINE_ERR_INPUT, err);

  grefine_params_init(&pr);
  pr.struct_size = 16;
  CHECK_STATUS(grefine_assess(p, &img, "a cat", &pr, &a, err, sizeof err), GREFINE_ERR_INPUT, err);
  CHECK(strstr(err, "struct_size") != NULL, "names struct_size: %s", err);
  grefine_params_init(&pr);
  pr.steps1 = 0;
  CHECK_STATUS(grefine_assess(p, &img, "a cat", &pr, &a, err, sizeof err), GREFINE_ERR_INPUT, err);
  CHECK(strstr(err, "steps1") != NULL, "names steps1: %s", err);
  grefine_params_init(&pr);
  pr.guidance1 = NAN;
  CHECK_STATUS(grefine_assess(p, &img, "a cat", &pr, &a, err, sizeof err), GREFINE_ERR_INPUT, err);
  CHECK(strstr(err, "guidance1") != NULL, "names guidance1: %s", err);
  grefine_params_init(&pr);
  pr.align_bound = 2;
  CHECK_STATUS(grefine_assess(p, &img, "a cat", &pr, &a, err, sizeof err), GREFINE_ERR_INPUT, err);
  grefine_params_init(&pr);
  pr.long_side = 1024; /* too large for the tiny set */
  CHECK_STATUS(grefine_assess(p, &img, "a cat", &pr, &a, err, sizeof err), GREFINE_ERR_INPUT, err);
  grefine_params_init(&pr);
  pr.timeout_ms = -1;
  CHECK_STATUS(grefine_assess(p, &img, "a cat", &pr, &a, err, sizeof err), GREFINE_ERR_INPUT, err);
  grefine_params_init(&pr);
  pr.request_id = "0123456789012345678901234567890123456789012345678901234567890123456789"
                  "0123456789012345678901234567890123456789012345678901234567890123456789";
  CHECK_STATUS(grefine_assess(p, &img, "a cat", &pr, &a, err, sizeof err), GREFINE_ERR_INPUT, err);
  CHECK(a == NULL, "out stays NULL");

  /* The pipeline was opened assess-only. */
  CHECK_STATUS(grefine_refine(p, &img, "a cat", NULL, &r, err, sizeof err), GREFINE_ERR_UNAVAILABLE, err);
  CHECK(r == NULL, "out not reset");
  CHECK_STATUS(grefine_refine(p, &img, "a cat", NULL, NULL, err, sizeof err), GREFINE_ERR_INPUT, err);

  CHECK(grefine_cancel(NULL, "x") == 0, "cancel NULL pipeline");
  CHECK(grefine_cancel(p, NULL) == 0, "cancel NULL id");
  CHECK(grefine_cancel(p, "not-in-flight") == 0, "cancel unknown id");
  free((void *)img.rgb);
}

static void test_images(grefine_pipeline *p) {
  char err[512];
  grefine_image img = test_image(80, 70, 5), *dec = NULL;
  uint8_t *png = NULL;
  size_t n = 0;
  int y, same = 1;
  static const uint8_t junk[] = "this is not an image";

  CHECK_STATUS(grefine_image_decode(p, NULL, 10, &dec, err, sizeof err), GREFINE_ERR_INPUT, err);
  CHECK_STATUS(grefine_image_decode(p, junk, sizeof junk, &dec, err, sizeof err), GREFINE_ERR_INPUT, err);
  CHECK_STATUS(grefine_image_decode(NULL, junk, sizeof junk, &dec, err, sizeof err), GREFINE_ERR_INPUT, err);
  CHECK_STATUS(grefine_image_decode(p, junk, sizeof junk, NULL, err, sizeof err), GREFINE_ERR_INPUT, err);
  CHECK(dec == NULL, "out stays NULL");
  CHECK_STATUS(grefine_encode_png(NULL, &png, &n, err, sizeof err), GREFINE_ERR_INPUT, err);
  CHECK_STATUS(grefine_encode_png(&img, NULL, &n, err, sizeof err), GREFINE_ERR_INPUT, err);

  /* PNG round trip through the padded stride. */
  CHECK_STATUS(grefine_encode_png(&img, &png, &n, err, sizeof err), GREFINE_OK, err);
  REQUIRE(png != NULL && n > 8 && memcmp(png, "\x89PNG", 4) == 0, "PNG signature");
  CHECK_STATUS(grefine_image_decode(p, png, n, &dec, err, sizeof err), GREFINE_OK, err);
  REQUIRE(dec != NULL, "decoded");
  CHECK(dec->width == 80 && dec->height == 70 && dec->stride == 240, "%dx%d stride %d", dec->width, dec->height,
        dec->stride);
  for (y = 0; y < img.height; y++)
    same &= memcmp(dec->rgb + (size_t)y * (size_t)dec->stride, img.rgb + (size_t)y * (size_t)img.stride, 240) == 0;
  CHECK(same, "round-trip pixels differ");
  grefine_image_free(dec);
  grefine_free(png);
  free((void *)img.rgb);
}

static void test_assess_ok(grefine_pipeline *p) {
  char err[512];
  grefine_image packed = test_image(96, 64, 0), padded = test_image(96, 64, 13);
  grefine_params pr;
  grefine_assessment *a = NULL, *b = NULL, *c = NULL;
  size_t n = 96 * 64, i;
  char *info = NULL;

  grefine_params_init(&pr);
  CHECK(pr.struct_size == sizeof pr && pr.long_side == GREFINE_SIZE_DEFAULT && pr.steps1 > 0, "params_init");
  pr.request_id = "assess-1";
  CHECK_STATUS(grefine_assess(p, &packed, "a red square on a gradient", &pr, &a, err, sizeof err), GREFINE_OK, err);
  REQUIRE(a != NULL, "assessment");
  CHECK(a->struct_size == sizeof *a, "struct_size %zu", a->struct_size);
  CHECK(strcmp(a->request_id, "assess-1") == 0, "request id %s", a->request_id);
  CHECK(a->width == 96 && a->height == 64, "size");
  CHECK(a->has_a && a->a_map != NULL && a->align_mask != NULL, "alignment ran");
  CHECK(a->n_parts >= 1 && a->parts != NULL && a->parts[0].text != NULL, "parts");
  for (i = 0; i < a->n_parts; i++)
    CHECK(a->parts[i].defect >= GREFINE_DEFECT_NONE && a->parts[i].defect <= GREFINE_DEFECT_ATTRIBUTE, "defect");
  CHECK(a->p >= 0 && a->p <= 1 && a->q >= 0 && a->q <= 1, "scores");
  CHECK(a->report_json != NULL && a->report_json[0] == '{' && strstr(a->report_json, "\"request_id\":\"assess-1\""),
        "report");
  CHECK(a->pipeline_ms > 0, "pipeline_ms");
  for (i = 0; i < n; i++) CHECK(a->mask[i] == 0 || a->mask[i] == 1, "binary mask");

  /* The stride is honoured: padded rows give the same result. A generated id. */
  CHECK_STATUS(grefine_assess(p, &padded, "a red square on a gradient", NULL, &b, err, sizeof err), GREFINE_OK, err);
  REQUIRE(b != NULL, "assessment");
  CHECK(same_floats(a->p_map, b->p_map, n) && same_floats(a->a_map, b->a_map, n) && same_floats(a->mask, b->mask, n),
        "padded stride changes the maps");
  CHECK(a->p == b->p && a->q == b->q, "scores differ");
  CHECK(strlen(b->request_id) > 0 && strcmp(b->request_id, "assess-1") != 0, "generated id %s", b->request_id);

  /* No prompt: alignment skipped. */
  CHECK_STATUS(grefine_assess(p, &packed, NULL, NULL, &c, err, sizeof err), GREFINE_OK, err);
  REQUIRE(c != NULL, "assessment");
  CHECK(!c->has_a && c->a_map == NULL && c->align_mask == NULL && c->n_parts == 0 && c->parts == NULL, "no alignment");
  CHECK(same_floats(a->p_map, c->p_map, n), "P does not depend on the prompt");

  CHECK_STATUS(grefine_info(p, &info, err, sizeof err), GREFINE_OK, err);
  CHECK(info != NULL && strstr(info, "\"tiny\":true") != NULL, "info: %s", info ? info : "(null)");
  CHECK_STATUS(grefine_info(p, NULL, err, sizeof err), GREFINE_ERR_INPUT, err);
  grefine_free(info);
  grefine_assessment_free(a);
  grefine_assessment_free(b);
  grefine_assessment_free(c);
  CHECK(grefine_assessment_free(NULL) == GREFINE_OK && grefine_refinement_free(NULL) == GREFINE_OK &&
            grefine_image_free(NULL) == GREFINE_OK && grefine_free(NULL) == GREFINE_OK && grefine_close(NULL) == GREFINE_OK,
        "NULL frees nothing");
  free((void *)packed.rgb);
  free((void *)padded.rgb);
}

/* A program built against the first header (its grefine_params ended at progress_user)
 * calls the grefine_params_init symbol with that smaller struct: nothing past it is written,
 * and the library takes it, the large-image fields at their defaults. This header's callers
 * get the whole struct through the macro (grefine_params_init_sized). */
static void test_first_release_params(grefine_pipeline *p) {
  char err[512];
  grefine_image img = test_image(96, 64, 0);
  grefine_assessment *a = NULL, *b = NULL;
  const size_t first = offsetof(grefine_params, tile);
  union {
    grefine_params pr;
    unsigned char bytes[sizeof(grefine_params) + 64];
  } u;
  size_t i, spill = 0;

  memset(&u, 0xA5, sizeof u);
  (grefine_params_init)(&u.pr); /* the symbol, as a program of the first header calls it */
  for (i = first; i < sizeof u.bytes; i++) spill += u.bytes[i] != 0xA5;
  CHECK(spill == 0, "grefine_params_init wrote %zu bytes past the first release's struct", spill);
  CHECK(u.pr.struct_size == first && u.pr.steps1 > 0 && u.pr.long_side == GREFINE_SIZE_DEFAULT,
        "first-release init: struct_size %zu, want %zu", u.pr.struct_size, first);
  CHECK_STATUS(grefine_assess(p, &img, "a red square", &u.pr, &a, err, sizeof err), GREFINE_OK, err);

  memset(&u, 0xA5, sizeof u);
  grefine_params_init_sized(&u.pr, sizeof u.bytes); /* larger than the library's: its own size */
  CHECK(u.pr.struct_size == sizeof(grefine_params), "oversized init: struct_size %zu", u.pr.struct_size);
  for (i = sizeof(grefine_params), spill = 0; i < sizeof u.bytes; i++) spill += u.bytes[i] != 0xA5;
  CHECK(spill == 0, "grefine_params_init_sized wrote %zu bytes past grefine_params", spill);
  CHECK(u.pr.tile == GREFINE_SIZE_DEFAULT && u.pr.crop != 0, "large-image defaults");
  CHECK_STATUS(grefine_assess(p, &img, "a red square", &u.pr, &b, err, sizeof err), GREFINE_OK, err);
  CHECK(a != NULL && b != NULL && a->p == b->p && a->q == b->q, "same request, same scores");
  grefine_assessment_free(a);
  a = NULL;

  memset(&u, 0xA5, sizeof u);
  grefine_params_init_sized(&u.pr, first - 1); /* older than any release: only struct_size */
  CHECK(u.pr.struct_size == first - 1 && u.bytes[sizeof(size_t)] == 0xA5, "too small: only struct_size written");
  CHECK_STATUS(grefine_assess(p, &img, "a red square", &u.pr, &a, err, sizeof err), GREFINE_ERR_INPUT, err);
  CHECK(strstr(err, "struct_size") != NULL, "names struct_size: %s", err);
  grefine_params_init_sized(NULL, sizeof(grefine_params));
  (grefine_params_init)(NULL);

  grefine_assessment_free(b);
  free((void *)img.rgb);
}

static void test_forged_handle(void) {
  char err[512];
  grefine_image img = test_image(96, 64, 0);
  grefine_assessment *a = NULL;
  /* A pointer that grefine_open never returned: refused as bad input, never dereferenced. */
  grefine_pipeline *forged = calloc(1, 64);
  CHECK_STATUS(grefine_assess(forged, &img, "a cat", NULL, &a, err, sizeof err), GREFINE_ERR_INPUT, err);
  CHECK(strstr(err, "not a pipeline handle") != NULL, "message: %s", err);
  CHECK(a == NULL, "out NULL");
  CHECK(grefine_cancel(forged, "x") == 0, "cancel on a forged handle");
  CHECK(grefine_close(forged) == GREFINE_ERR_INPUT, "close of a forged handle");
  free(forged);
  free((void *)img.rgb);
}

/* BUSY and timeout_ms: a call holds the only slot (its progress callback blocks at
 * "assess"); a second call with timeout_ms waits in the queue and gets BUSY. */
static pthread_mutex_t hold_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hold_cv = PTHREAD_COND_INITIALIZER;
static int holding = 0, release_hold = 0;

static int hold_slot(void *user, const char *stage, int step, int total) {
  (void)user;
  (void)step;
  (void)total;
  if (strcmp(stage, "assess") != 0) return 0;
  pthread_mutex_lock(&hold_mu);
  holding = 1;
  pthread_cond_broadcast(&hold_cv);
  while (!release_hold) pthread_cond_wait(&hold_cv, &hold_mu);
  pthread_mutex_unlock(&hold_mu);
  return 0;
}

struct holder {
  grefine_pipeline *p;
  grefine_image img;
  grefine_status st;
  char err[512];
};

static void *holder_main(void *arg) {
  struct holder *h = arg;
  grefine_params pr;
  grefine_assessment *a = NULL;
  grefine_params_init(&pr);
  pr.progress = hold_slot;
  h->st = grefine_assess(h->p, &h->img, "a cat", &pr, &a, h->err, sizeof h->err);
  grefine_assessment_free(a);
  return NULL;
}

static void test_busy_timeout(grefine_pipeline *p) {
  char err[512];
  pthread_t t;
  struct holder h;
  grefine_params pr;
  grefine_assessment *a = NULL;
  memset(&h, 0, sizeof h);
  h.p = p;
  h.img = test_image(96, 64, 0);
  REQUIRE(pthread_create(&t, NULL, holder_main, &h) == 0, "thread");
  pthread_mutex_lock(&hold_mu);
  while (!holding) pthread_cond_wait(&hold_cv, &hold_mu);
  pthread_mutex_unlock(&hold_mu);
  grefine_params_init(&pr);
  pr.timeout_ms = 50;
  CHECK_STATUS(grefine_assess(p, &h.img, "a cat", &pr, &a, err, sizeof err), GREFINE_ERR_BUSY, err);
  CHECK(a == NULL, "no result");
  pthread_mutex_lock(&hold_mu);
  release_hold = 1;
  pthread_cond_broadcast(&hold_cv);
  pthread_mutex_unlock(&hold_mu);
  pthread_join(t, NULL);
  CHECK_STATUS(h.st, GREFINE_OK, h.err);
  free((void *)h.img.rgb);
}

int main(int argc, char **argv) {
  const char *models = test_models(argc, argv);
  char err[512];
  grefine_options o;
  grefine_pipeline *p = NULL;

  test_status_table();
  test_err_buffer();
  test_open_errors(models);

  grefine_options_init(&o);
  CHECK(o.struct_size == sizeof o && o.slots == 1 && o.log_level == GREFINE_LOG_WARN, "options_init");
  o.models = models;
  o.assess_only = 1;
  o.log = on_log;
  CHECK_STATUS(grefine_open(&o, &p, err, sizeof err), GREFINE_OK, err);
  REQUIRE(p != NULL, "open: %s", err);
  CHECK(log_warnings >= 1 && log_tiny >= 1, "the tiny-set warning reached the log callback (%d, %d)", log_warnings,
        log_tiny);

  test_request_errors(p);
  test_images(p);
  test_assess_ok(p);
  test_first_release_params(p);
  test_forged_handle();
  test_busy_timeout(p);
  grefine_close(p);
  return check_done("test_errors");
}
