package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
)

// RequestState is where a request stands.
type RequestState struct {
	ID string `json:"id"`
	// State is "queued", "running" or "done".
	State string `json:"state"`
	// Position is the place in the slot queue while queued (1 = next).
	Position int `json:"position,omitempty"`
	// Stage, Step, Total: the latest progress event while running.
	Stage string `json:"stage,omitempty"`
	Step  int    `json:"step,omitempty"`
	Total int    `json:"total,omitempty"`
}

// tracker follows one request in flight.
type tracker struct {
	id     string
	cancel context.CancelCauseFunc
	mu     sync.Mutex
	state  RequestState
}

func (t *tracker) set(f func(*RequestState)) {
	t.mu.Lock()
	f(&t.state)
	t.mu.Unlock()
}

func (t *tracker) get() RequestState {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.state
}

// registry holds the requests in flight by id.
type registry struct {
	mu   sync.Mutex
	byID map[string]*tracker
}

func newRegistry() *registry { return &registry{byID: map[string]*tracker{}} }

// add registers a request (id "" gets a generated one) and returns its tracker and a
// context that Cancel ends.
func (r *registry) add(ctx context.Context, id string) (*tracker, context.Context, error) {
	if len(id) > 128 {
		return nil, nil, inputf("request id: %d bytes, at most 128", len(id))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if id == "" {
		for id == "" || r.byID[id] != nil {
			var b [8]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
	} else if r.byID[id] != nil {
		return nil, nil, inputf("request id %q is already in flight", id)
	}
	cctx, cancel := context.WithCancelCause(ctx)
	t := &tracker{id: id, cancel: cancel, state: RequestState{ID: id, State: "queued"}}
	r.byID[id] = t
	return t, cctx, nil
}

func (r *registry) remove(t *tracker) {
	r.mu.Lock()
	if r.byID[t.id] == t {
		delete(r.byID, t.id)
	}
	r.mu.Unlock()
	t.cancel(nil)
}

func (r *registry) lookup(id string) *tracker {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byID[id]
}

// Cancel cancels the request in flight with that id (queued or running); it reports
// whether there was one. The request fails with ErrCanceled within one denoising step.
// Safe from any goroutine.
func (p *Pipeline) Cancel(id string) bool {
	t := p.reqs.lookup(id)
	if t == nil {
		return false
	}
	t.cancel(errCanceledByID)
	return true
}

// Request returns the state of the request in flight with that id.
func (p *Pipeline) Request(id string) (RequestState, bool) {
	t := p.reqs.lookup(id)
	if t == nil {
		return RequestState{}, false
	}
	s := t.get()
	if s.State == "queued" {
		s.Position = p.slots.position(t)
	}
	return s, true
}

// Queued is the number of requests waiting for a slot.
func (p *Pipeline) Queued() int { return p.slots.queued() }

var errCanceledByID = &classified{sentinel: ErrCanceled, cause: errString("request cancelled")}

type errString string

func (e errString) Error() string { return string(e) }
