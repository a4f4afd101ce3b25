package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"time"
)

// Target runs one request. It is the only thing the scenarios need of a workload, so a
// test drives them with a fake of known latencies. Do may be called concurrently.
type Target interface {
	Do(ctx context.Context, in *Input) (Outcome, error)
}

// Outcome is what a Target reports of one request.
type Outcome struct {
	// Started is when compute began (the pipeline gave the request a slot); zero means
	// when Do was called, i.e. no queue time.
	Started time.Time
	// Stages are the request's stage timings in milliseconds, from the pipeline's own
	// reports ("assess/clip_text", "stage1", ...).
	Stages map[string]float64
}

// Scenario names.
const (
	SingleStream = "single-stream"
	Offline      = "offline"
	Server       = "server"
	Sweep        = "sweep"
)

// Scenarios lists the scenario names.
var Scenarios = []string{SingleStream, Offline, Server, Sweep}

// Record is one timed request. Times are milliseconds; IssuedS is seconds from the
// start of its run. Latency is Queue + Compute, measured from the request's issue
// time (in the server scenario: its scheduled arrival, so a late dispatch counts).
type Record struct {
	Input     string             `json:"input"`
	IssuedS   float64            `json:"issued_s"`
	QueueMs   float64            `json:"queue_ms"`
	ComputeMs float64            `json:"compute_ms"`
	LatencyMs float64            `json:"latency_ms"`
	Stages    map[string]float64 `json:"stages_ms,omitempty"`
	Error     string             `json:"error,omitempty"`
}

// RunResult is one timed run of a scenario: a repeat, a sweep level or a peak probe.
type RunResult struct {
	Scenario    string  `json:"scenario"`
	Repeat      int     `json:"repeat"`
	Concurrency int     `json:"concurrency,omitempty"` // sweep level; offline: requests at once
	TargetQPS   float64 `json:"target_qps,omitempty"`  // server
	// StartS and EndS are seconds from the start of the benchmark (after loading).
	StartS  float64 `json:"start_s"`
	EndS    float64 `json:"end_s"`
	Samples int     `json:"samples"` // requests that completed without error
	Errors  int     `json:"errors"`
	// Throughput is completed requests per second over the run's span (first issue to
	// last completion).
	Throughput float64            `json:"throughput_per_s"`
	Latency    Summary            `json:"latency_ms"`
	Queue      Summary            `json:"queue_ms"`
	Compute    Summary            `json:"compute_ms"`
	Stages     map[string]Summary `json:"stages_ms,omitempty"`
	// MeetsBound (server) is whether p99 latency <= the bound.
	MeetsBound *bool `json:"meets_bound,omitempty"`
	// GPU energy over the run (with a GPU): joules and joules per completed image.
	EnergyJ   *float64 `json:"energy_j,omitempty"`
	JPerImage *float64 `json:"j_per_image,omitempty"`
	Records   []Record `json:"records"`
}

// runner executes scenarios on a Target over a cyclic list of inputs.
type runner struct {
	target   Target
	inputs   []Input
	origin   time.Time // the benchmark's time zero
	next     int       // next input (cyclic)
	mu       sync.Mutex
	progress func(done int)
	done     int
}

func (r *runner) input() *Input {
	r.mu.Lock()
	defer r.mu.Unlock()
	in := &r.inputs[r.next%len(r.inputs)]
	r.next++
	return in
}

func (r *runner) tick() {
	r.mu.Lock()
	r.done++
	d := r.done
	r.mu.Unlock()
	if r.progress != nil {
		r.progress(d)
	}
}

// one runs one request issued at issued (relative to start), and records it.
func (r *runner) one(ctx context.Context, in *Input, start, issued time.Time) Record {
	o, err := r.target.Do(ctx, in)
	end := time.Now()
	rec := Record{Input: in.ID, IssuedS: issued.Sub(start).Seconds(), Stages: o.Stages}
	began := o.Started
	if began.IsZero() || began.Before(issued) {
		began = issued
	}
	if began.After(end) {
		began = end
	}
	rec.QueueMs, rec.ComputeMs, rec.LatencyMs = millis(began.Sub(issued)), millis(end.Sub(began)), millis(end.Sub(issued))
	if err != nil {
		rec.Error = err.Error()
	}
	r.tick()
	return rec
}

func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// warmup runs n requests one after the other, untimed.
func (r *runner) warmup(ctx context.Context, n int) error {
	for i := 0; i < n; i++ {
		if _, err := r.target.Do(ctx, r.input()); err != nil {
			return fmt.Errorf("warm-up request %d: %w", i+1, err)
		}
	}
	return nil
}

// budget says when a run stops issuing: after count requests when count > 0, else when
// dur has passed (at least one request).
type budget struct {
	count int
	dur   time.Duration
}

func (b budget) more(issued int, start time.Time) bool {
	if b.count > 0 {
		return issued < b.count
	}
	return issued == 0 || time.Since(start) < b.dur
}

// singleStream issues one request at a time.
func (r *runner) singleStream(ctx context.Context, b budget) RunResult {
	start := time.Now()
	var recs []Record
	for n := 0; b.more(n, start) && ctx.Err() == nil; n++ {
		recs = append(recs, r.one(ctx, r.input(), start, time.Now()))
	}
	return r.result(SingleStream, start, recs)
}

// closedLoop keeps c requests in flight (c workers, each issuing its next request when
// the last completes) until the budget is spent.
func (r *runner) closedLoop(ctx context.Context, scenario string, c int, b budget) RunResult {
	start := time.Now()
	var mu sync.Mutex
	issued := 0
	var recs []Record
	var wg sync.WaitGroup
	for w := 0; w < c; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				mu.Lock()
				if !b.more(issued, start) {
					mu.Unlock()
					return
				}
				issued++
				mu.Unlock()
				rec := r.one(ctx, r.input(), start, time.Now())
				mu.Lock()
				recs = append(recs, rec)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	res := r.result(scenario, start, recs)
	res.Concurrency = c
	return res
}

// offline issues n requests at once (MLPerf's one query of every sample): the
// workload's own queue orders them.
func (r *runner) offline(ctx context.Context, n int) RunResult {
	start := time.Now()
	recs := make([]Record, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		in := r.input()
		wg.Add(1)
		go func() {
			defer wg.Done()
			recs[i] = r.one(ctx, in, start, start)
		}()
	}
	wg.Wait()
	res := r.result(Offline, start, recs)
	res.Concurrency = n
	return res
}

// server dispatches requests at the scheduled arrival offsets. Latency counts from the
// scheduled arrival. Requests still running at deadline (from the start) are cancelled
// and count as errors.
func (r *runner) server(ctx context.Context, qps float64, arrivals []time.Duration, deadline time.Duration, bound time.Duration) RunResult {
	start := time.Now()
	rctx, cancel := context.WithDeadlineCause(ctx, start.Add(deadline), errors.New("server run past its deadline (overloaded)"))
	defer cancel()
	recs := make([]Record, len(arrivals))
	var wg sync.WaitGroup
	n := 0
	for i, at := range arrivals {
		t := time.NewTimer(time.Until(start.Add(at)))
		select {
		case <-rctx.Done():
			t.Stop()
		case <-t.C:
		}
		if rctx.Err() != nil {
			break
		}
		n = i + 1
		in := r.input()
		wg.Add(1)
		go func() {
			defer wg.Done()
			recs[i] = r.one(rctx, in, start, start.Add(at))
		}()
	}
	wg.Wait()
	for i := n; i < len(arrivals); i++ { // never dispatched: the run was cut off
		recs[i] = Record{IssuedS: arrivals[i].Seconds(), Error: "not issued: server run past its deadline (overloaded)"}
	}
	res := r.result(Server, start, recs)
	res.TargetQPS = qps
	meets := res.Errors == 0 && res.Samples > 0 && res.Latency.P99 <= millis(bound)
	res.MeetsBound = &meets
	return res
}

// result summarises records into a RunResult.
func (r *runner) result(scenario string, start time.Time, recs []Record) RunResult {
	res := RunResult{Scenario: scenario, StartS: start.Sub(r.origin).Seconds(), Records: recs}
	var lat, queue, comp []float64
	stages := map[string][]float64{}
	last := 0.0
	for _, rec := range recs {
		if rec.Error != "" {
			res.Errors++
			continue
		}
		res.Samples++
		lat, queue, comp = append(lat, rec.LatencyMs), append(queue, rec.QueueMs), append(comp, rec.ComputeMs)
		last = math.Max(last, rec.IssuedS+rec.LatencyMs/1000)
		for k, v := range rec.Stages {
			stages[k] = append(stages[k], v)
		}
	}
	sort.SliceStable(res.Records, func(i, j int) bool { return res.Records[i].IssuedS < res.Records[j].IssuedS })
	res.EndS = time.Since(r.origin).Seconds()
	if last > 0 {
		res.Throughput = float64(res.Samples) / last
	}
	res.Latency, res.Queue, res.Compute = Summarize(lat), Summarize(queue), Summarize(comp)
	if len(stages) > 0 {
		res.Stages = map[string]Summary{}
		for k, v := range stages {
			res.Stages[k] = Summarize(v)
		}
	}
	return res
}
