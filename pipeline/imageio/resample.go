package imageio

import (
	"fmt"

	"github.com/grefine/grefine/engine/pillow"
)

// ErrResize is returned for a resize Pillow would refuse (an empty output, a box outside
// the image or with negative extent) or a malformed source.
var ErrResize = pillow.ErrResize

// Filter is one of Pillow's resampling filters (PIL.Image.Resampling): Bicubic or Lanczos.
type Filter = pillow.Filter

// Pillow's filters.
const (
	Bicubic = pillow.Bicubic
	Lanczos = pillow.Lanczos
)

// Box is a source rectangle for a resize, Pillow's box argument: [X0, X1) × [Y0, Y1) in
// pixel coordinates. Fractional and zero-extent boxes are allowed, as in Pillow (a
// zero-height box stretches the rows around its edge).
type Box = pillow.Box

// Gray8 is an 8-bit single-channel image (Pillow mode "L"), row-major.
type Gray8 struct {
	W, H int
	Pix  []uint8
}

// NewGray8 returns a zeroed w×h grey image.
func NewGray8(w, h int) *Gray8 { return &Gray8{W: w, H: h, Pix: make([]uint8, w*h)} }

// ResizePIL reproduces Pillow 13's Image.resize((w, h), filter, box) on an RGB image bit
// for bit (box nil: the whole image), in host memory: engine/pillow's Resize, the
// reference the request's device op (engine.Ops.ResizeImage) runs too. The pass order
// follows Pillow 13 (the vertical pass first when H−h > 2·(W−w) and H > h); an integral
// box of the output's size is a crop.
func ResizePIL(src *RGB8, w, h int, f Filter, box *Box) (*RGB8, error) {
	if src == nil {
		return nil, fmt.Errorf("%w: nil source", ErrResize)
	}
	pix, err := pillow.Resize(src.Pix, src.W, src.H, 3, w, h, f, box)
	if err != nil {
		return nil, err
	}
	return &RGB8{W: w, H: h, Pix: pix}, nil
}

// ResizeGrayPIL is ResizePIL for mode "L" images.
func ResizeGrayPIL(src *Gray8, w, h int, f Filter, box *Box) (*Gray8, error) {
	if src == nil {
		return nil, fmt.Errorf("%w: nil source", ErrResize)
	}
	pix, err := pillow.Resize(src.Pix, src.W, src.H, 1, w, h, f, box)
	if err != nil {
		return nil, err
	}
	return &Gray8{W: w, H: h, Pix: pix}, nil
}
