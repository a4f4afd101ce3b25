package testenv

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/engine"
	_ "github.com/grefine/grefine/engine/cpu" // the cpu device (the default of assess.New, refine.New and the pipeline)
	"github.com/grefine/grefine/engine/ort"
	"github.com/grefine/grefine/internal/npy"
	"github.com/grefine/grefine/modelset"
)

// Root is the repository root (the directory holding go.mod), found from the working
// directory of the test.
func Root(t testing.TB) string {
	t.Helper()
	d, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		up := filepath.Dir(d)
		require.NotEqual(t, d, up, "no go.mod above the test's directory")
		d = up
	}
}

// Path joins elements onto the repository root.
func Path(t testing.TB, elem ...string) string {
	return filepath.Join(append([]string{Root(t)}, elem...)...)
}

// ORT returns the ONNX Runtime backend. Without the library the test is skipped with the
// reason, unless GRF_REQUIRE_ORT=1 (make test), where it fails.
func ORT(t testing.TB) engine.Backend {
	t.Helper()
	b, err := ort.New("")
	require.NoError(t, err)
	if err := b.Available(); err != nil {
		if os.Getenv("GRF_REQUIRE_ORT") == "1" {
			t.Fatalf("onnxruntime required (GRF_REQUIRE_ORT=1): %v", err)
		}
		t.Skipf("skipping: onnxruntime not installed (run `make setup`): %v", err)
	}
	return b
}

// TinySet loads and verifies testdata/models/tiny.
func TinySet(t testing.TB) *modelset.Set {
	t.Helper()
	s, err := modelset.Load(Path(t, "testdata", "models", "tiny"), modelset.Options{})
	require.NoError(t, err, "the committed tiny model set must load and verify")
	return s
}

// Golden reads testdata/goldens/<rel> (.npy).
func Golden(t testing.TB, rel string) *npy.Array {
	t.Helper()
	a, err := npy.ReadFile(Path(t, "testdata", "goldens", rel))
	require.NoError(t, err)
	return a
}

// MaxAbs is the largest |a[i] - b[i]| (float64); the slices must have equal lengths.
func MaxAbs(t testing.TB, a, b []float32) float64 {
	t.Helper()
	require.Equal(t, len(a), len(b), "lengths differ")
	m := 0.0
	for i := range a {
		m = math.Max(m, math.Abs(float64(a[i])-float64(b[i])))
	}
	return m
}

// CPUStream is a stream of the cpu device (the reference of every device), closed at the
// end of the test.
func CPUStream(t testing.TB) engine.Stream {
	t.Helper()
	d, err := engine.NewDevice("cpu", nil)
	require.NoError(t, err)
	s, err := d.NewStream()
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}
