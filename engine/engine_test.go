package engine

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestShape(t *testing.T) {
	assert.Equal(t, int64(24), Shape{2, 3, 4}.NumElements())
	assert.Equal(t, int64(1), Shape{}.NumElements())
	assert.Equal(t, int64(-1), Shape{2, Dynamic}.NumElements())
	assert.True(t, Shape{Dynamic, 3}.Matches(Shape{7, 3}))
	assert.False(t, Shape{Dynamic, 3}.Matches(Shape{7, 4}))
	assert.False(t, Shape{Dynamic, 3}.Matches(Shape{7, 3, 1}))
	assert.Equal(t, "[?,3,224,224]", Shape{Dynamic, 3, 224, 224}.String())
}

func TestDTypeText(t *testing.T) {
	for _, d := range []DType{Float32, Float16, Int32, Int64, Uint8, Bool} {
		b, err := d.MarshalText()
		require.NoError(t, err)
		var back DType
		require.NoError(t, back.UnmarshalText(b))
		assert.Equal(t, d, back)
	}
	var d DType
	assert.ErrorIs(t, d.UnmarshalText([]byte("complex128")), ErrDType)
	_, err := DType(0).MarshalText()
	assert.ErrorIs(t, err, ErrDType)
}

func TestHostTensor(t *testing.T) {
	x, err := NewHostTensor(Float32, Shape{2, 3})
	require.NoError(t, err)
	assert.Equal(t, 6, x.Len())
	y, err := x.Reshape(Shape{3, 2})
	require.NoError(t, err)
	y.F32[0] = 5
	assert.Equal(t, float32(5), x.F32[0], "reshape is a view")
	_, err = x.Reshape(Shape{4})
	assert.ErrorIs(t, err, ErrShape)
	_, err = NewHostTensor(Float32, Shape{Dynamic})
	assert.ErrorIs(t, err, ErrShape)
	_, err = NewHostTensor(Float16, Shape{1})
	assert.ErrorIs(t, err, ErrDType)
	_, err = FromFloat32(Shape{2}, []float32{1})
	assert.ErrorIs(t, err, ErrShape)
}

func TestCheckInputs(t *testing.T) {
	want := []TensorDesc{{Name: "a", DType: Float32, Shape: Shape{Dynamic, 2}}, {Name: "b", DType: Int32, Shape: Shape{1}}}
	a, _ := NewHostTensor(Float32, Shape{5, 2})
	b, _ := NewHostTensor(Int32, Shape{1})
	require.NoError(t, CheckInputs("e", want, map[string]Tensor{"a": a, "b": b}, "cpu"))
	assert.ErrorIs(t, CheckInputs("e", want, map[string]Tensor{"a": a}, "cpu"), ErrBinding)
	assert.ErrorIs(t, CheckInputs("e", want, map[string]Tensor{"a": a, "b": b, "c": b}, "cpu"), ErrBinding)
	assert.ErrorIs(t, CheckInputs("e", want, map[string]Tensor{"a": b, "b": b}, "cpu"), ErrDType)
	assert.ErrorIs(t, CheckInputs("e", want, map[string]Tensor{"a": a, "b": b}, "cuda"), ErrDevice)
	assert.ErrorIs(t, CheckInputs("e", want, map[string]Tensor{"a": a, "b": nil}, "cpu"), ErrBinding)
}
