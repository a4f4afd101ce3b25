package emutest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

var lib string

// Main compiles the emulator into a temporary directory, runs the tests and removes it. A
// compile failure fails the run.
func Main(m *testing.M) int {
	dir, err := os.MkdirTemp("", "grefine-trt-emu-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "emutest:", err)
		return 2
	}
	defer os.RemoveAll(dir)
	if lib, err = Build(dir); err != nil {
		fmt.Fprintln(os.Stderr, "emutest:", err)
		return 2
	}
	if os.Getenv("GRF_TRT_EMU_ORT") == "" {
		if p := ortLibrary(); p != "" {
			os.Setenv("GRF_TRT_EMU_ORT", p)
		}
	}
	return m.Run()
}

// Lib is the path of the emulator built by Main.
func Lib() string { return lib }

// root is the repository root.
func root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

// ortLibrary is the ONNX Runtime library engine/ort loads by default.
func ortLibrary() string {
	if p := os.Getenv("ONNXRUNTIME_SHARED_LIBRARY_PATH"); p != "" {
		return p
	}
	p := filepath.Join(root(), ".deps", "ort", "libonnxruntime.so.1")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return ""
}

// Build compiles the emulator with $CC (default cc) into dir and returns the .so path,
// as tools/trt-emu.sh does.
func Build(dir string) (string, error) {
	r := root()
	hdr, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/yalue/onnxruntime_go").Output()
	if err != nil {
		return "", fmt.Errorf("locating onnxruntime_c_api.h (module github.com/yalue/onnxruntime_go; run `make setup`): %v", err)
	}
	out := filepath.Join(dir, "libgrefine_trt_emu.so")
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "cc"
	}
	cmd := exec.Command(cc, "-std=c11", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC",
		"-fvisibility=hidden", "-DGRF_TRT_EMU", "-I", filepath.Join(r, "cgo", "include"),
		"-isystem", strings.TrimSpace(string(hdr)),
		filepath.Join(r, "cgo", "trt", "fake", "fake_trt.c"), filepath.Join(r, "cgo", "trt", "emu", "ort_exec.c"),
		"-o", out, "-Wl,--no-undefined", "-Wl,--version-script="+filepath.Join(r, "cgo", "trt", "exports.map"),
		"-ldl", "-lpthread")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("compiling the trt emulator: %v\n%s", err, b)
	}
	return out, nil
}
