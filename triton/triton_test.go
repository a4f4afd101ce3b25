package triton_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	_ "github.com/grefine/grefine/engine/cpu"
	_ "github.com/grefine/grefine/engine/cuda"
	_ "github.com/grefine/grefine/engine/ort"
	"github.com/grefine/grefine/internal/testkit/testenv"
	"github.com/grefine/grefine/pipeline"
	"github.com/grefine/grefine/pipeline/imageio"
	"github.com/grefine/grefine/triton"
)

const prompt = "Mr. Beans wearing sun glasses with blue doctor suit and stripe tie"

// config is a model configuration in Triton's JSON form, with edits applied.
func config(task string, edit func(map[string]any)) []byte {
	t := func(name, dt string, dims ...any) map[string]any {
		return map[string]any{"name": name, "data_type": dt, "dims": dims}
	}
	outs := []any{t("report", "TYPE_STRING", 1), t("p", "TYPE_FP32", 1), t("a", "TYPE_FP32", 1), t("q", "TYPE_FP32", 1),
		t("p_map", "TYPE_FP32", -1, -1), t("a_map", "TYPE_FP32", -1, -1), t("mask", "TYPE_FP32", -1, -1)}
	if task == "refine" {
		outs = append([]any{t("image", "TYPE_STRING", 1)}, outs...)
	}
	prompt := t("prompt", "TYPE_STRING", "1") // protobuf's JSON writes int64 as strings
	prompt["optional"] = true
	c := map[string]any{
		"name": "grefine_" + task, "backend": "grefine", "max_batch_size": 0,
		"input":  []any{t("image", "TYPE_STRING", 1), prompt},
		"output": outs,
		"parameters": map[string]any{
			"task":   map[string]any{"string_value": task},
			"models": map[string]any{"string_value": "models/tiny"},
		},
	}
	if edit != nil {
		edit(c)
	}
	b, _ := json.Marshal(c)
	return b
}

func param(k, v string) func(map[string]any) {
	return func(c map[string]any) { c["parameters"].(map[string]any)[k] = map[string]any{"string_value": v} }
}

func TestParseModelConfig(t *testing.T) {
	m, err := triton.ParseModelConfig(config("refine", param("slots", " 3 ")), "/repo/grefine_refine")
	require.NoError(t, err)
	assert.Equal(t, &triton.Model{Name: "grefine_refine", Task: triton.TaskRefine, Models: "/repo/grefine_refine/models/tiny",
		Backend: "ort", Slots: 3, Outputs: []string{"image", "report", "p", "a", "q", "p_map", "a_map", "mask"}}, m)
	m, err = triton.ParseModelConfig(config("assess", func(c map[string]any) {
		param("models", "/abs/set")(c)
		param("backend", "trt")(c)
		param("plans", "plans")(c)
		c["output"] = c["output"].([]any)[:2] // a model may declare fewer outputs
	}), "/repo/m")
	require.NoError(t, err)
	assert.Equal(t, "/abs/set", m.Models)
	assert.Equal(t, "/repo/m/plans", m.Plans)
	assert.Equal(t, []string{"report", "p"}, m.Outputs)

	for _, tc := range []struct {
		name string
		cfg  []byte
		want string
	}{
		{"not JSON", []byte("{"), "unexpected end"},
		{"other backend", config("assess", func(c map[string]any) { c["backend"] = "onnxruntime" }), `backend "onnxruntime", want grefine`},
		{"batching", config("assess", func(c map[string]any) { c["max_batch_size"] = 4 }), "max_batch_size 4: grefine takes one image per request"},
		{"unknown parameter", config("assess", param("colour", "red")), `unknown parameter "colour" (known: task, models,`},
		{"no task", config("assess", func(c map[string]any) { delete(c["parameters"].(map[string]any), "task") }), `parameter task "": want assess or refine`},
		{"bad task", config("assess", param("task", "paint")), `parameter task "paint"`},
		{"no models", config("assess", param("models", "")), "parameter models (the model-set directory) is required"},
		{"bad backend", config("assess", param("backend", "tf")), `parameter backend "tf": want ort or trt`},
		{"trt without plans", config("assess", param("backend", "trt")), "backend trt needs the parameter plans"},
		{"plans on ort", config("assess", param("plans", "/p")), "parameter plans needs backend trt"},
		{"bad device", config("assess", param("device", "tpu")), `parameter device "tpu": want one of [cpu cuda cuda-emu]`},
		{"slots 0", config("assess", param("slots", "0")), "parameter slots 0 is out of range [1, 64]"},
		{"slots 65", config("assess", param("slots", "65")), "parameter slots 65 is out of range"},
		{"slots not a number", config("assess", param("slots", "two")), `parameter slots: "two" is not an integer`},
		{"threads negative", config("assess", param("threads", "-1")), "parameter threads -1 is out of range"},
		{"unknown input", config("assess", func(c map[string]any) {
			c["input"] = append(c["input"].([]any), map[string]any{"name": "mask", "data_type": "TYPE_STRING", "dims": []int{1}})
		}), `unknown input "mask" (known: image, prompt)`},
		{"image as UINT8", config("assess", func(c map[string]any) {
			c["input"].([]any)[0].(map[string]any)["data_type"] = "TYPE_UINT8"
		}), `input "image": data_type TYPE_UINT8, want TYPE_STRING`},
		{"image optional", config("assess", func(c map[string]any) { c["input"].([]any)[0].(map[string]any)["optional"] = true }), "input image cannot be optional"},
		{"no image", config("assess", func(c map[string]any) { c["input"] = c["input"].([]any)[1:] }), "input image (TYPE_STRING, dims [1]) is missing"},
		{"image output on assess", config("assess", func(c map[string]any) {
			c["output"] = append(c["output"].([]any), map[string]any{"name": "image", "data_type": "TYPE_STRING", "dims": []int{1}})
		}), `unknown output "image" (known: report, p, a, q, p_map, a_map, mask) (task assess)`},
		{"map dims", config("assess", func(c map[string]any) { c["output"].([]any)[4].(map[string]any)["dims"] = []int{-1} }), `output "p_map": dims [-1], want [-1 -1]`},
		{"output twice", config("assess", func(c map[string]any) { c["output"] = append(c["output"].([]any), c["output"].([]any)[0]) }), `output "report" declared twice`},
		{"dims not integers", config("assess", func(c map[string]any) { c["input"].([]any)[0].(map[string]any)["dims"] = []string{"x"} }), "want an integer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := triton.ParseModelConfig(tc.cfg, "/repo")
			require.ErrorIs(t, err, triton.ErrConfig)
			assert.Contains(t, err.Error(), tc.want)
			assert.Equal(t, triton.CodeInvalidArg, triton.CodeOf(err))
		})
	}
}

func TestPipelineConfig(t *testing.T) {
	m := &triton.Model{Name: "m", Task: triton.TaskAssess, Models: "/set", Backend: "ort", Slots: 2, Threads: 1, Lib: "/ort.so"}
	cfg, err := m.PipelineConfig(triton.Placement{Kind: triton.KindCPU}, nil)
	require.NoError(t, err)
	assert.Equal(t, "cpu", cfg.Device)
	assert.True(t, cfg.AssessOnly)
	assert.Equal(t, 2, cfg.Slots)
	assert.Equal(t, map[string]string{"lib": "/ort.so"}, cfg.BackendOptions)
	assert.Empty(t, cfg.DeviceOptions)
	assert.Nil(t, cfg.PlanOpener)

	cfg, err = m.PipelineConfig(triton.Placement{Kind: triton.KindGPU, DeviceID: 3}, nil)
	require.NoError(t, err)
	assert.Equal(t, "cuda", cfg.Device, "a KIND_GPU instance runs on the GPU")
	assert.Equal(t, map[string]string{"ordinal": "3"}, cfg.DeviceOptions, "the device is the instance's GPU")
	assert.Equal(t, map[string]string{"lib": "/ort.so", "device_id": "3"}, cfg.BackendOptions, "ort's CUDA provider gets the instance's GPU")

	trt := *m
	trt.Backend, trt.Plans, trt.Lib, trt.Task = "trt", "/plans", "", triton.TaskRefine
	cfg, err = trt.PipelineConfig(triton.Placement{Kind: triton.KindGPU, DeviceID: 1}, nil)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"device": "1"}, cfg.BackendOptions, "the TensorRT shim gets the instance's GPU")
	assert.Equal(t, map[string]string{"ordinal": "1"}, cfg.DeviceOptions)
	assert.False(t, cfg.AssessOnly)
	assert.Equal(t, "/plans", cfg.Plans)
	assert.NotNil(t, cfg.PlanOpener, "plans open through package plans")
	_, err = trt.PipelineConfig(triton.Placement{Kind: triton.KindCPU}, nil)
	require.ErrorIs(t, err, triton.ErrConfig, "trt runs on device cuda by default: not on a KIND_CPU instance")

	emu := *m
	emu.Device = "cuda-emu"
	cfg, err = emu.PipelineConfig(triton.Placement{Kind: triton.KindCPU}, nil)
	require.NoError(t, err, "the emulated device runs on the CPU")
	assert.Equal(t, "cuda-emu", cfg.Device)

	cuda := *m
	cuda.Device = "cuda"
	_, err = cuda.PipelineConfig(triton.Placement{Kind: triton.KindCPU}, nil)
	require.ErrorIs(t, err, triton.ErrConfig)
	assert.Contains(t, err.Error(), "a KIND_CPU instance cannot run device cuda")
	_, err = m.PipelineConfig(triton.Placement{Kind: triton.KindGPU, DeviceID: -1}, nil)
	require.ErrorIs(t, err, triton.ErrConfig)
}

func TestWriteRepository(t *testing.T) {
	dir := t.TempDir()
	dirs, err := triton.WriteRepository(dir, triton.RepoOptions{Models: "testdata/set", Slots: 2, Instances: 3, GPU: true, GPUs: []int{0, 2}, Threads: 4})
	require.NoError(t, err)
	assert.Equal(t, []string{filepath.Join(dir, "grefine_assess"), filepath.Join(dir, "grefine_refine")}, dirs)
	abs, _ := filepath.Abs("testdata/set")
	for _, task := range []string{"assess", "refine"} {
		b, err := os.ReadFile(filepath.Join(dir, "grefine_"+task, "config.pbtxt"))
		require.NoError(t, err)
		txt := string(b)
		assert.DirExists(t, filepath.Join(dir, "grefine_"+task, "1"))
		for _, want := range []string{`name: "grefine_` + task + `"`, `backend: "grefine"`, "max_batch_size: 0",
			`{ name: "prompt" data_type: TYPE_STRING dims: [ 1 ] optional: true }`,
			`{ name: "p_map" data_type: TYPE_FP32 dims: [ -1, -1 ] }`,
			"{ count: 3 kind: KIND_GPU gpus: [ 0, 2 ] }",
			"key: \"task\"\n  value: { string_value: \"" + task + "\" }",
			"key: \"models\"\n  value: { string_value: \"" + abs + "\" }",
			"key: \"slots\"\n  value: { string_value: \"2\" }", "key: \"threads\"\n  value: { string_value: \"4\" }"} {
			assert.Contains(t, txt, want, task)
		}
		_, outputs, _ := strings.Cut(txt, "output [")
		assert.Equal(t, task == "refine", strings.Contains(outputs, `{ name: "image" data_type: TYPE_STRING dims: [ 1 ] },`), task)
		assert.NotContains(t, txt, `key: "device"`, "no device: the instance kind decides")
	}

	// Assess-only, on the CPU, written over the previous repository; other files stay.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "keep.txt"), []byte("x"), 0o644))
	dirs, err = triton.WriteRepository(dir, triton.RepoOptions{Models: "/set", AssessOnly: true, Device: "cpu"})
	require.NoError(t, err)
	assert.Len(t, dirs, 1)
	b, err := os.ReadFile(filepath.Join(dir, "grefine_assess", "config.pbtxt"))
	require.NoError(t, err)
	assert.Contains(t, string(b), "{ count: 1 kind: KIND_CPU }")
	assert.Contains(t, string(b), "key: \"device\"\n  value: { string_value: \"cpu\" }")
	assert.FileExists(t, filepath.Join(dir, "keep.txt"))

	for _, tc := range []struct {
		name string
		o    triton.RepoOptions
		want string
	}{
		{"no models", triton.RepoOptions{}, "no model set"},
		{"instances", triton.RepoOptions{Models: "/s", Instances: 65}, "instances 65 is out of range [1, 64]"},
		{"gpus on cpu", triton.RepoOptions{Models: "/s", GPUs: []int{0}}, "GPUs need KIND_GPU instances"},
		{"trt without plans", triton.RepoOptions{Models: "/s", Backend: "trt"}, "backend trt needs the parameter plans"},
		{"cuda on cpu", triton.RepoOptions{Models: "/s", Device: "cuda"}, "a KIND_CPU instance cannot run device cuda"},
		{"slots", triton.RepoOptions{Models: "/s", Slots: 99}, "parameter slots 99 is out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			empty := t.TempDir()
			_, err := triton.WriteRepository(empty, tc.o)
			require.ErrorIs(t, err, triton.ErrConfig)
			assert.Contains(t, err.Error(), tc.want)
			entries, _ := os.ReadDir(empty)
			assert.Empty(t, entries, "nothing is written when the settings are wrong")
		})
	}
}

func TestCodeOf(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want triton.Code
	}{
		{fmt.Errorf("x: %w", pipeline.ErrInput), triton.CodeInvalidArg},
		{fmt.Errorf("x: %w", pipeline.ErrBusy), triton.CodeUnavailable},
		{fmt.Errorf("x: %w", pipeline.ErrUnavailable), triton.CodeUnavailable},
		{fmt.Errorf("x: %w", pipeline.ErrClosed), triton.CodeUnavailable},
		{fmt.Errorf("x: %w", pipeline.ErrCanceled), triton.CodeCancelled},
		{context.DeadlineExceeded, triton.CodeCancelled},
		{fmt.Errorf("x: %w", pipeline.ErrInternal), triton.CodeInternal},
		{errors.New("anything else"), triton.CodeInternal},
		{fmt.Errorf("%w: bad", triton.ErrConfig), triton.CodeInvalidArg},
	} {
		assert.Equal(t, tc.want, triton.CodeOf(tc.err), "%v", tc.err)
	}
}

func TestBytesElement(t *testing.T) {
	raw := triton.BytesElement([]byte("abc"))
	assert.Equal(t, []byte{3, 0, 0, 0, 'a', 'b', 'c'}, raw)
	b, err := triton.OneBytes(triton.Tensor{Name: "prompt", Datatype: "BYTES", Shape: []int64{1}, Data: raw})
	require.NoError(t, err)
	assert.Equal(t, "abc", string(b))
	for _, tc := range []struct {
		t    triton.Tensor
		want string
	}{
		{triton.Tensor{Name: "x", Datatype: "FP32", Shape: []int64{1}, Data: raw}, "datatype FP32, want BYTES"},
		{triton.Tensor{Name: "x", Datatype: "BYTES", Shape: []int64{2}, Data: raw}, "shape [2], want [1]"},
		{triton.Tensor{Name: "x", Datatype: "BYTES", Shape: []int64{1}, Data: raw[:5]}, "not one length-prefixed BYTES element (5 bytes)"},
		{triton.Tensor{Name: "x", Datatype: "BYTES", Shape: []int64{1}, Data: append(raw, raw...)}, "not one length-prefixed"},
		{triton.Tensor{Name: "x", Datatype: "BYTES", Shape: []int64{1}, Data: []byte{1}}, "not one length-prefixed"},
	} {
		_, err := triton.OneBytes(tc.t)
		require.ErrorIs(t, err, pipeline.ErrInput)
		assert.Contains(t, err.Error(), tc.want)
	}
}

var (
	instOnce sync.Once
	instA    *triton.Instance
	instR    *triton.Instance
	instErr  error
)

// instances opens one assess and one refine instance on the tiny set (shared).
func instances(t *testing.T) (*triton.Instance, *triton.Instance) {
	t.Helper()
	testenv.ORT(t) // skips (or fails under GRF_REQUIRE_ORT=1) without ONNX Runtime
	instOnce.Do(func() {
		open := func(task string) (*triton.Instance, error) {
			m, err := triton.ParseModelConfig(config(task, param("models", testenv.Path(t, "testdata", "models", "tiny"))), "")
			if err != nil {
				return nil, err
			}
			return triton.Open(context.Background(), m, triton.Placement{Kind: triton.KindCPU}, nil)
		}
		if instA, instErr = open("assess"); instErr == nil {
			instR, instErr = open("refine")
		}
	})
	require.NoError(t, instErr)
	return instA, instR
}

func small(t *testing.T) []byte {
	b, err := os.ReadFile(testenv.Path(t, "tools", "pyclients", "small.png"))
	require.NoError(t, err)
	return b
}

func call(png []byte, params ...triton.Param) triton.Call {
	return triton.Call{Inputs: []triton.Tensor{
		{Name: "image", Datatype: "BYTES", Shape: []int64{1}, Data: triton.BytesElement(png)},
		{Name: "prompt", Datatype: "BYTES", Shape: []int64{1}, Data: triton.BytesElement([]byte(prompt))},
	}, Params: params}
}

func byName(ts []triton.Tensor) map[string]triton.Tensor {
	m := map[string]triton.Tensor{}
	for _, t := range ts {
		m[t.Name] = t
	}
	return m
}

func f32s(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

// TestInferAssessEqualsPipeline: the backend's assess is the pipeline's, with the request
// parameters applied by their JSON names; outputs in the model's order.
func TestInferAssessEqualsPipeline(t *testing.T) {
	a, _ := instances(t)
	png := small(t)
	c := call(png, triton.Param{Key: "dilate", Value: int64(2)}, triton.Param{Key: "binary_data_output", Value: true})
	c.ID = "tri-1"
	outs, err := a.Infer(context.Background(), c)
	require.NoError(t, err)
	var names []string
	for _, o := range outs {
		names = append(names, o.Name)
	}
	assert.Equal(t, []string{"report", "p", "a", "q", "p_map", "a_map", "mask"}, names)

	p := a.Pipeline()
	img, err := p.DecodeImage(png)
	require.NoError(t, err)
	pr := p.DefaultParams()
	pr.Dilate = 2
	want, err := p.Assess(context.Background(), pipeline.Request{Image: img, Prompt: prompt, Params: &pr})
	require.NoError(t, err)
	got := byName(outs)
	assert.Equal(t, []float32{want.P}, f32s(got["p"].Data))
	assert.Equal(t, []float32{want.Q}, f32s(got["q"].Data))
	assert.Equal(t, []float32{*want.A}, f32s(got["a"].Data))
	assert.Equal(t, []int64{int64(want.Height), int64(want.Width)}, got["mask"].Shape)
	assert.Equal(t, want.Mask, f32s(got["mask"].Data))
	assert.Equal(t, want.PMap, f32s(got["p_map"].Data))
	assert.Equal(t, want.AMap, f32s(got["a_map"].Data))
	rep, err := triton.OneBytes(got["report"])
	require.NoError(t, err)
	var r struct {
		RequestID string          `json:"request_id"`
		Params    pipeline.Params `json:"params"`
		Q         float32         `json:"q"`
	}
	require.NoError(t, json.Unmarshal(rep, &r))
	assert.Equal(t, "tri-1", r.RequestID)
	assert.Equal(t, pr, r.Params)
	assert.Equal(t, want.Q, r.Q)

	// Only the outputs asked for, in the model's order; no prompt: no a, no a_map.
	c = call(png)
	c.Inputs = c.Inputs[:1]
	c.Outputs = []string{"q", "a_map", "a", "p"}
	outs, err = a.Infer(context.Background(), c)
	require.NoError(t, err)
	require.Len(t, outs, 2)
	assert.Equal(t, "p", outs[0].Name)
	assert.Equal(t, "q", outs[1].Name)
}

// TestInferRefineEqualsPipeline: the PNG is the pipeline's refinement encoded as the CLI
// encodes it; seed and steps come from the request.
func TestInferRefineEqualsPipeline(t *testing.T) {
	_, r := instances(t)
	png := small(t)
	outs, err := r.Infer(context.Background(), triton.Call{Inputs: call(png).Inputs, Outputs: []string{"image"},
		Params: []triton.Param{{Key: "seed", Value: int64(4)}, {Key: "steps1", Value: int64(2)}, {Key: "steps2", Value: float64(2)}, {Key: "strength2", Value: 0.2}}})
	require.NoError(t, err)
	require.Len(t, outs, 1)
	got, err := triton.OneBytes(outs[0])
	require.NoError(t, err)

	p := r.Pipeline()
	img, err := p.DecodeImage(png)
	require.NoError(t, err)
	pr := p.DefaultParams()
	pr.Seed, pr.Steps1, pr.Steps2, pr.Strength2 = 4, 2, 2, 0.2
	want, err := p.Refine(context.Background(), pipeline.Request{Image: img, Prompt: prompt, Params: &pr})
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, imageio.EncodePNG(&buf, want.Image))
	assert.Equal(t, buf.Bytes(), got)
}

func TestInferErrors(t *testing.T) {
	a, r := instances(t)
	png := small(t)
	bad := func(mut func(*triton.Call)) triton.Call {
		c := call(png)
		mut(&c)
		return c
	}
	for _, tc := range []struct {
		name string
		in   *triton.Instance
		c    triton.Call
		want string
	}{
		{"unknown parameter", a, call(png, triton.Param{Key: "colour", Value: int64(1)}), `params: unknown parameter "colour" (known: seed, steps1,`},
		{"wrong type", a, call(png, triton.Param{Key: "dilate", Value: "two"}), `params: dilate: want an integer, got the string "two"`},
		{"parameter twice", a, call(png, triton.Param{Key: "seed", Value: int64(1)}, triton.Param{Key: "seed", Value: int64(2)}), `parameter "seed" given twice`},
		{"out of range", r, call(png, triton.Param{Key: "steps1", Value: int64(0)}), "steps1: 0 is out of range [1, 1000]"},
		{"a STRING for a number", a, call(png, triton.Param{Key: "dilate", Value: "2"}), `params: dilate: want an integer, got the string "2"`},
		{"NaN", r, call(png, triton.Param{Key: "strength2", Value: math.NaN()}), "parameters: json: unsupported value: NaN"},
		{"bad image", a, call([]byte("not an image")), "input image: imageio: cannot decode image"},
		{"missing image", a, bad(func(c *triton.Call) { c.Inputs = c.Inputs[1:] }), "input image: missing"},
		{"unknown input", a, bad(func(c *triton.Call) { c.Inputs[1].Name = "mask" }), `unknown input "mask" (image, prompt)`},
		{"input twice", a, bad(func(c *triton.Call) { c.Inputs[1] = c.Inputs[0] }), `input "image" given twice`},
		{"wrong datatype", a, bad(func(c *triton.Call) { c.Inputs[0].Datatype = "FP32" }), `input "image": datatype FP32, want BYTES`},
		{"unknown output", a, bad(func(c *triton.Call) { c.Outputs = []string{"image"} }), `unknown output "image" (model grefine_assess has`},
		{"prompt not UTF-8", a, bad(func(c *triton.Call) { c.Inputs[1].Data = triton.BytesElement([]byte{0xff, 0xfe}) }), "prompt is not valid UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.in.Infer(context.Background(), tc.c)
			require.ErrorIs(t, err, pipeline.ErrInput, "%v", err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Equal(t, triton.CodeInvalidArg, triton.CodeOf(err))
		})
	}
}

// TestInferCancelled: Cancelled is asked at every progress event (each denoising step);
// the request stops at the first true and fails CANCELLED.
func TestInferCancelled(t *testing.T) {
	_, r := instances(t)
	asked := 0
	c := call(small(t), triton.Param{Key: "steps1", Value: int64(50)}, triton.Param{Key: "steps2", Value: int64(50)})
	c.Cancelled = func() bool {
		asked++
		return asked == 5
	}
	_, err := r.Infer(context.Background(), c)
	require.ErrorIs(t, err, pipeline.ErrCanceled)
	assert.Contains(t, err.Error(), "triton: the request was cancelled")
	assert.Equal(t, triton.CodeCancelled, triton.CodeOf(err))
	assert.Equal(t, 5, asked, "the request stops at the event that saw the cancellation")

	// Never cancelled: asked at least once per denoising step.
	asked = 0
	c = call(small(t), triton.Param{Key: "steps1", Value: int64(3)}, triton.Param{Key: "steps2", Value: int64(2)})
	c.Cancelled = func() bool { asked++; return false }
	_, err = r.Infer(context.Background(), c)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, asked, 5)
}

func TestClosedInstance(t *testing.T) {
	testenv.ORT(t)
	m, err := triton.ParseModelConfig(config("assess", param("models", testenv.Path(t, "testdata", "models", "tiny"))), "")
	require.NoError(t, err)
	in, err := triton.Open(context.Background(), m, triton.Placement{Kind: triton.KindCPU}, nil)
	require.NoError(t, err)
	require.NoError(t, in.Close())
	require.NoError(t, in.Close(), "Close is idempotent")
	_, err = in.Infer(context.Background(), call(small(t)))
	require.ErrorIs(t, err, pipeline.ErrUnavailable)
	assert.Equal(t, triton.CodeUnavailable, triton.CodeOf(err))

	m.Models = t.TempDir() // no models.json
	_, err = triton.Open(context.Background(), m, triton.Placement{Kind: triton.KindCPU}, nil)
	require.Error(t, err)
	assert.Equal(t, triton.CodeUnavailable, triton.CodeOf(err), "%v", err)
}
