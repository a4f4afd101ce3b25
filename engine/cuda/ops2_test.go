package cuda

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/engine/cpu"
)

// The ABI 2 ops against their cpu twins (the reference loops), behind guard bands, on
// ragged shapes including empty and single-element ones. On cuda-emu (the C reference
// loops) the results must be bit for bit equal, except GoodProbs, whose exp comes from
// libm (C) and math.Exp (Go); on a GPU the tolerances below apply:
//   - images (Pillow resize, planar conversions, paste), pointwise, dilate, count,
//     scatter, colour fix: exact (integer arithmetic, or explicitly rounded float ops);
//   - GoodProbs, Ensemble: abs 1e-6 (float64 sums in another order, exp);
//   - TextMaps: abs 1e-5 (float64 dots, then bilinear as grf_resize's);
//   - Emphasis: |diff| <= 1e-6·max(1, |cpu|) (float64 sums in another order).

// guardedT is a device tensor view of any dtype with guard bands of g elements.
type guardedT struct {
	base *Tensor
	view *Tensor
	n, g int
	sent *engine.HostTensor // the base's initial contents (sentinels + data)
}

// sentinelFill writes a recognisable pattern into h (NaN payload, 0xA5 bytes, -7).
func sentinelFill(h *engine.HostTensor) {
	for i := range h.F32 {
		h.F32[i] = sentinel
	}
	for i := range h.U8 {
		h.U8[i] = 0xA5
	}
	for i := range h.I32 {
		h.I32[i] = -7
	}
	for i := range h.I64 {
		h.I64[i] = -7
	}
}

func newGuardedT(tb testing.TB, d *Device, s *Stream, data *engine.HostTensor, shape engine.Shape, g int) *guardedT {
	tb.Helper()
	dt := engine.Float32
	if data != nil {
		dt = data.DType()
	}
	n := int(shape.NumElements())
	base, err := d.AllocTensor(dt, engine.Shape{int64(n + 2*g)})
	require.NoError(tb, err)
	tb.Cleanup(func() { require.NoError(tb, base.Close()) })
	h, err := engine.NewHostTensor(dt, engine.Shape{int64(n + 2*g)})
	require.NoError(tb, err)
	sentinelFill(h)
	if data != nil {
		require.Equal(tb, n, data.Len())
		v, err := h.View(int64(g), engine.Shape{int64(n)})
		require.NoError(tb, err)
		copy(v.F32, data.F32)
		copy(v.U8, data.U8)
		copy(v.I32, data.I32)
		copy(v.I64, data.I64)
	}
	require.NoError(tb, s.Upload(base, h))
	es := dt.Size()
	view := &Tensor{dev: d, dtype: dt, shape: shape.Clone(), ptr: unsafe.Add(base.ptr, es*g), bytes: es * n}
	return &guardedT{base: base, view: view, n: n, g: g, sent: h}
}

// read downloads the view after the stream's work and checks both guard bands.
func (gd *guardedT) read(tb testing.TB, s *Stream, name string) *engine.HostTensor {
	tb.Helper()
	h, err := engine.NewHostTensor(gd.base.dtype, gd.base.shape)
	require.NoError(tb, err)
	require.NoError(tb, s.Download(h, gd.base))
	for _, r := range [][2]int{{0, gd.g}, {gd.g + gd.n, 2*gd.g + gd.n}} {
		got, _ := h.View(int64(r[0]), engine.Shape{int64(r[1] - r[0])})
		want, _ := gd.sent.View(int64(r[0]), engine.Shape{int64(r[1] - r[0])})
		require.Equalf(tb, bitsOf(want), bitsOf(got), "%s: guard band overwritten", name)
	}
	v, err := h.View(int64(gd.g), gd.view.shape)
	require.NoError(tb, err)
	return v
}

// bitsOf is a tensor's values as comparable bit patterns (NaN sentinels included).
func bitsOf(h *engine.HostTensor) []uint64 {
	var out []uint64
	for _, v := range h.F32 {
		out = append(out, uint64(math.Float32bits(v)))
	}
	for _, v := range h.U8 {
		out = append(out, uint64(v))
	}
	for _, v := range h.I32 {
		out = append(out, uint64(uint32(v)))
	}
	for _, v := range h.I64 {
		out = append(out, uint64(v))
	}
	return out
}

// cpuRun runs op on the cpu device's stream.
func cpuRun(tb testing.TB, op func(engine.Stream) error) {
	tb.Helper()
	s, err := cpu.Device{}.NewStream()
	require.NoError(tb, err)
	require.NoError(tb, op(s))
}

func randU8(r *rand.Rand, n int) *engine.HostTensor {
	h, _ := engine.NewHostTensor(engine.Uint8, engine.Shape{int64(n)})
	for i := range h.U8 {
		h.U8[i] = uint8(r.IntN(256))
	}
	return h
}

func randF32(r *rand.Rand, n int, lo, hi float32) *engine.HostTensor {
	h, _ := engine.FromFloat32(engine.Shape{int64(n)}, randSlice(r, n, lo, hi))
	return h
}

func reshaped(h *engine.HostTensor, s engine.Shape) *engine.HostTensor {
	v, err := h.Reshape(s)
	if err != nil {
		panic(err)
	}
	return v
}

func requireF32(tb testing.TB, got, want []float32, t func(float32) float64, what string) {
	tb.Helper()
	n, worst := mismatch(got, want, t)
	require.Zerof(tb, n, "%s: %d of %d values out of tolerance; %s", what, n, len(want), worst)
}

func TestResizeImageMatchesCPU(t *testing.T) {
	d := gpu(t)
	s := newStream(t, d)
	r := rand.New(rand.NewPCG(5, 6))
	lanczos := engine.Resample{Filter: engine.ResampleLanczos}
	box := func(f engine.ResampleFilter, b ...float64) engine.Resample {
		return engine.Resample{Filter: f, Box: &[4]float64{b[0], b[1], b[2], b[3]}}
	}
	for _, c := range []struct {
		sz [4]int // in h, w, out h, w
		r  engine.Resample
	}{
		{[4]int{1, 1, 1, 1}, engine.Resample{}}, {[4]int{2, 3, 7, 5}, engine.Resample{}}, {[4]int{480, 320, 224, 224}, engine.Resample{}},
		{[4]int{47, 61, 224, 224}, engine.Resample{}}, {[4]int{13, 97, 40, 31}, engine.Resample{}}, {[4]int{50, 50, 17, 50}, engine.Resample{}},
		{[4]int{200, 333, 200, 71}, engine.Resample{}}, {[4]int{64, 64, 64, 64}, engine.Resample{}}, {[4]int{1, 1, 3, 4}, engine.Resample{}},
		{[4]int{5, 7, 1, 1}, engine.Resample{}},
		// Pillow 13's vertical pass first (tall shrinks), Lanczos, and boxes: fractional,
		// zero-extent (an edge row stretched), integral of the output's size (a crop).
		{[4]int{400, 60, 224, 224}, engine.Resample{}}, {[4]int{150, 200, 33, 190}, lanczos}, {[4]int{152, 200, 55, 73}, lanczos},
		{[4]int{48, 64, 240, 311}, lanczos}, {[4]int{152, 200, 48, 64}, box(engine.ResampleBicubic, 10.5, 20.25, 150.75, 100)},
		{[4]int{152, 200, 48, 64}, box(engine.ResampleLanczos, 20, 30, 84, 78)}, {[4]int{152, 200, 3, 200}, box(engine.ResampleBicubic, 0, 152, 200, 152)},
		{[4]int{152, 200, 30, 5}, box(engine.ResampleLanczos, 30, 40, 30, 100)}, {[4]int{152, 200, 20, 150}, box(engine.ResampleLanczos, 5.5, 10, 160, 150)},
		{[4]int{9, 9, 9, 9}, box(engine.ResampleBicubic, 0, 0, 9, 9)},
	} {
		sz := c.sz
		for _, g := range []int{64, 5} {
			t.Run(fmt.Sprintf("%dx%d->%dx%d/%v/box%v/guard%d", sz[1], sz[0], sz[3], sz[2], c.r.Filter, c.r.Box != nil, g), func(t *testing.T) {
				src := randU8(r, 3*sz[0]*sz[1])
				in := engine.Shape{int64(sz[0]), int64(sz[1]), 3}
				out := engine.Shape{int64(sz[2]), int64(sz[3]), 3}
				want, _ := engine.NewHostTensor(engine.Uint8, out)
				cpuRun(t, func(cs engine.Stream) error { return cs.ResizeImage(reshaped(src, in), want, c.r) })
				gi := newGuardedT(t, d, s, src, in, g)
				dst, _ := engine.NewHostTensor(engine.Uint8, engine.Shape{out.NumElements()})
				gotT := newGuardedT(t, d, s, dst, out, g)
				require.NoError(t, s.ResizeImage(gi.view, gotT.view, c.r))
				assert.Equal(t, want.U8, gotT.read(t, s, "dst").U8, "bytes differ from Pillow's (the cpu twin)")
				gi.read(t, s, "src")
			})
		}
	}
	// What Pillow refuses, the device refuses before any work.
	gi := newGuardedT(t, d, s, randU8(r, 3*4*4), engine.Shape{4, 4, 3}, 0)
	gd := newGuardedT(t, d, s, randU8(r, 3*2*2), engine.Shape{2, 2, 3}, 0)
	requireErrorIs(t, s.ResizeImage(gi.view, gd.view, box(engine.ResampleBicubic, 0, 0, 5, 4)), engine.ErrShape)
	requireErrorIs(t, s.ResizeImage(gi.view, gd.view, box(engine.ResampleBicubic, 3, 0, 2, 4)), engine.ErrShape)
	requireErrorIs(t, s.ResizeImage(gi.view, gd.view, engine.Resample{Filter: 7}), engine.ErrShape)
}

func TestPlanarAndPasteMatchCPU(t *testing.T) {
	d := gpu(t)
	s := newStream(t, d)
	r := rand.New(rand.NewPCG(7, 8))
	mean, std := [3]float32{0.48145466, 0.4578275, 0.40821073}, [3]float32{0.26862954, 0.26130258, 0.27577711}
	for _, hw := range [][2]int{{0, 5}, {1, 1}, {3, 7}, {224, 224}, {17, 33}} {
		t.Run(fmt.Sprintf("%dx%d", hw[1], hw[0]), func(t *testing.T) {
			n := hw[0] * hw[1]
			img := engine.Shape{int64(hw[0]), int64(hw[1]), 3}
			rgb := randU8(r, 3*n)
			want, _ := engine.NewHostTensor(engine.Float32, engine.Shape{3, int64(hw[0]), int64(hw[1])})
			cpuRun(t, func(c engine.Stream) error { return c.ToPlanar(reshaped(rgb, img), want, mean, std) })
			gi := newGuardedT(t, d, s, rgb, img, 9)
			gp := newGuardedT(t, d, s, nil, want.Shape(), 9)
			require.NoError(t, s.ToPlanar(gi.view, gp.view, mean, std))
			requireF32(t, gp.read(t, s, "planar").F32, want.F32, tol(absTol(0)), "ToPlanar")

			planar := randF32(r, 3*n, -0.2, 1.2) // clamped at both ends
			wantRGB, _ := engine.NewHostTensor(engine.Uint8, img)
			cpuRun(t, func(c engine.Stream) error { return c.FromPlanar(planar, wantRGB) })
			gs := newGuardedT(t, d, s, planar, planar.Shape(), 9)
			gd := newGuardedT(t, d, s, randU8(r, 3*n), img, 9)
			require.NoError(t, s.FromPlanar(gs.view, gd.view))
			assert.Equal(t, wantRGB.U8, gd.read(t, s, "rgb").U8)

			mask := randF32(r, n, 0, 1)
			dst, src := randU8(r, 3*n), randU8(r, 3*n)
			ref, _ := engine.NewHostTensor(engine.Uint8, img)
			copy(ref.U8, dst.U8)
			cpuRun(t, func(c engine.Stream) error { return c.Paste(ref, reshaped(src, img), mask) })
			gdst := newGuardedT(t, d, s, dst, img, 9)
			gsrc := newGuardedT(t, d, s, src, img, 9)
			gm := newGuardedT(t, d, s, mask, mask.Shape(), 9)
			require.NoError(t, s.Paste(gdst.view, gsrc.view, gm.view))
			assert.Equal(t, ref.U8, gdst.read(t, s, "paste").U8)
		})
	}
}

func TestPointwiseMatchesCPU(t *testing.T) {
	d := gpu(t)
	s := newStream(t, d)
	r := rand.New(rand.NewPCG(9, 10))
	ops := []engine.Pointwise{
		{Op: engine.PointAffine, A: 2, B: -1}, {Op: engine.PointAffine, A: 0.5, B: 0.5, Clamp01: true},
		{Op: engine.PointScale, S: 0.13025}, {Op: engine.PointScale, S: 0.7071067811865476},
		{Op: engine.PointUnscale, S: 0.18215}, {Op: engine.PointLerp, S: 0.6, T: -1.3},
		{Op: engine.PointMaximum}, {Op: engine.PointGreater, A: 170.0 / 255}, {Op: engine.PointAtLeast, A: 0.5},
		{Op: engine.PointMaskedAffine, A: 2, B: -1}, {Op: engine.PointDivide},
	}
	for _, n := range []int{0, 1, 3, 257, 4096 + 3} {
		for _, q := range ops {
			copies := 1
			if q.Op == engine.PointScale && n > 0 {
				copies = 2
			}
			m := 0
			if (q.Op == engine.PointMaskedAffine || q.Op == engine.PointDivide) && n > 0 {
				m = n
				if n%3 == 0 {
					m = n / 3
				}
			}
			t.Run(fmt.Sprintf("%v/n%d", q.Op, n), func(t *testing.T) {
				src, src2, mask := randF32(r, n, -2, 2), randF32(r, n, -2, 2), randF32(r, m, 0, 1)
				a := cpu.PointwiseArgs{Src: src.F32, Dst: make([]float32, copies*n)}
				p := q
				if q.Op == engine.PointLerp || q.Op == engine.PointMaximum {
					a.Src2 = src2.F32
				}
				if q.Op == engine.PointMaskedAffine || q.Op == engine.PointDivide {
					a.Mask = mask.F32
				}
				require.NoError(t, cpu.Pointwise(q, a))
				gs := newGuardedT(t, d, s, src, src.Shape(), 7)
				gd := newGuardedT(t, d, s, nil, engine.Shape{int64(copies * n)}, 7)
				p.Src, p.Dst = gs.view, gd.view
				if a.Src2 != nil {
					p.Src2 = newGuardedT(t, d, s, src2, src2.Shape(), 7).view
				}
				if a.Mask != nil {
					p.Mask = newGuardedT(t, d, s, mask, mask.Shape(), 7).view
				}
				require.NoError(t, s.Pointwise(p))
				requireF32(t, gd.read(t, s, "dst").F32, a.Dst, tol(absTol(0)), q.Op.String())
			})
		}
	}
	// In place (dst = src), as the pipeline binarises masks and scales latents.
	x := randF32(r, 100, 0, 1)
	want := append([]float32(nil), x.F32...)
	require.NoError(t, cpu.Pointwise(engine.Pointwise{Op: engine.PointAtLeast, A: 0.5}, cpu.PointwiseArgs{Src: want, Dst: want}))
	gx := newGuardedT(t, d, s, x, x.Shape(), 3)
	require.NoError(t, s.Pointwise(engine.Pointwise{Op: engine.PointAtLeast, A: 0.5, Src: gx.view, Dst: gx.view}))
	requireF32(t, gx.read(t, s, "in place").F32, want, tol(absTol(0)), "in place")
	bad := newGuardedT(t, d, s, nil, engine.Shape{7}, 0)
	requireErrorIs(t, s.Pointwise(engine.Pointwise{Op: engine.PointScale, Src: gx.view, Dst: bad.view}), engine.ErrShape)
}

func TestDilateAndCountMatchCPU(t *testing.T) {
	d := gpu(t)
	s := newStream(t, d)
	r := rand.New(rand.NewPCG(11, 12))
	for _, sz := range [][3]int{{0, 4, 4}, {1, 1, 1}, {1, 37, 53}, {2, 20, 30}, {1, 64, 48}} {
		for _, rad := range []int{0, 1, 3} {
			t.Run(fmt.Sprintf("%dx%dx%d/r%d", sz[0], sz[1], sz[2], rad), func(t *testing.T) {
				n := sz[0] * sz[1] * sz[2]
				src := randF32(r, n, 0, 1)
				for i := range src.F32 { // a sparse 0/1 mask
					src.F32[i] = float32(math.Floor(float64(src.F32[i]) + 0.1))
				}
				shape := engine.Shape{int64(sz[0]), int64(sz[1]), int64(sz[2])}
				want := make([]float32, n)
				require.NoError(t, cpu.Dilate(src.F32, sz[0], sz[1], sz[2], rad, want))
				gs := newGuardedT(t, d, s, src, shape, 11)
				gd := newGuardedT(t, d, s, nil, shape, 11)
				require.NoError(t, s.Dilate(gs.view, gd.view, rad))
				requireF32(t, gd.read(t, s, "dilate").F32, want, tol(absTol(0)), "dilate")

				cnt, _ := engine.NewHostTensor(engine.Int64, engine.Shape{1})
				gc := newGuardedT(t, d, s, cnt, engine.Shape{1}, 3)
				require.NoError(t, s.CountAtLeast(gd.view, 0.5, gc.view))
				assert.Equal(t, cpu.CountAtLeast(want, 0.5), gc.read(t, s, "count").I64[0])
			})
		}
	}
}

func TestTextOpsMatchCPU(t *testing.T) {
	d := gpu(t)
	s := newStream(t, d)
	r := rand.New(rand.NewPCG(13, 14))
	near := func(a float64) func(float32) float64 {
		return func(float32) float64 { return a } // libm's exp vs Go's, even on the emulator
	}
	for _, sz := range [][3]int{{0, 5, 3}, {1, 1, 1}, {1, 197, 512}, {2, 16, 33}} {
		B, T, D := sz[0], sz[1], sz[2]
		t.Run(fmt.Sprintf("GoodProbs/B%d/T%d/D%d", B, T, D), func(t *testing.T) {
			tok, pq := randF32(r, B*T*D, -0.2, 0.2), randF32(r, 8*D, -0.5, 0.5)
			want := make([]float32, B*4*T)
			require.NoError(t, cpu.GoodProbs(tok.F32, B, T, D, pq.F32, want))
			gt := newGuardedT(t, d, s, tok, engine.Shape{int64(B), int64(T), int64(D)}, 5)
			gp := newGuardedT(t, d, s, pq, engine.Shape{4, 2, int64(D)}, 5)
			gg := newGuardedT(t, d, s, nil, engine.Shape{int64(B), 4, int64(T)}, 5)
			require.NoError(t, s.GoodProbs(gt.view, gp.view, gg.view))
			requireF32(t, gg.read(t, s, "good").F32, want, near(1e-6), "GoodProbs")
		})
	}
	for _, sz := range [][3]int{{0, 3, 8}, {1, 1, 1}, {3, 85, 512}, {2, 4, 33}} {
		N, K, D := sz[0], sz[1], sz[2]
		t.Run(fmt.Sprintf("Ensemble/N%d/K%d/D%d", N, K, D), func(t *testing.T) {
			emb, R := randF32(r, N*K*D, -1, 1), randF32(r, D, -0.1, 0.1)
			if N > 0 {
				for i := 0; i < D; i++ { // a zero row: its norm counts as 1
					emb.F32[i] = 0
				}
			}
			want := make([]float32, N*D)
			require.NoError(t, cpu.Ensemble(emb.F32, N, K, D, R.F32, want))
			ge := newGuardedT(t, d, s, emb, engine.Shape{int64(N * K), int64(D)}, 5)
			gr := newGuardedT(t, d, s, R, R.Shape(), 5)
			gd := newGuardedT(t, d, s, nil, engine.Shape{int64(N), int64(D)}, 5)
			require.NoError(t, s.Ensemble(ge.view, gr.view, gd.view))
			requireF32(t, gd.read(t, s, "features").F32, want, tol(absTol(1e-6)), "Ensemble")

			// Scatter the rows of emb into a bigger table in reverse order.
			rows := N * K
			if rows == 0 {
				return
			}
			idx, _ := engine.NewHostTensor(engine.Int32, engine.Shape{int64(rows)})
			for i := range idx.I32 {
				idx.I32[i] = int32(rows - i)
			}
			table := randF32(r, (rows+1)*D, 5, 6)
			wantT := append([]float32(nil), table.F32...)
			require.NoError(t, cpu.ScatterRows(emb.F32, idx.I32, wantT, D))
			gi := newGuardedT(t, d, s, idx, idx.Shape(), 5)
			gtab := newGuardedT(t, d, s, table, engine.Shape{int64(rows + 1), int64(D)}, 5)
			require.NoError(t, s.ScatterRows(ge.view, gi.view, gtab.view))
			requireF32(t, gtab.read(t, s, "table").F32, wantT, tol(absTol(0)), "ScatterRows")
		})
	}
	for _, sz := range [][6]int{{0, 14, 14, 8, 20, 30}, {1, 1, 1, 1, 1, 1}, {3, 14, 14, 512, 97, 131}, {2, 3, 5, 7, 20, 30}} {
		K, gh, gw, D, H, W := sz[0], sz[1], sz[2], sz[3], sz[4], sz[5]
		t.Run(fmt.Sprintf("TextMaps/K%d/grid%dx%d/D%d/%dx%d", K, gh, gw, D, H, W), func(t *testing.T) {
			T := 1 + gh*gw
			tok, feats := randF32(r, T*D, -1, 1), randF32(r, K*D, -1, 1)
			want := make([]float32, H*W)
			require.NoError(t, cpu.TextMaps(tok.F32, gh, gw, D, feats.F32, H, W, want))
			gt := newGuardedT(t, d, s, tok, engine.Shape{1, int64(T), int64(D)}, 5)
			gf := newGuardedT(t, d, s, feats, engine.Shape{int64(K), int64(D)}, 5)
			gd := newGuardedT(t, d, s, randF32(r, H*W, 3, 4), engine.Shape{int64(H), int64(W)}, 5)
			require.NoError(t, s.TextMaps(gt.view, gf.view, gh, gw, gd.view))
			requireF32(t, gd.read(t, s, "map").F32, want, tol(absTol(1e-5)), "TextMaps")
		})
	}
}

func TestRefineOpsMatchCPU(t *testing.T) {
	d := gpu(t)
	s := newStream(t, d)
	r := rand.New(rand.NewPCG(15, 16))
	for _, D := range []int{1, 7, 768} {
		for _, weighted := range []bool{false, true} {
			t.Run(fmt.Sprintf("Emphasis/D%d/weighted=%v", D, weighted), func(t *testing.T) {
				h := randF32(r, 77*D, -2, 2)
				w := make([]float32, 77)
				for i := range w {
					w[i] = 1
					if weighted && i%5 == 2 {
						w[i] = 1.1
					}
				}
				want := append([]float32(nil), h.F32...)
				require.NoError(t, cpu.Emphasis(want, D, w))
				gh := newGuardedT(t, d, s, h, engine.Shape{1, 77, int64(D)}, 5)
				require.NoError(t, s.Emphasis(gh.view, w))
				requireF32(t, gh.read(t, s, "hidden").F32, want, tol(relTol(1e-6)), "Emphasis")
			})
		}
	}
	for _, sz := range [][4]int{{3, 1, 1, 1}, {3, 9, 13, 5}, {1, 64, 48, 3}, {3, 37, 21, 1}} {
		C, H, W, L := sz[0], sz[1], sz[2], sz[3]
		t.Run(fmt.Sprintf("ColorFix/%dx%dx%d/L%d", C, H, W, L), func(t *testing.T) {
			n := C * H * W
			content, style := randF32(r, n, 0, 1), randF32(r, n, 0, 1)
			want := make([]float32, n)
			require.NoError(t, cpu.ColorFix(content.F32, style.F32, C, H, W, L, want))
			shape := engine.Shape{1, int64(C), int64(H), int64(W)}
			gc := newGuardedT(t, d, s, content, shape, 5)
			gs := newGuardedT(t, d, s, style, shape, 5)
			gd := newGuardedT(t, d, s, nil, shape, 5)
			require.NoError(t, s.ColorFix(gc.view, gs.view, gd.view, L))
			requireF32(t, gd.read(t, s, "fixed").F32, want, tol(absTol(0)), "ColorFix")
		})
	}
}

func TestCopiesMatchCPU(t *testing.T) {
	d := gpu(t)
	s := newStream(t, d)
	r := rand.New(rand.NewPCG(17, 18))
	src := randF32(r, 7*9, -1, 1)
	dst := randF32(r, 11*13, -1, 1)
	c := engine.Copy2D{Rows: 7, Cols: 5, DstOffset: 14, DstPitch: 13, SrcOffset: 2, SrcPitch: 9}
	want, _ := engine.FromFloat32(dst.Shape(), append([]float32(nil), dst.F32...))
	cpuRun(t, func(cs engine.Stream) error { return cs.Copy2D(want, src, c) })
	gs := newGuardedT(t, d, s, src, src.Shape(), 4)
	gd := newGuardedT(t, d, s, dst, dst.Shape(), 4)
	require.NoError(t, s.Copy2D(gd.view, gs.view, c))
	requireF32(t, gd.read(t, s, "copy2d").F32, want.F32, absTol(0), "Copy2D")
	one := engine.Copy2D{Rows: 1, Cols: 3, DstOffset: 100, SrcOffset: 60}
	cpuRun(t, func(cs engine.Stream) error { return cs.Copy2D(want, src, one) })
	require.NoError(t, s.Copy2D(gd.view, gs.view, one))
	requireF32(t, gd.read(t, s, "copy2d row").F32, want.F32, absTol(0), "Copy2D one row")
	requireErrorIs(t, s.Copy2D(gd.view, gs.view, engine.Copy2D{Rows: 2, Cols: 5, DstOffset: 140, DstPitch: 13, SrcPitch: 9}), engine.ErrShape)
	require.NoError(t, s.Copy2D(gd.view, gs.view, engine.Copy2D{}), "an empty copy")
	// Views: a view's writes land in its base, at its offset.
	base, err := d.Alloc(engine.Float32, engine.Shape{8})
	require.NoError(t, err)
	defer base.Close()
	require.NoError(t, s.Zero(base))
	v, err := d.View(base, 5, engine.Shape{3})
	require.NoError(t, err)
	three, _ := engine.FromFloat32(engine.Shape{3}, []float32{1, 2, 3})
	require.NoError(t, s.Upload(v, three))
	all, _ := engine.NewHostTensor(engine.Float32, engine.Shape{8})
	require.NoError(t, s.Download(all, base))
	assert.Equal(t, []float32{0, 0, 0, 0, 0, 1, 2, 3}, all.F32)
	_, err = d.View(base, 6, engine.Shape{3})
	requireErrorIs(t, err, engine.ErrShape)
	require.NoError(t, v.Close(), "closing a view frees nothing")
	require.NoError(t, s.Download(all, base))
}
