package imageio

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/gif" // register GIF
	"image/jpeg"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/grefine/grefine/internal/files"
)

// Errors wrapped by this package.
var (
	ErrDecode = errors.New("imageio: cannot decode image")
	ErrRead   = errors.New("imageio: cannot read image")
	ErrLimit  = errors.New("imageio: image outside limits")
)

// Limits bound what Decode accepts.
type Limits struct {
	MaxBytes  int64 // encoded size
	MaxPixels int64 // width*height
	MaxSide   int   // longest side
	MinSide   int   // shortest side (≥ 1)
}

// DefaultLimits: 64 MiB files, 64 megapixels, 16384 px sides, at least 1 px.
var DefaultLimits = Limits{MaxBytes: 64 << 20, MaxPixels: 64 << 20, MaxSide: 16384, MinSide: 1}

// RGB8 is an 8-bit RGB image, pixels packed row-major as R,G,B.
type RGB8 struct {
	W, H int
	Pix  []uint8
}

// NewRGB8 allocates a black image.
func NewRGB8(w, h int) *RGB8 { return &RGB8{W: w, H: h, Pix: make([]uint8, 3*w*h)} }

// At returns the pixel at (x,y).
func (m *RGB8) At(x, y int) (r, g, b uint8) {
	i := 3 * (y*m.W + x)
	return m.Pix[i], m.Pix[i+1], m.Pix[i+2]
}

// ReadFile decodes an image file with the given limits.
func ReadFile(path string, lim Limits) (*RGB8, error) {
	data, err := ReadBytes(path, lim)
	if err != nil {
		return nil, err
	}
	img, err := Decode(bytes.NewReader(data), lim)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return img, nil
}

// ReadBytes reads an image file's bytes, refusing directories and files over
// lim.MaxBytes before reading them (ErrRead, ErrLimit).
func ReadBytes(path string, lim Limits) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRead, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRead, err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("%w: %s is a directory", ErrRead, path)
	}
	if lim.MaxBytes > 0 && st.Size() > lim.MaxBytes {
		return nil, fmt.Errorf("%w: %s is %d bytes, the limit is %d", ErrLimit, path, st.Size(), lim.MaxBytes)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrRead, path, err)
	}
	return data, nil
}

// Decode reads an image, enforcing lim before decoding pixels.
func Decode(r io.Reader, lim Limits) (*RGB8, error) {
	var src io.Reader = r
	if lim.MaxBytes > 0 {
		src = io.LimitReader(r, lim.MaxBytes+1)
	}
	data, err := io.ReadAll(src)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDecode, err)
	}
	if lim.MaxBytes > 0 && int64(len(data)) > lim.MaxBytes {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrLimit, lim.MaxBytes)
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty input", ErrDecode)
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %v (PNG, JPEG and GIF are supported)", ErrDecode, err)
	}
	if err := lim.check(cfg.Width, cfg.Height); err != nil {
		return nil, err
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		msg := err.Error()
		if !strings.HasPrefix(msg, format+":") { // the decoders prefix their own name
			msg = format + ": " + msg
		}
		return nil, fmt.Errorf("%w: %s", ErrDecode, msg)
	}
	return ToRGB8(img), nil
}

// Check refuses a w×h image outside the limits (ErrLimit), as decoding does.
func (lim Limits) Check(w, h int) error { return lim.check(w, h) }

func (lim Limits) check(w, h int) error {
	min := lim.MinSide
	if min < 1 {
		min = 1
	}
	if w < min || h < min {
		return fmt.Errorf("%w: %d×%d is smaller than %d px on a side", ErrLimit, w, h, min)
	}
	if lim.MaxSide > 0 && (w > lim.MaxSide || h > lim.MaxSide) {
		return fmt.Errorf("%w: %d×%d exceeds %d px on a side", ErrLimit, w, h, lim.MaxSide)
	}
	if lim.MaxPixels > 0 && int64(w)*int64(h) > lim.MaxPixels {
		return fmt.Errorf("%w: %d×%d is %d pixels, the limit is %d", ErrLimit, w, h, int64(w)*int64(h), lim.MaxPixels)
	}
	return nil
}

// ToRGB8 converts any image with the package's documented conversions.
func ToRGB8(img image.Image) *RGB8 {
	b := img.Bounds()
	out := NewRGB8(b.Dx(), b.Dy())
	i := 0
	put := func(r, g, bb uint8) {
		out.Pix[i], out.Pix[i+1], out.Pix[i+2] = r, g, bb
		i += 3
	}
	switch m := img.(type) {
	case *image.NRGBA:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := m.Pix[(y-b.Min.Y)*m.Stride:]
			for x := 0; x < b.Dx(); x++ {
				put(row[4*x], row[4*x+1], row[4*x+2])
			}
		}
	case *image.RGBA:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				c := color.NRGBAModel.Convert(m.RGBAAt(x, y)).(color.NRGBA)
				put(c.R, c.G, c.B)
			}
		}
	case *image.Gray:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				v := m.GrayAt(x, y).Y
				put(v, v, v)
			}
		}
	case *image.YCbCr:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				c := m.YCbCrAt(x, y)
				r, g, bb := color.YCbCrToRGB(c.Y, c.Cb, c.Cr)
				put(r, g, bb)
			}
		}
	case *image.NRGBA64:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := m.Pix[(y-b.Min.Y)*m.Stride:]
			for x := 0; x < b.Dx(); x++ {
				p := row[8*x:]
				put(to8(uint16(p[0])<<8|uint16(p[1])), to8(uint16(p[2])<<8|uint16(p[3])), to8(uint16(p[4])<<8|uint16(p[5])))
			}
		}
	case *image.RGBA64, *image.Gray16:
		// 16-bit images without the per-pixel interface allocations of img.At (an 8192²
		// image would make 64 million): the same arithmetic as color.NRGBA64Model.
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				var r, g, bb, a uint32
				if g16, ok := m.(*image.Gray16); ok {
					v := uint32(g16.Gray16At(x, y).Y)
					r, g, bb, a = v, v, v, 0xffff
				} else {
					c := m.(*image.RGBA64).RGBA64At(x, y)
					r, g, bb, a = uint32(c.R), uint32(c.G), uint32(c.B), uint32(c.A)
				}
				switch a {
				case 0xffff:
				case 0:
					r, g, bb = 0, 0, 0
				default:
					r, g, bb = r*0xffff/a, g*0xffff/a, bb*0xffff/a
				}
				put(to8(uint16(r)), to8(uint16(g)), to8(uint16(bb)))
			}
		}
	default:
		// Paletted, CMYK, grey+alpha...: through NRGBA64, rounding to 8 bits.
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				c := color.NRGBA64Model.Convert(img.At(x, y)).(color.NRGBA64)
				put(to8(c.R), to8(c.G), to8(c.B))
			}
		}
	}
	return out
}

func to8(v uint16) uint8 { return uint8((uint32(v)*255 + 32767) / 65535) }

// Image returns the picture as an image.Image (for encoding).
func (m *RGB8) Image() *image.NRGBA {
	out := image.NewNRGBA(image.Rect(0, 0, m.W, m.H))
	for p := 0; p < m.W*m.H; p++ {
		copy(out.Pix[4*p:4*p+3], m.Pix[3*p:3*p+3])
		out.Pix[4*p+3] = 255
	}
	return out
}

// EncodePNG writes m as PNG: the one encoding every front end uses, so the CLI, the
// server and libgrefine give the same bytes for the same image.
func EncodePNG(w io.Writer, m *RGB8) error { return png.Encode(w, m.Image()) }

// EncodeJPEG writes m as JPEG at quality 1-100.
func EncodeJPEG(w io.Writer, m *RGB8, quality int) error {
	return jpeg.Encode(w, m.Image(), &jpeg.Options{Quality: quality})
}

// WritePNG encodes img as PNG to path atomically.
func WritePNG(path string, img image.Image) error {
	return files.WriteAtomic(path, func(w io.Writer) error { return png.Encode(w, img) })
}

// WriteJPEG encodes img as JPEG (quality 1-100) to path atomically.
func WriteJPEG(path string, img image.Image, quality int) error {
	return files.WriteAtomic(path, func(w io.Writer) error { return jpeg.Encode(w, img, &jpeg.Options{Quality: quality}) })
}
