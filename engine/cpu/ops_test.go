package cpu

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/engine"
)

func filled(n int, v float32) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = v
	}
	return s
}

func TestResizeHandComputed(t *testing.T) {
	// Bilinear 1x2 -> 1x4: src x = (x+0.5)/2 - 0.5 = -0.25 (clamped 0), 0.25, 0.75, 1.25.
	out := make([]float32, 4)
	require.NoError(t, ResizeBilinear([]float32{0, 1}, 1, 1, 2, out, 1, 4))
	assert.Equal(t, []float32{0, 0.25, 0.75, 1}, out)

	// Nearest 1x4 -> 1x2 takes columns floor(x*2) = 0, 2; 1x3 -> 1x5: floor(x*0.6).
	out = make([]float32, 2)
	require.NoError(t, DownsampleNearest([]float32{10, 11, 12, 13}, 1, 1, 4, out, 1, 2))
	assert.Equal(t, []float32{10, 12}, out)
	out = make([]float32, 5)
	require.NoError(t, DownsampleNearest([]float32{1, 2, 3}, 1, 1, 3, out, 1, 5))
	assert.Equal(t, []float32{1, 1, 2, 2, 3}, out)

	// Bicubic 1x4 -> 1x2 (scale 2): x=0 samples at 0.5: i0 = 0, t = 0.5, taps -1..2
	// clamped to 0,0,1,2; Keys (A=-0.75) weights at distances 1.5, 0.5, 0.5, 1.5 are
	// -0.09375, 0.59375, 0.59375, -0.09375.
	out = make([]float32, 2)
	src := []float32{1, 2, 4, 8}
	require.NoError(t, ResizeBicubic(src, 1, 1, 4, out, 1, 2))
	want0 := -0.09375*1 + 0.59375*1 + 0.59375*2 - 0.09375*4
	assert.InDelta(t, want0, out[0], 1e-6)
	// x=1 samples at 2.5: taps 1,2,3,4 clamped to 1,2,3,3.
	want1 := -0.09375*2 + 0.59375*4 + 0.59375*8 - 0.09375*8
	assert.InDelta(t, want1, out[1], 1e-6)
}

func TestResizeProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	sizes := [][4]int{{14, 14, 1024, 768}, {14, 14, 37, 53}, {5, 7, 3, 2}, {1, 1, 4, 3}, {3, 2, 5, 7}, {9, 9, 1, 1}}
	for _, mode := range []engine.ResizeMode{engine.ResizeNearest, engine.ResizeBilinear, engine.ResizeBicubic} {
		for _, sz := range sizes {
			// A constant image stays constant (the weights sum to one).
			out := make([]float32, sz[2]*sz[3])
			require.NoError(t, Resize(mode, filled(sz[0]*sz[1], 0.37), 1, sz[0], sz[1], out, sz[2], sz[3]))
			worst := 0.0
			for _, v := range out {
				worst = math.Max(worst, math.Abs(float64(v)-0.37))
			}
			assert.LessOrEqualf(t, worst, 1e-6, "%v %v: constant image", mode, sz)
			// Identity resize returns the input exactly.
			in := randSlice(r, sz[0]*sz[1])
			same := make([]float32, len(in))
			require.NoError(t, Resize(mode, in, 1, sz[0], sz[1], same, sz[0], sz[1]))
			assert.Equal(t, in, same, "%v identity %dx%d", mode, sz[0], sz[1])
		}
		// Zero planes or zero-sized outputs are valid no-ops; bad lengths are errors.
		require.NoError(t, Resize(mode, nil, 0, 4, 4, nil, 8, 8))
		require.NoError(t, Resize(mode, make([]float32, 16), 1, 4, 4, nil, 0, 8))
		assert.ErrorIs(t, Resize(mode, make([]float32, 15), 1, 4, 4, make([]float32, 64), 8, 8), engine.ErrShape)
		assert.ErrorIs(t, Resize(mode, nil, 1, 0, 0, make([]float32, 4), 2, 2), engine.ErrShape)
	}
	assert.ErrorIs(t, Resize(engine.ResizeMode(9), nil, 0, 1, 1, nil, 1, 1), engine.ErrShape)
}

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = r.Float32()
	}
	return s
}

func TestCaskFuse(t *testing.T) {
	alpha := engine.DefaultAlpha
	// Two tokens: [overall, technical, rationality, naturalness] = (0.8, 0.5, 0.9, 0.1)
	// and (0.6, 1, 1, 1) (every dimension above its threshold: L = g0).
	good := []float32{0.8, 0.6, 0.5, 1, 0.9, 1, 0.1, 1}
	L := make([]float32, 2)
	require.NoError(t, CaskFuse(good, 1, 2, alpha, L))
	want := 0.8 * math.Min(0.5/float64(alpha[0]), 1) * math.Min(0.9/float64(alpha[1]), 1) * math.Min(0.1/float64(alpha[2]), 1)
	assert.InDelta(t, want, L[0], 1e-7)
	assert.Equal(t, float32(0.6), L[1])
	assert.ErrorIs(t, CaskFuse(good, 1, 3, alpha, L), engine.ErrShape)
}

func TestMinMaxNormalize(t *testing.T) {
	out := make([]float32, 3)
	require.NoError(t, MinMaxNormalize([]float32{1, 3, 2}, out))
	assert.Equal(t, []float32{0, 1, 0.5}, out)
	require.NoError(t, MinMaxNormalize([]float32{0.4, 0.4, 0.4}, out))
	assert.Equal(t, []float32{0, 0, 0}, out, "flat map normalises to zeros")
	require.NoError(t, MinMaxNormalize(nil, nil))
	assert.ErrorIs(t, MinMaxNormalize([]float32{1}, out), engine.ErrShape)
}

func TestDefectMask(t *testing.T) {
	p := engine.DefaultFuseParams(1, 4)
	pmap := []float32{0.1, 0.1, 0.9, 0.9}
	lup := []float32{0.3, 0.7, 0.3, 0.3}
	align := []float32{0, 0, 0, 0.9}
	mask := make([]float32, 4)
	require.NoError(t, DefectMask(pmap, lup, align, p, mask))
	// low P and low L: defect; low P but high L (a good image's worst patch): none;
	// high P: none; alignment above its bound: defect.
	assert.Equal(t, []float32{1, 0, 0, 1}, mask)
	require.NoError(t, DefectMask(pmap, lup, nil, p, mask))
	assert.Equal(t, []float32{1, 0, 0, 0}, mask)
	assert.ErrorIs(t, DefectMask(pmap, lup[:3], nil, p, mask), engine.ErrShape)
}

func TestDilate(t *testing.T) {
	// A 5x6 plane with one pixel set at (1, 4) near the right border.
	src := make([]float32, 30)
	src[1*6+4] = 1
	dst := make([]float32, 30)
	require.NoError(t, Dilate(src, 1, 5, 6, 1, dst))
	for y := 0; y < 5; y++ {
		for x := 0; x < 6; x++ {
			want := float32(0)
			if y <= 2 && x >= 3 {
				want = 1
			}
			assert.Equalf(t, want, dst[y*6+x], "(%d,%d)", y, x)
		}
	}
	require.NoError(t, Dilate(src, 1, 5, 6, 0, dst))
	assert.Equal(t, src, dst, "radius 0 copies")
	require.NoError(t, Dilate(src, 1, 5, 6, 10, dst))
	assert.Equal(t, filled(30, 1), dst, "a radius beyond the plane fills it")
	// Planes do not bleed into each other.
	two := append(make([]float32, 30), src...)
	out := make([]float32, 60)
	require.NoError(t, Dilate(two, 2, 5, 6, 10, out))
	assert.Equal(t, make([]float32, 30), out[:30])
	assert.ErrorIs(t, Dilate(src, 1, 5, 5, 1, dst), engine.ErrShape)
}

func fuseOut(batch int, p engine.FuseParams) FuseMapsOut {
	HW := p.Height * p.Width
	return FuseMapsOut{
		Score: make([]float32, batch), PMap: make([]float32, batch*HW),
		MaskImg: make([]float32, batch*HW), MaskLat: make([]float32, batch*p.LatentH*p.LatentW),
	}
}

func TestFuseMapsGate(t *testing.T) {
	p := engine.DefaultFuseParams(32, 48)
	p.Radius = 2
	T := p.Tokens()
	// Image 0: uniformly good (all probabilities 0.95 > every alpha, L = 0.95 >= gate): P is all zeros (a
	// flat grid) but the absolute gate keeps the mask empty. Image 1: uniformly poor
	// (0.3): everything is a defect.
	good := append(filled(4*T, 0.95), filled(4*T, 0.3)...)
	out := fuseOut(2, p)
	require.NoError(t, FuseMaps(p, 2, good, nil, out))
	assert.InDelta(t, 0.95, out.Score[0], 1e-6)
	HW, hw := p.Height*p.Width, p.LatentH*p.LatentW
	assert.Equal(t, make([]float32, HW), out.PMap[:HW])
	assert.Equal(t, make([]float32, HW), out.MaskImg[:HW], "a good image gets no mask")
	assert.Equal(t, make([]float32, hw), out.MaskLat[:hw])
	assert.Equal(t, filled(HW, 1), out.MaskImg[HW:], "a poor image is all defect")
	assert.Equal(t, filled(hw, 1), out.MaskLat[hw:])

	// An alignment defect alone marks its region, dilated by the radius.
	align := make([]float32, 2*HW)
	align[10*p.Width+17] = 0.9
	require.NoError(t, FuseMaps(p, 2, good, align, out))
	set := 0
	for _, v := range out.MaskImg[:HW] {
		set += int(v)
	}
	assert.Equal(t, 25, set, "one pixel dilated with radius 2")
	assert.Equal(t, float32(1), out.MaskImg[8*p.Width+15])
	assert.Equal(t, float32(0), out.MaskImg[7*p.Width+17])
	assert.Equal(t, float32(1), out.MaskLat[1*p.LatentW+2], "latent pixel (1,2) samples image (8,16)")

	assert.ErrorIs(t, FuseMaps(p, 2, good[:10], nil, out), engine.ErrShape)
	bad := p
	bad.GridH = 0
	assert.ErrorIs(t, FuseMaps(bad, 2, good, nil, out), engine.ErrShape)
}

func TestFuseMapsOrientation(t *testing.T) {
	// A defect in the top-right patch of a 2x3 grid must stay top-right on a wide image
	// (the reference code transposes non-square maps).
	p := engine.DefaultFuseParams(40, 60)
	p.GridH, p.GridW = 2, 3
	T := p.Tokens()
	good := filled(4*T, 0.9)
	good[1+2] = 0.1 // overall probability of patch (0, 2)
	out := fuseOut(1, p)
	require.NoError(t, FuseMaps(p, 1, good, nil, out))
	assert.Equal(t, float32(1), out.MaskImg[5*p.Width+55], "top-right is masked")
	assert.Equal(t, float32(0), out.MaskImg[35*p.Width+5], "bottom-left is not")
	assert.Less(t, out.PMap[5*p.Width+55], out.PMap[35*p.Width+5])
}

// TestFusedMaskIsUnionOfMasks: the assess stage fuses without the alignment map and
// unions Dilate(A > AlignBound) afterwards; a max filter distributes over OR, so that
// must equal the fused mask exactly.
func TestFusedMaskIsUnionOfMasks(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, radius := range []int{0, 1, 3} {
		p := engine.DefaultFuseParams(37, 53)
		p.Radius = radius
		T := p.Tokens()
		good := randSlice(r, 4*T)
		for i := range good {
			good[i] = 0.45 + 0.55*good[i]
		}
		HW := p.Height * p.Width
		align := randSlice(r, HW)
		for i := range align {
			align[i] *= 0.75
		}
		fused := fuseOut(1, p)
		require.NoError(t, FuseMaps(p, 1, good, align, fused))
		perc := fuseOut(1, p)
		require.NoError(t, FuseMaps(p, 1, good, nil, perc))
		raw := make([]float32, HW)
		for i, v := range align {
			if v > p.AlignBound {
				raw[i] = 1
			}
		}
		am := make([]float32, HW)
		require.NoError(t, Dilate(raw, 1, p.Height, p.Width, radius, am))
		union := make([]float32, HW)
		n := 0
		for i := range union {
			union[i] = max(perc.MaskImg[i], am[i])
			n += int(union[i])
		}
		t.Logf("radius %d: %d of %d pixels in the mask", radius, n, HW)
		require.Greater(t, n, 0)
		require.Less(t, n, HW, "the case has both kinds of pixels")
		assert.Equal(t, fused.MaskImg, union, "radius %d", radius)
		assert.Equal(t, fused.PMap, perc.PMap, "P does not depend on the alignment map")
	}
}

func TestStreamScaleCopiesAndDevices(t *testing.T) {
	s := &Stream{}
	x, _ := engine.FromFloat32(engine.Shape{1, 1, 1, 3}, []float32{1, -2, 0.1})
	out, _ := engine.NewHostTensor(engine.Float32, engine.Shape{2, 1, 1, 3})
	require.NoError(t, s.Pointwise(engine.Pointwise{Op: engine.PointScale, Src: x, Dst: out, S: 0.5}))
	want := []float32{0.5, -1, float32(float64(float32(0.1)) * 0.5)}
	assert.Equal(t, append(want, want...), out.F32)
	bad, _ := engine.NewHostTensor(engine.Float32, engine.Shape{1, 1, 1, 4})
	assert.ErrorIs(t, s.Pointwise(engine.Pointwise{Op: engine.PointScale, Src: x, Dst: bad, S: 1}), engine.ErrShape)
	err := s.InpaintInput(1, &fakeTensor{}, x, x, x)
	assert.ErrorIs(t, err, engine.ErrDevice, "a foreign tensor is refused")
	assert.Contains(t, err.Error(), "on device fake, not cpu", "the error names both devices")
	assert.Equal(t, engine.Counters{Launches: 3}, s.Counters(), "ops copy nothing")
}
