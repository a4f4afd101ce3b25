package ort

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/engine"
)

// TestSessionSettings: every documented setting opens and runs the same model with the
// same result; unknown keys and bad values are refused with the key in the message.
func TestSessionSettings(t *testing.T) {
	b := backend(t)
	path := writeModel(t, 1, []int64{-1, 3})
	x, _ := engine.FromFloat32(engine.Shape{2, 3}, []float32{1, 2, 3, -4, 5, 0.5})
	for _, s := range []map[string]string{
		nil,
		{SettingGraphOpt: "disable"}, {SettingGraphOpt: "basic"}, {SettingGraphOpt: "extended"}, {SettingGraphOpt: "all"},
		{SettingMemPattern: "0", SettingCPUArena: "0"}, {SettingMemPattern: "1", SettingCPUArena: "1"},
		{"session.intra_op.allow_spinning": "0"},
	} {
		e, err := b.Open(path, engine.OpenOptions{Name: "add", Session: s})
		require.NoError(t, err, "%v", s)
		out, err := e.Run(context.Background(), map[string]engine.Tensor{"x": x})
		require.NoError(t, err, "%v", s)
		assert.Equal(t, []float32{2, 4, 6, -8, 10, 1}, out["y"].(*engine.HostTensor).F32, "%v", s)
		require.NoError(t, e.Close())
	}
	for _, s := range []map[string]string{
		{"graph_opt": "max"}, {"mem_pattern": "yes"}, {"cpu_arena": ""}, {"threads": "2"},
	} {
		_, err := b.Open(path, engine.OpenOptions{Name: "add", Session: s})
		require.Error(t, err, "%v", s)
		assert.ErrorIs(t, err, engine.ErrUnavailable)
		for k := range s {
			assert.Contains(t, err.Error(), k)
		}
	}
}
