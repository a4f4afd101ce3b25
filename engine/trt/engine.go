package trt

/*
#include <stdlib.h>
#include "grefine_trt_loader.h"
*/
import "C"

import (
	"context"
	"fmt"
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

// Engine is one deserialized TensorRT plan (an ICudaEngine). It runs through Sessions,
// one execution context each, created by the Slots that use it (Slot.Session); Run uses
// the backend's default slot. It implements engine.Engine and is safe for concurrent use.
//
// Close refuses while sessions other than the default one are open (close the slots or
// sessions first): TensorRT requires contexts to die before their engine.
type Engine struct {
	b    *Backend
	name string

	mu       sync.Mutex
	eng      *C.grf_trt_engine
	info     PlanInfo
	inputs   []engine.TensorDesc
	outputs  []engine.TensorDesc
	sessions map[*Session]struct{}
	def      *Session // the default slot's session, for Run
	closed   bool
	defMu    sync.Mutex // serialises the creation of def

	maxMemory int64
}

// newEngine reads the plan's description. On error it destroys h.
func newEngine(b *Backend, name string, h *C.grf_trt_engine) (*Engine, error) {
	e := &Engine{b: b, name: name, eng: h, sessions: map[*Session]struct{}{}}
	if err := e.describe(); err != nil {
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

// MaxShape implements engine.ShapeLimiter: the largest shape input accepts, dimension by
// dimension over the plan's profiles.
func (e *Engine) MaxShape(input string) (engine.Shape, bool) {
	var out engine.Shape
	for _, p := range e.info.Profiles {
		for _, r := range p.Inputs {
			if r.Name != input {
				continue
			}
			if out == nil {
				out = r.Max.Clone()
				continue
			}
			for i := range out {
				if i < len(r.Max) && r.Max[i] > out[i] {
					out[i] = r.Max[i]
				}
			}
		}
	}
	return out, out != nil
}

// DeviceMemorySize is the scratch a context needs with profile p (-1: any profile).
func (e *Engine) DeviceMemorySize(p int) int64 {
	if p < 0 || p >= len(e.info.Profiles) {
		return e.maxMemory
	}
	return e.info.Profiles[p].DeviceBytes
}

// Sessions counts the open sessions (execution contexts) of the engine.
func (e *Engine) Sessions() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.sessions)
}

func cloneDescs(ds []engine.TensorDesc) []engine.TensorDesc {
	out := make([]engine.TensorDesc, len(ds))
	for i, d := range ds {
		out[i] = engine.TensorDesc{Name: d.Name, DType: d.DType, Shape: d.Shape.Clone()}
	}
	return out
}

// Default is the engine's session in the backend's default slot (created on first use),
// which Run and RunInto use.
func (e *Engine) Default() (*Session, error) {
	e.defMu.Lock()
	defer e.defMu.Unlock()
	e.mu.Lock()
	s := e.def
	e.mu.Unlock()
	if s != nil {
		return s, nil
	}
	slot, err := e.b.Slot(0)
	if err != nil {
		return nil, err
	}
	if s, err = slot.Session(e); err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.def = s
	e.mu.Unlock()
	return s, nil
}

// Run implements engine.Engine on the default slot (see Session.Run).
func (e *Engine) Run(ctx context.Context, inputs map[string]engine.Tensor) (map[string]engine.Tensor, error) {
	s, err := e.Default()
	if err != nil {
		return nil, err
	}
	return s.Run(ctx, inputs)
}

// RunInto is Session.RunInto on the default slot.
func (e *Engine) RunInto(ctx context.Context, inputs, outputs map[string]engine.Tensor) error {
	s, err := e.Default()
	if err != nil {
		return err
	}
	return s.RunInto(ctx, inputs, outputs)
}

// Replays counts the runs of all sessions served by replaying a captured CUDA graph.
func (e *Engine) Replays() int {
	e.mu.Lock()
	ss := make([]*Session, 0, len(e.sessions))
	for s := range e.sessions {
		ss = append(ss, s)
	}
	e.mu.Unlock()
	n := 0
	for _, s := range ss {
		n += s.Replays()
	}
	return n
}

// attach registers a new session; it fails once the engine is closed.
func (e *Engine) attach(s *Session) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return fmt.Errorf("%w: trt: engine %s", engine.ErrClosed, e.name)
	}
	e.sessions[s] = struct{}{}
	return nil
}

func (e *Engine) detach(s *Session) {
	e.mu.Lock()
	delete(e.sessions, s)
	if e.def == s {
		e.def = nil
	}
	e.mu.Unlock()
}

// destroy frees the engine handle. Caller holds e.mu or owns e exclusively.
func (e *Engine) destroy() error {
	if e.eng == nil {
		return nil
	}
	h := e.eng
	e.eng = nil
	return call(e.name+": engine destroy", func(er *C.char, n C.size_t) C.int32_t {
		return C.grf_trtl_engine_destroy(h, er, n)
	})
}

// Close implements engine.Engine: it closes the default session, then the engine. With
// other sessions still open it returns ErrOrder and closes nothing. Idempotent and
// nil-safe. Outputs returned by Run stay valid (they belong to the caller).
func (e *Engine) Close() error {
	if e == nil {
		return nil
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	if n := len(e.sessions); n > 1 || (n == 1 && e.def == nil) {
		if e.def != nil {
			n--
		}
		e.mu.Unlock()
		return fmt.Errorf("%w: engine %s has %d open session(s): close its slots or sessions first", ErrOrder, e.name, n)
	}
	def := e.def
	e.mu.Unlock()
	if err := def.Close(); err != nil {
		return err
	}
	e.mu.Lock()
	e.closed = true
	err := e.destroy()
	e.mu.Unlock()
	e.b.forget(e)
	return err
}
