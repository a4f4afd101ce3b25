package native

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fake is a test library: its Open records every call and succeeds for the paths in ok.
type fake struct {
	calls []string
	ok    map[string]bool
}

func (f *fake) open(path string) error {
	f.calls = append(f.calls, path)
	if f.ok[path] {
		return nil
	}
	return errors.New(path + ": cannot open shared object file: No such file or directory")
}

// newLib makes a Library whose binary lives in dir/bin, looked up beside it as libx.so and
// ../build/libx.so, with $GRF_TEST_LIB unset.
func newLib(t *testing.T, dir string, f *fake) *Library {
	t.Helper()
	t.Setenv("GRF_TEST_LIB", "")
	l := New(Spec{Name: "x", What: "libx.so", File: "libx.so", Flag: "--x-lib", Env: "GRF_TEST_LIB",
		Beside: []string{"libx.so", "../build/libx.so"}, Hint: "run `make x`", Open: f.open})
	l.exe = func() (string, error) { return filepath.Join(dir, "bin", "grefine"), nil }
	return l
}

func touch(t *testing.T, p string) string {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte("lib"), 0o644))
	return p
}

// TestSearchOrder: the explicit path, then the variable, then beside the binary (in the
// Spec's order), then the system loader; the first step that names a library decides.
func TestSearchOrder(t *testing.T) {
	dir := t.TempDir()
	explicit := touch(t, filepath.Join(dir, "explicit", "libx.so"))
	env := touch(t, filepath.Join(dir, "env", "libx.so"))
	beside := touch(t, filepath.Join(dir, "bin", "libx.so"))
	build := touch(t, filepath.Join(dir, "build", "libx.so"))
	ok := map[string]bool{explicit: true, env: true, beside: true, build: true, "libx.so": true}

	for _, tc := range []struct {
		name     string
		explicit string
		env      string
		remove   []string
		want     Result
	}{
		{name: "explicit first", explicit: explicit, env: env, want: Result{explicit, "--x-lib"}},
		{name: "then the variable", env: env, want: Result{env, "$GRF_TEST_LIB"}},
		{name: "then beside the binary", want: Result{beside, "beside the binary"}},
		{name: "in the spec's order", remove: []string{beside}, want: Result{build, "beside the binary"}},
		{name: "then the system loader", remove: []string{beside, build}, want: Result{"libx.so", "system loader"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, p := range tc.remove {
				require.NoError(t, os.Rename(p, p+".away"))
				t.Cleanup(func() { require.NoError(t, os.Rename(p+".away", p)) })
			}
			f := &fake{ok: ok}
			l := newLib(t, dir, f)
			t.Setenv("GRF_TEST_LIB", tc.env)
			r, err := l.Load(tc.explicit)
			require.NoError(t, err)
			assert.Equal(t, tc.want, r)
			assert.Equal(t, []string{tc.want.Path}, f.calls, "only the chosen library is opened")
			got, loaded := l.Loaded()
			assert.True(t, loaded)
			assert.Equal(t, tc.want, got)
			fresh := newLib(t, dir, &fake{ok: ok})
			t.Setenv("GRF_TEST_LIB", tc.env)
			assert.Equal(t, tc.want, fresh.Locate(tc.explicit), "Locate names what Load loads")
		})
	}

	// A relative explicit path is made absolute against the working directory.
	t.Chdir(filepath.Join(dir, "explicit"))
	f := &fake{ok: ok}
	r, err := newLib(t, dir, f).Load("libx.so")
	require.NoError(t, err)
	assert.Equal(t, explicit, r.Path)
}

// TestExplicitNeverFallsThrough: a missing explicit library or variable is an error, even
// though a library waits beside the binary.
func TestExplicitNeverFallsThrough(t *testing.T) {
	dir := t.TempDir()
	beside := touch(t, filepath.Join(dir, "bin", "libx.so"))
	f := &fake{ok: map[string]bool{beside: true}}
	l := newLib(t, dir, f)
	missing := filepath.Join(dir, "nowhere", "libx.so")
	_, err := l.Load(missing)
	require.ErrorIs(t, err, ErrNotFound)
	assert.EqualError(t, err, "x: libx.so not found: tried "+missing+" (--x-lib): no such file; run `make x`")
	t.Setenv("GRF_TEST_LIB", missing)
	_, err = l.Load("")
	require.ErrorIs(t, err, ErrNotFound)
	assert.Contains(t, err.Error(), "tried "+missing+" ($GRF_TEST_LIB): no such file")
	assert.Empty(t, f.calls, "nothing opened")
}

// TestMessageListsEveryPlace: a failed default search names each place with its reason.
func TestMessageListsEveryPlace(t *testing.T) {
	dir := t.TempDir()
	f := &fake{}
	_, err := newLib(t, dir, f).Load("")
	require.ErrorIs(t, err, ErrNotFound)
	want := "x: libx.so not found: tried --x-lib (not given), $GRF_TEST_LIB (not set), " +
		filepath.Join(dir, "bin", "libx.so") + " (no such file), " + filepath.Join(dir, "build", "libx.so") +
		" (no such file), system loader libx.so (cannot open shared object file: No such file or directory); run `make x`"
	assert.Equal(t, want, err.Error())
	assert.Equal(t, []string{"libx.so"}, f.calls)
}

// TestLoadFailureStops: a library that exists but does not load is the error; later places
// are not tried (a broken install is never papered over by another library).
func TestLoadFailureStops(t *testing.T) {
	dir := t.TempDir()
	broken := touch(t, filepath.Join(dir, "bin", "libx.so"))
	build := touch(t, filepath.Join(dir, "build", "libx.so"))
	f := &fake{ok: map[string]bool{build: true}}
	_, err := newLib(t, dir, f).Load("")
	require.ErrorIs(t, err, ErrLoad)
	assert.Contains(t, err.Error(), "x: cannot load libx.so "+broken+" (beside the binary): "+broken+": cannot open")
	assert.Equal(t, []string{broken}, f.calls)
}

// TestCachedError: asking again the same way returns the cached error without a new
// attempt; another request is tried (a failed load loads nothing).
func TestCachedError(t *testing.T) {
	dir := t.TempDir()
	bad := touch(t, filepath.Join(dir, "bad", "libx.so"))
	good := touch(t, filepath.Join(dir, "good", "libx.so"))
	f := &fake{ok: map[string]bool{good: true}}
	l := newLib(t, dir, f)
	_, err1 := l.Load(bad)
	_, err2 := l.Load(bad)
	require.ErrorIs(t, err1, ErrLoad)
	assert.Same(t, err1, err2, "the same error value, cached")
	_, err3 := l.Load("")
	_, err4 := l.Load("")
	require.ErrorIs(t, err3, ErrNotFound)
	assert.Same(t, err3, err4)
	assert.Equal(t, []string{bad, "libx.so"}, f.calls, "each request tried once")
	r, err := l.Load(good)
	require.NoError(t, err)
	assert.Equal(t, good, r.Path)
}

// TestConflict: once a library is loaded, requests without a path get it, the same path is
// fine, and another path is an error naming both (never silently ignored).
func TestConflict(t *testing.T) {
	dir := t.TempDir()
	a := touch(t, filepath.Join(dir, "a", "libx.so"))
	b := touch(t, filepath.Join(dir, "b", "libx.so"))
	f := &fake{ok: map[string]bool{a: true, b: true}}
	l := newLib(t, dir, f)
	_, err := l.Load(a)
	require.NoError(t, err)
	r, err := l.Load("")
	require.NoError(t, err)
	assert.Equal(t, a, r.Path)
	_, err = l.Load(a)
	require.NoError(t, err)
	_, err = l.Load(b)
	require.ErrorIs(t, err, ErrConflict)
	assert.Contains(t, err.Error(), "libx.so is already loaded from "+a+" (--x-lib); cannot also load "+b+" (--x-lib)")
	t.Setenv("GRF_TEST_LIB", b)
	_, err = l.Load("")
	require.ErrorIs(t, err, ErrConflict, "a variable naming another file conflicts too")
	assert.Contains(t, err.Error(), b+" ($GRF_TEST_LIB)")
	missing := filepath.Join(dir, "c", "libx.so")
	_, err = l.Load(missing)
	require.ErrorIs(t, err, ErrNotFound, "another file that does not even exist")
	require.ErrorIs(t, err, ErrConflict)
	assert.EqualError(t, err, "x: libx.so not found: tried "+missing+" (--x-lib): no such file; libx.so is already loaded from "+
		a+" (--x-lib), one process loads one; run `make x`")
	assert.Equal(t, []string{a}, f.calls)
}

// TestDlopen: the real loader reports dlerror's message and opens system libraries by name.
func TestDlopen(t *testing.T) {
	_, err := Dlopen(filepath.Join(t.TempDir(), "missing.so"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cannot open shared object file")
	notELF := touch(t, filepath.Join(t.TempDir(), "bad.so"))
	_, err = Dlopen(notELF)
	require.Error(t, err)
	assert.True(t, strings.Contains(err.Error(), "file too short") || strings.Contains(err.Error(), "invalid ELF header"), err.Error())
	h, err := Dlopen("libc.so.6")
	require.NoError(t, err)
	assert.NotNil(t, h.Pointer())
	h.Close()
}
