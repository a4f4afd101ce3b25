package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/engine/cuda"
	"github.com/grefine/grefine/monitor"
	"github.com/grefine/grefine/pipeline"
)

// check is one line of the doctor's report.
type check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

func doctorCommand() *cli.Command {
	return &cli.Command{
		Name:  "doctor",
		Usage: "report what this machine can run: backends, CUDA, the GPU, the model set",
		Description: "Prints one line per part: ONNX Runtime (version), TensorRT and CUDA (or why they are\n" +
			"unavailable; trt shim/library/gpu: the shim's ABI and TensorRT headers, the TensorRT library it\n" +
			"loaded, CUDA's view of the GPU, even without one), ONNX Runtime's GPU build (make setup-gpu), the CUDA 13 libraries and its CUDA\n" +
			"execution provider (ort-gpu, backend ort/cuda), the GPU via NVML (or why there is none) and the model set check\n" +
			"(manifest, hashes, contracts). With --gpus 0,1 one line per GPU that serve --gpus would run on (the device\n" +
			"of --device, cuda unless it names a GPU device; its NVML UUID). Missing parts are reported, not errors: exit status 0\n" +
			"unless --strict is given and something is missing.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print the report as JSON"},
			&cli.BoolFlag{Name: "strict", Usage: "exit 1 if any part is unavailable"},
			&cli.StringFlag{Name: "gpus", Usage: "CUDA device indices to check, comma-separated (0,1): as serve --gpus would open them"},
		},
		Action: action(0, func(c *cli.Context) error {
			var cfg pipeline.Config
			if err := gpusFromFlags(c, &cfg); err != nil {
				return err
			}
			checks := runChecks(c, cfg.GPUs)
			if c.Bool("json") {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				if err := enc.Encode(checks); err != nil {
					return err
				}
			} else {
				tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
				for _, ch := range checks {
					state := "ok"
					if !ch.OK {
						state = "missing"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\n", ch.Name, state, ch.Detail)
				}
				tw.Flush()
			}
			if c.Bool("strict") {
				for _, ch := range checks {
					if !ch.OK {
						return fmt.Errorf("doctor: %s unavailable", ch.Name)
					}
				}
			}
			return nil
		}),
	}
}

func runChecks(c *cli.Context, gpus []int) []check {
	var out []check
	for _, name := range engine.Backends() {
		opts := map[string]string{}
		if name == "ort" && c.String("ort-lib") != "" {
			opts["lib"] = c.String("ort-lib")
		}
		if name == "trt" && c.String("trt-lib") != "" {
			opts["lib"] = c.String("trt-lib")
		}
		b, err := engine.NewBackend(name, opts)
		if err == nil {
			err = b.Available()
		}
		if err != nil {
			out = append(out, check{Name: "backend " + name, Detail: err.Error()})
			continue
		}
		out = append(out, check{Name: "backend " + name, OK: true, Detail: b.Version()})
		b.Close()
	}
	out = append(out, extraChecks(c)...)
	out = append(out, gpuChecks(c, gpus)...)
	dir := c.String("models")
	set, err := loadModels(c)
	if err != nil {
		out = append(out, check{Name: "models", Detail: err.Error()})
	} else {
		kind := "real"
		if set.Manifest.Tiny {
			kind = "tiny random-weight (tests and demo only)"
		}
		out = append(out, check{Name: "models", OK: true, Detail: fmt.Sprintf("%s: set %q, %s, %d engines, hashes and contracts verified",
			dir, set.Manifest.Name, kind, len(set.Manifest.Engines))})
	}
	return out
}

// extraChecks reports the native parts: the TensorRT shim and library, the CUDA kernel
// library and the GPU (NVML).
func extraChecks(c *cli.Context) []check {
	out := trtChecks(c.String("trt-lib"))
	if d, err := cuda.Open(cuda.Options{}); err != nil {
		out = append(out, check{Name: "device cuda", Detail: err.Error()})
	} else {
		// Info.String says "emulated (cuda-emu, no GPU)" when GRF_CUDA_LIB names the emulator.
		detail := d.GPU().String()
		if n, err := cuda.Count(cuda.Options{}); err == nil {
			detail += fmt.Sprintf("; %d CUDA device(s): --gpus takes indices 0 to %d", n, n-1)
		}
		out = append(out, check{Name: "device cuda", OK: true, Detail: detail})
		d.Close()
	}
	out = append(out, ortGPUChecks()...)
	gpu := monitor.Probe(nil)
	for _, line := range gpu.Lines() {
		out = append(out, check{Name: "gpu", OK: gpu.Available, Detail: line})
	}
	return out
}

// gpuChecks reports each GPU of --gpus as serve --gpus opens it (the --device registry
// device, cuda unless that names a GPU device, with option ordinal), with its NVML UUID
// when NVML sees it (monitor.CUDAToNVML).
func gpuChecks(c *cli.Context, gpus []int) []check {
	kind := c.String("device")
	if kind == "cpu" {
		kind = "cuda"
	}
	var nv *monitor.Monitor
	if len(gpus) > 0 {
		if m, err := monitor.Open(nil); err == nil {
			nv = m
			defer m.Close()
		}
	}
	var out []check
	for _, g := range gpus {
		name := fmt.Sprintf("gpu %d", g)
		d, err := engine.NewDevice(kind, map[string]string{"ordinal": strconv.Itoa(g)})
		if err != nil {
			out = append(out, check{Name: name, Detail: fmt.Sprintf("%s: %v", kind, err)})
			continue
		}
		in := d.Info()
		d.Close()
		detail := fmt.Sprintf("%s device %d: %s, compute capability %s, %.1f GiB", in.Kind, in.Ordinal, in.Model, in.ComputeCapability, float64(in.TotalMemory)/(1<<30))
		if in.Emulated {
			detail += ", emulated (no GPU)"
		} else if nv != nil {
			if m, err := nv.ForCUDA([]int{g}); err == nil {
				detail += ", nvml " + m[0].UUID
			} else {
				detail += "; " + err.Error()
			}
		}
		out = append(out, check{Name: name, OK: true, Detail: detail})
	}
	return out
}
