package bench

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/grefine/grefine/pipeline"
)

// SchemaVersion names bench.json's schema (doc.go documents it). It changes when a field
// changes meaning or goes away; added fields keep it.
const SchemaVersion = "grefine-bench/1"

// Report is bench.json.
type Report struct {
	Schema   string          `json:"schema"`
	Version  string          `json:"grefine_version"`
	Created  time.Time       `json:"created"`
	Command  string          `json:"command"`
	Workload string          `json:"workload"`
	Scenario string          `json:"scenario"`
	Settings Settings        `json:"settings"`
	Pipeline *pipeline.Info  `json:"pipeline,omitempty"`
	Engine   *EngineInfo     `json:"engine,omitempty"`
	Inputs   InputsInfo      `json:"inputs"`
	Machine  Machine         `json:"machine"`
	GPU      GPUReport       `json:"gpu"`
	WarmupS  float64         `json:"warmup_s"`
	Runs     []RunResult     `json:"runs"`
	Peak     *Peak           `json:"peak,omitempty"`
	Metrics  []Metric        `json:"metrics"`
	Baseline *BaselineResult `json:"baseline,omitempty"`
	Compare  *Comparison     `json:"compare,omitempty"`
	Notes    []string        `json:"notes,omitempty"`
	// GPULoad is what each GPU of the pipeline ran, warm-up included (with GPUs).
	GPULoad []pipeline.GPULoad `json:"gpu_load,omitempty"`

	peaks []float64 // the peak of every repeat
}

// Settings are the options the benchmark ran with.
type Settings struct {
	DurationS      float64 `json:"duration_s,omitempty"`
	Count          int     `json:"count,omitempty"`
	Warmup         int     `json:"warmup"`
	Repeats        int     `json:"repeats"`
	QPS            float64 `json:"qps,omitempty"`
	LatencyBoundMs float64 `json:"latency_bound_ms,omitempty"`
	FindPeak       bool    `json:"find_peak,omitempty"`
	Concurrency    []int   `json:"concurrency,omitempty"`
	Slots          int     `json:"slots"`
	Seed           uint64  `json:"seed"`
}

// EngineInfo describes an engine:NAME workload.
type EngineInfo struct {
	Name    string   `json:"name"`
	Backend string   `json:"backend"`
	Shapes  []string `json:"shapes"`
}

// InputsInfo says what the requests were.
type InputsInfo struct {
	Source string `json:"source"` // "synthetic" or the JSONL path
	Count  int    `json:"count"`
	Width  int    `json:"width,omitempty"` // of the first input
	Height int    `json:"height,omitempty"`
}

// Metric is one headline number over the repeats: its value per repeat and their
// median, min and max (the noise --compare weighs).
type Metric struct {
	Name   string    `json:"name"`
	Unit   string    `json:"unit"`
	Better string    `json:"better"` // "lower" or "higher"
	Values []float64 `json:"values"`
	Median float64   `json:"median"`
	Min    float64   `json:"min"`
	Max    float64   `json:"max"`
}

// metrics derives the headline metrics from the runs.
func metrics(r *Report) []Metric {
	vals := map[string]*Metric{}
	add := func(name, unit, better string, v float64) {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return
		}
		m := vals[name]
		if m == nil {
			m = &Metric{Name: name, Unit: unit, Better: better}
			vals[name] = m
		}
		m.Values = append(m.Values, v)
	}
	for _, run := range r.Runs {
		if run.Samples == 0 {
			continue
		}
		suffix := ""
		switch run.Scenario {
		case Sweep:
			suffix = fmt.Sprintf("@c%d", run.Concurrency)
		case Server:
			if r.Settings.FindPeak {
				continue // probes at different rates; the peak is the metric
			}
		}
		add("throughput"+suffix, "1/s", "higher", run.Throughput)
		add("latency_p50"+suffix, "ms", "lower", run.Latency.P50)
		add("latency_p90"+suffix, "ms", "lower", run.Latency.P90)
		add("latency_p99"+suffix, "ms", "lower", run.Latency.P99)
		add("compute_mean"+suffix, "ms", "lower", run.Compute.Mean)
		add("queue_mean"+suffix, "ms", "lower", run.Queue.Mean)
		if run.JPerImage != nil {
			add("energy_per_image"+suffix, "J", "lower", *run.JPerImage)
		}
	}
	for _, q := range r.peaks {
		add("peak_qps", "1/s", "higher", q)
	}
	if r.Machine.RSSPeakMB > 0 {
		add("rss_peak", "MiB", "lower", r.Machine.RSSPeakMB)
	}
	out := make([]Metric, 0, len(vals))
	for _, m := range vals {
		m.Median, m.Min, m.Max = medianMinMax(m.Values)
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// MarshalIndent is bench.json's bytes.
func (r *Report) MarshalIndent() ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Markdown is bench.md: the setup, one row per run, the stage split, the metrics over
// repeats, the baseline and the comparison. Its tables are what bench/RESULTS.md pastes.
func (r *Report) Markdown() string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("# grefine bench: %s, %s\n\n", r.Workload, r.Scenario)
	w("- Command: `%s`\n", r.Command)
	w("- Date: %s\n", r.Created.UTC().Format("2006-01-02 15:04 UTC"))
	if p := r.Pipeline; p != nil {
		tiny := ""
		if p.Tiny {
			tiny = " (tiny random-weight set: speed only)"
		}
		w("- grefine %s; model set %s%s; backend %s (%s); device %s; slots %d\n", r.Version, p.ModelSet, tiny, p.Backend, p.BackendVersion, p.Device, p.Slots)
	}
	if len(r.GPULoad) > 0 {
		gs := make([]string, len(r.GPULoad))
		for i, g := range r.GPULoad {
			gs[i] = fmt.Sprintf("GPU %d: %d slots, %d requests", g.Index, g.Slots, g.Requests)
		}
		w("- GPUs (--gpus): %s (warm-up included)\n", strings.Join(gs, "; "))
	}
	if e := r.Engine; e != nil {
		w("- grefine %s; engine %s alone on %s, synthetic inputs %s\n", r.Version, e.Name, e.Backend, strings.Join(e.Shapes, ", "))
	}
	m := r.Machine
	w("- Machine: %s, %d cores (GOMAXPROCS %d), %.0f GiB", m.CPUModel, m.Cores, m.GOMAXPROCS, m.MemTotalMB/1024)
	if m.LoadAvg != nil {
		w(", load %.2f at start", *m.LoadAvg)
	}
	w(", peak RSS %.0f MiB; %s/%s, %s\n", m.RSSPeakMB, m.OS, m.Arch, m.GoVersion)
	if r.GPU.Available {
		names := make([]string, len(r.GPU.Devices))
		for i, d := range r.GPU.Devices {
			names[i] = fmt.Sprintf("%d: %s (driver %s)", d.Index, d.Name, d.DriverVersion)
		}
		w("- GPU: %s; NVML sampled every %.0f ms (%d samples)\n", strings.Join(names, "; "), r.GPU.IntervalS*1000, len(r.GPU.Timeline))
	} else {
		w("- GPU: none (%s): CPU side only\n", r.GPU.Reason)
	}
	in := r.Inputs
	w("- Inputs: %s, %d", in.Source, in.Count)
	if in.Width > 0 {
		w(" (first %d×%d)", in.Width, in.Height)
	}
	w("; warm-up %d requests (%.1f s, excluded)\n", r.Settings.Warmup, r.WarmupS)
	for _, n := range r.Notes {
		w("- Note: %s\n", n)
	}

	w("\n## Runs\n\n")
	w("| run | samples | errors | throughput/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | queue mean ms | compute mean ms | J/image |\n")
	w("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, run := range r.Runs {
		j := "–"
		if run.JPerImage != nil {
			j = num(*run.JPerImage)
		}
		l := run.Latency
		w("| %s | %d | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", runLabel(run), run.Samples, run.Errors, num(run.Throughput),
			num(l.P50), num(l.P90), num(l.P99), num(l.P999), num(l.Max), num(run.Queue.Mean), num(run.Compute.Mean), j)
	}
	if len(r.Runs) > 0 {
		n := r.Runs[0].Samples
		w("\nPercentiles interpolate between order statistics; with %d samples per run, %d lie above the p99 (%d above the p99.9)", n, TailSamples(n, 99), TailSamples(n, 99.9))
		if n < 100 {
			w(": fewer than 100 samples, so the p99 is about the maximum")
		}
		w(".\n")
	}
	if r.Peak != nil {
		w("\n## Peak search (server, p99 ≤ %s ms)\n\n", num(r.Settings.LatencyBoundMs))
		w("| probe | qps | p99 ms | meets |\n|---|---|---|---|\n")
		for i, p := range r.Peak.Probes {
			w("| %d | %s | %s | %v |\n", i+1, num(p.QPS), num(p.P99), p.Meets)
		}
		conv := "converged within the tolerance"
		if !r.Peak.Converged {
			conv = "did not converge (probe limit or nothing passed)"
		}
		w("\nPeak: **%s qps** (%s).\n", num(r.Peak.QPS), conv)
	}
	if len(r.Runs) > 0 && len(r.Runs[0].Stages) > 0 {
		run := r.Runs[0]
		w("\n## Stages (%s; ms per request)\n\n", runLabel(run))
		w("| stage | mean | p50 | p99 | max |\n|---|---|---|---|---|\n")
		names := make([]string, 0, len(run.Stages))
		for k := range run.Stages {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			s := run.Stages[k]
			w("| %s | %s | %s | %s | %s |\n", k, num(s.Mean), num(s.P50), num(s.P99), num(s.Max))
		}
	}
	if len(r.Metrics) > 0 {
		w("\n## Metrics over %d repeat(s)\n\n", r.Settings.Repeats)
		w("| metric | unit | median | min | max | better |\n|---|---|---|---|---|---|\n")
		for _, m := range r.Metrics {
			w("| %s | %s | %s | %s | %s | %s |\n", m.Name, m.Unit, num(m.Median), num(m.Min), num(m.Max), m.Better)
		}
	}
	if bl := r.Baseline; bl != nil {
		w("\n## Baseline\n\n- Command: `%s`\n", bl.Command)
		if d, ok := bl.Info["description"].(string); ok {
			w("- %s\n", d)
		}
		w("\n| implementation | samples | p50 ms | mean ms | p99 ms | throughput/s |\n|---|---|---|---|---|---|\n")
		if len(r.Runs) > 0 {
			g := r.Runs[0]
			w("| grefine (%s) | %d | %s | %s | %s | %s |\n", bl.Against, g.Samples, num(g.Latency.P50), num(g.Latency.Mean), num(g.Latency.P99), num(g.Throughput))
		}
		w("| baseline | %d | %s | %s | %s | %s |\n", bl.Samples, num(bl.Latency.P50), num(bl.Latency.Mean), num(bl.Latency.P99), num(bl.Throughput))
		w("\nRatio: baseline median latency / grefine median latency = **%s×**; grefine throughput / baseline throughput = **%s×**.\n",
			num(bl.LatencyRatio), num(bl.ThroughputRatio))
		if len(bl.Stages) > 0 {
			w("\nBaseline stages (mean ms): ")
			names := make([]string, 0, len(bl.Stages))
			for k := range bl.Stages {
				names = append(names, k)
			}
			sort.Strings(names)
			parts := make([]string, len(names))
			for i, k := range names {
				parts[i] = fmt.Sprintf("%s %s", k, num(bl.Stages[k].Mean))
			}
			w("%s.\n", strings.Join(parts, ", "))
		}
	}
	if r.Compare != nil {
		w("\n%s", r.Compare.Markdown())
	}
	return b.String()
}

func runLabel(run RunResult) string {
	switch run.Scenario {
	case Sweep:
		return fmt.Sprintf("sweep c=%d #%d", run.Concurrency, run.Repeat)
	case Server:
		return fmt.Sprintf("server %s qps #%d", num(run.TargetQPS), run.Repeat)
	case Offline:
		return fmt.Sprintf("offline n=%d #%d", run.Concurrency, run.Repeat)
	}
	return fmt.Sprintf("%s #%d", run.Scenario, run.Repeat)
}

// num formats a number with 3 significant digits (at least the integer part).
func num(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "–"
	}
	a := math.Abs(v)
	switch {
	case a == 0:
		return "0"
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.3g", v)
}
