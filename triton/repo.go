package triton

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/grefine/grefine/internal/files"
)

// Model names in a repository that WriteRepository writes.
const (
	AssessModel = "grefine_assess"
	RefineModel = "grefine_refine"
)

// RepoOptions describe a model repository for WriteRepository. The model settings
// become config.pbtxt parameters (see Parameters).
type RepoOptions struct {
	// Models is the model-set directory (made absolute).
	Models string
	// Backend, Device, Plans, Lib, HashCache, Slots, Threads: the parameters of the same
	// names (Backend "" is ort, Slots 0 is 1).
	Backend, Device, Plans, Lib, HashCache string
	Slots, Threads                         int
	// Instances is the instance_group count (0: 1).
	Instances int
	// GPU places the instances on GPUs (KIND_GPU), else on the CPU (KIND_CPU).
	GPU bool
	// GPUs, with GPU, lists the GPUs to place instances on (empty: all of them; Triton
	// puts Instances instances on each).
	GPUs []int
	// AssessOnly writes only grefine_assess.
	AssessOnly bool
}

// MaxInstances bounds RepoOptions.Instances.
const MaxInstances = 64

// WriteRepository writes a Triton model repository into dir: grefine_assess and (unless
// AssessOnly) grefine_refine, each as <dir>/<model>/config.pbtxt plus an empty version
// directory <dir>/<model>/1. The settings are checked first (nothing is written when they
// are wrong); each config.pbtxt is replaced atomically; other files in dir are left alone.
// It returns the model directories written.
func WriteRepository(dir string, o RepoOptions) ([]string, error) {
	if dir == "" {
		return nil, fmt.Errorf("%w: no repository directory", ErrConfig)
	}
	if o.Models == "" {
		return nil, fmt.Errorf("%w: no model set", ErrConfig)
	}
	abs := func(p string) (string, error) {
		if p == "" {
			return "", nil
		}
		return filepath.Abs(p)
	}
	var err error
	for _, p := range []*string{&o.Models, &o.Plans, &o.Lib, &o.HashCache} {
		if *p, err = abs(*p); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrConfig, err)
		}
	}
	if o.Backend == "" {
		o.Backend = "ort"
	}
	if o.Slots == 0 {
		o.Slots = 1
	}
	if o.Instances == 0 {
		o.Instances = 1
	}
	if o.Instances < 1 || o.Instances > MaxInstances {
		return nil, fmt.Errorf("%w: instances %d is out of range [1, %d]", ErrConfig, o.Instances, MaxInstances)
	}
	for _, g := range o.GPUs {
		if !o.GPU || g < 0 {
			return nil, fmt.Errorf("%w: GPU %d: GPUs need KIND_GPU instances and indices >= 0", ErrConfig, g)
		}
	}
	tasks := []Task{TaskAssess, TaskRefine}
	if o.AssessOnly {
		tasks = tasks[:1]
	}
	texts := map[Task]string{}
	for _, t := range tasks {
		m := &Model{Name: modelName(t), Task: t, Models: o.Models, Backend: o.Backend, Device: o.Device, Plans: o.Plans,
			Lib: o.Lib, HashCache: o.HashCache, Slots: o.Slots, Threads: o.Threads}
		if err := m.check(); err != nil {
			return nil, err
		}
		kind := KindCPU
		if o.GPU {
			kind = KindGPU
		}
		if _, err := m.PipelineConfig(Placement{Kind: kind}, nil); err != nil {
			return nil, err
		}
		texts[t] = ConfigText(m, o)
	}
	var written []string
	for _, t := range tasks {
		md := filepath.Join(dir, modelName(t))
		if err := os.MkdirAll(filepath.Join(md, "1"), 0o755); err != nil {
			return written, err
		}
		if err := files.WriteAtomic(filepath.Join(md, "config.pbtxt"), func(w io.Writer) error {
			_, err := io.WriteString(w, texts[t])
			return err
		}); err != nil {
			return written, err
		}
		written = append(written, md)
	}
	return written, nil
}

func modelName(t Task) string {
	if t == TaskRefine {
		return RefineModel
	}
	return AssessModel
}

// ConfigText is the config.pbtxt of m: backend grefine, max_batch_size 0, the inputs
// image and prompt (optional), every output of m's task (the maps included: Triton sends
// the outputs a request names, all of them when it names none), the instance group of o
// and m's settings as parameters.
func ConfigText(m *Model, o RepoOptions) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by `grefine triton-repo`: a grefine model for Triton Inference Server.\n")
	fmt.Fprintf(&b, "# Needs the grefine backend (libtriton_grefine.so) in <backend-directory>/grefine/;\n")
	fmt.Fprintf(&b, "# `go doc github.com/grefine/grefine/triton` is the manual.\n")
	fmt.Fprintf(&b, "name: %q\nbackend: \"grefine\"\nmax_batch_size: 0\n", m.Name)
	tensor := func(s tensorSpec, optional bool) string {
		d := make([]string, len(s.dims))
		for i, v := range s.dims {
			d[i] = strconv.FormatInt(v, 10)
		}
		opt := ""
		if optional {
			opt = " optional: true"
		}
		return fmt.Sprintf("  { name: %q data_type: %s dims: [ %s ]%s }", s.name, s.dataType, strings.Join(d, ", "), opt)
	}
	var ins, outs []string
	for _, s := range inputSpecs {
		ins = append(ins, tensor(s, s.name == "prompt"))
	}
	for _, s := range outputSpecs {
		if s.name != "image" || m.Task == TaskRefine {
			outs = append(outs, tensor(s, false))
		}
	}
	fmt.Fprintf(&b, "input [\n%s\n]\n", strings.Join(ins, ",\n"))
	fmt.Fprintf(&b, "output [\n%s\n]\n", strings.Join(outs, ",\n"))
	count := o.Instances
	if count == 0 {
		count = 1
	}
	kind := "KIND_CPU"
	gpus := ""
	if o.GPU {
		kind = "KIND_GPU"
		if len(o.GPUs) > 0 {
			g := make([]string, len(o.GPUs))
			for i, v := range o.GPUs {
				g[i] = strconv.Itoa(v)
			}
			gpus = fmt.Sprintf(" gpus: [ %s ]", strings.Join(g, ", "))
		}
	}
	fmt.Fprintf(&b, "instance_group [\n  { count: %d kind: %s%s }\n]\n", count, kind, gpus)
	param := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "parameters: {\n  key: %q\n  value: { string_value: %q }\n}\n", k, v)
		}
	}
	param("task", string(m.Task))
	param("models", m.Models)
	param("backend", m.Backend)
	param("device", m.Device)
	param("plans", m.Plans)
	param("lib", m.Lib)
	param("hash_cache", m.HashCache)
	param("slots", strconv.Itoa(m.Slots))
	if m.Threads != 0 {
		param("threads", strconv.Itoa(m.Threads))
	}
	return b.String()
}
