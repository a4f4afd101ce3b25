package pipeline

import (
	"fmt"
	"math"
	"strconv"

	"github.com/grefine/grefine/modelset"
	"github.com/grefine/grefine/pipeline/imageio"
	"github.com/grefine/grefine/pipeline/refine"
	"github.com/grefine/grefine/pipeline/sched"
)

// WorkLimits bound the work one request may cause. Validation computes a request's Work
// from its parameters and its image's size, and refuses (ErrInput) what exceeds a limit
// before anything is allocated for it.
type WorkLimits struct {
	// MaxTimesteps bounds a stage's scheduler schedule: a stage that runs n steps at
	// strength s builds a schedule of about n/s timesteps (DESIGN "Steps"), so a tiny
	// strength would allocate without bound (strength 1e-9: ten billion). Default 10000
	// (a schedule of a few hundred KB; the default δ = 0.15 needs 67 for 10 steps).
	MaxTimesteps int `json:"max_timesteps"`
	// MaxSteps bounds the denoising steps of one request, both stages together (time:
	// each step runs the UNet twice). Default 2000 (each stage's range allows 1000).
	MaxSteps int `json:"max_steps"`
	// MaxStagePixels bounds the pixels a refinement works at: the input and each
	// stage's working size. Default 16 Mi (4096×4096).
	MaxStagePixels int64 `json:"max_stage_pixels"`
	// MaxMemory bounds the estimated working memory of a request (Work.Memory); 0 or
	// less: no check. Config.MaxMemory sets it.
	MaxMemory int64 `json:"max_memory_bytes"`
}

// Defaults of WorkLimits.
const (
	DefaultMaxTimesteps   = 10000
	DefaultMaxSteps       = 2000
	DefaultMaxStagePixels = 16 << 20
)

// StageWork is the work of one refinement stage.
type StageWork struct {
	// Runs is false when the stage is skipped (stage 1 may still be skipped at run
	// time, when the repair mask is empty; the work counts it).
	Runs   bool  `json:"runs"`
	Width  int   `json:"width,omitempty"`
	Height int   `json:"height,omitempty"`
	Pixels int64 `json:"pixels,omitempty"`
	// Steps are the denoising steps that run; Timesteps the length of the scheduler's
	// schedule, at the smallest strength the parameters allow.
	Steps     int `json:"steps,omitempty"`
	Timesteps int `json:"timesteps,omitempty"`
	// Memory is the stage's estimated working memory as planned (refine.PlanFor); Tiled
	// says whether the plan tiles its VAE or its denoising (large images).
	Memory int64 `json:"memory_bytes,omitempty"`
	Tiled  bool  `json:"tiled,omitempty"`
}

// Work is what one request will cost, computed before any of it is spent.
type Work struct {
	Width  int   `json:"width"`
	Height int   `json:"height"`
	Pixels int64 `json:"pixels"`
	// Refine is false for an assessment (the stages are then empty).
	Refine bool      `json:"refine"`
	Stage1 StageWork `json:"stage1"`
	Stage2 StageWork `json:"stage2"`
	// Steps are the denoising steps of both stages.
	Steps int `json:"steps"`
	// Memory is the estimated peak working memory in bytes: the buffers at the input's
	// size (maps, masks, images) plus the larger stage's plan (its working-size buffers and
	// its largest network call: with tiles, a tile's).
	Memory int64 `json:"memory_bytes"`
}

// assessBytesPerPixel is the estimate of an assessment's buffers per pixel: the float32
// maps and masks (P, A, repair, perceptual and alignment masks, one transient map) and the
// RGB copies. A refinement's are refine.InputBytesPerPixel at the input's size plus each
// stage's plan (refine.PlanFor).
const assessBytesPerPixel = 32

// timestepsFor is the length of the schedule that runs n steps at strength s, refused
// (ErrInput, naming the parameters) when it exceeds limit. It never builds the schedule:
// n/s is bounded first, so strength 1e-9 costs nothing.
func timestepsFor(n int, s float64, limit int, steps, strength string) (int, error) {
	if need := float64(n) / s; need > float64(limit)+2 || math.IsNaN(need) {
		return 0, inputf("%s %d at %s %s asks for a schedule of about %s scheduler timesteps, over the limit of %d: raise %s to at least %s or lower %s",
			steps, n, strength, num(s), strconv.FormatFloat(math.Round(need), 'g', 4, 64), limit, strength, num(math.Ceil(float64(n)/float64(limit)*1000)/1000), steps)
	}
	N, err := sched.TimestepsForStrength(n, s)
	if err != nil {
		return 0, inputf("%s %d at %s %s: %v", steps, n, strength, num(s), err)
	}
	if N > limit {
		return 0, inputf("%s %d at %s %s asks for a schedule of %d scheduler timesteps, over the limit of %d: raise %s or lower %s",
			steps, n, strength, num(s), N, limit, strength, steps)
	}
	return N, nil
}

// stepsWork is the part of the work that does not depend on the image: each stage's
// steps and schedule length, checked against lim.
func stepsWork(pr Params, lim WorkLimits, refining bool) (Work, error) {
	w := Work{Refine: refining}
	if !refining {
		return w, nil
	}
	var err error
	if !pr.SkipStage1 {
		s := pr.StrengthMin // the smallest quality-driven strength: the longest schedule
		name := "strength_min"
		if pr.Strength1 > 0 {
			s, name = pr.Strength1, "strength1"
		}
		w.Stage1 = StageWork{Runs: true, Steps: pr.Steps1}
		if w.Stage1.Timesteps, err = timestepsFor(pr.Steps1, s, lim.MaxTimesteps, "steps1", name); err != nil {
			return w, err
		}
	}
	if !pr.SkipStage2 {
		w.Stage2 = StageWork{Runs: true, Steps: pr.Steps2}
		if w.Stage2.Timesteps, err = timestepsFor(pr.Steps2, pr.Strength2, lim.MaxTimesteps, "steps2", "strength2"); err != nil {
			return w, err
		}
	}
	w.Steps = w.Stage1.Steps + w.Stage2.Steps
	if w.Steps > lim.MaxSteps {
		return w, inputf("steps1 + steps2 = %d denoising steps, over the limit of %d per request", w.Steps, lim.MaxSteps)
	}
	return w, nil
}

// imageWork completes w for a width×height input: the stages' working sizes and
// memory (plan answers the refiner's geometry; nil for an assessment), checked
// against lim. An input past the pixel limit is refused with its plan's estimate, so
// the caller learns what the refinement would have cost.
func imageWork(w Work, plan *refine.Refiner, pr Params, width, height int, tiny bool, lim WorkLimits) (Work, error) {
	w.Width, w.Height, w.Pixels = width, height, int64(width)*int64(height)
	w.Memory = w.Pixels * assessBytesPerPixel
	if w.Refine && plan != nil {
		if w.Pixels > lim.MaxStagePixels {
			msg := fmt.Sprintf("image: %dx%d is %d pixels, over the limit of %d a refinement works at (--max-stage-pixels)", width, height, w.Pixels, lim.MaxStagePixels)
			unlimited := lim
			unlimited.MaxStagePixels, unlimited.MaxMemory = w.Pixels, 0
			if e, err := refineWork(w, plan, pr, tiny, unlimited); err == nil {
				msg += fmt.Sprintf("; it would need about %s of working memory", gib(e.Memory))
				if lim.MaxMemory > 0 {
					msg += fmt.Sprintf(" (limit %s)", gib(lim.MaxMemory))
				}
			}
			return w, inputf("%s", msg)
		}
		var err error
		if w, err = refineWork(w, plan, pr, tiny, lim); err != nil {
			return w, err
		}
	}
	if lim.MaxMemory > 0 && w.Memory > lim.MaxMemory {
		return w, inputf("image: %dx%d needs about %s of working memory, over the %s limit; send a smaller image or raise the limit (--max-memory)",
			width, height, gib(w.Memory), gib(lim.MaxMemory))
	}
	return w, nil
}

// refineWork plans a refinement of w's input (refine.PlanFor: no allocation) within lim:
// each stage's working size, memory and tiling, and the request's estimate.
func refineWork(w Work, plan *refine.Refiner, pr Params, tiny bool, lim WorkLimits) (Work, error) {
	width, height := w.Width, w.Height
	if in := w.Pixels * refine.InputBytesPerPixel; lim.MaxMemory > 0 && in >= lim.MaxMemory {
		return w, inputf("image: %dx%d needs about %s of working memory at its own size alone, over the %s limit; send a smaller image or raise the limit (--max-memory)",
			width, height, gib(in), gib(lim.MaxMemory))
	}
	cfg := pr.refineConfig(plan.Config())
	cfg.MemoryLimit = lim.MaxMemory
	v, err := plan.With(cfg)
	if err != nil {
		return w, classify(err)
	}
	for i, s := range []*StageWork{&w.Stage1, &w.Stage2} {
		if !s.Runs {
			continue
		}
		W, H := v.Stage1Size(width, height)
		if i == 1 {
			W, H = v.Stage2Size(width, height)
		}
		s.Width, s.Height, s.Pixels = W, H, int64(W)*int64(H)
		if s.Pixels > lim.MaxStagePixels {
			return w, inputf("stage %d works at %dx%d = %d pixels, over the limit of %d: lower %s", i+1, s.Width, s.Height, s.Pixels, lim.MaxStagePixels,
				map[int]string{0: "long_side", 1: "process_size or refine a smaller image"}[i])
		}
	}
	rp, err := v.PlanFor(width, height, tiny)
	if err != nil {
		return w, classify(err)
	}
	w.Stage1.Memory, w.Stage2.Memory = rp.Stage1.Memory.Chosen, rp.Stage2.Memory.Chosen
	w.Stage1.Tiled = rp.Stage1.VAE != nil || rp.Stage1.Denoise != nil
	w.Stage2.Tiled = rp.Stage2.VAE != nil || rp.Stage2.Denoise != nil
	w.Memory = w.Pixels*refine.InputBytesPerPixel + max(w.Stage1.Memory, w.Stage2.Memory)
	return w, nil
}

func gib(b int64) string { return strconv.FormatFloat(float64(b)/(1<<30), 'f', 2, 64) + " GiB" }

// CheckParamsFor validates pr (the table, then the relations between fields) with a
// model set's limits: front ends call it before opening anything (modelset.ReadManifest
// says whether a set is tiny). The pipeline runs the same check on every request.
func CheckParamsFor(pr Params, tiny bool) error {
	if err := pr.Validate(); err != nil {
		return err
	}
	if tiny && (pr.LongSide > TinyMaxSide || pr.ProcessSize > TinyMaxSide) {
		return inputf("tiny model set: long_side %d and process_size %d must be at most %d (its UNets attend at full latent resolution; larger sizes need tens of GB)",
			pr.LongSide, pr.ProcessSize, TinyMaxSide)
	}
	if tiny && (pr.Tile > TinyMaxSide/8 || pr.VAETile > TinyMaxSide) {
		return inputf("tiny model set: tile %d must be at most %d and vae_tile %d at most %d (its networks attend at full latent resolution)",
			pr.Tile, TinyMaxSide/8, pr.VAETile, TinyMaxSide)
	}
	return nil
}

// DefaultParamsFor are DefaultParams() with working sizes a model set can hold: with a
// tiny set stage 1 works at long side 256 and stage 2 at the input's size, and the tiles
// are 64 latents and 512 pixels (its stand-in networks attend at full latent resolution).
func DefaultParamsFor(tiny bool) Params {
	d := DefaultParams()
	if tiny {
		d.LongSide, d.ProcessSize = tinyLongSide, 0
		d.Tile, d.VAETile = TinyMaxSide/8, TinyMaxSide
	}
	return d
}

// DefaultParams are DefaultParamsFor(the loaded set is tiny).
func (p *Pipeline) DefaultParams() Params { return DefaultParamsFor(p.info.Tiny) }

// CheckParams is CheckParamsFor(pr, the loaded set is tiny).
func (p *Pipeline) CheckParams(pr Params) error { return CheckParamsFor(pr, p.info.Tiny) }

// CheckImageFor refuses a width×height image outside lim or below the pipeline's
// minimum side (ErrInput), before any work: the check the pipeline runs on every image.
func CheckImageFor(lim imageio.Limits, width, height int) error {
	if err := lim.Check(width, height); err != nil {
		return classify(err)
	}
	if m := MinSide; width < m || height < m {
		return inputf("image: %dx%d is too small (at least %d px on each side)", width, height, m)
	}
	return nil
}

// MinSide is the smallest side of an image the pipeline accepts (the refiner's
// minimum, which assess shares so that every assessed image can be refined).
var MinSide = refine.DefaultConfig().MinSide

// CheckImage refuses an image the pipeline would refuse (malformed, outside Limits,
// smaller than MinSide), before any work.
func (p *Pipeline) CheckImage(img *imageio.RGB8) error {
	if img == nil || img.W < 1 || img.H < 1 || len(img.Pix) != 3*img.W*img.H {
		return inputf("image: empty or malformed (want W×H×3 bytes of RGB8, W and H >= 1)")
	}
	return CheckImageFor(p.cfg.Limits, img.W, img.H)
}

// CheckWorkFor is the whole validation of a width×height request with params pr,
// from a model set's manifest alone (dir holds it), with cfg's limits (its defaults
// filled as Open fills them): parameters, image size, then the work. Front ends call it
// before opening anything; the pipeline runs the same checks on every request.
func CheckWorkFor(m *modelset.Manifest, dir string, cfg Config, pr Params, width, height int, refining bool) (Work, error) {
	cfg.Models = dir
	if err := cfg.fill(); err != nil {
		return Work{}, err
	}
	if err := CheckParamsFor(pr, m.Tiny); err != nil {
		return Work{}, err
	}
	w, err := stepsWork(pr, cfg.workLimits(), refining)
	if err != nil {
		return w, err
	}
	if err := CheckImageFor(cfg.Limits, width, height); err != nil {
		return w, err
	}
	var plan *refine.Refiner
	if refining {
		if plan, err = refine.NewPlan(&modelset.Set{Dir: dir, Manifest: *m}, refine.DefaultConfig()); err != nil {
			return w, classify(err)
		}
	}
	return imageWork(w, plan, pr, width, height, m.Tiny, cfg.workLimits())
}

// workLimits are the configuration's limits (after fill).
func (c *Config) workLimits() WorkLimits {
	return WorkLimits{MaxTimesteps: c.MaxTimesteps, MaxSteps: c.MaxSteps, MaxStagePixels: c.MaxStagePixels, MaxMemory: c.MaxMemory}
}

// fillWork applies the defaults of the work limits and checks them.
func (c *Config) fillWork() error {
	if c.MaxTimesteps == 0 {
		c.MaxTimesteps = DefaultMaxTimesteps
	}
	if c.MaxSteps == 0 {
		c.MaxSteps = DefaultMaxSteps
	}
	if c.MaxStagePixels == 0 {
		c.MaxStagePixels = DefaultMaxStagePixels
	}
	if c.MaxMemory == 0 {
		c.MaxMemory = refine.DefaultMemoryLimit()
	}
	if c.DecodeMemory == 0 {
		c.DecodeMemory = DefaultDecodeMemory
	}
	switch {
	case c.MaxTimesteps < 1 || c.MaxSteps < 1 || c.MaxStagePixels < 1:
		return inputf("work limits: max timesteps %d, max steps %d and max stage pixels %d must be >= 1", c.MaxTimesteps, c.MaxSteps, c.MaxStagePixels)
	}
	return nil
}

// String is the limits as one line (for --help and logs).
func (l WorkLimits) String() string {
	mem := "no memory check"
	if l.MaxMemory > 0 {
		mem = "memory " + gib(l.MaxMemory)
	}
	return fmt.Sprintf("timesteps %d per stage, steps %d per request, %d pixels per stage, %s", l.MaxTimesteps, l.MaxSteps, l.MaxStagePixels, mem)
}
