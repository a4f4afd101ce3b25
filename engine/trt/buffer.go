package trt

/*
#include "grefine_trt_loader.h"
*/
import "C"

import (
	"fmt"
	"sync"
	"unsafe"

	"github.com/grefine/grefine/engine"
)

// DeviceTensor is a Tensor in GPU memory: what trt engines read and write. engine/cuda's
// tensors satisfy it; Buffer is this package's own implementation.
type DeviceTensor interface {
	engine.Tensor
	// DevicePtr is the device address of the first element (0 for an empty tensor).
	DevicePtr() uintptr
}

// GPUTensor is a DeviceTensor that names its CUDA device (engine/cuda's tensors,
// Buffer): a session refuses one of another GPU than its backend's before anything is
// enqueued (an address of GPU 0 means nothing on GPU 1).
type GPUTensor interface {
	DeviceTensor
	// Device is the CUDA device index the memory lives on.
	Device() int
}

// Buffer is device memory allocated by the shim (cudaMalloc on the backend's device;
// cuda-emu's emulated device memory on the emulator), typed and shaped. It is a
// DeviceTensor named "cuda". Close frees it; Close is idempotent and nil-safe.
type Buffer struct {
	mu     sync.Mutex
	h      *C.grf_trt_buffer
	ptr    uintptr
	bytes  int64
	dtype  engine.DType
	shape  engine.Shape
	stream uintptr // stream used for copies
	device int     // CUDA device index
}

func newBuffer(device int, dt engine.DType, shape engine.Shape, stream uintptr) (*Buffer, error) {
	n := shape.NumElements()
	if n < 0 {
		return nil, fmt.Errorf("%w: trt: cannot allocate shape %v", engine.ErrShape, shape)
	}
	if dt.Size() == 0 {
		return nil, fmt.Errorf("%w: trt: cannot allocate dtype %v", engine.ErrDType, dt)
	}
	bytes := n * int64(dt.Size())
	b := &Buffer{dtype: dt, shape: shape.Clone(), bytes: bytes, stream: stream, device: device}
	if err := call("buffer create", func(e *C.char, l C.size_t) C.int32_t {
		return C.grf_trtl_buffer_create(C.int32_t(device), C.int64_t(bytes), &b.h, e, l)
	}); err != nil {
		return nil, err
	}
	var p C.uintptr_t
	var sz C.int64_t
	if err := call("buffer info", func(e *C.char, l C.size_t) C.int32_t {
		return C.grf_trtl_buffer_info(b.h, &p, &sz, e, l)
	}); err != nil {
		_ = b.Close()
		return nil, err
	}
	b.ptr = uintptr(p)
	return b, nil
}

// DType implements engine.Tensor.
func (b *Buffer) DType() engine.DType { return b.dtype }

// Shape implements engine.Tensor. The returned slice must not be modified.
func (b *Buffer) Shape() engine.Shape { return b.shape }

// DeviceName implements engine.Tensor: "cuda".
func (b *Buffer) DeviceName() string { return "cuda" }

// Device implements GPUTensor: the CUDA device index the buffer lives on.
func (b *Buffer) Device() int { return b.device }

// DevicePtr implements DeviceTensor.
func (b *Buffer) DevicePtr() uintptr { return b.ptr }

// Bytes is the buffer size.
func (b *Buffer) Bytes() int64 { return b.bytes }

// Close frees the device memory. Work queued on streams that still uses the buffer must be
// finished (cudaFree synchronises the device).
func (b *Buffer) Close() error {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.h == nil {
		return nil
	}
	h := b.h
	b.h, b.ptr = nil, 0
	return call("buffer destroy", func(e *C.char, l C.size_t) C.int32_t { return C.grf_trtl_buffer_destroy(h, e, l) })
}

// hostBytes views a host tensor's storage as bytes (no copy).
func hostBytes(t *engine.HostTensor) ([]byte, error) {
	var p unsafe.Pointer
	var n int
	switch t.DType() {
	case engine.Float32:
		p, n = unsafe.Pointer(unsafe.SliceData(t.F32)), len(t.F32)*4
	case engine.Int32:
		p, n = unsafe.Pointer(unsafe.SliceData(t.I32)), len(t.I32)*4
	case engine.Int64:
		p, n = unsafe.Pointer(unsafe.SliceData(t.I64)), len(t.I64)*8
	case engine.Uint8, engine.Bool:
		p, n = unsafe.Pointer(unsafe.SliceData(t.U8)), len(t.U8)
	default:
		return nil, fmt.Errorf("%w: trt: host tensors of %v cannot be copied", engine.ErrDType, t.DType())
	}
	if n == 0 {
		return nil, nil
	}
	return unsafe.Slice((*byte)(p), n), nil
}

// CopyFrom copies a host tensor of the buffer's dtype and size into the buffer, on the
// buffer's stream, and returns when the copy is done (h is not used after the call): how a
// loop refreshes a device input it binds once.
func (b *Buffer) CopyFrom(h *engine.HostTensor) error {
	if h == nil || h.DType() != b.dtype {
		return fmt.Errorf("%w: trt: copy of a %v host tensor into a %v buffer", engine.ErrDType, dtypeOf(h), b.dtype)
	}
	return b.upload(h)
}

func dtypeOf(h *engine.HostTensor) any {
	if h == nil {
		return "nil"
	}
	return h.DType()
}

// upload copies a host tensor of the same dtype and element count into the buffer.
func (b *Buffer) upload(t *engine.HostTensor) error {
	src, err := hostBytes(t)
	if err != nil {
		return err
	}
	if int64(len(src)) != b.bytes {
		return fmt.Errorf("%w: trt: upload of %d bytes into a %d-byte buffer", engine.ErrShape, len(src), b.bytes)
	}
	return b.copyIn(src)
}

// copyIn copies src to the start of the buffer (len(src) <= Bytes), on the buffer's
// stream, and waits.
func (b *Buffer) copyIn(src []byte) error {
	return b.hostCopy("upload", "into", src, func(h *C.grf_trt_buffer, p unsafe.Pointer, n C.int64_t, e *C.char, l C.size_t) C.int32_t {
		return C.grf_trtl_buffer_upload(h, 0, p, n, C.uintptr_t(b.stream), e, l)
	})
}

// copyOut copies the first len(dst) bytes of the buffer into dst, after the work queued
// on the buffer's stream.
func (b *Buffer) copyOut(dst []byte) error {
	return b.hostCopy("download", "from", dst, func(h *C.grf_trt_buffer, p unsafe.Pointer, n C.int64_t, e *C.char, l C.size_t) C.int32_t {
		return C.grf_trtl_buffer_download(h, 0, p, n, C.uintptr_t(b.stream), e, l)
	})
}

// hostCopy checks a copy of host bytes to or from the buffer's start and makes it.
func (b *Buffer) hostCopy(op, dir string, host []byte,
	f func(*C.grf_trt_buffer, unsafe.Pointer, C.int64_t, *C.char, C.size_t) C.int32_t) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.h == nil {
		return fmt.Errorf("%w: trt: %s %s a closed buffer", engine.ErrClosed, op, dir)
	}
	if int64(len(host)) > b.bytes {
		return fmt.Errorf("%w: trt: %s of %d bytes %s a %d-byte buffer", engine.ErrShape, op, len(host), dir, b.bytes)
	}
	if len(host) == 0 {
		return nil
	}
	return call("buffer "+op, func(e *C.char, l C.size_t) C.int32_t {
		return f(b.h, unsafe.Pointer(&host[0]), C.int64_t(len(host)), e, l)
	})
}

// Download copies the buffer into a new host tensor, after the work queued on the buffer's
// stream.
func (b *Buffer) Download() (*engine.HostTensor, error) {
	h, err := engine.NewHostTensor(b.dtype, b.shape)
	if err != nil {
		return nil, err
	}
	dst, err := hostBytes(h)
	if err != nil {
		return nil, err
	}
	if int64(len(dst)) != b.bytes {
		return nil, fmt.Errorf("%w: trt: download of %d bytes from a %d-byte buffer", engine.ErrShape, len(dst), b.bytes)
	}
	if err := b.copyOut(dst); err != nil {
		return nil, err
	}
	return h, nil
}
