package cpu

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/engine"
)

type fakeTensor struct{ engine.HostTensor }

func (*fakeTensor) DeviceName() string { return "fake" }

func TestDeviceStreamCopies(t *testing.T) {
	var d Device
	require.NoError(t, d.Available())
	assert.Equal(t, "cpu", d.Name())
	assert.Equal(t, "cpu", d.Info().Kind)
	st, err := d.NewStream()
	require.NoError(t, err)
	defer st.Close()
	assert.Zero(t, st.Handle())
	x, err := d.Alloc(engine.Float32, engine.Shape{2, 2})
	require.NoError(t, err)
	assert.True(t, math.IsNaN(float64(x.(*engine.HostTensor).F32[3])), "fresh memory is NaN, as on the emulator")
	h, _ := engine.FromFloat32(engine.Shape{2, 2}, []float32{1, 2, 3, 4})
	require.NoError(t, st.Upload(x, h))
	h.F32[0] = 9
	back, _ := engine.NewHostTensor(engine.Float32, engine.Shape{2, 2})
	require.NoError(t, st.Download(back, x))
	assert.Equal(t, []float32{1, 2, 3, 4}, back.F32, "upload copies")
	v, err := d.View(x, 2, engine.Shape{2})
	require.NoError(t, err)
	require.NoError(t, st.Zero(v))
	require.NoError(t, st.Download(back, x))
	assert.Equal(t, []float32{1, 2, 0, 0}, back.F32, "a view shares its base's memory")
	_, err = d.View(x, 3, engine.Shape{2})
	assert.ErrorIs(t, err, engine.ErrShape)
	y, _ := d.Alloc(engine.Float32, engine.Shape{3, 3})
	require.NoError(t, st.Copy2D(y, x, engine.Copy2D{Rows: 2, Cols: 2, DstOffset: 4, DstPitch: 3, SrcPitch: 2}))
	assert.Equal(t, []float32{1, 2, 0, 0}, []float32{y.(*engine.HostTensor).F32[4], y.(*engine.HostTensor).F32[5], y.(*engine.HostTensor).F32[7], y.(*engine.HostTensor).F32[8]})
	assert.ErrorIs(t, st.Copy2D(y, x, engine.Copy2D{Rows: 2, Cols: 2, DstOffset: 6, DstPitch: 3, SrcPitch: 2}), engine.ErrShape, "a write past the end")
	require.NoError(t, st.Sync())
	assert.Equal(t, engine.Counters{HostToDevice: 1, BytesH2D: 16, DeviceToHost: 2, BytesD2H: 32, DeviceToDevice: 1, BytesD2D: 16, Syncs: 3, Launches: 6},
		st.Counters(), "copies and syncs are counted as on a GPU")
	err = st.Download(back, &fakeTensor{})
	assert.ErrorIs(t, err, engine.ErrDevice)
	assert.ErrorIs(t, st.Upload(x, nil), engine.ErrShape)
	small, _ := engine.NewHostTensor(engine.Float32, engine.Shape{3})
	assert.ErrorIs(t, st.Download(small, x), engine.ErrShape)
	require.NoError(t, st.Close())
	assert.ErrorIs(t, st.Sync(), engine.ErrClosed)
	assert.NoError(t, d.Close())
}

func TestRegistry(t *testing.T) {
	d, err := engine.NewDevice("cpu", nil)
	require.NoError(t, err)
	assert.Equal(t, "cpu", d.Name())
	_, err = engine.NewDevice("cpu", map[string]string{"lib": "x"})
	assert.ErrorIs(t, err, engine.ErrUnavailable)
	_, err = engine.NewDevice("nosuch", nil)
	assert.ErrorIs(t, err, engine.ErrUnavailable)
	assert.Contains(t, err.Error(), "cpu")
}

func ExampleResizeBilinear() {
	// Upsample a 1x2 ramp to 1x4 with PyTorch's align_corners=False semantics.
	out := make([]float32, 4)
	if err := ResizeBilinear([]float32{0, 1}, 1, 1, 2, out, 1, 4); err != nil {
		panic(err)
	}
	fmt.Println(out)
	// Output: [0 0.25 0.75 1]
}

func ExampleFuseMaps() {
	// A uniformly good image (every probability 0.95) gets no defect mask, thanks to the
	// absolute gate; a uniformly poor one (0.3) is all defect.
	p := engine.DefaultFuseParams(16, 16)
	T := p.Tokens()
	good := make([]float32, 2*4*T)
	for i := range good {
		good[i] = 0.95
		if i >= 4*T {
			good[i] = 0.3
		}
	}
	out := FuseMapsOut{
		Score: make([]float32, 2), PMap: make([]float32, 2*16*16),
		MaskImg: make([]float32, 2*16*16), MaskLat: make([]float32, 2*2*2),
	}
	if err := FuseMaps(p, 2, good, nil, out); err != nil {
		panic(err)
	}
	fmt.Printf("scores %.3f %.3f, latent masks %v\n", out.Score[0], out.Score[1], out.MaskLat)
	// Output: scores 0.950 0.024, latent masks [0 0 0 0 1 1 1 1]
}

func ExampleStream() {
	// The pipeline's view of a device: tensors, a stream, copies and ops, counted.
	d, _ := engine.NewDevice("cpu", nil)
	s, _ := d.NewStream()
	defer s.Close()
	x, _ := d.Alloc(engine.Float32, engine.Shape{4})
	host, _ := engine.FromFloat32(engine.Shape{4}, []float32{-1, 0.25, 0.5, 2})
	_ = s.Upload(x, host)
	_ = s.Pointwise(engine.Pointwise{Op: engine.PointAffine, Src: x, Dst: x, A: 0.5, B: 0.5, Clamp01: true})
	_ = s.Download(host, x)
	c := s.Counters()
	fmt.Println(host.F32, c.HostToDevice, c.DeviceToHost, c.Syncs)
	// Output: [0 0.625 0.75 1] 1 1 1
}
