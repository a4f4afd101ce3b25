package wheel

import (
	"archive/zip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/internal/files"
)

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// fakeWheel writes a small zip shaped like a real wheel (a library, its dist-info) and
// returns its path and the matching manifest entry.
func fakeWheel(t *testing.T, dir string, members map[string][]byte) (string, Wheel) {
	t.Helper()
	path := filepath.Join(dir, "fake_pkg-1.0-py3-none-manylinux_2_28_x86_64.whl")
	f, err := os.Create(path)
	require.NoError(t, err)
	zw := zip.NewWriter(f)
	for name, body := range members {
		w, err := zw.Create(name)
		require.NoError(t, err)
		_, err = w.Write(body)
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	require.NoError(t, f.Close())
	sum, _, err := files.Hash(path)
	require.NoError(t, err)
	w := Wheel{Name: "fake-pkg", Version: "1.0", File: filepath.Base(path), SHA256: sum}
	return path, w
}

func libMembers() map[string][]byte {
	return map[string][]byte{
		"fake/lib/libfake.so.1":           []byte("\x7fELF fake library one"),
		"fake/lib/libother.so.2":          []byte("\x7fELF another fake library, a bit longer"),
		"fake_pkg-1.0.dist-info/METADATA": []byte("Name: fake-pkg\nVersion: 1.0\n"),
	}
}

func entries(m map[string][]byte, names ...string) []File {
	var fs []File
	for _, n := range names {
		fs = append(fs, File{Member: n, Dest: "cuda/" + filepath.Base(n), SHA256: sha(m[n]), Size: int64(len(m[n]))})
	}
	return fs
}

func TestInstallFakeWheel(t *testing.T) {
	wheels, out := t.TempDir(), t.TempDir()
	mem := libMembers()
	_, w := fakeWheel(t, wheels, mem)
	w.Files = entries(mem, "fake/lib/libfake.so.1", "fake/lib/libother.so.2")
	m := &Manifest{Wheels: []Wheel{w}}

	require.Len(t, m.Missing(wheels, out), 0, "the wheel is present with its hash: nothing to download")
	got, err := m.Install(wheels, out)
	require.NoError(t, err)
	require.Len(t, got, 2)
	for _, g := range got {
		assert.False(t, g.Kept)
		b, err := os.ReadFile(filepath.Join(out, g.Dest))
		require.NoError(t, err)
		assert.Equal(t, mem["fake/lib/"+filepath.Base(g.Dest)], b)
		st, _ := os.Stat(filepath.Join(out, g.Dest))
		assert.Equal(t, os.FileMode(0o755), st.Mode().Perm())
	}
	assert.Empty(t, Verify(w, out))
	_, err = os.Stat(filepath.Join(out, "cuda", "METADATA"))
	assert.True(t, os.IsNotExist(err), "only the pinned members are extracted")

	// Second run: everything kept; the wheel is not even needed any more.
	require.NoError(t, os.Remove(filepath.Join(wheels, w.File)))
	assert.Len(t, m.Missing(wheels, out), 0, "installed files verify: nothing to download")
	got, err = m.Install(wheels, out)
	require.NoError(t, err)
	for _, g := range got {
		assert.True(t, g.Kept, g.Dest)
	}

	// A damaged installed file is noticed and the wheel is needed again.
	require.NoError(t, os.WriteFile(filepath.Join(out, "cuda", "libfake.so.1"), []byte("damaged"), 0o755))
	assert.Len(t, Verify(w, out), 1)
	assert.Len(t, m.Missing(wheels, out), 1)
}

func TestWheelHashMismatchExtractsNothing(t *testing.T) {
	wheels, out := t.TempDir(), t.TempDir()
	mem := libMembers()
	path, w := fakeWheel(t, wheels, mem)
	w.Files = entries(mem, "fake/lib/libfake.so.1")
	w.SHA256 = sha([]byte("some other wheel"))
	_, err := Extract(w, path, out)
	require.ErrorIs(t, err, ErrHash)
	assert.Contains(t, err.Error(), "refusing to extract")
	assertEmptyDir(t, out)
	m := &Manifest{Wheels: []Wheel{w}}
	assert.Len(t, m.Missing(wheels, out), 1, "a wheel with the wrong hash must be downloaded again")
}

func TestMemberMismatchLeavesNoFile(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*File)
		want string
	}{
		{"hash", func(f *File) { f.SHA256 = sha([]byte("x")) }, "pinned"},
		{"shorter pin", func(f *File) { f.Size-- }, "pinned"},
		{"longer pin", func(f *File) { f.Size++ }, "pinned"},
		{"missing member", func(f *File) { f.Member = "fake/lib/nothere.so" }, "no member"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wheels, out := t.TempDir(), t.TempDir()
			mem := libMembers()
			path, w := fakeWheel(t, wheels, mem)
			w.Files = entries(mem, "fake/lib/libfake.so.1")
			tc.edit(&w.Files[0])
			_, err := Extract(w, path, out)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			if tc.want == "pinned" {
				assert.ErrorIs(t, err, ErrHash)
			}
			// neither the destination nor a temporary file is left behind
			ents, _ := os.ReadDir(filepath.Join(out, "cuda"))
			assert.Empty(t, ents)
		})
	}
}

func TestNotAZip(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "broken.whl")
	require.NoError(t, os.WriteFile(p, []byte("not a zip"), 0o644))
	w := Wheel{Name: "b", Version: "1", File: "broken.whl", SHA256: sha([]byte("not a zip")),
		Files: []File{{Member: "a", Dest: "a", SHA256: sha(nil), Size: 0}}}
	_, err := Extract(w, p, t.TempDir())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not a zip")
}

func TestParseValidates(t *testing.T) {
	good := Wheel{Name: "p", Version: "1", File: "p.whl", SHA256: sha(nil),
		Files: []File{{Member: "m", Dest: "lib/x.so", SHA256: sha(nil), Size: 0}}}
	enc := func(ws ...Wheel) []byte { b, _ := json.Marshal(Manifest{Wheels: ws}); return b }
	m, err := Parse(enc(good))
	require.NoError(t, err)
	assert.Equal(t, "p==1", m.Wheels[0].Requirement())

	bad := map[string]func(w *Wheel){
		"dest escapes":   func(w *Wheel) { w.Files[0].Dest = "../x.so" },
		"dest absolute":  func(w *Wheel) { w.Files[0].Dest = "/tmp/x.so" },
		"dest unclean":   func(w *Wheel) { w.Files[0].Dest = "lib//x.so" },
		"short sha":      func(w *Wheel) { w.SHA256 = "abc" },
		"file with dirs": func(w *Wheel) { w.File = "a/p.whl" },
		"no files":       func(w *Wheel) { w.Files = nil },
		"member sha":     func(w *Wheel) { w.Files[0].SHA256 = "zz" },
	}
	for name, edit := range bad {
		t.Run(name, func(t *testing.T) {
			w := good
			w.Files = append([]File(nil), good.Files...)
			edit(&w)
			_, err := Parse(enc(w))
			assert.Error(t, err)
		})
	}
	_, err = Parse(enc(good, good))
	assert.ErrorContains(t, err, "extracted from both")
	_, err = Parse([]byte(`{"wheels":[],"extra":1}`))
	assert.Error(t, err)
}

func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, ents)
}
