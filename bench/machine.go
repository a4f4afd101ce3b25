package bench

import (
	"bufio"
	"context"
	"errors"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/grefine/grefine/monitor"
)

// Machine describes where the benchmark ran.
type Machine struct {
	CPUModel   string  `json:"cpu_model"`
	Cores      int     `json:"cores"` // logical CPUs
	GOMAXPROCS int     `json:"gomaxprocs"`
	OS         string  `json:"os"`
	Arch       string  `json:"arch"`
	GoVersion  string  `json:"go_version"`
	MemTotalMB float64 `json:"mem_total_mib,omitempty"`
	// LoadAvg is the 1-minute load average when the benchmark started (Linux): other
	// work on the machine shows here.
	LoadAvg *float64 `json:"load_avg_1m,omitempty"`
	// RSSMB and RSSPeakMB are the process's resident memory at the end and its peak
	// (VmRSS, VmHWM; Linux).
	RSSMB     float64 `json:"rss_mib,omitempty"`
	RSSPeakMB float64 `json:"rss_peak_mib,omitempty"`
}

// ReadMachine describes this machine (CPU, memory, load); RSS is filled by UpdateRSS.
func ReadMachine() Machine {
	m := Machine{Cores: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), OS: runtime.GOOS, Arch: runtime.GOARCH,
		GoVersion: runtime.Version(), CPUModel: "unknown"}
	if v := procField("/proc/cpuinfo", "model name", ":"); v != "" {
		m.CPUModel = v
	}
	if v := procField("/proc/meminfo", "MemTotal", ":"); v != "" {
		m.MemTotalMB = kib(v) / 1024
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			if v, err := strconv.ParseFloat(f[0], 64); err == nil {
				m.LoadAvg = &v
			}
		}
	}
	return m
}

// UpdateRSS reads the process's current and peak resident memory.
func (m *Machine) UpdateRSS() {
	m.RSSMB = kib(procField("/proc/self/status", "VmRSS", ":")) / 1024
	m.RSSPeakMB = kib(procField("/proc/self/status", "VmHWM", ":")) / 1024
}

// procField returns the value of the first "key<sep> value" line of a /proc file.
func procField(path, key, sep string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), sep)
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// kib parses "1234 kB".
func kib(s string) float64 {
	v, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(s), " kB"), 64)
	return v
}

// GPUReport is the GPU side of a benchmark: the devices, the NVML timeline and its
// summary, or why there is none.
type GPUReport struct {
	Available bool                 `json:"available"`
	Reason    string               `json:"reason,omitempty"` // why not available
	IntervalS float64              `json:"interval_s,omitempty"`
	Devices   []monitor.DeviceInfo `json:"devices,omitempty"`
	// Timeline is every sample, T in seconds from the start of the benchmark.
	Timeline []TimedSample        `json:"timeline,omitempty"`
	Summary  []monitor.GPUSummary `json:"summary,omitempty"`
}

// TimedSample is one NVML sample of every GPU at T seconds.
type TimedSample struct {
	T    float64             `json:"t_s"`
	GPUs []monitor.GPUSample `json:"gpus"`
}

// gpuRecorder samples NVML on a goroutine (monitor.Run) from start to stop.
type gpuRecorder struct {
	mon    *monitor.Monitor
	origin time.Time
	every  time.Duration
	mu     sync.Mutex
	rep    GPUReport
	sum    monitor.Summary
	cancel context.CancelFunc
	done   chan struct{}
}

// startGPU opens NVML through lib (nil: the real library) and starts sampling every
// interval. Without a usable GPU it returns a recorder whose report says why.
func startGPU(lib nvml.Interface, origin time.Time, every time.Duration) *gpuRecorder {
	g := &gpuRecorder{origin: origin, every: every}
	m, err := monitor.Open(lib)
	if err != nil {
		g.rep.Reason = err.Error()
		if !errors.Is(err, monitor.ErrNoGPU) {
			g.rep.Reason = "nvml: " + err.Error()
		}
		return g
	}
	g.mon = m
	g.rep = GPUReport{Available: true, IntervalS: every.Seconds(), Devices: m.Devices()}
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel, g.done = cancel, make(chan struct{})
	go func() {
		defer close(g.done)
		_ = m.Run(ctx, every, func(s monitor.Sample) {
			g.mu.Lock()
			g.rep.Timeline = append(g.rep.Timeline, TimedSample{T: s.Time.Sub(g.origin).Seconds(), GPUs: s.GPUs})
			g.mu.Unlock()
			g.sum.Add(s)
		})
	}()
	return g
}

// energy returns the total of the GPUs' energy counters now (joules), or false.
func (g *gpuRecorder) energy() (float64, bool) {
	if g.mon == nil {
		return 0, false
	}
	s, err := g.mon.Sample()
	if err != nil {
		return 0, false
	}
	total, ok := 0.0, len(s.GPUs) > 0
	for _, d := range s.GPUs {
		if d.EnergyJ == nil {
			return 0, false
		}
		total += *d.EnergyJ
	}
	return total, ok
}

// stop ends sampling and returns the report.
func (g *gpuRecorder) stop() GPUReport {
	if g.mon == nil {
		return g.rep
	}
	g.cancel()
	<-g.done
	g.mon.Close()
	g.rep.Summary = g.sum.GPUs()
	return g.rep
}
