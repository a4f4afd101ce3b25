// image.cu: RGB images on the device (ABI 2): Pillow-exact bicubic resampling
// (grf_resize_rgb8), the planar conversions (grf_to_planar, grf_from_planar) and the
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

// Pass geometry: the filter width K of a pass from n_in to n_out (host and device agree).
struct Pass {
  int in, out, k;
};

Pass make_pass(int in, int out) {
  double scale = static_cast<double>(in) / static_cast<double>(out);
  double fs = scale > 1.0 ? scale : 1.0;
  return Pass{in, out, static_cast<int>(std::ceil(2.0 * fs)) * 2 + 1};
}

// coeffs_kernel writes, per output index o, bounds[2o] = xmin, bounds[2o+1] = n and the K
// fixed-point weights k[o*K ..] (PILCoeffs in engine/cpu).
__global__ void coeffs_kernel(Pass p, int32_t* __restrict__ bounds, int32_t* __restrict__ k) {
  int o = blockIdx.x * blockDim.x + threadIdx.x;
  if (o >= p.out) return;
  double scale = __ddiv_rn(static_cast<double>(p.in), static_cast<double>(p.out));
  double fs = scale > 1.0 ? scale : 1.0;
  double support = __dmul_rn(2.0, fs);
  double center = __dmul_rn(__dadd_rn(static_cast<double>(o), 0.5), scale);
  double ss = __ddiv_rn(1.0, fs);
  int xmin = static_cast<int>(__dadd_rn(__dadd_rn(center, -support), 0.5));
  if (xmin < 0) xmin = 0;
  int xmax = static_cast<int>(__dadd_rn(__dadd_rn(center, support), 0.5));
  if (xmax > p.in) xmax = p.in;
  xmax -= xmin;
  double ww = 0.0;
  for (int x = 0; x < xmax; ++x) {
    double t = __dmul_rn(__dadd_rn(__dadd_rn(static_cast<double>(x + xmin), -center), 0.5), ss);
    ww = __dadd_rn(ww, pil_bicubic(t));
  }
  for (int x = 0; x < p.k; ++x) {
    double v = 0.0;
    if (x < xmax) {
      double t = __dmul_rn(__dadd_rn(__dadd_rn(static_cast<double>(x + xmin), -center), 0.5), ss);
      v = pil_bicubic(t);
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

// Workspace layout: x bounds, x weights, y bounds, y weights, the intermediate image.
struct Layout {
  size_t bx, kx, by, ky, tmp, total;
};

Layout layout(const grf_resize_rgb8_params* p) {
  Pass h = make_pass(p->in_w, p->out_w), v = make_pass(p->in_h, p->out_h);
  Layout l{};
  size_t off = 0;
  l.bx = off;
  off += align16(sizeof(int32_t) * 2 * p->out_w);
  l.kx = off;
  off += align16(sizeof(int32_t) * static_cast<size_t>(p->out_w) * h.k);
  l.by = off;
  off += align16(sizeof(int32_t) * 2 * p->out_h);
  l.ky = off;
  off += align16(sizeof(int32_t) * static_cast<size_t>(p->out_h) * v.k);
  l.tmp = off;
  off += align16(static_cast<size_t>(p->in_h) * p->out_w * 3);
  l.total = off;
  return l;
}

int validate(const grf_resize_rgb8_params* p, char* err, size_t errlen) {
  if (p == nullptr) return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_resize_rgb8: null params");
  if (p->in_h < 1 || p->in_w < 1 || p->out_h < 1 || p->out_w < 1)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_resize_rgb8: bad size %dx%d -> %dx%d",
                     p->in_w, p->in_h, p->out_w, p->out_h);
  return GRF_CUDA_OK;
}

unsigned int blocks(long long n) { return grf::blocks_1d(n, kThreads); }

}  // namespace

extern "C" int grf_resize_rgb8_workspace_size(const grf_resize_rgb8_params* p, size_t* bytes,
                                              char* err, size_t errlen) {
  GRF_GUARD_BEGIN
  if (bytes == nullptr)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_resize_rgb8_workspace_size: null output");
  *bytes = 0;
  int rc = validate(p, err, errlen);
  if (rc != GRF_CUDA_OK) return rc;
  *bytes = layout(p).total;
  return GRF_CUDA_OK;
  GRF_GUARD_END(err, errlen)
}

extern "C" int grf_resize_rgb8(const grf_resize_rgb8_params* p, grf_stream* stream, char* err,
                               size_t errlen) {
  GRF_GUARD_BEGIN
  int rc = validate(p, err, errlen);
  if (rc != GRF_CUDA_OK) return rc;
  if (p->src == nullptr || p->dst == nullptr)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_resize_rgb8: null image");
  cudaStream_t s = grf::as_cuda(stream);
  if (p->in_w == p->out_w && p->in_h == p->out_h) {
    GRF_CHECK(cudaMemcpyAsync(p->dst, p->src, static_cast<size_t>(p->in_h) * p->in_w * 3,
                              cudaMemcpyDeviceToDevice, s),
              "cudaMemcpyAsync");
    return GRF_CUDA_OK;
  }
  Layout l = layout(p);
  if (p->workspace == nullptr || p->workspace_bytes < l.total)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_resize_rgb8: workspace of %zu bytes, need %zu",
                     p->workspace_bytes, l.total);
  char* ws = static_cast<char*>(p->workspace);
  const uint8_t* cur = p->src;
  if (p->in_w != p->out_w) {
    Pass h = make_pass(p->in_w, p->out_w);
    int32_t* b = reinterpret_cast<int32_t*>(ws + l.bx);
    int32_t* k = reinterpret_cast<int32_t*>(ws + l.kx);
    coeffs_kernel<<<blocks(h.out), kThreads, 0, s>>>(h, b, k);
    if ((rc = grf::check_launch(err, errlen, "grf_resize_rgb8: coeffs_kernel")) != GRF_CUDA_OK) return rc;
    uint8_t* out = p->in_h != p->out_h ? reinterpret_cast<uint8_t*>(ws + l.tmp) : p->dst;
    horizontal_kernel<<<blocks(static_cast<long long>(p->in_h) * p->out_w), kThreads, 0, s>>>(
        p->src, out, p->in_h, p->in_w, p->out_w, h.k, b, k);
    if ((rc = grf::check_launch(err, errlen, "grf_resize_rgb8: horizontal_kernel")) != GRF_CUDA_OK) return rc;
    cur = out;
  }
  if (p->in_h != p->out_h) {
    Pass v = make_pass(p->in_h, p->out_h);
    int32_t* b = reinterpret_cast<int32_t*>(ws + l.by);
    int32_t* k = reinterpret_cast<int32_t*>(ws + l.ky);
    coeffs_kernel<<<blocks(v.out), kThreads, 0, s>>>(v, b, k);
    if ((rc = grf::check_launch(err, errlen, "grf_resize_rgb8: coeffs_kernel")) != GRF_CUDA_OK) return rc;
    vertical_kernel<<<blocks(static_cast<long long>(p->out_h) * p->out_w), kThreads, 0, s>>>(
        cur, p->dst, p->out_w, p->out_h, v.k, b, k);
    if ((rc = grf::check_launch(err, errlen, "grf_resize_rgb8: vertical_kernel")) != GRF_CUDA_OK) return rc;
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
