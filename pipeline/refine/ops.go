package refine

import (
	"fmt"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/engine/cpu"
)

// Ops are the non-network operations of the denoising loops, over engine tensors of one
// device: engine/cpu.Ops (host tensors; the reference) and engine/cuda.Ops (device
// tensors on a stream) implement it. The loops keep the latents, the noise, the masks and
// the UNet inputs on the ops' device; when the engines read another device's tensors the
// loop copies across explicitly, and Copies counts those copies.
type Ops interface {
	Name() string
	Upload(h *engine.HostTensor) (engine.Tensor, error)
	Download(t engine.Tensor) (*engine.HostTensor, error)
	Zeros(shape engine.Shape) (engine.Tensor, error)
	// InpaintInput builds the 9-channel stage-1 UNet input (grf_inpaint_input).
	InpaintInput(scaleIn float32, latents, mask, masked, out engine.Tensor) error
	// BlendStep is CFG + a linear scheduler step + masked blending (grf_blend_step).
	BlendStep(c engine.BlendCoeffs, in engine.BlendTensors, out, x0 engine.Tensor) error
	// ScaleCopies writes k copies of s·x into out (the stage-2 UNet input for CFG).
	ScaleCopies(s float64, x, out engine.Tensor) error
	Sync() error
	Copies() engine.CopyStats
}

var _ Ops = cpu.Ops{}

// xfer moves tensors between the ops' device and the engines' device.
type xfer struct {
	ops Ops
	eng string // device the engines read ("cpu" for ONNX Runtime on the CPU)
}

// toEngine returns t as the engines read it: t itself on the same device, else a copy.
func (x xfer) toEngine(t engine.Tensor) (engine.Tensor, func(), error) {
	if t.DeviceName() == x.eng {
		return t, func() {}, nil
	}
	if x.eng != "cpu" {
		return nil, nil, fmt.Errorf("%w: refine: engines on %s cannot read %s tensors", engine.ErrDevice, x.eng, t.DeviceName())
	}
	h, err := x.ops.Download(t)
	return h, func() {}, err
}

// fromEngine returns an engine output on the ops' device (the caller closes it).
func (x xfer) fromEngine(t engine.Tensor) (engine.Tensor, error) {
	if t.DeviceName() == x.ops.Name() {
		return t, nil
	}
	h, ok := t.(*engine.HostTensor)
	if !ok {
		return nil, fmt.Errorf("%w: refine: cannot move a %s tensor to %s", engine.ErrDevice, t.DeviceName(), x.ops.Name())
	}
	return x.ops.Upload(h)
}

// upload puts host data on the ops' device (host data stays as it is on cpu).
func (x xfer) upload(shape engine.Shape, data []float32) (engine.Tensor, error) {
	h := f32(shape, data).(*engine.HostTensor)
	if x.ops.Name() == "cpu" {
		return h, nil
	}
	return x.ops.Upload(h)
}

// host returns t's values in host memory.
func (x xfer) host(t engine.Tensor) ([]float32, error) {
	h, err := x.ops.Download(t)
	if err != nil {
		return nil, err
	}
	return h.F32, nil
}

func closeAll(ts ...engine.Tensor) {
	for _, t := range ts {
		if t != nil {
			t.Close()
		}
	}
}
