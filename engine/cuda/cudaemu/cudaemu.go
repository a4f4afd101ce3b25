package cudaemu

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
)

// LibName is the emulator's file name.
const LibName = "libgrefine_cuda_emu.so"

// Root is the repository root (from this file's location; tests run from the source tree).
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

// Build compiles the emulator into dir with tools/cuda-emu.sh and returns the library's
// path. A compile failure is an error (CI has a C compiler: cgo needs one).
func Build(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	cmd := exec.Command("bash", filepath.Join(Root(), "tools", "cuda-emu.sh"), abs)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building cuda-emu: %v\n%s", err, out)
	}
	return filepath.Join(abs, LibName), nil
}

// Fault runs f with memory faults turned into panics (runtime/debug.SetPanicOnFault) and
// returns what f panicked with, nil if it returned: a test's way to show that the host
// cannot touch cuda-emu's device memory (the panic is a runtime.Error with Addr()).
func Fault(f func()) (r any) {
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	defer func() { r = recover() }()
	f()
	return nil
}
