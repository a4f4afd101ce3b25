/*
 * grefine_cuda.h: the C ABI of libgrefine_cuda.so, grefine's CUDA kernels.
 *
 * The library is dlopen'd by the Go package engine/cuda; the Go binary builds and runs
 * without it. CUDA's runtime is linked statically, so the library needs only the NVIDIA
 * driver (libcuda.so.1) at run time.
 *
 * Conventions (STYLE.md):
 *   - every symbol is prefixed grf_cuda_ or grf_;
 *   - every call returns a status (GRF_CUDA_OK or an error code) and, on error, writes a
 *     NUL-terminated lowercase message into the caller's buffer err[errlen] (errlen may
 *     be 0, then nothing is written); there is no thread-local "last error";
 *   - no C++ exception or CUDA error crosses this boundary;
 *   - device memory comes from grf_cuda_malloc (plain cudaMalloc, never managed memory)
 *     and is released by grf_cuda_free; host pointers passed in are borrowed for the
 *     duration of the call only (copies to and from host memory are synchronous);
 *   - a stream is an opaque grf_stream* (a cudaStream_t); kernels are enqueued on it and
 *     the launchers return without synchronising;
 *   - tensors are dense, row-major (C order), float32 unless stated otherwise.
 *
 * Each kernel family has one parameter struct and one launcher; the launcher's comment
 * states the reference loop, which the pure-Go twin in engine/cpu implements exactly.
 */
#ifndef GREFINE_CUDA_H
#define GREFINE_CUDA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Exported symbols (the library is built with hidden visibility by default). */
#if defined(__GNUC__)
#define GRF_CUDA_API __attribute__((visibility("default")))
#else
#define GRF_CUDA_API
#endif

/* Status codes. */
#define GRF_CUDA_OK 0
/* An argument is invalid (null pointer, bad size, bad shape). */
#define GRF_CUDA_ERR_INVALID 1
/* A CUDA runtime call failed; the message holds CUDA's error name and string. */
#define GRF_CUDA_ERR_CUDA 2
/* No usable GPU: no device (cudaErrorNoDevice) or no/too old driver
 * (cudaErrorInsufficientDriver); *cuda_error tells which where a call has one. */
#define GRF_CUDA_ERR_NO_DEVICE 3
/* An internal error (a C++ exception caught at the boundary). */
#define GRF_CUDA_ERR_INTERNAL 4

/* ABI version of this header; grf_cuda_abi_version returns it. Bump on any change of a
 * struct or signature. ABI 2: grf_cuda_memcpy_htod no longer waits for the stream,
 * grf_cuda_memcpy2d_dtod, and the kernel families of the device-resident request
 * (images, pointwise, dilate, count, PQ, text features and maps, emphasis, colour fix).
 * ABI 3 (large images): grf_resize_rgb8 takes a Pillow filter and a source box and runs
 * Pillow 13's pass order; GRF_POINT_DIVIDE; grf_bounding_box, grf_tile_gather,
 * grf_tile_accumulate and grf_vae_blend. */
#define GRF_CUDA_ABI_VERSION 3

/* Opaque stream handle (a cudaStream_t). */
typedef struct grf_stream grf_stream;

/* grf_cuda_abi_version returns GRF_CUDA_ABI_VERSION as compiled into the library. */
GRF_CUDA_API int grf_cuda_abi_version(void);

/* grf_cuda_versions writes the CUDA runtime version the library was built with and the
 * driver's CUDA version (0 when no driver is installed), e.g. 11080 and 12040. */
GRF_CUDA_API int grf_cuda_versions(int* runtime_version, int* driver_version, char* err, size_t errlen);

/* grf_cuda_device_count writes the number of CUDA devices. With no usable GPU it returns
 * GRF_CUDA_ERR_NO_DEVICE, writes 0 devices and stores the raw cudaError_t in *cuda_error
 * (100 = no device, 35 = insufficient driver); otherwise *cuda_error is 0. */
GRF_CUDA_API int grf_cuda_device_count(int* count, int* cuda_error, char* err, size_t errlen);

/* grf_cuda_device_info describes device dev: its name (NUL-terminated, truncated to
 * namelen), compute capability, global memory and multiprocessor count. */
GRF_CUDA_API int grf_cuda_device_info(int dev, char* name, size_t namelen, int* major, int* minor,
                         size_t* total_mem, int* sm_count, char* err, size_t errlen);

/* grf_cuda_set_device makes dev the current device of the calling OS thread. */
GRF_CUDA_API int grf_cuda_set_device(int dev, char* err, size_t errlen);

/* grf_cuda_malloc allocates bytes of device memory (cudaMalloc; bytes 0 gives NULL). */
GRF_CUDA_API int grf_cuda_malloc(void** ptr, size_t bytes, char* err, size_t errlen);

/* grf_cuda_free releases memory from grf_cuda_malloc; NULL is a no-op. */
GRF_CUDA_API int grf_cuda_free(void* ptr, char* err, size_t errlen);

/* grf_cuda_stream_create creates a stream that synchronises with the legacy default
 * stream (NULL): copies on the NULL stream wait for the work enqueued on it. */
GRF_CUDA_API int grf_cuda_stream_create(grf_stream** stream, char* err, size_t errlen);

/* grf_cuda_stream_destroy synchronises and destroys a stream; NULL is a no-op. */
GRF_CUDA_API int grf_cuda_stream_destroy(grf_stream* stream, char* err, size_t errlen);

/* grf_cuda_stream_sync waits for all work enqueued on the stream and reports any
 * asynchronous error of that work. */
GRF_CUDA_API int grf_cuda_stream_sync(grf_stream* stream, char* err, size_t errlen);

/* grf_cuda_memcpy_htod enqueues a copy of bytes from host src to device dst on the
 * stream, ordered after the stream's earlier work. It returns once src has been read
 * (staged), without waiting for the stream: src may be reused after the call returns. */
GRF_CUDA_API int grf_cuda_memcpy_htod(void* dst, const void* src, size_t bytes, grf_stream* stream,
                         char* err, size_t errlen);

/* grf_cuda_memcpy_dtoh waits for the stream's earlier work, copies bytes from device src
 * to host dst and waits for the copy. */
GRF_CUDA_API int grf_cuda_memcpy_dtoh(void* dst, const void* src, size_t bytes, grf_stream* stream,
                         char* err, size_t errlen);

/* grf_cuda_memcpy_dtod enqueues a device-to-device copy on the stream (asynchronous). */
GRF_CUDA_API int grf_cuda_memcpy_dtod(void* dst, const void* src, size_t bytes, grf_stream* stream,
                         char* err, size_t errlen);

/* grf_cuda_memcpy2d_dtod enqueues a strided 2-D device-to-device copy of rows rows of
 * width bytes each: row r goes from src + r*spitch to dst + r*dpitch (cudaMemcpy2DAsync;
 * dpitch and spitch >= width). rows or width 0 does nothing. */
GRF_CUDA_API int grf_cuda_memcpy2d_dtod(void* dst, size_t dpitch, const void* src, size_t spitch,
                           size_t width, size_t rows, grf_stream* stream, char* err,
                           size_t errlen);

/* grf_cuda_memset enqueues cudaMemsetAsync(ptr, value, bytes) on the stream. */
GRF_CUDA_API int grf_cuda_memset(void* ptr, int value, size_t bytes, grf_stream* stream, char* err,
                    size_t errlen);

/* ---- Resize -------------------------------------------------------------------------- */

/* Interpolation modes of grf_resize, all with PyTorch F.interpolate semantics and
 * align_corners=False. */
#define GRF_RESIZE_NEAREST 0
#define GRF_RESIZE_BILINEAR 1
#define GRF_RESIZE_BICUBIC 2

/* Parameters of grf_resize: planes of in_h x in_w resized to out_h x out_w. */
typedef struct grf_resize_params {
  const float* src; /* [planes, in_h, in_w] */
  float* dst;       /* [planes, out_h, out_w]; must not overlap src */
  int planes, in_h, in_w, out_h, out_w;
  int mode; /* GRF_RESIZE_* */
} grf_resize_params;

/* grf_resize: for every plane n and output pixel (y, x):
 *   scale_y = (float)in_h / out_h, scale_x = (float)in_w / out_w   (float32 arithmetic)
 *   NEAREST:  sy = min(floor(y * scale_y), in_h - 1) (same for x); dst = src[sy, sx]
 *   BILINEAR: fy = max((y + 0.5) * scale_y - 0.5, 0); y0 = (int)fy; y1 = y0 + (y0 < in_h-1);
 *             ly = fy - y0; dst = (1-ly)*((1-lx)*s[y0,x0] + lx*s[y0,x1])
 *                               +   ly *((1-lx)*s[y1,x0] + lx*s[y1,x1])
 *   BICUBIC:  fy = (y + 0.5) * scale_y - 0.5 (no clamp); y0 = min(floor(fy), in_h-1);
 *             ty = clamp(fy - y0, 0, 1); weights wy[k], k=0..3, Keys cubic A = -0.75 at
 *             distances ty+1, ty, 1-ty, 2-ty; taps at rows clamp(y0-1+k, 0, in_h-1);
 *             dst = sum_k wy[k] * sum_j wx[j] * s[row_k, col_j]
 * planes, out_h or out_w may be 0 (nothing to do; pointers may then be NULL). */
GRF_CUDA_API int grf_resize(const grf_resize_params* p, grf_stream* stream, char* err, size_t errlen);

/* ---- Quality-map fusion (DESIGN 1.2, 1.4) ---------------------------------------------- */

/* Parameters of grf_fuse_maps. T = 1 + grid_h * grid_w tokens (token 0 = CLS, then the
 * patches row-major). */
typedef struct grf_fuse_maps_params {
  const float* good;  /* [batch, 4, T]: P("good") for overall, technical, rationality,
                         naturalness */
  const float* align; /* [batch, height, width] alignment map A in [0,1], or NULL (zeros) */
  float* score;       /* [batch] out: p = L[0] */
  float* pmap;        /* [batch, height, width] out: P, in [0,1] */
  float* mask_img;    /* [batch, height, width] out: dilated defect mask, 0.0f or 1.0f */
  float* mask_lat;    /* [batch, lat_h, lat_w] out: nearest downsample of mask_img, 0/1 */
  void* workspace;    /* device scratch of grf_fuse_maps_workspace_size bytes (may be
                         NULL when that size is 0) */
  size_t workspace_bytes;
  int batch, grid_h, grid_w;
  int height, width; /* image resolution H, W */
  int lat_h, lat_w;  /* latent resolution h, w */
  int radius;        /* dilation radius r >= 0 (square (2r+1)^2 max filter) */
  float alpha[3];    /* cask thresholds of dimensions 1..3 (each > 0) */
  float perceptual_bound; /* P below this is a perceptual defect ... */
  float perceptual_gate;  /* ... when the raw upsampled L is also below this */
  float align_bound;      /* A above this is an alignment defect */
} grf_fuse_maps_params;

/* grf_fuse_maps_workspace_size writes the scratch bytes grf_fuse_maps needs for p's
 * shapes: 8 * batch * grid_h * grid_w, plus 2 * batch * height * width when radius > 0.
 * It validates the sizes in p (not the pointers). */
GRF_CUDA_API int grf_fuse_maps_workspace_size(const grf_fuse_maps_params* p, size_t* bytes, char* err,
                                 size_t errlen);

/* grf_fuse_maps, per image b (kernels enqueued back to back on one stream):
 *   for t in 0..T-1:  L[t] = g0[t] * prod_{i=1..3} min(g_i[t] / alpha[i-1], 1)
 *   score[b] = L[0]
 *   G = L[1..T-1] as grid_h x grid_w; lo, hi = min(G), max(G)
 *   N = (hi - lo < 1e-12) ? 0 : (G - lo) / (hi - lo)
 *   pmap = clamp(bicubic(N -> height x width), 0, 1); Lup = bicubic(G -> height x width)
 *   m[y,x] = (pmap < perceptual_bound && Lup < perceptual_gate) || (A[y,x] > align_bound)
 *   mask_img[y,x] = max over |dy|,|dx| <= radius of m (window clipped at the borders)
 *   mask_lat = nearest(mask_img -> lat_h x lat_w)
 * with bicubic and nearest as in grf_resize. batch may be 0. grid_h * grid_w <= 4096. */
GRF_CUDA_API int grf_fuse_maps(const grf_fuse_maps_params* p, grf_stream* stream, char* err,
                  size_t errlen);

/* ---- Masked latent blending fused with CFG and the scheduler step (DESIGN 1.4) --------- */

/* Parameters of grf_blend_step. n = channels * height * width per image. */
typedef struct grf_blend_params {
  const float* noise_pred; /* [2*batch, C, h, w]: rows 0..B-1 unconditional, B..2B-1
                              conditional */
  const float* x;          /* [batch, C, h, w] current latents */
  const float* init;       /* [batch, C, h, w] clean original latents; NULL = zeros */
  const float* noise;      /* [batch, C, h, w] re-noising noise; NULL = zeros */
  const float* mask;       /* [batch, 1, h, w], 1 = repaint; NULL = all ones */
  const float* hist[2];    /* [batch, C, h, w] history terms (multistep); NULL = unused */
  float* out;              /* [batch, C, h, w]; may alias x */
  float* x0;               /* [batch, C, h, w] optional second output, or NULL; may alias
                              x but not out */
  int batch, channels, height, width;
  float guidance;          /* CFG scale g */
  float ca, cb;            /* step: ca*x + cb*eps */
  float cc, cd;            /* re-noise: cc*init + cd*noise */
  float ch[2];             /* history coefficients */
  float ce, cf;            /* x0 = ce*x + cf*eps */
} grf_blend_params;

/* grf_blend_step, for b in 0..B-1, c in 0..C-1, p in 0..h*w-1, i = (b*C + c)*h*w + p:
 *   u = noise_pred[i], k = noise_pred[B*C*h*w + i]
 *   eps = u + g*(k - u)
 *   xm = ca*x[i] + cb*eps + ch[0]*hist0[i] + ch[1]*hist1[i]   (absent terms skipped)
 *   if mask == NULL: out[i] = xm
 *   else m = mask[b*h*w + p]; out[i] = m*xm + (1-m)*(cc*init[i] + cd*noise[i])
 *   if x0 != NULL: x0[i] = ce*x[i] + cf*eps
 * Each element is read before it is written by the same thread, so out == x is safe.
 * batch may be 0. */
GRF_CUDA_API int grf_blend_step(const grf_blend_params* p, grf_stream* stream, char* err, size_t errlen);

/* Parameters of grf_inpaint_input. */
typedef struct grf_inpaint_params {
  const float* latents; /* [batch, C, h, w] */
  const float* mask;    /* [batch, 1, h, w] */
  const float* masked;  /* [batch, C, h, w] masked-image latents */
  float* out;           /* [2*batch, 2*C+1, h, w]; must not overlap the inputs */
  int batch, channels, height, width;
  float scale_in;       /* scheduler input scaling applied to latents */
} grf_inpaint_params;

/* grf_inpaint_input builds the 9-channel (C = 4) UNet input duplicated for CFG:
 *   for r in 0..2B-1, b = r mod B, p in 0..h*w-1:
 *     out[r, c, p]       = latents[b, c, p] * scale_in   for c in 0..C-1
 *     out[r, C, p]       = mask[b, 0, p]
 *     out[r, C+1+c, p]   = masked[b, c, p]              for c in 0..C-1
 * batch may be 0. */
GRF_CUDA_API int grf_inpaint_input(const grf_inpaint_params* p, grf_stream* stream, char* err,
                      size_t errlen);

/* ---- Images (ABI 2) --------------------------------------------------------------------
 * An RGB image is uint8 [H, W, 3] row-major (pixel p = y*W + x holds R, G, B at 3p..3p+2);
 * a planar image is float32 [3, H, W]. */

/* Pillow filters of grf_resize_rgb8 (values equal engine.ResampleFilter). */
#define GRF_RESAMPLE_BICUBIC 0
#define GRF_RESAMPLE_LANCZOS 1

/* Parameters of grf_resize_rgb8: Pillow 13's Image.resize((out_w, out_h), filter, box). */
typedef struct grf_resize_rgb8_params {
  const uint8_t* src; /* [in_h, in_w, 3] */
  uint8_t* dst;       /* [out_h, out_w, 3]; must not overlap src */
  void* workspace;    /* device scratch of grf_resize_rgb8_workspace_size bytes */
  size_t workspace_bytes;
  int in_h, in_w, out_h, out_w; /* each >= 1 */
  int filter;         /* GRF_RESAMPLE_* */
  int has_box;        /* 0: the whole image; else box */
  float box[4];       /* x0, y0, x1, y1: the source rectangle [x0, x1) x [y0, y1), inside the
                         image, x1 >= x0, y1 >= y0 (fractional and zero extents allowed) */
} grf_resize_rgb8_params;

/* grf_resize_rgb8_workspace_size writes the scratch grf_resize_rgb8 needs: the two passes'
 * fixed-point tables and the intermediate image (0 for a crop or a copy). It validates the
 * sizes, the filter and the box. */
GRF_CUDA_API int grf_resize_rgb8_workspace_size(const grf_resize_rgb8_params* p, size_t* bytes,
                                   char* err, size_t errlen);

/* grf_resize_rgb8 is Pillow 13's 8-bit resampling, bit for bit (engine/pillow is the
 * reference). With b the box (the whole image without one):
 *   - an integral box of exactly out_w x out_h is a crop: dst = src[y0.., x0..];
 *   - else the horizontal pass runs when out_w != in_w or x0 != 0 or x1 != out_w, the
 *     vertical pass when out_h != in_h or y0 != 0 or y1 != out_h (neither: a copy); the
 *     vertical pass goes first when in_h - out_h > 0 and in_h - out_h > 2*(in_w - out_w),
 *     else the horizontal one; each pass rounds to 8 bits.
 * Per pass of an axis of n_in pixels over [in0, in0 + span) (float32 x0 and x1 - x0, in
 * float64 after; each operation rounded, no fused multiply-add) to n_out, for output o:
 *   scale = span/n_out; fs = max(scale, 1); support = S*fs (S = 2 bicubic, 3 lanczos)
 *   K = ceil(support)*2 + 1; center = in0 + (o + 0.5)*scale
 *   xmin = max((int)(center - support + 0.5), 0); n = min((int)(center + support + 0.5), n_in) - xmin
 *   w[x] = f((x + xmin - center + 0.5) / fs), x < n; ww = sum w (x order)
 *   k[x] = (int32)(+-0.5 + (ww != 0 ? w[x]/ww : w[x]) * 2^22)   (sign of the weight)
 *   out = clamp((2^21 + sum_{x<n} in[xmin + x] * k[x]) >> 22, 0, 255)   (int32)
 * with f the bicubic ((1.5|t| - 2.5)|t|)|t| + 1 for |t| < 1, ((|t| - 5)|t| + 8)|t| - 4)*-0.5
 * for |t| < 2, else 0 (left to right), or lanczos sinc(t)*sinc(t/3) on [-3, 3)
 * (sinc(t) = sin(pi t)/(pi t), 1 at 0; sin from the platform's math library: a last-bit
 * difference changes a 22-bit weight only at an exact rounding tie). */
GRF_CUDA_API int grf_resize_rgb8(const grf_resize_rgb8_params* p, grf_stream* stream, char* err,
                    size_t errlen);

/* Parameters of grf_to_planar and grf_from_planar. */
typedef struct grf_planar_params {
  uint8_t* rgb;  /* [n, 3]: grf_to_planar's source, grf_from_planar's destination */
  float* planar; /* [3, n]: grf_to_planar's destination, grf_from_planar's source */
  long long n;   /* pixels (>= 0) */
  float mean[3], std[3]; /* grf_to_planar only */
} grf_planar_params;

/* grf_to_planar: planar[c*n + p] = (float(rgb[3p + c]) / 255 - mean[c]) / std[c]
 * (float32, each operation rounded). */
GRF_CUDA_API int grf_to_planar(const grf_planar_params* p, grf_stream* stream, char* err,
                  size_t errlen);

/* grf_from_planar: v = min(max(planar[c*n + p], 0), 1);
 * rgb[3p + c] = (uint8_t)(v*255 + 0.5) (float32, rounded, truncated). */
GRF_CUDA_API int grf_from_planar(const grf_planar_params* p, grf_stream* stream, char* err,
                    size_t errlen);

/* Parameters of grf_paste_rgb8. */
typedef struct grf_paste_params {
  uint8_t* dst;       /* [n, 3] */
  const uint8_t* src; /* [n, 3] */
  const float* mask;  /* [n] */
  long long n;
} grf_paste_params;

/* grf_paste_rgb8: for each pixel p with mask[p] < 0.5, dst[3p..3p+2] = src[3p..3p+2]. */
GRF_CUDA_API int grf_paste_rgb8(const grf_paste_params* p, grf_stream* stream, char* err,
                   size_t errlen);

/* ---- Pointwise, dilation, counting (ABI 2) ------------------------------------------ */

/* Operations of grf_pointwise (values equal engine.PointwiseOp). */
#define GRF_POINT_AFFINE 1
#define GRF_POINT_SCALE 2
#define GRF_POINT_UNSCALE 3
#define GRF_POINT_LERP 4
#define GRF_POINT_MAXIMUM 5
#define GRF_POINT_GREATER 6
#define GRF_POINT_AT_LEAST 7
#define GRF_POINT_MASKED_AFFINE 8
#define GRF_POINT_DIVIDE 9

/* Parameters of grf_pointwise. */
typedef struct grf_pointwise_params {
  int op;             /* GRF_POINT_* */
  float* dst;         /* [n] ([copies * n] for SCALE) */
  const float* src;   /* [n] */
  const float* src2;  /* [n] for LERP and MAXIMUM, else NULL */
  const float* mask;  /* [m] for MASKED_AFFINE and DIVIDE (n a multiple of m), else NULL */
  long long n, m;
  int copies;         /* SCALE: copies of the result (>= 1); else 1 */
  int clamp01;        /* AFFINE: clamp the result to [0, 1] */
  float a, b;
  double s, t;
} grf_pointwise_params;

/* grf_pointwise, for i < n (float32 unless stated, each operation rounded, no fused
 * multiply-add):
 *   AFFINE:        dst[i] = src[i]*a + b; clamp01: min(max(dst[i], 0), 1)
 *   SCALE:         dst[j*n + i] = (float)((double)src[i] * s), j < copies
 *   UNSCALE:       dst[i] = (float)((double)src[i] / s)
 *   LERP:          dst[i] = (float)(s*(double)src[i] + t*(double)src2[i])
 *   MAXIMUM:       dst[i] = max(src[i], src2[i])
 *   GREATER:       dst[i] = src[i] > a ? 1 : 0
 *   AT_LEAST:      dst[i] = src[i] >= a ? 1 : 0
 *   MASKED_AFFINE: dst[i] = mask[i % m] < 0.5 ? src[i]*a + b : 0
 *   DIVIDE:        dst[i] = src[i] / mask[i % m]
 * dst may equal src or src2 (each element is read before it is written) except SCALE
 * with copies > 1. n may be 0. */
GRF_CUDA_API int grf_pointwise(const grf_pointwise_params* p, grf_stream* stream, char* err,
                  size_t errlen);

/* Parameters of grf_dilate. */
typedef struct grf_dilate_params {
  const float* src; /* [planes, h, w] */
  float* dst;       /* [planes, h, w]; must not overlap src */
  void* workspace;  /* planes*h*w floats of device scratch (NULL when radius is 0) */
  size_t workspace_bytes;
  int planes, height, width, radius; /* radius >= 0 */
} grf_dilate_params;

/* grf_dilate: a (2r+1) x (2r+1) square max filter per plane, the window clipped at the
 * borders, as a horizontal pass (into the workspace) then a vertical pass:
 *   t[y,x] = max over |dx| <= r of src[y, x+dx]; dst[y,x] = max over |dy| <= r of t[y+dy, x]
 * radius 0 copies. */
GRF_CUDA_API int grf_dilate(const grf_dilate_params* p, grf_stream* stream, char* err,
               size_t errlen);

/* Parameters of grf_count_at_least. */
typedef struct grf_count_params {
  const float* src; /* [n] */
  long long* count; /* [1] out */
  long long n;
  float bound;
} grf_count_params;

/* grf_count_at_least: *count = the number of i < n with src[i] >= bound. */
GRF_CUDA_API int grf_count_at_least(const grf_count_params* p, grf_stream* stream, char* err,
                       size_t errlen);

/* Parameters of grf_bounding_box. */
typedef struct grf_bbox_params {
  const float* src;   /* [planes, height, width] */
  long long* box;     /* [4] out: x1, y1, x2, y2 */
  void* workspace;    /* 16 bytes of device scratch */
  size_t workspace_bytes;
  int planes, height, width;
  float bound;
} grf_bbox_params;

/* grf_bounding_box: the box [x1, x2) x [y1, y2) of the values >= bound over all planes:
 *   x1, y1, x2, y2 = width, height, -1, -1
 *   for each plane, y, x with src[., y, x] >= bound: x1 = min(x1, x), y1 = min(y1, y),
 *     x2 = max(x2, x), y2 = max(y2, y)
 *   box = (x1, y1, x2 + 1, y2 + 1), or (0, 0, 0, 0) when no value reaches bound.
 * planes, height or width may be 0 (box 0). */
GRF_CUDA_API int grf_bounding_box(const grf_bbox_params* p, grf_stream* stream, char* err,
                     size_t errlen);

/* ---- Large images: tiled denoising and tiled VAE (ABI 3) ------------------------------ */

/* Windows per call of grf_tile_gather and grf_tile_accumulate (they travel by value). */
#define GRF_MAX_TILES 64

/* Parameters of grf_tile_gather and grf_tile_accumulate: n windows of th x tw of planes
 * height x width, window k at row y[k] and column x[k] (inside the plane). */
typedef struct grf_tile_params {
  const float* src;     /* gather: [r, channels, height, width] */
  float* dst;           /* gather: [copies*n, channels, th, tw] */
  const float* pred;    /* accumulate: [copies*nb, channels, th, tw] */
  const float* weights; /* accumulate: [th, tw] */
  float* acc;           /* accumulate: [copies, channels, height, width] */
  float* wsum;          /* accumulate: [height, width] */
  int r;                /* gather: 1 or copies */
  int copies, nb, channels, height, width, th, tw;
  int n;                /* windows, 1..GRF_MAX_TILES (accumulate: n <= nb) */
  int y[GRF_MAX_TILES], x[GRF_MAX_TILES];
} grf_tile_params;

/* grf_tile_gather cuts the windows out of src:
 *   for j < copies, k < n, c, y < th, x < tw:
 *     dst[j*n + k, c, y, x] = src[r == 1 ? 0 : j, c, y[k] + y, x[k] + x]
 * dst must not overlap src. */
GRF_CUDA_API int grf_tile_gather(const grf_tile_params* p, grf_stream* stream, char* err,
                    size_t errlen);

/* grf_tile_accumulate adds the weighted windows in order (float32; each product rounded,
 * then the sum; one thread per pixel, so each sum runs in window order):
 *   for k < n, y < th, x < tw:
 *     for j < copies, c: acc[j, c, y[k]+y, x[k]+x] += pred[j*nb + k, c, y, x] * weights[y, x]
 *     wsum[y[k]+y, x[k]+x] += weights[y, x]
 * Rows k >= n of each copy of pred are not read. acc and wsum must not overlap pred. */
GRF_CUDA_API int grf_tile_accumulate(const grf_tile_params* p, grf_stream* stream, char* err,
                        size_t errlen);

/* Parameters of grf_vae_blend. */
typedef struct grf_vae_blend_params {
  const float* a; /* [channels, ah, aw]: the tile above (vertical) or to the left */
  float* b;       /* [channels, bh, bw], blended in place; must not overlap a */
  int channels, ah, aw, bh, bw;
  int extent;     /* >= 0 */
  int vertical;   /* non-zero: blend_v (aw == bw); zero: blend_h (ah == bh) */
} grf_vae_blend_params;

/* grf_vae_blend is diffusers' blend_v / blend_h of AutoencoderKL's tiled encode and decode
 * (float32 products, each rounded, then the sum; weights in double, rounded to float):
 *   vertical: e = min(ah, bh, extent); for y < e, c, x < bw:
 *     b[c,y,x] = a[c, ah-e+y, x]*(float)(1 - y/e) + b[c,y,x]*(float)(y/e)
 *   horizontal: e = min(aw, bw, extent); for x < e, c, y < bh:
 *     b[c,y,x] = a[c, y, aw-e+x]*(float)(1 - x/e) + b[c,y,x]*(float)(x/e) */
GRF_CUDA_API int grf_vae_blend(const grf_vae_blend_params* p, grf_stream* stream, char* err,
                  size_t errlen);

/* ---- Quality features (ABI 2) -------------------------------------------------------- */

/* Parameters of grf_pq_probs. */
typedef struct grf_pq_params {
  const float* tokens;  /* [batch, T, D] */
  const float* pq_text; /* [4, 2, D]: per dimension i the "good" row 2i, the "bad" row 2i+1 */
  float* good;          /* [batch, 4, T] out */
  int batch, tokens_n, dim; /* batch, T, D */
} grf_pq_params;

/* grf_pq_probs, the PQ softmax: for b, t, i:
 *   g = dot(tokens[b,t], pq_text[2i]), k = dot(tokens[b,t], pq_text[2i+1])  (double sums)
 *   good[b,i,t] = (float)(1 / (1 + exp(k - g)))                                (double)
 * (the reference sums in index order; the kernel's order differs, within the stated
 * tolerance). */
GRF_CUDA_API int grf_pq_probs(const grf_pq_params* p, grf_stream* stream, char* err, size_t errlen);

/* Parameters of grf_scatter_rows. */
typedef struct grf_scatter_params {
  const float* src;     /* [n, D] */
  const int32_t* index; /* [n], distinct values in [0, m) */
  float* dst;           /* [m, D] */
  int n, m, dim;
} grf_scatter_params;

/* grf_scatter_rows: dst[index[i], :] = src[i, :] for i < n. An index outside [0, m) is
 * skipped (the reference refuses it). */
GRF_CUDA_API int grf_scatter_rows(const grf_scatter_params* p, grf_stream* stream, char* err,
                     size_t errlen);

/* Parameters of grf_text_ensemble. */
typedef struct grf_ensemble_params {
  const float* emb;   /* [texts * k, D]: text i's k templated embeddings consecutive */
  const float* empty; /* [D] R, or NULL */
  float* dst;         /* [texts, D] */
  int texts, k, dim;  /* k >= 1 */
} grf_ensemble_params;

/* grf_text_ensemble, per text, in double:
 *   n_j = |emb_j| (0 counts as 1); acc[d] = sum_j emb_j[d] / n_j (j order); acc /= k
 *   dst[d] = (float)(acc[d] / |acc| - R[d])       (|acc| = 0 counts as 1; R absent: 0) */
GRF_CUDA_API int grf_text_ensemble(const grf_ensemble_params* p, grf_stream* stream, char* err,
                      size_t errlen);

/* Parameters of grf_text_maps. */
typedef struct grf_text_maps_params {
  const float* tokens; /* [T, D], T = 1 + grid_h*grid_w (token 0 = CLS) */
  const float* feats;  /* [k, D] */
  float* dst;          /* [height, width] */
  void* workspace;     /* k*grid_h*grid_w floats of device scratch (NULL when k is 0) */
  size_t workspace_bytes;
  int k, dim, grid_h, grid_w, height, width;
} grf_text_maps_params;

/* grf_text_maps, the alignment map: dst = 0; for j < k:
 *   v[t] = (float)dot(tokens[1+t], feats[j])   (double sums), t < grid_h*grid_w
 *   lo, hi = min(v), max(v); v = (hi - lo < 1e-12) ? 0 : (v - lo)/(hi - lo)
 *   dst = max(dst, bilinear(v as grid_h x grid_w -> height x width))   (as grf_resize) */
GRF_CUDA_API int grf_text_maps(const grf_text_maps_params* p, grf_stream* stream, char* err,
                  size_t errlen);

/* ---- Refinement (ABI 2) -------------------------------------------------------------- */

/* Parameters of grf_emphasis. */
typedef struct grf_emphasis_params {
  float* hidden;      /* [rows, dim], in place */
  const float* weights; /* [rows] host memory, read during the call */
  double* workspace;  /* 2 doubles of device scratch */
  size_t workspace_bytes;
  int rows, dim;      /* rows <= 256 */
} grf_emphasis_params;

/* grf_emphasis, prompt emphasis (A1111 style): when every weight is 1 nothing changes;
 * else before = sum(double)h; h[r,d] *= w[r] (float32); after = sum(double)h;
 * if after != 0: h *= (float)(before/after). */
GRF_CUDA_API int grf_emphasis(const grf_emphasis_params* p, grf_stream* stream, char* err,
                 size_t errlen);

/* Parameters of grf_color_fix. */
typedef struct grf_color_fix_params {
  const float* content; /* [C, H, W] */
  const float* style;   /* [C, H, W] */
  float* dst;           /* [C, H, W]; may equal content or style */
  void* workspace;      /* grf_color_fix_workspace_size bytes */
  size_t workspace_bytes;
  int channels, height, width, levels; /* levels >= 1 */
} grf_color_fix_params;

/* grf_color_fix_workspace_size writes the scratch of grf_color_fix: 4 planes sets. */
GRF_CUDA_API int grf_color_fix_workspace_size(const grf_color_fix_params* p, size_t* bytes,
                                 char* err, size_t errlen);

/* grf_color_fix, PASD's wavelet colour fix (float32, each operation rounded, left to right):
 *   blur_r(s)[y,x] = 0.25*t[y-r,x] + 0.5*t[y,x] + 0.25*t[y+r,x],
 *     t[y,x] = 0.25*s[y,x-r] + 0.5*s[y,x] + 0.25*s[y,x+r]       (indices clamped)
 *   decompose(img): high = 0; for i < levels: low = blur_{2^i}(img); high += img - low;
 *                   img = low
 *   dst = min(max(high(content) + low(style), 0), 1) */
GRF_CUDA_API int grf_color_fix(const grf_color_fix_params* p, grf_stream* stream, char* err,
                  size_t errlen);

#ifdef __cplusplus
}
#endif

#endif /* GREFINE_CUDA_H */
