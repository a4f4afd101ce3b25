package engine

// Device owns tensor memory and the non-network operations of the pipeline. The "cpu"
// device (package engine/cpu) is pure Go and the reference for every other device; the
// "cuda" device (engine/cuda) runs the same operations as CUDA kernels.
//
// The operations (map fusion, the denoising loops' ops) are declared by the packages that
// use them (pipeline/assess.Fuser, pipeline/refine.Ops) and implemented by engine/cpu and
// engine/cuda, so this interface stays minimal.
type Device interface {
	// Name is "cpu" or "cuda".
	Name() string
	// Available returns nil when the device is usable, else an error wrapping
	// ErrUnavailable that says why.
	Available() error
	// Upload copies a host tensor to the device (the cpu device returns a copy).
	Upload(t *HostTensor) (Tensor, error)
	// Download copies a device tensor to host memory.
	Download(t Tensor) (*HostTensor, error)
	Close() error
}
