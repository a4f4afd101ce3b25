package cpu

import (
	"fmt"
	"math"

	"github.com/grefine/grefine/engine"
)

const cubicA = float32(-0.75)

// cubic1 and cubic2 are Keys' cubic kernel for |t| <= 1 and 1 < |t| < 2 (PyTorch's
// cubic_convolution1/2).
func cubic1(t float32) float32 { return ((cubicA+2)*t-(cubicA+3))*t*t + 1 }
func cubic2(t float32) float32 { return ((cubicA*t-5*cubicA)*t+8*cubicA)*t - 4*cubicA }

// srcCoord is (dst + 0.5)*scale - 0.5 rounded after each operation (float32, no fusion).
func srcCoord(dst int, scale float32) float32 {
	return float32(float32(float32(dst)+0.5)*scale) - 0.5
}

func resizeScale(in, out int) float32 { return float32(in) / float32(out) }

type cubicTaps struct {
	idx [4]int
	w   [4]float32
}

func newCubicTaps(dst, in int, scale float32) cubicTaps {
	f := srcCoord(dst, scale)
	i0 := int(math.Floor(float64(f)))
	if i0 > in-1 {
		i0 = in - 1
	}
	t := f - float32(i0)
	if t < 0 {
		t = 0
	}
	if t > 1 {
		t = 1
	}
	var c cubicTaps
	c.w = [4]float32{cubic2(t + 1), cubic1(t), cubic1(1 - t), cubic2(2 - t)}
	for k := range c.idx {
		c.idx[k] = min(max(i0-1+k, 0), in-1)
	}
	return c
}

func (ty *cubicTaps) sample(s []float32, inW int, tx *cubicTaps) float32 {
	var acc float32
	for k := 0; k < 4; k++ {
		row := s[ty.idx[k]*inW:]
		var r float32
		for j := 0; j < 4; j++ {
			r += tx.w[j] * row[tx.idx[j]]
		}
		acc += ty.w[k] * r
	}
	return acc
}

type linearTaps struct {
	i0, i1 int
	w0, w1 float32
}

func newLinearTaps(dst, in int, scale float32) linearTaps {
	f := srcCoord(dst, scale)
	if f < 0 {
		f = 0
	}
	var l linearTaps
	l.i0 = int(f)
	l.i1 = l.i0
	if l.i0 < in-1 {
		l.i1++
	}
	l.w1 = f - float32(l.i0)
	l.w0 = 1 - l.w1
	return l
}

func nearestIndex(dst, in int, scale float32) int {
	return min(int(math.Floor(float64(float32(dst)*scale))), in-1)
}

func checkResize(op string, src []float32, planes, inH, inW int, dst []float32, outH, outW int) error {
	if planes < 0 || inH < 0 || inW < 0 || outH < 0 || outW < 0 {
		return fmt.Errorf("%w: cpu: %s: negative size", engine.ErrShape, op)
	}
	if len(src) != planes*inH*inW || len(dst) != planes*outH*outW {
		return fmt.Errorf("%w: cpu: %s: %d planes %dx%d -> %dx%d need %d and %d values, have %d and %d",
			engine.ErrShape, op, planes, inH, inW, outH, outW, planes*inH*inW, planes*outH*outW, len(src), len(dst))
	}
	if planes*outH*outW > 0 && inH*inW == 0 {
		return fmt.Errorf("%w: cpu: %s: empty input %dx%d", engine.ErrShape, op, inH, inW)
	}
	return nil
}

// ResizeBicubic resizes planes of inH×inW (src) to outH×outW (dst) like PyTorch
// F.interpolate(mode='bicubic', align_corners=False), without clamping the result.
// Reference loop, per plane n and output pixel (y, x), in float32:
//
//	fy = (y+0.5)*inH/outH - 0.5; y0 = min(floor(fy), inH-1); ty = clamp(fy-y0, 0, 1)
//	wy = [c2(ty+1), c1(ty), c1(1-ty), c2(2-ty)]   (Keys, A = -0.75); rows clamp(y0-1+k)
//	(same for x); dst = Σ_k wy[k] * Σ_j wx[j] * src[row_k, col_j]
func ResizeBicubic(src []float32, planes, inH, inW int, dst []float32, outH, outW int) error {
	if err := checkResize("ResizeBicubic", src, planes, inH, inW, dst, outH, outW); err != nil {
		return err
	}
	if planes*outH*outW == 0 {
		return nil
	}
	sy, sx := resizeScale(inH, outH), resizeScale(inW, outW)
	tx := make([]cubicTaps, outW)
	for x := range tx {
		tx[x] = newCubicTaps(x, inW, sx)
	}
	for y := 0; y < outH; y++ {
		ty := newCubicTaps(y, inH, sy)
		for n := 0; n < planes; n++ {
			s := src[n*inH*inW : (n+1)*inH*inW]
			d := dst[(n*outH+y)*outW : (n*outH+y+1)*outW]
			for x := range d {
				d[x] = ty.sample(s, inW, &tx[x])
			}
		}
	}
	return nil
}

// ResizeBilinear resizes like PyTorch F.interpolate(mode='bilinear',
// align_corners=False). Reference loop, per plane and output pixel (y, x), in float32:
//
//	fy = max((y+0.5)*inH/outH - 0.5, 0); y0 = int(fy); y1 = y0 + (y0 < inH-1); ly = fy-y0
//	dst = (1-ly)*((1-lx)*s[y0,x0] + lx*s[y0,x1]) + ly*((1-lx)*s[y1,x0] + lx*s[y1,x1])
func ResizeBilinear(src []float32, planes, inH, inW int, dst []float32, outH, outW int) error {
	if err := checkResize("ResizeBilinear", src, planes, inH, inW, dst, outH, outW); err != nil {
		return err
	}
	if planes*outH*outW == 0 {
		return nil
	}
	sy, sx := resizeScale(inH, outH), resizeScale(inW, outW)
	tx := make([]linearTaps, outW)
	for x := range tx {
		tx[x] = newLinearTaps(x, inW, sx)
	}
	for y := 0; y < outH; y++ {
		ty := newLinearTaps(y, inH, sy)
		for n := 0; n < planes; n++ {
			r0 := src[(n*inH+ty.i0)*inW:]
			r1 := src[(n*inH+ty.i1)*inW:]
			d := dst[(n*outH+y)*outW : (n*outH+y+1)*outW]
			for x := range d {
				t := &tx[x]
				a := t.w0*r0[t.i0] + t.w1*r0[t.i1]
				b := t.w0*r1[t.i0] + t.w1*r1[t.i1]
				d[x] = ty.w0*a + ty.w1*b
			}
		}
	}
	return nil
}

// DownsampleNearest resizes like PyTorch F.interpolate(mode='nearest') (any sizes, not
// only down). Reference loop: dst[n,y,x] = src[n, min(floor(y*(inH/outH)), inH-1),
// min(floor(x*(inW/outW)), inW-1)], the scales in float32.
func DownsampleNearest(src []float32, planes, inH, inW int, dst []float32, outH, outW int) error {
	if err := checkResize("DownsampleNearest", src, planes, inH, inW, dst, outH, outW); err != nil {
		return err
	}
	if planes*outH*outW == 0 {
		return nil
	}
	sy, sx := resizeScale(inH, outH), resizeScale(inW, outW)
	cols := make([]int, outW)
	for x := range cols {
		cols[x] = nearestIndex(x, inW, sx)
	}
	for n := 0; n < planes; n++ {
		for y := 0; y < outH; y++ {
			row := src[(n*inH+nearestIndex(y, inH, sy))*inW:]
			d := dst[(n*outH+y)*outW : (n*outH+y+1)*outW]
			for x, c := range cols {
				d[x] = row[c]
			}
		}
	}
	return nil
}

// Resize dispatches to ResizeBicubic, ResizeBilinear or DownsampleNearest.
func Resize(mode engine.ResizeMode, src []float32, planes, inH, inW int, dst []float32, outH, outW int) error {
	switch mode {
	case engine.ResizeNearest:
		return DownsampleNearest(src, planes, inH, inW, dst, outH, outW)
	case engine.ResizeBilinear:
		return ResizeBilinear(src, planes, inH, inW, dst, outH, outW)
	case engine.ResizeBicubic:
		return ResizeBicubic(src, planes, inH, inW, dst, outH, outW)
	}
	return fmt.Errorf("%w: cpu: unknown resize mode %v", engine.ErrShape, mode)
}
