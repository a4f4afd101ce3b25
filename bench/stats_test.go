package bench

import (
	"encoding/json"
	"math"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPercentileNumpy checks Percentile against numpy.percentile (testdata/percentiles.py
// wrote the reference values).
func TestPercentileNumpy(t *testing.T) {
	b, err := os.ReadFile("testdata/percentiles.json")
	require.NoError(t, err)
	var ref struct {
		Percentiles []float64 `json:"percentiles"`
		Cases       map[string]struct {
			X    []float64 `json:"x"`
			Want []float64 `json:"want"`
		} `json:"cases"`
	}
	require.NoError(t, json.Unmarshal(b, &ref))
	require.NotEmpty(t, ref.Cases)
	for name, c := range ref.Cases {
		for i, p := range ref.Percentiles {
			got := Percentile(c.X, p)
			assert.InDelta(t, c.Want[i], got, 1e-9*math.Max(1, math.Abs(c.Want[i])), "%s p%v", name, p)
		}
		s := Summarize(c.X)
		assert.InDelta(t, Percentile(c.X, 50), s.P50, 1e-12, name)
		assert.InDelta(t, Percentile(c.X, 99), s.P99, 1e-12, name)
		assert.InDelta(t, Percentile(c.X, 99.9), s.P999, 1e-12, name)
		assert.Equal(t, len(c.X), s.N)
	}
}

func TestPercentileEdges(t *testing.T) {
	assert.True(t, math.IsNaN(Percentile(nil, 50)))
	assert.True(t, math.IsNaN(Percentile([]float64{1}, -1)))
	assert.True(t, math.IsNaN(Percentile([]float64{1}, 100.5)))
	assert.True(t, math.IsNaN(Percentile([]float64{1}, math.NaN())))
	xs := []float64{5, 1, 4, 2, 3}
	assert.Equal(t, 3.0, Percentile(xs, 50))
	assert.Equal(t, []float64{5, 1, 4, 2, 3}, xs, "the input is not reordered")
	assert.Equal(t, Summary{}, Summarize(nil))
	s := Summarize([]float64{2, 4})
	assert.Equal(t, Summary{N: 2, Mean: 3, Min: 2, Max: 4, P50: 3, P90: 3.8, P95: 3.9, P99: 3.98, P999: 3.998}, roundSummary(s))
	assert.Equal(t, 1, TailSamples(100, 99))
	assert.Equal(t, 0, TailSamples(99, 99))
	assert.Equal(t, 10, TailSamples(1000, 99))
}

func roundSummary(s Summary) Summary {
	r := func(v float64) float64 { return math.Round(v*1e9) / 1e9 }
	return Summary{N: s.N, Mean: r(s.Mean), Min: r(s.Min), P50: r(s.P50), P90: r(s.P90), P95: r(s.P95), P99: r(s.P99), P999: r(s.P999), Max: r(s.Max)}
}
