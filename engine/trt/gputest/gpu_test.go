package gputest

import (
	"context"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/engine/cuda"
	"github.com/grefine/grefine/engine/trt"
	"github.com/grefine/grefine/engine/trt/trttest"
)

func shim(t *testing.T, graphs bool) *trt.Backend {
	t.Helper()
	lib := os.Getenv("GRF_TRT_LIB")
	if lib == "" {
		t.Skip("GRF_TRT_LIB is not set: no real shim to test")
	}
	if _, err := os.Stat(lib); err != nil {
		t.Skipf("GRF_TRT_LIB=%s: %v", lib, err)
	}
	b := trt.New(trt.Options{Lib: lib, CUDAGraphs: graphs,
		Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)})
	t.Cleanup(func() { assert.NoError(t, b.Close()) })
	if err := b.Available(); err != nil {
		if errors.Is(err, engine.ErrUnavailable) && strings.Contains(err.Error(), "no CUDA device") {
			t.Skipf("no GPU here: %v", err)
		}
		require.NoError(t, err)
	}
	return b
}

func stub() bool { return os.Getenv("GRF_TRT_STUB") == "1" }

func TestDeviceAndVersions(t *testing.T) {
	b := shim(t, false)
	v, err := b.Versions()
	require.NoError(t, err)
	t.Logf("versions: %+v (%s)", v, b.Version())
	assert.Equal(t, 2, v.ABI)
	assert.Contains(t, []int{10, 11}, v.Compiled.Major)
	assert.Greater(t, v.CUDA, 0)
	d, err := b.Device()
	require.NoError(t, err)
	t.Logf("device: %+v", d)
	assert.GreaterOrEqual(t, d.Count, 1)
	assert.GreaterOrEqual(t, d.CCMajor, 5)
	assert.NotEmpty(t, d.Name)
	assert.Greater(t, d.MemoryBytes, int64(1<<30))
}

func TestBuffers(t *testing.T) {
	b := shim(t, false)
	rng := rand.New(rand.NewSource(1))
	for _, n := range []int{0, 1, 1000, 1 << 20} {
		xs := make([]float32, n)
		for i := range xs {
			xs[i] = rng.Float32()*2 - 1
		}
		h, err := engine.FromFloat32(engine.Shape{int64(n)}, xs)
		require.NoError(t, err)
		buf, err := b.Upload(h)
		require.NoError(t, err)
		back, err := buf.Download()
		require.NoError(t, err)
		assert.Equal(t, xs, back.F32, "n=%d", n)
		require.NoError(t, buf.Close())
		require.NoError(t, buf.Close())
	}
	big, err := b.Alloc(engine.Uint8, engine.Shape{256 << 20})
	require.NoError(t, err)
	require.NoError(t, big.Close())
	require.NoError(t, b.Synchronize())
}

func TestPlanErrors(t *testing.T) {
	b := shim(t, false)
	_, err := b.OpenPlan([]byte("definitely not a plan"), engine.OpenOptions{Name: "junk"})
	require.Error(t, err)
	t.Logf("junk plan: %v", err)
	if stub() {
		assert.ErrorContains(t, err, "createInferRuntime failed")
		return
	}
	assert.ErrorIs(t, err, engine.ErrModel)
}

func TestBuildAndRun(t *testing.T) {
	if stub() {
		t.Skip("stub TensorRT: no builder")
	}
	b := shim(t, true)
	onnx, err := filepath.Abs("testdata/affine.onnx")
	require.NoError(t, err)
	plan, err := b.BuildPlan(context.Background(), trt.BuildRequest{
		ONNXPath: onnx,
		Profiles: [][]trt.ShapeRange{
			{{Name: "x", Min: engine.Shape{4, 3}, Opt: engine.Shape{4, 3}, Max: engine.Shape{4, 3}}},
			{{Name: "x", Min: engine.Shape{1, 3}, Opt: engine.Shape{8, 3}, Max: engine.Shape{64, 3}}},
		},
		WorkspaceBytes: 64 << 20,
	})
	require.NoError(t, err)
	t.Logf("plan: %d bytes", len(plan))
	e, err := b.OpenPlan(plan, engine.OpenOptions{Name: "affine"})
	require.NoError(t, err)
	defer e.Close()
	assert.Equal(t, []engine.TensorDesc{{Name: "x", DType: engine.Float32, Shape: engine.Shape{-1, 3}}}, e.Inputs())
	require.Len(t, e.Plan().Profiles, 2)

	for _, rows := range []int{4, 1, 64, 4} {
		xs := make([]float32, rows*3)
		for i := range xs {
			xs[i] = float32(i) - 7.5
		}
		h, err := engine.FromFloat32(engine.Shape{int64(rows), 3}, xs)
		require.NoError(t, err)
		x, err := b.Upload(h)
		require.NoError(t, err)
		y, err := b.Alloc(engine.Float32, engine.Shape{int64(rows), 3})
		require.NoError(t, err)
		for rep := 0; rep < 3; rep++ {
			require.NoError(t, e.RunInto(context.Background(), map[string]engine.Tensor{"x": x}, map[string]engine.Tensor{"y": y}))
		}
		got, err := y.(*trt.Buffer).Download()
		require.NoError(t, err)
		for i, v := range xs {
			assert.Equal(t, 2*v+1, got.F32[i], "rows=%d i=%d", rows, i)
		}
		require.NoError(t, x.Close())
		require.NoError(t, y.Close())
	}
	t.Logf("graph replays: %d, scratch: %d bytes", e.Replays(), b.ScratchBytes())
	assert.Greater(t, e.Replays(), 0)
}

// affinePlan builds testdata/affine.onnx (y = 2x+1) with one dynamic profile.
func affinePlan(t *testing.T, b *trt.Backend) *trt.Engine {
	t.Helper()
	onnx, err := filepath.Abs("testdata/affine.onnx")
	require.NoError(t, err)
	plan, err := b.BuildPlan(context.Background(), trt.BuildRequest{ONNXPath: onnx, WorkspaceBytes: 64 << 20,
		Profiles: [][]trt.ShapeRange{{{Name: "x", Min: engine.Shape{1, 3}, Opt: engine.Shape{8, 3}, Max: engine.Shape{64, 3}}}}})
	require.NoError(t, err)
	e, err := b.OpenPlan(plan, engine.OpenOptions{Name: "affine"})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, e.Close()) })
	return e
}

// TestCUDAPairing: engine/cuda's memory and streams serve TensorRT directly: two slots,
// each on its own engine/cuda stream, bind cuda.Tensors by address, allocate outputs with
// the cuda device, and run concurrently with the results of serial runs. Needs a real shim
// and libgrefine_cuda.so on a GPU.
func TestCUDAPairing(t *testing.T) {
	if stub() {
		t.Skip("stub TensorRT: no builder")
	}
	b := shim(t, true)
	dev, err := cuda.Open(cuda.Options{Ordinal: b.DeviceIndex()})
	if err != nil {
		t.Skipf("engine/cuda unavailable: %v", err)
	}
	defer dev.Close()
	trttest.CUDAPairing(t, b, dev, affinePlan(t, b), 20)
}
