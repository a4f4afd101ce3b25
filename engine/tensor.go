package engine

import (
	"fmt"
	"strings"
)

// DType is a tensor element type. The zero value is invalid.
type DType int

// Element types known to grefine engines.
const (
	Float32 DType = iota + 1
	Float16
	Int32
	Int64
	Uint8
	Bool
)

var dtypeNames = map[DType]string{
	Float32: "float32", Float16: "float16", Int32: "int32", Int64: "int64", Uint8: "uint8", Bool: "bool",
}

var dtypeSizes = map[DType]int{
	Float32: 4, Float16: 2, Int32: 4, Int64: 8, Uint8: 1, Bool: 1,
}

// String returns the lowercase numpy-style name ("float32").
func (d DType) String() string {
	if s, ok := dtypeNames[d]; ok {
		return s
	}
	return fmt.Sprintf("dtype(%d)", int(d))
}

// Size is the element size in bytes (0 for an invalid dtype).
func (d DType) Size() int { return dtypeSizes[d] }

// ParseDType parses the names String produces.
func ParseDType(s string) (DType, error) {
	for d, n := range dtypeNames {
		if n == s {
			return d, nil
		}
	}
	return 0, fmt.Errorf("%w: unknown dtype %q", ErrDType, s)
}

// MarshalText implements encoding.TextMarshaler (manifests store dtypes by name).
func (d DType) MarshalText() ([]byte, error) {
	if _, ok := dtypeNames[d]; !ok {
		return nil, fmt.Errorf("%w: invalid dtype %d", ErrDType, int(d))
	}
	return []byte(d.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *DType) UnmarshalText(b []byte) error {
	v, err := ParseDType(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// Dynamic marks a dimension whose size is chosen at run time.
const Dynamic = -1

// Shape is a list of dimensions; Dynamic (-1) marks a free dimension in a descriptor.
type Shape []int64

// NumElements is the product of the dimensions (1 for a scalar). It is -1 if any
// dimension is dynamic or negative.
func (s Shape) NumElements() int64 {
	n := int64(1)
	for _, d := range s {
		if d < 0 {
			return -1
		}
		n *= d
	}
	return n
}

// IsConcrete reports whether every dimension is known (no Dynamic).
func (s Shape) IsConcrete() bool { return s.NumElements() >= 0 }

// Equal reports whether two shapes are identical.
func (s Shape) Equal(o Shape) bool {
	if len(s) != len(o) {
		return false
	}
	for i := range s {
		if s[i] != o[i] {
			return false
		}
	}
	return true
}

// Matches reports whether concrete shape c fits descriptor shape s (same rank, equal
// dimensions except where s is Dynamic).
func (s Shape) Matches(c Shape) bool {
	if len(s) != len(c) {
		return false
	}
	for i := range s {
		if s[i] != Dynamic && s[i] != c[i] {
			return false
		}
	}
	return true
}

// Planes splits a shape [..., H, W] into the product of its leading dimensions and H, W;
// an error (ErrShape) when it has fewer than two dimensions. op names the caller.
func (s Shape) Planes(op string) (n, h, w int, err error) {
	if len(s) < 2 {
		return 0, 0, 0, fmt.Errorf("%w: %s: shape %v has no [H,W]", ErrShape, op, s)
	}
	n = 1
	for _, d := range s[:len(s)-2] {
		n *= int(d)
	}
	return n, int(s[len(s)-2]), int(s[len(s)-1]), nil
}

// Clone returns a copy.
func (s Shape) Clone() Shape { return append(Shape(nil), s...) }

// String formats as [1,3,224,224], with ? for dynamic dims.
func (s Shape) String() string {
	parts := make([]string, len(s))
	for i, d := range s {
		if d == Dynamic {
			parts[i] = "?"
		} else {
			parts[i] = fmt.Sprint(d)
		}
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// TensorDesc describes one engine input or output.
type TensorDesc struct {
	Name  string `json:"name"`
	DType DType  `json:"dtype"`
	Shape Shape  `json:"shape"`
}

// String formats as name:dtype[dims].
func (d TensorDesc) String() string { return d.Name + ":" + d.DType.String() + d.Shape.String() }

// Tensor is an n-dimensional array stored on one Device. Implementations are not safe for
// concurrent mutation. Close releases device memory; it is idempotent and nil-safe.
type Tensor interface {
	DType() DType
	Shape() Shape
	// DeviceName is the name of the device that owns the storage ("cpu", "cuda").
	DeviceName() string
	Close() error
}

// HostTensor is a Tensor in Go memory. Exactly one of the typed slices is set, matching
// DType; its length equals Shape.NumElements(). The zero value is not usable.
type HostTensor struct {
	dtype DType
	shape Shape
	F32   []float32
	I32   []int32
	I64   []int64
	U8    []uint8
}

// NewHostTensor allocates a zeroed host tensor.
func NewHostTensor(dt DType, shape Shape) (*HostTensor, error) {
	n := shape.NumElements()
	if n < 0 {
		return nil, fmt.Errorf("%w: cannot allocate dynamic or negative shape %v", ErrShape, shape)
	}
	t := &HostTensor{dtype: dt, shape: shape.Clone()}
	switch dt {
	case Float32:
		t.F32 = make([]float32, n)
	case Int32:
		t.I32 = make([]int32, n)
	case Int64:
		t.I64 = make([]int64, n)
	case Uint8, Bool:
		t.U8 = make([]uint8, n)
	default:
		return nil, fmt.Errorf("%w: host tensors do not support %v", ErrDType, dt)
	}
	return t, nil
}

// FromFloat32 wraps data (not copied) as a float32 tensor of the given shape.
func FromFloat32(shape Shape, data []float32) (*HostTensor, error) {
	if n := shape.NumElements(); n < 0 || int64(len(data)) != n {
		return nil, fmt.Errorf("%w: %d float32 values do not fill shape %v", ErrShape, len(data), shape)
	}
	return &HostTensor{dtype: Float32, shape: shape.Clone(), F32: data}, nil
}

// FromInt32 wraps data (not copied) as an int32 tensor of the given shape.
func FromInt32(shape Shape, data []int32) (*HostTensor, error) {
	if n := shape.NumElements(); n < 0 || int64(len(data)) != n {
		return nil, fmt.Errorf("%w: %d int32 values do not fill shape %v", ErrShape, len(data), shape)
	}
	return &HostTensor{dtype: Int32, shape: shape.Clone(), I32: data}, nil
}

// FromInt64 wraps data (not copied) as an int64 tensor of the given shape.
func FromInt64(shape Shape, data []int64) (*HostTensor, error) {
	if n := shape.NumElements(); n < 0 || int64(len(data)) != n {
		return nil, fmt.Errorf("%w: %d int64 values do not fill shape %v", ErrShape, len(data), shape)
	}
	return &HostTensor{dtype: Int64, shape: shape.Clone(), I64: data}, nil
}

// FromUint8 wraps data (not copied) as a uint8 tensor of the given shape.
func FromUint8(shape Shape, data []uint8) (*HostTensor, error) {
	if n := shape.NumElements(); n < 0 || int64(len(data)) != n {
		return nil, fmt.Errorf("%w: %d uint8 values do not fill shape %v", ErrShape, len(data), shape)
	}
	return &HostTensor{dtype: Uint8, shape: shape.Clone(), U8: data}, nil
}

// Bytes is the storage size of a tensor: element count × element size (0 for a dynamic
// shape).
func Bytes(t Tensor) int64 {
	n := t.Shape().NumElements()
	if n < 0 {
		return 0
	}
	return n * int64(t.DType().Size())
}

// DType implements Tensor.
func (t *HostTensor) DType() DType { return t.dtype }

// Shape implements Tensor. The returned slice must not be modified.
func (t *HostTensor) Shape() Shape { return t.shape }

// DeviceName implements Tensor.
func (t *HostTensor) DeviceName() string { return "cpu" }

// Close implements Tensor; host memory is left to the garbage collector.
func (t *HostTensor) Close() error { return nil }

// Len is the number of elements.
func (t *HostTensor) Len() int {
	switch t.dtype {
	case Float32:
		return len(t.F32)
	case Int32:
		return len(t.I32)
	case Int64:
		return len(t.I64)
	default:
		return len(t.U8)
	}
}

// View returns a tensor of shape over the elements [offset, offset+n) of t's storage (no
// copy).
func (t *HostTensor) View(offset int64, shape Shape) (*HostTensor, error) {
	n := shape.NumElements()
	if n < 0 || offset < 0 || offset+n > int64(t.Len()) {
		return nil, fmt.Errorf("%w: view %v at %d of a tensor of %d elements", ErrShape, shape, offset, t.Len())
	}
	v := &HostTensor{dtype: t.dtype, shape: shape.Clone()}
	lo, hi := offset, offset+n
	switch t.dtype {
	case Float32:
		v.F32 = t.F32[lo:hi:hi]
	case Int32:
		v.I32 = t.I32[lo:hi:hi]
	case Int64:
		v.I64 = t.I64[lo:hi:hi]
	default:
		v.U8 = t.U8[lo:hi:hi]
	}
	return v, nil
}

// Reshape returns a view with a new shape of the same element count.
func (t *HostTensor) Reshape(shape Shape) (*HostTensor, error) {
	if shape.NumElements() != int64(t.Len()) {
		return nil, fmt.Errorf("%w: cannot reshape %v to %v", ErrShape, t.shape, shape)
	}
	v := *t
	v.shape = shape.Clone()
	return &v, nil
}
