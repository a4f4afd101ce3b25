package plans

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/engine/trt"
)

// Errors of this package. ErrMismatch and ErrForeign also match engine.ErrModel.
var (
	// ErrSpec: a plan spec is malformed or inconsistent.
	ErrSpec = errors.New("plans: bad spec")
	// ErrMismatch: a plan was built for another GPU, TensorRT, ONNX file or spec.
	ErrMismatch = fmt.Errorf("%w: plans: plan does not match", engine.ErrModel)
	// ErrForeign: a plan has no valid sidecar, or the sidecar does not describe it.
	ErrForeign = fmt.Errorf("%w: plans: foreign plan", engine.ErrModel)
)

//go:embed *.yaml tiny/*.yaml
var builtinFS embed.FS

// Spec describes how to build one engine's plan. It is read from YAML:
//
//	name: sdxl_vae_decoder
//	onnx: sdxl_vae_decoder.onnx
//	precision: fp32                  # fp32 | fp16 | bf16
//	workspace: 4GiB
//	outputs: [images]
//	profiles:
//	  - name: static-1024
//	    shapes:
//	      latent: {static: [1, 4, 128, 128]}
//	  - name: dynamic
//	    shapes:
//	      latent: {min: [1, 4, 16, 16], opt: [1, 4, 96, 128], max: [1, 4, 128, 128]}
type Spec struct {
	Name string `yaml:"name"`
	// ONNX is the model file name inside the models directory.
	ONNX string `yaml:"onnx"`
	// Data lists external-data files of the ONNX model (weights over 2 GB); they enter the
	// ONNX digest so that changed weights invalidate the plan.
	Data      []string      `yaml:"data,omitempty"`
	Precision trt.Precision `yaml:"precision"`
	// StronglyTyped asks TensorRT 10.x for a strongly-typed network (11 always is).
	StronglyTyped bool     `yaml:"strongly_typed,omitempty"`
	Workspace     ByteSize `yaml:"workspace"`
	// Outputs are the output names the plan must have (the DESIGN §2 contract).
	Outputs  []string  `yaml:"outputs"`
	Profiles []Profile `yaml:"profiles"`
}

// Profile is one optimisation profile: a shape range per input.
type Profile struct {
	Name   string           `yaml:"name"`
	Shapes map[string]Range `yaml:"shapes"`
}

// Range is min/opt/max of one input; Static sets all three.
type Range struct {
	Static []int64 `yaml:"static,omitempty"`
	Min    []int64 `yaml:"min,omitempty"`
	Opt    []int64 `yaml:"opt,omitempty"`
	Max    []int64 `yaml:"max,omitempty"`
}

// ByteSize is a byte count written as an integer or with a binary suffix ("8GiB").
type ByteSize int64

var sizeRe = regexp.MustCompile(`^([0-9]+)\s*(KiB|MiB|GiB|TiB)?$`)

// UnmarshalYAML implements yaml.Unmarshaler.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	m := sizeRe.FindStringSubmatch(strings.TrimSpace(n.Value))
	if n.Kind != yaml.ScalarNode || m == nil {
		return fmt.Errorf("line %d: size %q is not like 512MiB or 8GiB", n.Line, n.Value)
	}
	v, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return fmt.Errorf("line %d: size %q: %v", n.Line, n.Value, err)
	}
	shift := map[string]uint{"": 0, "KiB": 10, "MiB": 20, "GiB": 30, "TiB": 40}[m[2]]
	if v > (1<<62)>>shift {
		return fmt.Errorf("line %d: size %q is too large", n.Line, n.Value)
	}
	*b = ByteSize(v << shift)
	return nil
}

// MarshalYAML writes the size in the largest exact binary unit.
func (b ByteSize) MarshalYAML() (any, error) { return b.String(), nil }

// String formats as 8GiB (or plain bytes).
func (b ByteSize) String() string {
	for _, u := range []struct {
		s     string
		shift uint
	}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}} {
		if b > 0 && int64(b)%(1<<u.shift) == 0 {
			return fmt.Sprintf("%d%s", int64(b)>>u.shift, u.s)
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

// Parse reads and validates one spec. source names it in errors (a file name).
func Parse(source string, data []byte) (*Spec, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var s Spec
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrSpec, source, err)
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrSpec, source, strings.TrimPrefix(err.Error(), ErrSpec.Error()+": "))
	}
	return &s, nil
}

var nameRe = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// Validate checks the spec and fills Min/Opt/Max from Static.
func (s *Spec) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrSpec, fmt.Sprintf(format, a...))
	}
	if !nameRe.MatchString(s.Name) {
		return bad("name %q must be lowercase letters, digits and _", s.Name)
	}
	if s.ONNX == "" || filepath.Base(s.ONNX) != s.ONNX || !strings.HasSuffix(s.ONNX, ".onnx") {
		return bad("%s: onnx %q must be a file name ending in .onnx", s.Name, s.ONNX)
	}
	for _, d := range s.Data {
		if d == "" || filepath.Base(d) != d {
			return bad("%s: data file %q must be a plain file name", s.Name, d)
		}
	}
	switch s.Precision {
	case trt.FP32, trt.FP16, trt.BF16:
	default:
		return bad("%s: precision %q is not fp32, fp16 or bf16", s.Name, string(s.Precision))
	}
	if s.Workspace <= 0 {
		return bad("%s: workspace must be positive (e.g. 4GiB)", s.Name)
	}
	if len(s.Outputs) == 0 {
		return bad("%s: outputs must list the plan's output names", s.Name)
	}
	if len(s.Profiles) == 0 {
		return bad("%s: at least one profile is needed", s.Name)
	}
	var inputs []string
	seen := map[string]bool{}
	for i := range s.Profiles {
		p := &s.Profiles[i]
		where := fmt.Sprintf("%s: profile %d (%s)", s.Name, i, p.Name)
		if p.Name == "" || seen[p.Name] {
			return bad("%s: profile names must be present and unique", where)
		}
		seen[p.Name] = true
		if len(p.Shapes) == 0 {
			return bad("%s: no shapes", where)
		}
		names := sortedKeys(p.Shapes)
		if i == 0 {
			inputs = names
		} else if strings.Join(names, ",") != strings.Join(inputs, ",") {
			return bad("%s: inputs %v differ from profile 0's %v", where, names, inputs)
		}
		for _, in := range names {
			r := p.Shapes[in]
			if err := r.normalize(); err != nil {
				return bad("%s: input %q: %v", where, in, err)
			}
			p.Shapes[in] = r
		}
	}
	return nil
}

func (r *Range) normalize() error {
	if r.Static != nil {
		if r.Min != nil || r.Opt != nil || r.Max != nil {
			return errors.New("static excludes min/opt/max")
		}
		r.Min, r.Opt, r.Max = clone(r.Static), clone(r.Static), clone(r.Static)
		r.Static = nil
	}
	if len(r.Min) == 0 || len(r.Min) != len(r.Opt) || len(r.Opt) != len(r.Max) {
		return fmt.Errorf("min %v, opt %v, max %v must have one equal, non-zero rank", r.Min, r.Opt, r.Max)
	}
	if len(r.Min) > 8 {
		return fmt.Errorf("rank %d above 8", len(r.Min))
	}
	for d := range r.Min {
		if !(0 < r.Min[d] && r.Min[d] <= r.Opt[d] && r.Opt[d] <= r.Max[d]) {
			return fmt.Errorf("dim %d: need 0 < min <= opt <= max, got %d, %d, %d", d, r.Min[d], r.Opt[d], r.Max[d])
		}
	}
	return nil
}

func clone(s []int64) []int64 { return append([]int64(nil), s...) }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Inputs lists the spec's input names, sorted.
func (s *Spec) Inputs() []string { return sortedKeys(s.Profiles[0].Shapes) }

// Canonical is the text of everything in the spec that shapes the plan (precision, typing,
// profiles with inputs sorted); it enters the cache key.
func (s *Spec) Canonical() string {
	var b strings.Builder
	fmt.Fprintf(&b, "precision=%s\nstrongly_typed=%t\n", s.Precision, s.StronglyTyped)
	for i, p := range s.Profiles {
		fmt.Fprintf(&b, "profile %d\n", i)
		for _, in := range sortedKeys(p.Shapes) {
			r := p.Shapes[in]
			fmt.Fprintf(&b, "  %s min=%s opt=%s max=%s\n", in, dims(r.Min), dims(r.Opt), dims(r.Max))
		}
	}
	return b.String()
}

func dims(d []int64) string {
	parts := make([]string, len(d))
	for i, v := range d {
		parts[i] = strconv.FormatInt(v, 10)
	}
	return strings.Join(parts, ",")
}

// request turns the spec into a trt.BuildRequest (profiles in spec order, inputs sorted).
func (s *Spec) request(onnxPath string, o BuildOptions) trt.BuildRequest {
	req := trt.BuildRequest{ONNXPath: onnxPath, Precision: s.Precision, StronglyTyped: s.StronglyTyped,
		WorkspaceBytes: int64(s.Workspace), OptimizationLevel: o.OptimizationLevel, TimingCache: o.TimingCache}
	for _, p := range s.Profiles {
		var rs []trt.ShapeRange
		for _, in := range sortedKeys(p.Shapes) {
			r := p.Shapes[in]
			rs = append(rs, trt.ShapeRange{Name: in, Min: engine.Shape(clone(r.Min)), Opt: engine.Shape(clone(r.Opt)),
				Max: engine.Shape(clone(r.Max))})
		}
		req.Profiles = append(req.Profiles, rs)
	}
	return req
}

// Builtin returns the specs shipped with grefine (plans/*.yaml), sorted by name.
func Builtin() ([]*Spec, error) { return loadFS(builtinFS, ".") }

// BuiltinTiny returns the specs for the tiny model set (plans/tiny/*.yaml: its smaller
// widths, wide dynamic profiles), used by BuildAll when the models' manifest is marked
// tiny.
func BuiltinTiny() ([]*Spec, error) { return loadFS(builtinFS, "tiny") }

// LoadDir reads every *.yaml spec in dir, sorted by name.
func LoadDir(dir string) ([]*Spec, error) { return loadFS(os.DirFS(dir), ".") }

func loadFS(fsys fs.FS, dir string) ([]*Spec, error) {
	files, err := fs.Glob(fsys, filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSpec, err)
	}
	var specs []*Spec
	for _, f := range files {
		data, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrSpec, err)
		}
		s, err := Parse(f, data)
		if err != nil {
			return nil, err
		}
		if want := strings.TrimSuffix(filepath.Base(f), ".yaml"); s.Name != want {
			return nil, fmt.Errorf("%w: %s: name %q differs from the file name", ErrSpec, f, s.Name)
		}
		specs = append(specs, s)
	}
	sort.Slice(specs, func(i, j int) bool { return specs[i].Name < specs[j].Name })
	return specs, nil
}
