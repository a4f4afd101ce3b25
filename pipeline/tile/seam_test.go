package tile

import (
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The seam bound (doc.go, "Seams"). For overlaps up to one half, diffusers' blend makes
// every output pixel a convex combination of the raw tiles covering it, with weights that
// are polynomials in the ramp positions r = y/e (e the blend extent): with UL, U, L, B
// the tiles up-left, up, left and the pixel's own, w_UL = (1−r_y)(1−r_x²),
// w_U = (1−r_y)r_x², w_L = r_y(1−r_x), w_B = r_x·r_y. One pixel step changes them by
// Σ|Δw| < 4/e in total. Hence, for neighbouring output pixels p−1, p (along either axis),
//
//	|out(p) − out(p−1)| <= max_t |tile_t(p) − tile_t(p−1)| + (2/e)·spread(p−1)
//
// where t runs over the tiles covering both pixels and spread(p−1) is the largest minus
// the smallest raw tile value at p−1: the output steps no more than the tiles themselves
// do, plus the tiles' disagreement spread over e/2 pixels. One exception is diffusers' own:
// on the first row of a vertical blend, inside a horizontal blend, the weights jump from
// (1−r_x, r_x) (the row above, blended horizontally only) to (1−r_x², r_x²) (blend_h runs
// on a tile whose left neighbour was blended vertically first), a step of
// (r_x − r_x²)·|U − UL| <= spread/4; there the bound's slope is 2/e + 1/4. A hard cut (no
// blending) steps by the whole disagreement; a misplaced tile breaks the convex
// combination.
type seamReport struct {
	checked, violations int
	worstRatio          float64 // max over pairs with a positive bound of |Δout| / bound
	worstExcess         float64 // max of |Δout| − bound
	worstTiling         float64 // max of (|Δout| − natural step) / (slope·spread) where tiles disagree
	borderSteps         int     // pairs where more than one tile covers p−1
}

func seamCheck(p Plan, tiles [][]float32, out []float32, C int, quirk float64) seamReport {
	ts := p.Tiles()
	type win struct{ y, x, h, w int }
	wins := make([]win, len(ts))
	for k, t := range ts {
		wins[k] = win{t.Y * p.Scale / p.Shrink, t.X * p.Scale / p.Shrink, t.OutH, t.OutW}
	}
	val := func(k, c, y, x int) (float32, bool) {
		w := wins[k]
		if y < w.y || y >= w.y+w.h || x < w.x || x >= w.x+w.w {
			return 0, false
		}
		return tiles[k][(c*w.h+y-w.y)*w.w+x-w.x], true
	}
	var r seamReport
	H, W := p.OutH, p.OutW
	rampStart := map[int]bool{} // first output row of each vertical blend
	for _, s := range p.Rows.Starts[1:] {
		rampStart[s*p.Scale/p.Shrink] = true
	}
	for axis, e := range []int{p.Cols.Blend, p.Rows.Blend} {
		slope := 2 / float64(e)
		for c := 0; c < C; c++ {
			for y := 0; y < H; y++ {
				for x := 0; x < W; x++ {
					py, px := y, x-1 // the neighbour before (y, x) along the axis
					if axis == 1 {
						py, px = y-1, x
					}
					if py < 0 || px < 0 {
						continue
					}
					nat, lo, hi, cover := 0.0, math.Inf(1), math.Inf(-1), 0
					for k := range ts {
						a, okA := val(k, c, py, px)
						if !okA {
							continue
						}
						cover++
						lo, hi = math.Min(lo, float64(a)), math.Max(hi, float64(a))
						if b, okB := val(k, c, y, x); okB {
							nat = math.Max(nat, math.Abs(float64(b)-float64(a)))
						}
					}
					step := math.Abs(float64(out[(c*H+y)*W+x]) - float64(out[(c*H+py)*W+px]))
					k := slope
					if axis == 1 && rampStart[y] {
						k += quirk // diffusers' in-place order (1/4): see the type's doc
					}
					bound := nat + k*(hi-lo) + 1e-5
					r.checked++
					if cover > 1 {
						r.borderSteps++
					}
					if step > bound {
						r.violations++
					}
					r.worstRatio = math.Max(r.worstRatio, step/bound)
					if hi-lo > 1e-3 {
						r.worstTiling = math.Max(r.worstTiling, (step-nat)/(k*(hi-lo)))
					}
					r.worstExcess = math.Max(r.worstExcess, step-bound)
				}
			}
		}
	}
	return r
}

func (r seamReport) String() string {
	return fmt.Sprintf("%d steps checked (%d where tiles overlap), %d above the bound, worst |step|/bound %.3f, "+
		"worst (|step| − tiles' own step)/(slope·spread) %.3f", r.checked, r.borderSteps, r.violations, r.worstRatio, r.worstTiling)
}

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
		r := seamCheck(c.p, c.tiles, c.out, c.C, 0.25)
		t.Logf("%s (%d tiles, blend %d): %v", c.name, len(c.tiles), c.p.Rows.Blend, r)
		assert.Zero(t, r.violations, "%s: steps above the seam bound (worst excess %.3g)", c.name, r.worstExcess)
		assert.Positive(t, r.borderSteps)

		// negative control: the same tiles with hard cuts instead of blends
		hard := c.p
		hard.Rows.Blend, hard.Cols.Blend = 0, 0
		cp := make([][]float32, len(c.tiles))
		for k := range c.tiles {
			cp[k] = append([]float32(nil), c.tiles[k]...)
		}
		cut, err := hard.Stitch(cp, c.C)
		require.NoError(t, err)
		hr := seamCheck(c.p, c.tiles, cut, c.C, 0.25)
		t.Logf("%s, hard cuts: %v", c.name, hr)
		assert.Positive(t, hr.violations, "%s: hard cuts must break the bound, or the test cannot fail", c.name)
		if c.name == "decode" {
			// the quirk is real: without its 1/4 the blended decode breaks the bound
			q := seamCheck(c.p, c.tiles, c.out, c.C, 0)
			t.Logf("%s without the ramp-start term: %v", c.name, q)
			assert.Positive(t, q.violations)
		}
	}
}
