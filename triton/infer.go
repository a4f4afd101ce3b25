package triton

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/rs/zerolog"

	"github.com/grefine/grefine/pipeline"
	"github.com/grefine/grefine/pipeline/imageio"
)

// Instance is one Triton model instance: a loaded pipeline serving one model's task.
// It is safe for concurrent use (requests run on the pipeline's slots).
type Instance struct {
	m *Model
	p *pipeline.Pipeline
}

// Open loads the pipeline of one instance of m at pl (model set verified, engines
// opened). log receives the pipeline's logs (nil: none).
func Open(ctx context.Context, m *Model, pl Placement, log *zerolog.Logger) (*Instance, error) {
	cfg, err := m.PipelineConfig(pl, log)
	if err != nil {
		return nil, err
	}
	p, err := pipeline.Open(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("model %q: opening the pipeline: %w", m.Name, err)
	}
	return &Instance{m: m, p: p}, nil
}

// Pipeline is the instance's pipeline.
func (in *Instance) Pipeline() *pipeline.Pipeline { return in.p }

// Close waits for the requests in flight and releases the pipeline. Nil-safe and
// idempotent.
func (in *Instance) Close() error {
	if in == nil || in.p == nil {
		return nil
	}
	p := in.p
	in.p = nil
	return p.Close()
}

// Tensor is an input or output tensor in KServe v2 terms: Datatype "BYTES", "FP32",
// "UINT8", ...; BYTES data is Triton's serialisation (each element a 4-byte
// little-endian length, then its bytes); FP32 is little-endian.
type Tensor struct {
	Name     string
	Datatype string
	Shape    []int64
	Data     []byte
}

// Param is one request parameter as Triton delivers it: Value is a string, int64, bool
// or float64.
type Param struct {
	Key   string
	Value any
}

// Call is one inference request, marshalled out of Triton's C objects.
type Call struct {
	// ID is the client's request id ("": the pipeline makes one).
	ID string
	// Inputs are the request's input tensors.
	Inputs []Tensor
	// Params are the request parameters: pipeline parameters by their JSON names (seed,
	// steps1, strength2, ...), as in the REST API and `grefine serve`'s KServe v2.
	Params []Param
	// Outputs are the outputs to send (Triton lists all of the model's when the client
	// named none).
	Outputs []string
	// Cancelled, if set, is asked at every progress event of the request (once per
	// denoising step): true stops the request within that step (ErrCanceled).
	Cancelled func() bool
}

// errClientCancel is why a request stopped when Call.Cancelled said so.
var errClientCancel = errors.New("triton: the request was cancelled")

// reservedParams are request parameters of Triton's front ends and clients, not the
// pipeline's.
var reservedParams = map[string]bool{"binary_data_output": true, "sequence_id": true, "sequence_start": true,
	"sequence_end": true, "priority": true, "timeout": true, "headers": true, "triton_enable_empty_final_response": true}

// Infer runs one request the way `grefine serve` does: the cheap checks first (the
// requested outputs, the parameters through the pipeline's parameter table, the inputs'
// framing), then admission (parameters, prompt and the request's work validated, its
// place taken), then the image decoded within the pipeline's limits and decode budget,
// then assess or refine. It returns the requested outputs in the order the model
// declares them. Errors wrap the pipeline's sentinels (CodeOf maps them onto Triton's
// error codes).
func (in *Instance) Infer(ctx context.Context, c Call) ([]Tensor, error) {
	if in == nil || in.p == nil {
		return nil, fmt.Errorf("%w: the model instance is closed", pipeline.ErrUnavailable)
	}
	want, err := in.outputs(c.Outputs)
	if err != nil {
		return nil, err
	}
	params, err := in.params(c.Params)
	if err != nil {
		return nil, err
	}
	raw, prompt, err := inputs(c.Inputs)
	if err != nil {
		return nil, err
	}
	refining := in.m.Task == TaskRefine
	tk, err := in.p.Admit(ctx, pipeline.Admission{ID: c.ID, Refine: refining, Prompt: prompt, Params: params})
	if err != nil {
		return nil, err
	}
	defer tk.Close()
	if _, err := tk.DecodeImage(raw); err != nil {
		return nil, fmt.Errorf("input image: %w", err)
	}
	req := pipeline.Request{Ticket: tk}
	if c.Cancelled != nil {
		req.Observer = func(pipeline.Event) error {
			if c.Cancelled() {
				return errClientCancel
			}
			return nil
		}
	}
	var res result
	if refining {
		if res.r, err = in.p.Refine(ctx, req); res.r != nil {
			res.a = res.r.Assessment
		}
	} else {
		res.a, err = in.p.Assess(ctx, req)
	}
	if err != nil {
		return nil, err
	}
	return res.tensors(want)
}

// outputs checks the requested names against the model's outputs.
func (in *Instance) outputs(names []string) (map[string]bool, error) {
	declared := map[string]bool{}
	for _, n := range in.m.Outputs {
		declared[n] = true
	}
	want := map[string]bool{}
	for _, n := range names {
		if !declared[n] {
			return nil, fmt.Errorf("%w: unknown output %q (model %s has %v)", pipeline.ErrInput, n, in.m.Name, in.m.Outputs)
		}
		want[n] = true
	}
	if len(names) == 0 {
		want = declared
	}
	return want, nil
}

// params applies the request parameters onto the pipeline's defaults through the
// parameter table (pipeline.ParseParams, as the server's JSON and KServe parameters):
// unknown names, wrong types and repeated names are bad input; the values are checked
// at admission. Triton's typed values (INT, DOUBLE, BOOL, STRING) keep their JSON types,
// so a STRING "2" is not an integer, as in the REST API's JSON.
func (in *Instance) params(ps []Param) (*pipeline.Params, error) {
	obj := map[string]any{}
	for _, p := range ps {
		if reservedParams[p.Key] {
			continue
		}
		if _, dup := obj[p.Key]; dup {
			return nil, fmt.Errorf("%w: parameter %q given twice", pipeline.ErrInput, p.Key)
		}
		obj[p.Key] = p.Value
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("%w: parameters: %v", pipeline.ErrInput, err)
	}
	pr, err := pipeline.ParseParams(raw, in.p.DefaultParams())
	if err != nil {
		return nil, err
	}
	return &pr, nil
}

// inputs takes the encoded image (BYTES [1]: a PNG, JPEG or GIF) and the prompt (BYTES
// [1], optional) out of their tensors.
func inputs(ts []Tensor) (raw []byte, prompt string, err error) {
	seen := map[string]bool{}
	for _, t := range ts {
		if seen[t.Name] {
			return nil, "", fmt.Errorf("%w: input %q given twice", pipeline.ErrInput, t.Name)
		}
		seen[t.Name] = true
		if t.Name != "image" && t.Name != "prompt" {
			return nil, "", fmt.Errorf("%w: unknown input %q (image, prompt)", pipeline.ErrInput, t.Name)
		}
		b, err := OneBytes(t)
		if err != nil {
			return nil, "", err
		}
		if t.Name == "image" {
			raw = b
		} else {
			prompt = string(b)
		}
	}
	if raw == nil {
		return nil, "", fmt.Errorf("%w: input image: missing", pipeline.ErrInput)
	}
	return raw, prompt, nil
}

// OneBytes is the one element of a BYTES tensor of shape [1].
func OneBytes(t Tensor) ([]byte, error) {
	if t.Datatype != "BYTES" {
		return nil, fmt.Errorf("%w: input %q: datatype %s, want BYTES", pipeline.ErrInput, t.Name, t.Datatype)
	}
	if len(t.Shape) != 1 || t.Shape[0] != 1 {
		return nil, fmt.Errorf("%w: input %q: shape %v, want [1]", pipeline.ErrInput, t.Name, t.Shape)
	}
	if len(t.Data) < 4 || uint64(binary.LittleEndian.Uint32(t.Data)) != uint64(len(t.Data)-4) {
		return nil, fmt.Errorf("%w: input %q: the data is not one length-prefixed BYTES element (%d bytes)", pipeline.ErrInput, t.Name, len(t.Data))
	}
	return t.Data[4:], nil
}

// BytesElement serialises one BYTES element: its 4-byte little-endian length, then b.
func BytesElement(b []byte) []byte {
	out := make([]byte, 4, 4+len(b))
	binary.LittleEndian.PutUint32(out, uint32(len(b)))
	return append(out, b...)
}

// result is the pipeline's outcome: an assessment, or a refinement holding one.
type result struct {
	a *pipeline.Assessment
	r *pipeline.Refinement
}

// tensors encodes the wanted outputs in the order of outputSpecs. "a" and "a_map" are
// left out when alignment was skipped (no prompt), as in `grefine serve`.
func (res result) tensors(want map[string]bool) ([]Tensor, error) {
	var out []Tensor
	scalar := func(name string, v float32) {
		out = append(out, Tensor{Name: name, Datatype: "FP32", Shape: []int64{1}, Data: binary.LittleEndian.AppendUint32(nil, math.Float32bits(v))})
	}
	plane := func(name string, m []float32) {
		if m == nil {
			return
		}
		b := make([]byte, 4*len(m))
		for i, v := range m {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
		}
		out = append(out, Tensor{Name: name, Datatype: "FP32", Shape: []int64{int64(res.a.Height), int64(res.a.Width)}, Data: b})
	}
	for _, s := range outputSpecs {
		if !want[s.name] {
			continue
		}
		switch s.name {
		case "image":
			if res.r == nil {
				continue
			}
			var buf bytes.Buffer
			if err := imageio.EncodePNG(&buf, res.r.Image); err != nil {
				return nil, fmt.Errorf("%w: encoding the image: %v", pipeline.ErrInternal, err)
			}
			out = append(out, Tensor{Name: "image", Datatype: "BYTES", Shape: []int64{1}, Data: BytesElement(buf.Bytes())})
		case "report":
			var rep any = res.a
			if res.r != nil {
				rep = res.r
			}
			b, err := json.Marshal(rep)
			if err != nil {
				return nil, fmt.Errorf("%w: encoding the report: %v", pipeline.ErrInternal, err)
			}
			out = append(out, Tensor{Name: "report", Datatype: "BYTES", Shape: []int64{1}, Data: BytesElement(b)})
		case "p":
			scalar("p", res.a.P)
		case "q":
			scalar("q", res.a.Q)
		case "a":
			if res.a.A != nil {
				scalar("a", *res.a.A)
			}
		case "p_map":
			plane("p_map", res.a.PMap)
		case "a_map":
			plane("a_map", res.a.AMap)
		case "mask":
			plane("mask", res.a.Mask)
		}
	}
	return out, nil
}

// Code is a Triton error code (TRITONSERVER_Error_Code).
type Code int

// The codes grefine returns. Triton's HTTP front end answers INVALID_ARG with 400,
// UNAVAILABLE with 503 and INTERNAL with 500; gRPC with INVALID_ARGUMENT, UNAVAILABLE,
// INTERNAL and CANCELLED.
const (
	CodeInternal Code = iota
	CodeInvalidArg
	CodeUnavailable
	CodeCancelled
)

func (c Code) String() string {
	switch c {
	case CodeInvalidArg:
		return "INVALID_ARG"
	case CodeUnavailable:
		return "UNAVAILABLE"
	case CodeCancelled:
		return "CANCELLED"
	}
	return "INTERNAL"
}

// codes maps the pipeline's status table onto Triton's codes: bad input is the
// client's fault; busy (no slot in time) and unavailable are the server's state; a
// cancelled request is CANCELLED; everything else is internal.
var codes = map[pipeline.Status]Code{
	pipeline.StatusInput:       CodeInvalidArg,
	pipeline.StatusBusy:        CodeUnavailable,
	pipeline.StatusUnavailable: CodeUnavailable,
	pipeline.StatusCanceled:    CodeCancelled,
	pipeline.StatusInternal:    CodeInternal,
}

// CodeOf is the Triton error code of err (a configuration error is INVALID_ARG).
func CodeOf(err error) Code {
	if errors.Is(err, ErrConfig) {
		return CodeInvalidArg
	}
	if c, ok := codes[pipeline.StatusOf(err)]; ok {
		return c
	}
	return CodeInternal
}
