package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// setupScript runs tools/setup-trt.sh with env added to the test's environment (no
// TensorRT_ROOT/TRT_* leaking in) and returns its exit code, stdout and stderr.
func setupScript(t *testing.T, env ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command("bash", filepath.Join("..", "setup-trt.sh"))
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "TensorRT_ROOT", "TRT_INCLUDE", "TRT_SRC", "GRF_TRT_DIR", "GRF_M2_REPO", "MVN", "GRF_NVCC", "GRF_TRT_MANIFEST", "GRF_TRT_SKIP_BUILD":
			continue
		}
		cmd.Env = append(cmd.Env, kv)
	}
	cmd.Env = append(cmd.Env, env...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code := 0
	if x, ok := err.(*exec.ExitError); ok {
		code = x.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return code, o.String(), e.String()
}

// oneLine asserts a failure: exit 1 and exactly one stderr line, from setup-trt, holding want.
func oneLineFailure(t *testing.T, code int, stderr, want string) {
	t.Helper()
	assert.Equal(t, 1, code, "stderr: %s", stderr)
	lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
	assert.Len(t, lines, 1, "one line: %q", stderr)
	assert.True(t, strings.HasPrefix(lines[0], "setup-trt: "), lines[0])
	assert.Contains(t, lines[0], want)
}

// fakeMVN writes an executable that stands in for mvn: it logs each call and either
// copies src to dest (the jar's place in the Maven repository) or fails like mvn without
// a network.
func fakeMVN(t *testing.T, src, dest string, fail bool) (path, calls string) {
	t.Helper()
	dir := t.TempDir()
	calls = filepath.Join(dir, "calls")
	body := "#!/bin/sh\necho \"$@\" >>" + calls + "\n"
	if fail {
		body += "echo '[ERROR] Failed to execute goal dependency:get: Could not transfer artifact: Network is unreachable'\nexit 1\n"
	} else {
		body += "mkdir -p " + filepath.Dir(dest) + " && cp " + src + " " + dest + "\n"
	}
	path = filepath.Join(dir, "mvn")
	require.NoError(t, os.WriteFile(path, []byte(body), 0o755))
	return path, calls
}

// TestScriptFailures: each missing piece stops setup-trt.sh with one clear line, and the
// cheap checks come before any download (mvn is never called for them).
func TestScriptFailures(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs bash and go run")
	}
	work := t.TempDir()
	m2 := filepath.Join(work, "m2")
	man, jar := fakeJar(t, filepath.Join(work, "jarsrc"), work, fakeLibs())
	dest, err := jarPath(m2, "org.example:fakert:1.2-3:jar:linux-x86_64-redist", filepath.Base(jar))
	require.NoError(t, err)
	good := filepath.Join(work, "include-good")
	writeVersionHeader(t, good, "10", "15", "1", true)
	bad := filepath.Join(work, "include-bad")
	writeVersionHeader(t, bad, "10", "16", "0", true)
	mvnOK, okCalls := fakeMVN(t, jar, dest, false)
	common := []string{"GRF_TRT_MANIFEST=" + man, "GRF_M2_REPO=" + m2, "GRF_TRT_SKIP_BUILD=1"}
	with := func(dir string, extra ...string) []string {
		return append(append([]string{"GRF_TRT_DIR=" + filepath.Join(work, dir)}, common...), extra...)
	}

	t.Run("no CUDA toolkit", func(t *testing.T) {
		code, _, stderr := setupScript(t, "GRF_NVCC=/nonexistent/nvcc", "GRF_TRT_MANIFEST="+man)
		oneLineFailure(t, code, stderr, "no CUDA toolkit")
	})
	t.Run("TensorRT_ROOT without headers", func(t *testing.T) {
		code, _, stderr := setupScript(t, "GRF_NVCC=/bin/true", "TensorRT_ROOT="+t.TempDir())
		oneLineFailure(t, code, stderr, "has no include/NvInfer.h")
	})
	t.Run("no headers", func(t *testing.T) {
		code, _, stderr := setupScript(t, with("a", "MVN="+mvnOK)...)
		oneLineFailure(t, code, stderr, "no TensorRT headers")
	})
	t.Run("header version mismatch", func(t *testing.T) {
		code, _, stderr := setupScript(t, with("b", "MVN="+mvnOK, "TRT_INCLUDE="+bad)...)
		oneLineFailure(t, code, stderr, "header/library version mismatch")
	})
	t.Run("TRT_SRC without the tag", func(t *testing.T) {
		code, _, stderr := setupScript(t, with("c", "MVN="+mvnOK, "TRT_SRC="+t.TempDir())...)
		oneLineFailure(t, code, stderr, "neither a git repository holding tag v10.15")
	})
	_, err = os.Stat(okCalls)
	assert.True(t, os.IsNotExist(err), "cheap checks fail before mvn runs")

	t.Run("no mvn", func(t *testing.T) {
		code, _, stderr := setupScript(t, with("d", "MVN=/nonexistent/mvn", "TRT_INCLUDE="+good)...)
		oneLineFailure(t, code, stderr, "mvn not found")
	})
	t.Run("no network", func(t *testing.T) {
		mvn, _ := fakeMVN(t, jar, dest, true)
		code, _, stderr := setupScript(t, with("e", "MVN="+mvn, "TRT_INCLUDE="+good)...)
		oneLineFailure(t, code, stderr, "mvn could not fetch org.example:fakert")
		assert.Contains(t, stderr, "Network is unreachable")
	})
	t.Run("bad hash", func(t *testing.T) {
		tampered := filepath.Join(work, "tampered.jar")
		b, err := os.ReadFile(jar)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(tampered, append(b, 'x'), 0o644))
		m2bad := filepath.Join(work, "m2bad")
		destBad, _ := jarPath(m2bad, "org.example:fakert:1.2-3:jar:linux-x86_64-redist", filepath.Base(jar))
		mvn, _ := fakeMVN(t, tampered, destBad, false)
		code, _, stderr := setupScript(t, "GRF_TRT_DIR="+filepath.Join(work, "f"), "GRF_TRT_MANIFEST="+man, "GRF_M2_REPO="+m2bad,
			"GRF_TRT_SKIP_BUILD=1", "MVN="+mvn, "TRT_INCLUDE="+good)
		oneLineFailure(t, code, stderr, "refusing to extract")
		entries, _ := os.ReadDir(filepath.Join(work, "f", "lib"))
		assert.Empty(t, entries, "nothing extracted from a bad jar")
		_, err = os.Stat(filepath.Join(work, "f", "include"))
		assert.True(t, os.IsNotExist(err), "headers are moved in only after the libraries")
	})
	t.Run("fetch, install, then a second run from the cache", func(t *testing.T) {
		code, stdout, stderr := setupScript(t, with("g", "MVN="+mvnOK, "TRT_INCLUDE="+good)...)
		require.Equal(t, 0, code, stderr)
		assert.Contains(t, stdout, "fetching org.example:fakert")
		for name, body := range fakeLibs() {
			b, err := os.ReadFile(filepath.Join(work, "g", "lib", name))
			require.NoError(t, err)
			assert.Equal(t, body, b)
		}
		_, err := os.Stat(filepath.Join(work, "g", "include", "NvInferVersion.h"))
		require.NoError(t, err)
		calls, err := os.ReadFile(okCalls)
		require.NoError(t, err)
		assert.Equal(t, 1, strings.Count(string(calls), "\n"))
		assert.Contains(t, string(calls), "dependency:get -Dtransitive=false -Dartifact=org.example:fakert:1.2-3:jar:linux-x86_64-redist")

		// Second run: no TRT_INCLUDE needed (the exported headers stay), no mvn call.
		code, stdout, stderr = setupScript(t, with("g", "MVN=/nonexistent/mvn")...)
		require.Equal(t, 0, code, stderr)
		assert.NotContains(t, stdout, "fetching")
		assert.Contains(t, stdout, "kept")
	})
}
