package refine

import (
	"context"
	"fmt"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/pipeline/tile"
)

// Tiling is how a stage runs its VAE and its denoising (Stage1Args, Stage2Args). The zero
// value is the untiled path: one VAE call per encode and decode, one UNet call per step.
type Tiling struct {
	// VAE, if set, is diffusers' tiled VAE (it tiles when a side exceeds its tile).
	VAE *tile.VAE
	// Grid, if set, tiles the denoising when the latent is larger than one tile:
	// overlapping windows through the UNet, their predictions averaged with Weights.
	Grid    *tile.Grid
	Weights tile.Weights
	// Batch is the number of tiles per UNet call (at most engine.MaxTiles; 0 or 1: one).
	Batch int
}

// runTiles is a tiled VAE pass on the device, diffusers' tiled_encode or tiled_decode:
// the windows of p are cut out of in ([.., C, InH, InW]) with strided copies, run through
// the network (run returns [.., cout, t.OutH, t.OutW]), blended in raster order with the
// tile above and the tile to the left (VAEBlend, in place, as Plan.Stitch), and their kept
// part copied into out ([.., cout, OutH, OutW]). Two rows of tile outputs live at a time.
func (r *Refiner) runTiles(ctx context.Context, p tile.Plan, in engine.Tensor, C, cout int, out engine.Tensor,
	run func(ctx context.Context, sc *scope, x engine.Tensor) (engine.Tensor, error)) error {
	s := r.s
	cols := len(p.Cols.Starts)
	prevSc, curSc := r.scope(), r.scope()
	defer func() { prevSc.close(); curSc.close() }()
	prev, cur := make([]engine.Tensor, cols), make([]engine.Tensor, cols)
	planeIn, planeOut := int64(p.InH)*int64(p.InW), int64(p.OutH)*int64(p.OutW)
	for _, t := range p.Tiles() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if t.Col == 0 && t.Row > 0 { // row t.Row-1 is final: drop the row before it
			prevSc.close()
			prevSc, curSc = curSc, r.scope()
			prev, cur = cur, make([]engine.Tensor, cols)
		}
		x, err := curSc.alloc(engine.Float32, engine.Shape{1, int64(C), int64(t.H), int64(t.W)})
		if err != nil {
			return err
		}
		for c := int64(0); c < int64(C); c++ {
			if err := s.Copy2D(x, in, engine.Copy2D{Rows: int64(t.H), Cols: int64(t.W), DstOffset: c * int64(t.H*t.W), DstPitch: int64(t.W),
				SrcOffset: c*planeIn + int64(t.Y)*int64(p.InW) + int64(t.X), SrcPitch: int64(p.InW)}); err != nil {
				return err
			}
		}
		o, err := run(ctx, curSc, x)
		if err != nil {
			return fmt.Errorf("tile %d,%d: %w", t.Row, t.Col, err)
		}
		curSc.release(x)
		x.Close()
		if n := shapeOf(o).NumElements(); n != int64(cout*t.OutH*t.OutW) {
			return fmt.Errorf("refine: tile %d,%d: the network returned %v, want %d·%d·%d values", t.Row, t.Col, shapeOf(o), cout, t.OutH, t.OutW)
		}
		if o, err = curSc.view(o, 0, engine.Shape{int64(cout), int64(t.OutH), int64(t.OutW)}); err != nil {
			return err
		}
		if t.Row > 0 {
			if err := s.VAEBlend(prev[t.Col], o, p.Rows.Blend, true); err != nil {
				return err
			}
		}
		if t.Col > 0 {
			if err := s.VAEBlend(cur[t.Col-1], o, p.Cols.Blend, false); err != nil {
				return err
			}
		}
		y0, x0 := t.Row*p.Rows.Keep, t.Col*p.Cols.Keep
		kh, kw := min(p.Rows.Keep, t.OutH), min(p.Cols.Keep, t.OutW)
		if y0+kh > p.OutH || x0+kw > p.OutW {
			return fmt.Errorf("%w: tile %d,%d lands outside the %dx%d output", ErrInput, t.Row, t.Col, p.OutW, p.OutH)
		}
		for c := int64(0); c < int64(cout); c++ {
			if err := s.Copy2D(out, o, engine.Copy2D{Rows: int64(kh), Cols: int64(kw), DstOffset: c*planeOut + int64(y0)*int64(p.OutW) + int64(x0),
				DstPitch: int64(p.OutW), SrcOffset: c * int64(t.OutH*t.OutW), SrcPitch: int64(t.OutW)}); err != nil {
				return err
			}
		}
		cur[t.Col] = o
	}
	return nil
}

// tiledDenoise is a stage's tiled UNet call: the windows, their weights and the bound
// tensors of one batch.
type tiledDenoise struct {
	wins    []tile.Window
	batch   int
	weights engine.Tensor // [th, tw]
	wsum    engine.Tensor // [h, w]
}

// newTiledDenoise lays out the windows of an h×w latent (nil when the grid does not
// tile it).
func newTiledDenoise(t Tiling, h, w int) *tiledDenoise {
	if t.Grid == nil {
		return nil
	}
	wins := t.Grid.Windows(h, w)
	if len(wins) < 2 {
		return nil
	}
	return &tiledDenoise{wins: wins, batch: min(max(t.Batch, 1), len(wins), engine.MaxTiles)}
}

// tiles returns batch b's windows padded to the batch size by repeating the last one (so
// every UNet call has one shape and a captured CUDA graph replays), and the real ones.
func (d *tiledDenoise) tiles(b int) (padded, real engine.Tiles) {
	lo := b * d.batch
	hi := min(lo+d.batch, len(d.wins))
	padded = engine.Tiles{TH: d.wins[0].H, TW: d.wins[0].W}
	for k := lo; k < lo+d.batch; k++ {
		w := d.wins[min(k, hi-1)]
		padded.Y, padded.X = append(padded.Y, w.Y), append(padded.X, w.X)
	}
	real = engine.Tiles{TH: padded.TH, TW: padded.TW, Y: padded.Y[:hi-lo], X: padded.X[:hi-lo]}
	return padded, real
}

// calls is the number of UNet calls per step.
func (d *tiledDenoise) calls() int { return (len(d.wins) + d.batch - 1) / d.batch }

// scaled returns the windows f times larger (the control image at 8x the latent).
func scaled(t engine.Tiles, f int) engine.Tiles {
	o := engine.Tiles{TH: t.TH * f, TW: t.TW * f}
	for k := range t.Y {
		o.Y, o.X = append(o.Y, t.Y[k]*f), append(o.X, t.X[k]*f)
	}
	return o
}

// step runs one tiled prediction: for each batch, gather fills the UNet's bound inputs and
// the UNet writes pred [2·batch, C, th, tw]; the real windows' predictions are added into
// np [2, C, h, w] with the weights, then divided by the summed weights. Nothing crosses
// between host and device.
func (d *tiledDenoise) step(ctx context.Context, r *Refiner, unet string, in, out map[string]engine.Tensor, pred, np engine.Tensor,
	gather func(padded engine.Tiles) error) error {
	s := r.s
	if err := s.Zero(np); err != nil {
		return err
	}
	if err := s.Zero(d.wsum); err != nil {
		return err
	}
	for b := 0; b < d.calls(); b++ {
		if err := ctx.Err(); err != nil { // a cancel stops a step between its UNet calls
			return err
		}
		padded, real := d.tiles(b)
		if err := gather(padded); err != nil {
			return err
		}
		if err := r.runInto(ctx, unet, in, out); err != nil {
			return err
		}
		if err := s.TileAccumulate(pred, d.weights, np, d.wsum, real); err != nil {
			return err
		}
	}
	return s.Pointwise(engine.Pointwise{Op: engine.PointDivide, Src: np, Dst: np, Mask: d.wsum})
}

// repeatRows returns [2·n, rest...] with rows j·n..j·n+n-1 equal to row j of src [2,
// rest...] (the CFG rows of one prompt for n tiles), owned by scp.
func (r *Refiner) repeatRows(scp *scope, src engine.Tensor, n int) (engine.Tensor, error) {
	sh := src.Shape()
	if len(sh) < 1 || sh[0] != 2 {
		return nil, fmt.Errorf("refine: conditioning %v, want [2, ...]", sh)
	}
	row := sh.NumElements() / 2
	shape := append(engine.Shape{int64(2 * n)}, sh[1:]...)
	dst, err := scp.alloc(engine.Float32, shape)
	if err != nil {
		return nil, err
	}
	for j := int64(0); j < 2; j++ {
		for k := int64(0); k < int64(n); k++ {
			if err := r.s.Copy2D(dst, src, engine.Copy2D{Rows: 1, Cols: row, DstOffset: (j*int64(n) + k) * row, SrcOffset: j * row}); err != nil {
				return nil, err
			}
		}
	}
	return dst, nil
}

// tileBatch is the batch a stage runs: the planned one, one on the cpu device when the
// request left it to memory (ONNX Runtime on the CPU is no faster per tile in a batch),
// and at most what the UNet accepts (a TensorRT plan's profile: 2 rows per tile).
func (r *Refiner) tileBatch(planned int, unet string) int {
	b := max(planned, 1)
	if r.cfg.TileBatch == 0 && r.s.Device().Name() == "cpu" {
		b = 1
	}
	if e, ok := r.eng[unet]; ok {
		if m := engine.MaxBatch(e, "sample"); m > 0 {
			b = min(b, max(m/2, 1))
		}
	}
	return min(b, engine.MaxTiles)
}
