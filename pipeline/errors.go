package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/modelset"
	"github.com/grefine/grefine/pipeline/assess"
	"github.com/grefine/grefine/pipeline/imageio"
	"github.com/grefine/grefine/pipeline/refine"
	"github.com/grefine/grefine/pipeline/syntax"
)

// Sentinel errors. Every error a Pipeline returns wraps exactly one of them (StatusOf
// finds it); the front ends map them through the one table below, so the CLI's exit codes,
// the server's HTTP codes and libgrefine's grefine_status cannot disagree.
var (
	// ErrInput: the request is wrong (image, prompt, parameters); retrying it unchanged
	// fails again.
	ErrInput = errors.New("pipeline: bad input")
	// ErrBusy: no execution slot became free before the request's deadline, or the wait
	// queue is full. Retry later.
	ErrBusy = errors.New("pipeline: busy")
	// ErrUnavailable: something the configuration needs is missing here (model set,
	// ONNX Runtime, a GPU, a stage that was not loaded).
	ErrUnavailable = errors.New("pipeline: unavailable")
	// ErrCanceled: the request was cancelled (context, Cancel, a progress observer) or
	// its deadline passed while it ran.
	ErrCanceled = errors.New("pipeline: canceled")
	// ErrInternal: a bug or an engine failure; the message says which.
	ErrInternal = errors.New("pipeline: internal error")
	// ErrClosed: the pipeline was closed (reported as unavailable).
	ErrClosed = errors.New("pipeline: closed")
)

// Status is the class of an outcome. Its numeric values are libgrefine's grefine_status
// values (GREFINE_OK = 0, GREFINE_ERR_INPUT = 1, ...).
type Status int

// Statuses, in grefine_status order.
const (
	StatusOK Status = iota
	StatusInput
	StatusBusy
	StatusUnavailable
	StatusCanceled
	StatusInternal
)

// statusTable is the one mapping of outcomes onto front-end codes.
var statusTable = [...]struct {
	name string
	exit int // CLI exit status
	http int // HTTP status
}{
	StatusOK:          {"ok", 0, http.StatusOK},
	StatusInput:       {"input", 2, http.StatusBadRequest},
	StatusBusy:        {"busy", 75, http.StatusTooManyRequests},
	StatusUnavailable: {"unavailable", 69, http.StatusServiceUnavailable},
	StatusCanceled:    {"canceled", 130, 499},
	StatusInternal:    {"internal", 1, http.StatusInternalServerError},
}

// String is the status's lowercase name ("input").
func (s Status) String() string {
	if s < 0 || int(s) >= len(statusTable) {
		return "internal"
	}
	return statusTable[s].name
}

// ExitCode is the CLI's exit status for s: 0 ok, 2 bad input or usage, 75 busy
// (EX_TEMPFAIL), 69 unavailable (EX_UNAVAILABLE), 130 cancelled, 1 internal.
func (s Status) ExitCode() int {
	if s < 0 || int(s) >= len(statusTable) {
		return 1
	}
	return statusTable[s].exit
}

// HTTPStatus is the server's status code for s (499, nginx's "client closed request",
// for a cancelled request).
func (s Status) HTTPStatus() int {
	if s < 0 || int(s) >= len(statusTable) {
		return http.StatusInternalServerError
	}
	return statusTable[s].http
}

// StatusOf classifies err: nil is StatusOK; the pipeline's sentinels map onto their
// status; errors of the packages below (bad images, prompts and parameters; missing
// libraries; context cancellation) are classified as the pipeline would wrap them;
// anything else is StatusInternal.
func StatusOf(err error) Status {
	switch {
	case err == nil:
		return StatusOK
	case errors.Is(err, ErrInput):
		return StatusInput
	case errors.Is(err, ErrBusy):
		return StatusBusy
	case errors.Is(err, ErrUnavailable), errors.Is(err, ErrClosed):
		return StatusUnavailable
	case errors.Is(err, ErrCanceled), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return StatusCanceled
	case errors.Is(err, ErrInternal):
		return StatusInternal
	case isInputErr(err):
		return StatusInput
	case errors.Is(err, engine.ErrUnavailable), errors.Is(err, modelset.ErrManifest), errors.Is(err, modelset.ErrMissing),
		errors.Is(err, modelset.ErrMismatch), errors.Is(err, modelset.ErrUnknown):
		return StatusUnavailable
	}
	return StatusInternal
}

// HTTPStatus is StatusOf(err).HTTPStatus(), except that a passed deadline is 504.
func HTTPStatus(err error) int {
	if errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, ErrBusy) {
		return http.StatusGatewayTimeout
	}
	return StatusOf(err).HTTPStatus()
}

func isInputErr(err error) bool {
	for _, e := range []error{assess.ErrImage, assess.ErrPrompt, refine.ErrInput, refine.ErrConfig, imageio.ErrDecode, imageio.ErrRead, imageio.ErrLimit,
		syntax.ErrEmpty, syntax.ErrInvalidUTF8, syntax.ErrTooLong} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// classify wraps err in the sentinel StatusOf gives it (nil stays nil). The message stays
// the cause's own; errors.Is finds both the sentinel and the cause.
func classify(err error) error {
	if err == nil {
		return nil
	}
	for _, s := range []error{ErrInput, ErrBusy, ErrUnavailable, ErrCanceled, ErrInternal, ErrClosed} {
		if errors.Is(err, s) {
			return err
		}
	}
	var s error
	switch StatusOf(err) {
	case StatusInput:
		s = ErrInput
	case StatusUnavailable:
		s = ErrUnavailable
	case StatusCanceled:
		s = ErrCanceled
	default:
		s = ErrInternal
	}
	return &classified{sentinel: s, cause: err}
}

// classified is a cause tagged with its sentinel.
type classified struct{ sentinel, cause error }

func (e *classified) Error() string   { return e.cause.Error() }
func (e *classified) Unwrap() []error { return []error{e.sentinel, e.cause} }

// inputf is an ErrInput with a message.
func inputf(format string, a ...any) error {
	return &classified{sentinel: ErrInput, cause: fmt.Errorf(format, a...)}
}
