package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/engine/cuda"
	"github.com/grefine/grefine/internal/npy"
	"github.com/grefine/grefine/pipeline"
	"github.com/grefine/grefine/pipeline/imageio"
)

var tiny = filepath.Join("..", "..", "testdata", "models", "tiny")

// run executes the CLI in-process and returns stdout, stderr and the exit code.
func run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	global := []string{"grefine", "--models", tiny, "--log-level", "error", "--hash-cache", filepath.Join(t.TempDir(), "hashes.json")}
	err := newApp(&out, &errb).RunContext(context.Background(), append(global, args...))
	code := 0
	if err != nil {
		errb.WriteString("grefine: " + err.Error() + "\n")
		code = exitCode(err)
	}
	return out.String(), errb.String(), code
}

func requireORT(t *testing.T) {
	if _, err := os.Stat(filepath.Join("..", "..", ".deps", "ort", "libonnxruntime.so.1")); err != nil && os.Getenv("ONNXRUNTIME_SHARED_LIBRARY_PATH") == "" {
		if os.Getenv("GRF_REQUIRE_ORT") == "1" {
			t.Fatal("onnxruntime required")
		}
		t.Skip("skipping: onnxruntime not installed (run `make setup`)")
	}
}

func TestDoctor(t *testing.T) {
	requireORT(t)
	out, _, code := run(t, "doctor")
	require.Equal(t, 0, code, "doctor exits 0 even when parts are missing")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	names := map[string]string{}
	for _, l := range lines {
		f := strings.Fields(l)
		require.GreaterOrEqual(t, len(f), 3, l)
		names[strings.Join(f[:2], " ")] = l
	}
	for _, want := range []string{"backend ort", "backend trt", "device cuda", "gpu", "models ok"} {
		found := false
		for k, l := range names {
			if strings.HasPrefix(k, want) || strings.HasPrefix(l, want) {
				found = true
			}
		}
		assert.True(t, found, "doctor reports %q:\n%s", want, out)
	}
	assert.Contains(t, out, "onnxruntime 1.30.0")
	jout, _, code := run(t, "doctor", "--json")
	require.Equal(t, 0, code)
	var checks []check
	require.NoError(t, json.Unmarshal([]byte(jout), &checks))
	assert.GreaterOrEqual(t, len(checks), 5)
}

func TestParseJSONContract(t *testing.T) {
	out, _, code := run(t, "parse", "--json", "Mr. Beans wearing sun glasses with blue doctor suit and stripe tie")
	require.Equal(t, 0, code)
	assert.Equal(t, `{"parts":[{"text":"Mr. Beans wearing","noun":"Beans","start":0,"end":3,"ancestor":-1},`+
		`{"text":"sun glasses","noun":"glasses","start":3,"end":6,"ancestor":0},`+
		`{"text":"blue doctor suit","noun":"suit","start":6,"end":10,"ancestor":0},`+
		`{"text":"stripe tie","noun":"tie","start":10,"end":12,"ancestor":2}]}`, strings.TrimSpace(out))
	_, errOut, code := run(t, "parse")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "one PROMPT")
	_, errOut, code = run(t, "parse", "bad \xff")
	assert.Equal(t, 2, code)
	assert.Contains(t, strings.ToLower(errOut), "utf-8")
}

func TestAssess(t *testing.T) {
	requireORT(t)
	dir := t.TempDir()
	out, errOut, code := run(t, "assess", "--image", filepath.Join("..", "..", "testdata", "images", "sample.png"), "--prompt", "a red apple on a wooden table", "--out", dir)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "p=")
	for _, f := range []string{"report.json", "p_map.png", "a_map.png", "mask.png"} {
		assert.FileExists(t, filepath.Join(dir, f))
	}
	var rep map[string]any
	b, err := os.ReadFile(filepath.Join(dir, "report.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &rep))
	for _, k := range []string{"p", "a", "q", "perceptual", "parts", "timings_ms"} {
		assert.Contains(t, rep, k)
	}
}

func TestAssessBadInputs(t *testing.T) {
	requireORT(t)
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "corrupt.png")
	require.NoError(t, os.WriteFile(corrupt, []byte("\x89PNG\r\n\x1a\nnot really"), 0o644))
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"missing image", []string{"--image", filepath.Join(dir, "nope.png"), "--prompt", "x"}, 2, "no such file"},
		{"corrupt image", []string{"--image", corrupt, "--prompt", "x"}, 2, "cannot decode"},
		{"no prompt flag", []string{"--image", corrupt}, 2, "--prompt is required"},
		{"nothing", nil, 2, "give --image"},
		{"bad utf8", []string{"--image", filepath.Join("..", "..", "testdata", "images", "sample.png"), "--prompt", "a \xff"}, 2, "UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, tc.name)
			_, errOut, code := run(t, append([]string{"assess", "--out", out}, tc.args...)...)
			assert.Equal(t, tc.code, code, errOut)
			assert.Contains(t, errOut, tc.msg)
			assert.NoFileExists(t, filepath.Join(out, "report.json"), "no partial output")
		})
	}
}

func TestAssessBatch(t *testing.T) {
	requireORT(t)
	dir := t.TempDir()
	img, err := filepath.Abs(filepath.Join("..", "..", "testdata", "images", "sample.png"))
	require.NoError(t, err)
	list := filepath.Join(dir, "list.jsonl")
	lines := `{"image": "` + img + `", "prompt": "a cat on a sofa", "id": "one"}
{"image": "` + filepath.Join(dir, "missing.png") + `", "prompt": "x"}

{"image": "` + img + `", "prompt": ""}
`
	require.NoError(t, os.WriteFile(list, []byte(lines), 0o644))
	out, errOut, code := run(t, "assess", "--batch", list, "--out", filepath.Join(dir, "out"), "--quiet", "--no-maps")
	assert.Equal(t, 1, code, "one image failed")
	assert.Contains(t, errOut, "1 of 3 images failed")
	rows := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, rows, 3)
	type line struct {
		ID     string
		Error  string
		Report *struct{ A *float32 }
	}
	var first, second, third line
	require.NoError(t, json.Unmarshal([]byte(rows[0]), &first))
	require.NoError(t, json.Unmarshal([]byte(rows[1]), &second))
	require.NoError(t, json.Unmarshal([]byte(rows[2]), &third))
	assert.Equal(t, "one", first.ID)
	assert.NotNil(t, first.Report)
	assert.NotEmpty(t, second.Error)
	assert.Equal(t, "line-0004", third.ID, "automatic ids are line numbers")
	assert.Nil(t, third.Report.A, "empty prompt: alignment skipped")
	assert.FileExists(t, filepath.Join(dir, "out", "one", "report.json"))
	_, errOut, code = run(t, "assess", "--batch", list, "--image", img, "--out", dir)
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "excludes")
}

func TestRefineCLI(t *testing.T) {
	requireORT(t)
	dir := t.TempDir()
	img := filepath.Join("..", "..", "testdata", "images", "sample.png")
	out, errOut, code := run(t, "refine", "--image", img, "--prompt", "a red apple on a wooden table", "--out", dir,
		"--long-side", "64", "--steps1", "2", "--steps2", "2", "--quiet", "--save-maps")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "refined:")
	for _, f := range []string{"refined.png", "report.json", "p_map.png", "mask.png"} {
		assert.FileExists(t, filepath.Join(dir, f))
	}
	var rep map[string]any
	b, err := os.ReadFile(filepath.Join(dir, "report.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &rep))
	assert.Contains(t, rep, "refine")
	assert.Contains(t, rep, "q")
	// A small image is refused with a clear error and no output.
	small := filepath.Join(dir, "small.png")
	_, _, code = run(t, "assess", "--image", img, "--prompt", "", "--out", filepath.Join(dir, "x"), "--no-maps")
	require.Equal(t, 0, code)
	require.NoError(t, os.WriteFile(small, mustPNG(t, 32, 32), 0o644))
	out2 := filepath.Join(dir, "small-out")
	_, errOut, code = run(t, "refine", "--image", small, "--prompt", "a cat", "--out", out2, "--quiet")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "too small")
	assert.NoFileExists(t, filepath.Join(out2, "refined.png"))
	_, errOut, code = run(t, "refine", "--image", img, "--prompt", "x", "--out", out2, "--long-side", "1024")
	assert.Equal(t, 2, code, "tiny models at 1024 would need tens of GB: refused, not killed")
	assert.Contains(t, errOut, "tiny model set")
	_, errOut, code = run(t, "refine", "--image", img, "--prompt", "x", "--out", out2, "--steps1", "0")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "steps")
}

func mustPNG(t *testing.T, w, h int) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "x.png")
	require.NoError(t, imageio.WritePNG(p, imageio.NewRGB8(w, h).Image()))
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return b
}

// TestAssessDeviceCUDA: without a GPU, --device cuda is a clear error (exit 69) and writes
// nothing; with one it produces the same report files as the cpu device.
func TestAssessDeviceCUDA(t *testing.T) {
	requireORT(t)
	dir := t.TempDir()
	img := filepath.Join("..", "..", "testdata", "images", "sample.png")
	_, errOut, code := run(t, "--device", "cuda", "assess", "--image", img, "--prompt", "a cat", "--out", dir)
	if d, err := cuda.Open(cuda.Options{}); err != nil {
		assert.Equal(t, 69, code, errOut)
		assert.Contains(t, errOut, "engine: unavailable", "says why: no ONNX Runtime GPU build or no GPU")
		assert.NoFileExists(t, filepath.Join(dir, "report.json"))
	} else {
		d.Close()
		require.Equal(t, 0, code, errOut)
		assert.FileExists(t, filepath.Join(dir, "report.json"))
	}
	_, errOut, code = run(t, "--device", "tpu", "assess", "--image", img, "--prompt", "a cat", "--out", dir)
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "bad --device")
}

// TestRefineHighQualityPassThrough: end to end, an image the (tiny) PQ model rates good
// everywhere gets an empty mask from assess, stage 1 is skipped and the output equals the
// input byte for byte (stage 2 off to isolate stage 1).
func TestRefineHighQualityPassThrough(t *testing.T) {
	requireORT(t)
	dir := t.TempDir()
	hq := filepath.Join("..", "..", "testdata", "goldens", "quality", "hq.png")
	out, errOut, code := run(t, "refine", "--image", hq, "--prompt", "a cup", "--out", dir, "--skip-stage2", "--quiet")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "stage 1: skipped (empty mask")
	in, err := imageio.ReadFile(hq, imageio.DefaultLimits)
	require.NoError(t, err)
	got, err := imageio.ReadFile(filepath.Join(dir, "refined.png"), imageio.DefaultLimits)
	require.NoError(t, err)
	assert.Equal(t, in.Pix, got.Pix)
}

// TestMapsReadBack: the binary mask and the .npy maps on disk equal the pipeline's
// in-memory result for the same inputs.
func TestMapsReadBack(t *testing.T) {
	requireORT(t)
	dir := t.TempDir()
	img := filepath.Join("..", "..", "testdata", "images", "sample.png")
	prompt := "Mr. Beans wearing sun glasses with blue doctor suit and stripe tie"
	_, errOut, code := run(t, "assess", "--image", img, "--prompt", prompt, "--out", dir, "--save-maps")
	require.Equal(t, 0, code, errOut)

	p, err := pipeline.Open(context.Background(), pipeline.Config{Models: tiny, AssessOnly: true})
	require.NoError(t, err)
	defer p.Close()
	in, err := imageio.ReadFile(img, imageio.DefaultLimits)
	require.NoError(t, err)
	a, err := p.Assess(context.Background(), pipeline.Request{Image: in, Prompt: prompt})
	require.NoError(t, err)

	for name, want := range map[string][]float32{"p_map.npy": a.PMap, "a_map.npy": a.AMap, "mask.npy": a.Mask} {
		arr, err := npy.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err, name)
		assert.Equal(t, []int64{int64(in.H), int64(in.W)}, arr.Shape, name)
		assert.Equal(t, want, arr.F32, name)
	}
	for name, want := range map[string][]float32{"mask.png": a.Mask, "p_mask.png": a.PerceptualMask, "a_mask.png": a.AlignMask} {
		f, err := os.Open(filepath.Join(dir, name))
		require.NoError(t, err)
		m, err := png.Decode(f)
		f.Close()
		require.NoError(t, err, name)
		g, ok := m.(*image.Gray)
		require.True(t, ok, "%s is 8-bit grayscale, got %T", name, m)
		require.Equal(t, image.Rect(0, 0, in.W, in.H), g.Bounds(), name)
		ones := 0
		for i, v := range want {
			exp := uint8(0)
			if v >= 0.5 {
				exp, ones = 255, ones+1
			}
			require.Equal(t, exp, g.Pix[i], "%s pixel %d", name, i)
		}
		t.Logf("%s: %d of %d pixels set", name, ones, len(want))
	}
	var rep struct {
		MaskFraction float64 `json:"mask_fraction"`
		Input        struct {
			PixelSHA256 string `json:"pixel_sha256"`
		}
		File struct {
			FileSHA256 string `json:"file_sha256"`
		}
		Params pipeline.Params
		Setup  pipeline.Setup
	}
	b, err := os.ReadFile(filepath.Join(dir, "report.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &rep))
	assert.InDelta(t, a.MaskFraction, rep.MaskFraction, 1e-7)
	assert.Equal(t, a.Input.PixelSHA256, rep.Input.PixelSHA256)
	assert.Len(t, rep.File.FileSHA256, 64)
	assert.Equal(t, p.DefaultParams(), rep.Params, "the report carries every setting used")
	assert.Equal(t, "ort", rep.Setup.Backend)
}

// TestRefineBatch refines a JSONL of several images in one process (one model load), one
// sub-folder per id, and each equals the single refine of the same inputs.
func TestRefineBatch(t *testing.T) {
	requireORT(t)
	dir := t.TempDir()
	src, err := imageio.ReadFile(filepath.Join("..", "..", "testdata", "images", "sample.png"), imageio.DefaultLimits)
	require.NoError(t, err)
	for i, size := range [][2]int{{96, 64}, {64, 80}} {
		require.NoError(t, imageio.WritePNG(filepath.Join(dir, fmt.Sprintf("in%d.png", i)), imageio.ResizeBicubicPIL(src, size[0], size[1]).Image()))
	}
	list := filepath.Join(dir, "list.jsonl")
	require.NoError(t, os.WriteFile(list, []byte(`{"image": "in0.png", "prompt": "a red cat", "id": "a"}
{"image": "in1.png", "prompt": "a blue dog", "id": "b", "params": {"seed": 5}}
`), 0o644))
	out, errOut, code := run(t, "refine", "--batch", list, "--out", filepath.Join(dir, "out"), "--steps1", "2", "--steps2", "2", "--quiet")
	require.Equal(t, 0, code, errOut)
	assert.Len(t, strings.Split(strings.TrimSpace(out), "\n"), 2)
	for _, c := range []struct{ id, in, prompt, seed string }{{"a", "in0.png", "a red cat", "0"}, {"b", "in1.png", "a blue dog", "5"}} {
		single := filepath.Join(dir, "single-"+c.id)
		_, errOut, code := run(t, "refine", "--image", filepath.Join(dir, c.in), "--prompt", c.prompt, "--out", single,
			"--steps1", "2", "--steps2", "2", "--seed", c.seed, "--quiet")
		require.Equal(t, 0, code, errOut)
		want, err := os.ReadFile(filepath.Join(single, "refined.png"))
		require.NoError(t, err)
		got, err := os.ReadFile(filepath.Join(dir, "out", c.id, "refined.png"))
		require.NoError(t, err)
		assert.Equal(t, want, got, "batch job %s equals the single refine", c.id)
	}
}
