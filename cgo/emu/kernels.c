/*
 * kernels.c: cuda-emu's launchers of the ABI 1 kernels of grefine_cuda.h (grf_resize,
 * grf_fuse_maps, grf_blend_step, grf_inpaint_input). Each validates like its CUDA launcher
 * in cgo/kernels (same messages), names its device-memory arguments with their extents and
 * queues the reference loop of the header on the stream. The loops are written in the
 * arithmetic order of engine/cpu's Go twins, in float32 without contraction, so they equal
 * them bit for bit.
 */
#include <stdint.h>
#include <string.h>

#include "emu_internal.h"

/* ---- interpolation (engine/cpu resize.go) ------------------------------------------------- */

#define CUBIC_A (-0.75f)

static float cubic1(float t) { return ((CUBIC_A + 2.0f) * t - (CUBIC_A + 3.0f)) * t * t + 1.0f; }
static float cubic2(float t) {
  return ((CUBIC_A * t - 5.0f * CUBIC_A) * t + 8.0f * CUBIC_A) * t - 4.0f * CUBIC_A;
}

/* src_coord is (dst + 0.5) * scale - 0.5, rounded after each operation. */
static float src_coord(int dst, float scale) {
  float a = (float)dst + 0.5f;
  float b = a * scale;
  return b - 0.5f;
}

static float resize_scale(int in, int out) { return (float)in / (float)out; }

typedef struct {
  int idx[4];
  float w[4];
} cubic_taps;

static cubic_taps new_cubic_taps(int dst, int in, float scale) {
  cubic_taps c;
  float f = src_coord(dst, scale);
  int i0 = (int)floorf(f);
  float t;
  if (i0 > in - 1) i0 = in - 1;
  t = f - (float)i0;
  if (t < 0) t = 0;
  if (t > 1) t = 1;
  c.w[0] = cubic2(t + 1.0f);
  c.w[1] = cubic1(t);
  c.w[2] = cubic1(1.0f - t);
  c.w[3] = cubic2(2.0f - t);
  for (int k = 0; k < 4; k++) {
    int j = i0 - 1 + k;
    c.idx[k] = j < 0 ? 0 : (j > in - 1 ? in - 1 : j);
  }
  return c;
}

static float cubic_sample(const float* s, int in_w, const cubic_taps* ty, const cubic_taps* tx) {
  float acc = 0.0f;
  for (int k = 0; k < 4; k++) {
    const float* row = s + (long long)ty->idx[k] * in_w;
    float r = 0.0f;
    for (int j = 0; j < 4; j++) r += tx->w[j] * row[tx->idx[j]];
    acc += ty->w[k] * r;
  }
  return acc;
}

typedef struct {
  int i0, i1;
  float w0, w1;
} linear_taps;

static linear_taps new_linear_taps(int dst, int in, float scale) {
  linear_taps l;
  float f = src_coord(dst, scale);
  if (f < 0) f = 0;
  l.i0 = (int)f;
  l.i1 = l.i0 + (l.i0 < in - 1 ? 1 : 0);
  l.w1 = f - (float)l.i0;
  l.w0 = 1.0f - l.w1;
  return l;
}

static int nearest_index(int dst, int in, float scale) {
  float f = (float)dst * scale;
  int i = (int)floorf(f);
  return i < in - 1 ? i : in - 1;
}

/* resize_plane resizes one plane (the reference loop of grf_resize; also used by the ABI 2
 * kernels of kernels_abi2.c). */
void resize_plane(int mode, const float* s, int in_h, int in_w, float* d, int out_h, int out_w) {
  float sy = resize_scale(in_h, out_h), sx = resize_scale(in_w, out_w);
  for (int y = 0; y < out_h; y++) {
    float* row = d + (long long)y * out_w;
    if (mode == GRF_RESIZE_NEAREST) {
      const float* src = s + (long long)nearest_index(y, in_h, sy) * in_w;
      for (int x = 0; x < out_w; x++) row[x] = src[nearest_index(x, in_w, sx)];
    } else if (mode == GRF_RESIZE_BILINEAR) {
      linear_taps ty = new_linear_taps(y, in_h, sy);
      const float* r0 = s + (long long)ty.i0 * in_w;
      const float* r1 = s + (long long)ty.i1 * in_w;
      for (int x = 0; x < out_w; x++) {
        linear_taps tx = new_linear_taps(x, in_w, sx);
        float a = tx.w0 * r0[tx.i0] + tx.w1 * r0[tx.i1];
        float b = tx.w0 * r1[tx.i0] + tx.w1 * r1[tx.i1];
        row[x] = ty.w0 * a + ty.w1 * b;
      }
    } else {
      cubic_taps ty = new_cubic_taps(y, in_h, sy);
      for (int x = 0; x < out_w; x++) {
        cubic_taps tx = new_cubic_taps(x, in_w, sx);
        row[x] = cubic_sample(s, in_w, &ty, &tx);
      }
    }
  }
}

/* overlap reports whether two byte ranges intersect. */
static int overlap(const void* a, size_t an, const void* b, size_t bn) {
  uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;
  if (a == NULL || b == NULL || an == 0 || bn == 0) return 0;
  return x < y + bn && y < x + an;
}

/* ---- grf_resize ------------------------------------------------------------------------------ */

static int run_resize(void* user, const grf_emu_arg* a, int n, char* err, size_t errlen) {
  const grf_resize_params* p = user;
  const float* src = a[0].alias;
  float* dst = a[1].alias;
  (void)n, (void)err, (void)errlen;
  for (int k = 0; k < p->planes; k++) {
    resize_plane(p->mode, src + (long long)k * p->in_h * p->in_w, p->in_h, p->in_w,
                 dst + (long long)k * p->out_h * p->out_w, p->out_h, p->out_w);
  }
  return GRF_CUDA_OK;
}

int grf_resize(const grf_resize_params* p, grf_stream* stream, char* err, size_t errlen) {
  size_t in_bytes, out_bytes;
  if (p == NULL) return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_resize: null params");
  if (p->planes < 0 || p->in_h < 0 || p->in_w < 0 || p->out_h < 0 || p->out_w < 0)
    return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_resize: negative size");
  if (p->mode != GRF_RESIZE_NEAREST && p->mode != GRF_RESIZE_BILINEAR && p->mode != GRF_RESIZE_BICUBIC)
    return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_resize: unknown mode %d", p->mode);
  if (p->planes == 0 || p->out_h == 0 || p->out_w == 0) return GRF_CUDA_OK;
  if (p->in_h == 0 || p->in_w == 0)
    return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_resize: empty input %dx%d", p->in_h, p->in_w);
  if (p->src == NULL || p->dst == NULL) return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_resize: null tensor");
  if ((p->out_h + 7) / 8 > 65535) return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_resize: out_h %d too large", p->out_h);
  in_bytes = (size_t)p->planes * p->in_h * p->in_w * sizeof(float);
  out_bytes = (size_t)p->planes * p->out_h * p->out_w * sizeof(float);
  if (overlap(p->src, in_bytes, p->dst, out_bytes))
    return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_resize: dst overlaps src (the header forbids it)");
  {
    grf_emu_arg a[2] = {{"src", p->src, in_bytes, NULL}, {"dst", p->dst, out_bytes, NULL}};
    return grf_emu_launch(stream, -1, "grf_resize", a, 2, run_resize, p, sizeof *p, NULL, err, errlen);
  }
}

/* ---- grf_fuse_maps --------------------------------------------------------------------------- */

#define FUSE_MAX_GRID 4096

static size_t fuse_grid_bytes(const grf_fuse_maps_params* p) {
  return 2 * sizeof(float) * (size_t)p->batch * p->grid_h * p->grid_w;
}

static size_t fuse_workspace_bytes(const grf_fuse_maps_params* p) {
  size_t n = fuse_grid_bytes(p);
  if (p->radius > 0) n += 2 * (size_t)p->batch * p->height * p->width;
  return n;
}

static int fuse_validate(const grf_fuse_maps_params* p, char* err, size_t errlen) {
  if (p == NULL) return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_fuse_maps: null params");
  if (p->batch < 0) return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_fuse_maps: negative batch");
  if (p->grid_h < 1 || p->grid_w < 1 || p->grid_h * p->grid_w > FUSE_MAX_GRID)
    return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_fuse_maps: bad grid %dx%d (1..%d patches)", p->grid_h,
                    p->grid_w, FUSE_MAX_GRID);
  if (p->height < 1 || p->width < 1 || p->lat_h < 1 || p->lat_w < 1)
    return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_fuse_maps: bad size %dx%d / latent %dx%d", p->height,
                    p->width, p->lat_h, p->lat_w);
  if ((p->height + 7) / 8 > 65535 || (p->lat_h + 7) / 8 > 65535)
    return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_fuse_maps: height too large");
  if (p->radius < 0) return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_fuse_maps: negative radius");
  if (!(p->alpha[0] > 0.0f) || !(p->alpha[1] > 0.0f) || !(p->alpha[2] > 0.0f))
    return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_fuse_maps: alpha must be > 0");
  return GRF_CUDA_OK;
}

int grf_fuse_maps_workspace_size(const grf_fuse_maps_params* p, size_t* bytes, char* err, size_t errlen) {
  int rc;
  if (bytes == NULL) return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_fuse_maps_workspace_size: null output");
  *bytes = 0;
  if ((rc = fuse_validate(p, err, errlen)) != GRF_CUDA_OK) return rc;
  *bytes = fuse_workspace_bytes(p);
  return GRF_CUDA_OK;
}

/* cask is L[t] = g0 * min(g1/a1, 1) * min(g2/a2, 1) * min(g3/a3, 1), left to right. */
static float cask(const float* g, int T, int t, const float alpha[3]) {
  float m1 = go_minf(g[T + t] / alpha[0], 1.0f);
  float m2 = go_minf(g[2 * T + t] / alpha[1], 1.0f);
  float m3 = go_minf(g[3 * T + t] / alpha[2], 1.0f);
  float a = g[t] * m1;
  float b = a * m2;
  return b * m3;
}

enum { F_GOOD, F_ALIGN, F_SCORE, F_PMAP, F_MASK_IMG, F_MASK_LAT, F_WORKSPACE, F_NARGS };

static int run_fuse(void* user, const grf_emu_arg* a, int n, char* err, size_t errlen) {
  const grf_fuse_maps_params* p = user;
  const int B = p->batch, G = p->grid_h * p->grid_w, T = G + 1, H = p->height, W = p->width;
  const long long HW = (long long)H * W, hw = (long long)p->lat_h * p->lat_w;
  const float* good = a[F_GOOD].alias;
  const float* align = a[F_ALIGN].alias;
  float* score = a[F_SCORE].alias;
  float* pmap = a[F_PMAP].alias;
  float* mask_img = a[F_MASK_IMG].alias;
  float* mask_lat = a[F_MASK_LAT].alias;
  float* lg = a[F_WORKSPACE].alias; /* the workspace layout of cgo/kernels/fuse_maps.cu */
  float* nm = lg + (size_t)B * G;
  uint8_t* m0 = p->radius > 0 ? (uint8_t*)a[F_WORKSPACE].alias + fuse_grid_bytes(p) : NULL;
  uint8_t* m1 = m0 != NULL ? m0 + (size_t)B * HW : NULL;
  float sy = resize_scale(p->grid_h, H), sx = resize_scale(p->grid_w, W);
  (void)n, (void)err, (void)errlen;
  for (int b = 0; b < B; b++) {
    const float* g = good + (long long)b * 4 * T;
    float* L = lg + (long long)b * G;
    float* N = nm + (long long)b * G;
    float lo, hi, r;
    score[b] = cask(g, T, 0, p->alpha);
    for (int t = 1; t < T; t++) L[t - 1] = cask(g, T, t, p->alpha);
    lo = hi = L[0]; /* MinMaxNormalize */
    for (int t = 1; t < G; t++) {
      lo = go_minf(lo, L[t]);
      hi = go_maxf(hi, L[t]);
    }
    r = hi - lo;
    for (int t = 0; t < G; t++) N[t] = r < 1e-12f ? 0.0f : (L[t] - lo) / r;
    for (int y = 0; y < H; y++) {
      cubic_taps ty = new_cubic_taps(y, p->grid_h, sy);
      for (int x = 0; x < W; x++) {
        cubic_taps tx = new_cubic_taps(x, p->grid_w, sx);
        long long i = (long long)b * HW + (long long)y * W + x;
        float P = cubic_sample(N, p->grid_w, &ty, &tx);
        float lup = cubic_sample(L, p->grid_w, &ty, &tx);
        float av = align != NULL ? align[i] : 0.0f;
        int m;
        if (P < 0) {
          P = 0;
        } else if (P > 1) {
          P = 1;
        }
        pmap[i] = P;
        m = (P < p->perceptual_bound && lup < p->perceptual_gate) || av > p->align_bound;
        if (m0 != NULL) {
          m0[i] = (uint8_t)m;
        } else {
          mask_img[i] = m ? 1.0f : 0.0f;
        }
      }
    }
    if (m0 != NULL) { /* the (2r+1)^2 max filter, rows then columns, clipped at the borders */
      const int rad = p->radius;
      for (int y = 0; y < H; y++) {
        const uint8_t* row = m0 + (long long)b * HW + (long long)y * W;
        for (int x = 0; x < W; x++) {
          int x0 = x - rad < 0 ? 0 : x - rad, x1 = x + rad > W - 1 ? W - 1 : x + rad;
          uint8_t v = 0;
          for (int k = x0; k <= x1 && v == 0; k++) v = row[k];
          m1[(long long)b * HW + (long long)y * W + x] = v;
        }
      }
      for (int y = 0; y < H; y++) {
        int y0 = y - rad < 0 ? 0 : y - rad, y1 = y + rad > H - 1 ? H - 1 : y + rad;
        for (int x = 0; x < W; x++) {
          uint8_t v = 0;
          for (int k = y0; k <= y1 && v == 0; k++) v = m1[(long long)b * HW + (long long)k * W + x];
          mask_img[(long long)b * HW + (long long)y * W + x] = v ? 1.0f : 0.0f;
        }
      }
    }
    resize_plane(GRF_RESIZE_NEAREST, mask_img + (long long)b * HW, H, W, mask_lat + (long long)b * hw, p->lat_h,
                 p->lat_w);
  }
  return GRF_CUDA_OK;
}

int grf_fuse_maps(const grf_fuse_maps_params* p, grf_stream* stream, char* err, size_t errlen) {
  int rc = fuse_validate(p, err, errlen);
  size_t need, img, lat, tok;
  if (rc != GRF_CUDA_OK) return rc;
  if (p->batch == 0) return GRF_CUDA_OK;
  if (p->good == NULL || p->score == NULL || p->pmap == NULL || p->mask_img == NULL || p->mask_lat == NULL)
    return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_fuse_maps: null tensor");
  need = fuse_workspace_bytes(p);
  if (p->workspace == NULL || p->workspace_bytes < need)
    return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_fuse_maps: workspace of %zu bytes, need %zu",
                    p->workspace_bytes, need);
  img = (size_t)p->batch * p->height * p->width * sizeof(float);
  lat = (size_t)p->batch * p->lat_h * p->lat_w * sizeof(float);
  tok = (size_t)p->batch * 4 * (1 + (size_t)p->grid_h * p->grid_w) * sizeof(float);
  {
    grf_emu_arg a[F_NARGS] = {
        [F_GOOD] = {"good", p->good, tok, NULL},
        [F_ALIGN] = {"align", p->align, p->align != NULL ? img : 0, NULL},
        [F_SCORE] = {"score", p->score, (size_t)p->batch * sizeof(float), NULL},
        [F_PMAP] = {"pmap", p->pmap, img, NULL},
        [F_MASK_IMG] = {"mask_img", p->mask_img, img, NULL},
        [F_MASK_LAT] = {"mask_lat", p->mask_lat, lat, NULL},
        [F_WORKSPACE] = {"workspace", p->workspace, p->workspace_bytes, NULL},
    };
    return grf_emu_launch(stream, -1, "grf_fuse_maps", a, F_NARGS, run_fuse, p, sizeof *p, NULL, err, errlen);
  }
}

/* ---- grf_blend_step ---------------------------------------------------------------------------- */

enum { B_NP, B_X, B_INIT, B_NOISE, B_MASK, B_H0, B_H1, B_OUT, B_X0, B_NARGS };

static int run_blend(void* user, const grf_emu_arg* a, int nargs, char* err, size_t errlen) {
  const grf_blend_params* p = user;
  const long long hw = (long long)p->height * p->width, chw = hw * p->channels, n = chw * p->batch;
  const float* u = a[B_NP].alias;
  const float* k = u + n;
  const float* xs = a[B_X].alias;
  const float* init = a[B_INIT].alias;
  const float* noise = a[B_NOISE].alias;
  const float* mask = a[B_MASK].alias;
  const float* h0 = a[B_H0].alias;
  const float* h1 = a[B_H1].alias;
  float* out = a[B_OUT].alias;
  float* x0 = a[B_X0].alias;
  (void)nargs, (void)err, (void)errlen;
  for (long long i = 0; i < n; i++) {
    float eps = u[i] + p->guidance * (k[i] - u[i]);
    float x = xs[i];
    float xm = p->ca * x + p->cb * eps;
    if (h0 != NULL) xm += p->ch[0] * h0[i];
    if (h1 != NULL) xm += p->ch[1] * h1[i];
    if (mask != NULL) {
      float m = mask[(i / chw) * hw + i % hw];
      float ini = init[i];
      float nz = noise != NULL ? noise[i] : 0.0f;
      xm = m * xm + (1.0f - m) * (p->cc * ini + p->cd * nz);
    }
    out[i] = xm;
    if (x0 != NULL) x0[i] = p->ce * x + p->cf * eps;
  }
  return GRF_CUDA_OK;
}

int grf_blend_step(const grf_blend_params* p, grf_stream* stream, char* err, size_t errlen) {
  long long hw, chw, n;
  size_t lat, pl;
  if (p == NULL) return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_blend_step: null params");
  if (p->batch < 0 || p->channels < 0 || p->height < 0 || p->width < 0)
    return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_blend_step: negative size");
  hw = (long long)p->height * p->width;
  chw = hw * p->channels;
  n = chw * p->batch;
  if (n == 0) return GRF_CUDA_OK;
  if (p->noise_pred == NULL || p->x == NULL || p->out == NULL)
    return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_blend_step: null noise_pred, x or out");
  if (p->mask != NULL && p->init == NULL)
    return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_blend_step: mask given without init");
  if (p->x0 != NULL && p->x0 == p->out) return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_blend_step: x0 and out alias");
  lat = (size_t)n * sizeof(float);
  pl = (size_t)p->batch * hw * sizeof(float);
  {
    const void* ro[] = {p->noise_pred, p->init, p->noise, p->mask, p->hist[0], p->hist[1]};
    const size_t rn[] = {2 * lat, lat, lat, pl, lat, lat};
    const char* names[] = {"noise_pred", "init", "noise", "mask", "hist[0]", "hist[1]"};
    for (int i = 0; i < 6; i++) { /* out and x0 may alias x only (each element is read first) */
      if (overlap(ro[i], rn[i], p->out, lat) || overlap(ro[i], rn[i], p->x0, lat))
        return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_blend_step: an output overlaps %s", names[i]);
    }
    if (overlap(p->out, lat, p->x0, lat))
      return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_blend_step: x0 and out overlap");
  }
  {
    grf_emu_arg a[B_NARGS] = {
        [B_NP] = {"noise_pred", p->noise_pred, 2 * lat, NULL},
        [B_X] = {"x", p->x, lat, NULL},
        [B_INIT] = {"init", p->init, p->init != NULL ? lat : 0, NULL},
        [B_NOISE] = {"noise", p->noise, p->noise != NULL ? lat : 0, NULL},
        [B_MASK] = {"mask", p->mask, p->mask != NULL ? pl : 0, NULL},
        [B_H0] = {"hist[0]", p->hist[0], p->hist[0] != NULL ? lat : 0, NULL},
        [B_H1] = {"hist[1]", p->hist[1], p->hist[1] != NULL ? lat : 0, NULL},
        [B_OUT] = {"out", p->out, lat, NULL},
        [B_X0] = {"x0", p->x0, p->x0 != NULL ? lat : 0, NULL},
    };
    return grf_emu_launch(stream, -1, "grf_blend_step", a, B_NARGS, run_blend, p, sizeof *p, NULL, err, errlen);
  }
}

/* ---- grf_inpaint_input -------------------------------------------------------------------------- */

static int run_inpaint(void* user, const grf_emu_arg* a, int nargs, char* err, size_t errlen) {
  const grf_inpaint_params* p = user;
  const int B = p->batch, C = p->channels;
  const long long hw = (long long)p->height * p->width;
  const float* lat = a[0].alias;
  const float* mask = a[1].alias;
  const float* masked = a[2].alias;
  float* out = a[3].alias;
  (void)nargs, (void)err, (void)errlen;
  for (int r = 0; r < 2 * B; r++) {
    int b = r % B;
    float* o = out + (long long)r * (2 * C + 1) * hw;
    for (int c = 0; c < C; c++) {
      const float* src = lat + ((long long)b * C + c) * hw;
      float* dst = o + (long long)c * hw;
      for (long long q = 0; q < hw; q++) dst[q] = src[q] * p->scale_in;
    }
    memcpy(o + (long long)C * hw, mask + (long long)b * hw, (size_t)hw * sizeof(float));
    memcpy(o + (long long)(C + 1) * hw, masked + (long long)b * C * hw, (size_t)(C * hw) * sizeof(float));
  }
  return GRF_CUDA_OK;
}

int grf_inpaint_input(const grf_inpaint_params* p, grf_stream* stream, char* err, size_t errlen) {
  long long hw, n;
  size_t lat, pl, outb;
  if (p == NULL) return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_inpaint_input: null params");
  if (p->batch < 0 || p->channels < 0 || p->height < 0 || p->width < 0)
    return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_inpaint_input: negative size");
  hw = (long long)p->height * p->width;
  n = 2LL * p->batch * (2LL * p->channels + 1) * hw;
  if (n == 0) return GRF_CUDA_OK;
  if (p->latents == NULL || p->mask == NULL || p->masked == NULL || p->out == NULL)
    return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_inpaint_input: null tensor");
  lat = (size_t)p->batch * p->channels * hw * sizeof(float);
  pl = (size_t)p->batch * hw * sizeof(float);
  outb = (size_t)n * sizeof(float);
  if (overlap(p->out, outb, p->latents, lat) || overlap(p->out, outb, p->mask, pl) || overlap(p->out, outb, p->masked, lat))
    return emu_fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_inpaint_input: out overlaps an input (the header forbids it)");
  {
    grf_emu_arg a[4] = {{"latents", p->latents, lat, NULL},
                        {"mask", p->mask, pl, NULL},
                        {"masked", p->masked, lat, NULL},
                        {"out", p->out, outb, NULL}};
    return grf_emu_launch(stream, -1, "grf_inpaint_input", a, 4, run_inpaint, p, sizeof *p, NULL, err, errlen);
  }
}
