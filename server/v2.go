package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"

	"github.com/grefine/grefine/pipeline"
	"github.com/grefine/grefine/pipeline/imageio"
)

// The KServe v2 Open Inference Protocol (REST), with Triton's binary tensor data
// extension, so that Triton and KServe clients work unchanged.

// v2Tensor is a tensor of a request or response. Data is the JSON form; a tensor with
// parameters.binary_data_size lies in the binary part instead.
type v2Tensor struct {
	Name       string          `json:"name"`
	Datatype   string          `json:"datatype"`
	Shape      []int64         `json:"shape"`
	Parameters map[string]any  `json:"parameters,omitempty"`
	Data       json.RawMessage `json:"data,omitempty"`
}

// v2Output is a requested output.
type v2Output struct {
	Name       string         `json:"name"`
	Parameters map[string]any `json:"parameters,omitempty"`
}

type v2Request struct {
	ID         string                     `json:"id"`
	Parameters map[string]json.RawMessage `json:"parameters"`
	Inputs     []v2Tensor                 `json:"inputs"`
	Outputs    []v2Output                 `json:"outputs"`
}

type v2Response struct {
	ModelName    string     `json:"model_name"`
	ModelVersion string     `json:"model_version"`
	ID           string     `json:"id"`
	Outputs      []v2Tensor `json:"outputs"`
}

// v2Meta is a tensor's metadata.
type v2Meta struct {
	Name     string  `json:"name"`
	Datatype string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
}

// v2Reserved are the request parameters of the protocol and of Triton's clients, not
// pipeline parameters. "timeout" (Triton's, in microseconds) is ignored: the server's
// --timeout applies.
var v2Reserved = map[string]bool{"binary_data_output": true, "sequence_id": true, "sequence_start": true,
	"sequence_end": true, "priority": true, "timeout": true, "headers": true}

func (s *Server) handleV2Server(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"name": "grefine", "version": pipeline.Version, "extensions": []string{"binary_tensor_data"}})
}

func (s *Server) handleV2Live(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusOK)
}

// handleV2Ready is 200 while the server takes requests, 503 once it drains.
func (s *Server) handleV2Ready(w http.ResponseWriter, r *http.Request) {
	if !s.ready.Load() {
		writeError(w, r, errShuttingDown, true)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// v2Model resolves {model}: "assess" or "refine"; refine is known only when loaded.
func (s *Server) v2Model(r *http.Request) (refine bool, err error) {
	switch m := r.PathValue("model"); m {
	case "assess":
		return false, nil
	case "refine":
		if !s.p.Info().Refine {
			return true, httpErrorf(http.StatusNotFound, "model refine is not loaded (the server runs assess-only)")
		}
		return true, nil
	default:
		return false, httpErrorf(http.StatusNotFound, "unknown model %q (assess or refine)", m)
	}
}

func (s *Server) handleV2Model(w http.ResponseWriter, r *http.Request) {
	refine, err := s.v2Model(r)
	if err != nil {
		writeError(w, r, err, true)
		return
	}
	fp := func(n string) v2Meta { return v2Meta{n, "FP32", []int64{1}} }
	by := func(n string) v2Meta { return v2Meta{n, "BYTES", []int64{1}} }
	outs := []v2Meta{fp("p"), fp("a"), fp("q"), by("report")}
	if refine {
		outs = append(outs, by("image"))
	}
	info := s.p.Info()
	var params []pipeline.Param
	for _, p := range info.Params {
		if refine || !p.Refine {
			params = append(params, p)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": model(refine), "versions": []string{modelVersion}, "platform": "grefine",
		"inputs": []v2Meta{by("image"), by("prompt")}, "outputs": outs,
		// An extension of the protocol's metadata: the request parameters this model
		// takes (the parameter table) and the limits on one request's work.
		// And where it runs: the device, the GPUs that serve (each with its slots), the slots in all.
		"parameters": map[string]any{"params": params, "work_limits": info.Work, "image_limits": info.Limits,
			"min_side": info.MinSide, "max_prompt_bytes": info.MaxPromptBytes, "decode_memory_bytes": info.DecodeMemory,
			"device": info.Device, "gpus": info.GPUs, "slots": info.Slots}})
}

func (s *Server) handleV2ModelReady(w http.ResponseWriter, r *http.Request) {
	if _, err := s.v2Model(r); err != nil {
		writeError(w, r, err, true)
		return
	}
	s.handleV2Ready(w, r)
}

// handleV2Infer serves POST /v2/models/{model}/infer.
func (s *Server) handleV2Infer(w http.ResponseWriter, r *http.Request) {
	refine, err := s.v2Model(r)
	if err != nil {
		writeError(w, r, err, true)
		return
	}
	req, bin, err := readV2(r)
	if err != nil {
		writeError(w, r, err, true)
		return
	}
	if req.ID != "" && r.Header.Get("X-Request-Id") == "" {
		if err := checkID(req.ID); err != nil {
			writeError(w, r, err, true)
			return
		}
		w.Header().Set("X-Request-Id", req.ID)
		r = r.WithContext(context.WithValue(r.Context(), requestIDKey, req.ID))
	}
	in, err := s.v2Input(req, bin)
	if err != nil {
		writeError(w, r, err, true)
		return
	}
	outs, err := v2Outputs(req, refine)
	if err != nil {
		writeError(w, r, err, true)
		return
	}
	res, err := s.run(r, refine, in, nil)
	if err != nil {
		writeError(w, r, err, true)
		return
	}
	s.writeV2(w, r, req, refine, outs, res)
}

// readV2 reads the request JSON and, with Inference-Header-Content-Length, the binary
// tensor data after it.
func readV2(r *http.Request) (v2Request, []byte, error) {
	var req v2Request
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return req, nil, bodyError(err)
	}
	head := body
	var bin []byte
	if h := r.Header.Get("Inference-Header-Content-Length"); h != "" {
		n, err := strconv.Atoi(h)
		if err != nil || n < 0 || n > len(body) {
			return req, nil, inputErrorf("Inference-Header-Content-Length %q: want 0 to %d (the body's size)", h, len(body))
		}
		head, bin = body[:n], body[n:]
	}
	if err := decodeStrict(head, &req); err != nil {
		return req, nil, err
	}
	return req, bin, nil
}

// v2Input reads the inputs, without decoding the image: image (BYTES [1], an encoded
// image; or UINT8 [H,W,3]) and prompt (BYTES [1]); the request parameters are
// pipeline parameters (the parameter table's JSON names).
func (s *Server) v2Input(req v2Request, bin []byte) (input, error) {
	var in input
	seen := map[string]bool{}
	for _, t := range req.Inputs {
		if seen[t.Name] {
			return in, inputErrorf("input %q given twice", t.Name)
		}
		seen[t.Name] = true
		raw, err := tensorBytes(t, &bin)
		if err != nil {
			return in, err
		}
		switch {
		case t.Name == "image" && t.Datatype == "BYTES":
			if in.raw, err = oneBytes(t, raw, true); err != nil {
				return in, err
			}
		case t.Name == "image" && t.Datatype == "UINT8":
			if in.img, err = uint8Image(t, raw); err != nil {
				return in, err
			}
		case t.Name == "image":
			return in, inputErrorf("input image: datatype %q, want BYTES (an encoded PNG/JPEG) or UINT8 [H,W,3]", t.Datatype)
		case t.Name == "prompt" && t.Datatype == "BYTES":
			b, err := oneBytes(t, raw, false)
			if err != nil {
				return in, err
			}
			in.prompt = string(b)
		case t.Name == "prompt":
			return in, inputErrorf("input prompt: datatype %q, want BYTES", t.Datatype)
		default:
			return in, inputErrorf("unknown input %q (image, prompt)", t.Name)
		}
	}
	if len(bin) != 0 {
		return in, inputErrorf("%d bytes of binary data after the last binary input", len(bin))
	}
	if in.img == nil && in.raw == nil {
		return in, inputErrorf("input image: missing")
	}
	params := map[string]json.RawMessage{}
	for k, v := range req.Parameters {
		if !v2Reserved[k] {
			params[k] = v
		}
	}
	raw, _ := json.Marshal(params)
	var err error
	in.params, err = s.parseParams(raw)
	return in, err
}

// tensorBytes is a binary tensor's bytes, taken from the front of *bin; nil for a
// tensor in JSON form.
func tensorBytes(t v2Tensor, bin *[]byte) ([]byte, error) {
	v, ok := t.Parameters["binary_data_size"]
	if !ok {
		return nil, nil
	}
	f, ok := v.(float64)
	if !ok || f < 0 || f != math.Trunc(f) || int(f) > len(*bin) {
		return nil, inputErrorf("input %q: binary_data_size %v: want 0 to %d (the binary data left)", t.Name, v, len(*bin))
	}
	n := int(f)
	raw := (*bin)[:n:n]
	*bin = (*bin)[n:]
	return raw, nil
}

// oneBytes is the one element of a BYTES [1] tensor: from binary data (4-byte
// little-endian length, then the bytes) or JSON (a string; base64 when b64).
func oneBytes(t v2Tensor, raw []byte, b64 bool) ([]byte, error) {
	if len(t.Shape) != 1 || t.Shape[0] != 1 {
		return nil, inputErrorf("input %q: shape %v, want [1]", t.Name, t.Shape)
	}
	if raw != nil {
		if len(raw) < 4 || int(binary.LittleEndian.Uint32(raw)) != len(raw)-4 {
			return nil, inputErrorf("input %q: binary BYTES data is not one length-prefixed element", t.Name)
		}
		return raw[4:], nil
	}
	var ss []string
	if err := json.Unmarshal(t.Data, &ss); err != nil || len(ss) != 1 {
		return nil, inputErrorf("input %q: data must be an array of one string", t.Name)
	}
	if !b64 {
		return []byte(ss[0]), nil
	}
	b, err := base64.StdEncoding.DecodeString(ss[0])
	if err != nil {
		return nil, inputErrorf("input %q: JSON data must be base64 of the encoded image: %v", t.Name, err)
	}
	return b, nil
}

// uint8Image is a UINT8 [H,W,3] tensor as an image (binary, or a flat JSON array).
func uint8Image(t v2Tensor, raw []byte) (*imageio.RGB8, error) {
	if len(t.Shape) != 3 || t.Shape[2] != 3 || t.Shape[0] < 1 || t.Shape[1] < 1 || t.Shape[0] > 1<<15 || t.Shape[1] > 1<<15 {
		return nil, inputErrorf("input image: UINT8 shape %v, want [H, W, 3] with 1 <= H, W <= 32768", t.Shape)
	}
	h, w := int(t.Shape[0]), int(t.Shape[1])
	if raw == nil {
		var vs []int
		if err := json.Unmarshal(t.Data, &vs); err != nil {
			return nil, inputErrorf("input image: UINT8 JSON data must be a flat array of 0..255: %s", jsonMessage(err))
		}
		raw = make([]byte, len(vs))
		for i, v := range vs {
			if v < 0 || v > 255 {
				return nil, inputErrorf("input image: UINT8 value %d at %d is out of range 0..255", v, i)
			}
			raw[i] = byte(v)
		}
	}
	if len(raw) != h*w*3 {
		return nil, inputErrorf("input image: %d bytes of data for shape %v (want %d)", len(raw), t.Shape, h*w*3)
	}
	return &imageio.RGB8{W: w, H: h, Pix: raw}, nil
}

// v2Outputs lists the outputs to send, each with whether it goes as binary data.
func v2Outputs(req v2Request, refine bool) ([]v2Output, error) {
	names := []string{"p", "a", "q", "report"}
	if refine {
		names = append(names, "image")
	}
	all := true
	if v, ok := req.Parameters["binary_data_output"]; ok && string(v) != "true" && string(v) != "false" {
		return nil, inputErrorf("parameter binary_data_output: want true or false")
	} else {
		all = ok && string(v) == "true"
	}
	if len(req.Outputs) == 0 {
		outs := make([]v2Output, len(names))
		for i, n := range names {
			outs[i] = v2Output{Name: n, Parameters: map[string]any{"binary_data": all}}
		}
		return outs, nil
	}
	known := map[string]bool{}
	for _, n := range names {
		known[n] = true
	}
	for i, o := range req.Outputs {
		if !known[o.Name] {
			return nil, inputErrorf("unknown output %q (%v)", o.Name, names)
		}
		b, ok := o.Parameters["binary_data"].(bool)
		if !ok {
			b = all
		}
		req.Outputs[i].Parameters = map[string]any{"binary_data": b}
	}
	return req.Outputs, nil
}

// writeV2 answers an inference: JSON, or JSON followed by binary data with
// Inference-Header-Content-Length when an output goes binary.
func (s *Server) writeV2(w http.ResponseWriter, r *http.Request, req v2Request, refine bool, outs []v2Output, res outcome) {
	resp := v2Response{ModelName: model(refine), ModelVersion: modelVersion, ID: requestIDOf(r)}
	var bin bytes.Buffer
	for _, o := range outs {
		var raw []byte // binary form
		var data any   // JSON form
		dt := "FP32"
		switch o.Name {
		case "p", "q", "a":
			v := res.a.P
			if o.Name == "q" {
				v = res.a.Q
			} else if o.Name == "a" {
				if res.a.A == nil {
					continue // no prompt: alignment was skipped
				}
				v = *res.a.A
			}
			raw = binary.LittleEndian.AppendUint32(nil, math.Float32bits(v))
			data = []float32{v}
		case "report", "image":
			dt = "BYTES"
			var b []byte
			var err error
			if o.Name == "report" {
				var rep any = res.a
				if res.r != nil {
					rep = res.r
				}
				b, err = json.Marshal(rep)
			} else {
				b, err = encodeImage(res.r.Image, mediaPNG)
			}
			if err != nil {
				writeError(w, r, fmt.Errorf("%w: encoding output %s: %v", pipeline.ErrInternal, o.Name, err), true)
				return
			}
			raw = append(binary.LittleEndian.AppendUint32(nil, uint32(len(b))), b...)
			if o.Name == "image" {
				data = []string{base64.StdEncoding.EncodeToString(b)}
			} else {
				data = []string{string(b)}
			}
		}
		t := v2Tensor{Name: o.Name, Datatype: dt, Shape: []int64{1}}
		if o.Parameters["binary_data"] == true {
			t.Parameters = map[string]any{"binary_data_size": len(raw)}
			bin.Write(raw)
		} else {
			t.Data, _ = json.Marshal(data)
		}
		resp.Outputs = append(resp.Outputs, t)
	}
	if bin.Len() == 0 {
		writeJSON(w, http.StatusOK, resp)
		return
	}
	head, _ := json.Marshal(resp)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Inference-Header-Content-Length", strconv.Itoa(len(head)))
	w.Header().Set("Content-Length", strconv.Itoa(len(head)+bin.Len()))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(head)
	_, _ = w.Write(bin.Bytes())
}
