package trt

/*
#include <stdlib.h>
#include "grefine_trt_loader.h"
*/
import "C"

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"unsafe"

	"github.com/grefine/grefine/engine"
)

// DType is a TensorRT element type as the shim reports it. It is wider than engine.DType:
// plans may hold bfloat16, int8 or fp8 tensors that grefine tensors cannot carry.
type DType int

// Element types of the ABI (GRF_TRT_DTYPE_*); the first six equal engine.DType values.
const (
	Float32  DType = C.GRF_TRT_DTYPE_FLOAT32
	Float16  DType = C.GRF_TRT_DTYPE_FLOAT16
	Int32    DType = C.GRF_TRT_DTYPE_INT32
	Int64    DType = C.GRF_TRT_DTYPE_INT64
	Uint8    DType = C.GRF_TRT_DTYPE_UINT8
	Bool     DType = C.GRF_TRT_DTYPE_BOOL
	BFloat16 DType = C.GRF_TRT_DTYPE_BFLOAT16
	Int8     DType = C.GRF_TRT_DTYPE_INT8
	FP8      DType = C.GRF_TRT_DTYPE_FP8
	Other    DType = C.GRF_TRT_DTYPE_OTHER
)

var trtNames = map[DType]string{Float32: "float32", Float16: "float16", Int32: "int32", Int64: "int64",
	Uint8: "uint8", Bool: "bool", BFloat16: "bfloat16", Int8: "int8", FP8: "fp8", Other: "other"}

// String is the lowercase name ("bfloat16").
func (d DType) String() string {
	if s, ok := trtNames[d]; ok {
		return s
	}
	return fmt.Sprintf("trtdtype(%d)", int(d))
}

// Engine returns the matching engine.DType, or false when grefine tensors cannot hold d.
func (d DType) Engine() (engine.DType, bool) {
	switch d {
	case Float32:
		return engine.Float32, true
	case Float16:
		return engine.Float16, true
	case Int32:
		return engine.Int32, true
	case Int64:
		return engine.Int64, true
	case Uint8:
		return engine.Uint8, true
	case Bool:
		return engine.Bool, true
	}
	return 0, false
}

// TensorInfo describes one plan I/O tensor.
type TensorInfo struct {
	Name  string
	Input bool
	DType DType
	Shape engine.Shape // -1 for dynamic dims
}

// ShapeRange is the min/opt/max of one input in one optimisation profile.
type ShapeRange struct {
	Name          string
	Min, Opt, Max engine.Shape
}

// Covers reports whether concrete shape s lies within min..max.
func (r ShapeRange) Covers(s engine.Shape) bool {
	if len(s) != len(r.Min) || len(s) != len(r.Max) {
		return false
	}
	for i := range s {
		if s[i] < r.Min[i] || s[i] > r.Max[i] {
			return false
		}
	}
	return true
}

// String formats as name [1,4,64,64]..[1,4,128,128].
func (r ShapeRange) String() string { return r.Name + " " + r.Min.String() + ".." + r.Max.String() }

// Profile is one optimisation profile: a range per input (in input order) and the scratch
// memory a context needs with it.
type Profile struct {
	Inputs      []ShapeRange
	DeviceBytes int64
}

// PlanInfo is what a plan declares: I/O tensors, profiles and scratch memory.
type PlanInfo struct {
	Tensors  []TensorInfo
	Profiles []Profile
	// MaxDeviceBytes is the scratch a context needs with any profile.
	MaxDeviceBytes int64
}

// Engine is one TensorRT plan with one execution context (user-managed scratch memory).
// It implements engine.Engine and is safe for concurrent use (calls are serialised).
type Engine struct {
	b    *Backend
	name string

	mu        sync.Mutex
	eng       *C.grf_trt_engine
	ctx       *C.grf_trt_context
	info      PlanInfo
	inputs    []engine.TensorDesc
	outputs   []engine.TensorDesc
	maxMemory int64
	profile   int     // active profile
	memPtr    uintptr // scratch bound to the context
	memBytes  int64
	alloc     Allocator
	graphs    bool
	replays   int
	closed    bool
}

// newEngine reads the plan's description and creates its context. On error it destroys h.
func newEngine(b *Backend, name string, h *C.grf_trt_engine) (*Engine, error) {
	e := &Engine{b: b, name: name, eng: h, graphs: b.opts.CUDAGraphs, alloc: b}
	if err := e.describe(); err != nil {
		_ = e.destroy()
		return nil, err
	}
	if err := call(name+": context create", func(er *C.char, n C.size_t) C.int32_t {
		return C.grf_trtl_context_create(e.eng, &e.ctx, er, n)
	}); err != nil {
		_ = e.destroy()
		return nil, err
	}
	return e, nil
}

func (e *Engine) describe() error {
	info, err := describePlan(e.name, e.eng)
	if err != nil {
		return err
	}
	e.info = info
	e.maxMemory = info.MaxDeviceBytes
	for _, t := range info.Tensors {
		dt, ok := t.DType.Engine()
		if !ok {
			return fmt.Errorf("%w: trt: %s: tensor %q is %v, which grefine tensors cannot hold", engine.ErrDType, e.name, t.Name, t.DType)
		}
		d := engine.TensorDesc{Name: t.Name, DType: dt, Shape: t.Shape.Clone()}
		if t.Input {
			e.inputs = append(e.inputs, d)
		} else {
			e.outputs = append(e.outputs, d)
		}
	}
	return nil
}

// describePlan queries tensors, profiles and memory sizes of an engine handle.
func describePlan(name string, h *C.grf_trt_engine) (PlanInfo, error) {
	var info PlanInfo
	var nio, nprof C.int32_t
	if err := call(name+": io count", func(e *C.char, n C.size_t) C.int32_t { return C.grf_trtl_engine_num_io(h, &nio, e, n) }); err != nil {
		return info, err
	}
	for i := 0; i < int(nio); i++ {
		var ti C.grf_trt_tensor_info
		if err := call(name+": io info", func(e *C.char, n C.size_t) C.int32_t {
			return C.grf_trtl_engine_io_info(h, C.int32_t(i), &ti, e, n)
		}); err != nil {
			return info, err
		}
		info.Tensors = append(info.Tensors, TensorInfo{Name: C.GoString(&ti.name[0]), Input: ti.mode == C.GRF_TRT_MODE_INPUT,
			DType: DType(ti.dtype), Shape: goShape(ti.nb_dims, ti.dims[:])})
	}
	if err := call(name+": profile count", func(e *C.char, n C.size_t) C.int32_t {
		return C.grf_trtl_engine_num_profiles(h, &nprof, e, n)
	}); err != nil {
		return info, err
	}
	for p := 0; p < int(nprof); p++ {
		var prof Profile
		for _, t := range info.Tensors {
			if !t.Input {
				continue
			}
			var ps C.grf_trt_profile_shape
			cname := C.CString(t.Name)
			err := call(name+": profile shape", func(e *C.char, n C.size_t) C.int32_t {
				return C.grf_trtl_engine_profile_shape(h, cname, C.int32_t(p), &ps, e, n)
			})
			C.free(unsafe.Pointer(cname))
			if err != nil {
				return info, err
			}
			prof.Inputs = append(prof.Inputs, ShapeRange{Name: t.Name, Min: goShape(ps.nb_dims, ps.min[:]),
				Opt: goShape(ps.nb_dims, ps.opt[:]), Max: goShape(ps.nb_dims, ps.max[:])})
		}
		var mem C.int64_t
		if err := call(name+": device memory size", func(e *C.char, n C.size_t) C.int32_t {
			return C.grf_trtl_engine_device_memory_size(h, C.int32_t(p), &mem, e, n)
		}); err != nil {
			return info, err
		}
		prof.DeviceBytes = int64(mem)
		info.Profiles = append(info.Profiles, prof)
	}
	var mem C.int64_t
	if err := call(name+": device memory size", func(e *C.char, n C.size_t) C.int32_t {
		return C.grf_trtl_engine_device_memory_size(h, -1, &mem, e, n)
	}); err != nil {
		return info, err
	}
	info.MaxDeviceBytes = int64(mem)
	return info, nil
}

func goShape(nb C.int32_t, dims []C.int64_t) engine.Shape {
	s := make(engine.Shape, int(nb))
	for i := range s {
		s[i] = int64(dims[i])
	}
	return s
}

// Name implements engine.Engine.
func (e *Engine) Name() string { return e.name }

// Inputs implements engine.Engine (a copy; -1 marks dynamic dims).
func (e *Engine) Inputs() []engine.TensorDesc { return cloneDescs(e.inputs) }

// Outputs implements engine.Engine (a copy; -1 marks dynamic dims).
func (e *Engine) Outputs() []engine.TensorDesc { return cloneDescs(e.outputs) }

// Plan describes the plan: tensors, profiles and scratch needs.
func (e *Engine) Plan() PlanInfo { return e.info }

// DeviceMemorySize is the scratch the context needs with profile p (-1: any profile).
func (e *Engine) DeviceMemorySize(p int) int64 {
	if p < 0 || p >= len(e.info.Profiles) {
		return e.maxMemory
	}
	return e.info.Profiles[p].DeviceBytes
}

// SetAllocator replaces the allocator Run uses for outputs (default: the Backend).
func (e *Engine) SetAllocator(a Allocator) {
	e.mu.Lock()
	e.alloc = a
	e.mu.Unlock()
}

// Replays counts the Runs served by replaying a captured CUDA graph.
func (e *Engine) Replays() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.replays
}

func cloneDescs(ds []engine.TensorDesc) []engine.TensorDesc {
	out := make([]engine.TensorDesc, len(ds))
	for i, d := range ds {
		out[i] = engine.TensorDesc{Name: d.Name, DType: d.DType, Shape: d.Shape.Clone()}
	}
	return out
}

// Run implements engine.Engine. Inputs must be DeviceTensors on "cuda"; the profile whose
// min..max covers every input shape is selected (the first, in plan order); outputs are
// allocated with the engine's Allocator and returned (the caller closes them). Work is
// enqueued on the context's stream (WithStream) or the backend's stream, and Run returns
// without waiting for it.
func (e *Engine) Run(ctx context.Context, inputs map[string]engine.Tensor) (map[string]engine.Tensor, error) {
	return e.run(ctx, inputs, nil)
}

// RunInto is Run writing into caller-owned outputs (every output bound, with the shape the
// inputs imply). Reusing the same tensors with the same shapes keeps the context's
// addresses stable, which is what CUDA-graph replay needs.
func (e *Engine) RunInto(ctx context.Context, inputs, outputs map[string]engine.Tensor) error {
	if outputs == nil {
		outputs = map[string]engine.Tensor{}
	}
	_, err := e.run(ctx, inputs, outputs)
	return err
}

func (e *Engine) run(ctx context.Context, inputs, outputs map[string]engine.Tensor) (map[string]engine.Tensor, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, fmt.Errorf("%w: trt: engine %s", engine.ErrClosed, e.name)
	}
	if err := engine.CheckInputs(e.name, e.inputs, inputs, "cuda"); err != nil {
		return nil, err
	}
	dev := make(map[string]DeviceTensor, len(inputs))
	for name, t := range inputs {
		d, ok := t.(DeviceTensor)
		if !ok {
			return nil, fmt.Errorf("%w: %s: input %q (%T) has no device address", engine.ErrDevice, e.name, name, t)
		}
		dev[name] = d
	}
	stream, ok := streamFrom(ctx)
	if !ok {
		s, err := e.b.Stream()
		if err != nil {
			return nil, err
		}
		stream = s
	}
	p, err := e.selectProfile(inputs)
	if err != nil {
		return nil, err
	}
	if err := e.bind(p, stream, dev); err != nil {
		return nil, err
	}
	outs, owned, err := e.bindOutputs(outputs)
	if err != nil {
		return nil, err
	}
	if err := e.enqueue(stream); err != nil {
		if owned {
			_ = engine.CloseAll(outs)
		}
		return nil, err
	}
	return outs, nil
}

// selectProfile picks the first profile covering every input shape.
func (e *Engine) selectProfile(inputs map[string]engine.Tensor) (int, error) {
	for p, prof := range e.info.Profiles {
		ok := true
		for _, r := range prof.Inputs {
			if !r.Covers(inputs[r.Name].Shape()) {
				ok = false
				break
			}
		}
		if ok {
			return p, nil
		}
	}
	var got, have []string
	for _, d := range e.inputs {
		got = append(got, d.Name+"="+inputs[d.Name].Shape().String())
	}
	for p, prof := range e.info.Profiles {
		var rs []string
		for _, r := range prof.Inputs {
			rs = append(rs, r.String())
		}
		have = append(have, fmt.Sprintf("%d: %s", p, strings.Join(rs, ", ")))
	}
	return 0, fmt.Errorf("%w: %s: inputs %s; profiles %s", ErrNoProfile, e.name, strings.Join(got, " "), strings.Join(have, "; "))
}

// bind binds scratch memory for profile p, activates p, then sets input shapes and
// addresses.
func (e *Engine) bind(p int, stream uintptr, inputs map[string]DeviceTensor) error {
	if need := e.info.Profiles[p].DeviceBytes; need > 0 {
		ptr, size, err := e.b.scratchFor(need)
		if err != nil {
			return err
		}
		if ptr != e.memPtr || size != e.memBytes {
			if err := call(e.name+": set device memory", func(er *C.char, n C.size_t) C.int32_t {
				return C.grf_trtl_context_set_device_memory(e.ctx, C.uintptr_t(ptr), C.int64_t(size), er, n)
			}); err != nil {
				return err
			}
			e.memPtr, e.memBytes = ptr, size
		}
	}
	if p != e.profile {
		if err := call(e.name+": set profile", func(er *C.char, n C.size_t) C.int32_t {
			return C.grf_trtl_context_set_profile(e.ctx, C.int32_t(p), C.uintptr_t(stream), er, n)
		}); err != nil {
			return err
		}
		e.profile = p
	}
	for _, d := range e.inputs {
		t := inputs[d.Name]
		cname := C.CString(d.Name)
		shape := t.Shape()
		dims := make([]C.int64_t, len(shape)+1)
		for i, v := range shape {
			dims[i] = C.int64_t(v)
		}
		err := call(e.name+": set input shape", func(er *C.char, n C.size_t) C.int32_t {
			return C.grf_trtl_context_set_input_shape(e.ctx, cname, C.int32_t(len(shape)), &dims[0], er, n)
		})
		if err == nil {
			err = call(e.name+": set tensor address", func(er *C.char, n C.size_t) C.int32_t {
				return C.grf_trtl_context_set_tensor_address(e.ctx, cname, C.uintptr_t(t.DevicePtr()), er, n)
			})
		}
		C.free(unsafe.Pointer(cname))
		if err != nil {
			return err
		}
	}
	return nil
}

// bindOutputs resolves output shapes, allocates (outputs == nil) or checks the caller's
// outputs, and binds their addresses. owned reports whether Run allocated them.
func (e *Engine) bindOutputs(outputs map[string]engine.Tensor) (map[string]engine.Tensor, bool, error) {
	owned := outputs == nil
	if owned {
		outputs = make(map[string]engine.Tensor, len(e.outputs))
	} else {
		for name := range outputs {
			if !hasDesc(e.outputs, name) {
				return nil, false, fmt.Errorf("%w: %s: unknown output %q", engine.ErrBinding, e.name, name)
			}
		}
	}
	fail := func(err error) (map[string]engine.Tensor, bool, error) {
		if owned {
			_ = engine.CloseAll(outputs)
		}
		return nil, false, err
	}
	for _, d := range e.outputs {
		cname := C.CString(d.Name)
		shape, err := e.tensorShape(cname)
		if err != nil {
			C.free(unsafe.Pointer(cname))
			return fail(err)
		}
		var t engine.Tensor
		if owned {
			t, err = e.alloc.Alloc(d.DType, shape)
			if err == nil {
				outputs[d.Name] = t
			}
		} else if t = outputs[d.Name]; t == nil {
			err = fmt.Errorf("%w: %s: output %q not bound", engine.ErrBinding, e.name, d.Name)
		} else if t.DType() != d.DType {
			err = fmt.Errorf("%w: %s: output %q is %v, engine writes %v", engine.ErrDType, e.name, d.Name, t.DType(), d.DType)
		} else if !t.Shape().Equal(shape) {
			err = fmt.Errorf("%w: %s: output %q has shape %v, these inputs make %v", engine.ErrShape, e.name, d.Name, t.Shape(), shape)
		}
		var dt DeviceTensor
		if err == nil {
			var ok bool
			if dt, ok = t.(DeviceTensor); !ok || t.DeviceName() != "cuda" {
				err = fmt.Errorf("%w: %s: output %q (%T) is not a cuda device tensor", engine.ErrDevice, e.name, d.Name, t)
			}
		}
		if err == nil {
			err = call(e.name+": set tensor address", func(er *C.char, n C.size_t) C.int32_t {
				return C.grf_trtl_context_set_tensor_address(e.ctx, cname, C.uintptr_t(dt.DevicePtr()), er, n)
			})
		}
		C.free(unsafe.Pointer(cname))
		if err != nil {
			return fail(err)
		}
	}
	return outputs, owned, nil
}

func (e *Engine) tensorShape(cname *C.char) (engine.Shape, error) {
	var nb C.int32_t
	var dims [C.GRF_TRT_MAX_DIMS]C.int64_t
	if err := call(e.name+": tensor shape", func(er *C.char, n C.size_t) C.int32_t {
		return C.grf_trtl_context_tensor_shape(e.ctx, cname, &nb, &dims[0], er, n)
	}); err != nil {
		return nil, err
	}
	s := goShape(nb, dims[:])
	if !s.IsConcrete() {
		return nil, fmt.Errorf("%w: %s: output %q has data-dependent shape %v", engine.ErrShape, e.name, C.GoString(cname), s)
	}
	return s, nil
}

func (e *Engine) enqueue(stream uintptr) error {
	if !e.graphs {
		return call(e.name+": enqueue", func(er *C.char, n C.size_t) C.int32_t {
			return C.grf_trtl_context_enqueue(e.ctx, C.uintptr_t(stream), er, n)
		})
	}
	var replayed C.int32_t
	err := call(e.name+": enqueue graph", func(er *C.char, n C.size_t) C.int32_t {
		return C.grf_trtl_context_enqueue_graph(e.ctx, C.uintptr_t(stream), &replayed, er, n)
	})
	if err == nil && replayed != 0 {
		e.replays++
	}
	return err
}

func hasDesc(ds []engine.TensorDesc, name string) bool {
	for _, d := range ds {
		if d.Name == name {
			return true
		}
	}
	return false
}

// destroy frees the context, then the engine. Caller holds e.mu or owns e exclusively.
func (e *Engine) destroy() error {
	var first error
	if e.ctx != nil {
		c := e.ctx
		e.ctx = nil
		first = call(e.name+": context destroy", func(er *C.char, n C.size_t) C.int32_t {
			return C.grf_trtl_context_destroy(c, er, n)
		})
	}
	if e.eng != nil {
		h := e.eng
		e.eng = nil
		if err := call(e.name+": engine destroy", func(er *C.char, n C.size_t) C.int32_t {
			return C.grf_trtl_engine_destroy(h, er, n)
		}); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Close implements engine.Engine: context first, then engine. Idempotent and nil-safe.
// Outputs returned by Run stay valid (they belong to the caller).
func (e *Engine) Close() error {
	if e == nil {
		return nil
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	err := e.destroy()
	e.mu.Unlock()
	e.b.forget(e)
	return err
}
