package main

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
#include "shim.h"
*/
import "C"

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"
	"unsafe"

	_ "github.com/grefine/grefine/engine/cpu"  // register the cpu device (the default)
	_ "github.com/grefine/grefine/engine/cuda" // register the cuda and cuda-emu devices (dlopen'd kernels)
	_ "github.com/grefine/grefine/engine/ort"  // register the embedded default backend
	"github.com/grefine/grefine/pipeline"
	"github.com/grefine/grefine/pipeline/imageio"
)

// main is required by -buildmode=c-shared and c-archive; it never runs.
func main() {}

// lib is what a grefine_pipeline handle refers to.
type lib struct {
	p *pipeline.Pipeline
}

//export grf_lib_version
func grf_lib_version() *C.char { return versionString() }

var versionString = sync.OnceValue(func() *C.char { return C.CString(pipeline.Version) })

//export grf_lib_status_string
func grf_lib_status_string(s C.int) *C.char {
	names := statusNames()
	if s < 0 || int(s) >= len(names) {
		return names[pipeline.StatusInternal]
	}
	return names[s]
}

var statusNames = sync.OnceValue(func() []*C.char {
	var out []*C.char
	for s := pipeline.StatusOK; s <= pipeline.StatusInternal; s++ {
		out = append(out, C.CString(s.String()))
	}
	return out
})

//export grf_lib_params_init
func grf_lib_params_init(cp *C.grefine_params) {
	defer func() { _ = recover() }() // cannot fail; never let a panic cross
	paramsToC(pipeline.DefaultParams(), cp)
	cp.long_side, cp.process_size = C.GREFINE_SIZE_DEFAULT, C.GREFINE_SIZE_DEFAULT
}

//export grf_lib_open
func grf_lib_open(opts *C.grefine_options, out *C.uintptr_t, errbuf *C.char, errlen C.size_t) (st C.int) {
	defer guard(&st, errbuf, errlen)
	if out == nil {
		return fail(errbuf, errlen, inputf("grefine_open: pipeline (the out-parameter) is NULL"))
	}
	*out = 0
	cfg, err := configFromC(opts)
	if err != nil {
		return fail(errbuf, errlen, err)
	}
	p, err := pipeline.Open(context.Background(), cfg)
	if err != nil {
		return fail(errbuf, errlen, err)
	}
	*out = C.uintptr_t(newHandle(&lib{p: p}))
	return ok(errbuf, errlen)
}

//export grf_lib_close
func grf_lib_close(cp C.uintptr_t) (st C.int) {
	defer guard(&st, nil, 0)
	if cp == 0 {
		return C.int(pipeline.StatusOK)
	}
	l, err := resolve("grefine_close", uint64(cp), true)
	if err != nil {
		return C.int(pipeline.StatusOf(err))
	}
	_ = l.p.Close() // waits for the calls in flight
	return C.int(pipeline.StatusOK)
}

//export grf_lib_info
func grf_lib_info(cp C.uintptr_t, out **C.char, errbuf *C.char, errlen C.size_t) (st C.int) {
	defer guard(&st, errbuf, errlen)
	if out == nil {
		return fail(errbuf, errlen, inputf("grefine_info: json (the out-parameter) is NULL"))
	}
	*out = nil
	l, err := lookup("grefine_info", cp)
	if err != nil {
		return fail(errbuf, errlen, err)
	}
	js, err := json.Marshal(l.p.Info())
	if err != nil {
		return fail(errbuf, errlen, fmt.Errorf("%w: grefine_info: %v", pipeline.ErrInternal, err))
	}
	*out = C.CString(string(js))
	track(unsafe.Pointer(*out), kindBuffer)
	return ok(errbuf, errlen)
}

//export grf_lib_assess
func grf_lib_assess(cp C.uintptr_t, ci *C.grefine_image, prompt *C.char, cparams *C.grefine_params,
	out **C.grefine_assessment, errbuf *C.char, errlen C.size_t) (st C.int) {
	defer guard(&st, errbuf, errlen)
	return request("grefine_assess", "assessment", cp, ci, prompt, cparams, out, errbuf, errlen, (*pipeline.Pipeline).Assess, assessmentToC, kindAssessment)
}

//export grf_lib_refine
func grf_lib_refine(cp C.uintptr_t, ci *C.grefine_image, prompt *C.char, cparams *C.grefine_params,
	out **C.grefine_refinement, errbuf *C.char, errlen C.size_t) (st C.int) {
	defer guard(&st, errbuf, errlen)
	return request("grefine_refine", "refinement", cp, ci, prompt, cparams, out, errbuf, errlen, (*pipeline.Pipeline).Refine, refinementToC, kindRefinement)
}

// request marshals one assess or refine call: arguments in, run on the pipeline, the
// result copied into C memory.
func request[R any, CR any](fn, what string, cp C.uintptr_t, ci *C.grefine_image, prompt *C.char, cparams *C.grefine_params,
	out **CR, errbuf *C.char, errlen C.size_t,
	run func(*pipeline.Pipeline, context.Context, pipeline.Request) (R, error), toC func(R, float64) (*CR, error), kind resultKind) C.int {
	if out == nil {
		return fail(errbuf, errlen, inputf("%s: %s (the out-parameter) is NULL", fn, what))
	}
	*out = nil
	call, err := newCall(fn, cp, ci, prompt, cparams)
	if err != nil {
		return fail(errbuf, errlen, err)
	}
	defer call.done()
	t0 := time.Now()
	r, err := run(call.l.p, call.ctx, call.req)
	ms := millis(t0)
	if err != nil {
		return fail(errbuf, errlen, err)
	}
	c, err := toC(r, ms)
	if err != nil {
		return fail(errbuf, errlen, err)
	}
	track(unsafe.Pointer(c), kind)
	*out = c
	return ok(errbuf, errlen)
}

//export grf_lib_cancel
func grf_lib_cancel(cp C.uintptr_t, id *C.char) (found C.int) {
	defer func() {
		if recover() != nil {
			found = 0
		}
	}()
	if id == nil {
		return 0
	}
	l, err := resolve("grefine_cancel", uint64(cp), false)
	if err != nil {
		return 0
	}
	if l.p.Cancel(C.GoString(id)) {
		return 1
	}
	return 0
}

//export grf_lib_image_decode
func grf_lib_image_decode(cp C.uintptr_t, data *C.uint8_t, n C.size_t, out **C.grefine_image,
	errbuf *C.char, errlen C.size_t) (st C.int) {
	defer guard(&st, errbuf, errlen)
	if out == nil {
		return fail(errbuf, errlen, inputf("grefine_image_decode: image (the out-parameter) is NULL"))
	}
	*out = nil
	l, err := lookup("grefine_image_decode", cp)
	if err != nil {
		return fail(errbuf, errlen, err)
	}
	if data == nil || n == 0 {
		return fail(errbuf, errlen, inputf("grefine_image_decode: no data (NULL or 0 bytes)"))
	}
	if lim := l.p.Info().Limits.MaxBytes; lim > 0 && uint64(n) > uint64(lim) {
		return fail(errbuf, errlen, inputf("grefine_image_decode: %d bytes, the limit is %d", uint64(n), lim))
	}
	img, err := l.p.DecodeImage(unsafe.Slice((*byte)(unsafe.Pointer(data)), int(n)))
	if err != nil {
		return fail(errbuf, errlen, err)
	}
	ci := (*C.grefine_image)(C.calloc(1, C.sizeof_grefine_image))
	*ci = imageToC(img)
	track(unsafe.Pointer(ci), kindImage)
	*out = ci
	return ok(errbuf, errlen)
}

//export grf_lib_encode_png
func grf_lib_encode_png(ci *C.grefine_image, out **C.uint8_t, n *C.size_t, errbuf *C.char, errlen C.size_t) (st C.int) {
	defer guard(&st, errbuf, errlen)
	if out == nil || n == nil {
		return fail(errbuf, errlen, inputf("grefine_encode_png: png or len (the out-parameters) is NULL"))
	}
	*out, *n = nil, 0
	img, err := imageFromC("grefine_encode_png", ci, imageio.DefaultLimits)
	if err != nil {
		return fail(errbuf, errlen, err)
	}
	var buf bytes.Buffer
	if err := imageio.EncodePNG(&buf, img); err != nil {
		return fail(errbuf, errlen, fmt.Errorf("%w: grefine_encode_png: %v", pipeline.ErrInternal, err))
	}
	*out = (*C.uint8_t)(C.CBytes(buf.Bytes()))
	track(unsafe.Pointer(*out), kindBuffer)
	*n = C.size_t(buf.Len())
	return ok(errbuf, errlen)
}

// call is one assess or refine request, marshalled.
type call struct {
	l      *lib
	ctx    context.Context
	cancel context.CancelFunc
	req    pipeline.Request
}

func newCall(fn string, cp C.uintptr_t, ci *C.grefine_image, prompt *C.char, cparams *C.grefine_params) (*call, error) {
	l, err := lookup(fn, cp)
	if err != nil {
		return nil, err
	}
	img, err := imageFromC(fn, ci, l.p.Info().Limits)
	if err != nil {
		return nil, err
	}
	pr, ro, err := paramsFromC(fn, l.p.DefaultParams(), cparams)
	if err != nil {
		return nil, err
	}
	c := &call{l: l, ctx: context.Background(), cancel: func() {}}
	if ro.timeout > 0 {
		c.ctx, c.cancel = context.WithTimeout(c.ctx, ro.timeout)
	}
	c.req = pipeline.Request{ID: ro.id, Image: img, Params: &pr}
	if prompt != nil {
		c.req.Prompt = C.GoString(prompt)
	}
	if ro.progress != nil {
		fn, user := ro.progress, ro.user
		c.req.Observer = func(e pipeline.Event) error {
			step := e.Step
			if e.Stage == "queued" {
				step = e.Position
			}
			cs := C.CString(e.Stage)
			defer C.free(unsafe.Pointer(cs))
			if r := C.grf_call_progress(fn, user, cs, C.int(step), C.int(e.Total)); r != 0 {
				return fmt.Errorf("the progress callback returned %d at %s step %d", int(r), e.Stage, step)
			}
			return nil
		}
	}
	return c, nil
}

func (c *call) done() { c.cancel() }

// lookup returns the pipeline behind a handle: NULL or a value that is no handle is
// GREFINE_ERR_INPUT, a closed one GREFINE_ERR_UNAVAILABLE (handles.go).
func lookup(fn string, cp C.uintptr_t) (*lib, error) { return resolve(fn, uint64(cp), false) }

// guard turns a Go panic on the calling goroutine into GREFINE_ERR_INTERNAL with its
// message. Deferred first by every exported function that returns a status.
func guard(st *C.int, errbuf *C.char, errlen C.size_t) {
	if r := recover(); r != nil {
		writeErr(errbuf, errlen, fmt.Sprintf("libgrefine: internal error (Go panic): %v", r))
		*st = C.int(pipeline.StatusInternal)
	}
}

// fail writes err's message and returns its status (pipeline.StatusOf: the one table).
func fail(errbuf *C.char, errlen C.size_t, err error) C.int {
	writeErr(errbuf, errlen, err.Error())
	return C.int(pipeline.StatusOf(err))
}

func ok(errbuf *C.char, errlen C.size_t) C.int {
	writeErr(errbuf, errlen, "")
	return C.int(pipeline.StatusOK)
}

// writeErr copies msg into the caller's buffer, truncated on a UTF-8 boundary and always
// NUL-terminated.
func writeErr(buf *C.char, n C.size_t, msg string) {
	if buf == nil || n == 0 {
		return
	}
	b := unsafe.Slice((*byte)(unsafe.Pointer(buf)), int(n))
	msg = truncateUTF8(msg, int(n)-1)
	copy(b, msg)
	b[len(msg)] = 0
}

// truncateUTF8 cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// inputError is a bad argument of the C API: it wraps pipeline.ErrInput with its own
// message.
type inputError struct{ msg string }

func (e *inputError) Error() string { return e.msg }
func (e *inputError) Unwrap() error { return pipeline.ErrInput }

func inputf(format string, a ...any) error { return &inputError{fmt.Sprintf(format, a...)} }

func millis(t0 time.Time) float64 { return float64(time.Since(t0).Microseconds()) / 1000 }
