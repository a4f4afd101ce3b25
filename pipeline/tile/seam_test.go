package tile

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// gradient is a smooth ramp, [3,h,w] in [-0.8, 0.8]: x in channel 0, y in channel 1,
// their mean in channel 2.
func gradient(h, w int) []float32 {
	img := make([]float32, 3*h*w)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			u, v := float64(x)/float64(w-1), float64(y)/float64(h-1)
			img[y*w+x] = float32(-0.8 + 1.6*u)
			img[h*w+y*w+x] = float32(-0.8 + 1.6*v)
			img[2*h*w+y*w+x] = float32(-0.8 + 0.8*(u+v))
		}
	}
	return img
}

// The seam test on the host-side tiled VAE (the tiny SDXL VAE on ONNX Runtime): a smooth
// gradient, 384x256, encoded and decoded with 128 px tiles at overlap 0.25 (4 latent / 32
// pixel blends, no tile shorter than its blend). Every output step stays within the
// bound; the same tiles cut without blending break it (the test can fail).
func TestSeamBoundOnGradient(t *testing.T) {
	ctx := context.Background()
	e := tinyEngines(t, "sdxl_vae_encoder", "sdxl_vae_decoder")
	v := VAE{Tile: 128, Overlap: 0.25, Factor: 8}
	const H, W = 256, 384
	ep, err := v.EncodePlan(H, W)
	require.NoError(t, err)
	var encTiles [][]float32
	z, err := ep.Run(ctx, gradient(H, W), 3, 4, e.vaeRun("sdxl", true, &encTiles))
	require.NoError(t, err)
	dp, err := v.DecodePlan(H/8, W/8)
	require.NoError(t, err)
	var decTiles [][]float32
	img, err := dp.Run(ctx, z, 4, 3, e.vaeRun("sdxl", false, &decTiles))
	require.NoError(t, err)

	for _, c := range []struct {
		name  string
		p     Plan
		tiles [][]float32
		out   []float32
		C     int
	}{{"encode", ep, encTiles, z, 4}, {"decode", dp, decTiles, img, 3}} {
		for _, tl := range c.p.Tiles() {
			require.GreaterOrEqual(t, min(tl.OutH, tl.OutW), c.p.Rows.Blend, "%s: no tile shorter than its blend here", c.name)
		}
		r := CheckSeams(c.p, c.tiles, c.out, c.C, 0.25)
		t.Logf("%s (%d tiles, blend %d): %v", c.name, len(c.tiles), c.p.Rows.Blend, r)
		assert.Zero(t, r.Violations, "%s: steps above the seam bound (worst excess %.3g)", c.name, r.WorstExcess)
		assert.Positive(t, r.BorderSteps)

		// negative control: the same tiles with hard cuts instead of blends
		hard := c.p
		hard.Rows.Blend, hard.Cols.Blend = 0, 0
		cp := make([][]float32, len(c.tiles))
		for k := range c.tiles {
			cp[k] = append([]float32(nil), c.tiles[k]...)
		}
		cut, err := hard.Stitch(cp, c.C)
		require.NoError(t, err)
		hr := CheckSeams(c.p, c.tiles, cut, c.C, 0.25)
		t.Logf("%s, hard cuts: %v", c.name, hr)
		assert.Positive(t, hr.Violations, "%s: hard cuts must break the bound, or the test cannot fail", c.name)
		if c.name == "decode" {
			// the quirk is real: without its 1/4 the blended decode breaks the bound
			q := CheckSeams(c.p, c.tiles, c.out, c.C, 0)
			t.Logf("%s without the ramp-start term: %v", c.name, q)
			assert.Positive(t, q.Violations)
		}
	}
}

// The averaged prediction's seam bound on the reference's own step-0 tile predictions
// (both goldens: PASD's Gaussian weights and MultiDiffusion's uniform ones): the reference
// average holds it everywhere; a hard cut (each latent pixel from the window whose centre
// is nearest) breaks it, so the check can fail.
func TestAverageSeamBound(t *testing.T) {
	for _, name := range []string{"md_pasd", "md_sdxl"} {
		c := mdCases(t)[name]
		h, w := c.Height/8, c.Width/8
		kind, err := ParseWeights(c.Weights)
		require.NoError(t, err)
		wins := Grid{Tile: c.Tile, Overlap: c.Overlap}.Windows(h, w)
		wt, err := kind.Make(wins[0].H, wins[0].W)
		require.NoError(t, err)
		all := tilesNpy(t, name+"_tile_preds0.npy").F32
		n := 2 * 4 * wins[0].H * wins[0].W
		preds := make([][]float32, len(wins))
		for k := range wins {
			preds[k] = all[k*n : (k+1)*n]
		}
		avg := tilesNpy(t, name+"_pred0.npy").F32
		r, err := CheckAverageSeams(wins, wt, preds, avg, 2, 4, h, w, 1e-6)
		require.NoError(t, err)
		t.Logf("%s (%s weights): %v; largest Σ|Δŵ|/2 %.3g", name, c.Weights, r, r.WorstTiling)
		assert.Zero(t, r.Violations, "%s: steps above the bound (worst excess %.3g)", name, r.WorstExcess)
		assert.Positive(t, r.BorderSteps)

		cut := HardCut(wins, preds, 8, h, w)
		hr, err := CheckAverageSeams(wins, wt, preds, cut, 2, 4, h, w, 1e-6)
		require.NoError(t, err)
		t.Logf("%s, hard cuts: %v", name, hr)
		assert.Positive(t, hr.Violations, "%s: a hard cut must break the bound, or the check cannot fail", name)
	}
}
