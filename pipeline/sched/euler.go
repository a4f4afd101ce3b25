package sched

import (
	"fmt"
	"math"
)

// Euler is diffusers' EulerDiscreteScheduler with s_churn = 0 (no noise is added), the
// stage-1 (SDXL inpainting) scheduler. It is stateless between steps.
type Euler struct {
	sigmaSchedule
}

var _ Scheduler = (*Euler)(nil)

// NewEuler builds an Euler scheduler from cfg (Class is not checked).
func NewEuler(cfg Config) (*Euler, error) {
	if err := cfg.validateCommon(); err != nil {
		return nil, err
	}
	if cfg.InterpolationType != "linear" {
		return nil, fmt.Errorf("%w: interpolation_type %q (only linear)", ErrUnsupported, cfg.InterpolationType)
	}
	if cfg.TimestepType != "discrete" && cfg.TimestepType != "continuous" {
		return nil, fmt.Errorf("%w: timestep_type %q", ErrConfig, cfg.TimestepType)
	}
	if _, err := cfg.finalSigma([]float32{0}); err != nil {
		return nil, err
	}
	ac, err := alphasCumprod(cfg)
	if err != nil {
		return nil, err
	}
	cfg.Class = ClassEuler
	e := &Euler{sigmaSchedule{schedule: schedule{cfg: cfg, ac: ac}, train: trainSigmas(ac)}}
	return e, nil
}

// SetTimesteps: "linspace" spaces N float32 timesteps evenly over [0, T-1] (not
// rounded); "leading" and "trailing" as diffusers. The sigmas are the training sigmas
// linearly interpolated at the timesteps, then the final sigma.
func (e *Euler) SetTimesteps(n int) error {
	if n < 1 {
		return fmt.Errorf("%w: %d inference steps (want >= 1)", ErrStep, n)
	}
	var ts []float64
	if e.cfg.TimestepSpacing == "linspace" {
		lin := npLinspace(0, float64(e.cfg.NumTrainTimesteps-1), n)
		ts = make([]float64, n)
		for i, v := range lin {
			ts[n-1-i] = float64(float32(v))
		}
	} else {
		ts = spacedTimesteps(e.cfg, n)
		for i, v := range ts {
			ts[i] = float64(float32(v))
		}
	}
	return e.setSigmas(ts)
}

// SetBeginIndex implements Scheduler.
func (e *Euler) SetBeginIndex(i int) error { return e.setBegin(i) }

// InitNoiseSigma is max(sigma) for "linspace" and "trailing" spacing, sqrt(max²+1)
// otherwise (diffusers' quirk: with "leading" pure-noise latents are scaled past sigma).
func (e *Euler) InitNoiseSigma() float64 {
	m := e.maxSigma()
	if e.cfg.TimestepSpacing == "linspace" || e.cfg.TimestepSpacing == "trailing" {
		return m
	}
	return math.Sqrt(m*m + 1)
}

// InputScale is 1/sqrt(sigma_i²+1).
func (e *Euler) InputScale(i int) (float64, error) {
	if err := e.checkStep(i, false); err != nil {
		return 0, err
	}
	s := e.sigmas[i]
	return 1 / math.Sqrt(s*s+1), nil
}

// ScaleModelInput divides x by sqrt(sigma_i²+1).
func (e *Euler) ScaleModelInput(x []float32, i int) error {
	k, err := e.InputScale(i)
	if err != nil {
		return err
	}
	scaleInPlace(x, k)
	return nil
}

// Step: x0 = x - sigma_i·eps, x' = x + (sigma_{i+1} - sigma_i)·(x - x0)/sigma_i, i.e.
// x' = x + (sigma_{i+1} - sigma_i)·eps.
func (e *Euler) Step(eps, x []float32, i int) error {
	if err := e.checkStep(i, false); err != nil {
		return err
	}
	if err := sameLen(x, eps); err != nil {
		return err
	}
	dt := e.sigmas[i+1] - e.sigmas[i]
	for j := range x {
		x[j] = float32(float64(x[j]) + dt*float64(eps[j]))
	}
	return nil
}

// NoiseCoeffs is (1, sigma_i): Euler samples are x0 + sigma·noise.
func (e *Euler) NoiseCoeffs(i int) (float64, float64, error) {
	if err := e.checkStep(i, true); err != nil {
		return 0, 0, err
	}
	if i == len(e.ts) {
		return 1, 0, nil
	}
	return 1, e.sigmas[i], nil
}

// AddNoise implements Scheduler.
func (e *Euler) AddNoise(dst, orig, noise []float32, i int) error {
	a, b, err := e.NoiseCoeffs(i)
	if err != nil {
		return err
	}
	return addNoise(dst, orig, noise, a, b)
}

// Coeffs: A = 1, B = sigma_{i+1} - sigma_i, x0 = x - sigma_i·eps.
func (e *Euler) Coeffs(i int) (Linear, error) {
	if err := e.checkStep(i, false); err != nil {
		return Linear{}, err
	}
	s, n := e.sigmas[i], e.sigmas[i+1]
	return Linear{A: 1, B: n - s, E: 1, F: -s}, nil
}

// Clone implements Scheduler.
func (e *Euler) Clone() Scheduler {
	c := *e
	return &c
}
