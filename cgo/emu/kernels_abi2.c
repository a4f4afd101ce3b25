/*
 * kernels_abi2.c: cuda-emu's launchers of the ABI 2 additions of grefine_cuda.h: the strided
 * device copy (grf_cuda_memcpy2d_dtod) and the kernel families of the device-resident request
 * (images, pointwise, dilate, count, PQ, text features and maps, emphasis, colour fix). Each
 * validates like its CUDA launcher in cgo/kernels (same messages), names its device-memory
 * arguments with their extents and queues the header's reference loop on the stream. The
 * loops follow engine/cpu's Go twins operation for operation (float32 and float64 without
 * contraction), so they equal them bit for bit, except where a libm function differs from
 * Go's in the last bit (exp in grf_pq_probs).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "emu_internal.h"

/* launch queues run on stream with args (see grf_emu_launch). */
static int launch(grf_stream* stream, const char* what, grf_emu_arg* a, int n, grf_emu_fn run, const void* user,
                  size_t user_bytes, char* err, size_t errlen) {
  return grf_emu_launch(stream, -1, what, a, n, run, user, user_bytes, NULL, err, errlen);
}

/* ---- grf_cuda_memcpy2d_dtod ------------------------------------------------------------ */

typedef struct {
  size_t dpitch, spitch, width, rows;
} copy2d_user;

static int run_copy2d(void* user, const grf_emu_arg* a, int n, char* err, size_t errlen) {
  const copy2d_user* u = user;
  (void)n, (void)err, (void)errlen;
  for (size_t r = 0; r < u->rows; r++)
    memmove((char*)a[0].alias + r * u->dpitch, (const char*)a[1].alias + r * u->spitch, u->width);
  return GRF_CUDA_OK;
}

int grf_cuda_memcpy2d_dtod(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width, size_t rows,
                           grf_stream* stream, char* err, size_t errlen) {
  copy2d_user u = {dpitch, spitch, width, rows};
  if (width == 0 || rows == 0) return GRF_CUDA_OK;
  if (dst == NULL || src == NULL)
    return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_cuda_memcpy2d_dtod: null pointer");
  if (dpitch < width || spitch < width)
    return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_cuda_memcpy2d_dtod: pitch below width");
  {
    grf_emu_arg a[2] = {{"dst", dst, (rows - 1) * dpitch + width, NULL}, {"src", src, (rows - 1) * spitch + width, NULL}};
    return launch(stream, "cudaMemcpy2DAsync", a, 2, run_copy2d, &u, sizeof u, err, errlen);
  }
}

/* ---- grf_resize_rgb8 (engine/cpu ResizeImage, engine/pillow Resize) ------------------------ */

#define PIL_BITS 22

static double pil_bicubic(double x) {
  const double a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

static double pil_sinc(double x) {
  if (x == 0) return 1;
  x *= 3.141592653589793;
  return sin(x) / x;
}

static double pil_filter(int filter, double x) {
  if (filter == GRF_RESAMPLE_LANCZOS) return (-3 <= x && x < 3) ? pil_sinc(x) * pil_sinc(x / 3) : 0;
  return pil_bicubic(x);
}

/* rgb8_pass is one axis: n_in pixels over [in0, in0 + span) to n_out, filter, width K. */
typedef struct {
  int in, out, k, filter;
  double in0, span;
} rgb8_pass;

static rgb8_pass make_pass(int in, double in0, double span, int out, int filter) {
  double scale = span / (double)out;
  double fs = scale > 1 ? scale : 1;
  double support = (filter == GRF_RESAMPLE_LANCZOS ? 3.0 : 2.0) * fs;
  rgb8_pass p = {in, out, (int)ceil(support) * 2 + 1, filter, in0, span};
  return p;
}

/* pil_coeffs writes bounds [2*out] and k [out*K] (engine/pillow Coeffs). */
static void pil_coeffs(rgb8_pass p, int* bounds, int32_t* k) {
  double scale = p.span / (double)p.out;
  double fs = scale > 1 ? scale : 1;
  double support = (p.filter == GRF_RESAMPLE_LANCZOS ? 3.0 : 2.0) * fs;
  for (int xx = 0; xx < p.out; xx++) {
    double center = p.in0 + ((double)xx + 0.5) * scale;
    double ss = 1 / fs;
    int xmin = (int)(center - support + 0.5);
    int xmax;
    double ww = 0;
    if (xmin < 0) xmin = 0;
    xmax = (int)(center + support + 0.5);
    if (xmax > p.in) xmax = p.in;
    xmax -= xmin;
    for (int x = 0; x < xmax; x++) ww += pil_filter(p.filter, ((double)(x + xmin) - center + 0.5) * ss);
    for (int x = 0; x < p.k; x++) {
      double v = 0;
      if (x < xmax) {
        v = pil_filter(p.filter, ((double)(x + xmin) - center + 0.5) * ss);
        if (ww != 0) v /= ww;
      }
      k[(long long)xx * p.k + x] = v < 0 ? (int32_t)(-0.5 + v * (1 << PIL_BITS)) : (int32_t)(0.5 + v * (1 << PIL_BITS));
    }
    bounds[2 * xx] = xmin;
    bounds[2 * xx + 1] = xmax;
  }
}

static uint8_t clip8(int32_t v) {
  v >>= PIL_BITS;
  return v < 0 ? 0 : (v > 255 ? 255 : (uint8_t)v);
}

static size_t align16(size_t n) { return (n + 15) / 16 * 16; }

/* rgb8_plan is Pillow 13's decision (engine/pillow PlanFor; cgo/kernels/image.cu plan). */
typedef struct {
  int crop, horizontal, vertical, vertical_first, cx, cy;
  rgb8_pass h, v;
} rgb8_plan;

static int rgb8_validate(const grf_resize_rgb8_params* p, rgb8_plan* pl, char* err, size_t errlen) {
  float x0 = 0, y0 = 0, x1, y1, sx, sy;
  if (p == NULL) return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_resize_rgb8: null params");
  if (p->in_h < 1 || p->in_w < 1 || p->out_h < 1 || p->out_w < 1)
    return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_resize_rgb8: bad size %dx%d -> %dx%d", p->in_w, p->in_h,
                    p->out_w, p->out_h);
  if (p->filter != GRF_RESAMPLE_BICUBIC && p->filter != GRF_RESAMPLE_LANCZOS)
    return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_resize_rgb8: unknown filter %d", p->filter);
  x1 = (float)p->in_w, y1 = (float)p->in_h;
  if (p->has_box) x0 = p->box[0], y0 = p->box[1], x1 = p->box[2], y1 = p->box[3];
  if (!(x0 >= 0 && y0 >= 0 && x1 <= (float)p->in_w && y1 <= (float)p->in_h) || x1 < x0 || y1 < y0)
    return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_resize_rgb8: box %g,%g,%g,%g outside the %dx%d image",
                    (double)x0, (double)y0, (double)x1, (double)y1, p->in_w, p->in_h);
  memset(pl, 0, sizeof *pl);
  if (truncf(x0) == x0 && truncf(y0) == y0 && x1 - x0 == (float)p->out_w && y1 - y0 == (float)p->out_h) {
    pl->crop = 1, pl->cx = (int)x0, pl->cy = (int)y0;
    return GRF_CUDA_OK;
  }
  pl->horizontal = p->out_w != p->in_w || x0 != 0 || x1 != (float)p->out_w;
  pl->vertical = p->out_h != p->in_h || y0 != 0 || y1 != (float)p->out_h;
  pl->vertical_first = p->in_h - p->out_h > 0 && p->in_h - p->out_h > 2 * (p->in_w - p->out_w);
  sx = x1 - x0, sy = y1 - y0;
  pl->h = make_pass(p->in_w, x0, sx, p->out_w, p->filter);
  pl->v = make_pass(p->in_h, y0, sy, p->out_h, p->filter);
  return GRF_CUDA_OK;
}

/* rgb8_layout is cgo/kernels/image.cu's workspace layout; *tmp is the intermediate's offset. */
static size_t rgb8_layout(const grf_resize_rgb8_params* p, const rgb8_plan* pl, size_t* tmp) {
  size_t off = 0;
  *tmp = 0;
  if (pl->crop || !(pl->horizontal || pl->vertical)) return 0;
  off += align16(sizeof(int32_t) * 2 * p->out_w);
  off += align16(sizeof(int32_t) * (size_t)p->out_w * pl->h.k);
  off += align16(sizeof(int32_t) * 2 * p->out_h);
  off += align16(sizeof(int32_t) * (size_t)p->out_h * pl->v.k);
  *tmp = off;
  if (pl->horizontal && pl->vertical)
    off += align16(pl->vertical_first ? (size_t)p->out_h * p->in_w * 3 : (size_t)p->in_h * p->out_w * 3);
  return off;
}

int grf_resize_rgb8_workspace_size(const grf_resize_rgb8_params* p, size_t* bytes, char* err, size_t errlen) {
  size_t tmp;
  rgb8_plan pl;
  int rc;
  if (bytes == NULL) return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_resize_rgb8_workspace_size: null output");
  *bytes = 0;
  if ((rc = rgb8_validate(p, &pl, err, errlen)) != GRF_CUDA_OK) return rc;
  *bytes = rgb8_layout(p, &pl, &tmp);
  return GRF_CUDA_OK;
}

/* rgb8_hpass: rows of src [rows, in_w, 3] into out [rows, out_w, 3]. */
static void rgb8_hpass(const uint8_t* src, uint8_t* out, int rows, int in_w, int out_w, int K, const int* b,
                       const int32_t* k) {
  for (int y = 0; y < rows; y++) {
    const uint8_t* in = src + (long long)y * in_w * 3;
    uint8_t* o = out + (long long)y * out_w * 3;
    for (int xx = 0; xx < out_w; xx++) {
      int xmin = b[2 * xx], n = b[2 * xx + 1];
      const int32_t* kk = k + (long long)xx * K;
      int32_t s0 = 1 << (PIL_BITS - 1), s1 = s0, s2 = s0;
      for (int x = 0; x < n; x++) {
        const uint8_t* q = in + 3 * (x + xmin);
        s0 += (int32_t)q[0] * kk[x];
        s1 += (int32_t)q[1] * kk[x];
        s2 += (int32_t)q[2] * kk[x];
      }
      o[3 * xx] = clip8(s0), o[3 * xx + 1] = clip8(s1), o[3 * xx + 2] = clip8(s2);
    }
  }
}

/* rgb8_vpass: columns of src [in_h, w, 3] into out [out_h, w, 3]. */
static void rgb8_vpass(const uint8_t* src, uint8_t* out, int w, int out_h, int K, const int* b, const int32_t* k) {
  for (int yy = 0; yy < out_h; yy++) {
    int ymin = b[2 * yy], n = b[2 * yy + 1];
    const int32_t* kk = k + (long long)yy * K;
    uint8_t* o = out + (long long)yy * w * 3;
    for (int x = 0; x < w; x++) {
      int32_t s0 = 1 << (PIL_BITS - 1), s1 = s0, s2 = s0;
      for (int y = 0; y < n; y++) {
        const uint8_t* q = src + ((long long)(y + ymin) * w + x) * 3;
        s0 += (int32_t)q[0] * kk[y];
        s1 += (int32_t)q[1] * kk[y];
        s2 += (int32_t)q[2] * kk[y];
      }
      o[3 * x] = clip8(s0), o[3 * x + 1] = clip8(s1), o[3 * x + 2] = clip8(s2);
    }
  }
}

/* run_rgb8: a[0] src, a[1] dst, a[2] workspace (the intermediate image lives there). */
static int run_rgb8(void* user, const grf_emu_arg* a, int nargs, char* err, size_t errlen) {
  const grf_resize_rgb8_params* p = user;
  const uint8_t* src = a[0].alias;
  uint8_t* dst = a[1].alias;
  uint8_t* tmp_img;
  rgb8_plan pl;
  size_t tmp;
  int both, *bx = NULL, *by = NULL;
  int32_t *kx = NULL, *ky = NULL;
  (void)nargs;
  if (rgb8_validate(p, &pl, err, errlen) != GRF_CUDA_OK) return GRF_CUDA_ERR_INVALID;
  if (pl.crop) {
    for (int y = 0; y < p->out_h; y++)
      memcpy(dst + (size_t)y * p->out_w * 3, src + ((size_t)(pl.cy + y) * p->in_w + pl.cx) * 3, (size_t)p->out_w * 3);
    return GRF_CUDA_OK;
  }
  if (!pl.horizontal && !pl.vertical) {
    memcpy(dst, src, (size_t)p->in_h * p->in_w * 3);
    return GRF_CUDA_OK;
  }
  rgb8_layout(p, &pl, &tmp);
  tmp_img = (uint8_t*)a[2].alias + tmp;
  both = pl.horizontal && pl.vertical;
  bx = malloc(sizeof(int) * 2 * p->out_w), kx = malloc(sizeof(int32_t) * (size_t)p->out_w * pl.h.k);
  by = malloc(sizeof(int) * 2 * p->out_h), ky = malloc(sizeof(int32_t) * (size_t)p->out_h * pl.v.k);
  if (bx == NULL || kx == NULL || by == NULL || ky == NULL) {
    free(bx), free(kx), free(by), free(ky);
    return emu_fail(err, errlen, GRF_CUDA_ERR_INTERNAL, "grf_resize_rgb8: out of host memory");
  }
  if (pl.horizontal) pil_coeffs(pl.h, bx, kx);
  if (pl.vertical) pil_coeffs(pl.v, by, ky);
  if (!pl.vertical_first) {
    const uint8_t* cur = src;
    int cur_w = p->in_w;
    if (pl.horizontal) {
      uint8_t* out = both ? tmp_img : dst;
      rgb8_hpass(src, out, p->in_h, p->in_w, p->out_w, pl.h.k, bx, kx);
      cur = out, cur_w = p->out_w;
    }
    if (pl.vertical) rgb8_vpass(cur, dst, cur_w, p->out_h, pl.v.k, by, ky);
  } else {
    const uint8_t* cur = src;
    int rows = p->in_h;
    if (pl.vertical) {
      uint8_t* out = both ? tmp_img : dst;
      rgb8_vpass(src, out, p->in_w, p->out_h, pl.v.k, by, ky);
      cur = out, rows = p->out_h;
    }
    if (pl.horizontal) rgb8_hpass(cur, dst, rows, p->in_w, p->out_w, pl.h.k, bx, kx);
  }
  free(bx), free(kx), free(by), free(ky);
  return GRF_CUDA_OK;
}

int grf_resize_rgb8(const grf_resize_rgb8_params* p, grf_stream* stream, char* err, size_t errlen) {
  size_t tmp, need;
  rgb8_plan pl;
  int rc;
  if ((rc = rgb8_validate(p, &pl, err, errlen)) != GRF_CUDA_OK) return rc;
  if (p->src == NULL || p->dst == NULL) return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_resize_rgb8: null image");
  need = rgb8_layout(p, &pl, &tmp);
  {
    grf_emu_arg a[3] = {{"src", p->src, (size_t)p->in_h * p->in_w * 3, NULL},
                        {"dst", p->dst, (size_t)p->out_h * p->out_w * 3, NULL},
                        {"workspace", NULL, 0, NULL}};
    if (need > 0) {
      if (p->workspace == NULL || p->workspace_bytes < need)
        return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_resize_rgb8: workspace of %zu bytes, need %zu",
                        p->workspace_bytes, need);
      a[2].ptr = p->workspace, a[2].bytes = need;
    }
    return launch(stream, "grf_resize_rgb8", a, 3, run_rgb8, p, sizeof *p, err, errlen);
  }
}

/* ---- grf_to_planar, grf_from_planar, grf_paste_rgb8 ---------------------------------------- */

static int run_to_planar(void* user, const grf_emu_arg* a, int n, char* err, size_t errlen) {
  const grf_planar_params* p = user;
  const uint8_t* rgb = a[0].alias;
  float* planar = a[1].alias;
  (void)n, (void)err, (void)errlen;
  for (long long q = 0; q < p->n; q++)
    for (int c = 0; c < 3; c++) planar[c * p->n + q] = ((float)rgb[3 * q + c] / 255.0f - p->mean[c]) / p->std[c];
  return GRF_CUDA_OK;
}

static int run_from_planar(void* user, const grf_emu_arg* a, int n, char* err, size_t errlen) {
  const grf_planar_params* p = user;
  uint8_t* rgb = a[0].alias;
  const float* planar = a[1].alias;
  (void)n, (void)err, (void)errlen;
  for (long long q = 0; q < p->n; q++)
    for (int c = 0; c < 3; c++) {
      float v = go_minf(go_maxf(planar[c * p->n + q], 0.0f), 1.0f);
      rgb[3 * q + c] = (uint8_t)(v * 255.0f + 0.5f);
    }
  return GRF_CUDA_OK;
}

static int planar(const grf_planar_params* p, grf_stream* stream, const char* what, grf_emu_fn run, char* err,
                  size_t errlen) {
  if (p == NULL) return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "%s: null params", what);
  if (p->n < 0) return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "%s: negative size", what);
  if (p->n == 0) return GRF_CUDA_OK;
  if (p->rgb == NULL || p->planar == NULL) return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "%s: null image", what);
  {
    grf_emu_arg a[2] = {{"rgb", p->rgb, (size_t)p->n * 3, NULL}, {"planar", p->planar, (size_t)p->n * 3 * sizeof(float), NULL}};
    return launch(stream, what, a, 2, run, p, sizeof *p, err, errlen);
  }
}

int grf_to_planar(const grf_planar_params* p, grf_stream* stream, char* err, size_t errlen) {
  return planar(p, stream, "grf_to_planar", run_to_planar, err, errlen);
}

int grf_from_planar(const grf_planar_params* p, grf_stream* stream, char* err, size_t errlen) {
  return planar(p, stream, "grf_from_planar", run_from_planar, err, errlen);
}

static int run_paste(void* user, const grf_emu_arg* a, int n, char* err, size_t errlen) {
  const grf_paste_params* p = user;
  uint8_t* dst = a[0].alias;
  const uint8_t* src = a[1].alias;
  const float* mask = a[2].alias;
  (void)n, (void)err, (void)errlen;
  for (long long q = 0; q < p->n; q++)
    if (mask[q] < 0.5f) memcpy(dst + 3 * q, src + 3 * q, 3);
  return GRF_CUDA_OK;
}

int grf_paste_rgb8(const grf_paste_params* p, grf_stream* stream, char* err, size_t errlen) {
  if (p == NULL) return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_paste_rgb8: null params");
  if (p->n < 0) return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_paste_rgb8: negative size");
  if (p->n == 0) return GRF_CUDA_OK;
  if (p->dst == NULL || p->src == NULL || p->mask == NULL)
    return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_paste_rgb8: null tensor");
  {
    grf_emu_arg a[3] = {{"dst", p->dst, (size_t)p->n * 3, NULL}, {"src", p->src, (size_t)p->n * 3, NULL},
                        {"mask", p->mask, (size_t)p->n * sizeof(float), NULL}};
    return launch(stream, "grf_paste_rgb8", a, 3, run_paste, p, sizeof *p, err, errlen);
  }
}

/* ---- grf_pointwise, grf_dilate, grf_count_at_least --------------------------------------------- */

static int run_pointwise(void* user, const grf_emu_arg* a, int nargs, char* err, size_t errlen) {
  const grf_pointwise_params* p = user;
  float* dst = a[0].alias;
  const float* src = a[1].alias;
  const float* src2 = a[2].alias;
  const float* mask = a[3].alias;
  (void)nargs, (void)err, (void)errlen;
  for (long long i = 0; i < p->n; i++) {
    float x = src[i], y = 0;
    switch (p->op) {
      case GRF_POINT_AFFINE:
        y = x * p->a + p->b;
        if (p->clamp01) y = go_minf(go_maxf(y, 0.0f), 1.0f);
        break;
      case GRF_POINT_SCALE:
        y = (float)((double)x * p->s);
        for (int j = 1; j < p->copies; j++) dst[j * p->n + i] = y;
        break;
      case GRF_POINT_UNSCALE:
        y = (float)((double)x / p->s);
        break;
      case GRF_POINT_LERP:
        y = (float)(p->s * (double)x + p->t * (double)src2[i]);
        break;
      case GRF_POINT_MAXIMUM:
        y = go_maxf(x, src2[i]);
        break;
      case GRF_POINT_GREATER:
        y = x > p->a ? 1.0f : 0.0f;
        break;
      case GRF_POINT_AT_LEAST:
        y = x >= p->a ? 1.0f : 0.0f;
        break;
      case GRF_POINT_MASKED_AFFINE:
        y = mask[i % p->m] < 0.5f ? x * p->a + p->b : 0.0f;
        break;
      case GRF_POINT_DIVIDE:
        y = x / mask[i % p->m];
        break;
    }
    dst[i] = y;
  }
  return GRF_CUDA_OK;
}

int grf_pointwise(const grf_pointwise_params* p, grf_stream* stream, char* err, size_t errlen) {
  int copies;
  size_t n;
  if (p == NULL) return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_pointwise: null params");
  if (p->op < GRF_POINT_AFFINE || p->op > GRF_POINT_DIVIDE)
    return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_pointwise: unknown operation %d", p->op);
  if (p->n < 0) return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_pointwise: negative size");
  copies = p->op == GRF_POINT_SCALE ? p->copies : 1;
  if (copies < 1) return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_pointwise: %d copies", copies);
  if (p->n == 0) return GRF_CUDA_OK;
  if (p->dst == NULL || p->src == NULL) return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_pointwise: null tensor");
  if ((p->op == GRF_POINT_LERP || p->op == GRF_POINT_MAXIMUM) && p->src2 == NULL)
    return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_pointwise: operation %d needs src2", p->op);
  if ((p->op == GRF_POINT_MASKED_AFFINE || p->op == GRF_POINT_DIVIDE) && (p->mask == NULL || p->m < 1 || p->n % p->m != 0))
    return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_pointwise: mask of %lld for %lld values", p->m, p->n);
  if (copies > 1 && p->dst == p->src)
    return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_pointwise: copies into the source");
  n = (size_t)p->n * sizeof(float);
  {
    grf_pointwise_params q = *p;
    grf_emu_arg a[4] = {{"dst", p->dst, n * (size_t)copies, NULL}, {"src", p->src, n, NULL}, {"src2", NULL, 0, NULL},
                        {"mask", NULL, 0, NULL}};
    q.copies = copies;
    if (p->op == GRF_POINT_LERP || p->op == GRF_POINT_MAXIMUM) a[2].ptr = p->src2, a[2].bytes = n;
    if (p->op == GRF_POINT_MASKED_AFFINE || p->op == GRF_POINT_DIVIDE) a[3].ptr = p->mask, a[3].bytes = (size_t)p->m * sizeof(float);
    return launch(stream, "grf_pointwise", a, 4, run_pointwise, &q, sizeof q, err, errlen);
  }
}

static int run_dilate(void* user, const grf_emu_arg* a, int nargs, char* err, size_t errlen) {
  const grf_dilate_params* p = user;
  const float* src = a[0].alias;
  float* dst = a[1].alias;
  float* t = a[2].alias;
  const int H = p->height, W = p->width, r = p->radius;
  (void)nargs, (void)err, (void)errlen;
  for (long long n = 0; n < p->planes; n++) {
    const float* s = src + n * H * W;
    float* d = dst + n * H * W;
    float* tp = t + n * H * W;
    if (r == 0) {
      memcpy(d, s, sizeof(float) * H * W);
      continue;
    }
    for (int y = 0; y < H; y++) {
      const float* row = s + (long long)y * W;
      for (int x = 0; x < W; x++) {
        int lo = x - r < 0 ? 0 : x - r, hi = x + r > W - 1 ? W - 1 : x + r;
        float m = row[lo];
        for (int k = lo + 1; k <= hi; k++) m = go_maxf(m, row[k]);
        tp[(long long)y * W + x] = m;
      }
    }
    for (int x = 0; x < W; x++)
      for (int y = 0; y < H; y++) {
        int lo = y - r < 0 ? 0 : y - r, hi = y + r > H - 1 ? H - 1 : y + r;
        float m = tp[(long long)lo * W + x];
        for (int k = lo + 1; k <= hi; k++) m = go_maxf(m, tp[(long long)k * W + x]);
        d[(long long)y * W + x] = m;
      }
  }
  return GRF_CUDA_OK;
}

int grf_dilate(const grf_dilate_params* p, grf_stream* stream, char* err, size_t errlen) {
  size_t n;
  if (p == NULL) return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_dilate: null params");
  if (p->planes < 0 || p->height < 0 || p->width < 0 || p->radius < 0)
    return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_dilate: negative size");
  n = (size_t)p->planes * p->height * p->width * sizeof(float);
  if (n == 0) return GRF_CUDA_OK;
  if (p->src == NULL || p->dst == NULL) return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_dilate: null tensor");
  if (p->radius > 0 && (p->workspace == NULL || p->workspace_bytes < n))
    return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_dilate: workspace of %zu bytes, need %zu", p->workspace_bytes, n);
  {
    grf_emu_arg a[3] = {{"src", p->src, n, NULL}, {"dst", p->dst, n, NULL}, {"workspace", NULL, 0, NULL}};
    if (p->radius > 0) a[2].ptr = p->workspace, a[2].bytes = n;
    return launch(stream, "grf_dilate", a, 3, run_dilate, p, sizeof *p, err, errlen);
  }
}

static int run_count(void* user, const grf_emu_arg* a, int nargs, char* err, size_t errlen) {
  const grf_count_params* p = user;
  const float* src = a[0].alias;
  long long c = 0;
  (void)nargs, (void)err, (void)errlen;
  for (long long i = 0; i < p->n; i++) c += src[i] >= p->bound ? 1 : 0;
  memcpy(a[1].alias, &c, sizeof c);
  return GRF_CUDA_OK;
}

int grf_count_at_least(const grf_count_params* p, grf_stream* stream, char* err, size_t errlen) {
  if (p == NULL || p->count == NULL)
    return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_count_at_least: null params or output");
  if (p->n < 0) return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_count_at_least: negative size");
  if (p->n > 0 && p->src == NULL) return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_count_at_least: null tensor");
  {
    grf_emu_arg a[2] = {{"src", p->n > 0 ? p->src : NULL, (size_t)p->n * sizeof(float), NULL},
                        {"count", p->count, sizeof(long long), NULL}};
    return launch(stream, "grf_count_at_least", a, 2, run_count, p, sizeof *p, err, errlen);
  }
}

/* ---- grf_pq_probs, grf_scatter_rows, grf_text_ensemble, grf_text_maps ---------------------- */

static double dot(const float* a, const float* b, int n) {
  double s = 0;
  for (int i = 0; i < n; i++) s += (double)a[i] * (double)b[i];
  return s;
}

static int run_pq(void* user, const grf_emu_arg* a, int nargs, char* err, size_t errlen) {
  const grf_pq_params* p = user;
  const float* tokens = a[0].alias;
  const float* pq = a[1].alias;
  float* good = a[2].alias;
  const int T = p->tokens_n, D = p->dim;
  (void)nargs, (void)err, (void)errlen;
  for (int b = 0; b < p->batch; b++)
    for (int t = 0; t < T; t++) {
      const float* tok = tokens + ((long long)b * T + t) * D;
      for (int i = 0; i < 4; i++) {
        double g = dot(tok, pq + (long long)(2 * i) * D, D);
        double k = dot(tok, pq + (long long)(2 * i + 1) * D, D);
        good[((long long)b * 4 + i) * T + t] = (float)(1 / (1 + exp(k - g)));
      }
    }
  return GRF_CUDA_OK;
}

int grf_pq_probs(const grf_pq_params* p, grf_stream* stream, char* err, size_t errlen) {
  long long bt;
  if (p == NULL) return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_pq_probs: null params");
  if (p->batch < 0 || p->tokens_n < 0 || p->dim < 1)
    return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_pq_probs: bad sizes %d, %d, %d", p->batch, p->tokens_n, p->dim);
  bt = (long long)p->batch * p->tokens_n;
  if (bt == 0) return GRF_CUDA_OK;
  if (p->tokens == NULL || p->pq_text == NULL || p->good == NULL)
    return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_pq_probs: null tensor");
  {
    grf_emu_arg a[3] = {{"tokens", p->tokens, (size_t)bt * p->dim * sizeof(float), NULL},
                        {"pq_text", p->pq_text, (size_t)8 * p->dim * sizeof(float), NULL},
                        {"good", p->good, (size_t)bt * 4 * sizeof(float), NULL}};
    return launch(stream, "grf_pq_probs", a, 3, run_pq, p, sizeof *p, err, errlen);
  }
}

static int run_scatter(void* user, const grf_emu_arg* a, int nargs, char* err, size_t errlen) {
  const grf_scatter_params* p = user;
  const float* src = a[0].alias;
  const int32_t* index = a[1].alias;
  float* dst = a[2].alias;
  (void)nargs, (void)err, (void)errlen;
  for (int i = 0; i < p->n; i++) {
    int to = index[i];
    if (to >= 0 && to < p->m) memcpy(dst + (long long)to * p->dim, src + (long long)i * p->dim, sizeof(float) * p->dim);
  }
  return GRF_CUDA_OK;
}

int grf_scatter_rows(const grf_scatter_params* p, grf_stream* stream, char* err, size_t errlen) {
  if (p == NULL) return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_scatter_rows: null params");
  if (p->n < 0 || p->m < 0 || p->dim < 1)
    return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_scatter_rows: bad sizes %d, %d, %d", p->n, p->m, p->dim);
  if (p->n == 0) return GRF_CUDA_OK;
  if (p->src == NULL || p->index == NULL || p->dst == NULL)
    return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_scatter_rows: null tensor");
  {
    grf_emu_arg a[3] = {{"src", p->src, (size_t)p->n * p->dim * sizeof(float), NULL},
                        {"index", p->index, (size_t)p->n * sizeof(int32_t), NULL},
                        {"dst", p->dst, (size_t)p->m * p->dim * sizeof(float), NULL}};
    return launch(stream, "grf_scatter_rows", a, 3, run_scatter, p, sizeof *p, err, errlen);
  }
}

static int run_ensemble(void* user, const grf_emu_arg* a, int nargs, char* err, size_t errlen) {
  const grf_ensemble_params* p = user;
  const float* emb = a[0].alias;
  const float* R = a[1].alias;
  float* dst = a[2].alias;
  const int K = p->k, D = p->dim;
  double* acc = malloc(sizeof(double) * D);
  (void)nargs;
  if (acc == NULL) return emu_fail(err, errlen, GRF_CUDA_ERR_INTERNAL, "grf_text_ensemble: out of host memory");
  for (int i = 0; i < p->texts; i++) {
    double n = 0;
    for (int d = 0; d < D; d++) acc[d] = 0;
    for (int k = 0; k < K; k++) {
      const float* row = emb + ((long long)i * K + k) * D;
      double rn = 0;
      for (int d = 0; d < D; d++) rn += (double)row[d] * (double)row[d];
      rn = sqrt(rn);
      if (rn == 0) rn = 1;
      for (int d = 0; d < D; d++) acc[d] += (double)row[d] / rn;
    }
    for (int d = 0; d < D; d++) {
      acc[d] /= (double)K;
      n += acc[d] * acc[d];
    }
    n = sqrt(n);
    if (n == 0) n = 1;
    for (int d = 0; d < D; d++) {
      double v = acc[d] / n;
      if (R != NULL) v -= (double)R[d];
      dst[(long long)i * D + d] = (float)v;
    }
  }
  free(acc);
  return GRF_CUDA_OK;
}

int grf_text_ensemble(const grf_ensemble_params* p, grf_stream* stream, char* err, size_t errlen) {
  if (p == NULL) return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_text_ensemble: null params");
  if (p->texts < 0 || p->k < 1 || p->dim < 1 || p->dim > 6144)
    return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_text_ensemble: bad sizes %d texts, k %d, dim %d (1..6144)",
                    p->texts, p->k, p->dim);
  if (p->texts == 0) return GRF_CUDA_OK;
  if (p->emb == NULL || p->dst == NULL) return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_text_ensemble: null tensor");
  {
    grf_emu_arg a[3] = {{"emb", p->emb, (size_t)p->texts * p->k * p->dim * sizeof(float), NULL},
                        {"empty", p->empty, p->empty != NULL ? (size_t)p->dim * sizeof(float) : 0, NULL},
                        {"dst", p->dst, (size_t)p->texts * p->dim * sizeof(float), NULL}};
    return launch(stream, "grf_text_ensemble", a, 3, run_ensemble, p, sizeof *p, err, errlen);
  }
}

static int run_text_maps(void* user, const grf_emu_arg* a, int nargs, char* err, size_t errlen) {
  const grf_text_maps_params* p = user;
  const float* tokens = a[0].alias;
  const float* feats = a[1].alias;
  float* dst = a[2].alias;
  float* v = a[3].alias;
  const int G = p->grid_h * p->grid_w, D = p->dim;
  const long long HW = (long long)p->height * p->width;
  float* m;
  (void)nargs;
  for (long long i = 0; i < HW; i++) dst[i] = 0;
  if (p->k == 0) return GRF_CUDA_OK;
  m = malloc(sizeof(float) * HW);
  if (m == NULL) return emu_fail(err, errlen, GRF_CUDA_ERR_INTERNAL, "grf_text_maps: out of host memory");
  for (int j = 0; j < p->k; j++) {
    float* vj = v + (long long)j * G;
    float lo, hi, r;
    for (int t = 0; t < G; t++) vj[t] = (float)dot(tokens + (long long)(1 + t) * D, feats + (long long)j * D, D);
    lo = hi = vj[0]; /* MinMaxNormalize */
    for (int t = 1; t < G; t++) {
      lo = go_minf(lo, vj[t]);
      hi = go_maxf(hi, vj[t]);
    }
    r = hi - lo;
    for (int t = 0; t < G; t++) vj[t] = r < 1e-12f ? 0.0f : (vj[t] - lo) / r;
    resize_plane(GRF_RESIZE_BILINEAR, vj, p->grid_h, p->grid_w, m, p->height, p->width);
    for (long long i = 0; i < HW; i++) dst[i] = go_maxf(dst[i], m[i]);
  }
  free(m);
  return GRF_CUDA_OK;
}

int grf_text_maps(const grf_text_maps_params* p, grf_stream* stream, char* err, size_t errlen) {
  size_t need;
  if (p == NULL) return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_text_maps: null params");
  if (p->k < 0 || p->dim < 1 || p->grid_h < 1 || p->grid_w < 1 || p->height < 1 || p->width < 1)
    return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_text_maps: bad sizes (k %d, dim %d, grid %dx%d, map %dx%d)",
                    p->k, p->dim, p->grid_h, p->grid_w, p->height, p->width);
  if (p->dst == NULL) return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_text_maps: null map");
  need = sizeof(float) * (size_t)p->k * p->grid_h * p->grid_w;
  if (p->k > 0 && (p->tokens == NULL || p->feats == NULL || p->workspace == NULL || p->workspace_bytes < need))
    return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_text_maps: null tensor or workspace of %zu bytes (need %zu)",
                    p->workspace_bytes, need);
  {
    size_t T = (size_t)1 + (size_t)p->grid_h * p->grid_w;
    grf_emu_arg a[4] = {{"tokens", p->k > 0 ? p->tokens : NULL, p->k > 0 ? T * p->dim * sizeof(float) : 0, NULL},
                        {"feats", p->k > 0 ? p->feats : NULL, (size_t)p->k * p->dim * sizeof(float), NULL},
                        {"dst", p->dst, (size_t)p->height * p->width * sizeof(float), NULL},
                        {"workspace", p->k > 0 ? p->workspace : NULL, p->k > 0 ? need : 0, NULL}};
    return launch(stream, "grf_text_maps", a, 4, run_text_maps, p, sizeof *p, err, errlen);
  }
}

/* ---- grf_emphasis, grf_color_fix --------------------------------------------------------- */

#define EMPH_MAX_ROWS 256

/* emphasis_user: the parameters with the host weights copied at the call (the header says
 * they are read during the call; the work runs later). */
typedef struct {
  int rows, dim;
  float w[EMPH_MAX_ROWS];
} emphasis_user;

static int run_emphasis(void* user, const grf_emu_arg* a, int nargs, char* err, size_t errlen) {
  const emphasis_user* u = user;
  float* h = a[0].alias;
  double* acc = a[1].alias;
  const long long n = (long long)u->rows * u->dim;
  double before = 0, after = 0;
  (void)nargs, (void)err, (void)errlen;
  for (long long i = 0; i < n; i++) {
    before += (double)h[i];
    h[i] *= u->w[i / u->dim];
    after += (double)h[i];
  }
  acc[0] = before, acc[1] = after;
  if (after == 0) return GRF_CUDA_OK;
  {
    float s = (float)(before / after);
    for (long long i = 0; i < n; i++) h[i] *= s;
  }
  return GRF_CUDA_OK;
}

int grf_emphasis(const grf_emphasis_params* p, grf_stream* stream, char* err, size_t errlen) {
  emphasis_user u;
  int plain = 1;
  if (p == NULL) return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_emphasis: null params");
  if (p->rows < 0 || p->rows > EMPH_MAX_ROWS || p->dim < 1)
    return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_emphasis: %d rows of %d (rows 0..%d)", p->rows, p->dim,
                    EMPH_MAX_ROWS);
  if (p->rows > 0 && p->weights == NULL) return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_emphasis: null weights");
  memset(&u, 0, sizeof u);
  u.rows = p->rows, u.dim = p->dim;
  for (int r = 0; r < p->rows; r++) {
    u.w[r] = p->weights[r];
    if (u.w[r] != 1.0f) plain = 0;
  }
  if (plain) return GRF_CUDA_OK;
  if (p->hidden == NULL || p->workspace == NULL || p->workspace_bytes < 2 * sizeof(double))
    return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_emphasis: null tensor or workspace");
  {
    grf_emu_arg a[2] = {{"hidden", p->hidden, (size_t)p->rows * p->dim * sizeof(float), NULL},
                        {"workspace", p->workspace, 2 * sizeof(double), NULL}};
    return launch(stream, "grf_emphasis", a, 2, run_emphasis, &u, sizeof u, err, errlen);
  }
}

/* blur is engine/cpu WaveletBlur on one plane set: horizontal into t, vertical into d. */
static void blur(const float* s, float* d, float* t, int C, int H, int W, int r) {
  for (int c = 0; c < C; c++) {
    const float* sp = s + (long long)c * H * W;
    float* dp = d + (long long)c * H * W;
    float* tp = t + (long long)c * H * W;
    for (int y = 0; y < H; y++) {
      const float* row = sp + (long long)y * W;
      float* out = tp + (long long)y * W;
      for (int x = 0; x < W; x++) {
        float l = row[x - r < 0 ? 0 : x - r], rr = row[x + r > W - 1 ? W - 1 : x + r];
        out[x] = 0.25f * l + 0.5f * row[x] + 0.25f * rr;
      }
    }
    for (int y = 0; y < H; y++) {
      const float* up = tp + (long long)(y - r < 0 ? 0 : y - r) * W;
      const float* mid = tp + (long long)y * W;
      const float* down = tp + (long long)(y + r > H - 1 ? H - 1 : y + r) * W;
      float* out = dp + (long long)y * W;
      for (int x = 0; x < W; x++) out[x] = 0.25f * up[x] + 0.5f * mid[x] + 0.25f * down[x];
    }
  }
}

static int run_color_fix(void* user, const grf_emu_arg* a, int nargs, char* err, size_t errlen) {
  const grf_color_fix_params* p = user;
  const long long n = (long long)p->channels * p->height * p->width;
  float* high = a[3].alias;
  float* cur = high + n;
  float* nxt = cur + n;
  float* tmp = nxt + n;
  const float* inputs[2] = {a[0].alias, a[1].alias};
  float* dst = a[2].alias;
  (void)nargs, (void)err, (void)errlen;
  memset(high, 0, sizeof(float) * n);
  for (int pass = 0; pass < 2; pass++) {
    memcpy(cur, inputs[pass], sizeof(float) * n);
    for (int i = 0; i < p->levels; i++) {
      float* t;
      blur(cur, nxt, tmp, p->channels, p->height, p->width, 1 << i);
      if (pass == 0)
        for (long long k = 0; k < n; k++) high[k] += cur[k] - nxt[k];
      t = cur, cur = nxt, nxt = t;
    }
  }
  for (long long k = 0; k < n; k++) dst[k] = go_minf(go_maxf(high[k] + cur[k], 0.0f), 1.0f);
  return GRF_CUDA_OK;
}

static int color_fix_args(const grf_color_fix_params* p, char* err, size_t errlen) {
  if (p == NULL) return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_color_fix: null params");
  if (p->channels < 0 || p->height < 0 || p->width < 0 || p->levels < 1 || p->levels > 30)
    return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_color_fix: bad sizes [%d,%d,%d], %d levels (1..30)", p->channels,
                    p->height, p->width, p->levels);
  return GRF_CUDA_OK;
}

int grf_color_fix_workspace_size(const grf_color_fix_params* p, size_t* bytes, char* err, size_t errlen) {
  int rc;
  if (bytes == NULL) return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_color_fix_workspace_size: null output");
  *bytes = 0;
  if ((rc = color_fix_args(p, err, errlen)) != GRF_CUDA_OK) return rc;
  *bytes = 4 * sizeof(float) * (size_t)p->channels * p->height * p->width;
  return GRF_CUDA_OK;
}

int grf_color_fix(const grf_color_fix_params* p, grf_stream* stream, char* err, size_t errlen) {
  size_t n, need;
  int rc;
  if ((rc = color_fix_args(p, err, errlen)) != GRF_CUDA_OK) return rc;
  n = (size_t)p->channels * p->height * p->width * sizeof(float);
  if (n == 0) return GRF_CUDA_OK;
  need = 4 * n;
  if (p->content == NULL || p->style == NULL || p->dst == NULL || p->workspace == NULL || p->workspace_bytes < need)
    return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_color_fix: null tensor or workspace of %zu bytes (need %zu)",
                    p->workspace_bytes, need);
  {
    grf_emu_arg a[4] = {{"content", p->content, n, NULL}, {"style", p->style, n, NULL}, {"dst", p->dst, n, NULL},
                        {"workspace", p->workspace, need, NULL}};
    return launch(stream, "grf_color_fix", a, 4, run_color_fix, p, sizeof *p, err, errlen);
  }
}
