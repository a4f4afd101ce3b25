package triton

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/rs/zerolog"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/modelset"
	"github.com/grefine/grefine/pipeline"
	"github.com/grefine/grefine/pipeline/imageio"
	"github.com/grefine/grefine/plans"
)

// ErrConfig: a model's config.pbtxt does not describe a grefine model this backend can
// serve (Triton then refuses to load the model, with this message).
var ErrConfig = errors.New("triton: bad model configuration")

// Task is what a model runs: TaskAssess or TaskRefine (the config parameter "task").
type Task string

// Tasks.
const (
	TaskAssess Task = "assess"
	TaskRefine Task = "refine"
)

// Model is one grefine model of a Triton repository, from its configuration: the
// parameters of config.pbtxt (Parameters lists them) and the outputs it declares.
type Model struct {
	// Name is the model's name in the repository.
	Name string
	// Task is what every request runs.
	Task Task
	// Models is the model-set directory (relative paths in config.pbtxt resolve against
	// the model's directory in the repository).
	Models string
	// Backend runs the networks: "ort" (default) or "trt" (with Plans).
	Backend string
	// Device is a registered device ("cpu", "cuda", "cuda-emu"); "" picks cuda for
	// KIND_GPU instances and the trt backend, else cpu.
	Device string
	// Plans is a TensorRT plan repository (backend trt).
	Plans string
	// Lib is the backend's native library (ONNX Runtime, or libgrefine_trt.so); "" uses
	// the backend's default search ($ONNXRUNTIME_SHARED_LIBRARY_PATH, $GRF_TRT_LIB).
	Lib string
	// HashCache remembers verified model files ("" hashes every file at load).
	HashCache string
	// Slots is the number of requests one instance runs at once (1..pipeline.MaxSlots).
	Slots int
	// Threads bounds each engine's intra-op threads (0: the backend's default).
	Threads int
	// Outputs are the outputs config.pbtxt declares, in its order.
	Outputs []string
}

// Parameters are the keys of config.pbtxt's parameters section, each with what it sets.
var Parameters = []struct{ Key, Usage string }{
	{"task", "assess or refine (required)"},
	{"models", "model-set directory (required; relative: to the model's directory)"},
	{"backend", "ort (default) or trt"},
	{"device", "cpu, cuda or cuda-emu (default: cuda for KIND_GPU instances and backend trt, else cpu)"},
	{"plans", "TensorRT plan repository, for backend trt"},
	{"lib", "the backend's native library (default: $ONNXRUNTIME_SHARED_LIBRARY_PATH or $GRF_TRT_LIB)"},
	{"hash_cache", "file remembering verified model files (default: none, every file is hashed at load)"},
	{"slots", "requests one instance runs at once, 1 to 64 (default 1)"},
	{"threads", "intra-op threads per engine (default 0: the backend's default)"},
}

// Input and output tensors of a grefine model: name, config.pbtxt data type, dims.
type tensorSpec struct {
	name, dataType string
	dims           []int64
}

var (
	inputSpecs = []tensorSpec{{"image", "TYPE_STRING", []int64{1}}, {"prompt", "TYPE_STRING", []int64{1}}}
	// outputSpecs lists every output in the order Outputs writes them; "image" is refine's only.
	outputSpecs = []tensorSpec{
		{"image", "TYPE_STRING", []int64{1}}, {"report", "TYPE_STRING", []int64{1}},
		{"p", "TYPE_FP32", []int64{1}}, {"a", "TYPE_FP32", []int64{1}}, {"q", "TYPE_FP32", []int64{1}},
		{"p_map", "TYPE_FP32", []int64{-1, -1}}, {"a_map", "TYPE_FP32", []int64{-1, -1}}, {"mask", "TYPE_FP32", []int64{-1, -1}},
	}
)

// modelConfig is the part of Triton's model configuration (its JSON form, as
// TRITONBACKEND_ModelConfig gives it) that grefine reads.
type modelConfig struct {
	Name         string         `json:"name"`
	Backend      string         `json:"backend"`
	MaxBatchSize int64          `json:"max_batch_size"`
	Input        []configTensor `json:"input"`
	Output       []configTensor `json:"output"`
	Parameters   map[string]struct {
		StringValue string `json:"string_value"`
	} `json:"parameters"`
}

type configTensor struct {
	Name     string    `json:"name"`
	DataType string    `json:"data_type"`
	Dims     []jsonInt `json:"dims"`
	Optional bool      `json:"optional"`
}

// jsonInt is an int64 written as a JSON number or, as protobuf's JSON mapping writes
// 64-bit integers, a string.
type jsonInt int64

func (v *jsonInt) UnmarshalJSON(b []byte) error {
	s := string(bytes.Trim(b, `"`))
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("want an integer, got %s", b)
	}
	*v = jsonInt(n)
	return nil
}

// ParseModelConfig reads a model's configuration (Triton's JSON form of config.pbtxt)
// and checks that it describes a grefine model: backend "grefine", max_batch_size 0,
// inputs image and prompt, outputs among OutputNames, known parameters. dir is the
// model's directory in the repository; relative paths resolve against it. Errors wrap
// ErrConfig.
func ParseModelConfig(js []byte, dir string) (*Model, error) {
	var c modelConfig
	if err := json.Unmarshal(js, &c); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: model %q: %s", ErrConfig, c.Name, fmt.Sprintf(format, a...))
	}
	if c.Backend != "" && c.Backend != "grefine" {
		return nil, bad("backend %q, want grefine", c.Backend)
	}
	if c.MaxBatchSize != 0 {
		return nil, bad("max_batch_size %d: grefine takes one image per request, set max_batch_size: 0 (scale with instance_group count and the slots parameter)", c.MaxBatchSize)
	}
	m := &Model{Name: c.Name, Backend: "ort", Slots: 1}
	known := map[string]bool{}
	for _, p := range Parameters {
		known[p.Key] = true
	}
	var keys []string
	for k := range c.Parameters {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := strings.TrimSpace(c.Parameters[k].StringValue)
		if !known[k] {
			return nil, bad("unknown parameter %q (known: %s)", k, parameterKeys())
		}
		var err error
		switch k {
		case "task":
			m.Task = Task(v)
		case "models":
			m.Models = resolve(dir, v)
		case "backend":
			m.Backend = v
		case "device":
			m.Device = v
		case "plans":
			m.Plans = resolve(dir, v)
		case "lib":
			m.Lib = resolve(dir, v)
		case "hash_cache":
			m.HashCache = resolve(dir, v)
		case "slots":
			m.Slots, err = strconv.Atoi(v)
		case "threads":
			m.Threads, err = strconv.Atoi(v)
		}
		if err != nil {
			return nil, bad("parameter %s: %q is not an integer", k, v)
		}
	}
	if err := m.check(); err != nil {
		return nil, err
	}
	if err := checkTensors("input", c.Input, inputSpecs); err != nil {
		return nil, bad("%v", err)
	}
	var sawImage bool
	for _, t := range c.Input {
		if t.Name == "image" {
			sawImage = true
			if t.Optional {
				return nil, bad("input image cannot be optional")
			}
		}
	}
	if !sawImage {
		return nil, bad("input image (TYPE_STRING, dims [1]) is missing")
	}
	var outs []tensorSpec
	for _, s := range outputSpecs {
		if s.name != "image" || m.Task == TaskRefine {
			outs = append(outs, s)
		}
	}
	if err := checkTensors("output", c.Output, outs); err != nil {
		return nil, bad("%v (task %s)", err, m.Task)
	}
	for _, t := range c.Output {
		m.Outputs = append(m.Outputs, t.Name)
	}
	return m, nil
}

// check refuses settings that cannot work, before anything is loaded.
func (m *Model) check() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: model %q: %s", ErrConfig, m.Name, fmt.Sprintf(format, a...))
	}
	switch {
	case m.Task != TaskAssess && m.Task != TaskRefine:
		return bad("parameter task %q: want assess or refine", m.Task)
	case m.Models == "":
		return bad("parameter models (the model-set directory) is required")
	case m.Backend != "ort" && m.Backend != "trt":
		return bad("parameter backend %q: want ort or trt", m.Backend)
	case m.Backend == "trt" && m.Plans == "":
		return bad("backend trt needs the parameter plans (a plan repository from `grefine plans build`)")
	case m.Backend == "ort" && m.Plans != "":
		return bad("parameter plans needs backend trt")
	case m.Device != "" && !slices.Contains(engine.Devices(), m.Device):
		return bad("parameter device %q: want one of %v", m.Device, engine.Devices())
	case m.Slots < 1 || m.Slots > pipeline.MaxSlots:
		return bad("parameter slots %d is out of range [1, %d]", m.Slots, pipeline.MaxSlots)
	case m.Threads < 0 || m.Threads > pipeline.MaxThreads():
		return bad("parameter threads %d is out of range [0, %d]", m.Threads, pipeline.MaxThreads())
	}
	return nil
}

// checkTensors checks declared tensors against the allowed specs.
func checkTensors(kind string, ts []configTensor, specs []tensorSpec) error {
	seen := map[string]bool{}
	for _, t := range ts {
		var spec *tensorSpec
		var names []string
		for i := range specs {
			names = append(names, specs[i].name)
			if specs[i].name == t.Name {
				spec = &specs[i]
			}
		}
		switch {
		case spec == nil:
			return fmt.Errorf("unknown %s %q (known: %s)", kind, t.Name, strings.Join(names, ", "))
		case seen[t.Name]:
			return fmt.Errorf("%s %q declared twice", kind, t.Name)
		case t.DataType != spec.dataType:
			return fmt.Errorf("%s %q: data_type %s, want %s", kind, t.Name, t.DataType, spec.dataType)
		case !sameDims(t.Dims, spec.dims):
			return fmt.Errorf("%s %q: dims %v, want %v", kind, t.Name, t.Dims, spec.dims)
		}
		seen[t.Name] = true
	}
	return nil
}

func sameDims(a []jsonInt, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if int64(a[i]) != b[i] {
			return false
		}
	}
	return true
}

func parameterKeys() string {
	var ks []string
	for _, p := range Parameters {
		ks = append(ks, p.Key)
	}
	return strings.Join(ks, ", ")
}

// resolve makes a relative path absolute against dir ("" stays "").
func resolve(dir, p string) string {
	if p == "" || filepath.IsAbs(p) || dir == "" {
		return p
	}
	return filepath.Join(dir, p)
}

// Kind is where Triton places a model instance (instance_group kind).
type Kind int

// Instance kinds.
const (
	KindCPU   Kind = iota // KIND_CPU
	KindGPU               // KIND_GPU: the instance's device id is its GPU
	KindModel             // KIND_MODEL: the model decides (the device parameter)
)

func (k Kind) String() string {
	switch k {
	case KindGPU:
		return "KIND_GPU"
	case KindModel:
		return "KIND_MODEL"
	}
	return "KIND_CPU"
}

// Placement is where one instance runs.
type Placement struct {
	Kind Kind
	// DeviceID is the GPU index of a KIND_GPU instance.
	DeviceID int
}

// PipelineConfig is the pipeline of one instance of m at pl. The device is the device
// parameter, else cuda for KIND_GPU instances and the trt backend (TensorRT's engines
// read GPU memory), else cpu; a KIND_CPU instance cannot take device cuda. A KIND_GPU
// instance passes its GPU index to the device (ordinal) and to the backend (ort: the CUDA
// provider's device_id, trt: the shim's device).
func (m *Model) PipelineConfig(pl Placement, log *zerolog.Logger) (pipeline.Config, error) {
	dev := m.Device
	if dev == "" {
		dev = "cpu"
		if pl.Kind == KindGPU || m.Backend == "trt" {
			dev = "cuda"
		}
	}
	if pl.Kind == KindCPU && dev == "cuda" {
		return pipeline.Config{}, fmt.Errorf("%w: model %q: a KIND_CPU instance cannot run device cuda (use KIND_GPU, or device cpu)", ErrConfig, m.Name)
	}
	opts, devOpts := map[string]string{}, map[string]string{}
	if m.Lib != "" {
		opts["lib"] = m.Lib
	}
	if pl.Kind == KindGPU {
		if pl.DeviceID < 0 {
			return pipeline.Config{}, fmt.Errorf("%w: model %q: KIND_GPU instance with device id %d", ErrConfig, m.Name, pl.DeviceID)
		}
		id := strconv.Itoa(pl.DeviceID)
		if dev == "cuda" {
			devOpts["ordinal"] = id
		}
		if m.Backend == "trt" {
			opts["device"] = id
		} else if dev == "cuda" {
			opts["device_id"] = id
		}
	}
	cfg := pipeline.Config{
		Models: m.Models, HashCache: m.HashCache, Backend: m.Backend, BackendOptions: opts, Plans: m.Plans,
		Device: dev, DeviceOptions: devOpts, Threads: m.Threads, Slots: m.Slots, AssessOnly: m.Task == TaskAssess,
		Limits: imageio.DefaultLimits, Logger: log,
	}
	if m.Plans != "" {
		cfg.PlanOpener = openPlans
	}
	return cfg, nil
}

// openPlans opens a TensorRT plan repository for the pipeline (package plans).
func openPlans(dir string, set *modelset.Set) (engine.Opener, error) {
	return plans.Open(dir, set, plans.OpenOptions{})
}
