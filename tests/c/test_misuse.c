/* Misuse of the C API returns error codes, never a crash (issue 20): a second
 * grefine_close, a call on a closed pipeline (GREFINE_ERR_UNAVAILABLE, as the header
 * promises), a second free of every kind of result, a free of memory the library did not
 * return or of an assessment owned by a refinement (GREFINE_ERR_INPUT, nothing freed). */
#include "check.h"

static void free_twice_and_foreign(grefine_pipeline *p) {
  char err[512];
  grefine_image img = test_image(96, 64, 0), *dec = NULL;
  grefine_params pr;
  grefine_assessment *a = NULL;
  grefine_refinement *r = NULL;
  char *info = NULL;
  uint8_t *png = NULL;
  size_t n = 0;
  void *mine = malloc(32);
  grefine_assessment fake;

  CHECK_STATUS(grefine_assess(p, &img, "a red cat", NULL, &a, err, sizeof err), GREFINE_OK, err);
  REQUIRE(a != NULL, "assessment");
  CHECK(grefine_assessment_free(a) == GREFINE_OK, "first free");
  CHECK(grefine_assessment_free(a) == GREFINE_ERR_INPUT, "double free of an assessment");

  CHECK_STATUS(grefine_encode_png(&img, &png, &n, err, sizeof err), GREFINE_OK, err);
  CHECK_STATUS(grefine_image_decode(p, png, n, &dec, err, sizeof err), GREFINE_OK, err);
  CHECK(grefine_image_free(dec) == GREFINE_OK, "first image free");
  CHECK(grefine_image_free(dec) == GREFINE_ERR_INPUT, "double free of an image");
  CHECK(grefine_free(png) == GREFINE_OK, "first buffer free");
  CHECK(grefine_free(png) == GREFINE_ERR_INPUT, "double free of a buffer");
  CHECK_STATUS(grefine_info(p, &info, err, sizeof err), GREFINE_OK, err);
  CHECK(grefine_assessment_free((grefine_assessment *)info) == GREFINE_ERR_INPUT, "a buffer is no assessment");
  CHECK(grefine_free(info) == GREFINE_OK && grefine_free(info) == GREFINE_ERR_INPUT, "info freed once");

  memset(&fake, 0, sizeof fake);
  CHECK(grefine_assessment_free(&fake) == GREFINE_ERR_INPUT, "a struct of the caller's");
  CHECK(grefine_free(mine) == GREFINE_ERR_INPUT, "the caller's malloc");
  free(mine); /* still the caller's: the library did not free it */

  grefine_params_init(&pr);
  pr.steps1 = pr.steps2 = 1;
  CHECK_STATUS(grefine_refine(p, &img, "a red cat", &pr, &r, err, sizeof err), GREFINE_OK, err);
  REQUIRE(r != NULL, "refinement");
  CHECK(grefine_assessment_free(r->assessment) == GREFINE_ERR_INPUT, "the refinement owns its assessment");
  CHECK(grefine_image_free(&r->image) == GREFINE_ERR_INPUT, "the refinement owns its image");
  CHECK(r->assessment->width == 96, "the refinement's assessment is intact");
  CHECK(grefine_refinement_free(r) == GREFINE_OK, "first refinement free");
  CHECK(grefine_refinement_free(r) == GREFINE_ERR_INPUT, "double free of a refinement");
  free((void *)img.rgb);
}

static void use_after_close(grefine_pipeline *p) {
  char err[512];
  grefine_image img = test_image(96, 64, 0), *dec = NULL;
  grefine_assessment *a = NULL;
  grefine_refinement *r = NULL;
  char *info = NULL;
  static const uint8_t junk[] = "junk";

  CHECK(grefine_close(p) == GREFINE_OK, "close");
  CHECK(grefine_close(p) == GREFINE_ERR_UNAVAILABLE, "double close");
  CHECK_STATUS(grefine_assess(p, &img, "a cat", NULL, &a, err, sizeof err), GREFINE_ERR_UNAVAILABLE, err);
  CHECK(strstr(err, "closed") != NULL, "says closed: %s", err);
  CHECK(a == NULL, "no result");
  CHECK_STATUS(grefine_refine(p, &img, "a cat", NULL, &r, err, sizeof err), GREFINE_ERR_UNAVAILABLE, err);
  CHECK_STATUS(grefine_info(p, &info, err, sizeof err), GREFINE_ERR_UNAVAILABLE, err);
  CHECK_STATUS(grefine_image_decode(p, junk, sizeof junk, &dec, err, sizeof err), GREFINE_ERR_UNAVAILABLE, err);
  CHECK(grefine_cancel(p, "x") == 0, "cancel on a closed pipeline");
  CHECK(grefine_close(p) == GREFINE_ERR_UNAVAILABLE, "third close");
  free((void *)img.rgb);
}

int main(int argc, char **argv) {
  const char *models = test_models(argc, argv);
  char err[512];
  grefine_options o;
  grefine_pipeline *p = NULL, *q = NULL;

  grefine_options_init(&o);
  o.models = models;
  CHECK_STATUS(grefine_open(&o, &p, err, sizeof err), GREFINE_OK, err);
  REQUIRE(p != NULL, "open: %s", err);
  free_twice_and_foreign(p);
  use_after_close(p);
  /* A new pipeline gets a new handle; the old one stays closed. */
  o.assess_only = 1;
  CHECK_STATUS(grefine_open(&o, &q, err, sizeof err), GREFINE_OK, err);
  CHECK(q != p, "a new handle");
  CHECK(grefine_close(p) == GREFINE_ERR_UNAVAILABLE, "the old handle is still closed");
  CHECK(grefine_close(q) == GREFINE_OK, "the new one closes");
  return check_done("test_misuse");
}
