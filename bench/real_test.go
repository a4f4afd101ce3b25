package bench

import (
	"context"
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/modelset"
	"github.com/grefine/grefine/pipeline"
)

func checkPNG(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err, path)
	assert.Greater(t, img.Bounds().Dx(), 100, path)
}

// TestRealSingleStreamAssessTiny is the CI run: 5 s of single-stream assess on the tiny
// model set through the real pipeline, then the outputs: present and well formed.
func TestRealSingleStreamAssessTiny(t *testing.T) {
	p := openPipeline(t, tinyDir, true)
	in, err := Synthetic(4, 256, 1)
	require.NoError(t, err)
	info := p.Info()
	rep := &Report{Workload: "assess", Version: pipeline.Version, Command: "go test ./bench -run RealSingleStream", Pipeline: &info,
		Inputs: InputsInfo{Source: "synthetic", Count: len(in), Width: 256, Height: 256}}
	target := &AssessTarget{P: p}
	require.NoError(t, Run(context.Background(), Config{Workload: "assess", Scenario: SingleStream, Duration: 5 * time.Second, Warmup: 1}, target, in, rep))
	run := rep.Runs[0]
	require.Greater(t, run.Samples, 0)
	assert.Equal(t, 0, run.Errors)
	for _, st := range []string{"assess", "assess/clip_image", "assess/clip_text", "assess/fuse", "assess/pq"} {
		assert.Contains(t, run.Stages, st)
	}
	for _, rec := range run.Records {
		assert.InDelta(t, rec.LatencyMs, rec.QueueMs+rec.ComputeMs, 0.002)
		assert.GreaterOrEqual(t, rec.ComputeMs, rec.Stages["assess"]-0.01, "compute covers the assess the report timed")
	}
	assert.NotEmpty(t, target.Parts(in[0].ID), "the parse is kept for the baseline")

	dir := t.TempDir()
	files, err := WriteOutputs(rep, dir)
	require.NoError(t, err)
	assert.Subset(t, files, []string{"bench.json", "bench.md", PlotLatencyCDF, PlotThroughput})
	b, err := os.ReadFile(filepath.Join(dir, "bench.json"))
	require.NoError(t, err)
	back, err := ReadReport(filepath.Join(dir, "bench.json"))
	require.NoError(t, err)
	assert.Equal(t, rep.Metrics, back.Metrics)
	var generic map[string]any
	require.NoError(t, json.Unmarshal(b, &generic))
	for _, k := range []string{"schema", "machine", "gpu", "runs", "metrics", "pipeline", "settings"} {
		assert.Contains(t, generic, k)
	}
	md, err := os.ReadFile(filepath.Join(dir, "bench.md"))
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(md), "# grefine bench: assess, single-stream\n"))
	assert.Contains(t, string(md), "| single-stream #1 | ")
	checkPNG(t, filepath.Join(dir, PlotLatencyCDF))
	checkPNG(t, filepath.Join(dir, PlotThroughput))
	// Offline and a short sweep on the same pipeline work too.
	rep2 := &Report{Workload: "assess"}
	require.NoError(t, Run(context.Background(), Config{Scenario: Sweep, Concurrency: []int{1, 2}, Count: 3, NoGPU: true}, target, in, rep2))
	assert.Equal(t, 3, rep2.Runs[1].Samples)
}

// TestEngineTargetTiny runs one engine of the tiny set alone on synthetic tensors.
func TestEngineTargetTiny(t *testing.T) {
	set, err := modelset.Load(tinyDir, modelset.Options{})
	require.NoError(t, err)
	for _, name := range []string{"clip_text", "sdxl_vae_decoder"} {
		e, err := set.OpenEngine(ortBackend(t), name, engineOpen(name))
		require.NoError(t, err)
		tg, err := NewEngineTarget(e, nil, 64, 1, 1, nil, 1)
		require.NoError(t, err)
		o, err := tg.Do(context.Background(), nil)
		require.NoError(t, err, name)
		assert.Contains(t, o.Stages, name)
		assert.NotEmpty(t, tg.Shapes())
		e.Close()
	}
	e, err := set.OpenEngine(ortBackend(t), "clip_text", engineOpen("clip_text"))
	require.NoError(t, err)
	defer e.Close()
	tg, err := NewEngineTarget(e, nil, 64, 1, 1, map[string]engineShape{"input_ids": {85, 77}}, 1)
	require.NoError(t, err)
	assert.Equal(t, []string{"input_ids=85x77"}, tg.Shapes())
	_, err = NewEngineTarget(e, nil, 64, 1, 1, map[string]engineShape{"nope": {1}}, 1)
	assert.ErrorContains(t, err, "no input")
	_, err = NewEngineTarget(e, nil, 64, 1, 1, map[string]engineShape{"input_ids": {1, 2, 3}}, 1)
	assert.ErrorContains(t, err, "does not fit")
}
