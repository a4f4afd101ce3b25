package cpu

import (
	"fmt"
	"math"

	"github.com/grefine/grefine/engine"
)

func init() {
	engine.RegisterDevice("cpu", func(opts map[string]string) (engine.Device, error) {
		for k := range opts {
			return nil, fmt.Errorf("%w: cpu: unknown device option %q (the cpu device has none)", engine.ErrUnavailable, k)
		}
		return Device{}, nil
	})
}

// Device is the host-memory device: its tensors are *engine.HostTensor and its streams run
// the reference functions of this package synchronously. The zero value is ready to use.
type Device struct{}

var _ engine.Device = Device{}

// Name implements engine.Device.
func (Device) Name() string { return "cpu" }

// Info implements engine.Device.
func (Device) Info() engine.DeviceInfo {
	return engine.DeviceInfo{Name: "cpu", Kind: "cpu", Model: "Go (host memory)"}
}

// Available implements engine.Device: the cpu device is always available.
func (Device) Available() error { return nil }

// Alloc implements engine.Device: a host tensor filled with 0xFF bytes (NaN as float32),
// like the GPU emulator's fresh memory, so a read before a write shows in every test.
func (Device) Alloc(dt engine.DType, shape engine.Shape) (engine.Tensor, error) {
	t, err := engine.NewHostTensor(dt, shape)
	if err != nil {
		return nil, fmt.Errorf("cpu: %w", err)
	}
	nan := math.Float32frombits(0xFFFFFFFF)
	for i := range t.F32 {
		t.F32[i] = nan
	}
	for i := range t.I32 {
		t.I32[i] = -1
	}
	for i := range t.I64 {
		t.I64[i] = -1
	}
	for i := range t.U8 {
		t.U8[i] = 0xFF
	}
	return t, nil
}

// View implements engine.Device.
func (Device) View(t engine.Tensor, offset int64, shape engine.Shape) (engine.Tensor, error) {
	h, err := host("View", "tensor", t, 0)
	if err != nil {
		return nil, err
	}
	return h.View(offset, shape)
}

// NewStream implements engine.Device.
func (Device) NewStream() (engine.Stream, error) { return &Stream{}, nil }

// Close implements engine.Device; it does nothing.
func (Device) Close() error { return nil }

// host returns t as a host tensor of dtype dt (0: any), or an error naming the devices.
func host(op, name string, t engine.Tensor, dt engine.DType) (*engine.HostTensor, error) {
	if err := engine.CheckDevice("cpu: "+op, name, t, "cpu"); err != nil {
		return nil, err
	}
	h, ok := t.(*engine.HostTensor)
	if !ok || h == nil {
		return nil, fmt.Errorf("%w: cpu: %s: %s is a %T, not a host tensor", engine.ErrDevice, op, name, t)
	}
	if dt != 0 && h.DType() != dt {
		return nil, fmt.Errorf("%w: cpu: %s: %s is %v, want %v", engine.ErrDType, op, name, h.DType(), dt)
	}
	return h, nil
}

// f32s returns the float32 slice of t, or nil for a nil t when optional.
func f32s(op, name string, t engine.Tensor, optional bool) ([]float32, error) {
	if t == nil && optional {
		return nil, nil
	}
	h, err := host(op, name, t, engine.Float32)
	if err != nil {
		return nil, err
	}
	return h.F32, nil
}
