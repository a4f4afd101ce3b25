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
	"github.com/grefine/grefine/internal/testkit/rgbpng"
)

// TestResizeImageMatchesPillow: ResizeImage equals Pillow's BICUBIC resize byte for byte
// (testdata/pillow, made by its make_goldens.py): down, up, ragged, one side unchanged, and
// CLIP's squash of tall images, where Pillow 13 runs the vertical pass first.
func TestResizeImageMatchesPillow(t *testing.T) {
	var cases struct {
		Pillow string
		Cases  []struct {
			Src, Dst string
			W, H     int
		}
	}
	b, err := os.ReadFile("testdata/pillow/resize_cases.json")
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &cases))
	require.NotEmpty(t, cases.Cases)
	vfirst := 0
	for _, c := range cases.Cases {
		t.Run(c.Dst, func(t *testing.T) {
			src, iw, ih := rgbpng.Read(t, filepath.Join("testdata", "pillow", c.Src))
			want, ow, oh := rgbpng.Read(t, filepath.Join("testdata", "pillow", c.Dst))
			require.Equal(t, [2]int{c.W, c.H}, [2]int{ow, oh})
			got := make([]uint8, len(want))
			require.NoError(t, ResizeImage(src, ih, iw, got, oh, ow, engine.Resample{}))
			assert.Equal(t, want, got, "bytes differing from Pillow %s", cases.Pillow)
			if ih-oh > 0 && ih-oh > 2*(iw-ow) {
				vfirst++
			}
		})
	}
	assert.GreaterOrEqual(t, vfirst, 2, "cases where Pillow 13 runs the vertical pass first")
	assert.ErrorIs(t, ResizeImage(make([]uint8, 3), 1, 1, make([]uint8, 6), 1, 1, engine.Resample{}), engine.ErrShape)
	assert.ErrorIs(t, ResizeImage(make([]uint8, 3), 1, 1, make([]uint8, 3), 1, 1, engine.Resample{Filter: 9}), engine.ErrShape)
	assert.ErrorIs(t, ResizeImage(make([]uint8, 12), 2, 2, make([]uint8, 3), 1, 1, engine.Resample{Box: &[4]float64{0, 0, 3, 1}}), engine.ErrShape)
}

// TestResizeImageMatchesPillowFiltersAndBoxes: ResizeImage with Lanczos and Pillow's box
// (fractional, zero-extent and integral) equals Pillow 13 byte for byte on the RGB cases of
// the tiling goldens (testdata/goldens/tiles pil_*, made by tools/export/tiles_ref.py).
func TestResizeImageMatchesPillowFiltersAndBoxes(t *testing.T) {
	dir := filepath.Join("..", "..", "testdata", "goldens", "tiles")
	var cases struct {
		PIL []struct {
			Name, Source, Filter string
			Width, Height        int
			Box                  []float64
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "crop_cases.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &cases))
	src, iw, ih := rgbpng.Read(t, filepath.Join(dir, "resize_source.png"))
	ran := 0
	for _, c := range cases.PIL {
		if c.Source == "l" {
			continue // mode L: engine/pillow's own test
		}
		t.Run(c.Name, func(t *testing.T) {
			want, ow, oh := rgbpng.Read(t, filepath.Join(dir, "pil_"+c.Name+".png"))
			r := engine.Resample{Filter: map[string]engine.ResampleFilter{"bicubic": engine.ResampleBicubic, "lanczos": engine.ResampleLanczos}[c.Filter]}
			if c.Box != nil {
				r.Box = &[4]float64{c.Box[0], c.Box[1], c.Box[2], c.Box[3]}
			}
			got := make([]uint8, len(want))
			require.NoError(t, ResizeImage(src, ih, iw, got, oh, ow, r))
			assert.Equal(t, want, got, "bytes differing from Pillow 13")
			ran++
		})
	}
	assert.GreaterOrEqual(t, ran, 8)
}

// TestCLIPPreprocessingGolden: ResizeImage to 224² then ToPlanar with CLIP's mean and std
// equals the Python reference (PIL BICUBIC squash, /255, normalise) made by tools/export.
func TestCLIPPreprocessingGolden(t *testing.T) {
	src, w, h := rgbpng.Read(t, filepath.Join("..", "..", "testdata", "images", "sample.png"))
	want, err := npy.ReadFile(filepath.Join("..", "..", "testdata", "goldens", "preprocess_sample.npy"))
	require.NoError(t, err)
	small := make([]uint8, 3*224*224)
	require.NoError(t, ResizeImage(src, h, w, small, 224, 224, engine.Resample{}))
	got := make([]float32, 3*224*224)
	require.NoError(t, ToPlanar(small, got, [3]float32{0.48145466, 0.4578275, 0.40821073}, [3]float32{0.26862954, 0.26130258, 0.27577711}))
	require.Len(t, got, len(want.F32))
	worst := 0.0
	for i := range got {
		worst = math.Max(worst, math.Abs(float64(got[i]-want.F32[i])))
	}
	t.Logf("CLIP preprocessing: max abs error vs Python = %.3g", worst)
	assert.LessOrEqual(t, worst, 1e-6)
}

func TestPlanarAndPaste(t *testing.T) {
	rgb := []uint8{255, 0, 51, 128, 255, 0}
	x := make([]float32, 6)
	require.NoError(t, ToPlanar(rgb, x, [3]float32{0.5, 0.5, 0.5}, [3]float32{0.25, 0.5, 1}))
	assert.InDelta(t, 2.0, x[0], 1e-6) // (1-0.5)/0.25
	assert.InDelta(t, 1.0, x[3], 1e-6) // G of pixel 1: (1-0.5)/0.5 (planes of n=2 values)
	assert.InDelta(t, float32(128)/255-0.5, x[1]*0.25, 1e-6)
	plain := make([]float32, 6)
	require.NoError(t, ToPlanar(rgb, plain, [3]float32{}, [3]float32{1, 1, 1}))
	assert.Equal(t, float32(51)/255, plain[4], "mean 0, std 1: the plain [0,1] image")
	back := make([]uint8, 6)
	require.NoError(t, FromPlanar(plain, back))
	assert.Equal(t, rgb, back, "8-bit values survive the round trip")
	require.NoError(t, FromPlanar([]float32{-1, 2, 0.5, 0.499, 1, 0}, back))
	assert.Equal(t, []uint8{0, 128, 255, 255, 127, 0}, back, "clamped, rounded to nearest")
	dst := []uint8{1, 1, 1, 2, 2, 2}
	require.NoError(t, Paste(dst, []uint8{9, 9, 9, 8, 8, 8}, []float32{1, 0.4}))
	assert.Equal(t, []uint8{1, 1, 1, 8, 8, 8}, dst, "pixels outside the mask (< 0.5) come from src")
	assert.ErrorIs(t, Paste(dst, dst, []float32{1}), engine.ErrShape)
}

func TestPointwise(t *testing.T) {
	x := []float32{-1, 0.25, 0.5, 2}
	y := []float32{0, 1, -1, 3}
	run := func(p engine.Pointwise, a PointwiseArgs) []float32 {
		t.Helper()
		require.NoError(t, Pointwise(p, a))
		return a.Dst
	}
	out := func(n int) []float32 { return make([]float32, n) }
	assert.Equal(t, []float32{-3, -0.5, 0, 3}, run(engine.Pointwise{Op: engine.PointAffine, A: 2, B: -1}, PointwiseArgs{Src: x, Dst: out(4)}))
	assert.Equal(t, []float32{0, 0.625, 0.75, 1}, run(engine.Pointwise{Op: engine.PointAffine, A: 0.5, B: 0.5, Clamp01: true}, PointwiseArgs{Src: x, Dst: out(4)}))
	s := 0.13025
	sc := run(engine.Pointwise{Op: engine.PointScale, S: s}, PointwiseArgs{Src: x, Dst: out(8)})
	assert.Equal(t, float32(float64(x[1])*s), sc[1])
	assert.Equal(t, sc[:4], sc[4:], "two copies")
	assert.Equal(t, float32(float64(x[1])/s), run(engine.Pointwise{Op: engine.PointUnscale, S: s}, PointwiseArgs{Src: x, Dst: out(4)})[1],
		"a division, not a multiplication by 1/s")
	assert.Equal(t, float32(0.3*float64(x[3])+0.7*float64(y[3])), run(engine.Pointwise{Op: engine.PointLerp, S: 0.3, T: 0.7}, PointwiseArgs{Src: x, Src2: y, Dst: out(4)})[3])
	assert.Equal(t, []float32{0, 1, 0.5, 3}, run(engine.Pointwise{Op: engine.PointMaximum}, PointwiseArgs{Src: x, Src2: y, Dst: out(4)}))
	assert.Equal(t, []float32{0, 0, 0, 1}, run(engine.Pointwise{Op: engine.PointGreater, A: 0.5}, PointwiseArgs{Src: x, Dst: out(4)}))
	assert.Equal(t, []float32{0, 0, 1, 1}, run(engine.Pointwise{Op: engine.PointAtLeast, A: 0.5}, PointwiseArgs{Src: x, Dst: out(4)}))
	assert.Equal(t, []float32{0, 0, 1.5, 0}, run(engine.Pointwise{Op: engine.PointMaskedAffine, A: 1, B: 1}, PointwiseArgs{Src: x, Mask: []float32{0, 1}, Dst: out(4)}),
		"mask per pixel, repeated over the planes")
	inPlace := append([]float32(nil), x...)
	assert.Equal(t, []float32{0, 0, 1, 1}, run(engine.Pointwise{Op: engine.PointAtLeast, A: 0.5}, PointwiseArgs{Src: inPlace, Dst: inPlace}))
	for _, bad := range []struct {
		p engine.Pointwise
		a PointwiseArgs
	}{
		{engine.Pointwise{Op: engine.PointScale}, PointwiseArgs{Src: x, Dst: out(6)}},
		{engine.Pointwise{Op: engine.PointLerp}, PointwiseArgs{Src: x, Dst: out(4)}},
		{engine.Pointwise{Op: engine.PointMaskedAffine}, PointwiseArgs{Src: x, Mask: out(3), Dst: out(4)}},
		{engine.Pointwise{Op: engine.PointAffine}, PointwiseArgs{Src: x, Dst: out(3)}},
		{engine.Pointwise{Op: 99}, PointwiseArgs{Src: x, Dst: out(4)}},
	} {
		assert.ErrorIs(t, Pointwise(bad.p, bad.a), engine.ErrShape, bad.p.Op.String())
	}
	assert.Equal(t, int64(2), CountAtLeast(x, 0.5))
	assert.Equal(t, int64(0), CountAtLeast(nil, 0.5))
}

func TestGoodProbs(t *testing.T) {
	// D = 2, T = 2, B = 1. pq_text rows: (good, bad) per dimension.
	tokens := []float32{1, 0, 0, 1}
	pqText := []float32{
		2, 0, 0, 0, // dim 0: good = e0*2, bad = 0
		0, 0, 0, 3, // dim 1: good = 0, bad = e1*3
		1, 1, 1, 1, // dim 2: equal
		-1, 0, 1, 0, // dim 3
	}
	g := make([]float32, 8)
	require.NoError(t, GoodProbs(tokens, 1, 2, 2, pqText, g))
	sig := func(x float64) float32 { return float32(1 / (1 + math.Exp(-x))) }
	want := []float32{sig(2), sig(0), sig(0), sig(-3), 0.5, 0.5, sig(-2), sig(0)}
	for i := range want {
		assert.InDelta(t, want[i], g[i], 1e-7, "index %d", i)
	}
	assert.ErrorIs(t, GoodProbs(tokens, 1, 2, 2, pqText[:7], g), engine.ErrShape)
	assert.ErrorIs(t, GoodProbs(tokens[:3], 1, 2, 2, pqText, g), engine.ErrShape)
	// Extreme logits saturate without NaN.
	g2 := make([]float32, 4)
	require.NoError(t, GoodProbs([]float32{1}, 1, 1, 1, []float32{1e4, -1e4, -1e4, 1e4, 0, 0, 0, 0}, g2))
	assert.Equal(t, []float32{1, 0, 0.5, 0.5}, g2)
}

func TestEnsembleAndScatter(t *testing.T) {
	emb := []float32{3, 0, 0, 4} // two rows of D=2: normalised (1,0), (0,1); mean (.5,.5)
	f := make([]float32, 2)
	require.NoError(t, Ensemble(emb, 1, 2, 2, []float32{0.1, 0.2}, f))
	s := float32(math.Sqrt(0.5))
	assert.InDelta(t, s-0.1, f[0], 1e-6)
	assert.InDelta(t, s-0.2, f[1], 1e-6)
	z := make([]float32, 2)
	require.NoError(t, Ensemble([]float32{0, 0}, 1, 1, 2, nil, z))
	assert.Equal(t, []float32{0, 0}, z, "a zero embedding stays zero, no NaN")
	two := make([]float32, 4)
	require.NoError(t, Ensemble([]float32{3, 0, 0, 4, 0, 1, 0, 2}, 2, 2, 2, nil, two))
	assert.InDelta(t, s, two[0], 1e-6)
	assert.Equal(t, []float32{0, 1}, two[2:], "each text its own K rows")
	assert.ErrorIs(t, Ensemble(emb, 1, 3, 2, nil, f), engine.ErrShape)

	dst := []float32{9, 9, 9, 9, 9, 9}
	require.NoError(t, ScatterRows([]float32{1, 2, 3, 4}, []int32{2, 0}, dst, 2))
	assert.Equal(t, []float32{3, 4, 9, 9, 1, 2}, dst)
	assert.ErrorIs(t, ScatterRows([]float32{1, 2}, []int32{3}, dst, 2), engine.ErrShape, "an index outside the rows")
}

func TestTextMaps(t *testing.T) {
	// 2×2 grid, D=2: patch similarities with f = (0, 1) are 1, 2, 3, 4 (index order).
	tokens := []float32{1, 0, 0, 1, 0, 2, 0, 3, 0, 4}
	dst := make([]float32, 16)
	require.NoError(t, TextMaps(tokens, 2, 2, 2, []float32{0, 1}, 4, 4, dst))
	assert.InDelta(t, 0, dst[0], 1e-6, "min-max normalised: the lowest patch is 0")
	assert.InDelta(t, 1, dst[15], 1e-6, "the highest is 1")
	want := make([]float32, 16)
	require.NoError(t, ResizeBilinear([]float32{0, 1.0 / 3, 2.0 / 3, 1}, 1, 2, 2, want, 4, 4))
	for i := range want {
		assert.InDelta(t, want[i], dst[i], 1e-6)
	}
	// Two features: the elementwise max; none: zeros.
	both := make([]float32, 16)
	require.NoError(t, TextMaps(tokens, 2, 2, 2, []float32{0, 1, 0, -1}, 4, 4, both))
	for i := range both {
		assert.GreaterOrEqual(t, both[i], dst[i])
	}
	assert.InDelta(t, 1, both[0], 1e-6, "the reversed map is 1 where the first is 0")
	none := []float32{5, 5, 5, 5}
	require.NoError(t, TextMaps(tokens, 2, 2, 2, nil, 2, 2, none))
	assert.Equal(t, []float32{0, 0, 0, 0}, none)
	assert.ErrorIs(t, TextMaps(tokens[:8], 2, 2, 2, nil, 2, 2, none), engine.ErrShape)
}

func TestEmphasis(t *testing.T) {
	h := []float32{1, 2, 3, 4, 5, 6}
	ones := []float32{1, 1, 1}
	orig := append([]float32(nil), h...)
	require.NoError(t, Emphasis(h, 2, ones))
	assert.Equal(t, orig, h, "all-ones weights leave the states unchanged")
	require.NoError(t, Emphasis(h, 2, []float32{1, 1.1, 1}))
	var before, after float64
	for i := range h {
		before += float64(orig[i])
		after += float64(h[i])
	}
	assert.InDelta(t, before, after, 1e-5, "the mean is restored")
	assert.Greater(t, h[2]/orig[2], h[0]/orig[0], "the weighted row grows relative to the others")
	assert.ErrorIs(t, Emphasis(h, 4, ones), engine.ErrShape)
}

// TestWaveletBlurSeparable checks the separable blur against the direct 3×3 dilated
// convolution with replicate padding (PASD's wavelet_blur).
func TestWaveletBlurSeparable(t *testing.T) {
	C, H, W := 2, 7, 11
	src := make([]float32, C*H*W)
	for i := range src {
		src[i] = float32((i*37)%101) / 100
	}
	for _, r := range []int{1, 2, 4, 8, 16} {
		got := make([]float32, len(src))
		WaveletBlur(src, got, C, H, W, r)
		k := [3]float64{1, 2, 1}
		cl := func(v, n int) int { return min(max(v, 0), n-1) }
		for c := 0; c < C; c++ {
			for y := 0; y < H; y++ {
				for x := 0; x < W; x++ {
					want := 0.0
					for dy := -1; dy <= 1; dy++ {
						for dx := -1; dx <= 1; dx++ {
							want += k[dy+1] * k[dx+1] / 16 * float64(src[c*H*W+cl(y+dy*r, H)*W+cl(x+dx*r, W)])
						}
					}
					assert.InDelta(t, want, got[c*H*W+y*W+x], 1e-6, "r=%d c=%d y=%d x=%d", r, c, y, x)
				}
			}
		}
	}
}

func TestColorFix(t *testing.T) {
	C, H, W := 3, 9, 13
	content, style := make([]float32, C*H*W), make([]float32, C*H*W)
	for i := range content {
		content[i] = float32((i*29)%97) / 96
		style[i] = 0.25
	}
	out := make([]float32, C*H*W)
	require.NoError(t, ColorFix(content, content, C, H, W, 5, out))
	for i := range out {
		assert.InDelta(t, content[i], out[i], 1e-5, "high + low of the same image is the image")
	}
	require.NoError(t, ColorFix(content, style, C, H, W, 5, out))
	mean := 0.0
	for _, v := range out {
		assert.True(t, v >= 0 && v <= 1)
		mean += float64(v)
	}
	assert.InDelta(t, 0.25, mean/float64(len(out)), 0.05, "the colour (low band) comes from style, not content (mean 0.5)")
	assert.ErrorIs(t, ColorFix(content, style, C, H, W, 0, out), engine.ErrShape)
}
