package cuda

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/engine/cpu"
)

// Tolerance rules (GPU vs the cpu twin, float32 both sides; the GPU may contract a*b+c
// into one FMA, the Go twin rounds every operation):
//   - nearest resize, inpaint input, masks: exact;
//   - cask score: abs <= 1e-6 (both sides are IEEE divisions and products);
//   - bilinear: abs <= 1e-5; bicubic and P: abs <= 2e-5 (inputs in [0,1]);
//   - blend step: |diff| <= 1e-5 * max(1, |cpu|);
//   - masks: a pixel may differ only where the CPU's P or upsampled L lies within 1e-5 of
//     its threshold (within the dilation window); such pixels are counted and logged.

func TestOpenReportsReason(t *testing.T) {
	if openErr != nil {
		requireErrorIs(t, openErr, engine.ErrUnavailable)
		t.Logf("cuda device unavailable (expected without a GPU): %v", openErr)
		return
	}
	require.NotNil(t, testDev)
	require.NoError(t, testDev.Available())
	assert.Equal(t, "cuda", testDev.Name())
}

func TestDeviceInfo(t *testing.T) {
	d := gpu(t)
	i := d.GPU()
	t.Logf("tests run on %s; device: %s", testLib, i)
	assert.Equal(t, strings.HasPrefix(testLib, "cuda-emu"), i.Emulated, "Info.Emulated says whether this is the emulator")
	if i.Emulated {
		assert.Contains(t, i.String(), "emulated (cuda-emu, no GPU)")
		assert.Contains(t, i.Name, "not a gpu")
	}
	assert.NotEmpty(t, i.Name)
	assert.GreaterOrEqual(t, i.Major, 7)
	assert.Positive(t, i.SMs)
}

func TestUploadDownloadRoundTrip(t *testing.T) {
	d := gpu(t)
	s := newStream(t, d)
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 3, 1000, 1 << 20} {
		data := randSlice(r, n, -5, 5)
		h, err := engine.FromFloat32(engine.Shape{int64(n)}, data)
		require.NoError(t, err)
		dt, err := d.Alloc(engine.Float32, h.Shape())
		require.NoError(t, err)
		require.NoError(t, s.Upload(dt, h))
		back, err := engine.NewHostTensor(engine.Float32, h.Shape())
		require.NoError(t, err)
		require.NoError(t, s.Download(back, dt))
		assert.Equal(t, data, back.F32, "n=%d", n)
		require.NoError(t, dt.Close())
		require.NoError(t, dt.Close(), "second Close")
		requireErrorIs(t, s.Download(back, dt), engine.ErrClosed)
	}
	c := s.Counters()
	assert.Equal(t, 5, c.HostToDevice)
	assert.Equal(t, 5, c.DeviceToHost, "the fifth download of a closed tensor is refused before it copies")
	var nilT *Tensor
	assert.NoError(t, nilT.Close())
	var nilS *Stream
	assert.NoError(t, nilS.Close())
}

func TestResizeMatchesCPU(t *testing.T) {
	d := gpu(t)
	s := newStream(t, d)
	r := rand.New(rand.NewPCG(3, 4))
	sizes := []struct{ planes, ih, iw, oh, ow int }{
		{1, 14, 14, 1024, 1024}, {2, 14, 14, 768, 1344}, {3, 14, 14, 37, 53}, {1, 5, 7, 3, 2},
		{1, 1, 1, 1, 1}, {2, 1, 1, 4, 3}, {1, 3, 2, 5, 7}, {1, 1024, 768, 128, 96}, {1, 37, 53, 37, 53},
		{0, 14, 14, 20, 20}, {1, 6, 9, 1, 1},
	}
	tols := map[engine.ResizeMode]func(float32) float64{
		engine.ResizeNearest: tol(absTol(0)), engine.ResizeBilinear: tol(absTol(1e-5)), engine.ResizeBicubic: tol(absTol(2e-5)),
	}
	for _, sz := range sizes {
		for _, mode := range []engine.ResizeMode{engine.ResizeNearest, engine.ResizeBilinear, engine.ResizeBicubic} {
			for _, g := range []int{64, 3} {
				name := fmt.Sprintf("%s/%dx%dx%d->%dx%d/guard%d", mode, sz.planes, sz.ih, sz.iw, sz.oh, sz.ow, g)
				t.Run(name, func(t *testing.T) {
					src := randSlice(r, sz.planes*sz.ih*sz.iw, 0, 1)
					want := make([]float32, sz.planes*sz.oh*sz.ow)
					require.NoError(t, cpu.Resize(mode, src, sz.planes, sz.ih, sz.iw, want, sz.oh, sz.ow))
					in := newGuarded(t, d, s, engine.Shape{int64(sz.planes), int64(sz.ih), int64(sz.iw)}, g, src)
					out := newGuarded(t, d, s, engine.Shape{int64(sz.planes), int64(sz.oh), int64(sz.ow)}, g, nil)
					require.NoError(t, s.Resize(mode, in.view, out.view))
					got := out.read(t, s, "dst")
					n, worst := mismatch(got, want, tols[mode])
					assert.Zerof(t, n, "%d of %d values out of tolerance; %s", n, len(want), worst)
					in.read(t, s, "src")
				})
			}
		}
	}
}

// fuseCase is one FuseMaps configuration.
type fuseCase struct {
	batch, gh, gw, H, W, h, w, radius int
	align                             bool
}

func (c fuseCase) String() string {
	return fmt.Sprintf("B%d/grid%dx%d/%dx%d->%dx%d/r%d/align=%v", c.batch, c.gh, c.gw, c.H, c.W, c.h, c.w, c.radius, c.align)
}

// fuseInputs draws good probabilities with a spread of quality per image, and an
// alignment map with defect blobs.
func fuseInputs(r *rand.Rand, c fuseCase) (good, align []float32) {
	T := 1 + c.gh*c.gw
	good = make([]float32, c.batch*4*T)
	for b := 0; b < c.batch; b++ {
		base := 0.2 + 0.7*r.Float32()
		for i := 0; i < 4*T; i++ {
			v := base + 0.3*(r.Float32()-0.5)
			good[b*4*T+i] = min(max(v, 0), 1)
		}
	}
	if c.align {
		align = make([]float32, c.batch*c.H*c.W)
		for b := 0; b < c.batch; b++ {
			cy, cx := r.Float32()*float32(c.H), r.Float32()*float32(c.W)
			rad := 0.25 * float32(min(c.H, c.W))
			for y := 0; y < c.H; y++ {
				for x := 0; x < c.W; x++ {
					dy, dx := float32(y)-cy, float32(x)-cx
					v := 1 - (dy*dy+dx*dx)/(rad*rad+1)
					align[(b*c.H+y)*c.W+x] = min(max(v, 0), 1)
				}
			}
		}
	}
	return good, align
}

func TestFuseMapsMatchesCPU(t *testing.T) {
	d := gpu(t)
	s := newStream(t, d)
	r := rand.New(rand.NewPCG(5, 6))
	cases := []fuseCase{
		{1, 14, 14, 1024, 1024, 128, 128, 8, true},
		{2, 14, 14, 768, 1344, 96, 168, 4, true},
		{3, 14, 14, 37, 53, 5, 7, 2, false},
		{1, 14, 14, 1024, 1024, 128, 128, 0, false},
		{2, 3, 5, 37, 53, 37, 53, 1, true},
		{1, 14, 14, 1, 1, 1, 1, 0, true},
		{1, 1, 1, 9, 7, 2, 3, 3, false},
		{3, 14, 14, 256, 200, 32, 25, 16, true},
		{0, 14, 14, 64, 64, 8, 8, 2, true},
	}
	for _, c := range cases {
		for _, g := range []int{64, 5} {
			t.Run(fmt.Sprintf("%v/guard%d", c, g), func(t *testing.T) {
				p := engine.DefaultFuseParams(c.H, c.W)
				p.GridH, p.GridW, p.LatentH, p.LatentW, p.Radius = c.gh, c.gw, c.h, c.w, c.radius
				good, align := fuseInputs(r, c)
				HW, hw := c.H*c.W, c.h*c.w
				want := cpu.FuseMapsOut{
					Score: make([]float32, c.batch), PMap: make([]float32, c.batch*HW),
					MaskImg: make([]float32, c.batch*HW), MaskLat: make([]float32, c.batch*hw),
				}
				require.NoError(t, cpu.FuseMaps(p, c.batch, good, align, want))

				B := int64(c.batch)
				gGood := newGuarded(t, d, s, engine.Shape{B, 4, int64(p.Tokens())}, g, good)
				var alignT *Tensor
				var gAlign *guarded
				if c.align {
					gAlign = newGuarded(t, d, s, engine.Shape{B, int64(c.H), int64(c.W)}, g, align)
					alignT = gAlign.view
				}
				gScore := newGuarded(t, d, s, engine.Shape{B}, g, nil)
				gP := newGuarded(t, d, s, engine.Shape{B, int64(c.H), int64(c.W)}, g, nil)
				gM := newGuarded(t, d, s, engine.Shape{B, int64(c.H), int64(c.W)}, g, nil)
				gL := newGuarded(t, d, s, engine.Shape{B, int64(c.h), int64(c.w)}, g, nil)
				require.NoError(t, s.FuseMaps(p, gGood.view, alignT, engine.FuseOutputs{Score: gScore.view, PMap: gP.view, MaskImg: gM.view, MaskLat: gL.view}))

				score := gScore.read(t, s, "score")
				pmap := gP.read(t, s, "pmap")
				maskImg := gM.read(t, s, "mask_img")
				maskLat := gL.read(t, s, "mask_lat")
				gGood.read(t, s, "good")
				if gAlign != nil {
					gAlign.read(t, s, "align")
				}
				n, worst := mismatch(score, want.Score, tol(absTol(1e-6)))
				assert.Zerof(t, n, "score: %d differ; %s", n, worst)
				n, worst = mismatch(pmap, want.PMap, tol(absTol(2e-5)))
				assert.Zerof(t, n, "pmap: %d of %d differ; %s", n, len(want.PMap), worst)

				amb := ambiguous(t, p, c.batch, good, want.PMap)
				badImg, excusedImg := 0, 0
				for i := range want.MaskImg {
					if maskImg[i] != want.MaskImg[i] {
						if amb[i] != 0 {
							excusedImg++
						} else {
							badImg++
						}
					}
				}
				badLat, excusedLat := 0, 0
				ambLat := make([]float32, c.batch*hw)
				require.NoError(t, cpu.DownsampleNearest(amb, c.batch, c.H, c.W, ambLat, c.h, c.w))
				for i := range want.MaskLat {
					if maskLat[i] != want.MaskLat[i] {
						if ambLat[i] != 0 {
							excusedLat++
						} else {
							badLat++
						}
					}
				}
				ones := 0
				for _, v := range want.MaskImg {
					if v == 1 {
						ones++
					}
				}
				t.Logf("mask_img: %d/%d set; differences at threshold-adjacent pixels: mask_img %d, mask_lat %d",
					ones, len(want.MaskImg), excusedImg, excusedLat)
				assert.Zerof(t, badImg, "mask_img: %d pixels differ away from a threshold", badImg)
				assert.Zerof(t, badLat, "mask_lat: %d pixels differ away from a threshold", badLat)
				if emulated() { // the reference loops: not one pixel differs
					assert.Zero(t, excusedImg+excusedLat, "cuda-emu masks differ from the Go twin")
					n, worst = mismatch(maskImg, want.MaskImg, bitExact)
					assert.Zerof(t, n, "mask_img: %s", worst)
					n, worst = mismatch(maskLat, want.MaskLat, bitExact)
					assert.Zerof(t, n, "mask_lat: %s", worst)
				}
			})
		}
	}
}

// ambiguous marks (as 1) the pixels whose dilation window holds a pixel where the CPU's
// P or raw upsampled L is within 1e-5 of its threshold.
func ambiguous(t *testing.T, p engine.FuseParams, batch int, good, pmap []float32) []float32 {
	T, HW := p.Tokens(), p.Height*p.Width
	L := make([]float32, batch*T)
	require.NoError(t, cpu.CaskFuse(good, batch, T, p.Alpha, L))
	amb := make([]float32, batch*HW)
	lup := make([]float32, HW)
	for b := 0; b < batch; b++ {
		require.NoError(t, cpu.ResizeBicubic(L[b*T+1:(b+1)*T], 1, p.GridH, p.GridW, lup, p.Height, p.Width))
		for i := 0; i < HW; i++ {
			pv := pmap[b*HW+i]
			if abs32(pv-p.PerceptualBound) <= 1e-5 || abs32(lup[i]-p.PerceptualGate) <= 1e-5 {
				amb[b*HW+i] = 1
			}
		}
	}
	out := make([]float32, len(amb))
	require.NoError(t, cpu.Dilate(amb, batch, p.Height, p.Width, p.Radius, out))
	return out
}

func abs32(v float32) float32 {
	if v < 0 {
		return -v
	}
	return v
}

func TestBlendStepMatchesCPU(t *testing.T) {
	d := gpu(t)
	s := newStream(t, d)
	r := rand.New(rand.NewPCG(7, 8))
	shapes := [][4]int{{1, 4, 128, 128}, {2, 4, 96, 168}, {3, 4, 5, 7}, {1, 1, 1, 1}, {2, 4, 1, 3}, {0, 4, 8, 8}, {1, 4, 64, 64}}
	type variant struct {
		name                           string
		mask, noise, hist, x0, inPlace bool
		coeffs                         engine.BlendCoeffs
	}
	uni := engine.BlendCoeffs{Guidance: 9, CA: 0.9, CB: -0.3, CC: 0.8, CD: 0.6, CH: [2]float32{0.25, -0.125}, CE: 1.1, CF: -0.7}
	variants := []variant{
		{"euler-plain", false, false, false, false, false, engine.EulerCoeffs(7.5, 2.5, 1.75)},
		{"euler-masked", true, true, false, false, false, engine.EulerCoeffs(7.5, 2.5, 1.75)},
		{"euler-masked-inplace", true, true, false, true, true, engine.EulerCoeffs(7.5, 2.5, 1.75)},
		{"ddim-masked-nonoise", true, false, false, true, false, engine.DDIMCoeffs(7.5, 0.3, 0.6)},
		{"multistep-hist-x0", true, true, true, true, false, uni},
		{"multistep-hist-inplace", false, false, true, true, true, uni},
	}
	for _, sh := range shapes {
		for _, v := range variants {
			for _, g := range []int{64, 3} {
				t.Run(fmt.Sprintf("%dx%dx%dx%d/%s/guard%d", sh[0], sh[1], sh[2], sh[3], v.name, g), func(t *testing.T) {
					B, C, H, W := sh[0], sh[1], sh[2], sh[3]
					n := B * C * H * W
					lat := engine.Shape{int64(B), int64(C), int64(H), int64(W)}
					in := cpu.BlendIn{NoisePred: randSlice(r, 2*n, -2, 2), X: randSlice(r, n, -3, 3)}
					if v.mask {
						in.Init = randSlice(r, n, -3, 3)
						in.Mask = randSlice(r, B*H*W, 0, 1)
						for i := range in.Mask { // mostly hard 0/1, some soft values
							if i%3 == 0 {
								in.Mask[i] = 0
							} else if i%3 == 1 {
								in.Mask[i] = 1
							}
						}
					}
					if v.noise {
						in.Noise = randSlice(r, n, -3, 3)
					}
					if v.hist {
						in.Hist = [2][]float32{randSlice(r, n, -2, 2), randSlice(r, n, -2, 2)}
					}
					wantOut := make([]float32, n)
					var wantX0 []float32
					if v.x0 {
						wantX0 = make([]float32, n)
					}
					require.NoError(t, cpu.BlendStep(v.coeffs, B, C, H, W, in, wantOut, wantX0))

					up := func(data []float32, shape engine.Shape) (*guarded, *Tensor) {
						if data == nil {
							return nil, nil
						}
						gd := newGuarded(t, d, s, shape, g, data)
						return gd, gd.view
					}
					gNP, tNP := up(in.NoisePred, engine.Shape{int64(2 * B), int64(C), int64(H), int64(W)})
					gX, tX := up(in.X, lat)
					_, tInit := up(in.Init, lat)
					_, tNoise := up(in.Noise, lat)
					_, tMask := up(in.Mask, engine.Shape{int64(B), 1, int64(H), int64(W)})
					_, tH0 := up(in.Hist[0], lat)
					_, tH1 := up(in.Hist[1], lat)
					gOut, tOut := gX, tX
					if !v.inPlace {
						gOut = newGuarded(t, d, s, lat, g, nil)
						tOut = gOut.view
					}
					var gX0 *guarded
					var tX0 *Tensor
					if v.x0 {
						gX0 = newGuarded(t, d, s, lat, g, nil)
						tX0 = gX0.view
					}
					bin := engine.BlendTensors{NoisePred: tNP, X: tX, Init: tInit, Noise: tNoise, Mask: tMask, Hist: [2]engine.Tensor{tH0, tH1}}
					require.NoError(t, s.BlendStep(v.coeffs, bin, tOut, tX0))
					got := gOut.read(t, s, "out")
					cnt, worst := mismatch(got, wantOut, tol(relTol(1e-5)))
					assert.Zerof(t, cnt, "out: %d of %d differ; %s", cnt, n, worst)
					if v.x0 {
						gotX0 := gX0.read(t, s, "x0")
						cnt, worst = mismatch(gotX0, wantX0, tol(relTol(1e-5)))
						assert.Zerof(t, cnt, "x0: %d of %d differ; %s", cnt, n, worst)
					}
					gNP.read(t, s, "noise_pred")
				})
			}
		}
	}
}

func TestInpaintInputMatchesCPU(t *testing.T) {
	d := gpu(t)
	s := newStream(t, d)
	r := rand.New(rand.NewPCG(9, 10))
	for _, sh := range [][4]int{{1, 4, 128, 128}, {2, 4, 96, 168}, {3, 4, 5, 7}, {1, 1, 1, 1}, {0, 4, 8, 8}} {
		for _, g := range []int{64, 3} {
			t.Run(fmt.Sprintf("%v/guard%d", sh, g), func(t *testing.T) {
				B, C, H, W := sh[0], sh[1], sh[2], sh[3]
				n := B * C * H * W
				lat := engine.Shape{int64(B), int64(C), int64(H), int64(W)}
				latents, masked := randSlice(r, n, -3, 3), randSlice(r, n, -3, 3)
				mask := randSlice(r, B*H*W, 0, 1)
				want := make([]float32, 2*B*(2*C+1)*H*W)
				require.NoError(t, cpu.InpaintInput(B, C, H, W, 0.37, latents, mask, masked, want))
				gl := newGuarded(t, d, s, lat, g, latents)
				gm := newGuarded(t, d, s, engine.Shape{int64(B), 1, int64(H), int64(W)}, g, mask)
				gk := newGuarded(t, d, s, lat, g, masked)
				gOut := newGuarded(t, d, s, engine.Shape{int64(2 * B), int64(2*C + 1), int64(H), int64(W)}, g, nil)
				require.NoError(t, s.InpaintInput(0.37, gl.view, gm.view, gk.view, gOut.view))
				got := gOut.read(t, s, "out")
				cnt, worst := mismatch(got, want, tol(absTol(0)))
				assert.Zerof(t, cnt, "%d of %d differ; %s", cnt, len(want), worst)
			})
		}
	}
}

func TestArgumentErrors(t *testing.T) {
	d := gpu(t)
	s := newStream(t, d)
	lat := engine.Shape{1, 4, 8, 8}
	alloc := func(shape engine.Shape) *Tensor {
		x, err := d.AllocTensor(engine.Float32, shape)
		require.NoError(t, err)
		t.Cleanup(func() { x.Close() })
		return x
	}
	np, x, out, mask := alloc(engine.Shape{2, 4, 8, 8}), alloc(lat), alloc(lat), alloc(engine.Shape{1, 1, 8, 8})
	c := engine.EulerCoeffs(7.5, 1, 0.5)

	// Checked by the C launcher: a mask without init, and x0 aliasing out.
	err := s.BlendStep(c, engine.BlendTensors{NoisePred: np, X: x, Mask: mask}, out, nil)
	requireErrorIs(t, err, engine.ErrShape)
	assert.Contains(t, err.Error(), "mask given without init")
	err = s.BlendStep(c, engine.BlendTensors{NoisePred: np, X: x}, out, out)
	requireErrorIs(t, err, engine.ErrShape)

	// Checked in Go: shapes and dtypes.
	requireErrorIs(t, s.BlendStep(c, engine.BlendTensors{NoisePred: x, X: x}, out, nil), engine.ErrShape)
	bad, err := d.AllocTensor(engine.Int32, lat)
	require.NoError(t, err)
	defer bad.Close()
	requireErrorIs(t, s.BlendStep(c, engine.BlendTensors{NoisePred: np, X: bad}, out, nil), engine.ErrDType)
	p := engine.DefaultFuseParams(64, 64)
	p.GridH = 0
	requireErrorIs(t, s.FuseMaps(p, x, nil, engine.FuseOutputs{}), engine.ErrShape)

	// The stream still works after rejected calls.
	require.NoError(t, s.BlendStep(c, engine.BlendTensors{NoisePred: np, X: x}, out, nil))
	require.NoError(t, s.Sync())

	closed := alloc(lat)
	require.NoError(t, closed.Close())
	err = s.BlendStep(c, engine.BlendTensors{NoisePred: np, X: closed}, out, nil)
	require.Error(t, err)
	assert.False(t, errors.Is(err, engine.ErrRun))
}
