package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/modelset"
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
	if err := limitsFromFlags(c, &cfg); err != nil {
		return pipeline.Config{}, false, err
	}
	return cfg, m.Tiny, nil
}

// paramFlags are the per-request settings as flags, one per row of the parameter table
// (pipeline.ParamTable: refine takes every row, assess the others). They carry no values
// of their own: unset flags keep the pipeline's defaults for the model set (DefaultText
// shows them), and each usage line ends with the row's range.
func paramFlags(refining bool) []cli.Flag {
	d, dt := pipeline.DefaultParamsFor(false), pipeline.DefaultParamsFor(true)
	var fs []cli.Flag
	for _, r := range pipeline.ParamTable() {
		if r.Refine && !refining {
			continue
		}
		usage := r.Usage
		if rng := r.Range(); rng != "" {
			usage += ", " + rng
		}
		def := r.Default(d)
		if t := r.Default(dt); t != def {
			def += "; " + t + " with a tiny model set"
		}
		switch r.Kind {
		case pipeline.KindBool:
			if r.Negate {
				usage = "turn off " + r.Name + " (" + r.Usage + ")"
			}
			fs = append(fs, &cli.BoolFlag{Name: r.Flag, Usage: usage})
		case pipeline.KindInt:
			fs = append(fs, &cli.IntFlag{Name: r.Flag, Usage: usage, DefaultText: def})
		case pipeline.KindUint:
			fs = append(fs, &cli.Uint64Flag{Name: r.Flag, Usage: usage, DefaultText: def})
		case pipeline.KindFloat:
			if r.Name == "strength1" {
				def = "0, quality-driven"
			}
			fs = append(fs, &cli.Float64Flag{Name: r.Flag, Usage: usage, DefaultText: def})
		}
	}
	return append(fs, limitFlags(refining, false)...)
}

// limitFlags are the limits on one request's work (pipeline.WorkLimits) and images;
// serve adds the decode budget.
func limitFlags(refining, serving bool) []cli.Flag {
	fs := []cli.Flag{
		&cli.Int64Flag{Name: "max-pixels", Usage: "refuse images with more pixels", DefaultText: fmt.Sprint(imageio.DefaultLimits.MaxPixels)},
		&cli.Float64Flag{Name: "max-memory", Usage: "refuse requests whose estimated working memory exceeds this many GiB (-1: no check)", DefaultText: "80% of the machine's memory"},
	}
	if refining {
		fs = append(fs,
			&cli.IntFlag{Name: "max-timesteps", Usage: "refuse a stage whose scheduler schedule (about steps/strength timesteps) is longer", DefaultText: fmt.Sprint(pipeline.DefaultMaxTimesteps)},
			&cli.IntFlag{Name: "max-steps", Usage: "refuse requests of more denoising steps (steps1 + steps2)", DefaultText: fmt.Sprint(pipeline.DefaultMaxSteps)},
			&cli.Int64Flag{Name: "max-stage-pixels", Usage: "refuse refinements whose input or a stage's working size has more pixels", DefaultText: fmt.Sprint(pipeline.DefaultMaxStagePixels)},
		)
	}
	if serving {
		fs = append(fs, &cli.Float64Flag{Name: "decode-memory", Usage: "GiB that the image decodes in flight share, counted at decoded size (-1: unbounded)",
			DefaultText: fmt.Sprint(pipeline.DefaultDecodeMemory >> 30)})
	}
	return fs
}

// limitsFromFlags applies the set limit flags onto cfg.
func limitsFromFlags(c *cli.Context, cfg *pipeline.Config) error {
	gib := func(name string) (int64, bool, error) {
		if !c.IsSet(name) {
			return 0, false, nil
		}
		g := c.Float64(name)
		switch {
		case g != g || g > 1<<20:
			return 0, false, usagef("--%s %v: want GiB (-1: no limit)", name, g)
		case g < 0:
			return -1, true, nil
		case g == 0:
			return 0, false, usagef("--%s 0: want GiB > 0 (-1: no limit)", name)
		}
		return int64(g * (1 << 30)), true, nil
	}
	if v, ok, err := gib("max-memory"); err != nil {
		return err
	} else if ok {
		cfg.MaxMemory = v
	}
	if v, ok, err := gib("decode-memory"); err != nil {
		return err
	} else if ok {
		cfg.DecodeMemory = v
	}
	pos := func(name string) (int64, error) {
		v := c.Int64(name)
		if v < 1 {
			return 0, usagef("--%s must be >= 1", name)
		}
		return v, nil
	}
	for name, dst := range map[string]func(int64){
		"max-pixels":       func(v int64) { cfg.Limits.MaxPixels = v },
		"max-timesteps":    func(v int64) { cfg.MaxTimesteps = int(min(v, 1<<30)) },
		"max-steps":        func(v int64) { cfg.MaxSteps = int(min(v, 1<<30)) },
		"max-stage-pixels": func(v int64) { cfg.MaxStagePixels = v },
	} {
		if c.IsSet(name) {
			v, err := pos(name)
			if err != nil {
				return err
			}
			dst(v)
		}
	}
	return nil
}

// paramsFromFlags applies the set flags onto the defaults for the model set and
// validates the result (a usage error names the flag).
func paramsFromFlags(c *cli.Context, tiny bool) (pipeline.Params, error) {
	p := pipeline.DefaultParamsFor(tiny)
	for _, r := range pipeline.ParamTable() {
		if !c.IsSet(r.Flag) {
			continue
		}
		var text string
		switch r.Kind {
		case pipeline.KindBool:
			text = strconv.FormatBool(c.Bool(r.Flag) != r.Negate)
		case pipeline.KindInt:
			text = strconv.Itoa(c.Int(r.Flag))
		case pipeline.KindUint:
			text = strconv.FormatUint(c.Uint64(r.Flag), 10)
		case pipeline.KindFloat:
			text = strconv.FormatFloat(c.Float64(r.Flag), 'g', -1, 64)
		}
		if err := p.Set(r.Name, text); err != nil {
			return p, usagef("--%s: %v", r.Flag, err)
		}
	}
	if err := pipeline.CheckParamsFor(p, tiny); err != nil {
		return p, usagef("%s", flagNames(err.Error()))
	}
	return p, nil
}

// flagNames rewrites the parameter names in a message (steps1, long_side) as the CLI's
// flags (--steps1, --long-side).
func flagNames(msg string) string {
	for _, r := range pipeline.ParamTable() {
		if r.Kind == pipeline.KindBool {
			continue
		}
		msg = regexp.MustCompile(`(^|[^-\w])`+regexp.QuoteMeta(r.Name)+`\b`).ReplaceAllString(msg, "${1}--"+r.Flag)
	}
	return msg
}

// openPlans opens a TensorRT plan repository for the pipeline (package plans; the
// pipeline itself does not link TensorRT).
func openPlans(dir string, set *modelset.Set) (engine.Opener, error) {
	return plans.Open(dir, set, plans.OpenOptions{})
}
