package sched

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Tolerance of the diffusers goldens (float32 torch on the CPU): an element matches when
// |go - ref| <= goldenAbs + goldenRel·|ref|. Go computes the coefficients in float64;
// diffusers computes them (sigma, log-SNR, expm1, the UniPC solve) in float32, so the
// difference is float32 rounding of diffusers' side, which grows with the magnitude of
// the sample (Euler samples start at sigma_max ≈ 14.6 times the noise).
const (
	goldenAbs = 1e-5
	goldenRel = 1e-5
)

type goldenCase struct {
	Name           string          `json:"name"`
	Config         json.RawMessage `json:"config"`
	NumInference   int             `json:"num_inference_steps"`
	Strength       float64         `json:"strength"`
	TStart         int             `json:"t_start"`
	Timesteps      []float64       `json:"timesteps"`
	Sigmas         []float64       `json:"sigmas"`
	InitNoiseSigma float64         `json:"init_noise_sigma"`
	Shape          []int           `json:"shape"`
	X0             []float32       `json:"x0"`
	Noise          []float32       `json:"noise"`
	Init           []float32       `json:"init"`
	Eps            [][]float32     `json:"eps"`
	Scaled         [][]float32     `json:"scaled"`
	Samples        [][]float32     `json:"samples"`
	Noised         [][]float32     `json:"noised"`
}

func loadCases(t *testing.T, file string) []goldenCase {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", file))
	require.NoError(t, err, "goldens: run .venv/bin/python tools/export/sched_goldens.py")
	var doc struct {
		Cases []goldenCase `json:"cases"`
	}
	require.NoError(t, json.Unmarshal(data, &doc))
	require.NotEmpty(t, doc.Cases)
	return doc.Cases
}

// errStat tracks the largest deviations from a reference.
type errStat struct {
	abs, rel float64 // max |d| and max |d|/max(|ref|, 1)
	bad      int
	where    string
}

func (e *errStat) add(got, want []float32, where string) {
	for j := range want {
		d := math.Abs(float64(got[j]) - float64(want[j]))
		if d > goldenAbs+goldenRel*math.Abs(float64(want[j])) || math.IsNaN(d) {
			e.bad++
			if e.where == "" {
				e.where = where
			}
		}
		if d > e.abs {
			e.abs = d
		}
		if r := d / math.Max(math.Abs(float64(want[j])), 1); r > e.rel {
			e.rel = r
		}
	}
}

// ulps returns the distance of two finite float32 values of the same sign in units in
// the last place.
func ulps(a, b float32) int {
	d := int64(math.Float32bits(a)) - int64(math.Float32bits(b))
	if d < 0 {
		d = -d
	}
	return int(d)
}

func runGoldenFile(t *testing.T, file string) {
	for _, gc := range loadCases(t, file) {
		t.Run(gc.Name, func(t *testing.T) {
			cfg, err := ParseConfig("", gc.Config)
			require.NoError(t, err)
			s, err := New(cfg)
			require.NoError(t, err)
			require.NoError(t, s.SetTimesteps(gc.NumInference))
			assert.Equal(t, gc.Timesteps, s.Timesteps(), "timesteps")
			if gc.Sigmas != nil {
				sig := s.(interface{ Sigmas() []float64 }).Sigmas()
				require.Len(t, sig, len(gc.Sigmas))
				// torch's vectorised float32 sqrt is not correctly rounded (about one
				// training sigma in five is 1 ulp off), so allow 1 ulp.
				for i := range sig {
					assert.LessOrEqual(t, ulps(float32(sig[i]), float32(gc.Sigmas[i])), 1, "sigma %d: %g vs %g", i, sig[i], gc.Sigmas[i])
				}
			}
			assert.InDelta(t, gc.InitNoiseSigma, s.InitNoiseSigma(), 1e-6*gc.InitNoiseSigma, "init_noise_sigma")

			start, err := StartStep(gc.NumInference, gc.Strength)
			require.NoError(t, err)
			require.Equal(t, gc.TStart, start, "t_start")
			begin := start * s.Order()
			require.NoError(t, s.SetBeginIndex(begin))
			require.Len(t, gc.Samples, gc.NumInference-begin)

			var stat, linStat, selfStat errStat
			x := make([]float32, len(gc.X0))
			require.NoError(t, InitLatents(s, x, gc.X0, gc.Noise, begin, gc.Strength))
			stat.add(x, gc.Init, "init")

			// A second run through the linear coefficients (the fused kernel's view).
			lin := s.Clone()
			xl := slices.Clone(x)
			var hist [][]float32
			noised := make([]float32, len(x))
			for k := range gc.Samples {
				i := begin + k
				in := slices.Clone(x)
				require.NoError(t, s.ScaleModelInput(in, i))
				if gc.Scaled != nil {
					stat.add(in, gc.Scaled[k], "scaled")
				} else {
					assert.Equal(t, x, in, "scale_model_input must be the identity")
				}
				require.NoError(t, s.Step(gc.Eps[k], x, i))
				stat.add(x, gc.Samples[k], "step")

				l, err := lin.Coeffs(i)
				require.NoError(t, err)
				x0 := make([]float32, len(x))
				require.NoError(t, l.Apply(xl, x0, xl, gc.Eps[k], hist))
				hist = append([][]float32{x0}, hist...)
				if len(hist) > len(l.H) {
					hist = hist[:len(l.H)]
				}
				linStat.add(xl, gc.Samples[k], "linear")
				selfStat.add(xl, x, "linear vs step")

				if k < len(gc.Noised) {
					require.NoError(t, s.AddNoise(noised, gc.X0, gc.Noise, i+1))
					stat.add(noised, gc.Noised[k], "add_noise")
				}
			}
			t.Logf("%s: step vs diffusers max abs %.3g rel %.3g; linear vs diffusers max abs %.3g; linear vs step %.3g",
				gc.Name, stat.abs, stat.rel, linStat.abs, selfStat.abs)
			assert.Zero(t, stat.bad, "elements off diffusers beyond tolerance (first at %s)", stat.where)
			assert.Zero(t, linStat.bad, "linear-coefficient elements off diffusers (first at %s)", linStat.where)
			assert.Zero(t, selfStat.bad, "linear coefficients differ from Step (first at %s)", selfStat.where)
		})
	}
}

func TestEulerGoldens(t *testing.T) { runGoldenFile(t, "euler.json") }
func TestUniPCGoldens(t *testing.T) { runGoldenFile(t, "unipc.json") }
func TestDDIMGoldens(t *testing.T)  { runGoldenFile(t, "ddim.json") }

func TestAlphasCumprodMatchTorch(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "tables.json"))
	require.NoError(t, err)
	var doc struct {
		Tables map[string]struct {
			Config json.RawMessage `json:"config"`
			AC     []float32       `json:"alphas_cumprod"`
		} `json:"tables"`
	}
	require.NoError(t, json.Unmarshal(data, &doc))
	require.Len(t, doc.Tables, 3)
	for name, tab := range doc.Tables {
		t.Run(name, func(t *testing.T) {
			cfg, err := ParseConfig("", tab.Config)
			require.NoError(t, err)
			ac, err := alphasCumprod(cfg)
			require.NoError(t, err)
			require.Len(t, ac, len(tab.AC))
			diff, maxRel := 0, 0.0
			for i := range ac {
				if ac[i] != tab.AC[i] {
					diff++
				}
				maxRel = math.Max(maxRel, math.Abs(float64(ac[i])/float64(tab.AC[i])-1))
			}
			t.Logf("%s: %d of %d float32 values differ from torch's, max rel %.3g", name, diff, len(ac), maxRel)
			// torch's linspace kernel may round differently on other CPUs: allow 1 ulp-ish.
			assert.Less(t, maxRel, 4e-7)
		})
	}
}

func TestStrengthTable(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "strength.json"))
	require.NoError(t, err)
	var doc struct {
		Rows [][3]float64 `json:"rows"`
	}
	require.NoError(t, json.Unmarshal(data, &doc))
	require.NotEmpty(t, doc.Rows)
	for _, r := range doc.Rows {
		n, s, want := int(r[0]), r[1], int(r[2])
		got, err := StartStep(n, s)
		if want >= n {
			assert.ErrorIs(t, err, ErrStrength, "N=%d s=%g runs no step", n, s)
			continue
		}
		require.NoError(t, err)
		assert.Equal(t, want, got, "t_start for N=%d s=%g", n, s)
	}
}
