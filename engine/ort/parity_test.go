package ort

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/internal/npy"
	"github.com/grefine/grefine/modelset"
)

// Parity of ONNX Runtime with the PyTorch float32 goldens of the tiny model set
// (testdata/goldens, made by tools/export). Tolerance: 1e-4 max abs (issue acceptance).
const parityTol = 1e-4

var repoRoot = filepath.Join("..", "..")

func loadTiny(t *testing.T) *modelset.Set {
	t.Helper()
	s, err := modelset.Load(filepath.Join(repoRoot, "testdata", "models", "tiny"), modelset.Options{})
	require.NoError(t, err, "the committed tiny model set must load and verify")
	return s
}

func golden(t *testing.T, name string) *npy.Array {
	t.Helper()
	a, err := npy.ReadFile(filepath.Join(repoRoot, "testdata", "goldens", name))
	require.NoError(t, err)
	return a
}

func maxAbs(a, b []float32) float64 {
	m := 0.0
	for i := range a {
		m = math.Max(m, math.Abs(float64(a[i])-float64(b[i])))
	}
	return m
}

func TestParityCLIPSurgery(t *testing.T) {
	b := backend(t)
	s := loadTiny(t)
	e, err := s.OpenEngine(b, "clip_surgery", engine.OpenOptions{})
	require.NoError(t, err)
	defer e.Close()
	in, want := golden(t, "clip_surgery_input.npy"), golden(t, "clip_surgery_tokens.npy")
	x, err := engine.FromFloat32(in.Shape, in.F32)
	require.NoError(t, err)
	out, err := e.Run(context.Background(), map[string]engine.Tensor{"pixel_values": x})
	require.NoError(t, err)
	got := out["tokens"].(*engine.HostTensor)
	require.Equal(t, engine.Shape(want.Shape), got.Shape())
	err1 := maxAbs(got.F32, want.F32)
	t.Logf("clip_surgery: max abs error vs PyTorch = %.3g over %d values", err1, len(want.F32))
	assert.LessOrEqual(t, err1, parityTol)
	// Each of the 512 channels is L2-normalised across the 197 tokens (DESIGN §1.1).
	for bi := 0; bi < 2; bi++ {
		for c := 0; c < 512; c += 97 {
			ss := 0.0
			for tok := 0; tok < 197; tok++ {
				v := float64(got.F32[(bi*197+tok)*512+c])
				ss += v * v
			}
			assert.InDelta(t, 1.0, ss, 1e-4, "channel %d norm", c)
		}
	}
}

func TestParityCLIPText(t *testing.T) {
	b := backend(t)
	s := loadTiny(t)
	e, err := s.OpenEngine(b, "clip_text", engine.OpenOptions{})
	require.NoError(t, err)
	defer e.Close()
	ids, want := golden(t, "clip_text_ids.npy"), golden(t, "clip_text_embeds.npy")
	x, err := engine.FromInt32(ids.Shape, ids.I32)
	require.NoError(t, err)
	out, err := e.Run(context.Background(), map[string]engine.Tensor{"input_ids": x})
	require.NoError(t, err)
	got := out["text_embeds"].(*engine.HostTensor)
	require.Equal(t, engine.Shape(want.Shape), got.Shape())
	err1 := maxAbs(got.F32, want.F32)
	t.Logf("clip_text: max abs error vs PyTorch = %.3g over %d values", err1, len(want.F32))
	assert.LessOrEqual(t, err1, parityTol)
}

// BenchmarkCLIPSurgeryTiny times one tiny clip_surgery run (batch 1) on ONNX Runtime CPU.
func BenchmarkCLIPSurgeryTiny(b *testing.B) {
	be := backend(b)
	s, err := modelset.Load(filepath.Join(repoRoot, "testdata", "models", "tiny"), modelset.Options{})
	require.NoError(b, err)
	e, err := s.OpenEngine(be, "clip_surgery", engine.OpenOptions{})
	require.NoError(b, err)
	defer e.Close()
	x, _ := engine.NewHostTensor(engine.Float32, engine.Shape{1, 3, 224, 224})
	in := map[string]engine.Tensor{"pixel_values": x}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := e.Run(context.Background(), in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCLIPTextTiny times one tiny clip_text run on a batch of 8 prompts.
func BenchmarkCLIPTextTiny(b *testing.B) {
	be := backend(b)
	s, err := modelset.Load(filepath.Join(repoRoot, "testdata", "models", "tiny"), modelset.Options{})
	require.NoError(b, err)
	e, err := s.OpenEngine(be, "clip_text", engine.OpenOptions{})
	require.NoError(b, err)
	defer e.Close()
	x, _ := engine.NewHostTensor(engine.Int32, engine.Shape{8, 77})
	for i := 0; i < 8; i++ {
		x.I32[i*77], x.I32[i*77+1], x.I32[i*77+2] = 49406, int32(320+i), 49407
	}
	in := map[string]engine.Tensor{"input_ids": x}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := e.Run(context.Background(), in); err != nil {
			b.Fatal(err)
		}
	}
}
