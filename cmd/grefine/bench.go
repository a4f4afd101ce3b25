package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/grefine/grefine/bench"
	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/pipeline"
	"github.com/grefine/grefine/plans"
)

func benchCommand() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "throughput and latency benchmark (MLPerf-style scenarios) with bench.json, bench.md and plots",
		Description: "Runs --workload (assess, refine, or engine:NAME alone on synthetic inputs of its contract\n" +
			"shapes) under --scenario: single-stream (one request at a time: latency percentiles),\n" +
			"offline (every request queued at once: images/s), server (Poisson arrivals at --qps: is\n" +
			"p99 <= --latency-bound; --find-peak searches the highest such rate) or sweep (fixed\n" +
			"--concurrency levels). Inputs are --inputs FILE.jsonl ({image, prompt, id} lines) or a\n" +
			"built-in deterministic synthetic set. Writes bench.json (schema: go doc ./bench), bench.md\n" +
			"and PNG plots into --out; with a GPU also the NVML timeline (20 Hz) and joules per image.\n" +
			"--baseline 'CMD' runs a competitor on the same inputs (tools/bench_baseline.py is the PyTorch\n" +
			"reference) and reports the ratio; --compare OLD.json lists regressions and improvements.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "workload", Usage: "assess, refine or engine:NAME (one engine of the model set)", Value: "assess"},
			&cli.StringFlag{Name: "scenario", Usage: "single-stream, offline, server or sweep", Value: bench.SingleStream},
			&cli.DurationFlag{Name: "duration", Usage: "length of each run (ignored with --count)", Value: 60 * time.Second},
			&cli.IntFlag{Name: "count", Usage: "requests per run instead of --duration"},
			&cli.IntFlag{Name: "warmup", Usage: "untimed requests first", Value: 2},
			&cli.IntFlag{Name: "repeats", Usage: "runs of the scenario (metrics give min/median/max)", Value: 1},
			&cli.Float64Flag{Name: "qps", Usage: "server: Poisson arrival rate (with --find-peak: the first rate tried)"},
			&cli.DurationFlag{Name: "latency-bound", Usage: "server: the p99 latency bound", Value: 10 * time.Second},
			&cli.BoolFlag{Name: "find-peak", Usage: "server: search the highest qps whose p99 meets the bound"},
			&cli.StringFlag{Name: "concurrency", Usage: "sweep: requests in flight, comma-separated", Value: "1,2,4,8"},
			&cli.IntFlag{Name: "slots", Usage: "requests the pipeline runs at once", Value: 1},
			&cli.StringFlag{Name: "inputs", Usage: "JSONL of {\"image\", \"prompt\", \"id\"} lines (default: the synthetic set)"},
			&cli.IntFlag{Name: "synthetic", Usage: "size of the synthetic set", Value: 8},
			&cli.IntFlag{Name: "size", Usage: "side of synthetic images and engine inputs (0: 1024, 256 with a tiny set)"},
			&cli.IntFlag{Name: "batch", Usage: "engine:NAME: the batch dimension", Value: 1},
			&cli.StringSliceFlag{Name: "shape", Usage: "engine:NAME: an input's shape, NAME=AxBxC (repeatable)"},
			&cli.Uint64Flag{Name: "seed", Usage: "seed of the synthetic set and the arrival schedule", Value: 1},
			&cli.StringFlag{Name: "out", Usage: "output directory", Required: true},
			&cli.StringFlag{Name: "baseline", Usage: "competitor command run on the same inputs (sh -c; protocol: go doc ./bench)"},
			&cli.IntFlag{Name: "baseline-count", Usage: "competitor's timed requests (0: grefine's first run's samples, at most 20)"},
			&cli.IntFlag{Name: "baseline-warmup", Usage: "competitor's untimed requests", Value: 1},
			&cli.StringFlag{Name: "compare", Usage: "an older bench.json: print regressions and improvements"},
			&cli.Float64Flag{Name: "compare-threshold", Usage: "relative change that counts", Value: 0.05},
			&cli.BoolFlag{Name: "no-feature-cache", Usage: "assess/refine: encode every prompt's texts on every request (no text-feature cache)"},
			&cli.BoolFlag{Name: "no-gpu", Usage: "do not read NVML"},
			&cli.BoolFlag{Name: "quiet", Usage: "no progress bar"},
		},
		Action: runBench,
	}
}

func runBench(c *cli.Context) (err error) {
	if c.NArg() > 0 {
		return usagef("bench takes no arguments (got %q)", c.Args().Slice())
	}
	cfg, err := benchConfig(c)
	if err != nil {
		return err
	}
	if _, _, err := preflight(c, true); err != nil {
		return err
	}
	var inputFiles []string
	if in := c.String("inputs"); in != "" {
		inputFiles = append(inputFiles, in)
	}
	out, err := openOut(c.String("out"), []string{""}, inputFiles)
	if err != nil {
		return err
	}
	defer func() { out.finish(outcome(interruptedAs(c, err))) }()
	workload := c.String("workload")
	rep := &bench.Report{Workload: workload, Version: pipeline.Version, Command: invocation()}
	var target bench.Target
	var inputs []bench.Input
	size := c.Int("size")
	if engName, ok := strings.CutPrefix(workload, "engine:"); ok {
		t, info, err := openEngineTarget(c, engName, size)
		if err != nil {
			return err
		}
		defer t.E.Close()
		target, rep.Engine = t, info
		inputs = []bench.Input{{ID: "synthetic-tensors"}}
		rep.Inputs = bench.InputsInfo{Source: "synthetic tensors", Count: 1}
	} else {
		if workload != "assess" && workload != "refine" {
			return usagef("bad --workload %q (assess, refine or engine:NAME)", workload)
		}
		pcfg, _, err := preflight(c, workload == "assess")
		if err != nil {
			return err
		}
		pcfg.Slots, pcfg.FeatureCache = c.Int("slots"), featureCache(c)
		p, err := pipeline.Open(c.Context, pcfg)
		if err != nil {
			return fmt.Errorf("opening the pipeline: %w", err)
		}
		defer p.Close()
		info := p.Info()
		rep.Pipeline = &info
		if size == 0 {
			size = 1024
			if info.Tiny {
				size = 256
			}
		}
		if inputs, rep.Inputs, err = benchInputs(c, p, size); err != nil {
			return err
		}
		if c.Bool("no-feature-cache") {
			rep.Notes = append(rep.Notes, "text-feature cache off: every request encodes its prompt's texts")
		}
		if workload == "assess" {
			at := &bench.AssessTarget{P: p}
			target = at
			if cfg.Baseline != nil {
				cfg.Baseline.Parts = at.Parts
			}
		} else {
			target = &bench.RefineTarget{P: p}
		}
	}
	if cfg.Baseline != nil {
		cfg.Baseline.Workload, cfg.Baseline.Models, cfg.Baseline.Threads = workload, c.String("models"), c.Int("threads")
		cfg.Baseline.Stderr = c.App.ErrWriter
	}
	var bar *progress
	finish := func() {
		if bar != nil {
			bar.Finish()
		}
	}
	cfg.Progress = func(phase string, done, total int) {
		seconds := total == 0 && cfg.Count == 0 && phase != "baseline" && phase != "warm-up"
		if seconds { // a timed run: the bar counts seconds
			total = int(cfg.Duration.Seconds())
		}
		if bar == nil || bar.label != phase {
			finish()
			bar = newProgress(c.App.ErrWriter, phase, total, c.Bool("quiet"))
		}
		if seconds {
			done = min(int(time.Since(bar.start).Seconds()), total)
		}
		bar.Set(done)
	}
	err = bench.Run(c.Context, cfg, target, inputs, rep)
	finish()
	if err != nil {
		return err
	}
	files, err := bench.WriteOutputs(rep, out.staging)
	if err != nil {
		return err
	}
	if err := out.commit(""); err != nil {
		return err
	}
	if rep.Compare != nil {
		fmt.Fprint(c.App.Writer, rep.Compare.Markdown())
	}
	if bl := rep.Baseline; bl != nil {
		fmt.Fprintf(c.App.Writer, "baseline: median %.1f ms vs grefine %.1f ms: %.2fx\n", bl.Latency.P50, rep.Runs[0].Latency.P50, bl.LatencyRatio)
	}
	for _, m := range rep.Metrics {
		fmt.Fprintf(c.App.Writer, "%s: %.4g %s (min %.4g, max %.4g over %d)\n", m.Name, m.Median, m.Unit, m.Min, m.Max, len(m.Values))
	}
	fmt.Fprintf(c.App.Writer, "wrote %s into %s\n", strings.Join(files, ", "), c.String("out"))
	return nil
}

// benchConfig reads the scenario flags.
func benchConfig(c *cli.Context) (bench.Config, error) {
	cfg := bench.Config{Workload: c.String("workload"), Scenario: c.String("scenario"), Duration: c.Duration("duration"),
		Count: c.Int("count"), Warmup: c.Int("warmup"), Repeats: c.Int("repeats"), QPS: c.Float64("qps"),
		LatencyBound: c.Duration("latency-bound"), FindPeak: c.Bool("find-peak"), Slots: c.Int("slots"), Seed: c.Uint64("seed"),
		NoGPU: c.Bool("no-gpu"), CompareTo: c.String("compare"), CompareThreshold: c.Float64("compare-threshold")}
	if cfg.Scenario == bench.Sweep {
		for _, f := range strings.Split(c.String("concurrency"), ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				return cfg, usagef("bad --concurrency %q (comma-separated counts)", c.String("concurrency"))
			}
			cfg.Concurrency = append(cfg.Concurrency, n)
		}
	}
	if cfg.FindPeak && cfg.Scenario != bench.Server {
		return cfg, usagef("--find-peak needs --scenario server")
	}
	if c.IsSet("repeats") && cfg.Repeats < 1 {
		return cfg, usagef("--repeats must be >= 1")
	}
	if b := c.String("baseline"); b != "" {
		if strings.HasPrefix(c.String("workload"), "engine:") {
			return cfg, usagef("--baseline runs with --workload assess or refine")
		}
		cfg.Baseline = &bench.BaselineSpec{Command: b, Count: c.Int("baseline-count"), Warmup: c.Int("baseline-warmup")}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, usagef("bench: %v", err)
	}
	return cfg, nil
}

// benchInputs loads --inputs or makes the synthetic set.
func benchInputs(c *cli.Context, p *pipeline.Pipeline, size int) ([]bench.Input, bench.InputsInfo, error) {
	var in []bench.Input
	var info bench.InputsInfo
	var err error
	if f := c.String("inputs"); f != "" {
		if in, err = bench.LoadJSONL(f, p.DecodeImage); err != nil {
			return nil, info, err
		}
		info.Source = f
	} else {
		if in, err = bench.Synthetic(c.Int("synthetic"), size, c.Uint64("seed")); err != nil {
			return nil, info, usagef("%v", err)
		}
		info.Source = "synthetic"
	}
	for _, x := range in {
		if err := p.CheckImage(x.Image); err != nil {
			return nil, info, fmt.Errorf("input %s: %w", x.ID, err)
		}
	}
	info.Count, info.Width, info.Height = len(in), in[0].Image.W, in[0].Image.H
	return in, info, nil
}

// openEngineTarget opens one engine of the model set with synthetic inputs.
func openEngineTarget(c *cli.Context, name string, size int) (*bench.EngineTarget, *bench.EngineInfo, error) {
	pcfg, _, err := preflight(c, true)
	if err != nil {
		return nil, nil, err
	}
	set, err := loadModels(c)
	if err != nil {
		return nil, nil, err
	}
	if !set.HasEngine(name) {
		var names []string
		for n := range set.Manifest.Engines {
			names = append(names, n)
		}
		return nil, nil, usagef("--workload engine:%s: the model set has no such engine (it has %v)", name, names)
	}
	if size == 0 {
		size = 1024
		if set.Manifest.Tiny {
			size = 256
		}
	}
	shapes := map[string]engine.Shape{}
	for _, s := range c.StringSlice("shape") {
		k, v, ok := strings.Cut(s, "=")
		sh, err := bench.ParseShape(v)
		if !ok || err != nil {
			return nil, nil, usagef("bad --shape %q (NAME=AxBxC)", s)
		}
		shapes[k] = sh
	}
	// Everything opened is closed in reverse order, on failure here or by the target's
	// engine's Close when the run ends.
	var cl closers
	fail := func(err error) (*bench.EngineTarget, *bench.EngineInfo, error) {
		cl.Close()
		return nil, nil, err
	}
	b, err := engine.NewBackend(pcfg.Backend, pcfg.BackendOptions)
	if err != nil {
		return nil, nil, err
	}
	cl = append(cl, b)
	if err := b.Available(); err != nil {
		return fail(err)
	}
	// A backend whose engines read device tensors runs on a stream of --device (the trt
	// backend defaults it to cuda), as a pipeline slot would; the inputs live there.
	var st engine.Stream
	if b.DeviceName() != "cpu" {
		d, err := engine.NewDevice(pcfg.Device, pcfg.DeviceOptions)
		if err != nil {
			return fail(err)
		}
		cl = append(cl, d)
		if d.Name() != b.DeviceName() {
			return fail(fmt.Errorf("%w: backend %s reads %s tensors, device %s holds %s tensors", engine.ErrUnavailable, b.Name(), b.DeviceName(), pcfg.Device, d.Name()))
		}
		if st, err = d.NewStream(); err != nil {
			return fail(err)
		}
		cl = append(cl, st)
	}
	// With --plans the engine is its TensorRT plan (verified like the pipeline's), not the ONNX file.
	var opener engine.Opener = set
	if pcfg.Plans != "" {
		repo, err := plans.Open(pcfg.Plans, set, plans.OpenOptions{})
		if err != nil {
			return fail(err)
		}
		cl = append(cl, repo)
		opener = repo
	}
	e, err := opener.OpenEngine(b, name, engine.OpenOptions{Name: name, Threads: c.Int("threads"), Stream: st})
	if err != nil {
		return fail(err)
	}
	cl = append(cl, e)
	t, err := bench.NewEngineTarget(e, st, size, c.Int("batch"), c.Int("slots"), shapes, c.Uint64("seed"))
	if err != nil {
		return fail(usagef("%v", err))
	}
	cl = append(cl, t)
	t.E = closingEngine{Engine: e, cl: cl}
	return t, &bench.EngineInfo{Name: name, Backend: b.Name() + " (" + b.Version() + ")", Shapes: t.Shapes()}, nil
}

// closers close in reverse order, returning the first error.
type closers []interface{ Close() error }

func (cl closers) Close() error {
	var first error
	for i := len(cl) - 1; i >= 0; i-- {
		if err := cl[i].Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// closingEngine is the benchmarked engine; its Close releases everything opened with it
// (inputs, engine, plan repository, stream, device, backend), last first.
type closingEngine struct {
	engine.Engine
	cl closers
}

func (e closingEngine) Close() error { return e.cl.Close() }

func featureCache(c *cli.Context) int {
	if c.Bool("no-feature-cache") {
		return -1
	}
	return 0
}

// invocation is the command line as typed, program name "grefine".
func invocation() string {
	args := []string{"grefine"}
	for _, a := range os.Args[1:] {
		if a == "" || strings.ContainsAny(a, " \t'\"$*?;&|<>") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		args = append(args, a)
	}
	return strings.Join(args, " ")
}
