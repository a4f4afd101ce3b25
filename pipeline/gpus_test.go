package pipeline_test

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/engine/cuda"
	"github.com/grefine/grefine/engine/trt"
	"github.com/grefine/grefine/engine/trt/emutest"
	"github.com/grefine/grefine/internal/testkit/testenv"
	"github.com/grefine/grefine/pipeline"
	"github.com/grefine/grefine/pipeline/imageio"
	"github.com/grefine/grefine/plans"
)

// The multi-GPU tests run on two emulated GPUs (TestMain sets GRF_CUDA_EMU_DEVICES=2):
// cuda-emu gives each device its own allocations, a pointer of one device used on the
// other is an error, and the TensorRT emulator's runtimes, engines and contexts belong
// to one device.

var (
	tinyPlansOnce sync.Once
	tinyPlansDir  string
	tinyPlansErr  error
)

// tinyPlans builds the tiny set's plans with the TensorRT emulator once per test binary
// (both emulated GPUs have one compute capability: the same plans verify on both).
func tinyPlans(t *testing.T) string {
	t.Helper()
	testenv.ORT(t)
	tinyPlansOnce.Do(func() {
		tb := trt.New(trt.Options{Lib: emutest.Lib()})
		defer tb.Close()
		dir, err := os.MkdirTemp("", "grefine-gpus-plans-")
		if err != nil {
			tinyPlansErr = err
			return
		}
		tinyPlansDir = dir
		_, tinyPlansErr = plans.BuildAll(context.Background(), plans.BuildAllOptions{Builder: tb,
			Models: testenv.Path(t, "testdata", "models", "tiny"), Out: dir})
	})
	require.NoError(t, tinyPlansErr)
	return tinyPlansDir
}

// removeTinyPlans removes tinyPlans' repository (TestMain, after the tests).
func removeTinyPlans() {
	if tinyPlansDir != "" {
		os.RemoveAll(tinyPlansDir)
	}
}

// openNamed opens the tiny set with cfg as given: the pipeline builds the named backend
// (one per GPU).
func openNamed(t *testing.T, cfg pipeline.Config) *pipeline.Pipeline {
	t.Helper()
	cfg.Models = testenv.Path(t, "testdata", "models", "tiny")
	p, err := pipeline.Open(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	return p
}

// trtOnGPUs opens the tiny set with --backend trt on the emulated GPUs gpus (nil: the
// single-device configuration, GPU 0), slots per GPU, each GPU its own backend built
// through the registry.
func trtOnGPUs(t *testing.T, gpus []int, slots int) *pipeline.Pipeline {
	t.Helper()
	return openNamed(t, pipeline.Config{Backend: "trt", BackendOptions: map[string]string{"lib": emutest.Lib()},
		Plans: tinyPlans(t), PlanOpener: openPlans, Device: "cuda", DeviceOptions: emuDevice(), GPUs: gpus, Slots: slots})
}

// refineOn refines img with seed and steps 2+2 and returns the result.
func refineOn(t *testing.T, p *pipeline.Pipeline, img *imageio.RGB8, seed uint64) *pipeline.Refinement {
	t.Helper()
	pr := p.DefaultParams()
	pr.Steps1, pr.Steps2, pr.Seed = 2, 2, seed
	r, err := p.Refine(context.Background(), pipeline.Request{Image: img, Prompt: demoPrompt, Params: &pr})
	require.NoError(t, err)
	return r
}

// TestTwoGPUs (issue 19 item 5): with GPUs 0 and 1 each emulated GPU gets its own
// backend, plans, execution contexts and slots; requests from one line run on both
// (GPULoad counts them per GPU, each request's transfers name its GPU), and their bytes
// equal those of a pipeline on GPU 0 alone and of one on GPU 1 alone, serial or two at
// once (under -race in make test).
func TestTwoGPUs(t *testing.T) {
	for _, backend := range []string{"trt", "ort"} {
		t.Run(backend, func(t *testing.T) {
			open := func(gpus []int) *pipeline.Pipeline {
				if backend == "trt" {
					return trtOnGPUs(t, gpus, 1)
				}
				// ONNX Runtime on the CPU behind engine.OnDevice, the request on the emulated GPUs.
				testenv.ORT(t)
				return openNamed(t, pipeline.Config{Backend: "ort", Device: "cuda-emu",
					DeviceOptions: emuDevice(), GPUs: gpus})
			}
			img := small(t)
			one := open(nil)
			info := one.Info()
			require.Len(t, info.GPUs, 1, "a GPU device serves GPU 0 by default")
			assert.Equal(t, 0, info.GPUs[0].Index)
			want := map[uint64][]byte{}
			for _, seed := range []uint64{1, 2} {
				r := refineOn(t, one, img, seed)
				require.NotNil(t, r.Transfers.GPU)
				assert.Equal(t, 0, *r.Transfers.GPU)
				want[seed] = r.Image.Pix
			}
			require.NotEqual(t, want[1], want[2])

			only1 := open([]int{1})
			require.Len(t, only1.Info().GPUs, 1)
			assert.Equal(t, 1, only1.Info().GPUs[0].Device.Ordinal, "GPU 1's own device")
			r := refineOn(t, only1, img, 1)
			assert.Equal(t, 1, *r.Transfers.GPU)
			assert.Equal(t, want[1], r.Image.Pix, "GPU 1 alone gives GPU 0's bytes")
			assert.Positive(t, r.Transfers.Total.Launches, "the request's kernels ran on GPU 1's stream")

			two := open([]int{0, 1})
			info = two.Info()
			require.Len(t, info.GPUs, 2)
			assert.Equal(t, 2, info.Slots, "one slot per GPU")
			for i, g := range info.GPUs {
				assert.Equal(t, i, g.Index)
				assert.Equal(t, i, g.Device.Ordinal)
				assert.True(t, g.Device.Emulated)
				assert.Equal(t, 1, g.Slots)
				assert.Equal(t, i, g.FirstSlot)
			}
			// Serial requests go round the idle GPUs.
			ran := map[int]int{}
			for i := 0; i < 2; i++ {
				seed := uint64(1 + i%2)
				r := refineOn(t, two, img, seed)
				require.NotNil(t, r.Transfers.GPU)
				ran[*r.Transfers.GPU]++
				assert.Equal(t, want[seed], r.Image.Pix, "request %d on GPU %d equals GPU 0 alone", i, *r.Transfers.GPU)
			}
			assert.Equal(t, map[int]int{0: 1, 1: 1}, ran, "serial requests alternate between the idle GPUs")
			// Two at once: one on each GPU, the serial bytes.
			peak := concurrentEqualsSerial(t, two, img, func(seed uint64) *pipeline.Params {
				pr := two.DefaultParams()
				pr.Steps1, pr.Steps2, pr.Seed = 2, 2, seed
				return &pr
			}, want)
			t.Logf("peak concurrent requests on two GPUs: %d", peak)
			load := two.GPULoad()
			require.Len(t, load, 2)
			for i, l := range load {
				assert.Equal(t, pipeline.GPULoad{Index: i, Slots: 1, Busy: 0, Requests: 2}, l, "GPU %d ran its share", i)
			}
			a, err := two.Assess(context.Background(), pipeline.Request{Image: img, Prompt: demoPrompt})
			require.NoError(t, err)
			ref, err := one.Assess(context.Background(), pipeline.Request{Image: img, Prompt: demoPrompt})
			require.NoError(t, err)
			assert.Equal(t, ref.PMap, a.PMap, "assess on GPU %d equals GPU 0 alone", *a.Transfers.GPU)
			assert.Equal(t, ref.AMap, a.AMap)
			assert.Equal(t, ref.Mask, a.Mask)
		})
	}
}

// TestGPUsRefusedBeforeModelWork: bad GPU lists are refused with a clear error before the
// model set is read (Models names no directory here): an index past the emulated devices,
// a repeated or negative index, GPUs on the cpu device, one backend instance for several
// GPUs, and a backend option naming another GPU.
func TestGPUsRefusedBeforeModelWork(t *testing.T) {
	testenv.ORT(t)
	base := pipeline.Config{Models: "/nonexistent/models", Backend: "ort", Device: "cuda-emu", DeviceOptions: emuDevice()}
	cases := []struct {
		name string
		edit func(*pipeline.Config)
		is   error
		msg  string
	}{
		{"out of range", func(c *pipeline.Config) { c.GPUs = []int{0, 2} }, pipeline.ErrUnavailable, "device cuda-emu, GPU 2: engine: unavailable: cuda: device 2 requested, 2 present"},
		{"repeated", func(c *pipeline.Config) { c.GPUs = []int{1, 1} }, pipeline.ErrInput, "GPU 1 is named twice"},
		{"negative", func(c *pipeline.Config) { c.GPUs = []int{-1} }, pipeline.ErrInput, "-1 is not a CUDA device index"},
		{"cpu", func(c *pipeline.Config) { c.Device, c.GPUs = "cpu", []int{0} }, pipeline.ErrInput, "the cpu device has no GPUs"},
		{"too many slots", func(c *pipeline.Config) { c.GPUs, c.Slots = []int{0, 1}, pipeline.MaxSlots }, pipeline.ErrInput, "64 per GPU on 2 GPUs is 128 slots, at most 64"},
		{"one instance", func(c *pipeline.Config) { c.GPUs, c.BackendInstance = []int{0, 1}, testenv.ORT(t) }, pipeline.ErrInput,
			"one backend instance cannot serve several GPUs"},
		{"ordinal and gpus", func(c *pipeline.Config) {
			c.GPUs, c.DeviceOptions = []int{0}, map[string]string{"lib": emutest.CUDALib(), "ordinal": "1"}
		}, pipeline.ErrInput, "both choose GPUs"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			tc.edit(&cfg)
			_, err := pipeline.Open(context.Background(), cfg)
			require.ErrorIs(t, err, tc.is)
			assert.ErrorContains(t, err, tc.msg)
			assert.NotContains(t, err.Error(), "/nonexistent", "refused before the model set is read")
		})
	}
	// A trt backend option naming another GPU than the device's is refused, not run on the wrong one.
	cfg := pipeline.Config{Models: testenv.Path(t, "testdata", "models", "tiny"), Backend: "trt",
		BackendOptions: map[string]string{"lib": emutest.Lib(), "device": "1"}, Plans: tinyPlans(t), PlanOpener: openPlans,
		Device: "cuda", DeviceOptions: emuDevice(), GPUs: []int{0}}
	_, err := pipeline.Open(context.Background(), cfg)
	require.ErrorIs(t, err, pipeline.ErrInput)
	assert.ErrorContains(t, err, "backend option device=1 names another GPU than the device's, 0")
}

// TestTensorOfAnotherGPURefused: a tensor of GPU 0 handed to an engine of GPU 1's backend
// is refused before anything is enqueued (trt.GPUTensor), naming both devices; and a slot
// of GPU 0's stream cannot join GPU 1's backend. Behind that check the emulator refuses
// the address too (a device tensor that does not say its GPU).
func TestTensorOfAnotherGPURefused(t *testing.T) {
	dir := tinyPlans(t)
	set := testenv.TinySet(t)
	repo, err := plans.Open(dir, set, plans.OpenOptions{})
	require.NoError(t, err)
	defer repo.Close()
	dev := func(i int) *cuda.Device {
		d, err := cuda.Open(cuda.Options{LibPath: emutest.CUDALib(), Ordinal: i})
		require.NoError(t, err)
		return d
	}
	d0, d1 := dev(0), dev(1)
	s0, err := d0.NewStream()
	require.NoError(t, err)
	defer s0.Close()
	s1, err := d1.NewStream()
	require.NoError(t, err)
	defer s1.Close()
	b1 := trt.New(trt.Options{Lib: emutest.Lib(), Device: 1})
	defer b1.Close()

	_, err = repo.OpenEngine(b1, "clip_text", engine.OpenOptions{Name: "clip_text", Slot: 0, Stream: s0})
	require.ErrorIs(t, err, engine.ErrDevice)
	assert.ErrorContains(t, err, "the slot's device is cuda device 0, the backend's runtime and engines are on device 1")

	e, err := repo.OpenEngine(b1, "clip_text", engine.OpenOptions{Name: "clip_text", Slot: 1, Stream: s1})
	require.NoError(t, err)
	defer e.Close()
	ids, err := engine.FromInt32(engine.Shape{1, 77}, make([]int32, 77))
	require.NoError(t, err)
	on := func(s engine.Stream) engine.Tensor {
		x, err := engine.Upload(s, ids)
		require.NoError(t, err)
		t.Cleanup(func() { x.Close() })
		return x
	}
	_, err = e.Run(context.Background(), map[string]engine.Tensor{"input_ids": on(s0)})
	require.ErrorIs(t, err, engine.ErrDevice)
	assert.ErrorContains(t, err, `input "input_ids" is on cuda device 0, the engine runs on device 1`)
	_, err = e.Run(context.Background(), map[string]engine.Tensor{"input_ids": addressOnly{on(s0).(trt.DeviceTensor)}})
	require.Error(t, err, "the emulator refuses GPU 0's address on GPU 1")
	assert.ErrorContains(t, err, "device")
	t.Logf("the emulator's own refusal: %v", err)
	out, err := e.Run(context.Background(), map[string]engine.Tensor{"input_ids": on(s1)})
	require.NoError(t, err, "GPU 1's own tensor runs")
	require.NoError(t, engine.CloseAll(out))
	require.NoError(t, s1.Sync())
}

// addressOnly is a device tensor that hides its GPU (only its address shows).
type addressOnly struct{ trt.DeviceTensor }

// TestParseGPUs: the front ends' GPU list.
func TestParseGPUs(t *testing.T) {
	for in, want := range map[string][]int{"": nil, " ": nil, "0": {0}, "0,1": {0, 1}, " 3 , 1 ": {3, 1}, "1,1": {1, 1}} {
		got, err := pipeline.ParseGPUs(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"0,", "x", "-1", "0;1", "1.5", "0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16"} {
		_, err := pipeline.ParseGPUs(in)
		assert.ErrorIs(t, err, pipeline.ErrInput, in)
	}
}

// TestTwoGPUsOneLine: with two GPUs the admission limit, the line, ownership of ids,
// cancel and progress work as with one device: two long refines run one on each GPU (their
// state names it), a third waits with its position, a fourth is refused at once
// (2 slots + queue 1); cancelling one frees its GPU's slot, and the waiting request runs
// there.
func TestTwoGPUsOneLine(t *testing.T) {
	testenv.ORT(t)
	p := openNamed(t, pipeline.Config{Backend: "ort", Device: "cuda-emu", DeviceOptions: emuDevice(), GPUs: []int{0, 1}, MaxQueue: 1})
	img := small(t)
	long := p.DefaultParams()
	long.Steps1, long.Steps2 = 50, 50
	errs := map[string]chan error{}
	start := func(id string, pr *pipeline.Params) chan *pipeline.Refinement {
		running := make(chan struct{})
		var once sync.Once
		errc := make(chan error, 1)
		errs[id] = errc
		out := make(chan *pipeline.Refinement, 1)
		go func() {
			r, err := p.Refine(context.Background(), pipeline.Request{ID: id, Image: img, Prompt: demoPrompt, Params: pr,
				Observer: func(e pipeline.Event) error {
					if e.Stage == "stage1" {
						once.Do(func() { close(running) })
					}
					return nil
				}})
			errc <- err
			out <- r
		}()
		if pr == &long {
			<-running
		}
		return out
	}
	start("a", &long)
	start("b", &long)
	gpuOf := func(id string) int {
		st, ok := p.Request(id)
		require.True(t, ok, id)
		require.Equal(t, "running", st.State)
		require.NotNil(t, st.GPU, "a running request names its GPU")
		return *st.GPU
	}
	ga, gb := gpuOf("a"), gpuOf("b")
	assert.ElementsMatch(t, []int{0, 1}, []int{ga, gb}, "one long refine on each GPU")
	for _, l := range p.GPULoad() {
		assert.Equal(t, 1, l.Busy, "GPU %d busy", l.Index)
	}
	short := p.DefaultParams()
	short.Steps1, short.Steps2 = 2, 2
	q := start("q", &short)
	require.Eventually(t, func() bool { s, ok := p.Request("q"); return ok && s.Position == 1 }, 10*time.Second, time.Millisecond)
	_, err := p.Assess(context.Background(), pipeline.Request{Image: img, Prompt: "a cat"})
	assert.ErrorIs(t, err, pipeline.ErrBusy, "2 slots + queue 1 are taken")
	assert.False(t, p.CancelFor("someone else", "b"), "another owner cannot cancel it")

	require.True(t, p.Cancel("b"))
	assert.ErrorIs(t, <-errs["b"], pipeline.ErrCanceled)
	r := <-q
	require.NoError(t, <-errs["q"])
	assert.Equal(t, gb, *r.Transfers.GPU, "the waiting request ran on the GPU the cancelled one freed")
	require.True(t, p.Cancel("a"))
	assert.ErrorIs(t, <-errs["a"], pipeline.ErrCanceled)
}
