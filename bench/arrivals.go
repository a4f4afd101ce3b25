package bench

import (
	"math"
	"math/rand/v2"
	"time"
)

// PoissonArrivals returns the n arrival offsets of a Poisson process of rate qps
// (queries per second) from time 0: the inter-arrival gaps are independent exponential
// variates with mean 1/qps, drawn from a PCG generator seeded with seed (the same seed
// gives the same schedule, as LoadGen's server scenario does).
func PoissonArrivals(qps float64, n int, seed uint64) []time.Duration {
	if n <= 0 || !(qps > 0) || math.IsInf(qps, 0) {
		return nil
	}
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	out := make([]time.Duration, n)
	t := 0.0
	for i := range out {
		t += r.ExpFloat64() / qps
		out[i] = time.Duration(t * float64(time.Second))
	}
	return out
}
