package sched

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The exporter's pipeline goldens (testdata/goldens, made by `make fixtures`) record
// whole diffusers pipeline runs: the real SDXL-inpainting and PASD loops with tiny
// networks. Replaying their UNet outputs through these schedulers must reproduce the
// pipelines' latents.
var pipelineGoldens = filepath.Join("..", "..", "testdata", "goldens")

// readNpyF32 reads a little-endian float32 C-order .npy file.
func readNpyF32(path string) ([]float32, []int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	if len(data) < 10 || string(data[:6]) != "\x93NUMPY" {
		return nil, nil, fmt.Errorf("%s: not a .npy file", path)
	}
	var hlen, off int
	if data[6] == 1 {
		hlen, off = int(binary.LittleEndian.Uint16(data[8:10])), 10
	} else {
		hlen, off = int(binary.LittleEndian.Uint32(data[8:12])), 12
	}
	header := string(data[off : off+hlen])
	if !strings.Contains(header, "'descr': '<f4'") || strings.Contains(header, "'fortran_order': True") {
		return nil, nil, fmt.Errorf("%s: want little-endian float32 C order, header %s", path, header)
	}
	m := regexp.MustCompile(`'shape': \(([^)]*)\)`).FindStringSubmatch(header)
	if m == nil {
		return nil, nil, fmt.Errorf("%s: no shape in header", path)
	}
	var shape []int
	n := 1
	for _, f := range strings.Split(m[1], ",") {
		if f = strings.TrimSpace(f); f != "" {
			d, err := strconv.Atoi(f)
			if err != nil {
				return nil, nil, err
			}
			shape = append(shape, d)
			n *= d
		}
	}
	body := data[off+hlen:]
	if len(body) != 4*n {
		return nil, nil, fmt.Errorf("%s: %d bytes for %d floats", path, len(body), n)
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(body[4*i:]))
	}
	return out, shape, nil
}

func TestPipelineGoldens(t *testing.T) {
	for _, tc := range []struct{ prefix, class string }{{"sdxl", ClassEuler}, {"pasd", ClassUniPC}} {
		t.Run(tc.prefix, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(pipelineGoldens, tc.prefix+"_params.json"))
			if errors.Is(err, fs.ErrNotExist) {
				t.Skipf("no pipeline goldens in %s (run make fixtures)", pipelineGoldens)
			}
			require.NoError(t, err)
			var params struct {
				Steps     int             `json:"steps"`
				Strength  float64         `json:"strength"`
				NumInf    int             `json:"num_inference_steps"`
				Guidance  float64         `json:"guidance_scale"`
				Scheduler json.RawMessage `json:"scheduler"`
			}
			require.NoError(t, json.Unmarshal(raw, &params))
			load := func(name string) []float32 {
				v, _, err := readNpyF32(filepath.Join(pipelineGoldens, tc.prefix+"_"+name+".npy"))
				require.NoError(t, err)
				return v
			}
			s, err := NewFromJSON(tc.class, params.Scheduler)
			require.NoError(t, err)
			begin, err := Prepare(s, params.Steps, params.Strength)
			require.NoError(t, err)
			require.Equal(t, params.NumInf, s.NumSteps(), "TimestepsForStrength vs the exporter")

			ts := load("timesteps")
			require.Len(t, ts, params.Steps)
			for k, v := range ts {
				assert.Equal(t, float64(v), s.Timesteps()[begin+k], "timestep %d", k)
			}
			z0, noise, init := load("image_latents"), load("noise"), load("latents_init")
			preds, steps := load("noise_pred"), load("latents_steps")
			n := len(z0)
			require.Len(t, steps, params.Steps*n)
			require.Len(t, preds, params.Steps*2*n)

			var stat, fused errStat
			x := make([]float32, n)
			require.NoError(t, InitLatents(s, x, z0, noise, begin, params.Strength))
			stat.add(x, init, "init")
			lin := s.Clone()
			xl := append([]float32(nil), x...)
			var hist [][]float32
			g := float32(params.Guidance)
			for k := 0; k < params.Steps; k++ {
				i := begin + k
				u, c := preds[2*k*n:(2*k+1)*n], preds[(2*k+1)*n:(2*k+2)*n]
				eps := make([]float32, n)
				for j := range eps {
					eps[j] = u[j] + g*(c[j]-u[j]) // torch's float32 CFG
				}
				require.NoError(t, s.Step(eps, x, i))
				stat.add(x, steps[k*n:(k+1)*n], "step")

				// The fused kernel's reference: CFG and step from Blend's coefficients.
				b, err := Blend(lin, i, params.Guidance)
				require.NoError(t, err)
				x0 := make([]float32, n)
				for j := range xl {
					e := u[j] + b.Guidance*(c[j]-u[j])
					v := b.CA*xl[j] + b.CB*e
					for h := range hist {
						v += b.CH[h] * hist[h][j]
					}
					x0[j] = b.CE*xl[j] + b.CF*e
					xl[j] = v
				}
				l, err := lin.Coeffs(i)
				require.NoError(t, err)
				hist = append([][]float32{x0}, hist...)
				if len(hist) > len(l.H) {
					hist = hist[:len(l.H)]
				}
				fused.add(xl, steps[k*n:(k+1)*n], "fused")
			}
			t.Logf("%s: %d steps from index %d of %d: Step vs pipeline max abs %.3g rel %.3g; float32 Blend loop max abs %.3g",
				tc.prefix, params.Steps, begin, s.NumSteps(), stat.abs, stat.rel, fused.abs)
			assert.Zero(t, stat.bad, "latents off the pipeline's (first at %s)", stat.where)
			assert.Zero(t, fused.bad, "fused-coefficient latents off the pipeline's (first at %s)", fused.where)
		})
	}
}
