package refine

import (
	"context"
	"fmt"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/engine/cpu"
	"github.com/grefine/grefine/pipeline/tokenizer"
)

const ctxLen = tokenizer.ContextLength

// SDXLCond is stage 1's UNet conditioning, negative (zeros) row first.
type SDXLCond struct {
	Hidden     []float32 // [2, 77, Dl+Dg]
	TextEmbeds []float32 // [2, Dp]
	Truncated  int       // prompt tokens dropped at 77
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

// EncodeSDXLIDs is EncodeSDXL from token ids and weights.
func (r *Refiner) EncodeSDXLIDs(ctx context.Context, wl, wg Weighted) (SDXLCond, error) {
	ol, err := r.run(ctx, "sdxl_text_l", map[string]engine.Tensor{"input_ids": i32(wl.IDs[:])})
	if err != nil {
		return SDXLCond{}, err
	}
	og, err := r.run(ctx, "sdxl_text_g", map[string]engine.Tensor{"input_ids": i32(wg.IDs[:])})
	if err != nil {
		return SDXLCond{}, err
	}
	hl, hg, pooled := ol["hidden_states"].F32, og["hidden_states"].F32, og["text_embeds"].F32
	Dl, Dg := len(hl)/ctxLen, len(hg)/ctxLen
	if Dl*ctxLen != len(hl) || Dg*ctxLen != len(hg) || (r.sdxl.TextLDim > 0 && (Dl != r.sdxl.TextLDim || Dg != r.sdxl.TextGDim)) {
		return SDXLCond{}, fmt.Errorf("refine: sdxl text encoders returned %d and %d values (config %d, %d per token)", len(hl), len(hg), r.sdxl.TextLDim, r.sdxl.TextGDim)
	}
	if err := ApplyWeights(hl, Dl, wl.Weights); err != nil {
		return SDXLCond{}, err
	}
	if err := ApplyWeights(hg, Dg, wg.Weights); err != nil {
		return SDXLCond{}, err
	}
	D := Dl + Dg
	c := SDXLCond{Hidden: make([]float32, 2*ctxLen*D), TextEmbeds: make([]float32, 2*len(pooled)), Truncated: max(wl.Truncated, wg.Truncated)}
	pos := c.Hidden[ctxLen*D:]
	for t := 0; t < ctxLen; t++ {
		copy(pos[t*D:], hl[t*Dl:(t+1)*Dl])
		copy(pos[t*D+Dl:], hg[t*Dg:(t+1)*Dg])
	}
	copy(c.TextEmbeds[len(pooled):], pooled)
	return c, nil
}

// Stage1Args are the inputs of one stage-1 run at its working resolution.
type Stage1Args struct {
	Image    []float32 // [3, H, W] in [0, 1]
	Mask     []float32 // [H, W], 1 = repaint
	H, W     int       // multiples of the VAE factor
	Cond     SDXLCond
	Strength float64
	Noise    []float32 // [C, h, w]; nil: Gaussian(cfg.Seed, 1)
	Blend    bool      // masked latent blending
	Ops      Ops       // the denoising loop's device (nil: engine/cpu)
}

func (a Stage1Args) opsOr() Ops { return opsOr(a.Ops) }

func opsOr(o Ops) Ops {
	if o == nil {
		return cpu.Ops{}
	}
	return o
}

// xfer pairs the loop's ops with the engines' device.
func (r *Refiner) xfer(o Ops) xfer { return xfer{ops: opsOr(o), eng: r.engDev} }

// StageOut is a stage's result at its working resolution.
type StageOut struct {
	Image     []float32 // [3, H, W] in [0, 1]
	Latents   []float32 // final latents (scaled)
	Timesteps []float64 // the timesteps that ran
	N, Start  int       // num_inference_steps and the first index run
}

// Stage1 runs SDXL-Inpainting: VAE-encode, noise to the start timestep, denoise under the
// mask, decode. It does not resize nor paste pixels (Refine does).
func (r *Refiner) Stage1(ctx context.Context, a Stage1Args, onStep StepFunc) (*StageOut, error) {
	f, C := r.sdxl.VAEFactor, r.sdxl.LatentChannels
	if a.H < f || a.W < f || a.H%f != 0 || a.W%f != 0 || len(a.Image) != 3*a.H*a.W || len(a.Mask) != a.H*a.W {
		return nil, fmt.Errorf("%w: stage 1 input %dx%d (multiples of %d) with %d image and %d mask values", ErrInput, a.W, a.H, f, len(a.Image), len(a.Mask))
	}
	h, w := a.H/f, a.W/f
	sc, start, N, err := schedule(r.sched1, r.cfg.Steps1, a.Strength)
	if err != nil {
		return nil, err
	}
	z, err := r.vaeEncode(ctx, "sdxl_vae_encoder", r.sdxl.VAEScale, a.Image, a.H, a.W, false)
	if err != nil {
		return nil, err
	}
	if len(z) != C*h*w {
		return nil, fmt.Errorf("refine: sdxl_vae_encoder returned %d values, want %d", len(z), C*h*w)
	}
	masked := make([]float32, len(a.Image))
	for c := 0; c < 3; c++ {
		for p := 0; p < a.H*a.W; p++ {
			if a.Mask[p] < 0.5 {
				masked[c*a.H*a.W+p] = a.Image[c*a.H*a.W+p]*2 - 1
			}
		}
	}
	zm, err := r.vaeEncode(ctx, "sdxl_vae_encoder", r.sdxl.VAEScale, masked, a.H, a.W, true)
	if err != nil {
		return nil, err
	}
	maskLat := make([]float32, h*w)
	if err := cpu.DownsampleNearest(a.Mask, 1, a.H, a.W, maskLat, h, w); err != nil {
		return nil, err
	}
	noise := a.Noise
	if noise == nil {
		noise = Gaussian(r.cfg.Seed, 1, C*h*w)
	}
	if len(noise) != C*h*w {
		return nil, fmt.Errorf("%w: stage 1 noise has %d values, want %d", ErrInput, len(noise), C*h*w)
	}
	x := make([]float32, C*h*w)
	if err := sc.AddNoise(x, z, noise, start); err != nil {
		return nil, err
	}
	timeIDs := []float32{float32(a.H), float32(a.W), 0, 0, float32(a.H), float32(a.W)}
	timeIDs = append(timeIDs, timeIDs...)
	Dh := len(a.Cond.Hidden) / (2 * ctxLen)
	Dp := len(a.Cond.TextEmbeds) / 2
	hidden := f32(engine.Shape{2, ctxLen, int64(Dh)}, a.Cond.Hidden)
	textEmb := f32(engine.Shape{2, int64(Dp)}, a.Cond.TextEmbeds)
	ids := f32(engine.Shape{2, 6}, timeIDs)
	// The loop's tensors live on the ops' device.
	xf := r.xfer(a.Ops)
	lat := engine.Shape{1, int64(C), int64(h), int64(w)}
	var xT, zT, noiseT, maskT, zmT, in9T engine.Tensor
	defer func() { closeAll(xT, zT, noiseT, maskT, zmT, in9T) }()
	for _, u := range []struct {
		dst   *engine.Tensor
		shape engine.Shape
		data  []float32
	}{{&xT, lat, x}, {&zT, lat, z}, {&noiseT, lat, noise}, {&maskT, engine.Shape{1, 1, int64(h), int64(w)}, maskLat}, {&zmT, lat, zm}} {
		if *u.dst, err = xf.upload(u.shape, u.data); err != nil {
			return nil, err
		}
	}
	if in9T, err = a.opsOr().Zeros(engine.Shape{2, int64(2*C + 1), int64(h), int64(w)}); err != nil {
		return nil, err
	}
	l := loopSpec{stage: "stage1", sc: sc, start: start, N: N, guidance: r.cfg.Guidance1, C: C, h: h, w: w,
		x: xf, init: zT, noise: noiseT, onStep: onStep,
		unet: func(ctx context.Context, x engine.Tensor, i int) (engine.Tensor, error) {
			s, err := sc.InputScale(i)
			if err != nil {
				return nil, err
			}
			if err := xf.ops.InpaintInput(float32(s), x, maskT, zmT, in9T); err != nil {
				return nil, err
			}
			sample, done, err := xf.toEngine(in9T)
			if err != nil {
				return nil, err
			}
			defer done()
			out, err := r.run(ctx, "sdxl_unet", map[string]engine.Tensor{
				"sample":                sample,
				"timestep":              f32(engine.Shape{1}, []float32{float32(sc.Timesteps()[i])}),
				"encoder_hidden_states": hidden, "text_embeds": textEmb, "time_ids": ids,
			})
			if err != nil {
				return nil, err
			}
			return xf.fromEngine(out["noise_pred"])
		}}
	if a.Blend {
		l.mask = maskT
	}
	if err := denoise(ctx, l, xT); err != nil {
		return nil, err
	}
	if x, err = xf.host(xT); err != nil {
		return nil, err
	}
	img, H2, W2, err := r.vaeDecode(ctx, "sdxl_vae_decoder", r.sdxl.VAEScale, x, C, h, w)
	if err != nil {
		return nil, err
	}
	if H2 != a.H || W2 != a.W {
		return nil, fmt.Errorf("refine: sdxl_vae_decoder returned %dx%d, want %dx%d", W2, H2, a.W, a.H)
	}
	return &StageOut{Image: img, Latents: x, Timesteps: sc.Timesteps()[start:], N: N, Start: start}, nil
}

// EncodePASD returns the stage-2 text conditioning [2, 77, D]: negative, then prompt.
func (r *Refiner) EncodePASD(ctx context.Context, negative, prompt string) ([]float32, int, error) {
	wn, err := EncodeSegments(r.tok, []Segment{{Text: negative, Weight: 1}}, r.pasd.PadID)
	if err != nil {
		return nil, 0, err
	}
	wp, err := EncodeSegments(r.tok, []Segment{{Text: prompt, Weight: 1}}, r.pasd.PadID)
	if err != nil {
		return nil, 0, err
	}
	ids := append(append([]int32{}, wn.IDs[:]...), wp.IDs[:]...)
	out, err := r.run(ctx, "pasd_text", map[string]engine.Tensor{"input_ids": i32(ids)})
	if err != nil {
		return nil, 0, err
	}
	return out["hidden_states"].F32, wp.Truncated, nil
}

// Stage2Args are the inputs of one stage-2 run at its working resolution.
type Stage2Args struct {
	Image    []float32 // [3, H, W] in [0, 1]: control image and colour reference
	H, W     int       // multiples of the VAE factor
	Hidden   []float32 // [2, 77, D] from EncodePASD
	Strength float64
	Noise    []float32 // [C, h, w]; nil: Gaussian(cfg.Seed, 2)
	Ops      Ops       // the denoising loop's device (nil: engine/cpu)
}

// Stage2 runs PASD over the whole image and applies the wavelet colour fix.
// StageOut.Image is the colour-fixed result; decoded (before the fix) is returned too.
func (r *Refiner) Stage2(ctx context.Context, a Stage2Args, onStep StepFunc) (out *StageOut, decoded []float32, err error) {
	f, C := r.pasd.VAEFactor, r.pasd.LatentChannels
	if a.H < f || a.W < f || a.H%f != 0 || a.W%f != 0 || len(a.Image) != 3*a.H*a.W {
		return nil, nil, fmt.Errorf("%w: stage 2 input %dx%d (multiples of %d) with %d values", ErrInput, a.W, a.H, f, len(a.Image))
	}
	h, w := a.H/f, a.W/f
	sc, start, N, err := schedule(r.sched2, r.cfg.Steps2, a.Strength)
	if err != nil {
		return nil, nil, err
	}
	z, err := r.vaeEncode(ctx, "pasd_vae_encoder", r.pasd.VAEScale, a.Image, a.H, a.W, false)
	if err != nil {
		return nil, nil, err
	}
	if len(z) != C*h*w {
		return nil, nil, fmt.Errorf("refine: pasd_vae_encoder returned %d values, want %d", len(z), C*h*w)
	}
	noise := a.Noise
	if noise == nil {
		noise = Gaussian(r.cfg.Seed, 2, C*h*w)
	}
	if len(noise) != C*h*w {
		return nil, nil, fmt.Errorf("%w: stage 2 noise has %d values, want %d", ErrInput, len(noise), C*h*w)
	}
	x := make([]float32, C*h*w)
	if err := sc.AddNoise(x, z, noise, start); err != nil {
		return nil, nil, err
	}
	D := len(a.Hidden) / (2 * ctxLen)
	hidden := f32(engine.Shape{2, ctxLen, int64(D)}, a.Hidden)
	control := f32(engine.Shape{2, 3, int64(a.H), int64(a.W)}, append(append([]float32{}, a.Image...), a.Image...))
	xf := r.xfer(a.Ops)
	var xT, inT engine.Tensor
	defer func() { closeAll(xT, inT) }()
	if xT, err = xf.upload(engine.Shape{1, int64(C), int64(h), int64(w)}, x); err != nil {
		return nil, nil, err
	}
	if inT, err = xf.ops.Zeros(engine.Shape{2, int64(C), int64(h), int64(w)}); err != nil {
		return nil, nil, err
	}
	l := loopSpec{stage: "stage2", sc: sc, start: start, N: N, guidance: r.cfg.Guidance2, C: C, h: h, w: w, x: xf, onStep: onStep,
		unet: func(ctx context.Context, x engine.Tensor, i int) (engine.Tensor, error) {
			s, err := sc.InputScale(i)
			if err != nil {
				return nil, err
			}
			if err := xf.ops.ScaleCopies(s, x, inT); err != nil {
				return nil, err
			}
			sample, done, err := xf.toEngine(inT)
			if err != nil {
				return nil, err
			}
			defer done()
			out, err := r.run(ctx, "pasd_unet", map[string]engine.Tensor{
				"sample":                sample,
				"timestep":              f32(engine.Shape{1}, []float32{float32(sc.Timesteps()[i])}),
				"encoder_hidden_states": hidden, "control": control,
			})
			if err != nil {
				return nil, err
			}
			return xf.fromEngine(out["noise_pred"])
		}}
	if err := denoise(ctx, l, xT); err != nil {
		return nil, nil, err
	}
	if x, err = xf.host(xT); err != nil {
		return nil, nil, err
	}
	dec, H2, W2, err := r.vaeDecode(ctx, "pasd_vae_decoder", r.pasd.VAEScale, x, C, h, w)
	if err != nil {
		return nil, nil, err
	}
	if H2 != a.H || W2 != a.W {
		return nil, nil, fmt.Errorf("refine: pasd_vae_decoder returned %dx%d, want %dx%d", W2, H2, a.W, a.H)
	}
	img := dec
	if r.cfg.ColorFixLevels > 0 {
		if img, err = WaveletColorFix(dec, a.Image, 3, a.H, a.W, r.cfg.ColorFixLevels); err != nil {
			return nil, nil, err
		}
	}
	return &StageOut{Image: img, Latents: x, Timesteps: sc.Timesteps()[start:], N: N, Start: start}, dec, nil
}
