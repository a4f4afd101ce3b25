package pipeline_test

import (
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/engine/modelset"
	"github.com/grefine/grefine/engine/trt"
	"github.com/grefine/grefine/engine/trt/emutest"
	"github.com/grefine/grefine/internal/testenv"
	"github.com/grefine/grefine/pipeline"
	"github.com/grefine/grefine/plans"
)

// TestMain builds the TensorRT emulator (build/libgrefine_trt_emu.so's sources) for the
// trt tests; a compile failure fails the run.
func TestMain(m *testing.M) { os.Exit(emutest.Main(m)) }

// TestTRTEmulatorMatchesORT runs the whole TensorRT code path of the Go side (plans built
// by plans.BuildAll, verified and opened through plans.Repo, sessions per slot) on the
// emulator: assess equals --backend ort within 1e-5, refine within one grey level, and two
// concurrent requests on two slots give the bytes of serial runs.
func TestTRTEmulatorMatchesORT(t *testing.T) {
	testenv.ORT(t)
	tb := trt.New(trt.Options{Lib: emutest.Lib(), CUDAGraphs: true})
	t.Cleanup(func() { tb.Close() })
	require.NoError(t, tb.Available())
	dir := t.TempDir()
	rep, err := plans.BuildAll(context.Background(), plans.BuildAllOptions{Builder: tb,
		Models: testenv.Path(t, "testdata", "models", "tiny"), Out: dir})
	require.NoError(t, err)
	require.Len(t, rep.Engines, 11)
	emu := openTiny(t, pipeline.Config{BackendInstance: tb, Plans: dir, PlanOpener: openPlans, Slots: 2})
	ref := openTiny(t, pipeline.Config{})
	img := small(t)

	a1, err := ref.Assess(context.Background(), pipeline.Request{Image: img, Prompt: demoPrompt})
	require.NoError(t, err)
	fresh := tb.BufferAllocations()
	a2, err := emu.Assess(context.Background(), pipeline.Request{Image: img, Prompt: demoPrompt})
	require.NoError(t, err)
	firstUse := tb.BufferAllocations() - fresh
	t.Logf("shim allocations of the first assess (buffers sized on first use): %d", firstUse)
	require.Greater(t, firstUse, int64(0), "the counter sees this path's allocations")
	assert.InDelta(t, a1.P, a2.P, 1e-5)
	assert.InDelta(t, *a1.A, *a2.A, 1e-5)
	assert.LessOrEqual(t, testenv.MaxAbs(t, a1.PMap, a2.PMap), 1e-5)
	assert.LessOrEqual(t, testenv.MaxAbs(t, a1.AMap, a2.AMap), 1e-5)
	assert.Equal(t, "trt", a2.Setup.Backend)

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
	t.Logf("emulator vs ort: worst pixel difference %d/255", worst)
	assert.LessOrEqual(t, worst, 1)

	// No per-step allocation: a refine with more steps makes no more shim allocations
	// (the sessions' buffers are allocated once per shape and reused at every step).
	allocs := func(steps int) int64 {
		x := pr
		x.Steps1, x.Steps2, x.Seed = steps, steps, 9
		before := tb.BufferAllocations()
		_, err := emu.Refine(context.Background(), pipeline.Request{Image: img, Prompt: demoPrompt, Params: &x})
		require.NoError(t, err)
		return tb.BufferAllocations() - before
	}
	warm := allocs(2) // the first refine at these shapes sizes the buffers
	t.Logf("shim allocations of the first refine at these shapes: %d", warm)
	few, many := allocs(2), allocs(6)
	t.Logf("shim allocations per refine: %d with 2+2 steps, %d with 6+6 steps", few, many)
	assert.Equal(t, few, many, "no allocation per denoising step")

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

// openPlans is the front ends' plan opener (package plans).
func openPlans(dir string, set *modelset.Set) (pipeline.Opener, error) {
	return plans.Open(dir, set, plans.OpenOptions{})
}
