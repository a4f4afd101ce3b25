package ort

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	ortgo "github.com/yalue/onnxruntime_go"

	"github.com/grefine/grefine/engine"
)

// Devices an ort backend computes on.
const (
	DeviceCPU  = "cpu"
	DeviceCUDA = "cuda"
)

// EnvGPULibrary names the ONNX Runtime GPU library (default: .deps/ort-gpu/libonnxruntime.so.1,
// installed by `make setup-gpu`).
const EnvGPULibrary = "GRF_ORT_GPU_LIB"

// ProviderCUDA is the CUDA execution provider library that must sit beside a GPU build of
// libonnxruntime.
const ProviderCUDA = "libonnxruntime_providers_cuda.so"

// Options configure NewWith. The zero value is the CPU backend of New("").
type Options struct {
	// Lib is the ONNX Runtime library; empty: see LibraryPath (cpu) or GPULibraryPath (cuda).
	Lib string
	// Device is where the networks run: "cpu" (default) or "cuda" (ONNX Runtime's CUDA
	// execution provider).
	Device string
	// CUDA configures the CUDA execution provider (Device "cuda" only).
	CUDA CUDAOptions
}

// CUDAOptions are the CUDA execution provider's settings (ONNX Runtime's provider option
// names in brackets). Zero values leave ONNX Runtime's defaults.
type CUDAOptions struct {
	// DeviceID is the GPU index (device_id).
	DeviceID int
	// ComputeStream is a cudaStream_t to run on (user_compute_stream); 0: ONNX Runtime's
	// own stream. Backend.OpenOnStream overrides it per engine (one stream per request slot).
	ComputeStream uintptr
	// CuDNNConvAlgoSearch is EXHAUSTIVE (ONNX Runtime's default), HEURISTIC or DEFAULT
	// (cudnn_conv_algo_search).
	CuDNNConvAlgoSearch string
	// ArenaExtendStrategy is kNextPowerOfTwo (default) or kSameAsRequested
	// (arena_extend_strategy).
	ArenaExtendStrategy string
	// GPUMemLimit bounds the CUDA memory arena in bytes (gpu_mem_limit); 0: no limit.
	GPUMemLimit int64
	// DisableTF32 turns TF32 matrix maths off (use_tf32=0): float32 results then match
	// the CPU to float32 rounding; ONNX Runtime enables TF32 by default on Ampere and newer.
	DisableTF32 bool
}

// ProviderOptions returns the provider option map ONNX Runtime reads, after checking the
// values.
func (o CUDAOptions) ProviderOptions() (map[string]string, error) {
	m := map[string]string{"device_id": strconv.Itoa(o.DeviceID)}
	if o.DeviceID < 0 {
		return nil, fmt.Errorf("%w: ort: cuda: device_id %d is negative", engine.ErrUnavailable, o.DeviceID)
	}
	switch o.CuDNNConvAlgoSearch {
	case "":
	case "EXHAUSTIVE", "HEURISTIC", "DEFAULT":
		m["cudnn_conv_algo_search"] = o.CuDNNConvAlgoSearch
	default:
		return nil, fmt.Errorf("%w: ort: cuda: cudnn_conv_algo_search %q is not EXHAUSTIVE, HEURISTIC or DEFAULT", engine.ErrUnavailable, o.CuDNNConvAlgoSearch)
	}
	switch o.ArenaExtendStrategy {
	case "":
	case "kNextPowerOfTwo", "kSameAsRequested":
		m["arena_extend_strategy"] = o.ArenaExtendStrategy
	default:
		return nil, fmt.Errorf("%w: ort: cuda: arena_extend_strategy %q is not kNextPowerOfTwo or kSameAsRequested", engine.ErrUnavailable, o.ArenaExtendStrategy)
	}
	if o.GPUMemLimit < 0 {
		return nil, fmt.Errorf("%w: ort: cuda: gpu_mem_limit %d is negative", engine.ErrUnavailable, o.GPUMemLimit)
	}
	if o.GPUMemLimit > 0 {
		m["gpu_mem_limit"] = strconv.FormatInt(o.GPUMemLimit, 10)
	}
	if o.DisableTF32 {
		m["use_tf32"] = "0"
	}
	if o.ComputeStream != 0 {
		// ONNX Runtime parses the stream as a decimal address.
		m["user_compute_stream"] = strconv.FormatUint(uint64(o.ComputeStream), 10)
		m["has_user_compute_stream"] = "1"
	}
	return m, nil
}

// ParseOptions reads the registry's option map: lib, device (cpu|cuda), device_id,
// cudnn_conv_algo_search, arena_extend_strategy, gpu_mem_limit (bytes), use_tf32 (bool) and
// user_compute_stream (a decimal cudaStream_t address). Other keys are left to the
// settings that share the map.
func ParseOptions(m map[string]string) (Options, error) {
	o := Options{Lib: m["lib"], Device: m["device"]}
	bad := func(k string, err error) (Options, error) {
		return Options{}, fmt.Errorf("%w: ort: option %s=%q: %v", engine.ErrUnavailable, k, m[k], err)
	}
	if v, ok := m["device_id"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			return bad("device_id", err)
		}
		o.CUDA.DeviceID = n
	}
	if v, ok := m["gpu_mem_limit"]; ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return bad("gpu_mem_limit", err)
		}
		o.CUDA.GPUMemLimit = n
	}
	if v, ok := m["user_compute_stream"]; ok {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return bad("user_compute_stream", err)
		}
		o.CUDA.ComputeStream = uintptr(n)
	}
	if v, ok := m["use_tf32"]; ok {
		on, err := strconv.ParseBool(v)
		if err != nil {
			return bad("use_tf32", err)
		}
		o.CUDA.DisableTF32 = !on
	}
	o.CUDA.CuDNNConvAlgoSearch = m["cudnn_conv_algo_search"]
	o.CUDA.ArenaExtendStrategy = m["arena_extend_strategy"]
	return o, nil
}

// GPULibraryPath resolves the GPU library in engine/native's order: explicit, then
// $GRF_ORT_GPU_LIB, then .deps/ort-gpu/libonnxruntime.so.1 beside the executable (in its
// directory or the parent: bin/grefine in the repository); if none exists, the first of
// those default places (for the error message).
func GPULibraryPath(explicit string) string {
	if explicit != "" {
		return explicit
	}
	if p := os.Getenv(EnvGPULibrary); p != "" {
		return p
	}
	rel := filepath.Join(".deps", "ort-gpu", LibName)
	var dirs []string
	if exe, err := os.Executable(); err == nil {
		dirs = append(dirs, filepath.Dir(exe), filepath.Dir(filepath.Dir(exe)))
	}
	for _, d := range dirs {
		if p := filepath.Join(d, rel); fileExists(p) {
			return p
		}
	}
	for _, d := range dirs { // name the .deps/ that `make setup` made, if any
		if st, err := os.Stat(filepath.Join(d, ".deps")); err == nil && st.IsDir() {
			return filepath.Join(d, rel)
		}
	}
	return rel
}

// HasCUDAProvider reports whether lib sits beside the CUDA execution provider library.
func HasCUDAProvider(lib string) bool {
	return fileExists(filepath.Join(filepath.Dir(lib), ProviderCUDA))
}

// liveLibrary is the library of the process's ONNX Runtime environment ("" if none).
func liveLibrary() string {
	r, _ := library.Loaded()
	return r.Path
}

// cudaProbe caches, per library and provider settings, whether the CUDA execution provider
// can be appended to a session.
var cudaProbe struct {
	mu   sync.Mutex
	errs map[string]error
}

// initCUDA resolves the GPU library and checks, in order: the library and the provider
// beside it, the CUDA libraries, the driver and a device, ONNX Runtime itself, and that
// ONNX Runtime accepts the CUDA execution provider with these settings. It returns the
// library path and nil, or an error wrapping engine.ErrUnavailable that says which step
// failed.
func initCUDA(explicit string, provider map[string]string) (string, error) {
	lib := GPULibraryPath(explicit)
	if live := liveLibrary(); live != "" && explicit == "" && live != lib && HasCUDAProvider(live) {
		lib = live // the process already runs a GPU build: share it
	}
	if !fileExists(lib) {
		return lib, fmt.Errorf("%w: ort: cuda: onnxruntime GPU library not found at %s (run `make setup-gpu`, or set %s)", engine.ErrUnavailable, lib, EnvGPULibrary)
	}
	if !HasCUDAProvider(lib) {
		return lib, fmt.Errorf("%w: ort: cuda: %s is a CPU-only onnxruntime (no %s beside it; `make setup-gpu` installs the GPU build)", engine.ErrUnavailable, lib, ProviderCUDA)
	}
	if live := liveLibrary(); live != "" && live != lib {
		return lib, fmt.Errorf("%w: ort: cuda: onnxruntime is already loaded from %s in this process, which has no CUDA provider; point %s at %s so that ort/cpu and ort/cuda share the GPU build",
			engine.ErrUnavailable, live, EnvLibrary, lib)
	}
	if rt := loadCUDARuntime(lib); rt.Err != nil {
		return lib, rt.Err
	}
	if _, err := initEnv(lib); err != nil {
		return lib, err
	}
	key := lib + "\x00" + fmt.Sprint(provider)
	cudaProbe.mu.Lock()
	defer cudaProbe.mu.Unlock()
	if cudaProbe.errs == nil {
		cudaProbe.errs = map[string]error{}
	}
	if err, ok := cudaProbe.errs[key]; ok {
		return lib, err
	}
	err := func() error {
		so, err := ortgo.NewSessionOptions()
		if err != nil {
			return fmt.Errorf("%w: ort: cuda: session options: %v", engine.ErrUnavailable, err)
		}
		defer so.Destroy()
		if err := appendCUDA(so, provider); err != nil {
			return fmt.Errorf("%w: %v", engine.ErrUnavailable, err)
		}
		return nil
	}()
	cudaProbe.errs[key] = err
	return lib, err
}

// appendCUDA adds the CUDA execution provider with the given provider options.
func appendCUDA(so *ortgo.SessionOptions, provider map[string]string) error {
	cpo, err := ortgo.NewCUDAProviderOptions()
	if err != nil {
		return fmt.Errorf("ort: cuda: provider options: %v", err)
	}
	defer cpo.Destroy()
	if err := cpo.Update(provider); err != nil {
		return fmt.Errorf("ort: cuda: provider options %v: %v", provider, err)
	}
	if err := so.AppendExecutionProviderCUDA(cpo); err != nil {
		return fmt.Errorf("ort: cuda: onnxruntime refused the CUDA execution provider: %v", err)
	}
	return nil
}

// oomMarkers are lowercase fragments of the out-of-memory messages of ONNX Runtime's
// CUDA allocator (BFC arena), the CUDA runtime and the CUDA libraries.
var oomMarkers = []string{
	"out of memory",
	"failed to allocate memory",
	"cudaerrormemoryallocation",
	"cudnn_status_alloc_failed",
	"cublas_status_alloc_failed",
	"curand_status_allocation_failed",
	"cufft_alloc_failed",
}

// IsOutOfMemory reports whether an ONNX Runtime error message says the device ran out of
// memory.
func IsOutOfMemory(msg string) bool {
	m := strings.ToLower(msg)
	for _, k := range oomMarkers {
		if strings.Contains(m, k) {
			return true
		}
	}
	return false
}

// runError wraps an ONNX Runtime failure: engine.ErrOutOfMemory for an out-of-memory
// message, else fallback.
func runError(fallback error, name, what string, err error) error {
	if IsOutOfMemory(err.Error()) {
		return fmt.Errorf("%w: ort: %s: %s: %v", engine.ErrOutOfMemory, name, what, err)
	}
	return fmt.Errorf("%w: ort: %s: %s: %v", fallback, name, what, err)
}

// CopyStats counts an engine's runs and the bytes ONNX Runtime itself copies
// host-to-device for inputs (ORTIn) and device-to-host for outputs (ORTOut) when it
// computes on the GPU with host-bound I/O (every run of a cuda engine).
type CopyStats struct {
	Runs                    int64
	ORTInBytes, ORTOutBytes int64
}
