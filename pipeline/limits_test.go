package pipeline_test

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/internal/testkit/testenv"
	"github.com/grefine/grefine/modelset"
	"github.com/grefine/grefine/pipeline"
	"github.com/grefine/grefine/pipeline/imageio"
	"github.com/grefine/grefine/pipeline/refine"
)

// allocated is the bytes f allocates (the whole process's, so callers keep other
// goroutines quiet).
func allocated(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// TestSmallStrengthRefusedBeforeAllocating: a stage's schedule is about steps/strength
// scheduler timesteps; a request whose schedule exceeds the limit is refused before any
// allocation proportional to 1/strength (issue 20: strength2=1e-9 killed the server).
func TestSmallStrengthRefusedBeforeAllocating(t *testing.T) {
	p := openTiny(t, pipeline.Config{})
	img := small(t)
	for name, set := range map[string]func(*pipeline.Params){
		"strength2 2e-6":  func(x *pipeline.Params) { x.Strength2 = 2e-6 },
		"strength2 1e-9":  func(x *pipeline.Params) { x.Strength2 = 1e-9 },
		"strength2 min":   func(x *pipeline.Params) { x.Strength2 = 5e-324 },
		"strength_min":    func(x *pipeline.Params) { x.StrengthMin = 1e-9 },
		"strength1":       func(x *pipeline.Params) { x.Strength1 = 1e-7 },
		"1000 steps at 1": func(x *pipeline.Params) { x.Steps2, x.Strength2 = 1000, 0.05 },
	} {
		pr := p.DefaultParams()
		set(&pr)
		var err error
		t0 := time.Now()
		n := allocated(func() {
			_, err = p.Refine(context.Background(), pipeline.Request{Image: img, Prompt: "a cat", Params: &pr})
		})
		require.Error(t, err, name)
		assert.ErrorIs(t, err, pipeline.ErrInput, name)
		assert.Contains(t, err.Error(), "scheduler timesteps", name)
		assert.Contains(t, err.Error(), "over the limit of 10000", name)
		assert.Less(t, n, uint64(16<<20), "%s: refused having allocated %d bytes", name, n)
		t.Logf("%s: refused in %v, %d bytes allocated: %v", name, time.Since(t0), n, err)
	}
	// The limit is the configured one, and the largest schedule it allows runs.
	p2 := openTiny(t, pipeline.Config{MaxTimesteps: 40})
	pr := p2.DefaultParams()
	pr.Steps1, pr.Steps2, pr.Strength1, pr.Strength2 = 2, 2, 0.05, 0.05 // 40 timesteps each
	_, err := p2.Refine(context.Background(), pipeline.Request{Image: img, Prompt: "a cat", Params: &pr})
	require.NoError(t, err)
	pr.Strength2 = 0.049
	_, err = p2.Refine(context.Background(), pipeline.Request{Image: img, Prompt: "a cat", Params: &pr})
	assert.ErrorContains(t, err, "over the limit of 40")
}

// TestWorkLimits: steps, stage pixels and memory are refused past the configured
// limits, which Info reports.
func TestWorkLimits(t *testing.T) {
	p := openTiny(t, pipeline.Config{MaxSteps: 30, MaxStagePixels: 80 * 80, MaxMemory: 4 << 20})
	info := p.Info()
	assert.Equal(t, pipeline.WorkLimits{MaxTimesteps: pipeline.DefaultMaxTimesteps, MaxSteps: 30, MaxStagePixels: 6400, MaxMemory: 4 << 20}, info.Work)
	assert.Equal(t, int64(pipeline.DefaultDecodeMemory), info.DecodeMemory)
	assert.Len(t, info.Params, len(pipeline.ParamTable()))
	pr := p.DefaultParams()
	pr.Steps1, pr.Steps2 = 20, 20
	img := imageio.ResizeBicubicPIL(sample(t), 64, 64)
	_, err := p.Refine(context.Background(), pipeline.Request{Image: img, Params: &pr})
	assert.ErrorContains(t, err, "steps1 + steps2 = 40 denoising steps, over the limit of 30")
	pr.Steps1, pr.Steps2 = 2, 2
	_, err = p.Refine(context.Background(), pipeline.Request{Image: imageio.ResizeBicubicPIL(sample(t), 96, 72), Params: &pr})
	assert.ErrorContains(t, err, "96x72 is 6912 pixels, over the limit of 6400 a refinement works at")
	pr.LongSide = 128
	_, err = p.Refine(context.Background(), pipeline.Request{Image: img, Params: &pr})
	assert.ErrorContains(t, err, "stage 1 works at 128x128 = 16384 pixels, over the limit of 6400")
	big := imageio.ResizeBicubicPIL(sample(t), 512, 512)
	_, err = p.Assess(context.Background(), pipeline.Request{Image: big})
	assert.ErrorContains(t, err, "working memory, over the 0.00 GiB limit")
	assert.ErrorIs(t, err, pipeline.ErrInput)
	_, err = p.Assess(context.Background(), pipeline.Request{Image: img})
	assert.NoError(t, err, "64x64 fits 4 MiB")
}

// TestLargeImagesTiledWithinMemory: a 4096² refine on the tiny set is planned in tiles
// (stage 2's VAE and denoising) within the memory limit instead of refused; its estimate
// grows with the image only by the buffers at the working size (the networks' part is a
// tile's); it is refused before any model work, naming what to change, where even the tiles
// cannot fit; 8192² is past the default pixel limit.
func TestLargeImagesTiledWithinMemory(t *testing.T) {
	dir := testenv.Path(t, "testdata", "models", "tiny")
	m, err := modelset.ReadManifest(dir)
	require.NoError(t, err)
	pr := pipeline.DefaultParamsFor(true)
	cfg := pipeline.Config{MaxMemory: 8 << 30}
	w4, err := pipeline.CheckWorkFor(m, dir, cfg, pr, 4096, 4096, true)
	require.NoError(t, err, "4096² fits 8 GiB in tiles")
	w2, err := pipeline.CheckWorkFor(m, dir, cfg, pr, 2048, 2048, true)
	require.NoError(t, err)
	t.Logf("4096²: %+v", w4)
	assert.True(t, w4.Stage2.Tiled)
	assert.False(t, w4.Stage1.Tiled, "stage 1 works at long side 256: no tiles")
	assert.LessOrEqual(t, w4.Memory, int64(8<<30))
	net := func(w pipeline.Work) int64 { return w.Stage2.Memory - w.Stage2.Pixels*refine.StageBytesPerPixel }
	assert.Equal(t, net(w2), net(w4), "the networks' part is bounded by the tile, not by the image")
	small, err := pipeline.CheckWorkFor(m, dir, cfg, pr, 320, 240, true)
	require.NoError(t, err)
	assert.False(t, small.Stage2.Tiled, "a small image keeps the untiled path")

	cfg.MaxMemory = 2 << 30
	_, err = pipeline.CheckWorkFor(m, dir, cfg, pr, 4096, 4096, true)
	require.ErrorIs(t, err, pipeline.ErrInput)
	assert.ErrorContains(t, err, "stage 2 works at 4096x4096")
	assert.ErrorContains(t, err, "refine a smaller image")
	cfg.MaxMemory = 3 << 30
	pr.TileBatch = 16 // 16 tiles of 64² latents per call: 4 GiB of attention
	_, err = pipeline.CheckWorkFor(m, dir, cfg, pr, 4096, 4096, true)
	assert.ErrorContains(t, err, "lower the tile")
	pr.TileBatch = 0 // as memory allows: the batch shrinks to fit
	_, err = pipeline.CheckWorkFor(m, dir, cfg, pr, 4096, 4096, true)
	assert.NoError(t, err)

	_, err = pipeline.CheckWorkFor(m, dir, pipeline.Config{MaxMemory: 20 << 30}, pipeline.DefaultParamsFor(true), 8192, 8192, true)
	assert.ErrorContains(t, err, "8192x8192 is 67108864 pixels, over the limit of 16777216 a refinement works at")
	cfg = pipeline.Config{MaxMemory: 20 << 30, MaxStagePixels: 8192 * 8192}
	w8, err := pipeline.CheckWorkFor(m, dir, cfg, pipeline.DefaultParamsFor(true), 8192, 8192, true)
	require.NoError(t, err, "8192² fits 20 GiB in tiles once the pixel limit allows it")
	assert.ErrorContains(t, err8192(t, m, dir), "; it would need about "+strconv.FormatFloat(float64(w8.Memory)/(1<<30), 'f', 2, 64)+" GiB of working memory (limit 20.00 GiB)",
		"the refusal states the plan's estimate")
}

// err8192 is the refusal of an 8192² refine under the default pixel limit and a 20 GiB memory limit.
func err8192(t *testing.T, m *modelset.Manifest, dir string) error {
	_, err := pipeline.CheckWorkFor(m, dir, pipeline.Config{MaxMemory: 20 << 30}, pipeline.DefaultParamsFor(true), 8192, 8192, true)
	require.ErrorIs(t, err, pipeline.ErrInput)
	return err
}

// gray16PNG is a w×h 16-bit grey PNG: a few KB that decode to w·h·(2+3) bytes.
func gray16PNG(t *testing.T, w, h int) []byte {
	t.Helper()
	m := image.NewGray16(image.Rect(0, 0, w, h))
	for i := 0; i < w; i++ {
		m.SetGray16(i, i%h, color.Gray16{Y: 0xffff})
	}
	var b bytes.Buffer
	require.NoError(t, (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&b, m))
	return b.Bytes()
}

// TestAdmissionBeforeDecoding: a request takes its place before its image is decoded
// (ErrBusy at once when slots + queue are taken), decodes share the decode budget
// (counted at decoded size, 16-bit included, from the header), and an image larger
// than the whole budget is refused before any pixel is decoded.
func TestAdmissionBeforeDecoding(t *testing.T) {
	img := small(t)
	var enc bytes.Buffer
	require.NoError(t, imageio.EncodePNG(&enc, img))
	// 96×64 NRGBA decodes to 96·64·(4+3) = 43008 bytes and keeps 18432 (RGB8).
	p := openTiny(t, pipeline.Config{Slots: 1, MaxQueue: 1, DecodeMemory: 60000})
	ctx := context.Background()

	huge := gray16PNG(t, 8192, 8192) // 320 MiB decoded
	t.Logf("8192² 16-bit PNG: %d bytes encoded", len(huge))
	tk, err := p.Admit(ctx, pipeline.Admission{})
	require.NoError(t, err)
	var derr error
	n := allocated(func() { _, derr = tk.DecodeImage(huge) })
	assert.ErrorIs(t, derr, pipeline.ErrInput)
	assert.ErrorContains(t, derr, "more than the whole decode budget")
	assert.Less(t, n, uint64(4<<20), "refused from the header: %d bytes allocated", n)
	tk.Close()

	// The budget is shared: one decoded image holds 18432 bytes; a second decode needs
	// 43008 of the 41568 left, so it waits, and its deadline makes it busy.
	a, err := p.Admit(ctx, pipeline.Admission{ID: "a"})
	require.NoError(t, err)
	_, err = a.DecodeImage(enc.Bytes())
	require.NoError(t, err)
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	b, err := p.Admit(short, pipeline.Admission{ID: "b"})
	require.NoError(t, err)
	_, err = b.DecodeImage(enc.Bytes())
	cancel()
	assert.ErrorIs(t, err, pipeline.ErrBusy, "waited for decode memory until the deadline")
	b.Close()
	// Slots 1 + queue 1: with a and c admitted, a third request is refused at once.
	c, err := p.Admit(ctx, pipeline.Admission{ID: "c"})
	require.NoError(t, err)
	_, err = p.Admit(ctx, pipeline.Admission{ID: "d"}) // ctx never ends: a wait would hang
	assert.ErrorIs(t, err, pipeline.ErrBusy)
	assert.Equal(t, 429, pipeline.HTTPStatus(err))
	st, ok := p.Request("c")
	assert.True(t, ok)
	assert.Equal(t, "admitted", st.State, "admitted, image not decoded yet")
	// c's decode waits for a's memory; running a (which closes it) frees it.
	done := make(chan error, 1)
	go func() { _, err := c.DecodeImage(enc.Bytes()); done <- err }()
	select {
	case err := <-done:
		t.Fatalf("c decoded before a released its memory: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	res, err := p.Assess(ctx, pipeline.Request{Ticket: a})
	require.NoError(t, err)
	assert.Equal(t, "a", res.RequestID)
	require.NoError(t, <-done)
	want, err := p.Assess(ctx, pipeline.Request{Image: img})
	require.NoError(t, err)
	got, err := p.Assess(ctx, pipeline.Request{Ticket: c})
	require.NoError(t, err)
	assert.Equal(t, want.Q, got.Q, "a ticket's request is the same request")
	assert.Equal(t, want.Input.PixelSHA256, got.Input.PixelSHA256)
	// A ticket runs once, and only as itself.
	_, err = p.Assess(ctx, pipeline.Request{Ticket: c})
	assert.ErrorIs(t, err, pipeline.ErrInput)
	e, err := p.Admit(ctx, pipeline.Admission{Refine: true})
	require.NoError(t, err)
	require.NoError(t, e.SetImage(img))
	_, err = p.Assess(ctx, pipeline.Request{Ticket: e})
	assert.ErrorContains(t, err, "admitted for refine")
	_, err = p.Refine(ctx, pipeline.Request{Ticket: e, Prompt: "x"})
	assert.ErrorContains(t, err, "leave them empty")
	e.Close()
	_, ok = p.Request("a")
	assert.False(t, ok, "finished tickets leave the registry")
}

// TestOwnership: a request's id is scoped to its owner: another owner neither sees nor
// cancels it, and may use the same id at the same time. Generated ids are 128 bits.
func TestOwnership(t *testing.T) {
	p := openTiny(t, pipeline.Config{Slots: 2})
	img := small(t)
	pr := p.DefaultParams()
	pr.Steps1, pr.Steps2, pr.Strength1 = 200, 200, 1
	started := make(chan struct{})
	var once sync.Once
	errc := make(chan error, 1)
	go func() {
		_, err := p.Refine(context.Background(), pipeline.Request{ID: "job-1", Owner: "alice", Image: img, Prompt: demoPrompt, Params: &pr,
			Observer: func(e pipeline.Event) error {
				if e.Stage == "stage1" || e.Stage == "stage2" {
					once.Do(func() { close(started) })
				}
				return nil
			}})
		errc <- err
	}()
	<-started
	_, ok := p.RequestFor("mallory", "job-1")
	assert.False(t, ok, "another owner does not see it")
	_, ok = p.Request("job-1")
	assert.False(t, ok, "nor does the anonymous owner")
	assert.False(t, p.CancelFor("mallory", "job-1"), "another owner cannot cancel it")
	assert.False(t, p.Cancel("job-1"))
	res, err := p.Assess(context.Background(), pipeline.Request{ID: "job-1", Owner: "mallory", Image: img})
	require.NoError(t, err, "the same id under another owner")
	assert.Equal(t, "job-1", res.RequestID)
	st, ok := p.RequestFor("alice", "job-1")
	require.True(t, ok)
	assert.Equal(t, "running", st.State, "alice's request still runs")
	_, err = p.Assess(context.Background(), pipeline.Request{ID: "job-1", Owner: "alice", Image: img})
	assert.ErrorContains(t, err, "already in flight", "the owner's own id is taken")
	assert.True(t, p.CancelFor("alice", "job-1"))
	assert.ErrorIs(t, <-errc, pipeline.ErrCanceled)

	res, err = p.Assess(context.Background(), pipeline.Request{Image: img})
	require.NoError(t, err)
	assert.Regexp(t, "^[0-9a-f]{32}$", res.RequestID, "generated ids are 128 random bits")
}
