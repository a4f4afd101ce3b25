package main

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDoctorORTGPU: doctor reports the ONNX Runtime GPU build, the CUDA 13 libraries and
// the CUDA execution provider; on a machine without them each line says why.
func TestDoctorORTGPU(t *testing.T) {
	requireORT(t)
	jout, _, code := run(t, "doctor", "--json")
	require.Equal(t, 0, code)
	var checks []check
	require.NoError(t, json.Unmarshal([]byte(jout), &checks))
	got := map[string]check{}
	for _, c := range checks {
		got[c.Name] = c
	}
	for _, name := range []string{"ort-gpu library", "ort-gpu cuda", "backend ort/cuda"} {
		c, ok := got[name]
		require.True(t, ok, "doctor reports %q: %s", name, jout)
		require.NotEmpty(t, c.Detail, name)
		t.Logf("%s: ok=%v %s", name, c.OK, c.Detail)
		if !c.OK && name != "ort-gpu library" {
			assert.Contains(t, c.Detail, "engine: unavailable: ort: cuda:", "%s says why", name)
		}
	}
	if !got["ort-gpu library"].OK {
		assert.Contains(t, got["ort-gpu library"].Detail, "make setup-gpu")
		assert.Contains(t, got["backend ort/cuda"].Detail, "make setup-gpu")
	}
}
