package cpu

import (
	"fmt"

	"github.com/grefine/grefine/engine"
)

// Ops is the cpu device's implementation of the refiner's tensor operations
// (pipeline/refine.Ops) over host tensors: each method calls the reference function of
// the same name on the tensors' slices. It makes no copies (the engines read host
// tensors directly). The zero value is ready to use.
type Ops struct{}

// Name is "cpu".
func (Ops) Name() string { return "cpu" }

// Upload returns a copy of h (it is already in host memory).
func (Ops) Upload(h *engine.HostTensor) (engine.Tensor, error) { return Device{}.Upload(h) }

// Download returns t itself when it is a host tensor.
func (Ops) Download(t engine.Tensor) (*engine.HostTensor, error) {
	h, ok := t.(*engine.HostTensor)
	if !ok || h == nil {
		return nil, fmt.Errorf("%w: cpu: cannot download a %T", engine.ErrDevice, t)
	}
	return h, nil
}

// Zeros allocates a zeroed float32 tensor.
func (Ops) Zeros(shape engine.Shape) (engine.Tensor, error) {
	return engine.NewHostTensor(engine.Float32, shape)
}

// InpaintInput is InpaintInput on host tensors (shapes as grf_inpaint_input).
func (Ops) InpaintInput(scaleIn float32, latents, mask, masked, out engine.Tensor) error {
	l, m, k, o, err := hosts4("InpaintInput", latents, mask, masked, out)
	if err != nil {
		return err
	}
	s := l.Shape()
	if len(s) != 4 {
		return fmt.Errorf("%w: cpu: InpaintInput: latents %v", engine.ErrShape, s)
	}
	return InpaintInput(int(s[0]), int(s[1]), int(s[2]), int(s[3]), scaleIn, l.F32, m.F32, k.F32, o.F32)
}

// BlendStep is BlendStep on host tensors.
func (Ops) BlendStep(c engine.BlendCoeffs, in engine.BlendTensors, out, x0 engine.Tensor) error {
	x, ok := in.X.(*engine.HostTensor)
	if !ok || len(x.Shape()) != 4 {
		return fmt.Errorf("%w: cpu: BlendStep: x is %T", engine.ErrDevice, in.X)
	}
	get := func(t engine.Tensor) ([]float32, error) {
		if t == nil {
			return nil, nil
		}
		h, ok := t.(*engine.HostTensor)
		if !ok {
			return nil, fmt.Errorf("%w: cpu: BlendStep: a %T is not a host tensor", engine.ErrDevice, t)
		}
		return h.F32, nil
	}
	var b BlendIn
	var err error
	b.X = x.F32
	for _, f := range []struct {
		dst *[]float32
		t   engine.Tensor
	}{{&b.NoisePred, in.NoisePred}, {&b.Init, in.Init}, {&b.Noise, in.Noise}, {&b.Mask, in.Mask}, {&b.Hist[0], in.Hist[0]}, {&b.Hist[1], in.Hist[1]}} {
		if *f.dst, err = get(f.t); err != nil {
			return err
		}
	}
	o, err := get(out)
	if err != nil {
		return err
	}
	var x0s []float32
	if x0 != nil {
		if x0s, err = get(x0); err != nil {
			return err
		}
	}
	s := x.Shape()
	return BlendStep(c, int(s[0]), int(s[1]), int(s[2]), int(s[3]), b, o, x0s)
}

// ScaleCopies writes copies of s·x into out (out = [k·len(x)] for k copies), each value
// rounded from float64 to float32: out[j*n + i] = float32(float64(x[i]) * s).
func (Ops) ScaleCopies(s float64, x, out engine.Tensor) error {
	xh, oh, _, _, err := hosts4("ScaleCopies", x, out, nil, nil)
	if err != nil {
		return err
	}
	n := len(xh.F32)
	if n == 0 || len(oh.F32)%n != 0 {
		return fmt.Errorf("%w: cpu: ScaleCopies: %d values into %d", engine.ErrShape, n, len(oh.F32))
	}
	for i, v := range xh.F32 {
		y := float32(float64(v) * s)
		for j := i; j < len(oh.F32); j += n {
			oh.F32[j] = y
		}
	}
	return nil
}

// Sync does nothing: host ops are synchronous.
func (Ops) Sync() error { return nil }

// Copies is zero: the cpu device copies nothing between memories.
func (Ops) Copies() engine.CopyStats { return engine.CopyStats{} }

// Close does nothing.
func (Ops) Close() error { return nil }

func hosts4(op string, ts ...engine.Tensor) (a, b, c, d *engine.HostTensor, err error) {
	out := make([]*engine.HostTensor, 4)
	for i, t := range ts {
		if t == nil {
			continue
		}
		h, ok := t.(*engine.HostTensor)
		if !ok || h.DType() != engine.Float32 {
			return nil, nil, nil, nil, fmt.Errorf("%w: cpu: %s: a %T is not a float32 host tensor", engine.ErrDevice, op, t)
		}
		out[i] = h
	}
	return out[0], out[1], out[2], out[3], nil
}
