// image.cu: RGB images on the device (ABI 2, 3): Pillow-13-exact resampling, bicubic and
// Lanczos over a source box (grf_resize_rgb8), the planar conversions (grf_to_planar, grf_from_planar) and the
// pixel paste (grf_paste_rgb8). Arithmetic uses explicitly rounded operations (no fused
// multiply-add) so the results equal the Go twins in engine/cpu bit for bit.
#include <cmath>
#include <cstdint>

#include "common.cuh"

namespace {

constexpr int kThreads = 256;
constexpr int kPrecisionBits = 22;

// pil_bicubic is Pillow's bicubic filter (a = -0.5), left to right, in float64.
__device__ double pil_bicubic(double x) {
  if (x < 0) x = -x;
  if (x < 1) return __dadd_rn(__dmul_rn(__dmul_rn(__dadd_rn(__dmul_rn(1.5, x), -2.5), x), x), 1.0);
  if (x < 2)
    return __dmul_rn(__dadd_rn(__dmul_rn(__dadd_rn(__dmul_rn(__dadd_rn(x, -5.0), x), 8.0), x), -4.0), -0.5);
  return 0.0;
}

// pil_sinc is Pillow's sinc_filter: sin(pi x)/(pi x), 1 at 0.
__device__ double pil_sinc(double x) {
  if (x == 0.0) return 1.0;
  x = __dmul_rn(x, 3.141592653589793);
  return __ddiv_rn(sin(x), x);
}

// pil_filter evaluates the filter at x (Pillow's bicubic_filter or lanczos_filter).
__device__ double pil_filter(int filter, double x) {
  if (filter == GRF_RESAMPLE_LANCZOS) {
    if (-3.0 <= x && x < 3.0) return __dmul_rn(pil_sinc(x), pil_sinc(__ddiv_rn(x, 3.0)));
    return 0.0;
  }
  return pil_bicubic(x);
}

// Pass geometry of one axis: n_in pixels, the interval [in0, in0 + span), n_out outputs,
// the filter and its width K (host and device agree).
struct Pass {
  int in, out, k, filter;
  double in0, span;
};

Pass make_pass(int in, double in0, double span, int out, int filter) {
  double scale = span / static_cast<double>(out);
  double fs = scale > 1.0 ? scale : 1.0;
  double support = (filter == GRF_RESAMPLE_LANCZOS ? 3.0 : 2.0) * fs;
  return Pass{in, out, static_cast<int>(std::ceil(support)) * 2 + 1, filter, in0, span};
}

// coeffs_kernel writes, per output index o, bounds[2o] = xmin, bounds[2o+1] = n and the K
// fixed-point weights k[o*K ..] (engine/pillow Coeffs).
__global__ void coeffs_kernel(Pass p, int32_t* __restrict__ bounds, int32_t* __restrict__ k) {
  int o = blockIdx.x * blockDim.x + threadIdx.x;
  if (o >= p.out) return;
  double scale = __ddiv_rn(p.span, static_cast<double>(p.out));
  double fs = scale > 1.0 ? scale : 1.0;
  double support = __dmul_rn(p.filter == GRF_RESAMPLE_LANCZOS ? 3.0 : 2.0, fs);
  double center = __dadd_rn(p.in0, __dmul_rn(__dadd_rn(static_cast<double>(o), 0.5), scale));
  double ss = __ddiv_rn(1.0, fs);
  int xmin = static_cast<int>(__dadd_rn(__dadd_rn(center, -support), 0.5));
  if (xmin < 0) xmin = 0;
  int xmax = static_cast<int>(__dadd_rn(__dadd_rn(center, support), 0.5));
  if (xmax > p.in) xmax = p.in;
  xmax -= xmin;
  double ww = 0.0;
  for (int x = 0; x < xmax; ++x) {
    double t = __dmul_rn(__dadd_rn(__dadd_rn(static_cast<double>(x + xmin), -center), 0.5), ss);
    ww = __dadd_rn(ww, pil_filter(p.filter, t));
  }
  for (int x = 0; x < p.k; ++x) {
    double v = 0.0;
    if (x < xmax) {
      double t = __dmul_rn(__dadd_rn(__dadd_rn(static_cast<double>(x + xmin), -center), 0.5), ss);
      v = pil_filter(p.filter, t);
      if (ww != 0.0) v = __ddiv_rn(v, ww);
    }
    double s = __dmul_rn(v, static_cast<double>(1 << kPrecisionBits));
    k[static_cast<long long>(o) * p.k + x] = static_cast<int32_t>(v < 0 ? __dadd_rn(-0.5, s) : __dadd_rn(0.5, s));
  }
  bounds[2 * o] = xmin;
  bounds[2 * o + 1] = xmax;
}

__device__ __forceinline__ uint8_t clip8(int32_t v) {
  v >>= kPrecisionBits;
  return v < 0 ? 0 : (v > 255 ? 255 : static_cast<uint8_t>(v));
}

// horizontal_kernel: rows of src [h, in_w, 3] -> dst [h, out_w, 3].
__global__ void horizontal_kernel(const uint8_t* __restrict__ src, uint8_t* __restrict__ dst, int h,
                                  int in_w, int out_w, int K, const int32_t* __restrict__ bounds,
                                  const int32_t* __restrict__ k) {
  long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= static_cast<long long>(h) * out_w) return;
  int y = static_cast<int>(i / out_w), xx = static_cast<int>(i % out_w);
  int xmin = bounds[2 * xx], n = bounds[2 * xx + 1];
  const int32_t* kk = k + static_cast<long long>(xx) * K;
  const uint8_t* in = src + static_cast<long long>(y) * in_w * 3;
  int32_t s0 = 1 << (kPrecisionBits - 1), s1 = s0, s2 = s0;
  for (int x = 0; x < n; ++x) {
    const uint8_t* q = in + 3 * (x + xmin);
    s0 += static_cast<int32_t>(q[0]) * kk[x];
    s1 += static_cast<int32_t>(q[1]) * kk[x];
    s2 += static_cast<int32_t>(q[2]) * kk[x];
  }
  uint8_t* o = dst + i * 3;
  o[0] = clip8(s0);
  o[1] = clip8(s1);
  o[2] = clip8(s2);
}

// vertical_kernel: columns of src [in_h, w, 3] -> dst [out_h, w, 3].
__global__ void vertical_kernel(const uint8_t* __restrict__ src, uint8_t* __restrict__ dst, int w,
                                int out_h, int K, const int32_t* __restrict__ bounds,
                                const int32_t* __restrict__ k) {
  long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= static_cast<long long>(out_h) * w) return;
  int yy = static_cast<int>(i / w), x = static_cast<int>(i % w);
  int ymin = bounds[2 * yy], n = bounds[2 * yy + 1];
  const int32_t* kk = k + static_cast<long long>(yy) * K;
  int32_t s0 = 1 << (kPrecisionBits - 1), s1 = s0, s2 = s0;
  for (int y = 0; y < n; ++y) {
    const uint8_t* q = src + (static_cast<long long>(y + ymin) * w + x) * 3;
    s0 += static_cast<int32_t>(q[0]) * kk[y];
    s1 += static_cast<int32_t>(q[1]) * kk[y];
    s2 += static_cast<int32_t>(q[2]) * kk[y];
  }
  uint8_t* o = dst + i * 3;
  o[0] = clip8(s0);
  o[1] = clip8(s1);
  o[2] = clip8(s2);
}

size_t align16(size_t n) { return (n + 15) / 16 * 16; }

// Plan is Pillow 13's decision (engine/pillow PlanFor): a crop, or which passes run and in
// which order, over the box in float32.
struct Plan {
  bool crop, horizontal, vertical, vertical_first;
  int cx, cy;
  Pass h, v;
};

int plan(const grf_resize_rgb8_params* p, Plan* pl, char* err, size_t errlen) {
  if (p == nullptr) return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_resize_rgb8: null params");
  if (p->in_h < 1 || p->in_w < 1 || p->out_h < 1 || p->out_w < 1)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_resize_rgb8: bad size %dx%d -> %dx%d",
                     p->in_w, p->in_h, p->out_w, p->out_h);
  if (p->filter != GRF_RESAMPLE_BICUBIC && p->filter != GRF_RESAMPLE_LANCZOS)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_resize_rgb8: unknown filter %d", p->filter);
  float x0 = 0, y0 = 0, x1 = static_cast<float>(p->in_w), y1 = static_cast<float>(p->in_h);
  if (p->has_box) {
    x0 = p->box[0];
    y0 = p->box[1];
    x1 = p->box[2];
    y1 = p->box[3];
  }
  if (!(x0 >= 0 && y0 >= 0 && x1 <= static_cast<float>(p->in_w) && y1 <= static_cast<float>(p->in_h)) || x1 < x0 ||
      y1 < y0)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_resize_rgb8: box %g,%g,%g,%g outside the %dx%d image",
                     x0, y0, x1, y1, p->in_w, p->in_h);
  *pl = Plan{};
  if (std::trunc(x0) == x0 && std::trunc(y0) == y0 && x1 - x0 == static_cast<float>(p->out_w) &&
      y1 - y0 == static_cast<float>(p->out_h)) {
    pl->crop = true;
    pl->cx = static_cast<int>(x0);
    pl->cy = static_cast<int>(y0);
    return GRF_CUDA_OK;
  }
  pl->horizontal = p->out_w != p->in_w || x0 != 0 || x1 != static_cast<float>(p->out_w);
  pl->vertical = p->out_h != p->in_h || y0 != 0 || y1 != static_cast<float>(p->out_h);
  pl->vertical_first = p->in_h - p->out_h > 0 && p->in_h - p->out_h > 2 * (p->in_w - p->out_w);
  float sx = x1 - x0, sy = y1 - y0;
  pl->h = make_pass(p->in_w, x0, sx, p->out_w, p->filter);
  pl->v = make_pass(p->in_h, y0, sy, p->out_h, p->filter);
  return GRF_CUDA_OK;
}

// Workspace layout: x bounds, x weights, y bounds, y weights, the intermediate image.
struct Layout {
  size_t bx, kx, by, ky, tmp, total;
};

Layout layout(const grf_resize_rgb8_params* p, const Plan& pl) {
  Layout l{};
  if (pl.crop || !(pl.horizontal || pl.vertical)) return l;
  size_t off = 0;
  l.bx = off;
  off += align16(sizeof(int32_t) * 2 * p->out_w);
  l.kx = off;
  off += align16(sizeof(int32_t) * static_cast<size_t>(p->out_w) * pl.h.k);
  l.by = off;
  off += align16(sizeof(int32_t) * 2 * p->out_h);
  l.ky = off;
  off += align16(sizeof(int32_t) * static_cast<size_t>(p->out_h) * pl.v.k);
  l.tmp = off;
  if (pl.horizontal && pl.vertical)
    off += align16(pl.vertical_first ? static_cast<size_t>(p->out_h) * p->in_w * 3
                                     : static_cast<size_t>(p->in_h) * p->out_w * 3);
  l.total = off;
  return l;
}

unsigned int blocks(long long n) { return grf::blocks_1d(n, kThreads); }

}  // namespace

extern "C" int grf_resize_rgb8_workspace_size(const grf_resize_rgb8_params* p, size_t* bytes,
                                              char* err, size_t errlen) {
  GRF_GUARD_BEGIN
  if (bytes == nullptr)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_resize_rgb8_workspace_size: null output");
  *bytes = 0;
  Plan pl;
  int rc = plan(p, &pl, err, errlen);
  if (rc != GRF_CUDA_OK) return rc;
  *bytes = layout(p, pl).total;
  return GRF_CUDA_OK;
  GRF_GUARD_END(err, errlen)
}

extern "C" int grf_resize_rgb8(const grf_resize_rgb8_params* p, grf_stream* stream, char* err,
                               size_t errlen) {
  GRF_GUARD_BEGIN
  Plan pl;
  int rc = plan(p, &pl, err, errlen);
  if (rc != GRF_CUDA_OK) return rc;
  if (p->src == nullptr || p->dst == nullptr)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_resize_rgb8: null image");
  cudaStream_t s = grf::as_cuda(stream);
  if (pl.crop) {
    const uint8_t* from = p->src + (static_cast<size_t>(pl.cy) * p->in_w + pl.cx) * 3;
    GRF_CHECK(cudaMemcpy2DAsync(p->dst, static_cast<size_t>(p->out_w) * 3, from, static_cast<size_t>(p->in_w) * 3,
                                static_cast<size_t>(p->out_w) * 3, p->out_h, cudaMemcpyDeviceToDevice, s),
              "cudaMemcpy2DAsync");
    return GRF_CUDA_OK;
  }
  if (!pl.horizontal && !pl.vertical) {
    GRF_CHECK(cudaMemcpyAsync(p->dst, p->src, static_cast<size_t>(p->in_h) * p->in_w * 3,
                              cudaMemcpyDeviceToDevice, s),
              "cudaMemcpyAsync");
    return GRF_CUDA_OK;
  }
  Layout l = layout(p, pl);
  if (p->workspace == nullptr || p->workspace_bytes < l.total)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_resize_rgb8: workspace of %zu bytes, need %zu",
                     p->workspace_bytes, l.total);
  char* ws = static_cast<char*>(p->workspace);
  int32_t* bx = reinterpret_cast<int32_t*>(ws + l.bx);
  int32_t* kx = reinterpret_cast<int32_t*>(ws + l.kx);
  int32_t* by = reinterpret_cast<int32_t*>(ws + l.by);
  int32_t* ky = reinterpret_cast<int32_t*>(ws + l.ky);
  uint8_t* tmp = reinterpret_cast<uint8_t*>(ws + l.tmp);
  const bool both = pl.horizontal && pl.vertical;
  if (pl.horizontal) {
    coeffs_kernel<<<blocks(pl.h.out), kThreads, 0, s>>>(pl.h, bx, kx);
    if ((rc = grf::check_launch(err, errlen, "grf_resize_rgb8: coeffs_kernel")) != GRF_CUDA_OK) return rc;
  }
  if (pl.vertical) {
    coeffs_kernel<<<blocks(pl.v.out), kThreads, 0, s>>>(pl.v, by, ky);
    if ((rc = grf::check_launch(err, errlen, "grf_resize_rgb8: coeffs_kernel")) != GRF_CUDA_OK) return rc;
  }
  if (!pl.vertical_first) {
    const uint8_t* cur = p->src;
    int cur_w = p->in_w;
    if (pl.horizontal) {
      uint8_t* out = both ? tmp : p->dst;
      horizontal_kernel<<<blocks(static_cast<long long>(p->in_h) * p->out_w), kThreads, 0, s>>>(
          p->src, out, p->in_h, p->in_w, p->out_w, pl.h.k, bx, kx);
      if ((rc = grf::check_launch(err, errlen, "grf_resize_rgb8: horizontal_kernel")) != GRF_CUDA_OK) return rc;
      cur = out;
      cur_w = p->out_w;
    }
    if (pl.vertical) {
      vertical_kernel<<<blocks(static_cast<long long>(p->out_h) * cur_w), kThreads, 0, s>>>(
          cur, p->dst, cur_w, p->out_h, pl.v.k, by, ky);
      if ((rc = grf::check_launch(err, errlen, "grf_resize_rgb8: vertical_kernel")) != GRF_CUDA_OK) return rc;
    }
  } else {
    const uint8_t* cur = p->src;
    int rows = p->in_h;
    if (pl.vertical) {
      uint8_t* out = both ? tmp : p->dst;
      vertical_kernel<<<blocks(static_cast<long long>(p->out_h) * p->in_w), kThreads, 0, s>>>(
          p->src, out, p->in_w, p->out_h, pl.v.k, by, ky);
      if ((rc = grf::check_launch(err, errlen, "grf_resize_rgb8: vertical_kernel")) != GRF_CUDA_OK) return rc;
      cur = out;
      rows = p->out_h;
    }
    if (pl.horizontal) {
      horizontal_kernel<<<blocks(static_cast<long long>(rows) * p->out_w), kThreads, 0, s>>>(
          cur, p->dst, rows, p->in_w, p->out_w, pl.h.k, bx, kx);
      if ((rc = grf::check_launch(err, errlen, "grf_resize_rgb8: horizontal_kernel")) != GRF_CUDA_OK) return rc;
    }
  }
  return GRF_CUDA_OK;
  GRF_GUARD_END(err, errlen)
}

namespace {

struct Norm {
  float mean[3], std[3];
};

__global__ void to_planar_kernel(const uint8_t* __restrict__ rgb, float* __restrict__ planar, long long n,
                                 Norm m) {
  for (long long p = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; p < n;
       p += static_cast<long long>(gridDim.x) * blockDim.x) {
#pragma unroll
    for (int c = 0; c < 3; ++c) {
      float v = __fdiv_rn(static_cast<float>(rgb[3 * p + c]), 255.0f);
      planar[c * n + p] = __fdiv_rn(__fadd_rn(v, -m.mean[c]), m.std[c]);
    }
  }
}

__global__ void from_planar_kernel(const float* __restrict__ planar, uint8_t* __restrict__ rgb, long long n) {
  for (long long p = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; p < n;
       p += static_cast<long long>(gridDim.x) * blockDim.x) {
#pragma unroll
    for (int c = 0; c < 3; ++c) {
      float v = planar[c * n + p];
      v = v < 0.0f ? 0.0f : v;
      v = v > 1.0f ? 1.0f : v;
      rgb[3 * p + c] = static_cast<uint8_t>(__fadd_rn(__fmul_rn(v, 255.0f), 0.5f));
    }
  }
}

__global__ void paste_kernel(uint8_t* __restrict__ dst, const uint8_t* __restrict__ src,
                             const float* __restrict__ mask, long long n) {
  for (long long p = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; p < n;
       p += static_cast<long long>(gridDim.x) * blockDim.x) {
    if (mask[p] < 0.5f) {
      dst[3 * p] = src[3 * p];
      dst[3 * p + 1] = src[3 * p + 1];
      dst[3 * p + 2] = src[3 * p + 2];
    }
  }
}

int planar_args(const grf_planar_params* p, const char* what, char* err, size_t errlen) {
  if (p == nullptr) return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "%s: null params", what);
  if (p->n < 0) return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "%s: negative size", what);
  if (p->n > 0 && (p->rgb == nullptr || p->planar == nullptr))
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "%s: null image", what);
  return GRF_CUDA_OK;
}

}  // namespace

extern "C" int grf_to_planar(const grf_planar_params* p, grf_stream* stream, char* err, size_t errlen) {
  GRF_GUARD_BEGIN
  int rc = planar_args(p, "grf_to_planar", err, errlen);
  if (rc != GRF_CUDA_OK || p->n == 0) return rc;
  Norm m;
  for (int c = 0; c < 3; ++c) {
    m.mean[c] = p->mean[c];
    m.std[c] = p->std[c];
  }
  to_planar_kernel<<<blocks(p->n), kThreads, 0, grf::as_cuda(stream)>>>(p->rgb, p->planar, p->n, m);
  return grf::check_launch(err, errlen, "grf_to_planar");
  GRF_GUARD_END(err, errlen)
}

extern "C" int grf_from_planar(const grf_planar_params* p, grf_stream* stream, char* err, size_t errlen) {
  GRF_GUARD_BEGIN
  int rc = planar_args(p, "grf_from_planar", err, errlen);
  if (rc != GRF_CUDA_OK || p->n == 0) return rc;
  from_planar_kernel<<<blocks(p->n), kThreads, 0, grf::as_cuda(stream)>>>(p->planar, p->rgb, p->n);
  return grf::check_launch(err, errlen, "grf_from_planar");
  GRF_GUARD_END(err, errlen)
}

extern "C" int grf_paste_rgb8(const grf_paste_params* p, grf_stream* stream, char* err, size_t errlen) {
  GRF_GUARD_BEGIN
  if (p == nullptr) return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_paste_rgb8: null params");
  if (p->n < 0) return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_paste_rgb8: negative size");
  if (p->n == 0) return GRF_CUDA_OK;
  if (p->dst == nullptr || p->src == nullptr || p->mask == nullptr)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_paste_rgb8: null tensor");
  paste_kernel<<<blocks(p->n), kThreads, 0, grf::as_cuda(stream)>>>(p->dst, p->src, p->mask, p->n);
  return grf::check_launch(err, errlen, "grf_paste_rgb8");
  GRF_GUARD_END(err, errlen)
}
