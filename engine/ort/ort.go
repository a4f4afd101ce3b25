package ort

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	ortgo "github.com/yalue/onnxruntime_go"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/engine/native"
)

// Name is the registry key of this backend.
const Name = "ort"

// EnvLibrary is the environment variable naming the ONNX Runtime shared library.
const EnvLibrary = "ONNXRUNTIME_SHARED_LIBRARY_PATH"

func init() {
	engine.Register(Name, func(opts map[string]string) (engine.Backend, error) {
		o, err := ParseOptions(opts)
		if err != nil {
			return nil, err
		}
		return NewWith(o)
	})
}

// LibName is the ONNX Runtime library's file name.
const LibName = "libonnxruntime.so.1"

// library is the process's ONNX Runtime (one environment per process, an ONNX Runtime
// rule), found and loaded by engine/native: the explicit path (--ort-lib, Options.Lib),
// else $ONNXRUNTIME_SHARED_LIBRARY_PATH, else beside the executable (libonnxruntime.so.1,
// .deps/ort/ and ../.deps/ort/ of its directory: bin/grefine in the repository), else the
// system loader. The result is cached with its error; a later explicit path naming
// another library is an error.
var library = native.New(native.Spec{
	Name: "ort", What: "onnxruntime library", File: LibName, Flag: "--ort-lib", Env: EnvLibrary,
	Beside: []string{LibName, filepath.Join(".deps", "ort", LibName), filepath.Join("..", ".deps", "ort", LibName)},
	Hint:   "run `make setup`, or set " + EnvLibrary,
	Open:   openLibrary,
})

// openLibrary initialises ONNX Runtime's environment from the library at path.
func openLibrary(path string) error {
	ortgo.SetSharedLibraryPath(path)
	if err := ortgo.InitializeEnvironment(ortgo.WithLogLevelError()); err != nil {
		return fmt.Errorf("it must be ONNX Runtime 1.24 or newer with C API 24 (`make setup` installs 1.30.0): %v", err)
	}
	return nil
}

// LibraryPath is the library New(explicit) loads (see library for the search order),
// without loading it: the loaded one, else the first that exists, else the system
// loader's name.
func LibraryPath(explicit string) string { return library.Locate(explicit).Path }

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// initEnv initialises ONNX Runtime once per process from the library explicit names (""
// searches) and returns the library's path.
func initEnv(explicit string) (string, error) {
	r, err := library.Load(explicit)
	if err != nil {
		return library.Locate(explicit).Path, fmt.Errorf("%w: %w", engine.ErrUnavailable, err)
	}
	return r.Path, nil
}

// Backend is the ONNX Runtime backend. Create it with New or engine.NewBackend("ort", ...).
type Backend struct {
	lib     string
	initErr error

	device string      // DeviceCPU or DeviceCUDA
	cuda   CUDAOptions // DeviceCUDA only
}

// New returns the CPU backend for the library at lib ("": the search of LibraryPath). It
// does not fail when the library is unusable: Available reports why.
func New(lib string) (*Backend, error) { return NewWith(Options{Lib: lib}) }

// NewWith returns the backend o describes. Bad option values are errors; an unusable
// library, GPU or CUDA installation is not: Available reports why.
func NewWith(o Options) (*Backend, error) {
	b := &Backend{device: o.Device, cuda: o.CUDA}
	switch o.Device {
	case "", DeviceCPU:
		b.device = DeviceCPU
		b.lib, b.initErr = initEnv(o.Lib)
	case DeviceCUDA:
		p, err := o.CUDA.ProviderOptions()
		if err != nil {
			return nil, err
		}
		b.lib, b.initErr = initCUDA(o.Lib, p)
	default:
		return nil, fmt.Errorf("%w: ort: unknown device %q (cpu or cuda)", engine.ErrUnavailable, o.Device)
	}
	return b, nil
}

// Name implements engine.Backend.
func (b *Backend) Name() string { return Name }

// DeviceName implements engine.Backend: ort engines read and write host tensors (the cpu
// device's), also when ONNX Runtime computes on the GPU; engine.OnDevice pairs them with
// a GPU device through explicit, counted copies.
func (b *Backend) DeviceName() string { return "cpu" }

// Device is where the networks run: DeviceCPU or DeviceCUDA.
func (b *Backend) Device() string { return b.device }

// Library is the resolved library path.
func (b *Backend) Library() string { return b.lib }

// Available implements engine.Backend.
func (b *Backend) Available() error { return b.initErr }

// Version implements engine.Backend.
func (b *Backend) Version() string {
	if b.initErr != nil {
		return ""
	}
	if b.device == DeviceCUDA {
		return "onnxruntime " + ortgo.GetVersion() + " (CUDA execution provider)"
	}
	return "onnxruntime " + ortgo.GetVersion()
}

// Close implements engine.Backend. The process-wide environment stays up (ONNX Runtime
// allows one per process and engines of other Backend values may still use it).
func (b *Backend) Close() error { return nil }

// Open implements engine.Backend: it loads an ONNX model and reads its I/O descriptors.
// A cuda backend's sessions run on CUDAOptions.ComputeStream (0: ONNX Runtime's stream).
func (b *Backend) Open(path string, opts engine.OpenOptions) (engine.Engine, error) {
	return b.open(path, opts, b.cuda.ComputeStream)
}

// OpenOnStream opens an engine of a cuda backend whose session runs on stream (a
// cudaStream_t, ONNX Runtime's user_compute_stream): one engine per request slot.
func (b *Backend) OpenOnStream(path string, opts engine.OpenOptions, stream uintptr) (engine.Engine, error) {
	if b.device != DeviceCUDA {
		return nil, fmt.Errorf("%w: ort: OpenOnStream needs the cuda device, this backend runs on %s", engine.ErrDevice, b.device)
	}
	return b.open(path, opts, stream)
}

func (b *Backend) open(path string, opts engine.OpenOptions, stream uintptr) (engine.Engine, error) {
	if b.initErr != nil {
		return nil, b.initErr
	}
	name := opts.Name
	if name == "" {
		name = filepath.Base(path)
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("%w: ort: %s: %v", engine.ErrModel, name, err)
	}
	so, err := ortgo.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("%w: ort: %s: session options: %v", engine.ErrRun, name, err)
	}
	defer so.Destroy()
	if opts.Threads > 0 {
		if err := so.SetIntraOpNumThreads(opts.Threads); err != nil {
			return nil, fmt.Errorf("%w: ort: %s: threads: %v", engine.ErrRun, name, err)
		}
	}
	if b.device == DeviceCUDA {
		o := b.cuda
		o.ComputeStream = stream
		p, err := o.ProviderOptions()
		if err != nil {
			return nil, err
		}
		if err := appendCUDA(so, p); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", engine.ErrUnavailable, name, err)
		}
	}
	if err := applySession(so, opts.Session); err != nil {
		return nil, fmt.Errorf("ort: %s: %w", name, err)
	}
	e := &Engine{name: name, cuda: b.device == DeviceCUDA}
	if e.inputs, e.outputs, err = describeModel(name, path, so); err != nil {
		return nil, err
	}
	for _, d := range e.inputs {
		e.inNames = append(e.inNames, d.Name)
	}
	for _, d := range e.outputs {
		e.outNames = append(e.outNames, d.Name)
	}
	e.sess, err = ortgo.NewDynamicAdvancedSession(path, e.inNames, e.outNames, so)
	if err != nil {
		return nil, runError(engine.ErrModel, name, "cannot create session", err)
	}
	return e, nil
}

// describeModel lists a model's I/O: from the ONNX protobuf when readIO can (no extra
// session), else from a temporary ONNX Runtime session (which also gives the
// authoritative error for a broken file).
func describeModel(name, path string, so *ortgo.SessionOptions) (ins, outs []engine.TensorDesc, err error) {
	if ins, outs, ok, err := readIO(path); err == nil && ok {
		return ins, outs, nil
	}
	oi, oo, err := ortgo.GetInputOutputInfoWithOptions(path, so)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: ort: %s: cannot load %s: %v", engine.ErrModel, name, path, err)
	}
	for _, io := range oi {
		d, err := describe(name, io)
		if err != nil {
			return nil, nil, err
		}
		ins = append(ins, d)
	}
	for _, io := range oo {
		d, err := describe(name, io)
		if err != nil {
			return nil, nil, err
		}
		outs = append(outs, d)
	}
	return ins, outs, nil
}

func describe(engineName string, io ortgo.InputOutputInfo) (engine.TensorDesc, error) {
	if io.OrtValueType != ortgo.ONNXTypeTensor {
		return engine.TensorDesc{}, fmt.Errorf("%w: ort: %s: I/O %q is not a tensor (%v)", engine.ErrModel, engineName, io.Name, io.OrtValueType)
	}
	dt, ok := fromORT[io.DataType]
	if !ok {
		return engine.TensorDesc{}, fmt.Errorf("%w: ort: %s: I/O %q has unsupported element type %v", engine.ErrModel, engineName, io.Name, io.DataType)
	}
	shape := make(engine.Shape, len(io.Dimensions))
	for i, d := range io.Dimensions {
		if d < 0 {
			d = engine.Dynamic
		}
		shape[i] = d
	}
	return engine.TensorDesc{Name: io.Name, DType: dt, Shape: shape}, nil
}

var fromORT = map[ortgo.TensorElementDataType]engine.DType{
	ortgo.TensorElementDataTypeFloat:   engine.Float32,
	ortgo.TensorElementDataTypeFloat16: engine.Float16,
	ortgo.TensorElementDataTypeInt32:   engine.Int32,
	ortgo.TensorElementDataTypeInt64:   engine.Int64,
	ortgo.TensorElementDataTypeUint8:   engine.Uint8,
	ortgo.TensorElementDataTypeBool:    engine.Bool,
}

// Engine is one ONNX Runtime session.
type Engine struct {
	name              string
	inputs, outputs   []engine.TensorDesc
	inNames, outNames []string

	mu     sync.RWMutex // guards sess against Close during Run
	sess   *ortgo.DynamicAdvancedSession
	closed bool

	cuda   bool // runs on the CUDA execution provider
	statMu sync.Mutex
	stats  CopyStats
}

// Copies returns the host/device copy counts of the runs so far.
func (e *Engine) Copies() CopyStats {
	e.statMu.Lock()
	defer e.statMu.Unlock()
	return e.stats
}

// Name implements engine.Engine.
func (e *Engine) Name() string { return e.name }

// Inputs implements engine.Engine.
func (e *Engine) Inputs() []engine.TensorDesc { return e.inputs }

// Outputs implements engine.Engine.
func (e *Engine) Outputs() []engine.TensorDesc { return e.outputs }

// Close implements engine.Engine; idempotent and nil-safe. It waits for runs in flight.
func (e *Engine) Close() error {
	if e == nil {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	if e.sess != nil {
		if err := e.sess.Destroy(); err != nil {
			return fmt.Errorf("ort: %s: close: %w", e.name, err)
		}
		e.sess = nil
	}
	return nil
}

// Run implements engine.Engine.
func (e *Engine) Run(ctx context.Context, inputs map[string]engine.Tensor) (map[string]engine.Tensor, error) {
	if err := engine.CheckInputs(e.name, e.inputs, inputs, ""); err != nil {
		return nil, err
	}
	inputs, err := e.hostInputs(inputs)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		return nil, fmt.Errorf("%w: ort: %s", engine.ErrClosed, e.name)
	}

	var pin runtime.Pinner // Go memory handed to ONNX Runtime stays put for the run
	defer pin.Unpin()
	vals := make([]ortgo.Value, len(e.inputs))
	defer func() {
		for _, v := range vals {
			if v != nil {
				_ = v.Destroy()
			}
		}
	}()
	for i, d := range e.inputs {
		v, err := toValue(inputs[d.Name], &pin)
		if err != nil {
			return nil, fmt.Errorf("%w: ort: %s: input %q: %v", engine.ErrRun, e.name, d.Name, err)
		}
		vals[i] = v
	}

	ro, err := ortgo.NewRunOptions()
	if err != nil {
		return nil, fmt.Errorf("%w: ort: %s: run options: %v", engine.ErrRun, e.name, err)
	}
	defer ro.Destroy()
	stop := context.AfterFunc(ctx, func() { _ = ro.Terminate() })
	defer stop()

	outs := make([]ortgo.Value, len(e.outputs))
	runErr := e.sess.RunWithOptions(vals, outs, ro)
	defer func() {
		for _, v := range outs {
			if v != nil {
				_ = v.Destroy()
			}
		}
	}()
	if runErr != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("ort: %s: %w", e.name, ctx.Err())
		}
		return nil, runError(engine.ErrRun, e.name, "run", runErr)
	}
	res := make(map[string]engine.Tensor, len(outs))
	for i, v := range outs {
		t, err := fromValue(v)
		if err != nil {
			return nil, fmt.Errorf("%w: ort: %s: output %q: %v", engine.ErrRun, e.name, e.outputs[i].Name, err)
		}
		res[e.outputs[i].Name] = t
	}
	return e.deliver(inputs, res)
}

func toValue(t engine.Tensor, pin *runtime.Pinner) (ortgo.Value, error) {
	h, ok := t.(*engine.HostTensor)
	if !ok {
		return nil, fmt.Errorf("%w: not a host tensor (%T)", engine.ErrDevice, t)
	}
	shape := ortgo.NewShape(h.Shape()...)
	switch h.DType() {
	case engine.Float32:
		if len(h.F32) > 0 {
			pin.Pin(&h.F32[0])
		}
		return ortgo.NewTensor(shape, h.F32)
	case engine.Int32:
		if len(h.I32) > 0 {
			pin.Pin(&h.I32[0])
		}
		return ortgo.NewTensor(shape, h.I32)
	case engine.Int64:
		if len(h.I64) > 0 {
			pin.Pin(&h.I64[0])
		}
		return ortgo.NewTensor(shape, h.I64)
	case engine.Uint8:
		if len(h.U8) > 0 {
			pin.Pin(&h.U8[0])
		}
		return ortgo.NewTensor(shape, h.U8)
	}
	return nil, fmt.Errorf("%w: %v tensors are not supported by the ort backend", engine.ErrDType, h.DType())
}

// fromValue copies nothing: onnxruntime_go already copied the output into a Go slice,
// which the returned host tensor takes over.
func fromValue(v ortgo.Value) (*engine.HostTensor, error) {
	shape := engine.Shape(v.GetShape())
	switch x := v.(type) {
	case *ortgo.Tensor[float32]:
		return engine.FromFloat32(shape, x.GetData())
	case *ortgo.Tensor[int32]:
		return engine.FromInt32(shape, x.GetData())
	case *ortgo.Tensor[int64]:
		return engine.FromInt64(shape, x.GetData())
	}
	return nil, errors.New("unsupported output element type")
}
