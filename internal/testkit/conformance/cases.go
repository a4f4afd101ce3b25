package conformance

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/modelset"
)

// EngineTol is the tolerance of the engine cases: float32 maths in another order.
var EngineTol = Tolerance{Abs: 1e-4, Rel: 1e-4}

// Input is one generated input of an engine case.
type Input struct {
	Shape engine.Shape
	// Lo, Hi bound uniform values (int32 inputs: integers in [Lo, Hi)); Const, when set,
	// fills every element instead.
	Lo, Hi float64
	Const  []float64
}

// TinyInputs are the inputs of the engine cases on the tiny model set (batch 2 where the
// engine allows it, CFG-style; small latents).
var TinyInputs = map[string]map[string]Input{
	"clip_surgery": {"pixel_values": {Shape: engine.Shape{1, 3, 224, 224}, Lo: -2, Hi: 2}},
	"clip_text":    {"input_ids": {Shape: engine.Shape{2, 16}, Lo: 1, Hi: 49407}},
	"sdxl_text_l":  {"input_ids": {Shape: engine.Shape{2, 77}, Lo: 1, Hi: 49407}},
	"sdxl_text_g":  {"input_ids": {Shape: engine.Shape{2, 77}, Lo: 1, Hi: 49407}},
	"pasd_text":    {"input_ids": {Shape: engine.Shape{1, 77}, Lo: 1, Hi: 49407}},
	"sdxl_unet": {
		"sample":                {Shape: engine.Shape{2, 9, 16, 16}, Lo: -2, Hi: 2},
		"timestep":              {Shape: engine.Shape{1}, Const: []float64{601}},
		"encoder_hidden_states": {Shape: engine.Shape{2, 77, 24}, Lo: -1, Hi: 1},
		"text_embeds":           {Shape: engine.Shape{2, 20}, Lo: -1, Hi: 1},
		"time_ids":              {Shape: engine.Shape{2, 6}, Const: []float64{128, 128, 0, 0, 128, 128}},
	},
	"sdxl_vae_encoder": {"images": {Shape: engine.Shape{1, 3, 64, 64}, Lo: -1, Hi: 1}},
	"sdxl_vae_decoder": {"latent": {Shape: engine.Shape{1, 4, 8, 8}, Lo: -3, Hi: 3}},
	"pasd_unet": {
		"sample":                {Shape: engine.Shape{2, 4, 16, 16}, Lo: -2, Hi: 2},
		"timestep":              {Shape: engine.Shape{1}, Const: []float64{400}},
		"encoder_hidden_states": {Shape: engine.Shape{2, 77, 8}, Lo: -1, Hi: 1},
		"control":               {Shape: engine.Shape{2, 3, 128, 128}, Lo: -1, Hi: 1},
	},
	"pasd_vae_encoder": {"images": {Shape: engine.Shape{1, 3, 64, 64}, Lo: -1, Hi: 1}},
	"pasd_vae_decoder": {"latent": {Shape: engine.Shape{1, 4, 8, 8}, Lo: -3, Hi: 3}},
}

// EngineCases returns one case per engine of set named in inputs (sorted by name): the
// engine runs once on fixed pseudo-random inputs (seeded by the engine name) and every
// float32 output is compared.
func EngineCases(set *modelset.Set, inputs map[string]map[string]Input) []Case {
	names := make([]string, 0, len(inputs))
	for n := range inputs {
		if set.HasEngine(n) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var cases []Case
	for _, n := range names {
		entry := set.Manifest.Engines[n]
		spec := inputs[n]
		path := set.Path(entry.File)
		cases = append(cases, Case{Name: n, Tol: EngineTol, Run: func(ctx context.Context, env *Env) (map[string][]float32, error) {
			in, shapes, err := makeInputs(n, entry.Inputs, spec)
			if err != nil {
				return nil, err
			}
			e, err := env.Open(ctx, path, n, shapes)
			if err != nil {
				return nil, err
			}
			defer e.Close()
			out, err := env.RunHost(ctx, e, in)
			if err != nil {
				return nil, err
			}
			res := map[string][]float32{}
			for k, h := range out {
				if h.DType() == engine.Float32 {
					res[k] = h.F32
				}
			}
			return res, nil
		}})
	}
	return cases
}

// makeInputs generates the inputs of one engine deterministically.
func makeInputs(name string, descs []engine.TensorDesc, spec map[string]Input) (map[string]*engine.HostTensor, map[string]engine.Shape, error) {
	seed := uint64(0)
	for _, c := range name {
		seed = seed*131 + uint64(c)
	}
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	in := map[string]*engine.HostTensor{}
	shapes := map[string]engine.Shape{}
	for _, d := range descs {
		s, ok := spec[d.Name]
		if !ok {
			return nil, nil, fmt.Errorf("conformance: %s: no input spec for %s", name, d.Name)
		}
		h, err := engine.NewHostTensor(d.DType, s.Shape)
		if err != nil {
			return nil, nil, err
		}
		for i := 0; i < h.Len(); i++ {
			v := s.Lo + (s.Hi-s.Lo)*rng.Float64()
			if len(s.Const) > 0 {
				v = s.Const[i%len(s.Const)]
			}
			switch d.DType {
			case engine.Float32:
				h.F32[i] = float32(v)
			case engine.Int32:
				h.I32[i] = int32(v)
			case engine.Int64:
				h.I64[i] = int64(v)
			default:
				return nil, nil, fmt.Errorf("conformance: %s: input %s: %v not generated", name, d.Name, d.DType)
			}
		}
		in[d.Name], shapes[d.Name] = h, s.Shape
	}
	return in, shapes, nil
}
