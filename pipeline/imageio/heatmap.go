package imageio

import (
	"image"
	"image/color"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// Heatmap renders values in [0,1] (row-major w×h; outside values are clamped) with the
// "turbo"-like colour ramp used for the PQ/AQ maps: low = dark blue, high = dark red.
func Heatmap(values []float32, w, h int) *RGB8 {
	out := NewRGB8(w, h)
	for i := 0; i < w*h && i < len(values); i++ {
		r, g, b := ramp(values[i])
		out.Pix[3*i], out.Pix[3*i+1], out.Pix[3*i+2] = r, g, b
	}
	return out
}

// ramp: piecewise-linear blue → cyan → yellow → red.
func ramp(v float32) (uint8, uint8, uint8) {
	if !(v >= 0) { // NaN too
		v = 0
	}
	if v > 1 {
		v = 1
	}
	stops := [...][3]float32{{48, 18, 59}, {40, 130, 230}, {30, 220, 160}, {240, 220, 40}, {200, 40, 10}, {122, 4, 3}}
	x := v * float32(len(stops)-1)
	i := int(x)
	if i >= len(stops)-1 {
		i = len(stops) - 2
	}
	f := x - float32(i)
	c := func(k int) uint8 { return uint8(stops[i][k]*(1-f) + stops[i+1][k]*f + 0.5) }
	return c(0), c(1), c(2)
}

// Overlay returns img with mask (w×h, > 0.5 = marked) tinted red at the given opacity and
// the rest dimmed slightly, for showing the repair region over the picture.
func Overlay(img *RGB8, mask []float32, opacity float32) *RGB8 {
	out := NewRGB8(img.W, img.H)
	for p := 0; p < img.W*img.H; p++ {
		r, g, b := float32(img.Pix[3*p]), float32(img.Pix[3*p+1]), float32(img.Pix[3*p+2])
		if p < len(mask) && mask[p] > 0.5 {
			r = r*(1-opacity) + 255*opacity
			g *= 1 - opacity
			b *= 1 - opacity
		} else {
			r, g, b = r*0.7, g*0.7, b*0.7
		}
		out.Pix[3*p], out.Pix[3*p+1], out.Pix[3*p+2] = uint8(r+0.5), uint8(g+0.5), uint8(b+0.5)
	}
	return out
}

// HeatmapBar renders a quality map the way every grefine map is shown: red means bad,
// blue means good, in P and A alike. values are badness in [0,1] (pass 1−P for the
// perceptual map, A for the alignment map). Below the map it adds a colour bar (blue
// "good" on the left to red "bad" on the right) and a caption, when the map is wide
// enough to hold the text (at least 120 px).
func HeatmapBar(values []float32, w, h int, caption string) *RGB8 {
	const barH, textH = 12, 16
	m := Heatmap(values, w, h)
	out := NewRGB8(w, h+barH+textH)
	copy(out.Pix, m.Pix)
	for x := 0; x < w; x++ {
		r, g, b := ramp(float32(x) / float32(max(w-1, 1)))
		for y := h; y < h+barH; y++ {
			i := 3 * (y*w + x)
			out.Pix[i], out.Pix[i+1], out.Pix[i+2] = r, g, b
		}
	}
	if w >= 120 {
		img := out.Image()
		d := &font.Drawer{Dst: img, Src: image.NewUniform(color.White), Face: basicfont.Face7x13}
		base := fixed.I(h + barH + textH - 4)
		draw := func(s string, x fixed.Int26_6) {
			d.Dot = fixed.Point26_6{X: x, Y: base}
			d.DrawString(s)
		}
		draw("good", fixed.I(2))
		draw("bad", fixed.I(w-2)-d.MeasureString("bad"))
		if cw := d.MeasureString(caption); caption != "" && cw < fixed.I(w-80) {
			draw(caption, (fixed.I(w)-cw)/2)
		}
		out = ToRGB8(img)
	}
	return out
}

// Binary renders a 0/1 mask as an 8-bit grayscale image: 255 where mask >= 0.5,
// else 0 (the repair mask as a program reads it).
func Binary(mask []float32, w, h int) *image.Gray {
	g := image.NewGray(image.Rect(0, 0, w, h))
	for i := 0; i < w*h && i < len(mask); i++ {
		if mask[i] >= 0.5 {
			g.Pix[i] = 255
		}
	}
	return g
}
