package refine

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/grefine/grefine/engine/cpu"
	"github.com/grefine/grefine/pipeline/imageio"
	"github.com/grefine/grefine/pipeline/syntax"
)

// Request is one image to refine, with what the quality indicators found.
type Request struct {
	Image  *imageio.RGB8
	Prompt string
	// Mask is the repair region at the image's size (H*W, 1 = repair): the assess
	// report's Mask. Empty (all zeros) skips stage 1.
	Mask []float32
	// Q is the overall quality (p+a)/2 in [0,1]; it sets stage 1's strength.
	Q float64
	// Parsed and Defective (indices of parts with an alignment defect) drive prompt
	// emphasis; Parsed nil means no emphasis.
	Parsed    *syntax.Result
	Defective []int
	// Ops runs the denoising loops' non-network work (nil: engine/cpu, host tensors).
	Ops Ops
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
	Millis       float64   `json:"ms"`
}

// Result is the refined image (at the input's size) and the stage decisions.
type Result struct {
	Image        *imageio.RGB8 `json:"-"`
	Stage1       StageReport   `json:"stage1"`
	Stage2       StageReport   `json:"stage2"`
	MaskFraction float64       `json:"mask_fraction"`
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

// Refine runs stage 1 (if the mask is not empty) and stage 2 on one image.
func (r *Refiner) Refine(ctx context.Context, req Request, onStep StepFunc) (*Result, error) {
	img := req.Image
	if err := r.CheckImage(img); err != nil {
		return nil, err
	}
	if len(req.Mask) != img.W*img.H {
		return nil, fmt.Errorf("%w: mask has %d values for a %dx%d image", ErrInput, len(req.Mask), img.W, img.H)
	}
	if math.IsNaN(req.Q) {
		return nil, fmt.Errorf("%w: quality q is NaN", ErrInput)
	}
	res := &Result{MaskFraction: cpu.MaskFraction(req.Mask)}

	cur := img
	switch {
	case r.cfg.SkipStage1:
		res.Stage1.Reason = "disabled"
	case res.MaskFraction == 0:
		res.Stage1.Reason = "empty mask: no region below the quality bounds (image passed through unchanged)"
	default:
		t0 := time.Now()
		out, rep, err := r.refineStage1(ctx, req, onStep)
		if err != nil {
			return nil, err
		}
		rep.Millis = ms(t0)
		cur, res.Stage1 = out, rep
	}
	if r.cfg.SkipStage2 {
		res.Stage2.Reason = "disabled"
	} else {
		t0 := time.Now()
		out, rep, err := r.refineStage2(ctx, cur, req.Prompt, req.Ops, onStep)
		if err != nil {
			return nil, err
		}
		rep.Millis = ms(t0)
		cur, res.Stage2 = out, rep
	}
	if cur == img { // nothing ran: hand back a copy, never the caller's buffer
		cp := *img
		cp.Pix = append([]uint8(nil), img.Pix...)
		cur = &cp
	}
	res.Image = cur
	return res, nil
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

func (r *Refiner) refineStage1(ctx context.Context, req Request, onStep StepFunc) (*imageio.RGB8, StageReport, error) {
	img := req.Image
	rep := StageReport{Ran: true, Strength: r.cfg.Strength1For(req.Q), Steps: r.cfg.Steps1}
	W, H := r.Stage1Size(img.W, img.H)
	rep.Width, rep.Height = W, H
	work := imageio.ResizeBicubicPIL(img, W, H)
	mask := make([]float32, W*H)
	if err := cpu.DownsampleNearest(req.Mask, 1, img.H, img.W, mask, H, W); err != nil {
		return nil, rep, err
	}
	for i, v := range mask {
		if v >= 0.5 {
			mask[i] = 1
		} else {
			mask[i] = 0
		}
	}
	segs := []Segment{{Text: req.Prompt, Weight: 1}, {Text: r.cfg.Suffix1, Weight: 1}}
	if req.Parsed != nil {
		segs = EmphasisSegments(req.Parsed, req.Defective, r.cfg.Emphasis, r.cfg.Suffix1)
	}
	cond, err := r.EncodeSDXL(ctx, segs)
	if err != nil {
		return nil, rep, err
	}
	rep.Truncated = cond.Truncated
	out, err := r.Stage1(ctx, Stage1Args{Image: planar(work), Mask: mask, H: H, W: W, Cond: cond,
		Strength: rep.Strength, Blend: r.cfg.MaskedBlend, Ops: req.Ops}, onStep)
	if err != nil {
		return nil, rep, err
	}
	rep.NumInference, rep.Timesteps = out.N, out.Timesteps
	res := fromPlanar(out.Image, W, H)
	if W != img.W || H != img.H {
		res = imageio.ResizeBicubicPIL(res, img.W, img.H)
	}
	if r.cfg.PastePixels {
		for p, m := range req.Mask {
			if m < 0.5 {
				copy(res.Pix[3*p:3*p+3], img.Pix[3*p:3*p+3])
			}
		}
	}
	return res, rep, nil
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

func (r *Refiner) refineStage2(ctx context.Context, img *imageio.RGB8, prompt string, ops Ops, onStep StepFunc) (*imageio.RGB8, StageReport, error) {
	rep := StageReport{Ran: true, Strength: r.cfg.Strength2, Steps: r.cfg.Steps2}
	W, H := r.Stage2Size(img.W, img.H)
	rep.Width, rep.Height = W, H
	work := img
	if W != img.W || H != img.H {
		work = imageio.ResizeBicubicPIL(img, W, H)
	}
	hidden, trunc, err := r.EncodePASD(ctx, r.cfg.Negative2, prompt+r.cfg.Suffix2)
	if err != nil {
		return nil, rep, err
	}
	rep.Truncated = trunc
	out, _, err := r.Stage2(ctx, Stage2Args{Image: planar(work), H: H, W: W, Hidden: hidden, Strength: rep.Strength, Ops: ops}, onStep)
	if err != nil {
		return nil, rep, err
	}
	rep.NumInference, rep.Timesteps = out.N, out.Timesteps
	res := fromPlanar(out.Image, W, H)
	if W != img.W || H != img.H {
		res = imageio.ResizeBicubicPIL(res, img.W, img.H)
	}
	return res, rep, nil
}

// planar converts RGB8 to [3,H,W] float32 in [0,1].
func planar(img *imageio.RGB8) []float32 {
	n := img.W * img.H
	out := make([]float32, 3*n)
	for p := 0; p < n; p++ {
		for c := 0; c < 3; c++ {
			out[c*n+p] = float32(img.Pix[3*p+c]) / 255
		}
	}
	return out
}

// fromPlanar converts [3,H,W] in [0,1] to RGB8, rounding to nearest.
func fromPlanar(x []float32, W, H int) *imageio.RGB8 {
	n := W * H
	out := imageio.NewRGB8(W, H)
	for p := 0; p < n; p++ {
		for c := 0; c < 3; c++ {
			v := min(max(x[c*n+p], 0), 1)
			out.Pix[3*p+c] = uint8(v*255 + 0.5)
		}
	}
	return out
}
