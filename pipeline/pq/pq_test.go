package pq

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestGoodProbs(t *testing.T) {
	// D = 2, T = 2, B = 1. pq_text rows: (good, bad) per dimension.
	tokens := []float32{1, 0, 0, 1}
	pqText := []float32{
		2, 0, 0, 0, // dim 0: good = e0*2, bad = 0
		0, 0, 0, 3, // dim 1: good = 0, bad = e1*3
		1, 1, 1, 1, // dim 2: equal
		-1, 0, 1, 0, // dim 3
	}
	g, err := GoodProbs(tokens, 1, 2, 2, pqText)
	require.NoError(t, err)
	sig := func(x float64) float32 { return float32(1 / (1 + math.Exp(-x))) }
	want := []float32{
		sig(2), sig(0), // dim 0, tokens 0, 1
		sig(0), sig(-3), // dim 1
		0.5, 0.5, // dim 2
		sig(-2), sig(0), // dim 3
	}
	for i := range want {
		assert.InDelta(t, want[i], g[i], 1e-7, "index %d", i)
	}
	assert.Equal(t, [4]float32{g[0], g[2], g[4], g[6]}, DimensionScores(g, 0, 2))
	_, err = GoodProbs(tokens, 1, 2, 2, pqText[:7])
	assert.ErrorIs(t, err, ErrShape)
	_, err = GoodProbs(tokens[:3], 1, 2, 2, pqText)
	assert.ErrorIs(t, err, ErrShape)
}

func TestGoodProbsExtremeLogits(t *testing.T) {
	g, err := GoodProbs([]float32{1}, 1, 1, 1, []float32{1e4, -1e4, -1e4, 1e4, 0, 0, 0, 0})
	require.NoError(t, err)
	assert.Equal(t, float32(1), g[0])
	assert.Equal(t, float32(0), g[1])
	for _, v := range g {
		assert.False(t, math.IsNaN(float64(v)))
	}
}
