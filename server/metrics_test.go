package server_test

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/monitor"
	"github.com/grefine/grefine/pipeline"
	"github.com/grefine/grefine/pipeline/imageio"
	"github.com/grefine/grefine/server"
)

// scrape reads /metrics into "name{labels}" -> value.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, b := do(t, "GET", url+"/metrics", nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("Content-Type"), "text/plain")
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		require.NoError(t, err, line)
		out[line[:i]] = v
	}
	return out
}

func TestMetrics(t *testing.T) {
	_, ts, _ := newServer(t, shared(t), server.Config{})
	for i := 0; i < 2; i++ {
		body, ct := form(t, small(t), prompt, nil)
		resp, b := do(t, "POST", ts.URL+"/v1/assess", body, map[string]string{"Content-Type": ct})
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	}
	body, ct := form(t, small(t), prompt, map[string]string{"steps1": "2", "steps2": "2"})
	resp, b := do(t, "POST", ts.URL+"/v1/refine", body, map[string]string{"Content-Type": ct})
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	var tiny bytes.Buffer
	require.NoError(t, imageio.EncodePNG(&tiny, imageio.NewRGB8(40, 40)))
	body, ct = form(t, tiny.Bytes(), prompt, nil)
	resp, _ = do(t, "POST", ts.URL+"/v1/refine", body, map[string]string{"Content-Type": ct})
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)

	m := scrape(t, ts.URL)
	a, r := `{model="assess",version="1"}`, `{model="refine",version="1"}`
	assert.Equal(t, 2.0, m["nv_inference_request_success"+a])
	assert.Equal(t, 2.0, m["nv_inference_count"+a])
	assert.Equal(t, 1.0, m["nv_inference_request_success"+r])
	assert.Equal(t, 1.0, m[`nv_inference_request_failure{model="refine",reason="input",version="1"}`])
	for _, name := range []string{"nv_inference_request_duration_us", "nv_inference_compute_infer_duration_us"} {
		assert.Positive(t, m[name+a], name)
		assert.Positive(t, m[name+r], name)
	}
	assert.GreaterOrEqual(t, m["nv_inference_request_duration_us"+r], m["nv_inference_compute_infer_duration_us"+r]+m["nv_inference_queue_duration_us"+r]-1)
	assert.Contains(t, m, "nv_inference_queue_duration_us"+a)
	assert.Equal(t, 0.0, m["nv_inference_pending_request_count"+a])
	assert.Equal(t, 2.0, m[`grefine_stage_duration_seconds_count{model="assess",stage="assess",version="1"}`])
	for _, st := range []string{"assess", "stage2"} {
		assert.Equal(t, 1.0, m[`grefine_stage_duration_seconds_count{model="refine",stage="`+st+`",version="1"}`], st)
	}
	assert.Equal(t, 2.0, m[`grefine_http_requests_total{code="200",route="POST /v1/assess"}`])
	assert.Contains(t, m, "process_resident_memory_bytes")
	for k := range m {
		assert.False(t, strings.HasPrefix(k, "nv_gpu_"), "no GPU gauges without a GPU: %s", k)
	}
}

// fakeGPU is one GPU whose power rises by 100 W and clock by 2 s per sample.
type fakeGPU struct {
	n  int
	t0 time.Time
}

func (f *fakeGPU) Devices() []monitor.DeviceInfo {
	return []monitor.DeviceInfo{{Index: 0, UUID: "GPU-fake", MemoryTotal: 80 << 30}}
}

func (f *fakeGPU) Sample() (monitor.Sample, error) {
	f.n++
	util, used, w := uint32(40), uint64(3<<30), float64(100*f.n)
	return monitor.Sample{Time: f.t0.Add(time.Duration(2*f.n) * time.Second),
		GPUs: []monitor.GPUSample{{Index: 0, GPUUtil: &util, MemUsed: &used, PowerW: &w}}}, nil
}

func TestGPUMetrics(t *testing.T) {
	_, ts, _ := newServer(t, shared(t), server.Config{GPU: &fakeGPU{t0: time.Now()}})
	l := `{gpu_uuid="GPU-fake"}`
	m := scrape(t, ts.URL)
	assert.Equal(t, 0.4, m["nv_gpu_utilization"+l])
	assert.Equal(t, float64(3<<30), m["nv_gpu_memory_used_bytes"+l])
	assert.Equal(t, float64(80<<30), m["nv_gpu_memory_total_bytes"+l])
	assert.Equal(t, 100.0, m["nv_gpu_power_usage"+l])
	assert.Equal(t, 0.0, m["nv_energy_consumption"+l])
	m = scrape(t, ts.URL)
	assert.Equal(t, 200.0, m["nv_gpu_power_usage"+l])
	assert.InDelta(t, 300.0, m["nv_energy_consumption"+l], 1e-9, "(100 W + 200 W)/2 over 2 s")
}

// serve runs s on a loopback listener until the returned stop is called; stop returns
// Serve's error.
func serve(t *testing.T, s *server.Server) (url string, stop func() error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ctx, ln) }()
	return "http://" + ln.Addr().String(), func() error { cancel(); return <-errc }
}

func TestDrainLetsRequestsFinish(t *testing.T) {
	p := openPipeline(t, pipeline.Config{Slots: 1})
	s, _, _ := newServer(t, p, server.Config{DrainTimeout: time.Minute})
	url, stop := serve(t, s)
	body, ct := form(t, small(t), prompt, map[string]string{"steps1": "8", "steps2": "8", "strength1": "1"})
	out := doAsync("POST", url+"/v1/refine", body, map[string]string{"Content-Type": ct, "X-Request-Id": "drain"})
	waitState(t, url, "drain", "running")
	require.True(t, s.Ready())
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	require.Eventually(t, func() bool { return !s.Ready() }, 5*time.Second, time.Millisecond)
	r := <-out
	require.NoError(t, r.err)
	assert.Equal(t, http.StatusOK, r.code, "the request in flight finishes: %s", r.body)
	assert.NoError(t, <-stopped)
	_, err := http.Get(url + "/v2/health/live")
	assert.Error(t, err, "no new connections after the drain")
}

func TestDrainTimeoutCancelsCleanly(t *testing.T) {
	p := openPipeline(t, pipeline.Config{Slots: 1})
	s, _, _ := newServer(t, p, server.Config{DrainTimeout: 300 * time.Millisecond})
	url, stop := serve(t, s)
	body, ct := form(t, small(t), prompt, long)
	out := doAsync("POST", url+"/v1/refine", body, map[string]string{"Content-Type": ct, "X-Request-Id": "late"})
	waitState(t, url, "late", "running")
	assert.NoError(t, stop())
	r := <-out
	require.NoError(t, r.err, "the cancelled request still gets an answer")
	assert.Equal(t, http.StatusServiceUnavailable, r.code, "%s", r.body)
	e := errorOf(t, r.body)
	assert.Contains(t, e["error"], "shutting down")
	assert.Equal(t, "unavailable", e["status"])
}

func TestNotReadyWhileDraining(t *testing.T) {
	p := openPipeline(t, pipeline.Config{Slots: 1})
	s, ts, _ := newServer(t, p, server.Config{DrainTimeout: 20 * time.Second})
	url, stop := serve(t, s)
	hb, hct := form(t, small(t), prompt, map[string]string{"steps1": "6", "steps2": "6", "strength1": "1"})
	held := doAsync("POST", url+"/v1/refine", hb, map[string]string{"Content-Type": hct, "X-Request-Id": "hold"})
	waitState(t, url, "hold", "running")
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	require.Eventually(t, func() bool { return !s.Ready() }, 5*time.Second, time.Millisecond)
	// The same handler, reached through another listener, says why it refuses.
	resp, b := do(t, "GET", ts.URL+"/v2/health/ready", nil, nil)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Contains(t, errorOf(t, b)["error"], "shutting down")
	body, ct := form(t, small(t), prompt, nil)
	resp, b = do(t, "POST", ts.URL+"/v1/assess", body, map[string]string{"Content-Type": ct})
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "unavailable", errorOf(t, b)["status"])
	resp, _ = do(t, "GET", ts.URL+"/v2/health/live", nil, nil)
	assert.Equal(t, http.StatusOK, resp.StatusCode, "still live")
	assert.NoError(t, <-stopped)
	h := <-held
	require.NoError(t, h.err)
	assert.Equal(t, http.StatusOK, h.code, "%s", h.body)
}
