package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/bench"
	"github.com/grefine/grefine/engine/trt/emutest"
	"github.com/grefine/grefine/internal/testkit/testenv"
	"github.com/grefine/grefine/pipeline"
)

// twoGPUEnv is the child's environment for two emulated GPUs: cuda-emu with two devices,
// the copy the TensorRT emulator links ($GRF_CUDA_LIB: --device cuda opens it).
func twoGPUEnv() []string {
	return append(os.Environ(), "GREFINE_CHILD=1", "GRF_CUDA_EMU_DEVICES=2", "GRF_CUDA_LIB="+emutest.CUDALib())
}

// runTwoGPUs runs the CLI in a child process on two emulated GPUs.
func runTwoGPUs(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildMain$")
	cmd.Env = append(twoGPUEnv(), "GREFINE_CHILD_ARGS="+strings.Join(args, "\x1f"))
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), errb.String(), ee.ExitCode()
	}
	require.NoError(t, err)
	return out.String(), errb.String(), 0
}

// TestServeAndBenchOnTwoGPUs (issue 19 item 5): `grefine --backend trt serve --gpus 0,1`
// and `bench --gpus 0,1` through the CLI's main (a child process) on two emulated GPUs:
// plans built by the TensorRT emulator, each GPU with its own engines and slot. /v1/info
// lists both GPUs; requests run on both (each response names its GPU; /metrics counts
// per GPU), and a refine on GPU 1 returns the bytes of the same refine on GPU 0. bench
// reports both GPUs and what each ran. Bad --gpus values are refused before any model work.
func TestServeAndBenchOnTwoGPUs(t *testing.T) {
	requireORT(t)
	dir := t.TempDir()
	models, err := filepath.Abs(tiny)
	require.NoError(t, err)
	repo := filepath.Join(dir, "plans")
	g := []string{"--models", models, "--log-level", "error", "--hash-cache", "", "--trt-lib", emutest.Lib()}
	_, stderr, code := runTwoGPUs(t, append(g, "plans", "build", "--out", repo)...)
	require.Equal(t, 0, code, stderr)
	trt := append(append([]string{}, g...), "--backend", "trt", "--plans", repo)

	// serve --gpus 0,1 (the device defaults to cuda: here the emulator).
	addr := freeAddr(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildMain$")
	cmd.Env = append(twoGPUEnv(), "GREFINE_CHILD_ARGS="+strings.Join(append(trt, "serve", "--addr", addr, "--gpus", "0,1", "--slots", "1"), "\x1f"))
	logs := &testenv.Buffer{}
	cmd.Stderr, cmd.Stdout = logs, io.Discard
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	url := "http://" + addr
	waitReady(t, url, logs)
	resp, err := http.Get(url + "/v1/info")
	require.NoError(t, err)
	var info pipeline.Info
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&info))
	resp.Body.Close()
	require.Len(t, info.GPUs, 2, "%+v", info)
	assert.Equal(t, "trt", info.Backend)
	for i, gpu := range info.GPUs {
		assert.Equal(t, i, gpu.Index)
		assert.Equal(t, i, gpu.Device.Ordinal)
		assert.True(t, gpu.Device.Emulated)
	}
	img := smallPNG(t)
	refine := func() (int, []byte) {
		body, ct := multipartBody(t, img, map[string]string{"prompt": "a red cat", "seed": "3", "steps1": "2", "steps2": "2"})
		code, b, err := post(url+"/v1/refine", body, ct)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, code, "%s", b)
		var r struct {
			Image     string `json:"image"`
			Transfers struct {
				GPU *int `json:"gpu"`
			} `json:"transfers"`
		}
		require.NoError(t, json.Unmarshal(b, &r))
		require.NotNil(t, r.Transfers.GPU)
		return *r.Transfers.GPU, []byte(r.Image)
	}
	g0, a := refine()
	g1, b := refine()
	assert.Equal(t, []int{0, 1}, []int{g0, g1}, "serial requests alternate between the idle GPUs")
	assert.Equal(t, a, b, "the same refine gives the same bytes on GPU 0 and GPU 1")
	// Two at once: one on each GPU.
	var wg sync.WaitGroup
	ran := make([]int, 2)
	for i := range ran {
		wg.Add(1)
		go func() { defer wg.Done(); ran[i], _ = refine() }()
	}
	wg.Wait()
	assert.ElementsMatch(t, []int{0, 1}, ran, "two requests at once run on both GPUs")
	resp, err = http.Get(url + "/metrics")
	require.NoError(t, err)
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for gpu := 0; gpu < 2; gpu++ {
		assert.Contains(t, string(metrics), fmt.Sprintf(`grefine_gpu_requests_total{gpu="%d",gpu_uuid=""} 2`, gpu))
		assert.Contains(t, string(metrics), fmt.Sprintf(`grefine_gpu_slots{gpu="%d",gpu_uuid=""} 1`, gpu))
	}

	// bench --gpus 0,1: single-stream requests go round both GPUs.
	out := filepath.Join(dir, "bench")
	_, stderr, code = runTwoGPUs(t, append(trt, "bench", "--gpus", "0,1", "--count", "4", "--warmup", "0", "--synthetic", "2",
		"--size", "96", "--no-gpu", "--quiet", "--out", out)...)
	require.Equal(t, 0, code, stderr)
	rep, err := bench.ReadReport(filepath.Join(out, "bench.json"))
	require.NoError(t, err)
	require.NotNil(t, rep.Pipeline)
	assert.Len(t, rep.Pipeline.GPUs, 2)
	assert.Equal(t, 2, rep.Settings.Slots, "the slots of both GPUs")
	assert.Equal(t, []pipeline.GPULoad{{Index: 0, Slots: 1, Requests: 2}, {Index: 1, Slots: 1, Requests: 2}}, rep.GPULoad)
	md, err := os.ReadFile(filepath.Join(out, "bench.md"))
	require.NoError(t, err)
	assert.Contains(t, string(md), "GPUs (--gpus): GPU 0: 1 slots, 2 requests; GPU 1: 1 slots, 2 requests")

	// doctor --gpus: one line per GPU as serve opens it, a missing one with the reason.
	stdout, stderr, code := runTwoGPUs(t, append(g, "--device", "cuda-emu", "doctor", "--gpus", "0,1,2")...)
	require.Equal(t, 0, code, stderr)
	assert.Regexp(t, `(?m)^device cuda +ok .*; 2 CUDA device\(s\): --gpus takes indices 0 to 1$`, stdout)
	assert.Regexp(t, `(?m)^gpu 0 +ok +cuda-emu device 0: cuda-emu 0 .*, emulated \(no GPU\)$`, stdout)
	assert.Regexp(t, `(?m)^gpu 1 +ok +cuda-emu device 1: cuda-emu 1 .*, emulated \(no GPU\)$`, stdout)
	assert.Regexp(t, `(?m)^gpu 2 +missing +cuda-emu: .*device 2 requested, 2 present$`, stdout)

	// Bad lists: usage errors, or refused before the model set is read.
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"serve", "--gpus", "0,x"}, 2, `--gpus "0,x": want CUDA device indices`},
		{[]string{"serve", "--gpus", "0", "--device", "cpu"}, 2, "--gpus needs a GPU device"},
		{[]string{"bench", "--workload", "engine:clip_text", "--gpus", "0", "--out", filepath.Join(dir, "e")}, 2, "--gpus runs the assess and refine workloads"},
		{[]string{"serve", "--gpus", "0,2"}, 69, "GPU 2: engine: unavailable: cuda: device 2 requested, 2 present"},
		{[]string{"serve", "--gpus", "1,1"}, 2, "GPU 1 is named twice"},
	} {
		_, stderr, code := runTwoGPUs(t, append(trt, tc.args...)...)
		assert.Equal(t, tc.code, code, "%v: %s", tc.args, stderr)
		assert.Contains(t, stderr, tc.msg, tc.args)
	}
}
