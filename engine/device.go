package engine

import (
	"fmt"
	"sort"
	"sync"
)

// Device is where tensors live and where the non-network operations run: "cpu" (package
// engine/cpu: Go memory and the pure-Go reference of every kernel, the oracle of every
// test), "cuda" (engine/cuda: libgrefine_cuda.so's kernels on a GPU) and "cuda-emu" (the
// same Go code over libgrefine_cuda_emu.so, device memory the host cannot read). Devices
// are made by name through the registry (RegisterDevice, NewDevice), as backends are.
//
// A Device allocates tensors and hands out Streams; the copies, the memsets and the ops
// run on a Stream. A tensor of another device is an error naming both devices, never a
// silent copy. A Device is safe for concurrent use; a Stream is used by one goroutine at a
// time (one pipeline slot).
type Device interface {
	// Name is the name its tensors carry (Tensor.DeviceName): "cpu" or "cuda" (an
	// emulated GPU is "cuda" too: its engines and kernels take the path a GPU takes).
	Name() string
	// Info describes the device: how it was made, the GPU, whether it is emulated.
	Info() DeviceInfo
	// Available returns nil when the device is usable, else an error wrapping
	// ErrUnavailable that says why.
	Available() error
	// Alloc allocates a tensor whose contents are undefined until written (the cpu device
	// and the emulator fill fresh memory with NaN, 0xFF bytes, so a read before a write
	// shows). Close frees it.
	Alloc(dt DType, shape Shape) (Tensor, error)
	// View returns a tensor of shape over t's storage from element offset (in t's dtype)
	// on: no copy, no ownership (closing the view frees nothing; t must outlive it).
	View(t Tensor, offset int64, shape Shape) (Tensor, error)
	// NewStream makes a stream: an ordered queue of copies and ops, one per slot.
	NewStream() (Stream, error)
	Close() error
}

// DeviceInfo describes a Device.
type DeviceInfo struct {
	// Name is Device.Name ("cpu", "cuda").
	Name string `json:"name"`
	// Kind is the registry name the device was made with ("cpu", "cuda", "cuda-emu").
	Kind string `json:"kind"`
	// Model is the processor ("NVIDIA H100 80GB HBM3", "Go (host memory)").
	Model string `json:"model,omitempty"`
	// Ordinal is the CUDA device index (0 on the cpu).
	Ordinal int `json:"ordinal"`
	// Emulated is true for a stand-in (cuda-emu).
	Emulated bool `json:"emulated,omitempty"`
	// ComputeCapability is "9.0" on an H100, "" on the cpu.
	ComputeCapability string `json:"compute_capability,omitempty"`
	// TotalMemory is the device memory in bytes (0: host memory).
	TotalMemory uint64 `json:"total_memory,omitempty"`
	// Library is the native library the device runs on ("" on the cpu).
	Library string `json:"library,omitempty"`
}

// Stream is an ordered queue of work on one Device: copies, memsets and the non-network
// operations (Ops). Work may run asynchronously: Download and Sync wait for it, and
// nothing else does, so the host reads device results only through Download (after
// which the stream's earlier work is done). Counters count what crossed between host and
// device and how often the host waited. One goroutine uses a Stream at a time.
type Stream interface {
	// Device is the device the stream runs on.
	Device() Device
	// Handle is the native stream (a cudaStream_t on cuda, 0 on the cpu), for engines
	// that enqueue on the same stream (engine/trt).
	Handle() uintptr
	// Upload copies host src into device dst (same dtype and element count), ordered after
	// the stream's earlier work. src may be reused when Upload returns. Counted.
	Upload(dst Tensor, src *HostTensor) error
	// Download waits for the stream's earlier work and copies device src into host dst.
	// Counted as a copy and a host sync.
	Download(dst *HostTensor, src Tensor) error
	// Copy enqueues a device-to-device copy of src into dst (same byte size).
	Copy(dst, src Tensor) error
	// Copy2D enqueues a strided 2-D copy of elements of one dtype (see Copy2D).
	Copy2D(dst, src Tensor, c Copy2D) error
	// Zero enqueues a fill of t with zero bytes.
	Zero(t Tensor) error
	// Sync waits for the stream's work and reports its asynchronous errors. Counted.
	Sync() error
	// Counters are the stream's copies and syncs so far.
	Counters() Counters
	Ops
	// Close waits for the stream and releases it and its scratch memory.
	Close() error
}

// Copy2D is a strided 2-D copy of Rows×Cols elements: for r < Rows, c < Cols,
//
//	dst[DstOffset + r*DstPitch + c] = src[SrcOffset + r*SrcPitch + c]
//
// in elements of the tensors' (equal) dtype; every index must lie inside its tensor.
type Copy2D struct {
	Rows, Cols          int64
	DstOffset, DstPitch int64
	SrcOffset, SrcPitch int64
}

// Check validates c against tensors of dst and src elements.
func (c Copy2D) Check(dst, src int64) error {
	if c.Rows < 0 || c.Cols < 0 || c.DstOffset < 0 || c.SrcOffset < 0 ||
		(c.Rows > 1 && (c.DstPitch < c.Cols || c.SrcPitch < c.Cols)) {
		return fmt.Errorf("%w: copy2d: %+v", ErrShape, c)
	}
	if c.Rows == 0 || c.Cols == 0 {
		return nil
	}
	if end := c.DstOffset + (c.Rows-1)*c.DstPitch + c.Cols; end > dst {
		return fmt.Errorf("%w: copy2d: writes element %d of %d", ErrShape, end-1, dst)
	}
	if end := c.SrcOffset + (c.Rows-1)*c.SrcPitch + c.Cols; end > src {
		return fmt.Errorf("%w: copy2d: reads element %d of %d", ErrShape, end-1, src)
	}
	return nil
}

// Counters count a stream's host↔device traffic: copies (count and bytes, each way),
// device-to-device copies, host syncs (Sync and Download) and op launches.
type Counters struct {
	HostToDevice   int   `json:"host_to_device"`
	BytesH2D       int64 `json:"bytes_h2d"`
	DeviceToHost   int   `json:"device_to_host"`
	BytesD2H       int64 `json:"bytes_d2h"`
	DeviceToDevice int   `json:"device_to_device"`
	BytesD2D       int64 `json:"bytes_d2d"`
	Syncs          int   `json:"syncs"`
	Launches       int   `json:"launches"`
}

// Sub returns c − o (what happened between two readings).
func (c Counters) Sub(o Counters) Counters {
	return Counters{
		HostToDevice: c.HostToDevice - o.HostToDevice, BytesH2D: c.BytesH2D - o.BytesH2D,
		DeviceToHost: c.DeviceToHost - o.DeviceToHost, BytesD2H: c.BytesD2H - o.BytesD2H,
		DeviceToDevice: c.DeviceToDevice - o.DeviceToDevice, BytesD2D: c.BytesD2D - o.BytesD2D,
		Syncs: c.Syncs - o.Syncs, Launches: c.Launches - o.Launches,
	}
}

// Add returns c + o.
func (c Counters) Add(o Counters) Counters {
	return Counters{
		HostToDevice: c.HostToDevice + o.HostToDevice, BytesH2D: c.BytesH2D + o.BytesH2D,
		DeviceToHost: c.DeviceToHost + o.DeviceToHost, BytesD2H: c.BytesD2H + o.BytesD2H,
		DeviceToDevice: c.DeviceToDevice + o.DeviceToDevice, BytesD2D: c.BytesD2D + o.BytesD2D,
		Syncs: c.Syncs + o.Syncs, Launches: c.Launches + o.Launches,
	}
}

// HostCopies is the number of copies between host and device, either way.
func (c Counters) HostCopies() int { return c.HostToDevice + c.DeviceToHost }

// CountUpload, CountDownload, CountCopy and CountSync record one event of that kind (for
// Stream implementations).
func (c *Counters) CountUpload(bytes int64)   { c.HostToDevice++; c.BytesH2D += bytes }
func (c *Counters) CountDownload(bytes int64) { c.DeviceToHost++; c.BytesD2H += bytes; c.Syncs++ }
func (c *Counters) CountCopy(bytes int64)     { c.DeviceToDevice++; c.BytesD2D += bytes }
func (c *Counters) CountSync()                { c.Syncs++ }

// DeviceFactory makes a device from a generic option map ("lib": the native library,
// "ordinal": the GPU index).
type DeviceFactory func(opts map[string]string) (Device, error)

var (
	devMu      sync.Mutex
	devFactory = map[string]DeviceFactory{}
)

// RegisterDevice makes a device available by name. It panics on a duplicate name (a
// programming error caught at init time).
func RegisterDevice(name string, f DeviceFactory) {
	devMu.Lock()
	defer devMu.Unlock()
	if _, dup := devFactory[name]; dup {
		panic("engine: device registered twice: " + name)
	}
	devFactory[name] = f
}

// NewDevice makes the named device ("cpu", "cuda", "cuda-emu").
func NewDevice(name string, opts map[string]string) (Device, error) {
	devMu.Lock()
	f, ok := devFactory[name]
	devMu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w: no device named %q (known: %v; a program links a device by importing its package, e.g. engine/cpu)",
			ErrUnavailable, name, Devices())
	}
	return f(opts)
}

// Devices lists registered device names, sorted.
func Devices() []string {
	devMu.Lock()
	defer devMu.Unlock()
	names := make([]string, 0, len(devFactory))
	for n := range devFactory {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Upload allocates a tensor on s's device and copies host h into it on s (counted).
func Upload(s Stream, h *HostTensor) (Tensor, error) {
	if h == nil {
		return nil, fmt.Errorf("%w: upload of a nil tensor", ErrShape)
	}
	t, err := s.Device().Alloc(h.DType(), h.Shape())
	if err != nil {
		return nil, err
	}
	if err := s.Upload(t, h); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

// CheckDevice returns an ErrDevice error naming both devices when t is not on dev.
func CheckDevice(op, name string, t Tensor, dev string) error {
	if t == nil {
		return fmt.Errorf("%w: %s: %s is nil", ErrShape, op, name)
	}
	if t.DeviceName() != dev {
		return fmt.Errorf("%w: %s: %s is on device %s, not %s (tensors are never copied implicitly)", ErrDevice, op, name, t.DeviceName(), dev)
	}
	return nil
}
