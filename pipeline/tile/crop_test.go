package tile

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/pipeline/imageio"
)

func drawMask(w, h int, rects [][4]int) []float32 {
	m := make([]float32, w*h)
	for _, r := range rects {
		for y := r[1]; y < r[3]; y++ {
			for x := r[0]; x < r[2]; x++ {
				m[y*w+x] = 1
			}
		}
	}
	return m
}

// CropRegion is get_crop_region on every golden mask: random rectangles on several image
// and working sizes and paddings, single pixels in the corners, the full image, strips
// along each side (boxes clamped by the image, so the aspect cannot be met).
func TestCropRegionMatchesDiffusers(t *testing.T) {
	var f struct {
		Cases []struct {
			Name                  string
			MaskWidth, MaskHeight int `json:"-"`
			MW                    int `json:"mask_width"`
			MH                    int `json:"mask_height"`
			Rects                 [][4]int
			Width, Height, Pad    int
			Box                   [4]int
		}
	}
	tilesJSON(t, "crop_regions.json", &f)
	require.GreaterOrEqual(t, len(f.Cases), 50)
	clamped := 0
	for _, c := range f.Cases {
		got, err := CropRegion(drawMask(c.MW, c.MH, c.Rects), c.MW, c.MH, c.Width, c.Height, c.Pad)
		require.NoError(t, err, c.Name)
		assert.Equal(t, c.Box, [4]int{got.X1, got.Y1, got.X2, got.Y2}, c.Name)
		if got.W()*c.Height != got.H()*c.Width {
			clamped++
		}
	}
	t.Logf("%d cases, %d of them with a box whose aspect is not the working aspect (truncation or clamping)", len(f.Cases), clamped)
	assert.Positive(t, clamped)
}

func TestCropRegionErrors(t *testing.T) {
	_, err := CropRegion(make([]float32, 12), 4, 3, 64, 48, 2)
	assert.ErrorIs(t, err, ErrEmptyMask)
	_, err = CropRegion(make([]float32, 11), 4, 3, 64, 48, 2)
	assert.ErrorIs(t, err, ErrShape)
	m := drawMask(4, 3, [][4]int{{1, 1, 2, 2}})
	for _, c := range [][3]int{{0, 48, 0}, {64, 0, 0}, {64, 48, -1}, {64, 48, MaxCropPad + 1}} {
		_, err = CropRegion(m, 4, 3, c[0], c[1], c[2])
		assert.ErrorIs(t, err, ErrConfig, "%v", c)
	}
	// below 0.5 is not masked (the refiner's binary mask convention)
	m[5] = 0.49
	_, err = CropRegion(m, 4, 3, 64, 48, 0)
	assert.ErrorIs(t, err, ErrEmptyMask)
}

func assertSameImage(t *testing.T, what string, want, got *imageio.RGB8) {
	t.Helper()
	require.Equal(t, [2]int{want.W, want.H}, [2]int{got.W, got.H}, what)
	assert.Zero(t, countDiff(want.Pix, got.Pix), "%s: bytes differing from diffusers/Pillow", what)
}

// _resize_and_fill (image and mask) and _resize_and_crop, bit for bit, on boxes that hit
// every branch: exact aspect, wider and taller crops (the bands filled by stretching the
// edge rows or columns), a 1-pixel aspect error, a downscale, a box at the image's edge.
func TestFillAndCropResizeMatchDiffusers(t *testing.T) {
	var f struct {
		Resize []struct {
			Name          string
			Box           [4]int
			Width, Height int
		}
	}
	tilesJSON(t, "crop_cases.json", &f)
	require.Len(t, f.Resize, 6)
	src := tilesPNG(t, "resize_source.png")
	mask := tilesGray(t, "resize_mask.png")
	for _, c := range f.Resize {
		box := Box{c.Box[0], c.Box[1], c.Box[2], c.Box[3]}
		filled, err := FillResize(src, box, c.Width, c.Height)
		require.NoError(t, err)
		assertSameImage(t, c.Name+" fill", tilesPNG(t, c.Name+"_fill.png"), filled)
		mf, err := FillResizeMask(mask, box, c.Width, c.Height)
		require.NoError(t, err)
		assert.Zero(t, countDiff(tilesGray(t, c.Name+"_mask_fill.png").Pix, mf.Pix), "%s mask fill", c.Name)
		back, err := CropResize(tilesPNG(t, c.Name+"_fill.png"), box.W(), box.H())
		require.NoError(t, err)
		assertSameImage(t, c.Name+" crop", tilesPNG(t, c.Name+"_crop.png"), back)
	}
}

// The two padding_mask_crop runs of diffusers' SDXL-Inpainting pipeline: the box, the
// working image and mask it made, and the final image from its working-size result.
// (The denoising in between is the untiled stage 1 on the working image; phase 2 checks
// it against the *_latents_steps goldens through the refiner.)
func TestMaskCropMatchesDiffusersPipeline(t *testing.T) {
	var f struct {
		Pipelines []struct {
			Name                   string
			Width, Height, Pad     int
			Box                    [4]int
			FillHeight             int `json:"fill_height"`
			FillWidth              int `json:"fill_width"`
			NumInference, Steps    int
			LatentMeanNotSample    bool `json:"latent_mean_not_sample"`
			MaskedLatentBlending   bool `json:"masked_latent_blending"`
			PromptEmbeds, Strength any
		}
	}
	tilesJSON(t, "crop_cases.json", &f)
	require.Len(t, f.Pipelines, 2)
	for _, c := range f.Pipelines {
		p := "crop_pipe_" + c.Name
		img := tilesPNG(t, p+"_image.png")
		require.Equal(t, [2]int{c.Width, c.Height}, [2]int{img.W, img.H})
		mg := tilesGray(t, p+"_mask.png")
		mask := make([]float32, len(mg.Pix))
		for i, v := range mg.Pix {
			mask[i] = float32(v) / 255
		}
		box, err := CropRegion(mask, img.W, img.H, c.Width, c.Height, c.Pad)
		require.NoError(t, err)
		assert.Equal(t, c.Box, [4]int{box.X1, box.Y1, box.X2, box.Y2}, p)

		work, err := FillResize(img, box, c.Width, c.Height)
		require.NoError(t, err)
		assertSameImage(t, p+" working image", tilesPNG(t, p+"_init.png"), work)
		wm, err := FillResizeMask(mg, box, c.Width, c.Height)
		require.NoError(t, err)
		bin := tilesNpy(t, p+"_mask.npy").F32
		require.Len(t, bin, len(wm.Pix))
		diff := 0
		for i, v := range wm.Pix {
			if b := float32(0); v >= 128 {
				b = 1
				if bin[i] != b {
					diff++
				}
			} else if bin[i] != b {
				diff++
			}
		}
		assert.Zero(t, diff, "%s working mask, binarised at 128", p)

		out, err := Overlay(img, mask, tilesPNG(t, p+"_decoded.png"), box)
		require.NoError(t, err)
		assertSameImage(t, p+" final image", tilesPNG(t, p+"_output.png"), out)
		t.Logf("%s: %dx%d, pad %d: box %v (%dx%d), fill %d rows / %d columns", p, c.Width, c.Height, c.Pad, c.Box,
			box.W(), box.H(), c.FillHeight, c.FillWidth)
	}
}

func TestOverlayErrors(t *testing.T) {
	img := imageio.NewRGB8(8, 6)
	res := imageio.NewRGB8(8, 6)
	mask := drawMask(8, 6, [][4]int{{1, 1, 3, 3}})
	_, err := Overlay(img, mask[:5], res, Box{0, 0, 4, 4})
	assert.ErrorIs(t, err, ErrShape)
	_, err = Overlay(img, mask, res, Box{0, 0, 9, 4})
	assert.ErrorIs(t, err, ErrShape)
	_, err = Overlay(img, mask, res, Box{2, 2, 6, 5})
	assert.ErrorIs(t, err, ErrShape, "masked pixel 1,1 outside the box")
	out, err := Overlay(img, mask, res, Box{0, 0, 4, 4})
	require.NoError(t, err)
	assert.NotSame(t, &img.Pix[0], &out.Pix[0])
	_, err = FillResize(img, Box{0, 0, 9, 2}, 8, 6)
	assert.ErrorIs(t, err, ErrShape)
	_, err = CropResize(img, 0, 3)
	assert.ErrorIs(t, err, ErrShape)
	_, err = FillResize(imageio.NewRGB8(100, 1), Box{0, 0, 100, 1}, 4, 4)
	assert.True(t, errors.Is(err, ErrShape), "a 100x1 crop shrinks to 4x0: %v", err)
}

// Overlay outside the mask is the original, byte for byte, and inside it is the resized
// result: a property check on random boxes (sizes unlike the goldens').
func TestOverlayKeepsUnmaskedPixels(t *testing.T) {
	img := imageio.NewRGB8(37, 23)
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	res := imageio.NewRGB8(16, 12)
	for i := range res.Pix {
		res.Pix[i] = 200
	}
	for k, b := range []Box{{3, 2, 19, 14}, {0, 0, 37, 23}, {30, 20, 37, 23}} {
		mask := drawMask(37, 23, [][4]int{{b.X1, b.Y1, b.X1 + 1, b.Y1 + 1}, {b.X2 - 1, b.Y2 - 1, b.X2, b.Y2}})
		out, err := Overlay(img, mask, res, b)
		require.NoError(t, err, fmt.Sprint(k))
		for p, m := range mask {
			if m < 0.5 {
				require.Equal(t, img.Pix[3*p:3*p+3], out.Pix[3*p:3*p+3], "box %d pixel %d", k, p)
			} else {
				require.Equal(t, []uint8{200, 200, 200}, out.Pix[3*p:3*p+3], "box %d pixel %d", k, p)
			}
		}
	}
}
