package main

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/engine/trt/emutest"
	"github.com/grefine/grefine/pipeline/imageio"
)

// runFull runs the CLI as main does (argument limits, flag hoisting, exit mapping).
func runFull(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := runApp(context.Background(), append([]string{"grefine"}, args...), &out, &errb)
	return out.String(), errb.String(), code
}

func writePNG(t *testing.T, path string, w, h int) string {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = byte(i * 7)
	}
	require.NoError(t, png.Encode(f, img))
	require.NoError(t, f.Close())
	return path
}

// TestCLIDefectMatrix: every case of the CLI review (issue 9), as exit status, the
// stderr line, and no files left behind.
func TestCLIDefectMatrix(t *testing.T) {
	requireORT(t)
	dir := t.TempDir()
	img := filepath.Join("..", "..", "testdata", "images", "sample.png")
	corrupt := filepath.Join(dir, "corrupt.png")
	require.NoError(t, os.WriteFile(corrupt, append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{1}, 64)...), 0o644))
	one := writePNG(t, filepath.Join(dir, "one.png"), 1, 1)
	thin := writePNG(t, filepath.Join(dir, "thin.png"), 8, 4000)
	huge := strings.Repeat("x", 30000)
	m := []string{"--models", tiny, "--log-level", "error", "--hash-cache", ""}
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"unquoted prompt", append(m, "assess", "--out", filepath.Join(dir, "out-unquoted-prompt"), "--image", img, "--prompt", "a", "red", "cat"), 2, `unexpected argument(s) "red" "cat"`},
		{"unquoted prompt, flags after", append(m, "assess", "--image", img, "--prompt", "a", "red", "cat"), 2, `unexpected argument(s) "red" "cat"`},
		{"out is a file", append(m, "refine", "--image", img, "--prompt", "x"), 2, "is not a directory"},
		{"out under a file", append(m, "refine", "--image", img, "--prompt", "x"), 2, "not a directory"},
		{"unknown flag", append(m, "assess", "--bogus"), 2, "flag provided but not defined: -bogus"},
		{"unknown command", append(m, "asess"), 2, `unknown command "asess"`},
		{"missing required flag", append(m, "assess", "--image", img, "--prompt", "x"), 2, "--out DIR is required"},
		{"negative seed", append(m, "refine", "--image", img, "--prompt", "x", "--seed", "-1"), 2, "invalid value"},
		{"seed abc", append(m, "refine", "--image", img, "--prompt", "x", "--seed", "abc"), 2, "invalid value"},
		{"bogus backend", append([]string{"--backend", "bogus"}, append(m, "assess", "--image", img, "--prompt", "x")...), 2, `bad --backend "bogus"`},
		{"30 kB argument", []string{"doctor", huge}, 2, "over the 16384-byte limit"},
		{"NaN guidance", append(m, "refine", "--image", img, "--prompt", "x", "--guidance1", "NaN"), 2, "--guidance1: NaN is not a finite number"},
		{"NaN bound", append(m, "assess", "--image", img, "--prompt", "x", "--perceptual-bound", "NaN"), 2, "--perceptual-bound: NaN"},
		{"negative align bound", append(m, "assess", "--image", img, "--prompt", "x", "--align-bound", "-5"), 2, "--align-bound: -5 is out of range"},
		{"negative threads", append(m, "--threads", "-4", "assess", "--image", img, "--prompt", "x"), 2, "--threads -4 is out of range"},
		{"huge threads", append(m, "--threads", "100000", "assess", "--image", img, "--prompt", "x"), 2, "--threads 100000 is out of range"},
		{"1x1 image", append(m, "assess", "--image", one, "--prompt", "x"), 2, "1x1 is too small (at least 64 px"},
		{"8x4000 image", append(m, "assess", "--image", thin, "--prompt", "x"), 2, "8x4000 is too small"},
		{"corrupt png", append(m, "assess", "--image", corrupt, "--prompt", "x"), 2, "cannot decode image"},
		{"missing file", append(m, "assess", "--image", filepath.Join(dir, "nope.png"), "--prompt", "x"), 2, "cannot read image: open "},
		{"no models", []string{"--hash-cache", "", "assess", "--image", img, "--prompt", "x"}, 2, "no model set given: pass --models DIR"},
		{"plans build unknown engine", []string{"--models", tiny, "--trt-lib", emutest.Lib(), "plans", "build", "--only", "nosuch"}, 2, `no spec named "nosuch"`},
		{"trt library hint", []string{"--models", tiny, "--trt-lib", "", "plans", "build"}, 69, "--trt-lib FILE"},
		{"tiny set at 1024", append(m, "refine", "--image", img, "--prompt", "x", "--long-side", "1024"), 2, "tiny model set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, "out-"+strings.ReplaceAll(tc.name, " ", "-"))
			args := append([]string{}, tc.args...)
			switch tc.name {
			case "out is a file":
				args = append(args, "--out", "/etc/passwd")
			case "out under a file":
				args = append(args, "--out", "/etc/passwd/x")
			case "missing required flag", "unquoted prompt":
			case "trt library hint": // no shim where GRF_TRT_LIB points, even after make setup-trt
				t.Setenv("GRF_TRT_LIB", filepath.Join(dir, "no-libgrefine_trt.so"))
				args = append(args, "--out", out)
			default:
				args = append(args, "--out", out)
			}
			t0 := time.Now()
			stdout, stderr, code := runFull(t, args...)
			t.Logf("%s: exit %d in %v: %s", tc.name, code, time.Since(t0).Round(time.Millisecond), strings.TrimSpace(stderr))
			assert.Equal(t, tc.code, code, stderr)
			assert.Contains(t, stderr, tc.stderr)
			assert.True(t, strings.HasPrefix(stderr, "grefine: "), "one line starting grefine:")
			assert.LessOrEqual(t, strings.Count(strings.TrimSpace(stderr), "\n"), 1, "a message and at most a hint")
			assert.NotContains(t, stdout, "USAGE:", "no help unless asked")
			assert.NotContains(t, stderr, "png: png:", "no repeated prefix")
			assert.NoDirExists(t, out, "nothing left behind")
		})
	}
	// Help only when asked for, on stdout, with readable defaults and every flag described.
	stdout, _, code := runFull(t, "refine", "--help")
	assert.Equal(t, 0, code)
	assert.Contains(t, stdout, "100/255")
	assert.NotContains(t, stdout, "0.3921568")
	assert.Regexp(t, `--skip-stage1 +do not run stage 1`, stdout)
	assert.Regexp(t, `--skip-stage2 +do not run stage 2`, stdout)
	// Global flags after the command work.
	out := filepath.Join(dir, "after")
	_, stderr, code := runFull(t, "assess", "--models", tiny, "--log-level", "error", "--image", img, "--prompt", "a red cat", "--out", out, "--no-maps")
	assert.Equal(t, 0, code, stderr)
	assert.FileExists(t, filepath.Join(out, "report.json"))
	// parse says when nothing is left.
	for _, p := range []string{"!!!", "a"} {
		stdout, _, code := runFull(t, "parse", p)
		assert.Equal(t, 0, code)
		assert.Contains(t, stdout, "no parts", p)
	}
}

func TestOutDirOwnership(t *testing.T) {
	requireORT(t)
	dir := t.TempDir()
	img := filepath.Join("..", "..", "testdata", "images", "sample.png")
	out := filepath.Join(dir, "out")
	m := []string{"--models", tiny, "--log-level", "error", "--hash-cache", ""}
	_, stderr, code := runFull(t, append(m, "assess", "--image", img, "--prompt", "a red cat", "--out", out)...)
	require.Equal(t, 0, code, stderr)
	assert.FileExists(t, filepath.Join(out, "a_map.png"))
	// An empty-prompt run owns the directory afterwards: no stale alignment files.
	_, stderr, code = runFull(t, append(m, "assess", "--image", img, "--prompt", "", "--out", out)...)
	require.Equal(t, 0, code, stderr)
	assert.NoFileExists(t, filepath.Join(out, "a_map.png"))
	assert.NoFileExists(t, filepath.Join(out, "a_mask.png"))
	assert.FileExists(t, filepath.Join(out, "p_map.png"))
	ents, err := os.ReadDir(out)
	require.NoError(t, err)
	for _, e := range ents {
		assert.False(t, strings.HasPrefix(e.Name(), ".staging-"), "staging removed")
	}
	// A second run while one holds the directory is refused (busy), and writes nothing.
	f, err := os.OpenFile(filepath.Join(out, ".grefine.lock"), os.O_RDWR, 0)
	require.NoError(t, err)
	require.NoError(t, syscall.Flock(int(f.Fd()), syscall.LOCK_EX))
	before, _ := os.ReadFile(filepath.Join(out, "report.json"))
	_, stderr, code = runFull(t, append(m, "refine", "--image", img, "--prompt", "x", "--out", out)...)
	f.Close()
	assert.Equal(t, 75, code, stderr)
	assert.Contains(t, stderr, "another grefine run is writing into --out")
	after, _ := os.ReadFile(filepath.Join(out, "report.json"))
	assert.Equal(t, before, after)
}

// TestLargeImageRefusedBeforeWork: a 4096² refine on the tiny set runs in tiles within
// the default memory limit (README, Large images; bench/RESULTS.md measures it); under a
// limit even its tiles cannot meet, it is refused with the estimate and what to change
// before any model loads, and nothing is written.
func TestLargeImageRefusedBeforeWork(t *testing.T) {
	dir := t.TempDir()
	big := writePNG(t, filepath.Join(dir, "big.png"), 4096, 4096)
	out := filepath.Join(dir, "out")
	t0 := time.Now()
	_, stderr, code := runFull(t, "--models", tiny, "--hash-cache", "", "refine", "--max-memory", "2", "--image", big, "--prompt", "x", "--out", out)
	t.Logf("refused in %v: %s", time.Since(t0).Round(time.Millisecond), strings.TrimSpace(stderr))
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "stage 2 works at 4096x4096")
	assert.Contains(t, stderr, "memory limit")
	assert.Contains(t, stderr, "refine a smaller image")
	assert.Contains(t, stderr, "--max-memory")
	assert.NoDirExists(t, out)
}

// TestBatchRobustness: a bad line fails alone with its line number; BOM, unknown fields,
// an over-long line; relative paths resolve against the JSONL folder; duplicate ids are
// refused naming both lines.
func TestBatchRobustness(t *testing.T) {
	requireORT(t)
	dir := t.TempDir()
	src, err := imageio.ReadFile(filepath.Join("..", "..", "testdata", "images", "sample.png"), imageio.DefaultLimits)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "imgs"), 0o755))
	require.NoError(t, imageio.WritePNG(filepath.Join(dir, "imgs", "a.png"), imageio.ResizeBicubicPIL(src, 96, 64).Image()))
	list := filepath.Join(dir, "list.jsonl")
	long := `{"image": "imgs/a.png", "prompt": "` + strings.Repeat("y", 1<<20) + `"}`
	content := "\xef\xbb\xbf" + `{"image": "imgs/a.png", "prompt": "a cat", "colour": "red"}
{not json
` + long + `
{"image": "imgs/a.png", "prompt": "a dog", "id": "dog"}
`
	require.NoError(t, os.WriteFile(list, []byte(content), 0o644))
	m := []string{"--models", tiny, "--log-level", "error", "--hash-cache", ""}
	wd, _ := os.Getwd()
	stdout, stderr, code := runFull(t, append(m, "assess", "--batch", list, "--out", filepath.Join(dir, "out"), "--no-maps")...)
	require.Equal(t, wd, func() string { d, _ := os.Getwd(); return d }())
	assert.Equal(t, 1, code, stderr)
	assert.Contains(t, stderr, "2 of 4 images failed")
	rows := strings.Split(strings.TrimSpace(stdout), "\n")
	require.Len(t, rows, 4)
	assert.Contains(t, rows[0], `"status":"ok"`, "BOM and unknown field accepted (relative path resolved against the JSONL folder)")
	assert.Contains(t, rows[1], `"line":2`)
	assert.Contains(t, rows[1], "line 2 is not a JSON object")
	assert.Contains(t, rows[2], "line 3 is longer than 1048576 bytes")
	assert.Contains(t, rows[3], `"id":"dog"`)
	assert.Contains(t, rows[3], `"status":"ok"`)
	assert.FileExists(t, filepath.Join(dir, "out", "line-0001", "report.json"))
	assert.NoDirExists(t, filepath.Join(dir, "out", "line-0002"))

	for name, body := range map[string]string{
		"same id":          `{"image": "imgs/a.png", "prompt": "x", "id": "k"}` + "\n" + `{"image": "imgs/a.png", "prompt": "y", "id": "k"}` + "\n",
		"explicit vs auto": `{"image": "imgs/a.png", "prompt": "x", "id": "line-0002"}` + "\n" + `{"image": "imgs/a.png", "prompt": "y"}` + "\n",
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".jsonl")
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
		_, stderr, code := runFull(t, append(m, "assess", "--batch", p, "--out", filepath.Join(dir, "o-"+name))...)
		assert.Equal(t, 2, code, name)
		assert.Contains(t, stderr, "lines 1 and 2 have the same id", name)
		assert.NoDirExists(t, filepath.Join(dir, "o-"+name))
	}
}

// TestInterrupt runs the CLI in a child process, sends SIGINT during a long assess batch
// and expects exit 130 within a second and no output; a second SIGINT exits at once.
func TestInterrupt(t *testing.T) {
	requireORT(t)
	if os.Getenv("GREFINE_CHILD") == "1" {
		return
	}
	dir := t.TempDir()
	img, err := filepath.Abs(filepath.Join("..", "..", "testdata", "images", "sample.png"))
	require.NoError(t, err)
	var lines strings.Builder
	for i := 0; i < 200; i++ {
		fmt.Fprintf(&lines, `{"image": %q, "prompt": "a red cat number %d"}`+"\n", img, i)
	}
	list := filepath.Join(dir, "list.jsonl")
	require.NoError(t, os.WriteFile(list, []byte(lines.String()), 0o644))
	models, _ := filepath.Abs(tiny)
	out := filepath.Join(dir, "out")
	for _, signals := range []int{1, 2} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestChildMain$")
		cmd.Env = append(os.Environ(), "GREFINE_CHILD=1", "GREFINE_CHILD_ARGS="+strings.Join([]string{"--models", models, "--hash-cache", "", "--log-level", "error",
			"assess", "--batch", list, "--out", out, "--quiet"}, "\x1f"))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		require.NoError(t, cmd.Start())
		time.Sleep(2500 * time.Millisecond) // models loaded, batch running
		t0 := time.Now()
		for i := 0; i < signals; i++ {
			require.NoError(t, cmd.Process.Signal(os.Interrupt))
			time.Sleep(20 * time.Millisecond)
		}
		err := cmd.Wait()
		took := time.Since(t0)
		t.Logf("%d signal(s): exited after %v: %v; %s", signals, took.Round(time.Millisecond), err, strings.TrimSpace(stderr.String()))
		ee, ok := err.(*exec.ExitError)
		require.True(t, ok, "exits non-zero: %v", err)
		assert.Equal(t, 130, ee.ExitCode())
		assert.Less(t, took, 5*time.Second, "exits promptly (the limit is loose: shared CI machines)")
		ents, _ := os.ReadDir(out)
		for _, e := range ents {
			assert.False(t, strings.HasPrefix(e.Name(), ".staging-"), "no staging left")
		}
	}
}

// TestChildMain is the child process of TestInterrupt.
func TestChildMain(t *testing.T) {
	if os.Getenv("GREFINE_CHILD") != "1" {
		t.Skip("skipping: helper process of TestInterrupt, runs only as its child")
	}
	args := append([]string{"grefine"}, strings.Split(os.Getenv("GREFINE_CHILD_ARGS"), "\x1f")...)
	os.Exit(runMain(args, os.Stdout, os.Stderr))
}
