package trt

/*
#include <stdlib.h>
#include "grefine_trt_loader.h"
*/
import "C"

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
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
			default:
				return nil, fmt.Errorf("%w: trt: unknown option %q (known: lib, cuda_graphs)", engine.ErrUnavailable, k)
			}
		}
		return New(o), nil
	})
}

// Options configure a Backend.
type Options struct {
	// Lib is the path of libgrefine_trt.so; empty: $GRF_TRT_LIB, then next to the executable.
	Lib string
	// Logger receives TensorRT's log (errors, warnings; info at debug, verbose at trace
	// level). The zero value discards it.
	Logger zerolog.Logger
	// CUDAGraphs makes engines capture one enqueue per (profile, shapes, addresses) state
	// in a CUDA graph and replay it while that state holds (see Engine.RunInto).
	CUDAGraphs bool
	// Device is the CUDA device index. Only 0 is supported (the shim does not switch
	// devices); pick a GPU with CUDA_VISIBLE_DEVICES.
	Device int
}

// Backend is the "trt" engine.Backend: it opens TensorRT plans through the shim and owns
// what its engines share: the TensorRT runtime, a default stream and one scratch buffer
// sized to the largest need of its engines (they run serially on one stream).
//
// Close closes every engine still open, then the scratch, stream and runtime.
type Backend struct {
	opts Options

	mu      sync.Mutex
	loadErr error // cached Available result
	loaded  bool
	rt      *C.grf_trt_runtime
	stream  uintptr
	scratch *Buffer
	engines map[*Engine]struct{}
	closed  bool
}

// New makes a backend. It does not load the library; Available does, on first use.
func New(opts Options) *Backend {
	return &Backend{opts: opts, engines: map[*Engine]struct{}{}}
}

// Name implements engine.Backend.
func (b *Backend) Name() string { return "trt" }

// DeviceName implements engine.Backend: trt engines read "cuda" tensors.
func (b *Backend) DeviceName() string { return "cuda" }

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
	if b.opts.Device != 0 {
		return fmt.Errorf("%w: trt: device %d: only device 0 is supported (select the GPU with CUDA_VISIBLE_DEVICES)", engine.ErrUnavailable, b.opts.Device)
	}
	path, err := findLib(b.opts.Lib)
	if err != nil {
		return err
	}
	if err := loadLib(path); err != nil {
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
	return fmt.Sprintf("tensorrt %s (shim built against %s)", v.Runtime, v.Compiled)
}

// Device describes the backend's CUDA device.
func (b *Backend) Device() (DeviceInfo, error) {
	if err := b.Available(); err != nil {
		return DeviceInfo{}, err
	}
	return deviceInfo(b.opts.Device)
}

// streamLocked loads the library and creates the default stream. Caller holds b.mu.
func (b *Backend) streamLocked() error {
	if err := b.availableLocked(); err != nil {
		return err
	}
	if b.stream == 0 {
		var s C.uintptr_t
		if err := call("stream create", func(e *C.char, n C.size_t) C.int32_t {
			return C.grf_trtl_stream_create(&s, e, n)
		}); err != nil {
			return err
		}
		b.stream = uintptr(s)
	}
	return nil
}

// readyLocked also creates the TensorRT runtime. Caller holds b.mu.
func (b *Backend) readyLocked() error {
	if err := b.streamLocked(); err != nil {
		return err
	}
	if b.rt == nil {
		if err := call("runtime create", func(e *C.char, n C.size_t) C.int32_t {
			return C.grf_trtl_runtime_create(&b.rt, e, n)
		}); err != nil {
			return err
		}
	}
	return nil
}

// Stream is the backend's default CUDA stream (a cudaStream_t), used by Run when the
// context carries none (see WithStream), and by Buffer copies.
func (b *Backend) Stream() (uintptr, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.streamLocked(); err != nil {
		return 0, err
	}
	return b.stream, nil
}

// Synchronize waits for the work queued on the default stream.
func (b *Backend) Synchronize() error {
	s, err := b.Stream()
	if err != nil {
		return err
	}
	return call("stream synchronize", func(e *C.char, n C.size_t) C.int32_t {
		return C.grf_trtl_stream_synchronize(C.uintptr_t(s), e, n)
	})
}

// Alloc implements Allocator with shim Buffers (zeroed by neither side: contents are
// undefined until written).
func (b *Backend) Alloc(dt engine.DType, shape engine.Shape) (engine.Tensor, error) {
	s, err := b.Stream()
	if err != nil {
		return nil, err
	}
	return newBuffer(dt, shape, s)
}

// Upload copies a host tensor into a new Buffer.
func (b *Backend) Upload(t *engine.HostTensor) (*Buffer, error) {
	s, err := b.Stream()
	if err != nil {
		return nil, err
	}
	buf, err := newBuffer(t.DType(), t.Shape(), s)
	if err != nil {
		return nil, err
	}
	if err := buf.upload(t); err != nil {
		_ = buf.Close()
		return nil, err
	}
	return buf, nil
}

// Download copies a Buffer to host memory after the work queued on the default stream.
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

// scratchFor returns scratch memory of at least need bytes. When the shared buffer is too
// small it is replaced by one sized to the largest need of all open engines (the old one
// is freed; cudaFree waits for queued work, and engines rebind before their next run).
func (b *Backend) scratchFor(need int64) (uintptr, int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, 0, fmt.Errorf("%w: trt: backend", engine.ErrClosed)
	}
	if b.scratch != nil && b.scratch.bytes >= need {
		return b.scratch.ptr, b.scratch.bytes, nil
	}
	for e := range b.engines {
		if e.maxMemory > need {
			need = e.maxMemory
		}
	}
	if b.scratch != nil {
		if err := b.scratch.Close(); err != nil {
			return 0, 0, err
		}
		b.scratch = nil
	}
	s, err := newBuffer(engine.Uint8, engine.Shape{need}, b.stream)
	if err != nil {
		return 0, 0, err
	}
	b.scratch = s
	return s.ptr, s.bytes, nil
}

// ScratchBytes is the size of the shared scratch buffer (0 before the first Run).
func (b *Backend) ScratchBytes() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.scratch == nil {
		return 0
	}
	return b.scratch.bytes
}

// ReserveScratch sizes the shared scratch buffer for every engine open now, so later Runs
// do not reallocate it.
func (b *Backend) ReserveScratch() error {
	b.mu.Lock()
	var need int64
	for e := range b.engines {
		if e.maxMemory > need {
			need = e.maxMemory
		}
	}
	b.mu.Unlock()
	_, _, err := b.scratchFor(need)
	return err
}

// Close closes open engines (contexts before engines), the scratch buffer, the stream and
// the runtime. It is idempotent and nil-safe.
func (b *Backend) Close() error {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	engines := make([]*Engine, 0, len(b.engines))
	for e := range b.engines {
		engines = append(engines, e)
	}
	b.mu.Unlock()
	sort.Slice(engines, func(i, j int) bool { return engines[i].name < engines[j].name })
	var first error
	for _, e := range engines {
		if err := e.Close(); err != nil && first == nil {
			first = err
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	if err := b.scratch.Close(); err != nil && first == nil {
		first = err
	}
	b.scratch = nil
	if b.stream != 0 {
		s := b.stream
		b.stream = 0
		if err := call("stream destroy", func(e *C.char, n C.size_t) C.int32_t {
			return C.grf_trtl_stream_destroy(C.uintptr_t(s), e, n)
		}); err != nil && first == nil {
			first = err
		}
	}
	if b.rt != nil {
		rt := b.rt
		b.rt = nil
		if err := call("runtime destroy", func(e *C.char, n C.size_t) C.int32_t {
			return C.grf_trtl_runtime_destroy(rt, e, n)
		}); err != nil && first == nil {
			first = err
		}
	}
	return first
}

type streamKey struct{}

// WithStream makes Engine.Run on ctx enqueue on stream (a cudaStream_t from engine/cuda),
// so engines and kernels of one request share one stream.
func WithStream(ctx context.Context, stream uintptr) context.Context {
	return context.WithValue(ctx, streamKey{}, stream)
}

// streamFrom returns the context's stream, if any.
func streamFrom(ctx context.Context) (uintptr, bool) {
	s, ok := ctx.Value(streamKey{}).(uintptr)
	return s, ok
}
