package tile

import (
	"context"
	"fmt"
	"math"
)

// VAE is diffusers' AutoencoderKL tiling (enable_tiling, diffusers 0.31): Tile is
// tile_sample_min_size in pixels, Tile/Factor is tile_latent_min_size, Overlap is
// tile_overlap_factor, Factor the VAE's downsampling factor (8 for every SD/SDXL VAE).
// diffusers' defaults are Tile = the VAE's sample_size (512 for SD-1.5, 1024 for SDXL)
// and Overlap 0.25.
type VAE struct {
	Tile    int
	Overlap float64
	Factor  int
}

// Limits of the settings (they bound the work: the smallest tile makes the most tiles).
const (
	MinVAETile = 16
	MaxVAETile = 4096
	MaxOverlap = 0.5 // beyond half, a blend reaches into the tile before (diffusers allows it; the seam bound does not hold)
)

// TileLatent is tile_latent_min_size = int(Tile/Factor).
func (v VAE) TileLatent() int { return v.Tile / v.Factor }

// Validate checks the ranges and that the tiles line up with the latent grid: the encode
// stride int(Tile·(1−Overlap)) must be Factor times the kept latent rows
// TileLatent − int(TileLatent·Overlap), and the decode stride int(TileLatent·(1−Overlap))
// must be the kept pixel rows Tile − int(Tile·Overlap) divided by Factor. Elsewhere
// diffusers' tiles drift against the latent grid and its output is not H/Factor × W/Factor
// (512 with 0.25 lines up; so does every multiple of 32 with 0.25 and of 16 with 0.5).
func (v VAE) Validate() error {
	switch {
	case v.Factor < 1:
		return fmt.Errorf("%w: VAE factor %d", ErrConfig, v.Factor)
	case v.Tile < MinVAETile || v.Tile > MaxVAETile || v.Tile%v.Factor != 0:
		return fmt.Errorf("%w: VAE tile %d (want a multiple of %d in %d..%d)", ErrConfig, v.Tile, v.Factor, MinVAETile, MaxVAETile)
	case !(v.Overlap >= 0 && v.Overlap <= MaxOverlap):
		return fmt.Errorf("%w: VAE tile overlap %g (want 0..%g)", ErrConfig, v.Overlap, MaxOverlap)
	}
	tl := v.TileLatent()
	encStride := int(float64(v.Tile) * (1 - v.Overlap))
	encKeep := tl - int(float64(tl)*v.Overlap)
	decStride := int(float64(tl) * (1 - v.Overlap))
	decKeep := v.Tile - int(float64(v.Tile)*v.Overlap)
	if encStride != v.Factor*encKeep || decStride*v.Factor != decKeep || encStride < 1 || decStride < 1 {
		return fmt.Errorf("%w: VAE tile %d with overlap %g does not line up with the %dx latent grid (encode stride %d px vs %d kept latents, decode stride %d latents vs %d kept px)",
			ErrConfig, v.Tile, v.Overlap, v.Factor, encStride, encKeep, decStride, decKeep)
	}
	return nil
}

// Axis is diffusers' tiling of one axis: tiles start every Stride input units (the last
// ones are shorter: ragged), each output tile is blended with its predecessor over its
// first Blend output units and keeps its first Keep.
type Axis struct {
	Starts, Sizes []int // input units
	Tile, Stride  int   // input units
	Blend, Keep   int   // output units
}

func vaeAxis(n, tile, stride, blend, keep int) Axis {
	a := Axis{Tile: tile, Stride: stride, Blend: blend, Keep: keep}
	for s := 0; s < n; s += stride {
		a.Starts = append(a.Starts, s)
		a.Sizes = append(a.Sizes, min(tile, n-s))
	}
	return a
}

// Plan is one tiled encode or decode: the input [C,InH,InW] is cut into Rows × Cols
// windows, each goes through the network, and Stitch blends the outputs into
// [C',OutH,OutW]. Scale is the output size of one input unit (Factor for a decode) and
// Shrink its inverse (Factor for an encode); one of them is 1.
type Plan struct {
	Encode        bool
	InH, InW      int
	OutH, OutW    int
	Rows, Cols    Axis
	Scale, Shrink int
	tileMin       int
}

// Tile is one window of a Plan, in raster order (Row over the height, Col over the width).
type Tile struct {
	Row, Col   int
	Y, X, H, W int // input window
	OutH, OutW int // the network's output for it
}

// EncodePlan plans the tiled encode of an h×w image (pixels, multiples of Factor).
func (v VAE) EncodePlan(h, w int) (Plan, error) {
	if err := v.Validate(); err != nil {
		return Plan{}, err
	}
	if h < v.Factor || w < v.Factor || h%v.Factor != 0 || w%v.Factor != 0 {
		return Plan{}, fmt.Errorf("%w: image %dx%d (want multiples of %d)", ErrShape, w, h, v.Factor)
	}
	tl := v.TileLatent()
	stride := int(float64(v.Tile) * (1 - v.Overlap))
	blend := int(float64(tl) * v.Overlap)
	return Plan{Encode: true, InH: h, InW: w, OutH: h / v.Factor, OutW: w / v.Factor,
		Rows: vaeAxis(h, v.Tile, stride, blend, tl-blend), Cols: vaeAxis(w, v.Tile, stride, blend, tl-blend),
		Scale: 1, Shrink: v.Factor, tileMin: v.Tile}, nil
}

// DecodePlan plans the tiled decode of an h×w latent.
func (v VAE) DecodePlan(h, w int) (Plan, error) {
	if err := v.Validate(); err != nil {
		return Plan{}, err
	}
	if h < 1 || w < 1 {
		return Plan{}, fmt.Errorf("%w: latent %dx%d", ErrShape, w, h)
	}
	tl := v.TileLatent()
	stride := int(float64(tl) * (1 - v.Overlap))
	blend := int(float64(v.Tile) * v.Overlap)
	return Plan{Encode: false, InH: h, InW: w, OutH: h * v.Factor, OutW: w * v.Factor,
		Rows: vaeAxis(h, tl, stride, blend, v.Tile-blend), Cols: vaeAxis(w, tl, stride, blend, v.Tile-blend),
		Scale: v.Factor, Shrink: 1, tileMin: tl}, nil
}

// Tiled says whether diffusers tiles this input: a side longer than the tile (pixels for
// an encode, latents for a decode). Otherwise Run makes one call on the whole input,
// which is the untiled path exactly.
func (p Plan) Tiled() bool { return p.InH > p.tileMin || p.InW > p.tileMin }

// Tiles lists the windows in diffusers' order (rows top to bottom, columns left to right).
func (p Plan) Tiles() []Tile {
	if !p.Tiled() {
		return []Tile{{H: p.InH, W: p.InW, OutH: p.OutH, OutW: p.OutW}}
	}
	ts := make([]Tile, 0, len(p.Rows.Starts)*len(p.Cols.Starts))
	for i, y := range p.Rows.Starts {
		for j, x := range p.Cols.Starts {
			h, w := p.Rows.Sizes[i], p.Cols.Sizes[j]
			ts = append(ts, Tile{Row: i, Col: j, Y: y, X: x, H: h, W: w,
				OutH: h * p.Scale / p.Shrink, OutW: w * p.Scale / p.Shrink})
		}
	}
	return ts
}

// Stitch blends the tiles' outputs (each [C,OutH,OutW] of its Tile, in Tiles order) into
// the [C,OutH,OutW] result, exactly as diffusers' tiled loops do:
//
//	for i, j in raster order:            // outs are modified in place, so a tile is
//	    if i > 0: blend_v(out[i-1][j], out[i][j], Blend)   // blended with neighbours that
//	    if j > 0: blend_h(out[i][j-1], out[i][j], Blend)   // are blended already
//	    result[i·Keep:, j·Keep:] = out[i][j][:Keep, :Keep]
//	blend_v(a, b, e): e = min(a.h, b.h, e); for y < e:
//	    b[y] = float32(a[a.h-e+y]·float32(1-y/e)) + float32(b[y]·float32(y/e))
//
// and blend_h the same along the width. The arithmetic is float32 as in PyTorch (each
// product rounded, then the sum). An untiled plan returns its single output unchanged.
func (p Plan) Stitch(outs [][]float32, C int) ([]float32, error) {
	ts := p.Tiles()
	if len(outs) != len(ts) || C < 1 {
		return nil, fmt.Errorf("%w: %d tile outputs with %d channels for %d tiles", ErrShape, len(outs), C, len(ts))
	}
	for k, t := range ts {
		if len(outs[k]) != C*t.OutH*t.OutW {
			return nil, fmt.Errorf("%w: tile %d,%d output has %d values, want %d·%d·%d", ErrShape, t.Row, t.Col, len(outs[k]), C, t.OutH, t.OutW)
		}
	}
	if !p.Tiled() {
		return outs[0], nil
	}
	cols := len(p.Cols.Starts)
	res := make([]float32, C*p.OutH*p.OutW)
	for k, t := range ts {
		b := outs[k]
		if t.Row > 0 {
			blendV(outs[k-cols], b, C, ts[k-cols].OutH, t.OutH, t.OutW, p.Rows.Blend)
		}
		if t.Col > 0 {
			blendH(outs[k-1], b, C, t.OutH, ts[k-1].OutW, t.OutW, p.Cols.Blend)
		}
		y0, x0 := t.Row*p.Rows.Keep, t.Col*p.Cols.Keep
		kh, kw := min(p.Rows.Keep, t.OutH), min(p.Cols.Keep, t.OutW)
		if y0+kh > p.OutH || x0+kw > p.OutW {
			return nil, fmt.Errorf("%w: tile %d,%d lands outside the %dx%d output", ErrShape, t.Row, t.Col, p.OutW, p.OutH)
		}
		for c := 0; c < C; c++ {
			for y := 0; y < kh; y++ {
				copy(res[(c*p.OutH+y0+y)*p.OutW+x0:][:kw], b[(c*t.OutH+y)*t.OutW:][:kw])
			}
		}
	}
	return res, nil
}

// blendV blends the last rows of a ([C,ah,w]) into the first rows of b ([C,bh,w]).
func blendV(a, b []float32, C, ah, bh, w, extent int) {
	e := min(ah, bh, extent)
	for y := 0; y < e; y++ {
		wa, wb := float32(1-float64(y)/float64(e)), float32(float64(y)/float64(e))
		for c := 0; c < C; c++ {
			ra := a[(c*ah+ah-e+y)*w:][:w]
			rb := b[(c*bh+y)*w:][:w]
			for x := range rb {
				rb[x] = float32(ra[x]*wa) + float32(rb[x]*wb)
			}
		}
	}
}

// blendH blends the last columns of a ([C,h,aw]) into the first columns of b ([C,h,bw]).
func blendH(a, b []float32, C, h, aw, bw, extent int) {
	e := min(aw, bw, extent)
	for x := 0; x < e; x++ {
		wa, wb := float32(1-float64(x)/float64(e)), float32(float64(x)/float64(e))
		for c := 0; c < C; c++ {
			for y := 0; y < h; y++ {
				i := (c*h+y)*bw + x
				b[i] = float32(a[(c*h+y)*aw+aw-e+x]*wa) + float32(b[i]*wb)
			}
		}
	}
}

// RunFunc runs the network on one tile's input [C,t.H,t.W] and returns its output
// [C',t.OutH,t.OutW]. It may keep the input; Run allocates a new one per tile.
type RunFunc func(ctx context.Context, t Tile, in []float32) ([]float32, error)

// Run is the whole tiled operation on host tensors: it cuts each window out of x
// ([C,InH,InW]), calls run, checks the output's size and stitches the outputs (cout
// channels). An untiled plan makes one call with x itself. ctx is checked between tiles.
func (p Plan) Run(ctx context.Context, x []float32, C, cout int, run RunFunc) ([]float32, error) {
	if C < 1 || len(x) != C*p.InH*p.InW {
		return nil, fmt.Errorf("%w: input has %d values, want %d·%d·%d", ErrShape, len(x), C, p.InH, p.InW)
	}
	ts := p.Tiles()
	outs := make([][]float32, len(ts))
	for k, t := range ts {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		in := x
		if p.Tiled() {
			in = make([]float32, C*t.H*t.W)
			if err := Extract(in, x, 1, C, p.InH, p.InW, Window{Y: t.Y, X: t.X, H: t.H, W: t.W}); err != nil {
				return nil, err
			}
		}
		o, err := run(ctx, t, in)
		if err != nil {
			return nil, fmt.Errorf("tile %d,%d: %w", t.Row, t.Col, err)
		}
		if len(o) != cout*t.OutH*t.OutW {
			return nil, fmt.Errorf("%w: tile %d,%d: the network returned %d values, want %d·%d·%d", ErrShape, t.Row, t.Col, len(o), cout, t.OutH, t.OutW)
		}
		outs[k] = o
	}
	return p.Stitch(outs, cout)
}

// Count is the number of network calls the plan makes.
func (p Plan) Count() int { return len(p.Tiles()) }

// BlendWeightStep is the largest change of a tile's blend weight between neighbouring
// output pixels, 1/Blend (the seam bound's slope; +Inf with no blending).
func (a Axis) BlendWeightStep() float64 {
	if a.Blend <= 0 {
		return math.Inf(1)
	}
	return 1 / float64(a.Blend)
}
