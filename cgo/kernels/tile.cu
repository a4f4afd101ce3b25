// tile.cu: large images (ABI 3): the window copies and the weighted sums of tiled
// denoising (grf_tile_gather, grf_tile_accumulate), diffusers' tiled-VAE blend
// (grf_vae_blend) and a mask's bounding box (grf_bounding_box). Arithmetic uses explicitly
// rounded operations (no fused multiply-add), as the Go twins in engine/cpu do; every sum
// runs in the reference's order (one thread per output element, no atomics on floats).
#include <cstdint>

#include "common.cuh"

namespace {

constexpr int kThreads = 256;

// Wins are the windows of a call, by value (GRF_MAX_TILES of them at most).
struct Wins {
  int n, th, tw;
  int y[GRF_MAX_TILES], x[GRF_MAX_TILES];
};

// gather_kernel: one thread per element of dst [copies*n, C, th, tw].
__global__ void gather_kernel(const float* __restrict__ src, float* __restrict__ dst, Wins w, int r, int copies,
                              int C, int H, int W) {
  long long total = static_cast<long long>(copies) * w.n * C * w.th * w.tw;
  for (long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    int x = static_cast<int>(i % w.tw);
    long long q = i / w.tw;
    int y = static_cast<int>(q % w.th);
    q /= w.th;
    int c = static_cast<int>(q % C);
    q /= C;
    int k = static_cast<int>(q % w.n);
    int j = static_cast<int>(q / w.n);
    int row = r == 1 ? 0 : j;
    dst[i] = src[((static_cast<long long>(row) * C + c) * H + w.y[k] + y) * W + w.x[k] + x];
  }
}

// accumulate_kernel: one thread per pixel of the windows' bounding box [by0, by0+bh) x
// [bx0, bx0+bw); it visits the windows in order, so each sum runs in the reference's order.
__global__ void accumulate_kernel(const float* __restrict__ pred, const float* __restrict__ weights,
                                  float* __restrict__ acc, float* __restrict__ wsum, Wins w, int copies, int nb,
                                  int C, int H, int W, int by0, int bx0, int bh, int bw) {
  long long total = static_cast<long long>(bh) * bw;
  long long plane = static_cast<long long>(H) * W;
  long long tile = static_cast<long long>(w.th) * w.tw;
  for (long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    int py = by0 + static_cast<int>(i / bw), px = bx0 + static_cast<int>(i % bw);
    long long p = static_cast<long long>(py) * W + px;
    for (int k = 0; k < w.n; ++k) {
      int y = py - w.y[k], x = px - w.x[k];
      if (y < 0 || y >= w.th || x < 0 || x >= w.tw) continue;
      long long t = static_cast<long long>(y) * w.tw + x;
      float wt = weights[t];
      for (int j = 0; j < copies; ++j)
        for (int c = 0; c < C; ++c) {
          long long a = (static_cast<long long>(j) * C + c) * plane + p;
          float v = pred[((static_cast<long long>(j) * nb + k) * C + c) * tile + t];
          acc[a] = __fadd_rn(acc[a], __fmul_rn(v, wt));
        }
      wsum[p] = __fadd_rn(wsum[p], wt);
    }
  }
}

int tile_args(const grf_tile_params* p, const char* what, char* err, size_t errlen) {
  if (p == nullptr) return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "%s: null params", what);
  if (p->n < 1 || p->n > GRF_MAX_TILES || p->th < 1 || p->tw < 1 || p->channels < 1 || p->copies < 1 ||
      p->height < 1 || p->width < 1)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "%s: %d windows of %dx%d, %d channels, %d copies, plane %dx%d",
                     what, p->n, p->tw, p->th, p->channels, p->copies, p->width, p->height);
  for (int k = 0; k < p->n; ++k)
    if (p->y[k] < 0 || p->x[k] < 0 || p->y[k] + p->th > p->height || p->x[k] + p->tw > p->width)
      return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "%s: window %d at (%d,%d) outside the %dx%d plane", what, k,
                       p->x[k], p->y[k], p->width, p->height);
  return GRF_CUDA_OK;
}

Wins wins_of(const grf_tile_params* p) {
  Wins w{};
  w.n = p->n;
  w.th = p->th;
  w.tw = p->tw;
  for (int k = 0; k < p->n; ++k) {
    w.y[k] = p->y[k];
    w.x[k] = p->x[k];
  }
  return w;
}

}  // namespace

extern "C" int grf_tile_gather(const grf_tile_params* p, grf_stream* stream, char* err, size_t errlen) {
  GRF_GUARD_BEGIN
  int rc = tile_args(p, "grf_tile_gather", err, errlen);
  if (rc != GRF_CUDA_OK) return rc;
  if (p->r != 1 && p->r != p->copies)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_tile_gather: %d source rows for %d copies", p->r, p->copies);
  if (p->src == nullptr || p->dst == nullptr)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_tile_gather: null tensor");
  long long total = static_cast<long long>(p->copies) * p->n * p->channels * p->th * p->tw;
  gather_kernel<<<grf::blocks_1d(total, kThreads), kThreads, 0, grf::as_cuda(stream)>>>(
      p->src, p->dst, wins_of(p), p->r, p->copies, p->channels, p->height, p->width);
  return grf::check_launch(err, errlen, "grf_tile_gather");
  GRF_GUARD_END(err, errlen)
}

extern "C" int grf_tile_accumulate(const grf_tile_params* p, grf_stream* stream, char* err, size_t errlen) {
  GRF_GUARD_BEGIN
  int rc = tile_args(p, "grf_tile_accumulate", err, errlen);
  if (rc != GRF_CUDA_OK) return rc;
  if (p->nb < p->n)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_tile_accumulate: %d windows of %d per copy", p->n, p->nb);
  if (p->pred == nullptr || p->weights == nullptr || p->acc == nullptr || p->wsum == nullptr)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_tile_accumulate: null tensor");
  int y0 = p->y[0], x0 = p->x[0], y1 = p->y[0] + p->th, x1 = p->x[0] + p->tw;
  for (int k = 1; k < p->n; ++k) {
    y0 = p->y[k] < y0 ? p->y[k] : y0;
    x0 = p->x[k] < x0 ? p->x[k] : x0;
    y1 = p->y[k] + p->th > y1 ? p->y[k] + p->th : y1;
    x1 = p->x[k] + p->tw > x1 ? p->x[k] + p->tw : x1;
  }
  long long total = static_cast<long long>(y1 - y0) * (x1 - x0);
  accumulate_kernel<<<grf::blocks_1d(total, kThreads), kThreads, 0, grf::as_cuda(stream)>>>(
      p->pred, p->weights, p->acc, p->wsum, wins_of(p), p->copies, p->nb, p->channels, p->height, p->width, y0, x0,
      y1 - y0, x1 - x0);
  return grf::check_launch(err, errlen, "grf_tile_accumulate");
  GRF_GUARD_END(err, errlen)
}

namespace {

// blend_kernel: one thread per element of b's blended band.
__global__ void blend_kernel(const float* __restrict__ a, float* __restrict__ b, int C, int ah, int aw, int bh,
                             int bw, int e, int vertical) {
  long long total = vertical ? static_cast<long long>(C) * e * bw : static_cast<long long>(C) * bh * e;
  for (long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    int c, y, x, r;
    long long ai;
    if (vertical) {
      x = static_cast<int>(i % bw);
      y = static_cast<int>((i / bw) % e);
      c = static_cast<int>(i / (static_cast<long long>(bw) * e));
      r = y;
      ai = (static_cast<long long>(c) * ah + ah - e + y) * aw + x;
    } else {
      x = static_cast<int>(i % e);
      y = static_cast<int>((i / e) % bh);
      c = static_cast<int>(i / (static_cast<long long>(e) * bh));
      r = x;
      ai = (static_cast<long long>(c) * ah + y) * aw + aw - e + x;
    }
    double t = __ddiv_rn(static_cast<double>(r), static_cast<double>(e));
    float wa = static_cast<float>(__dadd_rn(1.0, -t)), wb = static_cast<float>(t);
    long long bi = (static_cast<long long>(c) * bh + y) * bw + x;
    b[bi] = __fadd_rn(__fmul_rn(a[ai], wa), __fmul_rn(b[bi], wb));
  }
}

}  // namespace

extern "C" int grf_vae_blend(const grf_vae_blend_params* p, grf_stream* stream, char* err, size_t errlen) {
  GRF_GUARD_BEGIN
  if (p == nullptr) return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_vae_blend: null params");
  if (p->channels < 1 || p->ah < 1 || p->aw < 1 || p->bh < 1 || p->bw < 1 || p->extent < 0 ||
      (p->vertical && p->aw != p->bw) || (!p->vertical && p->ah != p->bh))
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_vae_blend: [%d,%d,%d] into [%d,%d,%d], extent %d, vertical %d",
                     p->channels, p->ah, p->aw, p->channels, p->bh, p->bw, p->extent, p->vertical);
  if (p->a == nullptr || p->b == nullptr) return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_vae_blend: null tensor");
  int e = p->vertical ? (p->ah < p->bh ? p->ah : p->bh) : (p->aw < p->bw ? p->aw : p->bw);
  e = p->extent < e ? p->extent : e;
  if (e == 0) return GRF_CUDA_OK;
  long long total = p->vertical ? static_cast<long long>(p->channels) * e * p->bw
                                : static_cast<long long>(p->channels) * p->bh * e;
  blend_kernel<<<grf::blocks_1d(total, kThreads), kThreads, 0, grf::as_cuda(stream)>>>(
      p->a, p->b, p->channels, p->ah, p->aw, p->bh, p->bw, e, p->vertical);
  return grf::check_launch(err, errlen, "grf_vae_blend");
  GRF_GUARD_END(err, errlen)
}

namespace {

// bbox_kernel: atomicMin/atomicMax of the covered columns and rows into ws[4] (the order
// of min and max does not change them).
__global__ void bbox_kernel(const float* __restrict__ src, long long n, int H, int W, float bound, int* ws) {
  int x1 = W, y1 = H, x2 = -1, y2 = -1;
  long long plane = static_cast<long long>(H) * W;
  for (long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    if (src[i] >= bound) {
      long long p = i % plane;
      int y = static_cast<int>(p / W), x = static_cast<int>(p % W);
      x1 = x < x1 ? x : x1;
      y1 = y < y1 ? y : y1;
      x2 = x > x2 ? x : x2;
      y2 = y > y2 ? y : y2;
    }
  }
  if (x2 >= 0) {
    atomicMin(ws, x1);
    atomicMin(ws + 1, y1);
    atomicMax(ws + 2, x2);
    atomicMax(ws + 3, y2);
  }
}

__global__ void bbox_init_kernel(int* ws, int H, int W) {
  ws[0] = W;
  ws[1] = H;
  ws[2] = -1;
  ws[3] = -1;
}

__global__ void bbox_final_kernel(const int* ws, long long* box) {
  bool none = ws[2] < 0;
  box[0] = none ? 0 : ws[0];
  box[1] = none ? 0 : ws[1];
  box[2] = none ? 0 : ws[2] + 1;
  box[3] = none ? 0 : ws[3] + 1;
}

}  // namespace

extern "C" int grf_bounding_box(const grf_bbox_params* p, grf_stream* stream, char* err, size_t errlen) {
  GRF_GUARD_BEGIN
  if (p == nullptr || p->box == nullptr)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_bounding_box: null params or output");
  if (p->planes < 0 || p->height < 0 || p->width < 0)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_bounding_box: negative size");
  if (p->workspace == nullptr || p->workspace_bytes < 4 * sizeof(int))
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_bounding_box: workspace of %zu bytes, need %zu",
                     p->workspace_bytes, 4 * sizeof(int));
  long long n = static_cast<long long>(p->planes) * p->height * p->width;
  if (n > 0 && p->src == nullptr) return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_bounding_box: null tensor");
  cudaStream_t s = grf::as_cuda(stream);
  int* ws = static_cast<int*>(p->workspace);
  bbox_init_kernel<<<1, 1, 0, s>>>(ws, p->height, p->width);
  int rc = grf::check_launch(err, errlen, "grf_bounding_box: init");
  if (rc != GRF_CUDA_OK) return rc;
  if (n > 0) {
    unsigned int b = grf::blocks_1d(n, kThreads);
    if (b > 4096) b = 4096;
    bbox_kernel<<<b, kThreads, 0, s>>>(p->src, n, p->height, p->width, p->bound, ws);
    if ((rc = grf::check_launch(err, errlen, "grf_bounding_box")) != GRF_CUDA_OK) return rc;
  }
  bbox_final_kernel<<<1, 1, 0, s>>>(ws, p->box);
  return grf::check_launch(err, errlen, "grf_bounding_box: final");
  GRF_GUARD_END(err, errlen)
}
