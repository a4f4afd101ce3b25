package cpu

import (
	"fmt"

	"github.com/grefine/grefine/engine"
)

// Large images (issue 22): the window copies and weighted sums of tiled denoising, the
// blend of a tiled VAE and the bounding box of a mask.

// TileDims are the sizes of a TileGather or TileAccumulate: src (or acc) [R, C, H, W] and
// Copies·NB windows [.., C, TH, TW].
type TileDims struct {
	R, C, H, W int
	Copies, NB int
}

// TileGather cuts t's windows out of src [R, C, H, W] into dst [Copies·n, C, TH, TW]
// (n = len(t.Y), R = 1 or Copies). Reference loop:
//
//	for j < Copies, k < n, c < C, y < TH, x < TW:
//	    dst[((j·n+k)·C+c)·TH+y, x] = src[((r·C+c)·H + Y[k]+y)·W + X[k]+x],  r = R == 1 ? 0 : j
//
// This is grf_tile_gather's reference.
func TileGather(src, dst []float32, d TileDims, t engine.Tiles) error {
	n := len(t.Y)
	if err := t.Check("cpu: TileGather", d.H, d.W); err != nil {
		return err
	}
	if d.C < 1 || d.Copies < 1 || (d.R != 1 && d.R != d.Copies) || len(src) != d.R*d.C*d.H*d.W || len(dst) != d.Copies*n*d.C*t.TH*t.TW {
		return fmt.Errorf("%w: cpu: TileGather: %d values as [%d,%d,%d,%d] into %d as %d copies of %d %dx%d windows",
			engine.ErrShape, len(src), d.R, d.C, d.H, d.W, len(dst), d.Copies, n, t.TW, t.TH)
	}
	for j := 0; j < d.Copies; j++ {
		r := j
		if d.R == 1 {
			r = 0
		}
		for k := 0; k < n; k++ {
			for c := 0; c < d.C; c++ {
				for y := 0; y < t.TH; y++ {
					o := (((j*n+k)*d.C+c)*t.TH + y) * t.TW
					i := ((r*d.C+c)*d.H+t.Y[k]+y)*d.W + t.X[k]
					copy(dst[o:o+t.TW], src[i:i+t.TW])
				}
			}
		}
	}
	return nil
}

// TileAccumulate adds the first n = len(t.Y) windows of pred [Copies·NB, C, TH, TW],
// weighted by weights [TH, TW], into acc [Copies, C, H, W] and the weights into wsum
// [H, W], window by window in order (the summation order of pipeline/tile's
// Accumulator, so its bits). Reference loop (float32; each product rounded, then the sum):
//
//	for k < n, y < TH, x < TW:
//	    for j < Copies, c < C:
//	        acc[j, c, Y[k]+y, X[k]+x] += float32(pred[j·NB+k, c, y, x] · weights[y, x])
//	    wsum[Y[k]+y, X[k]+x] += weights[y, x]
//
// This is grf_tile_accumulate's reference.
func TileAccumulate(pred, weights, acc, wsum []float32, d TileDims, t engine.Tiles) error {
	n := len(t.Y)
	if err := t.Check("cpu: TileAccumulate", d.H, d.W); err != nil {
		return err
	}
	if d.C < 1 || d.Copies < 1 || d.NB < n || len(pred) != d.Copies*d.NB*d.C*t.TH*t.TW || len(weights) != t.TH*t.TW ||
		len(acc) != d.Copies*d.C*d.H*d.W || len(wsum) != d.H*d.W {
		return fmt.Errorf("%w: cpu: TileAccumulate: pred %d, weights %d, acc %d, wsum %d values for %d copies of %d (of %d) %dx%d windows of [%d,%d,%d]",
			engine.ErrShape, len(pred), len(weights), len(acc), len(wsum), d.Copies, n, d.NB, t.TW, t.TH, d.C, d.H, d.W)
	}
	for k := 0; k < n; k++ {
		for y := 0; y < t.TH; y++ {
			ww := weights[y*t.TW:][:t.TW]
			for j := 0; j < d.Copies; j++ {
				for c := 0; c < d.C; c++ {
					dst := acc[((j*d.C+c)*d.H+t.Y[k]+y)*d.W+t.X[k]:][:t.TW]
					src := pred[(((j*d.NB+k)*d.C+c)*t.TH+y)*t.TW:][:t.TW]
					for x := range dst {
						dst[x] += float32(src[x] * ww[x])
					}
				}
			}
			ws := wsum[(t.Y[k]+y)*d.W+t.X[k]:][:t.TW]
			for x, v := range ww {
				ws[x] += v
			}
		}
	}
	return nil
}

// VAEBlend is diffusers' blend_v (vertical) or blend_h of a tiled VAE, in place on b:
// a [C, ah, aw] is the neighbour above (to the left of) b [C, bh, bw]. Reference loop
// (float32 products, each rounded, then the sum; the weights in float64, rounded):
//
//	vertical (aw == bw): e = min(ah, bh, extent); for y < e, c, x:
//	    b[c,y,x] = float32(a[c,ah-e+y,x]·float32(1-y/e)) + float32(b[c,y,x]·float32(y/e))
//	horizontal (ah == bh): e = min(aw, bw, extent); for x < e, c, y:
//	    b[c,y,x] = float32(a[c,y,aw-e+x]·float32(1-x/e)) + float32(b[c,y,x]·float32(x/e))
//
// This is grf_vae_blend's reference (pipeline/tile's Stitch runs the same loops).
func VAEBlend(a, b []float32, C, ah, aw, bh, bw, extent int, vertical bool) error {
	if C < 1 || ah < 1 || aw < 1 || bh < 1 || bw < 1 || extent < 0 || len(a) != C*ah*aw || len(b) != C*bh*bw ||
		(vertical && aw != bw) || (!vertical && ah != bh) {
		return fmt.Errorf("%w: cpu: VAEBlend: [%d,%d,%d] into [%d,%d,%d] (%d and %d values), extent %d, vertical %v",
			engine.ErrShape, C, ah, aw, C, bh, bw, len(a), len(b), extent, vertical)
	}
	if vertical {
		e := min(ah, bh, extent)
		for y := 0; y < e; y++ {
			wa, wb := float32(1-float64(y)/float64(e)), float32(float64(y)/float64(e))
			for c := 0; c < C; c++ {
				ra := a[(c*ah+ah-e+y)*aw:][:aw]
				rb := b[(c*bh+y)*bw:][:bw]
				for x := range rb {
					rb[x] = float32(ra[x]*wa) + float32(rb[x]*wb)
				}
			}
		}
		return nil
	}
	e := min(aw, bw, extent)
	for x := 0; x < e; x++ {
		wa, wb := float32(1-float64(x)/float64(e)), float32(float64(x)/float64(e))
		for c := 0; c < C; c++ {
			for y := 0; y < bh; y++ {
				i := (c*bh+y)*bw + x
				b[i] = float32(a[(c*ah+y)*aw+aw-e+x]*wa) + float32(b[i]*wb)
			}
		}
	}
	return nil
}

// BoundingBox is the box [x1, y1, x2, y2) of the values >= bound of planes [.., h, w]
// (the union over the planes; all zeros when no value reaches bound). Reference loop:
//
//	x1, y1, x2, y2 = w, h, -1, -1
//	for each plane, y, x with src[., y, x] >= bound:
//	    x1, y1 = min(x1, x), min(y1, y); x2, y2 = max(x2, x), max(y2, y)
//	box = (x1, y1, x2+1, y2+1), or (0, 0, 0, 0) when x2 < 0
//
// This is grf_bounding_box's reference.
func BoundingBox(src []float32, h, w int, bound float32) ([4]int64, error) {
	if h < 0 || w < 0 || h*w == 0 && len(src) != 0 || h*w > 0 && len(src)%(h*w) != 0 {
		return [4]int64{}, fmt.Errorf("%w: cpu: BoundingBox: %d values as %dx%d planes", engine.ErrShape, len(src), w, h)
	}
	x1, y1, x2, y2 := w, h, -1, -1
	for i, v := range src {
		if v >= bound {
			p := i % (h * w)
			y, x := p/w, p%w
			x1, y1, x2, y2 = min(x1, x), min(y1, y), max(x2, x), max(y2, y)
		}
	}
	if x2 < 0 {
		return [4]int64{}, nil
	}
	return [4]int64{int64(x1), int64(y1), int64(x2 + 1), int64(y2 + 1)}, nil
}

// tileDims reads the shapes of a TileGather (src, dst) or TileAccumulate (acc, pred):
// whole [R, C, H, W] and windows [Copies·NB, C, TH, TW], with Copies = R unless one.
func tileDims(op string, whole, wins engine.Shape, t engine.Tiles, copiesFromWhole bool) (TileDims, error) {
	if len(whole) != 4 || len(wins) != 4 || whole[1] != wins[1] || wins[2] != int64(t.TH) || wins[3] != int64(t.TW) {
		return TileDims{}, fmt.Errorf("%w: cpu: %s: shapes %v and %v for %dx%d windows", engine.ErrShape, op, whole, wins, t.TW, t.TH)
	}
	d := TileDims{R: int(whole[0]), C: int(whole[1]), H: int(whole[2]), W: int(whole[3])}
	n := int64(len(t.Y))
	if copiesFromWhole {
		d.Copies = d.R
		if d.Copies < 1 || wins[0]%whole[0] != 0 {
			return d, fmt.Errorf("%w: cpu: %s: %d window rows for %d copies", engine.ErrShape, op, wins[0], whole[0])
		}
		d.NB = int(wins[0] / whole[0])
	} else {
		if n < 1 || wins[0]%n != 0 {
			return d, fmt.Errorf("%w: cpu: %s: %d window rows for %d windows", engine.ErrShape, op, wins[0], n)
		}
		d.Copies, d.NB = int(wins[0]/n), int(n)
	}
	return d, nil
}

// TileGather implements engine.Ops with TileGather.
func (s *Stream) TileGather(src, dst engine.Tensor, t engine.Tiles) error {
	if err := s.live("TileGather"); err != nil {
		return err
	}
	a, err := host("TileGather", "src", src, engine.Float32)
	if err != nil {
		return err
	}
	b, err := host("TileGather", "dst", dst, engine.Float32)
	if err != nil {
		return err
	}
	d, err := tileDims("TileGather", a.Shape(), b.Shape(), t, false)
	if err != nil {
		return err
	}
	return TileGather(a.F32, b.F32, d, t)
}

// TileAccumulate implements engine.Ops with TileAccumulate.
func (s *Stream) TileAccumulate(pred, weights, acc, wsum engine.Tensor, t engine.Tiles) error {
	if err := s.live("TileAccumulate"); err != nil {
		return err
	}
	var h [4]*engine.HostTensor
	for i, x := range []struct {
		name string
		t    engine.Tensor
	}{{"pred", pred}, {"weights", weights}, {"acc", acc}, {"wsum", wsum}} {
		var err error
		if h[i], err = host("TileAccumulate", x.name, x.t, engine.Float32); err != nil {
			return err
		}
	}
	d, err := tileDims("TileAccumulate", h[2].Shape(), h[0].Shape(), t, true)
	if err != nil {
		return err
	}
	return TileAccumulate(h[0].F32, h[1].F32, h[2].F32, h[3].F32, d, t)
}

// VAEBlend implements engine.Ops with VAEBlend.
func (s *Stream) VAEBlend(a, b engine.Tensor, extent int, vertical bool) error {
	if err := s.live("VAEBlend"); err != nil {
		return err
	}
	x, err := host("VAEBlend", "a", a, engine.Float32)
	if err != nil {
		return err
	}
	y, err := host("VAEBlend", "b", b, engine.Float32)
	if err != nil {
		return err
	}
	C, ah, aw, err := x.Shape().Planes("cpu: VAEBlend")
	if err != nil {
		return err
	}
	Cb, bh, bw, err := y.Shape().Planes("cpu: VAEBlend")
	if err != nil {
		return err
	}
	if C != Cb {
		return fmt.Errorf("%w: cpu: VAEBlend: %d and %d planes", engine.ErrShape, C, Cb)
	}
	return VAEBlend(x.F32, y.F32, int(C), int(ah), int(aw), int(bh), int(bw), extent, vertical)
}

// BoundingBox implements engine.Ops with BoundingBox.
func (s *Stream) BoundingBox(src engine.Tensor, bound float32, dst engine.Tensor) error {
	if err := s.live("BoundingBox"); err != nil {
		return err
	}
	a, err := host("BoundingBox", "src", src, engine.Float32)
	if err != nil {
		return err
	}
	d, err := host("BoundingBox", "dst", dst, engine.Int64)
	if err != nil {
		return err
	}
	if d.Len() != 4 {
		return fmt.Errorf("%w: cpu: BoundingBox: dst has shape %v, want [4]", engine.ErrShape, d.Shape())
	}
	_, h, w, err := a.Shape().Planes("cpu: BoundingBox")
	if err != nil {
		return err
	}
	box, err := BoundingBox(a.F32, int(h), int(w), bound)
	if err != nil {
		return err
	}
	copy(d.I64, box[:])
	return nil
}
