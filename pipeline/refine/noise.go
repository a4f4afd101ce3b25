package refine

import "math/rand/v2"

// Gaussian returns n standard-normal float32 values from a PCG stream seeded by (seed,
// stream): the same pair always gives the same values.
func Gaussian(seed, stream uint64, n int) []float32 {
	r := rand.New(rand.NewPCG(seed, stream))
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(r.NormFloat64())
	}
	return out
}
