package trt

/*
#include <stdlib.h>
#include "grefine_trt_loader.h"
*/
import "C"

import (
	"context"
	"fmt"
	"unsafe"

	"github.com/grefine/grefine/engine"
)

// Precision of a build. On TensorRT 11 (always strongly typed) precision comes from the
// ONNX file and FP16/BF16 only log a warning; on 10.x they set the builder flags unless
// StronglyTyped is set.
type Precision string

// Precisions.
const (
	FP32 Precision = "fp32"
	FP16 Precision = "fp16"
	BF16 Precision = "bf16"
)

func (p Precision) abi() (C.int32_t, error) {
	switch p {
	case FP32, "":
		return C.GRF_TRT_PRECISION_FP32, nil
	case FP16:
		return C.GRF_TRT_PRECISION_FP16, nil
	case BF16:
		return C.GRF_TRT_PRECISION_BF16, nil
	}
	return 0, fmt.Errorf("%w: trt: unknown precision %q (fp32, fp16, bf16)", engine.ErrModel, string(p))
}

// BuildRequest describes one ONNX -> plan build.
type BuildRequest struct {
	ONNXPath string
	// Profiles: one entry per optimisation profile, each with a range per dynamic input.
	Profiles      [][]ShapeRange
	Precision     Precision
	StronglyTyped bool
	// WorkspaceBytes limits the builder's workspace pool (0: TensorRT's default).
	WorkspaceBytes int64
	// OptimizationLevel 1..5 (0: TensorRT's default, 3).
	OptimizationLevel int
	// TimingCache is loaded before and saved after the build ("" for none). Timing caches
	// speed up rebuilds on one GPU model; do not share them across GPU types.
	TimingCache string
}

// EmulatorVersion is Target.TensorRT on the emulator (libgrefine_trt_emu.so), which runs
// no TensorRT: its plans never match a real TensorRT's.
const EmulatorVersion = "emulator"

// Target is the machine a plan is built for: GPU model and TensorRT version.
type Target struct {
	GPU               string
	ComputeCapability string // "8.9"
	TensorRT          string // runtime version "10.16.0"
}

// Target reports this machine's GPU and TensorRT runtime version.
func (b *Backend) Target() (Target, error) {
	v, err := b.Versions()
	if err != nil {
		return Target{}, err
	}
	d, err := b.Device()
	if err != nil {
		return Target{}, err
	}
	t := Target{GPU: d.Name, ComputeCapability: d.ComputeCapability(), TensorRT: v.Runtime.String()}
	if d.Emulated {
		t.TensorRT = EmulatorVersion
	}
	return t, nil
}

// BuildPlan parses the ONNX file and builds a serialized plan. The native build cannot be
// interrupted; ctx is checked before it starts.
func (b *Backend) BuildPlan(ctx context.Context, req BuildRequest) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := b.Available(); err != nil {
		return nil, err
	}
	prec, err := req.Precision.abi()
	if err != nil {
		return nil, err
	}
	if len(req.Profiles) == 0 {
		return nil, fmt.Errorf("%w: trt: build %s: no optimisation profile", engine.ErrModel, req.ONNXPath)
	}
	var h *C.grf_trt_builder
	if err := call("builder create", func(e *C.char, n C.size_t) C.int32_t {
		return C.grf_trtl_builder_create(C.int32_t(b.opts.Device), &h, e, n)
	}); err != nil {
		return nil, err
	}
	defer func() {
		_ = call("builder destroy", func(e *C.char, n C.size_t) C.int32_t { return C.grf_trtl_builder_destroy(h, e, n) })
	}()

	op := "build " + req.ONNXPath
	for _, prof := range req.Profiles {
		var idx C.int32_t
		if err := call(op, func(e *C.char, n C.size_t) C.int32_t { return C.grf_trtl_builder_add_profile(h, &idx, e, n) }); err != nil {
			return nil, err
		}
		for _, r := range prof {
			if len(r.Min) != len(r.Opt) || len(r.Opt) != len(r.Max) || len(r.Min) == 0 {
				return nil, fmt.Errorf("%w: trt: %s: input %q: min/opt/max ranks differ", engine.ErrShape, op, r.Name)
			}
			mn, opt, mx := cShape(r.Min), cShape(r.Opt), cShape(r.Max)
			cname := C.CString(r.Name)
			err := call(op, func(e *C.char, n C.size_t) C.int32_t {
				return C.grf_trtl_builder_set_profile_shape(h, idx, cname, C.int32_t(len(r.Min)), &mn[0], &opt[0], &mx[0], e, n)
			})
			C.free(unsafe.Pointer(cname))
			if err != nil {
				return nil, err
			}
		}
	}
	level := C.int32_t(-1)
	if req.OptimizationLevel > 0 {
		level = C.int32_t(req.OptimizationLevel)
	}
	typed := C.int32_t(0)
	if req.StronglyTyped {
		typed = 1
	}
	ccache := C.CString(req.TimingCache)
	defer C.free(unsafe.Pointer(ccache))
	for _, f := range []func(*C.char, C.size_t) C.int32_t{
		func(e *C.char, n C.size_t) C.int32_t { return C.grf_trtl_builder_set_precision(h, prec, e, n) },
		func(e *C.char, n C.size_t) C.int32_t { return C.grf_trtl_builder_set_strongly_typed(h, typed, e, n) },
		func(e *C.char, n C.size_t) C.int32_t {
			return C.grf_trtl_builder_set_workspace(h, C.int64_t(req.WorkspaceBytes), e, n)
		},
		func(e *C.char, n C.size_t) C.int32_t {
			return C.grf_trtl_builder_set_optimization_level(h, level, e, n)
		},
		func(e *C.char, n C.size_t) C.int32_t { return C.grf_trtl_builder_set_timing_cache(h, ccache, e, n) },
	} {
		if err := call(op, f); err != nil {
			return nil, err
		}
	}
	connx := C.CString(req.ONNXPath)
	defer C.free(unsafe.Pointer(connx))
	var blob *C.grf_trt_blob
	if err := call(op, func(e *C.char, n C.size_t) C.int32_t { return C.grf_trtl_builder_build(h, connx, &blob, e, n) }); err != nil {
		return nil, err
	}
	defer func() {
		_ = call("blob destroy", func(e *C.char, n C.size_t) C.int32_t { return C.grf_trtl_blob_destroy(blob, e, n) })
	}()
	var data unsafe.Pointer
	var size C.size_t
	if err := call(op, func(e *C.char, n C.size_t) C.int32_t { return C.grf_trtl_blob_data(blob, &data, &size, e, n) }); err != nil {
		return nil, err
	}
	out := make([]byte, int(size))
	copy(out, unsafe.Slice((*byte)(data), int(size)))
	return out, nil
}

func cShape(s engine.Shape) []C.int64_t {
	out := make([]C.int64_t, len(s))
	for i, v := range s {
		out[i] = C.int64_t(v)
	}
	return out
}

// InspectPlan deserializes a plan only to describe it (tensors, profiles, scratch).
func (b *Backend) InspectPlan(plan []byte) (PlanInfo, error) {
	if len(plan) == 0 {
		return PlanInfo{}, fmt.Errorf("%w: trt: inspect: empty plan", engine.ErrModel)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.readyLocked(); err != nil {
		return PlanInfo{}, err
	}
	var h *C.grf_trt_engine
	if err := call("inspect", func(e *C.char, n C.size_t) C.int32_t {
		return C.grf_trtl_engine_deserialize(b.rt, unsafe.Pointer(&plan[0]), C.size_t(len(plan)), &h, e, n)
	}); err != nil {
		return PlanInfo{}, err
	}
	info, err := describePlan("inspect", h)
	if derr := call("inspect", func(e *C.char, n C.size_t) C.int32_t { return C.grf_trtl_engine_destroy(h, e, n) }); derr != nil && err == nil {
		err = derr
	}
	return info, err
}
