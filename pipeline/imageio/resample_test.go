package imageio

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The Pillow goldens of tools/export/tiles_ref.py (testdata/goldens/tiles): both filters,
// fractional, zero-extent and integral boxes, RGB and L.
var tilesGoldens = filepath.Join("..", "..", "testdata", "goldens", "tiles")

func gray(t *testing.T, path string) *Gray8 {
	t.Helper()
	m, err := ReadFile(path, DefaultLimits)
	require.NoError(t, err)
	g := NewGray8(m.W, m.H)
	for i := range g.Pix {
		require.Equal(t, m.Pix[3*i], m.Pix[3*i+1], "an L PNG decodes to equal channels")
		g.Pix[i] = m.Pix[3*i]
	}
	return g
}

func TestResizePILMatchesPillow(t *testing.T) {
	var cases struct {
		PIL []struct {
			Name, Source, Filter string
			Width, Height        int
			Box                  []float64
		}
	}
	b, err := os.ReadFile(filepath.Join(tilesGoldens, "crop_cases.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &cases))
	require.Len(t, cases.PIL, 11)
	src, err := ReadFile(filepath.Join(tilesGoldens, "resize_source.png"), DefaultLimits)
	require.NoError(t, err)
	mask := gray(t, filepath.Join(tilesGoldens, "resize_mask.png"))
	for _, c := range cases.PIL {
		t.Run(c.Name, func(t *testing.T) {
			f := map[string]Filter{"lanczos": Lanczos, "bicubic": Bicubic}[c.Filter]
			var box *Box
			if c.Box != nil {
				box = &Box{X0: c.Box[0], Y0: c.Box[1], X1: c.Box[2], Y1: c.Box[3]}
			}
			golden := filepath.Join(tilesGoldens, "pil_"+c.Name+".png")
			var got, want []uint8
			if c.Source == "l" {
				g, err := ResizeGrayPIL(mask, c.Width, c.Height, f, box)
				require.NoError(t, err)
				got, want = g.Pix, gray(t, golden).Pix
			} else {
				g, err := ResizePIL(src, c.Width, c.Height, f, box)
				require.NoError(t, err)
				w, err := ReadFile(golden, DefaultLimits)
				require.NoError(t, err)
				got, want = g.Pix, w.Pix
			}
			require.Len(t, got, len(want))
			diff := 0
			for i := range got {
				if got[i] != want[i] {
					diff++
				}
			}
			assert.Zero(t, diff, "bytes differing from Pillow (%d values)", len(got))
		})
	}
}

func TestResizePILRefusesWhatPillowRefuses(t *testing.T) {
	src := NewRGB8(10, 8)
	for name, c := range map[string]struct {
		w, h int
		box  *Box
	}{
		"empty output":      {0, 5, nil},
		"negative offset":   {4, 4, &Box{X0: -1, X1: 5, Y1: 5}},
		"beyond the image":  {4, 4, &Box{X1: 11, Y1: 5}},
		"negative extent":   {4, 4, &Box{X0: 5, X1: 4, Y1: 5}},
		"NaN in the box":    {4, 4, &Box{X1: 5, Y1: nan()}},
		"negative height 0": {4, -1, nil},
	} {
		_, err := ResizePIL(src, c.w, c.h, Lanczos, c.box)
		assert.True(t, errors.Is(err, ErrResize), "%s: %v", name, err)
	}
	_, err := ResizePIL(src, 4, 4, Filter(7), nil)
	assert.True(t, errors.Is(err, ErrResize))
	_, err = ResizeGrayPIL(&Gray8{W: 3, H: 3, Pix: make([]uint8, 8)}, 2, 2, Bicubic, nil)
	assert.True(t, errors.Is(err, ErrResize), "short pixel buffer")
	// the same size and the whole box: a copy, not an alias
	c, err := ResizePIL(src, 10, 8, Lanczos, nil)
	require.NoError(t, err)
	c.Pix[0] = 9
	assert.Zero(t, src.Pix[0])
}

func nan() float64 { z := 0.0; return z / z }
