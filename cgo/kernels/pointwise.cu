// pointwise.cu: elementwise operations (grf_pointwise), the square max filter
// (grf_dilate) and counting (grf_count_at_least), ABI 2. Arithmetic uses explicitly
// rounded operations (no fused multiply-add), as the Go twins in engine/cpu do.
#include <cstdint>

#include "common.cuh"

namespace {

constexpr int kThreads = 256;

struct Point {
  int op, copies, clamp01;
  long long n, m;
  float a, b;
  double s, t;
};

__device__ __forceinline__ float affine(float x, float a, float b) { return __fadd_rn(__fmul_rn(x, a), b); }

__global__ void pointwise_kernel(float* dst, const float* src, const float* src2, const float* mask, Point p) {
  for (long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; i < p.n;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    float x = src[i];
    float y = 0.0f;
    switch (p.op) {
      case GRF_POINT_AFFINE:
        y = affine(x, p.a, p.b);
        if (p.clamp01) {
          y = y < 0.0f ? 0.0f : y;
          y = y > 1.0f ? 1.0f : y;
        }
        break;
      case GRF_POINT_SCALE:
        y = static_cast<float>(__dmul_rn(static_cast<double>(x), p.s));
        for (int j = 1; j < p.copies; ++j) dst[j * p.n + i] = y;
        break;
      case GRF_POINT_UNSCALE:
        y = static_cast<float>(__ddiv_rn(static_cast<double>(x), p.s));
        break;
      case GRF_POINT_LERP:
        y = static_cast<float>(__dadd_rn(__dmul_rn(p.s, static_cast<double>(x)),
                                         __dmul_rn(p.t, static_cast<double>(src2[i]))));
        break;
      case GRF_POINT_MAXIMUM: {
        float z = src2[i];
        y = x > z ? x : z;
        break;
      }
      case GRF_POINT_GREATER:
        y = x > p.a ? 1.0f : 0.0f;
        break;
      case GRF_POINT_AT_LEAST:
        y = x >= p.a ? 1.0f : 0.0f;
        break;
      case GRF_POINT_MASKED_AFFINE:
        y = mask[i % p.m] < 0.5f ? affine(x, p.a, p.b) : 0.0f;
        break;
      case GRF_POINT_DIVIDE:
        y = __fdiv_rn(x, mask[i % p.m]);
        break;
    }
    dst[i] = y;
  }
}

}  // namespace

extern "C" int grf_pointwise(const grf_pointwise_params* p, grf_stream* stream, char* err, size_t errlen) {
  GRF_GUARD_BEGIN
  if (p == nullptr) return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_pointwise: null params");
  if (p->op < GRF_POINT_AFFINE || p->op > GRF_POINT_DIVIDE)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_pointwise: unknown operation %d", p->op);
  if (p->n < 0) return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_pointwise: negative size");
  int copies = p->op == GRF_POINT_SCALE ? p->copies : 1;
  if (copies < 1) return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_pointwise: %d copies", copies);
  if (p->n == 0) return GRF_CUDA_OK;
  if (p->dst == nullptr || p->src == nullptr)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_pointwise: null tensor");
  if ((p->op == GRF_POINT_LERP || p->op == GRF_POINT_MAXIMUM) && p->src2 == nullptr)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_pointwise: operation %d needs src2", p->op);
  if ((p->op == GRF_POINT_MASKED_AFFINE || p->op == GRF_POINT_DIVIDE) && (p->mask == nullptr || p->m < 1 || p->n % p->m != 0))
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_pointwise: mask of %lld for %lld values", p->m, p->n);
  if (copies > 1 && p->dst == p->src)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_pointwise: copies into the source");
  Point q{p->op, copies, p->clamp01, p->n, p->m, p->a, p->b, p->s, p->t};
  pointwise_kernel<<<grf::blocks_1d(p->n, kThreads), kThreads, 0, grf::as_cuda(stream)>>>(p->dst, p->src, p->src2,
                                                                                         p->mask, q);
  return grf::check_launch(err, errlen, "grf_pointwise");
  GRF_GUARD_END(err, errlen)
}

namespace {

// dilate_h_kernel: t[y,x] = max over |dx| <= r of src[y, x+dx] (clipped).
__global__ void dilate_h_kernel(const float* __restrict__ src, float* __restrict__ t, long long planes, int H,
                                int W, int r) {
  long long n = planes * H * W;
  for (long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    int x = static_cast<int>(i % W);
    const float* row = src + (i - x);
    int lo = x - r < 0 ? 0 : x - r, hi = x + r > W - 1 ? W - 1 : x + r;
    float m = row[lo];
    for (int k = lo + 1; k <= hi; ++k) m = row[k] > m ? row[k] : m;
    t[i] = m;
  }
}

// dilate_v_kernel: dst[y,x] = max over |dy| <= r of t[y+dy, x] (clipped).
__global__ void dilate_v_kernel(const float* __restrict__ t, float* __restrict__ dst, long long planes, int H,
                                int W, int r) {
  long long n = planes * H * W;
  for (long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    int x = static_cast<int>(i % W);
    int y = static_cast<int>((i / W) % H);
    const float* plane = t + (i - x - static_cast<long long>(y) * W);
    int lo = y - r < 0 ? 0 : y - r, hi = y + r > H - 1 ? H - 1 : y + r;
    float m = plane[static_cast<long long>(lo) * W + x];
    for (int k = lo + 1; k <= hi; ++k) {
      float v = plane[static_cast<long long>(k) * W + x];
      m = v > m ? v : m;
    }
    dst[i] = m;
  }
}

}  // namespace

extern "C" int grf_dilate(const grf_dilate_params* p, grf_stream* stream, char* err, size_t errlen) {
  GRF_GUARD_BEGIN
  if (p == nullptr) return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_dilate: null params");
  if (p->planes < 0 || p->height < 0 || p->width < 0 || p->radius < 0)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_dilate: negative size");
  long long n = static_cast<long long>(p->planes) * p->height * p->width;
  if (n == 0) return GRF_CUDA_OK;
  if (p->src == nullptr || p->dst == nullptr)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_dilate: null tensor");
  cudaStream_t s = grf::as_cuda(stream);
  if (p->radius == 0) {
    GRF_CHECK(cudaMemcpyAsync(p->dst, p->src, n * sizeof(float), cudaMemcpyDeviceToDevice, s), "cudaMemcpyAsync");
    return GRF_CUDA_OK;
  }
  if (p->workspace == nullptr || p->workspace_bytes < n * sizeof(float))
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_dilate: workspace of %zu bytes, need %zu",
                     p->workspace_bytes, static_cast<size_t>(n * sizeof(float)));
  float* t = static_cast<float*>(p->workspace);
  dilate_h_kernel<<<grf::blocks_1d(n, kThreads), kThreads, 0, s>>>(p->src, t, p->planes, p->height, p->width,
                                                                   p->radius);
  int rc = grf::check_launch(err, errlen, "grf_dilate: rows");
  if (rc != GRF_CUDA_OK) return rc;
  dilate_v_kernel<<<grf::blocks_1d(n, kThreads), kThreads, 0, s>>>(t, p->dst, p->planes, p->height, p->width,
                                                                   p->radius);
  return grf::check_launch(err, errlen, "grf_dilate: columns");
  GRF_GUARD_END(err, errlen)
}

namespace {

__global__ void count_kernel(const float* __restrict__ src, long long n, float bound,
                             unsigned long long* __restrict__ count) {
  __shared__ unsigned long long s_n[kThreads];
  unsigned long long c = 0;
  for (long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x)
    c += src[i] >= bound ? 1 : 0;
  s_n[threadIdx.x] = c;
  __syncthreads();
  for (int w = blockDim.x / 2; w > 0; w /= 2) {
    if (threadIdx.x < w) s_n[threadIdx.x] += s_n[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0 && s_n[0] > 0) atomicAdd(count, s_n[0]);
}

}  // namespace

extern "C" int grf_count_at_least(const grf_count_params* p, grf_stream* stream, char* err, size_t errlen) {
  GRF_GUARD_BEGIN
  if (p == nullptr || p->count == nullptr)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_count_at_least: null params or output");
  if (p->n < 0) return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_count_at_least: negative size");
  cudaStream_t s = grf::as_cuda(stream);
  GRF_CHECK(cudaMemsetAsync(p->count, 0, sizeof(long long), s), "cudaMemsetAsync");
  if (p->n == 0) return GRF_CUDA_OK;
  if (p->src == nullptr) return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_count_at_least: null tensor");
  unsigned int b = grf::blocks_1d(p->n, kThreads);
  if (b > 4096) b = 4096;
  count_kernel<<<b, kThreads, 0, s>>>(p->src, p->n, p->bound, reinterpret_cast<unsigned long long*>(p->count));
  return grf::check_launch(err, errlen, "grf_count_at_least");
  GRF_GUARD_END(err, errlen)
}
