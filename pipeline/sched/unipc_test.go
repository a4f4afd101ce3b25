package sched

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestUniPCStepOrder(t *testing.T) {
	u := newTest(t, ClassUniPC, nil)
	require.NoError(t, u.SetTimesteps(10))
	require.NoError(t, u.SetBeginIndex(4))
	x := make([]float32, 5)
	assert.ErrorIs(t, u.Step(x, x, 0), ErrStep, "first step must be the begin index")
	require.NoError(t, u.Step(x, x, 4))
	assert.ErrorIs(t, u.Step(x, x, 6), ErrStep, "skipped a step")
	assert.ErrorIs(t, u.Step(x, x, 4), ErrStep, "repeated a step")
	require.NoError(t, u.Step(x, x, 5))
	assert.ErrorIs(t, u.Step(make([]float32, 6), make([]float32, 6), 6), ErrSize, "sample size changed mid-run")
	_, err := u.Coeffs(3)
	assert.ErrorIs(t, err, ErrStep, "before the begin index")
	require.NoError(t, u.SetTimesteps(10))
	assert.NoError(t, u.Step(x, x, 0), "SetTimesteps resets the run")
}

// A clone taken mid-run continues exactly like the original, and the two do not share
// state.
func TestUniPCCloneMidRun(t *testing.T) {
	u := newTest(t, ClassUniPC, nil)
	require.NoError(t, u.SetTimesteps(12))
	r := rand.New(rand.NewPCG(5, 6))
	x := randVec(r, 20)
	eps := make([][]float32, 12)
	for i := range eps {
		eps[i] = randVec(r, 20)
	}
	for i := 0; i < 5; i++ {
		require.NoError(t, u.Step(eps[i], x, i))
	}
	c := u.Clone()
	xc := slices.Clone(x)
	for i := 5; i < 12; i++ {
		require.NoError(t, u.Step(eps[i], x, i))
	}
	// The original's run went on; the clone still expects step 5.
	assert.ErrorIs(t, c.Step(eps[6], xc, 6), ErrStep)
	for i := 5; i < 12; i++ {
		require.NoError(t, c.Step(eps[i], xc, i))
	}
	assert.Equal(t, x, xc)
}

func TestTimestepIndex(t *testing.T) {
	u := newTest(t, ClassUniPC, nil)
	require.NoError(t, u.SetTimesteps(67))
	i, err := TimestepIndex(u, 149)
	require.NoError(t, err)
	assert.Equal(t, 57, i)
	_, err = TimestepIndex(u, 900)
	assert.ErrorIs(t, err, ErrStep, "900 is not a timestep of the 67-step schedule")
}
