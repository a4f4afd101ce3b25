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
	"github.com/grefine/grefine/engine/cuda/cudaemu"
)

// The device shared by the tests, opened once in TestMain; openErr says why there is none,
// testLib which library the tests run on and why.
var (
	testDev *Device
	openErr error
	testLib string
)

// TestMain opens the device the tests run on: the library named by $GRF_CUDA_TEST_LIB;
// else, with a GPU visible (gpuVisible), the real libgrefine_cuda.so found as Open
// finds it (the GPU machine's run, .gpu/verify.sh); else cuda-emu, built into a temporary
// directory, with two emulated devices and a 256 MiB budget each (so every kernel's Go
// twin is checked against its C reference loop in every `make test`).
func TestMain(m *testing.M) {
	lib := os.Getenv("GRF_CUDA_TEST_LIB")
	var tmp string
	switch {
	case lib != "":
		testLib = "$GRF_CUDA_TEST_LIB=" + lib
	case gpuVisible():
		testLib = "the real library (a GPU is visible)"
	default:
		var err error
		if tmp, err = os.MkdirTemp("", "grefine-cuda-emu-"); err == nil {
			lib, err = cudaemu.Build(tmp)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "engine/cuda tests:", err)
			os.Exit(2)
		}
		for k, v := range map[string]string{"GRF_CUDA_EMU_DEVICES": "2", "GRF_CUDA_EMU_MEMORY": "256M"} {
			if os.Getenv(k) == "" {
				os.Setenv(k, v)
			}
		}
		testLib = "cuda-emu (no GPU visible), " + lib
	}
	testDev, openErr = Open(Options{LibPath: lib})
	code := m.Run()
	if testDev != nil {
		testDev.Close()
	}
	if tmp != "" {
		os.RemoveAll(tmp)
	}
	os.Exit(code)
}

// gpuVisible reports an NVIDIA GPU: the driver lists one (/proc/driver/nvidia/gpus), or
// its device node exists (/dev/nvidia0; /dev/nvidiactl alone proves nothing: packages
// create it without a driver).
func gpuVisible() bool {
	if ents, err := os.ReadDir("/proc/driver/nvidia/gpus"); err == nil && len(ents) > 0 {
		return true
	}
	_, err := os.Stat("/dev/nvidia0")
	return err == nil
}

// gpu returns the test device or skips with the reason.
func gpu(tb testing.TB) *Device {
	tb.Helper()
	if openErr != nil {
		tb.Skipf("skipping: no usable GPU (tests run on %s): %v", testLib, openErr)
	}
	return testDev
}

// emulated reports whether the tests run on cuda-emu, whose kernels are the reference
// loops: they must then equal the Go twins bit for bit.
func emulated() bool { return testDev != nil && testDev.GPU().Emulated }

// tol is the tolerance of a comparison with a Go twin: t on a GPU, bit for bit on cuda-emu.
func tol(t func(float32) float64) func(float32) float64 {
	if emulated() {
		return bitExact
	}
	return t
}

// bitExact makes mismatch compare bit patterns.
func bitExact(float32) float64 { return -1 }

func newStream(tb testing.TB, d *Device) *Stream {
	tb.Helper()
	s, err := d.NewCUDAStream()
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

// mismatch compares got with want under tol(want) (negative: bit for bit) and returns how
// many differ, plus a description of the worst one. NaN in got (an unwritten sentinel)
// always differs.
func mismatch(got, want []float32, tol func(w float32) float64) (int, string) {
	n, worst, wi := 0, -1.0, -1
	for i := range want {
		d := math.Abs(float64(got[i]) - float64(want[i]))
		if math.IsNaN(float64(got[i])) && !math.IsNaN(float64(want[i])) {
			d = math.Inf(1)
		}
		if t := tol(want[i]); (t < 0 && math.Float32bits(got[i]) != math.Float32bits(want[i])) || (t >= 0 && d > t) {
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
