// resize.cu: grf_resize, PyTorch-compatible nearest / bilinear / bicubic resizing of
// float32 planes (align_corners=False).
#include "common.cuh"
#include "interp.cuh"

namespace {

constexpr int kTileX = 32;
constexpr int kTileY = 8;

template <int Mode>
__global__ void resize_kernel(const float* __restrict__ src, float* __restrict__ dst, int planes,
                              int in_h, int in_w, int out_h, int out_w) {
  int x = blockIdx.x * blockDim.x + threadIdx.x;
  int y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= out_w || y >= out_h) return;
  float sy = static_cast<float>(in_h) / static_cast<float>(out_h);
  float sx = static_cast<float>(in_w) / static_cast<float>(out_w);
  for (int n = blockIdx.z; n < planes; n += gridDim.z) {
    const float* s = src + static_cast<long long>(n) * in_h * in_w;
    float v;
    if (Mode == GRF_RESIZE_NEAREST) {
      v = __ldg(s + static_cast<long long>(grf::nearest_index(y, in_h, sy)) * in_w +
                grf::nearest_index(x, in_w, sx));
    } else if (Mode == GRF_RESIZE_BILINEAR) {
      v = grf::bilinear(s, in_w, grf::linear_taps(y, in_h, sy), grf::linear_taps(x, in_w, sx));
    } else {
      v = grf::bicubic(s, in_w, grf::cubic_taps(y, in_h, sy), grf::cubic_taps(x, in_w, sx));
    }
    dst[(static_cast<long long>(n) * out_h + y) * out_w + x] = v;
  }
}

}  // namespace

extern "C" int grf_resize(const grf_resize_params* p, grf_stream* stream, char* err,
                          size_t errlen) {
  GRF_GUARD_BEGIN
  if (p == nullptr) return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_resize: null params");
  if (p->planes < 0 || p->in_h < 0 || p->in_w < 0 || p->out_h < 0 || p->out_w < 0)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_resize: negative size");
  if (p->mode != GRF_RESIZE_NEAREST && p->mode != GRF_RESIZE_BILINEAR &&
      p->mode != GRF_RESIZE_BICUBIC)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_resize: unknown mode %d", p->mode);
  if (p->planes == 0 || p->out_h == 0 || p->out_w == 0) return GRF_CUDA_OK;
  if (p->in_h == 0 || p->in_w == 0)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_resize: empty input %dx%d",
                     p->in_h, p->in_w);
  if (p->src == nullptr || p->dst == nullptr)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_resize: null tensor");
  if ((p->out_h + kTileY - 1) / kTileY > grf::kMaxGridYZ)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_resize: out_h %d too large", p->out_h);
  dim3 block(kTileX, kTileY);
  dim3 grid((p->out_w + kTileX - 1) / kTileX, (p->out_h + kTileY - 1) / kTileY,
            p->planes < grf::kMaxGridYZ ? p->planes : grf::kMaxGridYZ);
  cudaStream_t s = grf::as_cuda(stream);
  switch (p->mode) {
    case GRF_RESIZE_NEAREST:
      resize_kernel<GRF_RESIZE_NEAREST><<<grid, block, 0, s>>>(p->src, p->dst, p->planes, p->in_h,
                                                               p->in_w, p->out_h, p->out_w);
      break;
    case GRF_RESIZE_BILINEAR:
      resize_kernel<GRF_RESIZE_BILINEAR><<<grid, block, 0, s>>>(p->src, p->dst, p->planes,
                                                                p->in_h, p->in_w, p->out_h, p->out_w);
      break;
    default:
      resize_kernel<GRF_RESIZE_BICUBIC><<<grid, block, 0, s>>>(p->src, p->dst, p->planes, p->in_h,
                                                               p->in_w, p->out_h, p->out_w);
      break;
  }
  return grf::check_launch(err, errlen, "grf_resize: resize_kernel");
  GRF_GUARD_END(err, errlen)
}
