package engine

import "errors"

// Sentinel errors. Every error returned by this package and by backends wraps one of
// these, so callers can branch with errors.Is.
var (
	// ErrUnavailable: a backend or device cannot be used on this machine (library
	// missing or too old, no GPU). The message says why.
	ErrUnavailable = errors.New("engine: unavailable")
	// ErrModel: a model file is missing, corrupt or not loadable.
	ErrModel = errors.New("engine: bad model")
	// ErrContract: an engine's I/O does not match what the manifest promises.
	ErrContract = errors.New("engine: contract mismatch")
	// ErrShape: a tensor has the wrong shape.
	ErrShape = errors.New("engine: wrong shape")
	// ErrDType: a tensor has the wrong element type.
	ErrDType = errors.New("engine: wrong dtype")
	// ErrBinding: an input is missing, unknown or bound twice.
	ErrBinding = errors.New("engine: bad binding")
	// ErrDevice: a tensor lives on a device the engine cannot read.
	ErrDevice = errors.New("engine: wrong device")
	// ErrClosed: the object was used after Close.
	ErrClosed = errors.New("engine: closed")
	// ErrRun: the backend failed while running.
	ErrRun = errors.New("engine: run failed")
	// ErrOutOfMemory: the device ran out of memory for this request. The request failed
	// cleanly; the engine stays usable and later requests may succeed.
	ErrOutOfMemory = errors.New("engine: out of device memory")
)
