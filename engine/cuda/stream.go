package cuda

/*
#include "grefine_cuda_loader.h"
*/
import "C"

import (
	"fmt"
	"unsafe"

	"github.com/grefine/grefine/engine"
)

// Stream is a CUDA stream of one slot: it implements engine.Stream. Copies from host
// memory, device copies, memsets and the ops (the kernels of libgrefine_cuda.so) enqueue
// on it and return without waiting; Download and Sync wait. It owns a grow-only scratch
// buffer the kernels that need one share (their work is ordered on the stream). A Stream
// is used by one goroutine at a time.
type Stream struct {
	dev     *Device
	h       *C.grf_stream
	ws      unsafe.Pointer
	wsBytes int
	retired []unsafe.Pointer // outgrown scratch, freed at Close (a free would sync)
	c       engine.Counters
}

var _ engine.Stream = (*Stream)(nil)

// NewStream implements engine.Device.
func (d *Device) NewStream() (engine.Stream, error) {
	s, err := d.NewCUDAStream()
	if err != nil {
		return nil, err
	}
	return s, nil
}

// NewCUDAStream is NewStream returning the concrete type.
func (d *Device) NewCUDAStream() (*Stream, error) {
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

// Device implements engine.Stream.
func (s *Stream) Device() engine.Device { return s.dev }

// Handle implements engine.Stream: the cudaStream_t, for engine/trt (engines and kernels
// of one request enqueue on one stream). It is valid until Close.
func (s *Stream) Handle() uintptr {
	if s == nil {
		return 0
	}
	return uintptr(unsafe.Pointer(s.h))
}

// Counters implements engine.Stream.
func (s *Stream) Counters() engine.Counters { return s.c }

// Sync implements engine.Stream: it waits for the stream's work and reports its
// asynchronous errors (counted).
func (s *Stream) Sync() error {
	if err := s.live("sync"); err != nil {
		return err
	}
	s.c.CountSync()
	var e errBuf
	if rc := C.grf_go_stream_sync(s.dev.dev(), s.h, e.ptr(), errLen); rc != statusOK {
		return statusError("stream sync", rc, &e)
	}
	return nil
}

// Close waits for the stream, destroys it and frees its scratch. Idempotent and nil-safe.
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
	for _, p := range append(s.retired, s.ws) {
		if p == nil {
			continue
		}
		if rc := C.grf_go_free(s.dev.dev(), p, e.ptr(), errLen); rc != statusOK && first == nil {
			first = statusError("free workspace", rc, &e)
		}
	}
	s.ws, s.wsBytes, s.retired = nil, 0, nil
	return first
}

func (s *Stream) live(op string) error {
	if s == nil || s.h == nil {
		return fmt.Errorf("%w: cuda: %s: stream closed or nil", engine.ErrClosed, op)
	}
	return nil
}

// workspace returns at least n bytes of stream-owned scratch. An outgrown buffer is kept
// until Close (work queued before may still use it; freeing it would sync the device).
func (s *Stream) workspace(n int) (unsafe.Pointer, C.size_t, error) {
	if n <= s.wsBytes {
		return s.ws, C.size_t(s.wsBytes), nil
	}
	var e errBuf
	var p unsafe.Pointer
	if rc := C.grf_go_malloc(s.dev.dev(), &p, C.size_t(n), e.ptr(), errLen); rc != statusOK {
		return nil, 0, statusError("alloc workspace", rc, &e)
	}
	if s.ws != nil {
		s.retired = append(s.retired, s.ws)
	}
	s.ws, s.wsBytes = p, n
	return p, C.size_t(n), nil
}

// Upload implements engine.Stream.
func (s *Stream) Upload(dst engine.Tensor, src *engine.HostTensor) error {
	if err := s.live("upload"); err != nil {
		return err
	}
	t, err := s.dev.tensor("upload", "dst", dst)
	if err != nil {
		return err
	}
	if src == nil {
		return fmt.Errorf("%w: cuda: upload of a nil tensor", engine.ErrShape)
	}
	p, n := hostBytes(src)
	if src.DType() != t.dtype || n != t.bytes {
		return fmt.Errorf("%w: cuda: upload of %v%v into %v%v", engine.ErrShape, src.DType(), src.Shape(), t.dtype, t.shape)
	}
	var e errBuf
	if rc := C.grf_go_memcpy_htod(s.dev.dev(), t.ptr, p, C.size_t(n), s.h, e.ptr(), errLen); rc != statusOK {
		return statusError("upload", rc, &e)
	}
	s.c.CountUpload(int64(n))
	return nil
}

// Download implements engine.Stream.
func (s *Stream) Download(dst *engine.HostTensor, src engine.Tensor) error {
	if err := s.live("download"); err != nil {
		return err
	}
	t, err := s.dev.tensor("download", "src", src)
	if err != nil {
		return err
	}
	if dst == nil {
		return fmt.Errorf("%w: cuda: download into a nil tensor", engine.ErrShape)
	}
	p, n := hostBytes(dst)
	if dst.DType() != t.dtype || n != t.bytes {
		return fmt.Errorf("%w: cuda: download of %v%v into %v%v", engine.ErrShape, t.dtype, t.shape, dst.DType(), dst.Shape())
	}
	var e errBuf
	if rc := C.grf_go_memcpy_dtoh(s.dev.dev(), p, t.ptr, C.size_t(n), s.h, e.ptr(), errLen); rc != statusOK {
		return statusError("download", rc, &e)
	}
	s.c.CountDownload(int64(n))
	return nil
}

// Copy implements engine.Stream.
func (s *Stream) Copy(dst, src engine.Tensor) error {
	if err := s.live("copy"); err != nil {
		return err
	}
	d, err := s.devicePtr("copy", "dst", dst)
	if err != nil {
		return err
	}
	sp, err := s.devicePtr("copy", "src", src)
	if err != nil {
		return err
	}
	n := engine.Bytes(src)
	if dst.DType() != src.DType() || engine.Bytes(dst) != n {
		return fmt.Errorf("%w: cuda: copy of %v%v into %v%v", engine.ErrShape, src.DType(), src.Shape(), dst.DType(), dst.Shape())
	}
	var e errBuf
	if rc := C.grf_go_memcpy_dtod(s.dev.dev(), d, sp, C.size_t(n), s.h, e.ptr(), errLen); rc != statusOK {
		return statusError("copy", rc, &e)
	}
	s.c.CountCopy(n)
	return nil
}

// Copy2D implements engine.Stream.
func (s *Stream) Copy2D(dst, src engine.Tensor, c engine.Copy2D) error {
	if err := s.live("copy2d"); err != nil {
		return err
	}
	d, err := s.devicePtr("copy2d", "dst", dst)
	if err != nil {
		return err
	}
	sp, err := s.devicePtr("copy2d", "src", src)
	if err != nil {
		return err
	}
	if dst.DType() != src.DType() {
		return fmt.Errorf("%w: cuda: copy2d of %v into %v", engine.ErrDType, src.DType(), dst.DType())
	}
	if err := c.Check(dst.Shape().NumElements(), src.Shape().NumElements()); err != nil {
		return fmt.Errorf("cuda: %w", err)
	}
	if c.Rows == 0 || c.Cols == 0 {
		return nil
	}
	es := int64(dst.DType().Size())
	dpitch, spitch := c.DstPitch*es, c.SrcPitch*es
	if c.Rows == 1 {
		dpitch, spitch = c.Cols*es, c.Cols*es
	}
	var e errBuf
	if rc := C.grf_go_memcpy2d_dtod(s.dev.dev(), unsafe.Add(d, c.DstOffset*es), C.size_t(dpitch),
		unsafe.Add(sp, c.SrcOffset*es), C.size_t(spitch), C.size_t(c.Cols*es), C.size_t(c.Rows), s.h, e.ptr(), errLen); rc != statusOK {
		return statusError("copy2d", rc, &e)
	}
	s.c.CountCopy(c.Rows * c.Cols * es)
	return nil
}

// Zero implements engine.Stream.
func (s *Stream) Zero(t engine.Tensor) error {
	if err := s.live("zero"); err != nil {
		return err
	}
	p, err := s.devicePtr("zero", "tensor", t)
	if err != nil {
		return err
	}
	var e errBuf
	if rc := C.grf_go_memset(s.dev.dev(), p, 0, C.size_t(engine.Bytes(t)), s.h, e.ptr(), errLen); rc != statusOK {
		return statusError("memset", rc, &e)
	}
	s.c.Launches++
	return nil
}

// addressed is a tensor of another package with a device address (engine/trt's buffers).
type addressed interface {
	DevicePtr() uintptr
}

// devicePtr returns the address of a "cuda" tensor: this device's Tensor, or another
// package's tensor with a device address (TensorRT's buffers, on the same device).
func (s *Stream) devicePtr(op, name string, t engine.Tensor) (unsafe.Pointer, error) {
	if err := engine.CheckDevice("cuda: "+op, name, t, "cuda"); err != nil {
		return nil, err
	}
	if c, ok := t.(*Tensor); ok {
		c, err := s.dev.tensor(op, name, c)
		if err != nil {
			return nil, err
		}
		return c.ptr, nil
	}
	if a, ok := t.(addressed); ok && a.DevicePtr() != 0 {
		return devAddr(a.DevicePtr()), nil
	}
	if t.Shape().NumElements() == 0 {
		return nil, nil
	}
	return nil, fmt.Errorf("%w: cuda: %s: %s (%T) has no device address", engine.ErrDevice, op, name, t)
}

// devAddr turns a device address into the pointer type C takes (device memory, never
// dereferenced by Go nor seen by its garbage collector).
func devAddr(u uintptr) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&u)) }

// arg is one tensor argument of a kernel: its name in errors, the tensor, the dtype it must
// have, and whether it may be nil (then its address is NULL).
type arg struct {
	name string
	t    engine.Tensor
	dt   engine.DType
	opt  bool
}

func f32(name string, t engine.Tensor) arg    { return arg{name, t, engine.Float32, false} }
func optF32(name string, t engine.Tensor) arg { return arg{name, t, engine.Float32, true} }
func u8(name string, t engine.Tensor) arg     { return arg{name, t, engine.Uint8, false} }

// addrs checks each argument (present unless optional, its dtype, on this stream's device)
// and returns their device addresses in order.
func (s *Stream) addrs(op string, args ...arg) ([]unsafe.Pointer, error) {
	out := make([]unsafe.Pointer, len(args))
	for i, a := range args {
		if absent(a.t) {
			if a.opt {
				continue
			}
			return nil, fmt.Errorf("%w: cuda: %s: %s is nil", engine.ErrShape, op, a.name)
		}
		if a.t.DType() != a.dt {
			return nil, fmt.Errorf("%w: cuda: %s: %s is %v, want %v", engine.ErrDType, op, a.name, a.t.DType(), a.dt)
		}
		var err error
		if out[i], err = s.devicePtr(op, a.name, a.t); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// sized grows the workspace to what a launcher's workspace_size query asks for.
func (s *Stream) sized(op string, query func(need *C.size_t, e *errBuf) C.int) (unsafe.Pointer, C.size_t, error) {
	var e errBuf
	var need C.size_t
	if rc := query(&need, &e); rc != statusOK {
		return nil, 0, statusError(op, rc, &e)
	}
	return s.workspace(int(need))
}

// launch runs one launcher call and counts it.
func (s *Stream) launch(op string, call func(e *errBuf) C.int) error {
	if err := s.live(op); err != nil {
		return err
	}
	var e errBuf
	if rc := call(&e); rc != statusOK {
		return statusError(op, rc, &e)
	}
	s.c.Launches++
	return nil
}
