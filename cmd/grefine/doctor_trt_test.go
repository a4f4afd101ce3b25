package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/engine/trt/trttest"
)

// doctorChild runs `grefine --trt-lib lib doctor --json` in a child process (a process
// loads one shim, and this test binary has loaded the emulator) and returns its checks by
// name.
func doctorChild(t *testing.T, lib string, env ...string) map[string]check {
	t.Helper()
	models, err := filepath.Abs(tiny)
	require.NoError(t, err)
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildMain$")
	cmd.Env = append(append(os.Environ(), "GREFINE_CHILD=1", "GREFINE_CHILD_ARGS="+strings.Join([]string{"--models", models,
		"--hash-cache", "", "--log-level", "error", "--trt-lib", lib, "doctor", "--json"}, "\x1f")), env...)
	out, err := cmd.Output()
	require.NoError(t, err, "%s", out)
	var checks []check
	require.NoError(t, json.Unmarshal(out, &checks), "%s", out)
	got := map[string]check{}
	for _, c := range checks {
		got[c.Name] = c
	}
	for _, name := range []string{"trt shim", "trt library", "trt gpu"} {
		require.Contains(t, got, name)
		t.Logf("%-12s ok=%-5v %s", name, got[name].OK, got[name].Detail)
	}
	return got
}

// TestDoctorTRTFake: doctor's TensorRT lines say exactly what the shim reports: the fake
// is told its library version, devices, compute capability and driver, and doctor must
// repeat them (and flag headers of another major version than the library).
func TestDoctorTRTFake(t *testing.T) {
	lib, err := trttest.Build(t.TempDir())
	require.NoError(t, err)

	got := doctorChild(t, lib, "GRF_FAKE_TRT_VERSION=101501", "GRF_FAKE_TRT_DEVICES=0", "GRF_FAKE_TRT_DRIVER=12020")
	assert.True(t, got["trt shim"].OK)
	assert.Equal(t, lib+": abi 2, built against TensorRT 11.1.0 headers", got["trt shim"].Detail)
	assert.False(t, got["trt library"].OK, "11.x headers with a 10.x library")
	assert.Contains(t, got["trt library"].Detail, "TensorRT 10.15.1 (getInferLibVersion)")
	assert.Contains(t, got["trt library"].Detail, "rebuild it")
	assert.False(t, got["trt gpu"].OK)
	assert.Equal(t, "no CUDA device visible: cudaErrorNoDevice (no CUDA-capable device is detected); the driver supports CUDA 12.2",
		got["trt gpu"].Detail)

	got = doctorChild(t, lib, "GRF_FAKE_TRT_VERSION=110100", "GRF_FAKE_TRT_DEVICES=2", "GRF_FAKE_TRT_CC=9.0")
	assert.True(t, got["trt library"].OK)
	assert.Equal(t, "TensorRT 11.1.0 (getInferLibVersion)", got["trt library"].Detail, "the fake maps no libnvinfer")
	assert.True(t, got["trt gpu"].OK)
	assert.Equal(t, "fake gpu 0, sm_90, 24.0 GiB, 2 device(s); the driver supports CUDA 13.0", got["trt gpu"].Detail)
}

// TestDoctorTRTReal: with a real shim (make setup-trt), the library line names the
// libnvinfer file this process really mapped, its version is the one setup-trt installed,
// and the GPU line agrees with CUDA (a reason without a GPU, the device with one).
func TestDoctorTRTReal(t *testing.T) {
	lib, err := filepath.Abs(filepath.Join("..", "..", "build", "libgrefine_trt.so"))
	require.NoError(t, err)
	if _, err := os.Stat(lib); err != nil {
		t.Skipf("no real TensorRT shim at %s (make setup-trt builds it): %v", lib, err)
	}
	got := doctorChild(t, lib)
	assert.True(t, got["trt shim"].OK)
	assert.Contains(t, got["trt shim"].Detail, "abi 2, built against TensorRT 1")
	lines := got["trt library"]
	require.True(t, lines.OK, lines.Detail)
	_, path, ok := strings.Cut(lines.Detail, " from ")
	require.True(t, ok, "names the file: %s", lines.Detail)
	path, _, _ = strings.Cut(path, " ")
	path = strings.TrimSuffix(path, ";")
	st, err := os.Stat(path)
	require.NoError(t, err, "the named libnvinfer exists")
	assert.Greater(t, st.Size(), int64(100<<20), "a real libnvinfer is hundreds of MB")
	if stamp, err := os.ReadFile(filepath.Join(filepath.Dir(path), "..", "INSTALLED")); err == nil {
		first, _, _ := strings.Cut(string(stamp), "\n")
		_, rest, _ := strings.Cut(first, ", TensorRT ")
		ver, _, _ := strings.Cut(rest, " ")
		assert.Contains(t, lines.Detail, "TensorRT "+ver+" (getInferLibVersion)", "the version setup-trt installed")
	}
	gpu := got["trt gpu"]
	if gpu.OK {
		assert.Contains(t, gpu.Detail, ", sm_")
	} else {
		assert.Regexp(t, `^no CUDA device visible: cudaError\w+ \(`, gpu.Detail)
	}
}
