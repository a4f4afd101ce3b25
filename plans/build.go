package plans

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/engine/trt"
	"github.com/grefine/grefine/internal/files"
)

// Builder builds and describes TensorRT plans on this machine. *trt.Backend implements it
// (with the real shim, or the fake one in tests).
type Builder interface {
	Target() (trt.Target, error)
	BuildPlan(ctx context.Context, req trt.BuildRequest) ([]byte, error)
	InspectPlan(plan []byte) (trt.PlanInfo, error)
}

// BuildOptions tune a build without changing what the plan computes (so they are not
// part of the cache key).
type BuildOptions struct {
	// TimingCache file shared by builds on this GPU model ("" for none).
	TimingCache string
	// OptimizationLevel 1..5 (0: TensorRT's default).
	OptimizationLevel int
}

// Build builds spec's plan from onnxPath and writes the repository entry for it in out:
// <out>/<name>/1/model.plan, <out>/<name>/config.pbtxt and the sidecar, each atomically
// (temporary file + rename; the sidecar last, so an interrupted build leaves a plan that
// Verify refuses). The built plan must honour the spec's contract: every spec input is a
// plan input, other plan inputs are static, every spec output is a plan output (else
// engine.ErrContract and nothing is written).
func Build(ctx context.Context, b Builder, spec *Spec, onnxPath, out string, o BuildOptions) (*Sidecar, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	digest, err := ONNXDigest(filepath.Dir(onnxPath), &Spec{ONNX: filepath.Base(onnxPath), Data: spec.Data})
	if err != nil {
		return nil, err
	}
	target, err := b.Target()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	plan, err := b.BuildPlan(ctx, spec.request(onnxPath, o))
	if err != nil {
		return nil, fmt.Errorf("plans: %s: %w", spec.Name, err)
	}
	elapsed := time.Since(start)
	info, err := b.InspectPlan(plan)
	if err != nil {
		return nil, fmt.Errorf("plans: %s: built plan does not load: %w", spec.Name, err)
	}
	if err := checkContract(spec, info); err != nil {
		return nil, err
	}
	config, err := TritonConfig(spec.Name, info)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(plan)
	sc := &Sidecar{
		Format: sidecarMagic, Engine: spec.Name, Key: Key(target, digest, spec),
		GPU: target.GPU, ComputeCapability: target.ComputeCapability, TensorRT: target.TensorRT,
		ONNX: filepath.Base(onnxPath), ONNXSHA256: digest, Spec: spec.Canonical(),
		PlanSHA256: hex.EncodeToString(sum[:]), PlanBytes: int64(len(plan)),
		BuiltAt: start.UTC().Truncate(time.Second), BuildSeconds: elapsed.Seconds(),
	}
	for _, t := range info.Tensors {
		tj := TensorJSON{Name: t.Name, DType: t.DType.String(), Shape: t.Shape}
		if t.Input {
			sc.Inputs = append(sc.Inputs, tj)
		} else {
			sc.Outputs = append(sc.Outputs, tj)
		}
	}
	side, err := json.MarshalIndent(sc, "", "  ")
	if err != nil {
		return nil, err
	}
	// Drop the old sidecar first: from here until the new one lands, the entry is refused.
	if err := os.Remove(SidecarPath(out, spec.Name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("plans: %s: %w", spec.Name, err)
	}
	for _, f := range []struct {
		path string
		data []byte
	}{
		{PlanPath(out, spec.Name), plan},
		{ConfigPath(out, spec.Name), []byte(config)},
		{SidecarPath(out, spec.Name), append(side, '\n')},
	} {
		if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
			return nil, fmt.Errorf("plans: %s: %w", spec.Name, err)
		}
		if err := files.WriteAtomic(f.path, func(w io.Writer) error { _, err := w.Write(f.data); return err }); err != nil {
			return nil, fmt.Errorf("plans: %s: writing %s: %w", spec.Name, f.path, err)
		}
	}
	return sc, nil
}

func checkContract(spec *Spec, info trt.PlanInfo) error {
	inputs, outputs := map[string]trt.TensorInfo{}, map[string]bool{}
	for _, t := range info.Tensors {
		if t.Input {
			inputs[t.Name] = t
		} else {
			outputs[t.Name] = true
		}
	}
	var problems []string
	want := map[string]bool{}
	for _, in := range spec.Inputs() {
		want[in] = true
		if _, ok := inputs[in]; !ok {
			problems = append(problems, fmt.Sprintf("input %q missing", in))
		}
	}
	for _, name := range sortedKeys(inputs) {
		if t := inputs[name]; !want[name] && !t.Shape.IsConcrete() {
			problems = append(problems, fmt.Sprintf("dynamic input %q has no spec shapes", name))
		}
	}
	for _, o := range spec.Outputs {
		if !outputs[o] {
			problems = append(problems, fmt.Sprintf("output %q missing (plan has %s)", o, strings.Join(sortedKeys(outputs), ", ")))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: plans: %s: %s", engine.ErrContract, spec.Name, strings.Join(problems, "; "))
	}
	return nil
}

// BuildAllOptions configure BuildAll (the `grefine plans build` command).
type BuildAllOptions struct {
	Builder Builder
	// Models is the directory holding the ONNX files named by the specs.
	Models string
	// Out is the plan repository (Triton layout).
	Out string
	// Specs to build; nil: Builtin(), or BuiltinTiny() when Models holds a manifest
	// (models.json) marked "tiny".
	Specs []*Spec
	// Only restricts the build to these engine names (nil: all).
	Only []string
	// Force rebuilds plans that Verify accepts.
	Force bool
	BuildOptions
	Logger zerolog.Logger
}

// Status of one engine in a Report.
type Status string

// Statuses.
const (
	Built     Status = "built"
	UpToDate  Status = "up-to-date"
	Failed    Status = "failed"
	Cancelled Status = "cancelled"
)

// EngineReport is the outcome for one engine.
type EngineReport struct {
	Name     string
	Status   Status
	Key      string
	Plan     string
	Bytes    int64
	Duration time.Duration
	Err      error
}

// Report is what BuildAll did.
type Report struct {
	Target  trt.Target
	Engines []EngineReport
}

// String is a table for the CLI.
func (r Report) String() string {
	var b strings.Builder
	if r.Target.GPU == "" && len(r.Engines) == 0 {
		return "" // nothing was looked at (the error says why)
	}
	fmt.Fprintf(&b, "target: %s (compute capability %s), TensorRT %s\n", r.Target.GPU, r.Target.ComputeCapability, r.Target.TensorRT)
	for _, e := range r.Engines {
		fmt.Fprintf(&b, "%-18s %-10s", e.Name, e.Status)
		switch {
		case e.Err != nil:
			fmt.Fprintf(&b, " %v", e.Err)
		case e.Plan != "":
			fmt.Fprintf(&b, " %s (%d bytes, key %s, %.1fs)", e.Plan, e.Bytes, short(e.Key), e.Duration.Seconds())
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// BuildAll builds every selected spec whose plan in Out is missing or stale (Verify
// fails), one at a time. A failing engine does not stop the others; the returned error
// joins all failures. Cancelling ctx stops before the next engine (a native build in
// progress runs to its end).
func BuildAll(ctx context.Context, o BuildAllOptions) (Report, error) {
	var rep Report
	if o.Builder == nil || o.Models == "" || o.Out == "" {
		return rep, fmt.Errorf("%w: plans: BuildAll needs a builder, a models directory and an output directory", ErrSpec)
	}
	specs := o.Specs
	if specs == nil {
		var err error
		if specs, err = defaultSpecs(o.Models); err != nil {
			return rep, err
		}
	}
	if len(o.Only) > 0 {
		byName := map[string]*Spec{}
		for _, s := range specs {
			byName[s.Name] = s
		}
		var sel []*Spec
		for _, n := range o.Only {
			s, ok := byName[n]
			if !ok {
				names := sortedKeys(byName)
				return rep, fmt.Errorf("%w: plans: no spec named %q (known: %s)", ErrSpec, n, strings.Join(names, ", "))
			}
			sel = append(sel, s)
		}
		specs = sel
	}
	sort.SliceStable(specs, func(i, j int) bool { return specs[i].Name < specs[j].Name })
	target, err := o.Builder.Target()
	if err != nil {
		return rep, err
	}
	rep.Target = target
	var errs []error
	for _, s := range specs {
		er := EngineReport{Name: s.Name}
		if err := ctx.Err(); err != nil {
			er.Status, er.Err = Cancelled, err
			rep.Engines = append(rep.Engines, er)
			continue
		}
		er = buildOne(ctx, o, target, s)
		if er.Err != nil {
			errs = append(errs, er.Err)
			o.Logger.Error().Str("engine", s.Name).Err(er.Err).Msg("plan build failed")
		} else {
			o.Logger.Info().Str("engine", s.Name).Str("status", string(er.Status)).Str("plan", er.Plan).
				Dur("took", er.Duration).Msg("plan")
		}
		rep.Engines = append(rep.Engines, er)
	}
	if err := ctx.Err(); err != nil {
		errs = append(errs, err)
	}
	return rep, errors.Join(errs...)
}

func buildOne(ctx context.Context, o BuildAllOptions, target trt.Target, s *Spec) EngineReport {
	er := EngineReport{Name: s.Name, Status: Failed, Plan: PlanPath(o.Out, s.Name)}
	digest, err := ONNXDigest(o.Models, s)
	if err != nil {
		er.Plan, er.Err = "", fmt.Errorf("plans: %s: %w", s.Name, err)
		return er
	}
	if !o.Force {
		if sc, err := Verify(o.Out, Expect{Spec: s, Target: target, ONNXSHA256: digest}); err == nil {
			er.Status, er.Key, er.Bytes = UpToDate, sc.Key, sc.PlanBytes
			return er
		}
	}
	start := time.Now()
	sc, err := Build(ctx, o.Builder, s, filepath.Join(o.Models, s.ONNX), o.Out, o.BuildOptions)
	er.Duration = time.Since(start)
	if err != nil {
		er.Plan, er.Err = "", err
		return er
	}
	er.Status, er.Key, er.Bytes = Built, sc.Key, sc.PlanBytes
	return er
}

// defaultSpecs picks the builtin specs for a models directory: BuiltinTiny when its
// models.json says "tiny": true, else Builtin.
func defaultSpecs(models string) ([]*Spec, error) {
	var m struct {
		Tiny bool `json:"tiny"`
	}
	if data, err := os.ReadFile(filepath.Join(models, "models.json")); err == nil && json.Unmarshal(data, &m) == nil && m.Tiny {
		return BuiltinTiny()
	}
	return Builtin()
}
