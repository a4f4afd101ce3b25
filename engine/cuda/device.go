package cuda

/*
#include "grefine_cuda_loader.h"
*/
import "C"

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"unsafe"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/engine/native"
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

func init() {
	engine.RegisterDevice("cuda", func(opts map[string]string) (engine.Device, error) { return openKind("cuda", opts) })
	engine.RegisterDevice("cuda-emu", func(opts map[string]string) (engine.Device, error) { return openKind("cuda-emu", opts) })
}

// openKind makes the registry's devices: "cuda" (the library of the search order, which
// may be the emulator when $GRF_CUDA_LIB names it) and "cuda-emu" (the emulator: the
// option lib, else $GRF_CUDA_LIB, else Options.Emulator's search; refused unless the
// library is the emulator). Options: lib, ordinal.
func openKind(kind string, opts map[string]string) (engine.Device, error) {
	var o Options
	for k, v := range opts {
		switch k {
		case "lib":
			o.LibPath = v
		case "ordinal":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("%w: %s: option ordinal=%q is not a device index", engine.ErrUnavailable, kind, v)
			}
			o.Ordinal = n
		default:
			return nil, fmt.Errorf("%w: %s: unknown device option %q (known: lib, ordinal)", engine.ErrUnavailable, kind, k)
		}
	}
	if kind == "cuda-emu" && o.LibPath == "" && os.Getenv(EnvLib) == "" {
		o.Emulator = true // $GRF_CUDA_EMU_LIB, else beside the executable (EmulatorPath)
	}
	d, err := Open(o)
	if err != nil {
		return nil, err
	}
	if kind == "cuda-emu" && !d.info.Emulated {
		d.Close()
		return nil, fmt.Errorf("%w: cuda-emu: %s is not the emulator (use --device cuda)", engine.ErrUnavailable, d.info.LibPath)
	}
	d.kind = kind
	return d, nil
}

// Device is one GPU driven through libgrefine_cuda.so (or the emulator): it implements
// engine.Device. Its methods are safe for concurrent use; each slot uses its own Stream.
type Device struct {
	ordinal int
	info    Info
	kind    string
	mu      sync.Mutex
	closed  bool
}

var _ engine.Device = (*Device)(nil)

// Open loads the library (once per process) and opens GPU opts.Ordinal. Without the
// library or a usable GPU it returns an error wrapping engine.ErrUnavailable that says
// which: library not found, no device, or insufficient driver (with CUDA's message).
func Open(opts Options) (*Device, error) {
	lib, n, err := loadCount(opts)
	if err != nil {
		return nil, err
	}
	if opts.Ordinal < 0 || opts.Ordinal >= n {
		return nil, fmt.Errorf("%w: cuda: device %d requested, %d present", engine.ErrUnavailable, opts.Ordinal, n)
	}
	d := &Device{ordinal: opts.Ordinal}
	var e errBuf
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

// Count loads the library as Open does (opts.LibPath, opts.Emulator) and returns the
// number of CUDA devices it sees: the device indices are 0 to Count-1. No device is an
// error wrapping engine.ErrUnavailable with the reason, as Open's.
func Count(opts Options) (int, error) {
	_, n, err := loadCount(opts)
	return n, err
}

// loadCount loads the library and counts the devices.
func loadCount(opts Options) (native.Result, int, error) {
	explicit := opts.LibPath
	if explicit == "" && opts.Emulator {
		p, err := EmulatorPath()
		if err != nil {
			return native.Result{}, 0, err
		}
		explicit = p
	}
	lib, err := load(explicit)
	if err != nil {
		return lib, 0, err
	}
	if opts.Emulator && !libEmulated {
		return lib, 0, fmt.Errorf("%w: cuda: the emulator was asked for, but %s (%s) is not cuda-emu", engine.ErrUnavailable, lib.Path, lib.Source)
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
		return lib, 0, fmt.Errorf("%w: cuda: %s (%s)", engine.ErrUnavailable, reason, e.msg())
	}
	return lib, int(n), nil
}

// Name implements engine.Device: "cuda" (the emulator too: its tensors take the path a
// GPU's take).
func (d *Device) Name() string { return "cuda" }

// GPU describes the GPU (or the emulated one).
func (d *Device) GPU() Info { return d.info }

// Info implements engine.Device.
func (d *Device) Info() engine.DeviceInfo {
	kind := d.kind
	if kind == "" {
		kind = "cuda"
	}
	return engine.DeviceInfo{Name: "cuda", Kind: kind, Model: d.info.Name, Ordinal: d.ordinal, Emulated: d.info.Emulated,
		ComputeCapability: fmt.Sprintf("%d.%d", d.info.Major, d.info.Minor), TotalMemory: d.info.TotalMem, Library: d.info.LibPath}
}

// Ordinal is the CUDA device index the device's calls run on.
func (d *Device) Ordinal() int { return d.ordinal }

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
// released by Close (no finalizer). A view (Device.View) does not own its memory.
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

// Alloc implements engine.Device: uninitialised device memory (cuda-emu fills it with
// NaN).
func (d *Device) Alloc(dt engine.DType, shape engine.Shape) (engine.Tensor, error) {
	t, err := d.AllocTensor(dt, shape)
	if err != nil {
		return nil, err
	}
	return t, nil
}

// AllocTensor is Alloc returning the concrete type.
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

// View implements engine.Device: shape over t's memory from element offset on (t must be
// this device's and outlive the view).
func (d *Device) View(t engine.Tensor, offset int64, shape engine.Shape) (engine.Tensor, error) {
	src, err := d.tensor("View", "tensor", t)
	if err != nil {
		return nil, err
	}
	n := shape.NumElements()
	es := int64(src.dtype.Size())
	if n < 0 || offset < 0 || (offset+n)*es > int64(src.bytes) {
		return nil, fmt.Errorf("%w: cuda: view %v at %d of %v%v", engine.ErrShape, shape, offset, src.dtype, src.shape)
	}
	return &Tensor{dev: d, dtype: src.dtype, shape: shape.Clone(), ptr: unsafe.Add(src.ptr, offset*es), bytes: int(n * es)}, nil
}

// tensor returns t as this device's tensor, or an error naming both devices.
func (d *Device) tensor(op, name string, t engine.Tensor) (*Tensor, error) {
	if err := engine.CheckDevice("cuda: "+op, name, t, "cuda"); err != nil {
		return nil, err
	}
	c, ok := t.(*Tensor)
	if !ok || c == nil {
		return nil, fmt.Errorf("%w: cuda: %s: %s is a %T, not this device's tensor", engine.ErrDevice, op, name, t)
	}
	if c.dev != d {
		return nil, fmt.Errorf("%w: cuda: %s: %s is on cuda device %d, this is device %d", engine.ErrDevice, op, name, c.dev.ordinal, d.ordinal)
	}
	if c.closed {
		return nil, fmt.Errorf("%w: cuda: %s: %s is closed", engine.ErrClosed, op, name)
	}
	return c, nil
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
// tensor): what TensorRT binds.
func (t *Tensor) DevicePtr() uintptr {
	if t == nil || t.closed {
		return 0
	}
	return uintptr(t.ptr)
}

// Device is the CUDA device index the memory lives on.
func (t *Tensor) Device() int { return t.dev.ordinal }

// Close frees the device memory (a view frees nothing). Idempotent and nil-safe.
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
