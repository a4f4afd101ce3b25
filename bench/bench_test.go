package bench

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/engine/modelset"
	"github.com/grefine/grefine/internal/testenv"
	"github.com/grefine/grefine/pipeline/assess"
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

func newAssessor(b testing.TB, dir string) *assess.Assessor {
	set, err := modelset.Load(dir, modelset.Options{})
	require.NoError(b, err)
	p, err := syntax.New(syntax.Options{})
	require.NoError(b, err)
	a, err := assess.New(set, ortBackend(b), assess.Options{Config: assess.DefaultConfig(), Parser: assess.SyntaxParser{P: p}})
	require.NoError(b, err)
	b.Cleanup(func() { a.Close() })
	return a
}

// benchAssess times one assess per iteration. The text-feature cache is defeated by
// changing the prompt every iteration (a trailing counter word), so each run encodes
// all 9 texts × 85 templates like a first request; the image side always runs.
func benchAssess(b *testing.B, dir string) {
	a := newAssessor(b, dir)
	img := image1024(b)
	ctx := context.Background()
	var last *assess.Report
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rep, err := a.Assess(ctx, img, prompt4+" "+string(rune('a'+i%26))+string(rune('a'+i/26%26)))
		if err != nil {
			b.Fatal(err)
		}
		last = rep
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
	a := newAssessor(b, benchModels(b))
	img := image1024(b)
	_, err := a.Assess(context.Background(), img, prompt4)
	require.NoError(b, err)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := a.Assess(context.Background(), img, prompt4); err != nil {
			b.Fatal(err)
		}
	}
}

func benchRefine(b *testing.B, be engine.Backend, set *modelset.Set, cfg refine.Config, size int) {
	r, err := refine.New(set, be, refine.Options{Config: cfg})
	require.NoError(b, err)
	defer r.Close()
	img := imageio.ResizeBicubicPIL(image1024(b), size, size)
	mask := make([]float32, size*size)
	for y := size / 4; y < size/2; y++ {
		for x := size / 4; x < 3*size/4; x++ {
			mask[y*size+x] = 1
		}
	}
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

// BenchmarkRefineTiny: both stages with the tiny set, 256² input (the CLI's tiny default).
func BenchmarkRefineTiny(b *testing.B) {
	set, err := modelset.Load(tinyDir, modelset.Options{})
	require.NoError(b, err)
	cfg := refine.DefaultConfig()
	cfg.LongSide, cfg.ProcessSize = 256, 0
	benchRefine(b, ortBackend(b), set, cfg, 256)
}

// BenchmarkRefineOverhead: a 1024² refine with the production working sizes (long side
// 1024, PASD process size 768) whose engines return zeros at once: the Go-side cost of
// resizing, tokenising, conditioning, the fused CFG/step/blend loops, colour fix and
// pixel paste — everything but the networks.
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
