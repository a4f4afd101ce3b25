package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakePipeline is a Target with a known latency per input: input i always takes
// lat[i] (drawn once from a seeded log-normal), on slots slots in arrival order, and
// reports it as its one stage "fake". Inputs named in fail fail.
type fakePipeline struct {
	lat   map[string]time.Duration
	slots chan struct{}
	fail  map[string]bool
	calls atomic.Int64
	mu    sync.Mutex
	order []string // inputs in the order they got a slot
}

func newFake(inputs []Input, slots int, seed uint64, lo, spread time.Duration) *fakePipeline {
	r := rand.New(rand.NewPCG(seed, 1))
	f := &fakePipeline{lat: map[string]time.Duration{}, slots: make(chan struct{}, slots), fail: map[string]bool{}}
	for _, in := range inputs {
		f.lat[in.ID] = lo + time.Duration(float64(spread)*r.Float64()*r.Float64())
	}
	return f
}

func (f *fakePipeline) Do(ctx context.Context, in *Input) (Outcome, error) {
	f.calls.Add(1)
	select {
	case f.slots <- struct{}{}:
	case <-ctx.Done():
		return Outcome{}, ctx.Err()
	}
	defer func() { <-f.slots }()
	o := Outcome{Started: time.Now()}
	f.mu.Lock()
	f.order = append(f.order, in.ID)
	f.mu.Unlock()
	d := f.lat[in.ID]
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return o, ctx.Err()
	}
	if f.fail[in.ID] {
		return o, errors.New("fake failure")
	}
	o.Stages = map[string]float64{"fake": millis(d)}
	return o, nil
}

func fakeInputs(n int) []Input {
	in := make([]Input, n)
	for i := range in {
		in[i] = Input{ID: fmt.Sprintf("in%02d", i)}
	}
	return in
}

// known returns the fake's latencies (ms) of the records' inputs, in record order.
func (f *fakePipeline) known(recs []Record) []float64 {
	out := make([]float64, 0, len(recs))
	for _, r := range recs {
		if r.Error == "" {
			out = append(out, millis(f.lat[r.Input]))
		}
	}
	return out
}

func runFake(t *testing.T, cfg Config, f Target, inputs []Input) *Report {
	t.Helper()
	cfg.NoGPU = true
	rep := &Report{Workload: "fake"}
	require.NoError(t, Run(context.Background(), cfg, f, inputs, rep))
	return rep
}

func TestSingleStream(t *testing.T) {
	in := fakeInputs(7)
	f := newFake(in, 1, 1, 2*time.Millisecond, 8*time.Millisecond)
	rep := runFake(t, Config{Scenario: SingleStream, Count: 30, Warmup: 3, Repeats: 2}, f, in)
	require.Len(t, rep.Runs, 2)
	assert.Equal(t, int64(3+2*30), f.calls.Load(), "warm-up requests run but are not recorded")
	for i, run := range rep.Runs {
		assert.Equal(t, i+1, run.Repeat)
		require.Equal(t, 30, run.Samples)
		require.Len(t, run.Records, 30)
		known := f.known(run.Records)
		// The stage timings are the fake's own numbers: their summary is exact.
		assert.Equal(t, Summarize(known), run.Stages["fake"])
		for k, rec := range run.Records {
			assert.GreaterOrEqual(t, rec.LatencyMs, known[k], "a request takes at least its service time")
			assert.InDelta(t, rec.LatencyMs, rec.QueueMs+rec.ComputeMs, 0.002)
			if k > 0 {
				assert.GreaterOrEqual(t, rec.IssuedS, run.Records[k-1].IssuedS+run.Records[k-1].LatencyMs/1000-1e-6, "one at a time")
			}
		}
		ks := Summarize(known)
		assert.GreaterOrEqual(t, run.Latency.P50, ks.P50)
		assert.GreaterOrEqual(t, run.Latency.P99, ks.P99)
		assert.LessOrEqual(t, run.Throughput, 1000/ks.Mean, "no faster than the service times allow")
	}
	// Inputs are taken in turn across warm-up and repeats.
	assert.Equal(t, "in03", rep.Runs[0].Records[0].Input)
	names := map[string]bool{}
	for _, m := range rep.Metrics {
		names[m.Name] = true
		if m.Name != "rss_peak" { // one per benchmark
			assert.Len(t, m.Values, 2, m.Name)
		}
		assert.LessOrEqual(t, m.Min, m.Median)
		assert.LessOrEqual(t, m.Median, m.Max)
	}
	for _, want := range []string{"throughput", "latency_p50", "latency_p90", "latency_p99", "compute_mean", "queue_mean"} {
		assert.True(t, names[want], want)
	}
}

func TestOfflineQueues(t *testing.T) {
	in := fakeInputs(5)
	f := newFake(in, 1, 2, 1*time.Millisecond, 4*time.Millisecond)
	rep := runFake(t, Config{Scenario: Offline, Count: 12, Warmup: 0}, f, in)
	run := rep.Runs[0]
	require.Equal(t, 12, run.Samples)
	assert.Equal(t, 12, run.Concurrency)
	// All issued at once; with one slot, each request waits at least for the service
	// times of those that got the slot before it.
	byStart := append([]Record(nil), run.Records...)
	sort.Slice(byStart, func(i, j int) bool { return byStart[i].QueueMs < byStart[j].QueueMs })
	ahead := 0.0
	for _, rec := range byStart {
		assert.Equal(t, 0.0, rec.IssuedS)
		assert.GreaterOrEqual(t, rec.QueueMs, ahead-0.01)
		ahead += millis(f.lat[rec.Input])
	}
	assert.LessOrEqual(t, run.Throughput, 1000*12/ahead+1e-9)
	assert.Greater(t, run.Queue.Max, run.Queue.Min, "later requests queue longer")
}

func TestOfflineSizedFromWarmup(t *testing.T) {
	in := fakeInputs(2)
	f := newFake(in, 1, 3, 5*time.Millisecond, 0)
	rep := runFake(t, Config{Scenario: Offline, Duration: 50 * time.Millisecond, Warmup: 2}, f, in)
	// rate ≈ 1/5 ms = 200/s, so about 10 requests; the exact count depends on the warm-up.
	n := rep.Runs[0].Samples
	assert.GreaterOrEqual(t, n, 1)
	assert.LessOrEqual(t, n, 11, "the warm-up cannot be faster than the service time")
}

func TestServerScenario(t *testing.T) {
	in := fakeInputs(4)
	f := newFake(in, 2, 4, time.Millisecond, time.Millisecond)
	cfg := Config{Scenario: Server, QPS: 80, Count: 40, LatencyBound: time.Minute, Seed: 9}
	rep := runFake(t, cfg, f, in)
	run := rep.Runs[0]
	require.Equal(t, 40, run.Samples)
	assert.Equal(t, 80.0, run.TargetQPS)
	require.NotNil(t, run.MeetsBound)
	assert.True(t, *run.MeetsBound)
	arr := PoissonArrivals(80, 40, 9)
	for i, rec := range run.Records {
		assert.InDelta(t, arr[i].Seconds(), rec.IssuedS, 1e-9, "issue times are the scheduled arrivals")
	}
	// A bound no request can meet.
	cfg.LatencyBound = time.Microsecond
	rep = runFake(t, cfg, f, in)
	assert.False(t, *rep.Runs[0].MeetsBound)
}

func TestServerOverloadCutOff(t *testing.T) {
	in := fakeInputs(1)
	f := newFake(in, 1, 5, 30*time.Millisecond, 0)
	// 1000 qps against a 30 ms service: the run is cut 10 bounds (10 ms) after the last
	// arrival; the rest fail and the bound is not met.
	rep := runFake(t, Config{Scenario: Server, QPS: 1000, Count: 20, LatencyBound: time.Millisecond}, f, in)
	run := rep.Runs[0]
	assert.Greater(t, run.Errors, 0)
	assert.Equal(t, 20, run.Errors+run.Samples)
	assert.False(t, *run.MeetsBound)
}

func TestServerFindPeak(t *testing.T) {
	in := fakeInputs(3)
	f := newFake(in, 1, 6, 2*time.Millisecond, 0)
	rep := runFake(t, Config{Scenario: Server, FindPeak: true, QPS: 20, Count: 15, LatencyBound: 500 * time.Millisecond, Seed: 1}, f, in)
	require.NotNil(t, rep.Peak)
	assert.Len(t, rep.Runs, len(rep.Peak.Probes), "every probe is a run")
	for i, p := range rep.Peak.Probes {
		assert.Equal(t, p.QPS, rep.Runs[i].TargetQPS)
		assert.Equal(t, p.Meets, *rep.Runs[i].MeetsBound)
	}
	var peak *Metric
	for i := range rep.Metrics {
		if rep.Metrics[i].Name == "peak_qps" {
			peak = &rep.Metrics[i]
		}
		assert.NotEqual(t, "throughput", rep.Metrics[i].Name, "probes at different rates are not one metric")
	}
	require.NotNil(t, peak)
	assert.Equal(t, rep.Peak.QPS, peak.Median)
}

func TestSweepLevels(t *testing.T) {
	in := fakeInputs(6)
	f := newFake(in, 4, 7, time.Millisecond, 2*time.Millisecond)
	rep := runFake(t, Config{Scenario: Sweep, Concurrency: []int{1, 2, 4}, Count: 16}, f, in)
	require.Len(t, rep.Runs, 3)
	for i, c := range []int{1, 2, 4} {
		run := rep.Runs[i]
		assert.Equal(t, c, run.Concurrency)
		assert.Equal(t, 16, run.Samples)
		assert.Equal(t, Summarize(f.known(run.Records)), run.Stages["fake"])
	}
	names := map[string]bool{}
	for _, m := range rep.Metrics {
		names[m.Name] = true
	}
	assert.True(t, names["throughput@c1"] && names["throughput@c4"] && names["latency_p99@c2"])
}

func TestErrorsCounted(t *testing.T) {
	in := fakeInputs(4)
	f := newFake(in, 1, 8, time.Millisecond, 0)
	f.fail["in01"] = true
	rep := runFake(t, Config{Scenario: SingleStream, Count: 8}, f, in)
	run := rep.Runs[0]
	assert.Equal(t, 2, run.Errors)
	assert.Equal(t, 6, run.Samples)
	assert.Equal(t, 6, run.Latency.N, "failed requests are not in the latency sample")
	// A failing warm-up stops the run.
	f.fail["in00"] = true
	err := Run(context.Background(), Config{Scenario: SingleStream, Count: 1, Warmup: 1, NoGPU: true}, f, in, &Report{})
	assert.ErrorContains(t, err, "warm-up request 1")
}

func TestConfigValidate(t *testing.T) {
	bad := []Config{
		{Scenario: "nope", Count: 1},
		{Scenario: SingleStream},
		{Scenario: Server, Count: 1, LatencyBound: time.Second},
		{Scenario: Server, Count: 1, QPS: 1},
		{Scenario: Sweep, Count: 1},
		{Scenario: Sweep, Count: 1, Concurrency: []int{0}},
		{Scenario: Offline, Duration: time.Second},
		{Scenario: SingleStream, Count: -1},
	}
	for _, c := range bad {
		assert.Error(t, c.Validate(), "%+v", c)
		assert.Error(t, Run(context.Background(), c, nil, fakeInputs(1), &Report{}))
	}
	assert.NoError(t, (&Config{Scenario: SingleStream, Duration: time.Second}).Validate())
	assert.Error(t, Run(context.Background(), Config{Scenario: SingleStream, Count: 1}, nil, nil, &Report{}), "no inputs")
}
