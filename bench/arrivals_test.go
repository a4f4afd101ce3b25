package bench

import (
	"math"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPoissonInterArrivals checks the schedule's statistics: gaps of mean 1/qps and
// coefficient of variation 1, exponentially distributed (Kolmogorov–Smirnov at
// α = 0.001), counts per unit window with variance equal to their mean.
func TestPoissonInterArrivals(t *testing.T) {
	const qps, n = 40.0, 20000
	arr := PoissonArrivals(qps, n, 7)
	require.Len(t, arr, n)
	gaps := make([]float64, n)
	prev := 0.0
	for i, a := range arr {
		s := a.Seconds()
		require.GreaterOrEqual(t, s, prev, "arrivals are ordered")
		gaps[i], prev = s-prev, s
	}
	mean, sd := meanSD(gaps)
	// The sample mean of n exponentials has sd (1/qps)/√n: allow 4 of those.
	assert.InDelta(t, 1/qps, mean, 4/qps/math.Sqrt(n), "mean gap")
	assert.InDelta(t, 1.0, sd/mean, 0.05, "coefficient of variation")

	sort.Float64s(gaps)
	d := 0.0
	for i, g := range gaps {
		f := 1 - math.Exp(-qps*g)
		d = math.Max(d, math.Max(math.Abs(f-float64(i)/n), math.Abs(f-float64(i+1)/n)))
	}
	assert.Less(t, d, 1.95/math.Sqrt(n), "Kolmogorov–Smirnov distance to Exp(qps)")

	// Counts in 1 s windows: Poisson(qps), variance/mean ≈ 1.
	span := int(arr[n-1].Seconds())
	counts := make([]float64, span)
	for _, a := range arr {
		if w := int(a.Seconds()); w < span {
			counts[w]++
		}
	}
	cm, csd := meanSD(counts)
	assert.InDelta(t, qps, cm, 4*math.Sqrt(qps/float64(span)))
	assert.InDelta(t, 1.0, csd*csd/cm, 0.25, "index of dispersion")
}

func TestPoissonDeterministic(t *testing.T) {
	assert.Equal(t, PoissonArrivals(3, 50, 1), PoissonArrivals(3, 50, 1))
	assert.NotEqual(t, PoissonArrivals(3, 50, 1), PoissonArrivals(3, 50, 2))
	assert.Nil(t, PoissonArrivals(0, 5, 1))
	assert.Nil(t, PoissonArrivals(math.Inf(1), 5, 1))
	assert.Nil(t, PoissonArrivals(math.NaN(), 5, 1))
	assert.Nil(t, PoissonArrivals(1, 0, 1))
}

func meanSD(xs []float64) (float64, float64) {
	m := 0.0
	for _, v := range xs {
		m += v
	}
	m /= float64(len(xs))
	v := 0.0
	for _, x := range xs {
		v += (x - m) * (x - m)
	}
	return m, math.Sqrt(v / float64(len(xs)-1))
}
