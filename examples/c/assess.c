/* assess: the quality report of one image through libgrefine.
 *
 *   assess MODELS IMAGE PROMPT OUTDIR
 *
 * Writes OUTDIR/report.json (the pipeline's report, as `grefine assess` writes it minus
 * the CLI's file-only fields) and the float maps OUTDIR/p_map.f32, a_map.f32 (with a
 * prompt) and mask.f32 (row-major float32, height x width; the data of the CLI's
 * --save-maps .npy files). Build: cc assess.c $(pkg-config --cflags --libs grefine)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grefine.h"

static unsigned char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  unsigned char *buf = NULL;
  long n;
  if (f == NULL) return NULL;
  if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0) {
    buf = malloc((size_t)n);
    if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
      free(buf);
      buf = NULL;
    }
    *len = (size_t)n;
  }
  fclose(f);
  return buf;
}

static int write_file(const char *dir, const char *name, const void *data, size_t len) {
  char path[4096];
  FILE *f;
  snprintf(path, sizeof path, "%s/%s", dir, name);
  f = fopen(path, "wb");
  if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
    fprintf(stderr, "assess: cannot write %s\n", path);
    return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  char err[1024];
  grefine_options opts;
  grefine_pipeline *p = NULL;
  grefine_image *img = NULL;
  grefine_assessment *a = NULL;
  unsigned char *data;
  size_t len = 0, n, i;
  grefine_status st;
  int rc = 1;

  if (argc != 5) {
    fprintf(stderr, "usage: assess MODELS IMAGE PROMPT OUTDIR\n");
    return 2;
  }
  if (grefine_abi_version() != GREFINE_ABI_VERSION) {
    fprintf(stderr, "assess: libgrefine ABI %d, header %d\n", grefine_abi_version(), GREFINE_ABI_VERSION);
    return 1;
  }
  if ((data = read_file(argv[2], &len)) == NULL) {
    fprintf(stderr, "assess: cannot read %s\n", argv[2]);
    return 1;
  }
  grefine_options_init(&opts);
  opts.models = argv[1];
  opts.assess_only = 1;
  if ((st = grefine_open(&opts, &p, err, sizeof err)) != GREFINE_OK) goto fail;
  if ((st = grefine_image_decode(p, data, len, &img, err, sizeof err)) != GREFINE_OK) goto fail;
  if ((st = grefine_assess(p, img, argv[3], NULL, &a, err, sizeof err)) != GREFINE_OK) goto fail;

  n = (size_t)a->width * (size_t)a->height;
  if (write_file(argv[4], "report.json", a->report_json, strlen(a->report_json)) != 0 ||
      write_file(argv[4], "p_map.f32", a->p_map, n * sizeof(float)) != 0 ||
      write_file(argv[4], "mask.f32", a->mask, n * sizeof(float)) != 0 ||
      (a->has_a && write_file(argv[4], "a_map.f32", a->a_map, n * sizeof(float)) != 0))
    goto out;
  if (a->has_a)
    printf("p=%.4f a=%.4f q=%.4f mask=%.1f%% (request %s)\n", a->p, a->a, a->q, 100 * a->mask_fraction, a->request_id);
  else
    printf("p=%.4f a=skipped q=%.4f mask=%.1f%% (request %s)\n", a->p, a->q, 100 * a->mask_fraction, a->request_id);
  for (i = 0; i < a->n_parts; i++)
    printf("  %-28s noun=%-12s a_pn=%.3f a_ph=%.3f defect=%d\n", a->parts[i].text, a->parts[i].noun,
           a->parts[i].noun_score, a->parts[i].phrase_score, (int)a->parts[i].defect);
  rc = 0;
  goto out;
fail:
  fprintf(stderr, "assess: %s: %s\n", grefine_status_string(st), err);
out:
  grefine_assessment_free(a);
  grefine_image_free(img);
  grefine_close(p);
  free(data);
  return rc;
}
