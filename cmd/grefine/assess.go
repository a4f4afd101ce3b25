package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/engine/cuda"
	"github.com/grefine/grefine/engine/modelset"
	"github.com/grefine/grefine/pipeline/assess"
	"github.com/grefine/grefine/pipeline/imageio"
	"github.com/grefine/grefine/pipeline/syntax"
)

func assessFlags() []cli.Flag {
	d := assess.DefaultConfig()
	return []cli.Flag{
		&cli.Float64Flag{Name: "perceptual-bound", Usage: "P below this is a perceptual defect", Value: float64(d.PerceptualBound)},
		&cli.Float64Flag{Name: "perceptual-gate", Usage: "... if the raw cask map is also below this (tau_p)", Value: float64(d.PerceptualGate)},
		&cli.Float64Flag{Name: "align-bound", Usage: "A above this is an alignment defect", Value: float64(d.AlignBound)},
		&cli.IntFlag{Name: "dilate", Usage: "mask dilation radius in pixels", Value: d.DilateRadius},
		&cli.Int64Flag{Name: "max-pixels", Usage: "refuse images with more pixels", Value: imageio.DefaultLimits.MaxPixels},
	}
}

func assessCommand() *cli.Command {
	return &cli.Command{
		Name:  "assess",
		Usage: "PQ/AQ quality assessment: scores, per-part alignment, maps and the repair mask",
		Description: "For one image (--image, --prompt) or many (--batch list.jsonl, one JSON object per line:\n" +
			`{"image": "a.png", "prompt": "a cat", "id": "optional-name"}), writes into --out:` + "\n" +
			"report.json (p, a, q, the four perceptual scores, every part with its noun, scores, defect\n" +
			"kind and ancestor, timings) and PNG heatmaps p_map.png, a_map.png and mask.png (the repair\n" +
			"region over the image). A batch writes one sub-directory per image and prints one JSON line\n" +
			"per image on stdout. With the tiny test model set the numbers are meaningless.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "image", Usage: "image file (PNG, JPEG, GIF)"},
			&cli.StringFlag{Name: "prompt", Usage: "the prompt the image was generated from"},
			&cli.StringFlag{Name: "batch", Usage: "JSONL file of {image, prompt, id} lines instead of --image/--prompt"},
			&cli.StringFlag{Name: "out", Usage: "output directory", Required: true},
			&cli.BoolFlag{Name: "no-maps", Usage: "write only the JSON report"},
			&cli.BoolFlag{Name: "quiet", Usage: "no progress bar"},
		}, assessFlags()...),
		Action: runAssess,
	}
}

// openFuser returns the map-fusion implementation for --device, and its cleanup.
func openFuser(c *cli.Context) (assess.Fuser, func(), error) {
	switch c.String("device") {
	case "cpu":
		return nil, func() {}, nil // assess defaults to cpu.FuseMaps
	case "cuda":
		d, err := cuda.Open(cuda.Options{})
		if err != nil {
			return nil, nil, fmt.Errorf("--device cuda: %w", err)
		}
		f, err := cuda.NewHostFuser(d)
		if err != nil {
			d.Close()
			return nil, nil, fmt.Errorf("--device cuda: %w", err)
		}
		return f.FuseMaps, func() { f.Close(); d.Close() }, nil
	}
	return nil, nil, usagef("bad --device %q (cpu or cuda)", c.String("device"))
}

// quality is what openAssessor builds; refine reuses the set, backend and parser rather
// than loading and verifying them again.
type quality struct {
	a       *assess.Assessor
	lim     imageio.Limits
	set     *modelset.Set
	backend engine.Backend
	parser  *syntax.Parser
}

// openAssessor builds the quality pipeline from the global flags. The caller closes the
// assessor (which also releases the device).
func openAssessor(c *cli.Context) (*assess.Assessor, imageio.Limits, error) {
	q, err := openQuality(c)
	if err != nil {
		return nil, imageio.Limits{}, err
	}
	return q.a, q.lim, nil
}

func openQuality(c *cli.Context) (*quality, error) {
	lim := imageio.DefaultLimits
	if c.IsSet("max-pixels") {
		lim.MaxPixels = c.Int64("max-pixels")
	}
	if c.String("backend") != "ort" {
		return nil, fmt.Errorf("--backend %s: the quality pipeline runs on ort for now (TensorRT plans are built with `plans build` but not yet wired into assess/refine)", c.String("backend"))
	}
	set, err := loadModels(c)
	if err != nil {
		return nil, err
	}
	opts := map[string]string{}
	if c.String("ort-lib") != "" {
		opts["lib"] = c.String("ort-lib")
	}
	b, err := engine.NewBackend("ort", opts)
	if err != nil {
		return nil, err
	}
	if err := b.Available(); err != nil {
		return nil, err
	}
	p, err := syntax.New(syntax.Options{})
	if err != nil {
		return nil, err
	}
	cfg := assess.DefaultConfig()
	cfg.PerceptualBound = float32(c.Float64("perceptual-bound"))
	cfg.PerceptualGate = float32(c.Float64("perceptual-gate"))
	cfg.AlignBound = float32(c.Float64("align-bound"))
	cfg.DilateRadius = c.Int("dilate")
	if cfg.DilateRadius < 0 {
		return nil, usagef("--dilate must be >= 0")
	}
	fuser, release, err := openFuser(c)
	if err != nil {
		return nil, err
	}
	a, err := assess.New(set, b, assess.Options{Config: cfg, Parser: assess.SyntaxParser{P: p}, Threads: c.Int("threads"), Fuser: fuser, Release: release})
	if err != nil {
		release()
		return nil, err
	}
	if set.Manifest.Tiny {
		zerolog.Ctx(c.Context).Warn().Str("models", c.String("models")).Msg("tiny random-weight model set: scores and maps are not meaningful")
	}
	return &quality{a: a, lim: lim, set: set, backend: b, parser: p}, nil
}

type job struct {
	Image  string `json:"image"`
	Prompt string `json:"prompt"`
	ID     string `json:"id,omitempty"`
}

func readJobs(c *cli.Context) ([]job, error) {
	if c.String("batch") == "" {
		if c.String("image") == "" {
			return nil, usagef("give --image and --prompt, or --batch FILE")
		}
		if !c.IsSet("prompt") {
			return nil, usagef("--prompt is required with --image (use --prompt '' for no prompt)")
		}
		return []job{{Image: c.String("image"), Prompt: c.String("prompt")}}, nil
	}
	if c.IsSet("image") || c.IsSet("prompt") {
		return nil, usagef("--batch excludes --image and --prompt")
	}
	f, err := os.Open(c.String("batch"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var jobs []job
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var j job
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&j); err != nil || j.Image == "" {
			return nil, usagef("%s line %d: want {\"image\": ..., \"prompt\": ..., \"id\": ...}: %v", c.String("batch"), n, err)
		}
		if j.ID == "" {
			j.ID = fmt.Sprintf("%04d", len(jobs)+1)
		}
		if strings.ContainsAny(j.ID, `/\`) || j.ID == "." || j.ID == ".." {
			return nil, usagef("%s line %d: id %q must be a plain name", c.String("batch"), n, j.ID)
		}
		jobs = append(jobs, j)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(jobs) == 0 {
		return nil, usagef("%s has no jobs", c.String("batch"))
	}
	return jobs, nil
}

type batchLine struct {
	ID     string         `json:"id,omitempty"`
	Image  string         `json:"image"`
	Error  string         `json:"error,omitempty"`
	Report *assess.Report `json:"report,omitempty"`
}

func runAssess(c *cli.Context) error {
	jobs, err := readJobs(c)
	if err != nil {
		return err
	}
	a, lim, err := openAssessor(c)
	if err != nil {
		return err
	}
	defer a.Close()
	out := c.String("out")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	batch := c.String("batch") != ""
	bar := newProgress(c.App.ErrWriter, "assess", len(jobs), c.Bool("quiet") || !batch)
	failed := 0
	enc := json.NewEncoder(c.App.Writer)
	for i, j := range jobs {
		if err := c.Context.Err(); err != nil {
			bar.Finish()
			return err
		}
		dir := out
		if batch {
			dir = filepath.Join(out, j.ID)
		}
		rep, err := assessOne(c, a, lim, j, dir)
		line := batchLine{ID: j.ID, Image: j.Image, Report: rep}
		if err != nil {
			if !batch {
				return err
			}
			failed++
			line.Error = err.Error()
			zerolog.Ctx(c.Context).Error().Err(err).Str("image", j.Image).Msg("assess failed")
		}
		if batch {
			if err := enc.Encode(line); err != nil {
				return err
			}
		} else {
			printSummary(c.App.Writer, rep, dir)
		}
		bar.Set(i + 1)
	}
	bar.Finish()
	if failed > 0 {
		return fmt.Errorf("assess: %d of %d images failed", failed, len(jobs))
	}
	return nil
}

func assessOne(c *cli.Context, a *assess.Assessor, lim imageio.Limits, j job, dir string) (*assess.Report, error) {
	img, err := imageio.ReadFile(j.Image, lim)
	if err != nil {
		return nil, err
	}
	rep, err := a.Assess(c.Context, img, j.Prompt)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if !c.Bool("no-maps") {
		if err := writeMaps(dir, img, rep); err != nil {
			return nil, err
		}
	}
	return rep, writeJSON(filepath.Join(dir, "report.json"), rep)
}

// writeMaps writes p_map.png, a_map.png (if alignment ran) and mask.png.
func writeMaps(dir string, img *imageio.RGB8, rep *assess.Report) error {
	if err := imageio.WritePNG(filepath.Join(dir, "p_map.png"), imageio.Heatmap(rep.PMap, rep.Width, rep.Height).Image()); err != nil {
		return err
	}
	if rep.AMap != nil {
		if err := imageio.WritePNG(filepath.Join(dir, "a_map.png"), imageio.Heatmap(rep.AMap, rep.Width, rep.Height).Image()); err != nil {
			return err
		}
	}
	return imageio.WritePNG(filepath.Join(dir, "mask.png"), imageio.Overlay(img, rep.Mask, 0.55).Image())
}

// writeJSON writes v as indented JSON, atomically.
func writeJSON(path string, v any) error {
	return imageio.WriteAtomic(path, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	})
}

func printSummary(w io.Writer, rep *assess.Report, dir string) {
	a := "skipped"
	if rep.A != nil {
		a = fmt.Sprintf("%.4f", *rep.A)
	}
	fmt.Fprintf(w, "p=%.4f a=%s q=%.4f mask=%.1f%% -> %s\n", rep.P, a, rep.Q, 100*rep.MaskFraction, dir)
	for _, p := range rep.Parts {
		fmt.Fprintf(w, "  %-28q noun=%-12q a_pn=%.3f a_ph=%.3f %s\n", p.Text, p.Noun, p.NounScore, p.PhraseScore, p.Kind)
	}
	for _, n := range rep.Notes {
		fmt.Fprintln(w, "  note:", n)
	}
}
