package ort

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/engine"
)

// backend returns the real backend or skips (fails under GRF_REQUIRE_ORT=1, which
// `make test` sets) when the library is not installed.
func backend(t testing.TB) *Backend {
	t.Helper()
	b, err := New("")
	require.NoError(t, err)
	if err := b.Available(); err != nil {
		if os.Getenv("GRF_REQUIRE_ORT") == "1" {
			t.Fatalf("onnxruntime required: %v", err)
		}
		t.Skipf("skipping: onnxruntime not installed (run `make setup`): %v", err)
	}
	return b
}

func writeModel(t testing.TB, elem int64, dims []int64) string {
	p := filepath.Join(t.TempDir(), "add.onnx")
	require.NoError(t, os.WriteFile(p, addModel(elem, dims), 0o644))
	return p
}

func TestRunAdd(t *testing.T) {
	b := backend(t)
	require.Contains(t, b.Version(), "onnxruntime 1.")
	e, err := b.Open(writeModel(t, 1, []int64{-1, 3}), engine.OpenOptions{Name: "add"})
	require.NoError(t, err)
	defer e.Close()
	assert.Equal(t, []engine.TensorDesc{{Name: "x", DType: engine.Float32, Shape: engine.Shape{-1, 3}}}, e.Inputs())
	assert.Equal(t, []engine.TensorDesc{{Name: "y", DType: engine.Float32, Shape: engine.Shape{-1, 3}}}, e.Outputs())
	for _, n := range []int64{1, 2, 5} {
		x, _ := engine.NewHostTensor(engine.Float32, engine.Shape{n, 3})
		for i := range x.F32 {
			x.F32[i] = float32(i) - 1.5
		}
		out, err := e.Run(context.Background(), map[string]engine.Tensor{"x": x})
		require.NoError(t, err)
		y := out["y"].(*engine.HostTensor)
		assert.Equal(t, engine.Shape{n, 3}, y.Shape())
		for i := range x.F32 {
			assert.Equal(t, 2*x.F32[i], y.F32[i])
		}
	}
}

func TestBindingErrors(t *testing.T) {
	b := backend(t)
	e, err := b.Open(writeModel(t, 1, []int64{-1, 3}), engine.OpenOptions{Name: "add"})
	require.NoError(t, err)
	defer e.Close()
	f32, _ := engine.NewHostTensor(engine.Float32, engine.Shape{2, 3})
	i32, _ := engine.NewHostTensor(engine.Int32, engine.Shape{2, 3})
	bad, _ := engine.NewHostTensor(engine.Float32, engine.Shape{2, 4})
	rank, _ := engine.NewHostTensor(engine.Float32, engine.Shape{6})
	for _, tc := range []struct {
		name string
		in   map[string]engine.Tensor
		want error
	}{
		{"missing", map[string]engine.Tensor{}, engine.ErrBinding},
		{"unknown", map[string]engine.Tensor{"x": f32, "z": f32}, engine.ErrBinding},
		{"dtype", map[string]engine.Tensor{"x": i32}, engine.ErrDType},
		{"shape", map[string]engine.Tensor{"x": bad}, engine.ErrShape},
		{"rank", map[string]engine.Tensor{"x": rank}, engine.ErrShape},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.Run(context.Background(), tc.in)
			require.Error(t, err)
			assert.ErrorIs(t, err, tc.want)
		})
	}
}

func TestOpenErrors(t *testing.T) {
	b := backend(t)
	dir := t.TempDir()
	_, err := b.Open(filepath.Join(dir, "missing.onnx"), engine.OpenOptions{})
	assert.ErrorIs(t, err, engine.ErrModel)
	corrupt := filepath.Join(dir, "corrupt.onnx")
	require.NoError(t, os.WriteFile(corrupt, []byte("this is not a protobuf \x00\xff\x01"), 0o644))
	_, err = b.Open(corrupt, engine.OpenOptions{Name: "corrupt"})
	assert.ErrorIs(t, err, engine.ErrModel)
	assert.Contains(t, err.Error(), "corrupt")
	truncated := filepath.Join(dir, "truncated.onnx")
	m := addModel(1, []int64{-1, 3})
	require.NoError(t, os.WriteFile(truncated, m[:len(m)/2], 0o644))
	_, err = b.Open(truncated, engine.OpenOptions{})
	assert.ErrorIs(t, err, engine.ErrModel)
}

func TestCloseAndCancel(t *testing.T) {
	b := backend(t)
	e, err := b.Open(writeModel(t, 1, []int64{-1, 3}), engine.OpenOptions{Name: "add"})
	require.NoError(t, err)
	x, _ := engine.NewHostTensor(engine.Float32, engine.Shape{1, 3})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = e.Run(ctx, map[string]engine.Tensor{"x": x})
	assert.ErrorIs(t, err, context.Canceled)
	require.NoError(t, e.Close())
	require.NoError(t, e.Close(), "Close is idempotent")
	_, err = e.Run(context.Background(), map[string]engine.Tensor{"x": x})
	assert.ErrorIs(t, err, engine.ErrClosed)
	var nilEngine *Engine
	assert.NoError(t, nilEngine.Close())
}

// probeInChild runs TestLibraryProbeChild in a fresh process (ONNX Runtime can be
// initialised once per process) and returns what it printed.
func probeInChild(t *testing.T, lib string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLibraryProbeChild$", "-test.v")
	cmd.Env = append(os.Environ(), "GRF_ORT_CHILD_LIB="+lib)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	return string(out)
}

// TestLibraryProbeChild is the child half of the library tests: it only runs when a parent
// test sets GRF_ORT_CHILD_LIB.
func TestLibraryProbeChild(t *testing.T) {
	lib := os.Getenv("GRF_ORT_CHILD_LIB")
	if lib == "" {
		t.Skip("skipping: runs only as a child process of TestLibraryMissing/TestLibraryTooOld")
	}
	b, err := New(lib)
	require.NoError(t, err)
	err = b.Available()
	require.ErrorIs(t, err, engine.ErrUnavailable)
	_, err2 := b.Open("x.onnx", engine.OpenOptions{})
	require.ErrorIs(t, err2, engine.ErrUnavailable)
	require.Empty(t, b.Version())
	t.Logf("PROBE-ERROR: %v", err)
}

func TestLibraryMissing(t *testing.T) {
	out := probeInChild(t, filepath.Join(t.TempDir(), "libonnxruntime.so.1"))
	assert.Contains(t, out, "PROBE-ERROR: engine: unavailable: ort: onnxruntime library not found")
}

// TestLibraryTooOld builds a fake libonnxruntime whose OrtGetApiBase offers no API 24,
// as a too-old ONNX Runtime does, and checks the clean error.
func TestLibraryTooOld(t *testing.T) {
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Skipf("skipping: no C compiler to build the fake library: %v", err)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "old.c")
	require.NoError(t, os.WriteFile(src, []byte(`
typedef struct { const void* (*GetApi)(unsigned); const char* (*GetVersionString)(void); } OrtApiBase;
static const void* get_api(unsigned v) { (void)v; return 0; }
static const char* version(void) { return "1.10.0"; }
static const OrtApiBase base = { get_api, version };
const OrtApiBase* OrtGetApiBase(void) { return &base; }
`), 0o644))
	lib := filepath.Join(dir, "libonnxruntime.so.1")
	out, err := exec.Command(cc, "-shared", "-fPIC", "-o", lib, src).CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Contains(t, probeInChild(t, lib), "1.24 or newer")
}

func TestSwitchLibraryRefused(t *testing.T) {
	backend(t)
	b, err := New(filepath.Join(t.TempDir(), "other.so"))
	require.NoError(t, err)
	assert.ErrorIs(t, b.Available(), engine.ErrUnavailable)
	assert.Contains(t, b.Available().Error(), "is already loaded from")
}

func TestRegistered(t *testing.T) {
	assert.Contains(t, engine.Backends(), Name)
	b, err := engine.NewBackend(Name, nil)
	require.NoError(t, err)
	assert.Equal(t, Name, b.Name())
	assert.Equal(t, "cpu", b.DeviceName())
}
