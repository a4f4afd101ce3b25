// interp.cuh: PyTorch F.interpolate(align_corners=False) sampling for one output pixel,
// shared by resize.cu and fuse_maps.cu. Index arithmetic uses explicitly rounded float32
// operations (no FMA contraction) so the chosen taps match the Go twins in engine/cpu.
#pragma once

#include <cuda_runtime.h>

namespace grf {

constexpr float kCubicA = -0.75f;

// cubic1 is Keys' kernel for |t| <= 1, cubic2 for 1 < |t| < 2 (PyTorch's
// cubic_convolution1/2).
__device__ __forceinline__ float cubic1(float t) {
  return ((kCubicA + 2.0f) * t - (kCubicA + 3.0f)) * t * t + 1.0f;
}
__device__ __forceinline__ float cubic2(float t) {
  return ((kCubicA * t - 5.0f * kCubicA) * t + 8.0f * kCubicA) * t - 4.0f * kCubicA;
}

// Cubic taps of one axis: index of the 4 input samples (clamped) and their weights.
struct CubicTaps {
  int idx[4];
  float w[4];
};

__device__ __forceinline__ CubicTaps cubic_taps(int dst, int in, float scale) {
  float f = __fadd_rn(__fmul_rn(__fadd_rn(static_cast<float>(dst), 0.5f), scale), -0.5f);
  int i0 = static_cast<int>(floorf(f));
  if (i0 > in - 1) i0 = in - 1;
  float t = fminf(fmaxf(__fadd_rn(f, -static_cast<float>(i0)), 0.0f), 1.0f);
  CubicTaps c;
  c.w[0] = cubic2(t + 1.0f);
  c.w[1] = cubic1(t);
  c.w[2] = cubic1(1.0f - t);
  c.w[3] = cubic2(2.0f - t);
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    int j = i0 - 1 + k;
    c.idx[k] = j < 0 ? 0 : (j > in - 1 ? in - 1 : j);
  }
  return c;
}

// bicubic samples plane s (in_w columns) at taps ty (rows) x tx (columns).
__device__ __forceinline__ float bicubic(const float* __restrict__ s, int in_w,
                                         const CubicTaps& ty, const CubicTaps& tx) {
  float acc = 0.0f;
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    const float* row = s + static_cast<long long>(ty.idx[k]) * in_w;
    float r = 0.0f;
#pragma unroll
    for (int j = 0; j < 4; ++j) r += tx.w[j] * __ldg(row + tx.idx[j]);
    acc += ty.w[k] * r;
  }
  return acc;
}

// Linear taps of one axis.
struct LinearTaps {
  int i0, i1;
  float w0, w1;
};

__device__ __forceinline__ LinearTaps linear_taps(int dst, int in, float scale) {
  float f = __fadd_rn(__fmul_rn(__fadd_rn(static_cast<float>(dst), 0.5f), scale), -0.5f);
  if (f < 0.0f) f = 0.0f;
  LinearTaps l;
  l.i0 = static_cast<int>(f);
  l.i1 = l.i0 + (l.i0 < in - 1 ? 1 : 0);
  l.w1 = __fadd_rn(f, -static_cast<float>(l.i0));
  l.w0 = 1.0f - l.w1;
  return l;
}

__device__ __forceinline__ float bilinear(const float* __restrict__ s, int in_w,
                                          const LinearTaps& ty, const LinearTaps& tx) {
  const float* r0 = s + static_cast<long long>(ty.i0) * in_w;
  const float* r1 = s + static_cast<long long>(ty.i1) * in_w;
  float a = tx.w0 * __ldg(r0 + tx.i0) + tx.w1 * __ldg(r0 + tx.i1);
  float b = tx.w0 * __ldg(r1 + tx.i0) + tx.w1 * __ldg(r1 + tx.i1);
  return ty.w0 * a + ty.w1 * b;
}

__device__ __forceinline__ int nearest_index(int dst, int in, float scale) {
  int i = static_cast<int>(floorf(__fmul_rn(static_cast<float>(dst), scale)));
  return i < in - 1 ? i : in - 1;
}

}  // namespace grf
