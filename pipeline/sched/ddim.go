package sched

import (
	"fmt"
	"math"
)

// DDIM is diffusers' DDIMScheduler with eta = 0 (deterministic). It is stateless between
// steps.
type DDIM struct {
	schedule
	final float64 // alpha_cumprod after the last step: 1 or alphas_cumprod[0]
}

var _ Scheduler = (*DDIM)(nil)

// NewDDIM builds a DDIM scheduler from cfg (Class is not checked).
func NewDDIM(cfg Config) (*DDIM, error) {
	if err := cfg.validateCommon(); err != nil {
		return nil, err
	}
	ac, err := alphasCumprod(cfg)
	if err != nil {
		return nil, err
	}
	cfg.Class = ClassDDIM
	d := &DDIM{schedule: schedule{cfg: cfg, ac: ac}, final: 1}
	if !cfg.SetAlphaToOne {
		d.final = float64(ac[0])
	}
	return d, nil
}

// SetTimesteps: integer timesteps; "linspace" rounds N evenly spaced values over
// [0, T-1] (half to even), "leading" and "trailing" as diffusers.
func (d *DDIM) SetTimesteps(n int) error {
	if err := checkN(n, d.cfg.NumTrainTimesteps); err != nil {
		return err
	}
	var ts []float64
	if d.cfg.TimestepSpacing == "linspace" {
		lin := npLinspace(0, float64(d.cfg.NumTrainTimesteps-1), n)
		ts = make([]float64, n)
		for i, v := range lin {
			ts[n-1-i] = math.RoundToEven(v)
		}
	} else {
		ts = spacedTimesteps(d.cfg, n)
	}
	for _, t := range ts {
		if t < 0 || int(t) >= d.cfg.NumTrainTimesteps {
			return fmt.Errorf("%w: timestep %g outside the %d training steps", ErrConfig, t, d.cfg.NumTrainTimesteps)
		}
	}
	d.ts, d.begin, d.hasSet = ts, 0, true
	return nil
}

// SetBeginIndex implements Scheduler.
func (d *DDIM) SetBeginIndex(i int) error { return d.setBegin(i) }

// InitNoiseSigma is 1.
func (d *DDIM) InitNoiseSigma() float64 { return 1 }

// InputScale is 1 (DDIM does not scale the model input).
func (d *DDIM) InputScale(i int) (float64, error) {
	if err := d.checkStep(i, false); err != nil {
		return 0, err
	}
	return 1, nil
}

// ScaleModelInput leaves x unchanged.
func (d *DDIM) ScaleModelInput(x []float32, i int) error {
	_, err := d.InputScale(i)
	return err
}

// alphas returns the cumulative alphas of step i and of the step it lands on. Like
// diffusers, the target is timestep t - T/N (integer division by the number of
// inference steps), not the next timestep of the schedule; below 0 it is the final
// alpha (1 with set_alpha_to_one, alphas_cumprod[0] otherwise).
func (d *DDIM) alphas(i int) (a, aPrev float64) {
	t := int(d.ts[i])
	prev := t - d.cfg.NumTrainTimesteps/len(d.ts)
	a = float64(d.ac[t])
	aPrev = d.final
	if prev >= 0 {
		aPrev = float64(d.ac[prev])
	}
	return a, aPrev
}

// Step: x0 = (x - sqrt(1-a)·eps)/sqrt(a) (clamped to ±clip_sample_range when
// clip_sample), x' = sqrt(aPrev)·x0 + sqrt(1-aPrev)·eps.
func (d *DDIM) Step(eps, x []float32, i int) error {
	if err := d.checkStep(i, false); err != nil {
		return err
	}
	if err := sameLen(x, eps); err != nil {
		return err
	}
	a, ap := d.alphas(i)
	sa, s1a := math.Sqrt(a), math.Sqrt(1-a)
	sp, s1p := math.Sqrt(ap), math.Sqrt(1-ap)
	r := d.cfg.ClipSampleRange
	for j := range x {
		e := float64(eps[j])
		x0 := float64(float32((float64(x[j]) - s1a*e) / sa))
		if d.cfg.ClipSample {
			x0 = math.Max(-r, math.Min(r, x0))
		}
		x[j] = float32(sp*x0 + s1p*e)
	}
	return nil
}

// NoiseCoeffs is (sqrt(a_t), sqrt(1-a_t)) at the timestep of step i; (1, 0) at i = N.
func (d *DDIM) NoiseCoeffs(i int) (float64, float64, error) {
	if err := d.checkStep(i, true); err != nil {
		return 0, 0, err
	}
	if i == len(d.ts) {
		return 1, 0, nil
	}
	a := float64(d.ac[int(d.ts[i])])
	return math.Sqrt(a), math.Sqrt(1 - a), nil
}

// AddNoise implements Scheduler.
func (d *DDIM) AddNoise(dst, orig, noise []float32, i int) error {
	a, b, err := d.NoiseCoeffs(i)
	if err != nil {
		return err
	}
	return addNoise(dst, orig, noise, a, b)
}

// Coeffs: engine.DDIMCoeffs' A, B, E, F. Not available with clip_sample (the clamp is
// not linear).
func (d *DDIM) Coeffs(i int) (Linear, error) {
	if err := d.checkStep(i, false); err != nil {
		return Linear{}, err
	}
	if d.cfg.ClipSample {
		return Linear{}, fmt.Errorf("%w: ddim: clip_sample makes the step non-linear", ErrUnsupported)
	}
	a, ap := d.alphas(i)
	sa, s1a := math.Sqrt(a), math.Sqrt(1-a)
	sp, s1p := math.Sqrt(ap), math.Sqrt(1-ap)
	return Linear{A: sp / sa, B: s1p - sp*s1a/sa, E: 1 / sa, F: -s1a / sa}, nil
}

// AlphasCumprod returns the float32 training cumulative alphas; must not be modified.
func (d *DDIM) AlphasCumprod() []float32 { return d.ac }

// Clone implements Scheduler.
func (d *DDIM) Clone() Scheduler {
	c := *d
	return &c
}
