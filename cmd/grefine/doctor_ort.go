package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/grefine/grefine/engine/ort"
)

// ortGPUChecks reports the ONNX Runtime GPU build (`make setup-gpu`), the CUDA 13 libraries
// its CUDA execution provider needs, and whether the provider is usable in this process.
func ortGPUChecks() []check {
	lib := ort.GPULibraryPath("")
	if l := ort.LibraryPath(""); ort.HasCUDAProvider(l) {
		lib = l // ONNXRUNTIME_SHARED_LIBRARY_PATH already names a GPU build
	}
	var out []check
	switch {
	case !fileOK(lib):
		out = append(out, check{Name: "ort-gpu library", Detail: fmt.Sprintf("not found at %s (run `make setup-gpu`, or set %s)", lib, ort.EnvGPULibrary)})
	case !ort.HasCUDAProvider(lib):
		out = append(out, check{Name: "ort-gpu library", Detail: fmt.Sprintf("%s has no %s beside it (a CPU-only build)", lib, ort.ProviderCUDA)})
	default:
		out = append(out, check{Name: "ort-gpu library", OK: true, Detail: lib + installedFrom(lib)})
	}

	rt := ort.ProbeCUDARuntime(lib)
	var found, missing []string
	for _, l := range rt.Libraries {
		switch {
		case l.Path != "":
			found = append(found, l.Soname)
		case l.Required:
			missing = append(missing, l.Soname)
		}
	}
	detail := fmt.Sprintf("%d CUDA libraries loaded", len(found))
	if len(rt.Libraries) > 0 && rt.Libraries[0].Path != "" {
		detail += " (libcudart.so.13 from " + rt.Libraries[0].Path + ")"
	}
	if len(missing) > 0 {
		detail += "; missing: " + strings.Join(missing, ", ")
	}
	if rt.DriverVersion > 0 && rt.Err == nil {
		detail += fmt.Sprintf("; driver supports CUDA %d.%d", rt.DriverVersion/1000, (rt.DriverVersion%1000)/10)
	}
	if rt.Err != nil {
		out = append(out, check{Name: "ort-gpu cuda", Detail: detail + "; " + rt.Err.Error()})
	} else {
		out = append(out, check{Name: "ort-gpu cuda", OK: true, Detail: fmt.Sprintf("%s; %d device(s)", detail, rt.Devices)})
	}

	b, err := ort.NewWith(ort.Options{Device: ort.DeviceCUDA})
	if err == nil {
		err = b.Available()
	}
	if err != nil {
		out = append(out, check{Name: "backend ort/cuda", Detail: err.Error()})
	} else {
		out = append(out, check{Name: "backend ort/cuda", OK: true, Detail: b.Version() + " from " + b.Library()})
	}
	return out
}

func fileOK(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// installedFrom summarises the INSTALLED stamp `make setup-gpu` writes beside the library.
func installedFrom(lib string) string {
	if w := stampSummary(filepath.Join(filepath.Dir(lib), "INSTALLED"), "wheels: "); w != "" {
		return " (make setup-gpu: " + w + ")"
	}
	return ""
}
