package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/grefine/grefine/engine/trt"
	"github.com/grefine/grefine/plans"
)

func plansCommand() *cli.Command {
	return &cli.Command{
		Name:  "plans",
		Usage: "TensorRT plans for a model set",
		Subcommands: []*cli.Command{{
			Name:  "build",
			Usage: "build (or refresh) the TensorRT plans of a model set into a Triton-style repository",
			Description: "For each engine spec (plans/*.yaml: profiles, precision, workspace) whose ONNX file is in\n" +
				"--models, builds a plan with TensorRT unless --out already holds one whose key (GPU compute\n" +
				"capability, TensorRT version, ONNX SHA-256, profiles, precision) matches. Output layout:\n" +
				"<out>/<engine>/1/model.plan, <out>/<engine>/config.pbtxt (Triton) and a sidecar JSON that\n" +
				"grefine checks when loading. Needs libgrefine_trt.so (make native TensorRT_ROOT=...) and a GPU.",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "out", Usage: "plan repository directory (required)"},
				&cli.StringSliceFlag{Name: "only", Usage: "build only these engines (repeatable)"},
				&cli.BoolFlag{Name: "force", Usage: "rebuild plans that are up to date"},
				&cli.StringFlag{Name: "timing-cache", Usage: "TensorRT timing cache file shared by builds"},
				&cli.IntFlag{Name: "opt-level", Usage: "TensorRT builder optimisation level 1-5 (0: default)"},
			},
			Action: action(0, func(c *cli.Context) error {
				if c.String("out") == "" {
					return usagef("plans build: --out DIR is required")
				}
				models, err := modelsDir(c)
				if err != nil {
					return err
				}
				log := zerolog.Ctx(c.Context)
				b := trt.New(trt.Options{Lib: c.String("trt-lib"), Logger: *log})
				defer b.Close()
				if err := b.Available(); err != nil {
					return fmt.Errorf("plans build: %w", err)
				}
				rep, err := plans.BuildAll(c.Context, plans.BuildAllOptions{
					Builder: b, Models: models, Out: c.String("out"),
					Only: c.StringSlice("only"), Force: c.Bool("force"), Logger: *log,
					BuildOptions: plans.BuildOptions{TimingCache: c.String("timing-cache"), OptimizationLevel: c.Int("opt-level")},
				})
				if out := strings.TrimRight(rep.String(), "\n"); out != "" {
					fmt.Fprintln(c.App.Writer, out)
				}
				if errors.Is(err, plans.ErrSpec) && len(rep.Engines) == 0 {
					return usagef("--only: %v", err) // a name that is not an engine of the set
				}
				return err
			}),
		}},
	}
}
