package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"

	"github.com/grefine/grefine/internal/testkit/testenv"
	"github.com/grefine/grefine/pipeline"
	"github.com/grefine/grefine/pipeline/imageio"
)

// TestParamFlagsFollowTheTable: assess and refine have one flag per parameter-table
// row (refine all, assess the rows not marked refine-only), of the row's type, and each
// flag's help ends with the row's range and shows its default; `grefine params --json`
// is the table.
func TestParamFlagsFollowTheTable(t *testing.T) {
	for _, cmd := range []*cli.Command{assessCommand(), refineCommand()} {
		flags := map[string]cli.Flag{}
		for _, f := range cmd.Flags {
			flags[f.Names()[0]] = f
		}
		for _, r := range pipeline.ParamTable() {
			f, ok := flags[r.Flag]
			if r.Refine && cmd.Name == "assess" {
				assert.False(t, ok, "assess has no --%s", r.Flag)
				continue
			}
			require.True(t, ok, "%s has --%s", cmd.Name, r.Flag)
			delete(flags, r.Flag)
			help := f.String()
			if r.Kind != pipeline.KindBool {
				assert.Contains(t, help, ", "+r.Range(), "--%s help shows the table's range", r.Flag)
				assert.Contains(t, help, "(default: "+r.Default(pipeline.DefaultParams()), "--%s help shows the default", r.Flag)
			}
			want := map[pipeline.Kind]string{pipeline.KindBool: "*cli.BoolFlag", pipeline.KindInt: "*cli.IntFlag",
				pipeline.KindUint: "*cli.Uint64Flag", pipeline.KindFloat: "*cli.Float64Flag"}[r.Kind]
			assert.Equal(t, want, fmt.Sprintf("%T", f), r.Flag)
		}
		for name := range flags { // the rest are the command's own flags and the limits
			assert.Contains(t, []string{"image", "prompt", "batch", "out", "save-maps", "no-maps", "quiet", "max-pixels", "max-memory",
				"max-timesteps", "max-steps", "max-stage-pixels"}, name, "%s --%s is no parameter of the table", cmd.Name, name)
		}
	}
	out, _, code := run(t, "params", "--json")
	require.Equal(t, 0, code)
	var rows []struct {
		Name, Range, Flag string
		CField            string `json:"c_field"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &rows))
	require.Len(t, rows, len(pipeline.ParamTable()))
	for i, r := range pipeline.ParamTable() {
		assert.Equal(t, []string{r.Name, r.Range(), r.Flag, r.CField}, []string{rows[i].Name, rows[i].Range, rows[i].Flag, rows[i].CField})
	}
	// A value outside a range is refused naming the flag (the table's message).
	_, stderr, code := run(t, "refine", "--image", "x.png", "--prompt", "x", "--out", t.TempDir(), "--long-side", "100")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "--long-side: 100 must be a multiple of 8 in [64, 4096]")
}

// TestREADMEParamTableIsGenerated: the README's parameter table is `grefine params`.
func TestREADMEParamTableIsGenerated(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	require.NoError(t, err)
	const begin, end = "<!-- grefine params: begin -->\n", "<!-- grefine params: end -->"
	_, rest, ok := strings.Cut(string(b), begin)
	require.True(t, ok, "README has the %q marker", begin)
	table, _, ok := strings.Cut(rest, end)
	require.True(t, ok)
	var want bytes.Buffer
	require.NoError(t, writeParamsMarkdown(&want))
	assert.Equal(t, want.String(), table, "README's table is stale: paste `grefine params` between the markers")
}

// TestRangesWrittenOnlyInTheTable: no front end (nor the pipeline's own files) compares
// a parameter with a number of its own: ranges live in pipeline.ParamTable only.
func TestRangesWrittenOnlyInTheTable(t *testing.T) {
	var fields []string
	for _, r := range pipeline.ParamTable() {
		fields = append(fields, r.Field)
	}
	// A comparison with a number other than 0 (0 marks "unset" or "off": Strength1 > 0).
	cmp := regexp.MustCompile(`\.(` + strings.Join(fields, "|") + `)\s*(<|>|<=|>=|==|!=)\s*-?([1-9]|0\.)`)
	root := filepath.Join("..", "..")
	var dirs []string
	for _, d := range []string{"cmd/grefine", "cmd/libgrefine", "server", "bench", "pipeline"} {
		dirs = append(dirs, filepath.Join(root, d))
	}
	checked := 0
	for _, d := range dirs {
		ents, err := os.ReadDir(d)
		require.NoError(t, err)
		for _, e := range ents {
			if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") || e.Name() == "params.go" {
				continue
			}
			b, err := os.ReadFile(filepath.Join(d, e.Name()))
			require.NoError(t, err)
			checked++
			for i, line := range strings.Split(string(b), "\n") {
				assert.False(t, cmp.MatchString(line), "%s/%s:%d compares a parameter with a number: %s", d, e.Name(), i+1, strings.TrimSpace(line))
			}
		}
	}
	assert.Greater(t, checked, 20)
}

// TestOutputsNeverTouchUserFiles (issue 20): an input inside --out named like an
// output is refused, not deleted or overwritten; a user's own files of those names in
// --out are never deleted or replaced; grefine's own files still are.
func TestOutputsNeverTouchUserFiles(t *testing.T) {
	requireORT(t)
	m := []string{"--models", tiny, "--log-level", "error", "--hash-cache", ""}
	sample, err := os.ReadFile(filepath.Join("..", "..", "testdata", "images", "sample.png"))
	require.NoError(t, err)
	for _, name := range []string{"overlay.png", "refined.png", "mask.png"} {
		dir := t.TempDir()
		in := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(in, sample, 0o644))
		for _, cmd := range []string{"assess", "refine"} {
			args := append(append([]string{}, m...), cmd, "--image", in, "--prompt", "a cat", "--out", dir)
			if cmd == "refine" {
				args = append(args, "--steps1", "1", "--steps2", "1")
			}
			_, stderr, code := runFull(t, args...)
			assert.Equal(t, 2, code, "%s with its input %s in --out: %s", cmd, name, stderr)
			assert.Contains(t, stderr, "which this run writes", name)
			got, err := os.ReadFile(in)
			require.NoError(t, err, "%s: the input %s is still there", cmd, name)
			assert.Equal(t, sample, got, "%s: the input %s is unchanged", cmd, name)
		}
	}
	// A user's own files in a fresh --out: refused, kept.
	dir := t.TempDir()
	user := map[string]string{"overlay.png": "my overlay", "p_map.npy": "my map"}
	for n, c := range user {
		require.NoError(t, os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644))
	}
	img := filepath.Join("..", "..", "testdata", "images", "sample.png")
	for _, extra := range [][]string{nil, {"--no-maps"}, nil} {
		_, stderr, code := runFull(t, append(append(m, "assess", "--image", img, "--prompt", "a cat", "--out", dir), extra...)...)
		assert.Equal(t, 2, code, stderr)
		assert.Contains(t, stderr, "which grefine did not write")
	}
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, ents, len(user), "refused runs leave the folder as they found it")
	for n, c := range user {
		got, err := os.ReadFile(filepath.Join(dir, n))
		require.NoError(t, err, "%s kept", n)
		assert.Equal(t, c, string(got))
	}
	// grefine's own files are replaced and removed as before; a file it wrote but the
	// user changed is not grefine's any more.
	own := t.TempDir()
	_, stderr, code := runFull(t, append(m, "assess", "--image", img, "--prompt", "a cat", "--out", own, "--save-maps")...)
	require.Equal(t, 0, code, stderr)
	assert.FileExists(t, filepath.Join(own, "p_map.npy"))
	_, stderr, code = runFull(t, append(m, "assess", "--image", img, "--prompt", "a cat", "--out", own)...)
	require.Equal(t, 0, code, stderr)
	assert.NoFileExists(t, filepath.Join(own, "p_map.npy"), "grefine's own file of the earlier run is removed")
	require.NoError(t, os.WriteFile(filepath.Join(own, "overlay.png"), []byte("edited"), 0o644))
	_, stderr, code = runFull(t, append(m, "assess", "--image", img, "--prompt", "a cat", "--out", own)...)
	assert.Equal(t, 2, code, stderr)
	got, _ := os.ReadFile(filepath.Join(own, "overlay.png"))
	assert.Equal(t, "edited", string(got))
}

// child starts the CLI (runMain, with its signal handling) in a child process.
func child(t *testing.T, args ...string) (*exec.Cmd, *testenv.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildMain$")
	cmd.Env = append(os.Environ(), "GREFINE_CHILD=1", "GREFINE_CHILD_ARGS="+strings.Join(args, "\x1f"))
	stderr := &testenv.Buffer{}
	cmd.Stderr, cmd.Stdout = stderr, io.Discard
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	return cmd, stderr
}

// batchFile writes a JSONL batch of n jobs on the sample.
func batchFile(t *testing.T, dir string, n int) string {
	img, err := filepath.Abs(filepath.Join("..", "..", "testdata", "images", "sample.png"))
	require.NoError(t, err)
	var lines strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&lines, `{"image": %q, "prompt": "a red cat number %d"}`+"\n", img, i)
	}
	list := filepath.Join(dir, "list.jsonl")
	require.NoError(t, os.WriteFile(list, []byte(lines.String()), 0o644))
	return list
}

// TestKilledAndInterruptedRunsLeaveNothing (issue 20): a SIGKILLed run leaves its
// staging folder, which the next run removes; an interrupted (SIGINT) run that created
// --out leaves no --out, even when it had committed jobs of its batch.
func TestKilledAndInterruptedRunsLeaveNothing(t *testing.T) {
	requireORT(t)
	if os.Getenv("GREFINE_CHILD") == "1" {
		return
	}
	dir := t.TempDir()
	list := batchFile(t, dir, 400)
	models, _ := filepath.Abs(tiny)
	base := []string{"--models", models, "--hash-cache", "", "--log-level", "error"}
	waitFor := func(out string, what func([]os.DirEntry) bool) {
		require.Eventually(t, func() bool { ents, _ := os.ReadDir(out); return what(ents) }, 60*time.Second, 20*time.Millisecond)
	}
	has := func(prefix string) func([]os.DirEntry) bool {
		return func(ents []os.DirEntry) bool {
			for _, e := range ents {
				if strings.HasPrefix(e.Name(), prefix) {
					return true
				}
			}
			return false
		}
	}

	out := filepath.Join(dir, "killed")
	cmd, _ := child(t, append(base, "assess", "--batch", list, "--out", out, "--quiet", "--no-maps")...)
	waitFor(out, has("line-0002")) // running, with jobs committed
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_, _ = cmd.Process.Wait()
	ents, _ := os.ReadDir(out)
	require.True(t, has(".staging-")(ents), "a SIGKILLed run leaves its staging folder")
	one := batchFile(t, filepath.Join(dir), 1)
	_, stderr, code := runFull(t, append(base, "assess", "--batch", one, "--out", out, "--quiet", "--no-maps")...)
	require.Equal(t, 0, code, stderr)
	ents, _ = os.ReadDir(out)
	assert.False(t, has(".staging-")(ents), "the next run removed the killed run's staging folder")

	list = batchFile(t, dir, 400)
	for _, signals := range []int{1, 2} {
		out := filepath.Join(dir, fmt.Sprintf("fresh-%d", signals), "nested", "out")
		cmd, stderr := child(t, append(base, "assess", "--batch", list, "--out", out, "--quiet", "--no-maps")...)
		waitFor(out, has("line-0002"))
		for i := 0; i < signals; i++ {
			require.NoError(t, cmd.Process.Signal(os.Interrupt))
			time.Sleep(20 * time.Millisecond)
		}
		err := cmd.Wait()
		ee, ok := err.(*exec.ExitError)
		require.True(t, ok, "%v: %s", err, stderr)
		assert.Equal(t, 130, ee.ExitCode())
		assert.NoDirExists(t, filepath.Join(dir, fmt.Sprintf("fresh-%d", signals)), "%d signal(s): the --out it created (and its parents) are gone", signals)
	}
}

// freeAddr is a free loopback address.
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// startServe runs `grefine serve` in a child process and waits until it is ready.
func startServe(t *testing.T, flags ...string) (*exec.Cmd, *testenv.Buffer, string) {
	t.Helper()
	models, _ := filepath.Abs(tiny)
	addr := freeAddr(t)
	cmd, stderr := child(t, append([]string{"--models", models, "--hash-cache", "", "serve", "--addr", addr}, flags...)...)
	url := "http://" + addr
	waitReady(t, url, stderr)
	return cmd, stderr, url
}

// waitReady waits until the server at url is ready (log: what to show if it never is).
func waitReady(t *testing.T, url string, log fmt.Stringer) {
	t.Helper()
	require.Eventually(t, func() bool {
		resp, err := http.Get(url + "/v2/health/ready")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	}, 90*time.Second, 50*time.Millisecond, "serve came up: %s", log)
}

// multipartBody is a refine/assess form.
func multipartBody(t *testing.T, img []byte, fields map[string]string) (*bytes.Buffer, string) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	fw, err := mw.CreateFormFile("image", "in.png")
	require.NoError(t, err)
	_, _ = fw.Write(img)
	for k, v := range fields {
		require.NoError(t, mw.WriteField(k, v))
	}
	require.NoError(t, mw.Close())
	return &b, mw.FormDataContentType()
}

func post(url string, body io.Reader, ct string, header ...string) (int, []byte, error) {
	req, err := http.NewRequest("POST", url, body)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", ct)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func smallPNG(t *testing.T) []byte {
	img, err := imageio.ReadFile(filepath.Join("..", "..", "testdata", "images", "sample.png"), imageio.DefaultLimits)
	require.NoError(t, err)
	var b bytes.Buffer
	require.NoError(t, imageio.EncodePNG(&b, imageio.ResizeBicubicPIL(img, 96, 64)))
	return b.Bytes()
}

// concurrently sends n requests at once and counts their status codes (a request that
// gets no answer fails the test).
func concurrently(t *testing.T, n int, send func(i int) (int, []byte, error)) map[int]int {
	var wg sync.WaitGroup
	codes := make(chan int, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, b, err := send(i)
			if err != nil {
				t.Errorf("request %d: %v", i, err)
				return
			}
			if code != http.StatusOK {
				t.Logf("request %d: %d %s", i, code, bytes.TrimSpace(b))
			}
			codes <- code
		}()
	}
	wg.Wait()
	close(codes)
	count := map[int]int{}
	for c := range codes {
		count[c]++
	}
	return count
}

// vmHWM is a process's peak resident set size in bytes (/proc/PID/status).
func vmHWM(t *testing.T, pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			require.NoError(t, err)
			return kb << 10
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

// TestServeDrainsOnSIGTERM (issue 20): SIGTERM during a refine of about 5 s: the client
// gets its 200 and `grefine serve` exits 0 (the one-second forced exit is for one-shot
// commands only).
func TestServeDrainsOnSIGTERM(t *testing.T) {
	requireORT(t)
	if os.Getenv("GREFINE_CHILD") == "1" {
		return
	}
	cmd, stderr, url := startServe(t, "--drain-timeout", "120s")
	// Calibrate: a refine of n steps per stage, n chosen so that it takes about 5 s.
	body, ct := multipartBody(t, smallPNG(t), map[string]string{"prompt": "a red cat", "steps1": "8", "steps2": "8", "strength1": "1"})
	t0 := time.Now()
	code, b, err := post(url+"/v1/refine", body, ct, "Accept", "image/png")
	require.NoError(t, err)
	require.Equal(t, 200, code, "%s", b)
	per := time.Since(t0) / 16
	n := max(8, min(1000, int(5*time.Second/per/2)))
	t.Logf("%v per step: %d steps per stage for about 5 s", per, n)

	body, ct = multipartBody(t, smallPNG(t), map[string]string{"prompt": "a red cat", "steps1": strconv.Itoa(n), "steps2": strconv.Itoa(n), "strength1": "1"})
	type res struct {
		code int
		b    []byte
		err  error
	}
	out := make(chan res, 1)
	go func() {
		c, b, err := post(url+"/v1/refine", body, ct, "Accept", "image/png", "X-Request-Id", "long")
		out <- res{c, b, err}
	}()
	require.Eventually(t, func() bool {
		resp, err := http.Get(url + "/v1/requests/long")
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return strings.Contains(string(b), `"stage1"`)
	}, 60*time.Second, 10*time.Millisecond)
	time.Sleep(time.Second)
	t1 := time.Now()
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	r := <-out
	require.NoError(t, r.err, "the client gets an answer: %s", stderr)
	assert.Equal(t, 200, r.code, "%s", r.b)
	_, err = png.Decode(bytes.NewReader(r.b))
	assert.NoError(t, err, "the refined image")
	err = cmd.Wait()
	assert.NoError(t, err, "serve exits 0 after the drain: %s", stderr)
	t.Logf("answered and exited %v after SIGTERM", time.Since(t1).Round(time.Millisecond))
	assert.Contains(t, stderr.String(), `"message":"drained"`)
}

// rgba16PNG is a w×h 16-bit RGBA PNG (compresses well, decodes to w·h·8 bytes).
func rgba16PNG(t *testing.T, w, h int) []byte {
	m := image.NewNRGBA64(image.Rect(0, 0, w, h))
	for y := 0; y < h; y += 64 {
		for x := 0; x < w; x++ {
			m.SetNRGBA64(x, y, color.NRGBA64{R: 0xffff, A: 0x8000})
		}
	}
	var b bytes.Buffer
	require.NoError(t, (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&b, m))
	return b.Bytes()
}

// TestServeSurvivesHostileRequests (issue 20): strength2=1e-9 is a 400 and the server
// lives; six concurrent 4096² 16-bit RGBA images against --slots 1 --queue 2: three are
// 429 at once (admission before decoding), three are refused from their headers, and
// the server's peak RSS stays far below one such decode per request.
func TestServeSurvivesHostileRequests(t *testing.T) {
	requireORT(t)
	if os.Getenv("GREFINE_CHILD") == "1" {
		return
	}
	big := rgba16PNG(t, 4096, 4096)
	t.Logf("4096² 16-bit RGBA PNG: %d bytes, %d MiB decoded", len(big), 4096*4096*8>>20)
	cmd, stderr, url := startServe(t, "--slots", "1", "--queue", "2", "--max-memory", "0.25")
	for _, s := range []string{"1e-9", "5e-324"} {
		body, ct := multipartBody(t, smallPNG(t), map[string]string{"prompt": "cat", "strength2": s})
		code, b, err := post(url+"/v1/refine", body, ct)
		require.NoError(t, err, "the server answers: %s", stderr)
		assert.Equal(t, 400, code, "%s", b)
		assert.Contains(t, string(b), "scheduler timesteps")
	}
	resp, err := http.Get(url + "/v2/health/live")
	require.NoError(t, err, "the server lives: %s", stderr)
	resp.Body.Close()

	sixBig := func() map[int]int {
		return concurrently(t, 6, func(i int) (int, []byte, error) {
			js, _ := json.Marshal(map[string]any{"image": base64.StdEncoding.EncodeToString(big), "prompt": "a cat"})
			return post(url+"/v1/assess", bytes.NewReader(js), "application/json")
		})
	}
	// Free places: each is refused from its header (its work exceeds --max-memory).
	assert.Equal(t, map[int]int{400: 6}, sixBig())
	// The slot and the queue taken by three long refines: each is 429 before decoding.
	var long []<-chan int
	for i := 0; i < 3; i++ {
		body, ct := multipartBody(t, smallPNG(t), map[string]string{"prompt": "cat", "steps1": "500", "steps2": "500", "strength1": "1", "strength2": "1"})
		c := make(chan int, 1)
		long = append(long, c)
		go func() {
			code, _, _ := post(url+"/v1/refine", body, ct, "X-Request-Id", fmt.Sprint("long-", i))
			c <- code
		}()
		require.Eventually(t, func() bool {
			resp, err := http.Get(url + "/v1/requests/long-" + fmt.Sprint(i))
			if err == nil {
				resp.Body.Close()
			}
			return err == nil && resp.StatusCode == 200
		}, 30*time.Second, 10*time.Millisecond)
	}
	assert.Equal(t, map[int]int{429: 6}, sixBig())
	for i := range long {
		req, _ := http.NewRequest("DELETE", url+"/v1/requests/long-"+fmt.Sprint(i), nil)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
	}
	for _, c := range long {
		assert.Equal(t, 499, <-c)
	}
	hwm := vmHWM(t, cmd.Process.Pid)
	t.Logf("serve peak RSS %d MiB", hwm>>20)
	assert.Less(t, hwm, int64(512<<20), "no request decoded its 512 MiB image")
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	assert.NoError(t, cmd.Wait(), "%s", stderr)
}

// maxWorkRSSBound is the peak RSS bound README states for TestServeUnderMaxWork's
// configuration (README, Request parameters and limits).
func maxWorkRSSBound(t *testing.T) int64 {
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	require.NoError(t, err)
	flat := strings.Join(strings.Fields(string(b)), " ")
	m := regexp.MustCompile(`20 concurrent requests that each ask for the most work these limits allow.*?stays below (\d+) MiB`).FindStringSubmatch(flat)
	require.NotNil(t, m, "README states the bound")
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n << 20
}

// maxWorkFlags are the limits of TestServeUnderMaxWork (README repeats them).
var maxWorkFlags = []string{"--slots", "2", "--queue", "18", "--max-steps", "8", "--max-stage-pixels", "16384",
	"--max-memory", "0.5", "--decode-memory", "0.25", "--timeout", "10m"}

// TestServeUnderMaxWork (issue 20 acceptance): `grefine serve` under 20 concurrent
// requests that each ask for the most work its limits allow (the largest image, every
// step, the longest schedules, the largest working sizes) answers every one without a
// 5xx, survives, and its peak RSS stays below the bound README states.
func TestServeUnderMaxWork(t *testing.T) {
	requireORT(t)
	if os.Getenv("GREFINE_CHILD") == "1" {
		return
	}
	cmd, stderr, url := startServe(t, maxWorkFlags...)
	// 128² is the largest input of 16384 pixels; a 16-bit RGBA PNG decodes largest.
	m := image.NewNRGBA64(image.Rect(0, 0, 128, 128))
	for i := range m.Pix {
		m.Pix[i] = byte(i * 31)
	}
	var img bytes.Buffer
	require.NoError(t, png.Encode(&img, m))
	// 4 + 4 steps; strength 4/10000 gives schedules of 10000 timesteps (the limit);
	// long_side 128 makes stage 1 work at 128² too.
	fields := map[string]string{"prompt": "a red cat on a blue mat", "steps1": "4", "steps2": "4",
		"strength1": "0.0004", "strength2": "0.0004", "long_side": "128", "seed": "1"}
	body, ct := multipartBody(t, img.Bytes(), fields)
	t1 := time.Now()
	code, b, err := post(url+"/v1/refine", bytes.NewReader(body.Bytes()), ct)
	require.NoError(t, err)
	require.Equal(t, 200, code, "the most work the limits allow is allowed: %s", b)
	t.Logf("one max-work refine alone: %v", time.Since(t1).Round(time.Millisecond))
	fields["steps2"] = "5"
	over, oct := multipartBody(t, img.Bytes(), fields)
	code, b, err = post(url+"/v1/refine", over, oct)
	require.NoError(t, err)
	require.Equal(t, 400, code, "one more step is refused: %s", b)

	t0 := time.Now()
	count := concurrently(t, 20, func(int) (int, []byte, error) {
		return post(url+"/v1/refine", bytes.NewReader(body.Bytes()), ct, "Accept", "image/png")
	})
	hwm := vmHWM(t, cmd.Process.Pid)
	t.Logf("20 max-work refines: %v in %v; serve peak RSS %d MiB", count, time.Since(t0).Round(time.Second), hwm>>20)
	assert.Equal(t, map[int]int{200: 20}, count, "every request answered 200")
	assert.Less(t, hwm, maxWorkRSSBound(t), "peak RSS below README's bound")
	resp, err := http.Get(url + "/v2/health/live")
	require.NoError(t, err, "serve survives")
	resp.Body.Close()
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	assert.NoError(t, cmd.Wait(), "%s", stderr)
}
