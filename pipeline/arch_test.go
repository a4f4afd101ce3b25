package pipeline_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/internal/testkit/testenv"
)

// TestPipelineLinksNoDeviceNorTensorRT: `go list -deps ./pipeline/...` names neither
// engine/cpu nor engine/cuda (the stages reach devices through engine.Device, made by the
// registry) nor TensorRT (engine/trt, plans: front ends pass the plan opener).
func TestPipelineLinksNoDeviceNorTensorRT(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("skipping: no go command on PATH to list the imports: %v", err)
	}
	cmd := exec.Command(gobin, "list", "-deps", "./pipeline/...")
	cmd.Dir = testenv.Root(t)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "%s", stderr.String())
	deps := strings.Fields(string(out))
	require.Contains(t, deps, "github.com/grefine/grefine/engine", "the listing is real")
	for _, forbidden := range []string{"engine/cpu", "engine/cuda", "engine/trt", "engine/ort", "plans"} {
		assert.NotContains(t, deps, "github.com/grefine/grefine/"+forbidden, "pipeline must not link %s", forbidden)
	}
}

// TestNoStageAssertsHostTensors: no pipeline file type-asserts a tensor to a host tensor,
// except the two places below that read their own host values, never an engine's output.
func TestNoStageAssertsHostTensors(t *testing.T) {
	allowed := map[string]string{
		"batch.go":         "inputs[name].(*engine.HostTensor)", // the batcher merges host token ids (it batches host-memory engines only)
		"refine/stages.go": "x.(*engine.HostTensor)",            // the cpu device's latents, shown to the step observer
	}
	root := filepath.Join(testenv.Root(t), "pipeline")
	found := 0
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		for i, line := range strings.Split(string(b), "\n") {
			if !strings.Contains(line, ".(*engine.HostTensor)") {
				continue
			}
			found++
			if want, ok := allowed[filepath.ToSlash(rel)]; !ok || !strings.Contains(line, want) {
				t.Errorf("pipeline/%s:%d asserts a host tensor: %s", rel, i+1, strings.TrimSpace(line))
			}
		}
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, len(allowed), found, "the scan sees the allowed sites (it would see others)")
}
