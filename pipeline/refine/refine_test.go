package refine

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/internal/npy"
	"github.com/grefine/grefine/internal/testenv"
)

var root = filepath.Join("..", "..")

func tinyRefiner(t testing.TB, cfg Config) *Refiner {
	t.Helper()
	r, err := New(testenv.TinySet(t), testenv.ORT(t), Options{Config: cfg})
	require.NoError(t, err)
	t.Cleanup(func() { r.Close() })
	return r
}

func golden(t testing.TB, name string) *npy.Array { return testenv.Golden(t, name) }

type params struct {
	Prompt         string
	Negative       string
	Steps          int
	Strength       float64
	NumInference   int     `json:"num_inference_steps"`
	Guidance       float64 `json:"guidance_scale"`
	Height, Width  int
	ColorfixLevels int  `json:"colorfix_levels"`
	MaskedBlending bool `json:"masked_latent_blending"`
}

func loadParams(t testing.TB, name string) params {
	var p params
	b, err := os.ReadFile(filepath.Join(root, "testdata", "goldens", name))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &p))
	return p
}

// TestStage1ParityWithDiffusers: the Go stage 1 against diffusers'
// StableDiffusionXLInpaintPipeline on the tiny model set, same noise, Euler, 10 steps at
// strength 0.625 (16 scheduled), CFG 7.5, masked latent blending off (diffusers' 9-channel
// pipeline does none), VAE latent mean instead of a sample.
func TestStage1ParityWithDiffusers(t *testing.T) {
	p := loadParams(t, "sdxl_params.json")
	cfg := DefaultConfig()
	cfg.Steps1, cfg.Guidance1 = p.Steps, p.Guidance
	r := tinyRefiner(t, cfg)
	ctx := context.Background()

	// Tokenisation of the golden prompt equals the reference ids, for both pad ids.
	wl, err := EncodeSegments(r.Tokenizer(), []Segment{{Text: p.Prompt, Weight: 1}}, r.sdxl.TextLPad)
	require.NoError(t, err)
	wg, err := EncodeSegments(r.Tokenizer(), []Segment{{Text: p.Prompt, Weight: 1}}, r.sdxl.TextGPad)
	require.NoError(t, err)
	assert.Equal(t, golden(t, "sdxl_ids_l.npy").I32, wl.IDs[:])
	assert.Equal(t, golden(t, "sdxl_ids_g.npy").I32, wg.IDs[:])

	cond, err := r.EncodeSDXLIDs(ctx, wl, wg)
	require.NoError(t, err)
	eH := testenv.MaxAbs(t, golden(t, "sdxl_prompt_embeds.npy").F32, cond.Hidden)
	eP := testenv.MaxAbs(t, golden(t, "sdxl_text_embeds.npy").F32, cond.TextEmbeds)
	assert.LessOrEqual(t, eH, 1e-5)
	assert.LessOrEqual(t, eP, 1e-5)

	img, mask := golden(t, "sdxl_image.npy"), golden(t, "sdxl_mask.npy")
	var steps [][]float32
	out, err := r.Stage1(ctx, Stage1Args{Image: img.F32, Mask: mask.F32, H: p.Height, W: p.Width, Cond: cond,
		Strength: p.Strength, Noise: golden(t, "sdxl_noise.npy").F32, Blend: false},
		func(_ string, _, _ int, x []float32) { steps = append(steps, append([]float32(nil), x...)) })
	require.NoError(t, err)
	assert.Equal(t, p.NumInference, out.N)
	ts := golden(t, "sdxl_timesteps.npy").F32
	require.Len(t, out.Timesteps, len(ts))
	for i := range ts {
		assert.Equal(t, float64(ts[i]), out.Timesteps[i])
	}
	want := golden(t, "sdxl_latents_steps.npy").F32
	require.Len(t, steps, len(ts))
	n := len(steps[0])
	worst := 0.0
	for i, s := range steps {
		worst = math.Max(worst, testenv.MaxAbs(t, want[i*n:(i+1)*n], s))
	}
	eImg := testenv.MaxAbs(t, golden(t, "sdxl_decoded.npy").F32, out.Image)
	t.Logf("stage 1 vs diffusers: prompt embeds %.3g, pooled %.3g, latents (all %d steps) %.3g, decoded image %.3g",
		eH, eP, len(steps), worst, eImg)
	assert.LessOrEqual(t, worst, 1e-4, "latents")
	assert.LessOrEqual(t, eImg, 1e-3, "decoded image")
}

// TestStage2ParityWithReference: the Go stage 2 against a PyTorch loop over the PASD
// stand-in with diffusers' UniPC (10 steps at strength 0.15 of 67), CFG 9, and PASD's
// wavelet colour fix.
func TestStage2ParityWithReference(t *testing.T) {
	p := loadParams(t, "pasd_params.json")
	cfg := DefaultConfig()
	cfg.Steps2, cfg.Guidance2, cfg.ColorFixLevels = p.Steps, p.Guidance, p.ColorfixLevels
	r := tinyRefiner(t, cfg)
	ctx := context.Background()
	hidden, _, err := r.EncodePASD(ctx, p.Negative, p.Prompt)
	require.NoError(t, err)
	eH := testenv.MaxAbs(t, golden(t, "pasd_text_hidden.npy").F32, hidden)
	assert.LessOrEqual(t, eH, 1e-5)
	var steps [][]float32
	out, dec, err := r.Stage2(ctx, Stage2Args{Image: golden(t, "pasd_image.npy").F32, H: p.Height, W: p.Width, Hidden: hidden,
		Strength: p.Strength, Noise: golden(t, "pasd_noise.npy").F32},
		func(_ string, _, _ int, x []float32) { steps = append(steps, append([]float32(nil), x...)) })
	require.NoError(t, err)
	assert.Equal(t, p.NumInference, out.N)
	want := golden(t, "pasd_latents_steps.npy").F32
	n := len(steps[0])
	worst := 0.0
	for i, s := range steps {
		worst = math.Max(worst, testenv.MaxAbs(t, want[i*n:(i+1)*n], s))
	}
	eDec := testenv.MaxAbs(t, golden(t, "pasd_decoded.npy").F32, dec)
	eFix := testenv.MaxAbs(t, golden(t, "pasd_colorfix.npy").F32, out.Image)
	t.Logf("stage 2 vs reference: text %.3g, latents (all %d steps) %.3g, decoded %.3g, colour-fixed image %.3g", eH, len(steps), worst, eDec, eFix)
	assert.LessOrEqual(t, worst, 1e-4, "latents")
	assert.LessOrEqual(t, eDec, 1e-3, "decoded")
	assert.LessOrEqual(t, eFix, 1e-3, "colour-fixed output")
}

// TestWaveletBlurSeparable checks the separable blur against the direct 3×3 dilated
// convolution with replicate padding (PASD's wavelet_blur).
func TestWaveletBlurSeparable(t *testing.T) {
	C, H, W := 2, 7, 11
	src := make([]float32, C*H*W)
	for i := range src {
		src[i] = float32((i*37)%101) / 100
	}
	for _, r := range []int{1, 2, 4, 8, 16} {
		got := make([]float32, len(src))
		waveletBlur(src, got, C, H, W, r)
		k := [3]float64{1, 2, 1}
		cl := func(v, n int) int { return min(max(v, 0), n-1) }
		for c := 0; c < C; c++ {
			for y := 0; y < H; y++ {
				for x := 0; x < W; x++ {
					want := 0.0
					for dy := -1; dy <= 1; dy++ {
						for dx := -1; dx <= 1; dx++ {
							want += k[dy+1] * k[dx+1] / 16 * float64(src[c*H*W+cl(y+dy*r, H)*W+cl(x+dx*r, W)])
						}
					}
					assert.InDelta(t, want, got[c*H*W+y*W+x], 1e-6, "r=%d c=%d y=%d x=%d", r, c, y, x)
				}
			}
		}
	}
}
