package cuda

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/engine/cpu"
)

// TestOpsMatchCPUOps runs the refiner's loop ops on the GPU and on the cpu twin with the
// same inputs: InpaintInput and ScaleCopies exactly (one float32 rounding apart for the
// scale), BlendStep within 1e-5·max(1,|x|); the copies are counted.
func TestOpsMatchCPUOps(t *testing.T) {
	d := gpu(t)
	o, err := NewOps(d)
	require.NoError(t, err)
	defer o.Close()
	r := rand.New(rand.NewPCG(5, 6))
	rnd := func(shape engine.Shape) *engine.HostTensor {
		h, err := engine.NewHostTensor(engine.Float32, shape)
		require.NoError(t, err)
		for i := range h.F32 {
			h.F32[i] = r.Float32()*2 - 1
		}
		return h
	}
	up := func(h *engine.HostTensor) engine.Tensor {
		t2, err := o.Upload(h)
		require.NoError(t, err)
		return t2
	}
	C, h, w := 4, 5, 7 // ragged: h*w not a multiple of 4
	lat := engine.Shape{1, int64(C), int64(h), int64(w)}
	x, z, m, noise := rnd(lat), rnd(lat), rnd(engine.Shape{1, 1, int64(h), int64(w)}), rnd(lat)
	np := rnd(engine.Shape{2, int64(C), int64(h), int64(w)})
	var c cpu.Ops

	in9 := engine.Shape{2, int64(2*C + 1), int64(h), int64(w)}
	wantIn, _ := c.Zeros(in9)
	require.NoError(t, c.InpaintInput(0.7, x, m, z, wantIn))
	gotIn, err := o.Zeros(in9)
	require.NoError(t, err)
	require.NoError(t, o.InpaintInput(0.7, up(x), up(m), up(z), gotIn))
	gh, err := o.Download(gotIn)
	require.NoError(t, err)
	assert.Equal(t, wantIn.(*engine.HostTensor).F32, gh.F32)

	two := engine.Shape{2, int64(C), int64(h), int64(w)}
	wantS, _ := c.Zeros(two)
	require.NoError(t, c.ScaleCopies(0.3, x, wantS))
	gotS, err := o.Zeros(two)
	require.NoError(t, err)
	require.NoError(t, o.ScaleCopies(0.3, up(x), gotS))
	sh, err := o.Download(gotS)
	require.NoError(t, err)
	for i, v := range wantS.(*engine.HostTensor).F32 {
		assert.InDelta(t, v, sh.F32[i], 1e-6)
	}

	co := engine.EulerCoeffs(7.5, 1.2, 0.9)
	wantX, _ := c.Upload(x)
	wantX0, _ := c.Zeros(lat)
	require.NoError(t, c.BlendStep(co, engine.BlendTensors{NoisePred: np, X: wantX, Init: z, Noise: noise, Mask: m}, wantX, wantX0))
	gx := up(x)
	gx0, err := o.Zeros(lat)
	require.NoError(t, err)
	require.NoError(t, o.BlendStep(co, engine.BlendTensors{NoisePred: up(np), X: gx, Init: up(z), Noise: up(noise), Mask: up(m)}, gx, gx0))
	xh, err := o.Download(gx)
	require.NoError(t, err)
	for i, v := range wantX.(*engine.HostTensor).F32 {
		assert.InDelta(t, v, xh.F32[i], 1e-5*max(1, float64(abs32(v))))
	}
	st := o.Copies()
	assert.Equal(t, 3, st.DeviceToHost)
	assert.Greater(t, st.HostToDevice, 8)
	t.Logf("copies: %+v", st)
}
