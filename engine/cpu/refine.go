package cpu

import (
	"fmt"
	"sync"

	"github.com/grefine/grefine/engine"
)

// Emphasis is prompt emphasis (A1111-style, DESIGN §1.3 eq. 7) on hidden states h [L, D]
// with weights w [L]: when every weight is 1 it does nothing; else, in index order,
//
//	before = Σ float64(h[i]); h[i] = h[i]*w[i/D] (float32); after = Σ float64(h[i])
//	if after != 0: s = float32(before/after); h[i] = h[i]*s
//
// This is grf_emphasis' reference.
func Emphasis(h []float32, D int, w []float32) error {
	if D < 1 || len(h) != len(w)*D {
		return fmt.Errorf("%w: cpu: Emphasis: %d values for [%d,%d]", engine.ErrShape, len(h), len(w), D)
	}
	plain := true
	for _, v := range w {
		if v != 1 {
			plain = false
		}
	}
	if plain {
		return nil
	}
	var before, after float64
	for i := range h {
		before += float64(h[i])
		h[i] *= w[i/D]
		after += float64(h[i])
	}
	if after == 0 {
		return nil
	}
	s := float32(before / after)
	for i := range h {
		h[i] *= s
	}
	return nil
}

// ColorFix is PASD's wavelet colour fix: the high-frequency bands of content and the
// low-frequency residue of style, planar [C, H, W], clamped to [0,1]. Level i (radius
// r = 2^i) blurs with the 3×3 kernel [[1,2,1],[2,4,2],[1,2,1]]/16 dilated by r, with
// replicate padding, as a horizontal then a vertical 3-tap pass, in float32:
//
//	blur(s)[y,x] = 0.25*t[y-r,x] + 0.5*t[y,x] + 0.25*t[y+r,x],
//	    t[y,x] = 0.25*s[y,x-r] + 0.5*s[y,x] + 0.25*s[y,x+r]   (indices clamped, left to right)
//	decompose(img): high = 0; for i < levels: low = blur(img, 2^i); high += img - low; img = low
//	dst = min(max(high(content) + low(style), 0), 1)
//
// This is grf_color_fix's reference.
func ColorFix(content, style []float32, C, H, W, levels int, dst []float32) error {
	n := C * H * W
	if C < 0 || H < 0 || W < 0 || len(content) != n || len(style) != n || len(dst) != n || levels < 1 {
		return fmt.Errorf("%w: cpu: ColorFix: %d, %d and %d values for [%d,%d,%d], %d levels", engine.ErrShape, len(content), len(style), len(dst), C, H, W, levels)
	}
	high, _ := waveletDecompose(content, C, H, W, levels)
	_, low := waveletDecompose(style, C, H, W, levels)
	for i := range dst {
		dst[i] = min(max(high[i]+low[i], 0), 1)
	}
	return nil
}

func waveletDecompose(img []float32, C, H, W, levels int) (high, low []float32) {
	cur := append([]float32(nil), img...)
	high = make([]float32, len(img))
	next := make([]float32, len(img))
	for i := 0; i < levels; i++ {
		WaveletBlur(cur, next, C, H, W, 1<<i)
		for k := range cur {
			high[k] += cur[k] - next[k]
		}
		cur, next = next, cur
	}
	return high, cur
}

// WaveletBlur is ColorFix's dilated blur of planes [C, H, W] with radius r (one goroutine
// per plane; the result does not depend on it).
func WaveletBlur(src, dst []float32, C, H, W, r int) {
	var wg sync.WaitGroup
	for c := 0; c < C; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			s := src[c*H*W : (c+1)*H*W]
			d := dst[c*H*W : (c+1)*H*W]
			tmp := make([]float32, H*W)
			for y := 0; y < H; y++ {
				row, out := s[y*W:(y+1)*W], tmp[y*W:(y+1)*W]
				for x := 0; x < W; x++ {
					l, rr := row[max(x-r, 0)], row[min(x+r, W-1)]
					out[x] = 0.25*l + 0.5*row[x] + 0.25*rr
				}
			}
			for y := 0; y < H; y++ {
				up, mid, down := tmp[max(y-r, 0)*W:], tmp[y*W:], tmp[min(y+r, H-1)*W:]
				out := d[y*W : (y+1)*W]
				for x := 0; x < W; x++ {
					out[x] = 0.25*up[x] + 0.5*mid[x] + 0.25*down[x]
				}
			}
		}(c)
	}
	wg.Wait()
}
