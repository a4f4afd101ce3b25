package emutest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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

// CUDALib is the path of cuda-emu built by Main beside the emulator: the copy the
// emulator links, so tests that also open engine/cuda must pass it
// (cuda.Options{LibPath: emutest.CUDALib()}) to share one allocation table.
func CUDALib() string { return filepath.Join(filepath.Dir(lib), "libgrefine_cuda_emu.so") }

// Build compiles the emulator and cuda-emu into dir with tools/trt-emu.sh (the command
// of `make trt-emu`) and returns the emulator's path.
func Build(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	cmd := exec.Command("bash", filepath.Join(root(), "tools", "trt-emu.sh"), abs)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the trt emulator: %v\n%s", err, b)
	}
	return filepath.Join(abs, "libgrefine_trt_emu.so"), nil
}
