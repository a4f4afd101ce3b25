package cuda

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/engine"
)

// Benchmarks enqueue b.N launches on one stream and wait once at the end. b.SetBytes is
// the compulsory traffic of one launch (every input read once, every output written
// once); the GB/s metric is that traffic over wall time, to compare with
// BenchmarkCopyDtoD (read + write of a 256 MiB cudaMemcpy).

func upload(tb testing.TB, d *Device, s *Stream, shape engine.Shape, data []float32) *Tensor {
	tb.Helper()
	t, err := d.AllocTensor(engine.Float32, shape)
	require.NoError(tb, err)
	tb.Cleanup(func() { t.Close() })
	if data == nil {
		data = make([]float32, shape.NumElements())
	}
	h, err := engine.FromFloat32(shape, data)
	require.NoError(tb, err)
	require.NoError(tb, s.Upload(t, h))
	return t
}

func reportGBs(b *testing.B, bytes int64) {
	b.SetBytes(bytes)
	if sec := b.Elapsed().Seconds(); sec > 0 {
		b.ReportMetric(float64(bytes)*float64(b.N)/sec/1e9, "GB/s")
	}
}

func benchFuse(b *testing.B, batch, H, W, radius int, withAlign bool) {
	d := gpu(b)
	s := newStream(b, d)
	p := engine.DefaultFuseParams(H, W)
	p.Radius = radius
	c := fuseCase{batch, 14, 14, H, W, H / 8, W / 8, radius, withAlign}
	good, align := fuseInputs(rand.New(rand.NewPCG(1, 1)), c)
	B := int64(batch)
	gT := upload(b, d, s, engine.Shape{B, 4, int64(p.Tokens())}, good)
	var aT *Tensor
	if withAlign {
		aT = upload(b, d, s, engine.Shape{B, int64(H), int64(W)}, align)
	}
	out := engine.FuseOutputs{
		Score:   upload(b, d, s, engine.Shape{B}, nil),
		PMap:    upload(b, d, s, engine.Shape{B, int64(H), int64(W)}, nil),
		MaskImg: upload(b, d, s, engine.Shape{B, int64(H), int64(W)}, nil),
		MaskLat: upload(b, d, s, engine.Shape{B, int64(H / 8), int64(W / 8)}, nil),
	}
	require.NoError(b, s.FuseMaps(p, gT, aT, out)) // warm-up, sizes the workspace
	require.NoError(b, s.Sync())
	bytes := int64(batch) * (int64(4*p.Tokens()*4) + int64(2*H*W*4) + int64(H/8*W/8*4) + 4)
	if withAlign {
		bytes += int64(batch * H * W * 4)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.FuseMaps(p, gT, aT, out); err != nil {
			b.Fatal(err)
		}
	}
	require.NoError(b, s.Sync())
	b.StopTimer()
	reportGBs(b, bytes)
}

func BenchmarkFuseMaps1024(b *testing.B)         { benchFuse(b, 1, 1024, 1024, 8, true) }
func BenchmarkFuseMaps1024NoDilate(b *testing.B) { benchFuse(b, 1, 1024, 1024, 0, true) }
func BenchmarkFuseMaps768x1344B3(b *testing.B)   { benchFuse(b, 3, 768, 1344, 8, true) }

func benchBlend(b *testing.B, B, C, H, W int) {
	d := gpu(b)
	s := newStream(b, d)
	r := rand.New(rand.NewPCG(2, 2))
	n := B * C * H * W
	lat := engine.Shape{int64(B), int64(C), int64(H), int64(W)}
	in := engine.BlendTensors{
		NoisePred: upload(b, d, s, engine.Shape{int64(2 * B), int64(C), int64(H), int64(W)}, randSlice(r, 2*n, -1, 1)),
		X:         upload(b, d, s, lat, randSlice(r, n, -1, 1)),
		Init:      upload(b, d, s, lat, randSlice(r, n, -1, 1)),
		Noise:     upload(b, d, s, lat, randSlice(r, n, -1, 1)),
		Mask:      upload(b, d, s, engine.Shape{int64(B), 1, int64(H), int64(W)}, randSlice(r, B*H*W, 0, 1)),
	}
	out := upload(b, d, s, lat, nil)
	c := engine.EulerCoeffs(7.5, 3, 2)
	bytes := int64(4 * (2*n + n + n + n + B*H*W + n))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.BlendStep(c, in, out, nil); err != nil {
			b.Fatal(err)
		}
	}
	require.NoError(b, s.Sync())
	b.StopTimer()
	reportGBs(b, bytes)
}

func BenchmarkBlendStep128x128(b *testing.B)   { benchBlend(b, 1, 4, 128, 128) }
func BenchmarkBlendStep128x168B3(b *testing.B) { benchBlend(b, 3, 4, 96, 168) }

func BenchmarkInpaintInput128x128(b *testing.B) {
	d := gpu(b)
	s := newStream(b, d)
	lat := engine.Shape{1, 4, 128, 128}
	l, m, k := upload(b, d, s, lat, nil), upload(b, d, s, engine.Shape{1, 1, 128, 128}, nil), upload(b, d, s, lat, nil)
	out := upload(b, d, s, engine.Shape{2, 9, 128, 128}, nil)
	bytes := int64(4 * (4 + 1 + 4 + 2*9) * 128 * 128)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.InpaintInput(0.5, l, m, k, out); err != nil {
			b.Fatal(err)
		}
	}
	require.NoError(b, s.Sync())
	b.StopTimer()
	reportGBs(b, bytes)
}

func BenchmarkResizeBicubic14To1024(b *testing.B) {
	d := gpu(b)
	s := newStream(b, d)
	src := upload(b, d, s, engine.Shape{1, 14, 14}, randSlice(rand.New(rand.NewPCG(3, 3)), 196, 0, 1))
	dst := upload(b, d, s, engine.Shape{1, 1024, 1024}, nil)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Resize(engine.ResizeBicubic, src, dst); err != nil {
			b.Fatal(err)
		}
	}
	require.NoError(b, s.Sync())
	b.StopTimer()
	reportGBs(b, 1024*1024*4)
}

// BenchmarkCopyDtoD measures the device's copy bandwidth: cudaMemcpyAsync of 256 MiB,
// counted as read + write (2 × 256 MiB per copy).
func BenchmarkCopyDtoD(b *testing.B) {
	d := gpu(b)
	s := newStream(b, d)
	const n = 64 << 20 // floats = 256 MiB
	src, err := d.AllocTensor(engine.Float32, engine.Shape{n})
	require.NoError(b, err)
	defer src.Close()
	dst, err := d.AllocTensor(engine.Float32, engine.Shape{n})
	require.NoError(b, err)
	defer dst.Close()
	require.NoError(b, s.Zero(src))
	require.NoError(b, s.Copy(dst, src))
	require.NoError(b, s.Sync())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Copy(dst, src); err != nil {
			b.Fatal(err)
		}
	}
	require.NoError(b, s.Sync())
	b.StopTimer()
	reportGBs(b, 2*4*n)
}
