package main

import (
	"encoding/json"
	"fmt"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/grefine/grefine/modelset"
	"github.com/grefine/grefine/pipeline"
	"github.com/grefine/grefine/pipeline/imageio"
)

func assessCommand() *cli.Command {
	return &cli.Command{
		Name:  "assess",
		Usage: "PQ/AQ quality assessment: scores, per-part alignment, maps and the repair mask",
		Description: "For one image (--image, --prompt) or many (--batch list.jsonl, one JSON object per line:\n" +
			`{"image": "a.png", "prompt": "a cat", "id": "optional-name", "params": {...}}; relative image paths are` + "\n" +
			"resolved against the JSONL file's folder), writes into --out: report.json (p, a, q, the four\n" +
			"perceptual scores, every part with its noun, scores, defect kind and ancestor, the inputs, every\n" +
			"setting, timings), p_map.png (1-P) and a_map.png (A), red = bad with a colour bar, mask.png (the\n" +
			"binary repair mask, 255 = repair), p_mask.png and a_mask.png (its perceptual and alignment parts)\n" +
			"and overlay.png; with --save-maps also p_map.npy, a_map.npy and mask.npy (float32 [H,W]).\n" +
			"Files are written into a staging folder and moved into place at the end, so --out never mixes\n" +
			"two runs; a batch writes one sub-folder per id and prints one JSON line per image on stdout.\n" +
			"With the tiny test model set the numbers are meaningless.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "image", Usage: "image file (PNG, JPEG, GIF)"},
			&cli.StringFlag{Name: "prompt", Usage: "the prompt the image was generated from ('' for none)"},
			&cli.StringFlag{Name: "batch", Usage: "JSONL file of {image, prompt, id, params} lines instead of --image/--prompt"},
			&cli.StringFlag{Name: "out", Usage: "output directory (required)"},
			&cli.BoolFlag{Name: "no-maps", Usage: "write only the JSON report"},
			&cli.BoolFlag{Name: "save-maps", Usage: "also write the float maps as .npy"},
			&cli.BoolFlag{Name: "quiet", Usage: "no progress bar"},
		}, paramFlags(false)...),
		Action: action(0, runAssess),
	}
}

// batchLine is one stdout line of a batch.
type batchLine struct {
	ID     string `json:"id"`
	Line   int    `json:"line,omitempty"`
	Image  string `json:"image"`
	Error  string `json:"error,omitempty"`
	Status string `json:"status"`
	Report any    `json:"report,omitempty"`
}

// request is what assess and refine share: the jobs, params, limits and output, all
// checked before the pipeline opens.
type request struct {
	jobs   []job
	batch  bool
	params pipeline.Params
	cfg    pipeline.Config
	tiny   bool
	out    *outDir
	imgs   map[int]*imageio.RGB8 // single job: decoded up front
	files  map[int]fileInput
}

// prepare does every cheap check of assess and refine, in order: flags and params, the
// model set's manifest, the image (single job: decoded within limits), --out (created,
// locked, probed).
func prepare(c *cli.Context, refining bool) (*request, error) {
	r := &request{imgs: map[int]*imageio.RGB8{}, files: map[int]fileInput{}}
	if c.String("out") == "" {
		return nil, usagef("--out DIR is required")
	}
	log := zerolog.Ctx(c.Context)
	var err error
	if c.String("batch") != "" {
		if c.IsSet("image") || c.IsSet("prompt") {
			return nil, usagef("--batch excludes --image and --prompt")
		}
		r.batch = true
	} else {
		if c.String("image") == "" {
			return nil, usagef("give --image and --prompt, or --batch FILE")
		}
		if !c.IsSet("prompt") {
			return nil, usagef("--prompt is required with --image (use --prompt '' for no prompt)")
		}
	}
	if r.cfg, r.tiny, err = preflight(c, !refining); err != nil {
		return nil, err
	}
	if r.params, err = paramsFromFlags(c, r.tiny); err != nil {
		return nil, err
	}
	if r.batch {
		if r.jobs, err = readBatch(c.String("batch"), log); err != nil {
			return nil, err
		}
	} else {
		p := c.String("prompt")
		r.jobs = []job{{Line: 0, Image: c.String("image"), Prompt: &p}}
		img, fi, err := readImage(c.String("image"), r.cfg.Limits, func(w, h int) error { return r.checkWork(w, h, refining) })
		if err != nil {
			return nil, actionError{err}
		}
		r.imgs[0], r.files[0] = img, fi
	}
	subs, inputs := []string{}, []string{}
	for _, j := range r.jobs {
		if r.batch {
			subs = append(subs, j.ID)
		}
		inputs = append(inputs, j.Image)
	}
	if !r.batch {
		subs = []string{""}
	}
	if r.batch {
		inputs = append(inputs, c.String("batch"))
	}
	if r.out, err = openOut(c.String("out"), subs, inputs); err != nil {
		return nil, err
	}
	return r, nil
}

// checkWork is the pipeline's whole validation of a w×h request (parameters, image
// size, work and memory), from the manifest alone: a request the machine cannot hold is
// refused before any model loads.
func (r *request) checkWork(w, h int, refining bool) error {
	m, err := modelset.ReadManifest(r.cfg.Models)
	if err != nil {
		return err
	}
	_, err = pipeline.CheckWorkFor(m, r.cfg.Models, r.cfg, r.params, w, h, refining)
	return err
}

// jobParams are the flags' params with the job's own "params" object on top.
func (r *request) jobParams(j job) (pipeline.Params, error) {
	p := r.params
	if len(j.Params) > 0 {
		var err error
		if p, err = pipeline.ParseParams(j.Params, r.params); err != nil {
			return p, fmt.Errorf("line %d: %w", j.Line, err)
		}
		if err := pipeline.CheckParamsFor(p, r.tiny); err != nil {
			return p, fmt.Errorf("line %d: params: %w", j.Line, err)
		}
	}
	return p, nil
}

// image returns job i's decoded image (batch jobs are read when their turn comes).
func (r *request) image(i int) (*imageio.RGB8, fileInput, error) {
	if img, ok := r.imgs[i]; ok {
		return img, r.files[i], nil
	}
	return readImage(r.jobs[i].Image, r.cfg.Limits, func(w, h int) error { return pipeline.CheckImageFor(r.cfg.Limits, w, h) })
}

// runJobs runs each job through one, writes its files and prints its line; it returns
// an error when a single job failed or any batch job did.
// jobInput is what runJobs hands each job: its decoded image, file and params.
type jobInput struct {
	img    *imageio.RGB8
	file   fileInput
	params pipeline.Params
}

func runJobs(c *cli.Context, r *request, one func(j job, sub string, in jobInput) (any, error)) error {
	bar := newProgress(c.App.ErrWriter, c.Command.Name, len(r.jobs), c.Bool("quiet") || !r.batch)
	enc := json.NewEncoder(c.App.Writer)
	failed := 0
	for i, j := range r.jobs {
		if err := c.Context.Err(); err != nil {
			bar.Abort()
			return err
		}
		sub := ""
		if r.batch {
			sub = j.ID
		}
		var rep any
		var err error
		if j.Err != "" {
			err = fmt.Errorf("%w: %s", pipeline.ErrInput, j.Err)
		} else {
			var in jobInput
			if in.img, in.file, err = r.image(i); err == nil {
				if in.params, err = r.jobParams(j); err == nil {
					rep, err = one(j, sub, in)
				}
			}
		}
		if err == nil {
			err = r.out.commit(sub)
		} else {
			r.out.discard(sub)
		}
		if !r.batch {
			bar.Abort()
			return err
		}
		line := batchLine{ID: j.ID, Line: j.Line, Image: j.Image, Report: rep, Status: "ok"}
		if err != nil {
			if c.Context.Err() != nil {
				bar.Abort()
				return err
			}
			failed++
			line.Error, line.Status, line.Report = err.Error(), pipeline.StatusOf(err).String(), nil
			zerolog.Ctx(c.Context).Error().Err(err).Int("line", j.Line).Str("image", j.Image).Msg(c.Command.Name + " failed")
		}
		bar.Clear()
		if err := enc.Encode(line); err != nil {
			return err
		}
		bar.Set(i + 1)
	}
	bar.Finish()
	if failed > 0 {
		return fmt.Errorf("%s: %d of %d images failed (see their error lines)", c.Command.Name, failed, len(r.jobs))
	}
	return nil
}

func runAssess(c *cli.Context) (err error) {
	r, err := prepare(c, false)
	if err != nil {
		return err
	}
	defer func() { r.out.finish(outcome(interruptedAs(c, err))) }()
	p, err := pipeline.Open(c.Context, r.cfg)
	if err != nil {
		return err
	}
	defer p.Close()
	return runJobs(c, r, func(j job, sub string, in jobInput) (any, error) {
		img := in.img
		a, err := p.Assess(c.Context, pipeline.Request{Image: img, Prompt: j.prompt(), Params: &in.params,
			SkipMaps: c.Bool("no-maps") && !c.Bool("save-maps")}) // the maps come back only to be written
		if err != nil {
			return nil, err
		}
		rep := &assessReport{Assessment: a, File: in.file, Maps: mapsDoc{Convention: mapConvention}}
		if !c.Bool("no-maps") || c.Bool("save-maps") {
			if rep.Maps.Files, err = writeMaps(r.out, sub, img, a, !c.Bool("no-maps"), c.Bool("save-maps")); err != nil {
				return nil, err
			}
		}
		if err := writeJSONTo(r.out, sub, "report.json", rep); err != nil {
			return nil, err
		}
		if !r.batch {
			printSummary(c.App.Writer, a, r.out.dir)
		}
		return rep, nil
	})
}
