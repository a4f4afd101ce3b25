package sched

import (
	"fmt"
	"math"
)

// Scheduler is one denoising schedule and, for multistep solvers, the per-request state
// of a run. Build one per request (or Clone a prepared one); a value is not safe for
// concurrent use.
//
// Step indices i count the N = NumSteps() timesteps of the schedule from 0 (the noisiest);
// index N means "after the last step" (noise level zero where the schedule ends there).
// Every method that takes sample buffers works on float32 data with float64 coefficients.
type Scheduler interface {
	// Config returns the config the scheduler was built from.
	Config() Config
	// SetTimesteps computes the N = n step schedule and resets the run state and the
	// begin index (diffusers' set_timesteps).
	SetTimesteps(n int) error
	// NumSteps returns N (0 before SetTimesteps).
	NumSteps() int
	// Timesteps returns the N timesteps, the values the UNet receives (float32 values;
	// integers for the spacings in use). The slice must not be modified.
	Timesteps() []float64
	// Order is diffusers' scheduler.order (1 for all three classes): the img2img start
	// index is StartStep(...)·Order().
	Order() int
	// SetBeginIndex records the first step index a run will take (diffusers'
	// set_begin_index); UniPC's warm-up and the linear coefficients depend on it.
	SetBeginIndex(i int) error
	// BeginIndex returns the index SetBeginIndex set (0 after SetTimesteps).
	BeginIndex() int
	// InitNoiseSigma is the standard deviation of pure-noise start latents
	// (latents = noise·InitNoiseSigma when strength is 1).
	InitNoiseSigma() float64
	// InputScale returns the factor scale_model_input applies at step i.
	InputScale(i int) (float64, error)
	// ScaleModelInput scales x in place for the UNet input at step i.
	ScaleModelInput(x []float32, i int) error
	// Step advances x in place from step i to step i+1 given the model output eps at
	// step i (diffusers' step(...).prev_sample). eps is not modified.
	Step(eps, x []float32, i int) error
	// NoiseCoeffs returns (a, b) with add_noise(orig, noise, i) = a·orig + b·noise, for
	// 0 <= i <= N; index N gives (1, 0) (the clean original, which diffusers' masked
	// blending uses after the last step).
	NoiseCoeffs(i int) (a, b float64, err error)
	// AddNoise writes a·orig + b·noise (NoiseCoeffs(i)) to dst; dst may alias orig.
	AddNoise(dst, orig, noise []float32, i int) error
	// Coeffs returns step i as a linear map (see Linear), assuming the run started at
	// BeginIndex and every earlier step's output was fed back unchanged.
	Coeffs(i int) (Linear, error)
	// Clone returns an independent copy (schedule shared read-only, run state copied).
	Clone() Scheduler
}

// schedule is the part all three classes share: config, training alphas, timesteps.
type schedule struct {
	cfg    Config
	ac     []float32 // alphas_cumprod, by training timestep
	ts     []float64 // timesteps of the current schedule
	begin  int
	hasSet bool
}

func (s *schedule) Config() Config       { return s.cfg }
func (s *schedule) NumSteps() int        { return len(s.ts) }
func (s *schedule) Timesteps() []float64 { return s.ts }
func (s *schedule) Order() int           { return 1 }
func (s *schedule) BeginIndex() int      { return s.begin }

func (s *schedule) setBegin(i int) error {
	if !s.hasSet {
		return fmt.Errorf("%w: SetBeginIndex before SetTimesteps", ErrStep)
	}
	if i < 0 || i >= len(s.ts) {
		return fmt.Errorf("%w: begin index %d (want 0..%d)", ErrStep, i, len(s.ts)-1)
	}
	s.begin = i
	return nil
}

// checkStep validates a step index 0 <= i < N (or <= N when end is true).
func (s *schedule) checkStep(i int, end bool) error {
	if !s.hasSet {
		return fmt.Errorf("%w: call SetTimesteps first", ErrStep)
	}
	hi := len(s.ts) - 1
	if end {
		hi = len(s.ts)
	}
	if i < 0 || i > hi {
		return fmt.Errorf("%w: step index %d (want 0..%d)", ErrStep, i, hi)
	}
	return nil
}

func checkN(n, T int) error {
	if n < 1 || n > T {
		return fmt.Errorf("%w: %d inference steps (want 1..%d)", ErrStep, n, T)
	}
	return nil
}

func sameLen(bufs ...[]float32) error {
	for _, b := range bufs[1:] {
		if len(b) != len(bufs[0]) {
			return fmt.Errorf("%w: buffers of %d and %d elements", ErrSize, len(bufs[0]), len(b))
		}
	}
	return nil
}

// scaleInPlace multiplies x by k (rounded to float32 per element).
func scaleInPlace(x []float32, k float64) {
	for j, v := range x {
		x[j] = float32(float64(v) * k)
	}
}

// addNoise writes a·orig + b·noise to dst.
func addNoise(dst, orig, noise []float32, a, b float64) error {
	if err := sameLen(dst, orig, noise); err != nil {
		return err
	}
	for j := range dst {
		dst[j] = float32(a*float64(orig[j]) + b*float64(noise[j]))
	}
	return nil
}

// sigmaSchedule is the timestep + sigma table Euler and UniPC share.
type sigmaSchedule struct {
	schedule
	train  []float32 // sigmas by training timestep (float32)
	sigmas []float64 // N+1 float32 values: one per timestep, then the final sigma
}

// setSigmas interpolates the training sigmas at the timesteps (numpy.interp on the
// float32 table, rounded to float32) and appends the final sigma.
func (s *sigmaSchedule) setSigmas(ts []float64) error {
	last, err := s.cfg.finalSigma(s.train)
	if err != nil {
		return err
	}
	sig := make([]float64, len(ts)+1)
	for i, t := range ts {
		sig[i] = float64(float32(npInterpIndex(t, s.train)))
	}
	sig[len(ts)] = float64(last)
	s.ts, s.sigmas, s.begin, s.hasSet = ts, sig, 0, true
	return nil
}

// Sigmas returns the N+1 sigmas (Euler and UniPC); the slice must not be modified.
func (s *sigmaSchedule) Sigmas() []float64 { return s.sigmas }

func (s *sigmaSchedule) maxSigma() float64 {
	m := 0.0
	if s.hasSet {
		for _, v := range s.sigmas {
			m = math.Max(m, v)
		}
		return m
	}
	for _, v := range s.train {
		m = math.Max(m, float64(v))
	}
	return m
}

// TimestepIndex returns the step index of timestep t in s's schedule: the first match,
// or the second when t occurs more than once (diffusers' index_for_timestep for Euler).
// diffusers' UniPC maps a timestep that is not in the schedule to the last index; here
// that is an error (ErrStep).
func TimestepIndex(s Scheduler, t float64) (int, error) {
	var idx []int
	for i, v := range s.Timesteps() {
		if v == t {
			idx = append(idx, i)
		}
	}
	switch len(idx) {
	case 0:
		return 0, fmt.Errorf("%w: timestep %g is not in the schedule", ErrStep, t)
	case 1:
		return idx[0], nil
	}
	return idx[1], nil
}
