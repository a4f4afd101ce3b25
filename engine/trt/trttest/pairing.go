package trttest

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/engine/cuda"
	"github.com/grefine/grefine/engine/trt"
)

// CUDAPairing checks that engine/cuda's memory and streams serve TensorRT directly, as a
// GPU pipeline uses them: two slots, each on its own cuda stream, bind cuda.Tensors by
// address, feed y back into x with device copies (steps times), allocate outputs on the
// cuda device (SlotOptions.Device), and run concurrently with the results of serial runs. e must compute
// y = 2x + 1 for x [rows, 3] (engine/trt/gputest/testdata/affine.onnx) with rows up to 48.
// It runs on a real shim with libgrefine_cuda.so (gputest) and on the emulators (emutest).
func CUDAPairing(t *testing.T, b *trt.Backend, dev *cuda.Device, e *trt.Engine, steps int) {
	t.Helper()
	// run is safe to call from any goroutine (errors are returned, not asserted).
	run := func(s *cuda.Stream, sess *trt.Session, rows int) ([]float32, error) {
		xs := make([]float32, rows*3)
		for i := range xs {
			xs[i] = float32(i%7) - 3
		}
		h, err := engine.FromFloat32(engine.Shape{int64(rows), 3}, xs)
		if err != nil {
			return nil, err
		}
		x, err := dev.AllocTensor(engine.Float32, h.Shape())
		if err != nil {
			return nil, err
		}
		defer x.Close()
		y, err := dev.AllocTensor(engine.Float32, h.Shape())
		if err != nil {
			return nil, err
		}
		defer y.Close()
		if err := s.Upload(x, h); err != nil {
			return nil, err
		}
		for i := 0; i < steps; i++ {
			if err := sess.RunInto(context.Background(), map[string]engine.Tensor{"x": x}, map[string]engine.Tensor{"y": y}); err != nil {
				return nil, err
			}
			if err := s.Copy(x, y); err != nil {
				return nil, err
			}
		}
		out, err := engine.NewHostTensor(engine.Float32, h.Shape())
		if err != nil {
			return nil, err
		}
		return out.F32, s.Download(out, y)
	}
	streams := make([]*cuda.Stream, 2)
	sessions := make([]*trt.Session, 2)
	for i := range streams {
		var err error
		streams[i], err = dev.NewCUDAStream()
		require.NoError(t, err)
		t.Cleanup(func() { assert.NoError(t, streams[i].Close()) })
		slot, err := b.NewSlot(trt.SlotOptions{Stream: streams[i].Handle(), Device: dev})
		require.NoError(t, err)
		t.Cleanup(func() { assert.NoError(t, slot.Close()) }) // before its stream: cleanups run last-in first-out
		sessions[i], err = slot.Session(e)
		require.NoError(t, err)
	}
	rows := []int{32, 48}
	serial, got := make([][]float32, 2), make([][]float32, 2)
	for i := range serial {
		var err error
		serial[i], err = run(streams[i], sessions[i], rows[i])
		require.NoError(t, err)
	}
	want := make([]float32, rows[0]*3)
	for i := range want {
		v := float32(i%7) - 3
		for k := 0; k < steps; k++ {
			v = 2*v + 1
		}
		want[i] = v
	}
	assert.Equal(t, want, serial[0], "%d steps of y = 2x+1", steps)
	errs := make(chan error, 2)
	for i := range got {
		go func() {
			var err error
			got[i], err = run(streams[i], sessions[i], rows[i])
			errs <- err
		}()
	}
	require.NoError(t, <-errs)
	require.NoError(t, <-errs)
	assert.Equal(t, serial, got, "two slots on two streams equal serial runs")
	x, err := dev.AllocTensor(engine.Float32, engine.Shape{4, 3})
	require.NoError(t, err)
	defer x.Close()
	out, err := sessions[0].Run(context.Background(), map[string]engine.Tensor{"x": x})
	require.NoError(t, err)
	_, ok := out["y"].(*cuda.Tensor)
	assert.True(t, ok, "outputs come from the cuda device's allocator")
	require.NoError(t, sessions[0].Slot().Synchronize())
	require.NoError(t, engine.CloseAll(out))
}
