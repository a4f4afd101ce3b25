package wheel

import (
	"archive/zip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/grefine/grefine/internal/files"
)

// ErrHash is wrapped by every hash or size mismatch.
var ErrHash = errors.New("wheel: hash mismatch")

// Manifest pins the wheels to download and the files to take out of them.
type Manifest struct {
	// Wheels in install order.
	Wheels []Wheel `json:"wheels"`
}

// Wheel is one pinned wheel.
type Wheel struct {
	Name    string `json:"name"`    // PyPI project ("onnxruntime-gpu")
	Version string `json:"version"` // exact version ("1.31.1")
	File    string `json:"file"`    // wheel file name as pip saves it
	SHA256  string `json:"sha256"`  // of the wheel file
	Files   []File `json:"files"`
}

// File is one member to extract.
type File struct {
	Member string `json:"member"` // path inside the wheel
	Dest   string `json:"dest"`   // path relative to the output directory
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// Requirement is the pip requirement pinning w ("onnxruntime-gpu==1.31.1").
func (w Wheel) Requirement() string { return w.Name + "==" + w.Version }

// Load reads and validates a manifest.
func Load(path string) (*Manifest, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("wheel: %w", err)
	}
	return Parse(b)
}

// Parse decodes and validates a manifest.
func Parse(b []byte) (*Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("wheel: bad manifest: %w", err)
	}
	if len(m.Wheels) == 0 {
		return nil, errors.New("wheel: bad manifest: no wheels")
	}
	dests := map[string]string{}
	for _, w := range m.Wheels {
		if w.Name == "" || w.Version == "" || w.File == "" || filepath.Base(w.File) != w.File {
			return nil, fmt.Errorf("wheel: bad manifest: wheel %q: name, version and a plain file name are required", w.Name)
		}
		if !isSHA256(w.SHA256) {
			return nil, fmt.Errorf("wheel: bad manifest: wheel %s: sha256 %q is not 64 hex digits", w.File, w.SHA256)
		}
		if len(w.Files) == 0 {
			return nil, fmt.Errorf("wheel: bad manifest: wheel %s extracts nothing", w.File)
		}
		for _, f := range w.Files {
			if err := checkDest(f.Dest); err != nil {
				return nil, fmt.Errorf("wheel: bad manifest: %s: %w", w.File, err)
			}
			if f.Member == "" || !isSHA256(f.SHA256) || f.Size < 0 {
				return nil, fmt.Errorf("wheel: bad manifest: %s: %s needs a member, a 64-hex sha256 and a size", w.File, f.Dest)
			}
			if prev, dup := dests[f.Dest]; dup {
				return nil, fmt.Errorf("wheel: bad manifest: %s is extracted from both %s and %s", f.Dest, prev, w.File)
			}
			dests[f.Dest] = w.File
		}
	}
	return &m, nil
}

func isSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// checkDest accepts only clean relative paths that stay inside the output directory.
func checkDest(d string) error {
	if d == "" || filepath.IsAbs(d) || filepath.Clean(d) != d || d == "." || d == ".." ||
		strings.HasPrefix(d, "../") || strings.Contains(d, "/../") {
		return fmt.Errorf("destination %q is not a clean relative path inside the output directory", d)
	}
	return nil
}

// Verify checks the files of w under outDir and returns one line per problem (missing,
// wrong size or hash); none means w is installed.
func Verify(w Wheel, outDir string) []string {
	var bad []string
	for _, f := range w.Files {
		p := filepath.Join(outDir, f.Dest)
		sum, n, err := files.Hash(p)
		switch {
		case err != nil:
			bad = append(bad, fmt.Sprintf("%s: %v", f.Dest, err))
		case n != f.Size || sum != f.SHA256:
			bad = append(bad, fmt.Sprintf("%s: %d bytes sha256 %s, want %d bytes %s", f.Dest, n, sum, f.Size, f.SHA256))
		}
	}
	return bad
}

// Missing lists the wheels whose files are not all installed under outDir and whose
// wheel file is not in wheelDir with its pinned hash: the ones pip must download.
func (m *Manifest) Missing(wheelDir, outDir string) []Wheel {
	var need []Wheel
	for _, w := range m.Wheels {
		if len(Verify(w, outDir)) == 0 {
			continue
		}
		if sum, _, err := files.Hash(filepath.Join(wheelDir, w.File)); err == nil && sum == w.SHA256 {
			continue
		}
		need = append(need, w)
	}
	return need
}

// Installed describes one file Install put (or found) in place.
type Installed struct {
	Dest   string
	Size   int64
	SHA256 string
	Wheel  string
	Kept   bool // already installed with the pinned hash: not rewritten
}

// Install extracts every wheel of m from wheelDir into outDir (see the package comment
// for the guarantees) and reports each file.
func (m *Manifest) Install(wheelDir, outDir string) ([]Installed, error) {
	var all []Installed
	for _, w := range m.Wheels {
		got, err := Extract(w, filepath.Join(wheelDir, w.File), outDir)
		all = append(all, got...)
		if err != nil {
			return all, err
		}
	}
	return all, nil
}

// Extract checks the wheel file at path against w.SHA256, then extracts w.Files into
// outDir. Files already in place with their pinned hash are kept.
func Extract(w Wheel, path, outDir string) ([]Installed, error) {
	var out []Installed
	var todo []File
	for _, f := range w.Files {
		if sum, n, err := files.Hash(filepath.Join(outDir, f.Dest)); err == nil && sum == f.SHA256 && n == f.Size {
			out = append(out, Installed{Dest: f.Dest, Size: n, SHA256: sum, Wheel: w.File, Kept: true})
			continue
		}
		todo = append(todo, f)
	}
	if len(todo) == 0 {
		return out, nil
	}
	sum, _, err := files.Hash(path)
	if err != nil {
		return out, fmt.Errorf("wheel: %s: %w", w.File, err)
	}
	if sum != w.SHA256 {
		return out, fmt.Errorf("%w: wheel %s has sha256 %s, pinned %s (refusing to extract it)", ErrHash, path, sum, w.SHA256)
	}
	zr, err := zip.OpenReader(path)
	if err != nil {
		return out, fmt.Errorf("wheel: %s is not a zip file: %w", path, err)
	}
	defer zr.Close()
	members := make(map[string]*zip.File, len(zr.File))
	for _, zf := range zr.File {
		members[zf.Name] = zf
	}
	for _, f := range todo {
		zf, ok := members[f.Member]
		if !ok {
			return out, fmt.Errorf("wheel: %s has no member %s", w.File, f.Member)
		}
		if err := extractOne(zf, f, outDir); err != nil {
			return out, fmt.Errorf("wheel: %s: %w", w.File, err)
		}
		out = append(out, Installed{Dest: f.Dest, Size: f.Size, SHA256: f.SHA256, Wheel: w.File})
	}
	return out, nil
}

// extractOne streams one member into a temporary file, checks it and renames it.
func extractOne(zf *zip.File, f File, outDir string) error {
	dest := filepath.Join(outDir, f.Dest)
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".tmp-*")
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	rc, err := zf.Open()
	if err != nil {
		return fmt.Errorf("%s: %w", f.Member, err)
	}
	defer rc.Close()
	h := sha256.New()
	// Read at most one byte past the pinned size: a longer member is a mismatch.
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(rc, f.Size+1))
	if err != nil {
		return fmt.Errorf("%s: %w", f.Member, err)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); n != f.Size || sum != f.SHA256 {
		return fmt.Errorf("%w: %s is %d bytes sha256 %s, pinned %d bytes %s", ErrHash, f.Member, n, sum, f.Size, f.SHA256)
	}
	if err := tmp.Chmod(0o755); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), dest); err != nil {
		return err
	}
	ok = true
	return nil
}
