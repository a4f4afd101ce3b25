package engine

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestEulerCoeffs(t *testing.T) {
	c := EulerCoeffs(7.5, 3.0, 2.25)
	assert.Equal(t, float32(7.5), c.Guidance)
	assert.Equal(t, float32(1), c.CA)
	assert.InDelta(t, 2.25-3.0, c.CB, 1e-7)
	assert.Equal(t, float32(1), c.CC)
	assert.InDelta(t, 2.25, c.CD, 1e-7)
	assert.InDelta(t, -3.0, c.CF, 1e-7)
	// The last step (sigmaNext = 0) lands on the predicted clean sample.
	last := EulerCoeffs(1, 0.5, 0)
	assert.Equal(t, last.CB, last.CF)
	assert.Zero(t, last.CD)
}

func TestDDIMCoeffs(t *testing.T) {
	a, ap := 0.4, 0.7
	c := DDIMCoeffs(2, a, ap)
	// x' = sqrt(ap)*(x - sqrt(1-a)*e)/sqrt(a) + sqrt(1-ap)*e, expanded.
	x, e := 0.8, -1.3
	want := math.Sqrt(ap)*(x-math.Sqrt(1-a)*e)/math.Sqrt(a) + math.Sqrt(1-ap)*e
	assert.InDelta(t, want, float64(c.CA)*x+float64(c.CB)*e, 1e-6)
	assert.InDelta(t, (x-math.Sqrt(1-a)*e)/math.Sqrt(a), float64(c.CE)*x+float64(c.CF)*e, 1e-6)
	assert.InDelta(t, math.Sqrt(ap), c.CC, 1e-7)
	assert.InDelta(t, math.Sqrt(1-ap), c.CD, 1e-7)
	// alpha_prev = 1 (final step, set_alpha_to_one) returns x0 exactly.
	f := DDIMCoeffs(1, a, 1)
	assert.InDelta(t, f.CE, f.CA, 1e-7)
	assert.InDelta(t, f.CF, f.CB, 1e-7)
	assert.Zero(t, f.CD)
}

func TestFuseParamsValidate(t *testing.T) {
	p := DefaultFuseParams(1024, 768)
	assert.NoError(t, p.Validate())
	assert.Equal(t, 197, p.Tokens())
	assert.Equal(t, 128, p.LatentH)
	assert.Equal(t, 96, p.LatentW)
	for name, mut := range map[string]func(*FuseParams){
		"grid":   func(p *FuseParams) { p.GridW = 0 },
		"big":    func(p *FuseParams) { p.GridH, p.GridW = 65, 65 },
		"size":   func(p *FuseParams) { p.Height = 0 },
		"latent": func(p *FuseParams) { p.LatentW = 0 },
		"radius": func(p *FuseParams) { p.Radius = -1 },
		"alpha":  func(p *FuseParams) { p.Alpha[2] = 0 },
	} {
		q := p
		mut(&q)
		assert.ErrorIs(t, q.Validate(), ErrShape, name)
	}
	assert.Equal(t, "bicubic", ResizeBicubic.String())
}
