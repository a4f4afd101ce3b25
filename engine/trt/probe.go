package trt

/*
#include "grefine_trt_loader.h"
*/
import "C"

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/grefine/grefine/engine"
)

// CUDAStatus is what the shim's CUDA runtime says about the machine's GPUs.
type CUDAStatus struct {
	Devices   int    // visible CUDA devices
	Error     int    // cudaGetDeviceCount's cudaError_t (0: success)
	ErrorName string // "cudaErrorNoDevice"; "" on success
	ErrorText string // the CUDA runtime's description of Error
	Driver    int    // newest CUDA version the driver supports (13000); 0: no driver
	Runtime   int    // the shim's own CUDA runtime version; 0 if unknown
}

// Report is what Probe found.
type Report struct {
	Shim     string      // path of the loaded shim
	Versions VersionInfo // ABI, TensorRT headers the shim was built with, libnvinfer loaded
	// NvInfer is the libnvinfer file this process mapped (from /proc/self/maps); "" when
	// none is (the fake and the emulator run no TensorRT).
	NvInfer string
	// CUDA is nil when the shim predates grf_trt_get_cuda_status.
	CUDA *CUDAStatus
	// Device describes device 0 when one is visible.
	Device *DeviceInfo
}

// Probe loads the shim (lib; else $GRF_TRT_LIB; else libgrefine_trt.so next to the
// executable) and reports its versions, the libnvinfer it loaded and CUDA's view of the
// GPUs. Unlike Backend.Available it needs no GPU: this is what `grefine doctor` prints.
// The error (wrapping engine.ErrUnavailable) says why the shim cannot be loaded.
func Probe(lib string) (Report, error) {
	res, err := library.Load(lib)
	if err != nil {
		return Report{Shim: library.Locate(lib).Path}, fmt.Errorf("%w: %w", engine.ErrUnavailable, err)
	}
	r := Report{Shim: res.Path, NvInfer: mappedLibrary("libnvinfer.so")}
	if r.Versions, err = versions(); err != nil {
		return r, errors.Join(engine.ErrUnavailable, err)
	}
	var st C.grf_trt_cuda_status
	if err := call("cuda status", func(e *C.char, n C.size_t) C.int32_t { return C.grf_trtl_get_cuda_status(&st, e, n) }); err == nil {
		r.CUDA = &CUDAStatus{Devices: int(st.device_count), Error: int(st.error), ErrorName: C.GoString(&st.error_name[0]),
			ErrorText: C.GoString(&st.error_text[0]), Driver: int(st.driver_version), Runtime: int(st.runtime_version)}
	}
	if d, err := deviceInfo(0); err == nil && d.Count > 0 {
		r.Device = &d
	}
	return r, nil
}

// mappedLibrary returns the path of the first file mapped into this process whose base
// name starts with prefix ("" if none, or not on Linux).
func mappedLibrary(prefix string) string {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 {
			continue
		}
		p := strings.Join(fields[5:], " ")
		if i := strings.LastIndexByte(p, '/'); i >= 0 && strings.HasPrefix(p[i+1:], prefix) {
			return p
		}
	}
	return ""
}
