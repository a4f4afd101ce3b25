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

// SlotOptions configure Backend.NewSlot and Backend.SlotWith.
type SlotOptions struct {
	// Stream is a cudaStream_t on the backend's device to enqueue on (engine/cuda's
	// Stream.Handle), so engines and kernels of one request share one stream; the slot
	// borrows it (the caller destroys it after Slot.Close). 0: the slot creates its own.
	Stream uintptr
	// Device, if set, is the engine.Device whose tensors the slot's sessions read and
	// write (engine/cuda's, on the backend's GPU): Session.Run allocates its outputs there,
	// so they are that device's tensors. nil: outputs are this package's Buffers.
	Device engine.Device
}

// Slot is one execution slot: a CUDA stream, one scratch buffer (kUSER_MANAGED) shared by
// the slot's sessions, and one Session (execution context) per engine used in it. The
// sessions of a slot run one at a time, in call order, on the slot's stream; different
// slots run concurrently. A pipeline gives each concurrent request its own slot.
//
// Close closes the sessions (contexts), then the scratch, then the stream it owns.
type Slot struct {
	b         *Backend
	id        int // -1: anonymous (NewSlot)
	stream    uintptr
	ownStream bool
	dev       engine.Device // where Run's outputs are allocated (nil: Buffers)

	run      sync.Mutex // held by the running session: the scratch is shared
	mu       sync.Mutex // guards the fields below
	scratch  *Buffer
	sessions map[*Session]struct{}
	closed   bool
}

// Slot returns the backend's slot number id, created on first use (0 is the default slot
// of Engine.Run). engine.OpenOptions.Slot carries the id through plans.Repo.
func (b *Backend) Slot(id int) (*Slot, error) { return b.slot(id, SlotOptions{}, false) }

// SlotWith returns the backend's slot number id, created on first use with opts (a
// pipeline slot binds its device stream this way: engine.OpenOptions.Stream through
// plans.Repo). An existing slot is returned when it has the same stream and device, else
// the call fails (engine.ErrBinding): one slot runs on one stream.
func (b *Backend) SlotWith(id int, opts SlotOptions) (*Slot, error) { return b.slot(id, opts, true) }

// slot returns slot id, created with opts on first use; an existing one must match opts
// when match is set.
func (b *Backend) slot(id int, opts SlotOptions, match bool) (*Slot, error) {
	if id < 0 {
		return nil, fmt.Errorf("%w: trt: slot %d: ids are >= 0", engine.ErrBinding, id)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if s, ok := b.slots[id]; ok {
		if match && ((opts.Stream != 0 && s.stream != opts.Stream) || s.dev != opts.Device) {
			return nil, fmt.Errorf("%w: trt: slot %d already runs on another stream or device", engine.ErrBinding, id)
		}
		return s, nil
	}
	s, err := b.newSlotLocked(id, opts)
	if err != nil {
		return nil, err
	}
	b.slots[id] = s
	if id == 0 {
		b.def = s
	}
	return s, nil
}

// NewSlot makes an anonymous slot (closed by the caller or by Backend.Close).
func (b *Backend) NewSlot(opts SlotOptions) (*Slot, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, err := b.newSlotLocked(-1, opts)
	if err != nil {
		return nil, err
	}
	b.anon[s] = struct{}{}
	return s, nil
}

func (b *Backend) newSlotLocked(id int, opts SlotOptions) (*Slot, error) {
	if err := b.readyLocked(); err != nil {
		return nil, err
	}
	if opts.Device != nil && opts.Device.Name() != "cuda" {
		return nil, fmt.Errorf("%w: trt: slot device %s, the engines write cuda memory", engine.ErrDevice, opts.Device.Name())
	}
	if opts.Device != nil && opts.Device.Info().Ordinal != b.opts.Device {
		return nil, fmt.Errorf("%w: trt: the slot's device is cuda device %d, the backend's runtime and engines are on device %d (one backend per GPU: option device)",
			engine.ErrDevice, opts.Device.Info().Ordinal, b.opts.Device)
	}
	s := &Slot{b: b, id: id, stream: opts.Stream, dev: opts.Device, sessions: map[*Session]struct{}{}}
	if s.stream == 0 {
		var h C.uintptr_t
		if err := call("stream create", func(e *C.char, n C.size_t) C.int32_t {
			return C.grf_trtl_stream_create(C.int32_t(b.opts.Device), &h, e, n)
		}); err != nil {
			return nil, err
		}
		s.stream, s.ownStream = uintptr(h), true
	}
	return s, nil
}

// Stream is the slot's CUDA stream (a cudaStream_t).
func (s *Slot) Stream() uintptr { return s.stream }

// Synchronize waits for the work queued on the slot's stream.
func (s *Slot) Synchronize() error {
	return call("stream synchronize", func(e *C.char, n C.size_t) C.int32_t {
		return C.grf_trtl_stream_synchronize(C.uintptr_t(s.stream), e, n)
	})
}

// ScratchBytes is the size of the slot's scratch buffer (0 before the first run).
func (s *Slot) ScratchBytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.scratch == nil {
		return 0
	}
	return s.scratch.bytes
}

// Reserve sizes the scratch for every session open now, so later runs do not grow it.
func (s *Slot) Reserve() error {
	_, _, err := s.scratchFor(0)
	return err
}

// scratchFor returns scratch of at least need bytes. When the buffer is too small it is
// replaced by one sized to the largest need of the slot's sessions (the old one is freed;
// sessions rebind before their next run). Caller holds s.run.
func (s *Slot) scratchFor(need int64) (uintptr, int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, 0, fmt.Errorf("%w: trt: slot", engine.ErrClosed)
	}
	for ss := range s.sessions {
		if m := ss.e.maxMemory; m > need {
			need = m
		}
	}
	if s.scratch != nil && s.scratch.bytes >= need {
		return s.scratch.ptr, s.scratch.bytes, nil
	}
	if s.scratch != nil {
		if err := s.scratch.Close(); err != nil {
			return 0, 0, err
		}
		s.scratch = nil
	}
	buf, err := s.b.newBuffer(engine.Uint8, engine.Shape{need}, s.stream)
	if err != nil {
		return 0, 0, err
	}
	s.scratch = buf
	return buf.ptr, buf.bytes, nil
}

// Alloc allocates an output of the slot's sessions: on the slot's Device when it has one,
// else a Buffer that copies on the slot's stream.
func (s *Slot) Alloc(dt engine.DType, shape engine.Shape) (engine.Tensor, error) {
	if s.dev != nil {
		return s.dev.Alloc(dt, shape)
	}
	return s.b.newBuffer(dt, shape, s.stream)
}

// Session creates an execution context of e in this slot. A slot holds any number of
// sessions, of the same engine or of others; they share the slot's scratch and stream.
func (s *Slot) Session(e *Engine) (*Session, error) {
	if e.b != s.b {
		return nil, fmt.Errorf("%w: trt: engine %s belongs to another backend", engine.ErrBinding, e.name)
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("%w: trt: slot", engine.ErrClosed)
	}
	ss := &Session{e: e, slot: s, graphs: s.b.opts.CUDAGraphs}
	if err := e.attach(ss); err != nil {
		return nil, err
	}
	e.mu.Lock()
	h := e.eng
	e.mu.Unlock()
	if err := call(e.name+": context create", func(er *C.char, n C.size_t) C.int32_t {
		return C.grf_trtl_context_create(h, &ss.ctx, er, n)
	}); err != nil {
		e.detach(ss)
		return nil, err
	}
	s.mu.Lock()
	s.sessions[ss] = struct{}{}
	s.mu.Unlock()
	return ss, nil
}

// Close closes the slot's sessions, its scratch and the stream it owns. Idempotent and
// nil-safe.
func (s *Slot) Close() error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	ss := make([]*Session, 0, len(s.sessions))
	for x := range s.sessions {
		ss = append(ss, x)
	}
	s.mu.Unlock()
	var first error
	keep := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	for _, x := range ss {
		keep(x.Close())
	}
	s.run.Lock()
	defer s.run.Unlock()
	s.mu.Lock()
	keep(s.scratch.Close())
	s.scratch = nil
	s.mu.Unlock()
	if s.ownStream && s.stream != 0 {
		h := s.stream
		s.stream = 0
		keep(call("stream destroy", func(e *C.char, n C.size_t) C.int32_t {
			return C.grf_trtl_stream_destroy(C.uintptr_t(h), e, n)
		}))
	}
	s.b.mu.Lock()
	delete(s.b.anon, s)
	if s.id >= 0 && s.b.slots[s.id] == s {
		delete(s.b.slots, s.id)
	}
	if s.b.def == s {
		s.b.def = nil
	}
	s.b.mu.Unlock()
	return first
}

func (s *Slot) forget(x *Session) {
	s.mu.Lock()
	delete(s.sessions, x)
	s.mu.Unlock()
}

// Session is one execution context of an Engine in a Slot. It implements engine.Engine:
// Run allocates outputs, RunInto writes into the caller's. Work is enqueued on the slot's
// stream and Run returns without waiting (the emulator too: it runs the plan when the
// stream is synchronised). Runs of the sessions of one slot are serialised.
type Session struct {
	e    *Engine
	slot *Slot

	// Guarded by slot.run.
	ctx      *C.grf_trt_context
	profile  int
	memPtr   uintptr
	memBytes int64
	graphs   bool
	replays  int
	closed   bool
}

// Name implements engine.Engine.
func (s *Session) Name() string { return s.e.name }

// Inputs implements engine.Engine.
func (s *Session) Inputs() []engine.TensorDesc { return s.e.Inputs() }

// Outputs implements engine.Engine.
func (s *Session) Outputs() []engine.TensorDesc { return s.e.Outputs() }

// Engine is the plan the session runs.
func (s *Session) Engine() *Engine { return s.e }

// MaxShape implements engine.ShapeLimiter (the engine's).
func (s *Session) MaxShape(input string) (engine.Shape, bool) { return s.e.MaxShape(input) }

// Slot is the slot the session belongs to.
func (s *Session) Slot() *Slot { return s.slot }

// Replays counts the runs served by replaying a captured CUDA graph.
func (s *Session) Replays() int {
	s.slot.run.Lock()
	defer s.slot.run.Unlock()
	return s.replays
}

// Run implements engine.Engine. Inputs are DeviceTensors of the backend's device ("cuda"):
// a host tensor (*engine.HostTensor, device "cpu") is refused with engine.ErrDevice naming
// both devices, on every shim (TensorRT reads device memory only; copy it with
// Backend.Upload or the device's own upload). The first profile whose min..max covers
// every input shape is selected (ErrNoProfile otherwise); outputs are allocated with the
// slot (Slot.Alloc: on its Device, else Buffers) and belong to the caller. Their contents exist once the slot's
// stream is synchronised (Slot.Synchronize, or a copy on that stream).
func (s *Session) Run(ctx context.Context, inputs map[string]engine.Tensor) (map[string]engine.Tensor, error) {
	return s.run(ctx, inputs, nil)
}

// RunInto is Run writing into caller-owned outputs: every output bound, with the dtype and
// shape the inputs imply. With the same tensors (and shapes) from step to step nothing is
// allocated and the context's addresses stay fixed, which is what CUDA-graph replay
// (Options.CUDAGraphs) needs.
func (s *Session) RunInto(ctx context.Context, inputs, outputs map[string]engine.Tensor) error {
	if outputs == nil {
		outputs = map[string]engine.Tensor{}
	}
	_, err := s.run(ctx, inputs, outputs)
	return err
}

func (s *Session) run(ctx context.Context, inputs, outputs map[string]engine.Tensor) (map[string]engine.Tensor, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.slot.run.Lock()
	defer s.slot.run.Unlock()
	e := s.e
	if s.closed {
		return nil, fmt.Errorf("%w: trt: session of %s", engine.ErrClosed, e.name)
	}
	if err := engine.CheckInputs(e.name, e.inputs, inputs, e.b.DeviceName()); err != nil {
		return nil, err
	}
	p, err := s.selectProfile(inputs)
	if err != nil {
		return nil, err
	}
	addrs := make(map[string]uintptr, len(inputs))
	for name, t := range inputs {
		a, err := s.address(name, t, "input")
		if err != nil {
			return nil, err
		}
		addrs[name] = a
	}
	if err := s.bind(p, addrs, inputs); err != nil {
		return nil, err
	}
	outs, owned, err := s.bindOutputs(outputs)
	if err != nil {
		return nil, err
	}
	if err := s.enqueue(); err != nil {
		if owned {
			_ = engine.CloseAll(outs)
		}
		return nil, err
	}
	return outs, nil
}

// address returns the device address to bind for tensor t: its own. A tensor without one
// (a host tensor, another package's tensor) is refused naming both devices; TensorRT
// reads and writes device memory only, and no copy is made behind the caller's back.
func (s *Session) address(name string, t engine.Tensor, kind string) (uintptr, error) {
	if d, ok := t.(DeviceTensor); ok {
		if g, ok := t.(GPUTensor); ok && g.Device() != s.e.b.opts.Device {
			return 0, fmt.Errorf("%w: %s: %s %q is on cuda device %d, the engine runs on device %d (tensors are never copied between GPUs)",
				engine.ErrDevice, s.e.name, kind, name, g.Device(), s.e.b.opts.Device)
		}
		return d.DevicePtr(), nil
	}
	return 0, fmt.Errorf("%w: %s: %s %q is a %T on %s, the engine reads and writes %s memory only (upload it first)",
		engine.ErrDevice, s.e.name, kind, name, t, t.DeviceName(), s.e.b.DeviceName())
}

// selectProfile picks the first profile covering every input shape.
func (s *Session) selectProfile(inputs map[string]engine.Tensor) (int, error) {
	e := s.e
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

// bind binds the slot's scratch, activates profile p, then sets input shapes and
// addresses.
func (s *Session) bind(p int, addrs map[string]uintptr, inputs map[string]engine.Tensor) error {
	e := s.e
	if need := e.info.Profiles[p].DeviceBytes; need > 0 {
		ptr, size, err := s.slot.scratchFor(need)
		if err != nil {
			return err
		}
		if ptr != s.memPtr || size != s.memBytes {
			if err := call(e.name+": set device memory", func(er *C.char, n C.size_t) C.int32_t {
				return C.grf_trtl_context_set_device_memory(s.ctx, C.uintptr_t(ptr), C.int64_t(size), er, n)
			}); err != nil {
				return err
			}
			s.memPtr, s.memBytes = ptr, size
		}
	}
	if p != s.profile {
		if err := call(e.name+": set profile", func(er *C.char, n C.size_t) C.int32_t {
			return C.grf_trtl_context_set_profile(s.ctx, C.int32_t(p), C.uintptr_t(s.slot.stream), er, n)
		}); err != nil {
			return err
		}
		s.profile = p
	}
	var dims [C.GRF_TRT_MAX_DIMS + 1]C.int64_t
	for _, d := range e.inputs {
		shape := inputs[d.Name].Shape()
		if len(shape) > C.GRF_TRT_MAX_DIMS {
			return fmt.Errorf("%w: %s: input %q has rank %d (max %d)", engine.ErrShape, e.name, d.Name, len(shape), C.GRF_TRT_MAX_DIMS)
		}
		for i, v := range shape {
			dims[i] = C.int64_t(v)
		}
		cname := C.CString(d.Name)
		err := call(e.name+": set input shape", func(er *C.char, n C.size_t) C.int32_t {
			return C.grf_trtl_context_set_input_shape(s.ctx, cname, C.int32_t(len(shape)), &dims[0], er, n)
		})
		if err == nil {
			err = call(e.name+": set tensor address", func(er *C.char, n C.size_t) C.int32_t {
				return C.grf_trtl_context_set_tensor_address(s.ctx, cname, C.uintptr_t(addrs[d.Name]), er, n)
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
func (s *Session) bindOutputs(outputs map[string]engine.Tensor) (map[string]engine.Tensor, bool, error) {
	e := s.e
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
	dev := e.b.DeviceName()
	for _, d := range e.outputs {
		cname := C.CString(d.Name)
		shape, err := s.tensorShape(cname)
		var t engine.Tensor
		switch {
		case err != nil:
		case owned:
			t, err = s.slot.Alloc(d.DType, shape)
		default:
			if t = outputs[d.Name]; t == nil {
				err = fmt.Errorf("%w: %s: output %q not bound", engine.ErrBinding, e.name, d.Name)
			} else if t.DType() != d.DType {
				err = fmt.Errorf("%w: %s: output %q is %v, engine writes %v", engine.ErrDType, e.name, d.Name, t.DType(), d.DType)
			} else if !t.Shape().Equal(shape) {
				err = fmt.Errorf("%w: %s: output %q has shape %v, these inputs make %v", engine.ErrShape, e.name, d.Name, t.Shape(), shape)
			}
		}
		if err == nil && owned {
			outputs[d.Name] = t
		}
		if err == nil && t.DeviceName() != dev {
			err = fmt.Errorf("%w: %s: output %q (%T) is on %s, the engine writes %s memory", engine.ErrDevice, e.name, d.Name, t, t.DeviceName(), dev)
		}
		var addr uintptr
		if err == nil {
			addr, err = s.address(d.Name, t, "output")
		}
		if err == nil {
			err = call(e.name+": set tensor address", func(er *C.char, n C.size_t) C.int32_t {
				return C.grf_trtl_context_set_tensor_address(s.ctx, cname, C.uintptr_t(addr), er, n)
			})
		}
		C.free(unsafe.Pointer(cname))
		if err != nil {
			return fail(err)
		}
	}
	return outputs, owned, nil
}

func (s *Session) tensorShape(cname *C.char) (engine.Shape, error) {
	var nb C.int32_t
	var dims [C.GRF_TRT_MAX_DIMS]C.int64_t
	if err := call(s.e.name+": tensor shape", func(er *C.char, n C.size_t) C.int32_t {
		return C.grf_trtl_context_tensor_shape(s.ctx, cname, &nb, &dims[0], er, n)
	}); err != nil {
		return nil, err
	}
	sh := goShape(nb, dims[:])
	if !sh.IsConcrete() {
		return nil, fmt.Errorf("%w: %s: output %q has data-dependent shape %v", engine.ErrShape, s.e.name, C.GoString(cname), sh)
	}
	return sh, nil
}

func (s *Session) enqueue() error {
	stream := C.uintptr_t(s.slot.stream)
	if !s.graphs {
		return call(s.e.name+": enqueue", func(er *C.char, n C.size_t) C.int32_t {
			return C.grf_trtl_context_enqueue(s.ctx, stream, er, n)
		})
	}
	var replayed C.int32_t
	err := call(s.e.name+": enqueue graph", func(er *C.char, n C.size_t) C.int32_t {
		return C.grf_trtl_context_enqueue_graph(s.ctx, stream, &replayed, er, n)
	})
	if err == nil && replayed != 0 {
		s.replays++
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

// Close destroys the execution context, after the work queued on the slot's stream.
// Idempotent and nil-safe.
func (s *Session) Close() error {
	if s == nil {
		return nil
	}
	s.slot.run.Lock()
	if s.closed {
		s.slot.run.Unlock()
		return nil
	}
	s.closed = true
	var first error
	if s.ctx != nil {
		first = s.slot.Synchronize()
		c := s.ctx
		s.ctx = nil
		if err := call(s.e.name+": context destroy", func(er *C.char, n C.size_t) C.int32_t {
			return C.grf_trtl_context_destroy(c, er, n)
		}); err != nil && first == nil {
			first = err
		}
	}
	s.slot.run.Unlock()
	s.slot.forget(s)
	s.e.detach(s)
	return first
}
