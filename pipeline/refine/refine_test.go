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

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/internal/npy"
	"github.com/grefine/grefine/internal/testkit/testenv"
	"github.com/grefine/grefine/modelset"
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

// up puts host values on the refiner's device.
func up(t testing.TB, r *Refiner, data []float32) engine.Tensor {
	t.Helper()
	h, err := engine.FromFloat32(engine.Shape{int64(len(data))}, data)
	require.NoError(t, err)
	x, err := r.Stream().Device().Alloc(engine.Float32, h.Shape())
	require.NoError(t, err)
	require.NoError(t, r.Stream().Upload(x, h))
	t.Cleanup(func() { x.Close() })
	return x
}

// down reads a device tensor back.
func down(t testing.TB, r *Refiner, x engine.Tensor) []float32 {
	t.Helper()
	h, err := engine.NewHostTensor(engine.Float32, x.Shape())
	require.NoError(t, err)
	require.NoError(t, r.Stream().Download(h, x))
	return h.F32
}

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
	defer cond.Close()
	eH := testenv.MaxAbs(t, golden(t, "sdxl_prompt_embeds.npy").F32, down(t, r, cond.Hidden))
	eP := testenv.MaxAbs(t, golden(t, "sdxl_text_embeds.npy").F32, down(t, r, cond.TextEmbeds))
	assert.LessOrEqual(t, eH, 1e-5)
	assert.LessOrEqual(t, eP, 1e-5)

	img, mask := golden(t, "sdxl_image.npy"), golden(t, "sdxl_mask.npy")
	var steps [][]float32
	out, err := r.Stage1(ctx, Stage1Args{Image: up(t, r, img.F32), Mask: up(t, r, mask.F32), H: p.Height, W: p.Width, Cond: cond,
		Strength: p.Strength, Noise: golden(t, "sdxl_noise.npy").F32, Blend: false},
		func(_ string, _, _ int, x []float32) { steps = append(steps, append([]float32(nil), x...)) })
	require.NoError(t, err)
	defer out.Close()
	assert.Equal(t, p.NumInference, out.N)
	assert.Equal(t, len(steps), out.Loop.Steps)
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
	eImg := testenv.MaxAbs(t, golden(t, "sdxl_decoded.npy").F32, down(t, r, out.Image))
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
	defer hidden.Close()
	eH := testenv.MaxAbs(t, golden(t, "pasd_text_hidden.npy").F32, down(t, r, hidden))
	assert.LessOrEqual(t, eH, 1e-5)
	var steps [][]float32
	out, err := r.Stage2(ctx, Stage2Args{Image: up(t, r, golden(t, "pasd_image.npy").F32), H: p.Height, W: p.Width, Hidden: hidden,
		Strength: p.Strength, Noise: golden(t, "pasd_noise.npy").F32},
		func(_ string, _, _ int, x []float32) { steps = append(steps, append([]float32(nil), x...)) })
	require.NoError(t, err)
	defer out.Close()
	dec := down(t, r, out.Decoded)
	assert.Equal(t, p.NumInference, out.N)
	want := golden(t, "pasd_latents_steps.npy").F32
	n := len(steps[0])
	worst := 0.0
	for i, s := range steps {
		worst = math.Max(worst, testenv.MaxAbs(t, want[i*n:(i+1)*n], s))
	}
	eDec := testenv.MaxAbs(t, golden(t, "pasd_decoded.npy").F32, dec)
	eFix := testenv.MaxAbs(t, golden(t, "pasd_colorfix.npy").F32, down(t, r, out.Image))
	t.Logf("stage 2 vs reference: text %.3g, latents (all %d steps) %.3g, decoded %.3g, colour-fixed image %.3g", eH, len(steps), worst, eDec, eFix)
	assert.LessOrEqual(t, worst, 1e-4, "latents")
	assert.LessOrEqual(t, eDec, 1e-3, "decoded")
	assert.LessOrEqual(t, eFix, 1e-3, "colour-fixed output")
}

// Every engine the refiner opens has a contract (DESIGN §2) the model set checks.
func TestEngineNamesHaveContracts(t *testing.T) {
	for _, n := range EngineNames() {
		assert.Contains(t, modelset.Contracts, n)
	}
}
