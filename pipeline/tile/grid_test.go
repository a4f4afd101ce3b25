package tile

import (
	"context"
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/internal/testkit/testenv"
	"github.com/grefine/grefine/pipeline/sched"
)

type mdCase struct {
	Name          string
	Width, Height int
	Tile, Overlap int
	Weights       string
	Windows       [][4]int
	VAETile       int     `json:"vae_tile"`
	VAEOverlap    float64 `json:"vae_overlap"`
	Steps         int
	Strength      float64
	NumInference  int     `json:"num_inference_steps"`
	Guidance      float64 `json:"guidance_scale"`
}

func mdCases(t testing.TB) map[string]mdCase {
	var f struct{ Cases []mdCase }
	tilesJSON(t, "md_cases.json", &f)
	require.Len(t, f.Cases, 2)
	m := map[string]mdCase{}
	for _, c := range f.Cases {
		m[c.Name] = c
	}
	return m
}

func TestGridValidateAndStarts(t *testing.T) {
	for _, g := range []Grid{{4, 1}, {600, 8}, {64, -1}, {64, 33}} {
		assert.ErrorIs(t, g.Validate(), ErrConfig, "%+v", g)
	}
	for _, g := range []Grid{{8, 0}, {8, 4}, {96, 16}, {512, 256}} {
		assert.NoError(t, g.Validate(), "%+v", g)
	}
	g := Grid{Tile: 8, Overlap: 3}
	assert.Equal(t, []int{0}, g.Starts(5), "shorter than a tile")
	assert.Equal(t, []int{0}, g.Starts(8), "exactly a tile")
	assert.Equal(t, []int{0, 1}, g.Starts(9), "one more: the last tile is pushed back")
	assert.Equal(t, []int{0, 5, 10, 11}, g.Starts(19))
	// every latent pixel is covered, neighbours overlap by >= Overlap, tiles are Tile long
	for n := 1; n < 200; n++ {
		for _, g := range []Grid{{8, 0}, {8, 3}, {16, 8}, {96, 16}} {
			s := g.Starts(n)
			assert.Equal(t, 0, s[0])
			assert.Equal(t, n, s[len(s)-1]+min(g.Tile, n), "n=%d %+v: last tile ends at the edge", n, g)
			for j := 1; j < len(s); j++ {
				assert.LessOrEqual(t, s[j]-s[j-1], g.Tile-g.Overlap, "n=%d %+v", n, g)
				assert.Greater(t, s[j], s[j-1])
			}
		}
	}
}

func TestGridWindowsAndWeightsMatchReference(t *testing.T) {
	for _, c := range mdCases(t) {
		g := Grid{Tile: c.Tile, Overlap: c.Overlap}
		require.NoError(t, g.Validate())
		ws := g.Windows(c.Height/8, c.Width/8)
		require.Len(t, ws, len(c.Windows), c.Name)
		for k, w := range ws {
			assert.Equal(t, c.Windows[k], [4]int{w.Y, w.X, w.H, w.W}, "%s window %d", c.Name, k)
		}
	}
	kind, err := ParseWeights("gaussian")
	require.NoError(t, err)
	w, err := kind.Make(8, 8)
	require.NoError(t, err)
	want := tilesNpy(t, "md_pasd_weights.npy").F32
	require.Len(t, w, len(want))
	for i := range w {
		assert.Equal(t, math.Float32bits(want[i]), math.Float32bits(w[i]), "weight %d: %g vs %g", i, w[i], want[i])
	}
	u, err := Uniform.Make(3, 2)
	require.NoError(t, err)
	assert.Equal(t, []float32{1, 1, 1, 1, 1, 1}, u)
	_, err = ParseWeights("cosine")
	assert.ErrorIs(t, err, ErrConfig)
	_, err = Weights(9).Make(2, 2)
	assert.ErrorIs(t, err, ErrConfig)
	_, err = Gaussian.Make(0, 2)
	assert.ErrorIs(t, err, ErrShape)
}

// The accumulation on the reference's own step-0 tile predictions gives the reference's
// averaged prediction bit for bit (same order, same float32 arithmetic).
func TestAccumulateEqualsReferenceBitForBit(t *testing.T) {
	for name, c := range mdCases(t) {
		h, w := c.Height/8, c.Width/8
		ws := Grid{c.Tile, c.Overlap}.Windows(h, w)
		kind, err := ParseWeights(c.Weights)
		require.NoError(t, err)
		wt, err := kind.Make(ws[0].H, ws[0].W)
		require.NoError(t, err)
		acc, err := NewAccumulator(2, 4, h, w)
		require.NoError(t, err)
		flat := tilesNpy(t, name+"_tile_preds0.npy").F32
		n := 2 * 4 * ws[0].H * ws[0].W
		require.Len(t, flat, n*len(ws))
		for k, win := range ws {
			require.NoError(t, acc.Add(win, flat[k*n:(k+1)*n], wt))
		}
		got := make([]float32, 2*4*h*w)
		require.NoError(t, acc.Average(got))
		want := tilesNpy(t, name+"_pred0.npy").F32
		diff := 0
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				diff++
			}
		}
		assert.Zero(t, diff, "%s: values differing from the reference (max abs %.3g)", name, testenv.MaxAbs(t, got, want))
		acc.Reset()
		assert.Zero(t, acc.Acc[7]+acc.WSum[3])
	}
}

// Extract and Add touch exactly their window (sentinels around it stay), with ragged
// sizes; an uncovered pixel makes Average fail instead of dividing by zero.
func TestExtractAddGuardBands(t *testing.T) {
	const B, C, H, W = 2, 3, 7, 11
	src := make([]float32, B*C*H*W)
	for i := range src {
		src[i] = float32(i)
	}
	win := Window{Y: 2, X: 3, H: 4, W: 5}
	dst := make([]float32, B*C*win.H*win.W+2)
	dst[0], dst[len(dst)-1] = -7, -7
	require.NoError(t, Extract(dst[1:len(dst)-1], src, B, C, H, W, win))
	assert.Equal(t, float32(-7), dst[0])
	assert.Equal(t, float32(-7), dst[len(dst)-1])
	for bc := 0; bc < B*C; bc++ {
		for y := 0; y < win.H; y++ {
			for x := 0; x < win.W; x++ {
				assert.Equal(t, src[(bc*H+win.Y+y)*W+win.X+x], dst[1+(bc*win.H+y)*win.W+x])
			}
		}
	}
	assert.ErrorIs(t, Extract(dst[1:], src, B, C, H, W, win), ErrShape)
	assert.ErrorIs(t, Extract(dst[1:len(dst)-1], src, B, C, H, W, Window{Y: 4, X: 3, H: 4, W: 5}), ErrShape)
	assert.ErrorIs(t, Extract(dst[1:len(dst)-1], src, B, C, H, W, Window{Y: -1, X: 3, H: 4, W: 5}), ErrShape)

	a, err := NewAccumulator(B, C, H, W)
	require.NoError(t, err)
	wt := make([]float32, win.H*win.W)
	for i := range wt {
		wt[i] = 0.5
	}
	pred := dst[1 : len(dst)-1]
	require.NoError(t, a.Add(win, pred, wt))
	for bc := 0; bc < B*C; bc++ {
		for y := 0; y < H; y++ {
			for x := 0; x < W; x++ {
				in := y >= win.Y && y < win.Y+win.H && x >= win.X && x < win.X+win.W
				v := a.Acc[(bc*H+y)*W+x]
				if in {
					assert.Equal(t, float32(0.5)*src[(bc*H+y)*W+x], v)
				} else {
					assert.Zero(t, v, "outside the window %d,%d", x, y)
				}
			}
		}
	}
	out := make([]float32, B*C*H*W)
	assert.ErrorIs(t, a.Average(out), ErrShape, "pixels outside the window have weight 0")
	assert.ErrorIs(t, a.Add(win, pred, wt[1:]), ErrShape)
	assert.ErrorIs(t, a.Average(out[1:]), ErrShape)
	_, err = NewAccumulator(0, 1, 1, 1)
	assert.ErrorIs(t, err, ErrShape)
	// one window over everything: the average is the prediction itself
	full := Window{0, 0, H, W}
	b, _ := NewAccumulator(B, C, H, W)
	ones, _ := Gaussian.Make(H, W)
	require.NoError(t, b.Add(full, src, ones))
	require.NoError(t, b.Average(out))
	for i := range out {
		assert.InDelta(t, src[i], out[i], 2e-7*math.Abs(float64(src[i])), "one tile: the average is the tile (to rounding)")
	}
}

// tiledLoop runs the reference's tiled denoising loop on the host: the tiny set's UNet on
// ONNX Runtime per tile, this package's Extract / Accumulator, pipeline/sched's scheduler.
type tiledLoop struct {
	c      mdCase
	e      *engines
	sc     sched.Scheduler
	begin  int
	unet   func(ctx context.Context, in []float32, t float32, win Window) ([]float32, error)
	onStep func(i int, x, eps []float32)
}

func (l *tiledLoop) run(ctx context.Context, x []float32) error {
	h, w := l.c.Height/8, l.c.Width/8
	ws := Grid{l.c.Tile, l.c.Overlap}.Windows(h, w)
	kind, err := ParseWeights(l.c.Weights)
	if err != nil {
		return err
	}
	wt, err := kind.Make(ws[0].H, ws[0].W)
	if err != nil {
		return err
	}
	acc, err := NewAccumulator(2, 4, h, w)
	if err != nil {
		return err
	}
	n := 4 * h * w
	in := make([]float32, 2*n)
	eps := make([]float32, 2*n)
	tile := make([]float32, 2*4*ws[0].H*ws[0].W)
	g := float32(l.c.Guidance)
	for i := l.begin; i < len(l.sc.Timesteps()); i++ {
		copy(in, x)
		if err := l.sc.ScaleModelInput(in[:n], i); err != nil {
			return err
		}
		copy(in[n:], in[:n])
		acc.Reset()
		for _, win := range ws {
			if err := Extract(tile, in, 2, 4, h, w, win); err != nil {
				return err
			}
			p, err := l.unet(ctx, tile, float32(l.sc.Timesteps()[i]), win)
			if err != nil {
				return err
			}
			if err := acc.Add(win, p, wt); err != nil {
				return err
			}
		}
		if err := acc.Average(eps); err != nil {
			return err
		}
		if l.onStep != nil {
			l.onStep(i, nil, eps)
		}
		guided := make([]float32, n)
		for k := range guided {
			u, c := eps[k], eps[n+k]
			guided[k] = u + float32(g*(c-u))
		}
		if err := l.sc.Step(guided, x, i); err != nil {
			return err
		}
		if l.onStep != nil {
			l.onStep(i, x, nil)
		}
	}
	return nil
}

func newScheduler(t *testing.T, group, class string, c mdCase) (sched.Scheduler, int) {
	t.Helper()
	var cfg struct {
		Scheduler json.RawMessage `json:"scheduler"`
		VAEScale  float64         `json:"vae_scale"`
	}
	require.NoError(t, testenv.TinySet(t).Config(group, &cfg))
	sc, err := sched.NewFromJSON(class, cfg.Scheduler)
	require.NoError(t, err)
	start, err := sched.StartStep(c.NumInference, c.Strength)
	require.NoError(t, err)
	require.NoError(t, sc.SetTimesteps(c.NumInference))
	require.NoError(t, sc.SetBeginIndex(start*sc.Order()))
	return sc, start * sc.Order()
}

func vaeScale(t *testing.T, group string) float64 {
	var cfg struct {
		VAEScale float64 `json:"vae_scale"`
	}
	require.NoError(t, testenv.TinySet(t).Config(group, &cfg))
	return cfg.VAEScale
}

// checkLoop runs the loop from the golden initial latents and compares the step-0 average,
// every step's latents and the tiled decode with the reference.
func checkLoop(t *testing.T, l *tiledLoop, group string) {
	ctx := context.Background()
	c := l.c
	h, w := c.Height/8, c.Width/8
	x := append([]float32(nil), tilesNpy(t, c.Name+"_latents_init.npy").F32...)
	want := tilesNpy(t, c.Name+"_latents_steps.npy").F32
	ts := tilesNpy(t, c.Name+"_timesteps.npy").F32
	require.Len(t, ts, c.Steps)
	for k := range ts {
		require.Equal(t, float64(ts[k]), l.sc.Timesteps()[l.begin+k], "timestep %d", k)
	}
	worst, ePred := 0.0, -1.0
	n := 4 * h * w
	l.onStep = func(i int, xs, eps []float32) {
		if eps != nil && i == l.begin {
			ePred = testenv.MaxAbs(t, eps, tilesNpy(t, c.Name+"_pred0.npy").F32)
		}
		if xs != nil {
			k := i - l.begin
			worst = math.Max(worst, testenv.MaxAbs(t, xs, want[k*n:(k+1)*n]))
		}
	}
	require.NoError(t, l.run(ctx, x))
	// tiled decode of the last latents, as the reference does
	dp, err := VAE{Tile: c.VAETile, Overlap: c.VAEOverlap, Factor: 8}.DecodePlan(h, w)
	require.NoError(t, err)
	scale := vaeScale(t, group)
	z := make([]float32, len(x))
	for i, v := range x {
		z[i] = float32(float64(v) / scale)
	}
	img, err := dp.Run(ctx, z, 4, 3, l.e.vaeRun(group, false, nil))
	require.NoError(t, err)
	for i, v := range img {
		img[i] = min(max(v/2+0.5, 0), 1)
	}
	eDec := testenv.MaxAbs(t, img, tilesNpy(t, c.Name+"_decoded.npy").F32)
	t.Logf("%s: %d tiles of %dx%d, %s weights: step-0 average %.3g, latents (all %d steps) %.3g, tiled decode %.3g",
		c.Name, len(c.Windows), c.Tile, c.Tile, c.Weights, ePred, c.Steps, worst, eDec)
	assert.LessOrEqual(t, ePred, 1e-4, "step-0 averaged prediction")
	assert.LessOrEqual(t, worst, 1e-4, "latents")
	assert.LessOrEqual(t, eDec, 1e-3, "decoded image")
}

// Tiled denoising end to end on the host (stage 2: the PASD stand-in, UniPC, Gaussian
// weights): ONNX Runtime's UNet per tile with the control image cut at 8x the window,
// averaged, CFG, UniPC; then the tiled decode. Tolerances as the untiled stage parity
// tests: latents 1e-4, image 1e-3.
func TestTiledDenoisePASDMatchesReference(t *testing.T) {
	c := mdCases(t)["md_pasd"]
	e := tinyEngines(t, "pasd_unet", "pasd_vae_decoder")
	sc, begin := newScheduler(t, "pasd", "UniPCMultistepScheduler", c)
	control := tilesNpy(t, "md_pasd_image.npy").F32
	hidden := testenv.Golden(t, "pasd_text_hidden.npy").F32
	l := &tiledLoop{c: c, e: e, sc: sc, begin: begin}
	l.unet = func(ctx context.Context, in []float32, ts float32, win Window) ([]float32, error) {
		pw := win.Scale(8)
		ctl := make([]float32, 2*3*pw.H*pw.W)
		if err := Extract(ctl[:3*pw.H*pw.W], control, 1, 3, c.Height, c.Width, pw); err != nil {
			return nil, err
		}
		copy(ctl[3*pw.H*pw.W:], ctl[:3*pw.H*pw.W])
		return e.run(ctx, "pasd_unet", "noise_pred",
			feed{"sample", engine.Shape{2, 4, int64(win.H), int64(win.W)}, in},
			feed{"timestep", engine.Shape{1}, []float32{ts}},
			feed{"encoder_hidden_states", engine.Shape{2, 77, 8}, hidden},
			feed{"control", engine.Shape{2, 3, int64(pw.H), int64(pw.W)}, ctl})
	}
	checkLoop(t, l, "pasd")
}

// Stage 1 tiled (SDXL-Inpainting, Euler, uniform weights): the 9-channel input cut per
// tile (latents, mask, masked-image latents) and per-tile time ids (8·th, 8·tw, 0, 0,
// 8·th, 8·tw).
func TestTiledDenoiseSDXLMatchesReference(t *testing.T) {
	c := mdCases(t)["md_sdxl"]
	e := tinyEngines(t, "sdxl_unet", "sdxl_vae_decoder")
	sc, begin := newScheduler(t, "sdxl", "EulerDiscreteScheduler", c)
	h, w := c.Height/8, c.Width/8
	mask := tilesNpy(t, "md_sdxl_mask_latents.npy").F32
	masked := tilesNpy(t, "md_sdxl_masked_image_latents.npy").F32
	ehs := testenv.Golden(t, "sdxl_prompt_embeds.npy").F32
	temb := testenv.Golden(t, "sdxl_text_embeds.npy").F32
	l := &tiledLoop{c: c, e: e, sc: sc, begin: begin}
	l.unet = func(ctx context.Context, in []float32, ts float32, win Window) ([]float32, error) {
		m := win.H * win.W
		mt := make([]float32, m)
		zt := make([]float32, 4*m)
		if err := Extract(mt, mask, 1, 1, h, w, win); err != nil {
			return nil, err
		}
		if err := Extract(zt, masked, 1, 4, h, w, win); err != nil {
			return nil, err
		}
		sample := make([]float32, 2*9*m)
		for b := 0; b < 2; b++ {
			copy(sample[b*9*m:], in[b*4*m:(b+1)*4*m])
			copy(sample[b*9*m+4*m:], mt)
			copy(sample[b*9*m+5*m:], zt)
		}
		th, tw := float32(8*win.H), float32(8*win.W)
		ids := []float32{th, tw, 0, 0, th, tw, th, tw, 0, 0, th, tw}
		return e.run(ctx, "sdxl_unet", "noise_pred",
			feed{"sample", engine.Shape{2, 9, int64(win.H), int64(win.W)}, sample},
			feed{"timestep", engine.Shape{1}, []float32{ts}},
			feed{"encoder_hidden_states", engine.Shape{2, 77, 24}, ehs},
			feed{"text_embeds", engine.Shape{2, 20}, temb},
			feed{"time_ids", engine.Shape{2, 6}, ids})
	}
	checkLoop(t, l, "sdxl")
}
