package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/grefine/grefine/internal/files"
	"github.com/grefine/grefine/pipeline"
)

// ownedNames are the files a run may write into an output directory (or a batch job's
// sub-folder). A run replaces or removes one of them only when the manifest records that
// grefine wrote it, with the same contents: a user's own file of that name is never
// touched (the run is refused before any model work).
var ownedNames = []string{"report.json", "refined.png", "p_map.png", "a_map.png", "mask.png", "overlay.png",
	"p_mask.png", "a_mask.png", "p_map.npy", "a_map.npy", "mask.npy",
	"bench.json", "bench.md", "latency_cdf.png", "throughput.png", "gpu_timeline.png"}

// Names of grefine's own files in an output directory.
const (
	lockName     = ".grefine.lock"
	manifestName = ".grefine-manifest.json"
	stagingGlob  = ".staging-"
	stagingMark  = ".grefine-staging" // inside a staging folder: grefine made it
)

// manifest is the record of the files grefine wrote into an output directory: each
// file's path (relative, slash-separated) and the SHA-256 of the contents it wrote.
// While a commit is under way a file may have two accepted hashes (old and new), so a
// run killed mid-commit leaves a record that still recognises its files.
type manifest struct {
	Version int                 `json:"version"`
	Files   map[string][]string `json:"files"`
}

// outDir is an output directory held by one run: created if missing, locked
// (flock on .grefine.lock, so two runs cannot write into one directory at once) and
// probed for writing before any model work. Files are written into a staging directory
// inside it and moved into place by commit; a failed or interrupted run removes the
// staging directory, leaves the previous contents untouched, and removes --out itself
// (and the parents it made) when it created it and committed nothing.
type outDir struct {
	dir       string
	lock      *os.File
	staging   string
	created   []string // directories this run created, deepest first
	newFiles  []string // the lock file and the manifest, when this run created them
	committed bool
	man       manifest
}

// openOut prepares path for a run whose inputs are the given files and whose jobs write
// into the sub-folders subs ("" for --out itself). It refuses (usage errors, from what
// the user typed) an --out that holds, under a name the run writes, a file grefine did
// not write, or one of the inputs. It removes the staging folders of killed runs.
func openOut(path string, subs []string, inputs []string) (*outDir, error) {
	if path == "" {
		return nil, usagef("--out is required")
	}
	o := &outDir{dir: path}
	st, err := os.Stat(path)
	switch {
	case err == nil && !st.IsDir():
		return nil, usagef("--out %s exists and is not a directory", path)
	case errors.Is(err, os.ErrNotExist):
		if o.created, err = mkdirAll(path); err != nil {
			o.removeCreated()
			return nil, usagef("--out %s cannot be created: %v", path, errors.Unwrap(err))
		}
	case err != nil:
		return nil, usagef("--out %s: %v", path, err)
	}
	_, lockErr := os.Stat(filepath.Join(path, lockName))
	legacy := lockErr == nil // a folder of a grefine from before manifests
	f, err := os.OpenFile(filepath.Join(path, lockName), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		o.removeCreated()
		return nil, usagef("--out %s is not writable: %v", path, errors.Unwrap(err))
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, actionError{fmt.Errorf("%w: another grefine run is writing into --out %s", pipeline.ErrBusy, path)}
	}
	o.lock = f
	if !legacy {
		o.newFiles = append(o.newFiles, filepath.Join(path, lockName))
	}
	fail := func(err error) (*outDir, error) {
		o.finish(runFailed)
		return nil, err
	}
	if err := o.readManifest(legacy, subs); err != nil {
		return fail(err)
	}
	o.removeStaleStaging()
	if err := o.checkCollisions(subs, inputs); err != nil {
		return fail(err)
	}
	if o.staging, err = os.MkdirTemp(path, stagingGlob); err != nil {
		return fail(usagef("--out %s is not writable: %v", path, errors.Unwrap(err)))
	}
	if err := os.WriteFile(filepath.Join(o.staging, stagingMark), nil, 0o644); err != nil {
		return fail(usagef("--out %s is not writable: %v", path, errors.Unwrap(err)))
	}
	stagingMu.Lock()
	defer stagingMu.Unlock()
	if stagingClosed { // a forced exit is under way
		o.finishLocked(runInterrupted)
		return nil, errInterrupted
	}
	liveOuts[o] = true
	return o, nil
}

// mkdirAll creates path and its missing parents; it returns the directories it
// created, deepest first.
func mkdirAll(path string) ([]string, error) {
	var missing []string
	for p := filepath.Clean(path); ; p = filepath.Dir(p) {
		if _, err := os.Stat(p); err == nil {
			break
		}
		missing = append(missing, p)
		if filepath.Dir(p) == p {
			break
		}
	}
	var made []string
	for i := len(missing) - 1; i >= 0; i-- {
		if err := os.Mkdir(missing[i], 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return made, err
		}
		made = append([]string{missing[i]}, made...)
	}
	return made, nil
}

// readManifest loads the record of what grefine wrote. A folder that a grefine from
// before manifests used (it has the lock file but no manifest) is adopted: its files of
// the owned names in the run's sub-folders are recorded as grefine's at their present
// contents.
func (o *outDir) readManifest(legacy bool, subs []string) error {
	o.man = manifest{Version: 1, Files: map[string][]string{}}
	b, err := os.ReadFile(filepath.Join(o.dir, manifestName))
	switch {
	case errors.Is(err, os.ErrNotExist):
		if !legacy { // a folder new to grefine: from now on its record is the manifest
			o.newFiles = append(o.newFiles, filepath.Join(o.dir, manifestName))
			return o.saveManifest()
		}
		for _, sub := range subs {
			for _, n := range ownedNames {
				rel := filepath.ToSlash(filepath.Join(sub, n))
				if sum, err := files.SHA256(filepath.Join(o.dir, rel)); err == nil {
					o.man.Files[rel] = []string{sum}
				}
			}
		}
		return o.saveManifest()
	case err != nil:
		return usagef("--out %s: %v", o.dir, err)
	}
	if err := json.Unmarshal(b, &o.man); err != nil || o.man.Files == nil {
		return usagef("--out %s: %s is not grefine's record of its files (%v): move the folder's contents away or choose another --out", o.dir, manifestName, err)
	}
	return nil
}

func (o *outDir) saveManifest() error {
	return files.WriteAtomic(filepath.Join(o.dir, manifestName), func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", " ")
		return enc.Encode(o.man)
	})
}

// ours reports whether grefine wrote the file at rel with its present contents.
func (o *outDir) ours(rel string) bool {
	sums := o.man.Files[filepath.ToSlash(rel)]
	if len(sums) == 0 {
		return false
	}
	sum, err := files.SHA256(filepath.Join(o.dir, rel))
	if err != nil {
		return false
	}
	for _, s := range sums {
		if s == sum {
			return true
		}
	}
	return false
}

// checkCollisions refuses a run that would replace or remove a file grefine did not
// write, or one of its own inputs.
func (o *outDir) checkCollisions(subs []string, inputs []string) error {
	var ins []os.FileInfo
	var inNames []string
	for _, in := range inputs {
		if st, err := os.Stat(in); err == nil {
			ins, inNames = append(ins, st), append(inNames, in)
		}
	}
	for _, sub := range subs {
		for _, n := range ownedNames {
			rel := filepath.Join(sub, n)
			st, err := os.Lstat(filepath.Join(o.dir, rel))
			if err != nil {
				continue
			}
			for i, in := range ins {
				if os.SameFile(st, in) {
					return usagef("the input %s is %s in --out %s, which this run writes: choose another --out", inNames[i], rel, o.dir)
				}
			}
			if !st.Mode().IsRegular() || !o.ours(rel) {
				return usagef("--out %s holds %s, which grefine did not write (%s has no record of it): move it away or choose another --out", o.dir, rel, manifestName)
			}
		}
	}
	return nil
}

// removeStaleStaging removes the staging folders that killed runs left (grefine's own:
// they hold the marker file, or nothing). The lock is held, so no other run is live.
func (o *outDir) removeStaleStaging() {
	ents, err := os.ReadDir(o.dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), stagingGlob) {
			continue
		}
		p := filepath.Join(o.dir, e.Name())
		if _, err := os.Stat(filepath.Join(p, stagingMark)); err == nil {
			os.RemoveAll(p)
		} else {
			os.Remove(p) // only when empty
		}
	}
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

// commit moves the staged files of sub into place: grefine's own files of the owned
// names that sub does not have this time are removed, then each staged file is renamed
// over its old version, and the manifest records the new contents (before the renames
// it accepts both, so an interrupted commit leaves no file unrecognised).
func (o *outDir) commit(sub string) error {
	stagingMu.Lock()
	defer stagingMu.Unlock()
	if stagingClosed {
		return errInterrupted
	}
	src := filepath.Join(o.staging, sub)
	dst := filepath.Join(o.dir, sub)
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	staged := map[string]string{}
	for _, e := range ents {
		if e.IsDir() || e.Name() == stagingMark {
			continue // a batch job's folder (committed on its own), or the marker
		}
		sum, err := files.SHA256(filepath.Join(src, e.Name()))
		if err != nil {
			return err
		}
		staged[e.Name()] = sum
	}
	touched := append([]string(nil), ownedNames...)
	for n := range staged {
		touched = append(touched, n)
	}
	for _, n := range touched {
		rel := filepath.ToSlash(filepath.Join(sub, n))
		if _, err := os.Lstat(filepath.Join(o.dir, rel)); err == nil && !o.ours(rel) {
			return fmt.Errorf("%w: --out %s: %s is not a file grefine wrote (it appeared during the run): nothing was replaced", pipeline.ErrInput, o.dir, rel)
		}
	}
	for n, sum := range staged {
		rel := filepath.ToSlash(filepath.Join(sub, n))
		o.man.Files[rel] = append(o.man.Files[rel], sum)
	}
	if err := o.saveManifest(); err != nil {
		return err
	}
	o.committed = true
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	for _, n := range ownedNames {
		rel := filepath.ToSlash(filepath.Join(sub, n))
		if _, ok := staged[n]; ok {
			continue
		}
		if err := os.Remove(filepath.Join(o.dir, rel)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		delete(o.man.Files, rel)
	}
	names := make([]string, 0, len(staged))
	for n := range staged {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := os.Rename(filepath.Join(src, n), filepath.Join(dst, n)); err != nil {
			return err
		}
		o.man.Files[filepath.ToSlash(filepath.Join(sub, n))] = []string{staged[n]}
	}
	if err := o.saveManifest(); err != nil {
		return err
	}
	if sub != "" {
		return os.Remove(src)
	}
	return nil
}

// discard drops what sub staged (a failed batch job).
func (o *outDir) discard(sub string) { os.RemoveAll(filepath.Join(o.staging, sub)) }

// Outcomes of a run, for finish.
const (
	runOK          = iota
	runFailed      // an error: what was committed (a batch's good jobs) stays
	runInterrupted // SIGINT/SIGTERM: a --out this run created is removed with all it holds
)

// interruptedAs is err, or errInterrupted when the run's context ended by a signal.
func interruptedAs(c *cli.Context, err error) error {
	if cause := context.Cause(c.Context); err != nil && cause != nil && errors.Is(cause, errInterrupted) {
		return cause
	}
	return err
}

// outcome is the runOK/runFailed/runInterrupted of err, for finish.
func outcome(err error) int {
	switch {
	case err == nil:
		return runOK
	case errors.Is(err, errInterrupted):
		return runInterrupted
	}
	return runFailed
}

// finish removes the staging directory and releases the lock. A directory this run
// created is removed again when the run failed having committed nothing, or was
// interrupted (then with the files it committed: they are all grefine's own).
func (o *outDir) finish(how int) {
	if o == nil {
		return
	}
	stagingMu.Lock()
	defer stagingMu.Unlock()
	o.finishLocked(how)
}

func (o *outDir) finishLocked(how int) {
	if o.staging != "" {
		os.RemoveAll(o.staging)
	}
	delete(liveOuts, o)
	if o.lock != nil {
		o.lock.Close()
		o.lock = nil
	}
	if how == runInterrupted || (how == runFailed && !o.committed) {
		o.removeCreated()
	}
	if how != runOK && !o.committed { // leave a folder that was there as it was found
		for _, f := range o.newFiles {
			os.Remove(f)
		}
	}
}

// removeCreated removes what this run created, when it created --out: the files the
// manifest records with their recorded contents (all this run's), the lock file, the
// manifest and the directories it made, each directory only if then empty, so nothing
// else is ever removed.
func (o *outDir) removeCreated() {
	if len(o.created) == 0 {
		return
	}
	dirs := map[string]bool{}
	for rel := range o.man.Files {
		if o.ours(rel) {
			os.Remove(filepath.Join(o.dir, rel))
		}
		if d := filepath.Dir(rel); d != "." {
			dirs[d] = true
		}
	}
	for d := range dirs {
		os.Remove(filepath.Join(o.dir, d))
	}
	os.Remove(filepath.Join(o.dir, manifestName))
	os.Remove(filepath.Join(o.dir, lockName))
	for _, d := range o.created {
		os.Remove(d)
	}
}
