package conformance

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/grefine/grefine/engine"
	_ "github.com/grefine/grefine/engine/cuda" // the cuda and cuda-emu devices
	"github.com/grefine/grefine/engine/ort"
	"github.com/grefine/grefine/engine/trt"
)

// Tolerances of the pairs whose float32 maths is TF32 (10-bit mantissa) by default.
var tf32 = &Tolerance{Abs: 1e-2, Rel: 1e-2}

// Tolerances of strongly typed fp16 plans of float32 engines (only fp16 exports run there).
var fp16 = &Tolerance{Abs: 5e-2, Rel: 5e-2}

// EnvEmulator names the TensorRT emulator shim (default build/libgrefine_trt_emu.so).
const EnvEmulator = "GRF_TRT_EMU_LIB"

// DefaultPairs lists the pairs of the package comment; root is the repository root (for
// build/).
func DefaultPairs(root string) []Pair {
	return []Pair{
		{Name: "ort/cpu", New: func() (*Env, error) { return ortEnv("ort/cpu", ort.Options{}, 0) }},
		{Name: "ort/cpu-1t", New: func() (*Env, error) { return ortEnv("ort/cpu-1t", ort.Options{}, 1) }},
		{Name: "ort/cuda", New: func() (*Env, error) {
			return ortEnv("ort/cuda", ort.Options{Device: ort.DeviceCUDA, CUDA: ort.CUDAOptions{DisableTF32: true}}, 0)
		}},
		{Name: "ort/cuda-tf32", Tol: tf32, New: func() (*Env, error) {
			return ortEnv("ort/cuda-tf32", ort.Options{Device: ort.DeviceCUDA}, 0)
		}},
		{Name: "ort/cuda-dev", New: func() (*Env, error) {
			return ortDeviceEnv("ort/cuda-dev", "cuda", ort.Options{Device: ort.DeviceCUDA, CUDA: ort.CUDAOptions{DisableTF32: true}})
		}},
		{Name: "ort/cuda-emu", New: func() (*Env, error) { return ortDeviceEnv("ort/cuda-emu", "cuda-emu", ort.Options{}) }},
		{Name: "trt/cuda", Tol: tf32, New: func() (*Env, error) { return trtEnv("trt/cuda", trt.Options{}) }},
		// The ONNX file's own precisions (strongly typed): fp16 exports such as
		// tools/gpu/sdxl_unet_step.py's; builder level $GRF_TRT_OPT_LEVEL (0: TensorRT's 3).
		{Name: "trt/cuda-typed", Tol: fp16, New: func() (*Env, error) { return trtEnv("trt/cuda-typed", trt.Options{}) }},
		{Name: "trt/emu", New: func() (*Env, error) {
			lib := os.Getenv(EnvEmulator)
			if lib == "" {
				lib = filepath.Join(root, "build", "libgrefine_trt_emu.so")
			}
			if _, err := os.Stat(lib); err != nil {
				return nil, fmt.Errorf("%w: trt/emu: TensorRT emulator not built at %s (set %s)", engine.ErrUnavailable, lib, EnvEmulator)
			}
			return trtEnv("trt/emu", trt.Options{Lib: lib})
		}},
	}
}

func ortEnv(name string, o ort.Options, threads int) (*Env, error) {
	b, err := ort.NewWith(o)
	if err != nil {
		return nil, err
	}
	if err := b.Available(); err != nil {
		return nil, err
	}
	env := &Env{Pair: name, Backend: b, close: []func() error{b.Close}}
	if threads > 0 {
		env.open = func(_ context.Context, onnx, n string, _ map[string]engine.Shape) (engine.Engine, error) {
			return b.Open(onnx, engine.OpenOptions{Name: n, Threads: threads})
		}
	}
	return env, nil
}

// ortDeviceEnv is an ort backend whose engines are paired with a registered device
// ("cuda", "cuda-emu") through engine.OnDevice: device tensors in and out, each crossing
// counted on the device stream.
func ortDeviceEnv(name, device string, o ort.Options) (*Env, error) {
	dev, err := engine.NewDevice(device, nil)
	if err != nil {
		return nil, err
	}
	s, err := dev.NewStream()
	if err != nil {
		dev.Close()
		return nil, err
	}
	env, err := ortEnv(name, o, 0)
	if err != nil {
		s.Close()
		dev.Close()
		return nil, err
	}
	env.Stream = s
	env.open = func(_ context.Context, onnx, n string, _ map[string]engine.Shape) (engine.Engine, error) {
		e, err := env.Backend.Open(onnx, engine.OpenOptions{Name: n})
		if err != nil {
			return nil, err
		}
		return ownedOnDevice{Engine: engine.OnDevice(e, s), inner: e}, nil
	}
	env.upload, env.download, env.sync = streamIO(s)
	env.close = append([]func() error{dev.Close, s.Close}, env.close...)
	return env, nil
}

// ownedOnDevice is engine.OnDevice over an engine the pair owns: Close closes it.
type ownedOnDevice struct {
	engine.Engine
	inner engine.Engine
}

func (o ownedOnDevice) Close() error { return o.inner.Close() }

// Unwrap is the engine behind the copies (for its own counters).
func (o ownedOnDevice) Unwrap() engine.Engine { return o.inner }

// streamIO moves host tensors to and from s's device, on s.
func streamIO(s engine.Stream) (func(*engine.HostTensor) (engine.Tensor, error), func(engine.Tensor) (*engine.HostTensor, error), func() error) {
	up := func(h *engine.HostTensor) (engine.Tensor, error) { return engine.Upload(s, h) }
	down := func(t engine.Tensor) (*engine.HostTensor, error) {
		h, err := engine.NewHostTensor(t.DType(), t.Shape())
		if err != nil {
			return nil, err
		}
		return h, s.Download(h, t)
	}
	return up, down, s.Sync
}

// trtEnv runs cases on TensorRT: each Open builds an fp32 plan whose single profile is
// exactly the case's input shapes.
func trtEnv(name string, o trt.Options) (*Env, error) {
	b := trt.New(o)
	if err := b.Available(); err != nil {
		b.Close()
		return nil, err
	}
	return &Env{
		Pair: name, Backend: b,
		open: func(ctx context.Context, onnx, n string, shapes map[string]engine.Shape) (engine.Engine, error) {
			var prof []trt.ShapeRange
			for in, s := range shapes {
				prof = append(prof, trt.ShapeRange{Name: in, Min: s, Opt: s, Max: s})
			}
			req := trt.BuildRequest{ONNXPath: onnx, Profiles: [][]trt.ShapeRange{prof}, Precision: trt.FP32}
			if name == "trt/cuda-typed" {
				req.StronglyTyped = true
				req.OptimizationLevel, _ = strconv.Atoi(os.Getenv("GRF_TRT_OPT_LEVEL"))
			}
			plan, err := b.BuildPlan(ctx, req)
			if err != nil {
				return nil, err
			}
			return b.OpenPlan(plan, engine.OpenOptions{Name: n})
		},
		upload:   func(h *engine.HostTensor) (engine.Tensor, error) { return b.Upload(h) },
		download: b.Download,
		sync:     b.Synchronize,
		close:    []func() error{b.Close},
	}, nil
}
