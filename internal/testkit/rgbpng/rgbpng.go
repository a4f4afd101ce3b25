package rgbpng

import (
	"image/png"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// Read reads the PNG at path into [H, W, 3] bytes (alpha dropped, 16-bit channels cut to
// their high byte) and returns them with the image's width and height.
func Read(t testing.TB, path string) (pix []uint8, w, h int) {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	b := img.Bounds()
	pix = make([]uint8, 0, 3*b.Dx()*b.Dy())
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bb, _ := img.At(x, y).RGBA()
			pix = append(pix, uint8(r>>8), uint8(g>>8), uint8(bb>>8))
		}
	}
	return pix, b.Dx(), b.Dy()
}
