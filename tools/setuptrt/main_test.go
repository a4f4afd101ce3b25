package main

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/internal/wheel"
)

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// TestEmbeddedManifest checks the committed pins: they parse, the jar is the one Maven
// Central serves (file name from the coordinate, SHA-256 as measured), and the libraries
// the shim links and the builder loads are all pinned.
func TestEmbeddedManifest(t *testing.T) {
	m, err := parseManifest(manifestJSON)
	require.NoError(t, err)
	assert.Equal(t, "10.15.1", m.TensorRT)
	assert.Equal(t, "v10.15", m.HeadersTag)
	assert.Equal(t, "8543a6bda95c5d42141d409e1b74024b444e96334a3815d53997cc4ec3cfce83", m.Jar.SHA256)
	p, err := jarPath("/m2", m.Maven, m.Jar.File)
	require.NoError(t, err)
	assert.Equal(t, "/m2/org/bytedeco/tensorrt/10.15-1.5.13/tensorrt-10.15-1.5.13-linux-x86_64-redist.jar", p)
	dests := map[string]int64{}
	for _, f := range m.Jar.Files {
		dests[f.Dest] = f.Size
	}
	assert.Equal(t, int64(640939528), dests["lib/libnvinfer.so.10"])
	assert.Equal(t, int64(4758576), dests["lib/libnvonnxparser.so.10"])
	assert.Contains(t, dests, "lib/libnvinfer_builder_resource_ptx.so.10.15.1")
	assert.Equal(t, "libnvinfer.so.10", m.Links["lib/libnvinfer.so"], "CMake's find_library(nvinfer) needs the unversioned name")
}

func TestManifestRejects(t *testing.T) {
	base := map[string]any{}
	require.NoError(t, json.Unmarshal(manifestJSON, &base))
	for name, edit := range map[string]func(map[string]any){
		"unknown field":   func(m map[string]any) { m["extra"] = 1 },
		"bad version":     func(m map[string]any) { m["tensorrt"] = "10.15" },
		"bad coordinate":  func(m map[string]any) { m["maven"] = "org.bytedeco:tensorrt:10.15-1.5.13" },
		"file disagrees":  func(m map[string]any) { m["maven"] = "org.bytedeco:tensorrt:10.16-1.5.13:jar:linux-x86_64-redist" },
		"link escapes":    func(m map[string]any) { m["links"] = map[string]string{"../libx.so": "libx.so.1"} },
		"no headers tag":  func(m map[string]any) { m["headers_tag"] = "" },
		"jar without sha": func(m map[string]any) { m["jar"].(map[string]any)["sha256"] = "abc" },
	} {
		t.Run(name, func(t *testing.T) {
			var m map[string]any
			require.NoError(t, json.Unmarshal(manifestJSON, &m))
			edit(m)
			b, err := json.Marshal(m)
			require.NoError(t, err)
			_, err = parseManifest(b)
			assert.Error(t, err)
		})
	}
}

// fakeJar writes a zip laid out like the redist jar into a Maven repository m2 and returns
// a manifest file pinning it.
func fakeJar(t *testing.T, m2, dir string, libs map[string][]byte) (manifestPath string, jar string) {
	t.Helper()
	coord := "org.example:fakert:1.2-3:jar:linux-x86_64-redist"
	file := "fakert-1.2-3-linux-x86_64-redist.jar"
	jar, err := jarPath(m2, coord, file)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Dir(jar), 0o755))
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	var files []wheel.File
	for name, body := range libs {
		member := "org/example/fakert/linux-x86_64/" + name
		w, err := zw.Create(member)
		require.NoError(t, err)
		_, err = w.Write(body)
		require.NoError(t, err)
		files = append(files, wheel.File{Member: member, Dest: "lib/" + name, SHA256: sha(body), Size: int64(len(body))})
	}
	w, err := zw.Create("META-INF/MANIFEST.MF")
	require.NoError(t, err)
	_, _ = w.Write([]byte("Manifest-Version: 1.0\n"))
	require.NoError(t, zw.Close())
	require.NoError(t, os.WriteFile(jar, buf.Bytes(), 0o644))
	m := Manifest{TensorRT: "10.15.1", CUDA: "13", HeadersTag: "v10.15", Maven: coord,
		Jar:   wheel.Wheel{Name: "org.example:fakert", Version: "1.2-3", File: file, SHA256: sha(buf.Bytes()), Files: files},
		Links: map[string]string{"lib/libnvinfer.so": "libnvinfer.so.10"}}
	b, err := json.MarshalIndent(m, "", " ")
	require.NoError(t, err)
	manifestPath = filepath.Join(dir, "manifest.json")
	require.NoError(t, os.WriteFile(manifestPath, b, 0o644))
	return manifestPath, jar
}

func fakeLibs() map[string][]byte {
	return map[string][]byte{
		"libnvinfer.so.10":      []byte("\x7fELF fake nvinfer"),
		"libnvonnxparser.so.10": []byte("\x7fELF fake parser, longer"),
	}
}

func runTool(args ...string) (int, string, string) {
	var o, e bytes.Buffer
	code := run(args, &o, &e)
	return code, o.String(), e.String()
}

// TestInstallFromFakeJar: need names the coordinate until the jar is in the cache, install
// extracts exactly the pinned libraries and the links, a second install keeps everything,
// and a damaged library is noticed.
func TestInstallFromFakeJar(t *testing.T) {
	m2, dir, out := t.TempDir(), t.TempDir(), filepath.Join(t.TempDir(), "trt")
	man, jar := fakeJar(t, m2, dir, fakeLibs())

	moved := jar + ".away"
	require.NoError(t, os.Rename(jar, moved))
	code, stdout, _ := runTool("-manifest", man, "-m2", m2, "-out", out, "need")
	require.Equal(t, 0, code)
	assert.Equal(t, "org.example:fakert:1.2-3:jar:linux-x86_64-redist\n", stdout, "nothing installed, no jar: fetch it")
	code, _, stderr := runTool("-manifest", man, "-m2", m2, "-out", out, "install")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "the jar is not in the Maven cache")
	assert.Equal(t, 1, strings.Count(stderr, "\n"), "one line: %q", stderr)
	require.NoError(t, os.Rename(moved, jar))

	code, stdout, _ = runTool("-manifest", man, "-m2", m2, "-out", out, "need")
	require.Equal(t, 0, code)
	assert.Empty(t, stdout, "the jar is cached with its hash: nothing to fetch")

	code, stdout, stderr = runTool("-manifest", man, "-m2", m2, "-out", out, "install")
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, 2, strings.Count(stdout, "installed"))
	for name, body := range fakeLibs() {
		b, err := os.ReadFile(filepath.Join(out, "lib", name))
		require.NoError(t, err)
		assert.Equal(t, body, b)
	}
	target, err := os.Readlink(filepath.Join(out, "lib", "libnvinfer.so"))
	require.NoError(t, err)
	assert.Equal(t, "libnvinfer.so.10", target)
	_, err = os.Stat(filepath.Join(out, "lib", "MANIFEST.MF"))
	assert.True(t, os.IsNotExist(err), "only pinned members are extracted")
	stamp, err := os.ReadFile(filepath.Join(out, "INSTALLED"))
	require.NoError(t, err)
	assert.Contains(t, string(stamp), "TensorRT 10.15.1 for CUDA 13")
	code, _, _ = runTool("-manifest", man, "-out", out, "verify")
	assert.Equal(t, 0, code)

	// Second run: kept, and the jar is no longer needed.
	require.NoError(t, os.Remove(jar))
	code, stdout, _ = runTool("-manifest", man, "-m2", m2, "-out", out, "need")
	require.Equal(t, 0, code)
	assert.Empty(t, stdout)
	code, stdout, stderr = runTool("-manifest", man, "-m2", m2, "-out", out, "install")
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, 2, strings.Count(stdout, "kept"))

	// A damaged library: verify fails, need asks for the jar again.
	require.NoError(t, os.WriteFile(filepath.Join(out, "lib", "libnvinfer.so.10"), []byte("damaged"), 0o755))
	code, _, stderr = runTool("-manifest", man, "-out", out, "verify")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "lib/libnvinfer.so.10")
	_, stdout, _ = runTool("-manifest", man, "-m2", m2, "-out", out, "need")
	assert.NotEmpty(t, stdout)
}

// TestBadJarExtractsNothing: a jar whose SHA-256 is not the pinned one is refused before
// anything is written, with one line that says what to delete.
func TestBadJarExtractsNothing(t *testing.T) {
	m2, dir, out := t.TempDir(), t.TempDir(), filepath.Join(t.TempDir(), "trt")
	man, jar := fakeJar(t, m2, dir, fakeLibs())
	f, err := os.OpenFile(jar, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, _ = f.Write([]byte("tampered"))
	require.NoError(t, f.Close())
	code, _, stderr := runTool("-manifest", man, "-m2", m2, "-out", out, "install")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "refusing to extract")
	assert.Contains(t, stderr, "delete "+jar)
	assert.Equal(t, 1, strings.Count(stderr, "\n"), "one line: %q", stderr)
	entries, _ := os.ReadDir(filepath.Join(out, "lib"))
	assert.Empty(t, entries, "nothing extracted")
}

func writeVersionHeader(t *testing.T, dir, major, minor, patch string, indirect bool) {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	var s string
	if indirect { // the 10.x layout
		s = "#define TRT_MAJOR_ENTERPRISE " + major + "\n#define TRT_MINOR_ENTERPRISE " + minor + "\n#define TRT_PATCH_ENTERPRISE " + patch +
			"\n#define NV_TENSORRT_MAJOR TRT_MAJOR_ENTERPRISE //!< major\n#define NV_TENSORRT_MINOR TRT_MINOR_ENTERPRISE\n#define NV_TENSORRT_PATCH TRT_PATCH_ENTERPRISE\n"
	} else {
		s = "#define NV_TENSORRT_MAJOR " + major + "\n#define NV_TENSORRT_MINOR " + minor + "\n#define NV_TENSORRT_PATCH " + patch + "\n"
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "NvInferVersion.h"), []byte(s), 0o644))
}

func TestHeaders(t *testing.T) {
	ok := t.TempDir()
	writeVersionHeader(t, ok, "10", "15", "1", true)
	code, stdout, stderr := runTool("headers", ok)
	assert.Equal(t, 0, code, stderr)
	assert.Equal(t, "10.15.1\n", stdout)

	plain := t.TempDir()
	writeVersionHeader(t, plain, "10", "15", "1", false)
	code, _, _ = runTool("headers", plain)
	assert.Equal(t, 0, code)

	other := t.TempDir()
	writeVersionHeader(t, other, "10", "16", "0", true)
	code, _, stderr = runTool("headers", other)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "header/library version mismatch")
	assert.Contains(t, stderr, "TensorRT 10.16.0 headers, the libraries are 10.15.1")
	assert.Equal(t, 1, strings.Count(stderr, "\n"))

	code, _, stderr = runTool("headers", t.TempDir())
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "no TensorRT headers")
	assert.Contains(t, stderr, "v10.15")
}

// TestRealHeaders checks the parser against NVIDIA's own NvInferVersion.h when a previous
// `make setup-trt` exported it (headers are never committed).
func TestRealHeaders(t *testing.T) {
	dir := filepath.Join("..", "..", ".deps", "trt", "include")
	if _, err := os.Stat(filepath.Join(dir, "NvInferVersion.h")); err != nil {
		t.Skipf("no exported TensorRT headers in %s (run make setup-trt): %v", dir, err)
	}
	v, err := headerVersion(dir)
	require.NoError(t, err)
	assert.Equal(t, "10.15.1", v.String())
}

func TestUsage(t *testing.T) {
	code, _, _ := runTool()
	assert.Equal(t, 2, code)
	code, _, stderr := runTool("bogus")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "unknown command")
	code, stdout, _ := runTool("info", "maven")
	assert.Equal(t, 0, code)
	assert.Equal(t, "org.bytedeco:tensorrt:10.15-1.5.13:jar:linux-x86_64-redist\n", stdout)
	code, _, _ = runTool("info", "nope")
	assert.Equal(t, 1, code)
	code, _, stderr = runTool("need")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "-m2")
}
