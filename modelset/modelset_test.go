package modelset

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/internal/files"
)

// fakeBackend opens engines whose I/O is whatever the test put in io, keyed by file name.
type fakeBackend struct {
	io map[string][2][]engine.TensorDesc
}

func (f *fakeBackend) Name() string       { return "fake" }
func (f *fakeBackend) Available() error   { return nil }
func (f *fakeBackend) Version() string    { return "fake 1" }
func (f *fakeBackend) DeviceName() string { return "cpu" }
func (f *fakeBackend) Close() error       { return nil }
func (f *fakeBackend) Open(path string, o engine.OpenOptions) (engine.Engine, error) {
	io := f.io[filepath.Base(path)]
	return &fakeEngine{name: o.Name, in: io[0], out: io[1]}, nil
}

type fakeEngine struct {
	name    string
	in, out []engine.TensorDesc
	closed  bool
}

func (e *fakeEngine) Name() string                 { return e.name }
func (e *fakeEngine) Inputs() []engine.TensorDesc  { return e.in }
func (e *fakeEngine) Outputs() []engine.TensorDesc { return e.out }
func (e *fakeEngine) Close() error                 { e.closed = true; return nil }
func (e *fakeEngine) Run(context.Context, map[string]engine.Tensor) (map[string]engine.Tensor, error) {
	return nil, nil
}

var (
	clipIn  = []engine.TensorDesc{{Name: "pixel_values", DType: engine.Float32, Shape: engine.Shape{-1, 3, 224, 224}}}
	clipOut = []engine.TensorDesc{{Name: "tokens", DType: engine.Float32, Shape: engine.Shape{-1, 197, 512}}}
)

// writeSet writes a small valid set and returns its dir; mutate edits the manifest first.
func writeSet(t *testing.T, mutate func(m *Manifest)) string {
	t.Helper()
	dir := t.TempDir()
	write := func(name string, b []byte) FileEntry {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o644))
		h, err := files.SHA256(filepath.Join(dir, name))
		require.NoError(t, err)
		return FileEntry{File: name, SHA256: h}
	}
	m := Manifest{
		Format: 1, Name: "test",
		Engines: map[string]EngineEntry{
			"clip_surgery": {FileEntry: write("clip_surgery.onnx", []byte("model bytes")), Inputs: clipIn, Outputs: clipOut},
		},
		Constants: map[string]ConstantEntry{
			"aq_empty": {FileEntry: write("aq_empty.bin", []byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0x40}), DType: engine.Float32, Shape: engine.Shape{2}},
		},
		Files:  map[string]FileEntry{"bpe_vocab": write("vocab.txt.gz", []byte("vocab"))},
		Config: map[string]json.RawMessage{"clip": json.RawMessage(`{"grid": 14}`)},
	}
	if mutate != nil {
		mutate(&m)
	}
	b, err := json.MarshalIndent(m, "", " ")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, ManifestName), b, 0o644))
	return dir
}

func TestLoadValid(t *testing.T) {
	s, err := Load(writeSet(t, nil), Options{})
	require.NoError(t, err)
	c, err := s.Constant("aq_empty")
	require.NoError(t, err)
	assert.Equal(t, []float32{1, 2}, c.F32)
	var cfg struct{ Grid int }
	require.NoError(t, s.Config("clip", &cfg))
	assert.Equal(t, 14, cfg.Grid)
	p, err := s.FilePath("bpe_vocab")
	require.NoError(t, err)
	assert.FileExists(t, p)
	b := &fakeBackend{io: map[string][2][]engine.TensorDesc{"clip_surgery.onnx": {clipIn, clipOut}}}
	e, err := s.OpenEngine(b, "clip_surgery", engine.OpenOptions{})
	require.NoError(t, err)
	assert.Equal(t, "clip_surgery", e.Name())
	_, err = s.OpenEngine(b, "clip_text", engine.OpenOptions{})
	assert.ErrorIs(t, err, ErrUnknown)
}

func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(t *testing.T) string
		want error
		msg  string
	}{
		{"no manifest", func(t *testing.T) string { return t.TempDir() }, ErrMissing, "models.json"},
		{"bad json", func(t *testing.T) string {
			d := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(d, ManifestName), []byte("{"), 0o644))
			return d
		}, ErrManifest, ""},
		{"format", func(t *testing.T) string { return writeSet(t, func(m *Manifest) { m.Format = 9 }) }, ErrManifest, "format 9"},
		{"missing model file", func(t *testing.T) string {
			d := writeSet(t, nil)
			require.NoError(t, os.Remove(filepath.Join(d, "clip_surgery.onnx")))
			return d
		}, ErrMissing, "clip_surgery.onnx"},
		{"hash mismatch", func(t *testing.T) string {
			d := writeSet(t, nil)
			require.NoError(t, os.WriteFile(filepath.Join(d, "clip_surgery.onnx"), []byte("tampered"), 0o644))
			return d
		}, ErrMismatch, "clip_surgery.onnx has sha256"},
		{"constant size", func(t *testing.T) string {
			return writeSet(t, func(m *Manifest) {
				c := m.Constants["aq_empty"]
				c.Shape = engine.Shape{3}
				m.Constants["aq_empty"] = c
			})
		}, ErrManifest, "needs 12"},
		{"contract name", func(t *testing.T) string {
			return writeSet(t, func(m *Manifest) {
				e := m.Engines["clip_surgery"]
				e.Outputs = []engine.TensorDesc{{Name: "features", DType: engine.Float32, Shape: engine.Shape{-1, 197, 512}}}
				m.Engines["clip_surgery"] = e
			})
		}, engine.ErrContract, `lacks output "tokens"`},
		{"contract dtype", func(t *testing.T) string {
			return writeSet(t, func(m *Manifest) {
				e := m.Engines["clip_surgery"]
				e.Inputs = []engine.TensorDesc{{Name: "pixel_values", DType: engine.Int32, Shape: engine.Shape{-1, 3, 224, 224}}}
				m.Engines["clip_surgery"] = e
			})
		}, engine.ErrContract, "pixel_values"},
		{"path escape", func(t *testing.T) string {
			return writeSet(t, func(m *Manifest) { m.Files["x"] = FileEntry{File: "../etc/passwd", SHA256: string(make([]byte, 64))} })
		}, ErrManifest, "bad file name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.set(t), Options{})
			require.Error(t, err)
			assert.ErrorIs(t, err, tc.want)
			assert.Contains(t, err.Error(), tc.msg)
		})
	}
}

func TestOpenEngineMismatch(t *testing.T) {
	s, err := Load(writeSet(t, nil), Options{})
	require.NoError(t, err)
	for _, tc := range []struct {
		name    string
		in, out []engine.TensorDesc
		msg     string
	}{
		{"shape", []engine.TensorDesc{{Name: "pixel_values", DType: engine.Float32, Shape: engine.Shape{-1, 3, 256, 256}}}, clipOut, "pixel_values"},
		{"missing output", clipIn, nil, `no output "tokens"`},
		{"extra input", append(append([]engine.TensorDesc{}, clipIn...), engine.TensorDesc{Name: "mask", DType: engine.Float32, Shape: engine.Shape{1}}), clipOut, `input "mask"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &fakeBackend{io: map[string][2][]engine.TensorDesc{"clip_surgery.onnx": {tc.in, tc.out}}}
			_, err := s.OpenEngine(b, "clip_surgery", engine.OpenOptions{})
			require.ErrorIs(t, err, engine.ErrContract)
			assert.Contains(t, err.Error(), tc.msg)
		})
	}
}

func TestHashCache(t *testing.T) {
	dir := writeSet(t, nil)
	cachePath := filepath.Join(t.TempDir(), "sub", "hashes.json")
	opts := Options{HashCache: cachePath}
	_, err := Load(dir, opts)
	require.NoError(t, err)
	require.FileExists(t, cachePath, "the first load records what it verified")
	c := loadHashCache(cachePath)
	assert.Len(t, c.entries, 3)

	// Unchanged files are not hashed again: poison the cached digests' files' content
	// behind the cache's back but keep size and mtime; the load still trusts the cache.
	p := filepath.Join(dir, "clip_surgery.onnx")
	st, err := os.Stat(p)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(p, []byte("MODEL BYTES"), 0o644)) // same length
	require.NoError(t, os.Chtimes(p, st.ModTime(), st.ModTime()))
	_, err = Load(dir, opts)
	require.NoError(t, err, "size and mtime unchanged: trusted from the cache")
	_, err = Load(dir, Options{})
	require.ErrorIs(t, err, ErrMismatch, "without the cache the tampering is found")

	// A changed mtime forces a new hash, which finds the mismatch.
	require.NoError(t, os.Chtimes(p, st.ModTime().Add(time.Second), st.ModTime().Add(time.Second)))
	_, err = Load(dir, opts)
	require.ErrorIs(t, err, ErrMismatch)

	// A corrupt cache file is ignored.
	require.NoError(t, os.WriteFile(cachePath, []byte("{not json"), 0o644))
	_, err = Load(writeSet(t, nil), opts)
	require.NoError(t, err)
}
