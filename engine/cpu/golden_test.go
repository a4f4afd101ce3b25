package cpu

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/internal/npy"
)

// Goldens from testdata/make_goldens.py (PyTorch 2.5.1, float32). Tolerance: abs <= 1e-5
// for bicubic/bilinear and P, exact for nearest; masks exact except at pixels whose
// window holds a torch P or upsampled L within 1e-5 of its threshold.

type resizeCase struct {
	Name   string `json:"name"`
	Planes int    `json:"planes"`
	InH    int    `json:"in_h"`
	InW    int    `json:"in_w"`
	OutH   int    `json:"out_h"`
	OutW   int    `json:"out_w"`
	Rows   []int  `json:"rows"` // stored output rows; nil = all
}

type fuseCase struct {
	Name   string `json:"name"`
	Batch  int    `json:"batch"`
	GridH  int    `json:"grid_h"`
	GridW  int    `json:"grid_w"`
	Height int    `json:"height"`
	Width  int    `json:"width"`
	LatH   int    `json:"lat_h"`
	LatW   int    `json:"lat_w"`
	Radius int    `json:"radius"`
	Align  bool   `json:"align"`
}

type goldenCases struct {
	Torch  string       `json:"torch"`
	Resize []resizeCase `json:"resize"`
	Fuse   []fuseCase   `json:"fuse"`
}

func loadCases(t *testing.T) *goldenCases {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "cases.json"))
	require.NoError(t, err)
	var c goldenCases
	require.NoError(t, json.Unmarshal(b, &c))
	require.NotEmpty(t, c.Resize)
	require.NotEmpty(t, c.Fuse)
	return &c
}

func readNpy(t *testing.T, name string) []float32 {
	t.Helper()
	a, err := npy.ReadFile(filepath.Join("testdata", name+".npy"))
	require.NoError(t, err)
	require.NotNil(t, a.F32, "%s is not float32", name)
	return a.F32
}

func maxAbsDiff(a, b []float32) (float64, int) {
	worst, at := 0.0, -1
	for i := range a {
		d := math.Abs(float64(a[i]) - float64(b[i]))
		if d > worst || math.IsNaN(d) {
			worst, at = d, i
		}
	}
	return worst, at
}

func TestResizeMatchesTorch(t *testing.T) {
	cases := loadCases(t)
	modes := map[string]engine.ResizeMode{"bicubic": engine.ResizeBicubic, "bilinear": engine.ResizeBilinear, "nearest": engine.ResizeNearest}
	tols := map[string]float64{"bicubic": 1e-5, "bilinear": 1e-5, "nearest": 0}
	for _, c := range cases.Resize {
		for mname, mode := range modes {
			t.Run(c.Name+"/"+mname, func(t *testing.T) {
				in := readNpy(t, "resize_"+c.Name+"_in")
				want := readNpy(t, "resize_"+c.Name+"_"+mname)
				got := make([]float32, c.Planes*c.OutH*c.OutW)
				require.NoError(t, Resize(mode, in, c.Planes, c.InH, c.InW, got, c.OutH, c.OutW))
				if c.Rows != nil { // keep the stored rows only
					sel := make([]float32, 0, len(want))
					for n := 0; n < c.Planes; n++ {
						for _, r := range c.Rows {
							sel = append(sel, got[(n*c.OutH+r)*c.OutW:(n*c.OutH+r+1)*c.OutW]...)
						}
					}
					got = sel
				}
				require.Len(t, got, len(want))
				d, at := maxAbsDiff(got, want)
				t.Logf("max |diff| vs torch %.3g", d)
				assert.LessOrEqualf(t, d, tols[mname], "max |diff| %.3g at %d", d, at)
			})
		}
	}
}

func TestFuseMapsMatchesTorch(t *testing.T) {
	for _, c := range loadCases(t).Fuse {
		t.Run(c.Name, func(t *testing.T) {
			p := engine.DefaultFuseParams(c.Height, c.Width)
			p.GridH, p.GridW, p.LatentH, p.LatentW, p.Radius = c.GridH, c.GridW, c.LatH, c.LatW, c.Radius
			good := readNpy(t, "fuse_"+c.Name+"_good")
			var align []float32
			if c.Align {
				align = readNpy(t, "fuse_"+c.Name+"_align")
			}
			HW, hw := c.Height*c.Width, c.LatH*c.LatW
			out := FuseMapsOut{
				Score: make([]float32, c.Batch), PMap: make([]float32, c.Batch*HW),
				MaskImg: make([]float32, c.Batch*HW), MaskLat: make([]float32, c.Batch*hw),
			}
			require.NoError(t, FuseMaps(p, c.Batch, good, align, out))

			d, at := maxAbsDiff(out.Score, readNpy(t, "fuse_"+c.Name+"_score"))
			assert.LessOrEqualf(t, d, 1e-6, "score: max |diff| %.3g at %d", d, at)
			wantP := readNpy(t, "fuse_"+c.Name+"_pmap")
			d, at = maxAbsDiff(out.PMap, wantP)
			t.Logf("pmap: max |diff| vs torch %.3g", d)
			assert.LessOrEqualf(t, d, 1e-5, "pmap: max |diff| %.3g at %d", d, at)

			// Threshold-adjacent pixels (by torch's own P and L), dilated like the mask.
			lup := readNpy(t, "fuse_"+c.Name+"_lup")
			amb := make([]float32, len(wantP))
			for i := range amb {
				if math.Abs(float64(wantP[i]-p.PerceptualBound)) <= 1e-5 || math.Abs(float64(lup[i]-p.PerceptualGate)) <= 1e-5 {
					amb[i] = 1
				}
			}
			ambD := make([]float32, len(amb))
			require.NoError(t, Dilate(amb, c.Batch, c.Height, c.Width, c.Radius, ambD))
			ambL := make([]float32, c.Batch*hw)
			require.NoError(t, DownsampleNearest(ambD, c.Batch, c.Height, c.Width, ambL, c.LatH, c.LatW))
			for _, m := range []struct {
				name      string
				got, want []float32
				amb       []float32
			}{
				{"mask_img", out.MaskImg, readNpy(t, "fuse_"+c.Name+"_mask_img"), ambD},
				{"mask_lat", out.MaskLat, readNpy(t, "fuse_"+c.Name+"_mask_lat"), ambL},
			} {
				bad, excused, ones := 0, 0, 0
				for i := range m.want {
					if m.want[i] == 1 {
						ones++
					}
					if m.got[i] != m.want[i] {
						if m.amb[i] != 0 {
							excused++
						} else {
							bad++
						}
					}
				}
				t.Logf("%s: %d/%d set, %d threshold-adjacent differences", m.name, ones, len(m.want), excused)
				assert.Zerof(t, bad, "%s: %d values differ from torch", m.name, bad)
			}
		})
	}
}
