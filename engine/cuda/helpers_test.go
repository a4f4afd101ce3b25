package cuda

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/engine"
)

// The device shared by the tests, opened once in TestMain; openErr says why there is none.
var (
	testDev *Device
	openErr error
)

func TestMain(m *testing.M) {
	testDev, openErr = Open(Options{})
	code := m.Run()
	if testDev != nil {
		testDev.Close()
	}
	os.Exit(code)
}

// gpu returns the test device or skips with the reason.
func gpu(tb testing.TB) *Device {
	tb.Helper()
	if openErr != nil {
		tb.Skipf("skipping: no usable GPU: %v", openErr)
	}
	return testDev
}

func newStream(tb testing.TB, d *Device) *Stream {
	tb.Helper()
	s, err := d.NewStream()
	require.NoError(tb, err)
	tb.Cleanup(func() { require.NoError(tb, s.Close()) })
	return s
}

// sentinel fills guard bands and unwritten outputs; compared by bit pattern.
var sentinel = math.Float32frombits(0x7fc0dead)

// guarded is a device tensor view with guard bands of g floats on each side.
type guarded struct {
	base *Tensor
	view *Tensor
	n, g int
}

// newGuarded allocates a float32 view of shape with g-float guard bands, filled with data
// (or with sentinels when data is nil).
func newGuarded(tb testing.TB, d *Device, s *Stream, shape engine.Shape, g int, data []float32) *guarded {
	tb.Helper()
	n := int(shape.NumElements())
	require.GreaterOrEqual(tb, n, 0)
	host := make([]float32, n+2*g)
	for i := range host {
		host[i] = sentinel
	}
	if data != nil {
		require.Len(tb, data, n)
		copy(host[g:], data)
	}
	base, err := d.AllocTensor(engine.Float32, engine.Shape{int64(n + 2*g)})
	require.NoError(tb, err)
	tb.Cleanup(func() { require.NoError(tb, base.Close()) })
	h, err := engine.FromFloat32(engine.Shape{int64(n + 2*g)}, host)
	require.NoError(tb, err)
	require.NoError(tb, s.Upload(base, h))
	view := &Tensor{dev: d, dtype: engine.Float32, shape: shape.Clone(), ptr: unsafe.Add(base.ptr, 4*g), bytes: 4 * n}
	return &guarded{base: base, view: view, n: n, g: g}
}

// read downloads the view after the stream's work and checks both guard bands.
func (gd *guarded) read(tb testing.TB, s *Stream, name string) []float32 {
	tb.Helper()
	h, err := engine.NewHostTensor(engine.Float32, gd.base.shape)
	require.NoError(tb, err)
	require.NoError(tb, s.Download(h, gd.base))
	bad := 0
	for i := 0; i < gd.g; i++ {
		for _, j := range []int{i, gd.g + gd.n + i} {
			if math.Float32bits(h.F32[j]) != math.Float32bits(sentinel) {
				bad++
			}
		}
	}
	require.Zerof(tb, bad, "%s: %d guard-band values overwritten", name, bad)
	return h.F32[gd.g : gd.g+gd.n]
}

func randSlice(r *rand.Rand, n int, lo, hi float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = lo + (hi-lo)*r.Float32()
	}
	return v
}

// mismatch compares got with want under tol(want) and returns how many differ, plus a
// description of the worst one. NaN in got (an unwritten sentinel) always differs.
func mismatch(got, want []float32, tol func(w float32) float64) (int, string) {
	n, worst, wi := 0, -1.0, -1
	for i := range want {
		d := math.Abs(float64(got[i]) - float64(want[i]))
		if math.IsNaN(float64(got[i])) && !math.IsNaN(float64(want[i])) {
			d = math.Inf(1)
		}
		if d > tol(want[i]) {
			n++
		}
		if d > worst {
			worst, wi = d, i
		}
	}
	if wi < 0 {
		return n, "empty"
	}
	return n, fmt.Sprintf("max |diff| %.3g at %d (got %v, want %v)", worst, wi, got[wi], want[wi])
}

func absTol(a float64) func(float32) float64 { return func(float32) float64 { return a } }

func relTol(a float64) func(float32) float64 {
	return func(w float32) float64 { return a * math.Max(1, math.Abs(float64(w))) }
}

func requireErrorIs(tb testing.TB, err, target error) {
	tb.Helper()
	require.Error(tb, err)
	require.Truef(tb, errors.Is(err, target), "error %q does not wrap %q", err, target)
}
