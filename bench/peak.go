package bench

import (
	"context"
	"fmt"
	"math"
)

// Probe is one trial of the peak search: a server run at QPS, whether its p99 latency
// met the bound, and that p99 (ms).
type Probe struct {
	QPS   float64 `json:"qps"`
	Meets bool    `json:"meets"`
	P99   float64 `json:"p99_ms"`
}

// Peak is the outcome of FindPeak: the highest probed rate that met the bound (0 if
// none did) and every probe in order.
type Peak struct {
	QPS       float64 `json:"qps"`
	Converged bool    `json:"converged"` // the bracket closed within the tolerance
	Probes    []Probe `json:"probes"`
}

// PeakOptions bound FindPeak.
type PeakOptions struct {
	Start     float64 // first rate to try (> 0)
	Tolerance float64 // stop when (fail − pass)/fail ≤ this (default 0.05)
	MaxProbes int     // at most this many probes (default 12)
	MinQPS    float64 // give up below this rate (default Start/1024)
}

// FindPeak searches for the highest rate whose server run meets the latency bound,
// as MLPerf's server scenario is tuned: from Start it doubles while runs pass (or halves
// while they fail) until a passing and a failing rate bracket the peak, then bisects the
// bracket until it is within Tolerance. probe runs one server run. It assumes that
// passing is monotone in the rate (a noisy probe still converges to a rate that passed).
func FindPeak(ctx context.Context, o PeakOptions, probe func(ctx context.Context, qps float64) (Probe, error)) (Peak, error) {
	if !(o.Start > 0) || math.IsInf(o.Start, 0) {
		return Peak{}, fmt.Errorf("find-peak: start rate %v must be positive", o.Start)
	}
	if o.Tolerance <= 0 {
		o.Tolerance = 0.05
	}
	if o.MaxProbes <= 0 {
		o.MaxProbes = 12
	}
	if o.MinQPS <= 0 {
		o.MinQPS = o.Start / 1024
	}
	var pk Peak
	try := func(q float64) (bool, error) {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		p, err := probe(ctx, q)
		if err != nil {
			return false, err
		}
		p.QPS = q
		pk.Probes = append(pk.Probes, p)
		if p.Meets && q > pk.QPS {
			pk.QPS = q
		}
		return p.Meets, nil
	}
	pass, fail := 0.0, math.Inf(1)
	q := o.Start
	for len(pk.Probes) < o.MaxProbes {
		ok, err := try(q)
		if err != nil {
			return pk, err
		}
		if ok {
			pass = math.Max(pass, q)
		} else {
			fail = math.Min(fail, q)
		}
		switch {
		case pass == 0 && q/2 < o.MinQPS:
			return pk, nil // nothing passes even at the lowest rate
		case pass == 0:
			q /= 2
		case math.IsInf(fail, 1):
			q *= 2
		case (fail-pass)/fail <= o.Tolerance:
			pk.Converged = true
			return pk, nil
		default:
			q = (pass + fail) / 2
		}
	}
	return pk, nil
}
