package tile

import (
	"fmt"
	"math"
)

// Grid is the tiled-denoising layout, in latent pixels: square tiles of Tile (cut to the
// latent's size along a shorter axis), neighbours overlapping by at least Overlap.
type Grid struct {
	Tile, Overlap int
}

// Limits of a Grid (latent pixels). The UNets' attention and the number of tiles bound the
// work: MinGridTile keeps the count at most (h/(MinGridTile−Overlap))·(w/...) per step.
const (
	MinGridTile = 8
	MaxGridTile = 512
)

// Validate checks MinGridTile <= Tile <= MaxGridTile and 0 <= Overlap <= Tile/2.
func (g Grid) Validate() error {
	switch {
	case g.Tile < MinGridTile || g.Tile > MaxGridTile:
		return fmt.Errorf("%w: tile %d latents (want %d..%d)", ErrConfig, g.Tile, MinGridTile, MaxGridTile)
	case g.Overlap < 0 || 2*g.Overlap > g.Tile:
		return fmt.Errorf("%w: tile overlap %d latents (want 0..%d, half the tile)", ErrConfig, g.Overlap, g.Tile/2)
	}
	return nil
}

// Starts are the tile starts along an axis of n latents: one tile at 0 when n <= Tile;
// else k = ceil((n−Tile)/(Tile−Overlap)) + 1 tiles at j·(Tile−Overlap) for j < k−1 and the
// last at n−Tile (PASD's placement: the last tile is pushed back to the end, so every
// tile has the same size and the tiles batch in the UNet).
func (g Grid) Starts(n int) []int {
	if n <= g.Tile {
		return []int{0}
	}
	stride := g.Tile - g.Overlap
	k := (n-g.Tile+stride-1)/stride + 1
	s := make([]int, k)
	for j := 0; j < k-1; j++ {
		s[j] = j * stride
	}
	s[k-1] = n - g.Tile
	return s
}

// Window is a rectangle [Y, Y+H) × [X, X+W) of a tensor's last two axes.
type Window struct{ Y, X, H, W int }

// Scale returns the window f times larger (latent → pixels with the VAE factor).
func (w Window) Scale(f int) Window { return Window{w.Y * f, w.X * f, w.H * f, w.W * f} }

// Windows lists the tiles of an h×w latent in raster order (rows top to bottom, columns
// left to right), all of the same size min(Tile,h) × min(Tile,w). One window covering
// everything means no tiling.
func (g Grid) Windows(h, w int) []Window {
	th, tw := min(g.Tile, h), min(g.Tile, w)
	ys, xs := g.Starts(h), g.Starts(w)
	out := make([]Window, 0, len(ys)*len(xs))
	for _, y := range ys {
		for _, x := range xs {
			out = append(out, Window{y, x, th, tw})
		}
	}
	return out
}

// Weights is how a tile's prediction counts where tiles overlap.
type Weights int

const (
	// Uniform: 1 everywhere (MultiDiffusion: the plain average where tiles overlap).
	Uniform Weights = iota
	// Gaussian: PASD's _gaussian_weights (pipeline_pasd.py), outer(y_probs, x_probs) with
	// x_probs[x] = exp(−(x−(tw−1)/2)²/tw²/(2·0.01))/sqrt(2π·0.01) and y_probs[y] the same
	// with th and the midpoint th/2 (PASD's asymmetric midpoints kept), in float64, rounded
	// to float32. A tile's centre outweighs its edge about 2.7e5 to 1, so the average is
	// dominated by the tile whose centre is nearest: seams fade smoothly.
	Gaussian
)

func (k Weights) String() string {
	switch k {
	case Uniform:
		return "uniform"
	case Gaussian:
		return "gaussian"
	}
	return fmt.Sprintf("Weights(%d)", int(k))
}

// ParseWeights maps "uniform" and "gaussian" to their Weights.
func ParseWeights(s string) (Weights, error) {
	switch s {
	case "uniform":
		return Uniform, nil
	case "gaussian":
		return Gaussian, nil
	}
	return 0, fmt.Errorf("%w: tile weights %q (want uniform or gaussian)", ErrConfig, s)
}

// Make returns the th×tw weight map (row-major).
func (k Weights) Make(th, tw int) ([]float32, error) {
	if th < 1 || tw < 1 {
		return nil, fmt.Errorf("%w: weights for a %dx%d tile", ErrShape, tw, th)
	}
	w := make([]float32, th*tw)
	switch k {
	case Uniform:
		for i := range w {
			w[i] = 1
		}
	case Gaussian:
		const v = 0.01
		norm := math.Sqrt(2 * math.Pi * v)
		xp := make([]float64, tw)
		mx := float64(tw-1) / 2
		for x := range xp {
			d := float64(x) - mx
			xp[x] = math.Exp(-d*d/float64(tw*tw)/(2*v)) / norm
		}
		my := float64(th) / 2
		for y := 0; y < th; y++ {
			d := float64(y) - my
			yp := math.Exp(-d*d/float64(th*th)/(2*v)) / norm
			for x := 0; x < tw; x++ {
				w[y*tw+x] = float32(yp * xp[x])
			}
		}
	default:
		return nil, fmt.Errorf("%w: %v", ErrConfig, k)
	}
	return w, nil
}

// Extract copies the window win of src ([B,C,H,W]) into dst ([B,C,win.H,win.W]): the
// strided 2-D tile copy. Reference loop (the device op's doc):
//
//	for b, c, y < win.H, x < win.W:
//	    dst[((b·C+c)·win.H+y)·win.W+x] = src[((b·C+c)·H+win.Y+y)·W+win.X+x]
func Extract(dst, src []float32, B, C, H, W int, win Window) error {
	if err := checkWindow(len(dst), len(src), B, C, H, W, win); err != nil {
		return err
	}
	for bc := 0; bc < B*C; bc++ {
		for y := 0; y < win.H; y++ {
			copy(dst[(bc*win.H+y)*win.W:][:win.W], src[(bc*H+win.Y+y)*W+win.X:][:win.W])
		}
	}
	return nil
}

func checkWindow(nTile, nFull, B, C, H, W int, win Window) error {
	if B < 1 || C < 1 || win.H < 1 || win.W < 1 || win.Y < 0 || win.X < 0 || win.Y+win.H > H || win.X+win.W > W {
		return fmt.Errorf("%w: window %+v of a [%d,%d,%d,%d] tensor", ErrShape, win, B, C, H, W)
	}
	if nFull != B*C*H*W || nTile != B*C*win.H*win.W {
		return fmt.Errorf("%w: %d and %d values for a [%d,%d,%d,%d] tensor and its %dx%d window", ErrShape, nFull, nTile, B, C, H, W, win.W, win.H)
	}
	return nil
}

// Accumulator averages tile predictions [B,C,h,w] where tiles overlap: Acc holds
// Σ w_k·pred_k and WSum Σ w_k per latent pixel (shared by every batch row and channel).
type Accumulator struct {
	B, C, H, W int
	Acc, WSum  []float32
}

// NewAccumulator returns a zeroed accumulator for [B,C,h,w].
func NewAccumulator(B, C, h, w int) (*Accumulator, error) {
	if B < 1 || C < 1 || h < 1 || w < 1 {
		return nil, fmt.Errorf("%w: accumulator [%d,%d,%d,%d]", ErrShape, B, C, h, w)
	}
	return &Accumulator{B: B, C: C, H: h, W: w, Acc: make([]float32, B*C*h*w), WSum: make([]float32, h*w)}, nil
}

// Reset zeroes the sums for the next step.
func (a *Accumulator) Reset() {
	clear(a.Acc)
	clear(a.WSum)
}

// Add accumulates one tile's prediction pred ([B,C,win.H,win.W]) with weights wt
// ([win.H,win.W]). Reference loop (float32; each product rounded, then the sum):
//
//	for b, c, y < win.H, x < win.W:
//	    Acc[b,c,win.Y+y,win.X+x] += float32(pred[b,c,y,x]·wt[y,x])
//	for y, x: WSum[win.Y+y, win.X+x] += wt[y,x]
func (a *Accumulator) Add(win Window, pred, wt []float32) error {
	if err := checkWindow(len(pred), len(a.Acc), a.B, a.C, a.H, a.W, win); err != nil {
		return err
	}
	if len(wt) != win.H*win.W {
		return fmt.Errorf("%w: %d weights for a %dx%d tile", ErrShape, len(wt), win.W, win.H)
	}
	for bc := 0; bc < a.B*a.C; bc++ {
		for y := 0; y < win.H; y++ {
			dst := a.Acc[(bc*a.H+win.Y+y)*a.W+win.X:][:win.W]
			src := pred[(bc*win.H+y)*win.W:][:win.W]
			ww := wt[y*win.W:][:win.W]
			for x := range dst {
				dst[x] += float32(src[x] * ww[x])
			}
		}
	}
	for y := 0; y < win.H; y++ {
		dst := a.WSum[(win.Y+y)*a.W+win.X:][:win.W]
		for x, v := range wt[y*win.W:][:win.W] {
			dst[x] += v
		}
	}
	return nil
}

// Average writes Acc/WSum into dst ([B,C,h,w]): the normalise-by-weight-sum op. A pixel
// no tile covered (WSum 0) is an error, never a NaN. Reference loop:
//
//	for b, c, y, x: dst[b,c,y,x] = Acc[b,c,y,x] / WSum[y,x]
func (a *Accumulator) Average(dst []float32) error {
	if len(dst) != len(a.Acc) {
		return fmt.Errorf("%w: %d values for [%d,%d,%d,%d]", ErrShape, len(dst), a.B, a.C, a.H, a.W)
	}
	n := a.H * a.W
	for p, s := range a.WSum {
		if !(s > 0) {
			return fmt.Errorf("%w: latent pixel %d,%d has weight %g: no tile covers it", ErrShape, p%a.W, p/a.W, s)
		}
	}
	for bc := 0; bc < a.B*a.C; bc++ {
		acc, out := a.Acc[bc*n:][:n], dst[bc*n:][:n]
		for p, s := range a.WSum {
			out[p] = acc[p] / s
		}
	}
	return nil
}
