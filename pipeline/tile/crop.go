package tile

import (
	"fmt"

	"github.com/grefine/grefine/pipeline/imageio"
)

// Box is a crop region [X1, X2) × [Y1, Y2) in image pixels (diffusers' crop_coords).
type Box struct{ X1, Y1, X2, Y2 int }

// W is the box's width.
func (b Box) W() int { return b.X2 - b.X1 }

// H is the box's height.
func (b Box) H() int { return b.Y2 - b.Y1 }

// MaxCropPad bounds the crop padding (pixels): any larger pad reaches the image's edges
// on every image grefine accepts.
const MaxCropPad = 1 << 16

// CropRegion is diffusers' VaeImageProcessor.get_crop_region(mask, width, height, pad) for
// a w×h mask (row-major, masked where >= 0.5; for diffusers' 0/255 masks that is "not
// zero"): the bounding box of the masked pixels, grown by pad on each side and clamped to
// the image, then grown along its short side (relative to width:height) to the working
// aspect, split as diffusers splits it (int truncation, half before, the rest after),
// shifted back inside the image where it overhangs and finally clamped (a box that
// cannot reach the aspect inside the image keeps the image's extent on that axis).
// An empty mask is ErrEmptyMask.
func CropRegion(mask []float32, w, h, width, height, pad int) (Box, error) {
	if w < 1 || h < 1 || len(mask) != w*h {
		return Box{}, fmt.Errorf("%w: mask of %d values for %dx%d", ErrShape, len(mask), w, h)
	}
	left, right, top, bottom := w, -1, h, -1
	for y := 0; y < h; y++ {
		for x, v := range mask[y*w : (y+1)*w] {
			if v >= 0.5 {
				left, right = min(left, x), max(right, x)
				top, bottom = min(top, y), max(bottom, y)
			}
		}
	}
	if right < 0 {
		if width < 1 || height < 1 || pad < 0 || pad > MaxCropPad {
			return Box{}, fmt.Errorf("%w: working size %dx%d, crop padding %d (want 0..%d)", ErrConfig, width, height, pad, MaxCropPad)
		}
		return Box{}, ErrEmptyMask
	}
	return GrowBox(Box{left, top, right + 1, bottom + 1}, w, h, width, height, pad)
}

// GrowBox is the rest of get_crop_region once the masked pixels' bounding box b is known
// (in a w×h image; a device computes it with engine.Ops.BoundingBox): b grown by pad on
// each side and clamped to the image, then grown along its short side (relative to
// width:height) to the working aspect, split as diffusers splits it, shifted back inside
// the image where it overhangs and clamped. An empty b is ErrEmptyMask.
func GrowBox(b Box, w, h, width, height, pad int) (Box, error) {
	if width < 1 || height < 1 || pad < 0 || pad > MaxCropPad {
		return Box{}, fmt.Errorf("%w: working size %dx%d, crop padding %d (want 0..%d)", ErrConfig, width, height, pad, MaxCropPad)
	}
	if b.W() < 1 || b.H() < 1 {
		return Box{}, ErrEmptyMask
	}
	if b.X1 < 0 || b.Y1 < 0 || b.X2 > w || b.Y2 > h {
		return Box{}, fmt.Errorf("%w: mask box %+v of a %dx%d image", ErrShape, b, w, h)
	}
	x1, y1 := max(b.X1-pad, 0), max(b.Y1-pad, 0)
	x2, y2 := min(b.X2+pad, w), min(b.Y2+pad, h)
	ratioCrop := float64(x2-x1) / float64(y2-y1)
	ratioProc := float64(width) / float64(height)
	if ratioCrop > ratioProc {
		y1, y2 = growTo(y1, y2, h, int(float64(x2-x1)/ratioProc-float64(y2-y1)))
	} else {
		x1, x2 = growTo(x1, x2, w, int(float64(y2-y1)*ratioProc-float64(x2-x1)))
	}
	return Box{x1, y1, x2, y2}, nil
}

// growTo widens [lo, hi) by diff (half before, the rest after), shifts it back inside
// [0, n) where it overhangs the end, then the start, and clamps it: get_crop_region's
// aspect step along one axis.
func growTo(lo, hi, n, diff int) (int, int) {
	lo -= diff / 2
	hi += diff - diff/2
	if hi >= n {
		lo -= hi - n
		hi = n
	}
	if lo < 0 {
		hi -= lo
		lo = 0
	}
	return lo, min(hi, n)
}

// plane is an 8-bit image of 1 (L) or 3 (RGB) interleaved channels.
type plane struct {
	w, h, ch int
	pix      []uint8
}

func rgbPlane(m *imageio.RGB8) plane   { return plane{m.W, m.H, 3, m.Pix} }
func grayPlane(m *imageio.Gray8) plane { return plane{m.W, m.H, 1, m.Pix} }

func (p plane) resize(w, h int, f imageio.Filter, box *imageio.Box) (plane, error) {
	if p.ch == 3 {
		r, err := imageio.ResizePIL(&imageio.RGB8{W: p.w, H: p.h, Pix: p.pix}, w, h, f, box)
		if err != nil {
			return plane{}, err
		}
		return rgbPlane(r), nil
	}
	r, err := imageio.ResizeGrayPIL(&imageio.Gray8{W: p.w, H: p.h, Pix: p.pix}, w, h, f, box)
	if err != nil {
		return plane{}, err
	}
	return grayPlane(r), nil
}

// crop is PIL's Image.crop(box) for a box inside the image.
func (p plane) crop(b Box) (plane, error) {
	if b.X1 < 0 || b.Y1 < 0 || b.X2 > p.w || b.Y2 > p.h || b.W() < 1 || b.H() < 1 {
		return plane{}, fmt.Errorf("%w: crop box %+v of a %dx%d image", ErrShape, b, p.w, p.h)
	}
	out := plane{b.W(), b.H(), p.ch, make([]uint8, b.W()*b.H()*p.ch)}
	for y := 0; y < out.h; y++ {
		copy(out.pix[y*out.w*p.ch:][:out.w*p.ch], p.pix[((b.Y1+y)*p.w+b.X1)*p.ch:][:out.w*p.ch])
	}
	return out, nil
}

// paste is PIL's Image.paste(src, (x, y)) without a mask: src clipped to dst.
func (p plane) paste(src plane, x, y int) {
	for sy := max(0, -y); sy < src.h && y+sy < p.h; sy++ {
		x0 := max(0, -x)
		n := min(src.w, p.w-x) - x0
		if n <= 0 {
			return
		}
		copy(p.pix[((y+sy)*p.w+x+x0)*p.ch:][:n*p.ch], src.pix[(sy*src.w+x0)*p.ch:][:n*p.ch])
	}
}

// resizeAndFill is diffusers' VaeImageProcessor._resize_and_fill(image, width, height):
// fit the image inside width×height keeping its aspect (Lanczos), centre it on black, and
// fill the two bands left over by stretching the image's first and last rows (or
// columns) with Pillow's default filter (bicubic) from a zero-extent box.
func resizeAndFill(img plane, width, height int) (plane, error) {
	ratio := float64(width) / float64(height)
	srcRatio := float64(img.w) / float64(img.h)
	srcW, srcH := img.w*height/img.h, img.h*width/img.w
	if ratio < srcRatio {
		srcW = width
	}
	if ratio >= srcRatio {
		srcH = height
	}
	if srcW < 1 || srcH < 1 {
		return plane{}, fmt.Errorf("%w: a %dx%d crop shrinks to %dx%d inside %dx%d", ErrShape, img.w, img.h, srcW, srcH, width, height)
	}
	resized, err := img.resize(srcW, srcH, imageio.Lanczos, nil)
	if err != nil {
		return plane{}, err
	}
	res := plane{width, height, img.ch, make([]uint8, width*height*img.ch)}
	res.paste(resized, width/2-srcW/2, height/2-srcH/2)
	switch {
	case ratio < srcRatio:
		if fh := height/2 - srcH/2; fh > 0 {
			top, err := resized.resize(width, fh, imageio.Bicubic, &imageio.Box{X0: 0, Y0: 0, X1: float64(width), Y1: 0})
			if err != nil {
				return plane{}, err
			}
			res.paste(top, 0, 0)
			rh := float64(resized.h)
			bot, err := resized.resize(width, fh, imageio.Bicubic, &imageio.Box{X0: 0, Y0: rh, X1: float64(width), Y1: rh})
			if err != nil {
				return plane{}, err
			}
			res.paste(bot, 0, fh+srcH)
		}
	case ratio > srcRatio:
		if fw := width/2 - srcW/2; fw > 0 {
			left, err := resized.resize(fw, height, imageio.Bicubic, &imageio.Box{X0: 0, Y0: 0, X1: 0, Y1: float64(height)})
			if err != nil {
				return plane{}, err
			}
			res.paste(left, 0, 0)
			rw := float64(resized.w)
			right, err := resized.resize(fw, height, imageio.Bicubic, &imageio.Box{X0: rw, Y0: 0, X1: rw, Y1: float64(height)})
			if err != nil {
				return plane{}, err
			}
			res.paste(right, fw+srcW, 0)
		}
	}
	return res, nil
}

// FillResize is the working image of diffusers' padding_mask_crop: img.crop(box) then
// _resize_and_fill to width×height (VaeImageProcessor.preprocess with crops_coords and
// resize_mode "fill"), bit for bit with Pillow.
func FillResize(img *imageio.RGB8, box Box, width, height int) (*imageio.RGB8, error) {
	c, err := rgbPlane(img).crop(box)
	if err != nil {
		return nil, err
	}
	r, err := resizeAndFill(c, width, height)
	if err != nil {
		return nil, err
	}
	return &imageio.RGB8{W: r.w, H: r.h, Pix: r.pix}, nil
}

// FillResizeMask is FillResize for the mask (mode "L", 0..255): the pipeline then
// binarises it at 128 (v/255 >= 0.5). The RGB round trip diffusers makes (the fill canvas
// is RGB, then converted back to L) is the identity on grey pixels, so it is skipped.
func FillResizeMask(mask *imageio.Gray8, box Box, width, height int) (*imageio.Gray8, error) {
	c, err := grayPlane(mask).crop(box)
	if err != nil {
		return nil, err
	}
	r, err := resizeAndFill(c, width, height)
	if err != nil {
		return nil, err
	}
	return &imageio.Gray8{W: r.w, H: r.h, Pix: r.pix}, nil
}

// CropResize is diffusers' VaeImageProcessor._resize_and_crop(image, w, h): scale the
// image to cover w×h keeping its aspect (Lanczos) and keep the centre; the uncovered
// border (when rounding leaves one) stays black, as on Pillow's canvas.
func CropResize(img *imageio.RGB8, w, h int) (*imageio.RGB8, error) {
	if w < 1 || h < 1 {
		return nil, fmt.Errorf("%w: resize to %dx%d", ErrShape, w, h)
	}
	ratio := float64(w) / float64(h)
	srcRatio := float64(img.W) / float64(img.H)
	srcW, srcH := img.W*h/img.H, img.H*w/img.W
	if ratio > srcRatio {
		srcW = w
	}
	if ratio <= srcRatio {
		srcH = h
	}
	if srcW < 1 || srcH < 1 {
		return nil, fmt.Errorf("%w: a %dx%d image shrinks to %dx%d to cover %dx%d", ErrShape, img.W, img.H, srcW, srcH, w, h)
	}
	r, err := rgbPlane(img).resize(srcW, srcH, imageio.Lanczos, nil)
	if err != nil {
		return nil, err
	}
	res := plane{w, h, 3, make([]uint8, w*h*3)}
	res.paste(r, w/2-srcW/2, h/2-srcH/2)
	return &imageio.RGB8{W: w, H: h, Pix: res.pix}, nil
}

// Overlay pastes a working-size result back into the original: diffusers' apply_overlay
// with the canvas at the original's size. The result is resized into the box
// (CropResize), and every pixel takes the pasted value where mask >= 0.5 and the
// original's elsewhere (a binary mask makes Pillow's premultiplied alpha composite exactly
// this select). mask is the original's (row-major, original.W × original.H); its masked
// pixels must lie inside box, as CropRegion's box guarantees.
func Overlay(original *imageio.RGB8, mask []float32, result *imageio.RGB8, box Box) (*imageio.RGB8, error) {
	W, H := original.W, original.H
	if len(mask) != W*H {
		return nil, fmt.Errorf("%w: mask of %d values for a %dx%d image", ErrShape, len(mask), W, H)
	}
	if box.X1 < 0 || box.Y1 < 0 || box.X2 > W || box.Y2 > H || box.W() < 1 || box.H() < 1 {
		return nil, fmt.Errorf("%w: box %+v of a %dx%d image", ErrShape, box, W, H)
	}
	pasted, err := CropResize(result, box.W(), box.H())
	if err != nil {
		return nil, err
	}
	out := &imageio.RGB8{W: W, H: H, Pix: append([]uint8(nil), original.Pix...)}
	for y := 0; y < H; y++ {
		for x := 0; x < W; x++ {
			if mask[y*W+x] < 0.5 {
				continue
			}
			if x < box.X1 || x >= box.X2 || y < box.Y1 || y >= box.Y2 {
				return nil, fmt.Errorf("%w: masked pixel %d,%d outside the box %+v", ErrShape, x, y, box)
			}
			copy(out.Pix[3*(y*W+x):][:3], pasted.Pix[3*((y-box.Y1)*box.W()+x-box.X1):][:3])
		}
	}
	return out, nil
}
