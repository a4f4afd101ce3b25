/*
 * kernels_tile.c: cuda-emu's launchers of the ABI 3 families of grefine_cuda.h for large
 * images: grf_tile_gather, grf_tile_accumulate, grf_vae_blend and grf_bounding_box. Each
 * validates like its CUDA launcher in cgo/kernels/tile.cu (same messages), names its
 * device-memory arguments with their extents and queues the header's reference loop, in
 * engine/cpu's order (float32 without contraction), so the results equal the Go twins bit
 * for bit.
 */
#include <stdint.h>
#include <string.h>

#include "emu_internal.h"

static int launch(grf_stream* stream, const char* what, grf_emu_arg* a, int n, grf_emu_fn run, const void* user,
                  size_t user_bytes, char* err, size_t errlen) {
  return grf_emu_launch(stream, -1, what, a, n, run, user, user_bytes, NULL, err, errlen);
}

/* ---- grf_tile_gather, grf_tile_accumulate (engine/cpu TileGather, TileAccumulate) ------- */

static int tile_args(const grf_tile_params* p, const char* what, char* err, size_t errlen) {
  if (p == NULL) return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "%s: null params", what);
  if (p->n < 1 || p->n > GRF_MAX_TILES || p->th < 1 || p->tw < 1 || p->channels < 1 || p->copies < 1 || p->height < 1 ||
      p->width < 1)
    return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "%s: %d windows of %dx%d, %d channels, %d copies, plane %dx%d",
                    what, p->n, p->tw, p->th, p->channels, p->copies, p->width, p->height);
  for (int k = 0; k < p->n; k++)
    if (p->y[k] < 0 || p->x[k] < 0 || p->y[k] + p->th > p->height || p->x[k] + p->tw > p->width)
      return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "%s: window %d at (%d,%d) outside the %dx%d plane", what, k,
                      p->x[k], p->y[k], p->width, p->height);
  return GRF_CUDA_OK;
}

static int run_gather(void* user, const grf_emu_arg* a, int nargs, char* err, size_t errlen) {
  const grf_tile_params* p = user;
  const float* src = a[0].alias;
  float* dst = a[1].alias;
  const int C = p->channels, H = p->height, W = p->width, n = p->n, th = p->th, tw = p->tw;
  (void)nargs, (void)err, (void)errlen;
  for (int j = 0; j < p->copies; j++) {
    int r = p->r == 1 ? 0 : j;
    for (int k = 0; k < n; k++)
      for (int c = 0; c < C; c++)
        for (int y = 0; y < th; y++)
          memcpy(dst + (((long long)(j * n + k) * C + c) * th + y) * tw,
                 src + (((long long)r * C + c) * H + p->y[k] + y) * W + p->x[k], sizeof(float) * (size_t)tw);
  }
  return GRF_CUDA_OK;
}

int grf_tile_gather(const grf_tile_params* p, grf_stream* stream, char* err, size_t errlen) {
  int rc = tile_args(p, "grf_tile_gather", err, errlen);
  if (rc != GRF_CUDA_OK) return rc;
  if (p->r != 1 && p->r != p->copies)
    return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_tile_gather: %d source rows for %d copies", p->r, p->copies);
  if (p->src == NULL || p->dst == NULL) return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_tile_gather: null tensor");
  {
    grf_emu_arg a[2] = {
        {"src", p->src, sizeof(float) * (size_t)p->r * p->channels * p->height * p->width, NULL},
        {"dst", p->dst, sizeof(float) * (size_t)p->copies * p->n * p->channels * p->th * p->tw, NULL}};
    return launch(stream, "grf_tile_gather", a, 2, run_gather, p, sizeof *p, err, errlen);
  }
}

static int run_accumulate(void* user, const grf_emu_arg* a, int nargs, char* err, size_t errlen) {
  const grf_tile_params* p = user;
  const float* pred = a[0].alias;
  const float* wt = a[1].alias;
  float* acc = a[2].alias;
  float* wsum = a[3].alias;
  const int C = p->channels, H = p->height, W = p->width, th = p->th, tw = p->tw;
  (void)nargs, (void)err, (void)errlen;
  for (int k = 0; k < p->n; k++)
    for (int y = 0; y < th; y++) {
      const float* ww = wt + (long long)y * tw;
      for (int j = 0; j < p->copies; j++)
        for (int c = 0; c < C; c++) {
          float* d = acc + (((long long)j * C + c) * H + p->y[k] + y) * W + p->x[k];
          const float* s = pred + (((long long)(j * p->nb + k) * C + c) * th + y) * tw;
          for (int x = 0; x < tw; x++) {
            float prod = s[x] * ww[x];
            d[x] = d[x] + prod;
          }
        }
      {
        float* ws = wsum + (long long)(p->y[k] + y) * W + p->x[k];
        for (int x = 0; x < tw; x++) ws[x] = ws[x] + ww[x];
      }
    }
  return GRF_CUDA_OK;
}

int grf_tile_accumulate(const grf_tile_params* p, grf_stream* stream, char* err, size_t errlen) {
  int rc = tile_args(p, "grf_tile_accumulate", err, errlen);
  if (rc != GRF_CUDA_OK) return rc;
  if (p->nb < p->n)
    return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_tile_accumulate: %d windows of %d per copy", p->n, p->nb);
  if (p->pred == NULL || p->weights == NULL || p->acc == NULL || p->wsum == NULL)
    return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_tile_accumulate: null tensor");
  {
    size_t plane = (size_t)p->height * p->width, tile = (size_t)p->th * p->tw;
    grf_emu_arg a[4] = {{"pred", p->pred, sizeof(float) * (size_t)p->copies * p->nb * p->channels * tile, NULL},
                        {"weights", p->weights, sizeof(float) * tile, NULL},
                        {"acc", p->acc, sizeof(float) * (size_t)p->copies * p->channels * plane, NULL},
                        {"wsum", p->wsum, sizeof(float) * plane, NULL}};
    return launch(stream, "grf_tile_accumulate", a, 4, run_accumulate, p, sizeof *p, err, errlen);
  }
}

/* ---- grf_vae_blend (engine/cpu VAEBlend) ------------------------------------------------- */

static int run_blend(void* user, const grf_emu_arg* args, int nargs, char* err, size_t errlen) {
  const grf_vae_blend_params* p = user;
  const float* a = args[0].alias;
  float* b = args[1].alias;
  const int C = p->channels, ah = p->ah, aw = p->aw, bh = p->bh, bw = p->bw;
  (void)nargs, (void)err, (void)errlen;
  if (p->vertical) {
    int e = ah < bh ? ah : bh;
    e = p->extent < e ? p->extent : e;
    for (int y = 0; y < e; y++) {
      float wa = (float)(1 - (double)y / (double)e), wb = (float)((double)y / (double)e);
      for (int c = 0; c < C; c++) {
        const float* ra = a + ((long long)c * ah + ah - e + y) * aw;
        float* rb = b + ((long long)c * bh + y) * bw;
        for (int x = 0; x < bw; x++) {
          float u = ra[x] * wa, v = rb[x] * wb;
          rb[x] = u + v;
        }
      }
    }
    return GRF_CUDA_OK;
  }
  {
    int e = aw < bw ? aw : bw;
    e = p->extent < e ? p->extent : e;
    for (int x = 0; x < e; x++) {
      float wa = (float)(1 - (double)x / (double)e), wb = (float)((double)x / (double)e);
      for (int c = 0; c < C; c++)
        for (int y = 0; y < bh; y++) {
          long long i = ((long long)c * bh + y) * bw + x;
          float u = a[((long long)c * ah + y) * aw + aw - e + x] * wa, v = b[i] * wb;
          b[i] = u + v;
        }
    }
  }
  return GRF_CUDA_OK;
}

int grf_vae_blend(const grf_vae_blend_params* p, grf_stream* stream, char* err, size_t errlen) {
  if (p == NULL) return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_vae_blend: null params");
  if (p->channels < 1 || p->ah < 1 || p->aw < 1 || p->bh < 1 || p->bw < 1 || p->extent < 0 ||
      (p->vertical && p->aw != p->bw) || (!p->vertical && p->ah != p->bh))
    return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_vae_blend: [%d,%d,%d] into [%d,%d,%d], extent %d, vertical %d",
                    p->channels, p->ah, p->aw, p->channels, p->bh, p->bw, p->extent, p->vertical);
  if (p->a == NULL || p->b == NULL) return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_vae_blend: null tensor");
  {
    grf_emu_arg a[2] = {{"a", p->a, sizeof(float) * (size_t)p->channels * p->ah * p->aw, NULL},
                        {"b", p->b, sizeof(float) * (size_t)p->channels * p->bh * p->bw, NULL}};
    return launch(stream, "grf_vae_blend", a, 2, run_blend, p, sizeof *p, err, errlen);
  }
}

/* ---- grf_bounding_box (engine/cpu BoundingBox) ------------------------------------------ */

static int run_bbox(void* user, const grf_emu_arg* a, int nargs, char* err, size_t errlen) {
  const grf_bbox_params* p = user;
  const float* src = a[0].alias;
  long long* box = a[1].alias;
  long long plane = (long long)p->height * p->width, n = plane * p->planes;
  int x1 = p->width, y1 = p->height, x2 = -1, y2 = -1;
  (void)nargs, (void)err, (void)errlen;
  for (long long i = 0; i < n; i++)
    if (src[i] >= p->bound) {
      long long q = i % plane;
      int y = (int)(q / p->width), x = (int)(q % p->width);
      x1 = x < x1 ? x : x1, y1 = y < y1 ? y : y1, x2 = x > x2 ? x : x2, y2 = y > y2 ? y : y2;
    }
  if (x2 < 0) {
    memset(box, 0, 4 * sizeof(long long));
    return GRF_CUDA_OK;
  }
  box[0] = x1, box[1] = y1, box[2] = x2 + 1, box[3] = y2 + 1;
  return GRF_CUDA_OK;
}

int grf_bounding_box(const grf_bbox_params* p, grf_stream* stream, char* err, size_t errlen) {
  size_t n;
  if (p == NULL || p->box == NULL)
    return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_bounding_box: null params or output");
  if (p->planes < 0 || p->height < 0 || p->width < 0)
    return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_bounding_box: negative size");
  if (p->workspace == NULL || p->workspace_bytes < 4 * sizeof(int))
    return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_bounding_box: workspace of %zu bytes, need %zu",
                    p->workspace_bytes, 4 * sizeof(int));
  n = (size_t)p->planes * p->height * p->width;
  if (n > 0 && p->src == NULL) return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_bounding_box: null tensor");
  {
    grf_emu_arg a[3] = {{"src", n > 0 ? p->src : NULL, sizeof(float) * n, NULL},
                        {"box", p->box, 4 * sizeof(long long), NULL},
                        {"workspace", p->workspace, 4 * sizeof(int), NULL}};
    return launch(stream, "grf_bounding_box", a, 3, run_bbox, p, sizeof *p, err, errlen);
  }
}
