package conformance

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/engine/ort"
	"github.com/grefine/grefine/modelset"
)

// Timing is the measured latency of one engine on one pair, host to host (uploads, run,
// wait, downloads), and the host/device copies of one run.
type Timing struct {
	Pair, Engine string
	Runs         int
	Median, Min  time.Duration
	// Copies per run on the pair's device stream (copies at the engine boundary; zero
	// for pairs without one).
	Copies engine.Counters
	// ORT per run: the bytes ONNX Runtime itself copies to and from the GPU (ort engines).
	ORT ort.CopyStats
}

// Timings opens each engine of set named in inputs once on env, runs it once to warm up,
// then runs times more and reports the median and minimum. Speed is measured, not
// asserted: the caller logs or records the numbers.
func Timings(ctx context.Context, env *Env, set *modelset.Set, inputs map[string]map[string]Input, runs int) ([]Timing, error) {
	names := make([]string, 0, len(inputs))
	for n := range inputs {
		if set.HasEngine(n) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var out []Timing
	for _, n := range names {
		entry := set.Manifest.Engines[n]
		in, shapes, err := makeInputs(n, entry.Inputs, inputs[n])
		if err != nil {
			return out, err
		}
		e, err := env.Open(ctx, set.Path(entry.File), n, shapes)
		if err != nil {
			return out, fmt.Errorf("%s %s: %w", env.Pair, n, err)
		}
		tm, err := timeEngine(ctx, env, e, in, runs)
		e.Close()
		if err != nil {
			return out, fmt.Errorf("%s %s: %w", env.Pair, n, err)
		}
		tm.Pair, tm.Engine = env.Pair, n
		out = append(out, tm)
	}
	return out, nil
}

func timeEngine(ctx context.Context, env *Env, e engine.Engine, in map[string]*engine.HostTensor, runs int) (Timing, error) {
	if _, err := env.RunHost(ctx, e, in); err != nil { // warm-up: cuDNN algorithm search, arena growth
		return Timing{}, err
	}
	var before ort.CopyStats
	inner := e
	if u, ok := e.(interface{ Unwrap() engine.Engine }); ok {
		inner = u.Unwrap()
	}
	oe, isORT := inner.(*ort.Engine)
	if isORT {
		before = oe.Copies()
	}
	var c0 engine.Counters
	if env.Stream != nil {
		c0 = env.Stream.Counters()
	}
	ds := make([]time.Duration, runs)
	for i := range ds {
		t0 := time.Now()
		if _, err := env.RunHost(ctx, e, in); err != nil {
			return Timing{}, err
		}
		ds[i] = time.Since(t0)
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	tm := Timing{Runs: runs, Median: ds[runs/2], Min: ds[0]}
	if runs > 0 {
		r := int64(runs)
		if isORT {
			a := oe.Copies()
			tm.ORT = ort.CopyStats{Runs: (a.Runs - before.Runs) / r,
				ORTInBytes: (a.ORTInBytes - before.ORTInBytes) / r, ORTOutBytes: (a.ORTOutBytes - before.ORTOutBytes) / r}
		}
		if env.Stream != nil {
			d := env.Stream.Counters().Sub(c0)
			tm.Copies = engine.Counters{HostToDevice: d.HostToDevice / runs, BytesH2D: d.BytesH2D / r,
				DeviceToHost: d.DeviceToHost / runs, BytesD2H: d.BytesD2H / r, Syncs: d.Syncs / runs}
		}
	}
	return tm, nil
}

// TimingTable formats timings as Markdown.
func TimingTable(ts []Timing) string {
	var b strings.Builder
	b.WriteString("| pair | engine | runs | median ms | min ms | our D2H per run | our H2D per run | ORT H2D B/run | ORT D2H B/run |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, t := range ts {
		c := t.Copies
		fmt.Fprintf(&b, "| %s | %s | %d | %.3f | %.3f | %d (%d B) | %d (%d B) | %d | %d |\n", t.Pair, t.Engine, t.Runs,
			float64(t.Median.Microseconds())/1e3, float64(t.Min.Microseconds())/1e3,
			c.DeviceToHost, c.BytesD2H, c.HostToDevice, c.BytesH2D, t.ORT.ORTInBytes, t.ORT.ORTOutBytes)
	}
	return b.String()
}
