package plans_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/engine/trt"
	"github.com/grefine/grefine/engine/trt/trttest"
	"github.com/grefine/grefine/plans"
)

func TestMain(m *testing.M) { os.Exit(trttest.Main(m)) }

func backend(t *testing.T) *trt.Backend {
	t.Helper()
	b := trt.New(trt.Options{Lib: trttest.Lib()})
	require.NoError(t, b.Available())
	t.Cleanup(func() { assert.NoError(t, b.Close()) })
	return b
}

// fakeONNX writes a fake-shim "onnx" file with the spec's inputs (dims that vary across
// profiles are dynamic) and outputs (copies of the first input).
func fakeONNX(t *testing.T, dir string, s *plans.Spec) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("grefine-fake-plan 1\n")
	ins := s.Inputs()
	for _, in := range ins {
		r := s.Profiles[0].Shapes[in]
		dims := make([]string, len(r.Min))
		for d := range r.Min {
			dims[d] = fmt.Sprint(r.Min[d])
			for _, p := range s.Profiles {
				if q := p.Shapes[in]; q.Min[d] != r.Min[d] || q.Max[d] != r.Min[d] {
					dims[d] = "-1"
				}
			}
		}
		dt := "float32"
		if in == "input_ids" {
			dt = "int32"
		}
		fmt.Fprintf(&b, "input %s %s %s\n", in, dt, strings.Join(dims, ","))
	}
	for _, o := range s.Outputs {
		dt := "float32"
		if ins[0] == "input_ids" {
			dt = "int32"
		}
		fmt.Fprintf(&b, "output %s %s %s 1 0\n", o, dt, ins[0])
	}
	path := filepath.Join(dir, s.ONNX)
	require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o644))
	return path
}

func mustParse(t *testing.T, y string) *plans.Spec {
	t.Helper()
	s, err := plans.Parse("test.yaml", []byte(y))
	require.NoError(t, err)
	return s
}

const vaeSpec = `
name: vae
onnx: vae.onnx
precision: fp32
workspace: 4GiB
outputs: [images]
profiles:
  - name: static
    shapes:
      latent: {static: [1, 4, 128, 128]}
  - name: dynamic
    shapes:
      latent: {min: [1, 4, 16, 16], opt: [1, 4, 96, 128], max: [1, 4, 128, 128]}
`

func TestBuiltinSpecs(t *testing.T) {
	specs, err := plans.Builtin()
	require.NoError(t, err)
	var names []string
	byName := map[string]*plans.Spec{}
	for _, s := range specs {
		names = append(names, s.Name)
		byName[s.Name] = s
	}
	assert.Equal(t, []string{"clip_surgery", "clip_text", "pasd_text", "pasd_unet", "pasd_vae_decoder", "pasd_vae_encoder",
		"sdxl_text_g", "sdxl_text_l", "sdxl_unet", "sdxl_vae_decoder", "sdxl_vae_encoder"}, names)

	// DESIGN §2 contract names and the shape strategy.
	unet := byName["sdxl_unet"]
	assert.Equal(t, []string{"encoder_hidden_states", "sample", "text_embeds", "time_ids", "timestep"}, unet.Inputs())
	assert.Equal(t, []string{"noise_pred"}, unet.Outputs)
	s0 := unet.Profiles[0].Shapes["sample"]
	assert.Equal(t, []int64{2, 9, 128, 128}, s0.Min)
	assert.Equal(t, s0.Min, s0.Max, "profile 0 is static 1024²")
	assert.NotEqual(t, unet.Profiles[1].Shapes["sample"].Min, unet.Profiles[1].Shapes["sample"].Max, "profile 1 is dynamic")
	assert.Equal(t, trt.FP32, byName["sdxl_vae_decoder"].Precision)
	assert.Equal(t, trt.FP32, byName["sdxl_vae_encoder"].Precision)
	assert.Equal(t, []string{"hidden_states", "text_embeds"}, byName["sdxl_text_g"].Outputs)
	assert.Equal(t, []string{"control", "encoder_hidden_states", "sample", "timestep"}, byName["pasd_unet"].Inputs())
	assert.Equal(t, plans.ByteSize(8<<30), unet.Workspace)
}

func TestParseErrors(t *testing.T) {
	dynamic := "latent: {min: [1, 4, 16, 16], opt: [1, 4, 96, 128], max: [1, 4, 128, 128]}"
	for _, tc := range []struct {
		name, old, new, msg string
	}{
		{name: "unknown field", old: "precision: fp32", new: "precison: fp32", msg: "field precison not found"},
		{name: "bad precision", old: "precision: fp32", new: "precision: int8", msg: `precision "int8" is not fp32, fp16 or bf16`},
		{name: "bad workspace", old: "workspace: 4GiB", new: "workspace: 4 gigs", msg: `size "4 gigs"`},
		{name: "bad name", old: "name: vae", new: "name: VAE", msg: `name "VAE"`},
		{name: "onnx path", old: "onnx: vae.onnx", new: "onnx: ../vae.onnx", msg: "must be a file name"},
		{name: "no outputs", old: "outputs: [images]", new: "outputs: []", msg: "outputs must list"},
		{name: "no profiles", old: vaeSpec[strings.Index(vaeSpec, "profiles:"):], new: "profiles: []\n", msg: "at least one profile"},
		{name: "min above max", old: dynamic, new: "latent: {min: [1, 4, 130, 16], opt: [1, 4, 96, 128], max: [1, 4, 128, 128]}", msg: "dim 2: need 0 < min <= opt <= max, got 130, 96, 128"},
		{name: "rank mismatch", old: dynamic, new: "latent: {min: [1, 4, 16], opt: [1, 4, 96, 128], max: [1, 4, 128, 128]}", msg: "one equal, non-zero rank"},
		{name: "static and min", old: "latent: {static: [1, 4, 128, 128]}", new: "latent: {static: [1, 4, 128, 128], min: [1, 4, 1, 1]}", msg: "static excludes"},
		{name: "inputs differ", old: dynamic, new: "mask: {static: [1, 1, 128, 128]}", msg: "differ from profile 0's [latent]"},
		{name: "duplicate profile", old: "name: dynamic", new: "name: static", msg: "unique"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Contains(t, vaeSpec, tc.old)
			_, err := plans.Parse("vae.yaml", []byte(strings.Replace(vaeSpec, tc.old, tc.new, 1)))
			require.Error(t, err)
			assert.ErrorIs(t, err, plans.ErrSpec)
			assert.ErrorContains(t, err, tc.msg)
			assert.ErrorContains(t, err, "vae.yaml")
		})
	}
}

func TestByteSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want plans.ByteSize
		str  string
	}{
		{in: "8GiB", want: 8 << 30, str: "8GiB"},
		{in: "512MiB", want: 512 << 20, str: "512MiB"},
		{in: "1536MiB", want: 1536 << 20, str: "1536MiB"},
		{in: "1000", want: 1000, str: "1000"},
	} {
		s := mustParse(t, strings.Replace(vaeSpec, "workspace: 4GiB", "workspace: "+tc.in, 1))
		assert.Equal(t, tc.want, s.Workspace, tc.in)
		assert.Equal(t, tc.str, s.Workspace.String())
	}
}

func TestKey(t *testing.T) {
	base := mustParse(t, vaeSpec)
	target := trt.Target{GPU: "NVIDIA H100", ComputeCapability: "9.0", TensorRT: "10.16.0"}
	k := plans.Key(target, "abc", base)
	assert.Len(t, k, 64)
	assert.Equal(t, k, plans.Key(target, "abc", mustParse(t, vaeSpec)), "deterministic")

	other := target
	other.GPU = "NVIDIA H100 NVL"
	assert.Equal(t, k, plans.Key(other, "abc", base), "GPU name is not part of the key")
	ws := mustParse(t, strings.Replace(vaeSpec, "4GiB", "2GiB", 1))
	assert.Equal(t, k, plans.Key(target, "abc", ws), "workspace is not part of the key")

	for name, changed := range map[string]string{
		"compute capability": plans.Key(trt.Target{ComputeCapability: "8.9", TensorRT: "10.16.0"}, "abc", base),
		"tensorrt":           plans.Key(trt.Target{ComputeCapability: "9.0", TensorRT: "11.1.0"}, "abc", base),
		"onnx":               plans.Key(target, "abd", base),
		"precision":          plans.Key(target, "abc", mustParse(t, strings.Replace(vaeSpec, "fp32", "fp16", 1))),
		"profile":            plans.Key(target, "abc", mustParse(t, strings.Replace(vaeSpec, "opt: [1, 4, 96, 128]", "opt: [1, 4, 64, 64]", 1))),
	} {
		assert.NotEqual(t, k, changed, name)
	}
}

func TestBuildAndVerify(t *testing.T) {
	b := backend(t)
	spec := mustParse(t, vaeSpec)
	models, out := t.TempDir(), t.TempDir()
	onnx := fakeONNX(t, models, spec)
	cache := filepath.Join(t.TempDir(), "timing.cache")

	sc, err := plans.Build(context.Background(), b, spec, onnx, out, plans.BuildOptions{TimingCache: cache})
	require.NoError(t, err)
	assert.FileExists(t, cache)
	digest, err := plans.ONNXDigest(models, spec)
	require.NoError(t, err)
	target, err := b.Target()
	require.NoError(t, err)
	assert.Equal(t, plans.Key(target, digest, spec), sc.Key)
	assert.Equal(t, "8.9", sc.ComputeCapability)
	assert.Equal(t, "10.16.0", sc.TensorRT)
	assert.Equal(t, []plans.TensorJSON{{Name: "latent", DType: "float32", Shape: []int64{1, 4, -1, -1}}}, sc.Inputs)

	// Triton layout, nothing else left behind.
	var files []string
	require.NoError(t, filepath.Walk(out, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			rel, _ := filepath.Rel(out, p)
			files = append(files, rel)
		}
		return err
	}))
	assert.ElementsMatch(t, []string{"vae/1/model.plan", "vae/config.pbtxt", "vae/grefine-plan.json"}, files)
	cfg, err := os.ReadFile(plans.ConfigPath(out, "vae"))
	require.NoError(t, err)
	assert.Equal(t, `# Generated by grefine plans build. DO NOT EDIT.
name: "vae"
platform: "tensorrt_plan"
max_batch_size: 0
input [
  {
    name: "latent"
    data_type: TYPE_FP32
    dims: [ 1, 4, -1, -1 ]
  }
]
output [
  {
    name: "images"
    data_type: TYPE_FP32
    dims: [ 1, 4, -1, -1 ]
  }
]
instance_group [
  {
    count: 1
    kind: KIND_GPU
  }
]
`, string(cfg))

	want := plans.Expect{Spec: spec, Target: target, ONNXSHA256: digest}
	_, err = plans.Verify(out, want)
	require.NoError(t, err)

	// The plan runs through the trt backend.
	e, err := b.OpenEngine(plans.PlanPath(out, "vae"), engine.OpenOptions{Name: "vae"})
	require.NoError(t, err)
	assert.Len(t, e.Plan().Profiles, 2)
	require.NoError(t, e.Close())

	t.Run("mismatches", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			edit func(*plans.Expect)
			msg  string
		}{
			{name: "gpu", edit: func(x *plans.Expect) { x.Target.ComputeCapability = "9.0" }, msg: "built for compute capability 8.9, this GPU (fake gpu 0) is 9.0"},
			{name: "tensorrt", edit: func(x *plans.Expect) { x.Target.TensorRT = "11.1.0" }, msg: "built with TensorRT 10.16.0, running 11.1.0"},
			{name: "onnx", edit: func(x *plans.Expect) { x.ONNXSHA256 = strings.Repeat("0", 64) }, msg: "the model is 000000000000"},
			{name: "spec", edit: func(x *plans.Expect) {
				x.Spec = mustParse(t, strings.Replace(vaeSpec, "fp32", "fp16", 1))
			}, msg: `spec changed since the build: "precision=fp32" became "precision=fp16"`},
			{name: "two at once", edit: func(x *plans.Expect) { x.Target.ComputeCapability = "9.0"; x.Target.TensorRT = "11.1.0" }, msg: "is 9.0; built with TensorRT"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				x := want
				tc.edit(&x)
				_, err := plans.Verify(out, x)
				require.Error(t, err)
				assert.ErrorIs(t, err, plans.ErrMismatch)
				assert.ErrorIs(t, err, engine.ErrModel)
				assert.ErrorContains(t, err, tc.msg)
			})
		}
	})

	t.Run("foreign", func(t *testing.T) {
		planBytes, err := os.ReadFile(plans.PlanPath(out, "vae"))
		require.NoError(t, err)
		side, err := os.ReadFile(plans.SidecarPath(out, "vae"))
		require.NoError(t, err)
		restore := func() {
			require.NoError(t, os.WriteFile(plans.PlanPath(out, "vae"), planBytes, 0o644))
			require.NoError(t, os.WriteFile(plans.SidecarPath(out, "vae"), side, 0o644))
		}
		for _, tc := range []struct {
			name   string
			break_ func()
			msg    string
		}{
			{name: "no sidecar", break_: func() { require.NoError(t, os.Remove(plans.SidecarPath(out, "vae"))) }, msg: "no sidecar"},
			{name: "replaced plan same size", break_: func() {
				p := append([]byte(nil), planBytes...)
				p[len(p)-2] ^= 1
				require.NoError(t, os.WriteFile(plans.PlanPath(out, "vae"), p, 0o644))
			}, msg: "is not the plan the sidecar describes"},
			{name: "replaced plan", break_: func() {
				require.NoError(t, os.WriteFile(plans.PlanPath(out, "vae"), []byte("other"), 0o644))
			}, msg: "has 5 bytes"},
			{name: "edited sidecar", break_: func() {
				var m map[string]any
				require.NoError(t, json.Unmarshal(side, &m))
				m["compute_capability"] = "9.0"
				d, _ := json.Marshal(m)
				require.NoError(t, os.WriteFile(plans.SidecarPath(out, "vae"), d, 0o644))
			}, msg: "edited by hand"},
			{name: "not json", break_: func() { require.NoError(t, os.WriteFile(plans.SidecarPath(out, "vae"), []byte("{"), 0o644)) }, msg: "sidecar"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				defer restore()
				tc.break_()
				_, err := plans.Verify(out, want)
				require.Error(t, err)
				assert.ErrorIs(t, err, plans.ErrForeign)
				assert.ErrorIs(t, err, engine.ErrModel)
				assert.ErrorContains(t, err, tc.msg)
			})
		}
		_, err = plans.Verify(out, want)
		assert.NoError(t, err, "restored")
	})
}

func TestBuildContract(t *testing.T) {
	b := backend(t)
	spec := mustParse(t, vaeSpec)
	models, out := t.TempDir(), t.TempDir()
	onnx := filepath.Join(models, "vae.onnx")
	require.NoError(t, os.WriteFile(onnx, []byte("grefine-fake-plan 1\ninput latent float32 1,4,-1,-1\ninput extra float32 -1\noutput sample float32 latent 1 0\n"), 0o644))
	_, err := plans.Build(context.Background(), b, spec, onnx, out, plans.BuildOptions{})
	require.Error(t, err)
	// The fake builder refuses the unprofiled dynamic input before the contract check.
	assert.ErrorContains(t, err, `input extra is dynamic but profile 0 has no shape for it`)

	require.NoError(t, os.WriteFile(onnx, []byte("grefine-fake-plan 1\ninput latent float32 1,4,-1,-1\ninput extra float32 3\noutput sample float32 latent 1 0\n"), 0o644))
	_, err = plans.Build(context.Background(), b, spec, onnx, out, plans.BuildOptions{})
	require.Error(t, err)
	assert.ErrorIs(t, err, engine.ErrContract)
	assert.ErrorContains(t, err, `output "images" missing (plan has sample)`)
	entries, err := os.ReadDir(out)
	require.NoError(t, err)
	assert.Empty(t, entries, "nothing written")
}

func TestBuildAll(t *testing.T) {
	b := backend(t)
	specs, err := plans.Builtin()
	require.NoError(t, err)
	models, out := t.TempDir(), t.TempDir()
	for _, s := range specs {
		if s.Name != "pasd_text" { // one model missing
			fakeONNX(t, models, s)
		}
	}
	opts := plans.BuildAllOptions{Builder: b, Models: models, Out: out}

	rep, err := plans.BuildAll(context.Background(), opts)
	require.Error(t, err)
	assert.ErrorContains(t, err, "pasd_text.onnx")
	require.Len(t, rep.Engines, 11)
	status := map[string]plans.Status{}
	for _, e := range rep.Engines {
		status[e.Name] = e.Status
	}
	assert.Equal(t, plans.Failed, status["pasd_text"])
	assert.Equal(t, plans.Built, status["sdxl_unet"])
	assert.Equal(t, "8.9", rep.Target.ComputeCapability)
	assert.Contains(t, rep.String(), "sdxl_unet")

	// Every built plan verifies and loads with both profiles where the spec has two.
	for _, s := range specs {
		if s.Name == "pasd_text" {
			continue
		}
		digest, err := plans.ONNXDigest(models, s)
		require.NoError(t, err)
		_, err = plans.Verify(out, plans.Expect{Spec: s, Target: rep.Target, ONNXSHA256: digest})
		require.NoError(t, err, s.Name)
		e, err := b.OpenEngine(plans.PlanPath(out, s.Name), engine.OpenOptions{Name: s.Name})
		require.NoError(t, err, s.Name)
		assert.Len(t, e.Plan().Profiles, len(s.Profiles), s.Name)
		require.NoError(t, e.Close())
	}

	// Second run: everything present is up to date; a changed model is rebuilt.
	for _, s := range specs {
		if s.Name == "pasd_text" { // the missing model appears
			fakeONNX(t, models, s)
		}
	}
	require.NoError(t, os.WriteFile(filepath.Join(models, "clip_text.onnx"), []byte("grefine-fake-plan 1\n# v2\ninput input_ids int32 -1,77\noutput text_embeds int32 input_ids 1 0\n"), 0o644))
	rep, err = plans.BuildAll(context.Background(), opts)
	require.NoError(t, err)
	for _, e := range rep.Engines {
		want := plans.UpToDate
		if e.Name == "clip_text" || e.Name == "pasd_text" {
			want = plans.Built
		}
		assert.Equal(t, want, e.Status, e.Name)
	}

	// Only + Force.
	opts.Only, opts.Force = []string{"sdxl_vae_decoder"}, true
	rep, err = plans.BuildAll(context.Background(), opts)
	require.NoError(t, err)
	require.Len(t, rep.Engines, 1)
	assert.Equal(t, plans.Built, rep.Engines[0].Status)
	opts.Only = []string{"sdxl_vae"}
	_, err = plans.BuildAll(context.Background(), opts)
	assert.ErrorContains(t, err, `no spec named "sdxl_vae"`)

	// Cancelled before the first engine: nothing built.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	opts.Only = nil
	rep, err = plans.BuildAll(ctx, opts)
	assert.ErrorIs(t, err, context.Canceled)
	for _, e := range rep.Engines {
		assert.Equal(t, plans.Cancelled, e.Status)
	}
}

func TestLoadDir(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "vae.yaml"), []byte(vaeSpec), 0o644))
	specs, err := plans.LoadDir(dir)
	require.NoError(t, err)
	require.Len(t, specs, 1)
	assert.Equal(t, []int64{1, 4, 128, 128}, specs[0].Profiles[0].Shapes["latent"].Max)

	require.NoError(t, os.WriteFile(filepath.Join(dir, "decoder.yaml"), []byte(vaeSpec), 0o644))
	_, err = plans.LoadDir(dir)
	assert.ErrorIs(t, err, plans.ErrSpec)
	assert.ErrorContains(t, err, `decoder.yaml: name "vae" differs from the file name`)
}
