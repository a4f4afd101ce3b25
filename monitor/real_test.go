package monitor_test

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/monitor"
)

// TestRealNVML talks to this machine's libnvidia-ml.so.1. Without a usable GPU it
// checks that Open and Probe report ErrNoGPU with a reason (and that the process
// survives); with one it prints the devices and a sample and checks they are sane.
// Set GRF_EXPECT_GPU=1 to make "no GPU" a failure (GPU runners).
func TestRealNVML(t *testing.T) {
	m, err := monitor.Open(nvml.New())
	if err != nil {
		require.ErrorIs(t, err, monitor.ErrNoGPU, "the only way Open may fail here")
		if os.Getenv("GRF_EXPECT_GPU") == "1" {
			t.Fatalf("GRF_EXPECT_GPU=1 but: %v", err)
		}
		t.Logf("no GPU on this machine, as reported: %v", err)
		p := monitor.Probe(nil)
		assert.False(t, p.Available)
		assert.NotEmpty(t, p.Reason)
		require.Len(t, p.Lines(), 1)
		assert.True(t, strings.HasPrefix(p.Lines()[0], "no gpu: "))
		t.Logf("doctor line: %s", p.Lines()[0])
		return
	}
	defer func() { assert.NoError(t, m.Close()) }()

	devs := m.Devices()
	require.NotEmpty(t, devs)
	for _, d := range devs {
		js, _ := json.Marshal(d)
		t.Logf("device: %s", js)
		assert.NotEmpty(t, d.Name)
		assert.True(t, strings.HasPrefix(d.UUID, "GPU-") || strings.HasPrefix(d.UUID, "MIG-"), d.UUID)
		assert.Greater(t, d.MemoryTotal, uint64(0))
		assert.Regexp(t, `^\d+\.\d+$`, d.ComputeCapability)
		assert.NotEmpty(t, d.DriverVersion)
		assert.Regexp(t, `^\d+\.\d+$`, d.CUDADriverVersion)
		if d.PowerLimitW != nil {
			assert.Greater(t, *d.PowerLimitW, 0.0)
		}
	}
	s, err := m.Sample()
	require.NoError(t, err)
	require.Len(t, s.GPUs, len(devs))
	for i, g := range s.GPUs {
		js, _ := json.Marshal(g)
		t.Logf("sample: %s", js)
		total := devs[i].MemoryTotal
		if g.MemUsed != nil && g.MemFree != nil {
			assert.LessOrEqual(t, *g.MemUsed, total)
			assert.LessOrEqual(t, *g.MemFree, total)
		}
		if g.GPUUtil != nil {
			assert.LessOrEqual(t, *g.GPUUtil, uint32(100))
		}
		if g.TempC != nil {
			assert.Less(t, *g.TempC, uint32(130))
		}
		if g.PowerW != nil {
			assert.Greater(t, *g.PowerW, 0.0)
		}
		if g.SMClockMHz != nil && devs[i].MaxSMClockMHz != nil {
			assert.LessOrEqual(t, *g.SMClockMHz, *devs[i].MaxSMClockMHz)
		}
		for k, v := range g.Errors {
			t.Errorf("metric %s failed on a real GPU: %s", k, v)
		}
	}
	require.NoError(t, m.Close())
	p := monitor.Probe(nil)
	require.True(t, p.Available, p.Reason)
	for _, l := range p.Lines() {
		t.Logf("doctor line: %s", l)
	}
	_, err = m.Sample()
	assert.True(t, errors.Is(err, monitor.ErrClosed))
}

// TestRealNVMLMissingLibrary points the real go-nvml at a library that does not
// exist: Init fails with ERROR_LIBRARY_NOT_FOUND, and the process must survive
// (any further NVML call would die on an unresolved symbol).
func TestRealNVMLMissingLibrary(t *testing.T) {
	lib := nvml.New(nvml.WithLibraryPath(t.TempDir() + "/libnvidia-ml.so.1"))
	m, err := monitor.Open(lib)
	require.ErrorIs(t, err, monitor.ErrNoGPU)
	assert.Nil(t, m)
	assert.Contains(t, err.Error(), "libnvidia-ml.so.1 not found")
	p := monitor.Probe(nvml.New(nvml.WithLibraryPath(t.TempDir() + "/libnvidia-ml.so.1")))
	assert.False(t, p.Available)
	t.Logf("doctor line: %s", p.Lines()[0])
}
