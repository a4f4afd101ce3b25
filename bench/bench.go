package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/grefine/grefine/internal/files"
)

// Config is one benchmark invocation.
type Config struct {
	Workload string // "assess", "refine" or "engine:NAME" (for the report)
	Scenario string // SingleStream, Offline, Server or Sweep
	// Duration is each run's length when Count is 0; Count, if > 0, is each run's number
	// of requests instead. Warmup requests run first, one at a time, untimed.
	Duration time.Duration
	Count    int
	Warmup   int
	// Repeats runs the scenario this many times (metrics give min/median/max over them).
	Repeats int
	// QPS is the server scenario's Poisson arrival rate; LatencyBound its p99 bound.
	// FindPeak searches for the highest rate whose p99 meets the bound.
	QPS          float64
	LatencyBound time.Duration
	FindPeak     bool
	// Concurrency lists the sweep's levels (requests in flight).
	Concurrency []int
	// Slots is the workload's parallelism (pipeline slots), for the offline size estimate
	// and the report.
	Slots int
	Seed  uint64
	// NVML is the GPU library (nil: the real one); NoGPU skips it. GPUInterval is the
	// sampling period (default 50 ms: 20 Hz).
	NVML        nvml.Interface
	NoGPU       bool
	GPUInterval time.Duration
	// Progress, if set, is told the requests done so far in the current phase ("warm-up",
	// a run's label) and its planned total (0: unknown, a timed run).
	Progress func(phase string, done, total int)
	// Baseline, if set, runs a competitor after grefine (Count 0: grefine's first run's
	// samples, at most 20). Its Dir defaults to a scratch directory removed afterwards.
	Baseline *BaselineSpec
	// CompareTo is an older bench.json to compare with (threshold CompareThreshold).
	CompareTo        string
	CompareThreshold float64
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if !slices.Contains(Scenarios, c.Scenario) {
		return fmt.Errorf("scenario %q: want one of %v", c.Scenario, Scenarios)
	}
	switch {
	case c.Count < 0 || c.Warmup < 0 || c.Repeats < 0:
		return fmt.Errorf("count, warmup and repeats must be >= 0")
	case c.Count == 0 && c.Duration <= 0:
		return fmt.Errorf("give a positive duration or count")
	case c.Scenario == Server && !c.FindPeak && !(c.QPS > 0):
		return fmt.Errorf("server scenario: give --qps > 0 or --find-peak")
	case c.Scenario == Server && !(c.LatencyBound > 0):
		return fmt.Errorf("server scenario: the latency bound must be positive")
	case c.Scenario == Sweep && len(c.Concurrency) == 0:
		return fmt.Errorf("sweep scenario: give the concurrency levels")
	case c.Scenario == Offline && c.Count == 0 && c.Warmup == 0:
		return fmt.Errorf("offline scenario: give --count, or --warmup >= 1 so the query can be sized from the warm-up rate")
	case math.IsNaN(c.QPS) || math.IsInf(c.QPS, 0) || c.QPS < 0:
		return fmt.Errorf("qps %v must be a finite rate >= 0", c.QPS)
	}
	for _, n := range c.Concurrency {
		if n < 1 || n > 4096 {
			return fmt.Errorf("concurrency %d is out of range [1, 4096]", n)
		}
	}
	return nil
}

// Run benchmarks target over inputs as cfg says and completes rep (whose Workload,
// Pipeline or Engine, Inputs and Command the caller fills). It does not write files.
func Run(ctx context.Context, cfg Config, target Target, inputs []Input, rep *Report) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if len(inputs) == 0 {
		return errors.New("no inputs")
	}
	cfg.Repeats = max(cfg.Repeats, 1)
	cfg.Slots = max(cfg.Slots, 1)
	if cfg.GPUInterval <= 0 {
		cfg.GPUInterval = 50 * time.Millisecond
	}
	rep.Schema, rep.Created, rep.Scenario = SchemaVersion, time.Now().UTC(), cfg.Scenario
	rep.Settings = Settings{DurationS: cfg.Duration.Seconds(), Count: cfg.Count, Warmup: cfg.Warmup, Repeats: cfg.Repeats,
		QPS: cfg.QPS, LatencyBoundMs: millis(cfg.LatencyBound), FindPeak: cfg.FindPeak, Concurrency: cfg.Concurrency,
		Slots: cfg.Slots, Seed: cfg.Seed}
	rep.Machine = ReadMachine()
	origin := time.Now()
	var gpu *gpuRecorder
	if cfg.NoGPU {
		rep.GPU = GPUReport{Reason: "disabled (--no-gpu)"}
	} else {
		gpu = startGPU(cfg.NVML, origin, cfg.GPUInterval)
	}
	r := &runner{target: target, inputs: inputs, origin: origin}
	phase := func(name string, total int) {
		r.mu.Lock()
		r.done = 0
		r.mu.Unlock()
		if cfg.Progress != nil {
			cfg.Progress(name, 0, total)
			r.progress = func(d int) { cfg.Progress(name, d, total) }
		}
	}
	err := runAll(ctx, cfg, r, gpu, rep, phase)
	if gpu != nil {
		rep.GPU = gpu.stop()
	}
	rep.Machine.UpdateRSS()
	if err != nil {
		return err
	}
	rep.Metrics = metrics(rep)
	if cfg.Baseline != nil {
		if err := runBaseline(ctx, cfg, rep, inputs); err != nil {
			return err
		}
	}
	if cfg.CompareTo != "" {
		old, err := ReadReport(cfg.CompareTo)
		if err != nil {
			return err
		}
		rep.Compare = Compare(old, rep, cfg.CompareTo, cfg.CompareThreshold)
	}
	return nil
}

func runAll(ctx context.Context, cfg Config, r *runner, gpu *gpuRecorder, rep *Report, phase func(string, int)) error {
	phase("warm-up", cfg.Warmup)
	t0 := time.Now()
	if err := r.warmup(ctx, cfg.Warmup); err != nil {
		return err
	}
	rep.WarmupS = time.Since(t0).Seconds()
	// The single-slot rate seen in the warm-up sizes offline queries and starts the
	// peak search.
	rate := 0.0
	if cfg.Warmup > 0 && rep.WarmupS > 0 {
		rate = float64(cfg.Warmup) / rep.WarmupS * float64(cfg.Slots)
	}
	timed := func(label string, total int, f func() RunResult) RunResult {
		phase(label, total)
		e0, ok0 := gpu.energyNow()
		res := f()
		if e1, ok1 := gpu.energyNow(); ok0 && ok1 {
			e := e1 - e0
			res.EnergyJ = &e
			if res.Samples > 0 {
				j := e / float64(res.Samples)
				res.JPerImage = &j
			}
		}
		return res
	}
	for rp := 1; rp <= cfg.Repeats; rp++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		b := budget{count: cfg.Count, dur: cfg.Duration}
		var runs []RunResult
		switch cfg.Scenario {
		case SingleStream:
			runs = append(runs, timed(fmt.Sprintf("single-stream #%d", rp), cfg.Count, func() RunResult { return r.singleStream(ctx, b) }))
		case Offline:
			n := cfg.Count
			if n == 0 {
				n = max(int(math.Ceil(cfg.Duration.Seconds()*rate)), 1)
			}
			runs = append(runs, timed(fmt.Sprintf("offline #%d", rp), n, func() RunResult { return r.offline(ctx, n) }))
		case Sweep:
			for _, c := range cfg.Concurrency {
				runs = append(runs, timed(fmt.Sprintf("sweep c=%d #%d", c, rp), cfg.Count, func() RunResult { return r.closedLoop(ctx, Sweep, c, b) }))
			}
		case Server:
			server := func(qps float64) RunResult {
				n := cfg.Count
				if n == 0 {
					n = max(int(math.Ceil(qps*cfg.Duration.Seconds())), 1)
				}
				arr := PoissonArrivals(qps, n, cfg.Seed+uint64(len(rep.Runs)+len(runs)))
				deadline := arr[len(arr)-1] + 10*cfg.LatencyBound
				return timed(fmt.Sprintf("server %s qps #%d", num(qps), rp), n, func() RunResult {
					return r.server(ctx, qps, arr, deadline, cfg.LatencyBound)
				})
			}
			if !cfg.FindPeak {
				runs = append(runs, server(cfg.QPS))
				break
			}
			start := cfg.QPS
			if start <= 0 {
				start = math.Max(rate, 0.01)
			}
			pk, err := FindPeak(ctx, PeakOptions{Start: start}, func(ctx context.Context, qps float64) (Probe, error) {
				res := server(qps)
				res.Repeat = rp
				runs = append(runs, res)
				return Probe{QPS: qps, Meets: *res.MeetsBound, P99: res.Latency.P99}, ctx.Err()
			})
			if err != nil {
				return err
			}
			if rep.Peak == nil || pk.QPS > 0 {
				pkc := pk
				rep.Peak = &pkc // the last repeat's probes; peak_qps collects every repeat
			}
			rep.peaks = append(rep.peaks, pk.QPS)
		}
		for i := range runs {
			runs[i].Repeat = rp
		}
		rep.Runs = append(rep.Runs, runs...)
	}
	return ctx.Err()
}

// energyNow is energy() on a possibly nil recorder.
func (g *gpuRecorder) energyNow() (float64, bool) {
	if g == nil {
		return 0, false
	}
	return g.energy()
}

func runBaseline(ctx context.Context, cfg Config, rep *Report, inputs []Input) error {
	spec := *cfg.Baseline
	if len(rep.Runs) == 0 || rep.Runs[0].Samples == 0 {
		return errors.New("baseline: grefine completed no request to compare with")
	}
	first := rep.Runs[0]
	if spec.Count <= 0 {
		spec.Count = min(first.Samples, 20)
	}
	if spec.Dir == "" {
		d, err := os.MkdirTemp("", "grefine-baseline-")
		if err != nil {
			return fmt.Errorf("baseline: %w", err)
		}
		defer os.RemoveAll(d)
		spec.Dir = d
	}
	if cfg.Progress != nil {
		cfg.Progress("baseline", 0, 0)
	}
	t0 := time.Now()
	bl, err := RunBaseline(ctx, spec, inputs)
	if err != nil {
		return err
	}
	bl.WallS = time.Since(t0).Seconds()
	bl.Against = runLabel(first)
	if first.Latency.P50 > 0 {
		bl.LatencyRatio = bl.Latency.P50 / first.Latency.P50
	}
	if bl.Throughput > 0 {
		bl.ThroughputRatio = first.Throughput / bl.Throughput
	}
	rep.Baseline = bl
	return nil
}

// WriteOutputs writes bench.json, bench.md and the plots into dir (created if needed),
// each file atomically. It returns the files written.
func WriteOutputs(rep *Report, dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	js, err := rep.MarshalIndent()
	if err != nil {
		return nil, err
	}
	written := []string{"bench.json", "bench.md"}
	for name, data := range map[string][]byte{"bench.json": js, "bench.md": []byte(rep.Markdown())} {
		if err := files.WriteAtomic(filepath.Join(dir, name), func(w io.Writer) error {
			_, err := io.Copy(w, bytes.NewReader(data))
			return err
		}); err != nil {
			return nil, err
		}
	}
	plots, err := WritePlots(rep, dir)
	return append(written, plots...), err
}
