package conformance

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/internal/testkit/testenv"
)

// TestConformance runs the engine cases of the tiny model set on every pair available
// here. GRF_CONFORMANCE_REPORT=FILE also writes the Markdown summary (the GPU script does).
func TestConformance(t *testing.T) {
	set := testenv.TinySet(t)
	cases := EngineCases(set, TinyInputs)
	require.Len(t, cases, len(TinyInputs), "every engine of the tiny set has a case")
	rep := Run(t, DefaultPairs(testenv.Root(t)), cases)
	t.Logf("summary:\n%s", rep.Summary())
	if p := os.Getenv("GRF_CONFORMANCE_REPORT"); p != "" {
		require.NoError(t, os.WriteFile(p, []byte(rep.Summary()), 0o644))
	}
	ran := 0
	for _, r := range rep.Results {
		if r.Pair == "ort/cpu-1t" && r.Skipped == "" {
			ran++
		}
	}
	assert.Equal(t, len(cases), ran, "ort/cpu-1t is always compared")
}

func TestCompare(t *testing.T) {
	ref := map[string][]float32{"y": {1, -2, 100, 0}}
	tol := Tolerance{Abs: 1e-3, Rel: 1e-3}
	r, err := Compare(ref, map[string][]float32{"y": {1.0005, -2, 100.09, 0.0009}}, tol)
	require.NoError(t, err)
	assert.InDelta(t, 0.09, r.MaxAbs, 1e-4)
	assert.Equal(t, 4, r.N)
	for name, got := range map[string]map[string][]float32{
		"abs":     {"y": {1, -2, 100, 0.0011}},
		"rel":     {"y": {1, -2, 100.2, 0}},
		"nan":     {"y": {1, -2, float32(nanF()), 0}},
		"missing": {"z": {1, -2, 100, 0}},
		"length":  {"y": {1, -2, 100}},
		"extra":   {"y": {1, -2, 100, 0}, "z": {}},
	} {
		_, err := Compare(ref, got, tol)
		assert.Error(t, err, name)
	}
	_, err = Compare(ref, map[string][]float32{"y": {1, -2, 100.2, 0}}, tol)
	assert.ErrorContains(t, err, "y[2] = 100.2, reference 100")
}

func nanF() float64 { z := 0.0; return z / z }

// TestRunCatchesADivergentPair: a pair whose engine perturbs one output fails its case,
// and an unavailable pair is skipped with its reason.
func TestRunCatchesADivergentPair(t *testing.T) {
	testenv.ORT(t)
	set := testenv.TinySet(t)
	cases := EngineCases(set, map[string]map[string]Input{"sdxl_vae_decoder": TinyInputs["sdxl_vae_decoder"]})
	pairs := DefaultPairs(testenv.Root(t))[:1]
	pairs = append(pairs,
		Pair{Name: "perturbed", New: func() (*Env, error) {
			env, err := pairs[0].New()
			if err != nil {
				return nil, err
			}
			env.Pair = "perturbed"
			env.open = func(_ context.Context, onnx, n string, _ map[string]engine.Shape) (engine.Engine, error) {
				e, err := env.Backend.Open(onnx, engine.OpenOptions{Name: n})
				return perturb{e}, err
			}
			return env, nil
		}},
		Pair{Name: "absent", New: func() (*Env, error) {
			return nil, fmt.Errorf("%w: absent: not on this machine", engine.ErrUnavailable)
		}},
	)
	rep, err := Evaluate(context.Background(), pairs, cases)
	require.NoError(t, err)
	var perturbed, absent *Result
	for i := range rep.Results {
		switch rep.Results[i].Pair {
		case "perturbed":
			perturbed = &rep.Results[i]
		case "absent":
			absent = &rep.Results[i]
		}
	}
	require.NotNil(t, perturbed)
	require.Error(t, perturbed.Err)
	assert.Contains(t, perturbed.Err.Error(), "images[0]")
	require.NotNil(t, absent)
	assert.Contains(t, absent.Skipped, "not on this machine")
	assert.Contains(t, rep.Summary(), "| perturbed | sdxl_vae_decoder |")
}

// perturb adds 1e-2 to the first element of every float32 output.
type perturb struct{ engine.Engine }

func (p perturb) Run(ctx context.Context, in map[string]engine.Tensor) (map[string]engine.Tensor, error) {
	out, err := p.Engine.Run(ctx, in)
	for _, t := range out {
		if h, ok := t.(*engine.HostTensor); ok && len(h.F32) > 0 {
			h.F32[0] += 1e-2
		}
	}
	return out, err
}
