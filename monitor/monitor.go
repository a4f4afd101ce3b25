package monitor

import (
	"fmt"
	"sync"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// DeviceInfo is what does not change while a process runs: identity, capability and
// limits of one GPU. Optional fields are nil when NVML reports ERROR_NOT_SUPPORTED
// (named in Unsupported) or fails (named in Errors).
type DeviceInfo struct {
	Index int    `json:"index"`
	Name  string `json:"name"`
	UUID  string `json:"uuid"`
	// ComputeCapability is "major.minor", e.g. "9.0" for Hopper; empty if unknown.
	ComputeCapability string `json:"compute_capability"`
	// MemoryTotal is the framebuffer size in bytes (0 if unknown).
	MemoryTotal uint64 `json:"memory_total_bytes"`
	// DriverVersion is the kernel driver version ("550.54.15"), the same for all GPUs.
	DriverVersion string `json:"driver_version"`
	// CUDADriverVersion is the newest CUDA version the driver supports ("12.4").
	CUDADriverVersion string `json:"cuda_driver_version"`
	// PowerLimitW is the enforced board power limit in watts.
	PowerLimitW *float64 `json:"power_limit_w"`
	// MaxSMClockMHz and MaxMemClockMHz are the highest clocks the board allows.
	MaxSMClockMHz  *uint32 `json:"max_sm_clock_mhz"`
	MaxMemClockMHz *uint32 `json:"max_mem_clock_mhz"`
	// Unsupported names the fields NVML does not support on this device.
	Unsupported []string `json:"unsupported,omitempty"`
	// Errors maps a field name to the NVML error that left it empty.
	Errors map[string]string `json:"errors,omitempty"`
}

// Monitor reads one host's GPUs through NVML. It holds NVML initialised from Open to
// Close. Its methods are safe for concurrent use; Close waits for a running Sample.
type Monitor struct {
	lib nvml.Interface

	mu          sync.Mutex
	closed      bool
	devs        []nvml.Device
	info        []DeviceInfo
	eventsNamed bool // nvmlDeviceGetCurrentClocksEventReasons exists (driver >= r535)
}

// Open initialises NVML through lib and reads every device's static information.
// Pass nvml.New() in production and a go-nvml mock in tests; nil means nvml.New().
//
// When NVML cannot be used the error wraps ErrNoGPU and says why (library not found,
// driver not loaded, no devices). After a failed Init no other NVML function is
// called, not even Shutdown or ErrorString: doing so can kill the process.
func Open(lib nvml.Interface) (*Monitor, error) {
	if lib == nil {
		lib = nvml.New()
	}
	if r := lib.Init(); r != nvml.SUCCESS {
		return nil, fmt.Errorf("%w: %s", ErrNoGPU, initReason(r))
	}
	m := &Monitor{lib: lib}
	if err := m.discover(); err != nil {
		lib.Shutdown()
		return nil, err
	}
	return m, nil
}

// discover enumerates devices and fills m.devs and m.info. NVML is initialised.
func (m *Monitor) discover() error {
	n, r := m.lib.DeviceGetCount()
	if r != nvml.SUCCESS {
		return fmt.Errorf("%w: device count: %v", ErrNVML, r)
	}
	if n == 0 {
		return fmt.Errorf("%w: nvml reports no devices", ErrNoGPU)
	}
	driver, rd := m.lib.SystemGetDriverVersion()
	cuda, rc := m.lib.SystemGetCudaDriverVersion()
	m.eventsNamed = m.lib.Extensions().LookupSymbol("nvmlDeviceGetCurrentClocksEventReasons") == nil

	m.devs = make([]nvml.Device, n)
	m.info = make([]DeviceInfo, n)
	for i := range n {
		d, r := m.lib.DeviceGetHandleByIndex(i)
		if r != nvml.SUCCESS {
			return fmt.Errorf("%w: device %d handle: %v", ErrNVML, i, r)
		}
		m.devs[i] = d
		in := &m.info[i]
		in.Index = i
		var rec recorder
		if s, r := d.GetName(); rec.ok(r, "name") {
			in.Name = s
		}
		if s, r := d.GetUUID(); rec.ok(r, "uuid") {
			in.UUID = s
		}
		if maj, mnr, r := d.GetCudaComputeCapability(); rec.ok(r, "compute_capability") {
			in.ComputeCapability = fmt.Sprintf("%d.%d", maj, mnr)
		}
		if mem, r := d.GetMemoryInfo(); rec.ok(r, "memory_total") {
			in.MemoryTotal = mem.Total
		}
		if rec.ok(rd, "driver_version") {
			in.DriverVersion = driver
		}
		if rec.ok(rc, "cuda_driver_version") {
			in.CUDADriverVersion = fmt.Sprintf("%d.%d", cuda/1000, cuda%1000/10)
		}
		if mw, r := d.GetEnforcedPowerLimit(); rec.ok(r, "power_limit") {
			w := float64(mw) / 1000
			in.PowerLimitW = &w
		}
		if c, r := d.GetMaxClockInfo(nvml.CLOCK_SM); rec.ok(r, "max_sm_clock") {
			in.MaxSMClockMHz = &c
		}
		if c, r := d.GetMaxClockInfo(nvml.CLOCK_MEM); rec.ok(r, "max_mem_clock") {
			in.MaxMemClockMHz = &c
		}
		in.Unsupported, in.Errors = rec.unsupported, rec.errors
	}
	return nil
}

// Devices returns the static information read at Open, one entry per GPU in NVML
// index order. The slice is a copy; the pointers and slices inside it are shared
// and must not be written through.
func (m *Monitor) Devices() []DeviceInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]DeviceInfo, len(m.info))
	copy(out, m.info)
	return out
}

// Close shuts NVML down. It is idempotent and nil-safe; later calls to Sample and
// Run return ErrClosed.
func (m *Monitor) Close() error {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	m.devs = nil
	if r := m.lib.Shutdown(); r != nvml.SUCCESS {
		return fmt.Errorf("%w: shutdown: %v", ErrNVML, r)
	}
	return nil
}

// recorder sorts per-metric NVML returns into supported, unsupported and failed.
type recorder struct {
	unsupported []string
	errors      map[string]string
}

// ok reports whether r is SUCCESS and records the metrics one NVML call reads
// otherwise.
func (c *recorder) ok(r nvml.Return, metrics ...string) bool {
	switch r {
	case nvml.SUCCESS:
		return true
	case nvml.ERROR_NOT_SUPPORTED:
		c.unsupported = append(c.unsupported, metrics...)
	default:
		if c.errors == nil {
			c.errors = make(map[string]string)
		}
		for _, name := range metrics {
			c.errors[name] = r.Error()
		}
	}
	return false
}
