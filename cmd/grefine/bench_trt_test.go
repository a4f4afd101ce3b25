package main

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/bench"
	"github.com/grefine/grefine/engine/trt/emutest"
)

// TestBenchEnginePlans: `bench --workload engine:NAME --backend trt --plans DIR` times the
// engine's plan from the repository (verified like the pipeline's), not the ONNX file
// (which a TensorRT runtime cannot open as a plan), with its inputs on the device (the
// emulated GPU: a host tensor would be refused). The GPU script times full-size engines
// this way. Each command runs in a child process (runEmuChild: one libgrefine_cuda per
// process).
func TestBenchEnginePlans(t *testing.T) {
	requireORT(t)
	dir := t.TempDir()
	repo := filepath.Join(dir, "plans")
	g := []string{"--models", tiny, "--log-level", "error", "--hash-cache", "", "--trt-lib", emutest.Lib()}
	_, stderr, code := runEmuChild(t, append(g, "plans", "build", "--only", "clip_text", "--out", repo)...)
	require.Equal(t, 0, code, stderr)
	out := filepath.Join(dir, "bench")
	_, stderr, code = runEmuChild(t, append(g, "--backend", "trt", "--plans", repo, "bench", "--workload", "engine:clip_text",
		"--shape", "input_ids=4x77", "--count", "2", "--warmup", "1", "--out", out, "--quiet")...)
	require.Equal(t, 0, code, stderr)
	r, err := bench.ReadReport(filepath.Join(out, "bench.json"))
	require.NoError(t, err)
	require.NotNil(t, r.Engine)
	assert.Contains(t, r.Engine.Backend, "trt")
	assert.Contains(t, r.Runs[0].Stages, "clip_text")

	// An engine the repository has no plan for is refused with the reason.
	_, stderr, code = runEmuChild(t, append(g, "--backend", "trt", "--plans", repo, "bench", "--workload", "engine:clip_surgery",
		"--count", "1", "--out", filepath.Join(dir, "b2"), "--quiet")...)
	assert.NotEqual(t, 0, code)
	assert.Contains(t, stderr, "clip_surgery")

	// A device engine serves one call at a time: --slots 2 is refused, not raced.
	_, stderr, code = runEmuChild(t, append(g, "--backend", "trt", "--plans", repo, "bench", "--workload", "engine:clip_text",
		"--shape", "input_ids=4x77", "--count", "1", "--slots", "2", "--out", filepath.Join(dir, "b3"), "--quiet")...)
	assert.Equal(t, 2, code, stderr)
	assert.Contains(t, stderr, "one call at a time")
}
