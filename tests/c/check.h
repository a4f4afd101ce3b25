/* Include first: POSIX (sysconf, pthreads) under -std=c99. */
#define _POSIX_C_SOURCE 200809L

/* Minimal test helpers for the libgrefine C tests: CHECK counts failures and goes on,
 * REQUIRE stops the test. Each test program exits 1 when anything failed. */
#ifndef GRF_TESTS_CHECK_H
#define GRF_TESTS_CHECK_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "grefine.h"

#if defined(__GNUC__)
#define GRF_UNUSED __attribute__((unused))
#else
#define GRF_UNUSED
#endif

static int check_failures = 0;

#define CHECK(cond, ...)                                                  \
  do {                                                                    \
    if (!(cond)) {                                                        \
      check_failures++;                                                   \
      fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                       \
      fprintf(stderr, "\n");                                              \
    }                                                                     \
  } while (0)

#define REQUIRE(cond, ...)                                                \
  do {                                                                    \
    if (!(cond)) {                                                        \
      fprintf(stderr, "%s:%d: REQUIRE(%s) failed: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                       \
      fprintf(stderr, "\n");                                              \
      exit(1);                                                            \
    }                                                                     \
  } while (0)

/* CHECK_STATUS: the call returned `want` and wrote a non-empty message (or "" for OK). */
#define CHECK_STATUS(got, want, err)                                                          \
  do {                                                                                        \
    grefine_status g_ = (got);                                                                \
    CHECK(g_ == (want), "status %s (%d), want %s: %s", grefine_status_string(g_), (int)g_,    \
          grefine_status_string(want), (err));                                                \
    if ((want) != GREFINE_OK) CHECK((err)[0] != '\0', "no error message");                    \
    else CHECK((err)[0] == '\0', "message on success: %s", (err));                             \
  } while (0)

static GRF_UNUSED int check_done(const char *name) {
  if (check_failures) {
    fprintf(stderr, "%s: %d check(s) failed\n", name, check_failures);
    return 1;
  }
  printf("%s: ok\n", name);
  return 0;
}

/* A deterministic w x h test picture (gradients and a square), packed or with `pad`
 * garbage bytes after each row. The caller frees the pixels. */
static GRF_UNUSED grefine_image test_image(int w, int h, int pad) {
  grefine_image img;
  int x, y, stride = 3 * w + pad;
  uint8_t *px = malloc((size_t)stride * (size_t)h);
  for (y = 0; y < h; y++) {
    uint8_t *row = px + (size_t)y * (size_t)stride;
    for (x = 0; x < w; x++) {
      int in = x > w / 3 && x < 2 * w / 3 && y > h / 3 && y < 2 * h / 3;
      row[3 * x + 0] = (uint8_t)(in ? 220 : (x * 255) / w);
      row[3 * x + 1] = (uint8_t)(in ? 30 : (y * 255) / h);
      row[3 * x + 2] = (uint8_t)((x + y) & 0xff);
    }
    for (x = 3 * w; x < stride; x++) row[x] = (uint8_t)(0xA5 ^ x);
  }
  img.width = w;
  img.height = h;
  img.stride = stride;
  img.rgb = px;
  return img;
}

static GRF_UNUSED const char *test_models(int argc, char **argv) {
  const char *m = argc > 1 ? argv[1] : getenv("GREFINE_TEST_MODELS");
  REQUIRE(m != NULL && m[0] != '\0', "give the tiny model set as argv[1] or $GREFINE_TEST_MODELS");
  return m;
}

/* Resident set size in KiB (Linux /proc/self/statm). */
static GRF_UNUSED long rss_kib(void) {
  long pages = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f == NULL) return -1;
  if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = -1;
  fclose(f);
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static GRF_UNUSED int same_floats(const float *a, const float *b, size_t n) {
  if (a == NULL || b == NULL) return a == b;
  return memcmp(a, b, n * sizeof(float)) == 0;
}

#endif
