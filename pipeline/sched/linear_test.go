package sched

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/engine"
)

func randVec(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

func maxAbsDiff(a, b []float32) float64 {
	m := 0.0
	for i := range a {
		m = math.Max(m, math.Abs(float64(a[i])-float64(b[i])))
	}
	return m
}

func newTest(t *testing.T, class string, mod func(*Config)) Scheduler {
	t.Helper()
	c, err := DefaultConfig(class)
	require.NoError(t, err)
	c.BetaSchedule, c.BetaStart, c.BetaEnd, c.StepsOffset = "scaled_linear", 0.00085, 0.012, 1
	if class == ClassDDIM {
		c.ClipSample, c.SetAlphaToOne = false, false
	}
	if mod != nil {
		mod(&c)
	}
	s, err := New(c)
	require.NoError(t, err)
	return s
}

// Coeffs applied step by step (with the history rotation the fused kernel does) equal
// Step, for configurations the goldens do not cover.
func TestCoeffsMatchStep(t *testing.T) {
	tests := []struct {
		name     string
		class    string
		mod      func(*Config)
		n, begin int
	}{
		{"euler leading", ClassEuler, func(c *Config) { c.TimestepSpacing = "leading" }, 25, 7},
		{"ddim", ClassDDIM, nil, 30, 3},
		{"unipc", ClassUniPC, nil, 23, 5},
		{"unipc begin 0", ClassUniPC, nil, 6, 0},
		{"unipc order 3", ClassUniPC, func(c *Config) { c.SolverOrder = 3 }, 15, 2},
		{"unipc order 4 sigma_min", ClassUniPC, func(c *Config) { c.SolverOrder, c.FinalSigmasType = 4, "sigma_min" }, 12, 0},
		{"unipc predict eps", ClassUniPC, func(c *Config) { c.PredictX0, c.FinalSigmasType = false, "sigma_min" }, 12, 1},
		{"unipc predict eps bh1", ClassUniPC, func(c *Config) {
			c.PredictX0, c.SolverType, c.FinalSigmasType = false, "bh1", "sigma_min"
		}, 12, 1},
		{"unipc disable corrector", ClassUniPC, func(c *Config) { c.DisableCorrector = []int{3, 4, 9} }, 12, 2},
		{"unipc no lower order final", ClassUniPC, func(c *Config) {
			c.LowerOrderFinal, c.FinalSigmasType = false, "sigma_min"
		}, 9, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTest(t, tc.class, tc.mod)
			require.NoError(t, s.SetTimesteps(tc.n))
			require.NoError(t, s.SetBeginIndex(tc.begin))
			lin := s.Clone()
			r := rand.New(rand.NewPCG(1, uint64(tc.n)))
			const size = 37
			x := randVec(r, size)
			xl := slices.Clone(x)
			var hist [][]float32
			worst := 0.0
			for i := tc.begin; i < tc.n; i++ {
				eps := randVec(r, size)
				require.NoError(t, s.Step(eps, x, i))
				l, err := lin.Coeffs(i)
				require.NoError(t, err)
				x0 := make([]float32, size)
				require.NoError(t, l.Apply(xl, x0, xl, eps, hist))
				hist = append([][]float32{x0}, hist...)
				if len(hist) > len(l.H) {
					hist = hist[:len(l.H)]
				}
				d := maxAbsDiff(x, xl)
				worst = math.Max(worst, d)
				scale := 1.0
				for _, v := range x {
					scale = math.Max(scale, math.Abs(float64(v)))
				}
				require.LessOrEqual(t, d, 4e-6*scale, "step %d", i)
			}
			t.Logf("max |linear - step| = %.3g", worst)
		})
	}
}

func TestBlendMatchesEngineCoeffs(t *testing.T) {
	e := newTest(t, ClassEuler, func(c *Config) { c.TimestepSpacing = "leading" })
	require.NoError(t, e.SetTimesteps(16))
	sig := e.(*Euler).Sigmas()
	for i := 0; i < 16; i++ {
		b, err := Blend(e, i, 7.5)
		require.NoError(t, err)
		assert.Equal(t, engine.EulerCoeffs(7.5, sig[i], sig[i+1]), b, "step %d", i)
	}

	d := newTest(t, ClassDDIM, nil)
	require.NoError(t, d.SetTimesteps(20))
	ac := d.(*DDIM).AlphasCumprod()
	ts := d.Timesteps()
	for i := 0; i < 19; i++ { // the last step blends with the clean original instead
		b, err := Blend(d, i, 9)
		require.NoError(t, err)
		want := engine.DDIMCoeffs(9, float64(ac[int(ts[i])]), float64(ac[int(ts[i+1])]))
		assert.InDelta(t, want.CA, b.CA, 1e-6*math.Abs(float64(want.CA)))
		assert.InDelta(t, want.CB, b.CB, 1e-6)
		assert.InDelta(t, want.CC, b.CC, 1e-7)
		assert.InDelta(t, want.CD, b.CD, 1e-7)
		assert.InDelta(t, want.CE, b.CE, 1e-6*math.Abs(float64(want.CE)))
		assert.InDelta(t, want.CF, b.CF, 1e-6*math.Abs(float64(want.CF)))
	}
	b, err := Blend(d, 19, 9)
	require.NoError(t, err)
	assert.Equal(t, [2]float32{1, 0}, [2]float32{b.CC, b.CD}, "after the last step: the clean original")

	u := newTest(t, ClassUniPC, func(c *Config) { c.SolverOrder, c.FinalSigmasType = 3, "sigma_min" })
	require.NoError(t, u.SetTimesteps(10))
	_, err = Blend(u, 1, 9)
	require.NoError(t, err, "second step has only one history buffer")
	_, err = Blend(u, 5, 9)
	assert.ErrorIs(t, err, ErrUnsupported, "order-3 corrector needs three history buffers")

	dc := newTest(t, ClassDDIM, func(c *Config) { c.ClipSample = true })
	require.NoError(t, dc.SetTimesteps(10))
	_, err = dc.Coeffs(0)
	assert.ErrorIs(t, err, ErrUnsupported)
}

// Apply writes exactly its n elements (guard bands around ragged sizes) and checks its
// inputs.
func TestLinearApplyGuards(t *testing.T) {
	const guard = float32(-12345)
	l := Linear{A: 0.5, B: -2, E: 3, F: 0.25, H: []float64{1.5, 0}}
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, 7, 33} {
		buf := make([]float32, n+4)
		for i := range buf {
			buf[i] = guard
		}
		x0buf := slices.Clone(buf)
		out, x0 := buf[2:2+n:2+n], x0buf[2:2+n:2+n]
		x, eps, h0 := randVec(r, n), randVec(r, n), randVec(r, n)
		require.NoError(t, l.Apply(out, x0, x, eps, [][]float32{h0, nil}))
		for _, g := range [][]float32{buf[:2], buf[2+n:], x0buf[:2], x0buf[2+n:]} {
			for _, v := range g {
				assert.Equal(t, guard, v, "n=%d: write outside the buffer", n)
			}
		}
		for j := 0; j < n; j++ {
			want := 0.5*float64(x[j]) - 2*float64(eps[j]) + 1.5*float64(h0[j])
			assert.InDelta(t, want, float64(out[j]), 1e-6*math.Max(1, math.Abs(want)))
			assert.InDelta(t, 3*float64(x[j])+0.25*float64(eps[j]), float64(x0[j]), 1e-5)
		}
	}
	x := make([]float32, 4)
	assert.ErrorIs(t, l.Apply(x, nil, x, x[:3], nil), ErrSize)
	assert.ErrorIs(t, l.Apply(x, nil, x, x, nil), ErrSize, "history 0 has a coefficient")
	assert.ErrorIs(t, l.Apply(x, x[:2], x, x, [][]float32{x}), ErrSize)
}
