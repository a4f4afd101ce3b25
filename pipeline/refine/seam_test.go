package refine

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/internal/testkit/testenv"
	"github.com/grefine/grefine/modelset"
	"github.com/grefine/grefine/pipeline/imageio"
	"github.com/grefine/grefine/pipeline/tile"
)

// recorder wraps an engine and keeps a copy of one output of every call (host tensors:
// the cpu device).
type recorder struct {
	engine.Engine
	out   string
	calls [][]float32
}

func (e *recorder) Run(ctx context.Context, in map[string]engine.Tensor) (map[string]engine.Tensor, error) {
	res, err := e.Engine.Run(ctx, in)
	if err == nil {
		e.calls = append(e.calls, append([]float32(nil), res[e.out].(*engine.HostTensor).F32...))
	}
	return res, err
}

type recOpener struct {
	set  *modelset.Set
	recs map[string]*recorder
}

func (o recOpener) OpenEngine(b engine.Backend, name string, opts engine.OpenOptions) (engine.Engine, error) {
	e, err := o.set.OpenEngine(b, name, opts)
	if rec, ok := o.recs[name]; ok && err == nil {
		rec.Engine = e
		return rec, nil
	}
	return e, err
}

// recStream records, on the cpu device, what the stages compute in the middle of an op
// sequence: every averaged prediction (PointDivide's output) and the stitched VAE decode
// before its [-1,1] → [0,1] clamp.
type recStream struct {
	engine.Stream
	avgs, raws [][]float32
}

func (s *recStream) Pointwise(p engine.Pointwise) error {
	if p.Op == engine.PointAffine && p.Clamp01 && len(p.Src.Shape()) == 4 && p.Src.Shape()[1] == 3 {
		s.raws = append(s.raws, append([]float32(nil), p.Src.(*engine.HostTensor).F32...))
	}
	err := s.Stream.Pointwise(p)
	if err == nil && p.Op == engine.PointDivide {
		s.avgs = append(s.avgs, append([]float32(nil), p.Dst.(*engine.HostTensor).F32...))
	}
	return err
}

// gradientImage is a smooth w×h ramp: red along x, green along y, blue their mean.
func gradientImage(w, h int) *imageio.RGB8 {
	img := imageio.NewRGB8(w, h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			u, v := float64(x)/float64(w-1), float64(y)/float64(h-1)
			img.Pix[3*(y*w+x)] = uint8(40 + 175*u)
			img.Pix[3*(y*w+x)+1] = uint8(40 + 175*v)
			img.Pix[3*(y*w+x)+2] = uint8(40 + 87*(u+v))
		}
	}
	return img
}

// TestSeamsThroughTheRefine: a smooth gradient refined by stage 2 in tiles (the real
// Refine, on the cpu device; the UNet and the VAE decoder recorded, the averaged
// predictions and the stitched decode taken from the stream) has no step at a tile border
// above its bound, at every pair of neighbouring pixels:
//
//   - each step's averaged prediction: tile.CheckAverageSeams' bound, the windows' own
//     step plus their disagreement times Σ|Δŵ|/2 (the average is a convex combination of
//     the windows with normalised weights ŵ); and it equals pipeline/tile's Accumulator
//     on the recorded predictions bit for bit;
//   - the decode: tile.CheckSeams' bound (diffusers' blend makes each pixel a convex
//     combination of the raw tiles whose weights move by less than 4/e per pixel, plus 1/4
//     of the spread on the first row of a vertical blend), and it equals Plan.Stitch.
//
// The tiny set's random weights make black-box bounds on the output image meaningless
// (pipeline/tile/PHASE2.md: its own untiled lines step more than a hard cut), so the bound
// is on the tiled quantities, against hard cuts of the same tiles as negative controls.
func TestSeamsThroughTheRefine(t *testing.T) {
	const W, H = 320, 256
	cfg := DefaultConfig()
	cfg.SkipStage1, cfg.ProcessSize, cfg.Steps2 = true, 0, 2
	cfg.Tile, cfg.TileOverlap, cfg.VAETile, cfg.VAETileOverlap = 16, 4, 128, 0.25
	recs := map[string]*recorder{"pasd_unet": {out: "noise_pred"}, "pasd_vae_decoder": {out: "images"}}
	st := &recStream{Stream: testenv.CPUStream(t)}
	r, err := New(testenv.TinySet(t), testenv.ORT(t), Options{Config: cfg, Opener: recOpener{testenv.TinySet(t), recs}, Stream: st})
	require.NoError(t, err)
	t.Cleanup(func() { r.Close() })
	img := gradientImage(W, H)
	res, err := r.Refine(context.Background(), Request{Image: img, Prompt: "a smooth gradient", Mask: make([]float32, W*H), Q: 0.9}, nil)
	require.NoError(t, err)
	tl := res.Stage2.Tiling
	require.NotNil(t, tl, "stage 2 ran in tiles")
	require.NotNil(t, tl.VAE)
	require.NotNil(t, tl.Denoise)
	t.Logf("stage 2 tiling: VAE %+v, denoise %+v, memory %+v", *tl.VAE, *tl.Denoise, tl.Memory)

	h, w := H/8, W/8
	wins := tile.Grid{Tile: 16, Overlap: 4}.Windows(h, w)
	require.Equal(t, len(wins), tl.Denoise.Tiles)
	wt, err := tile.Gaussian.Make(16, 16)
	require.NoError(t, err)
	require.Len(t, st.avgs, cfg.Steps2)
	require.Len(t, recs["pasd_unet"].calls, cfg.Steps2*len(wins), "one UNet call per tile and step (one tile per call on the cpu device)")
	for s, avg := range st.avgs {
		preds := recs["pasd_unet"].calls[s*len(wins) : (s+1)*len(wins)]
		acc, err := tile.NewAccumulator(2, 4, h, w)
		require.NoError(t, err)
		for k, win := range wins {
			require.NoError(t, acc.Add(win, preds[k], wt))
		}
		want := make([]float32, len(avg))
		require.NoError(t, acc.Average(want))
		assert.Equal(t, want, avg, "step %d: the device's average is the Accumulator's, bit for bit", s)
		rep, err := tile.CheckAverageSeams(wins, wt, preds, avg, 2, 4, h, w, 1e-6)
		require.NoError(t, err)
		t.Logf("step %d, averaged prediction: %v", s, rep)
		assert.Zero(t, rep.Violations, "step %d: steps above the bound (worst excess %.3g)", s, rep.WorstExcess)
		assert.Positive(t, rep.BorderSteps)
		cut := tile.HardCut(wins, preds, 2*4, h, w)
		hr, err := tile.CheckAverageSeams(wins, wt, preds, cut, 2, 4, h, w, 1e-6)
		require.NoError(t, err)
		assert.Positive(t, hr.Violations, "step %d: a hard cut breaks the bound (the check can fail)", s)
	}

	p, err := tile.VAE{Tile: 128, Overlap: 0.25, Factor: 8}.DecodePlan(h, w)
	require.NoError(t, err)
	tiles := recs["pasd_vae_decoder"].calls
	require.Len(t, tiles, p.Count())
	require.Len(t, st.raws, 1, "one stitched decode")
	raw := st.raws[0]
	cp := make([][]float32, len(tiles))
	for k := range tiles {
		cp[k] = append([]float32(nil), tiles[k]...)
	}
	stitched, err := p.Stitch(cp, 3)
	require.NoError(t, err)
	assert.Equal(t, stitched, raw, "the device's tiled decode is Plan.Stitch, bit for bit")
	rep := tile.CheckSeams(p, tiles, raw, 3, 0.25)
	t.Logf("decode (%d tiles, blend %d px): %v", len(tiles), p.Rows.Blend, rep)
	assert.Zero(t, rep.Violations, "decode: steps above the bound (worst excess %.3g)", rep.WorstExcess)
	hard := p
	hard.Rows.Blend, hard.Cols.Blend = 0, 0
	for k := range tiles {
		cp[k] = append([]float32(nil), tiles[k]...)
	}
	cut, err := hard.Stitch(cp, 3)
	require.NoError(t, err)
	assert.Positive(t, tile.CheckSeams(p, tiles, cut, 3, 0.25).Violations, "decode: hard cuts break the bound")
}
