package npy

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name  string
		shape []int64
		data  []float32
	}{
		{"vector", []int64{3}, []float32{1, -2.5, 3e-8}},
		{"matrix", []int64{2, 2}, []float32{1, 2, 3, 4}},
		{"scalar", []int64{}, []float32{7}},
		{"empty", []int64{0, 4}, []float32{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			require.NoError(t, WriteFloat32(&buf, tc.shape, tc.data))
			assert.Zero(t, (buf.Len()-4*len(tc.data))%64, "header must pad data to 64 bytes")
			a, err := Decode(buf.Bytes())
			require.NoError(t, err)
			assert.Equal(t, tc.shape, a.Shape)
			assert.Equal(t, "float32", a.DType)
			assert.Equal(t, tc.data, a.F32)
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, WriteFloat32(&buf, []int64{4}, []float32{1, 2, 3, 4}))
	good := buf.Bytes()
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"magic", append([]byte("XNUMPY"), good[6:]...)},
		{"truncated data", good[:len(good)-1]},
		{"fortran", bytes.Replace(good, []byte("False"), []byte("True "), 1)},
		{"dtype", bytes.Replace(good, []byte("<f4"), []byte("<f2"), 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(tc.b)
			assert.ErrorIs(t, err, ErrFormat)
		})
	}
	assert.Error(t, WriteFloat32(&bytes.Buffer{}, []int64{3}, []float32{1}))
}
