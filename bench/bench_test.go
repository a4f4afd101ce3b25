package bench

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/internal/testkit/testenv"
	"github.com/grefine/grefine/modelset"
	"github.com/grefine/grefine/pipeline"
	"github.com/grefine/grefine/pipeline/imageio"
	"github.com/grefine/grefine/pipeline/refine"
	"github.com/grefine/grefine/pipeline/syntax"
)

var tinyDir = filepath.Join("..", "testdata", "models", "tiny")

// prompt4 is the DESIGN example: four nouns (Beans, glasses, suit, tie).
const prompt4 = "Mr. Beans wearing sun glasses with blue doctor suit and stripe tie"

func ortBackend(b testing.TB) engine.Backend { return testenv.ORT(b) }

func image1024(b testing.TB) *imageio.RGB8 {
	img, err := imageio.ReadFile(filepath.Join("..", "testdata", "images", "sample.png"), imageio.DefaultLimits)
	require.NoError(b, err)
	return imageio.ResizeBicubicPIL(img, 1024, 1024)
}

// openPipeline loads the pipeline on dir (assess-only when assessOnly).
func openPipeline(b testing.TB, dir string, assessOnly bool) *pipeline.Pipeline {
	p, err := pipeline.Open(context.Background(), pipeline.Config{Models: dir, BackendInstance: ortBackend(b), AssessOnly: assessOnly})
	require.NoError(b, err)
	b.Cleanup(func() { p.Close() })
	return p
}

// benchAssess times one assess per iteration on the loaded pipeline. The text-feature
// cache is defeated by changing the prompt every iteration (a trailing counter word), so
// each run encodes all 9 texts × 85 templates like a first request; the image side
// always runs.
func benchAssess(b *testing.B, dir string) {
	p := openPipeline(b, dir, true)
	img := image1024(b)
	ctx := context.Background()
	var last *pipeline.Assessment
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		a, err := p.Assess(ctx, pipeline.Request{Image: img, Prompt: prompt4 + " " + string(rune('a'+i%26)) + string(rune('a'+i/26%26))})
		if err != nil {
			b.Fatal(err)
		}
		last = a
	}
	b.StopTimer()
	for k, v := range last.TimingsMillis {
		b.ReportMetric(v, k+"_ms")
	}
}

func BenchmarkAssessTiny(b *testing.B) { benchAssess(b, tinyDir) }

// benchModels is $GRF_BENCH_MODELS, relative paths taken from the repository root.
func benchModels(b *testing.B) string {
	dir := os.Getenv("GRF_BENCH_MODELS")
	if dir == "" {
		b.Skip("skipping: set GRF_BENCH_MODELS to a full-size model set (see bench/RESULTS.md)")
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join("..", dir)
	}
	return dir
}

// BenchmarkAssessFullCached: assess of a 1024² image with a repeated prompt on a
// full-size model set: the text features come from the LRU cache after the first run.
// (The cache-off full-size benchmark is bench/assesscpu.BenchmarkAssess.)
func BenchmarkAssessFullCached(b *testing.B) {
	p := openPipeline(b, benchModels(b), true)
	img := image1024(b)
	_, err := p.Assess(context.Background(), pipeline.Request{Image: img, Prompt: prompt4})
	require.NoError(b, err)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := p.Assess(context.Background(), pipeline.Request{Image: img, Prompt: prompt4}); err != nil {
			b.Fatal(err)
		}
	}
}

// bandMask is 1 on the band y in [size/4, size/2), x in [size/4, 3·size/4): a fixed
// repair region, so stage 1 always runs whatever the tiny assessor finds.
func bandMask(size int) []float32 {
	mask := make([]float32, size*size)
	for y := size / 4; y < size/2; y++ {
		for x := size / 4; x < 3*size/4; x++ {
			mask[y*size+x] = 1
		}
	}
	return mask
}

func benchRefine(b *testing.B, be engine.Backend, set *modelset.Set, cfg refine.Config, size int) {
	r, err := refine.New(set, be, refine.Options{Config: cfg})
	require.NoError(b, err)
	defer r.Close()
	img := imageio.ResizeBicubicPIL(image1024(b), size, size)
	mask := bandMask(size)
	var res *refine.Result
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if res, err = r.Refine(context.Background(), refine.Request{Image: img, Prompt: prompt4, Mask: mask, Q: 0.4}, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(res.Stage1.Millis, "stage1_ms")
	b.ReportMetric(res.Stage2.Millis, "stage2_ms")
}

// BenchmarkRefineTiny: both stages with the tiny set on the loaded pipeline, 256² input
// (the tiny set's default working sizes). The request carries an assessment made once
// outside the timer, with the fixed band mask and q = 0.4, so this times the refiner.
func BenchmarkRefineTiny(b *testing.B) {
	p := openPipeline(b, tinyDir, false)
	img := imageio.ResizeBicubicPIL(image1024(b), 256, 256)
	ctx := context.Background()
	a, err := p.Assess(ctx, pipeline.Request{Image: img, Prompt: prompt4})
	require.NoError(b, err)
	rep := *a.Report
	rep.Mask, rep.Q = bandMask(256), 0.4
	a.Report = &rep
	var res *pipeline.Refinement
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if res, err = p.Refine(ctx, pipeline.Request{Image: img, Prompt: prompt4, Assessment: a}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(res.Refine.Stage1.Millis, "stage1_ms")
	b.ReportMetric(res.Refine.Stage2.Millis, "stage2_ms")
}

// BenchmarkRefineOverhead: a 1024² refine with the production working sizes (long side
// 1024, PASD process size 768) whose engines return zeros at once: the Go-side cost of
// resizing, tokenising, conditioning, the fused CFG/step/blend loops, colour fix and
// pixel paste — everything but the networks. It drives the refiner directly: the
// pipeline refuses these working sizes with a tiny model set (its real stand-in UNets
// would need tens of GB there), which does not apply to engines that return zeros.
func BenchmarkRefineOverhead(b *testing.B) {
	set, err := modelset.Load(tinyDir, modelset.Options{})
	require.NoError(b, err)
	benchRefine(b, zeroBackend{set: set}, set, refine.DefaultConfig(), 1024)
}

func BenchmarkParse(b *testing.B) {
	p, err := syntax.New(syntax.Options{})
	require.NoError(b, err)
	prompts := []string{prompt4, "a red apple on a wooden table", "portrait of an old fisherman with a pipe, oil painting",
		"a cat sitting on a windowsill next to a vase of sunflowers", "masterpiece, (best quality:1.2), 1girl, long hair, school uniform"}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := p.Parse(prompts[i%len(prompts)]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "prompts/s")
}
