package main

/*
#cgo CFLAGS: -I${SRCDIR}/../../cgo/include
#cgo LDFLAGS: -Wl,--unresolved-symbols=ignore-in-object-files
#include <stdlib.h>
#include "grefine_triton.h"
*/
import "C"

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/rs/zerolog"

	_ "github.com/grefine/grefine/engine/cpu"  // register the cpu device (the default)
	_ "github.com/grefine/grefine/engine/cuda" // register the cuda and cuda-emu devices (dlopen'd kernels)
	_ "github.com/grefine/grefine/engine/ort"  // register the embedded default backend
	_ "github.com/grefine/grefine/engine/trt"  // register the TensorRT backend (dlopen'd shim)
	"github.com/grefine/grefine/pipeline"
	"github.com/grefine/grefine/triton"
)

// main is required by -buildmode=c-shared; it never runs.
func main() {}

// The registries of the models and instances Triton has initialised, keyed by the
// address of Triton's object (no Go pointer is handed to C).
var (
	models    sync.Map // uintptr(*C.TRITONBACKEND_Model) -> *triton.Model
	instances sync.Map // uintptr(*C.TRITONBACKEND_ModelInstance) -> *instance
)

// instance is one model instance: its pipeline, and the requests it runs.
type instance struct {
	name  string
	c     *C.TRITONBACKEND_ModelInstance
	in    *triton.Instance
	slots chan struct{} // one token per request running (the pipeline's slots)
	wg    sync.WaitGroup
}

// logger forwards zerolog records (JSON lines) into Triton's log.
var logger = zerolog.New(tritonLog{}).With().Timestamp().Str("component", "grefine").Logger()

type tritonLog struct{}

func (tritonLog) Write(p []byte) (int, error) { return tritonLog{}.WriteLevel(zerolog.InfoLevel, p) }

func (tritonLog) WriteLevel(l zerolog.Level, p []byte) (int, error) {
	lvl := C.TRITONSERVER_LOG_INFO
	switch {
	case l >= zerolog.ErrorLevel:
		lvl = C.TRITONSERVER_LOG_ERROR
	case l == zerolog.WarnLevel:
		lvl = C.TRITONSERVER_LOG_WARN
	case l <= zerolog.DebugLevel:
		lvl = C.TRITONSERVER_LOG_VERBOSE
	}
	msg := C.CString(strings.TrimRight(string(p), "\n"))
	defer C.free(unsafe.Pointer(msg))
	C.grf_triton_log(C.TRITONSERVER_LogLevel(lvl), msg)
	return len(p), nil
}

// newError is a Triton error; Triton (or the response it goes with) frees it.
func newError(code C.TRITONSERVER_Error_Code, msg string) *C.TRITONSERVER_Error {
	cs := C.CString(msg)
	defer C.free(unsafe.Pointer(cs))
	return C.TRITONSERVER_ErrorNew(code, cs)
}

// toTriton is err as a Triton error, its code from the pipeline's status table.
func toTriton(err error) *C.TRITONSERVER_Error {
	code := C.TRITONSERVER_ERROR_INTERNAL
	switch triton.CodeOf(err) {
	case triton.CodeInvalidArg:
		code = C.TRITONSERVER_ERROR_INVALID_ARG
	case triton.CodeUnavailable:
		code = C.TRITONSERVER_ERROR_UNAVAILABLE
	case triton.CodeCancelled:
		code = C.TRITONSERVER_ERROR_CANCELLED
	}
	return newError(C.TRITONSERVER_Error_Code(code), err.Error())
}

// fromTriton is a Triton error as a Go error (nil for nil); it frees e.
func fromTriton(what string, e *C.TRITONSERVER_Error) error {
	if e == nil {
		return nil
	}
	defer C.TRITONSERVER_ErrorDelete(e)
	return fmt.Errorf("%w: triton: %s: %s", pipeline.ErrInternal, what, C.GoString(C.TRITONSERVER_ErrorMessage(e)))
}

// recoverTo turns a panic of an entry point into an internal Triton error.
func recoverTo(e **C.TRITONSERVER_Error) {
	if r := recover(); r != nil {
		*e = newError(C.TRITONSERVER_ERROR_INTERNAL, fmt.Sprintf("grefine backend: panic: %v", r))
	}
}

//export TRITONBACKEND_Initialize
func TRITONBACKEND_Initialize(b *C.TRITONBACKEND_Backend) (e *C.TRITONSERVER_Error) {
	defer recoverTo(&e)
	var major, minor C.uint32_t
	if e := C.TRITONBACKEND_ApiVersion(&major, &minor); e != nil {
		return e
	}
	if major != C.GRF_TRITONBACKEND_API_MAJOR || minor < C.GRF_TRITONBACKEND_API_MINOR {
		return newError(C.TRITONSERVER_ERROR_UNSUPPORTED, fmt.Sprintf("grefine backend: Triton's backend API is %d.%d; grefine needs %d.%d or a later 1.x",
			major, minor, C.GRF_TRITONBACKEND_API_MAJOR, C.GRF_TRITONBACKEND_API_MINOR))
	}
	if !C.TRITONSERVER_LogIsEnabled(C.TRITONSERVER_LOG_VERBOSE) {
		logger = logger.Level(zerolog.InfoLevel) // debug records go to Triton's verbose log (--log-verbose 1)
	}
	logger.Info().Str("version", pipeline.Version).Uint32("api_major", uint32(major)).Uint32("api_minor", uint32(minor)).
		Msg("grefine backend initialised")
	signalsOnStack()
	return nil
}

// signalsDone is set once the server's signal handlers carry SA_ONSTACK.
var signalsDone atomic.Bool

// signalsOnStack adds SA_ONSTACK to the server's SIGINT/SIGTERM/SIGHUP/SIGQUIT handlers
// (tritonserver installs them without it, after loading the first models): a signal
// delivered to a Go thread then runs the handler on the signal stack, not on a goroutine's
// small stack. It runs at initialisation and before each execution until it has seen
// the handlers.
func signalsOnStack() {
	if signalsDone.Load() {
		return
	}
	var buf [256]C.char
	n := C.grf_triton_signals_onstack(&buf[0], C.size_t(len(buf)))
	switch {
	case n < 0:
		logger.Error().Str("error", C.GoString(&buf[0])).Msg("signal handlers: could not add SA_ONSTACK")
		signalsDone.Store(true)
	case n > 0:
		logger.Info().Int32("handlers", int32(n)).Msg("signal handlers: SA_ONSTACK added")
		signalsDone.Store(true)
	}
}

//export TRITONBACKEND_Finalize
func TRITONBACKEND_Finalize(b *C.TRITONBACKEND_Backend) *C.TRITONSERVER_Error {
	logger.Info().Msg("grefine backend finalised (the library stays loaded: a Go runtime cannot be unloaded)")
	return nil
}

//export TRITONBACKEND_ModelInitialize
func TRITONBACKEND_ModelInitialize(cm *C.TRITONBACKEND_Model) (e *C.TRITONSERVER_Error) {
	defer recoverTo(&e)
	var cname *C.char
	if e := C.TRITONBACKEND_ModelName(cm, &cname); e != nil {
		return e
	}
	var art C.TRITONBACKEND_ArtifactType
	var loc *C.char
	if e := C.TRITONBACKEND_ModelRepository(cm, &art, &loc); e != nil {
		return e
	}
	var msg *C.TRITONSERVER_Message
	if e := C.TRITONBACKEND_ModelConfig(cm, 1, &msg); e != nil {
		return e
	}
	defer C.TRITONSERVER_MessageDelete(msg)
	var base *C.char
	var size C.size_t
	if e := C.TRITONSERVER_MessageSerializeToJson(msg, &base, &size); e != nil {
		return e
	}
	m, err := triton.ParseModelConfig(C.GoBytes(unsafe.Pointer(base), C.int(size)), C.GoString(loc))
	if err != nil {
		return toTriton(err)
	}
	models.Store(uintptr(unsafe.Pointer(cm)), m)
	logger.Info().Str("model", C.GoString(cname)).Str("task", string(m.Task)).Str("models", m.Models).
		Str("backend", m.Backend).Int("slots", m.Slots).Strs("outputs", m.Outputs).Msg("model initialised")
	return nil
}

//export TRITONBACKEND_ModelFinalize
func TRITONBACKEND_ModelFinalize(cm *C.TRITONBACKEND_Model) *C.TRITONSERVER_Error {
	models.Delete(uintptr(unsafe.Pointer(cm)))
	return nil
}

//export TRITONBACKEND_ModelInstanceInitialize
func TRITONBACKEND_ModelInstanceInitialize(ci *C.TRITONBACKEND_ModelInstance) (e *C.TRITONSERVER_Error) {
	defer recoverTo(&e)
	var cm *C.TRITONBACKEND_Model
	if e := C.TRITONBACKEND_ModelInstanceModel(ci, &cm); e != nil {
		return e
	}
	v, ok := models.Load(uintptr(unsafe.Pointer(cm)))
	if !ok {
		return newError(C.TRITONSERVER_ERROR_INTERNAL, "grefine backend: instance of a model that was not initialised")
	}
	m := v.(*triton.Model)
	var cname *C.char
	if e := C.TRITONBACKEND_ModelInstanceName(ci, &cname); e != nil {
		return e
	}
	var kind C.TRITONSERVER_InstanceGroupKind
	if e := C.TRITONBACKEND_ModelInstanceKind(ci, &kind); e != nil {
		return e
	}
	var dev C.int32_t
	if e := C.TRITONBACKEND_ModelInstanceDeviceId(ci, &dev); e != nil {
		return e
	}
	pl := triton.Placement{Kind: triton.KindCPU, DeviceID: int(dev)}
	switch kind {
	case C.TRITONSERVER_INSTANCEGROUPKIND_GPU:
		pl.Kind = triton.KindGPU
	case C.TRITONSERVER_INSTANCEGROUPKIND_MODEL:
		pl.Kind = triton.KindModel
	}
	name := C.GoString(cname)
	log := logger.With().Str("instance", name).Logger()
	t0 := time.Now()
	in, err := triton.Open(context.Background(), m, pl, &log)
	if err != nil {
		return toTriton(err)
	}
	instances.Store(uintptr(unsafe.Pointer(ci)), &instance{name: name, c: ci, in: in, slots: make(chan struct{}, m.Slots)})
	info := in.Pipeline().Info()
	log.Info().Str("kind", pl.Kind.String()).Int("device_id", pl.DeviceID).Str("model_set", info.ModelSet).
		Str("backend", info.Backend).Str("device", info.Device).Int("slots", info.Slots).Dur("open", time.Since(t0)).Msg("instance ready")
	return nil
}

//export TRITONBACKEND_ModelInstanceFinalize
func TRITONBACKEND_ModelInstanceFinalize(ci *C.TRITONBACKEND_ModelInstance) (e *C.TRITONSERVER_Error) {
	defer recoverTo(&e)
	v, ok := instances.LoadAndDelete(uintptr(unsafe.Pointer(ci)))
	if !ok {
		return nil
	}
	inst := v.(*instance)
	inst.wg.Wait() // the requests still running answer first
	if err := inst.in.Close(); err != nil {
		return toTriton(err)
	}
	logger.Info().Str("instance", inst.name).Msg("instance closed")
	return nil
}

//export TRITONBACKEND_ModelInstanceExecute
func TRITONBACKEND_ModelInstanceExecute(ci *C.TRITONBACKEND_ModelInstance, reqs **C.TRITONBACKEND_Request, n C.uint32_t) (e *C.TRITONSERVER_Error) {
	defer recoverTo(&e)
	v, ok := instances.Load(uintptr(unsafe.Pointer(ci)))
	if !ok {
		// Triton keeps the requests and answers them with this error.
		return newError(C.TRITONSERVER_ERROR_UNAVAILABLE, "grefine backend: the model instance is not initialised")
	}
	inst := v.(*instance)
	signalsOnStack()
	// The requests are the backend's from here on; the array is not (copy it).
	rs := append([]*C.TRITONBACKEND_Request(nil), unsafe.Slice(reqs, int(n))...)
	for _, r := range rs {
		inst.slots <- struct{}{} // wait for a slot: the time waited is Triton's queue time
		inst.wg.Add(1)
		go inst.serve(r, uint64(C.grf_triton_now_ns()))
	}
	return nil
}

// serve runs one request on the pipeline, answers it, reports its statistics and
// releases it.
func (inst *instance) serve(r *C.TRITONBACKEND_Request, execStart uint64) {
	defer inst.wg.Done()
	defer func() { <-inst.slots }()
	var computeStart, computeEnd uint64
	var outs []triton.Tensor
	call, timeout, err := readCall(r)
	if err == nil {
		err = func() (err error) {
			defer func() {
				if p := recover(); p != nil {
					err = fmt.Errorf("%w: grefine backend: panic: %v", pipeline.ErrInternal, p)
				}
			}()
			ctx := context.Background()
			if timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeoutCause(ctx, timeout, fmt.Errorf("%w: the request's timeout (%v) passed", pipeline.ErrCanceled, timeout))
				defer cancel()
			}
			logger.Debug().Str("instance", inst.name).Str("request_id", call.ID).Msg("request running")
			computeStart = uint64(C.grf_triton_now_ns())
			outs, err = inst.in.Infer(ctx, call)
			computeEnd = uint64(C.grf_triton_now_ns())
			return err
		}()
	}
	if err != nil {
		logger.Info().Str("instance", inst.name).Str("request_id", call.ID).Str("status", pipeline.StatusOf(err).String()).
			Str("code", triton.CodeOf(err).String()).Err(err).Msg("request failed")
	}
	if sendErr := respond(r, outs, err); sendErr != nil {
		logger.Error().Str("instance", inst.name).Str("request_id", call.ID).Err(sendErr).Msg("sending the response failed")
		if err == nil {
			err = sendErr
		}
	}
	execEnd := uint64(C.grf_triton_now_ns())
	if computeStart == 0 {
		computeStart, computeEnd = execEnd, execEnd
	}
	if e := C.TRITONBACKEND_ModelInstanceReportStatistics(inst.c, r, C.bool(err == nil), C.uint64_t(execStart),
		C.uint64_t(computeStart), C.uint64_t(computeEnd), C.uint64_t(execEnd)); e != nil {
		logger.Error().Err(fromTriton("reporting statistics", e)).Msg("statistics")
	}
	if e := C.TRITONBACKEND_ModelInstanceReportBatchStatistics(inst.c, 1, C.uint64_t(execStart),
		C.uint64_t(computeStart), C.uint64_t(computeEnd), C.uint64_t(execEnd)); e != nil {
		logger.Error().Err(fromTriton("reporting batch statistics", e)).Msg("statistics")
	}
	if e := C.TRITONBACKEND_RequestRelease(r, C.GRF_TRITONSERVER_REQUEST_RELEASE_ALL); e != nil {
		logger.Error().Err(fromTriton("releasing the request", e)).Msg("release")
	}
}

// readCall marshals a request out of Triton: id, inputs (views of Triton's buffers, valid
// until the request is released), parameters, requested outputs, the cancellation
// check and the timeout.
func readCall(r *C.TRITONBACKEND_Request) (triton.Call, time.Duration, error) {
	var c triton.Call
	var id *C.char
	if e := C.TRITONBACKEND_RequestId(r, &id); e != nil {
		return c, 0, fromTriton("request id", e)
	}
	if id != nil {
		c.ID = C.GoString(id)
	}
	var n C.uint32_t
	if e := C.TRITONBACKEND_RequestInputCount(r, &n); e != nil {
		return c, 0, fromTriton("input count", e)
	}
	for i := C.uint32_t(0); i < n; i++ {
		t, err := readInput(r, i)
		if err != nil {
			return c, 0, err
		}
		c.Inputs = append(c.Inputs, t)
	}
	if e := C.TRITONBACKEND_RequestParameterCount(r, &n); e != nil {
		return c, 0, fromTriton("parameter count", e)
	}
	for i := C.uint32_t(0); i < n; i++ {
		var key *C.char
		var typ C.TRITONSERVER_ParameterType
		var val unsafe.Pointer
		if e := C.TRITONBACKEND_RequestParameter(r, i, &key, &typ, &val); e != nil {
			return c, 0, fromTriton("parameter", e)
		}
		p := triton.Param{Key: C.GoString(key)}
		switch typ {
		case C.TRITONSERVER_PARAMETER_STRING:
			p.Value = C.GoString((*C.char)(val))
		case C.TRITONSERVER_PARAMETER_INT:
			p.Value = int64(*(*C.int64_t)(val))
		case C.TRITONSERVER_PARAMETER_BOOL:
			p.Value = bool(*(*C.bool)(val))
		case C.TRITONSERVER_PARAMETER_DOUBLE:
			p.Value = float64(*(*C.double)(val))
		default:
			return c, 0, fmt.Errorf("%w: parameter %q: bytes parameters are not supported", pipeline.ErrInput, p.Key)
		}
		c.Params = append(c.Params, p)
	}
	if e := C.TRITONBACKEND_RequestOutputCount(r, &n); e != nil {
		return c, 0, fromTriton("output count", e)
	}
	for i := C.uint32_t(0); i < n; i++ {
		var name *C.char
		if e := C.TRITONBACKEND_RequestOutputName(r, i, &name); e != nil {
			return c, 0, fromTriton("output name", e)
		}
		c.Outputs = append(c.Outputs, C.GoString(name))
	}
	c.Cancelled = func() bool {
		var b C.bool
		if e := C.TRITONBACKEND_RequestIsCancelled(r, &b); e != nil {
			C.TRITONSERVER_ErrorDelete(e)
			return false
		}
		return bool(b)
	}
	var us C.uint64_t
	if e := C.TRITONBACKEND_InferenceRequestTimeoutMicroseconds(r, &us); e != nil {
		return c, 0, fromTriton("request timeout", e)
	}
	return c, time.Duration(us) * time.Microsecond, nil
}

// dataTypes names Triton's data types as KServe v2 does (the ones a grefine model's
// configuration can carry; Triton checks requests against it).
var dataTypes = map[C.TRITONSERVER_DataType]string{
	C.TRITONSERVER_TYPE_BYTES: "BYTES", C.TRITONSERVER_TYPE_FP32: "FP32", C.TRITONSERVER_TYPE_UINT8: "UINT8",
}

// readInput is input i of r, in CPU memory.
func readInput(r *C.TRITONBACKEND_Request, i C.uint32_t) (triton.Tensor, error) {
	var t triton.Tensor
	var in *C.TRITONBACKEND_Input
	if e := C.TRITONBACKEND_RequestInputByIndex(r, i, &in); e != nil {
		return t, fromTriton("input", e)
	}
	var name *C.char
	var dt C.TRITONSERVER_DataType
	var shape *C.int64_t
	var dims, buffers C.uint32_t
	var size C.uint64_t
	if e := C.TRITONBACKEND_InputProperties(in, &name, &dt, &shape, &dims, &size, &buffers); e != nil {
		return t, fromTriton("input properties", e)
	}
	t.Name = C.GoString(name)
	t.Datatype = dataTypes[dt]
	if t.Datatype == "" {
		t.Datatype = fmt.Sprintf("TYPE(%d)", int(dt))
	}
	for _, d := range unsafe.Slice(shape, int(dims)) {
		t.Shape = append(t.Shape, int64(d))
	}
	for b := C.uint32_t(0); b < buffers; b++ {
		var p unsafe.Pointer
		var n C.uint64_t
		mt := C.TRITONSERVER_MemoryType(C.TRITONSERVER_MEMORY_CPU)
		var mtID C.int64_t
		if e := C.TRITONBACKEND_InputBuffer(in, b, &p, &n, &mt, &mtID); e != nil {
			return t, fromTriton("input buffer", e)
		}
		if mt == C.TRITONSERVER_MEMORY_GPU {
			return t, fmt.Errorf("%w: input %q is in GPU memory (CUDA shared memory); send it in CPU memory", pipeline.ErrInput, t.Name)
		}
		view := unsafe.Slice((*byte)(p), int(n))
		if buffers == 1 {
			t.Data = view
		} else {
			t.Data = append(t.Data, view...)
		}
	}
	return t, nil
}

// cTypes are the C data types of the outputs.
var cTypes = map[string]C.TRITONSERVER_DataType{"BYTES": C.TRITONSERVER_TYPE_BYTES, "FP32": C.TRITONSERVER_TYPE_FP32}

// respond sends r's one response: the outputs, or err. It returns why sending failed.
func respond(r *C.TRITONBACKEND_Request, outs []triton.Tensor, err error) error {
	var resp *C.TRITONBACKEND_Response
	if e := C.TRITONBACKEND_ResponseNew(&resp, r); e != nil {
		return fromTriton("new response", e)
	}
	if err == nil {
		err = fillOutputs(resp, outs)
	}
	var terr *C.TRITONSERVER_Error
	if err != nil {
		terr = toTriton(err)
		defer C.TRITONSERVER_ErrorDelete(terr)
	}
	if e := C.TRITONBACKEND_ResponseSend(resp, C.GRF_TRITONSERVER_RESPONSE_COMPLETE_FINAL, terr); e != nil {
		C.TRITONBACKEND_ResponseDelete(resp)
		return fromTriton("sending the response", e)
	}
	return nil
}

// fillOutputs copies the outputs into Triton's buffers.
func fillOutputs(resp *C.TRITONBACKEND_Response, outs []triton.Tensor) error {
	for _, t := range outs {
		name := C.CString(t.Name)
		var out *C.TRITONBACKEND_Output
		e := C.TRITONBACKEND_ResponseOutput(resp, &out, name, cTypes[t.Datatype], (*C.int64_t)(unsafe.Pointer(&t.Shape[0])), C.uint32_t(len(t.Shape)))
		C.free(unsafe.Pointer(name))
		if e != nil {
			return fromTriton("output "+t.Name, e)
		}
		var buf unsafe.Pointer
		mt := C.TRITONSERVER_MemoryType(C.TRITONSERVER_MEMORY_CPU)
		var mtID C.int64_t
		if e := C.TRITONBACKEND_OutputBuffer(out, &buf, C.uint64_t(len(t.Data)), &mt, &mtID); e != nil {
			return fromTriton("output buffer "+t.Name, e)
		}
		if mt == C.TRITONSERVER_MEMORY_GPU {
			return fmt.Errorf("%w: output %q: Triton gave a GPU buffer; grefine writes outputs in CPU memory", pipeline.ErrInternal, t.Name)
		}
		if len(t.Data) > 0 {
			copy(unsafe.Slice((*byte)(buf), len(t.Data)), t.Data)
		}
	}
	return nil
}
