// Package pillow is Pillow 13's 8-bit image resampling (Image.resize) in pure Go, bit for
// bit: the reference loop of the device op engine.Ops.ResizeImage (engine/cpu runs it, the
// CUDA kernel grf_resize_rgb8 and cuda-emu's C loop implement the same arithmetic) and of
// the host resizes of pipeline/imageio (ResizePIL). It has no dependencies, so both can
// import it.
//
// Resize(src, W, H, ch, w, h, filter, box) follows Pillow's ImagingResample for images of
// 1 (mode "L") or 3 (RGB) interleaved channels:
//
//   - Filters: Bicubic (Keys cubic a = −0.5, support 2) and Lanczos (sinc(x)·sinc(x/3),
//     support 3), evaluated in float64.
//   - The source box [X0, X1) × [Y0, Y1) is in float32 as Pillow takes it; fractional and
//     zero-extent boxes are allowed (a zero-height box stretches the rows around its edge).
//     An integral box with exactly the output's size is a crop (no filtering).
//   - Per pass (Coeffs): scale = span/out, the support grows with the reduction factor
//     (antialiasing), per output index o the first input index and tap count, weights
//     w = filter((x + xmin − center + 0.5)/fs) normalised by their sum and quantised to
//     22-bit fixed point (±0.5 then truncated); each output value is
//     clamp((2^21 + Σ in·k) >> 22, 0, 255) in int32, so every pass rounds to 8 bits.
//   - Pass order (Pillow 13, Resample.c): the vertical pass first when the height shrinks
//     by more than twice the pixels the width does (H−h > 2·(W−w) and H > h), else the
//     horizontal pass first. The order shows in the bytes. A pass whose axis keeps its
//     size and extent is skipped (both skipped: a copy).
//
// Pillow 13.0.0 is the version tools/export pins; the goldens of engine/cpu/testdata/pillow
// and testdata/goldens/tiles (pil_*) are its output.
package pillow
