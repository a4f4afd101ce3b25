package refine

import (
	"fmt"
	"sync"
)

// WaveletColorFix is PASD's wavelet colour fix: the high-frequency bands of content and
// the low-frequency residue of style, clamped to [0,1]. Images are planar [C,H,W] in
// [0,1]. Each level i (radius 2^i) blurs with the 3×3 kernel [[1,2,1],[2,4,2],[1,2,1]]/16
// dilated by the radius, with replicate padding:
//
//	for i in 0..levels-1: low = blur(img, 2^i); high += img - low; img = low
//	out = clamp(high(content) + low(style), 0, 1)
func WaveletColorFix(content, style []float32, C, H, W, levels int) ([]float32, error) {
	n := C * H * W
	if len(content) != n || len(style) != n || levels < 1 {
		return nil, fmt.Errorf("refine: colour fix: %d and %d values for [%d,%d,%d], %d levels", len(content), len(style), C, H, W, levels)
	}
	high, _ := waveletDecompose(content, C, H, W, levels)
	_, low := waveletDecompose(style, C, H, W, levels)
	out := make([]float32, n)
	for i := range out {
		v := high[i] + low[i]
		out[i] = min(max(v, 0), 1)
	}
	return out, nil
}

func waveletDecompose(img []float32, C, H, W, levels int) (high, low []float32) {
	cur := append([]float32(nil), img...)
	high = make([]float32, len(img))
	next := make([]float32, len(img))
	for i := 0; i < levels; i++ {
		waveletBlur(cur, next, C, H, W, 1<<i)
		for k := range cur {
			high[k] += cur[k] - next[k]
		}
		cur, next = next, cur
	}
	return high, cur
}

// waveletBlur: dilated 3×3 binomial blur with replicate padding (clamped indices). The
// kernel [[1,2,1],[2,4,2],[1,2,1]]/16 is the outer product of [1,2,1]/4 with itself, so it
// runs as a horizontal then a vertical 3-tap pass (equal up to float rounding), one
// goroutine per channel.
func waveletBlur(src, dst []float32, C, H, W, r int) {
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
