package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
)

// RequestState is where a request stands.
type RequestState struct {
	ID string `json:"id"`
	// State is "admitted" (its place taken, its image not decoded yet), "queued"
	// (waiting for a slot) or "running".
	State string `json:"state"`
	// Position is the place in the slot queue while queued (1 = next).
	Position int `json:"position,omitempty"`
	// Stage, Step, Total: the latest progress event while running.
	Stage string `json:"stage,omitempty"`
	Step  int    `json:"step,omitempty"`
	Total int    `json:"total,omitempty"`
	// GPU is the CUDA device index it runs on, while running on a GPU.
	GPU *int `json:"gpu,omitempty"`
}

// tracker follows one request in flight.
type tracker struct {
	id, owner string
	cancel    context.CancelCauseFunc
	mu        sync.Mutex
	state     RequestState
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

// key names a request: ids are scoped to their owner, so two owners may use the same
// id and neither can see or cancel the other's request.
type key struct{ owner, id string }

// registry holds the requests in flight (admitted: decoding, queued or running) by
// owner and id. Its size is the admission limit: slots + queue.
type registry struct {
	mu       sync.Mutex
	byID     map[key]*tracker
	capacity int // 0: unbounded
	slots    int
}

func newRegistry(slots, queue int) *registry {
	r := &registry{byID: map[key]*tracker{}, slots: slots}
	if queue > 0 {
		r.capacity = slots + queue
	}
	return r
}

// MaxRequestID bounds a request id's length in bytes.
const MaxRequestID = 128

// add admits a request (id "" gets a generated, unguessable one: 128 random bits) and
// returns its tracker and a context that Cancel ends. It fails at once with ErrBusy
// when the pipeline already holds its capacity (slots + queue).
func (r *registry) add(ctx context.Context, owner, id string) (*tracker, context.Context, error) {
	if len(id) > MaxRequestID {
		return nil, nil, inputf("request id: %d bytes, at most %d", len(id), MaxRequestID)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.capacity > 0 && len(r.byID) >= r.capacity {
		return nil, nil, fmt.Errorf("%w: %d requests are in flight (%d slots and a queue of %d)", ErrBusy, len(r.byID), r.slots, r.capacity-r.slots)
	}
	if id == "" {
		for id == "" || r.byID[key{owner, id}] != nil {
			id = NewRequestID()
		}
	} else if r.byID[key{owner, id}] != nil {
		return nil, nil, inputf("request id %q is already in flight", id)
	}
	cctx, cancel := context.WithCancelCause(ctx)
	t := &tracker{id: id, owner: owner, cancel: cancel, state: RequestState{ID: id, State: "admitted"}}
	r.byID[key{owner, id}] = t
	return t, cctx, nil
}

// NewRequestID is a fresh unguessable request id: 128 random bits in hex.
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (r *registry) remove(t *tracker) {
	r.mu.Lock()
	if k := (key{t.owner, t.id}); r.byID[k] == t {
		delete(r.byID, k)
	}
	r.mu.Unlock()
	t.cancel(nil)
}

func (r *registry) lookup(owner, id string) *tracker {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byID[key{owner, id}]
}

// inFlight is the number of admitted requests.
func (r *registry) inFlight() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.byID)
}

// Cancel cancels the request in flight with that id and no owner (CancelFor with
// owner ""); it reports whether there was one.
func (p *Pipeline) Cancel(id string) bool { return p.CancelFor("", id) }

// CancelFor cancels owner's request in flight with that id (admitted, queued or
// running); it reports whether there was one. Another owner's request of the same id is
// neither found nor touched. The request fails with ErrCanceled within one denoising
// step. Safe from any goroutine.
func (p *Pipeline) CancelFor(owner, id string) bool {
	t := p.reqs.lookup(owner, id)
	if t == nil {
		return false
	}
	t.cancel(errCanceledByID)
	return true
}

// Request is RequestFor with owner "".
func (p *Pipeline) Request(id string) (RequestState, bool) { return p.RequestFor("", id) }

// RequestFor returns the state of owner's request in flight with that id.
func (p *Pipeline) RequestFor(owner, id string) (RequestState, bool) {
	t := p.reqs.lookup(owner, id)
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
