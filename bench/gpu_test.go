package bench

import (
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeGPUs is go-nvml's 8×H100 mock with the calls monitor makes filled in; each GPU's
// energy counter advances 2 J per read and its power is 300 W.
func fakeGPUs() *server.Server {
	s := dgxh100.New()
	for _, nd := range s.Devices {
		d := nd.(*server.Device)
		var mj atomic.Uint64
		d.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) { return nvml.Utilization{Gpu: 90, Memory: 40}, nvml.SUCCESS }
		d.GetPowerUsageFunc = func() (uint32, nvml.Return) { return 300_000, nvml.SUCCESS }
		d.GetClockInfoFunc = func(nvml.ClockType) (uint32, nvml.Return) { return 1500, nvml.SUCCESS }
		d.GetMaxClockInfoFunc = func(nvml.ClockType) (uint32, nvml.Return) { return 1980, nvml.SUCCESS }
		d.GetTemperatureFunc = func(nvml.TemperatureSensors) (uint32, nvml.Return) { return 50, nvml.SUCCESS }
		d.GetEnforcedPowerLimitFunc = func() (uint32, nvml.Return) { return 700_000, nvml.SUCCESS }
		d.GetCurrentClocksEventReasonsFunc = func() (uint64, nvml.Return) { return 0, nvml.SUCCESS }
		d.GetTotalEnergyConsumptionFunc = func() (uint64, nvml.Return) { return mj.Add(2000), nvml.SUCCESS }
	}
	return s
}

func TestGPUTimelineAndEnergy(t *testing.T) {
	in := fakeInputs(2)
	f := newFake(in, 1, 1, 5*time.Millisecond, 0)
	rep := &Report{Workload: "fake"}
	require.NoError(t, Run(t.Context(), Config{Scenario: SingleStream, Count: 10, Repeats: 2, NVML: fakeGPUs(), GPUInterval: 2 * time.Millisecond}, f, in, rep))
	g := rep.GPU
	require.True(t, g.Available, g.Reason)
	assert.Len(t, g.Devices, 8)
	require.NotEmpty(t, g.Timeline)
	for i, s := range g.Timeline {
		assert.Len(t, s.GPUs, 8)
		if i > 0 {
			assert.GreaterOrEqual(t, s.T, g.Timeline[i-1].T)
		}
	}
	require.Len(t, g.Summary, 8)
	assert.Equal(t, 300.0, g.Summary[0].Metrics["power"].Mean)
	for _, run := range rep.Runs {
		require.NotNil(t, run.EnergyJ)
		require.NotNil(t, run.JPerImage)
		// Each GPU's counter advanced 2 J per read and was read at least once between the
		// run's two readings: at least 8 × 2 J.
		assert.GreaterOrEqual(t, *run.EnergyJ, 16.0)
		assert.InDelta(t, *run.EnergyJ/float64(run.Samples), *run.JPerImage, 1e-12)
	}
	var names []string
	for _, m := range rep.Metrics {
		names = append(names, m.Name)
	}
	assert.Contains(t, names, "energy_per_image")
	assert.Contains(t, rep.Markdown(), "NVML sampled every 2 ms")

	dir := t.TempDir()
	files, err := WriteOutputs(rep, dir)
	require.NoError(t, err)
	assert.Contains(t, files, PlotGPUTimeline)
	checkPNG(t, dir+"/"+PlotGPUTimeline)
}

func TestNoGPUSaysWhy(t *testing.T) {
	lib := &mock.Interface{InitFunc: func() nvml.Return { return nvml.ERROR_LIBRARY_NOT_FOUND }}
	in := fakeInputs(1)
	rep := &Report{}
	require.NoError(t, Run(t.Context(), Config{Scenario: SingleStream, Count: 2, NVML: lib}, newFake(in, 1, 1, 0, 0), in, rep))
	assert.False(t, rep.GPU.Available)
	assert.Contains(t, rep.GPU.Reason, "libnvidia-ml.so.1 not found")
	assert.Nil(t, rep.Runs[0].EnergyJ)
	assert.Contains(t, rep.Markdown(), "GPU: none (monitor: no gpu: nvml library libnvidia-ml.so.1 not found")
	files, err := WriteOutputs(rep, t.TempDir())
	require.NoError(t, err)
	assert.NotContains(t, files, PlotGPUTimeline)
}

func TestReadMachine(t *testing.T) {
	m := ReadMachine()
	assert.Equal(t, runtime.NumCPU(), m.Cores)
	assert.NotEmpty(t, m.CPUModel)
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("skipping the RSS check: no /proc (not Linux)")
	}
	m.UpdateRSS()
	assert.Greater(t, m.RSSMB, 1.0)
	assert.GreaterOrEqual(t, m.RSSPeakMB, m.RSSMB)
	assert.Greater(t, m.MemTotalMB, 1.0)
}
