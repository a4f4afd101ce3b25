package refine

import (
	"fmt"

	"github.com/grefine/grefine/pipeline/tile"
)

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
	// Large images (issue 22; PlanFor chooses, the report says what ran and why).
	Tile           int          // denoising tile in latent pixels (128): a larger latent is cut into tiles
	TileOverlap    int          // latent pixels neighbouring tiles share at least (16), at most Tile/2
	TileBatch      int          // tiles per UNet call (0: as memory allows, up to DefaultTileBatch)
	TileWeights    tile.Weights // how overlapping predictions average (Gaussian, PASD's)
	VAETile        int          // VAE tile in pixels (1024): a side above it tiles the VAE (diffusers' rule)
	VAETileOverlap float64      // diffusers' tile_overlap_factor (0.25)
	Crop           bool         // stage 1 repairs the padded box around the mask when that gains resolution (true)
	CropAlways     bool         // ... whenever the mask allows a box (diffusers' padding_mask_crop); not a request parameter
	CropPadding    int          // pixels of context around the mask's box (32)
	// MemoryLimit is the working memory a request may use, in bytes (0: no limit): PlanFor
	// sizes the UNet batch of tiles within it and refuses a plan above it. The pipeline
	// sets it from its --max-memory; it is not a request parameter.
	MemoryLimit int64
	// Both.
	Seed      uint64
	MinSide   int   // smallest accepted input side (64)
	MaxPixels int64 // largest accepted input (pixels)
}

// Bounds of the large-image settings (they bound the work: the smallest tile makes the
// most tiles; a batch is one UNet call).
const (
	MaxTileBatch     = 64 // engine.MaxTiles
	DefaultTileBatch = 8  // "as memory allows" stops here: 16 UNet rows keep a GPU busy
	MaxCropPadding   = 4096
	// MaxSteps bounds each stage's denoising steps: the schedulers' training schedule has
	// 1000 timesteps, and a step needs one of its own.
	MaxSteps = 1000
	// MinLongSide is the smallest working size (long side, process size); sizes are
	// multiples of SizeMultiple, the VAE's factor (every SD/SDXL VAE has 8).
	MinLongSide  = 64
	SizeMultiple = 8
)

// DefaultConfig returns DESIGN's constants.
func DefaultConfig() Config {
	return Config{
		Steps1: 10, StrengthMax: 0.9, StrengthMin: 0.5, Guidance1: 7.5, LongSide: 1024, Emphasis: 1.1,
		Suffix1: ", high quality, hyper detail", MaskedBlend: true, PastePixels: true,
		Steps2: 10, Strength2: 0.15, Guidance2: 9.0,
		Negative2:      "blurry, dotted, noise, raster lines, unclear, lowres, over-smoothed",
		Suffix2:        ", clean, high-resolution, 8k",
		ColorFixLevels: 5, ProcessSize: 768,
		Tile: 128, TileOverlap: 16, TileWeights: tile.Gaussian, VAETile: 1024, VAETileOverlap: 0.25, Crop: true, CropPadding: 32,
		Seed: 0, MinSide: 64, MaxPixels: 16 << 20,
	}
}

// Validate checks ranges.
func (c Config) Validate() error {
	switch {
	case c.Steps1 < 1 || c.Steps1 > MaxSteps || c.Steps2 < 1 || c.Steps2 > MaxSteps:
		return fmt.Errorf("%w: steps %d/%d (want 1..%d)", ErrConfig, c.Steps1, c.Steps2, MaxSteps)
	case !(c.StrengthMin > 0 && c.StrengthMin <= c.StrengthMax && c.StrengthMax <= 1):
		return fmt.Errorf("%w: strengths min %g max %g (want 0 < min <= max <= 1)", ErrConfig, c.StrengthMin, c.StrengthMax)
	case c.Strength1 < 0 || c.Strength1 > 1 || !(c.Strength2 > 0 && c.Strength2 <= 1):
		return fmt.Errorf("%w: strength1 %g, strength2 %g (want (0,1])", ErrConfig, c.Strength1, c.Strength2)
	case c.LongSide < MinLongSide || c.LongSide%SizeMultiple != 0:
		return fmt.Errorf("%w: long side %d (want a multiple of %d, >= %d)", ErrConfig, c.LongSide, SizeMultiple, MinLongSide)
	case c.ColorFixLevels < 0 || c.ProcessSize < 0 || c.MinSide < 8:
		return fmt.Errorf("%w: colour-fix levels %d, process size %d, min side %d", ErrConfig, c.ColorFixLevels, c.ProcessSize, c.MinSide)
	case c.Emphasis <= 0:
		return fmt.Errorf("%w: emphasis %g (want > 0)", ErrConfig, c.Emphasis)
	case c.TileBatch < 0 || c.TileBatch > MaxTileBatch:
		return fmt.Errorf("%w: tile batch %d (want 0..%d)", ErrConfig, c.TileBatch, MaxTileBatch)
	case c.CropPadding < 0 || c.CropPadding > MaxCropPadding:
		return fmt.Errorf("%w: crop padding %d (want 0..%d)", ErrConfig, c.CropPadding, MaxCropPadding)
	case c.TileWeights != tile.Uniform && c.TileWeights != tile.Gaussian:
		return fmt.Errorf("%w: tile weights %v", ErrConfig, c.TileWeights)
	}
	if err := (tile.Grid{Tile: c.Tile, Overlap: c.TileOverlap}).Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	// Every SD/SDXL VAE has factor SizeMultiple; New and NewPlan check again with the set's.
	if err := c.vae(SizeMultiple).Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return nil
}

// vae is the VAE tiling of the configuration for a VAE of factor f.
func (c Config) vae(f int) tile.VAE {
	return tile.VAE{Tile: c.VAETile, Overlap: c.VAETileOverlap, Factor: f}
}

// grid is the denoising grid of the configuration.
func (c Config) grid() tile.Grid { return tile.Grid{Tile: c.Tile, Overlap: c.TileOverlap} }

// Strength1For returns s1 for overall quality q in [0,1] (eq. 9: stronger for worse
// images), or the override.
func (c Config) Strength1For(q float64) float64 {
	if c.Strength1 > 0 {
		return c.Strength1
	}
	q = min(max(q, 0), 1)
	return c.StrengthMax - (c.StrengthMax-c.StrengthMin)*q
}
