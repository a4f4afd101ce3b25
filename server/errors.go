package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/grefine/grefine/pipeline"
)

// httpError is an error of the HTTP layer itself (no pipeline outcome): unknown route,
// media type, body too big, missing token.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func httpErrorf(code int, format string, a ...any) error {
	return &httpError{code: code, msg: fmt.Sprintf(format, a...)}
}

// inputErrorf is a bad request in the pipeline's terms (400 through the one table).
func inputErrorf(format string, a ...any) error {
	return fmt.Errorf("%w: %s", pipeline.ErrInput, fmt.Sprintf(format, a...))
}

// statusCode is the HTTP status of err: the HTTP layer's own code, 413 for a body over
// the limit, else the pipeline's table (pipeline.HTTPStatus).
func statusCode(err error) int {
	var he *httpError
	var mb *http.MaxBytesError
	switch {
	case errors.As(err, &he):
		return he.code
	case errors.As(err, &mb):
		return http.StatusRequestEntityTooLarge
	}
	return pipeline.HTTPStatus(err)
}

// statusName is the class of err for the REST error body and the failure metric's
// reason label: the pipeline's status names, or "http" for the HTTP layer's own errors.
func statusName(err error) string {
	var he *httpError
	var mb *http.MaxBytesError
	if errors.As(err, &he) || errors.As(err, &mb) {
		return "request"
	}
	return pipeline.StatusOf(err).String()
}

// errorBody is the REST error response.
type errorBody struct {
	Error     string `json:"error"`
	Status    string `json:"status"`
	RequestID string `json:"request_id,omitempty"`
}

// retryAfter is the Retry-After of a 429, in seconds.
const retryAfter = 1

// writeError answers err in the REST shape ({"error", "status", "request_id"}); v2
// selects the KServe shape ({"error"}).
func writeError(w http.ResponseWriter, r *http.Request, err error, v2 bool) {
	code := statusCode(err)
	if code == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	}
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="grefine"`)
	}
	if v2 {
		writeJSON(w, code, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, code, errorBody{Error: err.Error(), Status: statusName(err), RequestID: requestIDOf(r)})
}

// writeJSON answers v as JSON with code.
func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code = http.StatusInternalServerError
		b, _ = json.Marshal(errorBody{Error: "encoding the response: " + err.Error(), Status: "internal"})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// notFound answers every request no route matches: 405 with Allow when the path has
// routes for other methods, else 404.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	if _, pat := s.paths.Handler(r); pat != "" {
		w.Header().Set("Allow", s.allow[pat])
		writeError(w, r, httpErrorf(http.StatusMethodNotAllowed, "%s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, s.allow[pat]), isV2(r))
		return
	}
	writeError(w, r, httpErrorf(http.StatusNotFound, "no route %s %s", r.Method, r.URL.Path), isV2(r))
}

func isV2(r *http.Request) bool {
	return len(r.URL.Path) >= 3 && r.URL.Path[:3] == "/v2"
}
