package imageio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/internal/files"
)

func encodePNG(t *testing.T, img image.Image) []byte {
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, img))
	return buf.Bytes()
}

// hugeHeaderPNG is a valid PNG signature + IHDR claiming w×h, with no pixel data.
func hugeHeaderPNG(w, h uint32) []byte {
	var buf bytes.Buffer
	buf.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 2 // 8-bit RGB
	_ = binary.Write(&buf, binary.BigEndian, uint32(13))
	chunk := append([]byte("IHDR"), ihdr...)
	buf.Write(chunk)
	_ = binary.Write(&buf, binary.BigEndian, crc32.ChecksumIEEE(chunk))
	return buf.Bytes()
}

func TestDecodeBadInputs(t *testing.T) {
	good := image.NewNRGBA(image.Rect(0, 0, 8, 8))
	goodPNG := encodePNG(t, good)
	for _, tc := range []struct {
		name string
		data []byte
		lim  Limits
		want error
	}{
		{"empty", nil, DefaultLimits, ErrDecode},
		{"garbage", []byte("definitely not an image"), DefaultLimits, ErrDecode},
		{"truncated", goodPNG[:len(goodPNG)/2], DefaultLimits, ErrDecode},
		{"zero size header", hugeHeaderPNG(0, 0), DefaultLimits, ErrDecode}, // "non-positive dimension"
		{"30000x30000 header", hugeHeaderPNG(30000, 30000), DefaultLimits, ErrLimit},
		{"too many bytes", goodPNG, Limits{MaxBytes: 10}, ErrLimit},
		{"too small", goodPNG, Limits{MinSide: 64}, ErrLimit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(bytes.NewReader(tc.data), tc.lim)
			require.Error(t, err)
			assert.True(t, errors.Is(err, tc.want), "got %v", err)
		})
	}
}

func TestDecodeConversions(t *testing.T) {
	t.Run("16-bit", func(t *testing.T) {
		m := image.NewRGBA64(image.Rect(0, 0, 2, 1))
		m.SetRGBA64(0, 0, color.RGBA64{R: 65535, G: 32896, B: 0, A: 65535})
		m.SetRGBA64(1, 0, color.RGBA64{R: 257 * 10, G: 257*10 + 128, B: 65535, A: 65535})
		img, err := Decode(bytes.NewReader(encodePNG(t, m)), DefaultLimits)
		require.NoError(t, err)
		assert.Equal(t, []uint8{255, 128, 0, 10, 10, 255}, img.Pix)
	})
	t.Run("alpha dropped", func(t *testing.T) {
		m := image.NewNRGBA(image.Rect(0, 0, 1, 1))
		m.SetNRGBA(0, 0, color.NRGBA{R: 200, G: 100, B: 50, A: 0})
		img, err := Decode(bytes.NewReader(encodePNG(t, m)), DefaultLimits)
		require.NoError(t, err)
		assert.Equal(t, []uint8{200, 100, 50}, img.Pix)
	})
	t.Run("gray", func(t *testing.T) {
		m := image.NewGray(image.Rect(0, 0, 1, 1))
		m.SetGray(0, 0, color.Gray{Y: 77})
		img, err := Decode(bytes.NewReader(encodePNG(t, m)), DefaultLimits)
		require.NoError(t, err)
		assert.Equal(t, []uint8{77, 77, 77}, img.Pix)
	})
	t.Run("cmyk jpeg", func(t *testing.T) {
		m := image.NewCMYK(image.Rect(0, 0, 16, 16))
		for i := 0; i < len(m.Pix); i += 4 {
			m.Pix[i], m.Pix[i+1], m.Pix[i+2], m.Pix[i+3] = 0, 255, 255, 0 // red
		}
		var buf bytes.Buffer
		require.NoError(t, jpeg.Encode(&buf, m, &jpeg.Options{Quality: 95}))
		img, err := Decode(&buf, DefaultLimits)
		require.NoError(t, err)
		r, g, b := img.At(8, 8)
		assert.InDelta(t, 255, int(r), 6)
		assert.InDelta(t, 0, int(g), 6)
		assert.InDelta(t, 0, int(b), 6)
	})
}

func TestWriteAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out.png")
	img := NewRGB8(3, 2)
	img.Pix[0] = 9
	require.NoError(t, WritePNG(p, img.Image()))
	back, err := ReadFile(p, DefaultLimits)
	require.NoError(t, err)
	assert.Equal(t, img.Pix, back.Pix)
	// A failing writer leaves neither the target nor a temp file.
	q := filepath.Join(dir, "fail.png")
	err = files.WriteAtomic(q, func(w io.Writer) error { _, _ = w.Write([]byte("partial")); return errors.New("boom") })
	require.Error(t, err)
	assert.NoFileExists(t, q)
	entries, _ := os.ReadDir(dir)
	assert.Len(t, entries, 1, "only out.png remains")
	// The target of a failed write keeps its old content.
	err = files.WriteAtomic(p, func(w io.Writer) error { return errors.New("boom") })
	require.Error(t, err)
	back, err = ReadFile(p, DefaultLimits)
	require.NoError(t, err)
	assert.Equal(t, img.Pix, back.Pix)
}

func TestHeatmapAndOverlay(t *testing.T) {
	h := Heatmap([]float32{0, 0.5, 1, float32(math.NaN()), 7}, 5, 1)
	r0, _, b0 := h.At(0, 0)
	r2, _, b2 := h.At(2, 0)
	assert.Greater(t, b0, r0, "low values are blue")
	assert.Greater(t, r2, b2, "high values are red")
	assert.Equal(t, h.Pix[0:3], h.Pix[9:12], "NaN renders as 0")
	assert.Equal(t, h.Pix[6:9], h.Pix[12:15], "values above 1 clamp")
	img := NewRGB8(2, 1)
	for i := range img.Pix {
		img.Pix[i] = 100
	}
	o := Overlay(img, []float32{1, 0}, 0.5)
	assert.Equal(t, []uint8{178, 50, 50, 70, 70, 70}, o.Pix)
}

// TestToRGB8SixteenBitFastPaths: the 16-bit cases convert exactly as the generic
// NRGBA64 path does (random pixels, alpha 0, partial and opaque).
func TestToRGB8SixteenBitFastPaths(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const w, h = 17, 5
	nrgba, rgba, gray := image.NewNRGBA64(image.Rect(0, 0, w, h)), image.NewRGBA64(image.Rect(0, 0, w, h)), image.NewGray16(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			a := uint16(rng.IntN(65536))
			switch x % 3 {
			case 0:
				a = 0
			case 1:
				a = 0xffff
			}
			c := func() uint16 { return uint16(rng.IntN(int(a) + 1)) } // premultiplied: <= a
			nrgba.SetNRGBA64(x, y, color.NRGBA64{uint16(rng.IntN(65536)), uint16(rng.IntN(65536)), uint16(rng.IntN(65536)), a})
			rgba.SetRGBA64(x, y, color.RGBA64{c(), c(), c(), a})
			gray.SetGray16(x, y, color.Gray16{uint16(rng.IntN(65536))})
		}
	}
	for name, img := range map[string]image.Image{"nrgba64": nrgba, "rgba64": rgba, "gray16": gray} {
		got := ToRGB8(img)
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				c := color.NRGBA64Model.Convert(img.At(x, y)).(color.NRGBA64)
				r, g, b := got.At(x, y)
				require.Equal(t, [3]uint8{to8(c.R), to8(c.G), to8(c.B)}, [3]uint8{r, g, b}, "%s (%d,%d)", name, x, y)
			}
		}
	}
}
