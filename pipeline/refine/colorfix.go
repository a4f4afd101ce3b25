package refine

import "fmt"

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

// waveletBlur: dilated 3×3 binomial blur with replicate padding (clamped indices).
func waveletBlur(src, dst []float32, C, H, W, r int) {
	k := [3]float32{1, 2, 1}
	clamp := func(v, hi int) int { return min(max(v, 0), hi-1) }
	for c := 0; c < C; c++ {
		s := src[c*H*W : (c+1)*H*W]
		d := dst[c*H*W : (c+1)*H*W]
		for y := 0; y < H; y++ {
			for x := 0; x < W; x++ {
				var acc float32
				for dy := -1; dy <= 1; dy++ {
					row := clamp(y+dy*r, H) * W
					for dx := -1; dx <= 1; dx++ {
						acc += k[dy+1] * k[dx+1] / 16 * s[row+clamp(x+dx*r, W)]
					}
				}
				d[y*W+x] = acc
			}
		}
	}
}
