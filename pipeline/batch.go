package pipeline

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/grefine/grefine/engine"
)

// textBatchOpener wraps the clip_text engine in a batchEngine when batching is on.
type textBatchOpener struct {
	engine.Opener
	cfg TextBatch
	out **batchEngine
}

func (o *textBatchOpener) OpenEngine(b engine.Backend, name string, opts engine.OpenOptions) (engine.Engine, error) {
	e, err := o.Opener.OpenEngine(b, name, opts)
	if err != nil || name != "clip_text" || o.cfg.MaxWait <= 0 {
		return e, err
	}
	host, err := engine.NewDevice("cpu", nil)
	if err != nil {
		e.Close()
		return nil, err
	}
	be := &batchEngine{Engine: e, host: host, cfg: o.cfg, pending: map[int64]*textBatch{}}
	*o.out = be
	return be, nil
}

// batchEngine merges concurrent Run calls of one single-input engine (clip_text:
// input_ids int32 [B,S]) that have the same S into one engine call, and splits the
// outputs back along the batch axis. The first call of a batch waits up to MaxWait for
// others (or until MaxRows rows are there) and runs them all. Rows are independent in
// a text encoder, so the results equal separate calls (tested).
type batchEngine struct {
	engine.Engine
	host engine.Device // the cpu device: the batched engine reads and writes host tensors
	cfg  TextBatch

	mu      sync.Mutex
	pending map[int64]*textBatch // open batches by sequence length
	stats   BatchStats
}

// BatchStats count the text batcher's work.
type BatchStats struct {
	Calls int // Run calls
	Runs  int // engine calls they became
}

type textBatch struct {
	calls []*textCall
	rows  int
	full  chan struct{}
}

type textCall struct {
	ids  *engine.HostTensor
	out  map[string]engine.Tensor
	err  error
	done chan struct{}
}

func (e *batchEngine) Run(ctx context.Context, inputs map[string]engine.Tensor) (map[string]engine.Tensor, error) {
	name := e.Inputs()[0].Name
	ids, ok := inputs[name].(*engine.HostTensor)
	if len(inputs) != 1 || !ok || ids.DType() != engine.Int32 || len(ids.Shape()) != 2 {
		return e.Engine.Run(ctx, inputs) // not the shape this batcher merges: let the engine say
	}
	S, rows := ids.Shape()[1], int(ids.Shape()[0])
	c := &textCall{ids: ids, done: make(chan struct{})}
	e.mu.Lock()
	e.stats.Calls++
	b := e.pending[S]
	leader := false
	if b == nil || (e.cfg.MaxRows > 0 && b.rows+rows > e.cfg.MaxRows) {
		b = &textBatch{full: make(chan struct{})}
		e.pending[S] = b
		leader = true
	}
	b.calls = append(b.calls, c)
	b.rows += rows
	if e.cfg.MaxRows > 0 && b.rows >= e.cfg.MaxRows {
		delete(e.pending, S)
		close(b.full)
	}
	e.mu.Unlock()
	if leader {
		t := time.NewTimer(e.cfg.MaxWait)
		select {
		case <-t.C:
		case <-b.full:
		case <-ctx.Done():
		}
		t.Stop()
		e.mu.Lock()
		if e.pending[S] == b {
			delete(e.pending, S)
		}
		e.stats.Runs++
		e.mu.Unlock()
		// The batch runs for every call in it: the leader's cancellation must not fail
		// the others.
		e.runBatch(context.WithoutCancel(ctx), name, S, b)
	}
	select {
	case <-c.done:
		return c.out, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// runBatch concatenates the calls' rows, runs once and hands each call its rows.
func (e *batchEngine) runBatch(ctx context.Context, name string, S int64, b *textBatch) {
	defer func() {
		for _, c := range b.calls {
			close(c.done)
		}
	}()
	if len(b.calls) == 1 {
		c := b.calls[0]
		c.out, c.err = e.Engine.Run(ctx, map[string]engine.Tensor{name: c.ids})
		return
	}
	all := make([]int32, 0, b.rows*int(S))
	for _, c := range b.calls {
		all = append(all, c.ids.I32...)
	}
	x, err := engine.FromInt32(engine.Shape{int64(b.rows), S}, all)
	var out map[string]engine.Tensor
	if err == nil {
		out, err = e.Engine.Run(ctx, map[string]engine.Tensor{name: x})
	}
	if err == nil {
		defer engine.CloseAll(out)
		err = splitRows(e.host, out, b.calls)
	}
	if err != nil {
		for _, c := range b.calls {
			c.err = err
		}
	}
}

// splitRows gives each call its rows of every output (batch axis first): views of the
// merged output on the host device (the batched engine's outputs are host tensors).
func splitRows(host engine.Device, out map[string]engine.Tensor, calls []*textCall) error {
	for _, c := range calls {
		c.out = map[string]engine.Tensor{}
	}
	for k, t := range out {
		if err := engine.CheckDevice("pipeline: text batch", "output "+k, t, host.Name()); err != nil {
			return err
		}
		if len(t.Shape()) < 1 || t.Shape()[0] < 1 {
			return fmt.Errorf("pipeline: text batch: output %s has shape %v", k, t.Shape())
		}
		per := t.Shape().NumElements() / t.Shape()[0]
		off := int64(0)
		for _, c := range calls {
			n := c.ids.Shape()[0]
			shape := t.Shape().Clone()
			shape[0] = n
			part, err := host.View(t, off*per, shape)
			if err != nil {
				return err
			}
			c.out[k] = part
			off += n
		}
	}
	return nil
}

func (e *batchEngine) snapshot() BatchStats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stats
}

// TextBatchStats reports the text batcher's counters (zero when batching is off).
func (p *Pipeline) TextBatchStats() BatchStats {
	if p.text == nil {
		return BatchStats{}
	}
	return p.text.snapshot()
}
