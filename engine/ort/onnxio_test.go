package ort

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	ortgo "github.com/yalue/onnxruntime_go"

	"github.com/grefine/grefine/engine"
)

// TestReadIOMatchesORT: the protobuf reader lists exactly what ONNX Runtime lists, for
// every committed tiny engine, the hand-made Add model, and (when present) the full-size
// CLIP export of bench/RESULTS.md.
func TestReadIOMatchesORT(t *testing.T) {
	backend(t)
	paths, err := filepath.Glob(filepath.Join(repoRoot, "testdata", "models", "tiny", "*.onnx"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(paths), 11)
	paths = append(paths, writeModel(t, 6, []int64{-1, 4}))
	full, _ := filepath.Glob(filepath.Join(repoRoot, ".cache", "models", "full", "*.onnx"))
	paths = append(paths, full...)
	for _, p := range paths {
		t.Run(filepath.Base(p), func(t *testing.T) {
			ins, outs, ok, err := readIO(p)
			require.NoError(t, err)
			require.True(t, ok)
			oi, oo, err := ortgo.GetInputOutputInfo(p)
			require.NoError(t, err)
			conv := func(v []ortgo.InputOutputInfo) []engine.TensorDesc {
				var out []engine.TensorDesc
				for _, io := range v {
					d, err := describe("x", io)
					require.NoError(t, err)
					out = append(out, d)
				}
				return out
			}
			assert.Equal(t, conv(oi), ins)
			assert.Equal(t, conv(oo), outs)
		})
	}
}

func TestReadIOBadFiles(t *testing.T) {
	dir := t.TempDir()
	m := addModel(1, []int64{-1, 3})
	for name, b := range map[string][]byte{
		"truncated": m[:len(m)-3],
		"garbage":   []byte("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"),
		"empty":     nil,
	} {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, b, 0o644))
		_, _, ok, err := readIO(p)
		assert.False(t, ok && err == nil, name)
	}
}
