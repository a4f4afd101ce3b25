package imageio

import (
	"errors"
	"fmt"
	"math"
)

// ErrResize is returned for a resize Pillow would refuse (an empty output, a box outside
// the image or with negative extent) or a malformed source.
var ErrResize = errors.New("imageio: bad resize")

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

// ResizePIL reproduces Pillow's Image.resize((w, h), filter, box) on an RGB image bit for
// bit (box nil: the whole image). Like Pillow it returns a copy when nothing changes and
// skips a pass whose axis keeps its size and whole extent.
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

// resamplePIL is Pillow's ImagingResampleInner for 8-bit images of ch interleaved
// channels: the horizontal pass first, over the rows the vertical pass will read, then
// the vertical pass, each rounding and clamping to 8 bits.
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
	needH := w != W || b.X0 != 0 || b.X1 != float64(w)
	needV := h != H || b.Y0 != 0 || b.Y1 != float64(h)
	bh, kh, kkh := pilCoeffs(W, b.X0, b.X1, w, f)
	bv, kv, kkv := pilCoeffs(H, b.Y0, b.Y1, h, f)
	cur, curW, curH := pix, W, H
	if needH {
		first, last := bv[0], bv[2*h-2]+bv[2*h-1]
		for i := 0; i < h; i++ {
			bv[2*i] -= first
		}
		tmp := make([]uint8, w*(last-first)*ch)
		for y := first; y < last; y++ {
			in := cur[y*curW*ch:]
			o := tmp[(y-first)*w*ch:]
			for xx := 0; xx < w; xx++ {
				xmin, n := bh[2*xx], bh[2*xx+1]
				k := kkh[xx*kh:]
				for c := 0; c < ch; c++ {
					var s int32 = 1 << (pilPrecisionBits - 1)
					for x := 0; x < n; x++ {
						s += int32(in[(x+xmin)*ch+c]) * k[x]
					}
					o[xx*ch+c] = clip8(s)
				}
			}
		}
		cur, curW, curH = tmp, w, last-first
	}
	if needV {
		out := make([]uint8, curW*h*ch)
		for yy := 0; yy < h; yy++ {
			ymin, n := bv[2*yy], bv[2*yy+1]
			k := kkv[yy*kv:]
			o := out[yy*curW*ch:]
			for x := 0; x < curW*ch; x++ {
				var s int32 = 1 << (pilPrecisionBits - 1)
				for y := 0; y < n; y++ {
					s += int32(cur[(y+ymin)*curW*ch+x]) * k[y]
				}
				o[x] = clip8(s)
			}
		}
		cur, curH = out, h
	}
	if curH != h || len(cur) != w*h*ch {
		return nil, fmt.Errorf("%w: internal: %dx%d after the passes, want %dx%d", ErrResize, curW, curH, w, h)
	}
	if &cur[0] == &pix[0] {
		cur = append([]uint8(nil), cur...)
	}
	return cur, nil
}
