package sched

import "errors"

// Sentinel errors. Every error this package returns wraps one of them, so callers can
// branch with errors.Is.
var (
	// ErrConfig: a scheduler config is malformed or names an unknown value (beta
	// schedule, timestep spacing, solver type, ...).
	ErrConfig = errors.New("sched: bad config")
	// ErrUnsupported: a valid diffusers option this package does not implement, or one
	// with which diffusers 0.31.0 itself produces non-finite samples.
	ErrUnsupported = errors.New("sched: unsupported")
	// ErrStep: a step index out of range, a step out of order, or a call before
	// SetTimesteps.
	ErrStep = errors.New("sched: bad step")
	// ErrSize: buffers of different lengths, or a history buffer missing.
	ErrSize = errors.New("sched: length mismatch")
	// ErrStrength: a strength outside (0, 1], or a step count that leaves no step to run.
	ErrStrength = errors.New("sched: bad strength")
)
