package refine

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/pipeline/imageio"
	"github.com/grefine/grefine/pipeline/syntax"
)

// Request is one image to refine, with what the quality indicators found.
type Request struct {
	Image *imageio.RGB8
	// Tensor, if set, is the same image on the refiner's device, uint8 [H,W,3] (the
	// pipeline uploads a request's image once); nil: Refine uploads it.
	Tensor engine.Tensor
	Prompt string
	// Mask is the repair region at the image's size (H*W, 1 = repair): the assess
	// report's Mask, in host memory (uploaded here). Empty (all zeros) skips stage 1.
	Mask []float32
	// MaskTensor, if set, is the mask on the refiner's device (float32, H*W values)
	// instead of Mask, with its MaskFraction (the fraction of values >= 0.5; negative:
	// counted here).
	MaskTensor   engine.Tensor
	MaskFraction float64
	// MaskBox, if set, is the bounding box [x1, y1, x2, y2) of the mask's values >= 0.5
	// (the assessment's; nil: computed here when stage 1 may crop).
	MaskBox *[4]int
	// Q is the overall quality (p+a)/2 in [0,1]; it sets stage 1's strength.
	Q float64
	// Parsed and Defective (indices of parts with an alignment defect) drive prompt
	// emphasis; Parsed nil means no emphasis.
	Parsed    *syntax.Result
	Defective []int
}

// StageReport says what a stage did.
type StageReport struct {
	Ran          bool      `json:"ran"`
	Reason       string    `json:"reason,omitempty"` // why it was skipped
	Strength     float64   `json:"strength,omitempty"`
	Steps        int       `json:"steps,omitempty"`
	NumInference int       `json:"num_inference_steps,omitempty"`
	Timesteps    []float64 `json:"timesteps,omitempty"`
	Width        int       `json:"width,omitempty"` // working resolution
	Height       int       `json:"height,omitempty"`
	Truncated    int       `json:"truncated_tokens,omitempty"`
	// Tiling says how a large image's stage ran in tiles, why, and its memory estimate
	// (absent: untiled); Crop where stage 1 worked on the box around the mask.
	Tiling *StagePlan  `json:"tiling,omitempty"`
	Crop   *CropReport `json:"crop,omitempty"`
	Millis float64     `json:"ms"`
}

// Result is the refined image (at the input's size) and the stage decisions.
type Result struct {
	Image        *imageio.RGB8 `json:"-"`
	Stage1       StageReport   `json:"stage1"`
	Stage2       StageReport   `json:"stage2"`
	MaskFraction float64       `json:"mask_fraction"`
	// Loops counts both denoising loops' steps, the copies and syncs inside them, and
	// the UNet's CUDA-graph replays.
	Loops LoopStats `json:"loops"`
}

// CheckImage validates an input against the refiner's size limits.
func (r *Refiner) CheckImage(img *imageio.RGB8) error {
	if img == nil || img.W < 1 || img.H < 1 || len(img.Pix) != 3*img.W*img.H {
		return fmt.Errorf("%w: empty or malformed image", ErrInput)
	}
	if img.W < r.cfg.MinSide || img.H < r.cfg.MinSide {
		return fmt.Errorf("%w: %dx%d is too small to refine (at least %d px on each side)", ErrInput, img.W, img.H, r.cfg.MinSide)
	}
	if r.cfg.MaxPixels > 0 && int64(img.W)*int64(img.H) > r.cfg.MaxPixels {
		return fmt.Errorf("%w: %dx%d has more than %d pixels", ErrInput, img.W, img.H, r.cfg.MaxPixels)
	}
	return nil
}

// Refine runs stage 1 (if the mask is not empty) and stage 2 on one image, on the
// refiner's stream: the image goes up once (unless the request brings it), the work
// stays on the device, and the refined image comes back in one copy.
func (r *Refiner) Refine(ctx context.Context, req Request, onStep StepFunc) (*Result, error) {
	img := req.Image
	if err := r.CheckImage(img); err != nil {
		return nil, err
	}
	HW := int64(img.W) * int64(img.H)
	if req.MaskTensor == nil && int64(len(req.Mask)) != HW {
		return nil, fmt.Errorf("%w: mask has %d values for a %dx%d image", ErrInput, len(req.Mask), img.W, img.H)
	}
	if req.MaskTensor != nil {
		if err := r.checkElems("mask", req.MaskTensor, HW); err != nil {
			return nil, err
		}
	}
	if math.IsNaN(req.Q) {
		return nil, fmt.Errorf("%w: quality q is NaN", ErrInput)
	}
	scp := r.scope()
	defer scp.close()
	H, W := int64(img.H), int64(img.W)
	imgT := req.Tensor
	var err error
	if req.MaskBox != nil {
		if b := *req.MaskBox; b[0] < 0 || b[1] < 0 || b[2] > img.W || b[3] > img.H || b[2] < b[0] || b[3] < b[1] {
			return nil, fmt.Errorf("%w: mask box %v of a %dx%d image", ErrInput, b, img.W, img.H)
		}
	}
	if imgT == nil {
		if imgT, err = scp.uploadU8(engine.Shape{H, W, 3}, img.Pix); err != nil {
			return nil, err
		}
	} else if err := engine.CheckDevice("refine", "image", imgT, r.s.Device().Name()); err != nil {
		return nil, err
	} else if imgT.DType() != engine.Uint8 || !imgT.Shape().Equal(engine.Shape{H, W, 3}) {
		return nil, fmt.Errorf("%w: image tensor %v%v, want uint8 [%d,%d,3]", ErrInput, imgT.DType(), imgT.Shape(), H, W)
	}
	maskT, frac := req.MaskTensor, req.MaskFraction
	if maskT == nil {
		if maskT, err = scp.upload(engine.Shape{H, W}, req.Mask); err != nil {
			return nil, err
		}
		frac = -1
	}
	if maskT, err = scp.view(maskT, 0, engine.Shape{1, H, W}); err != nil {
		return nil, err
	}
	if frac < 0 {
		if frac, err = r.maskFraction(scp, maskT); err != nil {
			return nil, err
		}
	}
	res := &Result{MaskFraction: frac}
	plan, err := r.PlanFor(img.W, img.H, r.tiny)
	if err != nil {
		return nil, err
	}

	cur := imgT
	switch {
	case r.cfg.SkipStage1:
		res.Stage1.Reason = "disabled"
	case res.MaskFraction == 0:
		res.Stage1.Reason = "empty mask: no region below the quality bounds (image passed through unchanged)"
	default:
		t0 := time.Now()
		out, rep, loop, err := r.refineStage1(ctx, scp, req, imgT, maskT, plan.Stage1, onStep)
		if err != nil {
			return nil, err
		}
		rep.Millis = ms(t0)
		cur, res.Stage1 = out, rep
		res.Loops = res.Loops.Add(loop)
	}
	if r.cfg.SkipStage2 {
		res.Stage2.Reason = "disabled"
	} else {
		t0 := time.Now()
		out, rep, loop, err := r.refineStage2(ctx, scp, cur, img.W, img.H, req.Prompt, plan.Stage2, onStep)
		if err != nil {
			return nil, err
		}
		rep.Millis = ms(t0)
		cur, res.Stage2 = out, rep
		res.Loops = res.Loops.Add(loop)
	}
	if cur == imgT { // nothing ran: hand back a copy, never the caller's buffer
		cp := *img
		cp.Pix = append([]uint8(nil), img.Pix...)
		res.Image = &cp
		return res, nil
	}
	out := imageio.NewRGB8(img.W, img.H)
	h, err := engine.FromUint8(engine.Shape{H, W, 3}, out.Pix)
	if err != nil {
		return nil, err
	}
	if err := r.s.Download(h, cur); err != nil {
		return nil, err
	}
	res.Image = out
	return res, nil
}

// maskFraction is the fraction of mask values >= 0.5, counted on the device.
func (r *Refiner) maskFraction(scp *scope, mask engine.Tensor) (float64, error) {
	cnt, err := scp.alloc(engine.Int64, engine.Shape{1})
	if err != nil {
		return 0, err
	}
	if err := r.s.CountAtLeast(mask, 0.5, cnt); err != nil {
		return 0, err
	}
	n, err := engine.NewHostTensor(engine.Int64, engine.Shape{1})
	if err != nil {
		return 0, err
	}
	if err := r.s.Download(n, cnt); err != nil {
		return 0, err
	}
	return float64(n.I64[0]) / float64(mask.Shape().NumElements()), nil
}

func ms(t0 time.Time) float64 { return float64(time.Since(t0).Microseconds()) / 1000 }

// Stage1Size is stage 1's working size: long side LongSide, both sides multiples of 8,
// aspect kept (rounded to the nearest multiple).
func (r *Refiner) Stage1Size(w, h int) (int, int) {
	f := r.sdxl.VAEFactor
	s := float64(r.cfg.LongSide) / float64(max(w, h))
	rw := max(int(math.Round(float64(w)*s/float64(f)))*f, f)
	rh := max(int(math.Round(float64(h)*s/float64(f)))*f, f)
	return rw, rh
}

// tiling turns a stage's plan into its Tiling and its report entry (nil: untiled).
func (r *Refiner) tiling(sp StagePlan, f int) (Tiling, *StagePlan) {
	var t Tiling
	if sp.VAE == nil && sp.Denoise == nil {
		return t, nil
	}
	if sp.VAE != nil {
		v := r.cfg.vae(f)
		t.VAE = &v
	}
	if sp.Denoise != nil {
		g := r.cfg.grid()
		t.Grid, t.Weights, t.Batch = &g, r.cfg.TileWeights, sp.Denoise.Batch
	}
	rep := sp
	if sp.Denoise != nil {
		d := *sp.Denoise
		rep.Denoise = &d
	}
	return t, &rep
}

// reportBatch puts what a tiled stage ran (tiles per UNet call, calls per step) into its
// report entry.
func reportBatch(rep *StagePlan, out *StageOut) {
	if rep != nil && rep.Denoise != nil && out.Calls > 0 {
		rep.Denoise.Batch, rep.Denoise.CallsPerStep = out.Batch, out.Calls
	}
}

// maskBox is the bounding box of the mask's values >= 0.5: the request's, else the host
// mask's, else found on the device (one small download).
func (r *Refiner) maskBox(scp *scope, req Request, mask engine.Tensor) ([4]int, error) {
	if req.MaskBox != nil {
		return *req.MaskBox, nil
	}
	if req.MaskTensor == nil { // the host's mask: scan it there
		x1, y1, x2, y2 := req.Image.W, req.Image.H, -1, -1
		for p, v := range req.Mask {
			if v >= 0.5 {
				x, y := p%req.Image.W, p/req.Image.W
				x1, y1, x2, y2 = min(x1, x), min(y1, y), max(x2, x), max(y2, y)
			}
		}
		if x2 < 0 {
			return [4]int{}, nil
		}
		return [4]int{x1, y1, x2 + 1, y2 + 1}, nil
	}
	d, err := scp.alloc(engine.Int64, engine.Shape{4})
	if err != nil {
		return [4]int{}, err
	}
	if err := r.s.BoundingBox(mask, 0.5, d); err != nil {
		return [4]int{}, err
	}
	h, err := engine.NewHostTensor(engine.Int64, engine.Shape{4})
	if err != nil {
		return [4]int{}, err
	}
	if err := r.s.Download(h, d); err != nil {
		return [4]int{}, err
	}
	return [4]int{int(h.I64[0]), int(h.I64[1]), int(h.I64[2]), int(h.I64[3])}, nil
}

// refineStage1 repaints the mask: the image is resized to the working size, stage 1
// runs, and the result is resized back with the pixels outside the mask pasted from the
// input. With a crop (cropChoice), stage 1 works on the padded box around the mask fitted
// to the working size, and the result is overlaid into the box (diffusers'
// padding_mask_crop). The returned image (uint8 [H,W,3] at the input's size) belongs to
// scp.
func (r *Refiner) refineStage1(ctx context.Context, scp *scope, req Request, imgT, maskT engine.Tensor, sp StagePlan, onStep StepFunc) (engine.Tensor, StageReport, LoopStats, error) {
	img, s := req.Image, r.s
	rep := StageReport{Ran: true, Strength: r.cfg.Strength1For(req.Q), Steps: r.cfg.Steps1}
	W, H := r.Stage1Size(img.W, img.H)
	rep.Width, rep.Height = W, H
	fail := func(err error) (engine.Tensor, StageReport, LoopStats, error) { return nil, rep, LoopStats{}, err }
	if r.cfg.Crop && (r.cfg.CropAlways || img.W > W || img.H > H) {
		b, err := r.maskBox(scp, req, maskT)
		if err != nil {
			return fail(err)
		}
		rep.Crop = r.cropChoice(b, img.W, img.H, W, H)
	}
	var planar, mask, boxMask engine.Tensor
	var err error
	if rep.Crop != nil {
		planar, mask, boxMask, err = r.cropWorking(scp, imgT, maskT, rep.Crop.Box, W, H)
	} else {
		if planar, err = r.toPlanar(scp, imgT, img.W, img.H, W, H); err == nil {
			mask, err = r.workingMask(scp, maskT, W, H)
		}
	}
	if err != nil {
		return fail(err)
	}
	segs := []Segment{{Text: req.Prompt, Weight: 1}, {Text: r.cfg.Suffix1, Weight: 1}}
	if req.Parsed != nil {
		segs = EmphasisSegments(req.Parsed, req.Defective, r.cfg.Emphasis, r.cfg.Suffix1)
	}
	cond, err := r.EncodeSDXL(ctx, segs)
	if err != nil {
		return fail(err)
	}
	defer cond.Close()
	rep.Truncated = cond.Truncated
	tl, tr := r.tiling(sp, r.sdxl.VAEFactor)
	out, err := r.Stage1(ctx, Stage1Args{Image: planar, Mask: mask, H: H, W: W, Cond: cond,
		Strength: rep.Strength, Blend: r.cfg.MaskedBlend, Tiling: tl}, onStep)
	if err != nil {
		return fail(err)
	}
	defer out.Close()
	reportBatch(tr, out)
	rep.Tiling = tr
	rep.NumInference, rep.Timesteps = out.N, out.Timesteps
	if rep.Crop != nil {
		work, err := r.fromPlanar(scp, out.Image, W, H, W, H)
		if err != nil {
			return fail(err)
		}
		res, err := r.overlay(scp, imgT, work, boxMask, rep.Crop.Box)
		if err != nil {
			return fail(err)
		}
		return res, rep, out.Loop, nil
	}
	res, err := r.fromPlanar(scp, out.Image, W, H, img.W, img.H)
	if err != nil {
		return fail(err)
	}
	if r.cfg.PastePixels {
		if err := s.Paste(res, imgT, maskT); err != nil {
			return fail(err)
		}
	}
	return res, rep, out.Loop, nil
}

// workingMask is the mask at stage 1's working size W×H: nearest resampling, then 0/1 at
// 0.5; [1, H, W], owned by scp.
func (r *Refiner) workingMask(scp *scope, maskT engine.Tensor, W, H int) (engine.Tensor, error) {
	mask, err := scp.alloc(engine.Float32, engine.Shape{1, int64(H), int64(W)})
	if err != nil {
		return nil, err
	}
	if err := r.s.Resize(engine.ResizeNearest, maskT, mask); err != nil {
		return nil, err
	}
	return mask, r.s.Pointwise(engine.Pointwise{Op: engine.PointAtLeast, Src: mask, Dst: mask, A: 0.5})
}

// toPlanar resizes img (uint8 [h,w,3]) to the working size W×H when it differs (Pillow's
// bicubic) and converts it to planar [1,3,H,W] in [0,1], owned by scp.
func (r *Refiner) toPlanar(scp *scope, img engine.Tensor, w, h, W, H int) (engine.Tensor, error) {
	work := img
	if W != w || H != h {
		var err error
		if work, err = scp.alloc(engine.Uint8, engine.Shape{int64(H), int64(W), 3}); err != nil {
			return nil, err
		}
		if err := r.s.ResizeImage(img, work, engine.Resample{}); err != nil {
			return nil, err
		}
	}
	planar, err := scp.alloc(engine.Float32, engine.Shape{1, 3, int64(H), int64(W)})
	if err != nil {
		return nil, err
	}
	return planar, r.s.ToPlanar(work, planar, [3]float32{}, [3]float32{1, 1, 1})
}

// fromPlanar converts a working-size image [1,3,H,W] in [0,1] to uint8 [h,w,3] at the
// input's size (resized back when the sizes differ), owned by scp.
func (r *Refiner) fromPlanar(scp *scope, x engine.Tensor, W, H, w, h int) (engine.Tensor, error) {
	res, err := scp.alloc(engine.Uint8, engine.Shape{int64(H), int64(W), 3})
	if err != nil {
		return nil, err
	}
	if err := r.s.FromPlanar(x, res); err != nil {
		return nil, err
	}
	if W == w && H == h {
		return res, nil
	}
	back, err := scp.alloc(engine.Uint8, engine.Shape{int64(h), int64(w), 3})
	if err != nil {
		return nil, err
	}
	return back, r.s.ResizeImage(res, back, engine.Resample{})
}

// Stage2Size is stage 2's working size: the short side raised to ProcessSize if below
// it, then both sides floored to multiples of 8 (PASD's geometry).
func (r *Refiner) Stage2Size(w, h int) (int, int) {
	f := r.pasd.VAEFactor
	fw, fh := float64(w), float64(h)
	if ps := float64(r.cfg.ProcessSize); ps > 0 && math.Min(fw, fh) < ps {
		s := ps / math.Min(fw, fh)
		fw, fh = math.Round(fw*s), math.Round(fh*s)
	}
	return max(int(fw)/f*f, f), max(int(fh)/f*f, f)
}

// refineStage2 polishes cur (uint8 [h,w,3] on the device) with PASD, in tiles where the
// plan says so; the result belongs to scp.
func (r *Refiner) refineStage2(ctx context.Context, scp *scope, cur engine.Tensor, w, h int, prompt string, sp StagePlan, onStep StepFunc) (engine.Tensor, StageReport, LoopStats, error) {
	rep := StageReport{Ran: true, Strength: r.cfg.Strength2, Steps: r.cfg.Steps2}
	W, H := r.Stage2Size(w, h)
	rep.Width, rep.Height = W, H
	fail := func(err error) (engine.Tensor, StageReport, LoopStats, error) { return nil, rep, LoopStats{}, err }
	planar, err := r.toPlanar(scp, cur, w, h, W, H)
	if err != nil {
		return fail(err)
	}
	hidden, trunc, err := r.EncodePASD(ctx, r.cfg.Negative2, prompt+r.cfg.Suffix2)
	if err != nil {
		return fail(err)
	}
	defer hidden.Close()
	rep.Truncated = trunc
	tl, tr := r.tiling(sp, r.pasd.VAEFactor)
	out, err := r.Stage2(ctx, Stage2Args{Image: planar, H: H, W: W, Hidden: hidden, Strength: rep.Strength, Tiling: tl}, onStep)
	if err != nil {
		return fail(err)
	}
	defer out.Close()
	reportBatch(tr, out)
	rep.Tiling = tr
	rep.NumInference, rep.Timesteps = out.N, out.Timesteps
	res, err := r.fromPlanar(scp, out.Image, W, H, w, h)
	if err != nil {
		return fail(err)
	}
	return res, rep, out.Loop, nil
}
