package cuda

import (
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/engine/cuda/cudaemu"
)

// The tests below check that cuda-emu behaves like a GPU where a host-memory stand-in
// would not (cgo/emu/grefine_cuda_emu.h lists each behaviour). They skip on a real GPU,
// where these are CUDA's own rules (or undefined behaviour).

func emu(t *testing.T) *Device {
	t.Helper()
	d := gpu(t)
	if !d.GPU().Emulated {
		t.Skipf("skipping: checks cuda-emu's GPU behaviour; tests run on %s", testLib)
	}
	return d
}

func alloc(t *testing.T, d *Device, dt engine.DType, shape engine.Shape) *Tensor {
	t.Helper()
	x, err := d.AllocTensor(dt, shape)
	require.NoError(t, err)
	t.Cleanup(func() { x.Close() })
	return x
}

// view is a tensor over ptr that owns nothing (what a stale or forged pointer looks like).
func view(d *Device, ptr unsafe.Pointer, n int) *Tensor {
	return &Tensor{dev: d, dtype: engine.Float32, shape: engine.Shape{int64(n)}, ptr: ptr, bytes: 4 * n}
}

func ramp(n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(i) + 0.5
	}
	return v
}

// TestEmuHostAccessFaults: the host reading or writing through a device pointer faults
// (recovered as a panic with debug.SetPanicOnFault, at that very address); the data stays
// reachable through the ABI.
func TestEmuHostAccessFaults(t *testing.T) {
	d := emu(t)
	x := alloc(t, d, engine.Float32, engine.Shape{256})
	h, err := engine.FromFloat32(engine.Shape{256}, ramp(256))
	require.NoError(t, err)
	up := newStream(t, d)
	require.NoError(t, up.Upload(x, h))
	require.NoError(t, up.Sync())
	for _, tc := range []struct {
		name string
		off  uintptr
		f    func(p unsafe.Pointer)
	}{
		{"read", 0, func(p unsafe.Pointer) { _ = *(*float32)(p) }},
		{"interior read", 4 * 100, func(p unsafe.Pointer) { _ = *(*float32)(p) }},
		{"write", 4 * 7, func(p unsafe.Pointer) { *(*float32)(p) = 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := unsafe.Add(x.ptr, tc.off)
			got := cudaemu.Fault(func() { tc.f(p) })
			require.NotNil(t, got, "the host touched device memory without a fault")
			re, ok := got.(runtime.Error)
			require.True(t, ok, "a runtime error, got %T %v", got, got)
			ae, ok := got.(interface{ Addr() uintptr })
			require.True(t, ok, "the fault reports its address: %v", re)
			assert.Equal(t, uintptr(p), ae.Addr())
		})
	}
	back, err := engine.NewHostTensor(engine.Float32, engine.Shape{256})
	require.NoError(t, err)
	require.NoError(t, up.Download(back, x))
	assert.Equal(t, ramp(256), back.F32, "the data is intact and readable through the ABI")
}

// TestEmuHostAccessKillsProcess: a C program touching device memory from the host dies
// with SIGSEGV; the same memory copied through the ABI is the NaN poison.
func TestEmuHostAccessKillsProcess(t *testing.T) {
	emu(t)
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "cc"
	}
	root := cudaemu.Root()
	bin := filepath.Join(t.TempDir(), "host_read")
	out, err := exec.Command(cc, "-std=c11", "-Wall", "-Wextra", "-Werror", "-I", filepath.Join(root, "cgo", "include"),
		filepath.Join(root, "cgo", "emu", "test", "host_read.c"), "-o", bin, "-ldl").CombinedOutput()
	require.NoError(t, err, "%s", out)
	lib := testDev.GPU().LibPath
	for _, mode := range []string{"read", "write"} {
		out, err := exec.Command(bin, lib, mode).CombinedOutput()
		var ee *exec.ExitError
		require.True(t, errors.As(err, &ee), "%s: want death by signal, got %v: %s", mode, err, out)
		ws := ee.Sys().(syscall.WaitStatus)
		require.True(t, ws.Signaled(), "%s: exited %d instead of faulting: %s", mode, ws.ExitStatus(), out)
		assert.Equal(t, syscall.SIGSEGV, ws.Signal(), "%s: %s", mode, out)
		assert.NotContains(t, string(out), "survived")
	}
	out, err = exec.Command(bin, lib, "abi").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "first value bits 0xffffffff")
}

// TestEmuMissingSyncIsStale: work queued on one stream is not visible from another until
// that stream is synchronised: the same reads, with and without the sync.
func TestEmuMissingSyncIsStale(t *testing.T) {
	d := emu(t)
	a, b := newStream(t, d), newStream(t, d)
	const n = 64
	x := alloc(t, d, engine.Float32, engine.Shape{1, 8, 8})
	y := alloc(t, d, engine.Float32, engine.Shape{1, 8, 8})
	hx, err := engine.FromFloat32(engine.Shape{1, 8, 8}, ramp(n))
	require.NoError(t, err)
	require.NoError(t, a.Upload(x, hx)) // queued on a (ABI 2: an upload does not wait)
	require.NoError(t, a.Resize(engine.ResizeNearest, x, y))
	got, err := engine.NewHostTensor(engine.Float32, engine.Shape{1, 8, 8})
	require.NoError(t, err)

	require.NoError(t, b.Download(got, y)) // b knows nothing of a's resize
	for i, v := range got.F32 {
		require.Equalf(t, uint32(0xFFFFFFFF), math.Float32bits(v), "y[%d] = %v: stale data must be the NaN poison", i, v)
	}
	require.NoError(t, a.Sync())
	require.NoError(t, b.Download(got, y))
	assert.Equal(t, ramp(n), got.F32, "after a.Sync the result is there")

	// A memset on a is invisible to b until a syncs, too.
	require.NoError(t, a.Zero(y))
	require.NoError(t, b.Download(got, y))
	assert.Equal(t, ramp(n), got.F32, "b still sees the old contents")
	require.NoError(t, a.Sync())
	require.NoError(t, b.Download(got, y))
	assert.Equal(t, make([]float32, n), got.F32)

	// A download on the stream that did the work waits for it: no explicit sync needed.
	require.NoError(t, a.Upload(y, hx))
	require.NoError(t, a.Zero(y))
	require.NoError(t, a.Download(got, y))
	assert.Equal(t, make([]float32, n), got.F32)
}

// TestEmuFreeSynchronisesDevice: cudaFree waits for the whole device, so queued work runs
// before any memory goes away (and its results become visible).
func TestEmuFreeSynchronisesDevice(t *testing.T) {
	d := emu(t)
	a, b := newStream(t, d), newStream(t, d)
	y := alloc(t, d, engine.Float32, engine.Shape{16})
	require.NoError(t, a.Zero(y))
	z, err := d.AllocTensor(engine.Float32, engine.Shape{4})
	require.NoError(t, err)
	require.NoError(t, z.Close())
	got, err := engine.NewHostTensor(engine.Float32, engine.Shape{16})
	require.NoError(t, err)
	require.NoError(t, b.Download(got, y))
	assert.Equal(t, make([]float32, 16), got.F32, "the free ran a's memset")
}

// TestEmuPoison: fresh memory is 0xFF bytes (NaN as float32, -1 as int32), and a kernel
// reading never-written memory produces NaN.
func TestEmuPoison(t *testing.T) {
	d := emu(t)
	f := alloc(t, d, engine.Float32, engine.Shape{3, 5})
	i := alloc(t, d, engine.Int32, engine.Shape{7})
	rs := newStream(t, d)
	hf, err := engine.NewHostTensor(engine.Float32, f.Shape())
	require.NoError(t, err)
	require.NoError(t, rs.Download(hf, f))
	for _, v := range hf.F32 {
		assert.Equal(t, uint32(0xFFFFFFFF), math.Float32bits(v))
	}
	hi, err := engine.NewHostTensor(engine.Int32, i.Shape())
	require.NoError(t, err)
	require.NoError(t, rs.Download(hi, i))
	assert.Equal(t, []int32{-1, -1, -1, -1, -1, -1, -1}, hi.I32)

	s := newStream(t, d)
	np := alloc(t, d, engine.Float32, engine.Shape{2, 4, 2, 2})
	x := alloc(t, d, engine.Float32, engine.Shape{1, 4, 2, 2}) // never written
	out := alloc(t, d, engine.Float32, engine.Shape{1, 4, 2, 2})
	require.NoError(t, s.Zero(np))
	require.NoError(t, s.BlendStep(engine.EulerCoeffs(7.5, 1, 0.5), engine.BlendTensors{NoisePred: np, X: x}, out, nil))
	h, err := engine.NewHostTensor(engine.Float32, out.shape)
	require.NoError(t, err)
	require.NoError(t, s.Download(h, out))
	for k, v := range h.F32 {
		assert.Truef(t, math.IsNaN(float64(v)), "out[%d] = %v: a kernel reading unwritten memory must produce NaN", k, v)
	}
	require.NoError(t, s.Zero(x))
	require.NoError(t, s.BlendStep(engine.EulerCoeffs(7.5, 1, 0.5), engine.BlendTensors{NoisePred: np, X: x}, out, nil))
	require.NoError(t, s.Download(h, out))
	assert.Equal(t, make([]float32, 16), h.F32)
}

// TestEmuPointerErrors: out of memory, use after free, double free, a host pointer, a
// range past the end, an interior free and another device's memory are clear errors.
func TestEmuPointerErrors(t *testing.T) {
	d := emu(t)
	s := newStream(t, d)
	budget := d.GPU().TotalMem
	_, err := d.AllocTensor(engine.Float32, engine.Shape{int64(budget/4 + 1)})
	require.ErrorIs(t, err, engine.ErrOutOfMemory)
	assert.ErrorContains(t, err, "out of memory (cudaErrorMemoryAllocation, 2)")
	assert.ErrorContains(t, err, "GRF_CUDA_EMU_MEMORY")
	alloc(t, d, engine.Float32, engine.Shape{16}) // the device still allocates

	freed, err := d.AllocTensor(engine.Float32, engine.Shape{16})
	require.NoError(t, err)
	stale := view(d, freed.ptr, 16)
	require.NoError(t, freed.Close())
	// Host memory outside Go's heap (Go memory in a kernel's parameters would stop at
	// cgo's pointer check before reaching the emulator).
	host, err := syscall.Mmap(-1, 0, 4096, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	require.NoError(t, err)
	defer syscall.Munmap(host)
	live := alloc(t, d, engine.Float32, engine.Shape{16})
	src := alloc(t, d, engine.Float32, engine.Shape{1, 4, 4})
	require.NoError(t, s.Zero(src))
	for _, tc := range []struct {
		name string
		t    *Tensor
		msg  string
	}{
		{"use after free", stale, "which was freed: use after free"},
		{"host pointer", view(d, unsafe.Pointer(&host[0]), 16), "is not device memory (a host pointer?)"},
		{"past the end", view(d, unsafe.Add(live.ptr, 8), 16), "runs past the end of allocation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Zero(tc.t)
			require.ErrorIs(t, err, engine.ErrRun)
			assert.ErrorContains(t, err, "ptr")
			assert.ErrorContains(t, err, tc.msg)
			err = s.Resize(engine.ResizeNearest, src, view(d, tc.t.ptr, 16).reshape(1, 4, 4))
			require.Error(t, err, "kernels check their arguments too")
			assert.ErrorContains(t, err, "grf_resize: dst")
			assert.ErrorContains(t, err, tc.msg)
		})
	}
	require.NoError(t, s.Sync(), "rejected calls queue nothing")

	double := view(d, stale.ptr, 16)
	double.owned = true
	err = double.Close()
	require.ErrorIs(t, err, engine.ErrRun)
	assert.ErrorContains(t, err, "double free")
	interior := view(d, unsafe.Add(live.ptr, 4), 4)
	interior.owned = true
	err = interior.Close()
	assert.ErrorContains(t, err, "not at its start")

	t.Run("another device", func(t *testing.T) {
		d1, err := Open(Options{Ordinal: 1, LibPath: d.GPU().LibPath})
		if err != nil {
			t.Skipf("skipping: needs two emulated devices (GRF_CUDA_EMU_DEVICES=2, TestMain's default): %v", err)
		}
		other := alloc(t, d1, engine.Float32, engine.Shape{16})
		err = s.Zero(other)
		require.ErrorIs(t, err, engine.ErrDevice, "the Go side refuses another device's tensor first")
		assert.ErrorContains(t, err, "is on cuda device 1, this is device 0")
		forged := view(d, other.ptr, 16) // claims device 0: the emulator still catches it
		err = s.Zero(forged)
		require.ErrorIs(t, err, engine.ErrRun)
		assert.ErrorContains(t, err, "is memory of device 1")
		assert.ErrorContains(t, err, "used by work on device 0")
		s1 := newStream(t, d1)
		require.NoError(t, s1.Zero(other), "on its own device it works")
		require.NoError(t, s1.Sync())
	})
}

// reshape returns the view with another shape of the same size.
func (t *Tensor) reshape(dims ...int64) *Tensor {
	c := *t
	c.shape = engine.Shape(dims)
	return &c
}

// TestEmuEnvironment: the emulator's settings are checked, and with no device it says so;
// each case runs in a child process (the settings are read once per process).
func TestEmuEnvironment(t *testing.T) {
	emu(t)
	for _, tc := range []struct {
		env, want string
	}{
		{"GRF_CUDA_EMU_DEVICES=0", "no device"},
		{"GRF_CUDA_EMU_DEVICES=9", "GRF_CUDA_EMU_DEVICES=9: want 0..8"},
		{"GRF_CUDA_EMU_MEMORY=lots", "GRF_CUDA_EMU_MEMORY=lots: want a size"},
		{"GRF_CUDA_EMU_CC=nine", "GRF_CUDA_EMU_CC=nine"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestEmuEnvironmentChild$", "-test.v")
		cmd.Env = append(os.Environ(), "GRF_CUDA_TEST_LIB="+testDev.GPU().LibPath, "GRF_CUDA_EMU_CHILD=1", tc.env)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.Contains(t, string(out), "CHILD-OPEN-ERROR: engine: unavailable", tc.env)
		assert.Contains(t, string(out), tc.want, tc.env)
	}
}

// TestEmuEnvironmentChild is the child half of TestEmuEnvironment.
func TestEmuEnvironmentChild(t *testing.T) {
	if os.Getenv("GRF_CUDA_EMU_CHILD") != "1" {
		t.Skip("skipping: runs only as a child process of TestEmuEnvironment")
	}
	require.Error(t, openErr)
	require.True(t, errors.Is(openErr, engine.ErrUnavailable))
	t.Logf("CHILD-OPEN-ERROR: %s", strings.ReplaceAll(openErr.Error(), "\n", " "))
}

// TestOpenEmulatorOption: Options.Emulator finds cuda-emu through $GRF_CUDA_EMU_LIB (or
// beside the binary) and says where it looked; the process's one library rule holds.
func TestOpenEmulatorOption(t *testing.T) {
	d := emu(t)
	t.Setenv(EnvEmuLib, "")
	_, err := Open(Options{Emulator: true})
	require.ErrorIs(t, err, engine.ErrUnavailable)
	assert.ErrorContains(t, err, "libgrefine_cuda_emu.so not found: tried $GRF_CUDA_EMU_LIB (not set), ")
	t.Setenv(EnvEmuLib, d.GPU().LibPath)
	d2, err := Open(Options{Emulator: true})
	require.NoError(t, err)
	assert.True(t, d2.Info().Emulated)
	require.NoError(t, d2.Close())
	other := filepath.Join(t.TempDir(), EmuLibName)
	t.Setenv(EnvEmuLib, other)
	_, err = Open(Options{Emulator: true})
	require.ErrorIs(t, err, engine.ErrUnavailable)
	assert.ErrorContains(t, err, "tried "+other+" (option LibPath): no such file")
	assert.ErrorContains(t, err, "is already loaded from "+d.GPU().LibPath)
	_, err = Open(Options{LibPath: other})
	require.ErrorIs(t, err, engine.ErrUnavailable, "a later explicit path is never silently ignored")
	assert.ErrorContains(t, err, "is already loaded from "+d.GPU().LibPath)
	twin := filepath.Join(t.TempDir(), EmuLibName) // another file that exists
	data, err := os.ReadFile(d.GPU().LibPath)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(twin, data, 0o755))
	_, err = Open(Options{LibPath: twin})
	require.ErrorIs(t, err, engine.ErrUnavailable)
	assert.ErrorContains(t, err, "is already loaded from "+d.GPU().LibPath+" (option LibPath); cannot also load "+twin)
}
