package main

/*
#include "shim.h"
*/
import "C"

import (
	"fmt"
	"sync"
	"unsafe"

	"github.com/grefine/grefine/pipeline"
)

// Handles. A grefine_pipeline* is never a pointer to memory: it is an opaque value that
// names an entry of the table below by index and generation, with the top bit set (a
// non-canonical address: no process, Go's heap included, ever maps it, so the Go garbage
// collector can meet it on a stack without taking it for one of its objects). Closing
// bumps the entry's generation, so a closed handle (a use after close, a second close)
// is recognised for what it is and answered GREFINE_ERR_UNAVAILABLE, never a crash; a
// value that was never a handle is GREFINE_ERR_INPUT.

const handleTag = uint64(1) << 63

type handleEntry struct {
	gen uint32
	lib *lib // nil once closed
}

var handles struct {
	sync.Mutex
	table []handleEntry
	free  []int
}

// newHandle registers l and returns its handle value.
func newHandle(l *lib) uint64 {
	handles.Lock()
	defer handles.Unlock()
	var i int
	if n := len(handles.free); n > 0 {
		i, handles.free = handles.free[n-1], handles.free[:n-1]
	} else {
		handles.table = append(handles.table, handleEntry{})
		i = len(handles.table) - 1
	}
	e := &handles.table[i]
	e.gen++
	if e.gen == 0 {
		e.gen = 1
	}
	e.lib = l
	return handleTag | uint64(i)<<32 | uint64(e.gen)
}

// resolve finds the pipeline of handle h; with closing, it also retires the handle.
func resolve(fn string, h uint64, closing bool) (*lib, error) {
	if h == 0 {
		return nil, inputf("%s: pipeline is NULL", fn)
	}
	i, gen := int(h>>32&0x7fffffff), uint32(h)
	handles.Lock()
	defer handles.Unlock()
	if h&handleTag == 0 || i >= len(handles.table) || gen == 0 || gen > handles.table[i].gen {
		return nil, inputf("%s: %#x is not a pipeline handle of this library (not from grefine_open)", fn, h)
	}
	e := &handles.table[i]
	if gen != e.gen || e.lib == nil {
		return nil, fmt.Errorf("%w: %s: the pipeline was closed (grefine_close); its handle is invalid", pipeline.ErrClosed, fn)
	}
	l := e.lib
	if closing {
		e.lib = nil
		handles.free = append(handles.free, i)
	}
	return l, nil
}

// Results. Every struct and buffer the library returns is recorded here until its free
// function takes it back: freeing something that is not a live result of the expected
// kind (a second free, a pointer the library did not return, an assessment owned by a
// refinement) is GREFINE_ERR_INPUT and frees nothing. The freed structs themselves go
// through shim.c's quarantine, so malloc cannot hand a just-freed address to a new
// result while a stale pointer to it may still be freed a second time.

type resultKind int

// Kinds of results; the values are shim.h's GRF_KIND_*.
const (
	kindAssessment resultKind = C.GRF_KIND_ASSESSMENT
	kindRefinement resultKind = C.GRF_KIND_REFINEMENT
	kindImage      resultKind = C.GRF_KIND_IMAGE
	kindBuffer     resultKind = C.GRF_KIND_BUFFER
)

var results struct {
	sync.Mutex
	live map[uintptr]resultKind
}

// track records a result handed to the caller.
func track(p unsafe.Pointer, k resultKind) {
	results.Lock()
	defer results.Unlock()
	if results.live == nil {
		results.live = map[uintptr]resultKind{}
	}
	results.live[uintptr(p)] = k
}

//export grf_lib_release
func grf_lib_release(p C.uintptr_t, k C.int) (st C.int) {
	defer func() {
		if recover() != nil {
			st = C.int(pipeline.StatusInternal)
		}
	}()
	results.Lock()
	defer results.Unlock()
	if got, ok := results.live[uintptr(p)]; !ok || got != resultKind(k) {
		return C.int(pipeline.StatusInput)
	}
	delete(results.live, uintptr(p))
	return C.int(pipeline.StatusOK)
}

// liveResults is the number of results not freed yet (tests).
func liveResults() int {
	results.Lock()
	defer results.Unlock()
	return len(results.live)
}

// guarded runs f as every exported function runs its body (guard deferred first) and
// returns the status and message the caller would get (tests).
func guarded(f func()) (pipeline.Status, string) {
	buf := (*C.char)(C.malloc(256))
	defer C.free(unsafe.Pointer(buf))
	st := func() (st C.int) {
		defer guard(&st, buf, 256)
		f()
		return ok(buf, 256)
	}()
	return pipeline.Status(st), C.GoString(buf)
}

// roundTripParams writes p into a C grefine_params and reads it back (tests).
func roundTripParams(p pipeline.Params) (pipeline.Params, error) {
	return roundTripParamsSized(p, C.sizeof_grefine_params)
}

// roundTripParamsSized is roundTripParams by a caller whose struct_size is size.
func roundTripParamsSized(p pipeline.Params, size C.size_t) (pipeline.Params, error) {
	cp := (*C.grefine_params)(C.calloc(1, C.sizeof_grefine_params))
	defer C.free(unsafe.Pointer(cp))
	paramsToC(p, cp)
	cp.struct_size = size
	got, _, err := paramsFromC("test", pipeline.DefaultParams(), cp)
	return got, err
}
