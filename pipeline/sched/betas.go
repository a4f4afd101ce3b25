package sched

import (
	"fmt"
	"math"
)

// The training noise schedule, computed in float32 exactly as diffusers does it on
// torch's CPU: betas from torch.linspace (float32), alphas = 1 - betas (float32),
// alphas_cumprod = torch.cumprod (accumulated in float64, each output rounded to float32).
// Every later quantity starts from these float32 values.

// alphasCumprod returns the float32 cumulative alpha products of the config's beta
// schedule (length num_train_timesteps).
func alphasCumprod(c Config) ([]float32, error) {
	n := c.NumTrainTimesteps
	var betas []float32
	switch {
	case c.TrainedBetas != nil:
		if len(c.TrainedBetas) != n {
			return nil, fmt.Errorf("%w: %d trained_betas for %d train timesteps", ErrConfig, len(c.TrainedBetas), n)
		}
		betas = make([]float32, n)
		for i, b := range c.TrainedBetas {
			betas[i] = float32(b)
		}
	case c.BetaSchedule == "linear":
		betas = torchLinspace32(c.BetaStart, c.BetaEnd, n)
	case c.BetaSchedule == "scaled_linear":
		betas = torchLinspace32(math.Sqrt(c.BetaStart), math.Sqrt(c.BetaEnd), n)
		for i, b := range betas {
			betas[i] = b * b
		}
	case c.BetaSchedule == "squaredcos_cap_v2":
		betas = cosineBetas(n, 0.999)
	default:
		return nil, fmt.Errorf("%w: beta_schedule %q (want linear, scaled_linear or squaredcos_cap_v2)",
			ErrConfig, c.BetaSchedule)
	}
	out := make([]float32, n)
	acc := 1.0
	for i, b := range betas {
		a := 1 - b
		if !(a > 0) {
			return nil, fmt.Errorf("%w: beta %d is %g (want < 1)", ErrConfig, i, b)
		}
		acc *= float64(a)
		out[i] = float32(acc)
	}
	return out, nil
}

// torchLinspace32 is torch.linspace(start, end, n, dtype=float32) on the CPU: the ends are
// rounded to float32, step = (end-start)/(n-1) in float32, the first half counts up from
// start and the second half down from end, each element one fused multiply-add rounded to
// float32 (what torch's compiled kernel does; checked bit for bit against torch 2.5.1).
func torchLinspace32(start64, end64 float64, n int) []float32 {
	out := make([]float32, n)
	if n == 1 {
		out[0] = float32(start64)
		return out
	}
	start, end := float32(start64), float32(end64)
	step := float32(end-start) / float32(n-1)
	half := n / 2
	for i := range out {
		if i < half {
			out[i] = float32(math.FMA(float64(step), float64(i), float64(start)))
		} else {
			out[i] = float32(math.FMA(-float64(step), float64(n-1-i), float64(end)))
		}
	}
	return out
}

// cosineBetas is diffusers' betas_for_alpha_bar (the "squaredcos_cap_v2" schedule),
// computed in float64 and rounded to float32 like torch.tensor(..., dtype=float32).
func cosineBetas(n int, maxBeta float64) []float32 {
	f := func(t float64) float64 {
		c := math.Cos((t + 0.008) / 1.008 * math.Pi / 2)
		return c * c
	}
	out := make([]float32, n)
	for i := range out {
		t1, t2 := float64(i)/float64(n), float64(i+1)/float64(n)
		out[i] = float32(math.Min(1-f(t2)/f(t1), maxBeta))
	}
	return out
}

// trainSigmas returns sqrt((1-ac)/ac) in float32 arithmetic, indexed by training
// timestep (diffusers' ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5).
func trainSigmas(ac []float32) []float32 {
	out := make([]float32, len(ac))
	for i, a := range ac {
		q := (1 - a) / a
		out[i] = float32(math.Sqrt(float64(q)))
	}
	return out
}

// npLinspace is numpy.linspace(start, stop, num) in float64: i*step + start, the last
// element set to stop.
func npLinspace(start, stop float64, num int) []float64 {
	out := make([]float64, num)
	if num == 0 {
		return out
	}
	if num == 1 {
		out[0] = start
		return out
	}
	step := (stop - start) / float64(num-1)
	for i := range out {
		out[i] = float64(float64(i)*step) + start
	}
	out[num-1] = stop
	return out
}

// npArange is numpy.arange(start, stop, step) for float64: length ceil((stop-start)/step),
// element i = start + i*delta where delta = (start+step) - start (numpy's fill).
func npArange(start, stop, step float64) []float64 {
	n := int(math.Ceil((stop - start) / step))
	if n <= 0 {
		return nil
	}
	out := make([]float64, n)
	out[0] = start
	if n == 1 {
		return out
	}
	delta := (start + step) - start
	for i := 1; i < n; i++ {
		out[i] = start + float64(float64(i)*delta)
	}
	return out
}

// npInterpIndex is numpy.interp(x, arange(len(fp)), fp) in float64.
func npInterpIndex(x float64, fp []float32) float64 {
	last := len(fp) - 1
	switch {
	case x <= 0:
		return float64(fp[0])
	case x >= float64(last):
		return float64(fp[last])
	}
	j := int(math.Floor(x))
	if float64(j) == x {
		return float64(fp[j])
	}
	slope := (float64(fp[j+1]) - float64(fp[j])) / 1
	return float64(slope*(x-float64(j))) + float64(fp[j])
}

// spacedTimesteps returns the timestep values of diffusers' "leading" and "trailing"
// spacings shared by the three classes (before any class-specific casting): leading
// counts up from 0 by num_train // count, reverses and adds steps_offset; trailing
// counts down from num_train by num_train / count, rounds half to even and subtracts 1.
func spacedTimesteps(c Config, count int) []float64 {
	T := c.NumTrainTimesteps
	switch c.TimestepSpacing {
	case "leading":
		ratio := T / count
		out := make([]float64, count)
		for i := range out {
			out[count-1-i] = float64(i*ratio + c.StepsOffset)
		}
		return out
	case "trailing":
		vals := npArange(float64(T), 0, -float64(T)/float64(count))
		for i, v := range vals {
			vals[i] = math.RoundToEven(v) - 1
		}
		return vals
	}
	return nil
}

// alphaSigma is diffusers' _sigma_to_alpha_sigma_t: alpha = 1/sqrt(sigma²+1) and
// sigma_t = sigma·alpha (the VP scaling of a sample at noise level sigma).
func alphaSigma(sigma float64) (alpha, sigmaT float64) {
	alpha = 1 / math.Sqrt(sigma*sigma+1)
	return alpha, sigma * alpha
}
