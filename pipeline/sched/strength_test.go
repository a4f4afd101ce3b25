package sched

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTimestepsForStrengthExamples(t *testing.T) {
	tests := []struct {
		n    int
		s    float64
		want int
	}{
		{10, 0.625, 16}, {10, 0.15, 67}, {10, 0.55, 19}, {10, 0.3, 34}, {36, 0.9, 40}, {10, 1, 10},
		{10, 0.9, 12}, {1, 0.5, 2}, {10, 0.5, 20},
	}
	for _, tc := range tests {
		got, err := TimestepsForStrength(tc.n, tc.s)
		require.NoError(t, err)
		assert.Equal(t, tc.want, got, "n=%d s=%g", tc.n, tc.s)
	}
}

// For every (n, s) the returned N runs exactly n steps under diffusers' rule, equals
// round(n/s) whenever that works, and is otherwise the nearest N that works.
func TestTimestepsForStrengthProperties(t *testing.T) {
	runs := func(N int, s float64) int { return min(int(float64(N)*s), N) }
	for n := 1; n <= 40; n++ {
		for k := 1; k <= 100; k++ {
			s := float64(k) / 100
			N, err := TimestepsForStrength(n, s)
			require.NoError(t, err, "n=%d s=%g", n, s)
			start, err := StartStep(N, s)
			require.NoError(t, err)
			require.Equal(t, n, N-start, "n=%d s=%g N=%d", n, s, N)
			r := int(math.Round(float64(n) / s))
			if runs(r, s) == n {
				require.Equal(t, r, N, "n=%d s=%g: round(n/s) works", n, s)
				continue
			}
			for c := 1; c < 5*N; c++ {
				if runs(c, s) == n {
					require.LessOrEqual(t, math.Abs(float64(N)-float64(n)/s), math.Abs(float64(c)-float64(n)/s),
						"n=%d s=%g: %d is nearer than %d", n, s, c, N)
				}
			}
		}
	}
}

func TestStrengthErrors(t *testing.T) {
	for _, s := range []float64{0, -0.1, 1.01, math.NaN()} {
		_, err := StartStep(10, s)
		assert.ErrorIs(t, err, ErrStrength, "s=%g", s)
		_, err = TimestepsForStrength(10, s)
		assert.ErrorIs(t, err, ErrStrength, "s=%g", s)
	}
	_, err := StartStep(1, 0.5)
	assert.ErrorIs(t, err, ErrStrength, "int(0.5) = 0 steps run")
	_, err = StartStep(0, 0.5)
	assert.ErrorIs(t, err, ErrStrength)
	_, err = TimestepsForStrength(0, 0.5)
	assert.ErrorIs(t, err, ErrStrength)
}

func TestPrepare(t *testing.T) {
	c, err := DefaultConfig(ClassUniPC)
	require.NoError(t, err)
	u, err := NewUniPC(c)
	require.NoError(t, err)
	begin, err := Prepare(u, 10, 0.15)
	require.NoError(t, err)
	assert.Equal(t, 67, u.NumSteps())
	assert.Equal(t, 57, begin)
	assert.Equal(t, 57, u.BeginIndex())
	assert.Len(t, u.Timesteps()[begin:], 10)
}
