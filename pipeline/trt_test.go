package pipeline_test

import (
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/engine"
	_ "github.com/grefine/grefine/engine/cuda" // the cuda and cuda-emu devices
	"github.com/grefine/grefine/engine/trt"
	"github.com/grefine/grefine/engine/trt/emutest"
	"github.com/grefine/grefine/internal/testkit/testenv"
	"github.com/grefine/grefine/modelset"
	"github.com/grefine/grefine/pipeline"
	"github.com/grefine/grefine/pipeline/imageio"
	"github.com/grefine/grefine/pipeline/refine"
	"github.com/grefine/grefine/plans"
)

// TestMain builds the GPU emulators (the TensorRT emulator and the cuda-emu copy it links)
// for the device-pair tests; a compile failure fails the run. The tests open the "cuda"
// device on that cuda-emu copy (emuDevice): one allocation table for engines and kernels.
// cuda-emu emulates two GPUs here (the multi-GPU tests, gpus_test.go); the others use GPU 0.
func TestMain(m *testing.M) {
	if os.Getenv("GRF_CUDA_EMU_DEVICES") == "" {
		os.Setenv("GRF_CUDA_EMU_DEVICES", "2")
	}
	code := emutest.Main(m)
	removeTinyPlans()
	os.Exit(code)
}

// emuDevice are the device options of the emulated GPU: the cuda-emu copy the TensorRT
// emulator links.
func emuDevice() map[string]string { return map[string]string{"lib": emutest.CUDALib()} }

// openPlans is the front ends' plan opener (package plans).
func openPlans(dir string, set *modelset.Set) (engine.Opener, error) {
	return plans.Open(dir, set, plans.OpenOptions{})
}

// emulatedPair opens the tiny set on the emulated GPU pair: TensorRT plans built by the
// emulator, run by it on cuda-emu memory, the request's tensors and ops on the cuda device
// (cuda-emu), CUDA graphs on.
func emulatedPair(t *testing.T, slots int) (*pipeline.Pipeline, *trt.Backend) {
	t.Helper()
	testenv.ORT(t)
	tb := trt.New(trt.Options{Lib: emutest.Lib(), CUDAGraphs: true})
	t.Cleanup(func() { tb.Close() })
	require.NoError(t, tb.Available())
	require.True(t, tb.Emulated(), "the TensorRT emulator reports a GPU")
	dir := t.TempDir()
	rep, err := plans.BuildAll(context.Background(), plans.BuildAllOptions{Builder: tb,
		Models: testenv.Path(t, "testdata", "models", "tiny"), Out: dir})
	require.NoError(t, err)
	require.Len(t, rep.Engines, 11)
	p := openTiny(t, pipeline.Config{BackendInstance: tb, Plans: dir, PlanOpener: openPlans, Device: "cuda", DeviceOptions: emuDevice(), Slots: slots})
	info := p.Info().DeviceInfo
	require.Equal(t, "cuda", info.Name)
	require.True(t, info.Emulated, "the cuda device is cuda-emu here: %+v", info)
	return p, tb
}

// TestTRTEmulatorMatchesORT runs assess and refine with --backend trt --device cuda on
// the two emulators (plans built by the emulator): the path a GPU takes, device tensors
// end to end. Both equal --backend ort on the CPU within the conformance tolerances, two
// slots at once give the bytes of serial runs, and the denoising loops allocate nothing
// per step and replay the UNet's captured CUDA graph.
func TestTRTEmulatorMatchesORT(t *testing.T) {
	emu, tb := emulatedPair(t, 2)
	ref := openTiny(t, pipeline.Config{})
	img := small(t)

	a1, err := ref.Assess(context.Background(), pipeline.Request{Image: img, Prompt: demoPrompt})
	require.NoError(t, err)
	fresh := tb.BufferAllocations()
	a2, err := emu.Assess(context.Background(), pipeline.Request{Image: img, Prompt: demoPrompt})
	require.NoError(t, err)
	t.Logf("shim allocations of the first assess (scratch sized on first use): %d", tb.BufferAllocations()-fresh)
	assert.InDelta(t, a1.P, a2.P, 1e-5)
	assert.InDelta(t, *a1.A, *a2.A, 1e-5)
	assert.LessOrEqual(t, testenv.MaxAbs(t, a1.PMap, a2.PMap), 1e-5)
	assert.LessOrEqual(t, testenv.MaxAbs(t, a1.AMap, a2.AMap), 1e-5)
	assert.Equal(t, a1.Mask, a2.Mask, "the repair mask")
	assert.Equal(t, "trt", a2.Setup.Backend)
	assert.Equal(t, "cuda", a2.Setup.Device)
	t.Logf("assess transfers on the emulated pair: %+v", *a2.Transfers)

	pr := ref.DefaultParams()
	pr.Steps1, pr.Steps2 = 3, 2
	r1, err := ref.Refine(context.Background(), pipeline.Request{Image: img, Prompt: demoPrompt, Params: &pr})
	require.NoError(t, err)
	r2, err := emu.Refine(context.Background(), pipeline.Request{Image: img, Prompt: demoPrompt, Params: &pr})
	require.NoError(t, err)
	worst := 0
	for i := range r1.Image.Pix {
		worst = max(worst, absInt(int(r1.Image.Pix[i])-int(r2.Image.Pix[i])))
	}
	t.Logf("emulated pair vs ort/cpu: worst pixel difference %d/255; transfers %+v", worst, *r2.Transfers)
	assert.LessOrEqual(t, worst, 1)

	// No per-step allocation: a refine with more steps makes no more shim allocations, and
	// the UNet replays its captured graph at every step but the first of each stage.
	allocs := func(steps int) (int64, *pipeline.Refinement) {
		x := pr
		x.Steps1, x.Steps2, x.Seed = steps, steps, 9
		before := tb.BufferAllocations()
		r, err := emu.Refine(context.Background(), pipeline.Request{Image: img, Prompt: demoPrompt, Params: &x})
		require.NoError(t, err)
		return tb.BufferAllocations() - before, r
	}
	warm, _ := allocs(2) // the first refine at these shapes sizes the buffers
	t.Logf("shim allocations of the first refine at these shapes: %d", warm)
	few, _ := allocs(2)
	many, r6 := allocs(6)
	t.Logf("shim allocations per refine: %d with 2+2 steps, %d with 6+6 steps", few, many)
	assert.Equal(t, few, many, "no allocation per denoising step")
	assert.Equal(t, 2*(6-1), r6.Transfers.Replays, "each stage captures its first step and replays the rest")

	// Two slots at once equal serial runs on the same pipeline.
	serial := map[uint64][]byte{}
	params := func(seed uint64) *pipeline.Params { x := pr; x.Seed = seed; return &x }
	for _, s := range []uint64{1, 2} {
		r, err := emu.Refine(context.Background(), pipeline.Request{Image: img, Prompt: demoPrompt, Params: params(s)})
		require.NoError(t, err)
		serial[s] = r.Image.Pix
	}
	t.Logf("peak concurrent requests on two slots: %d", concurrentEqualsSerial(t, emu, img, params, serial))
}

// Per-request transfers of the tiny-set refine (10 + 10 steps) on the emulated GPU pair
// (the README states them): the image goes up once; assess sends the texts' token ids and
// features; each stage sends its token ids and one block with its noise, timesteps (and
// stage 1's time ids); the host reads back the texts' features, the CLS token with p and
// the four dimensions, the mask's pixel count and the refined image.
var wantRefineTransfers = struct {
	hostToDevice, deviceToHost, syncs int
}{hostToDevice: 7, deviceToHost: 4, syncs: 4}

// TestDevicePairCountsCopies: a tiny-set refine of 10 + 10 steps on the emulated GPU pair
// copies nothing and waits for nothing inside a denoising step, and its totals are the
// ones the README states (maps left on the device: Request.SkipMaps).
func TestDevicePairCountsCopies(t *testing.T) {
	emu, _ := emulatedPair(t, 1)
	img := small(t)
	pr := emu.DefaultParams()
	pr.Steps1, pr.Steps2, pr.Seed = 10, 10, 1
	req := pipeline.Request{Image: img, Prompt: demoPrompt, Params: &pr, SkipMaps: true}
	_, err := emu.Refine(context.Background(), req) // the first run fills the text-feature cache
	require.NoError(t, err)
	for _, cached := range []bool{true, false} {
		if !cached {
			req.Prompt += " again" // new texts: their features are computed and read back
		}
		r, err := emu.Refine(context.Background(), req)
		require.NoError(t, err)
		tr := r.Transfers
		t.Logf("features cached %v: %+v", cached, *tr)
		require.True(t, r.Refine.Stage1.Ran, "the tiny set's sample has a repair mask")
		assert.Equal(t, 20, tr.Steps)
		assert.Zero(t, tr.InSteps.HostCopies(), "no host copy inside a denoising step")
		assert.Zero(t, tr.InSteps.Syncs, "no host sync inside a denoising step")
		assert.Equal(t, 18, tr.Replays, "the UNet step is replayed from its CUDA graph (the first step of each stage captures)")
		h2d, d2h, syncs := wantRefineTransfers.hostToDevice, wantRefineTransfers.deviceToHost, wantRefineTransfers.syncs
		if cached {
			h2d, d2h, syncs = h2d-1, d2h-1, syncs-1 // no ids up, no features back
		}
		assert.Equal(t, h2d, tr.Total.HostToDevice, "host-to-device copies per request")
		assert.Equal(t, d2h, tr.Total.DeviceToHost, "device-to-host copies per request")
		assert.Equal(t, syncs, tr.Total.Syncs, "host syncs per request")
		assert.GreaterOrEqual(t, tr.Total.BytesD2H, int64(3*img.W*img.H), "the image comes back")
		assert.Less(t, tr.Total.BytesD2H, int64(3*img.W*img.H)+int64(16<<10), "and little else: no map")
	}
}

// TestORTOnEmulatedDevice: ONNX Runtime on the CPU paired with the emulated GPU device
// (--backend ort --device cuda-emu) keeps working: the request's tensors and ops live on
// the device and the engines get explicit, counted copies at their boundary
// (engine.OnDevice). The results equal the cpu device's within the kernels' tolerance.
func TestORTOnEmulatedDevice(t *testing.T) {
	ref := openTiny(t, pipeline.Config{})
	dev := openTiny(t, pipeline.Config{Device: "cuda-emu", DeviceOptions: emuDevice()})
	assert.True(t, dev.Info().DeviceInfo.Emulated)
	img := small(t)
	pr := ref.DefaultParams()
	pr.Steps1, pr.Steps2 = 2, 2
	want, err := ref.Refine(context.Background(), pipeline.Request{Image: img, Prompt: demoPrompt, Params: &pr})
	require.NoError(t, err)
	got, err := dev.Refine(context.Background(), pipeline.Request{Image: img, Prompt: demoPrompt, Params: &pr})
	require.NoError(t, err)
	assert.InDelta(t, want.P, got.P, 1e-6)
	assert.InDelta(t, *want.A, *got.A, 1e-6)
	assert.LessOrEqual(t, testenv.MaxAbs(t, want.PMap, got.PMap), 1e-6)
	assert.Equal(t, want.Mask, got.Mask)
	worst := 0
	for i := range want.Image.Pix {
		worst = max(worst, absInt(int(want.Image.Pix[i])-int(got.Image.Pix[i])))
	}
	tr := got.Transfers
	t.Logf("ort on cuda-emu vs the cpu device: worst pixel difference %d/255; transfers %+v", worst, *tr)
	assert.LessOrEqual(t, worst, 1)
	assert.Positive(t, tr.InSteps.HostCopies(), "the engines' copies are explicit and counted: the UNet's inputs down, its output up, every step")
	assert.Equal(t, tr.InSteps.DeviceToHost, tr.InSteps.Syncs, "each download waits for the stream")
}

// TestForeignTensorsRefused: a host tensor handed to a device engine is refused, naming
// both devices, never copied silently.
func TestForeignTensorsRefused(t *testing.T) {
	tb := trt.New(trt.Options{Lib: emutest.Lib()})
	defer tb.Close()
	require.NoError(t, tb.Available())
	assert.Equal(t, "cuda", tb.DeviceName(), "the TensorRT emulator's engines read GPU memory")
	// Through the pipeline's pairing check: a trt backend with the cpu device.
	_, err := pipeline.Open(context.Background(), pipeline.Config{Models: testenv.Path(t, "testdata", "models", "tiny"),
		BackendInstance: tb, Plans: t.TempDir(), PlanOpener: openPlans, Device: "cpu"})
	require.ErrorIs(t, err, pipeline.ErrUnavailable)
	assert.ErrorContains(t, err, "backend trt reads cuda tensors, device cpu holds cpu tensors")
	// At the engine boundary: engine.OnDevice refuses a tensor of a third device.
	s, err := (func() (engine.Stream, error) {
		d, err := engine.NewDevice("cuda", emuDevice())
		if err != nil {
			return nil, err
		}
		return d.NewStream()
	})()
	require.NoError(t, err)
	defer s.Close()
	h, _ := engine.FromFloat32(engine.Shape{1}, []float32{1})
	e := engine.OnDevice(nilEngine{}, s)
	_, err = e.Run(context.Background(), map[string]engine.Tensor{"x": h})
	require.ErrorIs(t, err, engine.ErrDevice)
	assert.ErrorContains(t, err, "input x is on device cpu, not cuda")
}

// nilEngine is an engine that must never run.
type nilEngine struct{ engine.Engine }

func (nilEngine) Name() string { return "never" }

// TestDevicePairTiledRequest: a request whose both stages run in tiles (tiled VAE encodes
// and decodes, tiled denoising with 4 tiles per UNet call, the last call padded) on the
// emulated GPU pair copies nothing and waits for nothing inside its steps, makes the
// untiled request's host copies and syncs in all (the tile weights travel in the stage's
// one upload), replays the UNet's captured graph for every call but each stage's first,
// and gives the cpu device's pixels (ort, one tile per call) within 2/255.
func TestDevicePairTiledRequest(t *testing.T) {
	emu, _ := emulatedPair(t, 1)
	ref := openTiny(t, pipeline.Config{})
	img := imageio.ResizeBicubicPIL(sample(t), 256, 160) // every VAE tile at least the plans' 64 px
	pr := emu.DefaultParams()
	pr.Steps1, pr.Steps2, pr.Seed = 3, 3, 5
	pr.Tile, pr.TileOverlap, pr.VAETile = 8, 2, 128
	req := pipeline.Request{Image: img, Prompt: demoPrompt, Params: &pr, SkipMaps: true}
	_, err := emu.Refine(context.Background(), req) // fills the text-feature cache
	require.NoError(t, err)
	r, err := emu.Refine(context.Background(), req)
	require.NoError(t, err)
	s1, s2 := r.Refine.Stage1, r.Refine.Stage2
	require.True(t, s1.Ran)
	for i, st := range []refine.StageReport{s1, s2} {
		require.NotNil(t, st.Tiling, "stage %d ran in tiles", i+1)
		require.NotNil(t, st.Tiling.VAE, "stage %d: tiled VAE", i+1)
		require.NotNil(t, st.Tiling.Denoise, "stage %d: tiled denoising", i+1)
		assert.Equal(t, 4, st.Tiling.Denoise.Batch, "stage %d: 4 tiles per call (the tiny plans take 8 UNet rows)", i+1)
		t.Logf("stage %d tiling: VAE %+v, denoise %+v", i+1, *st.Tiling.VAE, *st.Tiling.Denoise)
	}
	tr := r.Transfers
	t.Logf("tiled request on the emulated pair: %+v", *tr)
	assert.Equal(t, 6, tr.Steps)
	assert.Zero(t, tr.InSteps.HostCopies(), "no host copy inside a tiled denoising step")
	assert.Zero(t, tr.InSteps.Syncs, "no host sync inside a tiled denoising step")
	h2d, d2h, syncs := wantRefineTransfers.hostToDevice-1, wantRefineTransfers.deviceToHost-1, wantRefineTransfers.syncs-1 // features cached
	assert.Equal(t, [3]int{h2d, d2h, syncs}, [3]int{tr.Total.HostToDevice, tr.Total.DeviceToHost, tr.Total.Syncs}, "host copies and syncs per request")
	calls := 3*s1.Tiling.Denoise.CallsPerStep + 3*s2.Tiling.Denoise.CallsPerStep
	assert.Equal(t, calls-2, tr.Replays, "every UNet call replays the captured graph but each stage's first")

	want, err := ref.Refine(context.Background(), req)
	require.NoError(t, err)
	require.NotNil(t, want.Refine.Stage2.Tiling)
	assert.Equal(t, 1, want.Refine.Stage2.Tiling.Denoise.Batch, "the cpu device runs one tile per call")
	worst := 0
	for i := range want.Image.Pix {
		worst = max(worst, absInt(int(want.Image.Pix[i])-int(r.Image.Pix[i])))
	}
	t.Logf("tiled: emulated pair (4 tiles per call) vs ort/cpu (1): worst pixel difference %d/255", worst)
	assert.LessOrEqual(t, worst, 2)
}
