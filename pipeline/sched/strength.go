package sched

import (
	"fmt"
	"math"
)

// StartStep is diffusers' img2img get_timesteps (StableDiffusionXLInpaintPipeline, and
// the PASD pipeline, which copies it) for a schedule of numInference steps:
//
//	init_timestep = min(int(numInference·strength), numInference)   (int truncates)
//	t_start       = max(numInference - init_timestep, 0)
//
// It returns t_start; the run takes the timesteps from index t_start·Order() on, i.e.
// numInference - t_start steps, and the pipeline calls set_begin_index(t_start·Order()).
// It fails (ErrStrength) for a strength outside (0, 1] and when no step would run
// (diffusers raises there too).
func StartStep(numInference int, strength float64) (int, error) {
	if numInference < 1 {
		return 0, fmt.Errorf("%w: %d inference steps", ErrStrength, numInference)
	}
	if !(strength > 0 && strength <= 1) {
		return 0, fmt.Errorf("%w: strength %g (want 0 < s <= 1)", ErrStrength, strength)
	}
	init := min(int(float64(numInference)*strength), numInference)
	start := max(numInference-init, 0)
	if start >= numInference {
		return 0, fmt.Errorf("%w: strength %g of %d steps runs no step", ErrStrength, strength, numInference)
	}
	return start, nil
}

// TimestepsForStrength returns the num_inference_steps N to give diffusers so that
// exactly n steps run at strength s (DESIGN "Steps": N = round(n/s), the last n run).
//
// round(n/s) alone does not always give n steps, because diffusers truncates N·s:
// s = 0.55, n = 10 gives N = 18 and int(18·0.55) = 9 steps. So N is round(n/s) when that
// yields n steps, and otherwise the N nearest to n/s that does (ties: the smaller N);
// such an N always exists for 0 < s <= 1. Examples: (10, 0.625) → 16, (10, 0.15) → 67,
// (10, 0.55) → 19, (10, 0.3) → 34, (36, 0.9) → 40, (10, 1) → 10.
func TimestepsForStrength(n int, s float64) (int, error) {
	if n < 1 {
		return 0, fmt.Errorf("%w: %d steps to run (want >= 1)", ErrStrength, n)
	}
	if !(s > 0 && s <= 1) {
		return 0, fmt.Errorf("%w: strength %g (want 0 < s <= 1)", ErrStrength, s)
	}
	runs := func(N int) int { return min(int(float64(N)*s), N) }
	target := float64(n) / s
	N := int(math.Round(target))
	if N >= 1 && runs(N) == n {
		return N, nil
	}
	// runs is non-decreasing in N and grows by at most one per step, so the N giving
	// exactly n form an interval; search outwards from n/s.
	best, bestDist := 0, math.Inf(1)
	lo, hi := max(1, int(math.Floor(target))-2), int(math.Ceil(target))+2
	for runs(lo) > n && lo > 1 {
		lo--
	}
	for runs(hi) < n {
		hi++
	}
	for c := lo; c <= hi; c++ {
		if runs(c) != n {
			continue
		}
		if d := math.Abs(float64(c) - target); d < bestDist {
			best, bestDist = c, d
		}
	}
	if best == 0 {
		return 0, fmt.Errorf("%w: no step count runs %d steps at strength %g", ErrStrength, n, s)
	}
	return best, nil
}

// Prepare sets s up for an img2img run of n steps at strength: N =
// TimestepsForStrength(n, strength), SetTimesteps(N), begin index StartStep·Order(). It
// returns the begin index; the run is steps begin .. N-1 (n of them).
func Prepare(s Scheduler, n int, strength float64) (int, error) {
	N, err := TimestepsForStrength(n, strength)
	if err != nil {
		return 0, err
	}
	if err := s.SetTimesteps(N); err != nil {
		return 0, err
	}
	start, err := StartStep(N, strength)
	if err != nil {
		return 0, err
	}
	begin := start * s.Order()
	if err := s.SetBeginIndex(begin); err != nil {
		return 0, err
	}
	return begin, nil
}

// InitLatents writes the start latents of a run beginning at step begin, as diffusers'
// pipelines do: for strength 1, noise·InitNoiseSigma (pure noise; for Euler with
// "leading" spacing that is sqrt(sigma_max²+1)·noise, not x0 + sigma_max·noise); otherwise
// add_noise(orig, noise) at step begin.
func InitLatents(s Scheduler, dst, orig, noise []float32, begin int, strength float64) error {
	if strength == 1 {
		if err := sameLen(dst, noise); err != nil {
			return err
		}
		k := s.InitNoiseSigma()
		for j, v := range noise {
			dst[j] = float32(float64(v) * k)
		}
		return nil
	}
	return s.AddNoise(dst, orig, noise, begin)
}
