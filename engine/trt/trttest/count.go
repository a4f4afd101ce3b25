package trttest

import (
	"fmt"
	"sync/atomic"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/engine/trt"
)

// CountingDevice is an engine.Device that counts the tensors it allocates, for tests that
// show a loop allocates nothing per step (a trt.Slot's Device allocates Session.Run's
// outputs).
type CountingDevice struct {
	engine.Device
	n atomic.Int64
}

// Alloc implements engine.Device.
func (c *CountingDevice) Alloc(dt engine.DType, shape engine.Shape) (engine.Tensor, error) {
	c.n.Add(1)
	return c.Device.Alloc(dt, shape)
}

// Count is the number of Alloc calls so far.
func (c *CountingDevice) Count() int { return int(c.n.Load()) }

// BufferDevice is a minimal engine.Device over a trt backend's Buffers (for the fake shim,
// which has no engine/cuda device): Alloc only.
type BufferDevice struct{ B *trt.Backend }

// Name implements engine.Device: the backend's device name.
func (d BufferDevice) Name() string { return d.B.DeviceName() }

// Info implements engine.Device.
func (d BufferDevice) Info() engine.DeviceInfo {
	return engine.DeviceInfo{Name: d.B.DeviceName(), Kind: "trt-buffers"}
}

// Available implements engine.Device.
func (d BufferDevice) Available() error { return d.B.Available() }

// Alloc implements engine.Device with a Buffer.
func (d BufferDevice) Alloc(dt engine.DType, shape engine.Shape) (engine.Tensor, error) {
	return d.B.Alloc(dt, shape)
}

// View implements engine.Device: not supported.
func (d BufferDevice) View(engine.Tensor, int64, engine.Shape) (engine.Tensor, error) {
	return nil, fmt.Errorf("%w: trttest: BufferDevice has no views", engine.ErrUnavailable)
}

// NewStream implements engine.Device: not supported.
func (d BufferDevice) NewStream() (engine.Stream, error) {
	return nil, fmt.Errorf("%w: trttest: BufferDevice has no streams", engine.ErrUnavailable)
}

// Close implements engine.Device.
func (d BufferDevice) Close() error { return nil }
