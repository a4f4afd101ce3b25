package pipeline

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSlotQueueSpreadsOverGroups: slots 0,1 on GPU 0 and 2,3 on GPU 1 (groups). A free
// slot goes to the group with the fewest busy slots, ties round the groups; a released
// slot goes to the first waiter (one line for all groups); load counts per group.
func TestSlotQueueSpreadsOverGroups(t *testing.T) {
	q := newSlotQueue([]int{0, 0, 1, 1}, 2, 0)
	ctx := context.Background()
	take := func() int {
		s, err := q.acquire(ctx, nil, nil)
		require.NoError(t, err)
		return s
	}
	group := func(s int) int { return q.group[s] }
	a, b := take(), take()
	assert.Equal(t, []int{0, 1}, []int{group(a), group(b)}, "the first two requests run one on each GPU")
	c := take()
	d := take()
	assert.NotEqual(t, group(c), group(d), "then one more on each")
	busy, runs := q.load()
	assert.Equal(t, []int{2, 2}, busy)
	assert.Equal(t, []int64{2, 2}, runs)

	// All busy: a waiter gets the next released slot, whatever its group.
	got := make(chan int, 1)
	go func() { got <- take() }()
	require.Eventually(t, func() bool { return q.queued() == 1 }, 5*time.Second, time.Millisecond)
	q.release(c)
	assert.Equal(t, c, <-got)
	busy, runs = q.load()
	assert.Equal(t, []int{2, 2}, busy)
	assert.Equal(t, int64(5), runs[0]+runs[1])

	// Free one slot of GPU 0 and two of GPU 1: the next goes to GPU 1 (fewer busy).
	for _, s := range []int{a, b, d} {
		q.release(s)
	}
	busy, _ = q.load()
	e := take()
	assert.Equal(t, 1, group(e), "the GPU with fewer busy slots: busy %v", busy)

	// Serial use alternates between idle groups.
	for _, s := range []int{c, e} {
		q.release(s)
	}
	var order []int
	for i := 0; i < 4; i++ {
		s := take()
		order = append(order, group(s))
		q.release(s)
	}
	assert.Contains(t, [][]int{{0, 1, 0, 1}, {1, 0, 1, 0}}, order)

	// One group: the slot freed last is taken first (the single-GPU behaviour).
	one := newSlotQueue([]int{0, 0, 0}, 1, 0)
	s0, err := one.acquire(ctx, nil, nil)
	require.NoError(t, err)
	s1, err := one.acquire(ctx, nil, nil)
	require.NoError(t, err)
	assert.Equal(t, []int{0, 1}, []int{s0, s1})
	one.release(s0)
	s2, err := one.acquire(ctx, nil, nil)
	require.NoError(t, err)
	assert.Equal(t, s0, s2)
}
