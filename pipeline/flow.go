package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/pipeline/aq"
	"github.com/grefine/grefine/pipeline/assess"
	"github.com/grefine/grefine/pipeline/imageio"
	"github.com/grefine/grefine/pipeline/refine"
	"github.com/grefine/grefine/pipeline/syntax"
)

// Request is one image to assess or refine.
type Request struct {
	// Ticket, if set, is the admitted request to run (Admit): its id, owner, prompt,
	// params and image are the ticket's, and ID, Owner, Image, Prompt and Params must be
	// left empty. Without a ticket the call admits the request itself.
	Ticket *Ticket
	// ID names the request for Cancel and Request ("" = a generated, unguessable id);
	// it must not be in flight already. Owner scopes it (see Admission).
	ID, Owner string
	// Image is the decoded input (DecodeImage or imageio), borrowed for the call.
	Image *imageio.RGB8
	// Prompt is the prompt the image was generated from ("" skips alignment).
	Prompt string
	// Params are the settings (nil: Pipeline.DefaultParams()).
	Params *Params
	// Assessment, for Refine, reuses an earlier Assess of the same image and prompt
	// instead of assessing again.
	Assessment *Assessment
	// Observer, if set, receives progress events in order, on the request's goroutine.
	// A non-nil return cancels the request (it fails with ErrCanceled wrapping that error).
	Observer Observer
	// SkipMaps leaves the maps (P, A and the masks) on the device: the Assessment then
	// carries the scores only (its PMap, AMap and mask slices are nil), which saves their
	// copy to host memory. A Refine's repair mask never needs it.
	SkipMaps bool
}

// Observer receives progress events.
type Observer func(Event) error

// Event is one progress event.
type Event struct {
	RequestID string `json:"id"`
	// Stage is "queued" (Position set), "assess", "stage1" or "stage2" (Step of Total
	// denoising steps done; Step 0 when the stage starts).
	Stage    string `json:"stage"`
	Step     int    `json:"step,omitempty"`
	Total    int    `json:"total,omitempty"`
	Position int    `json:"position,omitempty"`
}

// Input describes what a request was given.
type Input struct {
	Width  int    `json:"width"`
	Height int    `json:"height"`
	Prompt string `json:"prompt"`
	// PixelSHA256 is the SHA-256 of the decoded RGB8 pixels (row-major R,G,B).
	PixelSHA256 string `json:"pixel_sha256"`
}

// Setup says what ran a request.
type Setup struct {
	ModelSet string `json:"model_set"`
	Tiny     bool   `json:"tiny,omitempty"`
	Backend  string `json:"backend"`
	Device   string `json:"device"`
	Version  string `json:"version"`
}

// Assessment is the outcome of Assess: the quality report (scores, parts, defects, maps
// and masks at the image's size) with its inputs and settings.
type Assessment struct {
	*assess.Report
	RequestID string         `json:"request_id"`
	Input     Input          `json:"input"`
	Params    Params         `json:"params"`
	Setup     Setup          `json:"setup"`
	Parsed    *syntax.Result `json:"-"` // the prompt's parse (nil without a prompt)
	// Transfers counts what the request moved between host and device (for a Refine's
	// assessment: its assess part).
	Transfers *Transfers `json:"transfers,omitempty"`
}

// Transfers counts a request's host↔device copies (count and bytes, each way) and host
// syncs on its slot's stream, and, for a refinement, its denoising steps: the copies and
// syncs inside them (zero on a GPU pair: the steps stay on the device) and the UNet runs
// served by CUDA-graph replay.
type Transfers struct {
	Device string `json:"device"`
	// GPU is the CUDA device index the request ran on (absent on the cpu device).
	GPU     *int            `json:"gpu,omitempty"`
	Total   engine.Counters `json:"total"`
	Steps   int             `json:"steps,omitempty"`
	InSteps engine.Counters `json:"in_steps"`
	Replays int             `json:"graph_replays"`
}

// Refinement is the outcome of Refine.
type Refinement struct {
	*Assessment
	Refine *refine.Result `json:"refine"`
	// Image is the refined image at the input's size.
	Image       *imageio.RGB8 `json:"-"`
	TotalMillis float64       `json:"total_ms"`
	// Transfers counts the whole request (assess and refine) on its slot's stream.
	Transfers *Transfers `json:"transfers"`
}

// Assess computes the quality report of one image.
func (p *Pipeline) Assess(ctx context.Context, req Request) (*Assessment, error) {
	var out *Assessment
	err := p.do(ctx, req, false, func(ctx context.Context, r *run) error {
		st, before, imgT, err := p.begin(r)
		if err != nil {
			return err
		}
		defer imgT.Close()
		a, maps, err := p.assessOne(ctx, r, imgT, !r.req.SkipMaps)
		if err != nil {
			return err
		}
		maps.Close()
		a.Transfers = &Transfers{Device: p.cfg.Device, GPU: p.gpuOf(r.slot), Total: st.Counters().Sub(before)}
		out = a
		return nil
	})
	return out, err
}

// begin starts a request on its slot's stream: the counters before it, and the image on
// the device (the one upload of its pixels; the caller closes it).
func (p *Pipeline) begin(r *run) (engine.Stream, engine.Counters, engine.Tensor, error) {
	st, img := p.streams[r.slot], r.req.Image
	before := st.Counters()
	h, err := engine.FromUint8(engine.Shape{int64(img.H), int64(img.W), 3}, img.Pix)
	if err != nil {
		return nil, before, nil, err
	}
	t, err := engine.Upload(st, h)
	return st, before, t, err
}

// Refine assesses the image (unless the request carries an Assessment), repairs the
// defect mask (stage 1) and polishes the whole image (stage 2). On the slot's device the
// image is uploaded once and only the scores and the refined image come back (and the
// maps, unless Request.SkipMaps).
func (p *Pipeline) Refine(ctx context.Context, req Request) (*Refinement, error) {
	if p.refine == nil && !p.closedNow() {
		return nil, errNoRefiner
	}
	var out *Refinement
	err := p.do(ctx, req, true, func(ctx context.Context, r *run) error {
		t0 := time.Now()
		st, before, imgT, err := p.begin(r)
		if err != nil {
			return err
		}
		defer imgT.Close()
		a := r.req.Assessment
		rr := refine.Request{Image: r.req.Image, Tensor: imgT, Prompt: r.req.Prompt}
		if a == nil {
			var maps *assess.Maps
			if a, maps, err = p.assessOne(ctx, r, imgT, !r.req.SkipMaps); err != nil {
				return err
			}
			defer maps.Close()
			rr.MaskTensor, rr.MaskFraction = maps.Mask, float64(a.MaskPixels)/float64(a.Width*a.Height)
			box := a.MaskBox
			rr.MaskBox = &box
			a.Transfers = &Transfers{Device: p.cfg.Device, GPU: p.gpuOf(r.slot), Total: st.Counters().Sub(before)}
		} else if err := p.checkAssessment(a, r.req); err != nil {
			return err
		} else {
			rr.Mask = a.Mask
		}
		rr.Q, rr.Parsed = float64(a.Q), a.Parsed
		ref, err := p.refiner(r.slot).With(r.params.refineConfig(p.refine.Config())) // the one With of the request
		if err != nil {
			return classify(err)
		}
		for i, part := range a.Parts {
			if part.Kind != aq.KindNone {
				rr.Defective = append(rr.Defective, i)
			}
		}
		started := map[string]bool{}
		res, err := ref.Refine(ctx, rr, func(stage string, step, total int, _ []float32) {
			if !started[stage] {
				started[stage] = true
				r.event(Event{Stage: stage, Step: 0, Total: total})
			}
			r.event(Event{Stage: stage, Step: step, Total: total})
		})
		if err != nil {
			return err
		}
		out = &Refinement{Assessment: a, Refine: res, Image: res.Image, TotalMillis: ms(t0),
			Transfers: &Transfers{Device: p.cfg.Device, GPU: p.gpuOf(r.slot), Total: st.Counters().Sub(before),
				Steps: res.Loops.Steps, InSteps: res.Loops.InSteps, Replays: res.Loops.Replays}}
		return nil
	})
	return out, err
}

// checkAssessment refuses an assessment that does not belong to the request's image.
func (p *Pipeline) checkAssessment(a *Assessment, req Request) error {
	if a.Report == nil || a.Input.Width != req.Image.W || a.Input.Height != req.Image.H {
		return inputf("assessment: it is for a %dx%d image, the request's is %dx%d", a.Input.Width, a.Input.Height, req.Image.W, req.Image.H)
	}
	if len(a.Mask) != req.Image.W*req.Image.H {
		return inputf("assessment: it carries no repair mask in host memory (it was made with SkipMaps)")
	}
	if a.Input.Prompt != req.Prompt {
		return inputf("assessment: it is for another prompt")
	}
	return nil
}

// run is one request in flight.
type run struct {
	slot   int
	req    Request
	params Params
	track  *tracker
	cancel func(error)
}

func (r *run) event(e Event) {
	e.RequestID = r.track.id
	r.track.set(func(s *RequestState) {
		if e.Stage == "queued" {
			return
		}
		s.State, s.Stage, s.Step, s.Total = "running", e.Stage, e.Step, e.Total
	})
	if r.req.Observer != nil {
		if err := r.req.Observer(e); err != nil {
			r.cancel(fmt.Errorf("cancelled by the progress observer: %w", err))
		}
	}
}

// do runs f on a slot: the request is validated and admitted (cheap checks first,
// each once: parameters, prompt, image, work), waits for a slot, then runs f.
func (p *Pipeline) do(ctx context.Context, req Request, refining bool, f func(context.Context, *run) error) error {
	if !p.enter() {
		return errClosed
	}
	defer p.closeMu.RUnlock()
	t := req.Ticket
	if t == nil {
		var err error
		if req.Image == nil {
			return inputf("image: missing")
		}
		if t, err = p.admit(ctx, Admission{ID: req.ID, Owner: req.Owner, Refine: refining, Prompt: req.Prompt, Params: req.Params}, req.Image); err != nil {
			return err
		}
	} else if err := t.use(req, refining); err != nil {
		return err
	}
	defer t.Close()
	rctx := t.ctx
	if req.Ticket != nil { // the call's own context ends the request too
		stop := context.AfterFunc(ctx, func() { t.track.cancel(context.Cause(ctx)) })
		defer stop()
	}
	req.ID, req.Owner, req.Image, req.Prompt, req.Params = t.track.id, t.track.owner, t.image(), t.prompt, &t.params
	r := &run{req: req, params: t.params, track: t.track, cancel: func(err error) { t.track.cancel(&classified{sentinel: ErrCanceled, cause: err}) }}
	t.track.set(func(s *RequestState) { s.State = "queued" })
	slot, err := p.slots.acquire(rctx, t.track, func(pos int) { r.event(Event{Stage: "queued", Position: pos}) })
	if err != nil {
		return withCause(rctx, err)
	}
	defer p.slots.release(slot)
	r.slot = slot
	t.track.set(func(s *RequestState) { s.State, s.GPU = "running", p.gpuOf(slot) })
	err = f(rctx, r)
	if err != nil && rctx.Err() != nil {
		return withCause(rctx, err)
	}
	return classify(err)
}

// use checks that req only names the ticket, and that the ticket is ready to run as
// an assessment (refining false) or a refinement.
func (t *Ticket) use(req Request, refining bool) error {
	switch {
	case req.ID != "" || req.Owner != "" || req.Image != nil || req.Prompt != "" || req.Params != nil:
		return inputf("request: with a ticket, the id, owner, image, prompt and params are the ticket's (leave them empty)")
	case t.refining != refining:
		return inputf("request: the ticket was admitted for %s", map[bool]string{false: "assess", true: "refine"}[t.refining])
	case t.image() == nil:
		return inputf("image: missing (decode it through the ticket, or set it)")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return inputf("ticket: closed")
	}
	return nil
}

// errClosed and errNoRefiner are the unavailable answers of a closed and of an
// assess-only pipeline.
var (
	errClosed    = fmt.Errorf("%w: the pipeline is closed", ErrClosed)
	errNoRefiner = fmt.Errorf("%w: the refiner was not loaded (the pipeline was opened assess-only)", ErrUnavailable)
)

// withCause reports why ctx ended (Cancel, an observer, a deadline) rather than a bare
// "context canceled".
func withCause(ctx context.Context, err error) error {
	cause := context.Cause(ctx)
	if cause == nil || errors.Is(err, ErrBusy) {
		return classify(err)
	}
	if errors.Is(cause, ErrCanceled) {
		return cause
	}
	return classify(cause)
}

func (p *Pipeline) enter() bool {
	p.closeMu.RLock()
	if p.closed {
		p.closeMu.RUnlock()
		return false
	}
	return true
}

func (p *Pipeline) closedNow() bool {
	p.closeMu.RLock()
	defer p.closeMu.RUnlock()
	return p.closed
}

// assessOne runs the quality indicators for r on its slot, from the image on the slot's
// device; the maps stay there (the caller closes them) and come back to host memory when
// maps is set.
func (p *Pipeline) assessOne(ctx context.Context, r *run, imgT engine.Tensor, maps bool) (*Assessment, *assess.Maps, error) {
	r.event(Event{Stage: "assess"})
	var parsed *syntax.Result
	var ap *assess.Parsed
	if strings.TrimSpace(r.req.Prompt) != "" {
		var err error
		if parsed, err = p.parser.Parse(r.req.Prompt); err != nil {
			return nil, nil, inputf("prompt: %v", err)
		}
		ap = assess.ParsedFrom(parsed)
	}
	rep, err := p.assessor(r.slot).With(r.params.assessConfig(p.assess.Config())).Run(ctx,
		assess.Request{Image: r.req.Image, Tensor: imgT, Prompt: r.req.Prompt, Parsed: ap, Maps: maps})
	if err != nil {
		return nil, nil, err
	}
	dm := rep.Device
	rep.Device = nil
	img := r.req.Image
	sum := sha256.Sum256(img.Pix)
	return &Assessment{Report: rep, RequestID: r.track.id, Parsed: parsed, Params: r.params,
		Input: Input{Width: img.W, Height: img.H, Prompt: r.req.Prompt, PixelSHA256: hex.EncodeToString(sum[:])},
		Setup: Setup{ModelSet: p.info.ModelSet, Tiny: p.info.Tiny, Backend: p.info.Backend, Device: p.info.Device, Version: Version}}, dm, nil
}

func ms(t0 time.Time) float64 { return float64(time.Since(t0).Microseconds()) / 1000 }
