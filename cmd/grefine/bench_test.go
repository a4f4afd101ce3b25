package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/bench"
)

// TestBenchCLI: a short single-stream assess with the fake competitor, then a second run
// compared with the first; every output is present and the report reads back.
func TestBenchCLI(t *testing.T) {
	requireORT(t)
	dir := t.TempDir()
	fake, err := filepath.Abs(filepath.Join("..", "..", "bench", "testdata", "fake_baseline.sh"))
	require.NoError(t, err)
	out, stderr, code := run(t, "bench", "--count", "4", "--warmup", "1", "--synthetic", "2", "--out", filepath.Join(dir, "a"),
		"--baseline", "FAKE_MS=500 sh "+fake, "--quiet")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "baseline: median 500.0 ms")
	for _, f := range []string{"bench.json", "bench.md", bench.PlotLatencyCDF, bench.PlotThroughput} {
		assert.FileExists(t, filepath.Join(dir, "a", f))
	}
	a, err := bench.ReadReport(filepath.Join(dir, "a", "bench.json"))
	require.NoError(t, err)
	assert.Equal(t, "assess", a.Workload)
	assert.Equal(t, 4, a.Runs[0].Samples)
	require.NotNil(t, a.Baseline)
	assert.Equal(t, 4, a.Baseline.Samples)
	assert.Greater(t, a.Baseline.LatencyRatio, 0.0)
	assert.NotNil(t, a.Pipeline)

	out, stderr, code = run(t, "bench", "--scenario", "sweep", "--concurrency", "1,2", "--slots", "2", "--count", "3", "--warmup", "0",
		"--synthetic", "2", "--out", filepath.Join(dir, "b"), "--compare", filepath.Join(dir, "a", "bench.json"), "--quiet")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "## Compared with")
	b, err := bench.ReadReport(filepath.Join(dir, "b", "bench.json"))
	require.NoError(t, err)
	require.NotNil(t, b.Compare)
	assert.Len(t, b.Runs, 2)
	md, err := os.ReadFile(filepath.Join(dir, "b", "bench.md"))
	require.NoError(t, err)
	assert.Contains(t, string(md), "| sweep c=2 #1 |")
}

func TestBenchEngineWorkload(t *testing.T) {
	requireORT(t)
	dir := t.TempDir()
	_, stderr, code := run(t, "bench", "--workload", "engine:clip_text", "--shape", "input_ids=8x77", "--count", "3", "--warmup", "1",
		"--scenario", "offline", "--out", dir, "--quiet")
	require.Equal(t, 0, code, stderr)
	r, err := bench.ReadReport(filepath.Join(dir, "bench.json"))
	require.NoError(t, err)
	require.NotNil(t, r.Engine)
	assert.Equal(t, []string{"input_ids=8x77"}, r.Engine.Shapes)
	assert.Contains(t, r.Runs[0].Stages, "clip_text")
}

func TestBenchUsageErrors(t *testing.T) {
	requireORT(t)
	dir := t.TempDir()
	for _, args := range [][]string{
		{"--scenario", "nope"},
		{"--scenario", "server"},
		{"--find-peak"},
		{"--scenario", "sweep", "--concurrency", "1,x"},
		{"--workload", "nope"},
		{"--workload", "engine:nope"},
		{"--workload", "engine:clip_text", "--shape", "input_ids"},
		{"--workload", "engine:clip_text", "--baseline", "true"},
		{"--repeats", "0"},
		{"extra-arg"},
	} {
		out := filepath.Join(dir, "x")
		_, stderr, code := run(t, append([]string{"bench", "--count", "1", "--out", out, "--quiet"}, args...)...)
		assert.Equal(t, 2, code, "%v: %s", args, stderr)
		assert.NoDirExists(t, out, "no output on a usage error")
	}
	_, stderr, code := run(t, "bench", "--count", "1", "--out", filepath.Join(dir, "y"), "--inputs", filepath.Join(dir, "missing.jsonl"))
	assert.Equal(t, 2, code, "a missing input is bad input (the pipeline's status table)")
	assert.True(t, strings.Contains(stderr, "missing.jsonl"), stderr)
	assert.NoDirExists(t, filepath.Join(dir, "y"), "no output directory left behind")
}
