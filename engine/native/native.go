package native

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Errors of this package: every error Load returns is an *Error that unwraps to one of
// them.
var (
	// ErrNotFound: no library at any place searched.
	ErrNotFound = errors.New("native: library not found")
	// ErrLoad: a library was found but did not load (Spec.Open failed).
	ErrLoad = errors.New("native: library does not load")
	// ErrConflict: the process already loaded this kind of library from another file.
	ErrConflict = errors.New("native: another library already loaded")
)

// Error is an error of Load: its message says what happened (without the sentinel's
// text); it unwraps to ErrNotFound, ErrLoad or ErrConflict, and to the loader's own error.
type Error struct {
	Kind  error
	Msg   string
	Cause error
}

func (e *Error) Error() string { return e.Msg }

// Unwrap returns the sentinel and the cause.
func (e *Error) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Kind, e.Cause}
	}
	return []error{e.Kind}
}

func newError(kind, cause error, format string, args ...any) error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...), Cause: cause}
}

// Spec describes one kind of native library.
type Spec struct {
	// Name prefixes messages ("cuda").
	Name string
	// What names the library in messages ("libgrefine_cuda.so", "onnxruntime library").
	What string
	// File is the file name looked up by the system loader (step 4), e.g.
	// "libgrefine_cuda.so"; "" skips that step.
	File string
	// Flag says how an explicit path is given, for messages ("--trt-lib", "option LibPath").
	Flag string
	// Env is the environment variable of step 2 ("GRF_CUDA_LIB").
	Env string
	// Beside lists paths relative to the running binary's directory (step 3), in order.
	Beside []string
	// Hint ends the not-found message ("run `make native`").
	Hint string
	// Open loads the library at path (an absolute path, or File for the system loader). It
	// returns nil once the library is usable.
	Open func(path string) error
}

// Result is a loaded library.
type Result struct {
	// Path is what was loaded: an absolute path, or the bare file name the system loader
	// resolved.
	Path string
	// Source names the step that found it ("--trt-lib", "$GRF_CUDA_LIB", "beside the
	// binary", "system loader").
	Source string
}

// Library loads one kind of library once per process; its methods are safe for
// concurrent use.
type Library struct {
	spec Spec
	exe  func() (string, error) // os.Executable; replaced by tests

	mu       sync.Mutex
	loaded   *Result
	failures map[string]error // by request
}

// New makes the Library of spec. It loads nothing.
func New(spec Spec) *Library {
	return &Library{spec: spec, exe: os.Executable, failures: map[string]error{}}
}

// Spec returns the library's description.
func (l *Library) Spec() Spec { return l.spec }

// Loaded returns the loaded library, if any.
func (l *Library) Loaded() (Result, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.loaded == nil {
		return Result{}, false
	}
	return *l.loaded, true
}

// candidate is one place of the search: where it came from and what to open.
type candidate struct {
	source string
	path   string
	system bool // a bare name for the system loader
}

// Load loads the library (see the package documentation for the search order and the
// caching) and returns what was loaded.
func (l *Library) Load(explicit string) (Result, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.spec
	var want *candidate
	var key string
	switch {
	case explicit != "":
		want = &candidate{source: s.Flag, path: absPath(explicit)}
		key = "explicit\x00" + want.path
	case s.Env != "" && os.Getenv(s.Env) != "":
		want = &candidate{source: "$" + s.Env, path: absPath(os.Getenv(s.Env))}
		key = "env\x00" + want.path
	default:
		key = "search"
	}
	if l.loaded != nil {
		if want == nil || want.path == l.loaded.Path {
			return *l.loaded, nil
		}
		loaded := fmt.Sprintf("%s is already loaded from %s (%s)", s.What, l.loaded.Path, l.loaded.Source)
		if _, err := os.Stat(want.path); err != nil { // not found, and could not be loaded anyway
			return Result{}, newError(ErrNotFound, ErrConflict, "%s: %s not found: tried %s (%s): %s; %s, one process loads one%s",
				s.Name, s.What, want.path, want.source, statReason(err), loaded, l.hint())
		}
		return Result{}, newError(ErrConflict, nil, "%s: %s; cannot also load %s (%s): one process loads one",
			s.Name, loaded, want.path, want.source)
	}
	if err, ok := l.failures[key]; ok {
		return Result{}, err
	}
	r, err := l.search(want)
	if err != nil {
		l.failures[key] = err
		return Result{}, err
	}
	l.loaded = &r
	return r, nil
}

// Locate returns the library Load(explicit) would try, without loading anything: the
// loaded library when there is one (and explicit names no other), else the explicit path,
// the variable's path, the first existing place beside the binary, or File for the system
// loader (source "system loader"); explicit and variable paths are returned whether or
// not they exist.
func (l *Library) Locate(explicit string) Result {
	s := l.spec
	switch {
	case explicit != "":
		p := absPath(explicit)
		if r, ok := l.Loaded(); ok && r.Path == p {
			return r
		}
		return Result{Path: p, Source: s.Flag}
	case s.Env != "" && os.Getenv(s.Env) != "":
		p := absPath(os.Getenv(s.Env))
		if r, ok := l.Loaded(); ok && r.Path == p {
			return r
		}
		return Result{Path: p, Source: "$" + s.Env}
	}
	if r, ok := l.Loaded(); ok {
		return r
	}
	if exe, err := l.exe(); err == nil {
		for _, rel := range s.Beside {
			p := filepath.Clean(filepath.Join(filepath.Dir(exe), rel))
			if st, err := os.Stat(p); err == nil && !st.IsDir() {
				return Result{Path: p, Source: "beside the binary"}
			}
		}
	}
	return Result{Path: s.File, Source: "system loader"}
}

// search tries want, or the default places, and loads the first library found.
func (l *Library) search(want *candidate) (Result, error) {
	s := l.spec
	var tried []string
	if want != nil {
		if _, err := os.Stat(want.path); err != nil {
			return Result{}, newError(ErrNotFound, err, "%s: %s not found: tried %s (%s): %s%s", s.Name, s.What,
				want.path, want.source, statReason(err), l.hint())
		}
		return l.open(*want, nil)
	}
	tried = append(tried, s.Flag+" (not given)")
	if s.Env != "" {
		tried = append(tried, "$"+s.Env+" (not set)")
	}
	var cands []candidate
	if exe, err := l.exe(); err != nil {
		tried = append(tried, fmt.Sprintf("beside the binary (its path is unknown: %v)", err))
	} else {
		dir := filepath.Dir(exe)
		for _, rel := range s.Beside {
			cands = append(cands, candidate{source: "beside the binary", path: filepath.Clean(filepath.Join(dir, rel))})
		}
	}
	var skipped []string
	for _, c := range cands {
		if _, err := os.Stat(c.path); err != nil {
			skipped = append(skipped, fmt.Sprintf("%s (%s)", c.path, statReason(err)))
			continue
		}
		return l.open(c, skipped)
	}
	tried = append(tried, skipped...)
	if s.File != "" {
		c := candidate{source: "system loader", path: s.File, system: true}
		if err := s.Open(c.path); err != nil {
			tried = append(tried, fmt.Sprintf("system loader %s (%s)", s.File, shortReason(err)))
			return Result{}, newError(ErrNotFound, err, "%s: %s not found: tried %s%s", s.Name, s.What,
				strings.Join(tried, ", "), l.hint())
		}
		return Result{Path: c.path, Source: c.source}, nil
	}
	return Result{}, newError(ErrNotFound, nil, "%s: %s not found: tried %s%s", s.Name, s.What, strings.Join(tried, ", "), l.hint())
}

// open loads an existing candidate; tried lists the places beside the binary skipped
// before it.
func (l *Library) open(c candidate, tried []string) (Result, error) {
	s := l.spec
	if err := s.Open(c.path); err != nil {
		before := ""
		if len(tried) > 0 {
			before = " (after " + strings.Join(tried, ", ") + ")"
		}
		return Result{}, newError(ErrLoad, err, "%s: cannot load %s %s (%s)%s: %v", s.Name, s.What, c.path, c.source, before, err)
	}
	return Result{Path: c.path, Source: c.source}, nil
}

func (l *Library) hint() string {
	if l.spec.Hint == "" {
		return ""
	}
	return "; " + l.spec.Hint
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

func statReason(err error) string {
	if errors.Is(err, os.ErrNotExist) {
		return "no such file"
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// shortReason keeps the loader's reason after the file name ("cannot open shared object
// file: No such file or directory").
func shortReason(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": cannot open shared object file"); i >= 0 {
		return strings.TrimPrefix(msg[i:], ": ")
	}
	return msg
}
