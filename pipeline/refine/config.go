package refine

import "fmt"

// Config holds every constant of the refiner (DESIGN §1.4); the CLI and the API override
// fields one by one.
type Config struct {
	// Stage 1.
	Steps1      int     // denoising steps that run (10)
	StrengthMax float64 // s1 at q = 0 (0.9)
	StrengthMin float64 // s1 at q = 1 (0.5)
	Strength1   float64 // if > 0, overrides the quality-driven strength
	Guidance1   float64 // 7.5
	LongSide    int     // stage-1 working resolution, long side (1024)
	Emphasis    float64 // weight of defective parts' tokens (1.1)
	Suffix1     string  // ", high quality, hyper detail"
	MaskedBlend bool    // reset latents outside the mask every step (true)
	PastePixels bool    // take pixels outside the mask from the input (true)
	SkipStage1  bool
	// Stage 2.
	Steps2         int     // 10
	Strength2      float64 // δ = 0.15
	Guidance2      float64 // 9.0
	Negative2      string  // PASD's negative prompt
	Suffix2        string  // ", clean, high-resolution, 8k"
	ColorFixLevels int     // 5
	ProcessSize    int     // minimum short side for PASD (768; 0 = off)
	SkipStage2     bool
	// Both.
	Seed      uint64
	MinSide   int   // smallest accepted input side (64)
	MaxPixels int64 // largest accepted input (pixels)
}

// DefaultConfig returns DESIGN's constants.
func DefaultConfig() Config {
	return Config{
		Steps1: 10, StrengthMax: 0.9, StrengthMin: 0.5, Guidance1: 7.5, LongSide: 1024, Emphasis: 1.1,
		Suffix1: ", high quality, hyper detail", MaskedBlend: true, PastePixels: true,
		Steps2: 10, Strength2: 0.15, Guidance2: 9.0,
		Negative2:      "blurry, dotted, noise, raster lines, unclear, lowres, over-smoothed",
		Suffix2:        ", clean, high-resolution, 8k",
		ColorFixLevels: 5, ProcessSize: 768,
		Seed: 0, MinSide: 64, MaxPixels: 16 << 20,
	}
}

// Validate checks ranges.
func (c Config) Validate() error {
	switch {
	case c.Steps1 < 1 || c.Steps1 > 1000 || c.Steps2 < 1 || c.Steps2 > 1000:
		return fmt.Errorf("%w: steps %d/%d (want 1..1000)", ErrConfig, c.Steps1, c.Steps2)
	case !(c.StrengthMin > 0 && c.StrengthMin <= c.StrengthMax && c.StrengthMax <= 1):
		return fmt.Errorf("%w: strengths min %g max %g (want 0 < min <= max <= 1)", ErrConfig, c.StrengthMin, c.StrengthMax)
	case c.Strength1 < 0 || c.Strength1 > 1 || !(c.Strength2 > 0 && c.Strength2 <= 1):
		return fmt.Errorf("%w: strength1 %g, strength2 %g (want (0,1])", ErrConfig, c.Strength1, c.Strength2)
	case c.LongSide < 64 || c.LongSide%8 != 0:
		return fmt.Errorf("%w: long side %d (want a multiple of 8, >= 64)", ErrConfig, c.LongSide)
	case c.ColorFixLevels < 0 || c.ProcessSize < 0 || c.MinSide < 8:
		return fmt.Errorf("%w: colour-fix levels %d, process size %d, min side %d", ErrConfig, c.ColorFixLevels, c.ProcessSize, c.MinSide)
	case c.Emphasis <= 0:
		return fmt.Errorf("%w: emphasis %g (want > 0)", ErrConfig, c.Emphasis)
	}
	return nil
}

// Strength1For returns s1 for overall quality q in [0,1] (eq. 9: stronger for worse
// images), or the override.
func (c Config) Strength1For(q float64) float64 {
	if c.Strength1 > 0 {
		return c.Strength1
	}
	q = min(max(q, 0), 1)
	return c.StrengthMax - (c.StrengthMax-c.StrengthMin)*q
}
