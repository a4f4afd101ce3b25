/* 200 open/assess/free/close cycles: the resident set stays bounded (printed). A leak of
 * the results (five float maps of 256x192, about 1 MiB a cycle, 180 MiB over the measured
 * cycles) or of the engines would exceed the bound. */
#include "check.h"

#define CYCLES 200
#define WARMUP 20 /* growth: median RSS of the last WARMUP cycles minus that of the WARMUP after the first WARMUP */
#define BOUND_MIB 32

static int cmp_long(const void *a, const void *b) {
  long x = *(const long *)a, y = *(const long *)b;
  return (x > y) - (x < y);
}

static long median(const long *v, int n) {
  long tmp[WARMUP];
  memcpy(tmp, v, (size_t)n * sizeof *v);
  qsort(tmp, (size_t)n, sizeof *tmp, cmp_long);
  return tmp[n / 2];
}

int main(int argc, char **argv) {
  char err[512];
  const char *models = test_models(argc, argv);
  const char *cache = argc > 2 ? argv[2] : NULL;
  grefine_image img = test_image(256, 192, 0);
  long rss[CYCLES + 1], warm, now, first;
  int i;
  for (i = 1; i <= CYCLES; i++) {
    grefine_options o;
    grefine_pipeline *p = NULL;
    grefine_assessment *a = NULL;
    grefine_options_init(&o);
    o.models = models;
    o.hash_cache = cache;
    o.assess_only = 1;
    REQUIRE(grefine_open(&o, &p, err, sizeof err) == GREFINE_OK, "open %d: %s", i, err);
    REQUIRE(grefine_assess(p, &img, "a red square", NULL, &a, err, sizeof err) == GREFINE_OK, "assess %d: %s", i, err);
    grefine_assessment_free(a);
    grefine_close(p);
    rss[i] = rss_kib();
    if (i == 1 || i % 20 == 0) printf("cycle %3d: rss %6.1f MiB\n", i, rss[i] / 1024.0);
  }
  first = rss[1];
  warm = median(rss + WARMUP + 1, WARMUP);
  now = median(rss + CYCLES - WARMUP + 1, WARMUP);
  printf("rss: first cycle %.1f MiB, median of cycles %d-%d %.1f MiB, of cycles %d-%d %.1f MiB (growth %.1f MiB, bound %d MiB)\n",
         first / 1024.0, WARMUP + 1, 2 * WARMUP, warm / 1024.0, CYCLES - WARMUP + 1, CYCLES, now / 1024.0,
         (now - warm) / 1024.0, BOUND_MIB);
  CHECK(now - warm < BOUND_MIB * 1024L, "rss grew by %.1f MiB over %d cycles", (now - warm) / 1024.0, CYCLES - WARMUP);
  free((void *)img.rgb);
  return check_done("test_rss");
}
