// fuse_maps.cu: grf_fuse_maps, the quality-map fusion of DESIGN 1.2 and 1.4 (cask fusion,
// min-max normalisation, bicubic upsampling, defect mask, dilation, latent mask), as four
// kernels enqueued back to back on the caller's stream.
#include <cstdint>

#include "common.cuh"
#include "interp.cuh"

namespace {

constexpr int kTileX = 32;
constexpr int kTileY = 8;
constexpr int kReduceThreads = 256;
constexpr int kMaxGrid = 4096;  // grid_h * grid_w limit (documented in the header)

struct Fuse {
  float a1, a2, a3;
};

// cask is L[t] = g0 * prod_i min(g_i / alpha_i, 1) for one token (g points at [4, T]).
__device__ __forceinline__ float cask(const float* __restrict__ g, int T, int t, Fuse f) {
  float g0 = g[t];
  float m1 = fminf(__fdiv_rn(g[T + t], f.a1), 1.0f);
  float m2 = fminf(__fdiv_rn(g[2 * T + t], f.a2), 1.0f);
  float m3 = fminf(__fdiv_rn(g[3 * T + t], f.a3), 1.0f);
  return __fmul_rn(__fmul_rn(__fmul_rn(g0, m1), m2), m3);
}

// grid_kernel: one block per image. Writes score[b], the raw patch grid Lg[b] and its
// min-max normalisation Nm[b] (each grid_h * grid_w floats).
__global__ void grid_kernel(const float* __restrict__ good, float* __restrict__ score,
                            float* __restrict__ lg, float* __restrict__ nm, int batch, int G,
                            Fuse f) {
  __shared__ float s_lo[kReduceThreads];
  __shared__ float s_hi[kReduceThreads];
  const int T = G + 1;
  for (int b = blockIdx.x; b < batch; b += gridDim.x) {
    const float* g = good + static_cast<long long>(b) * 4 * T;
    float lo = INFINITY, hi = -INFINITY;
    for (int t = threadIdx.x; t < T; t += blockDim.x) {
      float L = cask(g, T, t, f);
      if (t == 0) {
        score[b] = L;
      } else {
        lg[static_cast<long long>(b) * G + t - 1] = L;
        lo = fminf(lo, L);
        hi = fmaxf(hi, L);
      }
    }
    grf::block_min_max(s_lo, s_hi, lo, hi);
    float range = __fadd_rn(hi, -lo);
    for (int t = threadIdx.x; t < G; t += blockDim.x) {
      float L = cask(g, T, t + 1, f);  // recomputed: no read-back of this block's writes
      nm[static_cast<long long>(b) * G + t] =
          range < 1e-12f ? 0.0f : __fdiv_rn(__fadd_rn(L, -lo), range);
    }
    __syncthreads();  // s_lo/s_hi are reused by the next image
  }
}

// pixel_kernel: P, the gate map and the undilated defect mask for every pixel.
__global__ void pixel_kernel(const float* __restrict__ lg, const float* __restrict__ nm,
                             const float* __restrict__ align, float* __restrict__ pmap,
                             float* __restrict__ mask_f, uint8_t* __restrict__ mask_u8, int batch,
                             int gh, int gw, int H, int W, float pbound, float pgate,
                             float abound) {
  int x = blockIdx.x * blockDim.x + threadIdx.x;
  int y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= W || y >= H) return;
  const int G = gh * gw;
  grf::CubicTaps ty = grf::cubic_taps(y, gh, static_cast<float>(gh) / static_cast<float>(H));
  grf::CubicTaps tx = grf::cubic_taps(x, gw, static_cast<float>(gw) / static_cast<float>(W));
  for (int b = blockIdx.z; b < batch; b += gridDim.z) {
    long long idx = (static_cast<long long>(b) * H + y) * W + x;
    float P = grf::bicubic(nm + static_cast<long long>(b) * G, gw, ty, tx);
    P = P < 0.0f ? 0.0f : (P > 1.0f ? 1.0f : P);
    float Lup = grf::bicubic(lg + static_cast<long long>(b) * G, gw, ty, tx);
    float a = align != nullptr ? __ldg(align + idx) : 0.0f;
    bool m = (P < pbound && Lup < pgate) || (a > abound);
    pmap[idx] = P;
    if (mask_u8 != nullptr) {
      mask_u8[idx] = m ? 1 : 0;
    } else {
      mask_f[idx] = m ? 1.0f : 0.0f;
    }
  }
}

// dilate_rows_kernel: dst[y,x] = max over |dx| <= r of src[y,x+dx] (clipped).
__global__ void dilate_rows_kernel(const uint8_t* __restrict__ src, uint8_t* __restrict__ dst,
                                   int batch, int H, int W, int r) {
  int x = blockIdx.x * blockDim.x + threadIdx.x;
  int y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= W || y >= H) return;
  int x0 = x - r < 0 ? 0 : x - r;
  int x1 = x + r > W - 1 ? W - 1 : x + r;
  for (int b = blockIdx.z; b < batch; b += gridDim.z) {
    const uint8_t* row = src + (static_cast<long long>(b) * H + y) * W;
    uint8_t v = 0;
    for (int i = x0; i <= x1 && v == 0; ++i) v = row[i];
    dst[(static_cast<long long>(b) * H + y) * W + x] = v;
  }
}

// dilate_cols_kernel: out[y,x] = max over |dy| <= r of src[y+dy,x] (clipped), as 0/1 float.
__global__ void dilate_cols_kernel(const uint8_t* __restrict__ src, float* __restrict__ out,
                                   int batch, int H, int W, int r) {
  int x = blockIdx.x * blockDim.x + threadIdx.x;
  int y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= W || y >= H) return;
  int y0 = y - r < 0 ? 0 : y - r;
  int y1 = y + r > H - 1 ? H - 1 : y + r;
  for (int b = blockIdx.z; b < batch; b += gridDim.z) {
    const uint8_t* plane = src + static_cast<long long>(b) * H * W;
    uint8_t v = 0;
    for (int i = y0; i <= y1 && v == 0; ++i) v = plane[static_cast<long long>(i) * W + x];
    out[(static_cast<long long>(b) * H + y) * W + x] = v ? 1.0f : 0.0f;
  }
}

// latent_kernel: mask_lat = nearest(mask_img -> h x w).
__global__ void latent_kernel(const float* __restrict__ mask_img, float* __restrict__ mask_lat,
                              int batch, int H, int W, int h, int w) {
  int x = blockIdx.x * blockDim.x + threadIdx.x;
  int y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= w || y >= h) return;
  int sy = grf::nearest_index(y, H, static_cast<float>(H) / static_cast<float>(h));
  int sx = grf::nearest_index(x, W, static_cast<float>(W) / static_cast<float>(w));
  for (int b = blockIdx.z; b < batch; b += gridDim.z) {
    mask_lat[(static_cast<long long>(b) * h + y) * w + x] =
        mask_img[(static_cast<long long>(b) * H + sy) * W + sx];
  }
}

size_t grid_bytes(const grf_fuse_maps_params* p) {
  return 2 * sizeof(float) * static_cast<size_t>(p->batch) * p->grid_h * p->grid_w;
}

size_t workspace_bytes(const grf_fuse_maps_params* p) {
  size_t n = grid_bytes(p);
  if (p->radius > 0) n += 2 * static_cast<size_t>(p->batch) * p->height * p->width;
  return n;
}

int validate(const grf_fuse_maps_params* p, char* err, size_t errlen) {
  if (p == nullptr) return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_fuse_maps: null params");
  if (p->batch < 0) return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_fuse_maps: negative batch");
  if (p->grid_h < 1 || p->grid_w < 1 || p->grid_h * p->grid_w > kMaxGrid)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_fuse_maps: bad grid %dx%d (1..%d patches)",
                     p->grid_h, p->grid_w, kMaxGrid);
  if (p->height < 1 || p->width < 1 || p->lat_h < 1 || p->lat_w < 1)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_fuse_maps: bad size %dx%d / latent %dx%d",
                     p->height, p->width, p->lat_h, p->lat_w);
  if ((p->height + kTileY - 1) / kTileY > grf::kMaxGridYZ || (p->lat_h + kTileY - 1) / kTileY > grf::kMaxGridYZ)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_fuse_maps: height too large");
  if (p->radius < 0) return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_fuse_maps: negative radius");
  if (!(p->alpha[0] > 0.0f) || !(p->alpha[1] > 0.0f) || !(p->alpha[2] > 0.0f))
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_fuse_maps: alpha must be > 0");
  return GRF_CUDA_OK;
}

}  // namespace

extern "C" int grf_fuse_maps_workspace_size(const grf_fuse_maps_params* p, size_t* bytes, char* err,
                                            size_t errlen) {
  GRF_GUARD_BEGIN
  if (bytes == nullptr)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_fuse_maps_workspace_size: null output");
  *bytes = 0;
  int rc = validate(p, err, errlen);
  if (rc != GRF_CUDA_OK) return rc;
  *bytes = workspace_bytes(p);
  return GRF_CUDA_OK;
  GRF_GUARD_END(err, errlen)
}

extern "C" int grf_fuse_maps(const grf_fuse_maps_params* p, grf_stream* stream, char* err,
                             size_t errlen) {
  GRF_GUARD_BEGIN
  int rc = validate(p, err, errlen);
  if (rc != GRF_CUDA_OK) return rc;
  if (p->batch == 0) return GRF_CUDA_OK;
  if (p->good == nullptr || p->score == nullptr || p->pmap == nullptr || p->mask_img == nullptr ||
      p->mask_lat == nullptr)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_fuse_maps: null tensor");
  size_t need = workspace_bytes(p);
  if (p->workspace == nullptr || p->workspace_bytes < need)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID,
                     "grf_fuse_maps: workspace of %zu bytes, need %zu", p->workspace_bytes, need);
  const int B = p->batch, G = p->grid_h * p->grid_w, H = p->height, W = p->width;
  float* lg = static_cast<float*>(p->workspace);
  float* nm = lg + static_cast<size_t>(B) * G;
  uint8_t* m0 = nullptr;
  uint8_t* m1 = nullptr;
  if (p->radius > 0) {
    m0 = static_cast<uint8_t*>(p->workspace) + grid_bytes(p);
    m1 = m0 + static_cast<size_t>(B) * H * W;
  }
  cudaStream_t s = grf::as_cuda(stream);
  Fuse f{p->alpha[0], p->alpha[1], p->alpha[2]};
  unsigned int zb = B < grf::kMaxGridYZ ? B : grf::kMaxGridYZ;

  grid_kernel<<<B < 65535 ? B : 65535, kReduceThreads, 0, s>>>(p->good, p->score, lg, nm, B, G, f);
  if ((rc = grf::check_launch(err, errlen, "grf_fuse_maps: grid_kernel")) != GRF_CUDA_OK) return rc;

  dim3 block(kTileX, kTileY);
  dim3 img((W + kTileX - 1) / kTileX, (H + kTileY - 1) / kTileY, zb);
  pixel_kernel<<<img, block, 0, s>>>(lg, nm, p->align, p->pmap, p->mask_img, m0, B, p->grid_h,
                                     p->grid_w, H, W, p->perceptual_bound, p->perceptual_gate,
                                     p->align_bound);
  if ((rc = grf::check_launch(err, errlen, "grf_fuse_maps: pixel_kernel")) != GRF_CUDA_OK) return rc;

  if (p->radius > 0) {
    dilate_rows_kernel<<<img, block, 0, s>>>(m0, m1, B, H, W, p->radius);
    if ((rc = grf::check_launch(err, errlen, "grf_fuse_maps: dilate_rows_kernel")) != GRF_CUDA_OK)
      return rc;
    dilate_cols_kernel<<<img, block, 0, s>>>(m1, p->mask_img, B, H, W, p->radius);
    if ((rc = grf::check_launch(err, errlen, "grf_fuse_maps: dilate_cols_kernel")) != GRF_CUDA_OK)
      return rc;
  }

  dim3 lat((p->lat_w + kTileX - 1) / kTileX, (p->lat_h + kTileY - 1) / kTileY, zb);
  latent_kernel<<<lat, block, 0, s>>>(p->mask_img, p->mask_lat, B, H, W, p->lat_h, p->lat_w);
  return grf::check_launch(err, errlen, "grf_fuse_maps: latent_kernel");
  GRF_GUARD_END(err, errlen)
}
