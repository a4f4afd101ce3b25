package imageio

import (
	"errors"
	"fmt"
	"math"
)

// ErrResize is returned for a resize Pillow would refuse (an empty output, a box outside
// the image or with negative extent) or a malformed source.
var ErrResize = errors.New("imageio: bad resize")

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
		if -3 <= x && x < 3 {
			return pilSinc(x) * pilSinc(x/3)
		}
		return 0
	}
	const a = -0.5
	x = math.Abs(x)
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

// pilFixedBits is Pillow's fixed-point precision for 8-bit resampling (32 - 8 - 2).
const pilFixedBits = 22

// pilTaps is Pillow 13's precompute_coeffs + normalize_coeffs_8bpc for the input
// interval [in0, in0+span) of an axis of inSize pixels resampled to outSize: per output
// index the first input index and the tap count (bounds), the taps per index (ksize) and
// the fixed-point weights.
func pilTaps(inSize int, in0, span float64, outSize int, f Filter) (bounds []int, ksize int, kk []int32) {
	scale := span / float64(outSize)
	filterscale := math.Max(scale, 1)
	support := f.support() * filterscale
	ksize = int(math.Ceil(support))*2 + 1
	bounds = make([]int, 2*outSize)
	kk = make([]int32, outSize*ksize)
	w := make([]float64, ksize)
	inv := 1 / filterscale
	for xx := 0; xx < outSize; xx++ {
		center := in0 + (float64(xx)+0.5)*scale
		xmin := max(int(center-support+0.5), 0)
		xmax := min(int(center+support+0.5), inSize) - xmin
		ww := 0.0
		for x := 0; x < xmax; x++ {
			w[x] = f.eval((float64(x+xmin) - center + 0.5) * inv)
			ww += w[x]
		}
		for x := 0; x < xmax; x++ {
			v := w[x]
			if ww != 0 {
				v /= ww
			}
			if v < 0 {
				kk[xx*ksize+x] = int32(-0.5 + v*(1<<pilFixedBits))
			} else {
				kk[xx*ksize+x] = int32(0.5 + v*(1<<pilFixedBits))
			}
		}
		bounds[2*xx], bounds[2*xx+1] = xmin, xmax
	}
	return bounds, ksize, kk
}

func pilClip8(v int32) uint8 {
	v >>= pilFixedBits
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// Box is a source rectangle for a resize, Pillow's box argument: [X0, X1) × [Y0, Y1) in
// pixel coordinates. Fractional and zero-extent boxes are allowed, as in Pillow (a
// zero-height box stretches the rows around its edge).
type Box struct{ X0, Y0, X1, Y1 float64 }

// Gray8 is an 8-bit single-channel image (Pillow mode "L"), row-major.
type Gray8 struct {
	W, H int
	Pix  []uint8
}

// NewGray8 returns a zeroed w×h grey image.
func NewGray8(w, h int) *Gray8 { return &Gray8{W: w, H: h, Pix: make([]uint8, w*h)} }

// ResizePIL reproduces Pillow 13's Image.resize((w, h), filter, box) on an RGB image bit
// for bit (box nil: the whole image; Pillow 13.0.0 is the version tools/export pins).
// Separable two-pass convolution, the support scaled by the reduction factor
// (antialiasing), coefficients normalised and quantised to 22-bit fixed point, rounding
// and clamping to 8 bits after each pass; the pass order follows Pillow 13 (see
// resamplePIL). Like Pillow it returns a crop when an integral box has the output's size
// (a copy when nothing changes) and skips a pass whose axis keeps its size and extent.
//
// ResizeBicubicPIL (resize.go) always runs the horizontal pass first, so it equals
// ResizePIL(src, w, h, Bicubic, nil) except when H−h > 2·(W−w) with H > h, where Pillow 13
// runs the vertical pass first (and the bytes differ).
func ResizePIL(src *RGB8, w, h int, f Filter, box *Box) (*RGB8, error) {
	pix, err := resamplePIL(src.Pix, src.W, src.H, 3, w, h, f, box)
	if err != nil {
		return nil, err
	}
	return &RGB8{W: w, H: h, Pix: pix}, nil
}

// ResizeGrayPIL is ResizePIL for mode "L" images.
func ResizeGrayPIL(src *Gray8, w, h int, f Filter, box *Box) (*Gray8, error) {
	pix, err := resamplePIL(src.Pix, src.W, src.H, 1, w, h, f, box)
	if err != nil {
		return nil, err
	}
	return &Gray8{W: w, H: h, Pix: pix}, nil
}

// resamplePIL is Pillow 13's ImagingResampleInner for 8-bit images of ch interleaved
// channels. The box is in float32, as Pillow's C code takes it. Pillow 13 runs the
// vertical pass first when the height shrinks by more than twice the pixels the width
// does (H−h > 2·(W−w) and H > h), else the horizontal pass first, over only the rows the
// vertical pass reads; each pass rounds and clamps to 8 bits, so the order shows in the
// bytes.
func resamplePIL(pix []uint8, W, H, ch, w, h int, f Filter, box *Box) ([]uint8, error) {
	if W < 1 || H < 1 || len(pix) != W*H*ch {
		return nil, fmt.Errorf("%w: source %dx%d with %d bytes for %d channels", ErrResize, W, H, len(pix), ch)
	}
	if w < 1 || h < 1 {
		return nil, fmt.Errorf("%w: output %dx%d", ErrResize, w, h)
	}
	if f != Bicubic && f != Lanczos {
		return nil, fmt.Errorf("%w: filter %v", ErrResize, f)
	}
	b := Box{0, 0, float64(W), float64(H)}
	if box != nil {
		b = *box
	}
	if !(b.X0 >= 0 && b.Y0 >= 0 && b.X1 <= float64(W) && b.Y1 <= float64(H)) || b.X1 < b.X0 || b.Y1 < b.Y0 {
		return nil, fmt.Errorf("%w: box %v outside the %dx%d image or of negative extent", ErrResize, b, W, H)
	}
	if b.X0 == math.Trunc(b.X0) && b.Y0 == math.Trunc(b.Y0) && b.X1-b.X0 == float64(w) && b.Y1-b.Y0 == float64(h) {
		// Pillow crops (no filtering) when an integral box has the output's size.
		x0, y0 := int(b.X0), int(b.Y0)
		out := make([]uint8, w*h*ch)
		for y := 0; y < h; y++ {
			copy(out[y*w*ch:][:w*ch], pix[((y0+y)*W+x0)*ch:][:w*ch])
		}
		return out, nil
	}
	x0, x1 := float32(b.X0), float32(b.X1)
	y0, y1 := float32(b.Y0), float32(b.Y1)
	needH := w != W || x0 != 0 || x1 != float32(w)
	needV := h != H || y0 != 0 || y1 != float32(h)
	hFirst := !(H-h > 0 && H-h > (W-w)*2)
	cur, curW := pix, W
	if hFirst {
		bv, kv, kkv := pilTaps(H, float64(y0), float64(y1-y0), h, f)
		first, last := 0, H
		if needH {
			first, last = bv[0], bv[2*h-2]+bv[2*h-1]
			for i := 0; i < h; i++ {
				bv[2*i] -= first
			}
			bh, kh, kkh := pilTaps(W, float64(x0), float64(x1-x0), w, f)
			cur = hpass(cur, curW, first, last, ch, w, bh, kh, kkh)
			curW = w
		}
		if needV {
			cur = vpass(cur, curW, ch, h, bv, kv, kkv)
		}
	} else {
		if needV {
			bv, kv, kkv := pilTaps(H, float64(y0), float64(y1-y0), h, f)
			cur = vpass(cur, curW, ch, h, bv, kv, kkv)
		}
		if needH {
			bh, kh, kkh := pilTaps(W, float64(x0), float64(x1-x0), w, f)
			rows := len(cur) / (curW * ch)
			cur = hpass(cur, curW, 0, rows, ch, w, bh, kh, kkh)
			curW = w
		}
	}
	if len(cur) != w*h*ch {
		return nil, fmt.Errorf("%w: internal: %d bytes after the passes, want %dx%d", ErrResize, len(cur), w, h)
	}
	if &cur[0] == &pix[0] {
		cur = append([]uint8(nil), cur...)
	}
	return cur, nil
}

// hpass is Pillow's ImagingResampleHorizontal_8bpc over rows [first, last) of src (W wide).
func hpass(src []uint8, W, first, last, ch, w int, bounds []int, ksize int, kk []int32) []uint8 {
	out := make([]uint8, w*(last-first)*ch)
	const half = 1 << (pilFixedBits - 1)
	for y := first; y < last; y++ {
		in := src[y*W*ch:][:W*ch]
		o := out[(y-first)*w*ch:][:w*ch]
		for xx := 0; xx < w; xx++ {
			xmin, n := bounds[2*xx], bounds[2*xx+1]
			k := kk[xx*ksize:][:n]
			if ch == 3 {
				var s0, s1, s2 int32 = half, half, half
				for x, kx := range k {
					p := in[3*(x+xmin):][:3]
					s0 += int32(p[0]) * kx
					s1 += int32(p[1]) * kx
					s2 += int32(p[2]) * kx
				}
				o[3*xx], o[3*xx+1], o[3*xx+2] = pilClip8(s0), pilClip8(s1), pilClip8(s2)
				continue
			}
			for c := 0; c < ch; c++ {
				var s int32 = half
				for x, kx := range k {
					s += int32(in[(x+xmin)*ch+c]) * kx
				}
				o[xx*ch+c] = pilClip8(s)
			}
		}
	}
	return out
}

// vpass is Pillow's ImagingResampleVertical_8bpc: h output rows of src (W wide).
func vpass(src []uint8, W, ch, h int, bounds []int, ksize int, kk []int32) []uint8 {
	row := W * ch
	out := make([]uint8, row*h)
	const half = 1 << (pilFixedBits - 1)
	acc := make([]int32, row)
	for yy := 0; yy < h; yy++ {
		ymin, n := bounds[2*yy], bounds[2*yy+1]
		for i := range acc {
			acc[i] = half
		}
		for y, ky := range kk[yy*ksize:][:n] {
			in := src[(y+ymin)*row:][:row]
			for i, v := range in {
				acc[i] += int32(v) * ky
			}
		}
		o := out[yy*row:][:row]
		for i, s := range acc {
			o[i] = pilClip8(s)
		}
	}
	return out
}
