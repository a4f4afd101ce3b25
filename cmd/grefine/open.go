package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/engine/modelset"
	"github.com/grefine/grefine/pipeline"
	"github.com/grefine/grefine/pipeline/imageio"
	"github.com/grefine/grefine/plans"
)

// defaultHashCache is <user cache dir>/grefine/modelset-hashes.json, or "" when there is
// no user cache directory.
func defaultHashCache() string {
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "grefine", "modelset-hashes.json")
}

// modelsDir is --models (or $GREFINE_MODELS); there is no default, so a server never
// runs the tiny random-weight set by accident.
func modelsDir(c *cli.Context) (string, error) {
	d := c.String("models")
	if d == "" {
		return "", usagef("no model set given: pass --models DIR (or set GREFINE_MODELS); the tiny test set is testdata/models/tiny in the source tree")
	}
	return d, nil
}

// loadModels loads and verifies the --models set (hashes through --hash-cache).
func loadModels(c *cli.Context) (*modelset.Set, error) {
	d, err := modelsDir(c)
	if err != nil {
		return nil, err
	}
	return modelset.Load(d, modelset.Options{HashCache: c.String("hash-cache")})
}

// preflight reads the global flags and the manifest (cheap) and returns the pipeline
// configuration and whether the set is tiny, before anything expensive.
func preflight(c *cli.Context, assessOnly bool) (pipeline.Config, bool, error) {
	dir, err := modelsDir(c)
	if err != nil {
		return pipeline.Config{}, false, err
	}
	switch c.String("backend") {
	case "ort":
		if c.String("plans") != "" {
			return pipeline.Config{}, false, usagef("--plans needs --backend trt (TensorRT plans run on the trt backend)")
		}
	case "trt":
		if c.String("plans") == "" {
			return pipeline.Config{}, false, usagef("--backend trt needs --plans DIR (a plan repository from `grefine plans build`)")
		}
	default:
		return pipeline.Config{}, false, usagef("bad --backend %q (known: %v)", c.String("backend"), engine.Backends())
	}
	if d := c.String("device"); !slices.Contains(engine.Devices(), d) {
		return pipeline.Config{}, false, usagef("bad --device %q (known: %v)", d, engine.Devices())
	}
	if t := c.Int("threads"); t < 0 || t > pipeline.MaxThreads() {
		return pipeline.Config{}, false, usagef("--threads %d is out of range [0, %d] (0: the backend's default)", t, pipeline.MaxThreads())
	}
	m, err := modelset.ReadManifest(dir)
	if err != nil {
		return pipeline.Config{}, false, actionError{err}
	}
	log := zerolog.Ctx(c.Context)
	cfg := pipeline.Config{
		Models: dir, HashCache: c.String("hash-cache"), Backend: c.String("backend"), Device: c.String("device"),
		Threads: c.Int("threads"), AssessOnly: assessOnly, Limits: imageio.DefaultLimits, Logger: log,
		BackendOptions: map[string]string{},
	}
	if l := c.String("ort-lib"); l != "" && cfg.Backend == "ort" {
		cfg.BackendOptions["lib"] = l
	}
	if cfg.Backend == "trt" {
		cfg.Plans, cfg.PlanOpener = c.String("plans"), openPlans
		if !c.IsSet("device") {
			cfg.Device = "cuda" // TensorRT's engines read GPU memory: the request lives there
		}
		if l := c.String("trt-lib"); l != "" {
			cfg.BackendOptions["lib"] = l
		}
	}
	if c.IsSet("max-memory") {
		g := c.Float64("max-memory")
		switch {
		case g != g || g > 1<<20:
			return pipeline.Config{}, false, usagef("--max-memory %v: want GiB (0: 80%% of the machine's memory, -1: no check)", g)
		case g < 0:
			cfg.MaxMemory = -1
		default:
			cfg.MaxMemory = int64(g * (1 << 30))
		}
	}
	if c.IsSet("max-pixels") {
		if c.Int64("max-pixels") < 1 {
			return pipeline.Config{}, false, usagef("--max-pixels must be >= 1")
		}
		cfg.Limits.MaxPixels = c.Int64("max-pixels")
	}
	return cfg, m.Tiny, nil
}

// openPipeline opens the pipeline from the global flags (the front ends' one way in).
func openPipeline(c *cli.Context, assessOnly bool) (*pipeline.Pipeline, error) {
	cfg, _, err := preflight(c, assessOnly)
	if err != nil {
		return nil, err
	}
	p, err := pipeline.Open(c.Context, cfg)
	if err != nil {
		return nil, fmt.Errorf("opening the pipeline: %w", err)
	}
	return p, nil
}

// paramFlags are the per-request settings as flags. They carry no values of their own:
// unset flags keep the pipeline's defaults for the model set (DefaultText shows them).
func paramFlags(refining bool) []cli.Flag {
	d := pipeline.DefaultParams()
	fs := []cli.Flag{
		&cli.Float64Flag{Name: "perceptual-bound", Usage: "P below this is a perceptual defect", DefaultText: "100/255 ≈ 0.392"},
		&cli.Float64Flag{Name: "perceptual-gate", Usage: "... if the raw cask map is also below this (tau_p)", DefaultText: fmt.Sprint(d.PerceptualGate)},
		&cli.Float64Flag{Name: "align-bound", Usage: "A above this is an alignment defect", DefaultText: "170/255 ≈ 0.667"},
		&cli.IntFlag{Name: "dilate", Usage: "mask dilation radius in pixels", DefaultText: fmt.Sprint(d.Dilate)},
		&cli.Int64Flag{Name: "max-pixels", Usage: "refuse images with more pixels", DefaultText: fmt.Sprint(imageio.DefaultLimits.MaxPixels)},
	}
	if !refining {
		return fs
	}
	return append(fs,
		&cli.Uint64Flag{Name: "seed", Usage: "noise seed (same seed, same output)", DefaultText: fmt.Sprint(d.Seed)},
		&cli.IntFlag{Name: "steps1", Usage: "stage-1 denoising steps that run", DefaultText: fmt.Sprint(d.Steps1)},
		&cli.IntFlag{Name: "steps2", Usage: "stage-2 denoising steps that run", DefaultText: fmt.Sprint(d.Steps2)},
		&cli.Float64Flag{Name: "strength-max", Usage: "stage-1 strength for q = 0", DefaultText: fmt.Sprint(d.StrengthMax)},
		&cli.Float64Flag{Name: "strength-min", Usage: "stage-1 strength for q = 1", DefaultText: fmt.Sprint(d.StrengthMin)},
		&cli.Float64Flag{Name: "strength1", Usage: "fixed stage-1 strength (overrides the quality-driven one)", DefaultText: "quality-driven"},
		&cli.Float64Flag{Name: "strength2", Usage: "stage-2 strength δ", DefaultText: fmt.Sprint(d.Strength2)},
		&cli.Float64Flag{Name: "guidance1", Usage: "stage-1 classifier-free guidance", DefaultText: fmt.Sprint(d.Guidance1)},
		&cli.Float64Flag{Name: "guidance2", Usage: "stage-2 classifier-free guidance", DefaultText: fmt.Sprint(d.Guidance2)},
		&cli.IntFlag{Name: "long-side", Usage: "stage-1 working long side (multiple of 8)", DefaultText: fmt.Sprintf("%d; 256 with a tiny model set", d.LongSide)},
		&cli.IntFlag{Name: "process-size", Usage: "stage-2 minimum short side (0: off)", DefaultText: fmt.Sprintf("%d; 0 with a tiny model set", d.ProcessSize)},
		&cli.Float64Flag{Name: "emphasis", Usage: "prompt weight of defective parts", DefaultText: fmt.Sprint(d.Emphasis)},
		&cli.BoolFlag{Name: "no-blend", Usage: "disable masked latent blending in stage 1"},
		&cli.BoolFlag{Name: "no-paste", Usage: "do not take pixels outside the mask from the input"},
		&cli.BoolFlag{Name: "skip-stage1", Usage: "do not run stage 1 (SDXL-Inpainting under the mask)"},
		&cli.BoolFlag{Name: "skip-stage2", Usage: "do not run stage 2 (PASD over the whole image)"},
		&cli.Float64Flag{Name: "max-memory", Usage: "refuse refinements whose estimated working memory exceeds this many GiB (-1: no check)", DefaultText: "80% of the machine's memory"},
	)
}

// paramsFromFlags applies the set flags onto the defaults for the model set and
// validates the result (a usage error names the flag).
func paramsFromFlags(c *cli.Context, tiny bool) (pipeline.Params, error) {
	p := pipeline.DefaultParamsFor(tiny)
	f64 := func(name string, dst *float64) {
		if c.IsSet(name) {
			*dst = c.Float64(name)
		}
	}
	i := func(name string, dst *int) {
		if c.IsSet(name) {
			*dst = c.Int(name)
		}
	}
	f64("perceptual-bound", &p.PerceptualBound)
	f64("perceptual-gate", &p.PerceptualGate)
	f64("align-bound", &p.AlignBound)
	i("dilate", &p.Dilate)
	if c.IsSet("seed") {
		p.Seed = c.Uint64("seed")
	}
	i("steps1", &p.Steps1)
	i("steps2", &p.Steps2)
	f64("strength-max", &p.StrengthMax)
	f64("strength-min", &p.StrengthMin)
	f64("strength1", &p.Strength1)
	f64("strength2", &p.Strength2)
	f64("guidance1", &p.Guidance1)
	f64("guidance2", &p.Guidance2)
	i("long-side", &p.LongSide)
	i("process-size", &p.ProcessSize)
	f64("emphasis", &p.Emphasis)
	if c.Bool("no-blend") {
		p.MaskedBlend = false
	}
	if c.Bool("no-paste") {
		p.PastePixels = false
	}
	p.SkipStage1, p.SkipStage2 = c.Bool("skip-stage1"), c.Bool("skip-stage2")
	if err := pipeline.CheckParamsFor(p, tiny); err != nil {
		return p, usagef("%s", flagNames(err.Error()))
	}
	return p, nil
}

// flagNames rewrites the pipeline's field names (steps1, guidance1) as the CLI's flags.
func flagNames(msg string) string {
	for _, f := range []string{"perceptual_bound", "perceptual_gate", "align_bound", "strength_max", "strength_min", "long_side", "process_size"} {
		if len(msg) >= len(f) && msg[:len(f)] == f {
			return "--" + replaceUnderscore(f) + msg[len(f):]
		}
	}
	for _, f := range []string{"steps1", "steps2", "strength1", "strength2", "guidance1", "guidance2", "emphasis", "dilate"} {
		if len(msg) >= len(f) && msg[:len(f)] == f {
			return "--" + msg
		}
	}
	return msg
}

func replaceUnderscore(s string) string {
	b := []byte(s)
	for i := range b {
		if b[i] == '_' {
			b[i] = '-'
		}
	}
	return string(b)
}

// openPlans opens a TensorRT plan repository for the pipeline (package plans; the
// pipeline itself does not link TensorRT).
func openPlans(dir string, set *modelset.Set) (pipeline.Opener, error) {
	return plans.Open(dir, set, plans.OpenOptions{})
}
