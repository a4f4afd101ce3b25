package cpu

import (
	"fmt"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/engine/pillow"
)

// Images are RGB, uint8 [H, W, 3] row-major (pixel p = y*W + x holds R, G, B at 3p..3p+2),
// or float32 planar [3, H, W].

// ResizeImage resizes src [inH, inW, 3] to dst [outH, outW, 3] like Pillow 13's
// Image.resize((outW, outH), filter, box) on an RGB image, bit for bit: engine/pillow's
// Resize (its doc states the reference loops: per pass the fixed-point coefficients
// pillow.Coeffs, each output value clamp((2^21 + Σ in·k) >> 22, 0, 255) in int32; the
// vertical pass first when inH−outH > 2·(inW−outW) and inH > outH, else the horizontal
// one; an integral box of the output's size is a crop). This is grf_resize_rgb8's
// reference.
func ResizeImage(src []uint8, inH, inW int, dst []uint8, outH, outW int, r engine.Resample) error {
	if inH < 1 || inW < 1 || outH < 1 || outW < 1 || len(src) != 3*inH*inW || len(dst) != 3*outH*outW {
		return fmt.Errorf("%w: cpu: ResizeImage: %dx%d -> %dx%d with %d and %d bytes", engine.ErrShape, inW, inH, outW, outH, len(src), len(dst))
	}
	f, box, err := pillowArgs(r)
	if err != nil {
		return err
	}
	if err := pillow.ResizeInto(dst, src, inW, inH, 3, outW, outH, f, box); err != nil {
		return fmt.Errorf("%w: cpu: ResizeImage: %v", engine.ErrShape, err)
	}
	return nil
}

// pillowArgs maps an engine.Resample onto engine/pillow's filter and box.
func pillowArgs(r engine.Resample) (pillow.Filter, *pillow.Box, error) {
	var f pillow.Filter
	switch r.Filter {
	case engine.ResampleBicubic:
		f = pillow.Bicubic
	case engine.ResampleLanczos:
		f = pillow.Lanczos
	default:
		return 0, nil, fmt.Errorf("%w: cpu: ResizeImage: unknown filter %v", engine.ErrShape, r.Filter)
	}
	if r.Box == nil {
		return f, nil, nil
	}
	return f, &pillow.Box{X0: r.Box[0], Y0: r.Box[1], X1: r.Box[2], Y1: r.Box[3]}, nil
}

// ToPlanar converts an RGB image [H*W pixels, 3] to planar float32 [3, H*W]:
//
//	dst[c*n + p] = (float32(src[3p + c])/255 - mean[c]) / std[c]
//
// in float32 (mean 0 and std 1 give the plain [0,1] image). This is grf_to_planar's
// reference.
func ToPlanar(src []uint8, dst []float32, mean, std [3]float32) error {
	if len(src)%3 != 0 || len(dst) != len(src) {
		return fmt.Errorf("%w: cpu: ToPlanar: %d bytes into %d values", engine.ErrShape, len(src), len(dst))
	}
	n := len(src) / 3
	for p := 0; p < n; p++ {
		for c := 0; c < 3; c++ {
			dst[c*n+p] = (float32(src[3*p+c])/255 - mean[c]) / std[c]
		}
	}
	return nil
}

// FromPlanar converts planar float32 [3, n] to an RGB image [n, 3], rounding to nearest:
//
//	dst[3p + c] = uint8(min(max(src[c*n + p], 0), 1)*255 + 0.5)
//
// (float32; the conversion truncates). This is grf_from_planar's reference.
func FromPlanar(src []float32, dst []uint8) error {
	if len(dst)%3 != 0 || len(dst) != len(src) {
		return fmt.Errorf("%w: cpu: FromPlanar: %d values into %d bytes", engine.ErrShape, len(src), len(dst))
	}
	n := len(dst) / 3
	for p := 0; p < n; p++ {
		for c := 0; c < 3; c++ {
			v := min(max(src[c*n+p], 0), 1)
			dst[3*p+c] = uint8(v*255 + 0.5)
		}
	}
	return nil
}

// Paste copies the pixels of src outside the mask into dst (both RGB [n, 3]):
//
//	if mask[p] < 0.5: dst[3p..3p+2] = src[3p..3p+2]
//
// This is grf_paste_rgb8's reference.
func Paste(dst, src []uint8, mask []float32) error {
	if len(dst) != len(src) || len(dst) != 3*len(mask) {
		return fmt.Errorf("%w: cpu: Paste: %d and %d bytes with a %d-pixel mask", engine.ErrShape, len(dst), len(src), len(mask))
	}
	for p, m := range mask {
		if m < 0.5 {
			copy(dst[3*p:3*p+3], src[3*p:3*p+3])
		}
	}
	return nil
}
