// Package tile is the host-side maths of large images (issue 22): diffusers' tiled VAE,
// tiled denoising with tile predictions averaged where tiles overlap, and diffusers'
// mask-cropped inpainting (padding_mask_crop). Every function here is the host reference
// of what the refiner's stages run on the device (pipeline/refine, "Large images": Plan
// lays out its tiled VAE, Stitch is what engine.Ops.VAEBlend and the strided copies
// compute, Grid and Weights place and weigh its denoising tiles, Accumulator is
// TileAccumulate and PointDivide, GrowBox and the fill and overlay steps its crop; the
// design note PHASE2.md records the plan), and every one is tested against goldens made
// with diffusers and PyTorch on the tiny model set (testdata/goldens/tiles,
// tools/export/tiles_ref.py).
// The package is pure Go: it runs no network itself; Plan.Run takes the network call as a
// function.
//
// # Tiled VAE
//
// VAE{Tile, Overlap, Factor} is AutoencoderKL.enable_tiling() of diffusers 0.31 with
// tile_sample_min_size = Tile, tile_latent_min_size = Tile/Factor, tile_overlap_factor =
// Overlap. EncodePlan(h, w) and DecodePlan(h, w) lay the tiles out as diffusers' loops do:
// tiles start every int(T·(1−Overlap)) input units (T the input tile), the last ones are
// ragged (shorter, down to one latent), and diffusers tiles only when a side exceeds the
// tile (Plan.Tiled; otherwise Run makes one call on the whole input: the untiled path,
// unchanged). Plan.Stitch blends the tile outputs exactly as diffusers does, in place and
// in raster order (blend_v with the tile above, then blend_h with the tile to the left,
// each already blended), with PyTorch's float32 arithmetic, then keeps each tile's first
// Keep rows and columns. Validate refuses settings whose tiles would drift against the
// latent grid (diffusers' output is then not H/8 × W/8) and overlaps above one half.
//
//	v := tile.VAE{Tile: 1024, Overlap: 0.25, Factor: 8}
//	p, _ := v.DecodePlan(h, w)                                      // latents
//	img, err := p.Run(ctx, latent, 4, 3, func(ctx context.Context, t tile.Tile, in []float32) ([]float32, error) {
//		return decoder(ctx, in, t.H, t.W)                           // [3, t.OutH, t.OutW]
//	})
//
// # Tiled denoising
//
// Grid{Tile, Overlap} (latent pixels) places square tiles as PASD's pipeline does: along
// an axis of n > Tile latents, k = ceil((n−Tile)/(Tile−Overlap)) + 1 tiles at
// j·(Tile−Overlap) and the last one pushed back to n−Tile, so all tiles have one size and
// batch together in the UNet; n <= Tile is one tile of n (Windows returns one window: the
// untiled path). Per step, each tile's UNet prediction (the CFG batch [uncond; cond]) is
// accumulated with a weight map and divided by the summed weights (Accumulator: Add in
// raster order, then Average); CFG and the scheduler step then run on the whole latent.
// CFG and the Euler, UniPC and DDIM steps are linear in the model output for a fixed
// sample, so this equals MultiDiffusion's "step each tile, average the results" in real
// arithmetic. Weights: Uniform (MultiDiffusion's plain average) or Gaussian (PASD's
// _gaussian_weights, its asymmetric midpoints kept). Extract is the strided tile copy.
//
// # Mask crop
//
// diffusers' padding_mask_crop, step by step: CropRegion (get_crop_region: the masked
// pixels' bounding box, padded, grown to the working aspect, shifted and clamped into the
// image; GrowBox is its second half, from a bounding box a device found), FillResize and FillResizeMask (crop, then _resize_and_fill: fit with Lanczos,
// fill the leftover bands by stretching the edge rows or columns with bicubic), and
// Overlay (apply_overlay with the canvas at the original's size: the working result
// resized into the box with _resize_and_crop, taken where the mask is set). The resizes
// are Pillow 13's, bit for bit (imageio.ResizePIL). diffusers' apply_overlay itself
// pastes into a canvas of the working size, which is only right when the image is the
// working size; Overlay is its generalisation and equals it there (the goldens check it).
// Masks are binary (>= 0.5 is masked); diffusers' "any non-zero" is the same on 0/255
// masks.
//
// # Seams
//
// For overlaps up to one half, every pixel of a stitched VAE output is a convex
// combination of the raw tiles covering it, with weights that change by less than 4/e per
// pixel (e the blend extent), so a step between neighbouring pixels is at most the
// largest step of the tiles themselves plus (2/e)·(the tiles' spread there); on the first
// row of a vertical blend diffusers' in-place order adds up to a quarter of the spread of
// the horizontally blended tiles (its weights jump from (1−r, r) to (1−r², r²)). The seam
// test holds a gradient image, encoded and decoded with the tiny VAE, to this bound at
// every pixel, and checks that hard cuts break it (seam_test.go). CheckSeams is that check;
// CheckAverageSeams is the tiled denoising's: an averaged prediction steps no more than
// the windows themselves plus their disagreement times Σ|Δŵ|/2 (ŵ the normalised
// weights). pipeline/refine's seam test holds a tiled refine to both.
//
// # Tolerances (measured on the tiny set, ONNX Runtime 1.30 on the CPU)
//
//   - Stitch and Accumulator/Average on the reference's own tile outputs: bit for bit.
//   - Plan.Run with the tiny VAEs on ONNX Runtime vs diffusers' tiled encode/decode: at
//     most 2e-5 (limit 1e-4, as the untiled ONNX parity tests).
//   - Tiled denoising loops (UNet on ONNX Runtime per tile, this package's averaging,
//     pipeline/sched) vs the PyTorch reference: latents at most 7e-6 over 10 steps
//     (limit 1e-4), tiled decode at most 5e-6 (limit 1e-3).
//   - CropRegion, FillResize, FillResizeMask, CropResize, Overlay: bit for bit.
//
// Errors: ErrConfig (a setting out of range or misaligned), ErrShape (a size or window that
// does not fit), ErrEmptyMask (nothing to crop around).
package tile
