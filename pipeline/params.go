package pipeline

import (
	"fmt"
	"math"

	"github.com/grefine/grefine/pipeline/assess"
	"github.com/grefine/grefine/pipeline/refine"
)

// Params are the per-request settings. Start from Pipeline.DefaultParams (DESIGN's
// constants, with working sizes suited to the loaded model set) and change fields; JSON
// decoding onto the defaults changes only the fields present. Validate refuses NaN, ±Inf
// and out-of-range values with an ErrInput naming the field.
type Params struct {
	// Seed makes a refinement reproducible: the same image, prompt, params and seed give
	// the same bytes.
	Seed uint64 `json:"seed"`
	// Steps1, Steps2: denoising steps that run in stage 1 and stage 2 (1..1000).
	Steps1 int `json:"steps1"`
	Steps2 int `json:"steps2"`
	// StrengthMax, StrengthMin bound stage 1's quality-driven strength
	// s1 = max − (max − min)·q (0 < min <= max <= 1).
	StrengthMax float64 `json:"strength_max"`
	StrengthMin float64 `json:"strength_min"`
	// Strength1, if > 0, fixes stage 1's strength instead (0..1).
	Strength1 float64 `json:"strength1"`
	// Strength2 is stage 2's strength δ (0 < δ <= 1).
	Strength2 float64 `json:"strength2"`
	// Guidance1, Guidance2: classifier-free guidance scales (0..100).
	Guidance1 float64 `json:"guidance1"`
	Guidance2 float64 `json:"guidance2"`
	// Emphasis is the prompt weight of defective parts' tokens (0 < w <= 10).
	Emphasis float64 `json:"emphasis"`
	// MaskedBlend resets the latents outside the mask after every stage-1 step;
	// PastePixels takes the pixels outside the mask from the input after stage 1.
	MaskedBlend bool `json:"masked_blend"`
	PastePixels bool `json:"paste_pixels"`
	// SkipStage1, SkipStage2 turn a stage off.
	SkipStage1 bool `json:"skip_stage1"`
	SkipStage2 bool `json:"skip_stage2"`
	// LongSide is stage 1's working long side (multiple of 8, 64..4096); ProcessSize is
	// stage 2's minimum short side (0: off, else 64..4096).
	LongSide    int `json:"long_side"`
	ProcessSize int `json:"process_size"`
	// PerceptualBound, PerceptualGate, AlignBound are the defect thresholds of DESIGN
	// §1.2-1.4 (100/255, 0.5, 170/255), each in [0, 1]; Dilate is the mask dilation
	// radius in pixels (0..64).
	PerceptualBound float64 `json:"perceptual_bound"`
	PerceptualGate  float64 `json:"perceptual_gate"`
	AlignBound      float64 `json:"align_bound"`
	Dilate          int     `json:"dilate"`
}

// DefaultParams are DESIGN's constants at the production working sizes (LongSide 1024,
// ProcessSize 768). Pipeline.DefaultParams adjusts the sizes to the loaded model set.
func DefaultParams() Params {
	r, a := refine.DefaultConfig(), assess.DefaultConfig()
	return Params{
		Seed: r.Seed, Steps1: r.Steps1, Steps2: r.Steps2,
		StrengthMax: r.StrengthMax, StrengthMin: r.StrengthMin, Strength1: r.Strength1, Strength2: r.Strength2,
		Guidance1: r.Guidance1, Guidance2: r.Guidance2, Emphasis: r.Emphasis,
		MaskedBlend: r.MaskedBlend, PastePixels: r.PastePixels,
		LongSide: r.LongSide, ProcessSize: r.ProcessSize,
		PerceptualBound: float64(a.PerceptualBound), PerceptualGate: float64(a.PerceptualGate),
		AlignBound: float64(a.AlignBound), Dilate: a.DilateRadius,
	}
}

// MaxDilate bounds Params.Dilate.
const MaxDilate = 64

// Validate checks every field; the error wraps ErrInput and names the field.
func (p Params) Validate() error {
	finite := []struct {
		name   string
		v      float64
		lo, hi float64
		loOpen bool
	}{
		{"strength_max", p.StrengthMax, 0, 1, true},
		{"strength_min", p.StrengthMin, 0, 1, true},
		{"strength1", p.Strength1, 0, 1, false},
		{"strength2", p.Strength2, 0, 1, true},
		{"guidance1", p.Guidance1, 0, 100, false},
		{"guidance2", p.Guidance2, 0, 100, false},
		{"emphasis", p.Emphasis, 0, 10, true},
		{"perceptual_bound", p.PerceptualBound, 0, 1, false},
		{"perceptual_gate", p.PerceptualGate, 0, 1, false},
		{"align_bound", p.AlignBound, 0, 1, false},
	}
	for _, f := range finite {
		switch {
		case math.IsNaN(f.v) || math.IsInf(f.v, 0):
			return inputf("%s: %v is not a finite number", f.name, f.v)
		case f.v < f.lo || f.v > f.hi || (f.loOpen && f.v == f.lo):
			lo := "["
			if f.loOpen {
				lo = "("
			}
			return inputf("%s: %g is out of range %s%g, %g]", f.name, f.v, lo, f.lo, f.hi)
		}
	}
	switch {
	case p.StrengthMin > p.StrengthMax:
		return inputf("strength_min %g is above strength_max %g", p.StrengthMin, p.StrengthMax)
	case p.Steps1 < 1 || p.Steps1 > 1000:
		return inputf("steps1: %d is out of range [1, 1000]", p.Steps1)
	case p.Steps2 < 1 || p.Steps2 > 1000:
		return inputf("steps2: %d is out of range [1, 1000]", p.Steps2)
	case p.LongSide < 64 || p.LongSide > 4096 || p.LongSide%8 != 0:
		return inputf("long_side: %d must be a multiple of 8 in [64, 4096]", p.LongSide)
	case p.ProcessSize != 0 && (p.ProcessSize < 64 || p.ProcessSize > 4096):
		return inputf("process_size: %d must be 0 (off) or in [64, 4096]", p.ProcessSize)
	case p.Dilate < 0 || p.Dilate > MaxDilate:
		return inputf("dilate: %d is out of range [0, %d]", p.Dilate, MaxDilate)
	}
	return nil
}

// assessConfig is base with p's thresholds.
func (p Params) assessConfig(base assess.Config) assess.Config {
	base.PerceptualBound = float32(p.PerceptualBound)
	base.PerceptualGate = float32(p.PerceptualGate)
	base.AlignBound = float32(p.AlignBound)
	base.DilateRadius = p.Dilate
	return base
}

// refineConfig is base with p's settings.
func (p Params) refineConfig(base refine.Config) refine.Config {
	base.Seed = p.Seed
	base.Steps1, base.Steps2 = p.Steps1, p.Steps2
	base.StrengthMax, base.StrengthMin = p.StrengthMax, p.StrengthMin
	base.Strength1, base.Strength2 = p.Strength1, p.Strength2
	base.Guidance1, base.Guidance2 = p.Guidance1, p.Guidance2
	base.Emphasis = p.Emphasis
	base.MaskedBlend, base.PastePixels = p.MaskedBlend, p.PastePixels
	base.SkipStage1, base.SkipStage2 = p.SkipStage1, p.SkipStage2
	base.LongSide, base.ProcessSize = p.LongSide, p.ProcessSize
	return base
}

// String is a compact form for logs.
func (p Params) String() string {
	return fmt.Sprintf("seed=%d steps=%d/%d strength=[%g,%g] s1=%g s2=%g guidance=%g/%g", p.Seed, p.Steps1, p.Steps2,
		p.StrengthMin, p.StrengthMax, p.Strength1, p.Strength2, p.Guidance1, p.Guidance2)
}
