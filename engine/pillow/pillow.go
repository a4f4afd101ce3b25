package pillow

import (
	"errors"
	"fmt"
	"math"
)

// ErrResize is returned for a resize Pillow would refuse (an empty output, a box outside
// the image or with negative extent, an unknown filter) or a malformed source.
var ErrResize = errors.New("pillow: bad resize")

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

// Support is the filter's support at scale 1 (2 for Bicubic, 3 for Lanczos).
func (f Filter) Support() float64 {
	if f == Lanczos {
		return 3
	}
	return 2
}

// Eval is the filter's kernel at x, in float64, as Pillow evaluates it.
func (f Filter) Eval(x float64) float64 {
	if f == Lanczos {
		if -3 <= x && x < 3 {
			return sinc(x) * sinc(x/3)
		}
		return 0
	}
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

func sinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	x *= math.Pi
	return math.Sin(x) / x
}

// FixedBits is Pillow's fixed-point precision for 8-bit resampling (32 - 8 - 2).
const FixedBits = 22

// Taps are the fixed-point coefficients of one pass: per output index o the first input
// index Bounds[2o], the tap count Bounds[2o+1] and Size weights Weights[o*Size:] (those
// past the tap count are 0).
type Taps struct {
	Bounds  []int
	Size    int
	Weights []int32
}

// Coeffs is Pillow 13's precompute_coeffs + normalize_coeffs_8bpc for the input interval
// [in0, in0+span) of an axis of inSize pixels resampled to outSize, in float64, for o <
// outSize:
//
//	scale = span/outSize; fs = max(scale, 1); support = filter.Support()*fs
//	Size = ceil(support)*2 + 1; center = in0 + (o + 0.5)*scale
//	xmin = max(int(center - support + 0.5), 0); n = min(int(center + support + 0.5), inSize) - xmin
//	w[x] = filter((x + xmin - center + 0.5) / fs) for x < n; ww = Σ w (x order)
//	Weights[o,x] = int32(±0.5 + (w[x]/ww)·2^22) (the sign of the weight; w[x] when ww is 0)
//
// (int truncates toward zero).
func Coeffs(inSize int, in0, span float64, outSize int, f Filter) Taps {
	scale := span / float64(outSize)
	filterscale := math.Max(scale, 1)
	support := f.Support() * filterscale
	ksize := int(math.Ceil(support))*2 + 1
	t := Taps{Bounds: make([]int, 2*outSize), Size: ksize, Weights: make([]int32, outSize*ksize)}
	w := make([]float64, ksize)
	inv := 1 / filterscale
	for xx := 0; xx < outSize; xx++ {
		center := in0 + (float64(xx)+0.5)*scale
		xmin := max(int(center-support+0.5), 0)
		xmax := min(int(center+support+0.5), inSize) - xmin
		ww := 0.0
		for x := 0; x < xmax; x++ {
			w[x] = f.Eval((float64(x+xmin) - center + 0.5) * inv)
			ww += w[x]
		}
		for x := 0; x < xmax; x++ {
			v := w[x]
			if ww != 0 {
				v /= ww
			}
			if v < 0 {
				t.Weights[xx*ksize+x] = int32(-0.5 + v*(1<<FixedBits))
			} else {
				t.Weights[xx*ksize+x] = int32(0.5 + v*(1<<FixedBits))
			}
		}
		t.Bounds[2*xx], t.Bounds[2*xx+1] = xmin, xmax
	}
	return t
}

func trunc32(v float32) float32 { return float32(math.Trunc(float64(v))) }

func clip8(v int32) uint8 {
	v >>= FixedBits
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// Box is a source rectangle for a resize, Pillow's box argument: [X0, X1) × [Y0, Y1) in
// pixel coordinates.
type Box struct{ X0, Y0, X1, Y1 float64 }

// Plan is what Resize will do for a source, an output size and a box, decided as Pillow
// 13 decides it (Resize's doc): a crop, or the passes it runs and their order.
type Plan struct {
	// Crop is true when an integral box has the output's size: the output is the box's
	// pixels (X, Y its corner).
	Crop bool
	X, Y int
	// Horizontal and Vertical say which passes run; VerticalFirst their order.
	Horizontal, Vertical, VerticalFirst bool
	// X0, SpanX and Y0, SpanY are the box's start and extent per axis, from float32 values
	// (the extent is a float32 difference), as the passes use them.
	X0, SpanX, Y0, SpanY float64
}

// PlanFor checks the arguments and decides the passes (ErrResize for what Pillow refuses).
func PlanFor(W, H, w, h int, f Filter, box *Box) (Plan, error) {
	if W < 1 || H < 1 {
		return Plan{}, fmt.Errorf("%w: source %dx%d", ErrResize, W, H)
	}
	if w < 1 || h < 1 {
		return Plan{}, fmt.Errorf("%w: output %dx%d", ErrResize, w, h)
	}
	if f != Bicubic && f != Lanczos {
		return Plan{}, fmt.Errorf("%w: filter %v", ErrResize, f)
	}
	b := [4]float32{0, 0, float32(W), float32(H)} // Pillow takes the box as C floats
	if box != nil {
		b = [4]float32{float32(box.X0), float32(box.Y0), float32(box.X1), float32(box.Y1)}
	}
	x0, y0, x1, y1 := b[0], b[1], b[2], b[3]
	if !(x0 >= 0 && y0 >= 0 && x1 <= float32(W) && y1 <= float32(H)) || x1 < x0 || y1 < y0 {
		return Plan{}, fmt.Errorf("%w: box %v outside the %dx%d image or of negative extent", ErrResize, b, W, H)
	}
	if trunc32(x0) == x0 && trunc32(y0) == y0 && x1-x0 == float32(w) && y1-y0 == float32(h) {
		return Plan{Crop: true, X: int(x0), Y: int(y0)}, nil
	}
	return Plan{
		Horizontal:    w != W || x0 != 0 || x1 != float32(w),
		Vertical:      h != H || y0 != 0 || y1 != float32(h),
		VerticalFirst: H-h > 0 && H-h > (W-w)*2,
		X0:            float64(x0), SpanX: float64(x1 - x0), Y0: float64(y0), SpanY: float64(y1 - y0),
	}, nil
}

// Resize is Pillow 13's Image.resize((w, h), filter, box) of an 8-bit image of ch (1 or
// 3) interleaved channels, W×H row-major (box nil: the whole image), into a new slice.
func Resize(pix []uint8, W, H, ch, w, h int, f Filter, box *Box) ([]uint8, error) {
	if _, err := PlanFor(W, H, w, h, f, box); err != nil {
		return nil, err
	}
	if ch != 1 && ch != 3 {
		return nil, fmt.Errorf("%w: %d channels (want 1 or 3)", ErrResize, ch)
	}
	out := make([]uint8, w*h*ch)
	if err := ResizeInto(out, pix, W, H, ch, w, h, f, box); err != nil {
		return nil, err
	}
	return out, nil
}

// ResizeInto is Resize into dst (w*h*ch bytes; it must not overlap pix). On an error
// nothing is written.
func ResizeInto(dst, pix []uint8, W, H, ch, w, h int, f Filter, box *Box) error {
	if ch != 1 && ch != 3 {
		return fmt.Errorf("%w: %d channels (want 1 or 3)", ErrResize, ch)
	}
	p, err := PlanFor(W, H, w, h, f, box)
	if err != nil {
		return err
	}
	if len(pix) != W*H*ch || len(dst) != w*h*ch {
		return fmt.Errorf("%w: %dx%d -> %dx%d with %d channels given %d and %d bytes", ErrResize, W, H, w, h, ch, len(pix), len(dst))
	}
	if p.Crop {
		for y := 0; y < h; y++ {
			copy(dst[y*w*ch:][:w*ch], pix[((p.Y+y)*W+p.X)*ch:][:w*ch])
		}
		return nil
	}
	cur, curW := pix, W
	out := func(n int, last bool) []uint8 {
		if last {
			return dst
		}
		return make([]uint8, n)
	}
	if !p.VerticalFirst {
		if p.Horizontal {
			t := Coeffs(W, p.X0, p.SpanX, w, f)
			cur = hpass(out(w*H*ch, !p.Vertical), cur, W, H, ch, w, t)
			curW = w
		}
		if p.Vertical {
			cur = vpass(dst, cur, curW, ch, h, Coeffs(H, p.Y0, p.SpanY, h, f))
		}
	} else {
		if p.Vertical {
			cur = vpass(out(W*h*ch, !p.Horizontal), cur, curW, ch, h, Coeffs(H, p.Y0, p.SpanY, h, f))
		}
		if p.Horizontal {
			cur = hpass(dst, cur, curW, h, ch, w, Coeffs(W, p.X0, p.SpanX, w, f))
		}
	}
	if !p.Horizontal && !p.Vertical {
		copy(dst, pix)
	}
	return nil
}

// hpass is Pillow's ImagingResampleHorizontal_8bpc: rows of src (W wide, ch channels)
// into out (w wide). (Pillow runs it over the rows the vertical pass reads only; the rows
// are independent, so running all of them gives the same bytes.)
func hpass(out, src []uint8, W, rows, ch, w int, t Taps) []uint8 {
	const half = 1 << (FixedBits - 1)
	for y := 0; y < rows; y++ {
		in := src[y*W*ch:][:W*ch]
		o := out[y*w*ch:][:w*ch]
		for xx := 0; xx < w; xx++ {
			xmin, n := t.Bounds[2*xx], t.Bounds[2*xx+1]
			k := t.Weights[xx*t.Size:][:n]
			if ch == 3 {
				var s0, s1, s2 int32 = half, half, half
				for x, kx := range k {
					p := in[3*(x+xmin):][:3]
					s0 += int32(p[0]) * kx
					s1 += int32(p[1]) * kx
					s2 += int32(p[2]) * kx
				}
				o[3*xx], o[3*xx+1], o[3*xx+2] = clip8(s0), clip8(s1), clip8(s2)
				continue
			}
			var s int32 = half
			for x, kx := range k {
				s += int32(in[x+xmin]) * kx
			}
			o[xx] = clip8(s)
		}
	}
	return out
}

// vpass is Pillow's ImagingResampleVertical_8bpc: h output rows of src (W wide).
func vpass(out, src []uint8, W, ch, h int, t Taps) []uint8 {
	row := W * ch
	const half = 1 << (FixedBits - 1)
	acc := make([]int32, row)
	for yy := 0; yy < h; yy++ {
		ymin, n := t.Bounds[2*yy], t.Bounds[2*yy+1]
		for i := range acc {
			acc[i] = half
		}
		for y, ky := range t.Weights[yy*t.Size:][:n] {
			in := src[(y+ymin)*row:][:row]
			for i, v := range in {
				acc[i] += int32(v) * ky
			}
		}
		o := out[yy*row:][:row]
		for i, s := range acc {
			o[i] = clip8(s)
		}
	}
	return out
}
