package ort

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/engine"
)

// cudaBackend returns a cuda backend sharing this process's library, or skips with the
// reason (no GPU build, no CUDA 13 libraries, no GPU). On a GPU machine run the tests
// with ONNXRUNTIME_SHARED_LIBRARY_PATH pointing at the GPU build, as .gpu/verify-ort.sh does.
func cudaBackend(t *testing.T, o CUDAOptions) *Backend {
	t.Helper()
	backend(t)
	b, err := NewWith(Options{Device: DeviceCUDA, CUDA: o})
	require.NoError(t, err)
	if err := b.Available(); err != nil {
		t.Skipf("skipping: CUDA execution provider unavailable: %v", err)
	}
	return b
}

func TestCUDARunAdd(t *testing.T) {
	b := cudaBackend(t, CUDAOptions{})
	assert.Contains(t, b.Version(), "CUDA execution provider")
	e, err := b.Open(writeModel(t, 1, []int64{-1, 3}), engine.OpenOptions{Name: "add"})
	require.NoError(t, err)
	defer e.Close()
	for _, n := range []int64{1, 7} {
		x, _ := engine.NewHostTensor(engine.Float32, engine.Shape{n, 3})
		for i := range x.F32 {
			x.F32[i] = float32(i)*0.5 - 3
		}
		out, err := e.Run(context.Background(), map[string]engine.Tensor{"x": x})
		require.NoError(t, err)
		y := out["y"].(*engine.HostTensor)
		for i := range x.F32 {
			assert.Equal(t, 2*x.F32[i], y.F32[i])
		}
	}
	st := e.(*Engine).Copies()
	assert.Equal(t, int64(2), st.Runs)
	assert.Equal(t, int64((1+7)*3*4), st.ORTInBytes, "ONNX Runtime copies each host input to the GPU")
}

// TestCUDAOutOfMemory: with a 1 MiB arena an 8 MiB request fails with ErrOutOfMemory,
// and the same engine then serves a small request.
func TestCUDAOutOfMemory(t *testing.T) {
	b := cudaBackend(t, CUDAOptions{GPUMemLimit: 1 << 20, ArenaExtendStrategy: "kSameAsRequested"})
	e, err := b.Open(writeModel(t, 1, []int64{-1, 1024}), engine.OpenOptions{Name: "add"})
	require.NoError(t, err)
	defer e.Close()
	big, _ := engine.NewHostTensor(engine.Float32, engine.Shape{2048, 1024})
	_, err = e.Run(context.Background(), map[string]engine.Tensor{"x": big})
	require.Error(t, err)
	t.Logf("8 MiB under a 1 MiB limit: %v", err)
	assert.ErrorIs(t, err, engine.ErrOutOfMemory)
	small, _ := engine.NewHostTensor(engine.Float32, engine.Shape{4, 1024})
	small.F32[5] = 1.5
	out, err := e.Run(context.Background(), map[string]engine.Tensor{"x": small})
	require.NoError(t, err, "the engine must serve the next request after an out-of-memory")
	assert.Equal(t, float32(3), out["y"].(*engine.HostTensor).F32[5])
}

// TestCUDAOnStream runs a session on our own CUDA stream (user_compute_stream).
func TestCUDAOnStream(t *testing.T) {
	b := cudaBackend(t, CUDAOptions{})
	stream, destroy, err := newCUDAStream()
	require.NoError(t, err)
	defer func() { assert.NoError(t, destroy()) }()
	e, err := b.OpenOnStream(writeModel(t, 1, []int64{-1, 3}), engine.OpenOptions{Name: "add"}, stream)
	require.NoError(t, err)
	defer e.Close()
	x, _ := engine.NewHostTensor(engine.Float32, engine.Shape{4, 3})
	for i := range x.F32 {
		x.F32[i] = float32(i)
	}
	out, err := e.Run(context.Background(), map[string]engine.Tensor{"x": x})
	require.NoError(t, err)
	assert.Equal(t, float32(22), out["y"].(*engine.HostTensor).F32[11])
}
