package refine

import (
	"fmt"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/pipeline/tile"
)

// Mask-cropped repair (diffusers' padding_mask_crop) on the device: the working image and
// mask are the padded box around the mask, cropped and fitted to the working size
// (_resize_and_fill); the result is fitted back into the box (_resize_and_crop) and
// overlaid where the mask is set (apply_overlay). Every resize is Pillow 13's (Lanczos,
// bicubic with zero-extent boxes for the fill bands), every paste a strided copy.

// CropReport says how stage 1 was cropped.
type CropReport struct {
	// Box is [x1, y1, x2, y2) in the input's pixels.
	Box     [4]int `json:"box"`
	Padding int    `json:"padding"`
	// Width, Height are the working size the box was fitted to.
	Width  int `json:"width"`
	Height int `json:"height"`
	// BoxShare is the box's share of the image's pixels.
	BoxShare float64 `json:"box_share"`
	Reason   string  `json:"reason"`
}

// cropChoice decides stage 1's crop for a w×h input worked at W×H whose mask covers bbox
// (x1, y1, x2, y2; empty: no mask): with Crop set, when the image is larger than the
// working size on some side (the crop gains resolution; CropAlways: always) and the
// padded box covers at most half of the image. nil: no crop.
func (r *Refiner) cropChoice(bbox [4]int, w, h, W, H int) *CropReport {
	c := r.cfg
	if !c.Crop || (!c.CropAlways && w <= W && h <= H) {
		return nil
	}
	b, err := tile.GrowBox(tile.Box{X1: bbox[0], Y1: bbox[1], X2: bbox[2], Y2: bbox[3]}, w, h, W, H, c.CropPadding)
	if err != nil {
		return nil
	}
	share := float64(b.W()) * float64(b.H()) / (float64(w) * float64(h))
	if !c.CropAlways && share > 0.5 {
		return nil
	}
	why := fmt.Sprintf("the padded mask box covers %.1f %% of the %dx%d image: stage 1 works on it at %dx%d", 100*share, w, h, W, H)
	return &CropReport{Box: [4]int{b.X1, b.Y1, b.X2, b.Y2}, Padding: c.CropPadding, Width: W, Height: H, BoxShare: share, Reason: why}
}

// pasteRGB copies src (uint8 [sh, sw, 3]) into dst (uint8 [dh, dw, 3]) with its corner at
// (x, y), clipped to dst (PIL's Image.paste without a mask; negative offsets crop src).
func (r *Refiner) pasteRGB(dst, src engine.Tensor, x, y int) error {
	dh, dw := int(dst.Shape()[0]), int(dst.Shape()[1])
	sh, sw := int(src.Shape()[0]), int(src.Shape()[1])
	sx0, sy0 := max(0, -x), max(0, -y)
	cols, rows := min(sw, dw-x)-sx0, min(sh, dh-y)-sy0
	if cols <= 0 || rows <= 0 {
		return nil
	}
	return r.s.Copy2D(dst, src, engine.Copy2D{Rows: int64(rows), Cols: int64(3 * cols),
		DstOffset: int64(3 * ((y+sy0)*dw + x + sx0)), DstPitch: int64(3 * dw),
		SrcOffset: int64(3 * (sy0*sw + sx0)), SrcPitch: int64(3 * sw)})
}

// cropRGB cuts box out of img (uint8 [H, W, 3]) into a new tensor of scp (PIL's crop).
func (r *Refiner) cropRGB(scp *scope, img engine.Tensor, b [4]int) (engine.Tensor, error) {
	W := int64(img.Shape()[1])
	bw, bh := int64(b[2]-b[0]), int64(b[3]-b[1])
	out, err := scp.alloc(engine.Uint8, engine.Shape{bh, bw, 3})
	if err != nil {
		return nil, err
	}
	return out, r.s.Copy2D(out, img, engine.Copy2D{Rows: bh, Cols: 3 * bw, DstPitch: 3 * bw,
		SrcOffset: 3 * (int64(b[1])*W + int64(b[0])), SrcPitch: 3 * W})
}

// fitSize is the size diffusers resizes a w×h image to against a W×H canvas, aspect kept
// (integer division as its code rounds): inside it (_resize_and_fill) or covering it
// (_resize_and_crop, cover).
func fitSize(w, h, W, H int, cover bool) (int, int) {
	ratio, srcRatio := float64(W)/float64(H), float64(w)/float64(h)
	fw, fh := w*H/h, h*W/w
	if cover {
		if ratio > srcRatio {
			return W, fh
		}
		return fw, H
	}
	if ratio < srcRatio {
		return W, fh
	}
	return fw, H
}

// resize is a Pillow resize of src (uint8 [h, w, 3]) into a new tensor of scp.
func (r *Refiner) resize(scp *scope, src engine.Tensor, w, h int, rs engine.Resample) (engine.Tensor, error) {
	out, err := scp.alloc(engine.Uint8, engine.Shape{int64(h), int64(w), 3})
	if err != nil {
		return nil, err
	}
	return out, r.s.ResizeImage(src, out, rs)
}

// resizeAndFill is diffusers' _resize_and_fill(img, width, height) (tile.FillResize's
// steps): fit img (uint8 [h, w, 3]) inside width×height keeping its aspect (Lanczos),
// centre it on black, and fill the two bands left over by stretching its first and last
// rows (or columns) with bicubic from zero-extent boxes.
func (r *Refiner) resizeAndFill(scp *scope, img engine.Tensor, width, height int) (engine.Tensor, error) {
	ih, iw := int(img.Shape()[0]), int(img.Shape()[1])
	ratio, srcRatio := float64(width)/float64(height), float64(iw)/float64(ih)
	srcW, srcH := fitSize(iw, ih, width, height, false)
	if srcW < 1 || srcH < 1 {
		return nil, fmt.Errorf("%w: a %dx%d crop shrinks to %dx%d inside %dx%d", ErrInput, iw, ih, srcW, srcH, width, height)
	}
	resized, err := r.resize(scp, img, srcW, srcH, engine.Resample{Filter: engine.ResampleLanczos})
	if err != nil {
		return nil, err
	}
	res, err := scp.alloc(engine.Uint8, engine.Shape{int64(height), int64(width), 3})
	if err != nil {
		return nil, err
	}
	if err := r.s.Zero(res); err != nil {
		return nil, err
	}
	if err := r.pasteRGB(res, resized, width/2-srcW/2, height/2-srcH/2); err != nil {
		return nil, err
	}
	band := func(w, h int, box [4]float64, x, y int) error {
		b, err := r.resize(scp, resized, w, h, engine.Resample{Filter: engine.ResampleBicubic, Box: &box})
		if err != nil {
			return err
		}
		return r.pasteRGB(res, b, x, y)
	}
	switch {
	case ratio < srcRatio:
		if fh := height/2 - srcH/2; fh > 0 {
			if err := band(width, fh, [4]float64{0, 0, float64(width), 0}, 0, 0); err != nil {
				return nil, err
			}
			if err := band(width, fh, [4]float64{0, float64(srcH), float64(width), float64(srcH)}, 0, fh+srcH); err != nil {
				return nil, err
			}
		}
	case ratio > srcRatio:
		if fw := width/2 - srcW/2; fw > 0 {
			if err := band(fw, height, [4]float64{0, 0, 0, float64(height)}, 0, 0); err != nil {
				return nil, err
			}
			if err := band(fw, height, [4]float64{float64(srcW), 0, float64(srcW), float64(height)}, fw+srcW, 0); err != nil {
				return nil, err
			}
		}
	}
	return res, nil
}

// cropWorking is stage 1's working image and mask of a crop: img (uint8 [H, W, 3]) and
// mask ([.., H, W], >= 0.5 masked) cut to the box and fitted to width×height as diffusers'
// preprocess(crops_coords, resize_mode="fill") does, the mask as an 8-bit 0/255 image
// then binarised at 128. It returns the working image, planar [1, 3, height, width] in
// [0, 1], the working mask [1, height, width] (0/1) and the box's binary mask [bh, bw]
// (for the overlay), all owned by scp.
func (r *Refiner) cropWorking(scp *scope, img, mask engine.Tensor, b [4]int, width, height int) (planar, wmask, boxMask engine.Tensor, err error) {
	s := r.s
	W := int64(img.Shape()[1])
	bw, bh := int64(b[2]-b[0]), int64(b[3]-b[1])
	c, err := r.cropRGB(scp, img, b)
	if err != nil {
		return nil, nil, nil, err
	}
	fill, err := r.resizeAndFill(scp, c, width, height)
	if err != nil {
		return nil, nil, nil, err
	}
	if planar, err = scp.alloc(engine.Float32, engine.Shape{1, 3, int64(height), int64(width)}); err != nil {
		return nil, nil, nil, err
	}
	if err := s.ToPlanar(fill, planar, [3]float32{}, [3]float32{1, 1, 1}); err != nil {
		return nil, nil, nil, err
	}
	// The mask: the box, binarised, as 0/255 in three equal channels (Pillow resamples each
	// channel alone, so every channel is mode L's result), filled like the image.
	if boxMask, err = scp.alloc(engine.Float32, engine.Shape{bh, bw}); err != nil {
		return nil, nil, nil, err
	}
	if err := s.Copy2D(boxMask, mask, engine.Copy2D{Rows: bh, Cols: bw, DstPitch: bw, SrcOffset: int64(b[1])*W + int64(b[0]), SrcPitch: W}); err != nil {
		return nil, nil, nil, err
	}
	if err := s.Pointwise(engine.Pointwise{Op: engine.PointAtLeast, Src: boxMask, Dst: boxMask, A: 0.5}); err != nil {
		return nil, nil, nil, err
	}
	m3, err := scp.alloc(engine.Float32, engine.Shape{3, bh, bw})
	if err != nil {
		return nil, nil, nil, err
	}
	if err := s.Pointwise(engine.Pointwise{Op: engine.PointScale, Src: boxMask, Dst: m3, S: 1}); err != nil {
		return nil, nil, nil, err
	}
	m8, err := scp.alloc(engine.Uint8, engine.Shape{bh, bw, 3})
	if err != nil {
		return nil, nil, nil, err
	}
	if err := s.FromPlanar(m3, m8); err != nil {
		return nil, nil, nil, err
	}
	mf, err := r.resizeAndFill(scp, m8, width, height)
	if err != nil {
		return nil, nil, nil, err
	}
	mp, err := scp.alloc(engine.Float32, engine.Shape{3, int64(height), int64(width)})
	if err != nil {
		return nil, nil, nil, err
	}
	if err := s.ToPlanar(mf, mp, [3]float32{}, [3]float32{1, 1, 1}); err != nil {
		return nil, nil, nil, err
	}
	if wmask, err = scp.alloc(engine.Float32, engine.Shape{1, int64(height), int64(width)}); err != nil {
		return nil, nil, nil, err
	}
	m0, err := scp.view(mp, 0, wmask.Shape())
	if err != nil {
		return nil, nil, nil, err
	}
	return planar, wmask, boxMask, s.Pointwise(engine.Pointwise{Op: engine.PointAtLeast, Src: m0, Dst: wmask, A: 0.5})
}

// overlay is diffusers' apply_overlay with the canvas at the input's size: the working
// result (uint8 [height, width, 3]) resized to cover the box and centre-cropped
// (_resize_and_crop, Lanczos), taken where the box's mask is set, the input's pixels
// elsewhere. It returns a new image (uint8, the input's size) owned by scp; img is not
// written.
func (r *Refiner) overlay(scp *scope, img, result, boxMask engine.Tensor, b [4]int) (engine.Tensor, error) {
	s := r.s
	bw, bh := b[2]-b[0], b[3]-b[1]
	rh, rw := int(result.Shape()[0]), int(result.Shape()[1])
	srcW, srcH := fitSize(rw, rh, bw, bh, true)
	if srcW < 1 || srcH < 1 {
		return nil, fmt.Errorf("%w: a %dx%d result shrinks to %dx%d to cover %dx%d", ErrInput, rw, rh, srcW, srcH, bw, bh)
	}
	cover, err := r.resize(scp, result, srcW, srcH, engine.Resample{Filter: engine.ResampleLanczos})
	if err != nil {
		return nil, err
	}
	pasted, err := scp.alloc(engine.Uint8, engine.Shape{int64(bh), int64(bw), 3})
	if err != nil {
		return nil, err
	}
	if err := s.Zero(pasted); err != nil {
		return nil, err
	}
	if err := r.pasteRGB(pasted, cover, bw/2-srcW/2, bh/2-srcH/2); err != nil {
		return nil, err
	}
	orig, err := r.cropRGB(scp, img, b)
	if err != nil {
		return nil, err
	}
	if err := s.Paste(pasted, orig, boxMask); err != nil { // the input's pixels outside the mask
		return nil, err
	}
	out, err := scp.alloc(engine.Uint8, img.Shape())
	if err != nil {
		return nil, err
	}
	if err := s.Copy(out, img); err != nil {
		return nil, err
	}
	return out, r.pasteRGB(out, pasted, b[0], b[1])
}
