package emutest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/engine/cuda"
	"github.com/grefine/grefine/engine/cuda/cudaemu"
	"github.com/grefine/grefine/engine/trt"
	"github.com/grefine/grefine/engine/trt/emutest"
	"github.com/grefine/grefine/engine/trt/trttest"
	"github.com/grefine/grefine/internal/testkit/testenv"
	"github.com/grefine/grefine/modelset"
	"github.com/grefine/grefine/plans"
)

func TestMain(m *testing.M) {
	code := emutest.Main(m)
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// tolerance of the emulator against the ort backend (issue 13: 1e-5).
const tolerance = 1e-5

// shapes are concrete input shapes for each tiny engine, inside plans/tiny's profiles.
var shapes = map[string]map[string]engine.Shape{
	"clip_surgery":     {"pixel_values": {2, 3, 224, 224}},
	"clip_text":        {"input_ids": {3, 12}},
	"sdxl_text_l":      {"input_ids": {2, 77}},
	"sdxl_text_g":      {"input_ids": {2, 77}},
	"pasd_text":        {"input_ids": {2, 77}},
	"sdxl_unet":        {"sample": {2, 9, 16, 24}, "timestep": {1}, "encoder_hidden_states": {2, 77, 24}, "text_embeds": {2, 20}, "time_ids": {2, 6}},
	"pasd_unet":        {"sample": {2, 4, 16, 16}, "timestep": {1}, "encoder_hidden_states": {2, 77, 8}, "control": {2, 3, 128, 128}},
	"sdxl_vae_encoder": {"images": {1, 3, 64, 96}},
	"pasd_vae_encoder": {"images": {1, 3, 64, 64}},
	"sdxl_vae_decoder": {"latent": {1, 4, 8, 12}},
	"pasd_vae_decoder": {"latent": {1, 4, 8, 8}},
}

// randomInputs makes seeded inputs for engine name: floats in [-1,1), token ids with an
// end-of-text token (49407) per row.
func randomInputs(t testing.TB, set *modelset.Set, name string, seed int64) map[string]engine.Tensor {
	t.Helper()
	rng := rand.New(rand.NewSource(seed))
	in := map[string]engine.Tensor{}
	for _, d := range set.Manifest.Engines[name].Inputs {
		shape, ok := shapes[name][d.Name]
		require.True(t, ok, "%s: no test shape for %s", name, d.Name)
		h, err := engine.NewHostTensor(d.DType, shape)
		require.NoError(t, err)
		switch d.DType {
		case engine.Float32:
			for i := range h.F32 {
				h.F32[i] = rng.Float32()*2 - 1
			}
			if d.Name == "timestep" {
				h.F32[0] = 500
			}
		case engine.Int32:
			cols := int(shape[len(shape)-1])
			for i := range h.I32 {
				h.I32[i] = int32(rng.Intn(1000))
				if i%cols == cols/2 {
					h.I32[i] = 49407
				}
			}
		default:
			t.Fatalf("%s: input %s has dtype %v", name, d.Name, d.DType)
		}
		in[d.Name] = h
	}
	return in
}

func emuBackend(t *testing.T, opts trt.Options) *trt.Backend {
	t.Helper()
	opts.Lib = emutest.Lib()
	b := trt.New(opts)
	t.Cleanup(func() { assert.NoError(t, b.Close()) })
	require.NoError(t, b.Available())
	return b
}

// The tiny set's plans, built once per test binary by the first backend that asks.
var built struct {
	once sync.Once
	dir  string
	err  error
}

// tinyPlans returns a repository of the tiny set's plans built with the emulator, as
// `grefine plans build --models testdata/models/tiny --trt-lib build/libgrefine_trt_emu.so`
// builds it. Tests must not modify it (copy it first, see copyPlans).
func tinyPlans(t testing.TB, b *trt.Backend) string {
	t.Helper()
	built.once.Do(func() {
		built.dir, built.err = os.MkdirTemp("", "grefine-emu-plans-")
		if built.err != nil {
			return
		}
		var rep plans.Report
		rep, built.err = plans.BuildAll(context.Background(), plans.BuildAllOptions{Builder: b,
			Models: testenv.Path(t, "testdata", "models", "tiny"), Out: built.dir})
		for _, e := range rep.Engines {
			if built.err == nil && e.Status != plans.Built {
				built.err = fmt.Errorf("%s: %s", e.Name, e.Status)
			}
		}
		if built.err == nil && len(rep.Engines) != 11 {
			built.err = fmt.Errorf("built %d plans, want 11", len(rep.Engines))
		}
	})
	require.NoError(t, built.err)
	return built.dir
}

// copyPlans copies the shared repository into a test's own directory.
func copyPlans(t *testing.T, b *trt.Backend) string {
	t.Helper()
	src, dst := tinyPlans(t, b), t.TempDir()
	require.NoError(t, filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dst, rel)), 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	}))
	return dst
}

// TestEmulatorDevice: the emulator reports a GPU (cuda-emu's), marks its TensorRT version
// as the emulator's, and its buffers are device memory the host cannot read.
func TestEmulatorDevice(t *testing.T) {
	b := emuBackend(t, trt.Options{})
	assert.True(t, b.Emulated())
	assert.Equal(t, "cuda", b.DeviceName())
	tg, err := b.Target()
	require.NoError(t, err)
	assert.Equal(t, "9.0", tg.ComputeCapability, "cuda-emu's compute capability (GRF_CUDA_EMU_CC)")
	assert.Contains(t, tg.GPU, "cuda-emu 0 (grefine gpu emulator, not a gpu); tensorrt emulator on onnxruntime 1.")
	assert.Equal(t, trt.EmulatorVersion, tg.TensorRT, "no real TensorRT has this version: emulated plans never pass for real ones")
	assert.Equal(t, "tensorrt emulator (abi 2, on cuda-emu, onnxruntime on the cpu)", b.Version())

	h, err := engine.FromFloat32(engine.Shape{4}, []float32{1, 2, 3, 4})
	require.NoError(t, err)
	buf, err := b.Upload(h)
	require.NoError(t, err)
	defer buf.Close()
	assert.Equal(t, "cuda", buf.DeviceName())
	addr := buf.DevicePtr()
	p := *(*unsafe.Pointer)(unsafe.Pointer(&addr)) // a device address, not Go memory: reading it must fault
	assert.NotNil(t, cudaemu.Fault(func() { _ = *(*float32)(p) }), "the host read a TensorRT buffer: it must be device memory")
	back, err := buf.Download()
	require.NoError(t, err)
	assert.Equal(t, h.F32, back.F32)
}

// upload copies host tensors into device buffers of b (closed at the end of the test).
func upload(t testing.TB, b *trt.Backend, in map[string]engine.Tensor) map[string]engine.Tensor {
	t.Helper()
	out := map[string]engine.Tensor{}
	for name, x := range in {
		buf, err := b.Upload(x.(*engine.HostTensor))
		require.NoError(t, err)
		t.Cleanup(func() { buf.Close() })
		out[name] = buf
	}
	return out
}

// TestParityWithORT: every tiny engine, built into a plan by plans.BuildAll and opened
// through plans.Repo on the emulator, fed device tensors, equals the ort backend within
// 1e-5.
func TestParityWithORT(t *testing.T) {
	set := testenv.TinySet(t)
	ort := testenv.ORT(t)
	defer ort.Close()
	b := emuBackend(t, trt.Options{})
	repo, err := plans.Open(tinyPlans(t, b), set, plans.OpenOptions{})
	require.NoError(t, err)
	defer repo.Close()
	// Every engine the pipelines need has a plan spec; optional engines (clip_text_kv, the
	// template-prefix form of clip_text) have none and stay on ONNX Runtime.
	names := []string{"clip_surgery", "clip_text", "sdxl_text_l", "sdxl_text_g", "sdxl_unet", "sdxl_vae_encoder",
		"sdxl_vae_decoder", "pasd_text", "pasd_unet", "pasd_vae_encoder", "pasd_vae_decoder"}
	for _, name := range names {
		require.Contains(t, set.Manifest.Engines, name)
		t.Run(name, func(t *testing.T) {
			in := randomInputs(t, set, name, 7)
			oe, err := set.OpenEngine(ort, name, engine.OpenOptions{})
			require.NoError(t, err)
			defer oe.Close()
			want, err := oe.Run(context.Background(), in)
			require.NoError(t, err)
			te, err := repo.OpenEngine(b, name, engine.OpenOptions{})
			require.NoError(t, err)
			defer te.Close()
			got, err := te.Run(context.Background(), upload(t, b, in))
			require.NoError(t, err)
			defer engine.CloseAll(got)
			require.Len(t, got, len(want))
			for out, w := range want {
				require.IsType(t, &trt.Buffer{}, got[out], "outputs are device tensors")
				g, err := b.Download(got[out]) // on the slot's stream: waits for the run
				require.NoError(t, err)
				wh := w.(*engine.HostTensor)
				require.Equal(t, wh.Shape(), g.Shape(), out)
				d := testenv.MaxAbs(t, wh.F32, g.F32)
				assert.LessOrEqual(t, d, tolerance, "%s.%s max abs diff", name, out)
				t.Logf("%s.%s %v: max abs diff %.3g", name, out, g.Shape(), d)
			}
		})
	}
}

// unetStep runs steps of the tiny SDXL UNet in sess, each step's noise_pred feeding the
// next step's sample (first 4 channels), on device tensors bound once: the host updates
// the sample and copies it into its buffer before each step. It returns the final
// noise_pred. Safe to call from any goroutine (errors are reported with t.Error).
func unetStep(t *testing.T, b *trt.Backend, sess *trt.Session, in map[string]engine.Tensor, steps int) []float32 {
	sample := in["sample"].(*engine.HostTensor)
	dev := map[string]engine.Tensor{}
	for name, x := range in {
		buf, err := b.Upload(x.(*engine.HostTensor))
		if err != nil {
			t.Error(err)
			return nil
		}
		defer buf.Close()
		dev[name] = buf
	}
	o, err := sess.Slot().Alloc(engine.Float32, engine.Shape{2, 4, 16, 24})
	if err != nil {
		t.Error(err)
		return nil
	}
	out := o.(*trt.Buffer)
	defer out.Close()
	outs := map[string]engine.Tensor{"noise_pred": out}
	plane := 16 * 24
	var np *engine.HostTensor
	for s := 0; s < steps; s++ {
		if err := dev["sample"].(*trt.Buffer).CopyFrom(sample); err != nil {
			t.Error(err)
			return nil
		}
		if err := sess.RunInto(context.Background(), dev, outs); err != nil {
			t.Error(err)
			return nil
		}
		if np, err = out.Download(); err != nil {
			t.Error(err)
			return nil
		}
		for bi := 0; bi < 2; bi++ {
			for c := 0; c < 4; c++ {
				dst := sample.F32[(bi*9+c)*plane : (bi*9+c+1)*plane]
				src := np.F32[(bi*4+c)*plane : (bi*4+c+1)*plane]
				for i := range dst {
					dst[i] -= 0.1 * src[i]
				}
			}
		}
	}
	return np.F32
}

// TestSlotsConcurrent: two requests on two slots at once give the same bytes as the same
// requests run one after the other (run with -race; make test does for this package).
func TestSlotsConcurrent(t *testing.T) {
	set := testenv.TinySet(t)
	b := emuBackend(t, trt.Options{})
	repo, err := plans.Open(tinyPlans(t, b), set, plans.OpenOptions{})
	require.NoError(t, err)
	open := func(slot int) *trt.Session {
		e, err := repo.OpenEngine(b, "sdxl_unet", engine.OpenOptions{Slot: slot})
		require.NoError(t, err)
		return e.(*trt.Session)
	}
	const steps = 6
	serial := make([][]float32, 2)
	for r := 0; r < 2; r++ {
		s := open(10 + r)
		serial[r] = unetStep(t, b, s, randomInputs(t, set, "sdxl_unet", int64(r)), steps)
		require.NoError(t, s.Close())
	}
	assert.NotEqual(t, serial[0], serial[1], "different requests differ")

	s1, s2 := open(1), open(2)
	assert.NotSame(t, s1.Slot(), s2.Slot())
	assert.Same(t, s1.Engine(), s2.Engine(), "one deserialized engine, one context per slot")
	assert.Equal(t, 2, s1.Engine().Sessions())
	concurrent := make([][]float32, 2)
	var wg sync.WaitGroup
	for r, s := range []*trt.Session{s1, s2} {
		in := randomInputs(t, set, "sdxl_unet", int64(r))
		wg.Add(1)
		go func() {
			defer wg.Done()
			concurrent[r] = unetStep(t, b, s, in, steps)
		}()
	}
	wg.Wait()
	for r := range serial {
		assert.Equal(t, serial[r], concurrent[r], "request %d: concurrent bytes equal serial bytes", r)
	}
	assert.NotEqual(t, s1.Slot().Stream(), s2.Slot().Stream(), "one stream per slot")
	assert.Positive(t, s1.Slot().ScratchBytes())
	assert.Positive(t, s2.Slot().ScratchBytes())

	// Close order: the engine refuses while sessions live; closing the slots frees it.
	err = repo.Close()
	assert.ErrorIs(t, err, trt.ErrOrder)
	assert.ErrorContains(t, err, "sdxl_unet has 2 open session(s)")
	require.NoError(t, s1.Slot().Close())
	require.NoError(t, s2.Close())
	require.NoError(t, s2.Close(), "idempotent")
	require.NoError(t, repo.Close())
	_, err = s1.Run(context.Background(), upload(t, b, randomInputs(t, set, "sdxl_unet", 0)))
	assert.ErrorIs(t, err, engine.ErrClosed)
}

// TestNoPerStepAllocation: with inputs and outputs bound once (RunInto), denoising steps
// allocate no device memory (no shim buffer, no Allocator call) and replay one captured
// CUDA graph; the first step captures.
func TestNoPerStepAllocation(t *testing.T) {
	set := testenv.TinySet(t)
	b := emuBackend(t, trt.Options{CUDAGraphs: true})
	repo, err := plans.Open(tinyPlans(t, b), set, plans.OpenOptions{})
	require.NoError(t, err)
	counter := &trttest.CountingDevice{Device: trttest.BufferDevice{B: b}}
	_, err = b.SlotWith(3, trt.SlotOptions{Device: counter})
	require.NoError(t, err)
	e, err := repo.OpenEngine(b, "sdxl_unet", engine.OpenOptions{Slot: 3})
	require.NoError(t, err)
	sess := e.(*trt.Session)

	// Device-resident inputs and outputs (shim buffers), uploaded once.
	in := map[string]engine.Tensor{}
	for name, h := range randomInputs(t, set, "sdxl_unet", 1) {
		buf, err := b.Upload(h.(*engine.HostTensor))
		require.NoError(t, err)
		defer buf.Close()
		in[name] = buf
	}
	outBuf, err := sess.Slot().Alloc(engine.Float32, engine.Shape{2, 4, 16, 24}) // on the slot's device
	require.NoError(t, err)
	defer outBuf.Close()
	outs := map[string]engine.Tensor{"noise_pred": outBuf}
	bound := counter.Count() // the one output bound above

	require.NoError(t, sess.RunInto(context.Background(), in, outs)) // warm-up: scratch, capture
	before := b.BufferAllocations()
	const steps = 10
	for s := 0; s < steps; s++ {
		require.NoError(t, sess.RunInto(context.Background(), in, outs))
	}
	assert.Equal(t, before, b.BufferAllocations(), "no shim buffer allocated per step")
	assert.Equal(t, bound, counter.Count(), "no output allocated per step")
	assert.Equal(t, steps, sess.Replays(), "every step after the first replays the captured graph")

	// The counters do count: Run allocates its outputs (one per run) and, with the new
	// addresses, recaptures instead of replaying.
	got, err := sess.Run(context.Background(), in)
	require.NoError(t, err)
	assert.Equal(t, bound+1, counter.Count(), "Run allocates its output")
	require.NoError(t, sess.Slot().Synchronize()) // the device's buffers copy on the default stream
	assert.Equal(t, steps, sess.Replays(), "new addresses recapture instead of replaying")
	want, err := b.Download(outBuf)
	require.NoError(t, err)
	gotH, err := b.Download(got["noise_pred"])
	require.NoError(t, err)
	assert.Equal(t, want.F32, gotH.F32, "same inputs, same result")
	require.NoError(t, engine.CloseAll(got))

	// A new shape recaptures; the profile check still applies.
	big := upload(t, b, map[string]engine.Tensor{"sample": mustHost(t, engine.Shape{2, 9, 300, 8})})
	for name, x := range in {
		if name != "sample" {
			big[name] = x
		}
	}
	_, err = sess.Run(context.Background(), big)
	assert.ErrorIs(t, err, trt.ErrNoProfile)
	require.NoError(t, sess.Close())
	require.NoError(t, repo.Close())
}

func mustHost(t testing.TB, shape engine.Shape) *engine.HostTensor {
	t.Helper()
	h, err := engine.NewHostTensor(engine.Float32, shape)
	require.NoError(t, err)
	return h
}

// TestHostTensorsRefused: TensorRT reads and writes device memory only: a host tensor as
// input or output is refused (engine.ErrDevice) with both devices named, and nothing is
// copied behind the caller's back.
func TestHostTensorsRefused(t *testing.T) {
	set := testenv.TinySet(t)
	b := emuBackend(t, trt.Options{})
	repo, err := plans.Open(tinyPlans(t, b), set, plans.OpenOptions{})
	require.NoError(t, err)
	defer repo.Close()
	e, err := repo.OpenEngine(b, "clip_text", engine.OpenOptions{})
	require.NoError(t, err)
	defer e.Close()
	host := randomInputs(t, set, "clip_text", 1)
	before := b.BufferAllocations()
	_, err = e.Run(context.Background(), host)
	require.ErrorIs(t, err, engine.ErrDevice)
	assert.ErrorContains(t, err, `input "input_ids" is on cpu, engine reads cuda`)
	assert.Equal(t, before, b.BufferAllocations(), "no staging copy was made")

	dev := upload(t, b, host)
	ok, err := e.Run(context.Background(), dev)
	require.NoError(t, err, "device tensors run")
	out := map[string]engine.Tensor{"text_embeds": mustHost(t, ok["text_embeds"].Shape())}
	require.NoError(t, engine.CloseAll(ok))
	err = e.(*trt.Session).RunInto(context.Background(), dev, out)
	require.ErrorIs(t, err, engine.ErrDevice)
	assert.ErrorContains(t, err, "is on cpu, the engine writes cuda memory")
}

// TestRunIsQueuedUntilSync: an engine run is queued on its slot's stream like a kernel:
// reading its output from another stream before the slot is synchronised sees stale
// memory (cuda-emu's NaN poison), after Slot.Synchronize the result. Outputs come from
// engine/cuda's device (cuda-emu, the same allocation table), read back with its streams.
func TestRunIsQueuedUntilSync(t *testing.T) {
	set := testenv.TinySet(t)
	b := emuBackend(t, trt.Options{})
	dev, err := cuda.Open(cuda.Options{LibPath: emutest.CUDALib()})
	require.NoError(t, err)
	defer dev.Close()
	require.True(t, dev.Info().Emulated)
	repo, err := plans.Open(tinyPlans(t, b), set, plans.OpenOptions{})
	require.NoError(t, err)
	defer repo.Close()
	_, err = b.SlotWith(4, trt.SlotOptions{Device: dev}) // outputs on the cuda device
	require.NoError(t, err)
	e, err := repo.OpenEngine(b, "clip_text", engine.OpenOptions{Slot: 4})
	require.NoError(t, err)
	sess := e.(*trt.Session)
	defer sess.Close()
	in := randomInputs(t, set, "clip_text", 3)
	out, err := sess.Run(context.Background(), upload(t, b, in))
	require.NoError(t, err)
	defer engine.CloseAll(out)
	y, ok := out["text_embeds"].(*cuda.Tensor)
	require.True(t, ok, "the output is a cuda tensor (%T)", out["text_embeds"])

	other, err := dev.NewStream()
	require.NoError(t, err)
	defer other.Close()
	h, err := engine.NewHostTensor(engine.Float32, y.Shape())
	require.NoError(t, err)
	require.NoError(t, other.Download(h, y))
	for i, v := range h.F32 {
		require.Equalf(t, uint32(0xFFFFFFFF), math.Float32bits(v), "text_embeds[%d] = %v before the slot's sync: must be stale", i, v)
	}

	require.NoError(t, sess.Slot().Synchronize())
	require.NoError(t, other.Download(h, y))
	ort := testenv.ORT(t)
	defer ort.Close()
	oe, err := set.OpenEngine(ort, "clip_text", engine.OpenOptions{})
	require.NoError(t, err)
	defer oe.Close()
	want, err := oe.Run(context.Background(), in)
	require.NoError(t, err)
	assert.LessOrEqual(t, testenv.MaxAbs(t, want["text_embeds"].(*engine.HostTensor).F32, h.F32), tolerance)
}

// TestCUDAPairing: engine/cuda's memory and streams serve the emulator as they serve
// TensorRT on a GPU (trttest.CUDAPairing, which gputest runs on a GPU): cuda-emu's tensors
// bound by address, its streams as slot streams, concurrent slots equal serial runs.
func TestCUDAPairing(t *testing.T) {
	b := emuBackend(t, trt.Options{})
	dev, err := cuda.Open(cuda.Options{LibPath: emutest.CUDALib(), Ordinal: b.DeviceIndex()})
	require.NoError(t, err)
	defer dev.Close()
	onnx := filepath.Join(testenv.Root(t), "engine", "trt", "gputest", "testdata", "affine.onnx")
	plan, err := b.BuildPlan(context.Background(), trt.BuildRequest{ONNXPath: onnx,
		Profiles: [][]trt.ShapeRange{{{Name: "x", Min: engine.Shape{1, 3}, Opt: engine.Shape{8, 3}, Max: engine.Shape{64, 3}}}}})
	require.NoError(t, err)
	e, err := b.OpenPlan(plan, engine.OpenOptions{Name: "affine"})
	require.NoError(t, err)
	defer e.Close()
	trttest.CUDAPairing(t, b, dev, e, 5)
}

// TestRefusedPlans: the repository refuses plans built for another machine, another model
// or with another spec, and non-trt backends, each with its reason.
func TestRefusedPlans(t *testing.T) {
	set := testenv.TinySet(t)
	b := emuBackend(t, trt.Options{})
	dir := copyPlans(t, b)
	edit := func(name string, f func(*plans.Sidecar)) {
		sc, err := plans.ReadSidecar(dir, name)
		require.NoError(t, err)
		f(sc)
		data, err := json.Marshal(sc)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(plans.SidecarPath(dir, name), data, 0o644))
	}
	// A plan built "elsewhere": fields and key rewritten consistently, as a build on
	// another machine would have written them.
	edit("clip_text", func(sc *plans.Sidecar) {
		sc.ComputeCapability, sc.TensorRT = "8.9", "10.16.0"
		sc.Key = plans.Key(trt.Target{ComputeCapability: sc.ComputeCapability, TensorRT: sc.TensorRT}, sc.ONNXSHA256, mustSpec(t, "clip_text"))
	})
	require.NoError(t, os.Remove(plans.SidecarPath(dir, "pasd_text")))
	edit("sdxl_text_l", func(sc *plans.Sidecar) { sc.TensorRT = "1.0.0" }) // key no longer matches

	// A model set whose sdxl_text_g differs from the one the plan was built from.
	other := *set
	other.Manifest.Engines = map[string]modelset.EngineEntry{}
	for k, v := range set.Manifest.Engines {
		other.Manifest.Engines[k] = v
	}
	g := other.Manifest.Engines["sdxl_text_g"]
	g.SHA256 = "00" + g.SHA256[2:]
	other.Manifest.Engines["sdxl_text_g"] = g

	repo, err := plans.Open(dir, &other, plans.OpenOptions{})
	require.NoError(t, err)
	defer repo.Close()
	for _, tc := range []struct {
		name string
		is   error
		msg  string
	}{
		{name: "clip_text", is: plans.ErrMismatch, msg: "built for compute capability 8.9, this GPU (cuda-emu 0 (grefine gpu emulator"},
		{name: "pasd_text", is: plans.ErrForeign, msg: "no sidecar"},
		{name: "sdxl_text_l", is: plans.ErrForeign, msg: "edited by hand"},
		{name: "sdxl_text_g", is: plans.ErrMismatch, msg: "built from onnx sha256"},
		{name: "nope", is: modelset.ErrUnknown, msg: `engine "nope"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := repo.OpenEngine(b, tc.name, engine.OpenOptions{})
			assert.Nil(t, e)
			assert.ErrorIs(t, err, tc.is)
			assert.ErrorContains(t, err, tc.msg)
		})
	}
	ort := testenv.ORT(t)
	defer ort.Close()
	_, err = repo.OpenEngine(ort, "clip_surgery", engine.OpenOptions{})
	assert.ErrorIs(t, err, engine.ErrUnavailable)
	assert.ErrorContains(t, err, `backend "ort" cannot run TensorRT plans`)

	// A plan whose ONNX file changed after the build is refused when it loads.
	models := t.TempDir()
	src := testenv.Path(t, "testdata", "models", "tiny")
	for _, f := range []string{"models.json", "sdxl_vae_decoder.onnx", "pasd_vae_decoder.onnx"} {
		data, err := os.ReadFile(filepath.Join(src, f))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(models, f), data, 0o644))
	}
	out := t.TempDir()
	_, err = plans.BuildAll(context.Background(), plans.BuildAllOptions{Builder: b, Models: models, Out: out, Only: []string{"sdxl_vae_decoder"}})
	require.NoError(t, err)
	data, err := os.ReadFile(filepath.Join(models, "sdxl_vae_encoder.onnx"))
	if err != nil { // not copied: use the encoder from the tiny set
		data, err = os.ReadFile(filepath.Join(src, "sdxl_vae_encoder.onnx"))
	}
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(models, "sdxl_vae_decoder.onnx"), data, 0o644))
	_, err = b.OpenEngine(plans.PlanPath(out, "sdxl_vae_decoder"), engine.OpenOptions{Name: "swapped"})
	assert.ErrorIs(t, err, engine.ErrModel)
	assert.ErrorContains(t, err, "no longer matches the plan")
}

func mustSpec(t *testing.T, name string) *plans.Spec {
	t.Helper()
	specs, err := plans.BuiltinTiny()
	require.NoError(t, err)
	for _, s := range specs {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no tiny spec %s", name)
	return nil
}

// TestRegistryBackend: the backend a front end makes by name reaches the emulator.
func TestRegistryBackend(t *testing.T) {
	b, err := engine.NewBackend("trt", map[string]string{"lib": emutest.Lib(), "device": "0"})
	require.NoError(t, err)
	defer b.Close()
	require.NoError(t, b.Available())
	assert.Equal(t, "cuda", b.DeviceName())
	bad, err := engine.NewBackend("trt", map[string]string{"lib": emutest.Lib(), "device": "1"})
	require.NoError(t, err)
	defer bad.Close()
	assert.ErrorIs(t, bad.Available(), engine.ErrUnavailable, "cuda-emu emulates one device by default")
}

// TestOutOfMemory: the emulator's device memory is cuda-emu's, with its budget: a buffer
// beyond it fails as out of memory (engine.ErrOutOfMemory), and the device still serves.
func TestOutOfMemory(t *testing.T) {
	b := emuBackend(t, trt.Options{})
	_, err := b.Alloc(engine.Float32, engine.Shape{1 << 31}) // 8 GiB, over the default 4 GiB budget
	require.ErrorIs(t, err, engine.ErrOutOfMemory)
	assert.ErrorContains(t, err, "out of memory (cudaErrorMemoryAllocation, 2)")
	small, err := b.Alloc(engine.Float32, engine.Shape{4})
	require.NoError(t, err)
	require.NoError(t, small.Close())
}

// TestTwoCopiesRefused: one process needs one allocation table. A second cuda-emu (another
// file) opened beside the one the emulator links makes both refuse, naming both files. It
// runs in a child process (a loaded library stays loaded).
func TestTwoCopiesRefused(t *testing.T) {
	second, err := cudaemu.Build(t.TempDir())
	require.NoError(t, err)
	cmd := exec.Command(os.Args[0], "-test.run=^TestTwoCopiesChild$", "-test.v")
	cmd.Env = append(os.Environ(), "GRF_EMU_SECOND_COPY="+second)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "CHILD-CUDA: engine: unavailable: cuda: no device (cuda-emu: 2 copies of libgrefine_cuda_emu.so")
	assert.Contains(t, string(out), second)
	assert.Contains(t, string(out), "CHILD-TRT: ")
}

// TestTwoCopiesChild is the child half of TestTwoCopiesRefused.
func TestTwoCopiesChild(t *testing.T) {
	second := os.Getenv("GRF_EMU_SECOND_COPY")
	if second == "" {
		t.Skip("skipping: runs only as a child process of TestTwoCopiesRefused")
	}
	b := emuBackend(t, trt.Options{}) // loads the emulator and the cuda-emu beside it
	_, err := cuda.Open(cuda.Options{LibPath: second})
	require.ErrorIs(t, err, engine.ErrUnavailable)
	t.Logf("CHILD-CUDA: %v", err)
	_, err = b.Alloc(engine.Float32, engine.Shape{4})
	require.Error(t, err, "the emulator's own copy refuses too")
	require.ErrorContains(t, err, "copies of libgrefine_cuda_emu.so")
	t.Logf("CHILD-TRT: %v", err)
}
