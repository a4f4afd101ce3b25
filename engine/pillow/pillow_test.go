package pillow

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/internal/testkit/rgbpng"
)

// TestPassOrderShowsInTheBytes: on CLIP's squash of tall images Pillow 13 runs the
// vertical pass first; Resize does, equals Pillow's bytes, and the other order would not
// (so the goldens tell the orders apart).
func TestPassOrderShowsInTheBytes(t *testing.T) {
	dir := filepath.Join("..", "cpu", "testdata", "pillow")
	for _, c := range [][2]string{{"src7.png", "pil7_224x224.png"}, {"src8.png", "pil8_224x224.png"}} {
		src, W, H := rgbpng.Read(t, filepath.Join(dir, c[0]))
		want, w, h := rgbpng.Read(t, filepath.Join(dir, c[1]))
		p, err := PlanFor(W, H, w, h, Bicubic, nil)
		require.NoError(t, err)
		require.True(t, p.VerticalFirst && p.Horizontal && p.Vertical, "%s: %dx%d -> %dx%d", c[0], W, H, w, h)
		got, err := Resize(src, W, H, 3, w, h, Bicubic, nil)
		require.NoError(t, err)
		assert.Equal(t, want, got, "%s: Pillow 13's bytes", c[0])
		tmp := hpass(make([]uint8, w*H*3), src, W, H, 3, w, Coeffs(W, 0, float64(W), w, Bicubic))
		other := vpass(make([]uint8, w*h*3), tmp, w, 3, h, Coeffs(H, 0, float64(H), h, Bicubic))
		diff := 0
		for i := range other {
			if other[i] != want[i] {
				diff++
			}
		}
		t.Logf("%s: horizontal first differs from Pillow 13 in %d of %d bytes", c[0], diff, len(want))
		assert.Positive(t, diff, "%s: the orders give the same bytes here; the case proves nothing", c[0])
	}
}

// TestModeLMatchesRGB: a grey image resized as mode L equals each channel of the same
// image resized as RGB (the passes are per channel), for both filters and a box.
func TestModeLMatchesRGB(t *testing.T) {
	const W, H = 37, 23
	g := make([]uint8, W*H)
	rgb := make([]uint8, 3*W*H)
	for i := range g {
		g[i] = uint8((i*37 + i/W*11) % 256)
		rgb[3*i], rgb[3*i+1], rgb[3*i+2] = g[i], g[i], g[i]
	}
	for _, f := range []Filter{Bicubic, Lanczos} {
		for _, box := range []*Box{nil, {X0: 2.5, Y0: 1, X1: 30, Y1: 20.25}} {
			l, err := Resize(g, W, H, 1, 15, 31, f, box)
			require.NoError(t, err)
			c, err := Resize(rgb, W, H, 3, 15, 31, f, box)
			require.NoError(t, err)
			for i := range l {
				require.Equal(t, l[i], c[3*i], "%v %v pixel %d", f, box, i)
			}
		}
	}
	_, err := Resize(g, W, H, 2, 5, 5, Bicubic, nil)
	assert.ErrorIs(t, err, ErrResize)
}
