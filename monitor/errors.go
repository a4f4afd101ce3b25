package monitor

import (
	"errors"
	"fmt"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// Sentinel errors. Every error this package returns wraps one of them.
var (
	// ErrNoGPU: NVML cannot report on any GPU here (library missing, driver not loaded,
	// no devices). The message carries the reason.
	ErrNoGPU = errors.New("monitor: no gpu")
	// ErrNVML: an NVML call that the monitor cannot do without failed after a
	// successful Init (counting devices, getting a device handle).
	ErrNVML = errors.New("monitor: nvml call failed")
	// ErrClosed: the Monitor was used after Close.
	ErrClosed = errors.New("monitor: closed")
	// ErrInterval: Run was given an interval that is not positive.
	ErrInterval = errors.New("monitor: bad interval")
)

// initReason turns a failed nvml.Init return into a human reason. It must not call
// NVML: after a failed Init even nvmlErrorString may be unresolvable, and an
// unresolved symbol kills the process, so the texts are our own.
func initReason(r nvml.Return) string {
	switch r {
	case nvml.ERROR_LIBRARY_NOT_FOUND:
		return "nvml library libnvidia-ml.so.1 not found (no NVIDIA driver installed)"
	case nvml.ERROR_DRIVER_NOT_LOADED:
		return "nvidia driver not loaded (no GPU, or the kernel module is missing)"
	case nvml.ERROR_NO_PERMISSION:
		return "no permission to talk to the nvidia driver"
	case nvml.ERROR_LIB_RM_VERSION_MISMATCH:
		return "nvml library and kernel driver versions differ (reload the driver or reboot)"
	case nvml.ERROR_FUNCTION_NOT_FOUND:
		return "nvml library too old (nvmlInit_v2 missing)"
	case nvml.ERROR_GPU_IS_LOST:
		return "a gpu has fallen off the bus"
	default:
		return fmt.Sprintf("nvml init failed (nvml return %d)", int32(r))
	}
}
