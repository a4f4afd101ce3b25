package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/grefine/grefine/pipeline"
	"github.com/grefine/grefine/triton"
)

func tritonRepoCommand() *cli.Command {
	return &cli.Command{
		Name:  "triton-repo",
		Usage: "write a Triton Inference Server model repository (grefine_assess, grefine_refine) for the grefine backend",
		Description: "Writes <out>/grefine_assess/config.pbtxt and <out>/grefine_refine/config.pbtxt (each with an empty\n" +
			"version directory 1/) for the model set, backend, device and plans of the global flags. The models run\n" +
			"on libtriton_grefine.so (bash tools/triton-build.sh), which tritonserver finds in\n" +
			"<backend-directory>/grefine/. Each instance loads its own pipeline; --slots requests run at once in it.\n" +
			"Other files in --out are left alone. `go doc github.com/grefine/grefine/triton` is the manual.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Usage: "model repository directory (required)"},
			&cli.IntFlag{Name: "instances", Usage: fmt.Sprintf("instance_group count: instances per device (1..%d)", triton.MaxInstances), Value: 1},
			&cli.StringFlag{Name: "kind", Usage: "instance kind: cpu (KIND_CPU), gpu (KIND_GPU), or auto (gpu with --device cuda)", Value: "auto"},
			&cli.IntSliceFlag{Name: "gpus", Usage: "with --kind gpu: the GPUs to place instances on (default: every GPU)"},
			&cli.IntFlag{Name: "slots", Usage: "requests one instance runs at once", Value: 1},
			&cli.BoolFlag{Name: "assess-only", Usage: "write only grefine_assess"},
		},
		Action: action(0, func(c *cli.Context) error {
			if c.String("out") == "" {
				return usagef("triton-repo: --out DIR is required")
			}
			if n := c.Int("instances"); n < 1 || n > triton.MaxInstances {
				return usagef("--instances %d is out of range [1, %d]", n, triton.MaxInstances)
			}
			if n := c.Int("slots"); n < 1 || n > pipeline.MaxSlots {
				return usagef("--slots %d is out of range [1, %d]", n, pipeline.MaxSlots)
			}
			cfg, _, err := preflight(c, c.Bool("assess-only"))
			if err != nil {
				return err
			}
			o := triton.RepoOptions{Models: cfg.Models, Backend: cfg.Backend, Plans: cfg.Plans, Lib: cfg.BackendOptions["lib"],
				HashCache: cfg.HashCache, Slots: c.Int("slots"), Threads: cfg.Threads, Instances: c.Int("instances"),
				GPUs: c.IntSlice("gpus"), AssessOnly: c.Bool("assess-only")}
			if c.IsSet("device") {
				o.Device = cfg.Device
			}
			switch c.String("kind") {
			case "gpu":
				o.GPU = true
			case "auto":
				o.GPU = cfg.Device == "cuda"
			case "cpu":
			default:
				return usagef("bad --kind %q (cpu, gpu or auto)", c.String("kind"))
			}
			dirs, err := triton.WriteRepository(c.String("out"), o)
			if errors.Is(err, triton.ErrConfig) {
				return usagef("triton-repo: %v", err)
			} else if err != nil {
				return fmt.Errorf("triton-repo: %w", err)
			}
			for _, d := range dirs {
				fmt.Fprintln(c.App.Writer, d)
			}
			return nil
		}),
	}
}
