package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/pipeline/imageio"
)

func fakeBaselineCmd(t *testing.T) string {
	p, err := filepath.Abs("testdata/fake_baseline.sh")
	require.NoError(t, err)
	return "sh " + p
}

func TestRunBaselineProtocol(t *testing.T) {
	in, err := Synthetic(3, 32, 1)
	require.NoError(t, err)
	dir := t.TempDir()
	parts := func(id string) []PartSpec { return []PartSpec{{Text: "red " + id, Noun: id, Ancestor: -1}} }
	res, err := RunBaseline(context.Background(), BaselineSpec{Command: "FAKE_MS=25 " + fakeBaselineCmd(t), Workload: "assess",
		Models: "m", Count: 5, Warmup: 2, Parts: parts, Dir: dir}, in)
	require.NoError(t, err)
	assert.Equal(t, 5, res.Samples, "warm-up lines are not timed requests")
	assert.Equal(t, 25.0, res.Latency.P50)
	assert.InDelta(t, 40.0, res.Throughput, 1e-9)
	assert.Equal(t, 30.0, res.Stages["torch"].Mean)
	assert.Equal(t, "fake competitor", res.Info["description"])
	assert.Equal(t, 3.0, res.Info["inputs"])

	// The inputs file: one line per input, a PNG with the same pixels, grefine's parts.
	b, err := os.ReadFile(filepath.Join(dir, "inputs.jsonl"))
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	require.Len(t, lines, 3)
	var l baselineInput
	require.NoError(t, json.Unmarshal([]byte(lines[1]), &l))
	assert.Equal(t, in[1].ID, l.ID)
	assert.Equal(t, in[1].Prompt, l.Prompt)
	assert.Equal(t, parts(in[1].ID), l.Parts)
	img, err := imageio.ReadFile(l.Image, imageio.DefaultLimits)
	require.NoError(t, err)
	assert.Equal(t, in[1].Image.Pix, img.Pix)
}

func TestRunBaselineFailures(t *testing.T) {
	in, _ := Synthetic(1, 16, 1)
	spec := BaselineSpec{Workload: "assess", Count: 2, Dir: t.TempDir()}
	for cmd, want := range map[string]string{
		"":                                     "empty command",
		"echo oops >&2; exit 7":                "oops",
		"echo not json; echo '{\"id\": 1'":     "stdout line 2",
		"echo '{\"warmup\": true, \"ms\": 1}'": "no timed request",
		"echo '{\"id\": \"a\"}'":               "needs \"ms\"",
	} {
		spec.Command = cmd
		_, err := RunBaseline(context.Background(), spec, in)
		require.Error(t, err, cmd)
		assert.Contains(t, err.Error(), want, cmd)
	}
}

func TestRunWithBaselineRatio(t *testing.T) {
	in := fakeInputs(3)
	for i := range in {
		in[i].Image = imageio.NewRGB8(8, 8)
	}
	f := newFake(in, 1, 1, 2*time.Millisecond, 0)
	var stderr bytes.Buffer
	rep := runFake(t, Config{Scenario: SingleStream, Count: 6, Baseline: &BaselineSpec{Command: "FAKE_MS=50 " + fakeBaselineCmd(t), Workload: "assess", Stderr: &stderr}}, f, in)
	bl := rep.Baseline
	require.NotNil(t, bl)
	assert.Equal(t, 6, bl.Samples, "defaults to grefine's sample count")
	assert.InDelta(t, 50/rep.Runs[0].Latency.P50, bl.LatencyRatio, 1e-12)
	assert.InDelta(t, rep.Runs[0].Throughput/20, bl.ThroughputRatio, 1e-12)
	assert.Equal(t, "single-stream #1", bl.Against)
	assert.Contains(t, rep.Markdown(), "## Baseline")
}
