package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/engine/cuda"
	"github.com/grefine/grefine/monitor"
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
			"(manifest, hashes, contracts). Missing parts are reported, not errors: exit status 0\n" +
			"unless --strict is given and something is missing.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print the report as JSON"},
			&cli.BoolFlag{Name: "strict", Usage: "exit 1 if any part is unavailable"},
		},
		Action: action(0, func(c *cli.Context) error {
			checks := runChecks(c)
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

func runChecks(c *cli.Context) []check {
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
		out = append(out, check{Name: "device cuda", OK: true, Detail: d.GPU().String()})
		d.Close()
	}
	out = append(out, ortGPUChecks()...)
	gpu := monitor.Probe(nil)
	for _, line := range gpu.Lines() {
		out = append(out, check{Name: "gpu", OK: gpu.Available, Detail: line})
	}
	return out
}
