package refine

import (
	"context"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/pipeline/imageio"
)

// testImage is a smooth w×h picture with some structure.
func testImage(w, h int) *imageio.RGB8 {
	img := imageio.NewRGB8(w, h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			i := 3 * (y*w + x)
			img.Pix[i] = uint8(255 * x / max(w-1, 1))
			img.Pix[i+1] = uint8(255 * y / max(h-1, 1))
			img.Pix[i+2] = uint8((x*7 + y*3) % 256)
		}
	}
	return img
}

func fastConfig() Config {
	c := DefaultConfig()
	c.LongSide, c.ProcessSize, c.Steps1, c.Steps2 = 64, 0, 4, 4
	return c
}

func meanAbsDiff(a, b *imageio.RGB8) float64 {
	s := 0.0
	for i := range a.Pix {
		s += math.Abs(float64(a.Pix[i]) - float64(b.Pix[i]))
	}
	return s / float64(len(a.Pix))
}

func TestHighQualityPassesStage1BitIdentical(t *testing.T) {
	cfg := fastConfig()
	cfg.SkipStage2 = true
	r := tinyRefiner(t, cfg)
	img := testImage(96, 72)
	res, err := r.Refine(context.Background(), Request{Image: img, Prompt: "a cat", Mask: make([]float32, 96*72), Q: 0.95}, nil)
	require.NoError(t, err)
	assert.False(t, res.Stage1.Ran)
	assert.Contains(t, res.Stage1.Reason, "empty mask")
	assert.Equal(t, img.Pix, res.Image.Pix, "stage 1 leaves a high-quality image bit-identical")
	assert.NotSame(t, &img.Pix[0], &res.Image.Pix[0], "the result does not alias the input")
}

func TestStage2ChangesOnlyWithinStrength(t *testing.T) {
	img := testImage(96, 72)
	mask := make([]float32, 96*72)
	run := func(strength float64) (*Result, float64) {
		cfg := fastConfig()
		cfg.Strength2 = strength
		r := tinyRefiner(t, cfg)
		res, err := r.Refine(context.Background(), Request{Image: img, Prompt: "a cat", Mask: mask, Q: 0.95}, nil)
		require.NoError(t, err)
		require.Equal(t, [2]int{96, 72}, [2]int{res.Image.W, res.Image.H})
		return res, meanAbsDiff(img, res.Image)
	}
	low, dLow := run(0.15)
	_, dHigh := run(0.8)
	assert.True(t, low.Stage2.Ran)
	assert.False(t, low.Stage1.Ran)
	t.Logf("mean |Δ| per channel: %.2f at strength 0.15, %.2f at 0.8 (0..255)", dLow, dHigh)
	assert.Less(t, dLow, dHigh, "a gentler strength changes the image less")
	assert.Less(t, dLow, 48.0, "strength 0.15 keeps the image recognisable even with random weights")
	// The starting noise level is the one δ asks for: t0 is the timestep at 15% of the schedule.
	assert.LessOrEqual(t, low.Stage2.Timesteps[0], 0.15*1000+1)
}

func TestStage1NonSquareRepaintsOnlyTheMask(t *testing.T) {
	cfg := fastConfig()
	cfg.SkipStage2 = true
	r := tinyRefiner(t, cfg)
	W, H := 100, 70
	img := testImage(W, H)
	mask := make([]float32, W*H)
	for y := 20; y < 50; y++ {
		for x := 30; x < 80; x++ {
			mask[y*W+x] = 1
		}
	}
	res, err := r.Refine(context.Background(), Request{Image: img, Prompt: "a red apple on a wooden table", Mask: mask, Q: 0.2}, nil)
	require.NoError(t, err)
	require.True(t, res.Stage1.Ran)
	assert.Equal(t, [2]int{64, 48}, [2]int{res.Stage1.Width, res.Stage1.Height}, "long side 64 (test setting), aspect kept, multiples of 8")
	assert.InDelta(t, 0.9-0.4*0.2, res.Stage1.Strength, 1e-12, "s1 = smax - (smax-smin) q")
	assert.Equal(t, 4, len(res.Stage1.Timesteps), "exactly n1 steps run")
	require.Equal(t, [2]int{W, H}, [2]int{res.Image.W, res.Image.H})
	assert.Greater(t, repaintedOnly(t, img, res.Image, mask), 0, "the masked region was repainted")
}

// repaintedOnly requires every pixel outside the mask of out to be img's and returns how
// many masked pixels changed.
func repaintedOnly(t *testing.T, img, out *imageio.RGB8, mask []float32) int {
	t.Helper()
	changed := 0
	for p, m := range mask {
		same := img.Pix[3*p] == out.Pix[3*p] && img.Pix[3*p+1] == out.Pix[3*p+1] && img.Pix[3*p+2] == out.Pix[3*p+2]
		if m < 0.5 {
			require.True(t, same, "pixel %d outside the mask changed", p)
		} else if !same {
			changed++
		}
	}
	return changed
}

func TestDeterministicSeeds(t *testing.T) {
	img := testImage(64, 64)
	mask := make([]float32, 64*64)
	for i := 0; i < len(mask); i += 3 {
		mask[i] = 1
	}
	run := func(seed uint64) []uint8 {
		cfg := fastConfig()
		cfg.Seed = seed
		r := tinyRefiner(t, cfg)
		res, err := r.Refine(context.Background(), Request{Image: img, Prompt: "a dog", Mask: mask, Q: 0.5}, nil)
		require.NoError(t, err)
		return res.Image.Pix
	}
	a, b, c := run(7), run(7), run(8)
	assert.Equal(t, a, b, "same seed, same bytes")
	assert.NotEqual(t, a, c, "another seed, another result")
}

func TestRefineBadInputsAndCancel(t *testing.T) {
	cfg := fastConfig()
	cfg.MaxPixels = 200 * 200
	r := tinyRefiner(t, cfg)
	ctx := context.Background()
	small := testImage(40, 80)
	_, err := r.Refine(ctx, Request{Image: small, Mask: make([]float32, 40*80)}, nil)
	require.ErrorIs(t, err, ErrInput)
	assert.Contains(t, err.Error(), "too small")
	big := testImage(300, 200)
	_, err = r.Refine(ctx, Request{Image: big, Mask: make([]float32, 300*200)}, nil)
	require.ErrorIs(t, err, ErrInput)
	assert.Contains(t, err.Error(), "pixels")
	img := testImage(64, 64)
	_, err = r.Refine(ctx, Request{Image: img, Mask: make([]float32, 10)}, nil)
	require.ErrorIs(t, err, ErrInput)
	_, err = r.Refine(ctx, Request{Image: img, Mask: make([]float32, 64*64), Q: math.NaN()}, nil)
	require.ErrorIs(t, err, ErrInput)

	mask := make([]float32, 64*64)
	mask[100] = 1
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	steps := 0
	_, err = r.Refine(cctx, Request{Image: img, Prompt: "x", Mask: mask, Q: 0.5}, func(string, int, int, []float32) {
		steps++
		if steps == 2 {
			cancel()
		}
	})
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, 2, steps, "the loop stops at the next step after cancellation")
}

func TestConfigValidation(t *testing.T) {
	for _, mut := range []func(*Config){
		func(c *Config) { c.Steps1 = 0 },
		func(c *Config) { c.StrengthMin = 0.95 },
		func(c *Config) { c.Strength2 = 0 },
		func(c *Config) { c.LongSide = 1000 + 4 },
		func(c *Config) { c.Emphasis = 0 },
	} {
		c := DefaultConfig()
		mut(&c)
		assert.ErrorIs(t, c.Validate(), ErrConfig)
	}
	c := DefaultConfig()
	assert.InDelta(t, 0.9, c.Strength1For(0), 1e-12)
	assert.InDelta(t, 0.5, c.Strength1For(1), 1e-12)
	assert.InDelta(t, 0.5, c.Strength1For(7), 1e-12, "q is clamped")
}
