package plans

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/engine/trt"
	"github.com/grefine/grefine/modelset"
)

// OpenOptions configure Open.
type OpenOptions struct {
	// Specs the plans were built from; nil: the builtin specs for the set (BuiltinTiny
	// for a tiny set, else Builtin).
	Specs []*Spec
	// SkipPlanHash trusts model.plan's size instead of hashing it (plans are GBs). The
	// ONNX side is never re-hashed: its SHA-256 comes from the verified model set.
	SkipPlanHash bool
}

// Repo maps the engines of a verified model set onto the plans of a repository built by
// `grefine plans build` (Build, BuildAll). Its OpenEngine has the shape of
// modelset.Set.OpenEngine, so a pipeline opens engines the same way from ONNX files or
// from plans. Safe for concurrent use.
type Repo struct {
	dir   string
	set   *modelset.Set
	specs map[string]*Spec
	skip  bool

	mu      sync.Mutex
	engines map[repoKey]*trt.Engine
	closed  bool
}

type repoKey struct {
	b    *trt.Backend
	name string
}

// Open prepares the plan repository dir for the model set set. Nothing is verified or
// loaded until OpenEngine.
func Open(dir string, set *modelset.Set, o OpenOptions) (*Repo, error) {
	if set == nil {
		return nil, fmt.Errorf("%w: plans: Open needs a verified model set", ErrSpec)
	}
	specs := o.Specs
	if specs == nil {
		var err error
		if specs, err = defaultSpecs(set.Dir); err != nil {
			return nil, err
		}
	}
	r := &Repo{dir: dir, set: set, specs: map[string]*Spec{}, skip: o.SkipPlanHash, engines: map[repoKey]*trt.Engine{}}
	for _, s := range specs {
		r.specs[s.Name] = s
	}
	return r, nil
}

// Dir is the repository directory.
func (r *Repo) Dir() string { return r.dir }

// OpenEngine opens engine name's plan on b, which must be a *trt.Backend. The first call
// per (backend, name) verifies the plan (Verify: GPU compute capability, TensorRT
// version, the ONNX SHA-256 from the model set's manifest, the spec; the plan file's hash
// unless SkipPlanHash), checks its I/O against the manifest and deserializes it; every
// call returns a new trt.Session of that engine in slot opts.Slot (bound to opts.Stream, the
// pipeline slot's device stream, when set), which the caller closes.
// A foreign or mismatched plan is refused with the reason (ErrForeign, ErrMismatch, both
// engine.ErrModel); an I/O difference is engine.ErrContract.
func (r *Repo) OpenEngine(b engine.Backend, name string, opts engine.OpenOptions) (engine.Engine, error) {
	tb, ok := b.(*trt.Backend)
	if !ok {
		return nil, fmt.Errorf("%w: plans: %s: backend %q cannot run TensorRT plans (use the trt backend)", engine.ErrUnavailable, name, b.Name())
	}
	e, err := r.engine(tb, name)
	if err != nil {
		return nil, err
	}
	var slot *trt.Slot
	if st := opts.Stream; st != nil {
		// A pipeline slot: the engines enqueue on its device stream and write its device's
		// tensors, so kernels and engines of a request are ordered on one stream.
		if st.Device().Name() != tb.DeviceName() {
			return nil, fmt.Errorf("%w: plans: %s: the slot's stream runs on %s, TensorRT writes %s memory", engine.ErrDevice, name, st.Device().Name(), tb.DeviceName())
		}
		slot, err = tb.SlotWith(opts.Slot, trt.SlotOptions{Stream: st.Handle(), Device: st.Device()})
	} else {
		slot, err = tb.Slot(opts.Slot)
	}
	if err != nil {
		return nil, err
	}
	return slot.Session(e)
}

// engine returns the verified, deserialized plan of name on b (once per pair).
func (r *Repo) engine(b *trt.Backend, name string) (*trt.Engine, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, fmt.Errorf("%w: plans: repository %s", engine.ErrClosed, r.dir)
	}
	if e, ok := r.engines[repoKey{b, name}]; ok {
		return e, nil
	}
	entry, ok := r.set.Manifest.Engines[name]
	if !ok {
		return nil, fmt.Errorf("%w: engine %q (the set has %s)", modelset.ErrUnknown, name, strings.Join(sortedKeys(r.set.Manifest.Engines), ", "))
	}
	spec, ok := r.specs[name]
	if !ok {
		return nil, fmt.Errorf("%w: plans: no spec for engine %q", ErrSpec, name)
	}
	digest, err := digestOf(spec, func(file string) (string, error) { return r.manifestSum(entry, file) })
	if err != nil {
		return nil, err
	}
	target, err := b.Target()
	if err != nil {
		return nil, err
	}
	if _, err := Verify(r.dir, Expect{Spec: spec, Target: target, ONNXSHA256: digest, SkipPlanHash: r.skip}); err != nil {
		return nil, err
	}
	e, err := b.OpenEngine(PlanPath(r.dir, name), engine.OpenOptions{Name: name})
	if err != nil {
		return nil, err
	}
	err = modelset.SameIO(name, "input", entry.Inputs, e.Inputs())
	if err == nil {
		err = modelset.SameIO(name, "output", entry.Outputs, e.Outputs())
	}
	if err != nil {
		_ = e.Close()
		return nil, err
	}
	r.engines[repoKey{b, name}] = e
	return e, nil
}

// manifestSum is the verified SHA-256 the model set records for file (the engine's ONNX
// file or one of the set's files, for external data).
func (r *Repo) manifestSum(entry modelset.EngineEntry, file string) (string, error) {
	if file == entry.File {
		return entry.SHA256, nil
	}
	for _, f := range r.set.Manifest.Files {
		if f.File == file {
			return f.SHA256, nil
		}
	}
	return "", fmt.Errorf("%w: plans: external data file %s is not in the model set's manifest", ErrSpec, file)
}

// Close closes the engines the repository opened (their sessions must be closed first:
// trt.ErrOrder otherwise, and those engines stay open). Idempotent.
func (r *Repo) Close() error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for k, e := range r.engines {
		if err := e.Close(); err != nil {
			errs = append(errs, err)
			continue
		}
		delete(r.engines, k)
	}
	if len(errs) == 0 {
		r.closed = true
	}
	return errors.Join(errs...)
}
