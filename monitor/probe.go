package monitor

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// ProbeResult is what `grefine doctor` reports about GPUs. When Available is false,
// Reason says why (and GPUs is empty); the JSON form is the structured `--json`
// output.
type ProbeResult struct {
	Available bool         `json:"available"`
	Reason    string       `json:"reason,omitempty"`
	GPUs      []DeviceInfo `json:"gpus"`
	// Sample is one reading taken during the probe (free memory, temperature, ...).
	Sample *Sample `json:"sample,omitempty"`
}

// Probe opens NVML through lib (nil means nvml.New()), reads the devices and one
// sample, and closes it again. It never fails and never crashes: an unusable NVML
// becomes Available=false with the reason.
func Probe(lib nvml.Interface) ProbeResult {
	m, err := Open(lib)
	if err != nil {
		return ProbeResult{Reason: reason(err), GPUs: []DeviceInfo{}}
	}
	defer m.Close()
	p := ProbeResult{Available: true, GPUs: m.Devices()}
	if s, err := m.Sample(); err == nil {
		p.Sample = &s
	}
	return p
}

// reason strips the sentinel prefix from an Open error ("monitor: no gpu: x" -> "x").
func reason(err error) string {
	msg := err.Error()
	for _, s := range []error{ErrNoGPU, ErrNVML} {
		if errors.Is(err, s) {
			return strings.TrimPrefix(msg, s.Error()+": ")
		}
	}
	return msg
}

// Lines renders the result for humans: one line per GPU, or one line giving the
// reason there is none. Clock limits other than gpu_idle are appended. Example:
//
//	gpu 0: NVIDIA H100 80GB HBM3, sm 9.0, 80.0 GiB (79.2 GiB free), 700 W limit, driver 550.54.15, cuda 12.4, 31 C, util 0%
func (p ProbeResult) Lines() []string {
	if !p.Available {
		return []string{"no gpu: " + p.Reason}
	}
	out := make([]string, len(p.GPUs))
	for i, d := range p.GPUs {
		var b strings.Builder
		fmt.Fprintf(&b, "gpu %d: %s", d.Index, orUnknown(d.Name))
		if d.ComputeCapability != "" {
			fmt.Fprintf(&b, ", sm %s", d.ComputeCapability)
		}
		fmt.Fprintf(&b, ", %.1f GiB", gib(d.MemoryTotal))
		g := p.gpuSample(d.Index)
		if g != nil && g.MemFree != nil {
			fmt.Fprintf(&b, " (%.1f GiB free)", gib(*g.MemFree))
		}
		if d.PowerLimitW != nil {
			fmt.Fprintf(&b, ", %.0f W limit", *d.PowerLimitW)
		}
		fmt.Fprintf(&b, ", driver %s, cuda %s", orUnknown(d.DriverVersion), orUnknown(d.CUDADriverVersion))
		if g != nil {
			if g.TempC != nil {
				fmt.Fprintf(&b, ", %d C", *g.TempC)
			}
			if g.GPUUtil != nil {
				fmt.Fprintf(&b, ", util %d%%", *g.GPUUtil)
			}
			if r := slices.DeleteFunc(slices.Clone(g.Throttle), func(s string) bool { return s == "gpu_idle" }); len(r) > 0 {
				fmt.Fprintf(&b, ", clocks limited by %s", strings.Join(r, "+"))
			}
		}
		out[i] = b.String()
	}
	return out
}

func (p ProbeResult) gpuSample(index int) *GPUSample {
	if p.Sample == nil {
		return nil
	}
	for i := range p.Sample.GPUs {
		if p.Sample.GPUs[i].Index == index {
			return &p.Sample.GPUs[i]
		}
	}
	return nil
}

func gib(b uint64) float64 { return float64(b) / (1 << 30) }

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
