package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/grefine/grefine/pipeline"
)

// ownedNames are the files a run may write into an output directory; a run removes the
// ones it did not write this time, so a directory never mixes files of two runs.
var ownedNames = []string{"report.json", "refined.png", "p_map.png", "a_map.png", "mask.png", "overlay.png",
	"p_mask.png", "a_mask.png", "p_map.npy", "a_map.npy", "mask.npy",
	"bench.json", "bench.md", "latency_cdf.png", "throughput.png", "gpu_timeline.png"}

// outDir is an output directory held by one run: created if missing, locked
// (flock on .grefine.lock, so two runs cannot write into one directory at once) and
// probed for writing before any model work. Files are written into a staging directory
// inside it and moved into place by commit; abort (or a forced exit) removes the staging
// directory and leaves the previous contents untouched.
type outDir struct {
	dir     string
	lock    *os.File
	staging string
	created bool
}

// openOut prepares path. Errors are usage errors: they come from what the user typed.
func openOut(path string) (*outDir, error) {
	if path == "" {
		return nil, usagef("--out is required")
	}
	o := &outDir{dir: path}
	st, err := os.Stat(path)
	switch {
	case err == nil && !st.IsDir():
		return nil, usagef("--out %s exists and is not a directory", path)
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(path, 0o755); err != nil {
			return nil, usagef("--out %s cannot be created: %v", path, errors.Unwrap(err))
		}
		o.created = true
	case err != nil:
		return nil, usagef("--out %s: %v", path, err)
	}
	f, err := os.OpenFile(filepath.Join(path, ".grefine.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		o.removeIfCreated()
		return nil, usagef("--out %s is not writable: %v", path, errors.Unwrap(err))
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, actionError{fmt.Errorf("%w: another grefine run is writing into --out %s", pipeline.ErrBusy, path)}
	}
	o.lock = f
	if o.staging, err = os.MkdirTemp(path, ".staging-"); err != nil {
		o.close()
		o.removeIfCreated()
		return nil, usagef("--out %s is not writable: %v", path, errors.Unwrap(err))
	}
	stagingMu.Lock()
	stagingDirs[o.staging] = true
	stagingMu.Unlock()
	return o, nil
}

// stage returns the staging path of a file (sub may name a batch job's folder).
func (o *outDir) stage(sub, name string) (string, error) {
	d := filepath.Join(o.staging, sub)
	stagingMu.Lock()
	defer stagingMu.Unlock()
	if stagingClosed {
		return "", errInterrupted
	}
	if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return "", err // never MkdirAll: a staging folder removed by a forced exit stays removed
	}
	return filepath.Join(d, name), nil
}

// commit moves the staged files of sub into place: the owned files sub does not have
// this time are removed, then each staged file is renamed over its old version.
func (o *outDir) commit(sub string) error {
	src := filepath.Join(o.staging, sub)
	dst := filepath.Join(o.dir, sub)
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	staged := map[string]bool{}
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range ents {
		staged[e.Name()] = true
	}
	for _, n := range ownedNames {
		if !staged[n] {
			if err := os.Remove(filepath.Join(dst, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
	}
	for _, e := range ents {
		if err := os.Rename(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			return err
		}
	}
	if sub != "" {
		return os.Remove(src)
	}
	return nil
}

// discard drops what sub staged (a failed batch job).
func (o *outDir) discard(sub string) { os.RemoveAll(filepath.Join(o.staging, sub)) }

// finish removes the staging directory and releases the lock; with ok false, a
// directory this run created is removed again if nothing was committed into it.
func (o *outDir) finish(ok bool) {
	if o == nil {
		return
	}
	os.RemoveAll(o.staging)
	stagingMu.Lock()
	delete(stagingDirs, o.staging)
	stagingMu.Unlock()
	o.close()
	if !ok {
		o.removeIfCreated()
	}
}

func (o *outDir) close() {
	if o.lock != nil {
		o.lock.Close()
		o.lock = nil
	}
}

// removeIfCreated removes the directory if this run created it and it holds nothing
// but the lock file.
func (o *outDir) removeIfCreated() {
	if !o.created {
		return
	}
	ents, err := os.ReadDir(o.dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if e.Name() != ".grefine.lock" {
			return
		}
	}
	os.RemoveAll(o.dir)
}
