package ort

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

// grf_ort_dlopen loads path with RTLD_NOW|RTLD_GLOBAL, so that later loads asking for its
// soname (libonnxruntime_providers_cuda.so's NEEDED entries, cuDNN's dlopen) find it.
static void* grf_ort_dlopen(const char* path, char* err, size_t errlen) {
	void* h = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
	if (h == NULL) {
		const char* e = dlerror();
		snprintf(err, errlen, "%s", e ? e : "dlopen failed");
	}
	return h;
}

// grf_ort_driver_version calls cuDriverGetVersion from libcuda (needs no GPU); -1 if the
// symbol is missing, else CUresult.
static int grf_ort_driver_version(void* libcuda, int* v) {
	int (*f)(int*) = (int (*)(int*))dlsym(libcuda, "cuDriverGetVersion");
	if (f == NULL) return -1;
	return f(v);
}

// grf_ort_device_count calls cudaGetDeviceCount from libcudart; returns the cudaError_t
// (-1: symbol missing) and its message.
static int grf_ort_device_count(void* cudart, int* n, char* err, size_t errlen) {
	int (*count)(int*) = (int (*)(int*))dlsym(cudart, "cudaGetDeviceCount");
	const char* (*str)(int) = (const char* (*)(int))dlsym(cudart, "cudaGetErrorString");
	if (count == NULL) { snprintf(err, errlen, "cudaGetDeviceCount not found"); return -1; }
	int rc = count(n);
	if (rc != 0) snprintf(err, errlen, "%s", str ? str(rc) : "cuda error");
	return rc;
}

// grf_ort_stream calls cudaStreamCreate (create != 0) or cudaStreamDestroy on *s; returns
// the cudaError_t, -1 if the symbol is missing. Used by the GPU tests of OpenOnStream.
static int grf_ort_stream(void* cudart, int create, void** s) {
	if (create) {
		int (*f)(void**) = (int (*)(void**))dlsym(cudart, "cudaStreamCreate");
		return f ? f(s) : -1;
	}
	int (*g)(void*) = (int (*)(void*))dlsym(cudart, "cudaStreamDestroy");
	return g ? g(*s) : -1;
}
*/
import "C"

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"unsafe"

	"github.com/grefine/grefine/engine"
)

// EnvCUDALibs names directories (colon-separated) holding the CUDA 13 runtime libraries
// the CUDA execution provider needs; they are searched before .deps/ort-gpu/cuda and the
// system loader.
const EnvCUDALibs = "GRF_ORT_CUDA_LIBS"

// cudaLib is one CUDA library the CUDA execution provider needs.
type cudaLib struct {
	soname   string
	required bool
	why      string
}

// cudaLibs are preloaded in this order (dependencies first). The ORT 1.31 GPU build
// links cudart, cublas(Lt) and curand (NEEDED) and dlopens cuDNN; cuFFT and NVRTC serve
// a few operators only.
var cudaLibs = []cudaLib{
	{"libcudart.so.13", true, "CUDA runtime"},
	{"libcublasLt.so.13", true, "cuBLASLt"},
	{"libcublas.so.13", true, "cuBLAS"},
	{"libcurand.so.10", true, "cuRAND"},
	{"libcudnn.so.9", true, "cuDNN 9, for convolutions"},
	{"libcufft.so.12", false, "cuFFT, FFT operators only"},
	{"libnvrtc.so.13", false, "NVRTC, a few fused operators only"},
	// cuDNN 9's front library dlopens its parts by soname: preloading them makes that
	// independent of the loader path.
	{"libcudnn_graph.so.9", false, "cuDNN graph"},
	{"libcudnn_ops.so.9", false, "cuDNN ops"},
	{"libcudnn_cnn.so.9", false, "cuDNN cnn"},
	{"libcudnn_adv.so.9", false, "cuDNN adv"},
	{"libcudnn_heuristic.so.9", false, "cuDNN heuristic"},
	{"libcudnn_engines_precompiled.so.9", false, "cuDNN precompiled engines"},
	{"libcudnn_engines_runtime_compiled.so.9", false, "cuDNN runtime-compiled engines"},
	{"libcudnn_engines_tensor_ir.so.9", false, "cuDNN tensor-IR engines"},
}

// CUDALibrary says where one CUDA library was found, or why not.
type CUDALibrary struct {
	Soname   string `json:"soname"`
	Path     string `json:"path,omitempty"` // "" when missing; the soname when the system loader found it
	Required bool   `json:"required"`
	Err      string `json:"error,omitempty"`
}

// CUDARuntime is the outcome of loading the CUDA libraries, once per process.
type CUDARuntime struct {
	Libraries     []CUDALibrary
	DriverVersion int // CUDA version the driver supports (13000 = 13.0); 0 if unknown
	Devices       int // visible CUDA devices
	Err           error
}

var cudaRT struct {
	once   sync.Once
	dirs   []string
	rt     CUDARuntime
	cudart unsafe.Pointer
}

// cudaSearchDirs lists where the CUDA libraries are looked for: $GRF_ORT_CUDA_LIBS, then
// cuda/ beside the ONNX Runtime GPU library.
func cudaSearchDirs(ortLib string) []string {
	var dirs []string
	for _, d := range filepath.SplitList(os.Getenv(EnvCUDALibs)) {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	return append(dirs, filepath.Join(filepath.Dir(ortLib), "cuda"))
}

// loadCUDARuntime preloads the CUDA libraries (RTLD_GLOBAL) and asks the driver and the
// runtime whether a GPU is usable. The result is computed once per process.
func loadCUDARuntime(ortLib string) CUDARuntime {
	cudaRT.once.Do(func() {
		dirs := cudaSearchDirs(ortLib)
		cudaRT.dirs = dirs
		rt := &cudaRT.rt
		var cudart unsafe.Pointer
		var missing []string
		for _, l := range cudaLibs {
			lib := CUDALibrary{Soname: l.soname, Required: l.required}
			cands := []string{}
			for _, d := range dirs {
				if p := filepath.Join(d, l.soname); fileExists(p) {
					cands = append(cands, p)
				}
			}
			cands = append(cands, l.soname) // the system loader (LD_LIBRARY_PATH, ld.so.cache)
			var errs []string
			for _, p := range cands {
				h, err := dlopenGlobal(p)
				if err == nil {
					lib.Path = p
					if l.soname == "libcudart.so.13" {
						cudart, cudaRT.cudart = h, h
					}
					break
				}
				errs = append(errs, err.Error())
			}
			if lib.Path == "" {
				lib.Err = strings.Join(errs, "; ")
				if l.required {
					missing = append(missing, l.soname+" ("+l.why+")")
				}
			}
			rt.Libraries = append(rt.Libraries, lib)
		}
		if len(missing) > 0 {
			rt.Err = fmt.Errorf("%w: ort: cuda: CUDA 13 libraries not found: %s (looked in %s and the system loader path; run `make setup-gpu`, or set %s to the directories of the machine's CUDA 13 libraries, e.g. a cu130 PyTorch's site-packages/nvidia/*/lib)",
				engine.ErrUnavailable, strings.Join(missing, ", "), strings.Join(dirs, ", "), EnvCUDALibs)
			return
		}
		libcuda, err := dlopenGlobal("libcuda.so.1")
		if err != nil {
			rt.Err = fmt.Errorf("%w: ort: cuda: NVIDIA driver library libcuda.so.1 not found (no NVIDIA driver on this machine): %v", engine.ErrUnavailable, err)
			return
		}
		var drv C.int
		if rc := C.grf_ort_driver_version(libcuda, &drv); rc == 0 {
			rt.DriverVersion = int(drv)
		}
		var n C.int
		var e [256]C.char
		rc := C.grf_ort_device_count(cudart, &n, &e[0], C.size_t(len(e)))
		if rc != 0 {
			reason := "CUDA error"
			switch rc {
			case cudaErrorNoDevice:
				reason = "no CUDA device"
			case cudaErrorInsufficientDriver:
				reason = "the NVIDIA driver is too old for CUDA 13 (needs R580 or newer)"
			}
			rt.Err = fmt.Errorf("%w: ort: cuda: %s: cudaGetDeviceCount: %d %s (driver supports CUDA %s)",
				engine.ErrUnavailable, reason, int(rc), C.GoString(&e[0]), cudaVersion(rt.DriverVersion))
			return
		}
		rt.Devices = int(n)
	})
	return cudaRT.rt
}

// CUDA runtime error codes that mean "no usable GPU" (as in engine/cuda).
const (
	cudaErrorInsufficientDriver = 35
	cudaErrorNoDevice           = 100
)

func cudaVersion(v int) string {
	if v <= 0 {
		return "unknown"
	}
	return fmt.Sprintf("%d.%d", v/1000, (v%1000)/10)
}

func dlopenGlobal(path string) (unsafe.Pointer, error) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var e [512]C.char
	h := C.grf_ort_dlopen(cpath, &e[0], C.size_t(len(e)))
	if h == nil {
		return nil, fmt.Errorf("%s", C.GoString(&e[0]))
	}
	return h, nil
}

// ProbeCUDARuntime loads the CUDA libraries the CUDA execution provider of the GPU build
// at ortLib needs (see the package comment for where they are looked for) and reports what
// was found, the driver's CUDA version and the device count, or the first reason the GPU
// is unusable. It runs once per process; later calls return the first result.
func ProbeCUDARuntime(ortLib string) CUDARuntime { return loadCUDARuntime(ortLib) }

// newCUDAStream creates a cudaStream_t with the preloaded CUDA runtime (after a successful
// loadCUDARuntime) and returns it with its destroy function.
func newCUDAStream() (uintptr, func() error, error) {
	if cudaRT.cudart == nil || cudaRT.rt.Err != nil {
		return 0, nil, fmt.Errorf("%w: ort: cuda: runtime not loaded", engine.ErrUnavailable)
	}
	var s unsafe.Pointer
	if rc := C.grf_ort_stream(cudaRT.cudart, 1, &s); rc != 0 {
		return 0, nil, fmt.Errorf("%w: ort: cuda: cudaStreamCreate: %d", engine.ErrRun, int(rc))
	}
	return uintptr(s), func() error {
		if rc := C.grf_ort_stream(cudaRT.cudart, 0, &s); rc != 0 {
			return fmt.Errorf("%w: ort: cuda: cudaStreamDestroy: %d", engine.ErrRun, int(rc))
		}
		return nil
	}, nil
}
