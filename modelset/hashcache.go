package modelset

import (
	"io"

	"encoding/json"
	"os"
	"path/filepath"
	"strings"

	"github.com/grefine/grefine/internal/files"
)

// hashCache remembers verified files by absolute path, size and modification time. A nil
// *hashCache (no cache configured) knows nothing and saves nothing.
type hashCache struct {
	path    string
	entries map[string]hashEntry
	dirty   bool
}

type hashEntry struct {
	Size    int64  `json:"size"`
	ModNano int64  `json:"mtime_ns"`
	SHA256  string `json:"sha256"`
}

func loadHashCache(path string) *hashCache {
	if path == "" {
		return nil
	}
	c := &hashCache{path: path, entries: map[string]hashEntry{}}
	if b, err := os.ReadFile(path); err == nil {
		_ = json.Unmarshal(b, &c.entries) // a corrupt cache is as good as none
	}
	return c
}

func stamp(p string) (abs string, size, mod int64, ok bool) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", 0, 0, false
	}
	st, err := os.Stat(abs)
	if err != nil {
		return "", 0, 0, false
	}
	return abs, st.Size(), st.ModTime().UnixNano(), true
}

// known reports whether p was verified with digest want and has not changed since.
func (c *hashCache) known(p, want string) bool {
	if c == nil {
		return false
	}
	abs, size, mod, ok := stamp(p)
	if !ok {
		return false
	}
	e, ok := c.entries[abs]
	if ok && e.Size == size && e.ModNano == mod && strings.EqualFold(e.SHA256, want) {
		return true
	}
	return false
}

// remember records p as verified with digest sum.
func (c *hashCache) remember(p, sum string) {
	if c == nil {
		return
	}
	if abs, size, mod, ok := stamp(p); ok {
		c.entries[abs] = hashEntry{Size: size, ModNano: mod, SHA256: sum}
		c.dirty = true
	}
}

// save writes the cache atomically when it changed; failures are ignored (the cache is
// an optimisation).
func (c *hashCache) save() {
	if c == nil || !c.dirty {
		return
	}
	b, err := json.MarshalIndent(c.entries, "", " ")
	if err != nil {
		return
	}
	if err := os.MkdirAll(filepath.Dir(c.path), 0o755); err != nil {
		return
	}
	_ = files.WriteAtomic(c.path, func(w io.Writer) error { _, err := w.Write(b); return err })
}
