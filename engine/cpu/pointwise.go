package cpu

import (
	"fmt"

	"github.com/grefine/grefine/engine"
)

// PointwiseArgs are Pointwise's slices: Src (n values), the optional Src2 (n values, Lerp
// and Maximum) and Mask (MaskedAffine, Divide: n/planes values), and Dst (n values; Scale: a
// positive multiple of n).
type PointwiseArgs struct {
	Dst, Src, Src2, Mask []float32
}

// Pointwise runs one elementwise operation (engine.PointwiseOp documents each), in
// float32 unless stated, one rounding per operation:
//
//	Affine:       dst[i] = src[i]*A + B; if Clamp01: dst[i] = min(max(dst[i], 0), 1)
//	Scale:        dst[j*n+i] = float32(float64(src[i]) * S)
//	Unscale:      dst[i] = float32(float64(src[i]) / S)
//	Lerp:         dst[i] = float32(S*float64(src[i]) + T*float64(src2[i]))
//	Maximum:      dst[i] = max(src[i], src2[i])
//	Greater:      dst[i] = src[i] > A ? 1 : 0
//	AtLeast:      dst[i] = src[i] >= A ? 1 : 0
//	MaskedAffine: dst[c*m+p] = mask[p] < 0.5 ? src[c*m+p]*A + B : 0   (m = len(mask))
//	Divide:       dst[c*m+p] = src[c*m+p] / mask[p]                      (m = len(mask))
//
// Dst may alias Src or Src2 (except Scale with more than one copy). This is
// grf_pointwise's reference.
func Pointwise(p engine.Pointwise, a PointwiseArgs) error {
	n := len(a.Src)
	bad := false
	switch p.Op {
	case engine.PointScale:
		bad = n == 0 && len(a.Dst) != 0 || n > 0 && (len(a.Dst) == 0 || len(a.Dst)%n != 0)
	case engine.PointLerp, engine.PointMaximum:
		bad = len(a.Dst) != n || len(a.Src2) != n
	case engine.PointMaskedAffine, engine.PointDivide:
		bad = len(a.Dst) != n || len(a.Mask) == 0 && n != 0 || len(a.Mask) > 0 && n%len(a.Mask) != 0
	case engine.PointAffine, engine.PointUnscale, engine.PointGreater, engine.PointAtLeast:
		bad = len(a.Dst) != n
	default:
		return fmt.Errorf("%w: cpu: Pointwise: unknown operation %v", engine.ErrShape, p.Op)
	}
	if bad {
		return fmt.Errorf("%w: cpu: Pointwise %v: %d values into %d (src2 %d, mask %d)", engine.ErrShape, p.Op, n, len(a.Dst), len(a.Src2), len(a.Mask))
	}
	src, dst := a.Src, a.Dst
	switch p.Op {
	case engine.PointAffine:
		for i, v := range src {
			y := v*p.A + p.B
			if p.Clamp01 {
				y = min(max(y, 0), 1)
			}
			dst[i] = y
		}
	case engine.PointScale:
		for i, v := range src {
			y := float32(float64(v) * p.S)
			for j := i; j < len(dst); j += n {
				dst[j] = y
			}
		}
	case engine.PointUnscale:
		for i, v := range src {
			dst[i] = float32(float64(v) / p.S)
		}
	case engine.PointLerp:
		for i, v := range src {
			dst[i] = float32(p.S*float64(v) + p.T*float64(a.Src2[i]))
		}
	case engine.PointMaximum:
		for i, v := range src {
			dst[i] = max(v, a.Src2[i])
		}
	case engine.PointGreater:
		for i, v := range src {
			dst[i] = b2f(v > p.A)
		}
	case engine.PointAtLeast:
		for i, v := range src {
			dst[i] = b2f(v >= p.A)
		}
	case engine.PointMaskedAffine:
		m := len(a.Mask)
		for i, v := range src {
			if a.Mask[i%m] < 0.5 {
				dst[i] = v*p.A + p.B
			} else {
				dst[i] = 0
			}
		}
	case engine.PointDivide:
		m := len(a.Mask)
		for i, v := range src {
			dst[i] = v / a.Mask[i%m]
		}
	}
	return nil
}

func b2f(b bool) float32 {
	if b {
		return 1
	}
	return 0
}

// CountAtLeast is the number of values >= bound. This is grf_count_at_least's reference.
func CountAtLeast(x []float32, bound float32) int64 {
	var n int64
	for _, v := range x {
		if v >= bound {
			n++
		}
	}
	return n
}
