// Package refine is G-Refine's balanced refiner (paper eq. 9-10, DESIGN §1.4): stage 1
// repaints only the defect mask with SDXL-Inpainting, at a strength driven by the quality
// scores; stage 2 polishes the whole image gently with PASD; high-quality images and
// regions are left alone.
//
// # Stage 1 (SDXL-Inpainting)
//
// Skipped when the mask is empty: the image comes out bit-identical and the report says
// so. Otherwise the image is resized (Pillow-exact bicubic) so its long side is LongSide
// (1024) and both sides are multiples of 8, aspect kept; the mask goes with it (nearest)
// and to the latent grid (nearest, PyTorch semantics). Strength
// s1 = StrengthMax − (StrengthMax − StrengthMin)·q. The schedule is diffusers'
// img2img one with num_inference_steps = N chosen so that exactly Steps1 steps run
// (sched.TimestepsForStrength). Latents start at add_noise(z, ε, t0) where z is the VAE
// latent mean of the image (times vae_scale) and ε seeded Gaussian noise. Every step:
// UNet input [scale_in·x | mask | masked-image latents] duplicated for classifier-free
// guidance (zero negative embeddings, SDXL time ids (h, w, 0, 0, h, w)), then the fused
// CFG + Euler step + masked latent blending (engine.Ops.BlendStep): outside the mask the latents are reset to the original latents noised to
// the next timestep. After decoding, pixels outside the mask are taken from the input.
// Both switches (MaskedBlend, PastePixels) default on; diffusers' 9-channel pipeline does
// neither, so the parity test turns them off.
//
// The prompt is prompt + Suffix1, with every defective part's tokens weighted by Emphasis
// (1.1; paper eq. 7): segments are tokenised separately, and the text encoders' hidden
// states are scaled per token and rescaled to their original mean (A1111 style).
//
// # Stage 2 (PASD)
//
// The whole image at strength Strength2 (0.15), Steps2 (10) UniPC steps (bh2, order 2),
// guidance 9, PASD's negative prompt, prompt + Suffix2, control image = the stage-1 result
// in [0,1]. PASD's caption model is not used (its text would be prepended to the prompt).
// Images whose short side is below ProcessSize are upscaled to it first (PASD does the
// same; 0 disables); sides are floored to multiples of 8 and the result is resized back.
// Then PASD's wavelet colour fix: high bands from the output, low band from the stage-1
// image.
//
// Seeds make runs reproducible: the same seed, inputs and model set give the same bytes.
// Cancelling the context stops a stage between UNet calls.
//
// # Large images
//
// PlanFor (memory.go) plans a request before any model work, the same way for validation
// (the pipeline's work limits) and for the run: each stage's working size, whether its
// VAE and its denoising run in tiles, the UNet batch of tiles, and the memory, estimated
// as the buffers at the working size (StageBytesPerPixel) plus the largest network call
// (the VAE's mid-block attention, 8·n² bytes for n latent pixels; the UNet's attention per
// tile of the batch), within Config.MemoryLimit less the input's own buffers
// (InputBytesPerPixel). Tiles bound the networks' part: only the image and the tensors at
// the working size scale with it. A plan that does not fit is ErrInput, naming the stage,
// the estimate and what to change. The stage's report (StageReport.Tiling) says what was
// tiled and why, with the estimate untiled and as planned.
//
//   - Tiled VAE (Tiling.VAE; a working side above Config.VAETile, diffusers' rule):
//     diffusers' tiled_encode and tiled_decode on the device (runTiles): tiles cut with
//     strided copies (engine.Stream.Copy2D), run one by one, blended with the tile above
//     and to the left in diffusers' in-place raster order (engine.Ops.VAEBlend) and copied
//     into place; two rows of tile outputs live at a time. pipeline/tile's Plan lays the
//     tiles out; its Stitch is the host reference (bit for bit, TestSeamsThroughTheRefine).
//   - Tiled denoising (Tiling.Grid; a latent with more pixels than Config.Tile², PASD's
//     rule): every step builds the whole latent's UNet input as the untiled path does, cuts
//     the windows of one batch out of it (engine.Ops.TileGather; stage 2 also the control
//     image at 8x the windows; stage 1's time ids are a tile's size), runs the UNet on the
//     batch (conditioning repeated per tile: [negative ×n; prompt ×n]), adds the
//     predictions weighted (engine.Ops.TileAccumulate, in window order, so pipeline/tile's
//     Accumulator bit for bit) and divides by the summed weights (PointDivide); CFG and the
//     scheduler step then run on the whole latent (BlendStep). The last batch is padded by
//     repeating its last window (not accumulated), so every UNet call has one shape and a
//     captured CUDA graph replays. Weights: Config.TileWeights (PASD's Gaussian by default).
//     The batch is Config.TileBatch, or as memory allows (up to DefaultTileBatch; one on the
//     cpu device), at most half the rows a TensorRT plan's profile takes
//     (engine.MaxBatch). The weights go up with the stage's one upload; a step copies
//     nothing between host and device.
//   - Mask crop (crop.go; diffusers' padding_mask_crop): when Config.Crop is set, the
//     image is larger than stage 1's working size on some side (CropAlways: always), and
//     the mask's bounding box (the assessment's, engine.Ops.BoundingBox) padded by
//     CropPadding and grown to the working aspect (tile.GrowBox) covers at most half of
//     the image, stage 1 works on that box: cropped, fitted with Lanczos and its leftover
//     bands stretched with bicubic from zero-extent boxes (_resize_and_fill, Pillow 13's
//     resizes on the device: engine.Ops.ResizeImage with a filter and a box), the mask the
//     same way as an 8-bit image binarised at 128; after stage 1 the result is resized to
//     cover the box (_resize_and_crop) and taken where the mask is set (apply_overlay;
//     PastePixels does not apply: outside the mask the input's pixels stay, as diffusers
//     does). StageReport.Crop gives the box and why.
//
// The untiled path is unchanged (Tiling's zero value): a small image's bytes do not
// depend on these settings.
//
// # Devices
//
// A Refiner runs on one engine.Stream (Options.Stream; the pipeline gives each slot its
// own), and its engines read and write that stream's device's tensors. Refine takes the
// image and the repair mask on the device (Request.Tensor, MaskTensor: the pipeline's
// assessment leaves them there) or uploads them; every per-stage operation runs there
// (engine.Ops): the Pillow-exact resizes, the planar conversions, the mask resampling, the
// prompt's emphasis and the SDXL hidden-state concatenation, the VAE scaling and the
// masked image, add_noise, the UNet inputs, the fused CFG + scheduler step + blending, the
// colour fix and the paste. The seeded noise is generated on the host and uploaded once
// per stage with the stage's timesteps (and time ids); each step copies its timestep into
// the UNet's bound input on the device and runs the UNet into its bound output
// (engine.RunInto), so a step copies nothing between host and device and never waits
// (LoopStats.InSteps counts it; Result.Loops reports it, with the UNet's CUDA-graph
// replays on TensorRT). The refined image comes back in one copy. On the cpu device the
// same code runs on host tensors with the reference functions of engine/cpu, bit for bit
// as before; the step observer then receives the latents (nil on other devices).
package refine
