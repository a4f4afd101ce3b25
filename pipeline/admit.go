package pipeline

import (
	"bytes"
	"context"
	"sync"

	"golang.org/x/sync/semaphore"

	"github.com/grefine/grefine/pipeline/imageio"
)

// DefaultDecodeMemory is Config.DecodeMemory's default: 1 GiB, enough for the largest
// image the default limits let in (64 Mi pixels of 16-bit RGBA: 704 MiB).
const DefaultDecodeMemory = 1 << 30

// Admission is a request before its image is decoded: what Admit validates and
// registers.
type Admission struct {
	// ID names the request ("" = a generated, unguessable id); Owner scopes it: only
	// the same owner finds it again (RequestFor, CancelFor). The server uses the bearer
	// token's digest; embedders may leave it empty.
	ID, Owner string
	// Refine selects Refine (else Assess).
	Refine bool
	Prompt string
	// Params are the settings (nil: Pipeline.DefaultParams()).
	Params *Params
}

// Ticket is an admitted request: validated (parameters, prompt, steps and schedule
// lengths), registered under its id, and holding its place among the slots + queue
// requests the pipeline takes. Its image is decoded through it (DecodeImage, within the
// shared decode budget) or handed to it (SetImage); then Assess or Refine runs it
// (Request.Ticket). Close it when done (idempotent; running it closes it too).
type Ticket struct {
	p        *Pipeline
	track    *tracker
	ctx      context.Context // ends with CancelFor or the Admit context
	refining bool
	params   Params
	prompt   string
	work     Work

	mu     sync.Mutex
	img    *imageio.RGB8
	held   int64 // decode budget held
	closed bool
}

// Admit validates a request's parameters and prompt (the table, the work limits) and
// takes its place, before its image is decoded: ErrBusy at once when the pipeline
// already holds Config.Slots + Config.MaxQueue requests. ctx bounds the request's life
// (its wait for decode memory and for a slot, its run).
func (p *Pipeline) Admit(ctx context.Context, a Admission) (*Ticket, error) {
	return p.admit(ctx, a, nil)
}

// admit is Admit; with img (already decoded) the image is validated too, before the
// request takes its place.
func (p *Pipeline) admit(ctx context.Context, a Admission, img *imageio.RGB8) (*Ticket, error) {
	if p.closedNow() {
		return nil, errClosed
	}
	if a.Refine && p.refine == nil {
		return nil, errNoRefiner
	}
	t := &Ticket{p: p, refining: a.Refine, prompt: a.Prompt, params: p.DefaultParams()}
	if a.Params != nil {
		t.params = *a.Params
	}
	if err := p.CheckParams(t.params); err != nil {
		return nil, err
	}
	var err error
	if t.work, err = stepsWork(t.params, p.cfg.workLimits(), a.Refine); err != nil {
		return nil, err
	}
	if err := p.assess.CheckPrompt(a.Prompt); err != nil {
		return nil, classify(err)
	}
	if img != nil {
		if err := t.checkImage(img); err != nil {
			return nil, err
		}
		t.img = img
	}
	if t.track, t.ctx, err = p.reqs.add(ctx, a.Owner, a.ID); err != nil {
		return nil, err
	}
	return t, nil
}

// ID is the request's id (the one given, or the generated one).
func (t *Ticket) ID() string { return t.track.id }

// Work is what the request will cost (complete once its image is known).
func (t *Ticket) Work() Work { return t.work }

// checkImage validates img's size and the request's work on it.
func (t *Ticket) checkImage(img *imageio.RGB8) error {
	if err := t.p.CheckImage(img); err != nil {
		return err
	}
	return t.checkSize(img.W, img.H)
}

// checkSize completes the work for a w×h image and checks it against the limits.
func (t *Ticket) checkSize(w, h int) error {
	var plan = t.p.refine
	if !t.refining {
		plan = nil
	}
	wk, err := imageWork(t.work, plan, t.params, w, h, t.p.info.Tiny, t.p.cfg.workLimits())
	if err != nil {
		return err
	}
	t.work = wk
	return nil
}

// DecodeImage decodes the request's image within the pipeline's limits. The header is
// read first: size limits and the request's work are checked before any pixel is
// decoded; then the decode waits (until the ticket's context ends: ErrBusy on a
// deadline) for its share of the decode budget (Config.DecodeMemory), counted at the
// decoder's peak (16-bit and alpha channels included) and, once decoded, at the image's
// RGB8 size until the ticket closes. An image larger than the whole budget is ErrInput.
func (t *Ticket) DecodeImage(data []byte) (*imageio.RGB8, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.closed:
		return nil, inputf("ticket: closed")
	case t.img != nil:
		return nil, inputf("ticket: the request has its image already")
	}
	h, err := imageio.Probe(data, t.p.cfg.Limits)
	if err != nil {
		return nil, classify(err)
	}
	if err := CheckImageFor(t.p.cfg.Limits, h.Width, h.Height); err != nil {
		return nil, err
	}
	if err := t.checkSize(h.Width, h.Height); err != nil {
		return nil, err
	}
	need := h.DecodedBytes()
	if err := t.p.budget.acquire(t.ctx, need); err != nil {
		return nil, err
	}
	t.held = need
	img, err := imageio.Decode(bytes.NewReader(data), t.p.cfg.Limits)
	if err != nil {
		return nil, classify(err)
	}
	keep := int64(len(img.Pix))
	t.p.budget.release(t.held - keep)
	t.held = keep
	t.img = img
	return img, nil
}

// SetImage hands the request an image decoded elsewhere (borrowed until the request
// ends), validating it as DecodeImage does. It holds no decode budget.
func (t *Ticket) SetImage(img *imageio.RGB8) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.closed:
		return inputf("ticket: closed")
	case t.img != nil:
		return inputf("ticket: the request has its image already")
	}
	if err := t.checkImage(img); err != nil {
		return err
	}
	t.img = img
	return nil
}

// Close gives the request's place and decode memory back; idempotent.
func (t *Ticket) Close() {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	t.closed = true
	t.p.budget.release(t.held)
	t.held = 0
	t.p.reqs.remove(t.track)
}

// image returns the request's image (nil until decoded or set).
func (t *Ticket) image() *imageio.RGB8 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.img
}

// DecodeImage decodes an encoded image (PNG, JPEG, GIF) within the pipeline's limits,
// its header first; the decode waits for its share of the decode budget (see
// Ticket.DecodeImage) and gives it back when done. The error wraps ErrInput.
func (p *Pipeline) DecodeImage(data []byte) (*imageio.RGB8, error) {
	return p.DecodeImageContext(context.Background(), data)
}

// DecodeImageContext is DecodeImage whose wait for decode memory ends with ctx.
func (p *Pipeline) DecodeImageContext(ctx context.Context, data []byte) (*imageio.RGB8, error) {
	h, err := imageio.Probe(data, p.cfg.Limits)
	if err != nil {
		return nil, classify(err)
	}
	need := h.DecodedBytes()
	if err := p.budget.acquire(ctx, need); err != nil {
		return nil, err
	}
	defer p.budget.release(need)
	img, err := imageio.Decode(bytes.NewReader(data), p.cfg.Limits)
	return img, classify(err)
}

// decodeBudget is the memory all decodes in flight share (nil: unbounded).
type decodeBudget struct {
	size int64
	sem  *semaphore.Weighted
}

func newDecodeBudget(size int64) *decodeBudget {
	if size <= 0 {
		return nil
	}
	return &decodeBudget{size: size, sem: semaphore.NewWeighted(size)}
}

// acquire waits, in arrival order, for n bytes of the budget.
func (b *decodeBudget) acquire(ctx context.Context, n int64) error {
	if b == nil || n <= 0 {
		return nil
	}
	if n > b.size {
		return inputf("image: decoding it takes about %s, more than the whole decode budget of %s", gib(n), gib(b.size))
	}
	if err := b.sem.Acquire(ctx, n); err != nil {
		return waitErr(context.Cause(ctx))
	}
	return nil
}

func (b *decodeBudget) release(n int64) {
	if b != nil && n > 0 {
		b.sem.Release(n)
	}
}
