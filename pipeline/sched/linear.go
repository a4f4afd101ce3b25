package sched

import (
	"fmt"

	"github.com/grefine/grefine/engine"
)

// Linear is one scheduler step as a linear map, the reference loop of the fused CUDA
// step (engine.BlendCoeffs). For every element j:
//
//	x0[j]  = E*x[j] + F*eps[j]
//	out[j] = A*x[j] + B*eps[j] + H[0]*hist[0][j] + H[1]*hist[1][j] + ...
//
// x is the sample entering step i, eps the (guided) model output and out the sample
// after the step. x0 is the model output converted to what the solver stores: the
// predicted clean sample (Euler, DDIM: diffusers' pred_original_sample; UniPC with
// predict_x0: the converted model output it keeps in its history).
//
// hist[k] is the x0 of step i-1-k (UniPC only; H is empty for Euler and DDIM). After a
// step the caller shifts the history: hist[k+1] = hist[k], hist[0] = x0. Coefficients of
// history that does not exist yet (the first steps of a run) are zero.
type Linear struct {
	A, B float64
	E, F float64
	H    []float64
}

// Apply runs the reference loop: out = A*x + B*eps + Σ H[k]*hist[k] and, if x0 is not
// nil, x0 = E*x + F*eps. out may alias x. A nil hist[k] is allowed where H[k] is 0.
func (l Linear) Apply(out, x0, x, eps []float32, hist [][]float32) error {
	if err := sameLen(out, x, eps); err != nil {
		return err
	}
	if x0 != nil {
		if err := sameLen(x0, x); err != nil {
			return err
		}
	}
	for k, h := range l.H {
		if h == 0 {
			continue
		}
		if k >= len(hist) || hist[k] == nil {
			return fmt.Errorf("%w: history %d missing (coefficient %g)", ErrSize, k, h)
		}
		if err := sameLen(x, hist[k]); err != nil {
			return err
		}
	}
	for j := range x {
		xv, ev := float64(x[j]), float64(eps[j])
		v := l.A*xv + l.B*ev
		for k, h := range l.H {
			if h != 0 {
				v += h * float64(hist[k][j])
			}
		}
		if x0 != nil {
			x0[j] = float32(l.E*xv + l.F*ev)
		}
		out[j] = float32(v)
	}
	return nil
}

// Blend returns the coefficients of the fused CFG + step + masked-blending kernel for
// step i: the step's Linear, and CC, CD the re-noising of the original to step i+1
// (NoiseCoeffs(i+1)). It fails when the step needs more than two history buffers.
func Blend(s Scheduler, i int, guidance float64) (engine.BlendCoeffs, error) {
	l, err := s.Coeffs(i)
	if err != nil {
		return engine.BlendCoeffs{}, err
	}
	c, d, err := s.NoiseCoeffs(i + 1)
	if err != nil {
		return engine.BlendCoeffs{}, err
	}
	b := engine.BlendCoeffs{
		Guidance: float32(guidance),
		CA:       float32(l.A), CB: float32(l.B),
		CC: float32(c), CD: float32(d),
		CE: float32(l.E), CF: float32(l.F),
	}
	for k, h := range l.H {
		if k >= len(b.CH) {
			if h != 0 {
				return engine.BlendCoeffs{}, fmt.Errorf("%w: step %d needs history %d; the fused kernel holds %d",
					ErrUnsupported, i, k, len(b.CH))
			}
			continue
		}
		b.CH[k] = float32(h)
	}
	return b, nil
}
