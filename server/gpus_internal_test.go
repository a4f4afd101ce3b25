package server

import (
	"fmt"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/monitor"
	"github.com/grefine/grefine/pipeline"
)

// eightGPUs is an NVML view of eight GPUs (a Sampler).
type eightGPUs struct{}

func (eightGPUs) Devices() []monitor.DeviceInfo {
	out := make([]monitor.DeviceInfo, 8)
	for i := range out {
		out[i] = monitor.DeviceInfo{Index: i, UUID: fmt.Sprintf("GPU-%08d-0000", i)}
	}
	return out
}

func (eightGPUs) Sample() (monitor.Sample, error) { return monitor.Sample{}, nil }

// TestServingGPUsMatchNVML: the GPUs that serve (CUDA indices) are matched with eight
// NVML devices, through CUDA_VISIBLE_DEVICES; nv_gpu_* then covers only
// them. Emulated GPUs and an index NVML does not have leave every GPU exported.
func TestServingGPUsMatchNVML(t *testing.T) {
	m := eightGPUs{}
	devs := m.Devices()
	gpus := []pipeline.GPU{{Index: 0}, {Index: 1}}

	t.Setenv(monitor.EnvVisibleDevices, "4,6")
	serving, keep := servingGPUs(gpus, m, zerolog.Nop())
	assert.Equal(t, map[int]string{0: devs[4].UUID, 1: devs[6].UUID}, serving)
	assert.Equal(t, map[int]bool{4: true, 6: true}, keep)

	t.Setenv(monitor.EnvVisibleDevices, "4")
	serving, keep = servingGPUs(gpus, m, zerolog.Nop())
	assert.Equal(t, map[int]string{0: "", 1: ""}, serving, "GPU 1 is not visible: no UUIDs")
	assert.Nil(t, keep, "every GPU exported")

	emu := []pipeline.GPU{{Index: 0, Device: engine.DeviceInfo{Emulated: true}}}
	serving, keep = servingGPUs(emu, m, zerolog.Nop())
	assert.Equal(t, map[int]string{0: ""}, serving, "an emulated GPU is no NVML device")
	assert.Nil(t, keep)

	serving, keep = servingGPUs(nil, m, zerolog.Nop())
	assert.Empty(t, serving)
	assert.Nil(t, keep)
}
