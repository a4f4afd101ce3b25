package engine

import (
	"context"
	"fmt"
	"sort"
	"sync"
)

// Engine is one loaded network. Inputs and Outputs describe its I/O; Run checks the bound
// inputs against them (CheckInputs), runs, and returns newly allocated outputs on the
// engine's device (the caller closes them). An Engine is safe for use by one goroutine at
// a time unless its backend documents otherwise.
type Engine interface {
	Name() string
	Inputs() []TensorDesc
	Outputs() []TensorDesc
	Run(ctx context.Context, inputs map[string]Tensor) (map[string]Tensor, error)
	Close() error
}

// OpenOptions configure Backend.Open.
type OpenOptions struct {
	// Name is the engine's logical name ("clip_surgery"); used in errors and logs.
	Name string
	// Threads bounds intra-op threads (0: backend default).
	Threads int
	// Slot is the execution slot the engine will run in, for backends that keep state per
	// slot (trt through plans.Repo: one execution context per slot, sharing the slot's
	// stream and scratch; different slots run concurrently). 0 is the default slot;
	// backends without per-slot state (ort) ignore it.
	Slot int
	// Stream is the device stream the engine serves (a pipeline slot's): backends whose
	// engines read device tensors enqueue their work on it (engine/trt binds its Handle),
	// so engines and ops of a request are ordered on one stream; its device is the one
	// whose tensors the engine reads and writes. nil: the backend's own.
	Stream Stream
	// Session holds backend-specific session settings, key → value; a backend refuses
	// keys it does not know (ErrUnavailable). See the backend's package doc (engine/ort:
	// graph_opt, mem_pattern, cpu_arena, and ONNX Runtime's session config keys).
	Session map[string]string
}

// Backend opens engines from model files.
type Backend interface {
	// Name is the registry key ("ort", "trt").
	Name() string
	// Available returns nil if the backend can open engines here, else an error wrapping
	// ErrUnavailable that says why (library missing, too old, no GPU).
	Available() error
	// Version describes the native runtime ("onnxruntime 1.30.0"), or "" if unavailable.
	Version() string
	// DeviceName is the device whose tensors this backend's engines consume.
	DeviceName() string
	Open(path string, opts OpenOptions) (Engine, error)
	Close() error
}

// Opener opens a model set's engine by name: *modelset.Set opens it from its ONNX file, a
// plan repository (plans.Repo, TensorRT) from its plan.
type Opener interface {
	OpenEngine(b Backend, name string, opts OpenOptions) (Engine, error)
}

// BackendFactory builds a backend from a generic option map (library paths and such).
type BackendFactory func(opts map[string]string) (Backend, error)

var (
	regMu     sync.Mutex
	factories = map[string]BackendFactory{}
)

// Register makes a backend available by name. It panics on a duplicate name (a
// programming error caught at init time).
func Register(name string, f BackendFactory) {
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := factories[name]; dup {
		panic("engine: backend registered twice: " + name)
	}
	factories[name] = f
}

// NewBackend builds the named backend.
func NewBackend(name string, opts map[string]string) (Backend, error) {
	regMu.Lock()
	f, ok := factories[name]
	regMu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w: no backend named %q (known: %v)", ErrUnavailable, name, Backends())
	}
	return f(opts)
}

// Backends lists registered backend names, sorted.
func Backends() []string {
	regMu.Lock()
	defer regMu.Unlock()
	names := make([]string, 0, len(factories))
	for n := range factories {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// CheckInputs verifies that inputs binds exactly the descriptors in want: every name
// present once, no unknown names, dtype equal, shape matching (Dynamic dims free, and the
// same dynamic dim label is not cross-checked here). engine names the engine in errors.
func CheckInputs(engine string, want []TensorDesc, inputs map[string]Tensor, device string) error {
	seen := make(map[string]bool, len(want))
	for _, d := range want {
		seen[d.Name] = true
		t, ok := inputs[d.Name]
		if !ok || t == nil {
			return fmt.Errorf("%w: %s: input %q not bound", ErrBinding, engine, d.Name)
		}
		if t.DType() != d.DType {
			return fmt.Errorf("%w: %s: input %q is %v, engine wants %v", ErrDType, engine, d.Name, t.DType(), d.DType)
		}
		if !d.Shape.Matches(t.Shape()) {
			return fmt.Errorf("%w: %s: input %q has shape %v, engine wants %v", ErrShape, engine, d.Name, t.Shape(), d.Shape)
		}
		if device != "" && t.DeviceName() != device {
			return fmt.Errorf("%w: %s: input %q is on %s, engine reads %s", ErrDevice, engine, d.Name, t.DeviceName(), device)
		}
	}
	for n := range inputs {
		if !seen[n] {
			return fmt.Errorf("%w: %s: unknown input %q", ErrBinding, engine, n)
		}
	}
	return nil
}

// CloseAll closes every tensor in m, returning the first error.
func CloseAll(m map[string]Tensor) error {
	var first error
	for _, t := range m {
		if t == nil {
			continue
		}
		if err := t.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
