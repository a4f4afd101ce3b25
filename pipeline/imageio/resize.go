package imageio

import (
	"fmt"
	"sync"

	"github.com/grefine/grefine/engine"
)

var hostDevice struct {
	once sync.Once
	dev  engine.Device
	err  error
}

// ResizeBicubicPIL resizes like Pillow's Image.resize((w, h), Image.BICUBIC) on an RGB
// image, bit for bit, in host memory: it runs the cpu device's ResizeImage (engine/cpu
// holds the one implementation, which the GPU kernels follow), so the program must link
// the cpu device (import engine/cpu; the front ends and the tests do). A missing cpu
// device or a size below 1 is a programming error and panics.
func ResizeBicubicPIL(src *RGB8, w, h int) *RGB8 {
	hostDevice.once.Do(func() { hostDevice.dev, hostDevice.err = engine.NewDevice("cpu", nil) })
	if hostDevice.err != nil {
		panic(fmt.Sprintf("imageio: ResizeBicubicPIL: %v", hostDevice.err))
	}
	out := NewRGB8(w, h)
	err := func() error {
		s, err := hostDevice.dev.NewStream()
		if err != nil {
			return err
		}
		defer s.Close()
		in, err := engine.FromUint8(engine.Shape{int64(src.H), int64(src.W), 3}, src.Pix)
		if err != nil {
			return err
		}
		dst, err := engine.FromUint8(engine.Shape{int64(h), int64(w), 3}, out.Pix)
		if err != nil {
			return err
		}
		return s.ResizeImage(in, dst)
	}()
	if err != nil {
		panic(fmt.Sprintf("imageio: ResizeBicubicPIL %dx%d -> %dx%d: %v", src.W, src.H, w, h, err))
	}
	return out
}
