package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/internal/wheel"
)

// TestEmbeddedManifest checks the committed pins: they parse, every wheel is pinned to
// an exact version, and the libraries the CUDA execution provider needs are all there.
func TestEmbeddedManifest(t *testing.T) {
	m, err := wheel.Parse(manifestJSON)
	require.NoError(t, err)
	dests := map[string]bool{}
	for _, w := range m.Wheels {
		for _, f := range w.Files {
			dests[f.Dest] = true
		}
	}
	for _, need := range []string{"libonnxruntime.so.1", "libonnxruntime_providers_shared.so", "libonnxruntime_providers_cuda.so",
		"cuda/libcudart.so.13", "cuda/libcublas.so.13", "cuda/libcublasLt.so.13", "cuda/libcurand.so.10", "cuda/libcudnn.so.9", "cuda/libcufft.so.12"} {
		assert.True(t, dests[need], need)
	}
	assert.Equal(t, "onnxruntime-gpu==1.31.1", m.Wheels[0].Requirement())
}

func TestUsage(t *testing.T) {
	var o, e bytes.Buffer
	assert.Equal(t, 2, run(nil, &o, &e))
	assert.Equal(t, 2, run([]string{"bogus"}, &o, &e))
	assert.Contains(t, e.String(), "unknown command")
	e.Reset()
	assert.Equal(t, 1, run([]string{"-out", t.TempDir(), "verify"}, &o, &e), "an empty directory does not verify")
	assert.Contains(t, e.String(), "libonnxruntime.so.1")
	o.Reset()
	assert.Equal(t, 0, run([]string{"-wheels", t.TempDir(), "-out", t.TempDir(), "need"}, &o, &e))
	assert.Contains(t, o.String(), "onnxruntime-gpu==1.31.1\n")
}
