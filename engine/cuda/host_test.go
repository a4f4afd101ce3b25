package cuda

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/engine/cpu"
)

// TestHostFuserMatchesCPU: the host-slice fuser (what pipeline/assess uses with --device
// cuda) equals cpu.FuseMaps within the kernel tolerances, for a non-square image.
func TestHostFuserMatchesCPU(t *testing.T) {
	d := gpu(t)
	f, err := NewHostFuser(d)
	require.NoError(t, err)
	defer f.Close()
	r := rand.New(rand.NewPCG(11, 12))
	for _, c := range []fuseCase{{1, 14, 14, 240, 320, 30, 40, 2, true}, {2, 14, 14, 131, 97, 16, 12, 0, false}} {
		p := engine.DefaultFuseParams(c.H, c.W)
		p.LatentH, p.LatentW, p.Radius = c.h, c.w, c.radius
		good, align := fuseInputs(r, c)
		mk := func() cpu.FuseMapsOut {
			return cpu.FuseMapsOut{Score: make([]float32, c.batch), PMap: make([]float32, c.batch*c.H*c.W),
				MaskImg: make([]float32, c.batch*c.H*c.W), MaskLat: make([]float32, c.batch*c.h*c.w)}
		}
		want, got := mk(), mk()
		require.NoError(t, cpu.FuseMaps(p, c.batch, good, align, want))
		require.NoError(t, f.FuseMaps(p, c.batch, good, align, got))
		n, worst := mismatch(got.Score, want.Score, tol(absTol(1e-6)))
		assert.Zerof(t, n, "score: %s", worst)
		n, worst = mismatch(got.PMap, want.PMap, tol(absTol(2e-5)))
		assert.Zerof(t, n, "pmap: %s", worst)
		amb := ambiguous(t, p, c.batch, good, want.PMap)
		bad := 0
		for i := range want.MaskImg {
			if got.MaskImg[i] != want.MaskImg[i] && amb[i] == 0 {
				bad++
			}
		}
		assert.Zero(t, bad, "mask pixels differ away from a threshold")
	}
	require.NoError(t, f.Close())
	require.NoError(t, f.Close(), "Close is idempotent")
	err = f.FuseMaps(engine.DefaultFuseParams(8, 8), 0, nil, nil, cpu.FuseMapsOut{})
	assert.ErrorIs(t, err, engine.ErrClosed)
}

// fuse1024 is the 1024² FuseMaps input both benchmarks below use (radius 8, with an
// alignment map).
func fuse1024() (engine.FuseParams, []float32, []float32, cpu.FuseMapsOut) {
	good, align := fuseInputs(rand.New(rand.NewPCG(1, 2)), fuseCase{1, 14, 14, 1024, 1024, 128, 128, 8, true})
	p := engine.DefaultFuseParams(1024, 1024)
	p.Radius = 8
	out := cpu.FuseMapsOut{Score: make([]float32, 1), PMap: make([]float32, 1<<20), MaskImg: make([]float32, 1<<20), MaskLat: make([]float32, 128*128)}
	return p, good, align, out
}

// BenchmarkHostFuser1024: FuseMaps for a 1024² image from host memory to host memory
// (uploads, kernel, downloads, allocation), what assess pays per image with --device cuda.
// Compare with cpu.FuseMaps: BenchmarkCPUFuseMaps1024.
func BenchmarkHostFuser1024(b *testing.B) {
	d := gpu(b)
	f, err := NewHostFuser(d)
	require.NoError(b, err)
	defer f.Close()
	p, good, align, out := fuse1024()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := f.FuseMaps(p, 1, good, align, out); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCPUFuseMaps1024 is the pure-Go twin on the same input (runs on any machine).
func BenchmarkCPUFuseMaps1024(b *testing.B) {
	p, good, align, out := fuse1024()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := cpu.FuseMaps(p, 1, good, align, out); err != nil {
			b.Fatal(err)
		}
	}
}
