package main

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/grefine/grefine/internal/files"
	"github.com/grefine/grefine/pipeline"
	"github.com/grefine/grefine/pipeline/imageio"
)

func refineCommand() *cli.Command {
	return &cli.Command{
		Name:  "refine",
		Usage: "G-Refine images: assess, repair the defect mask (stage 1), polish gently (stage 2)",
		Description: "Runs the quality indicators (as `assess`), then stage 1 (SDXL-Inpainting under the fused\n" +
			"mask, strength s1 = smax - (smax - smin)·q; skipped when the mask is empty) and stage 2 (PASD\n" +
			"over the whole image at strength δ, wavelet colour fix). Writes into --out: refined.png (the\n" +
			"input's size), report.json (the assess report plus stage decisions, inputs, settings and\n" +
			"timings) and, with --save-maps, the maps and masks of `assess` and their .npy files.\n" +
			"--batch list.jsonl refines many images with one model load (lines as in `assess`, one\n" +
			"sub-folder per id, one JSON line per image on stdout). With the tiny test model set the\n" +
			"output is noise-like and, unless given, --long-side is 256 and --process-size 0 (its UNets\n" +
			"attend at full latent resolution): export real models (README, Models) for real refinements.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "image", Usage: "image file (PNG, JPEG, GIF)"},
			&cli.StringFlag{Name: "prompt", Usage: "the prompt the image was generated from ('' for none)"},
			&cli.StringFlag{Name: "batch", Usage: "JSONL file of {image, prompt, id, params} lines instead of --image/--prompt"},
			&cli.StringFlag{Name: "out", Usage: "output directory (required)"},
			&cli.BoolFlag{Name: "save-maps", Usage: "also write the quality maps, masks and their .npy files"},
			&cli.BoolFlag{Name: "quiet", Usage: "no progress bars"},
		}, paramFlags(true)...),
		Action: action(0, runRefine),
	}
}

const tinyRefineNote = "tiny random-weight model set: the refinement is not meaningful"

func runRefine(c *cli.Context) (err error) {
	r, err := prepare(c, true)
	if err != nil {
		return err
	}
	defer func() { r.out.finish(outcome(interruptedAs(c, err))) }()
	p, err := pipeline.Open(c.Context, r.cfg)
	if err != nil {
		return err
	}
	defer p.Close()
	log := zerolog.Ctx(c.Context)
	if r.tiny {
		log.Warn().Int("long_side", r.params.LongSide).Int("process_size", r.params.ProcessSize).
			Msg("tiny model set: smaller working sizes (its UNets attend at full latent resolution); the refinement is not meaningful")
	}
	return runJobs(c, r, func(j job, sub string, in jobInput) (any, error) {
		img, fi := in.img, in.file
		bars := map[string]*progress{}
		quiet := c.Bool("quiet") || r.batch
		defer func() {
			for _, b := range bars {
				b.Abort()
			}
		}()
		res, err := p.Refine(c.Context, pipeline.Request{Image: img, Prompt: j.prompt(), Params: &in.params,
			SkipMaps: !c.Bool("save-maps"), // the maps stay on the device unless they are written
			Observer: func(e pipeline.Event) error {
				if e.Stage != "stage1" && e.Stage != "stage2" {
					return nil
				}
				bar, ok := bars[e.Stage]
				if !ok {
					bar = newProgress(c.App.ErrWriter, e.Stage, e.Total, quiet)
					bars[e.Stage] = bar
				}
				bar.Set(e.Step)
				if e.Step == e.Total {
					bar.Finish()
				}
				return nil
			}})
		if err != nil {
			return nil, err
		}
		out, err := r.out.stage(sub, "refined.png")
		if err != nil {
			return nil, err
		}
		if err := files.WriteAtomic(out, func(w io.Writer) error { return imageio.EncodePNG(w, res.Image) }); err != nil {
			return nil, err
		}
		rep := &refineReport{Refinement: res, File: fi, Output: filepath.Join(r.out.dir, sub, "refined.png"),
			Maps: mapsDoc{Convention: mapConvention}}
		if r.tiny {
			rep.Note = tinyRefineNote
		}
		if c.Bool("save-maps") {
			if rep.Maps.Files, err = writeMaps(r.out, sub, img, res.Assessment, true, true); err != nil {
				return nil, err
			}
		}
		if err := writeJSONTo(r.out, sub, "report.json", rep); err != nil {
			return nil, err
		}
		if !r.batch {
			printRefineSummary(c.App.Writer, res, r.out.dir, rep.Output)
		}
		return rep, nil
	})
}

func printRefineSummary(w io.Writer, res *pipeline.Refinement, dir, outPNG string) {
	printSummary(w, res.Assessment, dir)
	st := func(ran bool, reason string, strength float64, steps int, ms float64) string {
		if !ran {
			return "skipped (" + reason + ")"
		}
		return fmt.Sprintf("strength %.3f, %d steps, %.0f ms", strength, steps, ms)
	}
	s1, s2 := res.Refine.Stage1, res.Refine.Stage2
	fmt.Fprintf(w, "stage 1: %s\nstage 2: %s\nrefined: %s (%.0f ms total)\n",
		st(s1.Ran, s1.Reason, s1.Strength, len(s1.Timesteps), s1.Millis),
		st(s2.Ran, s2.Reason, s2.Strength, len(s2.Timesteps), s2.Millis), outPNG, res.TotalMillis)
}
