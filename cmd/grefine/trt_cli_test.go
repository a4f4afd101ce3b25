package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/engine/trt/emutest"
)

// TestMain builds the TensorRT emulator for TestTRTBackendCLI (not in the child processes
// of TestInterrupt).
func TestMain(m *testing.M) {
	if os.Getenv("GREFINE_CHILD") == "1" {
		os.Exit(m.Run())
	}
	os.Exit(emutest.Main(m))
}

// runEmuChild runs the CLI in a child process (TestChildMain) with $GRF_CUDA_LIB naming
// the cuda-emu the TensorRT emulator links: one process loads one libgrefine_cuda, and
// this test binary may already hold another (doctor loads $GRF_CUDA_LIB).
func runEmuChild(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildMain$")
	cmd.Env = append(os.Environ(), "GREFINE_CHILD=1", "GRF_CUDA_LIB="+emutest.CUDALib(),
		"GREFINE_CHILD_ARGS="+strings.Join(args, "\x1f"))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.String(), errb.String(), ee.ExitCode()
	}
	require.NoError(t, err)
	return out.String(), errb.String(), 0
}

// TestTRTBackendCLI: `plans build` with the emulator, then `--backend trt --plans DIR
// assess` (the device defaults to cuda: here cuda-emu, the copy the TensorRT emulator
// links, through $GRF_CUDA_LIB) equals `--backend ort` within 1e-5, and refine runs; a
// wrong pairing of flags is a usage error, and so is the cpu device with trt. Each command
// runs in a child process.
func TestTRTBackendCLI(t *testing.T) {
	requireORT(t)
	runFull := runEmuChild
	dir := t.TempDir()
	repo := filepath.Join(dir, "plans")
	img := filepath.Join("..", "..", "testdata", "images", "sample.png")
	g := []string{"--models", tiny, "--log-level", "error", "--hash-cache", "", "--trt-lib", emutest.Lib()}
	_, stderr, code := runFull(t, append(g, "plans", "build", "--out", repo)...)
	require.Equal(t, 0, code, stderr)
	report := func(backend, out string) map[string]any {
		args := append(append([]string{}, g...), "--backend", backend)
		if backend == "trt" {
			args = append(args, "--plans", repo)
		}
		_, stderr, code := runFull(t, append(args, "assess", "--image", img, "--prompt", "a red cat on a sofa", "--out", out, "--no-maps")...)
		require.Equal(t, 0, code, stderr)
		var rep map[string]any
		b, err := os.ReadFile(filepath.Join(out, "report.json"))
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(b, &rep))
		return rep
	}
	o, e := report("ort", filepath.Join(dir, "ort")), report("trt", filepath.Join(dir, "trt"))
	for _, k := range []string{"p", "a", "q", "mask_fraction"} {
		assert.InDelta(t, o[k].(float64), e[k].(float64), 1e-5, k)
	}
	assert.Equal(t, "trt", e["setup"].(map[string]any)["backend"])
	_, stderr, code = runFull(t, append(g, "--backend", "trt", "--plans", repo, "refine", "--image", img, "--prompt", "a cat",
		"--out", filepath.Join(dir, "r"), "--steps1", "2", "--steps2", "2", "--quiet")...)
	assert.Equal(t, 0, code, stderr)
	assert.FileExists(t, filepath.Join(dir, "r", "refined.png"))
	_, stderr, code = runFull(t, append(g, "--backend", "trt", "assess", "--image", img, "--prompt", "x", "--out", filepath.Join(dir, "x"))...)
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "--backend trt needs --plans DIR")
	_, stderr, code = runFull(t, append(g, "--backend", "trt", "--plans", repo, "--device", "cpu", "assess", "--image", img, "--prompt", "x",
		"--out", filepath.Join(dir, "y"))...)
	assert.Equal(t, 69, code, stderr)
	assert.Contains(t, stderr, "backend trt reads cuda tensors, device cpu holds cpu tensors (use --device cuda)")
}
