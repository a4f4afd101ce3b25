package tile

import (
	"fmt"
	"math"
)

// SeamReport is what CheckSeams (or CheckAverageSeams) found. The seam bound of a tiled
// VAE (doc.go, "Seams"): for overlaps up to one half, diffusers' blend makes
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
type SeamReport struct {
	Checked, Violations int
	WorstRatio          float64 // max over pairs with a positive bound of |Δout| / bound
	WorstExcess         float64 // max of |Δout| − bound
	WorstTiling         float64 // max of (|Δout| − natural step) / (slope·spread) where tiles disagree
	BorderSteps         int     // pairs where more than one tile covers p−1
}

// CheckSeams holds a stitched VAE output out ([C, OutH, OutW]) to the seam bound above,
// given the raw tile outputs (p.Tiles order) and the ramp-start term quirk (1/4 for
// diffusers' blend, 0 without it), at every pair of neighbouring pixels along both axes.
func CheckSeams(p Plan, tiles [][]float32, out []float32, C int, quirk float64) SeamReport {
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
	var r SeamReport
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
					r.Checked++
					if cover > 1 {
						r.BorderSteps++
					}
					if step > bound {
						r.Violations++
					}
					r.WorstRatio = math.Max(r.WorstRatio, step/bound)
					if hi-lo > 1e-3 {
						r.WorstTiling = math.Max(r.WorstTiling, (step-nat)/(k*(hi-lo)))
					}
					r.WorstExcess = math.Max(r.WorstExcess, step-bound)
				}
			}
		}
	}
	return r
}

func (r SeamReport) String() string {
	return fmt.Sprintf("%d steps checked (%d where tiles overlap), %d above the bound, worst |step|/bound %.3f, "+
		"worst (|step| − tiles' own step)/(slope·spread) %.3f", r.Checked, r.BorderSteps, r.Violations, r.WorstRatio, r.WorstTiling)
}

// CheckAverageSeams holds a tiled denoising step's averaged prediction avg ([B, C, h, w],
// Accumulator.Average of the windows' predictions preds[k] ([B, C, win.H, win.W]) with
// the weight map wt) to its seam bound at every pair of neighbouring latent pixels p, q
// along both axes. With ŵ_k the normalised weights (w_k over their sum; 0 where window
// k does not cover the pixel), A and B the windows covering p and q, and z the values the
// windows give (ε_k(p) for k in A, ε_k(q) for k in B only):
//
//	|avg(q) − avg(p)| <= max_{k in A∩B} |ε_k(q) − ε_k(p)| + (Σ_k |ŵ_k(q) − ŵ_k(p)| / 2)·spread(z)
//
// (avg(q) − avg(p) = Σ_{A∩B} ŵ_k(q)(ε_k(q) − ε_k(p)) + Σ_k (ŵ_k(q) − ŵ_k(p))·z_k, the first a
// convex combination of the windows' own steps, the second a difference of two convex
// combinations of z, whose weights differ by Σ|Δŵ| in all). The average steps no more
// than the windows do, plus their disagreement times how fast the normalised weights
// move (Σ|Δŵ|/2 <= 1: uniform weights jump where a window starts, PASD's Gaussian ones
// turn over, steeply for small tiles, around the middle of an overlap); a hard cut steps
// by the whole disagreement wherever the windows' own steps are smaller. tol (relative)
// absorbs float32 rounding. The report's WorstTiling is the largest Σ|Δŵ|/2 where the
// windows disagree.
func CheckAverageSeams(wins []Window, wt []float32, preds [][]float32, avg []float32, B, C, h, w int, tol float64) (SeamReport, error) {
	var r SeamReport
	if len(wins) != len(preds) || len(avg) != B*C*h*w {
		return r, fmt.Errorf("%w: %d windows, %d predictions, %d averaged values for [%d,%d,%d,%d]", ErrShape, len(wins), len(preds), len(avg), B, C, h, w)
	}
	for k, win := range wins {
		if err := checkWindow(len(preds[k]), B*C*h*w, B, C, h, w, win); err != nil {
			return r, err
		}
		if len(wt) != win.H*win.W {
			return r, fmt.Errorf("%w: %d weights for a %dx%d window", ErrShape, len(wt), win.W, win.H)
		}
	}
	wsum := make([]float64, h*w)
	for _, win := range wins {
		for y := 0; y < win.H; y++ {
			for x := 0; x < win.W; x++ {
				wsum[(win.Y+y)*w+win.X+x] += float64(wt[y*win.W+x])
			}
		}
	}
	// norm is ŵ_k at (y, x), 0 outside window k; val is ε_k there.
	norm := func(k, y, x int) float64 {
		win := wins[k]
		if y < win.Y || y >= win.Y+win.H || x < win.X || x >= win.X+win.W {
			return 0
		}
		return float64(wt[(y-win.Y)*win.W+x-win.X]) / wsum[y*w+x]
	}
	val := func(k, bc, y, x int) (float64, bool) {
		win := wins[k]
		if y < win.Y || y >= win.Y+win.H || x < win.X || x >= win.X+win.W {
			return 0, false
		}
		return float64(preds[k][(bc*win.H+y-win.Y)*win.W+x-win.X]), true
	}
	for axis := 0; axis < 2; axis++ {
		for bc := 0; bc < B*C; bc++ {
			for y := 0; y < h; y++ {
				for x := 0; x < w; x++ {
					qy, qx := y, x+1
					if axis == 1 {
						qy, qx = y+1, x
					}
					if qy >= h || qx >= w {
						continue
					}
					own, dw, lo, hi, cover := 0.0, 0.0, math.Inf(1), math.Inf(-1), 0
					for k := range wins {
						a, inP := val(k, bc, y, x)
						b, inQ := val(k, bc, qy, qx)
						z := a
						switch {
						case inP && inQ:
							own = math.Max(own, math.Abs(b-a))
							cover++
						case inQ:
							z = b
						case !inP:
							continue
						}
						lo, hi = math.Min(lo, z), math.Max(hi, z)
						dw += math.Abs(norm(k, qy, qx) - norm(k, y, x))
					}
					step := math.Abs(float64(avg[(bc*h+qy)*w+qx]) - float64(avg[(bc*h+y)*w+x]))
					bound := own + dw/2*(hi-lo) + tol*(1+math.Abs(float64(avg[(bc*h+y)*w+x])))
					r.Checked++
					if cover > 1 || dw > 0 {
						r.BorderSteps++
					}
					if step > bound {
						r.Violations++
					}
					r.WorstRatio = math.Max(r.WorstRatio, step/bound)
					r.WorstExcess = math.Max(r.WorstExcess, step-bound)
					if hi-lo > 1e-6 && dw > 0 {
						r.WorstTiling = math.Max(r.WorstTiling, dw/2)
					}
				}
			}
		}
	}
	return r, nil
}

// HardCut assembles planes [bc, h, w] from the windows' predictions (each [bc, win.H,
// win.W]) without blending: each pixel from the window whose centre is nearest (the first
// such in window order). It is the seam checks' negative control: its steps at window
// borders break CheckAverageSeams' bound.
func HardCut(wins []Window, preds [][]float32, bc, h, w int) []float32 {
	out := make([]float32, bc*h*w)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			best, bd := -1, math.Inf(1)
			for k, win := range wins {
				if y < win.Y || y >= win.Y+win.H || x < win.X || x >= win.X+win.W {
					continue
				}
				dy, dx := float64(y-win.Y)-float64(win.H-1)/2, float64(x-win.X)-float64(win.W-1)/2
				if d := dy*dy + dx*dx; d < bd {
					best, bd = k, d
				}
			}
			if best < 0 {
				continue
			}
			win := wins[best]
			for c := 0; c < bc; c++ {
				out[(c*h+y)*w+x] = preds[best][(c*win.H+y-win.Y)*win.W+x-win.X]
			}
		}
	}
	return out
}
