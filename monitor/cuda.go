package monitor

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// EnvVisibleDevices is CUDA's variable that hides and reorders GPUs for a process.
const EnvVisibleDevices = "CUDA_VISIBLE_DEVICES"

// CUDAToNVML maps CUDA device indices (what --gpus names, what engine/cuda opens) onto
// NVML's devices (devs, in NVML index order, as Devices returns them). NVML numbers every
// GPU of the machine in PCI bus order; CUDA numbers the GPUs visible to the process.
// visible is $CUDA_VISIBLE_DEVICES (set reports whether it is set): unset, CUDA index i
// is NVML device i; set, its comma-separated entries, in order, are the visible GPUs,
// each an index (into the machine's GPUs) or a UUID ("GPU-..." or a unique prefix of
// one); CUDA stops at the first entry that names no GPU, as this does.
//
// The indices assume CUDA enumerates in PCI bus order, as it does among GPUs of one model
// (the default order is fastest first); on a machine of mixed GPUs set
// CUDA_DEVICE_ORDER=PCI_BUS_ID. MIG instances are not mapped. An index with no NVML
// device is an error naming it.
func CUDAToNVML(devs []DeviceInfo, visible string, set bool, cuda []int) ([]DeviceInfo, error) {
	order := make([]int, len(devs)) // CUDA index -> index into devs
	for i := range order {
		order[i] = i
	}
	if set {
		order = order[:0]
		used := map[int]bool{}
		for _, e := range strings.Split(visible, ",") {
			e = strings.TrimSpace(e)
			n := matchVisible(devs, e)
			if n < 0 || used[n] {
				break
			}
			used[n] = true
			order = append(order, n)
		}
	}
	out := make([]DeviceInfo, len(cuda))
	for i, c := range cuda {
		if c < 0 || c >= len(order) {
			how := "NVML sees " + strconv.Itoa(len(devs)) + " GPUs"
			if set {
				how = fmt.Sprintf("%s=%q makes %d visible", EnvVisibleDevices, visible, len(order))
			}
			return nil, fmt.Errorf("%w: cuda device %d has no nvml device (%s)", ErrNoGPU, c, how)
		}
		out[i] = devs[order[c]]
	}
	return out, nil
}

// matchVisible is the index in devs of one CUDA_VISIBLE_DEVICES entry, or -1.
func matchVisible(devs []DeviceInfo, e string) int {
	if n, err := strconv.Atoi(e); err == nil {
		if n >= 0 && n < len(devs) {
			return n
		}
		return -1
	}
	if !strings.HasPrefix(e, "GPU-") {
		return -1 // MIG-... and anything else
	}
	found := -1
	for i, d := range devs {
		if strings.HasPrefix(d.UUID, e) {
			if found >= 0 {
				return -1 // an ambiguous prefix names no GPU
			}
			found = i
		}
	}
	return found
}

// ForCUDA maps CUDA device indices onto this machine's NVML devices, honouring the
// process's $CUDA_VISIBLE_DEVICES (CUDAToNVML).
func (m *Monitor) ForCUDA(cuda []int) ([]DeviceInfo, error) {
	v, set := os.LookupEnv(EnvVisibleDevices)
	return CUDAToNVML(m.Devices(), v, set, cuda)
}
