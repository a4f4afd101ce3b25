package monitor_test

import (
	"encoding/json"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/monitor"
)

func TestProbe(t *testing.T) {
	s := fakeDGX()
	p := monitor.Probe(s)
	require.True(t, p.Available, p.Reason)
	assert.Empty(t, p.Reason)
	require.Len(t, p.GPUs, 8)
	require.NotNil(t, p.Sample)
	assert.Len(t, s.ShutdownCalls(), 1, "Probe closes what it opens")

	lines := p.Lines()
	require.Len(t, lines, 8)
	assert.Equal(t, "gpu 0: NVIDIA H100 80GB HBM3, sm 9.0, 80.0 GiB (79.0 GiB free), 700 W limit, "+
		"driver 550.54.15, cuda 12.4, 30 C, util 0%, clocks limited by sw_power_cap+hw_slowdown", lines[0])
	assert.Equal(t, "gpu 7: NVIDIA H100 80GB HBM3, sm 9.0, 80.0 GiB (72.0 GiB free), 700 W limit, "+
		"driver 550.54.15, cuda 12.4, 37 C, util 70%", lines[7])

	raw, err := json.Marshal(p)
	require.NoError(t, err)
	var back map[string]any
	require.NoError(t, json.Unmarshal(raw, &back))
	assert.Equal(t, true, back["available"])
	gpus := back["gpus"].([]any)
	require.Len(t, gpus, 8)
	g0 := gpus[0].(map[string]any)
	assert.Equal(t, "NVIDIA H100 80GB HBM3", g0["name"])
	assert.Equal(t, float64(80<<30), g0["memory_total_bytes"])
	assert.Equal(t, 700.0, g0["power_limit_w"])
}

func TestProbeSparse(t *testing.T) {
	// A board that supports almost nothing still gets a line, without the missing parts.
	s := fakeDGX()
	for i := range s.Devices {
		d := device(s, i)
		d.GetEnforcedPowerLimitFunc = func() (uint32, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
		d.GetTemperatureFunc = func(nvml.TemperatureSensors) (uint32, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
		d.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) { return nvml.Utilization{}, nvml.ERROR_NOT_SUPPORTED }
		d.GetCurrentClocksEventReasonsFunc = func() (uint64, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
	}
	p := monitor.Probe(s)
	require.True(t, p.Available)
	assert.Equal(t, "gpu 2: NVIDIA H100 80GB HBM3, sm 9.0, 80.0 GiB (77.0 GiB free), driver 550.54.15, cuda 12.4", p.Lines()[2])
	raw, err := json.Marshal(p.Sample.GPUs[2])
	require.NoError(t, err)
	assert.Contains(t, string(raw), `"power_w":120`)
	assert.Contains(t, string(raw), `"temperature_c":null`)
	assert.Contains(t, string(raw), `"unsupported":["gpu_util","mem_util","temperature","throttle"]`)
}

func TestProbeNoGPUJSON(t *testing.T) {
	p := monitor.Probe(strictLib(t, nvml.ERROR_LIBRARY_NOT_FOUND))
	raw, err := json.Marshal(p)
	require.NoError(t, err)
	assert.JSONEq(t, `{"available":false,"reason":"nvml library libnvidia-ml.so.1 not found (no NVIDIA driver installed)","gpus":[]}`, string(raw))
}
