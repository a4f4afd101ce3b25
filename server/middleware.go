package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/grefine/grefine/pipeline"
)

// The middleware, outermost first: requestID, accessLog, recoverPanic, limitBody, and
// per route auth.

type ctxKey int

const (
	requestIDKey ctxKey = iota
	ownerKey
)

// maxRequestID bounds a client's X-Request-Id (the pipeline's limit).
const maxRequestID = pipeline.MaxRequestID

// requestID gives every request an id: the client's X-Request-Id, or a generated one
// (128 random bits, unguessable). It is echoed in the response header and reaches the
// pipeline as the request's id, scoped to the request's token (ownerOf): a client-chosen
// id such as job-1 names only that client's request.
func (s *Server) requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if id == "" {
			id = newID()
		} else if err := checkID(id); err != nil {
			w.Header().Set("X-Request-Id", "")
			writeError(w, r, err, isV2(r))
			return
		}
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey, id)))
	})
}

// checkID refuses ids that are empty, too long or not printable ASCII.
func checkID(id string) error {
	if id == "" || len(id) > maxRequestID {
		return inputErrorf("request id: %d bytes, want 1 to %d", len(id), maxRequestID)
	}
	for _, c := range []byte(id) {
		if c <= ' ' || c > '~' {
			return inputErrorf("request id: only printable ASCII without spaces")
		}
	}
	return nil
}

func newID() string { return pipeline.NewRequestID() }

// requestIDOf is the request's id (set by the requestID middleware).
func requestIDOf(r *http.Request) string {
	id, _ := r.Context().Value(requestIDKey).(string)
	return id
}

// accessLog writes one JSON line per request through zerolog.
func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t0 := time.Now()
		rec := &recorder{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(rec, r)
		route := r.Pattern
		if route == "" || route == "/" {
			route = "unmatched"
		}
		s.metrics.httpReqs.WithLabelValues(route, strconv.Itoa(rec.code)).Inc()
		s.log.Info().Str("request_id", requestIDOf(r)).Str("method", r.Method).Str("path", r.URL.Path).
			Int("status", rec.code).Int64("bytes", rec.n).Float64("ms", float64(time.Since(t0).Microseconds())/1000).
			Str("remote", r.RemoteAddr).Msg("request")
	})
}

// recorder remembers the status and size of a response; it passes Flush (for SSE) and
// Unwrap (for http.ResponseController) through.
type recorder struct {
	http.ResponseWriter
	code    int
	n       int64
	written bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.written {
		r.code, r.written = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.written = true
	n, err := r.ResponseWriter.Write(b)
	r.n += int64(n)
	return n, err
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if h, ok := r.ResponseWriter.(http.Hijacker); ok {
		return h.Hijack()
	}
	return nil, nil, fmt.Errorf("server: the connection cannot be hijacked")
}

// recoverPanic turns a handler's panic into a 500 with the request id, logged with
// its stack; the process keeps serving.
func (s *Server) recoverPanic(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error().Str("request_id", requestIDOf(r)).Interface("panic", v).Bytes("stack", debug.Stack()).Msg("handler panicked")
				writeError(w, r, httpErrorf(http.StatusInternalServerError, "internal error (request %s)", requestIDOf(r)), isV2(r))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// writeDeadline bounds every write of a response by Config.WriteTimeout from the
// moment it starts: a client that never reads its answer holds the connection and the
// handler's goroutine for that long at most. The compute before the first write is
// not bounded by it (Config.Timeout bounds inference), nor are the gaps between
// server-sent events. The deadline is cleared when a request starts, so a keep-alive
// connection's next request does not inherit it.
func (s *Server) writeDeadline(next http.Handler) http.Handler {
	if s.cfg.WriteTimeout <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		_ = rc.SetWriteDeadline(time.Time{})
		next.ServeHTTP(&deadlineWriter{ResponseWriter: w, rc: rc, d: s.cfg.WriteTimeout}, r)
	})
}

// deadlineWriter sets the write deadline before each write.
type deadlineWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
	d  time.Duration
}

func (w *deadlineWriter) arm() { _ = w.rc.SetWriteDeadline(time.Now().Add(w.d)) }

func (w *deadlineWriter) WriteHeader(code int) { w.arm(); w.ResponseWriter.WriteHeader(code) }

func (w *deadlineWriter) Write(b []byte) (int, error) { w.arm(); return w.ResponseWriter.Write(b) }

func (w *deadlineWriter) Flush() {
	w.arm()
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *deadlineWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// limitBody refuses bodies over MaxBody: at once when Content-Length says so, else
// when reading passes the limit (http.MaxBytesError, answered 413).
func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > s.cfg.MaxBody {
			writeError(w, r, &http.MaxBytesError{Limit: s.cfg.MaxBody}, isV2(r))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBody)
		next.ServeHTTP(w, r)
	})
}

// auth requires "Authorization: Bearer <token>" with one of Config.Tokens when tokens
// are configured (the scheme in any case, RFC 7235). Tokens are compared as SHA-256
// digests in constant time, every token every time, so neither the length nor the
// position of a match shows in the timing. The request then belongs to its token: the
// digest is its owner in the pipeline (ownerOf).
func (s *Server) auth(next http.Handler) http.Handler {
	if len(s.tokens) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, given, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		given = strings.TrimLeft(given, " ")
		if !strings.EqualFold(scheme, "Bearer") || !s.validToken(given) {
			writeError(w, r, httpErrorf(http.StatusUnauthorized, "a valid bearer token is required (Authorization: Bearer <token>)"), isV2(r))
			return
		}
		g := hashToken(given)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ownerKey, hex.EncodeToString(g[:]))))
	})
}

// ownerOf is the owner of the request's pipeline requests: its token's SHA-256 in hex,
// or "" without tokens (one principal).
func ownerOf(r *http.Request) string {
	o, _ := r.Context().Value(ownerKey).(string)
	return o
}

func (s *Server) validToken(given string) bool {
	g := hashToken(given)
	match := 0
	for _, t := range s.tokens {
		match |= subtle.ConstantTimeCompare(g[:], t[:])
	}
	return match == 1
}

func hashToken(t string) [32]byte { return sha256.Sum256([]byte(t)) }

// LoadTokens reads a tokens file: one bearer token per line; a UTF-8 byte order mark
// is skipped, as are blank lines and lines starting with #; surrounding spaces (and a
// CR) are trimmed. A file without a token is an error (it would lock every client out).
func LoadTokens(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("server: tokens: %w", err)
	}
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	var out []string
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.ContainsAny(line, " \t") {
			return nil, fmt.Errorf("server: tokens: %s line %d: a token holds no spaces", path, i+1)
		}
		out = append(out, line)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("server: tokens: %s holds no token", path)
	}
	return out, nil
}
