package cuda

/*
#include "grefine_cuda_loader.h"
*/
import "C"

import (
	"fmt"
	"sync"
	"unsafe"

	"github.com/grefine/grefine/engine"
)

// Options configure Open.
type Options struct {
	// LibPath is the path of libgrefine_cuda.so, or of the emulator
	// (libgrefine_cuda_emu.so); empty: $GRF_CUDA_LIB, then beside the executable
	// (libgrefine_cuda.so, ../build/libgrefine_cuda.so), then the system loader
	// (engine/native). One process loads one library: a later LibPath naming another
	// file is an error.
	LibPath string
	// Emulator, with LibPath empty, opens cuda-emu (libgrefine_cuda_emu.so, `make
	// cuda-emu`) instead: the file $GRF_CUDA_EMU_LIB names, else libgrefine_cuda_emu.so
	// beside the executable or in ../build/ (EmulatorPath). Its devices are
	// GRF_CUDA_EMU_DEVICES emulated GPUs (see cgo/emu/grefine_cuda_emu.h).
	Emulator bool
	// Ordinal is the CUDA device index.
	Ordinal int
}

// Info describes the GPU a Device drives.
type Info struct {
	Name           string
	Major, Minor   int // compute capability
	TotalMem       uint64
	SMs            int
	RuntimeVersion int // CUDA runtime the library was built with (e.g. 11080); 0 on cuda-emu
	DriverVersion  int // CUDA version of the driver (e.g. 12040); 0 on cuda-emu
	LibPath        string
	// LibSource says how the library was found ("$GRF_CUDA_LIB", "beside the binary", ...).
	LibSource string
	// Emulated: the device is cuda-emu (libgrefine_cuda_emu.so), the GPU emulator of CI:
	// device memory the host cannot read, work queued per stream, the kernels' reference
	// loops on the CPU. Its numbers say nothing about a GPU's speed.
	Emulated bool
}

// String describes the device in one line, saying when it is the emulator.
func (i Info) String() string {
	if i.Emulated {
		return fmt.Sprintf("%s: emulated (cuda-emu, no GPU), compute capability %d.%d, %.1f GiB budget, library %s",
			i.Name, i.Major, i.Minor, float64(i.TotalMem)/(1<<30), i.LibPath)
	}
	return fmt.Sprintf("%s, compute capability %d.%d, %d SMs, %.1f GiB, CUDA runtime %d, driver %d, library %s",
		i.Name, i.Major, i.Minor, i.SMs, float64(i.TotalMem)/(1<<30), i.RuntimeVersion, i.DriverVersion, i.LibPath)
}

// Device is one GPU driven through libgrefine_cuda.so. Its methods are safe for
// concurrent use; each request should use its own Stream.
type Device struct {
	ordinal int
	info    Info
	mu      sync.Mutex
	closed  bool
}

var _ engine.Device = (*Device)(nil)

// Open loads the library (once per process) and opens GPU opts.Ordinal. Without the
// library or a usable GPU it returns an error wrapping engine.ErrUnavailable that says
// which: library not found, no device, or insufficient driver (with CUDA's message).
func Open(opts Options) (*Device, error) {
	explicit := opts.LibPath
	if explicit == "" && opts.Emulator {
		p, err := EmulatorPath()
		if err != nil {
			return nil, err
		}
		explicit = p
	}
	lib, err := load(explicit)
	if err != nil {
		return nil, err
	}
	if opts.Emulator && !libEmulated {
		return nil, fmt.Errorf("%w: cuda: the emulator was asked for, but %s (%s) is not cuda-emu", engine.ErrUnavailable, lib.Path, lib.Source)
	}
	var e errBuf
	var n, cerr C.int
	if rc := C.grf_go_device_count(&n, &cerr, e.ptr(), errLen); rc != statusOK {
		reason := "cuda error"
		switch cerr {
		case cudaErrorNoDevice:
			reason = "no device"
		case cudaErrorInsufficientDriver:
			reason = "insufficient driver"
		}
		return nil, fmt.Errorf("%w: cuda: %s (%s)", engine.ErrUnavailable, reason, e.msg())
	}
	if opts.Ordinal < 0 || opts.Ordinal >= int(n) {
		return nil, fmt.Errorf("%w: cuda: device %d requested, %d present", engine.ErrUnavailable, opts.Ordinal, int(n))
	}
	d := &Device{ordinal: opts.Ordinal}
	var name [256]C.char
	var major, minor, sms C.int
	var mem C.size_t
	if rc := C.grf_go_device_info(C.int(d.ordinal), &name[0], C.size_t(len(name)), &major, &minor, &mem, &sms, e.ptr(), errLen); rc != statusOK {
		return nil, statusError("device info", rc, &e)
	}
	var rt, drv C.int
	if rc := C.grf_go_versions(&rt, &drv, e.ptr(), errLen); rc != statusOK {
		return nil, statusError("versions", rc, &e)
	}
	if rc := C.grf_go_set_device(C.int(d.ordinal), e.ptr(), errLen); rc != statusOK {
		return nil, statusError("set device", rc, &e)
	}
	d.info = Info{
		Name: C.GoString(&name[0]), Major: int(major), Minor: int(minor), TotalMem: uint64(mem),
		SMs: int(sms), RuntimeVersion: int(rt), DriverVersion: int(drv), LibPath: lib.Path,
		LibSource: lib.Source, Emulated: libEmulated,
	}
	return d, nil
}

// Name implements engine.Device.
func (d *Device) Name() string { return "cuda" }

// Info describes the GPU.
func (d *Device) Info() Info { return d.info }

// Available implements engine.Device: nil while the device is open.
func (d *Device) Available() error {
	if d == nil {
		return fmt.Errorf("%w: cuda: no device", engine.ErrUnavailable)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("%w: cuda: device closed", engine.ErrClosed)
	}
	return nil
}

// Close implements engine.Device. Tensors and streams must be closed by their owners; the
// device itself holds no GPU memory. Idempotent and nil-safe.
func (d *Device) Close() error {
	if d == nil {
		return nil
	}
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	return nil
}

func (d *Device) dev() C.int { return C.int(d.ordinal) }

// Tensor is device memory of one dtype and shape, allocated with plain cudaMalloc and
// released by Close (no finalizer). A view (from tests' guard bands) does not own memory.
type Tensor struct {
	dev    *Device
	dtype  engine.DType
	shape  engine.Shape
	ptr    unsafe.Pointer
	bytes  int
	owned  bool
	closed bool
}

var _ engine.Tensor = (*Tensor)(nil)

// Alloc allocates an uninitialised device tensor (AllocTensor as an engine.Tensor). Its
// signature is engine/trt's Allocator, so TensorRT sessions can write their outputs into
// this device's memory (trt.Session.SetAllocator).
func (d *Device) Alloc(dt engine.DType, shape engine.Shape) (engine.Tensor, error) {
	t, err := d.AllocTensor(dt, shape)
	if err != nil {
		return nil, err
	}
	return t, nil
}

// Ordinal is the CUDA device index the device's calls run on.
func (d *Device) Ordinal() int { return d.ordinal }

// AllocTensor allocates an uninitialised device tensor on the device (its index is passed
// with the call; the thread's current device does not matter).
func (d *Device) AllocTensor(dt engine.DType, shape engine.Shape) (*Tensor, error) {
	if err := d.Available(); err != nil {
		return nil, err
	}
	n := shape.NumElements()
	if n < 0 || dt.Size() == 0 {
		return nil, fmt.Errorf("%w: cuda: cannot allocate %v%v", engine.ErrShape, dt, shape)
	}
	t := &Tensor{dev: d, dtype: dt, shape: shape.Clone(), bytes: int(n) * dt.Size(), owned: true}
	var e errBuf
	var p unsafe.Pointer
	if rc := C.grf_go_malloc(d.dev(), &p, C.size_t(t.bytes), e.ptr(), errLen); rc != statusOK {
		return nil, statusError("alloc", rc, &e)
	}
	t.ptr = p
	return t, nil
}

// DType implements engine.Tensor.
func (t *Tensor) DType() engine.DType { return t.dtype }

// Shape implements engine.Tensor; the slice must not be modified.
func (t *Tensor) Shape() engine.Shape { return t.shape }

// DeviceName implements engine.Tensor.
func (t *Tensor) DeviceName() string { return "cuda" }

// Bytes is the size of the tensor's storage.
func (t *Tensor) Bytes() int { return t.bytes }

// DevicePtr is the device address of the first element (0 once closed, or for an empty
// tensor): what TensorRT binds (engine/trt's DeviceTensor).
func (t *Tensor) DevicePtr() uintptr {
	if t == nil || t.closed {
		return 0
	}
	return uintptr(t.ptr)
}

// Device is the CUDA device index the memory lives on.
func (t *Tensor) Device() int { return t.dev.ordinal }

// Close frees the device memory. Idempotent and nil-safe.
func (t *Tensor) Close() error {
	if t == nil || t.closed {
		return nil
	}
	p := t.ptr
	t.ptr, t.closed = nil, true
	if !t.owned || p == nil {
		return nil
	}
	var e errBuf
	if rc := C.grf_go_free(t.dev.dev(), p, e.ptr(), errLen); rc != statusOK {
		return statusError("free", rc, &e)
	}
	return nil
}

func (t *Tensor) live(op string) error {
	if t == nil || t.closed {
		return fmt.Errorf("%w: cuda: %s: tensor closed or nil", engine.ErrClosed, op)
	}
	return nil
}

// hostBytes returns the bytes of a host tensor's storage (borrowed for one call).
func hostBytes(h *engine.HostTensor) (unsafe.Pointer, int) {
	switch {
	case h.F32 != nil:
		return unsafe.Pointer(unsafe.SliceData(h.F32)), len(h.F32) * 4
	case h.I32 != nil:
		return unsafe.Pointer(unsafe.SliceData(h.I32)), len(h.I32) * 4
	case h.I64 != nil:
		return unsafe.Pointer(unsafe.SliceData(h.I64)), len(h.I64) * 8
	case h.U8 != nil:
		return unsafe.Pointer(unsafe.SliceData(h.U8)), len(h.U8)
	}
	return nil, 0
}

// Upload implements engine.Device: it allocates a device tensor and copies h into it
// (synchronously, on the legacy default stream).
func (d *Device) Upload(h *engine.HostTensor) (engine.Tensor, error) {
	if h == nil {
		return nil, fmt.Errorf("%w: cuda: upload of a nil tensor", engine.ErrShape)
	}
	t, err := d.AllocTensor(h.DType(), h.Shape())
	if err != nil {
		return nil, err
	}
	if err := copyHtoD(t, h, nil); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

// Download implements engine.Device: t must be a *Tensor of this device. The copy runs on
// the legacy default stream, so it waits for work enqueued on this package's Streams.
func (d *Device) Download(t engine.Tensor) (*engine.HostTensor, error) {
	dt, ok := t.(*Tensor)
	if !ok || dt == nil {
		return nil, fmt.Errorf("%w: cuda: cannot download a %T", engine.ErrDevice, t)
	}
	h, err := engine.NewHostTensor(dt.dtype, dt.shape)
	if err != nil {
		return nil, fmt.Errorf("cuda: %w", err)
	}
	if err := copyDtoH(h, dt, nil); err != nil {
		return nil, err
	}
	return h, nil
}

func copyHtoD(t *Tensor, h *engine.HostTensor, s *C.grf_stream) error {
	if err := t.live("upload"); err != nil {
		return err
	}
	p, n := hostBytes(h)
	if h.DType() != t.dtype || n != t.bytes {
		return fmt.Errorf("%w: cuda: upload of %v%v into %v%v", engine.ErrShape, h.DType(), h.Shape(), t.dtype, t.shape)
	}
	var e errBuf
	if rc := C.grf_go_memcpy_htod(t.dev.dev(), t.ptr, p, C.size_t(n), s, e.ptr(), errLen); rc != statusOK {
		return statusError("upload", rc, &e)
	}
	return nil
}

func copyDtoH(h *engine.HostTensor, t *Tensor, s *C.grf_stream) error {
	if err := t.live("download"); err != nil {
		return err
	}
	p, n := hostBytes(h)
	if h.DType() != t.dtype || n != t.bytes {
		return fmt.Errorf("%w: cuda: download of %v%v into %v%v", engine.ErrShape, t.dtype, t.shape, h.DType(), h.Shape())
	}
	var e errBuf
	if rc := C.grf_go_memcpy_dtoh(t.dev.dev(), p, t.ptr, C.size_t(n), s, e.ptr(), errLen); rc != statusOK {
		return statusError("download", rc, &e)
	}
	return nil
}

// Stream is a CUDA stream for one request: ops enqueue on it and return without waiting;
// Sync, Download and Close wait. It also holds the grow-only scratch memory of FuseMaps.
// A Stream is used by one goroutine at a time.
type Stream struct {
	dev     *Device
	h       *C.grf_stream
	ws      unsafe.Pointer
	wsBytes int
}

// NewStream creates a stream.
func (d *Device) NewStream() (*Stream, error) {
	if err := d.Available(); err != nil {
		return nil, err
	}
	s := &Stream{dev: d}
	var e errBuf
	if rc := C.grf_go_stream_create(d.dev(), &s.h, e.ptr(), errLen); rc != statusOK {
		return nil, statusError("stream create", rc, &e)
	}
	return s, nil
}

// Handle is the stream's cudaStream_t, for engine/trt (trt.SlotOptions.Stream): engines
// and kernels of one request enqueue on one stream. It is valid until Close.
func (s *Stream) Handle() uintptr {
	if s == nil {
		return 0
	}
	return uintptr(unsafe.Pointer(s.h))
}

// Device is the CUDA device index the stream belongs to.
func (s *Stream) Device() int { return s.dev.ordinal }

// Sync waits for the stream's work and reports its asynchronous errors.
func (s *Stream) Sync() error {
	if err := s.live(); err != nil {
		return err
	}
	var e errBuf
	if rc := C.grf_go_stream_sync(s.dev.dev(), s.h, e.ptr(), errLen); rc != statusOK {
		return statusError("stream sync", rc, &e)
	}
	return nil
}

// Close waits for the stream, destroys it and frees its scratch memory. Idempotent and
// nil-safe.
func (s *Stream) Close() error {
	if s == nil || s.h == nil {
		return nil
	}
	var e errBuf
	var first error
	if rc := C.grf_go_stream_destroy(s.dev.dev(), s.h, e.ptr(), errLen); rc != statusOK {
		first = statusError("stream destroy", rc, &e)
	}
	s.h = nil
	if s.ws != nil {
		if rc := C.grf_go_free(s.dev.dev(), s.ws, e.ptr(), errLen); rc != statusOK && first == nil {
			first = statusError("free workspace", rc, &e)
		}
		s.ws, s.wsBytes = nil, 0
	}
	return first
}

func (s *Stream) live() error {
	if s == nil || s.h == nil {
		return fmt.Errorf("%w: cuda: stream closed or nil", engine.ErrClosed)
	}
	return nil
}

// Upload copies h into t, ordered after the stream's earlier work; it returns when the
// copy is done.
func (s *Stream) Upload(t *Tensor, h *engine.HostTensor) error {
	if err := s.live(); err != nil {
		return err
	}
	return copyHtoD(t, h, s.h)
}

// Download copies t into h after the stream's earlier work; it returns when the copy is
// done.
func (s *Stream) Download(h *engine.HostTensor, t *Tensor) error {
	if err := s.live(); err != nil {
		return err
	}
	return copyDtoH(h, t, s.h)
}

// Copy enqueues a device-to-device copy of src into dst (same byte size).
func (s *Stream) Copy(dst, src *Tensor) error {
	if err := s.live(); err != nil {
		return err
	}
	if err := dst.live("copy"); err != nil {
		return err
	}
	if err := src.live("copy"); err != nil {
		return err
	}
	if dst.bytes != src.bytes {
		return fmt.Errorf("%w: cuda: copy of %d bytes into %d", engine.ErrShape, src.bytes, dst.bytes)
	}
	var e errBuf
	if rc := C.grf_go_memcpy_dtod(s.dev.dev(), dst.ptr, src.ptr, C.size_t(src.bytes), s.h, e.ptr(), errLen); rc != statusOK {
		return statusError("copy", rc, &e)
	}
	return nil
}

// Memset enqueues a byte fill of t.
func (s *Stream) Memset(t *Tensor, value byte) error {
	if err := s.live(); err != nil {
		return err
	}
	if err := t.live("memset"); err != nil {
		return err
	}
	var e errBuf
	if rc := C.grf_go_memset(s.dev.dev(), t.ptr, C.int(value), C.size_t(t.bytes), s.h, e.ptr(), errLen); rc != statusOK {
		return statusError("memset", rc, &e)
	}
	return nil
}

// workspace returns at least n bytes of stream-owned scratch memory. Growing waits for
// the stream first, so earlier kernels never see their scratch freed.
func (s *Stream) workspace(n int) (unsafe.Pointer, error) {
	if n <= s.wsBytes {
		return s.ws, nil
	}
	if err := s.Sync(); err != nil {
		return nil, err
	}
	var e errBuf
	if s.ws != nil {
		if rc := C.grf_go_free(s.dev.dev(), s.ws, e.ptr(), errLen); rc != statusOK {
			return nil, statusError("free workspace", rc, &e)
		}
		s.ws, s.wsBytes = nil, 0
	}
	var p unsafe.Pointer
	if rc := C.grf_go_malloc(s.dev.dev(), &p, C.size_t(n), e.ptr(), errLen); rc != statusOK {
		return nil, statusError("alloc workspace", rc, &e)
	}
	s.ws, s.wsBytes = p, n
	return p, nil
}
