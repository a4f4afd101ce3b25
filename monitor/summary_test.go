package monitor_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/monitor"
)

func u32(v uint32) *uint32   { return &v }
func u64(v uint64) *uint64   { return &v }
func f64(v float64) *float64 { return &v }

func TestSummary(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var s monitor.Summary
	n, span := s.Samples()
	assert.Zero(t, n)
	assert.Zero(t, span)
	assert.Empty(t, s.GPUs())

	// GPU 1 has power only in two of three samples; GPU 0 never reports temperature.
	power := []*float64{f64(100), nil, f64(300)}
	util := []uint32{10, 40, 70}
	for k := range 3 {
		s.Add(monitor.Sample{
			Time: t0.Add(time.Duration(k) * time.Second),
			GPUs: []monitor.GPUSample{
				{Index: 1, GPUUtil: u32(util[k]), PowerW: power[k], TempC: u32(50), MemUsed: u64(uint64(k) << 30),
					Throttle: []string{"sw_power_cap"}},
				{Index: 0, GPUUtil: u32(1), Throttle: map[bool][]string{true: {"hw_thermal"}, false: {}}[k == 2]},
			},
		})
	}
	n, span = s.Samples()
	assert.Equal(t, 3, n)
	assert.Equal(t, 2*time.Second, span)

	gs := s.GPUs()
	require.Len(t, gs, 2)
	assert.Equal(t, 0, gs[0].Index, "sorted by index")
	assert.Equal(t, 1, gs[1].Index)

	g := gs[1]
	assert.Equal(t, monitor.Stat{Min: 10, Mean: 40, Max: 70, N: 3}, strip(g.Metrics[monitor.MetricGPUUtil]))
	assert.Equal(t, monitor.Stat{Min: 100, Mean: 200, Max: 300, N: 2}, strip(g.Metrics[monitor.MetricPower]))
	assert.Equal(t, monitor.Stat{Min: 50, Mean: 50, Max: 50, N: 3}, strip(g.Metrics[monitor.MetricTemperature]))
	assert.Equal(t, monitor.Stat{Min: 0, Mean: 1 << 30, Max: 2 << 30, N: 3}, strip(g.Metrics[monitor.MetricMemUsed]))
	assert.NotContains(t, g.Metrics, monitor.MetricSMClock, "never read, no stat")
	assert.Equal(t, map[string]int{"sw_power_cap": 3}, g.Throttle)

	assert.NotContains(t, gs[0].Metrics, monitor.MetricTemperature)
	assert.Equal(t, map[string]int{"hw_thermal": 1}, gs[0].Throttle)

	// GPUs returns copies.
	gs[1].Metrics[monitor.MetricGPUUtil] = monitor.Stat{}
	assert.Equal(t, 3, s.GPUs()[1].Metrics[monitor.MetricGPUUtil].N)
}

// strip drops the unexported running sum so Stats compare by their public fields.
func strip(s monitor.Stat) monitor.Stat {
	return monitor.Stat{Min: s.Min, Mean: s.Mean, Max: s.Max, N: s.N}
}

func TestSummaryFromRun(t *testing.T) {
	m := open(t, fakeDGX())
	var s monitor.Summary
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	calls := 0
	require.NoError(t, m.Run(ctx, time.Millisecond, func(sm monitor.Sample) {
		s.Add(sm)
		if calls++; calls == 4 {
			cancel()
		}
	}))
	n, _ := s.Samples()
	assert.Equal(t, 4, n)
	gs := s.GPUs()
	require.Len(t, gs, 8)
	for i, g := range gs {
		st := g.Metrics[monitor.MetricPower]
		assert.Equal(t, 4, st.N)
		assert.InDelta(t, 100+10*float64(i), st.Mean, 1e-9)
		assert.Equal(t, st.Min, st.Max, "the mock's power is constant")
	}
	assert.Equal(t, map[string]int{"sw_power_cap": 4, "hw_slowdown": 4}, gs[0].Throttle)
	assert.Empty(t, gs[1].Throttle)
}
