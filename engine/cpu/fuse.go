package cpu

import (
	"fmt"

	"github.com/grefine/grefine/engine"
)

// CaskFuse applies the cask effect (DESIGN §1.2) to good [batch, 4, tokens], the
// probabilities of "good" for overall, technical, rationality and naturalness, writing
// L [batch, tokens]. Reference loop, in float32:
//
//	L[b,t] = g0 * min(g1/alpha[0], 1) * min(g2/alpha[1], 1) * min(g3/alpha[2], 1)
//
// with g_i = good[b,i,t], multiplied left to right.
func CaskFuse(good []float32, batch, tokens int, alpha [3]float32, L []float32) error {
	if batch < 0 || tokens < 0 || len(good) != batch*4*tokens || len(L) != batch*tokens {
		return fmt.Errorf("%w: cpu: CaskFuse: batch %d, %d tokens need %d and %d values, have %d and %d",
			engine.ErrShape, batch, tokens, batch*4*tokens, batch*tokens, len(good), len(L))
	}
	for b := 0; b < batch; b++ {
		g := good[b*4*tokens : (b+1)*4*tokens]
		for t := 0; t < tokens; t++ {
			L[b*tokens+t] = cask(g, tokens, t, alpha)
		}
	}
	return nil
}

func cask(g []float32, T, t int, alpha [3]float32) float32 {
	m1 := min(g[T+t]/alpha[0], 1)
	m2 := min(g[2*T+t]/alpha[1], 1)
	m3 := min(g[3*T+t]/alpha[2], 1)
	return float32(float32(g[t]*m1)*m2) * m3
}

// MinMaxNormalize writes (x - min(x)) / (max(x) - min(x)) into out (float32), or zeros
// when max - min < 1e-12 (a flat map). out may be x.
func MinMaxNormalize(x, out []float32) error {
	if len(out) != len(x) {
		return fmt.Errorf("%w: cpu: MinMaxNormalize: %d values into %d", engine.ErrShape, len(x), len(out))
	}
	if len(x) == 0 {
		return nil
	}
	lo, hi := x[0], x[0]
	for _, v := range x[1:] {
		lo, hi = min(lo, v), max(hi, v)
	}
	r := hi - lo
	for i, v := range x {
		if r < 1e-12 {
			out[i] = 0
		} else {
			out[i] = (v - lo) / r
		}
	}
	return nil
}

// DefectMask writes the undilated defect mask (DESIGN §1.4), elementwise:
//
//	mask[i] = 1 if (pmap[i] < PerceptualBound && lup[i] < PerceptualGate) ||
//	               (A[i] > AlignBound), else 0
//
// with A = align, or zeros when align is nil. pmap, lup, align and mask have equal lengths.
func DefectMask(pmap, lup, align []float32, p engine.FuseParams, mask []float32) error {
	n := len(pmap)
	if len(lup) != n || len(mask) != n || (align != nil && len(align) != n) {
		return fmt.Errorf("%w: cpu: DefectMask: lengths %d, %d, %d, %d differ", engine.ErrShape, n, len(lup), len(align), len(mask))
	}
	for i := range pmap {
		var a float32
		if align != nil {
			a = align[i]
		}
		if (pmap[i] < p.PerceptualBound && lup[i] < p.PerceptualGate) || a > p.AlignBound {
			mask[i] = 1
		} else {
			mask[i] = 0
		}
	}
	return nil
}

// Dilate applies a (2r+1)×(2r+1) square max filter to planes of h×w, the window clipped
// at the borders: dst[n,y,x] = max over |dy|,|dx| <= r of src[n,y+dy,x+dx] inside the
// plane. r = 0 copies. dst must not overlap src.
func Dilate(src []float32, planes, h, w, r int, dst []float32) error {
	if planes < 0 || h < 0 || w < 0 || r < 0 || len(src) != planes*h*w || len(dst) != len(src) {
		return fmt.Errorf("%w: cpu: Dilate: %d planes %dx%d radius %d with %d and %d values",
			engine.ErrShape, planes, h, w, r, len(src), len(dst))
	}
	if r == 0 {
		copy(dst, src)
		return nil
	}
	col := make([]float32, h)
	for n := 0; n < planes; n++ {
		s := src[n*h*w : (n+1)*h*w]
		d := dst[n*h*w : (n+1)*h*w]
		for y := 0; y < h; y++ { // horizontal pass: s -> d
			row := s[y*w : (y+1)*w]
			for x := 0; x < w; x++ {
				lo, hi := max(x-r, 0), min(x+r, w-1)
				m := row[lo]
				for _, v := range row[lo+1 : hi+1] {
					m = max(m, v)
				}
				d[y*w+x] = m
			}
		}
		for x := 0; x < w; x++ { // vertical pass on d, one column at a time
			for y := range col {
				col[y] = d[y*w+x]
			}
			for y := 0; y < h; y++ {
				lo, hi := max(y-r, 0), min(y+r, h-1)
				m := col[lo]
				for _, v := range col[lo+1 : hi+1] {
					m = max(m, v)
				}
				d[y*w+x] = m
			}
		}
	}
	return nil
}

// FuseMapsOut holds FuseMaps' outputs: Score [batch], PMap, MaskImg [batch, H, W],
// MaskLat [batch, LatentH, LatentW].
type FuseMapsOut struct {
	Score, PMap, MaskImg, MaskLat []float32
}

// FuseMaps is the quality-map fusion (DESIGN §1.2, §1.4), per image b of good
// [batch, 4, T] (T = p.Tokens()) and optional align [batch, H, W] (nil = zeros):
//
//	L = CaskFuse(good[b]); Score[b] = L[0]
//	G = L[1:] as GridH×GridW; N = MinMaxNormalize(G)
//	PMap[b] = clamp(ResizeBicubic(N → H×W), 0, 1); Lup = ResizeBicubic(G → H×W)
//	MaskImg[b] = Dilate(DefectMask(PMap[b], Lup, align[b]), Radius)
//	MaskLat[b] = DownsampleNearest(MaskImg[b] → LatentH×LatentW)
//
// This is grf_fuse_maps' reference.
func FuseMaps(p engine.FuseParams, batch int, good, align []float32, out FuseMapsOut) error {
	if err := p.Validate(); err != nil {
		return fmt.Errorf("cpu: FuseMaps: %w", err)
	}
	T, G, HW, hw := p.Tokens(), p.GridH*p.GridW, p.Height*p.Width, p.LatentH*p.LatentW
	if batch < 0 || len(good) != batch*4*T || (align != nil && len(align) != batch*HW) ||
		len(out.Score) != batch || len(out.PMap) != batch*HW || len(out.MaskImg) != batch*HW ||
		len(out.MaskLat) != batch*hw {
		return fmt.Errorf("%w: cpu: FuseMaps: batch %d, T %d, %dx%d, latent %dx%d: lengths good %d, align %d, score %d, pmap %d, mask_img %d, mask_lat %d",
			engine.ErrShape, batch, T, p.Height, p.Width, p.LatentH, p.LatentW,
			len(good), len(align), len(out.Score), len(out.PMap), len(out.MaskImg), len(out.MaskLat))
	}
	L := make([]float32, T)
	norm := make([]float32, G)
	lup := make([]float32, HW)
	raw := make([]float32, HW)
	for b := 0; b < batch; b++ {
		if err := CaskFuse(good[b*4*T:(b+1)*4*T], 1, T, p.Alpha, L); err != nil {
			return err
		}
		out.Score[b] = L[0]
		grid := L[1:]
		if err := MinMaxNormalize(grid, norm); err != nil {
			return err
		}
		pm := out.PMap[b*HW : (b+1)*HW]
		if err := ResizeBicubic(norm, 1, p.GridH, p.GridW, pm, p.Height, p.Width); err != nil {
			return err
		}
		for i, v := range pm {
			if v < 0 {
				pm[i] = 0
			} else if v > 1 {
				pm[i] = 1
			}
		}
		if err := ResizeBicubic(grid, 1, p.GridH, p.GridW, lup, p.Height, p.Width); err != nil {
			return err
		}
		var a []float32
		if align != nil {
			a = align[b*HW : (b+1)*HW]
		}
		mi := out.MaskImg[b*HW : (b+1)*HW]
		if err := DefectMask(pm, lup, a, p, raw); err != nil {
			return err
		}
		if err := Dilate(raw, 1, p.Height, p.Width, p.Radius, mi); err != nil {
			return err
		}
		if err := DownsampleNearest(mi, 1, p.Height, p.Width, out.MaskLat[b*hw:(b+1)*hw], p.LatentH, p.LatentW); err != nil {
			return err
		}
	}
	return nil
}
