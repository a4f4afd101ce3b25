package engine

import (
	"context"
	"fmt"
)

// IntoRunner is an Engine that also writes into caller-owned outputs (engine/trt's
// sessions): with the same tensors from call to call nothing is allocated and the bound
// addresses stay fixed, which CUDA-graph replay needs.
type IntoRunner interface {
	RunInto(ctx context.Context, inputs, outputs map[string]Tensor) error
}

// Replayer is an Engine that serves runs by replaying captured CUDA graphs and counts
// those replays (engine/trt with CUDA graphs on).
type Replayer interface {
	Replays() int
}

// RunInto runs e writing into outputs (every output of e bound, on the stream's device):
// e's own RunInto when it has one, else Run and a device copy of each result on s (the
// results of Run are closed).
func RunInto(ctx context.Context, e Engine, s Stream, inputs, outputs map[string]Tensor) error {
	if r, ok := e.(IntoRunner); ok {
		return r.RunInto(ctx, inputs, outputs)
	}
	res, err := e.Run(ctx, inputs)
	if err != nil {
		return err
	}
	defer CloseAll(res)
	for name, dst := range outputs {
		src, ok := res[name]
		if !ok {
			return fmt.Errorf("%w: %s: output %q not produced", ErrBinding, e.Name(), name)
		}
		if err := s.Copy(dst, src); err != nil {
			return fmt.Errorf("%s: output %q: %w", e.Name(), name, err)
		}
	}
	return nil
}

// Replays is e's graph replays so far (0 for engines that do not replay graphs).
func Replays(e Engine) int {
	if r, ok := e.(Replayer); ok {
		return r.Replays()
	}
	return 0
}

// OnDevice returns e, an engine that reads and writes host tensors (ONNX Runtime on the
// CPU), as an engine of s's device: every input is downloaded on s and every output
// uploaded on s, explicitly, so the copies show in s's Counters. With a cpu stream it
// returns e itself. Inputs from a third device are refused (ErrDevice). Close does not
// close e (its owner does).
func OnDevice(e Engine, s Stream) Engine {
	if s.Device().Name() == "cpu" {
		return e
	}
	return &deviceEngine{Engine: e, s: s}
}

type deviceEngine struct {
	Engine
	s Stream
}

func (d *deviceEngine) hostInputs(inputs map[string]Tensor) (map[string]Tensor, error) {
	dev := d.s.Device().Name()
	host := make(map[string]Tensor, len(inputs))
	for name, t := range inputs {
		if t == nil {
			return nil, fmt.Errorf("%w: %s: input %q not bound", ErrBinding, d.Name(), name)
		}
		if err := CheckDevice(d.Name(), "input "+name, t, dev); err != nil {
			return nil, err
		}
		h, err := NewHostTensor(t.DType(), t.Shape())
		if err != nil {
			return nil, err
		}
		if err := d.s.Download(h, t); err != nil {
			return nil, fmt.Errorf("%s: input %q: %w", d.Name(), name, err)
		}
		host[name] = h
	}
	return host, nil
}

// Run implements Engine: inputs on the stream's device, outputs allocated there.
func (d *deviceEngine) Run(ctx context.Context, inputs map[string]Tensor) (map[string]Tensor, error) {
	host, err := d.hostInputs(inputs)
	if err != nil {
		return nil, err
	}
	res, err := d.Engine.Run(ctx, host)
	if err != nil {
		return nil, err
	}
	out := make(map[string]Tensor, len(res))
	for name, t := range res {
		h, ok := t.(*HostTensor)
		if !ok {
			CloseAll(out)
			return nil, fmt.Errorf("%w: %s: output %q is on %s, not in host memory", ErrDevice, d.Name(), name, t.DeviceName())
		}
		dt, err := Upload(d.s, h)
		if err != nil {
			CloseAll(out)
			return nil, fmt.Errorf("%s: output %q: %w", d.Name(), name, err)
		}
		out[name] = dt
	}
	return out, nil
}

// RunInto implements IntoRunner: the outputs are uploaded into the caller's tensors.
func (d *deviceEngine) RunInto(ctx context.Context, inputs, outputs map[string]Tensor) error {
	host, err := d.hostInputs(inputs)
	if err != nil {
		return err
	}
	res, err := d.Engine.Run(ctx, host)
	if err != nil {
		return err
	}
	for name, dst := range outputs {
		h, ok := res[name].(*HostTensor)
		if !ok {
			return fmt.Errorf("%w: %s: output %q not produced in host memory", ErrBinding, d.Name(), name)
		}
		if err := d.s.Upload(dst, h); err != nil {
			return fmt.Errorf("%s: output %q: %w", d.Name(), name, err)
		}
	}
	return nil
}

// Close implements Engine: it closes nothing (the wrapped engine belongs to its owner).
func (d *deviceEngine) Close() error { return nil }

// ShapeLimiter is an Engine whose inputs have a largest accepted shape (engine/trt: the
// plan's optimisation profiles). MaxShape returns it for an input, dimension by dimension
// over all profiles (false: none known).
type ShapeLimiter interface {
	MaxShape(input string) (Shape, bool)
}

// MaxBatch is the largest leading dimension e accepts for input: its descriptor's fixed
// one, else its ShapeLimiter's, else 0 (no limit known).
func MaxBatch(e Engine, input string) int {
	for _, d := range e.Inputs() {
		if d.Name == input && len(d.Shape) > 0 && d.Shape[0] > 0 {
			return int(d.Shape[0])
		}
	}
	if l, ok := e.(ShapeLimiter); ok {
		if s, ok := l.MaxShape(input); ok && len(s) > 0 && s[0] > 0 {
			return int(s[0])
		}
	}
	return 0
}
