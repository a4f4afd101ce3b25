package refine

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/internal/testkit/testenv"
	"github.com/grefine/grefine/pipeline/imageio"
	"github.com/grefine/grefine/pipeline/tile"
)

// The large-image goldens of tools/export/tiles_ref.py (testdata/goldens/tiles) through
// the real stages on the cpu device: tiled VAE, tiled denoising, mask-cropped stage 1.
// Tolerances as the untiled parity tests: latents 1e-4, decoded image 1e-3; the crop's
// working image and mask exactly, its result within 1/255 where it comes from the decode.

func tilesGolden(t testing.TB, name string) *npy32 {
	a := testenv.Golden(t, filepath.Join("tiles", name))
	return &npy32{a.F32, a.Shape}
}

type npy32 struct {
	F32   []float32
	Shape []int64
}

type mdCase struct {
	Name          string
	Width, Height int
	Tile, Overlap int
	Weights       string
	VAETile       int     `json:"vae_tile"`
	VAEOverlap    float64 `json:"vae_overlap"`
	Steps         int
	Strength      float64
	NumInference  int     `json:"num_inference_steps"`
	Guidance      float64 `json:"guidance_scale"`
	Windows       [][4]int
}

func tilesJSON(t testing.TB, name string, v any) {
	b, err := os.ReadFile(filepath.Join(root, "testdata", "goldens", "tiles", name))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, v))
}

func mdCaseNamed(t testing.TB, name string) mdCase {
	var f struct{ Cases []mdCase }
	tilesJSON(t, "md_cases.json", &f)
	for _, c := range f.Cases {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no case %s", name)
	return mdCase{}
}

func (c mdCase) tiling(t testing.TB, batch int) Tiling {
	w, err := tile.ParseWeights(c.Weights)
	require.NoError(t, err)
	return Tiling{VAE: &tile.VAE{Tile: c.VAETile, Overlap: c.VAEOverlap, Factor: 8}, Grid: &tile.Grid{Tile: c.Tile, Overlap: c.Overlap}, Weights: w, Batch: batch}
}

// stepsWorst is the largest difference of every step's latents from the golden's.
func stepsWorst(t testing.TB, steps [][]float32, want []float32) float64 {
	require.NotEmpty(t, steps)
	n := len(steps[0])
	require.Equal(t, len(want), n*len(steps))
	worst := 0.0
	for i, s := range steps {
		worst = math.Max(worst, testenv.MaxAbs(t, want[i*n:(i+1)*n], s))
	}
	return worst
}

// TestTiledStage2MatchesReference: stage 2 (the PASD stand-in, UniPC, PASD's Gaussian
// weights) with tiled encode, 12 denoising tiles of 8 latents overlapping by 3 and a tiled
// decode, against tiles_ref.py's loop, one tile per UNet call and five (the last call
// padded with a repeated window), then PASD's colour fix on the tiled decode.
func TestTiledStage2MatchesReference(t *testing.T) {
	c := mdCaseNamed(t, "md_pasd")
	p := loadParams(t, "pasd_params.json")
	for _, batch := range []int{1, 5} {
		t.Run(fmt.Sprintf("batch%d", batch), func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Steps2, cfg.Guidance2, cfg.ColorFixLevels, cfg.TileBatch = c.Steps, c.Guidance, 5, batch
			r := tinyRefiner(t, cfg)
			ctx := context.Background()
			hidden, _, err := r.EncodePASD(ctx, p.Negative, p.Prompt)
			require.NoError(t, err)
			defer hidden.Close()
			var steps [][]float32
			out, err := r.Stage2(ctx, Stage2Args{Image: up(t, r, tilesGolden(t, "md_pasd_image.npy").F32), H: c.Height, W: c.Width, Hidden: hidden,
				Strength: c.Strength, Noise: tilesGolden(t, "md_pasd_noise.npy").F32, Tiling: c.tiling(t, batch)},
				func(_ string, _, _ int, x []float32) { steps = append(steps, append([]float32(nil), x...)) })
			require.NoError(t, err)
			defer out.Close()
			assert.Equal(t, c.NumInference, out.N)
			assert.Equal(t, [2]int{batch, (12 + batch - 1) / batch}, [2]int{out.Batch, out.Calls}, "tiles per UNet call, calls per step")
			worst := stepsWorst(t, steps, tilesGolden(t, "md_pasd_latents_steps.npy").F32)
			eDec := testenv.MaxAbs(t, tilesGolden(t, "md_pasd_decoded.npy").F32, down(t, r, out.Decoded))
			eFix := testenv.MaxAbs(t, tilesGolden(t, "md_pasd_colorfix.npy").F32, down(t, r, out.Image))
			t.Logf("tiled stage 2 (%d tiles, %d per call) vs reference: latents (all %d steps) %.3g, tiled decode %.3g, colour fix %.3g",
				len(c.Windows), batch, len(steps), worst, eDec, eFix)
			assert.LessOrEqual(t, worst, 1e-4, "latents")
			assert.LessOrEqual(t, eDec, 1e-3, "decoded")
			assert.LessOrEqual(t, eFix, 1e-3, "colour-fixed")
		})
	}
}

// TestTiledStage1MatchesReference: stage 1 (SDXL-Inpainting, Euler, uniform weights) with
// tiled encodes of the image and the masked image, the 9-channel input cut per tile,
// per-tile time ids and a tiled decode, against tiles_ref.py's loop.
func TestTiledStage1MatchesReference(t *testing.T) {
	c := mdCaseNamed(t, "md_sdxl")
	p := loadParams(t, "sdxl_params.json")
	for _, batch := range []int{1, 4} {
		t.Run(fmt.Sprintf("batch%d", batch), func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Steps1, cfg.Guidance1, cfg.TileBatch = c.Steps, c.Guidance, batch
			r := tinyRefiner(t, cfg)
			ctx := context.Background()
			wl, err := EncodeSegments(r.Tokenizer(), []Segment{{Text: p.Prompt, Weight: 1}}, r.sdxl.TextLPad)
			require.NoError(t, err)
			wg, err := EncodeSegments(r.Tokenizer(), []Segment{{Text: p.Prompt, Weight: 1}}, r.sdxl.TextGPad)
			require.NoError(t, err)
			cond, err := r.EncodeSDXLIDs(ctx, wl, wg)
			require.NoError(t, err)
			defer cond.Close()
			var steps [][]float32
			out, err := r.Stage1(ctx, Stage1Args{Image: up(t, r, tilesGolden(t, "md_sdxl_image.npy").F32), Mask: up(t, r, tilesGolden(t, "md_sdxl_mask.npy").F32),
				H: c.Height, W: c.Width, Cond: cond, Strength: c.Strength, Noise: tilesGolden(t, "md_sdxl_noise.npy").F32, Tiling: c.tiling(t, batch)},
				func(_ string, _, _ int, x []float32) { steps = append(steps, append([]float32(nil), x...)) })
			require.NoError(t, err)
			defer out.Close()
			assert.Equal(t, c.NumInference, out.N)
			worst := stepsWorst(t, steps, tilesGolden(t, "md_sdxl_latents_steps.npy").F32)
			eDec := testenv.MaxAbs(t, tilesGolden(t, "md_sdxl_decoded.npy").F32, down(t, r, out.Image))
			t.Logf("tiled stage 1 (%d tiles, %d per call) vs reference: latents (all %d steps) %.3g, tiled decode %.3g", len(c.Windows), batch, len(steps), worst, eDec)
			assert.LessOrEqual(t, worst, 1e-4, "latents")
			assert.LessOrEqual(t, eDec, 1e-3, "decoded")
		})
	}
}

type cropPipe struct {
	Name          string
	Width, Height int
	Pad           int
	Box           [4]int
	Prompt        string
	Steps         int
	Strength      float64
	NumInference  int     `json:"num_inference_steps"`
	Guidance      float64 `json:"guidance_scale"`
}

func readPNG(t testing.TB, name string) *imageio.RGB8 {
	m, err := imageio.ReadFile(filepath.Join(root, "testdata", "goldens", "tiles", name), imageio.DefaultLimits)
	require.NoError(t, err)
	return m
}

// TestMaskCropMatchesDiffusersPipeline: diffusers' StableDiffusionXLInpaintPipeline with
// padding_mask_crop (tiles_ref.py, two runs on the tiny set) against stage 1's crop on the
// device: the box from the mask's bounding box, the working image and mask (crop, then
// _resize_and_fill: Lanczos and bicubic fill bands), the denoising, and the overlay of the
// result into the box (_resize_and_crop, the mask's pixels only).
func TestMaskCropMatchesDiffusersPipeline(t *testing.T) {
	var cases struct{ Pipelines []cropPipe }
	tilesJSON(t, "crop_cases.json", &cases)
	require.Len(t, cases.Pipelines, 2)
	for _, c := range cases.Pipelines {
		t.Run(c.Name, func(t *testing.T) {
			pre := "crop_pipe_" + c.Name + "_"
			cfg := DefaultConfig()
			cfg.Steps1, cfg.Guidance1, cfg.LongSide, cfg.CropAlways, cfg.CropPadding = c.Steps, c.Guidance, max(c.Width, c.Height), true, c.Pad
			r := tinyRefiner(t, cfg)
			ctx := context.Background()
			img := readPNG(t, pre+"image.png")
			mpng := readPNG(t, pre+"mask.png")
			mask := make([]float32, img.W*img.H)
			for i := range mask {
				mask[i] = float32(mpng.Pix[3*i]) / 255
			}
			W, H := r.Stage1Size(img.W, img.H)
			require.Equal(t, [2]int{c.Width, c.Height}, [2]int{W, H}, "the working size is the image's (diffusers' apply_overlay needs it)")
			scp := r.scope()
			defer scp.close()
			req := Request{Image: img, Mask: mask}
			b, err := r.maskBox(scp, req, nil)
			require.NoError(t, err)
			crop := r.cropChoice(b, img.W, img.H, W, H)
			require.NotNil(t, crop)
			assert.Equal(t, c.Box, crop.Box, "get_crop_region's box")

			imgT, err := scp.uploadU8(engine.Shape{int64(img.H), int64(img.W), 3}, img.Pix)
			require.NoError(t, err)
			maskT, err := scp.upload(engine.Shape{1, int64(img.H), int64(img.W)}, mask)
			require.NoError(t, err)
			planar, wmask, boxMask, err := r.cropWorking(scp, imgT, maskT, crop.Box, W, H)
			require.NoError(t, err)
			init := readPNG(t, pre+"init.png")
			wantPlanar := make([]float32, 3*W*H)
			for p := 0; p < W*H; p++ {
				for ch := 0; ch < 3; ch++ {
					wantPlanar[ch*W*H+p] = float32(init.Pix[3*p+ch]) / 255
				}
			}
			assert.Equal(t, wantPlanar, down(t, r, planar), "the working image: crop + _resize_and_fill, bit for bit")
			assert.Equal(t, tilesGolden(t, pre+"mask.npy").F32, down(t, r, wmask), "the working mask, bit for bit")

			wl, err := EncodeSegments(r.Tokenizer(), []Segment{{Text: c.Prompt, Weight: 1}}, r.sdxl.TextLPad)
			require.NoError(t, err)
			wg, err := EncodeSegments(r.Tokenizer(), []Segment{{Text: c.Prompt, Weight: 1}}, r.sdxl.TextGPad)
			require.NoError(t, err)
			cond, err := r.EncodeSDXLIDs(ctx, wl, wg)
			require.NoError(t, err)
			defer cond.Close()
			var steps [][]float32
			out, err := r.Stage1(ctx, Stage1Args{Image: planar, Mask: wmask, H: H, W: W, Cond: cond, Strength: c.Strength,
				Noise: tilesGolden(t, pre+"noise.npy").F32},
				func(_ string, _, _ int, x []float32) { steps = append(steps, append([]float32(nil), x...)) })
			require.NoError(t, err)
			defer out.Close()
			assert.Equal(t, c.NumInference, out.N)
			worst := stepsWorst(t, steps, tilesGolden(t, pre+"latents_steps.npy").F32)
			work, err := r.fromPlanar(scp, out.Image, W, H, W, H)
			require.NoError(t, err)
			res, err := r.overlay(scp, imgT, work, boxMask, crop.Box)
			require.NoError(t, err)
			got := downU8(t, r, work)
			decDiff := maxByteDiff(readPNG(t, pre+"decoded.png").Pix, got)
			final := downU8(t, r, res)
			outDiff := maxByteDiff(readPNG(t, pre+"output.png").Pix, final)
			outside := 0
			for p, m := range mask {
				if m < 0.5 && (final[3*p] != img.Pix[3*p] || final[3*p+1] != img.Pix[3*p+1] || final[3*p+2] != img.Pix[3*p+2]) {
					outside++
				}
			}
			t.Logf("crop %s: box %v (%.0f %% of the image), latents (all %d steps) %.3g, working result %d/255, final image %d/255",
				c.Name, crop.Box, 100*crop.BoxShare, len(steps), worst, decDiff, outDiff)
			assert.LessOrEqual(t, worst, 1e-4, "latents")
			assert.LessOrEqual(t, decDiff, 1, "the working result")
			assert.LessOrEqual(t, outDiff, 1, "the final image")
			assert.Zero(t, outside, "pixels outside the mask are the input's")
		})
	}
}

func downU8(t testing.TB, r *Refiner, x engine.Tensor) []uint8 {
	t.Helper()
	h, err := engine.NewHostTensor(engine.Uint8, x.Shape())
	require.NoError(t, err)
	require.NoError(t, r.Stream().Download(h, x))
	return h.U8
}

func maxByteDiff(a, b []uint8) int {
	worst := 0
	for i := range a {
		d := int(a[i]) - int(b[i])
		worst = max(worst, d, -d)
	}
	return worst
}

// TestRefineCropsAroundASmallMask: Refine on an image larger than stage 1's working size
// with a small mask crops (auto): the report gives the box and why, stage 1's working size
// is the image's aspect at the long side, the pixels outside the mask are the input's,
// the masked ones repainted; the cancelled and the refused crops keep the whole image.
func TestRefineCropsAroundASmallMask(t *testing.T) {
	const W, H = 200, 150
	img := testImage(W, H)
	mask := make([]float32, W*H)
	for y := 40; y < 60; y++ {
		for x := 120; x < 150; x++ {
			mask[y*W+x] = 1
		}
	}
	run := func(crop bool, pad int) *Result {
		cfg := fastConfig()
		cfg.SkipStage2, cfg.Crop, cfg.CropPadding = true, crop, pad
		r := tinyRefiner(t, cfg)
		res, err := r.Refine(context.Background(), Request{Image: img, Prompt: "a red apple", Mask: mask, Q: 0.3}, nil)
		require.NoError(t, err)
		return res
	}
	res := run(true, 8)
	c := res.Stage1.Crop
	require.NotNil(t, c, "a 30x20 mask in a 200x150 image worked at 64x48: cropped")
	t.Logf("crop: %+v", *c)
	assert.Equal(t, [4]int{111, 32, 159, 68}, c.Box, "get_crop_region: the mask's box padded by 8 (112,32,158,68), grown to 4:3")
	assert.Equal(t, [2]int{64, 48}, [2]int{c.Width, c.Height})
	assert.Contains(t, c.Reason, "covers")
	assert.Greater(t, repaintedOnly(t, img, res.Image, mask), 0, "the masked region was repainted")
	assert.Nil(t, run(false, 8).Stage1.Crop, "crop off")
	assert.Nil(t, run(true, 60).Stage1.Crop, "a padded box over half the image: no crop")
}
