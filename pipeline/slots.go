package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// slotQueue hands out n slots to waiters in arrival order. The registry admits at most
// slots + queue requests, so the line never grows past the queue; maxQueue is a second
// bound for the slot queue alone (0: none).
type slotQueue struct {
	mu       sync.Mutex
	free     []int // indices of free slots
	waiters  []*waiter
	maxQueue int
}

type waiter struct {
	ready chan int // receives the slot index
	track *tracker
}

func newSlotQueue(n, maxQueue int) *slotQueue {
	q := &slotQueue{maxQueue: maxQueue}
	for i := n - 1; i >= 0; i-- {
		q.free = append(q.free, i)
	}
	return q
}

// acquire returns a slot index, waiting in line until ctx ends. onQueued is called with
// the position (1 = next) when the request has to wait.
func (q *slotQueue) acquire(ctx context.Context, t *tracker, onQueued func(pos int)) (int, error) {
	if ctx.Err() != nil {
		return 0, waitErr(context.Cause(ctx))
	}
	q.mu.Lock()
	if len(q.free) > 0 && len(q.waiters) == 0 {
		s := q.free[len(q.free)-1]
		q.free = q.free[:len(q.free)-1]
		q.mu.Unlock()
		return s, nil
	}
	if q.maxQueue > 0 && len(q.waiters) >= q.maxQueue {
		q.mu.Unlock()
		return 0, fmt.Errorf("%w: %d requests are already waiting for a slot", ErrBusy, len(q.waiters))
	}
	w := &waiter{ready: make(chan int, 1), track: t}
	q.waiters = append(q.waiters, w)
	pos := len(q.waiters)
	q.mu.Unlock()
	if onQueued != nil {
		onQueued(pos)
	}
	select {
	case s := <-w.ready:
		return s, nil
	case <-ctx.Done():
		q.mu.Lock()
		for i, x := range q.waiters {
			if x == w {
				q.waiters = append(q.waiters[:i], q.waiters[i+1:]...)
				q.mu.Unlock()
				return 0, waitErr(context.Cause(ctx))
			}
		}
		q.mu.Unlock()
		// Handed a slot while giving up: hand it on.
		q.release(<-w.ready)
		return 0, waitErr(context.Cause(ctx))
	}
}

// waitErr: a deadline passed while waiting (for a slot, for decode memory) is ErrBusy;
// a cancellation is ErrCanceled.
func waitErr(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return &classified{sentinel: ErrBusy, cause: fmt.Errorf("the deadline passed while the request waited for a slot or for decode memory: %w", err)}
	}
	if errors.Is(err, ErrCanceled) {
		return err
	}
	return &classified{sentinel: ErrCanceled, cause: err}
}

func (q *slotQueue) release(s int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.waiters) > 0 {
		w := q.waiters[0]
		q.waiters = q.waiters[1:]
		w.ready <- s
		return
	}
	q.free = append(q.free, s)
}

// position is t's place in line (1 = next), or 0 when it is not waiting.
func (q *slotQueue) position(t *tracker) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, w := range q.waiters {
		if w.track == t {
			return i + 1
		}
	}
	return 0
}

// queued is the number of waiting requests.
func (q *slotQueue) queued() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.waiters)
}
