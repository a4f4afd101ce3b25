package trt

/*
#cgo CFLAGS: -I${SRCDIR}/../../cgo/include
#cgo LDFLAGS: -ldl
#include <stdlib.h>
#include "grefine_trt_loader.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"path/filepath"
	"unsafe"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/engine/native"
)

// LibName is the shim's file name, looked up beside the executable when no path is set.
const LibName = "libgrefine_trt.so"

// EmuLibName is the TensorRT emulator's file name (`make trt-emu`; it links cuda-emu,
// libgrefine_cuda_emu.so, from its own directory).
const EmuLibName = "libgrefine_trt_emu.so"

// EnvLib names the environment variable that holds the shim's path.
const EnvLib = "GRF_TRT_LIB"

// Errors of this package not covered by the engine sentinels.
var (
	// ErrNative: the shim rejected a call (bad call order, an exception at the boundary).
	ErrNative = errors.New("trt: native call failed")
	// ErrOrder: a handle was closed before what depends on it (an engine before its
	// sessions); nothing was closed.
	ErrOrder = errors.New("trt: close order")
	// ErrNoProfile: no optimisation profile of the plan covers the bound input shapes.
	ErrNoProfile = fmt.Errorf("%w: no optimisation profile covers the inputs", engine.ErrShape)
)

// NativeError is an error reported by the shim: the operation, the ABI status code and the
// shim's message. It unwraps to the engine sentinel that matches the status.
type NativeError struct {
	Op     string
	Status int
	Msg    string
}

func (e *NativeError) Error() string { return "trt: " + e.Op + ": " + e.Msg }

// Unwrap maps the ABI status onto a sentinel.
func (e *NativeError) Unwrap() error {
	switch e.Status {
	case C.GRF_TRT_ERR_NOT_FOUND:
		return engine.ErrBinding
	case C.GRF_TRT_ERR_SHAPE:
		return engine.ErrShape
	case C.GRF_TRT_ERR_DTYPE:
		return engine.ErrDType
	case C.GRF_TRT_ERR_PLAN, C.GRF_TRT_ERR_BUILD:
		return engine.ErrModel
	case C.GRF_TRT_ERR_NOMEM:
		return engine.ErrOutOfMemory
	case C.GRF_TRT_ERR_CUDA, C.GRF_TRT_ERR_TRT:
		return engine.ErrRun
	case C.GRF_TRT_ERR_UNSUPPORTED:
		return engine.ErrUnavailable
	default:
		return ErrNative
	}
}

// call runs one ABI call with a fresh error buffer and converts a failure status.
func call(op string, f func(err *C.char, n C.size_t) C.int32_t) error {
	var buf [C.GRF_TRT_ERRLEN]C.char
	st := f(&buf[0], C.size_t(len(buf)))
	if st == C.GRF_TRT_OK {
		return nil
	}
	return &NativeError{Op: op, Status: int(st), Msg: C.GoString(&buf[0])}
}

// library is the process's one shim (engine/native: the explicit path, then $GRF_TRT_LIB,
// then beside the executable, then the system loader; the result is cached with its
// error, and a later explicit path naming another file is an error).
var library = native.New(native.Spec{
	Name: "trt", What: LibName, File: LibName, Flag: "--trt-lib", Env: EnvLib,
	Beside: []string{LibName, filepath.Join("..", "build", LibName)},
	Hint:   "pass --trt-lib FILE or set " + EnvLib + " (`make native TensorRT_ROOT=...` builds the shim, `make trt-emu` the emulator)",
	Open:   openLib,
})

// loadLib loads the shim once per process (the explicit path may be "").
func loadLib(explicit string) error {
	if _, err := library.Load(explicit); err != nil {
		return fmt.Errorf("%w: %w", engine.ErrUnavailable, err)
	}
	return nil
}

// openLib dlopens the shim at path (engine/native), binds its symbols and checks its ABI.
func openLib(path string) error {
	h, err := native.Dlopen(path)
	if err != nil {
		return err
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	if err := call("bind "+path, func(e *C.char, n C.size_t) C.int32_t { return C.grf_trtl_bind(h.Pointer(), cpath, e, n) }); err != nil {
		h.Close()
		return err
	}
	var v C.grf_trt_version_info
	if err := call("version", func(e *C.char, n C.size_t) C.int32_t { return C.grf_trtl_get_version(&v, e, n) }); err != nil {
		return err
	}
	if v.abi != C.GRF_TRT_ABI_VERSION {
		return fmt.Errorf("%s speaks ABI %d, this binary needs %d (rebuild the shim)", path, int(v.abi), int(C.GRF_TRT_ABI_VERSION))
	}
	return nil
}

// Version is a TensorRT version.
type Version struct{ Major, Minor, Patch int }

func decodeVersion(v C.int32_t) Version {
	n := int(v)
	return Version{Major: n / 10000, Minor: n / 100 % 100, Patch: n % 100}
}

// String formats as 10.16.0.
func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// VersionInfo is what the shim reports about itself.
type VersionInfo struct {
	ABI      int     // shim ABI version
	Compiled Version // TensorRT headers the shim was built against
	Runtime  Version // libnvinfer loaded at run time
	CUDA     int     // CUDA runtime version (12040), 0 if unknown
}

func versions() (VersionInfo, error) {
	var v C.grf_trt_version_info
	if err := call("version", func(e *C.char, n C.size_t) C.int32_t { return C.grf_trtl_get_version(&v, e, n) }); err != nil {
		return VersionInfo{}, err
	}
	return VersionInfo{ABI: int(v.abi), Compiled: decodeVersion(v.compiled_trt), Runtime: decodeVersion(v.runtime_trt),
		CUDA: int(v.cuda_runtime)}, nil
}

// DeviceInfo describes a CUDA device as the shim sees it.
type DeviceInfo struct {
	Count       int    // visible CUDA devices
	Name        string // of the queried device
	CCMajor     int    // compute capability
	CCMinor     int
	MemoryBytes int64
	// Emulated: the device is cuda-emu and the shim the TensorRT emulator
	// (libgrefine_trt_emu.so): emulated device memory, plans run by ONNX Runtime on the CPU.
	Emulated bool
}

// ComputeCapability formats as "8.9".
func (d DeviceInfo) ComputeCapability() string { return fmt.Sprintf("%d.%d", d.CCMajor, d.CCMinor) }

func deviceInfo(dev int) (DeviceInfo, error) {
	var d C.grf_trt_device_info
	if err := call("device info", func(e *C.char, n C.size_t) C.int32_t {
		return C.grf_trtl_get_device_info(C.int32_t(dev), &d, e, n)
	}); err != nil {
		return DeviceInfo{}, err
	}
	return DeviceInfo{Count: int(d.count), Name: C.GoString(&d.name[0]), CCMajor: int(d.cc_major),
		CCMinor: int(d.cc_minor), MemoryBytes: int64(d.total_mem), Emulated: d.emulated != 0}, nil
}
