package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/grefine/grefine/pipeline/aq"
	"github.com/grefine/grefine/pipeline/assess"
	"github.com/grefine/grefine/pipeline/imageio"
	"github.com/grefine/grefine/pipeline/refine"
)

func refineCommand() *cli.Command {
	d := refine.DefaultConfig()
	return &cli.Command{
		Name:  "refine",
		Usage: "G-Refine one image: assess, repair the defect mask (stage 1), polish gently (stage 2)",
		Description: "Runs the quality indicators (as `assess`), then stage 1 (SDXL-Inpainting under the fused\n" +
			"mask, strength s1 = smax - (smax - smin)·q; skipped when the mask is empty) and stage 2 (PASD\n" +
			"over the whole image at strength δ, wavelet colour fix). Writes into --out: refined.png (the\n" +
			"input's size), report.json (the assess report plus stage decisions and timings) and, with\n" +
			"--save-maps, p_map.png, a_map.png and mask.png. With the tiny test model set the output is\n" +
			"noise-like and, unless given, --long-side is 256 and --process-size 0 (its UNets attend at\n" +
			"full latent resolution): export real models (README, Models) for real refinements.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "image", Usage: "image file (PNG, JPEG, GIF)", Required: true},
			&cli.StringFlag{Name: "prompt", Usage: "the prompt the image was generated from", Required: true},
			&cli.StringFlag{Name: "out", Usage: "output directory", Required: true},
			&cli.Uint64Flag{Name: "seed", Usage: "noise seed (same seed, same output)", Value: d.Seed},
			&cli.IntFlag{Name: "steps1", Usage: "stage-1 denoising steps that run", Value: d.Steps1},
			&cli.IntFlag{Name: "steps2", Usage: "stage-2 denoising steps that run", Value: d.Steps2},
			&cli.Float64Flag{Name: "strength-max", Usage: "stage-1 strength for q = 0", Value: d.StrengthMax},
			&cli.Float64Flag{Name: "strength-min", Usage: "stage-1 strength for q = 1", Value: d.StrengthMin},
			&cli.Float64Flag{Name: "strength1", Usage: "fixed stage-1 strength (overrides the quality-driven one)"},
			&cli.Float64Flag{Name: "strength2", Usage: "stage-2 strength δ", Value: d.Strength2},
			&cli.Float64Flag{Name: "guidance1", Usage: "stage-1 classifier-free guidance", Value: d.Guidance1},
			&cli.Float64Flag{Name: "guidance2", Usage: "stage-2 classifier-free guidance", Value: d.Guidance2},
			&cli.IntFlag{Name: "long-side", Usage: "stage-1 working long side (multiple of 8)", Value: d.LongSide},
			&cli.IntFlag{Name: "process-size", Usage: "stage-2 minimum short side (0: off)", Value: d.ProcessSize},
			&cli.Float64Flag{Name: "emphasis", Usage: "prompt weight of defective parts", Value: d.Emphasis},
			&cli.BoolFlag{Name: "no-blend", Usage: "disable masked latent blending in stage 1"},
			&cli.BoolFlag{Name: "no-paste", Usage: "do not take pixels outside the mask from the input"},
			&cli.BoolFlag{Name: "skip-stage1"},
			&cli.BoolFlag{Name: "skip-stage2"},
			&cli.BoolFlag{Name: "save-maps", Usage: "also write the quality maps and the mask"},
			&cli.BoolFlag{Name: "quiet", Usage: "no progress bars"},
		}, assessFlags()...),
		Action: runRefine,
	}
}

type refineReport struct {
	*assess.Report
	Refine        *refine.Result `json:"refine"`
	Seed          uint64         `json:"seed"`
	ModelSet      string         `json:"model_set"`
	TotalMillis   float64        `json:"total_ms"`
	Output        string         `json:"output"`
	TinyModelNote string         `json:"note,omitempty"`
}

func refineConfig(c *cli.Context) refine.Config {
	cfg := refine.DefaultConfig()
	cfg.Seed = c.Uint64("seed")
	cfg.Steps1, cfg.Steps2 = c.Int("steps1"), c.Int("steps2")
	cfg.StrengthMax, cfg.StrengthMin = c.Float64("strength-max"), c.Float64("strength-min")
	cfg.Strength1, cfg.Strength2 = c.Float64("strength1"), c.Float64("strength2")
	cfg.Guidance1, cfg.Guidance2 = c.Float64("guidance1"), c.Float64("guidance2")
	cfg.LongSide, cfg.ProcessSize = c.Int("long-side"), c.Int("process-size")
	cfg.Emphasis = c.Float64("emphasis")
	cfg.MaskedBlend, cfg.PastePixels = !c.Bool("no-blend"), !c.Bool("no-paste")
	cfg.SkipStage1, cfg.SkipStage2 = c.Bool("skip-stage1"), c.Bool("skip-stage2")
	if c.IsSet("max-pixels") {
		cfg.MaxPixels = c.Int64("max-pixels")
	}
	return cfg
}

func runRefine(c *cli.Context) error {
	t0 := time.Now()
	log := zerolog.Ctx(c.Context)
	cfg := refineConfig(c)
	if err := cfg.Validate(); err != nil {
		return usagef("%v", err)
	}
	q, err := openQuality(c)
	if err != nil {
		return err
	}
	a, lim, set := q.a, q.lim, q.set
	defer a.Close()
	if set.Manifest.Tiny {
		// The tiny stand-in UNets attend at full latent resolution (the real SDXL and PASD
		// UNets do not): at 1024 px that needs tens of GB. Bound the working sizes unless
		// the user chose them.
		if !c.IsSet("long-side") {
			cfg.LongSide = tinyLongSide
		}
		if !c.IsSet("process-size") {
			cfg.ProcessSize = 0
		}
		if cfg.LongSide > tinyMaxSide || cfg.ProcessSize > tinyMaxSide {
			return usagef("tiny model set: --long-side and --process-size above %d need tens of GB (its UNets attend at full latent resolution)", tinyMaxSide)
		}
		log.Warn().Int("long_side", cfg.LongSide).Int("process_size", cfg.ProcessSize).
			Msg("tiny model set: smaller working sizes (its UNets attend at full latent resolution); the refinement is not meaningful")
	}
	r, err := refine.New(set, q.backend, refine.Options{Config: cfg, Threads: c.Int("threads")})
	if err != nil {
		return err
	}
	defer r.Close()

	img, err := imageio.ReadFile(c.String("image"), lim)
	if err != nil {
		return err
	}
	if err := r.CheckImage(img); err != nil {
		return err
	}
	prompt := c.String("prompt")
	rep, err := a.Assess(c.Context, img, prompt)
	if err != nil {
		return err
	}
	log.Info().Float32("p", rep.P).Float32("q", rep.Q).Float32("mask", rep.MaskFraction).Msg("assessed")
	req := refine.Request{Image: img, Prompt: prompt, Mask: rep.Mask, Q: float64(rep.Q)}
	if prompt != "" {
		if req.Parsed, err = q.parser.Parse(prompt); err != nil {
			return err
		}
		for i, part := range rep.Parts {
			if part.Kind != aq.KindNone {
				req.Defective = append(req.Defective, i)
			}
		}
	}
	bars := map[string]*progress{}
	res, err := r.Refine(c.Context, req, func(stage string, step, total int, _ []float32) {
		bar, ok := bars[stage]
		if !ok {
			bar = newProgress(c.App.ErrWriter, stage, total, c.Bool("quiet"))
			bars[stage] = bar
		}
		bar.Set(step)
		if step == total {
			bar.Finish()
		}
	})
	if err != nil {
		return err
	}
	out := c.String("out")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	outPNG := filepath.Join(out, "refined.png")
	if err := imageio.WritePNG(outPNG, res.Image.Image()); err != nil {
		return err
	}
	if c.Bool("save-maps") {
		if err := writeMaps(out, img, rep); err != nil {
			return err
		}
	}
	full := refineReport{Report: rep, Refine: res, Seed: cfg.Seed, ModelSet: set.Manifest.Name, TotalMillis: ms(t0), Output: outPNG}
	if set.Manifest.Tiny {
		full.TinyModelNote = "tiny random-weight model set: the refinement is not meaningful"
	}
	if err := writeJSON(filepath.Join(out, "report.json"), full); err != nil {
		return err
	}
	s1 := "skipped (" + res.Stage1.Reason + ")"
	if res.Stage1.Ran {
		s1 = fmt.Sprintf("strength %.3f, %d steps, %.0f ms", res.Stage1.Strength, len(res.Stage1.Timesteps), res.Stage1.Millis)
	}
	s2 := "skipped (" + res.Stage2.Reason + ")"
	if res.Stage2.Ran {
		s2 = fmt.Sprintf("strength %.3f, %d steps, %.0f ms", res.Stage2.Strength, len(res.Stage2.Timesteps), res.Stage2.Millis)
	}
	printSummary(c.App.Writer, rep, out)
	fmt.Fprintf(c.App.Writer, "stage 1: %s\nstage 2: %s\nrefined: %s (%.0f ms total)\n", s1, s2, outPNG, full.TotalMillis)
	return nil
}

// tinyLongSide is the stage-1 working long side used with tiny model sets by default.
const tinyLongSide = 256

// tinyMaxSide bounds the working sizes with a tiny model set (memory).
const tinyMaxSide = 512

func ms(t0 time.Time) float64 { return float64(time.Since(t0).Microseconds()) / 1000 }
