package pipeline_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/internal/testkit/testenv"
	"github.com/grefine/grefine/pipeline"
	"github.com/grefine/grefine/pipeline/imageio"
)

const demoPrompt = "Mr. Beans wearing sun glasses with blue doctor suit and stripe tie"

// countingBackend counts Open calls per engine file.
type countingBackend struct {
	engine.Backend
	mu    sync.Mutex
	opens map[string]int
}

func (b *countingBackend) Open(path string, opts engine.OpenOptions) (engine.Engine, error) {
	b.mu.Lock()
	b.opens[opts.Name]++
	b.mu.Unlock()
	return b.Backend.Open(path, opts)
}

func openTiny(t *testing.T, cfg pipeline.Config) *pipeline.Pipeline {
	t.Helper()
	if cfg.BackendInstance == nil {
		cfg.BackendInstance = testenv.ORT(t)
	}
	cfg.Models = testenv.Path(t, "testdata", "models", "tiny")
	p, err := pipeline.Open(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	return p
}

func sample(t *testing.T) *imageio.RGB8 {
	t.Helper()
	img, err := imageio.ReadFile(testenv.Path(t, "testdata", "images", "sample.png"), imageio.DefaultLimits)
	require.NoError(t, err)
	return img
}

// small is a 96×64 crop of the sample (keeps -race runs short).
func small(t *testing.T) *imageio.RGB8 {
	return imageio.ResizeBicubicPIL(sample(t), 96, 64)
}

func TestOpenOpensEachEngineOnce(t *testing.T) {
	cb := &countingBackend{Backend: testenv.ORT(t), opens: map[string]int{}}
	p := openTiny(t, pipeline.Config{BackendInstance: cb, Slots: 3})
	img := small(t)
	params := p.DefaultParams()
	params.Steps1, params.Steps2 = 2, 2
	for i := 0; i < 3; i++ {
		params.Seed = uint64(i)
		_, err := p.Refine(context.Background(), pipeline.Request{Image: img, Prompt: demoPrompt, Params: &params})
		require.NoError(t, err)
		_, err = p.Assess(context.Background(), pipeline.Request{Image: img, Prompt: "a cat"})
		require.NoError(t, err)
	}
	info := p.Info()
	require.Len(t, info.Engines, 11)
	for _, name := range info.Engines {
		assert.Equal(t, 1, cb.opens[name], "engine %s opened %d times", name, cb.opens[name])
	}
	assert.Len(t, cb.opens, 11, "no other engine was opened")
}

func TestConcurrentSeedsMatchSingleCalls(t *testing.T) {
	p := openTiny(t, pipeline.Config{Slots: 2})
	img := small(t)
	params := func(seed uint64) *pipeline.Params {
		pr := p.DefaultParams()
		pr.Seed, pr.Steps1, pr.Steps2 = seed, 3, 2
		return &pr
	}
	single := map[uint64][]byte{}
	for _, s := range []uint64{1, 2} {
		r, err := p.Refine(context.Background(), pipeline.Request{Image: img, Prompt: demoPrompt, Params: params(s)})
		require.NoError(t, err)
		single[s] = r.Image.Pix
	}
	require.NotEqual(t, single[1], single[2], "different seeds give different images")
	peak := concurrentEqualsSerial(t, p, img, params, single)
	t.Logf("peak concurrent requests: %d", peak)
}

// concurrentEqualsSerial refines seeds 1 and 2 at once and checks each against its
// serial bytes; it returns the peak number of requests seen running together.
func concurrentEqualsSerial(t *testing.T, p *pipeline.Pipeline, img *imageio.RGB8, params func(uint64) *pipeline.Params, serial map[uint64][]byte) int32 {
	var wg sync.WaitGroup
	got := map[uint64][]byte{}
	var mu sync.Mutex
	var running, peak atomic.Int32
	for _, s := range []uint64{1, 2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := p.Refine(context.Background(), pipeline.Request{Image: img, Prompt: demoPrompt, Params: params(s),
				Observer: func(e pipeline.Event) error {
					if e.Stage == "assess" {
						n := running.Add(1)
						for {
							m := peak.Load()
							if n <= m || peak.CompareAndSwap(m, n) {
								break
							}
						}
					}
					return nil
				}})
			running.Add(-1)
			if assert.NoError(t, err) {
				mu.Lock()
				got[s] = r.Image.Pix
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, s := range []uint64{1, 2} {
		assert.Equal(t, serial[s], got[s], "seed %d: concurrent output equals the serial call's bytes", s)
	}
	return peak.Load()
}

func TestParamsRefusedBeforeWork(t *testing.T) {
	p := openTiny(t, pipeline.Config{AssessOnly: true})
	img := small(t)
	nan := p.DefaultParams()
	nan.Guidance1 = nanf()
	for name, pr := range map[string]pipeline.Params{
		"nan guidance": nan,
		"bound":        func() pipeline.Params { x := p.DefaultParams(); x.AlignBound = -5; return x }(),
		"steps":        func() pipeline.Params { x := p.DefaultParams(); x.Steps1 = 0; return x }(),
		"tiny size":    func() pipeline.Params { x := p.DefaultParams(); x.LongSide = 1024; return x }(),
	} {
		_, err := p.Assess(context.Background(), pipeline.Request{Image: img, Prompt: "a cat", Params: &pr})
		require.Error(t, err, name)
		assert.ErrorIs(t, err, pipeline.ErrInput, name)
		assert.Equal(t, pipeline.StatusInput, pipeline.StatusOf(err))
		assert.Equal(t, 2, pipeline.StatusOf(err).ExitCode())
	}
	_, err := p.Refine(context.Background(), pipeline.Request{Image: img, Prompt: "a cat"})
	assert.ErrorIs(t, err, pipeline.ErrUnavailable, "assess-only pipeline has no refiner")
	tinyImg := imageio.NewRGB8(8, 4000)
	_, err = p.Assess(context.Background(), pipeline.Request{Image: tinyImg, Prompt: "a cat"})
	assert.ErrorIs(t, err, pipeline.ErrInput)
	assert.Contains(t, err.Error(), "too small")
}

func nanf() float64 { z := 0.0; return z / z }

func TestBusyAndCancel(t *testing.T) {
	p := openTiny(t, pipeline.Config{Slots: 1, MaxQueue: 1})
	img := small(t)
	pr := p.DefaultParams()
	pr.Steps1, pr.Steps2 = 50, 50
	started := make(chan struct{})
	var once sync.Once
	errc := make(chan error, 1)
	go func() {
		_, err := p.Refine(context.Background(), pipeline.Request{ID: "long", Image: img, Prompt: demoPrompt, Params: &pr,
			Observer: func(e pipeline.Event) error {
				if e.Stage == "stage1" || e.Stage == "stage2" {
					once.Do(func() { close(started) })
				}
				return nil
			}})
		errc <- err
	}()
	<-started
	st, ok := p.Request("long")
	require.True(t, ok)
	assert.Equal(t, "running", st.State)

	// One may wait; its deadline passes in the queue: busy.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := p.Assess(ctx, pipeline.Request{Image: img, Prompt: "a cat"})
	assert.ErrorIs(t, err, pipeline.ErrBusy)
	assert.Equal(t, 429, pipeline.HTTPStatus(err))

	// A queued request has a position; a second waiter is refused at once (MaxQueue 1).
	qerr := make(chan error, 1)
	go func() {
		_, err := p.Assess(context.Background(), pipeline.Request{ID: "queued", Image: img, Prompt: "a cat"})
		qerr <- err
	}()
	require.Eventually(t, func() bool { s, ok := p.Request("queued"); return ok && s.Position == 1 }, 5*time.Second, time.Millisecond)
	_, err = p.Assess(context.Background(), pipeline.Request{Image: img, Prompt: "a cat"})
	assert.ErrorIs(t, err, pipeline.ErrBusy, "queue full")

	require.True(t, p.Cancel("long"))
	select {
	case err := <-errc:
		assert.ErrorIs(t, err, pipeline.ErrCanceled)
		assert.Equal(t, pipeline.StatusCanceled, pipeline.StatusOf(err))
	case <-time.After(30 * time.Second):
		t.Fatal("cancel did not stop the refine")
	}
	assert.NoError(t, <-qerr, "the queued request runs once the slot is free")
	_, ok = p.Request("long")
	assert.False(t, ok, "finished requests leave the registry")
}

func TestObserverCancels(t *testing.T) {
	p := openTiny(t, pipeline.Config{})
	img := small(t)
	stop := errors.New("enough")
	var events []pipeline.Event
	_, err := p.Refine(context.Background(), pipeline.Request{Image: img, Prompt: demoPrompt,
		Observer: func(e pipeline.Event) error {
			events = append(events, e)
			if e.Stage == "stage1" && e.Step == 2 {
				return stop
			}
			return nil
		}})
	require.Error(t, err)
	assert.ErrorIs(t, err, pipeline.ErrCanceled)
	assert.ErrorIs(t, err, stop)
	last := events[len(events)-1]
	assert.Equal(t, "stage1", last.Stage)
	assert.LessOrEqual(t, last.Step, 3, "stops within one step")
	assert.Equal(t, "assess", events[0].Stage)
}

func TestTextBatchingMatchesUnbatched(t *testing.T) {
	plain := openTiny(t, pipeline.Config{AssessOnly: true, FeatureCache: -1})
	batched := openTiny(t, pipeline.Config{AssessOnly: true, FeatureCache: -1, Slots: 4,
		TextBatch: pipeline.TextBatch{MaxRows: 4096, MaxWait: 200 * time.Millisecond}})
	img := small(t)
	prompts := []string{"a red cat", "a blue dog", "a green cat", "a pink dog"}
	want := map[string]*pipeline.Assessment{}
	for _, pr := range prompts {
		a, err := plain.Assess(context.Background(), pipeline.Request{Image: img, Prompt: pr})
		require.NoError(t, err)
		want[pr] = a
	}
	var wg sync.WaitGroup
	for _, pr := range prompts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := batched.Assess(context.Background(), pipeline.Request{Image: img, Prompt: pr})
			if assert.NoError(t, err) {
				assert.InDelta(t, *want[pr].A, *a.A, 1e-6, pr)
				assert.Equal(t, want[pr].Mask, a.Mask, pr)
				for i := range a.Parts {
					assert.InDelta(t, want[pr].Parts[i].PhraseScore, a.Parts[i].PhraseScore, 1e-6)
				}
			}
		}()
	}
	wg.Wait()
	st := batched.TextBatchStats()
	t.Logf("text batcher: %d calls in %d engine runs", st.Calls, st.Runs)
	assert.Less(t, st.Runs, st.Calls, "concurrent calls were merged")
}

func TestErrorTable(t *testing.T) {
	for s, want := range map[pipeline.Status][2]int{
		pipeline.StatusOK: {0, 200}, pipeline.StatusInput: {2, 400}, pipeline.StatusBusy: {75, 429},
		pipeline.StatusUnavailable: {69, 503}, pipeline.StatusCanceled: {130, 499}, pipeline.StatusInternal: {1, 500},
	} {
		assert.Equal(t, want[0], s.ExitCode(), s.String())
		assert.Equal(t, want[1], s.HTTPStatus(), s.String())
	}
	assert.Equal(t, pipeline.StatusCanceled, pipeline.StatusOf(context.Canceled))
	assert.Equal(t, 504, pipeline.HTTPStatus(context.DeadlineExceeded))
	assert.Equal(t, pipeline.StatusInternal, pipeline.StatusOf(errors.New("boom")))
	_, err := pipeline.Open(context.Background(), pipeline.Config{})
	assert.ErrorIs(t, err, pipeline.ErrInput, "no model set given")
	_, err = pipeline.Open(context.Background(), pipeline.Config{Models: t.TempDir()})
	assert.Equal(t, pipeline.StatusUnavailable, pipeline.StatusOf(err), "missing model set: %v", err)
	_, err = pipeline.Open(context.Background(), pipeline.Config{Models: "x", Threads: 100000})
	assert.ErrorIs(t, err, pipeline.ErrInput)
}

func absInt(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
