package trt_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/engine/cuda"
	"github.com/grefine/grefine/engine/trt"
	"github.com/grefine/grefine/engine/trt/trttest"
)

func TestMain(m *testing.M) { os.Exit(trttest.Main(m)) }

// engine/cuda's memory is what TensorRT binds: its device allocates session outputs
// (SlotOptions.Device) and its tensors are device tensors (checked at compile time; run on
// a GPU by gputest).
var (
	_ engine.Device    = (*cuda.Device)(nil)
	_ trt.DeviceTensor = (*cuda.Tensor)(nil)
	_ engine.Engine    = (*trt.Session)(nil)
)

// TestAllocationCounts: Run allocates each output on the slot's device;
// RunInto with bound outputs allocates nothing, on any path (no shim buffer either).
func TestAllocationCounts(t *testing.T) {
	b := newBackend(t, trt.Options{})
	e := openAffine(t, b)
	c := &trttest.CountingDevice{Device: trttest.BufferDevice{B: b}}
	slot, err := b.NewSlot(trt.SlotOptions{Device: c})
	require.NoError(t, err)
	defer slot.Close()
	s, err := slot.Session(e)
	require.NoError(t, err)
	in, _, _ := affineInputs(t, b, 3)
	for i := 0; i < 3; i++ {
		out, err := s.Run(context.Background(), in)
		require.NoError(t, err)
		require.NoError(t, engine.CloseAll(out))
	}
	assert.Equal(t, 6, c.Count(), "two outputs per Run")
	y := upload(t, b, mustHost(t, engine.Float32, engine.Shape{3, 3}))
	ids := upload(t, b, mustHost(t, engine.Int32, engine.Shape{3, 4}))
	outs := map[string]engine.Tensor{"y": y, "ids_out": ids}
	require.NoError(t, s.RunInto(context.Background(), in, outs))
	before := b.BufferAllocations()
	for i := 0; i < 5; i++ {
		require.NoError(t, s.RunInto(context.Background(), in, outs))
	}
	assert.Equal(t, 6, c.Count(), "RunInto allocates no output")
	assert.Equal(t, before, b.BufferAllocations(), "and no shim buffer")

	// The engine outlives neither its sessions nor its slot's order: closing it first is
	// refused and changes nothing.
	err = e.Close()
	assert.ErrorIs(t, err, trt.ErrOrder)
	require.NoError(t, s.RunInto(context.Background(), in, outs), "still usable after the refusal")
	require.NoError(t, slot.Close())
	require.NoError(t, e.Close())
	_, err = slot.Session(e)
	assert.ErrorIs(t, err, engine.ErrClosed)
}

// affinePlan: y = 2x+1 (float32), ids copied with +10 (int32); two profiles.
const affinePlan = `grefine-fake-plan 1
input x float32 -1,3
input ids int32 -1,4
output y float32 x 2 1
output ids_out int32 ids 1 10
profile 0 x 1,3 2,3 4,3
profile 0 ids 1,4 2,4 4,4
profile 1 x 5,3 8,3 16,3
profile 1 ids 5,4 8,4 16,4
memory 0 64
memory 1 256
`

// syncBuffer is a goroutine-safe log sink (TensorRT may log from its own threads).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newBackend(t *testing.T, opts trt.Options) *trt.Backend {
	t.Helper()
	opts.Lib = trttest.Lib()
	b := trt.New(opts)
	require.NoError(t, b.Available())
	t.Cleanup(func() { assert.NoError(t, b.Close()) })
	return b
}

func openAffine(t *testing.T, b *trt.Backend) *trt.Engine {
	t.Helper()
	e, err := b.OpenPlan([]byte(affinePlan), engine.OpenOptions{Name: "affine"})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, e.Close()) })
	return e
}

func upload(t *testing.T, b *trt.Backend, h *engine.HostTensor) *trt.Buffer {
	t.Helper()
	buf, err := b.Upload(h)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, buf.Close()) })
	return buf
}

func affineInputs(t *testing.T, b *trt.Backend, rows int) (map[string]engine.Tensor, []float32, []int32) {
	t.Helper()
	xs := make([]float32, rows*3)
	for i := range xs {
		xs[i] = float32(i)*0.5 - 3
	}
	ids := make([]int32, rows*4)
	for i := range ids {
		ids[i] = int32(i * 7)
	}
	x, err := engine.FromFloat32(engine.Shape{int64(rows), 3}, xs)
	require.NoError(t, err)
	id, err := engine.FromInt32(engine.Shape{int64(rows), 4}, ids)
	require.NoError(t, err)
	return map[string]engine.Tensor{"x": upload(t, b, x), "ids": upload(t, b, id)}, xs, ids
}

func download(t *testing.T, b *trt.Backend, tensor engine.Tensor) *engine.HostTensor {
	t.Helper()
	h, err := b.Download(tensor)
	require.NoError(t, err)
	return h
}

func TestMissingLibrary(t *testing.T) {
	notSO := filepath.Join(t.TempDir(), "libgrefine_trt.so")
	require.NoError(t, os.WriteFile(notSO, []byte("not an elf file"), 0o644))
	for _, tc := range []struct {
		name, lib, want string
	}{
		{name: "absent", lib: filepath.Join(t.TempDir(), "missing", "libgrefine_trt.so"), want: "no such file"},
		{name: "not a library", lib: notSO, want: "libgrefine_trt.so"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := trt.New(trt.Options{Lib: tc.lib})
			defer b.Close()
			err := b.Available()
			require.Error(t, err)
			assert.ErrorIs(t, err, engine.ErrUnavailable)
			assert.Contains(t, err.Error(), tc.want)
			assert.Equal(t, "", b.Version())
			_, err = b.Open("x.plan", engine.OpenOptions{})
			assert.ErrorIs(t, err, engine.ErrUnavailable)
		})
	}
}

// TestSecondShimRefused: a process loads one shim; a backend naming another file fails,
// naming both, instead of silently running on the first.
func TestSecondShimRefused(t *testing.T) {
	newBackend(t, trt.Options{}) // the fake is loaded
	data, err := os.ReadFile(trttest.Lib())
	require.NoError(t, err)
	other := filepath.Join(t.TempDir(), "libgrefine_trt.so")
	require.NoError(t, os.WriteFile(other, data, 0o755))
	b := trt.New(trt.Options{Lib: other})
	defer b.Close()
	err = b.Available()
	require.ErrorIs(t, err, engine.ErrUnavailable)
	assert.ErrorContains(t, err, "is already loaded from "+trttest.Lib()+" (--trt-lib); cannot also load "+other)
}

func TestRegistry(t *testing.T) {
	assert.Contains(t, engine.Backends(), "trt")
	b, err := engine.NewBackend("trt", map[string]string{"lib": trttest.Lib(), "cuda_graphs": "true"})
	require.NoError(t, err)
	defer b.Close()
	require.NoError(t, b.Available())
	assert.Equal(t, "trt", b.Name())
	assert.Equal(t, "cuda", b.DeviceName())

	_, err = engine.NewBackend("trt", map[string]string{"libb": "x"})
	assert.ErrorContains(t, err, `unknown option "libb"`)
	_, err = engine.NewBackend("trt", map[string]string{"cuda_graphs": "maybe"})
	assert.ErrorContains(t, err, "cuda_graphs")
}

func TestVersionsAndDevice(t *testing.T) {
	b := newBackend(t, trt.Options{})
	v, err := b.Versions()
	require.NoError(t, err)
	assert.Equal(t, 2, v.ABI, "ABI 2: device indices in the handles, the emulated flag")
	assert.Equal(t, "11.1.0", v.Compiled.String())
	assert.Equal(t, "10.16.0", v.Runtime.String())
	assert.Equal(t, "tensorrt 10.16.0 (shim built against 11.1.0)", b.Version())

	t.Setenv("GRF_FAKE_TRT_VERSION", "100803")
	t.Setenv("GRF_FAKE_TRT_CC", "9.0")
	tg, err := b.Target()
	require.NoError(t, err)
	assert.Equal(t, trt.Target{GPU: "fake gpu 0", ComputeCapability: "9.0", TensorRT: "10.8.3"}, tg)
}

func TestDeviceIndex(t *testing.T) {
	t.Setenv("GRF_FAKE_TRT_DEVICES", "2")
	b := newBackend(t, trt.Options{Device: 1})
	tg, err := b.Target()
	require.NoError(t, err)
	assert.Equal(t, "fake gpu 1", tg.GPU)
	e := openAffine(t, b) // runtime, buffers and streams are created for device 1
	in, xs, _ := affineInputs(t, b, 2)
	out, err := e.Run(context.Background(), in)
	require.NoError(t, err)
	defer engine.CloseAll(out)
	assert.Equal(t, xs[0]*2+1, download(t, b, out["y"]).F32[0])

	// The shim refuses an index the machine does not have, at the first handle.
	bad := trt.New(trt.Options{Lib: trttest.Lib(), Device: 5})
	defer bad.Close()
	_, err = bad.OpenPlan([]byte(affinePlan), engine.OpenOptions{Name: "x"})
	assert.ErrorIs(t, err, engine.ErrUnavailable)
	assert.ErrorContains(t, err, "device index out of range")
	reg, err := engine.NewBackend("trt", map[string]string{"device": "x"})
	assert.Nil(t, reg)
	assert.ErrorContains(t, err, `device="x"`)
}

func TestNoDevice(t *testing.T) {
	t.Setenv("GRF_FAKE_TRT_DEVICES", "0")
	b := trt.New(trt.Options{Lib: trttest.Lib()})
	defer b.Close()
	err := b.Available()
	assert.ErrorIs(t, err, engine.ErrUnavailable)
	assert.ErrorContains(t, err, "no CUDA device")
}

func TestDescribe(t *testing.T) {
	b := newBackend(t, trt.Options{})
	e := openAffine(t, b)
	assert.Equal(t, "affine", e.Name())
	assert.Equal(t, []engine.TensorDesc{
		{Name: "x", DType: engine.Float32, Shape: engine.Shape{-1, 3}},
		{Name: "ids", DType: engine.Int32, Shape: engine.Shape{-1, 4}},
	}, e.Inputs())
	assert.Equal(t, []engine.TensorDesc{
		{Name: "y", DType: engine.Float32, Shape: engine.Shape{-1, 3}},
		{Name: "ids_out", DType: engine.Int32, Shape: engine.Shape{-1, 4}},
	}, e.Outputs())
	p := e.Plan()
	require.Len(t, p.Profiles, 2)
	assert.Equal(t, trt.ShapeRange{Name: "x", Min: engine.Shape{5, 3}, Opt: engine.Shape{8, 3}, Max: engine.Shape{16, 3}}, p.Profiles[1].Inputs[0])
	assert.Equal(t, int64(64), e.DeviceMemorySize(0))
	assert.Equal(t, int64(256), e.DeviceMemorySize(1))
	assert.Equal(t, int64(256), e.DeviceMemorySize(-1))

	// Inputs returns a copy.
	in := e.Inputs()
	in[0].Shape[0] = 99
	assert.Equal(t, int64(-1), e.Inputs()[0].Shape[0])
}

func TestRunSelectsProfile(t *testing.T) {
	b := newBackend(t, trt.Options{})
	e := openAffine(t, b)
	for _, tc := range []struct {
		name    string
		rows    int
		scratch int64
	}{
		{name: "profile 0", rows: 2, scratch: 256}, // scratch is sized for every open engine
		{name: "profile 1", rows: 9, scratch: 256},
		{name: "profile 0 min", rows: 1, scratch: 256},
		{name: "profile 1 max", rows: 16, scratch: 256},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, xs, ids := affineInputs(t, b, tc.rows)
			out, err := e.Run(context.Background(), in)
			require.NoError(t, err)
			defer engine.CloseAll(out)
			require.Len(t, out, 2)
			y := download(t, b, out["y"])
			assert.Equal(t, engine.Shape{int64(tc.rows), 3}, y.Shape())
			for i, v := range xs {
				assert.Equal(t, v*2+1, y.F32[i], "y[%d]", i)
			}
			o := download(t, b, out["ids_out"])
			for i, v := range ids {
				assert.Equal(t, v+10, o.I32[i], "ids_out[%d]", i)
			}
			assert.Equal(t, tc.scratch, b.ScratchBytes())
		})
	}
}

func TestRunErrors(t *testing.T) {
	b := newBackend(t, trt.Options{})
	e := openAffine(t, b)
	good, _, _ := affineInputs(t, b, 2)
	big, _, _ := affineInputs(t, b, 20)
	mixed := map[string]engine.Tensor{"x": good["x"], "ids": big["ids"]}
	host, err := engine.NewHostTensor(engine.Float32, engine.Shape{2, 3})
	require.NoError(t, err)
	wrongType := upload(t, b, mustHost(t, engine.Int32, engine.Shape{2, 3}))
	wrongRank := upload(t, b, mustHost(t, engine.Float32, engine.Shape{2, 3, 1}))

	for _, tc := range []struct {
		name   string
		inputs map[string]engine.Tensor
		is     error
		msg    string
	}{
		{name: "missing input", inputs: map[string]engine.Tensor{"x": good["x"]}, is: engine.ErrBinding, msg: `"ids" not bound`},
		{name: "unknown input", inputs: map[string]engine.Tensor{"x": good["x"], "ids": good["ids"], "z": good["x"]}, is: engine.ErrBinding, msg: `unknown input "z"`},
		{name: "wrong dtype", inputs: map[string]engine.Tensor{"x": wrongType, "ids": good["ids"]}, is: engine.ErrDType, msg: "int32"},
		{name: "wrong rank", inputs: map[string]engine.Tensor{"x": wrongRank, "ids": good["ids"]}, is: engine.ErrShape, msg: "[2,3,1]"},
		{name: "host tensor", inputs: map[string]engine.Tensor{"x": host, "ids": good["ids"]}, is: engine.ErrDevice, msg: "cpu"},
		{name: "outside every profile", inputs: big, is: trt.ErrNoProfile, msg: "x=[20,3] ids=[20,4]; profiles 0: x [1,3]..[4,3], ids [1,4]..[4,4]; 1: x [5,3]..[16,3]"},
		{name: "profiles disagree", inputs: mixed, is: engine.ErrShape, msg: "x=[2,3] ids=[20,4]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := e.Run(context.Background(), tc.inputs)
			require.Error(t, err)
			assert.Nil(t, out)
			assert.ErrorIs(t, err, tc.is)
			assert.ErrorContains(t, err, tc.msg)
		})
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = e.Run(ctx, good)
	assert.ErrorIs(t, err, context.Canceled)

	// The engine still works after errors.
	out, err := e.Run(context.Background(), good)
	require.NoError(t, err)
	assert.NoError(t, engine.CloseAll(out))
}

func mustHost(t *testing.T, dt engine.DType, s engine.Shape) *engine.HostTensor {
	t.Helper()
	h, err := engine.NewHostTensor(dt, s)
	require.NoError(t, err)
	return h
}

func TestRunIntoAndCUDAGraphs(t *testing.T) {
	b := newBackend(t, trt.Options{CUDAGraphs: true})
	e := openAffine(t, b)
	in, xs, _ := affineInputs(t, b, 3)
	y := upload(t, b, mustHost(t, engine.Float32, engine.Shape{3, 3}))
	ids := upload(t, b, mustHost(t, engine.Int32, engine.Shape{3, 4}))
	outs := map[string]engine.Tensor{"y": y, "ids_out": ids}

	require.NoError(t, e.RunInto(context.Background(), in, outs))
	assert.Equal(t, 0, e.Replays(), "first run captures")
	require.NoError(t, e.RunInto(context.Background(), in, outs))
	require.NoError(t, e.RunInto(context.Background(), in, outs))
	assert.Equal(t, 2, e.Replays(), "unchanged state replays")
	h := download(t, b, y)
	for i, v := range xs {
		assert.Equal(t, v*2+1, h.F32[i])
	}

	// New shapes (and so new addresses) invalidate the graph.
	in2, _, _ := affineInputs(t, b, 2)
	out, err := e.Run(context.Background(), in2)
	require.NoError(t, err)
	defer engine.CloseAll(out)
	assert.Equal(t, 2, e.Replays())

	// RunInto checks the caller's outputs.
	bad := map[string]engine.Tensor{"y": y, "ids_out": ids}
	err = e.RunInto(context.Background(), in2, bad)
	assert.ErrorIs(t, err, engine.ErrShape)
	assert.ErrorContains(t, err, `output "y" has shape [3,3], these inputs make [2,3]`)
	err = e.RunInto(context.Background(), in, map[string]engine.Tensor{"y": y})
	assert.ErrorIs(t, err, engine.ErrBinding)
	err = e.RunInto(context.Background(), in, map[string]engine.Tensor{"y": y, "ids_out": ids, "nope": y})
	assert.ErrorContains(t, err, `unknown output "nope"`)
	err = e.RunInto(context.Background(), in, map[string]engine.Tensor{"y": ids, "ids_out": ids})
	assert.ErrorIs(t, err, engine.ErrDType)
}

func TestSharedScratch(t *testing.T) {
	b := newBackend(t, trt.Options{})
	small, err := b.OpenPlan([]byte("grefine-fake-plan 1\ninput a float32 2\noutput b float32 a 1 0\nmemory 0 100\n"), engine.OpenOptions{Name: "small"})
	require.NoError(t, err)
	defer small.Close()
	assert.Equal(t, int64(0), b.ScratchBytes())
	_, err = small.Default() // its session in the default slot
	require.NoError(t, err)
	require.NoError(t, b.ReserveScratch())
	assert.Equal(t, int64(100), b.ScratchBytes())
	e := openAffine(t, b)
	_, err = e.Default()
	require.NoError(t, err)
	require.NoError(t, b.ReserveScratch())
	assert.Equal(t, e.DeviceMemorySize(-1), b.ScratchBytes())

	// Both engines run on the one buffer.
	a := upload(t, b, mustHost(t, engine.Float32, engine.Shape{2}))
	out, err := small.Run(context.Background(), map[string]engine.Tensor{"a": a})
	require.NoError(t, err)
	assert.NoError(t, engine.CloseAll(out))
	in, _, _ := affineInputs(t, b, 12)
	out, err = e.Run(context.Background(), in)
	require.NoError(t, err)
	assert.NoError(t, engine.CloseAll(out))
	assert.Equal(t, int64(256), b.ScratchBytes())
}

func TestBadPlansAndLogger(t *testing.T) {
	var logs syncBuffer
	b := newBackend(t, trt.Options{Logger: zerolog.New(&logs).Level(zerolog.DebugLevel)})
	for _, tc := range []struct {
		name, plan, msg string
	}{
		{name: "garbage", plan: "garbage bytes", msg: "not a fake plan"},
		{name: "unknown dtype", plan: "grefine-fake-plan 1\ninput x complex64 2\n", msg: "unknown dtype complex64"},
		{name: "dynamic without profile", plan: "grefine-fake-plan 1\ninput x float32 -1\n", msg: "no shape for it"},
		{name: "unsupported dtype", plan: "grefine-fake-plan 1\ninput x bfloat16 2\noutput y bfloat16 x 1 0\n", msg: "bfloat16, which grefine tensors cannot hold"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := b.OpenPlan([]byte(tc.plan), engine.OpenOptions{Name: tc.name})
			require.Error(t, err)
			assert.ErrorContains(t, err, tc.msg)
			if tc.name != "unsupported dtype" {
				assert.ErrorIs(t, err, engine.ErrModel)
			} else {
				assert.ErrorIs(t, err, engine.ErrDType)
			}
		})
	}
	_, err := b.OpenPlan(nil, engine.OpenOptions{Name: "empty"})
	assert.ErrorIs(t, err, engine.ErrModel)
	_, err = b.Open(filepath.Join(t.TempDir(), "none.plan"), engine.OpenOptions{Name: "none"})
	assert.ErrorContains(t, err, "cannot open")

	// The shim's log reaches zerolog: errors as error, TensorRT info as debug.
	path := filepath.Join(t.TempDir(), "affine.plan")
	require.NoError(t, os.WriteFile(path, []byte(affinePlan), 0o644))
	e, err := b.Open(path, engine.OpenOptions{Name: "fromfile"})
	require.NoError(t, err)
	require.NoError(t, e.Close())
	out := logs.String()
	assert.Contains(t, out, `"level":"error","component":"tensorrt","message":"fake: deserialization failed: not a fake plan`)
	assert.Contains(t, out, `"level":"debug","component":"tensorrt","message":"fake: loaded engine with 4 i/o tensors and 2 profile(s)"`)
	assert.NotContains(t, out, "fake runtime created", "verbose is filtered at debug level")
}

func TestCloseOrder(t *testing.T) {
	b := trt.New(trt.Options{Lib: trttest.Lib()})
	e1, err := b.OpenPlan([]byte(affinePlan), engine.OpenOptions{Name: "one"})
	require.NoError(t, err)
	e2, err := b.OpenPlan([]byte(affinePlan), engine.OpenOptions{Name: "two"})
	require.NoError(t, err)
	in, _, _ := affineInputs(t, b, 2)
	out, err := e1.Run(context.Background(), in)
	require.NoError(t, err)

	require.NoError(t, e2.Close())
	require.NoError(t, e2.Close(), "double close")
	// Backend.Close closes e1 (its context, then its engine) before the runtime; the fake
	// refuses to destroy a runtime with live engines, so a wrong order fails here.
	require.NoError(t, b.Close())
	require.NoError(t, b.Close())
	require.NoError(t, e1.Close())

	_, err = e1.Run(context.Background(), in)
	assert.ErrorIs(t, err, engine.ErrClosed)
	_, err = b.OpenPlan([]byte(affinePlan), engine.OpenOptions{Name: "three"})
	assert.ErrorIs(t, err, engine.ErrClosed)
	assert.ErrorIs(t, b.Available(), engine.ErrClosed)

	// Outputs outlive the engine; buffers close once and refuse use afterwards.
	y := out["y"].(*trt.Buffer)
	require.NoError(t, engine.CloseAll(out))
	require.NoError(t, y.Close())
	_, err = y.Download()
	assert.ErrorIs(t, err, engine.ErrClosed)

	var nilEngine *trt.Engine
	var nilBackend *trt.Backend
	var nilBuffer *trt.Buffer
	assert.NoError(t, nilEngine.Close())
	assert.NoError(t, nilBackend.Close())
	assert.NoError(t, nilBuffer.Close())
}

// TestBackendCloseOrder: Backend.Close closes every slot's sessions (default slot
// included) before the engines and the runtime, whatever the caller left open; a borrowed
// stream is left to its owner.
func TestBackendCloseOrder(t *testing.T) {
	b := trt.New(trt.Options{Lib: trttest.Lib()})
	e, err := b.OpenPlan([]byte(affinePlan), engine.OpenOptions{Name: "one"})
	require.NoError(t, err)
	def, err := b.Slot(0)
	require.NoError(t, err)
	s0, err := def.Session(e) // a second session in the default slot
	require.NoError(t, err)
	s7, err := b.Slot(7)
	require.NoError(t, err)
	_, err = s7.Session(e)
	require.NoError(t, err)
	borrowed, err := b.NewSlot(trt.SlotOptions{Stream: def.Stream()})
	require.NoError(t, err)
	assert.Equal(t, def.Stream(), borrowed.Stream())
	s9, err := borrowed.Session(e)
	require.NoError(t, err)
	in, xs, _ := affineInputs(t, b, 2)
	out, err := s9.Run(context.Background(), in)
	require.NoError(t, err)
	assert.Equal(t, xs[1]*2+1, download(t, b, out["y"]).F32[1])
	require.NoError(t, engine.CloseAll(out))
	_, err = e.Run(context.Background(), in) // the default session
	require.NoError(t, err)
	assert.Equal(t, 4, e.Sessions())
	require.NoError(t, borrowed.Close(), "does not destroy the default slot's stream")
	require.NoError(t, s0.RunInto(context.Background(), in, map[string]engine.Tensor{
		"y": upload(t, b, mustHost(t, engine.Float32, engine.Shape{2, 3})), "ids_out": upload(t, b, mustHost(t, engine.Int32, engine.Shape{2, 4}))}))
	require.NoError(t, b.Close())
	assert.Equal(t, 0, e.Sessions())
	_, err = s0.Run(context.Background(), in)
	assert.ErrorIs(t, err, engine.ErrClosed)
}

// TestScratchSharingDetected: below the Go API (which gives each slot its own scratch),
// the fake and the emulator catch two concurrently running contexts sharing scratch
// memory, and stay quiet when each has its own (cgo/trt/fake/scratch_race.c, two threads).
func TestScratchSharingDetected(t *testing.T) {
	src := filepath.Join(filepath.Dir(trttest.Source()), "scratch_race.c")
	bin := filepath.Join(t.TempDir(), "scratch_race")
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "cc"
	}
	out, err := exec.Command(cc, "-std=c11", "-Wall", "-Wextra", "-Werror", "-I", filepath.Join(filepath.Dir(trttest.Source()), "..", "..", "include"),
		src, "-o", bin, "-ldl", "-lpthread").CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, mode := range []string{"shared", "separate"} {
		out, err := exec.Command(bin, trttest.Lib(), mode).CombinedOutput()
		assert.NoError(t, err, "%s: %s", mode, out)
		t.Logf("%s: %s", mode, strings.TrimSpace(string(out)))
	}
}

func TestConcurrentRuns(t *testing.T) {
	b := newBackend(t, trt.Options{})
	e := openAffine(t, b)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		rows := 1 + g*2
		in, xs, _ := affineInputs(t, b, rows)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				out, err := e.Run(context.Background(), in)
				if err != nil {
					errs <- err
					return
				}
				h, err := b.Download(out["y"])
				_ = engine.CloseAll(out)
				if err != nil {
					errs <- err
					return
				}
				for k, v := range xs {
					if h.F32[k] != v*2+1 {
						errs <- errors.New("wrong value under concurrency")
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestBuildPlan(t *testing.T) {
	b := newBackend(t, trt.Options{})
	dir := t.TempDir()
	onnx := filepath.Join(dir, "model.onnx")
	require.NoError(t, os.WriteFile(onnx, []byte("grefine-fake-plan 1\ninput sample float32 -1,4,-1,-1\ninput t float32 1\noutput noise sample float32 1 0\n"), 0o644))
	require.NoError(t, os.WriteFile(onnx, []byte("grefine-fake-plan 1\ninput sample float32 -1,4,-1,-1\ninput t float32 1\noutput noise float32 sample 1 0\n"), 0o644))
	cache := filepath.Join(dir, "timing.cache")
	req := trt.BuildRequest{
		ONNXPath: onnx,
		Profiles: [][]trt.ShapeRange{
			{{Name: "sample", Min: engine.Shape{2, 4, 128, 128}, Opt: engine.Shape{2, 4, 128, 128}, Max: engine.Shape{2, 4, 128, 128}}},
			{{Name: "sample", Min: engine.Shape{2, 4, 16, 16}, Opt: engine.Shape{2, 4, 96, 128}, Max: engine.Shape{2, 4, 128, 128}}},
		},
		Precision:      trt.FP16,
		WorkspaceBytes: 1 << 30,
		TimingCache:    cache,
	}
	plan, err := b.BuildPlan(context.Background(), req)
	require.NoError(t, err)
	assert.Contains(t, string(plan), "build precision=fp16 strongly_typed=0 workspace=1073741824 opt_level=-1")
	_, err = b.BuildPlan(context.Background(), req)
	require.NoError(t, err)
	c, err := os.ReadFile(cache)
	require.NoError(t, err)
	assert.Equal(t, "fake-timing-cache 2\n", string(c), "cache loaded and saved by both builds")

	info, err := b.InspectPlan(plan)
	require.NoError(t, err)
	require.Len(t, info.Profiles, 2)
	assert.Equal(t, req.Profiles[1][0], info.Profiles[1].Inputs[0])
	assert.Equal(t, trt.ShapeRange{Name: "t", Min: engine.Shape{1}, Opt: engine.Shape{1}, Max: engine.Shape{1}}, info.Profiles[1].Inputs[1])
	assert.Equal(t, []trt.TensorInfo{
		{Name: "sample", Input: true, DType: trt.Float32, Shape: engine.Shape{-1, 4, -1, -1}},
		{Name: "t", Input: true, DType: trt.Float32, Shape: engine.Shape{1}},
		{Name: "noise", DType: trt.Float32, Shape: engine.Shape{-1, 4, -1, -1}},
	}, info.Tensors)

	for _, tc := range []struct {
		name string
		edit func(*trt.BuildRequest)
		is   error
		msg  string
	}{
		{name: "unknown input", edit: func(r *trt.BuildRequest) { r.Profiles[0][0].Name = "latent" }, is: engine.ErrBinding, msg: `names input "latent"`},
		{name: "min above max", edit: func(r *trt.BuildRequest) { r.Profiles[0][0].Min = engine.Shape{2, 4, 256, 128} }, is: engine.ErrShape, msg: "min <= opt <= max"},
		{name: "fixed dim", edit: func(r *trt.BuildRequest) {
			r.Profiles[0][0].Min = engine.Shape{2, 3, 128, 128}
			r.Profiles[0][0].Opt = engine.Shape{2, 3, 128, 128}
			r.Profiles[0][0].Max = engine.Shape{2, 3, 128, 128}
		}, is: engine.ErrShape, msg: "fixes it to 4"},
		{name: "bad precision", edit: func(r *trt.BuildRequest) { r.Precision = "int4" }, is: engine.ErrModel, msg: `unknown precision "int4"`},
		{name: "no profiles", edit: func(r *trt.BuildRequest) { r.Profiles = nil }, is: engine.ErrModel, msg: "no optimisation profile"},
		{name: "missing onnx", edit: func(r *trt.BuildRequest) { r.ONNXPath = filepath.Join(dir, "nope.onnx") }, is: engine.ErrBinding, msg: "cannot open onnx file"},
		{name: "not onnx", edit: func(r *trt.BuildRequest) { r.ONNXPath = cache }, is: engine.ErrModel, msg: "onnx parse"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := req
			r.TimingCache = ""
			r.Profiles = [][]trt.ShapeRange{{req.Profiles[0][0]}}
			tc.edit(&r)
			_, err := b.BuildPlan(context.Background(), r)
			require.Error(t, err)
			assert.ErrorIs(t, err, tc.is)
			assert.ErrorContains(t, err, tc.msg)
		})
	}
}

func TestBufferRoundTrip(t *testing.T) {
	b := newBackend(t, trt.Options{})
	for _, tc := range []struct {
		name string
		h    *engine.HostTensor
	}{
		{name: "float32", h: func() *engine.HostTensor {
			x, _ := engine.FromFloat32(engine.Shape{2, 2}, []float32{1, -2, 3.5, 4})
			return x
		}()},
		{name: "int64", h: func() *engine.HostTensor {
			x, _ := engine.FromInt64(engine.Shape{3}, []int64{1 << 40, -1, 7})
			return x
		}()},
		{name: "empty", h: mustHost(t, engine.Float32, engine.Shape{0, 3})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			buf := upload(t, b, tc.h)
			assert.Equal(t, "cuda", buf.DeviceName())
			got := download(t, b, buf)
			assert.Equal(t, tc.h, got)
		})
	}
	_, err := b.Download(mustHost(t, engine.Float32, engine.Shape{1}))
	assert.ErrorIs(t, err, engine.ErrDevice)
	_, err = b.Alloc(engine.Float32, engine.Shape{-1, 2})
	assert.ErrorIs(t, err, engine.ErrShape)
	assert.True(t, strings.HasPrefix(b.Version(), "tensorrt "))
}
