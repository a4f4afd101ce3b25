package cpu

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/engine"
)

type fakeTensor struct{ engine.HostTensor }

func (*fakeTensor) DeviceName() string { return "fake" }

func TestDeviceCopies(t *testing.T) {
	var d Device
	require.NoError(t, d.Available())
	assert.Equal(t, "cpu", d.Name())
	h, err := engine.FromFloat32(engine.Shape{2, 2}, []float32{1, 2, 3, 4})
	require.NoError(t, err)
	up, err := d.Upload(h)
	require.NoError(t, err)
	h.F32[0] = 9
	down, err := d.Download(up)
	require.NoError(t, err)
	assert.Equal(t, []float32{1, 2, 3, 4}, down.F32, "upload copies")
	assert.Equal(t, engine.Shape{2, 2}, down.Shape())
	_, err = d.Download(&fakeTensor{})
	assert.ErrorIs(t, err, engine.ErrDevice)
	_, err = d.Upload(nil)
	assert.ErrorIs(t, err, engine.ErrShape)
	assert.NoError(t, d.Close())
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
