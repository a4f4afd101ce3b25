/* bench_assess: the C call's overhead over the Go API, in one run. Each grefine_assess
 * is timed from C (wall, clock_gettime) and reports pipeline_ms, the time the library
 * spent inside Pipeline.Assess for that call; the difference is the boundary's cost
 * (cgo transitions, copying the image in, params, copying maps, parts and the JSON report
 * out). grefine_assessment_free is timed apart. Not a ctest: tools/bench-lib.sh runs it.
 *
 *   bench_assess MODELS IMAGE PROMPT [N]
 */
#include "check.h"

#include <time.h>

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double pct(double *v, int n, double q) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return v[(int)(q * (n - 1) + 0.5)];
}

static unsigned char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  unsigned char *buf;
  long n;
  REQUIRE(f != NULL, "cannot read %s", path);
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  buf = malloc((size_t)n);
  REQUIRE(fread(buf, 1, (size_t)n, f) == (size_t)n, "short read");
  fclose(f);
  *len = (size_t)n;
  return buf;
}

int main(int argc, char **argv) {
  char err[512];
  grefine_options o;
  grefine_pipeline *p = NULL;
  grefine_image *img = NULL;
  size_t len;
  unsigned char *data;
  int n = argc > 4 ? atoi(argv[4]) : 30, i;
  double *wall, *inner, *over, *fr, sum_over = 0, sum_wall = 0;
  REQUIRE(argc >= 4 && n > 0, "usage: bench_assess MODELS IMAGE PROMPT [N]");
  wall = calloc((size_t)n, sizeof *wall);
  inner = calloc((size_t)n, sizeof *inner);
  over = calloc((size_t)n, sizeof *over);
  fr = calloc((size_t)n, sizeof *fr);
  data = read_file(argv[2], &len);
  grefine_options_init(&o);
  o.models = argv[1];
  o.assess_only = 1;
  REQUIRE(grefine_open(&o, &p, err, sizeof err) == GREFINE_OK, "open: %s", err);
  REQUIRE(grefine_image_decode(p, data, len, &img, err, sizeof err) == GREFINE_OK, "decode: %s", err);
  for (i = -3; i < n; i++) { /* 3 warm-up calls */
    grefine_assessment *a = NULL;
    double t0 = now_ms(), t1, t2;
    REQUIRE(grefine_assess(p, img, argv[3], NULL, &a, err, sizeof err) == GREFINE_OK, "assess: %s", err);
    t1 = now_ms();
    if (i >= 0) {
      wall[i] = t1 - t0;
      inner[i] = a->pipeline_ms;
      over[i] = wall[i] - inner[i];
      sum_over += over[i];
      sum_wall += wall[i];
    }
    grefine_assessment_free(a);
    t2 = now_ms();
    if (i >= 0) fr[i] = t2 - t1;
  }
  printf("image %dx%d, %d calls after 3 warm-ups\n", img->width, img->height, n);
  printf("grefine_assess wall:        median %.3f ms  p90 %.3f ms  mean %.3f ms\n", pct(wall, n, 0.5),
         pct(wall, n, 0.9), sum_wall / n);
  printf("inside Pipeline.Assess:     median %.3f ms  p90 %.3f ms\n", pct(inner, n, 0.5), pct(inner, n, 0.9));
  printf("C boundary overhead:        median %.3f ms  p90 %.3f ms  mean %.3f ms (%.2f%% of the call)\n",
         pct(over, n, 0.5), pct(over, n, 0.9), sum_over / n, 100 * sum_over / sum_wall);
  printf("grefine_assessment_free:    median %.4f ms\n", pct(fr, n, 0.5));
  grefine_image_free(img);
  grefine_close(p);
  free(data);
  free(wall);
  free(inner);
  free(over);
  free(fr);
  return 0;
}
