package refine

import (
	"context"
	"fmt"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/pipeline/sched"
	"github.com/grefine/grefine/pipeline/tile"
	"github.com/grefine/grefine/pipeline/tokenizer"
)

const ctxLen = tokenizer.ContextLength

// SDXLCond is stage 1's UNet conditioning on the refiner's device, negative (zeros) row
// first. Close frees it.
type SDXLCond struct {
	Hidden     engine.Tensor // [2, 77, Dl+Dg]
	TextEmbeds engine.Tensor // [2, Dp]
	Truncated  int           // prompt tokens dropped at 77
}

// Close frees the tensors; idempotent.
func (c *SDXLCond) Close() {
	for _, t := range []*engine.Tensor{&c.Hidden, &c.TextEmbeds} {
		if *t != nil {
			(*t).Close()
			*t = nil
		}
	}
}

// EncodeSDXL encodes weighted prompt segments with both SDXL text encoders (penultimate
// hidden states, emphasis applied, concatenated per token; pooled CLIP-G embedding) and
// adds the zero negative row (force_zeros_for_empty_prompt).
func (r *Refiner) EncodeSDXL(ctx context.Context, segs []Segment) (SDXLCond, error) {
	wl, err := EncodeSegments(r.tok, segs, r.sdxl.TextLPad)
	if err != nil {
		return SDXLCond{}, err
	}
	wg, err := EncodeSegments(r.tok, segs, r.sdxl.TextGPad)
	if err != nil {
		return SDXLCond{}, err
	}
	return r.EncodeSDXLIDs(ctx, wl, wg)
}

// EncodeSDXLIDs is EncodeSDXL from token ids and weights. The ids go up in one copy; the
// hidden states, emphasis and concatenation stay on the device.
func (r *Refiner) EncodeSDXLIDs(ctx context.Context, wl, wg Weighted) (c SDXLCond, err error) {
	sc := r.scope()
	defer sc.close()
	ids, err := sc.uploadI32(engine.Shape{2 * ctxLen}, append(append([]int32{}, wl.IDs[:]...), wg.IDs[:]...))
	if err != nil {
		return c, err
	}
	idl, err := sc.view(ids, 0, engine.Shape{1, ctxLen})
	if err != nil {
		return c, err
	}
	idg, err := sc.view(ids, ctxLen, engine.Shape{1, ctxLen})
	if err != nil {
		return c, err
	}
	ol, err := r.run(ctx, sc, "sdxl_text_l", map[string]engine.Tensor{"input_ids": idl})
	if err != nil {
		return c, err
	}
	og, err := r.run(ctx, sc, "sdxl_text_g", map[string]engine.Tensor{"input_ids": idg})
	if err != nil {
		return c, err
	}
	hl, hg, pooled := ol["hidden_states"], og["hidden_states"], og["text_embeds"]
	Dl, Dg := perToken(hl), perToken(hg)
	if Dl < 1 || Dg < 1 || pooled == nil || (r.sdxl.TextLDim > 0 && (Dl != r.sdxl.TextLDim || Dg != r.sdxl.TextGDim)) {
		return c, fmt.Errorf("refine: sdxl text encoders returned %v and %v (config %d, %d per token)", shapeOf(hl), shapeOf(hg), r.sdxl.TextLDim, r.sdxl.TextGDim)
	}
	if err := r.s.Emphasis(hl, wl.Weights[:]); err != nil {
		return c, err
	}
	if err := r.s.Emphasis(hg, wg.Weights[:]); err != nil {
		return c, err
	}
	D, Dp := int64(Dl+Dg), pooled.Shape().NumElements()
	dev := r.s.Device()
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	if c.Hidden, err = dev.Alloc(engine.Float32, engine.Shape{2, ctxLen, D}); err != nil {
		return c, err
	}
	if c.TextEmbeds, err = dev.Alloc(engine.Float32, engine.Shape{2, Dp}); err != nil {
		return c, err
	}
	for _, t := range []engine.Tensor{c.Hidden, c.TextEmbeds} {
		if err := r.s.Zero(t); err != nil {
			return c, err
		}
	}
	for _, cp := range []struct {
		dst, src engine.Tensor
		c        engine.Copy2D
	}{
		{c.Hidden, hl, engine.Copy2D{Rows: ctxLen, Cols: int64(Dl), DstOffset: ctxLen * D, DstPitch: D, SrcPitch: int64(Dl)}},
		{c.Hidden, hg, engine.Copy2D{Rows: ctxLen, Cols: int64(Dg), DstOffset: ctxLen*D + int64(Dl), DstPitch: D, SrcPitch: int64(Dg)}},
		{c.TextEmbeds, pooled, engine.Copy2D{Rows: 1, Cols: Dp, DstOffset: Dp}},
	} {
		if err := r.s.Copy2D(cp.dst, cp.src, cp.c); err != nil {
			return c, err
		}
	}
	c.Truncated = max(wl.Truncated, wg.Truncated)
	return c, nil
}

// perToken is D of hidden states [.., 77, D] (0 if they are not that).
func perToken(t engine.Tensor) int {
	if t == nil {
		return 0
	}
	n := t.Shape().NumElements()
	if n < ctxLen || n%ctxLen != 0 {
		return 0
	}
	return int(n / ctxLen)
}

func shapeOf(t engine.Tensor) engine.Shape {
	if t == nil {
		return nil
	}
	return t.Shape()
}

// Stage1Args are the inputs of one stage-1 run at its working resolution, on the
// refiner's device.
type Stage1Args struct {
	Image    engine.Tensor // [1, 3, H, W] float32 in [0, 1] (any shape of 3HW elements)
	Mask     engine.Tensor // [H, W] float32, 1 = repaint (any shape of HW elements)
	H, W     int           // multiples of the VAE factor
	Cond     SDXLCond
	Strength float64
	Noise    []float32 // [C, h, w] in host memory (uploaded once); nil: Gaussian(cfg.Seed, 1)
	Blend    bool      // masked latent blending
	Tiling   Tiling    // large images; the zero value is the untiled path
}

// StageOut is a stage's result at its working resolution, on the refiner's device (Close
// frees it).
type StageOut struct {
	Image     engine.Tensor // [1, 3, H, W] in [0, 1]
	Decoded   engine.Tensor // stage 2: the decoded image before the colour fix (may be Image)
	Timesteps []float64     // the timesteps that ran
	N, Start  int           // num_inference_steps and the first index run
	Loop      LoopStats
	// Batch and Calls are the tiles per UNet call and the UNet calls per step of a tiled
	// denoising (0 untiled).
	Batch, Calls int
}

// Close frees the images; idempotent.
func (o *StageOut) Close() {
	if o == nil {
		return
	}
	if o.Decoded != nil && o.Decoded != o.Image {
		o.Decoded.Close()
	}
	if o.Image != nil {
		o.Image.Close()
	}
	o.Image, o.Decoded = nil, nil
}

// LoopStats count a denoising loop's device traffic.
type LoopStats struct {
	// Steps is the number of denoising steps run.
	Steps int `json:"steps"`
	// InSteps sums the stream's copies and syncs inside the steps (from the UNet input
	// to the scheduler step): zero on a GPU pair, whose steps stay on the device.
	InSteps engine.Counters `json:"in_steps"`
	// Replays counts the UNet runs served by replaying a captured CUDA graph.
	Replays int `json:"graph_replays"`
}

// Add sums two loops' counts.
func (l LoopStats) Add(o LoopStats) LoopStats {
	return LoopStats{Steps: l.Steps + o.Steps, InSteps: l.InSteps.Add(o.InSteps), Replays: l.Replays + o.Replays}
}

// checkElems fails unless t is a float32 tensor of n elements on the refiner's device.
func (r *Refiner) checkElems(what string, t engine.Tensor, n int64) error {
	if t == nil {
		return fmt.Errorf("%w: %s missing", ErrInput, what)
	}
	if err := engine.CheckDevice("refine", what, t, r.s.Device().Name()); err != nil {
		return err
	}
	if t.DType() != engine.Float32 || t.Shape().NumElements() != n {
		return fmt.Errorf("%w: %s is %v%v, want %d float32 values", ErrInput, what, t.DType(), t.Shape(), n)
	}
	return nil
}

// Stage1 runs SDXL-Inpainting: VAE-encode, noise to the start timestep, denoise under the
// mask, decode. It does not resize nor paste pixels (Refine does). Everything runs on the
// refiner's stream: the noise, the timesteps and the time ids go up in one copy before
// the loop, and the steps copy nothing.
func (r *Refiner) Stage1(ctx context.Context, a Stage1Args, onStep StepFunc) (out *StageOut, err error) {
	f, C := r.sdxl.VAEFactor, r.sdxl.LatentChannels
	if a.H < f || a.W < f || a.H%f != 0 || a.W%f != 0 {
		return nil, fmt.Errorf("%w: stage 1 input %dx%d (multiples of %d)", ErrInput, a.W, a.H, f)
	}
	HW := int64(a.H) * int64(a.W)
	if err := r.checkElems("stage 1 image", a.Image, 3*HW); err != nil {
		return nil, err
	}
	if err := r.checkElems("stage 1 mask", a.Mask, HW); err != nil {
		return nil, err
	}
	if a.Cond.Hidden == nil || a.Cond.TextEmbeds == nil {
		return nil, fmt.Errorf("%w: stage 1 without conditioning", ErrInput)
	}
	h, w := a.H/f, a.W/f
	n := int64(C * h * w)
	sc, start, N, noise, err := r.prepare(1, r.sched1, r.cfg.Steps1, a.Strength, a.Noise, n)
	if err != nil {
		return nil, err
	}
	s := r.s
	scp := r.scope()
	defer scp.close()
	image, err := scp.view(a.Image, 0, engine.Shape{1, 3, int64(a.H), int64(a.W)})
	if err != nil {
		return nil, err
	}
	mask, err := scp.view(a.Mask, 0, engine.Shape{1, 1, int64(a.H), int64(a.W)})
	if err != nil {
		return nil, err
	}
	z, err := r.vaeEncode(ctx, scp, "sdxl_vae_encoder", r.sdxl.VAEScale, image, false, n, a.H, a.W, a.Tiling.VAE)
	if err != nil {
		return nil, err
	}
	masked, err := scp.alloc(engine.Float32, image.Shape())
	if err != nil {
		return nil, err
	}
	if err := s.Pointwise(engine.Pointwise{Op: engine.PointMaskedAffine, Src: image, Mask: mask, Dst: masked, A: 2, B: -1}); err != nil {
		return nil, err
	}
	zm, err := r.vaeEncode(ctx, scp, "sdxl_vae_encoder", r.sdxl.VAEScale, masked, true, n, a.H, a.W, a.Tiling.VAE)
	if err != nil {
		return nil, err
	}
	lat := engine.Shape{1, int64(C), int64(h), int64(w)}
	maskLat, err := scp.alloc(engine.Float32, engine.Shape{1, 1, int64(h), int64(w)})
	if err != nil {
		return nil, err
	}
	if err := s.Resize(engine.ResizeNearest, mask, maskLat); err != nil {
		return nil, err
	}
	td := newTiledDenoise(a.Tiling, h, w)
	if td != nil {
		td.batch = min(td.batch, r.tileBatch(td.batch, "sdxl_unet"))
	}
	// One upload: the noise, the timesteps (per-step UNet inputs), the time ids (of the
	// whole image, or of a tile presented as a whole image) and the tile weights.
	uh, uw, rows := a.H, a.W, 2
	if td != nil {
		uh, uw, rows = 8*td.wins[0].H, 8*td.wins[0].W, 2*td.batch
	}
	var ids []float32
	for k := 0; k < rows; k++ {
		ids = append(ids, float32(uh), float32(uw), 0, 0, float32(uh), float32(uw))
	}
	pl, x, err := r.startLoop(scp, sc, start, N, lat, noise, z, td, a.Tiling, block{ids, engine.Shape{int64(rows), 6}})
	if err != nil {
		return nil, err
	}
	in9, err := scp.alloc(engine.Float32, engine.Shape{2, int64(2*C + 1), int64(h), int64(w)})
	if err != nil {
		return nil, err
	}
	np, err := scp.alloc(engine.Float32, engine.Shape{2, int64(C), int64(h), int64(w)})
	if err != nil {
		return nil, err
	}
	unet := r.eng["sdxl_unet"]
	in := map[string]engine.Tensor{"sample": in9, "timestep": pl.step,
		"encoder_hidden_states": a.Cond.Hidden, "text_embeds": a.Cond.TextEmbeds, "time_ids": pl.extras[0]}
	outs := map[string]engine.Tensor{"noise_pred": np}
	predict := func(ctx context.Context) error { return r.runInto(ctx, "sdxl_unet", in, outs) }
	if td != nil {
		// Tiles: the UNet's bound tensors hold one batch of windows; the conditioning repeats
		// per tile ([negative ×n; prompt ×n], as the windows' rows).
		th, tw := int64(td.wins[0].H), int64(td.wins[0].W)
		tin, err := scp.alloc(engine.Float32, engine.Shape{int64(2 * td.batch), int64(2*C + 1), th, tw})
		if err != nil {
			return nil, err
		}
		pred, err := scp.alloc(engine.Float32, engine.Shape{int64(2 * td.batch), int64(C), th, tw})
		if err != nil {
			return nil, err
		}
		hid, err := r.repeatRows(scp, a.Cond.Hidden, td.batch)
		if err != nil {
			return nil, err
		}
		temb, err := r.repeatRows(scp, a.Cond.TextEmbeds, td.batch)
		if err != nil {
			return nil, err
		}
		if td.wsum, err = scp.alloc(engine.Float32, engine.Shape{int64(h), int64(w)}); err != nil {
			return nil, err
		}
		in = map[string]engine.Tensor{"sample": tin, "timestep": pl.step,
			"encoder_hidden_states": hid, "text_embeds": temb, "time_ids": pl.extras[0]}
		outs = map[string]engine.Tensor{"noise_pred": pred}
		predict = func(ctx context.Context) error {
			return td.step(ctx, r, "sdxl_unet", in, outs, pred, np, func(t engine.Tiles) error { return s.TileGather(in9, tin, t) })
		}
	}
	l := loopSpec{stage: "stage1", sc: sc, start: start, N: N, guidance: r.cfg.Guidance1, C: C, h: h, w: w,
		init: z, noise: pl.noise, np: np, engine: unet, onStep: onStep,
		unet: func(ctx context.Context, x engine.Tensor, i int) error {
			k, err := sc.InputScale(i)
			if err != nil {
				return err
			}
			if err := s.InpaintInput(float32(k), x, maskLat, zm, in9); err != nil {
				return err
			}
			if err := s.Copy(pl.step, pl.timesteps[i-start]); err != nil {
				return err
			}
			return predict(ctx)
		}}
	if a.Blend {
		l.mask = maskLat
	}
	stats, err := r.denoise(ctx, l, x)
	if err != nil {
		return nil, err
	}
	img, err := r.vaeDecode(ctx, scp, "sdxl_vae_decoder", r.sdxl.VAEScale, x, a.H, a.W, a.Tiling.VAE)
	if err != nil {
		return nil, err
	}
	out = &StageOut{Image: img, Timesteps: sc.Timesteps()[start:], N: N, Start: start, Loop: stats}
	if td != nil {
		out.Batch, out.Calls = td.batch, td.calls()
	}
	return out, nil
}

// EncodePASD returns the stage-2 text conditioning [2, 77, D] on the device (negative,
// then prompt; the caller closes it) and the prompt's dropped tokens.
func (r *Refiner) EncodePASD(ctx context.Context, negative, prompt string) (engine.Tensor, int, error) {
	wn, err := EncodeSegments(r.tok, []Segment{{Text: negative, Weight: 1}}, r.pasd.PadID)
	if err != nil {
		return nil, 0, err
	}
	wp, err := EncodeSegments(r.tok, []Segment{{Text: prompt, Weight: 1}}, r.pasd.PadID)
	if err != nil {
		return nil, 0, err
	}
	sc := r.scope()
	defer sc.close()
	ids, err := sc.uploadI32(engine.Shape{2, ctxLen}, append(append([]int32{}, wn.IDs[:]...), wp.IDs[:]...))
	if err != nil {
		return nil, 0, err
	}
	out, err := r.run(ctx, sc, "pasd_text", map[string]engine.Tensor{"input_ids": ids})
	if err != nil {
		return nil, 0, err
	}
	hidden := out["hidden_states"]
	if perToken(hidden) < 1 || hidden.Shape().NumElements()%(2*ctxLen) != 0 {
		return nil, 0, fmt.Errorf("refine: pasd_text returned %v, want [2,77,D]", shapeOf(hidden))
	}
	sc.release(hidden) // the caller's
	return hidden, wp.Truncated, nil
}

// Stage2Args are the inputs of one stage-2 run at its working resolution, on the
// refiner's device.
type Stage2Args struct {
	Image    engine.Tensor // [1, 3, H, W] float32 in [0, 1]: control image and colour reference
	H, W     int           // multiples of the VAE factor
	Hidden   engine.Tensor // [2, 77, D] from EncodePASD
	Strength float64
	Noise    []float32 // [C, h, w] in host memory; nil: Gaussian(cfg.Seed, 2)
	Tiling   Tiling    // large images; the zero value is the untiled path
}

// Stage2 runs PASD over the whole image and applies the wavelet colour fix (StageOut.Image;
// StageOut.Decoded is the image before the fix), all on the refiner's stream.
func (r *Refiner) Stage2(ctx context.Context, a Stage2Args, onStep StepFunc) (out *StageOut, err error) {
	f, C := r.pasd.VAEFactor, r.pasd.LatentChannels
	if a.H < f || a.W < f || a.H%f != 0 || a.W%f != 0 {
		return nil, fmt.Errorf("%w: stage 2 input %dx%d (multiples of %d)", ErrInput, a.W, a.H, f)
	}
	HW := int64(a.H) * int64(a.W)
	if err := r.checkElems("stage 2 image", a.Image, 3*HW); err != nil {
		return nil, err
	}
	if a.Hidden == nil {
		return nil, fmt.Errorf("%w: stage 2 without conditioning", ErrInput)
	}
	h, w := a.H/f, a.W/f
	n := int64(C * h * w)
	sc, start, N, noise, err := r.prepare(2, r.sched2, r.cfg.Steps2, a.Strength, a.Noise, n)
	if err != nil {
		return nil, err
	}
	s := r.s
	scp := r.scope()
	defer scp.close()
	image, err := scp.view(a.Image, 0, engine.Shape{1, 3, int64(a.H), int64(a.W)})
	if err != nil {
		return nil, err
	}
	z, err := r.vaeEncode(ctx, scp, "pasd_vae_encoder", r.pasd.VAEScale, image, false, n, a.H, a.W, a.Tiling.VAE)
	if err != nil {
		return nil, err
	}
	lat := engine.Shape{1, int64(C), int64(h), int64(w)}
	td := newTiledDenoise(a.Tiling, h, w)
	if td != nil {
		td.batch = min(td.batch, r.tileBatch(td.batch, "pasd_unet"))
	}
	pl, x, err := r.startLoop(scp, sc, start, N, lat, noise, z, td, a.Tiling)
	if err != nil {
		return nil, err
	}
	var np engine.Tensor
	var predict func(ctx context.Context, k float64) error
	if td == nil {
		control, err := scp.alloc(engine.Float32, engine.Shape{2, 3, int64(a.H), int64(a.W)})
		if err != nil {
			return nil, err
		}
		for k := int64(0); k < 2; k++ {
			v, err := scp.view(control, k*3*HW, image.Shape())
			if err != nil {
				return nil, err
			}
			if err := s.Copy(v, image); err != nil {
				return nil, err
			}
		}
		sample, err := scp.alloc(engine.Float32, engine.Shape{2, int64(C), int64(h), int64(w)})
		if err != nil {
			return nil, err
		}
		if np, err = scp.alloc(engine.Float32, sample.Shape()); err != nil {
			return nil, err
		}
		in := map[string]engine.Tensor{"sample": sample, "timestep": pl.step, "encoder_hidden_states": a.Hidden, "control": control}
		outs := map[string]engine.Tensor{"noise_pred": np}
		predict = func(ctx context.Context, k float64) error {
			if err := s.Pointwise(engine.Pointwise{Op: engine.PointScale, Src: x, Dst: sample, S: k}); err != nil {
				return err
			}
			return r.runInto(ctx, "pasd_unet", in, outs)
		}
	} else {
		// Tiles: the scaled latent once per step, then per batch the windows of it and of
		// the control image (at 8x the windows), CFG rows [uncond tiles; cond tiles].
		th, tw := int64(td.wins[0].H), int64(td.wins[0].W)
		f64 := int64(f)
		rows := int64(2 * td.batch)
		scaledX, err := scp.alloc(engine.Float32, lat)
		if err != nil {
			return nil, err
		}
		tin, err := scp.alloc(engine.Float32, engine.Shape{rows, int64(C), th, tw})
		if err != nil {
			return nil, err
		}
		ctl, err := scp.alloc(engine.Float32, engine.Shape{rows, 3, f64 * th, f64 * tw})
		if err != nil {
			return nil, err
		}
		pred, err := scp.alloc(engine.Float32, tin.Shape())
		if err != nil {
			return nil, err
		}
		hid, err := r.repeatRows(scp, a.Hidden, td.batch)
		if err != nil {
			return nil, err
		}
		if np, err = scp.alloc(engine.Float32, engine.Shape{2, int64(C), int64(h), int64(w)}); err != nil {
			return nil, err
		}
		if td.wsum, err = scp.alloc(engine.Float32, engine.Shape{int64(h), int64(w)}); err != nil {
			return nil, err
		}
		in := map[string]engine.Tensor{"sample": tin, "timestep": pl.step, "encoder_hidden_states": hid, "control": ctl}
		outs := map[string]engine.Tensor{"noise_pred": pred}
		predict = func(ctx context.Context, k float64) error {
			if err := s.Pointwise(engine.Pointwise{Op: engine.PointScale, Src: x, Dst: scaledX, S: k}); err != nil {
				return err
			}
			return td.step(ctx, r, "pasd_unet", in, outs, pred, np, func(t engine.Tiles) error {
				if err := s.TileGather(scaledX, tin, t); err != nil {
					return err
				}
				return s.TileGather(image, ctl, scaled(t, f))
			})
		}
	}
	l := loopSpec{stage: "stage2", sc: sc, start: start, N: N, guidance: r.cfg.Guidance2, C: C, h: h, w: w,
		np: np, engine: r.eng["pasd_unet"], onStep: onStep,
		unet: func(ctx context.Context, x engine.Tensor, i int) error {
			k, err := sc.InputScale(i)
			if err != nil {
				return err
			}
			if err := s.Copy(pl.step, pl.timesteps[i-start]); err != nil {
				return err
			}
			return predict(ctx, k)
		}}
	stats, err := r.denoise(ctx, l, x)
	if err != nil {
		return nil, err
	}
	dec, err := r.vaeDecode(ctx, scp, "pasd_vae_decoder", r.pasd.VAEScale, x, a.H, a.W, a.Tiling.VAE)
	if err != nil {
		return nil, err
	}
	out = &StageOut{Image: dec, Decoded: dec, Timesteps: sc.Timesteps()[start:], N: N, Start: start, Loop: stats}
	if td != nil {
		out.Batch, out.Calls = td.batch, td.calls()
	}
	if r.cfg.ColorFixLevels > 0 {
		fixed, err := r.s.Device().Alloc(engine.Float32, dec.Shape())
		if err != nil {
			out.Close()
			return nil, err
		}
		out.Image = fixed
		if err := s.ColorFix(dec, image, fixed, r.cfg.ColorFixLevels); err != nil {
			out.Close()
			return nil, err
		}
	}
	return out, nil
}

// loopInputs are a stage's values uploaded before its loop: the noise, the timesteps the
// UNet receives (one [1] view per step, copied into the bound step tensor on the device)
// and extra values (stage 1's time ids, the tile weights).
type loopInputs struct {
	noise, step engine.Tensor
	extras      []engine.Tensor
	timesteps   []engine.Tensor
}

// block is a host array to upload with a loop's inputs, and its shape on the device.
type block struct {
	data  []float32
	shape engine.Shape
}

// upload puts noise (as lat), the timesteps of steps start..N-1 (as float32) and the
// extra blocks on the device in one copy.
func (r *Refiner) upload(scp *scope, sc sched.Scheduler, start, N int, lat engine.Shape, noise []float32, extras ...block) (loopInputs, error) {
	var l loopInputs
	all := append([]float32(nil), noise...)
	for _, t := range sc.Timesteps()[start:N] {
		all = append(all, float32(t))
	}
	for _, b := range extras {
		all = append(all, b.data...)
	}
	dev, err := scp.upload(engine.Shape{int64(len(all))}, all)
	if err != nil {
		return l, err
	}
	n := int64(len(noise))
	if l.noise, err = scp.view(dev, 0, lat); err != nil {
		return l, err
	}
	for i := 0; i < N-start; i++ {
		v, err := scp.view(dev, n+int64(i), engine.Shape{1})
		if err != nil {
			return l, err
		}
		l.timesteps = append(l.timesteps, v)
	}
	off := n + int64(N-start)
	for _, b := range extras {
		v, err := scp.view(dev, off, b.shape)
		if err != nil {
			return l, err
		}
		l.extras = append(l.extras, v)
		off += int64(len(b.data))
	}
	l.step, err = scp.alloc(engine.Float32, engine.Shape{1})
	return l, err
}

// startLoop starts a denoising loop: one upload of its inputs (upload: the noise, the
// timesteps, the extra blocks and, when td tiles, the windows' blending weights, which
// become td.weights) and its start latents from z (startLatents).
func (r *Refiner) startLoop(scp *scope, sc sched.Scheduler, start, N int, lat engine.Shape, noise []float32, z engine.Tensor, td *tiledDenoise, t Tiling, extras ...block) (loopInputs, engine.Tensor, error) {
	if td != nil {
		H, W := td.wins[0].H, td.wins[0].W
		wt, err := t.Weights.Make(H, W)
		if err != nil {
			return loopInputs{}, nil, err
		}
		extras = append(extras, block{wt, engine.Shape{int64(H), int64(W)}})
	}
	pl, err := r.upload(scp, sc, start, N, lat, noise, extras...)
	if err != nil {
		return pl, nil, err
	}
	if td != nil {
		td.weights = pl.extras[len(pl.extras)-1]
	}
	x, err := r.startLatents(scp, sc, start, z, pl.noise, lat)
	return pl, x, err
}

// startLatents is add_noise(z, noise, start) on the device: float32(a·z + b·noise) with
// (a, b) = NoiseCoeffs(start) in float64.
func (r *Refiner) startLatents(scp *scope, sc sched.Scheduler, start int, z, noise engine.Tensor, lat engine.Shape) (engine.Tensor, error) {
	ca, cb, err := sc.NoiseCoeffs(start)
	if err != nil {
		return nil, err
	}
	x, err := scp.alloc(engine.Float32, lat)
	if err != nil {
		return nil, err
	}
	return x, r.s.Pointwise(engine.Pointwise{Op: engine.PointLerp, Src: z, Src2: noise, Dst: x, S: ca, T: cb})
}

// vaeEncode returns vae_scale · latent_mean of image [1,3,H,W] in [0,1] (or already in
// [-1,1] when signed), n values owned by scp. With v set and a side above its tile, the
// encode is diffusers' tiled_encode (runTiles): the [0,1] → [-1,1] affine then runs per
// tile, so no full-size copy of the image is made.
func (r *Refiner) vaeEncode(ctx context.Context, scp *scope, name string, scale float64, image engine.Tensor, signed bool, n int64, H, W int, v *tile.VAE) (engine.Tensor, error) {
	affine := func(x engine.Tensor) error {
		return r.s.Pointwise(engine.Pointwise{Op: engine.PointAffine, Src: x, Dst: x, A: 2, B: -1})
	}
	if v != nil {
		p, err := v.EncodePlan(H, W)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrInput, name, err)
		}
		if p.Tiled() {
			C := n / (int64(p.OutH) * int64(p.OutW))
			if C < 1 || C*int64(p.OutH)*int64(p.OutW) != n {
				return nil, fmt.Errorf("%w: %s: %d latent values for %dx%d", ErrInput, name, n, p.OutW, p.OutH)
			}
			z, err := scp.alloc(engine.Float32, engine.Shape{1, C, int64(p.OutH), int64(p.OutW)})
			if err != nil {
				return nil, err
			}
			err = r.runTiles(ctx, p, image, 3, int(C), z, func(ctx context.Context, sc *scope, x engine.Tensor) (engine.Tensor, error) {
				if !signed {
					if err := affine(x); err != nil {
						return nil, err
					}
				}
				out, err := r.run(ctx, sc, name, map[string]engine.Tensor{"images": x})
				if err != nil {
					return nil, err
				}
				if out["latent_mean"] == nil {
					return nil, fmt.Errorf("refine: %s returned no latent_mean", name)
				}
				return out["latent_mean"], nil
			})
			if err != nil {
				return nil, err
			}
			return z, r.s.Pointwise(engine.Pointwise{Op: engine.PointScale, Src: z, Dst: z, S: scale})
		}
	}
	x := image
	if !signed {
		var err error
		if x, err = scp.alloc(engine.Float32, image.Shape()); err != nil {
			return nil, err
		}
		if err := r.s.Pointwise(engine.Pointwise{Op: engine.PointAffine, Src: image, Dst: x, A: 2, B: -1}); err != nil {
			return nil, err
		}
	}
	out, err := r.run(ctx, scp, name, map[string]engine.Tensor{"images": x})
	if err != nil {
		return nil, err
	}
	z := out["latent_mean"]
	if z == nil {
		return nil, fmt.Errorf("refine: %s returned no latent_mean", name)
	}
	if z.Shape().NumElements() != n {
		return nil, fmt.Errorf("refine: %s returned %v, want %d values", name, z.Shape(), n)
	}
	return z, r.s.Pointwise(engine.Pointwise{Op: engine.PointScale, Src: z, Dst: z, S: scale})
}

// vaeDecode decodes scaled latents to an image [1,3,H,W] in [0,1] (clamped); the caller
// owns it. With v set and a latent side above its tile, the decode is diffusers'
// tiled_decode (runTiles).
func (r *Refiner) vaeDecode(ctx context.Context, scp *scope, name string, scale float64, z engine.Tensor, H, W int, v *tile.VAE) (engine.Tensor, error) {
	x, err := scp.alloc(engine.Float32, z.Shape())
	if err != nil {
		return nil, err
	}
	if err := r.s.Pointwise(engine.Pointwise{Op: engine.PointUnscale, Src: z, Dst: x, S: scale}); err != nil {
		return nil, err
	}
	var img engine.Tensor
	if v != nil {
		p, err := v.DecodePlan(H/v.Factor, W/v.Factor)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrInput, name, err)
		}
		if p.Tiled() {
			if img, err = scp.alloc(engine.Float32, engine.Shape{1, 3, int64(H), int64(W)}); err != nil {
				return nil, err
			}
			C := int(x.Shape().NumElements()) / (p.InH * p.InW)
			err = r.runTiles(ctx, p, x, C, 3, img, func(ctx context.Context, sc *scope, t engine.Tensor) (engine.Tensor, error) {
				out, err := r.run(ctx, sc, name, map[string]engine.Tensor{"latent": t})
				if err != nil {
					return nil, err
				}
				return out["images"], nil
			})
			if err != nil {
				return nil, err
			}
		}
	}
	if img == nil {
		out, err := r.run(ctx, scp, name, map[string]engine.Tensor{"latent": x})
		if err != nil {
			return nil, err
		}
		img = out["images"]
	}
	if s := shapeOf(img); len(s) != 4 || s[0] != 1 || s[1] != 3 || s[2] != int64(H) || s[3] != int64(W) {
		return nil, fmt.Errorf("refine: %s returned shape %v, want [1,3,%d,%d]", name, s, H, W)
	}
	if err := r.s.Pointwise(engine.Pointwise{Op: engine.PointAffine, Src: img, Dst: img, A: 0.5, B: 0.5, Clamp01: true}); err != nil {
		return nil, err
	}
	scp.release(img) // the caller's
	return img, nil
}

// StepFunc observes the latents after each denoising step (tests, progress). latents is
// nil when the loop runs on a device other than the cpu (a device loop never copies
// them back per step).
type StepFunc func(stage string, step, total int, latents []float32)

// loopSpec is one denoising loop: scheduler, conditioning and the UNet call. The
// latents, init, noise, mask and the UNet's bound tensors live on the refiner's device.
type loopSpec struct {
	stage    string
	sc       sched.Scheduler
	start, N int
	guidance float64
	C, h, w  int
	init     engine.Tensor // clean latents (blending target)
	noise    engine.Tensor
	mask     engine.Tensor // latent mask [1,1,h,w] for blending; nil = none
	np       engine.Tensor // the noise prediction [2,C,h,w] the UNet writes
	engine   engine.Engine // the UNet (for its graph replays)
	// unet writes the noise prediction for latents x at step i into np.
	unet   func(ctx context.Context, x engine.Tensor, i int) error
	onStep StepFunc
}

// denoise runs steps start..N-1 from x (updated in place) with the fused CFG + step +
// blending op, counting what each step moved between host and device.
func (r *Refiner) denoise(ctx context.Context, l loopSpec, x engine.Tensor) (LoopStats, error) {
	var st LoopStats
	s := r.s
	shape := engine.Shape{1, int64(l.C), int64(l.h), int64(l.w)}
	// Three buffers rotate: x0 of this step, and the two previous x0 (history).
	var bufs [3]engine.Tensor
	defer func() {
		for _, b := range bufs {
			if b != nil {
				b.Close()
			}
		}
	}()
	for k := range bufs {
		b, err := s.Device().Alloc(engine.Float32, shape)
		if err != nil {
			return st, err
		}
		bufs[k] = b
		if err := s.Zero(b); err != nil {
			return st, err
		}
	}
	replays := engine.Replays(l.engine)
	var hist [2]engine.Tensor
	for i := l.start; i < l.N; i++ {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		before := s.Counters()
		if err := l.unet(ctx, x, i); err != nil {
			return st, err
		}
		co, err := sched.Blend(l.sc, i, l.guidance)
		if err != nil {
			return st, err
		}
		in := engine.BlendTensors{NoisePred: l.np, X: x, Hist: hist}
		if l.mask != nil {
			in.Init, in.Noise, in.Mask = l.init, l.noise, l.mask
		}
		x0 := bufs[(i-l.start)%3]
		if err := s.BlendStep(co, in, x, x0); err != nil {
			return st, err
		}
		st.Steps++
		st.InSteps = st.InSteps.Add(s.Counters().Sub(before))
		// history for multistep solvers: hist[0] = this step's x0, hist[1] the one before
		hist[1], hist[0] = hist[0], x0
		if l.onStep != nil {
			var lat []float32
			if h, ok := x.(*engine.HostTensor); ok {
				lat = h.F32 // host latents only: a device loop does not copy them back per step
			}
			l.onStep(l.stage, i-l.start+1, l.N-l.start, lat)
		}
	}
	st.Replays = engine.Replays(l.engine) - replays
	return st, nil
}

// prepare is a stage's schedule (schedule) and its noise of n values: the given one, else
// Gaussian(seed, stage) in host memory.
func (r *Refiner) prepare(stage uint64, proto sched.Scheduler, steps int, strength float64, noise []float32, n int64) (sched.Scheduler, int, int, []float32, error) {
	sc, start, N, err := schedule(proto, steps, strength)
	if err != nil {
		return nil, 0, 0, nil, err
	}
	if noise == nil {
		noise = Gaussian(r.cfg.Seed, stage, int(n))
	}
	if int64(len(noise)) != n {
		return nil, 0, 0, nil, fmt.Errorf("%w: stage %d noise has %d values, want %d", ErrInput, stage, len(noise), n)
	}
	return sc, start, N, noise, nil
}

// schedule prepares a cloned scheduler so exactly steps steps run at strength s.
func schedule(proto sched.Scheduler, steps int, s float64) (sched.Scheduler, int, int, error) {
	N, err := sched.TimestepsForStrength(steps, s)
	if err != nil {
		return nil, 0, 0, err
	}
	start, err := sched.StartStep(N, s)
	if err != nil {
		return nil, 0, 0, err
	}
	sc := proto.Clone()
	if err := sc.SetTimesteps(N); err != nil {
		return nil, 0, 0, err
	}
	if err := sc.SetBeginIndex(start * sc.Order()); err != nil {
		return nil, 0, 0, err
	}
	return sc, start * sc.Order(), N, nil
}
