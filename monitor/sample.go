package monitor

import (
	"context"
	"fmt"
	"math/bits"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// Metric names, used in GPUSample.Unsupported, GPUSample.Errors and Summary.
const (
	MetricGPUUtil     = "gpu_util"    // percent of time a kernel ran
	MetricMemUtil     = "mem_util"    // percent of time device memory was read or written
	MetricMemUsed     = "mem_used"    // bytes (memory info gives used and free together)
	MetricMemFree     = "mem_free"    // bytes
	MetricPower       = "power"       // watts
	MetricSMClock     = "sm_clock"    // MHz
	MetricMemClock    = "mem_clock"   // MHz
	MetricTemperature = "temperature" // degrees Celsius, GPU die
	MetricThrottle    = "throttle"    // clock event reasons (no numeric value)
	MetricEnergy      = "energy"      // joules since the driver loaded (a counter)
)

// Sample is one reading of every GPU, taken at Time.
type Sample struct {
	Time time.Time   `json:"time"`
	GPUs []GPUSample `json:"gpus"`
}

// GPUSample is one reading of one GPU. A nil field means the metric was not read:
// its NVML call returned ERROR_NOT_SUPPORTED (the metric is named in Unsupported) or
// another error (named in Errors with the NVML message). Neither is a Sample error.
type GPUSample struct {
	Index       int      `json:"index"`
	GPUUtil     *uint32  `json:"gpu_util_pct"`
	MemUtil     *uint32  `json:"mem_util_pct"`
	MemUsed     *uint64  `json:"mem_used_bytes"`
	MemFree     *uint64  `json:"mem_free_bytes"`
	PowerW      *float64 `json:"power_w"`
	SMClockMHz  *uint32  `json:"sm_clock_mhz"`
	MemClockMHz *uint32  `json:"mem_clock_mhz"`
	TempC       *uint32  `json:"temperature_c"`
	// EnergyJ is NVML's total-energy counter in joules (millijoules since the driver
	// loaded, Volta and later); the difference of two samples is the energy between them.
	EnergyJ *float64 `json:"energy_j"`
	// ThrottleMask is NVML's clock event reason bitmask; Throttle decodes it into
	// names (see ThrottleReasons). Both are nil when the call is not supported.
	ThrottleMask *uint64           `json:"throttle_mask"`
	Throttle     []string          `json:"throttle"`
	Unsupported  []string          `json:"unsupported,omitempty"`
	Errors       map[string]string `json:"errors,omitempty"`
}

// Sample reads every GPU once. Per-metric failures are recorded in the GPUSample,
// never returned; the only error is ErrClosed.
func (m *Monitor) Sample() (Sample, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return Sample{}, ErrClosed
	}
	s := Sample{Time: time.Now(), GPUs: make([]GPUSample, len(m.devs))}
	for i, d := range m.devs {
		s.GPUs[i] = m.sampleDevice(i, d)
	}
	return s, nil
}

func (m *Monitor) sampleDevice(i int, d nvml.Device) GPUSample {
	g := GPUSample{Index: i}
	var rec recorder
	if u, r := d.GetUtilizationRates(); rec.ok(r, MetricGPUUtil, MetricMemUtil) {
		g.GPUUtil, g.MemUtil = &u.Gpu, &u.Memory
	}
	if mem, r := d.GetMemoryInfo(); rec.ok(r, MetricMemUsed, MetricMemFree) {
		g.MemUsed, g.MemFree = &mem.Used, &mem.Free
	}
	if mw, r := d.GetPowerUsage(); rec.ok(r, MetricPower) {
		w := float64(mw) / 1000
		g.PowerW = &w
	}
	if c, r := d.GetClockInfo(nvml.CLOCK_SM); rec.ok(r, MetricSMClock) {
		g.SMClockMHz = &c
	}
	if c, r := d.GetClockInfo(nvml.CLOCK_MEM); rec.ok(r, MetricMemClock) {
		g.MemClockMHz = &c
	}
	if t, r := d.GetTemperature(nvml.TEMPERATURE_GPU); rec.ok(r, MetricTemperature) {
		g.TempC = &t
	}
	if mj, r := d.GetTotalEnergyConsumption(); rec.ok(r, MetricEnergy) {
		j := float64(mj) / 1000
		g.EnergyJ = &j
	}
	var mask uint64
	var r nvml.Return
	if m.eventsNamed {
		mask, r = d.GetCurrentClocksEventReasons()
	} else {
		mask, r = d.GetCurrentClocksThrottleReasons() // drivers before r535
	}
	if rec.ok(r, MetricThrottle) {
		g.ThrottleMask = &mask
		g.Throttle = ThrottleReasons(mask)
	}
	g.Unsupported, g.Errors = rec.unsupported, rec.errors
	return g
}

// throttleNames decodes NVML's clock event reason bits, lowest bit first.
var throttleNames = []struct {
	bit  uint64
	name string
}{
	{nvml.ClocksEventReasonGpuIdle, "gpu_idle"},
	{nvml.ClocksEventReasonApplicationsClocksSetting, "applications_clocks"},
	{nvml.ClocksEventReasonSwPowerCap, "sw_power_cap"},
	{nvml.ClocksThrottleReasonHwSlowdown, "hw_slowdown"},
	{nvml.ClocksEventReasonSyncBoost, "sync_boost"},
	{nvml.ClocksEventReasonSwThermalSlowdown, "sw_thermal"},
	{nvml.ClocksThrottleReasonHwThermalSlowdown, "hw_thermal"},
	{nvml.ClocksThrottleReasonHwPowerBrakeSlowdown, "hw_power_brake"},
	{nvml.ClocksEventReasonDisplayClockSetting, "display_clocks"},
	{nvml.ClocksEventReasonBoardLimit, "board_limit"},
	{nvml.ClocksEventReasonReliability, "reliability"},
}

// ThrottleReasons decodes a clock event reason mask into names: gpu_idle,
// applications_clocks, sw_power_cap, hw_slowdown, sync_boost, sw_thermal, hw_thermal,
// hw_power_brake, display_clocks, board_limit, reliability. Bits NVML has not
// defined come out as "bit<n>". A zero mask gives an empty, non-nil slice.
func ThrottleReasons(mask uint64) []string {
	out := make([]string, 0, bits.OnesCount64(mask))
	known := uint64(0)
	for _, t := range throttleNames {
		known |= t.bit
		if mask&t.bit != 0 {
			out = append(out, t.name)
		}
	}
	for rest := mask &^ known; rest != 0; rest &= rest - 1 {
		out = append(out, fmt.Sprintf("bit%d", bits.TrailingZeros64(rest)))
	}
	return out
}

// Run calls fn with a fresh Sample at once and then every interval until ctx is
// done, and returns nil then. It runs on the caller's goroutine and starts none;
// fn runs synchronously, so a slow fn delays (and the ticker drops) later samples.
// It returns ErrClosed if the Monitor is closed meanwhile and ErrInterval if
// interval is not positive.
func (m *Monitor) Run(ctx context.Context, interval time.Duration, fn func(Sample)) error {
	if interval <= 0 {
		return fmt.Errorf("%w: %v", ErrInterval, interval)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if ctx.Err() != nil {
			return nil
		}
		s, err := m.Sample()
		if err != nil {
			return err
		}
		fn(s)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
