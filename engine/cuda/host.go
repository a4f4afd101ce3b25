package cuda

import (
	"fmt"
	"sync"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/engine/cpu"
)

// HostFuser runs FuseMaps for host slices on one GPU, with the contract of cpu.FuseMaps,
// so pipelines that keep their maps in host memory (pipeline/assess) can use the kernel:
// it uploads good and align, enqueues grf_fuse_maps on its own stream and downloads the
// four outputs, synchronising once. Device buffers are allocated per call and freed
// before it returns. Calls are serialised; Close releases the stream.
type HostFuser struct {
	d  *Device
	mu sync.Mutex
	s  *Stream
}

// NewHostFuser creates a fuser on d.
func NewHostFuser(d *Device) (*HostFuser, error) {
	s, err := d.NewStream()
	if err != nil {
		return nil, err
	}
	return &HostFuser{d: d, s: s}, nil
}

// Close releases the stream; idempotent and nil-safe.
func (f *HostFuser) Close() error {
	if f == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.s == nil {
		return nil
	}
	err := f.s.Close()
	f.s = nil
	return err
}

// FuseMaps has cpu.FuseMaps' signature and semantics (see grf_fuse_maps for the
// tolerance of the kernel against it: engine/cuda's tests).
func (f *HostFuser) FuseMaps(p engine.FuseParams, batch int, good, align []float32, out cpu.FuseMapsOut) (err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.s == nil {
		return fmt.Errorf("%w: cuda: host fuser", engine.ErrClosed)
	}
	if err := p.Validate(); err != nil {
		return fmt.Errorf("cuda: FuseMaps: %w", err)
	}
	B, T, H, W, h, w := int64(batch), int64(p.Tokens()), int64(p.Height), int64(p.Width), int64(p.LatentH), int64(p.LatentW)
	var tensors []*Tensor
	defer func() {
		for _, t := range tensors {
			if cerr := t.Close(); cerr != nil && err == nil {
				err = cerr
			}
		}
	}()
	put := func(shape engine.Shape, data []float32) (*Tensor, error) {
		t, err := f.d.AllocTensor(engine.Float32, shape)
		if err != nil {
			return nil, err
		}
		tensors = append(tensors, t)
		if data == nil {
			return t, nil
		}
		h, err := engine.FromFloat32(shape, data)
		if err != nil {
			return nil, err
		}
		return t, f.s.Upload(t, h)
	}
	gT, err := put(engine.Shape{B, 4, T}, good)
	if err != nil {
		return err
	}
	var aT *Tensor
	if align != nil {
		if aT, err = put(engine.Shape{B, H, W}, align); err != nil {
			return err
		}
	}
	var o FuseMapsOut
	if o.Score, err = put(engine.Shape{B}, nil); err != nil {
		return err
	}
	if o.PMap, err = put(engine.Shape{B, H, W}, nil); err != nil {
		return err
	}
	if o.MaskImg, err = put(engine.Shape{B, H, W}, nil); err != nil {
		return err
	}
	if o.MaskLat, err = put(engine.Shape{B, h, w}, nil); err != nil {
		return err
	}
	if err := f.s.FuseMaps(p, gT, aT, o); err != nil {
		return err
	}
	for _, d := range []struct {
		dst   []float32
		src   *Tensor
		shape engine.Shape
	}{{out.Score, o.Score, engine.Shape{B}}, {out.PMap, o.PMap, engine.Shape{B, H, W}},
		{out.MaskImg, o.MaskImg, engine.Shape{B, H, W}}, {out.MaskLat, o.MaskLat, engine.Shape{B, h, w}}} {
		ht, err := engine.FromFloat32(d.shape, d.dst)
		if err != nil {
			return fmt.Errorf("cuda: FuseMaps: output: %w", err)
		}
		if err := f.s.Download(ht, d.src); err != nil {
			return err
		}
	}
	return nil
}
