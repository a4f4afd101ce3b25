package tile

import (
	"context"
	"encoding/json"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/internal/npy"
	"github.com/grefine/grefine/internal/testkit/testenv"
	"github.com/grefine/grefine/pipeline/imageio"
)

// Goldens of tools/export/tiles_ref.py.
func tilesPath(t testing.TB, name string) string {
	return testenv.Path(t, "testdata", "goldens", "tiles", name)
}

func tilesNpy(t testing.TB, name string) *npy.Array {
	t.Helper()
	a, err := npy.ReadFile(tilesPath(t, name))
	require.NoError(t, err)
	return a
}

func tilesJSON(t testing.TB, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(tilesPath(t, name))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, v))
}

func tilesPNG(t testing.TB, name string) *imageio.RGB8 {
	t.Helper()
	m, err := imageio.ReadFile(tilesPath(t, name), imageio.DefaultLimits)
	require.NoError(t, err)
	return m
}

// tilesGray reads an L PNG (decoded as equal RGB channels).
func tilesGray(t testing.TB, name string) *imageio.Gray8 {
	t.Helper()
	m := tilesPNG(t, name)
	g := imageio.NewGray8(m.W, m.H)
	for i := range g.Pix {
		g.Pix[i] = m.Pix[3*i]
	}
	return g
}

func countDiff(a, b []uint8) int {
	n := 0
	for i := range a {
		if a[i] != b[i] {
			n++
		}
	}
	return n
}

// vaeCase is one entry of vae_cases.json.
type vaeCase struct {
	Name             string
	VAE              string  `json:"vae"`
	Tile             int     `json:"tile_sample_min_size"`
	TileLatent       int     `json:"tile_latent_min_size"`
	Overlap          float64 `json:"tile_overlap_factor"`
	Width, Height    int
	Encode, Decode   struct{ Y, X goldenAxis }
	UntiledVsTiledEn float64 `json:"untiled_vs_tiled_encode_max_abs"`
}

type goldenAxis struct {
	Stride, Blend, Keep, Tile int
	Starts, Sizes             []int
}

func vaeCases(t testing.TB) []vaeCase {
	var f struct {
		Factor int
		Cases  []vaeCase
	}
	tilesJSON(t, "vae_cases.json", &f)
	require.Equal(t, 8, f.Factor)
	require.Len(t, f.Cases, 3)
	return f.Cases
}

// engines runs the tiny set's engines on host tensors (ONNX Runtime on the CPU).
type engines struct {
	t   testing.TB
	set map[string]engine.Engine
}

func tinyEngines(t testing.TB, names ...string) *engines {
	t.Helper()
	b := testenv.ORT(t)
	s := testenv.TinySet(t)
	e := &engines{t: t, set: map[string]engine.Engine{}}
	for _, n := range names {
		en, err := s.OpenEngine(b, n, engine.OpenOptions{})
		require.NoError(t, err)
		t.Cleanup(func() { en.Close() })
		e.set[n] = en
	}
	return e
}

type feed struct {
	name  string
	shape engine.Shape
	data  []float32
}

// run runs engine name on float32 inputs and returns output out's values.
func (e *engines) run(ctx context.Context, name, out string, in ...feed) ([]float32, error) {
	m := map[string]engine.Tensor{}
	for _, f := range in {
		x, err := engine.FromFloat32(f.shape, f.data)
		if err != nil {
			return nil, err
		}
		m[f.name] = x
	}
	res, err := e.set[name].Run(ctx, m)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, v := range res {
			v.Close()
		}
	}()
	return append([]float32(nil), res[out].(*engine.HostTensor).F32...), nil
}

// vaeRun is a RunFunc over the tiny VAE encoder (images [3,h,w] -> latent mean) or
// decoder (latent [4,h,w] -> images), recording each tile's output (copied: Stitch
// blends the returned slices in place).
func (e *engines) vaeRun(group string, encode bool, record *[][]float32) RunFunc {
	return func(ctx context.Context, tl Tile, in []float32) ([]float32, error) {
		var o []float32
		var err error
		if encode {
			o, err = e.run(ctx, group+"_vae_encoder", "latent_mean", feed{"images", engine.Shape{1, 3, int64(tl.H), int64(tl.W)}, in})
		} else {
			o, err = e.run(ctx, group+"_vae_decoder", "images", feed{"latent", engine.Shape{1, 4, int64(tl.H), int64(tl.W)}, in})
		}
		if err == nil && record != nil {
			*record = append(*record, append([]float32(nil), o...))
		}
		return o, err
	}
}
