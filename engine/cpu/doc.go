// Package cpu is grefine's pure-Go compute device ("cpu" in the device registry) and the
// reference implementation of every CUDA kernel in cgo/kernels.
//
// # Device
//
// Device implements engine.Device with host memory: its tensors are *engine.HostTensor,
// fresh ones filled with 0xFF bytes (NaN) like the GPU emulator's, so a read before a
// write shows in every test. Its Stream runs each copy and op at once, with the reference
// function of the same name, and counts copies and syncs as a GPU stream does (copies
// between host tensors here), so the pipeline's counts mean the same on every device. It
// is always available.
//
// # Reference ops
//
// The ops are plain functions over slices in row-major (C) order. Each one states its
// reference loop; the CUDA launcher of the same family (grf_* in
// cgo/include/grefine_cuda.h) implements exactly that loop, cuda-emu (cgo/emu) runs it in
// C, and the tests of engine/cuda compare them with these functions:
//
//   - Images, RGB uint8 [H,W,3] and planar float32 [3,H,W]: ResizeImage (Pillow 13's
//     resize bit for bit, bicubic or Lanczos, with a source box and Pillow 13's pass
//     order: engine/pillow), ToPlanar (/255, mean and std), FromPlanar (clamp, round),
//     Paste (pixels outside a mask).
//   - Resizing with PyTorch F.interpolate semantics, align_corners=False:
//     ResizeBicubic (Keys cubic, A = -0.75, taps clamped at the borders), ResizeBilinear,
//     DownsampleNearest (src = floor(dst*in/out)), and Resize choosing by engine.ResizeMode.
//     Index arithmetic is float32, as in PyTorch, so the chosen taps agree with it.
//   - Pointwise (engine.PointwiseOp: affine with an optional clamp, float64 scale and
//     unscale with copies, float64 lerp (add_noise), maximum, thresholds, the masked
//     image, the division by a broadcast plane) and CountAtLeast, BoundingBox (a mask's box).
//   - Quality-map fusion (DESIGN §1.2, §1.4): CaskFuse, MinMaxNormalize, DefectMask,
//     Dilate, and FuseMaps, which composes them (with ResizeBicubic and
//     DownsampleNearest) into the score p, the map P, the image mask and the latent mask.
//     Masks are float32 0/1.
//   - Quality features: GoodProbs (the PQ softmax, float64 dots), ScatterRows and
//     Ensemble (the template ensemble of text features), TextMaps (the alignment map A).
//   - Refinement (DESIGN §1.4): BlendStep fuses classifier-free guidance, a linear
//     scheduler step (engine.EulerCoeffs, engine.DDIMCoeffs; two history terms and a second
//     output x0 for multistep solvers) and masked latent blending; InpaintInput builds the
//     9-channel inpainting UNet input duplicated for CFG; Emphasis weights hidden states
//     (prompt emphasis); ColorFix is PASD's wavelet colour fix (WaveletBlur).
//   - Large images (issue 22): TileGather cuts windows for a batch of UNet tiles,
//     TileAccumulate adds their weighted predictions in window order (pipeline/tile's
//     Accumulator), VAEBlend is diffusers' blend_v and blend_h of a tiled VAE.
//
// Sizes are checked against slice lengths; a mismatch returns an error wrapping
// engine.ErrShape and writes nothing. Outputs must not overlap inputs, except where an op
// says otherwise (BlendStep's out may be its x; Pointwise and ColorFix may work in place).
package cpu
