package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// slotQueue hands out the slots to waiters in arrival order: one line for all the slots
// of all the devices. The registry admits at most slots + queue requests, so the line
// never grows past the queue; maxQueue is a second bound for the slot queue alone (0:
// none). Slots belong to groups (a GPU's slots): a free slot is taken from the group with
// the fewest busy slots, ties going round the groups, so requests spread over the GPUs;
// within a group the slot freed last is taken first.
type slotQueue struct {
	mu       sync.Mutex
	free     []int // indices of free slots
	waiters  []*waiter
	maxQueue int
	group    []int   // group of each slot
	busy     []int   // busy slots per group
	runs     []int64 // slots handed out per group
	next     int     // the group that wins the next tie
}

type waiter struct {
	ready chan int // receives the slot index
	track *tracker
}

// newSlotQueue makes a queue of len(group) slots; slot i belongs to group group[i] (of
// groups, numbered from 0).
func newSlotQueue(group []int, groups, maxQueue int) *slotQueue {
	q := &slotQueue{maxQueue: maxQueue, group: group, busy: make([]int, groups), runs: make([]int64, groups)}
	for i := len(group) - 1; i >= 0; i-- {
		q.free = append(q.free, i)
	}
	return q
}

// take removes a free slot from the free list (q.mu held, q.free not empty): the group
// with the fewest busy slots, ties to the first group from q.next on; in it, the slot
// freed last.
func (q *slotQueue) take() int {
	n := len(q.busy)
	rank := func(g int) (int, int) { return q.busy[g], (g - q.next + n) % n }
	best := len(q.free) - 1
	for i := len(q.free) - 2; i >= 0; i-- {
		b1, r1 := rank(q.group[q.free[i]])
		b2, r2 := rank(q.group[q.free[best]])
		if b1 < b2 || (b1 == b2 && r1 < r2) {
			best = i
		}
	}
	s := q.free[best]
	q.free = append(q.free[:best], q.free[best+1:]...)
	q.started(s)
	return s
}

// started counts slot s as handed out (q.mu held).
func (q *slotQueue) started(s int) {
	g := q.group[s]
	q.busy[g]++
	q.runs[g]++
	q.next = (g + 1) % len(q.busy)
}

// acquire returns a slot index, waiting in line until ctx ends. onQueued is called with
// the position (1 = next) when the request has to wait.
func (q *slotQueue) acquire(ctx context.Context, t *tracker, onQueued func(pos int)) (int, error) {
	if ctx.Err() != nil {
		return 0, waitErr(context.Cause(ctx))
	}
	q.mu.Lock()
	if len(q.free) > 0 && len(q.waiters) == 0 {
		s := q.take()
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
		// Handed a slot while giving up: hand it on (it ran nothing).
		s := <-w.ready
		q.mu.Lock()
		q.runs[q.group[s]]--
		q.mu.Unlock()
		q.release(s)
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
	q.busy[q.group[s]]--
	if len(q.waiters) > 0 {
		w := q.waiters[0]
		q.waiters = q.waiters[1:]
		q.started(s)
		w.ready <- s
		return
	}
	q.free = append(q.free, s)
}

// load is each group's busy slots and the slots handed out so far.
func (q *slotQueue) load() ([]int, []int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.busy), slices.Clone(q.runs)
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
