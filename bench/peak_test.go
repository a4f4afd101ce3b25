package bench

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mm1P99 is the p99 response time of an M/M/1 queue with service rate mu at arrival
// rate lambda: the response time is Exp(mu − lambda).
func mm1P99(lambda, mu float64) float64 {
	if lambda >= mu {
		return math.Inf(1)
	}
	return math.Log(100) / (mu - lambda)
}

func TestFindPeakConverges(t *testing.T) {
	// Service 10/s, bound 1 s: the true peak is where ln(100)/(10 − λ) = 1, λ* ≈ 5.395.
	const mu, bound = 10.0, 1.0
	truth := mu - math.Log(100)/bound
	for _, start := range []float64{0.1, 1, 5.4, 9, 300} {
		probe := func(_ context.Context, q float64) (Probe, error) {
			p := mm1P99(q, mu)
			return Probe{Meets: p <= bound, P99: p}, nil
		}
		pk, err := FindPeak(context.Background(), PeakOptions{Start: start, Tolerance: 0.01, MaxProbes: 40}, probe)
		require.NoError(t, err)
		assert.True(t, pk.Converged, "start %v", start)
		assert.LessOrEqual(t, pk.QPS, truth, "the peak is a rate that passed")
		assert.GreaterOrEqual(t, pk.QPS, truth*0.99-1e-9, "within the tolerance (start %v)", start)
		assert.LessOrEqual(t, len(pk.Probes), 40)
		for _, p := range pk.Probes {
			assert.Equal(t, p.QPS <= truth, p.Meets)
		}
	}
}

func TestFindPeakNoisy(t *testing.T) {
	// A probe that misjudges rates within 3% of the peak at random still ends on a rate
	// that passed, near the peak.
	r := rand.New(rand.NewPCG(3, 4))
	const truth = 2.3
	probe := func(_ context.Context, q float64) (Probe, error) {
		ok := q <= truth
		if math.Abs(q-truth)/truth < 0.03 && r.IntN(2) == 0 {
			ok = !ok
		}
		return Probe{Meets: ok}, nil
	}
	pk, err := FindPeak(context.Background(), PeakOptions{Start: 1}, probe)
	require.NoError(t, err)
	assert.Greater(t, pk.QPS, truth*0.9)
	assert.Less(t, pk.QPS, truth*1.03)
	passed := false
	for _, p := range pk.Probes {
		passed = passed || (p.Meets && p.QPS == pk.QPS)
	}
	assert.True(t, passed, "the reported peak is one of the passing probes")
}

func TestFindPeakNothingPasses(t *testing.T) {
	pk, err := FindPeak(context.Background(), PeakOptions{Start: 8, MinQPS: 0.5}, func(context.Context, float64) (Probe, error) {
		return Probe{Meets: false}, nil
	})
	require.NoError(t, err)
	assert.Equal(t, 0.0, pk.QPS)
	assert.False(t, pk.Converged)
	assert.Equal(t, []float64{8, 4, 2, 1, 0.5}, probeRates(pk))
}

func TestFindPeakLimitsAndErrors(t *testing.T) {
	n := 0
	pk, err := FindPeak(context.Background(), PeakOptions{Start: 1, MaxProbes: 3}, func(context.Context, float64) (Probe, error) {
		n++
		return Probe{Meets: true}, nil // never fails: doubles until the probe limit
	})
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	assert.Equal(t, []float64{1, 2, 4}, probeRates(pk))
	assert.Equal(t, 4.0, pk.QPS)
	assert.False(t, pk.Converged)

	boom := errors.New("boom")
	_, err = FindPeak(context.Background(), PeakOptions{Start: 1}, func(context.Context, float64) (Probe, error) { return Probe{}, boom })
	assert.ErrorIs(t, err, boom)
	_, err = FindPeak(context.Background(), PeakOptions{Start: 0}, nil)
	assert.Error(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = FindPeak(ctx, PeakOptions{Start: 1}, func(context.Context, float64) (Probe, error) { return Probe{Meets: true}, nil })
	assert.ErrorIs(t, err, context.Canceled)
}

func probeRates(pk Peak) []float64 {
	var out []float64
	for _, p := range pk.Probes {
		out = append(out, p.QPS)
	}
	return out
}
