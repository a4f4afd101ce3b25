package modelset

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/grefine/grefine/internal/files"

	"github.com/grefine/grefine/engine"
)

// ManifestName is the manifest's file name inside a model set directory.
const ManifestName = "models.json"

// FormatVersion is the manifest format this package reads.
const FormatVersion = 1

// Errors returned by Load and OpenEngine (wrapped, with the details in the message).
var (
	ErrManifest = errors.New("modelset: bad manifest")
	ErrMissing  = errors.New("modelset: missing file")
	ErrMismatch = errors.New("modelset: hash mismatch")
	ErrUnknown  = errors.New("modelset: not in manifest")
)

// FileEntry is a file of the set.
type FileEntry struct {
	File   string `json:"file"`
	SHA256 string `json:"sha256"`
}

// EngineEntry is an engine file plus its I/O contract.
type EngineEntry struct {
	FileEntry
	Inputs  []engine.TensorDesc `json:"inputs"`
	Outputs []engine.TensorDesc `json:"outputs"`
}

// ConstantEntry is a constant tensor stored raw.
type ConstantEntry struct {
	FileEntry
	DType engine.DType `json:"dtype"`
	Shape engine.Shape `json:"shape"`
}

// Manifest is the decoded models.json.
type Manifest struct {
	Format    int                        `json:"format"`
	Name      string                     `json:"name"`
	Tiny      bool                       `json:"tiny"`
	CreatedBy string                     `json:"created_by,omitempty"`
	Engines   map[string]EngineEntry     `json:"engines"`
	Constants map[string]ConstantEntry   `json:"constants"`
	Files     map[string]FileEntry       `json:"files"`
	Config    map[string]json.RawMessage `json:"config"`
}

// Options tune Load.
type Options struct {
	// SkipHashes checks presence only, no SHA-256. Default: full check.
	SkipHashes bool
	// HashCache, if set, is a JSON file remembering files already verified (absolute
	// path, size, modification time, digest): a file whose size and mtime are unchanged
	// is not hashed again, so a multi-GB real set is hashed once, not at every start.
	// Unreadable or corrupt caches are ignored; write failures are not errors.
	HashCache string
}

// Set is a loaded, verified model set.
type Set struct {
	Dir      string
	Manifest Manifest
}

// Load reads dir/models.json and verifies the set.
func Load(dir string, opts Options) (*Set, error) {
	m, err := ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	s := &Set{Dir: dir, Manifest: *m}
	if err := s.verify(opts); err != nil {
		return nil, err
	}
	return s, nil
}

// ReadManifest reads and parses dir/models.json without verifying any file: cheap, for
// checks that must come before the expensive ones (is the set tiny?).
func ReadManifest(dir string) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s has no %s (export one with `make fixtures` or tools/export)", ErrMissing, dir, ManifestName)
		}
		return nil, fmt.Errorf("%w: %v", ErrManifest, err)
	}
	var m Manifest
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrManifest, filepath.Join(dir, ManifestName), err)
	}
	if m.Format != FormatVersion {
		return nil, fmt.Errorf("%w: format %d, this grefine reads format %d", ErrManifest, m.Format, FormatVersion)
	}
	return &m, nil
}

func (s *Set) verify(opts Options) error {
	cache := loadHashCache(opts.HashCache)
	check := func(kind, name string, f FileEntry) error {
		if f.File == "" || filepath.IsAbs(f.File) || strings.Contains(f.File, "..") {
			return fmt.Errorf("%w: %s %q: bad file name %q", ErrManifest, kind, name, f.File)
		}
		if len(f.SHA256) != 64 {
			return fmt.Errorf("%w: %s %q: sha256 must be 64 hex digits", ErrManifest, kind, name)
		}
		p := filepath.Join(s.Dir, f.File)
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("%w: %s %q: %s: %v", ErrMissing, kind, name, f.File, err)
		}
		if opts.SkipHashes {
			return nil
		}
		if cache.known(p, f.SHA256) {
			return nil
		}
		got, err := files.SHA256(p)
		if err != nil {
			return fmt.Errorf("%w: %s %q: %v", ErrMissing, kind, name, err)
		}
		if !strings.EqualFold(got, f.SHA256) {
			return fmt.Errorf("%w: %s %q: %s has sha256 %s, manifest says %s", ErrMismatch, kind, name, f.File, got, f.SHA256)
		}
		cache.remember(p, got)
		return nil
	}
	defer cache.save()
	for _, n := range sortedKeys(s.Manifest.Engines) {
		e := s.Manifest.Engines[n]
		if err := check("engine", n, e.FileEntry); err != nil {
			return err
		}
		if err := checkContract(n, e); err != nil {
			return err
		}
	}
	for _, n := range sortedKeys(s.Manifest.Constants) {
		c := s.Manifest.Constants[n]
		if err := check("constant", n, c.FileEntry); err != nil {
			return err
		}
		st, _ := os.Stat(filepath.Join(s.Dir, c.File))
		if want := c.Shape.NumElements() * int64(c.DType.Size()); want < 0 || c.DType.Size() == 0 || st.Size() != want {
			return fmt.Errorf("%w: constant %q: %s has %d bytes, %v%v needs %d", ErrManifest, n, c.File, st.Size(), c.DType, c.Shape, want)
		}
	}
	for _, n := range sortedKeys(s.Manifest.Files) {
		if err := check("file", n, s.Manifest.Files[n]); err != nil {
			return err
		}
	}
	return nil
}

// checkContract verifies that a manifest engine entry declares the tensors DESIGN §2
// requires for that engine name (unknown engine names are allowed: extensions).
func checkContract(name string, e EngineEntry) error {
	want, ok := Contracts[name]
	if !ok {
		return nil
	}
	match := func(kind string, have []engine.TensorDesc, need []Port) error {
		for _, p := range need {
			found := false
			for _, d := range have {
				if d.Name == p.Name {
					found = true
					if d.DType != p.DType || len(d.Shape) != p.Rank {
						return fmt.Errorf("%w: engine %q %s %q is %v%v, the contract wants %v of rank %d", engine.ErrContract, name, kind, p.Name, d.DType, d.Shape, p.DType, p.Rank)
					}
				}
			}
			if !found {
				return fmt.Errorf("%w: engine %q lacks %s %q required by the contract", engine.ErrContract, name, kind, p.Name)
			}
		}
		return nil
	}
	if err := match("input", e.Inputs, want.Inputs); err != nil {
		return err
	}
	return match("output", e.Outputs, want.Outputs)
}

// Path is the absolute path of a set-relative file.
func (s *Set) Path(file string) string { return filepath.Join(s.Dir, file) }

// HasEngine reports whether the manifest lists an engine.
func (s *Set) HasEngine(name string) bool { _, ok := s.Manifest.Engines[name]; return ok }

// FilePath returns the path of a named entry of "files" (e.g. "bpe_vocab").
func (s *Set) FilePath(name string) (string, error) {
	f, ok := s.Manifest.Files[name]
	if !ok {
		return "", fmt.Errorf("%w: file %q", ErrUnknown, name)
	}
	return s.Path(f.File), nil
}

// Config decodes the named config section into v.
func (s *Set) Config(section string, v any) error {
	raw, ok := s.Manifest.Config[section]
	if !ok {
		return fmt.Errorf("%w: config section %q", ErrUnknown, section)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%w: config %q: %v", ErrManifest, section, err)
	}
	return nil
}

// OpenEngine opens the named engine with b and checks that its I/O descriptors equal the
// manifest's (names, dtypes, shapes, with dynamic dims in the same places).
func (s *Set) OpenEngine(b engine.Backend, name string, opts engine.OpenOptions) (engine.Engine, error) {
	entry, ok := s.Manifest.Engines[name]
	if !ok {
		return nil, fmt.Errorf("%w: engine %q (the set has %v)", ErrUnknown, name, sortedKeys(s.Manifest.Engines))
	}
	if opts.Name == "" {
		opts.Name = name
	}
	e, err := b.Open(s.Path(entry.File), opts)
	if err != nil {
		return nil, err
	}
	if err := SameIO(name, "input", entry.Inputs, e.Inputs()); err != nil {
		e.Close()
		return nil, err
	}
	if err := SameIO(name, "output", entry.Outputs, e.Outputs()); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// SameIO checks that an engine's tensors of kind ("input", "output") are exactly the
// manifest's: the same names, each with the same dtype and shape (dynamic dimensions
// included). The model set checks its ONNX files with it, plans.Repo its plans.
func SameIO(name, kind string, manifest, actual []engine.TensorDesc) error {
	byName := map[string]engine.TensorDesc{}
	for _, d := range actual {
		byName[d.Name] = d
	}
	for _, m := range manifest {
		a, ok := byName[m.Name]
		if !ok {
			return fmt.Errorf("%w: engine %q: the model has no %s %q that the manifest lists (it has %v)", engine.ErrContract, name, kind, m.Name, actual)
		}
		if a.DType != m.DType || !a.Shape.Equal(m.Shape) {
			return fmt.Errorf("%w: engine %q: %s %q is %v%v in the model, %v%v in the manifest", engine.ErrContract, name, kind, m.Name, a.DType, a.Shape, m.DType, m.Shape)
		}
		delete(byName, m.Name)
	}
	for n := range byName {
		return fmt.Errorf("%w: engine %q: the model has an %s %q the manifest does not list", engine.ErrContract, name, kind, n)
	}
	return nil
}

// Constant reads a constant tensor (float32 only for now).
func (s *Set) Constant(name string) (*engine.HostTensor, error) {
	c, ok := s.Manifest.Constants[name]
	if !ok {
		return nil, fmt.Errorf("%w: constant %q", ErrUnknown, name)
	}
	if c.DType != engine.Float32 {
		return nil, fmt.Errorf("%w: constant %q: dtype %v unsupported", ErrManifest, name, c.DType)
	}
	b, err := os.ReadFile(s.Path(c.File))
	if err != nil {
		return nil, fmt.Errorf("%w: constant %q: %v", ErrMissing, name, err)
	}
	n := c.Shape.NumElements()
	if int64(len(b)) != 4*n {
		return nil, fmt.Errorf("%w: constant %q: %d bytes for shape %v", ErrManifest, name, len(b), c.Shape)
	}
	data := make([]float32, n)
	for i := range data {
		data[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return engine.FromFloat32(c.Shape, data)
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
