package server_test

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/pipeline"
	"github.com/grefine/grefine/pipeline/imageio"
	"github.com/grefine/grefine/server"
)

func TestV2HealthAndMetadata(t *testing.T) {
	_, ts, _ := newServer(t, shared(t), server.Config{})
	for _, path := range []string{"/v2/health/live", "/v2/health/ready", "/v2/models/assess/ready", "/v2/models/refine/ready"} {
		resp, _ := do(t, "GET", ts.URL+path, nil, nil)
		assert.Equal(t, http.StatusOK, resp.StatusCode, path)
	}
	resp, b := do(t, "GET", ts.URL+"/v2", nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var meta map[string]any
	require.NoError(t, json.Unmarshal(b, &meta))
	assert.Equal(t, "grefine", meta["name"])
	assert.Equal(t, pipeline.Version, meta["version"])
	assert.Equal(t, []any{"binary_tensor_data"}, meta["extensions"])

	resp, b = do(t, "GET", ts.URL+"/v2/models/refine", nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var mm struct {
		Name     string   `json:"name"`
		Versions []string `json:"versions"`
		Inputs   []struct{ Name, Datatype string }
		Outputs  []struct{ Name, Datatype string }
	}
	require.NoError(t, json.Unmarshal(b, &mm))
	assert.Equal(t, "refine", mm.Name)
	assert.Equal(t, []string{"1"}, mm.Versions)
	var outs []string
	for _, o := range mm.Outputs {
		outs = append(outs, o.Name+":"+o.Datatype)
	}
	assert.Equal(t, []string{"p:FP32", "a:FP32", "q:FP32", "report:BYTES", "image:BYTES"}, outs)

	for _, path := range []string{"/v2/models/nope", "/v2/models/nope/ready"} {
		resp, b = do(t, "GET", ts.URL+path, nil, nil)
		assert.Equal(t, http.StatusNotFound, resp.StatusCode, path)
		assert.Equal(t, map[string]any{"error": `unknown model "nope" (assess or refine)`}, errorOf(t, b))
	}
}

func TestV2AssessOnlyHasNoRefineModel(t *testing.T) {
	p := openPipeline(t, pipeline.Config{AssessOnly: true})
	_, ts, _ := newServer(t, p, server.Config{})
	for _, path := range []string{"/v2/models/refine", "/v2/models/refine/ready"} {
		resp, b := do(t, "GET", ts.URL+path, nil, nil)
		assert.Equal(t, http.StatusNotFound, resp.StatusCode, path)
		assert.Contains(t, errorOf(t, b)["error"], "assess-only")
	}
	body, ct := form(t, small(t), prompt, nil)
	resp, b := do(t, "POST", ts.URL+"/v1/refine", body, map[string]string{"Content-Type": ct})
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "unavailable", errorOf(t, b)["status"])
}

// v2JSON posts a JSON inference request.
func v2JSON(t *testing.T, url string, req map[string]any) (*http.Response, []byte) {
	t.Helper()
	b, err := json.Marshal(req)
	require.NoError(t, err)
	return do(t, "POST", url, bytes.NewReader(b), map[string]string{"Content-Type": "application/json"})
}

type v2Out struct {
	ModelName string `json:"model_name"`
	ID        string `json:"id"`
	Outputs   []struct {
		Name       string          `json:"name"`
		Datatype   string          `json:"datatype"`
		Shape      []int64         `json:"shape"`
		Parameters map[string]any  `json:"parameters"`
		Data       json.RawMessage `json:"data"`
	} `json:"outputs"`
}

func TestV2InferJSON(t *testing.T) {
	p := shared(t)
	_, ts, _ := newServer(t, p, server.Config{})
	img := base64.StdEncoding.EncodeToString(small(t))
	resp, b := v2JSON(t, ts.URL+"/v2/models/refine/infer", map[string]any{"id": "kserve-1",
		"parameters": map[string]any{"seed": 5, "steps1": 2, "steps2": 2},
		"inputs": []map[string]any{
			{"name": "image", "datatype": "BYTES", "shape": []int{1}, "data": []string{img}},
			{"name": "prompt", "datatype": "BYTES", "shape": []int{1}, "data": []string{prompt}}}})
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	assert.Equal(t, "kserve-1", resp.Header.Get("X-Request-Id"), "the body's id is the request id")
	var out v2Out
	require.NoError(t, json.Unmarshal(b, &out))
	assert.Equal(t, "refine", out.ModelName)
	assert.Equal(t, "kserve-1", out.ID)
	got := map[string]json.RawMessage{}
	for _, o := range out.Outputs {
		assert.Equal(t, []int64{1}, o.Shape)
		got[o.Name] = o.Data
	}
	require.Len(t, got, 5)

	dec, err := p.DecodeImage(small(t))
	require.NoError(t, err)
	pr := p.DefaultParams()
	pr.Seed, pr.Steps1, pr.Steps2 = 5, 2, 2
	ref, err := p.Refine(t.Context(), pipeline.Request{Image: dec, Prompt: prompt, Params: &pr})
	require.NoError(t, err)
	var q []float32
	require.NoError(t, json.Unmarshal(got["q"], &q))
	assert.Equal(t, []float32{ref.Q}, q)
	var imgs []string
	require.NoError(t, json.Unmarshal(got["image"], &imgs))
	pngBytes, err := base64.StdEncoding.DecodeString(imgs[0])
	require.NoError(t, err)
	var want bytes.Buffer
	require.NoError(t, imageio.EncodePNG(&want, ref.Image))
	assert.Equal(t, want.Bytes(), pngBytes)
	var reports []string
	require.NoError(t, json.Unmarshal(got["report"], &reports))
	var rep map[string]any
	require.NoError(t, json.Unmarshal([]byte(reports[0]), &rep))
	assert.Contains(t, rep, "refine")

	// UINT8 [H,W,3] in JSON, only the q output, no prompt (so no a).
	pix := make([]int, len(dec.Pix))
	for i, v := range dec.Pix {
		pix[i] = int(v)
	}
	resp, b = v2JSON(t, ts.URL+"/v2/models/assess/infer", map[string]any{
		"inputs":  []map[string]any{{"name": "image", "datatype": "UINT8", "shape": []int{dec.H, dec.W, 3}, "data": pix}},
		"outputs": []map[string]any{{"name": "q"}, {"name": "a"}}})
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	out = v2Out{}
	require.NoError(t, json.Unmarshal(b, &out))
	require.Len(t, out.Outputs, 1, "a is absent without a prompt")
	assert.Equal(t, "q", out.Outputs[0].Name)
}

// binaryBody is a request with the binary tensor data extension.
func binaryBody(t *testing.T, head map[string]any, bins ...[]byte) ([]byte, int) {
	t.Helper()
	h, err := json.Marshal(head)
	require.NoError(t, err)
	return append(h, bytes.Join(bins, nil)...), len(h)
}

func lenPrefixed(b []byte) []byte {
	return append(binary.LittleEndian.AppendUint32(nil, uint32(len(b))), b...)
}

func TestV2InferBinary(t *testing.T) {
	_, ts, _ := newServer(t, shared(t), server.Config{})
	img, pr := lenPrefixed(small(t)), lenPrefixed([]byte(prompt))
	body, n := binaryBody(t, map[string]any{
		"parameters": map[string]any{"binary_data_output": true, "dilate": 2},
		"inputs": []map[string]any{
			{"name": "image", "datatype": "BYTES", "shape": []int{1}, "parameters": map[string]any{"binary_data_size": len(img)}},
			{"name": "prompt", "datatype": "BYTES", "shape": []int{1}, "parameters": map[string]any{"binary_data_size": len(pr)}}},
		"outputs": []map[string]any{{"name": "p"}, {"name": "report", "parameters": map[string]any{"binary_data": false}}}}, img, pr)
	resp, b := do(t, "POST", ts.URL+"/v2/models/assess/infer", bytes.NewReader(body),
		map[string]string{"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": strconv.Itoa(n)})
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	hl, err := strconv.Atoi(resp.Header.Get("Inference-Header-Content-Length"))
	require.NoError(t, err)
	var out v2Out
	require.NoError(t, json.Unmarshal(b[:hl], &out))
	require.Len(t, out.Outputs, 2)
	assert.Equal(t, "p", out.Outputs[0].Name)
	assert.Equal(t, float64(4), out.Outputs[0].Parameters["binary_data_size"])
	require.Len(t, b[hl:], 4)
	var reports []string
	require.NoError(t, json.Unmarshal(out.Outputs[1].Data, &reports))
	var rep pipeline.Assessment
	require.NoError(t, json.Unmarshal([]byte(reports[0]), &rep))
	assert.Equal(t, rep.P, mathFloat32(b[hl:]))
	assert.Equal(t, 2, rep.Params.Dilate, "request parameters are pipeline params")
}

func mathFloat32(b []byte) float32 {
	var f float32
	_ = binary.Read(bytes.NewReader(b), binary.LittleEndian, &f)
	return f
}

func TestV2InferErrors(t *testing.T) {
	_, ts, _ := newServer(t, shared(t), server.Config{MaxBody: 1 << 20})
	img := base64.StdEncoding.EncodeToString(small(t))
	imgIn := map[string]any{"name": "image", "datatype": "BYTES", "shape": []int{1}, "data": []string{img}}
	cases := []struct {
		name  string
		model string
		req   map[string]any
		code  int
		msg   string
	}{
		{"unknown model", "nope", map[string]any{"inputs": []any{imgIn}}, 404, "unknown model"},
		{"no image", "assess", map[string]any{"inputs": []any{}}, 400, "image: missing"},
		{"unknown input", "assess", map[string]any{"inputs": []any{imgIn, map[string]any{"name": "mask", "datatype": "BYTES", "shape": []int{1}, "data": []string{"x"}}}}, 400, "unknown input"},
		{"unknown output", "assess", map[string]any{"inputs": []any{imgIn}, "outputs": []any{map[string]any{"name": "image"}}}, 400, "unknown output"},
		{"bad shape", "assess", map[string]any{"inputs": []any{map[string]any{"name": "image", "datatype": "BYTES", "shape": []int{2}, "data": []string{img, img}}}}, 400, "shape"},
		{"bad datatype", "assess", map[string]any{"inputs": []any{map[string]any{"name": "image", "datatype": "FP32", "shape": []int{1}, "data": []float32{1}}}}, 400, "datatype"},
		{"uint8 size", "assess", map[string]any{"inputs": []any{map[string]any{"name": "image", "datatype": "UINT8", "shape": []int{64, 96, 3}, "data": []int{1, 2, 3}}}}, 400, "bytes of data"},
		{"uint8 range", "assess", map[string]any{"inputs": []any{map[string]any{"name": "image", "datatype": "UINT8", "shape": []int{1, 1, 3}, "data": []int{1, 2, 300}}}}, 400, "out of range"},
		{"bad param", "assess", map[string]any{"inputs": []any{imgIn}, "parameters": map[string]any{"dilate": 1000}}, 400, "dilate"},
		{"unknown param", "assess", map[string]any{"inputs": []any{imgIn}, "parameters": map[string]any{"colour": 1}}, 400, "colour"},
		{"binary too short", "assess", map[string]any{"inputs": []any{map[string]any{"name": "image", "datatype": "BYTES", "shape": []int{1}, "parameters": map[string]any{"binary_data_size": 99}}}}, 400, "binary_data_size"},
		{"not base64", "assess", map[string]any{"inputs": []any{map[string]any{"name": "image", "datatype": "BYTES", "shape": []int{1}, "data": []string{"%%"}}}}, 400, "base64"},
		{"unknown field", "assess", map[string]any{"inputs": []any{imgIn}, "colour": 1}, 400, "colour"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, b := v2JSON(t, ts.URL+"/v2/models/"+c.model+"/infer", c.req)
			assert.Equal(t, c.code, resp.StatusCode, "%s", b)
			e := errorOf(t, b)
			assert.Len(t, e, 1, "the protocol's error shape")
			assert.Contains(t, e["error"], c.msg)
		})
	}
	resp, b := do(t, "POST", ts.URL+"/v2/models/assess/infer", bytes.NewReader([]byte("{}")), map[string]string{"Inference-Header-Content-Length": "9"})
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Contains(t, errorOf(t, b)["error"], "Inference-Header-Content-Length")
	resp, b = do(t, "POST", ts.URL+"/v2/models/assess/infer", bytes.NewReader(make([]byte, 2<<20)), nil)
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	assert.Len(t, errorOf(t, b), 1)
}
