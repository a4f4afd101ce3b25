package imageio

import "math"

// Pillow's fixed-point precision for 8-bit resampling (32 - 8 - 2).
const pilPrecisionBits = 22

func pilBicubic(x float64) float64 {
	const a = -0.5
	if x < 0 {
		x = -x
	}
	if x < 1 {
		return ((a+2)*x-(a+3))*x*x + 1
	}
	if x < 2 {
		return (((x-5)*x+8)*x - 4) * a
	}
	return 0
}

// pilCoeffs mirrors Pillow's precompute_coeffs + normalize_coeffs_8bpc for a full-image
// box: per output index the first input index, the tap count and fixed-point weights.
func pilCoeffs(inSize, outSize int) (bounds []int, ksize int, kk []int32) {
	scale := float64(inSize) / float64(outSize)
	filterscale := math.Max(scale, 1)
	support := 2.0 * filterscale
	ksize = int(math.Ceil(support))*2 + 1
	bounds = make([]int, 2*outSize)
	kk = make([]int32, outSize*ksize)
	w := make([]float64, ksize)
	for xx := 0; xx < outSize; xx++ {
		center := (float64(xx) + 0.5) * scale
		ss := 1 / filterscale
		xmin := int(center - support + 0.5)
		if xmin < 0 {
			xmin = 0
		}
		xmax := int(center + support + 0.5)
		if xmax > inSize {
			xmax = inSize
		}
		xmax -= xmin
		ww := 0.0
		for x := 0; x < xmax; x++ {
			w[x] = pilBicubic((float64(x+xmin) - center + 0.5) * ss)
			ww += w[x]
		}
		for x := 0; x < ksize; x++ {
			v := 0.0
			if x < xmax {
				v = w[x]
				if ww != 0 {
					v /= ww
				}
			}
			if v < 0 {
				kk[xx*ksize+x] = int32(-0.5 + v*(1<<pilPrecisionBits))
			} else {
				kk[xx*ksize+x] = int32(0.5 + v*(1<<pilPrecisionBits))
			}
		}
		bounds[2*xx], bounds[2*xx+1] = xmin, xmax
	}
	return bounds, ksize, kk
}

func clip8(v int32) uint8 {
	v >>= pilPrecisionBits
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// ResizeBicubicPIL resizes like Pillow's Image.resize((w, h), Image.BICUBIC) on an RGB
// image, bit for bit. Pillow skips a pass whose size does not change; so does this.
func ResizeBicubicPIL(src *RGB8, w, h int) *RGB8 {
	cur := src
	if w != src.W {
		bounds, ksize, kk := pilCoeffs(src.W, w)
		out := NewRGB8(w, src.H)
		for y := 0; y < src.H; y++ {
			in := cur.Pix[3*y*src.W:]
			o := out.Pix[3*y*w:]
			for xx := 0; xx < w; xx++ {
				xmin, n := bounds[2*xx], bounds[2*xx+1]
				k := kk[xx*ksize:]
				var s0, s1, s2 int32 = 1 << (pilPrecisionBits - 1), 1 << (pilPrecisionBits - 1), 1 << (pilPrecisionBits - 1)
				for x := 0; x < n; x++ {
					p := in[3*(x+xmin):]
					s0 += int32(p[0]) * k[x]
					s1 += int32(p[1]) * k[x]
					s2 += int32(p[2]) * k[x]
				}
				o[3*xx], o[3*xx+1], o[3*xx+2] = clip8(s0), clip8(s1), clip8(s2)
			}
		}
		cur = out
	}
	if h != src.H {
		bounds, ksize, kk := pilCoeffs(src.H, h)
		out := NewRGB8(cur.W, h)
		for yy := 0; yy < h; yy++ {
			ymin, n := bounds[2*yy], bounds[2*yy+1]
			k := kk[yy*ksize:]
			o := out.Pix[3*yy*cur.W:]
			for x := 0; x < cur.W; x++ {
				var s0, s1, s2 int32 = 1 << (pilPrecisionBits - 1), 1 << (pilPrecisionBits - 1), 1 << (pilPrecisionBits - 1)
				for y := 0; y < n; y++ {
					p := cur.Pix[3*((y+ymin)*cur.W+x):]
					s0 += int32(p[0]) * k[y]
					s1 += int32(p[1]) * k[y]
					s2 += int32(p[2]) * k[y]
				}
				o[3*x], o[3*x+1], o[3*x+2] = clip8(s0), clip8(s1), clip8(s2)
			}
		}
		cur = out
	}
	if cur == src {
		cp := *src
		cp.Pix = append([]uint8(nil), src.Pix...)
		return &cp
	}
	return cur
}

// CLIPInput squashes img to size×size with ResizeBicubicPIL (aspect not kept, as the
// reference does), scales to [0,1] and normalises per channel: planar [3,size,size].
func CLIPInput(img *RGB8, size int, mean, std [3]float32) []float32 {
	r := ResizeBicubicPIL(img, size, size)
	out := make([]float32, 3*size*size)
	plane := size * size
	for p := 0; p < plane; p++ {
		for c := 0; c < 3; c++ {
			out[c*plane+p] = (float32(r.Pix[3*p+c])/255 - mean[c]) / std[c]
		}
	}
	return out
}
