package imageio

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
)

// Header is what an encoded image's header says, read without decoding its pixels.
type Header struct {
	Width, Height int
	Format        string // "png", "jpeg", "gif"
	// BytesPerPixel is the size of one pixel in the decoder's own image: 8 for 16-bit
	// RGBA, 4 for 8-bit RGBA, 2 for 16-bit grey, 3 for JPEG's full-resolution YCbCr, 1 for
	// grey and paletted images.
	BytesPerPixel int
}

// DecodedBytes is the memory that decoding the image holds at its peak: the decoder's
// image plus the RGB8 result. (16-bit and alpha channels count: an 8192² 16-bit RGBA PNG
// of a few hundred KB decodes to 704 MiB.)
func (h Header) DecodedBytes() int64 {
	return int64(h.Width) * int64(h.Height) * int64(h.BytesPerPixel+3)
}

// Probe reads data's header within lim (ErrDecode, ErrLimit): size, format and the
// memory decoding would take, before any pixel is decoded.
func Probe(data []byte, lim Limits) (Header, error) {
	if lim.MaxBytes > 0 && int64(len(data)) > lim.MaxBytes {
		return Header{}, fmt.Errorf("%w: %d bytes, the limit is %d", ErrLimit, len(data), lim.MaxBytes)
	}
	if len(data) == 0 {
		return Header{}, fmt.Errorf("%w: empty input", ErrDecode)
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return Header{}, fmt.Errorf("%w: %v (PNG, JPEG and GIF are supported)", ErrDecode, err)
	}
	if err := lim.check(cfg.Width, cfg.Height); err != nil {
		return Header{}, err
	}
	return Header{Width: cfg.Width, Height: cfg.Height, Format: format, BytesPerPixel: bytesPerPixel(cfg.ColorModel)}, nil
}

// bytesPerPixel is the size of a pixel of the image type a decoder builds for m.
func bytesPerPixel(m color.Model) int {
	switch m {
	case color.GrayModel, color.AlphaModel:
		return 1
	case color.Gray16Model, color.Alpha16Model:
		return 2
	case color.YCbCrModel:
		return 3 // 4:4:4 at worst
	case color.RGBAModel, color.NRGBAModel, color.CMYKModel:
		return 4
	case color.RGBA64Model, color.NRGBA64Model:
		return 8
	}
	if _, ok := m.(color.Palette); ok {
		return 1
	}
	return 8
}
