package ort

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/engine"
)

func TestCUDAOptions(t *testing.T) {
	o, err := ParseOptions(map[string]string{"device": "cuda", "device_id": "1", "gpu_mem_limit": "1073741824",
		"cudnn_conv_algo_search": "HEURISTIC", "arena_extend_strategy": "kSameAsRequested", "user_compute_stream": "140000000000", "use_tf32": "false",
		"graph_optimization_level": "left to other settings"})
	require.NoError(t, err)
	assert.Equal(t, DeviceCUDA, o.Device)
	p, err := o.CUDA.ProviderOptions()
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"device_id": "1", "gpu_mem_limit": "1073741824", "cudnn_conv_algo_search": "HEURISTIC",
		"arena_extend_strategy": "kSameAsRequested", "user_compute_stream": "140000000000", "has_user_compute_stream": "1", "use_tf32": "0"}, p)

	p, err = CUDAOptions{}.ProviderOptions()
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"device_id": "0"}, p, "zero values keep ONNX Runtime's defaults")

	for _, bad := range []map[string]string{{"device_id": "x"}, {"gpu_mem_limit": "1G"}, {"user_compute_stream": "-1"}, {"use_tf32": "maybe"}} {
		_, err := ParseOptions(bad)
		assert.ErrorIs(t, err, engine.ErrUnavailable, "%v", bad)
	}
	for _, bad := range []CUDAOptions{{DeviceID: -1}, {GPUMemLimit: -1}, {CuDNNConvAlgoSearch: "FAST"}, {ArenaExtendStrategy: "grow"}} {
		_, err := bad.ProviderOptions()
		assert.ErrorIs(t, err, engine.ErrUnavailable, "%+v", bad)
	}
	_, err = NewWith(Options{Device: "tpu"})
	assert.ErrorContains(t, err, `unknown device "tpu"`)
	_, err = engine.NewBackend(Name, map[string]string{"device": "cuda", "cudnn_conv_algo_search": "FAST"})
	assert.ErrorContains(t, err, "cudnn_conv_algo_search")
}

// Messages as ONNX Runtime 1.2x and the CUDA libraries print them.
func TestOutOfMemoryMapping(t *testing.T) {
	for _, msg := range []string{
		"[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Non-zero status code returned while running Conv node. Name:'/conv_in/Conv' Status Message: /onnxruntime_src/onnxruntime/core/framework/bfc_arena.cc:359 void* onnxruntime::BFCArena::AllocateRawInternal(size_t, bool, onnxruntime::Stream*, bool, onnxruntime::WaitNotificationFn) Failed to allocate memory for requested buffer of size 5368709120",
		"CUDA failure 2: out of memory ; GPU=0 ; hostname=h ; file=/onnxruntime_src/onnxruntime/core/providers/cuda/cuda_allocator.cc ; line=47 ; expr=cudaMalloc((void**)&p, size);",
		"CUDNN failure 4: CUDNN_STATUS_ALLOC_FAILED ; GPU=0",
		"CUBLAS failure 3: CUBLAS_STATUS_ALLOC_FAILED ; GPU=0",
		"cudaErrorMemoryAllocation",
	} {
		err := runError(engine.ErrRun, "unet", "run", errors.New(msg))
		assert.ErrorIs(t, err, engine.ErrOutOfMemory, msg)
		assert.NotErrorIs(t, err, engine.ErrRun)
	}
	for _, msg := range []string{
		"[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : Got invalid dimensions for input: x",
		"CUDA failure 700: an illegal memory access was encountered",
	} {
		err := runError(engine.ErrRun, "unet", "run", errors.New(msg))
		assert.ErrorIs(t, err, engine.ErrRun, msg)
		assert.NotErrorIs(t, err, engine.ErrOutOfMemory)
	}
}

// TestDeviceTensorRefused: ort engines read host tensors only; a tensor of another
// device is refused naming both devices, never copied behind the caller's back
// (engine.OnDevice is the explicit, counted copy path).
func TestDeviceTensorRefused(t *testing.T) {
	b := backend(t)
	assert.Equal(t, "cpu", b.DeviceName())
	e, err := b.Open(writeModel(t, 1, []int64{-1, 3}), engine.OpenOptions{Name: "add"})
	require.NoError(t, err)
	defer e.Close()
	h, _ := engine.NewHostTensor(engine.Float32, engine.Shape{2, 3})
	for i := range h.F32 {
		h.F32[i] = float32(i) + 0.25
	}
	out, err := e.Run(context.Background(), map[string]engine.Tensor{"x": h})
	require.NoError(t, err)
	assert.Equal(t, 2*h.F32[5], out["y"].(*engine.HostTensor).F32[5])
	assert.Equal(t, CopyStats{Runs: 1}, e.(*Engine).Copies(), "the CPU execution provider copies nothing")
	_, err = e.Run(context.Background(), map[string]engine.Tensor{"x": otherTensor{h}})
	require.ErrorIs(t, err, engine.ErrDevice)
	assert.Contains(t, err.Error(), "input x is on device elsewhere, not cpu")
}

type otherTensor struct{ *engine.HostTensor }

func (otherTensor) DeviceName() string { return "elsewhere" }

// TestCUDAUnavailableReasons: every way the CUDA execution provider can be missing gives
// engine.ErrUnavailable with the reason, never a crash.
func TestCUDAUnavailableReasons(t *testing.T) {
	cpuLib := backend(t).Library()
	dir := t.TempDir()
	b, err := NewWith(Options{Device: DeviceCUDA, Lib: filepath.Join(dir, "libonnxruntime.so.1")})
	require.NoError(t, err)
	require.ErrorIs(t, b.Available(), engine.ErrUnavailable)
	assert.Contains(t, b.Available().Error(), "onnxruntime GPU library not found")
	assert.Contains(t, b.Available().Error(), "make setup-gpu")
	_, err = b.Open("x.onnx", engine.OpenOptions{})
	assert.ErrorIs(t, err, engine.ErrUnavailable)
	assert.Empty(t, b.Version())

	if HasCUDAProvider(cpuLib) {
		t.Logf("this process runs the GPU build %s: the CPU-only cases are not shown", cpuLib)
	} else {
		b, err = NewWith(Options{Device: DeviceCUDA, Lib: cpuLib})
		require.NoError(t, err)
		assert.ErrorContains(t, b.Available(), "is a CPU-only onnxruntime (no "+ProviderCUDA)

		// a GPU-shaped directory while this process already runs the CPU build
		gpu := fakeGPUDir(t, cpuLib)
		b, err = NewWith(Options{Device: DeviceCUDA, Lib: gpu})
		require.NoError(t, err)
		assert.ErrorContains(t, b.Available(), "already loaded from")
	}

	cpu, err := NewWith(Options{})
	require.NoError(t, err)
	_, err = cpu.OpenOnStream("x.onnx", engine.OpenOptions{}, 1)
	assert.ErrorIs(t, err, engine.ErrDevice)
}

// fakeGPUDir lays out a directory like .deps/ort-gpu whose libonnxruntime is the CPU
// build and whose CUDA provider is an empty file.
func fakeGPUDir(t *testing.T, cpuLib string) string {
	dir := t.TempDir()
	abs, err := filepath.Abs(cpuLib)
	require.NoError(t, err)
	require.NoError(t, os.Symlink(abs, filepath.Join(dir, "libonnxruntime.so.1")))
	require.NoError(t, os.WriteFile(filepath.Join(dir, ProviderCUDA), nil, 0o755))
	return filepath.Join(dir, "libonnxruntime.so.1")
}

// cudaProbeInChild runs TestCUDAProbeChild in a fresh process with the given library and
// CUDA library directories, and returns its CUDA-PROBE line.
func cudaProbeInChild(t *testing.T, lib, cudaDirs string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCUDAProbeChild$", "-test.v")
	cmd.Env = append(os.Environ(), "GRF_ORT_CUDA_CHILD="+lib, EnvCUDALibs+"="+cudaDirs)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	for _, l := range strings.Split(string(out), "\n") {
		if i := strings.Index(l, "CUDA-PROBE: "); i >= 0 {
			return l[i+len("CUDA-PROBE: "):]
		}
	}
	t.Fatalf("no CUDA-PROBE line in:\n%s", out)
	return ""
}

// TestCUDAProbeChild is the child half of the CUDA probes (runs only under a parent).
func TestCUDAProbeChild(t *testing.T) {
	lib := os.Getenv("GRF_ORT_CUDA_CHILD")
	if lib == "" {
		t.Skip("skipping: runs only as a child process of TestCUDAMissingLibraries/TestCUDAOnThisMachine")
	}
	b, err := NewWith(Options{Device: DeviceCUDA, Lib: lib})
	require.NoError(t, err)
	if err := b.Available(); err != nil {
		require.ErrorIs(t, err, engine.ErrUnavailable)
		_, oerr := b.Open("x.onnx", engine.OpenOptions{})
		require.ErrorIs(t, oerr, engine.ErrUnavailable)
		t.Logf("CUDA-PROBE: %v", err)
		return
	}
	t.Logf("CUDA-PROBE: ok %s", b.Version())
}

func TestCUDAMissingLibraries(t *testing.T) {
	if p := systemLibrary("libcudart.so.13"); p != "" {
		t.Skipf("skipping: the system loader finds %s here, so the missing-library path cannot be shown", p)
	}
	lib := fakeGPUDir(t, backend(t).Library())
	got := cudaProbeInChild(t, lib, t.TempDir())
	assert.Contains(t, got, "CUDA 13 libraries not found: libcudart.so.13 (CUDA runtime)")
	assert.Contains(t, got, EnvCUDALibs)
}

// TestCUDAOnThisMachine probes the real GPU build (make setup-gpu) in a child process and
// prints what it found: on a machine without a GPU the reason, with one "ok".
func TestCUDAOnThisMachine(t *testing.T) {
	lib := GPULibraryPath("")
	if l := LibraryPath(""); HasCUDAProvider(l) {
		lib = l // the tests run on the GPU build
	}
	if !fileExists(lib) {
		t.Skipf("skipping: no onnxruntime GPU build at %s (run `make setup-gpu` or set %s)", lib, EnvGPULibrary)
	}
	got := cudaProbeInChild(t, lib, os.Getenv(EnvCUDALibs))
	t.Logf("CUDA execution provider here: %s", got)
	if !strings.HasPrefix(got, "ok ") {
		assert.Contains(t, got, "engine: unavailable: ort: cuda:")
	}
}

// systemLibrary returns where the system loader would find soname (LD_LIBRARY_PATH, then
// ld.so.cache), or "".
func systemLibrary(soname string) string {
	for _, d := range filepath.SplitList(os.Getenv("LD_LIBRARY_PATH")) {
		if p := filepath.Join(d, soname); d != "" && fileExists(p) {
			return p
		}
	}
	out, _ := exec.Command("/sbin/ldconfig", "-p").Output()
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == soname {
			return f[len(f)-1]
		}
	}
	return ""
}
