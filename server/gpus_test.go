package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	_ "github.com/grefine/grefine/engine/cuda" // the cuda-emu device
	"github.com/grefine/grefine/engine/cuda/cudaemu"
	"github.com/grefine/grefine/internal/testkit/testenv"
	"github.com/grefine/grefine/pipeline"
	"github.com/grefine/grefine/server"
)

// TestServeTwoGPUs: a server on a pipeline with two emulated GPUs (cuda-emu, ort
// behind engine.OnDevice) says which GPUs serve in /v1/info, /v2/models/{m} and
// /metrics (grefine_gpu_slots, _slots_busy, _requests_total per GPU), and its requests
// run on both: serial requests alternate between the idle GPUs.
func TestServeTwoGPUs(t *testing.T) {
	testenv.ORT(t)
	t.Setenv("GRF_CUDA_EMU_DEVICES", "2") // read when the emulator is first used, below
	lib, err := cudaemu.Build(t.TempDir())
	require.NoError(t, err)
	p, err := pipeline.Open(context.Background(), pipeline.Config{Models: testenv.Path(t, "testdata", "models", "tiny"),
		Backend: "ort", Device: "cuda-emu", DeviceOptions: map[string]string{"lib": lib}, GPUs: []int{0, 1}, AssessOnly: true})
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	_, ts, _ := newServer(t, p, server.Config{})

	resp, b := do(t, "GET", ts.URL+"/v1/info", nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var info pipeline.Info
	require.NoError(t, json.Unmarshal(b, &info))
	require.Len(t, info.GPUs, 2)
	assert.Equal(t, 2, info.Slots)
	resp, b = do(t, "GET", ts.URL+"/v2/models/assess", nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var meta struct {
		Parameters struct {
			Device string         `json:"device"`
			GPUs   []pipeline.GPU `json:"gpus"`
			Slots  int            `json:"slots"`
		} `json:"parameters"`
	}
	require.NoError(t, json.Unmarshal(b, &meta))
	assert.Equal(t, "cuda-emu", meta.Parameters.Device)
	assert.Equal(t, info.GPUs, meta.Parameters.GPUs)
	assert.Equal(t, 2, meta.Parameters.Slots)

	for i := 0; i < 4; i++ {
		body, ct := form(t, small(t), prompt, nil)
		resp, b := do(t, "POST", ts.URL+"/v1/assess", body, map[string]string{"Content-Type": ct})
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
		var a struct {
			Transfers struct {
				GPU *int `json:"gpu"`
			} `json:"transfers"`
		}
		require.NoError(t, json.Unmarshal(b, &a))
		require.NotNil(t, a.Transfers.GPU)
		assert.Equal(t, i%2, *a.Transfers.GPU, "request %d", i)
	}
	m := scrape(t, ts.URL)
	for g := 0; g < 2; g++ {
		l := fmt.Sprintf(`{gpu="%d",gpu_uuid=""}`, g)
		assert.Equal(t, 1.0, m["grefine_gpu_slots"+l], "GPU %d serves with one slot", g)
		assert.Equal(t, 0.0, m["grefine_gpu_slots_busy"+l])
		assert.Equal(t, 2.0, m["grefine_gpu_requests_total"+l], "GPU %d ran half the requests", g)
	}
}

// TestServeOneDeviceHasNoGPUMetrics: on the cpu device there are no per-GPU slot
// metrics.
func TestServeOneDeviceHasNoGPUMetrics(t *testing.T) {
	_, ts, _ := newServer(t, shared(t), server.Config{})
	for k := range scrape(t, ts.URL) {
		assert.NotContains(t, k, "grefine_gpu_")
	}
}
