// blend.cu: grf_blend_step (masked latent blending fused with classifier-free guidance and
// a linear scheduler step) and grf_inpaint_input (the 9-channel inpainting UNet input).
#include <cstdint>

#include "common.cuh"

namespace {

constexpr int kThreads = 256;

struct Coef {
  float g, ca, cb, cc, cd, h0, h1, ce, cf;
};

struct Ptrs {
  const float* u;  // unconditional half of noise_pred
  const float* k;  // conditional half
  const float* x;
  const float* init;
  const float* noise;
  const float* mask;
  const float* hist0;
  const float* hist1;
  float* out;
  float* x0;
};

// blend_one is the reference loop body for element values (mask value m, has_mask).
__device__ __forceinline__ void blend_one(float u, float k, float x, float init, float noise,
                                          float h0, float h1, float m, bool has_mask,
                                          const Coef& c, float* out, float* x0) {
  float eps = u + c.g * (k - u);
  float xm = c.ca * x + c.cb * eps + c.h0 * h0 + c.h1 * h1;
  *out = has_mask ? m * xm + (1.0f - m) * (c.cc * init + c.cd * noise) : xm;
  *x0 = c.ce * x + c.cf * eps;
}

// blend_scalar: one element per thread iteration; any alignment, any h*w.
__global__ void blend_scalar(Ptrs p, Coef c, long long n, long long chw, long long hw) {
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    float m = 1.0f;
    if (p.mask != nullptr) m = p.mask[(i / chw) * hw + i % hw];
    float o, x0;
    blend_one(p.u[i], p.k[i], p.x[i], p.init ? p.init[i] : 0.0f, p.noise ? p.noise[i] : 0.0f,
              p.hist0 ? p.hist0[i] : 0.0f, p.hist1 ? p.hist1[i] : 0.0f, m, p.mask != nullptr, c,
              &o, &x0);
    p.out[i] = o;
    if (p.x0 != nullptr) p.x0[i] = x0;
  }
}

__device__ __forceinline__ float4 ld4(const float* p, long long i) {
  return p != nullptr ? reinterpret_cast<const float4*>(p)[i] : make_float4(0.f, 0.f, 0.f, 0.f);
}

// blend_vec4: four elements per thread iteration; every pointer 16-byte aligned and h*w a
// multiple of 4, so the four elements share one mask plane.
__global__ void blend_vec4(Ptrs p, Coef c, long long n4, long long chw, long long hw) {
  for (long long v = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; v < n4;
       v += static_cast<long long>(gridDim.x) * blockDim.x) {
    long long i = v * 4;
    float4 m = make_float4(1.f, 1.f, 1.f, 1.f);
    if (p.mask != nullptr) m = reinterpret_cast<const float4*>(p.mask)[((i / chw) * hw + i % hw) / 4];
    float4 u = ld4(p.u, v), k = ld4(p.k, v), x = ld4(p.x, v), in = ld4(p.init, v),
           nz = ld4(p.noise, v), h0 = ld4(p.hist0, v), h1 = ld4(p.hist1, v);
    float4 o, x0;
    bool hm = p.mask != nullptr;
    blend_one(u.x, k.x, x.x, in.x, nz.x, h0.x, h1.x, m.x, hm, c, &o.x, &x0.x);
    blend_one(u.y, k.y, x.y, in.y, nz.y, h0.y, h1.y, m.y, hm, c, &o.y, &x0.y);
    blend_one(u.z, k.z, x.z, in.z, nz.z, h0.z, h1.z, m.z, hm, c, &o.z, &x0.z);
    blend_one(u.w, k.w, x.w, in.w, nz.w, h0.w, h1.w, m.w, hm, c, &o.w, &x0.w);
    reinterpret_cast<float4*>(p.out)[v] = o;
    if (p.x0 != nullptr) reinterpret_cast<float4*>(p.x0)[v] = x0;
  }
}

bool aligned16(const void* ptr) { return (reinterpret_cast<uintptr_t>(ptr) & 15u) == 0; }

__global__ void inpaint_kernel(const float* __restrict__ lat, const float* __restrict__ mask,
                               const float* __restrict__ masked, float* __restrict__ out, int B,
                               int C, long long hw, float scale, long long n) {
  const long long oc = 2LL * C + 1;
  for (long long o = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; o < n;
       o += static_cast<long long>(gridDim.x) * blockDim.x) {
    long long p = o % hw;
    long long c = (o / hw) % oc;
    long long b = (o / (hw * oc)) % B;
    float v;
    if (c < C) {
      v = lat[(b * C + c) * hw + p] * scale;
    } else if (c == C) {
      v = mask[b * hw + p];
    } else {
      v = masked[(b * C + (c - C - 1)) * hw + p];
    }
    out[o] = v;
  }
}

}  // namespace

extern "C" int grf_blend_step(const grf_blend_params* p, grf_stream* stream, char* err,
                              size_t errlen) {
  GRF_GUARD_BEGIN
  if (p == nullptr) return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_blend_step: null params");
  if (p->batch < 0 || p->channels < 0 || p->height < 0 || p->width < 0)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_blend_step: negative size");
  const long long hw = static_cast<long long>(p->height) * p->width;
  const long long chw = hw * p->channels;
  const long long n = chw * p->batch;
  if (n == 0) return GRF_CUDA_OK;
  if (p->noise_pred == nullptr || p->x == nullptr || p->out == nullptr)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_blend_step: null noise_pred, x or out");
  if (p->mask != nullptr && p->init == nullptr)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_blend_step: mask given without init");
  if (p->x0 != nullptr && p->x0 == p->out)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_blend_step: x0 and out alias");
  Ptrs ptr{p->noise_pred, p->noise_pred + n, p->x, p->init, p->noise, p->mask,
           p->hist[0], p->hist[1], p->out, p->x0};
  Coef c{p->guidance, p->ca, p->cb, p->cc, p->cd, p->ch[0], p->ch[1], p->ce, p->cf};
  bool vec = hw % 4 == 0;
  const void* all[] = {ptr.u, ptr.k, ptr.x, ptr.init, ptr.noise, ptr.mask, ptr.hist0, ptr.hist1,
                       ptr.out, ptr.x0};
  for (const void* q : all) vec = vec && aligned16(q);  // NULL is aligned
  cudaStream_t s = grf::as_cuda(stream);
  if (vec) {
    blend_vec4<<<grf::blocks_1d(n / 4, kThreads), kThreads, 0, s>>>(ptr, c, n / 4, chw, hw);
    return grf::check_launch(err, errlen, "grf_blend_step: blend_vec4");
  }
  blend_scalar<<<grf::blocks_1d(n, kThreads), kThreads, 0, s>>>(ptr, c, n, chw, hw);
  return grf::check_launch(err, errlen, "grf_blend_step: blend_scalar");
  GRF_GUARD_END(err, errlen)
}

extern "C" int grf_inpaint_input(const grf_inpaint_params* p, grf_stream* stream, char* err,
                                 size_t errlen) {
  GRF_GUARD_BEGIN
  if (p == nullptr) return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_inpaint_input: null params");
  if (p->batch < 0 || p->channels < 0 || p->height < 0 || p->width < 0)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_inpaint_input: negative size");
  const long long hw = static_cast<long long>(p->height) * p->width;
  const long long n = 2LL * p->batch * (2LL * p->channels + 1) * hw;
  if (n == 0) return GRF_CUDA_OK;
  if (p->latents == nullptr || p->mask == nullptr || p->masked == nullptr || p->out == nullptr)
    return grf::fail(err, errlen, GRF_CUDA_ERR_INVALID, "grf_inpaint_input: null tensor");
  inpaint_kernel<<<grf::blocks_1d(n, kThreads), kThreads, 0, grf::as_cuda(stream)>>>(
      p->latents, p->mask, p->masked, p->out, p->batch, p->channels, hw, p->scale_in, n);
  return grf::check_launch(err, errlen, "grf_inpaint_input: inpaint_kernel");
  GRF_GUARD_END(err, errlen)
}
