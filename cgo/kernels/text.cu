// text.cu: the quality features on the device (ABI 2): the PQ softmax (grf_pq_probs), the
// template ensemble of text features (grf_scatter_rows, grf_text_ensemble) and the
// alignment map (grf_text_maps). Dot products and norms are double sums whose order
// differs from the Go twins' (index order); the results agree within the tolerance the
// conformance tests state.
#include <cmath>
#include <cstdint>

#include "common.cuh"
#include "interp.cuh"

namespace {

constexpr int kThreads = 256;
constexpr int kWarp = 32;

__device__ __forceinline__ double warp_sum(double v) {
  for (int o = kWarp / 2; o > 0; o /= 2) v += __shfl_down_sync(0xffffffffu, v, o);
  return v;
}

// block_sum returns the sum of v over the block (every thread gets it); s has kWarp doubles.
__device__ double block_sum(double v, double* s) {
  int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) s[warp] = v;
  __syncthreads();
  int warps = (blockDim.x + kWarp - 1) / kWarp;
  v = threadIdx.x < warps ? s[threadIdx.x] : 0.0;
  if (warp == 0) v = warp_sum(v);
  if (threadIdx.x == 0) s[0] = v;
  __syncthreads();
  double r = s[0];
  __syncthreads();
  return r;
}

// pq_kernel: one warp per (b, t).
__global__ void pq_kernel(const float* __restrict__ tokens, const float* __restrict__ pq, float* __restrict__ good,
                          int B, int T, int D) {
  long long w = (static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
  int lane = threadIdx.x % kWarp;
  if (w >= static_cast<long long>(B) * T) return;
  int b = static_cast<int>(w / T), t = static_cast<int>(w % T);
  const float* tok = tokens + w * D;
  double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int d = lane; d < D; d += kWarp) {
    double x = tok[d];
#pragma unroll
    for (int r = 0; r < 8; ++r) s[r] += x * static_cast<double>(pq[r * D + d]);
  }
#pragma unroll
  for (int r = 0; r < 8; ++r) s[r] = warp_sum(s[r]);
  if (lane == 0) {
#pragma unroll
    for (int i = 0; i < 4; ++i)
      good[(static_cast<long long>(b) * 4 + i) * T + t] = static_cast<float>(1.0 / (1.0 + exp(s[2 * i + 1] - s[2 * i])));
  }
}

}  // namespace

extern "C" int grf_pq_probs(const grf_pq_params* p, grf_stream* stream, char* err, size_t errlen) {
  GRF_GUARD_BEGIN
  if (p == nullptr) return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_pq_probs: null params");
  if (p->batch < 0 || p->tokens_n < 0 || p->dim < 1)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_pq_probs: bad sizes %d, %d, %d", p->batch, p->tokens_n, p->dim);
  long long warps = static_cast<long long>(p->batch) * p->tokens_n;
  if (warps == 0) return GRF_CUDA_OK;
  if (p->tokens == nullptr || p->pq_text == nullptr || p->good == nullptr)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_pq_probs: null tensor");
  long long threads = warps * kWarp;
  pq_kernel<<<static_cast<unsigned int>((threads + kThreads - 1) / kThreads), kThreads, 0, grf::as_cuda(stream)>>>(
      p->tokens, p->pq_text, p->good, p->batch, p->tokens_n, p->dim);
  return grf::check_launch(err, errlen, "grf_pq_probs");
  GRF_GUARD_END(err, errlen)
}

namespace {

__global__ void scatter_kernel(const float* __restrict__ src, const int32_t* __restrict__ index, float* __restrict__ dst,
                               int n, int m, int D) {
  long long total = static_cast<long long>(n) * D;
  for (long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    int r = static_cast<int>(i / D), d = static_cast<int>(i % D);
    int to = index[r];
    if (to >= 0 && to < m) dst[static_cast<long long>(to) * D + d] = src[i];
  }
}

}  // namespace

extern "C" int grf_scatter_rows(const grf_scatter_params* p, grf_stream* stream, char* err, size_t errlen) {
  GRF_GUARD_BEGIN
  if (p == nullptr) return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_scatter_rows: null params");
  if (p->n < 0 || p->m < 0 || p->dim < 1)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_scatter_rows: bad sizes %d, %d, %d", p->n, p->m, p->dim);
  if (p->n == 0) return GRF_CUDA_OK;
  if (p->src == nullptr || p->index == nullptr || p->dst == nullptr)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_scatter_rows: null tensor");
  long long total = static_cast<long long>(p->n) * p->dim;
  scatter_kernel<<<grf::blocks_1d(total, kThreads), kThreads, 0, grf::as_cuda(stream)>>>(p->src, p->index, p->dst,
                                                                                        p->n, p->m, p->dim);
  return grf::check_launch(err, errlen, "grf_scatter_rows");
  GRF_GUARD_END(err, errlen)
}

namespace {

// ensemble_kernel: one block per text; acc (D doubles) in dynamic shared memory.
__global__ void ensemble_kernel(const float* __restrict__ emb, const float* __restrict__ empty, float* __restrict__ dst,
                                int K, int D) {
  extern __shared__ double acc[];
  __shared__ double red[kWarp];
  int i = blockIdx.x;
  for (int d = threadIdx.x; d < D; d += blockDim.x) acc[d] = 0.0;
  __syncthreads();
  for (int k = 0; k < K; ++k) {
    const float* row = emb + (static_cast<long long>(i) * K + k) * D;
    double ss = 0.0;
    for (int d = threadIdx.x; d < D; d += blockDim.x) ss += static_cast<double>(row[d]) * row[d];
    double n = sqrt(block_sum(ss, red));
    if (n == 0.0) n = 1.0;
    for (int d = threadIdx.x; d < D; d += blockDim.x) acc[d] = __dadd_rn(acc[d], __ddiv_rn(static_cast<double>(row[d]), n));
  }
  __syncthreads();
  double ss = 0.0;
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    acc[d] = __ddiv_rn(acc[d], static_cast<double>(K));
    ss += acc[d] * acc[d];
  }
  double n = sqrt(block_sum(ss, red));
  if (n == 0.0) n = 1.0;
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    double v = __ddiv_rn(acc[d], n);
    if (empty != nullptr) v = __dadd_rn(v, -static_cast<double>(empty[d]));
    dst[static_cast<long long>(i) * D + d] = static_cast<float>(v);
  }
}

}  // namespace

extern "C" int grf_text_ensemble(const grf_ensemble_params* p, grf_stream* stream, char* err, size_t errlen) {
  GRF_GUARD_BEGIN
  if (p == nullptr) return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_text_ensemble: null params");
  if (p->texts < 0 || p->k < 1 || p->dim < 1 || p->dim > 6144)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_text_ensemble: bad sizes %d texts, k %d, dim %d (1..6144)",
                     p->texts, p->k, p->dim);
  if (p->texts == 0) return GRF_CUDA_OK;
  if (p->emb == nullptr || p->dst == nullptr)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_text_ensemble: null tensor");
  if (p->texts > 2147483647) return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_text_ensemble: too many texts");
  ensemble_kernel<<<p->texts, kThreads, sizeof(double) * p->dim, grf::as_cuda(stream)>>>(p->emb, p->empty, p->dst,
                                                                                        p->k, p->dim);
  return grf::check_launch(err, errlen, "grf_text_ensemble");
  GRF_GUARD_END(err, errlen)
}

namespace {

// sims_kernel: one warp per (j, t): v[j][t] = (float)dot(tokens[1+t], feats[j]).
__global__ void sims_kernel(const float* __restrict__ tokens, const float* __restrict__ feats, float* __restrict__ v,
                            int K, int G, int D) {
  long long w = (static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
  int lane = threadIdx.x % kWarp;
  if (w >= static_cast<long long>(K) * G) return;
  int j = static_cast<int>(w / G), t = static_cast<int>(w % G);
  const float* tok = tokens + static_cast<long long>(1 + t) * D;
  const float* f = feats + static_cast<long long>(j) * D;
  double s = 0.0;
  for (int d = lane; d < D; d += kWarp) s += static_cast<double>(tok[d]) * f[d];
  s = warp_sum(s);
  if (lane == 0) v[w] = static_cast<float>(s);
}

// minmax_kernel: one block per j: v[j] = (v - lo)/(hi - lo), or 0 when flat.
__global__ void minmax_kernel(float* __restrict__ v, int G) {
  __shared__ float s_lo[kThreads];
  __shared__ float s_hi[kThreads];
  float* x = v + static_cast<long long>(blockIdx.x) * G;
  float lo = INFINITY, hi = -INFINITY;
  for (int t = threadIdx.x; t < G; t += blockDim.x) {
    lo = fminf(lo, x[t]);
    hi = fmaxf(hi, x[t]);
  }
  grf::block_min_max(s_lo, s_hi, lo, hi);
  float r = __fadd_rn(hi, -lo);
  for (int t = threadIdx.x; t < G; t += blockDim.x) x[t] = r < 1e-12f ? 0.0f : __fdiv_rn(__fadd_rn(x[t], -lo), r);
}

// map_kernel: dst[y,x] = max(0, max over j of bilinear(v[j])).
__global__ void map_kernel(const float* __restrict__ v, float* __restrict__ dst, int K, int gh, int gw, int H, int W) {
  long long n = static_cast<long long>(H) * W;
  for (long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    int y = static_cast<int>(i / W), x = static_cast<int>(i % W);
    grf::LinearTaps ty = grf::linear_taps(y, gh, static_cast<float>(gh) / static_cast<float>(H));
    grf::LinearTaps tx = grf::linear_taps(x, gw, static_cast<float>(gw) / static_cast<float>(W));
    float m = 0.0f;
    for (int j = 0; j < K; ++j) m = fmaxf(m, grf::bilinear(v + static_cast<long long>(j) * gh * gw, gw, ty, tx));
    dst[i] = m;
  }
}

}  // namespace

extern "C" int grf_text_maps(const grf_text_maps_params* p, grf_stream* stream, char* err, size_t errlen) {
  GRF_GUARD_BEGIN
  if (p == nullptr) return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_text_maps: null params");
  if (p->k < 0 || p->dim < 1 || p->grid_h < 1 || p->grid_w < 1 || p->height < 1 || p->width < 1)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_text_maps: bad sizes (k %d, dim %d, grid %dx%d, map %dx%d)",
                     p->k, p->dim, p->grid_h, p->grid_w, p->height, p->width);
  if (p->dst == nullptr) return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_text_maps: null map");
  cudaStream_t s = grf::as_cuda(stream);
  long long n = static_cast<long long>(p->height) * p->width;
  if (p->k == 0) {
    GRF_CHECK(cudaMemsetAsync(p->dst, 0, n * sizeof(float), s), "cudaMemsetAsync");
    return GRF_CUDA_OK;
  }
  long long G = static_cast<long long>(p->grid_h) * p->grid_w;
  size_t need = sizeof(float) * static_cast<size_t>(p->k) * G;
  if (p->tokens == nullptr || p->feats == nullptr || p->workspace == nullptr || p->workspace_bytes < need)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_text_maps: null tensor or workspace of %zu bytes (need %zu)",
                     p->workspace_bytes, need);
  float* v = static_cast<float*>(p->workspace);
  long long threads = static_cast<long long>(p->k) * G * kWarp;
  sims_kernel<<<static_cast<unsigned int>((threads + kThreads - 1) / kThreads), kThreads, 0, s>>>(
      p->tokens, p->feats, v, p->k, static_cast<int>(G), p->dim);
  int rc = grf::check_launch(err, errlen, "grf_text_maps: sims");
  if (rc != GRF_CUDA_OK) return rc;
  minmax_kernel<<<p->k, kThreads, 0, s>>>(v, static_cast<int>(G));
  if ((rc = grf::check_launch(err, errlen, "grf_text_maps: minmax")) != GRF_CUDA_OK) return rc;
  map_kernel<<<grf::blocks_1d(n, kThreads), kThreads, 0, s>>>(v, p->dst, p->k, p->grid_h, p->grid_w, p->height,
                                                             p->width);
  return grf::check_launch(err, errlen, "grf_text_maps: map");
  GRF_GUARD_END(err, errlen)
}
