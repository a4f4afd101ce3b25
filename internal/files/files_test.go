package files

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriteAtomicAndSHA256(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.txt")
	require.NoError(t, WriteAtomic(p, func(w io.Writer) error { _, err := io.WriteString(w, "abc"); return err }))
	sum, err := SHA256(p)
	require.NoError(t, err)
	assert.Equal(t, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", sum, "SHA-256 of \"abc\" (FIPS 180-2 test vector)")
	// A failing writer leaves the old content and no temporary file.
	err = WriteAtomic(p, func(w io.Writer) error { _, _ = io.WriteString(w, "partial"); return errors.New("boom") })
	require.Error(t, err)
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, "abc", string(b))
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, ents, 1)
	_, err = SHA256(filepath.Join(dir, "missing"))
	assert.Error(t, err)
	assert.Error(t, WriteAtomic(filepath.Join(dir, "no", "such", "dir", "x"), func(io.Writer) error { return nil }))
}
