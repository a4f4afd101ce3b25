package cuda

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/engine/cpu"
)

// The ABI 3 ops of large images against their cpu twins, behind guard bands, on ragged
// shapes: bit for bit on cuda-emu and on a GPU (copies, explicitly rounded float32
// products and sums in the reference's order, integer min/max).

// randTiles places n windows of th×tw at random inside an h×w plane (overlapping, in any
// order, repeats allowed: the padded last batch of a step repeats its last window).
func randTiles(r *rand.Rand, n, th, tw, h, w int) engine.Tiles {
	t := engine.Tiles{TH: th, TW: tw}
	for k := 0; k < n; k++ {
		t.Y = append(t.Y, r.IntN(h-th+1))
		t.X = append(t.X, r.IntN(w-tw+1))
	}
	if n > 2 {
		t.Y[n-1], t.X[n-1] = t.Y[n-2], t.X[n-2]
	}
	return t
}

func TestTileOpsMatchCPU(t *testing.T) {
	d := gpu(t)
	s := newStream(t, d)
	r := rand.New(rand.NewPCG(21, 22))
	for _, c := range []struct {
		R, copies, C, H, W, th, tw, n, nb int
	}{
		{1, 1, 1, 1, 1, 1, 1, 1, 1},
		{1, 2, 4, 19, 14, 8, 8, 12, 12},   // PASD's CFG rows from one latent (md_pasd's grid)
		{2, 2, 9, 14, 19, 8, 8, 5, 7},     // SDXL's 9-channel input, the last batch padded
		{1, 2, 3, 152, 112, 64, 64, 3, 4}, // the control image at 8x the windows
		{2, 2, 4, 33, 47, 13, 5, 64, 64},  // the most windows of a call, ragged sizes
		{1, 1, 1, 7, 3, 7, 3, 2, 2},       // windows as large as the plane
	} {
		t.Run(fmt.Sprintf("R%d/copies%d/C%d/%dx%d/win%dx%d/n%d", c.R, c.copies, c.C, c.W, c.H, c.tw, c.th, c.n), func(t *testing.T) {
			tl := randTiles(r, c.n, c.th, c.tw, c.H, c.W)
			src := randF32(r, c.R*c.C*c.H*c.W, -2, 2)
			whole := engine.Shape{int64(c.R), int64(c.C), int64(c.H), int64(c.W)}
			wins := engine.Shape{int64(c.copies * c.n), int64(c.C), int64(c.th), int64(c.tw)}
			want, _ := engine.NewHostTensor(engine.Float32, wins)
			cpuRun(t, func(cs engine.Stream) error { return cs.TileGather(reshaped(src, whole), want, tl) })
			gs := newGuardedT(t, d, s, src, whole, 9)
			gd := newGuardedT(t, d, s, nil, wins, 9)
			require.NoError(t, s.TileGather(gs.view, gd.view, tl))
			requireF32(t, gd.read(t, s, "gather").F32, want.F32, tol(absTol(0)), "TileGather")

			// Accumulate twice (two batches of a step): the sums carry over in order.
			accShape := engine.Shape{int64(c.copies), int64(c.C), int64(c.H), int64(c.W)}
			predShape := engine.Shape{int64(c.copies * c.nb), int64(c.C), int64(c.th), int64(c.tw)}
			acc0, wsum0 := randF32(r, c.copies*c.C*c.H*c.W, -1, 1), randF32(r, c.H*c.W, 0, 1)
			wantAcc, _ := engine.FromFloat32(accShape, append([]float32(nil), acc0.F32...))
			wantW, _ := engine.FromFloat32(engine.Shape{int64(c.H), int64(c.W)}, append([]float32(nil), wsum0.F32...))
			ga := newGuardedT(t, d, s, acc0, accShape, 7)
			gw := newGuardedT(t, d, s, wsum0, wantW.Shape(), 7)
			for pass := 0; pass < 2; pass++ {
				pred, wt := randF32(r, c.copies*c.nb*c.C*c.th*c.tw, -3, 3), randF32(r, c.th*c.tw, 1e-6, 1)
				wt2 := reshaped(wt, engine.Shape{int64(c.th), int64(c.tw)})
				cpuRun(t, func(cs engine.Stream) error {
					return cs.TileAccumulate(reshaped(pred, predShape), wt2, wantAcc, wantW, tl)
				})
				gp := newGuardedT(t, d, s, pred, predShape, 5)
				gwt := newGuardedT(t, d, s, wt, wt2.Shape(), 5)
				require.NoError(t, s.TileAccumulate(gp.view, gwt.view, ga.view, gw.view, tl))
				gp.read(t, s, "pred")
			}
			requireF32(t, ga.read(t, s, "acc").F32, wantAcc.F32, tol(absTol(0)), "TileAccumulate acc")
			requireF32(t, gw.read(t, s, "wsum").F32, wantW.F32, tol(absTol(0)), "TileAccumulate wsum")
		})
	}
	// Windows outside the plane, too many windows, rows that do not match: refused.
	src := newGuardedT(t, d, s, nil, engine.Shape{1, 1, 8, 8}, 0)
	dst := newGuardedT(t, d, s, nil, engine.Shape{1, 1, 4, 4}, 0)
	requireErrorIs(t, s.TileGather(src.view, dst.view, engine.Tiles{TH: 4, TW: 4, Y: []int{5}, X: []int{0}}), engine.ErrShape)
	requireErrorIs(t, s.TileGather(src.view, dst.view, engine.Tiles{TH: 4, TW: 4, Y: []int{0, 0}, X: []int{0, 1}}), engine.ErrShape)
	many := engine.Tiles{TH: 1, TW: 1, Y: make([]int, engine.MaxTiles+1), X: make([]int, engine.MaxTiles+1)}
	requireErrorIs(t, s.TileGather(src.view, newGuardedT(t, d, s, nil, engine.Shape{engine.MaxTiles + 1, 1, 1, 1}, 0).view, many), engine.ErrShape)
}

func TestVAEBlendMatchesCPU(t *testing.T) {
	d := gpu(t)
	s := newStream(t, d)
	r := rand.New(rand.NewPCG(23, 24))
	for _, c := range []struct {
		C, ah, aw, bh, bw, e int
		vertical             bool
	}{
		{1, 1, 1, 1, 1, 1, true}, {4, 8, 8, 8, 8, 2, true}, {4, 8, 8, 8, 8, 2, false},
		{3, 64, 64, 24, 64, 16, true}, {3, 64, 64, 64, 8, 16, false}, // ragged: the band is cut to the shorter tile
		{3, 5, 7, 9, 7, 0, true}, {4, 3, 1, 3, 5, 4, false},
	} {
		t.Run(fmt.Sprintf("C%d/%dx%d->%dx%d/e%d/vertical=%v", c.C, c.aw, c.ah, c.bw, c.bh, c.e, c.vertical), func(t *testing.T) {
			a, b := randF32(r, c.C*c.ah*c.aw, -1, 1), randF32(r, c.C*c.bh*c.bw, -1, 1)
			want := append([]float32(nil), b.F32...)
			require.NoError(t, cpu.VAEBlend(a.F32, want, c.C, c.ah, c.aw, c.bh, c.bw, c.e, c.vertical))
			ga := newGuardedT(t, d, s, a, engine.Shape{1, int64(c.C), int64(c.ah), int64(c.aw)}, 6)
			gb := newGuardedT(t, d, s, b, engine.Shape{1, int64(c.C), int64(c.bh), int64(c.bw)}, 6)
			require.NoError(t, s.VAEBlend(ga.view, gb.view, c.e, c.vertical))
			requireF32(t, gb.read(t, s, "b").F32, want, tol(absTol(0)), "VAEBlend")
			requireF32(t, ga.read(t, s, "a").F32, a.F32, tol(absTol(0)), "a is read only")
		})
	}
	a := newGuardedT(t, d, s, nil, engine.Shape{3, 4, 5}, 0)
	b := newGuardedT(t, d, s, nil, engine.Shape{3, 4, 6}, 0)
	requireErrorIs(t, s.VAEBlend(a.view, b.view, 2, true), engine.ErrShape)
}

func TestBoundingBoxMatchesCPU(t *testing.T) {
	d := gpu(t)
	s := newStream(t, d)
	r := rand.New(rand.NewPCG(25, 26))
	for _, sz := range [][3]int{{1, 0, 5}, {1, 1, 1}, {1, 37, 53}, {2, 20, 30}, {1, 240, 320}} {
		for _, density := range []float32{0, 0.001, 0.3, 1} {
			t.Run(fmt.Sprintf("%dx%dx%d/%g", sz[0], sz[1], sz[2], density), func(t *testing.T) {
				n := sz[0] * sz[1] * sz[2]
				src := randF32(r, n, 0, 1)
				for i := range src.F32 {
					if src.F32[i] < density {
						src.F32[i] = 1
					} else {
						src.F32[i] = 0
					}
				}
				want, err := cpu.BoundingBox(src.F32, sz[1], sz[2], 0.5)
				require.NoError(t, err)
				gs := newGuardedT(t, d, s, src, engine.Shape{int64(sz[0]), int64(sz[1]), int64(sz[2])}, 5)
				box, _ := engine.NewHostTensor(engine.Int64, engine.Shape{4})
				gb := newGuardedT(t, d, s, box, engine.Shape{4}, 3)
				require.NoError(t, s.BoundingBox(gs.view, 0.5, gb.view))
				assert.Equal(t, want[:], gb.read(t, s, "box").I64)
			})
		}
	}
	// A single pixel at each corner: the box is that pixel.
	for _, p := range [][2]int{{0, 0}, {12, 0}, {0, 8}, {12, 8}} {
		m, _ := engine.NewHostTensor(engine.Float32, engine.Shape{9, 13})
		m.F32[p[1]*13+p[0]] = 0.5
		g := newGuardedT(t, d, s, m, m.Shape(), 2)
		box, _ := engine.NewHostTensor(engine.Int64, engine.Shape{4})
		gbi := newGuardedT(t, d, s, box, engine.Shape{4}, 2)
		require.NoError(t, s.BoundingBox(g.view, 0.5, gbi.view))
		assert.Equal(t, []int64{int64(p[0]), int64(p[1]), int64(p[0] + 1), int64(p[1] + 1)}, gbi.read(t, s, "corner").I64)
	}
}
