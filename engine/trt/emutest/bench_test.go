package emutest_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/engine/trt"
	"github.com/grefine/grefine/engine/trt/emutest"
	"github.com/grefine/grefine/internal/testkit/testenv"
	"github.com/grefine/grefine/plans"
)

// BenchmarkUNetStep: one tiny SDXL UNet step ([2,9,16,24]) on the ort backend and on the
// emulator through a session with device inputs and outputs bound once (each step runs at
// the stream's synchronisation), to show what the TensorRT code path costs on top of ONNX
// Runtime. Numbers: bench/RESULTS.md.
func BenchmarkUNetStep(b *testing.B) {
	set := testenv.TinySet(b)
	in := randomInputs(b, set, "sdxl_unet", 1)
	out, err := engine.NewHostTensor(engine.Float32, engine.Shape{2, 4, 16, 24})
	require.NoError(b, err)
	b.Run("ort", func(b *testing.B) {
		ort := testenv.ORT(b)
		defer ort.Close()
		e, err := set.OpenEngine(ort, "sdxl_unet", engine.OpenOptions{Threads: 1})
		require.NoError(b, err)
		defer e.Close()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			o, err := e.Run(context.Background(), in)
			require.NoError(b, err)
			_ = engine.CloseAll(o)
		}
	})
	b.Run("emulator", func(b *testing.B) {
		tb := trt.New(trt.Options{Lib: emutest.Lib(), CUDAGraphs: true})
		defer tb.Close()
		repo, err := plans.Open(tinyPlans(b, tb), set, plans.OpenOptions{})
		require.NoError(b, err)
		e, err := repo.OpenEngine(tb, "sdxl_unet", engine.OpenOptions{})
		require.NoError(b, err)
		defer e.Close()
		s := e.(*trt.Session)
		dev := upload(b, tb, in)
		o, err := s.Slot().Alloc(out.DType(), out.Shape())
		require.NoError(b, err)
		defer o.Close()
		outs := map[string]engine.Tensor{"noise_pred": o}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			require.NoError(b, s.RunInto(context.Background(), dev, outs))
			require.NoError(b, s.Slot().Synchronize())
		}
	})
}
