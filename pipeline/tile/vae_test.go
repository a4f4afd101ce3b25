package tile

import (
	"context"
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/internal/testkit/testenv"
)

func TestVAEValidate(t *testing.T) {
	for name, c := range map[string]struct {
		v  VAE
		ok bool
	}{
		"diffusers SDXL":        {VAE{1024, 0.25, 8}, true},
		"diffusers SD-1.5":      {VAE{512, 0.25, 8}, true},
		"half overlap":          {VAE{32, 0.5, 8}, true},
		"no overlap":            {VAE{64, 0, 8}, true},
		"3/8":                   {VAE{64, 0.375, 8}, true},
		"not a multiple of 8":   {VAE{100, 0.25, 8}, false},
		"too small":             {VAE{8, 0.25, 8}, false},
		"too large":             {VAE{8192, 0.25, 8}, false},
		"overlap beyond half":   {VAE{64, 0.75, 8}, false},
		"negative overlap":      {VAE{64, -0.1, 8}, false},
		"NaN overlap":           {VAE{64, math.NaN(), 8}, false},
		"misaligned (48, 0.25)": {VAE{48, 0.25, 8}, false}, // stride 36 px is 4.5 latents
		"misaligned (64, 0.3)":  {VAE{64, 0.3, 8}, false},
		"no factor":             {VAE{64, 0.25, 0}, false},
	} {
		err := c.v.Validate()
		if c.ok {
			assert.NoError(t, err, name)
		} else {
			assert.True(t, errors.Is(err, ErrConfig), "%s: %v", name, err)
		}
	}
	_, err := VAE{64, 0.25, 8}.EncodePlan(100, 64)
	assert.True(t, errors.Is(err, ErrShape), "an image side that is not a multiple of 8: %v", err)
	_, err = VAE{64, 0.25, 8}.DecodePlan(0, 4)
	assert.True(t, errors.Is(err, ErrShape))
}

func checkAxis(t *testing.T, what string, got Axis, want goldenAxis) {
	t.Helper()
	assert.Equal(t, want.Starts, got.Starts, "%s starts", what)
	assert.Equal(t, want.Sizes, got.Sizes, "%s sizes", what)
	assert.Equal(t, [4]int{want.Tile, want.Stride, want.Blend, want.Keep}, [4]int{got.Tile, got.Stride, got.Blend, got.Keep},
		"%s tile, stride, blend, keep", what)
}

// The layouts are diffusers' (the tiles its loops made, recorded by tiles_ref.py).
func TestVAEPlansMatchDiffusers(t *testing.T) {
	for _, c := range vaeCases(t) {
		v := VAE{Tile: c.Tile, Overlap: c.Overlap, Factor: 8}
		require.NoError(t, v.Validate(), c.Name)
		require.Equal(t, c.TileLatent, v.TileLatent())
		e, err := v.EncodePlan(c.Height, c.Width)
		require.NoError(t, err)
		d, err := v.DecodePlan(c.Height/8, c.Width/8)
		require.NoError(t, err)
		checkAxis(t, c.Name+" encode y", e.Rows, c.Encode.Y)
		checkAxis(t, c.Name+" encode x", e.Cols, c.Encode.X)
		checkAxis(t, c.Name+" decode y", d.Rows, c.Decode.Y)
		checkAxis(t, c.Name+" decode x", d.Cols, c.Decode.X)
		assert.True(t, e.Tiled() && d.Tiled())
		assert.Equal(t, [2]int{c.Height / 8, c.Width / 8}, [2]int{e.OutH, e.OutW})
		assert.Equal(t, [2]int{c.Height, c.Width}, [2]int{d.OutH, d.OutW})
	}
}

func splitTiles(t *testing.T, flat []float32, ts []Tile, C int) [][]float32 {
	t.Helper()
	outs := make([][]float32, len(ts))
	off := 0
	for k, tl := range ts {
		n := C * tl.OutH * tl.OutW
		require.LessOrEqual(t, off+n, len(flat))
		outs[k] = append([]float32(nil), flat[off:off+n]...)
		off += n
	}
	require.Equal(t, len(flat), off, "the golden holds exactly the planned tiles")
	return outs
}

// Stitch on diffusers' own tile outputs gives diffusers' result bit for bit: the same
// blend order (in place), the same float32 arithmetic, the same cut.
func TestStitchEqualsDiffusersBitForBit(t *testing.T) {
	for _, c := range vaeCases(t) {
		v := VAE{Tile: c.Tile, Overlap: c.Overlap, Factor: 8}
		for _, enc := range []bool{true, false} {
			var p Plan
			var err error
			name, C := "dec", 3
			if enc {
				p, err = v.EncodePlan(c.Height, c.Width)
				name, C = "enc", 4
			} else {
				p, err = v.DecodePlan(c.Height/8, c.Width/8)
			}
			require.NoError(t, err)
			outs := splitTiles(t, tilesNpy(t, "vae_"+c.Name+"_"+name+"_tiles.npy").F32, p.Tiles(), C)
			got, err := p.Stitch(outs, C)
			require.NoError(t, err)
			want := tilesNpy(t, "vae_"+c.Name+"_"+name+".npy").F32
			require.Len(t, got, len(want))
			diff := 0
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					diff++
				}
			}
			assert.Zero(t, diff, "%s %s: values differing from diffusers (max abs %.3g)", c.Name, name, testenv.MaxAbs(t, got, want))
		}
	}
}

// Tolerances against diffusers with the networks on ONNX Runtime: 1e-4 max abs for the
// latents and the decoded images (the untiled ORT-vs-PyTorch VAE parity is ~1e-6 here;
// the blend is a convex combination, so it cannot amplify the per-tile error).
const vaeTol = 1e-4

// The tiled encode and decode, end to end with the tiny set's VAE engines on ONNX
// Runtime, match diffusers' tiled VAE: every tile, and the stitched result.
func TestTiledVAEMatchesDiffusersWithORT(t *testing.T) {
	ctx := context.Background()
	e := tinyEngines(t, "sdxl_vae_encoder", "sdxl_vae_decoder", "pasd_vae_encoder", "pasd_vae_decoder")
	for _, c := range vaeCases(t) {
		v := VAE{Tile: c.Tile, Overlap: c.Overlap, Factor: 8}
		ep, err := v.EncodePlan(c.Height, c.Width)
		require.NoError(t, err)
		var tiles [][]float32
		z, err := ep.Run(ctx, tilesNpy(t, "vae_"+c.Name+"_image.npy").F32, 3, 4, e.vaeRun(c.VAE, true, &tiles))
		require.NoError(t, err)
		eTiles := testenv.MaxAbs(t, flatten(tiles), tilesNpy(t, "vae_"+c.Name+"_enc_tiles.npy").F32)
		eEnc := testenv.MaxAbs(t, z, tilesNpy(t, "vae_"+c.Name+"_enc.npy").F32)

		dp, err := v.DecodePlan(c.Height/8, c.Width/8)
		require.NoError(t, err)
		tiles = nil
		// decode diffusers' latent, so the decode is checked on its own
		img, err := dp.Run(ctx, tilesNpy(t, "vae_"+c.Name+"_enc.npy").F32, 4, 3, e.vaeRun(c.VAE, false, &tiles))
		require.NoError(t, err)
		dTiles := testenv.MaxAbs(t, flatten(tiles), tilesNpy(t, "vae_"+c.Name+"_dec_tiles.npy").F32)
		eDec := testenv.MaxAbs(t, img, tilesNpy(t, "vae_"+c.Name+"_dec.npy").F32)
		t.Logf("%s (%d+%d tiles): encode tiles %.3g, encode %.3g, decode tiles %.3g, decode %.3g (diffusers' own tiled-vs-untiled encode: %.3g)",
			c.Name, ep.Count(), dp.Count(), eTiles, eEnc, dTiles, eDec, c.UntiledVsTiledEn)
		for what, d := range map[string]float64{"encode tiles": eTiles, "encode": eEnc, "decode tiles": dTiles, "decode": eDec} {
			assert.LessOrEqual(t, d, vaeTol, "%s %s", c.Name, what)
		}
	}
}

func flatten(xs [][]float32) []float32 {
	var out []float32
	for _, x := range xs {
		out = append(out, x...)
	}
	return out
}

// An input no larger than the tile takes diffusers' untiled path: one call with the whole
// input, whose output comes back unchanged (small images keep their bytes).
func TestUntiledPlanIsOneCall(t *testing.T) {
	ctx := context.Background()
	v := VAE{Tile: 64, Overlap: 0.25, Factor: 8}
	p, err := v.EncodePlan(64, 48)
	require.NoError(t, err)
	assert.False(t, p.Tiled())
	x := make([]float32, 3*64*48)
	calls := 0
	want := make([]float32, 4*8*6)
	for i := range want {
		want[i] = float32(i)
	}
	got, err := p.Run(ctx, x, 3, 4, func(_ context.Context, tl Tile, in []float32) ([]float32, error) {
		calls++
		assert.Equal(t, Tile{H: 64, W: 48, OutH: 8, OutW: 6}, tl)
		assert.Same(t, &x[0], &in[0], "the input itself, not a copy")
		return want, nil
	})
	require.NoError(t, err)
	assert.Equal(t, 1, calls)
	assert.Same(t, &want[0], &got[0])
	d, err := v.DecodePlan(8, 8)
	require.NoError(t, err)
	assert.False(t, d.Tiled(), "8x8 latents = the 64 px tile")
	d, err = v.DecodePlan(8, 9)
	require.NoError(t, err)
	assert.True(t, d.Tiled())
}

func TestRunChecksShapesAndCancels(t *testing.T) {
	v := VAE{Tile: 32, Overlap: 0.25, Factor: 8}
	p, err := v.EncodePlan(64, 64)
	require.NoError(t, err)
	ok := func(_ context.Context, tl Tile, _ []float32) ([]float32, error) {
		return make([]float32, 4*tl.OutH*tl.OutW), nil
	}
	_, err = p.Run(context.Background(), make([]float32, 10), 3, 4, ok)
	assert.True(t, errors.Is(err, ErrShape), "short input: %v", err)
	_, err = p.Run(context.Background(), make([]float32, 3*64*64), 3, 4,
		func(_ context.Context, tl Tile, _ []float32) ([]float32, error) { return make([]float32, 5), nil })
	assert.True(t, errors.Is(err, ErrShape), "wrong output size: %v", err)
	boom := errors.New("engine failed")
	_, err = p.Run(context.Background(), make([]float32, 3*64*64), 3, 4,
		func(_ context.Context, tl Tile, _ []float32) ([]float32, error) { return nil, boom })
	assert.True(t, errors.Is(err, boom))
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	_, err = p.Run(ctx, make([]float32, 3*64*64), 3, 4, func(c context.Context, tl Tile, in []float32) ([]float32, error) {
		calls++
		cancel()
		return ok(c, tl, in)
	})
	assert.True(t, errors.Is(err, context.Canceled))
	assert.Equal(t, 1, calls, "no tile after the cancel")
	_, err = p.Stitch([][]float32{{1}}, 4)
	assert.True(t, errors.Is(err, ErrShape))
}
