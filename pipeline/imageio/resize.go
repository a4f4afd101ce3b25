package imageio

import (
	"fmt"
	"math"
)

// Pillow's fixed-point precision for 8-bit resampling (32 - 8 - 2).
const pilPrecisionBits = 22

// Filter is one of Pillow's resampling filters (PIL.Image.Resampling).
type Filter int

const (
	// Bicubic is Pillow's BICUBIC: the Keys cubic with a = -0.5, support 2.
	Bicubic Filter = iota
	// Lanczos is Pillow's LANCZOS: sinc(x)·sinc(x/3) on [-3, 3), support 3.
	Lanczos
)

func (f Filter) String() string {
	switch f {
	case Bicubic:
		return "bicubic"
	case Lanczos:
		return "lanczos"
	}
	return fmt.Sprintf("Filter(%d)", int(f))
}

func (f Filter) support() float64 {
	if f == Lanczos {
		return 3
	}
	return 2
}

func (f Filter) eval(x float64) float64 {
	if f == Lanczos {
		return pilLanczos(x)
	}
	return pilBicubic(x)
}

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

func pilSinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	x *= math.Pi
	return math.Sin(x) / x
}

func pilLanczos(x float64) float64 {
	if -3 <= x && x < 3 {
		return pilSinc(x) * pilSinc(x/3)
	}
	return 0
}

// pilCoeffs mirrors Pillow's precompute_coeffs + normalize_coeffs_8bpc for the input
// interval [in0, in1) of an axis of inSize pixels resampled to outSize: per output index
// the first input index, the tap count and fixed-point weights.
func pilCoeffs(inSize int, in0, in1 float64, outSize int, f Filter) (bounds []int, ksize int, kk []int32) {
	scale := (in1 - in0) / float64(outSize)
	filterscale := math.Max(scale, 1)
	support := f.support() * filterscale
	ksize = int(math.Ceil(support))*2 + 1
	bounds = make([]int, 2*outSize)
	kk = make([]int32, outSize*ksize)
	w := make([]float64, ksize)
	for xx := 0; xx < outSize; xx++ {
		center := in0 + (float64(xx)+0.5)*scale
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
			w[x] = f.eval((float64(x+xmin) - center + 0.5) * ss)
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
// image, bit for bit (ResizePIL with Bicubic and no box).
// An empty size gives an empty image.
func ResizeBicubicPIL(src *RGB8, w, h int) *RGB8 {
	if w < 1 || h < 1 {
		return &RGB8{W: max(w, 0), H: max(h, 0)}
	}
	out, err := ResizePIL(src, w, h, Bicubic, nil)
	if err != nil {
		panic(err) // a malformed RGB8 (len(Pix) != 3·W·H): a programming error
	}
	return out
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
