package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/grefine/grefine/engine/trt"
)

// trtChecks reports the TensorRT shim (path, ABI, the TensorRT headers it was built
// against), the TensorRT library it loaded (getInferLibVersion, the file, how it was
// installed, the builder resources beside it) and CUDA's view of the GPU (or why none is
// visible). It needs no GPU: the versions are known as soon as the shim loads.
func trtChecks(lib string) []check {
	r, err := trt.Probe(lib)
	if err != nil {
		return []check{{Name: "trt shim", Detail: err.Error()}}
	}
	v := r.Versions
	emulator := r.NvInfer == "" && v.Runtime == (trt.Version{})
	shim := check{Name: "trt shim", OK: true, Detail: fmt.Sprintf("%s: abi %d, built against TensorRT %s headers", r.Shim, v.ABI, v.Compiled)}
	var library check
	switch {
	case emulator:
		shim.Detail = fmt.Sprintf("%s: abi %d, the TensorRT emulator (plans run on ONNX Runtime; no TensorRT)", r.Shim, v.ABI)
		library = check{Name: "trt library", Detail: "none: the emulator loads no TensorRT"}
	default:
		library = check{Name: "trt library", OK: true, Detail: "TensorRT " + v.Runtime.String() + " (getInferLibVersion)"}
		if r.NvInfer != "" {
			library.Detail += " from " + r.NvInfer + trtInstalledFrom(r.NvInfer) + trtBuilderResources(r.NvInfer)
		}
		if v.Runtime.Major != v.Compiled.Major {
			library.OK = false
			library.Detail += fmt.Sprintf("; the shim was built against TensorRT %d headers: rebuild it (make setup-trt)", v.Compiled.Major)
		}
	}
	return []check{shim, library, trtGPUCheck(r)}
}

func trtGPUCheck(r trt.Report) check {
	c := check{Name: "trt gpu"}
	var driver string
	if r.CUDA != nil && r.CUDA.Driver > 0 {
		driver = fmt.Sprintf("; the driver supports CUDA %s", cudaVersion(r.CUDA.Driver))
	} else if r.CUDA != nil {
		driver = "; no CUDA driver"
	}
	switch {
	case r.Device != nil && r.Device.Emulated:
		c.OK = true
		c.Detail = r.Device.Name + " (emulated: the TensorRT emulator on cuda-emu, no GPU)"
	case r.Device != nil:
		d := r.Device
		c.OK = true
		c.Detail = fmt.Sprintf("%s, sm_%d%d, %.1f GiB, %d device(s)%s", d.Name, d.CCMajor, d.CCMinor, float64(d.MemoryBytes)/(1<<30), d.Count, driver)
		if r.NvInfer != "" {
			// TensorRT 10.15+ ships its builder kernels per GPU architecture
			// (libnvinfer_builder_resource_smNN.so.VERSION, plus a _ptx one).
			want := fmt.Sprintf("libnvinfer_builder_resource_sm%d%d.so.%s", d.CCMajor, d.CCMinor, r.Versions.Runtime)
			if _, err := os.Stat(filepath.Join(filepath.Dir(r.NvInfer), want)); err != nil {
				c.Detail += "; no " + want + " beside libnvinfer: building plans on this GPU may fail (running plans does not need it)"
			}
		}
	case r.CUDA != nil && r.CUDA.ErrorName != "":
		c.Detail = fmt.Sprintf("no CUDA device visible: %s (%s)%s", r.CUDA.ErrorName, r.CUDA.ErrorText, driver)
	default:
		c.Detail = "no CUDA device visible" + driver
	}
	return c
}

func cudaVersion(v int) string { return fmt.Sprintf("%d.%d", v/1000, v%1000/10) }

// trtInstalledFrom summarises the INSTALLED stamp `make setup-trt` writes above lib/.
func trtInstalledFrom(nvinfer string) string {
	if w := stampSummary(filepath.Join(filepath.Dir(nvinfer), "..", "INSTALLED"), "(tools/setuptrt): "); w != "" {
		return " (make setup-trt: " + w + ")"
	}
	return ""
}

// stampSummary returns what follows marker on the first line of an INSTALLED stamp
// (written by make setup-gpu and make setup-trt), or "".
func stampSummary(path, marker string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	first, _, _ := strings.Cut(string(b), "\n")
	_, w, _ := strings.Cut(first, marker)
	return w
}

// trtBuilderResources lists the builder resource libraries beside libnvinfer.
func trtBuilderResources(nvinfer string) string {
	m, _ := filepath.Glob(filepath.Join(filepath.Dir(nvinfer), "libnvinfer_builder_resource*.so*"))
	var kinds []string
	for _, p := range m {
		k := strings.TrimPrefix(filepath.Base(p), "libnvinfer_builder_resource")
		k, _, _ = strings.Cut(k, ".so")
		kinds = append(kinds, strings.TrimPrefix(k, "_"))
	}
	sort.Strings(kinds)
	if len(kinds) == 0 {
		return "; no builder resources beside it"
	}
	return "; builder resources beside it: " + strings.Join(kinds, ", ")
}
