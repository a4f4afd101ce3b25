package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/pipeline"
	"github.com/grefine/grefine/pipeline/imageio"
	"github.com/grefine/grefine/server"
)

func TestAssessMultipartAndJSONAgree(t *testing.T) {
	_, ts, logs := newServer(t, shared(t), server.Config{})
	body, ct := form(t, small(t), prompt, map[string]string{"dilate": "3", "align_bound": "0.6"})
	resp, b := do(t, "POST", ts.URL+"/v1/assess", body, map[string]string{"Content-Type": ct, "X-Request-Id": "mp-1"})
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	assert.Equal(t, "mp-1", resp.Header.Get("X-Request-Id"))
	var viaForm pipeline.Assessment
	require.NoError(t, json.Unmarshal(b, &viaForm))
	assert.Equal(t, "mp-1", viaForm.RequestID)
	assert.Equal(t, 3, viaForm.Params.Dilate, "form fields reach the params")
	assert.InDelta(t, 0.6, viaForm.Params.AlignBound, 1e-9)

	resp, b = do(t, "POST", ts.URL+"/v1/assess", jsonBody(t, small(t), prompt, map[string]any{"dilate": 3, "align_bound": 0.6}),
		map[string]string{"Content-Type": "application/json"})
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	gen := resp.Header.Get("X-Request-Id")
	assert.Len(t, gen, 32, "a generated id (128 random bits) is echoed")
	var viaJSON pipeline.Assessment
	require.NoError(t, json.Unmarshal(b, &viaJSON))
	assert.Equal(t, gen, viaJSON.RequestID)
	assert.Equal(t, viaForm.Q, viaJSON.Q)
	assert.Equal(t, viaForm.MaskFraction, viaJSON.MaskFraction)
	assert.Equal(t, viaForm.Input.PixelSHA256, viaJSON.Input.PixelSHA256)

	// The same request through the pipeline gives the same scores.
	img, err := shared(t).DecodeImage(small(t))
	require.NoError(t, err)
	pr := shared(t).DefaultParams()
	pr.Dilate, pr.AlignBound = 3, 0.6
	want, err := shared(t).Assess(context.Background(), pipeline.Request{Image: img, Prompt: prompt, Params: &pr})
	require.NoError(t, err)
	assert.Equal(t, want.Q, viaJSON.Q)
	assert.Equal(t, want.MaskFraction, viaJSON.MaskFraction)

	// The access log is JSON with the request ids.
	var ids []string
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), "log line %q", line)
		if m["message"] == "request" {
			ids = append(ids, m["request_id"].(string))
			assert.Equal(t, float64(200), m["status"])
			assert.Equal(t, "/v1/assess", m["path"])
		}
	}
	assert.Equal(t, []string{"mp-1", gen}, ids)
}

// TestRefineImageBytes: the PNG the server returns (alone, or base64 in the JSON) is
// imageio.EncodePNG of the pipeline's refinement for the same seed.
func TestRefineImageBytes(t *testing.T) {
	p := shared(t)
	_, ts, _ := newServer(t, p, server.Config{})
	fields := map[string]string{"seed": "11", "steps1": "2", "steps2": "2"}
	body, ct := form(t, small(t), prompt, fields)
	resp, pngBytes := do(t, "POST", ts.URL+"/v1/refine", body, map[string]string{"Content-Type": ct, "Accept": "image/png"})
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", pngBytes)
	assert.Equal(t, "image/png", resp.Header.Get("Content-Type"))

	img, err := p.DecodeImage(small(t))
	require.NoError(t, err)
	pr := p.DefaultParams()
	pr.Seed, pr.Steps1, pr.Steps2 = 11, 2, 2
	ref, err := p.Refine(context.Background(), pipeline.Request{Image: img, Prompt: prompt, Params: &pr})
	require.NoError(t, err)
	var want bytes.Buffer
	require.NoError(t, imageio.EncodePNG(&want, ref.Image))
	assert.Equal(t, want.Bytes(), pngBytes, "server and pipeline give the same PNG bytes")

	body, ct = form(t, small(t), prompt, fields)
	resp, b := do(t, "POST", ts.URL+"/v1/refine", body, map[string]string{"Content-Type": ct})
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	var out struct {
		Image     string  `json:"image"`
		MediaType string  `json:"image_media_type"`
		Q         float32 `json:"q"`
		Params    pipeline.Params
		Refine    map[string]any `json:"refine"`
		Total     float64        `json:"total_ms"`
	}
	require.NoError(t, json.Unmarshal(b, &out))
	got, err := base64.StdEncoding.DecodeString(out.Image)
	require.NoError(t, err)
	assert.Equal(t, want.Bytes(), got, "the JSON's image is the same PNG")
	assert.Equal(t, "image/png", out.MediaType)
	assert.Equal(t, uint64(11), out.Params.Seed, "the report holds the seed")
	assert.Equal(t, ref.Q, out.Q)
	assert.Contains(t, out.Refine, "stage1")
	assert.Contains(t, out.Refine, "stage2")
	assert.Positive(t, out.Total)

	body, ct = form(t, small(t), prompt, fields)
	resp, b = do(t, "POST", ts.URL+"/v1/refine", body, map[string]string{"Content-Type": ct, "Accept": "image/jpeg"})
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	assert.Equal(t, "image/jpeg", resp.Header.Get("Content-Type"))
	jpg, err := imageio.Decode(bytes.NewReader(b), imageio.DefaultLimits)
	require.NoError(t, err)
	assert.Equal(t, [2]int{96, 64}, [2]int{jpg.W, jpg.H})
}

// sse reads server-sent events until the stream ends.
func sse(t *testing.T, resp *http.Response) (events []string, data []string) {
	t.Helper()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "event: "); ok {
			events = append(events, v)
		}
		if v, ok := strings.CutPrefix(line, "data: "); ok {
			data = append(data, v)
		}
	}
	require.NoError(t, sc.Err())
	require.Equal(t, len(events), len(data))
	return events, data
}

func TestRefineEventStream(t *testing.T) {
	_, ts, _ := newServer(t, shared(t), server.Config{})
	body, ct := form(t, small(t), prompt, map[string]string{"steps1": "2", "steps2": "3", "strength1": "1"})
	req, _ := http.NewRequest("POST", ts.URL+"/v1/refine", body)
	req.Header.Set("Content-Type", ct)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("X-Request-Id", "sse-1")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	events, data := sse(t, resp)
	require.NotEmpty(t, events)
	assert.Equal(t, "result", events[len(events)-1])
	stages := map[string]int{}
	for i, e := range events[:len(events)-1] {
		require.Equal(t, "progress", e)
		var ev pipeline.Event
		require.NoError(t, json.Unmarshal([]byte(data[i]), &ev))
		assert.Equal(t, "sse-1", ev.RequestID)
		stages[ev.Stage] = max(stages[ev.Stage], ev.Step)
	}
	assert.Contains(t, stages, "assess")
	assert.Equal(t, 3, stages["stage2"], "stage 2 reports each of its steps")
	var res map[string]any
	require.NoError(t, json.Unmarshal([]byte(data[len(data)-1]), &res))
	assert.NotEmpty(t, res["image"])
	assert.Equal(t, "sse-1", res["request_id"])
}

func TestEventStreamErrors(t *testing.T) {
	_, ts, _ := newServer(t, shared(t), server.Config{})
	// A bad parameter fails before the stream opens: a plain 400.
	body, ct := form(t, small(t), prompt, map[string]string{"steps1": "0"})
	resp, b := do(t, "POST", ts.URL+"/v1/assess", body, map[string]string{"Content-Type": ct, "Accept": "text/event-stream"})
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Contains(t, errorOf(t, b)["error"], "steps1")

	// A cancellation after the stream opened is an error event.
	body, ct = form(t, small(t), prompt, long)
	req, _ := http.NewRequest("POST", ts.URL+"/v1/refine", body)
	req.Header.Set("Content-Type", ct)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("X-Request-Id", "sse-cancel")
	go func() {
		waitState(t, ts.URL, "sse-cancel", "running")
		do(t, "DELETE", ts.URL+"/v1/requests/sse-cancel", nil, nil)
	}()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	events, data := sse(t, resp)
	require.NotEmpty(t, events)
	assert.Equal(t, "error", events[len(events)-1])
	var e map[string]any
	require.NoError(t, json.Unmarshal([]byte(data[len(data)-1]), &e))
	assert.Equal(t, "canceled", e["status"])
	assert.Equal(t, float64(499), e["code"])
}

func TestRequestStateAndCancel(t *testing.T) {
	p := openPipeline(t, pipeline.Config{Slots: 1})
	_, ts, _ := newServer(t, p, server.Config{})
	type result struct {
		code int
		body []byte
	}
	results := map[string]chan result{"first": make(chan result, 1), "second": make(chan result, 1)}
	send := func(id string) {
		body, ct := form(t, small(t), prompt, long)
		resp, b := do(t, "POST", ts.URL+"/v1/refine", body, map[string]string{"Content-Type": ct, "X-Request-Id": id})
		results[id] <- result{resp.StatusCode, b}
	}
	go send("first")
	st := waitState(t, ts.URL, "first", "running")
	assert.Positive(t, st["total"])
	go send("second")
	st = waitState(t, ts.URL, "second", "queued")
	assert.Equal(t, float64(1), st["position"], "next in line")

	resp, b := do(t, "DELETE", ts.URL+"/v1/requests/second", nil, nil)
	require.Equal(t, http.StatusAccepted, resp.StatusCode, "%s", b)
	r := <-results["second"]
	assert.Equal(t, 499, r.code, "%s", r.body)
	assert.Equal(t, "canceled", errorOf(t, r.body)["status"])

	resp, _ = do(t, "DELETE", ts.URL+"/v1/requests/first", nil, nil)
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	r = <-results["first"]
	assert.Equal(t, 499, r.code, "%s", r.body)
	assert.Contains(t, errorOf(t, r.body)["error"], "cancelled")

	resp, b = do(t, "GET", ts.URL+"/v1/requests/first", nil, nil)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode, "a finished request is no longer in flight")
	assert.Equal(t, "request", errorOf(t, b)["status"])
	resp, _ = do(t, "DELETE", ts.URL+"/v1/requests/nobody", nil, nil)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
}

func TestClientDisconnectCancels(t *testing.T) {
	p := openPipeline(t, pipeline.Config{Slots: 1})
	_, ts, _ := newServer(t, p, server.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	body, ct := form(t, small(t), prompt, long)
	req, _ := http.NewRequestWithContext(ctx, "POST", ts.URL+"/v1/refine", body)
	req.Header.Set("Content-Type", ct)
	req.Header.Set("X-Request-Id", "gone")
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	waitState(t, ts.URL, "gone", "running")
	cancel()
	require.Error(t, <-done)
	require.Eventually(t, func() bool { _, ok := p.Request("gone"); return !ok }, 20*time.Second, 10*time.Millisecond,
		"the pipeline dropped the request of the client that went away")
}

func TestRESTErrors(t *testing.T) {
	p := shared(t)
	_, ts, _ := newServer(t, p, server.Config{MaxBody: 64 << 10})
	post := func(path string, body []byte, header map[string]string) (int, map[string]any) {
		resp, b := do(t, "POST", ts.URL+path, bytes.NewReader(body), header)
		return resp.StatusCode, errorOf(t, b)
	}
	formBody := func(img []byte, prompt string, fields map[string]string) ([]byte, map[string]string) {
		r, ct := form(t, img, prompt, fields)
		var b bytes.Buffer
		_, _ = b.ReadFrom(r)
		return b.Bytes(), map[string]string{"Content-Type": ct}
	}
	jsonOf := func(v any) []byte { b, _ := json.Marshal(v); return b }
	jh := map[string]string{"Content-Type": "application/json"}
	b64 := base64.StdEncoding.EncodeToString(small(t))
	big := bytes.Repeat([]byte("x"), 80<<10)
	cases := []struct {
		name   string
		path   string
		body   []byte
		header map[string]string
		code   int
		status string
		msg    string
	}{
		{"not an image", "/v1/assess", nil, nil, 400, "input", "decod"},
		{"no image part", "/v1/assess", nil, nil, 400, "input", "image: missing"},
		{"bad param value", "/v1/refine", nil, nil, 400, "input", "steps2"},
		{"unknown param", "/v1/assess", nil, nil, 400, "input", "bogus"},
		{"param of the wrong type", "/v1/assess", nil, nil, 400, "input", "seed"},
		{"prompt too long", "/v1/assess", nil, nil, 400, "input", "prompt"},
		{"json: malformed", "/v1/assess", []byte(`{"image": `), jh, 400, "input", "body"},
		{"json: unknown field", "/v1/assess", jsonOf(map[string]any{"image": b64, "colour": 1}), jh, 400, "input", "colour"},
		{"json: not base64", "/v1/assess", jsonOf(map[string]any{"image": "%%%"}), jh, 400, "input", "base64"},
		{"json: no image", "/v1/assess", jsonOf(map[string]any{"prompt": "x"}), jh, 400, "input", "image: missing"},
		{"json: NaN-free range check", "/v1/assess", jsonOf(map[string]any{"image": b64, "params": map[string]any{"strength2": 7}}), jh, 400, "input", "strength2"},
		{"too small to refine", "/v1/refine", nil, nil, 400, "input", "small"},
		{"body too big", "/v1/assess", big, jh, 413, "request", "too large"},
		{"media type", "/v1/assess", []byte("x"), map[string]string{"Content-Type": "text/plain"}, 415, "request", "Content-Type"},
		{"no media type", "/v1/assess", []byte("x"), nil, 415, "request", "Content-Type"},
		{"not acceptable", "/v1/assess", jsonOf(map[string]any{"image": b64}), map[string]string{"Content-Type": "application/json", "Accept": "image/png"}, 406, "request", "Accept"},
		{"bad request id", "/v1/assess", jsonOf(map[string]any{"image": b64}), map[string]string{"Content-Type": "application/json", "X-Request-Id": "a b"}, 400, "input", "request id"},
	}
	cases[0].body, cases[0].header = formBody([]byte("not a png"), "x", nil)
	cases[1].body, cases[1].header = formBody(nil, "x", nil)
	cases[2].body, cases[2].header = formBody(small(t), "x", map[string]string{"steps2": "0"})
	cases[3].body, cases[3].header = formBody(small(t), "x", map[string]string{"bogus": "1"})
	cases[4].body, cases[4].header = formBody(small(t), "x", map[string]string{"seed": "seven"})
	cases[5].body, cases[5].header = formBody(small(t), strings.Repeat("a", p.Info().MaxPromptBytes+1), nil)
	var tiny bytes.Buffer
	require.NoError(t, imageio.EncodePNG(&tiny, imageio.NewRGB8(40, 40)))
	cases[11].body, cases[11].header = formBody(tiny.Bytes(), "x", nil)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, e := post(c.path, c.body, c.header)
			assert.Equal(t, c.code, code, "%v", e)
			assert.Equal(t, c.status, e["status"])
			assert.Contains(t, strings.ToLower(e["error"].(string)), strings.ToLower(c.msg))
		})
	}
}

func TestBusyAndDeadline(t *testing.T) {
	p := openPipeline(t, pipeline.Config{Slots: 1, MaxQueue: 1})
	_, ts, _ := newServer(t, p, server.Config{Timeout: 400 * time.Millisecond})
	// 504: the deadline passes while the request runs.
	body, ct := form(t, small(t), prompt, long)
	resp, b := do(t, "POST", ts.URL+"/v1/refine", body, map[string]string{"Content-Type": ct})
	assert.Equal(t, http.StatusGatewayTimeout, resp.StatusCode, "%s", b)
	assert.Equal(t, "canceled", errorOf(t, b)["status"])

	// 429 with Retry-After: one running, one waiting, the third finds the queue full.
	_, ts2, _ := newServer(t, p, server.Config{})
	var wg sync.WaitGroup
	for _, id := range []string{"run", "wait"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body, ct := form(t, small(t), prompt, long)
			do(t, "POST", ts2.URL+"/v1/refine", body, map[string]string{"Content-Type": ct, "X-Request-Id": id})
		}()
		if id == "run" {
			waitState(t, ts2.URL, id, "running")
		} else {
			waitState(t, ts2.URL, id, "queued")
		}
	}
	body, ct = form(t, small(t), prompt, nil)
	resp, b = do(t, "POST", ts2.URL+"/v1/assess", body, map[string]string{"Content-Type": ct})
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "%s", b)
	assert.Equal(t, "1", resp.Header.Get("Retry-After"))
	assert.Equal(t, "busy", errorOf(t, b)["status"])
	p.Cancel("wait")
	p.Cancel("run")
	wg.Wait()
}

func TestAuth(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tokens")
	require.NoError(t, os.WriteFile(file, []byte("# clients\nalpha-token\n\n  beta-token  \n"), 0o600))
	tokens, err := server.LoadTokens(file)
	require.NoError(t, err)
	assert.Equal(t, []string{"alpha-token", "beta-token"}, tokens)
	_, ts, _ := newServer(t, shared(t), server.Config{Tokens: tokens})

	for _, h := range []map[string]string{nil, {"Authorization": "Bearer wrong"}, {"Authorization": "alpha-token"}, {"Authorization": "Bearer alpha-tokenx"}} {
		resp, b := do(t, "GET", ts.URL+"/v1/info", nil, h)
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "%v", h)
		assert.Contains(t, resp.Header.Get("WWW-Authenticate"), "Bearer")
		assert.Equal(t, "request", errorOf(t, b)["status"])
	}
	resp, b := do(t, "GET", ts.URL+"/v2/models/assess", nil, nil)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Len(t, errorOf(t, b), 1, "v2 errors are {\"error\": ...}")
	for _, tok := range tokens {
		resp, _ = do(t, "GET", ts.URL+"/v1/info", nil, map[string]string{"Authorization": "Bearer " + tok})
		assert.Equal(t, http.StatusOK, resp.StatusCode, tok)
	}
	for _, open := range []string{"/v2/health/live", "/v2/health/ready", "/metrics", "/openapi.json"} {
		resp, _ = do(t, "GET", ts.URL+open, nil, nil)
		assert.Equal(t, http.StatusOK, resp.StatusCode, "%s stays open", open)
	}

	for name, text := range map[string]string{"empty": "# nothing\n\n", "space": "a b\n"} {
		f := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(f, []byte(text), 0o600))
		_, err := server.LoadTokens(f)
		assert.Error(t, err, name)
	}
	_, err = server.LoadTokens(filepath.Join(dir, "missing"))
	assert.Error(t, err)
}

func TestRoutingErrorsInfoAndPprof(t *testing.T) {
	_, ts, _ := newServer(t, shared(t), server.Config{})
	resp, b := do(t, "GET", ts.URL+"/v1/nothing", nil, nil)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Equal(t, "request", errorOf(t, b)["status"])
	resp, b = do(t, "GET", ts.URL+"/v1/assess", nil, nil)
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	assert.Equal(t, "POST", resp.Header.Get("Allow"))
	errorOf(t, b)
	resp, _ = do(t, "PUT", ts.URL+"/v1/requests/x", nil, nil)
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	assert.Equal(t, "GET, DELETE", resp.Header.Get("Allow"))
	resp, _ = do(t, "GET", ts.URL+"/debug/pprof/", nil, nil)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode, "no pprof without Config.Pprof")

	resp, b = do(t, "GET", ts.URL+"/v1/info", nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var info pipeline.Info
	require.NoError(t, json.Unmarshal(b, &info))
	assert.Equal(t, shared(t).Info().ModelSet, info.ModelSet)
	assert.True(t, info.Refine)

	_, ts, _ = newServer(t, shared(t), server.Config{Pprof: true})
	resp, b = do(t, "GET", ts.URL+"/debug/pprof/", nil, nil)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, string(b), "goroutine")
}

func TestNewRefusesBadConfig(t *testing.T) {
	p := shared(t)
	for name, cfg := range map[string]server.Config{
		"no pipeline":  {},
		"negative max": {Pipeline: p, MaxBody: -1},
		"negative ttl": {Pipeline: p, Timeout: -time.Second},
		"half TLS":     {Pipeline: p, TLSCert: "c.pem"},
	} {
		_, err := server.New(cfg)
		assert.Error(t, err, name)
	}
}
