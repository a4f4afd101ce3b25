package imageio

import "fmt"

// ResizeBicubicPIL resizes like Pillow's Image.resize((w, h), Image.BICUBIC) on an RGB
// image, bit for bit, in host memory (ResizePIL with the bicubic filter and no box), for
// callers outside a request (tests, tools); inside a request the resize runs on the
// request's device (engine.Ops.ResizeImage). A size below 1 is a programming error and
// panics.
func ResizeBicubicPIL(src *RGB8, w, h int) *RGB8 {
	out, err := ResizePIL(src, w, h, Bicubic, nil)
	if err != nil {
		panic(fmt.Sprintf("imageio: ResizeBicubicPIL %dx%d -> %dx%d: %v", src.W, src.H, w, h, err))
	}
	return out
}
