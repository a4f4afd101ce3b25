package cpu

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/engine"
)

func TestBlendStepHandComputed(t *testing.T) {
	// B=1, C=1, 1x2 latents; pixel 0 repainted (m=1), pixel 1 kept (m=0).
	c := engine.BlendCoeffs{Guidance: 7.5, CA: 1, CB: -0.5, CC: 1, CD: 2, CE: 1, CF: -3}
	in := BlendIn{
		NoisePred: []float32{0.1, -0.2, 0.3, 0.2}, // u = (0.1, -0.2), k = (0.3, 0.2)
		X:         []float32{1, 2},
		Init:      []float32{5, 6},
		Noise:     []float32{0.5, -0.5},
		Mask:      []float32{1, 0},
	}
	out, x0 := make([]float32, 2), make([]float32, 2)
	require.NoError(t, BlendStep(c, 1, 1, 1, 2, in, out, x0))
	eps0 := 0.1 + 7.5*(0.3-0.1)
	eps1 := -0.2 + 7.5*(0.2+0.2)
	assert.InDelta(t, 1-0.5*eps0, out[0], 1e-6)
	assert.InDelta(t, 6+2*-0.5, out[1], 1e-6)
	assert.InDelta(t, 1-3*eps0, x0[0], 1e-6)
	assert.InDelta(t, 2-3*eps1, x0[1], 1e-6)
}

func blendInputs(r *rand.Rand, B, C, H, W int) BlendIn {
	n := B * C * H * W
	rs := func(n int) []float32 {
		s := make([]float32, n)
		for i := range s {
			s[i] = 2*r.Float32() - 1
		}
		return s
	}
	return BlendIn{NoisePred: rs(2 * n), X: rs(n), Init: rs(n), Noise: rs(n), Mask: randSlice(r, B*H*W), Hist: [2][]float32{rs(n), rs(n)}}
}

func TestBlendStepProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const B, C, H, W = 2, 4, 3, 5
	n := B * C * H * W
	in := blendInputs(r, B, C, H, W)
	c := engine.BlendCoeffs{Guidance: 5, CA: 0.9, CB: -0.2, CC: 0.7, CD: 0.3, CH: [2]float32{0.1, -0.05}, CE: 1.2, CF: -0.4}
	ref, refX0 := make([]float32, n), make([]float32, n)
	require.NoError(t, BlendStep(c, B, C, H, W, in, ref, refX0))

	// In place (out = x) gives the same result.
	inPlace := in
	inPlace.X = append([]float32(nil), in.X...)
	x0 := make([]float32, n)
	require.NoError(t, BlendStep(c, B, C, H, W, inPlace, inPlace.X, x0))
	assert.Equal(t, ref, inPlace.X)
	assert.Equal(t, refX0, x0)

	// The mask broadcasts over channels: m = 0 keeps the re-noised original everywhere.
	zero := in
	zero.Mask = make([]float32, B*H*W)
	out := make([]float32, n)
	require.NoError(t, BlendStep(c, B, C, H, W, zero, out, nil))
	for i := range out {
		assert.InDelta(t, c.CC*in.Init[i]+c.CD*in.Noise[i], out[i], 1e-6)
	}
	// No mask equals a mask of ones.
	ones, none := in, in
	ones.Mask = filled(B*H*W, 1)
	none.Mask = nil
	a, b := make([]float32, n), make([]float32, n)
	require.NoError(t, BlendStep(c, B, C, H, W, ones, a, nil))
	require.NoError(t, BlendStep(c, B, C, H, W, none, b, nil))
	assert.Equal(t, a, b)

	// Errors: wrong lengths, a mask without init, x0 aliasing out.
	assert.ErrorIs(t, BlendStep(c, B, C, H, W, in, out[:n-1], nil), engine.ErrShape)
	noInit := in
	noInit.Init = nil
	assert.ErrorIs(t, BlendStep(c, B, C, H, W, noInit, out, nil), engine.ErrShape)
	assert.ErrorIs(t, BlendStep(c, B, C, H, W, in, out, out), engine.ErrShape)
	require.NoError(t, BlendStep(c, 0, C, H, W, BlendIn{}, nil, nil))
}

// The Euler and DDIM coefficients reproduce the schedulers' textbook updates when run
// through BlendStep.
func TestBlendStepSchedulers(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	const B, C, H, W = 1, 2, 2, 3
	n := B * C * H * W
	in := blendInputs(r, B, C, H, W)
	in.Hist = [2][]float32{}
	g := 7.5
	eps := func(i int) float64 {
		u, k := float64(in.NoisePred[i]), float64(in.NoisePred[n+i])
		return u + g*(k-u)
	}
	for _, tc := range []struct {
		name  string
		c     engine.BlendCoeffs
		step  func(x, e float64) float64 // masked branch
		renoi func(init, noise float64) float64
		x0    func(x, e float64) float64
	}{
		{
			name: "euler", c: engine.EulerCoeffs(g, 4.2, 2.9),
			step:  func(x, e float64) float64 { x0 := x - 4.2*e; return x + (x-x0)/4.2*(2.9-4.2) },
			renoi: func(i, z float64) float64 { return i + 2.9*z },
			x0:    func(x, e float64) float64 { return x - 4.2*e },
		},
		{
			name: "ddim", c: engine.DDIMCoeffs(g, 0.35, 0.62),
			step: func(x, e float64) float64 {
				x0 := (x - math.Sqrt(1-0.35)*e) / math.Sqrt(0.35)
				return math.Sqrt(0.62)*x0 + math.Sqrt(1-0.62)*e
			},
			renoi: func(i, z float64) float64 { return math.Sqrt(0.62)*i + math.Sqrt(1-0.62)*z },
			x0:    func(x, e float64) float64 { return (x - math.Sqrt(1-0.35)*e) / math.Sqrt(0.35) },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, x0 := make([]float32, n), make([]float32, n)
			require.NoError(t, BlendStep(tc.c, B, C, H, W, in, out, x0))
			for i := 0; i < n; i++ {
				m := float64(in.Mask[i%(H*W)])
				x := float64(in.X[i])
				want := m*tc.step(x, eps(i)) + (1-m)*tc.renoi(float64(in.Init[i]), float64(in.Noise[i]))
				assert.InDelta(t, want, out[i], 2e-5, "out %d", i)
				assert.InDelta(t, tc.x0(x, eps(i)), x0[i], 2e-5, "x0 %d", i)
			}
		})
	}
}

func TestInpaintInput(t *testing.T) {
	// B=2, C=1, 1x2: out rows are [lat*s | mask | masked] for b = 0, 1, 0, 1.
	lat := []float32{1, 2, 3, 4}
	mask := []float32{1, 0, 0, 1}
	masked := []float32{5, 6, 7, 8}
	out := make([]float32, 2*2*3*2)
	require.NoError(t, InpaintInput(2, 1, 1, 2, 0.5, lat, mask, masked, out))
	row0 := []float32{0.5, 1, 1, 0, 5, 6}
	row1 := []float32{1.5, 2, 0, 1, 7, 8}
	assert.Equal(t, append(append(append(row0, row1...), row0...), row1...), out)
	assert.ErrorIs(t, InpaintInput(2, 1, 1, 2, 0.5, lat, mask, masked, out[1:]), engine.ErrShape)
	require.NoError(t, InpaintInput(0, 4, 8, 8, 1, nil, nil, nil, nil))
}
