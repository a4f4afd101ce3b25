package trttest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

var lib string

// Main compiles the fake shim into a temporary directory, runs the tests and removes it.
// A compile failure fails the run (CI has a C compiler: cgo needs one).
func Main(m *testing.M) int {
	dir, err := os.MkdirTemp("", "grefine-trt-fake-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "trttest:", err)
		return 2
	}
	defer os.RemoveAll(dir)
	lib, err = Build(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "trttest:", err)
		return 2
	}
	return m.Run()
}

// Lib is the path of the fake shim built by Main.
func Lib() string { return lib }

// Source is the fake shim's C source file.
func Source() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "cgo", "trt", "fake", "fake_trt.c")
}

// Build compiles the fake shim with $CC (default cc) into dir and returns the .so path.
func Build(dir string) (string, error) {
	src := Source()
	inc := filepath.Join(filepath.Dir(src), "..", "..", "include")
	out := filepath.Join(dir, "libgrefine_trt_fake.so")
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "cc"
	}
	cmd := exec.Command(cc, "-std=c11", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC",
		"-I", inc, src, "-o", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("compiling the fake trt shim: %v\n%s", err, b)
	}
	return out, nil
}
