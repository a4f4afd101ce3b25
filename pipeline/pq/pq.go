package pq

import (
	"errors"
	"fmt"
	"math"
)

// ErrShape is wrapped when inputs do not fit together.
var ErrShape = errors.New("pq: wrong shape")

// Dimensions names the four PQ dimensions in pq_text order.
var Dimensions = [4]string{"overall", "technical", "rationality", "naturalness"}

// GoodProbs returns g [B, 4, T] (see the package doc) for tokens [B, T, D] and pqText
// [4, 2, D]. Dot products accumulate in float64.
func GoodProbs(tokens []float32, B, T, D int, pqText []float32) ([]float32, error) {
	if B < 0 || T < 1 || D < 1 || len(tokens) != B*T*D || len(pqText) != 8*D {
		return nil, fmt.Errorf("%w: tokens %d values for [%d,%d,%d], pq_text %d values for [4,2,%d]", ErrShape, len(tokens), B, T, D, len(pqText), D)
	}
	g := make([]float32, B*4*T)
	for b := 0; b < B; b++ {
		for t := 0; t < T; t++ {
			tok := tokens[(b*T+t)*D : (b*T+t+1)*D]
			for i := 0; i < 4; i++ {
				good := dot(tok, pqText[(2*i)*D:(2*i+1)*D])
				bad := dot(tok, pqText[(2*i+1)*D:(2*i+2)*D])
				g[(b*4+i)*T+t] = float32(1 / (1 + math.Exp(bad-good)))
			}
		}
	}
	return g, nil
}

func dot(a, b []float32) float64 {
	s := 0.0
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

// DimensionScores returns the CLS probabilities g[b, i, 0] of image b, per dimension.
func DimensionScores(g []float32, b, T int) [4]float32 {
	var s [4]float32
	for i := range s {
		s[i] = g[(b*4+i)*T]
	}
	return s
}
