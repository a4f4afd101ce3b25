package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/pipeline"
	"github.com/grefine/grefine/server"
)

// TestRequestsBelongToTheirToken (issue 20): GET and DELETE /v1/requests/{id} from
// another token are 404 and leave the request alone; a client-chosen id is scoped to
// its token, so another client can use the same id at the same time.
func TestRequestsBelongToTheirToken(t *testing.T) {
	p := openPipeline(t, pipeline.Config{Slots: 2})
	_, ts, _ := newServer(t, p, server.Config{Tokens: []string{"alice-token", "bob-token"}})
	alice := map[string]string{"Authorization": "Bearer alice-token"}
	bob := map[string]string{"Authorization": "Bearer bob-token"}
	with := func(h map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range h {
			out[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	body, ct := form(t, small(t), prompt, long)
	res := doAsync("POST", ts.URL+"/v1/refine", body, with(alice, "Content-Type", ct, "X-Request-Id", "job-1"))
	require.Eventually(t, func() bool {
		resp, b := do(t, "GET", ts.URL+"/v1/requests/job-1", nil, alice)
		return resp.StatusCode == http.StatusOK && strings.Contains(string(b), `"running"`)
	}, 20*time.Second, 10*time.Millisecond)

	resp, b := do(t, "GET", ts.URL+"/v1/requests/job-1", nil, bob)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode, "bob does not see alice's request: %s", b)
	resp, b = do(t, "DELETE", ts.URL+"/v1/requests/job-1", nil, bob)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode, "bob cannot cancel it: %s", b)
	// Bob's own request with the same id runs beside alice's.
	body, ct = form(t, small(t), prompt, nil)
	resp, b = do(t, "POST", ts.URL+"/v1/assess", body, with(bob, "Content-Type", ct, "X-Request-Id", "job-1"))
	assert.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	assert.Equal(t, "job-1", resp.Header.Get("X-Request-Id"))
	resp, _ = do(t, "GET", ts.URL+"/v1/requests/job-1", nil, alice)
	assert.Equal(t, http.StatusOK, resp.StatusCode, "alice's request is untouched")
	resp, _ = do(t, "DELETE", ts.URL+"/v1/requests/job-1", nil, alice)
	assert.Equal(t, http.StatusAccepted, resp.StatusCode, "the owner cancels it")
	r := <-res
	require.NoError(t, r.err)
	assert.Equal(t, 499, r.code, "%s", r.body)
}

// TestStrictInputs (issue 20): a second image part, a second prompt, duplicate JSON keys
// (at any depth, in REST and KServe bodies) and data after the JSON are 400.
func TestStrictInputs(t *testing.T) {
	_, ts, _ := newServer(t, shared(t), server.Config{})
	img := base64.StdEncoding.EncodeToString(small(t))
	multi := func(parts ...[2]string) (io.Reader, string) {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		for _, p := range parts {
			if p[0] == "image" {
				fw, _ := mw.CreateFormFile("image", "in.png")
				fw.Write(small(t))
				continue
			}
			require.NoError(t, mw.WriteField(p[0], p[1]))
		}
		require.NoError(t, mw.Close())
		return &b, mw.FormDataContentType()
	}
	for name, parts := range map[string][][2]string{
		"two images":  {{"image", ""}, {"image", ""}, {"prompt", "a cat"}},
		"two prompts": {{"image", ""}, {"prompt", "a cat"}, {"prompt", "a dog"}},
		"two seeds":   {{"image", ""}, {"seed", "1"}, {"seed", "2"}},
	} {
		body, ct := multi(parts...)
		resp, b := do(t, "POST", ts.URL+"/v1/assess", body, map[string]string{"Content-Type": ct})
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "%s: %s", name, b)
		assert.Contains(t, errorOf(t, b)["error"], "given twice", name)
	}
	jh := map[string]string{"Content-Type": "application/json"}
	for name, body := range map[string]string{
		"duplicate prompt":       `{"image":"` + img + `","prompt":"a cat","prompt":"a dog"}`,
		"duplicate image":        `{"image":"` + img + `","image":"` + img + `"}`,
		"duplicate param":        `{"image":"` + img + `","params":{"seed":1,"seed":2}}`,
		"trailing object":        `{"image":"` + img + `"}{"image":"x"}`,
		"trailing garbage":       `{"image":"` + img + `"} garbage`,
		"v2 duplicate parameter": "v2:" + `{"parameters":{"seed":1,"seed":2},"inputs":[{"name":"image","datatype":"BYTES","shape":[1],"data":["` + img + `"]}]}`,
		"v2 duplicate in tensor": "v2:" + `{"inputs":[{"name":"image","name":"prompt","datatype":"BYTES","shape":[1],"data":["` + img + `"]}]}`,
		"v2 trailing garbage":    "v2:" + `{"inputs":[{"name":"image","datatype":"BYTES","shape":[1],"data":["` + img + `"]}]}]`,
	} {
		path := "/v1/assess"
		if b, ok := strings.CutPrefix(body, "v2:"); ok {
			path, body = "/v2/models/assess/infer", b
		}
		resp, b := do(t, "POST", ts.URL+path, strings.NewReader(body), jh)
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "%s: %s", name, b)
		msg := errorOf(t, b)["error"].(string)
		assert.True(t, strings.Contains(msg, "duplicate key") || strings.Contains(msg, "after the JSON value"), "%s: %s", name, msg)
	}
	// The well-formed forms of the same requests pass.
	resp, b := do(t, "POST", ts.URL+"/v1/assess", strings.NewReader(`{"image":"`+img+`","prompt":"a cat","params":{"seed":1}}`+"\n"), jh)
	assert.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
}

// TestBearerSchemeAnyCaseAndBOM (issue 20): RFC 7235 auth schemes are case-insensitive;
// a tokens file may start with a UTF-8 byte order mark.
func TestBearerSchemeAnyCaseAndBOM(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tokens")
	require.NoError(t, os.WriteFile(file, []byte("\xef\xbb\xbfalpha-token\r\n# comment\r\n"), 0o600))
	tokens, err := server.LoadTokens(file)
	require.NoError(t, err)
	assert.Equal(t, []string{"alpha-token"}, tokens, "BOM and CRLF")
	_, ts, _ := newServer(t, shared(t), server.Config{Tokens: tokens})
	for _, h := range []string{"Bearer alpha-token", "bearer alpha-token", "BEARER alpha-token", "bEaReR  alpha-token"} {
		resp, b := do(t, "GET", ts.URL+"/v1/info", nil, map[string]string{"Authorization": h})
		assert.Equal(t, http.StatusOK, resp.StatusCode, "%q: %s", h, b)
	}
	for _, h := range []string{"Basic alpha-token", "Bearer", "Bearer  ", "Beareralpha-token", "alpha-token"} {
		resp, _ := do(t, "GET", ts.URL+"/v1/info", nil, map[string]string{"Authorization": h})
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "%q", h)
	}
}

// smallBufListener gives every accepted connection a 4 KiB send buffer, so a client
// that does not read blocks the server's writes soon.
type smallBufListener struct{ net.Listener }

func (l smallBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, err
}

// TestWriteTimeoutDropsClientsThatDoNotRead (issue 20): a client that sends a request
// and never reads the answer holds the handler only until the write deadline; then the
// handler ends (its access log line appears, with the answer cut short) and the
// connection is closed.
func TestWriteTimeoutDropsClientsThatDoNotRead(t *testing.T) {
	s, ts, logs := newServer(t, shared(t), server.Config{WriteTimeout: 300 * time.Millisecond})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ctx, smallBufListener{ln}) }()
	defer func() { cancel(); <-errc }()

	// A refinement of a 512×384 noise image answers about 800 KB of JSON (the image as
	// base64 PNG): far more than the two socket buffers hold.
	noise := image.NewNRGBA(image.Rect(0, 0, 512, 384))
	for i := range noise.Pix {
		noise.Pix[i] = byte(i*7919 + i/3)
	}
	var enc bytes.Buffer
	require.NoError(t, png.Encode(&enc, noise))
	req := `{"image":"` + base64.StdEncoding.EncodeToString(enc.Bytes()) + `","params":{"skip_stage1":true,"steps2":1,"seed":3}}`
	resp, full := do(t, "POST", ts.URL+"/v1/refine", strings.NewReader(req), map[string]string{"Content-Type": "application/json"})
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", full)

	conn, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	_ = conn.(*net.TCPConn).SetReadBuffer(4096)
	_, err = io.WriteString(conn, "POST /v1/refine HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "+
		strconv.Itoa(len(req))+"\r\n\r\n"+req)
	require.NoError(t, err)
	var line map[string]any
	require.Eventually(t, func() bool {
		for _, l := range strings.Split(logs.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && m["path"] == "/v1/refine" && m["remote"] == conn.LocalAddr().String() {
				line = m
				return true
			}
		}
		return false
	}, 60*time.Second, 20*time.Millisecond, "the handler of the client that does not read ended")
	t.Logf("not reading: %v; a reading client got %d bytes", line, len(full))
	assert.Less(t, line["bytes"].(float64), float64(len(full)), "the answer was cut short")
	// The server closed the connection: reading drains what was sent, then EOF or reset.
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.Copy(io.Discard, conn)
	if err != nil {
		assert.NotContains(t, err.Error(), "timeout", "the server closed the connection")
	}
}

// bigPNG is an 8192² 16-bit grey PNG: about 100 KB that decode to 320 MiB.
func bigPNG(t *testing.T) []byte {
	t.Helper()
	m := image.NewGray16(image.Rect(0, 0, 8192, 8192))
	for i := 0; i < 8192; i++ {
		m.SetGray16(i, i, color.Gray16{Y: 0xffff})
	}
	var b bytes.Buffer
	require.NoError(t, (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&b, m))
	return b.Bytes()
}

// TestAdmissionBeforeDecoding (issue 20): with the slots and the queue taken, a request
// is 429 before its image is decoded or even probed (its image is over the decode
// budget, which would be 400); with a free place, the same image is refused from its
// header against the budget.
func TestAdmissionBeforeDecoding(t *testing.T) {
	p := openPipeline(t, pipeline.Config{Slots: 1, MaxQueue: 1, DecodeMemory: 64 << 20})
	_, ts, _ := newServer(t, p, server.Config{})
	big := bigPNG(t)
	body, ct := form(t, big, prompt, nil)
	resp, b := do(t, "POST", ts.URL+"/v1/assess", body, map[string]string{"Content-Type": ct})
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "%s", b)
	assert.Contains(t, errorOf(t, b)["error"], "decode budget")

	var outs []<-chan result
	for _, id := range []string{"run", "wait"} {
		body, ct := form(t, small(t), prompt, long)
		outs = append(outs, doAsync("POST", ts.URL+"/v1/refine", body, map[string]string{"Content-Type": ct, "X-Request-Id": id}))
		waitState(t, ts.URL, id, map[string]string{"run": "running", "wait": "queued"}[id])
	}
	for _, path := range []string{"/v1/assess", "/v2/models/assess/infer"} {
		var resp *http.Response
		var b []byte
		if path == "/v1/assess" {
			body, ct := form(t, big, prompt, nil)
			resp, b = do(t, "POST", ts.URL+path, body, map[string]string{"Content-Type": ct})
		} else {
			js, _ := json.Marshal(map[string]any{"inputs": []any{map[string]any{"name": "image", "datatype": "BYTES", "shape": []int{1},
				"data": []string{base64.StdEncoding.EncodeToString(big)}}}})
			resp, b = do(t, "POST", ts.URL+path, bytes.NewReader(js), map[string]string{"Content-Type": "application/json"})
		}
		assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "%s: %s", path, b)
		assert.Equal(t, "1", resp.Header.Get("Retry-After"))
	}
	p.Cancel("wait")
	p.Cancel("run")
	for _, o := range outs {
		r := <-o
		assert.Equal(t, 499, r.code, "%s", r.body)
	}
}

// TestModelMetadataHasLimitsAndParams: /v2/models/{m} lists the work limits and the
// parameters the model takes (assess: the assess rows only).
func TestModelMetadataHasLimitsAndParams(t *testing.T) {
	_, ts, _ := newServer(t, shared(t), server.Config{})
	for model, n := range map[string]int{"assess": 4, "refine": len(pipeline.ParamTable())} {
		resp, b := do(t, "GET", ts.URL+"/v2/models/"+model, nil, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var m struct {
			Parameters struct {
				Params     []pipeline.Param    `json:"params"`
				WorkLimits pipeline.WorkLimits `json:"work_limits"`
			} `json:"parameters"`
		}
		require.NoError(t, json.Unmarshal(b, &m))
		assert.Len(t, m.Parameters.Params, n, model)
		assert.Equal(t, shared(t).Info().Work, m.Parameters.WorkLimits)
		assert.Equal(t, pipeline.DefaultMaxTimesteps, m.Parameters.WorkLimits.MaxTimesteps)
	}
}
