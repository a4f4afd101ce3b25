package trt

/*
#include <stdlib.h>
#include "grefine_trt_loader.h"
*/
import "C"

import (
	"fmt"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/rs/zerolog"

	"github.com/grefine/grefine/engine"
)

func init() {
	engine.Register("trt", func(opts map[string]string) (engine.Backend, error) {
		var o Options
		for k, v := range opts {
			switch k {
			case "lib":
				o.Lib = v
			case "cuda_graphs":
				b, err := strconv.ParseBool(v)
				if err != nil {
					return nil, fmt.Errorf("%w: trt: option cuda_graphs=%q is not a boolean", engine.ErrUnavailable, v)
				}
				o.CUDAGraphs = b
			case "device":
				d, err := strconv.Atoi(v)
				if err != nil || d < 0 {
					return nil, fmt.Errorf("%w: trt: option device=%q is not a CUDA device index", engine.ErrUnavailable, v)
				}
				o.Device = d
			default:
				return nil, fmt.Errorf("%w: trt: unknown option %q (known: lib, cuda_graphs, device)", engine.ErrUnavailable, k)
			}
		}
		return New(o), nil
	})
}

// Options configure a Backend.
type Options struct {
	// Lib is the path of libgrefine_trt.so (or of the emulator, libgrefine_trt_emu.so);
	// empty: $GRF_TRT_LIB, then beside the executable (libgrefine_trt.so,
	// ../build/libgrefine_trt.so), then the system loader (engine/native). A process loads
	// one shim: a later Lib naming another file is an error.
	Lib string
	// Logger receives TensorRT's log (errors, warnings; info at debug, verbose at trace
	// level). The zero value discards it.
	Logger zerolog.Logger
	// CUDAGraphs makes engines capture one enqueue per (profile, shapes, addresses) state
	// in a CUDA graph and replay it while that state holds (see Engine.RunInto).
	CUDAGraphs bool
	// Device is the CUDA device index. The runtime, its engines and contexts, the slots'
	// streams and scratch, and Buffers all live on it; every shim call makes it current
	// for that call only (the calling thread's current device never matters).
	Device int
}

// Backend is the "trt" engine.Backend: it opens TensorRT plans through the shim and owns
// the TensorRT runtime of its device, its engines and its execution slots (Slot: a stream
// and scratch memory, one execution context per engine used in the slot).
//
// Close closes the slots (contexts first), then the engines, then the runtime.
type Backend struct {
	opts Options

	mu      sync.Mutex
	loadErr error // cached Available result
	loaded  bool
	emu     bool // the shim is the emulator (on cuda-emu)
	rt      *C.grf_trt_runtime
	def     *Slot         // the default slot (Engine.Run)
	slots   map[int]*Slot // slots by id (Slot), including 0 = def
	anon    map[*Slot]struct{}
	engines map[*Engine]struct{}
	closed  bool

	allocs atomic.Int64 // shim buffers allocated, for tests and metrics
}

// New makes a backend. It does not load the library; Available does, on first use.
func New(opts Options) *Backend {
	return &Backend{opts: opts, engines: map[*Engine]struct{}{}, slots: map[int]*Slot{}, anon: map[*Slot]struct{}{}}
}

// Name implements engine.Backend.
func (b *Backend) Name() string { return "trt" }

// DeviceName implements engine.Backend: the device whose tensors the engines read and
// write, "cuda", on every shim (the emulator's device is an emulated GPU, cuda-emu).
func (b *Backend) DeviceName() string { return "cuda" }

// Emulated reports whether the loaded shim is the TensorRT emulator on cuda-emu
// (libgrefine_trt_emu.so). It behaves like a GPU: device tensors only, work queued on the
// slots' streams; only its numbers (ONNX Runtime on the CPU) and speed differ.
func (b *Backend) Emulated() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_ = b.availableLocked()
	return b.emu
}

// BufferAllocations counts the shim buffers (device memory) this backend has allocated:
// outputs, staging, scratch. A steady state allocates none (see Session.RunInto).
func (b *Backend) BufferAllocations() int64 { return b.allocs.Load() }

// DeviceIndex is the CUDA device the backend's handles live on.
func (b *Backend) DeviceIndex() int { return b.opts.Device }

// Available loads the shim (once) and checks that a CUDA device is visible. The error
// wraps engine.ErrUnavailable and says why.
func (b *Backend) Available() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.availableLocked()
}

func (b *Backend) availableLocked() error {
	if b.closed {
		return fmt.Errorf("%w: trt: backend", engine.ErrClosed)
	}
	if b.loaded {
		return b.loadErr
	}
	b.loaded = true
	b.loadErr = b.load()
	return b.loadErr
}

func (b *Backend) load() error {
	if b.opts.Device < 0 {
		return fmt.Errorf("%w: trt: device %d: not a CUDA device index", engine.ErrUnavailable, b.opts.Device)
	}
	if err := loadLib(b.opts.Lib); err != nil {
		return err
	}
	l := b.opts.Logger
	logSink.Store(&l)
	if err := call("set log callback", func(e *C.char, n C.size_t) C.int32_t {
		return C.grf_trtl_set_log_callback(C.int32_t(maxSeverity(l)), e, n)
	}); err != nil {
		return fmt.Errorf("%w: %v", engine.ErrUnavailable, err)
	}
	d, err := deviceInfo(b.opts.Device)
	if err != nil {
		return fmt.Errorf("%w: %v", engine.ErrUnavailable, err)
	}
	if d.Count == 0 {
		return fmt.Errorf("%w: trt: no CUDA device visible", engine.ErrUnavailable)
	}
	b.emu = d.Emulated
	return nil
}

// Versions reports the shim's ABI and the compiled and runtime TensorRT versions.
func (b *Backend) Versions() (VersionInfo, error) {
	if err := b.Available(); err != nil {
		return VersionInfo{}, err
	}
	return versions()
}

// Version implements engine.Backend: "tensorrt 10.16.0 (shim built against 11.1.0)", or ""
// when unavailable.
func (b *Backend) Version() string {
	v, err := b.Versions()
	if err != nil {
		return ""
	}
	if b.Emulated() {
		return fmt.Sprintf("tensorrt emulator (abi %d, on cuda-emu, onnxruntime on the cpu)", v.ABI)
	}
	return fmt.Sprintf("tensorrt %s (shim built against %s)", v.Runtime, v.Compiled)
}

// Device describes the backend's CUDA device.
func (b *Backend) Device() (DeviceInfo, error) {
	if err := b.Available(); err != nil {
		return DeviceInfo{}, err
	}
	return deviceInfo(b.opts.Device)
}

// readyLocked loads the library and creates the TensorRT runtime. Caller holds b.mu.
func (b *Backend) readyLocked() error {
	if err := b.availableLocked(); err != nil {
		return err
	}
	if b.rt == nil {
		if err := call("runtime create", func(e *C.char, n C.size_t) C.int32_t {
			return C.grf_trtl_runtime_create(C.int32_t(b.opts.Device), &b.rt, e, n)
		}); err != nil {
			return err
		}
	}
	return nil
}

// Stream is the default slot's CUDA stream (a cudaStream_t), used by Engine.Run and by
// Backend.Upload/Alloc buffers.
func (b *Backend) Stream() (uintptr, error) {
	s, err := b.Slot(0)
	if err != nil {
		return 0, err
	}
	return s.Stream(), nil
}

// Synchronize waits for the work queued on the default slot's stream.
func (b *Backend) Synchronize() error {
	s, err := b.Slot(0)
	if err != nil {
		return err
	}
	return s.Synchronize()
}

// newBuffer allocates a shim buffer on the backend's device, copying on stream.
func (b *Backend) newBuffer(dt engine.DType, shape engine.Shape, stream uintptr) (*Buffer, error) {
	if err := b.Available(); err != nil {
		return nil, err
	}
	buf, err := newBuffer(b.opts.Device, dt, shape, stream)
	if err == nil {
		b.allocs.Add(1)
	}
	return buf, err
}

// Alloc allocates a shim Buffer on the default stream (contents undefined until written).
func (b *Backend) Alloc(dt engine.DType, shape engine.Shape) (engine.Tensor, error) {
	s, err := b.Stream()
	if err != nil {
		return nil, err
	}
	return b.newBuffer(dt, shape, s)
}

// Upload copies a host tensor into a new Buffer.
func (b *Backend) Upload(t *engine.HostTensor) (*Buffer, error) {
	s, err := b.Stream()
	if err != nil {
		return nil, err
	}
	buf, err := b.newBuffer(t.DType(), t.Shape(), s)
	if err != nil {
		return nil, err
	}
	if err := buf.upload(t); err != nil {
		_ = buf.Close()
		return nil, err
	}
	return buf, nil
}

// Download copies a Buffer to host memory after the work queued on its stream.
func (b *Backend) Download(t engine.Tensor) (*engine.HostTensor, error) {
	buf, ok := t.(*Buffer)
	if !ok {
		return nil, fmt.Errorf("%w: trt: can download only *trt.Buffer, got %T", engine.ErrDevice, t)
	}
	return buf.Download()
}

// Open implements engine.Backend: it loads a plan file and creates its execution context.
func (b *Backend) Open(path string, opts engine.OpenOptions) (engine.Engine, error) {
	return b.OpenEngine(path, opts)
}

// OpenEngine is Open returning the concrete type.
func (b *Backend) OpenEngine(path string, opts engine.OpenOptions) (*Engine, error) {
	name := opts.Name
	if name == "" {
		name = path
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	return b.open(name, func(rt *C.grf_trt_runtime, out **C.grf_trt_engine) error {
		return call("load plan "+path, func(e *C.char, n C.size_t) C.int32_t {
			return C.grf_trtl_engine_load_file(rt, cpath, out, e, n)
		})
	})
}

// OpenPlan deserializes a plan held in memory (copied by TensorRT during the call).
func (b *Backend) OpenPlan(plan []byte, opts engine.OpenOptions) (*Engine, error) {
	if len(plan) == 0 {
		return nil, fmt.Errorf("%w: trt: %s: empty plan", engine.ErrModel, opts.Name)
	}
	return b.open(opts.Name, func(rt *C.grf_trt_runtime, out **C.grf_trt_engine) error {
		return call("deserialize "+opts.Name, func(e *C.char, n C.size_t) C.int32_t {
			return C.grf_trtl_engine_deserialize(rt, unsafe.Pointer(&plan[0]), C.size_t(len(plan)), out, e, n)
		})
	})
}

func (b *Backend) open(name string, load func(*C.grf_trt_runtime, **C.grf_trt_engine) error) (*Engine, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.readyLocked(); err != nil {
		return nil, err
	}
	var h *C.grf_trt_engine
	if err := load(b.rt, &h); err != nil {
		return nil, err
	}
	e, err := newEngine(b, name, h)
	if err != nil {
		return nil, err
	}
	b.engines[e] = struct{}{}
	return e, nil
}

// forget removes a closed engine. Caller holds no locks.
func (b *Backend) forget(e *Engine) {
	b.mu.Lock()
	delete(b.engines, e)
	b.mu.Unlock()
}

// Close closes the slots (each closes its sessions' contexts, then its scratch and
// stream), then the engines, then the runtime. It is idempotent and nil-safe.
func (b *Backend) Close() error {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	var slots []*Slot
	for _, s := range b.slots {
		slots = append(slots, s)
	}
	for s := range b.anon {
		slots = append(slots, s)
	}
	engines := make([]*Engine, 0, len(b.engines))
	for e := range b.engines {
		engines = append(engines, e)
	}
	b.mu.Unlock()
	var first error
	keep := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	for _, s := range slots { // every session (execution context) first
		keep(s.Close())
	}
	sort.Slice(engines, func(i, j int) bool { return engines[i].name < engines[j].name })
	for _, e := range engines {
		keep(e.Close())
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rt != nil {
		rt := b.rt
		b.rt = nil
		keep(call("runtime destroy", func(e *C.char, n C.size_t) C.int32_t {
			return C.grf_trtl_runtime_destroy(rt, e, n)
		}))
	}
	return first
}

// ScratchBytes is the size of the default slot's scratch buffer (0 before its first run).
func (b *Backend) ScratchBytes() int64 {
	s, err := b.Slot(0)
	if err != nil {
		return 0
	}
	return s.ScratchBytes()
}

// ReserveScratch sizes the default slot's scratch for the engines used in it so far (see
// Slot.Reserve).
func (b *Backend) ReserveScratch() error {
	s, err := b.Slot(0)
	if err != nil {
		return err
	}
	return s.Reserve()
}
