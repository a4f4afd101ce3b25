package cpu

import (
	"fmt"

	"github.com/grefine/grefine/engine"
)

// Device is the host-memory device. The zero value is ready to use.
type Device struct{}

var _ engine.Device = Device{}

// Name implements engine.Device.
func (Device) Name() string { return "cpu" }

// Available implements engine.Device: the cpu device is always available.
func (Device) Available() error { return nil }

// Upload implements engine.Device: it returns a copy of t.
func (Device) Upload(t *engine.HostTensor) (engine.Tensor, error) {
	if t == nil {
		return nil, fmt.Errorf("%w: cpu: upload of a nil tensor", engine.ErrShape)
	}
	return clone(t)
}

// Download implements engine.Device: t must be a *engine.HostTensor; it returns a copy.
func (Device) Download(t engine.Tensor) (*engine.HostTensor, error) {
	h, ok := t.(*engine.HostTensor)
	if !ok || h == nil {
		return nil, fmt.Errorf("%w: cpu: cannot download a %T", engine.ErrDevice, t)
	}
	return clone(h)
}

// Close implements engine.Device; it does nothing.
func (Device) Close() error { return nil }

func clone(t *engine.HostTensor) (*engine.HostTensor, error) {
	c, err := engine.NewHostTensor(t.DType(), t.Shape())
	if err != nil {
		return nil, fmt.Errorf("cpu: %w", err)
	}
	copy(c.F32, t.F32)
	copy(c.I32, t.I32)
	copy(c.I64, t.I64)
	copy(c.U8, t.U8)
	return c, nil
}
