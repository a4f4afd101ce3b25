package cpu

import (
	"fmt"
	"math"

	"github.com/grefine/grefine/engine"
)

// Images are RGB, uint8 [H, W, 3] row-major (pixel p = y*W + x holds R, G, B at 3p..3p+2),
// or float32 planar [3, H, W].

// Pillow's fixed-point precision for 8-bit resampling (32 - 8 - 2).
const pilPrecisionBits = 22

// pilBicubic is Pillow's bicubic filter (a = -0.5), evaluated left to right in float64.
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

// PILTaps is the support of one resampling pass: per output index xx, the first input
// index Bounds[2xx], the tap count Bounds[2xx+1] and Size fixed-point weights
// Weights[xx*Size:] (those past the tap count are 0).
type PILTaps struct {
	Bounds  []int
	Size    int
	Weights []int32
}

// PILCoeffs mirrors Pillow's precompute_coeffs + normalize_coeffs_8bpc for a full-image
// box from inSize to outSize. Reference loop, in float64, for xx < outSize:
//
//	scale = in/out; fs = max(scale, 1); support = 2*fs; Size = ceil(support)*2 + 1
//	center = (xx + 0.5)*scale; xmin = max(int(center - support + 0.5), 0)
//	xmax = min(int(center + support + 0.5), in) - xmin
//	w[x] = bicubic((x + xmin - center + 0.5) / fs) for x < xmax; ww = Σ w (x order)
//	Weights[xx,x] = int32(±0.5 + (w[x]/ww)*2^22) (sign of the weight; 0 past xmax)
//
// (int truncates toward zero; w[x]/ww is w[x] when ww is 0).
func PILCoeffs(inSize, outSize int) PILTaps {
	scale := float64(inSize) / float64(outSize)
	filterscale := math.Max(scale, 1)
	support := 2.0 * filterscale
	ksize := int(math.Ceil(support))*2 + 1
	t := PILTaps{Bounds: make([]int, 2*outSize), Size: ksize, Weights: make([]int32, outSize*ksize)}
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
				t.Weights[xx*ksize+x] = int32(-0.5 + v*(1<<pilPrecisionBits))
			} else {
				t.Weights[xx*ksize+x] = int32(0.5 + v*(1<<pilPrecisionBits))
			}
		}
		t.Bounds[2*xx], t.Bounds[2*xx+1] = xmin, xmax
	}
	return t
}

// clip8 is Pillow's rounding of a fixed-point sum: v >> 22 clamped to [0, 255].
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

// ResizeImage resizes src [inH, inW, 3] to dst [outH, outW, 3] like Pillow's
// Image.resize((outW, outH), Image.BICUBIC) on an RGB image, bit for bit: a horizontal
// pass (skipped when inW == outW) into an intermediate [inH, outW, 3], then a vertical
// pass (skipped when inH == outH); a skipped pair copies. Each output value, with taps
// t = PILCoeffs of that pass and int32 arithmetic:
//
//	dst = clip8(2^21 + Σ_{x < t.Bounds[2o+1]} src[t.Bounds[2o]+x] * t.Weights[o*t.Size+x])
//
// This is grf_resize_rgb8's reference.
func ResizeImage(src []uint8, inH, inW int, dst []uint8, outH, outW int) error {
	if inH < 1 || inW < 1 || outH < 1 || outW < 1 || len(src) != 3*inH*inW || len(dst) != 3*outH*outW {
		return fmt.Errorf("%w: cpu: ResizeImage: %dx%d -> %dx%d with %d and %d bytes", engine.ErrShape, inW, inH, outW, outH, len(src), len(dst))
	}
	cur, curW := src, inW
	if outW != inW {
		t := PILCoeffs(inW, outW)
		out := dst
		if outH != inH {
			out = make([]uint8, 3*inH*outW)
		}
		for y := 0; y < inH; y++ {
			in := src[3*y*inW:]
			o := out[3*y*outW:]
			for xx := 0; xx < outW; xx++ {
				xmin, n := t.Bounds[2*xx], t.Bounds[2*xx+1]
				k := t.Weights[xx*t.Size:]
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
		cur, curW = out, outW
	}
	if outH != inH {
		t := PILCoeffs(inH, outH)
		for yy := 0; yy < outH; yy++ {
			ymin, n := t.Bounds[2*yy], t.Bounds[2*yy+1]
			k := t.Weights[yy*t.Size:]
			o := dst[3*yy*curW:]
			for x := 0; x < curW; x++ {
				var s0, s1, s2 int32 = 1 << (pilPrecisionBits - 1), 1 << (pilPrecisionBits - 1), 1 << (pilPrecisionBits - 1)
				for y := 0; y < n; y++ {
					p := cur[3*((y+ymin)*curW+x):]
					s0 += int32(p[0]) * k[y]
					s1 += int32(p[1]) * k[y]
					s2 += int32(p[2]) * k[y]
				}
				o[3*x], o[3*x+1], o[3*x+2] = clip8(s0), clip8(s1), clip8(s2)
			}
		}
		return nil
	}
	if outW == inW {
		copy(dst, src)
	}
	return nil
}

// ToPlanar converts an RGB image [H*W pixels, 3] to planar float32 [3, H*W]:
//
//	dst[c*n + p] = (float32(src[3p + c])/255 - mean[c]) / std[c]
//
// in float32 (mean 0 and std 1 give the plain [0,1] image). This is grf_to_planar's
// reference.
func ToPlanar(src []uint8, dst []float32, mean, std [3]float32) error {
	if len(src)%3 != 0 || len(dst) != len(src) {
		return fmt.Errorf("%w: cpu: ToPlanar: %d bytes into %d values", engine.ErrShape, len(src), len(dst))
	}
	n := len(src) / 3
	for p := 0; p < n; p++ {
		for c := 0; c < 3; c++ {
			dst[c*n+p] = (float32(src[3*p+c])/255 - mean[c]) / std[c]
		}
	}
	return nil
}

// FromPlanar converts planar float32 [3, n] to an RGB image [n, 3], rounding to nearest:
//
//	dst[3p + c] = uint8(min(max(src[c*n + p], 0), 1)*255 + 0.5)
//
// (float32; the conversion truncates). This is grf_from_planar's reference.
func FromPlanar(src []float32, dst []uint8) error {
	if len(dst)%3 != 0 || len(dst) != len(src) {
		return fmt.Errorf("%w: cpu: FromPlanar: %d values into %d bytes", engine.ErrShape, len(src), len(dst))
	}
	n := len(dst) / 3
	for p := 0; p < n; p++ {
		for c := 0; c < 3; c++ {
			v := min(max(src[c*n+p], 0), 1)
			dst[3*p+c] = uint8(v*255 + 0.5)
		}
	}
	return nil
}

// Paste copies the pixels of src outside the mask into dst (both RGB [n, 3]):
//
//	if mask[p] < 0.5: dst[3p..3p+2] = src[3p..3p+2]
//
// This is grf_paste_rgb8's reference.
func Paste(dst, src []uint8, mask []float32) error {
	if len(dst) != len(src) || len(dst) != 3*len(mask) {
		return fmt.Errorf("%w: cpu: Paste: %d and %d bytes with a %d-pixel mask", engine.ErrShape, len(dst), len(src), len(mask))
	}
	for p, m := range mask {
		if m < 0.5 {
			copy(dst[3*p:3*p+3], src[3*p:3*p+3])
		}
	}
	return nil
}
