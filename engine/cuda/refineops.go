package cuda

import (
	"fmt"
	"unsafe"

	"github.com/grefine/grefine/engine"
)

// Ops is the cuda device's implementation of the refiner's tensor operations
// (pipeline/refine.Ops): device tensors on one stream, the kernels of this package, and
// counted host↔device copies. One Ops serves one request at a time (a pipeline slot).
// Its Close releases the stream and its scratch.
type Ops struct {
	dev   *Device
	s     *Stream
	zeros *Tensor // zero noise prediction for ScaleCopies, grown on demand
	stats engine.CopyStats
}

// NewOps creates the ops of one slot on d, with a stream of its own.
func NewOps(d *Device) (*Ops, error) {
	s, err := d.NewStream()
	if err != nil {
		return nil, err
	}
	return &Ops{dev: d, s: s}, nil
}

// Name is "cuda".
func (o *Ops) Name() string { return "cuda" }

// Upload copies h into a new device tensor (counted).
func (o *Ops) Upload(h *engine.HostTensor) (engine.Tensor, error) {
	if h == nil {
		return nil, fmt.Errorf("%w: cuda: upload of a nil tensor", engine.ErrShape)
	}
	t, err := o.dev.AllocTensor(h.DType(), h.Shape())
	if err != nil {
		return nil, err
	}
	if err := o.s.Upload(t, h); err != nil {
		t.Close()
		return nil, err
	}
	o.stats.HostToDevice++
	o.stats.BytesH2D += int64(t.bytes)
	return t, nil
}

// Download copies a device tensor into a new host tensor after the stream's work
// (counted); a host tensor is returned as it is.
func (o *Ops) Download(t engine.Tensor) (*engine.HostTensor, error) {
	if h, ok := t.(*engine.HostTensor); ok {
		return h, nil
	}
	dt, ok := t.(*Tensor)
	if !ok || dt == nil {
		return nil, fmt.Errorf("%w: cuda: cannot download a %T", engine.ErrDevice, t)
	}
	h, err := engine.NewHostTensor(dt.dtype, dt.shape)
	if err != nil {
		return nil, fmt.Errorf("cuda: %w", err)
	}
	if err := o.s.Download(h, dt); err != nil {
		return nil, err
	}
	o.stats.DeviceToHost++
	o.stats.BytesD2H += int64(dt.bytes)
	return h, nil
}

// Zeros allocates a zeroed float32 device tensor.
func (o *Ops) Zeros(shape engine.Shape) (engine.Tensor, error) {
	t, err := o.dev.AllocTensor(engine.Float32, shape)
	if err != nil {
		return nil, err
	}
	if err := o.s.Memset(t, 0); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

func devT(op, name string, t engine.Tensor) (*Tensor, error) {
	if t == nil {
		return nil, nil
	}
	d, ok := t.(*Tensor)
	if !ok {
		return nil, fmt.Errorf("%w: cuda: %s: %s is a %T, not a cuda tensor", engine.ErrDevice, op, name, t)
	}
	return d, nil
}

// InpaintInput enqueues grf_inpaint_input (Stream.InpaintInput).
func (o *Ops) InpaintInput(scaleIn float32, latents, mask, masked, out engine.Tensor) error {
	var ts [4]*Tensor
	for i, t := range []engine.Tensor{latents, mask, masked, out} {
		d, err := devT("InpaintInput", "input", t)
		if err != nil {
			return err
		}
		ts[i] = d
	}
	return o.s.InpaintInput(scaleIn, ts[0], ts[1], ts[2], ts[3])
}

// BlendStep enqueues grf_blend_step (Stream.BlendStep).
func (o *Ops) BlendStep(c engine.BlendCoeffs, in engine.BlendTensors, out, x0 engine.Tensor) error {
	var b BlendIn
	var err error
	for _, f := range []struct {
		dst  **Tensor
		name string
		t    engine.Tensor
	}{{&b.NoisePred, "noise_pred", in.NoisePred}, {&b.X, "x", in.X}, {&b.Init, "init", in.Init}, {&b.Noise, "noise", in.Noise},
		{&b.Mask, "mask", in.Mask}, {&b.Hist[0], "hist0", in.Hist[0]}, {&b.Hist[1], "hist1", in.Hist[1]}} {
		if *f.dst, err = devT("BlendStep", f.name, f.t); err != nil {
			return err
		}
	}
	od, err := devT("BlendStep", "out", out)
	if err != nil {
		return err
	}
	xd, err := devT("BlendStep", "x0", x0)
	if err != nil {
		return err
	}
	return o.s.BlendStep(c, b, od, xd)
}

// ScaleCopies writes k copies of s·x into out ([k·B, C, h, w] from x [B, C, h, w]). It
// runs grf_blend_step on views of out with ca = s and every other coefficient 0 (a
// scaled copy: out = s·x + 0·eps), against a zero noise prediction, so no extra kernel
// is needed. s is rounded to float32 first (the cpu twin rounds the float64 product; the
// difference is one rounding, within the kernels' stated tolerance).
func (o *Ops) ScaleCopies(s float64, x, out engine.Tensor) error {
	xd, err := devT("ScaleCopies", "x", x)
	if err != nil {
		return err
	}
	od, err := devT("ScaleCopies", "out", out)
	if err != nil {
		return err
	}
	if xd == nil || od == nil || len(xd.shape) != 4 || len(od.shape) != 4 || xd.bytes == 0 || od.bytes%xd.bytes != 0 {
		return fmt.Errorf("%w: cuda: ScaleCopies: x %v into out %v", engine.ErrShape, shapeOf(xd), shapeOf(od))
	}
	B := xd.shape[0]
	zshape := engine.Shape{2 * B, xd.shape[1], xd.shape[2], xd.shape[3]}
	if o.zeros == nil || !o.zeros.shape.Equal(zshape) {
		o.zeros.Close()
		z, err := o.Zeros(zshape)
		if err != nil {
			return err
		}
		o.zeros = z.(*Tensor)
	}
	for off := 0; off < od.bytes; off += xd.bytes {
		v := &Tensor{dev: o.dev, dtype: engine.Float32, shape: xd.shape, ptr: unsafe.Add(od.ptr, off), bytes: xd.bytes}
		if err := o.s.BlendStep(engine.BlendCoeffs{CA: float32(s)}, BlendIn{NoisePred: o.zeros, X: xd}, v, nil); err != nil {
			return err
		}
	}
	return nil
}

func shapeOf(t *Tensor) engine.Shape {
	if t == nil {
		return nil
	}
	return t.shape
}

// Sync waits for the stream.
func (o *Ops) Sync() error { return o.s.Sync() }

// Copies reports the host↔device copies made so far.
func (o *Ops) Copies() engine.CopyStats { return o.stats }

// Close releases the stream and the scratch; idempotent.
func (o *Ops) Close() error {
	if o == nil || o.s == nil {
		return nil
	}
	o.zeros.Close()
	o.zeros = nil
	err := o.s.Close()
	o.s = nil
	return err
}
