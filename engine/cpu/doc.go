// Package cpu is grefine's pure-Go compute device and the reference implementation of
// every CUDA kernel in cgo/kernels.
//
// # Device
//
// Device implements engine.Device with host memory: Upload and Download copy
// *engine.HostTensor values. It is always available.
//
// # Reference ops
//
// The ops are plain functions over float32 slices in row-major (C) order. Each one states
// its reference loop; the CUDA launcher of the same name (grf_<name> in
// cgo/include/grefine_cuda.h) implements exactly that loop, and the GPU tests in
// engine/cuda compare the two.
//
//   - Resizing with PyTorch F.interpolate semantics, align_corners=False:
//     ResizeBicubic (Keys cubic, A = -0.75, taps clamped at the borders), ResizeBilinear,
//     DownsampleNearest (src = floor(dst*in/out)), and Resize choosing by engine.ResizeMode.
//     Index arithmetic is float32, as in PyTorch, so the chosen taps agree with it.
//   - Quality-map fusion (DESIGN §1.2, §1.4): CaskFuse, MinMaxNormalize, DefectMask,
//     Dilate, and FuseMaps, which composes them (with ResizeBicubic and
//     DownsampleNearest) into the score p, the map P, the image mask and the latent mask.
//     Masks are float32 0/1.
//   - Latent update (DESIGN §1.4 stage 1): BlendStep fuses classifier-free guidance, a
//     linear scheduler step (engine.EulerCoeffs, engine.DDIMCoeffs; two history terms and
//     a second output x0 for multistep solvers) and masked latent blending; InpaintInput
//     builds the 9-channel inpainting UNet input duplicated for CFG.
//
// Sizes are checked against slice lengths; a mismatch returns an error wrapping
// engine.ErrShape and writes nothing. Outputs must not overlap inputs, except where an op
// says otherwise (BlendStep's out may be its x).
package cpu
