package trttest

import (
	"sync/atomic"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/engine/trt"
)

// CountingAllocator is a trt.Allocator that counts the tensors it hands out, for tests
// that show a loop allocates nothing per step (trt.Session.SetAllocator).
type CountingAllocator struct {
	Next trt.Allocator
	n    atomic.Int64
}

// Alloc implements trt.Allocator.
func (c *CountingAllocator) Alloc(dt engine.DType, shape engine.Shape) (engine.Tensor, error) {
	c.n.Add(1)
	return c.Next.Alloc(dt, shape)
}

// Count is the number of Alloc calls so far.
func (c *CountingAllocator) Count() int { return int(c.n.Load()) }
