package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/internal/testkit/testenv"
	"github.com/grefine/grefine/pipeline"
	"github.com/grefine/grefine/pipeline/imageio"
	"github.com/grefine/grefine/server"
)

const prompt = "Mr. Beans wearing sun glasses with blue doctor suit and stripe tie"

// openPipeline opens the tiny model set with cfg's slots and queue.
func openPipeline(t *testing.T, cfg pipeline.Config) *pipeline.Pipeline {
	t.Helper()
	cfg.Models = testenv.Path(t, "testdata", "models", "tiny")
	cfg.BackendInstance = testenv.ORT(t)
	p, err := pipeline.Open(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	return p
}

var (
	sharedOnce sync.Once
	sharedP    *pipeline.Pipeline
	sharedErr  error
)

// shared is one pipeline (2 slots, unbounded queue) for the tests that do not depend
// on the queue; it stays open for the test binary's life.
func shared(t *testing.T) *pipeline.Pipeline {
	t.Helper()
	b := testenv.ORT(t)
	sharedOnce.Do(func() {
		sharedP, sharedErr = pipeline.Open(context.Background(), pipeline.Config{
			Models: testenv.Path(t, "testdata", "models", "tiny"), BackendInstance: b, Slots: 2})
	})
	require.NoError(t, sharedErr)
	return sharedP
}

// newServer builds a server on p (cfg.Pipeline is set) and an httptest server for it.
func newServer(t *testing.T, p *pipeline.Pipeline, cfg server.Config) (*server.Server, *httptest.Server, *testenv.Buffer) {
	t.Helper()
	logs := &testenv.Buffer{}
	log := zerolog.New(logs)
	cfg.Pipeline, cfg.Logger, cfg.Registry = p, &log, prometheus.NewRegistry()
	s, err := server.New(cfg)
	require.NoError(t, err)
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return s, ts, logs
}

var (
	smallOnce sync.Once
	smallPNG  []byte
)

// small is a 96×64 bicubic resize of the sample, PNG-encoded.
func small(t *testing.T) []byte {
	t.Helper()
	smallOnce.Do(func() {
		img, err := imageio.ReadFile(testenv.Path(t, "testdata", "images", "sample.png"), imageio.DefaultLimits)
		require.NoError(t, err)
		var b bytes.Buffer
		require.NoError(t, imageio.EncodePNG(&b, imageio.ResizeBicubicPIL(img, 96, 64)))
		smallPNG = b.Bytes()
	})
	return smallPNG
}

// form is a multipart body with the image part, the prompt and fields.
func form(t *testing.T, img []byte, prompt string, fields map[string]string) (io.Reader, string) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	if img != nil {
		fw, err := mw.CreateFormFile("image", "in.png")
		require.NoError(t, err)
		_, _ = fw.Write(img)
	}
	require.NoError(t, mw.WriteField("prompt", prompt))
	for k, v := range fields {
		require.NoError(t, mw.WriteField(k, v))
	}
	require.NoError(t, mw.Close())
	return &b, mw.FormDataContentType()
}

// jsonBody is a JSON inference body.
func jsonBody(t *testing.T, img []byte, prompt string, params map[string]any) io.Reader {
	t.Helper()
	b, err := json.Marshal(map[string]any{"image": base64.StdEncoding.EncodeToString(img), "prompt": prompt, "params": params})
	require.NoError(t, err)
	return bytes.NewReader(b)
}

// do sends a request and returns the response with its body read.
func do(t *testing.T, method, url string, body io.Reader, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	require.NoError(t, err)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, b
}

// errorOf decodes an error body.
func errorOf(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m), "error body %q", b)
	require.Contains(t, m, "error")
	return m
}

// waitState polls GET /v1/requests/{id} until the request is in state (or 10 s pass).
func waitState(t *testing.T, base, id, state string) map[string]any {
	t.Helper()
	var last map[string]any
	require.Eventually(t, func() bool {
		resp, b := do(t, "GET", base+"/v1/requests/"+id, nil, nil)
		if resp.StatusCode != http.StatusOK {
			return false
		}
		last = nil
		_ = json.Unmarshal(b, &last)
		return last["state"] == state && (state != "running" || last["stage"] == "stage1" || last["stage"] == "stage2")
	}, 20*time.Second, 10*time.Millisecond, "request %s never reached %s (last %v)", id, state, last)
	return last
}

// long are refine params that keep a request running for seconds on the tiny set.
var long = map[string]string{"steps1": "200", "steps2": "200", "strength1": "1"}

// result is a response for a goroutine's request (err set when there was none).
type result struct {
	code int
	body []byte
	err  error
}

// doAsync sends a request from a goroutine: it never calls t.FailNow (which would leave
// the waiting test blocked), it reports the failure in the result.
func doAsync(method, url string, body io.Reader, header map[string]string) <-chan result {
	out := make(chan result, 1)
	go func() {
		req, err := http.NewRequest(method, url, body)
		if err != nil {
			out <- result{err: err}
			return
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			out <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		out <- result{code: resp.StatusCode, body: b, err: err}
	}()
	return out
}
