package bench

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/modelset"
)

// zeroBackend opens engines that answer at once with zeros of the contract's shapes, so
// a pipeline run measures everything but the networks.
type zeroBackend struct{ set *modelset.Set }

func (z zeroBackend) Name() string       { return "zero" }
func (z zeroBackend) Available() error   { return nil }
func (z zeroBackend) Version() string    { return "zero" }
func (z zeroBackend) DeviceName() string { return "cpu" }
func (z zeroBackend) Close() error       { return nil }

func (z zeroBackend) Open(path string, o engine.OpenOptions) (engine.Engine, error) {
	for name, e := range z.set.Manifest.Engines {
		if filepath.Base(path) == e.File {
			return &zeroEngine{name: name, in: e.Inputs, out: e.Outputs}, nil
		}
	}
	return nil, fmt.Errorf("zero: no engine for %s", path)
}

type zeroEngine struct {
	name    string
	in, out []engine.TensorDesc
}

func (e *zeroEngine) Name() string                 { return e.name }
func (e *zeroEngine) Inputs() []engine.TensorDesc  { return e.in }
func (e *zeroEngine) Outputs() []engine.TensorDesc { return e.out }
func (e *zeroEngine) Close() error                 { return nil }

// Run fills each output's dynamic dims from the inputs: batch from the first input, and
// for image-shaped outputs the spatial size implied by the engine (VAE factor 8).
func (e *zeroEngine) Run(_ context.Context, in map[string]engine.Tensor) (map[string]engine.Tensor, error) {
	if err := engine.CheckInputs(e.name, e.in, in, "cpu"); err != nil {
		return nil, err
	}
	first := in[e.in[0].Name].Shape()
	out := map[string]engine.Tensor{}
	for _, d := range e.out {
		s := d.Shape.Clone()
		for i := range s {
			if s[i] != engine.Dynamic {
				continue
			}
			switch {
			case i == 0:
				s[i] = first[0]
			case e.name == "sdxl_vae_encoder" || e.name == "pasd_vae_encoder":
				s[i] = first[i] / 8
			case e.name == "sdxl_vae_decoder" || e.name == "pasd_vae_decoder":
				s[i] = first[i] * 8
			default:
				s[i] = first[i]
			}
		}
		t, err := engine.NewHostTensor(d.DType, s)
		if err != nil {
			return nil, err
		}
		out[d.Name] = t
	}
	return out, nil
}
