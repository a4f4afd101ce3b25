// refine.cu: the refiner's per-stage operations on the device (ABI 2): prompt emphasis on
// hidden states (grf_emphasis) and PASD's wavelet colour fix (grf_color_fix).
#include <cstdint>

#include "common.cuh"

namespace {

constexpr int kThreads = 256;
constexpr int kMaxRows = 256;

struct Weights {
  float w[kMaxRows];
};

// sum_kernel: acc += Σ hidden (double), optionally after scaling each row by its weight.
__global__ void sum_kernel(float* __restrict__ h, long long n, int dim, Weights w, int scale,
                           double* __restrict__ acc) {
  __shared__ double s[kThreads];
  double v = 0.0;
  for (long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    float x = h[i];
    if (scale) {
      x = __fmul_rn(x, w.w[i / dim]);
      h[i] = x;
    }
    v += x;
  }
  s[threadIdx.x] = v;
  __syncthreads();
  for (int k = blockDim.x / 2; k > 0; k /= 2) {
    if (threadIdx.x < k) s[threadIdx.x] += s[threadIdx.x + k];
    __syncthreads();
  }
  if (threadIdx.x == 0) atomicAdd(acc, s[0]);
}

// rescale_kernel: h *= (float)(before/after) when after != 0.
__global__ void rescale_kernel(float* __restrict__ h, long long n, const double* __restrict__ acc) {
  double before = acc[0], after = acc[1];
  if (after == 0.0) return;
  float s = static_cast<float>(before / after);
  for (long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x)
    h[i] = __fmul_rn(h[i], s);
}

}  // namespace

extern "C" int grf_emphasis(const grf_emphasis_params* p, grf_stream* stream, char* err, size_t errlen) {
  GRF_GUARD_BEGIN
  if (p == nullptr) return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_emphasis: null params");
  if (p->rows < 0 || p->rows > kMaxRows || p->dim < 1)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_emphasis: %d rows of %d (rows 0..%d)", p->rows, p->dim, kMaxRows);
  if (p->rows > 0 && p->weights == nullptr) return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_emphasis: null weights");
  Weights w{};
  bool plain = true;
  for (int r = 0; r < p->rows; ++r) {
    w.w[r] = p->weights[r];
    if (w.w[r] != 1.0f) plain = false;
  }
  if (plain) return GRF_CUDA_OK;
  if (p->hidden == nullptr || p->workspace == nullptr || p->workspace_bytes < 2 * sizeof(double))
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_emphasis: null tensor or workspace");
  cudaStream_t s = grf::as_cuda(stream);
  long long n = static_cast<long long>(p->rows) * p->dim;
  unsigned int b = grf::blocks_1d(n, kThreads);
  if (b > 1024) b = 1024;
  GRF_CHECK(cudaMemsetAsync(p->workspace, 0, 2 * sizeof(double), s), "cudaMemsetAsync");
  sum_kernel<<<b, kThreads, 0, s>>>(p->hidden, n, p->dim, w, 0, p->workspace);
  int rc = grf::check_launch(err, errlen, "grf_emphasis: before");
  if (rc != GRF_CUDA_OK) return rc;
  sum_kernel<<<b, kThreads, 0, s>>>(p->hidden, n, p->dim, w, 1, p->workspace + 1);
  if ((rc = grf::check_launch(err, errlen, "grf_emphasis: after")) != GRF_CUDA_OK) return rc;
  rescale_kernel<<<b, kThreads, 0, s>>>(p->hidden, n, p->workspace);
  return grf::check_launch(err, errlen, "grf_emphasis: rescale");
  GRF_GUARD_END(err, errlen)
}

namespace {

__device__ __forceinline__ float tap3(float l, float c, float r) {
  return __fadd_rn(__fadd_rn(__fmul_rn(0.25f, l), __fmul_rn(0.5f, c)), __fmul_rn(0.25f, r));
}

// blur_h_kernel: t[y,x] = 0.25*s[y,x-r] + 0.5*s[y,x] + 0.25*s[y,x+r] (clamped).
__global__ void blur_h_kernel(const float* __restrict__ s, float* __restrict__ t, long long n, int W, int r) {
  for (long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    int x = static_cast<int>(i % W);
    const float* row = s + (i - x);
    t[i] = tap3(row[x - r < 0 ? 0 : x - r], row[x], row[x + r > W - 1 ? W - 1 : x + r]);
  }
}

// blur_v_kernel: d[y,x] = 0.25*t[y-r,x] + 0.5*t[y,x] + 0.25*t[y+r,x] (clamped).
__global__ void blur_v_kernel(const float* __restrict__ t, float* __restrict__ d, long long n, int H, int W, int r) {
  for (long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    int x = static_cast<int>(i % W), y = static_cast<int>((i / W) % H);
    const float* plane = t + (i - x - static_cast<long long>(y) * W);
    int up = y - r < 0 ? 0 : y - r, dn = y + r > H - 1 ? H - 1 : y + r;
    d[i] = tap3(plane[static_cast<long long>(up) * W + x], plane[static_cast<long long>(y) * W + x],
                plane[static_cast<long long>(dn) * W + x]);
  }
}

// high_kernel: high += cur - low.
__global__ void high_kernel(float* __restrict__ high, const float* __restrict__ cur, const float* __restrict__ low,
                            long long n) {
  for (long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x)
    high[i] = __fadd_rn(high[i], __fadd_rn(cur[i], -low[i]));
}

// combine_kernel: dst = min(max(high + low, 0), 1).
__global__ void combine_kernel(const float* __restrict__ high, const float* __restrict__ low, float* __restrict__ dst,
                               long long n) {
  for (long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    float v = __fadd_rn(high[i], low[i]);
    v = v < 0.0f ? 0.0f : v;
    dst[i] = v > 1.0f ? 1.0f : v;
  }
}

int color_fix_args(const grf_color_fix_params* p, char* err, size_t errlen) {
  if (p == nullptr) return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_color_fix: null params");
  if (p->channels < 0 || p->height < 0 || p->width < 0 || p->levels < 1 || p->levels > 30)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_color_fix: bad sizes [%d,%d,%d], %d levels (1..30)",
                     p->channels, p->height, p->width, p->levels);
  return GRF_CUDA_OK;
}

}  // namespace

extern "C" int grf_color_fix_workspace_size(const grf_color_fix_params* p, size_t* bytes, char* err, size_t errlen) {
  GRF_GUARD_BEGIN
  if (bytes == nullptr) return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_color_fix_workspace_size: null output");
  *bytes = 0;
  int rc = color_fix_args(p, err, errlen);
  if (rc != GRF_CUDA_OK) return rc;
  *bytes = 4 * sizeof(float) * static_cast<size_t>(p->channels) * p->height * p->width;
  return GRF_CUDA_OK;
  GRF_GUARD_END(err, errlen)
}

extern "C" int grf_color_fix(const grf_color_fix_params* p, grf_stream* stream, char* err, size_t errlen) {
  GRF_GUARD_BEGIN
  int rc = color_fix_args(p, err, errlen);
  if (rc != GRF_CUDA_OK) return rc;
  long long n = static_cast<long long>(p->channels) * p->height * p->width;
  if (n == 0) return GRF_CUDA_OK;
  size_t need = 4 * sizeof(float) * static_cast<size_t>(n);
  if (p->content == nullptr || p->style == nullptr || p->dst == nullptr || p->workspace == nullptr ||
      p->workspace_bytes < need)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_color_fix: null tensor or workspace of %zu bytes (need %zu)",
                     p->workspace_bytes, need);
  cudaStream_t s = grf::as_cuda(stream);
  float* high = static_cast<float*>(p->workspace);
  float* cur = high + n;
  float* nxt = cur + n;
  float* tmp = nxt + n;
  unsigned int b = grf::blocks_1d(n, kThreads);
  const float* inputs[2] = {p->content, p->style};
  GRF_CHECK(cudaMemsetAsync(high, 0, n * sizeof(float), s), "cudaMemsetAsync");
  for (int pass = 0; pass < 2; ++pass) {
    GRF_CHECK(cudaMemcpyAsync(cur, inputs[pass], n * sizeof(float), cudaMemcpyDeviceToDevice, s), "cudaMemcpyAsync");
    for (int i = 0; i < p->levels; ++i) {
      int r = 1 << i;
      blur_h_kernel<<<b, kThreads, 0, s>>>(cur, tmp, n, p->width, r);
      if ((rc = grf::check_launch(err, errlen, "grf_color_fix: blur rows")) != GRF_CUDA_OK) return rc;
      blur_v_kernel<<<b, kThreads, 0, s>>>(tmp, nxt, n, p->height, p->width, r);
      if ((rc = grf::check_launch(err, errlen, "grf_color_fix: blur columns")) != GRF_CUDA_OK) return rc;
      if (pass == 0) {
        high_kernel<<<b, kThreads, 0, s>>>(high, cur, nxt, n);
        if ((rc = grf::check_launch(err, errlen, "grf_color_fix: high")) != GRF_CUDA_OK) return rc;
      }
      float* t = cur;
      cur = nxt;
      nxt = t;
    }
  }
  combine_kernel<<<b, kThreads, 0, s>>>(high, cur, p->dst, n);
  return grf::check_launch(err, errlen, "grf_color_fix: combine");
  GRF_GUARD_END(err, errlen)
}
