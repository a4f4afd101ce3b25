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
}

// Refinement is the outcome of Refine.
type Refinement struct {
	*Assessment
	Refine *refine.Result `json:"refine"`
	// Image is the refined image at the input's size.
	Image       *imageio.RGB8 `json:"-"`
	TotalMillis float64       `json:"total_ms"`
	// Copies counts the host↔device copies of the denoising loops (device cuda only;
	// the engines run on ONNX Runtime on the CPU, so each step copies the UNet input down
	// and the noise prediction up).
	Copies *engine.CopyStats `json:"device_copies,omitempty"`
}

// Assess computes the quality report of one image.
func (p *Pipeline) Assess(ctx context.Context, req Request) (*Assessment, error) {
	var out *Assessment
	err := p.do(ctx, req, false, func(ctx context.Context, r *run) error {
		var err error
		out, err = p.assessOne(ctx, r)
		return err
	})
	return out, err
}

// Refine assesses the image (unless the request carries an Assessment), repairs the
// defect mask (stage 1) and polishes the whole image (stage 2).
func (p *Pipeline) Refine(ctx context.Context, req Request) (*Refinement, error) {
	if p.refine == nil && !p.closedNow() {
		return nil, errNoRefiner
	}
	var out *Refinement
	err := p.do(ctx, req, true, func(ctx context.Context, r *run) error {
		t0 := time.Now()
		a := r.req.Assessment
		if a == nil {
			var err error
			if a, err = p.assessOne(ctx, r); err != nil {
				return err
			}
		} else if err := p.checkAssessment(a, r.req); err != nil {
			return err
		}
		ref, err := p.refiner(r.slot).With(r.params.refineConfig(p.refine.Config())) // the one With of the request
		if err != nil {
			return classify(err)
		}
		rr := refine.Request{Image: r.req.Image, Prompt: r.req.Prompt, Mask: a.Mask, Q: float64(a.Q), Parsed: a.Parsed, Ops: p.ops[r.slot]}
		var before engine.CopyStats
		if rr.Ops != nil {
			before = rr.Ops.Copies()
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
		out = &Refinement{Assessment: a, Refine: res, Image: res.Image, TotalMillis: ms(t0)}
		if rr.Ops != nil {
			c := rr.Ops.Copies().Sub(before)
			out.Copies = &c
		}
		return nil
	})
	return out, err
}

// checkAssessment refuses an assessment that does not belong to the request's image.
func (p *Pipeline) checkAssessment(a *Assessment, req Request) error {
	if a.Report == nil || len(a.Mask) != req.Image.W*req.Image.H {
		return inputf("assessment: it is for a %dx%d image, the request's is %dx%d", a.Input.Width, a.Input.Height, req.Image.W, req.Image.H)
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
	t.track.set(func(s *RequestState) { s.State = "running" })
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

// assessOne runs the quality indicators for r (on its slot).
func (p *Pipeline) assessOne(ctx context.Context, r *run) (*Assessment, error) {
	r.event(Event{Stage: "assess"})
	var parsed *syntax.Result
	var ap *assess.Parsed
	if strings.TrimSpace(r.req.Prompt) != "" {
		var err error
		if parsed, err = p.parser.Parse(r.req.Prompt); err != nil {
			return nil, inputf("prompt: %v", err)
		}
		ap = &assess.Parsed{Plain: parsed.PlainText(), Parts: make([]aq.Part, len(parsed.Parts))}
		for i, pt := range parsed.Parts {
			ap.Parts[i] = aq.Part{Text: pt.Text, Noun: pt.Noun, Ancestor: pt.Ancestor}
		}
	}
	rep, err := p.assessor(r.slot).With(r.params.assessConfig(p.assess.Config())).AssessParsed(ctx, r.req.Image, r.req.Prompt, ap)
	if err != nil {
		return nil, err
	}
	img := r.req.Image
	sum := sha256.Sum256(img.Pix)
	return &Assessment{Report: rep, RequestID: r.track.id, Parsed: parsed, Params: r.params,
		Input: Input{Width: img.W, Height: img.H, Prompt: r.req.Prompt, PixelSHA256: hex.EncodeToString(sum[:])},
		Setup: Setup{ModelSet: p.info.ModelSet, Tiny: p.info.Tiny, Backend: p.info.Backend, Device: p.info.Device, Version: Version}}, nil
}

func ms(t0 time.Time) float64 { return float64(time.Since(t0).Microseconds()) / 1000 }
